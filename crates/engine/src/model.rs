//! The model every configuration source is turned into: applications, their Git target and the
//! images they track. The updater knows only this.

use driftwatch_git::{Auth, Identity};
use driftwatch_manifest::Target;
use driftwatch_policy::{ImageRef, Policy};

/// One application: where its manifests live and what it tracks.
#[derive(Clone, Debug, PartialEq)]
pub struct App {
    /// Name (`.AppName` in commit templates).
    pub name: String,
    /// Namespace, when it came from an Argo CD Application.
    pub namespace: String,
    /// The Git repository URL.
    pub repo: String,
    /// The branch, or `base:target` for a write branch.
    pub branch: String,
    /// Credentials for the repository.
    pub auth: Auth,
    /// The application's directory in the repository (what is rendered and synced).
    pub path: String,
    /// The file, relative to the repository root, that holds the images.
    pub file: String,
    /// Commit message template.
    pub template: String,
    /// Author and signing.
    pub identity: Identity,
    /// The images.
    pub images: Vec<TrackedImage>,
    /// How Git reaches the cluster; `None` leaves the cluster alone (image updates only).
    pub sync: Option<SyncPolicy>,
    /// Where the Git credentials come from when they are read through the cluster before
    /// each write (Applications read from it); `None`: `auth` as it is.
    pub git_credentials: Option<GitCredentialsFrom>,
    /// Where new tags are written.
    pub write_back: WriteBack,
    /// The Argo CD Application's own `spec.source.kustomize.images`, which Argo CD applies
    /// when it renders (before the `.argocd-source` files); empty for driftwatch.yaml.
    pub source_images: Vec<String>,
    /// When updates may be written (`updateWindows`); none: any time.
    pub update_windows: Vec<UpdateWindow>,
    /// A multi-source Application's sources other than the one holding its images (which
    /// gave `repo`, `path` and `branch`); empty for a single source.
    pub other_sources: Vec<OtherSource>,
    /// The Argo CD Application's own `spec.source.helm` (of the source holding the images),
    /// which Argo CD renders a chart with, before the `.argocd-source` overrides; `None` for
    /// driftwatch.yaml (a chart is then rendered with its defaults).
    pub helm: Option<serde_json::Value>,
}

/// One other source of a multi-source Argo CD Application (`spec.sources[]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OtherSource {
    /// Its `ref` name, when Helm values files of another source name it (`$name/...`).
    pub reference: Option<String>,
    /// Its directory in its repository, normalised; `None` for a `ref`-only or chart source.
    pub path: Option<String>,
    /// In the same repository and at the same revision as the application's own source: its
    /// path can be rendered from the same checkout.
    pub same_checkout: bool,
    /// A Helm source (a `helm` block or a `chart`).
    pub helm: bool,
    /// The source as people read it: field, path or chart, repository (no credential).
    pub what: String,
}

impl OtherSource {
    /// Whether Argo CD renders manifests from it (a `ref` source without a path only lends
    /// its files to another source's Helm values).
    pub fn renders(&self) -> bool {
        self.path.is_some() || self.helm && self.reference.is_none()
    }
}

/// Where an application's new tags are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WriteBack {
    /// A commit to `file` in the repository.
    #[default]
    Git,
    /// argocd-image-updater's `write-back-method: argocd`: the live Argo CD Application
    /// (`namespace`/`name`) in the cluster it was read from — its
    /// `spec.source.kustomize.images` or `spec.source.helm.parameters` — with no commit.
    Application,
}

/// The live Argo CD Application, for `write-back-method: argocd`. Errors are sentences for
/// people naming the Application.
pub trait ApplicationWriter: Send + Sync {
    /// The live Application `namespace/name`: its `spec.source` and its resourceVersion.
    fn source<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
    ) -> Pending<'a, (serde_json::Value, String)>;

    /// Sets `fields` (`kustomize.images`, `helm.parameters`, `targetRevision`) in the
    /// Application's `spec.source`, touching nothing else, if it is still at
    /// `resource_version`; `note` says what changed, for an Event on the Application (as
    /// argocd-image-updater records one).
    fn set<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
        resource_version: &'a str,
        fields: serde_json::Value,
        note: &'a str,
    ) -> Pending<'a, ()>;
}

/// A shared [`ApplicationWriter`].
#[derive(Clone)]
pub struct Applications(pub std::sync::Arc<dyn ApplicationWriter>);

impl std::fmt::Debug for Applications {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Applications(..)")
    }
}

/// Where an Application read from the cluster takes its Git credentials, as
/// argocd-image-updater's `write-back-method: git[:CREDREF]` says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GitCredentialsFrom {
    /// `git:secret:NS/NAME`: `username` and `password`, or `sshPrivateKey`, in that Secret.
    Secret {
        /// The Secret's namespace.
        namespace: String,
        /// The Secret's name.
        name: String,
    },
    /// `git` or `git:repocreds`: Argo CD's own credentials for the repository — a
    /// `repository` Secret for its exact URL, else the `repo-creds` Secret whose URL is its
    /// longest prefix — in the namespace Argo CD keeps them (the Applications').
    RepoCreds {
        /// The namespace of Argo CD's credential Secrets.
        namespace: String,
    },
}

/// An answer from the cluster still to come: the value, or a sentence for people.
pub type Pending<'a, T> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, String>> + Send + 'a>>;

