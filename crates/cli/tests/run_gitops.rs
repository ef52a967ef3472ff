//! `driftwatch run --kubeconfig`: the whole flow in one process — a registry push becomes a
//! commit and then the new image in the cluster; a manual change is healed from its watch
//! event; a Git push webhook deploys another writer's commit at once; prune removes what left
//! Git; with self-heal off a change is reported and left; detect-only applications are compared,
//! never applied. Against the in-process API server, or a real one when
//! `DRIFTWATCH_E2E_KUBECONFIG` is set.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

mod common;

use driftwatch_testkit::git::BareRepo;
use driftwatch_testkit::http::request;
use driftwatch_testkit::kube::Cluster;
use driftwatch_testkit::registry::{Auth, Registry};
use driftwatch_testkit::{TempDir, free_port, wait_for_port};

fn deployment(ns: &str, image: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: backend\n  namespace: {ns}\nspec:\n  replicas: 1\n  revisionHistoryLimit: 5\n  selector:\n    matchLabels:\n      app: backend\n  template:\n    metadata:\n      labels:\n        app: backend\n    spec:\n      containers:\n      - name: backend\n        image: {image}\n"
    )
}

fn namespace(name: &str) -> String {
    format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n")
}

fn configmap(ns: &str, name: &str, mode: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: {ns}\ndata:\n  mode: {mode}\n"
    )
}

/// A running `driftwatch run`, its stderr lines on a channel (shown when a wait fails), killed
/// with SIGTERM on drop. Tests read its state through its API: `/events`, `/status`,
/// `/metrics`.
struct Running {
    child: Child,
    lines: Receiver<String>,
    port: u16,
    /// The last event number a wait consumed.
    seen: std::cell::Cell<u64>,
}

impl Running {
    fn start(args: &[&std::ffi::OsStr]) -> Self {
        let port = free_port();
        let mut child = Command::new(env!("CARGO_BIN_EXE_driftwatch"))
            .arg("run")
            .args(args)
            .args([
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--webhook-secret-env",
                "HOOK_SECRET",
                "--interval",
                "3600",
                "--sync-interval",
                "3600",
            ])
            .env("HOOK_SECRET", "s3cret")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        assert!(wait_for_port(port, Duration::from_secs(10)));
        Running {
            child,
            lines,
            port,
            seen: std::cell::Cell::new(0),
        }
    }

