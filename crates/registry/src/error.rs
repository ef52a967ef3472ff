//! The one error type of the registry crate. Messages name the registry and what was asked,
//! and never contain credentials or tokens.

/// Why talking to a registry failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The connection failed or timed out, after the retries.
    #[error("{registry}: {what}: {reason}")]
    Transport {
        registry: String,
        what: String,
        reason: String,
    },
    /// The registry answered with an error status.
    #[error("{registry}: {what}: HTTP {status}{detail}")]
    Status {
        registry: String,
        what: String,
        status: u16,
        detail: String,
    },
    /// Credentials were refused or a token could not be had.
    #[error("{registry}: authentication failed: {reason}")]
    Auth { registry: String, reason: String },
    /// The answer was not what the protocol says (bad JSON, missing fields, wrong digest).
    #[error("{registry}: {what}: invalid response: {reason}")]
    Protocol {
        registry: String,
        what: String,
        reason: String,
    },
    /// The answer was larger than driftwatch accepts.
    #[error("{registry}: {what}: response larger than {limit} bytes")]
    TooLarge {
        registry: String,
        what: String,
        limit: usize,
    },
    /// Configuration (registries.conf, credentials spec) is invalid.
    #[error("{source_name}: {reason}")]
    Config { source_name: String, reason: String },
    /// A credential source failed (missing variable, failing script, unreadable file).
    #[error("credentials {spec}: {reason}")]
    Credentials { spec: String, reason: String },
    /// A webhook payload that cannot be read or whose signature is wrong.
    #[error("webhook: {0}")]
    Webhook(String),
    /// An error met once in a cycle and shared with every image that asked the same thing.
    #[error("{message}")]
    Shared { message: String, transient: bool },
    /// A bad image reference or digest.
    #[error(transparent)]
    Policy(#[from] driftwatch_policy::Error),
}

impl Error {
    /// True for failures worth retrying later (network, 5xx, rate limits).
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Transport { .. } => true,
            Error::Status { status, .. } => *status == 429 || *status >= 500,
            Error::Shared { transient, .. } => *transient,
            _ => false,
        }
    }
}
