//! **Promotion between environments**: an image with `promote: {from: APP, when: healthy,
//! soak: 10m}` is not chosen from the registry; it takes the exact tag (and digest) that the
//! upstream application `APP` *runs* in the cluster — not what its Git says — once `APP` has run
//! it Synced and Healthy for the soak time. A Degraded, Missing or OutOfSync upstream blocks the
//! promotion and says why; a rollout in progress makes it wait.
//!
//! [`decide`] is pure: the live state comes from a [`LiveState`] provider (the deploy side), the
//! start of the soak from the state store (so a restart does not reset it), the time from the
//! caller.

use std::time::Duration;

use driftwatch_policy::ImageRef;

use crate::model::Pending;

/// An image's `promote:` configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Promote {
    /// The upstream application whose live image is followed.
    pub from: String,
    /// How long the upstream must have run the image Synced and Healthy (`when: healthy`, the
    /// only condition there is).
    pub soak: Duration,
    /// Write `tag@digest` (the digest the upstream's pods run), not the tag alone.
    pub pin_digest: bool,
}

/// One container of the upstream's workloads that runs the image.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Running {
    /// The tag its spec names (`latest` when it names none).
    pub tag: String,
    /// The digest its spec pins, if any.
    pub spec_digest: Option<String>,
    /// The digests its pods report running (from each pod's `imageID`), where reported.
    pub pod_digests: Vec<String>,
}

/// Whether the upstream's cluster state is as its Git says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncState {
    /// Every object as Git says.
    Synced,
    /// Some object differs.
    OutOfSync,
    /// Not known (not compared yet, or the comparison failed).
    Unknown,
}

/// The upstream's worst health, as the deploy side assesses it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HealthState {
    /// Running as desired.
    Healthy,
    /// Rolling out.
    Progressing,
    /// Paused on purpose.
    Suspended,
    /// Failed or stuck.
    Degraded,
    /// Some object is not in the cluster.
    Missing,
    /// Not known yet.
    Unknown,
}

impl std::fmt::Display for HealthState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            HealthState::Healthy => "Healthy",
            HealthState::Progressing => "Progressing",
            HealthState::Suspended => "Suspended",
            HealthState::Degraded => "Degraded",
            HealthState::Missing => "Missing",
            HealthState::Unknown => "Unknown",
        })
    }
}

/// What the cluster says of the upstream application, for one image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observation {
    /// The upstream's containers that run the image (same registry and repository).
    pub running: Vec<Running>,
    /// Its sync status.
    pub sync: SyncState,
    /// Its worst health.
    pub health: HealthState,
    /// Why, naming the worst object (`Deployment shop/web: …`).
    pub detail: String,
}

/// Reads an upstream application's live state. Implemented by the deploy side (`run
/// --kubeconfig`, `check --kubeconfig`); errors are sentences for people.
pub trait LiveState: Send + Sync {
    /// What the cluster runs of `image` for application `app`, its sync status and health.
    fn observe<'a>(&'a self, app: &'a str, image: &'a ImageRef) -> Pending<'a, Observation>;
}

/// A shared [`LiveState`].
#[derive(Clone)]
pub struct Live(pub std::sync::Arc<dyn LiveState>);

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Live(..)")
    }
}

/// Since when the upstream has run one value Synced and Healthy (kept in the state store).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Soaking {
    /// `tag` or `tag@digest`, as observed.
    pub value: String,
    /// When it was first observed Synced and Healthy (Unix nanoseconds).
    pub since: i128,
}

/// What a promoted image does this cycle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Write this tag (and digest, when known).
    Promote {
        /// The tag the upstream runs.
        tag: String,
        /// The digest its pods run (or its spec pins), when known.
        digest: Option<String>,
    },
    /// Not yet: the soak is running, or the upstream is rolling out or not known yet.
    Wait(String),
    /// The upstream is in no state to promote from: Degraded, Missing, OutOfSync or not running
    /// the image.
    Blocked(String),
}