    /// `run --config CONF --state-dir STATE --kubeconfig` of `cluster`.
    fn on(conf: &Path, state: &Path, cluster: &Cluster) -> Self {
        Self::start(&[
            "--config".as_ref(),
            conf.as_os_str(),
            "--state-dir".as_ref(),
            state.as_os_str(),
            "--kubeconfig".as_ref(),
            cluster.kubeconfig.as_os_str(),
        ])
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Waits for the next event (after those already consumed) that `matches`, at most 20 s;
    /// the events before it are consumed too.
    fn wait_event(
        &self,
        what: &str,
        matches: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let url = self.url(&format!("/events?since={}", self.seen.get()));
            let (code, _, body) = request("GET", &url, &[], b"").unwrap();
            assert_eq!(code, 200);
            let events: Vec<serde_json::Value> = serde_json::from_slice(&body).unwrap();
            for e in events {
                self.seen.set(e["seq"].as_u64().unwrap());
                if matches(&e) {
                    return e;
                }
            }
            if Instant::now() > deadline {
                let logs: Vec<String> = self.lines.try_iter().collect();
                panic!("no event: {what}\n{}", logs.join("\n"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for a sync of `app`.
    fn synced(&self, app: &str) -> serde_json::Value {
        self.wait_event(&format!("{app} synced"), |e| {
            e["kind"] == "synced" && e["app"] == app
        })
    }

    /// The value of an unlabelled counter or gauge on `/metrics`.
    fn metric(&self, name: &str) -> u64 {
        let (_, _, body) = request("GET", &self.url("/metrics"), &[], b"").unwrap();
        let text = String::from_utf8(body).unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {text}"))
    }

    fn stop(mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        self.child.wait().unwrap()
    }
}

impl Drop for Running {
    /// A failed assertion must not leave the service running.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `driftwatch.yaml` with one application, `shop`, syncing `apps/shop` of `repo` to `ns` with
/// this `automated` policy (a YAML flow mapping).
fn shop_config(dir: &TempDir, repo: &BareRepo, ns: &str, automated: &str) -> std::path::PathBuf {
    let conf = dir.path().join("driftwatch.yaml");
    std::fs::write(
        &conf,
        format!(
            "applications:\n- name: shop\n  repo: {}\n  path: apps/shop\n  sync:\n    namespace: {ns}\n    automated: {automated}\n",
            repo.file_url(),
        ),
    )
    .unwrap();
    conf
}

/// Whether the JSON array `list` has a string that contains `part`.
fn has(list: &serde_json::Value, part: &str) -> bool {
    list.as_array().is_some_and(|l| {
        l.iter()
            .any(|v| v.as_str().is_some_and(|v| v.contains(part)))
    })
}

/// `GET /status`, parsed.
fn status(run: &Running) -> serde_json::Value {
    let (code, _, body) = request("GET", &run.url("/status"), &[], b"").unwrap();
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).unwrap()
}

/// Polls until `f` holds, at most 20 s.
fn eventually(what: &str, mut f: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !f() {
        assert!(started.elapsed() < Duration::from_secs(20), "never: {what}");
        std::thread::sleep(Duration::from_millis(25));
    }
    started.elapsed()
}

fn image_of(cluster: &Cluster, ns: &str) -> Option<String> {
    cluster.get("deployments", ns, "backend").and_then(|d| {
        d["spec"]["template"]["spec"]["containers"][0]["image"]
            .as_str()
            .map(str::to_owned)
    })
}

fn mode_of(cluster: &Cluster, ns: &str, name: &str) -> Option<String> {
    cluster
        .get("configmaps", ns, name)
        .and_then(|c| c["data"]["mode"].as_str().map(str::to_owned))
}

#[test]
fn registry_push_reaches_the_cluster_and_manual_changes_heal() {
    let dir = TempDir::new("gitops");
    let cluster = Cluster::new(dir.path());
    let ns = format!("dw-gitops-{}", std::process::id());
    cluster.cleanup_namespace(&ns);
    let reg = Registry::start(Auth::None);
    reg.push_image("shop/backend", "v1.0.0", "2026-11-01T00:00:00Z");
    let image = |tag: &str| format!("{}/shop/backend:{tag}", reg.host());
    // deployment.yaml sorts before namespace.yaml: the sync must create the namespace first,
    // as the API server (and the fake) refuse objects in a namespace that does not exist.
    let repo = BareRepo::new(&[
        ("apps/shop/namespace.yaml", &namespace(&ns)),
        (
            "apps/shop/deployment.yaml",
            &deployment(&ns, &image("v1.0.0")),
        ),
        (
            "apps/shop/settings.yaml",
            &configmap(&ns, "settings", "fast"),
        ),
        // An exported manifest: its stale resourceVersion must not make the apply conflict.
        (
            "apps/shop/flags.yaml",
            &format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: flags\n  namespace: {ns}\n  resourceVersion: \"1\"\n  uid: 0b5c2d1e-0000-4000-8000-000000000000\ndata:\n  beta: \"on\"\n"
            ),
        ),
    ]);
    let conf = dir.path().join("driftwatch.yaml");
    std::fs::write(
        &conf,
        format!(
            "applications:\n- name: shop\n  repo: {}\n  path: apps/shop\n  writeBack: manifests:deployment.yaml\n  images:\n  - image: {}/shop/backend\n  sync:\n    namespace: {ns}\n    automated:\n      selfHeal: true\n      prune: true\n    ignoreDifferences:\n    - kind: Deployment\n      name: backend\n      jsonPointers: [/spec/revisionHistoryLimit]\n",
            repo.file_url(),
            reg.host()
        ),
    )
    .unwrap();
    let state = dir.path().join("state");
    let run = Running::on(&conf, &state, &cluster);

    // The first tick brings Git to the cluster.
    run.synced("shop");
    assert_eq!(
        image_of(&cluster, &ns).as_deref(),
        Some(image("v1.0.0").as_str())
    );
    assert_eq!(mode_of(&cluster, &ns, "settings").as_deref(), Some("fast"));
    assert!(cluster.get("configmaps", &ns, "flags").is_some());

    // A registry push: commit, then the cluster, without waiting for any poll.
    let digest = reg.push_image("shop/backend", "v1.1.0", "2026-11-02T00:00:00Z");
    let body = reg.push_event("shop/backend", &digest, "v1.1.0");
    let sent = Instant::now();
    let (code, _, _) = request(
        "POST",
        &run.url("/webhook/distribution"),
        &[("Authorization", "Bearer s3cret")],
        body.as_bytes(),
    )
    .unwrap();
    assert_eq!(code, 202);
    eventually("the new image in the cluster", || {
        image_of(&cluster, &ns).as_deref() == Some(image("v1.1.0").as_str())
    });
    let push_to_deploy = sent.elapsed();
    run.wait_event("the new image synced", |e| {
        e["kind"] == "synced" && has(&e["applied"], "Deployment/")
    });
    assert!(
        repo.show("main", "apps/shop/deployment.yaml")
            .contains(&image("v1.1.0"))
    );
    eprintln!("push to deploy: {push_to_deploy:?}");

    // A field ignoreDifferences names is left as changed; the workflow's manual change is
    // healed from its watch event.
    cluster.patch(
        "deployments",
        &ns,
        "backend",
        "/spec/revisionHistoryLimit",
        serde_json::json!(2),
    );
    cluster.set_image(&ns, "backend", "backend", "wrong-image:v99");
    if let Some(fake) = &cluster.fake {
        // As the Deployment controller does at once on a real server: a status write whose
        // event still shows the wrong image. It must not cause a second heal.
        fake.set_status(
            "deployments",
            &ns,
            "backend",
            serde_json::json!({"observedGeneration": 1, "replicas": 1}),
        )
        .unwrap();
    }
    let healed = run.wait_event("the heal", |e| {
        e["kind"] == "healed" && e["object"].as_str().unwrap().ends_with("/backend")
    });
    assert!(has(&healed["managers"], "kubectl-set"), "{healed}");
    assert_eq!(
        image_of(&cluster, &ns).as_deref(),
        Some(image("v1.1.0").as_str())
    );
    assert!(!has(&healed["fields"], "revisionHistoryLimit"), "{healed}");
    assert_eq!(
        cluster.get("deployments", &ns, "backend").unwrap()["spec"]["revisionHistoryLimit"],
        2,
        "ignored, so not healed"
    );
    eventually("/status says Synced", || {
        let st = status(&run);
        st[0]["sync"] == "Synced" && st[0]["selfHeal"] == true
    });

    // Another writer commits; the Git host's webhook deploys it at once. A wrong token does not.
    repo.commit_elsewhere(
        "apps/shop/settings.yaml",
        &configmap(&ns, "settings", "safe"),
        "settings: safe mode",
    );
    let push = format!(
        r#"{{"ref":"refs/heads/main","after":"x","repository":{{"url":"{}"}}}}"#,
        repo.file_url()
    );
    let (code, _, _) = request(
        "POST",
        &run.url("/webhook/git"),
        &[("Authorization", "Bearer wrong")],
        push.as_bytes(),
    )
    .unwrap();
    assert_eq!(code, 401);
    let (code, _, body) = request(
        "POST",
        &run.url("/webhook/git"),
        &[("Authorization", "Bearer s3cret")],
        push.as_bytes(),
    )
    .unwrap();
    assert_eq!(code, 202, "{}", String::from_utf8_lossy(&body));
    eventually("the other writer's commit in the cluster", || {
        mode_of(&cluster, &ns, "settings").as_deref() == Some("safe")
    });

    // A file leaves Git: prune is on, so the ConfigMap goes; nothing else does.
    repo.commit_elsewhere("apps/shop/flags.yaml", "", "drop the flags");
    request(
        "POST",
        &run.url("/webhook/git"),
        &[("Authorization", "Bearer s3cret")],
        push.as_bytes(),
    )
    .unwrap();
    eventually("flags pruned", || {
        cluster.get("configmaps", &ns, "flags").is_none()
    });
    assert!(cluster.get("deployments", &ns, "backend").is_some());
    run.wait_event("the prune", |e| {
        e["kind"] == "synced" && has(&e["pruned"], "ConfigMap/")
    });

    let (_, _, metrics) = request("GET", &run.url("/metrics"), &[], b"").unwrap();
    let metrics = String::from_utf8(metrics).unwrap();
    for needle in [
        "driftwatch_heals_total 1",
        "driftwatch_git_webhooks_total 2",
        "driftwatch_push_to_deploy_seconds_count 1",
    ] {
        let logs: Vec<String> = run.lines.try_iter().collect();
        assert!(metrics.contains(needle), "{needle}: {logs:#?}");
    }
    let syncs: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("driftwatch_syncs_total "))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(syncs, 4, "initial, image update, settings, prune");
    assert!(run.stop().success());

    let out = Command::new(env!("CARGO_BIN_EXE_driftwatch"))
        .args(["history", "shop", "--syncs", "-o", "json", "--state-dir"])
        .arg(&state)
        .output()
        .unwrap();
    let history: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let history = history.as_array().unwrap();
    assert_eq!(history.len(), 4, "{history:?}");
    assert_eq!(history[0]["pruned"], 1);
    let head = driftwatch_testkit::git::git(&repo.path, &["rev-parse", "main"]);
    assert_eq!(history[0]["revision"], head.trim());
}

#[test]
fn without_self_heal_changes_are_reported_and_detect_only_apps_are_never_applied() {
    let dir = TempDir::new("gitops-report");
    let cluster = Cluster::new(dir.path());
    let ns = format!("dw-gitops-report-{}", std::process::id());
    cluster.cleanup_namespace(&ns);
    let repo = BareRepo::new(&[
        ("apps/shop/namespace.yaml", &namespace(&ns)),
        (
            "apps/shop/deployment.yaml",
            &deployment(&ns, "registry.local/backend:v1.0.0"),
        ),
        ("apps/tools/tools.yaml", &configmap(&ns, "tools", "on")),
    ]);
    let conf = dir.path().join("driftwatch.yaml");
    std::fs::write(
        &conf,
        format!(
            "applications:\n- name: shop\n  repo: {url}\n  path: apps/shop\n  sync:\n    namespace: {ns}\n    automated: {{}}\n- name: tools\n  repo: {url}\n  path: apps/tools\n  sync:\n    namespace: {ns}\n",
            url = repo.file_url(),
        ),
    )
    .unwrap();
    let state = dir.path().join("state");
    let run = Running::on(&conf, &state, &cluster);
    run.synced("shop");
    let out_of_sync = run.wait_event("tools compared", |e| {
        e["kind"] == "out-of-sync" && e["app"] == "tools"
    });
    assert!(
        has(&out_of_sync["objects"], &format!("ConfigMap/{ns}/tools")),
        "{out_of_sync}"
    );
    assert!(
        cluster.get("configmaps", &ns, "tools").is_none(),
        "detect-only: never applied"
    );

    cluster.set_image(&ns, "backend", "backend", "wrong-image:v99");
    // The report is the healer's verdict on the change's event: having reported, it is done
    // with it, and the change stays.
    let reported = run.wait_event("the change reported", |e| {
        e["kind"] == "drifted" && e["object"].as_str().unwrap().ends_with("/backend")
    });
    assert!(has(&reported["managers"], "kubectl-set"), "{reported}");
    assert_eq!(image_of(&cluster, &ns).as_deref(), Some("wrong-image:v99"));
    let st = status(&run);
    let shop = st
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["app"] == "shop")
        .unwrap();
    assert_eq!(shop["sync"], "OutOfSync", "{st}");
    assert_eq!(
        shop["outOfSync"][0]["object"],
        format!("Deployment/{ns}/backend"),
        "{st}"
    );
    assert!(
        shop["outOfSync"][0]["fields"][0]
            .as_str()
            .unwrap()
            .contains("containers[name=backend].image"),
        "{st}"
    );
    let tools = st
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["app"] == "tools")
        .unwrap();
    assert_eq!(tools["sync"], "OutOfSync", "{st}");
    assert_eq!(tools["automated"], false, "{st}");
    let (_, _, metrics) = request("GET", &run.url("/metrics"), &[], b"").unwrap();
    let metrics = String::from_utf8(metrics).unwrap();
    assert!(metrics.contains("driftwatch_heals_total 0"), "{metrics}");
    assert!(
        metrics.contains("driftwatch_out_of_sync_objects{app=\"tools\"} 1"),
        "{metrics}"
    );

    // One verdict: `status`, `diff` and the service's `/status` name the same objects and
    // fields, for the automated application and the detect-only one.
    let dw = |args: &[&str]| common::on_cluster(&conf, &state, &cluster.kubeconfig, args);
    let (code, out, err) = dw(&["status", "-o", "json"]);
    assert_eq!(code, 2, "{out}{err}");
    let cli: serde_json::Value = serde_json::from_str(&out).unwrap();
    for app in ["shop", "tools"] {
        let served = st
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["app"] == app)
            .unwrap();
        let listed = cli
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["app"] == app)
            .unwrap();
        assert_eq!(
            listed["sync"], served["sync"],
            "{app}: {listed} vs {served}"
        );
        assert_eq!(
            listed["outOfSync"],
            served["outOfSync"].as_array().unwrap().len()
        );
        let (code, out, err) = dw(&["diff", app, "-o", "json"]);
        assert_eq!(code, 2, "{out}{err}");
        let diffs: serde_json::Value = serde_json::from_str(&out).unwrap();
        let objects: Vec<&serde_json::Value> = diffs
            .as_array()
            .unwrap()
            .iter()
            .map(|d| &d["object"])
            .collect();
        let served_objects: Vec<&serde_json::Value> = served["outOfSync"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| &o["object"])
            .collect();
        assert_eq!(objects, served_objects, "{app}");
        let paths: Vec<&serde_json::Value> = diffs[0]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| &f["path"])
            .collect();
        let served_paths: Vec<&serde_json::Value> = served["outOfSync"][0]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .collect();
        assert_eq!(paths, served_paths, "{app}");
    }
    assert!(run.stop().success());
}

