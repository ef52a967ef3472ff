//! Splicing edits into YAML text and recording what they are meant to change.

use super::scalar::{render, render_new};
use super::tree::{Document, Kind, Node};
use crate::error::Error;

/// One step of a path into a document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// A path from a document's root: the document's index and the steps below it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Path {
    pub doc: usize,
    pub segs: Vec<Seg>,
}

impl Path {
    /// The root of document `doc`.
    pub fn root(doc: usize) -> Self {
        Path {
            doc,
            segs: Vec::new(),
        }
    }

    /// This path extended by a key.
    pub fn key(&self, k: &str) -> Self {
        let mut p = self.clone();
        p.segs.push(Seg::Key(k.to_owned()));
        p
    }

    /// This path extended by an index.
    pub fn index(&self, i: usize) -> Self {
        let mut p = self.clone();
        p.segs.push(Seg::Index(i));
        p
    }
}

/// A value to insert that does not exist in the source yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NewValue {
    Scalar(String),
    /// Written verbatim: a boolean or number that must not be quoted.
    Raw(String),
    Map(Vec<(String, NewValue)>),
    Seq(Vec<NewValue>),
}

/// What an edit is meant to do, for verification after re-parsing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Intent {
    /// The scalar at the path now reads this string.
    Set(Path, String),
    /// Everything at or below the path may be new.
    Added(Path),
    /// Everything at or below the path may be gone.
    Removed(Path),
}

#[derive(Debug)]
struct Splice {
    start: usize,
    end: usize,
    text: String,
}

/// The result of applying an editor's splices.
pub struct Applied {
    /// The new text.
    pub text: String,
    /// What the edits meant to do, for verification.
    pub intents: Vec<Intent>,
    /// The replaced values.
    pub previous: Vec<String>,
    /// Their lines.
    pub lines: Vec<usize>,
}

/// Collects splices against one source text, then applies them all at once.
pub struct Editor<'a> {
    src: &'a str,
    file: &'a str,
    nl: &'static str,
    splices: Vec<Splice>,
    pub intents: Vec<Intent>,
    /// The values replaced by `set_scalar`, in order, for reports ("old tag").
    pub previous: Vec<String>,
    /// The 1-based lines of those values.
    pub lines: Vec<usize>,
}

impl<'a> Editor<'a> {
    /// An editor over `src`; `file` names it in errors.
    pub fn new(src: &'a str, file: &'a str) -> Self {
        let nl = match src.find('\n') {
            Some(i) if i > 0 && src.as_bytes()[i - 1] == b'\r' => "\r\n",
            _ => "\n",
        };
        Editor {
            src,
            file,
            nl,
            splices: Vec::new(),
            intents: Vec::new(),
            previous: Vec::new(),
            lines: Vec::new(),
        }
    }

