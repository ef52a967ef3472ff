//! Git objects built in-process: a write-back commit is a few blobs, the trees on the way to
//! them and the commit itself. Writing those as loose objects here, instead of through
//! `read-tree`, `hash-object`, `ls-tree`, `update-index`, `write-tree`, `rev-parse` and
//! `commit-tree`, saves seven processes per commit, which at 2,000 repositories is most of a
//! cycle's time. The format is Git's own (SHA-1 object ids, zlib-deflated loose objects), so the
//! push that follows is plain `git push`.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;

use sha1::Digest as _;

use crate::error::Error;

/// Git's mode of a directory entry.
const TREE: &str = "40000";
/// Git's mode of a symbolic link.
const LINK: &str = "120000";
/// Git's mode of a submodule (a commit inside a tree).
const GITLINK: &str = "160000";
/// Git's mode of a new file.
const FILE: &str = "100644";

/// One entry of a tree object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    /// Git's octal mode without leading zeros (`100644`, `40000`, …).
    pub mode: String,
    /// The name within its directory.
    pub name: Vec<u8>,
    /// The object id, hex.
    pub oid: String,
}

/// Parses a tree object's bytes (`<mode> <name>\0<20-byte id>`, repeated).
pub(crate) fn parse_tree(bytes: &[u8]) -> Result<Vec<Entry>, String> {
    let mut entries = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let space = rest
            .iter()
            .position(|&b| b == b' ')
            .ok_or("a tree entry without a mode")?;
        let nul = rest
            .iter()
            .position(|&b| b == 0)
            .filter(|&n| n > space)
            .ok_or("a tree entry without a name")?;
        let id = rest
            .get(nul + 1..nul + 21)
            .ok_or("a tree entry cut short")?;
        let mode = std::str::from_utf8(&rest[..space])
            .ok()
            .filter(|m| !m.is_empty() && m.bytes().all(|b| (b'0'..=b'7').contains(&b)))
            .ok_or("a tree entry with a bad mode")?;
        entries.push(Entry {
            mode: mode.to_owned(),
            name: rest[space + 1..nul].to_vec(),
            oid: driftwatch_policy::secret::encode_hex(id),
        });
        rest = &rest[nul + 21..];
    }
    Ok(entries)
}

/// A tree object's bytes, entries in Git's order: by name, a directory compared as if its name
/// ended in `/` (Git rejects trees in another order).
pub(crate) fn tree_bytes(entries: &[Entry]) -> Result<Vec<u8>, String> {
    let key = |e: &Entry| {
        let mut k = e.name.clone();
        if e.mode == TREE {
            k.push(b'/');
        }
        k
    };
    let mut sorted: Vec<&Entry> = entries.iter().collect();
    sorted.sort_by_key(|e| key(e));
    let mut out = Vec::new();
    for e in sorted {
        out.extend_from_slice(e.mode.as_bytes());
        out.push(b' ');
        out.extend_from_slice(&e.name);
        out.push(0);
        out.extend_from_slice(
            &driftwatch_policy::secret::decode_hex(&e.oid).ok_or("an object id that is not hex")?,
        );
    }
    Ok(out)
}

/// The id Git gives an object of this kind and content.
pub(crate) fn object_id(kind: &str, content: &[u8]) -> String {
    let mut h = sha1::Sha1::new();
    h.update(format!("{kind} {}\0", content.len()).as_bytes());
    h.update(content);
    driftwatch_policy::secret::encode_hex(&h.finalize())
}

