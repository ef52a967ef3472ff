//! `driftwatch run` and `driftwatch check`: the updater loop and its drift report.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use driftwatch_engine::{App, Config, CycleReport, Mode, Status, Updater};
use driftwatch_registry::RegistriesConf;

use crate::exit::{CmdResult, Failure};

/// Exit code of `check` when something drifts.
const DRIFT: u8 = 2;

/// Where the applications come from.
#[derive(Debug, clap::Args)]
pub struct Source {
    /// The native configuration file.
    #[arg(short, long, value_name = "FILE", env = "DRIFTWATCH_CONFIG")]
    pub config: Option<PathBuf>,
    /// Argo CD Application manifests with argocd-image-updater annotations (a file or a directory).
    #[arg(long, value_name = "PATH", conflicts_with = "config")]
    pub applications: Option<PathBuf>,
    /// Read Argo CD Applications from this namespace of the cluster (`--applications-kubeconfig`,
    /// default $KUBECONFIG), as argocd-image-updater does.
    #[arg(long, value_name = "NAMESPACE", conflicts_with_all = ["config", "applications"])]
    pub applications_from_cluster: Option<String>,
    /// The cluster for --applications-from-cluster.
    #[arg(
        long = "applications-kubeconfig",
        env = "KUBECONFIG",
        value_name = "FILE"
    )]
    pub applications_kubeconfig: Option<PathBuf>,
    /// argocd-image-updater's registries.conf, with --applications.
    #[arg(long, value_name = "FILE")]
    pub registries_conf: Option<PathBuf>,
    /// Where Git mirrors are kept.
    #[arg(long, env = "DRIFTWATCH_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

impl Source {
    /// The applications, registries and interval.
    pub fn load(&self) -> anyhow::Result<(Vec<App>, RegistriesConf, Duration)> {
        let conf_file = |p: &PathBuf| -> anyhow::Result<RegistriesConf> {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            Ok(RegistriesConf::parse(&text, &p.display().to_string())?)
        };
        match (&self.config, &self.applications) {
            (Some(path), _) => {
                let config = Config::load(path)?;
                let registries = match &self.registries_conf {
                    Some(p) => conf_file(p)?,
                    None => config.registries,
                };
                Ok((config.apps, registries, config.interval))
            }
            (None, Some(path)) => {
                let apps = driftwatch_engine::argocd::load(path)?;
                let registries = match &self.registries_conf {
                    Some(p) => conf_file(p)?,
                    None => RegistriesConf::default(),
                };
                Ok((apps, registries, Duration::from_secs(120)))
            }
            (None, None) => match (
                &self.applications_from_cluster,
                &self.applications_kubeconfig,
            ) {
                (Some(ns), Some(kubeconfig)) => {
                    let client = driftwatch_cluster::KubeClient::from_kubeconfig(kubeconfig)?;
                    let rt = super::runtime()?;
                    let items =
                        rt.block_on(client.list("argoproj.io/v1alpha1", "Application", ns))?;
                    // JSON is YAML: the same parser reads the cluster's Applications.
                    let stream: String = items.iter().map(|i| format!("---\n{i}\n")).collect();
                    let apps = driftwatch_engine::argocd::parse(
                        &stream,
                        &format!("Applications in namespace {ns}"),
                    )?;
                    let registries = match &self.registries_conf {
                        Some(p) => conf_file(p)?,
                        None => RegistriesConf::default(),
                    };
                    Ok((apps, registries, Duration::from_secs(120)))
                }
                (Some(_), None) => bail!(
                    "--applications-from-cluster needs a kubeconfig (--applications-kubeconfig or $KUBECONFIG)"
                ),
                _ => bail!(
                    "give --config FILE, --applications PATH or --applications-from-cluster NAMESPACE"
                ),
            },
        }
    }

