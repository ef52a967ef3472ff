//! Choosing the cluster: `--context` picks a context other than the kubeconfig's current one,
//! and `KUBECONFIG=a:b` merges files as kubectl does. Against the in-process fake, or the real
//! API server of `DRIFTWATCH_E2E_KUBECONFIG`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

use driftwatch_testkit::TempDir;
use driftwatch_testkit::git::BareRepo;
use driftwatch_testkit::kube::Cluster;
use serde_json::{Value, json};

/// `driftwatch ARGS` with `KUBECONFIG` set to `kubeconfig_env` (unset when `None`): exit code,
/// stdout, stderr.
fn dw(args: &[&str], kubeconfig_env: Option<&std::ffi::OsStr>) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_driftwatch"));
    cmd.args(args).env_remove("KUBECONFIG");
    if let Some(k) = kubeconfig_env {
        cmd.env("KUBECONFIG", k);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// The kubeconfig as JSON, as kubectl reads it.
fn kubeconfig_json(path: &Path) -> Value {
    let out = Command::new("kubectl")
        .args(["config", "view", "--raw", "-o", "json", "--kubeconfig"])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn context_flag_and_merged_kubeconfig_files() {
    let dir = TempDir::new("kube-context-cli");
    let cluster = Cluster::new(dir.path());
    let ns = cluster.unique_namespace("ctx");
    cluster.create_namespace(&ns);
    let repo = BareRepo::new(&[(
        "apps/shop/configmap.yaml",
        &format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: {ns}\ndata:\n  mode: fast\n"
        ),
    )]);
    let conf = dir.path().join("driftwatch.yaml");
    std::fs::write(
        &conf,
        format!(
            "applications:\n- name: shop\n  repo: {}\n  path: apps/shop\n  sync:\n    namespace: {ns}\n",
            repo.file_url()
        ),
    )
    .unwrap();
    let conf = conf.to_str().unwrap();
    let state = dir.path().join("state");
    let state = state.to_str().unwrap();

    // A kubeconfig whose current context points where nothing listens; the test cluster's
    // context is still in it.
    let k = kubeconfig_json(&cluster.kubeconfig);
    let good = k["current-context"].as_str().unwrap().to_owned();
    let mut two = k.clone();
    two["clusters"].as_array_mut().unwrap().push(json!({"name": "nowhere", "cluster": {"server": format!("http://127.0.0.1:{}", driftwatch_testkit::free_port())}}));
    two["contexts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "broken", "context": {"cluster": "nowhere"}}));
    two["current-context"] = json!("broken");
    let two_path = dir.path().join("two-contexts");
    std::fs::write(&two_path, two.to_string()).unwrap();
    let two_arg = two_path.to_str().unwrap();

    let base = ["--config", conf, "--state-dir", state];
    let (code, out, err) = dw(
        &[
            &["sync", "shop", "--kubeconfig", two_arg, "--context", &good],
            &base[..],
        ]
        .concat(),
        None,
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("1 applied"), "{out}");

    let (code, out, err) = dw(
        &[&["status", "--kubeconfig", two_arg], &base[..]].concat(),
        None,
    );
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains(two_arg) && err.contains("\"broken\""),
        "names the kubeconfig and the context: {err}"
    );

    // KUBECONFIG=a:b — the context in one file, the cluster and the user in the other.
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    std::fs::write(
        &a,
        json!({"apiVersion": "v1", "kind": "Config", "current-context": good, "contexts": k["contexts"]}).to_string(),
    )
    .unwrap();
    std::fs::write(
        &b,
        json!({"apiVersion": "v1", "kind": "Config", "clusters": k["clusters"], "users": k["users"]}).to_string(),
    )
    .unwrap();
    let joined = std::env::join_paths([&a, &b]).unwrap();
    let (code, out, err) = dw(&[&["status"], &base[..]].concat(), Some(&joined));
    assert_eq!(code, 0, "in sync: {out}{err}");
    assert!(out.contains("Synced"), "{out}");
}
