//! The HTTP side of `driftwatch run`: registry webhooks (authenticated), `/metrics`,
//! `/healthz` and `/readyz`. Handlers only parse and hand work to the updater loop.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use driftwatch_registry::{PushEvent, parse_webhook, verify_github_signature};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// What the HTTP side asks of the updater loop.
pub enum Trigger {
    /// Re-check the images these pushes concern; `seen` is when the webhook arrived.
    Push(Vec<PushEvent>, i128),
    /// Finish the current cycle and stop.
    Stop,
}

/// Labels of per-application metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AppLabel {
    pub app: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub registry: String,
    pub endpoint: String,
    pub status: String,
}

/// The metrics driftwatch exports.
pub struct Metrics {
    pub registry: Mutex<Registry>,
    pub images_watched: Gauge,
    pub updates: Counter,
    pub errors: Counter,
    pub cycles: Counter,
    pub webhooks: Counter,
    pub registry_requests: Family<RequestLabels, Counter>,
    pub cycle_seconds: Histogram,
    pub push_to_commit_seconds: Histogram,
    pub syncs: Counter,
    pub sync_errors: Counter,
    pub heals: Counter,
    pub fights: Counter,
    pub git_webhooks: Counter,
    pub out_of_sync: Family<AppLabel, Gauge>,
    pub push_to_deploy_seconds: Histogram,
    pub watch_events: Counter,
}

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::with_prefix("driftwatch");
        let buckets = [
            0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 180.0,
        ];
        let m = Metrics {
            registry: Mutex::new(Registry::default()),
            images_watched: Gauge::default(),
            updates: Counter::default(),
            errors: Counter::default(),
            cycles: Counter::default(),
            webhooks: Counter::default(),
            registry_requests: Family::default(),
            cycle_seconds: Histogram::new(buckets),
            push_to_commit_seconds: Histogram::new(buckets),
            syncs: Counter::default(),
            sync_errors: Counter::default(),
            heals: Counter::default(),
            fights: Counter::default(),
            git_webhooks: Counter::default(),
            out_of_sync: Family::default(),
            push_to_deploy_seconds: Histogram::new(buckets),
            watch_events: Counter::default(),
        };
        registry.register(
            "images_watched",
            "Images tracked across all applications",
            m.images_watched.clone(),
        );
        registry.register("updates", "Image updates written to Git", m.updates.clone());
        registry.register(
            "errors",
            "Images whose check or update failed in a cycle",
            m.errors.clone(),
        );
        registry.register("cycles", "Updater cycles run", m.cycles.clone());
        registry.register(
            "webhooks",
            "Registry push webhooks accepted",
            m.webhooks.clone(),
        );
        registry.register(
            "registry_requests",
            "Requests to registries by registry, endpoint and status",
            m.registry_requests.clone(),
        );
        registry.register(
            "cycle_duration_seconds",
            "Duration of updater cycles",
            m.cycle_seconds.clone(),
        );
        registry.register(
            "push_to_commit_seconds",
            "From a registry push webhook to the commit pushed to Git",
            m.push_to_commit_seconds.clone(),
        );
        registry.register("syncs", "Revisions applied to the cluster", m.syncs.clone());
        registry.register(
            "sync_errors",
            "Renders, syncs and heals that failed",
            m.sync_errors.clone(),
        );
        registry.register(
            "heals",
            "Manual changes put back from watch events",
            m.heals.clone(),
        );
        registry.register(
            "fights",
            "Objects no longer healed because another manager keeps changing them",
            m.fights.clone(),
        );
        registry.register(
            "git_webhooks",
            "Git push webhooks accepted",
            m.git_webhooks.clone(),
        );
        registry.register(
            "out_of_sync_objects",
            "Objects that differ from Git, per application",
            m.out_of_sync.clone(),
        );
        registry.register(
            "push_to_deploy_seconds",
            "From a registry push webhook to the new image applied to the cluster",
            m.push_to_deploy_seconds.clone(),
        );
        registry.register(
            "watch_events",
            "Watch events (and listed objects) the healer has judged",
            m.watch_events.clone(),
        );
        if let Ok(mut r) = m.registry.lock() {
            *r = registry;
        }
        m
    }
}

