//! An in-process fake Kubernetes API server on loopback, enough for driftwatch's sync tests:
//! discovery, get, list (label selectors), server-side apply (create or merge, managedFields per
//! manager, fields a manager stops applying removed unless another owns them, resourceVersion
//! and generation; refused in a namespace that does not exist, or with a stale
//! resourceVersion), updates by another manager, and delete. It does not know atomic maps or
//! subresources' field ownership; tests of those run on the real server only. Real servers are
//! used instead when `DRIFTWATCH_E2E_KUBECONFIG` is set; the fake stays for what a real server
//! cannot be made to do on purpose (drop every watch, answer 410 Gone, refuse with 503).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use crate::http::{Reply, Request, Server};

/// Argo CD's `Application` CRD (argoproj.io/v1alpha1), written from its documented fields with
/// a structural schema; installed into a real API server by
/// [`Cluster::install_application_crd`].
pub const APPLICATION_CRD: &str = include_str!("application-crd.yaml");

/// argocd-image-updater's `ImageUpdater` CRD (argocd-image-updater.argoproj.io/v1alpha1),
/// written from its documented fields with a structural schema; installed into a real API
/// server by [`Cluster::install_image_updater_crd`].
pub const IMAGE_UPDATER_CRD: &str = include_str!("image-updater-crd.yaml");

struct Kind {
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
}

const KINDS: &[Kind] = &[
    Kind {
        group: "",
        version: "v1",
        kind: "Namespace",
        plural: "namespaces",
        namespaced: false,
    },
    Kind {
        group: "",
        version: "v1",
        kind: "ConfigMap",
        plural: "configmaps",
        namespaced: true,
    },
    Kind {
        group: "",
        version: "v1",
        kind: "Pod",
        plural: "pods",
        namespaced: true,
    },
    Kind {
        group: "",
        version: "v1",
        kind: "Secret",
        plural: "secrets",
        namespaced: true,
    },
    Kind {
        group: "",
        version: "v1",
        kind: "Service",
        plural: "services",
        namespaced: true,
    },
    Kind {
        group: "apps",
        version: "v1",
        kind: "Deployment",
        plural: "deployments",
        namespaced: true,
    },
    Kind {
        group: "apps",
        version: "v1",
        kind: "StatefulSet",
        plural: "statefulsets",
        namespaced: true,
    },
    Kind {
        group: "apps",
        version: "v1",
        kind: "DaemonSet",
        plural: "daemonsets",
        namespaced: true,
    },
    Kind {
        group: "batch",
        version: "v1",
        kind: "Job",
        plural: "jobs",
        namespaced: true,
    },
    // Argo CD's CRD, so Applications can be read from the cluster as the image updater does.
    Kind {
        group: "argoproj.io",
        version: "v1alpha1",
        kind: "Application",
        plural: "applications",
        namespaced: true,
    },
    Kind {
        group: "argocd-image-updater.argoproj.io",
        version: "v1alpha1",
        kind: "ImageUpdater",
        plural: "imageupdaters",
        namespaced: true,
    },
];

#[derive(Default)]
struct State {
    /// (plural, namespace, name) → object.
    objects: BTreeMap<(String, String, String), Value>,
    revision: u64,
    /// Every change: (resourceVersion, plural, event type, object).
    events: Vec<(u64, String, &'static str, Value)>,
    /// Bumped to end every open watch (a dropped connection, a restart).
    epoch: u64,
    /// Watches from a resourceVersion at or below this get 410 Gone (history compacted).
    compacted: u64,
    /// Every request fails with 503 while set (the server is restarting).
    down: bool,
    /// Requests refused with 503 so far.
    refused: u64,
    /// Lists and watches across all namespaces are forbidden (403), as for credentials bound
    /// to namespaces by RoleBindings.
    namespaced_only: bool,
    /// (plural, namespace, HTTP method or "") whose requests are forbidden (403), as RBAC
    /// that grants nothing there ("") or not that verb.
    forbidden: Vec<(String, String, String)>,
    /// API groups served as absent (404 on discovery), as a CRD not installed.
    absent_groups: Vec<String>,
}

impl State {
    fn record(&mut self, plural: &str, kind: &'static str, obj: &Value) {
        self.events
            .push((self.revision, plural.to_owned(), kind, obj.clone()));
    }
}

/// The fake API server; objects live as long as it does.
pub struct FakeApiServer {
    server: Server,
    state: Arc<(Mutex<State>, std::sync::Condvar)>,
}

/// Deep-merges an applied configuration into an object: maps by key, lists of named items by
/// name, other lists replaced.
fn merge(into: &mut Value, applied: &Value) {
    match (into, applied) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                match a.get_mut(k) {
                    Some(existing) => merge(existing, v),
                    None => {
                        a.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (Value::Array(a), Value::Array(b))
            if b.iter().all(|i| i.get("name").is_some())
                && a.iter().all(|i| i.get("name").is_some()) =>
        {
            for item in b {
                match a.iter_mut().find(|x| x.get("name") == item.get("name")) {
                    Some(existing) => merge(existing, item),
                    None => a.push(item.clone()),
                }
            }
        }
        (slot, v) => *slot = v.clone(),
    }
}

/// Removes from `obj` every field in the field set `old` that is neither in `new` nor in any of
/// `others` (at this depth), as a real server does when a manager stops applying a field.
/// Identity (`metadata.name`, `metadata.namespace`) is never removed.
fn drop_unapplied(obj: &mut Value, old: &Value, new: &Value, others: &[&Value], depth: usize) {
    let Some(old) = old.as_object() else { return };
    for (key, old_sub) in old {
        if depth == 1 && matches!(key.as_str(), "f:name" | "f:namespace") {
            continue;
        }
        let new_sub = new.get(key);
        let other_subs: Vec<&Value> = others.iter().filter_map(|o| o.get(key)).collect();
        let owned = new_sub.is_some() || !other_subs.is_empty();
        if let Some(field) = key.strip_prefix("f:") {
            let Some(map) = obj.as_object_mut() else {
                continue;
            };
            if !owned {
                map.remove(field);
            } else if let Some(child) = map.get_mut(field) {
                drop_unapplied(
                    child,
                    old_sub,
                    new_sub.unwrap_or(&Value::Null),
                    &other_subs,
                    depth + 1,
                );
            }
        } else if let Some(name) = key
            .strip_prefix("k:")
            .and_then(|k| serde_json::from_str::<Value>(k).ok())
            .and_then(|k| k.get("name").cloned())
        {
            let Some(items) = obj.as_array_mut() else {
                continue;
            };
            let Some(i) = items.iter().position(|x| x.get("name") == Some(&name)) else {
                continue;
            };
            if !owned {
                items.remove(i);
            } else {
                drop_unapplied(
                    &mut items[i],
                    old_sub,
                    new_sub.unwrap_or(&Value::Null),
                    &other_subs,
                    depth + 1,
                );
            }
        }
    }
}

/// The fieldsV1 set of an applied configuration.
fn fields_of(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut out = serde_json::Map::new();
            for (k, val) in m {
                if k == "apiVersion" || k == "kind" {
                    continue;
                }
                out.insert(format!("f:{k}"), fields_of(val));
            }
            Value::Object(out)
        }
        Value::Array(items)
            if items
                .iter()
                .all(|i| i.get("name").and_then(Value::as_str).is_some()) =>
        {
            let mut out = serde_json::Map::new();
            for i in items {
                let name = i.get("name").and_then(Value::as_str).unwrap_or("");
                out.insert(format!("k:{{\"name\":\"{name}\"}}"), fields_of(i));
            }
            Value::Object(out)
        }
        _ => json!({}),
    }
}

