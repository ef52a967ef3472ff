//! Sync: make the cluster say what Git says. Each rendered object is compared with its live
//! counterpart (the local comparison is only a fast path for "equal"); what differs or is
//! missing is applied with server-side apply under driftwatch's own field manager. Pruning
//! deletes only objects this application applied before (its inventory) that still carry its
//! label, and refuses to delete everything unless allowed.

use std::collections::{HashMap, HashSet};

use serde_json::{Value, json};

use crate::diff::{IgnoreRule, ObjectKey, diff};
use crate::error::Error;
use crate::kube::{KubeClient, ObjectEvent};
use crate::mark::{APP_LABEL, FIELD_MANAGER};

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
        Some(l) => {
            // Replicas an autoscaler owns (through the scale subresource) stay its own: a sync
            // or a heal never fights it.
            if crate::diff::scale_owns_replicas(l)
                && let Some(spec) = desired.get_mut("spec").and_then(Value::as_object_mut)
            {
                spec.remove("replicas");
            }
            crate::diff::keep_ignored(&desired, l, ignore)
        }
        None => desired,
    }
}

/// `after` cut to the shape of `form`: only the fields `form` sets (list items by position),
/// with `after`'s values. Comparing it with the object before an apply tells whether the apply
/// changed anything Git says, whatever else (a controller's annotation, status) moved meanwhile.
pub fn project(after: &Value, form: &Value) -> Value {
    match (after, form) {
        (Value::Object(a), Value::Object(f)) => Value::Object(
            f.keys()
                .filter_map(|k| Some((k.clone(), project(a.get(k)?, &f[k]))))
                .collect(),
        ),
        (Value::Array(a), Value::Array(f)) => {
            Value::Array(a.iter().zip(f).map(|(x, y)| project(x, y)).collect())
        }
        (a, _) => a.clone(),
    }
}

/// Whether applying `form` turned `before` into `after` in any field `form` sets: the
/// server's own answer (from an apply or a dry run) to "was this a difference?", immune to
/// what other writers change in fields Git does not set.
pub fn changed_what_git_sets(form: &Value, before: &Value, after: &Value) -> bool {
    !diff(
        std::slice::from_ref(&project(after, form)),
        std::slice::from_ref(before),
        &[],
    )
    .is_empty()
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

/// What a sync will do, decided from plain data: what Git renders, what the cluster has and
/// what the previous sync applied. [`sync`] makes the same decisions one object at a time.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SyncPlan {
    /// Every rendered object in the order it is applied (kind order: namespaces first, custom
    /// resources last), with exactly what is applied ([`applied_form`]). Every object is
    /// applied: the server's answer (an unchanged resourceVersion) says which ones a sync did
    /// not change — a local comparison of the fields Git sets cannot see a key someone added to
    /// an atomic map, or a field an earlier revision applied that Git has dropped.
    pub objects: Vec<(ObjectKey, Value)>,
    /// Objects to delete, in the order they are deleted (the reverse kind order): each is in
    /// the inventory, no longer rendered, and still labelled by this application.
    pub prune: Vec<ObjectKey>,
    /// Objects left in place although Git no longer has them: prune off or refused, or no
    /// longer this application's.
    pub orphaned: Vec<ObjectKey>,
    /// The inventory the sync leaves for the next one.
    pub inventory: Vec<Value>,
    /// Git renders nothing and the previous sync applied something: the sync deletes nothing
    /// and fails, unless [`SyncOptions::allow_empty`].
    pub refused: bool,
}

/// The rendered objects in the order they are applied ([`KIND_ORDER`]), stable within a kind.
fn apply_order(rendered: &[Value]) -> Vec<&Value> {
    let mut ordered: Vec<&Value> = rendered.iter().collect();
    ordered.sort_by_key(|o| rank(o));
    ordered
}

/// Whether an apply that answered `applied` changed the object that was `live`. The local
/// comparison only proves "equal"; the server's answer says whether the apply changed anything
/// (a value it normalises, a field it drops when empty): an object that stays at its
/// resourceVersion is unchanged, and a dry run, which stores nothing, is compared by content.
fn apply_changed(live: Option<&Value>, applied: &Value, dry_run: bool) -> bool {
    match live {
        None => true,
        Some(l) if dry_run => content(applied) != content(l),
        Some(l) => {
            applied.pointer("/metadata/resourceVersion") != l.pointer("/metadata/resourceVersion")
        }
    }
}

