//! Argo CD, live: Applications read from the cluster (the in-process fake by default, a real API
//! server with Argo CD's Application CRD installed when `DRIFTWATCH_E2E_KUBECONFIG` names one),
//! their registry and Git credentials read from Secrets, and `write-back-method: argocd`
//! patching the live Application.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};

use driftwatch_testkit::TempDir;
use driftwatch_testkit::kube::Cluster;

/// An Application with every documented field this CRD describes.
fn full_application(ns: &str) -> Value {
    json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": "shop", "namespace": ns},
        "spec": {
            "project": "default",
            "source": {
                "repoURL": "https://git.example.com/shop.git",
                "path": "apps/shop",
                "targetRevision": "main",
                "kustomize": {"images": ["backend=registry.local/backend:1.0.0"]},
                "helm": {
                    "parameters": [{"name": "image.tag", "value": "1.0.0", "forceString": true}],
                    "valueFiles": ["values-prod.yaml"]
                }
            },
            "sources": [{"repoURL": "https://git.example.com/values.git", "ref": "values"}],
            "destination": {"server": "https://kubernetes.default.svc", "namespace": "shop"},
            "syncPolicy": {"automated": {"prune": true, "selfHeal": true}, "syncOptions": ["CreateNamespace=true"]},
            "ignoreDifferences": [{"group": "apps", "kind": "Deployment", "jsonPointers": ["/spec/replicas"]}]
        },
        "status": {"summary": {"images": ["registry.local/backend:1.0.0"]}, "anything": {"goes": [1, 2]}}
    })
}

#[test]
fn the_application_crd_is_structural_and_installs_idempotently() {
    let dir = TempDir::new("argo-crd");
    let cluster = Cluster::new(dir.path());
    if !cluster.is_real() {
        eprintln!(
            "skipped: the Application CRD's schema needs the real API server (DRIFTWATCH_E2E_KUBECONFIG); the fake serves Applications without one"
        );
        return;
    }
    // Tests in several processes install it at once: each install must succeed.
    std::thread::scope(|s| {
        for _ in 0..3 {
            s.spawn(|| cluster.install_application_crd());
        }
    });
    cluster.install_application_crd();
    let ns = cluster.unique_namespace("dw-argo-crd");
    cluster.create_namespace(&ns);
    cluster.create(full_application(&ns));
    let live = cluster.get("applications", &ns, "shop").unwrap();
    let spec = &live["spec"];
    assert_eq!(
        spec["source"]["kustomize"]["images"],
        json!(["backend=registry.local/backend:1.0.0"])
    );
    assert_eq!(
        spec["source"]["helm"]["parameters"][0],
        json!({"name": "image.tag", "value": "1.0.0", "forceString": true})
    );
    assert_eq!(
        spec["source"]["helm"]["valueFiles"],
        json!(["values-prod.yaml"])
    );
    assert_eq!(spec["sources"][0]["ref"], "values");
    assert_eq!(spec["destination"]["namespace"], "shop");
    assert_eq!(spec["syncPolicy"]["automated"]["selfHeal"], true);
    assert_eq!(spec["ignoreDifferences"][0]["kind"], "Deployment");
    // Free-form where Argo CD's status is.
    assert_eq!(live["status"]["anything"]["goes"], json!([1, 2]));
    // Structural: a wrong type and a field the schema does not know are refused (kubectl asks
    // for strict validation), or pruned when validation is off.
    let create = |obj: &Value, validate: &str| {
        let out = std::process::Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&cluster.kubeconfig)
            .args(["create", &format!("--validate={validate}"), "-f", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                use std::io::Write;
                c.stdin
                    .take()
                    .unwrap()
                    .write_all(obj.to_string().as_bytes())?;
                c.wait_with_output()
            })
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let mut bad = full_application(&ns);
    bad["metadata"]["name"] = json!("bad");
    bad["spec"]["source"]["kustomize"]["images"] = json!("not-a-list");
    let (created, err) = create(&bad, "strict");
    assert!(
        !created && err.contains("spec.source.kustomize.images"),
        "{err}"
    );
    let mut unknown = full_application(&ns);
    unknown["metadata"]["name"] = json!("unknown");
    unknown["spec"]["notAField"] = json!("x");
    let (created, err) = create(&unknown, "strict");
    assert!(!created && err.contains("spec.notAField"), "{err}");
    let (created, err) = create(&unknown, "ignore");
    assert!(created, "{err}");
    let pruned = cluster.get("applications", &ns, "unknown").unwrap();
    assert!(pruned["spec"].get("notAField").is_none(), "{pruned}");
    assert_eq!(pruned["spec"]["project"], "default");
}
