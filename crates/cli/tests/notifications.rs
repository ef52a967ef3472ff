//! `notifications:` in driftwatch.yaml, end to end: a registry push committed by `run` is told
//! to local HTTP sinks — Slack-compatible and JSON, retried through failures, filtered by
//! application — while an endpoint that never answers holds up nothing, and the endpoint URL
//! (a credential, for Slack) never appears in the output.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use driftwatch_testkit::git::BareRepo;
use driftwatch_testkit::http::{Reply, Server, request};
use driftwatch_testkit::registry::{Auth, Registry};
use driftwatch_testkit::{TempDir, free_port, wait_for_port};
use serde_json::Value;

type Inbox = Arc<Mutex<Vec<(String, Value)>>>;

/// A sink that keeps every body, answering `fail_first` requests with 503 first.
fn sink(fail_first: usize) -> (Server, Inbox) {
    let inbox: Inbox = Arc::default();
    let kept = inbox.clone();
    let calls = AtomicUsize::new(0);
    let server = Server::start(move |r| {
        if calls.fetch_add(1, Ordering::SeqCst) < fail_first {
            return Reply::new(503, &[("Retry-After", "0")], "busy");
        }
        let body = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
        kept.lock().unwrap().push((r.path().to_owned(), body));
        Reply::new(200, &[], "ok")
    });
    (server, inbox)
}

fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out: {what}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

