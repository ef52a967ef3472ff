//! The Kubernetes client for what sync, compare and heal need — discovery, get, list, server-side
//! apply (and its dry run), delete and watches — on kube-rs, so every way people reach a
//! cluster works: kubeconfig files (several merged like `KUBECONFIG=a:b`), a chosen context,
//! tokens, token files, client certificates, exec credential plugins (EKS/GKE/AKS) and the
//! in-cluster service account.
//!
//! Objects cross this boundary as `serde_json::Value`, as the rest of the crate compares them;
//! kube-rs types stay inside. Every call has a deadline (connect, read, and the whole call), and
//! every failure is a typed [`Error`]: the API server's status code for refusals, the
//! kubeconfig and context for failures to connect — never a credential.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use futures_util::FutureExt;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::{ApiResource, GroupVersionKind};
use kube::discovery::Scope;
use serde_json::Value;

use crate::error::Error;

mod argocd_cluster;
mod lease;
pub use lease::{LeaseRecord, ReadLease, lease_now};

/// Longest wait for a TCP (and TLS) connection to the API server.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest silence while reading an answer to an ordinary call.
const READ_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest time for a whole ordinary call, however the time is spent (an exec plugin
/// refreshing its token included).
const CALL_TIMEOUT: Duration = Duration::from_secs(90);
/// Longest time to obtain credentials when the client is first used (exec plugins run then).
const CREDENTIALS_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the API server keeps one watch open (`timeoutSeconds`); a watch is silent when
/// nothing changes, so watches read with [`WATCH_READ_TIMEOUT`].
pub(crate) const WATCH_SECONDS: u32 = 290;
/// Longest silence on a watch: past the server's own end of the watch, so only a dead
/// connection trips it.
const WATCH_READ_TIMEOUT: Duration = Duration::from_secs(WATCH_SECONDS as u64 + 30);

/// Which cluster to talk to, and as whom.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KubeTarget {
    /// Kubeconfig files: one path, or several joined like `KUBECONFIG` (`a:b`; the first file
    /// to set a value wins). `None`: `$KUBECONFIG`, else `~/.kube/config`, else the in-cluster
    /// service account — as kubectl and `Config::infer` decide.
    pub kubeconfig: Option<PathBuf>,
    /// The context to use instead of the kubeconfig's `current-context`.
    pub context: Option<String>,
}

impl KubeTarget {
    /// The current context of the kubeconfig file(s) at `path`.
    pub fn file(path: &Path) -> Self {
        KubeTarget {
            kubeconfig: Some(path.to_owned()),
            context: None,
        }
    }

    /// The same target with `context` chosen (none: the kubeconfig's `current-context`).
    pub fn with_context(mut self, context: Option<&str>) -> Self {
        self.context = context.map(str::to_owned);
        self
    }
}

/// The two kube-rs clients of one connection: ordinary calls read with a short timeout, watches
/// with one longer than the server keeps a watch open.
struct Clients {
    calls: kube::Client,
    watches: kube::Client,
}

/// A connection to one cluster. Cheap to share (`Arc`); the underlying client is made on first
/// use, on the caller's runtime, so constructing one needs no runtime.
pub struct KubeClient {
    config: kube::Config,
    /// "kubeconfig FILE, context NAME" (or the in-cluster service account): names the
    /// connection in errors.
    origin: String,
    clients: tokio::sync::OnceCell<Clients>,
    /// Publishes Kubernetes Events (made with the clients; deduplicates repeats into series).
    recorder: std::sync::OnceLock<kube::runtime::events::Recorder>,
    /// apiVersion and kind → resource and whether it lives in namespaces.
    discovery: Mutex<HashMap<(String, String), (ApiResource, bool)>>,
}

impl std::fmt::Debug for KubeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeClient")
            .field("origin", &self.origin)
            .field("server", &self.config.cluster_url.to_string())
            .finish_non_exhaustive()
    }
}

