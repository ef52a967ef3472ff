//! `driftwatch.yaml` parsing and validation never panic (nor hang) on any text.
#![no_main]

use driftwatch_engine::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // A directory that does not exist: relative file references fail instead of reading the host.
    let _ = Config::parse(
        text,
        "driftwatch.yaml",
        std::path::Path::new("/nonexistent-driftwatch-fuzz"),
    );
});
