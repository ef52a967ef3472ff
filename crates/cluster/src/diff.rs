//! Rendered (desired) objects against live ones, field by field. Only what Git says is compared
//! — defaulted fields, status, and list items a mutating webhook injected are not drift — and
//! values are compared by meaning (`500m` = `0.5`, `"80"` = `80`). Each difference names the
//! field manager that wrote the live value, when the live object says; replicas an autoscaler
//! holds through the `scale` subresource are reported as held (a sync leaves them), so people
//! drop them from Git or ignore them instead of wondering.

use serde_json::Value;

use crate::quantity::parse_quantity;

/// Which object: API group, kind, namespace and name (the version is not part of identity).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey {
    /// API group, empty for the core group.
    pub group: String,
    /// Kind.
    pub kind: String,
    /// Namespace, empty for cluster-scoped objects (and unset ones in Git).
    pub namespace: String,
    /// Name.
    pub name: String,
}

impl ObjectKey {
    /// The key of an object.
    pub fn of(obj: &Value) -> ObjectKey {
        let s = |p: &str| {
            obj.pointer(p)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned()
        };
        let api = s("/apiVersion");
        ObjectKey {
            group: api
                .rsplit_once('/')
                .map_or(String::new(), |(g, _)| g.to_owned()),
            kind: s("/kind"),
            namespace: s("/metadata/namespace"),
            name: s("/metadata/name"),
        }
    }
}

impl std::fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.kind)?;
        if !self.namespace.is_empty() {
            write!(f, "/{}", self.namespace)?;
        }
        write!(f, "/{}", self.name)
    }
}

/// An `ignoreDifferences` rule: JSON pointers ignored for a kind and name (either may be `None`
/// for any).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IgnoreRule {
    /// Kind, or any.
    pub kind: Option<String>,
    /// Name, or any.
    pub name: Option<String>,
    /// JSON pointers into the object (`/spec/replicas`).
    pub json_pointers: Vec<String>,
    /// Field managers whose live values are not drift (Argo CD's `managedFieldsManagers`).
    pub managers: Vec<String>,
}

/// What to apply to an object that exists: Git's object with every field an ignore rule's
/// JSON pointer names set to its live value (or left out when it has none), so applying never
/// undoes a difference the user chose to ignore — Argo CD's `RespectIgnoreDifferences`. Objects
/// being created get Git's values.
pub fn keep_ignored(desired: &Value, live: &Value, ignore: &[IgnoreRule]) -> Value {
    let key = ObjectKey::of(desired);
    let mut out = desired.clone();
    let pointers = ignore
        .iter()
        .filter(|r| {
            r.kind.as_deref().is_none_or(|k| k == key.kind)
                && r.name.as_deref().is_none_or(|n| n == key.name)
        })
        .flat_map(|r| r.json_pointers.iter());
    for p in pointers {
        let Some((parent, last)) = p.rsplit_once('/') else {
            continue;
        };
        let last = last.replace("~1", "/").replace("~0", "~");
        match (live.pointer(p), out.pointer_mut(parent)) {
            (Some(v), Some(Value::Object(m))) => {
                m.insert(last, v.clone());
            }
            (Some(v), Some(Value::Array(a))) => {
                if let Some(slot) = last.parse::<usize>().ok().and_then(|i| a.get_mut(i)) {
                    *slot = v.clone();
                }
            }
            (None, Some(Value::Object(m))) => {
                m.remove(&last);
            }
            _ => {}
        }
    }
    out
}

/// One field that differs.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldDiff {
    /// Readable path: `spec.template.spec.containers[name=backend].image`.
    pub path: String,
    /// JSON pointer into the desired object.
    pub pointer: String,
    /// What Git says.
    pub git: Value,
    /// What the cluster has (`None`: the field is missing live).
    pub live: Option<Value>,
    /// The field manager of the live value, when managedFields tell.
    pub manager: Option<String>,
    /// Another manager holds the field where driftwatch does not take it back (an autoscaler
    /// through the `scale` subresource): a sync or a heal leaves it, so it stays a difference
    /// until Git stops setting it or the user ignores it.
    pub held: bool,
}

impl FieldDiff {
    /// The path, with who holds it when a sync leaves it (`spec.replicas (held by hpa through
    /// /scale)`): the short form lists of differing fields show.
    pub fn label(&self) -> String {
        match (&self.manager, self.held) {
            (Some(m), true) => format!("{} (held by {m} through /scale)", self.path),
            (None, true) => format!("{} (held through /scale)", self.path),
            _ => self.path.clone(),
        }
    }

