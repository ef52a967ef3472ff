//! `driftwatch run` and `driftwatch check`: the updater loop and its drift report.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use driftwatch_cluster::KubeTarget;
use driftwatch_deploy::verdict::{LiveCell, live_cells};
use driftwatch_engine::{App, CycleReport, Mode, Status, Updater};
use driftwatch_registry::RegistriesConf;
use driftwatch_service::{AppSource, Applications};

use super::Output;
use crate::exit::{CmdResult, Failure};
use crate::logging::LogFormat;

/// Exit code of `check` when something drifts.
const DRIFT: u8 = 2;

/// Where the applications come from.
#[derive(Debug, clap::Args)]
pub struct Source {
    /// The native configuration file.
    #[arg(short, long, value_name = "FILE", env = "DRIFTWATCH_CONFIG")]
    pub config: Option<PathBuf>,
    /// Argo CD Application manifests with argocd-image-updater annotations, and
    /// argocd-image-updater v1 ImageUpdater resources selecting them (a file or a directory).
    #[arg(long, value_name = "PATH", conflicts_with = "config")]
    pub applications: Option<PathBuf>,
    /// Read Argo CD Applications, and the ImageUpdaters selecting them, from this namespace of
    /// the cluster (`--applications-kubeconfig`, default $KUBECONFIG), as argocd-image-updater
    /// does.
    #[arg(long, value_name = "NAMESPACE", conflicts_with_all = ["config", "applications"])]
    pub applications_from_cluster: Option<String>,
    /// The cluster for --applications-from-cluster.
    #[arg(
        long = "applications-kubeconfig",
        env = "KUBECONFIG",
        value_name = "FILE"
    )]
    pub applications_kubeconfig: Option<PathBuf>,
    /// With --applications-from-cluster: accept Applications whose repository is `file://` or
    /// a local path. Off by default, since whoever may create an Application could otherwise
    /// make driftwatch read or write any repository on this host.
    #[arg(long)]
    pub allow_local_repositories: bool,
    /// With --applications-from-cluster: Applications may also name Secrets in this namespace
    /// (repeatable) in `pullsecret:`, `secret:` and `git:secret:`. By default only their own
    /// namespace's, since whoever may create an Application could otherwise send any Secret
    /// driftwatch may read to a registry or Git server of their choosing.
    #[arg(long = "allow-secret-namespace", value_name = "NAMESPACE")]
    pub secret_namespaces: Vec<String>,
    /// The kubeconfig context for --applications-from-cluster (default: its current-context).
    #[arg(long = "applications-context", value_name = "NAME")]
    pub applications_context: Option<String>,
    /// argocd-image-updater's registries.conf, with --applications.
    #[arg(long, value_name = "FILE")]
    pub registries_conf: Option<PathBuf>,
    /// The namespace Argo CD runs in: its Applications write `.argocd-source-<name>.yaml`, an
    /// Application of any other namespace `.argocd-source-<namespace>_<name>.yaml`, as Argo
    /// CD's repo server reads them.
    #[arg(long, value_name = "NAMESPACE", default_value = "argocd")]
    pub argocd_namespace: String,
    /// Where Git mirrors are kept.
    #[arg(long, env = "DRIFTWATCH_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

impl Source {
    /// The service's view of these flags.
    pub fn app_source(&self) -> anyhow::Result<AppSource> {
        let applications = match (
            &self.config,
            &self.applications,
            &self.applications_from_cluster,
        ) {
            (Some(path), _, _) => Applications::Config(path.clone()),
            (None, Some(path), _) => Applications::Manifests(path.clone()),
            (None, None, Some(ns)) => match &self.applications_kubeconfig {
                Some(kubeconfig) => Applications::Cluster {
                    namespace: ns.clone(),
                    cluster: KubeTarget::file(kubeconfig)
                        .with_context(self.applications_context.as_deref()),
                    allow_local_repositories: self.allow_local_repositories,
                    secret_namespaces: self.secret_namespaces.clone(),
                },
                None => bail!(
                    "--applications-from-cluster needs a kubeconfig (--applications-kubeconfig or $KUBECONFIG)"
                ),
            },
            (None, None, None) => bail!(
                "give --config FILE, --applications PATH or --applications-from-cluster NAMESPACE"
            ),
        };
        Ok(AppSource {
            applications,
            registries_conf: self.registries_conf.clone(),
            argocd_namespace: self.argocd_namespace.clone(),
        })
    }

