//! One module per subcommand.

pub mod registry;
pub mod select;
pub mod set_image;