/// What [`KubeClient::watch_objects`] says.
#[derive(Clone, Debug, PartialEq)]
pub enum Watched {
    /// Every object there is now, after a list (the first, or one after the watch expired).
    Listed(Vec<Value>),
    /// An object was created or changed.
    Applied(Value),
    /// An object was deleted.
    Deleted(Value),
    /// The watch failed (it is retried with backoff): why, for the log.
    Failed(String),
}

/// A Kubernetes Event about one object, as `kubectl describe` and `kubectl events` show it —
/// what Argo CD and Flux users look for when something changed under them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectEvent {
    /// Warning (someone should look) rather than Normal.
    pub warning: bool,
    /// Why, in PascalCase: `Synced`, `Healed`, `HealStopped`…
    pub reason: &'static str,
    /// What driftwatch did or would do: `Apply`, `Delete`, `Skip`…
    pub action: &'static str,
    /// The sentence for people.
    pub note: String,
}

/// The files a kubeconfig path names: `a:b` is two files, as in `KUBECONFIG`.
fn split_files(path: &Path) -> Vec<PathBuf> {
    std::env::split_paths(path.as_os_str())
        .filter(|p| !p.as_os_str().is_empty())
        .collect()
}

/// An error's message with its causes, each said once.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        let text = err.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cur = err.source();
    }
    parts.join(": ")
}

/// What went wrong obtaining credentials, without what the plugin printed on stdout (where a
/// token would be).
fn auth_reason(e: &kube::client::AuthError) -> String {
    use kube::client::AuthError as A;
    match e {
        // The command as kube-rs prints it carries the plugin's environment; the kubeconfig
        // (named with the error) says which command it is.
        A::AuthExecRun { out, .. } => {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let stderr = stderr.trim();
            format!(
                "exec credential plugin failed ({}){}",
                out.status,
                if stderr.is_empty() {
                    String::new()
                } else {
                    format!(": {}", stderr.chars().take(400).collect::<String>())
                }
            )
        }
        A::AuthExecStart(io) => format!("exec credential plugin could not be started: {io}"),
        A::AuthExecParse(_) => "exec credential plugin printed no valid ExecCredential".to_owned(),
        A::ExecPluginFailed => "exec credential plugin answered without a status".to_owned(),
        A::InvalidBearerToken(_) => "the token is not a valid HTTP header value".to_owned(),
        other => chain(other),
    }
}

impl KubeClient {
    /// Connects as the kubeconfig's current context says; `path` may name several files
    /// joined like `KUBECONFIG` (`a:b`).
    pub fn from_kubeconfig(path: &Path) -> Result<Self, Error> {
        Self::connect(&KubeTarget::file(path))
    }