    /// The applications, registries and interval; an Application of the cluster that is not
    /// valid is an error here (commands that act on named applications want them all).
    pub fn load(&self) -> anyhow::Result<(Vec<App>, RegistriesConf, Duration)> {
        let source = self.app_source()?;
        let loaded = super::runtime()?.block_on(source.load())?;
        if !loaded.rejected.is_empty() {
            bail!("{}", loaded.rejected.join("\n"));
        }
        Ok((loaded.apps, loaded.registries, loaded.interval))
    }

    /// Everything the source holds now, with its readers of the cluster, on `rt`: the
    /// cluster client they share is bound to the runtime it first ran on, so the cycle that
    /// uses them must run on the same one.
    pub fn load_on(
        &self,
        rt: &tokio::runtime::Runtime,
    ) -> anyhow::Result<driftwatch_service::Loaded> {
        let source = self.app_source()?;
        Ok(rt.block_on(source.load())?)
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
    /// An environment variable holding the token of the status page's actions (sync now,
    /// refresh), sent as `Authorization: Bearer TOKEN`. The page is read-only without it.
    #[arg(long, value_name = "VAR")]
    pub ui_token_env: Option<String>,
    /// Git → cluster: keep the applications that have a sync policy (`sync:` in
    /// driftwatch.yaml, Argo CD's destination and syncPolicy) in step with Git on this cluster.
    /// Off without it.
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context for --kubeconfig (default: its current-context).
    #[arg(long, value_name = "NAME", requires = "kubeconfig")]
    pub context: Option<String>,
    /// Print every cycle's whole table (or, with `--log-format json`, its whole report) — the
    /// default with `--once`; otherwise each cycle logs its changes and one summary line.
    #[arg(long)]
    pub table: bool,
    /// Seconds between polls of each repository's head for Git → cluster (pushes and
    /// driftwatch's own commits are acted on at once).
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    pub sync_interval: u64,
    /// Run as one of several replicas: act (write Git, apply, prune, heal) only while holding
    /// a coordination.k8s.io/v1 Lease on the cluster of --kubeconfig/--context (or the
    /// in-cluster service account); the others serve /healthz, /metrics, /status and the
    /// page read-only and take over within the lease duration (10 s) when the leader dies.
    #[arg(long, conflicts_with = "once")]
    pub leader_elect: bool,
    /// The Lease's namespace (default: $POD_NAMESPACE, else the service account's namespace).
    #[arg(long, value_name = "NAMESPACE", env = "POD_NAMESPACE")]
    pub leader_elect_namespace: Option<String>,
    /// The Lease's name: replicas that share it elect one leader.
    #[arg(
        long,
        value_name = "NAME",
        default_value = "driftwatch",
        requires = "leader_elect"
    )]
    pub leader_elect_name: String,
    /// Split the applications into N shards by a stable hash of their names, each led on its
    /// own Lease (NAME-shard-I); each replica leads a fair share of them and takes over the
    /// shards of a replica that dies. Registry webhooks reach one replica, which acts on its
    /// own applications only: send them to every replica (a headless Service) or rely on
    /// polling for the rest.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 1,
        requires = "leader_elect",
        value_parser = clap::value_parser!(u32).range(1..=1024)
    )]
    pub shards: u32,
}

/// Where the service account's namespace is, inside a pod.
const SERVICE_ACCOUNT_NAMESPACE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

