//! Where an application's images are written, from argocd-image-updater's `write-back-target`.

/// Joins a path inside the repository, resolving `.` and `..` (never above the root).
pub fn join(base: &str, rel: &str) -> String {
    let mut parts: Vec<&str> = if rel.starts_with('/') {
        Vec::new()
    } else {
        base.split('/')
            .filter(|p| !p.is_empty() && *p != ".")
            .collect()
    };
    for p in rel.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

/// The file for a write-back target: `kustomization[:dir]`, `helmvalues[:file]`,
/// `manifests:file`, or the `.argocd-source-<app>.yaml` file (no target, or `argocd`). That
/// file is named as Argo CD's repo server looks for it: by the Application's instance name,
/// which is its name in Argo CD's own namespace (`argocd_namespace`, usually `argocd`) and
/// `<namespace>_<name>` in any other ("apps in any namespace").
/// Relative paths are below the application's path; a leading `/` is from the repository root.
pub fn file_for(
    target: Option<&str>,
    app_path: &str,
    app: &str,
    namespace: &str,
    argocd_namespace: &str,
) -> Result<String, String> {
    let target = target.map(str::trim).filter(|t| !t.is_empty());
    Ok(match target {
        None | Some("argocd") => {
            let name = if namespace.is_empty() || namespace == argocd_namespace {
                format!(".argocd-source-{app}.yaml")
            } else {
                format!(".argocd-source-{namespace}_{app}.yaml")
            };
            join(app_path, &name)
        }
        Some("kustomization") => join(app_path, "kustomization.yaml"),
        Some(t) if t.starts_with("kustomization:") => join(
            &join(app_path, &t["kustomization:".len()..]),
            "kustomization.yaml",
        ),
        Some("helmvalues") => join(app_path, "values.yaml"),
        Some(t) if t.starts_with("helmvalues:") => join(app_path, &t["helmvalues:".len()..]),
        Some(t) if t.starts_with("manifests:") => join(app_path, &t["manifests:".len()..]),
        Some(other) => {
            return Err(format!(
                "{other:?}: expected kustomization[:path], helmvalues[:path], manifests:path or argocd"
            ));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert_eq!(
            file_for(None, "apps/shop", "shop", "", "argocd").unwrap(),
            "apps/shop/.argocd-source-shop.yaml"
        );
        assert_eq!(
            file_for(None, "apps/shop", "shop", "argocd", "argocd").unwrap(),
            "apps/shop/.argocd-source-shop.yaml",
            "Argo CD's own namespace: the plain name"
        );
        assert_eq!(
            file_for(None, "apps/shop", "shop", "argocd", "gitops").unwrap(),
            "apps/shop/.argocd-source-argocd_shop.yaml",
            "Argo CD runs elsewhere: argocd is just another namespace"
        );
        assert_eq!(
            file_for(None, "apps/shop", "shop", "team-a", "argocd").unwrap(),
            "apps/shop/.argocd-source-team-a_shop.yaml"
        );
        assert_eq!(
            file_for(Some("kustomization"), "overlays/prod", "a", "", "argocd").unwrap(),
            "overlays/prod/kustomization.yaml"
        );
        assert_eq!(
            file_for(
                Some("kustomization:../../base"),
                "overlays/prod",
                "a",
                "",
                "argocd"
            )
            .unwrap(),
            "base/kustomization.yaml"
        );
        assert_eq!(
            file_for(
                Some("kustomization:/base"),
                "overlays/prod",
                "a",
                "",
                "argocd"
            )
            .unwrap(),
            "base/kustomization.yaml"
        );
        assert_eq!(
            file_for(Some("helmvalues"), "charts/app", "a", "", "argocd").unwrap(),
            "charts/app/values.yaml"
        );
        assert_eq!(
            file_for(
                Some("helmvalues:/env/prod.yaml"),
                "charts/app",
                "a",
                "",
                "argocd"
            )
            .unwrap(),
            "env/prod.yaml"
        );
        assert!(file_for(Some("somewhere"), "x", "a", "", "argocd").is_err());
    }
}
