//! The service's main loop: updater cycles on an interval with jitter, registry pushes checked
//! at once, applications read again when they live in the cluster, and the Git → cluster loop
//! told of every commit. It stops on [`Shutdown`] after the cycle in progress (a cycle never
//! leaves a half-written repository: commits are built without a work tree and pushed whole).

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use driftwatch_engine::store::{Store, Update};
use driftwatch_engine::{App, CycleReport, Mode, Status, Updater};
use tokio::sync::{mpsc, watch};

use crate::error::Error;
use crate::events::ServiceEvent;
use crate::leader::Role;
use crate::metrics::RequestLabels;
use crate::shutdown::Shutdown;
use crate::source::AppSource;
use crate::state::{DeployTrigger, Shared, Trigger};

/// Told of every cycle's report (the binary prints it).
pub type CycleObserver = Box<dyn Fn(&CycleReport) + Send + Sync>;

/// What the service is asked to do.
pub struct Options {
    /// Where the applications come from.
    pub source: AppSource,
    /// Mirrors, renderings, inventories and the history database.
    pub state_dir: PathBuf,
    /// Time between cycles; `None` takes the configuration's.
    pub interval: Option<Duration>,
    /// One cycle (and one Git → cluster pass), then return.
    pub once: bool,
    /// Plan only: write nothing, apply nothing.
    pub dry_run: bool,
    /// Serve webhooks, metrics and status here.
    pub listen: Option<SocketAddr>,
    /// The webhook secret; webhooks are refused without one.
    pub webhook_secret: Option<String>,
    /// The bearer token of the status page's actions (sync, refresh); they are off without one.
    pub ui_token: Option<String>,
    /// Git → cluster on this cluster (kubeconfig and context); off without it.
    pub cluster: Option<driftwatch_cluster::KubeTarget>,
    /// Time between polls of each repository's head for Git → cluster.
    pub sync_interval: Duration,
    /// Told of every cycle's report.
    pub on_cycle: Option<CycleObserver>,
    /// Act only while holding this Lease (several replicas); `None`: always act.
    pub leader_election: Option<LeaderElection>,
}

/// Leader election: where the Lease is, who this process is, and the timings.
#[derive(Clone, Debug)]
pub struct LeaderElection {
    /// The cluster holding the Lease (usually the one `cluster` names).
    pub cluster: driftwatch_cluster::KubeTarget,
    /// The Lease.
    pub lease: crate::leader::LeaseTarget,
    /// This process's name in the Lease.
    pub identity: String,
    /// Lease duration, renew deadline, retry period.
    pub timing: crate::leader::Timing,
    /// Shards the applications are split into (1: one leader acts on all; more: one Lease per
    /// shard, named after `lease`, and each replica leads a fair share of them).
    pub shards: u32,
}

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunOutcome {
    /// Cycles run.
    pub cycles: u64,
    /// With `once`: an image, a repository, a render or a sync failed.
    pub failed: bool,
}

fn rfc3339(nanos: i128) -> String {
    driftwatch_policy::Timestamp::from_unix_nanos(nanos).to_string()
}

fn images_watched(apps: &[App]) -> i64 {
    i64::try_from(apps.iter().map(|a| a.images.len()).sum::<usize>()).unwrap_or(i64::MAX)
}

/// The history rows of a cycle's updates.
fn updates_of(report: &CycleReport, seen: i128) -> Vec<Update> {
    report
        .images
        .iter()
        .filter(|l| l.status == Status::Updated)
        .filter_map(|line| {
            let commit = line.commit.as_ref()?;
            let c = report.commits.iter().find(|c| &c.commit == commit);
            Some(Update {
                app: line.app.clone(),
                image: line.image.clone(),
                old: line.git.clone().unwrap_or_default(),
                new: line.registry.clone().unwrap_or_default(),
                commit: commit.clone(),
                repo: c.map(|c| c.repo.clone()).unwrap_or_default(),
                branch: c.map(|c| c.branch.clone()).unwrap_or_default(),
                seen_at: rfc3339(seen),
                decided_at: rfc3339(report.decided_at),
                committed_at: rfc3339(c.map_or(report.finished_at, |c| c.pushed_at)),
            })
        })
        .collect()
}

