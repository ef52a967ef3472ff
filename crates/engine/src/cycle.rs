//! One updater cycle as a staged pipeline: scan the registries (each repository once), choose
//! a tag per image (pure), apply the edits to each repository's files in memory, and — unless
//! only checking — commit and push one commit per repository and branch.

use std::collections::BTreeMap;
use std::path::PathBuf;

use driftwatch_git::{Change, FileWrite, Mirror, Outcome, Plan, UpdateRequest, commit_message};
use driftwatch_manifest::{ImageChange, previous_tag, set_image};
use driftwatch_policy::Strategy;
use driftwatch_registry::{Client, Needs, Options, RegistriesConf, Scanner};
use futures_util::StreamExt as _;
use serde::Serialize;

use crate::error::Error;
use crate::model::{App, TrackedImage};

/// What a cycle does with what it finds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Report only.
    Check,
    /// Report the plan, write nothing.
    DryRun,
    /// Commit and push.
    Apply,
}

/// How one image stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Git already says what the registry's best is.
    InSync,
    /// The registry has something Git does not say (drift).
    UpdateAvailable,
    /// This cycle wrote the update to Git.
    Updated,
    /// No tag qualifies in the registry.
    NoCandidate,
    /// Someone set the image back from the value driftwatch wrote (nothing at or below that
    /// value is written until a newer one appears or the hold is released), or the update was
    /// rejected: see `held`.
    Held,
    /// The update waits for `driftwatch approve` (`approval: required`): see `held`.
    Pending,
    /// A promoted image waits for its upstream application (the soak, a rollout): see `held`.
    Waiting,
    /// A promoted image's upstream is Degraded, Missing, OutOfSync or does not run the image:
    /// see `held`.
    Blocked,
    /// Something failed; see `error`.
    Error,
}

/// What a line of the drift report follows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// A container image's tag.
    #[default]
    Image,
    /// A Helm chart's version (the image column is `chart:oci://…`).
    Chart,
}

/// One tracked image's line of the drift report.
#[derive(Clone, Debug, Serialize)]
pub struct ImageReport {
    /// Application.
    pub app: String,
    /// Image or chart.
    pub kind: Kind,
    /// The image as configured (`chart:oci://…` for a chart).
    pub image: String,
    /// The registry's best by the policy (`tag`, or `tag@digest` for digest); for a promoted
    /// image, what its upstream runs (while it soaks: the candidate).
    pub registry: Option<String>,
    /// What Git said before this cycle (the replaced value), when it differed.
    pub git: Option<String>,
    /// Where Git keeps it.
    pub file: String,
    /// The verdict.
    pub status: Status,
    /// Why it failed.
    pub error: Option<String>,
    /// The commit that carried the update, when this cycle made one.
    pub commit: Option<String>,
    /// The line of the value in `file`, when an update is planned or made.
    pub line: Option<usize>,
    /// Why the update waits ([`Status::Held`], [`Status::Pending`]): someone set the image
    /// back (in which commit, by whom), or an approval is missing or was refused.
    pub held: Option<String>,
    /// What a person can do to end the wait, when something can: approve (or reject) a
    /// pending approval, release a rollback hold. Not in the JSON report (`held` says it in
    /// words); the status page offers the matching buttons from it.
    #[serde(skip)]
    pub lift: Option<Lift>,
}

/// What ends a wait by hand ([`ImageReport::lift`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lift {
    /// `driftwatch approve` writes it, `driftwatch reject` refuses it.
    Approve,
    /// `driftwatch release` lifts a rollback's hold.
    Release,
}

/// A commit this cycle pushed.
#[derive(Clone, Debug, Serialize)]
pub struct CommitReport {
    /// Repository (credentials redacted).
    pub repo: String,
    /// Branch pushed to.
    pub branch: String,
    /// Commit id.
    pub commit: String,
    /// Push attempts.
    pub attempts: u32,
    /// When the push was accepted (Unix nanoseconds): each commit's own time, not the cycle's
    /// end, so push-to-commit latency is not inflated by other repositories' writes.
    pub pushed_at: i128,
}

/// Everything a cycle found and did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CycleReport {
    /// One line per tracked image.
    pub images: Vec<ImageReport>,
    /// Commits pushed.
    pub commits: Vec<CommitReport>,
    /// Registry requests made.
    pub registry_requests: u64,
    /// When the scan and choice finished (Unix nanoseconds).
    pub decided_at: i128,
    /// When the cycle finished (Unix nanoseconds).
    pub finished_at: i128,
    /// Applications whose Git side was not read again: their repository head, configuration
    /// and chosen tags were those of an earlier cycle, whose verdicts were reused.
    pub unchanged_apps: usize,
}

/// Now, as Unix nanoseconds.
pub fn now_nanos() -> i128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i128::try_from(d.as_nanos()).unwrap_or(i128::MAX))
}

impl CycleReport {
    /// True when some image drifts (or failed, which hides whether it drifts).
    pub fn drifts(&self) -> bool {
        self.images
            .iter()
            .any(|i| matches!(i.status, Status::UpdateAvailable))
    }

    /// True when some image could not be checked.
    pub fn failed(&self) -> bool {
        self.images.iter().any(|i| i.status == Status::Error)
    }
}

/// The long-lived updater: registry client with its caches, and where mirrors live.
pub struct Updater {
    scanner: Scanner,
    state_dir: PathBuf,
    store: std::sync::Mutex<Option<crate::store::Store>>,
    /// The last evaluation of each repository and branch, for incremental cycles.
    memo: std::sync::Mutex<std::collections::HashMap<(String, String), Memo>>,
    /// The modes whose evaluations were taken from the store (once per process).
    memos_loaded: std::sync::Mutex<Vec<Mode>>,
    /// Evaluations to write to the store (or, `None`, to forget) at the end of the cycle, in
    /// one transaction rather than one per repository.
    memo_writes: std::sync::Mutex<Vec<crate::store::MemoWrite>>,
    /// Every this many cycles the memo is ignored (a full pass); 0 or 1: always.
    full_pass_every: u64,
    /// Cycles run, for `full_pass_every`.
    cycles: std::sync::atomic::AtomicU64,
    /// Reads the Git credentials of applications that take them from the cluster.
    git_credentials: Option<crate::model::GitCredentials>,
    /// Writes the live Applications of `write-back-method: argocd`.
    applications: Option<crate::model::Applications>,
    /// Reads upstream applications' live state for promoted images.
    live: Option<crate::promote::Live>,
}

/// Cycles between full passes by default: a safety net under the incremental cycles, whose
/// verdicts are a pure function of what the fingerprint covers.
pub const FULL_PASS_EVERY: u64 = 10;

/// What one repository and branch's Git side gave for a fingerprint of everything it reads:
/// the head commit, the members' configuration, the chosen tags and the mode.
struct Memo {
    fingerprint: [u8; 32],
    /// Per image: (member position in the group, image index, replaced value, changed, line).
    results: Vec<ImageEdit>,
}

struct Desired {
    change: ImageChange,
    shown: String,
    /// What decides whether writing it would undo someone's rollback.
    hold: crate::hold::HoldInput,
    /// Why a newer tag was passed over (too young for `minimumReleaseAge`).
    note: Option<String>,
}

/// Reads a file of the repository at the commit being edited.
type Reader<'a> = dyn Fn(&str) -> Result<Option<Vec<u8>>, driftwatch_git::Error> + 'a;

/// The in-memory edit of one repository: files to write, each app's changes, and per image
/// (app index, image index, replaced value, changed).
struct Edited {
    writes: Vec<FileWrite>,
    per_app: Vec<(usize, Vec<Change>)>,
    results: Vec<ImageEdit>,
}

/// An [`ImageEdit`] without a wait, as the store keeps it.
type StoredEdit = (usize, usize, Option<String>, bool, Option<usize>);

/// What editing one image did: (app index, image index, replaced value, changed, its line).
type ImageEdit = (
    usize,
    usize,
    Option<String>,
    bool,
    Option<usize>,
    Option<Waiting>,
);

/// An update that waits ([`crate::hold::wait`]), the file it would edit, and — for a rollback —
/// the commit that set the image back and its author.
#[derive(Clone, Debug)]
struct Waiting {
    wait: crate::hold::Wait,
    path: String,
    by: Option<(String, String)>,
}

