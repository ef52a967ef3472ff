//! A misbehaving registry: every fault gives a clear error and no partial result.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use driftwatch_policy::ImageRef;
use driftwatch_registry::{Client, Endpoint, Error, Options, RegistriesConf};
use driftwatch_testkit::http::{Reply, Request, Server};

fn client() -> Client {
    Client::new(
        RegistriesConf::default(),
        Options {
            max_retries: 2,
            backoff: Duration::from_millis(10),
            request_timeout: Duration::from_secs(1),
            max_body: 64 * 1024,
            ..Options::default()
        },
    )
    .unwrap()
}

fn endpoint(c: &Client, server: &Server, repo: &str) -> Endpoint {
    c.endpoint(
        &ImageRef::parse(&format!("127.0.0.1:{}/{repo}", server.port)).unwrap(),
        false,
    )
}

fn tags_json(tags: &[&str]) -> String {
    serde_json::json!({"name": "x", "tags": tags}).to_string()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn server_errors_are_retried_then_reported() {
    let calls = Arc::new(AtomicU32::new(0));
    let n = calls.clone();
    let server = Server::start(move |req: &Request| {
        let k = n.fetch_add(1, Ordering::SeqCst);
        if req.path().starts_with("/v2/flaky/") && k < 2 {
            return Reply::new(503, &[], "busy");
        }
        if req.path().starts_with("/v2/down/") {
            return Reply::new(500, &[], "oops");
        }
        Reply::new(
            200,
            &[("Content-Type", "application/json")],
            tags_json(&["1.0.0"]),
        )
    });
    let c = client();
    let list = rt()
        .block_on(c.list_tags(&endpoint(&c, &server, "flaky")))
        .unwrap();
    assert_eq!(list.tags, ["1.0.0"]);
    assert_eq!(c.stats().total(), 3, "two 503s and one success");

    let err = rt()
        .block_on(c.list_tags(&endpoint(&c, &server, "down")))
        .unwrap_err();
    assert!(matches!(err, Error::Status { status: 500, .. }), "{err}");
    assert!(err.is_transient());
    assert!(err.to_string().contains("listing tags of down"), "{err}");
}

#[test]
fn too_many_requests_waits_for_retry_after() {
    let calls = Arc::new(AtomicU32::new(0));
    let n = calls.clone();
    let server = Server::start(move |req: &Request| {
        if req.path().starts_with("/v2/forever/") {
            return Reply::new(429, &[("Retry-After", "3600")], "");
        }
        if n.fetch_add(1, Ordering::SeqCst) == 0 {
            return Reply::new(429, &[("Retry-After", "1")], "");
        }
        Reply::new(200, &[], tags_json(&["a"]))
    });
    let c = client();
    let start = Instant::now();
    let list = rt()
        .block_on(c.list_tags(&endpoint(&c, &server, "app")))
        .unwrap();
    assert_eq!(list.tags, ["a"]);
    assert!(
        start.elapsed() >= Duration::from_millis(950),
        "Retry-After was not obeyed"
    );

    let start = Instant::now();
    let err = rt()
        .block_on(c.list_tags(&endpoint(&c, &server, "forever")))
        .unwrap_err();
    assert!(err.to_string().contains("rate limited"), "{err}");
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "a long Retry-After fails now, not in an hour"
    );
}

/// A body cut short (the connection closes inside it) is retried like a reset before the
/// answer: the list that comes back is the whole one from the next try, never the fragment.
#[test]
fn a_body_cut_short_is_retried_and_the_list_is_whole() {
    let calls = Arc::new(AtomicU32::new(0));
    let n = calls.clone();
    let server = Server::start(move |_: &Request| {
        if n.fetch_add(1, Ordering::SeqCst) == 0 {
            return Reply::Raw {
                chunks: vec![
                    b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"tags\":[\"1.0".to_vec(),
                ],
                pause: Duration::ZERO,
            };
        }
        Reply::new(200, &[], tags_json(&["1.0.0", "1.1.0"]))
    });
    let c = client();
    let list = rt()
        .block_on(c.list_tags(&endpoint(&c, &server, "app")))
        .unwrap();
    assert_eq!(list.tags, ["1.0.0", "1.1.0"]);
    assert_eq!(calls.load(Ordering::SeqCst), 2, "one cut short, one whole");
}

