//! Rolling an application back through Git: one new commit that returns the application's path
//! to an earlier revision (files changed back, added ones removed, removed ones restored). The
//! next sync applies it, like any other commit — so a rollback is reviewed, audited and kept.

use std::path::Path;

use driftwatch_engine::App;
use driftwatch_git::{BranchSpec, FileWrite, Mirror, Outcome, Plan, UpdateRequest};

use crate::error::Error;

/// Commits `app`'s path as it was at `rev` onto its branch, and pushes it.
pub fn rollback(state: &Path, app: &App, rev: &str) -> Result<Outcome, Error> {
    let mirror = Mirror::open(state, &app.repo, app.auth.clone())?;
    let spec = BranchSpec::parse(&app.branch, "main");
    let base = mirror.resolve_branch(&spec.base)?;
    mirror.fetch(&[&base])?;
    let path = crate::revision::app_path(app)?;
    let at_rev = mirror.list(rev, &path)?;
    let request = UpdateRequest {
        base,
        identity: app.identity.clone(),
        max_attempts: 8,
    };
    let short: String = rev.chars().take(12).collect();
    // Every file at `rev` through one batch reader, however many attempts the push takes.
    let old = mirror.snapshot(rev);
    let outcome = mirror.update(&request, |snap| {
        let at_head = mirror.list(snap.commit(), &path)?;
        let mut writes = Vec::new();
        for f in &at_rev {
            let content = old.read(f)?.unwrap_or_default();
            // Only what differs is written: an unchanged file (or symlink, whose blob is its
            // target) needs no write, and a write to a symlink is refused by the commit.
            if snap.read(f).ok().flatten().as_deref() == Some(content.as_slice()) {
                continue;
            }
            writes.push(FileWrite {
                path: f.clone(),
                content,
            });
        }
        let deletes = at_head
            .into_iter()
            .filter(|f| !at_rev.contains(f))
            .collect();
        Ok(Plan {
            writes,
            message: format!(
                "rollback: {} to {short}\n\nRestores {} as of {rev}.\n",
                app.name,
                if path.is_empty() {
                    "the repository"
                } else {
                    &path
                },
            ),
            target: None,
            deletes,
        })
    })?;
    Ok(outcome)
}
