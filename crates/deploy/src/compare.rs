//! One verdict on an application against the cluster, shared by `diff`, `status`, `run`'s
//! detect-only applications and `/status`: per object of Git's rendering, whether a sync would
//! change it — the API server's answer to a dry run of exactly what a sync applies, for every
//! object — the differing fields for people, and its health.

use driftwatch_cluster::{
    FIELD_MANAGER, FieldDiff, Health, IgnoreRule, KubeClient, ObjectDiff, ObjectKey, applied_form,
    assess, changes, diff, same_version,
};
use futures_util::StreamExt;
use serde_json::Value;

use crate::error::Error;

/// Whether the cluster is as Git says.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SyncStatus {
    /// Every object is as Git says.
    Synced,
    /// Some object differs (or is missing).
    OutOfSync,
    /// Not compared yet, or the last attempt failed.
    #[default]
    Unknown,
}

impl std::fmt::Display for SyncStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SyncStatus::Synced => "Synced",
            SyncStatus::OutOfSync => "OutOfSync",
            SyncStatus::Unknown => "Unknown",
        })
    }
}

/// One object of Git's rendering against the cluster.
#[derive(Clone, Debug)]
pub struct ObjectState {
    /// Which object.
    pub key: ObjectKey,
    /// How it differs, when a sync would change it.
    pub diff: Option<ObjectDiff>,
    /// Its health, and why.
    pub health: Health,
    /// Why it has that health.
    pub reason: String,
}

/// An application against the cluster.
#[derive(Clone, Debug, Default)]
pub struct Comparison {
    /// Per object of Git's rendering, in its order.
    pub objects: Vec<ObjectState>,
}

impl Comparison {
    /// Synced when no object would change.
    pub fn sync(&self) -> SyncStatus {
        if self.objects.iter().any(|o| o.diff.is_some()) {
            SyncStatus::OutOfSync
        } else {
            SyncStatus::Synced
        }
    }

    /// The objects a sync would change.
    pub fn differences(&self) -> Vec<&ObjectDiff> {
        self.objects
            .iter()
            .filter_map(|o| o.diff.as_ref())
            .collect()
    }

    /// The worst health, and why (naming the object).
    pub fn health(&self) -> (Health, String) {
        let mut worst = (Health::Healthy, "all objects healthy".to_owned());
        for o in &self.objects {
            if o.health > worst.0 {
                worst = (o.health, format!("{}: {}", o.key, o.reason));
            }
        }
        worst
    }
}

/// Compares Git's `rendered` objects of application `app` with the cluster. Objects that name no
/// namespace live in `namespace`; `ignore` are the application's ignoreDifferences (and any
/// more the caller adds). `inventory` is what the application applied before: those of its
/// objects Git no longer renders and that still carry its label require pruning.
pub async fn compare(
    client: &KubeClient,
    app: &str,
    rendered: &[Value],
    inventory: &[Value],
    namespace: &str,
    ignore: &[IgnoreRule],
) -> Result<Comparison, Error> {
    let mut objects = Vec::with_capacity(rendered.len());
    let rendered_keys: Vec<ObjectKey> = rendered
        .iter()
        .map(|o| with_namespace(ObjectKey::of(o), namespace))
        .collect();
    for old in inventory {
        let key = with_namespace(ObjectKey::of(old), namespace);
        if rendered_keys.contains(&key) {
            continue;
        }
        let Some(live) = client.get(old, namespace).await? else {
            continue;
        };
        // Only what still carries this application's label is its to prune.
        if driftwatch_cluster::app_of(&live) != Some(app) {
            continue;
        }
        let (health, reason) = assess(Some(&live));
        objects.push(ObjectState {
            diff: Some(ObjectDiff {
                key: key.clone(),
                missing: false,
                orphan: true,
                fields: Vec::new(),
            }),
            key,
            health,
            reason,
        });
    }
    // Each object's read and dry run are independent: a bounded number run at once, the
    // answers kept in Git's order.
    // The futures are made first (a stream mapping through a borrowing closure would not be
    // `Send` for every lifetime, which the service's spawned tasks need).
    let pending: Vec<_> = rendered
        .iter()
        .map(|obj| live_and_answer(client, obj, app, namespace, ignore))
        .collect();
    let answers: Vec<Result<LiveAndAnswer, Error>> = futures_util::stream::iter(pending)
        .buffered(CONCURRENT_DRY_RUNS)
        .collect()
        .await;
    for (obj, answer) in rendered.iter().zip(answers) {
        let key = ObjectKey::of(obj);
        let (live, after) = answer?;
        objects.push(judge(obj, key, live, after, ignore));
    }
    Ok(Comparison { objects })
}

