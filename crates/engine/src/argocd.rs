//! Argo CD `Application` manifests with argocd-image-updater v0.x annotations, read from files,
//! turned into the engine's model with the updater's precedence: an image's own annotation,
//! then the application-wide one, then the default.

use std::collections::BTreeMap;
use std::path::Path;

use driftwatch_git::{Auth, DEFAULT_COMMIT_TEMPLATE, Identity};
use driftwatch_manifest::Target;
use driftwatch_policy::{ImageListEntry, Order, Platform, Policy, Strategy, TagFilter};
use serde::Deserialize;

use crate::error::Error;
use crate::model::{App, TrackedImage};
use crate::target::file_for;

const PREFIX: &str = "argocd-image-updater.argoproj.io/";
/// driftwatch's own annotations: `chart-version` (a semver constraint: follow the version of
/// the Application's OCI Helm chart), `chart-allow-tags` and `chart-ignore-tags` (filters, as
/// argocd-image-updater's `allow-tags` and `ignore-tags`), and `chart-version-file` (for Git
/// write-back, the file in the repository holding the Application, or a kustomization, whose
/// version is edited).
const DW_PREFIX: &str = "driftwatch.io/";

#[derive(Deserialize)]
struct Manifest {
    kind: Option<String>,
    metadata: Option<Metadata>,
    spec: Option<Spec>,
    status: Option<Status>,
}

/// What Argo CD observed of an Application: for a multi-source one, the type it detected for
/// each source (`Helm`, `Kustomize`, `Directory`, `Plugin`), index by index.
#[derive(Deserialize, Default)]
struct Status {
    #[serde(rename = "sourceTypes", default)]
    source_types: Vec<String>,
}

#[derive(Deserialize)]
struct Metadata {
    name: Option<String>,
    namespace: Option<String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct Spec {
    source: Option<Source>,
    /// A multi-source Application's sources (Argo CD takes them over `source` when present).
    #[serde(default)]
    sources: Vec<Source>,
    destination: Option<Destination>,
    #[serde(rename = "syncPolicy")]
    sync_policy: Option<SyncPolicySpec>,
    #[serde(rename = "ignoreDifferences", default)]
    ignore_differences: Vec<crate::ignore::RawIgnore>,
    // An `ImageUpdater`'s spec: the same document shape, another kind.
    #[serde(rename = "applicationRefs")]
    application_refs: Option<Vec<crate::image_updater::ApplicationRef>>,
    #[serde(rename = "commonUpdateSettings")]
    common_update_settings: Option<crate::image_updater::CommonUpdateSettings>,
    #[serde(rename = "writeBackConfig")]
    write_back_config: Option<crate::image_updater::WriteBackConfig>,
    #[serde(rename = "imagesVerification")]
    images_verification: Option<crate::image_updater::ImagesVerification>,
}

#[derive(Deserialize)]
struct Destination {
    namespace: Option<String>,
    server: Option<String>,
    name: Option<String>,
}

/// Argo CD's own cluster, by URL and by name: the default client's.
const IN_CLUSTER_SERVER: &str = "https://kubernetes.default.svc";
const IN_CLUSTER_NAME: &str = "in-cluster";

#[derive(Deserialize)]
struct SyncPolicySpec {
    automated: Option<Automated>,
}

#[derive(Deserialize)]
struct Automated {
    #[serde(default)]
    prune: bool,
    #[serde(default, rename = "selfHeal")]
    self_heal: bool,
    #[serde(default, rename = "allowEmpty")]
    allow_empty: bool,
}

#[derive(Deserialize)]
struct Source {
    #[serde(rename = "repoURL")]
    repo_url: Option<String>,
    path: Option<String>,
    #[serde(rename = "targetRevision")]
    target_revision: Option<String>,
    helm: Option<serde_json::Value>,
    chart: Option<String>,
    kustomize: Option<KustomizeSource>,
    plugin: Option<serde_json::Value>,
    /// A multi-source Application's name for this source, for `$name/...` values files.
    #[serde(rename = "ref")]
    reference: Option<String>,
}

#[derive(Deserialize)]
struct KustomizeSource {
    #[serde(default)]
    images: Vec<String>,
}

/// Argo CD's own namespace unless told otherwise (`--argocd-namespace`).
pub const DEFAULT_NAMESPACE: &str = "argocd";

/// Reads every Application and ImageUpdater in a file or in the YAML files of a directory
/// (sorted, not recursive) and resolves them (see [`resolve`]).
pub fn load(path: &Path) -> Result<Vec<App>, Error> {
    load_in(path, DEFAULT_NAMESPACE)
}

/// [`load`] for an Argo CD that runs in `argocd_namespace`: Applications there write
/// `.argocd-source-<name>.yaml`, others `.argocd-source-<namespace>_<name>.yaml`.
pub fn load_in(path: &Path, argocd_namespace: &str) -> Result<Vec<App>, Error> {
    let files = if path.is_dir() {
        let mut v: Vec<_> = std::fs::read_dir(path)
            .map_err(|e| Error::Read {
                file: path.display().to_string(),
                reason: e.to_string(),
            })?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
            .collect();
        v.sort();
        v
    } else {
        vec![path.to_path_buf()]
    };
    // ImageUpdaters select Applications of any file, so all are read before resolving.
    let mut docs = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).map_err(|e| Error::Read {
            file: f.display().to_string(),
            reason: e.to_string(),
        })?;
        docs.extend(documents(&text, &f.display().to_string())?);
    }
    resolve(docs, Trust::Operator, argocd_namespace)
        .into_iter()
        .collect()
}

/// Who wrote the Applications being read, which decides what they may ask of driftwatch's
/// host.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Trust {
    /// The operator's own files: any repository URL and credential spec is taken.
    #[default]
    Operator,
    /// Objects read from the cluster, written by whoever may create an Application in that
    /// namespace: `ext:` (runs a program) and `env:` (reads the service's environment)
    /// pull-secrets are refused, and so are local repositories (`file://`, paths), which would
    /// let a tenant read or write any repository on the host, unless the operator allows them.
    Cluster {
        /// `--allow-local-repositories`: accept `file://` URLs and local paths.
        allow_local_repositories: bool,
    },
}

/// Parses the Applications in one YAML stream written by the operator; other kinds are
/// skipped, and so are Applications without an image list.
pub fn parse(text: &str, file: &str) -> Result<Vec<App>, Error> {
    parse_with(text, file, Trust::Operator)
}

/// Parses the Applications in one YAML stream as [`parse`] does, refusing what `trust` does
/// not allow with an error naming the Application and the field or annotation.
pub fn parse_with(text: &str, file: &str, trust: Trust) -> Result<Vec<App>, Error> {
    parse_in(text, file, trust, DEFAULT_NAMESPACE)
}

/// [`parse_with`] for an Argo CD that runs in `argocd_namespace` (see [`load_in`]).
pub fn parse_in(
    text: &str,
    file: &str,
    trust: Trust,
    argocd_namespace: &str,
) -> Result<Vec<App>, Error> {
    let docs = documents(text, file)?;
    resolve(docs, trust, argocd_namespace).into_iter().collect()
}

