//! Platforms (`os/arch[/variant]`) and argocd-image-updater's matching rule.

use std::fmt;

use crate::error::{Error, Result};

/// An image platform such as `linux/amd64` or `linux/arm/v7`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Platform {
    /// Operating system, e.g. `linux`.
    pub os: String,
    /// CPU architecture, e.g. `arm64`.
    pub arch: String,
    /// Architecture variant, e.g. `v7`; empty when none.
    pub variant: String,
}

impl Platform {
    /// Parses `os/arch` or `os/arch/variant`.
    pub fn parse(input: &str) -> Result<Self> {
        let bad = || Error::InvalidPlatform {
            input: input.to_owned(),
        };
        let mut parts = input.trim().split('/');
        let os = parts.next().ok_or_else(bad)?;
        let arch = parts.next().ok_or_else(bad)?;
        let variant = parts.next().unwrap_or("");
        let word = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        };
        if parts.next().is_some()
            || !word(os)
            || !word(arch)
            || !(variant.is_empty() || word(variant))
        {
            return Err(bad());
        }
        Ok(Platform {
            os: os.to_owned(),
            arch: arch.to_owned(),
            variant: variant.to_owned(),
        })
    }

    /// Parses a comma-separated list, as the `platforms` annotation holds.
    pub fn parse_list(input: &str) -> Result<Vec<Self>> {
        input
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(Platform::parse)
            .collect()
    }

    /// Attestation manifests in an index carry `unknown/unknown`; they are not runnable images.
    pub fn is_attestation(&self) -> bool {
        self.os == "unknown" && self.arch == "unknown"
    }

    /// True when an image for `self` satisfies a request for `wanted`: the same platform, or
    /// `self` is a more specific variant of `wanted` (`linux/arm/v7` satisfies `linux/arm`).
    pub fn satisfies(&self, wanted: &Platform) -> bool {
        self.os == wanted.os
            && self.arch == wanted.arch
            && (self.variant == wanted.variant || wanted.variant.is_empty())
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.arch)?;
        if !self.variant.is_empty() {
            write!(f, "/{}", self.variant)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_match() {
        let arm7 = Platform::parse("linux/arm/v7").unwrap();
        let arm = Platform::parse("linux/arm").unwrap();
        assert!(arm7.satisfies(&arm));
        assert!(!arm.satisfies(&arm7));
        assert!(!arm7.satisfies(&Platform::parse("linux/amd64").unwrap()));
        assert_eq!(arm7.to_string(), "linux/arm/v7");
        assert!(Platform::parse("unknown/unknown").unwrap().is_attestation());
        assert_eq!(
            Platform::parse_list("linux/amd64, linux/arm64")
                .unwrap()
                .len(),
            2
        );
        for bad in [
            "linux",
            "linux/",
            "/amd64",
            "linux/amd64/v8/x",
            "linux/am d64",
        ] {
            assert!(Platform::parse(bad).is_err(), "{bad:?}");
        }
    }
}
