//! `scripts/soak`: `driftwatch run` over 10,000 images in 1,000 applications across 200 Git
//! repositories, cycling back to back (`--interval 0`) for a set time against a real registry
//! and real Git, while its RSS, open file descriptors and threads are sampled from `/proc` and
//! every cycle's summary line (registry requests, duration) is read from its log.
//!
//! The 10,000 images name 200 registry repositories (50 images each), so a cycle should ask
//! the registry once per repository: 200 requests. A new tag is pushed to one repository every
//! `--push-every` seconds, so the soak also edits, commits and pushes (50 images in up to 50
//! applications each time), not only reads.
//!
//! Prints the first and the last window (`--window`, default 5 min) side by side and a verdict:
//! flat when the last window's peak RSS, fds and threads are within the tolerances of the
//! first's, peak RSS is under 200 MB, and every steady cycle made exactly one registry request
//! per repository. Exits 1 otherwise.
//!
//!   driftwatch-soak [--minutes 30] [--window 5] [--push-every 60] [--driftwatch PATH]

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use driftwatch_testkit::TempDir;
use driftwatch_testkit::git::BareRepo;
use driftwatch_testkit::registry::{Auth, Registry};

const GIT_REPOS: usize = 200;
const APPS_PER_REPO: usize = 5;
const IMAGES_PER_APP: usize = 10;
const REGISTRY_REPOS: usize = 200;
/// Tags every registry repository starts with; the applications start at the first.
const TAGS: usize = 5;
/// Peak RSS target.
const RSS_TARGET_MB: f64 = 200.0;
/// Growth allowed from the first window's peak to the last's.
const RSS_TOLERANCE: f64 = 0.10;
const FD_TOLERANCE: u64 = 4;
const THREAD_TOLERANCE: u64 = 2;

struct Args {
    minutes: f64,
    window: f64,
    push_every: f64,
    driftwatch: PathBuf,
}

fn args() -> Args {
    let mut a = Args {
        minutes: 30.0,
        window: 5.0,
        push_every: 60.0,
        driftwatch: std::env::current_exe()
            .unwrap()
            .parent()
            .unwrap()
            .join("driftwatch"),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--minutes" => a.minutes = value().parse().expect("--minutes: a number"),
            "--window" => a.window = value().parse().expect("--window: a number"),
            "--push-every" => a.push_every = value().parse().expect("--push-every: seconds"),
            "--driftwatch" => a.driftwatch = PathBuf::from(value()),
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

/// The registry repository of image `k` of application `app`: ten distinct ones per
/// application, each used by 50 applications.
fn registry_repo(app: usize, k: usize) -> usize {
    (app * IMAGES_PER_APP + k * 7) % REGISTRY_REPOS
}

fn kustomization(host: &str, app: usize) -> String {
    let mut text = String::from(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- deploy.yaml\nimages:\n",
    );
    for k in 0..IMAGES_PER_APP {
        text.push_str(&format!(
            "- name: c{k}\n  newName: {host}/soak/r{:03}\n  newTag: 1.0.0\n",
            registry_repo(app, k)
        ));
    }
    text
}

/// One sample of the process.
#[derive(Clone, Copy, Debug)]
struct Sample {
    at: f64,
    rss_kb: u64,
    fds: u64,
    threads: u64,
}

fn sample(pid: u32, at: f64) -> Option<Sample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        status
            .lines()
            .find(|l| l.starts_with(name))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    };
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64;
    Some(Sample {
        at,
        rss_kb: field("VmRSS:")?,
        fds,
        threads: field("Threads:")?,
    })
}

/// One cycle's summary line.
#[derive(Clone, Copy, Debug)]
struct Cycle {
    at: f64,
    requests: u64,
    duration_ms: u64,
    commits: u64,
    errors: u64,
    changes: u64,
}

fn percentile(mut v: Vec<u64>, p: f64) -> u64 {
    if v.is_empty() {
        return 0;
    }
    v.sort_unstable();
    let i = ((v.len() - 1) as f64 * p).round() as usize;
    v[i]
}

struct Window {
    rss_peak_mb: f64,
    fds_max: u64,
    threads_max: u64,
    cycles: usize,
    cycle_p50: u64,
    cycle_max: u64,
    requests_min: u64,
    requests_max: u64,
}

fn window(samples: &[Sample], cycles: &[Cycle], from: f64, to: f64) -> Window {
    let s: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.at >= from && s.at <= to)
        .collect();
    let c: Vec<&Cycle> = cycles
        .iter()
        .filter(|c| c.at >= from && c.at <= to)
        .collect();
    let quiet: Vec<u64> = c.iter().map(|c| c.requests).collect();
    Window {
        rss_peak_mb: s.iter().map(|s| s.rss_kb).max().unwrap_or(0) as f64 / 1024.0,
        fds_max: s.iter().map(|s| s.fds).max().unwrap_or(0),
        threads_max: s.iter().map(|s| s.threads).max().unwrap_or(0),
        cycles: c.len(),
        cycle_p50: percentile(c.iter().map(|c| c.duration_ms).collect(), 0.5),
        cycle_max: c.iter().map(|c| c.duration_ms).max().unwrap_or(0),
        requests_min: quiet.iter().copied().min().unwrap_or(0),
        requests_max: quiet.iter().copied().max().unwrap_or(0),
    }
}

