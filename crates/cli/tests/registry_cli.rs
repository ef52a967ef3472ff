//! `driftwatch test` and `driftwatch tags` against Debian's docker-registry: anonymous, basic
//! auth, bearer tokens, and forced paging.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use driftwatch_testkit::registry::{Auth, PagingProxy, Registry};

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn dw(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_driftwatch"));
    cmd.args(args)
        .env("HOME", "/nonexistent")
        .env_remove("DOCKER_CONFIG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    Run {
        code: out.status.code().unwrap(),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

fn seed(reg: &Registry) {
    for (tag, day) in [
        ("v1.0.5", "01"),
        ("v1.0.6", "02"),
        ("v1.1.0", "03"),
        ("v2.0.0", "04"),
        ("v1.1.0-rc.1", "05"),
    ] {
        reg.push_image("shop/backend", tag, &format!("2026-11-{day}T10:00:00Z"));
    }
    reg.push_index(
        "shop/multi",
        "1.0.0",
        &["linux/amd64", "linux/arm64"],
        "2026-11-01T00:00:00Z",
    );
    reg.push_index(
        "shop/multi",
        "1.1.0",
        &["linux/amd64"],
        "2026-11-02T00:00:00Z",
    );
    reg.push_image("shop/backend", "dev-latest", "2026-11-06T10:00:00Z");
}

#[test]
fn anonymous_registry_semver_newest_platform_digest() {
    let reg = Registry::start(Auth::None);
    seed(&reg);
    let image = format!("{}/shop/backend", reg.host());

    let r = dw(&["test", &image, "--constraint", "~1.0", "-q"], &[]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "v1.0.6\n"), "{}", r.stderr);

    // The image-list form carries the constraint.
    let r = dw(&["test", &format!("{image}:^1.0"), "-q"], &[]);
    assert_eq!(r.stdout, "v1.1.0\n", "{}", r.stderr);

    let r = dw(&["test", &image, "--strategy", "newest-build", "-q"], &[]);
    assert_eq!(r.stdout, "dev-latest\n", "{}", r.stderr);

    let r = dw(
        &[
            "test",
            &image,
            "--allow-tags",
            "regexp:^v[0-9]+\\.[0-9]+\\.[0-9]+$",
            "-o",
            "json",
        ],
        &[],
    );
    let json: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(json["chosen"], "v2.0.0");
    assert!(
        json["rejected"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["tag"] == "dev-latest")
    );

    let digest = dw(
        &[
            "test",
            &image,
            "--strategy",
            "digest",
            "--constraint",
            "dev-latest",
            "-q",
        ],
        &[],
    );
    assert!(
        digest.stdout.starts_with("dev-latest@sha256:"),
        "{}",
        digest.stderr
    );
    assert_eq!(digest.stdout.trim().len(), "dev-latest@sha256:".len() + 64);

    let multi = format!("{}/shop/multi", reg.host());
    let r = dw(&["test", &multi, "--platform", "linux/arm64", "-q"], &[]);
    assert_eq!(r.stdout, "1.0.0\n", "{}", r.stderr);
    let r = dw(&["test", &multi, "--platform", "linux/amd64", "-q"], &[]);
    assert_eq!(r.stdout, "1.1.0\n", "{}", r.stderr);

    let r = dw(&["test", &image, "--constraint", "^9", "-q"], &[]);
    assert_eq!((r.code, r.stdout.as_str()), (3, ""));

    let r = dw(&["tags", &image], &[]);
    let mut tags: Vec<&str> = r.stdout.lines().collect();
    tags.sort();
    assert_eq!(
        tags,
        [
            "dev-latest",
            "v1.0.5",
            "v1.0.6",
            "v1.1.0",
            "v1.1.0-rc.1",
            "v2.0.0"
        ]
    );

    let missing = dw(
        &["test", &format!("{}/shop/nothing", reg.host()), "-q"],
        &[],
    );
    assert_eq!(missing.code, 1);
    assert!(missing.stderr.contains("404"), "{}", missing.stderr);
}

#[test]
fn basic_auth_registry() {
    let reg = Registry::start(Auth::Basic("bot".into(), "s3cret".into()));
    seed(&reg);
    let image = format!("{}/shop/backend", reg.host());
    let r = dw(
        &[
            "test",
            &image,
            "--constraint",
            "~1.0",
            "--credentials",
            "env:REG_CREDS",
            "-q",
        ],
        &[("REG_CREDS", "bot:s3cret")],
    );
    assert_eq!(r.stdout, "v1.0.6\n", "{}", r.stderr);

    let wrong = dw(
        &["test", &image, "--credentials", "env:REG_CREDS", "-q"],
        &[("REG_CREDS", "bot:not-the-password")],
    );
    assert_eq!(wrong.code, 1);
    assert!(
        wrong.stderr.contains("authentication failed"),
        "{}",
        wrong.stderr
    );
    // Neither password appears anywhere: not in the error, not on stdout, not in JSON output.
    let json_out = dw(
        &[
            "test",
            &image,
            "--credentials",
            "env:REG_CREDS",
            "-o",
            "json",
        ],
        &[("REG_CREDS", "bot:not-the-password")],
    );
    assert_eq!(json_out.code, 1);
    for run in [&r, &wrong, &json_out] {
        for secret in ["s3cret", "not-the-password"] {
            assert!(
                !run.stdout.contains(secret) && !run.stderr.contains(secret),
                "{secret} leaked: {}{}",
                run.stdout,
                run.stderr
            );
        }
    }

    let none = dw(&["test", &image, "-q"], &[]);
    assert_eq!(none.code, 1);
    assert!(
        none.stderr.contains("without credentials"),
        "{}",
        none.stderr
    );
}

#[test]
fn bearer_token_registry_and_registries_conf() {
    let reg = Registry::start(Auth::Token("robot".into(), "t0ken".into()));
    seed(&reg);
    let image = format!("{}/shop/backend", reg.host());
    let dir = driftwatch_testkit::TempDir::new("conf");
    let conf = dir.path().join("registries.conf");
    std::fs::write(
        &conf,
        format!(
            "registries:\n- name: test\n  api_url: http://{}\n  prefix: {}\n  credentials: env:TOKEN_CREDS\n  limit: 50\n",
            reg.host(),
            reg.host()
        ),
    )
    .unwrap();
    let conf = conf.display().to_string();
    let r = dw(
        &[
            "test",
            &image,
            "--registries-conf",
            &conf,
            "--strategy",
            "newest-build",
            "-o",
            "json",
        ],
        &[("TOKEN_CREDS", "robot:t0ken")],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let json: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(json["chosen"], "dev-latest");

    let refused = dw(
        &["test", &image, "--registries-conf", &conf, "-q"],
        &[("TOKEN_CREDS", "robot:wrong")],
    );
    assert_eq!(refused.code, 1);
    assert!(
        refused.stderr.contains("token endpoint answered HTTP 401"),
        "{}",
        refused.stderr
    );
}

#[test]
fn forced_paging_reads_every_page() {
    let reg = Registry::start(Auth::None);
    for i in 0..25 {
        reg.push_image("paged/app", &format!("1.{i}.0"), "2026-11-01T00:00:00Z");
    }
    let proxy = PagingProxy::start(reg.host(), 4);
    let image = format!("{}/paged/app", proxy.host());
    let r = dw(&["tags", &image], &[]);
    assert_eq!(r.stdout.lines().count(), 25, "{}", r.stderr);
    assert_eq!(*proxy.pages.lock().unwrap(), 7, "25 tags in pages of 4");
    let r = dw(&["test", &image, "-q"], &[]);
    assert_eq!(r.stdout, "1.24.0\n");
}
