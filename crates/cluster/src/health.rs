//! Health of workloads from their live objects, as Argo CD assesses it: a rollout is
//! Progressing until the controller has observed the new generation and every replica is
//! updated and available; a missed progress deadline is Degraded; a paused Deployment is
//! Suspended.

use serde_json::Value;

/// The health of one object.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum Health {
    /// Running as desired.
    #[default]
    Healthy,
    /// Rolling out.
    Progressing,
    /// Paused or suspended on purpose.
    Suspended,
    /// Failed or stuck.
    Degraded,
    /// Not in the cluster.
    Missing,
}

impl std::fmt::Display for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Health::Healthy => "Healthy",
            Health::Progressing => "Progressing",
            Health::Suspended => "Suspended",
            Health::Degraded => "Degraded",
            Health::Missing => "Missing",
        })
    }
}

fn int(v: &Value, p: &str) -> i64 {
    v.pointer(p).and_then(Value::as_i64).unwrap_or(0)
}

/// A field (`status`, `reason`) of the status condition of type `kind`.
fn condition<'a>(v: &'a Value, kind: &str, field: &str) -> Option<&'a str> {
    v.pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(kind))?
        .get(field)?
        .as_str()
}

/// The controller has not yet seen the latest spec, so its status says nothing about it.
fn waiting() -> (Health, String) {
    (
        Health::Progressing,
        "waiting for the controller to observe the new generation".to_owned(),
    )
}

/// Assesses a live object with a reason; kinds without a rule are Healthy when they exist.
pub fn assess(obj: Option<&Value>) -> (Health, String) {
    let Some(o) = obj else {
        return (Health::Missing, "not in the cluster".to_owned());
    };
    let kind = o.get("kind").and_then(Value::as_str).unwrap_or("");
    let generation = int(o, "/metadata/generation");
    let observed = int(o, "/status/observedGeneration");
    let not_observed = generation > 0 && observed < generation;
    match kind {
        "Deployment" => {
            if o.pointer("/spec/paused").and_then(Value::as_bool) == Some(true) {
                return (Health::Suspended, "the rollout is paused".to_owned());
            }
            if condition(o, "Progressing", "reason") == Some("ProgressDeadlineExceeded") {
                return (
                    Health::Degraded,
                    "the rollout missed its progress deadline".to_owned(),
                );
            }
            if not_observed {
                return waiting();
            }
            let want = o
                .pointer("/spec/replicas")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            let (updated, available, total) = (
                int(o, "/status/updatedReplicas"),
                int(o, "/status/availableReplicas"),
                int(o, "/status/replicas"),
            );
            if updated < want {
                return (
                    Health::Progressing,
                    format!("{updated} of {want} replicas updated"),
                );
            }
            if total > updated {
                return (
                    Health::Progressing,
                    format!("{} old replicas pending termination", total - updated),
                );
            }
            if available < updated {
                return (
                    Health::Progressing,
                    format!("{available} of {updated} updated replicas available"),
                );
            }
            (Health::Healthy, format!("{available} replicas available"))
        }
        "StatefulSet" => {
            if not_observed {
                return waiting();
            }
            let want = o
                .pointer("/spec/replicas")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            let ready = int(o, "/status/readyReplicas");
            let updated = int(o, "/status/updatedReplicas");
            let current = o.pointer("/status/currentRevision").and_then(Value::as_str);
            let update = o.pointer("/status/updateRevision").and_then(Value::as_str);
            if ready < want {
                return (
                    Health::Progressing,
                    format!("{ready} of {want} replicas ready"),
                );
            }
            let rolling = o
                .pointer("/spec/updateStrategy/type")
                .and_then(Value::as_str)
                != Some("OnDelete");
            if rolling && (current != update || updated < want) {
                return (
                    Health::Progressing,
                    format!("{updated} of {want} replicas on the new revision"),
                );
            }
            (Health::Healthy, format!("{ready} replicas ready"))
        }
        "DaemonSet" => {
            if not_observed {
                return waiting();
            }
            let desired = int(o, "/status/desiredNumberScheduled");
            let updated = int(o, "/status/updatedNumberScheduled");
            let available = int(o, "/status/numberAvailable");
            if updated < desired {
                return (
                    Health::Progressing,
                    format!("{updated} of {desired} nodes updated"),
                );
            }
            if available < desired {
                return (
                    Health::Progressing,
                    format!("{available} of {desired} nodes available"),
                );
            }
            (Health::Healthy, format!("{available} nodes available"))
        }
        "Job" => {
            if condition(o, "Failed", "status") == Some("True") {
                return (Health::Degraded, "the job failed".to_owned());
            }
            if condition(o, "Complete", "status") == Some("True") {
                return (Health::Healthy, "the job completed".to_owned());
            }
            if o.pointer("/spec/suspend").and_then(Value::as_bool) == Some(true) {
                return (Health::Suspended, "the job is suspended".to_owned());
            }
            (Health::Progressing, "the job is running".to_owned())
        }
        _ => (Health::Healthy, "exists".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deploy(status: Value) -> Value {
        json!({"kind": "Deployment", "metadata": {"generation": 2}, "spec": {"replicas": 3}, "status": status})
    }

    #[test]
    fn deployments() {
        let healthy = deploy(
            json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 3}),
        );
        assert_eq!(assess(Some(&healthy)).0, Health::Healthy);
        let stale = deploy(
            json!({"observedGeneration": 1, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 3}),
        );
        assert_eq!(assess(Some(&stale)).0, Health::Progressing);
        let rolling = deploy(
            json!({"observedGeneration": 2, "replicas": 4, "updatedReplicas": 3, "availableReplicas": 3}),
        );
        assert_eq!(assess(Some(&rolling)).0, Health::Progressing);
        let pending = deploy(
            json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 1}),
        );
        assert!(assess(Some(&pending)).1.contains("1 of 3"));
        let stuck = deploy(
            json!({"observedGeneration": 2, "conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]}),
        );
        assert_eq!(assess(Some(&stuck)).0, Health::Degraded);
        let mut paused = healthy.clone();
        paused["spec"]["paused"] = json!(true);
        assert_eq!(assess(Some(&paused)).0, Health::Suspended);
        assert_eq!(assess(None).0, Health::Missing);
    }

    #[test]
    fn statefulsets_daemonsets_jobs() {
        let sts = json!({"kind": "StatefulSet", "metadata": {"generation": 1}, "spec": {"replicas": 2},
            "status": {"observedGeneration": 1, "readyReplicas": 2, "updatedReplicas": 2, "currentRevision": "a", "updateRevision": "a"}});
        assert_eq!(assess(Some(&sts)).0, Health::Healthy);
        let mut rolling = sts.clone();
        rolling["status"]["updateRevision"] = json!("b");
        assert_eq!(assess(Some(&rolling)).0, Health::Progressing);
        let ds = json!({"kind": "DaemonSet", "status": {"desiredNumberScheduled": 3, "updatedNumberScheduled": 2, "numberAvailable": 3}});
        assert_eq!(assess(Some(&ds)).0, Health::Progressing);
        let failed = json!({"kind": "Job", "status": {"conditions": [{"type": "Failed", "status": "True"}]}});
        assert_eq!(assess(Some(&failed)).0, Health::Degraded);
        let done = json!({"kind": "Job", "status": {"conditions": [{"type": "Complete", "status": "True"}]}});
        assert_eq!(assess(Some(&done)).0, Health::Healthy);
        assert_eq!(
            assess(Some(&json!({"kind": "ConfigMap"}))).0,
            Health::Healthy
        );
    }
}
