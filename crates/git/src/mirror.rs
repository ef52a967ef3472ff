//! A persistent bare mirror per remote URL, and commits built without a work tree.
//!
//! Each cycle fetches into the mirror (never a fresh clone), reads files straight from the
//! fetched commit, writes blobs, builds the new tree in a private index, and pushes the commit.
//! Nothing is checked out, so several updates can run side by side and an interrupted one
//! leaves no half-written files behind.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::auth::{Auth, redact_url};
use crate::error::{Error, TransportCause};
use crate::refs::{self, RefRead};

/// Who a commit is by, and how it is signed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// Author and committer name.
    pub name: String,
    /// Author and committer email.
    pub email: String,
    /// Sign the commit.
    pub signing: Option<Signing>,
    /// Add a `Signed-off-by:` trailer.
    pub signoff: bool,
}

impl Default for Identity {
    fn default() -> Self {
        Identity {
            name: "driftwatch".to_owned(),
            email: "noreply@driftwatch.invalid".to_owned(),
            signing: None,
            signoff: false,
        }
    }
}

/// How commits are signed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Signing {
    /// OpenPGP with gpg: the key id (or the default key), and the keyring directory (GNUPGHOME)
    /// when not the user's own.
    Gpg {
        key: Option<String>,
        home: Option<PathBuf>,
    },
    /// SSH signing with this private (or public, with an agent) key file.
    Ssh { key: PathBuf },
}

/// A file the edit wants written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileWrite {
    /// Path inside the repository, `/`-separated.
    pub path: String,
    /// The whole new content.
    pub content: Vec<u8>,
}

/// What an edit wants committed: the files, the message, and where to push (for write
/// branches whose name depends on the changes).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Files to write; empty means nothing to do.
    pub writes: Vec<FileWrite>,
    /// The commit message.
    pub message: String,
    /// The branch to push to when not the base (force-pushed: it belongs to driftwatch).
    pub target: Option<String>,
    /// Files to delete.
    pub deletes: Vec<String>,
}

/// What an update did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The files already said so: no commit, no push.
    Unchanged,
    /// One commit was pushed.
    Pushed {
        /// The new commit's id.
        commit: String,
        /// The branch it was pushed to.
        branch: String,
        /// How many push attempts it took (1 without a race).
        attempts: u32,
    },
}

/// The commit the edit reads from. Reads go through one long-lived `git cat-file --batch`, so
/// reading hundreds of files costs one process, not hundreds.
pub struct Snapshot<'m> {
    mirror: &'m Mirror,
    commit: String,
    batch: std::cell::RefCell<Option<Batch>>,
}

struct Batch {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    stdout: std::io::BufReader<std::process::ChildStdout>,
}

