//! Version constraints with the grammar and semantics of Masterminds semver v3 (v3.4).
//!
//! argocd-image-updater hands `semver-constraint` values to Masterminds, so a constraint must
//! select here exactly what it selects there, quirks included: `1.2` means `~1.2` (any 1.2.x) but
//! `1.2.3` means exactly 1.2.3; `>11` wants 12 or higher; `^*` is not "anything"; prereleases are
//! candidates only in an AND group where some term names a prerelease.
//!
//! Parsing uses the same regular expressions as Masterminds, so the accepted language is the
//! same. Parsing happens once per policy; checking is plain integer comparison.

use std::fmt;
use std::sync::OnceLock;

use regex::Regex;

use crate::error::{Error, Result};
use crate::version::Version;

/// A parsed constraint: OR of AND groups of terms.
#[derive(Clone, Debug)]
pub struct Constraint {
    original: String,
    groups: Vec<Group>,
}

/// Two constraints are equal when they were parsed from the same text.
impl PartialEq for Constraint {
    fn eq(&self, other: &Self) -> bool {
        self.original == other.original
    }
}

#[derive(Clone, Debug)]
struct Group {
    terms: Vec<Term>,
    /// Some term names a prerelease, so prereleases are candidates in this group.
    has_prerelease: bool,
}

#[derive(Clone, Debug)]
struct Term {
    op: Op,
    /// The version compared against, with `x` parts zeroed.
    con: Version,
    /// The version as written (`4.x`), for messages.
    orig: String,
    /// Some part was a wildcard or missing.
    dirty: bool,
    /// The minor part was a wildcard or missing (`1`, `1.x`).
    minor_dirty: bool,
    /// The patch part was a wildcard or missing (`1.2`, `1.2.x`).
    patch_dirty: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    TildeOrEqual,
    NotEqual,
    Greater,
    Less,
    GreaterEqual,
    LessEqual,
    Tilde,
    Caret,
}

impl Op {
    fn from_str(op: &str) -> Option<Op> {
        Some(match op {
            "" | "=" => Op::TildeOrEqual,
            "!=" => Op::NotEqual,
            ">" => Op::Greater,
            "<" => Op::Less,
            ">=" | "=>" => Op::GreaterEqual,
            "<=" | "=<" => Op::LessEqual,
            "~" | "~>" => Op::Tilde,
            "^" => Op::Caret,
            _ => return None,
        })
    }
}

/// Why a term rejected a version; formatted only when someone asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Why {
    Prerelease,
    EqualTo,
    NotEqualTo,
    LessOrEqual,
    Less,
    Greater,
    GreaterOrEqual,
    NotSameMajor,
    NotSameMajorMinor,
    NotSameMinorZeroMajor,
    NotSameMinor,
    NotEqualZeroMajorMinor,
}

struct Patterns {
    single: Regex,
    range: Regex,
    find: Regex,
    valid: Regex,
}

/// Masterminds' patterns, with Go's ASCII `\s` spelled out (Rust's `\s` is Unicode-aware).
fn patterns() -> &'static Patterns {
    static PATTERNS: OnceLock<Patterns> = OnceLock::new();
    PATTERNS.get_or_init(|| {
        const WS: &str = r"[\t\n\x0C\r ]";
        const CV: &str = concat!(
            r"v?([0-9|x|X|\*]+)(\.[0-9|x|X|\*]+)?(\.[0-9|x|X|\*]+)?",
            r"(-([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?",
            r"(\+([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?"
        );
        const OPS: &str = r"=||!=|>|<|>=|=>|<=|=<|~|~>|\^";
        let compile = |pattern: String| {
            // The patterns are constants; a failure here is a bug caught by every test run.
            #[allow(clippy::expect_used)]
            Regex::new(&pattern).expect("constraint pattern compiles")
        };
        Patterns {
            single: compile(format!(r"^{WS}*({OPS}){WS}*({CV}){WS}*$")),
            range: compile(format!(r"{WS}*({CV}){WS}+-{WS}+({CV}){WS}*")),
            find: compile(format!(r"({OPS}){WS}*({CV})")),
            valid: compile(format!(
                r"^({WS}*({OPS}){WS}*({CV}){WS}*)((?:{WS}+|,{WS}*)({OPS}){WS}*({CV}){WS}*)*$"
            )),
        }
    })
}