    /// Where state lives.
    pub fn state_dir(&self) -> PathBuf {
        self.state_dir
            .clone()
            .unwrap_or_else(|| match std::env::var_os("XDG_STATE_HOME") {
                Some(d) => PathBuf::from(d).join("driftwatch"),
                None => std::env::var_os("HOME").map_or_else(
                    || PathBuf::from(".driftwatch"),
                    |h| PathBuf::from(h).join(".local/state/driftwatch"),
                ),
            })
    }
}

/// `run` arguments.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub source: Source,
    /// One cycle, then exit (for cron and CI).
    #[arg(long)]
    pub once: bool,
    /// Print the plan (application, image, old → new, file) and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Seconds between cycles (default: the configuration's interval).
    #[arg(long, value_name = "SECONDS")]
    pub interval: Option<u64>,
    /// Serve /metrics, /healthz, /readyz and registry webhooks on this address.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<std::net::SocketAddr>,
    /// An environment variable holding the webhook secret: a `?secret=` or `Authorization:
    /// Bearer` value, or the key of GitHub's `X-Hub-Signature-256`. Webhooks are off without it.
    #[arg(long, value_name = "VAR")]
    pub webhook_secret_env: Option<String>,
    /// Log format on stderr.
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
    /// Git → cluster: keep the applications that have a sync policy (`sync:` in
    /// driftwatch.yaml, Argo CD's destination and syncPolicy) in step with Git on this cluster.
    /// Off without it.
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Seconds between polls of each repository's head for Git → cluster (pushes and
    /// driftwatch's own commits are acted on at once).
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    pub sync_interval: u64,
}

/// `check` arguments.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub source: Source,
    /// Add the live column for applications with a sync policy: what the cluster runs for
    /// each image, and pods still running an older digest of Git's tag.
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// table or json.
    #[arg(short = 'o', long = "output", default_value = "table", value_parser = ["table", "json"])]
    pub output: String,
}

/// What the cluster runs for one tracked image (`check --kubeconfig`).
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct LiveCell {
    /// The live value (`tag` or `tag@digest`) of each workload running the image; empty when
    /// nothing runs it.
    pub values: Vec<String>,
    /// Pods of those workloads.
    pub pods: usize,
    /// Pods running another digest than the registry's for Git's tag.
    pub stale_pods: usize,
    /// Why the live state could not be read.
    pub error: Option<String>,
}

impl LiveCell {
    /// True when the cluster does not run what Git says.
    fn drifts(&self, git: Option<&str>) -> bool {
        self.error.is_some()
            || self.stale_pods > 0
            || self.values.is_empty()
            || git.is_some_and(|g| self.values.iter().any(|v| v != g))
    }

    fn shown(&self) -> String {
        match (&self.error, self.values.is_empty()) {
            (Some(_), _) => "?".to_owned(),
            (None, true) => "(not running)".to_owned(),
            (None, false) => {
                let mut v = self.values.clone();
                v.dedup();
                v.join(",")
            }
        }
    }

    fn verdict(&self, git: Option<&str>) -> Option<String> {
        if let Some(e) = &self.error {
            return Some(format!("live unknown: {e}"));
        }
        if self.values.is_empty() {
            return Some("not running in the cluster".to_owned());
        }
        if git.is_some_and(|g| self.values.iter().any(|v| v != g)) {
            return Some("the cluster runs another version than Git".to_owned());
        }
        (self.stale_pods > 0).then(|| {
            format!(
                "{} of {} pods on an older digest",
                self.stale_pods, self.pods
            )
        })
    }
}

