//! The Git → cluster loop's state: per application the revision last brought to the cluster,
//! and a tick that resolves each repository's head once, renders what changed, and syncs it
//! (automated) or compares it (detect-only).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use driftwatch_cluster::{
    HealEvent, HealOptions, Healer, Health, KubeClient, ObjectKey, Rendered, SyncOptions,
    SyncReport,
};
use driftwatch_engine::store::Store;
use driftwatch_engine::{App, SyncPolicy};
use driftwatch_git::repo_identity;
use tokio::sync::mpsc;

use crate::clusters::Clusters;
use crate::compare::SyncStatus;
use crate::error::Error;

/// What a tick did for one application.
#[derive(Debug)]
pub enum Outcome {
    /// Applied the revision (automated policy).
    Synced {
        app: String,
        revision: String,
        report: SyncReport,
    },
    /// Detect-only: Git and the cluster differ in these objects.
    OutOfSync {
        app: String,
        revision: String,
        objects: Vec<ObjectKey>,
    },
    /// Detect-only: the cluster is as Git says.
    InSync { app: String, revision: String },
    /// Rendering or syncing failed; the cluster was left as it was.
    Failed { app: String, error: String },
}

/// How `/status` names an object the application applied before and Git no longer has.
pub const REQUIRES_PRUNING: &str = "(requires pruning)";

/// A rollout that settled (or stopped waiting) after a sync.
#[derive(Clone, Debug)]
pub struct RolloutSettled {
    /// Application.
    pub app: String,
    /// The revision synced.
    pub revision: String,
    /// How the rollout ended (or stood when following it stopped).
    pub health: Health,
    /// Why, for the worst object.
    pub detail: String,
}

/// The last word on one application, kept for `/status`.
#[derive(Clone, Debug, Default)]
struct Board {
    revision: String,
    at: String,
    /// Detect-only: the objects that differ and their paths, from the last comparison.
    differ: Option<Vec<(ObjectKey, Vec<String>)>>,
    error: Option<String>,
    rollout: Option<(Health, String)>,
    /// Automated: objects the last sync left because prune is off (they require pruning).
    orphaned: Vec<ObjectKey>,
}

/// One application's sync status and health, as `run` serves it on `/status`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppStatus {
    /// Application.
    pub app: String,
    /// The Git revision last synced (automated) or compared (detect-only).
    pub revision: String,
    /// When, RFC 3339.
    pub at: String,
    /// Synced, OutOfSync or Unknown (not yet compared, or the last attempt failed).
    pub sync: SyncStatus,
    /// The worst health; `None` (Unknown) before any report.
    pub health: Option<Health>,
    /// Why, for the worst object, or the last error.
    pub detail: String,
    /// Objects that differ from Git, with the differing paths.
    pub out_of_sync: Vec<(String, Vec<String>)>,
    /// Whether new revisions are applied, and manual changes healed.
    pub automated: bool,
    pub self_heal: bool,
}

/// The healer of each cluster in use, by cluster name (`""`: the default cluster).
type Healers = Arc<Mutex<HashMap<String, Healer>>>;

/// A read-only view of the deployer's state, for another thread (the HTTP side).
#[derive(Clone)]
pub struct StatusView {
    apps: Arc<Mutex<Vec<(String, SyncPolicy)>>>,
    board: Arc<Mutex<HashMap<String, Board>>>,
    healers: Healers,
}

