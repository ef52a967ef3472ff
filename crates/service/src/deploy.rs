//! Git → cluster inside the service, as tasks on the service's runtime so a slow image cycle
//! never delays a deploy: each repository's head polled once per tick, Git push webhooks and
//! the updater's own commits acted on at once, and manual changes healed from shared watches
//! the moment they happen.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use driftwatch_cluster::HealEvent;
use driftwatch_deploy::{Clusters, Deployer, Outcome};
use driftwatch_engine::App;
use tokio::sync::mpsc;

use crate::events::ServiceEvent;
use crate::shutdown::Shutdown;
use crate::state::{DeployTrigger, Shared};

/// The first 12 characters of a revision, as logs show it.
fn short(revision: &str) -> &str {
    &revision[..revision.len().min(12)]
}

fn strings(keys: &[driftwatch_cluster::ObjectKey]) -> Vec<String> {
    keys.iter().map(ToString::to_string).collect()
}

fn names(keys: &[driftwatch_cluster::ObjectKey]) -> serde_json::Value {
    strings(keys).into()
}

/// Logs what a tick did and counts it; returns whether anything failed.
fn report(outcomes: &[Outcome], shared: &Shared, seen: Option<i128>) -> bool {
    let m = &shared.metrics;
    let mut failed = false;
    for o in outcomes {
        match o {
            Outcome::Synced {
                app,
                revision,
                report,
            } => {
                m.syncs.inc();
                if let Some(seen) = seen
                    && !report.applied.is_empty()
                {
                    m.push_to_deploy_seconds
                        .observe((driftwatch_engine::now_nanos() - seen) as f64 / 1e9);
                }
                tracing::info!(
                    app = %app,
                    revision = %short(revision),
                    applied = %names(&report.applied),
                    pruned = %names(&report.pruned),
                    orphaned = %names(&report.orphaned),
                    unchanged = report.unchanged.len(),
                    "synced"
                );
                shared.events.push(ServiceEvent::Synced {
                    app: app.clone(),
                    revision: short(revision).to_owned(),
                    applied: strings(&report.applied),
                    pruned: strings(&report.pruned),
                    orphaned: strings(&report.orphaned),
                    unchanged: report.unchanged.len(),
                });
            }
            Outcome::OutOfSync {
                app,
                revision,
                objects,
            } => {
                tracing::warn!(
                    app = %app,
                    revision = %short(revision),
                    objects = %names(objects),
                    "OutOfSync"
                );
                shared.events.push(ServiceEvent::OutOfSync {
                    app: app.clone(),
                    revision: short(revision).to_owned(),
                    objects: strings(objects),
                });
            }
            Outcome::InSync { .. } => {}
            Outcome::Failed { app, error } => {
                failed = true;
                m.sync_errors.inc();
                tracing::error!(app = %app, error = %error, "sync failed");
                shared.events.push(ServiceEvent::SyncFailed {
                    app: app.clone(),
                    error: error.clone(),
                });
            }
        }
    }
    failed
}

/// One line for a heal event, as `sync --self-heal` prints it and the service logs it.
pub fn describe_heal(e: &HealEvent) -> String {
    let who = |managers: &[String], none: &str| {
        if managers.is_empty() {
            none.to_owned()
        } else {
            managers.join(", ")
        }
    };
    match e {
        HealEvent::Healed {
            key,
            fields,
            managers,
            after,
            ..
        } => format!(
            "healed {key}: {} (changed by {}) in {:.1} ms",
            fields.join(", "),
            who(managers, "unknown"),
            after.as_secs_f64() * 1e3
        ),
        HealEvent::Recreated { key, .. } => format!("re-created {key}"),
        HealEvent::Drifted {
            key,
            fields,
            managers,
            ..
        } => format!(
            "OutOfSync: {key}: {} (changed by {}; self-heal is off)",
            fields.join(", "),
            who(managers, "unknown")
        ),
        HealEvent::Fight { key, managers, .. } => format!(
            "Degraded: {key} keeps being changed by {}; stopped healing it",
            who(managers, "another writer")
        ),
        HealEvent::Failed { key, error, .. } => format!("healing {key} failed: {error}"),
    }
}

/// The service event for a heal event.
fn heal_event(e: &HealEvent) -> ServiceEvent {
    match e.clone() {
        HealEvent::Healed {
            app,
            key,
            fields,
            managers,
            after,
        } => ServiceEvent::Healed {
            app,
            object: key.to_string(),
            fields,
            managers,
            after_ms: u64::try_from(after.as_millis()).unwrap_or(u64::MAX),
        },
        HealEvent::Recreated { app, key } => ServiceEvent::Recreated {
            app,
            object: key.to_string(),
        },
        HealEvent::Drifted {
            app,
            key,
            fields,
            managers,
        } => ServiceEvent::Drifted {
            app,
            object: key.to_string(),
            fields,
            managers,
        },
        HealEvent::Fight { app, key, managers } => ServiceEvent::Fight {
            app,
            object: key.to_string(),
            managers,
        },
        HealEvent::Failed { app, key, error } => ServiceEvent::HealFailed {
            app,
            object: key.to_string(),
            error,
        },
    }
}

