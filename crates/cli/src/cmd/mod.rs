//! One module per subcommand.

pub mod select;
pub mod set_image;