/// Decides one promoted image `image` (its name, without tag) configured with `promote`:
/// `observed` is the upstream's live state (or why it could not be read), `soaking` the soak
/// record kept so far, `now` Unix nanoseconds. Returns the decision and the soak record to keep
/// (`None`: forget it — the upstream is not Synced and Healthy, so the soak starts over next
/// time). With `pin_digest` a promotion carries the digest, or waits until one is known.
pub fn decide(
    promote: &Promote,
    image: &str,
    observed: Result<&Observation, &str>,
    soaking: Option<&Soaking>,
    now: i128,
) -> (Decision, Option<Soaking>) {
    let from = promote.from.as_str();
    let soak = promote.soak;
    let wait = |why: String| (Decision::Wait(format!("waiting: {why}")), None);
    let blocked = |why: String| (Decision::Blocked(format!("blocked: {why}")), None);
    let o = match observed {
        Ok(o) => o,
        Err(e) => return wait(format!("{from} live state unknown: {e}")),
    };
    let detail = |o: &Observation| {
        if o.detail.is_empty() {
            String::new()
        } else {
            format!(" ({})", o.detail)
        }
    };
    match o.health {
        HealthState::Degraded | HealthState::Missing => {
            return blocked(format!("{from} {}{}", o.health, detail(o)));
        }
        _ => {}
    }
    match o.sync {
        SyncState::OutOfSync => return blocked(format!("{from} OutOfSync")),
        SyncState::Unknown => return wait(format!("{from} sync status Unknown{}", detail(o))),
        SyncState::Synced => {}
    }
    if o.running.is_empty() {
        return blocked(format!("{from} does not run {image}"));
    }
    let mut tags: Vec<&str> = o.running.iter().map(|r| r.tag.as_str()).collect();
    tags.sort_unstable();
    tags.dedup();
    if let [one] = tags[..] {
        let tag = one.to_owned();
        let mut pods: Vec<&str> = o
            .running
            .iter()
            .flat_map(|r| r.pod_digests.iter().map(String::as_str))
            .collect();
        pods.sort_unstable();
        pods.dedup();
        let mut specs: Vec<&str> = o
            .running
            .iter()
            .filter_map(|r| r.spec_digest.as_deref())
            .collect();
        specs.sort_unstable();
        specs.dedup();
        let digest = match (&pods[..], &specs[..]) {
            ([], []) => None,
            ([one], _) | ([], [one]) => Some((*one).to_owned()),
            ([], _) => return wait(format!("{from} pins several digests of {image}:{tag}")),
            _ => {
                return wait(format!(
                    "{from} pods run several digests of {image}:{tag} (rolling out)"
                ));
            }
        };
        if o.health != HealthState::Healthy {
            return wait(format!("{from} {}{}", o.health, detail(o)));
        }
        let value = match &digest {
            Some(d) => format!("{tag}@{d}"),
            None => tag.clone(),
        };
        let since = match soaking {
            Some(s) if s.value == value && s.since <= now => s.since,
            _ => now,
        };
        let keep = Some(Soaking { value, since });
        let elapsed = Duration::from_nanos(u64::try_from(now - since).unwrap_or(u64::MAX));
        if elapsed >= soak {
            if promote.pin_digest && digest.is_none() {
                return (
                    Decision::Wait(format!(
                        "waiting: {from} runs {image}:{tag} but no digest is known to pin (pinDigest)"
                    )),
                    keep,
                );
            }
            return (Decision::Promote { tag, digest }, keep);
        }
        return (
            Decision::Wait(format!(
                "waiting: {from} healthy {} of {}",
                age(elapsed),
                age(soak)
            )),
            keep,
        );
    }
    wait(format!(
        "{from} runs several versions of {image}: {} (rolling out)",
        tags.join(", ")
    ))
}

/// `4m`, `1h`, `1h30m`, `2d3h`, `0s`: the two largest units that are not zero, as a soak is
/// written.
fn age(d: Duration) -> String {
    let s = d.as_secs();
    let parts = [
        (s / 86_400, "d"),
        ((s % 86_400) / 3600, "h"),
        ((s % 3600) / 60, "m"),
        (s % 60, "s"),
    ];
    let shown: Vec<String> = parts
        .iter()
        .skip_while(|(n, _)| *n == 0)
        .take(2)
        .filter(|(n, _)| *n > 0)
        .map(|(n, u)| format!("{n}{u}"))
        .collect();
    if shown.is_empty() {
        "0s".to_owned()
    } else {
        shown.concat()
    }
}

