//! Where registry credentials come from: Docker's `config.json` (auths, credHelpers,
//! credsStore), a Kubernetes `.dockerconfigjson`, `env:VAR`, `ext:/path/script`, and the
//! specs of argocd-image-updater's `registries.conf`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use serde::Deserialize;
use tokio::io::AsyncWriteExt;

use crate::error::Error;

/// A username and password (or token) for a registry. `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The username.
    pub username: String,
    password: String,
}

impl Credentials {
    /// Builds credentials.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Credentials {
            username: username.into(),
            password: password.into(),
        }
    }

    /// Parses `user:password` (the password may contain `:`).
    pub fn parse_pair(s: &str) -> Option<Self> {
        let (u, p) = s.trim_end_matches(['\n', '\r']).split_once(':')?;
        (!u.is_empty()).then(|| Credentials::new(u, p))
    }

    /// The password, for tests.
    #[cfg(test)]
    pub(crate) fn password(&self) -> &str {
        &self.password
    }

    /// `Basic base64(user:password)`.
    pub(crate) fn basic_header(&self) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD
                .encode(format!("{}:{}", self.username, self.password))
        )
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Credentials({}:***)", self.username)
    }
}

/// A credential source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// `env:VAR` holding `user:password`.
    Env(String),
    /// `ext:/path`: a script printing `user:password`; it has 10 s.
    Ext(PathBuf),
    /// `file:/path`: a Docker `config.json` or Kubernetes `.dockerconfigjson`.
    DockerConfig(PathBuf),
}

impl Source {
    /// Parses a spec: `env:VAR`, `ext:/path`, `file:/path` (also `dockerconfig:/path`).
    /// `pullsecret:` and `secret:` need the cluster and are refused here with a clear reason.
    pub fn parse(spec: &str) -> Result<Self, Error> {
        let bad = |reason: &str| Error::Credentials {
            spec: spec.to_owned(),
            reason: reason.to_owned(),
        };
        let (kind, value) = spec
            .split_once(':')
            .ok_or_else(|| bad("expected env:VAR, ext:/path or file:/path"))?;
        if value.is_empty() {
            return Err(bad("nothing after the ':'"));
        }
        match kind {
            "env" => Ok(Source::Env(value.to_owned())),
            "ext" => Ok(Source::Ext(PathBuf::from(value))),
            "file" | "dockerconfig" => Ok(Source::DockerConfig(PathBuf::from(value))),
            "pullsecret" | "secret" => Err(bad(
                "Kubernetes secrets are read through the cluster connection; export the secret \
                 to a file and use file:/path meanwhile",
            )),
            _ => Err(bad("unknown source; expected env:, ext: or file:")),
        }
    }

    /// The credentials this source has for `registry` (a host such as `ghcr.io`).
    pub async fn get(&self, registry: &str) -> Result<Option<Credentials>, Error> {
        match self {
            Source::Env(var) => {
                let value = std::env::var(var).map_err(|_| Error::Credentials {
                    spec: format!("env:{var}"),
                    reason: "the variable is not set".to_owned(),
                })?;
                Credentials::parse_pair(&value)
                    .map(Some)
                    .ok_or_else(|| Error::Credentials {
                        spec: format!("env:{var}"),
                        reason: "expected user:password".to_owned(),
                    })
            }
            Source::Ext(path) => run_ext(path).await.map(Some),
            Source::DockerConfig(path) => from_docker_config(path, registry).await,
        }
    }
}

async fn run_ext(path: &Path) -> Result<Credentials, Error> {
    let spec = format!("ext:{}", path.display());
    let bad = |reason: String| Error::Credentials {
        spec: spec.clone(),
        reason,
    };
    let child = tokio::process::Command::new(path)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| bad(format!("cannot run: {e}")))?;
    let out = tokio::time::timeout(Duration::from_secs(10), child.wait_with_output())
        .await
        .map_err(|_| bad("did not finish within 10 s".to_owned()))?
        .map_err(|e| bad(e.to_string()))?;
    if !out.status.success() {
        return Err(bad(format!("exited with {}", out.status)));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    Credentials::parse_pair(text.trim())
        .ok_or_else(|| bad("did not print user:password".to_owned()))
}

#[derive(Deserialize, Default)]
struct DockerConfig {
    #[serde(default)]
    auths: std::collections::HashMap<String, AuthEntry>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: std::collections::HashMap<String, String>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
}

#[derive(Deserialize, Default)]
struct AuthEntry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
}

/// The registry host a config.json key means (`https://index.docker.io/v1/` is `docker.io`).
fn config_key_host(key: &str) -> String {
    let no_scheme = key.split("://").nth(1).unwrap_or(key);
    let host = no_scheme.split('/').next().unwrap_or(no_scheme);
    match host {
        "index.docker.io" | "registry-1.docker.io" => "docker.io".to_owned(),
        h => h.to_owned(),
    }
}

fn canonical(registry: &str) -> String {
    config_key_host(registry)
}

/// The default Docker config: `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
pub fn default_docker_config() -> Option<PathBuf> {
    let path = match std::env::var_os("DOCKER_CONFIG") {
        Some(dir) => PathBuf::from(dir).join("config.json"),
        None => PathBuf::from(std::env::var_os("HOME")?).join(".docker/config.json"),
    };
    path.exists().then_some(path)
}

