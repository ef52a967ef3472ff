//! kustomization `images:` entries: `newTag`, `newName` and `digest`, matched by `name`.

use crate::yaml::edit::{IndentStyle, NewValue};
use crate::yaml::{Editor, Node, Path, parse};
use crate::{Error, ImageChange, Outcome, finish, same_image};

/// Sets the image in a kustomization: edits the `images:` entry whose `name` is the image, adds
/// the entry, or adds `images:` itself, in the file's own indentation style. With a digest,
/// `digest` is written beside `newTag` (as `kustomize edit set image name:tag@digest` does);
/// without one, a stale `digest` is removed, since kustomize would let it override the tag.
pub fn set_kustomize_image(src: &str, file: &str, change: &ImageChange) -> Result<Outcome, Error> {
    let docs = parse(src, file)?;
    let style = IndentStyle::detect(src, &docs);
    let mut ed = Editor::new(src, file);
    let doc_index = docs
        .iter()
        .position(|d| {
            d.root
                .as_ref()
                .and_then(|r| r.get("kind"))
                .and_then(Node::as_str)
                .is_some_and(|k| k == "Kustomization" || k == "Component")
        })
        .or_else(|| {
            docs.iter()
                .position(|d| d.root.as_ref().is_some_and(|r| r.entries().is_some()))
        })
        .ok_or_else(|| Error::Shape {
            file: file.to_owned(),
            line: 1,
            what: "not a kustomization: no top-level mapping".to_owned(),
        })?;
    let Some(root) = docs[doc_index]
        .root
        .as_ref()
        .filter(|r| r.entries().is_some())
    else {
        return Err(Error::Shape {
            file: file.to_owned(),
            line: 1,
            what: "not a kustomization: no top-level mapping".to_owned(),
        });
    };
    let root_path = Path::root(doc_index);
    let images_path = root_path.key("images");

    let new_entry = || {
        let mut fields = vec![("name".to_owned(), NewValue::Scalar(change.image.clone()))];
        if let Some(n) = &change.new_name {
            fields.push(("newName".to_owned(), NewValue::Scalar(n.clone())));
        }
        if let Some(t) = &change.tag {
            fields.push(("newTag".to_owned(), NewValue::Scalar(t.clone())));
        }
        if let Some(d) = &change.digest {
            fields.push(("digest".to_owned(), NewValue::Scalar(d.to_string())));
        }
        NewValue::Map(fields)
    };

    match root.entry("images") {
        None => {
            ed.append_root_key(
                root,
                root_path,
                "images",
                &NewValue::Seq(vec![new_entry()]),
                &style,
            )?;
        }
        Some((key, value)) if value.is_null() => {
            ed.fill_null(
                key,
                value,
                images_path,
                &NewValue::Seq(vec![new_entry()]),
                &style,
            )?;
        }
        Some((_, images)) => {
            let items = images.items().ok_or_else(|| Error::Shape {
                file: file.to_owned(),
                line: images.line,
                what: "`images` is not a list".to_owned(),
            })?;
            let found = items.iter().enumerate().find(|(_, item)| {
                item.get("name")
                    .and_then(Node::as_str)
                    .is_some_and(|n| same_image(n, &change.image))
            });
            match found {
                None => ed.push_item(images, images_path, &new_entry(), &style)?,
                Some((i, entry)) => {
                    if entry.entries().is_none() {
                        return Err(Error::Shape {
                            file: file.to_owned(),
                            line: entry.line,
                            what: "an `images` entry is not a mapping".to_owned(),
                        });
                    }
                    let path = images_path.index(i);
                    set_or_insert(
                        &mut ed,
                        entry,
                        &path,
                        "newName",
                        change.new_name.as_deref(),
                        &style,
                    )?;
                    set_or_insert(
                        &mut ed,
                        entry,
                        &path,
                        "newTag",
                        change.tag.as_deref(),
                        &style,
                    )?;
                    match &change.digest {
                        Some(d) => {
                            set_or_insert(
                                &mut ed,
                                entry,
                                &path,
                                "digest",
                                Some(&d.to_string()),
                                &style,
                            )?;
                        }
                        None if change.tag.is_some() => {
                            ed.remove_entry(entry, path.clone(), "digest")?
                        }
                        None => {}
                    }
                }
            }
        }
    }
    finish(ed, &docs)
}

fn set_or_insert(
    ed: &mut Editor<'_>,
    map: &Node,
    path: &Path,
    key: &str,
    value: Option<&str>,
    style: &IndentStyle,
) -> Result<(), Error> {
    let Some(value) = value else { return Ok(()) };
    match map.get(key) {
        Some(node) => ed.set_scalar(node, path.key(key), value),
        None => ed.insert_key(
            map,
            path.clone(),
            key,
            &NewValue::Scalar(value.to_owned()),
            style,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(image: &str, tag: &str) -> ImageChange {
        ImageChange {
            image: image.to_owned(),
            new_name: None,
            tag: Some(tag.to_owned()),
            digest: None,
        }
    }

    fn edit(src: &str, c: &ImageChange) -> String {
        set_kustomize_image(src, "kustomization.yaml", c)
            .unwrap()
            .text
    }

    #[test]
    fn replaces_only_the_tag() {
        let src = "images:\n- name: backend # api\n  newTag: v1.0.0 # bumped by bot\n";
        assert_eq!(
            edit(src, &change("backend", "v1.0.1")),
            "images:\n- name: backend # api\n  newTag: v1.0.1 # bumped by bot\n"
        );
    }

    #[test]
    fn adds_missing_pieces_in_file_style() {
        let src = "resources:\n  - a.yaml\nimages:\n  - name: backend\n";
        assert_eq!(
            edit(src, &change("backend", "v2")),
            "resources:\n  - a.yaml\nimages:\n  - name: backend\n    newTag: v2\n"
        );
        let src = "resources:\n  - a.yaml\n";
        assert_eq!(
            edit(src, &change("backend", "v2")),
            "resources:\n  - a.yaml\nimages:\n  - name: backend\n    newTag: v2\n"
        );
        let src = "resources:\n- a.yaml\nimages:\n- name: web\n  newTag: \"1\"";
        assert_eq!(
            edit(src, &change("backend", "1.10")),
            "resources:\n- a.yaml\nimages:\n- name: web\n  newTag: \"1\"\n- name: backend\n  newTag: \"1.10\""
        );
    }

    #[test]
    fn unchanged_when_already_set() {
        let src = "images:\n- name: backend\n  newTag: v1\n";
        let out = set_kustomize_image(src, "k", &change("backend", "v1")).unwrap();
        assert!(!out.changed);
        assert_eq!(out.text, src);
    }
}
