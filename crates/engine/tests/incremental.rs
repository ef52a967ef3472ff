//! Incremental cycles decide as full passes do. Over seeded random sequences of changes — new
//! tags, a mutable tag moved, commits by someone else, configuration edits, and the updater's
//! own commits — an updater that reuses its earlier evaluations and one that reads everything
//! every cycle report the same verdict for every image, against a real registry and real Git.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use driftwatch_engine::store::Store;
use driftwatch_engine::{App, Config, CycleReport, Mode, Updater};
use driftwatch_registry::RegistriesConf;
use driftwatch_testkit::TempDir;
use driftwatch_testkit::git::BareRepo;
use driftwatch_testkit::registry::{Auth, Registry};

/// xorshift64*: a reproducible sequence from the seed printed on failure.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n as u64).unwrap()
    }
}

/// (application, repository index, registry repository, strategy) of the scenario.
const APPS: [(&str, usize, &str, &str); 5] = [
    ("a0", 0, "team/r0", "semver"),
    ("a1", 0, "team/r0", "semver"),
    ("a2", 0, "team/r1", "semver"),
    ("b0", 1, "team/r1", "semver"),
    ("b1", 1, "team/r2", "digest"),
];

fn kustomization(host: &str, name: &str, repo: &str, tag: &str) -> String {
    format!(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nimages:\n- name: {name}\n  newName: {host}/{repo}\n  newTag: {tag}\n"
    )
}

fn config(host: &str, repos: &[BareRepo], constraints: &[Option<String>]) -> String {
    let mut yaml = String::from("applications:\n");
    for (i, (name, r, image, strategy)) in APPS.iter().enumerate() {
        yaml.push_str(&format!(
            "- name: {name}\n  repo: {}\n  path: apps/{name}\n  writeBack: kustomization\n  images:\n  - image: {host}/{image}\n    kustomizeName: {name}\n    strategy: {strategy}\n",
            repos[*r].file_url()
        ));
        let constraint = if *strategy == "digest" {
            Some("latest".to_owned())
        } else {
            constraints[i].clone()
        };
        if let Some(c) = constraint {
            yaml.push_str(&format!("    constraint: \"{c}\"\n"));
        }
    }
    yaml
}

fn apps(yaml: &str) -> Vec<App> {
    Config::parse(yaml, "driftwatch.yaml", Path::new("."))
        .unwrap()
        .apps
}

/// Every verdict of a report, in order, with what it rests on.
fn verdicts(r: &CycleReport) -> Vec<String> {
    r.images
        .iter()
        .map(|l| {
            format!(
                "{} {} {:?} registry={:?} git={:?} line={:?} file={} error={:?}",
                l.app, l.image, l.status, l.registry, l.git, l.line, l.file, l.error
            )
        })
        .collect()
}

/// Copies the history rows of the store in `from` that the store in `to` lacks.
fn share_history(from: &Path, to: &Path) {
    let rows = Store::open(from).unwrap().history(None, 10_000).unwrap();
    let mut target = Store::open(to).unwrap();
    let known: Vec<(String, String)> = target
        .history(None, 10_000)
        .unwrap()
        .into_iter()
        .map(|u| (u.commit, u.image))
        .collect();
    let missing: Vec<_> = rows
        .into_iter()
        .rev()
        .filter(|u| !known.contains(&(u.commit.clone(), u.image.clone())))
        .collect();
    target.record(&missing).unwrap();
}