/// One object's state from its live form and the server's answer to a dry run of what a sync
/// applies: the server's answer decides; the local comparison names who changed the fields Git
/// sets.
fn judge(
    obj: &Value,
    key: ObjectKey,
    live: Option<Value>,
    after: Option<Value>,
    ignore: &[IgnoreRule],
) -> ObjectState {
    let (health, reason) = assess(live.as_ref());
    let diff = match &live {
        Some(l) => {
            let local = diff(std::slice::from_ref(obj), std::slice::from_ref(l), ignore)
                .into_iter()
                .next()
                .map(|d| d.fields)
                .unwrap_or_default();
            let fields = match &after {
                Some(after) => merge_fields(local, changes(l, after, ignore)),
                // Refused even a dry run (a detect-only service account may only read): the
                // local comparison alone decides.
                None => local,
            };
            (!fields.is_empty()).then(|| ObjectDiff {
                key: key.clone(),
                missing: false,
                orphan: false,
                fields,
            })
        }
        None => Some(ObjectDiff {
            key: key.clone(),
            missing: true,
            orphan: false,
            fields: Vec::new(),
        }),
    };
    ObjectState {
        key,
        diff,
        health,
        reason,
    }
}

/// An object as the cluster has it (`None`: missing) and the server's answer to a dry run of
/// what a sync applies (`None`: missing, or the dry run was forbidden).
type LiveAndAnswer = (Option<Value>, Option<Value>);

/// Reads and dry runs in flight at once in a comparison: enough to hide the round trips, few
/// enough not to crowd the API server (client-go's default QPS is 5, burst 10; kubectl diff
/// runs one at a time).
const CONCURRENT_DRY_RUNS: usize = 16;

/// The live object and the server's answer to a dry run of what a sync applies, computed on
/// that same version: a controller writing in between (a Deployment's revision, an HPA) would
/// otherwise show as a change, so the pair is read again, a few times at most. No answer when
/// the server forbids the dry run (RBAC counts it as a patch).
async fn live_and_answer(
    client: &KubeClient,
    obj: &Value,
    app: &str,
    namespace: &str,
    ignore: &[IgnoreRule],
) -> Result<LiveAndAnswer, Error> {
    let mut tries = 0;
    loop {
        tries += 1;
        let Some(live) = client.get(obj, namespace).await? else {
            return Ok((None, None));
        };
        let form = applied_form(obj, app, Some(&live), ignore);
        let after = match client.apply(&form, namespace, FIELD_MANAGER, true).await {
            Ok(after) => after,
            Err(e) if e.is_forbidden() => return Ok((Some(live), None)),
            Err(e) => return Err(e.into()),
        };
        if same_version(&live, &after) || tries == 3 {
            return Ok((Some(live), Some(after)));
        }
    }
}

/// The fields that differ: the local comparison's (they name the manager of each field Git
/// sets) where the server's answer confirms a sync would change them, those another manager
/// holds (a sync leaves them, so the server's answer cannot show them), then what only the
/// server's answer shows (a key added to an atomic map, a field Git dropped).
fn merge_fields(local: Vec<FieldDiff>, server: Vec<FieldDiff>) -> Vec<FieldDiff> {
    let related = |a: &str, b: &str| {
        a == b || a.starts_with(&format!("{b}/")) || b.starts_with(&format!("{a}/"))
    };
    let mut fields: Vec<FieldDiff> = local
        .into_iter()
        .filter(|l| l.held || server.iter().any(|s| related(&l.pointer, &s.pointer)))
        .collect();
    let extra: Vec<FieldDiff> = server
        .into_iter()
        .filter(|s| !fields.iter().any(|l| related(&l.pointer, &s.pointer)))
        .collect();
    fields.extend(extra);
    fields
}

/// `key` with the application's namespace where Git names none, as the inventory keeps it.
fn with_namespace(mut key: ObjectKey, namespace: &str) -> ObjectKey {
    if key.namespace.is_empty() {
        key.namespace = namespace.to_owned();
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn state(name: &str, differs: bool, health: Health) -> ObjectState {
        let key = ObjectKey::of(
            &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "ns"}}),
        );
        ObjectState {
            diff: differs.then(|| ObjectDiff {
                key: key.clone(),
                missing: false,
                orphan: false,
                fields: Vec::new(),
            }),
            key,
            health,
            reason: format!("{name} is {health}"),
        }
    }

    #[test]
    fn verdict_and_worst_health() {
        let none = Comparison::default();
        assert_eq!(none.sync(), SyncStatus::Synced);
        assert_eq!(none.health().0, Health::Healthy);
        let c = Comparison {
            objects: vec![
                state("a", false, Health::Healthy),
                state("b", true, Health::Progressing),
                state("c", false, Health::Degraded),
            ],
        };
        assert_eq!(c.sync(), SyncStatus::OutOfSync);
        assert_eq!(c.differences().len(), 1);
        assert_eq!(c.differences()[0].key.name, "b");
        let (h, why) = c.health();
        assert_eq!(h, Health::Degraded);
        assert!(why.starts_with("ConfigMap/ns/c:"), "{why}");
        assert_eq!(SyncStatus::default().to_string(), "Unknown");
    }
}
