//! Where the applications come from: driftwatch.yaml, Argo CD Application manifests on disk,
//! or the Applications in a namespace of the cluster (read again before every cycle, as
//! argocd-image-updater follows them).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use driftwatch_engine::{App, Config};
use driftwatch_registry::RegistriesConf;

use crate::error::Error;

/// How argocd-image-updater polls by default, for applications that name no interval.
const ARGO_INTERVAL: Duration = Duration::from_secs(120);

/// Where the applications are read from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Applications {
    /// The native configuration file.
    Config(PathBuf),
    /// Argo CD Application manifests with argocd-image-updater annotations, and ImageUpdaters
    /// selecting them (file or directory).
    Manifests(PathBuf),
    /// The Argo CD Applications (and ImageUpdaters) in this namespace of this cluster.
    Cluster {
        /// The namespace.
        namespace: String,
        /// The cluster: kubeconfig and context.
        cluster: driftwatch_cluster::KubeTarget,
        /// Accept `file://` and local-path repositories in these Applications (whoever may
        /// create one would otherwise reach any repository on this host). `ext:` and `env:`
        /// pull-secrets are refused either way.
        allow_local_repositories: bool,
        /// Namespaces besides an Application's own whose Secrets it may name (`pullsecret:`,
        /// `secret:`, `git:secret:`).
        secret_namespaces: Vec<String>,
    },
}

/// The applications' source and an optional registries.conf that overrides the registries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppSource {
    /// Where the applications are read from.
    pub applications: Applications,
    /// argocd-image-updater's registries.conf.
    pub registries_conf: Option<PathBuf>,
    /// The namespace Argo CD runs in: its Applications write `.argocd-source-<name>.yaml`,
    /// those of other namespaces `.argocd-source-<namespace>_<name>.yaml`.
    pub argocd_namespace: String,
}

/// What a source holds now.
#[derive(Clone, Debug)]
pub struct Loaded {
    /// The applications.
    pub apps: Vec<App>,
    /// The registries and their credentials.
    pub registries: RegistriesConf,
    /// The interval the configuration asks for.
    pub interval: Duration,
    /// Where to tell what happened (only `driftwatch.yaml` has them).
    pub notifications: Vec<driftwatch_engine::notification::Notifier>,
    /// Applications of the cluster that are not valid, each error naming it: left out while
    /// the others go on.
    pub rejected: Vec<String>,
    /// Reads the Secrets of `pullsecret:` and `secret:` credentials: the cluster the
    /// Applications come from (`None` for files, where those are refused).
    pub secrets: Option<driftwatch_registry::Secrets>,
    /// Reads the Git credentials of Applications read from the cluster (`None` for files).
    pub git_credentials: Option<driftwatch_engine::GitCredentials>,
    /// Writes the live Applications of `write-back-method: argocd` (`None` for files).
    pub applications: Option<driftwatch_engine::Applications>,
}

/// The live Argo CD Applications of the cluster they were read from.
struct KubeApplications(Arc<driftwatch_cluster::KubeClient>);

/// The Application `namespace/name` as an object to get or apply.
fn application_ref(namespace: &str, name: &str) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": name, "namespace": namespace},
    })
}

impl driftwatch_engine::ApplicationWriter for KubeApplications {
    fn source<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
    ) -> driftwatch_engine::Pending<'a, (serde_json::Value, String)> {
        Box::pin(async move {
            let live = self
                .0
                .get(&application_ref(namespace, name), namespace)
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("Application {namespace}/{name} no longer exists"))?;
            let source = live.pointer("/spec/source").cloned().ok_or_else(|| {
                format!(
                    "Application {namespace}/{name} has no spec.source (a multi-source \
                     Application: write-back-method argocd needs one source)"
                )
            })?;
            let version = live
                .pointer("/metadata/resourceVersion")
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default()
                .to_owned();
            Ok((source, version))
        })
    }

    fn set<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
        resource_version: &'a str,
        fields: serde_json::Value,
        note: &'a str,
    ) -> driftwatch_engine::Pending<'a, ()> {
        Box::pin(async move {
            // Server-side apply of these fields alone, as driftwatch's field manager: nothing
            // else of the Application is sent, so nothing else changes. The resourceVersion
            // makes a change made since it was read a conflict, tried again next cycle,
            // rather than overwritten.
            let mut patch = application_ref(namespace, name);
            if !resource_version.is_empty() {
                patch["metadata"]["resourceVersion"] = resource_version.into();
            }
            patch["spec"] = serde_json::json!({ "source": fields });
            let applied = self
                .0
                .apply(&patch, namespace, driftwatch_cluster::FIELD_MANAGER, false)
                .await
                .map_err(|e| e.to_string())?;
            // An Event on the Application, where Argo CD users look; one that is refused is
            // only logged (events are for people), and is waited for so a single pass that
            // exits at once still records it.
            let event = driftwatch_cluster::ObjectEvent {
                warning: false,
                reason: "ImagesUpdated",
                action: "Update",
                note: note.to_owned(),
            };
            if let Some(recording) = self.0.record(&applied, event) {
                let _ = recording.await;
            }
            Ok(())
        })
    }
}

