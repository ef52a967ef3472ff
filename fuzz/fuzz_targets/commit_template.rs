//! The commit-message template renderer never panics and never hangs (an action left open once
//! made gtmpl's lexer loop forever; libFuzzer's -timeout catches a return of that).
#![no_main]

use driftwatch_git::{Change, commit_message};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (template, tag) = text.split_once('\0').unwrap_or((text, "1.2.3"));
    let changes = [Change {
        image: "ghcr.io/org/app".into(),
        alias: "app".into(),
        old_tag: "1.0.0".into(),
        new_tag: tag.into(),
    }];
    let _ = commit_message(template, "app", &changes);
});
