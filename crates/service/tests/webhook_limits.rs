//! The webhook endpoints' limits over a real socket: a body above the limit is refused with 413
//! before it is read, a source over its rate gets 429 with `Retry-After`, and a wrong secret
//! stays 401 — while `/healthz` is not limited.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use driftwatch_service::Shutdown;
use driftwatch_service::http::{router, serve};
use driftwatch_service::limit::{WEBHOOK_BODY_LIMIT, WEBHOOK_BURST};
use driftwatch_service::state::Shared;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn start() -> (std::net::SocketAddr, Shutdown) {
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    // The receiver is dropped: triggers are not what is tested here.
    let shared = Shared::new(tx, Some("webhook-s3cret".to_owned()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = Shutdown::new();
    tokio::spawn(serve(listener, router(shared), shutdown.clone()));
    (addr, shutdown)
}

/// Sends `head` (request line and headers, without the blank line) and `body`; returns the
/// raw response.
async fn send(addr: std::net::SocketAddr, head: &str, body: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("{head}\r\nconnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    // The server may answer and close before taking all of a refused body.
    let _ = s.write_all(body).await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

fn status(resp: &str) -> u16 {
    resp.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn oversized_body_is_413_without_being_read() {
    let (addr, shutdown) = start().await;
    // Announce 64 MiB but send none of it: the answer must come from the length alone.
    let resp = send(
        addr,
        &format!(
            "POST /webhook/git HTTP/1.1\r\nhost: x\r\nauthorization: Bearer webhook-s3cret\r\ncontent-length: {}",
            64 * WEBHOOK_BODY_LIMIT
        ),
        b"",
    )
    .await;
    assert_eq!(status(&resp), 413, "{resp}");
    // A chunked body has no length up front: it is read up to the limit, then refused.
    let mut chunked = Vec::new();
    for _ in 0..(2 * WEBHOOK_BODY_LIMIT / 65536) {
        chunked.extend_from_slice(b"10000\r\n");
        chunked.extend(std::iter::repeat_n(b' ', 65536));
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let resp = send(
        addr,
        "POST /webhook/git HTTP/1.1\r\nhost: x\r\nauthorization: Bearer webhook-s3cret\r\ntransfer-encoding: chunked",
        &chunked,
    )
    .await;
    assert_eq!(status(&resp), 413, "{resp}");
    // Just under the limit is read and judged on its merits (the secret is wrong: 401).
    let body = vec![b' '; WEBHOOK_BODY_LIMIT - 1];
    let resp = send(
        addr,
        &format!(
            "POST /webhook HTTP/1.1\r\nhost: x\r\nauthorization: Bearer wrong\r\ncontent-length: {}",
            body.len()
        ),
        &body,
    )
    .await;
    assert_eq!(status(&resp), 401, "{resp}");
    shutdown.cancel();
}

#[tokio::test]
async fn a_flooding_source_gets_429_with_retry_after() {
    let (addr, shutdown) = start().await;
    let mut codes = Vec::new();
    // Up to many more than the burst: on a slow machine the bucket refills while we send.
    for _ in 0..(WEBHOOK_BURST * 25) {
        let resp = send(
            addr,
            "POST /webhook HTTP/1.1\r\nhost: x\r\nauthorization: Bearer wrong\r\ncontent-length: 2",
            b"{}",
        )
        .await;
        if status(&resp) == 429 {
            let lower = resp.to_lowercase();
            let retry = lower
                .lines()
                .find_map(|l| l.strip_prefix("retry-after: "))
                .and_then(|v| v.trim().parse::<u64>().ok());
            assert!(retry.is_some_and(|s| s >= 1), "{resp}");
        }
        codes.push(status(&resp));
        if codes.last() == Some(&429) {
            break;
        }
    }
    // Wrong secrets are refused one by one until the bucket is empty, then rate limited.
    assert!(
        codes.iter().take(WEBHOOK_BURST as usize).all(|&c| c == 401),
        "{codes:?}"
    );
    assert!(codes.contains(&429), "{codes:?}");
    // Other routes are not limited.
    let resp = send(addr, "GET /healthz HTTP/1.1\r\nhost: x", b"").await;
    assert_eq!(status(&resp), 200, "{resp}");
    shutdown.cancel();
}
