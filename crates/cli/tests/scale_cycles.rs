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
use driftwatch_testkit::git::{BareRepo, git};
use driftwatch_testkit::registry::{Auth, Registry};

const REGISTRY_REPOS: usize = 200;
const TAGS: usize = 20;
const IMAGES_PER_APP: usize = 10;
const APPS_PER_REPO: usize = 5;

#[test]
#[ignore = "a timing run: seeds 4,000 tags; run it on purpose"]
fn scale_cycles() {
    let apps: usize = std::env::var("DRIFTWATCH_SCALE_APPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100);
    let seeding = Instant::now();
    let reg = Registry::start(Auth::None);
    let host = reg.host();
    let tags: Vec<String> = (0..TAGS).map(|t| format!("v1.0.{t}")).collect();
    let names: Vec<String> = (0..REGISTRY_REPOS)
        .map(|r| format!("scale/img-{r:04}"))
        .collect();
    reg.seed_on_disk(&names, &tags, "2026-11-01T00:00:00Z");
    let mut repos = Vec::new();
    let mut yaml = String::from("interval: 1h\napplications:\n");
    for first in (0..apps).step_by(APPS_PER_REPO) {
        let mut files = Vec::new();
        let mut entries = Vec::new();
        for a in first..(first + APPS_PER_REPO).min(apps) {
            let mut k = String::from("kind: Kustomization\nimages:\n");
            let mut images = String::new();
            for j in 0..IMAGES_PER_APP {
                let r = (a * IMAGES_PER_APP + j) % REGISTRY_REPOS;
                k.push_str(&format!(
                    "- name: img-{j}\n  newName: {host}/scale/img-{r:04}\n  newTag: v1.0.0\n"
                ));
                images.push_str(&format!(
                    "  - image: {host}/scale/img-{r:04}\n    kustomizeName: img-{j}\n"
                ));
            }
            files.push((format!("apps/app-{a:05}/kustomization.yaml"), k));
            entries.push((a, images));
        }
        let refs: Vec<(&str, &str)> = files
            .iter()
            .map(|(p, c)| (p.as_str(), c.as_str()))
            .collect();
        let repo = BareRepo::new(&refs);
        for (a, images) in entries {
            yaml.push_str(&format!(
                "- name: app-{a:05}\n  repo: {}\n  path: apps/app-{a:05}\n  writeBack: kustomization\n  images:\n{images}",
                repo.file_url()
            ));
        }
        repos.push(repo);
    }
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
