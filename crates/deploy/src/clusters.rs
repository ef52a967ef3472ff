//! The clusters applications sync to: the default one (`--kubeconfig`/`--context`, Argo CD's
//! `in-cluster`) and others by the name an application gives (`sync.cluster`, an Argo CD
//! destination), each connected once, when an application first needs it. How a name becomes
//! a connection — a kubeconfig context, an Argo CD cluster Secret — is the caller's resolver.

use std::collections::HashMap;
use std::sync::Arc;

use driftwatch_cluster::KubeClient;
use futures_util::future::BoxFuture;

use crate::error::Error;

/// Turns a cluster's name into a connection, or says why it cannot (the reason names what was
/// looked for and where; never a credential).
pub type Resolve =
    Arc<dyn Fn(String) -> BoxFuture<'static, Result<Arc<KubeClient>, String>> + Send + Sync>;

/// The default cluster and the named ones met so far.
#[derive(Clone)]
pub struct Clusters {
    default: Arc<KubeClient>,
    resolve: Option<Resolve>,
    known: HashMap<String, Arc<KubeClient>>,
}

impl Clusters {
    /// Only the default cluster: an application that names another fails, saying so.
    pub fn one(default: Arc<KubeClient>) -> Self {
        Clusters {
            default,
            resolve: None,
            known: HashMap::new(),
        }
    }

    /// The default cluster, and others found by `resolve`.
    pub fn with_resolver(default: Arc<KubeClient>, resolve: Resolve) -> Self {
        Clusters {
            default,
            resolve: Some(resolve),
            known: HashMap::new(),
        }
    }

    /// The default cluster's client.
    pub fn default_client(&self) -> &Arc<KubeClient> {
        &self.default
    }

    /// The client for the cluster `name` (`None`: the default), connected on first use. A
    /// failure is not kept: the Secret or kubeconfig may be fixed before the next attempt.
    pub async fn client(
        &mut self,
        app: &str,
        name: Option<&str>,
    ) -> Result<Arc<KubeClient>, Error> {
        let Some(name) = name else {
            return Ok(self.default.clone());
        };
        if let Some(c) = self.known.get(name) {
            return Ok(c.clone());
        }
        let Some(resolve) = &self.resolve else {
            return Err(Error::Destination {
                app: app.to_owned(),
                cluster: name.to_owned(),
                reason: "only the default cluster is configured".to_owned(),
            });
        };
        let client = resolve(name.to_owned())
            .await
            .map_err(|reason| Error::Destination {
                app: app.to_owned(),
                cluster: name.to_owned(),
                reason,
            })?;
        self.known.insert(name.to_owned(), client.clone());
        Ok(client)
    }
}