impl Waiting {
    fn status(&self) -> Status {
        match self.wait {
            crate::hold::Wait::Pending { .. } | crate::hold::Wait::Window { .. } => Status::Pending,
            _ => Status::Held,
        }
    }

    fn lift(&self) -> Option<Lift> {
        match self.wait {
            crate::hold::Wait::Pending { .. } => Some(Lift::Approve),
            crate::hold::Wait::Rollback(_) => Some(Lift::Release),
            _ => None,
        }
    }

    fn describe(&self) -> String {
        self.wait
            .describe(self.by.as_ref().map(|(i, a)| (i.as_str(), a.as_str())))
    }
}

/// A promoted image that waits or is blocked: its status, why, and the candidate it waits to
/// promote (what the upstream runs while it soaks).
type PromotionLine = (Status, String, Option<String>);

/// What writing one repository and branch gave: the commit pushed, each image's edit, and
/// whether the verdicts were reused from an earlier cycle.
type Written = Result<(Option<CommitReport>, Vec<ImageEdit>, bool), Error>;

/// Repositories written at once. Each is mostly `git` processes (fetch, cat-file, push), so a
/// few more than the cores keeps them busy while others wait on the remote.
const WRITERS: usize = 4;

impl Updater {
    /// An updater over these registries, keeping Git mirrors under `state_dir`. Images of `apps`
    /// with credentials of their own get them for their repository only.
    pub fn new(
        registries: RegistriesConf,
        state_dir: PathBuf,
        apps: &[App],
    ) -> Result<Self, Error> {
        Self::with_secrets(registries, state_dir, apps, None)
    }

    /// An updater as [`Updater::new`] makes, reading the Kubernetes Secrets of `pullsecret:`
    /// and `secret:` credentials through `secrets` (Applications read from the cluster).
    pub fn with_secrets(
        registries: RegistriesConf,
        state_dir: PathBuf,
        apps: &[App],
        secrets: Option<driftwatch_registry::Secrets>,
    ) -> Result<Self, Error> {
        let mut registries = registries;
        for img in apps.iter().flat_map(|a| &a.images) {
            if let Some(c) = &img.credentials {
                registries.with_repository_credentials(&img.image, img.implicit_registry, c);
            }
        }
        let client = Client::new(
            registries,
            Options {
                secrets,
                ..Options::default()
            },
        )?;
        let scanner = Scanner::new(client);
        // Registry metadata per digest survives restarts, so `run --once` from cron does not
        // fetch the same config blobs every time. A store that cannot open only costs requests.
        let store = crate::store::Store::open(&state_dir).ok();
        if let Some(s) = &store {
            scanner.import(s.load_digest_meta().unwrap_or_default());
        }
        Ok(Updater {
            scanner,
            state_dir,
            store: std::sync::Mutex::new(store),
            memo: std::sync::Mutex::new(std::collections::HashMap::new()),
            memos_loaded: std::sync::Mutex::new(Vec::new()),
            memo_writes: std::sync::Mutex::new(Vec::new()),
            full_pass_every: FULL_PASS_EVERY,
            cycles: std::sync::atomic::AtomicU64::new(0),
            git_credentials: None,
            applications: None,
            live: None,
        })
    }

    /// Re-reads every repository every `n` cycles (the first cycle always does); in between,
    /// a repository and branch whose head, applications and chosen tags are those of its last
    /// evaluation keeps that evaluation's verdicts without reading or editing a file. `0` or
    /// `1` turn incremental cycles off.
    pub fn full_pass_every(mut self, n: u64) -> Self {
        self.full_pass_every = n;
        self
    }

    /// The same updater, writing the tags of `write-back-method: argocd` applications into
    /// their live Argo CD Application through `writer`.
    pub fn with_applications(mut self, writer: Option<crate::model::Applications>) -> Self {
        self.applications = writer;
        self
    }

    /// `write-back-method: argocd`: the application's new tags set in its live Argo CD
    /// Application, with argocd-image-updater's own merge of `kustomize.images` and
    /// `helm.parameters` (the `.argocd-source` editor, run on the live values), and nothing
    /// else touched. The lines of `app` are filled in as a commit's would be.
    async fn write_live(
        &self,
        app: &App,
        desired: &[Result<Option<Desired>, String>],
        lines: &mut [ImageReport],
        mode: Mode,
    ) {
        let fail = |lines: &mut [ImageReport], why: String| {
            for line in lines.iter_mut() {
                if line.status != Status::NoCandidate && line.status != Status::Error {
                    line.status = Status::Error;
                    line.error = Some(why.clone());
                }
            }
        };
        let who = format!("Application {}/{}", app.namespace, app.name);
        let Some(writer) = &self.applications else {
            fail(
                lines,
                format!("{who}: write-back-method argocd needs the cluster it was read from"),
            );
            return;
        };
        for line in lines.iter_mut() {
            line.file.clone_from(&who);
        }
        if !desired.iter().any(|d| matches!(d, Ok(Some(_)))) {
            return;
        }
        let (source, version) = match writer.0.source(&app.namespace, &app.name).await {
            Ok(found) => found,
            Err(e) => return fail(lines, e),
        };
        let mut text = live_overrides(&source);
        // The editor knows the file by this name: argocd-image-updater's override file, whose
        // `kustomize`/`helm` keys are the Application's `spec.source` ones.
        let file = ".argocd-source.yaml";
        let mut changed = Vec::new();
        let mut images_changed = false;
        // The Application's own chart: its `spec.source.targetRevision`.
        let mut chart_version = None;
        for (j, (img, d)) in app.images.iter().zip(desired).enumerate() {
            let Ok(Some(d)) = d else { continue };
            if img.is_chart() {
                let live = source
                    .get("targetRevision")
                    .and_then(serde_json::Value::as_str)
                    .map(str::to_owned);
                if live.as_deref() != Some(d.shown.as_str()) {
                    chart_version = Some(d.shown.clone());
                    changed.push(j);
                }
                lines[j].git = live;
                continue;
            }
            match set_image(&text, file, &img.target, &d.change) {
                Ok(out) => {
                    let old = previous_tag(&out, &d.change.image);
                    if out.changed {
                        lines[j].git = old;
                        text = out.text;
                        changed.push(j);
                        images_changed = true;
                    } else {
                        lines[j].git = lines[j].registry.clone();
                    }
                }
                Err(e) => {
                    lines[j].status = Status::Error;
                    lines[j].error = Some(format!("{who}: {e}"));
                }
            }
        }
        if changed.is_empty() {
            return;
        }
        if mode == Mode::Apply {
            let mut fields = if images_changed {
                match overrides_fields(&text, app) {
                    Ok(f) => f,
                    Err(e) => return fail(lines, format!("{who}: {e}")),
                }
            } else {
                serde_json::json!({})
            };
            if let Some(v) = chart_version {
                fields["targetRevision"] = serde_json::Value::String(v);
            }
            let note = format!(
                "Successfully updated application {}: {}",
                app.name,
                changed
                    .iter()
                    .map(|&j| format!(
                        "{} {} -> {}",
                        lines[j].image,
                        lines[j].git.as_deref().unwrap_or("(none)"),
                        lines[j].registry.as_deref().unwrap_or("-")
                    ))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            if let Err(e) = writer
                .0
                .set(&app.namespace, &app.name, &version, fields, &note)
                .await
            {
                return fail(lines, e);
            }
        }
        for j in changed {
            lines[j].status = if mode == Mode::Apply {
                Status::Updated
            } else {
                Status::UpdateAvailable
            };
        }
    }

    /// The same updater, reading the live state of promoted images' upstream applications
    /// through `live` (without it, a promoted image waits and says it needs the cluster).
    pub fn with_live(mut self, live: Option<crate::promote::Live>) -> Self {
        self.live = live;
        self
    }

    /// One promoted image's decision, and the value the upstream runs Synced and Healthy (the
    /// candidate, while it soaks): the upstream's live state through the provider, the soak
    /// record from the store (kept again as the decision says). `seen` holds what this cycle
    /// already observed, so several images following one upstream read it once.
    async fn promotion(
        &self,
        img: &TrackedImage,
        p: &crate::promote::Promote,
        seen: &mut std::collections::HashMap<
            (String, String),
            Result<crate::promote::Observation, String>,
        >,
    ) -> (crate::promote::Decision, Option<String>) {
        use crate::promote::{Decision, decide, needs_cluster};
        let Some(live) = &self.live else {
            return (Decision::Wait(needs_cluster(&p.from)), None);
        };
        let name = img.image.name();
        let key = (p.from.clone(), name.clone());
        let observed = match seen.get(&key) {
            Some(o) => o.clone(),
            None => {
                let o = live.0.observe(&p.from, &img.image).await;
                seen.insert(key, o.clone());
                o
            }
        };
        let soaking = self
            .store
            .lock()
            .ok()
            .and_then(|g| g.as_ref().and_then(|s| s.soaking(&p.from, &name).ok()))
            .flatten();
        let (decision, keep) = decide(
            p,
            &name,
            observed.as_ref().map_err(String::as_str),
            soaking.as_ref(),
            now_nanos(),
        );
        if keep != soaking
            && let Ok(mut guard) = self.store.lock()
            && let Some(store) = guard.as_mut()
            && let Err(e) = store.set_soaking(&p.from, &name, keep.as_ref())
        {
            tracing::warn!(upstream = %p.from, image = %name, error = %e, "soak record not kept");
        }
        (decision, keep.map(|k| k.value))
    }

    /// The same updater, reading the Git credentials of applications that take them from the
    /// cluster (`git_credentials` set) through `reader` before each cycle's writes.
    pub fn with_git_credentials(mut self, reader: Option<crate::model::GitCredentials>) -> Self {
        self.git_credentials = reader;
        self
    }

    /// `apps` with their Git credentials read where they come from, for what else reads their
    /// repositories (Git → cluster); an application whose credentials cannot be read keeps
    /// none, and the reason is logged naming it (its cycle reports it too).
    pub async fn with_credentials(&self, apps: &[App]) -> Vec<App> {
        let (resolved, failed) = self.read_git_credentials(apps).await;
        for why in failed.values() {
            tracing::warn!(error = %why, "Git credentials not read");
        }
        resolved.into_owned()
    }

    /// `apps` with their Git credentials read where they come from; an application whose
    /// credentials cannot be read is returned with the reason (it is reported, not written).
    /// Borrowed when no application takes its credentials from the cluster: a copy of 100,000
    /// images each cycle would be most of the service's memory.
    async fn read_git_credentials<'a>(
        &self,
        apps: &'a [App],
    ) -> (std::borrow::Cow<'a, [App]>, BTreeMap<usize, String>) {
        let mut failed = BTreeMap::new();
        if apps.iter().all(|a| a.git_credentials.is_none()) {
            return (std::borrow::Cow::Borrowed(apps), failed);
        }
        let mut out = apps.to_vec();
        let key_dir = self.state_dir.join("git-keys");
        // One read per (source, repository) in a cycle, however many applications share it.
        let mut seen: BTreeMap<(String, String), Result<driftwatch_git::Auth, String>> =
            BTreeMap::new();
        for (i, app) in out.iter_mut().enumerate() {
            let Some(from) = &app.git_credentials else {
                continue;
            };
            let key = (format!("{from:?} {}", app.namespace), app.repo.clone());
            let read = match seen.get(&key) {
                Some(r) => r.clone(),
                None => {
                    let r = match &self.git_credentials {
                        Some(reader) => {
                            reader
                                .0
                                .read(from, &app.repo, &app.namespace, &key_dir)
                                .await
                        }
                        None => Err("Git credentials from Kubernetes Secrets need the cluster \
                                     the Applications come from"
                            .to_owned()),
                    };
                    seen.insert(key, r.clone());
                    r
                }
            };
            match read {
                Ok(auth) => app.auth = auth,
                Err(e) => {
                    let what = match from {
                        crate::model::GitCredentialsFrom::Secret { namespace, name } => {
                            format!("git:secret:{namespace}/{name}")
                        }
                        crate::model::GitCredentialsFrom::RepoCreds { .. } => {
                            "git:repocreds".to_owned()
                        }
                    };
                    failed.insert(
                        i,
                        format!("Application {}: Git credentials {what}: {e}", app.name),
                    );
                }
            }
        }
        (std::borrow::Cow::Owned(out), failed)
    }

