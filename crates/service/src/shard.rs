//! Sharding for fleets that outgrow one replica (`run --leader-elect --shards M`): the
//! applications are split into M shards by a stable hash of their names, each shard is led on
//! its own `coordination.k8s.io/v1` Lease exactly as one leader is ([`crate::leader`]), and each
//! replica holds a fair share of the shards.
//!
//! The fair share needs to know how many replicas are alive: each replica also renews a
//! member Lease of its own, and counts the member Leases that changed within their duration —
//! by its own clock, from when it saw them change, as followers judge a leader. With R live
//! replicas a replica holds at most ⌈M / R⌉ shards: it takes free or expired shards up to that,
//! and stops renewing the ones beyond it (a new replica joined), which the others may take once
//! they expire. A replica that dies stops renewing both; after the lease duration it counts no
//! more, the share of the others grows, and they take its shards. Kubernetes is the only
//! coordination: every write names the `resourceVersion` it read.
//!
//! As in [`crate::leader`], [`Sharder`] is the pure decision over what was read and when, and
//! [`run_shards`] does the I/O: one list of the Leases per look, and the writes it decides.

use std::collections::HashMap;
use std::sync::Arc;

use driftwatch_cluster::{KubeClient, LeaseRecord, ReadLease, lease_now};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::leader::{Decision, Elector, LeaseTarget, Role, Timing};
use crate::shutdown::Shutdown;

