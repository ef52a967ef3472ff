//! Git → cluster for each application: what Git says at the branch head (rendered and
//! cached), synced with server-side apply when the application's policy is automated, compared
//! only when it is not, manual changes healed or reported from shared watches, and each sync
//! and its rollout recorded in the state store.

pub mod clusters;
pub mod compare;
mod deployer;
mod error;
pub mod helm;
pub mod inventory;
pub mod live;
mod overrides;
pub mod promote;
mod revision;
pub mod rollback;
pub mod rollout;
pub mod verdict;

pub use clusters::{Clusters, Resolve};
pub use compare::{Comparison, ObjectState, SyncStatus, compare};
pub use deployer::{AppStatus, Deployer, Mode, Outcome, RolloutSettled, StatusView};
pub use error::Error;

/// The application's ignoreDifferences as the cluster crate's rules.
pub fn ignore_rules(app: &driftwatch_engine::App) -> Vec<driftwatch_cluster::IgnoreRule> {
    app.sync
        .iter()
        .flat_map(|p| &p.ignore_differences)
        .map(|d| driftwatch_cluster::IgnoreRule {
            kind: d.kind.clone(),
            name: d.name.clone(),
            json_pointers: d.json_pointers.clone(),
            managers: d.managers.clone(),
        })
        .collect()
}
pub use revision::{head, render_at, render_head};

/// Syncs `rendered` with the application's inventory (what it applied before, so prune knows
/// what left Git) and keeps the new inventory — the one way `sync` and `run` apply a revision.
/// A dry run reads the inventory and keeps nothing.
pub async fn apply(
    client: &driftwatch_cluster::KubeClient,
    state: &std::path::Path,
    rendered: &[serde_json::Value],
    opts: &driftwatch_cluster::SyncOptions,
) -> Result<driftwatch_cluster::SyncReport, Error> {
    let inventory = inventory::load(state, &opts.app);
    if !opts.dry_run {
        // Saved before anything is applied: a sync cut short (kill -9, an API error) must not
        // forget objects it already created, or prune could never remove them.
        let pending =
            driftwatch_cluster::inventory_before_sync(rendered, &inventory, &opts.namespace);
        inventory::save(state, &opts.app, &pending)?;
    }
    let report = driftwatch_cluster::sync(client, rendered, &inventory, opts).await?;
    if !opts.dry_run {
        inventory::save(state, &opts.app, &report.inventory)?;
    }
    Ok(report)
}
