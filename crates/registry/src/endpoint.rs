//! Where a repository lives and how to talk to it: argocd-image-updater's `registries.conf`
//! and its matching rules.

use std::time::Duration;

use driftwatch_policy::{DOCKER_HUB, ImageRef};
use serde::Deserialize;

use crate::error::Error;

/// How a registry orders `tags/list`, which lets `newest-build` skip metadata.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TagSort {
    /// Unordered (the default).
    #[default]
    None,
    /// Newest tag first.
    LatestFirst,
    /// Newest tag last.
    LatestLast,
}

/// One registry as configured.
#[derive(Clone, Debug, PartialEq)]
pub struct RegistryEntry {
    /// Display name.
    pub name: String,
    /// The image prefix it serves: a host (`ghcr.io`) or host and path (`ghcr.io/acme`).
    pub prefix: String,
    /// Base URL of the API, e.g. `https://registry-1.docker.io`.
    pub api_url: String,
    /// Credentials spec (`env:VAR`, `ext:/path`, `file:/path/config.json`).
    pub credentials: Option<String>,
    /// Re-read credentials after this long.
    pub creds_expire: Option<Duration>,
    /// Namespace for single-component repository names.
    pub default_ns: Option<String>,
    /// Used for images that name no registry.
    pub default: bool,
    /// Skip TLS verification (or allow plain HTTP).
    pub insecure: bool,
    /// How its tag list is ordered.
    pub tag_sort: TagSort,
    /// Requests per second at most.
    pub limit: Option<f64>,
}

/// The registries of `registries.conf`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RegistriesConf {
    /// The entries in file order.
    pub entries: Vec<RegistryEntry>,
}

/// A resolved endpoint for one repository.
#[derive(Clone, Debug, PartialEq)]
pub struct Endpoint {
    /// The registry's identity for limits, tokens and metrics (its host).
    pub registry: String,
    /// `scheme://host[:port]` without a trailing slash.
    pub base_url: String,
    /// The repository path to ask for.
    pub repository: String,
    /// TLS verification off.
    pub insecure: bool,
    /// Requests per second at most.
    pub limit: Option<f64>,
    /// Credentials spec.
    pub credentials: Option<String>,
    /// Re-read credentials after this long.
    pub creds_expire: Option<Duration>,
    /// Tag list order.
    pub tag_sort: TagSort,
}

#[derive(Deserialize)]
struct File {
    #[serde(default)]
    registries: Vec<RawEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    name: Option<String>,
    prefix: Option<String>,
    api_url: String,
    credentials: Option<String>,
    credsexpire: Option<String>,
    defaultns: Option<String>,
    default: Option<LooseBool>,
    insecure: Option<LooseBool>,
    ping: Option<LooseBool>,
    tagsortmode: Option<String>,
    limit: Option<f64>,
}

/// YAML 1.1 booleans (`yes`, `no`, `on`, `off`) as argocd-image-updater's parser reads them.
#[derive(Deserialize)]
#[serde(untagged)]
enum LooseBool {
    Bool(bool),
    Text(String),
}

impl LooseBool {
    fn get(&self, field: &str) -> Result<bool, String> {
        match self {
            LooseBool::Bool(b) => Ok(*b),
            LooseBool::Text(t) => match t.to_ascii_lowercase().as_str() {
                "yes" | "y" | "true" | "on" => Ok(true),
                "no" | "n" | "false" | "off" => Ok(false),
                _ => Err(format!("{field}: {t:?} is not a boolean")),
            },
        }
    }
}

/// Parses a Go duration such as `1h`, `30m`, `1h30m`, `90s`, `500ms`.
pub fn parse_go_duration(s: &str) -> Option<Duration> {
    let mut total = 0f64;
    let mut rest = s.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let n_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let n: f64 = rest[..n_end].parse().ok()?;
        rest = &rest[n_end..];
        let u_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = match &rest[..u_end] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 0.001,
            "us" | "µs" => 0.000_001,
            "ns" => 0.000_000_001,
            _ => return None,
        };
        total += n * unit;
        rest = &rest[u_end..];
    }
    Some(Duration::from_secs_f64(total))
}

impl RegistriesConf {
    /// Adds an entry for one repository with its own credentials (an image's pull secret),
    /// keeping the endpoint it resolves to otherwise.
    pub fn with_repository_credentials(
        &mut self,
        image: &ImageRef,
        implicit_registry: bool,
        credentials: &str,
    ) {
        let base = self.resolve(image, implicit_registry);
        let template = self.entry_for(image, implicit_registry).cloned();
        self.entries.insert(
            0,
            RegistryEntry {
                name: image.name(),
                prefix: image.name(),
                api_url: base.base_url,
                credentials: Some(credentials.to_owned()),
                creds_expire: template.as_ref().and_then(|t| t.creds_expire),
                default_ns: None,
                default: false,
                insecure: base.insecure,
                tag_sort: base.tag_sort,
                limit: base.limit,
            },
        );
    }