#[test]
fn broken_bodies_fail_cleanly() {
    let server = Server::start(|req: &Request| match req.path() {
        "/v2/slow/tags/list" => Reply::Raw {
            chunks: std::iter::once(
                b"HTTP/1.1 200 OK\r\nContent-Length: 400\r\n\r\n{\"tags\":[".to_vec(),
            )
            .chain((0..20).map(|_| b"\"1.0.0\",".to_vec()))
            .collect(),
            pause: Duration::from_millis(200),
        },
        "/v2/truncated/tags/list" => Reply::Raw {
            chunks: vec![
                b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"tags\":[\"1.0".to_vec(),
            ],
            pause: Duration::ZERO,
        },
        "/v2/invalid/tags/list" => Reply::new(200, &[], "{\"tags\": [1.0.0"),
        "/v2/huge/tags/list" => Reply::Raw {
            chunks: vec![
                b"HTTP/1.1 200 OK\r\nContent-Length: 2147483648\r\n\r\n{\"tags\":[".to_vec(),
            ],
            pause: Duration::ZERO,
        },
        "/v2/endless/tags/list" => Reply::Raw {
            chunks: std::iter::once(b"HTTP/1.1 200 OK\r\n\r\n{\"tags\":[".to_vec())
                .chain((0..200).map(|_| vec![b' '; 1024]))
                .collect(),
            pause: Duration::ZERO,
        },
        "/v2/loop/tags/list" => Reply::new(
            200,
            &[("Link", "</v2/loop/tags/list?n=1000>; rel=\"next\"")],
            tags_json(&["a"]),
        ),
        _ => Reply::new(404, &[], ""),
    });
    let c = client();
    let run = |repo: &str| {
        rt().block_on(c.list_tags(&endpoint(&c, &server, repo)))
            .unwrap_err()
    };

    let slow = run("slow");
    assert!(matches!(slow, Error::Transport { .. }), "{slow}");
    assert!(
        slow.to_string().contains("timed out") || slow.to_string().contains("body"),
        "{slow}"
    );
    let truncated = run("truncated");
    assert!(matches!(truncated, Error::Transport { .. }), "{truncated}");
    let invalid = run("invalid");
    assert!(
        matches!(invalid, Error::Protocol { .. }) && invalid.to_string().contains("not valid JSON"),
        "{invalid}"
    );
    let huge = run("huge");
    assert!(matches!(huge, Error::TooLarge { .. }), "{huge}");
    let endless = run("endless");
    assert!(matches!(endless, Error::TooLarge { .. }), "{endless}");
    let looped = run("loop");
    assert!(looped.to_string().contains("loops back"), "{looped}");
}

#[test]
fn failing_token_endpoint_and_lying_manifests() {
    let server = Arc::new(std::sync::Mutex::new(0u16));
    let port = server.clone();
    let s = Server::start(move |req: &Request| {
        let p = *port.lock().unwrap();
        match req.path() {
            "/token" => Reply::new(500, &[], "token service down"),
            "/v2/secured/tags/list" => Reply::new(
                401,
                &[(
                    "WWW-Authenticate",
                    &format!("Bearer realm=\"http://127.0.0.1:{p}/token\",service=\"x\""),
                )],
                "",
            ),
            path if path.starts_with("/v2/liar/manifests/") => Reply::new(
                200,
                &[(
                    "Content-Type",
                    "application/vnd.docker.distribution.manifest.v2+json",
                )],
                format!(
                    r#"{{"schemaVersion":2,"config":{{"digest":"sha256:{}"}}}}"#,
                    "0".repeat(64)
                ),
            ),
            _ => Reply::new(404, &[], ""),
        }
    });
    *server.lock().unwrap() = s.port;
    let c = client();
    let wrong = format!("sha256:{}", "1".repeat(64));
    let err = rt()
        .block_on(c.manifest(&endpoint(&c, &s, "liar"), &wrong))
        .unwrap_err();
    assert!(
        err.to_string().contains("not the digest asked for"),
        "{err}"
    );
    let err = rt()
        .block_on(c.list_tags(&endpoint(&c, &s, "secured")))
        .unwrap_err();
    assert!(
        matches!(err, Error::Auth { .. }) && err.to_string().contains("HTTP 500"),
        "{err}"
    );
}

