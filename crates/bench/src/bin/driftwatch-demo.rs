//! `scripts/demo`: the main job on its embedded default. A throwaway real registry and Git
//! repository, example images pushed to it, and driftwatch finding and fixing the drift — the
//! scenarios of the workflow document, narrated.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use driftwatch_testkit::TempDir;
use driftwatch_testkit::git::{BareRepo, git};
use driftwatch_testkit::http::request;
use driftwatch_testkit::kube::Cluster;
use driftwatch_testkit::registry::{Auth, Registry};

fn driftwatch() -> PathBuf {
    std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .join("driftwatch")
}

fn step(start: Instant, text: &str) {
    println!(
        "\n\x1b[1m[{:>6.2}s] {text}\x1b[0m",
        start.elapsed().as_secs_f64()
    );
}

/// The background `driftwatch run`: stopped with SIGTERM when the demo ends, even by a panic.
struct Service(std::process::Child);

impl Drop for Service {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.0.id().to_string()).status();
        let _ = self.0.wait();
    }
}

fn show(args: &[&str]) -> i32 {
    println!("$ driftwatch {}", args.join(" "));
    let status = Command::new(driftwatch()).args(args).status().unwrap();
    status.code().unwrap_or(1)
}

fn main() {
    let t0 = Instant::now();
    step(
        t0,
        "Starting a real registry (Debian's docker-registry) and a Git repository",
    );
    let reg = Registry::start(Auth::None);
    let host = reg.host();
    let base = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- deployment.yaml\nimages:\n- name: backend\n  newName: REG/shop/backend\n  newTag: v1.0.0\n- name: frontend\n  newName: REG/shop/frontend\n  newTag: v2.5.0\n".replace("REG", &host);
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
    // The Kubernetes API server cannot run on this machine: an in-process stand-in serves the
    // same API (a real cluster is used instead when DRIFTWATCH_E2E_KUBECONFIG names one).
    let cluster = Cluster::new(dir.path());
    let namespace = "default".to_owned();
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
    let args = |cmd: &[&'static str]| -> Vec<String> {
        let mut v: Vec<String> = cmd.iter().map(|s| (*s).to_owned()).collect();
        v.extend([
            "--config".to_owned(),
            conf.clone(),
            "--state-dir".to_owned(),
            state.clone(),
        ]);
        v
    };
    let run = |cmd: &[&'static str]| {
        let a = args(cmd);
        let refs: Vec<&str> = a.iter().map(String::as_str).collect();
        show(&refs)
    };

    step(
        t0,
        "1. Git and the registry agree: nothing drifts (exit code 0)",
    );
    let code = run(&["check"]);
    println!("exit code {code}");

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
        "3. The drift report: registry ↔ Git, per image (exit code 2: drift)",
    );
    let code = run(&["check"]);
    println!("exit code {code}");

    step(
        t0,
        "4. driftwatch run --once: choose by policy, write back, one commit for the repository",
    );
    let before = Instant::now();
    run(&["run", "--once"]);
    let committed = before.elapsed();

    step(t0, "5. The commit it made");
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

    step(
        t0,
        "6. Running again changes nothing: no commit, nothing drifts",
    );
    run(&["run", "--once"]);
    let code = run(&["check"]);
    println!(
        "exit code {code}; commits on main: {}",
        repo.subjects("main").len()
    );

    step(
        t0,
        "7. Git → cluster: `driftwatch run --kubeconfig` syncs shop-prod (automated, self-heal, prune)",
    );
    println!(
        "cluster: {}",
        if cluster.fake.is_some() {
            "the in-process API server stand-in (set DRIFTWATCH_E2E_KUBECONFIG for a real one)"
        } else {
            "the real API server of DRIFTWATCH_E2E_KUBECONFIG"
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
            assert!(started.elapsed().as_secs() < 30, "never: {what}");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        started.elapsed()
    };
    wait("the first sync", &|| image_live().is_some());
    println!(
        "live Deployment/backend runs {}",
        image_live().unwrap_or_default()
    );

    step(
        t0,
        "8. CI pushes backend v1.0.8 and the registry calls the webhook: commit, then the cluster",
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
    let want = format!("{host}/shop/backend:v1.0.8");
    wait("v1.0.8 in the cluster", &|| {
        image_live().as_deref() == Some(want.as_str())
    });
    let push_to_deploy = sent.elapsed();
    println!(
        "live Deployment/backend runs {} — {:.0} ms after the push",
        image_live().unwrap_or_default(),
        push_to_deploy.as_secs_f64() * 1000.0
    );

    step(
        t0,
        "9. Someone runs `kubectl set image deployment/backend backend=wrong-image:v99`",
    );
    let changed = Instant::now();
    cluster.set_image(&namespace, "backend", "backend", "wrong-image:v99");
    let healed = wait("healed", &|| image_live().as_deref() == Some(want.as_str()));
    println!(
        "healed from the watch event in {:.0} ms: live Deployment/backend runs {}",
        healed.as_secs_f64().max(changed.elapsed().as_secs_f64()) * 1000.0,
        image_live().unwrap_or_default()
    );

    step(t0, "10. Status of every application, as /status serves it");
    let (_, _, status) = request("GET", &format!("{base_url}/status"), &[], b"").unwrap();
    let status: serde_json::Value = serde_json::from_slice(&status).unwrap();
    println!("{}", serde_json::to_string_pretty(&status).unwrap());
    drop(service);

    step(
        t0,
        "11. The three-way report: registry ↔ Git ↔ cluster (exit code 0: all agree)",
    );
    let mut a = args(&["check"]);
    a.extend(["--kubeconfig".to_owned(), kubeconfig.clone()]);
    let refs: Vec<&str> = a.iter().map(String::as_str).collect();
    let code = show(&refs);
    println!("exit code {code}");

    step(t0, "Timeline of the change");
    println!("  images pushed            t = 0");
    println!(
        "  drift found and commit pushed by one `run --once`: {:.0} ms (started {:.1} s after the push, by this script)",
        committed.as_secs_f64() * 1000.0,
        (before - pushed).as_secs_f64()
    );
    println!(
        "  registry webhook -> new image applied to the cluster: {:.0} ms",
        push_to_deploy.as_secs_f64() * 1000.0
    );
    println!(
        "  the workflow document's pair (updater 2-minute poll, Argo CD 3-minute refresh) takes minutes"
    );
}