impl StatusView {
    fn healers(&self) -> Vec<Healer> {
        self.healers
            .lock()
            .map(|h| h.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Watch events the healers have judged so far (see [`Healer::events_judged`]).
    pub fn watch_events(&self) -> u64 {
        self.healers().iter().map(Healer::events_judged).sum()
    }

    /// Every application's status now: from the watches' cache for automated applications,
    /// from the last comparison for detect-only ones.
    pub fn snapshot(&self) -> Vec<AppStatus> {
        // Each application lives in one cluster, so the healers' maps do not overlap.
        let live: BTreeMap<String, driftwatch_cluster::LiveStatus> =
            self.healers().iter().flat_map(Healer::status).collect();
        let board = self.board.lock().map(|b| b.clone()).unwrap_or_default();
        let apps = self.apps.lock().map(|a| a.clone()).unwrap_or_default();
        apps.iter()
            .map(|(app, p)| {
                let b = board.get(app).cloned().unwrap_or_default();
                let mut st = AppStatus {
                    app: app.clone(),
                    revision: b.revision.clone(),
                    at: b.at.clone(),
                    sync: SyncStatus::Unknown,
                    health: None,
                    detail: String::new(),
                    out_of_sync: Vec::new(),
                    automated: p.automated,
                    self_heal: p.automated && p.self_heal,
                };
                if let Some((h, d)) = &b.rollout {
                    st.health = Some(*h);
                    st.detail = d.clone();
                }
                match (live.get(app), &b.differ) {
                    (Some(l), _) if p.automated && !b.revision.is_empty() => {
                        st.out_of_sync = l
                            .out_of_sync
                            .iter()
                            .map(|(k, f)| (k.to_string(), f.clone()))
                            .chain(
                                b.orphaned
                                    .iter()
                                    .map(|k| (k.to_string(), vec![REQUIRES_PRUNING.to_owned()])),
                            )
                            .collect();
                        st.sync = if st.out_of_sync.is_empty() {
                            SyncStatus::Synced
                        } else {
                            SyncStatus::OutOfSync
                        };
                        if l.seen > 0 {
                            st.health = Some(l.health);
                            st.detail = l.reason.clone();
                        }
                    }
                    (_, Some(differ)) => {
                        st.out_of_sync = differ
                            .iter()
                            .map(|(k, f)| (k.to_string(), f.clone()))
                            .collect();
                        st.sync = if differ.is_empty() {
                            SyncStatus::Synced
                        } else {
                            SyncStatus::OutOfSync
                        };
                    }
                    _ => {}
                }
                if let Some(e) = &b.error {
                    st.sync = SyncStatus::Unknown;
                    st.detail = e.clone();
                }
                st
            })
            .collect()
    }
}

/// Brings applications with a sync policy from Git to their clusters.
pub struct Deployer {
    board: Arc<Mutex<HashMap<String, Board>>>,
    /// The applications and their policies, as the status view sees them.
    policies: Arc<Mutex<Vec<(String, SyncPolicy)>>>,
    clusters: Clusters,
    state: PathBuf,
    apps: Vec<App>,
    synced: HashMap<String, String>,
    healers: Healers,
    /// Where every cluster's healer reports (see [`Deployer::new`]).
    heal_events: mpsc::UnboundedSender<HealEvent>,
    /// The healers' event loops, stopped with the deployer.
    heal_tasks: Vec<tokio::task::JoinHandle<()>>,
    mode: Mode,
    settled: mpsc::UnboundedSender<RolloutSettled>,
}

impl Drop for Deployer {
    fn drop(&mut self) {
        for t in &self.heal_tasks {
            t.abort();
        }
    }
}

/// How long a deployer lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// One pass (`run --once`): no watches, rollouts not followed.
    Once,
    /// A service: watches heal or report, rollouts are followed for up to `rollout_limit`.
    Continuous { rollout_limit: Duration },
}

fn policies_of(apps: &[App]) -> Vec<(String, SyncPolicy)> {
    apps.iter()
        .filter_map(|a| a.sync.clone().map(|p| (a.name.clone(), p)))
        .collect()
}

fn policy(app: &App) -> Option<&SyncPolicy> {
    app.sync.as_ref()
}

impl Deployer {
    /// A deployer for the applications that have a sync policy, on `clusters`. In
    /// [`Mode::Continuous`] each cluster in use gets a healer whose events (heals, drift,
    /// fights) arrive on the first receiver; rollout outcomes arrive on the second.
    pub fn new(
        clusters: Clusters,
        state: PathBuf,
        apps: &[App],
        mode: Mode,
    ) -> (
        Self,
        mpsc::UnboundedReceiver<HealEvent>,
        mpsc::UnboundedReceiver<RolloutSettled>,
    ) {
        let (tx, rx) = mpsc::unbounded_channel();
        let (heal_tx, heal_rx) = mpsc::unbounded_channel();
        (
            Deployer {
                board: Arc::new(Mutex::new(HashMap::new())),
                policies: Arc::new(Mutex::new(policies_of(apps))),
                clusters,
                state,
                apps: apps.iter().filter(|a| a.sync.is_some()).cloned().collect(),
                synced: HashMap::new(),
                healers: Arc::new(Mutex::new(HashMap::new())),
                heal_events: heal_tx,
                heal_tasks: Vec::new(),
                mode,
                settled: tx,
            },
            heal_rx,
            rx,
        )
    }

