//! argocd-image-updater v1's `ImageUpdater` resources
//! (`argocd-image-updater.argoproj.io/v1alpha1`): which Argo CD Applications of its namespace
//! one selects (`spec.applicationRefs[]`: a `namePattern` glob and `labelSelectors`, the most
//! specific reference first, as argocd-image-updater orders them), and what it asks for them,
//! cascaded spec → applicationRef → image (the most specific wins).
//!
//! A selection is turned into the settings the annotations of argocd-image-updater v0 would
//! give ([`Settings`]), each naming the field it came from, so the one reader in
//! [`crate::argocd`] builds the [`crate::App`] and every error names the `ImageUpdater` field.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::argocd::{Setting, Settings};

/// `spec.commonUpdateSettings` at any level.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CommonUpdateSettings {
    update_strategy: Option<String>,
    force_update: Option<bool>,
    allow_tags: Option<String>,
    ignore_tags: Option<Vec<String>>,
    pull_secret: Option<String>,
    platforms: Option<Vec<String>>,
}

/// `writeBackConfig` at the spec or applicationRef level.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WriteBackConfig {
    method: Option<String>,
    git_config: Option<GitConfig>,
}

/// `writeBackConfig.gitConfig`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct GitConfig {
    repository: Option<String>,
    branch: Option<String>,
    write_back_target: Option<String>,
    pull_request: Option<serde_json::Value>,
}

/// `imagesVerification` (cosign): not supported, refused unless disabled.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ImagesVerification {
    enabled: Option<bool>,
}

/// One `spec.applicationRefs[]` entry.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ApplicationRef {
    name_pattern: Option<String>,
    label_selectors: Option<LabelSelector>,
    use_annotations: Option<bool>,
    images_verification: Option<ImagesVerification>,
    common_update_settings: Option<CommonUpdateSettings>,
    write_back_config: Option<WriteBackConfig>,
    #[serde(default)]
    images: Vec<ImageConfig>,
}

/// A Kubernetes label selector (`metav1.LabelSelector`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LabelSelector {
    #[serde(default)]
    match_labels: BTreeMap<String, String>,
    #[serde(default)]
    match_expressions: Vec<Requirement>,
}

/// One `matchExpressions` entry.
#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct Requirement {
    key: Option<String>,
    operator: Option<String>,
    #[serde(default)]
    values: Vec<String>,
}

/// One `images[]` entry of an applicationRef.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ImageConfig {
    alias: Option<String>,
    image_name: Option<String>,
    common_update_settings: Option<CommonUpdateSettings>,
    manifest_targets: Option<ManifestTarget>,
    images_verification: Option<ImagesVerification>,
}

/// `manifestTargets`: exactly one of helm, kustomize (plugin is not supported).
#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct ManifestTarget {
    helm: Option<HelmTarget>,
    kustomize: Option<KustomizeTarget>,
    plugin: Option<serde_json::Value>,
}

/// `manifestTargets.helm`: the values keys of the image's name and tag, or of the whole
/// reference (`spec`, which wins).
#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct HelmTarget {
    name: Option<String>,
    tag: Option<String>,
    spec: Option<String>,
}

/// `manifestTargets.kustomize`: the image's name in the kustomization's `images:`.
#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct KustomizeTarget {
    name: Option<String>,
}

/// The part of an `ImageUpdater`'s spec driftwatch reads.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UpdaterSpec {
    pub(crate) application_refs: Option<Vec<ApplicationRef>>,
    pub(crate) common_update_settings: Option<CommonUpdateSettings>,
    pub(crate) write_back_config: Option<WriteBackConfig>,
    pub(crate) images_verification: Option<ImagesVerification>,
}

/// One `ImageUpdater`, checked: where it came from and its references, most specific first.
#[derive(Clone, Debug)]
pub(crate) struct ImageUpdater {
    /// `namespace/name`, for errors.
    pub(crate) id: String,
    /// The file (or cluster origin) it was read from.
    pub(crate) file: String,
    /// Its namespace: the Applications it may select are in it.
    pub(crate) namespace: String,
    spec: UpdaterSpec,
    /// Indexes into `spec.applicationRefs`, most specific first (stable).
    order: Vec<usize>,
}

/// What an `ImageUpdater` asks for one Application it selected.
#[derive(Debug)]
pub(crate) enum Selected {
    /// `useAnnotations: true`: the Application's own annotations.
    Annotations,
    /// The settings the ImageUpdater gives, in annotation vocabulary.
    Settings(Settings),
}

impl ImageUpdater {
    /// Checks an `ImageUpdater` read from `file`: `applicationRefs` present and not empty, each
    /// `namePattern` a valid glob, each selector valid. Errors are `(field, reason)`.
    pub(crate) fn new(
        name: &str,
        namespace: &str,
        file: &str,
        spec: UpdaterSpec,
    ) -> Result<Self, (String, String)> {
        let refs = match &spec.application_refs {
            None => return Err(("spec.applicationRefs".into(), "missing".into())),
            Some(r) if r.is_empty() => {
                return Err(("spec.applicationRefs".into(), "empty".into()));
            }
            Some(r) => r,
        };
        for (i, r) in refs.iter().enumerate() {
            let at = |f: &str| format!("spec.applicationRefs[{i}].{f}");
            let pattern = r
                .name_pattern
                .as_deref()
                .ok_or_else(|| (at("namePattern"), "missing".to_owned()))?;
            glob_match(pattern, "").map_err(|e| (at("namePattern"), e))?;
            if let Some(sel) = &r.label_selectors {
                for (j, req) in sel.match_expressions.iter().enumerate() {
                    check_requirement(req)
                        .map_err(|e| (at(&format!("labelSelectors.matchExpressions[{j}]")), e))?;
                }
            }
            if r.use_annotations != Some(true) && r.images.is_empty() {
                return Err((
                    at("images"),
                    "empty: name the images, or set useAnnotations: true to read the \
                     Application's annotations"
                        .into(),
                ));
            }
        }
        let mut order: Vec<usize> = (0..refs.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(specificity(&refs[i])));
        Ok(ImageUpdater {
            id: format!("{namespace}/{name}"),
            file: file.to_owned(),
            namespace: namespace.to_owned(),
            spec,
            order,
        })
    }