/// Writes an object into `objects` (a repository's `objects` directory) as a loose object,
/// unless it is there already; returns its id. Written to a temporary file and renamed, so a
/// crash leaves no partial object under its id.
pub(crate) fn write_object(objects: &Path, kind: &str, content: &[u8]) -> Result<String, Error> {
    let oid = object_id(kind, content);
    let dir = objects.join(&oid[..2]);
    let path = dir.join(&oid[2..]);
    if path.exists() {
        return Ok(oid);
    }
    let err = |p: &Path, e: std::io::Error| Error::Io {
        context: p.display().to_string(),
        source: e,
    };
    std::fs::create_dir_all(&dir).map_err(|e| err(&dir, e))?;
    let tmp = dir.join(format!(
        "tmp_obj_driftwatch_{}_{}",
        std::process::id(),
        TMP_SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let written = (|| {
        let file = std::fs::File::create(&tmp)?;
        let mut z = flate2::write::ZlibEncoder::new(file, flate2::Compression::default());
        z.write_all(format!("{kind} {}\0", content.len()).as_bytes())?;
        z.write_all(content)?;
        z.finish()?;
        std::fs::rename(&tmp, &path)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(err(&path, e));
    }
    Ok(oid)
}

static TMP_SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The tree id a commit object names (its first line).
pub(crate) fn commit_tree(commit: &[u8]) -> Result<String, String> {
    let first = commit.split(|&b| b == b'\n').next().unwrap_or_default();
    std::str::from_utf8(first)
        .ok()
        .and_then(|l| l.strip_prefix("tree "))
        .filter(|t| t.len() == 40 && t.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(str::to_owned)
        .ok_or_else(|| "a commit without a tree".to_owned())
}

/// A commit object's bytes: one parent, the same person as author and committer at `when`
/// (Unix seconds, UTC), and the message exactly as given (as `git commit-tree -F -` stores it).
pub(crate) fn commit_bytes(
    tree: &str,
    parent: &str,
    name: &str,
    email: &str,
    when: i64,
    message: &str,
) -> Vec<u8> {
    let who = format!("{} <{}> {when} +0000", ident(name), ident(email));
    format!("tree {tree}\nparent {parent}\nauthor {who}\ncommitter {who}\n\n{message}").into_bytes()
}

/// A name or email as Git writes it into an ident line: without the characters that would
/// break the line (`<`, `>`, newlines), trimmed.
fn ident(s: &str) -> String {
    s.chars()
        .filter(|c| !matches!(c, '<' | '>' | '\n' | '\r' | '\0'))
        .collect::<String>()
        .trim()
        .to_owned()
}

/// What to do at one path: write a blob (its id), or delete.
pub(crate) type Edit = Option<String>;

/// Applies `edits` (repository-relative paths, already checked) to the tree `root`: writes the
/// changed trees through `write` and returns the new root's id. `read` gives a tree object's
/// bytes by id. A file keeps its mode (an executable stays executable; new files are `100644`).
/// A write refuses to go through a symlink or into a directory, a file or a submodule where a
/// directory is needed; a delete of something absent (or behind a link) changes nothing, as
/// `update-index --force-remove` did.
pub(crate) fn edit_tree(
    root: &str,
    edits: &BTreeMap<String, Edit>,
    read: &mut dyn FnMut(&str) -> Result<Vec<u8>, Error>,
    write: &mut dyn FnMut(&[u8]) -> Result<String, Error>,
) -> Result<String, Error> {
    let edits: Vec<(&str, &Edit)> = edits.iter().map(|(p, e)| (p.as_str(), e)).collect();
    match edit_dir(Some(root), "", &edits, read, write)? {
        Some(oid) => Ok(oid),
        // Every file went: the commit's tree is the empty tree.
        None => write(&[]),
    }
}

/// One directory's part of [`edit_tree`]: `edits` are relative to `dir` (for errors, the
/// directory's own path). `None` when the directory ends up empty (Git keeps no empty tree).
fn edit_dir(
    oid: Option<&str>,
    dir: &str,
    edits: &[(&str, &Edit)],
    read: &mut dyn FnMut(&str) -> Result<Vec<u8>, Error>,
    write: &mut dyn FnMut(&[u8]) -> Result<String, Error>,
) -> Result<Option<String>, Error> {
    let bad_tree = |reason: String| Error::Io {
        context: format!("tree of {:?}", if dir.is_empty() { "/" } else { dir }),
        source: std::io::Error::other(reason),
    };
    let mut entries = match oid {
        Some(oid) => parse_tree(&read(oid)?).map_err(|r| bad_tree(r.to_owned()))?,
        None => Vec::new(),
    };
    let full = |rel: &str| {
        if dir.is_empty() {
            rel.to_owned()
        } else {
            format!("{dir}/{rel}")
        }
    };
    // Edits grouped by their first component, in order (the input is sorted by path).
    let mut i = 0;
    while i < edits.len() {
        let (path, edit) = edits[i];
        let (head, _) = path.split_once('/').unwrap_or((path, ""));
        let at = entries.iter().position(|e| e.name == head.as_bytes());
        if !path.contains('/') {
            i += 1;
            match (edit, at) {
                (None, Some(k)) if entries[k].mode != TREE => {
                    entries.remove(k);
                }
                (None, _) => {}
                (Some(blob), Some(k)) => {
                    let e = &mut entries[k];
                    match e.mode.as_str() {
                        LINK => {
                            return Err(Error::WriteThroughLink {
                                path: full(path),
                                link: full(path),
                            });
                        }
                        TREE | GITLINK => {
                            return Err(Error::BadPath {
                                path: full(path),
                                reason: "is a directory or a submodule, not a file",
                            });
                        }
                        _ => e.oid.clone_from(blob),
                    }
                }
                (Some(blob), None) => entries.push(Entry {
                    mode: FILE.to_owned(),
                    name: head.as_bytes().to_vec(),
                    oid: blob.clone(),
                }),
            }
            continue;
        }
        // Every edit below `head`, made relative to it.
        let mut below: Vec<(&str, &Edit)> = Vec::new();
        while i < edits.len() {
            let (p, e) = edits[i];
            match p.strip_prefix(head).and_then(|r| r.strip_prefix('/')) {
                Some(rest) => below.push((rest, e)),
                None => break,
            }
            i += 1;
        }
        let only_deletes = below.iter().all(|(_, e)| e.is_none());
        let sub = match at.map(|k| &entries[k]) {
            Some(e) if e.mode == TREE => Some(e.oid.clone()),
            // Nothing to delete behind a link, a file or a submodule, or where nothing is.
            _ if only_deletes => continue,
            None => None,
            Some(e) if e.mode == LINK => {
                let first = below.iter().find(|(_, e)| e.is_some()).map_or("", |b| b.0);
                return Err(Error::WriteThroughLink {
                    path: full(&format!("{head}/{first}")),
                    link: full(head),
                });
            }
            Some(_) => {
                return Err(Error::BadPath {
                    path: full(head),
                    reason: "is a file or a submodule, not a directory",
                });
            }
        };
        let new = edit_dir(sub.as_deref(), &full(head), &below, read, write)?;
        match (new, at) {
            (Some(oid), Some(k)) => entries[k].oid = oid,
            (Some(oid), None) => entries.push(Entry {
                mode: TREE.to_owned(),
                name: head.as_bytes().to_vec(),
                oid,
            }),
            (None, Some(k)) => {
                entries.remove(k);
            }
            (None, None) => {}
        }
    }
    if entries.is_empty() {
        return Ok(None);
    }
    let bytes = tree_bytes(&entries).map_err(|r| bad_tree(r.to_owned()))?;
    write(&bytes).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_ids_are_gits() {
        // `git hash-object --stdin </dev/null` and `printf 'hello\n' | git hash-object --stdin`;
        // the empty tree's id is well known.
        assert_eq!(
            object_id("blob", b""),
            "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"
        );
        assert_eq!(
            object_id("blob", b"hello\n"),
            "ce013625030ba8dba906f756967f9e9ca394464a"
        );
        assert_eq!(
            object_id("tree", b""),
            "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
        );
    }

    #[test]
    fn trees_sort_a_directory_as_if_it_ended_in_a_slash() {
        let oid = "ce013625030ba8dba906f756967f9e9ca394464a".to_owned();
        let e = |mode: &str, name: &str| Entry {
            mode: mode.to_owned(),
            name: name.as_bytes().to_vec(),
            oid: oid.clone(),
        };
        // "a-b" < "a/" < "a0": the directory `a` goes between them, the file `a.txt` first.
        let bytes = tree_bytes(&[
            e(FILE, "a0"),
            e(TREE, "a"),
            e(FILE, "a-b"),
            e(FILE, "a.txt"),
        ])
        .unwrap();
        let names: Vec<String> = parse_tree(&bytes)
            .unwrap()
            .into_iter()
            .map(|e| String::from_utf8(e.name).unwrap())
            .collect();
        assert_eq!(names, ["a-b", "a.txt", "a", "a0"]);
    }

    #[test]
    fn a_cut_or_garbled_tree_is_an_error() {
        assert!(parse_tree(b"100644 a").is_err());
        assert!(parse_tree(b"100644 a\0short").is_err());
        assert!(parse_tree(b"1x0644 a\0aaaaaaaaaaaaaaaaaaaa").is_err());
        assert_eq!(parse_tree(b"").unwrap(), Vec::new());
    }

    #[test]
    fn idents_cannot_break_the_commit_header() {
        let c = commit_bytes("t", "p", "Eve <x>\nparent 1", "e@x", 5, "m");
        let text = String::from_utf8(c).unwrap();
        assert_eq!(text.lines().filter(|l| l.starts_with("parent ")).count(), 1);
        assert!(text.contains("author Eve xparent 1 <e@x> 5 +0000\n"));
    }
}
