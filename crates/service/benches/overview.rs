//! The status page's overview (`GET /`) for 1,000 applications: server time (target < 50 ms)
//! and page weight (target < 150 KB).
//!
//! What the handler does, in the same order: read the newest 500 updates from the history
//! database, join them with the configured applications and the status view, and render the
//! HTML. The fixture is realistic: every application has a sync policy, two in ten are
//! OutOfSync with drifted objects, some are Degraded or Progressing with a reason, every one
//! has a synced revision, and the history holds digest-pinned and plain tags.
//!
//! The weight is what a browser downloads: the HTML body gzipped, as the page's router sends
//! it to a browser that accepts gzip (flate2's default level, the one tower-http uses). The
//! uncompressed size is reported beside it. Both are printed and written to
//! `CRITERION_HOME/overview-weight.json` for `scripts/bench`, and this bench exits non-zero
//! when the weight is over the target.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use driftwatch_cluster::Health;
use driftwatch_deploy::{AppStatus, SyncStatus};
use driftwatch_engine::Config;
use driftwatch_engine::store::{Store, Update};
use driftwatch_service::page::{build_rows, view};
use driftwatch_testkit::TempDir;

const APPS: usize = 1000;
/// What the overview reads from the history (the handler's limit).
const HISTORY: usize = 500;
/// Bytes the overview may weigh.
const TARGET_BYTES: usize = 150 * 1024;

fn name(i: usize) -> String {
    const TEAMS: [&str; 5] = ["payments", "checkout", "search", "identity", "platform"];
    format!("{}-service-{i:04}", TEAMS[i % TEAMS.len()])
}

fn config() -> Config {
    let mut y = String::from("interval: 2m\napplications:\n");
    for i in 0..APPS {
        let n = name(i);
        y.push_str(&format!(
            "- name: {n}\n  repo: https://git.example.com/platform/deploy.git\n  path: apps/{n}\n  writeBack: kustomization\n  sync:\n    namespace: {n}\n    automated: {{selfHeal: {}, prune: true}}\n  images:\n  - image: registry.example.com/team/{n}\n    kustomizeName: app\n  - image: registry.example.com/team/{n}-worker\n    kustomizeName: worker\n",
            i % 3 != 0
        ));
    }
    Config::parse(&y, "driftwatch.yaml", Path::new(".")).unwrap()
}

fn stamp(i: usize) -> String {
    format!(
        "2026-11-{:02}T{:02}:{:02}:{:02}Z",
        1 + i % 28,
        i % 24,
        (i * 7) % 60,
        (i * 13) % 60
    )
}

fn statuses() -> Vec<AppStatus> {
    (0..APPS)
        .map(|i| {
            let drifted = i % 5 == 0;
            let (health, detail) = match i % 17 {
                0 => (
                    Some(Health::Degraded),
                    "Deployment/app: ProgressDeadlineExceeded: ReplicaSet has timed out progressing"
                        .to_owned(),
                ),
                1 => (
                    Some(Health::Progressing),
                    "Deployment/app: 2 of 3 updated replicas are available".to_owned(),
                ),
                _ => (Some(Health::Healthy), String::new()),
            };
            AppStatus {
                app: name(i),
                revision: format!("{:040x}", (i as u128 + 1) * 0x9e37_79b9_7f4a_7c15),
                at: stamp(i),
                sync: if drifted {
                    SyncStatus::OutOfSync
                } else {
                    SyncStatus::Synced
                },
                health,
                detail,
                out_of_sync: if drifted {
                    (0..1 + i % 3)
                        .map(|k| {
                            (
                                format!("apps/v1/Deployment/{}/app-{k}", name(i)),
                                vec![
                                    "spec.replicas".to_owned(),
                                    "spec.template.spec.containers[0].image".to_owned(),
                                ],
                            )
                        })
                        .collect()
                } else {
                    vec![]
                },
                automated: true,
                self_heal: i % 3 != 0,
            }
        })
        .collect()
}

/// The newest updates: most applications got one recently, some several.
fn updates() -> Vec<Update> {
    (0..HISTORY * 2)
        .map(|k| {
            let i = (k * 7) % APPS;
            let n = name(i);
            let tag = format!("v1.{}.{}", k % 40, k % 9);
            Update {
                app: n.clone(),
                image: format!("registry.example.com/team/{n}"),
                old: "v1.0.0".to_owned(),
                new: if k % 4 == 0 {
                    format!("{tag}@sha256:{:064x}", k as u128 * 0x1234_5678_9abc_def1)
                } else {
                    tag
                },
                commit: format!("{:040x}", k as u128 * 0x0f0f_1234_5555),
                repo: "https://git.example.com/platform/deploy.git".to_owned(),
                branch: "main".to_owned(),
                seen_at: stamp(k),
                decided_at: stamp(k),
                committed_at: stamp(k),
            }
        })
        .collect()
}

/// The size of `page` gzipped at the default level.
fn gzipped(page: &str) -> usize {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(page.as_bytes()).unwrap();
    gz.finish().unwrap().len()
}

/// The overview's HTML, as `GET /` builds it.
fn overview(state: &Path, cfg: &Config, status: &[AppStatus]) -> String {
    let history = Store::open(state).unwrap().history(None, HISTORY).unwrap();
    let rows = build_rows(&cfg.apps, Some(status), &history);
    view::overview(&rows, "", true, None).into_string()
}

fn bench(c: &mut Criterion) {
    let dir = TempDir::new("overview-bench");
    Store::open(dir.path()).unwrap().record(&updates()).unwrap();
    let cfg = config();
    let status = statuses();

    let page = overview(dir.path(), &cfg, &status);
    assert_eq!(
        page.matches("href=\"/apps/").count(),
        APPS,
        "every row is there"
    );
    let raw = page.len();
    let weight = gzipped(&page);
    println!(
        "overview for {APPS} applications: page weight {:.1} KB gzipped ({weight} bytes; {:.1} KB, {:.0} bytes per row, uncompressed); target < {} KB: {}",
        weight as f64 / 1024.0,
        raw as f64 / 1024.0,
        raw as f64 / APPS as f64,
        TARGET_BYTES / 1024,
        if weight < TARGET_BYTES {
            "met"
        } else {
            "MISSED"
        }
    );
    let home = std::env::var_os("CRITERION_HOME")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/criterion"));
    let _ = std::fs::create_dir_all(&home);
    let _ = std::fs::write(
        home.join("overview-weight.json"),
        format!("{{\"apps\":{APPS},\"gzip_bytes\":{weight},\"raw_bytes\":{raw}}}"),
    );

    let mut group = c.benchmark_group("overview");
    group.sample_size(30);
    group.bench_function("1000_apps", |b| {
        b.iter(|| overview(black_box(dir.path()), black_box(&cfg), black_box(&status)))
    });
    group.finish();

    if weight >= TARGET_BYTES {
        eprintln!(
            "target missed: overview page weight {weight} bytes gzipped (target < {TARGET_BYTES})"
        );
        std::process::exit(1);
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
