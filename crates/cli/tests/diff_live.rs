//! `driftwatch diff --live` against a real repository rendered by kustomize: the workflow's
//! manual change (`kubectl set image deployment/backend backend=wrong-image:v99`) is reported,
//! defaults and injected sidecars are not.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use driftwatch_testkit::TempDir;
use driftwatch_testkit::git::BareRepo;

const DEPLOY: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: backend\n  namespace: shop\nspec:\n  replicas: 2\n  template:\n    spec:\n      containers:\n      - name: backend\n        image: backend\n        resources:\n          limits:\n            cpu: 500m\n";

fn live(image: &str) -> String {
    format!(
        "apiVersion: v1\nkind: List\nitems:\n- apiVersion: apps/v1\n  kind: Deployment\n  metadata:\n    name: backend\n    namespace: shop\n    uid: abc\n    managedFields:\n    - manager: kubectl-set\n      operation: Update\n      fieldsV1:\n        f:spec:\n          f:template:\n            f:spec:\n              f:containers:\n                k:{{\"name\":\"backend\"}}:\n                  f:image: {{}}\n  spec:\n    replicas: 2\n    progressDeadlineSeconds: 600\n    template:\n      spec:\n        containers:\n        - name: istio-proxy\n          image: istio/proxyv2\n        - name: backend\n          image: {image}\n          imagePullPolicy: IfNotPresent\n          resources:\n            limits:\n              cpu: \"0.5\"\n  status:\n    replicas: 2\n"
    )
}

#[test]
fn manual_change_is_reported_and_defaults_are_not() {
    let repo = BareRepo::new(&[
        ("base/deployment.yaml", DEPLOY),
        ("base/kustomization.yaml", "resources:\n- deployment.yaml\n"),
        (
            "overlays/prod/kustomization.yaml",
            "resources:\n- ../../base\nimages:\n- name: backend\n  newName: registry.local/backend\n  newTag: v1.0.1\n",
        ),
    ]);
    let dir = TempDir::new("diff");
    let conf = dir.path().join("driftwatch.yaml");
    std::fs::write(
        &conf,
        format!("applications:\n- name: shop\n  repo: {}\n  path: overlays/prod\n  writeBack: kustomization\n  images:\n  - image: registry.local/backend\n    kustomizeName: backend\n", repo.file_url()),
    )
    .unwrap();
    let run = |live_text: &str, extra: &[&str]| {
        let live = dir.path().join("live.yaml");
        std::fs::write(&live, live_text).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_driftwatch"))
            .args(["diff", "shop", "--config"])
            .arg(&conf)
            .arg("--state-dir")
            .arg(dir.path().join("state"))
            .arg("--live")
            .arg(&live)
            .args(extra)
            .output()
            .unwrap();
        (
            out.status.code().unwrap(),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    };
    let (code, out, err) = run(&live("registry.local/backend:v1.0.1"), &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("in sync"), "{out}");

    let (code, out, _) = run(&live("wrong-image:v99"), &[]);
    assert_eq!(code, 2);
    assert_eq!(
        out,
        "Deployment/shop/backend: spec.template.spec.containers[name=backend].image: git \"registry.local/backend:v1.0.1\" live \"wrong-image:v99\" (written by kubectl-set)\n  \
         hint: a sync takes it back from kubectl-set; if kubectl-set should own it, drop \
         spec.template.spec.containers[name=backend].image from Git, or ignore it \
         (ignoreDifferences: jsonPointers [/spec/template/spec/containers/0/image] or \
         managedFieldsManagers [kubectl-set])\n"
    );
    let (code, _, _) = run(
        &live("wrong-image:v99"),
        &[
            "--ignore",
            "Deployment/backend:/spec/template/spec/containers/0/image",
        ],
    );
    assert_eq!(code, 0);

    let (code, out, _) = run("apiVersion: v1\nkind: List\nitems: []\n", &["-o", "json"]);
    assert_eq!(code, 2);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json[0]["missing"], true);

    let (code, _, err) = run("kind: [broken\n", &[]);
    assert_eq!(code, 1);
    assert!(err.contains("live.yaml"), "{err}");
}