impl Drop for Batch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Snapshot<'_> {
    /// The commit id.
    pub fn commit(&self) -> &str {
        &self.commit
    }

    /// A file's bytes at this commit, `None` when it does not exist.
    pub fn read(&self, path: &str) -> Result<Option<Vec<u8>>, Error> {
        check_path(path)?;
        match self.object(&format!("{}:{path}", self.commit))? {
            None => Ok(None),
            Some((kind, content)) if kind == "blob" => Ok(Some(content)),
            Some(_) => Err(Error::BadPath {
                path: path.to_owned(),
                reason: "is a directory, not a file",
            }),
        }
    }

    /// One object through the batch reader (started on first use): its type and bytes, `None`
    /// when `spec` names nothing.
    fn object(&self, spec: &str) -> Result<Option<(String, Vec<u8>)>, Error> {
        let mut slot = self.batch.borrow_mut();
        let batch = match &mut *slot {
            Some(b) => b,
            none => none.insert(self.mirror.batch()?),
        };
        let io_err = |e: std::io::Error| io(&self.mirror.dir, e);
        writeln!(batch.stdin, "{spec}").map_err(io_err)?;
        batch.stdin.flush().map_err(io_err)?;
        answer(&mut batch.stdout, &self.mirror.dir)
    }

    /// Many objects through the batch reader, pipelined: a thread writes every request while
    /// the answers are read, so a tree of thousands of files costs no round trip per file.
    /// `each` gets them in order; an object that is missing is an error.
    fn objects(
        &self,
        oids: &[&str],
        mut each: impl FnMut(usize, Vec<u8>) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let mut slot = self.batch.borrow_mut();
        let batch = match &mut *slot {
            Some(b) => b,
            none => none.insert(self.mirror.batch()?),
        };
        let dir = &self.mirror.dir;
        let Batch {
            child,
            stdin,
            stdout,
        } = batch;
        let result = std::thread::scope(|scope| {
            let writer = scope.spawn(move || -> std::io::Result<()> {
                for oid in oids {
                    writeln!(stdin, "{oid}")?;
                }
                stdin.flush()
            });
            let read = (|| {
                for (i, oid) in oids.iter().enumerate() {
                    let Some((_, content)) = answer(stdout, dir)? else {
                        return Err(io(
                            dir,
                            std::io::Error::other(format!("object {oid} is missing")),
                        ));
                    };
                    each(i, content)?;
                }
                Ok(())
            })();
            // Stopping early: the process goes, so the writer cannot block on a full pipe.
            if read.is_err() {
                let _ = child.kill();
            }
            let written = match writer.join() {
                Ok(w) => w.map_err(|e| io(dir, e)),
                Err(_) => Err(io(
                    dir,
                    std::io::Error::other("the request writer panicked"),
                )),
            };
            read.and(written)
        });
        if result.is_err() {
            // Its answers may be half read: the next read starts a fresh process.
            *slot = None;
        }
        result
    }

    /// Writes this commit's whole tree into `dest` (which must exist), for tools that need
    /// files: one `ls-tree` and the snapshot's batch reader, so a render costs no process per
    /// file, and the files are exactly the commit's (no `export-ignore` or `export-subst`
    /// rewriting, as `git archive` would do). Every symlink must resolve inside `dest`
    /// ([`crate::check_links`]): the tools that read the tree follow links, and a pushed link
    /// to a host file must not reach them.
    pub fn export(&self, dest: &Path) -> Result<(), Error> {
        use std::os::unix::ffi::OsStrExt as _;
        use std::os::unix::fs::PermissionsExt as _;
        let listing = self
            .mirror
            .git(&["ls-tree", "-r", "-z", "--full-tree", &self.commit], None)?;
        // (where, object, executable), files first and links last, so no file is ever
        // written through a link.
        let mut files: Vec<(PathBuf, &str, bool)> = Vec::new();
        let mut links: Vec<(PathBuf, &str)> = Vec::new();
        for entry in listing.split(|&b| b == 0).filter(|e| !e.is_empty()) {
            // `<mode> SP <type> SP <oid> TAB <path>`; with -z the path is not quoted.
            let Some(tab) = entry.iter().position(|&b| b == b'\t') else {
                continue;
            };
            let (meta, raw) = (&entry[..tab], &entry[tab + 1..]);
            let mut meta = meta
                .split(|&b| b == b' ')
                .map(|f| std::str::from_utf8(f).unwrap_or(""));
            let (Some(mode), Some(kind), Some(oid)) = (meta.next(), meta.next(), meta.next())
            else {
                continue;
            };
            check_export_path(raw)?;
            let target = dest.join(std::ffi::OsStr::from_bytes(raw));
            match (mode, kind) {
                // A submodule: `git archive` leaves an empty directory, and so does this.
                (_, "commit") => {
                    std::fs::create_dir_all(&target).map_err(|e| io(&target, e))?;
                }
                ("120000", _) => links.push((target, oid)),
                (_, "blob") => files.push((target, oid, mode == "100755")),
                _ => {}
            }
        }
        let mut made = std::collections::HashSet::new();
        let mut parent_of = |target: &Path| -> Result<(), Error> {
            if let Some(parent) = target.parent()
                && made.insert(parent.to_path_buf())
            {
                std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
            }
            Ok(())
        };
        let oids: Vec<&str> = files.iter().map(|f| f.1).collect();
        self.objects(&oids, |i, content| {
            let (target, _, executable) = &files[i];
            parent_of(target)?;
            std::fs::write(target, content).map_err(|e| io(target, e))?;
            if *executable {
                std::fs::set_permissions(target, std::fs::Permissions::from_mode(0o755))
                    .map_err(|e| io(target, e))?;
            }
            Ok(())
        })?;
        let oids: Vec<&str> = links.iter().map(|l| l.1).collect();
        self.objects(&oids, |i, to| {
            let target = &links[i].0;
            parent_of(target)?;
            std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(&to), target)
                .map_err(|e| io(target, e))
        })?;
        crate::confine::check_links(dest)
    }
}