/// The objects of the previous inventory that Git no longer renders.
struct PrunePlan {
    /// To delete if still this application's, in deletion order.
    candidates: Vec<Value>,
    /// Kept, in the inventory too: prune is off, or refused.
    kept: Vec<Value>,
    refused: bool,
}

/// Which inventory objects Git no longer renders, and what may happen to them.
fn plan_prune(rendered: &[Value], inventory: &[Value], opts: &SyncOptions) -> PrunePlan {
    let rendered_keys: Vec<ObjectKey> = rendered
        .iter()
        .map(|o| ObjectKey::of(&stub(o, &opts.namespace)))
        .collect();
    let mut gone: Vec<Value> = inventory
        .iter()
        .filter(|o| !rendered_keys.contains(&ObjectKey::of(o)))
        .cloned()
        .collect();
    // Workloads go before the namespace they live in.
    gone.sort_by_key(|o| std::cmp::Reverse(rank(o)));
    let refused = rendered.is_empty() && !inventory.is_empty() && !opts.allow_empty;
    if !opts.prune || refused {
        PrunePlan {
            candidates: Vec::new(),
            kept: gone,
            refused,
        }
    } else {
        PrunePlan {
            candidates: gone,
            kept: Vec::new(),
            refused,
        }
    }
}

/// What becomes of a prune candidate the cluster has as `live`.
#[derive(Debug, PartialEq, Eq)]
enum Prune {
    /// Still labelled by this application: delete it.
    Delete,
    /// Someone else's now, whatever the inventory says: leave it.
    NotOurs,
    /// Already gone.
    Gone,
}

fn prune_verdict(live: Option<&Value>, app: &str) -> Prune {
    match live {
        Some(l) if app_of(l) == Some(app) => Prune::Delete,
        Some(_) => Prune::NotOurs,
        None => Prune::Gone,
    }
}

/// The identity of an object for matching rendered, live and inventory objects: its key, the
/// namespace defaulted as the inventory records it.
fn identity(obj: &Value, namespace: &str) -> ObjectKey {
    ObjectKey::of(&stub(obj, namespace))
}

/// The inventory to keep *before* a sync of `rendered` starts: the previous inventory plus every
/// object about to be applied. A sync that dies part-way (a crash, `kill -9`, an API error after
/// some applies) would otherwise leave objects it created out of the inventory, and once Git
/// drops them prune would never delete them. Listing an object that then is never applied is
/// harmless: prune only deletes what is live and carries this application's label.
pub fn inventory_before_sync(
    rendered: &[Value],
    inventory: &[Value],
    namespace: &str,
) -> Vec<Value> {
    let mut out = inventory.to_vec();
    let mut known: HashSet<ObjectKey> = inventory.iter().map(|o| identity(o, namespace)).collect();
    for obj in rendered {
        if known.insert(identity(obj, namespace)) {
            out.push(stub(obj, namespace));
        }
    }
    out
}

/// What a sync of `rendered` would do when the cluster has `live` (any objects; a rendered
/// object none of them matches is missing, as is an inventory object) and the previous sync
/// applied `inventory`. Pure: the decisions of [`sync`], for callers and tests that have the
/// live objects at hand.
pub fn plan_sync(
    rendered: &[Value],
    live: &[Value],
    inventory: &[Value],
    opts: &SyncOptions,
) -> SyncPlan {
    let live: HashMap<ObjectKey, &Value> = live
        .iter()
        .map(|l| (identity(l, &opts.namespace), l))
        .collect();
    let find = |o: &Value| live.get(&identity(o, &opts.namespace)).copied();
    let mut out = SyncPlan::default();
    for obj in apply_order(rendered) {
        out.objects.push((
            ObjectKey::of(obj),
            applied_form(obj, &opts.app, find(obj), &opts.ignore),
        ));
        out.inventory.push(stub(obj, &opts.namespace));
    }
    let prune = plan_prune(rendered, inventory, opts);
    out.refused = prune.refused;
    for old in prune.kept {
        out.orphaned.push(ObjectKey::of(&old));
        out.inventory.push(old);
    }
    for old in prune.candidates {
        match prune_verdict(find(&old), &opts.app) {
            Prune::Delete => out.prune.push(ObjectKey::of(&old)),
            Prune::NotOurs => out.orphaned.push(ObjectKey::of(&old)),
            Prune::Gone => {}
        }
    }
    out
}

