//! Where registry credentials come from: Docker's `config.json` (auths, credHelpers,
//! credsStore), a Kubernetes `.dockerconfigjson`, `env:VAR`, `ext:/path/script`, the specs of
//! argocd-image-updater's `registries.conf`, and — through a [`SecretReader`] the caller gives —
//! Kubernetes Secrets (`pullsecret:NS/NAME`, `secret:NS/NAME#FIELD`).

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
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
    /// `pullsecret:NS/NAME`: a `kubernetes.io/dockerconfigjson` Secret, read through the
    /// cluster; its entry for the registry's host.
    PullSecret {
        /// The Secret's namespace.
        namespace: String,
        /// The Secret's name.
        name: String,
    },
    /// `secret:NS/NAME#FIELD`: `user:password` in one field of a Secret, read through the
    /// cluster.
    Secret {
        /// The Secret's namespace.
        namespace: String,
        /// The Secret's name.
        name: String,
        /// The field (a key of its `data`).
        field: String,
    },
}

/// A Secret's data, decoded: field → bytes.
pub type SecretData = BTreeMap<String, Vec<u8>>;

/// What a [`SecretReader`] returns: the Secret's data, `None` when it does not exist.
pub type SecretRead<'a> =
    Pin<Box<dyn Future<Output = Result<Option<SecretData>, String>> + Send + 'a>>;

/// Reads one Kubernetes Secret by namespace and name (a get, never a list). The error is a
/// sentence for people naming the Secret and why (the API server's refusal, such as RBAC
/// forbidding the get), never carrying the Secret's values.
pub trait SecretReader: Send + Sync {
    /// The Secret `namespace/name`.
    fn read<'a>(&'a self, namespace: &'a str, name: &'a str) -> SecretRead<'a>;
}

/// A shared [`SecretReader`], for [`crate::Options`].
#[derive(Clone)]
pub struct Secrets(pub Arc<dyn SecretReader>);

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secrets(..)")
    }
}

/// Why `pullsecret:` and `secret:` are refused where there is no cluster to read them from.
const NEEDS_CLUSTER: &str = "Kubernetes Secrets are read through the cluster, only for \
    Applications read from it (--applications-from-cluster); elsewhere export the secret to a \
    file and use file:/path";

impl Source {
    /// Parses a spec: `env:VAR`, `ext:/path`, `file:/path` (also `dockerconfig:/path`).
    /// `pullsecret:` and `secret:` need the cluster and are refused here with a clear reason
    /// (see [`Source::parse_with_secrets`]).
    pub fn parse(spec: &str) -> Result<Self, Error> {
        let source = Self::parse_with_secrets(spec)?;
        if source.needs_cluster() {
            return Err(Error::Credentials {
                spec: spec.to_owned(),
                reason: NEEDS_CLUSTER.to_owned(),
            });
        }
        Ok(source)
    }

    /// Whether this source reads a Kubernetes Secret.
    pub fn needs_cluster(&self) -> bool {
        matches!(self, Source::PullSecret { .. } | Source::Secret { .. })
    }