/// Counts, logs and keeps one heal event.
fn on_heal(e: &HealEvent, shared: &Shared) {
    let m = &shared.metrics;
    let line = describe_heal(e);
    shared.events.push(heal_event(e));
    match e {
        HealEvent::Healed { app, .. } | HealEvent::Recreated { app, .. } => {
            m.heals.inc();
            tracing::info!(app = %app, "{line}");
        }
        HealEvent::Drifted { app, .. } => tracing::warn!(app = %app, "{line}"),
        HealEvent::Fight { app, .. } => {
            m.fights.inc();
            tracing::error!(app = %app, "{line}");
        }
        HealEvent::Failed { app, .. } => {
            m.sync_errors.inc();
            tracing::error!(app = %app, "{line}");
        }
    }
}

/// One tick for `run --once`: every application with a sync policy brought to the cluster (or
/// compared); true when one failed.
pub async fn once(apps: &[App], state: PathBuf, clusters: Clusters, shared: &Shared) -> bool {
    let (mut deployer, _, _) = Deployer::new(clusters, state, apps, driftwatch_deploy::Mode::Once);
    let outcomes = deployer.tick(None).await;
    report(&outcomes, shared, None)
}

/// The Git → cluster loop for the applications that have a sync policy: returns the sender of
/// its triggers and the task, which ends on `shutdown` (after the tick in progress).
pub fn start(
    apps: &[App],
    state: PathBuf,
    clusters: Clusters,
    interval: Duration,
    shared: Arc<Shared>,
    shutdown: Shutdown,
) -> (
    mpsc::UnboundedSender<DeployTrigger>,
    tokio::task::JoinHandle<()>,
) {
    let (tx, mut rx) = mpsc::unbounded_channel::<DeployTrigger>();
    let apps = apps.to_vec();
    let task = tokio::spawn(async move {
        let (mut deployer, mut heal_events, mut settled) = Deployer::new(
            clusters,
            state,
            &apps,
            driftwatch_deploy::Mode::Continuous {
                rollout_limit: Duration::from_secs(600),
            },
        );
        if let Ok(mut v) = shared.status.lock() {
            *v = Some(deployer.status_view());
        }
        // Every cluster's healer reports here; it stops with the deployer (dropped below).
        let heal_shared = shared.clone();
        let healing = tokio::spawn(async move {
            while let Some(e) = heal_events.recv().await {
                on_heal(&e, &heal_shared);
            }
        });
        let mut next = tokio::time::Instant::now();
        loop {
            let (only, seen) = tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep_until(next) => {
                    next = tokio::time::Instant::now() + interval;
                    (None, None)
                }
                Some(s) = settled.recv() => {
                    deployer.settled(&s);
                    shared.events.push(ServiceEvent::Rollout {
                        app: s.app.clone(),
                        revision: short(&s.revision).to_owned(),
                        health: s.health.to_string(),
                        detail: s.detail.clone(),
                    });
                    if s.health == driftwatch_cluster::Health::Degraded {
                        tracing::error!(app = %s.app, revision = %short(&s.revision), health = %s.health, detail = %s.detail, "rollout");
                    } else {
                        tracing::info!(app = %s.app, revision = %short(&s.revision), health = %s.health, detail = %s.detail, "rollout");
                    }
                    continue;
                }
                t = rx.recv() => match t {
                    None => break,
                    Some(DeployTrigger::Apps(apps, seen)) => (Some(apps), seen),
                    Some(DeployTrigger::Reload(apps)) => {
                        let changed = deployer.set_apps(&apps);
                        if changed.is_empty() {
                            continue;
                        }
                        (Some(changed), None)
                    }
                    Some(DeployTrigger::Push(push)) => {
                        let apps = deployer.affected(&push.urls, &push.branch);
                        tracing::info!(branch = %push.branch, applications = apps.len(), "git push");
                        shared.events.push(ServiceEvent::GitPush {
                            branch: push.branch.clone(),
                            applications: apps.len(),
                        });
                        if apps.is_empty() {
                            continue;
                        }
                        (Some(apps), None)
                    }
                },
            };
            let outcomes = deployer.tick(only.as_ref()).await;
            report(&outcomes, &shared, seen);
        }
        drop(deployer);
        healing.abort();
    });
    (tx, task)
}
