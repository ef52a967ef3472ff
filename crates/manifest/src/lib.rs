//! Lossless edits of the files where GitOps repositories keep image tags.
//!
//! Every edit is a splice into the original bytes, so comments, blank lines, key order,
//! indentation, quoting, flow style, document separators, CRLF line endings and a missing final
//! newline all survive. After editing, both versions are parsed and compared: if anything but the
//! intended values changed, the edit is refused and the caller keeps the original text.

mod argocd_source;
mod chart;
mod error;
mod flux;
mod helm;
mod kustomize;
mod workload;
pub mod yaml;

pub use argocd_source::{HelmParameter, set_argocd_source_helm, set_argocd_source_image};
pub use chart::set_chart_version;
pub use error::Error;
pub use flux::{has_flux_markers, set_flux_markers};
pub use helm::{get_helm_value, set_helm_value};
pub use kustomize::set_kustomize_image;
pub use workload::set_workload_images;

use driftwatch_policy::{ChartRef, Digest, ImageRef};

/// The image to write: which image (as the file names it), and its new name, tag and digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageChange {
    /// The image as the file refers to it, without tag: `nginx`, `ghcr.io/org/app`.
    pub image: String,
    /// A replacement name (kustomize `newName`), if the image moves.
    pub new_name: Option<String>,
    /// The new tag.
    pub tag: Option<String>,
    /// The new digest.
    pub digest: Option<Digest>,
}

impl ImageChange {
    /// `tag` and `tag@digest` after `:`, as a reference suffix.
    pub fn tag_suffix(&self) -> String {
        let mut s = String::new();
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(&d.to_string());
        }
        s
    }

    /// The tag, or `tag@digest`, as Helm values and .argocd-source parameters hold it.
    pub fn tag_value(&self) -> Option<String> {
        match (&self.tag, &self.digest) {
            (Some(t), Some(d)) => Some(format!("{t}@{d}")),
            (Some(t), None) => Some(t.clone()),
            (None, Some(d)) => Some(d.to_string()),
            (None, None) => None,
        }
    }
}

/// The result of an edit: the new text and whether it differs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The whole file after the edit (the input when nothing changed).
    pub text: String,
    /// False when the file already said so.
    pub changed: bool,
    /// The values that were replaced, in file order (the old tags, or old `name:tag` images).
    pub previous: Vec<String>,
    /// The 1-based lines of the replaced values (of the input).
    pub lines: Vec<usize>,
}

/// What kind of file an image edit targets, as told by its name and content.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// A kustomization (`images:` entries).
    Kustomization,
    /// argocd-image-updater's `.argocd-source-<app>.yaml`.
    ArgocdSource,
    /// A file with Flux `$imagepolicy` setter markers.
    FluxMarkers,
    /// Plain manifests with container `image:` fields.
    Workloads,
}

/// Tells the kind of file from its name and content (Helm values are named by the caller).
pub fn detect_kind(file_name: &str, src: &str) -> FileKind {
    let base = file_name.rsplit(['/', '\\']).next().unwrap_or(file_name);
    if base.starts_with(".argocd-source") {
        return FileKind::ArgocdSource;
    }
    if flux::has_flux_markers(src) {
        return FileKind::FluxMarkers;
    }
    if matches!(
        base,
        "kustomization.yaml" | "kustomization.yml" | "Kustomization"
    ) {
        return FileKind::Kustomization;
    }
    let is_kustomization = yaml::parse(src, file_name).ok().is_some_and(|docs| {
        docs.iter().filter_map(|d| d.root.as_ref()).any(|r| {
            match r.get("kind").and_then(yaml::Node::as_str) {
                Some(k) => k == "Kustomization" || k == "Component",
                None => r.get("images").is_some() || r.get("resources").is_some(),
            }
        })
    });
    if is_kustomization {
        FileKind::Kustomization
    } else {
        FileKind::Workloads
    }
}

/// Which values an image edit targets where the file kind alone does not say.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Target {
    /// Helm values path of the tag (`image.tag`), or of a `repo:tag` value (`image`).
    pub helm_path: Option<String>,
    /// Helm values path of the image name (`image.repository`).
    pub helm_name_path: Option<String>,
    /// Flux: only the markers of this image policy (`namespace:name`).
    pub flux_policy: Option<String>,
    /// A Helm chart's version rather than an image's tag: the tag is written as the chart's
    /// version ([`set_chart_version`]), whatever the kind of file.
    pub chart: Option<ChartRef>,
}