    fn refs(&self) -> &[ApplicationRef] {
        self.spec.application_refs.as_deref().unwrap_or_default()
    }

    /// The reference that selects the Application `name` with `labels` (of this ImageUpdater's
    /// namespace): the most specific that matches, as argocd-image-updater picks it.
    pub(crate) fn select(&self, name: &str, labels: &BTreeMap<String, String>) -> Option<usize> {
        let refs = self.refs();
        self.order.iter().copied().find(|&i| {
            let r = &refs[i];
            let pattern = r.name_pattern.as_deref().unwrap_or_default();
            // Patterns were checked in `new`.
            glob_match(pattern, name).unwrap_or(false)
                && r.label_selectors
                    .as_ref()
                    .is_none_or(|s| selector_matches(s, labels))
        })
    }

    /// The settings reference `index` gives the Application `app`, cascaded; errors are
    /// `(field, reason)`.
    pub(crate) fn settings(&self, index: usize, app: &str) -> Result<Selected, (String, String)> {
        let r = &self.refs()[index];
        let base = format!("spec.applicationRefs[{index}]");
        if r.use_annotations == Some(true) {
            // Only the selection is taken from the ImageUpdater; verification would still be,
            // and is not supported.
            refuse_verification(self.spec.images_verification.as_ref(), "spec")?;
            refuse_verification(r.images_verification.as_ref(), &base)?;
            return Ok(Selected::Annotations);
        }
        let field = |f: &str| {
            format!(
                "Application {app}, selected by ImageUpdater {} ({}): {f}",
                self.id, self.file
            )
        };
        let mut out = Settings::new();
        let mut put = |key: &str, value: String, at: &str| {
            out.insert(
                key.to_owned(),
                Setting {
                    value,
                    field: field(at),
                },
            );
        };

        // Write-back: spec, then the reference, field by field (gitConfig too).
        let layers = [
            (
                "spec.writeBackConfig".to_owned(),
                &self.spec.write_back_config,
            ),
            (format!("{base}.writeBackConfig"), &r.write_back_config),
        ];
        for (at, wbc) in layers {
            let Some(wbc) = wbc else { continue };
            if let Some(m) = &wbc.method {
                let m = self.method(m).map_err(|e| (format!("{at}.method"), e))?;
                put("write-back-method", m, &format!("{at}.method"));
            }
            if let Some(g) = &wbc.git_config {
                let at = format!("{at}.gitConfig");
                if g.pull_request.is_some() {
                    return Err((
                        format!("{at}.pullRequest"),
                        "pull requests are not supported by driftwatch; remove it to push to \
                         the branch"
                            .into(),
                    ));
                }
                if let Some(v) = &g.repository {
                    put("git-repository", v.clone(), &format!("{at}.repository"));
                }
                if let Some(v) = &g.branch {
                    put("git-branch", v.clone(), &format!("{at}.branch"));
                }
                if let Some(v) = &g.write_back_target {
                    put(
                        "write-back-target",
                        v.clone(),
                        &format!("{at}.writeBackTarget"),
                    );
                }
            }
        }

        let mut list = Vec::new();
        let mut aliases = std::collections::BTreeSet::new();
        for (j, img) in r.images.iter().enumerate() {
            let at = format!("{base}.images[{j}]");
            let alias = img
                .alias
                .as_deref()
                .map(str::trim)
                .filter(|a| !a.is_empty())
                .ok_or_else(|| (format!("{at}.alias"), "missing".to_owned()))?;
            if !alias
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            {
                return Err((
                    format!("{at}.alias"),
                    format!("{alias:?}: only letters, digits, '-', '_' and '.'"),
                ));
            }
            if !aliases.insert(alias.to_owned()) {
                return Err((
                    format!("{at}.alias"),
                    format!("{alias:?} is used twice in this applicationRef"),
                ));
            }
            let name = img
                .image_name
                .as_deref()
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .ok_or_else(|| (format!("{at}.imageName"), "missing".to_owned()))?;
            if name.contains(',') || name.contains('=') {
                return Err((
                    format!("{at}.imageName"),
                    format!("{name:?} is not an image reference"),
                ));
            }
            list.push(format!("{alias}={name}"));

            refuse_verification(self.spec.images_verification.as_ref(), "spec")?;
            refuse_verification(r.images_verification.as_ref(), &base)?;
            refuse_verification(img.images_verification.as_ref(), &at)?;

            // Common settings: spec, reference, image; the most specific one set wins.
            let layers = [
                (
                    "spec.commonUpdateSettings".to_owned(),
                    &self.spec.common_update_settings,
                ),
                (
                    format!("{base}.commonUpdateSettings"),
                    &r.common_update_settings,
                ),
                (
                    format!("{at}.commonUpdateSettings"),
                    &img.common_update_settings,
                ),
            ];
            for (cat, c) in layers {
                let Some(c) = c else { continue };
                let key = |k: &str| format!("{alias}.{k}");
                if let Some(v) = &c.update_strategy {
                    put(
                        &key("update-strategy"),
                        v.clone(),
                        &format!("{cat}.updateStrategy"),
                    );
                }
                if let Some(v) = c.force_update {
                    put(
                        &key("force-update"),
                        v.to_string(),
                        &format!("{cat}.forceUpdate"),
                    );
                }
                if let Some(v) = &c.allow_tags {
                    put(&key("allow-tags"), v.clone(), &format!("{cat}.allowTags"));
                }
                if let Some(v) = &c.ignore_tags {
                    if let Some(bad) = v.iter().find(|t| t.contains(',')) {
                        return Err((
                            format!("{cat}.ignoreTags"),
                            format!("{bad:?}: a pattern may not contain ','"),
                        ));
                    }
                    put(
                        &key("ignore-tags"),
                        v.join(","),
                        &format!("{cat}.ignoreTags"),
                    );
                }
                if let Some(v) = &c.pull_secret {
                    put(&key("pull-secret"), v.clone(), &format!("{cat}.pullSecret"));
                }
                if let Some(v) = &c.platforms {
                    put(&key("platforms"), v.join(","), &format!("{cat}.platforms"));
                }
            }

            if let Some(t) = &img.manifest_targets {
                let at = format!("{at}.manifestTargets");
                if t.plugin.is_some() {
                    return Err((
                        format!("{at}.plugin"),
                        "Config Management Plugin targets are not supported by driftwatch".into(),
                    ));
                }
                match (&t.helm, &t.kustomize) {
                    (Some(_), Some(_)) => {
                        return Err((at, "set exactly one of helm and kustomize".into()));
                    }
                    (Some(h), None) => {
                        let at = format!("{at}.helm");
                        match &h.spec {
                            // `spec` wins over name and tag, which are then ignored.
                            Some(s) => put(
                                &format!("{alias}.helm.image-spec"),
                                s.clone(),
                                &format!("{at}.spec"),
                            ),
                            None => {
                                put(
                                    &format!("{alias}.helm.image-name"),
                                    h.name.clone().unwrap_or_else(|| "image.name".into()),
                                    &format!("{at}.name"),
                                );
                                put(
                                    &format!("{alias}.helm.image-tag"),
                                    h.tag.clone().unwrap_or_else(|| "image.tag".into()),
                                    &format!("{at}.tag"),
                                );
                            }
                        }
                    }
                    (None, Some(k)) => {
                        let at = format!("{at}.kustomize.name");
                        let name = k
                            .name
                            .as_deref()
                            .filter(|n| !n.trim().is_empty())
                            .ok_or_else(|| (at.clone(), "missing".to_owned()))?;
                        put(
                            &format!("{alias}.kustomize.image-name"),
                            name.to_owned(),
                            &at,
                        );
                    }
                    (None, None) => {}
                }
            }
        }
        put("image-list", list.join(", "), &format!("{base}.images"));
        Ok(Selected::Settings(out))
    }

