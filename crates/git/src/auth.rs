//! Credentials, handed to git through environment variables so they never appear in a command
//! line, a config file, a URL or a log.

use std::fmt;
use std::path::PathBuf;

use base64::Engine;

/// A secret string whose `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    /// The secret itself; call only where it is handed to git.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// How to authenticate to the remote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Auth {
    /// No credentials (file://, git://, public HTTPS, or SSH with the agent's defaults).
    #[default]
    None,
    /// HTTPS basic auth; for token auth the username is often `x-access-token` or `oauth2`.
    Basic { username: String, password: Secret },
    /// SSH with this private key, checking the server against `known_hosts` (strictly) when given.
    SshKey {
        key: PathBuf,
        known_hosts: Option<PathBuf>,
    },
}

impl Auth {
    /// Environment variables that make git use these credentials.
    pub(crate) fn env(&self) -> Vec<(String, String)> {
        let mut env = vec![
            ("GIT_TERMINAL_PROMPT".to_owned(), "0".to_owned()),
            ("GIT_ASKPASS".to_owned(), "true".to_owned()),
            ("SSH_ASKPASS".to_owned(), "true".to_owned()),
        ];
        match self {
            Auth::None => {}
            Auth::Basic { username, password } => {
                let token = base64::engine::general_purpose::STANDARD
                    .encode(format!("{username}:{}", password.expose()));
                // Configuration through the environment (git ≥ 2.31): not visible in `ps`.
                env.push(("GIT_CONFIG_COUNT".to_owned(), "1".to_owned()));
                env.push(("GIT_CONFIG_KEY_0".to_owned(), "http.extraHeader".to_owned()));
                env.push((
                    "GIT_CONFIG_VALUE_0".to_owned(),
                    format!("Authorization: Basic {token}"),
                ));
            }
            Auth::SshKey { key, known_hosts } => {
                let mut cmd = format!(
                    "ssh -i {} -o IdentitiesOnly=yes -o BatchMode=yes -o ConnectTimeout=15",
                    shell_quote(&key.to_string_lossy())
                );
                match known_hosts {
                    Some(kh) => cmd.push_str(&format!(
                        " -o UserKnownHostsFile={} -o StrictHostKeyChecking=yes",
                        shell_quote(&kh.to_string_lossy())
                    )),
                    None => cmd.push_str(" -o StrictHostKeyChecking=yes"),
                }
                env.push(("GIT_SSH_COMMAND".to_owned(), cmd));
            }
        }
        env
    }
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// Removes `user:password@` from a URL, for messages.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme && !url[scheme + 3..at].contains('/') => {
            format!("{}***@{}", &url[..scheme + 3], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_do_not_print() {
        let a = Auth::Basic {
            username: "bot".into(),
            password: Secret::new("hunter2"),
        };
        assert!(!format!("{a:?}").contains("hunter2"));
    }

    #[test]
    fn urls_are_redacted() {
        assert_eq!(
            redact_url("https://bot:tok@git.example/r.git"),
            "https://***@git.example/r.git"
        );
        assert_eq!(
            redact_url("ssh://git@host:22/r.git"),
            "ssh://***@host:22/r.git"
        );
        assert_eq!(redact_url("https://host/r@x.git"), "https://host/r@x.git");
        assert_eq!(redact_url("/tmp/repo"), "/tmp/repo");
    }
}
