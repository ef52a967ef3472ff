//! Git reads are batched per repository: `check`, `run --dry-run`, `run --once` and `render`
//! read files through one long-lived `git cat-file --batch` per repository, never a `git`
//! process per file or application. Every `git` driftwatch starts is logged by a shim first on
//! `PATH` that then runs the real one.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use driftwatch_testkit::TempDir;
use driftwatch_testkit::git::BareRepo;
use driftwatch_testkit::registry::{Auth, Registry};

const APPS: usize = 6;

fn real_git() -> PathBuf {
    let out = Command::new("sh")
        .args(["-c", "command -v git"])
        .output()
        .unwrap();
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

/// A directory holding a `git` that appends its arguments to `log`, then execs the real git.
fn shim(dir: &Path, log: &Path) -> PathBuf {
    let bin = dir.join("shim-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let script = bin.join("git");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$*\" >>'{}'\nexec '{}' \"$@\"\n",
            log.display(),
            real_git().display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

struct Setup {
    _reg: Registry,
    repos: Vec<BareRepo>,
    dir: TempDir,
    conf: PathBuf,
    log: PathBuf,
    path: String,
}

/// Two repositories of three applications each; every image has a newer tag.
fn setup(name: &str) -> Setup {
    let reg = Registry::start(Auth::None);
    let host = reg.host();
    let mut repos = Vec::new();
    let mut yaml = String::from("interval: 1h\napplications:\n");
    for r in 0..2 {
        let mut files = Vec::new();
        for a in 0..APPS / 2 {
            let n = format!("app-{r}{a}");
            reg.push_image(&format!("team/{n}"), "v1.0.0", "2026-11-01T00:00:00Z");
            reg.push_image(&format!("team/{n}"), "v1.0.1", "2026-11-02T00:00:00Z");
            files.push((
                format!("apps/{n}/kustomization.yaml"),
                format!(
                    "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- cm.yaml\nimages:\n- name: {n}\n  newName: {host}/team/{n}\n  newTag: v1.0.0\n"
                ),
            ));
            files.push((
                format!("apps/{n}/cm.yaml"),
                format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {n}\ndata:\n  k: v\n"),
            ));
            yaml.push_str(&format!(
                "- name: {n}\n  repo: REPO{r}\n  path: apps/{n}\n  writeBack: kustomization\n  images:\n  - image: {host}/team/{n}\n    kustomizeName: {n}\n"
            ));
        }
        let refs: Vec<(&str, &str)> = files
            .iter()
            .map(|(p, c)| (p.as_str(), c.as_str()))
            .collect();
        let repo = BareRepo::new(&refs);
        yaml = yaml.replace(&format!("REPO{r}"), &repo.file_url());
        repos.push(repo);
    }
    let dir = TempDir::new(name);
    let conf = dir.path().join("driftwatch.yaml");
    std::fs::write(&conf, yaml).unwrap();
    let log = dir.path().join("git.log");
    let bin = shim(dir.path(), &log);
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    Setup {
        _reg: reg,
        repos,
        dir,
        conf,
        log,
        path,
    }
}

impl Setup {
    /// Runs driftwatch with the shim on `PATH`; returns the exit code, stdout and the `git`
    /// command lines driftwatch itself started (those naming the mirror with `--git-dir`).
    fn run(&self, args: &[&str]) -> (i32, String, Vec<String>) {
        let _ = std::fs::remove_file(&self.log);
        let out = Command::new(env!("CARGO_BIN_EXE_driftwatch"))
            .args(args)
            .arg("--config")
            .arg(&self.conf)
            .arg("--state-dir")
            .arg(self.dir.path().join("state"))
            .env("PATH", &self.path)
            .output()
            .unwrap();
        let calls = std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.starts_with("--git-dir"))
            .map(|l| l.split_once(' ').map_or("", |(_, rest)| rest).to_owned())
            .map(|l| l.split_once(' ').map_or("", |(_, rest)| rest).to_owned())
            .collect();
        (
            out.status.code().unwrap(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
            calls,
        )
    }
}

fn count(calls: &[String], prefix: &str) -> usize {
    calls.iter().filter(|c| c.starts_with(prefix)).count()
}

/// No `cat-file -e`, `cat-file blob`, `show` or `archive`: file reads go through `--batch`.
fn assert_batched(calls: &[String], max_batches: usize, what: &str) {
    let per_file: Vec<&String> = calls
        .iter()
        .filter(|c| {
            c.starts_with("cat-file -e")
                || c.starts_with("cat-file blob")
                || c.starts_with("show")
                || c.starts_with("archive")
        })
        .collect();
    assert!(per_file.is_empty(), "{what}: {per_file:?} in {calls:#?}");
    let batches = count(calls, "cat-file --batch");
    assert!(
        (1..=max_batches).contains(&batches),
        "{what}: {batches} cat-file --batch for 2 repositories: {calls:#?}"
    );
}

#[test]
fn check_and_dry_run_read_each_repository_through_one_batch() {
    let s = setup("git-batched-check");
    let (code, out, calls) = s.run(&["check"]);
    assert_eq!(code, 2, "{out}");
    assert_eq!(out.matches("update available").count(), APPS, "{out}");
    assert_batched(&calls, 2, "check");

    let (code, out, calls) = s.run(&["run", "--once", "--dry-run"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out.matches("update available").count(), APPS, "{out}");
    assert_batched(&calls, 2, "run --dry-run");

    let (code, out, calls) = s.run(&["run", "--once"]);
    assert_eq!(code, 0, "{out}");
    let table = out.lines().filter(|l| l.ends_with("  updated")).count();
    assert_eq!(table, APPS, "{out}");
    assert_batched(&calls, 2, "run --once");
    for repo in &s.repos {
        assert_eq!(repo.subjects("main").len(), 2);
    }
}

#[test]
fn render_reads_the_tree_through_one_batch() {
    let s = setup("git-batched-render");
    let (code, out, calls) = s.run(&["render", "app-01"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("\"name\":\"app-01\""), "{out}");
    assert_batched(&calls, 1, "render");
}

/// In service mode, a cycle in which no repository head, application or chosen tag changed
/// reads no file: after the update cycle and the one reading the new heads, each repository
/// costs its fetch and nothing else.
#[test]
fn no_op_service_cycles_read_no_files() {
    let s = setup("git-batched-service");
    let _ = std::fs::remove_file(&s.log);
    let mut child = Command::new(env!("CARGO_BIN_EXE_driftwatch"))
        .args(["run", "--interval", "1", "--log-format", "json", "--config"])
        .arg(&s.conf)
        .arg("--state-dir")
        .arg(s.dir.path().join("state"))
        .env("PATH", &s.path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Lines as they come: the service is stopped once four cycles have been summed up.
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)) {
            let _ = tx.send(line.unwrap());
        }
    });
    let mut log = String::new();
    let mut cycles: Vec<serde_json::Value> = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while cycles.len() < 4 {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
            .unwrap_or_else(|_| panic!("four cycles did not come: {log}"));
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
            && v["msg"] == "cycle"
        {
            cycles.push(v);
        }
        log.push_str(&line);
        log.push('\n');
    }
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    assert!(child.wait().unwrap().success());
    reader.join().unwrap();
    // A cycle may have ended between the fourth summary and the stop: its lines count too.
    for line in rx.try_iter() {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
            && v["msg"] == "cycle"
        {
            cycles.push(v);
        }
    }
    // Fewer than ten, so no full pass falls among them.
    assert!((4..10).contains(&cycles.len()), "{log}");
    assert_eq!(cycles[0]["changes"], APPS, "{log}");
    let calls: Vec<String> = std::fs::read_to_string(&s.log)
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("--git-dir"))
        .map(|l| l.splitn(3, ' ').nth(2).unwrap_or("").to_owned())
        .collect();
    // Two repositories read in the update cycle and again at their new heads; never after.
    assert_eq!(count(&calls, "cat-file --batch"), 4, "{calls:#?}");
    // Each repository is fetched in the update cycle and once more for the head it pushed;
    // after that its ref files say it has not moved, and a no-op cycle starts no git at all.
    assert_eq!(count(&calls, "fetch "), 4, "{calls:#?}");
    // The fetched head is read from the ref file, the commit built in-process, and a new
    // mirror's remote written into its config without `git config`.
    for plumbing in [
        "rev-parse",
        "config",
        "hash-object",
        "write-tree",
        "commit-tree",
    ] {
        assert_eq!(count(&calls, plumbing), 0, "{plumbing}: {calls:#?}");
    }
    assert_eq!(count(&calls, "push "), 2, "{calls:#?}");
    for c in &cycles[2..] {
        assert_eq!(c["unchanged_apps"], APPS, "{log}");
    }
}
