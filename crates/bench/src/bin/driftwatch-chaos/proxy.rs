//! A fault proxy: forwards TCP connections to one upstream and, while its fault phase lasts,
//! breaks a seeded random share of them.
//!
//! At the TCP level (any protocol, TLS included, since nothing is decrypted): latency before
//! connecting, a reset (RST) at once or mid-stream, a stall (bytes stop flowing for a while,
//! then the connection closes), and truncation (a clean close mid-stream). For plain HTTP/1.1
//! upstreams it also reads each request's head and can answer it itself — 500/502/503, or 429
//! with `Retry-After` — or forward it and cut the response's body short. HTTP requests are sent
//! upstream with `Connection: close`, so every request comes on a connection of its own and
//! faults fall on requests, not only on the first request of a pooled connection.
//!
//! [`Proxy::calm`] ends the fault phase for connections already open too: a stall or a latency
//! in progress ends (the transfer goes on), and a fault planned for later in a connection (a
//! cut after N bytes, a status answer) does not strike. Otherwise a 60 s stall begun just
//! before calm would still be a fault in force long after "the faults stopped", and the
//! recovery measured would be the proxy's, not the product's.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What is spoken through the proxy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Bytes only (TLS passes through).
    Tcp,
    /// HTTP/1.1 in the clear: status answers and cut bodies too.
    Http,
}

/// One kind of fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    Latency,
    Reset,
    Stall,
    Truncate,
    Status5xx,
    Status429,
}

impl Fault {
    pub fn name(self) -> &'static str {
        match self {
            Fault::Latency => "latency",
            Fault::Reset => "reset",
            Fault::Stall => "stall",
            Fault::Truncate => "truncated",
            Fault::Status5xx => "5xx",
            Fault::Status429 => "429",
        }
    }
}

/// Counters of one proxy.
#[derive(Default)]
pub struct Stats {
    /// Connections (for HTTP, requests: each has its own connection).
    pub connections: AtomicU64,
    pub faults: Mutex<BTreeMap<Fault, u64>>,
}

impl Stats {
    fn count(&self, f: Fault) {
        *self.faults.lock().unwrap().entry(f).or_default() += 1;
    }
    pub fn total_faults(&self) -> u64 {
        self.faults.lock().unwrap().values().sum()
    }
}

/// xorshift64*, seeded: the same seed gives the same sequence of decisions.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
}

/// A running proxy.
pub struct Proxy {
    pub addr: SocketAddr,
    pub stats: Arc<Stats>,
    faulty: Arc<AtomicBool>,
    calm: watch::Sender<bool>,
}

impl Proxy {
    /// Listens on a free loopback port and forwards to `upstream`; faults are on until
    /// [`Proxy::calm`]. `rate` is the share of connections given a fault.
    pub async fn start(upstream: SocketAddr, mode: Mode, seed: u64, rate: f64) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stats = Arc::new(Stats::default());
        let faulty = Arc::new(AtomicBool::new(true));
        let rng = Arc::new(Mutex::new(Rng::new(seed)));
        let (calm, calmed) = watch::channel(false);
        let (s, f) = (stats.clone(), faulty.clone());
        tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                s.connections.fetch_add(1, Ordering::Relaxed);
                // Decided at accept, in accept order, from the seeded sequence.
                let plan = if f.load(Ordering::Relaxed) {
                    let mut r = rng.lock().unwrap();
                    decide(&mut r, mode, rate)
                } else {
                    Plan::clean()
                };
                let stats = s.clone();
                let calmed = calmed.clone();
                tokio::spawn(async move {
                    let _ = client.set_nodelay(true);
                    if let Some(fault) = plan.fault {
                        stats.count(fault);
                    }
                    let _ = match mode {
                        Mode::Tcp => tcp(client, upstream, plan, calmed).await,
                        Mode::Http => http(client, upstream, plan, calmed).await,
                    };
                });
            }
        });
        Proxy {
            addr,
            stats,
            faulty,
            calm,
        }
    }

    /// Ends the fault phase: connections accepted from now on pass untouched, and those open
    /// now have their faults ended (see the module's comment).
    pub fn calm(&self) {
        self.faulty.store(false, Ordering::Relaxed);
        self.calm.send_replace(true);
    }
}

