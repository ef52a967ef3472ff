//! Rollout health: the worst health among an application's objects, now or once it settles,
//! and the record of each sync in the state store.

use std::time::{Duration, Instant};

use driftwatch_cluster::{Health, KubeClient, ObjectKey, assess};
use serde_json::Value;

use crate::error::Error;

/// Records a sync of `app` at `revision` and the health it left the rollout in.
pub fn record(
    state: &std::path::Path,
    app: &str,
    revision: &str,
    report: &driftwatch_cluster::SyncReport,
    health: &str,
    detail: String,
) -> Result<(), Error> {
    let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
    driftwatch_engine::store::Store::open(state)?.record_sync(
        &driftwatch_engine::store::SyncRecord {
            app: app.to_owned(),
            revision: revision.to_owned(),
            at: driftwatch_policy::Timestamp::from_unix_nanos(driftwatch_engine::now_nanos())
                .to_string(),
            applied: count(report.applied.len()),
            pruned: count(report.pruned.len()),
            health: health.to_owned(),
            detail,
        },
    )?;
    Ok(())
}

/// The worst health of `objects` now, and why (naming the object).
pub async fn health(
    client: &KubeClient,
    objects: &[Value],
    namespace: &str,
) -> Result<(Health, String), Error> {
    let mut worst = (Health::Healthy, "all objects healthy".to_owned());
    for obj in objects {
        let live = client.get(obj, namespace).await?;
        let (h, why) = assess(live.as_ref());
        if h > worst.0 {
            worst = (h, format!("{}: {why}", ObjectKey::of(obj)));
        }
    }
    Ok(worst)
}

/// Polls until nothing is Progressing or Missing, or `limit` has passed (then says so).
pub async fn wait(
    client: &KubeClient,
    objects: &[Value],
    namespace: &str,
    limit: Duration,
) -> Result<(Health, String), Error> {
    let deadline = Instant::now() + limit;
    loop {
        let mut worst = health(client, objects, namespace).await?;
        let settled = matches!(
            worst.0,
            Health::Healthy | Health::Degraded | Health::Suspended
        );
        if settled || Instant::now() >= deadline {
            if !settled {
                worst.1 = format!("still {} after {} s: {}", worst.0, limit.as_secs(), worst.1);
            }
            return Ok(worst);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
