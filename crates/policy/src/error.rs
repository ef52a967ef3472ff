//! The one error type of the policy crate.

/// Everything that can be wrong with policy input. Each variant quotes the offending text so a
/// user can find it in their configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A version string that is not semver-ish (Masterminds' lenient grammar).
    #[error("invalid version {input:?}: {reason}")]
    InvalidVersion { input: String, reason: &'static str },

    /// A constraint that does not follow the Masterminds v3 grammar.
    #[error("invalid semver constraint {input:?}: {reason}")]
    InvalidConstraint { input: String, reason: String },

    /// An image reference that Docker would not accept either.
    #[error("invalid image reference {input:?}: {reason}")]
    InvalidReference { input: String, reason: String },

    /// A content digest that is not `algorithm:hex` of the right length.
    #[error("invalid digest {input:?}: {reason}")]
    InvalidDigest { input: String, reason: &'static str },

    /// An `allow-tags` value that is neither `any` nor `regexp:<re>` with a valid regex.
    #[error("invalid allow-tags {input:?}: {reason}")]
    InvalidAllowTags { input: String, reason: String },

    /// An `ignore-tags` glob that does not compile.
    #[error("invalid ignore-tags pattern {input:?}: {reason}")]
    InvalidIgnoreGlob { input: String, reason: String },

    /// An extract template that names a capture group the pattern does not have.
    #[error("invalid extract template {input:?}: {reason}")]
    InvalidExtract { input: String, reason: String },

    /// A platform that is not `os/arch[/variant]`.
    #[error(
        "invalid platform {input:?}: expected os/arch[/variant], e.g. linux/amd64 or linux/arm/v7"
    )]
    InvalidPlatform { input: String },

    /// A time that is not RFC 3339.
    #[error("invalid timestamp {input:?}: {reason} (expected RFC 3339, e.g. 2024-05-01T12:00:00Z)")]
    InvalidTimestamp { input: String, reason: &'static str },

    /// A strategy name that is not one of ours or argocd-image-updater's.
    #[error(
        "unknown update strategy {input:?}: expected one of semver, newest-build (latest), \
         alphabetical (name), numerical, digest"
    )]
    UnknownStrategy { input: String },

    /// A sort order that is neither `asc` nor `desc`.
    #[error("unknown order {input:?}: expected asc or desc")]
    UnknownOrder { input: String },

    /// The digest strategy needs to know which mutable tag to follow.
    #[error("the digest strategy needs the tag to track (e.g. `latest`) as its constraint")]
    DigestNeedsTag,

    /// A Helm chart reference that is not `oci://host/path/name`.
    #[error("invalid chart reference {input:?}: {reason}")]
    InvalidChart { input: String, reason: String },

    /// An image-list annotation entry that cannot be read.
    #[error("invalid image-list entry {input:?}: {reason}")]
    InvalidImageListEntry { input: String, reason: String },
}

/// Result alias for the policy crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
