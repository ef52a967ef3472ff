//! Argo CD Application parsing never panics, trusted or not, and what the cluster's trust level
//! accepts the operator's accepts too.
#![no_main]

use driftwatch_engine::argocd::{Trust, parse_with};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let cluster = parse_with(
        text,
        "apps.yaml",
        Trust::Cluster {
            allow_local_repositories: false,
        },
    );
    let operator = parse_with(text, "apps.yaml", Trust::Operator);
    if cluster.is_ok() {
        assert!(
            operator.is_ok(),
            "the operator's trust refused what a tenant's accepted"
        );
    }
});
