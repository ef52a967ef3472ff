//! `driftwatch tags` and `driftwatch test`: what a registry holds, and what the policy would
//! pick from it, as `argocd-image-updater test` shows.

use super::Output;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, anyhow};
use driftwatch_policy::{ImageListEntry, ImageRef, Strategy};
use driftwatch_registry::{Client, Needs, Options, RegistriesConf, Scanner, Source};
use futures_util::future::join_all;

use super::runtime;
use super::select::{PolicyArgs, Report, chosen_text, no_match_summary};
use crate::exit::{CmdResult, Failure, NO_MATCH};

/// How to reach registries.
#[derive(Debug, clap::Args)]
pub struct RegistryArgs {
    /// Credentials for the image's registry: `env:VAR` (user:password), `ext:/path/script`,
    /// `file:/path/config.json` (Docker config or .dockerconfigjson). Default: Docker's config.
    #[arg(long, value_name = "SPEC")]
    pub credentials: Option<String>,
    /// argocd-image-updater's registries.conf.
    #[arg(long, value_name = "FILE")]
    pub registries_conf: Option<PathBuf>,
}

impl RegistryArgs {
    fn client(&self) -> anyhow::Result<Client> {
        let conf = match &self.registries_conf {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                RegistriesConf::parse(&text, &path.display().to_string())?
            }
            None => RegistriesConf::default(),
        };
        let options = Options {
            credentials: self
                .credentials
                .as_deref()
                .map(Source::parse)
                .transpose()
                .context("--credentials")?,
            ..Options::default()
        };
        Ok(Client::new(conf, options)?)
    }
}

/// True when the user named no registry (`nginx`, `org/app`), which selects the default entry.
fn implicit_registry(image: &str) -> bool {
    match image.split_once('/') {
        None => true,
        Some((first, _)) => {
            !(first.contains(['.', ':'])
                || first == "localhost"
                || first.bytes().any(|b| b.is_ascii_uppercase()))
        }
    }
}

/// `tags` arguments.
#[derive(Debug, clap::Args)]
pub struct TagsArgs {
    /// One or more images, e.g. `nginx`, `ghcr.io/org/app`; several are listed concurrently.
    #[arg(required = true)]
    pub images: Vec<String>,
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// text (one tag per line; `image<TAB>tag` for several images) or json.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Output::Text)]
    pub output: Output,
    /// Print request counts by registry, endpoint and status to stderr as JSON.
    #[arg(long)]
    pub stats: bool,
}