    /// `writeBackConfig.method` as the annotation has it: `git:secret:NAME` names a Secret of
    /// this ImageUpdater's namespace, and `git:secret:NS/NAME` may name no other.
    fn method(&self, m: &str) -> Result<String, String> {
        let m = m.trim();
        match m.strip_prefix("git:secret:") {
            Some(s) if !s.contains('/') && !s.is_empty() => {
                Ok(format!("git:secret:{}/{s}", self.namespace))
            }
            Some(s) => match s.split_once('/') {
                Some((ns, _)) if ns != self.namespace => Err(format!(
                    "{m:?} names a Secret in namespace {ns:?}; an ImageUpdater may name only \
                     its own ({:?})",
                    self.namespace
                )),
                _ => Ok(m.to_owned()),
            },
            None => Ok(m.to_owned()),
        }
    }
}

/// Refuses an `imagesVerification` block that asks for verification: driftwatch does not
/// verify signatures, and ignoring it would update to images nobody checked.
fn refuse_verification(v: Option<&ImagesVerification>, at: &str) -> Result<(), (String, String)> {
    match v {
        Some(v) if v.enabled != Some(false) => Err((
            format!("{at}.imagesVerification"),
            "signature verification is not supported by driftwatch; remove it or set \
             enabled: false"
                .into(),
        )),
        _ => Ok(()),
    }
}

/// argocd-image-updater's order of applicationRefs: an exact name first, then more literal
/// characters, then a label selector and the more of its terms.
fn specificity(r: &ApplicationRef) -> usize {
    let pattern = r.name_pattern.as_deref().unwrap_or_default();
    let mut score = 0;
    if !pattern.contains(['*', '?', '[', ']']) {
        score += 1_000_000;
    }
    // Character sets count for nothing, nor do the wildcards.
    let mut literals = 0;
    let mut in_set = false;
    for c in pattern.chars() {
        match c {
            '[' if !in_set => in_set = true,
            ']' if in_set => in_set = false,
            '*' | '?' => {}
            _ if in_set => {}
            _ => literals += 1,
        }
    }
    score += literals;
    if let Some(s) = &r.label_selectors {
        score += 10_000 + 100 * (s.match_labels.len() + s.match_expressions.len());
    }
    score
}