/// Leader election as the flags ask for it; `None` without `--leader-elect`.
fn leader_election(
    args: &RunArgs,
) -> anyhow::Result<Option<driftwatch_service::updater::LeaderElection>> {
    if !args.leader_elect {
        return Ok(None);
    }
    let namespace = match args.leader_elect_namespace.clone().filter(|n| !n.is_empty()) {
        Some(ns) => ns,
        None => std::fs::read_to_string(SERVICE_ACCOUNT_NAMESPACE)
            .ok()
            .map(|n| n.trim().to_owned())
            .filter(|n| !n.is_empty())
            .with_context(|| {
                "--leader-elect needs --leader-elect-namespace (or $POD_NAMESPACE) outside a pod"
            })?,
    };
    Ok(Some(driftwatch_service::updater::LeaderElection {
        // The same cluster as Git → cluster; without --kubeconfig, as kubectl finds one (or
        // the in-cluster service account).
        cluster: match &args.kubeconfig {
            Some(k) => KubeTarget::file(k).with_context(args.context.as_deref()),
            None => KubeTarget::default(),
        },
        lease: driftwatch_service::leader::LeaseTarget {
            namespace,
            name: args.leader_elect_name.clone(),
        },
        identity: driftwatch_service::leader::default_identity(),
        timing: driftwatch_service::leader::Timing::default(),
        shards: args.shards,
    }))
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
    /// The kubeconfig context for --kubeconfig (default: its current-context).
    #[arg(long, value_name = "NAME", requires = "kubeconfig")]
    pub context: Option<String>,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Output::Text)]
    pub output: Output,
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
                Status::Held | Status::Pending | Status::Waiting | Status::Blocked => {
                    l.held.clone().unwrap_or_else(|| "held".to_owned())
                }
                Status::Error => format!("error: {}", l.error.clone().unwrap_or_default()),
            };
            // A newer tag passed over for its age says so beside the verdict.
            if matches!(
                l.status,
                Status::InSync | Status::UpdateAvailable | Status::Updated
            ) && let Some(note) = &l.held
            {
                status = format!("{status}; {note}");
            }
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

