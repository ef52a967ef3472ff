//! The Git → cluster side of `driftwatch run`, on its own thread and runtime so a slow image
//! cycle never delays a deploy: each repository's head polled once per tick, Git push webhooks
//! and the updater's own commits acted on at once, and manual changes healed from shared
//! watches the moment they happen.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use driftwatch_deploy::{Deployer, Outcome};
use driftwatch_engine::App;
use tokio::sync::mpsc;

use crate::serve::Shared;

/// What the Git → cluster thread is asked to do.
pub enum DeployTrigger {
    /// These applications' repositories may have moved (the updater committed, at `seen` the
    /// registry push that caused it was seen).
    Apps(HashSet<String>, Option<i128>),
    /// A Git host says a branch moved.
    Push(driftwatch_git::GitPush),
    /// The applications changed (read again from the cluster).
    Reload(Vec<App>),
}

/// The running thread: send triggers; dropping the sender stops it.
pub struct DeployThread {
    pub tx: mpsc::UnboundedSender<DeployTrigger>,
    join: std::thread::JoinHandle<()>,
}

impl DeployThread {
    /// Stops the loop (after the tick in progress) and waits for it.
    pub fn stop(self) {
        drop(self.tx);
        let _ = self.join.join();
    }
}

fn kube(kubeconfig: &Path) -> anyhow::Result<Arc<driftwatch_cluster::KubeClient>> {
    Ok(Arc::new(driftwatch_cluster::KubeClient::from_kubeconfig(
        kubeconfig,
    )?))
}

/// Logs what a tick did and counts it; returns whether anything failed.
fn report(outcomes: &[Outcome], shared: &Shared, log_format: &str, seen: Option<i128>) -> bool {
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
                super::cmd::run::log(
                    log_format,
                    "info",
                    "synced",
                    serde_json::json!({
                        "app": app,
                        "revision": &revision[..revision.len().min(12)],
                        "applied": report.applied.iter().map(ToString::to_string).collect::<Vec<_>>(),
                        "pruned": report.pruned.iter().map(ToString::to_string).collect::<Vec<_>>(),
                        "orphaned": report.orphaned.iter().map(ToString::to_string).collect::<Vec<_>>(),
                        "unchanged": report.unchanged.len(),
                    }),
                );
            }
            Outcome::OutOfSync {
                app,
                revision,
                objects,
            } => {
                super::cmd::run::log(
                    log_format,
                    "warn",
                    "OutOfSync",
                    serde_json::json!({
                        "app": app,
                        "revision": &revision[..revision.len().min(12)],
                        "objects": objects.iter().map(ToString::to_string).collect::<Vec<_>>(),
                    }),
                );
            }
            Outcome::InSync { .. } => {}
            Outcome::Failed { app, error } => {
                failed = true;
                m.sync_errors.inc();
                super::cmd::run::log(
                    log_format,
                    "error",
                    "sync failed",
                    serde_json::json!({"app": app, "error": error}),
                );
            }
        }
    }
    failed
}

/// One tick for `run --once`: every application with a sync policy brought to the cluster (or
/// compared); true when one failed.
pub fn once(
    apps: &[App],
    state: PathBuf,
    kubeconfig: &Path,
    shared: &Shared,
    log_format: &str,
) -> anyhow::Result<bool> {
    let client = kube(kubeconfig)?;
    let rt = super::cmd::runtime()?;
    rt.block_on(async {
        let (mut deployer, _, _) =
            Deployer::new(client, state, apps, driftwatch_deploy::Mode::Once);
        let outcomes = deployer.tick(None).await;
        Ok(report(&outcomes, shared, log_format, None))
    })
}

/// Starts the Git → cluster loop for the applications that have a sync policy.
pub fn start(
    apps: &[App],
    state: PathBuf,
    kubeconfig: &Path,
    interval: Duration,
    shared: Arc<Shared>,
    log_format: String,
) -> anyhow::Result<DeployThread> {
    let client = kube(kubeconfig)?;
    let (tx, mut rx) = mpsc::unbounded_channel::<DeployTrigger>();
    let apps = apps.to_vec();
    let join = super::cmd::spawn_service("Git → cluster", move || async move {
        let (mut deployer, healer, mut settled) = Deployer::new(
            client,
            state,
            &apps,
            driftwatch_deploy::Mode::Continuous {
                rollout_limit: Duration::from_secs(600),
            },
        );
        if let Ok(mut v) = shared.status.lock() {
            *v = Some(deployer.status_view());
        }
        let heal_shared = shared.clone();
        let heal_format = log_format.clone();
        tokio::spawn(async move {
            let mut on_event = move |e: &driftwatch_cluster::HealEvent| {
                use driftwatch_cluster::HealEvent;
                let m = &heal_shared.metrics;
                let (level, app) = match e {
                    HealEvent::Healed { app, .. } | HealEvent::Recreated { app, .. } => {
                        m.heals.inc();
                        ("info", app)
                    }
                    HealEvent::Drifted { app, .. } => ("warn", app),
                    HealEvent::Fight { app, .. } => {
                        m.fights.inc();
                        ("error", app)
                    }
                    HealEvent::Failed { app, .. } => {
                        m.sync_errors.inc();
                        ("error", app)
                    }
                };
                super::cmd::run::log(
                    &heal_format,
                    level,
                    &crate::cmd::diff::describe_heal(e),
                    serde_json::json!({"app": app}),
                );
                true
            };
            healer.run(&mut on_event).await;
        });
        let mut next = tokio::time::Instant::now();
        loop {
            let (only, seen) = tokio::select! {
                _ = tokio::time::sleep_until(next) => {
                    next = tokio::time::Instant::now() + interval;
                    (None, None)
                }
                Some(s) = settled.recv() => {
                    deployer.settled(&s);
                    super::cmd::run::log(&log_format, if s.health == "Degraded" { "error" } else { "info" }, "rollout", serde_json::json!({
                        "app": s.app, "revision": &s.revision[..s.revision.len().min(12)], "health": s.health, "detail": s.detail,
                    }));
                    continue;
                }
                t = rx.recv() => match t {
                    None => return,
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
                        super::cmd::run::log(&log_format, "info", "git push", serde_json::json!({
                            "branch": push.branch, "applications": apps.len(),
                        }));
                        if apps.is_empty() {
                            continue;
                        }
                        (Some(apps), None)
                    }
                },
            };
            let outcomes = deployer.tick(only.as_ref()).await;
            report(&outcomes, &shared, &log_format, seen);
        }
    })?;
    Ok(DeployThread { tx, join })
}