    /// Request counters by registry, endpoint and status, since the updater started.
    pub fn registry_stats(&self) -> Vec<driftwatch_registry::Count> {
        self.scanner.client().stats().snapshot()
    }

    /// The digest `tag` of `image` points at in its registry now (one manifest HEAD).
    pub async fn digest_of(&self, image: &TrackedImage, tag: &str) -> Result<String, Error> {
        let client = self.scanner.client();
        let ep = client.endpoint(&image.image, image.implicit_registry);
        let digest = client.manifest_digest(&ep, tag).await?;
        Ok(digest.to_string())
    }

    /// Registry requests made so far.
    pub fn registry_requests(&self) -> u64 {
        self.scanner.client().stats().total()
    }

    /// Runs one cycle over `apps`. A failing image or repository is reported and never stops
    /// the others. The write-back stage runs `git` processes: it moves to a blocking section
    /// ([`tokio::task::block_in_place`]), so this must run on a multi-threaded runtime.
    pub async fn cycle(&self, apps: &[App], mode: Mode) -> CycleReport {
        let before = self.registry_requests();
        let mut report = CycleReport::default();
        let n = self
            .cycles
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // With a state store the cycles are counted there, across processes: a `check` run
        // again and again is always its own process's first cycle, and takes the evaluations
        // an earlier one left (a full pass still comes every `full_pass_every` cycles).
        let counted = self.store.lock().ok().and_then(|mut g| {
            g.as_mut()
                .and_then(|s| s.next_cycle(&format!("{mode:?}")).ok())
        });
        let n = counted.unwrap_or(n);
        let full = self.full_pass_every <= 1 || n.is_multiple_of(self.full_pass_every);
        if !full && counted.is_some() {
            self.load_memos(mode);
        }
        // Every mode reads Git (what it holds now), so every mode needs the credentials.
        let (resolved, no_credentials) = self.read_git_credentials(apps).await;
        let apps = &resolved[..];
        // Stage 1: scan and choose, each repository listed once however many apps track it.
        // Images are scanned concurrently; the client bounds requests per registry.
        let scan = self.scanner.cycle();
        let chosen: Vec<_> = futures_util::stream::iter(apps.iter().flat_map(|a| &a.images))
            .map(|img| {
                tracing::Instrument::instrument(
                    choose(&scan, img),
                    tracing::debug_span!("image", image = %img.written),
                )
            })
            .buffered(64)
            .collect()
            .await;
        let mut chosen = chosen.into_iter();
        let mut desired: Vec<Vec<Result<Option<Desired>, String>>> = apps
            .iter()
            .map(|a| chosen.by_ref().take(a.images.len()).collect())
            .collect();
        // Without its credentials an application is not written; the others go on.
        for (&i, why) in &no_credentials {
            for d in &mut desired[i] {
                if d.is_ok() {
                    *d = Err(why.clone());
                }
            }
        }
        // Promoted images follow their upstream's live image, not the registry.
        // Per image: its status, why, and the candidate it waits to promote.
        let mut promotions: Vec<Vec<Option<PromotionLine>>> =
            apps.iter().map(|a| vec![None; a.images.len()]).collect();
        let mut seen = std::collections::HashMap::new();
        for (i, app) in apps.iter().enumerate() {
            for (j, img) in app.images.iter().enumerate() {
                let Some(p) = &img.promote else { continue };
                if desired[i][j].is_err() {
                    continue;
                }
                let (decision, candidate) = self.promotion(img, p, &mut seen).await;
                match decision {
                    crate::promote::Decision::Promote { tag, digest } => {
                        let digest = match digest.filter(|_| p.pin_digest) {
                            None => None,
                            Some(d) => match driftwatch_policy::Digest::parse(&d) {
                                Ok(d) => Some(d),
                                Err(e) => {
                                    promotions[i][j] = Some((
                                        Status::Blocked,
                                        format!("blocked: {} runs digest {d:?}: {e}", p.from),
                                        None,
                                    ));
                                    continue;
                                }
                            },
                        };
                        desired[i][j] = Ok(Some(Desired {
                            shown: match &digest {
                                Some(d) => format!("{tag}@{d}"),
                                None => tag.clone(),
                            },
                            change: change_for(img, tag, digest),
                            hold: crate::hold::HoldInput::default(),
                            note: None,
                        }));
                    }
                    crate::promote::Decision::Wait(why) => {
                        promotions[i][j] = Some((Status::Waiting, why, candidate));
                    }
                    crate::promote::Decision::Blocked(why) => {
                        promotions[i][j] = Some((Status::Blocked, why, None));
                    }
                }
            }
        }
        // What each image's history says: a value Git no longer holds was set back by someone.
        if let Ok(guard) = self.store.lock()
            && let Some(store) = guard.as_ref()
        {
            // One read of the history for the whole cycle; releases and decisions are read
            // only for the images that have history or need approval.
            let written = store.last_written_all().unwrap_or_default();
            let released_all = store.released_all().unwrap_or_default();
            for (i, app) in apps.iter().enumerate() {
                for (j, img) in app.images.iter().enumerate() {
                    let Ok(Some(d)) = &mut desired[i][j] else {
                        continue;
                    };
                    let last = written
                        .get(&(app.name.clone(), img.written.clone()))
                        .cloned();
                    let released = last.as_deref().is_some_and(|from| {
                        released_all.contains(&(
                            app.name.clone(),
                            img.written.clone(),
                            from.to_owned(),
                        ))
                    });
                    let decision = if img.approval_required {
                        store
                            .decision(&app.name, &img.written, &d.shown)
                            .ok()
                            .flatten()
                    } else {
                        None
                    };
                    d.hold = crate::hold::HoldInput {
                        last_written: last,
                        released,
                        approval_required: img.approval_required,
                        decision,
                        window_closed: None,
                    };
                }
            }
        }
        // Outside its update windows an application's updates wait (and say until when).
        let now = now_nanos();
        for (i, app) in apps.iter().enumerate() {
            let windows: Vec<crate::window::Window> = app
                .update_windows
                .iter()
                .map(|w| w.window.clone())
                .collect();
            if let Err(why) = crate::window::allowed(&windows, now) {
                for d in desired[i].iter_mut().flatten().flatten() {
                    d.hold.window_closed = Some(why.clone());
                }
            }
        }
        report.decided_at = now_nanos();
        // Updates noted before a push that nothing recorded since (the process died between
        // the push and the history write): each repository's writer settles its own.
        let unsettled: Vec<crate::store::Update> = self
            .store
            .lock()
            .ok()
            .and_then(|g| g.as_ref().map(|s| s.unsettled().unwrap_or_default()))
            .unwrap_or_default();
        // Stage 2: per repository and branch, edit in memory; then commit and push once.
        let mut groups = group_by_branch(apps, |app| {
            // An application that writes its live Application reads no branch (and a chart's
            // may name no repository at all).
            if app.write_back != crate::model::WriteBack::Git {
                return "HEAD".to_owned();
            }
            Mirror::open(&self.state_dir, &app.repo, app.auth.clone())
                .and_then(|m| m.resolve_branch("HEAD"))
                .unwrap_or_else(|_| "HEAD".to_owned())
        });
        // An application without its credentials is not written (its lines say why); one
        // that writes its live Application makes no commit.
        for (_, members) in &mut groups {
            members.retain(|i| {
                !no_credentials.contains_key(i)
                    && apps[*i].write_back == crate::model::WriteBack::Git
            });
        }
        groups.retain(|(_, members)| !members.is_empty());
        let mut lines: Vec<Vec<ImageReport>> = apps
            .iter()
            .map(|app| {
                app.images
                    .iter()
                    .map(|img| ImageReport {
                        app: app.name.clone(),
                        kind: if img.is_chart() {
                            Kind::Chart
                        } else {
                            Kind::Image
                        },
                        image: img.written.clone(),
                        registry: None,
                        git: None,
                        file: img.file.clone().unwrap_or_else(|| app.file.clone()),
                        status: Status::InSync,
                        error: None,
                        commit: None,
                        line: None,
                        held: None,
                        lift: None,
                    })
                    .collect()
            })
            .collect();
        for (i, per_image) in desired.iter().enumerate() {
            for (j, d) in per_image.iter().enumerate() {
                match d {
                    Ok(Some(d)) => {
                        lines[i][j].registry = Some(d.shown.clone());
                        lines[i][j].held.clone_from(&d.note);
                    }
                    Ok(None) => lines[i][j].status = Status::NoCandidate,
                    Err(e) => {
                        lines[i][j].status = Status::Error;
                        lines[i][j].error = Some(e.clone());
                    }
                }
                if let Some((status, why, candidate)) = &promotions[i][j] {
                    lines[i][j].status = *status;
                    lines[i][j].held = Some(why.clone());
                    lines[i][j].registry.clone_from(candidate);
                }
            }
        }
        // Repositories are written in parallel by a few workers, each taking the next
        // repository when it finishes one, so a slow repository holds up only its own worker;
        // each is one commit.
        let slots: Vec<std::sync::Mutex<Option<Written>>> =
            groups.iter().map(|_| std::sync::Mutex::new(None)).collect();
        let next = std::sync::atomic::AtomicUsize::new(0);
        let parent = tracing::Span::current();
        tokio::task::block_in_place(|| {
            std::thread::scope(|scope| {
                let workers: Vec<_> = (0..WRITERS.min(groups.len()))
                    .map(|_| {
                        scope.spawn(|| {
                            loop {
                                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                                let Some(((repo, branch), members)) = groups.get(i) else {
                                    break;
                                };
                                // Threads do not inherit the cycle's span: it is named as the
                                // parent of the repository's.
                                let _span = tracing::info_span!(
                                    parent: &parent,
                                    "write",
                                    repo = %driftwatch_git::redact_url(repo),
                                    branch = %branch
                                )
                                .entered();
                                let written = self.write(
                                    repo, branch, apps, members, &desired, mode, full, &unsettled,
                                );
                                if let Ok(mut slot) = slots[i].lock() {
                                    *slot = Some(written);
                                }
                            }
                        })
                    })
                    .collect();
                // Joined here so a panicking worker is reported below, not re-raised by the
                // scope; the repositories it did not finish have no result.
                for w in workers {
                    let _ = w.join();
                }
            });
        });
        let outcomes = slots.into_iter().map(|slot| {
            slot.into_inner().ok().flatten().unwrap_or_else(|| {
                Err(Error::Read {
                    file: "write-back".to_owned(),
                    reason: "a write-back thread panicked".to_owned(),
                })
            })
        });
        for (((_, _), members), result) in groups.iter().zip(outcomes) {
            let result = result.map(|(commit, edits, reused)| {
                if reused {
                    report.unchanged_apps += members.len();
                }
                for (i, j, old, changed, at, hold) in edits {
                    let line = &mut lines[i][j];
                    if let Some(w) = hold {
                        line.git = old;
                        line.line = at;
                        line.status = w.status();
                        line.held = Some(w.describe());
                        line.lift = w.lift();
                    } else if changed {
                        line.git = old;
                        line.line = at;
                        line.status = if mode == Mode::Apply {
                            Status::Updated
                        } else {
                            Status::UpdateAvailable
                        };
                    } else {
                        line.git = line.registry.clone();
                    }
                }
                commit
            });
            match result {
                Ok(Some(commit)) => {
                    for &i in members {
                        for line in &mut lines[i] {
                            if line.status == Status::Updated {
                                line.commit = Some(commit.commit.clone());
                            }
                        }
                    }
                    report.commits.push(commit);
                }
                Ok(None) => {}
                Err(e) => {
                    for &i in members {
                        for line in &mut lines[i] {
                            if !matches!(
                                line.status,
                                Status::NoCandidate | Status::Waiting | Status::Blocked
                            ) {
                                line.status = Status::Error;
                                line.error = Some(e.to_string());
                            }
                        }
                    }
                }
            }
        }
        for (i, app) in apps.iter().enumerate() {
            if app.write_back == crate::model::WriteBack::Application {
                self.write_live(app, &desired[i], &mut lines[i], mode).await;
            }
        }
        report.images = lines.into_iter().flatten().collect();
        report.registry_requests = self.registry_requests() - before;
        // Taken whether or not a store is open, so they never pile up.
        let writes = self
            .memo_writes
            .lock()
            .map(|mut w| std::mem::take(&mut *w))
            .unwrap_or_default();
        if let Ok(mut guard) = self.store.lock()
            && let Some(store) = guard.as_mut()
        {
            let _ = store.save_digest_meta(&self.scanner.export());
            if let Err(e) = store.set_memos(&format!("{mode:?}"), &writes) {
                // Only a later process's first cycle is slower for it.
                tracing::debug!(error = %e, "remembering the evaluations failed");
            }
            // What waits for an approval is listed for `driftwatch approve`; what no longer
            // waits is forgotten.
            let at = driftwatch_policy::Timestamp::from_unix_nanos(now_nanos()).to_string();
            let waiting: std::collections::HashSet<(String, String)> = store
                .pending(None)
                .unwrap_or_default()
                .into_iter()
                .map(|(app, image, _, _)| (app, image))
                .collect();
            for l in &report.images {
                match (l.status, &l.registry) {
                    (Status::Pending, Some(value)) => {
                        let _ = store.set_pending(&l.app, &l.image, value, &at);
                    }
                    (Status::InSync | Status::Updated, _)
                        if waiting.contains(&(l.app.clone(), l.image.clone())) =>
                    {
                        let _ = store.clear_pending(&l.app, &l.image);
                    }
                    _ => {}
                }
            }
        }
        report.finished_at = now_nanos();
        report
    }

