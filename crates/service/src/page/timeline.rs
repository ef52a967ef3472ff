//! An application's timeline, built from the history database and the event log: each image
//! update as a chain of steps (registry push seen → decided → committed → synced → rollout
//! settled) with the time between them, and the other things that happened to the
//! application (heals, fights, drift, failures). Pure: the page renders what this returns.

use driftwatch_engine::store::{Decision, SyncRecord, Update};

use crate::events::{Numbered, ServiceEvent};

/// One step of an update's way from the registry to the cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// What happened ("push seen", "decided", …).
    pub what: &'static str,
    /// When, RFC 3339; empty when only the outcome is known (a rollout read from the database).
    pub at: String,
    /// More about it: the tag chosen, the commit, the health.
    pub detail: String,
    /// Nanoseconds since the previous step, when both times are known.
    pub after: Option<i128>,
}

/// One image update and the steps it went through.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// The image.
    pub image: String,
    /// Git's value before.
    pub old: String,
    /// The value written.
    pub new: String,
    /// The commit that wrote it.
    pub commit: String,
    /// The steps, oldest first.
    pub steps: Vec<Step>,
}

/// How an entry should look: something went fine, needs a look, or went wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tone {
    /// Nothing to do.
    Ok,
    /// Worth a look (drift, out of sync).
    Warn,
    /// Something failed or is fought over.
    Bad,
}

/// Something that happened to the application outside an update's chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// When, RFC 3339.
    pub at: String,
    /// A short name of what happened ("healed", "fight", …).
    pub what: &'static str,
    /// The sentence shown.
    pub text: String,
    /// How it looks.
    pub tone: Tone,
}

/// An application's timeline, newest first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Timeline {
    /// Image updates, newest first.
    pub changes: Vec<Change>,
    /// Everything else, newest first.
    pub entries: Vec<Entry>,
}

fn nanos(at: &str) -> Option<i128> {
    driftwatch_policy::Timestamp::parse(at)
        .ok()
        .map(driftwatch_policy::Timestamp::unix_nanos)
}

/// A duration as people read it: `850 ms`, `2.4 s`, `3 min 5 s`, `2 h 10 min`.
pub fn human(nanos: i128) -> String {
    let ms = nanos / 1_000_000;
    if ms < 0 {
        return format!("-{}", human(-nanos));
    }
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{}.{} s", ms / 1000, (ms % 1000) / 100)
    } else if ms < 3_600_000 {
        format!("{} min {} s", ms / 60_000, (ms % 60_000) / 1000)
    } else {
        format!("{} h {} min", ms / 3_600_000, (ms % 3_600_000) / 60_000)
    }
}

/// Whether a revision as shown (12 characters) or stored names this commit.
fn same_revision(commit: &str, revision: &str) -> bool {
    let n = revision.len().min(commit.len()).min(12);
    match (commit.get(..n), revision.get(..n)) {
        (Some(a), Some(b)) => n > 0 && a.eq_ignore_ascii_case(b),
        _ => false,
    }
}

fn short(commit: &str) -> &str {
    commit.get(..12).unwrap_or(commit)
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "unknown".to_owned()
    } else {
        items.join(", ")
    }
}

