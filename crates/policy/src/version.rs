//! Versions parsed the way Masterminds semver v3's `NewVersion` parses them.
//!
//! Tags in registries are rarely strict SemVer: `v1.2`, `1`, `01.2.3` and `1.2.3-rc.1+build.5` all
//! occur. Masterminds (and so argocd-image-updater) coerce them: an optional leading `v`, minor and
//! patch default to 0, leading zeros in the numeric core are accepted, while the prerelease must be
//! valid SemVer (no empty identifiers, no leading zeros in numeric identifiers).

use std::cmp::Ordering;
use std::fmt;

use semver::{BuildMetadata, Prerelease};

use crate::error::{Error, Result};

/// A version with Masterminds' lenient parsing and SemVer precedence (build metadata ignored).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Version(semver::Version);

impl Version {
    /// Parses `input` leniently: `v1`, `1.2`, `1.2.3-rc.1+meta`, `01.2.3`.
    pub fn parse(input: &str) -> Result<Self> {
        parse_lenient(input)
            .map(Version)
            .map_err(|reason| Error::InvalidVersion {
                input: input.to_owned(),
                reason,
            })
    }

    /// Parses without allocating an error; used on hot paths over many tags.
    pub fn parse_quiet(input: &str) -> Option<Self> {
        parse_lenient(input).ok().map(Version)
    }

    /// Builds a release version from its numbers.
    pub fn new(major: u64, minor: u64, patch: u64) -> Self {
        Version(semver::Version::new(major, minor, patch))
    }

    /// The major number.
    pub fn major(&self) -> u64 {
        self.0.major
    }

    /// The minor number.
    pub fn minor(&self) -> u64 {
        self.0.minor
    }

    /// The patch number.
    pub fn patch(&self) -> u64 {
        self.0.patch
    }

    /// The prerelease, empty for a release.
    pub fn prerelease(&self) -> &str {
        self.0.pre.as_str()
    }

    /// The build metadata, empty when absent.
    pub fn build(&self) -> &str {
        self.0.build.as_str()
    }

    /// True when the version carries a prerelease (`1.0.0-rc.1`).
    pub fn is_prerelease(&self) -> bool {
        !self.0.pre.is_empty()
    }

    /// The underlying strict SemVer value.
    pub fn as_semver(&self) -> &semver::Version {
        &self.0
    }

    /// SemVer precedence: major, minor, patch, then prerelease; build metadata is ignored.
    pub fn precedence(&self, other: &Self) -> Ordering {
        self.0.cmp_precedence(&other.0)
    }
}

impl fmt::Display for Version {
    /// The normalised form (`v1.2` prints as `1.2.0`), as Masterminds' `String()`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The grammar is Masterminds' loose regex, written out by hand because this runs once per tag:
/// `^v?([0-9]+)(\.[0-9]+)?(\.[0-9]+)?(-IDENTS)?(\+IDENTS)?$`, IDENTS = `[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*`.
fn parse_lenient(input: &str) -> std::result::Result<semver::Version, &'static str> {
    let bytes = input.as_bytes();
    if bytes.is_empty() {
        return Err("empty string");
    }
    let mut pos = usize::from(bytes[0] == b'v');

    let mut numbers = [0u64; 3];
    for (i, slot) in numbers.iter_mut().enumerate() {
        if i > 0 {
            // A dot must be followed by digits, otherwise the optional group does not match and the
            // dot is stray.
            if bytes.get(pos) != Some(&b'.') {
                break;
            }
            pos += 1;
        }
        let start = pos;
        while pos < bytes.len() && bytes[pos].is_ascii_digit() {
            pos += 1;
        }
        if pos == start {
            return Err(if i == 0 {
                "expected a number"
            } else {
                "expected a number after '.'"
            });
        }
        *slot = input[start..pos]
            .parse::<u64>()
            .map_err(|_| "number does not fit in 64 bits")?;
    }

    let mut pre = Prerelease::EMPTY;
    if bytes.get(pos) == Some(&b'-') {
        let start = pos + 1;
        pos = scan_identifiers(bytes, start).ok_or("invalid prerelease")?;
        pre = Prerelease::new(&input[start..pos]).map_err(|_| "invalid prerelease")?;
    }
    let mut build = BuildMetadata::EMPTY;
    if bytes.get(pos) == Some(&b'+') {
        let start = pos + 1;
        pos = scan_identifiers(bytes, start).ok_or("invalid build metadata")?;
        build = BuildMetadata::new(&input[start..pos]).map_err(|_| "invalid build metadata")?;
    }
    if pos != bytes.len() {
        return Err("unexpected characters");
    }
    Ok(semver::Version {
        major: numbers[0],
        minor: numbers[1],
        patch: numbers[2],
        pre,
        build,
    })
}

/// Scans dot-separated non-empty `[0-9A-Za-z-]+` identifiers from `start`; returns the end.
fn scan_identifiers(bytes: &[u8], start: usize) -> Option<usize> {
    let mut pos = start;
    loop {
        let ident_start = pos;
        while pos < bytes.len() && (bytes[pos].is_ascii_alphanumeric() || bytes[pos] == b'-') {
            pos += 1;
        }
        if pos == ident_start {
            return None;
        }
        if bytes.get(pos) == Some(&b'.') {
            pos += 1;
        } else {
            return Some(pos);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    #[test]
    fn lenient_forms() {
        assert_eq!(v("1").to_string(), "1.0.0");
        assert_eq!(v("v1.2").to_string(), "1.2.0");
        assert_eq!(v("01.02.003").to_string(), "1.2.3");
        assert_eq!(v("1.2-beta").to_string(), "1.2.0-beta");
        assert_eq!(v("1-0abc").prerelease(), "0abc");
        assert_eq!(v("1.2.3-rc.1+build.05").build(), "build.05");
        assert_eq!(
            v("v2.3.5-20161202202307-sha.e8fc5e5").prerelease(),
            "20161202202307-sha.e8fc5e5"
        );
    }

    #[test]
    fn rejected_forms() {
        for bad in [
            "",
            "v",
            "V1.2.3",
            "1.",
            "1.2.",
            "1.2.3.4",
            "1.2.3-",
            "1.2.3+",
            "1.2.3-a..b",
            "1.2.3-01",
            "1.2.3-beta.01",
            "latest",
            "1.2.3 ",
            " 1.2.3",
            "1.2.3-a_b",
            "a1.2",
            "99999999999999999999.0.0",
            "1.2.3+a+b",
        ] {
            assert!(Version::parse(bad).is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn precedence_ignores_build_metadata() {
        assert_eq!(v("1.2.3+a").precedence(&v("1.2.3+b")), Ordering::Equal);
        assert_eq!(v("1.2.3-alpha").precedence(&v("1.2.3")), Ordering::Less);
        assert_eq!(
            v("1.2.3-alpha.2").precedence(&v("1.2.3-alpha.10")),
            Ordering::Less
        );
        assert_eq!(
            v("1.2.3-alpha.10").precedence(&v("1.2.3-alpha.beta")),
            Ordering::Less
        );
        assert_eq!(
            v("1.2.3-alpha").precedence(&v("1.2.3-alpha.1")),
            Ordering::Less
        );
        assert_eq!(v("1.10.0").precedence(&v("1.9.9")), Ordering::Greater);
    }

    #[test]
    fn error_names_the_input() {
        let err = Version::parse("1.2.x").unwrap_err().to_string();
        assert!(err.contains("\"1.2.x\""), "{err}");
    }
}