#[test]
fn a_dropped_watch_or_a_restarted_api_server_misses_no_change() {
    let dir = TempDir::new("gitops-restart");
    let cluster = Cluster::fake_only(
        dir.path(),
        "dropping every watch and restarting the API server with its history compacted",
    );
    let fake = cluster.fake.as_ref().unwrap();
    let ns = "shop";
    fake.create_namespace(ns);
    let repo = BareRepo::new(&[(
        "apps/shop/deployment.yaml",
        &deployment(ns, "registry.local/backend:v1.0.0"),
    )]);
    let conf = shop_config(&dir, &repo, ns, "{selfHeal: true}");
    let state = dir.path().join("state");
    let run = Running::on(&conf, &state, &cluster);
    run.synced("shop");
    let good = Some("registry.local/backend:v1.0.0".to_owned());

    // The connection drops; the watch resumes from where it was and sees the next change.
    fake.drop_watches();
    cluster.set_image(ns, "backend", "backend", "wrong-image:v1");
    run.wait_event("a heal", |e| {
        e["kind"] == "healed" && e["object"].as_str().unwrap().ends_with("/backend")
    });
    assert_eq!(image_of(&cluster, ns), good);

    // The server restarts: watches end, history is compacted (resuming gets 410 Gone), and a
    // change lands before any watch is back. The re-list finds it.
    fake.go_down();
    fake.update_as(
        "kubectl-set",
        "deployments",
        ns,
        "backend",
        "/spec/template/spec/containers/0/image",
        serde_json::json!("wrong-image:v2"),
    )
    .unwrap();
    // driftwatch keeps trying while the server is down; nothing can heal meanwhile.
    let refused = fake.refused();
    eventually("a refused attempt to come back", || {
        fake.refused() > refused + 1
    });
    assert_eq!(
        image_of(&cluster, ns).as_deref(),
        Some("wrong-image:v2"),
        "nothing can heal while the server is down"
    );
    fake.up();
    let healed = run.wait_event("a heal", |e| {
        e["kind"] == "healed" && e["object"].as_str().unwrap().ends_with("/backend")
    });
    assert!(has(&healed["managers"], "kubectl-set"), "{healed}");
    assert_eq!(image_of(&cluster, ns), good);

    // And the watch after the restart works as before.
    cluster.set_image(ns, "backend", "backend", "wrong-image:v3");
    run.wait_event("a heal", |e| {
        e["kind"] == "healed" && e["object"].as_str().unwrap().ends_with("/backend")
    });
    assert_eq!(image_of(&cluster, ns), good);

    // The controller reports the rollout done: the sync's outcome is recorded from the watch.
    let generation = fake.get("deployments", ns, "backend").unwrap()["metadata"]["generation"]
        .as_i64()
        .unwrap();
    fake.set_status(
        "deployments",
        ns,
        "backend",
        serde_json::json!({"observedGeneration": generation, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 1}),
    )
        .unwrap();
    let settled = run.wait_event("the rollout settled", |e| {
        e["kind"] == "rollout" && e["health"] == "Healthy"
    });
    assert!(
        settled["detail"]
            .as_str()
            .unwrap()
            .contains("1 of 1 objects healthy"),
        "{settled}"
    );
    assert!(run.stop().success());
    let out = Command::new(env!("CARGO_BIN_EXE_driftwatch"))
        .args(["history", "shop", "--syncs", "-o", "json", "--state-dir"])
        .arg(&state)
        .output()
        .unwrap();
    let history: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(history[0]["health"], "Healthy", "{history}");
}

