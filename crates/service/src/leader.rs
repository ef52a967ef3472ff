//! Leader election on a `coordination.k8s.io/v1` Lease, so that of several replicas only one
//! writes Git, applies, prunes and heals.
//!
//! Two halves, as the rest of the service: [`Elector`] decides — given what the Lease said and
//! when it was seen, it answers acquire, renew, stand by or step down — and is a plain struct
//! tested without a server; [`run_election`] does the I/O at the edge: it reads the Lease every
//! retry period, writes it when the decision says so, and publishes [`Role`] changes on a
//! `watch` channel the run loop follows.
//!
//! The timings are controller-runtime's shortened (see [`Timing::default`]): a Lease lasts
//! 10 s, a leader that could not renew for 7 s steps down, candidates look every 2 s. No clocks
//! are compared between hosts: a follower counts the lease duration from when *it* first saw
//! the current record, and a leader counts its renew deadline from just *before* it sent its
//! last successful renewal. A record is
//! written no earlier than it was sent and seen no earlier than it was written, so the old
//! leader stops (at 7 s) at least 3 s before any follower may take over (at 10 s) — never
//! two writers — and every write names the `resourceVersion` it read, so a candidate can only
//! take over the very record it watched expire.
//!
//! Why not `kube-lease-manager` (DESIGN.md's choice; 0.13 does build on kube 5): its watch
//! loop keeps reporting "leader" while renewals fail until it reads the Lease again, so a
//! leader cut off from the API server would go on acting after its Lease expired; it also
//! compares the holder's `renewTime` with the local clock. Both are what this module avoids,
//! in about as many lines as wiring that crate would take.

use std::time::Duration;

use driftwatch_cluster::{KubeClient, LeaseRecord, ReadLease, lease_now};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::shutdown::Shutdown;

/// The three durations of leader election.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// How long a holder's claim lasts after a renewal (`leaseDurationSeconds`): followers take
    /// over a Lease that did not change for this long.
    pub lease: Duration,
    /// How long a leader goes on without a successful renewal before it stops acting. Shorter
    /// than `lease`: the difference is the time its working tasks have to stop.
    pub renew_deadline: Duration,
    /// Time between looks at the Lease (and renewals by the leader).
    pub retry: Duration,
}

impl Default for Timing {
    /// 10 s, 7 s, 2 s: controller-runtime's 15/10/2 shortened so that a replica killed without
    /// a chance to release is replaced within 15 s at worst (its renewal is seen up to one
    /// look late, and expiry is noticed up to one look late: 2 + 10 + 2), while a leader still
    /// stops 3 s before anyone may take over.
    fn default() -> Self {
        Timing {
            lease: Duration::from_secs(10),
            renew_deadline: Duration::from_secs(7),
            retry: Duration::from_secs(2),
        }
    }
}

/// What to do with the Lease now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Write ourselves in as holder: the Lease is missing, released, expired, or names us
    /// although we do not lead (we restarted under the same identity).
    Acquire,
    /// We lead: write a new renew time.
    Renew,
    /// Someone else holds a live Lease: look again later.
    StandBy {
        /// Its holder.
        holder: String,
    },
    /// We led but must stop: the renew deadline passed without a successful renewal, or the
    /// Lease names someone else.
    StepDown,
}

/// Whether this process acts or only watches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// It writes Git, applies, prunes and heals.
    Leader,
    /// It serves the HTTP side read-only; `leader` is the holder last seen, if any.
    Follower {
        /// The identity of the current leader, when known.
        leader: Option<String>,
    },
    /// With sharding (`--shards`): it acts as the leader of the applications of the shards it
    /// holds (never none: holding none is [`Role::Follower`]).
    Shards {
        /// The shards held, ascending.
        held: Vec<u32>,
        /// How many shards there are.
        of: u32,
    },
}

impl Role {
    /// Whether this process acts on some applications: [`Role::Leader`] or [`Role::Shards`].
    pub fn is_leader(&self) -> bool {
        !matches!(self, Role::Follower { .. })
    }

