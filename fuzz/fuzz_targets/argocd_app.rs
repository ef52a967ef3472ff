//! Argo CD Application parsing never panics, trusted or not, and what the cluster's trust level
//! accepts the operator's accepts too (but for `git:secret:` write-back, which needs the cluster).
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
    // One refusal is the operator's alone, by design: `git:secret:` reads a Secret through
    // the cluster, which the operator's files have none of.
    if cluster.is_ok()
        && let Err(e) = &operator
    {
        assert!(
            e.to_string().contains("git:secret: reads a Kubernetes Secret"),
            "the operator's trust refused what a tenant's accepted: {e}"
        );
    }
});
