//! The healer's decisions, apart from its watches: a plain synchronous book of what every
//! application should be and what happened to each of its objects, fed one [`HealInput`] at a
//! time and answering with [`HealAction`]s. It knows no API server and reads no clock — the
//! caller passes the time — so every decision (heal, back off, report, declare a fight, skip
//! what a heal already replaced, wait for a sync) is tested without a server.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{HealEvent, HealOptions, LiveStatus};
use crate::diff::{IgnoreRule, ObjectKey, diff};
use crate::health::{Health, assess};
use crate::mark::FIELD_MANAGER;
use crate::sync::{app_of, applied_form};

/// What a watch saw happen to one object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// Created.
    Added,
    /// Changed.
    Modified,
    /// Deleted.
    Deleted,
    /// Shown by the list a watch starts with: it may have changed while nothing watched.
    Listed,
}

impl Change {
    /// The change a watch event's `type` names. Anything but `DELETED` shows the object as it
    /// is now, so a type this code does not know is judged like a modification rather than
    /// dropped.
    pub fn from_watch(event_type: &str) -> Change {
        match event_type {
            "ADDED" => Change::Added,
            "DELETED" => Change::Deleted,
            _ => Change::Modified,
        }
    }
}

/// What a (re)list showed of one collection: the objects it did not show were deleted while
/// nothing watched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listing {
    /// The collection's API version (`apps/v1`).
    pub api_version: String,
    /// The collection's kind.
    pub kind: String,
    /// Whether the kind lives in namespaces.
    pub namespaced: bool,
    /// The namespace the list covered; empty: every namespace (or a cluster-scoped kind).
    pub namespace: String,
    /// Namespace (empty for cluster-scoped objects) and name of every object listed.
    pub present: HashSet<(String, String)>,
}

/// One message to the healer's event loop.
#[derive(Clone, Debug, PartialEq)]
pub enum HealInput {
    /// A watch event, or an object a (re)list showed; the object as the cluster has it now
    /// (for [`Change::Deleted`], as it was).
    Object(Change, Value),
    /// A (re)list is complete.
    Relisted(Listing),
    /// The sync of the application named, begun after its revision was set, is done: judge
    /// what arrived meanwhile.
    Synced(String),
    /// The API server says applying what a sync applies would change these fields of `live`
    /// (with the managers that own them now), though the local comparison of the fields Git
    /// sets saw none: a key added to an atomic map, a field Git dropped. Judged as a change.
    ServerDrift {
        /// The object as the cluster has it.
        live: Value,
        /// The fields a sync would change.
        fields: Vec<String>,
        /// Who owns them now.
        managers: Vec<String>,
    },
}

/// What one input calls for.
#[derive(Clone, Debug, PartialEq)]
pub enum HealAction {
    /// Apply `obj` as [`FIELD_MANAGER`] after `wait`, then report `event` and tell the book
    /// the resourceVersion the apply produced ([`HealBook::applied`] with `key`).
    Apply {
        /// What to apply: [`applied_form`] of Git's object.
        obj: Value,
        /// Namespace for an object that names none.
        namespace: String,
        /// The backoff still to wait before applying.
        wait: Duration,
        /// What to report once applied.
        event: HealEvent,
        /// The tracked object.
        key: ObjectKey,
    },
    /// Tell the caller; change nothing.
    Report(HealEvent),
}

/// What the healer last saw of one tracked object — all it keeps of the live object, so the
/// book stays small: the paths that differ from Git, and its health.
#[derive(Clone, Debug)]
struct Seen {
    drift: Vec<String>,
    health: Health,
    reason: String,
}

#[derive(Default)]
struct Track {
    seen: Option<Seen>,
    /// The resourceVersion our last heal produced: events before it show a state the heal
    /// already replaced (a controller's status write right after the manual change, say), so
    /// they are skipped until the heal's own event arrives — one change, one heal.
    superseded_until: Option<String>,
    /// The other managers of a fight, once healing stopped.
    rivals: Vec<String>,
    heals: Vec<Instant>,
    last: Option<Instant>,
    fighting: bool,
    /// Self-heal off: the drift last reported, so one change is reported once.
    reported: Option<Vec<String>>,
    /// The content (see [`content_hash`]) of a live object whose local differences the API
    /// server, asked with exactly what a sync applies, found would change nothing (a value it
    /// normalises, an empty field it drops): not drift while the object stays exactly so; any
    /// change to it is judged anew.
    accepted: Option<u64>,
    /// The content last put to the server by [`HealBook::wants_server_check`].
    checked: Option<u64>,
}

struct Desired {
    /// Git's objects as compact JSON text: a tenth of the memory of parsed values; parsed
    /// again only when an event concerns the object.
    objects: HashMap<ObjectKey, Box<str>>,
    opts: HealOptions,
    /// A sync of this revision is under way: events wait in `stash` (the latest per object)
    /// until it ends, so the sync's own changes are not "healed" and none made meanwhile is lost.
    pending: bool,
    stash: HashMap<ObjectKey, (Change, Value)>,
}

/// Every application's desired objects and the account of each tracked object: the whole of
/// the healer's judgement, with no I/O.
#[derive(Default)]
pub struct HealBook {
    apps: HashMap<String, Desired>,
    tracks: HashMap<ObjectKey, Track>,
}