    /// Whether this process acts on application `app`.
    pub fn owns(&self, app: &str) -> bool {
        match self {
            Role::Leader => true,
            Role::Follower { .. } => false,
            Role::Shards { held, of } => held.contains(&crate::shard::shard_of(app, *of)),
        }
    }
}

/// The pure state of one candidate: what it last saw of the Lease, since when, and when it
/// last renewed. Time is passed in, never read, so every transition is testable.
#[derive(Clone, Debug)]
pub struct Elector {
    identity: String,
    timing: Timing,
    /// The record last read (`None`: no Lease) and when it was first seen as it is.
    seen: Option<(Option<LeaseRecord>, Instant)>,
    /// While leading: when the last successful renewal (or acquisition) was sent.
    renewed_at: Option<Instant>,
}

impl Elector {
    /// A follower that has seen nothing yet.
    pub fn new(identity: impl Into<String>, timing: Timing) -> Self {
        Elector {
            identity: identity.into(),
            timing,
            seen: None,
            renewed_at: None,
        }
    }

    /// This candidate's identity, as written in the Lease.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// The timings in force.
    pub fn timing(&self) -> Timing {
        self.timing
    }

    /// Records what a read of the Lease returned at `now`. The clock of expiry restarts only
    /// when the record changed: a holder that renews keeps changing it.
    pub fn observe(&mut self, record: Option<&LeaseRecord>, now: Instant) {
        let same = matches!(&self.seen, Some((r, _)) if r.as_ref() == record);
        if !same {
            self.seen = Some((record.cloned(), now));
        }
    }

    /// Whether this candidate may act at `now`: it leads and its last renewal is younger than
    /// the renew deadline.
    pub fn leading(&self, now: Instant) -> bool {
        self.renewed_at
            .is_some_and(|t| now.saturating_duration_since(t) < self.timing.renew_deadline)
    }

    /// When a leader must stop if no renewal succeeds before; `None` for a follower.
    pub fn step_down_at(&self) -> Option<Instant> {
        self.renewed_at.map(|t| t + self.timing.renew_deadline)
    }

    /// The holder named by the record last seen.
    pub fn holder(&self) -> Option<&str> {
        self.seen
            .as_ref()
            .and_then(|(r, _)| r.as_ref())
            .and_then(|r| r.holder.as_deref())
    }

    /// What to do at `now`, given what was observed.
    pub fn decide(&self, now: Instant) -> Decision {
        let holder = self.holder();
        if self.renewed_at.is_some() {
            if !self.leading(now) || holder.is_some_and(|h| h != self.identity) {
                return Decision::StepDown;
            }
            return Decision::Renew;
        }
        let Some((record, since)) = &self.seen else {
            // Never read: read first (the loop always observes before deciding).
            return Decision::StandBy {
                holder: String::new(),
            };
        };
        let Some(record) = record else {
            return Decision::Acquire;
        };
        match record.holder.as_deref() {
            None => Decision::Acquire,
            Some(h) if h == self.identity => Decision::Acquire,
            Some(h) => {
                let lasts = record.duration.unwrap_or(self.timing.lease);
                if now.saturating_duration_since(*since) >= lasts {
                    Decision::Acquire
                } else {
                    Decision::StandBy {
                        holder: h.to_owned(),
                    }
                }
            }
        }
    }

    /// The record to write for `decision` (acquire or renew), stamped `stamp`.
    pub fn record_for(&self, decision: &Decision, stamp: &str) -> LeaseRecord {
        let old = self.seen.as_ref().and_then(|(r, _)| r.clone());
        let ours = old
            .as_ref()
            .is_some_and(|r| r.holder.as_deref() == Some(self.identity.as_str()));
        let transitions = old.as_ref().map_or(0, |r| r.transitions);
        LeaseRecord {
            holder: Some(self.identity.clone()),
            duration: Some(self.timing.lease),
            acquired: if *decision == Decision::Renew || ours {
                old.as_ref()
                    .and_then(|r| r.acquired.clone())
                    .or_else(|| Some(stamp.to_owned()))
            } else {
                Some(stamp.to_owned())
            },
            renewed: Some(stamp.to_owned()),
            // A new Lease starts at 0; a change of holder counts one.
            transitions: if ours || old.is_none() {
                transitions
            } else {
                transitions + 1
            },
        }
    }

