//! `image:` fields of containers in plain manifests: Pod, Deployment, StatefulSet, DaemonSet,
//! ReplicaSet, ReplicationController, Job and CronJob, init and ephemeral containers included.

use crate::yaml::{Editor, Node, Path, parse};
use crate::{Error, ImageChange, Outcome, finish, same_image, split_name};

/// Where each kind keeps its pod spec.
fn pod_spec_path(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "Pod" => &["spec"],
        "Deployment"
        | "StatefulSet"
        | "DaemonSet"
        | "ReplicaSet"
        | "ReplicationController"
        | "Job" => &["spec", "template", "spec"],
        "CronJob" => &["spec", "jobTemplate", "spec", "template", "spec"],
        _ => return None,
    })
}

const CONTAINER_LISTS: [&str; 3] = ["containers", "initContainers", "ephemeralContainers"];

/// Points every container running `change.image` (any tag) at the new tag and digest, keeping
/// the name as written. Fails with `NotFound` when no container runs that image.
pub fn set_workload_images(src: &str, file: &str, change: &ImageChange) -> Result<Outcome, Error> {
    let docs = parse(src, file)?;
    let mut ed = Editor::new(src, file);
    let mut found = 0;
    for (d, doc) in docs.iter().enumerate() {
        let Some(root) = &doc.root else { continue };
        let Some(spec_path) = root
            .get("kind")
            .and_then(Node::as_str)
            .and_then(pod_spec_path)
        else {
            continue;
        };
        let mut node = root;
        let mut path = Path::root(d);
        let mut ok = true;
        for key in spec_path {
            match node.get(key) {
                Some(n) => {
                    node = n;
                    path = path.key(key);
                }
                None => {
                    ok = false;
                    break;
                }
            }
        }
        if !ok {
            continue;
        }
        for list in CONTAINER_LISTS {
            let Some(items) = node.get(list).and_then(Node::items) else {
                continue;
            };
            for (i, container) in items.iter().enumerate() {
                let Some(image) = container.get("image") else {
                    continue;
                };
                let Some(current) = image.as_str() else {
                    continue;
                };
                let (name, _) = split_name(current);
                if !same_image(name, &change.image) {
                    continue;
                }
                found += 1;
                let new_name = change.new_name.as_deref().unwrap_or(name);
                let wanted = format!("{new_name}{}", change.tag_suffix());
                ed.set_scalar(image, path.key(list).index(i).key("image"), &wanted)?;
            }
        }
    }
    if found == 0 {
        return Err(Error::NotFound {
            file: file.to_owned(),
            what: format!("no container runs image {}", change.image),
        });
    }
    finish(ed, &docs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn updates_every_container_of_the_image() {
        let src = "apiVersion: apps/v1\nkind: Deployment\nspec:\n  template:\n    spec:\n      initContainers:\n      - name: migrate\n        image: backend:v1.0.0\n      containers:\n      - name: api\n        image: \"backend:v1.0.0\" # main\n      - name: proxy\n        image: envoy:1.29\n";
        let change = ImageChange {
            image: "backend".into(),
            new_name: None,
            tag: Some("v1.0.1".into()),
            digest: None,
        };
        let out = set_workload_images(src, "d.yaml", &change).unwrap();
        assert_eq!(out.text, src.replace("backend:v1.0.0", "backend:v1.0.1"));
        let missing = ImageChange {
            image: "redis".into(),
            ..change
        };
        assert!(matches!(
            set_workload_images(src, "d.yaml", &missing),
            Err(Error::NotFound { .. })
        ));
    }
}
