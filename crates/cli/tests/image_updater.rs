//! argocd-image-updater v1's `ImageUpdater` resources, end to end: a real registry, a real Git
//! repository, and the ImageUpdaters read from a file (`--applications`) or from the cluster
//! (`--applications-from-cluster`: the in-process fake by default, a real API server with the
//! Application and ImageUpdater CRDs installed when `DRIFTWATCH_E2E_KUBECONFIG` names one).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};

use driftwatch_testkit::TempDir;
use driftwatch_testkit::git::BareRepo;
use driftwatch_testkit::kube::Cluster;
use driftwatch_testkit::registry::{Auth, Registry};

const KUSTOMIZATION: &str = "resources: []\nimages:\n- name: api\n  newTag: 1.0.0\n";

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

/// A registry with `team/api` 1.0.0, 1.0.1 and 1.1.0, and a repository with three
/// kustomizations (app-a, app-b, web-c) that all pin 1.0.0.
fn fixture() -> (Registry, BareRepo) {
    let reg = Registry::start(Auth::None);
    for tag in ["1.0.0", "1.0.1", "1.1.0"] {
        reg.push_image("team/api", tag, "2026-11-01T00:00:00Z");
    }
    let repo = BareRepo::new(&[
        ("apps/app-a/kustomization.yaml", KUSTOMIZATION),
        ("apps/app-b/kustomization.yaml", KUSTOMIZATION),
        ("apps/web-c/kustomization.yaml", KUSTOMIZATION),
    ]);
    (reg, repo)
}

/// An Application without image-updater annotations: only an ImageUpdater selects it.
fn application(ns: &str, name: &str, repo: &BareRepo, labels: Value) -> Value {
    json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "spec": {
            "project": "default",
            "source": {
                "repoURL": repo.file_url(),
                "path": format!("apps/{name}"),
                "targetRevision": "main"
            },
            "destination": {"server": "https://kubernetes.default.svc", "namespace": ns}
        }
    })
}

/// An ImageUpdater selecting `app-*` (not opted out by label) for `team/api` `~1.0`, written to
/// each kustomization's `images:` entry `api`.
fn image_updater(ns: &str, reg: &Registry) -> Value {
    json!({
        "apiVersion": "argocd-image-updater.argoproj.io/v1alpha1",
        "kind": "ImageUpdater",
        "metadata": {"name": "api-updater", "namespace": ns},
        "spec": {
            "commonUpdateSettings": {"updateStrategy": "semver", "ignoreTags": ["*-rc*"]},
            "writeBackConfig": {
                "method": "git",
                "gitConfig": {"branch": "main", "writeBackTarget": "kustomization"}
            },
            "applicationRefs": [{
                "namePattern": "app-*",
                "labelSelectors": {
                    "matchExpressions": [{"key": "image-updates", "operator": "NotIn", "values": ["off"]}]
                },
                "images": [{
                    "alias": "api",
                    "imageName": format!("{}/team/api:~1.0", reg.host()),
                    "manifestTargets": {"kustomize": {"name": "api"}}
                }]
            }]
        }
    })
}

fn assert_two_of_three(repo: &BareRepo, out: &str) {
    for app in ["app-a", "app-b"] {
        let k = repo.show("main", &format!("apps/{app}/kustomization.yaml"));
        assert!(
            k.contains("newTag: 1.0.1"),
            "{app} was not updated: {k}\n{out}"
        );
    }
    assert_eq!(
        repo.show("main", "apps/web-c/kustomization.yaml"),
        KUSTOMIZATION,
        "web-c is not selected: {out}"
    );
}

