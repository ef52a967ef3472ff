//! `driftwatch run` in service mode, as an operator reads it: one log line per change and one
//! summary line per cycle (the whole table only with `--table`), commits titled after every
//! application they carry, and `history` stamping each commit with the time its own push was
//! accepted.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use driftwatch_policy::Timestamp;
use driftwatch_testkit::TempDir;
use driftwatch_testkit::fixture::Shop;
use driftwatch_testkit::git::BareRepo;
use driftwatch_testkit::http::request;
use driftwatch_testkit::registry::{Auth, Registry};
use driftwatch_testkit::{free_port, wait_for_port};

/// Installs hooks in a bare repository: `post-receive` appends the time (Unix nanoseconds) at
/// which the pushed ref is in place, and `pre-receive` first sleeps `delay` seconds, so a push
/// there is accepted measurably later than one elsewhere.
fn record_pushes(repo: &Path, delay: u32) {
    let hooks = repo.join("hooks");
    std::fs::create_dir_all(&hooks).unwrap();
    for (name, body) in [
        (
            "pre-receive",
            format!("#!/bin/sh\ncat >/dev/null\nsleep {delay}\n"),
        ),
        (
            "post-receive",
            "#!/bin/sh\ncat >/dev/null\ndate +%s%N >>pushed-at\n".to_owned(),
        ),
    ] {
        let path = hooks.join(name);
        std::fs::write(&path, body).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

/// The push times `record_pushes` wrote.
fn pushed_at(repo: &Path) -> Vec<i128> {
    std::fs::read_to_string(repo.join("pushed-at"))
        .unwrap_or_default()
        .lines()
        .map(|l| l.trim().parse().unwrap())
        .collect()
}

fn nanos(rfc3339: &serde_json::Value) -> i128 {
    Timestamp::parse(rfc3339.as_str().unwrap())
        .unwrap()
        .unix_nanos()
}

/// Reads a child's pipe to its end on a thread, so a chatty child never blocks on a full pipe.
fn drain(mut pipe: impl std::io::Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut s = String::new();
        pipe.read_to_string(&mut s).unwrap();
        s
    })
}

/// SIGTERM, and the clean exit it must cause.
fn stop(child: &mut Child) {
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "{status}");
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn kustomization(host: &str, app: &str, tag: &str) -> String {
    format!(
        "kind: Kustomization\nimages:\n- name: {app}\n  newName: {host}/team/{app}\n  newTag: {tag}\n"
    )
}

