//! How driftwatch marks what it owns in a cluster: the field manager it applies as and the
//! label naming the application an object belongs to. Everything else in the crate reads these,
//! so they live apart from sync, diff and the client.

/// The field manager driftwatch applies as (and the reporting controller of its Events).
pub const FIELD_MANAGER: &str = "driftwatch";
/// The label that marks an object as applied by an application.
pub const APP_LABEL: &str = "driftwatch.io/app";
