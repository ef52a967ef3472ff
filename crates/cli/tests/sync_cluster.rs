//! `driftwatch sync` and `driftwatch diff` against an API server: the in-process fake by
//! default, a real one when `DRIFTWATCH_E2E_KUBECONFIG` names a kubeconfig. The workflow's
//! manual change (`kubectl set image deployment/backend backend=wrong-image:v99`) is reported
//! and healed; prune removes only what this application applied, and never everything.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use driftwatch_testkit::TempDir;
use driftwatch_testkit::git::BareRepo;
use driftwatch_testkit::kube::Cluster;

fn deploy(ns: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: backend\n  namespace: {ns}\nspec:\n  replicas: 1\n  selector:\n    matchLabels:\n      app: backend\n  template:\n    metadata:\n      labels:\n        app: backend\n    spec:\n      containers:\n      - name: backend\n        image: registry.local/backend:v1.0.1\n"
    )
}

#[test]
fn sync_heals_and_prunes() {
    let dir = TempDir::new("sync");
    let cluster = Cluster::new(dir.path());
    let ns = format!("dw-e2e-{}", std::process::id());
    cluster.cleanup_namespace(&ns);
    let namespace = format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n");
    let cm = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: {ns}\ndata:\n  mode: fast\n"
    );
    let repo = BareRepo::new(&[
        ("apps/shop/namespace.yaml", &namespace),
        ("apps/shop/deployment.yaml", &deploy(&ns)),
        ("apps/shop/configmap.yaml", &cm),
    ]);
    let conf = dir.path().join("driftwatch.yaml");
    std::fs::write(
        &conf,
        format!("applications:\n- name: shop\n  repo: {}\n  path: apps/shop\n  writeBack: manifests:deployment.yaml\n  images:\n  - image: registry.local/backend\n", repo.file_url()),
    )
    .unwrap();
    let state = dir.path().join("state");
    let dw = |args: &[&str]| common::on_cluster(&conf, &state, &cluster.kubeconfig, args);

    let (code, out, err) = dw(&["sync", "shop"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("3 applied"), "{out}");
    let live = cluster.get("deployments", &ns, "backend").unwrap();
    assert_eq!(live["metadata"]["labels"]["driftwatch.io/app"], "shop");
    assert!(
        live["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["manager"] == "driftwatch" && m["operation"] == "Apply"),
        "applied server-side as driftwatch: {live}"
    );
    let (code, out, _) = dw(&["diff", "shop"]);
    assert_eq!(code, 0, "{out}");
    let (code, out, _) = dw(&["sync", "shop"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("0 applied, 3 unchanged"),
        "nothing to do twice: {out}"
    );

    // No kubelet (fake or real test server): the rollout never finishes, and says so.
    let (code, out, _) = dw(&["sync", "shop", "--wait", "1"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("shop: Progressing (still Progressing after 1 s"),
        "{out}"
    );

    let hist = Command::new(env!("CARGO_BIN_EXE_driftwatch"))
        .args(["history", "shop", "--syncs", "-o", "json", "--state-dir"])
        .arg(&state)
        .output()
        .unwrap();
    let syncs: serde_json::Value = serde_json::from_slice(&hist.stdout).unwrap();
    assert_eq!(syncs[0]["health"], "Progressing");
    assert_eq!(syncs.as_array().unwrap().len(), 3, "every sync is recorded");

    let (code, out, _) = dw(&["status", "-o", "json"]);
    assert_eq!(code, 0, "{out}");
    let status: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(status[0]["sync"], "Synced");

    // The workflow's manual change is reported, naming who made it, and healed.
    cluster.set_image(&ns, "backend", "backend", "wrong-image:v99");
    let (code, out, _) = dw(&["status"]);
    assert_eq!(code, 2);
    assert!(out.contains("OutOfSync"), "{out}");
    let (code, out, _) = dw(&["diff", "shop"]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("wrong-image:v99") && out.contains("containers[name=backend].image"),
        "{out}"
    );
    assert!(out.contains("kubectl-set"), "{out}");
    let (code, out, _) = dw(&["sync", "shop"]);
    assert_eq!(code, 0);
    assert!(
        out.contains(&format!("applied Deployment/{ns}/backend")),
        "{out}"
    );
    let (code, out, _) = dw(&["diff", "shop"]);
    assert_eq!(code, 0, "healed: {out}");

    // The ConfigMap leaves Git: kept without --prune, deleted with it.
    repo.commit_elsewhere("apps/shop/configmap.yaml", "", "remove the configmap");
    let (code, out, _) = dw(&["sync", "shop"]);
    assert_eq!(code, 0);
    assert!(
        out.contains(&format!("left ConfigMap/{ns}/settings")),
        "{out}"
    );
    // Left behind, it requires pruning: diff and status say so, as Argo CD does.
    let (code, out, _) = dw(&["diff", "shop"]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains(&format!("ConfigMap/{ns}/settings: requires pruning")),
        "{out}"
    );
    let (code, out, _) = dw(&["status", "-o", "json"]);
    assert_eq!(code, 2, "{out}");
    let status: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(status[0]["sync"], "OutOfSync", "{status}");
    let (code, out, _) = dw(&["sync", "shop", "--prune"]);
    assert_eq!(code, 0);
    assert!(
        out.contains(&format!("pruned ConfigMap/{ns}/settings")),
        "{out}"
    );
    assert!(cluster.get("configmaps", &ns, "settings").is_none());
    assert!(cluster.get("deployments", &ns, "backend").is_some());
    assert_eq!(dw(&["diff", "shop"]).0, 0, "nothing left to prune");

    // Roll back through Git to the first revision: a new commit brings the ConfigMap back.
    let first = driftwatch_testkit::git::git(&repo.path, &["rev-list", "--max-parents=0", "main"]);
    let out = Command::new(env!("CARGO_BIN_EXE_driftwatch"))
        .args(["rollback", "shop", first.trim(), "--config"])
        .arg(&conf)
        .arg("--state-dir")
        .arg(&state)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("rolled back"));
    assert_eq!(repo.show("main", "apps/shop/configmap.yaml"), cm);
    assert!(repo.subjects("main")[0].starts_with("rollback: shop to "));
    let (code, out, _) = dw(&["sync", "shop"]);
    assert_eq!(code, 0);
    assert!(
        out.contains(&format!("applied ConfigMap/{ns}/settings")),
        "{out}"
    );
}

#[test]
fn prune_never_deletes_everything_by_accident() {
    let dir = TempDir::new("sync-empty");
    let cluster = Cluster::new(dir.path());
    let ns = format!("dw-e2e-empty-{}", std::process::id());
    cluster.cleanup_namespace(&ns);
    let repo = BareRepo::new(&[
        (
            "apps/x/namespace.yaml",
            &format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n"),
        ),
        (
            "apps/x/cm.yaml",
            &format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  namespace: {ns}\n"),
        ),
    ]);
    let conf = dir.path().join("driftwatch.yaml");
    std::fs::write(&conf, format!("applications:\n- name: x\n  repo: {}\n  path: apps/x\n  writeBack: manifests:cm.yaml\n  images:\n  - image: a/b\n", repo.file_url())).unwrap();
    let state = dir.path().join("state");
    let sync = |extra: &[&str]| {
        let args: Vec<&str> = ["sync", "x", "--prune"]
            .into_iter()
            .chain(extra.iter().copied())
            .collect();
        let (code, out, err) = common::on_cluster(&conf, &state, &cluster.kubeconfig, &args);
        (code, out + &err)
    };
    assert_eq!(sync(&[]).0, 0);
    repo.commit_elsewhere("apps/x/cm.yaml", "", "empty");
    repo.commit_elsewhere("apps/x/namespace.yaml", "", "empty");
    let (code, out) = sync(&[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("refusing to prune everything"), "{out}");
    assert!(
        cluster.get("configmaps", &ns, "c").is_some(),
        "nothing deleted"
    );
}

/// `driftwatch sync shop --self-heal` running, and a function returning its next stdout line
/// that contains any of the needles given (panics after 20 s without one).
fn self_heal(
    conf: &std::path::Path,
    state: &std::path::Path,
    kubeconfig: &std::path::Path,
) -> (std::process::Child, impl Fn(&[&str]) -> String + use<>) {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_driftwatch"))
        .args(["sync", "shop", "--self-heal", "--config"])
        .arg(conf)
        .arg("--state-dir")
        .arg(state)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let next = move |needles: &[&str]| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if needles.iter().any(|n| line.contains(n)) => return line,
                Ok(_) => {}
                Err(_) => panic!("no line with {needles:?}"),
            }
        }
    };
    (child, next)
}

