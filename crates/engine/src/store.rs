//! The state store: every update driftwatch made, in SQLite under the state directory, so
//! `driftwatch history` can tell what changed, when the push was seen, decided and committed.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension as _, params};
use serde::Serialize;

use crate::error::Error;

/// Inserts `updates` into `table` (`updates` or `pushing`, which have the same columns).
fn insert_updates(
    tx: &rusqlite::Transaction<'_>,
    table: &str,
    updates: &[Update],
) -> Result<(), Error> {
    let mut insert = tx
        .prepare_cached(&format!(
            "INSERT INTO {table} (app, image, old, new, commit_id, repo, branch, seen_at, decided_at, committed_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
        ))
        .map_err(db_err)?;
    for u in updates {
        insert
            .execute(params![
                u.app,
                u.image,
                u.old,
                u.new,
                u.commit,
                u.repo,
                u.branch,
                u.seen_at,
                u.decided_at,
                u.committed_at
            ])
            .map_err(db_err)?;
    }
    Ok(())
}

/// A remembered evaluation ([`Store::memos`]): repository, branch, fingerprint, and the
/// per-image results as JSON.
pub type MemoRow = (String, String, Vec<u8>, String);

/// What [`Store::set_memos`] keeps of one evaluation: its fingerprint and results as JSON.
pub type Remembered = (Vec<u8>, String);

/// One write of [`Store::set_memos`]: the repository and branch, and what to keep of its
/// evaluation (`None`: forget it).
pub type MemoWrite = ((String, String), Option<Remembered>);

/// One recorded update.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Update {
    /// Application.
    pub app: String,
    /// Image.
    pub image: String,
    /// Git's value before.
    pub old: String,
    /// The value written (`tag` or `tag@digest`).
    pub new: String,
    /// Commit id.
    pub commit: String,
    /// Repository (redacted).
    pub repo: String,
    /// Branch pushed to.
    pub branch: String,
    /// When the push was seen (webhook received, or the cycle started), RFC 3339.
    pub seen_at: String,
    /// When the tag was chosen, RFC 3339.
    pub decided_at: String,
    /// When the commit was pushed, RFC 3339.
    pub committed_at: String,
}

/// One sync and how the rollout ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SyncRecord {
    /// Application.
    pub app: String,
    /// The Git revision synced.
    pub revision: String,
    /// When, RFC 3339.
    pub at: String,
    /// Objects applied.
    pub applied: i64,
    /// Objects pruned.
    pub pruned: i64,
    /// Healthy, Progressing, Degraded, Suspended, Missing, or "not waited".
    pub health: String,
    /// Why, for the worst object.
    pub detail: String,
}

/// A decision someone took on what waited: an approval, a rejection or a released hold.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// Application.
    pub app: String,
    /// Image.
    pub image: String,
    /// The value approved or rejected, or the value a released hold had kept from Git.
    pub value: String,
    /// `approved`, `rejected` or `released`.
    pub what: String,
    /// Who.
    pub by: String,
    /// When, RFC 3339.
    pub at: String,
}

/// The SQLite store.
pub struct Store {
    db: Connection,
}

fn db_err(e: rusqlite::Error) -> Error {
    Error::Read {
        file: "state database".to_owned(),
        reason: e.to_string(),
    }
}

