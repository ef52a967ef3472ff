//! `driftwatch select` as a user runs it: stdin in, a tag and an exit code out.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::process::{Command, Stdio};

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn select(args: &[&str], stdin: &str) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_driftwatch"))
        .arg("select")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The command may exit on bad flags before reading stdin: a broken pipe is fine then.
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    let out = child.wait_with_output().unwrap();
    Run {
        code: out.status.code().unwrap(),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

fn chosen(args: &[&str], stdin: &str) -> String {
    let run = select(args, stdin);
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    run.stdout.trim_end().to_owned()
}

#[test]
fn workflow_semver_tilde_takes_patches_only() {
    let tags = "v1.0.5\nv1.0.6\nv1.1.0\nv2.0.0\n";
    assert_eq!(chosen(&["--constraint", "~1.0"], tags), "v1.0.6");
    let run = select(&["--constraint", "~1.0"], tags);
    assert_eq!(run.stdout, "v1.0.6\n", "the tag alone on stdout");
}

#[test]
fn default_is_semver_every_release_no_prereleases() {
    let tags = "1.0.0\n1.2.0\n2.0.0-rc.1\nlatest\nsha-abc123\n";
    assert_eq!(chosen(&[], tags), "1.2.0");
}

#[test]
fn prod_filters_from_the_workflow() {
    let tags = "v1.0.0\nv1.0.1\nv1.0.2-rc1\nv1.1.0-rc.1\nlatest\nv1.0.3-hotfix\n";
    let args = [
        "--allow-tags",
        r"regexp:^v[0-9]+\.[0-9]+\.[0-9]+$",
        "--ignore-tags",
        "*-rc*",
    ];
    assert_eq!(chosen(&args, tags), "v1.0.1");
}

#[test]
fn constraints_with_operators_and_spaces() {
    let tags = "1.1.0\n1.5.0\n2.0.0\n2.5.0\n3.0.0\n3.1.0\n";
    assert_eq!(
        chosen(&["--constraint", ">= 1.2, < 2.0 || ~3.0"], tags),
        "3.0.0"
    );
    assert_eq!(chosen(&["--constraint", "1.1 - 2.0"], tags), "2.0.0");
    assert_eq!(chosen(&["--constraint", "!=3.1.0"], tags), "3.0.0");
    assert_eq!(chosen(&["--constraint", "<2"], tags), "1.5.0");
}

#[test]
fn no_match_exits_3_with_nothing_on_stdout() {
    let run = select(&["--constraint", "^9"], "1.0.0\n2.0.0\n");
    assert_eq!(run.code, 3);
    assert_eq!(run.stdout, "");
    assert!(
        run.stderr.contains("^9") && run.stderr.contains("2 rejected"),
        "{}",
        run.stderr
    );
    let empty = select(&[], "");
    assert_eq!(empty.code, 3);
    assert_eq!(empty.stdout, "");
}

#[test]
fn bad_input_exits_1_and_quotes_it() {
    for (args, quoted) in [
        (vec!["--constraint", "~1.x.y"], "~1.x.y"),
        (vec!["--constraint", "latest"], "latest"),
        (vec!["--allow-tags", "regexp:^(v"], "regexp:^(v"),
        (vec!["--allow-tags", "v1.*"], "v1.*"),
        (vec!["--ignore-tags", "[a-"], "[a-"),
        (vec!["--strategy", "newest"], "newest"),
        (vec!["--platform", "linux"], "linux"),
    ] {
        let run = select(&args, "1.0.0\n");
        assert_eq!(run.code, 1, "{args:?}");
        assert!(run.stderr.contains(quoted), "{args:?}: {}", run.stderr);
        assert_eq!(run.stdout, "");
    }
    let unknown = select(&["--no-such-flag"], "1.0.0\n");
    assert_eq!(unknown.code, 1);
}

#[test]
fn malformed_stdin_names_the_line() {
    let run = select(
        &["--strategy", "newest-build"],
        "a\t2024-01-01T00:00:00Z\nb\tyesterday\n",
    );
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("line 2"), "{}", run.stderr);
    let run = select(
        &["--strategy", "newest-build"],
        "a\t2024-01-01T00:00:00Z\nb\n",
    );
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("line 2") && run.stderr.contains("\"b\""),
        "{}",
        run.stderr
    );
}

