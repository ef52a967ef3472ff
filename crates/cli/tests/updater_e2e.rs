//! The scenarios of the workflow document, end to end: a real registry, a real Git repository,
//! `driftwatch check` and `driftwatch run --once`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use driftwatch_testkit::TempDir;
use driftwatch_testkit::git::{BareRepo, git};
use driftwatch_testkit::registry::{Auth, PagingProxy, Registry};

const BASE: &str = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- deployment.yaml\nimages:\n- name: backend\n  newTag: v1.0.0\n- name: frontend\n  newTag: v2.5.0\n";
const PROD: &str = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- ../../base\nimages:\n- name: backend\n  newTag: v1.0.5 # production pin\n";
const DEV: &str = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- ../../base\nimages:\n- name: backend\n  newTag: dev-latest\n";

fn dw(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_driftwatch"))
        .args(args)
        .env("HOME", "/nonexistent")
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn config(dir: &TempDir, registry: &str, repo: &str) -> String {
    let text = format!(
        r#"interval: 30s
applications:
- name: shop-base
  repo: {repo}
  path: manifests/base
  writeBack: kustomization
  images:
  - image: {registry}/shop/backend
    kustomizeName: backend
  - image: {registry}/shop/frontend
    kustomizeName: frontend
- name: shop-prod
  repo: {repo}
  path: manifests/overlays/production
  writeBack: kustomization
  images:
  - image: {registry}/shop/backend
    kustomizeName: backend
    constraint: "~1.0"
    allowTags: regexp:^v[0-9]+\.[0-9]+\.[0-9]+$
    ignoreTags: ["*-rc*"]
- name: shop-dev
  repo: {repo}
  path: manifests/overlays/development
  writeBack: kustomization
  images:
  - image: {registry}/shop/backend
    kustomizeName: backend
    strategy: digest
    constraint: dev-latest
"#
    );
    let path = dir.path().join("driftwatch.yaml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn workflow_scenarios() {
    let reg = Registry::start(Auth::None);
    let proxy = PagingProxy::start(reg.host(), 1000);
    for tag in ["v1.0.0", "v1.0.5"] {
        reg.push_image("shop/backend", tag, "2026-11-01T00:00:00Z");
    }
    reg.push_image("shop/frontend", "v2.5.0", "2026-11-01T00:00:00Z");
    let first_dev = reg.push_image("shop/backend", "dev-latest", "2026-11-01T00:00:00Z");
    let repo = BareRepo::new(&[
        ("manifests/base/kustomization.yaml", BASE),
        ("manifests/overlays/production/kustomization.yaml", PROD),
        ("manifests/overlays/development/kustomization.yaml", DEV),
    ]);
    let dir = TempDir::new("e2e");
    let conf = config(&dir, &proxy.host(), &repo.file_url());
    let state = dir.path().join("state").display().to_string();
    let base = ["--config", conf.as_str(), "--state-dir", state.as_str()];

    // Git pins dev-latest by tag only: the digest is the drift.
    let (code, out, err) = dw(&[&["check"], &base[..]].concat());
    assert_eq!(code, 2, "{out}{err}");
    let (code, _, _) = dw(&[&["run", "--once"], &base[..]].concat());
    assert_eq!(code, 0);
    assert!(
        repo.show("main", "manifests/overlays/development/kustomization.yaml")
            .contains(&format!("digest: {first_dev}"))
    );
    let (code, out, err) = dw(&[&["check"], &base[..]].concat());
    assert_eq!(code, 0, "nothing drifts now: {out}{err}");
    let commits = repo.subjects("main").len();

    // Scenario 1, 2 and 5: new builds of both services, plus tags production must not take.
    reg.push_image("shop/backend", "v1.0.1", "2026-11-02T00:00:00Z");
    reg.push_image("shop/frontend", "v2.6.0", "2026-11-02T00:00:00Z");
    for tag in ["v1.0.6", "v1.1.0", "v2.0.0", "v1.0.7-rc1", "latest"] {
        reg.push_image("shop/backend", tag, "2026-11-03T00:00:00Z");
    }
    let (code, out, _) = dw(&[&["check", "-o", "json"], &base[..]].concat());
    assert_eq!(code, 2);
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    let prod = report["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["app"] == "shop-prod")
        .unwrap();
    assert_eq!(
        (
            prod["registry"].as_str(),
            prod["git"].as_str(),
            prod["status"].as_str()
        ),
        (Some("v1.0.6"), Some("v1.0.5"), Some("update-available"))
    );

    // Dry run writes nothing.
    let (code, plan, _) = dw(&[&["run", "--once", "--dry-run"], &base[..]].concat());
    assert_eq!(code, 0);
    assert!(
        plan.contains(&format!(
            "plan: shop-prod {}/shop/backend v1.0.5 -> v1.0.6 in manifests/overlays/production/kustomization.yaml:7",
            proxy.host()
        )),
        "{plan}"
    );
    assert_eq!(repo.subjects("main").len(), commits);

    let (code, out, err) = dw(&[&["run", "--once"], &base[..]].concat());
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        repo.subjects("main").len(),
        commits + 1,
        "all changes of one repository and branch in one commit"
    );
    let base_k = repo.show("main", "manifests/base/kustomization.yaml");
    // As `kustomize edit set image backend=<registry image>:<tag>` does, the entry gains newName.
    let host = proxy.host();
    assert_eq!(
        base_k,
        BASE.replace(
            "v1.0.0\n",
            &format!("v2.0.0\n  newName: {host}/shop/backend\n")
        )
        .replace(
            "v2.5.0\n",
            &format!("v2.6.0\n  newName: {host}/shop/frontend\n")
        ),
        "semver without a constraint takes the highest release"
    );
    let prod_k = repo.show("main", "manifests/overlays/production/kustomization.yaml");
    assert!(
        prod_k.contains("newTag: v1.0.6 # production pin\n"),
        "~1.0 takes v1.0.6, not v1.1.0, v2.0.0 or the rc: {prod_k}"
    );
    let message = git(&repo.path, &["log", "-1", "--format=%B", "main"]);
    assert!(
        message.contains("updates image") && message.contains("'v1.0.5' to 'v1.0.6'"),
        "{message}"
    );

    // Scenario 4: dev-latest moves to a new build.
    let second_dev = reg.push_image("shop/backend", "dev-latest", "2026-11-04T00:00:00Z");
    assert_ne!(first_dev, second_dev);
    // The registry dies mid-cycle: nothing is committed, and the next cycle recovers.
    proxy.set_down(true);
    let (code, out, _) = dw(&[&["run", "--once"], &base[..]].concat());
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("error"), "{out}");
    assert_eq!(
        repo.subjects("main").len(),
        commits + 1,
        "no commit while the registry is down"
    );
    proxy.set_down(false);
    let (code, _, _) = dw(&[&["run", "--once"], &base[..]].concat());
    assert_eq!(code, 0);
    assert!(
        repo.show("main", "manifests/overlays/development/kustomization.yaml")
            .contains(&format!("digest: {second_dev}"))
    );
    let (code, out, _) = dw(&[&["check"], &base[..]].concat());
    assert_eq!(code, 0, "{out}");
}

/// A registry holding team/api 1.0.0, 1.0.1 and 1.1.0.
fn api_registry() -> Registry {
    let reg = Registry::start(Auth::None);
    for tag in ["1.0.0", "1.0.1", "1.1.0"] {
        reg.push_image("team/api", tag, "2026-11-01T00:00:00Z");
    }
    reg
}

#[test]
fn argocd_applications_run_once() {
    let reg = api_registry();
    let repo = BareRepo::new(&[
        ("apps/api/kustomization.yaml", "resources:\n- deploy.yaml\n"),
        (
            "charts/api/values.yaml",
            "image:\n  name: x\n  tag: 1.0.0\n",
        ),
    ]);
    let dir = TempDir::new("argo");
    let apps = format!(
        r#"apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: api
  namespace: argocd
  annotations:
    argocd-image-updater.argoproj.io/image-list: api={host}/team/api:~1.0
    argocd-image-updater.argoproj.io/write-back-method: git
spec:
  source:
    repoURL: {repo}
    path: apps/api
    targetRevision: main
---
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: api-chart
  annotations:
    argocd-image-updater.argoproj.io/image-list: api={host}/team/api
    argocd-image-updater.argoproj.io/api.helm.image-name: image.name
    argocd-image-updater.argoproj.io/api.helm.image-tag: image.tag
    argocd-image-updater.argoproj.io/write-back-method: git
    argocd-image-updater.argoproj.io/write-back-target: helmvalues
spec:
  source:
    repoURL: {repo}
    path: charts/api
    helm: {{}}
"#,
        host = reg.host(),
        repo = repo.file_url()
    );
    let file = dir.path().join("apps.yaml");
    std::fs::write(&file, apps).unwrap();
    let state = dir.path().join("state");
    let (code, out, err) = dw(&[
        "run",
        "--once",
        "--applications",
        &file.display().to_string(),
        "--state-dir",
        &state.display().to_string(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        repo.show("main", "apps/api/.argocd-source-api.yaml"),
        format!("kustomize:\n  images:\n  - {}/team/api:1.0.1\n", reg.host())
    );
    assert_eq!(
        repo.show("main", "charts/api/values.yaml"),
        format!("image:\n  name: {}/team/api\n  tag: 1.1.0\n", reg.host())
    );
    assert_eq!(
        repo.subjects("main").len(),
        2,
        "one commit for the repository: {out}"
    );
    // With Argo CD in another namespace, `argocd` is just another one: the file is named by
    // namespace and name, as Argo CD's repo server would look for it.
    let (code, out, err) = dw(&[
        "check",
        "--applications",
        &file.display().to_string(),
        "--argocd-namespace",
        "gitops",
        "--state-dir",
        &state.display().to_string(),
        "-o",
        "json",
    ]);
    // That file does not exist yet: the update is drift there.
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        out.contains("apps/api/.argocd-source-argocd_api.yaml"),
        "{out}"
    );
}

#[test]
fn pull_secret_reaches_an_authenticated_registry() {
    let reg = Registry::start(Auth::Basic("puller".into(), "pw".into()));
    reg.push_image("team/api", "1.0.0", "2026-11-01T00:00:00Z");
    reg.push_image("team/api", "1.2.0", "2026-11-01T00:00:00Z");
    let repo = BareRepo::new(&[("apps/api/.keep", "")]);
    let dir = TempDir::new("pull-secret");
    let apps = format!(
        "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: api\n  annotations:\n    argocd-image-updater.argoproj.io/image-list: api={}/team/api\n    argocd-image-updater.argoproj.io/api.pull-secret: env:REG_CREDS\n    argocd-image-updater.argoproj.io/write-back-method: git\nspec:\n  source:\n    repoURL: {}\n    path: apps/api\n",
        reg.host(),
        repo.file_url()
    );
    let file = dir.path().join("app.yaml");
    std::fs::write(&file, apps).unwrap();
    let state = dir.path().join("state");
    let run = |creds: &str| {
        Command::new(env!("CARGO_BIN_EXE_driftwatch"))
            .args(["run", "--once", "--applications"])
            .arg(&file)
            .arg("--state-dir")
            .arg(&state)
            .env("HOME", "/nonexistent")
            .env("REG_CREDS", creds)
            .output()
            .unwrap()
    };
    let refused = run("puller:wrong");
    assert_eq!(refused.status.code(), Some(1));
    assert!(!String::from_utf8_lossy(&refused.stdout).contains("wrong"));
    let ok = run("puller:pw");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    assert_eq!(
        repo.show("main", "apps/api/.argocd-source-api.yaml"),
        format!("kustomize:\n  images:\n  - {}/team/api:1.2.0\n", reg.host())
    );
}

/// An Argo CD Application tracking `team/api` with `~1.0`, written back to Git.
fn argo_app(reg: &Registry, repo: &BareRepo, name: &str, path: &str) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {
            "name": name,
            "annotations": {
                "argocd-image-updater.argoproj.io/image-list": format!("api={}/team/api:~1.0", reg.host()),
                "argocd-image-updater.argoproj.io/write-back-method": "git",
            }
        },
        "spec": {"source": {"repoURL": repo.file_url(), "path": path, "targetRevision": "main"}}
    })
}

