//! The status page, served by `run --listen` itself: an overview of every application
//! (`GET /`), one page per application with its timeline (`GET /apps/NAME`), live updates over
//! server-sent events (`GET /events/stream`) and the actions that need the `--ui-token-env`
//! bearer token: sync now, refresh, and approve, reject or release what waits.
//!
//! Responses are gzipped when the browser accepts it. Everything is rendered on the server from the state the loops share and the history
//! database; the script and stylesheet are compiled into the binary, so the page works offline
//! and its Content-Security-Policy can forbid everything but this server.

pub mod plot;
pub mod timeline;
pub mod view;

use std::collections::HashSet;
use std::convert::Infallible;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use driftwatch_deploy::AppStatus;
use driftwatch_engine::App;
use driftwatch_engine::store::{Decision, Store, SyncRecord, Update};
use maud::Markup;

use crate::state::{DeployTrigger, Shared, Trigger};
use view::{AppView, Policy, Row};

/// The page's script: live updates, the filter box and the actions.
const APP_JS: &str = include_str!("assets/app.js");
/// The page's stylesheet: responsive, light and dark.
const STYLE_CSS: &str = include_str!("assets/style.css");

/// How many history rows the overview reads to find each application's newest update.
const OVERVIEW_HISTORY: usize = 500;
/// How many updates and syncs an application page reads.
const APP_HISTORY: usize = 50;
/// How many updates the latency plot shows.
const PLOT_POINTS: usize = 30;
/// How often a live stream looks for new events and status changes.
const POLL: Duration = Duration::from_millis(500);

/// The headers every page response carries: nothing but this server's own files may run or
/// style it, it may not be framed, and it leaks no address to other sites.
fn secure(headers: &mut HeaderMap, content_type: &'static str) {
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    // A status page is a reading of now: never from a cache.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

fn html(status: StatusCode, body: Markup) -> Response {
    let mut r = (status, body.into_string()).into_response();
    secure(r.headers_mut(), "text/html; charset=utf-8");
    r
}

fn text(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    secure(r.headers_mut(), "text/plain; charset=utf-8");
    r
}

async fn app_js() -> Response {
    let mut r = APP_JS.into_response();
    secure(r.headers_mut(), "text/javascript; charset=utf-8");
    r
}

async fn style_css() -> Response {
    let mut r = STYLE_CSS.into_response();
    secure(r.headers_mut(), "text/css; charset=utf-8");
    r
}

fn apps_of(s: &Shared) -> std::sync::Arc<Vec<App>> {
    s.apps.lock().map(|a| a.clone()).unwrap_or_default()
}

/// The status view's reading of now; `None` without Git → cluster.
fn statuses(s: &Shared) -> Option<Vec<AppStatus>> {
    let view = s.status.lock().ok().and_then(|v| v.clone())?;
    Some(view.snapshot())
}

/// What an application page (or the overview) reads from the history database.
#[derive(Default)]
struct History {
    updates: Vec<Update>,
    syncs: Vec<SyncRecord>,
    decisions: Vec<Decision>,
}

/// Reads the history database off the runtime's threads. Without a database yet (nothing
/// written, or `--dry-run`), the history is empty: the page never creates one.
async fn history(s: &Shared, app: Option<String>, limit: usize) -> History {
    let Some(dir) = s.page.get().map(|p| p.state_dir.clone()) else {
        return History::default();
    };
    let read = tokio::task::spawn_blocking(move || {
        if !dir.join("driftwatch.db").exists() {
            return Ok(History::default());
        }
        let store = Store::open(&dir)?;
        Ok::<_, driftwatch_engine::Error>(History {
            updates: store.history(app.as_deref(), limit)?,
            syncs: store.syncs(app.as_deref(), limit)?,
            decisions: store.decisions(app.as_deref(), limit)?,
        })
    })
    .await;
    match read {
        Ok(Ok(h)) => h,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "status page: reading the history failed");
            History::default()
        }
        Err(e) => {
            tracing::warn!(error = %e, "status page: reading the history stopped");
            History::default()
        }
    }
}