    /// Parses `registries.conf`. `source_name` names the file in errors.
    pub fn parse(text: &str, source_name: &str) -> Result<Self, Error> {
        let bad = |reason: String| Error::Config {
            source_name: source_name.to_owned(),
            reason,
        };
        let file: File = serde_saphyr::from_str(text).map_err(|e| bad(e.to_string()))?;
        let mut entries = Vec::new();
        for (i, raw) in file.registries.into_iter().enumerate() {
            let at = |field: &str| format!("registries[{i}].{field}");
            let api_url = raw.api_url.trim_end_matches('/').to_owned();
            if !(api_url.starts_with("http://") || api_url.starts_with("https://")) {
                return Err(bad(format!(
                    "{}: {api_url:?} must start with http:// or https://",
                    at("api_url")
                )));
            }
            let host = api_url
                .split("://")
                .nth(1)
                .unwrap_or("")
                .split('/')
                .next()
                .unwrap_or("");
            let prefix = raw.prefix.unwrap_or_else(|| host.to_owned());
            let tag_sort = match raw.tagsortmode.as_deref().unwrap_or("none") {
                "none" | "" => TagSort::None,
                "latest-first" => TagSort::LatestFirst,
                "latest-last" => TagSort::LatestLast,
                other => {
                    return Err(bad(format!(
                        "{}: {other:?} is not one of none, latest-first, latest-last",
                        at("tagsortmode")
                    )));
                }
            };
            let creds_expire = match raw.credsexpire.as_deref() {
                None | Some("") => None,
                Some(d) => Some(parse_go_duration(d).ok_or_else(|| {
                    bad(format!(
                        "{}: {d:?} is not a duration like 1h or 30m",
                        at("credsexpire")
                    ))
                })?),
            };
            if let Some(limit) = raw.limit
                && !(limit > 0.0 && limit.is_finite())
            {
                return Err(bad(format!("{}: must be a positive number", at("limit"))));
            }
            if let Some(ping) = &raw.ping {
                ping.get(&at("ping")).map_err(bad)?;
            }
            entries.push(RegistryEntry {
                name: raw.name.unwrap_or_else(|| prefix.clone()),
                prefix,
                api_url,
                credentials: raw.credentials.filter(|c| !c.is_empty()),
                creds_expire,
                default_ns: raw.defaultns.filter(|n| !n.is_empty()),
                default: raw
                    .default
                    .map(|b| b.get(&at("default")))
                    .transpose()
                    .map_err(bad)?
                    .unwrap_or(false),
                insecure: raw
                    .insecure
                    .map(|b| b.get(&at("insecure")))
                    .transpose()
                    .map_err(bad)?
                    .unwrap_or(false),
                tag_sort,
                limit: raw.limit,
            });
        }
        Ok(RegistriesConf { entries })
    }

    /// The entry for an image: an exact prefix match, else the longest prefix that matches at a
    /// path boundary, else the `default: true` entry for images that name no registry.
    pub fn entry_for(&self, image: &ImageRef, implicit_registry: bool) -> Option<&RegistryEntry> {
        let full = format!("{}/{}", image.registry(), image.repository());
        let familiar = image.familiar_name();
        let matches = |e: &&RegistryEntry| {
            let p = e.prefix.trim_end_matches('/');
            p == image.registry()
                || full.starts_with(&format!("{p}/"))
                || (image.registry() == DOCKER_HUB && familiar.starts_with(&format!("{p}/")))
        };
        // A prefix naming this very repository is the most specific; then the host exactly.
        if let Some(repo) = self
            .entries
            .iter()
            .find(|e| e.prefix.trim_end_matches('/') == full)
        {
            return Some(repo);
        }
        if let Some(exact) = self
            .entries
            .iter()
            .find(|e| e.prefix.trim_end_matches('/') == image.registry())
        {
            return Some(exact);
        }
        self.entries
            .iter()
            .filter(matches)
            .max_by_key(|e| e.prefix.len())
            .or_else(|| {
                implicit_registry
                    .then(|| self.entries.iter().find(|e| e.default))
                    .flatten()
            })
    }

    /// Resolves where to ask about `image`. `implicit_registry` is true when the user wrote no
    /// registry (`nginx`, `org/app`).
    pub fn resolve(&self, image: &ImageRef, implicit_registry: bool) -> Endpoint {
        match self.entry_for(image, implicit_registry) {
            Some(e) => {
                let mut repository = image.repository().to_owned();
                if let Some(ns) = &e.default_ns {
                    let bare = repository
                        .strip_prefix("library/")
                        .filter(|r| !r.contains('/'));
                    if let Some(name) = bare.filter(|_| ns != "library") {
                        repository = format!("{ns}/{name}");
                    } else if !repository.contains('/') {
                        repository = format!("{ns}/{repository}");
                    }
                }
                let registry = e
                    .api_url
                    .split("://")
                    .nth(1)
                    .unwrap_or(&e.api_url)
                    .to_owned();
                Endpoint {
                    registry,
                    base_url: e.api_url.clone(),
                    repository,
                    insecure: e.insecure,
                    limit: e.limit,
                    credentials: e.credentials.clone(),
                    creds_expire: e.creds_expire,
                    tag_sort: e.tag_sort,
                }
            }
            None => default_endpoint(image),
        }
    }
}

