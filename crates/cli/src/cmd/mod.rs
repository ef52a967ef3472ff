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

/// Runs `work` on a thread of its own, on a small multi-threaded runtime: the long-lived sides of
/// `run` (HTTP, Git → cluster) that must not wait for the updater loop or for each other.
pub(crate) fn spawn_service<F, Fut>(
    name: &'static str,
    work: F,
) -> anyhow::Result<std::thread::JoinHandle<()>>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()>,
{
    use anyhow::Context as _;
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
            {
                Ok(rt) => rt.block_on(work()),
                Err(e) => eprintln!("error: cannot start the {name} runtime: {e}"),
            }
        })
        .with_context(|| format!("starting the {name} thread"))
}
