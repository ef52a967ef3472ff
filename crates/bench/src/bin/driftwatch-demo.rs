//! `scripts/demo`: the main job on its embedded default. A throwaway real registry and Git
//! repository, example images pushed to it, and driftwatch finding and fixing the drift — the
//! scenarios of the workflow document, narrated.
//!
//! Every step's heading says what the demo then checks (an exit code, a commit, a file's
//! value, what the cluster runs); when a check fails, the demo stops with exit code 101 and
//! names the step, so a passing run means every claim it printed held.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use driftwatch_testkit::TempDir;
use driftwatch_testkit::git::{BareRepo, git};
use driftwatch_testkit::http::request;
use driftwatch_testkit::kube::Cluster;
use driftwatch_testkit::registry::{Auth, Registry};

/// The heading of the step running now, named when the demo fails.
static STEP: Mutex<String> = Mutex::new(String::new());

fn driftwatch() -> PathBuf {
    std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .join("driftwatch")
}

fn step(start: Instant, text: &str) {
    *STEP.lock().unwrap() = text.to_owned();
    println!(
        "\n\x1b[1m[{:>6.2}s] {text}\x1b[0m",
        start.elapsed().as_secs_f64()
    );
}

/// Checks one claim of the current step. A failure panics (so the background service is
/// still stopped by its guard); the panic hook names the step.
fn check(ok: bool, claim: &str) {
    assert!(ok, "{claim}: not so");
    println!("\x1b[32m✓\x1b[0m {claim}");
}

/// The background `driftwatch run`: stopped with SIGTERM when the demo ends, even by a panic.
struct Service(std::process::Child);

impl Drop for Service {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.0.id().to_string()).status();
        let _ = self.0.wait();
    }
}

/// Runs driftwatch with its output shown, returning the exit code.
fn show(args: &[String]) -> i32 {
    println!("$ driftwatch {}", args.join(" "));
    let status = Command::new(driftwatch()).args(args).status().unwrap();
    status.code().unwrap_or(1)
}

/// `check -o json`, quietly: (application, image) → (verdict, registry's best).
fn verdicts(args: &[String]) -> BTreeMap<(String, String), (String, String)> {
    let out = Command::new(driftwatch())
        .args(args)
        .args(["-o", "json"])
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "check -o json gave no report ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    report["images"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|l| {
            let s = |k: &str| l[k].as_str().unwrap_or_default().to_owned();
            ((s("app"), s("image")), (s("status"), s("registry")))
        })
        .collect()
}