fn print_table(report: &CycleReport, live: Option<&[Option<LiveCell>]>) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    let rows: Vec<Vec<String>> = report
        .images
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let mut status = match l.status {
                Status::InSync => "in sync".to_owned(),
                Status::UpdateAvailable => "update available".to_owned(),
                Status::Updated => "updated".to_owned(),
                Status::NoCandidate => "no candidate".to_owned(),
                Status::Error => format!("error: {}", l.error.clone().unwrap_or_default()),
            };
            let mut row = vec![
                l.app.clone(),
                l.image.clone(),
                l.registry.clone().unwrap_or_else(|| "-".to_owned()),
                l.git.clone().unwrap_or_else(|| "-".to_owned()),
            ];
            match live.map(|c| c.get(i).and_then(Option::as_ref)) {
                Some(Some(cell)) => {
                    row.push(cell.shown());
                    if let Some(v) = cell.verdict(l.git.as_deref()) {
                        status = format!("{status}; {v}");
                    }
                }
                // Not synced by driftwatch: where it runs is not known.
                Some(None) => row.push("-".to_owned()),
                None => {}
            }
            row.push(status);
            row
        })
        .collect();
    let header: Vec<&str> = if live.is_some() {
        vec!["APP", "IMAGE", "REGISTRY", "GIT", "LIVE", "STATUS"]
    } else {
        vec!["APP", "IMAGE", "REGISTRY", "GIT", "STATUS"]
    };
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.len());
        }
    }
    let last = header.len() - 1;
    let line = |cells: &[&str]| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i == last {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  ", w = widths[i]));
            }
        }
        s
    };
    writeln!(out, "{}", line(&header))?;
    for r in &rows {
        let cells: Vec<&str> = r.iter().map(String::as_str).collect();
        writeln!(out, "{}", line(&cells))?;
    }
    for l in report
        .images
        .iter()
        .filter(|l| l.status == Status::UpdateAvailable)
    {
        writeln!(
            out,
            "plan: {} {} {} -> {} in {}{}",
            l.app,
            l.image,
            l.git.as_deref().unwrap_or("(none)"),
            l.registry.as_deref().unwrap_or("-"),
            l.file,
            l.line.map(|n| format!(":{n}")).unwrap_or_default()
        )?;
    }
    for c in &report.commits {
        writeln!(
            out,
            "committed {} to {} ({}){}",
            &c.commit[..c.commit.len().min(12)],
            c.branch,
            c.repo,
            if c.attempts > 1 {
                format!(" after {} attempts", c.attempts)
            } else {
                String::new()
            }
        )?;
    }
    Ok(())
}

/// The live column: per report line (in the report's order, apps × images), what the
/// cluster runs. An application that cannot be rendered or read gets the reason on its lines.
fn live_cells(
    args: &CheckArgs,
    apps: &[App],
    updater: &Updater,
    report: &CycleReport,
    kubeconfig: &std::path::Path,
) -> anyhow::Result<Vec<Option<LiveCell>>> {
    let client = driftwatch_cluster::KubeClient::from_kubeconfig(kubeconfig)?;
    let rt = super::runtime()?;
    let state = args.source.state_dir();
    let mut cells = Vec::with_capacity(report.images.len());
    let mut lines = report.images.iter();
    let mut heads: std::collections::HashMap<(String, String), Result<String, String>> =
        std::collections::HashMap::new();
    for app in apps {
        // Only an application with a sync policy says where in the cluster it lives.
        let Some(policy) = &app.sync else {
            for _ in &app.images {
                if lines.next().is_some() {
                    cells.push(None);
                }
            }
            continue;
        };
        let ns = policy.namespace.as_str();
        // Applications on one repository and branch share one fetch.
        let head = heads
            .entry((app.repo.clone(), app.branch.clone()))
            .or_insert_with(|| driftwatch_deploy::head(&state, app).map_err(|e| e.to_string()))
            .clone();
        let live = head
            .and_then(|h| driftwatch_deploy::render_at(&state, app, &h).map_err(|e| e.to_string()))
            .and_then(|rendered| {
                rt.block_on(driftwatch_deploy::live::containers(
                    &client,
                    &rendered.objects,
                    ns,
                ))
                .map_err(|e| e.to_string())
            });
        for img in &app.images {
            let Some(line) = lines.next() else { break };
            let containers = match &live {
                Err(e) => {
                    cells.push(Some(LiveCell {
                        error: Some(e.clone()),
                        ..LiveCell::default()
                    }));
                    continue;
                }
                Ok(c) => driftwatch_deploy::live::running(&img.image, c),
            };
            let mut cell = LiveCell {
                values: containers
                    .iter()
                    .map(|c| driftwatch_deploy::live::live_value(c))
                    .collect(),
                pods: containers.iter().map(|c| c.pod_digests.len()).sum(),
                ..LiveCell::default()
            };
            // Which digest Git's value means: pinned in it, else the registry's for the tag.
            let reported = containers
                .iter()
                .any(|c| c.pod_digests.iter().any(Option::is_some));
            if let Some(git) = line.git.as_deref().filter(|_| reported) {
                let digest = match git.split_once('@') {
                    Some((_, d)) => Ok(d.to_owned()),
                    None => updater.digest_of(img, git).map_err(|e| e.to_string()),
                };
                match digest {
                    Ok(d) => {
                        cell.stale_pods = containers
                            .iter()
                            .map(|c| driftwatch_deploy::live::stale_pods(c, &d))
                            .sum();
                    }
                    Err(e) => cell.error = Some(e),
                }
            }
            cells.push(Some(cell));
        }
    }
    Ok(cells)
}

