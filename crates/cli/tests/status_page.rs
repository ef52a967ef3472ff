//! The status page of `driftwatch run --listen`, against a real registry and Git repository:
//! the overview lists the applications with the security headers, the application page shows
//! a registry push's way to Git, live events are streamed, and actions need the token.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use driftwatch_testkit::fixture::Shop;
use driftwatch_testkit::git::BareRepo;
use driftwatch_testkit::http::request;
use driftwatch_testkit::registry::{Auth, Registry};
use driftwatch_testkit::{TempDir, free_port, wait_for_port};

/// The service, stopped (SIGTERM, then killed) when the test ends, pass or fail.
struct Service(Child);

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn get(url: &str) -> (u16, std::collections::HashMap<String, String>, String) {
    let (status, headers, body) = request("GET", url, &[], b"").unwrap();
    (status, headers, String::from_utf8(body).unwrap())
}

fn post(url: &str, token: Option<&str>) -> (u16, String) {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth
        .as_deref()
        .map(|a| vec![("Authorization", a)])
        .unwrap_or_default();
    let (status, _, body) = request("POST", url, &headers, b"").unwrap();
    (status, String::from_utf8(body).unwrap())
}

#[test]
fn status_page_overview_timeline_and_actions() {
    let reg = Registry::start(Auth::None);
    reg.push_image("shop/backend", "v1.0.0", "2026-11-01T00:00:00Z");
    let k = format!(
        "kind: Kustomization\nimages:\n- name: backend\n  newName: {}/shop/backend\n  newTag: v1.0.0\n",
        reg.host()
    );
    let repo = BareRepo::new(&[
        ("apps/shop/kustomization.yaml", &k),
        ("apps/other/kustomization.yaml", &k),
    ]);
    let dir = TempDir::new("page");
    let conf = dir.path().join("driftwatch.yaml");
    // A second application with a hostile name: the page must show it as text.
    std::fs::write(
        &conf,
        format!(
            "interval: 1h\napplications:\n- name: shop\n  repo: {repo}\n  path: apps/shop\n  writeBack: kustomization\n  images:\n  - image: {host}/shop/backend\n    kustomizeName: backend\n- name: \"<script>x</script>\"\n  repo: {repo}\n  path: apps/other\n  writeBack: kustomization\n  images:\n  - image: {host}/shop/backend\n    kustomizeName: backend\n",
            repo = repo.file_url(),
            host = reg.host()
        ),
    )
    .unwrap();
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
            "--ui-token-env",
            "UI_TOKEN",
        ])
        .env("HOOK_SECRET", "s3cret")
        .env("UI_TOKEN", "t0ken")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut service = Service(child);
    assert!(wait_for_port(port, Duration::from_secs(10)));
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while get(&format!("{base}/readyz")).0 != 200 {
        assert!(Instant::now() < deadline, "never ready");
        std::thread::sleep(Duration::from_millis(50));
    }

    // The overview lists both applications, the hostile name as text, with the headers.
    let (status, headers, body) = get(&format!("{base}/"));
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("href=\"/apps/shop\""), "{body}");
    assert!(body.contains("&lt;script&gt;x&lt;/script&gt;"), "{body}");
    assert!(!body.contains("<script>x"), "{body}");
    assert_eq!(
        headers["content-security-policy"],
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'"
    );
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    assert!(headers["content-type"].starts_with("text/html"));
    // A browser that accepts gzip gets the page gzipped (a thousand rows are mostly markup).
    let (status, headers, gz) = request(
        "GET",
        &format!("{base}/"),
        &[("Accept-Encoding", "gzip")],
        b"",
    )
    .unwrap();
    assert_eq!(status, 200);
    assert_eq!(headers["content-encoding"], "gzip");
    assert!(gz.starts_with(&[0x1f, 0x8b]), "a gzip body");
    let (status, headers, js) = get(&format!("{base}/assets/app.js"));
    assert_eq!(status, 200);
    assert!(headers["content-type"].starts_with("text/javascript"));
    assert!(js.contains("EventSource"));
    let (status, _, _) = get(&format!("{base}/assets/style.css"));
    assert_eq!(status, 200);
    let (status, _, body) = get(&format!("{base}/apps/nope"));
    assert_eq!(status, 404, "{body}");

    // How long the overview takes to serve, as the note reports it.
    let started = Instant::now();
    for _ in 0..20 {
        assert_eq!(get(&format!("{base}/")).0, 200);
    }
    eprintln!("GET / took {:?} on average", started.elapsed() / 20);

    // A live stream is open before the push, and must see it.
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    stream
        .write_all(b"GET /events/stream HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
        .unwrap();
    let mut lines = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    lines.read_line(&mut line).unwrap();
    assert!(line.starts_with("HTTP/1.1 200"), "{line}");

    // A registry push reaches Git; the application page shows its way there.
    let digest = reg.push_image("shop/backend", "v1.0.1", "2026-11-02T00:00:00Z");
    let body = reg.push_event("shop/backend", &digest, "v1.0.1");
    let (status, _, _) = request(
        "POST",
        &format!("{base}/webhook/distribution"),
        &[("Authorization", "Bearer s3cret")],
        body.as_bytes(),
    )
    .unwrap();
    assert_eq!(status, 202);
    let deadline = Instant::now() + Duration::from_secs(15);
    let page = loop {
        let (status, headers, page) = get(&format!("{base}/apps/shop"));
        assert_eq!(status, 200);
        assert_eq!(headers["x-frame-options"], "DENY");
        if page.contains("committed") {
            break page;
        }
        assert!(Instant::now() < deadline, "no timeline: {page}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(repo.subjects("main").len() >= 2);
    for want in [
        "push seen",
        "decided",
        "v1.0.0 → v1.0.1",
        "<svg",
        "Sync now",
    ] {
        assert!(page.contains(want), "{want} not in {page}");
    }
    let mut seen = String::new();
    while !seen.contains("event: service") {
        let mut l = String::new();
        assert!(lines.read_line(&mut l).unwrap() > 0, "stream ended: {seen}");
        seen.push_str(&l);
    }
    assert!(seen.contains("text/event-stream"), "{seen}");

    // Actions: refused without the token or with a wrong one, accepted with it.
    let url = format!("{base}/apps/shop/refresh");
    assert_eq!(post(&url, None).0, 401);
    assert_eq!(post(&url, Some("nope")).0, 401);
    let (status, said) = post(&url, Some("t0ken"));
    assert_eq!(status, 202, "{said}");
    assert_eq!(
        post(&format!("{base}/apps/nope/refresh"), Some("t0ken")).0,
        404
    );
    // Sync needs Git → cluster, which this service does not run; it says so.
    let (status, said) = post(&format!("{base}/apps/shop/sync"), Some("t0ken"));
    assert!(status == 404 || status == 409, "{status} {said}");
    assert!(
        said.contains("--kubeconfig") || said.contains("sync policy"),
        "{said}"
    );

    // A stop is not held up by the open stream.
    let _ = Command::new("kill")
        .arg(service.0.id().to_string())
        .status();
    let start = Instant::now();
    loop {
        if let Some(status) = service.0.try_wait().unwrap() {
            assert!(status.success(), "{status}");
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "did not stop with a stream open"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(stream);
}

#[test]
fn actions_are_off_without_a_token() {
    let Shop {
        reg: _reg,
        repo: _repo,
        dir,
        conf,
    } = Shop::new("page-off");
    let port = free_port();
    let _service = Service(
        Command::new(env!("CARGO_BIN_EXE_driftwatch"))
            .args(["run", "--config"])
            .arg(&conf)
            .arg("--state-dir")
            .arg(dir.path().join("state"))
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    assert!(wait_for_port(port, Duration::from_secs(10)));
    let base = format!("http://127.0.0.1:{port}");
    let (status, said) = post(&format!("{base}/apps/shop/refresh"), Some("anything"));
    assert_eq!(status, 404);
    assert!(said.contains("--ui-token-env"), "{said}");
    let (status, _, page) = get(&format!("{base}/apps/shop"));
    assert_eq!(status, 200);
    assert!(page.contains("Actions are off"), "{page}");

    // An empty token would let an empty bearer header act: refused at start.
    let out = Command::new(env!("CARGO_BIN_EXE_driftwatch"))
        .args(["run", "--once", "--config"])
        .arg(&conf)
        .arg("--state-dir")
        .arg(dir.path().join("state2"))
        .args(["--ui-token-env", "EMPTY_TOKEN"])
        .env("EMPTY_TOKEN", " ")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("EMPTY_TOKEN is empty"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// In a real browser: the overview's row changes after a registry push, without a reload.
/// Skips, saying why, where Chromium and chromedriver are not installed.
#[test]
fn browser_sees_a_push_without_reload() {
    let browser = match driftwatch_testkit::webdriver::Browser::start() {
        Ok(b) => b,
        Err(why) => {
            eprintln!("skipping the browser test: {why}");
            return;
        }
    };
    let Shop {
        reg,
        repo: _repo,
        dir,
        conf,
    } = Shop::new("page-browser");
    let port = free_port();
    let _service = Service(
        Command::new(env!("CARGO_BIN_EXE_driftwatch"))
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
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    assert!(wait_for_port(port, Duration::from_secs(10)));
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while get(&format!("{base}/readyz")).0 != 200 {
        assert!(Instant::now() < deadline, "never ready");
        std::thread::sleep(Duration::from_millis(50));
    }

    browser.goto(&format!("{base}/"));
    let row = "var a = document.querySelector('#rows a[href=\"/apps/shop\"]'); return a ? a.closest('tr').textContent : '';";
    assert!(browser.eval(row).as_str().unwrap().contains("none yet"));
    // The stream is open (the script says so) before the push, and the page is marked: a
    // reload would lose the mark.
    let deadline = Instant::now() + Duration::from_secs(10);
    while browser.eval("return document.getElementById('live').textContent") != "live" {
        assert!(Instant::now() < deadline, "the live stream never opened");
        std::thread::sleep(Duration::from_millis(50));
    }
    browser.eval("window.notReloaded = true; return null;");

    let digest = reg.push_image("shop/backend", "v1.0.1", "2026-11-02T00:00:00Z");
    let body = reg.push_event("shop/backend", &digest, "v1.0.1");
    let (status, _, _) = request(
        "POST",
        &format!("{base}/webhook/distribution"),
        &[("Authorization", "Bearer s3cret")],
        body.as_bytes(),
    )
    .unwrap();
    assert_eq!(status, 202);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let text = browser.eval(row);
        if text.as_str().unwrap().contains("v1.0.1") {
            break;
        }
        assert!(Instant::now() < deadline, "the row never changed: {text}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(browser.eval("return window.notReloaded === true"), true);
    let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("status-page.png");
    std::fs::write(&shot, browser.screenshot()).unwrap();
    eprintln!("screenshot: {}", shot.display());
    browser.goto(&format!("{base}/apps/shop"));
    let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("status-page-app.png");
    std::fs::write(&shot, browser.screenshot()).unwrap();
    eprintln!("screenshot: {}", shot.display());
}

/// Screenshots of the page as a person sees it, for the README and for review: a `run
/// --listen --kubeconfig` with a real registry and Git repository, four applications on an API
/// server (the fake, or `DRIFTWATCH_E2E_KUBECONFIG`'s) — three synced by driftwatch (two of
/// them updated to a newer tag on the first cycle), one detect-only and so OutOfSync. Saves
/// `screenshots/overview.png` and `screenshots/app.png` under `target/tmp`. Skips, saying
/// why, where Chromium and chromedriver are not installed.
#[test]
fn screenshots_of_the_overview_and_an_application() {
    let browser = match driftwatch_testkit::webdriver::Browser::start() {
        Ok(b) => b,
        Err(why) => {
            eprintln!("skipping the screenshots: {why}");
            return;
        }
    };
    let reg = Registry::start(Auth::None);
    let dir = TempDir::new("page-shots");
    let cluster = driftwatch_testkit::kube::Cluster::new(dir.path());
    // (application, automated policy, whether a newer tag waits in the registry)
    let apps = [
        (
            "shop",
            "\n    automated: {selfHeal: true, prune: true}",
            true,
        ),
        ("billing", "\n    automated: {selfHeal: true}", true),
        ("search", "\n    automated: {}", false),
        ("identity", "", false),
    ];
    let mut files = Vec::new();
    let mut conf = String::from("interval: 1h\napplications:\n");
    for (app, automated, newer) in apps {
        let ns = cluster.unique_namespace(&format!("dw-shot-{app}"));
        cluster.cleanup_namespace(&ns);
        reg.push_image(&format!("team/{app}"), "v1.4.0", "2026-11-01T00:00:00Z");
        if newer {
            reg.push_image(&format!("team/{app}"), "v1.5.0", "2026-11-20T00:00:00Z");
        }
        files.push((
            format!("apps/{app}/namespace.yaml"),
            format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n"),
        ));
        files.push((
            format!("apps/{app}/deployment.yaml"),
            format!(
                "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {app}\n  namespace: {ns}\nspec:\n  replicas: 2\n  selector:\n    matchLabels:\n      app: {app}\n  template:\n    metadata:\n      labels:\n        app: {app}\n    spec:\n      containers:\n      - name: {app}\n        image: {host}/team/{app}:v1.4.0\n",
                host = reg.host()
            ),
        ));
        conf.push_str(&format!(
            "- name: {app}\n  repo: REPO\n  path: apps/{app}\n  writeBack: manifests:deployment.yaml\n  sync:\n    namespace: {ns}{automated}\n  images:\n  - image: {host}/team/{app}\n    constraint: ^1\n",
            host = reg.host()
        ));
    }
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    let repo = BareRepo::new(&refs);
    let conf_path = dir.path().join("driftwatch.yaml");
    std::fs::write(&conf_path, conf.replace("REPO", &repo.file_url())).unwrap();
    let port = free_port();
    let _service = Service(
        Command::new(env!("CARGO_BIN_EXE_driftwatch"))
            .args(["run", "--config"])
            .arg(&conf_path)
            .arg("--state-dir")
            .arg(dir.path().join("state"))
            .arg("--kubeconfig")
            .arg(&cluster.kubeconfig)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    assert!(wait_for_port(port, Duration::from_secs(10)));
    let base = format!("http://127.0.0.1:{port}");

    // Wait until the first cycle wrote both updates and every application was compared.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, _, body) = get(&format!("{base}/"));
        let compared = ["Synced", "OutOfSync"]
            .iter()
            .map(|w| body.matches(&format!(">{w}<")).count())
            .sum::<usize>();
        if compared == apps.len() && body.matches(":v1.5.0").count() == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "the page never settled: {body}");
        std::thread::sleep(Duration::from_millis(200));
    }

    browser.goto(&format!("{base}/"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while browser.eval("return document.getElementById('live').textContent") != "live" {
        assert!(Instant::now() < deadline, "the live stream never opened");
        std::thread::sleep(Duration::from_millis(50));
    }
    let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let png = browser.screenshot();
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    std::fs::write(shots.join("overview.png"), png).unwrap();
    browser.goto(&format!("{base}/apps/shop"));
    let text = browser.eval("return document.body.textContent");
    assert!(text.as_str().unwrap().contains("v1.5.0"), "{text}");
    std::fs::write(shots.join("app.png"), browser.screenshot()).unwrap();
    eprintln!("screenshots: {}", shots.display());
}

/// In a real browser, against a real registry and Git: an application whose update waits for
/// an approval and one whose rollback is held show their waits on the overview and their
/// pages, in `check`'s words; Approve (with the token typed on the page) writes the update to
/// Git and Release lifts the hold, and each page shows the decision, who and when, without a
/// reload. Skips, saying why, where Chromium and chromedriver are not installed.
#[test]
fn browser_shows_waits_and_approves_and_releases() {
    let browser = match driftwatch_testkit::webdriver::Browser::start() {
        Ok(b) => b,
        Err(why) => {
            eprintln!("skipping the browser test: {why}");
            return;
        }
    };
    let shop = Shop::new("page-waits");
    let host = shop.reg.host();
    let kustomization = |tag: &str| {
        format!(
            "kind: Kustomization\nimages:\n- name: backend\n  newName: {host}/shop/backend\n  newTag: {tag}\n"
        )
    };
    let tag_in_git = |app: &str| {
        shop.repo
            .show("main", &format!("apps/{app}/kustomization.yaml"))
            .lines()
            .find_map(|l| l.trim().strip_prefix("newTag: ").map(str::to_owned))
            .unwrap()
    };
    shop.repo.commit_elsewhere(
        "apps/held/kustomization.yaml",
        &kustomization("v1.0.0"),
        "add held",
    );
    // `shop` waits for approvals; `held` does not, so driftwatch writes it first.
    std::fs::write(
        &shop.conf,
        format!(
            "interval: 1h\napplications:\n- name: shop\n  repo: {repo}\n  path: apps/shop\n  writeBack: kustomization\n  images:\n  - image: {host}/shop/backend\n    kustomizeName: backend\n    approval: required\n- name: held\n  repo: {repo}\n  path: apps/held\n  writeBack: kustomization\n  images:\n  - image: {host}/shop/backend\n    kustomizeName: backend\n",
            repo = shop.repo.file_url(),
        ),
    )
    .unwrap();
    shop.reg
        .push_image("shop/backend", "v1.1.0", "2026-11-02T00:00:00Z");
    let once = Command::new(env!("CARGO_BIN_EXE_driftwatch"))
        .args(["run", "--once", "--config"])
        .arg(&shop.conf)
        .arg("--state-dir")
        .arg(shop.state())
        .output()
        .unwrap();
    assert!(once.status.success(), "{once:?}");
    assert_eq!(tag_in_git("held"), "v1.1.0");
    assert_eq!(tag_in_git("shop"), "v1.0.0", "waits for an approval");
    // A person sets `held` back: driftwatch holds it from now on.
    shop.repo.commit_elsewhere(
        "apps/held/kustomization.yaml",
        &kustomization("v1.0.0"),
        "revert held to v1.0.0",
    );

    let port = free_port();
    let _service = Service(
        Command::new(env!("CARGO_BIN_EXE_driftwatch"))
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
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    assert!(wait_for_port(port, Duration::from_secs(10)));
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while get(&format!("{base}/readyz")).0 != 200 {
        assert!(Instant::now() < deadline, "never ready");
        std::thread::sleep(Duration::from_millis(50));
    }

    // The first cycle's waits are noted just after the service says it is ready.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, _, body) = get(&format!("{base}/"));
        if body.contains("pending approval of v1.1.0") && body.contains("set back from") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no waits on the overview: {body}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The overview: each row says what its image waits for, as `check` says it.
    browser.goto(&format!("{base}/"));
    let row = |app: &str| {
        let script = format!(
            "var a = document.querySelector('#rows a[href=\"/apps/{app}\"]'); return a ? a.closest('tr').textContent : '';"
        );
        browser.eval(&script).as_str().unwrap().to_owned()
    };
    let shop_row = row("shop");
    assert!(
        shop_row.contains("pending")
            && shop_row
                .contains("backend: pending approval of v1.1.0: `driftwatch approve` writes it"),
        "{shop_row}"
    );
    let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    std::fs::write(shots.join("status-page-waits.png"), browser.screenshot()).unwrap();
    let held_row = row("held");
    assert!(
        held_row.contains("backend: held: set back from v1.1.0 to v1.0.0 in ")
            && held_row.contains(" by Test;"),
        "{held_row}"
    );

    // Release and approve need the token, over HTTP as from the page.
    let release = format!("{base}/apps/held/release?image={host}%2Fshop%2Fbackend");
    assert_eq!(post(&release, None).0, 401);
    let (status, said) = post(&format!("{base}/apps/held/release"), Some("t0ken"));
    assert_eq!(status, 400, "{said}");
    assert!(said.contains("?image=IMAGE"), "{said}");

    // The application page: the wait, Approve and Reject; the token is typed, not served.
    let (_, _, html) = get(&format!("{base}/apps/shop"));
    assert!(!html.contains("t0ken"));
    browser.goto(&format!("{base}/apps/shop"));
    let waits =
        browser.eval("var w = document.getElementById('waits'); return w ? w.textContent : '';");
    let waits = waits.as_str().unwrap();
    assert!(
        waits.contains("pending approval of v1.1.0")
            && waits.contains("Approve")
            && waits.contains("Reject"),
        "{waits}"
    );
    std::fs::write(shots.join("status-page-approval.png"), browser.screenshot()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while browser.eval("return document.getElementById('live').textContent") != "live" {
        assert!(Instant::now() < deadline, "the live stream never opened");
        std::thread::sleep(Duration::from_millis(50));
    }
    browser.eval(
        "window.notReloaded = true; document.getElementById('token').value = 't0ken'; document.getElementById('user').value = 'ann'; document.querySelector('button[data-action^=\"approve?image=\"]').click(); return null;",
    );
    let body = || {
        browser
            .eval("return document.getElementById('app-live').textContent")
            .as_str()
            .unwrap()
            .to_owned()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = body();
        if tag_in_git("shop") == "v1.1.0"
            && text.contains("v1.0.0 → v1.1.0")
            && !text.contains("pending approval")
        {
            assert!(
                text.contains(&format!(
                    "approved {host}/shop/backend v1.1.0 approved by ann"
                )),
                "{text}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the approval never landed: git {}, page {text}",
            tag_in_git("shop")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let said = browser.eval("return document.getElementById('action-result').textContent");
    assert!(said.as_str().unwrap().starts_with("202 "), "{said}");
    assert_eq!(browser.eval("return window.notReloaded === true"), true);

    // The held application: Release lifts the hold and the policy's choice is written again.
    browser.goto(&format!("{base}/apps/held"));
    let waits =
        browser.eval("var w = document.getElementById('waits'); return w ? w.textContent : '';");
    assert!(
        waits
            .as_str()
            .unwrap()
            .contains("held: set back from v1.1.0 to v1.0.0"),
        "{waits}"
    );
    assert_eq!(
        browser.eval("return document.querySelectorAll('button[data-action^=\"approve\"]').length"),
        0,
        "a hold is released, not approved"
    );
    browser.eval(
        "document.getElementById('token').value = 't0ken'; document.getElementById('user').value = 'ann'; document.querySelector('button[data-action^=\"release?image=\"]').click(); return null;",
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = body();
        if tag_in_git("held") == "v1.1.0" && !text.contains("set back from") {
            assert!(
                text.contains(&format!(
                    "released {host}/shop/backend: the hold from v1.1.0 is lifted by ann"
                )),
                "{text}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the release never landed: git {}, page {text}",
            tag_in_git("held")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::fs::write(shots.join("status-page-released.png"), browser.screenshot()).unwrap();
    eprintln!("screenshots: {}/status-page-*.png", shots.display());
}