#[test]
fn rate_limit_spaces_requests() {
    let server = Server::start(|_: &Request| Reply::new(200, &[], tags_json(&["a"])));
    let conf = RegistriesConf::parse(
        &format!(
            "registries:\n- api_url: http://127.0.0.1:{}\n  limit: 5\n",
            server.port
        ),
        "registries.conf",
    )
    .unwrap();
    let c = Client::new(conf, Options::default()).unwrap();
    let ep = endpoint(&c, &server, "app");
    let start = Instant::now();
    rt().block_on(async {
        for _ in 0..11 {
            c.list_tags(&ep).await.unwrap();
        }
    });
    // A burst of 5, then 5 per second: 11 requests take at least 1.2 s.
    assert!(
        start.elapsed() >= Duration::from_millis(1150),
        "{:?}",
        start.elapsed()
    );
}

/// Registries that tag their lists (GHCR, Quay, registries behind a CDN) are asked
/// conditionally: one request per list as before, but a `304` is answered from memory, and a
/// changed list replaces it. A list split over pages is never answered from memory.
#[test]
fn tag_lists_with_an_etag_are_asked_for_conditionally() {
    let version = Arc::new(AtomicU32::new(1));
    let v = version.clone();
    let conditional = Arc::new(AtomicU32::new(0));
    let c304 = conditional.clone();
    let server = Server::start(move |req: &Request| {
        let now = v.load(Ordering::SeqCst);
        let etag = format!("\"list-{now}\"");
        if req.path().starts_with("/v2/paged/") {
            if req.header("if-none-match").is_some() {
                c304.fetch_add(1, Ordering::SeqCst);
            }
            return match req.query("last") {
                None => Reply::new(
                    200,
                    &[
                        ("ETag", etag.as_str()),
                        ("Link", "</v2/paged/tags/list?n=1000&last=a>; rel=\"next\""),
                    ],
                    tags_json(&["a"]),
                ),
                Some(_) => Reply::new(200, &[], tags_json(&["b"])),
            };
        }
        if req.header("if-none-match") == Some(etag.as_str()) {
            c304.fetch_add(1, Ordering::SeqCst);
            return Reply::new(304, &[("ETag", etag.as_str())], "");
        }
        let tags: Vec<String> = (1..=now).map(|i| format!("1.0.{i}")).collect();
        let tags: Vec<&str> = tags.iter().map(String::as_str).collect();
        Reply::new(200, &[("ETag", etag.as_str())], tags_json(&tags))
    });
    let c = client();
    let ep = endpoint(&c, &server, "app");
    let list = |c: &Client| rt().block_on(c.list_tags(&ep)).unwrap().tags.clone();
    assert_eq!(list(&c), ["1.0.1"]);
    assert_eq!(conditional.load(Ordering::SeqCst), 0);
    assert_eq!(list(&c), ["1.0.1"], "answered by the 304 from memory");
    assert_eq!(conditional.load(Ordering::SeqCst), 1);
    version.store(2, Ordering::SeqCst);
    assert_eq!(list(&c), ["1.0.1", "1.0.2"], "a changed list replaces it");
    assert_eq!(list(&c), ["1.0.1", "1.0.2"]);
    assert_eq!(conditional.load(Ordering::SeqCst), 2);
    assert_eq!(
        c.stats().total(),
        4,
        "one request per listing, as without ETags"
    );

    let paged = endpoint(&c, &server, "paged");
    for _ in 0..2 {
        let tags = rt().block_on(c.list_tags(&paged)).unwrap().tags.clone();
        assert_eq!(tags, ["a", "b"]);
    }
    assert_eq!(
        conditional.load(Ordering::SeqCst),
        2,
        "a paged list is read whole every time"
    );
}