    /// Connects to `target`. The kubeconfig is read and checked now (a missing file, context,
    /// cluster, certificate file or an invalid CA is an error naming the file and context);
    /// credentials from an exec plugin are obtained on first use.
    pub fn connect(target: &KubeTarget) -> Result<Self, Error> {
        let context = target.context.clone();
        let files = match &target.kubeconfig {
            Some(p) => Some(p.clone()),
            None => match std::env::var_os("KUBECONFIG").filter(|v| !v.is_empty()) {
                Some(v) => Some(PathBuf::from(v)),
                None => std::env::var_os("HOME")
                    .map(|h| PathBuf::from(h).join(".kube").join("config"))
                    .filter(|p| p.is_file()),
            },
        };
        let Some(files) = files else {
            // No kubeconfig anywhere: the pod's service account.
            let config = kube::Config::incluster().map_err(|e| Error::Kubeconfig {
                file: "(none: no --kubeconfig, $KUBECONFIG or ~/.kube/config; not in a cluster)"
                    .to_owned(),
                context: context.clone(),
                reason: chain(&e),
            })?;
            if context.is_some() {
                return Err(Error::Kubeconfig {
                    file: "(in-cluster service account)".to_owned(),
                    context,
                    reason: "a context needs a kubeconfig".to_owned(),
                });
            }
            return Ok(Self::with_config(
                config,
                "the in-cluster service account".to_owned(),
            ));
        };
        let file = files.display().to_string();
        let fail = |context: Option<String>, reason: String| Error::Kubeconfig {
            file: file.clone(),
            context,
            reason,
        };
        let mut merged: Option<Kubeconfig> = None;
        for f in split_files(&files) {
            let one = Kubeconfig::read_from(&f)
                .map_err(|e| fail(context.clone(), format!("{}: {}", f.display(), chain(&e))))?;
            merged = Some(match merged {
                Some(m) => m.merge(one).map_err(|e| fail(context.clone(), chain(&e)))?,
                None => one,
            });
        }
        let kubeconfig = merged.ok_or_else(|| fail(context.clone(), "names no file".to_owned()))?;
        let chosen = context
            .clone()
            .or_else(|| kubeconfig.current_context.clone())
            .ok_or_else(|| {
                fail(
                    None,
                    "no current-context; choose one with --context".to_owned(),
                )
            })?;
        if !kubeconfig.contexts.iter().any(|c| c.name == chosen) {
            let known: Vec<&str> = kubeconfig
                .contexts
                .iter()
                .map(|c| c.name.as_str())
                .collect();
            return Err(fail(
                Some(chosen),
                format!(
                    "no such context (it has: {})",
                    if known.is_empty() {
                        "none".to_owned()
                    } else {
                        known.join(", ")
                    }
                ),
            ));
        }
        let options = KubeConfigOptions {
            context: Some(chosen.clone()),
            ..KubeConfigOptions::default()
        };
        // Building the config from a parsed kubeconfig does no I/O that waits (it reads the
        // certificate files it names), so it completes on first poll: no runtime is needed.
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
            .now_or_never()
            .ok_or_else(|| fail(Some(chosen.clone()), "loading did not complete".to_owned()))?
            .map_err(|e| fail(Some(chosen.clone()), chain(&e)))?;
        Ok(Self::with_config(
            config,
            format!("kubeconfig {file}, context {chosen:?}"),
        ))
    }

    /// A client for the current context of a kubeconfig already parsed (one made from other
    /// settings, such as an Argo CD cluster Secret), named `origin` in errors.
    pub(crate) fn from_parsed(kubeconfig: Kubeconfig, origin: String) -> Result<Self, Error> {
        let fail = |reason: String| Error::Kubeconfig {
            file: origin.clone(),
            context: kubeconfig.current_context.clone(),
            reason,
        };
        let config =
            kube::Config::from_custom_kubeconfig(kubeconfig.clone(), &KubeConfigOptions::default())
                .now_or_never()
                .ok_or_else(|| fail("loading did not complete".to_owned()))?
                .map_err(|e| fail(chain(&e)))?;
        Ok(Self::with_config(config, origin))
    }

    fn with_config(mut config: kube::Config, origin: String) -> Self {
        config.connect_timeout = Some(CONNECT_TIMEOUT);
        config.read_timeout = Some(READ_TIMEOUT);
        config.write_timeout = Some(READ_TIMEOUT);
        KubeClient {
            config,
            origin,
            clients: tokio::sync::OnceCell::new(),
            recorder: std::sync::OnceLock::new(),
            discovery: Mutex::new(HashMap::new()),
        }
    }

