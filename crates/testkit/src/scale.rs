//! The scale scenario of `scripts/bench` and the `scale_cycles` timing test: applications of
//! ten images each, five to a `file://` Git repository, over registry repositories of 20 tags,
//! every image one update behind.

use crate::git::BareRepo;
use crate::registry::{Auth, Registry};

/// Images per application.
pub const IMAGES_PER_APP: usize = 10;
/// Applications per Git repository.
pub const APPS_PER_REPO: usize = 5;
/// Tags per registry repository (`v1.0.0` … `v1.0.19`).
pub const TAGS: usize = 20;

/// A seeded scenario: the registry, the Git repositories and the `driftwatch.yaml` tracking
/// every image.
pub struct Scale {
    /// The registry (kept running while this lives).
    pub registry: Registry,
    /// The Git repositories, in application order.
    pub repos: Vec<BareRepo>,
    /// `driftwatch.yaml` for every application.
    pub config: String,
    /// The registry repositories.
    names: Vec<String>,
}

impl Scale {
    /// Seeds `apps` applications over `registry_repos` registry repositories.
    pub fn seed(apps: usize, registry_repos: usize) -> Self {
        let registry = Registry::start(Auth::None);
        let host = registry.host();
        let names: Vec<String> = (0..registry_repos)
            .map(|r| format!("scale/img-{r:04}"))
            .collect();
        let tags: Vec<String> = (0..TAGS).map(|t| format!("v1.0.{t}")).collect();
        registry.seed_on_disk(&names, &tags, "2026-11-01T00:00:00Z");
        let mut repos = Vec::new();
        let mut config = String::from("interval: 1h\napplications:\n");
        for first in (0..apps).step_by(APPS_PER_REPO) {
            let mut files = Vec::new();
            let mut entries = Vec::new();
            for a in first..(first + APPS_PER_REPO).min(apps) {
                let mut k = String::from("kind: Kustomization\nimages:\n");
                let mut tracked = String::new();
                for j in 0..IMAGES_PER_APP {
                    let r = (a * IMAGES_PER_APP + j) % registry_repos;
                    k.push_str(&format!(
                        "- name: img-{j}\n  newName: {host}/scale/img-{r:04}\n  newTag: v1.0.0\n"
                    ));
                    tracked.push_str(&format!(
                        "  - image: {host}/scale/img-{r:04}\n    kustomizeName: img-{j}\n"
                    ));
                }
                files.push((format!("apps/app-{a:05}/kustomization.yaml"), k));
                entries.push((a, tracked));
            }
            let refs: Vec<(&str, &str)> = files
                .iter()
                .map(|(p, c)| (p.as_str(), c.as_str()))
                .collect();
            let repo = BareRepo::new(&refs);
            for (a, tracked) in entries {
                config.push_str(&format!(
                    "- name: app-{a:05}\n  repo: {}\n  path: apps/app-{a:05}\n  writeBack: kustomization\n  images:\n{tracked}",
                    repo.file_url()
                ));
            }
            repos.push(repo);
        }
        Scale {
            registry,
            repos,
            config,
            names,
        }
    }

    /// Publishes `tag` (newer than the seeded ones) in every registry repository: every image
    /// has an update again, for a cycle with updates on mirrors that already exist.
    pub fn release(&self, tag: &str) {
        self.registry
            .seed_on_disk(&self.names, &[tag.to_owned()], "2026-11-02T00:00:00Z");
    }
}