/// The label Argo CD marks its Secrets with, and the kinds of credential Secrets.
const SECRET_TYPE: &str = "argocd.argoproj.io/secret-type";

/// Git credentials through the cluster: a Secret named by `git:secret:`, or Argo CD's
/// repository and repo-creds Secrets.
struct KubeGitCredentials(Arc<driftwatch_cluster::KubeClient>);

/// A repository URL as Argo CD compares them: without a trailing `/` or `.git`, case aside.
fn normalize_repo(url: &str) -> String {
    let url = url.trim().trim_end_matches('/');
    url.strip_suffix(".git").unwrap_or(url).to_ascii_lowercase()
}

/// Argo CD's SSH known hosts: the ConfigMap and its key.
const KNOWN_HOSTS: (&str, &str) = ("argocd-ssh-known-hosts-cm", "ssh_known_hosts");

/// The credentials a Secret's data hold: an SSH key (written to `key_dir`, mode 0600, named
/// after the Secret, checking hosts against `known_hosts` when given) or a username and
/// password; `what` names the Secret in errors.
fn auth_of(
    data: &std::collections::BTreeMap<String, Vec<u8>>,
    what: &str,
    key_dir: &Path,
    known_hosts: Option<PathBuf>,
) -> Result<driftwatch_git::Auth, String> {
    let text = |field: &str| -> Result<Option<String>, String> {
        data.get(field)
            .map(|v| {
                String::from_utf8(v.clone())
                    .map_err(|_| format!("{what}: field {field} is not text"))
            })
            .transpose()
    };
    if let Some(key) = text("sshPrivateKey")?.filter(|k| !k.trim().is_empty()) {
        std::fs::create_dir_all(key_dir)
            .map_err(|e| format!("{what}: cannot write its key to {}: {e}", key_dir.display()))?;
        // One file per Secret: every byte but letters and digits escaped, so two Secrets
        // never share a name (`a-b/c` and `a/b-c` would with a plain replacement).
        let file = key_dir.join(
            what.bytes()
                .map(|b| {
                    if b.is_ascii_alphanumeric() {
                        char::from(b).to_string()
                    } else {
                        format!("_{b:02x}")
                    }
                })
                .collect::<String>(),
        );
        write_private(&file, &key)
            .map_err(|e| format!("{what}: cannot write its key to {}: {e}", file.display()))?;
        return Ok(driftwatch_git::Auth::SshKey {
            key: file,
            known_hosts,
        });
    }
    match (text("username")?, text("password")?) {
        (Some(username), Some(password)) => Ok(driftwatch_git::Auth::Basic {
            username,
            password: driftwatch_git::Secret::new(password),
        }),
        (_, None) if data.contains_key("username") => Err(format!("{what} has no field password")),
        _ => Err(format!(
            "{what} has neither fields username and password nor sshPrivateKey"
        )),
    }
}

/// Writes a private key readable by this user alone (ssh refuses others), replacing it.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(text.as_bytes())?;
    // ssh reads a key only when it ends with a newline.
    if !text.ends_with('\n') {
        f.write_all(b"\n")?;
    }
    drop(f);
    std::fs::rename(&tmp, path)
}