/// State shared by the handlers and the loop.
pub struct Shared {
    pub metrics: Metrics,
    pub ready: AtomicBool,
    tx: Mutex<mpsc::Sender<Trigger>>,
    secret: Option<Vec<u8>>,
    /// The Git → cluster loop, when `run` has a cluster.
    pub deploy: Mutex<Option<tokio::sync::mpsc::UnboundedSender<crate::deploy::DeployTrigger>>>,
    /// Every application's sync status and health, when `run` has a cluster.
    pub status: Mutex<Option<driftwatch_deploy::StatusView>>,
}

impl Shared {
    /// State for a loop listening on `tx`; `secret` authenticates webhooks.
    pub fn new(tx: mpsc::Sender<Trigger>, secret: Option<String>) -> Arc<Self> {
        Arc::new(Shared {
            metrics: Metrics::new(),
            ready: AtomicBool::new(false),
            tx: Mutex::new(tx),
            secret: secret.map(String::into_bytes),
            deploy: Mutex::new(None),
            status: Mutex::new(None),
        })
    }

    /// Sends a trigger to the loop.
    pub fn send(&self, t: Trigger) {
        if let Ok(tx) = self.tx.lock() {
            let _ = tx.send(t);
        }
    }
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(s): State<Arc<Shared>>) -> (StatusCode, &'static str) {
    if s.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "first cycle not finished")
    }
}

async fn metrics(State(s): State<Arc<Shared>>) -> (StatusCode, HeaderMap, String) {
    // Out-of-sync objects are a reading of now, taken from the status view at each scrape.
    if let Some(view) = s.status.lock().ok().and_then(|v| v.clone()) {
        for a in view.snapshot() {
            s.metrics
                .out_of_sync
                .get_or_create(&AppLabel { app: a.app })
                .set(i64::try_from(a.out_of_sync.len()).unwrap_or(i64::MAX));
        }
    }
    let view = s.status.lock().ok().and_then(|v| v.clone());
    let mut text = String::new();
    let ok = s.metrics.registry.lock().ok().is_some_and(|r| {
        // The healer counts; the counter catches up under the registry's lock, so two scrapes
        // never add the same events twice.
        if let Some(view) = &view {
            let seen = s.metrics.watch_events.get();
            s.metrics
                .watch_events
                .inc_by(view.watch_events().saturating_sub(seen));
        }
        prometheus_client::encoding::text::encode(&mut text, &r).is_ok()
    });
    let mut headers = HeaderMap::new();
    if let Ok(v) = "application/openmetrics-text; version=1.0.0; charset=utf-8".parse() {
        headers.insert("content-type", v);
    }
    if ok {
        (StatusCode::OK, headers, text)
    } else {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            HeaderMap::new(),
            String::new(),
        )
    }
}

/// Constant-time comparison, so the secret cannot be guessed byte by byte from timings.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn webhook(
    State(s): State<Arc<Shared>>,
    provider: Option<Path<String>>,
    Query(query): Query<std::collections::HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let seen = driftwatch_engine::now_nanos();
    let Some(secret) = &s.secret else {
        return (
            StatusCode::NOT_FOUND,
            "webhooks are off: start run with --webhook-secret-env".to_owned(),
        );
    };
    let provider = provider.map(|Path(p)| p);
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let authenticated = if let Some(sig) = header("x-hub-signature-256") {
        verify_github_signature(secret, &body, &sig).is_ok()
    } else if let Some(auth) = header("authorization") {
        let token = auth.strip_prefix("Bearer ").unwrap_or(&auth);
        same(token.trim().as_bytes(), secret)
    } else if let Some(q) = query.get("secret") {
        same(q.as_bytes(), secret)
    } else {
        false
    };
    if !authenticated {
        return (
            StatusCode::UNAUTHORIZED,
            "missing or wrong secret or signature".to_owned(),
        );
    }
    match parse_webhook(provider.as_deref(), &body) {
        Ok(events) => {
            let n = events.len();
            if n > 0 {
                s.metrics.webhooks.inc();
                s.send(Trigger::Push(events, seen));
            }
            (StatusCode::ACCEPTED, format!("{{\"events\":{n}}}"))
        }
        Err(e) => (StatusCode::BAD_REQUEST, e.to_string()),
    }
}

