//! `driftwatch select`: the scriptable face of the policy engine.
//!
//! Reads one tag per line on stdin — optionally followed by whitespace-separated fields: an
//! RFC 3339 creation time, a digest (`sha256:…`), platforms (`linux/amd64,linux/arm64`) — and
//! prints the chosen tag.

use super::Output;
use std::collections::{BTreeMap, HashSet};
use std::io::{Read, Write};

use anyhow::{Context, anyhow, bail};
use driftwatch_policy::{
    Candidate, Digest, Order, Platform, Policy, Reason, Strategy, TagFilter, Timestamp,
};
use serde::Serialize;

use crate::exit::{CmdResult, Failure, NO_MATCH};

/// Flags shared by every command that applies a policy (`select`, later `test`).
#[derive(Debug, Clone, clap::Args)]
pub struct PolicyArgs {
    /// Update strategy: semver, newest-build (latest), alphabetical (name), numerical, digest.
    #[arg(long, default_value = "semver")]
    pub strategy: String,
    /// For semver: a Masterminds constraint (`~1.0`, `>=1.2, <2 || 3.x`); for digest: the tag to
    /// follow. Without one, semver takes every release and no prereleases.
    #[arg(long, allow_hyphen_values = true)]
    pub constraint: Option<String>,
    /// Which tags may be considered: `any` or `regexp:<expression>`.
    #[arg(long, value_name = "FILTER")]
    pub allow_tags: Option<String>,
    /// Tags never considered: comma-separated globs (`*-rc*,latest`) or `regexp:<re>` entries.
    #[arg(long, value_name = "GLOBS", value_delimiter = ',')]
    pub ignore_tags: Vec<String>,
    /// Keep only tags offering one of these platforms (`linux/amd64`, comma-separated).
    #[arg(long, value_name = "OS/ARCH", value_delimiter = ',')]
    pub platform: Vec<String>,
    /// Flux's `extract`: order by this replacement of the allow-tags pattern (`$ts`, `${1}`).
    #[arg(long, value_name = "TEMPLATE")]
    pub extract: Option<String>,
    /// asc picks the greatest value (default), desc the least (alphabetical and numerical).
    #[arg(long, default_value = "asc")]
    pub order: String,
}

impl PolicyArgs {
    /// Builds the policy, naming the flag at fault when something is invalid.
    pub fn policy(&self) -> anyhow::Result<Policy> {
        let strategy = Strategy::parse(&self.strategy).context("--strategy")?;
        let order = Order::parse(&self.order).context("--order")?;
        let mut filter = TagFilter::new();
        if let Some(allow) = &self.allow_tags {
            filter = filter.allow(allow).context("--allow-tags")?;
        }
        filter = filter
            .ignore(self.ignore_tags.iter().map(String::as_str))
            .context("--ignore-tags")?;
        let platforms = self
            .platform
            .iter()
            .filter(|p| !p.trim().is_empty())
            .map(|p| Platform::parse(p))
            .collect::<Result<Vec<_>, _>>()
            .context("--platform")?;
        filter = filter.platforms(platforms);
        if let Some(template) = &self.extract {
            filter = filter.extract(template).context("--extract")?;
        }
        Policy::new(strategy, self.constraint.as_deref(), filter, order).context("--constraint")
    }
}

/// `select` arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// Output format: text (the tag alone) or json (the choice and why each tag was rejected).
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

/// Runs `select`: exit 0 with the tag on stdout, 3 when nothing qualifies, 1 on bad input.
pub fn run(args: &Args) -> CmdResult {
    let policy = args.policy.policy()?;
    let mut input = Vec::new();
    std::io::stdin()
        .read_to_end(&mut input)
        .context("reading stdin")?;
    let candidates = parse_candidates(&input, &policy)?;
    let evaluation = policy.evaluate(&candidates);
    let chosen = evaluation.chosen().map(|i| &candidates[i]);

    if args.output == Output::Json {
        let report = Report::new(&policy, &candidates, &evaluation);
        let mut out = std::io::stdout().lock();
        serde_json::to_writer_pretty(&mut out, &report).context("writing stdout")?;
        writeln!(out).context("writing stdout")?;
    } else if let Some(c) = chosen {
        writeln!(std::io::stdout().lock(), "{}", chosen_text(&policy, c))
            .context("writing stdout")?;
    }
    if chosen.is_none() {
        eprintln!(
            "{}",
            no_match_summary(&policy, &candidates, &evaluation.verdicts)
        );
        return Err(Failure::Quiet(NO_MATCH));
    }
    Ok(())
}

/// The choice as printed: the tag, or `tag@digest` for the digest strategy.
pub fn chosen_text(policy: &Policy, c: &Candidate) -> String {
    match (&c.digest, policy.strategy()) {
        (Some(d), Strategy::Digest) => format!("{}@{d}", c.tag),
        _ => c.tag.clone(),
    }
}

