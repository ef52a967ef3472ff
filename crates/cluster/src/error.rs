//! The one error type of the cluster crate.

/// Why rendering, comparing or talking to the API server failed; messages name the file,
/// directory or kubeconfig, and never carry a credential.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A manifest that is not valid YAML or not a Kubernetes object.
    #[error("{file}: {reason}")]
    Manifest { file: String, reason: String },
    /// The API server answered with an error status: `code` is its HTTP status (403 when RBAC
    /// forbids the call, 404 when the object or the kind does not exist, 401 when the
    /// credentials are refused), `reason` its `Status.reason` (`Forbidden`, `NotFound`, …).
    #[error("{what}: {message} (HTTP {code} {reason})")]
    Api {
        what: String,
        code: u16,
        reason: String,
        message: String,
    },
    /// The API server could not be asked: no connection, a TLS failure (a CA that does not
    /// match), a timeout, or credentials that could not be obtained (a failing exec plugin).
    /// `origin` names the kubeconfig and context the connection came from.
    #[error("{what}: {origin}: {reason}")]
    Unreachable {
        what: String,
        origin: String,
        reason: String,
    },
    /// A kubeconfig (or the in-cluster service account) that cannot be used: unreadable, a
    /// missing context, cluster or file it refers to.
    #[error("kubeconfig {file}{}: {reason}", context.as_deref().map(|c| format!(", context {c:?}")).unwrap_or_default())]
    Kubeconfig {
        file: String,
        context: Option<String>,
        reason: String,
    },
    /// An answer of the API server that could not be read as an object.
    #[error("{what}: unreadable answer from the API server: {reason}")]
    Response { what: String, reason: String },
    /// driftwatch refused to do something that would be destructive on bad input.
    #[error("{what}: {reason}")]
    Refused { what: String, reason: String },
    /// A renderer failed or is missing.
    #[error("rendering {dir} with {tool}: {reason}")]
    Render {
        dir: String,
        tool: String,
        reason: String,
    },
}

impl Error {
    /// The API server's HTTP status for an [`Error::Api`], so callers decide on codes (403: fall
    /// back to narrower calls; 404: absent) rather than on message text.
    pub fn status_code(&self) -> Option<u16> {
        match self {
            Error::Api { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// Whether the API server refused the call for lack of permission (RBAC, HTTP 403).
    pub fn is_forbidden(&self) -> bool {
        self.status_code() == Some(403)
    }

    /// The same error with every path-like text passed through `f`: a caller that rendered a
    /// temporary copy names files as the user knows them (repository-relative), not by where
    /// the copy happened to live.
    pub fn map_paths(self, f: impl Fn(&str) -> String) -> Self {
        match self {
            Error::Manifest { file, reason } => Error::Manifest {
                file: f(&file),
                reason: f(&reason),
            },
            Error::Api {
                what,
                code,
                reason,
                message,
            } => Error::Api {
                what: f(&what),
                code,
                reason,
                message: f(&message),
            },
            Error::Unreachable {
                what,
                origin,
                reason,
            } => Error::Unreachable {
                what: f(&what),
                origin,
                reason: f(&reason),
            },
            Error::Response { what, reason } => Error::Response {
                what: f(&what),
                reason: f(&reason),
            },
            Error::Refused { what, reason } => Error::Refused {
                what: f(&what),
                reason: f(&reason),
            },
            other @ Error::Kubeconfig { .. } => other,
            Error::Render { dir, tool, reason } => Error::Render {
                dir: f(&dir),
                tool,
                reason: f(&reason),
            },
        }
    }
}