    /// The source being edited.
    pub fn src(&self) -> &'a str {
        self.src
    }

    /// The file name for errors.
    pub fn file(&self) -> &'a str {
        self.file
    }

    /// True when some edit was recorded.
    pub fn changed(&self) -> bool {
        !self.splices.is_empty()
    }

    fn unsupported(&self, node: &Node, what: &str) -> Error {
        Error::Unsupported {
            file: self.file.to_owned(),
            line: node.line,
            what: what.to_owned(),
        }
    }

    /// Column (in bytes, as YAML indentation is ASCII spaces) of an offset.
    pub fn col(&self, offset: usize) -> usize {
        offset - self.line_start(offset)
    }

    fn line_start(&self, offset: usize) -> usize {
        self.src[..offset].rfind('\n').map_or(0, |i| i + 1)
    }

    /// Offset just past the newline that ends the line containing `offset`.
    fn line_end(&self, offset: usize) -> usize {
        self.src[offset..]
            .find('\n')
            .map_or(self.src.len(), |i| offset + i + 1)
    }

    /// Sets a scalar, keeping its quoting style. Records nothing when it already says `value`.
    pub fn set_scalar(&mut self, node: &Node, path: Path, value: &str) -> Result<(), Error> {
        let Kind::Scalar { value: old, style } = &node.kind else {
            return Err(self.unsupported(node, "expected a scalar value here"));
        };
        if old == value {
            return Ok(());
        }
        if node.tagged {
            return Err(self.unsupported(node, "the value carries an explicit tag"));
        }
        let text = render(value, *style)
            .ok_or_else(|| self.unsupported(node, "block scalars (| or >) are not edited"))?;
        if node.start == node.end {
            // An empty value (`key:`): write after the colon with one space.
            self.splices.push(Splice {
                start: node.start,
                end: node.end,
                text: format!(" {}", render_new(value)),
            });
        } else {
            self.splices.push(Splice {
                start: node.start,
                end: node.end,
                text,
            });
        }
        self.intents.push(Intent::Set(path, value.to_owned()));
        self.previous.push(old.clone());
        self.lines.push(node.line);
        Ok(())
    }

    /// Appends `key: value` to a mapping, in its own style and indentation.
    pub fn insert_key(
        &mut self,
        map: &Node,
        path: Path,
        key: &str,
        value: &NewValue,
        style: &IndentStyle,
    ) -> Result<(), Error> {
        let Kind::Map(entries) = &map.kind else {
            return Err(self.unsupported(map, "expected a mapping here"));
        };
        self.intents.push(Intent::Added(path.key(key)));
        if map.flow {
            let text = format!("{}: {}", render_new(key), flow(value));
            let (at, text) = match entries.last() {
                Some((_, v)) => (v.end, format!(", {text}")),
                None => (map.start + 1, text),
            };
            self.splices.push(Splice {
                start: at,
                end: at,
                text,
            });
            return Ok(());
        }
        let Some((first_key, _)) = entries.first() else {
            return Err(self.unsupported(map, "an empty block mapping"));
        };
        let indent = self.col(first_key.start);
        let last_end = entries.last().map_or(map.end, |(_, v)| v.end);
        let mut text = String::new();
        block_entry(&mut text, indent, key, value, style, self.nl);
        self.insert_lines(self.line_end(last_end), text);
        Ok(())
    }

    /// Appends an item to a sequence, in its own style and indentation.
    pub fn push_item(
        &mut self,
        seq: &Node,
        path: Path,
        item: &NewValue,
        style: &IndentStyle,
    ) -> Result<(), Error> {
        self.push_items(seq, path, std::slice::from_ref(item), style)
    }

    /// Appends items to a sequence, in order, in its own style and indentation.
    pub fn push_items(
        &mut self,
        seq: &Node,
        path: Path,
        new: &[NewValue],
        style: &IndentStyle,
    ) -> Result<(), Error> {
        let Kind::Seq(items) = &seq.kind else {
            return Err(self.unsupported(seq, "expected a sequence here"));
        };
        for n in 0..new.len() {
            self.intents
                .push(Intent::Added(path.index(items.len() + n)));
        }
        if seq.flow {
            let joined = new.iter().map(flow).collect::<Vec<_>>().join(", ");
            let (at, text) = match items.last() {
                Some(last) => (last.end, format!(", {joined}")),
                None => (seq.start + 1, joined),
            };
            self.splices.push(Splice {
                start: at,
                end: at,
                text,
            });
            return Ok(());
        }
        let Some(first) = items.first() else {
            return Err(self.unsupported(seq, "an empty block sequence"));
        };
        // The dash sits left of the first item's content on the same line.
        let line_start = self.line_start(first.start);
        let dash = self.src[line_start..first.start]
            .rfind('-')
            .map_or(self.col(first.start).saturating_sub(2), |i| i);
        let content = self.col(first.start);
        let mut text = String::new();
        for item in new {
            seq_item(&mut text, dash, content - dash, item, style, self.nl);
        }
        let last_end = items.last().map_or(seq.end, |n| n.end);
        self.insert_lines(self.line_end(last_end), text);
        Ok(())
    }

    /// Replaces a null value (`key:` or `key: ~`) with a block collection or scalar.
    pub fn fill_null(
        &mut self,
        key: &Node,
        value: &Node,
        path: Path,
        new: &NewValue,
        style: &IndentStyle,
    ) -> Result<(), Error> {
        self.intents.push(Intent::Added(path));
        let key_col = self.col(key.start);
        let text = match new {
            NewValue::Scalar(s) => format!(" {}", render_new(s)),
            NewValue::Raw(s) => format!(" {s}"),
            NewValue::Map(entries) => {
                let mut t = String::from(self.nl);
                for (k, v) in entries {
                    block_entry(&mut t, key_col + style.step, k, v, style, self.nl);
                }
                trim_nl(&mut t, self.nl);
                t
            }
            NewValue::Seq(items) => {
                let mut t = String::from(self.nl);
                for item in items {
                    seq_item(&mut t, key_col + style.seq_indent, 2, item, style, self.nl);
                }
                trim_nl(&mut t, self.nl);
                t
            }
        };
        // Replace from just after the colon through the null token, keeping any comment.
        let colon = self.src[key.end..]
            .find(':')
            .map_or(key.end, |i| key.end + i + 1);
        let end = if value.start > colon {
            value.end
        } else {
            colon
        };
        self.splices.push(Splice {
            start: colon,
            end,
            text,
        });
        Ok(())
    }

    /// Removes a `key: value` entry from a block mapping, whole lines.
    pub fn remove_entry(&mut self, map: &Node, path: Path, key: &str) -> Result<(), Error> {
        let Some((k, v)) = map.entry(key) else {
            return Ok(());
        };
        if map.flow {
            return Err(self.unsupported(map, "removing a key from a flow mapping"));
        }
        let start = self.line_start(k.start);
        if self.src[start..k.start].trim() != "" {
            return Err(self.unsupported(k, "removing the first key of a sequence item"));
        }
        let end = self.line_end(v.end);
        self.splices.push(Splice {
            start,
            end,
            text: String::new(),
        });
        self.intents.push(Intent::Removed(path.key(key)));
        Ok(())
    }

    /// Appends a top-level key to a document whose root is a block mapping.
    pub fn append_root_key(
        &mut self,
        root: &Node,
        path: Path,
        key: &str,
        value: &NewValue,
        style: &IndentStyle,
    ) -> Result<(), Error> {
        self.insert_key(root, path, key, value, style)
    }

    fn insert_lines(&mut self, at: usize, mut text: String) {
        if at == self.src.len() && !self.src.is_empty() && !self.src.ends_with('\n') {
            // Keep a missing final newline missing.
            trim_nl(&mut text, self.nl);
            text.insert_str(0, self.nl);
        }
        self.splices.push(Splice {
            start: at,
            end: at,
            text,
        });
    }

    /// Applies every splice; fails if two overlap (a bug in a caller, never silently merged).
    pub fn apply(mut self) -> Result<Applied, Error> {
        self.splices.sort_by_key(|s| (s.start, s.end));
        for pair in self.splices.windows(2) {
            if pair[1].start < pair[0].end {
                return Err(Error::Unsupported {
                    file: self.file.to_owned(),
                    line: 0,
                    what: "overlapping edits".to_owned(),
                });
            }
        }
        let mut out = String::with_capacity(self.src.len() + 64);
        let mut pos = 0;
        for s in &self.splices {
            out.push_str(&self.src[pos..s.start]);
            out.push_str(&s.text);
            pos = s.end;
        }
        out.push_str(&self.src[pos..]);
        Ok(Applied {
            text: out,
            intents: self.intents,
            previous: self.previous,
            lines: self.lines,
        })
    }
}

