//! Comparing 1,000 Deployments with their live objects: the target is under 1 s.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{Criterion, criterion_group, criterion_main};
use driftwatch_cluster::diff;
use serde_json::{Value, json};
use std::hint::black_box;

fn deployment(i: usize, image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": format!("app{i}"), "namespace": "bench", "labels": {"app": format!("app{i}")}},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": format!("app{i}")}},
          "template": {"metadata": {"labels": {"app": format!("app{i}")}}, "spec": {"containers": [
            {"name": "app", "image": image, "ports": [{"containerPort": 8080}],
             "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
             "resources": {"limits": {"cpu": "500m", "memory": "256Mi"}}}
        ]}}}
    })
}

fn bench(c: &mut Criterion) {
    let desired: Vec<Value> = (0..1000).map(|i| deployment(i, "app:v1")).collect();
    let live: Vec<Value> = (0..1000)
        .map(|i| {
            let mut l = deployment(i, if i % 10 == 0 { "app:v0" } else { "app:v1" });
            l["status"] = json!({"replicas": 3, "readyReplicas": 3});
            l["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] =
                json!("IfNotPresent");
            l["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"] =
                json!("0.5");
            l
        })
        .collect();
    let mut group = c.benchmark_group("diff");
    group.sample_size(20);
    group.bench_function("1000_deployments", |b| {
        b.iter(|| {
            let d = diff(black_box(&desired), black_box(&live), &[]);
            assert_eq!(d.len(), 100);
            d
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
