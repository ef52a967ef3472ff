//! Helm chart versions followed like image tags: charts pushed to a real registry as OCI
//! artifacts (Helm's media types), a real Git repository, `check` and `run --once`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use driftwatch_testkit::TempDir;
use driftwatch_testkit::git::{BareRepo, git};
use driftwatch_testkit::registry::{Auth, Registry};

const KUSTOMIZATION: &str = "\
# The web front end, rendered from its chart.
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
helmCharts:
- name: api   # same registry, another chart: left alone
  repo: oci://{host}/charts
  version: 1.0.0
- name: web
  repo: oci://{host}/charts
  releaseName: web
  version: 1.4.0 # pinned by driftwatch
  valuesInline: {replicas: 2}
";

const APPLICATION: &str = "\
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: web
  namespace: argocd
spec:
  project: default
  source:
    repoURL: {host}/charts   # Argo CD's OCI form: no scheme, chart by name
    chart: web
    targetRevision: \"1.4.0\"
    helm:
      releaseName: web
  destination:
    server: https://kubernetes.default.svc
    namespace: web
";

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

fn chart_rows(report: &serde_json::Value) -> Vec<(String, String, String, String, String)> {
    report["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let s = |k: &str| l[k].as_str().unwrap_or("").to_owned();
            (s("app"), s("kind"), s("registry"), s("git"), s("status"))
        })
        .collect()
}

#[test]
fn chart_versions_from_an_oci_registry_are_written_back() {
    let reg = Registry::start(Auth::None);
    let host = reg.host();
    for v in ["1.4.0", "1.4.2", "1.5.0"] {
        reg.push_chart("charts/web", "web", v);
    }
    reg.push_chart("charts/api", "api", "1.0.0");
    reg.push_chart("charts/api", "api", "1.0.1");
    let kustomization = KUSTOMIZATION.replace("{host}", &host);
    let application = APPLICATION.replace("{host}", &host);
    let repo = BareRepo::new(&[
        ("apps/web/kustomization.yaml", &kustomization),
        ("apps/argo/web.yaml", &application),
    ]);
    let dir = TempDir::new("charts");
    let conf = dir.path().join("driftwatch.yaml");
    std::fs::write(
        &conf,
        format!(
            r#"applications:
- name: web
  repo: {repo}
  path: apps/web
  charts:
  - chart: oci://{host}/charts/web
    constraint: "~1.4"
- name: web-argo
  repo: {repo}
  path: apps/argo
  charts:
  - chart: oci://{host}/charts/web
    constraint: "~1.4"
    file: web.yaml
"#,
            repo = repo.file_url()
        ),
    )
    .unwrap();
    let conf = conf.display().to_string();
    let state = dir.path().join("state").display().to_string();
    let base = ["--config", conf.as_str(), "--state-dir", state.as_str()];
    let chart = format!("chart:oci://{host}/charts/web");

    // Git says 1.4.0; ~1.4 allows 1.4.2, not 1.5.0.
    let (code, out, err) = dw(&[&["check", "-o", "json"], &base[..]].concat());
    assert_eq!(code, 2, "{out}{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(
        report["images"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["image"] == chart.as_str()),
        "{out}"
    );
    let want = |v: &str, git: &str, status: &str| {
        ["web", "web-argo"]
            .map(|app| {
                (
                    app.to_owned(),
                    "chart".to_owned(),
                    v.to_owned(),
                    git.to_owned(),
                    status.to_owned(),
                )
            })
            .to_vec()
    };
    assert_eq!(
        chart_rows(&report),
        want("1.4.2", "1.4.0", "update-available"),
        "{out}"
    );
    assert_eq!(
        report["registry_requests"], 1,
        "two applications follow the chart: its tags are listed once"
    );
    let (code, table, _) = dw(&[&["check"], &base[..]].concat());
    assert_eq!(code, 2);
    assert!(table.contains(&chart), "the table names the chart: {table}");
    let commits = repo.subjects("main").len();

    let (code, out, err) = dw(&[&["run", "--once"], &base[..]].concat());
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        repo.subjects("main").len(),
        commits + 1,
        "one commit for the repository"
    );
    assert_eq!(
        repo.show("main", "apps/web/kustomization.yaml"),
        kustomization.replace("version: 1.4.0 # pinned", "version: 1.4.2 # pinned"),
        "only the web chart's version changed, byte for byte"
    );
    assert_eq!(
        repo.show("main", "apps/argo/web.yaml"),
        application.replace("\"1.4.0\"", "\"1.4.2\""),
        "only targetRevision changed, its quotes kept"
    );
    let message = git(&repo.path, &["log", "-1", "--format=%B", "main"]);
    assert!(
        message.contains(&format!("updates image {chart} tag '1.4.0' to '1.4.2'")),
        "the commit names the chart: {message}"
    );
    let (code, out, err) = dw(&[&["check"], &base[..]].concat());
    assert_eq!(code, 0, "nothing drifts now: {out}{err}");
    let (code, history, _) = dw(&["history", "--state-dir", state.as_str()]);
    assert_eq!(code, 0);
    assert!(
        history.contains(&format!("web  {chart}  1.4.0 -> 1.4.2")),
        "history records the chart: {history}"
    );

    // A new patch release is taken by the next cycle.
    reg.push_chart("charts/web", "web", "1.4.3");
    let (code, out, err) = dw(&[&["run", "--once"], &base[..]].concat());
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        repo.show("main", "apps/web/kustomization.yaml")
            .contains("version: 1.4.3 # pinned"),
    );
    assert!(
        repo.show("main", "apps/argo/web.yaml")
            .contains("targetRevision: \"1.4.3\"")
    );

    // Build metadata: Helm tags 1.4.4+build.1 as 1.4.4_build.1; Git gets the version.
    reg.push_chart("charts/web", "web", "1.4.4+build.1");
    let (code, out, err) = dw(&[&["check", "-o", "json"], &base[..]].concat());
    assert_eq!(code, 2, "{out}{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        chart_rows(&report),
        want("1.4.4+build.1", "1.4.3", "update-available")
    );
    let (code, out, err) = dw(&[&["run", "--once"], &base[..]].concat());
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        repo.show("main", "apps/web/kustomization.yaml"),
        kustomization.replace("version: 1.4.0 # pinned", "version: 1.4.4+build.1 # pinned")
    );
    assert_eq!(
        repo.show("main", "apps/argo/web.yaml"),
        application.replace("\"1.4.0\"", "\"1.4.4+build.1\"")
    );
}

