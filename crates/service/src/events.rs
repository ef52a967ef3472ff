//! What the service did, as typed events: each is logged and kept in a bounded, numbered log
//! that `GET /events?since=N` serves — for tests, scripts and the status page's timeline, so
//! none of them has to read log wording.

use std::collections::VecDeque;
use std::sync::Mutex;

use serde::Serialize;

/// One thing the service did or saw.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ServiceEvent {
    /// A registry webhook named images of these applications.
    RegistryPush {
        /// Push events in the webhook.
        events: usize,
        /// Applications that track them.
        applications: usize,
    },
    /// An updater cycle ended.
    Cycle {
        /// Its number since start.
        cycle: u64,
        /// Images updated in Git.
        updates: usize,
        /// Images that could not be checked or written.
        errors: usize,
        /// Commits pushed.
        commits: Vec<String>,
    },
    /// Image updates were committed and pushed.
    Committed {
        /// Repository (credentials redacted).
        repo: String,
        /// Branch pushed to.
        branch: String,
        /// Commit id.
        commit: String,
        /// The applications it updates.
        apps: Vec<String>,
        /// What changed.
        changes: Vec<ImageChange>,
    },
    /// A Git host said a branch moved.
    GitPush {
        /// The branch.
        branch: String,
        /// Applications on it.
        applications: usize,
    },
    /// A revision was applied to the cluster.
    Synced {
        /// Application.
        app: String,
        /// Revision (12 characters).
        revision: String,
        /// Objects applied.
        applied: Vec<String>,
        /// Objects pruned.
        pruned: Vec<String>,
        /// Objects no longer in Git, left because prune is off.
        orphaned: Vec<String>,
        /// Objects already as Git says.
        unchanged: usize,
    },
    /// A detect-only application differs from Git.
    OutOfSync {
        /// Application.
        app: String,
        /// Revision compared.
        revision: String,
        /// The objects that differ.
        objects: Vec<String>,
    },
    /// Rendering or syncing failed; the cluster was left as it was.
    SyncFailed {
        /// Application.
        app: String,
        /// Why.
        error: String,
    },
    /// A rollout settled (or following it stopped).
    Rollout {
        /// Application.
        app: String,
        /// Revision.
        revision: String,
        /// Its health.
        health: String,
        /// Why, for the worst object.
        detail: String,
    },
    /// A manual change was put back.
    Healed {
        /// Application.
        app: String,
        /// The object.
        object: String,
        /// The fields that had changed.
        fields: Vec<String>,
        /// Who had changed them (field managers).
        managers: Vec<String>,
        /// From the event to the heal applied, in milliseconds.
        after_ms: u64,
    },
    /// A deleted object was created again.
    Recreated {
        /// Application.
        app: String,
        /// The object.
        object: String,
    },
    /// A manual change was seen and left (self-heal off).
    Drifted {
        /// Application.
        app: String,
        /// The object.
        object: String,
        /// The fields that changed.
        fields: Vec<String>,
        /// Who changed them.
        managers: Vec<String>,
    },
    /// Healing stopped: another writer keeps changing the object.
    Fight {
        /// Application.
        app: String,
        /// The object.
        object: String,
        /// The other writers.
        managers: Vec<String>,
    },
    /// Putting a change back failed.
    HealFailed {
        /// Application.
        app: String,
        /// The object.
        object: String,
        /// Why.
        error: String,
    },
}

/// One image's update in a commit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ImageChange {
    /// Application.
    pub app: String,
    /// The image as configured.
    pub image: String,
    /// What Git had before.
    pub from: String,
    /// What Git has now.
    pub to: String,
}

impl ServiceEvent {
    /// The application the event is about, where it is about one.
    pub fn app(&self) -> Option<&str> {
        match self {
            ServiceEvent::Synced { app, .. }
            | ServiceEvent::OutOfSync { app, .. }
            | ServiceEvent::SyncFailed { app, .. }
            | ServiceEvent::Rollout { app, .. }
            | ServiceEvent::Healed { app, .. }
            | ServiceEvent::Recreated { app, .. }
            | ServiceEvent::Drifted { app, .. }
            | ServiceEvent::Fight { app, .. }
            | ServiceEvent::HealFailed { app, .. } => Some(app),
            ServiceEvent::Committed { .. }
            | ServiceEvent::RegistryPush { .. }
            | ServiceEvent::Cycle { .. }
            | ServiceEvent::GitPush { .. } => None,
        }
    }
}

/// An event with its number and time.
#[derive(Clone, Debug, Serialize)]
pub struct Numbered {
    /// 1, 2, 3… since the service started.
    pub seq: u64,
    /// When, RFC 3339.
    pub ts: String,
    /// What happened.
    #[serde(flatten)]
    pub event: ServiceEvent,
}

/// The newest events, at most `capacity` of them.
pub struct EventLog {
    capacity: usize,
    inner: Mutex<(u64, VecDeque<Numbered>)>,
    /// Every event as it is pushed, for those who act on them (notifications).
    live: tokio::sync::broadcast::Sender<Numbered>,
}

impl EventLog {
    /// A log that keeps the newest `capacity` events.
    pub fn new(capacity: usize) -> Self {
        EventLog {
            capacity: capacity.max(1),
            inner: Mutex::new((0, VecDeque::new())),
            live: tokio::sync::broadcast::channel(capacity.max(1)).0,
        }
    }

    /// Every event pushed from now on; a receiver that falls `capacity` behind loses the
    /// oldest (and is told how many).
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Numbered> {
        self.live.subscribe()
    }

    /// Keeps `event`, numbered; returns its number.
    pub fn push(&self, event: ServiceEvent) -> u64 {
        let ts = driftwatch_policy::Timestamp::from_unix_nanos(driftwatch_engine::now_nanos())
            .to_string();
        let Ok(mut guard) = self.inner.lock() else {
            return 0;
        };
        let (last, events) = &mut *guard;
        *last += 1;
        if events.len() == self.capacity {
            events.pop_front();
        }
        let numbered = Numbered {
            seq: *last,
            ts,
            event,
        };
        if self.live.receiver_count() > 0 {
            // No receiver is not an error: nobody asked to be told.
            let _ = self.live.send(numbered.clone());
        }
        events.push_back(numbered);
        *last
    }

    /// The number of the newest event (0 before any), where a live stream starts.
    pub fn last_seq(&self) -> u64 {
        self.inner.lock().map(|g| g.0).unwrap_or(0)
    }

    /// The events numbered after `seq`, oldest first.
    pub fn since(&self, seq: u64) -> Vec<Numbered> {
        self.inner
            .lock()
            .map(|g| g.1.iter().filter(|e| e.seq > seq).cloned().collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(n: usize) -> ServiceEvent {
        ServiceEvent::RegistryPush {
            events: n,
            applications: 1,
        }
    }

    #[test]
    fn numbered_bounded_and_read_since() {
        let log = EventLog::new(3);
        for n in 0..5 {
            log.push(push(n));
        }
        let all = log.since(0);
        assert_eq!(all.iter().map(|e| e.seq).collect::<Vec<_>>(), [3, 4, 5]);
        assert_eq!(log.since(4).len(), 1);
        assert!(log.since(5).is_empty());
        let json = serde_json::to_value(&all[0]).unwrap();
        assert_eq!(json["kind"], "registry-push");
        assert_eq!(json["seq"], 3);
        assert_eq!(json["events"], 2);
    }
}