/// What happens to one connection.
#[derive(Clone, Copy, Debug)]
struct Plan {
    fault: Option<Fault>,
    /// Latency before anything is forwarded.
    delay: Duration,
    /// Bytes from upstream let through before a mid-stream fault (for TCP), or the share of
    /// the body sent (per mille, for HTTP).
    after: u64,
    /// How long a stall lasts before the connection is closed.
    stall: Duration,
    /// 500, 502 or 503.
    status: u16,
}

impl Plan {
    fn clean() -> Plan {
        Plan {
            fault: None,
            delay: Duration::ZERO,
            after: 0,
            stall: Duration::ZERO,
            status: 0,
        }
    }
}

fn decide(r: &mut Rng, mode: Mode, rate: f64) -> Plan {
    let mut plan = Plan::clean();
    if !r.chance(rate) {
        return plan;
    }
    let kinds: &[Fault] = match mode {
        Mode::Tcp => &[Fault::Latency, Fault::Reset, Fault::Stall, Fault::Truncate],
        Mode::Http => &[
            Fault::Latency,
            Fault::Reset,
            Fault::Stall,
            Fault::Truncate,
            Fault::Status5xx,
            Fault::Status429,
        ],
    };
    let fault = kinds[r.below(kinds.len() as u64) as usize];
    plan.fault = Some(fault);
    match fault {
        Fault::Latency => plan.delay = Duration::from_millis(100 + r.below(1900)),
        Fault::Reset | Fault::Truncate => {
            plan.after = match mode {
                // Somewhere in the first few TLS records, or at once.
                Mode::Tcp => r.below(8192),
                Mode::Http => r.below(1000),
            }
        }
        Fault::Stall => {
            plan.after = r.below(4096);
            plan.stall = Duration::from_secs(5 + r.below(56));
        }
        Fault::Status5xx => plan.status = [500, 502, 503][r.below(3) as usize],
        Fault::Status429 => plan.status = 429,
    }
    plan
}

/// Sleeps `d`, or less when the fault phase ends first; true when it has ended.
async fn fault_sleep(d: Duration, calm: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        () = tokio::time::sleep(d) => {}
        // An error means the proxy is gone: nothing left to wait for either.
        _ = calm.wait_for(|c| *c) => {}
    }
    *calm.borrow()
}

/// Closes with a RST rather than a FIN.
fn reset(s: TcpStream) {
    let _ = s.set_zero_linger();
    drop(s);
}

async fn tcp(
    client: TcpStream,
    upstream: SocketAddr,
    mut plan: Plan,
    mut calm: watch::Receiver<bool>,
) -> std::io::Result<()> {
    if fault_sleep(plan.delay, &mut calm).await {
        plan.fault = None;
    }
    if plan.fault == Some(Fault::Reset) && plan.after == 0 {
        reset(client);
        return Ok(());
    }
    let server = TcpStream::connect(upstream).await?;
    let _ = server.set_nodelay(true);
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let up = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut cr, &mut sw).await;
        let _ = sw.shutdown().await;
    });
    // Upstream to client, where a mid-stream fault strikes after `after` bytes, unless the
    // fault phase ended before that.
    let mut limit = match plan.fault {
        Some(Fault::Reset | Fault::Truncate | Fault::Stall) => Some(plan.after),
        _ => None,
    };
    let mut sent = 0u64;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = sr.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        if limit.is_some() && *calm.borrow() {
            limit = None;
        }
        if let Some(l) = limit
            && sent + n as u64 > l
        {
            let head = (l - sent) as usize;
            cw.write_all(&buf[..head]).await?;
            if plan.fault == Some(Fault::Stall) {
                if fault_sleep(plan.stall, &mut calm).await {
                    // Calm ended the stall: the transfer goes on.
                    cw.write_all(&buf[head..n]).await?;
                    sent += n as u64;
                    limit = None;
                    continue;
                }
            } else if plan.fault == Some(Fault::Truncate) {
                let _ = cw.shutdown().await;
            } else {
                // Closing with linger 0 sends a RST.
                let _ = cw.as_ref().set_zero_linger();
            }
            // Dropping both halves closes the client's connection (a RST for a reset).
            up.abort();
            return Ok(());
        }
        cw.write_all(&buf[..n]).await?;
        sent += n as u64;
    }
    let _ = cw.shutdown().await;
    let _ = up.await;
    Ok(())
}

