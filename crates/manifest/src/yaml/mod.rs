//! The YAML machinery every target shares: a span tree, scalar rendering, splicing, verification.

pub mod edit;
pub mod scalar;
pub mod tree;
pub mod verify;

pub use edit::{Editor, Path, Seg};
pub use tree::{Document, Kind, Node, Style, parse};
