//! One module per subcommand.

pub mod diff;
pub mod registry;
pub mod run;
pub mod select;
pub mod set_image;
pub mod write_back;

/// How a command prints its result.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// For people: a table or lines (`table` is the same).
    #[default]
    #[value(alias = "table")]
    Text,
    /// For programs: JSON.
    Json,
}

/// The runtime a command's async calls run on: multi-threaded (two workers), because the
/// updater's write-back stage blocks in place while other tasks go on.
pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    use anyhow::Context as _;
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")
}
