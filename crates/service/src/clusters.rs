//! What an application's cluster name means, for the Git → cluster loop: a context of the
//! service's kubeconfig (`sync.cluster` in driftwatch.yaml), else — when Applications come from
//! the cluster — an Argo CD cluster Secret in their namespace whose `name` or `server` it is
//! (an Argo CD `destination.name` or `destination.server`).

use std::sync::Arc;

use base64::Engine as _;
use driftwatch_cluster::{KubeClient, KubeTarget};
use driftwatch_deploy::Resolve;
use serde_json::Value;

/// Argo CD's label on its cluster Secrets.
const CLUSTER_SECRETS: &str = "argocd.argoproj.io/secret-type=cluster";

/// The resolver for clusters other than the default: `target`'s kubeconfig (its contexts), then
/// Argo CD's cluster Secrets in `argocd_namespace` (read through `default`).
pub fn resolver(
    target: KubeTarget,
    default: Arc<KubeClient>,
    argocd_namespace: Option<String>,
) -> Resolve {
    Arc::new(move |name: String| {
        let target = target.clone();
        let default = default.clone();
        let namespace = argocd_namespace.clone();
        Box::pin(async move {
            let by_context = KubeClient::connect(&target.with_context(Some(&name)));
            let context_error = match by_context {
                Ok(c) => return Ok(Arc::new(c)),
                Err(e) => e.to_string(),
            };
            let Some(namespace) = namespace else {
                return Err(context_error);
            };
            match from_secrets(&default, &namespace, &name).await {
                Ok(Some(c)) => Ok(Arc::new(c)),
                Ok(None) => Err(format!(
                    "{context_error}; and no Argo CD cluster Secret in {namespace} has name or server {name:?}"
                )),
                Err(e) => Err(e),
            }
        })
    })
}

/// The client for the Argo CD cluster Secret in `namespace` whose name or server is `name`;
/// `None` when no Secret says so.
async fn from_secrets(
    default: &KubeClient,
    namespace: &str,
    name: &str,
) -> Result<Option<KubeClient>, String> {
    let (secrets, _) = default
        .list_selected("v1", "Secret", namespace, CLUSTER_SECRETS)
        .await
        .map_err(|e| format!("reading Argo CD cluster Secrets: {e}"))?;
    let wanted = name.trim_end_matches('/');
    for s in &secrets {
        let field = |k: &str| decoded(s, k);
        let server = field("server").unwrap_or_default();
        let matches = field("name").as_deref() == Some(name)
            || (!server.is_empty() && server.trim_end_matches('/') == wanted);
        if !matches {
            continue;
        }
        let secret = format!(
            "{namespace}/{}",
            s.pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("?")
        );
        if server.is_empty() {
            return Err(format!("Argo CD cluster Secret {secret} has no server"));
        }
        let config: Value = match field("config") {
            Some(text) => serde_json::from_str(&text)
                .map_err(|e| format!("Argo CD cluster Secret {secret}: config is not JSON: {e}"))?,
            None => Value::Object(serde_json::Map::new()),
        };
        return KubeClient::from_argocd_cluster(&secret, &server, &config)
            .map(Some)
            .map_err(|e| e.to_string());
    }
    Ok(None)
}

/// A Secret's `data` field `key`, decoded (`stringData` is folded into `data` by the server).
fn decoded(secret: &Value, key: &str) -> Option<String> {
    let b64 = secret.pointer(&format!("/data/{key}"))?.as_str()?;
    let bytes = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    String::from_utf8(bytes).ok()
}