fn check_requirement(r: &Requirement) -> Result<(), String> {
    if r.key.as_deref().is_none_or(str::is_empty) {
        return Err("key: missing".into());
    }
    match r.operator.as_deref() {
        Some("In" | "NotIn") if r.values.is_empty() => {
            Err("values: In and NotIn need at least one value".into())
        }
        Some("Exists" | "DoesNotExist") if !r.values.is_empty() => {
            Err("values: Exists and DoesNotExist take none".into())
        }
        Some("In" | "NotIn" | "Exists" | "DoesNotExist") => Ok(()),
        Some(other) => Err(format!(
            "operator {other:?}: expected In, NotIn, Exists or DoesNotExist"
        )),
        None => Err("operator: missing".into()),
    }
}

/// Kubernetes label selector semantics: every label and every expression must hold; an empty
/// selector selects everything.
fn selector_matches(s: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    s.match_labels.iter().all(|(k, v)| labels.get(k) == Some(v))
        && s.match_expressions.iter().all(|r| {
            let key = r.key.as_deref().unwrap_or_default();
            let value = labels.get(key);
            match r.operator.as_deref() {
                Some("In") => value.is_some_and(|v| r.values.contains(v)),
                Some("NotIn") => value.is_none_or(|v| !r.values.contains(v)),
                Some("Exists") => value.is_some(),
                Some("DoesNotExist") => value.is_none(),
                // Checked in `ImageUpdater::new`.
                _ => false,
            }
        })
}

/// Go's `filepath.Match` (which argocd-image-updater uses for `namePattern`): `*` any run of
/// characters but `/`, `?` one such character, `[...]` a class (`^` negates, `a-z` ranges),
/// `\` escapes. A malformed pattern is an error whatever the name.
pub(crate) fn glob_match(pattern: &str, name: &str) -> Result<bool, String> {
    let p: Vec<char> = pattern.chars().collect();
    // Checked once in full, since matching may stop before reaching a malformed part.
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            '\\' => {
                if i + 1 >= p.len() {
                    return Err(format!("{pattern:?}: a trailing '\\' escapes nothing"));
                }
                i += 2;
            }
            '[' => {
                let (_, next) = class(&p, i, None).ok_or_else(|| {
                    format!("{pattern:?}: a character class ('[') is not closed or is malformed")
                })?;
                i = next;
            }
            _ => i += 1,
        }
    }
    let n: Vec<char> = name.chars().collect();
    Ok(matches_at(&p, 0, &n, 0))
}

fn matches_at(p: &[char], mut pi: usize, n: &[char], mut ni: usize) -> bool {
    while pi < p.len() {
        match p[pi] {
            '*' => {
                while pi < p.len() && p[pi] == '*' {
                    pi += 1;
                }
                let mut k = ni;
                loop {
                    if matches_at(p, pi, n, k) {
                        return true;
                    }
                    if k >= n.len() || n[k] == '/' {
                        return false;
                    }
                    k += 1;
                }
            }
            '?' => {
                if ni >= n.len() || n[ni] == '/' {
                    return false;
                }
                pi += 1;
                ni += 1;
            }
            '[' => {
                if ni >= n.len() || n[ni] == '/' {
                    return false;
                }
                match class(p, pi, Some(n[ni])) {
                    Some((true, next)) => {
                        pi = next;
                        ni += 1;
                    }
                    _ => return false,
                }
            }
            c => {
                let (c, next) = if c == '\\' && pi + 1 < p.len() {
                    (p[pi + 1], pi + 2)
                } else {
                    (c, pi + 1)
                };
                if ni >= n.len() || n[ni] != c {
                    return false;
                }
                pi = next;
                ni += 1;
            }
        }
    }
    ni == n.len()
}

