//! Several clusters from one driftwatch: each application syncs to the cluster its
//! `sync.cluster` names — a context of the kubeconfig (here two files joined like
//! `KUBECONFIG=a:b`) — and `run`, `status` and `diff` agree on where each lives. One whose
//! cluster cannot be found fails alone, naming the application and the cluster. Against the
//! real API servers of `DRIFTWATCH_E2E_KUBECONFIG` and `DRIFTWATCH_E2E_KUBECONFIG_B` (scripts/test
//! starts both), else two in-process fakes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use driftwatch_testkit::TempDir;
use driftwatch_testkit::git::BareRepo;
use driftwatch_testkit::kube::Cluster;

#[test]
fn each_application_syncs_to_the_cluster_its_context_names() {
    let dir = TempDir::new("clusters");
    let a = Cluster::new(dir.path());
    let b = Cluster::second(dir.path(), "b");
    let ns = a.unique_namespace("multi");
    a.create_namespace(&ns);
    b.create_namespace(&ns);
    let cm = |name: &str| {
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  v: \"1\"\n")
    };
    let repo = BareRepo::new(&[
        ("apps/home/cm.yaml", &cm("home")),
        ("apps/away/cm.yaml", &cm("away")),
        ("apps/lost/cm.yaml", &cm("lost")),
    ]);
    let app = |name: &str, cluster: &str| {
        format!(
            "- name: {name}\n  repo: {}\n  path: apps/{name}\n  sync:\n    namespace: {ns}\n{cluster}    automated: {{}}\n",
            repo.file_url()
        )
    };
    let conf = dir.path().join("driftwatch.yaml");
    std::fs::write(
        &conf,
        format!(
            "applications:\n{}{}{}",
            app("home", ""),
            app("away", "    cluster: b\n"),
            app("lost", "    cluster: nowhere\n")
        ),
    )
    .unwrap();
    let joined = std::env::join_paths([&a.kubeconfig, &b.kubeconfig]).unwrap();
    let kubeconfig = std::path::PathBuf::from(joined);
    let state = dir.path().join("state");
    let dw = |args: &[&str]| common::on_cluster(&conf, &state, &kubeconfig, args);

    let (code, out, err) = dw(&["run", "--once"]);
    assert_ne!(code, 0, "lost's cluster does not exist: {out}{err}");
    let logs = format!("{out}{err}");
    assert!(
        logs.contains("application lost: cluster")
            && logs.contains("nowhere")
            && logs.contains("no such context (it has: "),
        "{logs}"
    );
    // Each where its context says, and only there.
    assert!(a.get("configmaps", &ns, "home").is_some());
    assert!(a.get("configmaps", &ns, "away").is_none());
    assert!(b.get("configmaps", &ns, "away").is_some());
    assert!(b.get("configmaps", &ns, "home").is_none());
    assert!(a.get("configmaps", &ns, "lost").is_none());

    let (code, out, err) = dw(&["status", "-o", "json"]);
    assert_eq!(code, 1, "one application could not be compared: {out}{err}");
    let rows: serde_json::Value = serde_json::from_str(&out).unwrap();
    let row = |name: &str| {
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r["app"] == name)
            .cloned()
            .unwrap()
    };
    assert_eq!(row("home")["sync"], "Synced", "{rows}");
    assert_eq!(row("away")["sync"], "Synced", "{rows}");
    assert_eq!(row("lost")["sync"], "Unknown", "{rows}");
    assert!(
        row("lost")["detail"].as_str().unwrap().contains("nowhere"),
        "{rows}"
    );
    assert_eq!(dw(&["diff", "away"]).0, 0, "away is in sync on b");

    // A change on b is drift of away, seen on b.
    b.patch("configmaps", &ns, "away", "/data/v", serde_json::json!("2"));
    let (code, out, _) = dw(&["diff", "away"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("data.v"), "{out}");
    assert_eq!(dw(&["diff", "home"]).0, 0, "home, on a, is untouched");
}
