//! argocd-image-updater's write-back file `.argocd-source-<app>.yaml`: Argo CD parameter
//! overrides for kustomize images and Helm parameters, in the format the updater writes.

use crate::yaml::edit::{IndentStyle, NewValue};
use crate::yaml::{Document, Editor, Node, Path, parse};
use crate::{Error, ImageChange, Outcome, finish, same_image, split_name};

/// One Helm parameter override.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HelmParameter {
    /// The values path, e.g. `image.tag`.
    pub name: String,
    /// The value.
    pub value: String,
}

/// Sets a kustomize image override (`kustomize.images`), creating the file's content if empty.
/// An entry is matched by its image name (the part before `=` when it renames the image).
pub fn set_argocd_source_image(
    src: &str,
    file: &str,
    change: &ImageChange,
) -> Result<Outcome, Error> {
    let name = change.new_name.as_deref().unwrap_or(&change.image);
    let wanted = if change.new_name.is_some() {
        format!("{}={name}{}", change.image, change.tag_suffix())
    } else {
        format!("{name}{}", change.tag_suffix())
    };
    if src.trim().is_empty() {
        // Rendered like every other new value: written bare, a name with `: `, ` #` or a
        // control character would make the file mean something else or not parse at all
        // (found by fuzz/fuzz_targets/yaml_edit.rs).
        return Ok(Outcome {
            text: format!(
                "kustomize:\n  images:\n  - {}\n",
                crate::yaml::scalar::render_new(&wanted)
            ),
            changed: true,
            previous: Vec::new(),
            lines: Vec::new(),
        });
    }
    let docs = parse(src, file)?;
    let style = IndentStyle::detect(src, &docs);
    let mut ed = Editor::new(src, file);
    let root = root_map(&docs, file)?;
    let base = Path::root(0);
    match root.entry("kustomize") {
        None => ed.insert_key(
            root,
            base,
            "kustomize",
            &NewValue::Map(vec![(
                "images".into(),
                NewValue::Seq(vec![NewValue::Scalar(wanted)]),
            )]),
            &style,
        )?,
        Some((_, k)) => match k.entry("images") {
            None => ed.insert_key(
                k,
                base.key("kustomize"),
                "images",
                &NewValue::Seq(vec![NewValue::Scalar(wanted)]),
                &style,
            )?,
            Some((key, images)) if images.is_null() => ed.fill_null(
                key,
                images,
                base.key("kustomize").key("images"),
                &NewValue::Seq(vec![NewValue::Scalar(wanted)]),
                &style,
            )?,
            Some((_, images)) => {
                let items = images.items().ok_or_else(|| Error::Shape {
                    file: file.to_owned(),
                    line: images.line,
                    what: "`kustomize.images` is not a list".to_owned(),
                })?;
                let path = base.key("kustomize").key("images");
                let found = items.iter().enumerate().find(|(_, item)| {
                    item.as_str().is_some_and(|s| {
                        let old = s.split_once('=').map_or(split_name(s).0, |(o, _)| o);
                        same_image(old, &change.image)
                    })
                });
                match found {
                    Some((i, item)) => ed.set_scalar(item, path.index(i), &wanted)?,
                    None => ed.push_item(images, path, &NewValue::Scalar(wanted), &style)?,
                }
            }
        },
    }
    finish(ed, &docs)
}