/// The drift report: exit 0 when nothing drifts, 2 when something does, 1 on error. With
/// `--kubeconfig` it is three-way: registry, Git and what the cluster runs.
pub fn check(args: &CheckArgs) -> CmdResult {
    let rt = super::runtime()?;
    let loaded = args.source.load_on(&rt)?;
    // Left out (and logged) while the others are checked; the check fails after them.
    let rejected = !loaded.rejected.is_empty();
    let apps = loaded.apps;
    let state = args.source.state_dir();
    let mut updater =
        Updater::with_secrets(loaded.registries, state.clone(), &apps, loaded.secrets)?
            .with_git_credentials(loaded.git_credentials)
            .with_applications(loaded.applications);
    let client = match &args.kubeconfig {
        Some(k) => Some(std::sync::Arc::new(
            driftwatch_cluster::KubeClient::connect(
                &KubeTarget::file(k).with_context(args.context.as_deref()),
            )?,
        )),
        None => None,
    };
    // Promoted images read their upstream's live state once, from the same cluster.
    if let Some(c) = &client {
        let reader = driftwatch_deploy::promote::ClusterLive::new(
            driftwatch_deploy::Clusters::one(c.clone()),
            state.clone(),
            &rt.block_on(updater.with_credentials(&apps)),
        );
        let reader: std::sync::Arc<dyn driftwatch_engine::promote::LiveState> =
            std::sync::Arc::new(reader);
        updater = updater.with_live(Some(driftwatch_engine::promote::Live(reader)));
    }
    let report = rt.block_on(updater.cycle(&apps, Mode::Check));
    let live = client
        .as_ref()
        .map(|client| rt.block_on(live_cells(client, &state, &apps, &updater, &report)));
    if args.output == Output::Json {
        // Buffered: stdout flushes every line, and the report of 10,000 images is 130,000
        // lines (as many writes, most of a warm check's time).
        let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
        match &live {
            None => serde_json::to_writer_pretty(&mut out, &report).context("writing stdout")?,
            Some(cells) => {
                let mut value = serde_json::to_value(&report).context("encoding the report")?;
                if let Some(images) = value.get_mut("images").and_then(|v| v.as_array_mut()) {
                    for (line, cell) in images.iter_mut().zip(cells) {
                        if let Some(cell) = cell {
                            line["live"] = serde_json::to_value(cell).unwrap_or_default();
                        }
                    }
                }
                serde_json::to_writer_pretty(&mut out, &value).context("writing stdout")?;
            }
        }
        writeln!(out).context("writing stdout")?;
        out.flush().context("writing stdout")?;
    } else {
        print_table(&report, live.as_deref()).context("writing stdout")?;
    }
    if report.failed() || rejected {
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

/// The updater loop and, with `--kubeconfig`, Git → cluster: the service, until SIGTERM or
/// Ctrl-C (or one pass with `--once`).
pub fn run(args: &RunArgs, log_format: LogFormat) -> CmdResult {
    let webhook_secret = match &args.webhook_secret_env {
        Some(var) => Some(
            std::env::var(var)
                .with_context(|| format!("--webhook-secret-env: {var} is not set"))?,
        ),
        None => None,
    };
    let ui_token = match &args.ui_token_env {
        Some(var) => {
            let token =
                std::env::var(var).with_context(|| format!("--ui-token-env: {var} is not set"))?;
            // An empty token would let an empty bearer header act.
            if token.trim().is_empty() {
                return Err(anyhow::anyhow!("--ui-token-env: {var} is empty").into());
            }
            Some(token)
        }
        None => None,
    };
    let on_cycle: driftwatch_service::updater::CycleObserver = match log_format {
        // A cycle is one JSON line with the report's fields, as every other line.
        LogFormat::Json => Box::new(|report: &CycleReport| {
            let mut v = serde_json::json!({
                "ts": driftwatch_policy::Timestamp::from_unix_nanos(driftwatch_engine::now_nanos()).to_string(),
                "level": "info",
                "msg": "cycle",
            });
            if let (Some(obj), Ok(serde_json::Value::Object(fields))) =
                (v.as_object_mut(), serde_json::to_value(report))
            {
                obj.extend(fields);
            }
            eprintln!("{v}");
        }),
        LogFormat::Text => Box::new(|report: &CycleReport| {
            let _ = print_table(report, None);
        }),
    };
    let options = driftwatch_service::Options {
        source: args.source.app_source()?,
        state_dir: args.source.state_dir(),
        interval: args.interval.map(Duration::from_secs),
        once: args.once,
        dry_run: args.dry_run,
        listen: args.listen,
        webhook_secret,
        ui_token,
        cluster: args
            .kubeconfig
            .as_deref()
            .map(|k| KubeTarget::file(k).with_context(args.context.as_deref())),
        sync_interval: Duration::from_secs(args.sync_interval),
        on_cycle: (args.once || args.table).then_some(on_cycle),
        leader_election: leader_election(args)?,
    };
    let rt = super::runtime()?;
    let outcome = rt.block_on(async {
        let shutdown = driftwatch_service::Shutdown::new();
        shutdown.cancel_on_signals();
        driftwatch_service::run(options, shutdown).await
    })?;
    if outcome.failed {
        return Err(Failure::Quiet(crate::exit::BAD_INPUT));
    }
    Ok(())
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
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Output::Text)]
    pub output: Output,
    /// Show syncs to the cluster (revision, objects applied and pruned, rollout health) instead
    /// of image updates.
    #[arg(long)]
    pub syncs: bool,
}

/// A source that names only the state directory, for the commands that read the state alone.
fn state_only(state_dir: &Option<PathBuf>) -> Source {
    Source {
        config: None,
        applications: None,
        applications_from_cluster: None,
        applications_kubeconfig: None,
        allow_local_repositories: false,
        applications_context: None,
        registries_conf: None,
        secret_namespaces: Vec::new(),
        argocd_namespace: driftwatch_engine::argocd::DEFAULT_NAMESPACE.to_owned(),
        state_dir: state_dir.clone(),
    }
}

