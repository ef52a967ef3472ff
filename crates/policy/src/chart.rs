//! Helm charts kept in OCI registries: their references (`oci://host/path/name`) and the
//! mapping between chart versions and OCI tags. Helm writes a version's `+` (build metadata) as
//! `_` in the tag, because `+` is not allowed in OCI tags; versions are compared and written to
//! Git with the `+`.

use crate::error::{Error, Result};
use crate::reference::ImageRef;

/// A Helm chart in an OCI registry: `oci://registry.example.com/charts/web`, without a version.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ChartRef {
    /// `registry.example.com/charts/web`: the reference without its scheme.
    path: String,
    /// The OCI repository the chart's versions are tags of.
    image: ImageRef,
}

impl ChartRef {
    /// Parses `oci://host[:port]/path/name`. Anything else (an `https://` chart repository, a
    /// bare name, a reference with a version) is refused with the reason.
    pub fn parse(input: &str) -> Result<Self> {
        let bad = |reason: &str| Error::InvalidChart {
            input: input.to_owned(),
            reason: reason.to_owned(),
        };
        let trimmed = input.trim();
        let Some(rest) = trimmed.strip_prefix("oci://") else {
            return Err(bad(
                "only charts in OCI registries are followed: write oci://host/path/name",
            ));
        };
        let rest = rest.trim_end_matches('/');
        let Some((host, repo)) = rest.split_once('/') else {
            return Err(bad("expected oci://host/path/name"));
        };
        if host.is_empty() || repo.is_empty() || repo.split('/').any(str::is_empty) {
            return Err(bad("expected oci://host/path/name"));
        }
        let last = repo.rsplit('/').next().unwrap_or(repo);
        if last.contains(':') || rest.contains('@') {
            return Err(bad(
                "give the chart without a version; put the version rule in constraint",
            ));
        }
        let image = ImageRef::parse(rest).map_err(|e| bad(&e.to_string()))?;
        if image.registry() != host {
            return Err(bad(
                "expected a registry host (such as registry.example.com)",
            ));
        }
        Ok(ChartRef {
            path: rest.to_owned(),
            image,
        })
    }

    /// The chart from an Argo CD source: `repoURL` (`oci://host/path`, or a bare `host/path`
    /// as Argo CD writes OCI Helm repositories) and `chart` (`name`), or a `repoURL` that is
    /// the whole `oci://host/path/name` when there is no `chart`.
    pub fn from_source(repo_url: &str, chart: Option<&str>) -> Result<Self> {
        let base = repo_url.trim().trim_end_matches('/');
        if base.contains("://") && !base.starts_with("oci://") {
            return Err(Error::InvalidChart {
                input: repo_url.to_owned(),
                reason: "only charts in OCI registries are followed (oci://host/path, or \
                         host/path with chart)"
                    .to_owned(),
            });
        }
        let base = base.strip_prefix("oci://").unwrap_or(base);
        match chart.map(str::trim).filter(|c| !c.is_empty()) {
            Some(c) => Self::parse(&format!("oci://{base}/{c}")),
            None => Self::parse(&format!("oci://{base}")),
        }
    }

    /// `oci://host/path/name`.
    pub fn reference(&self) -> String {
        format!("oci://{}", self.path)
    }

    /// The chart's name: the last path segment (`web`).
    pub fn name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or(&self.path)
    }

    /// The repository the chart is in, as kustomize's `helmCharts[].repo` names it:
    /// `oci://host/path`.
    pub fn repo(&self) -> String {
        let parent = self.path.rsplit_once('/').map_or("", |(p, _)| p);
        format!("oci://{parent}")
    }

    /// The OCI repository whose tags are the chart's versions.
    pub fn image(&self) -> &ImageRef {
        &self.image
    }

    /// True when a kustomize `helmCharts` entry (`repo`, `name`) is this chart. The scheme and
    /// a trailing `/` of `repo` do not matter.
    pub fn matches_repo_and_name(&self, repo: &str, name: &str) -> bool {
        let repo = repo.trim().trim_end_matches('/');
        let repo = repo.strip_prefix("oci://").unwrap_or(repo);
        format!("{repo}/{}", name.trim()) == self.path
    }

    /// True when an Argo CD source (`repoURL`, `chart`) is this chart.
    pub fn matches_source(&self, repo_url: &str, chart: Option<&str>) -> bool {
        Self::from_source(repo_url, chart).is_ok_and(|c| c.path == self.path)
    }
}