    /// What to do about a field another manager wrote, for people reading a diff: a field
    /// driftwatch wrote (or nobody is named for) needs no advice.
    pub fn hint(&self) -> Option<String> {
        let m = self
            .manager
            .as_deref()
            .filter(|m| *m != crate::mark::FIELD_MANAGER)?;
        let ignore = format!(
            "ignore it (ignoreDifferences: jsonPointers [{}] or managedFieldsManagers [{m}])",
            self.pointer
        );
        Some(if self.held {
            format!(
                "{m} holds it through /scale and a sync leaves it: drop {} from Git, or {ignore}",
                self.path
            )
        } else {
            format!(
                "a sync takes it back from {m}; if {m} should own it, drop {} from Git, or {ignore}",
                self.path
            )
        })
    }
}

/// One object that differs or is missing.
#[derive(Clone, Debug, PartialEq)]
pub struct ObjectDiff {
    /// Which object.
    pub key: ObjectKey,
    /// The cluster has no such object.
    pub missing: bool,
    /// The application applied it before and Git no longer has it: a sync with prune deletes
    /// it (Argo CD's "requires pruning").
    pub orphan: bool,
    /// The differing fields (empty when missing or an orphan).
    pub fields: Vec<FieldDiff>,
}

#[derive(Clone, Debug)]
enum Seg {
    Field(String),
    /// A list entry named by its merge key (`name`, or `port` and `protocol` for ports…) and
    /// its index in the list the pointer walks.
    Keyed(MergeKey, usize),
    Index(usize),
}

/// The fields that identify an entry of a keyed list, as the API server merges it.
type MergeKey = Vec<(&'static str, Value)>;

/// The merge key of the entries of the list at field `parent`, when every entry has one:
/// Kubernetes keys ports by number and protocol, volume mounts by path, host aliases by IP,
/// and most other lists of objects by name.
fn merge_key_fields(parent: Option<&str>, items: &[&Value]) -> Option<&'static [&'static str]> {
    if items.is_empty() {
        return None;
    }
    let all = |f: &str| items.iter().all(|i| i.get(f).is_some_and(|v| !v.is_null()));
    match parent {
        Some("ports") if all("containerPort") => Some(&["containerPort", "protocol"]),
        Some("ports") if all("port") => Some(&["port", "protocol"]),
        Some("volumeMounts") if all("mountPath") => Some(&["mountPath"]),
        Some("hostAliases") if all("ip") => Some(&["ip"]),
        _ if items
            .iter()
            .all(|i| i.get("name").and_then(Value::as_str).is_some()) =>
        {
            Some(&["name"])
        }
        _ => None,
    }
}

/// An entry's merge key; a port's protocol defaults to TCP, as the API server fills it in.
fn merge_key(item: &Value, fields: &[&'static str]) -> MergeKey {
    fields
        .iter()
        .map(|f| {
            let v = match item.get(*f) {
                Some(v) if !v.is_null() => v.clone(),
                _ if *f == "protocol" => Value::String("TCP".to_owned()),
                _ => Value::Null,
            };
            (*f, v)
        })
        .collect()
}

/// The field of the list a path ends in.
fn parent_field(path: &[Seg]) -> Option<&str> {
    match path.last() {
        Some(Seg::Field(f)) => Some(f.as_str()),
        _ => None,
    }
}

struct Ctx<'a> {
    live_obj: &'a Value,
    ignore: Vec<&'a str>,
    scale_owned: bool,
    out: Vec<FieldDiff>,
}

/// Live objects by (group, kind, name), each with its namespace.
type LiveIndex<'a> = std::collections::HashMap<(String, String, String), Vec<(String, &'a Value)>>;