/// `driftwatch approve|reject APP [IMAGE]`.
#[derive(Debug, clap::Args)]
pub struct DecideArgs {
    /// The application.
    pub app: String,
    /// Only this image (as `check` shows it); default: every image of the application that
    /// waits.
    pub image: Option<String>,
    /// Where the state lives.
    #[arg(long, env = "DRIFTWATCH_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

/// Approves (or rejects) the very versions that wait for `app`, as the last cycle listed
/// them; recorded with who (`$USER`) and when. An approved version is written by the next
/// cycle; a rejected one is never proposed again.
pub fn decide(args: &DecideArgs, approve: bool) -> CmdResult {
    let mut store =
        driftwatch_engine::store::Store::open(&state_only(&args.state_dir).state_dir())?;
    let waiting: Vec<_> = store
        .pending(Some(&args.app))?
        .into_iter()
        .filter(|(_, image, _, _)| args.image.as_ref().is_none_or(|i| i == image))
        .collect();
    if waiting.is_empty() {
        return Err(Failure::Error(
            crate::exit::BAD_INPUT,
            anyhow::anyhow!(
                "{}{}: no update waits for approval (`driftwatch check` shows what waits)",
                args.app,
                args.image
                    .as_ref()
                    .map(|i| format!(" {i}"))
                    .unwrap_or_default()
            ),
        ));
    }
    let by = std::env::var("USER").unwrap_or_else(|_| "unknown".to_owned());
    let at = driftwatch_policy::Timestamp::from_unix_nanos(driftwatch_engine::now_nanos());
    for (app, image, value, since) in waiting {
        store.decide(&app, &image, &value, approve, &by, &at.to_string())?;
        println!(
            "{app} {image} {value} (waiting since {since}): {} by {by}",
            if approve { "approved" } else { "rejected" }
        );
    }
    Ok(())
}

/// `driftwatch release APP IMAGE`.
#[derive(Debug, clap::Args)]
pub struct ReleaseArgs {
    /// The application.
    pub app: String,
    /// The image as configured (as `check` and `history` show it).
    pub image: String,
    /// Where the state lives.
    #[arg(long, env = "DRIFTWATCH_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

/// Lifts the hold on an image that someone set back from what driftwatch wrote: recorded with
/// who (`$USER`) and when, so the next cycle writes the policy's choice again.
pub fn release(args: &ReleaseArgs) -> CmdResult {
    let mut store =
        driftwatch_engine::store::Store::open(&state_only(&args.state_dir).state_dir())?;
    let Some(from) = store.last_written(&args.app, &args.image)? else {
        return Err(Failure::Error(
            crate::exit::BAD_INPUT,
            anyhow::anyhow!(
                "{} {}: driftwatch never wrote this image, so nothing holds it (see `driftwatch history`)",
                args.app,
                args.image
            ),
        ));
    };
    let by = std::env::var("USER").unwrap_or_else(|_| "unknown".to_owned());
    let at = driftwatch_policy::Timestamp::from_unix_nanos(driftwatch_engine::now_nanos());
    store.release(&args.app, &args.image, &from, &by, &at.to_string())?;
    println!(
        "{} {}: the hold from {from} is lifted (by {by}); the next cycle writes the policy's choice",
        args.app, args.image
    );
    Ok(())
}

/// Every update driftwatch made, newest first.
pub fn history(args: &HistoryArgs) -> CmdResult {
    let source = state_only(&args.state_dir);
    let store = driftwatch_engine::store::Store::open(&source.state_dir())?;
    let mut out = std::io::stdout().lock();
    if args.syncs {
        let syncs = store.syncs(args.app.as_deref(), args.limit)?;
        if args.output == Output::Json {
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
    if args.output == Output::Json {
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
