//! Promotion between environments, through the binary against a real registry, real Git and
//! the Kubernetes API server (a real one when `DRIFTWATCH_E2E_KUBECONFIG` is set — its
//! controllers roll the Deployments out once the pods report Ready — else the in-process fake,
//! where the test writes the Deployment's status as its controller would). dev follows the
//! registry; staging takes what dev *runs* once dev has run it Synced and Healthy for the soak;
//! prod takes what staging runs. A Degraded staging blocks prod and says why; the soak clock is
//! kept in the state store across restarts.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use driftwatch_testkit::git::BareRepo;
use driftwatch_testkit::http::request;
use driftwatch_testkit::kube::Cluster;
use driftwatch_testkit::registry::{Auth, Registry};
use driftwatch_testkit::{TempDir, free_port, wait_for_port};

const ENVS: [&str; 3] = ["dev", "staging", "prod"];

/// Three applications of one repository, `shop-dev`, `shop-staging` and `shop-prod`, each a
/// Deployment `web` in its own namespace; dev follows the registry, staging promotes from dev
/// and prod from staging (both pinning the digest).
struct Chain {
    dir: TempDir,
    cluster: Cluster,
    reg: Registry,
    repo: BareRepo,
    conf: PathBuf,
    ns: Vec<String>,
}

fn deployment(ns: &str, image: &str, extra: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: {ns}\nspec:\n  replicas: 1\n{extra}  selector:\n    matchLabels:\n      app: web\n  template:\n    metadata:\n      labels:\n        app: web\n    spec:\n      containers:\n      - name: web\n        image: {image}\n"
    )
}

impl Chain {
    /// `soak` for both promotions; `staging_extra` goes into staging's Deployment spec.
    fn new(name: &str, soak: &str, staging_extra: &str) -> Self {
        let dir = TempDir::new(name);
        let cluster = Cluster::new(dir.path());
        let ns: Vec<String> = ENVS
            .iter()
            .map(|e| cluster.unique_namespace(&format!("{name}-{e}")))
            .collect();
        for n in &ns {
            cluster.create_namespace(n);
        }
        let reg = Registry::start(Auth::None);
        reg.push_image("shop/web", "v1.0.0", "2026-11-01T00:00:00Z");
        let image = format!("{}/shop/web:v1.0.0", reg.host());
        let files: Vec<(String, String)> = ENVS
            .iter()
            .zip(&ns)
            .map(|(e, n)| {
                let extra = if *e == "staging" { staging_extra } else { "" };
                (
                    format!("apps/{e}/deployment.yaml"),
                    deployment(n, &image, extra),
                )
            })
            .collect();
        let refs: Vec<(&str, &str)> = files
            .iter()
            .map(|(p, c)| (p.as_str(), c.as_str()))
            .collect();
        let repo = BareRepo::new(&refs);
        let app = |e: &str, n: &str, image: &str| {
            format!(
                "- name: shop-{e}\n  repo: {}\n  path: apps/{e}\n  writeBack: manifests:deployment.yaml\n  sync:\n    namespace: {n}\n    automated: {{}}\n  images:\n  - image: {}/shop/web\n{image}",
                repo.file_url(),
                reg.host()
            )
        };
        let promote = |from: &str| {
            format!("    promote: {{from: {from}, when: healthy, soak: {soak}, pinDigest: true}}\n")
        };
        let conf = dir.path().join("driftwatch.yaml");
        std::fs::write(
            &conf,
            format!(
                "interval: 1h\napplications:\n{}{}{}",
                app("dev", &ns[0], "    strategy: semver\n"),
                app("staging", &ns[1], &promote("shop-dev")),
                app("prod", &ns[2], &promote("shop-staging")),
            ),
        )
        .unwrap();
        Chain {
            dir,
            cluster,
            reg,
            repo,
            conf,
            ns,
        }
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// `driftwatch ARGS --config --state-dir --kubeconfig`.
    fn dw(&self, args: &[&str]) -> (i32, String, String) {
        common::on_cluster(&self.conf, &self.state(), &self.cluster.kubeconfig, args)
    }

    /// One `run --once`: an image cycle, then every application synced.
    fn cycle(&self) {
        let (code, out, err) = self.dw(&["run", "--once"]);
        assert_eq!(code, 0, "{out}{err}");
    }

    /// `check -o json`: the line of application `app`.
    fn line(&self, app: &str) -> serde_json::Value {
        let (_, out, err) = self.dw(&["check", "-o", "json"]);
        let v: serde_json::Value =
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}"));
        v["images"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["app"] == app)
            .cloned()
            .unwrap()
    }