#[test]
fn service_logs_changes_and_a_summary_and_stamps_each_push() {
    let reg = Registry::start(Auth::None);
    let host = reg.host();
    let names: Vec<String> = (0..6).map(|i| format!("app-{i}")).collect();
    for name in &names {
        reg.push_image(&format!("team/{name}"), "v1.0.0", "2026-11-01T00:00:00Z");
        reg.push_image(&format!("team/{name}"), "v1.0.1", "2026-11-02T00:00:00Z");
    }
    // Five applications share repository A (one commit); the sixth lives in B, whose server
    // takes two seconds longer to accept a push.
    let files: Vec<(String, String)> = names[..5]
        .iter()
        .map(|n| {
            (
                format!("apps/{n}/kustomization.yaml"),
                kustomization(&host, n, "v1.0.0"),
            )
        })
        .collect();
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    let a = BareRepo::new(&refs);
    let b = BareRepo::new(&[(
        "apps/app-5/kustomization.yaml",
        &kustomization(&host, "app-5", "v1.0.0"),
    )]);
    record_pushes(&a.path, 0);
    record_pushes(&b.path, 2);

    let dir = TempDir::new("svc-log");
    let conf = dir.path().join("driftwatch.yaml");
    let mut yaml = String::from("interval: 1h\napplications:\n");
    for (i, n) in names.iter().enumerate() {
        let repo = if i < 5 { &a } else { &b };
        yaml.push_str(&format!(
            "- name: {n}\n  repo: {}\n  path: apps/{n}\n  writeBack: kustomization\n  images:\n  - image: {host}/team/{n}\n    kustomizeName: {n}\n",
            repo.file_url()
        ));
    }
    std::fs::write(&conf, yaml).unwrap();
    let state = dir.path().join("state");
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_driftwatch"))
        .args(["run", "--config"])
        .arg(&conf)
        .arg("--state-dir")
        .arg(&state)
        .args([
            "--interval",
            "1",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--log-format",
            "json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = drain(child.stdout.take().unwrap());
    let stderr = drain(child.stderr.take().unwrap());
    assert!(wait_for_port(port, Duration::from_secs(10)));
    let deadline = Instant::now() + Duration::from_secs(30);
    while a.subjects("main").len() < 2 || b.subjects("main").len() < 2 {
        assert!(Instant::now() < deadline, "the updates never reached Git");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Two more cycles, which find nothing to do (the interval is one second).
    std::thread::sleep(Duration::from_millis(2600));
    let (_, _, metrics) =
        request("GET", &format!("http://127.0.0.1:{port}/metrics"), &[], b"").unwrap();
    let metrics = String::from_utf8(metrics).unwrap();
    stop(&mut child);
    let (stdout, stderr) = (stdout.join().unwrap(), stderr.join().unwrap());

    // A commit carrying several applications names them; one carrying one, as always.
    assert_eq!(
        a.subjects("main")[0],
        "build: automatic update of app-0, app-1 and 3 more"
    );
    assert_eq!(b.subjects("main")[0], "build: automatic update of app-5");

    // The log: no table on stdout, no whole report on stderr; one line per change and one
    // summary line per cycle.
    assert_eq!(stdout, "", "service mode prints no table");
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}")))
        .collect();
    let summaries: Vec<&serde_json::Value> = lines.iter().filter(|l| l["msg"] == "cycle").collect();
    assert!(summaries.len() >= 3, "{stderr}");
    for s in &summaries {
        assert!(s["images"].is_u64(), "a summary, not the whole report: {s}");
        assert_eq!(s["images"], 6, "{s}");
        assert_eq!(s["errors"], 0, "{s}");
        assert!(
            s["duration_ms"].is_u64() && s["registry_requests"].is_u64(),
            "{s}"
        );
        assert!(
            s["scan_ms"].as_u64().unwrap() <= s["duration_ms"].as_u64().unwrap(),
            "{s}"
        );
    }
    let cycles: Vec<u64> = summaries
        .iter()
        .map(|s| s["cycle"].as_u64().unwrap())
        .collect();
    let mut distinct = cycles.clone();
    distinct.dedup();
    assert_eq!(cycles, distinct, "one summary per cycle: {stderr}");
    assert_eq!(summaries[0]["changes"], 6, "{stderr}");
    assert_eq!(summaries[0]["commits"], 2, "{stderr}");
    assert!(summaries[1..].iter().all(|s| s["changes"] == 0), "{stderr}");
    // Incremental cycles: the first reads everything, the second reads the new heads, and
    // from the third on nothing changed, so no application's files are read again.
    assert_eq!(summaries[0]["unchanged_apps"], 0, "{stderr}");
    assert_eq!(summaries[1]["unchanged_apps"], 0, "{stderr}");
    assert_eq!(summaries[2]["unchanged_apps"], 6, "{stderr}");
    let updated: Vec<&serde_json::Value> = lines.iter().filter(|l| l["msg"] == "updated").collect();
    assert_eq!(updated.len(), 6, "{stderr}");
    let mut apps: Vec<&str> = updated.iter().map(|l| l["app"].as_str().unwrap()).collect();
    apps.sort_unstable();
    assert_eq!(apps, names);
    for u in &updated {
        assert_eq!(u["old"], "v1.0.0", "{u}");
        assert_eq!(u["new"], "v1.0.1", "{u}");
        assert_eq!(u["commit"].as_str().unwrap().len(), 40, "{u}");
    }

    // History: each commit at the time its own push was accepted, not the cycle's end.
    let out = Command::new(env!("CARGO_BIN_EXE_driftwatch"))
        .args(["history", "-o", "json", "--state-dir"])
        .arg(&state)
        .output()
        .unwrap();
    let history: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let history = history.as_array().unwrap();
    assert_eq!(history.len(), 6, "{history:?}");
    let (hook_a, hook_b) = (pushed_at(&a.path), pushed_at(&b.path));
    assert_eq!((hook_a.len(), hook_b.len()), (1, 1));
    let mut latency = 0.0;
    for row in history {
        let hook = if row["app"] == "app-5" {
            hook_b[0]
        } else {
            hook_a[0]
        };
        let committed = nanos(&row["committed_at"]);
        // Pushed once the server's hooks ran, and well before the slow repository's push.
        assert!(
            committed >= hook && committed - hook < 1_000_000_000,
            "{row}: hook at {hook}"
        );
        if row["app"] == "app-5" || row["app"] == "app-0" {
            latency += (committed - nanos(&row["seen_at"])) as f64 / 1e9;
        }
    }
    assert!(hook_b[0] - hook_a[0] > 1_500_000_000, "B's push was slow");
    // Push-to-commit latency is observed per commit, from those times.
    let sum: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("driftwatch_push_to_commit_seconds_sum "))
        .unwrap_or_else(|| panic!("{metrics}"))
        .parse()
        .unwrap();
    assert!(
        metrics.contains("driftwatch_push_to_commit_seconds_count 2"),
        "{metrics}"
    );
    assert!((sum - latency).abs() < 0.01, "{sum} vs {latency}");
}

#[test]
fn service_prints_the_whole_table_when_asked() {
    let shop = Shop::new("svc-table");
    shop.reg
        .push_image("shop/backend", "v1.0.1", "2026-11-02T00:00:00Z");
    let mut child = Command::new(env!("CARGO_BIN_EXE_driftwatch"))
        .args(["run", "--table", "--dry-run", "--interval", "1", "--config"])
        .arg(&shop.conf)
        .arg("--state-dir")
        .arg(shop.state())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = drain(child.stdout.take().unwrap());
    let stderr = drain(child.stderr.take().unwrap());
    std::thread::sleep(Duration::from_millis(3500));
    stop(&mut child);
    let (stdout, stderr) = (stdout.join().unwrap(), stderr.join().unwrap());
    let headers = stdout.lines().filter(|l| l.starts_with("APP ")).count();
    assert!(headers >= 2, "a table every cycle: {stdout}");
    assert!(
        stdout.contains("update available") && stdout.contains("v1.0.1"),
        "{stdout}"
    );
    // Besides the table, the planned change is logged, and the plan wrote nothing.
    assert!(stderr.contains("update planned"), "{stderr}");
    assert_eq!(shop.repo.subjects("main").len(), 1);
}