/// The Argo CD Applications and argocd-image-updater `ImageUpdater`s of one YAML stream, read
/// but not yet resolved against each other (see [`resolve`]); other kinds are left out.
pub struct Document {
    file: String,
    index: usize,
    kind: DocKind,
    meta: Option<Metadata>,
    spec: Option<Spec>,
    status: Option<Status>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum DocKind {
    Application,
    ImageUpdater,
}

/// The `ImageUpdater` kind's API group (`argocd-image-updater.argoproj.io/v1alpha1`).
pub const IMAGE_UPDATER_API_VERSION: &str = "argocd-image-updater.argoproj.io/v1alpha1";

/// Reads the Applications and ImageUpdaters of one YAML stream from `file` (a file name, or
/// where objects of the cluster came from, for errors).
pub fn documents(text: &str, file: &str) -> Result<Vec<Document>, Error> {
    let docs: Vec<Manifest> = serde_saphyr::from_multiple(text).map_err(|e| Error::Config {
        file: file.to_owned(),
        path: "(document)".to_owned(),
        reason: e.to_string(),
    })?;
    Ok(docs
        .into_iter()
        .enumerate()
        .filter_map(|(i, doc)| {
            let kind = match doc.kind.as_deref() {
                Some("Application") => DocKind::Application,
                Some("ImageUpdater") => DocKind::ImageUpdater,
                _ => return None,
            };
            Some(Document {
                file: file.to_owned(),
                index: i + 1,
                kind,
                meta: doc.metadata,
                spec: doc.spec,
                status: doc.status,
            })
        })
        .collect())
}

/// Turns Applications and ImageUpdaters into the engine's applications, one result each:
/// an Application selected by an ImageUpdater of its namespace (the most specific of its
/// `applicationRefs`) gets what that ImageUpdater says, or its own annotations where the
/// reference says `useAnnotations: true`; an Application no ImageUpdater selects is read from
/// its annotations as before, and left out without an `image-list`. An Application two
/// ImageUpdaters select is an error naming both (argocd-image-updater would flip between
/// them); so is an invalid ImageUpdater, naming its field. A missing namespace is
/// `argocd_namespace`.
pub fn resolve(
    docs: Vec<Document>,
    trust: Trust,
    argocd_namespace: &str,
) -> Vec<Result<App, Error>> {
    let mut out = Vec::new();
    let mut updaters = Vec::new();
    let mut apps = Vec::new();
    for doc in docs {
        match doc.kind {
            DocKind::Application => apps.push(doc),
            DocKind::ImageUpdater => {
                let Some(meta) = doc.meta else {
                    out.push(Err(cfg(
                        &doc.file,
                        &format!("document {}: metadata", doc.index),
                        "missing",
                    )));
                    continue;
                };
                let Some(name) = meta.name.clone().filter(|n| !n.is_empty()) else {
                    out.push(Err(cfg(
                        &doc.file,
                        &format!("document {}: ImageUpdater: metadata.name", doc.index),
                        "missing",
                    )));
                    continue;
                };
                let namespace = meta
                    .namespace
                    .clone()
                    .filter(|n| !n.is_empty())
                    .unwrap_or_else(|| argocd_namespace.to_owned());
                let spec = doc
                    .spec
                    .map(|s| crate::image_updater::UpdaterSpec {
                        application_refs: s.application_refs,
                        common_update_settings: s.common_update_settings,
                        write_back_config: s.write_back_config,
                        images_verification: s.images_verification,
                    })
                    .unwrap_or_default();
                match crate::image_updater::ImageUpdater::new(&name, &namespace, &doc.file, spec) {
                    Ok(u) => updaters.push(u),
                    Err((field, reason)) => out.push(Err(cfg(
                        &doc.file,
                        &format!("ImageUpdater {namespace}/{name}: {field}"),
                        &reason,
                    ))),
                }
            }
        }
    }
    for doc in apps {
        let file = doc.file;
        let Some(meta) = doc.meta else {
            out.push(Err(cfg(
                &file,
                &format!("document {}: metadata", doc.index),
                "missing",
            )));
            continue;
        };
        let name = meta.name.clone().unwrap_or_default();
        let namespace = meta
            .namespace
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| argocd_namespace.to_owned());
        let selected: Vec<_> = updaters
            .iter()
            .filter(|u| u.namespace == namespace)
            .filter_map(|u| u.select(&name, &meta.labels).map(|i| (u, i)))
            .collect();
        let settings = match selected.as_slice() {
            [] => {
                if !meta
                    .annotations
                    .contains_key(&format!("{PREFIX}image-list"))
                    && !meta
                        .annotations
                        .contains_key(&format!("{DW_PREFIX}chart-version"))
                {
                    continue;
                }
                annotation_settings(&meta, &name)
            }
            [(u, i)] => match u.settings(*i, &name) {
                Ok(crate::image_updater::Selected::Settings(s)) => s,
                Ok(crate::image_updater::Selected::Annotations) => {
                    if !meta
                        .annotations
                        .contains_key(&format!("{PREFIX}image-list"))
                    {
                        out.push(Err(cfg(
                            &u.file,
                            &format!(
                                "ImageUpdater {}: spec.applicationRefs[{i}].useAnnotations",
                                u.id
                            ),
                            &format!(
                                "selects Application {name}, which has no \
                                 {PREFIX}image-list annotation"
                            ),
                        )));
                        continue;
                    }
                    annotation_settings(&meta, &name)
                }
                Err((field, reason)) => {
                    out.push(Err(cfg(
                        &u.file,
                        &format!("ImageUpdater {}: {field} (for Application {name})", u.id),
                        &reason,
                    )));
                    continue;
                }
            },
            many => {
                let ids: Vec<String> = many.iter().map(|(u, _)| u.id.clone()).collect();
                out.push(Err(cfg(
                    &file,
                    &format!("Application {name}"),
                    &format!(
                        "selected by more than one ImageUpdater ({}); each Application may \
                         be selected by one",
                        ids.join(", ")
                    ),
                )));
                continue;
            }
        };
        out.push(application(
            meta,
            doc.spec,
            doc.status.unwrap_or_default(),
            &file,
            trust,
            argocd_namespace,
            &settings,
        ));
    }
    out
}

/// One setting of an Application in argocd-image-updater's annotation vocabulary (the key
/// without its prefix), with the field it came from, for errors.
#[derive(Clone, Debug)]
pub(crate) struct Setting {
    /// The value.
    pub(crate) value: String,
    /// Where it was written.
    pub(crate) field: String,
}

/// An Application's settings by annotation key.
pub(crate) type Settings = BTreeMap<String, Setting>;

fn annotation_settings(meta: &Metadata, name: &str) -> Settings {
    meta.annotations
        .iter()
        .filter_map(|(k, v)| {
            let key = k.strip_prefix(PREFIX)?;
            Some((
                key.to_owned(),
                Setting {
                    value: v.clone(),
                    field: format!("Application {name}: metadata.annotations[{k}]"),
                },
            ))
        })
        .collect()
}

fn cfg(file: &str, path: &str, reason: &str) -> Error {
    Error::Config {
        file: file.to_owned(),
        path: path.to_owned(),
        reason: reason.to_owned(),
    }
}

