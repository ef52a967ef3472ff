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
//!
//! Deciding and doing are split: the watches and [`HealerRun`] only move events and apply what
//! the [`HealBook`] (in `heal/book.rs`, no I/O) decides.

mod book;

pub use book::{Change, HealAction, HealBook, HealInput, Listing};

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::mpsc;

use crate::diff::ObjectKey;
use crate::health::Health;
use crate::kube::KubeClient;
use crate::mark::{APP_LABEL, FIELD_MANAGER};
use crate::sync::app_of;

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

impl HealEvent {
    /// The object the event is about.
    pub fn key(&self) -> &ObjectKey {
        match self {
            HealEvent::Healed { key, .. }
            | HealEvent::Recreated { key, .. }
            | HealEvent::Drifted { key, .. }
            | HealEvent::Fight { key, .. }
            | HealEvent::Failed { key, .. } => key,
        }
    }
}

fn names(items: &[String]) -> String {
    if items.is_empty() {
        "someone".to_owned()
    } else {
        items.join(", ")
    }
}

/// The Kubernetes Event a heal event is recorded as on its object, so `kubectl describe` tells
/// whoever changed it what happened to the change.
pub fn kube_event(e: &HealEvent) -> crate::kube::ObjectEvent {
    use crate::kube::ObjectEvent;
    match e {
        HealEvent::Healed {
            app,
            fields,
            managers,
            ..
        } => ObjectEvent {
            warning: false,
            reason: "Healed",
            action: "Apply",
            note: format!(
                "driftwatch put back {} as Git has them for application {app} (changed by {})",
                fields.join(", "),
                names(managers)
            ),
        },
        HealEvent::Recreated { app, .. } => ObjectEvent {
            warning: false,
            reason: "Recreated",
            action: "Apply",
            note: format!("driftwatch created it again from Git for application {app}"),
        },
        HealEvent::Drifted {
            app,
            fields,
            managers,
            ..
        } => ObjectEvent {
            warning: true,
            reason: "Drifted",
            action: "Skip",
            note: format!(
                "{} changed by {} differ from Git for application {app}; self-heal is off",
                fields.join(", "),
                names(managers)
            ),
        },
        HealEvent::Fight { app, managers, .. } => ObjectEvent {
            warning: true,
            reason: "HealStopped",
            action: "Skip",
            note: format!(
                "driftwatch stopped healing it for application {app}: {} keeps changing it back; drop the field from Git or ignore it (ignoreDifferences)",
                names(managers)
            ),
        },
        HealEvent::Failed { app, error, .. } => ObjectEvent {
            warning: true,
            reason: "HealFailed",
            action: "Apply",
            note: format!("putting it back as Git has it for application {app} failed: {error}"),
        },
    }
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
    book: Arc<Mutex<HealBook>>,
    watched: Arc<Mutex<HashSet<Collection>>>,
    /// Kinds the credentials may not watch across all namespaces: watched per namespace.
    per_namespace: Arc<Mutex<HashSet<(String, String)>>>,
    events: mpsc::UnboundedSender<HealInput>,
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

impl Healer {
    /// A healer on `client`; `run` must be polled for anything to happen.
    pub fn new(client: Arc<KubeClient>) -> (Self, HealerRun) {
        let (tx, rx) = mpsc::unbounded_channel();
        let h = Healer {
            client,
            book: Arc::new(Mutex::new(HealBook::new())),
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
        if let Ok(mut b) = self.book.lock() {
            b.set_revision(rendered, opts);
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
        let objects = self
            .book
            .lock()
            .map(|b| b.desired_of_kind(group, kind))
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
        if let Ok(mut b) = self.book.lock() {
            b.sync_applied(versions);
        }
        // Through the channel, after the events already queued, so those are kept for the
        // replay like every other event of the sync.
        let _ = self.events.send(HealInput::Synced(app.to_owned()));
    }

    /// What the watches say of each application now, from the cache (no API calls).
    pub fn status(&self) -> std::collections::BTreeMap<String, LiveStatus> {
        self.book.lock().map(|b| b.status()).unwrap_or_default()
    }

    /// Stops healing an application (it was removed, or its sync policy changed).
    pub fn remove(&self, app: &str) {
        if let Ok(mut b) = self.book.lock() {
            b.remove(app);
        }
    }

    fn spawn_watch(&self, (api, kind, scope): Collection) {
        let healer = self.clone();
        tokio::spawn(async move { healer.watch_collection(api, kind, scope).await });
    }

    /// One collection's watch until the event loop is gone: kube-rs's watcher lists (every
    /// listed object is checked, and those missing from the list were deleted meanwhile),
    /// then watches from the list's resourceVersion, and lists again when the resourceVersion
    /// expired (410 Gone); after a failure it waits with a growing backoff, saying so.
    async fn watch_collection(&self, api: String, kind: String, scope: String) {
        use futures_util::StreamExt;
        use kube::runtime::WatchStreamExt;
        use kube::runtime::watcher::{self, Event};

        let tx = &self.events;
        let mut wait = Retry::default();
        // The collection's resource: retried until the API server serves the kind.
        let (resource, namespaced) = loop {
            if tx.is_closed() {
                return;
            }
            match self.client.watch_api(&api, &kind, &scope).await {
                Ok(found) => break found,
                Err(e) => {
                    let delay = wait.next().unwrap_or(RETRY_MAX);
                    tracing::warn!(kind = %kind, api_version = %api, error = %e, retry_in = ?delay, "cannot watch");
                    tokio::time::sleep(delay).await;
                }
            }
        };
        let config = watcher::Config::default()
            .labels(APP_LABEL)
            .timeout(crate::kube::WATCH_SECONDS);
        let mut stream = watcher::watcher(resource, config)
            .backoff(Retry::default())
            .boxed();
        let mut present = HashSet::new();
        let what = format!("watching {kind} in {api}");
        let text = |i: &Value, p: &str| {
            i.pointer(p)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned()
        };
        while let Some(item) = stream.next().await {
            let value = |o| crate::kube::object_value(o, &api, &kind, &what).ok();
            let sent = match item {
                Ok(Event::Init) => {
                    present.clear();
                    true
                }
                Ok(Event::InitApply(o)) => match value(o) {
                    Some(v) => {
                        present
                            .insert((text(&v, "/metadata/namespace"), text(&v, "/metadata/name")));
                        tx.send(HealInput::Object(Change::Listed, v)).is_ok()
                    }
                    None => true,
                },
                // Objects deleted while nothing watched are checked too.
                Ok(Event::InitDone) => tx
                    .send(HealInput::Relisted(Listing {
                        api_version: api.clone(),
                        kind: kind.clone(),
                        namespaced,
                        namespace: scope.clone(),
                        present: std::mem::take(&mut present),
                    }))
                    .is_ok(),
                Ok(Event::Apply(o)) => match value(o) {
                    Some(v) => tx.send(HealInput::Object(Change::Modified, v)).is_ok(),
                    None => true,
                },
                Ok(Event::Delete(o)) => match value(o) {
                    Some(v) => tx.send(HealInput::Object(Change::Deleted, v)).is_ok(),
                    None => true,
                },
                Err(e) => {
                    let forbidden = match &e {
                        watcher::Error::InitialListFailed(kube::Error::Api(s))
                        | watcher::Error::WatchStartFailed(kube::Error::Api(s)) => s.code == 403,
                        watcher::Error::WatchError(s) => s.code == 403,
                        _ => false,
                    };
                    if forbidden && scope.is_empty() && namespaced {
                        tracing::info!(kind = %kind, api_version = %api, "may not watch across namespaces; watching per namespace");
                        self.narrow(&api, &kind);
                        return;
                    }
                    // Expired resourceVersion (the watcher lists again), dropped connection,
                    // restarted server: the backoff waits before the next try, never longer
                    // than RETRY_MAX.
                    tracing::info!(
                        kind = %kind,
                        api_version = %api,
                        namespace = %scope,
                        error = %e,
                        retry_within_ms = u64::try_from(RETRY_MAX.as_millis()).unwrap_or(u64::MAX),
                        "watch failed; retrying"
                    );
                    !tx.is_closed()
                }
            };
            if !sent {
                return;
            }
        }
    }
}

/// Shortest and longest wait between two tries of a failing watch. The longest bounds how late
/// a change made just after an API server comes back is healed (scripts/apiserver-restart
/// measured p50 7.2 s with 5 s); 2 s costs one list per watched kind every 2 s while a server
/// is down.
const RETRY_MIN: Duration = Duration::from_millis(200);
const RETRY_MAX: Duration = Duration::from_secs(2);

/// The watch's backoff: from [`RETRY_MIN`], doubling up to [`RETRY_MAX`]; reset by the watcher
/// once a try succeeds.
#[derive(Default)]
struct Retry {
    next: Option<Duration>,
}

impl Iterator for Retry {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let now = self.next.unwrap_or(RETRY_MIN);
        self.next = Some((now * 2).min(RETRY_MAX));
        Some(now)
    }
}

impl kube::runtime::utils::Backoff for Retry {
    fn reset(&mut self) {
        self.next = None;
    }
}

/// The event loop of a [`Healer`]; runs until `report` returns false or every sender is gone.
pub struct HealerRun {
    healer: Healer,
    rx: mpsc::UnboundedReceiver<HealInput>,
}

impl HealerRun {
    /// Handles events as they come; `report` is told of each heal, drift and fight.
    pub async fn run(mut self, report: &mut (dyn FnMut(&HealEvent) -> bool + Send)) {
        while let Some(input) = self.rx.recv().await {
            let started = Instant::now();
            // The live object the input shows: a difference the local comparison sees in it is
            // put to the API server before it is reported or counted as healed.
            let live = match &input {
                HealInput::Object(change, v) if *change != Change::Deleted => Some(v.clone()),
                _ => None,
            };
            let mut actions = self
                .healer
                .book
                .lock()
                .map(|mut b| b.judge(input, started))
                .unwrap_or_default();
            // Equal to Git on the fields it sets, but changed: only the server can tell whether
            // a sync would change it (a key added to an atomic map, a field Git dropped).
            let mut from_server = false;
            if actions.is_empty()
                && let Some(l) = &live
                && self
                    .healer
                    .book
                    .lock()
                    .is_ok_and(|mut b| b.wants_server_check(l))
                && let Some((fields, managers)) = self.server_changes(l).await
            {
                from_server = true;
                actions = self
                    .healer
                    .book
                    .lock()
                    .map(|mut b| {
                        b.judge(
                            HealInput::ServerDrift {
                                live: l.clone(),
                                fields,
                                managers,
                            },
                            started,
                        )
                    })
                    .unwrap_or_default();
            }
            for action in actions {
                // The object an event is recorded on: the heal's result, else what was seen.
                let mut recorded_on: Option<Value> = None;
                let event = match action {
                    HealAction::Report(HealEvent::Drifted {
                        app,
                        key,
                        fields,
                        managers,
                    }) => {
                        if !from_server
                            && let Some(l) = self.live_of(&key, live.as_ref()).await
                            && self.server_sees_no_change(&key, &l).await
                        {
                            if let Ok(mut b) = self.healer.book.lock() {
                                b.accept(&key, &l);
                            }
                            continue;
                        }
                        HealEvent::Drifted {
                            app,
                            key,
                            fields,
                            managers,
                        }
                    }
                    HealAction::Report(e) => e,
                    HealAction::Apply {
                        obj,
                        namespace,
                        wait,
                        event,
                        key,
                    } => {
                        if !wait.is_zero() {
                            tokio::time::sleep(wait).await;
                        }
                        // The object as the heal finds it: an apply that keeps its
                        // resourceVersion changed nothing.
                        let before = match &event {
                            HealEvent::Healed { .. } if !from_server => {
                                self.live_of(&key, live.as_ref()).await
                            }
                            _ => None,
                        };
                        match self
                            .healer
                            .client
                            .apply(&obj, &namespace, FIELD_MANAGER, false)
                            .await
                        {
                            Ok(applied) => {
                                recorded_on = Some(applied.clone());
                                let rv = |o: &Value| {
                                    o.pointer("/metadata/resourceVersion")
                                        .and_then(Value::as_str)
                                        .map(str::to_owned)
                                };
                                // The apply changed no field Git sets: what the local
                                // comparison saw was no drift after all (the server normalises
                                // or drops that value).
                                if let (HealEvent::Healed { .. }, Some(l)) =
                                    (&event, before.as_ref())
                                    && !crate::sync::changed_what_git_sets(&obj, l, &applied)
                                {
                                    if let Ok(mut b) = self.healer.book.lock() {
                                        b.accept(&key, &applied);
                                    }
                                    continue;
                                }
                                if let Some(rv) = rv(&applied)
                                    && let Ok(mut b) = self.healer.book.lock()
                                {
                                    b.applied(&key, &rv);
                                }
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
                if let Some(obj) = recorded_on
                    .as_ref()
                    .or(live.as_ref().filter(|l| shows(l, event.key())))
                {
                    // Not waited for: the service runs on; events are for people.
                    let _ = self.healer.client.record(obj, kube_event(&event));
                }
                if !report(&event) {
                    return;
                }
            }
            self.healer.judged.fetch_add(1, Ordering::Release);
        }
    }
}

/// Whether `live` is the object `key` names (Git may leave the namespace to the application).
fn shows(live: &Value, key: &ObjectKey) -> bool {
    let k = ObjectKey::of(live);
    k.group == key.group
        && k.kind == key.kind
        && k.name == key.name
        && (key.namespace.is_empty() || k.namespace == key.namespace)
}

impl HealerRun {
    /// The live object `key` names: the one the input showed, else read from the API server
    /// (a change judged when a sync ended, from the events kept meanwhile).
    async fn live_of(&self, key: &ObjectKey, from_input: Option<&Value>) -> Option<Value> {
        if let Some(l) = from_input.filter(|l| shows(l, key)) {
            return Some(l.clone());
        }
        let form = self
            .healer
            .book
            .lock()
            .ok()
            .and_then(|b| b.sync_form(key, &Value::Null));
        let (desired, _, namespace, _) = form?;
        self.healer
            .client
            .get(&desired, &namespace)
            .await
            .ok()
            .flatten()
    }

    /// What a sync would change in `live` by the server's answer to a dry run of exactly what
    /// it applies: the fields and who owns them now; `None` when nothing (or when unsure).
    async fn server_changes(&self, live: &Value) -> Option<(Vec<String>, Vec<String>)> {
        let key = ObjectKey::of(live);
        let mut bare = key.clone();
        bare.namespace.clear();
        let (_, after, ignore) = match self.dry_run(&key, live).await {
            Some(found) => found,
            None => self.dry_run(&bare, live).await?,
        };
        // A newer version is on its way to the healer as a watch event; judged then.
        if !crate::diff::same_version(live, &after) {
            return None;
        }
        let changes = crate::diff::changes(live, &after, &ignore);
        if changes.is_empty() {
            return None;
        }
        let mut managers: Vec<String> = changes.iter().filter_map(|c| c.manager.clone()).collect();
        managers.sort();
        managers.dedup();
        Some((changes.into_iter().map(|c| c.path).collect(), managers))
    }

    /// Whether the API server, asked with a dry run of exactly what a sync applies, finds that
    /// it would change nothing in `live`. Unsure (the server refused) counts as a change.
    async fn server_sees_no_change(&self, key: &ObjectKey, live: &Value) -> bool {
        match self.dry_run(key, live).await {
            Some((form, dry, _)) => !crate::sync::changed_what_git_sets(&form, live, &dry),
            None => false,
        }
    }

    /// The server's answer to a dry run of what a sync of `key` applies to `live`, with that
    /// form and the application's ignored differences; `None` when `key` is not Git's or the
    /// server refused.
    async fn dry_run(
        &self,
        key: &ObjectKey,
        live: &Value,
    ) -> Option<(Value, Value, Vec<crate::diff::IgnoreRule>)> {
        let found = self
            .healer
            .book
            .lock()
            .ok()
            .and_then(|b| b.sync_form(key, live));
        let (form, _, namespace, ignore) = found?;
        let after = self
            .healer
            .client
            .apply(&form, &namespace, FIELD_MANAGER, true)
            .await
            .ok()?;
        Some((form, after, ignore))
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
    use super::*;

    #[test]
    fn heal_events_are_told_on_the_object_as_kubernetes_events() {
        let key = ObjectKey::of(
            &serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "shop"}}),
        );
        let fight = kube_event(&HealEvent::Fight {
            app: "shop".to_owned(),
            key: key.clone(),
            managers: vec!["rogue".to_owned()],
        });
        assert!(fight.warning);
        assert_eq!(fight.reason, "HealStopped");
        assert!(
            fight.note.contains("rogue keeps changing it"),
            "{}",
            fight.note
        );
        let healed = kube_event(&HealEvent::Healed {
            app: "shop".to_owned(),
            key: key.clone(),
            fields: vec!["spec.replicas".to_owned()],
            managers: vec![],
            after: Duration::ZERO,
        });
        assert!(!healed.warning);
        assert_eq!(healed.reason, "Healed");
        assert!(
            healed.note.contains("spec.replicas") && healed.note.contains("changed by someone"),
            "{}",
            healed.note
        );
        let recreated = HealEvent::Recreated {
            app: "shop".to_owned(),
            key: key.clone(),
        };
        assert_eq!(recreated.key(), &key);
    }
}
