//! Git push webhook parsing never panics, whatever the headers and body; a body signed with the
//! secret is authenticated, one that is not never is.
#![no_main]

use driftwatch_git::{WebhookError, parse_git_push, repo_identity};
use libfuzzer_sys::fuzz_target;

const SECRET: &[u8] = b"fuzz-secret";

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    // The host is chosen by the first byte; the signature is either right or garbage.
    let event = [
        "x-github-event",
        "x-gitlab-event",
        "x-gitea-event",
        "x-forgejo-event",
        "none",
    ][usize::from(which) % 5];
    let good_sig = which & 0x80 != 0;
    let sig = if good_sig {
        use hmac::{Hmac, Mac};
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET).expect("any key length");
        mac.update(body);
        mac.finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    } else {
        "00".repeat(32)
    };
    let header = |name: &str| -> Option<String> {
        match name {
            n if n == event => Some(if which & 0x40 != 0 {
                "push".into()
            } else {
                "Push Hook".into()
            }),
            "x-hub-signature-256" => Some(format!("sha256={sig}")),
            "x-gitea-signature" | "x-forgejo-signature" => Some(sig.clone()),
            "x-gitlab-token" => Some(if good_sig {
                "fuzz-secret".into()
            } else {
                "wrong".into()
            }),
            _ => None,
        }
    };
    match parse_git_push(&header, body, SECRET) {
        Ok(Some(push)) => {
            for url in &push.urls {
                let _ = repo_identity(url);
            }
        }
        Ok(None) | Err(WebhookError::Payload(_)) => {}
        Err(WebhookError::Auth(_)) => {}
    }
    if let Ok(text) = std::str::from_utf8(body) {
        let _ = repo_identity(text);
    }
});