/// Whether an event at `rv` predates `until`. resourceVersions are etcd revisions on every
/// real server; one that is not a number is never taken for older, so nothing is skipped on a
/// guess.
fn older(rv: Option<&str>, until: &str) -> bool {
    match (
        rv.and_then(|r| r.parse::<u64>().ok()),
        until.parse::<u64>().ok(),
    ) {
        (Some(a), Some(b)) => a < b,
        _ => false,
    }
}

/// What differs from Git in a live object, by what a heal would do about it.
#[derive(Default)]
struct Drift {
    /// What a heal takes back, and which other managers changed it.
    healed: Option<(Vec<String>, Vec<String>)>,
    /// What another manager holds and a heal leaves (replicas an autoscaler scales), labelled
    /// with who holds it: reported, never fought.
    held: Vec<String>,
}

fn drift(want: &Value, live: &Value, ignore: &[IgnoreRule]) -> Drift {
    let Some(object) = diff(
        std::slice::from_ref(want),
        std::slice::from_ref(live),
        ignore,
    )
    .into_iter()
    .next() else {
        return Drift::default();
    };
    let (held, fields): (Vec<_>, Vec<_>) = object.fields.into_iter().partition(|f| f.held);
    let mut managers: Vec<String> = fields
        .iter()
        .filter_map(|f| f.manager.clone())
        .filter(|m| m != FIELD_MANAGER)
        .collect();
    managers.sort();
    managers.dedup();
    Drift {
        healed: (!fields.is_empty())
            .then(|| (fields.into_iter().map(|f| f.path).collect(), managers)),
        held: held.iter().map(|f| f.label()).collect(),
    }
}

impl HealBook {
    /// An empty book: no application is healed until [`HealBook::set_revision`].
    pub fn new() -> Self {
        HealBook::default()
    }

    /// Makes `rendered` what the application should be from now on. Until
    /// [`HealInput::Synced`] arrives for it, its events are kept, not judged: the sync about to
    /// run makes every object equal, and a change made meanwhile is judged after it against
    /// this revision, never healed back to the old one.
    pub fn set_revision(&mut self, rendered: &[Value], opts: &HealOptions) {
        let objects: HashMap<ObjectKey, Box<str>> = rendered
            .iter()
            .map(|o| (ObjectKey::of(o), o.to_string().into_boxed_str()))
            .collect();
        // A new revision starts a new account: an old fight does not outlive the change, and
        // the sync about to run makes every object equal (applied ones report back).
        for k in objects.keys() {
            let seen = self.tracks.remove(k).and_then(|t| t.seen);
            self.tracks.insert(
                k.clone(),
                Track {
                    seen: seen.map(|mut v| {
                        v.drift.clear();
                        v
                    }),
                    ..Track::default()
                },
            );
        }
        self.apps.insert(
            opts.app.clone(),
            Desired {
                objects,
                opts: opts.clone(),
                pending: true,
                stash: HashMap::new(),
            },
        );
    }

    /// The resourceVersions a sync's applies produced: events from before them (the state the
    /// sync replaced, possibly still on its way) are not judged.
    pub fn sync_applied(&mut self, versions: &[(ObjectKey, String)]) {
        for (key, rv) in versions {
            self.tracks.entry(key.clone()).or_default().superseded_until = Some(rv.clone());
        }
    }

    /// The resourceVersion a heal of `key` produced, so the events from before it are skipped.
    /// An apply that changed nothing keeps the version, and the next event is not older than it.
    pub fn applied(&mut self, key: &ObjectKey, resource_version: &str) {
        if let Some(t) = self.tracks.get_mut(key) {
            t.superseded_until = Some(resource_version.to_owned());
        }
    }

    /// The API server says applying `key` as a sync would changes nothing to `live`, although
    /// the local comparison saw differences: not drift while the object stays as `live` is.
    /// Undoes the heal counted for it, so it neither backs off nor counts to a fight.
    pub fn accept(&mut self, key: &ObjectKey, live: &Value) {
        if let Some(t) = self.tracks.get_mut(key) {
            t.accepted = Some(content_hash(live));
            t.reported = None;
            if let Some(seen) = t.seen.as_mut() {
                seen.drift.clear();
            }
            if t.heals.pop().is_some() {
                t.last = t.heals.last().copied();
            }
        }
    }

    /// Whether to ask the API server about `live`: the local comparison found it equal to Git,
    /// but its content is new since it was last asked about (a key added to an atomic map or a
    /// field Git dropped only the server's answer shows). Notes the content as asked about.
    pub fn wants_server_check(&mut self, live: &Value) -> bool {
        let Some(app) = app_of(live) else {
            return false;
        };
        let Some(desired) = self.apps.get(app) else {
            return false;
        };
        if desired.pending {
            return false;
        }
        let mut key = ObjectKey::of(live);
        if !desired.objects.contains_key(&key) {
            key.namespace.clear();
        }
        if !desired.objects.contains_key(&key) {
            return false;
        }
        let Some(track) = self.tracks.get_mut(&key) else {
            return false;
        };
        let locally_equal = track.seen.as_ref().is_some_and(|s| s.drift.is_empty());
        let content = content_hash(live);
        if track.fighting || !locally_equal || track.checked == Some(content) {
            return false;
        }
        track.checked = Some(content);
        true
    }

