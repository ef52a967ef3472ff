//! The one error type of the engine.

/// Why configuration could not be loaded or a cycle step failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Invalid configuration, naming the file and the key path.
    #[error("{file}: {path}: {reason}")]
    Config {
        file: String,
        path: String,
        reason: String,
    },
    /// A file could not be read.
    #[error("{file}: {reason}")]
    Read { file: String, reason: String },
    /// A registry failure.
    #[error(transparent)]
    Registry(#[from] driftwatch_registry::Error),
    /// A Git failure.
    #[error(transparent)]
    Git(#[from] driftwatch_git::Error),
    /// A manifest edit failure.
    #[error(transparent)]
    Manifest(#[from] driftwatch_manifest::Error),
    /// A policy failure.
    #[error(transparent)]
    Policy(#[from] driftwatch_policy::Error),
}
