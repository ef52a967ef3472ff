//! Chart version edits change exactly the versions of the chart's entries, whatever the
//! layout: every other byte (other charts, comments, quoting, flow or block style, other
//! documents) stays as it was.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use driftwatch_manifest::set_chart_version;
use driftwatch_policy::ChartRef;
use proptest::prelude::*;

/// One `helmCharts` entry: name, repository, version, quoting (0 plain, 1 single, 2 double),
/// a trailing comment, and flow style.
#[derive(Clone, Debug)]
struct Entry {
    name: &'static str,
    repo: &'static str,
    version: String,
    quote: u8,
    comment: bool,
    flow: bool,
}

const OURS: &str = "oci://registry.example.com/charts";

fn version() -> impl Strategy<Value = String> {
    (0u64..30, 0u64..30, 0u64..30, proptest::option::of(0u64..9)).prop_map(|(a, b, c, build)| {
        match build {
            Some(n) => format!("{a}.{b}.{c}+build.{n}"),
            None => format!("{a}.{b}.{c}"),
        }
    })
}

fn entry() -> impl Strategy<Value = Entry> {
    (
        prop_oneof![Just("web"), Just("api")],
        prop_oneof![
            Just(OURS),
            Just("oci://registry.example.com/charts/"),
            Just("oci://other.example.com/charts"),
        ],
        version(),
        0u8..3,
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(name, repo, version, quote, comment, flow)| Entry {
            name,
            repo,
            version,
            quote,
            comment,
            flow,
        })
}

fn quoted(v: &str, quote: u8) -> String {
    match quote {
        0 => v.to_owned(),
        1 => format!("'{v}'"),
        _ => format!("\"{v}\""),
    }
}

fn is_ours(e: &Entry) -> bool {
    e.name == "web" && e.repo.trim_end_matches('/') == OURS
}

/// The kustomization with each entry's version as `version_of` says.
fn render(entries: &[Entry], version_of: impl Fn(&Entry) -> String, header: bool) -> String {
    let mut s = String::new();
    if header {
        s.push_str("# charts of the shop\nresources: [ns.yaml]\n");
    }
    s.push_str("helmCharts:\n");
    for e in entries {
        let v = quoted(&version_of(e), e.quote);
        if e.flow {
            s.push_str(&format!(
                "- {{name: {}, repo: {}, version: {v}}}",
                e.name, e.repo
            ));
        } else {
            s.push_str(&format!(
                "- name: {}\n  repo: {}\n  version: {v}",
                e.name, e.repo
            ));
        }
        if e.comment {
            s.push_str(" # pinned");
        }
        s.push('\n');
    }
    s.push_str("---\nkind: ConfigMap\ndata: {version: 0.0.1}\n");
    s
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn only_the_charts_versions_change(
        entries in proptest::collection::vec(entry(), 1..6),
        new in version(),
        header in any::<bool>(),
    ) {
        let chart = ChartRef::parse("oci://registry.example.com/charts/web").unwrap();
        let src = render(&entries, |e| e.version.clone(), header);
        let result = set_chart_version(&src, "kustomization.yaml", &chart, &new);
        if !entries.iter().any(is_ours) {
            let e = result.unwrap_err().to_string();
            prop_assert!(e.contains("not found"), "{}", e);
            return Ok(());
        }
        let out = result.unwrap();
        let expected = render(
            &entries,
            |e| if is_ours(e) { new.clone() } else { e.version.clone() },
            header,
        );
        prop_assert_eq!(&out.text, &expected);
        prop_assert_eq!(out.changed, expected != src);
        let replaced: Vec<String> = entries
            .iter()
            .filter(|e| is_ours(e) && e.version != new)
            .map(|e| e.version.clone())
            .collect();
        prop_assert_eq!(out.previous, replaced);
    }
}
