//! Progress for long work, drawn on stderr only when a person is watching: stderr is a
//! terminal and `CI` is not set. In pipes, log files and CI the bars are hidden, so output
//! stays the same lines it always was.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// Whether progress may be drawn: stderr is a terminal and this is not a CI job.
pub fn wanted() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("CI").is_none()
}

/// A bar over `len` steps of `what` (e.g. "repositories"); hidden unless [`wanted`].
pub fn bar(len: u64, what: &str) -> ProgressBar {
    if !wanted() {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(len);
    // The template is a constant; should it ever fail to parse, the default style is kept.
    if let Ok(style) =
        ProgressStyle::with_template("{bar:30} {pos}/{len} {msg} ({elapsed}, {eta} left)")
    {
        pb.set_style(style.progress_chars("=> "));
    }
    pb.set_message(what.to_owned());
    pb.enable_steady_tick(Duration::from_millis(200));
    pb
}

/// A spinner saying `what` is under way, for waits of unknown length; hidden unless
/// [`wanted`].
pub fn spinner(what: String) -> ProgressBar {
    if !wanted() {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new_spinner();
    if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
        pb.set_style(style);
    }
    pb.set_message(what);
    pb.enable_steady_tick(Duration::from_millis(120));
    pb
}
