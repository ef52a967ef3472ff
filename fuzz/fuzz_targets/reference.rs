//! Reference parsing never panics, and what it accepts prints back to itself.
#![no_main]

use driftwatch_policy::ImageRef;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(r) = ImageRef::parse(text) {
        let again = ImageRef::parse(&r.to_string()).expect("a printed reference parses");
        assert_eq!(r, again);
    }
});