#[test]
fn newest_build_orders_by_time() {
    let tags = "main-aaa\t2024-03-01T10:00:00Z\nmain-bbb\t2024-03-02T09:00:00+02:00\n\
                main-ccc\t2024-03-01T23:59:59.999Z\n";
    assert_eq!(chosen(&["--strategy", "newest-build"], tags), "main-bbb");
    assert_eq!(chosen(&["--strategy", "latest"], tags), "main-bbb");
}

#[test]
fn alphabetical_numerical_and_order() {
    let tags = "9\n10\n100\n";
    assert_eq!(chosen(&["--strategy", "alphabetical"], tags), "9");
    assert_eq!(chosen(&["--strategy", "name"], tags), "9");
    assert_eq!(chosen(&["--strategy", "numerical"], tags), "100");
    assert_eq!(
        chosen(&["--strategy", "numerical", "--order", "desc"], tags),
        "9"
    );
}

#[test]
fn digest_prints_tag_at_digest() {
    let d1 = format!("sha256:{}", "a".repeat(64));
    let tags = format!("v1.0.0\tsha256:{}\ndev-latest\t{d1}\n", "b".repeat(64));
    let out = chosen(
        &["--strategy", "digest", "--constraint", "dev-latest"],
        &tags,
    );
    assert_eq!(out, format!("dev-latest@{d1}"));
    let missing = select(&["--strategy", "digest"], &tags);
    assert_eq!(missing.code, 1);
}

#[test]
fn extract_orders_by_captured_value() {
    let tags =
        "main-1a2b-1700000900\nmain-3c4d-1700001000\nmain-5e6f-170000099\nfeat-x-1800000000\n";
    let args = [
        "--strategy",
        "numerical",
        "--allow-tags",
        r"regexp:^main-[a-f0-9]+-(?P<ts>[0-9]+)$",
        "--extract",
        "$ts",
    ];
    assert_eq!(chosen(&args, tags), "main-3c4d-1700001000");
}

#[test]
fn platform_filter_uses_known_platforms() {
    let tags = "1.0.0 linux/amd64,linux/arm64\n1.1.0 linux/amd64\n1.2.0 linux/arm/v7\n";
    assert_eq!(chosen(&["--platform", "linux/arm64"], tags), "1.0.0");
    assert_eq!(chosen(&["--platform", "linux/arm"], tags), "1.2.0");
}

#[test]
fn json_reports_choice_and_every_rejection() {
    let run = select(
        &[
            "-o",
            "json",
            "--constraint",
            "~1.0",
            "--ignore-tags",
            "v1.0.4",
        ],
        "v1.0.4\nv1.0.5\nv1.0.6\nv1.1.0\nlatest\n",
    );
    assert_eq!(run.code, 0);
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(json["chosen"], "v1.0.6");
    assert_eq!(json["eligible"], serde_json::json!(["v1.0.6", "v1.0.5"]));
    let rejected = json["rejected"].as_array().unwrap();
    let reason = |tag: &str| {
        rejected
            .iter()
            .find(|r| r["tag"] == tag)
            .map(|r| r["reason"].as_str().unwrap().to_owned())
            .unwrap_or_else(|| panic!("{tag} not in rejected"))
    };
    assert_eq!(rejected.len(), 3);
    assert!(reason("v1.0.4").contains("ignore-tags"));
    assert!(reason("v1.1.0").contains("~1.0"));
    assert!(reason("latest").contains("not a semantic version"));

    let none = select(&["-o", "json", "--constraint", "^5"], "1.0.0\n");
    assert_eq!(none.code, 3);
    let json: serde_json::Value = serde_json::from_str(&none.stdout).unwrap();
    assert!(json["chosen"].is_null());
}

#[test]
fn blank_lines_comments_crlf_and_duplicates() {
    let tags = "# from the registry\r\n1.0.0\r\n\r\n1.0.0\r\n  1.1.0  \r\n";
    assert_eq!(chosen(&[], tags), "1.1.0");
}

#[test]
fn equal_versions_break_ties_by_tag_string() {
    assert_eq!(chosen(&[], "1.0.0\nv1.0.0\n1.0\n"), "v1.0.0");
}