/// True for hosts Docker talks plain HTTP to: loopback addresses and `localhost`.
pub fn is_loopback(host_port: &str) -> bool {
    let host = if let Some(rest) = host_port.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host_port.split(':').next().unwrap_or("")
    };
    host == "localhost"
        || host == "::1"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn default_endpoint(image: &ImageRef) -> Endpoint {
    let host = image.registry();
    let base_url = if host == DOCKER_HUB {
        "https://registry-1.docker.io".to_owned()
    } else if is_loopback(host) {
        format!("http://{host}")
    } else {
        format!("https://{host}")
    };
    Endpoint {
        registry: host.to_owned(),
        base_url,
        repository: image.repository().to_owned(),
        insecure: false,
        limit: None,
        credentials: None,
        creds_expire: None,
        tag_sort: TagSort::None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONF: &str = r#"
registries:
- name: Docker Hub
  api_url: https://registry-1.docker.io
  ping: yes
  prefix: docker.io
  credentials: env:DOCKER_HUB_CREDS
  credsexpire: 1h30m
  defaultns: library
  default: true
- name: Team registry
  api_url: https://registry.example.com/
  prefix: registry.example.com/team
  insecure: yes
  tagsortmode: latest-first
  limit: 20
- name: Whole registry
  api_url: https://registry.example.com
  prefix: registry.example.com
  limit: 5
"#;

    fn r(s: &str) -> ImageRef {
        ImageRef::parse(s).unwrap()
    }

    #[test]
    fn parses_the_updaters_format() {
        let conf = RegistriesConf::parse(CONF, "registries.conf").unwrap();
        assert_eq!(conf.entries.len(), 3);
        let hub = &conf.entries[0];
        assert!(hub.default);
        assert_eq!(hub.creds_expire, Some(Duration::from_secs(5400)));
        assert_eq!(conf.entries[1].api_url, "https://registry.example.com");
        assert!(conf.entries[1].insecure);
        assert_eq!(conf.entries[1].tag_sort, TagSort::LatestFirst);
    }

    #[test]
    fn matching_rules() {
        let conf = RegistriesConf::parse(CONF, "registries.conf").unwrap();
        // Exact prefix beats a longer path prefix.
        assert_eq!(
            conf.resolve(&r("registry.example.com/team/app"), false)
                .limit,
            Some(5.0)
        );
        let no_exact = RegistriesConf {
            entries: conf.entries[..2].to_vec(),
        };
        assert_eq!(
            no_exact
                .resolve(&r("registry.example.com/team/app"), false)
                .limit,
            Some(20.0)
        );
        let hub = conf.resolve(&r("nginx"), true);
        assert_eq!(hub.base_url, "https://registry-1.docker.io");
        assert_eq!(hub.repository, "library/nginx");
        assert_eq!(hub.credentials.as_deref(), Some("env:DOCKER_HUB_CREDS"));
        let other = conf.resolve(&r("ghcr.io/org/app"), false);
        assert_eq!(other.base_url, "https://ghcr.io");
        let local = conf.resolve(&r("localhost:5000/app"), false);
        assert_eq!(local.base_url, "http://localhost:5000");
        assert_eq!(
            conf.resolve(&r("127.0.0.1:5000/app"), false).base_url,
            "http://127.0.0.1:5000"
        );
    }

    #[test]
    fn errors_name_the_field() {
        for (bad, field) in [
            ("registries:\n- api_url: ftp://x\n", "registries[0].api_url"),
            (
                "registries:\n- api_url: https://x\n  tagsortmode: newest\n",
                "registries[0].tagsortmode",
            ),
            (
                "registries:\n- api_url: https://x\n  credsexpire: soon\n",
                "registries[0].credsexpire",
            ),
            (
                "registries:\n- api_url: https://x\n  limit: -1\n",
                "registries[0].limit",
            ),
            (
                "registries:\n- api_url: https://x\n  insecure: maybe\n",
                "registries[0].insecure",
            ),
        ] {
            let err = RegistriesConf::parse(bad, "registries.conf")
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(field) && err.contains("registries.conf"),
                "{err}"
            );
        }
        let err =
            RegistriesConf::parse("registries:\n- api_url: https://x\n  bogus: 1\n", "r.conf")
                .unwrap_err();
        assert!(err.to_string().contains("bogus"), "{err}");
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_go_duration("90s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_go_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_go_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_go_duration("soon"), None);
        assert!(
            is_loopback("127.0.0.2:80") && is_loopback("[::1]:5000") && !is_loopback("10.0.0.1")
        );
    }
}