#[test]
fn a_file_without_the_chart_is_reported_and_nothing_is_written() {
    let reg = Registry::start(Auth::None);
    let host = reg.host();
    reg.push_chart("charts/web", "web", "1.4.2");
    let repo = BareRepo::new(&[(
        "apps/web/kustomization.yaml",
        "helmCharts:\n- name: web\n  repo: oci://elsewhere.example.com/charts\n  version: 1.4.0\n",
    )]);
    let dir = TempDir::new("charts-missing");
    let conf = dir.path().join("driftwatch.yaml");
    std::fs::write(
        &conf,
        format!(
            "applications:\n- name: web\n  repo: {}\n  path: apps/web\n  charts:\n  - chart: oci://{host}/charts/web\n",
            repo.file_url()
        ),
    )
    .unwrap();
    let conf = conf.display().to_string();
    let state = dir.path().join("state").display().to_string();
    let commits = repo.subjects("main").len();
    let (code, out, err) = dw(&["run", "--once", "--config", &conf, "--state-dir", &state]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains(&format!("chart oci://{host}/charts/web not found")),
        "{out}{err}"
    );
    assert_eq!(repo.subjects("main").len(), commits, "nothing committed");
}

#[test]
fn bad_chart_entries_name_their_field() {
    let dir = TempDir::new("charts-config");
    for (entry, field, why) in [
        (
            "chart: https://charts.example.com/web",
            "applications[0].charts[0].chart",
            "only charts in OCI registries",
        ),
        (
            "chart: oci://registry.example.com/charts/web\n    constraint: \"~1.x.y\"",
            "applications[0].charts[0].constraint",
            "invalid semver constraint",
        ),
        (
            "chart: oci://registry.example.com/charts/web\n    strategy: digest\n    constraint: latest",
            "applications[0].charts[0].strategy",
            "semver only",
        ),
    ] {
        let conf = dir.path().join("driftwatch.yaml");
        std::fs::write(
            &conf,
            format!("applications:\n- name: web\n  repo: file:///r\n  charts:\n  - {entry}\n"),
        )
        .unwrap();
        let (code, out, err) = dw(&["check", "--config", &conf.display().to_string()]);
        assert_eq!(code, 1, "{entry}: {out}{err}");
        assert!(err.contains(field) && err.contains(why), "{entry}: {err}");
    }
}

