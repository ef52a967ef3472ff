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
    gtmpl::template(template, Value::Map(data)).map_err(|e| Error::Template {
        which: "commit message",
        reason: e.to_string(),
    })
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
    let mut name = gtmpl::template(template, Value::Map(data)).map_err(|e| Error::Template {
        which: "branch name",
        reason: e.to_string(),
    })?;
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

    fn changes() -> Vec<Change> {
        vec![
            Change {
                image: "backend".into(),
                alias: "api".into(),
                old_tag: "v1.0.0".into(),
                new_tag: "v1.0.1".into(),
            },
            Change {
                image: "frontend".into(),
                alias: String::new(),
                old_tag: "v2.5.0".into(),
                new_tag: "v2.6.0".into(),
            },
        ]
    }

    #[test]
    fn default_template_renders_like_the_updater() {
        let msg = commit_message(DEFAULT_COMMIT_TEMPLATE, "shop", &changes()).unwrap();
        assert_eq!(
            msg,
            "build: automatic update of shop\n\nupdates image backend tag 'v1.0.0' to 'v1.0.1'\nupdates image frontend tag 'v2.5.0' to 'v2.6.0'\n"
        );
    }

    #[test]
    fn branch_templates() {
        let name = branch_name("image-updates-{{.SHA256}}", "argocd", "shop", &changes()).unwrap();
        assert_eq!(
            name,
            format!("image-updates-{}", changes_sha256(&changes()))
        );
        assert_eq!(changes_sha256(&changes()).len(), 64);
        let name = branch_name(
            "{{.AppName}}/{{range .Images}}{{.Name}}-{{.NewTag}}{{end}}",
            "",
            "shop",
            &changes()[..1],
        )
        .unwrap();
        assert_eq!(name, "shop/backend-v1.0.1");
        assert!(branch_name("bad name {{.AppName}}", "", "x", &[]).is_err());
        assert!(commit_message("{{ if }", "x", &[]).is_err());
    }

    #[test]
    fn branch_specs() {
        assert_eq!(
            BranchSpec::parse("main", "dev"),
            BranchSpec {
                base: "main".into(),
                target: None
            }
        );
        assert_eq!(
            BranchSpec::parse(":image-updates-{{.SHA256}}", "main"),
            BranchSpec {
                base: "main".into(),
                target: Some("image-updates-{{.SHA256}}".into())
            }
        );
        assert_eq!(BranchSpec::parse("", "main").base, "main");
    }
}
