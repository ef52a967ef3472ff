//! Updates that wait, through the binary against a real registry and real Git. Rollbacks that
//! stick: someone sets an image back from the tag driftwatch wrote; the next cycles hold it —
//! no commit, `check` says why, naming the commit and its author — until a newer tag appears
//! (written at once) or `driftwatch release APP IMAGE` lifts the hold. Approvals: with
//! `approval: required` an update waits for `driftwatch approve`; a rejected version is never
//! written.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use driftwatch_testkit::fixture::Shop;

fn kustomization(host: &str, tag: &str) -> String {
    format!(
        "kind: Kustomization\nimages:\n- name: backend\n  newName: {host}/shop/backend\n  newTag: {tag}\n"
    )
}

/// `driftwatch ARGS --state-dir STATE` for the shop: exit code, stdout, stderr.
fn dw(shop: &Shop, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_driftwatch"))
        .args(args)
        .arg("--state-dir")
        .arg(shop.state())
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// One `run --once` cycle, which must succeed.
fn cycle(shop: &Shop) {
    let conf = shop.conf.to_str().unwrap();
    let (code, out, err) = dw(shop, &["run", "--once", "--config", conf]);
    assert_eq!(code, 0, "{out}{err}");
}

/// The tag the kustomization in Git says.
fn tag_in_git(shop: &Shop) -> String {
    shop.repo
        .show("main", "apps/shop/kustomization.yaml")
        .lines()
        .find_map(|l| l.trim().strip_prefix("newTag: ").map(str::to_owned))
        .unwrap()
}

/// The image's line of `check -o json`.
fn check_line(shop: &Shop) -> serde_json::Value {
    let conf = shop.conf.to_str().unwrap();
    let (_, out, err) = dw(shop, &["check", "--config", conf, "-o", "json"]);
    let v: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}"));
    v["images"][0].clone()
}

#[test]
fn a_rollback_is_held_until_a_newer_tag_or_a_release() {
    let shop = Shop::new("hold");
    let host = shop.reg.host();
    let image = format!("{host}/shop/backend");
    let file = "apps/shop/kustomization.yaml";
    let dw = |args: &[&str]| dw(&shop, args);
    let cycle = || cycle(&shop);
    let tag_in_git = || tag_in_git(&shop);
    let check = || check_line(&shop);

    shop.reg
        .push_image("shop/backend", "v1.1.0", "2026-11-02T00:00:00Z");
    cycle();
    assert_eq!(tag_in_git(), "v1.1.0");

    // A person rolls back: the next cycles leave it, and say why.
    shop.repo
        .commit_elsewhere(file, &kustomization(&host, "v1.0.0"), "revert to v1.0.0");
    let commits = shop.repo.subjects("main").len();
    cycle();
    cycle();
    assert_eq!(tag_in_git(), "v1.0.0", "the rollback stands");
    assert_eq!(shop.repo.subjects("main").len(), commits, "no commit");
    let line = check();
    assert_eq!(line["status"], "held", "{line}");
    let why = line["held"].as_str().unwrap();
    assert!(
        why.starts_with("held: set back from v1.1.0 to v1.0.0 in ") && why.contains(" by Test;"),
        "{why}"
    );

    // A newer tag goes through at once.
    shop.reg
        .push_image("shop/backend", "v1.1.1", "2026-11-03T00:00:00Z");
    cycle();
    assert_eq!(tag_in_git(), "v1.1.1");

    // Held again after a second rollback; released by hand, the choice is written again.
    shop.repo
        .commit_elsewhere(file, &kustomization(&host, "v1.0.0"), "revert again");
    cycle();
    assert_eq!(tag_in_git(), "v1.0.0");
    let (code, out, err) = dw(&["release", "shop", &image]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("the hold from v1.1.1 is lifted"), "{out}");
    cycle();
    assert_eq!(tag_in_git(), "v1.1.1");
    // Releasing what was never written is an error naming it.
    let (code, _, err) = dw(&["release", "shop", "elsewhere/other"]);
    assert_eq!(code, 1);
    assert!(err.contains("never wrote this image"), "{err}");
}

