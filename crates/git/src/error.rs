//! The one error type of the git crate. Messages never contain credentials: URLs are redacted
//! and secrets are passed to git through the environment, never on its command line.

/// Why a Git operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `git` could not be started at all.
    #[error("cannot run git: {0}")]
    Spawn(#[source] std::io::Error),
    /// A git command failed.
    #[error("git {command} failed for {url}: {stderr}")]
    Git {
        command: String,
        url: String,
        stderr: String,
    },
    /// The branch does not exist on the remote.
    #[error("{url}: branch {branch:?} does not exist")]
    NoBranch { url: String, branch: String },
    /// The remote kept moving: every push attempt was rejected as non-fast-forward.
    #[error(
        "{url}: push to {branch} rejected {attempts} times (the branch keeps moving); nothing was lost, the update will be retried"
    )]
    PushRaced {
        url: String,
        branch: String,
        attempts: u32,
    },
    /// The remote refused the push for another reason (protected branch, hook, permissions).
    #[error("{url}: push to {branch} refused: {reason}")]
    PushRefused {
        url: String,
        branch: String,
        reason: String,
    },
    /// A commit-message or branch template that does not parse or render.
    #[error("invalid {which} template: {reason}")]
    Template { which: &'static str, reason: String },
    /// A file path outside the repository or otherwise unusable.
    #[error("invalid path {path:?} in the repository: {reason}")]
    BadPath { path: String, reason: &'static str },
    /// A committed symlink whose target leaves the repository (or never resolves): following
    /// it would read a host file. `link` is repository-relative.
    #[error("refusing symlink {link:?} -> {target:?}: it {reason}")]
    Symlink {
        link: String,
        target: String,
        reason: &'static str,
    },
    /// An edit would write through a symlink in the tree: at `path` itself, or at the directory
    /// `link` on the way to it.
    #[error(
        "refusing to write {path:?}: {link:?} is a symlink in the repository, and write-back never follows one"
    )]
    WriteThroughLink { path: String, link: String },
    /// Local I/O on the mirror.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// The caller's edit failed; nothing was committed.
    #[error("{0}")]
    Edit(String),
}