    /// Parses a spec as [`Source::parse`] does, also taking `pullsecret:NS/NAME` and
    /// `secret:NS/NAME#FIELD`: for callers that read Secrets through a [`SecretReader`].
    pub fn parse_with_secrets(spec: &str) -> Result<Self, Error> {
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
            "pullsecret" => {
                let (namespace, name) =
                    secret_name(value).ok_or_else(|| bad("expected pullsecret:NAMESPACE/NAME"))?;
                Ok(Source::PullSecret { namespace, name })
            }
            "secret" => {
                let (secret, field) = value
                    .split_once('#')
                    .filter(|(_, f)| !f.is_empty())
                    .ok_or_else(|| bad("expected secret:NAMESPACE/NAME#FIELD"))?;
                let (namespace, name) = secret_name(secret)
                    .ok_or_else(|| bad("expected secret:NAMESPACE/NAME#FIELD"))?;
                Ok(Source::Secret {
                    namespace,
                    name,
                    field: field.to_owned(),
                })
            }
            _ => Err(bad(
                "unknown source; expected env:, ext:, file:, pullsecret: or secret:",
            )),
        }
    }

    /// The credentials this source has for `registry` (a host such as `ghcr.io`).
    /// `pullsecret:` and `secret:` fail here: they need [`Source::get_with`] and a reader.
    pub async fn get(&self, registry: &str) -> Result<Option<Credentials>, Error> {
        self.get_with(registry, None).await
    }

    /// The credentials this source has for `registry`, reading Kubernetes Secrets through
    /// `secrets`. Errors name the Secret and the field, never a value.
    pub async fn get_with(
        &self,
        registry: &str,
        secrets: Option<&dyn SecretReader>,
    ) -> Result<Option<Credentials>, Error> {
        match self {
            Source::PullSecret { namespace, name } => {
                let spec = format!("pullsecret:{namespace}/{name}");
                let data = read_secret(secrets, &spec, namespace, name).await?;
                let bad = |reason: String| Error::Credentials {
                    spec: spec.clone(),
                    reason,
                };
                // Both kinds of pull secret: the current one and the legacy `.dockercfg`
                // (which is the `auths` map alone).
                let (field, text) = match (data.get(".dockerconfigjson"), data.get(".dockercfg")) {
                    (Some(t), _) => (".dockerconfigjson", t),
                    (None, Some(t)) => (".dockercfg", t),
                    (None, None) => {
                        return Err(bad(format!(
                            "Secret {namespace}/{name} has no field .dockerconfigjson (not a \
                             kubernetes.io/dockerconfigjson Secret?)"
                        )));
                    }
                };
                let text = std::str::from_utf8(text).map_err(|_| {
                    bad(format!(
                        "Secret {namespace}/{name}: field {field} is not text"
                    ))
                })?;
                let config: DockerConfig = if field == ".dockercfg" {
                    serde_json::from_str(text).map(|auths| DockerConfig {
                        auths,
                        ..DockerConfig::default()
                    })
                } else {
                    serde_json::from_str(text)
                }
                .map_err(|e| {
                    // Only where: serde_json's message may quote the text, a credential.
                    bad(format!(
                        "Secret {namespace}/{name}: field {field} is not a Docker config (line {}, column {})",
                        e.line(),
                        e.column()
                    ))
                })?;
                let want = canonical(registry);
                match config
                    .auths
                    .iter()
                    .find(|(k, _)| config_key_host(k) == want)
                {
                    Some((_, entry)) => entry
                        .credentials(&format!(
                            "Secret {namespace}/{name}: field {field}: auths[{want}]"
                        ))
                        .map_err(bad),
                    None => Ok(None),
                }
            }
            Source::Secret {
                namespace,
                name,
                field,
            } => {
                let spec = format!("secret:{namespace}/{name}#{field}");
                let data = read_secret(secrets, &spec, namespace, name).await?;
                let bad = |reason: String| Error::Credentials {
                    spec: spec.clone(),
                    reason,
                };
                let value = data.get(field).ok_or_else(|| {
                    bad(format!("Secret {namespace}/{name} has no field {field:?}"))
                })?;
                let text = std::str::from_utf8(value).map_err(|_| {
                    bad(format!(
                        "Secret {namespace}/{name}: field {field:?} is not text"
                    ))
                })?;
                Credentials::parse_pair(text.trim())
                    .map(Some)
                    .ok_or_else(|| {
                        bad(format!(
                            "Secret {namespace}/{name}: field {field:?} is not user:password"
                        ))
                    })
            }
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

/// `NAMESPACE/NAME`, both non-empty.
fn secret_name(value: &str) -> Option<(String, String)> {
    let (ns, name) = value.split_once('/')?;
    (!ns.is_empty() && !name.is_empty() && !name.contains('/'))
        .then(|| (ns.to_owned(), name.to_owned()))
}

/// Reads a Secret for `spec`; a missing reader, a missing Secret or a refusal is an error
/// naming the Secret.
async fn read_secret(
    secrets: Option<&dyn SecretReader>,
    spec: &str,
    namespace: &str,
    name: &str,
) -> Result<SecretData, Error> {
    let bad = |reason: String| Error::Credentials {
        spec: spec.to_owned(),
        reason,
    };
    let reader = secrets.ok_or_else(|| bad(NEEDS_CLUSTER.to_owned()))?;
    match reader.read(namespace, name).await {
        Ok(Some(data)) => Ok(data),
        Ok(None) => Err(bad(format!("Secret {namespace}/{name} not found"))),
        // The reader's sentence names the Secret already.
        Err(e) => Err(bad(e)),
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

impl AuthEntry {
    /// The entry's credentials (`username`/`password`, else `auth`); `at` names it in errors,
    /// which never carry the values.
    fn credentials(&self, at: &str) -> Result<Option<Credentials>, String> {
        if let (Some(u), Some(p)) = (&self.username, &self.password) {
            return Ok(Some(Credentials::new(u, p)));
        }
        let Some(auth) = &self.auth else {
            return Ok(None);
        };
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|_| format!("{at}.auth is not base64"))?;
        let pair = String::from_utf8(decoded).map_err(|_| format!("{at}.auth is not text"))?;
        Credentials::parse_pair(&pair)
            .map(Some)
            .ok_or_else(|| format!("{at}.auth is not user:password"))
    }
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
        && let Some(creds) = entry.credentials(&format!("auths[{want}]")).map_err(bad)?
    {
        return Ok(Some(creds));
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
        let refused = Source::parse("pullsecret:argocd/regcred")
            .unwrap_err()
            .to_string();
        assert!(
            refused.contains("pullsecret:argocd/regcred")
                && refused.contains("--applications-from-cluster"),
            "{refused}"
        );
        assert_eq!(
            Source::parse_with_secrets("pullsecret:argocd/regcred").unwrap(),
            Source::PullSecret {
                namespace: "argocd".into(),
                name: "regcred".into()
            }
        );
        assert_eq!(
            Source::parse_with_secrets("secret:argocd/creds#pair").unwrap(),
            Source::Secret {
                namespace: "argocd".into(),
                name: "creds".into(),
                field: "pair".into()
            }
        );
        for bad in [
            "pullsecret:regcred",
            "pullsecret:/x",
            "secret:argocd/creds",
            "secret:argocd/creds#",
            "secret:creds#f",
        ] {
            assert!(Source::parse_with_secrets(bad).is_err(), "{bad}");
        }
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

    /// Secrets in memory, as the API server would answer: by name, or refused.
    struct Memory(BTreeMap<(String, String), Result<SecretData, String>>);

    impl SecretReader for Memory {
        fn read<'a>(&'a self, namespace: &'a str, name: &'a str) -> SecretRead<'a> {
            let found = self
                .0
                .get(&(namespace.to_owned(), name.to_owned()))
                .cloned();
            Box::pin(async move { found.transpose() })
        }
    }

    #[tokio::test]
    async fn kubernetes_secrets() {
        let b = |s: &str| s.as_bytes().to_vec();
        let auth = base64::engine::general_purpose::STANDARD.encode("puller:s3cr3t-pull");
        let mut m = BTreeMap::new();
        m.insert(
            ("argocd".to_owned(), "regcred".to_owned()),
            Ok(SecretData::from([(
                ".dockerconfigjson".to_owned(),
                b(&format!(
                    r#"{{"auths":{{"reg.local:5000":{{"auth":"{auth}"}}}}}}"#
                )),
            )])),
        );
        m.insert(
            ("argocd".to_owned(), "pair".to_owned()),
            Ok(SecretData::from([
                ("creds".to_owned(), b("bot:s3cr3t-pair\n")),
                ("broken".to_owned(), b("s3cr3t-nocolon")),
                (
                    ".dockerconfigjson".to_owned(),
                    b(r#"{"auths": "s3cr3t-json"}"#),
                ),
            ])),
        );
        m.insert(
            ("other".to_owned(), "locked".to_owned()),
            Err(
                "getting Secret other/locked: secrets \"locked\" is forbidden: cannot get resource \"secrets\""
                    .to_owned(),
            ),
        );
        let memory = Memory(m);
        let reader: Option<&dyn SecretReader> = Some(&memory);
        let get = |spec: &str, registry: &'static str| {
            let source = Source::parse_with_secrets(spec).unwrap();
            async move { source.get_with(registry, reader).await }
        };
        let c = get("pullsecret:argocd/regcred", "reg.local:5000")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (c.username.as_str(), c.password()),
            ("puller", "s3cr3t-pull")
        );
        assert!(
            get("pullsecret:argocd/regcred", "ghcr.io")
                .await
                .unwrap()
                .is_none(),
            "no entry for another registry"
        );
        let c = get("secret:argocd/pair#creds", "x").await.unwrap().unwrap();
        assert_eq!((c.username.as_str(), c.password()), ("bot", "s3cr3t-pair"));
        for (spec, says) in [
            (
                "secret:argocd/pair#nope",
                "Secret argocd/pair has no field \"nope\"",
            ),
            (
                "secret:argocd/pair#broken",
                "field \"broken\" is not user:password",
            ),
            (
                "pullsecret:argocd/pair",
                "field .dockerconfigjson is not a Docker config",
            ),
            (
                "pullsecret:argocd/missing",
                "Secret argocd/missing not found",
            ),
            (
                "secret:other/locked#f",
                "getting Secret other/locked: secrets \"locked\" is forbidden",
            ),
        ] {
            let e = get(spec, "reg.local:5000").await.unwrap_err().to_string();
            assert!(e.contains(spec) && e.contains(says), "{spec}: {e}");
            assert!(!e.contains("s3cr3t"), "a value leaked: {e}");
        }
        // Without a reader (the operator's files), the reason is given.
        let e = Source::parse_with_secrets("pullsecret:argocd/regcred")
            .unwrap()
            .get("reg.local:5000")
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("--applications-from-cluster"), "{e}");
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
