//! A small Kubernetes client for what sync needs — discovery, get, server-side apply, delete —
//! from a kubeconfig (token or client certificate, cluster CA or insecure).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use base64::Engine;
use serde::Deserialize;
use serde_json::Value;

use crate::error::Error;

/// How an object's kind maps to a resource.
#[derive(Clone, Debug)]
struct Resource {
    plural: String,
    namespaced: bool,
}

/// A connection to one cluster.
pub struct KubeClient {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
    discovery: Mutex<HashMap<String, HashMap<String, Resource>>>,
}

#[derive(Deserialize)]
struct Kubeconfig {
    #[serde(rename = "current-context")]
    current: Option<String>,
    #[serde(default)]
    clusters: Vec<Named<ClusterCfg>>,
    #[serde(default)]
    users: Vec<Named<UserCfg>>,
    #[serde(default)]
    contexts: Vec<Named<ContextCfg>>,
}

#[derive(Deserialize)]
struct Named<T> {
    name: String,
    #[serde(alias = "cluster", alias = "user", alias = "context")]
    value: Option<T>,
}

#[derive(Deserialize, Default)]
struct ClusterCfg {
    server: String,
    #[serde(rename = "certificate-authority-data")]
    ca_data: Option<String>,
    #[serde(rename = "certificate-authority")]
    ca_file: Option<String>,
    #[serde(rename = "insecure-skip-tls-verify", default)]
    insecure: bool,
}

#[derive(Deserialize, Default)]
struct UserCfg {
    token: Option<String>,
    #[serde(rename = "client-certificate-data")]
    cert_data: Option<String>,
    #[serde(rename = "client-key-data")]
    key_data: Option<String>,
    #[serde(rename = "client-certificate")]
    cert_file: Option<String>,
    #[serde(rename = "client-key")]
    key_file: Option<String>,
}

#[derive(Deserialize, Default)]
struct ContextCfg {
    cluster: String,
    user: Option<String>,
}

fn api_err(what: &str, reason: impl Into<String>) -> Error {
    Error::Api {
        what: what.to_owned(),
        reason: reason.into(),
    }
}

impl KubeClient {
    /// Connects as the kubeconfig's current context says.
    pub fn from_kubeconfig(path: &Path) -> Result<Self, Error> {
        let file = path.display().to_string();
        let cfg_err = |reason: String| Error::Manifest {
            file: file.clone(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| cfg_err(e.to_string()))?;
        let cfg: Kubeconfig = serde_saphyr::from_str(&text)
            .map_err(|e| cfg_err(format!("invalid kubeconfig: {e}")))?;
        let ctx_name = cfg
            .current
            .clone()
            .ok_or_else(|| cfg_err("no current-context".to_owned()))?;
        let ctx = cfg
            .contexts
            .iter()
            .find(|c| c.name == ctx_name)
            .and_then(|c| c.value.as_ref())
            .ok_or_else(|| cfg_err(format!("context {ctx_name:?} not found")))?;
        let cluster = cfg
            .clusters
            .iter()
            .find(|c| c.name == ctx.cluster)
            .and_then(|c| c.value.as_ref())
            .ok_or_else(|| cfg_err(format!("cluster {:?} not found", ctx.cluster)))?;
        let default_user = UserCfg::default();
        let user = ctx
            .user
            .as_ref()
            .and_then(|u| cfg.users.iter().find(|x| &x.name == u))
            .and_then(|u| u.value.as_ref())
            .unwrap_or(&default_user);
        let dir = path.parent().unwrap_or(Path::new("."));
        let read =
            |data: &Option<String>, file: &Option<String>| -> Result<Option<Vec<u8>>, Error> {
                if let Some(d) = data {
                    return base64::engine::general_purpose::STANDARD
                        .decode(d.trim())
                        .map(Some)
                        .map_err(|_| cfg_err("a *-data field is not base64".to_owned()));
                }
                if let Some(f) = file {
                    return std::fs::read(dir.join(f))
                        .map(Some)
                        .map_err(|e| cfg_err(format!("{f}: {e}")));
                }
                Ok(None)
            };
        let mut builder = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(10))
            .timeout(std::time::Duration::from_secs(60))
            .danger_accept_invalid_certs(cluster.insecure);
        if let Some(ca) = read(&cluster.ca_data, &cluster.ca_file)? {
            let cert = reqwest::Certificate::from_pem(&ca)
                .map_err(|e| cfg_err(format!("cluster CA: {e}")))?;
            builder = builder.add_root_certificate(cert);
        }
        if let (Some(mut cert), Some(key)) = (
            read(&user.cert_data, &user.cert_file)?,
            read(&user.key_data, &user.key_file)?,
        ) {
            cert.push(b'\n');
            cert.extend_from_slice(&key);
            let id = reqwest::Identity::from_pem(&cert)
                .map_err(|e| cfg_err(format!("client certificate: {e}")))?;
            builder = builder.identity(id);
        }
        let http = builder.build().map_err(|e| cfg_err(e.to_string()))?;
        Ok(KubeClient {
            http,
            base: cluster.server.trim_end_matches('/').to_owned(),
            token: user.token.clone(),
            discovery: Mutex::new(HashMap::new()),
        })
    }