/// Reads credentials for `registry` from a Docker config.json or `.dockerconfigjson`.
pub async fn from_docker_config(path: &Path, registry: &str) -> Result<Option<Credentials>, Error> {
    let spec = format!("file:{}", path.display());
    let bad = |reason: String| Error::Credentials {
        spec: spec.clone(),
        reason,
    };
    let text = tokio::fs::read_to_string(path)
        .await
        .map_err(|e| bad(format!("cannot read: {e}")))?;
    let config: DockerConfig =
        serde_json::from_str(&text).map_err(|e| bad(format!("invalid JSON: {e}")))?;
    let want = canonical(registry);
    if let Some((_, helper)) = config
        .cred_helpers
        .iter()
        .find(|(k, _)| config_key_host(k) == want)
    {
        return run_helper(helper, &want).await.map_err(bad);
    }
    if let Some((_, entry)) = config
        .auths
        .iter()
        .find(|(k, _)| config_key_host(k) == want)
    {
        if let (Some(u), Some(p)) = (&entry.username, &entry.password) {
            return Ok(Some(Credentials::new(u, p)));
        }
        if let Some(auth) = &entry.auth {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .map_err(|_| bad(format!("auths[{want}].auth is not base64")))?;
            let pair = String::from_utf8(decoded)
                .map_err(|_| bad(format!("auths[{want}].auth is not text")))?;
            return Credentials::parse_pair(&pair)
                .map(Some)
                .ok_or_else(|| bad(format!("auths[{want}].auth is not user:password")));
        }
    }
    match &config.creds_store {
        Some(store) if !store.is_empty() => run_helper(store, &want).await.map_err(bad),
        _ => Ok(None),
    }
}

/// Asks `docker-credential-<helper> get`; a helper that knows nothing answers `Ok(None)`.
async fn run_helper(helper: &str, registry: &str) -> Result<Option<Credentials>, String> {
    let server = if registry == "docker.io" {
        "https://index.docker.io/v1/".to_owned()
    } else {
        registry.to_owned()
    };
    let mut child = tokio::process::Command::new(format!("docker-credential-{helper}"))
        .arg("get")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("credential helper docker-credential-{helper}: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(server.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
    }
    let out = tokio::time::timeout(Duration::from_secs(10), child.wait_with_output())
        .await
        .map_err(|_| format!("credential helper docker-credential-{helper} timed out"))?
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Ok(None);
    }
    #[derive(Deserialize)]
    struct HelperAnswer {
        #[serde(rename = "Username")]
        username: String,
        #[serde(rename = "Secret")]
        secret: String,
    }
    let answer: HelperAnswer = serde_json::from_slice(&out.stdout).map_err(|_| {
        format!("credential helper docker-credential-{helper} printed invalid JSON")
    })?;
    Ok(Some(Credentials::new(answer.username, answer.secret)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs() {
        assert_eq!(
            Source::parse("env:CREDS").unwrap(),
            Source::Env("CREDS".into())
        );
        assert_eq!(
            Source::parse("ext:/bin/creds").unwrap(),
            Source::Ext("/bin/creds".into())
        );
        assert!(Source::parse("file:/x/config.json").is_ok());
        assert!(
            Source::parse("pullsecret:argocd/regcred")
                .unwrap_err()
                .to_string()
                .contains("pullsecret:argocd/regcred")
        );
        assert!(Source::parse("bogus").is_err());
        assert!(Source::parse("env:").is_err());
    }

    #[test]
    fn pairs_and_debug() {
        let c = Credentials::parse_pair("bot:pa:ss\n").unwrap();
        assert_eq!((c.username.as_str(), c.password()), ("bot", "pa:ss"));
        assert!(!format!("{c:?}").contains("pa:ss"));
        assert!(Credentials::parse_pair("nocolon").is_none());
    }

    #[tokio::test]
    async fn docker_config_auths() {
        let dir = std::env::temp_dir().join(format!("dw-dc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("config.json");
        let auth = base64::engine::general_purpose::STANDARD.encode("hubuser:hubpass");
        std::fs::write(
            &path,
            format!(r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{auth}"}},"ghcr.io":{{"username":"u","password":"p"}}}}}}"#),
        )
        .unwrap();
        let hub = from_docker_config(&path, "docker.io")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (hub.username.as_str(), hub.password()),
            ("hubuser", "hubpass")
        );
        let gh = from_docker_config(&path, "ghcr.io").await.unwrap().unwrap();
        assert_eq!(gh.username, "u");
        assert!(
            from_docker_config(&path, "quay.io")
                .await
                .unwrap()
                .is_none()
        );
        std::fs::write(&path, "{not json").unwrap();
        assert!(
            from_docker_config(&path, "ghcr.io")
                .await
                .unwrap_err()
                .to_string()
                .contains("invalid JSON")
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn ext_script() {
        let dir = std::env::temp_dir().join(format!("dw-ext-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let script = dir.join("creds.sh");
        std::fs::write(&script, "#!/bin/sh\necho 'robot:t0ken'\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let c = Source::Ext(script.clone()).get("x").await.unwrap().unwrap();
        assert_eq!((c.username.as_str(), c.password()), ("robot", "t0ken"));
        let _ = std::fs::remove_dir_all(dir);
    }
}
