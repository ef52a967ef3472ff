//! One module per subcommand.

pub mod diff;
pub mod registry;
pub mod run;
pub mod select;
pub mod set_image;
pub mod write_back;
