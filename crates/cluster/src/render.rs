//! Rendering an application's path into objects: a kustomization through `kustomize build`
//! (or `kubectl kustomize`), a chart through `helm template`, anything else as plain YAML/JSON
//! files of the directory (not recursive, as Argo CD's default).

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::error::Error;

/// What rendered the objects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tool {
    /// Plain manifests, read here.
    Plain,
    /// kustomize (stand-alone or kubectl's), with its version.
    Kustomize(String),
    /// helm, with its version.
    Helm(String),
}

impl std::fmt::Display for Tool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Tool::Plain => f.write_str("plain YAML"),
            Tool::Kustomize(v) => write!(f, "kustomize {v}"),
            Tool::Helm(v) => write!(f, "helm {v}"),
        }
    }
}

impl Tool {
    /// Reads back what `Display` wrote (for caches).
    pub fn parse(s: &str) -> Option<Tool> {
        if s == "plain YAML" {
            Some(Tool::Plain)
        } else if let Some(v) = s.strip_prefix("kustomize ") {
            Some(Tool::Kustomize(v.to_owned()))
        } else {
            s.strip_prefix("helm ").map(|v| Tool::Helm(v.to_owned()))
        }
    }
}

/// Rendered objects and the tool that made them (part of any cache key).
#[derive(Clone, Debug)]
pub struct Rendered {
    /// The tool and its version.
    pub tool: Tool,
    /// Kubernetes objects, `List`s expanded.
    pub objects: Vec<Value>,
}

/// Parses a YAML or JSON stream into Kubernetes objects; `List` kinds are expanded and empty
/// documents skipped. Every object must have `apiVersion`, `kind` and `metadata.name`.
pub fn parse_objects(text: &str, file: &str) -> Result<Vec<Value>, Error> {
    let docs: Vec<Value> = serde_saphyr::from_multiple(text).map_err(|e| Error::Manifest {
        file: file.to_owned(),
        reason: format!("invalid YAML: {e}"),
    })?;
    let mut out = Vec::new();
    for (i, doc) in docs.into_iter().enumerate() {
        if doc.is_null() {
            continue;
        }
        let items = if doc["kind"].as_str().is_some_and(|k| k.ends_with("List"))
            && doc["items"].is_array()
        {
            doc["items"].as_array().cloned().unwrap_or_default()
        } else {
            vec![doc]
        };
        for obj in items {
            let has = |p: &str| {
                obj.pointer(p)
                    .and_then(Value::as_str)
                    .is_some_and(|s| !s.is_empty())
            };
            if !(has("/apiVersion") && has("/kind") && has("/metadata/name")) {
                return Err(Error::Manifest {
                    file: file.to_owned(),
                    reason: format!(
                        "document {} is not a Kubernetes object (apiVersion, kind and metadata.name are required)",
                        i + 1
                    ),
                });
            }
            out.push(obj);
        }
    }
    Ok(out)
}

fn tool_output(cmd: &mut Command, dir: &Path, tool: &str) -> Result<String, Error> {
    let err = |reason: String| Error::Render {
        dir: dir.display().to_string(),
        tool: tool.to_owned(),
        reason,
    };
    let out = cmd.output().map_err(|e| err(format!("cannot run: {e}")))?;
    if !out.status.success() {
        return Err(err(String::from_utf8_lossy(&out.stderr).trim().to_owned()));
    }
    String::from_utf8(out.stdout).map_err(|_| err("output is not UTF-8".to_owned()))
}