#[test]
fn credentials_bound_to_namespaces_watch_per_namespace() {
    // A tenant's service account: everything in its namespace, no list or watch across
    // namespaces (403). The watches fall back to that namespace and still heal.
    let dir = TempDir::new("gitops-rbac");
    let cluster = Cluster::new(dir.path());
    let ns = cluster.unique_namespace("shop");
    cluster.create_namespace(&ns);
    let tenant = cluster.namespace_bound_kubeconfig(&ns, dir.path());
    let repo = BareRepo::new(&[
        (
            "apps/shop/deployment.yaml",
            &deployment(&ns, "registry.local/backend:v1.0.0"),
        ),
        (
            "apps/shop/settings.yaml",
            &configmap(&ns, "settings", "fast"),
        ),
    ]);
    let conf = shop_config(&dir, &repo, &ns, "{selfHeal: true}");
    let state = dir.path().join("state");
    let run = Running::start(&[
        "--config".as_ref(),
        conf.as_os_str(),
        "--state-dir".as_ref(),
        state.as_os_str(),
        "--kubeconfig".as_ref(),
        tenant.as_os_str(),
    ]);
    run.synced("shop");
    cluster.set_image(&ns, "backend", "backend", "wrong-image:v1");
    run.wait_event("a heal", |e| {
        e["kind"] == "healed" && e["object"].as_str().unwrap().ends_with("/backend")
    });
    assert_eq!(
        image_of(&cluster, &ns).as_deref(),
        Some("registry.local/backend:v1.0.0")
    );
    assert!(run.stop().success());
}