    #[allow(clippy::too_many_arguments)]
    fn write(
        &self,
        repo: &str,
        branch: &str,
        apps: &[App],
        members: &[usize],
        desired: &[Vec<Result<Option<Desired>, String>>],
        mode: Mode,
        full: bool,
        unsettled: &[crate::store::Update],
    ) -> Written {
        let first = &apps[members[0]];
        // Applications of one repository share its credentials; one whose credentials could
        // not be read has none and writes nothing, so another member's are taken.
        let auth = members
            .iter()
            .map(|&i| &apps[i].auth)
            .find(|a| **a != driftwatch_git::Auth::None)
            .unwrap_or(&first.auth)
            .clone();
        let mirror = Mirror::open(&self.state_dir, repo, auth)?;
        self.settle(&mirror, repo, unsettled);
        let spec = driftwatch_git::BranchSpec::parse(branch, "main");
        // This commit's updates, noted in the store before its push (see `Store::pushing`).
        let noted: std::cell::RefCell<Vec<crate::store::Update>> =
            std::cell::RefCell::new(Vec::new());
        let request = UpdateRequest {
            base: spec.base.clone(),
            identity: first.identity.clone(),
            max_attempts: 8,
        };
        // The edit of every member app on a snapshot: files, per-app changes, per-image results.
        let plan_on = |read: &Reader<'_>| -> Result<Edited, Error> {
            let mut files: BTreeMap<String, String> = BTreeMap::new();
            let mut changed_files = std::collections::BTreeSet::new();
            let mut per_app = Vec::new();
            let mut results = Vec::new();
            for &i in members {
                let app = &apps[i];
                let mut changes = Vec::new();
                for (j, img) in app.images.iter().enumerate() {
                    let Ok(Some(d)) = &desired[i][j] else {
                        continue;
                    };
                    // Images go to the application's file; a chart to its own.
                    let path = resolve_file(img.file.as_deref().unwrap_or(&app.file), read)?;
                    if !files.contains_key(&path) {
                        let text = match read(&path)? {
                            Some(b) => String::from_utf8(b).map_err(|_| Error::Read {
                                file: path.clone(),
                                reason: "not valid UTF-8".to_owned(),
                            })?,
                            None => String::new(),
                        };
                        files.insert(path.clone(), text);
                    }
                    let text = files.get(&path).cloned().unwrap_or_default();
                    let out = set_image(&text, &path, &img.target, &d.change)?;
                    let old = previous_tag(&out, &d.change.image);
                    let at = out.lines.first().copied();
                    if out.changed
                        && let Some(wait) = crate::hold::wait(&d.hold, old.as_deref(), &d.shown)
                    {
                        // Someone's rollback stands, or an approval is missing: the file keeps
                        // its value.
                        let waiting = Waiting {
                            wait,
                            path: path.clone(),
                            by: None,
                        };
                        results.push((i, j, old, false, at, Some(waiting)));
                        continue;
                    }
                    results.push((i, j, old.clone(), out.changed, at, None));
                    if out.changed {
                        changes.push(Change {
                            image: img.written.clone(),
                            alias: img.alias.clone().unwrap_or_default(),
                            old_tag: old.unwrap_or_default(),
                            new_tag: d.shown.clone(),
                        });
                        files.insert(path.clone(), out.text);
                        changed_files.insert(path.clone());
                    }
                }
                per_app.push((i, changes));
            }
            let writes = changed_files
                .into_iter()
                .map(|p| FileWrite {
                    content: files.remove(&p).unwrap_or_default().into_bytes(),
                    path: p,
                })
                .collect();
            Ok(Edited {
                writes,
                per_app,
                results,
            })
        };