impl Store {
    /// Opens (creating) `state_dir/driftwatch.db`.
    pub fn open(state_dir: &Path) -> Result<Self, Error> {
        std::fs::create_dir_all(state_dir).map_err(|e| Error::Read {
            file: state_dir.display().to_string(),
            reason: e.to_string(),
        })?;
        let db = Connection::open(state_dir.join("driftwatch.db")).map_err(db_err)?;
        db.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA busy_timeout = 5000;
             CREATE TABLE IF NOT EXISTS updates (
               id INTEGER PRIMARY KEY,
               app TEXT NOT NULL, image TEXT NOT NULL,
               old TEXT NOT NULL, new TEXT NOT NULL,
               commit_id TEXT NOT NULL, repo TEXT NOT NULL, branch TEXT NOT NULL,
               seen_at TEXT NOT NULL, decided_at TEXT NOT NULL, committed_at TEXT NOT NULL
             );
             CREATE INDEX IF NOT EXISTS updates_app ON updates(app);
             -- The last value written per image (`last_written_all`, every cycle) without
             -- sorting the whole history.
             CREATE INDEX IF NOT EXISTS updates_app_image ON updates(app, image, id);
             -- Updates whose commit is being pushed: written before the push, moved to
             -- `updates` by `record` (or by `settle_pushing` after a crash), so a process killed
             -- between a push and its history write loses no row.
             CREATE TABLE IF NOT EXISTS pushing (
               id INTEGER PRIMARY KEY,
               app TEXT NOT NULL, image TEXT NOT NULL,
               old TEXT NOT NULL, new TEXT NOT NULL,
               commit_id TEXT NOT NULL, repo TEXT NOT NULL, branch TEXT NOT NULL,
               seen_at TEXT NOT NULL, decided_at TEXT NOT NULL, committed_at TEXT NOT NULL
             );
             -- Rows leave `pushing` by commit: a scan per commit of a cycle writing thousands
             -- of commits would be quadratic.
             CREATE INDEX IF NOT EXISTS pushing_commit ON pushing(commit_id);
             CREATE TABLE IF NOT EXISTS syncs (
               id INTEGER PRIMARY KEY,
               app TEXT NOT NULL, revision TEXT NOT NULL, at TEXT NOT NULL,
               applied INTEGER NOT NULL, pruned INTEGER NOT NULL,
               health TEXT NOT NULL, detail TEXT NOT NULL
             );
             CREATE TABLE IF NOT EXISTS releases (
               id INTEGER PRIMARY KEY,
               app TEXT NOT NULL, image TEXT NOT NULL, held_from TEXT NOT NULL,
               by TEXT NOT NULL, at TEXT NOT NULL
             );
             CREATE TABLE IF NOT EXISTS pending (
               app TEXT NOT NULL, image TEXT NOT NULL, value TEXT NOT NULL, since TEXT NOT NULL,
               PRIMARY KEY (app, image)
             );
             CREATE TABLE IF NOT EXISTS decisions (
               id INTEGER PRIMARY KEY,
               app TEXT NOT NULL, image TEXT NOT NULL, value TEXT NOT NULL,
               approved INTEGER NOT NULL, by TEXT NOT NULL, at TEXT NOT NULL
             );
             CREATE TABLE IF NOT EXISTS soaks (
               upstream TEXT NOT NULL, image TEXT NOT NULL, value TEXT NOT NULL,
               since_nanos TEXT NOT NULL,
               PRIMARY KEY (upstream, image)
             );
             -- The last evaluation of each repository, branch and mode (incremental cycles
             -- across processes: a warm `check` skips unchanged repositories as `run` does).
             CREATE TABLE IF NOT EXISTS memo (
               repo TEXT NOT NULL, branch TEXT NOT NULL, mode TEXT NOT NULL,
               fingerprint BLOB NOT NULL, results TEXT NOT NULL,
               PRIMARY KEY (repo, branch, mode)
             );
             CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS digest_meta (
               digest TEXT PRIMARY KEY,
               created_nanos TEXT,
               platforms TEXT NOT NULL
             );",
        )
        .map_err(db_err)?;
        Ok(Store { db })
    }

    /// Records updates, all or none, and forgets what [`Store::pushing`] noted for their
    /// commits (these rows replace it).
    pub fn record(&mut self, updates: &[Update]) -> Result<(), Error> {
        let tx = self.db.transaction().map_err(db_err)?;
        {
            insert_updates(&tx, "updates", updates)?;
            let commits: std::collections::BTreeSet<&str> =
                updates.iter().map(|u| u.commit.as_str()).collect();
            let mut forget = tx
                .prepare_cached("DELETE FROM pushing WHERE commit_id = ?1")
                .map_err(db_err)?;
            for c in commits {
                forget.execute(params![c]).map_err(db_err)?;
            }
        }
        tx.commit().map_err(db_err)
    }

    /// Notes the updates of a commit about to be pushed, all or none. Once the push is known
    /// to have happened, [`Store::record`] writes their history rows; if the process dies
    /// first, [`Store::settle_pushing`] does, from these.
    pub fn pushing(&mut self, updates: &[Update]) -> Result<(), Error> {
        let tx = self.db.transaction().map_err(db_err)?;
        insert_updates(&tx, "pushing", updates)?;
        tx.commit().map_err(db_err)
    }

    /// What [`Store::pushing`] noted and nothing has settled yet: the updates of commits whose
    /// push may or may not have happened.
    pub fn unsettled(&self) -> Result<Vec<Update>, Error> {
        self.select_updates(
            "SELECT app, image, old, new, commit_id, repo, branch, seen_at, decided_at, committed_at
             FROM pushing ORDER BY id",
            params![],
        )
    }

    /// Settles the noted updates of `commit`: when the branch they were pushed to holds it,
    /// they become history rows (once: the commit's rows are moved, in one transaction);
    /// either way they are no longer unsettled.
    pub fn settle_pushing(&mut self, commit: &str, pushed: bool) -> Result<(), Error> {
        let tx = self.db.transaction().map_err(db_err)?;
        if pushed {
            tx.execute(
                "INSERT INTO updates (app, image, old, new, commit_id, repo, branch, seen_at, decided_at, committed_at)
                 SELECT app, image, old, new, commit_id, repo, branch, seen_at, decided_at, committed_at
                 FROM pushing WHERE commit_id = ?1 ORDER BY id",
                params![commit],
            )
            .map_err(db_err)?;
        }
        tx.execute("DELETE FROM pushing WHERE commit_id = ?1", params![commit])
            .map_err(db_err)?;
        tx.commit().map_err(db_err)
    }

    /// Saves registry metadata per digest (immutable, so existing rows are kept).
    pub fn save_digest_meta(
        &mut self,
        entries: &[(driftwatch_policy::Digest, driftwatch_registry::DigestMeta)],
    ) -> Result<(), Error> {
        let tx = self.db.transaction().map_err(db_err)?;
        for (d, m) in entries {
            let platforms: Vec<String> = m.platforms.iter().map(ToString::to_string).collect();
            tx.execute(
                "INSERT OR IGNORE INTO digest_meta (digest, created_nanos, platforms) VALUES (?1, ?2, ?3)",
                params![d.to_string(), m.created.map(|c| c.unix_nanos().to_string()), platforms.join(",")],
            )
            .map_err(db_err)?;
        }
        tx.commit().map_err(db_err)
    }

    /// Loads the saved registry metadata; unreadable rows are skipped (they will be fetched again).
    pub fn load_digest_meta(
        &self,
    ) -> Result<Vec<(driftwatch_policy::Digest, driftwatch_registry::DigestMeta)>, Error> {
        let mut stmt = self
            .db
            .prepare("SELECT digest, created_nanos, platforms FROM digest_meta")
            .map_err(db_err)?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, Option<String>>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })
            .map_err(db_err)?;
        let mut out = Vec::new();
        for row in rows {
            let (d, created, platforms) = row.map_err(db_err)?;
            let Ok(digest) = driftwatch_policy::Digest::parse(&d) else {
                continue;
            };
            let created = match created.map(|c| c.parse::<i128>()) {
                Some(Ok(n)) => Some(driftwatch_policy::Timestamp::from_unix_nanos(n)),
                Some(Err(_)) => continue,
                None => None,
            };
            let Ok(platforms) = driftwatch_policy::Platform::parse_list(&platforms) else {
                continue;
            };
            out.push((
                digest,
                driftwatch_registry::DigestMeta { created, platforms },
            ));
        }
        Ok(out)
    }

    /// Records a sync and its outcome.
    pub fn record_sync(&mut self, s: &SyncRecord) -> Result<(), Error> {
        self.db
            .execute(
                "INSERT INTO syncs (app, revision, at, applied, pruned, health, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![s.app, s.revision, s.at, s.applied, s.pruned, s.health, s.detail],
            )
            .map(|_| ())
            .map_err(db_err)
    }

    /// Sets the outcome of an application's latest sync of `revision` once its rollout settles.
    pub fn settle_sync(
        &mut self,
        app: &str,
        revision: &str,
        health: &str,
        detail: &str,
    ) -> Result<(), Error> {
        self.db
            .execute(
                "UPDATE syncs SET health = ?3, detail = ?4 WHERE id = (SELECT MAX(id) FROM syncs WHERE app = ?1 AND revision = ?2)",
                params![app, revision, health, detail],
            )
            .map(|_| ())
            .map_err(db_err)
    }

    /// Syncs, newest first, of one application or all.
    pub fn syncs(&self, app: Option<&str>, limit: usize) -> Result<Vec<SyncRecord>, Error> {
        let mut stmt = self
            .db
            .prepare("SELECT app, revision, at, applied, pruned, health, detail FROM syncs WHERE (?1 IS NULL OR app = ?1) ORDER BY id DESC LIMIT ?2")
            .map_err(db_err)?;
        let rows = stmt
            .query_map(
                params![app, i64::try_from(limit).unwrap_or(i64::MAX)],
                |r| {
                    Ok(SyncRecord {
                        app: r.get(0)?,
                        revision: r.get(1)?,
                        at: r.get(2)?,
                        applied: r.get(3)?,
                        pruned: r.get(4)?,
                        health: r.get(5)?,
                        detail: r.get(6)?,
                    })
                },
            )
            .map_err(db_err)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(db_err)
    }

    /// The value driftwatch last wrote for `image` of `app` (`tag` or `tag@digest`), if any:
    /// what a rollback by someone else is measured against.
    pub fn last_written(&self, app: &str, image: &str) -> Result<Option<String>, Error> {
        let mut stmt = self
            .db
            .prepare(
                "SELECT new FROM updates WHERE app = ?1 AND image = ?2 ORDER BY id DESC LIMIT 1",
            )
            .map_err(db_err)?;
        let mut rows = stmt.query(params![app, image]).map_err(db_err)?;
        match rows.next().map_err(db_err)? {
            Some(r) => Ok(Some(r.get(0).map_err(db_err)?)),
            None => Ok(None),
        }
    }

    /// What driftwatch last wrote for every image, by (app, image): one query for a whole
    /// cycle, where [`Store::last_written`] per image would be one per tracked image.
    pub fn last_written_all(
        &self,
    ) -> Result<std::collections::HashMap<(String, String), String>, Error> {
        let mut stmt = self
            .db
            .prepare(
                "SELECT app, image, new FROM updates
                 WHERE id IN (SELECT MAX(id) FROM updates GROUP BY app, image)",
            )
            .map_err(db_err)?;
        let rows = stmt
            .query_map([], |r| Ok(((r.get(0)?, r.get(1)?), r.get(2)?)))
            .map_err(db_err)?;
        rows.collect::<Result<_, _>>().map_err(db_err)
    }

    /// Lifts the hold on `image` of `app` that a rollback from `held_from` put there, recording
    /// who did it and when (`driftwatch release`).
    pub fn release(
        &mut self,
        app: &str,
        image: &str,
        held_from: &str,
        by: &str,
        at: &str,
    ) -> Result<(), Error> {
        self.db
            .execute(
                "INSERT INTO releases (app, image, held_from, by, at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![app, image, held_from, by, at],
            )
            .map_err(db_err)?;
        Ok(())
    }

    /// The remembered evaluations of `mode`.
    pub fn memos(&self, mode: &str) -> Result<Vec<MemoRow>, Error> {
        let mut stmt = self
            .db
            .prepare("SELECT repo, branch, fingerprint, results FROM memo WHERE mode = ?1")
            .map_err(db_err)?;
        let rows = stmt
            .query_map(params![mode], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .map_err(db_err)?;
        rows.collect::<Result<_, _>>().map_err(db_err)
    }

    /// Remembers the evaluations of repositories and branches in `mode` (each replacing the
    /// last one), or forgets them (`None`), in one transaction.
    pub fn set_memos(&mut self, mode: &str, memos: &[MemoWrite]) -> Result<(), Error> {
        if memos.is_empty() {
            return Ok(());
        }
        let tx = self.db.transaction().map_err(db_err)?;
        {
            let mut set = tx
                .prepare_cached(
                    "INSERT INTO memo (repo, branch, mode, fingerprint, results) VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (repo, branch, mode) DO UPDATE SET fingerprint = ?4, results = ?5",
                )
                .map_err(db_err)?;
            let mut forget = tx
                .prepare_cached("DELETE FROM memo WHERE repo = ?1 AND branch = ?2 AND mode = ?3")
                .map_err(db_err)?;
            for ((repo, branch), memo) in memos {
                match memo {
                    Some((fingerprint, results)) => {
                        set.execute(params![repo, branch, mode, fingerprint, results])
                    }
                    None => forget.execute(params![repo, branch, mode]),
                }
                .map_err(db_err)?;
            }
        }
        tx.commit().map_err(db_err)
    }

    /// Counts one more cycle of `mode` and returns how many came before it: what decides,
    /// across processes, when the next full pass is due.
    pub fn next_cycle(&mut self, mode: &str) -> Result<u64, Error> {
        let key = format!("cycles:{mode}");
        let tx = self.db.transaction().map_err(db_err)?;
        let n: i64 = tx
            .query_row("SELECT value FROM meta WHERE key = ?1", params![key], |r| {
                r.get(0)
            })
            .optional()
            .map_err(db_err)?
            .unwrap_or(0);
        tx.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET value = ?2",
            params![key, n.saturating_add(1)],
        )
        .map_err(db_err)?;
        tx.commit().map_err(db_err)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Every lifted hold, as (app, image, held from): one query for a whole cycle, where
    /// [`Store::released`] per image would be one per image with history.
    pub fn released_all(
        &self,
    ) -> Result<std::collections::HashSet<(String, String, String)>, Error> {
        let mut stmt = self
            .db
            .prepare("SELECT DISTINCT app, image, held_from FROM releases")
            .map_err(db_err)?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(db_err)?;
        rows.collect::<Result<_, _>>().map_err(db_err)
    }

    /// Whether the hold on `image` of `app` from `held_from` was lifted.
    pub fn released(&self, app: &str, image: &str, held_from: &str) -> Result<bool, Error> {
        self.db
            .query_row(
                "SELECT COUNT(*) FROM releases WHERE app = ?1 AND image = ?2 AND held_from = ?3",
                params![app, image, held_from],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n > 0)
            .map_err(db_err)
    }

    /// Notes that `value` of `image` of `app` waits for an approval (since `at`, kept while
    /// the same value waits).
    pub fn set_pending(
        &mut self,
        app: &str,
        image: &str,
        value: &str,
        at: &str,
    ) -> Result<(), Error> {
        self.db
            .execute(
                "INSERT INTO pending (app, image, value, since) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (app, image) DO UPDATE SET value = ?3,
                   since = CASE WHEN pending.value = ?3 THEN pending.since ELSE ?4 END",
                params![app, image, value, at],
            )
            .map_err(db_err)?;
        Ok(())
    }

    /// The updates waiting for an approval, of one application or all: (app, image, value,
    /// since).
    pub fn pending(
        &self,
        app: Option<&str>,
    ) -> Result<Vec<(String, String, String, String)>, Error> {
        let mut stmt = self
            .db
            .prepare(
                "SELECT app, image, value, since FROM pending WHERE (?1 IS NULL OR app = ?1)
                 ORDER BY app, image",
            )
            .map_err(db_err)?;
        let rows = stmt
            .query_map(params![app], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .map_err(db_err)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(db_err)
    }

    /// Since when application `upstream` has run `image` (its name, without tag) Synced and
    /// Healthy, as last observed: the start of a promotion's soak, kept across restarts.
    pub fn soaking(
        &self,
        upstream: &str,
        image: &str,
    ) -> Result<Option<crate::promote::Soaking>, Error> {
        let row: Option<(String, String)> = self
            .db
            .query_row(
                "SELECT value, since_nanos FROM soaks WHERE upstream = ?1 AND image = ?2",
                params![upstream, image],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map(Some)
            .or_else(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => Ok(None),
                e => Err(e),
            })
            .map_err(db_err)?;
        Ok(row.and_then(|(value, since)| {
            Some(crate::promote::Soaking {
                value,
                since: since.parse().ok()?,
            })
        }))
    }

    /// Keeps (or, with `None`, forgets) the soak record of `image` run by `upstream`.
    pub fn set_soaking(
        &mut self,
        upstream: &str,
        image: &str,
        soaking: Option<&crate::promote::Soaking>,
    ) -> Result<(), Error> {
        match soaking {
            Some(s) => self.db.execute(
                "INSERT INTO soaks (upstream, image, value, since_nanos) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (upstream, image) DO UPDATE SET value = ?3, since_nanos = ?4",
                params![upstream, image, s.value, s.since.to_string()],
            ),
            None => self.db.execute(
                "DELETE FROM soaks WHERE upstream = ?1 AND image = ?2",
                params![upstream, image],
            ),
        }
        .map_err(db_err)?;
        Ok(())
    }

    /// Forgets what waited for `image` of `app` (it was written, or nothing waits any more).
    pub fn clear_pending(&mut self, app: &str, image: &str) -> Result<(), Error> {
        self.db
            .execute(
                "DELETE FROM pending WHERE app = ?1 AND image = ?2",
                params![app, image],
            )
            .map_err(db_err)?;
        Ok(())
    }

    /// Records that `value` of `image` of `app` was approved (or rejected) by `by` at `at`.
    pub fn decide(
        &mut self,
        app: &str,
        image: &str,
        value: &str,
        approved: bool,
        by: &str,
        at: &str,
    ) -> Result<(), Error> {
        self.db
            .execute(
                "INSERT INTO decisions (app, image, value, approved, by, at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![app, image, value, i64::from(approved), by, at],
            )
            .map_err(db_err)?;
        Ok(())
    }

    /// The latest decision on `value` of `image` of `app`: approved or not, and by whom.
    pub fn decision(
        &self,
        app: &str,
        image: &str,
        value: &str,
    ) -> Result<Option<(bool, String)>, Error> {
        let mut stmt = self
            .db
            .prepare(
                "SELECT approved, by FROM decisions WHERE app = ?1 AND image = ?2 AND value = ?3
                 ORDER BY id DESC LIMIT 1",
            )
            .map_err(db_err)?;
        let mut rows = stmt.query(params![app, image, value]).map_err(db_err)?;
        match rows.next().map_err(db_err)? {
            Some(r) => Ok(Some((
                r.get::<_, i64>(0).map_err(db_err)? != 0,
                r.get(1).map_err(db_err)?,
            ))),
            None => Ok(None),
        }
    }

    /// Approvals, rejections and released holds, newest first, of one application or all:
    /// what the status page's timeline shows of them (who and when).
    pub fn decisions(&self, app: Option<&str>, limit: usize) -> Result<Vec<Decision>, Error> {
        let mut stmt = self
            .db
            .prepare(
                "SELECT app, image, value, CASE approved WHEN 0 THEN 'rejected' ELSE 'approved' END,
                        by, at FROM decisions WHERE (?1 IS NULL OR app = ?1)
                 UNION ALL
                 SELECT app, image, held_from, 'released', by, at FROM releases
                 WHERE (?1 IS NULL OR app = ?1)
                 ORDER BY 6 DESC LIMIT ?2",
            )
            .map_err(db_err)?;
        let rows = stmt
            .query_map(
                params![app, i64::try_from(limit).unwrap_or(i64::MAX)],
                |r| {
                    Ok(Decision {
                        app: r.get(0)?,
                        image: r.get(1)?,
                        value: r.get(2)?,
                        what: r.get(3)?,
                        by: r.get(4)?,
                        at: r.get(5)?,
                    })
                },
            )
            .map_err(db_err)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(db_err)
    }

    /// Updates, newest first, of one application or all.
    pub fn history(&self, app: Option<&str>, limit: usize) -> Result<Vec<Update>, Error> {
        self.select_updates(
            "SELECT app, image, old, new, commit_id, repo, branch, seen_at, decided_at, committed_at
             FROM updates WHERE (?1 IS NULL OR app = ?1) ORDER BY id DESC LIMIT ?2",
            params![app, i64::try_from(limit).unwrap_or(i64::MAX)],
        )
    }

    /// Rows of `sql`, which selects the columns of an [`Update`] in its order.
    fn select_updates(&self, sql: &str, args: impl rusqlite::Params) -> Result<Vec<Update>, Error> {
        let mut stmt = self.db.prepare(sql).map_err(db_err)?;
        let rows = stmt
            .query_map(args, |r| {
                Ok(Update {
                    app: r.get(0)?,
                    image: r.get(1)?,
                    old: r.get(2)?,
                    new: r.get(3)?,
                    commit: r.get(4)?,
                    repo: r.get(5)?,
                    branch: r.get(6)?,
                    seen_at: r.get(7)?,
                    decided_at: r.get(8)?,
                    committed_at: r.get(9)?,
                })
            })
            .map_err(db_err)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(db_err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_soak_record_survives_reopening_and_is_forgotten_on_request() {
        let dir = std::env::temp_dir().join(format!("dw-store-soak-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut store = Store::open(&dir).unwrap();
        assert_eq!(store.soaking("staging", "reg/web").unwrap(), None);
        let s = crate::promote::Soaking {
            value: "v1@sha256:aa".into(),
            since: 1_764_000_000_123_456_789,
        };
        store.set_soaking("staging", "reg/web", Some(&s)).unwrap();
        drop(store);
        let mut store = Store::open(&dir).unwrap();
        assert_eq!(store.soaking("staging", "reg/web").unwrap(), Some(s));
        assert_eq!(store.soaking("dev", "reg/web").unwrap(), None);
        store.set_soaking("staging", "reg/web", None).unwrap();
        assert_eq!(store.soaking("staging", "reg/web").unwrap(), None);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn decisions_and_releases_are_listed_newest_first() {
        let dir = std::env::temp_dir().join(format!("dw-store-dec-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut store = Store::open(&dir).unwrap();
        store
            .decide("shop", "reg/web", "v2", true, "ann", "2026-11-01T10:00:00Z")
            .unwrap();
        store
            .release("shop", "reg/api", "v3", "bob", "2026-11-01T11:00:00Z")
            .unwrap();
        store
            .decide("shop", "reg/web", "v4", false, "cy", "2026-11-01T12:00:00Z")
            .unwrap();
        store
            .decide(
                "other",
                "reg/web",
                "v9",
                true,
                "dee",
                "2026-11-01T13:00:00Z",
            )
            .unwrap();
        let got: Vec<(String, String, String)> = store
            .decisions(Some("shop"), 10)
            .unwrap()
            .into_iter()
            .map(|d| (d.what, d.value, d.by))
            .collect();
        let want = [
            ("rejected", "v4", "cy"),
            ("released", "v3", "bob"),
            ("approved", "v2", "ann"),
        ]
        .map(|(a, b, c)| (a.to_owned(), b.to_owned(), c.to_owned()));
        assert_eq!(got, want);
        assert_eq!(store.decisions(None, 2).unwrap().len(), 2);
        assert_eq!(store.decisions(None, 10).unwrap()[0].app, "other");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn records_and_reads_back() {
        let dir = std::env::temp_dir().join(format!("dw-store-{}", std::process::id()));
        let mut store = Store::open(&dir).unwrap();
        let u = |app: &str, new: &str| Update {
            app: app.into(),
            image: "backend".into(),
            old: "v1".into(),
            new: new.into(),
            commit: "abc".into(),
            repo: "r".into(),
            branch: "main".into(),
            seen_at: "2026-11-25T10:00:00Z".into(),
            decided_at: "2026-11-25T10:00:01Z".into(),
            committed_at: "2026-11-25T10:00:02Z".into(),
        };
        store.record(&[u("a", "v2"), u("b", "v3")]).unwrap();
        store.record(&[u("a", "v4")]).unwrap();
        let all = Store::open(&dir).unwrap().history(None, 10).unwrap();
        assert_eq!(
            all.iter().map(|x| x.new.as_str()).collect::<Vec<_>>(),
            ["v4", "v3", "v2"]
        );
        assert_eq!(store.history(Some("a"), 10).unwrap().len(), 2);

        let d = driftwatch_policy::Digest::parse(&format!("sha256:{}", "ab".repeat(32))).unwrap();
        let meta = driftwatch_registry::DigestMeta {
            created: Some(driftwatch_policy::Timestamp::parse("2026-11-25T10:00:00.5Z").unwrap()),
            platforms: driftwatch_policy::Platform::parse_list("linux/amd64,linux/arm/v7").unwrap(),
        };
        store
            .save_digest_meta(&[(d.clone(), meta.clone())])
            .unwrap();
        store
            .save_digest_meta(&[(d.clone(), meta.clone())])
            .unwrap();
        assert_eq!(
            Store::open(&dir).unwrap().load_digest_meta().unwrap(),
            vec![(d, meta)]
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
