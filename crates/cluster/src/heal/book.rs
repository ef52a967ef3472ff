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
use crate::sync::{FIELD_MANAGER, app_of, applied_form};

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

/// What differs, and which other managers changed it.
fn drift(want: &Value, live: &Value, ignore: &[IgnoreRule]) -> Option<(Vec<String>, Vec<String>)> {
    let object = diff(
        std::slice::from_ref(want),
        std::slice::from_ref(live),
        ignore,
    )
    .into_iter()
    .next()?;
    let mut managers: Vec<String> = object
        .fields
        .iter()
        .filter_map(|f| f.manager.clone())
        .filter(|m| m != FIELD_MANAGER)
        .collect();
    managers.sort();
    managers.dedup();
    Some((
        object.fields.into_iter().map(|f| f.path).collect(),
        managers,
    ))
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
                    .flat_map(|(change, live)| self.judge_object(change, &live, now))
                    .collect()
            }
            HealInput::Object(change, live) => self.judge_object(change, &live, now),
        }
    }

    fn judge_object(&mut self, change: Change, live: &Value, now: Instant) -> Vec<HealAction> {
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
        let differs = if deleted {
            Some((vec!["(deleted)".to_owned()], Vec::new()))
        } else {
            drift(&want, live, &desired.opts.ignore)
        };
        let track = self.tracks.entry(key.clone()).or_default();
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
            drift: differs.as_ref().map(|d| d.0.clone()).unwrap_or_default(),
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