/// Reads up to the end of an HTTP head (`\r\n\r\n`); returns the head and what came after it.
async fn read_head(s: &mut TcpStream) -> std::io::Result<Option<(Vec<u8>, Vec<u8>)>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buf.split_off(i + 4);
            return Ok(Some((buf, rest)));
        }
        if buf.len() > 64 * 1024 {
            return Ok(None);
        }
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// The request head with `Connection: close` in place of any connection headers.
fn close_after(head: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(head);
    let mut out = String::new();
    for line in text.split("\r\n").filter(|l| !l.is_empty()) {
        let name = line
            .split(':')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if matches!(
            name.as_str(),
            "connection" | "keep-alive" | "proxy-connection"
        ) {
            continue;
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str("Connection: close\r\n\r\n");
    out.into_bytes()
}

async fn http(
    mut client: TcpStream,
    upstream: SocketAddr,
    mut plan: Plan,
    mut calm: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let Some((head, early)) = read_head(&mut client).await? else {
        return Ok(());
    };
    if fault_sleep(plan.delay, &mut calm).await {
        plan.fault = None;
    }
    match plan.fault {
        Some(Fault::Status5xx | Fault::Status429) => {
            let reason = match plan.status {
                429 => "Too Many Requests",
                500 => "Internal Server Error",
                502 => "Bad Gateway",
                _ => "Service Unavailable",
            };
            let retry = if plan.status == 429 {
                "Retry-After: 1\r\n"
            } else {
                ""
            };
            let body = format!("{{\"errors\":[{{\"code\":\"CHAOS\",\"message\":\"{reason}\"}}]}}");
            let answer = format!(
                "HTTP/1.1 {} {reason}\r\n{retry}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                plan.status,
                body.len()
            );
            client.write_all(answer.as_bytes()).await?;
            let _ = client.shutdown().await;
            return Ok(());
        }
        Some(Fault::Reset) if plan.after == 0 => {
            reset(client);
            return Ok(());
        }
        _ => {}
    }
    let mut server = TcpStream::connect(upstream).await?;
    server.write_all(&close_after(&head)).await?;
    server.write_all(&early).await?;
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    // The rest of the request body, if any, as it comes.
    let up = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut cr, &mut sw).await;
        cr
    });
    if plan.fault.is_none() || plan.fault == Some(Fault::Latency) {
        tokio::io::copy(&mut sr, &mut cw).await?;
        let _ = cw.shutdown().await;
        up.abort();
        return Ok(());
    }
    // The whole response (upstream closes after it), then only a part of its body.
    let mut response = Vec::new();
    sr.read_to_end(&mut response).await?;
    let body_at = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(0, |i| i + 4);
    let body = (response.len() - body_at) as u64;
    // Within the body (or, when there is none, within the head): never the whole response.
    let cut = if body == 0 {
        body_at / 2
    } else {
        body_at + (body * plan.after / 1000).min(body - 1) as usize
    };
    if *calm.borrow() {
        // The fault phase ended while the answer was read: it goes through whole.
        cw.write_all(&response).await?;
        let _ = cw.shutdown().await;
        up.abort();
        return Ok(());
    }
    match plan.fault {
        Some(Fault::Stall) => {
            // The head and part of the body, then nothing for a while — or, if the fault
            // phase ends first, the rest.
            cw.write_all(&response[..cut]).await?;
            if fault_sleep(plan.stall, &mut calm).await {
                cw.write_all(&response[cut..]).await?;
                let _ = cw.shutdown().await;
            }
        }
        Some(Fault::Reset) => {
            // Lingering 0 s, dropping the client's socket sends a RST. Set only now, so an
            // answer that goes through whole (calm came first) ends with a plain close.
            cw.write_all(&response[..cut]).await?;
            let _ = cw.as_ref().set_zero_linger();
        }
        _ => {
            cw.write_all(&response[..cut]).await?;
            let _ = cw.shutdown().await;
        }
    }
    up.abort();
    Ok(())
}