/// Sets Helm parameter overrides (`helm.parameters`), each `forcestring: true` as the updater
/// writes them, creating the file's content if empty.
pub fn set_argocd_source_helm(
    src: &str,
    file: &str,
    params: &[HelmParameter],
) -> Result<Outcome, Error> {
    let new_param = |p: &HelmParameter| {
        NewValue::Map(vec![
            ("forcestring".into(), NewValue::Raw("true".into())),
            ("name".into(), NewValue::Scalar(p.name.clone())),
            ("value".into(), NewValue::Scalar(p.value.clone())),
        ])
    };
    if src.trim().is_empty() {
        let mut text = String::from("helm:\n  parameters:\n");
        for p in params {
            text.push_str(&format!(
                "  - forcestring: true\n    name: {}\n    value: {}\n",
                crate::yaml::scalar::render_new(&p.name),
                crate::yaml::scalar::render_new(&p.value)
            ));
        }
        return Ok(Outcome {
            text,
            changed: true,
            previous: Vec::new(),
            lines: Vec::new(),
        });
    }
    let docs = parse(src, file)?;
    let style = IndentStyle::detect(src, &docs);
    let mut ed = Editor::new(src, file);
    let root = root_map(&docs, file)?;
    let base = Path::root(0);
    let helm = root.get("helm");
    let parameters = helm
        .and_then(|h| h.get("parameters"))
        .filter(|p| !p.is_null());
    match (helm, parameters) {
        (None, _) => ed.insert_key(
            root,
            base,
            "helm",
            &NewValue::Map(vec![(
                "parameters".into(),
                NewValue::Seq(params.iter().map(new_param).collect()),
            )]),
            &style,
        )?,
        (Some(h), None) => match h.entry("parameters") {
            Some((key, value)) => ed.fill_null(
                key,
                value,
                base.key("helm").key("parameters"),
                &NewValue::Seq(params.iter().map(new_param).collect()),
                &style,
            )?,
            None => ed.insert_key(
                h,
                base.key("helm"),
                "parameters",
                &NewValue::Seq(params.iter().map(new_param).collect()),
                &style,
            )?,
        },
        (Some(_), Some(list)) => {
            let items = list.items().ok_or_else(|| Error::Shape {
                file: file.to_owned(),
                line: list.line,
                what: "`helm.parameters` is not a list".to_owned(),
            })?;
            let path = base.key("helm").key("parameters");
            let mut pending = Vec::new();
            for p in params {
                let found = items.iter().enumerate().find(|(_, item)| {
                    item.get("name").and_then(Node::as_str) == Some(p.name.as_str())
                });
                match found {
                    Some((i, item)) => match item.get("value") {
                        Some(v) => ed.set_scalar(v, path.index(i).key("value"), &p.value)?,
                        None => ed.insert_key(
                            item,
                            path.index(i),
                            "value",
                            &NewValue::Scalar(p.value.clone()),
                            &style,
                        )?,
                    },
                    None => pending.push(p),
                }
            }
            if !pending.is_empty() {
                let new: Vec<NewValue> = pending.into_iter().map(new_param).collect();
                ed.push_items(list, path, &new, &style)?;
            }
        }
    }
    finish(ed, &docs)
}

fn root_map<'d>(docs: &'d [Document], file: &str) -> Result<&'d Node, Error> {
    docs.first()
        .and_then(|d| d.root.as_ref())
        .filter(|r| r.entries().is_some())
        .ok_or_else(|| Error::Shape {
            file: file.to_owned(),
            line: 1,
            what: "not an .argocd-source file: no top-level mapping".to_owned(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_file_reads_back_the_image_whatever_its_characters() {
        for image in ["app", "a: b", "x #y", "nul\0here", "'q", "{x}", "- d"] {
            let change = ImageChange {
                image: image.into(),
                new_name: None,
                tag: Some("1.0".into()),
                digest: None,
            };
            let out = set_argocd_source_image("", ".argocd-source-a.yaml", &change).unwrap();
            let docs = parse(&out.text, "f").unwrap();
            let root = docs[0].root.as_ref().unwrap();
            let item = &root
                .get("kustomize")
                .unwrap()
                .get("images")
                .unwrap()
                .items()
                .unwrap()[0];
            assert_eq!(
                item.as_str(),
                Some(format!("{image}:1.0").as_str()),
                "{:?}",
                out.text
            );
        }
    }

    fn change(image: &str, tag: &str) -> ImageChange {
        ImageChange {
            image: image.into(),
            new_name: None,
            tag: Some(tag.into()),
            digest: None,
        }
    }

    #[test]
    fn creates_and_updates_kustomize_images() {
        let out = set_argocd_source_image("", "f", &change("nginx", "1.2.3")).unwrap();
        assert_eq!(out.text, "kustomize:\n  images:\n  - nginx:1.2.3\n");
        let out = set_argocd_source_image(&out.text, "f", &change("nginx", "1.2.4")).unwrap();
        assert_eq!(out.text, "kustomize:\n  images:\n  - nginx:1.2.4\n");
        let out = set_argocd_source_image(&out.text, "f", &change("redis", "7")).unwrap();
        assert_eq!(
            out.text,
            "kustomize:\n  images:\n  - nginx:1.2.4\n  - redis:\"7\"\n".replace(":\"7\"", ":7")
        );
    }

    #[test]
    fn helm_parameters() {
        let p = [HelmParameter {
            name: "image.tag".into(),
            value: "1.10".into(),
        }];
        let out = set_argocd_source_helm("", "f", &p).unwrap();
        assert_eq!(
            out.text,
            "helm:\n  parameters:\n  - forcestring: true\n    name: image.tag\n    value: \"1.10\"\n"
        );
        let p2 = [HelmParameter {
            name: "image.tag".into(),
            value: "1.11".into(),
        }];
        let out = set_argocd_source_helm(&out.text, "f", &p2).unwrap();
        assert!(out.text.contains("value: \"1.11\""));
    }
}
