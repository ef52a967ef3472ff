//! Self-heal: watch what applications applied and put it back the moment someone changes it
//! — on watch events, not a periodic resync — with a backoff per object that resets after a
//! quiet period, and without hot loops: when another field manager keeps writing the same object
//! back, healing it stops and the fight is reported, naming that manager.
//!
//! One [`Healer`] serves every application: one watch per collection (kind and namespace),
//! shared, each event routed by the object's `driftwatch.io/app` label to the application that
//! owns it. A watch starts with a list and resumes from the list's resourceVersion, and every
//! listed object is checked, so a change made before the watch began is not missed; a watch
//! that fails (expired resourceVersion, API server restarted) starts again the same way.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::mpsc;

use crate::diff::{ObjectKey, diff};
use crate::health::{Health, assess};
use crate::kube::KubeClient;
use crate::sync::{APP_LABEL, FIELD_MANAGER, app_of};

/// Tunables for one application.
#[derive(Clone, Debug)]
pub struct HealOptions {
    /// The application (its label value).
    pub app: String,
    /// Namespace for objects that name none.
    pub namespace: String,
    /// Put changes back; when false they are only reported ([`HealEvent::Drifted`]).
    pub heal: bool,
    /// Heals of one object within `window` after which driftwatch stops: a fight.
    pub fight_limit: u32,
    /// The window for counting heals; also the quiet period that resets the backoff.
    pub window: Duration,
    /// Longest wait between two heals of one object.
    pub max_backoff: Duration,
    /// Differences that are not drift (ignoreDifferences): neither healed nor reported.
    pub ignore: Vec<crate::diff::IgnoreRule>,
}

impl HealOptions {
    /// Defaults: heal; 5 heals in 60 s is a fight; backoff up to 10 s.
    pub fn new(app: &str, namespace: &str) -> Self {
        HealOptions {
            app: app.to_owned(),
            namespace: namespace.to_owned(),
            heal: true,
            fight_limit: 5,
            window: Duration::from_secs(60),
            max_backoff: Duration::from_secs(10),
            ignore: Vec::new(),
        }
    }
}

/// What happened to one object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HealEvent {
    /// Put back what Git says; the fields and who had changed them.
    Healed {
        app: String,
        key: ObjectKey,
        fields: Vec<String>,
        managers: Vec<String>,
        after: Duration,
    },
    /// Deleted live; re-created.
    Recreated { app: String, key: ObjectKey },
    /// Changed live and left so (self-heal off): the fields and who changed them.
    Drifted {
        app: String,
        key: ObjectKey,
        fields: Vec<String>,
        managers: Vec<String>,
    },
    /// Stopped healing: another manager keeps writing it back.
    Fight {
        app: String,
        key: ObjectKey,
        managers: Vec<String>,
    },
    /// Putting it back failed (the API server refused); tried again on the next event.
    Failed {
        app: String,
        key: ObjectKey,
        error: String,
    },
}

/// What the healer last saw of one tracked object — all it keeps of the live object, so the
/// cache stays small: the paths that differ from Git, and its health.
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
    stash: HashMap<ObjectKey, (String, Value)>,
}

#[derive(Default)]
struct State {
    apps: HashMap<String, Desired>,
    tracks: HashMap<ObjectKey, Track>,
}

/// One application as the watches see it.
#[derive(Clone, Debug, Default)]
pub struct LiveStatus {
    /// Objects Git renders for it.
    pub objects: usize,
    /// Of those, how many the watches have reported.
    pub seen: usize,
    /// Objects that differ from Git, with the differing paths.
    pub out_of_sync: Vec<(ObjectKey, Vec<String>)>,
    /// The worst health, and why.
    pub health: Health,
    pub reason: String,
    /// Objects no longer healed, with the managers that keep changing them.
    pub fights: Vec<(ObjectKey, Vec<String>)>,
}

/// A collection to watch: API version, kind and namespace (empty: all namespaces, or a
/// cluster-scoped kind).
type Collection = (String, String, String);