/// `promote:` without a cluster to read the upstream from: the image waits, and says what it
/// needs — never a write from a guess.
pub fn needs_cluster(from: &str) -> String {
    format!("waiting: promotion from {from} reads the live cluster: it needs --kubeconfig")
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i128 = 1_000_000_000;
    const MIN: i128 = 60 * S;

    fn healthy(tag: &str, digests: &[&str]) -> Observation {
        Observation {
            running: vec![Running {
                tag: tag.to_owned(),
                spec_digest: None,
                pod_digests: digests.iter().map(|d| (*d).to_owned()).collect(),
            }],
            sync: SyncState::Synced,
            health: HealthState::Healthy,
            detail: "all objects healthy".to_owned(),
        }
    }

    fn promote(from: &str, soak: u64, pin_digest: bool) -> Promote {
        Promote {
            from: from.to_owned(),
            soak: Duration::from_secs(soak),
            pin_digest,
        }
    }

    fn run(
        o: Result<&Observation, &str>,
        soaking: Option<&Soaking>,
        now: i128,
    ) -> (Decision, Option<Soaking>) {
        decide(
            &promote("shop-staging", 600, false),
            "reg/shop/web",
            o,
            soaking,
            now,
        )
    }

    #[test]
    fn the_soak_starts_when_first_seen_healthy_and_promotes_once_it_has_passed() {
        let o = healthy("v1.2.0", &["sha256:aa", "sha256:aa"]);
        let t0 = 1_000 * MIN;
        let (d, keep) = run(Ok(&o), None, t0);
        assert_eq!(
            d,
            Decision::Wait("waiting: shop-staging healthy 0s of 10m".into())
        );
        let keep = keep.unwrap();
        assert_eq!(
            keep,
            Soaking {
                value: "v1.2.0@sha256:aa".into(),
                since: t0
            }
        );
        // Four minutes on, from the kept record (a restart in between changes nothing).
        let (d, again) = run(Ok(&o), Some(&keep), t0 + 4 * MIN);
        assert_eq!(
            d,
            Decision::Wait("waiting: shop-staging healthy 4m of 10m".into())
        );
        assert_eq!(again.as_ref(), Some(&keep));
        let (d, _) = run(Ok(&o), Some(&keep), t0 + 10 * MIN);
        assert_eq!(
            d,
            Decision::Promote {
                tag: "v1.2.0".into(),
                digest: Some("sha256:aa".into())
            }
        );
    }

    #[test]
    fn another_value_starts_the_soak_over() {
        let keep = Soaking {
            value: "v1.1.0".into(),
            since: 0,
        };
        let (d, k) = run(Ok(&healthy("v1.2.0", &[])), Some(&keep), 100 * MIN);
        assert_eq!(
            d,
            Decision::Wait("waiting: shop-staging healthy 0s of 10m".into())
        );
        assert_eq!(
            k,
            Some(Soaking {
                value: "v1.2.0".into(),
                since: 100 * MIN
            })
        );
        // A record from the future (a clock set back) is not trusted either.
        let ahead = Soaking {
            value: "v1.2.0".into(),
            since: 200 * MIN,
        };
        let (_, k) = run(Ok(&healthy("v1.2.0", &[])), Some(&ahead), 100 * MIN);
        assert_eq!(k.unwrap().since, 100 * MIN);
    }

    #[test]
    fn no_soak_promotes_at_once_and_the_spec_digest_serves_without_pod_reports() {
        let mut o = healthy("v1.2.0", &[]);
        o.running[0].spec_digest = Some("sha256:bb".into());
        let (d, _) = decide(&promote("dev", 0, true), "img", Ok(&o), None, 5);
        assert_eq!(
            d,
            Decision::Promote {
                tag: "v1.2.0".into(),
                digest: Some("sha256:bb".into())
            }
        );
        let (d, _) = decide(
            &promote("dev", 0, false),
            "img",
            Ok(&healthy("v1", &[])),
            None,
            5,
        );
        assert_eq!(
            d,
            Decision::Promote {
                tag: "v1".into(),
                digest: None
            }
        );
    }

    #[test]
    fn a_degraded_missing_or_out_of_sync_upstream_blocks_and_forgets_the_soak() {
        let keep = Soaking {
            value: "v1.2.0".into(),
            since: 0,
        };
        let mut o = healthy("v1.2.0", &[]);
        o.health = HealthState::Degraded;
        o.detail = "Deployment shop/web: the rollout missed its progress deadline".into();
        assert_eq!(
            run(Ok(&o), Some(&keep), MIN),
            (
                Decision::Blocked(
                    "blocked: shop-staging Degraded (Deployment shop/web: the rollout missed its progress deadline)"
                        .into()
                ),
                None
            )
        );
        o.health = HealthState::Missing;
        o.detail = String::new();
        assert_eq!(
            run(Ok(&o), Some(&keep), MIN).0,
            Decision::Blocked("blocked: shop-staging Missing".into())
        );
        let mut o = healthy("v1.2.0", &[]);
        o.sync = SyncState::OutOfSync;
        assert_eq!(
            run(Ok(&o), Some(&keep), MIN),
            (
                Decision::Blocked("blocked: shop-staging OutOfSync".into()),
                None
            )
        );
        let mut o = healthy("v1.2.0", &[]);
        o.running.clear();
        assert_eq!(
            run(Ok(&o), None, MIN).0,
            Decision::Blocked("blocked: shop-staging does not run reg/shop/web".into())
        );
    }

    #[test]
    fn a_rollout_in_progress_or_an_unknown_state_waits() {
        let mut o = healthy("v1.2.0", &[]);
        o.health = HealthState::Progressing;
        o.detail = "Deployment shop/web: 0 of 1 replicas updated".into();
        assert_eq!(
            run(Ok(&o), None, MIN),
            (
                Decision::Wait(
                    "waiting: shop-staging Progressing (Deployment shop/web: 0 of 1 replicas updated)"
                        .into()
                ),
                None
            )
        );
        let mut o = healthy("v1.2.0", &[]);
        o.sync = SyncState::Unknown;
        o.detail = String::new();
        assert_eq!(
            run(Ok(&o), None, MIN).0,
            Decision::Wait("waiting: shop-staging sync status Unknown".into())
        );
        let mut o = healthy("v1.2.0", &[]);
        o.running.push(Running {
            tag: "v1.1.0".into(),
            ..Running::default()
        });
        assert_eq!(
            run(Ok(&o), None, MIN).0,
            Decision::Wait(
                "waiting: shop-staging runs several versions of reg/shop/web: v1.1.0, v1.2.0 (rolling out)"
                    .into()
            )
        );
        let o = healthy("v1.2.0", &["sha256:aa", "sha256:bb"]);
        assert!(
            matches!(run(Ok(&o), None, MIN).0, Decision::Wait(w) if w.contains("several digests"))
        );
        assert_eq!(
            run(Err("connection refused"), None, MIN).0,
            Decision::Wait("waiting: shop-staging live state unknown: connection refused".into())
        );
        assert!(needs_cluster("shop-staging").contains("needs --kubeconfig"));
    }

    #[test]
    fn pinning_a_digest_waits_until_one_is_known() {
        let (d, keep) = decide(
            &promote("dev", 0, true),
            "img",
            Ok(&healthy("v1", &[])),
            None,
            5,
        );
        assert_eq!(
            d,
            Decision::Wait(
                "waiting: dev runs img:v1 but no digest is known to pin (pinDigest)".into()
            )
        );
        assert!(keep.is_some(), "the soak goes on meanwhile");
    }

    #[test]
    fn a_suspended_upstream_or_conflicting_pinned_digests_wait() {
        let mut o = healthy("v1.2.0", &[]);
        o.health = HealthState::Suspended;
        o.detail = "Deployment shop/web: the rollout is paused".into();
        assert_eq!(
            run(Ok(&o), None, MIN).0,
            Decision::Wait(
                "waiting: shop-staging Suspended (Deployment shop/web: the rollout is paused)"
                    .into()
            )
        );
        let mut o = healthy("v1.2.0", &[]);
        o.running[0].spec_digest = Some("sha256:aa".into());
        o.running.push(Running {
            tag: "v1.2.0".into(),
            spec_digest: Some("sha256:bb".into()),
            pod_digests: Vec::new(),
        });
        assert_eq!(
            run(Ok(&o), None, MIN).0,
            Decision::Wait(
                "waiting: shop-staging pins several digests of reg/shop/web:v1.2.0".into()
            )
        );
    }

    #[test]
    fn ages_read_as_written() {
        let a = |s: u64| age(Duration::from_secs(s));
        assert_eq!(
            [a(0), a(4), a(240), a(3600), a(5400), a(90_061), a(86_400)],
            ["0s", "4s", "4m", "1h", "1h30m", "1d1h", "1d"]
        );
    }
}