fn status(code: u16, reason: &str, message: &str) -> Reply {
    Reply::new(
        code,
        &[("Content-Type", "application/json")],
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": reason, "message": message, "code": code}).to_string(),
    )
}

fn ok(v: &Value) -> Reply {
    Reply::new(200, &[("Content-Type", "application/json")], v.to_string())
}

impl FakeApiServer {
    /// Starts the server.
    pub fn start() -> Self {
        let mut initial = State::default();
        // As a new cluster has them.
        for ns in ["default", "kube-system", "kube-public"] {
            initial.objects.insert(
                ("namespaces".to_owned(), String::new(), ns.to_owned()),
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "resourceVersion": "0"}}),
            );
        }
        let state = Arc::new((Mutex::new(initial), std::sync::Condvar::new()));
        let shared = state.clone();
        let server = Server::start(move |req: &Request| handle(&shared, req));
        FakeApiServer { server, state }
    }

    /// `http://127.0.0.1:port`
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// A kubeconfig for this server, written to `path`.
    pub fn write_kubeconfig(&self, path: &std::path::Path) {
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {}\nusers:\n- name: fake\n  user: {{}}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\ncurrent-context: fake\n",
            self.url()
        );
        std::fs::write(path, text).expect("write kubeconfig");
    }

    /// The stored object, if any.
    pub fn get(&self, plural: &str, namespace: &str, name: &str) -> Option<Value> {
        let s = self.state.0.lock().ok()?;
        s.objects
            .get(&(plural.to_owned(), namespace.to_owned(), name.to_owned()))
            .cloned()
    }

    /// Stores an object as another client would create it (e.g. an Argo CD Application).
    pub fn insert(&self, plural: &str, namespace: &str, mut obj: Value) {
        let (lock, cvar) = &*self.state;
        let mut s = lock.lock().expect("state");
        s.revision += 1;
        obj["metadata"]["resourceVersion"] = json!(s.revision.to_string());
        if !namespace.is_empty() {
            obj["metadata"]["namespace"] = json!(namespace);
        }
        let name = obj["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        s.objects
            .insert((plural.to_owned(), namespace.to_owned(), name), obj.clone());
        s.record(plural, "ADDED", &obj);
        drop(s);
        cvar.notify_all();
    }

    /// Deletes a stored object as another client would; a missing one is fine.
    pub fn delete(&self, plural: &str, namespace: &str, name: &str) {
        let (lock, cvar) = &*self.state;
        let mut s = lock.lock().expect("state");
        if let Some(o) =
            s.objects
                .remove(&(plural.to_owned(), namespace.to_owned(), name.to_owned()))
        {
            s.revision += 1;
            s.record(plural, "DELETED", &o);
        }
        drop(s);
        cvar.notify_all();
    }

    /// Creates a namespace, as `kubectl create namespace` would.
    pub fn create_namespace(&self, name: &str) {
        self.insert(
            "namespaces",
            "",
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}),
        );
    }

    /// Writes an object's status as its controller would (the status subresource: the
    /// generation stays). Fails as the API server would: 404 when the object does not exist;
    /// an unchanged status is a no-op (no new resourceVersion, no event).
    pub fn set_status(
        &self,
        plural: &str,
        namespace: &str,
        name: &str,
        status: Value,
    ) -> Result<(), FakeError> {
        self.modify(plural, namespace, name, |obj| {
            if obj["status"] == status {
                return Ok(false);
            }
            obj["status"] = status;
            Ok(true)
        })
    }

    /// Changes a stored object as a write to the API server does: `change` says whether it
    /// changed anything (a no-op keeps the resourceVersion and sends no event) or refuses; a
    /// change gets the next resourceVersion and a MODIFIED event.
    fn modify(
        &self,
        plural: &str,
        namespace: &str,
        name: &str,
        change: impl FnOnce(&mut Value) -> Result<bool, FakeError>,
    ) -> Result<(), FakeError> {
        let mut s = self.state.0.lock().map_err(|_| FakeError::Poisoned)?;
        let next = s.revision + 1;
        let obj = s
            .objects
            .get_mut(&(plural.to_owned(), namespace.to_owned(), name.to_owned()))
            .ok_or_else(|| FakeError::NotFound(format!("{plural}/{namespace}/{name}")))?;
        if !change(obj)? {
            return Ok(());
        }
        obj["metadata"]["resourceVersion"] = json!(next.to_string());
        let snapshot = obj.clone();
        s.revision = next;
        s.record(plural, "MODIFIED", &snapshot);
        drop(s);
        self.state.1.notify_all();
        Ok(())
    }

    /// Ends every open watch, as a load balancer or a flaky network would.
    pub fn drop_watches(&self) {
        if let Ok(mut s) = self.state.0.lock() {
            s.epoch += 1;
        }
        self.state.1.notify_all();
    }

    /// Simulates an API server restart: open watches end, requests fail with 503 until
    /// [`FakeApiServer::up`], and the event history is compacted, so resuming a watch from an
    /// old resourceVersion gets 410 Gone and the client must list again.
    pub fn go_down(&self) {
        if let Ok(mut s) = self.state.0.lock() {
            s.epoch += 1;
            s.down = true;
            s.compacted = s.revision;
            s.events.clear();
        }
        self.state.1.notify_all();
    }

    /// From now on, serves the API group `group` as absent (discovery answers 404), as a
    /// server without its CRD does.
    pub fn hide_group(&self, group: &str) {
        if let Ok(mut s) = self.state.0.lock() {
            s.absent_groups.push(group.to_owned());
        }
    }

    /// From now on, refuses lists and watches across all namespaces with 403 Forbidden.
    pub fn forbid_all_namespaces(&self) {
        if let Ok(mut s) = self.state.0.lock() {
            s.namespaced_only = true;
        }
    }

    /// From now on, refuses every request for `plural` in `namespace` with 403 Forbidden, as
    /// RBAC that grants nothing there does.
    pub fn forbid(&self, plural: &str, namespace: &str) {
        self.forbid_method("", plural, namespace);
    }

    /// From now on, refuses requests with HTTP `method` (`PATCH`: no patch, hence no apply)
    /// for `plural` in `namespace` with 403 Forbidden, as RBAC without that verb does.
    pub fn forbid_method(&self, method: &str, plural: &str, namespace: &str) {
        if let Ok(mut s) = self.state.0.lock() {
            s.forbidden
                .push((plural.to_owned(), namespace.to_owned(), method.to_owned()));
        }
    }

    /// How many requests were refused while down: the client's attempts to come back.
    pub fn refused(&self) -> u64 {
        self.state.0.lock().map(|s| s.refused).unwrap_or(0)
    }

    /// Ends a restart begun by [`FakeApiServer::go_down`].
    pub fn up(&self) {
        if let Ok(mut s) = self.state.0.lock() {
            s.down = false;
        }
        self.state.1.notify_all();
    }

    /// Changes a field as another client would (`kubectl set image`, `kubectl patch
    /// --type=json` with `replace`): an Update by `manager`. Fails as the API server would: 404
    /// when the object does not exist, 422 when the field does not (a JSON patch `replace` needs
    /// it). Writing the value it already has is a no-op: no new resourceVersion, no event.
    pub fn update_as(
        &self,
        manager: &str,
        plural: &str,
        namespace: &str,
        name: &str,
        pointer: &str,
        value: Value,
    ) -> Result<(), FakeError> {
        let what = format!("{plural}/{namespace}/{name}");
        self.modify(plural, namespace, name, |obj| {
            let slot = obj
                .pointer_mut(pointer)
                .ok_or_else(|| FakeError::Invalid(format!("{what} has no {pointer}")))?;
            if *slot == value {
                return Ok(false);
            }
            *slot = value;
            // Only a change of the spec is a new generation, as on a real server.
            if pointer.starts_with("/spec/") {
                let generation = obj["metadata"]["generation"].as_i64().unwrap_or(1) + 1;
                obj["metadata"]["generation"] = json!(generation);
            }
            let fields = fields_at(obj, pointer);
            if let Some(entries) = obj["metadata"]["managedFields"].as_array_mut() {
                entries.retain(|e| e["manager"] != manager);
                entries.push(json!({"manager": manager, "operation": "Update", "apiVersion": "v1", "fieldsV1": fields}));
            }
            Ok(true)
        })
    }
}