/// Compares every desired object with its live counterpart.
pub fn diff(desired: &[Value], live: &[Value], ignore: &[IgnoreRule]) -> Vec<ObjectDiff> {
    let mut result = Vec::new();
    // Live objects by (group, kind, name); the namespace is checked per candidate, since Git may
    // leave it unset for the application's default namespace.
    let mut index: LiveIndex<'_> = std::collections::HashMap::new();
    for l in live {
        let k = ObjectKey::of(l);
        index
            .entry((k.group, k.kind, k.name))
            .or_default()
            .push((k.namespace, l));
    }
    for d in desired {
        let key = ObjectKey::of(d);
        let found = index
            .get(&(key.group.clone(), key.kind.clone(), key.name.clone()))
            .and_then(|cands| {
                cands
                    .iter()
                    .find(|(ns, _)| key.namespace.is_empty() || *ns == key.namespace)
                    .map(|(_, l)| *l)
            });
        let Some(l) = found else {
            result.push(ObjectDiff {
                key,
                missing: true,
                orphan: false,
                fields: Vec::new(),
            });
            continue;
        };
        let rules: Vec<&IgnoreRule> = ignore
            .iter()
            .filter(|r| {
                r.kind.as_deref().is_none_or(|k| k == key.kind)
                    && r.name.as_deref().is_none_or(|n| n == key.name)
            })
            .collect();
        let pointers = rules
            .iter()
            .flat_map(|r| r.json_pointers.iter().map(String::as_str))
            .collect();
        let managers: Vec<&str> = rules
            .iter()
            .flat_map(|r| r.managers.iter().map(String::as_str))
            .collect();
        let mut ctx = Ctx {
            live_obj: l,
            ignore: pointers,
            scale_owned: scale_owns_replicas(l),
            out: Vec::new(),
        };
        let folded;
        let d = if key.kind == "Secret" && key.group.is_empty() {
            folded = fold_string_data(d);
            &folded
        } else {
            d
        };
        compare(&mut ctx, d, Some(l), &mut Vec::new());
        if !managers.is_empty() {
            ctx.out
                .retain(|f| !f.manager.as_deref().is_some_and(|m| managers.contains(&m)));
        }
        if key.kind == "Secret" && key.group.is_empty() {
            mask_secret_values(&mut ctx.out);
        }
        if !ctx.out.is_empty() {
            result.push(ObjectDiff {
                key,
                missing: false,
                orphan: false,
                fields: ctx.out,
            });
        }
    }
    result
}

/// What applying would change in `live`, read from the server's answer `after` (a dry-run apply
/// of exactly what a sync applies): every path where they differ, values added, changed and
/// removed — including what the local comparison of Git's fields cannot see: a key someone
/// added to an atomic map (a re-apply replaces the whole map), and fields an earlier revision
/// applied that Git has dropped (a sync removes them). Server-kept metadata, status, the
/// application label, replicas an autoscaler owns and ignored differences are left out; Secret
/// values are masked. `git` in each field is the value after the apply (`null`: removed).
pub fn changes(live: &Value, after: &Value, ignore: &[IgnoreRule]) -> Vec<FieldDiff> {
    let key = ObjectKey::of(after);
    let rules: Vec<&IgnoreRule> = ignore
        .iter()
        .filter(|r| {
            r.kind.as_deref().is_none_or(|k| k == key.kind)
                && r.name.as_deref().is_none_or(|n| n == key.name)
        })
        .collect();
    let pointers: Vec<&str> = rules
        .iter()
        .flat_map(|r| r.json_pointers.iter().map(String::as_str))
        .collect();
    let managers: Vec<&str> = rules
        .iter()
        .flat_map(|r| r.managers.iter().map(String::as_str))
        .collect();
    let mut out = Vec::new();
    walk_changes(live, Some(live), Some(after), &mut Vec::new(), &mut out);
    let scale_owned = scale_owns_replicas(live);
    let ignored = |f: &FieldDiff| {
        pointers
            .iter()
            .any(|p| f.pointer == *p || f.pointer.starts_with(&format!("{p}/")))
            || (scale_owned && f.pointer == "/spec/replicas")
            || f.manager.as_deref().is_some_and(|m| managers.contains(&m))
    };
    out.retain(|f| !ignored(f));
    if key.kind == "Secret" && key.group.is_empty() {
        mask_secret_values(&mut out);
    }
    out
}

/// Whether the server's answer `after` was computed on the very version of `live`: a dry run
/// keeps the stored object's `resourceVersion`, so a different one means `live` is stale (a
/// controller wrote in between) and comparing the two would report that controller's write.
pub fn same_version(live: &Value, after: &Value) -> bool {
    let version = |v: &Value| v.pointer("/metadata/resourceVersion").cloned();
    version(live).is_some() && version(live) == version(after)
}

/// Metadata the server keeps, and the label that marks driftwatch's objects: never a change.
fn server_kept(path: &[Seg]) -> bool {
    match path {
        [Seg::Field(f)] => f == "status",
        [Seg::Field(m), Seg::Field(f)] if m == "metadata" => matches!(
            f.as_str(),
            "resourceVersion"
                | "managedFields"
                | "generation"
                | "uid"
                | "creationTimestamp"
                | "selfLink"
        ),
        [Seg::Field(m), Seg::Field(l), Seg::Field(k)] => {
            m == "metadata" && l == "labels" && k == crate::mark::APP_LABEL
        }
        _ => false,
    }
}

