//! Commit messages and write-branch names from Go text/template templates, with the variables
//! argocd-image-updater gives them, so existing templates keep working.
//!
//! `gtmpl` is unmaintained; everything goes through this module so it can be replaced alone.

use std::collections::HashMap;

use gtmpl_value::Value;
use sha2::{Digest, Sha256};

use crate::error::Error;

/// argocd-image-updater's default commit message template.
pub const DEFAULT_COMMIT_TEMPLATE: &str = "build: automatic update of {{ .AppName }}\n\n{{ range .AppChanges -}}\nupdates image {{ .Image }} tag '{{ .OldTag }}' to '{{ .NewTag }}'\n{{ end -}}\n";

/// One image change, as templates see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// The image name (`.Image` in commit templates, `.Name` in branch templates).
    pub image: String,
    /// The alias from the image list, if any.
    pub alias: String,
    /// The tag before.
    pub old_tag: String,
    /// The tag after.
    pub new_tag: String,
}

/// Renders `template` over `data`, after making sure every action is closed: gtmpl's lexer
/// never returns on an action left open at the end (`x {{ .AppName `), and templates come from
/// configuration and from Applications whoever may create one writes.
fn render(template: &str, which: &'static str, data: Value) -> Result<String, Error> {
    if let Some(at) = unclosed_action(template) {
        return Err(Error::Template {
            which,
            reason: format!("the action opened at byte {at} is never closed with }}}}"),
        });
    }
    // gtmpl panics on some input: its lexer slices by byte and panics on a multi-byte
    // character inside an action (found by fuzz/fuzz_targets/commit_template.rs). That panic
    // is on gtmpl's own lexer thread, which dies, and the parse then fails with an error; its
    // parser also unwraps on the calling thread. And some closed actions still never finish
    // (also found by the fuzzer). A template written in an Application must never take the
    // caller down or stall it, so gtmpl runs on a thread of its own, a panic is an invalid
    // template, and a render that has not finished in RENDER_DEADLINE is abandoned (the thread
    // is left behind: a thread cannot be stopped from outside).
    // An abandoned render keeps spinning on its thread, so a template that once ran past the
    // deadline is refused at once afterwards: it costs one thread per process, not one per
    // cycle.
    let hung = HUNG
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let known_hung = hung.iter().any(|t| t == template);
    drop(hung);
    if known_hung {
        return Err(deadline_error(which));
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let template_owned = template.to_owned();
    std::thread::Builder::new()
        .name("template".to_owned())
        .spawn(move || {
            let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                gtmpl::template(&template_owned, data).map_err(|e| e.to_string())
            }));
            // The receiver may have given up waiting: nothing to do then.
            let _ = tx.send(out);
        })
        .map_err(|e| Error::Template {
            which,
            reason: format!("cannot start rendering: {e}"),
        })?;
    match rx.recv_timeout(RENDER_DEADLINE) {
        Ok(Ok(out)) => out.map_err(|reason| Error::Template { which, reason }),
        Ok(Err(_)) => Err(Error::Template {
            which,
            reason: "the template engine cannot read it (a character it does not handle inside \
                     {{ }})"
                .to_owned(),
        }),
        Err(_) => {
            HUNG.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(template.to_owned());
            Err(deadline_error(which))
        }
    }
}

/// Templates whose render was abandoned at the deadline.
static HUNG: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

fn deadline_error(which: &'static str) -> Error {
    Error::Template {
        which,
        reason: format!(
            "rendering did not finish within {} s",
            RENDER_DEADLINE.as_secs()
        ),
    }
}

/// How long a template may take to render; real ones take microseconds.
const RENDER_DEADLINE: std::time::Duration = std::time::Duration::from_secs(2);

