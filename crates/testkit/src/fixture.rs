//! The smallest whole setup the service tests share: a registry with `shop/backend:v1.0.0`, a
//! Git repository whose `apps/shop` kustomization pins that tag, and a `driftwatch.yaml` that
//! tracks it with a one-hour interval (so only webhooks and actions start cycles).

use std::path::PathBuf;

use crate::TempDir;
use crate::git::BareRepo;
use crate::registry::{Auth, Registry};

/// One application, `shop`, tracking `HOST/shop/backend` in `apps/shop/kustomization.yaml`.
pub struct Shop {
    /// The registry (`shop/backend:v1.0.0` pushed).
    pub reg: Registry,
    /// The Git repository.
    pub repo: BareRepo,
    /// Holds the configuration and, as `state`, the state directory.
    pub dir: TempDir,
    /// `driftwatch.yaml`.
    pub conf: PathBuf,
}

impl Shop {
    /// Sets it up; `name` names the temporary directory.
    pub fn new(name: &str) -> Self {
        let reg = Registry::start(Auth::None);
        reg.push_image("shop/backend", "v1.0.0", "2026-11-01T00:00:00Z");
        let kustomization = format!(
            "kind: Kustomization\nimages:\n- name: backend\n  newName: {}/shop/backend\n  newTag: v1.0.0\n",
            reg.host()
        );
        let repo = BareRepo::new(&[("apps/shop/kustomization.yaml", &kustomization)]);
        let dir = TempDir::new(name);
        let conf = dir.path().join("driftwatch.yaml");
        std::fs::write(
            &conf,
            format!(
                "interval: 1h\napplications:\n- name: shop\n  repo: {}\n  path: apps/shop\n  writeBack: kustomization\n  images:\n  - image: {}/shop/backend\n    kustomizeName: backend\n",
                repo.file_url(),
                reg.host()
            ),
        )
        .expect("write driftwatch.yaml");
        Shop {
            reg,
            repo,
            dir,
            conf,
        }
    }

    /// The state directory to give `--state-dir`.
    pub fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }
}