/// The overview's rows: every configured application, with what Git → cluster knows of it
/// (`status`, when there is a cluster) and its newest update (`history`, newest first).
pub fn build_rows(apps: &[App], status: Option<&[AppStatus]>, history: &[Update]) -> Vec<Row> {
    let mut names: Vec<&str> = apps.iter().map(|a| a.name.as_str()).collect();
    // An application the deployer knows but the list does not yet (a reload in flight).
    for st in status.unwrap_or_default() {
        if !names.contains(&st.app.as_str()) {
            names.push(&st.app);
        }
    }
    names
        .into_iter()
        .map(|name| {
            let app = apps.iter().find(|a| a.name == name);
            let st = status.and_then(|all| all.iter().find(|s| s.app == name));
            let policy = app.and_then(|a| a.sync.as_ref());
            let mut row = Row {
                app: name.to_owned(),
                automated: policy.is_some_and(|p| p.automated),
                self_heal: policy.is_some_and(|p| p.automated && p.self_heal),
                images: app.map_or(0, |a| a.images.len()),
                last_update: history
                    .iter()
                    .find(|u| u.app == name)
                    .map(|u| (format!("{}:{}", u.image, u.new), u.committed_at.clone())),
                ..Row::default()
            };
            if let Some(st) = st {
                row.sync = st.sync.to_string();
                row.health = st
                    .health
                    .map_or_else(|| "Unknown".to_owned(), |h| h.to_string());
                row.detail = st.detail.clone();
                row.revision = st.revision.clone();
                row.at = st.at.clone();
                row.drifted = Some(st.out_of_sync.len());
                row.automated = st.automated;
                row.self_heal = st.self_heal;
            }
            row
        })
        .collect()
}

async fn overview_rows(s: &Shared) -> (Vec<Row>, bool) {
    let history = history(s, None, OVERVIEW_HISTORY).await.updates;
    let status = statuses(s);
    let mut rows = build_rows(&apps_of(s), status.as_deref(), &history);
    with_waits(s, &mut rows);
    (rows, status.is_some())
}

/// Each row's waits (promotions, holds, approvals, windows, release ages), as the last cycle
/// decided them.
fn with_waits(s: &Shared, rows: &mut [Row]) {
    for r in rows {
        r.promotion = s
            .promotions_of(&r.app)
            .into_iter()
            .map(|w| format!("{}: {}", w.image, w.reason))
            .collect();
        r.waits = s.waits_of(&r.app);
    }
}

type Params = Query<std::collections::HashMap<String, String>>;

async fn overview(State(s): State<Arc<Shared>>, Query(q): Params) -> Response {
    let q = q.get("q").cloned().unwrap_or_default();
    let (rows, cluster) = overview_rows(&s).await;
    let follows = match s.role() {
        crate::leader::Role::Leader | crate::leader::Role::Shards { .. } => None,
        crate::leader::Role::Follower { leader } => {
            Some(leader.unwrap_or_else(|| "none yet".to_owned()))
        }
    };
    html(
        StatusCode::OK,
        view::overview(&rows, q.trim(), cluster, follows.as_deref()),
    )
}

async fn rows_fragment(State(s): State<Arc<Shared>>, Query(q): Params) -> Response {
    let q = q
        .get("q")
        .map(|q| q.trim().to_lowercase())
        .unwrap_or_default();
    let (mut rows, _) = overview_rows(&s).await;
    rows.retain(|r| q.is_empty() || r.app.to_lowercase().contains(&q));
    html(StatusCode::OK, view::rows(&rows))
}