fn application(
    meta: Metadata,
    spec: Option<Spec>,
    status: Status,
    file: &str,
    trust: Trust,
    argocd_namespace: &str,
    settings: &Settings,
) -> Result<App, Error> {
    let name = meta
        .name
        .clone()
        .ok_or_else(|| cfg(file, "metadata.name", "missing"))?;
    let at = |key: &str| match settings.get(key) {
        Some(s) => s.field.clone(),
        None => format!("Application {name}: metadata.annotations[{PREFIX}{key}]"),
    };
    let get = |key: &str| {
        settings
            .get(key)
            .map(|s| s.value.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let (source, sources, destination, sync_policy, ignore) = match spec {
        Some(s) => (
            s.source,
            s.sources,
            s.destination,
            s.sync_policy,
            s.ignore_differences,
        ),
        None => (None, Vec::new(), None, None, Vec::new()),
    };
    let ignore_differences = crate::ignore::convert(
        ignore,
        file,
        &format!("Application {name}: spec.ignoreDifferences"),
    )?;
    // Argo CD's destination and automated sync policy, for `run --kubeconfig`.
    let sync = destination.map(|d| {
        let automated = sync_policy.and_then(|p| p.automated);
        let cluster = match (d.name.filter(|n| !n.is_empty()), d.server) {
            (Some(n), _) if n == IN_CLUSTER_NAME => None,
            (Some(n), _) => Some(n),
            (None, Some(s)) if s.trim_end_matches('/') == IN_CLUSTER_SERVER => None,
            (None, s) => s.filter(|s| !s.is_empty()),
        };
        crate::model::SyncPolicy {
            cluster,
            namespace: d
                .namespace
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| "default".to_owned()),
            automated: automated.is_some(),
            self_heal: automated.as_ref().is_some_and(|a| a.self_heal),
            prune: automated.as_ref().is_some_and(|a| a.prune),
            allow_empty: automated.as_ref().is_some_and(|a| a.allow_empty),
            ignore_differences,
        }
    });
    // A multi-source Application: the images live in one of its sources, chosen as
    // argocd-image-updater chooses it; the others are rendered beside it where they can be.
    let multi = !sources.is_empty();
    // With `git-repository` naming one of the sources, that source's revision is the branch
    // written to, as argocd-image-updater takes it.
    let repository_revision = get("git-repository").and_then(|r| {
        sources
            .iter()
            .find(|s| s.repo_url.as_deref() == Some(r.as_str()))
            .and_then(|s| s.target_revision.clone())
    });
    // driftwatch's own annotations are the Application's, whatever selected it.
    let a = &meta.annotations;
    let follows_chart = a.contains_key(&format!("{DW_PREFIX}chart-version"));
    let (source, other_sources) = if multi && follows_chart {
        // A multi-source Application that follows its chart: the source that is an OCI chart
        // (a `chart` with a registry, or an `oci://` repoURL) stands for the Application.
        let chart_source = sources.into_iter().find(|s| {
            let url = s.repo_url.as_deref().unwrap_or("").trim();
            let chart = s.chart.as_deref().is_some_and(|c| !c.trim().is_empty());
            (url.starts_with("oci://") || (chart && !url.contains("://")))
                && driftwatch_policy::ChartRef::from_source(url, s.chart.as_deref()).is_ok()
        });
        let source = chart_source.ok_or_else(|| {
            cfg(
                file,
                &format!("Application {name}: spec.sources"),
                "no source is a Helm chart in an OCI registry (repoURL oci://host/path/name, \
                 or host/path with chart)",
            )
        })?;
        (source, Vec::new())
    } else if multi {
        let chosen = write_back_source(
            &sources,
            &status.source_types,
            get("write-back-target").as_deref(),
        )
        .map_err(|r| cfg(file, &format!("Application {name}: spec.sources"), &r))?;
        let mut sources = sources;
        let source = sources.remove(chosen);
        let mut others = Vec::new();
        for (i, other) in sources.into_iter().enumerate() {
            let index = if i >= chosen { i + 1 } else { i };
            others.push(other_source(&source, other, index, &name, file)?);
        }
        (source, others)
    } else {
        let source = source
            .ok_or_else(|| cfg(file, &format!("Application {name}: spec.source"), "missing"))?;
        (source, Vec::new())
    };
    let dw_at = |key: &str| format!("Application {name}: metadata.annotations[{DW_PREFIX}{key}]");
    let dw_get = |key: &str| {
        a.get(&format!("{DW_PREFIX}{key}"))
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    // The Application's own Helm chart, from an OCI registry, followed by version: its
    // `spec.source` names the registry, not a Git repository.
    let chart = match a.get(&format!("{DW_PREFIX}chart-version")) {
        None => None,
        Some(constraint) => {
            let url = source.repo_url.as_deref().ok_or_else(|| {
                cfg(
                    file,
                    &format!("Application {name}: spec.source.repoURL"),
                    "missing",
                )
            })?;
            let chart_ref = driftwatch_policy::ChartRef::from_source(url, source.chart.as_deref())
                .map_err(|e| {
                    cfg(
                        file,
                        &format!("Application {name}: spec.source.repoURL"),
                        &e.to_string(),
                    )
                })?;
            let constraint = constraint.trim();
            if constraint.is_empty() {
                return Err(cfg(
                    file,
                    &dw_at("chart-version"),
                    "empty: give a semver constraint such as ~1.4 (or * for any release)",
                ));
            }
            let mut filter = TagFilter::new();
            if let Some(allow) = dw_get("chart-allow-tags") {
                filter = filter
                    .allow(&allow)
                    .map_err(|e| cfg(file, &dw_at("chart-allow-tags"), &e.to_string()))?;
            }
            if let Some(ignore) = dw_get("chart-ignore-tags") {
                filter = filter
                    .ignore(ignore.split(','))
                    .map_err(|e| cfg(file, &dw_at("chart-ignore-tags"), &e.to_string()))?;
            }
            let policy = Policy::new(Strategy::Semver, Some(constraint), filter, Order::Asc)
                .map_err(|e| cfg(file, &dw_at("chart-version"), &e.to_string()))?;
            Some((chart_ref, policy))
        }
    };
    let (repo, repo_field) = match get("git-repository") {
        Some(r) => (r, at("git-repository")),
        // A chart's Application names no Git repository of its own; one is needed only to
        // write to Git, which is checked below.
        None if chart.is_some() => (String::new(), at("git-repository")),
        None => (
            source.repo_url.clone().ok_or_else(|| {
                cfg(
                    file,
                    &format!("Application {name}: spec.source.repoURL"),
                    "missing",
                )
            })?,
            format!("Application {name}: spec.source.repoURL"),
        ),
    };
    if let Trust::Cluster {
        allow_local_repositories,
    } = trust
        && !repo.is_empty()
    {
        match repository_kind(&repo) {
            RepoKind::Remote => {}
            RepoKind::Local if allow_local_repositories => {}
            RepoKind::Local => {
                return Err(cfg(
                    file,
                    &repo_field,
                    &format!(
                        "{:?} is a local repository; Applications read from the cluster may \
                         name only remote ones (https://, http://, ssh://, git://, host:path) \
                         unless driftwatch runs with --allow-local-repositories",
                        driftwatch_git::redact_url(&repo)
                    ),
                ));
            }
            RepoKind::Other => {
                return Err(cfg(
                    file,
                    &repo_field,
                    &format!(
                        "{:?} uses a transport Applications read from the cluster may not \
                         use (only https://, http://, ssh://, git:// and host:path)",
                        driftwatch_git::redact_url(&repo)
                    ),
                ));
            }
        }
    }
    let method = get("write-back-method").unwrap_or_else(|| "argocd".to_owned());
    let expected = "expected argocd, git, git:secret:NAMESPACE/NAME or git:repocreds";
    // Git credentials, as argocd-image-updater takes them: Argo CD's repository credentials
    // by default, or a Secret named here. Only Applications read from the cluster have a
    // cluster to read them from; the operator's files give none (as before) and may not name
    // a Secret.
    // `argocd` (the default) writes the live Application; the operator's files name no live
    // object, so there it is the `.argocd-source-<app>.yaml` commit it has always been.
    let write_back = match (method.as_str(), trust) {
        ("argocd", Trust::Cluster { .. }) if multi => {
            return Err(cfg(
                file,
                &at("write-back-method"),
                "write-back-method argocd on a multi-source Application is not supported by \
                 driftwatch (it writes spec.source); use git",
            ));
        }
        ("argocd", Trust::Cluster { .. }) => crate::model::WriteBack::Application,
        _ => crate::model::WriteBack::Git,
    };
    let git_credentials = match method.as_str() {
        "argocd" => None,
        "git" | "git:repocreds" => match trust {
            Trust::Cluster { .. } => Some(crate::model::GitCredentialsFrom::RepoCreds {
                namespace: meta.namespace.clone().unwrap_or_default(),
            }),
            Trust::Operator => None,
        },
        m => match m.strip_prefix("git:secret:") {
            Some(secret) => {
                let (namespace, secret_name) = secret
                    .split_once('/')
                    .filter(|(ns, n)| !ns.is_empty() && !n.is_empty() && !n.contains('/'))
                    .ok_or_else(|| cfg(file, &at("write-back-method"), expected))?;
                if trust == Trust::Operator {
                    return Err(cfg(
                        file,
                        &at("write-back-method"),
                        "git:secret: reads a Kubernetes Secret through the cluster, only for \
                         Applications read from it (--applications-from-cluster)",
                    ));
                }
                Some(crate::model::GitCredentialsFrom::Secret {
                    namespace: namespace.to_owned(),
                    name: secret_name.to_owned(),
                })
            }
            None => return Err(cfg(file, &at("write-back-method"), expected)),
        },
    };
    // Whoever may create an Application chooses `spec.source.path`: it must stay inside the
    // repository (no `..` above the root, no absolute path), or a render would read host files.
    let written_path = source.path.clone().unwrap_or_default();
    let app_path = driftwatch_git::normalize(&written_path).map_err(|r| {
        cfg(
            file,
            &format!("Application {name}: spec.source.path"),
            &format!("path {written_path:?} {r}"),
        )
    })?;
    let namespace = meta.namespace.clone().unwrap_or_default();
    let target = get("write-back-target");
    let file_path = file_for(
        target.as_deref(),
        &app_path,
        &name,
        &namespace,
        argocd_namespace,
    )
    .map_err(|r| cfg(file, &at("write-back-target"), &r))?;
    // HEAD (or nothing) is the repository's default branch, resolved when writing. A chart's
    // targetRevision is its version, not a branch.
    let branch_default = repository_revision
        .or_else(|| source.target_revision.clone().filter(|_| chart.is_none()))
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| "HEAD".to_owned());
    let branch = match get("git-branch") {
        Some(b) if b.starts_with(':') => format!("{branch_default}{b}"),
        Some(b) => b,
        None => branch_default,
    };
    let source_images = source
        .kustomize
        .as_ref()
        .map(|k| k.images.clone())
        .unwrap_or_default();
    let is_helm = source.helm.is_some()
        || source.chart.is_some()
        || target
            .as_deref()
            .is_some_and(|t| t.starts_with("helmvalues"));

    let list = get("image-list").unwrap_or_default();
    let entries = ImageListEntry::parse_list(&list)
        .map_err(|e| cfg(file, &at("image-list"), &e.to_string()))?;
    if entries.is_empty() && (chart.is_none() || settings.contains_key("image-list")) {
        return Err(cfg(file, &at("image-list"), "empty"));
    }
    let mut images = Vec::new();
    for entry in entries {
        // An alias's own annotation wins over the application-wide one.
        let setting = |key: &str| -> Option<(String, String)> {
            if let Some(alias) = &entry.alias
                && let Some(v) = get(&format!("{alias}.{key}"))
            {
                return Some((v, format!("{alias}.{key}")));
            }
            get(key).map(|v| (v, key.to_owned()))
        };
        let strategy = match setting("update-strategy") {
            Some((s, key)) => {
                Strategy::parse(&s).map_err(|e| cfg(file, &at(&key), &e.to_string()))?
            }
            None => Strategy::Semver,
        };
        let mut filter = TagFilter::new();
        if let Some((allow, key)) = setting("allow-tags") {
            filter = filter
                .allow(&allow)
                .map_err(|e| cfg(file, &at(&key), &e.to_string()))?;
        }
        if let Some((ignore, key)) = setting("ignore-tags") {
            filter = filter
                .ignore(ignore.split(','))
                .map_err(|e| cfg(file, &at(&key), &e.to_string()))?;
        }
        if let Some(alias) = &entry.alias
            && let Some(p) = get(&format!("{alias}.platforms"))
        {
            let platforms = Platform::parse_list(&p)
                .map_err(|e| cfg(file, &at(&format!("{alias}.platforms")), &e.to_string()))?;
            filter = filter.platforms(platforms);
        }
        // force-update asks to update an image the application does not run yet; driftwatch
        // writes to Git whenever the registry differs, so it is always so. The value is checked.
        if let Some((v, key)) = setting("force-update")
            && !matches!(v.as_str(), "true" | "false")
        {
            return Err(cfg(file, &at(&key), "expected true or false"));
        }
        let credentials = match setting("pull-secret") {
            Some((spec, key)) => {
                // Secrets are read through the cluster the Applications come from; the
                // operator's files have none to read them from, and are told so.
                let parsed = match trust {
                    Trust::Cluster { .. } => driftwatch_registry::Source::parse_with_secrets(&spec),
                    Trust::Operator => driftwatch_registry::Source::parse(&spec),
                }
                .map_err(|e| cfg(file, &at(&key), &e.to_string()))?;
                if let Trust::Cluster { .. } = trust {
                    let refused = match parsed {
                        driftwatch_registry::Source::Ext(_) => Some(
                            "ext: credentials run a program on driftwatch's host and are \
                             refused in Applications read from the cluster",
                        ),
                        driftwatch_registry::Source::Env(_) => Some(
                            "env: credentials read driftwatch's own environment and are \
                             refused in Applications read from the cluster",
                        ),
                        driftwatch_registry::Source::DockerConfig(_)
                        | driftwatch_registry::Source::PullSecret { .. }
                        | driftwatch_registry::Source::Secret { .. } => None,
                    };
                    if let Some(why) = refused {
                        return Err(cfg(
                            file,
                            &at(&key),
                            &format!(
                                "{why}; use file:/path (a mounted pull secret) or the \
                                 operator's registries.conf"
                            ),
                        ));
                    }
                }
                Some(spec)
            }
            None => None,
        };
        let constraint = match strategy {
            Strategy::Semver | Strategy::Digest => entry.constraint.clone(),
            _ => None,
        };
        let policy = Policy::new(strategy, constraint.as_deref(), filter, Order::Asc)
            .map_err(|e| cfg(file, &at("image-list"), &e.to_string()))?;
        let mut target = Target::default();
        let mut file_name = None;
        let alias = entry.alias.clone().unwrap_or_default();
        if !alias.is_empty() {
            file_name = get(&format!("{alias}.kustomize.image-name"));
        }
        let helm_key = |k: &str| {
            if alias.is_empty() {
                None
            } else {
                get(&format!("{alias}.helm.{k}"))
            }
        };
        let (spec_path, name_path, tag_path) = (
            helm_key("image-spec"),
            helm_key("image-name"),
            helm_key("image-tag"),
        );
        if spec_path.is_some() && (name_path.is_some() || tag_path.is_some()) {
            return Err(cfg(
                file,
                &at(&format!("{alias}.helm.image-spec")),
                "image-spec excludes image-name and image-tag",
            ));
        }
        if is_helm || spec_path.is_some() || name_path.is_some() || tag_path.is_some() {
            match spec_path {
                Some(spec) => target.helm_path = Some(spec),
                None => {
                    target.helm_name_path =
                        Some(name_path.unwrap_or_else(|| "image.name".to_owned()));
                    target.helm_path = Some(tag_path.unwrap_or_else(|| "image.tag".to_owned()));
                }
            }
        }
        let written = entry.written.clone();
        images.push(TrackedImage {
            // argocd-image-updater has neither approvals nor release ages.
            approval_required: false,
            min_release_age: None,
            promote: None,
            alias: entry.alias.clone(),
            implicit_registry: !written.split('/').next().is_some_and(|first| {
                written.contains('/') && (first.contains(['.', ':']) || first == "localhost")
            }),
            image: entry.image,
            written,
            file_name,
            policy,
            target,
            credentials,
            file: None,
        });
    }
    let mut sync = sync;
    if let Some((chart_ref, policy)) = chart {
        let chart_file = match write_back {
            crate::model::WriteBack::Application if multi => {
                return Err(cfg(
                    file,
                    &at("write-back-method"),
                    "a multi-source Application's chart version is written to Git only: set \
                     write-back-method git with driftwatch.io/chart-version-file",
                ));
            }
            crate::model::WriteBack::Application => None,
            crate::model::WriteBack::Git => {
                if repo.is_empty() {
                    return Err(cfg(
                        file,
                        &at("git-repository"),
                        "a chart's version written to Git needs the Git repository named here \
                         (spec.source.repoURL is the chart's registry)",
                    ));
                }
                let written = dw_get("chart-version-file").ok_or_else(|| {
                    cfg(
                        file,
                        &dw_at("chart-version-file"),
                        "missing: a chart's version written to Git needs the file, in the \
                         repository, that holds this Application (or the kustomization naming \
                         the chart)",
                    )
                })?;
                let path = driftwatch_git::normalize(&written).map_err(|r| {
                    cfg(
                        file,
                        &dw_at("chart-version-file"),
                        &format!("path {written:?} {r}"),
                    )
                })?;
                if path.is_empty() {
                    return Err(cfg(file, &dw_at("chart-version-file"), "names no file"));
                }
                Some(path)
            }
        };
        images.push(TrackedImage::chart(chart_ref, policy, chart_file));
        // driftwatch renders no Helm chart from a registry: Argo CD (or whatever renders the
        // chart) deploys it; the Application is followed for its version only.
        sync = None;
    }
    Ok(App {
        path: app_path,
        name,
        namespace,
        repo,
        branch,
        auth: Auth::None,
        file: file_path,
        template: DEFAULT_COMMIT_TEMPLATE.to_owned(),
        identity: Identity {
            name: "argocd-image-updater".to_owned(),
            email: "noreply@argoproj.io".to_owned(),
            signing: None,
            signoff: false,
        },
        images,
        sync,
        git_credentials,
        write_back,
        source_images,
        update_windows: Vec::new(),
        other_sources,
        helm: source.helm.clone(),
    })
}

/// The source of a multi-source Application that holds its images, as argocd-image-updater
/// picks it: by the write-back target's kind (`kustomization…` → Kustomize, `helmvalues…` →
/// Helm), else by the first Helm, Kustomize or Plugin type Argo CD detected
/// (`status.sourceTypes`); then the first source with that kind's block, else the one Argo CD
/// detected as that kind, else any source with a Helm, Kustomize or Plugin block. Where
/// argocd-image-updater would then take the first source whatever it is, driftwatch takes the
/// first with a `path` (a `ref`-only source holds no manifests) and refuses when there is none.
fn write_back_source(
    sources: &[Source],
    types: &[String],
    target: Option<&str>,
) -> Result<usize, String> {
    let target = target.map(str::trim).unwrap_or_default();
    let kind = if target.starts_with("kustomization") {
        Some("Kustomize")
    } else if target.starts_with("helmvalues") {
        Some("Helm")
    } else {
        types
            .iter()
            .map(String::as_str)
            .find(|t| matches!(*t, "Helm" | "Kustomize" | "Plugin"))
    };
    let has = |s: &Source, kind: &str| match kind {
        "Helm" => s.helm.is_some(),
        "Kustomize" => s.kustomize.is_some(),
        "Plugin" => s.plugin.is_some(),
        _ => false,
    };
    if let Some(kind) = kind {
        if let Some(i) = sources.iter().position(|s| has(s, kind)) {
            return Ok(i);
        }
        if types.len() == sources.len()
            && let Some(i) = types.iter().position(|t| t == kind)
        {
            return Ok(i);
        }
    }
    if let Some(i) = sources
        .iter()
        .position(|s| s.helm.is_some() || s.kustomize.is_some() || s.plugin.is_some())
    {
        return Ok(i);
    }
    sources
        .iter()
        .position(|s| s.path.as_deref().is_some_and(|p| !p.is_empty()))
        .ok_or_else(|| {
            "no source holds manifests (none has a path, nor a helm, kustomize or plugin \
             block)"
                .to_owned()
        })
}

/// Normalises a repository URL for comparison: no trailing `/` or `.git`, the host's case.
fn same_repository(a: &str, b: &str) -> bool {
    let norm = |u: &str| {
        u.trim()
            .trim_end_matches('/')
            .trim_end_matches(".git")
            .to_ascii_lowercase()
    };
    norm(a) == norm(b)
}

/// Another source of a multi-source Application, beside the one that holds its images.
fn other_source(
    chosen: &Source,
    other: Source,
    index: usize,
    app: &str,
    file: &str,
) -> Result<crate::model::OtherSource, Error> {
    let field = format!("Application {app}: spec.sources[{index}]");
    let repo = other.repo_url.clone().unwrap_or_default();
    let revision = |s: &Source| {
        s.target_revision
            .clone()
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| "HEAD".to_owned())
    };
    let path = match &other.path {
        Some(p) if !p.is_empty() => Some(
            driftwatch_git::normalize(p)
                .map_err(|r| cfg(file, &format!("{field}.path"), &format!("path {p:?} {r}")))?,
        ),
        _ => None,
    };
    let same_checkout = chosen
        .repo_url
        .as_deref()
        .is_some_and(|c| same_repository(c, &repo))
        && revision(chosen) == revision(&other);
    let what = match (&other.chart, &path) {
        (Some(chart), _) => format!(
            "{field} (chart {chart} from {})",
            driftwatch_git::redact_url(&repo)
        ),
        (None, Some(p)) => format!(
            "{field} ({p} in {} at {})",
            driftwatch_git::redact_url(&repo),
            revision(&other)
        ),
        (None, None) => format!("{field} ({})", driftwatch_git::redact_url(&repo)),
    };
    Ok(crate::model::OtherSource {
        reference: other.reference.clone(),
        path: if other.chart.is_none() { path } else { None },
        same_checkout: same_checkout && other.chart.is_none(),
        helm: other.helm.is_some() || other.chart.is_some(),
        what,
    })
}