/// Where the first action that is never closed opens, skipping quoted strings, raw strings,
/// characters and comments inside actions (a `}}` there does not close it).
fn unclosed_action(template: &str) -> Option<usize> {
    let bytes = template.as_bytes();
    let mut i = 0;
    while let Some(found) = template.get(i..).and_then(|rest| rest.find("{{")) {
        let start = i + found;
        let mut j = start + 2;
        loop {
            let rest = bytes.get(j..)?;
            if rest.is_empty() {
                return Some(start);
            }
            if rest.starts_with(b"}}") {
                i = j + 2;
                break;
            }
            let skip_to = |close: &[u8], from: usize| -> Option<usize> {
                let mut k = from;
                while k < bytes.len() {
                    if bytes[k] == b'\\' && close == b"\"" {
                        k += 2;
                        continue;
                    }
                    if bytes[k..].starts_with(close) {
                        return Some(k + close.len());
                    }
                    k += 1;
                }
                None
            };
            j = match rest[0] {
                b'"' => skip_to(b"\"", j + 1),
                b'`' => skip_to(b"`", j + 1),
                b'\'' => skip_to(b"'", j + 1),
                b'/' if rest.starts_with(b"/*") => skip_to(b"*/", j + 2),
                _ => Some(j + 1),
            }
            .unwrap_or(bytes.len());
            if j >= bytes.len() {
                return Some(start);
            }
        }
    }
    None
}

fn s(v: &str) -> Value {
    Value::from(v.to_owned())
}

/// One change as a template value; the image is `.Image` in commit and `.Name` in branch
/// templates.
fn change_value(c: &Change, image_key: &str) -> Value {
    let mut m = HashMap::new();
    m.insert(image_key.to_owned(), s(&c.image));
    m.insert("Alias".to_owned(), s(&c.alias));
    m.insert("OldTag".to_owned(), s(&c.old_tag));
    m.insert("NewTag".to_owned(), s(&c.new_tag));
    Value::Map(m)
}

/// Renders a commit message: `.AppName` and `.AppChanges` (each `.Image .OldTag .NewTag`).
pub fn commit_message(template: &str, app: &str, changes: &[Change]) -> Result<String, Error> {
    let list = changes.iter().map(|c| change_value(c, "Image")).collect();
    let mut data = HashMap::new();
    data.insert("AppName".to_owned(), s(app));
    data.insert("AppChanges".to_owned(), Value::Array(list));
    render(template, "commit message", Value::Map(data))
}

/// Renders a template over JSON data (objects' keys as fields, arrays for `range`), for
/// templates whose data is a serialised value, such as notifications over an event. `which`
/// names the template in errors.
pub fn render_json(
    template: &str,
    which: &'static str,
    data: &serde_json::Value,
) -> Result<String, Error> {
    render(template, which, json_value(data))
}

fn json_value(v: &serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::Nil,
        serde_json::Value::Bool(b) => Value::from(*b),
        serde_json::Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Value::from(i),
            (None, Some(u)) => Value::from(u),
            _ => Value::from(n.as_f64().unwrap_or(0.0)),
        },
        serde_json::Value::String(s) => Value::from(s.clone()),
        serde_json::Value::Array(a) => Value::Array(a.iter().map(json_value).collect()),
        serde_json::Value::Object(o) => Value::Map(
            o.iter()
                .map(|(k, v)| (k.clone(), json_value(v)))
                .collect::<HashMap<_, _>>(),
        ),
    }
}