/// A field path like /spec/template/spec/containers/0/image as managedFields keys
/// (`f:spec`, `k:{"name":"backend"}`…), list items named by their `name`.
fn fields_at(obj: &Value, pointer: &str) -> Value {
    let mut fields = json!({});
    let mut cursor = &mut fields;
    let mut live_cursor = obj.clone();
    for seg in pointer.trim_start_matches('/').split('/') {
        let key = match seg.parse::<usize>() {
            Ok(i) => {
                let name = live_cursor
                    .get(i)
                    .and_then(|x| x.get("name"))
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned();
                live_cursor = live_cursor.get(i).cloned().unwrap_or_default();
                format!("k:{{\"name\":\"{name}\"}}")
            }
            Err(_) => {
                live_cursor = live_cursor.get(seg).cloned().unwrap_or_default();
                format!("f:{seg}")
            }
        };
        cursor[key.as_str()] = json!({});
        cursor = &mut cursor[key.as_str()];
    }
    fields
}

/// Why one of the fake's helpers refused, as the API server would have.
#[derive(Debug, thiserror::Error)]
pub enum FakeError {
    /// 404: the object does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// 422: the request does not fit the object.
    #[error("invalid: {0}")]
    Invalid(String),
    /// A test thread panicked while holding the fake's state.
    #[error("the fake's state is poisoned")]
    Poisoned,
}