#[test]
fn an_update_that_needs_approval_waits_then_is_written_or_refused() {
    let shop = Shop::new("approve");
    let host = shop.reg.host();
    let image = format!("{host}/shop/backend");
    // The image's updates wait for an approval.
    let conf = std::fs::read_to_string(&shop.conf).unwrap();
    std::fs::write(
        &shop.conf,
        conf.replace(
            "    kustomizeName: backend\n",
            "    kustomizeName: backend\n    approval: required\n",
        ),
    )
    .unwrap();
    let dw = |args: &[&str]| dw(&shop, args);
    let cycle = || cycle(&shop);
    let tag_in_git = || tag_in_git(&shop);
    let line = || check_line(&shop);
    // Nothing waits yet: approving is an error naming the application.
    let (code, _, err) = dw(&["approve", "shop"]);
    assert_eq!(code, 1);
    assert!(err.contains("shop: no update waits for approval"), "{err}");

    shop.reg
        .push_image("shop/backend", "v1.1.0", "2026-11-02T00:00:00Z");
    cycle();
    assert_eq!(tag_in_git(), "v1.0.0", "waits for an approval");
    let l = line();
    assert_eq!(l["status"], "pending", "{l}");
    assert!(
        l["held"]
            .as_str()
            .unwrap()
            .contains("pending approval of v1.1.0")
    );

    let (code, out, err) = dw(&["approve", "shop", &image]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("v1.1.0") && out.contains("approved by"),
        "{out}"
    );
    cycle();
    assert_eq!(tag_in_git(), "v1.1.0", "written once approved");

    // A rejected version is not written, and says so; the next one waits again.
    shop.reg
        .push_image("shop/backend", "v1.2.0", "2026-11-03T00:00:00Z");
    cycle();
    let (code, out, _) = dw(&["reject", "shop"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("v1.2.0") && out.contains("rejected by"),
        "{out}"
    );
    cycle();
    assert_eq!(tag_in_git(), "v1.1.0");
    let l = line();
    assert_eq!(l["status"], "held", "{l}");
    assert!(
        l["held"]
            .as_str()
            .unwrap()
            .contains("v1.2.0 was rejected by"),
        "{l}"
    );
    shop.reg
        .push_image("shop/backend", "v1.3.0", "2026-11-04T00:00:00Z");
    cycle();
    assert_eq!(tag_in_git(), "v1.1.0");
    assert_eq!(line()["status"], "pending");
}

#[test]
fn the_status_page_api_approves_with_its_token() {
    use driftwatch_testkit::http::request;
    let shop = Shop::new("approve-http");
    let conf = std::fs::read_to_string(&shop.conf).unwrap();
    std::fs::write(
        &shop.conf,
        conf.replace(
            "    kustomizeName: backend\n",
            "    kustomizeName: backend\n    approval: required\n",
        ),
    )
    .unwrap();
    let port = driftwatch_testkit::free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_driftwatch"))
        .args(["run", "--config"])
        .arg(&shop.conf)
        .arg("--state-dir")
        .arg(shop.state())
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--ui-token-env",
            "UI_TOKEN",
        ])
        .env("UI_TOKEN", "t0ken")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    assert!(driftwatch_testkit::wait_for_port(
        port,
        std::time::Duration::from_secs(20)
    ));
    let url = |p: &str| format!("http://127.0.0.1:{port}{p}");
    let auth = [
        ("Authorization", "Bearer t0ken"),
        ("X-Driftwatch-User", "ann"),
    ];
    let tag_in_git = || {
        shop.repo
            .show("main", "apps/shop/kustomization.yaml")
            .lines()
            .find_map(|l| l.trim().strip_prefix("newTag: ").map(str::to_owned))
            .unwrap()
    };
    let until = |what: &str, f: &dyn Fn() -> bool| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while !f() {
            assert!(std::time::Instant::now() < deadline, "never: {what}");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    };
    shop.reg
        .push_image("shop/backend", "v1.1.0", "2026-11-02T00:00:00Z");
    // Ask until the cycle has listed the update as waiting.
    until("v1.1.0 waits", &|| {
        let (code, _, _) = request("POST", &url("/apps/shop/refresh"), &auth, b"").unwrap();
        assert_eq!(code, 202);
        std::thread::sleep(std::time::Duration::from_millis(300));
        // Waiting shows in the state: approving over HTTP needs it there.
        driftwatch_engine_pending(&shop)
    });
    assert_eq!(tag_in_git(), "v1.0.0");
    let (code, _, _) = request("POST", &url("/apps/shop/approve"), &[], b"").unwrap();
    assert_eq!(code, 401, "no token, no decision");
    let (code, _, body) = request("POST", &url("/apps/shop/approve"), &auth, b"").unwrap();
    let body = String::from_utf8_lossy(&body).into_owned();
    assert_eq!(code, 202, "{body}");
    assert!(body.contains("v1.1.0 approved by ann"), "{body}");
    until("v1.1.0 written", &|| tag_in_git() == "v1.1.0");
    // Once written, nothing waits any more.
    until("nothing waits", &|| {
        request("POST", &url("/apps/shop/approve"), &auth, b"")
            .unwrap()
            .0
            == 409
    });
    let _ = child.kill();
    let _ = child.wait();
}

