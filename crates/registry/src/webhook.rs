//! Registry push notifications, read into one event shape: distribution's notification
//! envelope, Docker Hub, GHCR (package events, HMAC-SHA256 signed), Harbor and Quay.

use driftwatch_policy::secret::{SignatureError, verify_hmac_sha256};
use serde::Deserialize;

use crate::error::Error;

/// A push that happened: which repository, and the tag and digest when the payload says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushEvent {
    /// Registry host, e.g. `ghcr.io`, `registry.local:5000`.
    pub registry: String,
    /// Repository path, e.g. `org/app`.
    pub repository: String,
    /// The tag pushed, if named.
    pub tag: Option<String>,
    /// The manifest digest, if given.
    pub digest: Option<String>,
}

/// Verifies GitHub's `X-Hub-Signature-256: sha256=<hex>` over the raw body, in constant time.
pub fn verify_github_signature(secret: &[u8], body: &[u8], header: &str) -> Result<(), Error> {
    let hex = header
        .strip_prefix("sha256=")
        .ok_or_else(|| Error::Webhook("signature header must start with sha256=".to_owned()))?;
    verify_hmac_sha256(secret, body, hex).map_err(|e| {
        Error::Webhook(match e {
            SignatureError::NotHex => "signature is not hex".to_owned(),
            SignatureError::Mismatch => "signature does not match the body".to_owned(),
        })
    })
}