fn files_of(repo: &BareRepo) -> String {
    git(&repo.path, &["ls-tree", "-r", "--name-only", "main"])
}

/// Applications read from the cluster, as argocd-image-updater reads them: only the namespace
/// asked for, with the same annotations as the files.
#[test]
fn argocd_applications_from_cluster() {
    let reg = api_registry();
    let repo = BareRepo::new(&[
        ("apps/api/kustomization.yaml", "resources:\n- deploy.yaml\n"),
        (
            "apps/other/kustomization.yaml",
            "resources:\n- deploy.yaml\n",
        ),
    ]);
    let api = driftwatch_testkit::kube::FakeApiServer::start();
    let app = |name: &str, path: &str| argo_app(&reg, &repo, name, path);
    api.insert("applications", "argocd", app("api", "apps/api"));
    api.insert("applications", "elsewhere", app("other", "apps/other"));
    let dir = TempDir::new("argo-cluster");
    let kubeconfig = dir.path().join("kubeconfig");
    api.write_kubeconfig(&kubeconfig);
    let state = dir.path().join("state");
    let kubeconfig_arg = kubeconfig.display().to_string();
    let state_arg = state.display().to_string();
    let from_cluster = |ns: &str, extra: &[&str]| {
        let mut args = vec![
            "run",
            "--once",
            "--applications-from-cluster",
            ns,
            "--applications-kubeconfig",
            &kubeconfig_arg,
            "--state-dir",
            &state_arg,
        ];
        args.extend_from_slice(extra);
        dw(&args)
    };
    // A file:// repository named by an Application in the cluster is refused by default:
    // whoever may create one would reach any repository on this host.
    let (code, out, err) = from_cluster("argocd", &[]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("Application api: spec.source.repoURL")
            && err.contains("--allow-local-repositories"),
        "{err}"
    );
    assert!(!files_of(&repo).contains(".argocd-source"));
    let (code, out, err) = from_cluster("argocd", &["--allow-local-repositories"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        repo.show("main", "apps/api/.argocd-source-api.yaml"),
        format!("kustomize:\n  images:\n  - {}/team/api:1.0.1\n", reg.host())
    );
    let files = files_of(&repo);
    assert!(
        !files.contains("apps/other/.argocd-source"),
        "an Application outside the namespace was updated: {files}"
    );

    // Pull-secrets that would run a program or read driftwatch's environment are refused in
    // Applications from the cluster, even with local repositories allowed, naming the
    // Application and the annotation.
    for (ns, spec) in [("tenant-ext", "ext:/bin/sh"), ("tenant-env", "env:HOME")] {
        let mut tenant = app("tenant", "apps/api");
        tenant["metadata"]["annotations"]["argocd-image-updater.argoproj.io/api.pull-secret"] =
            spec.into();
        api.insert("applications", ns, tenant);
        let (code, out, err) = from_cluster(ns, &["--allow-local-repositories"]);
        assert_eq!(code, 1, "{out}{err}");
        let scheme = spec.split(':').next().unwrap();
        assert!(
            err.contains(
                "Application tenant: metadata.annotations[argocd-image-updater.argoproj.io/api.pull-secret]"
            ) && err.contains(&format!("{scheme}: credentials")),
            "{err}"
        );
    }

    // No kubeconfig at all: a clear error, not a panic.
    let out = Command::new(env!("CARGO_BIN_EXE_driftwatch"))
        .args(["run", "--once", "--applications-from-cluster", "argocd"])
        .env_remove("KUBECONFIG")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("kubeconfig"));
}