/// The applications whose repositories the cycle committed to.
fn committed_apps(apps: &[App], report: &CycleReport) -> HashSet<String> {
    let ids: HashSet<String> = report
        .commits
        .iter()
        .map(|c| driftwatch_git::repo_identity(&c.repo))
        .collect();
    apps.iter()
        .filter(|a| ids.contains(&driftwatch_git::repo_identity(&a.repo)))
        .map(|a| a.name.clone())
        .collect()
}

/// Counts one cycle in the metrics. Registry request counts are cumulative per updater;
/// `carried` holds what earlier updaters (before a reload) had counted.
fn count(
    shared: &Shared,
    updater: &Updater,
    report: &CycleReport,
    started: i128,
    seen: i128,
    carried: &HashMap<RequestLabels, u64>,
) {
    let m = &shared.metrics;
    m.cycles.inc();
    m.cycle_seconds
        .observe((report.finished_at - started) as f64 / 1e9);
    for c in updater.registry_stats() {
        let labels = RequestLabels {
            registry: c.registry,
            endpoint: c.endpoint.to_owned(),
            status: c.status,
        };
        let before = carried.get(&labels).copied().unwrap_or(0);
        let counter = m.registry_requests.get_or_create(&labels);
        let have = counter.get();
        counter.inc_by((before + c.count).saturating_sub(have));
    }
    for line in &report.images {
        match line.status {
            Status::Error => {
                m.errors.inc();
            }
            Status::Updated => {
                m.updates.inc();
            }
            _ => {}
        }
    }
    // Each commit from the push that caused it (or the cycle's start) to its own push.
    for c in &report.commits {
        m.push_to_commit_seconds
            .observe((c.pushed_at - seen) as f64 / 1e9);
    }
}

/// One line per change and a summary line per cycle: what an operator reads, however many
/// images are tracked (the full table is for `check`, `run --once` or when asked).
fn log_cycle(report: &CycleReport, cycle: u64, started: i128) {
    let mut changes = 0usize;
    let mut errors = 0usize;
    let mut held = 0usize;
    for l in &report.images {
        let shown = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".to_owned());
        match l.status {
            Status::Updated => {
                changes += 1;
                tracing::info!(app = %l.app, image = %l.image, old = %shown(&l.git), new = %shown(&l.registry), commit = %shown(&l.commit), "updated");
            }
            Status::UpdateAvailable => {
                changes += 1;
                tracing::info!(app = %l.app, image = %l.image, old = %shown(&l.git), new = %shown(&l.registry), file = %l.file, "update planned");
            }
            Status::Error => {
                errors += 1;
                tracing::warn!(app = %l.app, image = %l.image, error = %shown(&l.error), "image failed");
            }
            Status::Held | Status::Pending | Status::Waiting | Status::Blocked => {
                // Counted in the summary every cycle; the why is told once it changes, by
                // `check`, `/status` and the page.
                held += 1;
                tracing::debug!(app = %l.app, image = %l.image, why = %shown(&l.held), "held");
            }
            Status::InSync | Status::NoCandidate => {}
        }
    }
    tracing::info!(
        cycle,
        images = report.images.len(),
        changes,
        errors,
        held,
        commits = report.commits.len(),
        registry_requests = report.registry_requests,
        unchanged_apps = report.unchanged_apps,
        // Registry scan and choice; the rest of `duration_ms` is Git.
        scan_ms = u64::try_from((report.decided_at - started) / 1_000_000).unwrap_or(0),
        duration_ms = u64::try_from((report.finished_at - started) / 1_000_000).unwrap_or(0),
        "cycle"
    );
}

/// Up to 10% jitter, so many instances do not scan in lockstep.
fn jittered(interval: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    interval + interval.mul_f64(f64::from(nanos % 100) / 1000.0)
}

