//! The scale scenario (issue 16): N images in N/10 applications of ten images each, five
//! applications to a `file://` Git repository, over 200 registry repositories of 20 tags (2,000
//! from 100,000 images up), every image one update behind. For each size: a cold and a warm
//! `check`, then the service's cycles back to back — the first clones every mirror and writes
//! every update, the next reads the new heads, the rest have nothing to do — then a new tag in
//! every registry repository and the service again on the same state, whose first cycle writes
//! every update through the existing mirrors (the cycle with updates the target is checked on;
//! the first run's is printed beside it). Wall time, CPU, peak RSS and registry requests, each
//! checked against the target where it names one.

use std::io::BufRead;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use driftwatch_testkit::TempDir;
use driftwatch_testkit::scale::{APPS_PER_REPO, IMAGES_PER_APP, Scale, TAGS};

use crate::{Running, Verdicts, driftwatch, mb, measure, ms};

/// Service cycles watched: the update cycle, the one reading the new heads, and no-op ones.
const CYCLES: usize = 8;

/// The sizes to run: `DRIFTWATCH_BENCH_SCALE` (comma-separated image counts), by default
/// 1,000, 10,000 and 100,000.
pub(crate) fn sizes() -> Vec<usize> {
    std::env::var("DRIFTWATCH_BENCH_SCALE")
        .ok()
        .map(|s| s.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1_000, 10_000, 100_000])
}

pub(crate) fn bench_scale(images: usize, v: &mut Verdicts) {
    let apps = images / IMAGES_PER_APP;
    let registry_repos = if images >= 100_000 { 2_000 } else { 200 };
    println!(
        "\n== Scale: {images} images, {apps} applications, {} Git repositories, {registry_repos} registry repositories × {TAGS} tags",
        apps.div_ceil(APPS_PER_REPO)
    );
    let seeding = Instant::now();
    let scenario = Scale::seed(apps, registry_repos);
    let repos = &scenario.repos;
    let work = TempDir::new("bench-scale");
    let conf = work.path().join("driftwatch.yaml");
    std::fs::write(&conf, &scenario.config).unwrap();
    println!("seeded in {:.1} s", seeding.elapsed().as_secs_f64());
    let unique = images.min(registry_repos) as u64;

    let check_args = |state: &str| -> Vec<String> {
        vec![
            "check".into(),
            "--output".into(),
            "json".into(),
            "--config".into(),
            conf.display().to_string(),
            "--state-dir".into(),
            work.path().join(state).display().to_string(),
        ]
    };
    let mut warm_check = Duration::MAX;
    for which in ["cold", "warm"] {
        let m = measure(&driftwatch(), &check_args("check"), None, &[]);
        let report: serde_json::Value = serde_json::from_str(&m.stdout)
            .unwrap_or_else(|e| panic!("check -o json: {e}: {}", m.stderr));
        let updates = report["images"].as_array().map_or(0, |i| {
            i.iter()
                .filter(|l| l["status"] == "update-available")
                .count()
        });
        assert_eq!(updates, images, "check found every update: {}", m.stderr);
        let requests = report["registry_requests"].as_u64();
        println!(
            "check {which}: wall {:.0} ms, CPU {}, peak RSS {}, registry requests {}",
            ms(m.wall),
            m.cpu.map_or("?".to_owned(), |c| format!("{:.0} ms", ms(c))),
            mb(m.max_rss_kb),
            requests.map_or("?".to_owned(), |r| r.to_string())
        );
        warm_check = m.wall;
    }
    if images == 10_000 {
        println!(
            "warm check: {}",
            v.target(
                &format!("scale {images}: warm check {:.0} ms", ms(warm_check)),
                warm_check < Duration::from_secs(1),
                "< 1000 ms"
            )
        );
    }

    // More cycles to watch from outside (a profiler attached to the service).
    let watched = std::env::var("DRIFTWATCH_BENCH_SCALE_CYCLES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(CYCLES)
        .max(CYCLES);
    let state = work.path().join("run");
    let (cycles, hwm_kb) = service_cycles(&conf, &state, watched);
    // A new tag everywhere, and the service started again on the same state: its first cycle
    // writes every update through mirrors that exist (what a long-running service meets),
    // where the first run's also cloned every repository.
    scenario.release(&format!("v1.0.{TAGS}"));
    let (again, hwm_again) = service_cycles(&conf, &state, 2);
    let hwm_kb = hwm_kb.max(hwm_again);
    for c in &cycles {
        assert_eq!(c["errors"], 0, "cycle {c}");
    }
    let figure = |c: &serde_json::Value, k: &str| c[k].as_u64().unwrap_or(0);
    let update = &cycles[0];
    assert_eq!(figure(update, "changes"), images as u64, "{update}");
    assert_eq!(figure(update, "commits"), repos.len() as u64, "{update}");
    let cold_update_ms = figure(update, "duration_ms");
    let warm = &again[0];
    assert_eq!(figure(warm, "changes"), images as u64, "{warm}");
    assert_eq!(figure(warm, "commits"), repos.len() as u64, "{warm}");
    let update_ms = figure(warm, "duration_ms");
    let mut noop: Vec<u64> = cycles[2..]
        .iter()
        .map(|c| figure(c, "duration_ms"))
        .collect();
    noop.sort_unstable();
    let noop_ms = noop[noop.len() / 2];
    let mut noop_scan: Vec<u64> = cycles[2..].iter().map(|c| figure(c, "scan_ms")).collect();
    noop_scan.sort_unstable();
    let requests: Vec<u64> = cycles
        .iter()
        .map(|c| figure(c, "registry_requests"))
        .collect();
    // Each cycle's CPU (the service and its git processes): what the other load of a shared
    // machine barely moves, unlike the wall times.
    let cpu: Vec<u64> = cycles
        .iter()
        .scan(0, |before, c| {
            let total = figure(c, "cpu_total_ms");
            let this = total.saturating_sub(*before);
            *before = total;
            Some(this)
        })
        .collect();
    let own = figure(&cycles[0], "cpu_own_ms");
    let mut noop_cpu = cpu[2..].to_vec();
    noop_cpu.sort_unstable();
    println!(
        "first cycle, cloning every mirror and writing {images} updates ({} commits): {cold_update_ms} ms, CPU {} ms ({own} ms the service's own, the rest its git processes)",
        repos.len(),
        cpu[0]
    );
    println!(
        "cycle with {images} updates ({} commits) on existing mirrors, after a restart: {update_ms} ms, CPU {} ms ({} ms the service's own)",
        repos.len(),
        figure(warm, "cpu_total_ms"),
        figure(warm, "cpu_own_ms"),
    );
    println!(
        "no-op cycle CPU: median {} ms",
        noop_cpu[noop_cpu.len() / 2]
    );
    println!(
        "no-op cycle: median {noop_ms} ms of {} (min {}, max {}; registry scan and choice median {} ms); {:.1}x faster than the cycle with updates",
        noop.len(),
        noop[0],
        noop[noop.len() - 1],
        noop_scan[noop_scan.len() / 2],
        update_ms as f64 / noop_ms.max(1) as f64
    );
    println!("peak RSS over {} cycles: {}", cycles.len(), mb(hwm_kb));
    println!(
        "registry requests per cycle {requests:?}; {}",
        v.target(
            &format!("scale {images}: registry requests per cycle {requests:?}"),
            requests.iter().all(|&r| r == unique),
            &format!("= {unique} unique repositories")
        )
    );
    match images {
        10_000 => println!(
            "no-op cycle: {}",
            v.target(
                &format!("scale {images}: no-op cycle {noop_ms} ms"),
                noop_ms < 300,
                "< 300 ms"
            )
        ),
        100_000 => {
            println!(
                "cycle with updates: {}",
                v.target(
                    &format!("scale {images}: cycle with updates {update_ms} ms"),
                    update_ms < 30_000,
                    "< 30 s"
                )
            );
            println!(
                "no-op cycle: {}",
                v.target(
                    &format!("scale {images}: no-op cycle {noop_ms} ms"),
                    noop_ms < 3_000,
                    "< 3 s"
                )
            );
            let rss = hwm_kb.unwrap_or(u64::MAX);
            println!(
                "peak RSS: {}",
                v.target(
                    &format!("scale {images}: peak RSS {}", mb(hwm_kb)),
                    rss < 250 * 1024,
                    "< 250 MB"
                )
            );
        }
        _ => {}
    }
}

/// User and system CPU of `pid`, and of the children it waited for, in ms (`/proc/PID/stat`).
fn cpu_ms(pid: u32) -> (u64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) in parentheses: utime is the
    // 14th field of the line, then stime, cutime, cstime; in clock ticks of 1/100 s.
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let ticks: Vec<u64> = after
        .split_whitespace()
        .skip(11)
        .take(4)
        .filter_map(|t| t.parse::<u64>().ok())
        .collect();
    match ticks[..] {
        [u, s, cu, cs] => ((u + s) * 10, (cu + cs) * 10),
        _ => (0, 0),
    }
}

