//! Choosing from 100,000 tags: the target is under 20 ms on one core with a semver constraint.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{Criterion, criterion_group, criterion_main};
use driftwatch_policy::{Candidate, Order, Policy, Strategy, TagFilter};
use std::hint::black_box;

/// A realistic mix: releases, `v`-prefixed, prereleases, build tags and junk.
fn tags(n: usize) -> Vec<Candidate> {
    (0..n)
        .map(|i| {
            let (major, minor, patch) = (i % 7, (i / 7) % 40, i / 280);
            let tag = match i % 10 {
                0 => format!("v{major}.{minor}.{patch}"),
                1 => format!("{major}.{minor}.{patch}-rc.{}", i % 5),
                2 => format!("sha-{i:08x}"),
                3 => format!("{major}.{minor}"),
                4 => format!("{major}.{minor}.{patch}-alpine"),
                _ => format!("{major}.{minor}.{patch}"),
            };
            Candidate::new(tag)
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let list = tags(100_000);
    let constrained = Policy::new(
        Strategy::Semver,
        Some(">=1.2, <5 || ~6.1"),
        TagFilter::new(),
        Order::Asc,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let filtered = Policy::new(
        Strategy::Semver,
        Some("^3.0"),
        TagFilter::new()
            .allow(r"regexp:^v?[0-9]+\.[0-9]+")
            .and_then(|f| f.ignore(["*-rc*", "*-alpine"]))
            .unwrap_or_else(|e| panic!("{e}")),
        Order::Asc,
    )
    .unwrap_or_else(|e| panic!("{e}"));

    let mut group = c.benchmark_group("select_100k");
    group.sample_size(30);
    group.bench_function("semver_constraint", |b| {
        b.iter(|| black_box(constrained.select(black_box(&list))))
    });
    group.bench_function("semver_constraint_allow_ignore", |b| {
        b.iter(|| black_box(filtered.select(black_box(&list))))
    });
    group.bench_function("evaluate_with_verdicts", |b| {
        b.iter(|| black_box(constrained.evaluate(black_box(&list))))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
