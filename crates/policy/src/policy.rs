//! A policy — filter, constraint and strategy — applied to the tags of one repository.

use std::borrow::Cow;
use std::cmp::Ordering;

use crate::constraint::Constraint;
use crate::error::{Error, Result};
use crate::filter::{FilterReason, TagFilter};
use crate::platform::Platform;
use crate::reference::{Digest, is_valid_tag};
use crate::strategy::{Order, Strategy};
use crate::timestamp::Timestamp;
use crate::version::Version;

/// One tag of a repository and what the registry told about it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Candidate {
    /// The tag.
    pub tag: String,
    /// The image config's `created` time; needed by `newest-build`.
    pub created: Option<Timestamp>,
    /// The manifest digest; needed by `digest`.
    pub digest: Option<Digest>,
    /// Platforms the tag offers; empty when unknown (then the platform filter lets it pass).
    pub platforms: Vec<Platform>,
}

impl Candidate {
    /// A candidate that is only a tag.
    pub fn new(tag: impl Into<String>) -> Self {
        Candidate {
            tag: tag.into(),
            ..Self::default()
        }
    }
}

/// Why a candidate is not eligible.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// Not a valid Docker tag.
    InvalidTag,
    /// Turned away by `allow-tags`, `ignore-tags` or platforms.
    Filtered(FilterReason),
    /// `semver` strategy: the (extracted) value is not a version.
    NotSemver,
    /// `semver` strategy: the constraint rejects it.
    Unsatisfied,
    /// `numerical` strategy: the (extracted) value is not a finite number.
    NotNumber,
    /// `digest` strategy: not the tag being tracked.
    NotTracked,
    /// `newest-build` strategy: no creation time is known.
    MissingCreated,
    /// `digest` strategy: the tracked tag's digest is not known.
    MissingDigest,
}

/// The ordering key of an eligible candidate.
#[derive(Debug)]
enum Key<'a> {
    Version(Version),
    Time(Timestamp),
    Text(Cow<'a, str>),
    Number(f64),
    Tracked,
}

impl Key<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Key::Version(a), Key::Version(b)) => a.precedence(b),
            (Key::Time(a), Key::Time(b)) => a.cmp(b),
            (Key::Text(a), Key::Text(b)) => a.as_bytes().cmp(b.as_bytes()),
            (Key::Number(a), Key::Number(b)) => a.total_cmp(b),
            _ => Ordering::Equal,
        }
    }
}

/// Filter, constraint and strategy for one image.
#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    strategy: Strategy,
    order: Order,
    constraint: Option<Constraint>,
    track: Option<String>,
    filter: TagFilter,
    /// Candidates are Helm chart versions (tags with Helm's `_` turned back into `+`).
    charts: bool,
}

impl Policy {
    /// Builds a policy. `constraint` means a semver constraint for `semver` (none: every release),
    /// and the tag to follow for `digest` (required); other strategies take none.
    pub fn new(
        strategy: Strategy,
        constraint: Option<&str>,
        filter: TagFilter,
        order: Order,
    ) -> Result<Self> {
        filter.validate()?;
        let constraint = constraint.map(str::trim).filter(|c| !c.is_empty());
        let (constraint, track) = match strategy {
            Strategy::Semver => (constraint.map(Constraint::parse).transpose()?, None),
            Strategy::Digest => {
                let tag = constraint.ok_or(Error::DigestNeedsTag)?;
                if !is_valid_tag(tag) {
                    return Err(Error::InvalidReference {
                        input: tag.to_owned(),
                        reason: "the digest strategy's constraint must be a tag to track"
                            .to_owned(),
                    });
                }
                (None, Some(tag.to_owned()))
            }
            _ => {
                if let Some(c) = constraint {
                    return Err(Error::InvalidConstraint {
                        input: c.to_owned(),
                        reason: format!(
                            "the {strategy} strategy takes no constraint (only semver and digest do)"
                        ),
                    });
                }
                (None, None)
            }
        };
        Ok(Policy {
            strategy,
            order,
            constraint,
            track,
            filter,
            charts: false,
        })
    }

    /// The same policy over Helm chart versions: a candidate's tag is a version whose `+` is
    /// `_` in the registry ([`crate::chart_version_of_tag`]), so `1.2.3+build.1` is a valid
    /// candidate.
    pub fn for_chart_versions(mut self) -> Self {
        self.charts = true;
        self
    }

    /// The strategy.
    pub fn strategy(&self) -> Strategy {
        self.strategy
    }

