//! A timing run of the service at scale (issue 16's scenario, small): a real registry with
//! 200 repositories of 20 tags, `file://` repositories of five applications with ten images
//! each, every image wanting an update. Prints each cycle's summary (the update cycle, the one
//! reading the new heads, incremental no-op cycles and the tenth cycle's full pass) and checks
//! what each did. Ignored by default (it takes a minute to seed); run it with
//! `cargo nextest run -p driftwatch --test scale_cycles --run-ignored only --no-capture`,
//! `DRIFTWATCH_SCALE_APPS` setting the number of applications (default 100: 1,000 images) and
//! `DRIFTWATCH_SCALE_BIN` the binaries to time, `:`-separated (default: this build's), so
//! release binaries, before and after a change, are timed on one seeding by a debug harness.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use driftwatch_testkit::TempDir;
use driftwatch_testkit::git::git;
use driftwatch_testkit::scale::{IMAGES_PER_APP, Scale};

const REGISTRY_REPOS: usize = 200;

#[test]
#[ignore = "a timing run: seeds 4,000 tags; run it on purpose"]
fn scale_cycles() {
    let apps: usize = std::env::var("DRIFTWATCH_SCALE_APPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100);
    let seeding = Instant::now();
    let Scale {
        registry: _registry,
        repos,
        config: yaml,
        ..
    } = Scale::seed(apps, REGISTRY_REPOS);
    let dir = TempDir::new("scale");
    let initial: Vec<String> = repos
        .iter()
        .map(|r| git(&r.path, &["rev-parse", "main"]).trim().to_owned())
        .collect();
    let conf = dir.path().join("driftwatch.yaml");
    std::fs::write(&conf, yaml).unwrap();
    eprintln!(
        "seeded {} images, {apps} applications, {} Git repositories, {REGISTRY_REPOS} registry repositories in {:.1} s",
        apps * IMAGES_PER_APP,
        repos.len(),
        seeding.elapsed().as_secs_f64()
    );

    // Each binary from the same start: the repositories are put back before it runs.
    let bins: Vec<std::ffi::OsString> = match std::env::var_os("DRIFTWATCH_SCALE_BIN") {
        Some(list) => std::env::split_paths(&list).map(Into::into).collect(),
        None => vec![env!("CARGO_BIN_EXE_driftwatch").into()],
    };
    for (k, bin) in bins.iter().enumerate() {
        for (r, at) in repos.iter().zip(&initial) {
            git(&r.path, &["update-ref", "refs/heads/main", at]);
        }
        eprintln!("== {}", bin.to_string_lossy());
        measure(
            bin,
            &conf,
            &dir.path().join(format!("state-{k}")),
            apps,
            repos.len(),
        );
    }
}

/// Times `check` (cold, warm) and twelve service cycles of `bin`, printing and checking them.
fn measure(bin: &std::ffi::OsStr, conf: &Path, state: &Path, apps: usize, repos: usize) {
    // `check`, cold (no mirrors, no registry metadata) and warm: one pass, no service.
    for which in ["cold", "warm"] {
        let t = Instant::now();
        let out = Command::new(bin)
            .args(["check", "--config"])
            .arg(conf)
            .arg("--state-dir")
            .arg(state.join("check"))
            .output()
            .unwrap();
        let took = t.elapsed();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(2), "everything drifts: {stdout}");
        assert_eq!(
            stdout.matches("update available").count(),
            apps * IMAGES_PER_APP
        );
        eprintln!("check {which}: {:.0} ms", took.as_secs_f64() * 1000.0);
    }
    let mut child = Command::new(bin)
        .args(["run", "--interval", "1", "--log-format", "json", "--config"])
        .arg(conf)
        .arg("--state-dir")
        .arg(state.join("run"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Lines as they come, so the run stops after the twelfth cycle's summary.
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let stderr = child.stderr.take().unwrap();
    let sink = lines.clone();
    let reader = std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)) {
            sink.lock().unwrap().push(line.unwrap());
        }
    });
    let summaries = || -> Vec<serde_json::Value> {
        lines
            .lock()
            .unwrap()
            .iter()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|l| l["msg"] == "cycle")
            .collect()
    };
    let started = Instant::now();
    let budget = Duration::from_secs(60 + 2 * u64::try_from(apps).unwrap());
    while summaries().len() < 12 {
        assert!(started.elapsed() < budget, "too slow: {:?}", summaries());
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    assert!(child.wait().unwrap().success());
    reader.join().unwrap();
    let s = summaries();
    let log = lines.lock().unwrap().join("\n");
    eprintln!("cycle  duration_ms  scan_ms  changes  commits  unchanged_apps  registry_requests");
    for c in &s {
        let f = |k: &str| c[k].to_string();
        eprintln!(
            "{:>5}  {:>11}  {:>7}  {:>7}  {:>7}  {:>14}  {:>17}",
            f("cycle"),
            f("duration_ms"),
            f("scan_ms"),
            f("changes"),
            f("commits"),
            f("unchanged_apps"),
            f("registry_requests")
        );
    }
    assert!(s.len() >= 12, "{log}");
    assert_eq!(s[0]["changes"], apps * IMAGES_PER_APP, "{log}");
    assert_eq!(s[0]["commits"], repos, "{log}");
    // One tag list per registry repository and cycle, however many images track it.
    let unique = (apps * IMAGES_PER_APP).min(REGISTRY_REPOS);
    for c in &s {
        assert_eq!(c["registry_requests"], unique, "{c}");
    }
    for c in &s[1..] {
        assert_eq!(c["changes"], 0, "{c}");
        assert_eq!(c["errors"], 0, "{c}");
    }
    if s[1]["unchanged_apps"].is_null() {
        eprintln!("(a binary without incremental cycles)");
        return;
    }
    // The second cycle reads the new heads; the third to tenth reuse every evaluation; the
    // eleventh (tenth from the first) is a full pass.
    assert_eq!(s[1]["unchanged_apps"], 0);
    for c in &s[2..10] {
        assert_eq!(c["unchanged_apps"], apps, "{c}");
    }
    assert_eq!(s[10]["unchanged_apps"], 0);
}