#[test]
fn a_broken_commit_keeps_the_last_good_state() {
    let dir = TempDir::new("gitops-broken");
    let cluster = Cluster::new(dir.path());
    let ns = format!("dw-gitops-broken-{}", std::process::id());
    cluster.cleanup_namespace(&ns);
    let repo = BareRepo::new(&[
        ("apps/shop/namespace.yaml", &namespace(&ns)),
        (
            "apps/shop/settings.yaml",
            &configmap(&ns, "settings", "fast"),
        ),
    ]);
    let conf = shop_config(&dir, &repo, &ns, "{prune: true}");
    let state = dir.path().join("state");
    let run = Running::on(&conf, &state, &cluster);
    run.synced("shop");
    let webhook = |run: &Running| {
        let push = format!(
            r#"{{"ref":"refs/heads/main","repository":{{"url":"{}"}}}}"#,
            repo.file_url()
        );
        let (code, _, _) = request(
            "POST",
            &run.url("/webhook/git"),
            &[("Authorization", "Bearer s3cret")],
            push.as_bytes(),
        )
        .unwrap();
        assert_eq!(code, 202);
    };

    // Someone commits a broken file next to a real change: nothing of it reaches the cluster,
    // and prune does not take the good objects for gone.
    repo.commit_elsewhere(
        "apps/shop/settings.yaml",
        &format!("{}  extra: [unclosed\n", configmap(&ns, "settings", "slow")),
        "broken settings",
    );
    webhook(&run);
    let failed = run.wait_event("the failed sync", |e| {
        e["kind"] == "sync-failed" && e["app"] == "shop"
    });
    assert!(
        failed["error"].as_str().unwrap().contains("settings.yaml"),
        "names the file: {failed}"
    );
    assert_eq!(mode_of(&cluster, &ns, "settings").as_deref(), Some("fast"));
    let st = status(&run);
    assert_eq!(st[0]["sync"], "Unknown", "{st}");
    assert!(
        st[0]["detail"].as_str().unwrap().contains("settings.yaml"),
        "{st}"
    );

    // The fix is deployed as usual.
    repo.commit_elsewhere(
        "apps/shop/settings.yaml",
        &configmap(&ns, "settings", "slow"),
        "fix settings",
    );
    webhook(&run);
    run.synced("shop");
    assert_eq!(mode_of(&cluster, &ns, "settings").as_deref(), Some("slow"));
    assert!(run.stop().success());
}

