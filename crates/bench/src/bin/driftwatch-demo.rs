//! `scripts/demo`: the main job on its embedded default. A throwaway real registry and Git
//! repository, example images pushed to it, and driftwatch finding and fixing the drift — the
//! scenarios of the workflow document, narrated.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use driftwatch_testkit::TempDir;
use driftwatch_testkit::git::{BareRepo, git};
use driftwatch_testkit::registry::{Auth, Registry};

fn driftwatch() -> PathBuf {
    std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .join("driftwatch")
}

fn step(start: Instant, text: &str) {
    println!(
        "\n\x1b[1m[{:>6.2}s] {text}\x1b[0m",
        start.elapsed().as_secs_f64()
    );
}

fn show(args: &[&str]) -> i32 {
    println!("$ driftwatch {}", args.join(" "));
    let status = Command::new(driftwatch()).args(args).status().unwrap();
    status.code().unwrap_or(1)
}

fn main() {
    let t0 = Instant::now();
    step(
        t0,
        "Starting a real registry (Debian's docker-registry) and a Git repository",
    );
    let reg = Registry::start(Auth::None);
    let host = reg.host();
    let base = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- deployment.yaml\nimages:\n- name: backend\n  newName: REG/shop/backend\n  newTag: v1.0.0\n- name: frontend\n  newName: REG/shop/frontend\n  newTag: v2.5.0\n".replace("REG", &host);
    let prod = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- ../../base\nimages:\n- name: backend\n  newName: REG/shop/backend\n  newTag: v1.0.5 # production: patches only\n".replace("REG", &host);
    let repo = BareRepo::new(&[
        ("manifests/base/kustomization.yaml", &base),
        (
            "manifests/base/deployment.yaml",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: backend\nspec:\n  template:\n    spec:\n      containers:\n      - name: backend\n        image: backend\n",
        ),
        ("manifests/overlays/production/kustomization.yaml", &prod),
    ]);
    println!("registry:   http://{host}");
    println!("repository: {}", repo.file_url());
    for (image, tag) in [
        ("shop/backend", "v1.0.0"),
        ("shop/backend", "v1.0.5"),
        ("shop/frontend", "v2.5.0"),
    ] {
        reg.push_image(image, tag, "2026-11-20T10:00:00Z");
        println!("pushed {host}/{image}:{tag}");
    }

    let dir = TempDir::new("demo");
    let config = dir.path().join("driftwatch.yaml");
    std::fs::write(
        &config,
        format!(
            r#"applications:
- name: shop
  repo: {repo}
  path: manifests/base
  writeBack: kustomization
  images:
  - image: {host}/shop/backend
    kustomizeName: backend
  - image: {host}/shop/frontend
    kustomizeName: frontend
- name: shop-prod
  repo: {repo}
  path: manifests/overlays/production
  writeBack: kustomization
  images:
  - image: {host}/shop/backend
    kustomizeName: backend
    constraint: "~1.0"
    allowTags: regexp:^v[0-9]+\.[0-9]+\.[0-9]+$
    ignoreTags: ["*-rc*"]
"#,
            repo = repo.file_url()
        ),
    )
    .unwrap();
    println!(
        "\nconfiguration ({}):\n{}",
        config.display(),
        std::fs::read_to_string(&config).unwrap()
    );
    let conf = config.display().to_string();
    let state = dir.path().join("state").display().to_string();
    let args = |cmd: &[&'static str]| -> Vec<String> {
        let mut v: Vec<String> = cmd.iter().map(|s| (*s).to_owned()).collect();
        v.extend([
            "--config".to_owned(),
            conf.clone(),
            "--state-dir".to_owned(),
            state.clone(),
        ]);
        v
    };
    let run = |cmd: &[&'static str]| {
        let a = args(cmd);
        let refs: Vec<&str> = a.iter().map(String::as_str).collect();
        show(&refs)
    };

    step(
        t0,
        "1. Git and the registry agree: nothing drifts (exit code 0)",
    );
    let code = run(&["check"]);
    println!("exit code {code}");

    step(
        t0,
        "2. CI pushes new builds: backend v1.0.1, v1.0.6, v1.1.0, v2.0.0, an rc, and frontend v2.6.0",
    );
    let pushed = Instant::now();
    for (image, tag) in [
        ("shop/backend", "v1.0.1"),
        ("shop/backend", "v1.0.6"),
        ("shop/backend", "v1.1.0"),
        ("shop/backend", "v2.0.0"),
        ("shop/backend", "v1.0.7-rc1"),
        ("shop/frontend", "v2.6.0"),
    ] {
        reg.push_image(image, tag, "2026-11-25T10:00:00Z");
        println!("pushed {host}/{image}:{tag}");
    }

    step(
        t0,
        "3. The drift report: registry ↔ Git, per image (exit code 2: drift)",
    );
    let code = run(&["check"]);
    println!("exit code {code}");

    step(
        t0,
        "4. driftwatch run --once: choose by policy, write back, one commit for the repository",
    );
    let before = Instant::now();
    run(&["run", "--once"]);
    let committed = before.elapsed();

    step(t0, "5. The commit it made");
    println!(
        "{}",
        git(
            &repo.path,
            &[
                "log",
                "-1",
                "--stat",
                "--format=commit %H%nAuthor: %an <%ae>%n%n%B",
                "main"
            ]
        )
    );
    println!("{}", git(&repo.path, &["show", "--format=", "main"]));

    step(
        t0,
        "6. Running again changes nothing: no commit, nothing drifts",
    );
    run(&["run", "--once"]);
    let code = run(&["check"]);
    println!(
        "exit code {code}; commits on main: {}",
        repo.subjects("main").len()
    );

    step(t0, "Timeline of the change");
    println!("  images pushed            t = 0");
    println!(
        "  drift found and commit pushed by one `run --once`: {:.0} ms (started {:.1} s after the push, by this script)",
        committed.as_secs_f64() * 1000.0,
        (before - pushed).as_secs_f64()
    );
    println!("  the workflow document's updater waits ~125 s for its next 2-minute poll");
}