/// Heals (or reports) every application's objects from one set of shared watches.
#[derive(Clone)]
pub struct Healer {
    client: Arc<KubeClient>,
    state: Arc<Mutex<State>>,
    watched: Arc<Mutex<HashSet<Collection>>>,
    /// Kinds the credentials may not watch across all namespaces: watched per namespace.
    per_namespace: Arc<Mutex<HashSet<(String, String)>>>,
    events: mpsc::UnboundedSender<(String, Value)>,
    /// Watch events judged so far: a reading that shows the healer has seen a change, so a
    /// caller can tell "nothing was done" from "nothing was seen yet".
    judged: Arc<AtomicU64>,
}

/// The namespace an object of Git lives in: its own, else the application's.
fn namespace_of<'a>(o: &'a Value, default_ns: &'a str) -> &'a str {
    o.pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .unwrap_or(default_ns)
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

/// The pure part of a decision: what differs, and which other managers changed it.
fn drift(
    want: &Value,
    live: &Value,
    ignore: &[crate::diff::IgnoreRule],
) -> Option<(Vec<String>, Vec<String>)> {
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

enum Action {
    Apply {
        obj: Value,
        namespace: String,
        wait: Duration,
        event: HealEvent,
        /// The tracked object.
        key: ObjectKey,
    },
    Report(HealEvent),
}

impl Healer {
    /// A healer on `client`; `run` must be polled for anything to happen.
    pub fn new(client: Arc<KubeClient>) -> (Self, HealerRun) {
        let (tx, rx) = mpsc::unbounded_channel();
        let h = Healer {
            client,
            state: Arc::new(Mutex::new(State::default())),
            watched: Arc::new(Mutex::new(HashSet::new())),
            per_namespace: Arc::new(Mutex::new(HashSet::new())),
            events: tx,
            judged: Arc::new(AtomicU64::new(0)),
        };
        (h.clone(), HealerRun { healer: h, rx })
    }

    /// How many watch events (and listed objects) have been judged and acted on so far.
    pub fn events_judged(&self) -> u64 {
        self.judged.load(Ordering::Acquire)
    }

    /// Makes `rendered` what the application should be from now on, and watches the
    /// collections it lives in. Call it before applying a new revision, so the sync's own
    /// changes compare equal and a manual change during the sync is judged against the new
    /// revision, never healed back to the old one.
    pub async fn set(&self, rendered: &[Value], opts: &HealOptions) {
        let objects: HashMap<ObjectKey, Box<str>> = rendered
            .iter()
            .map(|o| (ObjectKey::of(o), o.to_string().into_boxed_str()))
            .collect();
        if let Ok(mut s) = self.state.lock() {
            // A new revision starts a new account: an old fight does not outlive the change, and
            // the sync about to run makes every object equal (applied ones report back).
            for k in objects.keys() {
                let seen = s.tracks.remove(k).and_then(|t| t.seen);
                s.tracks.insert(
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
            s.apps.insert(
                opts.app.clone(),
                Desired {
                    objects,
                    opts: opts.clone(),
                    pending: true,
                    stash: HashMap::new(),
                },
            );
        }
        for o in rendered {
            self.ensure_watch(o, &opts.namespace);
        }
    }

    /// Watches the collection `o` lives in: one watch per kind across all namespaces, or per
    /// namespace where the credentials allow no more.
    fn ensure_watch(&self, o: &Value, default_ns: &str) {
        let api = o["apiVersion"].as_str().unwrap_or("").to_owned();
        let kind = o["kind"].as_str().unwrap_or("").to_owned();
        let narrow = self
            .per_namespace
            .lock()
            .is_ok_and(|p| p.contains(&(api.clone(), kind.clone())));
        let scope = if narrow {
            namespace_of(o, default_ns).to_owned()
        } else {
            String::new()
        };
        let c = (api, kind, scope);
        let fresh = self.watched.lock().is_ok_and(|mut w| w.insert(c.clone()));
        if fresh {
            self.spawn_watch(c);
        }
    }

    /// The cluster refused a watch across all namespaces: watch that kind per namespace.
    fn narrow(&self, api: &str, kind: &str) {
        if let Ok(mut p) = self.per_namespace.lock() {
            p.insert((api.to_owned(), kind.to_owned()));
        }
        if let Ok(mut w) = self.watched.lock() {
            w.remove(&(api.to_owned(), kind.to_owned(), String::new()));
        }
        let group = api.rsplit_once('/').map_or("", |(g, _)| g);
        let objects: Vec<(Value, String)> = self
            .state
            .lock()
            .map(|s| {
                s.apps
                    .values()
                    .flat_map(|d| {
                        d.objects
                            .iter()
                            .filter(|(k, _)| k.kind == kind && k.group == group)
                            .filter_map(|(_, o)| serde_json::from_str(o).ok())
                            .map(|o| (o, d.opts.namespace.clone()))
                    })
                    .collect()
            })
            .unwrap_or_default();
        for (o, ns) in objects {
            self.ensure_watch(&o, &ns);
        }
    }

    /// The sync begun after [`Healer::set`] is done: from now on the application is healed, and
    /// the changes seen during the sync are judged.
    /// `versions` are the resourceVersions the sync's applies produced: events from before
    /// them (the state the sync replaced, possibly still on its way) are not judged.
    pub fn synced(&self, app: &str, versions: &[(ObjectKey, String)]) {
        if let Ok(mut s) = self.state.lock() {
            for (key, rv) in versions {
                s.tracks.entry(key.clone()).or_default().superseded_until = Some(rv.clone());
            }
        }
        let _ = self
            .events
            .send(("REPLAY".to_owned(), Value::String(app.to_owned())));
    }

    /// What the watches say of each application now, from the cache (no API calls).
    pub fn status(&self) -> std::collections::BTreeMap<String, LiveStatus> {
        let mut out = std::collections::BTreeMap::new();
        let Ok(s) = self.state.lock() else {
            return out;
        };
        for (app, d) in &s.apps {
            let mut st = LiveStatus {
                objects: d.objects.len(),
                health: Health::Healthy,
                ..LiveStatus::default()
            };
            for key in d.objects.keys() {
                let Some(t) = s.tracks.get(key) else { continue };
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

    /// Notes the resourceVersion a heal produced, so the events from before it are skipped.
    /// An apply that changed nothing keeps the version, and the next event is not older than it.
    fn superseded(&self, key: &ObjectKey, applied: &Value) {
        let Some(rv) = applied
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
        else {
            return;
        };
        if let Ok(mut s) = self.state.lock()
            && let Some(t) = s.tracks.get_mut(key)
        {
            t.superseded_until = Some(rv.to_owned());
        }
    }

    /// Stops healing an application (it was removed, or its sync policy changed).
    pub fn remove(&self, app: &str) {
        if let Ok(mut s) = self.state.lock()
            && let Some(d) = s.apps.remove(app)
        {
            for k in d.objects.keys() {
                s.tracks.remove(k);
            }
        }
    }

    fn spawn_watch(&self, (api, kind, scope): Collection) {
        let healer = self.clone();
        let client = self.client.clone();
        let tx = self.events.clone();
        tokio::spawn(async move {
            let mut version: Option<String> = None;
            let mut collection: Option<String> = None;
            loop {
                if tx.is_closed() {
                    return;
                }
                let url = match &collection {
                    Some(u) => u.clone(),
                    None => match client.collection_url(&api, &kind, &scope).await {
                        Ok(u) => {
                            collection = Some(u.clone());
                            u
                        }
                        Err(_) => {
                            tokio::time::sleep(Duration::from_millis(500)).await;
                            continue;
                        }
                    },
                };
                if version.is_none() {
                    // (Re)start: list, check every listed object, resume from the list.
                    match client.list_selected(&url, APP_LABEL).await {
                        Ok((items, v)) => {
                            let present: Vec<String> = items
                                .iter()
                                .map(|i| {
                                    format!(
                                        "{}/{}",
                                        i.pointer("/metadata/namespace")
                                            .and_then(Value::as_str)
                                            .unwrap_or(""),
                                        i.pointer("/metadata/name")
                                            .and_then(Value::as_str)
                                            .unwrap_or("")
                                    )
                                })
                                .collect();
                            for mut item in items {
                                item["apiVersion"] = Value::String(api.clone());
                                item["kind"] = Value::String(kind.clone());
                                let _ = tx.send(("LISTED".to_owned(), item));
                            }
                            // Objects deleted while nothing watched are checked too.
                            let namespaced = client.namespaced(&api, &kind).await.unwrap_or(true);
                            let _ = tx.send((
                                "RESYNC".to_owned(),
                                serde_json::json!({
                                    "apiVersion": api, "kind": kind, "namespaced": namespaced,
                                    "namespace": scope, "present": present,
                                }),
                            ));
                            version = v;
                        }
                        Err(e) => {
                            let forbidden = e.to_string().contains("HTTP 403");
                            if forbidden
                                && scope.is_empty()
                                && client.namespaced(&api, &kind).await.unwrap_or(false)
                            {
                                healer.narrow(&api, &kind);
                                return;
                            }
                            tokio::time::sleep(Duration::from_millis(500)).await;
                            continue;
                        }
                    }
                }
                let mut forward = |event: &str, mut obj: Value| {
                    if obj.get("kind").is_none() {
                        obj["apiVersion"] = Value::String(api.clone());
                        obj["kind"] = Value::String(kind.clone());
                    }
                    tx.send((event.to_owned(), obj)).is_ok()
                };
                match client
                    .watch(&url, APP_LABEL, version.as_deref(), 300, &mut forward)
                    .await
                {
                    Ok(v) => {
                        if v.is_some() {
                            version = v;
                        }
                    }
                    Err(_) => {
                        // Expired resourceVersion, dropped connection, restarted server.
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        version = None;
                    }
                }
            }
        });
    }

    /// Decides what one event calls for. Pure apart from the per-object bookkeeping.
    fn decide(&self, kind: &str, live: &Value) -> Vec<Action> {
        let Ok(mut s) = self.state.lock() else {
            return Vec::new();
        };
        match kind {
            "RESYNC" => Self::missing(&mut s, live),
            "REPLAY" => {
                let stash = match live.as_str().and_then(|a| s.apps.get_mut(a)) {
                    Some(d) => {
                        d.pending = false;
                        std::mem::take(&mut d.stash)
                    }
                    None => return Vec::new(),
                };
                stash
                    .into_values()
                    .flat_map(|(kind, live)| Self::decide_one(&mut s, &kind, &live))
                    .collect()
            }
            _ => Self::decide_one(&mut s, kind, live),
        }
    }

    fn decide_one(s: &mut State, kind: &str, live: &Value) -> Vec<Action> {
        let Some(app) = app_of(live) else {
            return Vec::new();
        };
        let State { apps, tracks } = s;
        let Some(desired) = apps.get_mut(app) else {
            return Vec::new();
        };
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
        let want = &want;
        let key = ObjectKey::of(want);
        let differs = if kind == "DELETED" {
            Some((vec!["(deleted)".to_owned()], Vec::new()))
        } else {
            drift(want, live, &desired.opts.ignore)
        };
        let track = tracks.entry(key.clone()).or_default();
        let rv = live
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str);
        if let Some(until) = &track.superseded_until {
            if kind != "DELETED" && older(rv, until) {
                return Vec::new();
            }
            track.superseded_until = None;
        }
        let (health, reason) = if kind == "DELETED" {
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
            desired.stash.insert(key, (kind.to_owned(), live.clone()));
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
            return vec![Action::Report(HealEvent::Drifted {
                app: opts.app.clone(),
                key,
                fields,
                managers,
            })];
        }
        let now = Instant::now();
        track.heals.retain(|t| now.duration_since(*t) < opts.window);
        if track.heals.len() as u32 >= opts.fight_limit {
            track.fighting = true;
            track.rivals = managers.clone();
            return vec![Action::Report(HealEvent::Fight {
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
        let obj = crate::sync::applied_form(
            want,
            &opts.app,
            (kind != "DELETED").then_some(live),
            &opts.ignore,
        );
        let event = if kind == "DELETED" {
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
        vec![Action::Apply {
            obj,
            namespace: opts.namespace.clone(),
            wait,
            event,
            key,
        }]
    }

    /// After a (re)list: the desired objects of that collection that the list did not show
    /// were deleted while nothing watched; re-create them (or report them).
    fn missing(s: &mut State, listed: &Value) -> Vec<Action> {
        let present: HashSet<&str> = listed["present"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        // Empty: the list covered every namespace.
        let scope = listed["namespace"].as_str().unwrap_or("");
        let namespaced = listed["namespaced"].as_bool().unwrap_or(true);
        let mut actions = Vec::new();
        let State { apps, tracks } = s;
        // A pending application's sync creates what is missing.
        for desired in apps.values().filter(|d| !d.pending) {
            let opts = &desired.opts;
            let api = listed["apiVersion"].as_str().unwrap_or("");
            let group = api.rsplit_once('/').map_or("", |(g, _)| g);
            for (key, stored) in &desired.objects {
                let ns = if key.namespace.is_empty() {
                    opts.namespace.as_str()
                } else {
                    key.namespace.as_str()
                };
                let here = key.kind == listed["kind"].as_str().unwrap_or("")
                    && key.group == group
                    && (scope.is_empty() || !namespaced || ns == scope);
                let id = if namespaced {
                    format!("{ns}/{}", key.name)
                } else {
                    format!("/{}", key.name)
                };
                if !here || present.contains(id.as_str()) {
                    continue;
                }
                let track = tracks.entry(key.clone()).or_default();
                if track.fighting {
                    continue;
                }
                if !opts.heal {
                    let gone = vec!["(deleted)".to_owned()];
                    if track.reported.as_ref() != Some(&gone) {
                        track.reported = Some(gone.clone());
                        actions.push(Action::Report(HealEvent::Drifted {
                            app: opts.app.clone(),
                            key: key.clone(),
                            fields: gone,
                            managers: Vec::new(),
                        }));
                    }
                    continue;
                }
                track.heals.push(Instant::now());
                track.last = Some(Instant::now());
                let Ok(obj) = serde_json::from_str::<Value>(stored) else {
                    continue;
                };
                let obj = crate::sync::applied_form(&obj, &opts.app, None, &opts.ignore);
                actions.push(Action::Apply {
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
}

/// The event loop of a [`Healer`]; runs until `report` returns false or every sender is gone.
pub struct HealerRun {
    healer: Healer,
    rx: mpsc::UnboundedReceiver<(String, Value)>,
}

impl HealerRun {
    /// Handles events as they come; `report` is told of each heal, drift and fight.
    pub async fn run(mut self, report: &mut (dyn FnMut(&HealEvent) -> bool + Send)) {
        while let Some((kind, obj)) = self.rx.recv().await {
            let started = Instant::now();
            for action in self.healer.decide(&kind, &obj) {
                let event = match action {
                    Action::Report(e) => e,
                    Action::Apply {
                        obj,
                        namespace,
                        wait,
                        event,
                        key,
                    } => {
                        if !wait.is_zero() {
                            tokio::time::sleep(wait).await;
                        }
                        match self
                            .healer
                            .client
                            .apply(&obj, &namespace, FIELD_MANAGER, false)
                            .await
                        {
                            Ok(applied) => {
                                self.healer.superseded(&key, &applied);
                                match event {
                                    HealEvent::Healed {
                                        app,
                                        key,
                                        fields,
                                        managers,
                                        ..
                                    } => HealEvent::Healed {
                                        app,
                                        key,
                                        fields,
                                        managers,
                                        after: started.elapsed(),
                                    },
                                    other => other,
                                }
                            }
                            Err(e) => HealEvent::Failed {
                                app: app_of(&obj).unwrap_or_default().to_owned(),
                                key: ObjectKey::of(&obj),
                                error: e.to_string(),
                            },
                        }
                    }
                };
                if !report(&event) {
                    return;
                }
            }
            self.healer.judged.fetch_add(1, Ordering::Release);
        }
    }
}

/// Heals one application until `report` returns false: a [`Healer`] with one application.
pub async fn watch_and_heal(
    client: Arc<KubeClient>,
    rendered: &[Value],
    opts: &HealOptions,
    report: &mut (dyn FnMut(&HealEvent) -> bool + Send),
) -> Result<(), crate::error::Error> {
    let (healer, run) = Healer::new(client);
    healer.set(rendered, opts).await;
    healer.synced(&opts.app, &[]);
    run.run(report).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::older;

    #[test]
    fn resource_versions_compare_as_revisions_or_not_at_all() {
        assert!(older(Some("99"), "100"), "numbers, not strings");
        assert!(!older(Some("100"), "100"));
        assert!(!older(Some("101"), "100"));
        assert!(!older(Some("abc"), "100"), "opaque: never skipped");
        assert!(!older(None, "100"));
    }
}