/// Everything the application page shows; `None` for an application the service does not know.
async fn app_view(s: &Shared, name: &str) -> Option<AppView> {
    let apps = apps_of(s);
    let status = statuses(s);
    let known =
        apps.iter().any(|a| a.name == name) || status.iter().flatten().any(|st| st.app == name);
    if !known {
        return None;
    }
    let History {
        updates: history,
        syncs,
        decisions,
    } = history(s, Some(name.to_owned()), APP_HISTORY).await;
    let mut rows = build_rows(&apps, status.as_deref(), &history);
    rows.retain(|r| r.app == name);
    with_waits(s, &mut rows);
    let app = apps.iter().find(|a| a.name == name);
    Some(AppView {
        row: rows.pop().unwrap_or_default(),
        images: app
            .map(|a| a.images.iter().map(|i| i.written.clone()).collect())
            .unwrap_or_default(),
        policy: app.and_then(|a| a.sync.as_ref()).map(|p| Policy {
            namespace: p.namespace.clone(),
            automated: p.automated,
            self_heal: p.automated && p.self_heal,
            prune: p.prune,
        }),
        out_of_sync: status
            .iter()
            .flatten()
            .find(|st| st.app == name)
            .map(|st| st.out_of_sync.clone())
            .unwrap_or_default(),
        timeline: timeline::build(name, &history, &syncs, &decisions, &s.events.since(0)),
        latencies: plot::latencies(&history, PLOT_POINTS),
        actions: s.page.get().is_some_and(|p| p.ui_token.is_some()),
    })
}

fn unknown(name: &str) -> Response {
    html(
        StatusCode::NOT_FOUND,
        view::not_found(&format!("No application is called {name}.")),
    )
}

async fn app_page(State(s): State<Arc<Shared>>, Path(name): Path<String>) -> Response {
    match app_view(&s, &name).await {
        Some(v) => html(StatusCode::OK, view::app_page(&v)),
        None => unknown(&name),
    }
}

async fn app_fragment(State(s): State<Arc<Shared>>, Path(name): Path<String>) -> Response {
    match app_view(&s, &name).await {
        Some(v) => html(StatusCode::OK, view::app_live(&v)),
        None => unknown(&name),
    }
}

/// A cheap summary of the status view, so a stream can say "status changed" only when it did.
fn fingerprint(s: &Shared) -> u64 {
    let mut h = DefaultHasher::new();
    for st in statuses(s).unwrap_or_default() {
        st.app.hash(&mut h);
        st.revision.hash(&mut h);
        st.at.hash(&mut h);
        st.sync.to_string().hash(&mut h);
        st.health.map(|h| h.to_string()).hash(&mut h);
        st.detail.hash(&mut h);
        st.out_of_sync.hash(&mut h);
        for w in s.promotions_of(&st.app) {
            w.reason.hash(&mut h);
        }
    }
    // Waits change without a cluster too (an approval is asked, a hold appears).
    if let Ok(w) = s.waits.lock() {
        w.hash(&mut h);
    }
    h.finish()
}

/// What one live stream has sent so far.
struct Cursor {
    shared: Arc<Shared>,
    seq: u64,
    status: u64,
    queue: std::collections::VecDeque<Event>,
}

