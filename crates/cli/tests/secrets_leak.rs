//! Failing paths with secret-bearing configuration never print the secrets: a registry that
//! refuses the password, a Git server that refuses the token, webhooks with a wrong bearer and
//! a wrong signature, and a kubeconfig whose bearer token goes to an unreachable server. Every
//! command's stdout and stderr (at debug level) and every file in the state dir (the SQLite
//! history included, as bytes) are scanned for each secret.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use driftwatch_testkit::git::{BareRepo, GitHttp};
use driftwatch_testkit::http::request;
use driftwatch_testkit::registry::{Auth, Registry};
use driftwatch_testkit::{TempDir, free_port, wait_for_port};

/// What driftwatch is given (all wrong, so every path fails) and what the servers expect.
const REG_PASSWORD: &str = "reg-wrong-pw-5e1d";
const GIT_TOKEN: &str = "git-wrong-token-3c9b";
const HOOK_SECRET: &str = "hook-secret-a41f";
const WRONG_BEARER: &str = "wrong-bearer-0b6e";
const KUBE_TOKEN: &str = "kube-bearer-token-77d0";
const SECRETS: [&str; 5] = [
    REG_PASSWORD,
    GIT_TOKEN,
    HOOK_SECRET,
    WRONG_BEARER,
    KUBE_TOKEN,
];

fn dw(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_driftwatch"));
    c.args(args)
        .env("HOME", "/nonexistent")
        .env("RUST_LOG", "debug")
        .env("REG_CREDS", format!("puller:{REG_PASSWORD}"))
        .env("GIT_CREDS", format!("bot:{GIT_TOKEN}"))
        .env("HOOK_SECRET", HOOK_SECRET);
    c
}

fn assert_clean(what: &str, bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    for s in SECRETS {
        assert!(!text.contains(s), "{what} contains {s:?}:\n{text}");
    }
}

/// `out` failed for the reason `expected` names (so the secret was really used and refused)
/// and says none of the secrets.
fn check_output(what: &str, expected: &str, out: &Output) {
    assert_ne!(out.status.code(), Some(0), "{what} should fail: {out:?}");
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        all.contains(expected),
        "{what}: expected {expected:?} in\n{all}"
    );
    assert_clean(&format!("{what}: stdout"), &out.stdout);
    assert_clean(&format!("{what}: stderr"), &out.stderr);
}

fn scan_dir(dir: &Path) -> usize {
    let mut files = 0;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    for e in entries.flatten() {
        let p = e.path();
        let meta = std::fs::symlink_metadata(&p).unwrap();
        if meta.is_dir() {
            files += scan_dir(&p);
        } else if meta.is_file() {
            assert_clean(&p.display().to_string(), &std::fs::read(&p).unwrap());
            files += 1;
        }
    }
    files
}