fn trim_nl(text: &mut String, nl: &str) {
    if text.ends_with(nl) {
        text.truncate(text.len() - nl.len());
    }
}

/// How a file indents: spaces per nesting level, and how far a block sequence's dash sits right
/// of its parent key (0 for `key:\n- a`, 2 for `key:\n  - a`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndentStyle {
    pub step: usize,
    pub seq_indent: usize,
}

impl IndentStyle {
    /// Learns the style from the documents, defaulting to kustomize's own (2, 0).
    pub fn detect(src: &str, docs: &[Document]) -> Self {
        let mut style = IndentStyle {
            step: 0,
            seq_indent: usize::MAX,
        };
        let col = |offset: usize| offset - src[..offset].rfind('\n').map_or(0, |i| i + 1);
        fn walk(n: &Node, src: &str, style: &mut IndentStyle, col: &dyn Fn(usize) -> usize) {
            if let Kind::Map(entries) = &n.kind {
                for (k, v) in entries {
                    if v.flow || n.flow {
                        continue;
                    }
                    match &v.kind {
                        Kind::Map(inner) if !inner.is_empty() && style.step == 0 => {
                            let d = col(inner[0].0.start).saturating_sub(col(k.start));
                            if d > 0 {
                                style.step = d;
                            }
                        }
                        Kind::Seq(items) if !items.is_empty() && style.seq_indent == usize::MAX => {
                            let start = items[0].start;
                            let ls = src[..start].rfind('\n').map_or(0, |i| i + 1);
                            if let Some(dash) = src[ls..start].rfind('-') {
                                style.seq_indent = dash.saturating_sub(col(k.start));
                            }
                        }
                        _ => {}
                    }
                    walk(v, src, style, col);
                }
            }
            if let Kind::Seq(items) = &n.kind {
                for i in items {
                    walk(i, src, style, col);
                }
            }
        }
        for d in docs {
            if let Some(root) = &d.root {
                walk(root, src, &mut style, &col);
            }
        }
        IndentStyle {
            step: if style.step == 0 { 2 } else { style.step },
            seq_indent: if style.seq_indent == usize::MAX {
                0
            } else {
                style.seq_indent
            },
        }
    }
}