        // Incremental: if the head, the members and their chosen tags are those of the last
        // evaluation, its verdicts stand without reading or editing a file.
        let key = (repo.to_owned(), branch.to_owned());
        let fingerprint_at = |head: &str| fingerprint(head, apps, members, desired, mode);
        let remembered = |head: &str| -> Option<Vec<ImageEdit>> {
            if full {
                return None;
            }
            // Hashed before the lock is taken: the other repositories' threads wait on it.
            let now = fingerprint_at(head);
            let memo = self.memo.lock().ok()?;
            let m = memo.get(&key)?;
            (m.fingerprint == now).then(|| {
                m.results
                    .iter()
                    .map(|(k, j, old, changed, at, hold)| {
                        (members[*k], *j, old.clone(), *changed, *at, hold.clone())
                    })
                    .collect()
            })
        };
        let mut results = Vec::new();
        let mut reused = false;
        // The head the evaluation read.
        let mut read_at = String::new();
        let outcome = if mode == Mode::Apply {
            let mut failure: Option<Error> = None;
            let before_push = |commit: &str, branch: &str| {
                let rows: Vec<crate::store::Update> = noted
                    .borrow()
                    .iter()
                    .map(|u| crate::store::Update {
                        commit: commit.to_owned(),
                        branch: branch.to_owned(),
                        ..u.clone()
                    })
                    .collect();
                if let Ok(mut guard) = self.store.lock()
                    && let Some(store) = guard.as_mut()
                    && let Err(e) = store.pushing(&rows)
                {
                    // The push goes ahead: only a crash in the next moments would lose the
                    // history row, as it did before rows were noted.
                    tracing::warn!(error = %e, "noting the updates before the push failed");
                }
                Ok(())
            };
            let outcome = mirror.update_with(
                &request,
                |snap| {
                    read_at = snap.commit().to_owned();
                    if let Some(r) = remembered(snap.commit()) {
                        // Nothing to write: the same inputs wrote nothing last time.
                        results = r;
                        reused = true;
                        return Ok(Plan::default());
                    }
                    reused = false;
                    let Edited {
                        writes,
                        per_app,
                        results: r,
                    } = plan_on(&|p| snap.read(p)).map_err(|e| {
                        let msg = e.to_string();
                        failure = Some(e);
                        driftwatch_git::Error::Edit(msg)
                    })?;
                    results = r;
                    let changed: Vec<(&App, &[Change])> = per_app
                        .iter()
                        .filter(|(_, c)| !c.is_empty())
                        .map(|(i, c)| (&apps[*i], c.as_slice()))
                        .collect();
                    let message = message_for(&changed)?;
                    let at = driftwatch_policy::Timestamp::from_unix_nanos(now_nanos()).to_string();
                    *noted.borrow_mut() = changed
                        .iter()
                        .flat_map(|(app, changes)| {
                            changes.iter().map(|c| crate::store::Update {
                                app: app.name.clone(),
                                image: c.image.clone(),
                                old: c.old_tag.clone(),
                                new: c.new_tag.clone(),
                                commit: String::new(),
                                repo: driftwatch_git::redact_url(repo),
                                branch: String::new(),
                                seen_at: at.clone(),
                                decided_at: at.clone(),
                                committed_at: at.clone(),
                            })
                        })
                        .collect();
                    let all_changes: Vec<Change> = changed
                        .iter()
                        .flat_map(|(_, c)| c.iter().cloned())
                        .collect();
                    let target = match &spec.target {
                        Some(t) => Some(driftwatch_git::branch_name(
                            t,
                            &first.namespace,
                            &first.name,
                            &all_changes,
                        )?),
                        None => None,
                    };
                    Ok(Plan {
                        writes,
                        message,
                        target,
                        deletes: Vec::new(),
                    })
                },
                before_push,
            );
            match (outcome, failure) {
                (Err(_), Some(e)) => return Err(e),
                (o, _) => Some(o?),
            }
        } else {
            let base = mirror.resolve_branch(&spec.base)?;
            let head =
                mirror
                    .fetch_head(&base)?
                    .ok_or_else(|| driftwatch_git::Error::NoBranch {
                        url: driftwatch_git::redact_url(repo),
                        branch: base.clone(),
                    })?;
            if let Some(r) = remembered(&head) {
                return Ok((None, r, true));
            }
            // One `cat-file --batch` for every file of the repository's applications.
            let snap = mirror.snapshot(&head);
            results = plan_on(&|p| snap.read(p))?.results;
            read_at = head;
            None
        };
        if reused {
            return Ok((None, results, true));
        }
        // A held image names the commit that set it back, and its author.
        for r in &mut results {
            if let Some(w) = &mut r.5
                && matches!(w.wait, crate::hold::Wait::Rollback(_))
            {
                w.by = mirror.last_change(&read_at, &w.path).ok().flatten();
            }
        }
        // Remembered only when the evaluation wrote nothing: after a commit the head moves, and
        // a plan is only a plan (a later `Apply` at the same head must still write it).
        let wrote = matches!(outcome, Some(Outcome::Pushed { .. }));
        if !wrote && (mode != Mode::Apply || results.iter().all(|r| !r.3)) {
            let position: std::collections::HashMap<usize, usize> =
                members.iter().enumerate().map(|(k, &i)| (i, k)).collect();
            let memo = Memo {
                fingerprint: fingerprint_at(&read_at),
                results: results
                    .iter()
                    .filter_map(|(i, j, old, changed, at, hold)| {
                        Some((
                            *position.get(i)?,
                            *j,
                            old.clone(),
                            *changed,
                            *at,
                            hold.clone(),
                        ))
                    })
                    .collect(),
            };
            self.note_memo(&key, Some(&memo));
            if let Ok(mut m) = self.memo.lock() {
                m.insert(key, memo);
            }
        } else {
            self.note_memo(&key, None);
            if let Ok(mut m) = self.memo.lock() {
                m.remove(&key);
            }
        }
        let commit = match outcome {
            Some(Outcome::Pushed {
                commit,
                branch,
                attempts,
            }) => Some(CommitReport {
                repo: driftwatch_git::redact_url(repo),
                branch,
                commit,
                attempts,
                pushed_at: now_nanos(),
            }),
            _ => None,
        };
        Ok((commit, results, false))
    }
}

