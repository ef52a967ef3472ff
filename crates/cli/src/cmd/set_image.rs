//! `driftwatch set-image`: one lossless image edit of one file, as the updater makes them.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};
use driftwatch_manifest::{FileKind, ImageChange, Target, detect_kind, set_image, split_name};
use driftwatch_policy::{Digest, is_valid_tag};

use crate::diff;
use crate::exit::CmdResult;

/// `set-image` arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The file to edit in place: a kustomization, Helm values (with --helm-path), an
    /// .argocd-source-<app>.yaml, a file with Flux $imagepolicy markers, or plain manifests.
    pub file: PathBuf,
    /// The image as the file names it, without tag (`nginx`, `ghcr.io/org/app`); for a
    /// kustomization, `name=newName` also sets `newName`.
    pub image: String,
    /// The new tag, `tag@sha256:…`, or `@sha256:…` for a digest alone.
    pub tag: String,
    /// Helm values path of the tag (`image.tag`), or of a `repo:tag` value (`image`).
    #[arg(long, value_name = "PATH")]
    pub helm_path: Option<String>,
    /// Helm values path of the image name (`image.repository`), set to IMAGE.
    #[arg(long, value_name = "PATH")]
    pub helm_name_path: Option<String>,
    /// Flux: only the markers of this image policy (`namespace:name`).
    #[arg(long, value_name = "NS:NAME")]
    pub policy: Option<String>,
    /// Print the diff instead of writing the file.
    #[arg(long)]
    pub dry_run: bool,
}

/// Edits the file; prints nothing when it already says so.
pub fn run(args: &Args) -> CmdResult {
    let change = parse_change(&args.image, &args.tag)?;
    let name = args.file.display().to_string();
    let existing = match std::fs::read(&args.file) {
        Ok(bytes) => {
            Some(String::from_utf8(bytes).map_err(|_| anyhow!("{name}: not valid UTF-8 text"))?)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(anyhow!(e).context(format!("reading {name}")).into()),
    };
    let kind = detect_kind(&name, existing.as_deref().unwrap_or(""));
    let target = Target {
        helm_path: args.helm_path.clone(),
        helm_name_path: args.helm_name_path.clone(),
        flux_policy: args.policy.clone(),
        chart: None,
    };
    let src = match existing {
        Some(s) => s,
        // A missing write-back file is created, as argocd-image-updater does.
        None if kind == FileKind::ArgocdSource => String::new(),
        None => return Err(anyhow!("{name}: no such file").into()),
    };
    let outcome = set_image(&src, &name, &target, &change)?;
    if !outcome.changed {
        return Ok(());
    }
    if args.dry_run {
        print!("{}", diff::unified(&src, &outcome.text, &name));
        return Ok(());
    }
    write_atomically(&args.file, outcome.text.as_bytes())
        .with_context(|| format!("writing {name}"))?;
    println!("{name}: {} set to {}", change.image, args.tag);
    Ok(())
}

/// Reads IMAGE (`name` or `name=newName`) and TAG (`tag`, `tag@digest`, `@digest`).
pub fn parse_change(image: &str, tag: &str) -> anyhow::Result<ImageChange> {
    let (image, new_name) = match image.split_once('=') {
        Some((old, new)) => (old.trim(), Some(new.trim().to_owned())),
        None => (image.trim(), None),
    };
    if image.is_empty() {
        bail!("IMAGE: empty");
    }
    if !split_name(image).1.is_empty() {
        bail!(
            "IMAGE {image:?}: give the image without a tag or digest; the tag is the next argument"
        );
    }
    driftwatch_policy::ImageRef::parse(image).context("IMAGE")?;
    if let Some(n) = &new_name {
        driftwatch_policy::ImageRef::parse(n).context("IMAGE (new name)")?;
    }
    let (tag, digest) = match tag.split_once('@') {
        Some((t, d)) => (t, Some(Digest::parse(d).context("TAG (digest)")?)),
        None => (tag, None),
    };
    let tag = if tag.is_empty() && digest.is_some() {
        None
    } else if is_valid_tag(tag) {
        Some(tag.to_owned())
    } else {
        bail!("TAG {tag:?} is not a valid image tag");
    };
    Ok(ImageChange {
        image: image.to_owned(),
        new_name,
        tag,
        digest,
    })
}

/// Writes through a temporary file in the same directory and renames it over the original, so
/// a crash leaves either the old file or the new one, never half of each.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let file_name = path
        .file_name()
        .map_or_else(|| "file".into(), |n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(".{file_name}.driftwatch-{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        if let Ok(meta) = std::fs::metadata(path) {
            f.set_permissions(meta.permissions())?;
        }
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