fn block_entry(
    out: &mut String,
    indent: usize,
    key: &str,
    value: &NewValue,
    style: &IndentStyle,
    nl: &str,
) {
    let pad = " ".repeat(indent);
    match value {
        NewValue::Scalar(s) => {
            out.push_str(&format!("{pad}{}: {}{nl}", render_new(key), render_new(s)));
        }
        NewValue::Raw(s) => out.push_str(&format!("{pad}{}: {s}{nl}", render_new(key))),
        NewValue::Map(entries) => {
            out.push_str(&format!("{pad}{}:{nl}", render_new(key)));
            for (k, v) in entries {
                block_entry(out, indent + style.step, k, v, style, nl);
            }
        }
        NewValue::Seq(items) => {
            out.push_str(&format!("{pad}{}:{nl}", render_new(key)));
            for item in items {
                seq_item(out, indent + style.seq_indent, 2, item, style, nl);
            }
        }
    }
}

/// `- item` at `dash` columns, content `gap` columns right of the dash.
fn seq_item(
    out: &mut String,
    dash: usize,
    gap: usize,
    item: &NewValue,
    style: &IndentStyle,
    nl: &str,
) {
    let pad = " ".repeat(dash);
    let gap_pad = " ".repeat(gap.saturating_sub(1).max(1));
    match item {
        NewValue::Scalar(s) => out.push_str(&format!("{pad}-{gap_pad}{}{nl}", render_new(s))),
        NewValue::Raw(s) => out.push_str(&format!("{pad}-{gap_pad}{s}{nl}")),
        NewValue::Map(entries) => {
            let mut first = true;
            for (k, v) in entries {
                if first {
                    let mut line = String::new();
                    block_entry(&mut line, dash + gap, k, v, style, nl);
                    // Put the first entry on the dash's line.
                    out.push_str(&format!("{pad}-{gap_pad}{}", &line[dash + gap..]));
                    first = false;
                } else {
                    block_entry(out, dash + gap, k, v, style, nl);
                }
            }
        }
        NewValue::Seq(_) => out.push_str(&format!("{pad}-{gap_pad}{}{nl}", flow(item))),
    }
}

fn flow(v: &NewValue) -> String {
    match v {
        NewValue::Scalar(s) => render_new(s),
        NewValue::Raw(s) => s.clone(),
        NewValue::Map(entries) => format!(
            "{{{}}}",
            entries
                .iter()
                .map(|(k, v)| format!("{}: {}", render_new(k), flow(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        NewValue::Seq(items) => format!(
            "[{}]",
            items.iter().map(flow).collect::<Vec<_>>().join(", ")
        ),
    }
}