/// An Argo CD Application of an OCI chart, opted in with `driftwatch.io/chart-version`, read
/// from a file (app of apps): its own manifest in Git gets the new `targetRevision`.
#[test]
fn an_application_file_opted_in_by_annotation() {
    let reg = Registry::start(Auth::None);
    let host = reg.host();
    for v in ["1.4.0", "1.4.2", "1.5.0"] {
        reg.push_chart("charts/web", "web", v);
    }
    let repo = BareRepo::new(&[("README.md", "apps\n")]);
    let manifest = format!(
        r#"apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: web
  namespace: argocd
  annotations:
    driftwatch.io/chart-version: "~1.4"
    driftwatch.io/chart-version-file: apps/web.yaml
    argocd-image-updater.argoproj.io/git-repository: {repo}
    argocd-image-updater.argoproj.io/write-back-method: git
spec:
  project: default
  source:
    repoURL: oci://{host}/charts/web
    targetRevision: 1.4.0 # the chart's version
  destination: {{server: "https://kubernetes.default.svc", namespace: web}}
"#,
        repo = repo.file_url()
    );
    // The same chart from one source of a multi-source Application, in a file of its own.
    let multi = format!(
        r#"apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: web-multi
  namespace: argocd
  annotations:
    driftwatch.io/chart-version: "~1.4"
    driftwatch.io/chart-version-file: apps/web-multi.yaml
    argocd-image-updater.argoproj.io/git-repository: {repo}
    argocd-image-updater.argoproj.io/write-back-method: git
spec:
  project: default
  sources:
  - repoURL: https://git.example.com/values.git
    targetRevision: 1.4.0
    ref: values
  - repoURL: {host}/charts
    chart: web
    targetRevision: '1.4.0'
    helm: {{valueFiles: [$values/web.yaml]}}
  destination: {{server: "https://kubernetes.default.svc", namespace: web}}
"#,
        repo = repo.file_url()
    );
    repo.commit_files_elsewhere(
        &[
            ("apps/web.yaml", &manifest),
            ("apps/web-multi.yaml", &multi),
        ],
        "the web Applications",
    );
    let dir = TempDir::new("charts-argo");
    let file = dir.path().join("apps.yaml");
    std::fs::write(&file, format!("{manifest}---\n{multi}")).unwrap();
    let file = file.display().to_string();
    let state = dir.path().join("state").display().to_string();
    let args = [
        "--applications",
        file.as_str(),
        "--state-dir",
        state.as_str(),
    ];
    let (code, out, err) = dw(&[&["check"], &args[..]].concat());
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        out.contains(&format!("chart:oci://{host}/charts/web")) && out.contains("1.4.2"),
        "{out}"
    );
    let (code, out, err) = dw(&[&["run", "--once"], &args[..]].concat());
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        repo.show("main", "apps/web.yaml"),
        manifest.replace("targetRevision: 1.4.0 #", "targetRevision: 1.4.2 #")
    );
    assert_eq!(
        repo.show("main", "apps/web-multi.yaml"),
        multi.replace("'1.4.0'", "'1.4.2'"),
        "only the chart's source changed"
    );

    // Without the file to write, the Application is refused naming the annotation.
    let bad = manifest.replace("    driftwatch.io/chart-version-file: apps/web.yaml\n", "");
    let bad_file = dir.path().join("bad.yaml");
    std::fs::write(&bad_file, bad).unwrap();
    let (code, out, err) = dw(&[
        "check",
        "--applications",
        &bad_file.display().to_string(),
        "--state-dir",
        &state,
    ]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("metadata.annotations[driftwatch.io/chart-version-file]"),
        "{err}"
    );
}

