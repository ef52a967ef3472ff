//! `driftwatch render APP` and `driftwatch diff APP --live FILE`: what Git says an application
//! is, and how a cluster snapshot (`kubectl get -o yaml`) differs from it, for offline audits.

use super::Output;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{Context, anyhow};
use driftwatch_cluster::{IgnoreRule, ObjectDiff, Rendered, Tool, diff, parse_objects};
use driftwatch_engine::App;

use super::run::Source;
use crate::exit::{CmdResult, Failure};

/// `render` arguments.
#[derive(Debug, clap::Args)]
pub struct RenderArgs {
    /// The application's name.
    pub app: String,
    #[command(flatten)]
    pub source: Source,
}

/// `diff` arguments.
#[derive(Debug, clap::Args)]
pub struct DiffArgs {
    /// The application's name.
    pub app: String,
    #[command(flatten)]
    pub source: Source,
    /// A `kubectl get -o yaml` export (a List or several documents) to compare with, instead
    /// of the cluster.
    #[arg(long, value_name = "FILE")]
    pub live: Option<PathBuf>,
    /// The cluster to compare with (default: $KUBECONFIG).
    #[arg(long, env = "KUBECONFIG", value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context (default: its current-context).
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
    /// Namespace for objects that name none (default: the application's sync namespace, else
    /// `default`).
    #[arg(long)]
    pub namespace: Option<String>,
    /// Ignore a field: `KIND[/NAME]:/json/pointer` (repeatable), like Argo CD's ignoreDifferences.
    #[arg(long = "ignore", value_name = "RULE")]
    pub ignore: Vec<String>,
    /// text or json.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

/// The namespace for objects that name none: the flag, the application's, or `default`.
fn namespace_of(flag: Option<&String>, app: &App) -> String {
    flag.cloned()
        .or_else(|| app.sync.as_ref().map(|s| s.namespace.clone()))
        .unwrap_or_else(|| "default".to_owned())
}

fn find_app(source: &Source, name: &str) -> anyhow::Result<App> {
    let (apps, _, _) = source.load()?;
    let names: Vec<String> = apps.iter().map(|a| a.name.clone()).collect();
    apps.into_iter()
        .find(|a| a.name == name)
        .ok_or_else(|| anyhow!("no application {name:?} (known: {})", names.join(", ")))
}

/// The application's head and its rendering there (cached by commit, path and tool version).
fn render_app(source: &Source, app: &App) -> anyhow::Result<(String, Rendered)> {
    Ok(driftwatch_deploy::render_head(&source.state_dir(), app)?)
}

/// Prints the rendered objects as JSON, one per line.
pub fn render_cmd(args: &RenderArgs) -> CmdResult {
    let app = find_app(&args.source, &args.app)?;
    let (head, rendered) = render_app(&args.source, &app)?;
    eprintln!(
        "{} at {} rendered with {}: {} objects",
        app.path,
        &head[..head.len().min(12)],
        rendered.tool,
        rendered.objects.len()
    );
    let mut out = std::io::stdout().lock();
    for o in &rendered.objects {
        writeln!(out, "{o}").context("writing stdout")?;
    }
    Ok(())
}

fn parse_rule(rule: &str) -> anyhow::Result<IgnoreRule> {
    let (target, pointer) = rule
        .split_once(':')
        .ok_or_else(|| anyhow!("--ignore {rule:?}: expected KIND[/NAME]:/json/pointer"))?;
    if !pointer.starts_with('/') {
        return Err(anyhow!(
            "--ignore {rule:?}: the JSON pointer must start with /"
        ));
    }
    let (kind, name) = match target.split_once('/') {
        Some((k, n)) => (k, Some(n.to_owned())),
        None => (target, None),
    };
    Ok(IgnoreRule {
        kind: (!kind.is_empty() && kind != "*").then(|| kind.to_owned()),
        name,
        json_pointers: vec![pointer.to_owned()],
        managers: Vec::new(),
    })
}

/// Compares Git's rendering with a live snapshot: exit 0 when equal, 2 when something drifts.
pub fn diff_cmd(args: &DiffArgs) -> CmdResult {
    let mut rules = args
        .ignore
        .iter()
        .map(|r| parse_rule(r))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let app = find_app(&args.source, &args.app)?;
    // The application's own ignoreDifferences, then the command line's.
    rules.splice(0..0, driftwatch_deploy::ignore_rules(&app));
    let namespace = namespace_of(args.namespace.as_ref(), &app);
    let (_, rendered) = render_app(&args.source, &app)?;
    let diffs: Vec<ObjectDiff> = match (&args.live, &args.kubeconfig) {
        (Some(file), _) => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("reading {}", file.display()))?;
            let live = parse_objects(&text, &file.display().to_string())?;
            diff(&rendered.objects, &live, &rules)
        }
        // Against a cluster: the verdict `status` and `run` give, the server's dry run included.
        (None, Some(kubeconfig)) => {
            let client = driftwatch_cluster::KubeClient::connect(
                &driftwatch_cluster::KubeTarget::file(kubeconfig)
                    .with_context(args.context.as_deref().or(cluster_of(&app))),
            )?;
            let comparison = super::runtime()?.block_on(driftwatch_deploy::compare(
                &client,
                &app.name,
                &rendered.objects,
                &driftwatch_deploy::inventory::load(&args.source.state_dir(), &app.name),
                &namespace,
                &rules,
            ))?;
            comparison.differences().into_iter().cloned().collect()
        }
        (None, None) => {
            return Err(
                anyhow!("give --live FILE or a cluster (--kubeconfig or $KUBECONFIG)").into(),
            );
        }
    };
    let mut out = std::io::stdout().lock();
    if args.output == Output::Json {
        let v: Vec<serde_json::Value> = diffs
            .iter()
            .map(|d| {
                serde_json::json!({
                    "object": d.key.to_string(),
                    "missing": d.missing,
                    "requiresPruning": d.orphan,
                    "fields": d.fields.iter().map(|f| serde_json::json!({
                        "path": f.path, "pointer": f.pointer, "git": f.git, "live": f.live, "manager": f.manager,
                        "held": f.held, "hint": f.hint(),
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        serde_json::to_writer_pretty(&mut out, &v).context("writing stdout")?;
        writeln!(out).context("writing stdout")?;
    } else {
        for d in &diffs {
            if d.missing {
                writeln!(out, "{}: missing in the cluster", d.key).context("writing stdout")?;
            }
            if d.orphan {
                writeln!(
                    out,
                    "{}: requires pruning (applied by {} before, no longer in Git)",
                    d.key, app.name
                )
                .context("writing stdout")?;
            }
            for f in &d.fields {
                writeln!(
                    out,
                    "{}: {}: git {} live {}{}",
                    d.key,
                    f.path,
                    f.git,
                    f.live
                        .as_ref()
                        .map_or("(absent)".to_owned(), ToString::to_string),
                    match (&f.manager, f.held) {
                        (Some(m), true) => format!(" (held by {m} through /scale)"),
                        (Some(m), false) => format!(" (written by {m})"),
                        (None, _) => String::new(),
                    }
                )
                .context("writing stdout")?;
                if let Some(hint) = f.hint() {
                    writeln!(out, "  hint: {hint}").context("writing stdout")?;
                }
            }
        }
        if diffs.is_empty() {
            writeln!(
                out,
                "{}: in sync ({} objects, {})",
                app.name,
                rendered.objects.len(),
                match &rendered.tool {
                    Tool::Plain => "plain YAML".to_owned(),
                    t => t.to_string(),
                }
            )
            .context("writing stdout")?;
        }
    }
    if diffs.is_empty() {
        Ok(())
    } else {
        Err(Failure::Quiet(2))
    }
}

/// The cluster a command talks to, and the namespace for objects that name none.
#[derive(Debug, clap::Args)]
pub struct ClusterArgs {
    /// The cluster: kubeconfig file(s), several joined like `KUBECONFIG` (default:
    /// $KUBECONFIG, else ~/.kube/config, else the in-cluster service account).
    #[arg(long, env = "KUBECONFIG", value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context (default: its current-context).
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
    /// Namespace for objects that name none (default: the application's sync namespace, else
    /// `default`).
    #[arg(long)]
    pub namespace: Option<String>,
}

impl ClusterArgs {
    /// A client for the cluster of application `app`: the context `--context` names, else the
    /// one its `sync.cluster` names, else the kubeconfig's current one.
    fn connect(
        &self,
        app: &App,
    ) -> Result<driftwatch_cluster::KubeClient, driftwatch_cluster::Error> {
        driftwatch_cluster::KubeClient::connect(&driftwatch_cluster::KubeTarget {
            kubeconfig: self.kubeconfig.clone(),
            context: self
                .context
                .clone()
                .or_else(|| cluster_of(app).map(str::to_owned)),
        })
    }
}

/// The kubeconfig context an application's `sync.cluster` names, if any.
fn cluster_of(app: &App) -> Option<&str> {
    app.sync.as_ref().and_then(|p| p.cluster.as_deref())
}

/// `sync` arguments.
#[derive(Debug, clap::Args)]
pub struct SyncArgs {
    /// The application's name.
    pub app: String,
    #[command(flatten)]
    pub source: Source,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Delete objects this application applied before that Git no longer has.
    #[arg(long)]
    pub prune: bool,
    /// Let prune delete everything when Git renders nothing.
    #[arg(long)]
    pub allow_empty: bool,
    /// Show what would change; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Wait until the applied workloads are healthy (or degraded), at most this many seconds.
    #[arg(long, value_name = "SECONDS")]
    pub wait: Option<u64>,
    /// After syncing, keep watching and heal manual changes the moment they happen (until
    /// SIGTERM or Ctrl-C).
    #[arg(long, conflicts_with = "dry_run")]
    pub self_heal: bool,
}

/// Applies what Git says with server-side apply, and prunes what it no longer says.
pub fn sync_cmd(args: &SyncArgs) -> CmdResult {
    let app = find_app(&args.source, &args.app)?;
    let namespace = namespace_of(args.cluster.namespace.as_ref(), &app);
    let (head, rendered) = render_app(&args.source, &app)?;
    let client = std::sync::Arc::new(args.cluster.connect(&app)?);
    let state = args.source.state_dir();
    let opts = driftwatch_cluster::SyncOptions {
        app: app.name.clone(),
        namespace: namespace.clone(),
        prune: args.prune,
        allow_empty: args.allow_empty,
        dry_run: args.dry_run,
        ignore: driftwatch_deploy::ignore_rules(&app),
    };
    let rt = super::runtime()?;
    let report = rt.block_on(driftwatch_deploy::apply(
        &client,
        &state,
        &rendered.objects,
        &opts,
    ))?;
    let mut out = std::io::stdout().lock();
    let verb = if args.dry_run {
        "would apply"
    } else {
        "applied"
    };
    for k in &report.applied {
        writeln!(out, "{verb} {k}").context("writing stdout")?;
    }
    for k in &report.pruned {
        writeln!(
            out,
            "{} {k}",
            if args.dry_run {
                "would prune"
            } else {
                "pruned"
            }
        )
        .context("writing stdout")?;
    }
    for k in &report.orphaned {
        writeln!(out, "left {k} (no longer in Git; prune is off)").context("writing stdout")?;
    }
    writeln!(
        out,
        "{}: synced to {} ({} applied, {} unchanged, {} pruned)",
        app.name,
        &head[..head.len().min(12)],
        report.applied.len(),
        report.unchanged.len(),
        report.pruned.len()
    )
    .context("writing stdout")?;
    drop(out);
    let (health, detail) = match args.wait {
        Some(secs) if !args.dry_run => {
            let spinner = crate::progress::spinner(format!(
                "{}: waiting for the rollout (at most {secs} s)",
                app.name
            ));
            let waited = rt.block_on(driftwatch_deploy::rollout::wait(
                &client,
                &rendered.objects,
                &namespace,
                std::time::Duration::from_secs(secs),
            ));
            spinner.finish_and_clear();
            let (h, d) = waited?;
            println!("{}: {h} ({d})", app.name);
            (h.to_string(), d)
        }
        _ => ("not waited".to_owned(), String::new()),
    };
    if !args.dry_run {
        driftwatch_deploy::rollout::record(&state, &app.name, &head, &report, &health, detail)?;
    }
    if health == "Degraded" {
        return Err(Failure::Quiet(crate::exit::BAD_INPUT));
    }
    if args.self_heal {
        let opts = driftwatch_cluster::HealOptions::new(&app.name, &namespace);
        let mut report = |e: &driftwatch_cluster::HealEvent| {
            println!("{}", driftwatch_service::deploy::describe_heal(e));
            true
        };
        rt.block_on(async {
            let shutdown = driftwatch_service::Shutdown::new();
            shutdown.cancel_on_signals();
            tokio::select! {
                r = driftwatch_cluster::watch_and_heal(client.clone(), &rendered.objects, &opts, &mut report) => r,
                () = shutdown.cancelled() => Ok(()),
            }
        })?;
    }
    Ok(())
}

/// `status` arguments.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub source: Source,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// table or json.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Output::Text)]
    pub output: Output,
    /// Keep watching: check again every --interval and print the table again when it changed
    /// (until Ctrl-C).
    #[arg(short = 'w', long)]
    pub watch: bool,
    /// Seconds between checks with --watch.
    #[arg(long, value_name = "SECONDS", default_value_t = 2, requires = "watch")]
    pub interval: u64,
    /// With --watch: stop after printing this many tables (the first one included).
    #[arg(long, value_name = "N", requires = "watch")]
    pub count: Option<u64>,
}

/// Per application: Synced or OutOfSync, and the worst health of its objects. With `--watch`,
/// checks again every `--interval` and prints the table again whenever it changed: on a
/// terminal the screen is redrawn, elsewhere (pipes, logs) each new table follows the last
/// after a blank line. Ctrl-C or SIGTERM ends the watch; `--count N` ends it after N tables.
/// The exit code is the last table's: 2 when an application is OutOfSync.
pub fn status_cmd(args: &StatusArgs) -> CmdResult {
    let (apps, _, _) = args.source.load()?;
    // One connection per cluster the applications name; one that cannot be made is that
    // application's error, and the others go on.
    let mut clients: Connections = std::collections::HashMap::new();
    for app in &apps {
        let name = cluster_of(app).map(str::to_owned);
        if let std::collections::hash_map::Entry::Vacant(slot) = clients.entry(name) {
            // The default cluster (or every one, with --context) must be reachable.
            let client = if slot.key().is_none() || args.cluster.context.is_some() {
                Ok(args.cluster.connect(app)?)
            } else {
                args.cluster.connect(app).map_err(|e| e.to_string())
            };
            slot.insert(client);
        }
    }
    let rt = super::runtime()?;
    // Promoted images say what they wait for; their upstreams are read on the default cluster
    // (--kubeconfig/--context).
    let promoting = apps
        .iter()
        .flat_map(|a| &a.images)
        .any(|i| i.promote.is_some());
    let live = if promoting {
        let client = std::sync::Arc::new(driftwatch_cluster::KubeClient::connect(
            &driftwatch_cluster::KubeTarget {
                kubeconfig: args.cluster.kubeconfig.clone(),
                context: args.cluster.context.clone(),
            },
        )?);
        Some(driftwatch_deploy::promote::ClusterLive::new(
            driftwatch_deploy::Clusters::one(client),
            args.source.state_dir(),
            &apps,
        ))
    } else {
        None
    };
    let clients = (clients, live);
    if !args.watch {
        let (table, any_out) = status_table(args, &apps, &clients, &rt)?;
        print_table(&table, false, None)?;
        return verdict(any_out);
    }
    let shutdown = driftwatch_service::Shutdown::new();
    rt.block_on(async { shutdown.cancel_on_signals() });
    let redraw = std::io::stdout().is_terminal();
    let interval = std::time::Duration::from_secs(args.interval.max(1));
    let mut last: Option<String> = None;
    let mut any_out = Verdict::Synced;
    let mut shown = 0;
    loop {
        let (table, out_now) = status_table(args, &apps, &clients, &rt)?;
        if last.as_ref() != Some(&table) {
            let header = redraw.then(|| {
                format!(
                    "driftwatch status, every {} s (Ctrl-C to stop)",
                    interval.as_secs()
                )
            });
            print_table(&table, shown > 0 && !redraw, header.as_deref())?;
            shown += 1;
            any_out = out_now;
            last = Some(table);
        }
        if args.count.is_some_and(|n| shown >= n) {
            break;
        }
        let stopped = rt.block_on(async {
            tokio::select! {
                () = shutdown.cancelled() => true,
                () = tokio::time::sleep(interval) => false,
            }
        });
        if stopped {
            break;
        }
    }
    verdict(any_out)
}

/// What `status` says of all applications, as its exit code: 0 all Synced, 2 some OutOfSync,
/// 1 some could not be compared (its row says why) — an error is never taken for "in sync".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    Synced,
    OutOfSync,
    Error,
}

fn verdict(v: Verdict) -> CmdResult {
    match v {
        Verdict::Synced => Ok(()),
        Verdict::OutOfSync => Err(Failure::Quiet(2)),
        Verdict::Error => Err(Failure::Quiet(crate::exit::BAD_INPUT)),
    }
}

/// Prints one status table: after a blank line when `gap`, and with the screen cleared and
/// `header` on top when there is one (a terminal under `--watch`).
fn print_table(table: &str, gap: bool, header: Option<&str>) -> CmdResult {
    let mut out = std::io::stdout().lock();
    if let Some(h) = header {
        // Home the cursor and clear the screen, as watch(1) does.
        write!(out, "\x1b[H\x1b[2J{h}\n\n").context("writing stdout")?;
    } else if gap {
        writeln!(out).context("writing stdout")?;
    }
    out.write_all(table.as_bytes()).context("writing stdout")?;
    out.flush().context("writing stdout")?;
    Ok(())
}

/// A connection per cluster name (`None`: the default), or why it could not be made.
type Connections =
    std::collections::HashMap<Option<String>, Result<driftwatch_cluster::KubeClient, String>>;

/// The connections, and the reader of promoted images' upstreams (when some image is promoted).
type Clients = (Connections, Option<driftwatch_deploy::promote::ClusterLive>);

/// What `app`'s promoted images wait for (`IMAGE: waiting: …`, `IMAGE: blocked: …`), as a
/// cycle would decide it now; the soak clock is read from the state store, not changed.
fn promotion_waits(
    live: &driftwatch_deploy::promote::ClusterLive,
    state: &std::path::Path,
    app: &App,
    rt: &tokio::runtime::Runtime,
) -> Vec<String> {
    use driftwatch_engine::promote::{Decision, LiveState as _, decide};
    let store = driftwatch_engine::store::Store::open(state).ok();
    let mut out = Vec::new();
    for img in &app.images {
        let Some(p) = &img.promote else { continue };
        let name = img.image.name();
        let observed = rt.block_on(live.observe(&p.from, &img.image));
        let soaking = store
            .as_ref()
            .and_then(|s| s.soaking(&p.from, &name).ok())
            .flatten();
        let (decision, _) = decide(
            p,
            &name,
            observed.as_ref().map_err(String::as_str),
            soaking.as_ref(),
            driftwatch_engine::now_nanos(),
        );
        match decision {
            Decision::Wait(why) | Decision::Blocked(why) => {
                out.push(format!("{}: {why}", img.written));
            }
            Decision::Promote { .. } => {}
        }
    }
    out
}

/// Compares every application with the cluster once: the table (or JSON) to print, and whether
/// any application is OutOfSync.
fn status_table(
    args: &StatusArgs,
    apps: &[App],
    clients: &Clients,
    rt: &tokio::runtime::Runtime,
) -> anyhow::Result<(String, Verdict)> {
    use std::fmt::Write as _;
    let mut rows = Vec::new();
    let mut any_out = false;
    let mut any_error = false;
    for app in apps {
        let client = match clients.0.get(&cluster_of(app).map(str::to_owned)) {
            Some(Ok(c)) => Ok(c),
            Some(Err(e)) => Err(anyhow::anyhow!("{e}")),
            None => Err(anyhow::anyhow!("no connection")),
        };
        let row = match client.and_then(|c| Ok((c, render_app(&args.source, app)?))) {
            Err(e) => {
                any_error = true;
                serde_json::json!({"app": app.name, "sync": "Unknown", "health": "Unknown", "detail": format!("{e:#}")})
            }
            Ok((client, (head, rendered))) => {
                let comparison = rt.block_on(driftwatch_deploy::compare(
                    client,
                    &app.name,
                    &rendered.objects,
                    &driftwatch_deploy::inventory::load(&args.source.state_dir(), &app.name),
                    &namespace_of(args.cluster.namespace.as_ref(), app),
                    &driftwatch_deploy::ignore_rules(app),
                ))?;
                let (health, detail) = comparison.health();
                any_out |= comparison.sync() == driftwatch_deploy::SyncStatus::OutOfSync;
                serde_json::json!({
                    "app": app.name,
                    "revision": &head[..head.len().min(12)],
                    "sync": comparison.sync().to_string(),
                    "outOfSync": comparison.differences().len(),
                    "health": health.to_string(),
                    "detail": detail,
                })
            }
        };
        let mut row = row;
        if let Some(live) = &clients.1 {
            let waits = promotion_waits(live, &args.source.state_dir(), app, rt);
            if !waits.is_empty() {
                row["promotion"] = waits.into();
            }
        }
        rows.push(row);
    }
    let mut out = String::new();
    if args.output == Output::Json {
        out = serde_json::to_string_pretty(&rows).context("writing JSON")?;
        out.push('\n');
    } else {
        // Writing to a String cannot fail.
        let _ = writeln!(
            out,
            "{:<20} {:<10} {:<12} {:<12} DETAIL",
            "APP", "REVISION", "SYNC", "HEALTH"
        );
        for r in &rows {
            let _ = writeln!(
                out,
                "{:<20} {:<10} {:<12} {:<12} {}",
                r["app"].as_str().unwrap_or(""),
                r["revision"].as_str().unwrap_or("-"),
                r["sync"].as_str().unwrap_or(""),
                r["health"].as_str().unwrap_or(""),
                r["detail"].as_str().unwrap_or("")
            );
            for w in r["promotion"].as_array().into_iter().flatten() {
                let _ = writeln!(out, "{:<20} promotion: {}", "", w.as_str().unwrap_or(""));
            }
        }
    }
    let verdict = if any_error {
        Verdict::Error
    } else if any_out {
        Verdict::OutOfSync
    } else {
        Verdict::Synced
    };
    Ok((out, verdict))
}

/// `rollback` arguments.
#[derive(Debug, clap::Args)]
pub struct RollbackArgs {
    /// The application's name.
    pub app: String,
    /// The Git revision (commit) to return the application's path to.
    pub rev: String,
    #[command(flatten)]
    pub source: Source,
}

/// Rolls back through Git: one new commit on the branch that makes the application's path what
/// it was at REV (files changed back, added ones removed, removed ones restored). History is
/// kept; the next sync applies it.
pub fn rollback_cmd(args: &RollbackArgs) -> CmdResult {
    let app = find_app(&args.source, &args.app)?;
    let state = args.source.state_dir();
    let outcome = driftwatch_deploy::rollback::rollback(&state, &app, &args.rev)
        .with_context(|| format!("rolling {} back to {:?}", app.name, args.rev))?;
    let short: String = args.rev.chars().take(12).collect();
    match outcome {
        driftwatch_git::Outcome::Unchanged => println!("{}: already as at {short}", app.name),
        driftwatch_git::Outcome::Pushed { commit, branch, .. } => {
            println!(
                "{}: rolled back to {short} in {} on {branch}",
                app.name,
                &commit[..commit.len().min(12)]
            );
        }
    }
    Ok(())
}