fn handle(shared: &Arc<(Mutex<State>, std::sync::Condvar)>, req: &Request) -> Reply {
    let state = &shared.0;
    let path = req.path().to_owned();
    // Discovery.
    if req.method == "GET"
        && (path == "/api/v1" || path.starts_with("/apis/") && path.matches('/').count() == 3)
    {
        let (group, version) = if path == "/api/v1" {
            ("", "v1")
        } else {
            let mut p = path.trim_start_matches("/apis/").split('/');
            (p.next().unwrap_or(""), p.next().unwrap_or(""))
        };
        let resources: Vec<Value> = KINDS
            .iter()
            .filter(|k| k.group == group && k.version == version)
            .map(|k| json!({"name": k.plural, "kind": k.kind, "namespaced": k.namespaced, "verbs": ["get", "list", "patch", "delete"]}))
            .collect();
        let hidden = state
            .lock()
            .map(|s| s.absent_groups.iter().any(|g| g == group))
            .unwrap_or(false);
        if resources.is_empty() || hidden {
            return status(404, "NotFound", "no such group version");
        }
        let gv = if group.is_empty() {
            version.to_owned()
        } else {
            format!("{group}/{version}")
        };
        return ok(&json!({"kind": "APIResourceList", "groupVersion": gv, "resources": resources}));
    }
    // /api/v1/... or /apis/g/v/... then [namespaces/ns/]plural[/name]
    let rest = if let Some(r) = path.strip_prefix("/api/v1/") {
        r.to_owned()
    } else if let Some(r) = path.strip_prefix("/apis/") {
        r.splitn(3, '/').nth(2).unwrap_or("").to_owned()
    } else {
        return status(404, "NotFound", "unknown path");
    };
    let parts: Vec<&str> = rest.split('/').collect();
    let (namespace, plural, name) = match parts.as_slice() {
        ["namespaces", ns, plural] => (*ns, *plural, None),
        ["namespaces", ns, plural, name] => (*ns, *plural, Some(*name)),
        [plural] => ("", *plural, None),
        [plural, name] => ("", *plural, Some(*name)),
        _ => return status(404, "NotFound", "unknown path"),
    };
    let Some(kind) = KINDS.iter().find(|k| k.plural == plural) else {
        return status(404, "NotFound", &format!("unknown resource {plural}"));
    };
    let Ok(mut s) = state.lock() else {
        return status(500, "InternalError", "state poisoned");
    };
    if s.down {
        s.refused += 1;
        return status(503, "ServiceUnavailable", "the API server is restarting");
    }
    if s.namespaced_only && kind.namespaced && namespace.is_empty() && name.is_none() {
        return status(
            403,
            "Forbidden",
            &format!(
                "{plural} is forbidden: cannot list resource \"{plural}\" at the cluster scope"
            ),
        );
    }
    if s.forbidden.iter().any(|(p, ns, m)| {
        p == plural && ns == namespace && (m.is_empty() || m.as_str() == req.method)
    }) {
        return status(
            403,
            "Forbidden",
            &format!(
                "{plural} is forbidden: cannot {} resource \"{plural}\" in the namespace \"{namespace}\"",
                req.method.to_lowercase()
            ),
        );
    }
    let key = |n: &str| (plural.to_owned(), namespace.to_owned(), n.to_owned());
    match (req.method.as_str(), name) {
        ("GET", Some(n)) => match s.objects.get(&key(n)) {
            Some(o) => ok(o),
            None => status(404, "NotFound", &format!("{plural} \"{n}\" not found")),
        },
        ("GET", None) if req.query("watch").is_some_and(|w| w == "1" || w == "true") => {
            let from: u64 = req
                .query("resourceVersion")
                .and_then(|v| v.parse().ok())
                .unwrap_or(s.revision);
            let selector = req.query("labelSelector").unwrap_or_default();
            let timeout = req
                .query("timeoutSeconds")
                .and_then(|t| t.parse::<u64>().ok())
                .unwrap_or(30);
            let epoch = s.epoch;
            let expired = from < s.compacted;
            drop(s);
            let shared = shared.clone();
            let plural = plural.to_owned();
            let namespace = namespace.to_owned();
            Reply::Stream(Box::new(move |out: &mut dyn std::io::Write| {
                if expired {
                    let line = json!({"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 410, "reason": "Expired", "message": format!("too old resource version: {from}")}}).to_string() + "\n";
                    return out.write_all(line.as_bytes());
                }
                let wanted: Vec<(String, String)> = selector
                    .split(',')
                    .filter_map(|kv| {
                        kv.split_once('=')
                            .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    })
                    .collect();
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(timeout);
                let mut seen = from;
                loop {
                    let batch: Vec<(u64, &'static str, Value)> = {
                        let (lock, cvar) = &*shared;
                        let mut st = lock.lock().map_err(|_| std::io::Error::other("poisoned"))?;
                        while st.revision <= seen {
                            let left =
                                deadline.saturating_duration_since(std::time::Instant::now());
                            if left.is_zero() || st.epoch != epoch {
                                return Ok(());
                            }
                            st = cvar
                                .wait_timeout(st, left)
                                .map_err(|_| std::io::Error::other("poisoned"))?
                                .0;
                        }
                        st.events
                            .iter()
                            .filter(|(rv, p, _, o)| {
                                *rv > seen
                                    && *p == plural
                                    && (namespace.is_empty()
                                        || o["metadata"]["namespace"].as_str()
                                            == Some(namespace.as_str()))
                                    && wanted.iter().all(|(k, v)| {
                                        o["metadata"]["labels"][k.as_str()].as_str()
                                            == Some(v.as_str())
                                    })
                            })
                            .map(|(rv, _, t, o)| (*rv, *t, o.clone()))
                            .collect()
                    };
                    {
                        let (lock, _) = &*shared;
                        if let Ok(st) = lock.lock() {
                            seen = st.revision;
                        }
                    }
                    for (_, kind, obj) in batch {
                        let line = json!({"type": kind, "object": obj}).to_string() + "\n";
                        out.write_all(line.as_bytes())?;
                    }
                }
            }))
        }
        ("GET", None) => {
            let selector = req.query("labelSelector").unwrap_or_default();
            let wanted: Vec<(&str, &str)> = selector
                .split(',')
                .filter_map(|kv| kv.split_once('='))
                .collect();
            let items: Vec<Value> = s
                .objects
                .iter()
                .filter(|((p, ns, _), _)| p == plural && (namespace.is_empty() || ns == namespace))
                .map(|(_, o)| o)
                .filter(|o| {
                    wanted
                        .iter()
                        .all(|(k, v)| o["metadata"]["labels"][*k].as_str() == Some(*v))
                })
                .cloned()
                .collect();
            ok(
                &json!({"kind": format!("{}List", kind.kind), "apiVersion": "v1", "metadata": {"resourceVersion": s.revision.to_string()}, "items": items}),
            )
        }
        ("PATCH", Some(n)) => {
            if req.header("content-type") != Some("application/apply-patch+yaml") {
                return status(
                    415,
                    "UnsupportedMediaType",
                    "only server-side apply is supported here",
                );
            }
            let Some(manager) = req.query("fieldManager") else {
                return status(422, "Invalid", "fieldManager is required for apply patch");
            };
            let Ok(applied) = serde_json::from_slice::<Value>(&req.body) else {
                return status(400, "BadRequest", "body is not JSON");
            };
            let dry = req.query("dryRun").is_some();
            // As a real server: nothing is created in a namespace that does not exist.
            if kind.namespaced
                && !s.objects.contains_key(&key(n))
                && !s.objects.contains_key(&(
                    "namespaces".to_owned(),
                    String::new(),
                    namespace.to_owned(),
                ))
            {
                return status(
                    404,
                    "NotFound",
                    &format!("namespaces \"{namespace}\" not found"),
                );
            }
            // As a real server: an apply that names a resourceVersion must name the current one.
            if let Some(rv) = applied
                .pointer("/metadata/resourceVersion")
                .and_then(Value::as_str)
                && s.objects
                    .get(&key(n))
                    .and_then(|o| o.pointer("/metadata/resourceVersion"))
                    .and_then(Value::as_str)
                    != Some(rv)
            {
                return status(
                    409,
                    "Conflict",
                    &format!(
                        "Operation cannot be fulfilled on {plural} \"{n}\": the object has been modified; please apply your changes to the latest version and try again"
                    ),
                );
            }
            let mut obj = s.objects.get(&key(n)).cloned().unwrap_or_else(|| {
                json!({"apiVersion": applied["apiVersion"], "kind": kind.kind, "metadata": {"name": n, "generation": 0, "managedFields": []}})
            });
            if kind.namespaced {
                obj["metadata"]["namespace"] = json!(namespace);
            }
            let before_spec = obj.get("spec").cloned();
            merge(&mut obj, &applied);
            // As a real server: what this manager applied before and applies no more, and no
            // other manager owns, is removed.
            let entries = obj["metadata"]["managedFields"].as_array().cloned();
            if let Some(entries) = &entries {
                let mine =
                    |e: &&Value| e["manager"] == manager.as_str() && e["operation"] == "Apply";
                if let Some(old) = entries.iter().find(mine).map(|e| e["fieldsV1"].clone()) {
                    let others: Vec<&Value> = entries
                        .iter()
                        .filter(|e| !mine(e))
                        .map(|e| &e["fieldsV1"])
                        .collect();
                    drop_unapplied(&mut obj, &old, &fields_of(&applied), &others, 0);
                }
            }
            let entries = obj["metadata"]["managedFields"].as_array_mut();
            if let Some(entries) = entries {
                entries.retain(|e| e["manager"] != manager.as_str() || e["operation"] != "Apply");
                entries.push(json!({"manager": manager, "operation": "Apply", "apiVersion": applied["apiVersion"], "fieldsV1": fields_of(&applied)}));
            }
            if obj.get("spec").cloned() != before_spec {
                let generation = obj["metadata"]["generation"].as_i64().unwrap_or(0) + 1;
                obj["metadata"]["generation"] = json!(generation);
            }
            if dry {
                return ok(&obj);
            }
            // As a real server: an apply that changes nothing is a no-op — no new
            // resourceVersion, no event.
            if s.objects.get(&key(n)) == Some(&obj) {
                return ok(&obj);
            }
            let existed = s.objects.contains_key(&key(n));
            s.revision += 1;
            obj["metadata"]["resourceVersion"] = json!(s.revision.to_string());
            s.objects.insert(key(n), obj.clone());
            s.record(plural, if existed { "MODIFIED" } else { "ADDED" }, &obj);
            drop(s);
            shared.1.notify_all();
            ok(&obj)
        }
        ("DELETE", Some(n)) => match s.objects.remove(&key(n)) {
            Some(o) => {
                s.revision += 1;
                s.record(plural, "DELETED", &o);
                drop(s);
                shared.1.notify_all();
                ok(&o)
            }
            None => status(404, "NotFound", &format!("{plural} \"{n}\" not found")),
        },
        _ => status(405, "MethodNotAllowed", "not supported by the fake"),
    }
}

/// The cluster a test runs against: the fake server, or a real API server when
/// `DRIFTWATCH_E2E_KUBECONFIG` names a kubeconfig. Its helpers do on a real server what a person
/// or a controller would (through `kubectl`), and the same on the fake; the test's namespaces are
/// deleted when it ends.
pub struct Cluster {
    /// The fake, when no real server was given.
    pub fake: Option<FakeApiServer>,
    /// The kubeconfig driftwatch is given.
    pub kubeconfig: std::path::PathBuf,
    namespaces: Mutex<Vec<String>>,
}

impl Cluster {
    /// The fake (its kubeconfig written into `dir`) or the real server.
    pub fn new(dir: &std::path::Path) -> Self {
        match std::env::var_os("DRIFTWATCH_E2E_KUBECONFIG") {
            Some(k) => {
                eprintln!("cluster: the real API server of DRIFTWATCH_E2E_KUBECONFIG");
                Cluster {
                    fake: None,
                    kubeconfig: std::path::PathBuf::from(k),
                    namespaces: Mutex::new(Vec::new()),
                }
            }
            None => Self::fake(dir),
        }
    }

    /// A second cluster beside the one [`Cluster::new`] gives, for tests of several clusters:
    /// the real API server of `DRIFTWATCH_E2E_KUBECONFIG_B` when set (scripts/test starts one),
    /// else another in-process fake. Its kubeconfig (written into `dir`) names its cluster, user
    /// and context `name`, so it joins the first one's like `KUBECONFIG=a:b`.
    pub fn second(dir: &std::path::Path, name: &str) -> Self {
        let kubeconfig = dir.join(format!("kubeconfig-{name}"));
        match std::env::var_os("DRIFTWATCH_E2E_KUBECONFIG_B") {
            Some(k) => {
                eprintln!("second cluster: the real API server of DRIFTWATCH_E2E_KUBECONFIG_B");
                let out = std::process::Command::new("kubectl")
                    .arg("--kubeconfig")
                    .arg(&k)
                    .args(["config", "view", "--raw", "--minify", "-o", "json"])
                    .output()
                    .expect("kubectl config view");
                assert!(out.status.success(), "kubectl config view of {k:?}");
                let mut config: Value = serde_json::from_slice(&out.stdout).expect("kubeconfig");
                config["clusters"][0]["name"] = json!(name);
                config["users"][0]["name"] = json!(name);
                config["contexts"][0] =
                    json!({"name": name, "context": {"cluster": name, "user": name}});
                config["current-context"] = json!(name);
                std::fs::write(&kubeconfig, config.to_string()).expect("write kubeconfig");
                Cluster {
                    fake: None,
                    kubeconfig,
                    namespaces: Mutex::new(Vec::new()),
                }
            }
            None => {
                eprintln!(
                    "second cluster: an in-process fake (DRIFTWATCH_E2E_KUBECONFIG_B names none)"
                );
                let fake = FakeApiServer::start();
                let text = format!(
                    "apiVersion: v1\nkind: Config\nclusters:\n- name: {name}\n  cluster:\n    server: {}\nusers:\n- name: {name}\n  user: {{}}\ncontexts:\n- name: {name}\n  context:\n    cluster: {name}\n    user: {name}\ncurrent-context: {name}\n",
                    fake.url()
                );
                std::fs::write(&kubeconfig, text).expect("write kubeconfig");
                Cluster {
                    fake: Some(fake),
                    kubeconfig,
                    namespaces: Mutex::new(Vec::new()),
                }
            }
        }
    }

    /// The API server's URL, as the kubeconfig names it.
    pub fn server(&self) -> String {
        if let Some(f) = &self.fake {
            return f.url();
        }
        self.kubectl(&[
            "config",
            "view",
            "--minify",
            "-o",
            "jsonpath={.clusters[0].cluster.server}",
        ])
        .trim()
        .to_owned()
    }

    /// A token that may do anything on this cluster: a service account bound to cluster-admin
    /// and a token from the TokenRequest API (real servers); any text on the fake, which checks
    /// no credentials. What an Argo CD cluster Secret's `bearerToken` holds.
    pub fn admin_token(&self, ns: &str) -> String {
        if self.fake.is_some() {
            return "fake-token".to_owned();
        }
        let rbac = format!(
            "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: remote-admin\n  namespace: {ns}\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n  name: remote-admin-{ns}\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: ClusterRole\n  name: cluster-admin\nsubjects:\n- kind: ServiceAccount\n  name: remote-admin\n  namespace: {ns}\n"
        );
        self.kubectl_in(&self.kubeconfig, &["apply", "-f", "-"], &rbac);
        self.kubectl(&["-n", ns, "create", "token", "remote-admin", "--duration=1h"])
            .trim()
            .to_owned()
    }

    /// The CA that signs the API server's certificate, base64 as a kubeconfig holds it; empty
    /// on the fake (plain HTTP).
    pub fn ca_data(&self) -> String {
        if self.fake.is_some() {
            return String::new();
        }
        self.kubectl(&[
            "config",
            "view",
            "--raw",
            "--minify",
            "-o",
            "jsonpath={.clusters[0].cluster.certificate-authority-data}",
        ])
        .trim()
        .to_owned()
    }

    /// The fake, whatever the environment says: for what a real server cannot be made to do on
    /// purpose (drop every watch, restart with its history compacted). `why` is printed, so a
    /// run against a real server shows which behaviour it did not see there.
    pub fn fake_only(dir: &std::path::Path, why: &str) -> Self {
        if std::env::var_os("DRIFTWATCH_E2E_KUBECONFIG").is_some() {
            eprintln!("cluster: the in-process fake only, not the real API server: {why}");
        }
        Self::fake(dir)
    }

    fn fake(dir: &std::path::Path) -> Self {
        let fake = FakeApiServer::start();
        let kubeconfig = dir.join("kubeconfig");
        fake.write_kubeconfig(&kubeconfig);
        Cluster {
            fake: Some(fake),
            kubeconfig,
            namespaces: Mutex::new(Vec::new()),
        }
    }

    /// Whether this is a real API server.
    /// The Kubernetes Events recorded on object `name` in `namespace`, as `(reason,
    /// reporting controller, note)`; empty on the fake, which has no Events API.
    pub fn events_on(&self, namespace: &str, name: &str) -> Vec<(String, String, String)> {
        if !self.is_real() {
            return Vec::new();
        }
        let out = self.kubectl(&["get", "events.events.k8s.io", "-n", namespace, "-o", "json"]);
        let list: Value = serde_json::from_str(&out).unwrap_or(Value::Null);
        list["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["regarding"]["name"] == name)
            .map(|e| {
                let s = |p: &str| {
                    e.pointer(p)
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_owned()
                };
                (s("/reason"), s("/reportingController"), s("/note"))
            })
            .collect()
    }

    /// The instances (pods; `reportingInstance`) that recorded an Event of `reason` on object
    /// `name` in `namespace`, one entry per Event; empty on the fake.
    pub fn event_instances(&self, namespace: &str, name: &str, reason: &str) -> Vec<String> {
        if !self.is_real() {
            return Vec::new();
        }
        let out = self.kubectl(&["get", "events.events.k8s.io", "-n", namespace, "-o", "json"]);
        let list: Value = serde_json::from_str(&out).unwrap_or(Value::Null);
        list["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["regarding"]["name"] == name && e["reason"] == reason)
            .map(|e| e["reportingInstance"].as_str().unwrap_or("").to_owned())
            .collect()
    }

    pub fn is_real(&self) -> bool {
        self.fake.is_none()
    }

    /// Deletes `ns` when the test ends (real servers only; the fake goes away by itself).
    pub fn cleanup_namespace(&self, ns: &str) {
        if let Ok(mut n) = self.namespaces.lock() {
            n.push(ns.to_owned());
        }
    }

    /// A namespace name for this test: unique on a real server shared by many tests (and
    /// deleted when the test ends), `base` itself on the fake.
    pub fn unique_namespace(&self, base: &str) -> String {
        if self.is_real() {
            let ns = format!("{base}-{}", std::process::id());
            self.cleanup_namespace(&ns);
            ns
        } else {
            base.to_owned()
        }
    }

    fn kubectl_in(&self, kubeconfig: &std::path::Path, args: &[&str], stdin: &str) -> String {
        use std::io::Write;
        let mut child = std::process::Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run kubectl");
        if let Some(mut i) = child.stdin.take() {
            i.write_all(stdin.as_bytes()).expect("kubectl stdin");
        }
        let out = child.wait_with_output().expect("kubectl");
        assert!(
            out.status.success(),
            "kubectl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn kubectl(&self, args: &[&str]) -> String {
        self.kubectl_in(&self.kubeconfig, args, "")
    }

    /// Creates a namespace, as `kubectl create namespace` does (and deletes it when the test
    /// ends, on a real server).
    pub fn create_namespace(&self, ns: &str) {
        match &self.fake {
            Some(f) => f.create_namespace(ns),
            None => {
                self.cleanup_namespace(ns);
                self.kubectl(&["create", "namespace", ns]);
            }
        }
    }

    /// `kubectl set image deployment/NAME CONTAINER=IMAGE`, as a person would do by hand
    /// (field manager `kubectl-set`).
    pub fn set_image(&self, ns: &str, deployment: &str, container: &str, image: &str) {
        match &self.fake {
            Some(f) => {
                let live = f.get("deployments", ns, deployment).expect("deployment");
                let index = live["spec"]["template"]["spec"]["containers"]
                    .as_array()
                    .and_then(|c| c.iter().position(|c| c["name"] == container))
                    .expect("container");
                f.update_as(
                    "kubectl-set",
                    "deployments",
                    ns,
                    deployment,
                    &format!("/spec/template/spec/containers/{index}/image"),
                    json!(image),
                )
                .expect("kubectl set image");
            }
            None => {
                self.kubectl(&[
                    "-n",
                    ns,
                    "set",
                    "image",
                    &format!("deployment/{deployment}"),
                    &format!("{container}={image}"),
                ]);
            }
        }
    }

    /// Replaces one field by hand (`kubectl patch --type=json`), as field manager
    /// `kubectl-patch`.
    pub fn patch(&self, plural: &str, ns: &str, name: &str, pointer: &str, value: Value) {
        self.update_as("kubectl-patch", plural, ns, name, pointer, value);
    }

    /// Replaces one field as another controller would: an update by field manager `manager`
    /// (`kubectl patch --type=json --field-manager=MANAGER` on a real server).
    pub fn update_as(
        &self,
        manager: &str,
        plural: &str,
        ns: &str,
        name: &str,
        pointer: &str,
        value: Value,
    ) {
        match &self.fake {
            Some(f) => f
                .update_as(manager, plural, ns, name, pointer, value)
                .expect("update"),
            None => {
                let ops = json!([{"op": "replace", "path": pointer, "value": value}]).to_string();
                self.kubectl(&[
                    "-n",
                    ns,
                    "patch",
                    plural,
                    name,
                    "--type=json",
                    &format!("--field-manager={manager}"),
                    "-p",
                    &ops,
                ]);
            }
        }
    }

    /// Scales a Deployment through its `scale` subresource as field manager `manager`, as a
    /// HorizontalPodAutoscaler (or `kubectl scale`) does. Real servers only: the fake does not
    /// model subresources' field ownership.
    pub fn scale_as(&self, manager: &str, ns: &str, deployment: &str, replicas: u32) {
        assert!(self.is_real(), "scale_as needs a real API server");
        let body = json!({"spec": {"replicas": replicas}}).to_string();
        self.kubectl(&[
            "-n",
            ns,
            "patch",
            "deployment",
            deployment,
            "--subresource=scale",
            "--type=merge",
            &format!("--field-manager={manager}"),
            "-p",
            &body,
        ]);
    }

    /// Writes an object's status as its controller would (the status subresource).
    pub fn set_status(&self, plural: &str, ns: &str, name: &str, status: Value) {
        match &self.fake {
            Some(f) => f.set_status(plural, ns, name, status).expect("status"),
            None => {
                let body = json!({ "status": status }).to_string();
                self.kubectl(&[
                    "-n",
                    ns,
                    "patch",
                    plural,
                    name,
                    "--subresource=status",
                    "--type=merge",
                    "-p",
                    &body,
                ]);
            }
        }
    }

    /// What a kubelet reports once the pods of a workload run: the container `container` of
    /// every pod labelled `label` (`key=value`) runs `image` at `digest`. The fake has no
    /// ReplicaSet controller, so there one such pod is created; on a real server the pods the
    /// controllers made (Pending: there is no kubelet) get that status.
    pub fn run_pods(&self, ns: &str, label: &str, container: &str, image: &str, digest: &str) {
        // The repository, without the tag or digest the spec names.
        let repository = image.split_once('@').map_or(image, |(r, _)| r);
        let repository = match repository.rsplit_once(':') {
            Some((r, tag)) if !tag.contains('/') => r,
            _ => repository,
        };
        // Ready, as a kubelet reports a started container that passes its probes: on a real
        // server the ReplicaSet controller then counts the pod available.
        let statuses = json!({
            "phase": "Running",
            "conditions": [
                {"type": "Ready", "status": "True", "lastTransitionTime": "2026-11-01T00:00:00Z"},
                {"type": "ContainersReady", "status": "True", "lastTransitionTime": "2026-11-01T00:00:00Z"},
            ],
            "containerStatuses": [{
                "name": container,
                "image": image,
                "imageID": format!("docker-pullable://{repository}@{digest}"),
                "ready": true,
                "restartCount": 0,
                "started": true,
                "state": {"running": {"startedAt": "2026-11-01T00:00:00Z"}},
            }],
        });
        let (key, value) = label.split_once('=').expect("label key=value");
        match &self.fake {
            Some(f) => f.insert(
                "pods",
                ns,
                json!({
                    "apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": format!("{value}-1"), "labels": {key: value}},
                    "spec": {"containers": [{"name": container, "image": image}]},
                    "status": statuses,
                }),
            ),
            None => {
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
                let pods = loop {
                    let list: Value = serde_json::from_str(
                        &self.kubectl(&["-n", ns, "get", "pods", "-l", label, "-o", "json"]),
                    )
                    .expect("pod list");
                    let names: Vec<String> = list["items"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter(|p| {
                            p.pointer("/spec/containers/0/image")
                                .and_then(Value::as_str)
                                == Some(image)
                        })
                        .filter_map(|p| p["metadata"]["name"].as_str().map(str::to_owned))
                        .collect();
                    if !names.is_empty() {
                        break names;
                    }
                    assert!(
                        std::time::Instant::now() < deadline,
                        "no pod labelled {label} running {image} in {ns}"
                    );
                    std::thread::sleep(std::time::Duration::from_millis(100));
                };
                for pod in pods {
                    self.set_status("pods", ns, &pod, statuses.clone());
                }
            }
        }
    }

    /// A kubeconfig whose credentials may do anything in `ns` and nothing across namespaces
    /// (no cluster-wide list or watch), as a tenant's service account has. On the fake, the
    /// server refuses every cluster-wide list from then on.
    pub fn namespace_bound_kubeconfig(
        &self,
        ns: &str,
        dir: &std::path::Path,
    ) -> std::path::PathBuf {
        if let Some(f) = &self.fake {
            f.forbid_all_namespaces();
            return self.kubeconfig.clone();
        }
        {
            let rbac = format!(
                "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: driftwatch\n  namespace: {ns}\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: driftwatch\n  namespace: {ns}\nrules:\n- apiGroups: ['*']\n  resources: ['*']\n  verbs: ['*']\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: driftwatch\n  namespace: {ns}\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: Role\n  name: driftwatch\nsubjects:\n- kind: ServiceAccount\n  name: driftwatch\n  namespace: {ns}\n"
            );
            self.kubectl_in(&self.kubeconfig, &["apply", "-f", "-"], &rbac);
            let token = self.kubectl(&["-n", ns, "create", "token", "driftwatch", "--duration=1h"]);
            let admin: Value = serde_json::from_str(
                &self.kubectl(&["config", "view", "--raw", "--minify", "-o", "json"]),
            )
            .expect("kubeconfig");
            let cluster = &admin["clusters"][0]["cluster"];
            let text = format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {}\n    certificate-authority-data: {}\nusers:\n- name: tenant\n  user:\n    token: {}\ncontexts:\n- name: tenant\n  context:\n    cluster: c\n    user: tenant\ncurrent-context: tenant\n",
                cluster["server"].as_str().expect("server"),
                cluster["certificate-authority-data"]
                    .as_str()
                    .expect("CA data"),
                token.trim()
            );
            let path = dir.join("tenant-kubeconfig");
            std::fs::write(&path, text).expect("write kubeconfig");
            // The token must really be refused a cluster-wide list, or the test proves nothing.
            let out = std::process::Command::new("kubectl")
                .arg("--kubeconfig")
                .arg(&path)
                .args(["get", "deployments", "--all-namespaces"])
                .output()
                .expect("kubectl");
            assert!(!out.status.success(), "the tenant may list all namespaces");
            path
        }
    }

    /// Installs the `argoproj.io/v1alpha1` Application CRD ([`APPLICATION_CRD`]) and waits
    /// until it is served. Idempotent, also across test processes running at once: a
    /// server-side apply of the same object by the same manager changes nothing. The fake
    /// knows Applications already. The CRD is left installed (other tests use it).
    pub fn install_application_crd(&self) {
        self.install_crd(APPLICATION_CRD, "applications.argoproj.io");
    }

    /// Installs the ImageUpdater CRD ([`IMAGE_UPDATER_CRD`]) as
    /// [`Cluster::install_application_crd`] does. The fake knows ImageUpdaters already.
    pub fn install_image_updater_crd(&self) {
        self.install_crd(
            IMAGE_UPDATER_CRD,
            "imageupdaters.argocd-image-updater.argoproj.io",
        );
    }

    fn install_crd(&self, crd: &str, resource: &str) {
        if self.fake.is_some() {
            return;
        }
        self.kubectl_in(
            &self.kubeconfig,
            &[
                "apply",
                "--server-side",
                "--force-conflicts",
                "--field-manager=driftwatch-tests",
                "-f",
                "-",
            ],
            crd,
        );
        self.kubectl(&[
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            &format!("crd/{resource}"),
        ]);
        // Established is set before discovery serves the kind everywhere; a client that
        // discovers it at once may still miss it, so wait until it is listed.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let out = std::process::Command::new("kubectl")
                .arg("--kubeconfig")
                .arg(&self.kubeconfig)
                .args(["get", resource, "-A", "-o", "name"])
                .output()
                .expect("kubectl");
            if out.status.success() {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{resource} is not served: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }

    /// Creates an object as a person with `kubectl create` would (its kind must be one the
    /// fake knows: Application, Secret, ConfigMap…). Fails when it exists.
    pub fn create(&self, obj: Value) {
        match &self.fake {
            Some(f) => {
                let kind = obj["kind"].as_str().expect("kind");
                let plural = KINDS
                    .iter()
                    .find(|k| k.kind == kind)
                    .map(|k| k.plural)
                    .expect("a kind the fake knows");
                let ns = obj["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned();
                assert!(
                    f.get(plural, &ns, obj["metadata"]["name"].as_str().unwrap_or(""))
                        .is_none(),
                    "{kind} exists"
                );
                let mut obj = obj;
                if obj["metadata"]["generation"].is_null() {
                    obj["metadata"]["generation"] = json!(1);
                }
                if obj["metadata"]["managedFields"].is_null() {
                    obj["metadata"]["managedFields"] = json!([]);
                }
                f.insert(plural, &ns, obj);
            }
            None => {
                self.kubectl_in(&self.kubeconfig, &["create", "-f", "-"], &obj.to_string());
            }
        }
    }

    /// Replaces an object as `kubectl replace` would (the whole object; a person editing it).
    pub fn replace(&self, obj: Value) {
        match &self.fake {
            Some(f) => {
                let kind = obj["kind"].as_str().expect("kind");
                let plural = KINDS
                    .iter()
                    .find(|k| k.kind == kind)
                    .map(|k| k.plural)
                    .expect("a kind the fake knows");
                let ns = obj["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned();
                let name = obj["metadata"]["name"].as_str().unwrap_or("").to_owned();
                let mut obj = obj;
                f.modify(plural, &ns, &name, |live| {
                    // What the server keeps: its own bookkeeping, not the client's copy of it.
                    for key in ["resourceVersion", "managedFields", "generation", "uid"] {
                        if let Some(v) = live["metadata"].get(key) {
                            obj["metadata"][key] = v.clone();
                        }
                    }
                    if *live == obj {
                        return Ok(false);
                    }
                    *live = obj;
                    Ok(true)
                })
                .expect("replace");
            }
            None => {
                let mut obj = obj;
                if let Some(m) = obj["metadata"].as_object_mut() {
                    m.remove("resourceVersion");
                    m.remove("managedFields");
                }
                self.kubectl_in(&self.kubeconfig, &["replace", "-f", "-"], &obj.to_string());
            }
        }
    }

    /// Creates an Opaque (or `type`) Secret holding `fields` (base64-encoded as the API
    /// server stores them), labelled `labels`.
    pub fn create_secret(
        &self,
        ns: &str,
        name: &str,
        type_: &str,
        labels: &[(&str, &str)],
        fields: &[(&str, &str)],
    ) {
        use base64::Engine;
        let data: serde_json::Map<String, Value> = fields
            .iter()
            .map(|(k, v)| {
                (
                    (*k).to_owned(),
                    json!(base64::engine::general_purpose::STANDARD.encode(v)),
                )
            })
            .collect();
        let labels: serde_json::Map<String, Value> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), json!(v)))
            .collect();
        self.create(json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": ns, "labels": labels},
            "type": type_,
            "data": data,
        }));
    }

    /// Deletes an object (`kubectl delete`); a missing one is fine.
    pub fn delete(&self, plural: &str, ns: &str, name: &str) {
        match &self.fake {
            Some(f) => f.delete(plural, ns, name),
            None => {
                self.kubectl(&[
                    "-n",
                    ns,
                    "delete",
                    plural,
                    name,
                    "--ignore-not-found",
                    "--wait=false",
                ]);
            }
        }
    }

    /// A kubeconfig for a service account of `ns` that may only do what `rules` (RBAC
    /// PolicyRules as YAML, indented as list items of a Role's `rules:`) allow in `ns`. On the
    /// fake, which has no RBAC, the test forbids what it needs with [`FakeApiServer::forbid`]
    /// and [`FakeApiServer::forbid_method`]; the fake's own kubeconfig is returned.
    pub fn kubeconfig_allowed(
        &self,
        ns: &str,
        account: &str,
        rules: &str,
        dir: &std::path::Path,
    ) -> std::path::PathBuf {
        if self.fake.is_some() {
            return self.kubeconfig.clone();
        }
        let rbac = format!(
            "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: {account}\n  namespace: {ns}\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: {account}\n  namespace: {ns}\nrules:\n{rules}---\napiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: {account}\n  namespace: {ns}\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: Role\n  name: {account}\nsubjects:\n- kind: ServiceAccount\n  name: {account}\n  namespace: {ns}\n"
        );
        self.kubectl_in(&self.kubeconfig, &["apply", "-f", "-"], &rbac);
        let token = self.kubectl(&["-n", ns, "create", "token", account, "--duration=1h"]);
        let admin: Value = serde_json::from_str(
            &self.kubectl(&["config", "view", "--raw", "--minify", "-o", "json"]),
        )
        .expect("kubeconfig");
        let cluster = &admin["clusters"][0]["cluster"];
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {}\n    certificate-authority-data: {}\nusers:\n- name: {account}\n  user:\n    token: {}\ncontexts:\n- name: {account}\n  context:\n    cluster: c\n    user: {account}\ncurrent-context: {account}\n",
            cluster["server"].as_str().expect("server"),
            cluster["certificate-authority-data"]
                .as_str()
                .expect("CA data"),
            token.trim()
        );
        let path = dir.join(format!("{account}-kubeconfig"));
        std::fs::write(&path, text).expect("write kubeconfig");
        path
    }

    /// The live object, `None` when it does not exist.
    pub fn get(&self, plural: &str, ns: &str, name: &str) -> Option<Value> {
        match &self.fake {
            Some(f) => f.get(plural, ns, name),
            None => {
                let mut args = vec![
                    "get",
                    plural,
                    name,
                    "-o",
                    "json",
                    "--ignore-not-found",
                    "--show-managed-fields",
                ];
                if !ns.is_empty() {
                    args.extend(["-n", ns]);
                }
                let out = self.kubectl(&args);
                (!out.trim().is_empty())
                    .then(|| serde_json::from_str(&out).expect("kubectl get -o json"))
            }
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.fake.is_some() {
            return;
        }
        let namespaces = self
            .namespaces
            .lock()
            .map(|n| n.clone())
            .unwrap_or_default();
        for ns in namespaces {
            let _ = std::process::Command::new("kubectl")
                .arg("--kubeconfig")
                .arg(&self.kubeconfig)
                .args([
                    "delete",
                    "namespace",
                    &ns,
                    "--wait=false",
                    "--ignore-not-found",
                ])
                .output();
        }
    }
}
