//! What runs live for each image: the containers of an application's workloads as the cluster
//! has them, and the image digests their pods actually run — so `check` can tell Git's tag from
//! the cluster's, and a mutable tag whose pods still run an older digest.

use driftwatch_cluster::{KubeClient, ObjectKey};
use driftwatch_policy::ImageRef;
use serde_json::Value;

use crate::error::Error;

/// One container of a live workload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveContainer {
    /// The workload.
    pub object: ObjectKey,
    /// Container name.
    pub container: String,
    /// The image the workload's spec names.
    pub image: String,
    /// Per pod of the workload, the digest its container runs (`sha256:…`), when reported.
    pub pod_digests: Vec<Option<String>>,
}

/// Where a kind keeps its pod template's spec.
fn pod_spec(obj: &Value) -> Option<&Value> {
    match obj["kind"].as_str()? {
        "Pod" => obj.get("spec"),
        "CronJob" => obj.pointer("/spec/jobTemplate/spec/template/spec"),
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" => {
            obj.pointer("/spec/template/spec")
        }
        _ => None,
    }
}

/// The digest in a container status' `imageID` (`docker-pullable://repo@sha256:…`,
/// `repo@sha256:…` or a bare `sha256:…`).
pub fn digest_of_image_id(id: &str) -> Option<String> {
    let d = id.rsplit_once('@').map_or(id, |(_, d)| d);
    d.starts_with("sha256:").then(|| d.to_owned())
}

/// The containers of the live counterparts of `rendered`'s workloads, with their pods' digests.
pub async fn containers(
    client: &KubeClient,
    rendered: &[Value],
    namespace: &str,
) -> Result<Vec<LiveContainer>, Error> {
    let mut out = Vec::new();
    for obj in rendered {
        if pod_spec(obj).is_none() {
            continue;
        }
        let Some(live) = client.get(obj, namespace).await? else {
            continue;
        };
        let Some(spec) = pod_spec(&live) else {
            continue;
        };
        let ns = live
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or(namespace)
            .to_owned();
        let pods = match live
            .pointer("/spec/selector/matchLabels")
            .and_then(Value::as_object)
        {
            Some(labels) if !labels.is_empty() => {
                let selector: Vec<String> = labels
                    .iter()
                    .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                    .collect();
                client
                    .list_selected("v1", "Pod", &ns, &selector.join(","))
                    .await?
                    .0
            }
            _ if live["kind"] == "Pod" => vec![live.clone()],
            _ => Vec::new(),
        };
        for c in spec["containers"]
            .as_array()
            .into_iter()
            .chain(spec["initContainers"].as_array())
            .flatten()
        {
            let name = c["name"].as_str().unwrap_or("").to_owned();
            let pod_digests = pods
                .iter()
                .map(|p| {
                    p.pointer("/status/containerStatuses")
                        .and_then(Value::as_array)
                        .into_iter()
                        .chain(
                            p.pointer("/status/initContainerStatuses")
                                .and_then(Value::as_array),
                        )
                        .flatten()
                        .find(|s| s["name"].as_str() == Some(name.as_str()))
                        .and_then(|s| s["imageID"].as_str())
                        .and_then(digest_of_image_id)
                })
                .collect();
            out.push(LiveContainer {
                object: ObjectKey::of(&live),
                container: name,
                image: c["image"].as_str().unwrap_or("").to_owned(),
                pod_digests,
            });
        }
    }
    Ok(out)
}

/// The live containers that run `image` (same registry and repository).
pub fn running<'a>(image: &ImageRef, live: &'a [LiveContainer]) -> Vec<&'a LiveContainer> {
    live.iter()
        .filter(|c| ImageRef::parse(&c.image).is_ok_and(|r| r.name() == image.name()))
        .collect()
}

/// The live value for Git's notation: `tag`, or `tag@digest` when the spec pins a digest.
pub fn live_value(c: &LiveContainer) -> String {
    match ImageRef::parse(&c.image) {
        Ok(r) => match (r.tag(), r.digest()) {
            (Some(t), Some(d)) => format!("{t}@{d}"),
            (Some(t), None) => t.to_owned(),
            (None, Some(d)) => format!("@{d}"),
            (None, None) => "latest".to_owned(),
        },
        Err(_) => c.image.clone(),
    }
}

/// Pods whose container runs another digest than `digest`.
pub fn stale_pods(c: &LiveContainer, digest: &str) -> usize {
    c.pod_digests
        .iter()
        .filter(|d| d.as_deref().is_some_and(|d| d != digest))
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn image_ids_and_matching() {
        assert_eq!(
            digest_of_image_id("docker-pullable://reg.local/shop/backend@sha256:abc").as_deref(),
            Some("sha256:abc")
        );
        assert_eq!(
            digest_of_image_id("sha256:def").as_deref(),
            Some("sha256:def")
        );
        assert_eq!(digest_of_image_id(""), None);
        let c = |image: &str, digests: &[Option<&str>]| LiveContainer {
            object: ObjectKey::of(
                &json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "b"}}),
            ),
            container: "b".to_owned(),
            image: image.to_owned(),
            pod_digests: digests.iter().map(|d| d.map(str::to_owned)).collect(),
        };
        let live = [
            c(
                "reg.local/shop/backend:v1.1.0",
                &[Some("sha256:new"), Some("sha256:old"), None],
            ),
            c("nginx:1.27", &[]),
        ];
        let image = ImageRef::parse("reg.local/shop/backend").unwrap();
        let found = running(&image, &live);
        assert_eq!(found.len(), 1);
        assert_eq!(live_value(found[0]), "v1.1.0");
        assert_eq!(
            stale_pods(found[0], "sha256:new"),
            1,
            "unknown digests are not counted"
        );
        let hub = ImageRef::parse("docker.io/library/nginx").unwrap();
        assert_eq!(live_value(running(&hub, &live)[0]), "1.27");
    }
}
