//! The HTTP side of the service: registry and Git webhooks (authenticated), `/metrics`,
//! `/status`, `/healthz` and `/readyz`, and the status page's routes ([`crate::page`]).
//! Handlers only parse and hand work to the loops.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware;
use axum::routing::{get, post};
use driftwatch_policy::secret::secret_matches;
use driftwatch_registry::{parse_webhook, verify_github_signature};

use crate::leader::Role;
use crate::limit::{RateLimiter, WEBHOOK_BODY_LIMIT, WEBHOOK_BURST, WEBHOOK_RATE, guard};
use crate::metrics::AppLabel;
use crate::shutdown::Shutdown;
use crate::state::{DeployTrigger, Shared, Trigger};

async fn healthz() -> &'static str {
    "ok"
}

/// Ready: a leader once its first cycle finished; a follower always (it serves `/metrics`,
/// `/status` and the page, so it stays behind the Service and a drain can evict it). Webhooks
/// that reach a follower are refused with 503, so their senders try again.
async fn readyz(State(s): State<Arc<Shared>>) -> (StatusCode, String) {
    match s.role() {
        Role::Follower { leader } => (
            StatusCode::OK,
            format!(
                "ready: follower of {}",
                leader.as_deref().unwrap_or("nobody yet")
            ),
        ),
        Role::Leader | Role::Shards { .. } if s.ready.load(Ordering::Relaxed) => {
            (StatusCode::OK, "ready".to_owned())
        }
        Role::Leader | Role::Shards { .. } => (
            StatusCode::SERVICE_UNAVAILABLE,
            "first cycle not finished".to_owned(),
        ),
    }
}

/// A webhook that reached a follower: 503 (its sender retries, and may reach the leader),
/// `None` on the leader.
fn refused_by_follower(s: &Shared) -> Option<(StatusCode, String)> {
    match s.role() {
        Role::Leader | Role::Shards { .. } => None,
        Role::Follower { leader } => Some((
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "this replica follows (leader: {}); only the leader acts on webhooks",
                leader.as_deref().unwrap_or("none yet")
            ),
        )),
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
        secret_matches(token.trim().as_bytes(), secret)
    } else if let Some(q) = query.get("secret") {
        secret_matches(q.as_bytes(), secret)
    } else {
        false
    };
    if !authenticated {
        return (
            StatusCode::UNAUTHORIZED,
            "missing or wrong secret or signature".to_owned(),
        );
    }
    if let Some(refused) = refused_by_follower(&s) {
        return refused;
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
    let role = s.role();
    if let Ok(v) = (if role.is_leader() {
        "leader"
    } else {
        "follower"
    })
    .parse()
    {
        headers.insert("x-driftwatch-role", v);
    }
    if let Role::Shards { held, of } = &role {
        let held: Vec<String> = held.iter().map(u32::to_string).collect();
        if let Ok(v) = format!("{} of {of}", held.join(",")).parse() {
            headers.insert("x-driftwatch-shards", v);
        }
    }
    let view = s.status.lock().ok().and_then(|v| v.clone());
    if let Role::Follower { leader } = &role
        && view.is_none()
    {
        // A follower compares nothing: it lists the applications and names the leader.
        let detail = format!(
            "this replica follows; the leader ({}) syncs and reports",
            leader.as_deref().unwrap_or("none yet")
        );
        let apps: Vec<serde_json::Value> = s
            .apps
            .lock()
            .map(|a| a.clone())
            .unwrap_or_default()
            .iter()
            .map(|a| {
                serde_json::json!({
                    "app": a.name, "sync": "Unknown", "health": "Unknown", "detail": detail,
                })
            })
            .collect();
        return (
            StatusCode::OK,
            headers,
            serde_json::Value::Array(apps).to_string(),
        );
    }
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
                "app": a.app, "revision": a.revision, "at": a.at, "sync": a.sync.to_string(),
                "health": a.health.map_or_else(|| "Unknown".to_owned(), |h| h.to_string()),
                "detail": a.detail,
                "automated": a.automated, "selfHeal": a.self_heal,
                "outOfSync": a.out_of_sync.iter().map(|(o, f)| serde_json::json!({"object": o, "fields": f})).collect::<Vec<_>>(),
                "promotion": s.promotions_of(&a.app),
                "waits": s.waits_of(&a.app),
            })
        })
        .collect();
    (
        StatusCode::OK,
        headers,
        serde_json::Value::Array(apps).to_string(),
    )
}

/// The events after `?since=N` (all that are kept without it), oldest first, as JSON.
async fn events(
    State(s): State<Arc<Shared>>,
    Query(query): Query<std::collections::HashMap<String, String>>,
) -> (StatusCode, HeaderMap, String) {
    let mut headers = HeaderMap::new();
    if let Ok(v) = "application/json".parse() {
        headers.insert("content-type", v);
    }
    let since = match query.get("since").map(|s| s.parse::<u64>()) {
        None => 0,
        Some(Ok(n)) => n,
        Some(Err(_)) => {
            return (
                StatusCode::BAD_REQUEST,
                headers,
                "{\"error\":\"since must be a number\"}".to_owned(),
            );
        }
    };
    let body = serde_json::to_string(&s.events.since(since)).unwrap_or_else(|_| "[]".to_owned());
    (StatusCode::OK, headers, body)
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
            if let Some(refused) = refused_by_follower(&s) {
                return refused;
            }
            let sender = s.deploy.lock().ok().and_then(|d| d.clone());
            match sender {
                Some(tx) => {
                    s.metrics.git_webhooks.inc();
                    let _ = tx.send(DeployTrigger::Push(push));
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

/// The routes, over `shared`.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/status", get(status))
        .route("/events", get(events))
        .merge(webhook_routes())
        .with_state(shared.clone())
        .merge(crate::page::router(shared))
}

/// The webhook routes, which anyone who can reach the listener may call: bodies above
/// [`WEBHOOK_BODY_LIMIT`] get 413 and each source address is rate limited (429), both before
/// the secret is checked, so neither flooding nor guessing the secret is cheap.
fn webhook_routes() -> Router<Arc<Shared>> {
    let limiter = Arc::new(RateLimiter::new(WEBHOOK_RATE, WEBHOOK_BURST));
    Router::new()
        .route("/webhook", post(webhook))
        .route("/webhook/git", post(git_webhook))
        .route("/webhook/{provider}", post(webhook))
        .layer(DefaultBodyLimit::max(WEBHOOK_BODY_LIMIT))
        .layer(middleware::from_fn_with_state(limiter, guard))
}

/// Serves `router` on `listener` until `shutdown`, then lets requests in flight finish. Each
/// request carries its peer address (`ConnectInfo`), which the webhooks' rate limit keys on.
pub async fn serve(listener: tokio::net::TcpListener, router: Router, shutdown: Shutdown) {
    let service = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
    if let Err(e) = axum::serve(listener, service)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
    {
        tracing::error!(error = %e, "HTTP server");
    }
}
