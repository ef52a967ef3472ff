//! `driftwatch check --kubeconfig`: the three-way report — registry, Git and what the cluster
//! runs — including pods that still run an older digest of Git's tag.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use driftwatch_testkit::TempDir;
use driftwatch_testkit::git::BareRepo;
use driftwatch_testkit::kube::Cluster;
use driftwatch_testkit::registry::{Auth, Registry};

#[test]
fn check_reports_what_the_cluster_runs() {
    let dir = TempDir::new("check-live");
    let cluster = Cluster::new(dir.path());
    let ns = format!("dw-check-{}", std::process::id());
    cluster.cleanup_namespace(&ns);
    let reg = Registry::start(Auth::None);
    let first = reg.push_image("shop/backend", "v1.0.0", "2026-11-01T00:00:00Z");
    let repo = BareRepo::new(&[
        (
            "apps/shop/namespace.yaml",
            &format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n"),
        ),
        (
            "apps/shop/deployment.yaml",
            &format!(
                "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: backend\n  namespace: {ns}\nspec:\n  selector:\n    matchLabels:\n      app: backend\n  template:\n    metadata:\n      labels:\n        app: backend\n    spec:\n      containers:\n      - name: backend\n        image: {}/shop/backend:v1.0.0\n",
                reg.host()
            ),
        ),
    ]);
    let conf = dir.path().join("driftwatch.yaml");
    std::fs::write(
        &conf,
        format!(
            "applications:\n- name: shop\n  repo: {}\n  path: apps/shop\n  writeBack: manifests:deployment.yaml\n  images:\n  - image: {}/shop/backend\n    strategy: semver\n    constraint: ~1.0\n  sync:\n    namespace: {ns}\n- name: elsewhere\n  repo: {}\n  path: apps/shop\n  writeBack: manifests:deployment.yaml\n  images:\n  - image: {}/shop/backend\n",
            repo.file_url(),
            reg.host(),
            repo.file_url(),
            reg.host()
        ),
    )
    .unwrap();
    let state = dir.path().join("state");
    let dw = |args: &[&str]| common::on_cluster(&conf, &state, &cluster.kubeconfig, args);

    // Git and the registry agree, but nothing runs yet.
    let (code, out, err) = dw(&["check"]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(out.contains("LIVE"), "{out}");
    assert!(
        out.contains("(not running)") && out.contains("not running in the cluster"),
        "{out}"
    );

    let (code, out, err) = dw(&["sync", "shop"]);
    assert_eq!(code, 0, "{out}{err}");
    // The pods report what they run, as a kubelet would: the digest pushed as v1.0.0.
    cluster.run_pods(
        &ns,
        "app=backend",
        "backend",
        &format!("{}/shop/backend:v1.0.0", reg.host()),
        &first,
    );
    let (code, out, err) = dw(&["check"]);
    assert_eq!(code, 0, "registry, Git and cluster agree: {out}{err}");
    let row: Vec<&str> = out.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(
        row[2..],
        ["v1.0.0", "v1.0.0", "v1.0.0", "in", "sync"],
        "{out}"
    );

    // The tag is pushed again with new content: the pod still runs the old digest.
    let second = reg.push_image("shop/backend", "v1.0.0", "2026-11-03T00:00:00Z");
    assert_ne!(first, second);
    let (code, out, _) = dw(&["check"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("1 of 1 pods on an older digest"), "{out}");
    let (code, out, _) = dw(&["check", "-o", "json"]);
    assert_eq!(code, 2);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["images"][0]["live"]["stale_pods"], 1, "{v}");
    assert_eq!(v["images"][0]["live"]["values"][0], "v1.0.0", "{v}");

    // Someone changes the running version by hand: Git and the cluster disagree.
    cluster.set_image(
        &ns,
        "backend",
        "backend",
        &format!("{}/shop/backend:v0.9.0", reg.host()),
    );
    let (code, out, _) = dw(&["check"]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("v0.9.0") && out.contains("another version than Git"),
        "{out}"
    );
    let (code, _, _) = dw(&["sync", "shop"]);
    assert_eq!(code, 0);
    let (code, out, _) = dw(&["check", "-o", "json"]);
    assert_eq!(code, 2, "the old digest still runs: {out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["images"][0]["live"]["values"][0], "v1.0.0", "{v}");
}
