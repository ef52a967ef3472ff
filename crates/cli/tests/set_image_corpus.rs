//! Golden tests: every case under `tests/corpus/` is edited by `driftwatch set-image` and the
//! result compared byte for byte with `expected` (or the error with `expected-error`).
//!
//! A case directory holds the input file under its real name, `args` (the file name, then the
//! rest of the command line) and the expectation. `DRIFTWATCH_BLESS=1` rewrites `expected`
//! from the current output, for review in the diff before committing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

fn run(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_driftwatch"))
        .arg("set-image")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

fn cases() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut dirs: Vec<PathBuf> = fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

#[test]
fn corpus_is_large_enough() {
    let n = cases()
        .iter()
        .filter(|c| c.join("expected").exists())
        .count();
    assert!(n >= 40, "only {n} golden cases");
}

#[test]
fn corpus_golden_bytes() {
    let bless = std::env::var_os("DRIFTWATCH_BLESS").is_some();
    let mut failures = Vec::new();
    for case in cases() {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let args_line = fs::read_to_string(case.join("args")).unwrap();
        let args: Vec<&str> = args_line.split_whitespace().collect();
        let file = args[0];
        let work = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join("corpus")
            .join(&name);
        let _ = fs::remove_dir_all(&work);
        fs::create_dir_all(&work).unwrap();
        let input = fs::read(case.join(file)).ok();
        if let Some(bytes) = &input {
            fs::write(work.join(file), bytes).unwrap();
        }

        // --dry-run never writes.
        let dry = run(&work, &[&["--dry-run"], &args[..]].concat());
        assert_eq!(
            fs::read(work.join(file)).ok(),
            input,
            "{name}: --dry-run wrote the file"
        );

        let out = run(&work, &args);
        let after = fs::read(work.join(file)).ok();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        if let Ok(want) = fs::read_to_string(case.join("expected-error")) {
            if out.status.code() != Some(1) || !stderr.contains(want.trim()) {
                failures.push(format!(
                    "{name}: want error {:?}, got {:?}: {stderr}",
                    want.trim(),
                    out.status.code()
                ));
            }
            if after != input {
                failures.push(format!("{name}: the file changed although the edit failed"));
            }
            continue;
        }
        if !out.status.success() {
            failures.push(format!("{name}: failed: {stderr}"));
            continue;
        }
        let after = after.unwrap();
        if bless {
            fs::write(case.join("expected"), &after).unwrap();
            continue;
        }
        let want = fs::read(case.join("expected")).unwrap_or_default();
        if after != want {
            failures.push(format!(
                "{name}: output differs\n--- want\n{}\n--- got\n{}",
                String::from_utf8_lossy(&want),
                String::from_utf8_lossy(&after)
            ));
            continue;
        }
        let changed = input.as_deref() != Some(after.as_slice());
        let dry_out = String::from_utf8_lossy(&dry.stdout);
        if changed == dry_out.is_empty() {
            failures.push(format!(
                "{name}: --dry-run printed {dry_out:?} for changed={changed}"
            ));
        }
        // Running again changes nothing and prints nothing.
        let again = run(&work, &args);
        if !again.status.success()
            || !again.stdout.is_empty()
            || fs::read(work.join(file)).unwrap() != after
        {
            failures.push(format!("{name}: second run was not a no-op"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