impl KubeGitCredentials {
    /// Argo CD's SSH known hosts in `namespace` (its ConfigMap), written below `key_dir` for
    /// ssh to check servers against; `None` when there is no such ConfigMap (ssh then checks
    /// against the user's known hosts, strictly).
    async fn known_hosts(
        &self,
        namespace: &str,
        key_dir: &Path,
    ) -> Result<Option<PathBuf>, String> {
        let wanted = serde_json::json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": KNOWN_HOSTS.0, "namespace": namespace},
        });
        let Some(cm) = self
            .0
            .get(&wanted, namespace)
            .await
            .map_err(|e| e.to_string())?
        else {
            return Ok(None);
        };
        let Some(text) = cm
            .pointer(&format!("/data/{}", KNOWN_HOSTS.1))
            .and_then(serde_json::Value::as_str)
        else {
            return Ok(None);
        };
        std::fs::create_dir_all(key_dir)
            .map_err(|e| format!("cannot write known hosts to {}: {e}", key_dir.display()))?;
        let file = key_dir.join(format!("known_hosts-{namespace}"));
        write_private(&file, text)
            .map_err(|e| format!("cannot write known hosts to {}: {e}", file.display()))?;
        Ok(Some(file))
    }

    /// The known hosts for `data`'s SSH key, when it holds one.
    async fn hosts_for(
        &self,
        data: &std::collections::BTreeMap<String, Vec<u8>>,
        namespace: &str,
        key_dir: &Path,
    ) -> Result<Option<PathBuf>, String> {
        if data.get("sshPrivateKey").is_some_and(|k| !k.is_empty()) {
            self.known_hosts(namespace, key_dir).await
        } else {
            Ok(None)
        }
    }
}

impl driftwatch_engine::GitCredentialReader for KubeGitCredentials {
    fn read<'a>(
        &'a self,
        from: &'a driftwatch_engine::GitCredentialsFrom,
        repo: &'a str,
        app_namespace: &'a str,
        key_dir: &'a Path,
    ) -> driftwatch_engine::Pending<'a, driftwatch_git::Auth> {
        Box::pin(async move {
            match from {
                driftwatch_engine::GitCredentialsFrom::Secret { namespace, name } => {
                    let what = format!("Secret {namespace}/{name}");
                    match self.0.secret(namespace, name).await {
                        Ok(Some(data)) => {
                            let hosts = self.hosts_for(&data, app_namespace, key_dir).await?;
                            auth_of(&data, &what, key_dir, hosts)
                        }
                        Ok(None) => Err(format!("{what} not found")),
                        Err(e) => Err(e.to_string()),
                    }
                }
                driftwatch_engine::GitCredentialsFrom::RepoCreds { namespace } => {
                    let want = normalize_repo(repo);
                    // A repository Secret for exactly this URL wins; then the credential
                    // template whose URL is the longest prefix of it, as Argo CD chooses.
                    let repositories = self
                        .0
                        .secrets_labelled(namespace, &format!("{SECRET_TYPE}=repository"))
                        .await
                        .map_err(|e| e.to_string())?;
                    let url_of = |data: &std::collections::BTreeMap<String, Vec<u8>>| {
                        data.get("url")
                            .and_then(|u| String::from_utf8(u.clone()).ok())
                            .unwrap_or_default()
                    };
                    if let Some((name, data)) = repositories
                        .iter()
                        .find(|(_, d)| normalize_repo(&url_of(d)) == want)
                    {
                        let hosts = self.hosts_for(data, app_namespace, key_dir).await?;
                        return auth_of(
                            data,
                            &format!("Secret {namespace}/{name}"),
                            key_dir,
                            hosts,
                        )
                        .or_else(|e| {
                            // A public repository may be registered without credentials.
                            if data.contains_key("username") || data.contains_key("sshPrivateKey") {
                                Err(e)
                            } else {
                                Ok(driftwatch_git::Auth::None)
                            }
                        });
                    }
                    let templates = self
                        .0
                        .secrets_labelled(namespace, &format!("{SECRET_TYPE}=repo-creds"))
                        .await
                        .map_err(|e| e.to_string())?;
                    let lower = repo.trim().to_ascii_lowercase();
                    let best = templates
                        .iter()
                        .map(|(n, d)| (n, d, url_of(d).trim().to_ascii_lowercase()))
                        .filter(|(_, _, url)| !url.is_empty() && lower.starts_with(url.as_str()))
                        .max_by_key(|(_, _, url)| url.len());
                    match best {
                        Some((name, data, _)) => {
                            let hosts = self.hosts_for(data, app_namespace, key_dir).await?;
                            auth_of(data, &format!("Secret {namespace}/{name}"), key_dir, hosts)
                        }
                        // No credentials registered: a public repository.
                        None => Ok(driftwatch_git::Auth::None),
                    }
                }
            }
        })
    }
}

