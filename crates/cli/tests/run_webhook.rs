//! `driftwatch run` as a service: a registry webhook triggers an immediate update; metrics,
//! health, history and a clean stop on SIGTERM.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use driftwatch_testkit::fixture::Shop;
use driftwatch_testkit::http::request;
use driftwatch_testkit::{free_port, wait_for_port};

#[test]
fn webhook_push_to_commit() {
    let Shop {
        reg,
        repo,
        dir,
        conf,
    } = Shop::new("svc");
    let port = free_port();
    let state = dir.path().join("state");
    let mut child = Command::new(env!("CARGO_BIN_EXE_driftwatch"))
        .args(["run", "--config"])
        .arg(&conf)
        .arg("--state-dir")
        .arg(&state)
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--webhook-secret-env",
            "HOOK_SECRET",
            "--log-format",
            "json",
        ])
        .env("HOOK_SECRET", "s3cret")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(wait_for_port(port, Duration::from_secs(10)));
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while request("GET", &format!("{base}/readyz"), &[], b"")
        .unwrap()
        .0
        != 200
    {
        assert!(Instant::now() < deadline, "never ready");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        request("GET", &format!("{base}/healthz"), &[], b"")
            .unwrap()
            .0,
        200
    );
    assert_eq!(repo.subjects("main").len(), 1, "nothing to do at first");

    let digest = reg.push_image("shop/backend", "v1.0.1", "2026-11-02T00:00:00Z");
    let body = reg.push_event("shop/backend", &digest, "v1.0.1");
    let wrong = request(
        "POST",
        &format!("{base}/webhook"),
        &[("Authorization", "Bearer nope")],
        body.as_bytes(),
    )
    .unwrap();
    assert_eq!(wrong.0, 401);
    assert_eq!(repo.subjects("main").len(), 1);

    let sent = Instant::now();
    let ok = request(
        "POST",
        &format!("{base}/webhook/distribution"),
        &[("Authorization", "Bearer s3cret")],
        body.as_bytes(),
    )
    .unwrap();
    assert_eq!(ok.0, 202, "{}", String::from_utf8_lossy(&ok.2));
    while repo.subjects("main").len() < 2 {
        assert!(
            sent.elapsed() < Duration::from_secs(10),
            "the push did not reach Git"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        repo.show("main", "apps/shop/kustomization.yaml")
            .contains("newTag: v1.0.1")
    );

    // The commit is pushed before the cycle's counters are updated: wait for them.
    let read = || {
        let (_, _, m) = request("GET", &format!("{base}/metrics"), &[], b"").unwrap();
        String::from_utf8(m).unwrap()
    };
    let mut metrics = read();
    let asked = Instant::now();
    while !metrics.contains("driftwatch_push_to_commit_seconds_count 1")
        && asked.elapsed() < Duration::from_secs(10)
    {
        std::thread::sleep(Duration::from_millis(20));
        metrics = read();
    }
    assert!(metrics.contains("driftwatch_updates_total 1"), "{metrics}");
    assert!(metrics.contains("driftwatch_webhooks_total 1"), "{metrics}");
    assert!(
        metrics.contains("driftwatch_registry_requests_total{registry="),
        "{metrics}"
    );
    assert!(
        metrics.contains("driftwatch_push_to_commit_seconds_count 1"),
        "{metrics}"
    );

    // SIGTERM finishes cleanly.
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "{status}");
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    // The service's whole log, a rejected token included, never shows the webhook secret.
    let mut logs = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut logs).unwrap();
    assert!(logs.lines().count() > 1, "{logs}");
    assert!(!logs.contains("s3cret") && !logs.contains("nope"), "{logs}");

    let out = Command::new(env!("CARGO_BIN_EXE_driftwatch"))
        .args(["history", "shop", "-o", "json", "--state-dir"])
        .arg(&state)
        .output()
        .unwrap();
    let history: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(history.as_array().unwrap().len(), 1);
    assert_eq!(history[0]["old"], "v1.0.0");
    assert_eq!(history[0]["new"], "v1.0.1");
    assert!(
        history[0]["seen_at"].as_str().unwrap() <= history[0]["committed_at"].as_str().unwrap()
    );
}