/// The drift report: exit 0 when nothing drifts, 2 when something does, 1 on error. With
/// `--kubeconfig` it is three-way: registry, Git and what the cluster runs.
pub fn check(args: &CheckArgs) -> CmdResult {
    let (apps, registries, _) = args.source.load()?;
    let updater = Updater::new(registries, args.source.state_dir(), &apps)?;
    let report = updater.cycle(&apps, Mode::Check);
    let live = match &args.kubeconfig {
        Some(k) => Some(live_cells(args, &apps, &updater, &report, k)?),
        None => None,
    };
    if args.output == "json" {
        let mut value = serde_json::to_value(&report).context("encoding the report")?;
        if let (Some(cells), Some(images)) = (
            &live,
            value.get_mut("images").and_then(|v| v.as_array_mut()),
        ) {
            for (line, cell) in images.iter_mut().zip(cells) {
                if let Some(cell) = cell {
                    line["live"] = serde_json::to_value(cell).unwrap_or_default();
                }
            }
        }
        let mut out = std::io::stdout().lock();
        serde_json::to_writer_pretty(&mut out, &value).context("writing stdout")?;
        writeln!(out).context("writing stdout")?;
    } else {
        print_table(&report, live.as_deref()).context("writing stdout")?;
    }
    if report.failed() {
        return Err(Failure::Quiet(crate::exit::BAD_INPUT));
    }
    let live_drifts = live.as_ref().is_some_and(|cells| {
        cells
            .iter()
            .zip(&report.images)
            .any(|(c, l)| c.as_ref().is_some_and(|c| c.drifts(l.git.as_deref())))
    });
    if report.drifts() || live_drifts {
        return Err(Failure::Quiet(DRIFT));
    }
    Ok(())
}

/// One log line on stderr: `level: msg k=v…`, or a JSON object with `--log-format json`.
pub(crate) fn log(format: &str, level: &str, msg: &str, fields: serde_json::Value) {
    if format == "json" {
        let mut v = serde_json::json!({"ts": driftwatch_policy::Timestamp::from_unix_nanos(driftwatch_engine::now_nanos()).to_string(), "level": level, "msg": msg});
        if let (Some(obj), serde_json::Value::Object(extra)) = (v.as_object_mut(), fields) {
            obj.extend(extra);
        }
        eprintln!("{v}");
    } else {
        let extra = match fields {
            serde_json::Value::Object(m) if !m.is_empty() => {
                let parts: Vec<String> = m.iter().map(|(k, v)| format!("{k}={v}")).collect();
                format!(" {}", parts.join(" "))
            }
            _ => String::new(),
        };
        eprintln!("{level}: {msg}{extra}");
    }
}

fn rfc3339(nanos: i128) -> String {
    driftwatch_policy::Timestamp::from_unix_nanos(nanos).to_string()
}