/// Runs the service until `shutdown` (or one pass with `once`). Must run on a multi-threaded
/// runtime: the write-back stage blocks in place while the HTTP and Git → cluster tasks go on.
pub async fn run(opts: Options, shutdown: Shutdown) -> Result<RunOutcome, Error> {
    let loaded = opts.source.load().await?;
    let notifiers = loaded.notifications;
    // Applications left out (logged when read) make a single pass fail, after the others.
    let rejected = !loaded.rejected.is_empty();
    // Shared, not copied: at 100,000 images each copy of the applications is tens of MB.
    let mut apps = Arc::new(loaded.apps);
    let registries = loaded.registries;
    // The cluster's readers stay those of the first load: the watch changes only the
    // applications.
    let secrets = loaded.secrets;
    let git_credentials = loaded.git_credentials;
    let live_apps = loaded.applications;
    let interval = opts.interval.unwrap_or(loaded.interval);
    let mut updater = Updater::with_secrets(
        registries.clone(),
        opts.state_dir.clone(),
        &apps,
        secrets.clone(),
    )?
    .with_git_credentials(git_credentials.clone())
    .with_applications(live_apps.clone());
    let follow_cluster = opts.source.follows_cluster();
    let mode = if opts.dry_run {
        Mode::DryRun
    } else {
        Mode::Apply
    };
    let mut store = if mode == Mode::Apply {
        Some(Store::open(&opts.state_dir)?)
    } else {
        None
    };
    let (tx, mut triggers) = mpsc::unbounded_channel();
    let shared = Shared::new(tx, opts.webhook_secret.clone());
    shared.metrics.images_watched.set(images_watched(&apps));
    if let Ok(mut a) = shared.apps.lock() {
        *a = apps.clone();
    }
    if opts.leader_election.is_some() {
        // A follower until the Lease is ours, from the first answer the HTTP side gives.
        shared.set_role(Role::Follower { leader: None });
    }
    // Set once, on a fresh `Shared`: it cannot already hold a context.
    let _ = shared.page.set(crate::state::PageContext {
        state_dir: opts.state_dir.clone(),
        ui_token: opts.ui_token.clone().map(String::into_bytes),
        shutdown: shutdown.clone(),
    });

    // A plan tells nobody.
    let notifications = if opts.dry_run {
        None
    } else {
        crate::notify::start(notifiers, &shared)
    };

    let http = match opts.listen {
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|source| Error::Listen { addr, source })?;
            tracing::info!(addr = %addr, "listening");
            Some(tokio::spawn(crate::http::serve(
                listener,
                crate::http::router(shared.clone()),
                shutdown.clone(),
            )))
        }
        None => None,
    };

    let syncing = apps.iter().any(|a| a.sync.is_some()) || follow_cluster;
    if opts.cluster.is_some() && !syncing {
        tracing::warn!(
            "--kubeconfig given but no application has a sync policy; Git → cluster is idle"
        );
    }
    let client = match &opts.cluster {
        Some(k) if syncing && !opts.dry_run => {
            Some(Arc::new(driftwatch_cluster::KubeClient::connect(k)?))
        }
        _ => None,
    };
    // Applications that name another cluster reach it through a context of the same
    // kubeconfig, or an Argo CD cluster Secret beside the Applications.
    let clusters = match (&client, &opts.cluster) {
        (Some(c), Some(target)) => Some(driftwatch_deploy::Clusters::with_resolver(
            c.clone(),
            crate::clusters::resolver(target.clone(), c.clone(), opts.source.cluster_namespace()),
        )),
        _ => None,
    };
    // Promoted images read their upstream's live state from the cluster (without one they
    // wait, saying they need it).
    let promoting = apps
        .iter()
        .flat_map(|a| &a.images)
        .any(|i| i.promote.is_some());
    let live = match (&clusters, &opts.cluster) {
        (Some(c), _) => Some(c.clone()),
        (None, Some(k)) if promoting => Some(driftwatch_deploy::Clusters::one(Arc::new(
            driftwatch_cluster::KubeClient::connect(k)?,
        ))),
        _ => None,
    }
    .map(|c| {
        Arc::new(driftwatch_deploy::promote::ClusterLive::new(
            c,
            opts.state_dir.clone(),
            &[],
        ))
    });
    let as_live = |l: &Arc<driftwatch_deploy::promote::ClusterLive>| {
        let l: Arc<dyn driftwatch_engine::promote::LiveState> = l.clone();
        driftwatch_engine::promote::Live(l)
    };
    if let Some(l) = &live {
        l.set_apps(&updater.with_credentials(&apps).await);
    }
    updater = updater.with_live(live.as_ref().map(as_live));
    // Who acts: without leader election this process always leads; with it, the elector's
    // task publishes the role and the loop below follows it.
    let (role_tx, mut role) = watch::channel(Role::Leader);
    let election_stop = Shutdown::new();
    let election = match &opts.leader_election {
        Some(le) => {
            let lease_client = Arc::new(driftwatch_cluster::KubeClient::connect(&le.cluster)?);
            role_tx.send_replace(Role::Follower { leader: None });
            tracing::info!(
                identity = %le.identity,
                lease = %format!("{}/{}", le.lease.namespace, le.lease.name),
                "leader election: following until the lease is ours"
            );
            Some(if le.shards > 1 {
                tokio::spawn(crate::shard::run_shards(
                    lease_client,
                    le.lease.clone(),
                    crate::shard::Sharder::new(&le.identity, &le.lease.name, le.shards, le.timing),
                    role_tx,
                    election_stop.clone(),
                ))
            } else {
                tokio::spawn(crate::leader::run_election(
                    lease_client,
                    le.lease.clone(),
                    crate::leader::Elector::new(le.identity.clone(), le.timing),
                    role_tx,
                    election_stop.clone(),
                ))
            })
        }
        None => None,
    };
    // How long stepped-down work may take to finish its tick before it is aborted: half the
    // time between the leader's renew deadline and the moment another may take over.
    let stop_grace = opts.leader_election.as_ref().map_or(Duration::MAX, |le| {
        le.timing.lease.saturating_sub(le.timing.renew_deadline) / 2
    });

    let mut carried: HashMap<RequestLabels, u64> = HashMap::new();
    let mut cycles = 0u64;
    // Applications in the cluster are watched rather than listed every cycle: a new or
    // changed one is acted on at once. A follower's updates wait in the channel for its lead.
    let mut app_updates = if follow_cluster && !opts.once {
        opts.source.watch(shutdown.clone())?
    } else {
        None
    };
    let mut pending_apps: Option<Vec<App>> = None;
    let mut scope: Option<(Arc<Vec<App>>, i128)>;
    let outcome = 'service: loop {
        // A follower waits for the lead (or the stop). Triggers are dropped: a new leader
        // starts with a full cycle, which sees every push it missed.
        if !role.borrow().is_leader() {
            shared.set_role(role.borrow().clone());
            tokio::select! {
                () = shutdown.cancelled() => break 'service RunOutcome { cycles, failed: false },
                changed = role.changed() => {
                    if changed.is_err() {
                        // The elector ended without a stop: nothing will make this one lead.
                        shutdown.cancelled().await;
                    }
                }
                Some(_) = triggers.recv() => {}
            }
            continue 'service;
        }
        // Leading (all applications, or those of the shards held): the Git → cluster loop runs
        // until the stop or a change of role.
        let acting = role.borrow().clone();
        shared.set_role(acting.clone());
        let mut mine = owned(&apps, &acting);
        let work = Shutdown::new();
        let deploy = match &clusters {
            Some(c) if !opts.once => {
                // Git → cluster reads the same repositories: with the same credentials.
                let (tx, task) = crate::deploy::start(
                    &updater.with_credentials(&mine).await,
                    opts.state_dir.clone(),
                    c.clone(),
                    opts.sync_interval.max(Duration::from_secs(1)),
                    shared.clone(),
                    work.clone(),
                );
                if let Ok(mut d) = shared.deploy.lock() {
                    *d = Some(tx.clone());
                }
                Some((tx, task))
            }
            _ => None,
        };
        scope = None;
        let ended = 'cycle: loop {
            // Applications in the cluster are watched: the latest set seen, if it changed.
            let mut fresh = pending_apps.take();
            if let Some(rx) = app_updates.as_mut() {
                while let Ok(more) = rx.try_recv() {
                    fresh = Some(more);
                }
            }
            if let Some(fresh) = fresh.filter(|f| f[..] != apps[..]) {
                let names = |a: &[App]| a.iter().map(|a| a.name.clone()).collect::<Vec<_>>();
                tracing::info!(
                    before = ?names(&apps),
                    after = ?names(&fresh),
                    "applications changed"
                );
                // Credentials of new images are registered when the updater is built; the
                // old one's request counts carry over into the metrics.
                for c in updater.registry_stats() {
                    *carried
                        .entry(RequestLabels {
                            registry: c.registry,
                            endpoint: c.endpoint.to_owned(),
                            status: c.status,
                        })
                        .or_default() += c.count;
                }
                updater = Updater::with_secrets(
                    registries.clone(),
                    opts.state_dir.clone(),
                    &fresh,
                    secrets.clone(),
                )?
                .with_git_credentials(git_credentials.clone())
                .with_applications(live_apps.clone())
                .with_live(live.as_ref().map(as_live));
                if let Some(l) = &live {
                    l.set_apps(&updater.with_credentials(&fresh).await);
                }
                apps = Arc::new(fresh);
                shared.metrics.images_watched.set(images_watched(&apps));
                if let Ok(mut a) = shared.apps.lock() {
                    *a = apps.clone();
                }
                mine = owned(&apps, &acting);
                if let Some((tx, _)) = &deploy {
                    let _ = tx.send(DeployTrigger::Reload(updater.with_credentials(&mine).await));
                }
            }
            cycles += 1;
            let started = driftwatch_engine::now_nanos();
            let (targets, seen) = match scope.take() {
                Some((subset, seen)) => (subset, seen),
                None => (mine.clone(), started),
            };
            let cycle = tracing::Instrument::instrument(
                updater.cycle(&targets, mode),
                tracing::info_span!("cycle", cycle = cycles, applications = targets.len()),
            );
            // Losing the lease drops the cycle at its next await: a commit is pushed whole or
            // not at all, and the next leader starts with a full cycle.
            let report = tokio::select! {
                biased;
                () = lost(&mut role, &acting) => break None,
                report = cycle => report,
            };
            count(&shared, &updater, &report, started, seen, &carried);
            if let Some(store) = store.as_mut()
                && let Err(e) = store.record(&updates_of(&report, seen))
            {
                tracing::error!(error = %e, "recording history failed");
            }
            shared.ready.store(true, Ordering::Relaxed);
            shared.note_waits(&report);
            log_cycle(&report, cycles, started);
            for event in committed_events(&report) {
                shared.events.push(event);
            }
            shared.events.push(ServiceEvent::Cycle {
                cycle: cycles,
                updates: report
                    .images
                    .iter()
                    .filter(|l| l.status == Status::Updated)
                    .count(),
                errors: report
                    .images
                    .iter()
                    .filter(|l| l.status == Status::Error)
                    .count(),
                commits: report.commits.iter().map(|c| c.commit.clone()).collect(),
            });
            if let Some(observe) = &opts.on_cycle {
                observe(&report);
            }
            if let Some((tx, _)) = &deploy
                && !report.commits.is_empty()
            {
                // Deploy what was just committed now, not at the next poll.
                let _ = tx.send(DeployTrigger::Apps(
                    committed_apps(&apps, &report),
                    Some(seen),
                ));
            }
            if opts.once {
                let mut failed = report.failed() || rejected;
                if let Some(c) = &clusters {
                    // The cycle may have written live Applications (write-back-method argocd):
                    // they are deployed as they are now.
                    let now = if follow_cluster {
                        match opts.source.load().await {
                            Ok(fresh) => fresh.apps,
                            Err(e) => {
                                tracing::error!(error = %e, "reading the applications again failed; deploying them as first read");
                                apps.to_vec()
                            }
                        }
                    } else {
                        apps.to_vec()
                    };
                    failed |= crate::deploy::once(
                        &updater
                            .with_credentials(&owned(&Arc::new(now), &acting))
                            .await,
                        opts.state_dir.clone(),
                        c.clone(),
                        &shared,
                    )
                    .await;
                }
                break Some(RunOutcome { cycles, failed });
            }
            let deadline = tokio::time::Instant::now() + jittered(interval);
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => break 'cycle Some(RunOutcome { cycles, failed: false }),
                    () = lost(&mut role, &acting) => break 'cycle None,
                    () = tokio::time::sleep_until(deadline) => break,
                    Some(fresh) = next_apps(&mut app_updates) => {
                        // A new or changed Application is checked now; a relist that changed
                        // nothing waits on.
                        if fresh[..] != apps[..] {
                            pending_apps = Some(fresh);
                            break;
                        }
                    }
                    Some(first) = triggers.recv() => {
                        // Triggers that arrive together are checked together.
                        let mut pending = vec![first];
                        while let Ok(more) = triggers.try_recv() {
                            pending.push(more);
                        }
                        let mut events = Vec::new();
                        let mut asked = HashSet::new();
                        let mut seen = i128::MAX;
                        for t in pending {
                            match t {
                                Trigger::Push(more, at) => {
                                    events.extend(more);
                                    seen = seen.min(at);
                                }
                                Trigger::Refresh(names, at) => {
                                    asked.extend(names);
                                    seen = seen.min(at);
                                }
                            }
                        }
                        let mut subset = Vec::new();
                        if !events.is_empty() {
                            subset = driftwatch_engine::affected(&mine, &events);
                            tracing::info!(events = events.len(), applications = subset.len(), "registry push");
                            shared.events.push(ServiceEvent::RegistryPush {
                                events: events.len(),
                                applications: subset.len(),
                            });
                        }
                        for a in mine.iter().filter(|a| asked.contains(&a.name)) {
                            if !subset.iter().any(|s| s.name == a.name) {
                                subset.push(a.clone());
                            }
                        }
                        if !asked.is_empty() {
                            tracing::info!(applications = ?asked, "refresh asked");
                        }
                        if !subset.is_empty() {
                            scope = Some((Arc::new(subset), seen));
                        }
                        break;
                    }
                }
            }
        };
        // Stop acting before anything else: the healer at once, the deploy loop after the
        // tick in progress or, past the grace, aborted at its next await.
        if ended.is_none() {
            shared.set_role(role.borrow().clone());
            tracing::warn!(
                "lost the lease (or shards changed hands): stopping Git writes, syncs and heals"
            );
        }
        work.cancel();
        if let Ok(mut d) = shared.deploy.lock() {
            *d = None;
        }
        if let Some((tx, mut task)) = deploy {
            drop(tx);
            if tokio::time::timeout(stop_grace, &mut task).await.is_err() {
                tracing::warn!("the Git → cluster loop did not stop in time; aborting it");
                task.abort();
                let _ = task.await;
            }
        }
        match ended {
            Some(outcome) => break 'service outcome,
            None => {
                tracing::warn!("stopped acting after losing the lease; following");
                continue 'service;
            }
        }
    };
    tracing::info!(cycles = outcome.cycles, "stopping");
    // Everything else stops with the same signal; wait for it to finish what it was doing.
    shutdown.cancel();
    // The working tasks have stopped (above): only now is the Lease given up, so the next
    // leader takes over at its next look without ever overlapping this one.
    election_stop.cancel();
    if let Some(election) = election {
        let _ = election.await;
    }
    if let Some(http) = http {
        let _ = http.await;
    }
    if let Some(n) = notifications {
        n.finish(NOTIFY_GRACE).await;
    }
    Ok(outcome)
}