    /// A view of every application's status for another thread.
    pub fn status_view(&self) -> StatusView {
        StatusView {
            apps: self.policies.clone(),
            board: self.board.clone(),
            healers: self.healers.clone(),
        }
    }

    /// The client and healer of the cluster application `app` syncs to, connected (and its
    /// healer started) the first time an application needs it.
    async fn cluster_of(
        &mut self,
        app: &str,
        p: &SyncPolicy,
    ) -> Result<(Arc<KubeClient>, Healer), Error> {
        let client = self.clusters.client(app, p.cluster.as_deref()).await?;
        let name = p.cluster.clone().unwrap_or_default();
        if let Some(h) = self.healers.lock().ok().and_then(|h| h.get(&name).cloned()) {
            return Ok((client, h));
        }
        let (healer, run) = Healer::new(client.clone());
        if self.mode != Mode::Once {
            let tx = self.heal_events.clone();
            self.heal_tasks.push(tokio::spawn(async move {
                let mut report = move |e: &HealEvent| tx.send(e.clone()).is_ok();
                run.run(&mut report).await;
            }));
        }
        if let Ok(mut h) = self.healers.lock() {
            h.insert(name, healer.clone());
        }
        Ok((client, healer))
    }

    /// Takes a new set of applications (their source changed): removed ones are no longer
    /// healed or reported, new and changed ones are brought to the cluster at the next tick.
    /// Returns the names of the new and changed ones.
    pub fn set_apps(&mut self, apps: &[App]) -> HashSet<String> {
        let next: Vec<App> = apps.iter().filter(|a| a.sync.is_some()).cloned().collect();
        let before: HashMap<String, String> = self
            .apps
            .iter()
            .map(|a| (a.name.clone(), format!("{a:?}")))
            .collect();
        let mut changed = HashSet::new();
        for a in &next {
            if before.get(&a.name) != Some(&format!("{a:?}")) {
                self.synced.remove(&a.name);
                changed.insert(a.name.clone());
            }
        }
        for name in before.keys() {
            if !next.iter().any(|a| &a.name == name) {
                for h in self
                    .healers
                    .lock()
                    .map(|h| h.values().cloned().collect::<Vec<_>>())
                    .unwrap_or_default()
                {
                    h.remove(name);
                }
                self.synced.remove(name);
                if let Ok(mut b) = self.board.lock() {
                    b.remove(name);
                }
            }
        }
        self.apps = next;
        if let Ok(mut p) = self.policies.lock() {
            *p = policies_of(&self.apps);
        }
        changed
    }

    fn note(&self, app: &str, f: impl FnOnce(&mut Board)) {
        if let Ok(mut b) = self.board.lock() {
            f(b.entry(app.to_owned()).or_default());
        }
    }

    /// The applications whose repository and branch a Git push names.
    pub fn affected(&self, urls: &[String], branch: &str) -> HashSet<String> {
        let ids: HashSet<String> = urls.iter().map(|u| repo_identity(u)).collect();
        self.apps
            .iter()
            .filter(|a| ids.contains(&repo_identity(&a.repo)))
            .filter(|a| {
                let base = driftwatch_git::BranchSpec::parse(&a.branch, "main").base;
                base == branch || base == "HEAD"
            })
            .map(|a| a.name.clone())
            .collect()
    }

