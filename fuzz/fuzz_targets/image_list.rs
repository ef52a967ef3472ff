//! The image-list annotation parser never panics.
#![no_main]

use driftwatch_policy::ImageListEntry;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = ImageListEntry::parse_list(text);
    }
});