/// The shard of application `app` among `shards`: FNV-1a of its name, so every replica, every
/// version and every platform agree (Rust's own hasher promises none of that).
pub fn shard_of(app: &str, shards: u32) -> u32 {
    (fnv1a(app.as_bytes()) % u64::from(shards.max(1))) as u32
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The Lease of shard `i` of the election named `base`.
pub fn shard_lease(base: &str, i: u32) -> String {
    format!("{base}-shard-{i}")
}

/// The member Lease of `identity` in the election named `base`: a valid object name whatever
/// the identity holds (a hostname with `_`, capitals), kept unique by a hash of the identity.
pub fn member_lease(base: &str, identity: &str) -> String {
    let clean: String = identity
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .take(40)
        .collect();
    format!(
        "{}{}-{:08x}",
        member_prefix(base),
        clean.trim_matches('-'),
        fnv1a(identity.as_bytes()) as u32
    )
}

fn member_prefix(base: &str) -> String {
    format!("{base}-member-")
}

/// The pure state of one replica in a sharded election: an [`Elector`] per shard, one for its
/// member Lease, and what it saw of the other members and since when.
#[derive(Clone, Debug)]
pub struct Sharder {
    identity: String,
    timing: Timing,
    shards: Vec<Elector>,
    member: Elector,
    /// The other members' Leases by name: the record last seen and when it was first seen so.
    others: HashMap<String, (LeaseRecord, Instant)>,
    /// This replica's member Lease name, left out of `others`.
    own: String,
    /// Looks so far. The first takes no shard: replicas started together first write their
    /// member Leases, so each counts the others before it takes its share.
    looks: u64,
}

impl Sharder {
    /// A replica of `identity` among `shards` shards of the election named `base`.
    pub fn new(identity: &str, base: &str, shards: u32, timing: Timing) -> Self {
        Sharder {
            identity: identity.to_owned(),
            timing,
            shards: (0..shards.max(1))
                .map(|_| Elector::new(identity, timing))
                .collect(),
            member: Elector::new(identity, timing),
            others: HashMap::new(),
            own: member_lease(base, identity),
            looks: 0,
        }
    }

    /// Records one listing of the election's Leases (by name) made at `now`.
    pub fn observe(&mut self, base: &str, leases: &HashMap<String, LeaseRecord>, now: Instant) {
        self.looks += 1;
        for (i, e) in self.shards.iter_mut().enumerate() {
            e.observe(leases.get(&shard_lease(base, i as u32)), now);
        }
        self.member.observe(leases.get(&self.own), now);
        let prefix = member_prefix(base);
        self.others
            .retain(|name, _| leases.contains_key(name) || !name.starts_with(&prefix));
        for (name, record) in leases {
            if !name.starts_with(&prefix) || *name == self.own {
                continue;
            }
            let same = self.others.get(name).is_some_and(|(r, _)| r == record);
            if !same {
                self.others.insert(name.clone(), (record.clone(), now));
            }
        }
    }

    /// Live replicas at `now`, this one included: members whose Lease names a holder and
    /// changed within its duration.
    pub fn members(&self, now: Instant) -> usize {
        1 + self
            .others
            .values()
            .filter(|(r, since)| {
                r.holder.is_some()
                    && now.saturating_duration_since(*since)
                        < r.duration.unwrap_or(self.timing.lease)
            })
            .count()
    }

    /// How many shards this replica may hold at `now`: ⌈shards / live replicas⌉.
    pub fn fair_share(&self, now: Instant) -> usize {
        self.shards.len().div_ceil(self.members(now))
    }

    /// The shards this replica acts on at `now`.
    pub fn held(&self, now: Instant) -> Vec<u32> {
        (0..self.shards.len() as u32)
            .filter(|i| self.shards[*i as usize].leading(now))
            .collect()
    }

    /// What to do with each Lease at `now`: the member Lease first (always held), then each
    /// shard's elector's decision bounded by the fair share — shards beyond it are given up
    /// (the least preferred first), free ones taken while there is room (the most preferred
    /// first). Preference is a hash of identity and shard, so replicas that start together
    /// reach for different shards.
    pub fn decide(&self, now: Instant) -> (Decision, Vec<Decision>) {
        let fair = self.fair_share(now);
        let mut decisions: Vec<Decision> = self.shards.iter().map(|e| e.decide(now)).collect();
        let mut order: Vec<usize> = (0..decisions.len()).collect();
        order.sort_by_key(|i| std::cmp::Reverse(self.preference(*i)));
        let mut kept = 0;
        for &i in &order {
            match decisions[i] {
                Decision::Renew if kept < fair => kept += 1,
                Decision::Renew => decisions[i] = Decision::StepDown,
                _ => {}
            }
        }
        for &i in &order {
            if decisions[i] == Decision::Acquire {
                if kept < fair && self.looks > 1 {
                    kept += 1;
                } else {
                    decisions[i] = Decision::StandBy {
                        holder: self.shards[i].holder().unwrap_or("").to_owned(),
                    };
                }
            }
        }
        (self.member.decide(now), decisions)
    }

    fn preference(&self, shard: usize) -> u64 {
        fnv1a(format!("{}/{shard}", self.identity).as_bytes())
    }

    /// The elector of shard `i`, or of the member Lease for `None`.
    pub fn elector(&mut self, i: Option<usize>) -> Option<&mut Elector> {
        match i {
            None => Some(&mut self.member),
            Some(i) => self.shards.get_mut(i),
        }
    }

    /// The earliest moment a held shard must be given up unless renewed.
    pub fn step_down_at(&self) -> Option<Instant> {
        self.shards.iter().filter_map(Elector::step_down_at).min()
    }

    /// The role to publish at `now`.
    pub fn role(&self, now: Instant) -> Role {
        let held = self.held(now);
        if held.is_empty() {
            Role::Follower {
                leader: self
                    .shards
                    .iter()
                    .find_map(|e| e.holder().map(str::to_owned)),
            }
        } else {
            Role::Shards {
                held,
                of: self.shards.len() as u32,
            }
        }
    }
}

/// One look: list the Leases, decide, write what the decision says.
async fn step(
    client: &KubeClient,
    namespace: &str,
    base: &str,
    sharder: &mut Sharder,
) -> Result<(), driftwatch_cluster::Error> {
    let listed: HashMap<String, ReadLease> = client
        .list_leases(namespace, &format!("{base}-"))
        .await?
        .into_iter()
        .collect();
    let records: HashMap<String, LeaseRecord> = listed
        .iter()
        .map(|(n, l)| (n.clone(), l.record.clone()))
        .collect();
    sharder.observe(base, &records, Instant::now());
    let (member, shards) = sharder.decide(Instant::now());
    let own = sharder.own.clone();
    let jobs = std::iter::once((None, own, member)).chain(
        shards
            .into_iter()
            .enumerate()
            .map(|(i, d)| (Some(i), shard_lease(base, i as u32), d)),
    );
    for (which, name, decision) in jobs {
        let Some(elector) = sharder.elector(which) else {
            continue;
        };
        match decision {
            Decision::Acquire | Decision::Renew => {
                let record = elector.record_for(&decision, &lease_now());
                let sent = Instant::now();
                let written = match listed.get(&name) {
                    Some(read) => {
                        client
                            .replace_lease(namespace, &name, &read.resource_version, &record)
                            .await
                    }
                    None => client.create_lease(namespace, &name, &record).await,
                };
                match written {
                    Ok(w) => elector.wrote(&w.record, sent, Instant::now()),
                    Err(e) if e.status_code() == Some(409) => elector.step_down(),
                    Err(e) => return Err(e),
                }
            }
            Decision::StepDown => elector.step_down(),
            Decision::StandBy { .. } => {}
        }
    }
    Ok(())
}

/// Runs a sharded election until `stop`, publishing the role (the shards held) on `tx`; on
/// `stop` the shards and the member Lease are released so the others take over at once.
pub async fn run_shards(
    client: Arc<KubeClient>,
    target: LeaseTarget,
    mut sharder: Sharder,
    tx: watch::Sender<Role>,
    stop: Shutdown,
) {
    let retry = sharder.timing.retry;
    let identity = sharder.identity.clone();
    let publish = |tx: &watch::Sender<Role>, role: Role| {
        if *tx.borrow() != role {
            match &role {
                Role::Shards { held, of } => {
                    tracing::info!(identity = %identity, ?held, of, "holding shards")
                }
                _ => tracing::info!(identity = %identity, "holding no shard; following"),
            }
            tx.send_replace(role);
        }
    };
    loop {
        let deadline = sharder.step_down_at();
        let look = tokio::time::timeout(
            sharder.timing.renew_deadline,
            step(&client, &target.namespace, &target.name, &mut sharder),
        );
        let result = tokio::select! {
            r = look => Some(r),
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
                tracing::warn!(error = %e, "sharding: the Leases could not be read or written")
            }
            Some(Err(_)) => tracing::warn!("sharding: no answer from the API server in time"),
            // A renewal hung past a deadline: every shard past its own deadline stops.
            None => {}
            Some(Ok(Ok(()))) => {}
        }
        publish(&tx, sharder.role(Instant::now()));
        let wake = match sharder.step_down_at() {
            Some(d) => d.min(Instant::now() + retry),
            None => Instant::now() + retry,
        };
        tokio::select! {
            () = tokio::time::sleep_until(wake) => {}
            () = stop.cancelled() => break,
        }
        publish(&tx, sharder.role(Instant::now()));
    }
    let held = sharder.held(Instant::now());
    for e in &mut sharder.shards {
        e.step_down();
    }
    publish(&tx, sharder.role(Instant::now()));
    for i in held {
        let lease = LeaseTarget {
            namespace: target.namespace.clone(),
            name: shard_lease(&target.name, i),
        };
        crate::leader::release(&client, &lease, &sharder.shards[i as usize]).await;
    }
    let member = LeaseTarget {
        namespace: target.namespace.clone(),
        name: sharder.own.clone(),
    };
    crate::leader::release(&client, &member, &sharder.member).await;
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_shard_of_a_name_is_fnv1a_and_spreads_evenly() {
        // FNV-1a's published 64-bit test vectors.
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
        let mut counts = [0u32; 6];
        for i in 0..6000 {
            counts[shard_of(&format!("app-{i:04}"), 6) as usize] += 1;
        }
        assert!(counts.iter().all(|c| (800..1200).contains(c)), "{counts:?}");
        assert_eq!(shard_of("anything", 1), 0);
        assert_eq!(shard_of("anything", 0), 0, "no division by zero");
    }

    #[test]
    fn member_leases_are_valid_names_and_unique_per_identity() {
        let a = member_lease("driftwatch", "Build_Host.example_4242");
        let b = member_lease("driftwatch", "build-host-example-4242");
        assert!(
            a.starts_with("driftwatch-member-build-host-example-4242-"),
            "{a}"
        );
        assert_ne!(a, b, "different identities, different Leases");
        assert!(
            a.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
            "{a}"
        );
        assert!(member_lease("d", &"x".repeat(300)).len() < 64);
    }

    /// Leases as a server keeps them: a record and a version per name.
    #[derive(Default)]
    struct Store(HashMap<String, (LeaseRecord, u64)>);

    const BASE: &str = "dw";

    fn timing() -> Timing {
        Timing::default()
    }

    /// One look by `r` at `now`, as `step` does it, with the store's versions standing for
    /// resourceVersions.
    fn look(r: &mut Sharder, store: &mut Store, now: Instant) {
        let records: HashMap<String, LeaseRecord> = store
            .0
            .iter()
            .map(|(n, (rec, _))| (n.clone(), rec.clone()))
            .collect();
        let versions: HashMap<String, u64> =
            store.0.iter().map(|(n, (_, v))| (n.clone(), *v)).collect();
        r.observe(BASE, &records, now);
        let (member, shards) = r.decide(now);
        let own = r.own.clone();
        let jobs = std::iter::once((None, own, member)).chain(
            shards
                .into_iter()
                .enumerate()
                .map(|(i, d)| (Some(i), shard_lease(BASE, i as u32), d)),
        );
        for (which, name, decision) in jobs {
            let e = r.elector(which).unwrap();
            match decision {
                Decision::Acquire | Decision::Renew => {
                    let record = e.record_for(&decision, &format!("{now:?}"));
                    let current = store.0.get(&name).map(|(_, v)| *v);
                    if current == versions.get(&name).copied() {
                        let v = current.unwrap_or(0) + 1;
                        store.0.insert(name, (record.clone(), v));
                        e.wrote(&record, now, now);
                    } else {
                        e.step_down();
                    }
                }
                Decision::StepDown => e.step_down(),
                Decision::StandBy { .. } => {}
            }
        }
    }

    /// Which replica holds each shard at `now`; panics if two hold one.
    fn owners(replicas: &[&Sharder], shards: u32, now: Instant) -> Vec<Option<usize>> {
        (0..shards)
            .map(|s| {
                let holding: Vec<usize> = replicas
                    .iter()
                    .enumerate()
                    .filter(|(_, r)| r.held(now).contains(&s))
                    .map(|(i, _)| i)
                    .collect();
                assert!(holding.len() <= 1, "shard {s} held by {holding:?}");
                holding.first().copied()
            })
            .collect()
    }

    #[test]
    fn replicas_share_the_shards_fairly_and_take_over_those_of_one_that_dies() {
        let t0 = Instant::now();
        let mut store = Store::default();
        let mut rs: Vec<Sharder> = ["a", "b", "c"]
            .iter()
            .map(|id| Sharder::new(id, BASE, 6, timing()))
            .collect();
        let retry = timing().retry;
        let mut now = t0;
        // Started together: after a few looks every shard has one holder, two each.
        for _ in 0..4 {
            for r in &mut rs {
                look(r, &mut store, now);
            }
            now += retry;
        }
        let all: Vec<&Sharder> = rs.iter().collect();
        let owned = owners(&all, 6, now);
        assert!(owned.iter().all(Option::is_some), "{owned:?}");
        for (i, r) in rs.iter().enumerate() {
            assert_eq!(r.held(now).len(), 2, "replica {i}: {owned:?}");
            assert_eq!(r.members(now), 3);
        }

        // c dies (no more looks): once its Leases expire, a and b hold three each. Never two
        // holders of a shard at any moment; c's shards are retaken within the lease duration
        // plus two looks.
        let c_shards = rs[2].held(now);
        let died = now;
        let mut retaken = None;
        for _ in 0..12 {
            for r in &mut rs[..2] {
                look(r, &mut store, now);
            }
            let all: Vec<&Sharder> = rs.iter().collect();
            let owned = owners(&all, 6, now);
            if retaken.is_none()
                && c_shards
                    .iter()
                    .all(|s| matches!(owned[*s as usize], Some(0 | 1)))
            {
                retaken = Some(now - died);
            }
            now += retry;
        }
        let retaken = retaken.expect("c's shards were never retaken");
        assert!(
            retaken <= timing().lease + 2 * retry,
            "retaken after {retaken:?}"
        );
        assert_eq!(rs[0].held(now).len() + rs[1].held(now).len(), 6);
        assert_eq!(rs[0].held(now).len(), 3);
        assert_eq!(rs[0].members(now), 2);
    }

    #[test]
    fn a_replica_that_joins_gets_its_share_from_one_that_held_everything() {
        let mut store = Store::default();
        let mut a = Sharder::new("a", BASE, 4, timing());
        let retry = timing().retry;
        let mut now = Instant::now();
        for _ in 0..3 {
            look(&mut a, &mut store, now);
            now += retry;
        }
        assert_eq!(a.held(now), vec![0, 1, 2, 3], "alone, it holds every shard");
        let mut b = Sharder::new("b", BASE, 4, timing());
        let joined = now;
        let mut settled = None;
        for _ in 0..15 {
            look(&mut a, &mut store, now);
            look(&mut b, &mut store, now);
            owners(&[&a, &b], 4, now);
            if settled.is_none() && a.held(now).len() == 2 && b.held(now).len() == 2 {
                settled = Some(now - joined);
            }
            now += retry;
        }
        let settled = settled.expect("b never got its share");
        assert!(settled <= timing().lease + 3 * retry, "{settled:?}");
        // Each shard a gave up was not renewed from the moment a saw b, so b took it only
        // after it expired: `owners` above never found two holders.
        assert!(settled >= Duration::from_secs(1));
    }
}