    /// What a sync of `key` applies, judged against `live`: Git's object, its application, the
    /// namespace for objects that name none, and the ignored differences — for asking the API
    /// server whether a difference the local comparison saw is one.
    pub fn sync_form(
        &self,
        key: &ObjectKey,
        live: &Value,
    ) -> Option<(Value, String, String, Vec<IgnoreRule>)> {
        self.apps.values().find_map(|d| {
            let stored = d.objects.get(key)?;
            let want: Value = serde_json::from_str(stored).ok()?;
            Some((
                applied_form(&want, &d.opts.app, Some(live), &d.opts.ignore),
                d.opts.app.clone(),
                d.opts.namespace.clone(),
                d.opts.ignore.clone(),
            ))
        })
    }

    /// Stops healing an application (it was removed, or its sync policy changed).
    pub fn remove(&mut self, app: &str) {
        if let Some(d) = self.apps.remove(app) {
            for k in d.objects.keys() {
                self.tracks.remove(k);
            }
        }
    }

    /// Git's objects of one kind across every application, each with its application's
    /// default namespace: what to watch again when the kind must be watched per namespace.
    pub fn desired_of_kind(&self, group: &str, kind: &str) -> Vec<(Value, String)> {
        self.apps
            .values()
            .flat_map(|d| {
                d.objects
                    .iter()
                    .filter(|(k, _)| k.kind == kind && k.group == group)
                    .filter_map(|(_, o)| serde_json::from_str(o).ok())
                    .map(|o| (o, d.opts.namespace.clone()))
            })
            .collect()
    }

    /// Decides what one input calls for at `now`, and notes it.
    pub fn judge(&mut self, input: HealInput, now: Instant) -> Vec<HealAction> {
        match input {
            HealInput::Relisted(listing) => self.missing(&listing, now),
            HealInput::Synced(app) => {
                let stash = match self.apps.get_mut(&app) {
                    Some(d) => {
                        d.pending = false;
                        std::mem::take(&mut d.stash)
                    }
                    None => return Vec::new(),
                };
                stash
                    .into_values()
                    .flat_map(|(change, live)| self.judge_object(change, &live, now, None))
                    .collect()
            }
            HealInput::Object(change, live) => self.judge_object(change, &live, now, None),
            HealInput::ServerDrift {
                live,
                fields,
                managers,
            } => self.judge_object(Change::Modified, &live, now, Some((fields, managers))),
        }
    }