    /// The image environment `env`'s Deployment has in Git.
    fn image_in_git(&self, env: &str) -> String {
        self.repo
            .show("main", &format!("apps/{env}/deployment.yaml"))
            .lines()
            .find_map(|l| l.trim().strip_prefix("image: ").map(str::to_owned))
            .unwrap()
    }

    /// The pods of environment `i` run `image` at `digest` and are Ready; the Deployment's
    /// rollout completes (by its controller on a real server, written here on the fake).
    fn runs_healthy(&self, i: usize, image: &str, digest: &str) {
        let ns = &self.ns[i];
        self.cluster.run_pods(ns, "app=web", "web", image, digest);
        if !self.cluster.is_real() {
            let generation = self.generation(i);
            self.cluster.set_status(
                "deployments",
                ns,
                "web",
                serde_json::json!({"observedGeneration": generation, "replicas": 1, "updatedReplicas": 1, "readyReplicas": 1, "availableReplicas": 1}),
            );
        }
        eventually(&format!("{ns}/web rolled out"), || {
            let d = self.cluster.get("deployments", ns, "web").unwrap();
            let int = |p: &str| d.pointer(p).and_then(serde_json::Value::as_i64);
            int("/status/observedGeneration") == int("/metadata/generation")
                && int("/status/replicas") == Some(1)
                && int("/status/updatedReplicas") == Some(1)
                && int("/status/availableReplicas") == Some(1)
        });
    }

    fn generation(&self, i: usize) -> i64 {
        self.cluster.get("deployments", &self.ns[i], "web").unwrap()["metadata"]["generation"]
            .as_i64()
            .unwrap()
    }