impl Constraint {
    /// Parses a Masterminds v3 constraint such as `~1.0`, `>= 1.2, < 2 || 3.x`, `1.2 - 1.4.5`.
    pub fn parse(input: &str) -> Result<Self> {
        let p = patterns();
        let invalid = |reason: String| Error::InvalidConstraint {
            input: input.to_owned(),
            reason,
        };
        let rewritten = rewrite_ranges(input, &p.range);
        let mut groups = Vec::new();
        for segment in rewritten.split("||") {
            if !p.valid.is_match(segment) {
                return Err(invalid(format!("improper constraint {:?}", segment.trim())));
            }
            let mut terms = Vec::new();
            for found in p.find.find_iter(segment) {
                terms.push(parse_term(found.as_str(), &p.single).map_err(&invalid)?);
            }
            if terms.is_empty() {
                terms.push(parse_term(segment, &p.single).map_err(&invalid)?);
            }
            let has_prerelease = terms.iter().any(|t| t.con.is_prerelease());
            groups.push(Group {
                terms,
                has_prerelease,
            });
        }
        Ok(Constraint {
            original: input.to_owned(),
            groups,
        })
    }

    /// `*`: every release, no prereleases. What argocd-image-updater uses when none is given.
    pub fn any() -> Self {
        Constraint {
            original: "*".to_owned(),
            groups: vec![Group {
                terms: vec![Term {
                    op: Op::TildeOrEqual,
                    con: Version::new(0, 0, 0),
                    orig: "*".to_owned(),
                    dirty: true,
                    minor_dirty: false,
                    patch_dirty: false,
                }],
                has_prerelease: false,
            }],
        }
    }

    /// The constraint as written.
    pub fn as_str(&self) -> &str {
        &self.original
    }

    /// True when `v` satisfies some OR group entirely.
    pub fn matches(&self, v: &Version) -> bool {
        self.groups.iter().any(|g| {
            g.terms
                .iter()
                .all(|t| check(t, v, g.has_prerelease).is_ok())
        })
    }

    /// Why `v` is rejected, naming the failing term of each OR group; `None` when it matches.
    pub fn explain(&self, v: &Version) -> Option<String> {
        let mut reasons = Vec::with_capacity(self.groups.len());
        for g in &self.groups {
            match g
                .terms
                .iter()
                .find_map(|t| check(t, v, g.has_prerelease).err().map(|why| (t, why)))
            {
                None => return None,
                Some((term, why)) => reasons.push(describe(v, term, why)),
            }
        }
        Some(reasons.join("; and "))
    }
}

impl fmt::Display for Constraint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.original)
    }
}

/// Hyphen ranges `a - b` become `>= a, <= b `, as Masterminds' `rewriteRange` does.
fn rewrite_ranges(input: &str, range: &Regex) -> String {
    let mut out = input.to_owned();
    for caps in range.captures_iter(input) {
        let whole = caps.get(0).map_or("", |m| m.as_str());
        let lo = caps.get(1).map_or("", |m| m.as_str());
        let hi = caps.get(11).map_or("", |m| m.as_str());
        out = out.replacen(whole, &format!(">= {lo}, <= {hi} "), 1);
    }
    out
}

fn is_x(part: &str) -> bool {
    matches!(part, "x" | "X" | "*")
}

