//! Keeping what a repository says inside the repository.
//!
//! Whoever can push to a watched repository, or create an Argo CD Application, chooses paths
//! and symlinks. A path with `..`, an absolute path, or a committed symlink to `/etc/passwd`
//! would otherwise make driftwatch read (and apply, or print) host files — Argo CD's
//! CVE-2022-24348. These checks are the one place that decides what "inside" means.

use std::path::Path;

use crate::error::Error;

/// Symlinks followed while resolving one link, in total (Linux's own limit is 40 too): a loop,
/// or links built to branch into each other, end here instead of running forever.
pub const MAX_FOLLOWS: u32 = 40;

/// Normalises a path inside the repository: `.` and empty components dropped, `a/../b` folded
/// to `b`, `/`-separated, `""` for the root. Refuses what would leave the repository or reach
/// Git's own data: an absolute path, a `..` above the root, a `.git` component, control bytes.
/// The returned reason completes "path P …".
pub fn normalize(path: &str) -> Result<String, &'static str> {
    if path.starts_with('/') {
        return Err("is absolute; it must be relative to the repository root");
    }
    if path.contains(['\0', '\n', '\r', '\t']) {
        return Err("contains control characters");
    }
    let mut parts: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err("leaves the repository through '..'");
                }
            }
            ".git" => return Err("names Git's own .git directory"),
            c => parts.push(c),
        }
    }
    Ok(parts.join("/"))
}

/// Why a symlink was refused.
fn refuse(link: &str, target: &str, reason: &'static str) -> Error {
    Error::Symlink {
        link: link.to_owned(),
        target: target.to_owned(),
        reason,
    }
}

/// Checks every symlink under `root` (an exported tree), without following any: each must
/// resolve — relative to its own directory, through further links, at most [`MAX_FOLLOWS`]
/// of them — to a path inside `root`. The error names the first offending link by its
/// repository-relative path, never by `root`'s own (temporary) location.
pub fn check_links(root: &Path) -> Result<(), Error> {
    let mut stack = vec![Vec::<String>::new()];
    while let Some(dir) = stack.pop() {
        let here = root.join(dir.join("/"));
        let entries = std::fs::read_dir(&here).map_err(|e| Error::Io {
            context: shown(&dir),
            source: e,
        })?;
        for entry in entries {
            let entry = entry.map_err(|e| Error::Io {
                context: shown(&dir),
                source: e,
            })?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                // Not UTF-8: it cannot be named in a link target we accept either; tools reading
                // the directory still see it, so it must not be a link out.
                let kind = entry.file_type().map_err(|e| Error::Io {
                    context: shown(&dir),
                    source: e,
                })?;
                if kind.is_symlink() {
                    return Err(refuse(&shown(&dir), "?", "has a name that is not UTF-8"));
                }
                continue;
            };
            let kind = entry.file_type().map_err(|e| Error::Io {
                context: shown(&dir),
                source: e,
            })?;
            let mut path = dir.clone();
            path.push(name);
            if kind.is_symlink() {
                let link = path.join("/");
                let target = read_target(root, &path, &link)?;
                let mut follows = 0;
                resolve(root, &dir, &target, &mut follows)
                    .map_err(|reason| refuse(&link, &target, reason))?;
            } else if kind.is_dir() {
                stack.push(path);
            }
        }
    }
    Ok(())
}

fn shown(dir: &[String]) -> String {
    if dir.is_empty() {
        ".".to_owned()
    } else {
        dir.join("/")
    }
}

fn read_target(root: &Path, path: &[String], link: &str) -> Result<String, Error> {
    let target = std::fs::read_link(root.join(path.join("/"))).map_err(|e| Error::Io {
        context: link.to_owned(),
        source: e,
    })?;
    target.to_str().map(str::to_owned).ok_or_else(|| {
        refuse(
            link,
            &target.to_string_lossy(),
            "has a target that is not UTF-8",
        )
    })
}

