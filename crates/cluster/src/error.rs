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

impl Error {
    /// The same error with every path-like text passed through `f`: a caller that rendered a
    /// temporary copy names files as the user knows them (repository-relative), not by where
    /// the copy happened to live.
    pub fn map_paths(self, f: impl Fn(&str) -> String) -> Self {
        match self {
            Error::Manifest { file, reason } => Error::Manifest {
                file: f(&file),
                reason: f(&reason),
            },
            Error::Api { what, reason } => Error::Api {
                what: f(&what),
                reason: f(&reason),
            },
            Error::Render { dir, tool, reason } => Error::Render {
                dir: f(&dir),
                tool,
                reason: f(&reason),
            },
        }
    }
}
