//! Git-host push webhooks — GitHub, GitLab, Gitea/Forgejo and a generic form — read into one
//! event, with each host's authentication checked, so a push to a tracked branch is noticed at
//! once instead of at the next poll.

use driftwatch_policy::secret::{secret_matches, verify_hmac_sha256};

/// A push: the repository's URLs as the host names them, the branch and the new head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GitPush {
    /// Clone URLs (HTTPS, SSH) and the web URL, as given.
    pub urls: Vec<String>,
    /// Branch name (without `refs/heads/`).
    pub branch: String,
    /// The new head commit, when given.
    pub after: Option<String>,
}

/// Why a webhook was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WebhookError {
    /// Missing or wrong secret, token or signature.
    #[error("authentication failed: {0}")]
    Auth(&'static str),
    /// Not a payload driftwatch understands.
    #[error("invalid payload: {0}")]
    Payload(String),
}

/// Whether `hex` is the HMAC-SHA256 of `body` under `secret` (the shared constant-time check).
fn signed(secret: &[u8], body: &[u8], hex: Option<&str>) -> bool {
    hex.is_some_and(|h| verify_hmac_sha256(secret, body, h).is_ok())
}

/// Authenticates and parses a push. `header` looks a request header up (case-insensitively).
/// Non-push events (pings, tags) yield `Ok(None)`.
pub fn parse_git_push(
    header: &dyn Fn(&str) -> Option<String>,
    body: &[u8],
    secret: &[u8],
) -> Result<Option<GitPush>, WebhookError> {
    let v: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| WebhookError::Payload(e.to_string()))?;
    let s = |p: &str| v.pointer(p).and_then(|x| x.as_str()).map(str::to_owned);
    let (event, authed) = if let Some(ev) = header("x-github-event") {
        let sig = header("x-hub-signature-256")
            .ok_or(WebhookError::Auth("X-Hub-Signature-256 missing"))?;
        (ev, signed(secret, body, sig.strip_prefix("sha256=")))
    } else if let Some(ev) = header("x-gitlab-event") {
        let token = header("x-gitlab-token").unwrap_or_default();
        (
            if ev == "Push Hook" {
                "push".to_owned()
            } else {
                ev
            },
            secret_matches(token.as_bytes(), secret),
        )
    } else if let Some(ev) = header("x-gitea-event").or_else(|| header("x-forgejo-event")) {
        let sig = header("x-gitea-signature")
            .or_else(|| header("x-forgejo-signature"))
            .unwrap_or_default();
        (ev, signed(secret, body, Some(&sig)))
    } else {
        let token = header("authorization")
            .map(|a| a.trim_start_matches("Bearer ").to_owned())
            .unwrap_or_default();
        ("push".to_owned(), secret_matches(token.as_bytes(), secret))
    };
    if !authed {
        return Err(WebhookError::Auth("wrong secret, token or signature"));
    }
    if event != "push" {
        return Ok(None);
    }
    let git_ref = s("/ref")
        .or_else(|| s("/branch").map(|b| format!("refs/heads/{b}")))
        .unwrap_or_default();
    let Some(branch) = git_ref.strip_prefix("refs/heads/") else {
        return Ok(None);
    };
    let urls: Vec<String> = [
        "/repository/clone_url",
        "/repository/ssh_url",
        "/repository/html_url",
        "/repository/git_http_url",
        "/repository/git_ssh_url",
        "/project/git_http_url",
        "/project/git_ssh_url",
        "/project/web_url",
        "/repository/url",
        "/repository",
    ]
    .iter()
    .filter_map(|p| s(p))
    .collect();
    if urls.is_empty() {
        return Err(WebhookError::Payload("no repository URL".to_owned()));
    }
    Ok(Some(GitPush {
        urls,
        branch: branch.to_owned(),
        after: s("/after"),
    }))
}

