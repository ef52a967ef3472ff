//! What Git says an application is: its branch head, and its path rendered at that head.
//! Renders are cached by (commit, path, tool version) under the state directory; a failed render
//! leaves the cache as it was, so the last good state stays in force.

use std::path::{Path, PathBuf};

use driftwatch_cluster::{Rendered, Tool, as_desired, render};
use driftwatch_engine::App;
use driftwatch_git::{BranchSpec, Mirror, redact_url};

use crate::error::{Error, io};

/// Mirrors for Git → cluster live apart from the updater's, so a fetch here never races a
/// commit being built there.
fn mirror(state: &Path, app: &App) -> Result<Mirror, Error> {
    Ok(Mirror::open(
        &state.join("deploy"),
        &app.repo,
        app.auth.clone(),
    )?)
}

/// Fetches the application's branch and returns its head commit.
pub fn head(state: &Path, app: &App) -> Result<String, Error> {
    let mirror = mirror(state, app)?;
    let spec = BranchSpec::parse(&app.branch, "main");
    let base = mirror.resolve_branch(&spec.base)?;
    mirror.fetch_head(&base)?.ok_or_else(|| Error::NoBranch {
        repo: redact_url(&app.repo),
        branch: base,
    })
}

/// The application's path, normalised, or the error naming the application: it may come from
/// anyone who can create an Argo CD Application, and must stay inside the repository.
pub(crate) fn app_path(app: &App) -> Result<String, Error> {
    driftwatch_git::normalize(&app.path).map_err(|reason| Error::Path {
        app: app.name.clone(),
        path: app.path.clone(),
        reason,
    })
}

/// Part of every cache key: renderings cached before symlinks were checked are not trusted.
const CACHE_GENERATION: &str = "confined-1";

fn cache_key(head: &str, path: &str) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(format!("{CACHE_GENERATION}\0{head}\0{path}").as_bytes())
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Renders the application's path at `head` (a commit already fetched by [`head`]).
pub fn render_at(state: &Path, app: &App, head: &str) -> Result<Rendered, Error> {
    let path = app_path(app)?;
    let extra = extra_paths(app)?;
    let cache_dir = state.join("render");
    // Named by application, so each keeps only its few latest renderings (see `keep_latest`).
    let prefix = format!("{}-", cache_key("", &app.name));
    // The Application's own image overrides are part of what is rendered.
    let rendered_from = format!(
        "{path}\0{}\0{}\0{}",
        app.source_images.join("\0"),
        extra.join("\0"),
        app.helm.as_ref().map(|h| h.to_string()).unwrap_or_default()
    );
    let cached = cache_dir.join(format!("{prefix}{}.json", cache_key(head, &rendered_from)));
    if let Some(hit) = std::fs::read(&cached)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| {
            let tool = Tool::parse(v["tool"].as_str()?)?;
            let objects = v["objects"].as_array()?.iter().map(as_desired).collect();
            // The tool's version is part of the key: a kustomize upgrade renders anew.
            (driftwatch_cluster::installed(&tool).as_ref() == Some(&tool))
                .then_some(Rendered { tool, objects })
        })
    {
        return Ok(hit);
    }
    let mirror = mirror(state, app)?;
    let tree = tempdir(state)?;
    let exported = mirror.export(head, &tree);
    let dir = tree.join(&path);
    let rendered = exported
        .map_err(|e| match e {
            e @ driftwatch_git::Error::Symlink { .. } => Error::Unsafe {
                app: app.name.clone(),
                refused: e,
            },
            e => Error::from(e),
        })
        .and_then(|()| inside(&dir, app, &path))
        .and_then(|()| crate::overrides::apply(&dir, app, &path))
        .and_then(|()| {
            match helm_template(&tree, &dir, app, &path)? {
                Some(args) => driftwatch_cluster::render_helm(&dir, &args),
                None => render(&dir, &app.name),
            }
            .map_err(|e| Error::from(e.map_paths(repo_relative(&tree))))
        })
        .and_then(|mut rendered| {
            // A multi-source Application's other sources in the same checkout: their objects
            // join the application's, as Argo CD merges its sources'.
            for other in &extra {
                let dir = tree.join(other);
                inside(&dir, app, other)?;
                let more = render(&dir, &app.name)
                    .map_err(|e| Error::from(e.map_paths(repo_relative(&tree))))?;
                rendered.objects.extend(more.objects);
            }
            Ok(rendered)
        });
    let _ = std::fs::remove_dir_all(&tree);
    let _ = std::fs::remove_file(tree.with_extension("values.yaml"));
    let mut rendered = rendered?;
    rendered.objects = rendered.objects.iter().map(as_desired).collect();
    std::fs::create_dir_all(&cache_dir).map_err(|e| io(&cache_dir, e))?;
    let body = serde_json::json!({
        "commit": head, "path": path, "tool": rendered.tool.to_string(), "objects": rendered.objects,
    });
    crate::inventory::write_atomic(&cached, body.to_string().as_bytes())?;
    keep_latest(&cache_dir, &prefix, RENDERINGS_KEPT);
    Ok(rendered)
}

