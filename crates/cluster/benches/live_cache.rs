//! Memory per tracked object of the self-heal side: what the Healer holds for N Deployments
//! once its watches have reported every one (Git's desired object, the per-object cache and
//! bookkeeping), counted by a counting allocator. The baseline, measured in the same run, is
//! what caching each live object whole would take (as informer caches do). Target: < 2 KB;
//! the bench exits non-zero when it is missed.
//!
//! The counting allocator sees every allocation of its process, so the fake API server runs in
//! a child process (this same binary, re-executed with [`SERVE`] set): only driftwatch's side —
//! the client, its runtime and the Healer — is counted.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::alloc::System;
use std::io::{BufRead, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use driftwatch_cluster::{APP_LABEL, HealOptions, Healer, KubeClient};
use driftwatch_testkit::kube::FakeApiServer;
use serde_json::{Value, json};
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};

// Counts allocations without any unsafe code of ours (the workspace forbids it).
#[global_allocator]
static ALLOC: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const N: usize = 5_000;

/// Bytes per tracked object the healer may hold.
const TARGET: f64 = 2048.0;

/// Set (to the kubeconfig path to write) in the child that serves the fake API.
const SERVE: &str = "DRIFTWATCH_LIVE_CACHE_SERVE";

fn deployment(i: usize) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": format!("app{i}"), "namespace": "bench", "labels": {"app": format!("app{i}")}},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": format!("app{i}")}},
          "template": {"metadata": {"labels": {"app": format!("app{i}")}}, "spec": {"containers": [
            {"name": "app", "image": format!("registry.example/team/app{i}:v1.4.2"), "ports": [{"containerPort": 8080}],
             "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
             "resources": {"limits": {"cpu": "500m", "memory": "256Mi"}}}
        ]}}}
    })
}

/// The live object as an API server would hold it: defaults, status and managedFields added.
fn live(i: usize) -> Value {
    let mut l = deployment(i);
    l["metadata"]["labels"][APP_LABEL] = json!("bench");
    l["metadata"]["uid"] = json!(format!("7b1c4c1e-0000-4000-8000-{i:012}"));
    l["metadata"]["generation"] = json!(1);
    l["metadata"]["creationTimestamp"] = json!("2026-11-25T10:00:00Z");
    l["metadata"]["managedFields"] = json!([{"manager": "driftwatch", "operation": "Apply", "apiVersion": "apps/v1",
        "time": "2026-11-25T10:00:00Z", "fieldsType": "FieldsV1",
        "fieldsV1": {"f:metadata": {"f:labels": {"f:app": {}, "f:driftwatch.io/app": {}}},
          "f:spec": {"f:replicas": {}, "f:selector": {}, "f:template": {"f:metadata": {"f:labels": {"f:app": {}}},
            "f:spec": {"f:containers": {"k:{\"name\":\"app\"}": {".": {}, "f:env": {}, "f:image": {}, "f:name": {}, "f:ports": {}, "f:resources": {}}}}}}}}]);
    let c = &mut l["spec"]["template"]["spec"]["containers"][0];
    c["imagePullPolicy"] = json!("IfNotPresent");
    c["terminationMessagePath"] = json!("/dev/termination-log");
    c["terminationMessagePolicy"] = json!("File");
    l["spec"]["template"]["spec"]["restartPolicy"] = json!("Always");
    l["spec"]["template"]["spec"]["dnsPolicy"] = json!("ClusterFirst");
    l["spec"]["strategy"] = json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}});
    l["spec"]["revisionHistoryLimit"] = json!(10);
    l["spec"]["progressDeadlineSeconds"] = json!(600);
    l["status"] = json!({"observedGeneration": 1, "replicas": 3, "updatedReplicas": 3, "readyReplicas": 3, "availableReplicas": 3,
        "conditions": [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
                       {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}]});
    l
}

/// Bytes allocated and not yet freed.
fn held() -> isize {
    let s = ALLOC.stats();
    // Reallocations are already folded into bytes_allocated and bytes_deallocated.
    s.bytes_allocated as isize - s.bytes_deallocated as isize
}

/// The child: serves N live Deployments, says `ready` on stdout, and stops when its parent
/// closes stdin (or dies).
fn serve(kubeconfig: &Path) {
    let fake = FakeApiServer::start();
    for i in 0..N {
        fake.insert("deployments", "bench", live(i));
    }
    fake.write_kubeconfig(kubeconfig);
    let mut out = std::io::stdout();
    writeln!(out, "ready").unwrap();
    out.flush().unwrap();
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
}

/// Starts the fake API server in a child process and waits until it serves every object.
fn start_server(kubeconfig: &Path) -> Child {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env(SERVE, kubeconfig)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready", "the fake API server did not start");
    child
}

fn main() {
    if let Some(kubeconfig) = std::env::var_os(SERVE) {
        serve(Path::new(&kubeconfig));
        return;
    }
    let dir = std::env::temp_dir().join(format!("dw-live-cache-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = dir.join("kubeconfig");
    let mut server = start_server(&kubeconfig);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();

    // Baseline: every live object cached whole, as parsed JSON.
    let before = held();
    let whole: Vec<Value> = (0..N)
        .map(|i| serde_json::from_str(&live(i).to_string()).unwrap())
        .collect();
    let whole_per_object = (held() - before) as f64 / N as f64;
    let wire: usize = whole.iter().map(|v| v.to_string().len()).sum();
    drop(whole);

    let (per_object, elapsed) = rt.block_on(async {
        let client = Arc::new(KubeClient::from_kubeconfig(&kubeconfig).unwrap());
        let (healer, run) = Healer::new(client);
        tokio::spawn(async move {
            let mut ignore = |_: &driftwatch_cluster::HealEvent| true;
            run.run(&mut ignore).await;
        });
        // Warm the discovery cache and the runtime so only per-object memory is counted.
        let warm = Healer::new(Arc::new(KubeClient::from_kubeconfig(&kubeconfig).unwrap()));
        drop(warm);
        let start = held();
        let desired: Vec<Value> = (0..N).map(deployment).collect();
        let started = Instant::now();
        healer
            .set(&desired, &HealOptions::new("bench", "bench"))
            .await;
        healer.synced("bench", &[]);
        drop(desired);
        loop {
            let st = healer.status();
            if st.get("bench").is_some_and(|s| s.seen == N) {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "watch never listed"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let elapsed = started.elapsed();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let st = healer.status();
        assert!(st["bench"].out_of_sync.is_empty(), "no false drift");
        ((held() - start) as f64 / N as f64, elapsed)
    });
    // Closing its stdin stops the server.
    drop(server.stdin.take());
    let _ = server.wait();
    println!(
        "live cache: {N} Deployments tracked, {per_object:.0} bytes per object held by the healer (Git's object, cache, bookkeeping; target < {TARGET:.0}); first list checked in {:.0} ms",
        elapsed.as_secs_f64() * 1e3
    );
    println!(
        "  counted: bytes allocated and not freed in this process while the healer took up the objects; the fake API server ran in a child process and is not counted"
    );
    println!(
        "baseline, each live object cached whole: {whole_per_object:.0} bytes per object ({} bytes as JSON) -> {:.1}x less",
        wire / N,
        whole_per_object / per_object
    );
    let _ = std::fs::remove_dir_all(&dir);
    if per_object >= TARGET {
        eprintln!(
            "live cache: target missed: {per_object:.0} bytes per tracked object (target < {TARGET:.0})"
        );
        std::process::exit(1);
    }
}
