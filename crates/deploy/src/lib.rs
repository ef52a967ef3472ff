//! Git → cluster for each application: what Git says at the branch head (rendered and
//! cached), synced with server-side apply when the application's policy is automated, compared
//! only when it is not, manual changes healed or reported from shared watches, and each sync
//! and its rollout recorded in the state store.

pub mod compare;
mod deployer;
mod error;
pub mod inventory;
pub mod live;
mod overrides;
mod revision;
pub mod rollout;
pub mod verdict;

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
