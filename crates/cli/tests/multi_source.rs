//! Multi-source Argo CD Applications (`spec.sources`), end to end: a real registry, a real Git
//! repository, and the API server (the in-process fake by default, a real one when
//! `DRIFTWATCH_E2E_KUBECONFIG` names it). The image update is written to the source that holds
//! the images; the sources of the same checkout are rendered and synced together.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};

use driftwatch_testkit::TempDir;
use driftwatch_testkit::git::BareRepo;
use driftwatch_testkit::kube::Cluster;
use driftwatch_testkit::registry::{Auth, Registry};

fn dw(args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_driftwatch"))
        .args(args)
        .env("HOME", "/nonexistent")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
spec:
  replicas: 1
  selector:
    matchLabels: {app: api}
  template:
    metadata:
      labels: {app: api}
    spec:
      containers:
      - name: api
        image: api
";

/// An Application of three sources: plain manifests (`config`), the kustomization holding
/// the image (`overlays/api`, a `kustomize` block) and a `ref` source.
fn application(ns: &str, target: &str, repo: &str, config_repo: &str, host: &str) -> Value {
    json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {
            "name": "shop",
            "namespace": ns,
            "annotations": {
                "argocd-image-updater.argoproj.io/image-list": format!("api={host}/team/api:~1.0"),
                "argocd-image-updater.argoproj.io/api.kustomize.image-name": "api",
                "argocd-image-updater.argoproj.io/write-back-method": "git",
                "argocd-image-updater.argoproj.io/write-back-target": "kustomization",
            }
        },
        "spec": {
            "project": "default",
            "sources": [
                {"repoURL": config_repo, "path": "config", "targetRevision": "main"},
                {"repoURL": repo, "path": "overlays/api", "targetRevision": "main", "kustomize": {}},
                {"repoURL": repo, "ref": "values", "targetRevision": "main"}
            ],
            "destination": {"server": "https://kubernetes.default.svc", "namespace": target},
            "syncPolicy": {"automated": {"prune": true}}
        }
    })
}

#[test]
fn multi_source_application_updates_its_image_source_and_syncs_every_source() {
    let reg = Registry::start(Auth::None);
    for tag in ["1.0.0", "1.0.1"] {
        reg.push_image("team/api", tag, "2026-11-01T00:00:00Z");
    }
    let kustomization = format!(
        "resources:\n- deployment.yaml\nimages:\n- name: api\n  newName: {}/team/api\n  newTag: 1.0.0\n",
        reg.host()
    );
    let repo = BareRepo::new(&[
        ("overlays/api/kustomization.yaml", &kustomization),
        ("overlays/api/deployment.yaml", DEPLOYMENT),
        (
            "config/settings.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  mode: fast\n",
        ),
    ]);
    let dir = TempDir::new("multi-source");
    let cluster = Cluster::new(dir.path());
    let target = cluster.unique_namespace("dw-multi");
    cluster.create_namespace(&target);
    let file = dir.path().join("apps.yaml");
    let write = |app: &Value| std::fs::write(&file, serde_json::to_string(app).unwrap()).unwrap();
    write(&application(
        "argocd",
        &target,
        &repo.file_url(),
        &repo.file_url(),
        &reg.host(),
    ));
    let state = dir.path().join("state");
    let run = || {
        dw(&[
            "run",
            "--once",
            "--applications",
            file.to_str().unwrap(),
            "--kubeconfig",
            cluster.kubeconfig.to_str().unwrap(),
            "--state-dir",
            state.to_str().unwrap(),
        ])
    };
    let (code, out, err) = run();
    assert_eq!(code, 0, "{out}{err}");
    // The update went to the source holding the image, not the first one.
    assert!(
        repo.show("main", "overlays/api/kustomization.yaml")
            .contains("newTag: 1.0.1"),
        "{out}{err}"
    );
    // Both sources' objects are in the cluster, the image at the new tag.
    let deployed = cluster.get("deployments", &target, "api").unwrap();
    assert_eq!(
        deployed["spec"]["template"]["spec"]["containers"][0]["image"],
        json!(format!("{}/team/api:1.0.1", reg.host())),
        "{out}{err}"
    );
    assert_eq!(
        cluster.get("configmaps", &target, "settings").unwrap()["data"]["mode"],
        "fast"
    );

    // A source in another repository is not rendered: the deploy is refused, naming it,
    // rather than syncing without it (and pruning its objects).
    let other = BareRepo::new(&[("config/settings.yaml", "{}\n")]);
    write(&application(
        "argocd",
        &target,
        &repo.file_url(),
        &other.file_url(),
        &reg.host(),
    ));
    let (code, out, err) = run();
    assert_ne!(code, 0, "{out}{err}");
    let all = format!("{out}{err}");
    assert!(
        all.contains("spec.sources[0]") && all.contains("cannot be rendered by driftwatch"),
        "{all}"
    );
    assert!(
        cluster.get("configmaps", &target, "settings").is_some(),
        "nothing was pruned"
    );
}

