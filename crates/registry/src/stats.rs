//! Request counters by registry, endpoint and status, for metrics and benchmarks.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// Counts every request the client makes.
#[derive(Debug, Default)]
pub struct Stats {
    counts: Mutex<BTreeMap<(String, &'static str, String), u64>>,
}

/// One counter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Count {
    /// The registry host.
    pub registry: String,
    /// `tags`, `manifest_head`, `manifest`, `blob`, `token`, `ping`.
    pub endpoint: &'static str,
    /// The HTTP status, or `error` when no response came.
    pub status: String,
    /// How many.
    pub count: u64,
}

impl Stats {
    pub(crate) fn add(&self, registry: &str, endpoint: &'static str, status: &str) {
        if let Ok(mut m) = self.counts.lock() {
            *m.entry((registry.to_owned(), endpoint, status.to_owned()))
                .or_default() += 1;
        }
    }

    /// Every counter.
    pub fn snapshot(&self) -> Vec<Count> {
        self.counts
            .lock()
            .map(|m| {
                m.iter()
                    .map(|((registry, endpoint, status), count)| Count {
                        registry: registry.clone(),
                        endpoint,
                        status: status.clone(),
                        count: *count,
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Total requests made.
    pub fn total(&self) -> u64 {
        self.snapshot().iter().map(|c| c.count).sum()
    }
}
