//! Tag filters: argocd-image-updater's `allow-tags` and `ignore-tags`, Flux's `filterTags`
//! (`pattern` + `extract`), and the platform filter.

use std::borrow::Cow;

use globset::GlobBuilder;
use regex::Regex;

use crate::error::{Error, Result};
use crate::platform::Platform;

/// Which tags may be considered at all (`allow-tags`).
#[derive(Clone, Debug, Default)]
pub enum Allow {
    /// Every tag (`any`, or no `allow-tags`).
    #[default]
    Any,
    /// Tags the expression matches somewhere (Go's `MatchString`: unanchored unless anchored).
    Regexp(Regex),
}

impl Allow {
    /// Parses `any`, `regexp:<expression>` (or `regex:<expression>`). An empty value is `any`.
    pub fn parse(input: &str) -> Result<Self> {
        let trimmed = input.trim();
        if trimmed.is_empty() || trimmed == "any" {
            return Ok(Allow::Any);
        }
        let expression = trimmed
            .strip_prefix("regexp:")
            .or_else(|| trimmed.strip_prefix("regex:"))
            .ok_or_else(|| Error::InvalidAllowTags {
                input: input.to_owned(),
                reason: "expected `any` or `regexp:<expression>`".to_owned(),
            })?;
        let re = Regex::new(expression).map_err(|e| Error::InvalidAllowTags {
            input: input.to_owned(),
            reason: format!("the regular expression does not compile: {e}"),
        })?;
        Ok(Allow::Regexp(re))
    }

    fn allows(&self, tag: &str) -> bool {
        match self {
            Allow::Any => true,
            Allow::Regexp(re) => re.is_match(tag),
        }
    }
}

/// One `ignore-tags` entry: a glob (as Go's `filepath.Match`), or `regexp:<re>`.
#[derive(Clone, Debug)]
struct Ignore {
    text: String,
    matcher: Matcher,
}

/// How an `ignore-tags` entry is checked. Most globs are literals and `*` (`*-rc*`,
/// `*-alpine`): those are matched segment by segment, with no allocation — the filter runs for
/// every tag of every scan. Other globs go through globset.
#[derive(Clone, Debug)]
enum Matcher {
    Regex(Regex),
    /// The glob split at its `*`s: the first part is a prefix, the last a suffix, the others
    /// must appear in order between them (searched with finders built once). One part: the
    /// whole tag.
    Stars(Vec<String>, Vec<memchr::memmem::Finder<'static>>),
    Glob(globset::GlobMatcher),
}

impl Matcher {
    fn is_match(&self, tag: &str) -> bool {
        match self {
            Matcher::Regex(re) => re.is_match(tag),
            Matcher::Glob(g) => g.is_match(tag),
            Matcher::Stars(parts, middle) => stars_match(parts, middle, tag),
        }
    }