fn have(binary: &str) -> bool {
    Command::new(binary)
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Whether a standalone `kustomize` is installed (else `kubectl kustomize` renders). Probed once
/// per process: each probe spawns a process, and renders run on every sync.
fn standalone_kustomize() -> bool {
    static STANDALONE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *STANDALONE.get_or_init(|| have("kustomize"))
}

fn kustomize_version(dir: &Path) -> Result<String, Error> {
    if standalone_kustomize() {
        let v = tool_output(Command::new("kustomize").arg("version"), dir, "kustomize")?;
        Ok(v.trim().to_owned())
    } else {
        let v = tool_output(
            Command::new("kubectl").args(["version", "--client"]),
            dir,
            "kubectl kustomize",
        )?;
        Ok(v.lines()
            .find_map(|l| l.strip_prefix("Kustomize Version:"))
            .unwrap_or("unknown")
            .trim()
            .to_owned())
    }
}

/// The same tool as installed now (a cached rendering is reused only if this equals its tool).
pub fn installed(tool: &Tool) -> Option<Tool> {
    let here = Path::new(".");
    match tool {
        Tool::Plain => Some(Tool::Plain),
        Tool::Kustomize(_) => kustomize_version(here).ok().map(Tool::Kustomize),
        Tool::Helm(_) => tool_output(
            Command::new("helm").args(["version", "--short"]),
            here,
            "helm",
        )
        .ok()
        .map(|v| Tool::Helm(v.trim().to_owned())),
    }
}

/// kustomize's flags, spelled out rather than left to its defaults: a pushed kustomization may
/// load files only below its own root (`../base` works as a kustomization of its own, but not
/// `../../../etc/passwd` as a resource or patch), and may run nothing — exec and containerised
/// plugins and the Helm inflator stay off, whatever a future default or a user's config says.
pub const KUSTOMIZE_CONFINED: [&str; 4] = [
    "--load-restrictor",
    "LoadRestrictionsRootOnly",
    "--enable-alpha-plugins=false",
    "--enable-helm=false",
];

/// Renders `dir`. `release` names a Helm release.
pub fn render(dir: &Path, release: &str) -> Result<Rendered, Error> {
    let shown = dir.display().to_string();
    if ["kustomization.yaml", "kustomization.yml", "Kustomization"]
        .iter()
        .any(|k| dir.join(k).exists())
    {
        let version = kustomize_version(dir)?;
        let text = if standalone_kustomize() {
            tool_output(
                Command::new("kustomize")
                    .arg("build")
                    .args(KUSTOMIZE_CONFINED)
                    .arg(dir),
                dir,
                "kustomize",
            )?
        } else {
            tool_output(
                Command::new("kubectl")
                    .arg("kustomize")
                    .args(KUSTOMIZE_CONFINED)
                    .arg(dir),
                dir,
                "kubectl kustomize",
            )?
        };
        return Ok(Rendered {
            objects: parse_objects(&text, &format!("{shown} (kustomize output)"))?,
            tool: Tool::Kustomize(version),
        });
    }
    if dir.join("Chart.yaml").exists() {
        if !have("helm") {
            return Err(Error::Render {
                dir: shown,
                tool: "helm".to_owned(),
                reason: "the helm binary is not installed".to_owned(),
            });
        }
        let v = tool_output(
            Command::new("helm").args(["version", "--short"]),
            dir,
            "helm",
        )?;
        let text = tool_output(
            Command::new("helm").arg("template").arg(release).arg(dir),
            dir,
            "helm",
        )?;
        return Ok(Rendered {
            objects: parse_objects(&text, &format!("{shown} (helm template)"))?,
            tool: Tool::Helm(v.trim().to_owned()),
        });
    }
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| Error::Manifest {
            file: shown.clone(),
            reason: e.to_string(),
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            // Hidden files are not manifests: Argo CD skips them too, and its parameter
            // overrides (`.argocd-source*.yaml`) live there.
            let hidden = p
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('.'));
            p.is_file()
                && !hidden
                && p.extension()
                    .is_some_and(|x| x == "yaml" || x == "yml" || x == "json")
        })
        .collect();
    files.sort();
    let mut objects = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).map_err(|e| Error::Manifest {
            file: f.display().to_string(),
            reason: e.to_string(),
        })?;
        objects.extend(parse_objects(&text, &f.display().to_string())?);
    }
    Ok(Rendered {
        tool: Tool::Plain,
        objects,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("dw-render-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn plain_directory() {
        let d = dir("plain");
        std::fs::write(d.join("a.yaml"), "apiVersion: v1\nkind: Service\nmetadata: {name: web}\n---\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n").unwrap();
        std::fs::write(d.join("b.json"), r#"{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"}}]}"#).unwrap();
        std::fs::write(d.join("README.md"), "not yaml").unwrap();
        let r = render(&d, "x").unwrap();
        assert_eq!(r.tool, Tool::Plain);
        assert_eq!(r.objects.len(), 3);
        std::fs::write(d.join("c.yaml"), "kind: Broken\n").unwrap();
        let e = render(&d, "x").unwrap_err().to_string();
        assert!(e.contains("c.yaml") && e.contains("document 1"), "{e}");
        std::fs::write(d.join("c.yaml"), "a: [1\n").unwrap();
        assert!(render(&d, "x").unwrap_err().to_string().contains("c.yaml"));
        let _ = std::fs::remove_dir_all(d);
    }

    #[test]
    fn kustomize_overlay() {
        let d = dir("kustomize");
        std::fs::create_dir_all(d.join("base")).unwrap();
        std::fs::create_dir_all(d.join("prod")).unwrap();
        std::fs::write(d.join("base/deploy.yaml"), "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: backend\nspec:\n  template:\n    spec:\n      containers:\n      - name: backend\n        image: backend\n").unwrap();
        std::fs::write(
            d.join("base/kustomization.yaml"),
            "resources:\n- deploy.yaml\n",
        )
        .unwrap();
        std::fs::write(d.join("prod/kustomization.yaml"), "resources:\n- ../base\nimages:\n- name: backend\n  newName: registry.local/backend\n  newTag: v1.0.1\n").unwrap();
        let r = render(&d.join("prod"), "x").unwrap();
        assert!(matches!(r.tool, Tool::Kustomize(_)));
        assert_eq!(
            r.objects[0]
                .pointer("/spec/template/spec/containers/0/image")
                .and_then(Value::as_str),
            Some("registry.local/backend:v1.0.1")
        );
        std::fs::write(
            d.join("prod/kustomization.yaml"),
            "resources:\n- ../missing\n",
        )
        .unwrap();
        let e = render(&d.join("prod"), "x").unwrap_err().to_string();
        assert!(e.contains("prod") && e.contains("kustomize"), "{e}");
        let _ = std::fs::remove_dir_all(d);
    }

    #[test]
    fn kustomize_loads_nothing_from_outside_its_root() {
        let d = dir("kustomize-root");
        std::fs::create_dir_all(d.join("app")).unwrap();
        std::fs::write(
            d.join("secret.yaml"),
            "apiVersion: v1\nkind: Secret\nmetadata: {name: host-secret}\n",
        )
        .unwrap();
        std::fs::write(
            d.join("app/kustomization.yaml"),
            "resources:\n- ../secret.yaml\n",
        )
        .unwrap();
        let e = render(&d.join("app"), "x").unwrap_err().to_string();
        assert!(
            e.contains("secret.yaml") && !e.contains("kind: Secret"),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(d);
    }
}
