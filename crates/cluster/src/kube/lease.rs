//! The `coordination.k8s.io/v1` Lease calls leader election needs: read one Lease, create it,
//! and replace it only if nobody changed it since it was read (its `resourceVersion`), so two
//! candidates can never both believe they wrote themselves in as holder.
//!
//! The decisions (when to take, renew or give up a Lease) are the caller's; this module only
//! moves records to and from the API server.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};

use super::KubeClient;
use crate::error::Error;

/// What a Lease says about its holder, as leader election reads and writes it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeaseRecord {
    /// Who holds it; `None` (or empty on the server) when it was released.
    pub holder: Option<String>,
    /// How long the holder's claim lasts after each renewal.
    pub duration: Option<Duration>,
    /// When the current holder took it (RFC 3339, as the server stores it).
    pub acquired: Option<String>,
    /// When the holder last renewed it (RFC 3339). Readers compare records, not clocks: a
    /// changed `renewed` means the holder is alive, whatever the two clocks say.
    pub renewed: Option<String>,
    /// How many times the holder changed.
    pub transitions: i32,
}

/// A Lease as read: its record and the `resourceVersion` a replace must name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadLease {
    /// What it says.
    pub record: LeaseRecord,
    /// The version read; a replace naming an older one is refused (HTTP 409).
    pub resource_version: String,
}

/// Now, as a Lease stores times (microseconds, UTC).
pub fn lease_now() -> String {
    k8s_openapi::jiff::Timestamp::now().to_string()
}

fn micro(text: Option<&str>) -> Option<MicroTime> {
    text.and_then(|t| t.parse().ok()).map(MicroTime)
}

fn record_of(lease: &Lease) -> LeaseRecord {
    let spec = lease.spec.clone().unwrap_or_default();
    LeaseRecord {
        holder: spec.holder_identity.filter(|h| !h.is_empty()),
        duration: spec
            .lease_duration_seconds
            .and_then(|s| u64::try_from(s).ok())
            .map(Duration::from_secs),
        acquired: spec.acquire_time.map(|t| t.0.to_string()),
        renewed: spec.renew_time.map(|t| t.0.to_string()),
        transitions: spec.lease_transitions.unwrap_or(0),
    }
}

fn lease_of(name: &str, record: &LeaseRecord, resource_version: Option<&str>) -> Lease {
    Lease {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            resource_version: resource_version.map(str::to_owned),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            // The server keeps "" for a released Lease, as client-go writes it.
            holder_identity: Some(record.holder.clone().unwrap_or_default()),
            lease_duration_seconds: record
                .duration
                .map(|d| i32::try_from(d.as_secs().max(1)).unwrap_or(i32::MAX)),
            acquire_time: micro(record.acquired.as_deref()),
            renew_time: micro(record.renewed.as_deref()),
            lease_transitions: Some(record.transitions),
            ..LeaseSpec::default()
        }),
    }
}

impl KubeClient {
    async fn leases(&self, namespace: &str, what: &str) -> Result<Api<Lease>, Error> {
        let client = self.clients(what).await?.calls.clone();
        Ok(Api::namespaced(client, namespace))
    }

    /// The Lease `namespace/name`, `None` when it does not exist.
    pub async fn read_lease(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<ReadLease>, Error> {
        let what = format!("reading Lease {namespace}/{name}");
        let api = self.leases(namespace, &what).await?;
        let found = self.call(&what, api.get_opt(name)).await?;
        Ok(found.map(|l| ReadLease {
            record: record_of(&l),
            resource_version: l.metadata.resource_version.clone().unwrap_or_default(),
        }))
    }

    /// Every Lease in `namespace` whose name starts with `prefix`, by name: one call for the
    /// Leases of all shards and members, where reading each would take one call apiece.
    pub async fn list_leases(
        &self,
        namespace: &str,
        prefix: &str,
    ) -> Result<Vec<(String, ReadLease)>, Error> {
        let what = format!("listing Leases {namespace}/{prefix}*");
        let api = self.leases(namespace, &what).await?;
        let list = self
            .call(&what, api.list(&kube::api::ListParams::default()))
            .await?;
        Ok(list
            .items
            .iter()
            .filter_map(|l| {
                let name = l.metadata.name.clone()?;
                name.starts_with(prefix).then(|| {
                    (
                        name,
                        ReadLease {
                            record: record_of(l),
                            resource_version: l
                                .metadata
                                .resource_version
                                .clone()
                                .unwrap_or_default(),
                        },
                    )
                })
            })
            .collect())
    }

    /// Creates the Lease `namespace/name` saying `record`; HTTP 409 when another candidate
    /// created it first.
    pub async fn create_lease(
        &self,
        namespace: &str,
        name: &str,
        record: &LeaseRecord,
    ) -> Result<ReadLease, Error> {
        let what = format!("creating Lease {namespace}/{name}");
        let api = self.leases(namespace, &what).await?;
        let made = self
            .call(
                &what,
                api.create(&PostParams::default(), &lease_of(name, record, None)),
            )
            .await?;
        Ok(ReadLease {
            record: record_of(&made),
            resource_version: made.metadata.resource_version.clone().unwrap_or_default(),
        })
    }

    /// Replaces the Lease `namespace/name` with `record` if it is still at `resource_version`;
    /// HTTP 409 when someone wrote it since.
    pub async fn replace_lease(
        &self,
        namespace: &str,
        name: &str,
        resource_version: &str,
        record: &LeaseRecord,
    ) -> Result<ReadLease, Error> {
        let what = format!("updating Lease {namespace}/{name}");
        let api = self.leases(namespace, &what).await?;
        let lease = lease_of(name, record, Some(resource_version));
        let written = self
            .call(&what, api.replace(name, &PostParams::default(), &lease))
            .await?;
        Ok(ReadLease {
            record: record_of(&written),
            resource_version: written
                .metadata
                .resource_version
                .clone()
                .unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_record_survives_the_round_trip_and_an_empty_holder_is_none() {
        let record = LeaseRecord {
            holder: Some("a".to_owned()),
            duration: Some(Duration::from_secs(15)),
            acquired: Some("2026-12-02T03:00:00.123456Z".to_owned()),
            renewed: Some("2026-12-02T03:00:02.5Z".to_owned()),
            transitions: 3,
        };
        assert_eq!(record_of(&lease_of("l", &record, Some("7"))), record);
        let released = LeaseRecord {
            holder: None,
            ..record
        };
        let lease = lease_of("l", &released, None);
        assert_eq!(
            lease.spec.as_ref().unwrap().holder_identity.as_deref(),
            Some("")
        );
        assert_eq!(record_of(&lease).holder, None);
        assert!(lease_now().parse::<k8s_openapi::jiff::Timestamp>().is_ok());
    }
}
