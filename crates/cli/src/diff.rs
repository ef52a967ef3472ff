//! A unified diff of two texts, for `--dry-run`. Edits touch few lines, so the common prefix and
//! suffix are trimmed first and only the middle is compared line by line.

/// Renders `old` → `new` as a unified diff with three lines of context.
pub fn unified(old: &str, new: &str, name: &str) -> String {
    let a: Vec<&str> = old.split_inclusive('\n').collect();
    let b: Vec<&str> = new.split_inclusive('\n').collect();
    let prefix = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let max_suffix = a.len().min(b.len()) - prefix;
    let suffix = a
        .iter()
        .rev()
        .zip(b.iter().rev())
        .take(max_suffix)
        .take_while(|(x, y)| x == y)
        .count();
    let (am, bm) = (&a[prefix..a.len() - suffix], &b[prefix..b.len() - suffix]);
    let ops = lcs_ops(am, bm);

    // Lines of the whole file tagged ' ', '-' or '+'.
    let mut lines: Vec<(char, &str)> = a[..prefix].iter().map(|l| (' ', *l)).collect();
    lines.extend(ops);
    lines.extend(a[a.len() - suffix..].iter().map(|l| (' ', *l)));

    let mut out = format!("--- a/{name}\n+++ b/{name}\n");
    let changed: Vec<usize> = (0..lines.len()).filter(|&i| lines[i].0 != ' ').collect();
    let mut i = 0;
    while i < changed.len() {
        let start = changed[i].saturating_sub(3);
        let mut end = (changed[i] + 4).min(lines.len());
        while i + 1 < changed.len() && changed[i + 1] < end + 3 {
            i += 1;
            end = (changed[i] + 4).min(lines.len());
        }
        let old_start = lines[..start].iter().filter(|l| l.0 != '+').count() + 1;
        let new_start = lines[..start].iter().filter(|l| l.0 != '-').count() + 1;
        let old_len = lines[start..end].iter().filter(|l| l.0 != '+').count();
        let new_len = lines[start..end].iter().filter(|l| l.0 != '-').count();
        out.push_str(&format!(
            "@@ -{old_start},{old_len} +{new_start},{new_len} @@\n"
        ));
        for (tag, text) in &lines[start..end] {
            out.push(*tag);
            out.push_str(text);
            if !text.ends_with('\n') {
                out.push_str("\n\\ No newline at end of file\n");
            }
        }
        i += 1;
    }
    out
}

fn lcs_ops<'a>(a: &[&'a str], b: &[&'a str]) -> Vec<(char, &'a str)> {
    // A quadratic table is fine for the few changed lines; beyond that, replace wholesale.
    if a.len() * b.len() > 4_000_000 {
        let mut ops: Vec<(char, &str)> = a.iter().map(|l| ('-', *l)).collect();
        ops.extend(b.iter().map(|l| ('+', *l)));
        return ops;
    }
    let mut table = vec![vec![0u32; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            table[i][j] = if a[i] == b[j] {
                table[i + 1][j + 1] + 1
            } else {
                table[i + 1][j].max(table[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut ops) = (0, 0, Vec::new());
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            ops.push((' ', a[i]));
            i += 1;
            j += 1;
        } else if i < a.len() && (j == b.len() || table[i + 1][j] >= table[i][j + 1]) {
            ops.push(('-', a[i]));
            i += 1;
        } else {
            ops.push(('+', b[j]));
            j += 1;
        }
    }
    ops
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_change() {
        let old = "a\nb\nc\nd\ne\nf\ng\nh\n";
        let new = "a\nb\nc\nd\nE\nf\ng\nh\n";
        assert_eq!(
            unified(old, new, "x.yaml"),
            "--- a/x.yaml\n+++ b/x.yaml\n@@ -2,7 +2,7 @@\n b\n c\n d\n-e\n+E\n f\n g\n h\n"
        );
    }

    #[test]
    fn appended_line_without_final_newline() {
        let d = unified("a\nb", "a\nb\nc", "f");
        assert!(
            d.contains("-b\n\\ No newline at end of file\n+b\n+c\n\\ No newline"),
            "{d}"
        );
    }
}