/// Whether the state lists an update of `shop` waiting for approval.
fn driftwatch_engine_pending(shop: &Shop) -> bool {
    let out = Command::new(env!("CARGO_BIN_EXE_driftwatch"))
        .args(["check", "--config"])
        .arg(&shop.conf)
        .arg("--state-dir")
        .arg(shop.state())
        .args(["-o", "json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    v["images"][0]["status"] == "pending"
}

/// RFC 3339 for `ago` before now, as `date` writes it.
fn ago(ago: &str) -> String {
    let out = Command::new("date")
        .args(["-u", "-d", &format!("-{ago}"), "+%Y-%m-%dT%H:%M:%SZ"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[test]
fn a_tag_younger_than_the_minimum_release_age_is_passed_over() {
    let shop = Shop::new("release-age");
    let conf = std::fs::read_to_string(&shop.conf).unwrap();
    let with_age = |age: &str| {
        conf.replace(
            "    kustomizeName: backend\n",
            &format!("    kustomizeName: backend\n    minimumReleaseAge: {age}\n"),
        )
    };
    std::fs::write(&shop.conf, with_age("1d")).unwrap();
    let conf_path = shop.conf.to_str().unwrap().to_owned();
    let check = || -> serde_json::Value {
        let out = Command::new(env!("CARGO_BIN_EXE_driftwatch"))
            .args(["check", "--config", &conf_path, "-o", "json", "--state-dir"])
            .arg(shop.state())
            .output()
            .unwrap();
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["images"][0].clone()
    };
    // An hour-old v1.1.0 waits; the older v1.0.0 in Git stays the choice, and says why.
    shop.reg
        .push_image("shop/backend", "v1.1.0", &ago("1 hour"));
    let l = check();
    assert_eq!(l["status"], "in-sync", "{l}");
    assert_eq!(l["registry"], "v1.0.0", "{l}");
    let note = l["held"].as_str().unwrap();
    assert!(
        note.starts_with("waiting: v1.1.0 is 1h0m old") && note.contains("minimumReleaseAge 1d0h"),
        "{note}"
    );
    // An older release that is old enough is chosen over the young one.
    shop.reg
        .push_image("shop/backend", "v1.0.5", &ago("2 days"));
    let l = check();
    assert_eq!(l["status"], "update-available", "{l}");
    assert_eq!(l["registry"], "v1.0.5", "{l}");
    // With a shorter minimum, the newest is old enough.
    std::fs::write(&shop.conf, with_age("30m")).unwrap();
    let l = check();
    assert_eq!(l["registry"], "v1.1.0", "{l}");
    assert!(l["held"].is_null(), "{l}");
    // A bad age names the field.
    std::fs::write(&shop.conf, with_age("soon")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_driftwatch"))
        .args(["check", "--config", &conf_path])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("applications[0].images[0].minimumReleaseAge"),
        "{err}"
    );
}

#[test]
fn updates_wait_for_their_window() {
    let shop = Shop::new("windows");
    let conf = std::fs::read_to_string(&shop.conf).unwrap();
    // A window twelve hours away is closed now; one opened by every minute is open.
    let hour: u32 = String::from_utf8(
        Command::new("date")
            .args(["-u", "+%H"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .trim()
    .parse()
    .unwrap();
    let with_window = |schedule: &str| {
        conf.replace(
            "  writeBack: kustomization\n",
            &format!(
                "  writeBack: kustomization\n  updateWindows:\n  - schedule: \"{schedule}\"\n    duration: 1h\n    timeZone: UTC\n"
            ),
        )
    };
    std::fs::write(
        &shop.conf,
        with_window(&format!("0 {} * * *", (hour + 12) % 24)),
    )
    .unwrap();
    shop.reg
        .push_image("shop/backend", "v1.1.0", "2026-11-02T00:00:00Z");
    let dw = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_driftwatch"))
            .args(args)
            .arg("--config")
            .arg(&shop.conf)
            .arg("--state-dir")
            .arg(shop.state())
            .output()
            .unwrap();
        (
            out.status.code().unwrap(),
            String::from_utf8(out.stdout).unwrap(),
        )
    };
    let (_, out) = dw(&["check", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let l = &v["images"][0];
    assert_eq!(l["status"], "pending", "{l}");
    let why = l["held"].as_str().unwrap();
    assert!(
        why.starts_with("outside the update windows; the next opens ")
            && why.ends_with(&format!("{:02}:00 UTC", (hour + 12) % 24)),
        "{why}"
    );
    let (code, _) = dw(&["run", "--once"]);
    assert_eq!(code, 0);
    assert!(
        shop.repo
            .show("main", "apps/shop/kustomization.yaml")
            .contains("v1.0.0")
    );

    std::fs::write(&shop.conf, with_window("* * * * *")).unwrap();
    let (code, _) = dw(&["run", "--once"]);
    assert_eq!(code, 0);
    assert!(
        shop.repo
            .show("main", "apps/shop/kustomization.yaml")
            .contains("v1.1.0")
    );
}