    /// Records `event` on `obj` — a live object, whose uid ties the event to it for `kubectl
    /// describe` — in the background: events are for people, so one that is refused (no RBAC
    /// for events) or slow never holds up a sync or a heal; it is logged at debug level. Needs
    /// a Tokio runtime and a client already connected (it is, after any call). The handle
    /// lets a one-shot command wait for its events before it exits.
    pub fn record(&self, obj: &Value, event: ObjectEvent) -> Option<tokio::task::JoinHandle<()>> {
        let (Some(clients), Ok(runtime)) =
            (self.clients.get(), tokio::runtime::Handle::try_current())
        else {
            return None;
        };
        let recorder = self
            .recorder
            .get_or_init(|| {
                let instance = std::env::var("POD_NAME")
                    .ok()
                    .or_else(|| std::env::var("HOSTNAME").ok());
                kube::runtime::events::Recorder::new(
                    clients.calls.clone(),
                    kube::runtime::events::Reporter {
                        controller: crate::mark::FIELD_MANAGER.to_owned(),
                        instance,
                    },
                )
            })
            .clone();
        let text = |p: &str| obj.pointer(p).and_then(Value::as_str).map(str::to_owned);
        let reference = k8s_openapi::api::core::v1::ObjectReference {
            api_version: text("/apiVersion"),
            kind: text("/kind"),
            name: text("/metadata/name"),
            namespace: text("/metadata/namespace"),
            uid: text("/metadata/uid"),
            ..Default::default()
        };
        let ev = kube::runtime::events::Event {
            type_: if event.warning {
                kube::runtime::events::EventType::Warning
            } else {
                kube::runtime::events::EventType::Normal
            },
            reason: event.reason.to_owned(),
            // The API server refuses notes over 1 KiB.
            note: Some(event.note.chars().take(1000).collect()),
            action: event.action.to_owned(),
            secondary: None,
        };
        Some(runtime.spawn(async move {
            match tokio::time::timeout(CALL_TIMEOUT, recorder.publish(&ev, &reference)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, reason = %ev.reason, "event not recorded")
                }
                Err(_) => tracing::debug!(reason = %ev.reason, "event not recorded in time"),
            }
        }))
    }

    /// The clients, made on first use. Making one obtains the credentials — an exec plugin
    /// runs then, on a blocking thread and with a deadline, so a plugin that hangs is an
    /// error rather than a hang.
    async fn clients(&self, what: &str) -> Result<&Clients, Error> {
        self.clients
            .get_or_try_init(|| async {
                let calls = self.config.clone();
                let mut watches = self.config.clone();
                watches.read_timeout = Some(WATCH_READ_TIMEOUT);
                let made = tokio::time::timeout(
                    CREDENTIALS_TIMEOUT,
                    tokio::task::spawn_blocking(move || {
                        Ok::<_, kube::Error>(Clients {
                            calls: kube::Client::try_from(calls)?,
                            watches: kube::Client::try_from(watches)?,
                        })
                    }),
                )
                .await;
                match made {
                    Err(_) => Err(self.unreachable(
                        what,
                        format!(
                            "no credentials within {} s (an exec credential plugin that does not return?)",
                            CREDENTIALS_TIMEOUT.as_secs()
                        ),
                    )),
                    Ok(Err(join)) => Err(self.unreachable(what, join.to_string())),
                    Ok(Ok(Err(e))) => Err(self.error(what, e)),
                    Ok(Ok(Ok(c))) => Ok(c),
                }
            })
            .await
    }

    fn unreachable(&self, what: &str, reason: String) -> Error {
        Error::Unreachable {
            what: what.to_owned(),
            origin: self.origin.clone(),
            reason,
        }
    }

    /// A kube-rs error as ours: the API server's status kept as a code, anything else named
    /// with the connection it happened on.
    fn error(&self, what: &str, e: kube::Error) -> Error {
        match e {
            kube::Error::Api(s) => {
                let message = if s.code == 401 {
                    format!(
                        "{}: the credentials of {} were refused (an expired token?)",
                        s.message, self.origin
                    )
                } else {
                    s.message
                };
                Error::Api {
                    what: what.to_owned(),
                    code: s.code,
                    reason: s.reason,
                    message,
                }
            }
            kube::Error::Auth(a) => self.unreachable(what, auth_reason(&a)),
            kube::Error::Discovery(d) => Error::Api {
                what: what.to_owned(),
                code: 404,
                reason: "NotFound".to_owned(),
                message: d.to_string(),
            },
            kube::Error::Service(s) => {
                // The auth layer's errors arrive boxed in the service error.
                if let Some(a) = s.downcast_ref::<kube::client::AuthError>() {
                    return self.unreachable(what, auth_reason(a));
                }
                self.unreachable(what, chain(s.as_ref()))
            }
            other => self.unreachable(what, chain(&other)),
        }
    }

    /// Runs one ordinary call with the whole-call deadline.
    async fn call<T>(
        &self,
        what: &str,
        fut: impl Future<Output = Result<T, kube::Error>>,
    ) -> Result<T, Error> {
        match tokio::time::timeout(CALL_TIMEOUT, fut).await {
            Ok(r) => r.map_err(|e| self.error(what, e)),
            Err(_) => Err(self.unreachable(
                what,
                format!("no answer within {} s", CALL_TIMEOUT.as_secs()),
            )),
        }
    }

    /// The resource a kind is served as, and whether it lives in namespaces; asked once per
    /// kind.
    async fn resource(&self, api_version: &str, kind: &str) -> Result<(ApiResource, bool), Error> {
        let key = (api_version.to_owned(), kind.to_owned());
        if let Some(r) = self
            .discovery
            .lock()
            .ok()
            .and_then(|d| d.get(&key).cloned())
        {
            return Ok(r);
        }
        let what = format!("discovering {kind} in {api_version}");
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let gvk = GroupVersionKind::gvk(group, version, kind);
        let client = &self.clients(&what).await?.calls;
        let (resource, caps) = self
            .call(&what, kube::discovery::pinned_kind(client, &gvk))
            .await?;
        let found = (resource, caps.scope == Scope::Namespaced);
        if let Ok(mut d) = self.discovery.lock() {
            d.insert(key, found.clone());
        }
        Ok(found)
    }

    /// The API for a kind in `namespace`, or across all namespaces when it is empty (and
    /// always for cluster-scoped kinds).
    async fn api(
        &self,
        api_version: &str,
        kind: &str,
        namespace: &str,
        watch: bool,
    ) -> Result<(Api<DynamicObject>, bool), Error> {
        let (resource, namespaced) = self.resource(api_version, kind).await?;
        let what = format!("reaching {kind} in {api_version}");
        let clients = self.clients(&what).await?;
        let client = if watch {
            clients.watches.clone()
        } else {
            clients.calls.clone()
        };
        let api = if namespaced && !namespace.is_empty() {
            Api::namespaced_with(client, namespace, &resource)
        } else {
            Api::all_with(client, &resource)
        };
        Ok((api, namespaced))
    }

    /// The API and name for one object (`default_ns` when it names no namespace).
    async fn api_of(
        &self,
        obj: &Value,
        default_ns: &str,
    ) -> Result<(Api<DynamicObject>, String), Error> {
        let text = |p: &str| obj.pointer(p).and_then(Value::as_str).unwrap_or("");
        let ns = Some(text("/metadata/namespace"))
            .filter(|n| !n.is_empty())
            .unwrap_or(default_ns);
        let (api, _) = self
            .api(text("/apiVersion"), text("/kind"), ns, false)
            .await?;
        Ok((api, text("/metadata/name").to_owned()))
    }

    /// The API for watching a kind in `namespace` (empty: all namespaces), reading with the
    /// watch timeout, and whether the kind lives in namespaces.
    pub(crate) async fn watch_api(
        &self,
        api_version: &str,
        kind: &str,
        namespace: &str,
    ) -> Result<(Api<DynamicObject>, bool), Error> {
        self.api(api_version, kind, namespace, true).await
    }

    /// Follows every object of a kind in `namespace` (all namespaces when empty), as kube-rs's
    /// watcher does: a [`Watched::Listed`] with the whole set after each (re)list — the first,
    /// and again when the watch's resourceVersion expired — then one [`Watched::Applied`] or
    /// [`Watched::Deleted`] per change, at once. Failures are reported as
    /// [`Watched::Failed`] and retried with a growing backoff; the stream never ends by itself.
    pub fn watch_objects(
        self: std::sync::Arc<Self>,
        api_version: &str,
        kind: &str,
        namespace: &str,
    ) -> futures_util::stream::BoxStream<'static, Watched> {
        use futures_util::StreamExt;
        use kube::runtime::WatchStreamExt;
        use kube::runtime::watcher::{self, Event};

        let (api_version, kind, namespace) = (
            api_version.to_owned(),
            kind.to_owned(),
            namespace.to_owned(),
        );
        let what = format!("watching {kind} in {}", scope(&namespace));
        let resource = {
            let client = self.clone();
            let (api_version, kind, namespace, what) = (
                api_version.clone(),
                kind.clone(),
                namespace.clone(),
                what.clone(),
            );
            async move {
                client
                    .watch_api(&api_version, &kind, &namespace)
                    .await
                    .map(|(api, _)| api)
                    .map_err(|e| format!("{what}: {e}"))
            }
        };
        futures_util::stream::once(resource)
            .flat_map(move |found| match found {
                Err(e) => futures_util::stream::once(async move { Watched::Failed(e) }).boxed(),
                Ok(api) => {
                    let (api_version, kind, what) =
                        (api_version.clone(), kind.clone(), what.clone());
                    let mut listing: Vec<Value> = Vec::new();
                    let config = watcher::Config::default().timeout(WATCH_SECONDS);
                    watcher::watcher(api, config)
                        .default_backoff()
                        .filter_map(move |item| {
                            let value = |o| object_value(o, &api_version, &kind, &what).ok();
                            let out = match item {
                                Ok(Event::Init) => {
                                    listing.clear();
                                    None
                                }
                                Ok(Event::InitApply(o)) => {
                                    listing.extend(value(o));
                                    None
                                }
                                Ok(Event::InitDone) => {
                                    Some(Watched::Listed(std::mem::take(&mut listing)))
                                }
                                Ok(Event::Apply(o)) => value(o).map(Watched::Applied),
                                Ok(Event::Delete(o)) => value(o).map(Watched::Deleted),
                                Err(e) => Some(Watched::Failed(format!("{what}: {e}"))),
                            };
                            std::future::ready(out)
                        })
                        .boxed()
                }
            })
            .boxed()
    }

    /// Whether a kind lives in namespaces.
    pub async fn namespaced(&self, api_version: &str, kind: &str) -> Result<bool, Error> {
        Ok(self.resource(api_version, kind).await?.1)
    }

    /// The objects of a kind labelled `selector` in `namespace` (all namespaces when empty),
    /// with the list's resourceVersion: the point a watch resumes from so no change falls
    /// between the two.
    pub async fn list_selected(
        &self,
        api_version: &str,
        kind: &str,
        namespace: &str,
        selector: &str,
    ) -> Result<(Vec<Value>, Option<String>), Error> {
        let (api, _) = self.api(api_version, kind, namespace, false).await?;
        let what = format!("listing {kind} labelled {selector} in {}", scope(namespace));
        let list = self
            .call(&what, api.list(&ListParams::default().labels(selector)))
            .await?;
        let version = list.metadata.resource_version.clone();
        let items = list
            .items
            .into_iter()
            .map(|o| object_value(o, api_version, kind, &what))
            .collect::<Result<_, _>>()?;
        Ok((items, version))
    }

    /// Every object of a kind in a namespace (all namespaces when empty).
    pub async fn list(
        &self,
        api_version: &str,
        kind: &str,
        namespace: &str,
    ) -> Result<Vec<Value>, Error> {
        let (api, _) = self.api(api_version, kind, namespace, false).await?;
        let what = format!("listing {kind} in {}", scope(namespace));
        let list = self.call(&what, api.list(&ListParams::default())).await?;
        list.items
            .into_iter()
            .map(|o| object_value(o, api_version, kind, &what))
            .collect()
    }

    /// The live object for a desired one, `None` when it does not exist.
    pub async fn get(&self, obj: &Value, default_ns: &str) -> Result<Option<Value>, Error> {
        let what = format!("getting {}", crate::ObjectKey::of(obj));
        let (api, name) = self.api_of(obj, default_ns).await?;
        let found = self.call(&what, api.get_opt(&name)).await?;
        found
            .map(|o| object_value(o, api_version_of(obj), kind_of(obj), &what))
            .transpose()
    }

    /// The data of the Secret `namespace/name`, decoded (`stringData` is folded into `data` by
    /// the API server); `None` when it does not exist. One get by name: Secrets are never
    /// listed here. Errors name the Secret (and for a refusal, the API server's reason), never
    /// a value.
    pub async fn secret(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<std::collections::BTreeMap<String, Vec<u8>>>, Error> {
        let what = format!("getting Secret {namespace}/{name}");
        let client = self.clients(&what).await?.calls.clone();
        let api: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(client, namespace);
        let found = self.call(&what, api.get_opt(name)).await?;
        Ok(found.map(|s| {
            s.data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.0))
                .collect()
        }))
    }

    /// The Secrets labelled `selector` in `namespace` (never all namespaces: an empty one is
    /// refused), each as its name and decoded data — for Argo CD's credential Secrets, which are
    /// found by label.
    pub async fn secrets_labelled(
        &self,
        namespace: &str,
        selector: &str,
    ) -> Result<Vec<(String, std::collections::BTreeMap<String, Vec<u8>>)>, Error> {
        let what = format!("listing Secrets labelled {selector} in {namespace}");
        if namespace.is_empty() {
            return Err(Error::Refused {
                what,
                reason: "Secrets are never listed across all namespaces".to_owned(),
            });
        }
        let client = self.clients(&what).await?.calls.clone();
        let api: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(client, namespace);
        let list = self
            .call(&what, api.list(&ListParams::default().labels(selector)))
            .await?;
        Ok(list
            .items
            .into_iter()
            .map(|s| {
                (
                    s.metadata.name.unwrap_or_default(),
                    s.data
                        .unwrap_or_default()
                        .into_iter()
                        .map(|(k, v)| (k, v.0))
                        .collect(),
                )
            })
            .collect())
    }

    /// Server-side apply as `manager`, taking over conflicting fields (`force`); with
    /// `dry_run` the server computes the result without storing it.
    pub async fn apply(
        &self,
        obj: &Value,
        default_ns: &str,
        manager: &str,
        dry_run: bool,
    ) -> Result<Value, Error> {
        let what = format!("applying {}", crate::ObjectKey::of(obj));
        let (api, name) = self.api_of(obj, default_ns).await?;
        let mut params = PatchParams::apply(manager).force();
        if dry_run {
            params = params.dry_run();
        }
        let applied = self
            .call(&what, api.patch(&name, &params, &Patch::Apply(obj)))
            .await?;
        object_value(applied, api_version_of(obj), kind_of(obj), &what)
    }

    /// Deletes an object; a missing one is fine.
    pub async fn delete(&self, obj: &Value, default_ns: &str) -> Result<(), Error> {
        let what = format!("deleting {}", crate::ObjectKey::of(obj));
        let (api, name) = self.api_of(obj, default_ns).await?;
        match self
            .call(&what, api.delete(&name, &DeleteParams::default()))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.status_code() == Some(404) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

fn scope(namespace: &str) -> &str {
    if namespace.is_empty() {
        "all namespaces"
    } else {
        namespace
    }
}

fn api_version_of(obj: &Value) -> &str {
    obj["apiVersion"].as_str().unwrap_or("")
}

fn kind_of(obj: &Value) -> &str {
    obj["kind"].as_str().unwrap_or("")
}

/// An object from the API server as JSON, with its apiVersion and kind (lists leave them to
/// the list; they are put back on each item).
pub(crate) fn object_value(
    obj: DynamicObject,
    api_version: &str,
    kind: &str,
    what: &str,
) -> Result<Value, Error> {
    let mut v = serde_json::to_value(obj).map_err(|e| Error::Response {
        what: what.to_owned(),
        reason: e.to_string(),
    })?;
    if v.get("kind").is_none_or(Value::is_null) {
        v["apiVersion"] = Value::String(api_version.to_owned());
        v["kind"] = Value::String(kind.to_owned());
    }
    Ok(v)
}