/// The Applications and ImageUpdaters read from the cluster in `namespace`, each parsed on
/// its own and then resolved together: the applications that are valid, and for the others
/// (and for ImageUpdaters that are not valid) the error naming them (logged here too).
fn parse_each<'a>(
    items: impl IntoIterator<Item = &'a serde_json::Value>,
    namespace: &str,
    trust: driftwatch_engine::argocd::Trust,
    secret_namespaces: &[String],
    argocd_namespace: &str,
) -> (Vec<App>, Vec<String>) {
    let origin = format!("Applications in namespace {namespace}");
    let mut apps = Vec::new();
    let mut rejected = Vec::new();
    let mut docs = Vec::new();
    for v in items {
        // JSON is YAML: the same parser reads the cluster's objects.
        match driftwatch_engine::argocd::documents(&format!("---\n{v}\n"), &origin) {
            Ok(found) => docs.extend(found),
            Err(e) => {
                let name = v
                    .pointer("/metadata/name")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or_default();
                let kind = v
                    .pointer("/kind")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or_default();
                tracing::error!(kind = %kind, name = %name, error = %e, "left out");
                rejected.push(e.to_string());
            }
        }
    }
    for found in driftwatch_engine::argocd::resolve(docs, trust, argocd_namespace) {
        let checked = found.map_err(|e| e.to_string()).and_then(|app| {
            secrets_allowed(&app, secret_namespaces).map_err(|why| format!("{origin}: {why}"))?;
            Ok(app)
        });
        match checked {
            Ok(app) => apps.push(app),
            Err(e) => {
                tracing::error!(error = %e, "Application or ImageUpdater left out");
                rejected.push(e);
            }
        }
    }
    (apps, rejected)
}

/// The ImageUpdaters of `namespace`: none when their CRD is not installed (404), and none
/// with a warning when driftwatch may not list them (403: its RBAC predates them).
async fn image_updaters(
    client: &driftwatch_cluster::KubeClient,
    namespace: &str,
) -> Result<(Vec<serde_json::Value>, Option<String>), Error> {
    match client
        .list(
            driftwatch_engine::argocd::IMAGE_UPDATER_API_VERSION,
            "ImageUpdater",
            namespace,
        )
        .await
    {
        Ok(items) => Ok((items, None)),
        Err(e) if e.status_code() == Some(404) => Ok((Vec::new(), None)),
        Err(e) if e.status_code() == Some(403) => {
            tracing::warn!(error = %e, "ImageUpdaters are not read: listing them is forbidden");
            Ok((Vec::new(), Some(e.to_string())))
        }
        Err(e) => Err(e.into()),
    }
}

/// Keeps `live` (name → object) as a watch's event says; a failed watch is the error.
fn follow(
    live: &mut std::collections::BTreeMap<String, serde_json::Value>,
    event: driftwatch_cluster::Watched,
) -> Result<(), String> {
    let name_of = |v: &serde_json::Value| {
        v.pointer("/metadata/name")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    match event {
        driftwatch_cluster::Watched::Listed(items) => {
            *live = items.into_iter().map(|v| (name_of(&v), v)).collect();
        }
        driftwatch_cluster::Watched::Applied(v) => {
            live.insert(name_of(&v), v);
        }
        driftwatch_cluster::Watched::Deleted(v) => {
            live.remove(&name_of(&v));
        }
        driftwatch_cluster::Watched::Failed(e) => return Err(e),
    }
    Ok(())
}

/// Whether every Secret `app` names lives in its own namespace or one the operator allowed:
/// whoever may create an Application chooses where the credentials go (the image's registry,
/// the repository's server), so it may not choose any Secret driftwatch can read.
fn secrets_allowed(app: &App, allowed: &[String]) -> Result<(), String> {
    let ok = |ns: &str| ns == app.namespace || allowed.iter().any(|a| a == ns);
    let refuse = |what: &str, ns: &str| {
        Err(format!(
            "Application {}: {what} names a Secret in namespace {ns:?}; Applications may name \
             only their own namespace's unless driftwatch runs with \
             --allow-secret-namespace {ns}",
            app.name
        ))
    };
    for img in &app.images {
        if let Some(spec) = &img.credentials
            && let Ok(source) = driftwatch_registry::Source::parse_with_secrets(spec)
        {
            let ns = match &source {
                driftwatch_registry::Source::PullSecret { namespace, .. }
                | driftwatch_registry::Source::Secret { namespace, .. } => namespace,
                _ => continue,
            };
            if !ok(ns) {
                return refuse(&format!("the pull-secret of {}", img.written), ns);
            }
        }
    }
    if let Some(driftwatch_engine::GitCredentialsFrom::Secret { namespace, .. }) =
        &app.git_credentials
        && !ok(namespace)
    {
        return refuse("write-back-method", namespace);
    }
    Ok(())
}

/// Reads Secrets by name through the cluster the Applications come from.
struct KubeSecrets(Arc<driftwatch_cluster::KubeClient>);

impl driftwatch_registry::SecretReader for KubeSecrets {
    fn read<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
    ) -> driftwatch_registry::SecretRead<'a> {
        Box::pin(async move {
            self.0
                .secret(namespace, name)
                .await
                .map_err(|e| e.to_string())
        })
    }
}

