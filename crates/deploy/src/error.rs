//! The one error type of the deploy crate.

/// Why an application could not be rendered, synced or recorded.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Git: fetching, resolving the branch, exporting the tree.
    #[error(transparent)]
    Git(#[from] driftwatch_git::Error),
    /// Rendering, or the API server.
    #[error(transparent)]
    Cluster(#[from] driftwatch_cluster::Error),
    /// The state store.
    #[error(transparent)]
    Store(#[from] driftwatch_engine::Error),
    /// The application's path is not inside its repository.
    #[error("application {app}: path {path:?} {reason}")]
    Path {
        app: String,
        path: String,
        reason: &'static str,
    },
    /// The repository at the rendered commit is not safe to render: a symlink leads out of it.
    /// (`refused` is in the message, and deliberately not a `#[source]`: a caller printing the
    /// error chain would otherwise say it twice.)
    #[error("application {app}: {refused}")]
    Unsafe {
        app: String,
        refused: driftwatch_git::Error,
    },
    /// A file under the state directory.
    #[error("{path}: {reason}")]
    Io { path: String, reason: String },
    /// The cluster an application names cannot be reached: no such kubeconfig context or Argo
    /// CD cluster Secret, or the Secret lacks what a connection needs.
    #[error("application {app}: cluster {cluster:?}: {reason}")]
    Destination {
        app: String,
        cluster: String,
        reason: String,
    },
    /// A multi-source Application has a source driftwatch cannot render with it: another
    /// repository or revision, or a chart from a Helm repository.
    #[error("application {app}: {source_text} cannot be rendered by driftwatch: {reason}")]
    Source {
        app: String,
        source_text: String,
        reason: &'static str,
    },
    /// The branch is not on the remote.
    #[error("{repo}: branch {branch} does not exist")]
    NoBranch { repo: String, branch: String },
}

pub(crate) fn io(path: &std::path::Path, e: impl std::fmt::Display) -> Error {
    Error::Io {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}