fn main() {
    let a = args();
    let started = Instant::now();
    let reg = Registry::start(Auth::None);
    let host = reg.host();
    let initial: Vec<String> = (0..TAGS).map(|t| format!("1.0.{t}")).collect();
    for r in 0..REGISTRY_REPOS {
        reg.push_tags(&format!("soak/r{r:03}"), &initial, "2026-11-01T00:00:00Z");
    }
    let work = TempDir::new("soak");
    let mut conf = String::from("interval: 1h\napplications:\n");
    let mut repos = Vec::new();
    for g in 0..GIT_REPOS {
        let mut files = Vec::new();
        for n in 0..APPS_PER_REPO {
            let app = g * APPS_PER_REPO + n;
            files.push((
                format!("apps/a{app:04}/kustomization.yaml"),
                kustomization(&host, app),
            ));
            files.push((
                format!("apps/a{app:04}/deploy.yaml"),
                format!("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: a{app:04}\n"),
            ));
        }
        let refs: Vec<(&str, &str)> = files
            .iter()
            .map(|(p, c)| (p.as_str(), c.as_str()))
            .collect();
        let repo = BareRepo::new(&refs);
        for n in 0..APPS_PER_REPO {
            let app = g * APPS_PER_REPO + n;
            conf.push_str(&format!(
                "- name: a{app:04}\n  repo: {}\n  path: apps/a{app:04}\n  writeBack: kustomization\n  images:\n",
                repo.file_url()
            ));
            for k in 0..IMAGES_PER_APP {
                conf.push_str(&format!(
                    "  - image: {host}/soak/r{:03}\n    kustomizeName: c{k}\n    strategy: semver\n",
                    registry_repo(app, k)
                ));
            }
        }
        repos.push(repo);
    }
    let conf_path = work.path().join("driftwatch.yaml");
    std::fs::write(&conf_path, conf).unwrap();
    println!(
        "soak: {} images in {} applications across {GIT_REPOS} Git repositories, {REGISTRY_REPOS} registry repositories; seeded in {:.1} s",
        GIT_REPOS * APPS_PER_REPO * IMAGES_PER_APP,
        GIT_REPOS * APPS_PER_REPO,
        started.elapsed().as_secs_f64()
    );
    let log_path = std::env::var_os("SOAK_LOG").map(PathBuf::from);
    run(
        &a,
        &reg,
        &conf_path,
        &work.path().join("state"),
        log_path.as_deref(),
    );
}

fn run(a: &Args, reg: &Registry, conf: &Path, state: &Path, log: Option<&Path>) {
    let mut child = Command::new(&a.driftwatch)
        .args(["run", "--interval", "0", "--log-format", "json", "--config"])
        .arg(conf)
        .arg("--state-dir")
        .arg(state)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("driftwatch");
    let pid = child.id();
    let t0 = Instant::now();
    let cycles: Arc<Mutex<Vec<Cycle>>> = Arc::default();
    let problems: Arc<Mutex<Vec<String>>> = Arc::default();
    let stderr = child.stderr.take().unwrap();
    let reader = {
        let cycles = cycles.clone();
        let problems = problems.clone();
        let mut file = log.map(|p| std::fs::File::create(p).unwrap());
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(f) = file.as_mut() {
                    use std::io::Write;
                    let _ = writeln!(f, "{line}");
                }
                let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
                    problems.lock().unwrap().push(format!("not JSON: {line}"));
                    continue;
                };
                let level = v["level"].as_str().unwrap_or("");
                if matches!(level, "ERROR" | "error") || line.contains("panicked") {
                    problems.lock().unwrap().push(line.clone());
                }
                if v["msg"] == "cycle" {
                    let n = |k: &str| v[k].as_u64().unwrap_or(0);
                    cycles.lock().unwrap().push(Cycle {
                        at: t0.elapsed().as_secs_f64(),
                        requests: n("registry_requests"),
                        duration_ms: n("duration_ms"),
                        commits: n("commits"),
                        errors: n("errors"),
                        changes: n("changes"),
                    });
                }
            }
        })
    };
    let total = Duration::from_secs_f64(a.minutes * 60.0);
    let mut samples = Vec::new();
    let mut pushes = 0usize;
    let mut next_push = Duration::from_secs_f64(a.push_every);
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut last_report = Duration::ZERO;
    while t0.elapsed() < total {
        std::thread::sleep(Duration::from_secs(2));
        let now = t0.elapsed();
        if let Some(s) = sample(pid, now.as_secs_f64()) {
            samples.push(s);
        } else {
            problems.lock().unwrap().push(format!(
                "driftwatch exited after {:.0} s",
                now.as_secs_f64()
            ));
            break;
        }
        if a.push_every > 0.0 && now >= next_push {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let r = (state % REGISTRY_REPOS as u64) as usize;
            pushes += 1;
            reg.push_tags(
                &format!("soak/r{r:03}"),
                &[format!("1.1.{pushes}")],
                "2026-11-02T00:00:00Z",
            );
            next_push += Duration::from_secs_f64(a.push_every);
        }
        if now - last_report >= Duration::from_secs(60) {
            last_report = now;
            let s = samples.last().unwrap();
            let c = cycles.lock().unwrap();
            eprintln!(
                "  {:>5.0} s: rss {:.1} MB, fds {}, threads {}, cycles {}, last cycle {} ms / {} requests",
                now.as_secs_f64(),
                s.rss_kb as f64 / 1024.0,
                s.fds,
                s.threads,
                c.len(),
                c.last().map_or(0, |c| c.duration_ms),
                c.last().map_or(0, |c| c.requests)
            );
        }
    }
    let _ = Command::new("kill").arg(pid.to_string()).status();
    let _ = child.wait();
    let _ = reader.join();
    let cycles = cycles.lock().unwrap().clone();
    let problems = problems.lock().unwrap().clone();
    report(a, &samples, &cycles, &problems, pushes);
}

