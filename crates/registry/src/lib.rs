//! What registries hold: tags, digests, creation times and platforms, learned correctly,
//! cheaply and safely.
//!
//! An OCI distribution client with anonymous, basic and bearer auth; credentials from Docker's
//! config, `.dockerconfigjson`, `env:` and `ext:` sources and argocd-image-updater's
//! `registries.conf`; politeness (rate limit, concurrency bound, retries with backoff and jitter,
//! `Retry-After`); bounded reads; a scan cache; and registry webhook payloads.

mod challenge;
mod client;
mod credentials;
mod endpoint;
mod error;
mod manifest;
mod scan;
mod stats;
mod webhook;

pub use challenge::Challenge;
pub use client::{Client, Options, TagList};
pub use credentials::{
    Credentials, SecretData, SecretRead, SecretReader, Secrets, Source, default_docker_config,
    from_docker_config,
};
pub use endpoint::{
    Endpoint, RegistriesConf, RegistryEntry, TagSort, is_loopback, parse_go_duration,
};
pub use error::Error;
pub use manifest::{ImageConfig, IndexEntry, Manifest};
pub use scan::{Cycle, DigestMeta, Needs, Scanner};
pub use stats::{Count, Stats};
pub use webhook::{PushEvent, parse_webhook, verify_github_signature};