    fn is_glob(&self) -> bool {
        !matches!(self, Matcher::Regex(_))
    }
}

/// Byte equality inline: a call to `memcmp` per comparison (even of nothing) costs more than
/// comparing a few bytes of a tag.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

/// A glob of literals and `*`s split at its stars, with finders for the middle parts.
fn star_parts(glob: &str) -> (Vec<String>, Vec<memchr::memmem::Finder<'static>>) {
    let parts: Vec<String> = glob.split('*').map(str::to_owned).collect();
    let middle = parts
        .iter()
        .skip(1)
        .take(parts.len().saturating_sub(2))
        .map(|p| memchr::memmem::Finder::new(p.as_bytes()).into_owned())
        .collect();
    (parts, middle)
}

/// Whether `name` matches `glob`, where `*` stands for any run of characters and nothing else
/// is special: the matcher of ignore-tags' plain globs, for other names (applications).
pub fn star_match(glob: &str, name: &str) -> bool {
    let (parts, middle) = star_parts(glob);
    stars_match(&parts, &middle, name)
}

/// Whether `tag` matches the glob whose `*`-separated parts are `parts` (at least one).
/// Byte slices and `memmem`: `str`'s pattern API costs more than the match on short tags.
fn stars_match(parts: &[String], middle: &[memchr::memmem::Finder<'_>], tag: &str) -> bool {
    let (Some(first), Some(last)) = (parts.first(), parts.last()) else {
        return false;
    };
    let (tag, first, last) = (tag.as_bytes(), first.as_bytes(), last.as_bytes());
    if parts.len() == 1 {
        return same(tag, first);
    }
    if tag.len() < first.len() + last.len()
        || !same(&tag[..first.len()], first)
        || !same(&tag[tag.len() - last.len()..], last)
    {
        return false;
    }
    // The middle parts, leftmost first, in what lies between the prefix and the suffix.
    let mut rest = &tag[first.len()..tag.len() - last.len()];
    for finder in middle {
        match finder.find(rest) {
            Some(at) => rest = &rest[at + finder.needle().len()..],
            None => return false,
        }
    }
    true
}

/// Everything that decides whether a tag is a candidate before the strategy orders it.
#[derive(Clone, Debug, Default)]
pub struct TagFilter {
    allow: Allow,
    allow_text: String,
    ignores: Vec<Ignore>,
    platforms: Vec<Platform>,
    extract: Option<String>,
}

/// Why the filter turned a tag away.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FilterReason {
    /// `allow-tags` does not match.
    NotAllowed,
    /// Some `ignore-tags` entry matches.
    Ignored,
    /// None of the tag's platforms is wanted.
    Platform,
}

/// Two filters are equal when they were built from the same texts: the compiled regexes and
/// globs follow from them.
impl PartialEq for TagFilter {
    fn eq(&self, other: &Self) -> bool {
        self.allow_text == other.allow_text
            && self.ignores.len() == other.ignores.len()
            && self
                .ignores
                .iter()
                .zip(&other.ignores)
                .all(|(a, b)| a.text == b.text)
            && self.platforms == other.platforms
            && self.extract == other.extract
    }
}

impl TagFilter {
    /// A filter that lets every tag through.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `allow-tags` (`any` or `regexp:<re>`).
    pub fn allow(mut self, allow: &str) -> Result<Self> {
        self.allow = Allow::parse(allow)?;
        self.allow_text = allow.trim().to_owned();
        self.check_extract()?;
        Ok(self)
    }

    /// Adds `ignore-tags` entries. Each is a glob (`*-rc*`, `sha-?????`, `[!v]*`); an entry with
    /// a `regexp:` or `regex:` prefix is a regular expression instead (tags never contain `:`, so
    /// such a glob could never match anyway).
    pub fn ignore<'a>(mut self, patterns: impl IntoIterator<Item = &'a str>) -> Result<Self> {
        for raw in patterns {
            let text = raw.trim();
            if text.is_empty() {
                continue;
            }
            let matcher = match text
                .strip_prefix("regexp:")
                .or_else(|| text.strip_prefix("regex:"))
            {
                Some(expression) => Matcher::Regex(Regex::new(expression).map_err(|e| {
                    Error::InvalidIgnoreGlob {
                        input: text.to_owned(),
                        reason: format!("the regular expression does not compile: {e}"),
                    }
                })?),
                None if !text.contains(['?', '[', ']', '{', '}', '\\']) => {
                    let (parts, middle) = star_parts(text);
                    Matcher::Stars(parts, middle)
                }
                None => Matcher::Glob(
                    GlobBuilder::new(text)
                        .literal_separator(false)
                        .backslash_escape(true)
                        .build()
                        .map_err(|e| Error::InvalidIgnoreGlob {
                            input: text.to_owned(),
                            reason: e.kind().to_string(),
                        })?
                        .compile_matcher(),
                ),
            };
            self.ignores.push(Ignore {
                text: text.to_owned(),
                matcher,
            });
        }
        Ok(self)
    }

    /// Keeps only tags that offer one of these platforms (when their platforms are known).
    pub fn platforms(mut self, platforms: Vec<Platform>) -> Self {
        self.platforms = platforms;
        self
    }

    /// Flux's `extract`: the value to order by is the allow pattern's replacement with this
    /// template (`$1`, `$name`, `${name}`). Needs `allow` to be a `regexp:`.
    pub fn extract(mut self, template: &str) -> Result<Self> {
        self.extract = Some(template.to_owned());
        self.check_extract()?;
        Ok(self)
    }

