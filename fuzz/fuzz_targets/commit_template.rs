//! The commit-message template renderer never panics and never hangs (an action left open once
//! made gtmpl's lexer loop forever; libFuzzer's -timeout catches a return of that).
#![no_main]

use driftwatch_git::{Change, commit_message};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The product catches gtmpl's panics (see template.rs), but libfuzzer-sys's panic hook
    // aborts before any unwinding; a silent hook lets a caught panic be caught. A panic that
    // escapes still aborts: libfuzzer-sys's own catch_unwind around this closure sees it.
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| std::panic::set_hook(Box::new(|_| {})));
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
