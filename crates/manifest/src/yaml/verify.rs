//! Proof that an edit changed only what it meant to: both versions are parsed and compared leaf
//! by leaf, with the intended paths set aside.

use super::edit::{Intent, Path, Seg};
use super::tree::{Document, Kind, Node, Style};
use crate::error::Error;

#[derive(Debug, PartialEq, Eq)]
enum Leaf {
    /// A scalar's text and whether it was plain (which decides its resolved type).
    Scalar(String, bool),
    EmptyMap,
    EmptySeq,
    Alias,
}

fn flatten(docs: &[Document]) -> Vec<(Path, Leaf)> {
    fn walk(n: &Node, path: Path, out: &mut Vec<(Path, Leaf)>) {
        match &n.kind {
            Kind::Scalar { value, style } => {
                out.push((path, Leaf::Scalar(value.clone(), *style == Style::Plain)));
            }
            Kind::Alias => out.push((path, Leaf::Alias)),
            Kind::Map(entries) if entries.is_empty() => out.push((path, Leaf::EmptyMap)),
            Kind::Seq(items) if items.is_empty() => out.push((path, Leaf::EmptySeq)),
            Kind::Map(entries) => {
                for (k, v) in entries {
                    let key = k.as_str().unwrap_or("<complex key>");
                    walk(v, path.key(key), out);
                }
            }
            Kind::Seq(items) => {
                for (i, item) in items.iter().enumerate() {
                    walk(item, path.index(i), out);
                }
            }
        }
    }
    let mut out = Vec::new();
    for (i, d) in docs.iter().enumerate() {
        if let Some(root) = &d.root {
            walk(root, Path::root(i), &mut out);
        }
    }
    out
}

fn under(path: &Path, prefix: &Path) -> bool {
    path.doc == prefix.doc && path.segs.starts_with(&prefix.segs)
}

/// Re-parses `after` and checks it against `before` and the intents. `file` names the file.
pub fn verify(
    before: &[Document],
    after_src: &str,
    intents: &[Intent],
    file: &str,
) -> Result<(), Error> {
    let after = super::tree::parse(after_src, file).map_err(|e| Error::Verify {
        file: file.to_owned(),
        detail: format!("the edited text does not parse: {e}"),
    })?;
    let fail = |detail: String| Error::Verify {
        file: file.to_owned(),
        detail,
    };
    if before.len() != after.len() {
        return Err(fail(format!(
            "document count changed from {} to {}",
            before.len(),
            after.len()
        )));
    }
    let (old, new) = (flatten(before), flatten(&after));
    let touched: Vec<&Path> = intents
        .iter()
        .map(|i| match i {
            Intent::Set(p, _) | Intent::Added(p) | Intent::Removed(p) => p,
        })
        .collect();
    let keep = |(p, _): &&(Path, Leaf)| !touched.iter().any(|t| under(p, t));
    let old_rest: Vec<_> = old.iter().filter(keep).collect();
    let new_rest: Vec<_> = new.iter().filter(keep).collect();
    if old_rest != new_rest {
        let diff = old_rest
            .iter()
            .zip(&new_rest)
            .find(|(a, b)| a != b)
            .map(|(a, b)| format!("{} became {}", show(&a.0), show(&b.0)))
            .unwrap_or_else(|| "a value appeared or disappeared".to_owned());
        return Err(fail(format!("an unintended path changed: {diff}")));
    }
    for intent in intents {
        match intent {
            Intent::Set(path, value) => {
                let got = new.iter().find(|(p, _)| p == path).map(|(_, l)| l);
                match got {
                    Some(Leaf::Scalar(s, _)) if s == value => {}
                    _ => {
                        return Err(fail(format!("{} does not read {value:?}", show(path))));
                    }
                }
            }
            Intent::Added(path) => {
                if !new.iter().any(|(p, _)| under(p, path)) {
                    return Err(fail(format!("{} was not added", show(path))));
                }
            }
            Intent::Removed(path) => {
                if new.iter().any(|(p, _)| under(p, path)) {
                    return Err(fail(format!("{} was not removed", show(path))));
                }
            }
        }
    }
    Ok(())
}

fn show(path: &Path) -> String {
    let mut s = format!("document {}: ", path.doc + 1);
    for seg in &path.segs {
        match seg {
            Seg::Key(k) => {
                if !s.ends_with(' ') {
                    s.push('.');
                }
                s.push_str(k);
            }
            Seg::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::{Editor, parse};

    #[test]
    fn an_edit_that_strays_is_refused() {
        let src = "a: 1\nb: 2\n";
        let docs = parse(src, "f").unwrap();
        let root = docs[0].root.as_ref().unwrap();
        let mut ed = Editor::new(src, "f");
        // Claim to set `a` while actually splicing `b`.
        ed.set_scalar(root.get("b").unwrap(), Path::root(0).key("a"), "3")
            .unwrap();
        let applied = ed.apply().unwrap();
        let (text, intents) = (applied.text, applied.intents);
        let err = verify(&docs, &text, &intents, "f").unwrap_err();
        assert!(matches!(err, Error::Verify { .. }), "{err}");
    }

    #[test]
    fn type_changes_count_as_changes() {
        let before = parse("a: \"1\"\nb: x\n", "f").unwrap();
        let err = verify(&before, "a: 1\nb: x\n", &[], "f").unwrap_err();
        assert!(err.to_string().contains("document 1: a"), "{err}");
    }

    #[test]
    fn document_count_must_hold() {
        let before = parse("a: 1\n", "f").unwrap();
        assert!(verify(&before, "a: 1\n---\nb: 2\n", &[], "f").is_err());
    }
}