    /// The platforms asked for.
    pub fn wanted_platforms(&self) -> &[Platform] {
        &self.platforms
    }

    /// `allow-tags` as given.
    pub fn allow_text(&self) -> &str {
        if self.allow_text.is_empty() {
            "any"
        } else {
            &self.allow_text
        }
    }

    fn check_extract(&self) -> Result<()> {
        let Some(template) = &self.extract else {
            return Ok(());
        };
        let bad = |reason: String| Error::InvalidExtract {
            input: template.clone(),
            reason,
        };
        let Allow::Regexp(re) = &self.allow else {
            // `allow` may be set after `extract`; the final call checks again.
            return if self.allow_text.is_empty() {
                Ok(())
            } else {
                Err(bad(
                    "extract needs allow-tags to be a regexp: pattern".to_owned()
                ))
            };
        };
        for name in template_references(template) {
            let known = match name.parse::<usize>() {
                Ok(i) => i < re.captures_len(),
                Err(_) => re.capture_names().flatten().any(|n| n == name),
            };
            if !known {
                return Err(bad(format!(
                    "the pattern {:?} has no capture group {name:?}",
                    re.as_str()
                )));
            }
        }
        Ok(())
    }

    /// Verifies the whole filter once built: `extract` needs a `regexp:` allow pattern.
    pub fn validate(&self) -> Result<()> {
        if let (Some(template), Allow::Any) = (&self.extract, &self.allow) {
            return Err(Error::InvalidExtract {
                input: template.clone(),
                reason: "extract needs allow-tags to be a regexp: pattern".to_owned(),
            });
        }
        self.check_extract()
    }

    /// Applies allow, ignore and platform rules; on success returns the value to order by (the
    /// tag itself, or the extracted value).
    pub fn apply<'a>(
        &self,
        tag: &'a str,
        platforms: &[Platform],
    ) -> std::result::Result<Cow<'a, str>, FilterReason> {
        if !self.allow.allows(tag) {
            return Err(FilterReason::NotAllowed);
        }
        if self.is_ignored(tag) {
            return Err(FilterReason::Ignored);
        }
        if !self.platforms.is_empty() && !platforms.is_empty() {
            let offered = platforms.iter().filter(|p| !p.is_attestation());
            let mut ok = false;
            for p in offered {
                if self.platforms.iter().any(|w| p.satisfies(w)) {
                    ok = true;
                    break;
                }
            }
            if !ok {
                return Err(FilterReason::Platform);
            }
        }
        match (&self.extract, &self.allow) {
            (Some(template), Allow::Regexp(re)) => Ok(Cow::Owned(
                re.replace_all(tag, template.as_str()).into_owned(),
            )),
            _ => Ok(Cow::Borrowed(tag)),
        }
    }

    fn is_ignored(&self, tag: &str) -> bool {
        self.ignores.iter().any(|ig| ig.matcher.is_match(tag))
    }

    /// The first `ignore-tags` entry that matches `tag`, to tell the user which one.
    pub fn ignored_by(&self, tag: &str) -> Option<&str> {
        if self.ignores.is_empty() {
            return None;
        }
        // A glob that matches is named before a regular expression, in the order given.
        self.ignores
            .iter()
            .filter(|ig| ig.matcher.is_glob())
            .chain(self.ignores.iter().filter(|ig| !ig.matcher.is_glob()))
            .find(|ig| ig.matcher.is_match(tag))
            .map(|ig| ig.text.as_str())
    }
}