impl Updater {
    /// Takes the evaluations of `mode` the store remembers for the repositories this process
    /// has not evaluated yet; once per process and mode (after that, memory is newer).
    fn load_memos(&self, mode: Mode) {
        match self.memos_loaded.lock() {
            Ok(mut loaded) if !loaded.contains(&mode) => loaded.push(mode),
            _ => return,
        }
        let Some(rows) = self
            .store
            .lock()
            .ok()
            .and_then(|g| g.as_ref().and_then(|s| s.memos(&format!("{mode:?}")).ok()))
        else {
            return;
        };
        let Ok(mut memo) = self.memo.lock() else {
            return;
        };
        for (repo, branch, fingerprint, results) in rows {
            let key = (repo, branch);
            if memo.contains_key(&key) {
                continue;
            }
            // A row this build cannot read is skipped: the repository is evaluated again.
            let (Ok(fingerprint), Ok(results)) = (
                <[u8; 32]>::try_from(fingerprint.as_slice()),
                serde_json::from_str::<Vec<StoredEdit>>(&results),
            ) else {
                continue;
            };
            let results = results
                .into_iter()
                .map(|(k, j, old, changed, at)| (k, j, old, changed, at, None))
                .collect();
            memo.insert(
                key,
                Memo {
                    fingerprint,
                    results,
                },
            );
        }
    }

    /// Notes that the evaluation of one repository and branch is to be written to the store
    /// (or, with `None`, forgotten there) at the end of the cycle. One with a wait is not kept
    /// there: its sentence names a commit and its author, read from Git, and is only
    /// remembered in memory.
    fn note_memo(&self, key: &(String, String), memo: Option<&Memo>) {
        let stored: Option<Vec<StoredEdit>> = memo.and_then(|m| {
            m.results
                .iter()
                .map(|(k, j, old, changed, at, hold)| {
                    hold.is_none().then(|| (*k, *j, old.clone(), *changed, *at))
                })
                .collect()
        });
        let row = memo
            .zip(stored.and_then(|s| serde_json::to_string(&s).ok()))
            .map(|(m, json)| (m.fingerprint.to_vec(), json));
        if let Ok(mut w) = self.memo_writes.lock() {
            w.push((key.clone(), row));
        }
    }

    /// Settles the updates noted before pushes to `repo` that nothing recorded since: those
    /// whose commit the branch now holds become history rows, the others (the push never
    /// happened, or lost a race and was redone as another commit) are dropped. A fetch or
    /// store that fails leaves them for the next cycle.
    fn settle(&self, mirror: &Mirror, repo: &str, unsettled: &[crate::store::Update]) {
        let redacted = driftwatch_git::redact_url(repo);
        let commits: BTreeMap<&str, &str> = unsettled
            .iter()
            .filter(|u| u.repo == redacted)
            .map(|u| (u.commit.as_str(), u.branch.as_str()))
            .collect();
        if commits.is_empty() {
            return;
        }
        let branches: std::collections::BTreeSet<&str> = commits.values().copied().collect();
        if let Err(e) = mirror.fetch(&branches.into_iter().collect::<Vec<_>>()) {
            tracing::warn!(error = %e, "settling updates pushed before a restart: fetch failed");
            return;
        }
        for (commit, branch) in commits {
            let pushed = match mirror.head(branch) {
                Ok(Some(head)) => mirror.contains(&head, commit),
                Ok(None) => Ok(false),
                Err(e) => Err(e),
            };
            let pushed = match pushed {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(commit, error = %e, "settling an update pushed before a restart failed");
                    continue;
                }
            };
            if let Ok(mut guard) = self.store.lock()
                && let Some(store) = guard.as_mut()
            {
                match store.settle_pushing(commit, pushed) {
                    Ok(()) => tracing::info!(
                        commit,
                        branch,
                        pushed,
                        "settled the updates of a push a restart interrupted"
                    ),
                    Err(e) => tracing::warn!(commit, error = %e, "settling an update failed"),
                }
            }
        }
    }
}

/// Everything a repository and branch's evaluation reads besides the files at `head`: the
/// members' configuration (files, targets, names, policies), their chosen tags, and the mode.
/// The evaluation is a pure function of these and the tree at `head`, so an equal fingerprint
/// means equal verdicts.
fn fingerprint(
    head: &str,
    apps: &[App],
    members: &[usize],
    desired: &[Vec<Result<Option<Desired>, String>>],
    mode: Mode,
) -> [u8; 32] {
    use sha2::Digest as _;
    let mut h = sha2::Sha256::new();
    // Evaluations are kept across processes: another build may decide otherwise.
    h.update(build_identity());
    h.update(format!("{head}\0{mode:?}\0"));
    for &i in members {
        h.update(format!("{:?}\0", apps[i]));
        for d in &desired[i] {
            match d {
                Ok(Some(d)) => h.update(format!("={:?}\0{}\0{:?}\0", d.change, d.shown, d.hold)),
                Ok(None) => h.update("none\0"),
                Err(e) => h.update(format!("!{e}\0")),
            }
        }
    }
    h.finalize().into()
}

/// This build: the version and the executable's size and time, so evaluations a different
/// binary remembered are never taken for this one's.
fn build_identity() -> &'static str {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(|| {
        let exe = std::env::current_exe()
            .and_then(std::fs::metadata)
            .map(|m| {
                let at = m
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_nanos());
                format!("{} {at}", m.len())
            })
            .unwrap_or_default();
        format!("{} {exe}\0", env!("CARGO_PKG_VERSION"))
    })
}

