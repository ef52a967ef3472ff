//! Constraint and version parsing never panic, and a parsed constraint answers for any version.
#![no_main]

use driftwatch_policy::{Constraint, Version};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    // "constraint\nversion": both halves come from the fuzzer.
    let (c, v) = text.split_once('\n').unwrap_or((text, "1.2.3"));
    let version = Version::parse(v);
    if let Ok(constraint) = Constraint::parse(c) {
        if let Ok(version) = version {
            // `explain` must agree with `matches`.
            assert_eq!(constraint.matches(&version), constraint.explain(&version).is_none());
        }
    }
});