struct Service(Child);

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn committed_updates_are_told_to_every_endpoint_that_asked() {
    let reg = Registry::start(Auth::None);
    reg.push_image("shop/backend", "v1.0.0", "2026-11-01T00:00:00Z");
    reg.push_image("cart/backend", "v1.0.0", "2026-11-01T00:00:00Z");
    let kustomization = |name: &str| {
        format!(
            "kind: Kustomization\nimages:\n- name: backend\n  newName: {}/{name}/backend\n  newTag: v1.0.0\n",
            reg.host()
        )
    };
    let repo = BareRepo::new(&[
        ("apps/shop/kustomization.yaml", &kustomization("shop")),
        ("apps/cart/kustomization.yaml", &kustomization("cart")),
    ]);
    let (slack, slack_inbox) = sink(0);
    let (flaky, flaky_inbox) = sink(2);
    // Never answers in time: its messages wait on it, nobody else's do.
    let stuck = Server::start(|_| {
        std::thread::sleep(Duration::from_secs(60));
        Reply::new(200, &[], "late")
    });
    let dir = TempDir::new("notify");
    let conf = dir.path().join("driftwatch.yaml");
    let app = |name: &str| {
        format!(
            "- name: {name}\n  repo: {}\n  path: apps/{name}\n  writeBack: kustomization\n  images:\n  - image: {}/{name}/backend\n    kustomizeName: backend\n",
            repo.file_url(),
            reg.host()
        )
    };
    std::fs::write(
        &conf,
        format!(
            "interval: 1h\napplications:\n{}{}notifications:\n- name: chat\n  urlEnv: CHAT_HOOK\n  format: slack\n- name: deploys\n  url: {}/deploys\n  on: [committed]\n  applications: [\"shop*\"]\n- name: stuck\n  url: {}/slow\n",
            app("shop"),
            app("cart"),
            flaky.url(),
            stuck.url(),
        ),
    )
    .unwrap();
    let secret_path = "/services/T000/B000/XXXXSECRETXXXX";
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_driftwatch"))
        .args(["run", "--config"])
        .arg(&conf)
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--webhook-secret-env",
            "HOOK_SECRET",
        ])
        .env("HOOK_SECRET", "s3cret")
        .env("CHAT_HOOK", format!("{}{secret_path}", slack.url()))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut service = Service(child);
    assert!(wait_for_port(port, Duration::from_secs(10)));
    let base = format!("http://127.0.0.1:{port}");
    wait_until("ready", || {
        request("GET", &format!("{base}/readyz"), &[], b"").is_ok_and(|r| r.0 == 200)
    });
    let push = |name: &str| {
        let digest = reg.push_image(&format!("{name}/backend"), "v1.0.1", "2026-11-02T00:00:00Z");
        let body = reg.push_event(&format!("{name}/backend"), &digest, "v1.0.1");
        let r = request(
            "POST",
            &format!("{base}/webhook"),
            &[("Authorization", "Bearer s3cret")],
            body.as_bytes(),
        )
        .unwrap();
        assert_eq!(r.0, 202);
    };

    push("shop");
    wait_until("chat told of shop's commit", || {
        !slack_inbox.lock().unwrap().is_empty()
    });
    let (path, body) = slack_inbox.lock().unwrap()[0].clone();
    assert_eq!(path, secret_path);
    let text = body["text"].as_str().unwrap();
    assert!(
        text.contains(&format!(
            "shop: {}/shop/backend v1.0.0 → v1.0.1",
            reg.host()
        )),
        "{text}"
    );
    assert_eq!(body.as_object().unwrap().len(), 1, "Slack's shape: {body}");
    // Two 503s, then delivered.
    wait_until("deploys told after its retries", || {
        !flaky_inbox.lock().unwrap().is_empty()
    });
    let (_, told) = flaky_inbox.lock().unwrap()[0].clone();
    assert_eq!(told["trigger"], "committed");
    assert_eq!(told["apps"], serde_json::json!(["shop"]));
    assert_eq!(told["event"]["changes"][0]["to"], "v1.0.1");
    let commit = told["event"]["commit"].as_str().unwrap().to_owned();
    let head = driftwatch_testkit::git::git(&repo.path, &["rev-parse", "main"]);
    assert_eq!(head.trim(), commit);

    // The stuck endpoint holds the first message; the loop and the others go on.
    push("cart");
    wait_until("chat told of cart's commit", || {
        slack_inbox.lock().unwrap().len() == 2
    });
    assert!(
        slack_inbox.lock().unwrap()[1].1["text"]
            .as_str()
            .unwrap()
            .contains("cart:")
    );
    let metrics = || {
        let (_, _, m) = request("GET", &format!("{base}/metrics"), &[], b"").unwrap();
        String::from_utf8(m).unwrap()
    };
    wait_until("the sends counted", || {
        metrics().contains(r#"driftwatch_notifications_total{notifier="chat",result="sent"} 2"#)
    });
    let m = metrics();
    assert!(
        m.contains(r#"driftwatch_notifications_total{notifier="deploys",result="sent"} 1"#),
        "{m}"
    );
    // cart is not among deploys' applications.
    assert_eq!(flaky_inbox.lock().unwrap().len(), 1);

    // A stop waits a bounded time for the stuck endpoint, then ends cleanly.
    let _ = Command::new("kill")
        .arg(service.0.id().to_string())
        .status();
    let stopping = Instant::now();
    let status = service.0.wait().unwrap();
    assert!(status.success(), "{status}");
    assert!(stopping.elapsed() < Duration::from_secs(15));
    let mut err = String::new();
    std::io::Read::read_to_string(service.0.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(
        err.contains("notifier=deploys") || err.contains("deploys"),
        "{err}"
    );
    assert!(
        !err.contains("XXXXSECRETXXXX"),
        "the endpoint's URL leaked: {err}"
    );
}

#[test]
fn a_mistake_in_notifications_names_the_key() {
    let dir = TempDir::new("notify-bad");
    let conf = dir.path().join("driftwatch.yaml");
    std::fs::write(
        &conf,
        "applications: []\nnotifications:\n- name: chat\n  url: https://hooks.example/services/T0/S3CR3T\n  on: [commited]\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_driftwatch"))
        .args(["check", "--config"])
        .arg(&conf)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("notifications[0].on"), "{err}");
    assert!(err.contains("\"commited\" is not one of"), "{err}");
    assert!(!err.contains("S3CR3T"), "{err}");
}
