//! The one error type of the cluster crate.

/// Why rendering or comparing failed; messages name the file or directory.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A manifest that is not valid YAML or not a Kubernetes object.
    #[error("{file}: {reason}")]
    Manifest { file: String, reason: String },
    /// The API server refused or could not be reached.
    #[error("{what}: {reason}")]
    Api { what: String, reason: String },
    /// A renderer failed or is missing.
    #[error("rendering {dir} with {tool}: {reason}")]
    Render {
        dir: String,
        tool: String,
        reason: String,
    },
}