#[test]
fn failing_paths_never_reveal_secrets() {
    let reg = Registry::start(Auth::Basic("puller".into(), "the-real-pw".into()));
    reg.push_image("shop/backend", "v1.0.1", "2026-11-01T00:00:00Z");
    let k = format!(
        "kind: Kustomization\nresources:\n- deploy.yaml\nimages:\n- name: backend\n  newName: {}/shop/backend\n  newTag: v1.0.0\n",
        reg.host()
    );
    let deploy = format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: backend\nspec:\n  selector:\n    matchLabels: {{app: backend}}\n  template:\n    metadata:\n      labels: {{app: backend}}\n    spec:\n      containers:\n      - name: backend\n        image: {}/shop/backend:v1.0.0\n",
        reg.host()
    );
    let repo = BareRepo::new(&[
        ("apps/shop/kustomization.yaml", &k),
        ("apps/shop/deploy.yaml", &deploy),
    ]);
    let git_http = GitHttp::start(repo.path.parent().unwrap(), "bot", "the-real-token");
    let repo_url = format!("http://127.0.0.1:{}/repo.git", git_http.port);

    let dir = TempDir::new("secrets");
    let state = dir.path().join("state");
    let conf = dir.path().join("driftwatch.yaml");
    std::fs::write(
        &conf,
        format!(
            "interval: 1h\napplications:\n- name: shop\n  repo: {repo_url}\n  branch: main\n  gitCredentials: {{env: GIT_CREDS}}\n  path: apps/shop\n  writeBack: kustomization\n  sync:\n    namespace: shop\n    automated: {{selfHeal: true}}\n  images:\n  - image: {}/shop/backend\n    kustomizeName: backend\n    credentials: env:REG_CREDS\n",
            reg.host()
        ),
    )
    .unwrap();
    // The same with a repository that works, so the registry and the cluster are reached.
    let conf_ok = dir.path().join("driftwatch-ok.yaml");
    std::fs::write(
        &conf_ok,
        std::fs::read_to_string(&conf)
            .unwrap()
            .replace(&repo_url, &repo.file_url())
            .replace("  gitCredentials: {env: GIT_CREDS}\n", ""),
    )
    .unwrap();
    // A bearer token for a server nobody listens on.
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: gone\n  cluster:\n    server: https://127.0.0.1:{}\n    insecure-skip-tls-verify: true\nusers:\n- name: u\n  user:\n    token: {KUBE_TOKEN}\ncontexts:\n- name: gone\n  context:\n    cluster: gone\n    user: u\ncurrent-context: gone\n",
            free_port()
        ),
    )
    .unwrap();
    let edits = dir.path().join("edits");
    std::fs::write(
        &edits,
        format!(
            "apps/shop/kustomization.yaml {}/shop/backend v1.0.1\n",
            reg.host()
        ),
    )
    .unwrap();

    let (c, ok, s, k, e) = (
        conf.to_str().unwrap(),
        conf_ok.to_str().unwrap(),
        state.to_str().unwrap(),
        kubeconfig.to_str().unwrap(),
        edits.to_str().unwrap(),
    );
    let runs: [(&str, Vec<&str>); 10] = [
        (
            "check (registry refuses)",
            vec!["check", "--config", ok, "--state-dir", s],
        ),
        (
            "run --once (registry refuses)",
            vec!["run", "--once", "--config", ok, "--state-dir", s],
        ),
        (
            "check --kubeconfig (cluster unreachable)",
            vec!["check", "--config", ok, "--state-dir", s, "--kubeconfig", k],
        ),
        (
            "sync (cluster unreachable)",
            vec![
                "sync",
                "shop",
                "--config",
                ok,
                "--state-dir",
                s,
                "--kubeconfig",
                k,
            ],
        ),
        ("check", vec!["check", "--config", c, "--state-dir", s]),
        (
            "check --kubeconfig",
            vec!["check", "--config", c, "--state-dir", s, "--kubeconfig", k],
        ),
        (
            "run --once",
            vec!["run", "--once", "--config", c, "--state-dir", s],
        ),
        (
            "run --once --kubeconfig",
            vec![
                "run",
                "--once",
                "--config",
                c,
                "--state-dir",
                s,
                "--kubeconfig",
                k,
            ],
        ),
        (
            "write-back",
            vec![
                "write-back",
                "--repo",
                &repo_url,
                "--credentials-env",
                "GIT_CREDS",
                "--edits",
                e,
                "--state-dir",
                s,
            ],
        ),
        (
            "sync",
            vec![
                "sync",
                "shop",
                "--config",
                c,
                "--state-dir",
                s,
                "--kubeconfig",
                k,
            ],
        ),
    ];
    for (what, args) in &runs {
        let expected = if what.contains("registry") {
            "HTTP 401 with the configured credentials"
        } else if what.contains("cluster") {
            "tcp connect error"
        } else {
            "Authentication failed"
        };
        check_output(what, expected, &dw(args).output().unwrap());
    }

    // The service: webhooks with a wrong bearer and a wrong signature are refused, and neither
    // the secret nor what the caller sent is logged.
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let child = dw(&[
        "run",
        "--config",
        ok,
        "--state-dir",
        s,
        "--kubeconfig",
        k,
        "--listen",
        &listen,
        "--webhook-secret-env",
        "HOOK_SECRET",
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    assert!(wait_for_port(port, Duration::from_secs(20)));
    let base = format!("http://{listen}");
    let body = reg.push_event("shop/backend", "sha256:00", "v1.0.1");
    let bearer = format!("Bearer {WRONG_BEARER}");
    let signature = format!("sha256={}", "ab".repeat(32));
    for (path, headers) in [
        ("/webhook", vec![("Authorization", bearer.as_str())]),
        ("/webhook/git", vec![("Authorization", bearer.as_str())]),
        (
            "/webhook/git",
            vec![
                ("X-GitHub-Event", "push"),
                ("X-Hub-Signature-256", signature.as_str()),
            ],
        ),
        (
            "/webhook/git",
            vec![
                ("X-Gitlab-Event", "Push Hook"),
                ("X-Gitlab-Token", WRONG_BEARER),
            ],
        ),
    ] {
        let (code, _, reply) =
            request("POST", &format!("{base}{path}"), &headers, body.as_bytes()).unwrap();
        assert_eq!(code, 401, "{path}");
        assert_clean(&format!("{path} reply"), &reply);
    }
    // Let a cycle fail against the registry, Git and the cluster, then stop the service.
    std::thread::sleep(Duration::from_secs(3));
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let out = child.wait_with_output().unwrap();
    assert_clean("run (service): stdout", &out.stdout);
    assert_clean("run (service): stderr", &out.stderr);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("127.0.0.1"),
        "the failures were logged at all: {stderr}"
    );

    assert!(scan_dir(&state) > 0, "the state dir holds files");
}
