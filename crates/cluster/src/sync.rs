//! Sync: make the cluster say what Git says. Each rendered object is compared with its live
//! counterpart (the local comparison is only a fast path for "equal"); what differs or is
//! missing is applied with server-side apply under driftwatch's own field manager. Pruning
//! deletes only objects this application applied before (its inventory) that still carry its
//! label, and refuses to delete everything unless allowed.

use serde_json::{Value, json};

use crate::diff::{IgnoreRule, ObjectKey, diff};
use crate::error::Error;
use crate::kube::KubeClient;

/// The field manager driftwatch applies as.
pub const FIELD_MANAGER: &str = "driftwatch";
/// The label that marks an object as applied by an application.
pub const APP_LABEL: &str = "driftwatch.io/app";

/// How to sync.
#[derive(Clone, Debug)]
pub struct SyncOptions {
    /// The application's name (its label value).
    pub app: String,
    /// Namespace for objects that name none.
    pub namespace: String,
    /// Delete objects the application applied before and Git no longer has.
    pub prune: bool,
    /// Let prune delete every object (Git renders nothing).
    pub allow_empty: bool,
    /// Compute, but change nothing.
    pub dry_run: bool,
    /// Differences that do not make an object worth applying (ignoreDifferences).
    pub ignore: Vec<crate::diff::IgnoreRule>,
}

/// What a sync did.
#[derive(Clone, Debug, Default)]
pub struct SyncReport {
    /// Objects applied (created or changed).
    pub applied: Vec<ObjectKey>,
    /// The resourceVersion each applied object has after the apply (not with dry_run).
    pub versions: Vec<(ObjectKey, String)>,
    /// Objects already as Git says.
    pub unchanged: Vec<ObjectKey>,
    /// Objects pruned.
    pub pruned: Vec<ObjectKey>,
    /// Objects left in place although Git no longer has them (prune off or refused).
    pub orphaned: Vec<ObjectKey>,
    /// The inventory to keep for the next sync: what was rendered.
    pub inventory: Vec<Value>,
}

/// An object without the fields an apply always changes (bookkeeping, not content).
fn content(obj: &Value) -> Value {
    let mut o = obj.clone();
    if let Some(m) = o.get_mut("metadata").and_then(Value::as_object_mut) {
        for k in [
            "managedFields",
            "resourceVersion",
            "generation",
            "creationTimestamp",
            "uid",
        ] {
            m.remove(k);
        }
    }
    if let Some(m) = o.as_object_mut() {
        m.remove("status");
    }
    o
}

/// Exactly what a sync of application `app` applies for Git's object `obj`: Git's object with
/// the application's label, and — for an object that exists — the live values of the fields the
/// user ignores. The sync, the heal and the dry run that judges drift all apply this, so the
/// server's answer to the dry run is the answer a sync would get.
pub fn applied_form(obj: &Value, app: &str, live: Option<&Value>, ignore: &[IgnoreRule]) -> Value {
    let mut desired = obj.clone();
    desired["metadata"]["labels"][APP_LABEL] = json!(app);
    match live {
        Some(l) => crate::diff::keep_ignored(&desired, l, ignore),
        None => desired,
    }
}

/// True when a sync of application `app` would change the live object. The local comparison
/// only proves "equal"; when it sees a difference the API server's dry-run apply of exactly
/// what a sync would apply ([`applied_form`]) decides, so defaulting, normalisation and webhooks
/// never read as drift.
pub async fn would_change(
    client: &KubeClient,
    desired: &Value,
    live: Option<&Value>,
    namespace: &str,
    app: &str,
    ignore: &[IgnoreRule],
) -> Result<bool, Error> {
    let Some(live) = live else { return Ok(true) };
    if diff(
        std::slice::from_ref(desired),
        std::slice::from_ref(live),
        ignore,
    )
    .is_empty()
    {
        return Ok(false);
    }
    server_would_change(client, desired, live, namespace, app, ignore).await
}

/// The API server's verdict alone: whether a dry-run apply of what a sync would apply
/// ([`applied_form`]) comes back different from `live`.
pub async fn server_would_change(
    client: &KubeClient,
    desired: &Value,
    live: &Value,
    namespace: &str,
    app: &str,
    ignore: &[IgnoreRule],
) -> Result<bool, Error> {
    let applied = applied_form(desired, app, Some(live), ignore);
    let dry = client
        .apply(&applied, namespace, FIELD_MANAGER, true)
        .await?;
    Ok(content(&dry) != content(live))
}

/// The application an object was applied by (its `driftwatch.io/app` label).
pub fn app_of(obj: &Value) -> Option<&str> {
    obj.get("metadata")?.get("labels")?.get(APP_LABEL)?.as_str()
}

/// What Git's object asks of the cluster: without the fields only the server owns. Manifests
/// exported with `kubectl get -o yaml` carry a resourceVersion (an apply naming a stale one is
/// refused with 409 Conflict), a uid, managedFields and status; none of them is desired state.
pub fn as_desired(obj: &Value) -> Value {
    let mut o = obj.clone();
    if let Some(m) = o.get_mut("metadata").and_then(Value::as_object_mut) {
        for k in [
            "resourceVersion",
            "uid",
            "creationTimestamp",
            "generation",
            "managedFields",
            "selfLink",
        ] {
            m.remove(k);
        }
    }
    if let Some(m) = o.as_object_mut() {
        m.remove("status");
    }
    o
}

