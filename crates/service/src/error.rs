//! The service's one error type. Each variant keeps its cause, and says whether trying again
//! later can help.

/// Why the service could not start or go on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration, the applications, a repository or the state store.
    #[error(transparent)]
    Engine(#[from] driftwatch_engine::Error),
    /// The registries' configuration.
    #[error(transparent)]
    Registry(#[from] driftwatch_registry::Error),
    /// The Kubernetes API server.
    #[error(transparent)]
    Cluster(#[from] driftwatch_cluster::Error),
    /// Git → cluster.
    #[error(transparent)]
    Deploy(#[from] driftwatch_deploy::Error),
    /// A file could not be read.
    #[error("{file}: {reason}")]
    Read {
        /// The file.
        file: String,
        /// Why.
        reason: String,
    },
    /// The listening address could not be bound.
    #[error("--listen {addr}: {source}")]
    Listen {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A required setting is missing or wrong.
    #[error("{0}")]
    Setting(String),
}

impl Error {
    /// Whether the same call may succeed later (a server down or overloaded), as opposed to a
    /// mistake in the input that only a change of it fixes.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Registry(e) => e.is_transient(),
            Error::Cluster(_) | Error::Deploy(_) => true,
            Error::Engine(_) | Error::Read { .. } | Error::Listen { .. } | Error::Setting(_) => {
                false
            }
        }
    }
}
