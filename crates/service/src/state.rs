//! The state the service's loops and the HTTP side share, and the triggers they send each
//! other: the one place both sides import, so neither imports the other.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, OnceLock};

use driftwatch_engine::App;
use driftwatch_registry::PushEvent;
use tokio::sync::mpsc;

use crate::events::EventLog;
use crate::metrics::Metrics;

/// How many events `/events` keeps.
const EVENTS_KEPT: usize = 1000;

/// What the HTTP side asks of the updater loop.
#[derive(Debug)]
pub enum Trigger {
    /// Re-check the images these pushes concern; `seen` is when the webhook arrived (Unix
    /// nanoseconds).
    Push(Vec<PushEvent>, i128),
    /// Check these applications' images against their registries now (the status page's
    /// refresh action); `seen` is when it was asked (Unix nanoseconds).
    Refresh(HashSet<String>, i128),
}

/// What the Git → cluster loop is asked to do.
#[derive(Debug)]
pub enum DeployTrigger {
    /// These applications' repositories may have moved (the updater committed; `seen` is when
    /// the registry push that caused it was seen, Unix nanoseconds).
    Apps(HashSet<String>, Option<i128>),
    /// A Git host says a branch moved.
    Push(driftwatch_git::GitPush),
    /// The applications changed (read again from the cluster).
    Reload(Vec<App>),
}

/// State shared by the handlers and the loop.
pub struct Shared {
    /// What `/metrics` serves.
    pub metrics: Metrics,
    /// Set once the first cycle finished (`/readyz`).
    pub ready: AtomicBool,
    tx: mpsc::UnboundedSender<Trigger>,
    /// The webhook secret; webhooks are refused without one.
    pub(crate) secret: Option<Vec<u8>>,
    /// The Git → cluster loop, when the service has a cluster.
    pub deploy: Mutex<Option<mpsc::UnboundedSender<DeployTrigger>>>,
    /// Every application's sync status and health, when the service has a cluster.
    pub status: Mutex<Option<driftwatch_deploy::StatusView>>,
    /// What the service did, newest last (`/events`).
    pub events: EventLog,
    /// The applications the loop works on, as last loaded (the status page lists them even
    /// without a cluster).
    pub apps: Mutex<Arc<Vec<App>>>,
    /// What only the status page needs: set once when the service starts.
    pub page: OnceLock<PageContext>,
    /// Whether this process leads (acts) or follows (serves read-only). Always the leader
    /// without `--leader-elect`.
    pub role: Mutex<crate::leader::Role>,
    /// Per application, its promoted images that wait for or are blocked by their upstream,
    /// as the last cycle that checked them decided (`/status` and the page show them).
    pub promotions: Mutex<std::collections::BTreeMap<String, Vec<PromotionWait>>>,
    /// Per application, its other waits: rollback holds, pending approvals and rejections,
    /// closed update windows and too young releases, as the last cycle that checked them
    /// decided (`/status` and the page show them).
    pub waits: Mutex<std::collections::BTreeMap<String, Vec<ImageWait>>>,
}

/// An image whose update waits for something other than a promotion's upstream: the
/// report's `held` sentence (what `check` prints) and what a person can do about it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub struct ImageWait {
    /// The image, as configured.
    pub image: String,
    /// `held`, `pending` (an approval or an update window) or `waiting` (a release younger
    /// than `minimumReleaseAge`; the image stays at, or moves to, an older one).
    pub status: String,
    /// Why, as `check` prints it.
    pub reason: String,
    /// `approve` (the page offers Approve and Reject), `release` (it offers Release), or
    /// absent when only time ends the wait.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<&'static str>,
}

/// A promoted image that waits for its upstream application, or is blocked by it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PromotionWait {
    /// The image, as configured.
    pub image: String,
    /// `waiting` or `blocked`.
    pub status: String,
    /// Why: `waiting: shop-staging healthy 4m of 10m`, `blocked: shop-staging Degraded (…)`.
    pub reason: String,
}

impl Shared {
    /// Keeps every wait a cycle's report shows (promotions and the others), for the
    /// applications it covered.
    pub fn note_waits(&self, report: &driftwatch_engine::CycleReport) {
        self.note_promotions(report);
        use driftwatch_engine::{Lift, Status};
        let Ok(mut all) = self.waits.lock() else {
            return;
        };
        for l in &report.images {
            all.remove(&l.app);
        }
        for l in &report.images {
            let Some(reason) = &l.held else { continue };
            let status = match l.status {
                Status::Held => "held",
                Status::Pending => "pending",
                // A release-age note on an image that otherwise stands or moves.
                Status::InSync | Status::UpdateAvailable | Status::Updated => "waiting",
                Status::Waiting | Status::Blocked | Status::NoCandidate | Status::Error => {
                    continue;
                }
            };
            all.entry(l.app.clone()).or_default().push(ImageWait {
                image: l.image.clone(),
                status: status.to_owned(),
                reason: reason.clone(),
                action: l.lift.map(|a| match a {
                    Lift::Approve => "approve",
                    Lift::Release => "release",
                }),
            });
        }
    }

    /// The waits of application `app` other than promotions (none when nothing waits).
    pub fn waits_of(&self, app: &str) -> Vec<ImageWait> {
        self.waits
            .lock()
            .ok()
            .and_then(|w| w.get(app).cloned())
            .unwrap_or_default()
    }

