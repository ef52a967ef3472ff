//! Rendering an application's path into objects: a kustomization through `kustomize build`
//! (or `kubectl kustomize`), a chart through `helm template`, anything else as plain YAML/JSON
//! files of the directory (not recursive, as Argo CD's default).

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::error::Error;

/// Bounds on one rendering, so that a broken or hostile repository (a generator that never
/// ends, a chart that prints gigabytes, a YAML alias bomb) cannot hold a sync forever or fill
/// the memory of the process that serves every other application. Argo CD bounds its repo
/// server the same way (a timeout, and a cap on the manifests' combined size).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RenderLimits {
    /// How long kustomize or helm may run.
    pub time: Duration,
    /// Bytes of manifests: a tool's output, or a directory's files together.
    pub output_bytes: usize,
    /// Kubernetes objects in one rendering.
    pub objects: usize,
}

impl Default for RenderLimits {
    /// 90 s (Argo CD's repo server default), 32 MiB, 10,000 objects: far above real
    /// applications, far below what would hurt the process.
    fn default() -> Self {
        RenderLimits {
            time: Duration::from_secs(90),
            output_bytes: 32 << 20,
            objects: 10_000,
        }
    }
}

fn limit_error(dir: &Path, tool: &str, reason: String) -> Error {
    Error::Render {
        dir: dir.display().to_string(),
        tool: tool.to_owned(),
        reason,
    }
}

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
/// documents skipped. Every object must have `apiVersion`, `kind` and `metadata.name`. Bounded
/// by the default [`RenderLimits`].
pub fn parse_objects(text: &str, file: &str) -> Result<Vec<Value>, Error> {
    parse_limited(text, file, &RenderLimits::default())
}

/// [`parse_objects`] within `limits`: the YAML parser's budget (documents, nodes, aliases) is
/// set from them — its own defaults stop at 1,024 documents, fewer than a large kustomization
/// prints — and more objects than allowed is an error naming the file.
pub fn parse_limited(text: &str, file: &str, limits: &RenderLimits) -> Result<Vec<Value>, Error> {
    // Both are non-exhaustive: set field by field on the defaults.
    let mut budget = serde_saphyr::Budget::default();
    budget.max_reader_input_bytes = Some(limits.output_bytes.saturating_add(1024));
    budget.max_documents = limits.objects.saturating_mul(2).saturating_add(16);
    // Enough for `objects` large objects; an alias bomb hits it within a second.
    budget.max_nodes = limits.objects.saturating_mul(200).max(budget.max_nodes);
    budget.max_events = limits.objects.saturating_mul(400).max(budget.max_events);
    // Rendered manifests hardly use anchors; copies of anchored nodes are what a bomb makes.
    budget.max_recorded_anchor_events = 100_000;
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    let docs: Vec<Value> =
        serde_saphyr::from_multiple_with_options(text, options).map_err(|e| Error::Manifest {
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
            if out.len() > limits.objects {
                return Err(Error::Manifest {
                    file: file.to_owned(),
                    reason: format!(
                        "more than {} objects (render limit; split the application)",
                        limits.objects
                    ),
                });
            }
        }
    }
    Ok(out)
}

fn tool_output(cmd: &mut Command, dir: &Path, tool: &str) -> Result<String, Error> {
    limited_output(cmd, dir, tool, &RenderLimits::default())
}

