//! What driftwatch wants an image to run: references, versions, Masterminds-compatible semver
//! constraints, tag filters and update strategies.
//!
//! Pure logic over plain data — no I/O — so the registry scanner, the CLI and the updater loop
//! share one definition of "the right tag", and it is cheap to test and fuzz.

mod chart;
mod constraint;
mod error;
mod filter;
mod platform;
mod policy;
mod reference;
pub mod secret;
mod strategy;
mod timestamp;
mod version;

pub use chart::{ChartRef, chart_tag_of_version, chart_version_of_tag};
pub use constraint::Constraint;
pub use error::{Error, Result};
pub use filter::{Allow, FilterReason, TagFilter, star_match};
pub use platform::Platform;
pub use policy::{Candidate, Evaluation, Policy, Reason};
pub use reference::{DOCKER_HUB, Digest, ImageListEntry, ImageRef, is_valid_tag};
pub use strategy::{Order, Strategy};
pub use timestamp::Timestamp;
pub use version::Version;
