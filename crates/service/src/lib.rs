//! The driftwatch service: everything `driftwatch run` does, on one tokio runtime.
//!
//! - [`updater`]: the image loop — scan, choose, write back to Git — on an interval and at once
//!   for registry webhooks;
//! - [`deploy`]: Git → cluster — heads polled, pushes and own commits deployed at once, manual
//!   changes healed from shared watches;
//! - [`http`]: webhooks, `/metrics`, `/status`, health;
//! - [`limit`]: the webhooks' body size limit and per-source rate limit;
//! - [`notify`]: notifications to webhooks (JSON, Slack-compatible) on what the service did;
//! - [`page`]: the status page (`GET /`), its live updates and actions;
//! - [`source`]: where the applications come from, read again when they live in the cluster;
//! - [`events`]: what the service did, typed, served on `/events`;
//! - [`clusters`]: what an application's cluster name means (kubeconfig context, Argo CD Secret);
//! - [`leader`]: leader election on a Lease: only the leader acts, followers serve read-only;
//! - [`shard`]: sharding on Leases: each replica leads the applications of its shards;
//! - [`state`]: what the loops and the HTTP side share, and the triggers between them;
//! - [`shutdown`]: one stop signal; SIGTERM and Ctrl-C are handled once.
//!
//! The binary parses flags into [`Options`] and calls [`run`].

pub mod clusters;
pub mod deploy;
pub mod error;
pub mod events;
pub mod http;
pub mod leader;
pub mod limit;
pub mod metrics;
pub mod notify;
pub mod page;
pub mod shard;
pub mod shutdown;
pub mod source;
pub mod state;
pub mod updater;

pub use error::Error;
pub use shutdown::Shutdown;
pub use source::{AppSource, Applications, Loaded};
pub use updater::{Options, RunOutcome, run};