    /// Environment `i`'s rollout misses its progress deadline (the real controller decides it
    /// from `progressDeadlineSeconds`; on the fake it is written here).
    fn degraded(&self, i: usize) {
        let ns = &self.ns[i];
        if !self.cluster.is_real() {
            let generation = self.generation(i);
            self.cluster.set_status(
                "deployments",
                ns,
                "web",
                serde_json::json!({"observedGeneration": generation, "replicas": 1, "updatedReplicas": 1, "unavailableReplicas": 1,
                    "conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]}),
            );
        }
        eventually(&format!("{ns}/web past its deadline"), || {
            let d = self.cluster.get("deployments", ns, "web").unwrap();
            d.pointer("/status/conditions")
                .and_then(serde_json::Value::as_array)
                .is_some_and(|c| c.iter().any(|c| c["reason"] == "ProgressDeadlineExceeded"))
        });
    }
}

/// Polls until `f` holds, at most 60 s.
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let started = Instant::now();
    while !f() {
        assert!(started.elapsed() < Duration::from_secs(60), "never: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The seconds of `waiting: FROM healthy Ns of SOAK`.
fn soaked_secs(why: &str) -> u64 {
    let rest = why
        .split(" healthy ")
        .nth(1)
        .unwrap_or_else(|| panic!("{why}"));
    let n = rest.split(' ').next().unwrap();
    n.strip_suffix('s')
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not seconds: {why}"))
}

#[test]
fn dev_then_staging_then_prod_each_after_its_upstream_ran_it_healthy_for_the_soak() {
    let chain = Chain::new("promo-chain", "2s", "");
    let host = chain.reg.host();
    let digest = chain
        .reg
        .push_image("shop/web", "v1.1.0", "2026-11-02T00:00:00Z");

    // dev takes the registry's new tag and is deployed; staging and prod have nothing healthy
    // to follow yet.
    chain.cycle();
    assert_eq!(chain.image_in_git("dev"), format!("{host}/shop/web:v1.1.0"));
    assert_eq!(
        chain.image_in_git("staging"),
        format!("{host}/shop/web:v1.0.0")
    );
    let staging = chain.line("shop-staging");
    assert!(
        matches!(staging["status"].as_str(), Some("waiting" | "blocked")),
        "{staging}"
    );

    // dev runs it, Healthy: staging's soak starts, and shows.
    chain.runs_healthy(0, &format!("{host}/shop/web:v1.1.0"), &digest);
    let staging = chain.line("shop-staging");
    assert_eq!(staging["status"], "waiting", "{staging}");
    let why = staging["held"].as_str().unwrap();
    assert!(
        why.starts_with("waiting: shop-dev healthy ") && why.ends_with(" of 2s"),
        "{why}"
    );
    assert_eq!(
        staging["registry"],
        format!("v1.1.0@{digest}"),
        "the candidate: {staging}"
    );
    let (_, table, _) = chain.dw(&["check"]);
    assert!(table.contains("waiting: shop-dev healthy "), "{table}");

    // After the soak, staging takes exactly what dev runs: the tag and the digest its pods run.
    std::thread::sleep(Duration::from_millis(2200));
    chain.cycle();
    let pinned = format!("{host}/shop/web:v1.1.0@{digest}");
    assert_eq!(chain.image_in_git("staging"), pinned);
    assert_eq!(
        chain.image_in_git("prod"),
        format!("{host}/shop/web:v1.0.0")
    );

    // Then prod, from staging, the same way.
    chain.runs_healthy(1, &pinned, &digest);
    let prod = chain.line("shop-prod");
    assert_eq!(prod["status"], "waiting", "{prod}");
    assert!(
        prod["held"]
            .as_str()
            .unwrap()
            .starts_with("waiting: shop-staging healthy "),
        "{prod}"
    );
    std::thread::sleep(Duration::from_millis(2200));
    chain.cycle();
    assert_eq!(
        chain.image_in_git("prod"),
        pinned,
        "the exact tag and digest dev ran"
    );
    let subjects = chain.repo.subjects("main");
    assert_eq!(subjects.len(), 4, "one commit per step: {subjects:?}");
    // Nothing more to do: Git says what the upstream runs.
    let prod = chain.line("shop-prod");
    assert_eq!(prod["status"], "in-sync", "{prod}");
}

/// A running `driftwatch run`, killed on drop.
struct Service {
    child: Child,
    port: u16,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Service {
    fn get(&self, path: &str) -> (u16, String) {
        let (code, _, body) = request(
            "GET",
            &format!("http://127.0.0.1:{}{path}", self.port),
            &[],
            b"",
        )
        .unwrap();
        (code, String::from_utf8(body).unwrap())
    }
}

#[test]
fn a_degraded_staging_blocks_prod_and_says_why() {
    // staging's rollout has one second to make progress; its pods never become ready.
    let chain = Chain::new("promo-block", "0s", "  progressDeadlineSeconds: 1\n");
    let host = chain.reg.host();
    let digest = chain
        .reg
        .push_image("shop/web", "v1.1.0", "2026-11-02T00:00:00Z");
    chain.cycle();
    chain.runs_healthy(0, &format!("{host}/shop/web:v1.1.0"), &digest);
    // No soak: staging follows dev at the next cycle, and is deployed; its rollout fails.
    chain.cycle();
    let pinned = format!("{host}/shop/web:v1.1.0@{digest}");
    assert_eq!(chain.image_in_git("staging"), pinned);
    chain.degraded(1);

    let prod = chain.line("shop-prod");
    assert_eq!(prod["status"], "blocked", "{prod}");
    let why = prod["held"].as_str().unwrap();
    assert!(
        why.starts_with("blocked: shop-staging Degraded (Deployment")
            && why.contains("/web: the rollout missed its progress deadline)"),
        "{why}"
    );
    chain.cycle();
    assert_eq!(
        chain.image_in_git("prod"),
        format!("{host}/shop/web:v1.0.0"),
        "nothing is promoted from a Degraded upstream"
    );
    // `status` says it under prod's row.
    let (_, out, err) = chain.dw(&["status"]);
    assert!(
        out.contains("promotion: ") && out.contains("blocked: shop-staging Degraded"),
        "{out}{err}"
    );

    // The service shows it on /status and the status page.
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_driftwatch"))
        .args(["run", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--interval", "3600", "--sync-interval", "3600", "--config"])
        .arg(&chain.conf)
        .arg("--state-dir")
        .arg(chain.state())
        .arg("--kubeconfig")
        .arg(&chain.cluster.kubeconfig)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let service = Service { child, port };
    assert!(wait_for_port(port, Duration::from_secs(10)));
    let mut status = serde_json::Value::Null;
    eventually("prod's promotion on /status", || {
        let (code, body) = service.get("/status");
        status = serde_json::from_str(&body).unwrap_or_default();
        code == 200
            && status
                .as_array()
                .into_iter()
                .flatten()
                .any(|a| a["app"] == "shop-prod" && a["promotion"][0]["status"] == "blocked")
    });
    let prod = status
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["app"] == "shop-prod")
        .unwrap();
    assert!(
        prod["promotion"][0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("blocked: shop-staging Degraded ("),
        "{prod}"
    );
    let (code, page) = service.get("/apps/shop-prod");
    assert_eq!(code, 200);
    assert!(page.contains("blocked: shop-staging Degraded ("), "{page}");
}

#[test]
fn a_restart_keeps_the_soak_clock() {
    let chain = Chain::new("promo-restart", "1h", "");
    let host = chain.reg.host();
    let digest = chain
        .reg
        .push_image("shop/web", "v1.1.0", "2026-11-02T00:00:00Z");
    chain.cycle();
    chain.runs_healthy(0, &format!("{host}/shop/web:v1.1.0"), &digest);
    // Each command is a new process: the soak's start comes from the state store.
    let first = chain.line("shop-staging");
    let why = first["held"].as_str().unwrap();
    assert!(why.ends_with(" of 1h"), "{why}");
    let before = soaked_secs(why);
    std::thread::sleep(Duration::from_secs(3));
    chain.cycle();
    let again = chain.line("shop-staging");
    let why = again["held"].as_str().unwrap();
    assert!(
        soaked_secs(why) >= before + 3,
        "the soak went on across restarts: {first} then {why}"
    );
    assert_eq!(
        chain.image_in_git("staging"),
        format!("{host}/shop/web:v1.0.0")
    );
}

#[test]
fn an_approval_still_applies_on_top_of_a_promotion() {
    let chain = Chain::new("promo-approve", "0s", "");
    let conf = std::fs::read_to_string(&chain.conf).unwrap();
    std::fs::write(
        &chain.conf,
        conf.replace(
            "- name: shop-staging\n",
            "- name: shop-staging\n  approval: required\n",
        ),
    )
    .unwrap();
    let host = chain.reg.host();
    let digest = chain
        .reg
        .push_image("shop/web", "v1.1.0", "2026-11-02T00:00:00Z");
    chain.cycle();
    chain.runs_healthy(0, &format!("{host}/shop/web:v1.1.0"), &digest);
    // dev runs it Healthy and there is no soak: the promotion is ready, and waits for a person.
    chain.cycle();
    let original = format!("{host}/shop/web:v1.0.0");
    assert_eq!(chain.image_in_git("staging"), original);
    let staging = chain.line("shop-staging");
    assert_eq!(staging["status"], "pending", "{staging}");
    assert_eq!(staging["registry"], format!("v1.1.0@{digest}"), "{staging}");
    // The service's /status lists the wait once, under `waits` (not `promotion`), with the
    // action that ends it and `check`'s words.
    {
        let port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_driftwatch"))
            .args(["run", "--listen", &format!("127.0.0.1:{port}")])
            .args(["--interval", "3600", "--sync-interval", "3600", "--config"])
            .arg(&chain.conf)
            .arg("--state-dir")
            .arg(chain.state())
            .arg("--kubeconfig")
            .arg(&chain.cluster.kubeconfig)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let service = Service { child, port };
        assert!(wait_for_port(port, Duration::from_secs(10)));
        let mut app = serde_json::Value::Null;
        eventually("staging's wait on /status", || {
            let (code, body) = service.get("/status");
            let status: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            app = status
                .as_array()
                .into_iter()
                .flatten()
                .find(|a| a["app"] == "shop-staging")
                .cloned()
                .unwrap_or_default();
            code == 200 && app["waits"][0]["status"] == "pending"
        });
        let wait = &app["waits"][0];
        assert_eq!(wait["image"], format!("{host}/shop/web"), "{app}");
        assert_eq!(wait["action"], "approve", "{app}");
        assert!(
            wait["reason"]
                .as_str()
                .unwrap()
                .starts_with(&format!("pending approval of v1.1.0@{digest}")),
            "{app}"
        );
        assert_eq!(app["waits"].as_array().unwrap().len(), 1, "{app}");
        assert_eq!(app["promotion"], serde_json::json!([]), "{app}");
    }
    let state = chain.state();
    let out = Command::new(env!("CARGO_BIN_EXE_driftwatch"))
        .args(["approve", "shop-staging", "--state-dir"])
        .arg(&state)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    chain.cycle();
    assert_eq!(
        chain.image_in_git("staging"),
        format!("{host}/shop/web:v1.1.0@{digest}")
    );
}
