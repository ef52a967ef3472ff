//! Notifications: what the service did, told to the webhooks of `driftwatch.yaml`'s
//! `notifications:` — a generic JSON body or a Slack-compatible one, on the triggers each
//! endpoint asked for, for the applications it asked about.
//!
//! Which events become which messages is a pure function ([`plan`]); delivery runs in one task
//! per endpoint behind a bounded queue, retried with backoff, so a slow or failing endpoint
//! delays only its own messages and never the loop (a full queue drops, counted and logged).

use std::sync::Arc;
use std::time::Duration;

use driftwatch_engine::notification::{Format, Notifier, Trigger};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::events::{Numbered, ServiceEvent};
use crate::metrics::NotifyLabels;
use crate::state::Shared;

/// Messages waiting per endpoint before new ones are dropped.
const QUEUE: usize = 256;
/// Tries per message (the first and the retries).
const ATTEMPTS: u32 = 5;
/// The first retry's wait; doubled after each failure.
const BACKOFF: Duration = Duration::from_millis(500);
/// The longest wait before a retry, `Retry-After` included.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// One request's time limit, connecting included.
const TIMEOUT: Duration = Duration::from_secs(10);

/// The triggers `event` is: an event may be two (a sync that left objects behind).
pub fn triggers(event: &ServiceEvent) -> Vec<Trigger> {
    match event {
        ServiceEvent::Committed { .. } => vec![Trigger::Committed],
        ServiceEvent::Synced { orphaned, .. } if !orphaned.is_empty() => {
            vec![Trigger::Synced, Trigger::RequiresPruning]
        }
        ServiceEvent::Synced { .. } => vec![Trigger::Synced],
        ServiceEvent::SyncFailed { .. } => vec![Trigger::SyncFailed],
        ServiceEvent::OutOfSync { .. } => vec![Trigger::OutOfSync],
        ServiceEvent::Rollout { health, .. } if health == "Degraded" => vec![Trigger::Degraded],
        ServiceEvent::Healed { .. } | ServiceEvent::Recreated { .. } => vec![Trigger::Healed],
        ServiceEvent::Drifted { .. } => vec![Trigger::Drifted],
        ServiceEvent::Fight { .. } => vec![Trigger::Fight],
        ServiceEvent::HealFailed { .. } => vec![Trigger::HealFailed],
        ServiceEvent::Rollout { .. }
        | ServiceEvent::RegistryPush { .. }
        | ServiceEvent::Cycle { .. }
        | ServiceEvent::GitPush { .. } => Vec::new(),
    }
}

/// The applications `event` concerns.
fn apps_of(event: &ServiceEvent) -> Vec<&str> {
    match event {
        ServiceEvent::Committed { apps, .. } => apps.iter().map(String::as_str).collect(),
        other => other.app().into_iter().collect(),
    }
}

fn list(items: &[String]) -> String {
    const SHOWN: usize = 5;
    let mut text = items
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > SHOWN {
        text.push_str(&format!(" and {} more", items.len() - SHOWN));
    }
    text
}

/// The sentence a trigger says when the endpoint has no template.
pub fn text(trigger: Trigger, event: &ServiceEvent) -> String {
    match (trigger, event) {
        (
            _,
            ServiceEvent::Committed {
                branch,
                commit,
                changes,
                ..
            },
        ) => {
            let what: Vec<String> = changes
                .iter()
                .map(|c| format!("{}: {} {} → {}", c.app, c.image, c.from, c.to))
                .collect();
            let short = commit.get(..12).unwrap_or(commit);
            format!("committed {short} to {branch}: {}", list(&what))
        }
        (Trigger::RequiresPruning, ServiceEvent::Synced { app, orphaned, .. }) => format!(
            "{app}: {} left Git and stay{} in the cluster (prune is off): {}",
            if orphaned.len() == 1 {
                "1 object".to_owned()
            } else {
                format!("{} objects", orphaned.len())
            },
            if orphaned.len() == 1 { "s" } else { "" },
            list(orphaned)
        ),
        (
            _,
            ServiceEvent::Synced {
                app,
                revision,
                applied,
                pruned,
                ..
            },
        ) => format!(
            "{app}: synced {revision} ({} applied, {} pruned)",
            applied.len(),
            pruned.len()
        ),
        (_, ServiceEvent::SyncFailed { app, error }) => format!("{app}: sync failed: {error}"),
        (
            _,
            ServiceEvent::OutOfSync {
                app,
                revision,
                objects,
            },
        ) => format!("{app}: OutOfSync with {revision}: {}", list(objects)),
        (
            _,
            ServiceEvent::Rollout {
                app,
                revision,
                health,
                detail,
            },
        ) => format!("{app}: {health} at {revision}: {detail}"),
        (
            _,
            ServiceEvent::Healed {
                app,
                object,
                fields,
                managers,
                ..
            },
        ) => format!(
            "{app}: healed {object} ({}), changed by {}",
            list(fields),
            list(managers)
        ),
        (_, ServiceEvent::Recreated { app, object }) => {
            format!("{app}: recreated {object}, which had been deleted")
        }
        (
            _,
            ServiceEvent::Drifted {
                app,
                object,
                fields,
                managers,
            },
        ) => format!(
            "{app}: {object} changed in the cluster ({}) by {}; self-heal is off",
            list(fields),
            list(managers)
        ),
        (
            _,
            ServiceEvent::Fight {
                app,
                object,
                managers,
            },
        ) => format!(
            "{app}: stopped healing {object}: {} keeps changing it",
            list(managers)
        ),
        (_, ServiceEvent::HealFailed { app, object, error }) => {
            format!("{app}: healing {object} failed: {error}")
        }
        (_, ServiceEvent::RegistryPush { .. } | ServiceEvent::Cycle { .. })
        | (_, ServiceEvent::GitPush { .. }) => String::new(),
    }
}

