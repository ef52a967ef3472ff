//! Helm chart versions: a kustomization's `helmCharts[].version` (the entry matched by `name`
//! and `repo`) and an Argo CD Application's `spec.source.targetRevision` or
//! `spec.sources[i].targetRevision` (the source matched by `repoURL` and `chart`), in every
//! document of the file. Only the value changes; its quoting is kept.

use driftwatch_policy::ChartRef;

use crate::yaml::edit::{IndentStyle, NewValue};
use crate::yaml::{Editor, Node, Path, parse};
use crate::{Error, Outcome, finish};

/// Sets the version of `chart` to `version` wherever the file names it: in kustomizations'
/// `helmCharts` entries and in Applications' sources. A matching entry without the version key
/// gets one. The file must name the chart at least once; the error says what was looked for.
pub fn set_chart_version(
    src: &str,
    file: &str,
    chart: &ChartRef,
    version: &str,
) -> Result<Outcome, Error> {
    let docs = parse(src, file)?;
    let style = IndentStyle::detect(src, &docs);
    let mut ed = Editor::new(src, file);
    let mut found = 0;
    for (d, doc) in docs.iter().enumerate() {
        let Some(root) = doc.root.as_ref().filter(|r| r.entries().is_some()) else {
            continue;
        };
        let root_path = Path::root(d);
        if let Some(charts) = root.get("helmCharts") {
            let items = charts.items().ok_or_else(|| Error::Shape {
                file: file.to_owned(),
                line: charts.line,
                what: "`helmCharts` is not a list".to_owned(),
            })?;
            for (i, entry) in items.iter().enumerate() {
                let name = entry.get("name").and_then(Node::as_str);
                let repo = entry.get("repo").and_then(Node::as_str);
                if let (Some(name), Some(repo)) = (name, repo)
                    && chart.matches_repo_and_name(repo, name)
                {
                    let path = root_path.key("helmCharts").index(i);
                    set_or_insert(&mut ed, entry, &path, "version", version, &style)?;
                    found += 1;
                }
            }
        }
        let is_application = root
            .get("kind")
            .and_then(Node::as_str)
            .is_some_and(|k| k == "Application");
        let Some(spec) = root.get("spec").filter(|_| is_application) else {
            continue;
        };
        let spec_path = root_path.key("spec");
        let matches = |source: &Node| {
            source
                .get("repoURL")
                .and_then(Node::as_str)
                .is_some_and(|url| {
                    chart.matches_source(url, source.get("chart").and_then(Node::as_str))
                })
        };
        if let Some(source) = spec.get("source").filter(|s| matches(s)) {
            let path = spec_path.key("source");
            set_or_insert(&mut ed, source, &path, "targetRevision", version, &style)?;
            found += 1;
        }
        if let Some(items) = spec.get("sources").and_then(Node::items) {
            for (i, source) in items.iter().enumerate() {
                if matches(source) {
                    let path = spec_path.key("sources").index(i);
                    set_or_insert(&mut ed, source, &path, "targetRevision", version, &style)?;
                    found += 1;
                }
            }
        }
    }
    if found == 0 {
        return Err(Error::NotFound {
            file: file.to_owned(),
            what: format!(
                "chart {chart} not found: no helmCharts entry with name {:?} and repo {:?}, and \
                 no Application source (spec.source or spec.sources) with that chart",
                chart.name(),
                chart.repo()
            ),
        });
    }
    finish(ed, &docs)
}