/// The updater loop: cycles on an interval with jitter, re-checks at once what a registry
/// webhook names, and stops on SIGTERM or Ctrl-C after the current cycle (a cycle never leaves a
/// half-written repository: commits are built without a work tree and pushed whole).
pub fn run(args: &RunArgs) -> CmdResult {
    let (mut apps, registries, interval) = args.source.load()?;
    let interval = args.interval.map_or(interval, Duration::from_secs);
    let state_dir = args.source.state_dir();
    let mut updater = Updater::new(registries.clone(), state_dir.clone(), &apps)?;
    // Applications read from the cluster are read again before each cycle, as
    // argocd-image-updater follows them: new, changed and deleted ones take effect.
    let follow_cluster = args.source.applications_from_cluster.is_some();
    let mut counted_before: std::collections::HashMap<crate::serve::RequestLabels, u64> =
        std::collections::HashMap::new();
    let mode = if args.dry_run {
        Mode::DryRun
    } else {
        Mode::Apply
    };
    let mut store = if mode == Mode::Apply {
        Some(driftwatch_engine::store::Store::open(&state_dir)?)
    } else {
        None
    };
    let secret = match &args.webhook_secret_env {
        Some(var) => Some(
            std::env::var(var)
                .with_context(|| format!("--webhook-secret-env: {var} is not set"))?,
        ),
        None => None,
    };
    let (tx, rx) = std::sync::mpsc::channel();
    let shared = crate::serve::Shared::new(tx, secret);
    shared
        .metrics
        .images_watched
        .set(i64::try_from(apps.iter().map(|a| a.images.len()).sum::<usize>()).unwrap_or(i64::MAX));
    if let Some(addr) = args.listen {
        crate::serve::start(addr, shared.clone())?;
        log(
            &args.log_format,
            "info",
            "listening",
            serde_json::json!({"addr": addr.to_string()}),
        );
    } else if !args.once {
        // Without the HTTP side, a small runtime of its own turns signals into a stop.
        let stopper = shared.clone();
        std::thread::spawn(move || {
            if let Ok(rt) = super::runtime() {
                rt.block_on(async {
                    if let Ok(mut term) =
                        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    {
                        tokio::select! {
                            _ = term.recv() => {},
                            _ = tokio::signal::ctrl_c() => {},
                        }
                    }
                });
            }
            stopper.send(crate::serve::Trigger::Stop);
        });
    }

    let syncing = apps.iter().any(|a| a.sync.is_some()) || follow_cluster;
    if args.kubeconfig.is_some() && !syncing {
        log(
            &args.log_format,
            "warn",
            "--kubeconfig given but no application has a sync policy; Git → cluster is idle",
            serde_json::json!({}),
        );
    }
    let deploy = match &args.kubeconfig {
        Some(k) if syncing && !args.once && !args.dry_run => {
            let t = crate::deploy::start(
                &apps,
                state_dir.clone(),
                k,
                Duration::from_secs(args.sync_interval.max(1)),
                shared.clone(),
                args.log_format.clone(),
            )?;
            if let Ok(mut d) = shared.deploy.lock() {
                *d = Some(t.tx.clone());
            }
            Some(t)
        }
        _ => None,
    };
    let stop_deploy = |deploy: Option<crate::deploy::DeployThread>| {
        if let Some(t) = deploy {
            if let Ok(mut d) = shared.deploy.lock() {
                *d = None;
            }
            t.stop();
        }
    };

    let mut cycles = 0u64;
    let mut scope: Option<(Vec<App>, i128)> = None;
    loop {
        if follow_cluster && cycles > 0 {
            match args.source.load() {
                Ok((fresh, _, _)) if format!("{fresh:?}") != format!("{apps:?}") => {
                    let names = |a: &[App]| a.iter().map(|a| a.name.clone()).collect::<Vec<_>>();
                    log(
                        &args.log_format,
                        "info",
                        "applications changed",
                        serde_json::json!({"before": names(&apps), "after": names(&fresh)}),
                    );
                    // Credentials of new images are registered when the updater is built; the
                    // old one's request counts carry over into the metrics.
                    for c in updater.registry_stats() {
                        *counted_before
                            .entry(crate::serve::RequestLabels {
                                registry: c.registry,
                                endpoint: c.endpoint.to_owned(),
                                status: c.status,
                            })
                            .or_default() += c.count;
                    }
                    updater = Updater::new(registries.clone(), state_dir.clone(), &fresh)?;
                    apps = fresh;
                    shared.metrics.images_watched.set(
                        i64::try_from(apps.iter().map(|a| a.images.len()).sum::<usize>())
                            .unwrap_or(i64::MAX),
                    );
                    if let Some(t) = &deploy {
                        let _ =
                            t.tx.send(crate::deploy::DeployTrigger::Reload(apps.clone()));
                    }
                }
                Ok(_) => {}
                Err(e) => log(
                    &args.log_format,
                    "error",
                    "reading the applications failed; keeping the last ones",
                    serde_json::json!({"error": format!("{e:#}")}),
                ),
            }
        }
        cycles += 1;
        let started = driftwatch_engine::now_nanos();
        let (targets, seen) = match scope.take() {
            Some((subset, seen)) => (subset, seen),
            None => (apps.clone(), started),
        };
        let report = updater.cycle(&targets, mode);
        let m = &shared.metrics;
        m.cycles.inc();
        m.cycle_seconds
            .observe((report.finished_at - started) as f64 / 1e9);
        for c in updater.registry_stats() {
            let labels = crate::serve::RequestLabels {
                registry: c.registry,
                endpoint: c.endpoint.to_owned(),
                status: c.status,
            };
            let before = counted_before.get(&labels).copied().unwrap_or(0);
            let counter = m.registry_requests.get_or_create(&labels);
            let have = counter.get();
            counter.inc_by((before + c.count).saturating_sub(have));
        }
        let mut updates = Vec::new();
        for line in &report.images {
            match line.status {
                Status::Error => {
                    m.errors.inc();
                }
                Status::Updated => {
                    m.updates.inc();
                    if let Some(commit) = &line.commit {
                        let c = report.commits.iter().find(|c| &c.commit == commit);
                        updates.push(driftwatch_engine::store::Update {
                            app: line.app.clone(),
                            image: line.image.clone(),
                            old: line.git.clone().unwrap_or_default(),
                            new: line.registry.clone().unwrap_or_default(),
                            commit: commit.clone(),
                            repo: c.map(|c| c.repo.clone()).unwrap_or_default(),
                            branch: c.map(|c| c.branch.clone()).unwrap_or_default(),
                            seen_at: rfc3339(seen),
                            decided_at: rfc3339(report.decided_at),
                            committed_at: rfc3339(report.finished_at),
                        });
                    }
                }
                _ => {}
            }
        }
        if !report.commits.is_empty() {
            m.push_to_commit_seconds
                .observe((report.finished_at - seen) as f64 / 1e9);
        }
        if let Some(store) = store.as_mut()
            && let Err(e) = store.record(&updates)
        {
            log(
                &args.log_format,
                "error",
                "recording history failed",
                serde_json::json!({"error": e.to_string()}),
            );
        }
        shared
            .ready
            .store(true, std::sync::atomic::Ordering::Relaxed);
        if args.log_format == "json" {
            log(
                "json",
                "info",
                "cycle",
                serde_json::to_value(&report).unwrap_or_default(),
            );
        } else {
            print_table(&report, None).context("writing stdout")?;
        }
        if let Some(t) = &deploy
            && !report.commits.is_empty()
        {
            // Deploy what was just committed now, not at the next poll.
            let ids: std::collections::HashSet<String> = report
                .commits
                .iter()
                .map(|c| driftwatch_git::repo_identity(&c.repo))
                .collect();
            let names = apps
                .iter()
                .filter(|a| ids.contains(&driftwatch_git::repo_identity(&a.repo)))
                .map(|a| a.name.clone())
                .collect();
            let _ =
                t.tx.send(crate::deploy::DeployTrigger::Apps(names, Some(seen)));
        }
        if args.once {
            let mut failed = report.failed();
            if let Some(k) = &args.kubeconfig
                && syncing
                && !args.dry_run
            {
                failed |=
                    crate::deploy::once(&apps, state_dir.clone(), k, &shared, &args.log_format)?;
            }
            return if failed {
                Err(Failure::Quiet(crate::exit::BAD_INPUT))
            } else {
                Ok(())
            };
        }
        // Up to 10% jitter so many instances do not scan in lockstep.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let wait = interval + interval.mul_f64(f64::from(nanos % 100) / 1000.0);
        match rx.recv_timeout(wait) {
            Ok(crate::serve::Trigger::Push(events, seen)) => {
                let mut events = events;
                // Pushes that arrive together are checked together.
                while let Ok(crate::serve::Trigger::Push(more, _)) = rx.try_recv() {
                    events.extend(more);
                }
                let subset = driftwatch_engine::affected(&apps, &events);
                log(
                    &args.log_format,
                    "info",
                    "registry push",
                    serde_json::json!({"events": events.len(), "applications": subset.len()}),
                );
                if !subset.is_empty() {
                    scope = Some((subset, seen));
                }
            }
            Ok(crate::serve::Trigger::Stop)
            | Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                log(
                    &args.log_format,
                    "info",
                    "stopping",
                    serde_json::json!({"cycles": cycles}),
                );
                stop_deploy(deploy);
                return Ok(());
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
        }
    }
}