/// Reads a push payload. `provider` is `distribution`, `dockerhub`, `ghcr`, `harbor` or `quay`;
/// `None` guesses from the shape. Events that are not pushes yield an empty list.
pub fn parse_webhook(provider: Option<&str>, body: &[u8]) -> Result<Vec<PushEvent>, Error> {
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| Error::Webhook(format!("payload is not valid JSON: {e}")))?;
    let provider = match provider {
        Some(p) => p.to_owned(),
        None => guess(&value).ok_or_else(|| {
            Error::Webhook(
                "unrecognised payload (expected distribution, Docker Hub, GHCR, Harbor or Quay)"
                    .to_owned(),
            )
        })?,
    };
    let bad = |what: &str| Error::Webhook(format!("{provider} payload: {what}"));
    match provider.as_str() {
        "distribution" => {
            #[derive(Deserialize)]
            struct Envelope {
                events: Vec<Event>,
            }
            #[derive(Deserialize)]
            struct Event {
                action: String,
                target: Target,
                request: Option<Request>,
            }
            #[derive(Deserialize)]
            struct Target {
                repository: String,
                digest: Option<String>,
                tag: Option<String>,
                url: Option<String>,
                #[serde(rename = "mediaType")]
                media_type: Option<String>,
            }
            #[derive(Deserialize)]
            struct Request {
                host: Option<String>,
            }
            let env: Envelope = serde_json::from_value(value).map_err(|e| bad(&e.to_string()))?;
            Ok(env
                .events
                .into_iter()
                .filter(|e| e.action == "push")
                // Blob pushes come before the manifest; only manifests make a new tag.
                .filter(|e| {
                    e.target
                        .media_type
                        .as_deref()
                        .is_none_or(|m| m.contains("manifest") || m.contains("index"))
                })
                .map(|e| {
                    let host = e
                        .request
                        .and_then(|r| r.host)
                        .or_else(|| e.target.url.as_deref().and_then(url_host))
                        .unwrap_or_default();
                    PushEvent {
                        registry: host,
                        repository: e.target.repository,
                        tag: e.target.tag.filter(|t| !t.is_empty()),
                        digest: e.target.digest,
                    }
                })
                .collect())
        }
        "dockerhub" => {
            let repo = value
                .pointer("/repository/repo_name")
                .and_then(|v| v.as_str())
                .ok_or_else(|| bad("repository.repo_name missing"))?;
            let repository = if repo.contains('/') {
                repo.to_owned()
            } else {
                format!("library/{repo}")
            };
            Ok(vec![PushEvent {
                registry: "docker.io".to_owned(),
                repository,
                tag: value
                    .pointer("/push_data/tag")
                    .and_then(|v| v.as_str())
                    .map(str::to_owned),
                digest: None,
            }])
        }
        "ghcr" => {
            let s = |p: &str| value.pointer(p).and_then(|v| v.as_str()).unwrap_or("");
            if s("/action") != "published"
                || !s("/package/package_type").eq_ignore_ascii_case("container")
            {
                return Ok(vec![]);
            }
            let (owner, name) = (s("/package/owner/login"), s("/package/name"));
            if owner.is_empty() || name.is_empty() {
                return Err(bad("package.owner.login and package.name are required"));
            }
            let tag = [
                "/package/package_version/container_metadata/tag/name",
                "/package/package_version/name",
            ]
            .iter()
            .map(|p| s(p))
            .find(|t| !t.is_empty() && !t.starts_with("sha256:"))
            .map(str::to_owned);
            let version = s("/package/package_version/version");
            Ok(vec![PushEvent {
                registry: "ghcr.io".to_owned(),
                repository: format!("{owner}/{name}").to_lowercase(),
                tag,
                digest: version.starts_with("sha256:").then(|| version.to_owned()),
            }])
        }
        "harbor" => {
            let kind = value.get("type").and_then(|v| v.as_str()).unwrap_or("");
            if kind != "PUSH_ARTIFACT" && kind != "pushImage" {
                return Ok(vec![]);
            }
            let repo = value
                .pointer("/event_data/repository/repo_full_name")
                .and_then(|v| v.as_str())
                .ok_or_else(|| bad("event_data.repository.repo_full_name missing"))?;
            let resources = value
                .pointer("/event_data/resources")
                .and_then(|v| v.as_array())
                .ok_or_else(|| bad("event_data.resources missing"))?;
            Ok(resources
                .iter()
                .map(|r| {
                    let url = r.get("resource_url").and_then(|v| v.as_str()).unwrap_or("");
                    PushEvent {
                        registry: url.split('/').next().unwrap_or("").to_owned(),
                        repository: repo.to_owned(),
                        tag: r
                            .get("tag")
                            .and_then(|v| v.as_str())
                            .filter(|t| !t.is_empty())
                            .map(str::to_owned),
                        digest: r.get("digest").and_then(|v| v.as_str()).map(str::to_owned),
                    }
                })
                .collect())
        }
        "quay" => {
            let repo = value
                .get("repository")
                .and_then(|v| v.as_str())
                .ok_or_else(|| bad("repository missing"))?;
            let registry = value
                .get("docker_url")
                .and_then(|v| v.as_str())
                .and_then(|u| u.split('/').next())
                .filter(|h| h.contains('.') || h.contains(':'))
                .unwrap_or("quay.io")
                .to_owned();
            let tags: Vec<String> = value
                .get("updated_tags")
                .and_then(|v| v.as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|t| t.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            if tags.is_empty() {
                return Ok(vec![PushEvent {
                    registry,
                    repository: repo.to_owned(),
                    tag: None,
                    digest: None,
                }]);
            }
            Ok(tags
                .into_iter()
                .map(|t| PushEvent {
                    registry: registry.clone(),
                    repository: repo.to_owned(),
                    tag: Some(t),
                    digest: None,
                })
                .collect())
        }
        other => Err(Error::Webhook(format!("unknown provider {other:?}"))),
    }
}

fn url_host(url: &str) -> Option<String> {
    Some(url.split("://").nth(1)?.split('/').next()?.to_owned())
}