/// Runs the service with back-to-back cycles until `cycles` summaries are logged; returns
/// them and the process's peak RSS (`VmHWM`) in KiB.
fn service_cycles(
    conf: &Path,
    state: &Path,
    cycles: usize,
) -> (Vec<serde_json::Value>, Option<u64>) {
    let mut child = Command::new(driftwatch())
        .args(["run", "--interval", "1", "--log-format", "json", "--config"])
        .arg(conf)
        .arg("--state-dir")
        .arg(state)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let pid = child.id();
    let running = Running(child);
    let lines = Arc::new(Mutex::new(Vec::<serde_json::Value>::new()));
    let sink = lines.clone();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if let Ok(mut v) = serde_json::from_str::<serde_json::Value>(&line)
                && v["msg"] == "cycle"
            {
                // The service's CPU so far, its git processes included: read as the summary
                // arrives, so consecutive readings give each cycle's CPU.
                let (own, children) = cpu_ms(pid);
                v["cpu_total_ms"] = (own + children).into();
                v["cpu_own_ms"] = own.into();
                sink.lock().unwrap().push(v);
            }
        }
    });
    let started = Instant::now();
    while lines.lock().unwrap().len() < cycles {
        assert!(
            started.elapsed() < Duration::from_secs(1800),
            "the service did not finish {cycles} cycles in 30 minutes"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let hwm = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        });
    drop(running);
    let cycles = lines.lock().unwrap().clone();
    (cycles, hwm)
}