fn registries_file(p: &Path) -> Result<RegistriesConf, Error> {
    let text = std::fs::read_to_string(p).map_err(|e| Error::Read {
        file: p.display().to_string(),
        reason: e.to_string(),
    })?;
    Ok(RegistriesConf::parse(&text, &p.display().to_string())?)
}

impl AppSource {
    /// Whether the applications live in the cluster (and so may change while running).
    pub fn follows_cluster(&self) -> bool {
        matches!(self.applications, Applications::Cluster { .. })
    }

    /// The namespace Applications are read from, when they come from the cluster: where Argo
    /// CD's cluster Secrets are looked for.
    pub fn cluster_namespace(&self) -> Option<String> {
        match &self.applications {
            Applications::Cluster { namespace, .. } => Some(namespace.clone()),
            _ => None,
        }
    }

    /// For Applications in the cluster, follows them with a watch instead of listing them
    /// again: after every change (and after every relist) the receiver gets all of them,
    /// parsed one by one — an Application that is not valid is logged, naming it, and left out
    /// while the others go on. `None` for files. The watch ends with `stop` or when the
    /// receiver is dropped.
    pub fn watch(
        &self,
        stop: crate::Shutdown,
    ) -> Result<Option<tokio::sync::mpsc::UnboundedReceiver<Vec<App>>>, Error> {
        let Applications::Cluster {
            namespace,
            cluster,
            allow_local_repositories,
            secret_namespaces,
        } = &self.applications
        else {
            return Ok(None);
        };
        let client = Arc::new(driftwatch_cluster::KubeClient::connect(cluster)?);
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let namespace = namespace.clone();
        let argocd_namespace = self.argocd_namespace.clone();
        let secret_namespaces = secret_namespaces.clone();
        let trust = driftwatch_engine::argocd::Trust::Cluster {
            allow_local_repositories: *allow_local_repositories,
        };
        tokio::spawn(async move {
            use futures_util::StreamExt;
            let mut stream =
                client
                    .clone()
                    .watch_objects("argoproj.io/v1alpha1", "Application", &namespace);
            let watch_updaters = || {
                client.clone().watch_objects(
                    driftwatch_engine::argocd::IMAGE_UPDATER_API_VERSION,
                    "ImageUpdater",
                    &namespace,
                )
            };
            // ImageUpdaters are watched while their CRD exists; when it does not (the watch
            // fails and ends), it is looked for again every half minute.
            let mut updater_stream = Some(watch_updaters());
            let mut again = tokio::time::interval(Duration::from_secs(30));
            // Name → the object as last seen.
            let mut live = std::collections::BTreeMap::new();
            let mut updaters = std::collections::BTreeMap::new();
            // Nothing is sent before both kinds were listed once (or ImageUpdaters found
            // absent), so an Application an ImageUpdater selects is never first read alone.
            let (mut apps_listed, mut updaters_listed) = (false, false);
            loop {
                let waiting = updater_stream.is_none();
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tx.closed() => return,
                    e = stream.next() => match e {
                        Some(e) => {
                            if let Err(e) = follow(&mut live, e) {
                                tracing::warn!(error = %e, "watching Applications failed; retrying");
                                continue;
                            }
                            apps_listed = true;
                        }
                        None => return,
                    },
                    e = async {
                        match updater_stream.as_mut() {
                            Some(s) => s.next().await,
                            None => std::future::pending().await,
                        }
                    } => match e {
                        Some(e) => {
                            if let Err(e) = follow(&mut updaters, e) {
                                // Most often: no ImageUpdater CRD. Go on with none.
                                tracing::debug!(error = %e, "watching ImageUpdaters failed");
                                if updaters_listed {
                                    continue;
                                }
                            }
                            updaters_listed = true;
                        }
                        None => {
                            updater_stream = None;
                            updaters_listed = true;
                        }
                    },
                    _ = again.tick(), if waiting => {
                        updater_stream = Some(watch_updaters());
                        continue;
                    }
                }
                if !(apps_listed && updaters_listed) {
                    continue;
                }
                let (apps, _) = parse_each(
                    live.values().chain(updaters.values()),
                    &namespace,
                    trust,
                    &secret_namespaces,
                    &argocd_namespace,
                );
                if tx.send(apps).is_err() {
                    return;
                }
            }
        });
        Ok(Some(rx))
    }

    /// Reads the applications, registries and interval.
    pub async fn load(&self) -> Result<Loaded, Error> {
        let registries = |default: RegistriesConf| match &self.registries_conf {
            Some(p) => registries_file(p),
            None => Ok(default),
        };
        match &self.applications {
            Applications::Config(path) => {
                let config = Config::load(path)?;
                Ok(Loaded {
                    apps: config.apps,
                    registries: registries(config.registries)?,
                    interval: config.interval,
                    notifications: config.notifications,
                    rejected: Vec::new(),
                    secrets: None,
                    git_credentials: None,
                    applications: None,
                })
            }
            Applications::Manifests(path) => Ok(Loaded {
                apps: driftwatch_engine::argocd::load_in(path, &self.argocd_namespace)?,
                registries: registries(RegistriesConf::default())?,
                interval: ARGO_INTERVAL,
                notifications: Vec::new(),
                rejected: Vec::new(),
                secrets: None,
                git_credentials: None,
                applications: None,
            }),
            Applications::Cluster {
                namespace,
                cluster,
                allow_local_repositories,
                secret_namespaces,
            } => {
                let client = Arc::new(driftwatch_cluster::KubeClient::connect(cluster)?);
                let mut items = client
                    .list("argoproj.io/v1alpha1", "Application", namespace)
                    .await?;
                let (updaters, forbidden) = image_updaters(&client, namespace).await?;
                items.extend(updaters);
                // Whoever may create an Application wrote these: they are read as untrusted.
                let (apps, mut rejected) = parse_each(
                    &items,
                    namespace,
                    driftwatch_engine::argocd::Trust::Cluster {
                        allow_local_repositories: *allow_local_repositories,
                    },
                    secret_namespaces,
                    &self.argocd_namespace,
                );
                rejected.extend(forbidden);
                Ok(Loaded {
                    apps,
                    rejected,
                    registries: registries(RegistriesConf::default())?,
                    interval: ARGO_INTERVAL,
                    notifications: Vec::new(),
                    secrets: Some(driftwatch_registry::Secrets(Arc::new(KubeSecrets(
                        client.clone(),
                    )))),
                    git_credentials: Some(driftwatch_engine::GitCredentials(Arc::new(
                        KubeGitCredentials(client.clone()),
                    ))),
                    applications: Some(driftwatch_engine::Applications(Arc::new(
                        KubeApplications(client),
                    ))),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn credential_secrets() {
        let dir = std::env::temp_dir().join(format!("dw-gitkeys-{}", std::process::id()));
        let data = |fields: &[(&str, &str)]| -> std::collections::BTreeMap<String, Vec<u8>> {
            fields
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.as_bytes().to_vec()))
                .collect()
        };
        let basic = auth_of(
            &data(&[("username", "bot"), ("password", "pw")]),
            "Secret a/b",
            &dir,
            None,
        )
        .unwrap();
        assert_eq!(
            basic,
            driftwatch_git::Auth::Basic {
                username: "bot".into(),
                password: driftwatch_git::Secret::new("pw")
            }
        );
        let ssh = auth_of(&data(&[("sshPrivateKey", "KEY")]), "Secret a/b", &dir, None).unwrap();
        let driftwatch_git::Auth::SshKey { key, .. } = ssh else {
            panic!("{ssh:?}")
        };
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::read_to_string(&key).unwrap(), "KEY\n");
        assert_eq!(
            std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
        // Two Secrets whose names differ only in punctuation keep their own key files.
        let other = auth_of(
            &data(&[("sshPrivateKey", "OTHER")]),
            "Secret a/b-c",
            &dir,
            None,
        )
        .unwrap();
        let same = auth_of(
            &data(&[("sshPrivateKey", "SAME")]),
            "Secret a-b/c",
            &dir,
            None,
        )
        .unwrap();
        assert_ne!(other, same);
        let e = auth_of(&data(&[("user", "x")]), "Secret a/b", &dir, None).unwrap_err();
        assert!(e.contains("Secret a/b has neither"), "{e}");
        let _ = std::fs::remove_dir_all(dir);
        assert_eq!(
            normalize_repo("https://Git.Example.com/org/shop.git/"),
            normalize_repo("https://git.example.com/org/shop")
        );
    }
}