/// `write-back-method: argocd` (the default for Applications read from the cluster): the live
/// Application's `spec.source.targetRevision` is set by server-side apply of that field
/// alone.
#[test]
fn the_live_application_gets_the_chart_version() {
    use driftwatch_testkit::kube::Cluster;
    use serde_json::json;

    let reg = Registry::start(Auth::None);
    let host = reg.host();
    for v in ["1.4.0", "1.4.2", "1.5.0"] {
        reg.push_chart("charts/web", "web", v);
    }
    let dir = TempDir::new("charts-live");
    let cluster = Cluster::new(dir.path());
    cluster.install_application_crd();
    let ns = cluster.unique_namespace("dw-charts-live");
    cluster.create_namespace(&ns);
    cluster.create(json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": "web", "namespace": ns, "annotations": {
            "driftwatch.io/chart-version": "~1.4"
        }},
        "spec": {
            "project": "default",
            "source": {
                "repoURL": format!("{host}/charts"),
                "chart": "web",
                "targetRevision": "1.4.0",
                "helm": {"releaseName": "web", "valueFiles": ["values-prod.yaml"]}
            },
            "destination": {"server": "https://kubernetes.default.svc", "namespace": ns}
        }
    }));
    let before = cluster.get("applications", &ns, "web").unwrap();
    let state = dir.path().join("state").display().to_string();
    let kubeconfig = cluster.kubeconfig.display().to_string();
    let args = [
        "--applications-from-cluster",
        ns.as_str(),
        "--applications-kubeconfig",
        kubeconfig.as_str(),
        "--state-dir",
        state.as_str(),
    ];
    let (code, out, err) = dw(&[&["check"], &args[..]].concat());
    assert_eq!(code, 2, "{out}{err}");
    let (code, out, err) = dw(&[&["run", "--once"], &args[..]].concat());
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("updated"), "{out}");
    let after = cluster.get("applications", &ns, "web").unwrap();
    let mut expected = before["spec"].clone();
    expected["source"]["targetRevision"] = json!("1.4.2");
    assert_eq!(after["spec"], expected, "only targetRevision changed");
    let (code, out, err) = dw(&[&["check"], &args[..]].concat());
    assert_eq!(code, 0, "nothing drifts now: {out}{err}");
}

/// Approvals and holds apply to charts as to images: a version waits for `approve`, and a
/// rollback of the chart's version in Git is held.
#[test]
fn chart_updates_wait_for_approval_and_rollbacks_are_held() {
    let reg = Registry::start(Auth::None);
    let host = reg.host();
    for v in ["1.4.0", "1.4.2"] {
        reg.push_chart("charts/web", "web", v);
    }
    let kustomization = KUSTOMIZATION.replace("{host}", &host);
    let file = "apps/web/kustomization.yaml";
    let repo = BareRepo::new(&[(file, &kustomization)]);
    let dir = TempDir::new("charts-waits");
    let conf = dir.path().join("driftwatch.yaml");
    std::fs::write(
        &conf,
        format!(
            "applications:\n- name: web\n  repo: {}\n  path: apps/web\n  charts:\n  - chart: oci://{host}/charts/web\n    constraint: \"~1.4\"\n    approval: required\n",
            repo.file_url()
        ),
    )
    .unwrap();
    let conf = conf.display().to_string();
    let state = dir.path().join("state").display().to_string();
    let base = ["--config", conf.as_str(), "--state-dir", state.as_str()];
    let chart = format!("chart:oci://{host}/charts/web");
    let version_in_git = || {
        repo.show("main", file)
            .lines()
            .find(|l| l.contains("# pinned"))
            .unwrap()
            .trim()
            .to_owned()
    };
    let line = || {
        let (_, out, err) = dw(&[&["check", "-o", "json"], &base[..]].concat());
        let v: serde_json::Value =
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}"));
        v["images"][0].clone()
    };

    let (code, out, err) = dw(&[&["run", "--once"], &base[..]].concat());
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(version_in_git(), "version: 1.4.0 # pinned by driftwatch");
    let l = line();
    assert_eq!(l["status"], "pending", "{l}");
    assert!(
        l["held"]
            .as_str()
            .unwrap()
            .contains("pending approval of 1.4.2"),
        "{l}"
    );
    let (code, out, err) = dw(&["approve", "web", &chart, "--state-dir", &state]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = dw(&[&["run", "--once"], &base[..]].concat());
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(version_in_git(), "version: 1.4.2 # pinned by driftwatch");

    // Someone sets the chart back: the next cycle leaves it and says why.
    repo.commit_elsewhere(file, &kustomization, "back to 1.4.0");
    let commits = repo.subjects("main").len();
    let (code, out, err) = dw(&[&["run", "--once"], &base[..]].concat());
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(version_in_git(), "version: 1.4.0 # pinned by driftwatch");
    assert_eq!(repo.subjects("main").len(), commits, "no commit");
    let l = line();
    assert_eq!(l["status"], "held", "{l}");
    assert!(
        l["held"]
            .as_str()
            .unwrap()
            .starts_with("held: set back from 1.4.2 to 1.4.0"),
        "{l}"
    );
}
