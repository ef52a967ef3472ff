//! Writing a scalar so that YAML reads back exactly the intended string.

use super::tree::Style;

/// True when `s` written plain would be read back as the same string (not a number, boolean,
/// null or date, and free of indicators), under both YAML 1.1 and 1.2 rules.
pub fn plain_is_safe(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    if s != s.trim() || resolves_to_non_string(s) {
        return false;
    }
    if "-?:,[]{}#&*!|>'\"%@`".contains(first)
        && !(first == '-' && s.len() > 1 && !s[1..].starts_with(' '))
    {
        return false;
    }
    if s.starts_with("- ") || s.starts_with("? ") || s.starts_with(": ") {
        return false;
    }
    // Control characters and the noncharacters YAML forbids are only written escaped.
    !(s.contains(": ")
        || s.contains(|c: char| {
            c.is_control() || matches!(c, '\u{feff}' | '\u{fffe}' | '\u{ffff}')
        })
        || s.contains(" #")
        || s.ends_with(':')
        || s.contains(['\n', '\r', '\t'])
        || s.contains(['{', '}', '[', ']', ',']))
}

/// Would a plain scalar with this text resolve to something other than a string?
fn resolves_to_non_string(s: &str) -> bool {
    const WORDS: &[&str] = &[
        "~", "null", "Null", "NULL", "true", "True", "TRUE", "false", "False", "FALSE", "y", "Y",
        "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "on", "On", "ON", "off", "Off", "OFF",
        ".inf", ".Inf", ".INF", "-.inf", "-.Inf", "-.INF", "+.inf", "+.Inf", "+.INF", ".nan",
        ".NaN", ".NAN", "<<", "=",
    ];
    if WORDS.contains(&s) {
        return true;
    }
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    let b = body.as_bytes();
    if b.is_empty() {
        return false;
    }
    // Integers in any base YAML 1.1 knows, and floats, with `_` separators.
    if let Some(hex) = body.strip_prefix("0x") {
        return !hex.is_empty() && hex.bytes().all(|c| c.is_ascii_hexdigit() || c == b'_');
    }
    if let Some(bin) = body.strip_prefix("0b") {
        return !bin.is_empty() && bin.bytes().all(|c| matches!(c, b'0' | b'1' | b'_'));
    }
    if let Some(oct) = body.strip_prefix("0o") {
        return !oct.is_empty() && oct.bytes().all(|c| matches!(c, b'0'..=b'7' | b'_'));
    }
    if is_float_like(body) {
        return true;
    }
    // YAML 1.1 sexagesimal numbers: 1:20, 190:20:30.15
    if b[0].is_ascii_digit()
        && body.contains(':')
        && body
            .bytes()
            .all(|c| c.is_ascii_digit() || matches!(c, b':' | b'.' | b'_'))
    {
        return true;
    }
    // YAML 1.1 timestamps: 2024-01-02, 2024-1-2T10:00:00Z
    looks_like_date(s)
}

fn is_float_like(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    let mut digits = 0;
    while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
        digits += usize::from(b[i].is_ascii_digit());
        i += 1;
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
            digits += usize::from(b[i].is_ascii_digit());
            i += 1;
        }
    }
    if digits == 0 {
        return false;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    i == b.len()
}

fn looks_like_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 8
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[5].is_ascii_digit()
        && s[5..].contains('-')
}

/// Renders `value` in the style of the scalar it replaces. A plain scalar stays plain unless
/// that would change its meaning, in which case it is double-quoted.
pub fn render(value: &str, style: Style) -> Option<String> {
    match style {
        Style::Plain if plain_is_safe(value) => Some(value.to_owned()),
        Style::Plain | Style::Double => Some(double_quote(value)),
        Style::Single if !value.contains(['\n', '\r']) => {
            Some(format!("'{}'", value.replace('\'', "''")))
        }
        Style::Single => Some(double_quote(value)),
        Style::Block => None,
    }
}

/// A new scalar with no style to keep: plain when safe, else double-quoted.
pub fn render_new(value: &str) -> String {
    if plain_is_safe(value) {
        value.to_owned()
    } else {
        double_quote(value)
    }
}

fn double_quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() || matches!(c, '\u{feff}' | '\u{fffe}' | '\u{ffff}') => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsafe_plain_values_are_quoted() {
        for s in [
            "1.10",
            "1",
            "1e3",
            "0x1F",
            "0o17",
            "true",
            "no",
            "on",
            "Y",
            "~",
            "null",
            "",
            "1:20",
            "2024-01-02",
            ".inf",
            "-1.5",
            "1_000",
            "a: b",
            "#x",
            "- a",
            "@x",
            "v1 #c",
            "[a]",
        ] {
            assert!(!plain_is_safe(s), "{s:?} must be quoted");
        }
        for s in [
            "v1.0.1",
            "1.0.1",
            "1.2.3-rc.1",
            "latest",
            "sha256:abc",
            "dev-latest",
            "nginx",
            "registry:5000/app",
            "x@sha256:ab",
            "-x",
            "1.0.0+build",
        ] {
            assert!(plain_is_safe(s), "{s:?} can stay plain");
        }
    }

    #[test]
    fn styles_are_kept() {
        assert_eq!(render("v2", Style::Plain).unwrap(), "v2");
        assert_eq!(render("1.10", Style::Plain).unwrap(), "\"1.10\"");
        assert_eq!(render("it's", Style::Single).unwrap(), "'it''s'");
        assert_eq!(render("a\"b", Style::Double).unwrap(), "\"a\\\"b\"");
        assert!(render("x", Style::Block).is_none());
    }
}