#[test]
fn run_once_syncs_and_exits_for_cron_and_ci() {
    let dir = TempDir::new("gitops-once");
    let cluster = Cluster::new(dir.path());
    let ns = format!("dw-gitops-once-{}", std::process::id());
    cluster.cleanup_namespace(&ns);
    let repo = BareRepo::new(&[
        ("apps/shop/namespace.yaml", &namespace(&ns)),
        (
            "apps/shop/settings.yaml",
            &configmap(&ns, "settings", "fast"),
        ),
    ]);
    let conf = shop_config(&dir, &repo, &ns, "{}");
    let once = || {
        Command::new(env!("CARGO_BIN_EXE_driftwatch"))
            .args(["run", "--once", "--config"])
            .arg(&conf)
            .arg("--state-dir")
            .arg(dir.path().join("state"))
            .arg("--kubeconfig")
            .arg(&cluster.kubeconfig)
            .output()
            .unwrap()
    };
    let out = once();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("synced"), "{err}");
    assert_eq!(mode_of(&cluster, &ns, "settings").as_deref(), Some("fast"));

    // A render that fails makes the run fail (exit 1), for CI to see, and changes nothing.
    repo.commit_elsewhere("apps/shop/settings.yaml", "kind: [", "broken");
    let out = once();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("sync failed") && err.contains("settings.yaml"),
        "{err}"
    );
    assert_eq!(mode_of(&cluster, &ns, "settings").as_deref(), Some("fast"));
}

#[test]
fn a_fight_with_another_writer_stops_and_shows_as_degraded() {
    let dir = TempDir::new("gitops-fight");
    let cluster = Cluster::new(dir.path());
    let ns = cluster.unique_namespace("shop");
    cluster.create_namespace(&ns);
    let repo = BareRepo::new(&[(
        "apps/shop/deployment.yaml",
        &deployment(&ns, "registry.local/backend:v1.0.0"),
    )]);
    let conf = shop_config(&dir, &repo, &ns, "{selfHeal: true}");
    let run = Running::on(&conf, &dir.path().join("state"), &cluster);
    run.synced("shop");
    // A controller that keeps writing its own image back: each write is healed, until healing
    // stops and says who.
    let rogue = |image: &str| {
        cluster.update_as(
            "rogue-controller",
            "deployments",
            &ns,
            "backend",
            "/spec/template/spec/containers/0/image",
            serde_json::json!(image),
        );
    };
    let mut fought = false;
    for _ in 0..12 {
        rogue("rogue:v1");
        let e = run.wait_event("a heal or the fight", |e| {
            e["kind"] == "healed" || e["kind"] == "fight"
        });
        if e["kind"] == "fight" {
            assert!(has(&e["managers"], "rogue-controller"), "{e}");
            fought = true;
            break;
        }
    }
    assert!(fought, "the fight was never detected");
    let st = status(&run);
    assert_eq!(st[0]["health"], "Degraded", "{st}");
    assert!(
        st[0]["detail"]
            .as_str()
            .unwrap()
            .contains("rogue-controller"),
        "{st}"
    );
    // The fight is counted as its event is reported, just after the state changes.
    eventually("the fight counted", || {
        run.metric("driftwatch_fights_total") == 1
    });
    let heals = run.metric("driftwatch_heals_total");

    // Healing stopped: once the healer has judged the controller's next write, it stays, and
    // shows as OutOfSync.
    let judged = run.metric("driftwatch_watch_events_total");
    rogue("rogue:v2");
    eventually("the write judged", || {
        run.metric("driftwatch_watch_events_total") > judged
    });
    eventually("OutOfSync", || status(&run)[0]["sync"] == "OutOfSync");
    assert_eq!(image_of(&cluster, &ns).as_deref(), Some("rogue:v2"));
    assert_eq!(run.metric("driftwatch_heals_total"), heals);
    assert_eq!(status(&run)[0]["health"], "Degraded");
    assert!(run.stop().success());
}