impl std::fmt::Display for ChartRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "oci://{}", self.path)
    }
}

/// The chart version an OCI tag stands for: Helm writes `+` as `_` in tags
/// (`1.2.3_build.1` is version `1.2.3+build.1`).
pub fn chart_version_of_tag(tag: &str) -> String {
    tag.replace('_', "+")
}

/// The OCI tag of a chart version (`1.2.3+build.1` is tagged `1.2.3_build.1`).
pub fn chart_tag_of_version(version: &str) -> String {
    version.replace('+', "_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_oci_references() {
        let c = ChartRef::parse("oci://registry.example.com/charts/web").unwrap();
        assert_eq!(c.name(), "web");
        assert_eq!(c.repo(), "oci://registry.example.com/charts");
        assert_eq!(c.reference(), "oci://registry.example.com/charts/web");
        assert_eq!(c.image().registry(), "registry.example.com");
        assert_eq!(c.image().repository(), "charts/web");
        let local = ChartRef::parse("oci://127.0.0.1:5000/web/").unwrap();
        assert_eq!(local.image().registry(), "127.0.0.1:5000");
        assert_eq!(local.repo(), "oci://127.0.0.1:5000");
    }

    #[test]
    fn refuses_what_is_not_an_oci_chart() {
        for (bad, why) in [
            (
                "https://charts.example.com/web",
                "only charts in OCI registries",
            ),
            (
                "registry.example.com/charts/web",
                "only charts in OCI registries",
            ),
            (
                "oci://registry.example.com",
                "expected oci://host/path/name",
            ),
            (
                "oci://registry.example.com//web",
                "expected oci://host/path/name",
            ),
            (
                "oci://registry.example.com/charts/web:1.2.3",
                "without a version",
            ),
            (
                "oci://registry.example.com/charts/web@sha256:00",
                "without a version",
            ),
            ("oci://web/chart", "registry host"),
        ] {
            let e = ChartRef::parse(bad).unwrap_err().to_string();
            assert!(e.contains(why) && e.contains(bad), "{bad}: {e}");
        }
    }

    #[test]
    fn matches_kustomize_and_argo_cd_spellings() {
        let c = ChartRef::parse("oci://registry.example.com/charts/web").unwrap();
        assert!(c.matches_repo_and_name("oci://registry.example.com/charts", "web"));
        assert!(c.matches_repo_and_name("oci://registry.example.com/charts/", "web"));
        assert!(!c.matches_repo_and_name("oci://registry.example.com/other", "web"));
        assert!(!c.matches_repo_and_name("oci://registry.example.com/charts", "api"));
        assert!(c.matches_source("registry.example.com/charts", Some("web")));
        assert!(c.matches_source("oci://registry.example.com/charts", Some("web")));
        assert!(c.matches_source("oci://registry.example.com/charts/web", None));
        assert!(!c.matches_source("https://git.example.com/repo.git", None));
        assert!(!c.matches_source("https://registry.example.com/charts", Some("web")));
        assert!(!c.matches_source("registry.example.com/charts", Some("api")));
    }

    #[test]
    fn build_metadata_travels_as_underscore_in_tags() {
        assert_eq!(chart_version_of_tag("1.2.3_build.1"), "1.2.3+build.1");
        assert_eq!(chart_tag_of_version("1.2.3+build.1"), "1.2.3_build.1");
        assert_eq!(chart_version_of_tag("1.2.3"), "1.2.3");
    }
}
