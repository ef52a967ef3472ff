//! The one error type of the manifest crate. Every variant names the file, and the line where
//! there is one, so a user can go straight to it.

/// Why a file could not be edited. The file is never left half-written: callers get the new text
/// only when every edit succeeded and verified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The file is not valid YAML.
    #[error("{file}:{line}: invalid YAML: {message}")]
    Parse {
        file: String,
        line: usize,
        message: String,
    },
    /// The file is YAML but not of the expected shape.
    #[error("{file}:{line}: {what}")]
    Shape {
        file: String,
        line: usize,
        what: String,
    },
    /// A construct that driftwatch will not edit, rather than risk an unsafe edit.
    #[error("{file}:{line}: cannot edit safely: {what}")]
    Unsupported {
        file: String,
        line: usize,
        what: String,
    },
    /// The edit would change something other than the intended value; nothing was written.
    #[error("{file}: edit rejected, the result failed verification: {detail}")]
    Verify { file: String, detail: String },
    /// The image is not in the file.
    #[error("{file}: {what}")]
    NotFound { file: String, what: String },
    /// A Helm values path that cannot be read.
    #[error("invalid Helm values path {path:?}: {reason}")]
    BadPath { path: String, reason: String },
    /// A bad image, tag or digest in the request.
    #[error(transparent)]
    Policy(#[from] driftwatch_policy::Error),
}
