//! Git → cluster, the parts that need no API server: rendering an application's manifests
//! (plain YAML natively, kustomize and Helm through their binaries) and comparing rendered
//! objects with live ones field by field, without the false drift Argo CD users fight.

mod diff;
mod error;
mod heal;
mod health;
mod kube;
mod mark;
mod quantity;
mod render;
mod sync;

pub use diff::{
    FieldDiff, IgnoreRule, ObjectDiff, ObjectKey, changes, diff, keep_ignored, same_version,
};
pub use error::Error;
pub use heal::{
    Change, HealAction, HealBook, HealEvent, HealInput, HealOptions, Healer, HealerRun, Listing,
    LiveStatus, kube_event, watch_and_heal,
};
pub use health::{Health, assess};
pub use kube::{KubeClient, KubeTarget, LeaseRecord, ObjectEvent, ReadLease, Watched, lease_now};
pub use mark::{APP_LABEL, FIELD_MANAGER};
pub use quantity::parse_quantity;
pub use render::{Rendered, Tool, installed, parse_objects, render, render_helm};
pub use sync::{
    SyncOptions, SyncPlan, SyncReport, app_of, applied_form, as_desired, inventory_before_sync,
    plan_sync, sync,
};