/// The class starting at `p[start] == '['`: whether `c` is in it (false without one) and the
/// index after its `]`; `None` when malformed.
fn class(p: &[char], start: usize, c: Option<char>) -> Option<(bool, usize)> {
    let mut i = start + 1;
    let negated = p.get(i) == Some(&'^');
    if negated {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    loop {
        let ch = *p.get(i)?;
        if ch == ']' && !first {
            i += 1;
            break;
        }
        first = false;
        let lo = escaped(p, &mut i)?;
        let mut hi = lo;
        if p.get(i) == Some(&'-') && p.get(i + 1).is_some_and(|&x| x != ']') {
            i += 1;
            hi = escaped(p, &mut i)?;
            if hi < lo {
                return None;
            }
        }
        if c.is_some_and(|c| lo <= c && c <= hi) {
            matched = true;
        }
    }
    Some((matched != negated, i))
}

fn escaped(p: &[char], i: &mut usize) -> Option<char> {
    let mut ch = *p.get(*i)?;
    if ch == '\\' {
        *i += 1;
        ch = *p.get(*i)?;
    } else if ch == '-' || ch == '[' {
        // Go refuses an unescaped '-' or '[' where a character is expected.
        return None;
    }
    *i += 1;
    Some(ch)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn globs_as_go_matches_them() {
        for (p, n, want) in [
            ("app-*", "app-1", true),
            ("app-*", "app-", true),
            ("app-*", "web-1", false),
            ("app-?", "app-1", true),
            ("app-?", "app-12", false),
            ("app-[12]", "app-2", true),
            ("app-[12]", "app-3", false),
            ("app-[^12]", "app-3", true),
            ("app-[a-c]x", "app-bx", true),
            ("*", "anything", true),
            ("a*b*c", "aXXbYYc", true),
            ("a*b*c", "aXXbYY", false),
            ("exact", "exact", true),
            ("exact", "exactly", false),
            ("\\*", "*", true),
            ("\\*", "a", false),
        ] {
            assert_eq!(glob_match(p, n).unwrap(), want, "{p} ~ {n}");
        }
        for bad in ["app-[", "app-[]", "x\\", "[z-a]"] {
            assert!(glob_match(bad, "x").is_err(), "{bad}");
        }
    }

    #[test]
    fn selectors() {
        let labels: BTreeMap<String, String> = [("env", "prod"), ("tier", "web")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let req = |k: &str, op: &str, vals: &[&str]| Requirement {
            key: Some(k.into()),
            operator: Some(op.into()),
            values: vals.iter().map(|v| (*v).to_owned()).collect(),
        };
        let sel = |ml: &[(&str, &str)], me: Vec<Requirement>| LabelSelector {
            match_labels: ml
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            match_expressions: me,
        };
        assert!(selector_matches(&sel(&[], vec![]), &labels), "empty: all");
        assert!(selector_matches(&sel(&[("env", "prod")], vec![]), &labels));
        assert!(!selector_matches(&sel(&[("env", "dev")], vec![]), &labels));
        assert!(selector_matches(
            &sel(&[], vec![req("env", "In", &["prod", "staging"])]),
            &labels
        ));
        assert!(!selector_matches(
            &sel(&[], vec![req("env", "NotIn", &["prod"])]),
            &labels
        ));
        assert!(selector_matches(
            &sel(&[], vec![req("team", "NotIn", &["a"])]),
            &labels
        ));
        assert!(selector_matches(
            &sel(&[], vec![req("tier", "Exists", &[])]),
            &labels
        ));
        assert!(!selector_matches(
            &sel(&[], vec![req("tier", "DoesNotExist", &[])]),
            &labels
        ));
        assert!(check_requirement(&req("a", "In", &[])).is_err());
        assert!(check_requirement(&req("a", "Exists", &["x"])).is_err());
        assert!(check_requirement(&req("a", "Gt", &["1"])).is_err());
    }

    #[test]
    fn specificity_orders_as_argocd_image_updater() {
        let r = |p: &str, labels: usize| ApplicationRef {
            name_pattern: Some(p.into()),
            label_selectors: (labels > 0).then(|| LabelSelector {
                match_labels: (0..labels).map(|i| (i.to_string(), "x".into())).collect(),
                match_expressions: vec![],
            }),
            ..Default::default()
        };
        assert!(specificity(&r("app-1", 0)) > specificity(&r("app-*", 3)));
        assert!(specificity(&r("app-*", 1)) > specificity(&r("app-prod-*", 0)));
        assert!(specificity(&r("app-prod-*", 0)) > specificity(&r("app-*", 0)));
        assert_eq!(specificity(&r("app-[1234567]", 0)), 4);
        assert!(specificity(&r("*", 2)) > specificity(&r("*", 1)));
    }
}

/// Each `ImageUpdater` shape, read with Applications as `--applications FILE` reads them.
#[cfg(test)]
mod shapes {
    #![allow(clippy::unwrap_used)]
    use crate::App;
    use crate::argocd::{Trust, parse, parse_with};
    use driftwatch_policy::Strategy;

    /// Three Applications of namespace argocd: two `app-*`, one `web`.
    const APPS: &str = r#"
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: app-prod
  namespace: argocd
  labels: {env: prod, tier: backend}
spec:
  source: {repoURL: "https://git.example.com/apps.git", path: apps/prod, targetRevision: main}
---
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: app-dev
  namespace: argocd
  labels: {env: dev}
spec:
  source: {repoURL: "https://git.example.com/apps.git", path: apps/dev, targetRevision: main}
---
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: web
  namespace: argocd
  annotations:
    argocd-image-updater.argoproj.io/image-list: web=registry.example.com/web:~2
    argocd-image-updater.argoproj.io/write-back-method: git
spec:
  source:
    repoURL: "https://git.example.com/web.git"
    path: charts/web
    targetRevision: main
    helm: {valueFiles: [values.yaml]}
"#;

    fn with(updater: &str) -> Vec<App> {
        let text = format!("{APPS}---\n{updater}");
        let mut apps = parse(&text, "apps.yaml").unwrap();
        apps.sort_by(|a, b| a.name.cmp(&b.name));
        apps
    }

    fn err(updater: &str) -> String {
        parse(&format!("{APPS}---\n{updater}"), "apps.yaml")
            .unwrap_err()
            .to_string()
    }

    fn app<'a>(apps: &'a [App], name: &str) -> &'a App {
        apps.iter().find(|a| a.name == name).unwrap()
    }

    fn names(apps: &[App]) -> Vec<&str> {
        apps.iter().map(|a| a.name.as_str()).collect()
    }

    const HEAD: &str = "apiVersion: argocd-image-updater.argoproj.io/v1alpha1
kind: ImageUpdater
metadata: {name: updater, namespace: argocd}
";

    #[test]
    fn name_pattern_selects_and_annotations_stay_for_the_rest() {
        let apps = with(&format!(
            "{HEAD}spec:
  applicationRefs:
  - namePattern: app-*
    images:
    - alias: api
      imageName: registry.example.com/api:1.x
"
        ));
        assert_eq!(names(&apps), ["app-dev", "app-prod", "web"]);
        let prod = app(&apps, "app-prod");
        assert_eq!(prod.images.len(), 1);
        assert_eq!(prod.images[0].alias.as_deref(), Some("api"));
        assert_eq!(prod.images[0].written, "registry.example.com/api");
        assert_eq!(prod.images[0].policy.strategy(), Strategy::Semver);
        assert_eq!(
            prod.images[0].policy.constraint().unwrap().as_str(),
            "1.x",
            "the tag of imageName is the constraint, as in the image-list"
        );
        // No method: argocd, which for files is the .argocd-source commit.
        assert_eq!(prod.file, "apps/prod/.argocd-source-app-prod.yaml");
        assert_eq!(prod.branch, "main");
        // web is not selected: its annotations still hold.
        assert_eq!(apps[2].images[0].written, "registry.example.com/web");
    }

    #[test]
    fn label_selectors_narrow_the_pattern() {
        let apps = with(&format!(
            "{HEAD}spec:
  applicationRefs:
  - namePattern: '*'
    labelSelectors:
      matchLabels: {{tier: backend}}
      matchExpressions:
      - {{key: env, operator: In, values: [prod, staging]}}
    images:
    - {{alias: api, imageName: registry.example.com/api}}
"
        ));
        assert_eq!(names(&apps), ["app-prod", "web"]);
        let apps = with(&format!(
            "{HEAD}spec:
  applicationRefs:
  - namePattern: 'app-*'
    labelSelectors:
      matchExpressions:
      - {{key: env, operator: NotIn, values: [prod]}}
    images:
    - {{alias: api, imageName: registry.example.com/api}}
"
        ));
        assert_eq!(names(&apps), ["app-dev", "web"]);
        let e = err(&format!(
            "{HEAD}spec:
  applicationRefs:
  - namePattern: '*'
    labelSelectors:
      matchExpressions:
      - {{key: env, operator: Exists, values: [x]}}
    images:
    - {{alias: api, imageName: registry.example.com/api}}
"
        ));
        assert!(
            e.contains("ImageUpdater argocd/updater: spec.applicationRefs[0].labelSelectors.matchExpressions[0]")
                && e.contains("Exists"),
            "{e}"
        );
    }

    #[test]
    fn the_most_specific_reference_wins() {
        let apps = with(&format!(
            "{HEAD}spec:
  applicationRefs:
  - namePattern: 'app-*'
    images:
    - {{alias: generic, imageName: registry.example.com/generic}}
  - namePattern: 'app-prod'
    images:
    - {{alias: exact, imageName: registry.example.com/exact}}
"
        ));
        assert_eq!(
            app(&apps, "app-dev").images[0].alias.as_deref(),
            Some("generic")
        );
        assert_eq!(
            app(&apps, "app-prod").images[0].alias.as_deref(),
            Some("exact")
        );
    }

    #[test]
    fn settings_cascade_spec_reference_image() {
        let apps = with(&format!(
            "{HEAD}spec:
  commonUpdateSettings:
    updateStrategy: latest
    ignoreTags: [latest]
    allowTags: 'regexp:^v'
  writeBackConfig:
    method: git
    gitConfig: {{branch: main, repository: 'https://git.example.com/other.git'}}
  applicationRefs:
  - namePattern: app-prod
    commonUpdateSettings:
      updateStrategy: digest
      platforms: [linux/amd64]
    writeBackConfig:
      gitConfig:
        branch: release
        writeBackTarget: 'kustomization:../base'
    images:
    - alias: api
      imageName: registry.example.com/api
      commonUpdateSettings:
        updateStrategy: semver
        ignoreTags: ['*-rc*', 'dev']
    - alias: worker
      imageName: registry.example.com/worker:stable
"
        ));
        let prod = app(&apps, "app-prod");
        let (api, worker) = (&prod.images[0], &prod.images[1]);
        assert_eq!(api.policy.strategy(), Strategy::Semver, "the image's own");
        assert_eq!(
            worker.policy.strategy(),
            Strategy::Digest,
            "the reference's"
        );
        let f = api.policy.filter();
        assert_eq!(f.ignored_by("v1-rc1"), Some("*-rc*"));
        assert_eq!(
            f.ignored_by("latest"),
            None,
            "the image's list replaces the spec's"
        );
        assert_eq!(worker.policy.filter().ignored_by("latest"), Some("latest"));
        assert_eq!(worker.policy.filter().allow_text(), "regexp:^v");
        assert_eq!(worker.policy.filter().wanted_platforms().len(), 1);
        // gitConfig merges field by field: the reference's branch and target, the spec's
        // repository.
        assert_eq!(prod.branch, "release");
        assert_eq!(prod.repo, "https://git.example.com/other.git");
        assert_eq!(prod.file, "apps/base/kustomization.yaml");
        assert_eq!(prod.write_back, crate::WriteBack::Git);
        assert_eq!(names(&apps), ["app-prod", "web"], "app-dev is not selected");
    }

    #[test]
    fn manifest_targets_helm_and_kustomize() {
        let apps = with(&format!(
            "{HEAD}spec:
  applicationRefs:
  - namePattern: app-prod
    images:
    - alias: a
      imageName: registry.example.com/a
      manifestTargets:
        helm: {{name: a.image.repository, tag: a.image.version}}
    - alias: b
      imageName: registry.example.com/b
      manifestTargets:
        helm: {{spec: b.image, name: ignored}}
    - alias: c
      imageName: registry.example.com/c
      manifestTargets:
        helm: {{}}
    - alias: d
      imageName: registry.example.com/d
      manifestTargets:
        kustomize: {{name: d-image}}
"
        ));
        let i = &app(&apps, "app-prod").images;
        assert_eq!(
            i[0].target.helm_name_path.as_deref(),
            Some("a.image.repository")
        );
        assert_eq!(i[0].target.helm_path.as_deref(), Some("a.image.version"));
        assert_eq!(i[1].target.helm_path.as_deref(), Some("b.image"));
        assert_eq!(i[1].target.helm_name_path, None, "spec wins over name");
        assert_eq!(i[2].target.helm_name_path.as_deref(), Some("image.name"));
        assert_eq!(i[2].target.helm_path.as_deref(), Some("image.tag"));
        assert_eq!(i[3].name_in_file(), "d-image");
        assert_eq!(i[3].target.helm_path, None);
        for (target, field) in [
            ("{kustomize: {}}", "manifestTargets.kustomize.name"),
            (
                "{helm: {}, kustomize: {name: x}}",
                "images[0].manifestTargets",
            ),
            ("{plugin: {name: X}}", "manifestTargets.plugin"),
        ] {
            let e = err(&format!(
                "{HEAD}spec:
  applicationRefs:
  - namePattern: app-prod
    images:
    - alias: a
      imageName: registry.example.com/a
      manifestTargets: {target}
"
            ));
            assert!(
                e.contains("ImageUpdater argocd/updater") && e.contains(field),
                "{target}: {e}"
            );
        }
    }

    #[test]
    fn use_annotations_reads_the_application() {
        let apps = with(&format!(
            "{HEAD}spec:
  commonUpdateSettings: {{updateStrategy: digest}}
  applicationRefs:
  - namePattern: web
    useAnnotations: true
"
        ));
        assert_eq!(names(&apps), ["web"]);
        assert_eq!(
            apps[0].images[0].policy.strategy(),
            Strategy::Semver,
            "the CR's settings are ignored"
        );
        let e = err(&format!(
            "{HEAD}spec:
  applicationRefs:
  - namePattern: app-*
    useAnnotations: true
"
        ));
        assert!(
            e.contains("spec.applicationRefs[0].useAnnotations")
                && e.contains("selects Application app-"),
            "{e}"
        );
    }

    #[test]
    fn git_credentials_from_the_write_back_method() {
        let updater = |method: &str| {
            format!(
                "{HEAD}spec:
  writeBackConfig: {{method: '{method}'}}
  applicationRefs:
  - namePattern: app-prod
    images:
    - {{alias: api, imageName: registry.example.com/api}}
"
            )
        };
        let cluster = Trust::Cluster {
            allow_local_repositories: false,
        };
        let read = |method: &str| {
            parse_with(&format!("{APPS}---\n{}", updater(method)), "ns", cluster)
                .map(|apps| {
                    apps.into_iter()
                        .find(|a| a.name == "app-prod")
                        .unwrap()
                        .git_credentials
                })
                .map_err(|e| e.to_string())
        };
        assert_eq!(
            read("git:secret:creds").unwrap(),
            Some(crate::GitCredentialsFrom::Secret {
                namespace: "argocd".into(),
                name: "creds".into()
            }),
            "a bare name is the ImageUpdater's namespace"
        );
        assert!(read("git:secret:argocd/creds").is_ok());
        let e = read("git:secret:kube-system/creds").unwrap_err();
        assert!(
            e.contains("spec.writeBackConfig.method") && e.contains("kube-system"),
            "{e}"
        );
        assert_eq!(
            read("argocd").unwrap(),
            None,
            "argocd: the live Application, no Git credentials"
        );
    }

    #[test]
    fn errors_name_the_image_updater_and_field() {
        for (spec, field) in [
            ("spec: {}", "spec.applicationRefs"),
            (
                "spec:\n  applicationRefs:\n  - images: [{alias: a, imageName: x/y}]",
                "spec.applicationRefs[0].namePattern",
            ),
            (
                "spec:\n  applicationRefs:\n  - {namePattern: 'app-['}",
                "spec.applicationRefs[0].namePattern",
            ),
            (
                "spec:\n  applicationRefs:\n  - {namePattern: app-prod}",
                "spec.applicationRefs[0].images",
            ),
            (
                "spec:\n  applicationRefs:\n  - namePattern: app-prod\n    images: [{imageName: x/y}]",
                "spec.applicationRefs[0].images[0].alias",
            ),
            (
                "spec:\n  applicationRefs:\n  - namePattern: app-prod\n    images: [{alias: a, imageName: x/y}, {alias: a, imageName: x/z}]",
                "spec.applicationRefs[0].images[1].alias",
            ),
            (
                "spec:\n  applicationRefs:\n  - namePattern: app-prod\n    images: [{alias: a}]",
                "spec.applicationRefs[0].images[0].imageName",
            ),
            (
                "spec:\n  commonUpdateSettings: {allowTags: 'regexp:('}\n  applicationRefs:\n  - namePattern: app-prod\n    images: [{alias: a, imageName: x/y}]",
                "spec.commonUpdateSettings.allowTags",
            ),
            (
                "spec:\n  applicationRefs:\n  - namePattern: app-prod\n    images:\n    - {alias: a, imageName: x/y, commonUpdateSettings: {updateStrategy: fastest}}",
                "spec.applicationRefs[0].images[0].commonUpdateSettings.updateStrategy",
            ),
            (
                "spec:\n  applicationRefs:\n  - namePattern: app-prod\n    writeBackConfig: {gitConfig: {writeBackTarget: elsewhere}}\n    images: [{alias: a, imageName: x/y}]",
                "spec.applicationRefs[0].writeBackConfig.gitConfig.writeBackTarget",
            ),
            (
                "spec:\n  writeBackConfig: {method: git, gitConfig: {pullRequest: {github: {}}}}\n  applicationRefs:\n  - namePattern: app-prod\n    images: [{alias: a, imageName: x/y}]",
                "spec.writeBackConfig.gitConfig.pullRequest",
            ),
            (
                "spec:\n  imagesVerification: {cosignKey: {secretName: k, key: cosign.pub}}\n  applicationRefs:\n  - namePattern: app-prod\n    images: [{alias: a, imageName: x/y}]",
                "spec.imagesVerification",
            ),
        ] {
            let e = err(&format!("{HEAD}{spec}\n"));
            assert!(
                e.contains("apps.yaml") && e.contains("argocd/updater") && e.contains(field),
                "{field}: {e}"
            );
        }
        // Verification switched off is no verification asked for.
        with(&format!(
            "{HEAD}spec:
  imagesVerification: {{enabled: false}}
  applicationRefs:
  - namePattern: app-prod
    images: [{{alias: a, imageName: x/y}}]
"
        ));
    }

    #[test]
    fn two_updaters_may_not_select_one_application_and_namespaces_separate_them() {
        let second = "apiVersion: argocd-image-updater.argoproj.io/v1alpha1
kind: ImageUpdater
metadata: {name: other, namespace: argocd}
spec:
  applicationRefs:
  - namePattern: app-prod
    images: [{alias: b, imageName: x/b}]
";
        let e = err(&format!(
            "{HEAD}spec:
  applicationRefs:
  - namePattern: 'app-*'
    images: [{{alias: a, imageName: x/a}}]
---
{second}"
        ));
        assert!(
            e.contains("Application app-prod")
                && e.contains("argocd/updater")
                && e.contains("argocd/other"),
            "{e}"
        );
        // An ImageUpdater of another namespace selects nothing here.
        let apps = with(&second.replace("namespace: argocd", "namespace: team-a"));
        assert_eq!(names(&apps), ["web"]);
    }

    /// The documentation's complete example, selecting one Application.
    #[test]
    fn the_documented_complete_example() {
        let text = r#"
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: frontend-web
  namespace: argocd
  labels: {environment: production}
spec:
  source: {repoURL: "https://git.example.com/frontend.git", path: charts/frontend, targetRevision: main, helm: {}}
---
apiVersion: argocd-image-updater.argoproj.io/v1alpha1
kind: ImageUpdater
metadata:
  name: production-updater
  namespace: argocd
spec:
  commonUpdateSettings:
    updateStrategy: "semver"
    forceUpdate: false
    allowTags: "regexp:^v[0-9]+\\.[0-9]+\\.[0-9]+$"
    ignoreTags: [ "latest", "dev", "test" ]
  writeBackConfig:
    method: "argocd"
  applicationRefs:
    - namePattern: "frontend-*"
      labelSelectors:
        matchLabels:
          environment: "production"
      commonUpdateSettings:
        updateStrategy: "newest-build"
        forceUpdate: true
      writeBackConfig:
        method: "git"
        gitConfig:
          repository: "git@github.com:myorg/frontend-config.git"
          branch: "main"
          writeBackTarget: "helmvalues:/values.yaml"
      images:
        - alias: "frontend"
          imageName: "myregistry/frontend:v1.0"
          commonUpdateSettings:
            allowTags: "regexp:^v[0-9]+\\.[0-9]+\\.[0-9]+-prod$"
        - alias: "nginx"
          imageName: "nginx:1.20"
    - namePattern: "backend"
      images:
        - alias: "api"
          imageName: "myregistry/backend:v2.0"
          commonUpdateSettings:
            updateStrategy: "digest"
"#;
        let apps = parse(text, "example.yaml").unwrap();
        assert_eq!(names(&apps), ["frontend-web"]);
        let app = &apps[0];
        assert_eq!(app.repo, "git@github.com:myorg/frontend-config.git");
        assert_eq!(app.file, "values.yaml");
        assert_eq!(app.write_back, crate::WriteBack::Git);
        let (frontend, nginx) = (&app.images[0], &app.images[1]);
        assert_eq!(frontend.policy.strategy(), Strategy::NewestBuild);
        assert_eq!(
            frontend.policy.filter().allow_text(),
            "regexp:^v[0-9]+\\.[0-9]+\\.[0-9]+-prod$"
        );
        assert_eq!(
            nginx.policy.filter().allow_text(),
            "regexp:^v[0-9]+\\.[0-9]+\\.[0-9]+$"
        );
        assert_eq!(nginx.policy.filter().ignored_by("dev"), Some("dev"));
        assert_eq!(nginx.written, "nginx");
        assert!(nginx.implicit_registry);
        // A Helm Application: the default values keys.
        assert_eq!(nginx.target.helm_path.as_deref(), Some("image.tag"));
    }
}
