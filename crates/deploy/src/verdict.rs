//! The three-way verdict per tracked image — the registry's best, Git's value, and what the
//! cluster runs (with pods still on an older digest of Git's tag) — for `check`, and for any
//! page or notification that shows drift.

use std::collections::HashMap;
use std::path::Path;

use driftwatch_cluster::KubeClient;
use driftwatch_engine::{App, CycleReport, Updater};

use crate::live;

/// What the cluster runs for one tracked image.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct LiveCell {
    /// The live value (`tag` or `tag@digest`) of each workload running the image; empty when
    /// nothing runs it.
    pub values: Vec<String>,
    /// Pods of those workloads.
    pub pods: usize,
    /// Pods running another digest than the registry's for Git's tag.
    pub stale_pods: usize,
    /// Why the live state could not be read.
    pub error: Option<String>,
}

impl LiveCell {
    /// True when the cluster does not run what Git says.
    pub fn drifts(&self, git: Option<&str>) -> bool {
        self.verdict(git).is_some()
    }

    /// The live column's text: the values, `(not running)`, or `?` when unknown.
    pub fn shown(&self) -> String {
        match (&self.error, self.values.is_empty()) {
            (Some(_), _) => "?".to_owned(),
            (None, true) => "(not running)".to_owned(),
            (None, false) => {
                let mut v = self.values.clone();
                v.dedup();
                v.join(",")
            }
        }
    }

    /// Why the cluster and Git disagree, or `None` when they agree.
    pub fn verdict(&self, git: Option<&str>) -> Option<String> {
        if let Some(e) = &self.error {
            return Some(format!("live unknown: {e}"));
        }
        if self.values.is_empty() {
            return Some("not running in the cluster".to_owned());
        }
        if git.is_some_and(|g| self.values.iter().any(|v| v != g)) {
            return Some("the cluster runs another version than Git".to_owned());
        }
        (self.stale_pods > 0).then(|| {
            format!(
                "{} of {} pods on an older digest",
                self.stale_pods, self.pods
            )
        })
    }
}

/// The live column: per report line (in the report's order, apps × images), what the cluster
/// runs; `None` for applications without a sync policy (where they run is not known). An
/// application that cannot be rendered or read gets the reason on its lines.
pub async fn live_cells(
    client: &KubeClient,
    state: &Path,
    apps: &[App],
    updater: &Updater,
    report: &CycleReport,
) -> Vec<Option<LiveCell>> {
    let mut cells = Vec::with_capacity(report.images.len());
    let mut lines = report.images.iter();
    let mut heads: HashMap<(String, String), Result<String, String>> = HashMap::new();
    for app in apps {
        let Some(policy) = &app.sync else {
            for _ in &app.images {
                if lines.next().is_some() {
                    cells.push(None);
                }
            }
            continue;
        };
        // Applications on one repository and branch share one fetch.
        let head = heads
            .entry((app.repo.clone(), app.branch.clone()))
            .or_insert_with(|| crate::head(state, app).map_err(|e| e.to_string()))
            .clone();
        let rendered =
            head.and_then(|h| crate::render_at(state, app, &h).map_err(|e| e.to_string()));
        let running = match rendered {
            Ok(r) => live::containers(client, &r.objects, &policy.namespace)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e),
        };
        for img in &app.images {
            let Some(line) = lines.next() else { break };
            // A chart's version is not something a container runs.
            if img.is_chart() {
                cells.push(None);
                continue;
            }
            let containers = match &running {
                Err(e) => {
                    cells.push(Some(LiveCell {
                        error: Some(e.clone()),
                        ..LiveCell::default()
                    }));
                    continue;
                }
                Ok(c) => live::running(&img.image, c),
            };
            let mut cell = LiveCell {
                values: containers.iter().map(|c| live::live_value(c)).collect(),
                pods: containers.iter().map(|c| c.pod_digests.len()).sum(),
                ..LiveCell::default()
            };
            // Which digest Git's value means: pinned in it, else the registry's for the tag.
            let reported = containers
                .iter()
                .any(|c| c.pod_digests.iter().any(Option::is_some));
            if let Some(git) = line.git.as_deref().filter(|_| reported) {
                let digest = match git.split_once('@') {
                    Some((_, d)) => Ok(d.to_owned()),
                    None => updater.digest_of(img, git).await.map_err(|e| e.to_string()),
                };
                match digest {
                    Ok(d) => {
                        cell.stale_pods = containers.iter().map(|c| live::stale_pods(c, &d)).sum();
                    }
                    Err(e) => cell.error = Some(e),
                }
            }
            cells.push(Some(cell));
        }
    }
    cells
}

#[cfg(test)]
mod tests {
    use super::LiveCell;

    fn cell(values: &[&str], pods: usize, stale: usize) -> LiveCell {
        LiveCell {
            values: values.iter().map(|v| (*v).to_owned()).collect(),
            pods,
            stale_pods: stale,
            error: None,
        }
    }

    #[test]
    fn verdicts() {
        assert_eq!(cell(&["v1"], 2, 0).verdict(Some("v1")), None);
        assert!(!cell(&["v1"], 2, 0).drifts(Some("v1")));
        assert_eq!(
            cell(&[], 0, 0).verdict(Some("v1")).as_deref(),
            Some("not running in the cluster")
        );
        assert_eq!(
            cell(&["v1", "v0"], 2, 0).verdict(Some("v1")).as_deref(),
            Some("the cluster runs another version than Git")
        );
        assert_eq!(
            cell(&["v1"], 3, 1).verdict(Some("v1")).as_deref(),
            Some("1 of 3 pods on an older digest")
        );
        let unknown = LiveCell {
            error: Some("forbidden".to_owned()),
            ..LiveCell::default()
        };
        assert!(unknown.drifts(None));
        assert_eq!(unknown.shown(), "?");
        assert_eq!(cell(&[], 0, 0).shown(), "(not running)");
        assert_eq!(cell(&["v1", "v1"], 2, 0).shown(), "v1");
    }
}
