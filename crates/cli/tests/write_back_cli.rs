//! `driftwatch write-back` against a real bare repository.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use driftwatch_testkit::TempDir;
use driftwatch_testkit::git::{BareRepo, git};

const K: &str = "kind: Kustomization\nimages:\n- name: backend\n  newTag: v1.0.0\n- name: frontend\n  newTag: v2.5.0\n";
const V: &str = "image:\n  repository: ghcr.io/acme/worker\n  tag: \"0.3.0\" # pinned\n";

fn write_back(repo: &BareRepo, state: &TempDir, edits: &str) -> (i32, String, String) {
    let dir = TempDir::new("edits");
    let file = dir.path().join("edits.txt");
    std::fs::write(&file, edits).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_driftwatch"))
        .args([
            "write-back",
            "--repo",
            &repo.file_url(),
            "--branch",
            "main",
            "--app",
            "shop",
        ])
        .arg("--state-dir")
        .arg(state.path())
        .arg("--edits")
        .arg(&file)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn several_files_one_commit_then_nothing() {
    let repo = BareRepo::new(&[
        ("apps/shop/kustomization.yaml", K),
        ("charts/worker/values.yaml", V),
        ("README.md", "x\n"),
    ]);
    let state = TempDir::new("state");
    let edits = "# workflow scenario 2: backend and frontend in one commit\n\
                 apps/shop/kustomization.yaml backend v1.0.1\n\
                 apps/shop/kustomization.yaml frontend v2.6.0\n\
                 charts/worker/values.yaml ghcr.io/acme/worker 0.4.0 --helm-path image.tag\n";
    let (code, stdout, stderr) = write_back(&repo, &state, edits);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("3 image change(s) in 2 file(s)"),
        "{stdout}"
    );
    assert_eq!(repo.subjects("main").len(), 2);
    assert_eq!(
        git(&repo.path, &["log", "-1", "--format=%B", "main"]),
        "build: automatic update of shop\n\nupdates image backend tag 'v1.0.0' to 'v1.0.1'\nupdates image frontend tag 'v2.5.0' to 'v2.6.0'\nupdates image ghcr.io/acme/worker tag '0.3.0' to '0.4.0'\n\n"
    );
    assert_eq!(
        repo.show("main", "apps/shop/kustomization.yaml"),
        K.replace("v1.0.0", "v1.0.1").replace("v2.5.0", "v2.6.0")
    );
    assert_eq!(
        repo.show("main", "charts/worker/values.yaml"),
        V.replace("0.3.0", "0.4.0")
    );

    let (code, stdout, _) = write_back(&repo, &state, edits);
    assert_eq!((code, stdout.as_str()), (0, ""));
    assert_eq!(
        repo.subjects("main").len(),
        2,
        "running twice makes one commit"
    );
}

#[test]
fn a_failed_edit_commits_nothing() {
    let repo = BareRepo::new(&[
        ("apps/shop/kustomization.yaml", K),
        (
            "deploy.yaml",
            "kind: Deployment\nspec:\n  template:\n    spec:\n      containers:\n      - name: a\n        image: acme/a:1\n",
        ),
    ]);
    let state = TempDir::new("state");
    let edits = "apps/shop/kustomization.yaml backend v1.0.1\ndeploy.yaml acme/missing 2\n";
    let (code, _, stderr) = write_back(&repo, &state, edits);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("deploy.yaml") && stderr.contains("acme/missing"),
        "{stderr}"
    );
    assert_eq!(repo.subjects("main").len(), 1, "no partial commit");
}
