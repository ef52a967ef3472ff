//! Kubeconfig parsing and checking never panic (nor hang) on any text: a kubeconfig file as
//! `--kubeconfig` reads it (contexts, clusters, users, inline and file-named certificates), and
//! an Argo CD cluster Secret's `server` and `config` JSON, which become a kubeconfig too.
//! Nothing connects: connecting is lazy, and an exec plugin runs only on first use.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use driftwatch_cluster::KubeClient;
use libfuzzer_sys::fuzz_target;

/// One file per fuzzing process, rewritten for every input (the parser reads a path).
fn scratch() -> &'static PathBuf {
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    FILE.get_or_init(|| {
        std::env::temp_dir().join(format!("driftwatch-fuzz-kubeconfig-{}", std::process::id()))
    })
}

fuzz_target!(|data: &[u8]| {
    // An Argo CD cluster Secret: {"server": "...", "config": {...}}.
    if let Ok(secret) = serde_json::from_slice::<serde_json::Value>(data) {
        let server = secret
            .get("server")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("https://127.0.0.1:1");
        let config = secret.get("config").cloned().unwrap_or_default();
        let _ = KubeClient::from_argocd_cluster("fuzz", server, &config);
    }
    // The same bytes as a kubeconfig file.
    if std::fs::write(scratch(), data).is_ok() {
        let _ = KubeClient::from_kubeconfig(scratch());
    }
});