/// Every application's sync status and health as JSON (404 without `--kubeconfig`).
async fn status(State(s): State<Arc<Shared>>) -> (StatusCode, HeaderMap, String) {
    let mut headers = HeaderMap::new();
    if let Ok(v) = "application/json".parse() {
        headers.insert("content-type", v);
    }
    let view = s.status.lock().ok().and_then(|v| v.clone());
    let Some(view) = view else {
        return (
            StatusCode::NOT_FOUND,
            headers,
            "{\"error\":\"Git → cluster is off: start run with --kubeconfig\"}".to_owned(),
        );
    };
    let apps: Vec<serde_json::Value> = view
        .snapshot()
        .into_iter()
        .map(|a| {
            serde_json::json!({
                "app": a.app, "revision": a.revision, "at": a.at, "sync": a.sync,
                "health": a.health, "detail": a.detail,
                "automated": a.automated, "selfHeal": a.self_heal,
                "outOfSync": a.out_of_sync.iter().map(|(o, f)| serde_json::json!({"object": o, "fields": f})).collect::<Vec<_>>(),
            })
        })
        .collect();
    (
        StatusCode::OK,
        headers,
        serde_json::Value::Array(apps).to_string(),
    )
}

/// A Git host's push webhook: authenticated as that host does it, handed to the Git → cluster
/// loop, which syncs the applications on that repository and branch at once.
async fn git_webhook(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let Some(secret) = &s.secret else {
        return (
            StatusCode::NOT_FOUND,
            "webhooks are off: start run with --webhook-secret-env".to_owned(),
        );
    };
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    match driftwatch_git::parse_git_push(&header, &body, secret) {
        Err(driftwatch_git::WebhookError::Auth(why)) => (StatusCode::UNAUTHORIZED, why.to_owned()),
        Err(e) => (StatusCode::BAD_REQUEST, e.to_string()),
        Ok(None) => (StatusCode::ACCEPTED, "{\"pushes\":0}".to_owned()),
        Ok(Some(push)) => {
            let sender = s.deploy.lock().ok().and_then(|d| d.clone());
            match sender {
                Some(tx) => {
                    s.metrics.git_webhooks.inc();
                    let _ = tx.send(crate::deploy::DeployTrigger::Push(push));
                    (StatusCode::ACCEPTED, "{\"pushes\":1}".to_owned())
                }
                None => (
                    StatusCode::NOT_FOUND,
                    "Git → cluster is off: start run with --kubeconfig".to_owned(),
                ),
            }
        }
    }
}

/// Serves on `addr` on its own thread and runtime; returns once the socket is bound.
pub fn start(addr: SocketAddr, shared: Arc<Shared>) -> anyhow::Result<()> {
    let listener =
        std::net::TcpListener::bind(addr).map_err(|e| anyhow::anyhow!("--listen {addr}: {e}"))?;
    listener.set_nonblocking(true)?;
    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/status", get(status))
        .route("/webhook", post(webhook))
        .route("/webhook/git", post(git_webhook))
        .route("/webhook/{provider}", post(webhook))
        .with_state(shared.clone());
    crate::cmd::spawn_service("HTTP", move || async move {
        let signals = shared.clone();
        tokio::spawn(async move {
            if let Ok(mut term) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            {
                tokio::select! {
                    _ = term.recv() => {},
                    _ = tokio::signal::ctrl_c() => {},
                }
                signals.send(Trigger::Stop);
            }
        });
        match tokio::net::TcpListener::from_std(listener) {
            Ok(l) => {
                if let Err(e) = axum::serve(l, app).await {
                    eprintln!("error: HTTP server: {e}");
                }
            }
            Err(e) => eprintln!("error: HTTP listener: {e}"),
        }
    })?;
    Ok(())
}