/// The next applications the watch sends; never, without a watch.
async fn next_apps(updates: &mut Option<mpsc::UnboundedReceiver<Vec<App>>>) -> Option<Vec<App>> {
    match updates {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Resolves when `role` is no longer `acting`: a leader turned follower, or a replica's shards
/// changed (never while it leads for good: a closed channel means nobody will take the role
/// away).
async fn lost(role: &mut watch::Receiver<Role>, acting: &Role) {
    if role.wait_for(|r| r != acting).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// The applications a replica in `role` acts on: all for a leader (the same list, not a copy),
/// its shards' with sharding.
fn owned(apps: &Arc<Vec<App>>, role: &Role) -> Arc<Vec<App>> {
    if apps.iter().all(|a| role.owns(&a.name)) {
        return apps.clone();
    }
    Arc::new(
        apps.iter()
            .filter(|a| role.owns(&a.name))
            .cloned()
            .collect(),
    )
}

/// How long a stopping service waits for queued notifications to go out.
const NOTIFY_GRACE: Duration = Duration::from_secs(5);

/// One event per commit the cycle pushed, with the image changes it carries.
fn committed_events(report: &CycleReport) -> Vec<ServiceEvent> {
    report
        .commits
        .iter()
        .map(|c| {
            let carried: Vec<_> = report
                .images
                .iter()
                .filter(|l| l.commit.as_deref() == Some(c.commit.as_str()))
                .collect();
            let mut apps: Vec<String> = carried.iter().map(|l| l.app.clone()).collect();
            apps.dedup();
            ServiceEvent::Committed {
                repo: c.repo.clone(),
                branch: c.branch.clone(),
                commit: c.commit.clone(),
                apps,
                changes: carried
                    .iter()
                    .map(|l| crate::events::ImageChange {
                        app: l.app.clone(),
                        image: l.image.clone(),
                        from: l.git.clone().unwrap_or_default(),
                        to: l.registry.clone().unwrap_or_default(),
                    })
                    .collect(),
            }
        })
        .collect()
}