/// Reads one `cat-file --batch` answer: the object's type and bytes, `None` when missing.
fn answer(
    stdout: &mut std::io::BufReader<std::process::ChildStdout>,
    dir: &Path,
) -> Result<Option<(String, Vec<u8>)>, Error> {
    use std::io::{BufRead, Read};
    let io_err = |e: std::io::Error| io(dir, e);
    let mut header = String::new();
    stdout.read_line(&mut header).map_err(io_err)?;
    let header = header.trim_end();
    if header.ends_with(" missing") || header.ends_with(" ambiguous") {
        return Ok(None);
    }
    let mut fields = header.split(' ');
    let (_oid, kind, size) = (fields.next(), fields.next(), fields.next());
    let (Some(kind), Some(size)) = (kind, size.and_then(|s| s.parse::<usize>().ok())) else {
        return Err(io(
            dir,
            std::io::Error::other(format!("unexpected cat-file answer {header:?}")),
        ));
    };
    // The content is followed by a newline, read with it so the next answer starts clean.
    let mut content = vec![0; size + 1];
    stdout.read_exact(&mut content).map_err(io_err)?;
    content.truncate(size);
    Ok(Some((kind.to_owned(), content)))
}

/// A path from the commit's own tree, checked before anything is written under the export
/// directory: relative, and no empty, `.`, `..` or `.git` component (Git refuses such trees,
/// but a crafted one must not write outside the directory).
fn check_export_path(raw: &[u8]) -> Result<(), Error> {
    let bad = raw.first() == Some(&b'/')
        || raw
            .split(|&b| b == b'/')
            .any(|c| matches!(c, b"" | b"." | b".." | b".git"));
    if bad {
        return Err(Error::BadPath {
            path: String::from_utf8_lossy(raw).into_owned(),
            reason: "must not be absolute or contain empty, '.', '..' or '.git' components",
        });
    }
    Ok(())
}

/// How an update is made.
#[derive(Clone, Debug)]
pub struct UpdateRequest {
    /// The branch to read and build on.
    pub base: String,
    /// Author, committer and signing.
    pub identity: Identity,
    /// Push attempts before giving up on a moving branch.
    pub max_attempts: u32,
}

/// A bare mirror of one remote.
#[derive(Debug)]
pub struct Mirror {
    dir: PathBuf,
    url: String,
    auth: Auth,
}

static SEQ: AtomicU64 = AtomicU64::new(0);

