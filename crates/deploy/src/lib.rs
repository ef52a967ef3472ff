//! Git → cluster for each application: what Git says at the branch head (rendered and
//! cached), synced with server-side apply when the application's policy is automated, compared
//! only when it is not, manual changes healed or reported from shared watches, and each sync
//! and its rollout recorded in the state store.

mod deployer;
mod error;
pub mod inventory;
pub mod live;
mod revision;
pub mod rollout;

pub use deployer::{AppStatus, Deployer, Outcome, RolloutSettled, StatusView};
pub use error::Error;
pub use revision::{head, render_at, render_head};
