//! Helm values files: a value by dotted path (`image.tag`, `sidecars[0].image.tag`).

use crate::yaml::edit::{IndentStyle, NewValue};
use crate::yaml::{Editor, Node, Path, Seg, parse};
use crate::{Error, Outcome, finish};

/// Parses `a.b[0].c`; a dot inside a key is written `\.`.
pub fn parse_path(path: &str) -> Result<Vec<Seg>, Error> {
    let bad = |reason: &str| Error::BadPath {
        path: path.to_owned(),
        reason: reason.to_owned(),
    };
    let mut segs = Vec::new();
    let mut key = String::new();
    let mut chars = path.chars().peekable();
    let mut after_index = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' => key.push(chars.next().ok_or_else(|| bad("ends with a backslash"))?),
            '.' => {
                if key.is_empty() && !after_index {
                    return Err(bad("empty key"));
                }
                if !key.is_empty() {
                    segs.push(Seg::Key(std::mem::take(&mut key)));
                }
                after_index = false;
            }
            '[' => {
                if !key.is_empty() {
                    segs.push(Seg::Key(std::mem::take(&mut key)));
                }
                let mut digits = String::new();
                for d in chars.by_ref() {
                    if d == ']' {
                        break;
                    }
                    digits.push(d);
                }
                let i = digits.parse().map_err(|_| bad("expected [number]"))?;
                segs.push(Seg::Index(i));
                after_index = true;
            }
            c => {
                if after_index {
                    return Err(bad("expected '.' or '[' after an index"));
                }
                key.push(c);
            }
        }
    }
    if !key.is_empty() {
        segs.push(Seg::Key(key));
    } else if segs.is_empty() || path.ends_with('.') {
        return Err(bad("empty key"));
    }
    Ok(segs)
}

/// Sets the scalar at `path` to `value`, creating missing mapping keys (never missing list items).
pub fn set_helm_value(src: &str, file: &str, path: &str, value: &str) -> Result<Outcome, Error> {
    let segs = parse_path(path)?;
    let docs = parse(src, file)?;
    let style = IndentStyle::detect(src, &docs);
    let mut ed = Editor::new(src, file);
    let doc = docs
        .iter()
        .position(|d| d.root.is_some())
        .ok_or_else(|| Error::Shape {
            file: file.to_owned(),
            line: 1,
            what: "the values file is empty".to_owned(),
        })?;
    let mut node: &Node = docs[doc].root.as_ref().ok_or_else(|| Error::Shape {
        file: file.to_owned(),
        line: 1,
        what: "the values file is empty".to_owned(),
    })?;
    let mut at = Path::root(doc);
    for (i, seg) in segs.iter().enumerate() {
        match seg {
            Seg::Key(k) => {
                if node.entries().is_none() {
                    return Err(shape(
                        file,
                        node,
                        &format!("{} is not a mapping", show(&segs[..i])),
                    ));
                }
                match node.entry(k) {
                    Some((key, v)) if v.is_null() && i + 1 < segs.len() => {
                        let nested = nest(&segs[i + 1..], value, file, path)?;
                        ed.fill_null(key, v, at.key(k), &nested, &style)?;
                        return finish(ed, &docs);
                    }
                    Some((_, v)) => {
                        node = v;
                        at = at.key(k);
                    }
                    None => {
                        let nested = nest(&segs[i + 1..], value, file, path)?;
                        ed.insert_key(node, at, k, &nested, &style)?;
                        return finish(ed, &docs);
                    }
                }
            }
            Seg::Index(idx) => {
                let items = node.items().ok_or_else(|| {
                    shape(file, node, &format!("{} is not a list", show(&segs[..i])))
                })?;
                node = items.get(*idx).ok_or_else(|| {
                    shape(
                        file,
                        node,
                        &format!("{} has no item [{idx}]", show(&segs[..i])),
                    )
                })?;
                at = at.index(*idx);
            }
        }
    }
    if node.as_str().is_none() {
        return Err(shape(file, node, &format!("{path} is not a single value")));
    }
    ed.set_scalar(node, at, value)?;
    finish(ed, &docs)
}

/// The value to insert for the remaining path: nested mappings ending in the scalar.
fn nest(rest: &[Seg], value: &str, file: &str, path: &str) -> Result<NewValue, Error> {
    let mut v = NewValue::Scalar(value.to_owned());
    for seg in rest.iter().rev() {
        match seg {
            Seg::Key(k) => v = NewValue::Map(vec![(k.clone(), v)]),
            Seg::Index(_) => {
                return Err(Error::NotFound {
                    file: file.to_owned(),
                    what: format!("{path}: a list item that does not exist cannot be created"),
                });
            }
        }
    }
    Ok(v)
}

fn shape(file: &str, node: &Node, what: &str) -> Error {
    Error::Shape {
        file: file.to_owned(),
        line: node.line,
        what: what.to_owned(),
    }
}

fn show(segs: &[Seg]) -> String {
    let mut s = String::new();
    for seg in segs {
        match seg {
            Seg::Key(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k);
            }
            Seg::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    if s.is_empty() {
        "the document".to_owned()
    } else {
        s
    }
}

/// Reads the scalar at `path`, if it exists.
pub fn get_helm_value(src: &str, file: &str, path: &str) -> Result<Option<String>, Error> {
    let segs = parse_path(path)?;
    let docs = parse(src, file)?;
    let Some(mut node) = docs.iter().find_map(|d| d.root.as_ref()) else {
        return Ok(None);
    };
    for seg in &segs {
        let next = match seg {
            Seg::Key(k) => node.get(k),
            Seg::Index(i) => node.items().and_then(|items| items.get(*i)),
        };
        match next {
            Some(n) => node = n,
            None => return Ok(None),
        }
    }
    Ok(node.as_str().map(str::to_owned))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(
            parse_path("sidecars[0].image.tag").unwrap(),
            vec![
                Seg::Key("sidecars".into()),
                Seg::Index(0),
                Seg::Key("image".into()),
                Seg::Key("tag".into())
            ]
        );
        assert_eq!(parse_path(r"a\.b.c").unwrap().len(), 2);
        for bad in ["", ".a", "a..b", "a[x]", "a[0]b", "a."] {
            assert!(parse_path(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn sets_nested_and_creates_missing() {
        let src = "image:\n    repository: nginx\n    tag: \"1.25\"  # pinned\nreplicas: 2\n";
        let out = set_helm_value(src, "values.yaml", "image.tag", "1.26").unwrap();
        assert_eq!(
            out.text,
            "image:\n    repository: nginx\n    tag: \"1.26\"  # pinned\nreplicas: 2\n"
        );
        let out = set_helm_value(src, "values.yaml", "image.pullPolicy", "Always").unwrap();
        assert_eq!(
            out.text,
            "image:\n    repository: nginx\n    tag: \"1.25\"  # pinned\n    pullPolicy: Always\nreplicas: 2\n"
        );
        let out = set_helm_value(src, "values.yaml", "sidecar.image.tag", "v1").unwrap();
        assert_eq!(
            out.text,
            format!("{src}sidecar:\n    image:\n        tag: v1\n")
        );
    }
}
