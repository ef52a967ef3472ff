//! Limits on the webhook endpoints, which anyone who can reach the listener may call: a
//! per-source token bucket (so one caller cannot flood the loops or brute-force the secret)
//! and the largest body accepted.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::http::header::{CONTENT_LENGTH, RETRY_AFTER};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The largest webhook body read (1 MiB): registry and Git host payloads are a few KiB; a
/// larger body is refused with 413 as soon as its length is known, never buffered whole.
pub const WEBHOOK_BODY_LIMIT: usize = 1024 * 1024;

/// Webhook requests a source may make per second, sustained.
pub const WEBHOOK_RATE: u32 = 20;

/// Webhook requests a source may make at once after being quiet (a registry announcing a
/// multi-arch push sends several notifications together).
pub const WEBHOOK_BURST: u32 = 40;

/// How many sources are remembered before idle ones are forgotten, so a caller spraying
/// addresses cannot grow the table without bound.
const MAX_SOURCES: usize = 10_000;

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// A token bucket per source address: `rate` tokens a second up to `burst`; each request
/// takes one. IPv6 sources are keyed by their /64, which one host usually owns whole.
#[derive(Debug)]
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

impl RateLimiter {
    /// A limiter allowing `per_second` requests a second per source, `burst` at once
    /// (both at least 1).
    pub fn new(per_second: u32, burst: u32) -> Self {
        RateLimiter {
            rate: f64::from(per_second.max(1)),
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token for `source` at `now`: `Ok` when the request may go on, otherwise how
    /// long until the next token.
    pub fn check(&self, source: IpAddr, now: Instant) -> Result<(), Duration> {
        let key = source_key(source);
        // A panic elsewhere while holding the lock leaves the buckets usable as they are.
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if buckets.len() >= MAX_SOURCES && !buckets.contains_key(&key) {
            let (rate, burst) = (self.rate, self.burst);
            buckets.retain(|_, b| refill(b, now, rate, burst) < burst);
            if buckets.len() >= MAX_SOURCES {
                // Every source is busy: starting everyone afresh is better than refusing
                // newcomers, which would let a flood lock out the real registry.
                buckets.clear();
            }
        }
        let b = buckets.entry(key).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        b.tokens = refill(b, now, self.rate, self.burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - b.tokens) / self.rate))
        }
    }
}

fn refill(b: &Bucket, now: Instant, rate: f64, burst: f64) -> f64 {
    let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
    (b.tokens + elapsed * rate).min(burst)
}

fn source_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
        v4 => v4,
    }
}

/// Middleware in front of every webhook: refuses a request with 429 and `Retry-After` (whole
/// seconds, at least 1) when its source has no token left, and with 413 when its declared
/// `Content-Length` is above [`WEBHOOK_BODY_LIMIT`] — at once, without reading the body (a
/// chunked body is cut off at the limit by `DefaultBodyLimit` instead). The source is the TCP
/// peer from `ConnectInfo`; headers such as `X-Forwarded-For` are not trusted, since any caller
/// can write them. Without connection info (a router not served by [`crate::http::serve`])
/// all requests share one bucket.
pub async fn guard(
    State(limiter): State<Arc<RateLimiter>>,
    request: Request,
    next: Next,
) -> Response {
    let source = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
    if let Err(wait) = limiter.check(source, Instant::now()) {
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        tracing::warn!(source = %source, "webhook rate limit exceeded");
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [(RETRY_AFTER, secs.max(1).to_string())],
            "too many webhook requests from this address",
        )
            .into_response();
    }
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > WEBHOOK_BODY_LIMIT as u64) {
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("webhook bodies are limited to {WEBHOOK_BODY_LIMIT} bytes"),
        )
            .into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_bursts_then_refills_per_source() {
        let l = RateLimiter::new(2, 3);
        let t = Instant::now();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        for _ in 0..3 {
            assert_eq!(l.check(a, t), Ok(()));
        }
        let wait = l.check(a, t).unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_millis(500));
        // Another source has its own bucket.
        assert_eq!(l.check(b, t), Ok(()));
        // Half a second at 2/s is one token back.
        assert_eq!(l.check(a, t + Duration::from_millis(500)), Ok(()));
        assert!(l.check(a, t + Duration::from_millis(500)).is_err());
        // Long quiet: back to the burst, never more.
        let later = t + Duration::from_secs(60);
        for _ in 0..3 {
            assert_eq!(l.check(a, later), Ok(()));
        }
        assert!(l.check(a, later).is_err());
    }

    #[test]
    fn ipv6_shares_a_bucket_per_64_and_mapped_v4_is_v4() {
        let l = RateLimiter::new(1, 1);
        let t = Instant::now();
        assert!(l.check("2001:db8::1".parse().unwrap(), t).is_ok());
        assert!(l.check("2001:db8::ffff:2".parse().unwrap(), t).is_err());
        assert!(l.check("2001:db8:0:1::1".parse().unwrap(), t).is_ok());
        assert!(l.check("192.0.2.9".parse().unwrap(), t).is_ok());
        assert!(l.check("::ffff:192.0.2.9".parse().unwrap(), t).is_err());
    }

    #[test]
    fn the_table_stays_bounded() {
        let l = RateLimiter::new(1, 1);
        let t = Instant::now();
        for i in 0..(MAX_SOURCES as u32 + 10) {
            let _ = l.check(IpAddr::V4(Ipv4Addr::from(i)), t);
        }
        assert!(l.buckets.lock().unwrap().len() <= MAX_SOURCES);
    }
}