/// The message of a commit carrying `changed` applications. With argocd-image-updater's
/// default template everywhere, one message names them all (`build: automatic update of a, b
/// and 3 more`) and lists every change; configured templates are rendered per application and
/// joined, as each asks.
fn message_for(changed: &[(&App, &[Change])]) -> Result<String, driftwatch_git::Error> {
    let all_default = changed
        .iter()
        .all(|(app, _)| app.template == driftwatch_git::DEFAULT_COMMIT_TEMPLATE);
    if changed.len() > 1 && all_default {
        let names: Vec<&str> = changed.iter().map(|(a, _)| a.name.as_str()).collect();
        let all: Vec<Change> = changed
            .iter()
            .flat_map(|(_, c)| c.iter().cloned())
            .collect();
        return commit_message(
            driftwatch_git::DEFAULT_COMMIT_TEMPLATE,
            &name_list(&names),
            &all,
        );
    }
    let mut message = String::new();
    for (app, changes) in changed {
        if !message.is_empty() {
            message.push('\n');
        }
        message.push_str(&commit_message(&app.template, &app.name, changes)?);
    }
    Ok(message)
}

/// `a`, `a and b`, `a, b and c`, `a, b and 3 more`: short enough for a commit title.
fn name_list(names: &[&str]) -> String {
    match names {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [a, b] => format!("{a} and {b}"),
        [a, b, c] => format!("{a}, {b} and {c}"),
        [a, b, rest @ ..] => format!("{a}, {b} and {} more", rest.len()),
    }
}

/// Which applications share one commit: those on the same repository and branch, in a stable
/// order. `HEAD` (and `HEAD:target`) means the repository's default branch, which
/// `default_branch` resolves — once per repository — so applications that name it and those
/// that name the branch share one commit instead of racing each other.
pub fn group_by_branch(
    apps: &[App],
    mut default_branch: impl FnMut(&App) -> String,
) -> Vec<((String, String), Vec<usize>)> {
    let mut defaults: BTreeMap<&str, String> = BTreeMap::new();
    let mut groups: BTreeMap<(String, String), Vec<usize>> = BTreeMap::new();
    for (i, app) in apps.iter().enumerate() {
        let branch = match app.branch.strip_prefix("HEAD") {
            Some(rest) => {
                let default = defaults
                    .entry(app.repo.as_str())
                    .or_insert_with(|| default_branch(app));
                format!("{default}{rest}")
            }
            None => app.branch.clone(),
        };
        groups
            .entry((app.repo.clone(), branch))
            .or_default()
            .push(i);
    }
    groups.into_iter().collect()
}

/// A live Application's `spec.source` overrides as the `.argocd-source` file holds them (block
/// YAML, every string double-quoted as JSON quotes it, which YAML reads the same), so the same
/// editor merges into them.
fn live_overrides(source: &serde_json::Value) -> String {
    let q = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => serde_json::Value::String(s.clone()).to_string(),
        other => {
            serde_json::Value::String(other.to_string().trim_matches('"').to_owned()).to_string()
        }
    };
    let mut text = String::new();
    if let Some(images) = source
        .pointer("/kustomize/images")
        .and_then(serde_json::Value::as_array)
        .filter(|i| !i.is_empty())
    {
        text.push_str("kustomize:\n  images:\n");
        for i in images {
            text.push_str(&format!("  - {}\n", q(i)));
        }
    }
    if let Some(params) = source
        .pointer("/helm/parameters")
        .and_then(serde_json::Value::as_array)
        .filter(|p| !p.is_empty())
    {
        text.push_str("helm:\n  parameters:\n");
        for p in params {
            text.push_str(&format!(
                "  - name: {}\n    value: {}\n",
                q(&p["name"]),
                q(&p["value"])
            ));
            if let Some(f) = p.get("forceString").and_then(serde_json::Value::as_bool) {
                text.push_str(&format!("    forceString: {f}\n"));
            }
        }
    }
    text
}

/// The `spec.source` fields to set from edited overrides: `kustomize.images` and/or
/// `helm.parameters`, the image's parameters forced to strings as argocd-image-updater
/// writes them (a tag like `1.10` must not become a number).
fn overrides_fields(text: &str, app: &App) -> Result<serde_json::Value, String> {
    #[derive(serde::Deserialize, Default)]
    struct Overrides {
        kustomize: Option<Kustomize>,
        helm: Option<Helm>,
    }
    #[derive(serde::Deserialize)]
    struct Kustomize {
        #[serde(default)]
        images: Vec<String>,
    }
    #[derive(serde::Deserialize)]
    struct Helm {
        #[serde(default)]
        parameters: Vec<Parameter>,
    }
    #[derive(serde::Deserialize)]
    struct Parameter {
        name: String,
        value: String,
        #[serde(rename = "forceString")]
        force_string: Option<bool>,
    }
    let parsed: Overrides = serde_saphyr::from_str(text).map_err(|e| e.to_string())?;
    let ours: std::collections::BTreeSet<&str> = app
        .images
        .iter()
        .flat_map(|i| {
            [
                i.target.helm_path.as_deref(),
                i.target.helm_name_path.as_deref(),
            ]
        })
        .flatten()
        .collect();
    let mut fields = serde_json::Map::new();
    if let Some(k) = parsed.kustomize {
        fields.insert("kustomize".into(), serde_json::json!({"images": k.images}));
    }
    if let Some(h) = parsed.helm {
        let params: Vec<serde_json::Value> = h
            .parameters
            .into_iter()
            .map(|p| {
                let force = p.force_string.unwrap_or(false) || ours.contains(p.name.as_str());
                let mut v = serde_json::json!({"name": p.name, "value": p.value});
                if force {
                    v["forceString"] = serde_json::Value::Bool(true);
                }
                v
            })
            .collect();
        fields.insert("helm".into(), serde_json::json!({"parameters": params}));
    }
    Ok(serde_json::Value::Object(fields))
}

/// A kustomization may be `kustomization.yaml`, `kustomization.yml` or `Kustomization`.
fn resolve_file(file: &str, read: &Reader<'_>) -> Result<String, Error> {
    if let Some(dir) = file.strip_suffix("kustomization.yaml") {
        for name in ["kustomization.yaml", "kustomization.yml", "Kustomization"] {
            let candidate = format!("{dir}{name}");
            if read(&candidate)?.is_some() {
                return Ok(candidate);
            }
        }
    }
    Ok(file.to_owned())
}

/// Scans one image's repository and picks its tag.
async fn choose(
    scan: &driftwatch_registry::Cycle<'_>,
    img: &TrackedImage,
) -> Result<Option<Desired>, String> {
    if img.promote.is_some() {
        // Not from the registry: from the upstream's live state, decided by the cycle.
        return Ok(None);
    }
    let policy = &img.policy;
    let needs = Needs {
        created: policy.strategy() == Strategy::NewestBuild,
        digest: policy.strategy() == Strategy::Digest,
        platforms: !policy.filter().wanted_platforms().is_empty(),
    };
    let (mut candidates, _) = scan
        .candidates(
            &img.image,
            img.implicit_registry,
            needs,
            policy.tracked_tag(),
        )
        .await
        .map_err(|e| e.to_string())?;
    if img.is_chart() {
        // A chart's tags are its versions, with Helm's `_` for `+`: the policy compares, and
        // Git gets, the versions.
        for c in &mut candidates {
            c.tag = driftwatch_policy::chart_version_of_tag(&c.tag);
        }
    }
    let mut pool = candidates;
    let mut note = None;
    let mut young = 0;
    let c = loop {
        let Some(i) = policy.select(&pool) else {
            return Ok(None);
        };
        let Some(min) = img.min_release_age else {
            break pool.swap_remove(i);
        };
        // Only the winner's age is read (one manifest and config, cached by digest); a young
        // winner gives way to the next best, a few times at most.
        let created = scan
            .created(&img.image, img.implicit_registry, &pool[i].tag)
            .await
            .map_err(|e| e.to_string())?;
        let now = now_nanos();
        match created {
            Some(t) if now - t.unix_nanos() < min.as_nanos() as i128 => {
                let age = std::time::Duration::from_nanos(
                    u64::try_from((now - t.unix_nanos()).max(0)).unwrap_or(0),
                );
                if note.is_none() {
                    note = Some(format!(
                        "waiting: {} is {} old, minimumReleaseAge {}",
                        pool[i].tag,
                        short_age(age),
                        short_age(min)
                    ));
                }
                young += 1;
                if young >= MAX_YOUNG {
                    return Ok(None);
                }
                pool.swap_remove(i);
            }
            _ => break pool.swap_remove(i),
        }
    };
    let c = &c;
    let digest = if policy.strategy() == Strategy::Digest {
        c.digest.clone()
    } else {
        None
    };
    let shown = match &digest {
        Some(d) => format!("{}@{d}", c.tag),
        None => c.tag.clone(),
    };
    Ok(Some(Desired {
        change: change_for(img, c.tag.clone(), digest),
        shown,
        hold: crate::hold::HoldInput::default(),
        note,
    }))
}