/// How a repository URL reaches its repository.
#[derive(Debug, PartialEq, Eq)]
enum RepoKind {
    /// Over the network: `https://`, `http://`, `ssh://`, `git://` or scp-like `[user@]host:path`.
    Remote,
    /// On driftwatch's own file system: `file://` or a path.
    Local,
    /// Anything else Git might accept, such as `ext::command` (runs a program) or another
    /// remote helper: never taken from the cluster.
    Other,
}

fn repository_kind(url: &str) -> RepoKind {
    let url = url.trim();
    if let Some((scheme, _)) = url.split_once("://") {
        return match scheme.to_ascii_lowercase().as_str() {
            "https" | "http" | "ssh" | "git" | "git+ssh" | "ssh+git" => RepoKind::Remote,
            "file" => RepoKind::Local,
            _ => RepoKind::Other,
        };
    }
    if url.contains("::") {
        // `transport::address`: Git's remote-helper syntax.
        return RepoKind::Other;
    }
    // Git reads `host:path` as scp-like SSH only when no `/` comes before the first `:`;
    // otherwise (and without a colon at all) the URL is a local path.
    match url.split_once(':') {
        Some((host, path)) if !host.contains('/') && !host.is_empty() && !path.is_empty() => {
            let host = host.rsplit('@').next().unwrap_or(host);
            // `C:foo` is a Windows drive, not a host; a leading `-` would read as an option.
            if host.len() == 1 || host.starts_with('-') {
                RepoKind::Other
            } else {
                RepoKind::Remote
            }
        }
        _ if url.starts_with('-') => RepoKind::Other,
        _ => RepoKind::Local,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const APP: &str = r#"
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: shop
  namespace: argocd
  annotations:
    argocd-image-updater.argoproj.io/image-list: backend=registry.local:5000/shop/backend:~1.0, web=registry.local:5000/shop/web
    argocd-image-updater.argoproj.io/update-strategy: latest
    argocd-image-updater.argoproj.io/backend.update-strategy: semver
    argocd-image-updater.argoproj.io/backend.allow-tags: regexp:^v[0-9]+\.[0-9]+\.[0-9]+$
    argocd-image-updater.argoproj.io/backend.ignore-tags: "*-rc*, latest"
    argocd-image-updater.argoproj.io/web.kustomize.image-name: frontend
    argocd-image-updater.argoproj.io/write-back-method: git
    argocd-image-updater.argoproj.io/write-back-target: kustomization
    argocd-image-updater.argoproj.io/git-branch: main
spec:
  source:
    repoURL: file:///srv/git/shop.git
    path: manifests/overlays/production
    targetRevision: HEAD
---
apiVersion: v1
kind: ConfigMap
metadata: {name: ignored}
"#;

    #[test]
    fn annotations_with_precedence() {
        let apps = parse(APP, "apps.yaml").unwrap();
        assert_eq!(apps.len(), 1);
        let app = &apps[0];
        assert_eq!(app.file, "manifests/overlays/production/kustomization.yaml");
        assert_eq!(app.branch, "main");
        assert_eq!(app.images[0].policy.strategy(), Strategy::Semver);
        assert_eq!(app.images[0].policy.constraint().unwrap().as_str(), "~1.0");
        assert_eq!(
            app.images[1].policy.strategy(),
            Strategy::NewestBuild,
            "application-wide default"
        );
        assert_eq!(app.images[1].name_in_file(), "frontend");
        assert!(!app.images[0].implicit_registry);
    }

    #[test]
    fn a_destination_names_its_cluster_and_in_cluster_is_the_default() {
        let with = |dest: &str| {
            let text = APP.replace(
                "    targetRevision: HEAD\n",
                &format!("    targetRevision: HEAD\n  destination:\n{dest}    namespace: shop\n"),
            );
            parse(&text, "apps.yaml").unwrap()[0]
                .sync
                .clone()
                .unwrap()
                .cluster
        };
        assert_eq!(with("    server: https://kubernetes.default.svc\n"), None);
        assert_eq!(with("    server: https://kubernetes.default.svc/\n"), None);
        assert_eq!(with("    name: in-cluster\n"), None);
        assert_eq!(
            with("    server: https://prod.example:6443\n"),
            Some("https://prod.example:6443".to_owned())
        );
        assert_eq!(
            with("    name: prod\n    server: https://ignored\n"),
            Some("prod".to_owned()),
            "the name is taken (Argo CD refuses both)"
        );
    }

    #[test]
    fn destination_and_sync_policy() {
        assert_eq!(
            parse(APP, "apps.yaml").unwrap()[0].sync,
            None,
            "no destination"
        );
        let with = APP.replace(
            "    targetRevision: HEAD\n",
            "    targetRevision: HEAD\n  destination:\n    server: https://kubernetes.default.svc\n    namespace: shop\n  syncPolicy:\n    automated:\n      prune: true\n      selfHeal: true\n",
        );
        let sync = parse(&with, "apps.yaml").unwrap()[0].sync.clone().unwrap();
        assert_eq!(
            sync,
            crate::model::SyncPolicy {
                namespace: "shop".to_owned(),
                cluster: None,
                automated: true,
                self_heal: true,
                prune: true,
                allow_empty: false,
                ignore_differences: Vec::new(),
            }
        );
        let ignoring = with.replace(
            "  syncPolicy:\n",
            "  ignoreDifferences:\n  - group: apps\n    kind: Deployment\n    jsonPointers: [/spec/replicas]\n  - kind: ConfigMap\n    name: flags\n    managedFieldsManagers: [flagger]\n  syncPolicy:\n",
        );
        let sync = parse(&ignoring, "apps.yaml").unwrap()[0]
            .sync
            .clone()
            .unwrap();
        assert_eq!(
            sync.ignore_differences,
            vec![
                crate::model::IgnoreDifference {
                    kind: Some("Deployment".into()),
                    name: None,
                    json_pointers: vec!["/spec/replicas".into()],
                    managers: vec![],
                },
                crate::model::IgnoreDifference {
                    kind: Some("ConfigMap".into()),
                    name: Some("flags".into()),
                    json_pointers: vec![],
                    managers: vec!["flagger".into()],
                },
            ]
        );
        for (bad, path) in [
            ("jsonPointers: [/spec/replicas]", "jqPathExpressions"),
            ("jsonPointers: [spec/replicas]", "jsonPointers[0]"),
            ("jsonPointers: []", "spec.ignoreDifferences[0]"),
        ] {
            let text = ignoring.replace(
                "jsonPointers: [/spec/replicas]",
                if path == "jqPathExpressions" {
                    "jqPathExpressions: ['.spec.replicas']"
                } else {
                    bad
                },
            );
            let e = parse(&text, "apps.yaml").unwrap_err().to_string();
            assert!(e.contains("apps.yaml") && e.contains(path), "{path}: {e}");
        }
        let manual = APP.replace(
            "    targetRevision: HEAD\n",
            "    targetRevision: HEAD\n  destination:\n    server: https://kubernetes.default.svc\n",
        );
        let sync = parse(&manual, "apps.yaml").unwrap()[0]
            .sync
            .clone()
            .unwrap();
        assert!(!sync.automated && !sync.self_heal && !sync.prune);
        assert_eq!(sync.namespace, "default");
    }

    #[test]
    fn bad_annotations_name_the_key() {
        let bad = APP.replace("regexp:^v[0-9]+", "regexp:^(v[0-9]+");
        let err = parse(&bad, "apps.yaml").unwrap_err().to_string();
        assert!(
            err.contains("apps.yaml") && err.contains("backend.allow-tags"),
            "{err}"
        );
        let bad = APP.replace(
            "write-back-target: kustomization",
            "write-back-target: elsewhere",
        );
        let err = parse(&bad, "apps.yaml").unwrap_err().to_string();
        assert!(err.contains("write-back-target"), "{err}");
    }

    #[test]
    fn a_source_path_outside_the_repository_is_refused() {
        for (path, why) in [
            ("../../etc", "leaves the repository"),
            ("manifests/../../x", "leaves the repository"),
            ("/etc", "is absolute"),
        ] {
            let bad = APP.replace(
                "path: manifests/overlays/production",
                &format!("path: {path}"),
            );
            let err = parse(&bad, "apps.yaml").unwrap_err().to_string();
            assert!(
                err.contains("Application shop: spec.source.path")
                    && err.contains(&format!("{path:?}"))
                    && err.contains(why),
                "{err}"
            );
        }
        let fine = APP.replace(
            "path: manifests/overlays/production",
            "path: ./manifests/base/../overlays//production/",
        );
        assert_eq!(
            parse(&fine, "apps.yaml").unwrap()[0].path,
            "manifests/overlays/production"
        );
    }

    const CLUSTER: Trust = Trust::Cluster {
        allow_local_repositories: false,
    };

    #[test]
    fn cluster_applications_name_only_remote_repositories() {
        let from_cluster = |url: &str| {
            parse_with(
                &APP.replace("file:///srv/git/shop.git", url),
                "Applications in namespace argocd",
                CLUSTER,
            )
        };
        for url in [
            "https://git.example.com/shop.git",
            "ssh://git@git.example.com/shop.git",
            "git@git.example.com:org/shop.git",
            "git://git.example.com/shop.git",
        ] {
            assert!(from_cluster(url).is_ok(), "{url}");
        }
        for (url, why) in [
            ("file:///srv/git/shop.git", "is a local repository"),
            ("/srv/git/shop.git", "is a local repository"),
            ("../shop.git", "is a local repository"),
            ("FILE:///etc", "is a local repository"),
            ("ext::sh -c touch% /tmp/pwned", "transport"),
            ("fd::3", "transport"),
            ("-uhelp", "transport"),
            ("C:/shop", "transport"),
        ] {
            let err = from_cluster(url).unwrap_err().to_string();
            assert!(
                err.contains(
                    "Applications in namespace argocd: Application shop: spec.source.repoURL"
                ) && err.contains(why),
                "{url}: {err}"
            );
        }
        // The git-repository annotation is held to the same rule and named when it is the one.
        let annotated = APP.replace(
            "    argocd-image-updater.argoproj.io/git-branch: main\n",
            "    argocd-image-updater.argoproj.io/git-branch: main\n    argocd-image-updater.argoproj.io/git-repository: /srv/other.git\n",
        ).replace("file:///srv/git/shop.git", "https://git.example.com/shop.git");
        let err = parse_with(&annotated, "ns", CLUSTER)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("annotations[argocd-image-updater.argoproj.io/git-repository]"),
            "{err}"
        );
        // A credential in the URL is not repeated in the error.
        let err = from_cluster("file://bot:hunter2@/srv/x")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("hunter2"), "{err}");
        // The operator may allow local repositories; their own files are trusted as before.
        let allowed = Trust::Cluster {
            allow_local_repositories: true,
        };
        assert!(parse_with(APP, "ns", allowed).is_ok());
        assert!(
            parse_with(
                &APP.replace("file:///srv/git/shop.git", "ext::sh"),
                "ns",
                allowed
            )
            .is_err()
        );
        assert!(parse(APP, "apps.yaml").is_ok());
    }

    #[test]
    fn git_credentials_follow_the_write_back_method() {
        use crate::model::GitCredentialsFrom;
        let remote = APP.replace(
            "file:///srv/git/shop.git",
            "https://git.example.com/shop.git",
        );
        let with = |method: &str| {
            remote.replace(
                "write-back-method: git\n",
                &format!("write-back-method: \"{method}\"\n"),
            )
        };
        let from_cluster = |method: &str| {
            parse_with(&with(method), "ns", CLUSTER).map(|a| a[0].git_credentials.clone())
        };
        let repocreds = Some(GitCredentialsFrom::RepoCreds {
            namespace: "argocd".into(),
        });
        assert_eq!(from_cluster("git").unwrap(), repocreds);
        assert_eq!(from_cluster("git:repocreds").unwrap(), repocreds);
        assert_eq!(
            from_cluster("git:secret:argocd-image-updater/git-creds").unwrap(),
            Some(GitCredentialsFrom::Secret {
                namespace: "argocd-image-updater".into(),
                name: "git-creds".into()
            })
        );
        assert_eq!(from_cluster("argocd").unwrap(), None);
        for bad in ["git:secret:nons", "git:secret:/x", "git:vault", "svn"] {
            let e = from_cluster(bad).unwrap_err().to_string();
            assert!(
                e.contains("write-back-method") && e.contains("expected"),
                "{bad}: {e}"
            );
        }
        // The operator's files: no cluster to read from; naming a Secret is refused.
        assert_eq!(parse(&with("git"), "f").unwrap()[0].git_credentials, None);
        let e = parse(&with("git:secret:ns/creds"), "f")
            .unwrap_err()
            .to_string();
        assert!(e.contains("--applications-from-cluster"), "{e}");
    }

    #[test]
    fn cluster_applications_may_not_run_programs_or_read_the_environment() {
        for (spec, scheme) in [
            ("ext:/bin/sh", "ext:"),
            ("env:AWS_SECRET_ACCESS_KEY", "env:"),
        ] {
            let text = APP
                .replace(
                    "    argocd-image-updater.argoproj.io/git-branch: main\n",
                    &format!("    argocd-image-updater.argoproj.io/git-branch: main\n    argocd-image-updater.argoproj.io/backend.pull-secret: {spec}\n"),
                )
                .replace("file:///srv/git/shop.git", "https://git.example.com/shop.git");
            let err = parse_with(&text, "Applications in namespace argocd", CLUSTER)
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("Application shop: metadata.annotations[argocd-image-updater.argoproj.io/backend.pull-secret]")
                    && err.contains(&format!("{scheme} credentials"))
                    && err.contains("refused in Applications read from the cluster"),
                "{err}"
            );
            // The operator's own files may use them.
            assert!(parse(&text, "apps.yaml").is_ok(), "{spec}");
        }
        let mounted = APP
            .replace(
                "    argocd-image-updater.argoproj.io/git-branch: main\n",
                "    argocd-image-updater.argoproj.io/git-branch: main\n    argocd-image-updater.argoproj.io/pull-secret: file:/var/run/pull/config.json\n",
            )
            .replace("file:///srv/git/shop.git", "https://git.example.com/shop.git");
        assert!(parse_with(&mounted, "ns", CLUSTER).is_ok());
        // Kubernetes Secrets are read through the cluster the Applications come from; the
        // operator's files have no cluster to read them from and are told so.
        for spec in ["pullsecret:argocd/regcred", "secret:argocd/creds#pair"] {
            let text = mounted.replace("file:/var/run/pull/config.json", spec);
            let apps = parse_with(&text, "ns", CLUSTER).unwrap();
            assert_eq!(apps[0].images[0].credentials.as_deref(), Some(spec));
            let err = parse(&text, "apps.yaml").unwrap_err().to_string();
            assert!(
                err.contains("annotations[argocd-image-updater.argoproj.io/pull-secret]")
                    && err.contains("--applications-from-cluster"),
                "{err}"
            );
        }
    }

    const MULTI: &str = r#"
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: shop
  namespace: argocd
  annotations:
    argocd-image-updater.argoproj.io/image-list: api=registry.example.com/api:~1.0
    argocd-image-updater.argoproj.io/write-back-method: git
    argocd-image-updater.argoproj.io/write-back-target: kustomization