/// A new Application in the cluster is followed without a restart, as argocd-image-updater
/// follows them.
#[test]
fn new_applications_in_the_cluster_are_picked_up() {
    let reg = api_registry();
    let repo = BareRepo::new(&[
        ("apps/api/kustomization.yaml", "resources:\n- deploy.yaml\n"),
        ("apps/new/kustomization.yaml", "resources:\n- deploy.yaml\n"),
    ]);
    let api = driftwatch_testkit::kube::FakeApiServer::start();
    let app = |name: &str, path: &str| argo_app(&reg, &repo, name, path);
    api.insert("applications", "argocd", app("api", "apps/api"));
    let dir = TempDir::new("argo-follow");
    let kubeconfig = dir.path().join("kubeconfig");
    api.write_kubeconfig(&kubeconfig);
    let child = Command::new(env!("CARGO_BIN_EXE_driftwatch"))
        .args([
            "run",
            "--interval",
            "1",
            "--applications-from-cluster",
            "argocd",
            "--allow-local-repositories",
        ])
        .arg("--applications-kubeconfig")
        .arg(&kubeconfig)
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .env("HOME", "/nonexistent")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let has =
        |path: &str| git(&repo.path, &["ls-tree", "-r", "--name-only", "main"]).contains(path);
    let wait = |path: &str| {
        let started = std::time::Instant::now();
        while !has(path) {
            assert!(
                started.elapsed() < std::time::Duration::from_secs(20),
                "{path} never written"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    };
    wait("apps/api/.argocd-source-api.yaml");
    assert!(!has("apps/new/.argocd-source"));
    api.insert("applications", "argocd", app("new", "apps/new"));
    wait("apps/new/.argocd-source-new.yaml");
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("applications changed"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