/// One file holds the Applications and the ImageUpdater, as `kubectl get -o yaml` would
/// print them; the ImageUpdater selects two of the three by name pattern.
#[test]
fn an_image_updater_in_a_file_updates_the_applications_it_selects() {
    let (reg, repo) = fixture();
    let dir = TempDir::new("iu-file");
    let docs = [
        application("argocd", "app-a", &repo, json!({})),
        application("argocd", "app-b", &repo, json!({"team": "b"})),
        application("argocd", "web-c", &repo, json!({})),
        image_updater("argocd", &reg),
    ];
    let text: String = docs
        .iter()
        .map(|d| format!("---\n{}\n", serde_json::to_string(d).unwrap()))
        .collect();
    let file = dir.path().join("apps.yaml");
    std::fs::write(&file, text).unwrap();
    let state = dir.path().join("state");
    let (code, out, err) = dw(&[
        "run",
        "--once",
        "--applications",
        file.to_str().unwrap(),
        "--state-dir",
        state.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert_two_of_three(&repo, &out);
    assert_eq!(
        repo.subjects("main").len(),
        2,
        "one commit for the repository: {out}"
    );

    // The ImageUpdater in a file of its own, beside the Applications' (a directory).
    let (reg2, repo2) = fixture();
    let dir2 = TempDir::new("iu-dir");
    let apps: String = ["app-a", "app-b", "web-c"]
        .iter()
        .map(|n| {
            format!(
                "---\n{}\n",
                serde_json::to_string(&application("argocd", n, &repo2, json!({}))).unwrap()
            )
        })
        .collect();
    std::fs::write(dir2.path().join("apps.yaml"), apps).unwrap();
    std::fs::write(
        dir2.path().join("updaters.yaml"),
        serde_json::to_string(&image_updater("argocd", &reg2)).unwrap(),
    )
    .unwrap();
    let (code, out, err) = dw(&[
        "run",
        "--once",
        "--applications",
        dir2.path().to_str().unwrap(),
        "--state-dir",
        dir2.path().join("state").to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert_two_of_three(&repo2, &out);

    // An invalid ImageUpdater is named with its field, and nothing is written.
    let (_, repo3) = fixture();
    let mut bad = image_updater("argocd", &reg);
    bad["spec"]["commonUpdateSettings"]["allowTags"] = json!("regexp:^(v");
    let text = format!(
        "---\n{}\n---\n{}\n",
        serde_json::to_string(&application("argocd", "app-a", &repo3, json!({}))).unwrap(),
        serde_json::to_string(&bad).unwrap()
    );
    std::fs::write(&file, text).unwrap();
    let (code, out, err) = dw(&[
        "check",
        "--applications",
        file.to_str().unwrap(),
        "--state-dir",
        state.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("ImageUpdater argocd/api-updater")
            && err.contains("spec.commonUpdateSettings.allowTags"),
        "{err}"
    );
    assert_eq!(repo3.subjects("main").len(), 1);
}

/// The ImageUpdater and the Applications read from the cluster: the ImageUpdater selects two
/// of the three Applications of its namespace by pattern (a third, opted out by label, and an
/// Application in another namespace are left alone), and the update lands in Git for those two
/// only.
#[test]
fn an_image_updater_in_the_cluster_updates_the_applications_it_selects() {
    let dir = TempDir::new("iu-cluster");
    let cluster = Cluster::new(dir.path());
    cluster.install_application_crd();
    cluster.install_image_updater_crd();
    let ns = cluster.unique_namespace("dw-iu");
    let other = cluster.unique_namespace("dw-iu-other");
    cluster.create_namespace(&ns);
    cluster.create_namespace(&other);
    let (reg, repo) = fixture();
    cluster.create(application(&ns, "app-a", &repo, json!({})));
    cluster.create(application(&ns, "app-b", &repo, json!({"team": "b"})));
    cluster.create(application(&ns, "web-c", &repo, json!({})));
    // Selected by name, but opted out by the label selector.
    let mut opted_out = application(&ns, "app-off", &repo, json!({"image-updates": "off"}));
    opted_out["spec"]["source"]["path"] = json!("apps/web-c");
    cluster.create(opted_out);
    // Matches the pattern, but lives in another namespace than the ImageUpdater.
    let mut elsewhere = application(&other, "app-z", &repo, json!({}));
    elsewhere["spec"]["source"]["path"] = json!("apps/web-c");
    cluster.create(elsewhere);
    cluster.create(image_updater(&ns, &reg));

    let state = dir.path().join("state");
    let run = |ns: &str| {
        dw(&[
            "run",
            "--once",
            "--applications-from-cluster",
            ns,
            "--applications-kubeconfig",
            cluster.kubeconfig.to_str().unwrap(),
            "--allow-local-repositories",
            "--state-dir",
            state.to_str().unwrap(),
        ])
    };
    let (code, out, err) = run(&ns);
    assert_eq!(code, 0, "{out}{err}");
    assert_two_of_three(&repo, &out);
    let (code, out, err) = run(&other);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        repo.show("main", "apps/web-c/kustomization.yaml"),
        KUSTOMIZATION,
        "no ImageUpdater of {other} selects app-z: {out}"
    );
}

/// Without the ImageUpdater CRD, Applications are read from their annotations as before: an
/// absent kind is not an error. (The fake only: a real server's CRD is shared by the tests.)
#[test]
fn without_the_image_updater_crd_annotations_still_work() {
    let dir = TempDir::new("iu-absent");
    let cluster = Cluster::fake_only(dir.path(), "hides the ImageUpdater API group");
    let Some(fake) = &cluster.fake else {
        return;
    };
    fake.hide_group("argocd-image-updater.argoproj.io");
    let (reg, repo) = fixture();
    let mut app = application("argocd", "app-a", &repo, json!({}));
    app["metadata"]["annotations"] = json!({
        "argocd-image-updater.argoproj.io/image-list": format!("api={}/team/api:~1.0", reg.host()),
        "argocd-image-updater.argoproj.io/write-back-method": "git",
        "argocd-image-updater.argoproj.io/write-back-target": "kustomization",
    });
    cluster.create(app);
    let (code, out, err) = dw(&[
        "run",
        "--once",
        "--applications-from-cluster",
        "argocd",
        "--applications-kubeconfig",
        cluster.kubeconfig.to_str().unwrap(),
        "--allow-local-repositories",
        "--state-dir",
        dir.path().join("state").to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        repo.show("main", "apps/app-a/kustomization.yaml")
            .contains("newTag: 1.0.1"),
        "{out}{err}"
    );
}

/// The service follows ImageUpdaters with a watch: one created while it runs selects its
/// Applications without a restart.
#[test]
fn a_new_image_updater_is_followed_by_the_service() {
    let dir = TempDir::new("iu-watch");
    let cluster = Cluster::new(dir.path());
    cluster.install_application_crd();
    cluster.install_image_updater_crd();
    let ns = cluster.unique_namespace("dw-iu-watch");
    cluster.create_namespace(&ns);
    let (reg, repo) = fixture();
    for name in ["app-a", "app-b", "web-c"] {
        cluster.create(application(&ns, name, &repo, json!({})));
    }
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_driftwatch"))
        .args(["run", "--interval", "1", "--applications-from-cluster", &ns])
        .arg("--applications-kubeconfig")
        .arg(&cluster.kubeconfig)
        .arg("--allow-local-repositories")
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .env("HOME", "/nonexistent")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // No ImageUpdater yet: nothing is tracked, so nothing is written.
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(repo.subjects("main").len(), 1);
    cluster.create(image_updater(&ns, &reg));
    let started = std::time::Instant::now();
    let updated = |app: &str| {
        repo.show("main", &format!("apps/{app}/kustomization.yaml"))
            .contains("newTag: 1.0.1")
    };
    while !(updated("app-a") && updated("app-b")) {
        if started.elapsed() > std::time::Duration::from_secs(60)
            || child.try_wait().unwrap().is_some()
        {
            let _ = std::process::Command::new("kill")
                .arg(child.id().to_string())
                .status();
            let out = child.wait_with_output().unwrap();
            panic!(
                "the ImageUpdater was not followed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let _ = std::process::Command::new("kill")
        .arg(child.id().to_string())
        .status();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        repo.show("main", "apps/web-c/kustomization.yaml"),
        KUSTOMIZATION
    );
}

/// An ImageUpdater with every documented field, as the docs write them.
fn full_image_updater(ns: &str) -> Value {
    json!({
        "apiVersion": "argocd-image-updater.argoproj.io/v1alpha1",
        "kind": "ImageUpdater",
        "metadata": {"name": "production-updater", "namespace": ns},
        "spec": {
            "commonUpdateSettings": {
                "updateStrategy": "semver", "forceUpdate": false,
                "allowTags": "regexp:^v[0-9]+\\.[0-9]+\\.[0-9]+$", "ignoreTags": ["latest", "dev"],
                "pullSecret": "pullsecret:argocd/regcred", "platforms": ["linux/amd64"]
            },
            "writeBackConfig": {"method": "argocd"},
            "imagesVerification": {"enabled": false},
            "applicationRefs": [{
                "namePattern": "frontend-*",
                "labelSelectors": {
                    "matchLabels": {"environment": "production"},
                    "matchExpressions": [{"key": "tier", "operator": "In", "values": ["web"]}]
                },
                "commonUpdateSettings": {"updateStrategy": "newest-build", "forceUpdate": true},
                "writeBackConfig": {
                    "method": "git",
                    "gitConfig": {
                        "repository": "git@github.com:myorg/frontend-config.git",
                        "branch": "main",
                        "writeBackTarget": "helmvalues:/values.yaml"
                    }
                },
                "images": [
                    {
                        "alias": "frontend", "imageName": "myregistry/frontend:v1.0",
                        "commonUpdateSettings": {"allowTags": "regexp:^v[0-9]+-prod$"},
                        "manifestTargets": {"helm": {"name": "image.repository", "tag": "image.tag"}}
                    },
                    {
                        "alias": "nginx", "imageName": "nginx:1.20",
                        "manifestTargets": {"kustomize": {"name": "docker.io/library/nginx"}}
                    }
                ]
            }, {
                "namePattern": "backend",
                "useAnnotations": true
            }]
        }
    })
}

/// The testkit's ImageUpdater CRD keeps every documented field and refuses a wrong type, so
/// the real-server tests exercise the shape argocd-image-updater's users write.
#[test]
fn the_image_updater_crd_is_structural_and_keeps_the_documented_fields() {
    let dir = TempDir::new("iu-crd");
    let cluster = Cluster::new(dir.path());
    if !cluster.is_real() {
        eprintln!(
            "skipped: the ImageUpdater CRD's schema needs the real API server (DRIFTWATCH_E2E_KUBECONFIG)"
        );
        return;
    }
    cluster.install_image_updater_crd();
    let ns = cluster.unique_namespace("dw-iu-crd");
    cluster.create_namespace(&ns);
    let full = full_image_updater(&ns);
    cluster.create(full.clone());
    let live = cluster
        .get("imageupdaters", &ns, "production-updater")
        .unwrap();
    assert_eq!(live["spec"], full["spec"], "nothing pruned");
    let mut bad = full_image_updater(&ns);
    bad["metadata"]["name"] = json!("bad");
    bad["spec"]["applicationRefs"][0]["images"][0]["commonUpdateSettings"]["forceUpdate"] =
        json!("yes");
    let out = std::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&cluster.kubeconfig)
        .args(["create", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin
                .take()
                .unwrap()
                .write_all(bad.to_string().as_bytes())?;
            c.wait_with_output()
        })
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("forceUpdate"),
        "{err}"
    );
}