    /// A write of ours sent at `sent` succeeded and the server now holds `record`: we lead
    /// until `sent` + renew deadline unless renewed again.
    pub fn wrote(&mut self, record: &LeaseRecord, sent: Instant, now: Instant) {
        self.renewed_at = Some(sent);
        self.seen = Some((Some(record.clone()), now));
    }

    /// Stop leading (the decision said so, a write was refused, or we release).
    pub fn step_down(&mut self) {
        self.renewed_at = None;
    }

    /// The record that gives the Lease up: no holder, a one-second duration (as client-go
    /// writes it), so a follower takes over at its next look.
    pub fn released(&self, stamp: &str) -> Option<LeaseRecord> {
        let (Some(record), _) = self.seen.as_ref()? else {
            return None;
        };
        (record.holder.as_deref() == Some(self.identity.as_str())).then(|| LeaseRecord {
            holder: None,
            duration: Some(Duration::from_secs(1)),
            renewed: Some(stamp.to_owned()),
            ..record.clone()
        })
    }
}

/// Where the Lease lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseTarget {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
}

/// The identity of this process: `POD_NAME` when set (a pod), else hostname and process id.
pub fn default_identity() -> String {
    if let Some(pod) = std::env::var("POD_NAME").ok().filter(|p| !p.is_empty()) {
        return pod;
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "driftwatch".to_owned());
    format!("{host}_{}", std::process::id())
}

/// One look: read the Lease, decide, and write it when the decision says so.
pub(crate) async fn step(
    client: &KubeClient,
    target: &LeaseTarget,
    elector: &mut Elector,
) -> Result<(), driftwatch_cluster::Error> {
    let read = client.read_lease(&target.namespace, &target.name).await?;
    elector.observe(read.as_ref().map(|r| &r.record), Instant::now());
    let decision = elector.decide(Instant::now());
    match decision {
        Decision::Acquire | Decision::Renew => {
            let record = elector.record_for(&decision, &lease_now());
            let sent = Instant::now();
            let written = match &read {
                Some(ReadLease {
                    resource_version, ..
                }) => {
                    client
                        .replace_lease(&target.namespace, &target.name, resource_version, &record)
                        .await
                }
                None => {
                    client
                        .create_lease(&target.namespace, &target.name, &record)
                        .await
                }
            };
            match written {
                Ok(w) => elector.wrote(&w.record, sent, Instant::now()),
                // Someone wrote it since we read: they hold it (or renewed); we do not.
                Err(e) if e.status_code() == Some(409) => {
                    tracing::debug!(lease = %target.name, "lease changed under us");
                    elector.step_down();
                }
                Err(e) => return Err(e),
            }
        }
        Decision::StepDown => elector.step_down(),
        Decision::StandBy { .. } => {}
    }
    Ok(())
}

fn role_of(elector: &Elector, now: Instant) -> Role {
    if elector.leading(now) {
        Role::Leader
    } else {
        Role::Follower {
            leader: elector.holder().map(str::to_owned),
        }
    }
}

/// Publishes `role` if it changed, with a log line on every transition.
fn publish(tx: &watch::Sender<Role>, role: Role, identity: &str, lease: &LeaseTarget) {
    if *tx.borrow() == role {
        return;
    }
    match &role {
        // One Lease, one leader: sharded roles come from the shard module.
        Role::Leader | Role::Shards { .. } => tracing::info!(
            identity,
            lease = %format!("{}/{}", lease.namespace, lease.name),
            "became leader"
        ),
        Role::Follower { leader } => tracing::info!(
            identity,
            leader = leader.as_deref().unwrap_or("-"),
            lease = %format!("{}/{}", lease.namespace, lease.name),
            "following"
        ),
    }
    tx.send_replace(role);
}

