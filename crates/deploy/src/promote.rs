//! The live state a promotion reads: what an upstream application runs of an image (the tag its
//! workloads name, the digests their pods report), whether it is Synced, and its health — read
//! from the cluster at the moment of the cycle, the same comparison `status` makes. Used by
//! `run --kubeconfig` and `check --kubeconfig`.

use driftwatch_cluster::Health;
use driftwatch_engine::App;
use driftwatch_engine::promote::{HealthState, LiveState, Observation, Running, SyncState};
use driftwatch_policy::ImageRef;
use std::path::PathBuf;

use crate::clusters::Clusters;
use crate::compare::SyncStatus;

/// Reads upstream applications from their clusters.
pub struct ClusterLive {
    clusters: tokio::sync::Mutex<Clusters>,
    state: PathBuf,
    apps: std::sync::RwLock<Vec<App>>,
}

impl ClusterLive {
    /// A reader of `apps` (with their Git credentials) on `clusters`; renders and inventories
    /// live under `state`.
    pub fn new(clusters: Clusters, state: PathBuf, apps: &[App]) -> Self {
        ClusterLive {
            clusters: tokio::sync::Mutex::new(clusters),
            state,
            apps: std::sync::RwLock::new(apps.to_vec()),
        }
    }

    /// Takes a new set of applications (their source changed).
    pub fn set_apps(&self, apps: &[App]) {
        if let Ok(mut a) = self.apps.write() {
            *a = apps.to_vec();
        }
    }

    async fn read(&self, name: &str, image: &ImageRef) -> Result<Observation, String> {
        let app = self
            .apps
            .read()
            .ok()
            .and_then(|a| a.iter().find(|a| a.name == name).cloned())
            .ok_or_else(|| format!("no application {name} is loaded"))?;
        let Some(policy) = app.sync.clone() else {
            return Err(format!(
                "{name} has no sync policy, so where it runs is not known"
            ));
        };
        let client = self
            .clusters
            .lock()
            .await
            .client(&app.name, policy.cluster.as_deref())
            .await
            .map_err(|e| e.to_string())?;
        // Its own mirror and render cache, so a fetch here never races the deploy loop's.
        let own = self.state.join("promote");
        let rendered = tokio::task::block_in_place(|| {
            let head = crate::head(&own, &app)?;
            crate::render_at(&own, &app, &head)
        })
        .map_err(|e| e.to_string())?;
        let comparison = crate::compare(
            &client,
            &app.name,
            &rendered.objects,
            &crate::inventory::load(&self.state, &app.name),
            &policy.namespace,
            &crate::ignore_rules(&app),
        )
        .await
        .map_err(|e| e.to_string())?;
        let (health, detail) = comparison.health();
        let containers = crate::live::containers(&client, &rendered.objects, &policy.namespace)
            .await
            .map_err(|e| e.to_string())?;
        let running = crate::live::running(image, &containers)
            .into_iter()
            .map(|c| {
                let parsed = ImageRef::parse(&c.image).ok();
                Running {
                    tag: parsed
                        .as_ref()
                        .and_then(|r| r.tag().map(str::to_owned))
                        .unwrap_or_else(|| "latest".to_owned()),
                    spec_digest: parsed
                        .as_ref()
                        .and_then(|r| r.digest().map(ToString::to_string)),
                    pod_digests: c.pod_digests.iter().flatten().cloned().collect(),
                }
            })
            .collect();
        Ok(Observation {
            running,
            sync: match comparison.sync() {
                SyncStatus::Synced => SyncState::Synced,
                SyncStatus::OutOfSync => SyncState::OutOfSync,
                SyncStatus::Unknown => SyncState::Unknown,
            },
            health: match health {
                Health::Healthy => HealthState::Healthy,
                Health::Progressing => HealthState::Progressing,
                Health::Suspended => HealthState::Suspended,
                Health::Degraded => HealthState::Degraded,
                Health::Missing => HealthState::Missing,
            },
            detail,
        })
    }
}

impl LiveState for ClusterLive {
    fn observe<'a>(
        &'a self,
        app: &'a str,
        image: &'a ImageRef,
    ) -> driftwatch_engine::Pending<'a, Observation> {
        Box::pin(self.read(app, image))
    }
}
