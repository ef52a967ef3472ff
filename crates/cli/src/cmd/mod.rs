//! One module per subcommand.

pub mod diff;
pub mod registry;
pub mod run;
pub mod select;
pub mod set_image;
pub mod write_back;

/// A single-threaded runtime for a command's few concurrent calls; the CLI is sync at its edges.
pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    use anyhow::Context as _;
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}