#[test]
fn argocd_applications_deploy_their_parameter_overrides() {
    // argocd-image-updater's default write-back is `.argocd-source-<app>.yaml`; Argo CD applies
    // it when rendering, and so must driftwatch, or the new image never reaches the cluster.
    let dir = TempDir::new("gitops-argo");
    let cluster = Cluster::new(dir.path());
    let ns = format!("dw-gitops-argo-{}", std::process::id());
    cluster.cleanup_namespace(&ns);
    let reg = Registry::start(Auth::None);
    reg.push_image("team/api", "1.0.0", "2026-11-01T00:00:00Z");
    let repo = BareRepo::new(&[
        (
            "apps/api/kustomization.yaml",
            &format!(
                "resources:\n- namespace.yaml\n- deployment.yaml\nimages:\n- name: backend\n  newName: {}/team/api\n  newTag: 1.0.0\n",
                reg.host()
            ),
        ),
        ("apps/api/namespace.yaml", &namespace(&ns)),
        ("apps/api/deployment.yaml", &deployment(&ns, "backend")),
    ]);
    let apps = dir.path().join("apps.yaml");
    std::fs::write(
        &apps,
        format!(
            "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: api\n  namespace: argocd\n  annotations:\n    argocd-image-updater.argoproj.io/image-list: api={}/team/api:~1.0\n    argocd-image-updater.argoproj.io/write-back-method: git\nspec:\n  source:\n    repoURL: {}\n    path: apps/api\n    targetRevision: main\n  destination:\n    server: https://kubernetes.default.svc\n    namespace: {ns}\n  syncPolicy:\n    automated:\n      selfHeal: true\n",
            reg.host(),
            repo.file_url()
        ),
    )
    .unwrap();
    let state = dir.path().join("state");
    let run = Running::start(&[
        "--applications".as_ref(),
        apps.as_os_str(),
        "--state-dir".as_ref(),
        state.as_os_str(),
        "--kubeconfig".as_ref(),
        cluster.kubeconfig.as_os_str(),
    ]);
    run.synced("api");
    let want = |tag: &str| format!("{}/team/api:{tag}", reg.host());
    assert_eq!(image_of(&cluster, &ns), Some(want("1.0.0")));

    let digest = reg.push_image("team/api", "1.0.1", "2026-11-02T00:00:00Z");
    let body = reg.push_event("team/api", &digest, "1.0.1");
    let (code, _, _) = request(
        "POST",
        &run.url("/webhook/distribution"),
        &[("Authorization", "Bearer s3cret")],
        body.as_bytes(),
    )
    .unwrap();
    assert_eq!(code, 202);
    eventually("the override deployed", || {
        image_of(&cluster, &ns) == Some(want("1.0.1"))
    });
    let files = driftwatch_testkit::git::git(&repo.path, &["ls-tree", "-r", "--name-only", "main"]);
    assert!(files.contains("apps/api/.argocd-source-"), "{files}");
    assert!(
        repo.show("main", "apps/api/kustomization.yaml")
            .contains("newTag: 1.0.0"),
        "the update lives in the override file, not in the kustomization"
    );
    assert!(run.stop().success());
}

#[test]
fn what_the_server_drops_is_neither_healed_nor_reported() {
    // `hostname: ""` as a template renders it: the API server drops the empty field, so the
    // local comparison sees a difference no sync would change. The healer asks the server (its
    // heal's apply changes nothing; with self-heal off, a dry run) and neither heals, reports
    // nor shows the application OutOfSync — the verdict `diff` and `status` give.
    let dir = TempDir::new("gitops-dropped");
    let cluster = Cluster::new(dir.path());
    let ns = cluster.unique_namespace("dropped");
    cluster.create_namespace(&ns);
    let with_empty = |name: &str| {
        deployment(&ns, "registry.local/backend:v1.0.0")
            .replace(
                "name: backend\n  namespace",
                &format!("name: {name}\n  namespace"),
            )
            .replace(
                "    spec:\n      containers:",
                "    spec:\n      hostname: \"\"\n      containers:",
            )
    };
    let repo = BareRepo::new(&[
        ("apps/healed/deployment.yaml", &with_empty("healed")),
        ("apps/reported/deployment.yaml", &with_empty("reported")),
    ]);
    let conf = dir.path().join("driftwatch.yaml");
    std::fs::write(
        &conf,
        format!(
            "applications:\n- name: healed\n  repo: {url}\n  path: apps/healed\n  sync:\n    namespace: {ns}\n    automated: {{selfHeal: true}}\n- name: reported\n  repo: {url}\n  path: apps/reported\n  sync:\n    namespace: {ns}\n    automated: {{}}\n",
            url = repo.file_url(),
        ),
    )
    .unwrap();
    let run = Running::on(&conf, &dir.path().join("state"), &cluster);
    run.synced("healed");
    run.synced("reported");
    // Both objects judged after their syncs (listed, then each sync's end).
    eventually("the healer judged both objects", || {
        run.metric("driftwatch_watch_events_total") >= 4
    });
    eventually("both Synced", || {
        status(&run)
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["sync"] == "Synced")
    });
    assert_eq!(run.metric("driftwatch_heals_total"), 0);
    let (_, _, body) = request("GET", &run.url("/events"), &[], b"").unwrap();
    let events: Vec<serde_json::Value> = serde_json::from_slice(&body).unwrap();
    assert!(
        !events
            .iter()
            .any(|e| e["kind"] == "healed" || e["kind"] == "drifted"),
        "{events:#?}"
    );
    // A real change is still one.
    cluster.set_image(&ns, "healed", "backend", "wrong-image:v99");
    let healed = run.wait_event("the real change healed", |e| e["kind"] == "healed");
    assert!(
        has(&healed["fields"], "containers[name=backend].image"),
        "{healed}"
    );
    assert!(has(&healed["managers"], "kubectl-set"), "{healed}");
    eventually("Synced again", || {
        status(&run)
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["sync"] == "Synced")
    });
    assert!(run.stop().success());
}

