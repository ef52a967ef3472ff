//! Update strategies: how the eligible tags are ordered and which one wins.

use std::fmt;

use crate::error::{Error, Result};

/// How to pick among eligible tags. Names follow argocd-image-updater, with Flux's policies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// Highest semantic version allowed by the constraint (argocd-image-updater's default).
    Semver,
    /// Most recently built image, by its config's `created` time (`latest` is an alias).
    NewestBuild,
    /// Last tag in byte order (`name` is an alias); Flux's `alphabetical`.
    Alphabetical,
    /// Highest number (tags parsed as floating point); Flux's `numerical`.
    Numerical,
    /// Follow one mutable tag: the choice is its current digest.
    Digest,
}

impl Strategy {
    /// Parses a strategy name, accepting argocd-image-updater's aliases.
    pub fn parse(input: &str) -> Result<Self> {
        Ok(match input.trim() {
            "semver" => Strategy::Semver,
            "newest-build" | "latest" => Strategy::NewestBuild,
            "alphabetical" | "name" => Strategy::Alphabetical,
            "numerical" | "numeric" => Strategy::Numerical,
            "digest" => Strategy::Digest,
            _ => {
                return Err(Error::UnknownStrategy {
                    input: input.to_owned(),
                });
            }
        })
    }

    /// The canonical name.
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Semver => "semver",
            Strategy::NewestBuild => "newest-build",
            Strategy::Alphabetical => "alphabetical",
            Strategy::Numerical => "numerical",
            Strategy::Digest => "digest",
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Flux's `order`: `asc` picks the greatest value (the default), `desc` the least.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Order {
    /// Pick the last in ascending order: the highest, newest, or alphabetically last.
    #[default]
    Asc,
    /// Pick the first in ascending order.
    Desc,
}

impl Order {
    /// Parses `asc` or `desc`.
    pub fn parse(input: &str) -> Result<Self> {
        match input.trim() {
            "asc" => Ok(Order::Asc),
            "desc" => Ok(Order::Desc),
            _ => Err(Error::UnknownOrder {
                input: input.to_owned(),
            }),
        }
    }
}