/// The edit that sets `img` to `tag` (and `digest`) in its file.
fn change_for(
    img: &TrackedImage,
    tag: String,
    digest: Option<driftwatch_policy::Digest>,
) -> ImageChange {
    let (image, new_name) = match &img.file_name {
        Some(name) => (
            name.clone(),
            (name != &img.written).then(|| img.written.clone()),
        ),
        None => (img.written.clone(), None),
    };
    ImageChange {
        image,
        new_name,
        tag: Some(tag),
        digest,
    }
}

/// Candidates younger than `minimumReleaseAge` passed over before choosing none: the newest
/// few are read, never the whole tag list.
const MAX_YOUNG: usize = 5;

/// `3d4h`, `5h12m`, `40m`, `12s`: an age to read at a glance.
fn short_age(d: std::time::Duration) -> String {
    let s = d.as_secs();
    match (s / 86_400, (s % 86_400) / 3600, (s % 3600) / 60) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, m) => format!("{m}m"),
        (0, h, m) => format!("{h}h{m}m"),
        (d, h, _) => format!("{d}d{h}h"),
    }
}

/// The applications, cut down to the images a registry push concerns, for an immediate re-check.
pub fn affected(apps: &[App], events: &[driftwatch_registry::PushEvent]) -> Vec<App> {
    let hub = |r: &str| matches!(r, "docker.io" | "index.docker.io" | "registry-1.docker.io");
    let matches = |img: &TrackedImage| {
        events.iter().any(|e| {
            let same_registry = e.registry == img.image.registry()
                || (hub(&e.registry) && hub(img.image.registry()))
                || e.registry.is_empty();
            let repo = e.repository.trim_matches('/');
            let same_repo = repo == img.image.repository()
                || (hub(img.image.registry())
                    && format!("library/{repo}") == img.image.repository());
            same_registry && same_repo
        })
    };
    apps.iter()
        .filter_map(|app| {
            // A promoted image follows its upstream's live state, not registry pushes.
            let images: Vec<TrackedImage> = app
                .images
                .iter()
                .filter(|i| i.promote.is_none() && matches(i))
                .cloned()
                .collect();
            (!images.is_empty()).then(|| App {
                images,
                ..app.clone()
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::group_by_branch;
    use crate::config::Config;

    fn apps(entries: &[(&str, &str, Option<&str>)]) -> Vec<crate::App> {
        let mut yaml = String::from("applications:\n");
        for (i, (repo, path, branch)) in entries.iter().enumerate() {
            yaml.push_str(&format!(
                "- name: app{i}\n  repo: {repo}\n  path: {path}\n  images:\n  - image: reg.local/a{i}\n"
            ));
            if let Some(b) = branch {
                yaml.push_str(&format!("  branch: \"{b}\"\n"));
            }
        }
        Config::parse(&yaml, "driftwatch.yaml", Path::new("."))
            .unwrap()
            .apps
    }

    #[test]
    fn a_commit_of_several_applications_names_them() {
        use driftwatch_git::Change;
        let apps = apps(&[
            ("file:///r", "a", None),
            ("file:///r", "b", None),
            ("file:///r", "c", None),
            ("file:///r", "d", None),
            ("file:///r", "e", None),
        ]);
        let change = |image: &str| Change {
            image: image.to_owned(),
            alias: String::new(),
            old_tag: "1".to_owned(),
            new_tag: "2".to_owned(),
        };
        let (c0, c1) = ([change("x")], [change("y")]);
        let one = super::message_for(&[(&apps[0], &c0[..])]).unwrap();
        assert!(
            one.starts_with("build: automatic update of app0\n"),
            "{one}"
        );
        let two = super::message_for(&[(&apps[0], &c0[..]), (&apps[1], &c1[..])]).unwrap();
        assert_eq!(
            two,
            "build: automatic update of app0 and app1\n\nupdates image x tag '1' to '2'\nupdates image y tag '1' to '2'\n"
        );
        let five: Vec<(&crate::App, &[Change])> = apps.iter().map(|a| (a, &c0[..])).collect();
        let msg = super::message_for(&five).unwrap();
        assert!(
            msg.starts_with("build: automatic update of app0, app1 and 3 more\n"),
            "{msg}"
        );
        assert_eq!(msg.matches("updates image x").count(), 5);
        // A configured template is rendered per application, as it asks.
        let mut custom = apps[1].clone();
        custom.template = "bump {{ .AppName }}\n".to_owned();
        let mixed = super::message_for(&[(&apps[0], &c0[..]), (&custom, &c1[..])]).unwrap();
        assert!(
            mixed.starts_with("build: automatic update of app0\n")
                && mixed.ends_with("bump app1\n"),
            "{mixed}"
        );
        assert_eq!(super::name_list(&["a", "b", "c"]), "a, b and c");
    }

    #[test]
    fn a_push_of_a_chart_concerns_the_applications_following_it() {
        let text = "applications:\n- name: web\n  repo: r\n  images:\n  - image: reg.local/shop/web\n  charts:\n  - chart: oci://reg.local/charts/web\n- name: api\n  repo: r\n  charts:\n  - chart: oci://reg.local/charts/api\n";
        let apps = Config::parse(text, "d.yaml", Path::new(".")).unwrap().apps;
        let push = driftwatch_registry::PushEvent {
            registry: "reg.local".to_owned(),
            repository: "charts/web".to_owned(),
            tag: Some("1.4.4_build.1".to_owned()),
            digest: None,
        };
        let hit = super::affected(&apps, &[push]);
        assert_eq!(hit.len(), 1);
        assert_eq!(hit[0].name, "web");
        let names: Vec<&str> = hit[0].images.iter().map(|i| i.written.as_str()).collect();
        assert_eq!(names, ["chart:oci://reg.local/charts/web"]);
    }

    #[test]
    fn one_commit_per_repository_and_branch() {
        let apps = apps(&[
            ("file:///r1", "a", Some("main")),
            ("file:///r1", "b", Some("main")),
            ("file:///r1", "c", Some("release")),
            ("file:///r2", "a", Some("main")),
            ("file:///r1", "d", Some("main:updates")),
        ]);
        let groups = group_by_branch(&apps, |_| unreachable!("no HEAD here"));
        assert_eq!(
            groups,
            vec![
                (("file:///r1".into(), "main".into()), vec![0, 1]),
                (("file:///r1".into(), "main:updates".into()), vec![4]),
                (("file:///r1".into(), "release".into()), vec![2]),
                (("file:///r2".into(), "main".into()), vec![3]),
            ]
        );
    }

    #[test]
    fn head_is_the_default_branch_resolved_once_per_repository() {
        let apps = apps(&[
            ("file:///r1", "a", Some("HEAD")),
            ("file:///r1", "b", Some("trunk")),
            ("file:///r1", "c", Some("HEAD:bot")),
            ("file:///r2", "a", Some("HEAD")),
        ]);
        let mut asked = Vec::new();
        let groups = group_by_branch(&apps, |app| {
            asked.push(app.repo.clone());
            if app.repo.ends_with("r1") {
                "trunk"
            } else {
                "main"
            }
            .to_owned()
        });
        assert_eq!(asked, ["file:///r1", "file:///r2"], "once per repository");
        assert_eq!(
            groups,
            vec![
                (("file:///r1".into(), "trunk".into()), vec![0, 1]),
                (("file:///r1".into(), "trunk:bot".into()), vec![2]),
                (("file:///r2".into(), "main".into()), vec![3]),
            ]
        );
    }
}