#[test]
fn self_heal_on_watch_events_and_stop_fighting() {
    let dir = TempDir::new("heal");
    let cluster = Cluster::new(dir.path());
    let ns = cluster.unique_namespace("shop");
    cluster.create_namespace(&ns);
    let repo = BareRepo::new(&[("apps/shop/deployment.yaml", &deploy(&ns))]);
    let conf = dir.path().join("driftwatch.yaml");
    std::fs::write(
        &conf,
        format!("applications:\n- name: shop\n  repo: {}\n  path: apps/shop\n  writeBack: manifests:deployment.yaml\n  images:\n  - image: registry.local/backend\n", repo.file_url()),
    )
    .unwrap();
    let (mut child, next) = self_heal(&conf, &dir.path().join("state"), &cluster.kubeconfig);
    next(&["synced to"]);
    let image = || {
        cluster.get("deployments", &ns, "backend").unwrap()["spec"]["template"]["spec"]
            ["containers"][0]["image"]
            .clone()
    };

    // A change made before the watch is up is found by its first list; after, by its event:
    // either way it is healed, naming who made it.
    let changed = std::time::Instant::now();
    cluster.set_image(&ns, "backend", "backend", "wrong-image:v99");
    let healed = next(&["healed Deployment/"]);
    assert!(healed.contains("kubectl-set"), "{healed}");
    assert_eq!(image(), "registry.local/backend:v1.0.1");
    assert!(changed.elapsed() < std::time::Duration::from_secs(5));

    // Someone keeps writing it back: each write is healed until healing stops and says who.
    let mut fight = None;
    for _ in 0..12 {
        cluster.set_image(&ns, "backend", "backend", "wrong-image:v99");
        let line = next(&["healed Deployment/", "Degraded"]);
        if line.contains("Degraded") {
            fight = Some(line);
            break;
        }
    }
    let fight = fight.expect("the fight was never detected");
    assert!(fight.contains("kubectl-set"), "{fight}");
    assert_eq!(image(), "wrong-image:v99", "the other writer's value stays");
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
}