/// Reads the Git credentials of [`GitCredentialsFrom`] (through the cluster). The error is a
/// sentence naming the Secret and what is wrong, never a value.
pub trait GitCredentialReader: Send + Sync {
    /// The credentials `from` gives for `repo`, for an Application of `namespace` (where
    /// Argo CD keeps its settings, such as its SSH known hosts); an SSH key is written below
    /// `key_dir`.
    fn read<'a>(
        &'a self,
        from: &'a GitCredentialsFrom,
        repo: &'a str,
        namespace: &'a str,
        key_dir: &'a std::path::Path,
    ) -> Pending<'a, Auth>;
}

/// A shared [`GitCredentialReader`].
#[derive(Clone)]
pub struct GitCredentials(pub std::sync::Arc<dyn GitCredentialReader>);

impl std::fmt::Debug for GitCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GitCredentials(..)")
    }
}

/// One update window as configured, and as checked ([`crate::window::Window`]).
#[derive(Clone, Debug)]
pub struct UpdateWindow {
    /// The configuration: schedule, duration, time zone (compared, since the parsed zone is
    /// not).
    pub written: (String, std::time::Duration, String),
    /// The parsed window.
    pub window: crate::window::Window,
}

impl PartialEq for UpdateWindow {
    fn eq(&self, other: &Self) -> bool {
        self.written == other.written
    }
}

/// Git → cluster for one application, as Argo CD's `destination` and `syncPolicy` say it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncPolicy {
    /// Namespace for objects that name none.
    pub namespace: String,
    /// Apply each new revision (`automated`); otherwise only report OutOfSync.
    pub automated: bool,
    /// Put manual changes back the moment they happen (otherwise they are reported).
    pub self_heal: bool,
    /// Delete what the application applied before and Git no longer has.
    pub prune: bool,
    /// Let prune delete everything when Git renders nothing.
    pub allow_empty: bool,
    /// Differences that are not drift, as Argo CD's `ignoreDifferences`.
    pub ignore_differences: Vec<IgnoreDifference>,
    /// The cluster to sync to: a context of the kubeconfig (`sync.cluster` in driftwatch.yaml),
    /// or an Argo CD destination — a cluster's name or its API server's URL, resolved through
    /// Argo CD's cluster Secrets. `None`: the default cluster (`--kubeconfig`/`--context`, which
    /// is Argo CD's `in-cluster`).
    pub cluster: Option<String>,
}

/// One `ignoreDifferences` entry: for objects of this kind and name (either may be any), these
/// JSON pointers, and every value these field managers wrote, are not drift.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IgnoreDifference {
    /// Kind, or any.
    pub kind: Option<String>,
    /// Name, or any.
    pub name: Option<String>,
    /// JSON pointers (`/spec/replicas`).
    pub json_pointers: Vec<String>,
    /// Field managers (`managedFieldsManagers`).
    pub managers: Vec<String>,
}

/// What the name of a followed chart starts with (`chart:oci://registry.example.com/charts/web`),
/// so chart rows stand apart from image rows wherever they are shown.
pub const CHART_PREFIX: &str = "chart:";

/// One image an application follows.
#[derive(Clone, Debug, PartialEq)]
pub struct TrackedImage {
    /// The alias from the image list, if any.
    pub alias: Option<String>,
    /// The image, normalised.
    pub image: ImageRef,
    /// The image as written by the user (`nginx`, `ghcr.io/org/app`).
    pub written: String,
    /// The user named no registry, so a `default: true` registry applies.
    pub implicit_registry: bool,
    /// The name the file uses for it (kustomize image name), when different.
    pub file_name: Option<String>,
    /// How the tag is chosen.
    pub policy: Policy,
    /// Where in the file the tag goes, when the kind of file does not say.
    pub target: Target,
    /// Registry credentials for this image only (`env:`, `ext:`, `file:`), from the
    /// `pull-secret` annotation or the `credentials` key.
    pub credentials: Option<String>,
    /// Each update waits for `driftwatch approve` (`approval: required`).
    pub approval_required: bool,
    /// A tag is chosen only once its image is at least this old (`minimumReleaseAge`, as
    /// Renovate has it): a release gets time to be found bad before it rolls out.
    pub min_release_age: Option<std::time::Duration>,
    /// Follow another application's live image instead of the registry (`promote:`).
    pub promote: Option<crate::promote::Promote>,
    /// The file, relative to the repository root, that holds this one when it is not the
    /// application's `file` (a chart's kustomization or Application manifest).
    pub file: Option<String>,
}

impl TrackedImage {
    /// True for a Helm chart followed by version (`target.chart`), whose `written` is
    /// `chart:oci://…` and whose tags are chart versions.
    pub fn is_chart(&self) -> bool {
        self.target.chart.is_some()
    }

    /// A Helm chart in an OCI registry, followed by version with `policy` and written to
    /// `file` (relative to the repository root) as [`driftwatch_manifest::set_chart_version`]
    /// does. Its `written` name is `chart:oci://…`, which reports, history, approvals and
    /// commit messages show.
    pub fn chart(chart: driftwatch_policy::ChartRef, policy: Policy, file: Option<String>) -> Self {
        TrackedImage {
            alias: None,
            image: chart.image().clone(),
            written: format!("{CHART_PREFIX}{chart}"),
            implicit_registry: false,
            file_name: None,
            policy: policy.for_chart_versions(),
            target: Target {
                chart: Some(chart),
                ..Target::default()
            },
            credentials: None,
            approval_required: false,
            min_release_age: None,
            file,
            // A chart follows its registry; promotion is for images.
            promote: None,
        }
    }

    /// The name the file's entry is matched by.
    pub fn name_in_file(&self) -> &str {
        self.file_name.as_deref().unwrap_or(&self.written)
    }
}