/// The bodies `event` sends, by endpoint index: each endpoint that wants one of its triggers
/// for one of its applications gets one message (the first trigger it wants).
pub fn plan(notifiers: &[Notifier], event: &Numbered) -> Vec<(usize, Value)> {
    let triggers = triggers(&event.event);
    let apps = apps_of(&event.event);
    let mut out = Vec::new();
    for (i, n) in notifiers.iter().enumerate() {
        let Some(trigger) = triggers.iter().copied().find(|t| {
            if apps.is_empty() {
                n.wants(*t, "")
            } else {
                apps.iter().any(|a| n.wants(*t, a))
            }
        }) else {
            continue;
        };
        let mut data = serde_json::to_value(event).unwrap_or(Value::Null);
        if let Some(map) = data.as_object_mut() {
            map.insert("trigger".to_owned(), json!(trigger.name()));
        }
        let text = match &n.template {
            Some(t) => match driftwatch_git::render_json(t, "notification template", &data) {
                Ok(text) => text,
                // Validated at load; a field missing from this event still says something.
                Err(e) => format!("{} (template failed: {e})", text(trigger, &event.event)),
            },
            None => text(trigger, &event.event),
        };
        let body = match n.format {
            Format::Slack => json!({ "text": text }),
            Format::Json => json!({
                "trigger": trigger.name(),
                "apps": apps,
                "text": text,
                "event": data,
            }),
        };
        out.push((i, body));
    }
    out
}

/// How one delivery went.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Sent,
    /// Worth another try, after at least this long when the endpoint said so.
    Retry(Option<Duration>, String),
    /// Not worth another try (the endpoint refused the message).
    Refused(String),
}

async fn deliver(http: &reqwest::Client, url: &str, body: &Value) -> Outcome {
    let sent = http
        .post(url)
        .header("content-type", "application/json")
        .header(
            "user-agent",
            concat!("driftwatch/", env!("CARGO_PKG_VERSION")),
        )
        .body(body.to_string())
        .send()
        .await;
    match sent {
        Ok(r) if r.status().is_success() => Outcome::Sent,
        Ok(r) => {
            let status = r.status().as_u16();
            let after = r
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            if matches!(status, 408 | 425 | 429) || status >= 500 {
                Outcome::Retry(after, format!("HTTP {status}"))
            } else {
                Outcome::Refused(format!("HTTP {status}"))
            }
        }
        // The URL may hold a token: the error is told without it.
        Err(e) => Outcome::Retry(None, e.without_url().to_string()),
    }
}

/// One endpoint's messages, in order, each tried up to [`ATTEMPTS`] times.
async fn worker(
    notifier: Notifier,
    mut queue: mpsc::Receiver<Value>,
    http: reqwest::Client,
    shared: Arc<Shared>,
) {
    let count = |result: &str| {
        shared
            .metrics
            .notifications
            .get_or_create(&NotifyLabels {
                notifier: notifier.name.clone(),
                result: result.to_owned(),
            })
            .inc();
    };
    while let Some(body) = queue.recv().await {
        let mut wait = BACKOFF;
        let mut attempt = 1;
        loop {
            match deliver(&http, notifier.url.expose(), &body).await {
                Outcome::Sent => {
                    count("sent");
                    break;
                }
                Outcome::Refused(why) => {
                    tracing::error!(notifier = %notifier.name, error = %why, "notification refused");
                    count("failed");
                    break;
                }
                Outcome::Retry(_, why) if attempt == ATTEMPTS => {
                    tracing::error!(notifier = %notifier.name, error = %why, attempts = attempt, "notification failed");
                    count("failed");
                    break;
                }
                Outcome::Retry(after, why) => {
                    let pause = after.unwrap_or(wait).min(MAX_BACKOFF);
                    tracing::warn!(notifier = %notifier.name, error = %why, attempt, retry_in_ms = u64::try_from(pause.as_millis()).unwrap_or(u64::MAX), "notification will be retried");
                    tokio::time::sleep(pause).await;
                    wait = (wait * 2).min(MAX_BACKOFF);
                    attempt += 1;
                }
            }
        }
    }
}