fn main() {
    std::panic::set_hook(Box::new(|info| {
        let step = STEP.lock().map(|s| s.clone()).unwrap_or_default();
        let why = info
            .payload()
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| {
                info.payload()
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
            })
            .unwrap_or_default();
        eprintln!("\n\x1b[1;31mdemo FAILED in step \"{step}\": {why}\x1b[0m");
    }));
    let t0 = Instant::now();
    step(
        t0,
        "0. Starting a real registry (Debian's docker-registry) and a Git repository",
    );
    let reg = Registry::start(Auth::None);
    let host = reg.host();
    // Git starts where the registry is: each image at its policy's best tag.
    let base = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- deployment.yaml\nimages:\n- name: backend\n  newName: REG/shop/backend\n  newTag: v1.0.5\n- name: frontend\n  newName: REG/shop/frontend\n  newTag: v2.5.0\n".replace("REG", &host);
    let prod = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- ../../base\nimages:\n- name: REG/shop/backend # the base already renamed it\n  newTag: v1.0.5 # production: patches only\n".replace("REG", &host);
    let repo = BareRepo::new(&[
        ("manifests/base/kustomization.yaml", &base),
        (
            "manifests/base/deployment.yaml",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: backend\nspec:\n  replicas: 2\n  selector:\n    matchLabels:\n      app: backend\n  template:\n    metadata:\n      labels:\n        app: backend\n    spec:\n      containers:\n      - name: backend\n        image: backend\n",
        ),
        ("manifests/overlays/production/kustomization.yaml", &prod),
    ]);
    println!("registry:   http://{host}");
    println!("repository: {}", repo.file_url());
    for (image, tag) in [
        ("shop/backend", "v1.0.0"),
        ("shop/backend", "v1.0.5"),
        ("shop/frontend", "v2.5.0"),
    ] {
        reg.push_image(image, tag, "2026-11-20T10:00:00Z");
        println!("pushed {host}/{image}:{tag}");
    }

    let dir = TempDir::new("demo");
    // The real control plane scripts/demo starts when ../shared/kube has it (through
    // DRIFTWATCH_E2E_KUBECONFIG); otherwise an in-process stand-in serves the Kubernetes API.
    let cluster = Cluster::new(dir.path());
    // On a real server (which may have run the demo before) the demo gets a namespace of its
    // own, deleted when it ends.
    let namespace = if cluster.is_real() {
        let ns = cluster.unique_namespace("driftwatch-demo");
        cluster.create_namespace(&ns);
        ns
    } else {
        "default".to_owned()
    };
    let config = dir.path().join("driftwatch.yaml");
    std::fs::write(
        &config,
        format!(
            r#"applications:
- name: shop
  repo: {repo}
  path: manifests/base
  writeBack: kustomization
  images:
  - image: {host}/shop/backend
    kustomizeName: backend
  - image: {host}/shop/frontend
    kustomizeName: frontend
- name: shop-prod
  repo: {repo}
  path: manifests/overlays/production
  writeBack: kustomization
  images:
  - image: {host}/shop/backend
    constraint: "~1.0"
    allowTags: regexp:^v[0-9]+\.[0-9]+\.[0-9]+$
    ignoreTags: ["*-rc*"]
  sync:
    namespace: NAMESPACE
    automated:
      selfHeal: true
      prune: true
"#,
            repo = repo.file_url()
        )
        .replace("NAMESPACE", &namespace),
    )
    .unwrap();
    println!(
        "\nconfiguration ({}):\n{}",
        config.display(),
        std::fs::read_to_string(&config).unwrap()
    );
    let conf = config.display().to_string();
    let state = dir.path().join("state").display().to_string();
    let args = |cmd: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = cmd.iter().map(|s| (*s).to_owned()).collect();
        v.extend([
            "--config".to_owned(),
            conf.clone(),
            "--state-dir".to_owned(),
            state.clone(),
        ]);
        v
    };
    let run = |cmd: &[&str]| show(&args(cmd));
    let backend = format!("{host}/shop/backend");
    let frontend = format!("{host}/shop/frontend");
    let key = |app: &str, image: &str| (app.to_owned(), image.to_owned());
    let commits = || repo.subjects("main").len();

    step(
        t0,
        "1. Git and the registry agree: every image in sync, nothing drifts (check exits 0)",
    );
    let code = run(&["check"]);
    println!("exit code {code}");
    check(code == 0, "check exited 0");
    let v = verdicts(&args(&["check"]));
    check(
        v.len() == 3 && v.values().all(|(s, _)| s == "in-sync"),
        "all 3 tracked images are in sync",
    );

    step(
        t0,
        "2. CI pushes new builds: backend v1.0.1, v1.0.6, v1.1.0, v2.0.0, an rc, and frontend v2.6.0",
    );
    let pushed = Instant::now();
    for (image, tag) in [
        ("shop/backend", "v1.0.1"),
        ("shop/backend", "v1.0.6"),
        ("shop/backend", "v1.1.0"),
        ("shop/backend", "v2.0.0"),
        ("shop/backend", "v1.0.7-rc1"),
        ("shop/frontend", "v2.6.0"),
    ] {
        reg.push_image(image, tag, "2026-11-25T10:00:00Z");
        println!("pushed {host}/{image}:{tag}");
    }

    step(
        t0,
        "3. The drift report (check exits 2): shop's backend -> v2.0.0 and frontend -> v2.6.0; shop-prod's backend -> v1.0.6 (~1.0, the rc ignored)",
    );
    let code = run(&["check"]);
    println!("exit code {code}");
    check(code == 2, "check exited 2");
    let v = verdicts(&args(&["check"]));
    for (app, image, want) in [
        ("shop", &backend, "v2.0.0"),
        ("shop", &frontend, "v2.6.0"),
        ("shop-prod", &backend, "v1.0.6"),
    ] {
        check(
            v.get(&key(app, image)) == Some(&("update-available".to_owned(), want.to_owned())),
            &format!("{app} {image}: update available, {want}"),
        );
    }

    step(
        t0,
        "4. driftwatch run --once: choose by policy, write back, one commit for the repository (exits 0)",
    );
    let before = Instant::now();
    let code = run(&["run", "--once"]);
    let committed = before.elapsed();
    check(code == 0, "run --once exited 0");
    check(commits() == 2, "one new commit on main");

    step(
        t0,
        "5. The commit it made: two files; base backend v2.0.0, frontend v2.6.0; production v1.0.6, its comments kept",
    );
    println!(
        "{}",
        git(
            &repo.path,
            &[
                "log",
                "-1",
                "--stat",
                "--format=commit %H%nAuthor: %an <%ae>%n%n%B",
                "main"
            ]
        )
    );
    println!("{}", git(&repo.path, &["show", "--format=", "main"]));
    let changed = git(&repo.path, &["show", "--name-only", "--format=", "main"]);
    check(changed.lines().count() == 2, "two files changed");
    let base_now = repo.show("main", "manifests/base/kustomization.yaml");
    check(
        base_now == base.replace("v1.0.5", "v2.0.0").replace("v2.5.0", "v2.6.0"),
        "base: backend v2.0.0, frontend v2.6.0, nothing else changed",
    );
    let prod_now = repo.show("main", "manifests/overlays/production/kustomization.yaml");
    check(
        prod_now == prod.replace("v1.0.5", "v1.0.6"),
        "production: backend v1.0.6, comments and all else unchanged",
    );

    step(
        t0,
        "6. Running again changes nothing: run --once makes no commit, check exits 0",
    );
    let code = run(&["run", "--once"]);
    check(code == 0, "run --once exited 0");
    let code = run(&["check"]);
    println!("exit code {code}; commits on main: {}", commits());
    check(code == 0, "check exited 0");
    check(commits() == 2, "no new commit");

    step(
        t0,
        "7. Git → cluster: `driftwatch run --kubeconfig` syncs shop-prod (automated, self-heal, prune); the live Deployment runs backend v1.0.6",
    );
    println!(
        "cluster: {}",
        if cluster.fake.is_some() {
            "the in-process API server stand-in (no Kubernetes binaries in ../shared/kube or DRIFTWATCH_KUBE_BIN)"
        } else {
            "a real Kubernetes v1.28 API server (etcd, kube-apiserver, kube-controller-manager on loopback)"
        }
    );
    let port = driftwatch_testkit::free_port();
    let listen = format!("127.0.0.1:{port}");
    let kubeconfig = cluster.kubeconfig.display().to_string();
    let mut a = args(&["run"]);
    a.extend(
        [
            "--kubeconfig",
            &kubeconfig,
            "--listen",
            &listen,
            "--webhook-secret-env",
            "DEMO_SECRET",
            "--interval",
            "3600",
        ]
        .map(str::to_owned),
    );
    println!("$ driftwatch {}", a.join(" "));
    let mut child = Command::new(driftwatch())
        .args(&a)
        .env("DEMO_SECRET", "demo")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Its log, indented, so the two voices stay apart.
    let log = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(log).lines().map_while(Result::ok) {
            println!("    | {line}");
        }
    });
    let service = Service(child);
    let base_url = format!("http://{listen}");
    let image_live = || {
        cluster
            .get("deployments", &namespace, "backend")
            .and_then(|d| {
                d["spec"]["template"]["spec"]["containers"][0]["image"]
                    .as_str()
                    .map(str::to_owned)
            })
    };
    let wait = |what: &str, f: &dyn Fn() -> bool| {
        let started = Instant::now();
        while !f() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "not within 30 s: {what}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    let want = format!("{backend}:v1.0.6");
    wait("the first sync", &|| image_live().is_some());
    println!(
        "live Deployment/backend runs {}",
        image_live().unwrap_or_default()
    );
    check(
        image_live().as_deref() == Some(want.as_str()),
        &format!("the live Deployment runs {want}"),
    );

    step(
        t0,
        "8. CI pushes backend v1.0.8 and the registry calls the webhook (202): Git says v1.0.8, then the cluster runs it",
    );
    let digest = reg.push_image("shop/backend", "v1.0.8", "2026-11-25T11:00:00Z");
    let body = reg.push_event("shop/backend", &digest, "v1.0.8");
    let sent = Instant::now();
    let (code, _, _) = request(
        "POST",
        &format!("{base_url}/webhook/distribution"),
        &[("Authorization", "Bearer demo")],
        body.as_bytes(),
    )
    .unwrap();
    println!("POST /webhook/distribution -> {code}");
    check(code == 202, "the webhook was accepted (202)");
    let want = format!("{backend}:v1.0.8");
    wait("v1.0.8 in the cluster", &|| {
        image_live().as_deref() == Some(want.as_str())
    });
    let push_to_deploy = sent.elapsed();
    println!(
        "live Deployment/backend runs {} — {:.0} ms after the push",
        image_live().unwrap_or_default(),
        push_to_deploy.as_secs_f64() * 1000.0
    );
    check(
        repo.show("main", "manifests/overlays/production/kustomization.yaml")
            .contains("newTag: v1.0.8 # production: patches only"),
        "Git's production overlay says v1.0.8",
    );
    check(
        image_live().as_deref() == Some(want.as_str()),
        &format!("the live Deployment runs {want}"),
    );

    step(
        t0,
        "9. Someone runs `kubectl set image deployment/backend backend=wrong-image:v99`: healed back to v1.0.8 from the watch event, one heal counted in /metrics",
    );
    let changed = Instant::now();
    cluster.set_image(&namespace, "backend", "backend", "wrong-image:v99");
    wait("healed", &|| image_live().as_deref() == Some(want.as_str()));
    let healed = changed.elapsed();
    println!(
        "healed in {:.0} ms: live Deployment/backend runs {}",
        healed.as_secs_f64() * 1000.0,
        image_live().unwrap_or_default()
    );
    check(
        image_live().as_deref() == Some(want.as_str()),
        &format!("the live Deployment runs {want} again"),
    );
    let (_, _, metrics) = request("GET", &format!("{base_url}/metrics"), &[], b"").unwrap();
    let heals = String::from_utf8_lossy(&metrics)
        .lines()
        .find_map(|l| l.strip_prefix("driftwatch_heals_total "))
        .and_then(|n| n.trim().parse::<f64>().ok());
    println!("driftwatch_heals_total {}", heals.unwrap_or(0.0));
    check(heals == Some(1.0), "one heal counted in /metrics");

    step(
        t0,
        "10. Status of every application, as /status serves it: shop-prod Synced at Git's head",
    );
    let (code, _, status) = request("GET", &format!("{base_url}/status"), &[], b"").unwrap();
    check(code == 200, "GET /status answered 200");
    let status: serde_json::Value = serde_json::from_slice(&status).unwrap();
    println!("{}", serde_json::to_string_pretty(&status).unwrap());
    let head = git(&repo.path, &["rev-parse", "main"]);
    let prod_status = status
        .as_array()
        .and_then(|apps| apps.iter().find(|a| a["app"] == "shop-prod"))
        .cloned()
        .unwrap_or_default();
    check(prod_status["sync"] == "Synced", "shop-prod is Synced");
    check(
        prod_status["revision"]
            .as_str()
            .is_some_and(|r| !r.is_empty() && head.trim().starts_with(r)),
        "at Git's head",
    );
    drop(service);

    step(
        t0,
        "11. The three-way report: registry ↔ Git ↔ cluster all agree (check --kubeconfig exits 0)",
    );
    let mut a = args(&["check"]);
    a.extend(["--kubeconfig".to_owned(), kubeconfig.clone()]);
    let code = show(&a);
    println!("exit code {code}");
    check(code == 0, "check --kubeconfig exited 0");

    step(t0, "Timeline of the change");
    println!("  images pushed            t = 0");
    println!(
        "  drift found and commit pushed by one `run --once`: {:.0} ms (started {:.1} s after the push, by this script)",
        committed.as_secs_f64() * 1000.0,
        (before - pushed).as_secs_f64()
    );
    println!(
        "  registry webhook -> new image applied to the cluster: {:.0} ms (measured above)",
        push_to_deploy.as_secs_f64() * 1000.0
    );
    println!(
        "  the workflow document's pair (updater 2-minute poll, Argo CD 3-minute refresh): ~125 s to commit and ~165 s to live by its timeline — the document's figures, not measured here"
    );
    *STEP.lock().unwrap() = String::new();
    println!("\n\x1b[1;32mdemo passed: every step's check held\x1b[0m");
}
