//! Registry push payload parsing never panics, for every provider and for the guessed one.
#![no_main]

use driftwatch_registry::{parse_webhook, verify_github_signature};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    let provider = [
        None,
        Some("distribution"),
        Some("dockerhub"),
        Some("ghcr"),
        Some("harbor"),
        Some("quay"),
        Some("bogus"),
    ][usize::from(which) % 7];
    let _ = parse_webhook(provider, body);
    if let Ok(text) = std::str::from_utf8(body) {
        let _ = verify_github_signature(b"k", b"body", text);
    }
});