fn report(a: &Args, samples: &[Sample], cycles: &[Cycle], problems: &[String], pushes: usize) {
    let end = samples.last().map_or(0.0, |s| s.at);
    let w = a.window * 60.0;
    let first = window(samples, cycles, 0.0, w.min(end));
    let last = window(samples, cycles, (end - w).max(0.0), end);
    let all = window(samples, cycles, 0.0, end);
    // The first cycle writes every application (all start behind); cycles that committed
    // read the new tags' manifests too. The others must ask once per repository.
    let steady: Vec<&Cycle> = cycles.iter().skip(1).filter(|c| c.commits == 0).collect();
    let exact = steady
        .iter()
        .filter(|c| c.requests == REGISTRY_REPOS as u64)
        .count();
    println!(
        "\nsoak: {:.1} min, {} cycles back to back, {pushes} tags pushed, {} commits, {} image errors",
        end / 60.0,
        cycles.len(),
        cycles.iter().map(|c| c.commits).sum::<u64>(),
        cycles.iter().map(|c| c.errors).sum::<u64>()
    );
    println!(
        "  first cycle (writes all {} images): {} ms, {} commits, {} requests",
        cycles.first().map_or(0, |c| c.changes),
        cycles.first().map_or(0, |c| c.duration_ms),
        cycles.first().map_or(0, |c| c.commits),
        cycles.first().map_or(0, |c| c.requests)
    );
    println!(
        "  {:<22} {:>10} {:>6} {:>8} {:>7} {:>10} {:>10} {:>14}",
        "window",
        "peak RSS",
        "fds",
        "threads",
        "cycles",
        "cycle p50",
        "cycle max",
        "requests/cycle"
    );
    for (name, x) in [
        (format!("first {:.0} min", a.window), &first),
        (format!("last {:.0} min", a.window), &last),
        ("whole run".to_owned(), &all),
    ] {
        println!(
            "  {:<22} {:>7.1} MB {:>6} {:>8} {:>7} {:>7} ms {:>7} ms {:>8}..{}",
            name,
            x.rss_peak_mb,
            x.fds_max,
            x.threads_max,
            x.cycles,
            x.cycle_p50,
            x.cycle_max,
            x.requests_min,
            x.requests_max
        );
    }
    println!(
        "  cycles without a commit asking the registry exactly {REGISTRY_REPOS} times (once per repository): {exact} of {}",
        steady.len()
    );
    let mut failed = Vec::new();
    if all.rss_peak_mb >= RSS_TARGET_MB {
        failed.push(format!(
            "peak RSS {:.1} MB is not under {RSS_TARGET_MB} MB",
            all.rss_peak_mb
        ));
    }
    if last.rss_peak_mb > first.rss_peak_mb * (1.0 + RSS_TOLERANCE) {
        failed.push(format!(
            "RSS grew: last window's peak {:.1} MB > first's {:.1} MB + {:.0}%",
            last.rss_peak_mb,
            first.rss_peak_mb,
            RSS_TOLERANCE * 100.0
        ));
    }
    if last.fds_max > first.fds_max + FD_TOLERANCE {
        failed.push(format!("fds grew: {} -> {}", first.fds_max, last.fds_max));
    }
    if last.threads_max > first.threads_max + THREAD_TOLERANCE {
        failed.push(format!(
            "threads grew: {} -> {}",
            first.threads_max, last.threads_max
        ));
    }
    if steady.is_empty() || exact != steady.len() {
        failed.push(format!(
            "{} of {} cycles without a commit did not ask exactly once per repository",
            steady.len() - exact,
            steady.len()
        ));
    }
    for p in problems.iter().take(10) {
        failed.push(format!("log: {}", p.chars().take(300).collect::<String>()));
    }
    if failed.is_empty() {
        println!(
            "  verdict: flat (RSS within {:.0}%, fds within {FD_TOLERANCE}, threads within {THREAD_TOLERANCE}; peak RSS < {RSS_TARGET_MB} MB)",
            RSS_TOLERANCE * 100.0
        );
    } else {
        println!("  verdict: NOT flat");
        for f in &failed {
            println!("    - {f}");
        }
        std::process::exit(1);
    }
}