    /// The semver constraint, if any.
    pub fn constraint(&self) -> Option<&Constraint> {
        self.constraint.as_ref()
    }

    /// The tag followed by the `digest` strategy.
    pub fn tracked_tag(&self) -> Option<&str> {
        self.track.as_deref()
    }

    /// The filter.
    pub fn filter(&self) -> &TagFilter {
        &self.filter
    }

    fn judge<'a>(&self, c: &'a Candidate) -> std::result::Result<Key<'a>, Reason> {
        let valid = if self.charts {
            is_valid_tag(&crate::chart::chart_tag_of_version(&c.tag))
        } else {
            is_valid_tag(&c.tag)
        };
        if !valid {
            return Err(Reason::InvalidTag);
        }
        let value = self
            .filter
            .apply(&c.tag, &c.platforms)
            .map_err(Reason::Filtered)?;
        match self.strategy {
            Strategy::Semver => {
                let v = Version::parse_quiet(&value).ok_or(Reason::NotSemver)?;
                let ok = match &self.constraint {
                    Some(con) => con.matches(&v),
                    None => !v.is_prerelease(),
                };
                if ok {
                    Ok(Key::Version(v))
                } else {
                    Err(Reason::Unsatisfied)
                }
            }
            Strategy::NewestBuild => c.created.map(Key::Time).ok_or(Reason::MissingCreated),
            Strategy::Alphabetical => Ok(Key::Text(value)),
            Strategy::Numerical => match value.parse::<f64>() {
                Ok(n) if n.is_finite() => Ok(Key::Number(n)),
                _ => Err(Reason::NotNumber),
            },
            Strategy::Digest => {
                if self.track.as_deref() != Some(c.tag.as_str()) {
                    Err(Reason::NotTracked)
                } else if c.digest.is_none() {
                    Err(Reason::MissingDigest)
                } else {
                    Ok(Key::Tracked)
                }
            }
        }
    }

    /// True when `a` ranks above `b`: by key in the policy's order, ties by the tag string as
    /// argocd-image-updater breaks them (the lexically greater tag wins).
    fn better(&self, a: (&Key<'_>, &str), b: (&Key<'_>, &str)) -> bool {
        let by_key = match self.order {
            Order::Asc => a.0.cmp(b.0),
            Order::Desc => b.0.cmp(a.0),
        };
        by_key.then_with(|| a.1.cmp(b.1)) == Ordering::Greater
    }

    /// The best candidate's index, or `None` when none is eligible. One pass, no sorting: this
    /// is the hot path of every scan.
    pub fn select(&self, candidates: &[Candidate]) -> Option<usize> {
        let mut best: Option<(usize, Key<'_>)> = None;
        for (i, c) in candidates.iter().enumerate() {
            let Ok(key) = self.judge(c) else { continue };
            let wins = match &best {
                None => true,
                Some((j, bk)) => self.better((&key, &c.tag), (bk, &candidates[*j].tag)),
            };
            if wins {
                best = Some((i, key));
            }
        }
        best.map(|(i, _)| i)
    }

    /// Every candidate's verdict and the eligible ones ranked best first, for reports.
    pub fn evaluate(&self, candidates: &[Candidate]) -> Evaluation {
        let mut verdicts = Vec::with_capacity(candidates.len());
        let mut eligible: Vec<(usize, Key<'_>)> = Vec::new();
        for (i, c) in candidates.iter().enumerate() {
            match self.judge(c) {
                Ok(key) => {
                    verdicts.push(None);
                    eligible.push((i, key));
                }
                Err(reason) => verdicts.push(Some(reason)),
            }
        }
        eligible.sort_by(|(i, a), (j, b)| {
            if self.better((a, &candidates[*i].tag), (b, &candidates[*j].tag)) {
                Ordering::Less
            } else if self.better((b, &candidates[*j].tag), (a, &candidates[*i].tag)) {
                Ordering::Greater
            } else {
                Ordering::Equal
            }
        });
        Evaluation {
            verdicts,
            ranked: eligible.into_iter().map(|(i, _)| i).collect(),
        }
    }

    /// A sentence saying why `candidate` was turned away for `reason`.
    pub fn explain(&self, candidate: &Candidate, reason: Reason) -> String {
        let tag = &candidate.tag;
        match reason {
            Reason::InvalidTag => format!("{tag:?} is not a valid image tag"),
            Reason::Filtered(FilterReason::NotAllowed) => {
                format!("does not match allow-tags {}", self.filter.allow_text())
            }
            Reason::Filtered(FilterReason::Ignored) => format!(
                "matches ignore-tags pattern {}",
                self.filter.ignored_by(tag).unwrap_or("?")
            ),
            Reason::Filtered(FilterReason::Platform) => format!(
                "offers {} but {} is wanted",
                join(&candidate.platforms),
                join(self.filter.wanted_platforms())
            ),
            Reason::NotSemver => match self.filter.apply(tag, &candidate.platforms) {
                Ok(v) if v != tag.as_str() => {
                    format!("extracted value {v:?} is not a semantic version")
                }
                _ => "not a semantic version".to_owned(),
            },
            Reason::Unsatisfied => {
                let version = self
                    .filter
                    .apply(tag, &candidate.platforms)
                    .ok()
                    .and_then(|v| Version::parse_quiet(&v));
                match (version, &self.constraint) {
                    (Some(v), Some(con)) => format!(
                        "does not satisfy {}: {}",
                        con,
                        con.explain(&v).unwrap_or_default()
                    ),
                    (Some(v), None) => format!(
                        "{v} is a prerelease; without a constraint only releases are candidates"
                    ),
                    (None, _) => "not a semantic version".to_owned(),
                }
            }
            Reason::NotNumber => "not a number".to_owned(),
            Reason::NotTracked => format!(
                "not the tracked tag {}",
                self.track.as_deref().unwrap_or_default()
            ),
            Reason::MissingCreated => "creation time unknown".to_owned(),
            Reason::MissingDigest => "digest unknown".to_owned(),
        }
    }
}

impl std::fmt::Display for Policy {
    /// `semver, constraint ~1.0`, `digest, tracking dev-latest`, `newest-build`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.strategy)?;
        match (&self.constraint, &self.track) {
            (Some(c), _) => write!(f, ", constraint {c}"),
            (None, Some(t)) => write!(f, ", tracking {t}"),
            (None, None) => Ok(()),
        }
    }
}