/// Reduces a Git URL to `host/path` without scheme, user, port-less SSH colon or `.git`, so
/// `git@github.com:org/repo.git` and `https://github.com/org/repo` compare equal.
pub fn repo_identity(url: &str) -> String {
    let mut u = url.trim().to_owned();
    if let Some(rest) = u.split_once("://").map(|(_, r)| r.to_owned()) {
        u = rest;
    } else if let Some((user_host, path)) = u.split_once(':') {
        // scp-like: git@host:org/repo
        u = format!("{user_host}/{path}");
    }
    if let Some((_, rest)) = u.split_once('@') {
        u = rest.to_owned();
    }
    u.trim_end_matches('/')
        .trim_end_matches(".git")
        .to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hmac::{Hmac, Mac};
    use sha2::Sha256;

    fn headers(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let owned: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_lowercase(), (*v).to_owned()))
            .collect();
        move |name: &str| {
            owned
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        }
    }

    fn sig(secret: &[u8], body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
        mac.update(body);
        mac.finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    #[test]
    fn github_gitlab_gitea_generic() {
        let gh = br#"{"ref":"refs/heads/main","after":"abc","repository":{"clone_url":"https://github.com/org/shop.git","ssh_url":"git@github.com:org/shop.git"}}"#;
        let h = headers(&[
            ("X-GitHub-Event", "push"),
            ("X-Hub-Signature-256", &format!("sha256={}", sig(b"s", gh))),
        ]);
        let p = parse_git_push(&h, gh, b"s").unwrap().unwrap();
        assert_eq!(
            (p.branch.as_str(), p.after.as_deref()),
            ("main", Some("abc"))
        );
        assert_eq!(
            parse_git_push(&h, gh, b"other"),
            Err(WebhookError::Auth("wrong secret, token or signature"))
        );

        let gl = br#"{"ref":"refs/heads/release","project":{"git_http_url":"https://gitlab.com/org/shop.git"}}"#;
        let h = headers(&[("X-Gitlab-Event", "Push Hook"), ("X-Gitlab-Token", "tok")]);
        assert_eq!(
            parse_git_push(&h, gl, b"tok").unwrap().unwrap().branch,
            "release"
        );

        let gt = br#"{"ref":"refs/heads/main","repository":{"clone_url":"https://codeberg.org/org/shop.git"}}"#;
        let h = headers(&[
            ("X-Forgejo-Event", "push"),
            ("X-Forgejo-Signature", &sig(b"k", gt)),
        ]);
        assert!(parse_git_push(&h, gt, b"k").unwrap().is_some());

        let generic = br#"{"repository":"file:///srv/git/shop.git","branch":"main"}"#;
        let h = headers(&[("Authorization", "Bearer g")]);
        assert_eq!(
            parse_git_push(&h, generic, b"g").unwrap().unwrap().urls,
            ["file:///srv/git/shop.git"]
        );

        let tag = br#"{"ref":"refs/tags/v1","repository":{"clone_url":"x"}}"#;
        let h = headers(&[("Authorization", "Bearer g")]);
        assert_eq!(parse_git_push(&h, tag, b"g").unwrap(), None);
        let ping = headers(&[
            ("X-GitHub-Event", "ping"),
            (
                "X-Hub-Signature-256",
                &format!("sha256={}", sig(b"s", b"{}")),
            ),
        ]);
        assert_eq!(parse_git_push(&ping, b"{}", b"s").unwrap(), None);
        assert!(parse_git_push(&h, b"{nope", b"g").is_err());
    }

    #[test]
    fn identities() {
        let id = repo_identity("https://github.com/Org/Shop.git");
        assert_eq!(id, "github.com/org/shop");
        assert_eq!(repo_identity("git@github.com:org/shop.git"), id);
        assert_eq!(repo_identity("ssh://git@github.com/org/shop"), id);
        assert_eq!(repo_identity("https://bot:token@github.com/org/shop/"), id);
    }
}
