//! Argo CD's parameter overrides: `.argocd-source.yaml` and `.argocd-source-<app>.yaml` beside
//! an application's manifests. argocd-image-updater writes image updates there (its default
//! write-back target), and Argo CD applies them when it renders; so does driftwatch, on the
//! exported copy it renders from — otherwise the cluster would never see those updates.

use std::path::Path;

use driftwatch_engine::App;
use driftwatch_manifest::{ImageChange, set_kustomize_image, split_name};
use driftwatch_policy::Digest;

use crate::error::{Error, io};

/// The override files that apply to `app` in `dir`, in the order Argo CD merges them.
pub(crate) fn files(dir: &Path, app: &App, path: &str) -> Vec<std::path::PathBuf> {
    let mut out = vec![dir.join(".argocd-source.yaml")];
    let own = Path::new(&app.file);
    if let Some(name) = own.file_name().and_then(|n| n.to_str())
        && name.starts_with(".argocd-source-")
        && own.parent() == Some(Path::new(path))
    {
        out.push(dir.join(name));
    }
    out.into_iter().filter(|p| p.is_file()).collect()
}

/// One `kustomize.images` entry (`[name=]newName[:tag][@digest]`) as an edit of the
/// kustomization's `images:`.
fn image_change(entry: &str, file: &str) -> Result<ImageChange, Error> {
    let bad = |why: &str| Error::Io {
        path: file.to_owned(),
        reason: format!("kustomize.images entry {entry:?}: {why}"),
    };
    let (from, to) = match entry.split_once('=') {
        Some((f, t)) => (Some(f.trim()), t.trim()),
        None => (None, entry.trim()),
    };
    let (name, rest) = split_name(to);
    if name.is_empty() {
        return Err(bad("no image name"));
    }
    let (tag, digest) = match rest.split_once('@') {
        Some((t, d)) => (t, Some(Digest::parse(d).map_err(|e| bad(&e.to_string()))?)),
        None => (rest, None),
    };
    let tag = tag.strip_prefix(':').filter(|t| !t.is_empty());
    Ok(ImageChange {
        image: from.unwrap_or(name).to_owned(),
        new_name: from.map(|_| name.to_owned()),
        tag: tag.map(str::to_owned),
        digest,
    })
}

/// Applies the overrides to the exported tree at `dir` (the application's normalised `path`
/// in the repository). Kustomize image overrides are written into the kustomization; an
/// application without one gets none. The export's symlinks were checked to stay inside it, so
/// following them here reads and writes only the temporary copy. Errors name files by their
/// repository path, never the export's location.
pub fn apply(dir: &Path, app: &App, path: &str) -> Result<(), Error> {
    let kustomization = ["kustomization.yaml", "kustomization.yml", "Kustomization"]
        .iter()
        .map(|k| dir.join(k))
        .find(|p| p.is_file());
    let shown = |f: &Path| {
        f.strip_prefix(dir)
            .map(|p| Path::new(path).join(p).display().to_string())
            .unwrap_or_else(|_| "(outside the application)".to_owned())
    };
    let k_shown = kustomization.as_deref().map(shown).unwrap_or_default();
    // The Application's own `spec.source.kustomize.images` first; the files override them.
    if let Some(k) = &kustomization
        && !app.source_images.is_empty()
    {
        let what = format!("Application {}: spec.source.kustomize.images", app.name);
        for entry in &app.source_images {
            let change = image_change(entry, &what)?;
            let src = std::fs::read_to_string(k).map_err(|e| io(Path::new(&k_shown), e))?;
            let out = set_kustomize_image(&src, &k_shown, &change).map_err(|e| Error::Io {
                path: what.clone(),
                reason: e.to_string(),
            })?;
            if out.changed {
                std::fs::write(k, out.text).map_err(|e| io(Path::new(&k_shown), e))?;
            }
        }
    }
    for f in files(dir, app, path) {
        let shown = shown(&f);
        let text = std::fs::read_to_string(&f).map_err(|e| io(Path::new(&shown), e))?;
        let v: serde_json::Value =
            serde_saphyr::from_str::<serde_json::Value>(&text).map_err(|e| Error::Io {
                path: shown.clone(),
                reason: e.to_string(),
            })?;
        let images: Vec<&str> = v
            .pointer("/kustomize/images")
            .and_then(serde_json::Value::as_array)
            .map(|a| a.iter().filter_map(serde_json::Value::as_str).collect())
            .unwrap_or_default();
        let Some(k) = &kustomization else { continue };
        for entry in images {
            let change = image_change(entry, &shown)?;
            let src = std::fs::read_to_string(k).map_err(|e| io(Path::new(&k_shown), e))?;
            let out = set_kustomize_image(&src, &k_shown, &change).map_err(|e| Error::Io {
                path: shown.clone(),
                reason: e.to_string(),
            })?;
            if out.changed {
                std::fs::write(k, out.text).map_err(|e| io(Path::new(&k_shown), e))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries() {
        let c = image_change("127.0.0.1:5000/team/api:1.0.1", "f").unwrap();
        assert_eq!(c.image, "127.0.0.1:5000/team/api");
        assert_eq!(c.new_name, None);
        assert_eq!(c.tag.as_deref(), Some("1.0.1"));
        let c = image_change(
            "api=reg.example/team/api:2.0@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "f",
        )
        .unwrap();
        assert_eq!(c.image, "api");
        assert_eq!(c.new_name.as_deref(), Some("reg.example/team/api"));
        assert_eq!(c.tag.as_deref(), Some("2.0"));
        assert!(c.digest.is_some());
        assert!(image_change("x:1@sha256:zz", "f").is_err());
    }
}
