//! The YAML editor used for write-back never panics, and an edit never changes a byte outside the
//! edited value.
//!
//! Input: `mode byte`, then `path\nvalue\n`, then the YAML text. Mode picks the entry point:
//! a Helm values path (whose old node span is known, so the untouched prefix and suffix are
//! compared byte for byte), plain workloads (only `image:` scalars may change: every other line
//! must be identical), or the generic `set_image` dispatch (kustomization, Flux markers,
//! `.argocd-source`), which must at least leave a file that parses.
#![no_main]

use driftwatch_manifest::{ImageChange, Target, set_helm_value, set_image, yaml};
use libfuzzer_sys::fuzz_target;

/// The node at a dotted path of plain keys in the first non-empty document, as the Helm editor
/// resolves it.
fn lookup<'a>(docs: &'a [yaml::Document], path: &str) -> Option<&'a yaml::Node> {
    let mut node = docs.iter().find_map(|d| d.root.as_ref())?;
    for key in path.split('.') {
        node = node.get(key)?;
    }
    Some(node)
}

/// A path the Helm editor reads as plain keys only (no escapes, no `[i]` indices).
fn plain_keys(path: &str) -> bool {
    !path.is_empty()
        && path.split('.').all(|k| {
            !k.is_empty()
                && k.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        })
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let mut parts = text.splitn(3, '\n');
    let (Some(path), Some(value), Some(src)) = (parts.next(), parts.next(), parts.next()) else {
        return;
    };
    match mode % 3 {
        0 => {
            let Ok(out) = set_helm_value(src, "values.yaml", path, value) else {
                return;
            };
            if !out.changed {
                assert_eq!(out.text, src, "unchanged outcome must return the input");
                return;
            }
            // The result must parse: a write-back never leaves a broken file.
            let after = yaml::parse(&out.text, "values.yaml");
            assert!(after.is_ok(), "edited text does not parse: {:?}", out.text);
            let docs = yaml::parse(src, "values.yaml").expect("the editor parsed it");
            if !plain_keys(path) {
                return;
            }
            let Some(node) = lookup(&docs, path) else {
                return;
            };
            if !matches!(node.kind, yaml::Kind::Scalar { .. }) {
                return;
            }
            // A replaced scalar: everything before and after its span is byte-identical.
            let tail = src.len() - node.end;
            assert!(
                out.text.len() >= node.start + tail,
                "edit shrank the untouched parts"
            );
            assert_eq!(
                &out.text[..node.start],
                &src[..node.start],
                "bytes before the value changed"
            );
            assert_eq!(
                &out.text[out.text.len() - tail..],
                &src[node.end..],
                "bytes after the value changed"
            );
        }
        1 => {
            let change = ImageChange {
                image: path.to_owned(),
                new_name: None,
                tag: Some(value.to_owned()),
                digest: None,
            };
            let Ok(out) = driftwatch_manifest::set_workload_images(src, "deploy.yaml", &change)
            else {
                return;
            };
            if !out.changed {
                assert_eq!(out.text, src);
                return;
            }
            assert!(
                yaml::parse(&out.text, "deploy.yaml").is_ok(),
                "edited text does not parse"
            );
            // Only whole `image:` values are replaced; lines outside the reported ones stay.
            let old: Vec<&str> = src.split('\n').collect();
            let new: Vec<&str> = out.text.split('\n').collect();
            if old.len() == new.len() {
                for (i, (a, b)) in old.iter().zip(&new).enumerate() {
                    if a != b {
                        assert!(
                            out.lines.contains(&(i + 1)),
                            "line {} changed but was not edited",
                            i + 1
                        );
                    }
                }
            }
        }
        _ => {
            let name = if mode & 0x80 != 0 {
                "kustomization.yaml"
            } else {
                ".argocd-source-app.yaml"
            };
            let change = ImageChange {
                image: path.to_owned(),
                new_name: None,
                tag: Some(value.to_owned()),
                digest: None,
            };
            let Ok(out) = set_image(src, name, &Target::default(), &change) else {
                return;
            };
            if out.changed {
                assert!(
                    yaml::parse(&out.text, name).is_ok(),
                    "edited text does not parse"
                );
            } else {
                assert_eq!(out.text, src);
            }
        }
    }
});
