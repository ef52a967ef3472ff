//! The constraint engine against Masterminds semver v3.4's own test tables and the behaviour its
//! README documents. argocd-image-updater users' constraints must select exactly what they did.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod vectors {
    pub mod masterminds;
}

use driftwatch_policy::{Constraint, Version};
use std::cmp::Ordering;
use vectors::masterminds as mm;

fn check(constraint: &str, version: &str) -> bool {
    // Masterminds' parseConstraint treats "" as "*"; NewConstraint rejects it (tested below).
    let c = if constraint.is_empty() {
        Constraint::any()
    } else {
        Constraint::parse(constraint).unwrap_or_else(|e| panic!("{constraint:?}: {e}"))
    };
    let v = Version::parse(version).unwrap_or_else(|e| panic!("{version:?}: {e}"));
    let matched = c.matches(&v);
    // `explain` must agree with `matches` on every case.
    assert_eq!(
        matched,
        c.explain(&v).is_none(),
        "{constraint:?} vs {version:?}"
    );
    matched
}

fn run_table(table: &[(&str, &str, bool)]) {
    let failures: Vec<String> = table
        .iter()
        .filter(|(c, v, want)| check(c, v) != *want)
        .map(|(c, v, want)| format!("{c:?} with {v:?}: want {want}"))
        .collect();
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn masterminds_constraint_check_table() {
    assert!(mm::CONSTRAINT_CHECK.len() > 100);
    run_table(mm::CONSTRAINT_CHECK);
}

#[test]
fn masterminds_constraints_check_table() {
    assert!(mm::CONSTRAINTS_CHECK.len() > 100);
    run_table(mm::CONSTRAINTS_CHECK);
}

#[test]
fn masterminds_new_constraint_table() {
    for (input, _ors, _count, err) in mm::NEW_CONSTRAINT {
        assert_eq!(Constraint::parse(input).is_err(), *err, "{input:?}");
    }
    assert!(Constraint::parse("").is_err());
}

#[test]
fn masterminds_new_version_table() {
    for (input, err) in mm::NEW_VERSION {
        assert_eq!(Version::parse(input).is_err(), *err, "{input:?}");
    }
}

#[test]
fn masterminds_compare_table() {
    for (a, b, want) in mm::COMPARE {
        let got = Version::parse(a)
            .unwrap()
            .precedence(&Version::parse(b).unwrap());
        let want = match want {
            -1 => Ordering::Less,
            0 => Ordering::Equal,
            _ => Ordering::Greater,
        };
        assert_eq!(got, want, "{a} vs {b}");
    }
}

/// The range tables of Masterminds' README, each expanded into cases on both sides of every edge.
#[test]
fn documented_ranges() {
    let table: &[(&str, &str, bool)] = &[
        // Hyphen ranges.
        ("1.2 - 1.4.5", "1.2.0", true),
        ("1.2 - 1.4.5", "1.1.9", false),
        ("1.2 - 1.4.5", "1.4.5", true),
        ("1.2 - 1.4.5", "1.4.6", false),
        ("2.3.4 - 4.5", "2.3.3", false),
        ("2.3.4 - 4.5", "4.5.9", true),
        ("2.3.4 - 4.5", "4.6.0", false),
        ("v1.0.0 - v2.0.0", "2.0.0", true),
        // Wildcards.
        ("1.2.x", "1.2.0", true),
        ("1.2.x", "1.2.99", true),
        ("1.2.x", "1.3.0", false),
        (">= 1.2.x", "1.2.0", true),
        (">= 1.2.x", "1.1.9", false),
        ("<= 2.x", "2.99.0", true),
        ("<= 2.x", "3.0.0", false),
        ("*", "0.0.0", true),
        ("*", "99.99.99", true),
        ("X", "3.0.0", true),
        ("1.X", "1.9.0", true),
        // Tilde.
        ("~1.2.3", "1.2.3", true),
        ("~1.2.3", "1.2.99", true),
        ("~1.2.3", "1.3.0", false),
        ("~1", "1.99.0", true),
        ("~1", "2.0.0", false),
        ("~2.3", "2.3.9", true),
        ("~2.3", "2.4.0", false),
        ("~1.x", "1.5.0", true),
        ("~>1.0", "1.0.6", true),
        ("~>1.0", "1.1.0", false),
        // Caret.
        ("^1.2.3", "1.99.99", true),
        ("^1.2.3", "2.0.0", false),
        ("^1.2.3", "1.2.2", false),
        ("^1.2", "1.2.0", true),
        ("^2.3", "2.99.0", true),
        ("^2.x", "2.0.0", true),
        ("^2.x", "3.0.0", false),
        ("^0.2.3", "0.2.99", true),
        ("^0.2.3", "0.3.0", false),
        ("^0.2", "0.2.0", true),
        ("^0.0.3", "0.0.3", true),
        ("^0.0.3", "0.0.4", false),
        ("^0.0", "0.0.9", true),
        ("^0.0", "0.1.0", false),
        ("^0", "0.9.9", true),
        ("^0", "1.0.0", false),
        // A bare version is exactly that version; a partial one is a range.
        ("1.2.3", "1.2.3", true),
        ("1.2.3", "1.2.4", false),
        ("=1.2.3", "v1.2.3", true),
        ("1.2", "1.2.7", true),
        ("1", "1.7.0", true),
        ("1.2.3", "1.2.3+build.7", true),
        // Comparisons with `v` prefixes and whitespace.
        (">=v1.0.0", "1.0.0", true),
        ("  >=  1.0.0  ", "1.0.0", true),
        ("=>1.0", "1.0.0", true),
        ("=<1.0", "1.0.9", true),
        ("=<1.0.0", "1.0.1", false),
        // AND by comma or space, OR by ||.
        (">= 1.2, < 3.0.0 || >= 4.2.3", "2.9.9", true),
        (">= 1.2, < 3.0.0 || >= 4.2.3", "3.5.0", false),
        (">= 1.2, < 3.0.0 || >= 4.2.3", "4.2.3", true),
        (">=1.2 <3.0.0||>=4.2.3", "1.2.0", true),
        ("!=1.2.3, ~1.2", "1.2.3", false),
        ("!=1.2.3, ~1.2", "1.2.4", true),
        ("<1 || >=2, <3 || 5.x", "0.9.0", true),
        ("<1 || >=2, <3 || 5.x", "1.5.0", false),
        ("<1 || >=2, <3 || 5.x", "2.5.0", true),
        ("<1 || >=2, <3 || 5.x", "5.5.5", true),
        // Prereleases only where the AND group names one (v3.4).
        (">=1.2.3", "1.2.4-beta", false),
        (">=1.2.3-0", "1.2.4-beta", true),
        (">=1.2.3-0", "1.2.3-alpha", true),
        (">=1.2.3-0", "1.2.2", false),
        (">=1.0.0-0, <2.0.0", "1.5.0-rc.1", true),
        (">=1.0.0-0, <2 || >=3", "3.1.0-rc.1", false),
        (">=1.0.0-0, <2 || >=3", "1.1.0-rc.1", true),
        ("~1.0-0", "1.0.5-rc.1", true),
        ("^1.0.0-0", "1.9.0-rc.1", true),
        ("^1.0.0-0", "2.0.0-rc.1", false),
        ("1.2.3-beta.1", "1.2.3-beta.1", true),
        ("1.2.3-beta.1", "1.2.3-beta.2", false),
        ("<2.0.0-0", "1.9.9-rc.1", true),
        // The workflow document's example: ~1.0 takes patches only.
        ("~1.0", "1.0.5", true),
        ("~1.0", "1.0.6", true),
        ("~1.0", "1.1.0", false),
        ("~1.0", "2.0.0", false),
    ];
    run_table(table);
}

#[test]
fn total_case_count_is_substantial() {
    let n = mm::CONSTRAINT_CHECK.len() + mm::CONSTRAINTS_CHECK.len();
    assert!(n >= 150, "{n} version × constraint cases");
}