/// The running notifications: stop them with [`Notifications::finish`].
pub struct Notifications {
    stop: oneshot::Sender<()>,
    dispatcher: JoinHandle<()>,
    workers: Vec<JoinHandle<()>>,
}

/// Starts telling `notifiers` about the events of `shared` from now on; `None` without any.
pub fn start(notifiers: Vec<Notifier>, shared: &Arc<Shared>) -> Option<Notifications> {
    if notifiers.is_empty() {
        return None;
    }
    let http = match reqwest::Client::builder()
        .timeout(TIMEOUT)
        .connect_timeout(TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
    {
        Ok(h) => h,
        Err(e) => {
            tracing::error!(error = %e, "notifications are off: no HTTP client");
            return None;
        }
    };
    let events = shared.events.subscribe();
    let mut queues = Vec::new();
    let mut workers = Vec::new();
    for n in &notifiers {
        let (tx, rx) = mpsc::channel(QUEUE);
        queues.push(tx);
        workers.push(tokio::spawn(worker(
            n.clone(),
            rx,
            http.clone(),
            shared.clone(),
        )));
    }
    let (stop, stopped) = oneshot::channel();
    let dispatcher = tokio::spawn(dispatch(notifiers, queues, events, stopped, shared.clone()));
    Some(Notifications {
        stop,
        dispatcher,
        workers,
    })
}

async fn dispatch(
    notifiers: Vec<Notifier>,
    queues: Vec<mpsc::Sender<Value>>,
    mut events: broadcast::Receiver<Numbered>,
    mut stopped: oneshot::Receiver<()>,
    shared: Arc<Shared>,
) {
    let drop_one = |name: &str, why: &str| {
        tracing::warn!(notifier = %name, reason = why, "notification dropped");
        shared
            .metrics
            .notifications
            .get_or_create(&NotifyLabels {
                notifier: name.to_owned(),
                result: "dropped".to_owned(),
            })
            .inc();
    };
    let send = |event: &Numbered| {
        for (i, body) in plan(&notifiers, event) {
            if let (Some(q), Some(n)) = (queues.get(i), notifiers.get(i))
                && q.try_send(body).is_err()
            {
                drop_one(&n.name, "queue full");
            }
        }
    };
    loop {
        tokio::select! {
            _ = &mut stopped => {
                // What was pushed before the stop is still told.
                while let Ok(e) = events.try_recv() {
                    send(&e);
                }
                return;
            }
            got = events.recv() => match got {
                Ok(e) => send(&e),
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    for notifier in &notifiers {
                        drop_one(&notifier.name, &format!("{n} events missed"));
                    }
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
        }
    }
}

impl Notifications {
    /// Stops taking events and gives the messages already queued up to `grace` to go out.
    pub async fn finish(self, grace: Duration) {
        let _ = self.stop.send(());
        let _ = self.dispatcher.await;
        let all = futures_util::future::join_all(self.workers);
        if tokio::time::timeout(grace, all).await.is_err() {
            tracing::warn!(
                grace_ms = u64::try_from(grace.as_millis()).unwrap_or(u64::MAX),
                "notifications still queued at stop were not sent"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::ImageChange;
    use driftwatch_git::Secret;

    fn notifier(name: &str, format: Format, on: &[Trigger], apps: &[&str]) -> Notifier {
        Notifier {
            name: name.to_owned(),
            url: Secret::new("http://127.0.0.1:1/hook"),
            format,
            on: on.to_vec(),
            applications: apps.iter().map(|a| (*a).to_owned()).collect(),
            template: None,
        }
    }

    fn numbered(event: ServiceEvent) -> Numbered {
        Numbered {
            seq: 7,
            ts: "2026-12-02T03:00:00Z".to_owned(),
            event,
        }
    }

    fn committed() -> ServiceEvent {
        ServiceEvent::Committed {
            repo: "https://git.example/shop.git".to_owned(),
            branch: "main".to_owned(),
            commit: "0123456789abcdef0123".to_owned(),
            apps: vec!["shop-prod".to_owned()],
            changes: vec![ImageChange {
                app: "shop-prod".to_owned(),
                image: "registry.example/shop/backend".to_owned(),
                from: "1.0.0".to_owned(),
                to: "1.1.0".to_owned(),
            }],
        }
    }

    #[test]
    fn a_commit_is_told_with_its_changes() {
        let n = [notifier("ops", Format::Slack, &Trigger::DEFAULT, &[])];
        let out = plan(&n, &numbered(committed()));
        assert_eq!(out.len(), 1);
        assert_eq!(
            out[0].1,
            json!({"text": "committed 0123456789ab to main: shop-prod: registry.example/shop/backend 1.0.0 → 1.1.0"})
        );
    }

    #[test]
    fn json_bodies_carry_the_event_and_its_trigger() {
        let n = [notifier("ops", Format::Json, &[Trigger::Fight], &[])];
        let event = ServiceEvent::Fight {
            app: "shop".to_owned(),
            object: "Deployment/shop/backend".to_owned(),
            managers: vec!["rogue".to_owned()],
        };
        let out = plan(&n, &numbered(event));
        let body = &out[0].1;
        assert_eq!(body["trigger"], "fight");
        assert_eq!(body["apps"], json!(["shop"]));
        assert_eq!(
            body["text"],
            "shop: stopped healing Deployment/shop/backend: rogue keeps changing it"
        );
        assert_eq!(body["event"]["kind"], "fight");
        assert_eq!(body["event"]["seq"], 7);
    }

    #[test]
    fn endpoints_get_only_their_triggers_and_applications() {
        let n = [
            notifier("all", Format::Json, &[Trigger::Synced], &[]),
            notifier("shop", Format::Json, &[Trigger::Synced], &["shop-*"]),
            notifier("failures", Format::Json, &[Trigger::SyncFailed], &[]),
        ];
        let synced = |app: &str| {
            numbered(ServiceEvent::Synced {
                app: app.to_owned(),
                revision: "abc".to_owned(),
                applied: vec![],
                pruned: vec![],
                orphaned: vec![],
                unchanged: 1,
            })
        };
        let to = |e: &Numbered| plan(&n, e).into_iter().map(|(i, _)| i).collect::<Vec<_>>();
        assert_eq!(to(&synced("shop-prod")), vec![0, 1]);
        assert_eq!(to(&synced("cart")), vec![0]);
        // Not a trigger at all.
        let cycle = numbered(ServiceEvent::Cycle {
            cycle: 1,
            updates: 0,
            errors: 0,
            commits: vec![],
        });
        assert!(to(&cycle).is_empty());
    }

    #[test]
    fn a_sync_that_leaves_objects_behind_requires_pruning() {
        let event = ServiceEvent::Synced {
            app: "shop".to_owned(),
            revision: "abc".to_owned(),
            applied: vec![],
            pruned: vec![],
            orphaned: vec!["ConfigMap/shop/old".to_owned()],
            unchanged: 2,
        };
        assert_eq!(
            triggers(&event),
            vec![Trigger::Synced, Trigger::RequiresPruning]
        );
        let n = [notifier(
            "ops",
            Format::Slack,
            &[Trigger::RequiresPruning],
            &[],
        )];
        assert_eq!(
            plan(&n, &numbered(event))[0].1["text"],
            "shop: 1 object left Git and stays in the cluster (prune is off): ConfigMap/shop/old"
        );
    }

    #[test]
    fn only_a_degraded_rollout_is_told() {
        let rollout = |health: &str| ServiceEvent::Rollout {
            app: "shop".to_owned(),
            revision: "abc".to_owned(),
            health: health.to_owned(),
            detail: "Deployment/shop/backend: 0 of 2 ready".to_owned(),
        };
        assert_eq!(triggers(&rollout("Degraded")), vec![Trigger::Degraded]);
        assert!(triggers(&rollout("Healthy")).is_empty());
    }

    #[test]
    fn templates_see_the_events_fields() {
        let mut n = notifier("ops", Format::Slack, &[Trigger::Committed], &[]);
        n.template = Some(
            "[{{ .trigger }}] {{ range .changes }}{{ .app }}={{ .to }} {{ end }}on {{ .branch }}"
                .to_owned(),
        );
        let out = plan(&[n], &numbered(committed()));
        assert_eq!(out[0].1["text"], "[committed] shop-prod=1.1.0 on main");
    }

    #[test]
    fn long_lists_are_cut() {
        let items: Vec<String> = (0..8).map(|i| format!("o{i}")).collect();
        assert_eq!(list(&items), "o0, o1, o2, o3, o4 and 3 more");
    }
}