/// Server-sent events: each service event as it is logged (`event: service`, its JSON as
/// data) and `event: status` when the status view changed. New events are looked for every
/// 500 ms; the stream ends when the service stops, so a graceful stop does not wait for open
/// pages.
async fn stream(State(s): State<Arc<Shared>>) -> Response {
    let Some(shutdown) = s.page.get().map(|p| p.shutdown.clone()) else {
        return text(StatusCode::SERVICE_UNAVAILABLE, "not started".to_owned());
    };
    let start = Cursor {
        seq: s.events.last_seq(),
        status: fingerprint(&s),
        shared: s,
        queue: std::collections::VecDeque::new(),
    };
    let events = futures_util::stream::unfold(start, move |mut c| {
        let shutdown = shutdown.clone();
        async move {
            loop {
                if let Some(e) = c.queue.pop_front() {
                    return Some((Ok::<_, Infallible>(e), c));
                }
                tokio::select! {
                    () = shutdown.cancelled() => return None,
                    () = tokio::time::sleep(POLL) => {}
                }
                for e in c.shared.events.since(c.seq) {
                    c.seq = e.seq;
                    let data = serde_json::to_string(&e).unwrap_or_default();
                    c.queue.push_back(
                        Event::default()
                            .event("service")
                            .id(e.seq.to_string())
                            .data(data),
                    );
                }
                let now = fingerprint(&c.shared);
                if now != c.status {
                    c.status = now;
                    c.queue
                        .push_back(Event::default().event("status").data("changed"));
                }
            }
        }
    });
    let mut r = Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response();
    r.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// Checks an action's bearer token: `Some` is the refusal to send instead of acting.
fn refusal(s: &Shared, headers: &HeaderMap) -> Option<Response> {
    let Some(token) = s.page.get().and_then(|p| p.ui_token.as_deref()) else {
        return Some(text(
            StatusCode::NOT_FOUND,
            "actions are off: start run with --ui-token-env VAR".to_owned(),
        ));
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match given {
        Some(g) if driftwatch_policy::secret::secret_matches(g.as_bytes(), token) => None,
        _ => {
            let mut r = text(
                StatusCode::UNAUTHORIZED,
                "missing or wrong token: send Authorization: Bearer TOKEN".to_owned(),
            );
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            Some(r)
        }
    }
}

/// `POST /apps/NAME/sync`: the Git → cluster loop syncs the application now.
async fn sync_now(
    State(s): State<Arc<Shared>>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = refusal(&s, &headers) {
        return r;
    }
    let apps = apps_of(&s);
    let Some(app) = apps.iter().find(|a| a.name == name) else {
        return text(
            StatusCode::NOT_FOUND,
            format!("no application is called {name}"),
        );
    };
    if app.sync.is_none() {
        return text(
            StatusCode::CONFLICT,
            format!("{name} has no sync policy: driftwatch leaves its cluster alone"),
        );
    }
    let sender = s.deploy.lock().ok().and_then(|d| d.clone());
    match sender {
        Some(tx)
            if tx
                .send(DeployTrigger::Apps(HashSet::from([name.clone()]), None))
                .is_ok() =>
        {
            tracing::info!(app = %name, "sync asked from the status page");
            text(StatusCode::ACCEPTED, format!("sync of {name} asked"))
        }
        _ => text(
            StatusCode::NOT_FOUND,
            "Git → cluster is off: start run with --kubeconfig".to_owned(),
        ),
    }
}

/// `POST /apps/NAME/approve[?image=IMAGE]`: approves the versions that wait for the
/// application (or that image), as `driftwatch approve` does, and checks it again at once.
async fn approve(
    State(s): State<Arc<Shared>>,
    Path(name): Path<String>,
    Query(q): Params,
    headers: HeaderMap,
) -> Response {
    decide(
        &s,
        &name,
        q.get("image").map(String::as_str),
        &headers,
        true,
    )
}

/// `POST /apps/NAME/reject[?image=IMAGE]`: rejects them, as `driftwatch reject` does.
async fn reject(
    State(s): State<Arc<Shared>>,
    Path(name): Path<String>,
    Query(q): Params,
    headers: HeaderMap,
) -> Response {
    decide(
        &s,
        &name,
        q.get("image").map(String::as_str),
        &headers,
        false,
    )
}

/// Who acts: the `X-Driftwatch-User` header (at most 64 characters), else "status page".
fn who(headers: &HeaderMap) -> String {
    headers
        .get("x-driftwatch-user")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map_or_else(
            || "status page".to_owned(),
            |v| v.chars().take(64).collect(),
        )
}

/// `POST /apps/NAME/release?image=IMAGE`: lifts the hold a rollback put on that image, as
/// `driftwatch release APP IMAGE` does (who: as for approvals), and checks the application
/// again at once, so the policy's choice is written by the next cycle.
async fn release(
    State(s): State<Arc<Shared>>,
    Path(name): Path<String>,
    Query(q): Params,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = refusal(&s, &headers) {
        return r;
    }
    let Some(image) = q.get("image").filter(|i| !i.is_empty()) else {
        return text(
            StatusCode::BAD_REQUEST,
            "release needs ?image=IMAGE: the image whose hold to lift".to_owned(),
        );
    };
    if !apps_of(&s).iter().any(|a| a.name == name) {
        return text(
            StatusCode::NOT_FOUND,
            format!("no application is called {name}"),
        );
    }
    let Some(state_dir) = s.page.get().map(|p| p.state_dir.clone()) else {
        return text(StatusCode::NOT_FOUND, "no state".to_owned());
    };
    let by = who(&headers);
    let result = (|| -> Result<Option<String>, driftwatch_engine::Error> {
        let mut store = Store::open(&state_dir)?;
        let Some(from) = store.last_written(&name, image)? else {
            return Ok(None);
        };
        let at = driftwatch_policy::Timestamp::from_unix_nanos(driftwatch_engine::now_nanos())
            .to_string();
        store.release(&name, image, &from, &by, &at)?;
        Ok(Some(from))
    })();
    match result {
        Ok(None) => text(
            StatusCode::CONFLICT,
            format!("{name} {image}: driftwatch never wrote this image, so nothing holds it"),
        ),
        Ok(Some(from)) => {
            tracing::info!(app = %name, image = %image, by = %by, from = %from, "hold released from the status page");
            s.send(Trigger::Refresh(
                HashSet::from([name.clone()]),
                driftwatch_engine::now_nanos(),
            ));
            text(
                StatusCode::ACCEPTED,
                format!("{name} {image}: the hold from {from} is lifted by {by}"),
            )
        }
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// Records the decision on what waits for `name` (who: the `X-Driftwatch-User` header, else
/// "status page"), then asks for a check of the application so an approval is written now.
fn decide(
    s: &Shared,
    name: &str,
    image: Option<&str>,
    headers: &HeaderMap,
    approved: bool,
) -> Response {
    if let Some(r) = refusal(s, headers) {
        return r;
    }
    let Some(state_dir) = s.page.get().map(|p| p.state_dir.clone()) else {
        return text(StatusCode::NOT_FOUND, "no state".to_owned());
    };
    let by = who(headers);
    let result = (|| -> Result<Vec<String>, driftwatch_engine::Error> {
        let mut store = driftwatch_engine::store::Store::open(&state_dir)?;
        let at = driftwatch_policy::Timestamp::from_unix_nanos(driftwatch_engine::now_nanos())
            .to_string();
        let mut decided = Vec::new();
        for (app, img, value, _) in store.pending(Some(name))? {
            if image.is_some_and(|i| i != img) {
                continue;
            }
            store.decide(&app, &img, &value, approved, &by, &at)?;
            decided.push(format!("{img} {value}"));
        }
        Ok(decided)
    })();
    match result {
        Ok(decided) if decided.is_empty() => text(
            StatusCode::CONFLICT,
            format!("{name}: no update waits for approval"),
        ),
        Ok(decided) => {
            let verb = if approved { "approved" } else { "rejected" };
            tracing::info!(app = %name, by = %by, versions = ?decided, "{verb} from the status page");
            s.send(Trigger::Refresh(
                HashSet::from([name.to_owned()]),
                driftwatch_engine::now_nanos(),
            ));
            text(
                StatusCode::ACCEPTED,
                format!("{name}: {} {verb} by {by}", decided.join(", ")),
            )
        }
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// `POST /apps/NAME/refresh`: the updater checks the application's images now.
async fn refresh(
    State(s): State<Arc<Shared>>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = refusal(&s, &headers) {
        return r;
    }
    if !apps_of(&s).iter().any(|a| a.name == name) {
        return text(
            StatusCode::NOT_FOUND,
            format!("no application is called {name}"),
        );
    }
    s.send(Trigger::Refresh(
        HashSet::from([name.clone()]),
        driftwatch_engine::now_nanos(),
    ));
    tracing::info!(app = %name, "refresh asked from the status page");
    text(StatusCode::ACCEPTED, format!("refresh of {name} asked"))
}

/// The page's routes, over `shared`, to merge into the service's router.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/", get(overview))
        .route("/ui/rows", get(rows_fragment))
        .route("/apps/{name}", get(app_page))
        .route("/apps/{name}/live", get(app_fragment))
        .route("/apps/{name}/sync", post(sync_now))
        .route("/apps/{name}/refresh", post(refresh))
        .route("/apps/{name}/approve", post(approve))
        .route("/apps/{name}/reject", post(reject))
        .route("/apps/{name}/release", post(release))
        .route("/events/stream", get(stream))
        .route("/assets/app.js", get(app_js))
        .route("/assets/style.css", get(style_css))
        .with_state(shared)
        // gzip when the browser accepts it: the overview's rows are the same markup a thousand
        // times over. The default predicate leaves the event stream (and tiny bodies) alone.
        .layer(tower_http::compression::CompressionLayer::new())
}