fn walk_changes(
    live_obj: &Value,
    before: Option<&Value>,
    after: Option<&Value>,
    path: &mut Vec<Seg>,
    out: &mut Vec<FieldDiff>,
) {
    if server_kept(path) || before == after {
        return;
    }
    match (before, after) {
        (Some(Value::Object(b)), Some(Value::Object(a))) => {
            let mut keys: Vec<&String> = b.keys().chain(a.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                path.push(Seg::Field(k.clone()));
                walk_changes(live_obj, b.get(k), a.get(k), path, out);
                path.pop();
            }
        }
        (Some(Value::Array(b)), Some(Value::Array(a))) => {
            let all: Vec<&Value> = a.iter().chain(b.iter()).collect();
            if let Some(fields) = merge_key_fields(parent_field(path), &all) {
                // Keyed lists (containers, env, ports, volumes) are compared entry by entry,
                // as the server merges them.
                let key = |x: &Value| merge_key(x, fields);
                let mut keys: Vec<MergeKey> = Vec::new();
                for k in all.iter().map(|x| key(x)) {
                    if !keys.contains(&k) {
                        keys.push(k);
                    }
                }
                for k in keys {
                    let bi = b.iter().position(|x| key(x) == k);
                    let ai = a.iter().position(|x| key(x) == k);
                    let index = ai.or(bi).unwrap_or(0);
                    path.push(Seg::Keyed(k, index));
                    walk_changes(
                        live_obj,
                        bi.and_then(|i| b.get(i)),
                        ai.and_then(|i| a.get(i)),
                        path,
                        out,
                    );
                    path.pop();
                }
            } else {
                for i in 0..b.len().max(a.len()) {
                    path.push(Seg::Index(i));
                    walk_changes(live_obj, b.get(i), a.get(i), path, out);
                    path.pop();
                }
            }
        }
        (b, a) => out.push(FieldDiff {
            path: readable(path),
            pointer: pointer(path),
            git: a.cloned().unwrap_or(Value::Null),
            live: b.cloned(),
            manager: manager_of(live_obj, path),
            held: false,
        }),
    }
}

/// A Secret as the API server stores it: `stringData` folded into `data` (base64), since a live
/// Secret never has `stringData` — comparing it as written would be drift forever, and a
/// self-heal loop.
fn fold_string_data(secret: &Value) -> Value {
    use base64::Engine as _;
    let mut s = secret.clone();
    let Some(obj) = s.as_object_mut() else {
        return s;
    };
    let Some(Value::Object(strings)) = obj.remove("stringData") else {
        return s;
    };
    let data = obj
        .entry("data")
        .or_insert_with(|| Value::Object(serde_json::Map::new()));
    if let Value::Object(data) = data {
        for (k, v) in strings {
            let text = match v {
                Value::String(t) => t,
                other => other.to_string(),
            };
            data.insert(
                k,
                Value::String(base64::engine::general_purpose::STANDARD.encode(text)),
            );
        }
    }
    s
}

/// What a Secret's value is shown as: that it differs is reported, never what it is.
pub const MASK: &str = "********";

/// Replaces the values of a Secret's `data` and `stringData` in a drift report with [`MASK`],
/// so diffs, logs and reports never carry secrets.
fn mask_secret_values(fields: &mut [FieldDiff]) {
    for f in fields {
        if f.pointer.starts_with("/data") || f.pointer.starts_with("/stringData") {
            f.git = Value::String(MASK.to_owned());
            if f.live.is_some() {
                f.live = Some(Value::String(MASK.to_owned()));
            }
        }
    }
}

fn pointer(path: &[Seg]) -> String {
    path.iter()
        .map(|s| match s {
            Seg::Field(f) => format!("/{}", f.replace('~', "~0").replace('/', "~1")),
            Seg::Keyed(_, i) | Seg::Index(i) => format!("/{i}"),
        })
        .collect()
}

