//! The metrics driftwatch exports on `/metrics` (Prometheus text, OpenMetrics).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::Mutex;

/// Labels of per-application metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AppLabel {
    /// The application.
    pub app: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// Registry host.
    pub registry: String,
    /// Which endpoint (tags, manifest, blob, token…).
    pub endpoint: String,
    /// HTTP status, or the transport error's class.
    pub status: String,
}

/// Labels of notification outcomes.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NotifyLabels {
    /// The endpoint's name in `notifications:`.
    pub notifier: String,
    /// `sent`, `failed` (after its retries, or refused) or `dropped` (queue full).
    pub result: String,
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
    pub notifications: Family<NotifyLabels, Counter>,
    /// 1 while this process leads (acts), 0 while it follows (`--leader-elect`).
    pub leader: Gauge,
}

impl Metrics {
    /// Every metric at zero, registered under the `driftwatch` prefix.
    pub fn new() -> Self {
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
            notifications: Family::default(),
            leader: Gauge::default(),
        };
        // A service without leader election always leads.
        m.leader.set(1);
        registry.register(
            "leader",
            "1 while this process leads (writes Git, applies, heals), 0 while it follows",
            m.leader.clone(),
        );
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
        registry.register(
            "notifications",
            "Notifications by endpoint and result (sent, failed, dropped)",
            m.notifications.clone(),
        );
        if let Ok(mut r) = m.registry.lock() {
            *r = registry;
        }
        m
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