fn join(platforms: &[Platform]) -> String {
    if platforms.is_empty() {
        return "nothing".to_owned();
    }
    platforms
        .iter()
        .map(Platform::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// What [`Policy::evaluate`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Evaluation {
    /// Per candidate, in input order: `None` when eligible, else why not.
    pub verdicts: Vec<Option<Reason>>,
    /// Indices of eligible candidates, best first.
    pub ranked: Vec<usize>,
}

impl Evaluation {
    /// The winner's index.
    pub fn chosen(&self) -> Option<usize> {
        self.ranked.first().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chart_versions_with_build_metadata_are_candidates() {
        let tags = ["1.4.2", "1.4.4+build.1", "1.5.0"].map(Candidate::new);
        let plain =
            Policy::new(Strategy::Semver, Some("~1.4"), TagFilter::new(), Order::Asc).unwrap();
        assert_eq!(plain.select(&tags), Some(0), "an image tag cannot hold +");
        let charts = plain.for_chart_versions();
        assert_eq!(charts.select(&tags), Some(1));
    }

    fn tags(list: &[&str]) -> Vec<Candidate> {
        list.iter().map(|t| Candidate::new(*t)).collect()
    }

    fn pick(policy: &Policy, list: &[Candidate]) -> Option<String> {
        let fast = policy.select(list);
        let full = policy.evaluate(list).chosen();
        assert_eq!(fast, full, "select and evaluate disagree");
        fast.map(|i| list[i].tag.clone())
    }

    fn semver(c: Option<&str>) -> Policy {
        Policy::new(Strategy::Semver, c, TagFilter::new(), Order::Asc).unwrap()
    }

    #[test]
    fn semver_workflow_example() {
        let list = tags(&["v1.0.5", "v1.0.6", "v1.1.0", "v2.0.0", "latest"]);
        assert_eq!(
            pick(&semver(Some("~1.0")), &list).as_deref(),
            Some("v1.0.6")
        );
        assert_eq!(pick(&semver(None), &list).as_deref(), Some("v2.0.0"));
    }

    #[test]
    fn semver_ties_go_to_the_greater_tag_string() {
        let list = tags(&["1.0.0", "v1.0.0", "1.0", "1.0.0+b"]);
        assert_eq!(pick(&semver(None), &list).as_deref(), Some("v1.0.0"));
    }

    #[test]
    fn no_constraint_means_no_prereleases() {
        let list = tags(&["1.0.0", "2.0.0-rc.1"]);
        assert_eq!(pick(&semver(None), &list).as_deref(), Some("1.0.0"));
        assert_eq!(
            pick(&semver(Some(">=2.0.0-0")), &list).as_deref(),
            Some("2.0.0-rc.1")
        );
    }

    #[test]
    fn newest_build_by_time_then_name() {
        let t = |s| Some(Timestamp::parse(s).unwrap());
        let list = vec![
            Candidate {
                created: t("2024-01-01T00:00:00Z"),
                ..Candidate::new("b")
            },
            Candidate {
                created: t("2024-02-01T00:00:00Z"),
                ..Candidate::new("a")
            },
            Candidate {
                created: t("2024-02-01T00:00:00Z"),
                ..Candidate::new("c")
            },
            Candidate::new("no-time"),
        ];
        let p = Policy::new(Strategy::NewestBuild, None, TagFilter::new(), Order::Asc).unwrap();
        assert_eq!(pick(&p, &list).as_deref(), Some("c"));
        let ev = p.evaluate(&list);
        assert_eq!(ev.verdicts[3], Some(Reason::MissingCreated));
        assert_eq!(ev.ranked, vec![2, 1, 0]);
    }

    #[test]
    fn alphabetical_and_numerical_orders() {
        let list = tags(&["10", "9", "100", "abc"]);
        let alpha =
            Policy::new(Strategy::Alphabetical, None, TagFilter::new(), Order::Asc).unwrap();
        assert_eq!(pick(&alpha, &list).as_deref(), Some("abc"));
        let num = Policy::new(Strategy::Numerical, None, TagFilter::new(), Order::Asc).unwrap();
        assert_eq!(pick(&num, &list).as_deref(), Some("100"));
        let low = Policy::new(Strategy::Numerical, None, TagFilter::new(), Order::Desc).unwrap();
        assert_eq!(pick(&low, &list).as_deref(), Some("9"));
        assert_eq!(num.evaluate(&list).verdicts[3], Some(Reason::NotNumber));
    }

    #[test]
    fn digest_tracks_one_tag() {
        let d = Digest::parse(&format!("sha256:{}", "1".repeat(64))).unwrap();
        let list = vec![
            Candidate::new("v1"),
            Candidate {
                digest: Some(d),
                ..Candidate::new("dev-latest")
            },
        ];
        let p = Policy::new(
            Strategy::Digest,
            Some("dev-latest"),
            TagFilter::new(),
            Order::Asc,
        )
        .unwrap();
        assert_eq!(pick(&p, &list).as_deref(), Some("dev-latest"));
        assert_eq!(
            Policy::new(Strategy::Digest, None, TagFilter::new(), Order::Asc).unwrap_err(),
            Error::DigestNeedsTag
        );
    }

    #[test]
    fn filters_apply_before_the_strategy() {
        let filter = TagFilter::new()
            .allow(r"regexp:^v[0-9]+\.[0-9]+\.[0-9]+$")
            .unwrap()
            .ignore(["*-rc*", "v1.0.9"])
            .unwrap();
        let p = Policy::new(Strategy::Semver, None, filter, Order::Asc).unwrap();
        let list = tags(&["v1.0.8", "v1.0.9", "v1.1.0-rc1", "1.2.0", "v1.0.10"]);
        assert_eq!(pick(&p, &list).as_deref(), Some("v1.0.10"));
        let ev = p.evaluate(&list);
        assert_eq!(
            ev.verdicts[1],
            Some(Reason::Filtered(FilterReason::Ignored))
        );
        assert_eq!(
            ev.verdicts[2],
            Some(Reason::Filtered(FilterReason::NotAllowed))
        );
        assert!(
            p.explain(&list[1], Reason::Filtered(FilterReason::Ignored))
                .contains("v1.0.9")
        );
    }

    #[test]
    fn extract_orders_by_the_captured_value() {
        let filter = TagFilter::new()
            .allow(r"regexp:^main-[a-f0-9]+-(?P<ts>[0-9]+)$")
            .unwrap()
            .extract("$ts")
            .unwrap();
        let p = Policy::new(Strategy::Numerical, None, filter, Order::Asc).unwrap();
        let list = tags(&[
            "main-aaa-900",
            "main-bbb-1000",
            "main-ccc-99",
            "feature-x-5000",
        ]);
        assert_eq!(pick(&p, &list).as_deref(), Some("main-bbb-1000"));
    }

    #[test]
    fn constraint_with_other_strategies_is_an_error() {
        let err = Policy::new(
            Strategy::Alphabetical,
            Some("~1"),
            TagFilter::new(),
            Order::Asc,
        );
        assert!(err.is_err());
    }
}