/// Builds `app`'s timeline from its `history`, `syncs` and `decisions` (approvals, rejections,
/// released holds; newest first, as the store returns them) and the service's `events`
/// (oldest first, as the log returns them; other applications' events are skipped).
pub fn build(
    app: &str,
    history: &[Update],
    syncs: &[SyncRecord],
    decisions: &[Decision],
    events: &[Numbered],
) -> Timeline {
    let mine = |e: &ServiceEvent| match e {
        ServiceEvent::Synced { app: a, .. }
        | ServiceEvent::OutOfSync { app: a, .. }
        | ServiceEvent::SyncFailed { app: a, .. }
        | ServiceEvent::Rollout { app: a, .. }
        | ServiceEvent::Healed { app: a, .. }
        | ServiceEvent::Recreated { app: a, .. }
        | ServiceEvent::Drifted { app: a, .. }
        | ServiceEvent::Fight { app: a, .. }
        | ServiceEvent::HealFailed { app: a, .. } => a == app,
        // Commits come from the history store, with their whole chain.
        ServiceEvent::Committed { .. }
        | ServiceEvent::RegistryPush { .. }
        | ServiceEvent::Cycle { .. }
        | ServiceEvent::GitPush { .. } => false,
    };
    let events: Vec<&Numbered> = events.iter().filter(|e| mine(&e.event)).collect();
    // Events already shown in an update's chain are not repeated as entries.
    let mut used = vec![false; events.len()];
    let mut changes = Vec::new();
    for u in history.iter().filter(|u| u.app == app) {
        let mut steps = vec![
            Step {
                what: "push seen",
                at: u.seen_at.clone(),
                detail: String::new(),
                after: None,
            },
            Step {
                what: "decided",
                at: u.decided_at.clone(),
                detail: format!("{} → {}", u.old, u.new),
                after: None,
            },
            Step {
                what: "committed",
                at: u.committed_at.clone(),
                detail: short(&u.commit).to_owned(),
                after: None,
            },
        ];
        let synced = events.iter().position(|e| {
            matches!(&e.event, ServiceEvent::Synced { revision, .. } if same_revision(&u.commit, revision))
        });
        match synced {
            Some(i) => {
                used[i] = true;
                if let ServiceEvent::Synced {
                    applied, pruned, ..
                } = &events[i].event
                {
                    steps.push(Step {
                        what: "synced",
                        at: events[i].ts.clone(),
                        detail: format!("{} applied, {} pruned", applied.len(), pruned.len()),
                        after: None,
                    });
                }
            }
            None => {
                // The oldest sync of this revision in the database (a restart emptied the log).
                if let Some(s) = syncs
                    .iter()
                    .rev()
                    .find(|s| s.app == app && same_revision(&u.commit, &s.revision))
                {
                    steps.push(Step {
                        what: "synced",
                        at: s.at.clone(),
                        detail: format!("{} applied, {} pruned", s.applied, s.pruned),
                        after: None,
                    });
                    if !s.health.is_empty() && s.health != "not waited" {
                        steps.push(Step {
                            what: "rollout settled",
                            at: String::new(),
                            detail: s.health.clone(),
                            after: None,
                        });
                    }
                }
            }
        }
        let rollout = events.iter().position(|e| {
            matches!(&e.event, ServiceEvent::Rollout { revision, .. } if same_revision(&u.commit, revision))
        });
        if let Some(i) = rollout {
            used[i] = true;
            if let ServiceEvent::Rollout { health, detail, .. } = &events[i].event {
                steps.retain(|s| s.what != "rollout settled");
                steps.push(Step {
                    what: "rollout settled",
                    at: events[i].ts.clone(),
                    detail: if detail.is_empty() {
                        health.clone()
                    } else {
                        format!("{health}: {detail}")
                    },
                    after: None,
                });
            }
        }
        let mut prev: Option<i128> = None;
        for s in &mut steps {
            let at = nanos(&s.at);
            s.after = prev.zip(at).map(|(p, a)| a - p);
            if at.is_some() {
                prev = at;
            }
        }
        changes.push(Change {
            image: u.image.clone(),
            old: u.old.clone(),
            new: u.new.clone(),
            commit: u.commit.clone(),
            steps,
        });
    }
    let mut entries = Vec::new();
    for (e, _) in events.iter().zip(&used).filter(|(_, used)| !**used).rev() {
        let (what, text, tone) = match &e.event {
            ServiceEvent::Healed {
                object,
                fields,
                managers,
                after_ms,
                ..
            } => (
                "healed",
                format!(
                    "{object}: {} changed by {}, put back in {}",
                    list(fields),
                    list(managers),
                    human(i128::from(*after_ms) * 1_000_000)
                ),
                Tone::Ok,
            ),
            ServiceEvent::Fight {
                object, managers, ..
            } => (
                "fight",
                format!(
                    "{object}: healing stopped, {} keeps changing it",
                    list(managers)
                ),
                Tone::Bad,
            ),
            ServiceEvent::Drifted {
                object,
                fields,
                managers,
                ..
            } => (
                "drifted",
                format!(
                    "{object}: {} changed by {} (self-heal off)",
                    list(fields),
                    list(managers)
                ),
                Tone::Warn,
            ),
            ServiceEvent::Recreated { object, .. } => (
                "recreated",
                format!("{object} was deleted and created again"),
                Tone::Ok,
            ),
            ServiceEvent::HealFailed { object, error, .. } => {
                ("heal failed", format!("{object}: {error}"), Tone::Bad)
            }
            ServiceEvent::SyncFailed { error, .. } => ("sync failed", error.clone(), Tone::Bad),
            ServiceEvent::OutOfSync {
                revision, objects, ..
            } => (
                "out of sync",
                format!(
                    "{} object(s) differ from {revision}: {}",
                    objects.len(),
                    list(objects)
                ),
                Tone::Warn,
            ),
            ServiceEvent::Synced {
                revision,
                applied,
                pruned,
                ..
            } => (
                "synced",
                format!(
                    "{revision}: {} applied, {} pruned",
                    applied.len(),
                    pruned.len()
                ),
                Tone::Ok,
            ),
            ServiceEvent::Rollout {
                revision,
                health,
                detail,
                ..
            } => (
                "rollout",
                format!("{revision}: {health} {detail}")
                    .trim_end()
                    .to_owned(),
                if health == "Degraded" {
                    Tone::Bad
                } else {
                    Tone::Ok
                },
            ),
            ServiceEvent::Committed { .. }
            | ServiceEvent::RegistryPush { .. }
            | ServiceEvent::Cycle { .. }
            | ServiceEvent::GitPush { .. } => continue,
        };
        entries.push(Entry {
            at: e.ts.clone(),
            what,
            text,
            tone,
        });
    }
    for d in decisions.iter().filter(|d| d.app == app) {
        let (what, text, tone) = match d.what.as_str() {
            "approved" => (
                "approved",
                format!("{} {} approved by {}", d.image, d.value, d.by),
                Tone::Ok,
            ),
            "rejected" => (
                "rejected",
                format!("{} {} rejected by {}", d.image, d.value, d.by),
                Tone::Warn,
            ),
            _ => (
                "released",
                format!(
                    "{}: the hold from {} is lifted by {}",
                    d.image, d.value, d.by
                ),
                Tone::Ok,
            ),
        };
        entries.push(Entry {
            at: d.at.clone(),
            what,
            text,
            tone,
        });
    }
    // Events and decisions, merged newest first (a stable sort keeps each one's own order).
    entries.sort_by_key(|e| std::cmp::Reverse(nanos(&e.at)));
    Timeline { changes, entries }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(commit: &str, seen: &str, decided: &str, committed: &str) -> Update {
        Update {
            app: "shop".into(),
            image: "reg/shop/backend".into(),
            old: "v1.0.0".into(),
            new: "v1.0.1".into(),
            commit: commit.into(),
            repo: "file:///repo".into(),
            branch: "main".into(),
            seen_at: seen.into(),
            decided_at: decided.into(),
            committed_at: committed.into(),
        }
    }

    fn ev(seq: u64, ts: &str, event: ServiceEvent) -> Numbered {
        Numbered {
            seq,
            ts: ts.into(),
            event,
        }
    }

    #[test]
    fn an_update_is_a_chain_with_the_time_between_steps() {
        let commit = "0123456789abcdef0123456789abcdef01234567";
        let history = [update(
            commit,
            "2026-11-02T10:00:00Z",
            "2026-11-02T10:00:00.250Z",
            "2026-11-02T10:00:01.500Z",
        )];
        let events = [
            ev(
                1,
                "2026-11-02T10:00:02Z",
                ServiceEvent::Synced {
                    app: "shop".into(),
                    revision: "0123456789ab".into(),
                    applied: vec!["Deployment/backend".into()],
                    pruned: vec![],
                    orphaned: vec![],
                    unchanged: 2,
                },
            ),
            ev(
                2,
                "2026-11-02T10:00:12Z",
                ServiceEvent::Rollout {
                    app: "shop".into(),
                    revision: "0123456789ab".into(),
                    health: "Healthy".into(),
                    detail: String::new(),
                },
            ),
            // Another application's heal is not in this timeline.
            ev(
                3,
                "2026-11-02T10:00:13Z",
                ServiceEvent::Healed {
                    app: "other".into(),
                    object: "Deployment/x".into(),
                    fields: vec![],
                    managers: vec![],
                    after_ms: 1,
                },
            ),
        ];
        let t = build("shop", &history, &[], &[], &events);
        assert_eq!(t.changes.len(), 1);
        let steps = &t.changes[0].steps;
        let whats: Vec<_> = steps.iter().map(|s| s.what).collect();
        assert_eq!(
            whats,
            [
                "push seen",
                "decided",
                "committed",
                "synced",
                "rollout settled"
            ]
        );
        let after: Vec<_> = steps.iter().map(|s| s.after.map(human)).collect();
        assert_eq!(
            after,
            [
                None,
                Some("250 ms".to_owned()),
                Some("1.2 s".to_owned()),
                Some("500 ms".to_owned()),
                Some("10.0 s".to_owned())
            ]
        );
        assert_eq!(steps[2].detail, "0123456789ab");
        assert_eq!(steps[1].detail, "v1.0.0 → v1.0.1");
        // The sync and rollout are in the chain, not repeated below it.
        assert!(t.entries.is_empty(), "{:?}", t.entries);
    }

    #[test]
    fn heals_and_fights_name_the_other_manager_newest_first() {
        let events = [
            ev(
                1,
                "2026-11-02T10:00:00Z",
                ServiceEvent::Healed {
                    app: "shop".into(),
                    object: "apps/Deployment/shop/backend".into(),
                    fields: vec![".spec.replicas".into()],
                    managers: vec!["kubectl-edit".into()],
                    after_ms: 120,
                },
            ),
            ev(
                2,
                "2026-11-02T10:01:00Z",
                ServiceEvent::Fight {
                    app: "shop".into(),
                    object: "apps/Deployment/shop/backend".into(),
                    managers: vec!["hpa-controller".into()],
                },
            ),
        ];
        let t = build("shop", &[], &[], &[], &events);
        assert_eq!(t.entries.len(), 2);
        assert_eq!(t.entries[0].what, "fight");
        assert!(t.entries[0].text.contains("hpa-controller"));
        assert_eq!(t.entries[0].tone, Tone::Bad);
        assert_eq!(t.entries[1].what, "healed");
        assert!(t.entries[1].text.contains("kubectl-edit"));
        assert!(t.entries[1].text.contains("120 ms"));
    }

    #[test]
    fn decisions_name_who_and_merge_with_events_newest_first() {
        let d = |what: &str, value: &str, by: &str, at: &str, app: &str| Decision {
            app: app.into(),
            image: "reg/web".into(),
            value: value.into(),
            what: what.into(),
            by: by.into(),
            at: at.into(),
        };
        let decisions = [
            d("released", "v3", "bob", "2026-11-02T10:02:00Z", "shop"),
            d("approved", "v2", "ann", "2026-11-02T10:00:30Z", "shop"),
            d("rejected", "v9", "eve", "2026-11-02T10:03:00Z", "other"),
        ];
        let events = [ev(
            1,
            "2026-11-02T10:01:00Z",
            ServiceEvent::Fight {
                app: "shop".into(),
                object: "apps/Deployment/shop/backend".into(),
                managers: vec!["hpa-controller".into()],
            },
        )];
        let t = build("shop", &[], &[], &decisions, &events);
        let got: Vec<(&str, &str)> = t
            .entries
            .iter()
            .map(|e| (e.what, e.text.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("released", "reg/web: the hold from v3 is lifted by bob"),
                (
                    "fight",
                    "apps/Deployment/shop/backend: healing stopped, hpa-controller keeps changing it"
                ),
                ("approved", "reg/web v2 approved by ann"),
            ]
        );
        assert_eq!(t.entries[2].at, "2026-11-02T10:00:30Z");
    }

    #[test]
    fn the_database_fills_in_a_sync_the_log_no_longer_has() {
        let commit = "abcdef012345aaaa";
        let history = [update(
            commit,
            "2026-11-02T10:00:00Z",
            "2026-11-02T10:00:01Z",
            "2026-11-02T10:00:02Z",
        )];
        let syncs = [SyncRecord {
            app: "shop".into(),
            revision: commit.into(),
            at: "2026-11-02T10:00:05Z".into(),
            applied: 1,
            pruned: 0,
            health: "Healthy".into(),
            detail: String::new(),
        }];
        let t = build("shop", &history, &syncs, &[], &[]);
        let steps = &t.changes[0].steps;
        assert_eq!(steps[3].what, "synced");
        assert_eq!(steps[3].after, Some(3_000_000_000));
        assert_eq!(steps[4].what, "rollout settled");
        assert_eq!(steps[4].after, None, "the database keeps no settle time");
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(human(0), "0 ms");
        assert_eq!(human(1_500_000_000), "1.5 s");
        assert_eq!(human(185_000_000_000), "3 min 5 s");
        assert_eq!(human(7_800_000_000_000), "2 h 10 min");
        assert_eq!(human(-2_000_000), "-2 ms");
    }
}
