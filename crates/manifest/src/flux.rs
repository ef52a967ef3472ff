//! Flux image-automation setter markers: `# {"$imagepolicy": "ns:name"}` and its `:tag`,
//! `:name` and `:digest` forms, on the line of the value they set.

use std::collections::BTreeMap;

use crate::yaml::{Document, Editor, Kind, Node, Path, parse};
use crate::{Error, ImageChange, Outcome, finish, same_image, split_name};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    Full,
    Tag,
    Name,
    Digest,
}

struct Marker<'d> {
    node: &'d Node,
    path: Path,
    field: Field,
}

/// Reads the policy named by a setter comment on the rest of a line, if there is one.
fn marker_on(rest_of_line: &str) -> Option<(String, Field)> {
    let comment = rest_of_line.split_once('#')?.1.trim();
    let body = comment.strip_prefix('{')?.trim_start();
    let body = body.strip_prefix("\"$imagepolicy\"")?.trim_start();
    let body = body.strip_prefix(':')?.trim_start();
    let body = body.strip_prefix('"')?;
    let (policy, tail) = body.split_once('"')?;
    if !tail.trim_start().starts_with('}') {
        return None;
    }
    let parts: Vec<&str> = policy.split(':').collect();
    let (ns_name, field) = match parts.as_slice() {
        [ns, name] => (format!("{ns}:{name}"), Field::Full),
        [ns, name, f] => (
            format!("{ns}:{name}"),
            match *f {
                "tag" => Field::Tag,
                "name" => Field::Name,
                "digest" => Field::Digest,
                _ => return None,
            },
        ),
        _ => return None,
    };
    Some((ns_name, field))
}

fn collect<'d>(src: &str, docs: &'d [Document]) -> Vec<(String, Marker<'d>)> {
    fn walk<'d>(src: &str, n: &'d Node, path: Path, out: &mut Vec<(String, Marker<'d>)>) {
        match &n.kind {
            Kind::Scalar { .. } => {
                let line_end = src[n.end..].find('\n').map_or(src.len(), |i| n.end + i);
                if let Some((policy, field)) = marker_on(&src[n.end..line_end]) {
                    out.push((
                        policy,
                        Marker {
                            node: n,
                            path,
                            field,
                        },
                    ));
                }
            }
            Kind::Map(entries) => {
                for (k, v) in entries {
                    walk(src, v, path.key(k.as_str().unwrap_or("")), out);
                }
            }
            Kind::Seq(items) => {
                for (i, item) in items.iter().enumerate() {
                    walk(src, item, path.index(i), out);
                }
            }
            Kind::Alias => {}
        }
    }
    let mut out = Vec::new();
    for (d, doc) in docs.iter().enumerate() {
        if let Some(root) = &doc.root {
            walk(src, root, Path::root(d), &mut out);
        }
    }
    out
}

/// True when the file has any setter marker.
pub fn has_flux_markers(src: &str) -> bool {
    src.contains("$imagepolicy")
}

/// Updates the values marked for `policy` (`ns:name`), or, without one, for every policy whose
/// marked image is `change.image`. Fails with `NotFound` when no marker applies.
pub fn set_flux_markers(
    src: &str,
    file: &str,
    change: &ImageChange,
    policy: Option<&str>,
) -> Result<Outcome, Error> {
    let docs = parse(src, file)?;
    let markers = collect(src, &docs);
    let mut groups: BTreeMap<&str, Vec<&Marker<'_>>> = BTreeMap::new();
    for (p, m) in &markers {
        groups.entry(p.as_str()).or_default().push(m);
    }
    let mut ed = Editor::new(src, file);
    let mut applied = 0;
    for (name, group) in groups {
        let relevant = match policy {
            Some(p) => p == name,
            None => group.iter().any(|m| {
                let value = m.node.as_str().unwrap_or("");
                match m.field {
                    Field::Full => same_image(split_name(value).0, &change.image),
                    Field::Name => same_image(value, &change.image),
                    _ => false,
                }
            }),
        };
        if !relevant {
            continue;
        }
        applied += 1;
        for m in group {
            let value = m.node.as_str().unwrap_or("");
            let wanted = match m.field {
                Field::Full => {
                    let old_name = split_name(value).0;
                    let base = change
                        .new_name
                        .as_deref()
                        .unwrap_or(if old_name.is_empty() {
                            &change.image
                        } else {
                            old_name
                        });
                    Some(format!("{base}{}", change.tag_suffix()))
                }
                Field::Tag => change.tag.clone(),
                Field::Name => change.new_name.clone(),
                Field::Digest => change.digest.as_ref().map(ToString::to_string),
            };
            if let Some(w) = wanted {
                ed.set_scalar(m.node, m.path.clone(), &w)?;
            }
        }
    }
    if applied == 0 {
        return Err(Error::NotFound {
            file: file.to_owned(),
            what: match policy {
                Some(p) => format!("no $imagepolicy marker for {p}"),
                None => format!("no $imagepolicy marker sets image {}", change.image),
            },
        });
    }
    finish(ed, &docs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_are_read() {
        assert_eq!(
            marker_on(r#" # {"$imagepolicy": "flux-system:podinfo"}"#),
            Some(("flux-system:podinfo".into(), Field::Full))
        );
        assert_eq!(
            marker_on(r#"  #{"$imagepolicy":"apps:web:tag"}"#),
            Some(("apps:web".into(), Field::Tag))
        );
        assert_eq!(marker_on("# plain comment"), None);
        assert_eq!(marker_on(r#"# {"$imagepolicy": "a:b:bogus"}"#), None);
    }

    #[test]
    fn full_and_split_forms() {
        let src = "spec:\n  containers:\n  - image: ghcr.io/org/podinfo:5.0.0 # {\"$imagepolicy\": \"flux-system:podinfo\"}\n";
        let change = ImageChange {
            image: "ghcr.io/org/podinfo".into(),
            new_name: None,
            tag: Some("5.0.3".into()),
            digest: None,
        };
        let out = set_flux_markers(src, "f", &change, None).unwrap();
        assert_eq!(out.text, src.replace("5.0.0", "5.0.3"));

        let src = "image:\n  repository: ghcr.io/org/podinfo # {\"$imagepolicy\": \"flux-system:podinfo:name\"}\n  tag: 5.0.0 # {\"$imagepolicy\": \"flux-system:podinfo:tag\"}\n";
        let out = set_flux_markers(src, "f", &change, None).unwrap();
        assert_eq!(out.text, src.replace("5.0.0", "5.0.3"));
        let other = ImageChange {
            image: "nginx".into(),
            ..change.clone()
        };
        assert!(set_flux_markers(src, "f", &other, None).is_err());
        assert!(set_flux_markers(src, "f", &other, Some("flux-system:podinfo")).is_ok());
    }
}
