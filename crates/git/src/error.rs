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
    /// Only a decision of the server lands here; a push that never reached one is
    /// [`Error::Transport`].
    #[error("{url}: push to {branch} refused: {reason}")]
    PushRefused {
        url: String,
        branch: String,
        reason: String,
    },
    /// A fetch, push or listing that failed in transit: the server could not be reached,
    /// answered 5xx or 429, stopped answering, or the connection broke. Kept apart from
    /// [`Error::PushRefused`] because nothing was rejected: the same request may well succeed
    /// when tried again, and an operator reading "refused" would look for the wrong cause.
    #[error(
        "{url}: git {command} failed in transit: {cause} (not a rejection; worth retrying): {stderr}"
    )]
    Transport {
        command: String,
        url: String,
        cause: TransportCause,
        stderr: String,
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

impl Error {
    /// Whether the failure was in transit ([`Error::Transport`]) or the push lost a race
    /// ([`Error::PushRaced`]): trying the same thing again later may succeed as it is.
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::Transport { .. } | Error::PushRaced { .. })
    }
}

/// Why a request to a Git server failed in transit, as Git's own message says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransportCause {
    /// No connection could be made (refused, unresolvable host, no route).
    Unreachable,
    /// The server answered with this 5xx status.
    ServerError(u16),
    /// The server answered 429 Too Many Requests.
    RateLimited,
    /// The server stopped answering (Git's low-speed limit, a connect or read timeout, 408).
    TimedOut,
    /// The connection was reset or closed before the answer was whole.
    ConnectionLost,
}

impl std::fmt::Display for TransportCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TransportCause::Unreachable => f.write_str("the server could not be reached"),
            TransportCause::ServerError(code) => write!(f, "the server answered HTTP {code}"),
            TransportCause::RateLimited => {
                f.write_str("the server answered HTTP 429 (rate limited)")
            }
            TransportCause::TimedOut => f.write_str("the server stopped answering (timed out)"),
            TransportCause::ConnectionLost => f.write_str("the connection was reset or cut short"),
        }
    }
}

impl TransportCause {
    /// The transport failure Git's stderr describes, `None` when it describes something else
    /// (a rejection, a permission or authentication failure, a missing repository, a local
    /// error). Statuses are looked at first: a 401/403/404 is an answer about the request, not
    /// a transport failure, whatever else the message says.
    pub fn of_stderr(stderr: &str) -> Option<TransportCause> {
        if let Some(code) = http_status(stderr) {
            return match code {
                429 => Some(TransportCause::RateLimited),
                408 | 504 => Some(TransportCause::TimedOut),
                500..=599 => Some(TransportCause::ServerError(code)),
                _ => None,
            };
        }
        let has = |needles: &[&str]| needles.iter().any(|n| stderr.contains(n));
        // The server's own verdicts.
        if has(&[
            "[remote rejected]",
            "[rejected]",
            "Permission denied",
            "Authentication failed",
            "denied to ",
        ]) {
            return None;
        }
        if has(&[
            "Operation too slow",
            "timed out",
            "Timeout was reached",
            "curl 28",
        ]) {
            return Some(TransportCause::TimedOut);
        }
        if has(&[
            "Could not resolve host",
            "Failed to connect",
            "Couldn't connect to server",
            "Connection refused",
            "No route to host",
            "Network is unreachable",
        ]) {
            return Some(TransportCause::Unreachable);
        }
        if has(&[
            "Connection reset",
            "Recv failure",
            "Send failure",
            "transfer closed with",
            "Empty reply from server",
            "the remote end hung up unexpectedly",
            "unexpected disconnect",
            "early EOF",
            "RPC failed",
        ]) {
            return Some(TransportCause::ConnectionLost);
        }
        None
    }
}

/// The HTTP status in Git's (curl's) words: "The requested URL returned error: 503" or
/// "RPC failed; HTTP 503".
fn http_status(stderr: &str) -> Option<u16> {
    ["returned error: ", "RPC failed; HTTP "]
        .iter()
        .find_map(|marker| {
            let at = stderr.find(marker)? + marker.len();
            let digits: String = stderr[at..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            digits.parse().ok()
        })
}

#[cfg(test)]
mod tests {
    use super::TransportCause::{self, *};

    /// Git's messages as git 2.4x prints them through curl, for each way a request can fail.
    #[test]
    fn stderr_is_classified_as_git_words_it() {
        let cases: &[(&str, Option<TransportCause>)] = &[
            (
                "fatal: unable to access 'http://h/r.git/': The requested URL returned error: 503",
                Some(ServerError(503)),
            ),
            (
                "error: RPC failed; HTTP 502 curl 22 The requested URL returned error: 502\nsend-pack: unexpected disconnect while reading sideband packet",
                Some(ServerError(502)),
            ),
            (
                "fatal: unable to access 'http://h/r.git/': The requested URL returned error: 429",
                Some(RateLimited),
            ),
            (
                "error: RPC failed; curl 28 Operation too slow. Less than 1 bytes/sec transferred the last 30 seconds",
                Some(TimedOut),
            ),
            (
                "fatal: unable to access 'http://h/r.git/': Failed to connect to 127.0.0.1 port 1 after 0 ms: Couldn't connect to server",
                Some(Unreachable),
            ),
            (
                "fatal: unable to access 'https://nowhere.invalid/r.git/': Could not resolve host: nowhere.invalid",
                Some(Unreachable),
            ),
            (
                "ssh: connect to host h port 22: Connection refused\nfatal: Could not read from remote repository.",
                Some(Unreachable),
            ),
            (
                "fatal: unable to access 'http://h/r.git/': Recv failure: Connection reset by peer",
                Some(ConnectionLost),
            ),
            (
                "error: RPC failed; curl 18 transfer closed with outstanding read data remaining\nfatal: early EOF",
                Some(ConnectionLost),
            ),
            (
                "fatal: unable to access 'http://h/r.git/': transfer closed with 3970 bytes remaining to read",
                Some(ConnectionLost),
            ),
            // The server decided: these are not transport failures.
            (
                "fatal: unable to access 'http://h/r.git/': The requested URL returned error: 403",
                None,
            ),
            (
                "remote: Invalid username or password.\nfatal: Authentication failed for 'http://h/r.git/'",
                None,
            ),
            (
                "To h:r.git\n! [remote rejected] main -> main (pre-receive hook declined)\nerror: failed to push some refs",
                None,
            ),
            (
                "git@h: Permission denied (publickey).\nfatal: Could not read from remote repository.",
                None,
            ),
            ("fatal: couldn't find remote ref refs/heads/nope", None),
        ];
        for (stderr, want) in cases {
            assert_eq!(TransportCause::of_stderr(stderr), *want, "{stderr}");
        }
    }

    #[test]
    fn causes_read_as_what_happened() {
        assert_eq!(ServerError(503).to_string(), "the server answered HTTP 503");
        assert!(RateLimited.to_string().contains("429"));
        assert!(TimedOut.to_string().contains("timed out"));
    }
}