/// The JSON report of a selection, shared by `select` and `test`.
#[derive(Serialize)]
pub struct Report<'a> {
    strategy: &'a str,
    constraint: Option<String>,
    chosen: Option<&'a str>,
    digest: Option<String>,
    eligible: Vec<&'a str>,
    rejected: Vec<Rejection<'a>>,
}

#[derive(Serialize)]
struct Rejection<'a> {
    tag: &'a str,
    reason: String,
}

impl<'a> Report<'a> {
    /// Builds the report.
    pub fn new(
        policy: &'a Policy,
        candidates: &'a [Candidate],
        evaluation: &driftwatch_policy::Evaluation,
    ) -> Self {
        let chosen = evaluation.chosen().map(|i| &candidates[i]);
        Report {
            strategy: policy.strategy().as_str(),
            constraint: policy
                .constraint()
                .map(ToString::to_string)
                .or_else(|| policy.tracked_tag().map(str::to_owned)),
            chosen: chosen.map(|c| c.tag.as_str()),
            digest: chosen
                .and_then(|c| c.digest.as_ref())
                .map(Digest::to_string),
            eligible: evaluation
                .ranked
                .iter()
                .map(|&i| candidates[i].tag.as_str())
                .collect(),
            rejected: candidates
                .iter()
                .zip(&evaluation.verdicts)
                .filter_map(|(c, v)| {
                    v.map(|reason| Rejection {
                        tag: &c.tag,
                        reason: policy.explain(c, reason),
                    })
                })
                .collect(),
        }
    }
}

/// Parses stdin into candidates. Lines are `tag [time] [digest] [platforms]`; blank lines and
/// `#` comments are skipped; a repeated tag keeps its first line.
fn parse_candidates(input: &[u8], policy: &Policy) -> anyhow::Result<Vec<Candidate>> {
    let text = std::str::from_utf8(input).map_err(|e| {
        let line = input[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1;
        anyhow!("stdin line {line}: not valid UTF-8")
    })?;
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line_no = n + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut fields = line.split_whitespace();
        let Some(tag) = fields.next() else { continue };
        let mut c = Candidate::new(tag);
        for field in fields {
            parse_field(&mut c, field).with_context(|| format!("stdin line {line_no}"))?;
        }
        match policy.strategy() {
            Strategy::NewestBuild if c.created.is_none() => bail!(
                "stdin line {line_no}: tag {tag:?} has no creation time; newest-build reads \
                 `tag<TAB>RFC3339 time` lines"
            ),
            Strategy::Digest if c.digest.is_none() && policy.tracked_tag() == Some(tag) => bail!(
                "stdin line {line_no}: tracked tag {tag:?} has no digest; the digest strategy \
                 reads `tag<TAB>sha256:…` lines"
            ),
            _ => {}
        }
        if seen.insert(c.tag.clone()) {
            out.push(c);
        }
    }
    Ok(out)
}

fn parse_field(c: &mut Candidate, field: &str) -> anyhow::Result<()> {
    let looks_like_time = field.len() >= 20 && field.as_bytes()[4] == b'-';
    if looks_like_time {
        if c.created.is_some() {
            bail!("two creation times");
        }
        c.created = Some(Timestamp::parse(field)?);
    } else if field.starts_with("sha") && field.contains(':') {
        if c.digest.is_some() {
            bail!("two digests");
        }
        c.digest = Some(Digest::parse(field)?);
    } else if field.contains('/') {
        c.platforms.extend(Platform::parse_list(field)?);
    } else {
        bail!(
            "unrecognised field {field:?} (expected an RFC 3339 time, a sha256: digest or \
             os/arch platforms)"
        );
    }
    Ok(())
}

/// Says why nothing qualified: counts per reason and an example of each.
pub fn no_match_summary(
    policy: &Policy,
    candidates: &[Candidate],
    verdicts: &[Option<Reason>],
) -> String {
    if candidates.is_empty() {
        return "no tag qualifies: no tags on stdin".to_owned();
    }
    let mut by_reason: BTreeMap<String, (usize, String)> = BTreeMap::new();
    for (c, v) in candidates.iter().zip(verdicts) {
        if let Some(reason) = v {
            let key = format!("{reason:?}");
            let entry = by_reason
                .entry(key)
                .or_insert_with(|| (0, format!("{}: {}", c.tag, policy.explain(c, *reason))));
            entry.0 += 1;
        }
    }
    let mut out = format!(
        "no tag qualifies among {} tags (strategy {policy}):",
        candidates.len()
    );
    for (count, example) in by_reason.values() {
        out.push_str(&format!("\n  {count} rejected, e.g. {example}"));
    }
    out
}