    /// One pass: each repository's head resolved once; applications whose head moved (or that
    /// failed before) rendered and synced; detect-only applications compared every time.
    /// `only` limits the pass to these applications.
    pub async fn tick(&mut self, only: Option<&HashSet<String>>) -> Vec<Outcome> {
        let mut groups: BTreeMap<(String, String), Vec<App>> = BTreeMap::new();
        for a in &self.apps {
            if only.is_some_and(|o| !o.contains(&a.name)) {
                continue;
            }
            groups
                .entry((a.repo.clone(), a.branch.clone()))
                .or_default()
                .push(a.clone());
        }
        // Every repository's head at once: a slow Git server delays only its own applications.
        let heads = futures_util::future::join_all(groups.values().map(|apps| {
            let state = self.state.clone();
            let first = apps[0].clone();
            async move {
                tokio::task::spawn_blocking(move || crate::revision::head(&state, &first))
                    .await
                    .map_err(|e| e.to_string())
                    .and_then(|r| r.map_err(|e| e.to_string()))
            }
        }))
        .await;
        let mut outcomes = Vec::new();
        for (apps, head) in groups.into_values().zip(heads) {
            let head = match head {
                Ok(h) => h,
                Err(error) => {
                    outcomes.extend(apps.iter().map(|a| Outcome::Failed {
                        app: a.name.clone(),
                        error: error.clone(),
                    }));
                    continue;
                }
            };
            for app in apps {
                let Some(p) = policy(&app).cloned() else {
                    continue;
                };
                if p.automated && self.synced.get(&app.name) == Some(&head) {
                    continue;
                }
                let span = tracing::info_span!(
                    "sync",
                    app = %app.name,
                    revision = %&head[..head.len().min(12)]
                );
                match tracing::Instrument::instrument(self.bring(&app, &p, &head), span).await {
                    Ok(o) => {
                        if matches!(o, Outcome::Synced { .. }) {
                            self.synced.insert(app.name.clone(), head.clone());
                        }
                        outcomes.push(o);
                    }
                    Err(e) => outcomes.push(Outcome::Failed {
                        app: app.name.clone(),
                        error: e.to_string(),
                    }),
                }
            }
        }
        let at = driftwatch_policy::Timestamp::from_unix_nanos(driftwatch_engine::now_nanos())
            .to_string();
        for o in &outcomes {
            match o {
                Outcome::Synced {
                    app,
                    revision,
                    report,
                } => self.note(app, |b| {
                    b.revision = revision.clone();
                    b.at = at.clone();
                    b.error = None;
                    b.rollout = None;
                    b.orphaned = report.orphaned.clone();
                }),
                // The differing objects and their paths were noted by the comparison.
                Outcome::OutOfSync { app, revision, .. } => self.note(app, |b| {
                    b.revision = revision.clone();
                    b.at = at.clone();
                    b.error = None;
                }),
                Outcome::InSync { app, revision } => self.note(app, |b| {
                    b.revision = revision.clone();
                    b.at = at.clone();
                    b.error = None;
                    b.differ = Some(Vec::new());
                }),
                Outcome::Failed { app, error } => self.note(app, |b| {
                    b.error = Some(error.clone());
                }),
            }
        }
        outcomes
    }

    /// Records how a rollout ended (from the receiver [`Deployer::new`] returned).
    pub fn settled(&self, s: &RolloutSettled) {
        self.note(&s.app, |b| {
            if b.revision == s.revision {
                b.rollout = Some((s.health, s.detail.clone()));
            }
        });
    }

    async fn render(&self, app: &App, head: &str) -> Result<Rendered, Error> {
        let state = self.state.clone();
        let (app, head) = (app.clone(), head.to_owned());
        tokio::task::spawn_blocking(move || crate::revision::render_at(&state, &app, &head))
            .await
            .map_err(|e| Error::Io {
                path: "render".to_owned(),
                reason: e.to_string(),
            })?
    }