/// Capture-group names referenced by a Go/Rust replacement template (`$1`, `$name`, `${name}`).
fn template_references(template: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let b = template.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'$' {
            i += 1;
            continue;
        }
        if b.get(i + 1) == Some(&b'$') {
            i += 2;
            continue;
        }
        if b.get(i + 1) == Some(&b'{')
            && let Some(end) = template[i + 2..].find('}')
        {
            out.push(&template[i + 2..i + 2 + end]);
            i += end + 3;
            continue;
        }
        let start = i + 1;
        let mut end = start;
        while end < b.len() && (b[end].is_ascii_alphanumeric() || b[end] == b'_') {
            end += 1;
        }
        if end > start {
            out.push(&template[start..end]);
        }
        i = end.max(i + 1);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_forms() {
        assert!(matches!(Allow::parse("any").unwrap(), Allow::Any));
        assert!(matches!(Allow::parse("").unwrap(), Allow::Any));
        assert!(Allow::parse("regexp:^v[0-9]+$").unwrap().allows("v12"));
        assert!(!Allow::parse("regexp:^v[0-9]+$").unwrap().allows("v12-rc"));
        let err = Allow::parse("regexp:^(v").unwrap_err().to_string();
        assert!(err.contains("regexp:^(v"), "{err}");
        let err = Allow::parse("^v1").unwrap_err().to_string();
        assert!(err.contains("\"^v1\""), "{err}");
    }

    #[test]
    fn ignore_globs_and_regexes() {
        let f = TagFilter::new()
            .ignore(["*-rc*", "latest", "regex:^sha-", "[!v]*beta"])
            .unwrap();
        assert_eq!(f.ignored_by("v1.0.0-rc.1"), Some("*-rc*"));
        assert_eq!(f.ignored_by("latest"), Some("latest"));
        assert_eq!(f.ignored_by("sha-abc"), Some("regex:^sha-"));
        assert_eq!(f.ignored_by("1.0beta"), Some("[!v]*beta"));
        assert_eq!(f.ignored_by("v1.0beta"), None);
        assert_eq!(f.ignored_by("v1.0.0"), None);
        let err = TagFilter::new().ignore(["[a-"]).unwrap_err().to_string();
        assert!(err.contains("\"[a-\""), "{err}");
    }

    #[test]
    fn extract_checks_groups() {
        let f = TagFilter::new()
            .allow("regexp:^main-[a-f0-9]+-(?P<ts>[0-9]+)$")
            .unwrap()
            .extract("$ts")
            .unwrap();
        assert_eq!(
            f.apply("main-abc123-1700000000", &[]).unwrap(),
            "1700000000"
        );
        assert_eq!(f.apply("dev-abc-1", &[]), Err(FilterReason::NotAllowed));
        assert!(
            TagFilter::new()
                .allow("regexp:^(a)$")
                .unwrap()
                .extract("$ts")
                .is_err()
        );
        assert!(TagFilter::new().extract("$1").unwrap().validate().is_err());
    }

    #[test]
    fn platforms() {
        let f = TagFilter::new().platforms(vec![Platform::parse("linux/arm").unwrap()]);
        let arm7 = [Platform::parse("linux/arm/v7").unwrap()];
        let amd = [
            Platform::parse("linux/amd64").unwrap(),
            Platform::parse("unknown/unknown").unwrap(),
        ];
        assert!(f.apply("t", &arm7).is_ok());
        assert_eq!(f.apply("t", &amd), Err(FilterReason::Platform));
        assert!(
            f.apply("t", &[]).is_ok(),
            "unknown platforms are not filtered"
        );
    }

    proptest::proptest! {
        /// The segment matcher agrees with globset (which matched every glob before) on globs
        /// of literals and stars.
        #[test]
        fn star_globs_match_as_globset_does(
            glob in "[ab.*-]{0,8}",
            tag in "[ab.-]{0,10}",
        ) {
            let parts: Vec<String> = glob.split('*').map(str::to_owned).collect();
            let middle: Vec<_> = parts
                .iter()
                .skip(1)
                .take(parts.len().saturating_sub(2))
                .map(|p| memchr::memmem::Finder::new(p.as_bytes()).into_owned())
                .collect();
            let reference = globset::GlobBuilder::new(&glob)
                .literal_separator(false)
                .backslash_escape(true)
                .build()
                .unwrap()
                .compile_matcher();
            proptest::prop_assert_eq!(
                super::stars_match(&parts, &middle, &tag),
                reference.is_match(&tag),
                "glob {:?} tag {:?}", glob, tag
            );
        }
    }
}
