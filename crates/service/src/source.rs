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
    /// Argo CD Application manifests with argocd-image-updater annotations (file or directory).
    Manifests(PathBuf),
    /// The Argo CD Applications in this namespace of this cluster.
    Cluster {
        /// The namespace.
        namespace: String,
        /// The cluster: kubeconfig and context.
        cluster: driftwatch_cluster::KubeTarget,
        /// Accept `file://` and local-path repositories in these Applications (whoever may
        /// create one would otherwise reach any repository on this host). `ext:` and `env:`
        /// pull-secrets are refused either way.
        allow_local_repositories: bool,
    },
}

/// The applications' source and an optional registries.conf that overrides the registries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppSource {
    /// Where the applications are read from.
    pub applications: Applications,
    /// argocd-image-updater's registries.conf.
    pub registries_conf: Option<PathBuf>,
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
    /// Reads the Secrets of `pullsecret:` and `secret:` credentials: the cluster the
    /// Applications come from (`None` for files, where those are refused).
    pub secrets: Option<driftwatch_registry::Secrets>,
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
                    secrets: None,
                })
            }
            Applications::Manifests(path) => Ok(Loaded {
                apps: driftwatch_engine::argocd::load(path)?,
                registries: registries(RegistriesConf::default())?,
                interval: ARGO_INTERVAL,
                notifications: Vec::new(),
                secrets: None,
            }),
            Applications::Cluster {
                namespace,
                cluster,
                allow_local_repositories,
            } => {
                let client = Arc::new(driftwatch_cluster::KubeClient::connect(cluster)?);
                let items = client
                    .list("argoproj.io/v1alpha1", "Application", namespace)
                    .await?;
                // JSON is YAML: the same parser reads the cluster's Applications.
                let stream: String = items.iter().map(|i| format!("---\n{i}\n")).collect();
                // Whoever may create an Application wrote these: they are read as untrusted.
                let apps = driftwatch_engine::argocd::parse_with(
                    &stream,
                    &format!("Applications in namespace {namespace}"),
                    driftwatch_engine::argocd::Trust::Cluster {
                        allow_local_repositories: *allow_local_repositories,
                    },
                )?;
                Ok(Loaded {
                    apps,
                    registries: registries(RegistriesConf::default())?,
                    interval: ARGO_INTERVAL,
                    notifications: Vec::new(),
                    secrets: Some(driftwatch_registry::Secrets(Arc::new(KubeSecrets(client)))),
                })
            }
        }
    }
}