    fn request(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        let r = self
            .http
            .request(method, url)
            .header("Accept", "application/json");
        match &self.token {
            Some(t) => r.bearer_auth(t),
            None => r,
        }
    }

    async fn json(resp: reqwest::Response, what: &str) -> Result<Option<Value>, Error> {
        let status = resp.status();
        if status.as_u16() == 404 {
            return Ok(None);
        }
        let body = resp
            .bytes()
            .await
            .map_err(|e| api_err(what, e.to_string()))?;
        if !status.is_success() {
            let message = serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|v| v["message"].as_str().map(str::to_owned))
                .unwrap_or_else(|| String::from_utf8_lossy(&body).chars().take(300).collect());
            return Err(api_err(
                what,
                format!("HTTP {}: {message}", status.as_u16()),
            ));
        }
        serde_json::from_slice(&body)
            .map(Some)
            .map_err(|e| api_err(what, format!("invalid JSON: {e}")))
    }

    async fn resource(&self, api_version: &str, kind: &str) -> Result<Resource, Error> {
        if let Some(r) = self
            .discovery
            .lock()
            .ok()
            .and_then(|d| d.get(api_version).and_then(|m| m.get(kind).cloned()))
        {
            return Ok(r);
        }
        let url = self.group_version_url(api_version);
        let what = format!("discovering {api_version}");
        let list = self
            .get_json(&url, &what)
            .await?
            .ok_or_else(|| api_err(&what, "the API server does not serve it"))?;
        let mut map = HashMap::new();
        for r in list["resources"].as_array().cloned().unwrap_or_default() {
            let (Some(name), Some(k)) = (r["name"].as_str(), r["kind"].as_str()) else {
                continue;
            };
            if name.contains('/') {
                continue;
            }
            map.insert(
                k.to_owned(),
                Resource {
                    plural: name.to_owned(),
                    namespaced: r["namespaced"].as_bool().unwrap_or(true),
                },
            );
        }
        let found = map.get(kind).cloned();
        if let Ok(mut d) = self.discovery.lock() {
            d.insert(api_version.to_owned(), map);
        }
        found.ok_or_else(|| api_err(&what, format!("no resource for kind {kind}")))
    }

    async fn url_of(&self, obj: &Value, default_ns: &str) -> Result<String, Error> {
        let api = obj["apiVersion"].as_str().unwrap_or("");
        let kind = obj["kind"].as_str().unwrap_or("");
        let name = obj
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("");
        let r = self.resource(api, kind).await?;
        let prefix = self.group_version_url(api);
        Ok(if r.namespaced {
            let ns = obj
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
                .unwrap_or(default_ns);
            format!("{prefix}/namespaces/{ns}/{}/{name}", r.plural)
        } else {
            format!("{prefix}/{}/{name}", r.plural)
        })
    }

    /// The URL of a kind's collection: in `namespace`, or across all namespaces when it is
    /// empty (and always for cluster-scoped kinds).
    pub async fn collection_url(
        &self,
        api_version: &str,
        kind: &str,
        namespace: &str,
    ) -> Result<String, Error> {
        let r = self.resource(api_version, kind).await?;
        let prefix = self.group_version_url(api_version);
        Ok(if r.namespaced && !namespace.is_empty() {
            format!("{prefix}/namespaces/{namespace}/{}", r.plural)
        } else {
            format!("{prefix}/{}", r.plural)
        })
    }

    /// Whether a kind lives in namespaces.
    pub async fn namespaced(&self, api_version: &str, kind: &str) -> Result<bool, Error> {
        Ok(self.resource(api_version, kind).await?.namespaced)
    }

    /// Watches a collection ([`KubeClient::collection_url`]), objects labelled `selector`, from
    /// `resource_version`; calls `on_event(type, object)` per event until it returns false or
    /// the server ends the watch (then returns the last resourceVersion seen).
    pub async fn watch(
        &self,
        collection: &str,
        selector: &str,
        resource_version: Option<&str>,
        timeout_seconds: u64,
        on_event: &mut (dyn FnMut(&str, Value) -> bool + Send),
    ) -> Result<Option<String>, Error> {
        let mut url = format!(
            "{collection}?watch=1&labelSelector={selector}&timeoutSeconds={timeout_seconds}&allowWatchBookmarks=true"
        );
        if let Some(rv) = resource_version {
            url.push_str(&format!("&resourceVersion={rv}"));
        }
        let what = format!("watching {collection}");
        let mut resp = self
            .request(reqwest::Method::GET, &url)
            .timeout(std::time::Duration::from_secs(timeout_seconds + 30))
            .send()
            .await
            .map_err(|e| api_err(&what, e.to_string()))?;
        if !resp.status().is_success() {
            return Err(api_err(&what, format!("HTTP {}", resp.status().as_u16())));
        }
        let mut buf: Vec<u8> = Vec::new();
        let mut last = resource_version.map(str::to_owned);
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| api_err(&what, e.to_string()))?
        {
            buf.extend_from_slice(&chunk);
            while let Some(pos) = buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = buf.drain(..=pos).collect();
                let Ok(event) = serde_json::from_slice::<Value>(&line) else {
                    continue;
                };
                let kind = event["type"].as_str().unwrap_or("").to_owned();
                let obj = event["object"].clone();
                if let Some(rv) = obj
                    .pointer("/metadata/resourceVersion")
                    .and_then(Value::as_str)
                {
                    last = Some(rv.to_owned());
                }
                if kind == "BOOKMARK" {
                    continue;
                }
                if kind == "ERROR" {
                    return Err(api_err(
                        &what,
                        obj["message"].as_str().unwrap_or("watch error").to_owned(),
                    ));
                }
                if !on_event(&kind, obj) {
                    return Ok(last);
                }
            }
        }
        Ok(last)
    }

    /// The objects labelled `selector` in a collection ([`KubeClient::collection_url`]), with
    /// the list's resourceVersion: the point a watch resumes from so no change falls between
    /// the two. Items carry no apiVersion or kind (lists leave them to the list).
    pub async fn list_selected(
        &self,
        collection: &str,
        selector: &str,
    ) -> Result<(Vec<Value>, Option<String>), Error> {
        let what = format!("listing {collection}");
        let list = self
            .get_json(&format!("{collection}?labelSelector={selector}"), &what)
            .await?
            .ok_or_else(|| api_err(&what, "not served"))?;
        let version = list
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let items = list["items"].as_array().cloned().unwrap_or_default();
        Ok((items, version))
    }

    /// Every object of a kind in a namespace (all namespaces when empty).
    pub async fn list(
        &self,
        api_version: &str,
        kind: &str,
        namespace: &str,
    ) -> Result<Vec<Value>, Error> {
        let url = self.collection_url(api_version, kind, namespace).await?;
        let what = format!(
            "listing {kind} in {}",
            if namespace.is_empty() {
                "all namespaces"
            } else {
                namespace
            }
        );
        let list = self
            .get_json(&url, &what)
            .await?
            .ok_or_else(|| api_err(&what, "not served"))?;
        Ok(list["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|mut o| {
                // Lists leave kind and apiVersion to the list; put them back on each item.
                o["apiVersion"] = Value::String(api_version.to_owned());
                o["kind"] = Value::String(kind.to_owned());
                o
            })
            .collect())
    }

    /// The live object for a desired one, `None` when it does not exist.
    pub async fn get(&self, obj: &Value, default_ns: &str) -> Result<Option<Value>, Error> {
        let url = self.url_of(obj, default_ns).await?;
        let what = format!("getting {}", crate::ObjectKey::of(obj));
        self.get_json(&url, &what).await
    }

    /// `…/api/v1` for the core group, `…/apis/group/version` for the others.
    fn group_version_url(&self, api_version: &str) -> String {
        if api_version.contains('/') {
            format!("{}/apis/{api_version}", self.base)
        } else {
            format!("{}/api/{api_version}", self.base)
        }
    }

    /// GET a URL as JSON, `None` on 404; `what` names the call in errors.
    async fn get_json(&self, url: &str, what: &str) -> Result<Option<Value>, Error> {
        let resp = self
            .request(reqwest::Method::GET, url)
            .send()
            .await
            .map_err(|e| api_err(what, e.to_string()))?;
        Self::json(resp, what).await
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
        let mut url = self.url_of(obj, default_ns).await?;
        url.push_str(&format!("?fieldManager={manager}&force=true"));
        if dry_run {
            url.push_str("&dryRun=All");
        }
        let what = format!("applying {}", crate::ObjectKey::of(obj));
        let resp = self
            .request(reqwest::Method::PATCH, &url)
            .header("Content-Type", "application/apply-patch+yaml")
            .body(obj.to_string())
            .send()
            .await
            .map_err(|e| api_err(&what, e.to_string()))?;
        Self::json(resp, &what)
            .await?
            .ok_or_else(|| api_err(&what, "not found"))
    }

    /// Deletes an object; a missing one is fine.
    pub async fn delete(&self, obj: &Value, default_ns: &str) -> Result<(), Error> {
        let url = self.url_of(obj, default_ns).await?;
        let what = format!("deleting {}", crate::ObjectKey::of(obj));
        let resp = self
            .request(reqwest::Method::DELETE, &url)
            .send()
            .await
            .map_err(|e| api_err(&what, e.to_string()))?;
        Self::json(resp, &what).await.map(|_| ())
    }
}