fn parse_term(text: &str, single: &Regex) -> std::result::Result<Term, String> {
    let caps = single
        .captures(text)
        .ok_or_else(|| format!("improper constraint {:?}", text.trim()))?;
    let group = |i: usize| caps.get(i).map_or("", |m| m.as_str());
    let (op_text, orig) = (group(1), group(2));
    let op = Op::from_str(op_text).ok_or_else(|| format!("unknown operator {op_text:?}"))?;
    let (major, minor, patch, pre) = (group(3), group(4), group(5), group(6));
    let minor = minor.strip_prefix('.').unwrap_or(minor);
    let patch = patch.strip_prefix('.').unwrap_or(patch);

    let (version_text, dirty, minor_dirty, patch_dirty) = if is_x(major) || major.is_empty() {
        (format!("0.0.0{pre}"), true, false, false)
    } else if is_x(minor) || minor.is_empty() {
        (format!("{major}.0.0{pre}"), true, true, false)
    } else if is_x(patch) || patch.is_empty() {
        (format!("{major}.{minor}.0{pre}"), true, false, true)
    } else {
        (orig.to_owned(), false, false, false)
    };
    let con = Version::parse_quiet(&version_text)
        .ok_or_else(|| format!("{orig:?} is not a version (numbers, or x, X, * as wildcards)"))?;
    Ok(Term {
        op,
        con,
        orig: orig.to_owned(),
        dirty,
        minor_dirty,
        patch_dirty,
    })
}

fn check(t: &Term, v: &Version, include_pre: bool) -> std::result::Result<(), Why> {
    use std::cmp::Ordering::*;
    if v.is_prerelease() && !include_pre {
        return Err(Why::Prerelease);
    }
    let c = &t.con;
    let cmp = v.precedence(c);
    match t.op {
        Op::NotEqual => {
            if t.dirty {
                if c.major() != v.major() {
                    return Ok(());
                }
                if c.minor() != v.minor() && !t.minor_dirty {
                    return Ok(());
                } else if t.minor_dirty {
                    return Err(Why::EqualTo);
                } else if c.patch() != v.patch() && !t.patch_dirty {
                    return Ok(());
                } else if t.patch_dirty {
                    if (v.is_prerelease() || c.is_prerelease())
                        && v.as_semver().pre != c.as_semver().pre
                    {
                        return Ok(());
                    }
                    return Err(Why::EqualTo);
                }
            }
            if cmp == Equal {
                Err(Why::EqualTo)
            } else {
                Ok(())
            }
        }
        Op::Greater => {
            if !t.dirty {
                return if cmp == Greater {
                    Ok(())
                } else {
                    Err(Why::LessOrEqual)
                };
            }
            if v.major() > c.major() {
                Ok(())
            } else if v.major() < c.major() || t.minor_dirty {
                Err(Why::LessOrEqual)
            } else if t.patch_dirty {
                if v.minor() > c.minor() {
                    Ok(())
                } else {
                    Err(Why::LessOrEqual)
                }
            } else if cmp == Greater {
                Ok(())
            } else {
                Err(Why::LessOrEqual)
            }
        }
        Op::Less => {
            if cmp == Less {
                Ok(())
            } else {
                Err(Why::GreaterOrEqual)
            }
        }
        Op::GreaterEqual => {
            if cmp != Less {
                Ok(())
            } else {
                Err(Why::Less)
            }
        }
        Op::LessEqual => {
            if !t.dirty {
                return if cmp != Greater {
                    Ok(())
                } else {
                    Err(Why::Greater)
                };
            }
            if v.major() > c.major()
                || (v.major() == c.major() && v.minor() > c.minor() && !t.minor_dirty)
            {
                Err(Why::Greater)
            } else {
                Ok(())
            }
        }
        Op::Tilde => tilde(t, v, cmp),
        Op::TildeOrEqual => {
            if t.dirty {
                tilde(t, v, cmp)
            } else if cmp == Equal {
                Ok(())
            } else {
                Err(Why::NotEqualTo)
            }
        }
        Op::Caret => {
            if cmp == Less {
                return Err(Why::Less);
            }
            if c.major() > 0 || t.minor_dirty {
                return if v.major() == c.major() {
                    Ok(())
                } else {
                    Err(Why::NotSameMajor)
                };
            }
            if v.major() > 0 {
                return Err(Why::NotSameMajor);
            }
            if c.minor() > 0 || t.patch_dirty {
                return if v.minor() == c.minor() {
                    Ok(())
                } else {
                    Err(Why::NotSameMinorZeroMajor)
                };
            }
            if v.minor() > 0 {
                return Err(Why::NotSameMinor);
            }
            if c.patch() == v.patch() {
                Ok(())
            } else {
                Err(Why::NotEqualZeroMajorMinor)
            }
        }
    }
}

