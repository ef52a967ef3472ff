//! Reading a branch's commit straight from a repository's ref files, without a `git` process.
//!
//! A no-op cycle asks every repository whether its branch moved. With a `git fetch` per
//! repository that question costs a process (and an upload-pack on the other side) each, which
//! at hundreds of repositories is most of the cycle. Where the answer is on this machine — the
//! mirror's own remote-tracking refs, and a remote that is a local repository — it is read here
//! instead. Only a certain answer counts: anything unusual (reftable, a symbolic ref, a worktree,
//! a name git would not accept) is [`RefRead::Unknown`], and the caller fetches as before.

use std::path::{Path, PathBuf};

/// What reading one ref gave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum RefRead {
    /// The ref names this object id.
    Found(String),
    /// The answer cannot be had without git; ask git.
    Unknown,
}

/// The object id `refname` (e.g. `refs/heads/main`) holds in the git directory `git_dir`:
/// the loose ref file first, then `packed-refs`, as git looks them up.
pub(crate) fn read_ref(git_dir: &Path, refname: &str) -> RefRead {
    if !plain_refname(refname) || git_dir.join("reftable").exists() {
        return RefRead::Unknown;
    }
    match std::fs::read_to_string(git_dir.join(refname)) {
        Ok(text) => {
            return match object_id(text.trim_end_matches('\n')) {
                Some(id) => RefRead::Found(id),
                // A symbolic ref (`ref: …`) or something git would have to interpret.
                None => RefRead::Unknown,
            };
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(_) => return RefRead::Unknown,
    }
    let Ok(packed) = std::fs::read_to_string(git_dir.join("packed-refs")) else {
        return RefRead::Unknown;
    };
    packed_ref(&packed, refname).map_or(RefRead::Unknown, RefRead::Found)
}

/// `refname`'s id in the text of a `packed-refs` file (`<id> <name>` lines; `#` headers and
/// `^<id>` peeled lines skipped).
fn packed_ref(packed: &str, refname: &str) -> Option<String> {
    packed.lines().find_map(|line| {
        let (id, name) = line.split_once(' ')?;
        (name == refname).then(|| object_id(id)).flatten()
    })
}

/// The branch a repository's `HEAD` points at, when it is a plain symbolic ref.
pub(crate) fn head_branch(git_dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(git_dir.join("HEAD")).ok()?;
    let branch = text.trim_end().strip_prefix("ref: refs/heads/")?;
    plain_refname(&format!("refs/heads/{branch}")).then(|| branch.to_owned())
}

/// The git directory of a remote URL that is a repository on this machine (`file://` or a
/// path), when it can be found without git's help: a bare repository, or a work tree's `.git`
/// directory.
pub(crate) fn local_git_dir(url: &str) -> Option<PathBuf> {
    let path = match url.strip_prefix("file://") {
        Some(rest) => rest,
        // scp-like `host:path` and other schemes are remote.
        None if url.starts_with('/') => url,
        None => return None,
    };
    // Percent-encoding and `file://host/…` forms are git's to interpret.
    if !path.starts_with('/') || path.contains('%') {
        return None;
    }
    let path = Path::new(path);
    let is_git_dir = |p: &Path| p.join("HEAD").is_file() && p.join("refs").is_dir();
    if is_git_dir(path) {
        Some(path.to_path_buf())
    } else if is_git_dir(&path.join(".git")) {
        Some(path.join(".git"))
    } else {
        None
    }
}

/// A full object id: 40 (SHA-1) or 64 (SHA-256) lowercase hex digits.
fn object_id(s: &str) -> Option<String> {
    ((s.len() == 40 || s.len() == 64) && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
        .then(|| s.to_owned())
}

/// A ref name that is a plain relative file path under the git directory: what
/// `git check-ref-format` accepts, minus what would need interpretation.
fn plain_refname(name: &str) -> bool {
    name.starts_with("refs/")
        && !name.ends_with('/')
        && !name.ends_with(".lock")
        && !name.contains("..")
        && !name.contains("//")
        && !name.contains("@{")
        && name
            .split('/')
            .all(|c| !c.is_empty() && !c.starts_with('.'))
        && !name
            .bytes()
            .any(|b| b < 0x20 || b == 0x7f || b" ~^:?*[\\".contains(&b))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const A: &str = "0123456789abcdef0123456789abcdef01234567";
    const B: &str = "89abcdef0123456789abcdef0123456789abcdef";

    fn repo(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("driftwatch-refs-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("refs/heads")).unwrap();
        std::fs::write(dir.join("HEAD"), "ref: refs/heads/main\n").unwrap();
        dir
    }

    #[test]
    fn loose_refs_win_over_packed_ones() {
        let dir = repo("loose");
        std::fs::write(
            dir.join("packed-refs"),
            format!("# pack-refs with: peeled fully-peeled sorted \n{B} refs/heads/main\n^{A}\n{A} refs/heads/dev\n"),
        )
        .unwrap();
        assert_eq!(read_ref(&dir, "refs/heads/main"), RefRead::Found(B.into()));
        std::fs::write(dir.join("refs/heads/main"), format!("{A}\n")).unwrap();
        assert_eq!(read_ref(&dir, "refs/heads/main"), RefRead::Found(A.into()));
        assert_eq!(read_ref(&dir, "refs/heads/dev"), RefRead::Found(A.into()));
        assert_eq!(read_ref(&dir, "refs/heads/gone"), RefRead::Unknown);
        assert_eq!(head_branch(&dir).as_deref(), Some("main"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn anything_unusual_is_left_to_git() {
        let dir = repo("unusual");
        std::fs::write(dir.join("refs/heads/sym"), "ref: refs/heads/main\n").unwrap();
        assert_eq!(read_ref(&dir, "refs/heads/sym"), RefRead::Unknown);
        std::fs::write(dir.join("refs/heads/short"), "0123\n").unwrap();
        assert_eq!(read_ref(&dir, "refs/heads/short"), RefRead::Unknown);
        for name in [
            "refs/heads/../../HEAD",
            "refs/heads/a..b",
            "refs/heads/.hidden",
            "refs/heads/x.lock",
            "HEAD",
            "/etc/passwd",
            "refs/heads/a b",
            "refs/heads/a@{1}",
        ] {
            assert_eq!(read_ref(&dir, name), RefRead::Unknown, "{name}");
        }
        std::fs::write(dir.join("refs/heads/main"), format!("{A}\n")).unwrap();
        std::fs::create_dir_all(dir.join("reftable")).unwrap();
        assert_eq!(read_ref(&dir, "refs/heads/main"), RefRead::Unknown);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn only_local_urls_name_a_git_dir() {
        let dir = repo("url");
        let url = format!("file://{}", dir.display());
        assert_eq!(local_git_dir(&url), Some(dir.clone()));
        assert_eq!(local_git_dir(&dir.display().to_string()), Some(dir.clone()));
        for url in [
            "https://example.com/a.git",
            "git@example.com:a.git",
            "ssh://example.com/a.git",
            "file://host/a.git",
            "file:///tmp/with%20space",
            "relative/path",
        ] {
            assert_eq!(local_git_dir(url), None, "{url}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