    fn judge_object(
        &mut self,
        change: Change,
        live: &Value,
        now: Instant,
        server: Option<(Vec<String>, Vec<String>)>,
    ) -> Vec<HealAction> {
        let Some(app) = app_of(live) else {
            return Vec::new();
        };
        let Some(desired) = self.apps.get_mut(app) else {
            return Vec::new();
        };
        let deleted = change == Change::Deleted;
        // Git may leave the namespace to the application's default; the live object names it.
        let mut key = ObjectKey::of(live);
        let stored = match desired.objects.get(&key) {
            Some(w) => w,
            None => {
                key.namespace.clear();
                match desired.objects.get(&key) {
                    Some(w) => w,
                    None => return Vec::new(),
                }
            }
        };
        let Ok(want) = serde_json::from_str::<Value>(stored) else {
            return Vec::new();
        };
        let key = ObjectKey::of(&want);
        let (differs, held) = if deleted {
            (Some((vec!["(deleted)".to_owned()], Vec::new())), Vec::new())
        } else {
            let d = drift(&want, live, &desired.opts.ignore);
            (d.healed.or(server), d.held)
        };
        let track = self.tracks.entry(key.clone()).or_default();
        // What the server found would not change is not drift; anything else is judged anew.
        let differs = match (differs, track.accepted) {
            (Some(_), Some(accepted)) if !deleted && content_hash(live) == accepted => None,
            (d, _) => {
                track.accepted = None;
                d
            }
        };
        let rv = live
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str);
        if let Some(until) = &track.superseded_until {
            if !deleted && older(rv, until) {
                return Vec::new();
            }
            track.superseded_until = None;
        }
        let (health, reason) = if deleted {
            (Health::Missing, "deleted".to_owned())
        } else {
            assess(Some(live))
        };
        track.seen = Some(Seen {
            drift: differs
                .as_ref()
                .map(|d| d.0.clone())
                .unwrap_or_default()
                .into_iter()
                .chain(held)
                .collect(),
            health,
            reason,
        });
        if desired.pending {
            desired.stash.insert(key, (change, live.clone()));
            return Vec::new();
        }
        let opts = &desired.opts;
        if track.fighting {
            return Vec::new();
        }
        let Some((fields, managers)) = differs else {
            track.reported = None;
            return Vec::new();
        };
        if !opts.heal {
            if track.reported.as_ref() == Some(&fields) {
                return Vec::new();
            }
            track.reported = Some(fields.clone());
            return vec![HealAction::Report(HealEvent::Drifted {
                app: opts.app.clone(),
                key,
                fields,
                managers,
            })];
        }
        track.heals.retain(|t| now.duration_since(*t) < opts.window);
        if track.heals.len() as u32 >= opts.fight_limit {
            track.fighting = true;
            track.rivals = managers.clone();
            return vec![HealAction::Report(HealEvent::Fight {
                app: opts.app.clone(),
                key,
                managers,
            })];
        }
        // Backoff doubles with each heal in the window; a quiet window resets it.
        let backoff =
            Duration::from_millis(100u64 << track.heals.len().min(10)).min(opts.max_backoff);
        let wait = match track.last {
            Some(last) if !track.heals.is_empty() => {
                backoff.saturating_sub(now.duration_since(last))
            }
            _ => Duration::ZERO,
        };
        track.heals.push(now + wait);
        track.last = Some(now + wait);
        // A heal applies what a sync would: fields the user ignores keep their live values.
        let obj = applied_form(&want, &opts.app, (!deleted).then_some(live), &opts.ignore);
        let event = if deleted {
            HealEvent::Recreated {
                app: opts.app.clone(),
                key: key.clone(),
            }
        } else {
            HealEvent::Healed {
                app: opts.app.clone(),
                key: key.clone(),
                fields,
                managers,
                after: Duration::ZERO,
            }
        };
        vec![HealAction::Apply {
            obj,
            namespace: opts.namespace.clone(),
            wait,
            event,
            key,
        }]
    }

    /// After a (re)list: the desired objects of that collection that the list did not show
    /// were deleted while nothing watched; re-create them (or report them).
    fn missing(&mut self, listed: &Listing, now: Instant) -> Vec<HealAction> {
        let group = listed.api_version.rsplit_once('/').map_or("", |(g, _)| g);
        let mut actions = Vec::new();
        // A pending application's sync creates what is missing.
        for desired in self.apps.values().filter(|d| !d.pending) {
            let opts = &desired.opts;
            for (key, stored) in &desired.objects {
                let ns = if key.namespace.is_empty() {
                    opts.namespace.as_str()
                } else {
                    key.namespace.as_str()
                };
                let here = key.kind == listed.kind
                    && key.group == group
                    && (listed.namespace.is_empty()
                        || !listed.namespaced
                        || ns == listed.namespace);
                let id = (
                    if listed.namespaced { ns } else { "" }.to_owned(),
                    key.name.clone(),
                );
                if !here || listed.present.contains(&id) {
                    continue;
                }
                let track = self.tracks.entry(key.clone()).or_default();
                if track.fighting {
                    continue;
                }
                if !opts.heal {
                    let gone = vec!["(deleted)".to_owned()];
                    if track.reported.as_ref() != Some(&gone) {
                        track.reported = Some(gone.clone());
                        actions.push(HealAction::Report(HealEvent::Drifted {
                            app: opts.app.clone(),
                            key: key.clone(),
                            fields: gone,
                            managers: Vec::new(),
                        }));
                    }
                    continue;
                }
                track.heals.push(now);
                track.last = Some(now);
                let Ok(obj) = serde_json::from_str::<Value>(stored) else {
                    continue;
                };
                let obj = applied_form(&obj, &opts.app, None, &opts.ignore);
                actions.push(HealAction::Apply {
                    obj,
                    namespace: opts.namespace.clone(),
                    wait: Duration::ZERO,
                    event: HealEvent::Recreated {
                        app: opts.app.clone(),
                        key: key.clone(),
                    },
                    key: key.clone(),
                });
            }
        }
        actions
    }

    /// What the book says of each application now (no API calls).
    pub fn status(&self) -> BTreeMap<String, LiveStatus> {
        let mut out = BTreeMap::new();
        for (app, d) in &self.apps {
            let mut st = LiveStatus {
                objects: d.objects.len(),
                health: Health::Healthy,
                ..LiveStatus::default()
            };
            for key in d.objects.keys() {
                let Some(t) = self.tracks.get(key) else {
                    continue;
                };
                if t.fighting {
                    st.fights.push((key.clone(), t.rivals.clone()));
                }
                let Some(seen) = &t.seen else { continue };
                st.seen += 1;
                if !seen.drift.is_empty() {
                    st.out_of_sync.push((key.clone(), seen.drift.clone()));
                }
                if seen.health > st.health {
                    st.health = seen.health;
                    st.reason = format!("{key}: {}", seen.reason);
                }
            }
            if st.health == Health::Healthy && st.seen > 0 {
                st.reason = format!("{} of {} objects healthy", st.seen, st.objects);
            }
            if !st.fights.is_empty() {
                st.health = Health::Degraded;
                let (key, rivals) = &st.fights[0];
                st.reason = format!(
                    "{key}: {} keeps changing it; no longer healed",
                    if rivals.is_empty() {
                        "another field manager".to_owned()
                    } else {
                        rivals.join(", ")
                    }
                );
            }
            st.out_of_sync.sort();
            out.insert(app.clone(), st);
        }
        out
    }
}