/// The registry (r0 and r1 with v1.0.0 and v1.1.0, r2 with `latest`), its host, and the two
/// Git repositories with every application at v1.0.0 (or `latest`).
fn scenario() -> (Registry, String, Vec<BareRepo>) {
    let reg = Registry::start(Auth::None);
    let host = reg.host();
    for repo in ["team/r0", "team/r1"] {
        reg.push_tags(
            repo,
            &["v1.0.0".to_owned(), "v1.1.0".to_owned()],
            "2026-11-01T00:00:00Z",
        );
    }
    reg.push_image("team/r2", "latest", "2026-11-01T00:00:00Z");
    let files = |repo: usize| -> Vec<(String, String)> {
        APPS.iter()
            .filter(|a| a.1 == repo)
            .map(|(name, _, image, _)| {
                let tag = if image.ends_with("r2") {
                    "latest"
                } else {
                    "v1.0.0"
                };
                (
                    format!("apps/{name}/kustomization.yaml"),
                    kustomization(&host, name, image, tag),
                )
            })
            .collect()
    };
    let repos: Vec<BareRepo> = (0..2)
        .map(|r| {
            let f = files(r);
            let refs: Vec<(&str, &str)> = f.iter().map(|(p, c)| (p.as_str(), c.as_str())).collect();
            BareRepo::new(&refs)
        })
        .collect();
    (reg, host, repos)
}

