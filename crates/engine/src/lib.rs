//! The updater: configuration (native `driftwatch.yaml` or Argo CD Applications with
//! argocd-image-updater annotations or ImageUpdater resources), one scan → choose → write-back
//! cycle, and its report.

pub mod argocd;
mod config;
mod cycle;
mod error;
pub mod hold;
mod ignore;
mod image_updater;
mod model;
pub mod notification;
pub mod promote;
pub mod target;
pub mod window;

pub use config::Config;
pub use cycle::{
    CommitReport, CycleReport, ImageReport, Kind, Lift, Mode, Status, Updater, affected, now_nanos,
};
pub use error::Error;
pub use model::{
    App, ApplicationWriter, Applications, CHART_PREFIX, GitCredentialReader, GitCredentials,
    GitCredentialsFrom, IgnoreDifference, OtherSource, Pending, SyncPolicy, TrackedImage,
    WriteBack,
};
pub mod store;