fn readable(path: &[Seg]) -> String {
    let mut s = String::new();
    for seg in path {
        match seg {
            Seg::Field(f) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(f);
            }
            Seg::Keyed(key, _) => {
                let parts: Vec<String> = key
                    .iter()
                    .map(|(f, v)| match v {
                        Value::String(t) => format!("{f}={t}"),
                        other => format!("{f}={other}"),
                    })
                    .collect();
                s.push_str(&format!("[{}]", parts.join(",")));
            }
            Seg::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

fn same_scalar(a: &Value, b: &Value) -> bool {
    if a == b {
        return true;
    }
    let text = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    match (text(a), text(b)) {
        (Some(x), Some(y)) => {
            x == y
                || matches!((parse_quantity(&x), parse_quantity(&y)), (Some(p), Some(q)) if (p - q).abs() <= 1e-9 * p.abs().max(q.abs()).max(1.0))
        }
        _ => false,
    }
}

fn compare(ctx: &mut Ctx<'_>, d: &Value, l: Option<&Value>, path: &mut Vec<Seg>) {
    let here = pointer(path);
    if ctx
        .ignore
        .iter()
        .any(|p| here == *p || here.starts_with(&format!("{p}/")))
    {
        return;
    }
    // The API server drops what is empty or null (`creationTimestamp: null`, `env: []`, as
    // `kubectl create --dry-run -o yaml` writes them): that is not drift.
    let live_empty = l.is_none_or(|l| match l {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.is_empty(),
        _ => false,
    });
    let git_empty = match d {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.is_empty(),
        _ => false,
    };
    if git_empty && live_empty {
        return;
    }
    match d {
        Value::Object(map) => {
            for (k, v) in map {
                let at_root = path.is_empty();
                if at_root && (k == "status" || k == "apiVersion" || k == "kind") {
                    continue;
                }
                if path.len() == 1
                    && matches!(&path[0], Seg::Field(f) if f == "metadata")
                    && !matches!(k.as_str(), "labels" | "annotations")
                {
                    continue;
                }
                if k == "kubectl.kubernetes.io/last-applied-configuration" {
                    continue;
                }
                // Replicas an autoscaler holds: reported, marked as what a sync leaves.
                let held = k == "replicas" && ctx.scale_owned && path.len() == 1;
                let from = ctx.out.len();
                path.push(Seg::Field(k.clone()));
                compare(ctx, v, l.and_then(|l| l.get(k)), path);
                path.pop();
                if held {
                    for f in &mut ctx.out[from..] {
                        f.held = true;
                    }
                }
            }
        }
        Value::Array(items) => {
            let live_items = l.and_then(Value::as_array);
            let refs: Vec<&Value> = items.iter().collect();
            if let Some(fields) = merge_key_fields(parent_field(path), &refs) {
                for (i, item) in items.iter().enumerate() {
                    let k = merge_key(item, fields);
                    let live_item =
                        live_items.and_then(|li| li.iter().find(|x| merge_key(x, fields) == k));
                    path.push(Seg::Keyed(k, i));
                    compare(ctx, item, live_item, path);
                    path.pop();
                }
            } else if live_items.is_some_and(|li| li.len() == items.len()) {
                for (i, item) in items.iter().enumerate() {
                    path.push(Seg::Index(i));
                    compare(ctx, item, live_items.and_then(|li| li.get(i)), path);
                    path.pop();
                }
            } else {
                record(ctx, d, l, path);
            }
        }
        scalar => match l {
            Some(lv) if same_scalar(scalar, lv) => {}
            _ => record(ctx, d, l, path),
        },
    }
}

fn record(ctx: &mut Ctx<'_>, d: &Value, l: Option<&Value>, path: &[Seg]) {
    ctx.out.push(FieldDiff {
        path: readable(path),
        pointer: pointer(path),
        git: d.clone(),
        live: l.cloned(),
        manager: manager_of(ctx.live_obj, path),
        held: false,
    });
}

/// The `fieldsV1` key of a path segment.
fn field_key(seg: &Seg) -> Option<String> {
    match seg {
        Seg::Field(f) => Some(format!("f:{f}")),
        // managedFields name an entry by its merge key as JSON, fields in order.
        Seg::Keyed(key, _) => {
            let mut fields: Vec<&(&str, Value)> = key.iter().collect();
            fields.sort_by_key(|(f, _)| *f);
            let map: serde_json::Map<String, Value> = fields
                .into_iter()
                .map(|(f, v)| ((*f).to_owned(), v.clone()))
                .collect();
            Some(format!("k:{}", Value::Object(map)))
        }
        Seg::Index(_) => None,
    }
}

/// The manager whose managedFields entry covers the path (the most recent one listed last).
fn manager_of(live: &Value, path: &[Seg]) -> Option<String> {
    let entries = live.pointer("/metadata/managedFields")?.as_array()?;
    let mut found = None;
    'entries: for e in entries {
        let Some(mut node) = e.get("fieldsV1") else {
            continue;
        };
        for (depth, seg) in path.iter().enumerate() {
            let Some(key) = field_key(seg) else { break };
            match node.get(&key) {
                Some(n) => node = n,
                // An entry that ends here owns the whole value below (an atomic map or list,
                // replaced as one).
                None if depth > 0 && node.as_object().is_some_and(|m| m.is_empty()) => break,
                None => continue 'entries,
            }
        }
        found = e.get("manager").and_then(Value::as_str).map(str::to_owned);
    }
    found
}

/// True when an autoscaler (or anything writing the `scale` subresource) owns spec.replicas.
pub(crate) fn scale_owns_replicas(live: &Value) -> bool {
    live.pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .is_some_and(|entries| {
            entries.iter().any(|e| {
                e.get("subresource").and_then(Value::as_str) == Some("scale")
                    && e.pointer("/fieldsV1/f:spec/f:replicas").is_some()
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(image: &str) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "backend", "namespace": "shop", "labels": {"app": "backend"}},
            "spec": {"replicas": 3, "template": {"spec": {"containers": [
                {"name": "backend", "image": image, "ports": [{"containerPort": 8080}],
                 "resources": {"limits": {"cpu": "500m", "memory": "1Gi"}}}
            ]}}}
        })
    }

    fn live(image: &str) -> Value {
        let mut l = deployment(image);
        // Defaults, status, an injected sidecar and quantities written differently.
        l["metadata"]["uid"] = json!("1234");
        l["metadata"]["resourceVersion"] = json!("42");
        l["status"] = json!({"replicas": 3});
        l["spec"]["progressDeadlineSeconds"] = json!(600);
        l["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = json!("IfNotPresent");
        l["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"] = json!("0.5");
        l["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"] =
            json!("1073741824");
        l["spec"]["template"]["spec"]["containers"]
            .as_array_mut()
            .unwrap()
            .insert(0, json!({"name": "istio-proxy", "image": "istio/proxyv2"}));
        l["metadata"]["managedFields"] = json!([
            {"manager": "driftwatch", "operation": "Apply", "fieldsV1": {"f:spec": {"f:template": {"f:spec": {"f:containers": {"k:{\"name\":\"backend\"}": {"f:image": {}}}}}}}},
            {"manager": "kubectl-set", "operation": "Update", "fieldsV1": {"f:spec": {"f:template": {"f:spec": {"f:containers": {"k:{\"name\":\"backend\"}": {"f:image": {}}}}}}}}
        ]);
        l
    }

    #[test]
    fn no_false_drift() {
        let d = deployment("backend:v1.0.1");
        assert!(diff(std::slice::from_ref(&d), &[live("backend:v1.0.1")], &[]).is_empty());
    }

    #[test]
    fn a_manual_image_change_is_reported_with_its_manager() {
        let d = deployment("backend:v1.0.1");
        let out = diff(&[d], &[live("wrong-image:v99")], &[]);
        assert_eq!(out.len(), 1);
        let f = &out[0].fields[0];
        assert_eq!(f.path, "spec.template.spec.containers[name=backend].image");
        assert_eq!(f.pointer, "/spec/template/spec/containers/0/image");
        assert_eq!(
            (f.git.as_str(), f.live.as_ref().and_then(Value::as_str)),
            (Some("backend:v1.0.1"), Some("wrong-image:v99"))
        );
        assert_eq!(f.manager.as_deref(), Some("kubectl-set"));
        assert_eq!(out[0].key.to_string(), "Deployment/shop/backend");
    }

    #[test]
    fn ports_are_named_by_their_merge_keys() {
        // A Service's ports are keyed by port and protocol, whatever their names; the server
        // fills in protocol TCP, and the manager is found under that key.
        let service = |target: i64, protocol: Option<&str>| {
            let mut port = json!({"name": "http", "port": 80, "targetPort": target});
            if let Some(p) = protocol {
                port["protocol"] = json!(p);
            }
            json!({"apiVersion": "v1", "kind": "Service",
                   "metadata": {"name": "web", "namespace": "shop"},
                   "spec": {"ports": [port, {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53}]}})
        };
        let mut l = service(9090, Some("TCP"));
        l["metadata"]["managedFields"] = json!([
            {"manager": "driftwatch", "operation": "Apply", "fieldsV1": {"f:spec": {"f:ports": {"k:{\"port\":80,\"protocol\":\"TCP\"}": {"f:targetPort": {}}}}}},
            {"manager": "kubectl-edit", "operation": "Update", "fieldsV1": {"f:spec": {"f:ports": {"k:{\"port\":80,\"protocol\":\"TCP\"}": {"f:targetPort": {}}}}}}
        ]);
        let out = diff(&[service(8080, None)], &[l.clone()], &[]);
        assert_eq!(out.len(), 1, "{out:?}");
        let f = &out[0].fields;
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].path, "spec.ports[port=80,protocol=TCP].targetPort");
        assert_eq!(f[0].pointer, "/spec/ports/0/targetPort");
        assert_eq!(f[0].manager.as_deref(), Some("kubectl-edit"));
        // What the server's answer differs in is named the same way.
        let mut after = l.clone();
        after["spec"]["ports"][0]["targetPort"] = json!(8080);
        let changed = changes(&l, &after, &[]);
        assert_eq!(changed.len(), 1, "{changed:?}");
        assert_eq!(
            changed[0].path,
            "spec.ports[port=80,protocol=TCP].targetPort"
        );
        assert!(diff(&[service(9090, None)], &[l], &[]).is_empty());
    }

    #[test]
    fn hpa_replicas_and_ignore_rules() {
        let d = deployment("backend:v1");
        let mut l = live("backend:v1");
        l["spec"]["replicas"] = json!(7);
        assert_eq!(
            diff(std::slice::from_ref(&d), std::slice::from_ref(&l), &[])[0].fields[0].path,
            "spec.replicas"
        );
        l["metadata"]["managedFields"]
            .as_array_mut()
            .unwrap()
            .push(json!({
                "manager": "kube-controller-manager", "operation": "Update", "subresource": "scale",
                "fieldsV1": {"f:spec": {"f:replicas": {}}}
            }));
        // Held by the autoscaler: reported as such, naming it, with what to do.
        let held = diff(std::slice::from_ref(&d), std::slice::from_ref(&l), &[]);
        assert_eq!(held.len(), 1, "{held:?}");
        let f = &held[0].fields[0];
        assert!(f.held, "{f:?}");
        assert_eq!(f.manager.as_deref(), Some("kube-controller-manager"));
        assert_eq!(
            f.label(),
            "spec.replicas (held by kube-controller-manager through /scale)"
        );
        let hint = f.hint().unwrap();
        assert!(
            hint.contains("drop spec.replicas from Git")
                && hint.contains("managedFieldsManagers [kube-controller-manager]"),
            "{hint}"
        );
        // The server's answer never shows it: a sync leaves it.
        assert!(changes(&l, &l, &[]).is_empty());
        // Ignored, it is gone — by pointer or by manager.
        for rule in [
            IgnoreRule {
                json_pointers: vec!["/spec/replicas".into()],
                ..IgnoreRule::default()
            },
            IgnoreRule {
                managers: vec!["kube-controller-manager".into()],
                ..IgnoreRule::default()
            },
        ] {
            assert!(diff(std::slice::from_ref(&d), std::slice::from_ref(&l), &[rule]).is_empty());
        }
        // Equal to Git's value: nothing to report.
        l["spec"]["replicas"] = json!(3);
        assert!(diff(std::slice::from_ref(&d), std::slice::from_ref(&l), &[]).is_empty());
        let mut l2 = live("other:v2");
        l2["metadata"]["labels"]["app"] = json!("changed");
        let rule = IgnoreRule {
            kind: Some("Deployment".into()),
            name: None,
            json_pointers: vec!["/spec/template/spec/containers/0/image".into()],
            managers: Vec::new(),
        };
        let out = diff(std::slice::from_ref(&d), &[l2], &[rule]);
        assert_eq!(out[0].fields.len(), 1);
        assert_eq!(out[0].fields[0].path, "metadata.labels.app");
        // A manager's values ignored: kubectl-set wrote the image.
        let l3 = live("wrong-image:v99");
        let by_manager = IgnoreRule {
            kind: None,
            name: Some("backend".into()),
            json_pointers: Vec::new(),
            managers: vec!["kubectl-set".into()],
        };
        assert_eq!(
            diff(std::slice::from_ref(&d), std::slice::from_ref(&l3), &[]).len(),
            1
        );
        assert!(diff(&[d], &[l3], &[by_manager]).is_empty());
    }

    #[test]
    fn applying_keeps_ignored_fields_as_they_are_live() {
        let mut d = deployment("backend:v2");
        d["spec"]["revisionHistoryLimit"] = json!(5);
        let mut l = live("backend:v1");
        l["spec"]["revisionHistoryLimit"] = json!(2);
        let rule = IgnoreRule {
            kind: Some("Deployment".into()),
            name: None,
            json_pointers: vec!["/spec/revisionHistoryLimit".into(), "/spec/paused".into()],
            managers: Vec::new(),
        };
        let mut want = d.clone();
        want["spec"]["revisionHistoryLimit"] = json!(2);
        assert_eq!(keep_ignored(&d, &l, std::slice::from_ref(&rule)), want);
        // Not live: left out, so applying does not set it.
        d["spec"]["paused"] = json!(true);
        assert_eq!(keep_ignored(&d, &l, std::slice::from_ref(&rule)), want);
        // Another kind: untouched.
        let mut other = d.clone();
        other["kind"] = json!("StatefulSet");
        assert_eq!(keep_ignored(&other, &l, &[rule]), other);
    }

    #[test]
    fn secret_values_are_never_shown() {
        let d = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": "shop"},
            "data": {"password": "aHVudGVyMg=="}, "stringData": {"user": "admin"}, "type": "Opaque"});
        let l = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": "shop"},
            "data": {"password": "c2VjcmV0", "user": "cm9vdA=="}, "type": "kubernetes.io/basic-auth"});
        let out = diff(&[d], &[l], &[]);
        let text = format!("{out:?}");
        for secret in ["aHVudGVyMg==", "c2VjcmV0", "admin"] {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }
        let fields = &out[0].fields;
        assert!(
            fields
                .iter()
                .any(|f| f.path == "data.password" && f.git == MASK)
        );
        assert!(
            fields.iter().all(|f| !f.path.starts_with("stringData")),
            "stringData is compared as the data it becomes: {fields:?}"
        );
        // stringData equal to the live data is no drift at all.
        let d = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"}, "stringData": {"user": "admin"}});
        let l = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": "shop"}, "data": {"user": "YWRtaW4="}, "type": "Opaque"});
        assert!(diff(&[d], &[l], &[]).is_empty());
        let kind = fields.iter().find(|f| f.path == "type").unwrap();
        assert_eq!(kind.git, "Opaque", "other fields are shown");
    }

    #[test]
    fn empty_and_null_in_git_are_not_drift() {
        let d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "b", "annotations": {}, "labels": null},
            "spec": {"strategy": {}, "template": {"metadata": {"creationTimestamp": null}, "spec": {"containers": [{"name": "b", "image": "x", "resources": {}, "env": []}]}}}});
        let l = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "b"},
            "spec": {"strategy": {"type": "RollingUpdate"}, "template": {"metadata": {}, "spec": {"containers": [{"name": "b", "image": "x", "resources": {}}]}}}});
        let out = diff(std::slice::from_ref(&d), std::slice::from_ref(&l), &[]);
        assert!(out.is_empty(), "{out:#?}");
        // An empty list where the cluster has items is a difference.
        let mut l2 = l.clone();
        l2["spec"]["template"]["spec"]["containers"][0]["env"] =
            json!([{"name": "A", "value": "1"}]);
        let out = diff(&[d], &[l2], &[]);
        assert_eq!(
            out[0].fields[0].path,
            "spec.template.spec.containers[name=b].env"
        );
    }

    #[test]
    fn missing_objects() {
        let out = diff(&[deployment("x")], &[], &[]);
        assert!(out[0].missing);
    }

    #[test]
    fn an_answer_on_another_version_is_not_compared() {
        let at = |v: &str| json!({"metadata": {"name": "a", "resourceVersion": v}});
        assert!(same_version(&at("7"), &at("7")));
        assert!(!same_version(&at("7"), &at("8")));
        assert!(!same_version(
            &json!({"metadata": {}}),
            &json!({"metadata": {}})
        ));
    }

    #[test]
    fn changes_are_what_the_servers_answer_differs_in() {
        let live = json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "namespace": "ns", "resourceVersion": "7",
                "labels": {"x": "1"},
                "managedFields": [{"manager": "kubectl-patch", "operation": "Update",
                    "fieldsV1": {"f:spec": {"f:selector": {}}}}]},
            "spec": {"selector": {"app": "web", "tier": "canary"}, "ports": [{"name": "http", "port": 80}]},
            "status": {"loadBalancer": {}}});
        let mut after = live.clone();
        after["spec"]["selector"] = json!({"app": "web"});
        after["metadata"]["resourceVersion"] = json!("7");
        after["metadata"]["labels"][crate::mark::APP_LABEL] = json!("shop");
        after["status"] = json!({"other": 1});
        let c = changes(&live, &after, &[]);
        assert_eq!(c.len(), 1, "{c:?}");
        assert_eq!(c[0].path, "spec.selector.tier");
        assert_eq!(c[0].pointer, "/spec/selector/tier");
        assert_eq!(c[0].git, Value::Null, "removed by the apply");
        assert_eq!(c[0].live, Some(json!("canary")));
        assert_eq!(
            c[0].manager.as_deref(),
            Some("kubectl-patch"),
            "owner of the atomic map"
        );
        let ignored = IgnoreRule {
            kind: Some("Service".into()),
            name: None,
            json_pointers: vec!["/spec/selector".into()],
            managers: Vec::new(),
        };
        assert!(changes(&live, &after, &[ignored]).is_empty());
        // Named list items are compared by name; Secret values are masked.
        let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {"k": "b2xk"}});
        let mut rotated = secret.clone();
        rotated["data"]["k"] = json!("bmV3");
        let c = changes(&secret, &rotated, &[]);
        assert_eq!(c[0].git, json!(MASK));
        assert_eq!(c[0].live, Some(json!(MASK)));
    }
}