#[test]
fn incremental_cycles_decide_as_full_passes() {
    let seed = std::env::var("DRIFTWATCH_INCREMENTAL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_1234_u64);
    eprintln!("seed {seed} (set DRIFTWATCH_INCREMENTAL_SEED to replay)");
    let mut rng = Rng(seed.max(1));
    let (reg, host, repos) = scenario();
    let mut constraints: Vec<Option<String>> = vec![None; APPS.len()];
    let mut current = apps(&config(&host, &repos, &constraints));
    let dir = TempDir::new("incremental");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // Never a full pass after the first: every later cycle may reuse what it can.
    let incremental = Updater::new(
        RegistriesConf::default(),
        dir.path().join("incremental"),
        &current,
    )
    .unwrap()
    .full_pass_every(u64::MAX);
    let full = Updater::new(RegistriesConf::default(), dir.path().join("full"), &current)
        .unwrap()
        .full_pass_every(1);
    let mut minor = 2u32;
    let mut reused = 0usize;
    let mut steps = Vec::new();
    for step in 0..30 {
        let what = match rng.below(6) {
            0 => {
                let repo = ["team/r0", "team/r1"][rng.below(2)];
                reg.push_image(repo, &format!("v1.{minor}.0"), "2026-11-02T00:00:00Z");
                minor += 1;
                format!("new tag v1.{}.0 in {repo}", minor - 1)
            }
            1 => {
                // The mutable tag moves to a new image: same tag list, another digest.
                reg.push_image("team/r2", "latest", &format!("2026-11-03T00:{step:02}:00Z"));
                "latest moved in team/r2".to_owned()
            }
            2 => {
                let (name, r, image, _) = APPS[rng.below(APPS.len())];
                let tag = if image.ends_with("r2") {
                    "latest".to_owned()
                } else {
                    format!("v1.{}.0", rng.below(minor as usize))
                };
                repos[r].commit_elsewhere(
                    &format!("apps/{name}/kustomization.yaml"),
                    // The comment makes every such commit change the file, whatever the tag.
                    &format!("{}# step {step}\n", kustomization(&host, name, image, &tag)),
                    &format!("pin {name} to {tag}"),
                );
                format!("someone pinned {name} to {tag}")
            }
            3 => {
                let i = rng.below(APPS.len());
                constraints[i] = match constraints[i] {
                    None => Some(format!("~1.{}", rng.below(minor as usize))),
                    Some(_) => None,
                };
                current = apps(&config(&host, &repos, &constraints));
                format!("constraint of {} is {:?}", APPS[i].0, constraints[i])
            }
            4 => {
                let r = rt.block_on(incremental.cycle(&current, Mode::Apply));
                // Once at the new heads, then from what it remembers: a full pass after it
                // must find nothing left to write, and decide the same.
                rt.block_on(incremental.cycle(&current, Mode::Apply));
                let again = rt.block_on(incremental.cycle(&current, Mode::Apply));
                // The commits are in the incremental side's history (a cycle records a push
                // it noted); the full side decides from the same history, as one service would.
                share_history(&dir.path().join("incremental"), &dir.path().join("full"));
                let checked = rt.block_on(full.cycle(&current, Mode::Apply));
                assert!(checked.commits.is_empty(), "seed {seed}: {checked:?}");
                assert_eq!(verdicts(&again), verdicts(&checked), "seed {seed}");
                reused += again.unchanged_apps;
                format!("the updater committed {}", r.commits.len())
            }
            _ => "nothing".to_owned(),
        };
        steps.push(what);
        let inc = rt.block_on(incremental.cycle(&current, Mode::DryRun));
        let all = rt.block_on(full.cycle(&current, Mode::DryRun));
        assert_eq!(
            verdicts(&inc),
            verdicts(&all),
            "seed {seed}, after {steps:#?}"
        );
        assert_eq!(all.unchanged_apps, 0, "a full pass reads everything");
        reused += inc.unchanged_apps;
    }
    eprintln!(
        "{reused} application evaluations reused over {} steps",
        steps.len()
    );
    // The comparison means something only if the incremental side did reuse evaluations.
    assert!(reused > 0, "no cycle reused an evaluation: {steps:#?}");

    // The safety net: every third cycle is a full pass, whatever stayed the same.
    let netted = Updater::new(
        RegistriesConf::default(),
        dir.path().join("netted"),
        &current,
    )
    .unwrap()
    .full_pass_every(3);
    let unchanged: Vec<usize> = (0..5)
        .map(|_| {
            rt.block_on(netted.cycle(&current, Mode::DryRun))
                .unchanged_apps
        })
        .collect();
    let n = APPS.len();
    assert_eq!(unchanged, [0, n, n, 0, n]);
}

/// A `check` run again (a new process on the same state) skips the repositories an earlier
/// one evaluated, as `run` does from cycle to cycle, and decides the same: a repository
/// whose head moved, or a changed configuration, is read again.
#[test]
fn a_new_process_takes_the_evaluations_an_earlier_one_left() {
    let (_reg, host, repos) = scenario();
    let mut constraints: Vec<Option<String>> = vec![None; APPS.len()];
    let current = apps(&config(&host, &repos, &constraints));
    let dir = TempDir::new("across-processes");
    let state = dir.path().join("state");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // Each `check` is a new updater, as each is a new process.
    let check = |apps: &[App]| {
        let u = Updater::new(RegistriesConf::default(), state.clone(), apps).unwrap();
        rt.block_on(u.cycle(apps, Mode::Check))
    };
    let full = |apps: &[App]| {
        let u = Updater::new(RegistriesConf::default(), dir.path().join("full"), apps)
            .unwrap()
            .full_pass_every(1);
        rt.block_on(u.cycle(apps, Mode::Check))
    };
    let first = check(&current);
    assert_eq!(first.unchanged_apps, 0, "nothing to take yet");
    let second = check(&current);
    assert_eq!(second.unchanged_apps, APPS.len(), "every repository taken");
    assert_eq!(verdicts(&second), verdicts(&first));
    assert!(
        second.images.iter().any(|l| l.git.is_some()),
        "the taken verdicts carry what Git said: {second:?}"
    );

    // Someone commits to the first repository: only the second's evaluation still stands.
    repos[0].commit_elsewhere(
        "apps/a0/kustomization.yaml",
        &kustomization(&host, "a0", "team/r0", "v1.1.0"),
        "pin a0",
    );
    let third = check(&current);
    let in_second = APPS.iter().filter(|a| a.1 == 1).count();
    assert_eq!(third.unchanged_apps, in_second);
    assert_eq!(verdicts(&third), verdicts(&full(&current)));

    // A configuration change is read again as well.
    constraints[3] = Some("~1.0".to_owned());
    let changed = apps(&config(&host, &repos, &constraints));
    let fourth = check(&changed);
    assert_eq!(fourth.unchanged_apps, APPS.len() - in_second);
    assert_eq!(verdicts(&fourth), verdicts(&full(&changed)));
}