fn tilde(t: &Term, v: &Version, cmp: std::cmp::Ordering) -> std::result::Result<(), Why> {
    let c = &t.con;
    if cmp == std::cmp::Ordering::Less {
        return Err(Why::Less);
    }
    // ~0.0.0 accepts everything at or above it.
    if c.major() == 0 && c.minor() == 0 && c.patch() == 0 && !t.minor_dirty && !t.patch_dirty {
        return Ok(());
    }
    if v.major() != c.major() {
        return Err(Why::NotSameMajor);
    }
    if v.minor() != c.minor() && !t.minor_dirty {
        return Err(Why::NotSameMajorMinor);
    }
    Ok(())
}

fn describe(v: &Version, t: &Term, why: Why) -> String {
    let c = &t.orig;
    match why {
        Why::Prerelease => format!(
            "{v} is a prerelease and the constraint only selects releases \
             (name a prerelease in the constraint, e.g. >=1.0.0-0, to include them)"
        ),
        Why::EqualTo => format!("{v} is equal to {c}"),
        Why::NotEqualTo => format!("{v} is not equal to {c}"),
        Why::LessOrEqual => format!("{v} is less than or equal to {c}"),
        Why::Less => format!("{v} is less than {c}"),
        Why::Greater => format!("{v} is greater than {c}"),
        Why::GreaterOrEqual => format!("{v} is greater than or equal to {c}"),
        Why::NotSameMajor => format!("{v} does not have the same major version as {c}"),
        Why::NotSameMajorMinor => {
            format!("{v} does not have the same major and minor version as {c}")
        }
        Why::NotSameMinorZeroMajor => format!(
            "{v} does not have the same minor version as {c} (minor versions must match when the major version is 0)"
        ),
        Why::NotSameMinor => format!("{v} does not have the same minor version as {c}"),
        Why::NotEqualZeroMajorMinor => {
            format!("{v} is not equal to {c} (versions must be equal when major and minor are 0)")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explain_names_the_failing_term() {
        let c = Constraint::parse("~1.0").unwrap();
        let why = c.explain(&Version::parse("1.1.0").unwrap()).unwrap();
        assert!(why.contains("same major and minor version as 1.0"), "{why}");
        assert!(c.explain(&Version::parse("1.0.9").unwrap()).is_none());
        let pre = c.explain(&Version::parse("1.0.9-rc.1").unwrap()).unwrap();
        assert!(pre.contains("prerelease"), "{pre}");
    }

    #[test]
    fn invalid_constraints_quote_the_input() {
        for bad in [
            "",
            "foo",
            ">= bar",
            "BAR >= 1.2.3",
            "12.3.4.1234",
            "1.2 ~",
            "1.x.y",
            ">1.0<2.0",
            "1|2",
        ] {
            let err = Constraint::parse(bad).unwrap_err().to_string();
            assert!(err.contains(&format!("{bad:?}")), "{bad:?}: {err}");
        }
    }

    #[test]
    fn any_matches_releases_only() {
        let any = Constraint::any();
        assert!(any.matches(&Version::parse("0.0.1").unwrap()));
        assert!(any.matches(&Version::parse("99.1").unwrap()));
        assert!(!any.matches(&Version::parse("1.0.0-rc.1").unwrap()));
    }
}