/// `history` arguments.
#[derive(Debug, clap::Args)]
pub struct HistoryArgs {
    /// Only this application.
    pub app: Option<String>,
    /// Where the state lives.
    #[arg(long, env = "DRIFTWATCH_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// At most this many entries, newest first.
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    /// table or json.
    #[arg(short = 'o', long = "output", default_value = "table", value_parser = ["table", "json"])]
    pub output: String,
    /// Show syncs to the cluster (revision, objects applied and pruned, rollout health) instead
    /// of image updates.
    #[arg(long)]
    pub syncs: bool,
}

/// Every update driftwatch made, newest first.
pub fn history(args: &HistoryArgs) -> CmdResult {
    let source = Source {
        config: None,
        applications: None,
        applications_from_cluster: None,
        applications_kubeconfig: None,
        registries_conf: None,
        state_dir: args.state_dir.clone(),
    };
    let store = driftwatch_engine::store::Store::open(&source.state_dir())?;
    let mut out = std::io::stdout().lock();
    if args.syncs {
        let syncs = store.syncs(args.app.as_deref(), args.limit)?;
        if args.output == "json" {
            serde_json::to_writer_pretty(&mut out, &syncs).context("writing stdout")?;
            writeln!(out).context("writing stdout")?;
        } else {
            for s in syncs {
                writeln!(
                    out,
                    "{}  {}  {}  {} applied, {} pruned  {}{}",
                    s.at,
                    s.app,
                    &s.revision[..s.revision.len().min(12)],
                    s.applied,
                    s.pruned,
                    s.health,
                    if s.detail.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", s.detail)
                    }
                )
                .context("writing stdout")?;
            }
        }
        return Ok(());
    }
    let entries = store.history(args.app.as_deref(), args.limit)?;
    if args.output == "json" {
        serde_json::to_writer_pretty(&mut out, &entries).context("writing stdout")?;
        writeln!(out).context("writing stdout")?;
        return Ok(());
    }
    for u in entries {
        writeln!(
            out,
            "{}  {}  {}  {} -> {}  {} on {}  (seen {}, decided {})",
            u.committed_at,
            u.app,
            u.image,
            if u.old.is_empty() { "-" } else { &u.old },
            u.new,
            &u.commit[..u.commit.len().min(12)],
            u.branch,
            u.seen_at,
            u.decided_at
        )
        .context("writing stdout")?;
    }
    Ok(())
}
