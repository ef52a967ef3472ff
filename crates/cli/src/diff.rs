//! A unified diff of two texts, for `--dry-run`, as `diff -u` and Git print it.

/// Renders `old` → `new` as a unified diff with three lines of context, headed `a/NAME` and
/// `b/NAME`; a last line without a newline is marked as such.
pub fn unified(old: &str, new: &str, name: &str) -> String {
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(&format!("a/{name}"), &format!("b/{name}"))
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::unified;

    #[test]
    fn one_changed_line_in_context() {
        let old = "a\nb\nc\nd\ne\nf\ng\nh\n";
        let new = "a\nb\nc\nd\nE\nf\ng\nh\n";
        assert_eq!(
            unified(old, new, "x.yaml"),
            "--- a/x.yaml\n+++ b/x.yaml\n@@ -2,7 +2,7 @@\n b\n c\n d\n-e\n+E\n f\n g\n h\n"
        );
    }

    #[test]
    fn missing_final_newline_is_marked() {
        let d = unified("a\nb", "a\nb\nc", "f");
        assert!(
            d.contains("-b\n\\ No newline at end of file\n+b\n+c\n\\ No newline"),
            "{d}"
        );
    }

    #[test]
    fn equal_texts_have_no_hunks() {
        assert_eq!(unified("a\n", "a\n", "f"), "");
    }
}