impl Mirror {
    /// Opens (creating on first use) the mirror of `url` under `state_dir/git/`.
    pub fn open(state_dir: &Path, url: &str, auth: Auth) -> Result<Self, Error> {
        let hash: String = Sha256::digest(url.as_bytes())
            .iter()
            .take(8)
            .map(|b| format!("{b:02x}"))
            .collect();
        let slug: String = redact_url(url)
            .rsplit('/')
            .next()
            .unwrap_or("repo")
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                    c
                } else {
                    '_'
                }
            })
            .take(40)
            .collect();
        let dir = state_dir.join("git").join(format!("{slug}-{hash}"));
        let mirror = Mirror {
            dir,
            url: url.to_owned(),
            auth,
        };
        if !mirror.dir.join("HEAD").exists() {
            // Two updaters may open the same new mirror at once: initialise under a lock beside
            // it, and check again once holding it.
            let parent = state_dir.join("git");
            std::fs::create_dir_all(&parent).map_err(|e| io(&parent, e))?;
            let lock_path = parent.join(format!(".{slug}-{hash}.lock"));
            let lock = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&lock_path)
                .map_err(|e| io(&lock_path, e))?;
            lock.lock().map_err(|e| io(&lock_path, e))?;
            if !mirror.dir.join("HEAD").exists() {
                std::fs::create_dir_all(&mirror.dir).map_err(|e| io(&mirror.dir, e))?;
                mirror.git(&["init", "--bare", "--quiet"], None)?;
                // The URL lives in the mirror's config; a password in it would be written to
                // disk, so credentials must come through `Auth`, and messages show it redacted.
                // Appended here rather than by two `git config` processes: a first cycle
                // opens thousands of new mirrors.
                let config = mirror.dir.join("config");
                let mut f = std::fs::OpenOptions::new()
                    .append(true)
                    .open(&config)
                    .map_err(|e| io(&config, e))?;
                write!(
                    f,
                    "[remote \"origin\"]\n\turl = {}\n[gc]\n\tauto = 0\n",
                    config_value(url)
                )
                .map_err(|e| io(&config, e))?;
            }
        }
        Ok(mirror)
    }

    /// The mirror's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The branch `name` means: itself, or for `HEAD` (Argo CD's default `targetRevision`) the
    /// remote's default branch.
    pub fn resolve_branch(&self, name: &str) -> Result<String, Error> {
        if name != "HEAD" {
            return Ok(name.to_owned());
        }
        if let Some(branch) = refs::local_git_dir(&self.url).and_then(|d| refs::head_branch(&d)) {
            return Ok(branch);
        }
        let out = self.git(&["ls-remote", "--symref", "origin", "HEAD"], None)?;
        String::from_utf8_lossy(&out)
            .lines()
            .find_map(|l| l.strip_prefix("ref: refs/heads/"))
            .and_then(|l| l.split_whitespace().next())
            .map(str::to_owned)
            .ok_or_else(|| Error::NoBranch {
                url: redact_url(&self.url),
                branch: "HEAD (the remote names no default branch)".to_owned(),
            })
    }

    /// Fetches these branches; a branch missing on the remote is not an error here.
    pub fn fetch(&self, branches: &[&str]) -> Result<(), Error> {
        let mut args = vec!["fetch", "--quiet", "--prune", "--no-tags", "origin"];
        let specs: Vec<String> = branches
            .iter()
            .map(|b| format!("+refs/heads/{b}:refs/remotes/origin/{b}"))
            .collect();
        args.extend(specs.iter().map(String::as_str));
        match self.git(&args, None) {
            Ok(_) => Ok(()),
            Err(Error::Git { stderr, .. }) if stderr.contains("couldn't find remote ref") => {
                // Fetch what exists, one by one, so a missing write branch does not block the base.
                for spec in &specs {
                    let _ = self.git(&["fetch", "--quiet", "--no-tags", "origin", spec], None);
                }
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Fetches `branch` unless the remote's head is known, without a git process, to be the
    /// one already fetched; then returns the fetched head. This is what lets a cycle over
    /// hundreds of unchanged repositories on this machine start no process at all.
    pub fn fetch_head(&self, branch: &str) -> Result<Option<String>, Error> {
        if let Some(head) = self.unmoved(branch) {
            return Ok(Some(head));
        }
        self.fetch(&[branch])?;
        // The fetch has just written the ref: read in-process where that is certain.
        match refs::read_ref(&self.dir, &format!("refs/remotes/origin/{branch}")) {
            RefRead::Found(head) => Ok(Some(head)),
            RefRead::Unknown => self.head(branch),
        }
    }

    /// The fetched head of `branch` when the remote's ref files say it has not moved since:
    /// only for a remote on this machine, and only when both reads are certain.
    fn unmoved(&self, branch: &str) -> Option<String> {
        let remote = refs::local_git_dir(&self.url)?;
        let RefRead::Found(there) = refs::read_ref(&remote, &format!("refs/heads/{branch}")) else {
            return None;
        };
        let RefRead::Found(here) =
            refs::read_ref(&self.dir, &format!("refs/remotes/origin/{branch}"))
        else {
            return None;
        };
        (there == here).then_some(here)
    }

    /// The last commit at or before `commit` that changed `path`: its short id and author,
    /// `None` when nothing did (or the path is unknown).
    pub fn last_change(&self, commit: &str, path: &str) -> Result<Option<(String, String)>, Error> {
        check_path(path)?;
        let out = self.git(
            &["log", "-1", "--format=%h%x00%an", commit, "--", path],
            None,
        )?;
        let text = String::from_utf8_lossy(&out);
        Ok(text
            .trim()
            .split_once('\0')
            .map(|(id, who)| (id.to_owned(), who.to_owned())))
    }

    /// Whether `commit` is `head` or one of its ancestors: `false` also when this mirror does
    /// not hold `commit` at all (a fetch of the branch would have brought it, had it been
    /// pushed there).
    pub fn contains(&self, head: &str, commit: &str) -> Result<bool, Error> {
        let object = format!("{commit}^{{commit}}");
        if self.git(&["cat-file", "-e", &object], None).is_err() {
            return Ok(false);
        }
        match self.git(&["merge-base", "--is-ancestor", commit, head], None) {
            Ok(_) => Ok(true),
            // Exit status 1, which says no, prints nothing; a failure says why.
            Err(Error::Git { stderr, .. }) if stderr.is_empty() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The fetched head of `branch`, if the remote has it.
    pub fn head(&self, branch: &str) -> Result<Option<String>, Error> {
        let rev = format!("refs/remotes/origin/{branch}^{{commit}}");
        match self.git(&["rev-parse", "--verify", "--quiet", &rev], None) {
            Ok(out) => Ok(Some(String::from_utf8_lossy(&out).trim().to_owned())),
            Err(Error::Git { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Reads at `commit` through one long-lived `git cat-file --batch`: for reading many files
    /// (a check over every application of a repository) at the cost of one process.
    pub fn snapshot(&self, commit: &str) -> Snapshot<'_> {
        Snapshot {
            mirror: self,
            commit: commit.to_owned(),
            batch: std::cell::RefCell::new(None),
        }
    }

    /// A file's bytes at `commit`, `None` when it does not exist there. One `git` process per
    /// call: to read several files, read them through one [`Mirror::snapshot`].
    pub fn read(&self, commit: &str, path: &str) -> Result<Option<Vec<u8>>, Error> {
        self.snapshot(commit).read(path)
    }

    /// Every file under `dir` at `commit` (paths from the repository root).
    pub fn list(&self, commit: &str, dir: &str) -> Result<Vec<String>, Error> {
        let dir = dir.trim_matches('/');
        let mut args = vec!["ls-tree", "-r", "-z", "--name-only", commit];
        if !dir.is_empty() {
            args.push("--");
            args.push(dir);
        }
        let out = self.git(&args, None)?;
        Ok(out
            .split(|&b| b == 0)
            .filter(|p| !p.is_empty())
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .collect())
    }

    /// Writes the tree of `commit` into `dest` (which must exist), for tools that need files;
    /// see [`Snapshot::export`].
    pub fn export(&self, commit: &str, dest: &Path) -> Result<(), Error> {
        self.snapshot(commit).export(dest)
    }

    /// Fetches, lets `edit` compute the files to write from the base branch's head, commits them
    /// as one commit and pushes. When the push is rejected because the branch moved, it fetches
    /// again and re-runs `edit` on the new head, so no one else's commit is lost and no update is
    /// applied twice. Never force-pushes the base branch.
    pub fn update<F>(&self, req: &UpdateRequest, edit: F) -> Result<Outcome, Error>
    where
        F: FnMut(&Snapshot<'_>) -> Result<Plan, Error>,
    {
        self.update_with(req, edit, |_, _| Ok(()))
    }

    /// [`Mirror::update`], calling `before_push(commit, branch)` once the commit exists and
    /// before each push of it: what a crash between the push and the caller's bookkeeping would
    /// lose can be written down first (an error from it stops the update before the push).
    pub fn update_with<F, P>(
        &self,
        req: &UpdateRequest,
        mut edit: F,
        mut before_push: P,
    ) -> Result<Outcome, Error>
    where
        F: FnMut(&Snapshot<'_>) -> Result<Plan, Error>,
        P: FnMut(&str, &str) -> Result<(), Error>,
    {
        let _lock = self.lock()?;
        let max = req.max_attempts.max(1);
        let mut last_target: Option<String> = None;
        let base = self.resolve_branch(&req.base)?;
        for attempt in 1..=max {
            // After a lost race the remote has moved: fetch whatever the ref files say.
            let head = if attempt == 1 {
                self.fetch_head(&base)?
            } else {
                self.fetch(&[&base])?;
                self.head(&base)?
            };
            let head = head.ok_or_else(|| Error::NoBranch {
                url: redact_url(&self.url),
                branch: base.clone(),
            })?;
            let snapshot = self.snapshot(&head);
            let plan = edit(&snapshot)?;
            let Some(commit) = self.commit(&snapshot, &plan, &req.identity)? else {
                return Ok(Outcome::Unchanged);
            };
            last_target = plan.target.clone();
            let (branch, force) = match &plan.target {
                Some(t) if t != &base => (t.clone(), true),
                _ => (base.clone(), false),
            };
            let refspec = format!(
                "{}{commit}:refs/heads/{branch}",
                if force { "+" } else { "" }
            );
            before_push(&commit, &branch)?;
            match self.git(&["push", "--porcelain", "origin", &refspec], None) {
                Ok(_) => {
                    return Ok(Outcome::Pushed {
                        commit,
                        branch,
                        attempts: attempt,
                    });
                }
                Err(Error::Git { stderr, .. }) if is_race(&stderr) => {
                    if attempt < max {
                        let wait = backoff(attempt);
                        tracing::info!(
                            url = %redact_url(&self.url),
                            branch = %branch,
                            attempt,
                            retry_in_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                            "push raced another writer (non-fast-forward): retrying, fetching and re-applying the edits"
                        );
                        std::thread::sleep(wait);
                    }
                }
                Err(Error::Git { stderr, .. }) => {
                    return Err(Error::PushRefused {
                        url: redact_url(&self.url),
                        branch,
                        reason: stderr,
                    });
                }
                Err(e) => return Err(e),
            }
        }
        Err(Error::PushRaced {
            url: redact_url(&self.url),
            branch: last_target.unwrap_or(base),
            attempts: max,
        })
    }

    /// Builds the commit for `writes` on top of `parent` (the snapshot's commit); `None` when
    /// the tree is unchanged. Blobs, trees and (unless it is signed) the commit are written
    /// in-process ([`crate::objects`]), reading the parent's trees through the snapshot's batch
    /// reader: no process per step. A signed commit goes through `git commit-tree -S`, which
    /// runs the user's gpg or ssh signing exactly as their own git does.
    fn commit(
        &self,
        snap: &Snapshot<'_>,
        plan: &Plan,
        id: &Identity,
    ) -> Result<Option<String>, Error> {
        if plan.writes.is_empty() && plan.deletes.is_empty() {
            return Ok(None);
        }
        for w in &plan.writes {
            check_path(&w.path)?;
        }
        for d in &plan.deletes {
            check_path(d)?;
        }
        let objects = self.dir.join("objects");
        let parent = snap.commit();
        let parent_tree = match snap.object(parent)? {
            Some((kind, bytes)) if kind == "commit" => crate::objects::commit_tree(&bytes),
            _ => Err("not a commit".to_owned()),
        }
        .map_err(|r| io(&self.dir, std::io::Error::other(format!("{parent}: {r}"))))?;
        let mut edits: BTreeMap<String, crate::objects::Edit> = BTreeMap::new();
        for d in &plan.deletes {
            edits.insert(d.clone(), None);
        }
        for w in &plan.writes {
            let blob = crate::objects::write_object(&objects, "blob", &w.content)?;
            edits.insert(w.path.clone(), Some(blob));
        }
        let tree = crate::objects::edit_tree(
            &parent_tree,
            &edits,
            &mut |oid| match snap.object(oid)? {
                Some((kind, bytes)) if kind == "tree" => Ok(bytes),
                _ => Err(io(
                    &self.dir,
                    std::io::Error::other(format!("tree {oid} is missing")),
                )),
            },
            &mut |bytes| crate::objects::write_object(&objects, "tree", bytes),
        )?;
        if tree == parent_tree {
            return Ok(None);
        }
        let mut message = plan.message.clone();
        if id.signoff {
            let trailer = format!("Signed-off-by: {} <{}>", id.name, id.email);
            if !message.contains(&trailer) {
                if !message.ends_with('\n') {
                    message.push('\n');
                }
                message.push('\n');
                message.push_str(&trailer);
                message.push('\n');
            }
        }
        let mut args: Vec<String> = Vec::new();
        match &id.signing {
            Some(Signing::Gpg { key, .. }) => {
                args.extend(["-c".into(), "gpg.format=openpgp".into()]);
                args.extend([
                    "commit-tree".into(),
                    format!("-S{}", key.clone().unwrap_or_default()),
                ]);
            }
            Some(Signing::Ssh { key }) => {
                args.extend([
                    "-c".into(),
                    "gpg.format=ssh".into(),
                    "-c".into(),
                    format!("user.signingkey={}", key.display()),
                    "commit-tree".into(),
                    "-S".into(),
                ]);
            }
            None => {
                let when = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
                let bytes = crate::objects::commit_bytes(
                    &tree, parent, &id.name, &id.email, when, &message,
                );
                return crate::objects::write_object(&objects, "commit", &bytes).map(Some);
            }
        }
        args.extend([
            tree,
            "-p".into(),
            parent.to_owned(),
            "-F".into(),
            "-".into(),
        ]);
        let mut people = vec![
            ("GIT_AUTHOR_NAME", id.name.clone()),
            ("GIT_AUTHOR_EMAIL", id.email.clone()),
            ("GIT_COMMITTER_NAME", id.name.clone()),
            ("GIT_COMMITTER_EMAIL", id.email.clone()),
        ];
        if let Some(Signing::Gpg {
            home: Some(home), ..
        }) = &id.signing
        {
            people.push(("GNUPGHOME", home.display().to_string()));
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let commit = self.git_env(&args, Some(message.as_bytes()), &people)?;
        Ok(Some(String::from_utf8_lossy(&commit).trim().to_owned()))
    }

    fn batch(&self) -> Result<Batch, Error> {
        let mut child = Command::new("git")
            .arg("--git-dir")
            .arg(&self.dir)
            .args(["cat-file", "--batch"])
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(Error::Spawn)?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(io(
                &self.dir,
                std::io::Error::other("git cat-file without pipes"),
            ));
        };
        Ok(Batch {
            child,
            stdin,
            stdout: std::io::BufReader::new(stdout),
        })
    }

    /// One process at a time per mirror: the lock file is released when the guard drops.
    fn lock(&self) -> Result<std::fs::File, Error> {
        let path = self.dir.join("driftwatch.lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| io(&path, e))?;
        file.lock().map_err(|e| io(&path, e))?;
        Ok(file)
    }

    fn git(&self, args: &[&str], stdin: Option<&[u8]>) -> Result<Vec<u8>, Error> {
        self.git_env(args, stdin, &[])
    }

    fn git_env(
        &self,
        args: &[&str],
        stdin: Option<&[u8]>,
        env: &[(&str, String)],
    ) -> Result<Vec<u8>, Error> {
        let mut cmd = Command::new("git");
        cmd.arg("--git-dir").arg(&self.dir).args(args);
        cmd.env("LC_ALL", "C").env("GIT_CONFIG_NOSYSTEM", "1");
        // Over HTTP, a transfer slower than 1 byte/s for LOW_SPEED_SECONDS fails: a server that
        // stops answering (a stalled proxy, a half-open connection) is an error the cycle
        // reports and retries, not a write-back thread waiting for ever.
        cmd.env("GIT_HTTP_LOW_SPEED_LIMIT", "1")
            .env("GIT_HTTP_LOW_SPEED_TIME", LOW_SPEED_SECONDS.to_string());
        for (k, v) in self.auth.env() {
            cmd.env(k, v);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(Error::Spawn)?;
        if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(input).map_err(|e| io(&self.dir, e))?;
        }
        let out = child.wait_with_output().map_err(|e| io(&self.dir, e))?;
        if out.status.success() {
            Ok(out.stdout)
        } else {
            let mut stderr = String::from_utf8_lossy(&out.stderr).trim().to_owned();
            stderr.push_str(String::from_utf8_lossy(&out.stdout).trim());
            let command = args
                .iter()
                .find(|a| !a.starts_with('-') && !a.contains('='))
                .unwrap_or(&"")
                .to_string();
            let (url, stderr) = (redact_url(&self.url), redact_url(&stderr));
            // Only the commands that talk to the remote can fail in transit.
            let remote = matches!(command.as_str(), "fetch" | "push" | "ls-remote");
            match TransportCause::of_stderr(&stderr).filter(|_| remote) {
                Some(cause) => Err(Error::Transport {
                    command,
                    url,
                    cause,
                    stderr,
                }),
                None => Err(Error::Git {
                    command,
                    url,
                    stderr,
                }),
            }
        }
    }
}

/// How long an HTTP transfer may make no progress before Git gives up (the registry client's
/// whole-request timeout is 30 s too).
const LOW_SPEED_SECONDS: u64 = 30;

/// A value as git's config file holds it: quoted, with `\` and `"` escaped and control
/// characters as git writes them, so any URL reads back exactly.
fn config_value(v: &str) -> String {
    let mut out = String::from("\"");
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn is_race(stderr: &str) -> bool {
    stderr.contains("non-fast-forward")
        || stderr.contains("fetch first")
        || stderr.contains("[rejected]") && !stderr.contains("protected")
        || stderr.contains("cannot lock ref")
        || stderr.contains("failed to update ref")
}

/// 100 ms doubling per attempt, capped at 5 s, with up to 50% jitter so racing writers spread.
fn backoff(attempt: u32) -> Duration {
    let base = 100u64.saturating_mul(1 << attempt.min(6)).min(5_000);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::from(d.subsec_nanos()));
    let seed = nanos
        ^ u64::from(std::process::id())
        ^ SEQ
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_mul(0x9E37_79B9);
    Duration::from_millis(base + seed % (base / 2 + 1))
}

fn check_path(path: &str) -> Result<(), Error> {
    let bad = |reason| Error::BadPath {
        path: path.to_owned(),
        reason,
    };
    if path.is_empty() || path.starts_with('/') {
        return Err(bad("must be relative to the repository root"));
    }
    if path
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == ".." || c == ".git")
    {
        return Err(bad(
            "must not contain empty, '.', '..' or '.git' components",
        ));
    }
    if path.contains(['\n', '\t', '\0']) {
        return Err(bad("must not contain control characters"));
    }
    Ok(())
}

fn io(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        context: path.display().to_string(),
        source,
    }
}
