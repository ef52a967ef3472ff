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
    /// argocd-image-updater's registries.conf, with --applications.
    #[arg(long, value_name = "FILE")]
    pub registries_conf: Option<PathBuf>,
    /// Where Git mirrors are kept.
    #[arg(long, env = "DRIFTWATCH_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

impl Source {
    fn load(&self) -> anyhow::Result<(Vec<App>, RegistriesConf, Duration)> {
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
            (None, None) => bail!("give --config FILE or --applications PATH"),
        }
    }

    fn state_dir(&self) -> PathBuf {
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
}

/// `check` arguments.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub source: Source,
    /// table or json.
    #[arg(short = 'o', long = "output", default_value = "table", value_parser = ["table", "json"])]
    pub output: String,
}

fn print_table(report: &CycleReport) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    let rows: Vec<[String; 5]> = report
        .images
        .iter()
        .map(|l| {
            [
                l.app.clone(),
                l.image.clone(),
                l.registry.clone().unwrap_or_else(|| "-".to_owned()),
                l.git.clone().unwrap_or_else(|| "-".to_owned()),
                match l.status {
                    Status::InSync => "in sync".to_owned(),
                    Status::UpdateAvailable => "update available".to_owned(),
                    Status::Updated => "updated".to_owned(),
                    Status::NoCandidate => "no candidate".to_owned(),
                    Status::Error => format!("error: {}", l.error.clone().unwrap_or_default()),
                },
            ]
        })
        .collect();
    let header = ["APP", "IMAGE", "REGISTRY", "GIT", "STATUS"];
    let mut widths = header.map(str::len);
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.len());
        }
    }
    let line = |cells: [&str; 5]| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i == 4 {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  ", w = widths[i]));
            }
        }
        s
    };
    writeln!(out, "{}", line(header))?;
    for r in &rows {
        writeln!(out, "{}", line([&r[0], &r[1], &r[2], &r[3], &r[4]]))?;
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

/// The drift report: exit 0 when nothing drifts, 2 when something does, 1 on error.
pub fn check(args: &CheckArgs) -> CmdResult {
    let (apps, registries, _) = args.source.load()?;
    let updater = Updater::new(registries, args.source.state_dir())?;
    let report = updater.cycle(&apps, Mode::Check);
    if args.output == "json" {
        let mut out = std::io::stdout().lock();
        serde_json::to_writer_pretty(&mut out, &report).context("writing stdout")?;
        writeln!(out).context("writing stdout")?;
    } else {
        print_table(&report).context("writing stdout")?;
    }
    if report.failed() {
        return Err(Failure::Quiet(crate::exit::BAD_INPUT));
    }
    if report.drifts() {
        return Err(Failure::Quiet(DRIFT));
    }
    Ok(())
}

/// The updater loop: cycles on an interval with jitter until SIGTERM or SIGINT, which let the
/// current cycle finish (a cycle never leaves a half-written repository: commits are built
/// without a work tree and pushed whole).
pub fn run(args: &RunArgs) -> CmdResult {
    let (apps, registries, interval) = args.source.load()?;
    let interval = args.interval.map_or(interval, Duration::from_secs);
    let updater = Updater::new(registries, args.source.state_dir())?;
    let mode = if args.dry_run {
        Mode::DryRun
    } else {
        Mode::Apply
    };
    let signals = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the signal runtime")?;
    let mut cycles = 0u64;
    loop {
        cycles += 1;
        let report = updater.cycle(&apps, mode);
        print_table(&report).context("writing stdout")?;
        if args.once {
            return if report.failed() {
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
        let stop = signals.block_on(async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
            tokio::select! {
                _ = tokio::time::sleep(wait) => Ok::<bool, std::io::Error>(false),
                _ = term.recv() => Ok(true),
                _ = tokio::signal::ctrl_c() => Ok(true),
            }
        });
        if stop.unwrap_or(true) {
            eprintln!("stopping after {cycles} cycle(s)");
            return Ok(());
        }
    }
}