/// Resolves `target` as the link in directory `base` would, following links met on the way;
/// the components of the result are inside `root`, or the reason it is not.
fn resolve(
    root: &Path,
    base: &[String],
    target: &str,
    follows: &mut u32,
) -> Result<Vec<String>, &'static str> {
    if target.starts_with('/') {
        return Err("points to an absolute path, outside the repository");
    }
    let mut cur = base.to_vec();
    for c in target.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if cur.pop().is_none() {
                    return Err("points outside the repository");
                }
            }
            c => {
                cur.push(c.to_owned());
                let p = root.join(cur.join("/"));
                if std::fs::symlink_metadata(&p).is_ok_and(|m| m.is_symlink()) {
                    *follows += 1;
                    if *follows > MAX_FOLLOWS {
                        return Err("does not resolve within 40 links (a loop?)");
                    }
                    let next = std::fs::read_link(&p).map_err(|_| "cannot be read")?;
                    let next = next.to_str().ok_or("leads to a target that is not UTF-8")?;
                    cur.pop();
                    cur = resolve(root, &cur, next, follows)?;
                }
            }
        }
    }
    Ok(cur)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_normalised() {
        assert_eq!(normalize("").unwrap(), "");
        assert_eq!(normalize(".").unwrap(), "");
        assert_eq!(normalize("./apps//web/").unwrap(), "apps/web");
        assert_eq!(normalize("apps/x/../web").unwrap(), "apps/web");
        assert_eq!(normalize("apps/..").unwrap(), "");
    }

    #[test]
    fn paths_that_leave_are_refused() {
        for bad in [
            "..",
            "../x",
            "apps/../../x",
            "/etc",
            "/",
            "a/.git/hooks",
            "a\0b",
        ] {
            assert!(normalize(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            normalize("apps/../../etc").unwrap_err(),
            "leaves the repository through '..'"
        );
    }

    fn tree(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("dw-confine-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("apps/web")).unwrap();
        std::fs::create_dir_all(d.join("base")).unwrap();
        std::fs::write(d.join("base/cm.yaml"), "x").unwrap();
        d
    }

    fn link(root: &Path, at: &str, target: &str) {
        std::os::unix::fs::symlink(target, root.join(at)).unwrap();
    }

    #[test]
    fn links_inside_are_accepted() {
        let d = tree("inside");
        link(&d, "apps/web/cm.yaml", "../../base/cm.yaml");
        link(&d, "apps/web/base", "../../base");
        link(&d, "apps/web/chain", "base/cm.yaml");
        link(&d, "apps/web/dangling", "nothing-here");
        link(&d, "apps/web/self-dir", ".");
        check_links(&d).unwrap();
        let _ = std::fs::remove_dir_all(d);
    }

    #[test]
    fn links_outside_are_refused() {
        for (name, links, bad, reason) in [
            (
                "abs",
                &[("apps/web/x.yaml", "/etc/passwd")][..],
                "apps/web/x.yaml",
                "absolute",
            ),
            (
                "up",
                &[("apps/web/x.yaml", "../../../x")][..],
                "apps/web/x.yaml",
                "outside",
            ),
            (
                "dir",
                &[("apps/etc", "../../..")][..],
                "apps/etc",
                "outside",
            ),
            (
                "chain",
                &[("apps/a", "b"), ("apps/b", "../c"), ("c", "..")][..],
                "apps/a",
                "outside",
            ),
            (
                "through-dir",
                // Lexically `apps/root/..` is `apps`; through the link it is the repository's parent.
                &[
                    ("apps/web/x.yaml", "../root/../etc/passwd"),
                    ("apps/root", ".."),
                ][..],
                "apps/web/x.yaml",
                "outside",
            ),
            (
                "loop",
                &[("apps/a", "b"), ("apps/b", "a")][..],
                "apps/a",
                "40 links",
            ),
            ("self", &[("apps/a", "a/x")][..], "apps/a", "40 links"),
        ] {
            let d = tree(name);
            for (at, target) in links {
                link(&d, at, target);
            }
            let e = check_links(&d).unwrap_err();
            let msg = e.to_string();
            assert!(
                matches!(&e, Error::Symlink { link, .. } if link.as_str() == bad || links.iter().any(|l| l.0 == link.as_str())),
                "{name}: {msg}"
            );
            assert!(msg.contains(reason), "{name}: {msg}");
            assert!(!msg.contains(&*d.to_string_lossy()), "{name}: {msg}");
            let _ = std::fs::remove_dir_all(d);
        }
    }
}
