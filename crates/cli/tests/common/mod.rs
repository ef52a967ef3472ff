//! Shared by the CLI's integration tests (each uses part of it).

#![allow(dead_code, clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;

/// `driftwatch ARGS --config CONF --state-dir STATE --kubeconfig KUBECONFIG`: exit code,
/// stdout, stderr.
pub fn on_cluster(
    conf: &Path,
    state: &Path,
    kubeconfig: &Path,
    args: &[&str],
) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_driftwatch"))
        .args(args)
        .arg("--config")
        .arg(conf)
        .arg("--state-dir")
        .arg(state)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}