/// A chart of an Argo CD Application is rendered with its Helm parameters and the
/// `.argocd-source` overrides merged in. The arguments themselves are unit-tested
/// (`driftwatch-deploy` `helm::tests`); this checks the render path takes them: a values file
/// of a source the Application lacks is refused naming the field, and otherwise the chart
/// is rendered by `helm template` — with the overridden tag where a `helm` binary exists,
/// or with an error saying it is missing.
#[test]
fn helm_applications_render_with_their_parameters_and_overrides() {
    let chart = "apiVersion: v2\nname: api\nversion: 0.1.0\n";
    let template = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: api\ndata:\n  tag: {{ .Values.image.tag | quote }}\n";
    let repo = BareRepo::new(&[
        ("charts/api/Chart.yaml", chart),
        ("charts/api/values.yaml", "image:\n  tag: 1.0.0\n"),
        ("charts/api/templates/cm.yaml", template),
        // The ref source's values file; the override's parameter wins over it.
        ("env/prod.yaml", "image:\n  tag: 1.0.2\n"),
        (
            "charts/api/.argocd-source-api.yaml",
            "helm:\n  parameters:\n  - name: image.tag\n    value: 1.0.1\n    forcestring: true\n",
        ),
    ]);
    let dir = TempDir::new("helm-render");
    let file = dir.path().join("apps.yaml");
    let app = |helm: Value| {
        json!({
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Application",
            "metadata": {"name": "api", "namespace": "argocd", "annotations": {
                "argocd-image-updater.argoproj.io/image-list": "api=registry.example.com/api"
            }},
            "spec": {
                "source": {"repoURL": repo.file_url(), "path": "charts/api", "targetRevision": "main", "helm": helm},
                "destination": {"server": "https://kubernetes.default.svc", "namespace": "prod"}
            }
        })
    };
    let render = || {
        dw(&[
            "render",
            "api",
            "--applications",
            file.to_str().unwrap(),
            "--state-dir",
            dir.path().join("state").to_str().unwrap(),
        ])
    };
    std::fs::write(
        &file,
        serde_json::to_string(&app(json!({"valueFiles": ["$values/api.yaml"]}))).unwrap(),
    )
    .unwrap();
    let (code, out, err) = render();
    assert_ne!(code, 0, "{out}{err}");
    assert!(
        err.contains("helm.valueFiles[0]") && err.contains("no ref source"),
        "{err}"
    );
    std::fs::write(
        &file,
        serde_json::to_string(&app(json!({"valueFiles": ["values.yaml"]}))).unwrap(),
    )
    .unwrap();
    let helm_here =
        driftwatch_cluster::installed(&driftwatch_cluster::Tool::Helm(String::new())).is_some();
    let rendered = |(code, out, err): (i32, String, String), tag: &str| {
        if helm_here {
            assert_eq!(code, 0, "{out}{err}");
            assert!(out.contains(&format!(r#""tag":"{tag}""#)), "{out}");
        } else {
            assert_ne!(code, 0, "{out}{err}");
            assert!(err.contains("the helm binary is not installed"), "{err}");
        }
    };
    rendered(render(), "1.0.1");

    // Multi-source: the chart's values file from the `ref` source of the same repository.
    let mut multi = app(json!({"valueFiles": ["$values/env/prod.yaml"]}));
    let source = multi["spec"]["source"].take();
    multi["spec"]["sources"] = json!([
        source,
        {"repoURL": repo.file_url(), "targetRevision": "main", "ref": "values"}
    ]);
    multi["spec"].as_object_mut().unwrap().remove("source");
    std::fs::write(&file, serde_json::to_string(&multi).unwrap()).unwrap();
    rendered(render(), "1.0.1");
    // A ref source of another repository is not fetched: refused, naming the field.
    multi["spec"]["sources"][1]["repoURL"] = json!("https://git.example.com/values.git");
    std::fs::write(&file, serde_json::to_string(&multi).unwrap()).unwrap();
    let (code, out, err) = render();
    assert_ne!(code, 0, "{out}{err}");
    assert!(
        err.contains("helm.valueFiles[0]") && err.contains("$values"),
        "{err}"
    );
}