/// Syncs `rendered` to the cluster. `inventory` is what the previous sync applied.
pub async fn sync(
    client: &KubeClient,
    rendered: &[Value],
    inventory: &[Value],
    opts: &SyncOptions,
) -> Result<SyncReport, Error> {
    let mut report = SyncReport::default();
    let mut recorded = Vec::new();
    for obj in apply_order(rendered) {
        let key = ObjectKey::of(obj);
        // Fetched one at a time, after everything before it in kind order is applied: a custom
        // resource's kind is served only once its definition is.
        let live = client.get(obj, &opts.namespace).await?;
        let desired = applied_form(obj, &opts.app, live.as_ref(), &opts.ignore);
        let applied = client
            .apply(&desired, &opts.namespace, FIELD_MANAGER, opts.dry_run)
            .await?;
        if apply_changed(live.as_ref(), &applied, opts.dry_run) {
            if !opts.dry_run {
                recorded.push(client.record(
                    &applied,
                    ObjectEvent {
                        warning: false,
                        reason: "Synced",
                        action: "Apply",
                        note: format!(
                            "driftwatch applied it as Git has it for application {}",
                            opts.app
                        ),
                    },
                ));
            }
            if !opts.dry_run
                && let Some(rv) = applied
                    .pointer("/metadata/resourceVersion")
                    .and_then(Value::as_str)
            {
                report.versions.push((key.clone(), rv.to_owned()));
            }
            report.applied.push(key);
        } else {
            report.unchanged.push(key);
        }
        report.inventory.push(stub(obj, &opts.namespace));
    }
    let prune = plan_prune(rendered, inventory, opts);
    for old in prune.kept {
        if !opts.dry_run
            && let Ok(Some(live)) = client.get(&old, &opts.namespace).await
            && prune_verdict(Some(&live), &opts.app) == Prune::Delete
        {
            recorded.push(client.record(
                &live,
                ObjectEvent {
                    warning: true,
                    reason: "RequiresPruning",
                    action: "Skip",
                    note: format!(
                        "no longer in Git for application {}; left in place because prune is off",
                        opts.app
                    ),
                },
            ));
        }
        report.orphaned.push(ObjectKey::of(&old));
        report.inventory.push(old);
    }
    for old in prune.candidates {
        let key = ObjectKey::of(&old);
        // Never touch anything that is not ours, whatever the inventory says.
        let live = client.get(&old, &opts.namespace).await?;
        match prune_verdict(live.as_ref(), &opts.app) {
            Prune::Delete => {
                if !opts.dry_run {
                    client.delete(&old, &opts.namespace).await?;
                    if let Some(live) = &live {
                        recorded.push(client.record(
                            live,
                            ObjectEvent {
                                warning: false,
                                reason: "Pruned",
                                action: "Delete",
                                note: format!(
                                    "driftwatch deleted it: no longer in Git for application {}",
                                    opts.app
                                ),
                            },
                        ));
                    }
                }
                report.pruned.push(key);
            }
            Prune::NotOurs => report.orphaned.push(key),
            Prune::Gone => {}
        }
    }
    if prune.refused {
        return Err(Error::Refused {
            what: format!("syncing {}", opts.app),
            reason:
                "Git renders no objects; refusing to prune everything (allow it with --allow-empty)"
                    .to_owned(),
        });
    }
    // A one-shot `sync` exits right after: its events go out first (each bounded in time).
    for handle in recorded.into_iter().flatten() {
        let _ = handle.await;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    const APP: &str = "shop";

    fn opts() -> SyncOptions {
        SyncOptions {
            app: APP.into(),
            namespace: "prod".into(),
            prune: true,
            allow_empty: false,
            dry_run: false,
            ignore: Vec::new(),
        }
    }

    fn obj(api: &str, kind: &str, name: &str) -> Value {
        json!({"apiVersion": api, "kind": kind, "metadata": {"name": name}})
    }

    fn config_map(name: &str, value: &str) -> Value {
        let mut o = obj("v1", "ConfigMap", name);
        o["data"] = json!({"k": value});
        o
    }

    fn deployment(replicas: u64, image: &str) -> Value {
        let mut o = obj("apps/v1", "Deployment", "web");
        o["spec"] = json!({"replicas": replicas, "template": {"spec": {"containers": [
            {"name": "web", "image": image}
        ]}}});
        o
    }

    /// `o` as the cluster has it: in the default namespace (when namespaced), labelled by
    /// `app`, at resourceVersion 7.
    fn live_of(o: &Value, app: Option<&str>) -> Value {
        let mut l = o.clone();
        if o["kind"] != "Namespace" && l.pointer("/metadata/namespace").is_none() {
            l["metadata"]["namespace"] = json!("prod");
        }
        if let Some(app) = app {
            l["metadata"]["labels"] = json!({APP_LABEL: app});
        }
        l["metadata"]["resourceVersion"] = json!("7");
        l
    }

    fn kinds(plan: &SyncPlan) -> Vec<&str> {
        plan.objects.iter().map(|(k, _)| k.kind.as_str()).collect()
    }

    fn inventory_of(objects: &[Value]) -> Vec<Value> {
        objects.iter().map(|o| stub(o, "prod")).collect()
    }

    #[test]
    fn a_sync_cut_short_still_lets_prune_remove_what_it_created() {
        // Found by scripts/crash-campaign's reasoning: the inventory used to be written only
        // after the whole sync, so a kill -9 between creating `new` and saving left `new` out of
        // it, and once Git dropped `new` prune never deleted it.
        let old = config_map("old", "1");
        let new = config_map("new", "1");
        let before = inventory_of(std::slice::from_ref(&old));
        let rendered = [old.clone(), new.clone(), old.clone()];
        let pending = inventory_before_sync(&rendered, &before, "prod");
        assert_eq!(
            pending,
            inventory_of(&[old.clone(), new.clone()]),
            "each object once"
        );
        // The process dies after applying `new`; the next revision no longer has it.
        let live = [live_of(&old, Some(APP)), live_of(&new, Some(APP))];
        let plan = plan_sync(std::slice::from_ref(&old), &live, &pending, &opts());
        assert_eq!(plan.prune, [identity(&new, "prod")]);
        assert_eq!(plan.inventory, inventory_of(&[old]));
    }

    #[test]
    fn objects_are_applied_in_kind_order() {
        let rendered = [
            obj("example.com/v1", "Widget", "w"),
            deployment(2, "web:1"),
            config_map("b", "1"),
            obj(
                "apiextensions.k8s.io/v1",
                "CustomResourceDefinition",
                "widgets",
            ),
            obj("v1", "ServiceAccount", "sa"),
            config_map("a", "1"),
            obj("v1", "Namespace", "prod"),
        ];
        let plan = plan_sync(&rendered, &[], &[], &opts());
        assert_eq!(
            kinds(&plan),
            [
                "Namespace",
                "ServiceAccount",
                "ConfigMap",
                "ConfigMap",
                "CustomResourceDefinition",
                "Deployment",
                "Widget"
            ]
        );
        assert_eq!(plan.objects[2].0.name, "b", "stable within a kind");
        assert!(
            plan.objects
                .iter()
                .all(|(k, d)| d["metadata"]["labels"][APP_LABEL] == json!(APP)
                    && ObjectKey::of(d) == *k),
            "everything is applied, labelled"
        );
        assert_eq!(plan.inventory.len(), rendered.len());
        assert!(plan.prune.is_empty() && plan.orphaned.is_empty() && !plan.refused);
    }

    #[test]
    fn every_object_is_applied_as_a_sync_applies_it() {
        let same = config_map("same", "1");
        let unlabelled = config_map("unlabelled", "1");
        let rendered = [same.clone(), unlabelled.clone(), deployment(2, "web:1")];
        let live = [
            live_of(&same, Some(APP)),
            live_of(&unlabelled, None),
            live_of(&deployment(2, "web:0"), Some(APP)),
        ];
        let plan = plan_sync(&rendered, &live, &[], &opts());
        // Even what looks equal is applied: only the server can tell what a sync changes.
        assert_eq!(plan.objects.len(), 3);
        let d = &plan.objects[2].1;
        assert_eq!(
            *d,
            applied_form(&deployment(2, "web:1"), APP, Some(&live[2]), &[]),
            "exactly what a sync applies"
        );
        assert_eq!(d["metadata"]["labels"][APP_LABEL], json!(APP));
    }

    #[test]
    fn pruning_comes_last_in_reverse_kind_order_namespaces_last() {
        let keep = config_map("keep", "1");
        let old = [
            obj("v1", "Namespace", "old-ns"),
            config_map("old", "1"),
            deployment(1, "old:1"),
            keep.clone(),
        ];
        let live: Vec<Value> = old.iter().map(|o| live_of(o, Some(APP))).collect();
        let plan = plan_sync(
            std::slice::from_ref(&keep),
            &live,
            &inventory_of(&old),
            &opts(),
        );
        let pruned: Vec<&str> = plan.prune.iter().map(|k| k.kind.as_str()).collect();
        assert_eq!(pruned, ["Deployment", "ConfigMap", "Namespace"]);
        assert_eq!(
            plan.inventory,
            inventory_of(&[keep]),
            "only what is rendered"
        );
    }

    #[test]
    fn only_objects_still_labelled_by_this_application_are_pruned() {
        let ours = config_map("ours", "1");
        let theirs = config_map("theirs", "1");
        let unlabelled = config_map("unlabelled", "1");
        let gone = config_map("gone", "1");
        let inventory = inventory_of(&[ours.clone(), theirs.clone(), unlabelled.clone(), gone]);
        let live = [
            live_of(&ours, Some(APP)),
            live_of(&theirs, Some("other-app")),
            live_of(&unlabelled, None),
        ];
        let plan = plan_sync(&[config_map("new", "1")], &live, &inventory, &opts());
        let names = |keys: &[ObjectKey]| keys.iter().map(|k| k.name.clone()).collect::<Vec<_>>();
        assert_eq!(names(&plan.prune), ["ours"]);
        let mut orphaned = names(&plan.orphaned);
        orphaned.sort();
        assert_eq!(orphaned, ["theirs", "unlabelled"]);
        assert_eq!(
            plan.inventory.len(),
            1,
            "what is not ours leaves the inventory"
        );
    }

    #[test]
    fn with_prune_off_what_git_dropped_is_orphaned_and_kept_in_the_inventory() {
        let old = config_map("old", "1");
        let mut o = opts();
        o.prune = false;
        let plan = plan_sync(
            &[config_map("new", "1")],
            &[live_of(&old, Some(APP))],
            &inventory_of(std::slice::from_ref(&old)),
            &o,
        );
        assert!(plan.prune.is_empty());
        assert_eq!(plan.orphaned, [ObjectKey::of(&stub(&old, "prod"))]);
        assert_eq!(plan.inventory.len(), 2);
    }

    #[test]
    fn pruning_everything_is_refused_unless_allowed() {
        let old = [config_map("a", "1"), deployment(1, "web:1")];
        let live: Vec<Value> = old.iter().map(|o| live_of(o, Some(APP))).collect();
        let inventory = inventory_of(&old);
        let refused = plan_sync(&[], &live, &inventory, &opts());
        assert!(refused.refused);
        assert!(refused.prune.is_empty(), "nothing is deleted");
        assert_eq!(refused.orphaned.len(), 2);
        assert_eq!(refused.inventory.len(), inventory.len());
        assert!(
            inventory.iter().all(|o| refused.inventory.contains(o)),
            "the inventory survives"
        );

        let mut o = opts();
        o.allow_empty = true;
        let allowed = plan_sync(&[], &live, &inventory, &o);
        assert!(!allowed.refused);
        assert_eq!(allowed.prune.len(), 2);
        assert!(allowed.inventory.is_empty());

        assert!(
            !plan_sync(&[], &[], &[], &opts()).refused,
            "nothing before, nothing now: nothing to refuse"
        );
    }

    #[test]
    fn a_dry_run_plans_exactly_what_a_sync_would() {
        let rendered = [deployment(2, "web:1"), config_map("a", "1")];
        let old = config_map("old", "1");
        let live = [
            live_of(&deployment(3, "web:1"), None),
            live_of(&old, Some(APP)),
        ];
        let inventory = inventory_of(&[old]);
        let mut dry = opts();
        dry.dry_run = true;
        assert_eq!(
            plan_sync(&rendered, &live, &inventory, &dry),
            plan_sync(&rendered, &live, &inventory, &opts()),
            "same applies (label included), same prunes"
        );
    }

    #[test]
    fn after_an_apply_an_unchanged_resource_version_counts_as_unchanged() {
        let live = live_of(&deployment(2, "web:1"), Some(APP));
        let mut same = live.clone();
        same["metadata"]["managedFields"] = json!([{"manager": FIELD_MANAGER}]);
        assert!(!apply_changed(Some(&live), &same, false));
        let mut bumped = same.clone();
        bumped["metadata"]["resourceVersion"] = json!("8");
        assert!(apply_changed(Some(&live), &bumped, false));
        assert!(apply_changed(None, &same, false), "created");
        // A dry run stores nothing: the answer's content decides.
        assert!(!apply_changed(Some(&live), &same, true));
        let mut other = same.clone();
        other["spec"]["replicas"] = json!(3);
        assert!(apply_changed(Some(&live), &other, true));
    }

    #[test]
    fn ignored_fields_and_autoscaled_replicas_keep_their_live_values() {
        let mut o = opts();
        o.ignore = vec![IgnoreRule {
            kind: Some("Deployment".into()),
            name: None,
            json_pointers: vec!["/spec/replicas".into()],
            managers: Vec::new(),
        }];
        let git = deployment(2, "web:1");
        let changed = live_of(&deployment(5, "web:0"), Some(APP));
        let plan = plan_sync(std::slice::from_ref(&git), &[changed], &[], &o);
        let d = &plan.objects[0].1;
        assert_eq!(d["spec"]["replicas"], json!(5), "the live value is kept");
        assert_eq!(
            d["spec"]["template"]["spec"]["containers"][0]["image"],
            json!("web:1")
        );
        // An autoscaler writing the scale subresource owns replicas: they are not applied.
        let mut scaled = live_of(&deployment(7, "web:1"), Some(APP));
        scaled["metadata"]["managedFields"] = json!([{"manager": "hpa", "operation": "Update",
            "subresource": "scale", "fieldsV1": {"f:spec": {"f:replicas": {}}}}]);
        let form = applied_form(&git, APP, Some(&scaled), &[]);
        assert!(form["spec"].get("replicas").is_none(), "{form}");
        assert_eq!(
            applied_form(&git, APP, None, &[])["spec"]["replicas"],
            json!(2)
        );
    }

    #[test]
    fn what_an_apply_changed_is_judged_on_the_fields_git_sets() {
        let form = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "prod", "labels": {"a": "1"}},
            "spec": {"template": {"spec": {"hostname": "", "containers": [{"name": "web", "image": "web:1"}]}}}});
        let before = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "prod", "labels": {"a": "1"}, "resourceVersion": "5"},
            "spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "web", "image": "web:1", "imagePullPolicy": "IfNotPresent"}]}}},
            "status": {"replicas": 3}});
        // The server dropped the empty hostname, and a controller annotated the object: no
        // field Git sets changed.
        let mut after = before.clone();
        after["metadata"]["annotations"] = json!({"deployment.kubernetes.io/revision": "2"});
        after["metadata"]["resourceVersion"] = json!("6");
        assert!(!changed_what_git_sets(&form, &before, &after));
        let projected = project(&after, &form);
        assert_eq!(
            projected["spec"]["template"]["spec"]["containers"][0],
            json!({"name": "web", "image": "web:1"})
        );
        assert!(projected["metadata"].get("annotations").is_none());
        // Git's image replaced another: a change.
        let mut wrong = before.clone();
        wrong["spec"]["template"]["spec"]["containers"][0]["image"] = json!("rogue:1");
        assert!(changed_what_git_sets(&form, &wrong, &before));
    }
}