/// Runs the election until `stop`, publishing the role on `tx`; on `stop` a leader releases
/// the Lease so that a follower takes over at its next look. The role turns to follower the
/// moment the renew deadline passes, even while a call to the API server hangs.
pub async fn run_election(
    client: std::sync::Arc<KubeClient>,
    target: LeaseTarget,
    mut elector: Elector,
    tx: watch::Sender<Role>,
    stop: Shutdown,
) {
    let retry = elector.timing().retry;
    loop {
        let deadline = elector.step_down_at();
        // A look that hangs is given up after the renew deadline, so a follower cut off for a
        // while looks again soon after the API server answers again.
        let look = tokio::time::timeout(
            elector.timing().renew_deadline,
            step(&client, &target, &mut elector),
        );
        let result = tokio::select! {
            r = look => Some(r),
            // A leader whose renewal hangs stops at its deadline, not when the call returns.
            () = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            } => None,
            () = stop.cancelled() => break,
        };
        match result {
            Some(Ok(Err(e))) => {
                tracing::warn!(error = %e, "leader election: the Lease could not be read or written")
            }
            Some(Err(_)) => {
                tracing::warn!("leader election: no answer from the API server in time")
            }
            None => elector.step_down(),
            Some(Ok(Ok(()))) => {}
        }
        publish(
            &tx,
            role_of(&elector, Instant::now()),
            elector.identity(),
            &target,
        );
        // Sleep until the next look, but wake to step down at the deadline.
        let wake = match elector.step_down_at() {
            Some(d) => d.min(Instant::now() + retry),
            None => Instant::now() + retry,
        };
        tokio::select! {
            () = tokio::time::sleep_until(wake) => {}
            () = stop.cancelled() => break,
        }
        publish(
            &tx,
            role_of(&elector, Instant::now()),
            elector.identity(),
            &target,
        );
    }
    let was_leading = elector.leading(Instant::now());
    elector.step_down();
    publish(
        &tx,
        role_of(&elector, Instant::now()),
        elector.identity(),
        &target,
    );
    if was_leading {
        release(&client, &target, &elector).await;
    }
}