/// Lists repositories' tags, each repository once, several at a time.
pub fn tags(args: &TagsArgs) -> CmdResult {
    let images = args
        .images
        .iter()
        .map(|i| ImageRef::parse(i).map(|r| (r, implicit_registry(i))))
        .collect::<Result<Vec<_>, _>>()
        .context("IMAGE")?;
    let client = args.registry.client()?;
    let scanner = Scanner::new(client);
    let cycle = scanner.cycle();
    // Only worth a bar when there are several repositories to list.
    let progress = if images.len() > 1 {
        crate::progress::bar(images.len() as u64, "repositories")
    } else {
        indicatif::ProgressBar::hidden()
    };
    let results = runtime()?.block_on(async {
        let mut set = Vec::new();
        for chunk in images.chunks(16) {
            let futures = chunk.iter().map(|(image, implicit)| async {
                let r = cycle.tags(image, *implicit).await;
                progress.inc(1);
                r
            });
            set.extend(join_all(futures).await);
        }
        set
    });
    progress.finish_and_clear();
    let mut out = std::io::stdout().lock();
    let mut json = serde_json::Map::new();
    let mut failed = None;
    for ((image, _), result) in images.iter().zip(results) {
        let list = match result {
            Ok(l) => l,
            Err(e) => {
                eprintln!("error: {e}");
                failed = Some(e);
                continue;
            }
        };
        if list.truncated {
            eprintln!(
                "warning: {}: the tag list was cut at {} tags",
                image.name(),
                list.tags.len()
            );
        }
        if args.output == Output::Json {
            json.insert(image.name(), serde_json::json!(list.tags));
        } else {
            for t in &list.tags {
                if images.len() > 1 {
                    writeln!(out, "{}\t{t}", image.name())
                } else {
                    writeln!(out, "{t}")
                }
                .context("writing stdout")?;
            }
        }
    }
    if args.output == Output::Json {
        serde_json::to_writer_pretty(&mut out, &json).context("writing stdout")?;
        writeln!(out).context("writing stdout")?;
    }
    if args.stats {
        let counts: Vec<serde_json::Value> = scanner
            .client()
            .stats()
            .snapshot()
            .into_iter()
            .map(|c| serde_json::json!({"registry": c.registry, "endpoint": c.endpoint, "status": c.status, "count": c.count}))
            .collect();
        eprintln!(
            "{}",
            serde_json::json!({"requests": scanner.client().stats().total(), "counts": counts})
        );
    }
    match failed {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

/// `test` arguments.
#[derive(Debug, clap::Args)]
pub struct TestArgs {
    /// The image, optionally with a constraint or tracked tag as in an image-list entry
    /// (`nginx:~1.25`); `--constraint` takes precedence.
    pub image: String,
    #[command(flatten)]
    pub policy: PolicyArgs,
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// text or json.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Output::Text)]
    pub output: Output,
    /// Print only the chosen tag (for digest: `tag@sha256:…`).
    #[arg(short, long)]
    pub quiet: bool,
}

/// Scans the image's repository and shows every candidate's verdict and the pick.
pub fn test(args: &TestArgs) -> CmdResult {
    let entry = ImageListEntry::parse(&args.image).context("IMAGE")?;
    let mut policy_args = args.policy.clone();
    if policy_args.constraint.is_none() {
        policy_args.constraint = entry.constraint.clone();
    }
    let policy = policy_args.policy()?;
    let image = entry.image.clone();
    let implicit = implicit_registry(
        args.image
            .split_once('=')
            .map_or(args.image.as_str(), |(_, r)| r),
    );
    let client = args.registry.client()?;
    let scanner = Scanner::new(client);
    let needs = Needs {
        created: policy.strategy() == Strategy::NewestBuild,
        digest: policy.strategy() == Strategy::Digest,
        platforms: !policy.filter().wanted_platforms().is_empty(),
    };
    let started = Instant::now();
    let rt = runtime()?;
    let cycle = scanner.cycle();
    let (candidates, truncated) = rt
        .block_on(cycle.candidates(&image, implicit, needs, policy.tracked_tag()))
        .map_err(|e| anyhow!(e))?;
    let elapsed = started.elapsed();
    if truncated {
        eprintln!("warning: the tag list was cut at {} tags", candidates.len());
    }
    let evaluation = policy.evaluate(&candidates);
    let chosen = evaluation.chosen().map(|i| &candidates[i]);
    let mut out = std::io::stdout().lock();
    if args.quiet {
        if let Some(c) = chosen {
            writeln!(out, "{}", chosen_text(&policy, c)).context("writing stdout")?;
        }
    } else if args.output == Output::Json {
        let report = Report::new(&policy, &candidates, &evaluation);
        let mut value = serde_json::to_value(&report).context("encoding the report")?;
        value["image"] = serde_json::Value::String(image.name());
        value["requests"] = serde_json::Value::from(scanner.client().stats().total());
        serde_json::to_writer_pretty(&mut out, &value).context("writing stdout")?;
        writeln!(out).context("writing stdout")?;
    } else {
        let ep = scanner.client().endpoint(&image, implicit);
        writeln!(out, "image:      {} (via {})", image.name(), ep.base_url)
            .context("writing stdout")?;
        writeln!(out, "policy:     {policy}").context("writing stdout")?;
        writeln!(out, "candidates: {} tags", candidates.len()).context("writing stdout")?;
        for &i in &evaluation.ranked {
            let c = &candidates[i];
            let mark = if Some(i) == evaluation.chosen() {
                "chosen"
            } else {
                "eligible"
            };
            writeln!(out, "  {:<30} {mark}", c.tag).context("writing stdout")?;
        }
        for (c, v) in candidates.iter().zip(&evaluation.verdicts) {
            if let Some(reason) = v {
                writeln!(
                    out,
                    "  {:<30} rejected: {}",
                    c.tag,
                    policy.explain(c, *reason)
                )
                .context("writing stdout")?;
            }
        }
        match chosen {
            Some(c) => writeln!(out, "chosen:     {}", chosen_text(&policy, c)),
            None => writeln!(out, "chosen:     none"),
        }
        .context("writing stdout")?;
        eprintln!(
            "scanned in {} ms with {} registry requests",
            elapsed.as_millis(),
            scanner.client().stats().total()
        );
    }
    if chosen.is_none() {
        if args.quiet || args.output == Output::Json {
            eprintln!(
                "{}",
                no_match_summary(&policy, &candidates, &evaluation.verdicts)
            );
        }
        return Err(Failure::Quiet(NO_MATCH));
    }
    Ok(())
}