    /// Keeps the promotion waits a cycle's report shows, for the applications it covered.
    fn note_promotions(&self, report: &driftwatch_engine::CycleReport) {
        use driftwatch_engine::Status;
        let Ok(mut all) = self.promotions.lock() else {
            return;
        };
        for l in &report.images {
            all.remove(&l.app);
        }
        for l in &report.images {
            let status = match l.status {
                Status::Waiting => "waiting",
                Status::Blocked => "blocked",
                _ => continue,
            };
            all.entry(l.app.clone()).or_default().push(PromotionWait {
                image: l.image.clone(),
                status: status.to_owned(),
                reason: l.held.clone().unwrap_or_default(),
            });
        }
    }

    /// The promotion waits of application `app` (none when nothing waits).
    pub fn promotions_of(&self, app: &str) -> Vec<PromotionWait> {
        self.promotions
            .lock()
            .ok()
            .and_then(|p| p.get(app).cloned())
            .unwrap_or_default()
    }
}

/// What the status page needs besides the loops' state.
pub struct PageContext {
    /// The state directory, whose database holds the history of updates and syncs.
    pub state_dir: PathBuf,
    /// The bearer token the page's actions need; actions are off without one.
    pub ui_token: Option<Vec<u8>>,
    /// Ends the live-update streams, so a graceful stop does not wait on open pages.
    pub shutdown: crate::Shutdown,
}

impl Shared {
    /// State for a loop listening on `tx`; `secret` authenticates webhooks.
    pub fn new(tx: mpsc::UnboundedSender<Trigger>, secret: Option<String>) -> Arc<Self> {
        Arc::new(Shared {
            metrics: Metrics::new(),
            ready: AtomicBool::new(false),
            tx,
            secret: secret.map(String::into_bytes),
            deploy: Mutex::new(None),
            status: Mutex::new(None),
            events: EventLog::new(EVENTS_KEPT),
            apps: Mutex::new(Arc::default()),
            page: OnceLock::new(),
            role: Mutex::new(crate::leader::Role::Leader),
            promotions: Mutex::new(std::collections::BTreeMap::new()),
            waits: Mutex::new(std::collections::BTreeMap::new()),
        })
    }

    /// Whether this process leads or follows now.
    pub fn role(&self) -> crate::leader::Role {
        self.role
            .lock()
            .map_or(crate::leader::Role::Leader, |r| r.clone())
    }

    /// Records a change of role, in the state and the `driftwatch_leader` gauge.
    pub fn set_role(&self, role: crate::leader::Role) {
        self.metrics.leader.set(i64::from(role.is_leader()));
        if let Ok(mut r) = self.role.lock() {
            *r = role;
        }
    }

    /// Sends a trigger to the loop.
    pub fn send(&self, t: Trigger) {
        // The loop may be stopping; a trigger then has nobody left to act on it.
        let _ = self.tx.send(t);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use driftwatch_engine::{CycleReport, ImageReport, Kind, Lift, Status};

    fn line(app: &str, image: &str, status: Status, held: Option<&str>) -> ImageReport {
        ImageReport {
            app: app.into(),
            kind: Kind::Image,
            image: image.into(),
            registry: None,
            git: None,
            file: "k.yaml".into(),
            status,
            error: None,
            commit: None,
            line: None,
            held: held.map(str::to_owned),
            lift: None,
        }
    }

    #[test]
    fn a_cycle_notes_each_wait_once_where_it_belongs() {
        let (tx, _rx) = mpsc::unbounded_channel();
        let s = Shared::new(tx, None);
        let mut approve = line(
            "shop",
            "r/api",
            Status::Pending,
            Some("pending approval of v2"),
        );
        approve.lift = Some(Lift::Approve);
        let mut hold = line("shop", "r/web", Status::Held, Some("held: set back"));
        hold.lift = Some(Lift::Release);
        let report = CycleReport {
            images: vec![
                approve,
                hold,
                line(
                    "shop",
                    "r/db",
                    Status::Pending,
                    Some("outside the update windows"),
                ),
                line(
                    "shop",
                    "r/young",
                    Status::InSync,
                    Some("waiting: v3 is 1h0m old"),
                ),
                line("shop", "r/promo", Status::Waiting, Some("waiting: staging")),
                line("shop", "r/quiet", Status::InSync, None),
                line("other", "r/x", Status::Error, Some("not a wait")),
            ],
            ..CycleReport::default()
        };
        s.note_waits(&report);
        let got: Vec<(String, String, Option<&str>)> = s
            .waits_of("shop")
            .into_iter()
            .map(|w| (w.image, w.status, w.action))
            .collect();
        let want = [
            ("r/api", "pending", Some("approve")),
            ("r/web", "held", Some("release")),
            ("r/db", "pending", None),
            ("r/young", "waiting", None),
        ]
        .map(|(i, st, a)| (i.to_owned(), st.to_owned(), a));
        assert_eq!(got, want);
        // The promotion is listed with the promotions, not twice.
        assert_eq!(s.promotions_of("shop").len(), 1);
        assert!(s.waits_of("other").is_empty());
        // A later cycle of the application replaces what it noted.
        s.note_waits(&CycleReport {
            images: vec![line("shop", "r/api", Status::InSync, None)],
            ..CycleReport::default()
        });
        assert!(s.waits_of("shop").is_empty());
        assert!(s.promotions_of("shop").is_empty());
    }
}
