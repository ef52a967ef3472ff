//! A YAML document as a tree of nodes that remember their exact byte spans.
//!
//! Edits are splices into the original text, so everything outside the replaced bytes — comments,
//! blank lines, quoting, flow style, line endings — survives by construction.

use granit_parser::{Event, Parser, ScalarStyle, StructureStyle};

use crate::error::Error;

/// A node and where it is in the source.
#[derive(Clone, Debug)]
pub struct Node {
    pub kind: Kind,
    /// Byte offset of the node's first byte (for block collections: the first child's).
    pub start: usize,
    /// Byte offset just past the node's last byte (for block collections: the last child's end).
    pub end: usize,
    /// 1-based line of `start`.
    pub line: usize,
    /// True for `{…}` and `[…]`.
    pub flow: bool,
    /// The node carries an explicit tag such as `!!str`.
    pub tagged: bool,
}

/// What a node is.
#[derive(Clone, Debug)]
pub enum Kind {
    Scalar { value: String, style: Style },
    Map(Vec<(Node, Node)>),
    Seq(Vec<Node>),
    Alias,
}

/// How a scalar is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    Plain,
    Single,
    Double,
    Block,
}

/// One document of a stream.
#[derive(Clone, Debug)]
pub struct Document {
    pub root: Option<Node>,
}

impl Node {
    /// The scalar's value, if this is a scalar.
    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            Kind::Scalar { value, .. } => Some(value),
            _ => None,
        }
    }

    /// A mapping's entries.
    pub fn entries(&self) -> Option<&[(Node, Node)]> {
        match &self.kind {
            Kind::Map(e) => Some(e),
            _ => None,
        }
    }

    /// A sequence's items.
    pub fn items(&self) -> Option<&[Node]> {
        match &self.kind {
            Kind::Seq(i) => Some(i),
            _ => None,
        }
    }

    /// The value under `key` in a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entries()?
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }

    /// The entry (key and value) under `key` in a mapping.
    pub fn entry(&self, key: &str) -> Option<&(Node, Node)> {
        self.entries()?
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
    }

    /// A plain scalar that YAML reads as null (`~`, `null`, or nothing at all).
    pub fn is_null(&self) -> bool {
        matches!(&self.kind, Kind::Scalar { value, style: Style::Plain }
            if matches!(value.as_str(), "" | "~" | "null" | "Null" | "NULL"))
    }
}

enum Frame {
    Map {
        start: usize,
        line: usize,
        flow: bool,
        tagged: bool,
        entries: Vec<(Node, Node)>,
        pending_key: Option<Node>,
    },
    Seq {
        start: usize,
        line: usize,
        flow: bool,
        tagged: bool,
        items: Vec<Node>,
    },
}

/// Parses every document in `src`. `file` names the source in errors.
pub fn parse(src: &str, file: &str) -> Result<Vec<Document>, Error> {
    let mut docs = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    let mut root: Option<Node> = None;
    for event in Parser::new_from_str(src) {
        let (event, span) = event.map_err(|e| Error::Parse {
            file: file.to_owned(),
            line: e.marker().line(),
            message: e.info().to_owned(),
        })?;
        let start = span.start.byte_offset().unwrap_or(0);
        let end = span.end.byte_offset().unwrap_or(start);
        let line = span.start.line();
        let finished: Option<Node> = match event {
            Event::DocumentStart(..) => {
                root = None;
                None
            }
            Event::DocumentEnd => {
                docs.push(Document { root: root.take() });
                None
            }
            Event::Scalar(value, style, _, tag) => Some(Node {
                kind: Kind::Scalar {
                    value: value.into_owned(),
                    style: match style {
                        ScalarStyle::Plain => Style::Plain,
                        ScalarStyle::SingleQuoted => Style::Single,
                        ScalarStyle::DoubleQuoted => Style::Double,
                        _ => Style::Block,
                    },
                },
                start,
                end,
                line,
                flow: false,
                tagged: tag.is_some(),
            }),
            Event::Alias(_) | Event::UnresolvedAlias(_) => Some(Node {
                kind: Kind::Alias,
                start,
                end,
                line,
                flow: false,
                tagged: false,
            }),
            Event::MappingStart(style, _, tag) => {
                stack.push(Frame::Map {
                    start,
                    line,
                    flow: style == StructureStyle::Flow,
                    tagged: tag.is_some(),
                    entries: Vec::new(),
                    pending_key: None,
                });
                None
            }
            Event::SequenceStart(style, _, tag) => {
                stack.push(Frame::Seq {
                    start,
                    line,
                    flow: style == StructureStyle::Flow,
                    tagged: tag.is_some(),
                    items: Vec::new(),
                });
                None
            }
            Event::MappingEnd => match stack.pop() {
                Some(Frame::Map {
                    start: s,
                    line: l,
                    flow,
                    tagged,
                    entries,
                    ..
                }) => {
                    let last_end = entries.last().map_or(s, |(_, v)| v.end);
                    Some(Node {
                        kind: Kind::Map(entries),
                        start: s,
                        end: if flow { end } else { last_end },
                        line: l,
                        flow,
                        tagged,
                    })
                }
                _ => return Err(structure_error(file, line)),
            },
            Event::SequenceEnd => match stack.pop() {
                Some(Frame::Seq {
                    start: s,
                    line: l,
                    flow,
                    tagged,
                    items,
                }) => {
                    let last_end = items.last().map_or(s, |n| n.end);
                    Some(Node {
                        kind: Kind::Seq(items),
                        start: s,
                        end: if flow { end } else { last_end },
                        line: l,
                        flow,
                        tagged,
                    })
                }
                _ => return Err(structure_error(file, line)),
            },
            _ => None,
        };
        if let Some(node) = finished {
            match stack.last_mut() {
                Some(Frame::Map {
                    entries,
                    pending_key,
                    ..
                }) => match pending_key.take() {
                    Some(key) => entries.push((key, node)),
                    None => *pending_key = Some(node),
                },
                Some(Frame::Seq { items, .. }) => items.push(node),
                None => root = Some(node),
            }
        }
    }
    Ok(docs)
}

fn structure_error(file: &str, line: usize) -> Error {
    Error::Parse {
        file: file.to_owned(),
        line,
        message: "unbalanced collection events".to_owned(),
    }
}