#[test]
fn what_the_server_drops_is_no_drift_to_diff_status_or_sync() {
    // A template that renders an empty string (`hostname: ""`): the API server drops it, so
    // the local comparison sees a difference that a sync would not change. The server's dry
    // run of exactly what a sync applies (the application's label included) decides, and
    // `diff`, `status` and `sync` agree on it.
    let dir = TempDir::new("sync-dropped");
    let cluster = Cluster::new(dir.path());
    let ns = cluster.unique_namespace("dropped");
    cluster.create_namespace(&ns);
    let deployment = deploy(&ns).replace(
        "    spec:\n      containers:",
        "    spec:\n      hostname: \"\"\n      containers:",
    );
    assert!(deployment.contains("hostname"));
    let repo = BareRepo::new(&[("apps/shop/deployment.yaml", &deployment)]);
    let conf = dir.path().join("driftwatch.yaml");
    std::fs::write(
        &conf,
        format!(
            "applications:\n- name: shop\n  repo: {}\n  path: apps/shop\n  sync:\n    namespace: {ns}\n",
            repo.file_url()
        ),
    )
    .unwrap();
    let state = dir.path().join("state");
    let dw = |args: &[&str]| common::on_cluster(&conf, &state, &cluster.kubeconfig, args);

    let (code, out, err) = dw(&["sync", "shop"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("1 applied"), "{out}");
    let (code, out, err) = dw(&["diff", "shop"]);
    assert_eq!(code, 0, "diff: {out}{err}");
    let (code, out, err) = dw(&["status", "-o", "json"]);
    assert_eq!(code, 0, "status: {out}{err}");
    let status: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(status[0]["sync"], "Synced", "{status}");
    for extra in [&[][..], &["--dry-run"][..]] {
        let args: Vec<&str> = ["sync", "shop"].iter().chain(extra).copied().collect();
        let (code, out, err) = dw(&args);
        assert_eq!(code, 0, "{out}{err}");
        assert!(out.contains("0 applied, 1 unchanged"), "{extra:?}: {out}");
    }

    // A real change is still one, to all three.
    cluster.set_image(&ns, "backend", "backend", "wrong-image:v99");
    assert_eq!(dw(&["diff", "shop"]).0, 2);
    assert_eq!(dw(&["status"]).0, 2);
    let (code, out, _) = dw(&["sync", "shop", "--dry-run"]);
    assert_eq!(code, 0);
    assert!(out.contains("would apply Deployment/"), "{out}");
}

#[test]
fn what_an_apply_would_change_is_drift_even_where_git_sets_nothing() {
    // Two differences a comparison of the fields Git sets cannot see: a key added to an atomic
    // map (a Service's selector: a re-apply replaces the whole map) and a field an earlier
    // revision applied that Git has since dropped (a sync removes it). diff and status report
    // them; sync puts them right.
    let dir = TempDir::new("sync-unseen");
    let cluster = Cluster::new(dir.path());
    // The fake does not know atomic maps: the selector half needs the real server.
    let atomic = cluster.is_real();
    if !atomic {
        eprintln!("atomic maps skipped: they need a real API server (DRIFTWATCH_E2E_KUBECONFIG)");
    }
    let ns = cluster.unique_namespace("unseen");
    cluster.create_namespace(&ns);
    let service = format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  namespace: {ns}\nspec:\n  selector:\n    app: web\n  ports:\n  - name: http\n    port: 80\n"
    );
    let settings = |extra: &str| {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: {ns}\ndata:\n  mode: fast\n{extra}"
        )
    };
    let repo = BareRepo::new(&[
        ("apps/web/service.yaml", &service),
        ("apps/web/settings.yaml", &settings("  debug: \"true\"\n")),
    ]);
    let conf = dir.path().join("driftwatch.yaml");
    std::fs::write(
        &conf,
        format!(
            "applications:\n- name: web\n  repo: {}\n  path: apps/web\n  sync:\n    namespace: {ns}\n",
            repo.file_url()
        ),
    )
    .unwrap();
    let state = dir.path().join("state");
    let dw = |args: &[&str]| common::on_cluster(&conf, &state, &cluster.kubeconfig, args);
    assert_eq!(dw(&["sync", "web"]).0, 0);
    assert_eq!(dw(&["diff", "web"]).0, 0, "in sync after the sync");

    // Someone widens the selector by hand.
    if atomic {
        cluster.patch(
            "services",
            &ns,
            "web",
            "/spec/selector",
            serde_json::json!({"app": "web", "tier": "canary"}),
        );
        let (code, out, _) = dw(&["diff", "web"]);
        assert_eq!(code, 2, "{out}");
        assert!(out.contains("spec.selector.tier"), "{out}");
        assert!(out.contains("kubectl-patch"), "names who changed it: {out}");
        assert_eq!(dw(&["status"]).0, 2);
    }

    // Git drops a key driftwatch applied before.
    repo.commit_elsewhere("apps/web/settings.yaml", &settings(""), "no debug");
    let (code, out, _) = dw(&["diff", "web"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("data.debug"), "{out}");

    let (code, out, err) = dw(&["sync", "web"]);
    assert_eq!(code, 0, "{out}{err}");
    let applied = if atomic { "2 applied" } else { "1 applied" };
    assert!(out.contains(applied), "{out}");
    assert_eq!(dw(&["diff", "web"]).0, 0, "both put right");
    let selector = cluster.get("services", &ns, "web").unwrap()["spec"]["selector"].clone();
    assert_eq!(selector, serde_json::json!({"app": "web"}));
    let data = cluster.get("configmaps", &ns, "settings").unwrap()["data"].clone();
    assert_eq!(data, serde_json::json!({"mode": "fast"}));
    // Each object applied carries a Kubernetes Event saying so, from driftwatch (the fake has
    // no Events API).
    let events = cluster.events_on(&ns, "settings");
    assert!(
        !cluster.is_real()
            || events.iter().any(|(reason, by, note)| reason == "Synced"
                && by == "driftwatch"
                && note.contains("application web")),
        "{events:?}"
    );
}