/// Runs a renderer within `limits`: killed when it runs too long or prints too much, its
/// stderr (the reason it failed) kept to its first 64 KiB.
fn limited_output(
    cmd: &mut Command,
    dir: &Path,
    tool: &str,
    limits: &RenderLimits,
) -> Result<String, Error> {
    use std::os::unix::process::CommandExt as _;
    let err = |reason: String| limit_error(dir, tool, reason);
    let mut child = cmd
        // Its own process group, so that what it started (a shell's children, helm's plugins)
        // is killed with it and no orphan keeps the pipes open.
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| err(format!("cannot run: {e}")))?;
    let over = Arc::new(AtomicBool::new(false));
    let cap = limits.output_bytes;
    let stdout = child.stdout.take().map(|out| {
        let over = over.clone();
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            // One byte past the cap tells "too much" from "exactly the cap".
            let read = out.take(cap as u64 + 1).read_to_end(&mut buf);
            if buf.len() > cap {
                over.store(true, Ordering::Release);
            }
            read.map(|_| buf)
        })
    });
    let stderr = child.stderr.take().map(|err| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = err.take(64 << 10).read_to_end(&mut buf);
            buf
        })
    });
    let deadline = Instant::now() + limits.time;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Ok(status),
            Ok(None) if over.load(Ordering::Acquire) => {
                break Err(format!(
                    "printed more than {} MiB (render limit)",
                    cap >> 20
                ));
            }
            Ok(None) if Instant::now() >= deadline => {
                break Err(format!(
                    "still running after {:.1} s (render limit)",
                    limits.time.as_secs_f64()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => break Err(format!("waiting for it: {e}")),
        }
    };
    if status.is_err() {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", child.id())])
            .stderr(Stdio::null())
            .status();
        let _ = child.kill();
        let _ = child.wait();
    }
    // The readers end once the child (and anything it left holding the pipes) is gone.
    let out = stdout.map(|t| t.join());
    let errtext = stderr
        .and_then(|t| t.join().ok())
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let status = status.map_err(err)?;
    if over.load(Ordering::Acquire) {
        return Err(err(format!(
            "printed more than {} MiB (render limit)",
            cap >> 20
        )));
    }
    if !status.success() {
        return Err(err(errtext));
    }
    let bytes = match out {
        Some(Ok(Ok(b))) => b,
        _ => return Err(err("its output could not be read".to_owned())),
    };
    String::from_utf8(bytes).map_err(|_| err("output is not UTF-8".to_owned()))
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

/// Renders the chart in `dir` with `helm ARGS` run from that directory (the arguments an Argo
/// CD Application's Helm parameters give), within the default [`RenderLimits`].
pub fn render_helm(dir: &Path, args: &[String]) -> Result<Rendered, Error> {
    let shown = dir.display().to_string();
    let limits = RenderLimits::default();
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
    let text = limited_output(
        Command::new("helm").args(args).current_dir(dir),
        dir,
        "helm",
        &limits,
    )?;
    Ok(Rendered {
        objects: parse_limited(&text, &format!("{shown} (helm template)"), &limits)?,
        tool: Tool::Helm(v.trim().to_owned()),
    })
}

/// Renders `dir` within the default [`RenderLimits`]. `release` names a Helm release.
pub fn render(dir: &Path, release: &str) -> Result<Rendered, Error> {
    render_limited(dir, release, &RenderLimits::default())
}

/// Renders `dir` within `limits`: a renderer that runs too long or prints too much is killed,
/// and too many bytes of files or too many objects is an error — each naming the limit.
pub fn render_limited(dir: &Path, release: &str, limits: &RenderLimits) -> Result<Rendered, Error> {
    let shown = dir.display().to_string();
    if ["kustomization.yaml", "kustomization.yml", "Kustomization"]
        .iter()
        .any(|k| dir.join(k).exists())
    {
        let version = kustomize_version(dir)?;
        let text = if standalone_kustomize() {
            limited_output(
                Command::new("kustomize")
                    .arg("build")
                    .args(KUSTOMIZE_CONFINED)
                    .arg(dir),
                dir,
                "kustomize",
                limits,
            )?
        } else {
            limited_output(
                Command::new("kubectl")
                    .arg("kustomize")
                    .args(KUSTOMIZE_CONFINED)
                    .arg(dir),
                dir,
                "kubectl kustomize",
                limits,
            )?
        };
        return Ok(Rendered {
            objects: parse_limited(&text, &format!("{shown} (kustomize output)"), limits)?,
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
        let text = limited_output(
            Command::new("helm").arg("template").arg(release).arg(dir),
            dir,
            "helm",
            limits,
        )?;
        return Ok(Rendered {
            objects: parse_limited(&text, &format!("{shown} (helm template)"), limits)?,
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
    let mut bytes = 0usize;
    for f in files {
        let size = std::fs::metadata(&f).map_or(0, |m| m.len());
        bytes = bytes.saturating_add(usize::try_from(size).unwrap_or(usize::MAX));
        if bytes > limits.output_bytes {
            return Err(Error::Manifest {
                file: f.display().to_string(),
                reason: format!(
                    "the directory's manifests pass {} MiB here (render limit)",
                    limits.output_bytes >> 20
                ),
            });
        }
        let text = std::fs::read_to_string(&f).map_err(|e| Error::Manifest {
            file: f.display().to_string(),
            reason: e.to_string(),
        })?;
        let left = RenderLimits {
            objects: limits.objects.saturating_sub(objects.len()),
            ..*limits
        };
        objects.extend(parse_limited(&text, &f.display().to_string(), &left)?);
    }
    Ok(Rendered {
        tool: Tool::Plain,
        objects,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_renderings_parse_and_the_object_limit_names_the_file() {
        // More documents than the YAML parser's own default budget (1,024) allows.
        let stream: String = (0..1500)
            .map(|i| format!("---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c{i}\n"))
            .collect();
        assert_eq!(parse_objects(&stream, "big.yaml").unwrap().len(), 1500);
        let tight = RenderLimits {
            objects: 1000,
            ..RenderLimits::default()
        };
        let err = parse_limited(&stream, "big.yaml", &tight)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("big.yaml") && err.contains("more than 1000 objects (render limit"),
            "{err}"
        );
    }

    #[test]
    fn a_yaml_alias_bomb_is_refused_quickly() {
        let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for (name, prev) in ["b", "c", "d", "e", "f", "g", "h", "i"]
            .iter()
            .zip(["a", "b", "c", "d", "e", "f", "g", "h"])
        {
            let refs = vec![format!("*{prev}"); 10].join(", ");
            bomb.push_str(&format!("{name}: &{name} [{refs}]\n"));
        }
        bomb.push_str("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n");
        let err = parse_objects(&bomb, "bomb.yaml").unwrap_err().to_string();
        assert!(err.contains("bomb.yaml") && err.contains("budget"), "{err}");
    }

    #[test]
    fn a_renderer_that_runs_too_long_or_prints_too_much_is_killed() {
        let here = Path::new(".");
        let limits = RenderLimits {
            time: Duration::from_millis(300),
            output_bytes: 1 << 20,
            objects: 10,
        };
        // A shell whose child outlives it would keep the pipes open: the whole group goes.
        let err = limited_output(
            Command::new("sh").args(["-c", "sleep 30; echo late"]),
            here,
            "slow",
            &limits,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("still running after 0.3 s (render limit)"),
            "{err}"
        );
        let err = limited_output(&mut Command::new("yes"), here, "chatty", &limits)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("printed more than 1 MiB (render limit)"),
            "{err}"
        );
        // Within the limits, the output and a failure's stderr come through.
        let ok = limited_output(Command::new("echo").arg("fine"), here, "echo", &limits);
        assert_eq!(ok.unwrap(), "fine\n");
        let err = limited_output(
            Command::new("sh").args(["-c", "echo broken >&2; exit 3"]),
            here,
            "failing",
            &limits,
        )
        .unwrap_err()
        .to_string();
        assert!(err.ends_with("broken"), "{err}");
    }

    #[test]
    fn a_directory_past_the_byte_limit_names_the_file() {
        let tmp = std::env::temp_dir().join(format!("dw-render-limit-{}", std::process::id()));
        std::fs::create_dir_all(&tmp).unwrap();
        let doc = |n: usize| {
            format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c{n}\ndata:\n  v: \"{}\"\n",
                "x".repeat(600 << 10)
            )
        };
        std::fs::write(tmp.join("a.yaml"), doc(1)).unwrap();
        std::fs::write(tmp.join("b.yaml"), doc(2)).unwrap();
        let limits = RenderLimits {
            output_bytes: 1 << 20,
            ..RenderLimits::default()
        };
        let err = render_limited(&tmp, "r", &limits).unwrap_err().to_string();
        let _ = std::fs::remove_dir_all(&tmp);
        assert!(
            err.contains("b.yaml") && err.contains("pass 1 MiB here (render limit)"),
            "{err}"
        );
    }

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