/// The minimal identity of an object, as kept in the inventory.
fn stub(obj: &Value, namespace: &str) -> Value {
    let ns = obj
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or(namespace);
    json!({
        "apiVersion": obj["apiVersion"],
        "kind": obj["kind"],
        "metadata": {"name": obj.pointer("/metadata/name"), "namespace": ns},
    })
}

/// Kinds in the order they are created, so a namespace exists before what lives in it and a
/// ServiceAccount before the workload that runs as it (Helm's install order); custom
/// resources and other kinds come last. Pruning goes the other way.
const KIND_ORDER: &[&str] = &[
    "Namespace",
    "NetworkPolicy",
    "ResourceQuota",
    "LimitRange",
    "PodSecurityPolicy",
    "PodDisruptionBudget",
    "ServiceAccount",
    "Secret",
    "ConfigMap",
    "StorageClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "CustomResourceDefinition",
    "ClusterRole",
    "ClusterRoleBinding",
    "Role",
    "RoleBinding",
    "Service",
    "DaemonSet",
    "Pod",
    "ReplicationController",
    "ReplicaSet",
    "Deployment",
    "HorizontalPodAutoscaler",
    "StatefulSet",
    "Job",
    "CronJob",
    "IngressClass",
    "Ingress",
    "APIService",
];

/// Where a kind goes in [`KIND_ORDER`].
fn rank(obj: &Value) -> usize {
    let kind = obj["kind"].as_str().unwrap_or("");
    KIND_ORDER
        .iter()
        .position(|k| *k == kind)
        .unwrap_or(KIND_ORDER.len())
}

/// Syncs `rendered` to the cluster. `inventory` is what the previous sync applied.
pub async fn sync(
    client: &KubeClient,
    rendered: &[Value],
    inventory: &[Value],
    opts: &SyncOptions,
) -> Result<SyncReport, Error> {
    let mut report = SyncReport::default();
    let mut ordered: Vec<&Value> = rendered.iter().collect();
    ordered.sort_by_key(|o| rank(o));
    for obj in ordered {
        let key = ObjectKey::of(obj);
        let live = client.get(obj, &opts.namespace).await?;
        let desired = applied_form(obj, &opts.app, live.as_ref(), &opts.ignore);
        let equal = live.as_ref().is_some_and(|l| {
            diff(
                std::slice::from_ref(&desired),
                std::slice::from_ref(l),
                &opts.ignore,
            )
            .is_empty()
        });
        if equal {
            report.unchanged.push(key);
        } else {
            let applied = client
                .apply(&desired, &opts.namespace, FIELD_MANAGER, opts.dry_run)
                .await?;
            // The local comparison only proves "equal"; the server's answer says whether the
            // apply changed anything (a value it normalises, a field it drops when empty).
            let changed = match &live {
                None => true,
                Some(l) if opts.dry_run => content(&applied) != content(l),
                Some(l) => {
                    applied.pointer("/metadata/resourceVersion")
                        != l.pointer("/metadata/resourceVersion")
                }
            };
            if !changed {
                report.unchanged.push(key);
            } else {
                if !opts.dry_run
                    && let Some(rv) = applied
                        .pointer("/metadata/resourceVersion")
                        .and_then(Value::as_str)
                {
                    report.versions.push((ObjectKey::of(obj), rv.to_owned()));
                }
                report.applied.push(key);
            }
        }
        report.inventory.push(stub(obj, &opts.namespace));
    }
    let rendered_keys: Vec<ObjectKey> = report.inventory.iter().map(ObjectKey::of).collect();
    let mut gone: Vec<&Value> = inventory
        .iter()
        .filter(|o| !rendered_keys.contains(&ObjectKey::of(o)))
        .collect();
    // Workloads go before the namespace they live in.
    gone.sort_by_key(|o| std::cmp::Reverse(rank(o)));
    let refuse = rendered.is_empty() && !inventory.is_empty() && !opts.allow_empty;
    for old in gone {
        let key = ObjectKey::of(old);
        if !opts.prune || refuse {
            report.orphaned.push(key);
            report.inventory.push(old.clone());
            continue;
        }
        // Never touch anything that is not ours, whatever the inventory says.
        let live = client.get(old, &opts.namespace).await?;
        match live {
            Some(l) if app_of(&l) == Some(opts.app.as_str()) => {
                if !opts.dry_run {
                    client.delete(old, &opts.namespace).await?;
                }
                report.pruned.push(key);
            }
            Some(_) => report.orphaned.push(key),
            None => {}
        }
    }
    if refuse {
        return Err(Error::Api {
            what: format!("syncing {}", opts.app),
            reason:
                "Git renders no objects; refusing to prune everything (allow it with --allow-empty)"
                    .to_owned(),
        });
    }
    Ok(report)
}
