//! Properties that must hold for every input, not just the tabled ones.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use driftwatch_policy::{
    Candidate, Constraint, ImageRef, Order, Policy, Strategy as Pick, TagFilter, Version,
};
use proptest::prelude::*;

fn release() -> impl Strategy<Value = (u64, u64, u64)> {
    (0u64..4, 0u64..4, 0u64..4)
}

fn text((a, b, c): (u64, u64, u64)) -> String {
    format!("{a}.{b}.{c}")
}

fn matches(constraint: &str, version: &str) -> bool {
    Constraint::parse(constraint)
        .unwrap_or_else(|e| panic!("{e}"))
        .matches(&Version::parse(version).unwrap_or_else(|e| panic!("{e}")))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn caret_is_within_greater_equal(x in release(), y in release()) {
        let (x, y) = (text(x), text(y));
        let (caret, ge) = (format!("^{x}"), format!(">={x}"));
        if matches(&caret, &y) {
            prop_assert!(matches(&ge, &y));
        }
    }

    #[test]
    fn tilde_is_within_caret_above_zero(x in release(), y in release()) {
        let (xs, ys) = (text(x), text(y));
        let (tilde, caret) = (format!("~{xs}"), format!("^{xs}"));
        if x.0 > 0 && matches(&tilde, &ys) {
            prop_assert!(matches(&caret, &ys));
        }
    }

    #[test]
    fn hyphen_range_is_two_comparisons(x in release(), z in release(), y in release()) {
        let (x, z, y) = (text(x), text(z), text(y));
        prop_assert_eq!(
            matches(&format!("{x} - {z}"), &y),
            matches(&format!(">={x}, <={z}"), &y)
        );
    }

    #[test]
    fn not_equal_is_the_negation_of_equal(x in release(), y in release()) {
        let (x, y) = (text(x), text(y));
        prop_assert_eq!(matches(&format!("!={x}"), &y), !matches(&format!("={x}"), &y));
    }

    #[test]
    fn or_is_union_and_comma_is_intersection(
        a in release(), b in release(), y in release(),
        ops in (0usize..6, 0usize..6),
    ) {
        const OPS: [&str; 6] = [">", "<", ">=", "<=", "~", "^"];
        let (a, b, y) = (text(a), text(b), text(y));
        let (ca, cb) = (format!("{}{a}", OPS[ops.0]), format!("{}{b}", OPS[ops.1]));
        let (ma, mb) = (matches(&ca, &y), matches(&cb, &y));
        prop_assert_eq!(matches(&format!("{ca} || {cb}"), &y), ma || mb);
        prop_assert_eq!(matches(&format!("{ca}, {cb}"), &y), ma && mb);
        prop_assert_eq!(matches(&format!("{ca} {cb}"), &y), ma && mb);
    }

    #[test]
    fn less_and_greater_equal_partition_releases(x in release(), y in release()) {
        let (x, y) = (text(x), text(y));
        prop_assert_ne!(matches(&format!("<{x}"), &y), matches(&format!(">={x}"), &y));
    }

    #[test]
    fn prereleases_need_a_prerelease_in_the_group(x in release(), y in release(), pre in "[a-z]{1,5}") {
        let v = format!("{}-{pre}", text(y));
        for op in [">", "<", ">=", "<=", "~", "^", "=", "!="] {
            let c = format!("{op}{}", text(x));
            prop_assert!(!matches(&c, &v), "{} matched {}", c, v);
        }
    }

    #[test]
    fn displayed_versions_parse_back_equal(s in "v?[0-9]{1,3}(\\.[0-9]{1,3}){0,2}(-[a-z0-9]{1,4})?(\\+[a-z0-9]{1,4})?") {
        if let Ok(v) = Version::parse(&s) {
            let again = Version::parse(&v.to_string()).unwrap_or_else(|e| panic!("{e}"));
            prop_assert_eq!(v.precedence(&again), std::cmp::Ordering::Equal);
        }
    }

    #[test]
    fn parsers_never_panic(s in "\\PC{0,40}") {
        let _ = Version::parse(&s);
        let _ = Constraint::parse(&s);
        let _ = ImageRef::parse(&s);
    }

    #[test]
    fn parsers_never_panic_on_grammar_soup(s in "[v0-9xX*.,|<>=!~^ \\-+a-z/:@]{0,30}") {
        let _ = Constraint::parse(&s);
        let _ = ImageRef::parse(&s);
        let _ = driftwatch_policy::ImageListEntry::parse_list(&s);
    }

    #[test]
    fn references_round_trip(
        host in "(ghcr\\.io|localhost:5000|docker\\.io|reg\\.example\\.com)",
        path in "[a-z0-9]{1,6}(/[a-z0-9]{1,6}){0,2}",
        tag in "[a-zA-Z0-9_][a-zA-Z0-9_.-]{0,10}",
    ) {
        let r = ImageRef::parse(&format!("{host}/{path}:{tag}")).unwrap_or_else(|e| panic!("{e}"));
        let again = ImageRef::parse(&r.to_string()).unwrap_or_else(|e| panic!("{e}"));
        prop_assert_eq!(&r, &again);
        prop_assert_eq!(r.tag(), Some(tag.as_str()));
    }

    #[test]
    fn select_is_the_maximum_of_the_eligible(tags in proptest::collection::vec("v?[0-9]{1,2}(\\.[0-9]{1,2}){0,2}(-rc[0-9])?", 0..40)) {
        let candidates: Vec<Candidate> = tags.iter().map(Candidate::new).collect();
        let policy = Policy::new(Pick::Semver, Some(">=1, <50"), TagFilter::new(), Order::Asc)
            .unwrap_or_else(|e| panic!("{e}"));
        let constraint = Constraint::parse(">=1, <50").unwrap_or_else(|e| panic!("{e}"));
        let best = tags
            .iter()
            .filter_map(|t| Version::parse(t).ok().map(|v| (v, t)))
            .filter(|(v, _)| constraint.matches(v))
            .max_by(|(a, ta), (b, tb)| a.precedence(b).then_with(|| ta.cmp(tb)))
            .map(|(_, t)| t.clone());
        let chosen = policy.select(&candidates).map(|i| candidates[i].tag.clone());
        prop_assert_eq!(&chosen, &best);
        prop_assert_eq!(policy.evaluate(&candidates).chosen().map(|i| candidates[i].tag.clone()), best);
    }
}
