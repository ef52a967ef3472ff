//! A timing run of the service at scale (issue 16's scenario, small): a real registry with
//! 200 repositories of 20 tags, `file://` repositories of five applications with ten images
//! each, every image wanting an update. Prints each cycle's summary (the update cycle, the one
//! reading the new heads, incremental no-op cycles and the tenth cycle's full pass) and checks
//! what each did. Ignored by default (it takes a minute to seed); run it with
//! `cargo nextest run -p driftwatch --test scale_cycles --run-ignored only --no-capture`,
//! `DRIFTWATCH_SCALE_APPS` setting the number of applications (default 100: 1,000 images).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use driftwatch_testkit::TempDir;
use driftwatch_testkit::git::BareRepo;
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
    for r in 0..REGISTRY_REPOS {
        reg.push_tags(&format!("scale/img-{r:04}"), &tags, "2026-11-01T00:00:00Z");
    }
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
    let conf = dir.path().join("driftwatch.yaml");
    std::fs::write(&conf, yaml).unwrap();
    eprintln!(
        "seeded {} images, {apps} applications, {} Git repositories, {REGISTRY_REPOS} registry repositories in {:.1} s",
        apps * IMAGES_PER_APP,
        repos.len(),
        seeding.elapsed().as_secs_f64()
    );

    let mut child = Command::new(env!("CARGO_BIN_EXE_driftwatch"))
        .args(["run", "--interval", "1", "--log-format", "json", "--config"])
        .arg(&conf)
        .arg("--state-dir")
        .arg(dir.path().join("state"))
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
    eprintln!("cycle  duration_ms  changes  commits  unchanged_apps  registry_requests");
    for c in &s {
        let f = |k: &str| c[k].to_string();
        eprintln!(
            "{:>5}  {:>11}  {:>7}  {:>7}  {:>14}  {:>17}",
            f("cycle"),
            f("duration_ms"),
            f("changes"),
            f("commits"),
            f("unchanged_apps"),
            f("registry_requests")
        );
    }
    assert!(s.len() >= 12, "{log}");
    assert_eq!(s[0]["changes"], apps * IMAGES_PER_APP, "{log}");
    assert_eq!(s[0]["commits"], repos.len(), "{log}");
    // One tag list per registry repository and cycle, however many images track it.
    let unique = (apps * IMAGES_PER_APP).min(REGISTRY_REPOS);
    for c in &s {
        assert_eq!(c["registry_requests"], unique, "{c}");
    }
    for c in &s[1..] {
        assert_eq!(c["changes"], 0, "{c}");
        assert_eq!(c["errors"], 0, "{c}");
    }
    // The second cycle reads the new heads; the third to tenth reuse every evaluation; the
    // eleventh (tenth from the first) is a full pass.
    assert_eq!(s[1]["unchanged_apps"], 0);
    for c in &s[2..10] {
        assert_eq!(c["unchanged_apps"], apps, "{c}");
    }
    assert_eq!(s[10]["unchanged_apps"], 0);
}