fn guess(v: &serde_json::Value) -> Option<String> {
    Some(
        if v.get("events").is_some() {
            "distribution"
        } else if v.get("push_data").is_some() {
            "dockerhub"
        } else if v.get("package").is_some() {
            "ghcr"
        } else if v.get("event_data").is_some() {
            "harbor"
        } else if v.get("updated_tags").is_some() || v.get("docker_url").is_some() {
            "quay"
        } else {
            return None;
        }
        .to_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use hmac::{Hmac, Mac};
    use sha2::Sha256;

    fn one(provider: Option<&str>, body: &str) -> PushEvent {
        let mut v = parse_webhook(provider, body.as_bytes()).unwrap();
        assert_eq!(v.len(), 1, "{v:?}");
        v.remove(0)
    }

    #[test]
    fn distribution_envelope() {
        let body = r#"{"events":[
          {"action":"push","target":{"mediaType":"application/octet-stream","repository":"shop/backend","digest":"sha256:aa"},"request":{"host":"registry.local:5000"}},
          {"action":"push","target":{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","repository":"shop/backend","digest":"sha256:bb","tag":"v1.0.1","url":"http://registry.local:5000/v2/shop/backend/manifests/sha256:bb"},"request":{"host":"registry.local:5000"}},
          {"action":"pull","target":{"repository":"x"}}]}"#;
        let e = one(None, body);
        assert_eq!(
            e,
            PushEvent {
                registry: "registry.local:5000".into(),
                repository: "shop/backend".into(),
                tag: Some("v1.0.1".into()),
                digest: Some("sha256:bb".into()),
            }
        );
    }

    #[test]
    fn docker_hub_ghcr_harbor_quay() {
        let e = one(
            None,
            r#"{"push_data":{"tag":"v2"},"repository":{"repo_name":"acme/web","name":"web","namespace":"acme"}}"#,
        );
        assert_eq!(
            (e.registry.as_str(), e.repository.as_str(), e.tag.as_deref()),
            ("docker.io", "acme/web", Some("v2"))
        );
        let e = one(
            None,
            r#"{"action":"published","package":{"name":"App","package_type":"CONTAINER","owner":{"login":"Acme"},"package_version":{"version":"sha256:cc","container_metadata":{"tag":{"name":"v3","digest":"sha256:cc"}}}}}"#,
        );
        assert_eq!(
            (
                e.registry.as_str(),
                e.repository.as_str(),
                e.tag.as_deref(),
                e.digest.as_deref()
            ),
            ("ghcr.io", "acme/app", Some("v3"), Some("sha256:cc"))
        );
        assert!(
            parse_webhook(Some("ghcr"), br#"{"action":"updated","package":{}}"#)
                .unwrap()
                .is_empty()
        );
        let e = one(
            None,
            r#"{"type":"PUSH_ARTIFACT","event_data":{"resources":[{"digest":"sha256:dd","tag":"v4","resource_url":"harbor.example.com/proj/app:v4"}],"repository":{"repo_full_name":"proj/app"}}}"#,
        );
        assert_eq!(
            (e.registry.as_str(), e.repository.as_str(), e.tag.as_deref()),
            ("harbor.example.com", "proj/app", Some("v4"))
        );
        let v = parse_webhook(None, br#"{"repository":"org/app","docker_url":"quay.io/org/app","updated_tags":["v5","latest"]}"#).unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].registry, "quay.io");
    }

    #[test]
    fn garbage_and_signatures() {
        assert!(parse_webhook(None, b"{not json").is_err());
        assert!(parse_webhook(None, br#"{"hello":1}"#).is_err());
        assert!(parse_webhook(Some("dockerhub"), br#"{"push_data":{}}"#).is_err());
        let body = br#"{"action":"published"}"#;
        let mut mac = Hmac::<Sha256>::new_from_slice(b"s3cret").unwrap();
        mac.update(body);
        let sig: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert!(verify_github_signature(b"s3cret", body, &format!("sha256={sig}")).is_ok());
        assert!(verify_github_signature(b"other", body, &format!("sha256={sig}")).is_err());
        assert!(verify_github_signature(b"s3cret", b"tampered", &format!("sha256={sig}")).is_err());
        assert!(verify_github_signature(b"s3cret", body, "md5=00").is_err());
    }
}