fn set_or_insert(
    ed: &mut Editor<'_>,
    map: &Node,
    path: &Path,
    key: &str,
    value: &str,
    style: &IndentStyle,
) -> Result<(), Error> {
    if map.entries().is_none() {
        return Err(Error::Shape {
            file: ed.file().to_owned(),
            line: map.line,
            what: format!("expected a mapping holding `{key}`"),
        });
    }
    match map.get(key) {
        Some(node) => ed.set_scalar(node, path.key(key), value),
        None => ed.insert_key(
            map,
            path.clone(),
            key,
            &NewValue::Scalar(value.to_owned()),
            style,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn web() -> ChartRef {
        ChartRef::parse("oci://registry.example.com/charts/web").unwrap()
    }

    fn edit(src: &str, version: &str) -> Outcome {
        set_chart_version(src, "kustomization.yaml", &web(), version).unwrap()
    }

    #[test]
    fn kustomization_version_only_the_value_changes() {
        let src = "\
# the web front end
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
helmCharts:
- name: api   # another chart of the same repository
  repo: oci://registry.example.com/charts
  version: 1.4.0
- name: web   # ours
  repo: oci://registry.example.com/charts
  releaseName: web
  version: 1.4.0 # pinned by driftwatch
  valuesInline: {replicas: 2}
- name: web
  repo: oci://other.example.com/charts
  version: 1.4.0
";
        let out = edit(src, "1.4.2");
        assert!(out.changed);
        assert_eq!(
            out.text,
            src.replacen("version: 1.4.0 # pinned", "version: 1.4.2 # pinned", 1)
        );
        assert_eq!(out.previous, ["1.4.0"]);
        assert_eq!(out.lines, [11]);
    }

    #[test]
    fn quoting_and_flow_style_are_kept() {
        let src = "helmCharts:\n- {name: web, repo: \"oci://registry.example.com/charts/\", version: \"1.4.0\"}\n";
        assert_eq!(
            edit(src, "1.4.2").text,
            "helmCharts:\n- {name: web, repo: \"oci://registry.example.com/charts/\", version: \"1.4.2\"}\n"
        );
        let src = "helmCharts:\n  - name: web\n    repo: oci://registry.example.com/charts\n    version: '1.4.0'\r\n";
        assert_eq!(
            edit(src, "1.5.0+build.1").text,
            "helmCharts:\n  - name: web\n    repo: oci://registry.example.com/charts\n    version: '1.5.0+build.1'\r\n"
        );
    }

    #[test]
    fn a_missing_version_key_is_added_in_the_entry_style() {
        let src = "helmCharts:\n  - name: web\n    repo: oci://registry.example.com/charts\n";
        assert_eq!(
            edit(src, "1.4.2").text,
            "helmCharts:\n  - name: web\n    repo: oci://registry.example.com/charts\n    version: 1.4.2\n"
        );
    }

    #[test]
    fn unchanged_when_already_there() {
        let src = "helmCharts:\n- name: web\n  repo: oci://registry.example.com/charts\n  version: 1.4.2\n";
        let out = edit(src, "1.4.2");
        assert!(!out.changed);
        assert_eq!(out.text, src);
    }

    #[test]
    fn application_source_in_a_multi_document_file() {
        let src = "\
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: other
spec:
  source:
    repoURL: https://git.example.com/apps.git
    targetRevision: main
---
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: web
spec:
  source:
    repoURL: registry.example.com/charts  # Argo CD's bare OCI form
    chart: web
    targetRevision: \"1.4.0\"
    helm:
      releaseName: web
---
kind: ConfigMap
metadata: {name: x}
data: {targetRevision: 1.4.0}
";
        let out = edit(src, "1.4.2");
        assert_eq!(
            out.text,
            src.replacen("targetRevision: \"1.4.0\"", "targetRevision: \"1.4.2\"", 1)
        );
        assert_eq!(out.lines, [18]);
    }

    #[test]
    fn application_sources_only_the_matching_one() {
        let src = "\
kind: Application
metadata: {name: web}
spec:
  sources:
  - repoURL: https://git.example.com/values.git
    targetRevision: 1.4.0
    ref: values
  - repoURL: oci://registry.example.com/charts/web
    targetRevision: 1.4.0
    helm: {valueFiles: [$values/web.yaml]}
";
        let out = edit(src, "1.4.2");
        assert_eq!(
            out.text,
            src.replace(
                "web\n    targetRevision: 1.4.0",
                "web\n    targetRevision: 1.4.2"
            )
        );
        assert_eq!(out.previous, ["1.4.0"]);
    }

    #[test]
    fn a_file_without_the_chart_is_a_clear_error() {
        for src in [
            "helmCharts:\n- name: web\n  repo: oci://other.example.com/charts\n  version: 1.0.0\n",
            "kind: Application\nspec:\n  source:\n    repoURL: registry.example.com/charts\n    chart: api\n",
            "resources: [a.yaml]\n",
        ] {
            let e = set_chart_version(src, "apps/web.yaml", &web(), "1.4.2")
                .unwrap_err()
                .to_string();
            assert!(
                e.starts_with(
                    "apps/web.yaml: chart oci://registry.example.com/charts/web not found"
                ) && e.contains("name \"web\"")
                    && e.contains("repo \"oci://registry.example.com/charts\""),
                "{e}"
            );
        }
        let e = set_chart_version("helmCharts: web\n", "k.yaml", &web(), "1")
            .unwrap_err()
            .to_string();
        assert_eq!(e, "k.yaml:1: `helmCharts` is not a list");
    }
}