spec:
  sources:
  - repoURL: https://git.example.com/shop.git
    path: config
    targetRevision: main
  - repoURL: https://charts.example.com
    chart: redis
    targetRevision: 20.1.0
    helm: {valueFiles: [$values/redis/values.yaml]}
  - repoURL: https://git.example.com/shop.git
    path: overlays/prod
    targetRevision: main
    kustomize: {}
  - repoURL: https://git.example.com/shop.git
    ref: values
    targetRevision: main
"#;

    #[test]
    fn multi_source_writes_back_to_the_source_holding_the_images() {
        let app = &parse(MULTI, "apps.yaml").unwrap()[0];
        assert_eq!(app.path, "overlays/prod", "the kustomize source");
        assert_eq!(app.file, "overlays/prod/kustomization.yaml");
        assert_eq!(app.repo, "https://git.example.com/shop.git");
        assert_eq!(app.branch, "main");
        let others: Vec<_> = app
            .other_sources
            .iter()
            .map(|o| {
                (
                    o.what.as_str(),
                    o.path.as_deref(),
                    o.same_checkout,
                    o.renders(),
                )
            })
            .collect();
        assert_eq!(
            others,
            [
                (
                    "Application shop: spec.sources[0] (config in https://git.example.com/shop.git at main)",
                    Some("config"),
                    true,
                    true
                ),
                (
                    "Application shop: spec.sources[1] (chart redis from https://charts.example.com)",
                    None,
                    false,
                    true
                ),
                (
                    "Application shop: spec.sources[3] (https://git.example.com/shop.git)",
                    None,
                    true,
                    false
                ),
            ]
        );
        assert_eq!(app.other_sources[2].reference.as_deref(), Some("values"));

        // helmvalues: the Helm source; no target: the first source with a block (the chart's).
        let helm = MULTI.replace(
            "target: kustomization",
            "target: helmvalues:/redis/values.yaml",
        );
        assert_eq!(
            parse(&helm, "f").unwrap()[0].repo,
            "https://charts.example.com"
        );
        // An implicit Kustomize source (no block), found by Argo CD's status.sourceTypes.
        let implicit = format!(
            "{}status:\n  sourceTypes: [Directory, Helm, Kustomize, Directory]\n",
            MULTI
                .replace("    kustomize: {}\n", "")
                .replace("    helm: {valueFiles: [$values/redis/values.yaml]}\n", "")
        );
        assert_eq!(parse(&implicit, "f").unwrap()[0].path, "overlays/prod");
        // Without blocks or status: the first source with a path.
        let plain = MULTI
            .replace("    kustomize: {}\n", "")
            .replace("    helm: {valueFiles: [$values/redis/values.yaml]}\n", "")
            .replace(
                "write-back-target: kustomization",
                "write-back-target: argocd",
            );
        let app = &parse(&plain, "f").unwrap()[0];
        assert_eq!(app.path, "config");
        assert_eq!(app.file, "config/.argocd-source-shop.yaml");
        // Only ref sources: nothing holds manifests.
        let refs = "apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: refs
  annotations:
    argocd-image-updater.argoproj.io/image-list: api=registry.example.com/api
spec:
  sources:
  - {repoURL: https://git.example.com/a.git, ref: values}
";
        let e = parse(refs, "apps.yaml").unwrap_err().to_string();
        assert!(
            e.contains("Application refs: spec.sources") && e.contains("no source holds manifests"),
            "{e}"
        );
        // A source path outside its repository is refused, naming the source.
        let bad = MULTI.replace("path: config", "path: ../../etc");
        let e = parse(&bad, "apps.yaml").unwrap_err().to_string();
        assert!(e.contains("spec.sources[0].path"), "{e}");
    }

    #[test]
    fn multi_source_git_repository_takes_that_sources_revision() {
        let text = MULTI
            .replace(
                "    argocd-image-updater.argoproj.io/write-back-target: kustomization\n",
                "    argocd-image-updater.argoproj.io/write-back-target: kustomization\n    argocd-image-updater.argoproj.io/git-repository: https://git.example.com/values.git\n",
            )
            .replace(
                "  - repoURL: https://git.example.com/shop.git\n    ref: values\n    targetRevision: main",
                "  - repoURL: https://git.example.com/values.git\n    ref: values\n    targetRevision: release",
            );
        let app = &parse(&text, "f").unwrap()[0];
        assert_eq!(app.repo, "https://git.example.com/values.git");
        assert_eq!(app.branch, "release");
    }

    #[test]
    fn multi_source_argocd_write_back_is_refused() {
        let live = MULTI.replace("write-back-method: git", "write-back-method: argocd");
        let e = parse_with(
            &live,
            "ns",
            Trust::Cluster {
                allow_local_repositories: false,
            },
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("write-back-method") && e.contains("multi-source") && e.contains("use git"),
            "{e}"
        );
    }

    const CHART_APP: &str = r#"
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: web
  annotations:
    driftwatch.io/chart-version: "~1.4"
    driftwatch.io/chart-version-file: apps/web.yaml
    argocd-image-updater.argoproj.io/git-repository: https://git.example.com/apps.git
spec:
  source:
    repoURL: registry.example.com/charts
    chart: web
    targetRevision: 1.4.0
  destination: {server: "https://kubernetes.default.svc", namespace: web}
"#;

    #[test]
    fn an_oci_chart_opted_in_by_annotation() {
        let apps = parse(CHART_APP, "apps.yaml").unwrap();
        let app = &apps[0];
        assert_eq!(app.repo, "https://git.example.com/apps.git");
        assert_eq!(app.branch, "HEAD", "targetRevision is the chart's version");
        assert_eq!(app.sync, None, "driftwatch renders no OCI chart");
        assert_eq!(app.images.len(), 1);
        let chart = &app.images[0];
        assert_eq!(chart.written, "chart:oci://registry.example.com/charts/web");
        assert_eq!(chart.file.as_deref(), Some("apps/web.yaml"));
        assert_eq!(chart.policy.constraint().unwrap().as_str(), "~1.4");
        let filtered = CHART_APP.replace(
            "    driftwatch.io/chart-version: \"~1.4\"\n",
            "    driftwatch.io/chart-version: \"~1.4\"\n    driftwatch.io/chart-ignore-tags: \"1.4.3, *-rc*\"\n",
        );
        let policy = &parse(&filtered, "apps.yaml").unwrap()[0].images[0].policy;
        let versions = ["1.4.2", "1.4.3", "1.4.4-rc1"].map(driftwatch_policy::Candidate::new);
        assert_eq!(policy.select(&versions), Some(0), "1.4.3 is ignored");
        // From the cluster with argocd write-back: the live Application, no file or repository.
        let live = CHART_APP
            .replace("    driftwatch.io/chart-version-file: apps/web.yaml\n", "")
            .replace(
                "    argocd-image-updater.argoproj.io/git-repository: https://git.example.com/apps.git\n",
                "",
            );
        let apps = parse_with(
            &live,
            "cluster",
            Trust::Cluster {
                allow_local_repositories: false,
            },
        )
        .unwrap();
        assert_eq!(apps[0].write_back, crate::model::WriteBack::Application);
        assert_eq!(apps[0].images[0].file, None);
        for (from, to, field) in [
            ("~1.4", "~1.x.y", "driftwatch.io/chart-version]"),
            ("\"~1.4\"", "\"\"", "driftwatch.io/chart-version]"),
            (
                "    driftwatch.io/chart-version: \"~1.4\"\n",
                "    driftwatch.io/chart-version: \"~1.4\"\n    driftwatch.io/chart-allow-tags: \"regexp:(\"\n",
                "driftwatch.io/chart-allow-tags]",
            ),
            (
                "repoURL: registry.example.com/charts",
                "repoURL: https://charts.example.com",
                "spec.source.repoURL",
            ),
            (
                "    driftwatch.io/chart-version-file: apps/web.yaml\n",
                "",
                "driftwatch.io/chart-version-file]",
            ),
            (
                "    argocd-image-updater.argoproj.io/git-repository: https://git.example.com/apps.git\n",
                "",
                "argocd-image-updater.argoproj.io/git-repository]",
            ),
        ] {
            let e = parse(&CHART_APP.replace(from, to), "apps.yaml")
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("Application web") && e.contains(field),
                "{to}: {e}"
            );
        }
    }

    #[test]
    fn a_multi_source_application_follows_its_oci_chart_in_git() {
        let multi = CHART_APP.replace(
            "  source:\n    repoURL: registry.example.com/charts\n    chart: web\n    targetRevision: 1.4.0\n",
            "  sources:\n  - repoURL: https://git.example.com/values.git\n    targetRevision: main\n    ref: values\n  - repoURL: oci://registry.example.com/charts/web\n    targetRevision: 1.4.0\n",
        );
        assert_ne!(multi, CHART_APP);
        let apps = parse(&multi, "apps.yaml").unwrap();
        assert_eq!(
            apps[0].images[0].written,
            "chart:oci://registry.example.com/charts/web"
        );
        assert_eq!(apps[0].branch, "HEAD");
        // No OCI chart among the sources: refused naming them.
        let e = parse(
            &multi.replace(
                "oci://registry.example.com/charts/web",
                "https://charts.example.com",
            ),
            "apps.yaml",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("Application web: spec.sources"), "{e}");
        // Read from the cluster, the live write-back of one source of many is refused.
        let live = multi.replace(
            "    argocd-image-updater.argoproj.io/git-repository: https://git.example.com/apps.git\n",
            "",
        );
        let e = parse_with(
            &live,
            "cluster",
            Trust::Cluster {
                allow_local_repositories: false,
            },
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("write-back-method]") && e.contains("multi-source"),
            "{e}"
        );
    }
}
