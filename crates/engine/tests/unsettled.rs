//! A process killed between a push and its history write loses no history row: the updates
//! of a commit are noted in the store before the push, and the next cycle (after a restart)
//! turns those the branch holds into history rows, once, and drops those it does not hold.
//! Against a real registry and real Git; the "kill" is a cycle whose report nobody records,
//! which is what the service's history write missing looks like to the store.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use driftwatch_engine::store::{Store, Update};
use driftwatch_engine::{Config, Mode, Status, Updater};
use driftwatch_registry::RegistriesConf;
use driftwatch_testkit::TempDir;
use driftwatch_testkit::git::{BareRepo, git};
use driftwatch_testkit::registry::{Auth, Registry};

fn kustomization(host: &str, tag: &str) -> String {
    format!(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nimages:\n- name: {host}/team/web\n  newTag: {tag}\n"
    )
}

#[test]
fn a_push_whose_history_write_was_lost_is_recorded_after_a_restart() {
    let reg = Registry::start(Auth::None);
    let host = reg.host();
    reg.push_tags(
        "team/web",
        &["v1.0.0".to_owned(), "v1.1.0".to_owned()],
        "2026-11-01T00:00:00Z",
    );
    let repo = BareRepo::new(&[(
        "apps/web/kustomization.yaml",
        &kustomization(&host, "v1.0.0"),
    )]);
    let yaml = format!(
        "applications:\n- name: web\n  repo: {}\n  path: apps/web\n  writeBack: kustomization\n  images:\n  - image: {host}/team/web\n    strategy: semver\n",
        repo.file_url()
    );
    let apps = Config::parse(&yaml, "driftwatch.yaml", Path::new("."))
        .unwrap()
        .apps;
    let dir = TempDir::new("unsettled");
    let state = dir.path().join("state");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let updater = || Updater::new(RegistriesConf::default(), state.clone(), &apps).unwrap();

    // The first process pushes v1.1.0 and "dies" before its history write.
    let report = rt.block_on(updater().cycle(&apps, Mode::Apply));
    assert_eq!(report.images[0].status, Status::Updated, "{report:?}");
    let pushed = report.commits[0].commit.clone();
    assert_eq!(git(&repo.path, &["rev-parse", "main"]).trim(), pushed);
    let store = Store::open(&state).unwrap();
    assert!(store.history(None, 10).unwrap().is_empty());
    let noted = store.unsettled().unwrap();
    assert_eq!(noted.len(), 1, "{noted:?}");
    assert_eq!(
        (noted[0].commit.as_str(), noted[0].branch.as_str()),
        (pushed.as_str(), "main")
    );
    drop(store);
    // A push that never happened (killed before it, or lost a race) was noted too.
    let never = "0123456789abcdef0123456789abcdef01234567";
    Store::open(&state)
        .unwrap()
        .pushing(&[Update {
            commit: never.to_owned(),
            new: "v9.9.9".to_owned(),
            ..noted[0].clone()
        }])
        .unwrap();

    // After the restart the next cycle settles both: one history row for the pushed commit,
    // nothing for the other.
    let restarted = updater();
    let report = rt.block_on(restarted.cycle(&apps, Mode::Apply));
    assert_eq!(report.images[0].status, Status::InSync, "{report:?}");
    assert!(report.commits.is_empty());
    let store = Store::open(&state).unwrap();
    let history = store.history(None, 10).unwrap();
    assert_eq!(history.len(), 1, "{history:?}");
    let row = &history[0];
    assert_eq!(
        (
            row.app.as_str(),
            row.old.as_str(),
            row.new.as_str(),
            row.commit.as_str(),
            row.branch.as_str()
        ),
        ("web", "v1.0.0", "v1.1.0", pushed.as_str(), "main")
    );
    assert!(row.image.ends_with("/team/web"), "{row:?}");
    assert!(store.unsettled().unwrap().is_empty());

    // Settled once: further cycles add nothing.
    rt.block_on(restarted.cycle(&apps, Mode::Apply));
    assert_eq!(
        Store::open(&state)
            .unwrap()
            .history(None, 10)
            .unwrap()
            .len(),
        1
    );

    // The ordinary path: the service records the cycle's rows, which replace what was noted,
    // so the next cycle does not record the commit a second time.
    reg.push_tags("team/web", &["v1.2.0".to_owned()], "2026-11-02T00:00:00Z");
    let report = rt.block_on(restarted.cycle(&apps, Mode::Apply));
    let second = report.commits[0].commit.clone();
    let mut store = Store::open(&state).unwrap();
    let rows: Vec<Update> = store.unsettled().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].commit, second);
    store.record(&rows).unwrap();
    assert!(store.unsettled().unwrap().is_empty());
    rt.block_on(restarted.cycle(&apps, Mode::Apply));
    let history = Store::open(&state).unwrap().history(None, 10).unwrap();
    assert_eq!(
        history.iter().map(|u| u.new.as_str()).collect::<Vec<_>>(),
        ["v1.2.0", "v1.1.0"]
    );
}