/// For a chart of an Argo CD Application (one with `spec.source.helm`, or `.argocd-source`
/// overrides beside the chart), the `helm template` arguments its Helm parameters give, with
/// the overrides merged in as Argo CD merges them; inline values are written beside the export
/// (`tree`). `None`: not a chart, or a driftwatch.yaml application (rendered as before).
fn helm_template(
    tree: &Path,
    dir: &Path,
    app: &App,
    path: &str,
) -> Result<Option<Vec<String>>, Error> {
    if !dir.join("Chart.yaml").is_file() {
        return Ok(None);
    }
    let files = crate::overrides::files(dir, app, path);
    if app.helm.is_none() && files.is_empty() {
        return Ok(None);
    }
    let mut source = serde_json::json!({ "helm": app.helm.clone().unwrap_or_default() });
    for f in &files {
        let shown = Path::new(path)
            .join(f.file_name().unwrap_or_default())
            .display()
            .to_string();
        let text = std::fs::read_to_string(f).map_err(|e| io(Path::new(&shown), e))?;
        let patch: serde_json::Value = if text.trim().is_empty() {
            serde_json::Value::Null
        } else {
            serde_saphyr::from_str(&text).map_err(|e| Error::Io {
                path: shown.clone(),
                reason: e.to_string(),
            })?
        };
        if !patch.is_null() {
            crate::helm::merge_patch(&mut source, &patch);
        }
    }
    let values_path = tree.with_extension("values.yaml");
    let namespace = app
        .sync
        .as_ref()
        .map(|s| s.namespace.clone())
        .unwrap_or_default();
    // The Application's `ref` sources in the same checkout lend their files to values files.
    let refs = app
        .other_sources
        .iter()
        .filter(|o| o.same_checkout)
        .filter_map(|o| {
            let root = match &o.path {
                Some(p) => tree.join(p),
                None => tree.to_path_buf(),
            };
            Some((o.reference.clone()?, root.display().to_string()))
        })
        .collect();
    let t = crate::helm::template(
        &source["helm"],
        &app.name,
        &namespace,
        &values_path.display().to_string(),
        &refs,
    )
    .map_err(|reason| Error::Io {
        path: format!("application {}: {path}", app.name),
        reason,
    })?;
    if let Some(values) = &t.values {
        std::fs::write(&values_path, values).map_err(|e| io(&values_path, e))?;
    }
    Ok(Some(t.args))
}

/// The paths of a multi-source Application's other sources that are rendered with its own:
/// those in the same repository at the same revision. Any other source that renders
/// manifests (another repository or revision, a chart from a Helm repository) is refused,
/// naming it, rather than deployed without it; `ref`-only sources render nothing.
pub(crate) fn extra_paths(app: &App) -> Result<Vec<String>, Error> {
    let mut out = Vec::new();
    for other in app.other_sources.iter().filter(|o| o.renders()) {
        match &other.path {
            Some(p) if other.same_checkout => out.push(p.clone()),
            Some(_) => {
                return Err(Error::Source {
                    app: app.name.clone(),
                    source_text: other.what.clone(),
                    reason: "only sources in the same repository at the same revision as the \
                             one holding the images are rendered",
                });
            }
            None => {
                return Err(Error::Source {
                    app: app.name.clone(),
                    source_text: other.what.clone(),
                    reason: "charts from Helm repositories are not fetched",
                });
            }
        }
    }
    Ok(out)
}

/// The application's directory must be one inside the export: every link was checked to stay
/// inside by the export, so this refuses only a path that is missing or not a directory.
fn inside(dir: &Path, app: &App, path: &str) -> Result<(), Error> {
    if dir.is_dir() {
        Ok(())
    } else {
        Err(Error::Path {
            app: app.name.clone(),
            path: path.to_owned(),
            reason: "is not a directory in the repository at this commit",
        })
    }
}

/// Rewrites mentions of the temporary export `tree` (as given, and as the tools may print it
/// once symlinks are resolved) into repository-relative paths, so no error names
/// `state/tmp/render-…`.
fn repo_relative(tree: &Path) -> impl Fn(&str) -> String {
    let mut roots = vec![tree.display().to_string()];
    if let Ok(real) = tree.canonicalize() {
        roots.push(real.display().to_string());
    }
    // Longest first, so a root that is a prefix of another does not leave a fragment behind.
    roots.sort_by_key(|r| std::cmp::Reverse(r.len()));
    roots.dedup();
    move |text: &str| {
        let mut out = text.to_owned();
        for root in &roots {
            out = out
                .replace(&format!("{root}/"), "")
                .replace(root.as_str(), ".");
        }
        if out.is_empty() { ".".to_owned() } else { out }
    }
}

/// Renderings kept per application: the current one and a few before it (a rollback renders an
/// older commit again), so a long-running service does not fill its disk one commit at a time.
const RENDERINGS_KEPT: usize = 4;

/// Deletes all but the `keep` newest cache files starting with `prefix`.
fn keep_latest(dir: &Path, prefix: &str, keep: usize) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut files: Vec<(std::time::SystemTime, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.starts_with(prefix))
        })
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    files.sort_by_key(|f| std::cmp::Reverse(f.0));
    for (_, old) in files.into_iter().skip(keep) {
        let _ = std::fs::remove_file(old);
    }
}

/// The head and the rendering at it.
pub fn render_head(state: &Path, app: &App) -> Result<(String, Rendered), Error> {
    let head = head(state, app)?;
    let rendered = render_at(state, app, &head)?;
    Ok((head, rendered))
}

fn tempdir(state: &Path) -> Result<PathBuf, Error> {
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let dir = state.join("tmp").join(format!(
        "render-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_latest_renderings_are_kept() {
        let dir = std::env::temp_dir().join(format!("dw-render-cache-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..7 {
            std::fs::write(dir.join(format!("app-{i}.json")), "{}").unwrap();
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        std::fs::write(dir.join("other-0.json"), "{}").unwrap();
        keep_latest(&dir, "app-", 4);
        let mut left: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                "app-3.json",
                "app-4.json",
                "app-5.json",
                "app-6.json",
                "other-0.json"
            ]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