/// A hash of what a sync could change in `live`: everything but its status and the metadata
/// the server keeps (resourceVersion, managedFields, generation, uid, creation time), so a
/// controller's status write leaves it alone and any change of content does not.
fn content_hash(live: &Value) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut content = live.clone();
    if let Some(m) = content.as_object_mut() {
        m.remove("status");
    }
    if let Some(m) = content.get_mut("metadata").and_then(Value::as_object_mut) {
        for k in [
            "resourceVersion",
            "managedFields",
            "generation",
            "uid",
            "creationTimestamp",
        ] {
            m.remove(k);
        }
    }
    let mut h = std::collections::hash_map::DefaultHasher::new();
    // serde_json's maps are ordered by key, so equal objects print alike.
    content.to_string().hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mark::APP_LABEL;
    use serde_json::json;

    const APP: &str = "shop";

    /// Git's object.
    fn deployment() -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "prod"},
            "spec": {"replicas": 2, "template": {"spec": {"containers": [
                {"name": "web", "image": "web:1"}
            ]}}}
        })
    }

    fn key() -> ObjectKey {
        ObjectKey::of(&deployment())
    }

    /// The live object at resourceVersion `rv` with `replicas`, last written by `manager`.
    fn live(rv: u64, replicas: u64, manager: &str) -> Value {
        let mut l = deployment();
        l["metadata"]["labels"] = json!({APP_LABEL: APP});
        l["metadata"]["resourceVersion"] = json!(rv.to_string());
        l["spec"]["replicas"] = json!(replicas);
        l["metadata"]["managedFields"] = json!([
            {"manager": FIELD_MANAGER, "operation": "Apply", "fieldsV1": {"f:spec": {"f:template": {}}}},
            {"manager": manager, "operation": "Update", "fieldsV1": {"f:spec": {"f:replicas": {}}}}
        ]);
        l
    }

    fn modified(v: Value) -> HealInput {
        HealInput::Object(Change::Modified, v)
    }

    fn opts() -> HealOptions {
        HealOptions::new(APP, "prod")
    }

    /// A book whose application's first sync is done.
    fn synced_book(opts: &HealOptions, now: Instant) -> HealBook {
        let mut b = HealBook::new();
        b.set_revision(&[deployment()], opts);
        assert!(b.judge(HealInput::Synced(APP.into()), now).is_empty());
        b
    }

    /// The waits of the heals among `actions`; fails on anything else.
    fn waits(actions: &[HealAction]) -> Vec<Duration> {
        actions
            .iter()
            .map(|a| match a {
                HealAction::Apply { wait, .. } => *wait,
                HealAction::Report(e) => panic!("expected a heal, got {e:?}"),
            })
            .collect()
    }

    fn reports(actions: &[HealAction]) -> Vec<HealEvent> {
        actions
            .iter()
            .map(|a| match a {
                HealAction::Report(e) => e.clone(),
                HealAction::Apply { event, .. } => {
                    panic!("expected a report, got a heal: {event:?}")
                }
            })
            .collect()
    }

    #[test]
    fn resource_versions_compare_as_revisions_or_not_at_all() {
        assert!(older(Some("99"), "100"), "numbers, not strings");
        assert!(!older(Some("100"), "100"));
        assert!(!older(Some("101"), "100"));
        assert!(!older(Some("abc"), "100"), "opaque: never skipped");
        assert!(!older(None, "100"));
    }

    #[test]
    fn watch_event_types_become_changes() {
        assert_eq!(Change::from_watch("ADDED"), Change::Added);
        assert_eq!(Change::from_watch("MODIFIED"), Change::Modified);
        assert_eq!(Change::from_watch("DELETED"), Change::Deleted);
        assert_eq!(
            Change::from_watch("SOMETHING-NEW"),
            Change::Modified,
            "an unknown type still shows the object as it is"
        );
    }

    #[test]
    fn a_manual_change_is_healed_once_naming_its_manager() {
        let t0 = Instant::now();
        let mut b = synced_book(&opts(), t0);
        let actions = b.judge(modified(live(10, 5, "kubectl-edit")), t0);
        assert_eq!(actions.len(), 1);
        let HealAction::Apply {
            obj,
            namespace,
            wait,
            event,
            key: k,
        } = &actions[0]
        else {
            panic!("expected a heal, got {actions:?}");
        };
        assert_eq!(
            *event,
            HealEvent::Healed {
                app: APP.into(),
                key: key(),
                fields: vec!["spec.replicas".into()],
                managers: vec!["kubectl-edit".into()],
                after: Duration::ZERO,
            }
        );
        assert_eq!(*wait, Duration::ZERO, "the first heal does not wait");
        assert_eq!(*k, key());
        assert_eq!(namespace, "prod");
        assert_eq!(obj["spec"]["replicas"], json!(2), "Git's value goes back");
        assert_eq!(obj["metadata"]["labels"][APP_LABEL], json!(APP));
        // The heal's own event shows the object as Git says: nothing more to do.
        b.applied(&key(), "11");
        assert!(b.judge(modified(live(11, 2, FIELD_MANAGER)), t0).is_empty());
        assert!(b.status()[APP].out_of_sync.is_empty());
    }

    #[test]
    fn a_controllers_write_after_the_manual_change_is_not_healed_again() {
        let t0 = Instant::now();
        let mut b = synced_book(&opts(), t0);
        assert_eq!(
            waits(&b.judge(modified(live(10, 5, "kubectl-edit")), t0)).len(),
            1
        );
        b.applied(&key(), "12");
        // The controller's status write (rv 11) still shows the manual change; the heal
        // (rv 12) already replaced it.
        assert!(
            b.judge(modified(live(11, 5, "kubectl-edit")), t0)
                .is_empty(),
            "superseded by our own heal"
        );
        assert!(b.judge(modified(live(12, 2, FIELD_MANAGER)), t0).is_empty());
        // Skipping ends with the heal's own event: the next change is healed.
        assert_eq!(
            waits(&b.judge(modified(live(13, 6, "kubectl-edit")), t0)).len(),
            1
        );
    }

    #[test]
    fn events_from_before_a_syncs_own_applies_are_not_judged_after_it() {
        let t0 = Instant::now();
        let mut b = HealBook::new();
        b.set_revision(&[deployment()], &opts());
        b.sync_applied(&[(key(), "20".into())]);
        // The state the sync replaced, arriving late.
        assert!(
            b.judge(modified(live(19, 5, "kubectl-edit")), t0)
                .is_empty()
        );
        assert!(b.judge(HealInput::Synced(APP.into()), t0).is_empty());
        assert_eq!(
            waits(&b.judge(modified(live(21, 5, "kubectl-edit")), t0)).len(),
            1,
            "a change after the sync is healed"
        );
    }

    #[test]
    fn backoff_doubles_with_each_heal_in_a_window_and_resets_after_a_quiet_one() {
        let mut o = opts();
        o.fight_limit = 100;
        o.window = Duration::from_secs(60);
        o.max_backoff = Duration::from_secs(10);
        let t0 = Instant::now();
        let mut b = synced_book(&o, t0);
        // Each change arrives the moment the previous heal was applied.
        let mut now = t0;
        let mut seen = Vec::new();
        for i in 0..8 {
            let w = waits(&b.judge(modified(live(10 + i, 5, "kubectl-edit")), now));
            assert_eq!(w.len(), 1);
            seen.push(w[0].as_millis());
            now += w[0];
        }
        assert_eq!(seen, [0, 200, 400, 800, 1600, 3200, 6400, 10_000]);
        // A quiet window: the next heal does not wait, and the one after starts over.
        now += o.window + Duration::from_millis(1);
        let w = waits(&b.judge(modified(live(30, 5, "kubectl-edit")), now));
        assert_eq!(w, [Duration::ZERO]);
        let w = waits(&b.judge(modified(live(31, 5, "kubectl-edit")), now));
        assert_eq!(w, [Duration::from_millis(200)]);
    }

    #[test]
    fn the_nth_heal_in_a_window_is_a_fight_naming_the_other_managers() {
        let mut o = opts();
        o.fight_limit = 3;
        let t0 = Instant::now();
        let mut b = synced_book(&o, t0);
        let mut now = t0;
        for i in 0..3 {
            let w = waits(&b.judge(modified(live(10 + i, 5, "autoscaler-x")), now));
            assert_eq!(w.len(), 1, "heal {i}");
            now += w[0];
        }
        let fight = reports(&b.judge(modified(live(20, 5, "autoscaler-x")), now));
        assert_eq!(
            fight,
            [HealEvent::Fight {
                app: APP.into(),
                key: key(),
                managers: vec!["autoscaler-x".into()],
            }]
        );
        // A fought object is left alone, whatever happens to it.
        assert!(
            b.judge(modified(live(21, 7, "autoscaler-x")), now)
                .is_empty()
        );
        assert!(
            b.judge(HealInput::Object(Change::Deleted, live(22, 7, "x")), now)
                .is_empty()
        );
        let st = &b.status()[APP];
        assert_eq!(st.fights, [(key(), vec!["autoscaler-x".to_owned()])]);
        assert_eq!(st.health, Health::Degraded);
        assert!(
            st.reason.contains("autoscaler-x keeps changing it"),
            "{}",
            st.reason
        );
    }

    #[test]
    fn a_fight_ends_with_a_new_revision() {
        let mut o = opts();
        o.fight_limit = 1;
        let t0 = Instant::now();
        let mut b = synced_book(&o, t0);
        assert_eq!(waits(&b.judge(modified(live(10, 5, "x")), t0)).len(), 1);
        assert_eq!(reports(&b.judge(modified(live(11, 5, "x")), t0)).len(), 1);
        assert!(b.judge(modified(live(12, 5, "x")), t0).is_empty());
        b.set_revision(&[deployment()], &o);
        assert!(b.judge(HealInput::Synced(APP.into()), t0).is_empty());
        assert!(b.status()[APP].fights.is_empty());
        assert_eq!(
            waits(&b.judge(modified(live(13, 5, "x")), t0)).len(),
            1,
            "healed again"
        );
    }

    #[test]
    fn with_self_heal_off_drift_is_reported_once_per_distinct_set_of_fields() {
        let mut o = opts();
        o.heal = false;
        let t0 = Instant::now();
        let mut b = synced_book(&o, t0);
        let drifted = |fields: &[&str], managers: &[&str]| HealEvent::Drifted {
            app: APP.into(),
            key: key(),
            fields: fields.iter().map(|f| f.to_string()).collect(),
            managers: managers.iter().map(|m| m.to_string()).collect(),
        };
        assert_eq!(
            reports(&b.judge(modified(live(10, 5, "kubectl-edit")), t0)),
            [drifted(&["spec.replicas"], &["kubectl-edit"])]
        );
        assert!(
            b.judge(modified(live(11, 6, "kubectl-edit")), t0)
                .is_empty(),
            "the same fields again: already reported"
        );
        let mut both = live(12, 6, "kubectl-edit");
        both["spec"]["template"]["spec"]["containers"][0]["image"] = json!("web:2");
        let r = reports(&b.judge(modified(both), t0));
        let [HealEvent::Drifted { fields, .. }] = r.as_slice() else {
            panic!("{r:?}");
        };
        assert_eq!(fields.len(), 2, "{fields:?}");
        // Back as Git says, then changed again: a new change, reported again.
        assert!(
            b.judge(modified(live(13, 2, "kubectl-edit")), t0)
                .is_empty()
        );
        assert_eq!(
            reports(&b.judge(modified(live(14, 5, "kubectl-edit")), t0)),
            [drifted(&["spec.replicas"], &["kubectl-edit"])]
        );
    }

    #[test]
    fn a_deleted_object_is_recreated() {
        let t0 = Instant::now();
        let mut b = synced_book(&opts(), t0);
        let actions = b.judge(HealInput::Object(Change::Deleted, live(10, 2, "x")), t0);
        let [HealAction::Apply { obj, event, .. }] = actions.as_slice() else {
            panic!("{actions:?}");
        };
        assert_eq!(
            *event,
            HealEvent::Recreated {
                app: APP.into(),
                key: key()
            }
        );
        assert_eq!(*obj, applied_form(&deployment(), APP, None, &[]));
        assert_eq!(b.status()[APP].health, Health::Missing);
    }

    #[test]
    fn with_self_heal_off_a_deleted_object_is_reported() {
        let mut o = opts();
        o.heal = false;
        let t0 = Instant::now();
        let mut b = synced_book(&o, t0);
        assert_eq!(
            reports(&b.judge(HealInput::Object(Change::Deleted, live(10, 2, "x")), t0)),
            [HealEvent::Drifted {
                app: APP.into(),
                key: key(),
                fields: vec!["(deleted)".into()],
                managers: Vec::new(),
            }]
        );
    }

    fn listing(namespace: &str, present: &[(&str, &str)]) -> HealInput {
        HealInput::Relisted(Listing {
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            namespaced: true,
            namespace: namespace.into(),
            present: present
                .iter()
                .map(|(n, m)| (n.to_string(), m.to_string()))
                .collect(),
        })
    }

    #[test]
    fn an_object_deleted_while_nothing_watched_is_recreated_after_a_relist() {
        let t0 = Instant::now();
        let mut pending = HealBook::new();
        pending.set_revision(&[deployment()], &opts());
        assert!(
            pending.judge(listing("", &[]), t0).is_empty(),
            "a pending sync creates it"
        );
        let mut b = synced_book(&opts(), t0);
        assert!(b.judge(listing("", &[("prod", "web")]), t0).is_empty());
        assert!(
            b.judge(listing("other", &[]), t0).is_empty(),
            "a list of another namespace says nothing of it"
        );
        let actions = b.judge(listing("prod", &[("prod", "else")]), t0);
        let [HealAction::Apply { obj, event, .. }] = actions.as_slice() else {
            panic!("{actions:?}");
        };
        assert!(matches!(event, HealEvent::Recreated { .. }));
        assert_eq!(*obj, applied_form(&deployment(), APP, None, &[]));
    }

    #[test]
    fn events_while_a_revision_is_pending_are_stashed_and_judged_after_synced() {
        let t0 = Instant::now();
        let mut b = HealBook::new();
        b.set_revision(&[deployment()], &opts());
        assert!(b.judge(modified(live(10, 5, "first")), t0).is_empty());
        assert!(b.judge(modified(live(11, 7, "second")), t0).is_empty());
        assert_eq!(
            b.status()[APP].out_of_sync,
            [(key(), vec!["spec.replicas".to_owned()])],
            "seen, not yet judged"
        );
        assert!(b.judge(HealInput::Synced("other".into()), t0).is_empty());
        let actions = b.judge(HealInput::Synced(APP.into()), t0);
        let [HealAction::Apply { event, .. }] = actions.as_slice() else {
            panic!("the latest event per object, judged once: {actions:?}");
        };
        let HealEvent::Healed { managers, .. } = event else {
            panic!("{event:?}");
        };
        assert_eq!(*managers, ["second"]);
        assert!(
            b.judge(HealInput::Synced(APP.into()), t0).is_empty(),
            "replayed once"
        );
    }

    #[test]
    fn ignored_fields_are_neither_healed_nor_reported_and_a_heal_keeps_them() {
        let rule = IgnoreRule {
            kind: Some("Deployment".into()),
            name: None,
            json_pointers: vec!["/spec/replicas".into()],
            managers: Vec::new(),
        };
        let mut o = opts();
        o.ignore = vec![rule];
        let t0 = Instant::now();
        let mut b = synced_book(&o, t0);
        assert!(b.judge(modified(live(10, 5, "hpa")), t0).is_empty());
        let mut off = o.clone();
        off.heal = false;
        let mut quiet = synced_book(&off, t0);
        assert!(quiet.judge(modified(live(10, 5, "hpa")), t0).is_empty());

        let mut both = live(11, 5, "hpa");
        both["spec"]["template"]["spec"]["containers"][0]["image"] = json!("web:evil");
        let actions = b.judge(modified(both), t0);
        let [HealAction::Apply { obj, event, .. }] = actions.as_slice() else {
            panic!("{actions:?}");
        };
        let HealEvent::Healed { fields, .. } = event else {
            panic!("{event:?}");
        };
        assert_eq!(fields.len(), 1, "only the image: {fields:?}");
        assert!(fields[0].ends_with(".image"), "{fields:?}");
        assert_eq!(obj["spec"]["replicas"], json!(5), "the live value is kept");
        assert_eq!(
            obj["spec"]["template"]["spec"]["containers"][0]["image"],
            json!("web:1")
        );
    }

    #[test]
    fn a_listed_object_that_differs_is_healed() {
        let t0 = Instant::now();
        let mut b = synced_book(&opts(), t0);
        assert!(
            b.judge(HealInput::Object(Change::Listed, live(10, 2, "x")), t0)
                .is_empty()
        );
        let actions = b.judge(
            HealInput::Object(Change::Listed, live(10, 5, "kubectl-edit")),
            t0,
        );
        assert_eq!(waits(&actions).len(), 1, "changed while nothing watched");
    }

    #[test]
    fn objects_of_no_tracked_application_are_not_judged() {
        let t0 = Instant::now();
        let mut b = synced_book(&opts(), t0);
        let mut unlabelled = live(10, 5, "x");
        unlabelled["metadata"]["labels"] = json!({});
        assert!(b.judge(modified(unlabelled), t0).is_empty());
        let mut other = live(10, 5, "x");
        other["metadata"]["labels"][APP_LABEL] = json!("other");
        assert!(b.judge(modified(other), t0).is_empty());
        b.remove(APP);
        assert!(b.judge(modified(live(11, 5, "x")), t0).is_empty());
        assert!(b.status().is_empty());
    }

    #[test]
    fn a_git_object_without_a_namespace_matches_its_live_counterpart() {
        let mut git = deployment();
        git["metadata"].as_object_mut().unwrap().remove("namespace");
        let t0 = Instant::now();
        let mut b = HealBook::new();
        b.set_revision(&[git], &opts());
        assert!(b.judge(HealInput::Synced(APP.into()), t0).is_empty());
        assert_eq!(waits(&b.judge(modified(live(10, 5, "x")), t0)).len(), 1);
    }

    #[test]
    fn what_the_server_finds_unchanged_is_accepted_until_the_object_changes_otherwise() {
        let t0 = Instant::now();
        let mut b = synced_book(&opts(), t0);
        // The local comparison sees replicas 5 against Git's 2; the server (asked by the
        // runner) finds that a sync would change nothing, say because it normalises the value.
        assert_eq!(waits(&b.judge(modified(live(10, 5, "x")), t0)).len(), 1);
        b.accept(&key(), &live(10, 5, "x"));
        assert!(b.status()[APP].out_of_sync.is_empty(), "not drift any more");
        // A status write or a new resourceVersion leave the object as it was: no heal.
        let mut status_write = live(11, 5, "x");
        status_write["status"] = json!({"observedGeneration": 3});
        assert!(b.judge(modified(status_write), t0).is_empty());
        assert!(b.status()[APP].out_of_sync.is_empty());
        // The same path with another value is a change, judged anew.
        assert_eq!(
            waits(&b.judge(modified(live(12, 7, "x")), t0)),
            [Duration::ZERO]
        );
        b.accept(&key(), &live(12, 7, "x"));
        // The heal it took back is not counted: the next real change heals at once.
        let mut other = live(13, 7, "x");
        other["spec"]["template"]["spec"]["containers"][0]["image"] = json!("rogue:1");
        assert_eq!(waits(&b.judge(modified(other), t0)), [Duration::ZERO]);
        assert!(!b.status()[APP].out_of_sync.is_empty());
    }

    #[test]
    fn with_self_heal_off_what_the_server_finds_unchanged_is_not_reported_again() {
        let t0 = Instant::now();
        let mut o = opts();
        o.heal = false;
        let mut b = synced_book(&o, t0);
        assert_eq!(reports(&b.judge(modified(live(10, 5, "x")), t0)).len(), 1);
        b.accept(&key(), &live(10, 5, "x"));
        assert!(b.judge(modified(live(11, 5, "x")), t0).is_empty());
        assert!(b.status()[APP].out_of_sync.is_empty());
        let form = b.sync_form(&key(), &live(11, 5, "x")).unwrap();
        assert_eq!(form.0["spec"]["replicas"], json!(2), "what a sync applies");
        assert_eq!(form.0["metadata"]["labels"][APP_LABEL], json!(APP));
        assert_eq!((form.1.as_str(), form.2.as_str()), (APP, "prod"));
    }
}
