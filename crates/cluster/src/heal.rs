//! Self-heal: watch what an application applied and put it back the moment someone changes it
//! — on watch events, not a periodic resync — with a backoff per object that resets after a
//! quiet period, and without hot loops: when another field manager keeps writing the same object
//! back, healing it stops and the fight is reported, naming that manager.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::diff::{ObjectKey, diff};
use crate::kube::KubeClient;
use crate::sync::{APP_LABEL, FIELD_MANAGER};

/// Tunables.
#[derive(Clone, Debug)]
pub struct HealOptions {
    /// The application (its label value).
    pub app: String,
    /// Namespace for objects that name none.
    pub namespace: String,
    /// Heals of one object within `window` after which driftwatch stops: a fight.
    pub fight_limit: u32,
    /// The window for counting heals; also the quiet period that resets the backoff.
    pub window: Duration,
    /// Longest wait between two heals of one object.
    pub max_backoff: Duration,
}

impl HealOptions {
    /// Defaults: 5 heals in 60 s is a fight; backoff up to 10 s.
    pub fn new(app: &str, namespace: &str) -> Self {
        HealOptions {
            app: app.to_owned(),
            namespace: namespace.to_owned(),
            fight_limit: 5,
            window: Duration::from_secs(60),
            max_backoff: Duration::from_secs(10),
        }
    }
}

/// What happened to one object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HealEvent {
    /// Put back what Git says; the fields and who had changed them.
    Healed {
        key: ObjectKey,
        fields: Vec<String>,
        managers: Vec<String>,
        after: Duration,
    },
    /// Deleted live; re-created.
    Recreated { key: ObjectKey },
    /// Stopped healing: another manager keeps writing it back.
    Fight {
        key: ObjectKey,
        managers: Vec<String>,
    },
}

#[derive(Default)]
struct Track {
    heals: Vec<Instant>,
    last: Option<Instant>,
    fighting: bool,
}

/// Heals one event's object if it drifted. Pure decision plus the apply; `tracks` carries the
/// per-object history across events.
async fn consider(
    client: &KubeClient,
    desired: &HashMap<ObjectKey, Value>,
    tracks: &mut HashMap<ObjectKey, Track>,
    opts: &HealOptions,
    kind: &str,
    live: Value,
) -> Option<HealEvent> {
    let mut key = ObjectKey::of(&live);
    let want = desired.get(&key).or_else(|| {
        key.namespace.clear();
        desired.get(&key)
    })?;
    let key = ObjectKey::of(want);
    let track = tracks.entry(key.clone()).or_default();
    if track.fighting {
        return None;
    }
    let (fields, managers) = if kind == "DELETED" {
        (Vec::new(), Vec::new())
    } else {
        let mut l = live.clone();
        if want.pointer("/metadata/namespace").is_none()
            && let Some(m) = l.get_mut("metadata").and_then(|m| m.as_object_mut())
        {
            m.remove("namespace");
        }
        let d = diff(std::slice::from_ref(want), std::slice::from_ref(&l), &[]);
        let object = d.into_iter().next()?;
        let mut managers: Vec<String> = object
            .fields
            .iter()
            .filter_map(|f| f.manager.clone())
            .filter(|m| m != FIELD_MANAGER)
            .collect();
        managers.sort();
        managers.dedup();
        (
            object.fields.into_iter().map(|f| f.path).collect(),
            managers,
        )
    };
    let now = Instant::now();
    track.heals.retain(|t| now.duration_since(*t) < opts.window);
    if track.heals.len() as u32 >= opts.fight_limit {
        track.fighting = true;
        return Some(HealEvent::Fight { key, managers });
    }
    // Backoff doubles with each heal in the window; a quiet window resets it.
    let backoff = Duration::from_millis(100u64 << track.heals.len().min(10)).min(opts.max_backoff);
    if let Some(last) = track.last {
        let since = now.duration_since(last);
        if since < backoff && !track.heals.is_empty() {
            tokio::time::sleep(backoff - since).await;
        }
    }
    let started = Instant::now();
    let mut obj = want.clone();
    obj["metadata"]["labels"][APP_LABEL] = Value::String(opts.app.clone());
    if client
        .apply(&obj, &opts.namespace, FIELD_MANAGER, false)
        .await
        .is_err()
    {
        return None;
    }
    track.heals.push(Instant::now());
    track.last = Some(Instant::now());
    Some(if kind == "DELETED" {
        HealEvent::Recreated { key }
    } else {
        HealEvent::Healed {
            key,
            fields,
            managers,
            after: started.elapsed(),
        }
    })
}

/// Watches every kind the application renders (one watch per collection, concurrently) and
/// heals until `report` returns false. `report` is told of each heal and fight as it happens.
pub async fn watch_and_heal(
    client: std::sync::Arc<KubeClient>,
    rendered: &[Value],
    opts: &HealOptions,
    report: &mut (dyn FnMut(&HealEvent) -> bool + Send),
) -> Result<(), crate::error::Error> {
    let desired: HashMap<ObjectKey, Value> = rendered
        .iter()
        .map(|o| (ObjectKey::of(o), o.clone()))
        .collect();
    let mut tracks: HashMap<ObjectKey, Track> = HashMap::new();
    // One representative object per collection to watch.
    let mut collections: Vec<Value> = Vec::new();
    for o in rendered {
        let same = collections.iter().any(|c| {
            c["apiVersion"] == o["apiVersion"]
                && c["kind"] == o["kind"]
                && c.pointer("/metadata/namespace") == o.pointer("/metadata/namespace")
        });
        if !same {
            collections.push(o.clone());
        }
    }
    let selector = format!("{APP_LABEL}={}", opts.app);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(String, Value)>();
    for c in collections {
        let client = client.clone();
        let tx = tx.clone();
        let selector = selector.clone();
        let namespace = opts.namespace.clone();
        tokio::spawn(async move {
            // Start from now: the current state was just synced. Each watch resumes from the
            // last resourceVersion it saw, so no event falls between two watches.
            let mut version = match client.get(&c, &namespace).await {
                Ok(Some(live)) => live
                    .pointer("/metadata/resourceVersion")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                _ => None,
            };
            loop {
                let mut forward = |kind: &str, obj: Value| tx.send((kind.to_owned(), obj)).is_ok();
                match client
                    .watch(
                        &c,
                        &namespace,
                        &selector,
                        version.as_deref(),
                        60,
                        &mut forward,
                    )
                    .await
                {
                    Ok(v) => {
                        if v.is_some() {
                            version = v;
                        }
                    }
                    Err(_) => {
                        // Expired or dropped: start again from the current state.
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        version = None;
                    }
                }
                if tx.is_closed() {
                    return;
                }
            }
        });
    }
    drop(tx);
    while let Some((kind, obj)) = rx.recv().await {
        if let Some(event) = consider(&client, &desired, &mut tracks, opts, &kind, obj).await
            && !report(&event)
        {
            return Ok(());
        }
    }
    Ok(())
}