/// The SHA256 of a change list, computed as argocd-image-updater does for branch names.
pub fn changes_sha256(changes: &[Change]) -> String {
    let mut hasher = Sha256::new();
    for c in changes {
        hasher.update(format!("{}-{}-{},", c.image, c.old_tag, c.new_tag).as_bytes());
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Renders a write-branch name: `.AppNamespace .AppName .TargetKey .Images .SHA256`; truncated
/// to 255 bytes as argocd-image-updater does.
pub fn branch_name(
    template: &str,
    app_namespace: &str,
    app: &str,
    changes: &[Change],
) -> Result<String, Error> {
    let images = changes.iter().map(|c| change_value(c, "Name")).collect();
    let mut data = HashMap::new();
    data.insert("AppNamespace".to_owned(), s(app_namespace));
    data.insert("AppName".to_owned(), s(app));
    data.insert("TargetKey".to_owned(), s(""));
    data.insert("Images".to_owned(), Value::Array(images));
    data.insert("SHA256".to_owned(), s(&changes_sha256(changes)));
    let mut name = render(template, "branch name", Value::Map(data))?;
    if name.len() > 255 {
        let mut cut = 255;
        while !name.is_char_boundary(cut) {
            cut -= 1;
        }
        name.truncate(cut);
    }
    if !valid_branch(&name) {
        return Err(Error::Template {
            which: "branch name",
            reason: format!("{name:?} is not a valid branch name"),
        });
    }
    Ok(name)
}

/// Where to push: `base`, or `base:target` (target may be a template, e.g.
/// `main:image-updates-{{.SHA256}}`; an empty base means the application's branch).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BranchSpec {
    /// The branch to read and commit on top of.
    pub base: String,
    /// The branch to push to, when different from the base (a template until rendered).
    pub target: Option<String>,
}

impl BranchSpec {
    /// Parses `branch`, `base:target` or `:target` (base = `default_base`).
    pub fn parse(spec: &str, default_base: &str) -> Self {
        match spec.split_once(':') {
            Some((base, target)) => BranchSpec {
                base: if base.is_empty() {
                    default_base.to_owned()
                } else {
                    base.to_owned()
                },
                target: Some(target.to_owned()).filter(|t| !t.is_empty()),
            },
            None if spec.is_empty() => BranchSpec {
                base: default_base.to_owned(),
                target: None,
            },
            None => BranchSpec {
                base: spec.to_owned(),
                target: None,
            },
        }
    }
}

/// Git's ref-name rules, the parts that matter for generated names.
pub fn valid_branch(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(['-', '/', '.'])
        && !name.ends_with(['/', '.'])
        && !name.ends_with(".lock")
        && !name.contains("..")
        && !name.contains("//")
        && !name.contains("@{")
        && !name
            .bytes()
            .any(|b| b < 0x20 || b == 0x7f || b" ~^:?*[\\".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_template_that_never_finishes_is_an_error() {
        // The fuzzer's input (a closed action with a raw string and a stray `+`) on which
        // gtmpl never returned.
        let started = std::time::Instant::now();
        let err = commit_message("{{(`i\\u/q(`+zAqg}{ }}", "app", &[]).unwrap_err();
        assert!(matches!(err, Error::Template { .. }), "{err}");
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        // Refused at once the second time: no second thread left spinning.
        let again = std::time::Instant::now();
        assert!(commit_message("{{(`i\\u/q(`+zAqg}{ }}", "app", &[]).is_err());
        assert!(again.elapsed() < std::time::Duration::from_millis(500));
    }

    #[test]
    fn a_template_that_panics_the_engine_is_an_error() {
        // The fuzzer's input: a multi-byte character inside an action makes gtmpl's lexer
        // thread slice inside it and panic; the render must still end in an error.
        let template = "{{. pApNa1e }}: {{ range .AppChanges }}{{ -}}age }} {{ .OldTag\u{6c2}} \u{4c0}}{{ .Ne}{{ .}}\n{{ end }}";
        let err = commit_message(template, "app", &[]).unwrap_err();
        assert!(matches!(err, Error::Template { .. }), "{err}");
    }

    #[test]
    fn an_action_left_open_is_an_error_not_a_hang() {
        for t in [
            "x {{ .AppName ",
            "{{ .AppName",
            "{{ \"}}\" ",
            "{{/* }} */",
            "a {{ `}}` ",
        ] {
            let err = commit_message(t, "a", &[]).unwrap_err().to_string();
            assert!(err.contains("never closed"), "{t:?}: {err}");
        }
        assert_eq!(unclosed_action("{{ .A }} and {{ .B"), Some(13));
        assert_eq!(unclosed_action("{{ \"}}\" }} {{/* }} */}}"), None);
        assert_eq!(unclosed_action("no actions }}"), None);
        assert_eq!(
            commit_message("{{ .AppName }} {{ \"}}\" }}", "shop", &[]).unwrap(),
            "shop }}"
        );
        let err = branch_name("u-{{ .AppName", "", "a", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("branch name"), "{err}");
    }

    #[test]
    fn json_data_renders_with_ranges() {
        let data = serde_json::json!({"app": "shop", "n": 2, "ok": true, "xs": [{"to": "1"}, {"to": "2"}]});
        let out = render_json(
            "{{ .app }} {{ .n }} {{ .ok }}{{ range .xs }} {{ .to }}{{ end }}",
            "t",
            &data,
        )
        .unwrap();
        assert_eq!(out, "shop 2 true 1 2");
    }
}