/// Writes `change` into the file `file_name` holding `src` (empty for a file to create), the
/// way its kind wants: the single entry point for `set-image` and the updater.
pub fn set_image(
    src: &str,
    file_name: &str,
    target: &Target,
    change: &ImageChange,
) -> Result<Outcome, Error> {
    let kind = detect_kind(file_name, src);
    let tag_value = change.tag_value().ok_or_else(|| Error::NotFound {
        file: file_name.to_owned(),
        what: "no tag or digest to write".to_owned(),
    })?;
    if let Some(chart) = &target.chart {
        return set_chart_version(src, file_name, chart, &tag_value);
    }
    let name_value = || {
        change
            .new_name
            .clone()
            .unwrap_or_else(|| change.image.clone())
    };
    match (kind, &target.helm_path) {
        (FileKind::ArgocdSource, Some(path)) => {
            let mut params = Vec::new();
            if let Some(name_path) = &target.helm_name_path {
                params.push(HelmParameter {
                    name: name_path.clone(),
                    value: name_value(),
                });
            }
            params.push(HelmParameter {
                name: path.clone(),
                value: tag_value,
            });
            set_argocd_source_helm(src, file_name, &params)
        }
        (FileKind::ArgocdSource, None) => set_argocd_source_image(src, file_name, change),
        (_, Some(path)) => {
            // A value that already names the image is the single-value `repo:tag` form.
            let value = match get_helm_value(src, file_name, path)?
                .as_deref()
                .map(split_name)
            {
                Some((repo, _)) if !repo.is_empty() && same_image(repo, &change.image) => {
                    format!("{repo}{}", change.tag_suffix())
                }
                _ => tag_value,
            };
            let first = set_helm_value(src, file_name, path, &value)?;
            match &target.helm_name_path {
                Some(name_path) => {
                    let second = set_helm_value(&first.text, file_name, name_path, &name_value())?;
                    let mut previous = first.previous;
                    previous.extend(second.previous);
                    let mut lines = first.lines;
                    lines.extend(second.lines);
                    Ok(Outcome {
                        changed: first.changed || second.changed,
                        text: second.text,
                        previous,
                        lines,
                    })
                }
                None => Ok(first),
            }
        }
        (FileKind::FluxMarkers, None) => {
            set_flux_markers(src, file_name, change, target.flux_policy.as_deref())
        }
        (FileKind::Kustomization, None) => set_kustomize_image(src, file_name, change),
        (FileKind::Workloads, None) => set_workload_images(src, file_name, change),
    }
}

/// The tag an outcome replaced, for reports: the first previous value, without the image name
/// when it was a whole `name:tag` reference.
pub fn previous_tag(outcome: &Outcome, image: &str) -> Option<String> {
    let first = outcome.previous.first()?;
    let (name, rest) = split_name(first);
    if !rest.is_empty() && same_image(name, image) {
        Some(rest.trim_start_matches(':').to_owned())
    } else {
        Some(first.clone())
    }
}

/// True when two image names denote the same repository (`nginx` = `docker.io/library/nginx`).
pub fn same_image(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    match (ImageRef::parse(a), ImageRef::parse(b)) {
        (Ok(x), Ok(y)) => x.name() == y.name(),
        _ => false,
    }
}

/// Splits an image string as written in a manifest into its name and the rest (`:tag@digest`).
pub fn split_name(image: &str) -> (&str, &str) {
    let end = image.find('@').unwrap_or(image.len());
    let slash = image[..end].rfind('/').map_or(0, |i| i + 1);
    match image[slash..end].find(':') {
        Some(i) => (&image[..slash + i], &image[slash + i..]),
        None => (&image[..end], &image[end..]),
    }
}

/// Applies an editor's splices, verifies them against the parsed original, and packages the
/// outcome. Shared by every target so none can skip verification.
fn finish(editor: yaml::Editor<'_>, docs: &[yaml::Document]) -> Result<Outcome, Error> {
    if !editor.changed() {
        return Ok(Outcome {
            text: editor.src().to_owned(),
            changed: false,
            previous: Vec::new(),
            lines: Vec::new(),
        });
    }
    let file = editor.file().to_owned();
    let yaml::edit::Applied {
        text,
        intents,
        previous,
        lines,
    } = editor.apply()?;
    yaml::verify::verify(docs, &text, &intents, &file)?;
    Ok(Outcome {
        changed: true,
        text,
        previous,
        lines,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_names() {
        assert_eq!(split_name("nginx:1.2"), ("nginx", ":1.2"));
        assert_eq!(
            split_name("localhost:5000/app:v1"),
            ("localhost:5000/app", ":v1")
        );
        assert_eq!(split_name("localhost:5000/app"), ("localhost:5000/app", ""));
        assert_eq!(split_name("app@sha256:ab"), ("app", "@sha256:ab"));
        assert_eq!(split_name("app:v1@sha256:ab"), ("app", ":v1@sha256:ab"));
    }

    #[test]
    fn same_images() {
        assert!(same_image("nginx", "docker.io/library/nginx"));
        assert!(same_image("index.docker.io/library/nginx", "nginx"));
        assert!(!same_image("nginx", "ghcr.io/nginx"));
    }
}