#[test]
fn what_left_git_without_prune_requires_pruning_everywhere() {
    let dir = TempDir::new("gitops-orphan");
    let cluster = Cluster::new(dir.path());
    let ns = cluster.unique_namespace("orphan");
    cluster.create_namespace(&ns);
    let repo = BareRepo::new(&[
        ("apps/shop/a.yaml", &configmap(&ns, "a", "fast")),
        ("apps/shop/b.yaml", &configmap(&ns, "b", "fast")),
    ]);
    let conf = shop_config(&dir, &repo, &ns, "{}");
    let state = dir.path().join("state");
    let run = Running::on(&conf, &state, &cluster);
    run.synced("shop");
    repo.commit_elsewhere("apps/shop/b.yaml", "", "drop b");
    let push = format!(
        r#"{{"ref":"refs/heads/main","repository":{{"url":"{}"}}}}"#,
        repo.file_url()
    );
    let (code, _, _) = request(
        "POST",
        &run.url("/webhook/git"),
        &[("Authorization", "Bearer s3cret")],
        push.as_bytes(),
    )
    .unwrap();
    assert_eq!(code, 202);
    let synced = run.wait_event("the sync that left b", |e| {
        e["kind"] == "synced" && has(&e["orphaned"], "ConfigMap/")
    });
    assert!(has(&synced["orphaned"], "/b"), "{synced}");
    assert!(
        cluster.get("configmaps", &ns, "b").is_some(),
        "prune is off"
    );
    // /status, status and diff: OutOfSync, b requires pruning.
    let st = status(&run);
    assert_eq!(st[0]["sync"], "OutOfSync", "{st}");
    assert_eq!(
        st[0]["outOfSync"],
        serde_json::json!([{"object": format!("ConfigMap/{ns}/b"), "fields": ["(requires pruning)"]}]),
        "{st}"
    );
    let dw = |args: &[&str]| common::on_cluster(&conf, &state, &cluster.kubeconfig, args);
    let (code, out, _) = dw(&["status", "-o", "json"]);
    assert_eq!(code, 2, "{out}");
    let listed: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(listed[0]["sync"], "OutOfSync");
    assert_eq!(listed[0]["outOfSync"], 1);
    let (code, out, _) = dw(&["diff", "shop", "-o", "json"]);
    assert_eq!(code, 2, "{out}");
    let diffs: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(diffs[0]["object"], format!("ConfigMap/{ns}/b"));
    assert_eq!(diffs[0]["requiresPruning"], true);
    if cluster.is_real() {
        eventually("a RequiresPruning warning on b", || {
            cluster
                .events_on(&ns, "b")
                .iter()
                .any(|(reason, by, _)| reason == "RequiresPruning" && by == "driftwatch")
        });
    }
    assert!(run.stop().success());
}

#[test]
fn a_key_added_to_an_atomic_map_is_healed() {
    // The local comparison of the fields Git sets sees nothing when someone adds a key to a
    // Service's selector (an atomic map: a re-apply replaces it whole); the healer asks the
    // server, which says a sync would change it, and heals it like any manual change.
    let dir = TempDir::new("gitops-atomic");
    let cluster = Cluster::new(dir.path());
    if !cluster.is_real() {
        // The fake's server-side apply merges maps; it cannot answer this question.
        eprintln!(
            "skipped: needs a real API server (DRIFTWATCH_E2E_KUBECONFIG); scripts/test starts one"
        );
        return;
    }
    let ns = cluster.unique_namespace("atomic");
    cluster.create_namespace(&ns);
    let service = format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  namespace: {ns}\nspec:\n  selector:\n    app: web\n  ports:\n  - name: http\n    port: 80\n"
    );
    let repo = BareRepo::new(&[("apps/shop/service.yaml", &service)]);
    let conf = shop_config(&dir, &repo, &ns, "{selfHeal: true}");
    let run = Running::on(&conf, &dir.path().join("state"), &cluster);
    run.synced("shop");
    cluster.patch(
        "services",
        &ns,
        "web",
        "/spec/selector",
        serde_json::json!({"app": "web", "tier": "canary"}),
    );
    let healed = run.wait_event("the widened selector healed", |e| e["kind"] == "healed");
    assert!(has(&healed["fields"], "spec.selector.tier"), "{healed}");
    assert!(has(&healed["managers"], "kubectl-patch"), "{healed}");
    eventually("the selector as Git says", || {
        cluster.get("services", &ns, "web").unwrap()["spec"]["selector"]
            == serde_json::json!({"app": "web"})
    });
    eventually("Synced", || status(&run)[0]["sync"] == "Synced");
    // Whoever looks at the Service is told what happened to their change.
    eventually("a Healed event on the Service", || {
        cluster
            .events_on(&ns, "web")
            .iter()
            .any(|(reason, by, note)| {
                reason == "Healed" && by == "driftwatch" && note.contains("spec.selector.tier")
            })
    });
    assert!(run.stop().success());
}