/// Gives the Lease up if it still names us, so the next candidate takes over at once.
pub(crate) async fn release(client: &KubeClient, target: &LeaseTarget, elector: &Elector) {
    let attempt = async {
        let Some(read) = client.read_lease(&target.namespace, &target.name).await? else {
            return Ok(false);
        };
        let mut mine = elector.clone();
        mine.observe(Some(&read.record), Instant::now());
        let Some(record) = mine.released(&lease_now()) else {
            return Ok(false);
        };
        client
            .replace_lease(
                &target.namespace,
                &target.name,
                &read.resource_version,
                &record,
            )
            .await
            .map(|_| true)
    };
    match tokio::time::timeout(elector.timing().renew_deadline, attempt).await {
        Ok(Ok(true)) => tracing::info!(lease = %target.name, "lease released"),
        Ok(Ok(false)) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "releasing the lease failed; it expires instead"),
        Err(_) => tracing::warn!("releasing the lease timed out; it expires instead"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn held_by(who: &str, renewed: &str) -> LeaseRecord {
        LeaseRecord {
            holder: Some(who.to_owned()),
            duration: Some(Duration::from_secs(15)),
            acquired: Some("t0".to_owned()),
            renewed: Some(renewed.to_owned()),
            transitions: 1,
        }
    }

    fn s(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    /// controller-runtime's timings, which the numbers below follow.
    fn timing() -> Timing {
        Timing {
            lease: s(15),
            renew_deadline: s(10),
            retry: s(2),
        }
    }

    #[test]
    fn a_missing_or_released_lease_is_taken_at_once() {
        let t = Instant::now();
        let mut e = Elector::new("me", timing());
        e.observe(None, t);
        assert_eq!(e.decide(t), Decision::Acquire);
        let released = LeaseRecord {
            holder: None,
            ..held_by("other", "r1")
        };
        e.observe(Some(&released), t);
        assert_eq!(e.decide(t), Decision::Acquire);
        // Taking a released Lease counts a transition; the first creation does not.
        assert_eq!(e.record_for(&Decision::Acquire, "now").transitions, 2);
        let mut fresh = Elector::new("me", timing());
        fresh.observe(None, t);
        assert_eq!(fresh.record_for(&Decision::Acquire, "now").transitions, 0);
    }

    #[test]
    fn a_live_lease_is_left_until_it_did_not_change_for_its_duration() {
        let t = Instant::now();
        let mut e = Elector::new("me", timing());
        e.observe(Some(&held_by("other", "r1")), t);
        assert_eq!(
            e.decide(t + s(14)),
            Decision::StandBy {
                holder: "other".to_owned()
            }
        );
        // The holder renewed at 10 s: its duration counts again from then.
        e.observe(Some(&held_by("other", "r2")), t + s(10));
        assert!(matches!(e.decide(t + s(24)), Decision::StandBy { .. }));
        // Seeing the same record again does not restart the clock.
        e.observe(Some(&held_by("other", "r2")), t + s(20));
        assert_eq!(e.decide(t + s(25)), Decision::Acquire);
        let taken = e.record_for(&Decision::Acquire, "now");
        assert_eq!(taken.holder.as_deref(), Some("me"));
        assert_eq!(taken.transitions, 2);
        assert_eq!(taken.acquired.as_deref(), Some("now"));
    }

    #[test]
    fn a_leader_renews_and_steps_down_at_its_renew_deadline_before_others_may_take_over() {
        let t = Instant::now();
        let timing = timing();
        let mut leader = Elector::new("me", timing);
        let mut follower = Elector::new("other", timing);
        leader.observe(None, t);
        let record = leader.record_for(&Decision::Acquire, "r1");
        leader.wrote(&record, t, t + s(1));
        assert!(leader.leading(t + s(1)));
        assert_eq!(leader.decide(t + s(2)), Decision::Renew);
        let renewed = leader.record_for(&Decision::Renew, "r2");
        assert_eq!(renewed.acquired.as_deref(), Some("r1"), "kept on renewal");
        assert_eq!(renewed.transitions, record.transitions);
        // The follower sees the record only once it was written, after it was sent.
        follower.observe(Some(&record), t + s(1));
        // No renewal succeeds from now on (the API server is unreachable).
        assert_eq!(leader.step_down_at(), Some(t + s(10)));
        assert!(!leader.leading(t + s(10)));
        assert_eq!(leader.decide(t + s(10)), Decision::StepDown);
        // The follower may only take over at 16 s: 6 s after the leader stopped.
        assert!(matches!(
            follower.decide(t + s(15)),
            Decision::StandBy { .. }
        ));
        assert_eq!(follower.decide(t + s(16)), Decision::Acquire);
        leader.step_down();
        assert!(!leader.leading(t + s(10)));
        // The Lease still names it: it may take it back, but only by replacing the very record
        // it wrote (its resourceVersion), which fails once anyone else wrote theirs.
        assert_eq!(leader.decide(t + s(10)), Decision::Acquire);
    }

    #[test]
    fn a_leader_that_sees_another_holder_steps_down_at_once() {
        let t = Instant::now();
        let mut e = Elector::new("me", timing());
        e.observe(None, t);
        let r = e.record_for(&Decision::Acquire, "r1");
        e.wrote(&r, t, t);
        e.observe(Some(&held_by("other", "r9")), t + s(1));
        assert_eq!(e.decide(t + s(1)), Decision::StepDown);
    }

    #[test]
    fn a_lease_naming_us_after_a_restart_is_taken_back_and_only_ours_is_released() {
        let t = Instant::now();
        let mut e = Elector::new("pod-a", timing());
        e.observe(Some(&held_by("pod-a", "r1")), t);
        assert_eq!(e.decide(t), Decision::Acquire);
        let back = e.record_for(&Decision::Acquire, "r2");
        assert_eq!(back.transitions, 1, "same holder: no transition");
        assert_eq!(back.acquired.as_deref(), Some("t0"));
        let released = e.released("r3").unwrap();
        assert_eq!(released.holder, None);
        assert_eq!(released.duration, Some(s(1)));
        e.observe(Some(&held_by("pod-b", "r4")), t);
        assert_eq!(e.released("r5"), None, "never release another's lease");
    }
}