    async fn bring(&mut self, app: &App, p: &SyncPolicy, head: &str) -> Result<Outcome, Error> {
        let (client, healer) = self.cluster_of(&app.name, p).await?;
        let rendered = self.render(app, head).await?;
        if !p.automated {
            let ignore = crate::ignore_rules(app);
            let comparison = crate::compare::compare(
                &client,
                &app.name,
                &rendered.objects,
                &crate::inventory::load(&self.state, &app.name),
                &p.namespace,
                &ignore,
            )
            .await?;
            let differ: Vec<(ObjectKey, Vec<String>)> = comparison
                .differences()
                .into_iter()
                .map(|d| {
                    let fields = if d.orphan {
                        vec![REQUIRES_PRUNING.to_owned()]
                    } else {
                        d.fields.iter().map(|f| f.label()).collect()
                    };
                    (d.key.clone(), fields)
                })
                .collect();
            self.note(&app.name, |b| b.differ = Some(differ.clone()));
            let differ: Vec<ObjectKey> = differ.into_iter().map(|(k, _)| k).collect();
            return Ok(if differ.is_empty() {
                Outcome::InSync {
                    app: app.name.clone(),
                    revision: head.to_owned(),
                }
            } else {
                Outcome::OutOfSync {
                    app: app.name.clone(),
                    revision: head.to_owned(),
                    objects: differ,
                }
            });
        }
        let mut heal = HealOptions::new(&app.name, &p.namespace);
        heal.heal = p.self_heal;
        heal.ignore = crate::ignore_rules(app);
        // The healer learns the new revision before it is applied (see Healer::set).
        if self.mode != Mode::Once {
            healer.set(&rendered.objects, &heal).await;
        }
        let opts = SyncOptions {
            app: app.name.clone(),
            namespace: p.namespace.clone(),
            prune: p.prune,
            allow_empty: p.allow_empty,
            dry_run: false,
            ignore: crate::ignore_rules(app),
        };
        let report = crate::apply(&client, &self.state, &rendered.objects, &opts).await?;
        if self.mode != Mode::Once {
            healer.synced(&app.name, &report.versions);
        }
        let (health, detail) =
            crate::rollout::health(&client, &rendered.objects, &p.namespace).await?;
        crate::rollout::record(
            &self.state,
            &app.name,
            head,
            &report,
            &health.to_string(),
            detail,
        )?;
        self.follow(app, head, healer);
        Ok(Outcome::Synced {
            app: app.name.clone(),
            revision: head.to_owned(),
            report,
        })
    }

    /// Follows the rollout in the background, from the watches' cache (no polling of the API
    /// server), and records how it ended. One pass does not follow.
    fn follow(&self, app: &App, head: &str, healer: Healer) {
        let Mode::Continuous { rollout_limit } = self.mode else {
            return;
        };
        let state = self.state.clone();
        let tx = self.settled.clone();
        let (app, head, limit) = (app.name.clone(), head.to_owned(), rollout_limit);
        tokio::spawn(async move {
            let deadline = tokio::time::Instant::now() + limit;
            let (health, detail) = loop {
                let now = healer.status().remove(&app);
                let Some(st) = now else { return };
                let settled = st.seen == st.objects
                    && matches!(
                        st.health,
                        Health::Healthy | Health::Degraded | Health::Suspended
                    );
                if settled {
                    break (st.health, st.reason);
                }
                if tokio::time::Instant::now() >= deadline {
                    break (
                        st.health,
                        format!(
                            "still {} after {} s: {}",
                            st.health,
                            limit.as_secs(),
                            st.reason
                        ),
                    );
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            };
            if let Ok(mut store) = Store::open(&state) {
                let _ = store.settle_sync(&app, &head, &health.to_string(), &detail);
            }
            let _ = tx.send(RolloutSettled {
                app,
                revision: head,
                health,
                detail,
            });
        });
    }
}