#[test]
fn replicas_an_autoscaler_holds_are_reported_never_fought() {
    // Git says 2 replicas; an autoscaler scales the Deployment to 5 through its scale
    // subresource. diff and status report it, naming the autoscaler and what to do; neither a
    // sync nor a heal takes the replicas back; ignoring them makes the application Synced.
    let dir = TempDir::new("sync-held");
    let cluster = Cluster::new(dir.path());
    if !cluster.is_real() {
        // The fake does not model the ownership of fields written through subresources.
        eprintln!(
            "skipped: needs a real API server (DRIFTWATCH_E2E_KUBECONFIG); scripts/test starts one"
        );
        return;
    }
    let ns = cluster.unique_namespace("held");
    cluster.create_namespace(&ns);
    let deployment = deploy(&ns).replace("replicas: 1", "replicas: 2");
    let repo = BareRepo::new(&[("apps/shop/deployment.yaml", &deployment)]);
    let conf = dir.path().join("driftwatch.yaml");
    let config = |ignore: &str| {
        format!(
            "applications:\n- name: shop\n  repo: {}\n  path: apps/shop\n  sync:\n    namespace: {ns}\n{ignore}",
            repo.file_url()
        )
    };
    std::fs::write(&conf, config("")).unwrap();
    let state = dir.path().join("state");
    let dw = |args: &[&str]| common::on_cluster(&conf, &state, &cluster.kubeconfig, args);
    assert_eq!(dw(&["sync", "shop"]).0, 0);
    assert_eq!(dw(&["diff", "shop"]).0, 0, "in sync after the sync");

    cluster.scale_as("autoscaler", &ns, "backend", 5);
    let replicas =
        || cluster.get("deployments", &ns, "backend").unwrap()["spec"]["replicas"].clone();
    let (code, out, err) = dw(&["diff", "shop"]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        out.contains("spec.replicas: git 2 live 5 (held by autoscaler through /scale)"),
        "{out}"
    );
    assert!(
        out.contains("hint: autoscaler holds it through /scale and a sync leaves it")
            && out.contains("managedFieldsManagers [autoscaler]"),
        "{out}"
    );
    let (code, out, _) = dw(&["diff", "shop", "-o", "json"]);
    assert_eq!(code, 2);
    let fields: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(fields[0]["fields"][0]["held"], true, "{fields}");
    assert_eq!(fields[0]["fields"][0]["manager"], "autoscaler", "{fields}");
    let (code, out, _) = dw(&["status", "-o", "json"]);
    assert_eq!(code, 2, "{out}");
    let status: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(status[0]["sync"], "OutOfSync", "{status}");

    // A sync leaves the autoscaler's value.
    let (code, out, err) = dw(&["sync", "shop"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("0 applied, 1 unchanged"), "{out}");
    assert_eq!(replicas(), 5);

    // So does a heal: a manual change after the autoscaler's is healed, its replicas not.
    let (mut child, next) = self_heal(&conf, &state, &cluster.kubeconfig);
    next(&["synced to"]);
    cluster.scale_as("autoscaler", &ns, "backend", 6);
    cluster.set_image(&ns, "backend", "backend", "wrong-image:v99");
    let healed = next(&["healed Deployment/"]);
    assert!(healed.contains("kubectl-set"), "{healed}");
    assert!(!healed.contains("replicas"), "{healed}");
    assert_eq!(replicas(), 6, "the autoscaler's value stays");
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    assert!(child.wait().unwrap().success());

    // Ignored by manager, the application is Synced.
    std::fs::write(
        &conf,
        config("    ignoreDifferences:\n    - kind: Deployment\n      managedFieldsManagers: [autoscaler]\n"),
    )
    .unwrap();
    let (code, out, err) = dw(&["diff", "shop"]);
    assert_eq!(code, 0, "{out}{err}");
}

/// `status --watch` prints the table again when the cluster changes, and only then; with
/// `--count N` it stops after N tables, with the last table's exit code (2: OutOfSync). Its
/// stdout is a pipe, as in CI: tables follow each other after a blank line, with no screen
/// control codes.
#[test]
fn status_watch_prints_a_new_table_when_the_cluster_changes() {
    use std::io::{BufRead, BufReader, Read};
    use std::time::{Duration, Instant};

    let dir = TempDir::new("status-watch");
    let cluster = Cluster::new(dir.path());
    let ns = format!("dw-e2e-watch-{}", std::process::id());
    cluster.cleanup_namespace(&ns);
    let namespace = format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n");
    let repo = BareRepo::new(&[
        ("apps/shop/namespace.yaml", &namespace),
        ("apps/shop/deployment.yaml", &deploy(&ns)),
    ]);
    let conf = dir.path().join("driftwatch.yaml");
    std::fs::write(
        &conf,
        format!("applications:\n- name: shop\n  repo: {}\n  path: apps/shop\n  writeBack: manifests:deployment.yaml\n  images:\n  - image: registry.local/backend\n", repo.file_url()),
    )
    .unwrap();
    let state = dir.path().join("state");
    let (code, out, err) =
        common::on_cluster(&conf, &state, &cluster.kubeconfig, &["sync", "shop"]);
    assert_eq!(code, 0, "{out}{err}");

    let mut child = Command::new(env!("CARGO_BIN_EXE_driftwatch"))
        .args([
            "status",
            "--watch",
            "--interval",
            "1",
            "--count",
            "2",
            "--config",
        ])
        .arg(&conf)
        .arg("--state-dir")
        .arg(&state)
        .arg("--kubeconfig")
        .arg(&cluster.kubeconfig)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    for _ in 0..2 {
        stdout.read_line(&mut first).unwrap();
    }
    assert!(first.starts_with("APP"), "{first}");
    assert!(
        first.contains("shop") && first.contains("Synced"),
        "{first}"
    );

    // The workflow's manual change: the next table says so, and the watch ends there.
    cluster.set_image(&ns, "backend", "backend", "wrong-image:v99");
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("status --watch never printed a second table");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(
        status.code(),
        Some(2),
        "the last table is OutOfSync: {rest}{err}"
    );
    assert!(
        rest.starts_with("\nAPP"),
        "a blank line, then the new table: {rest:?}"
    );
    assert_eq!(
        rest.matches("APP").count(),
        1,
        "unchanged tables are not repeated: {rest}"
    );
    assert!(rest.contains("OutOfSync"), "{rest}");
    assert!(
        !rest.contains('\x1b') && !first.contains('\x1b'),
        "no screen control in a pipe"
    );
}
