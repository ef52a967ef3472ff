//! `driftwatch write-back`: several image edits in one repository, as one commit, pushed with
//! fetch-reapply-retry — the updater's Git step on its own, for scripts and CI.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, anyhow, bail};
use driftwatch_git::{
    Auth, BranchSpec, Change, DEFAULT_COMMIT_TEMPLATE, FileWrite, Identity, Mirror, Outcome, Plan,
    Secret, Signing, UpdateRequest, branch_name, commit_message,
};
use driftwatch_manifest::{ImageChange, Target, previous_tag, set_image};

use super::set_image::parse_change;
use crate::exit::CmdResult;

/// `write-back` arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The Git repository (file://, git://, https://, ssh://).
    #[arg(long)]
    pub repo: String,
    /// The branch to update, or `base:target` to push to another branch (the target may be a
    /// template such as `image-updates-{{.SHA256}}`).
    #[arg(long, default_value = "main")]
    pub branch: String,
    /// Where mirrors are kept between runs.
    #[arg(long, env = "DRIFTWATCH_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Application name for the commit message template (`.AppName`).
    #[arg(long, default_value = "driftwatch")]
    pub app: String,
    /// A file holding a Go text/template commit message (argocd-image-updater's variables).
    #[arg(long, value_name = "FILE")]
    pub message_template: Option<PathBuf>,
    /// Commit author and committer name.
    #[arg(long, default_value = "driftwatch")]
    pub author_name: String,
    /// Commit author and committer email.
    #[arg(long, default_value = "noreply@driftwatch.invalid")]
    pub author_email: String,
    /// Add a Signed-off-by trailer.
    #[arg(long)]
    pub signoff: bool,
    /// Sign with this gpg key id.
    #[arg(long, value_name = "KEYID", conflicts_with = "ssh_signing_key")]
    pub gpg_key: Option<String>,
    /// Sign with this SSH key.
    #[arg(long, value_name = "PATH")]
    pub ssh_signing_key: Option<PathBuf>,
    /// HTTPS credentials: an environment variable holding `user:password` or `user:token`.
    #[arg(long, value_name = "VAR")]
    pub credentials_env: Option<String>,
    /// SSH private key for ssh:// remotes.
    #[arg(long, value_name = "PATH")]
    pub ssh_key: Option<PathBuf>,
    /// known_hosts for ssh:// remotes (host keys are always checked).
    #[arg(long, value_name = "PATH")]
    pub known_hosts: Option<PathBuf>,
    /// A file of edits, one per line: `PATH IMAGE TAG[@DIGEST] [--helm-path P]
    /// [--helm-name-path P] [--policy NS:NAME]`; `-` reads stdin.
    #[arg(long, value_name = "FILE")]
    pub edits: Option<PathBuf>,
    /// Edits on the command line, each `PATH IMAGE TAG…` as one argument.
    pub edit: Vec<String>,
}

struct Edit {
    path: String,
    change: ImageChange,
    target: Target,
}

fn parse_edit(line: &str, origin: &str) -> anyhow::Result<Edit> {
    let words: Vec<&str> = line.split_whitespace().collect();
    if words.len() < 3 {
        bail!("{origin}: expected PATH IMAGE TAG, got {line:?}");
    }
    let change = parse_change(words[1], words[2]).with_context(|| origin.to_owned())?;
    let mut target = Target::default();
    let mut rest = words[3..].iter();
    while let Some(flag) = rest.next() {
        let value = rest
            .next()
            .ok_or_else(|| anyhow!("{origin}: {flag} needs a value"))?
            .to_string();
        match *flag {
            "--helm-path" => target.helm_path = Some(value),
            "--helm-name-path" => target.helm_name_path = Some(value),
            "--policy" => target.flux_policy = Some(value),
            other => bail!("{origin}: unknown option {other:?}"),
        }
    }
    Ok(Edit {
        path: words[0].trim_start_matches("./").to_owned(),
        change,
        target,
    })
}

fn default_state_dir() -> PathBuf {
    match std::env::var_os("XDG_STATE_HOME") {
        Some(d) => PathBuf::from(d).join("driftwatch"),
        None => std::env::var_os("HOME").map_or_else(
            || PathBuf::from(".driftwatch"),
            |h| PathBuf::from(h).join(".local/state/driftwatch"),
        ),
    }
}

/// Applies every edit to the branch head and pushes one commit.
pub fn run(args: &Args) -> CmdResult {
    let mut edits = Vec::new();
    if let Some(file) = &args.edits {
        let text = if file.as_os_str() == "-" {
            std::io::read_to_string(std::io::stdin()).context("reading stdin")?
        } else {
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?
        };
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            edits.push(parse_edit(line, &format!("{}:{}", file.display(), n + 1))?);
        }
    }
    for (i, e) in args.edit.iter().enumerate() {
        edits.push(parse_edit(e, &format!("edit {}", i + 1))?);
    }
    if edits.is_empty() {
        return Err(anyhow!("no edits: give --edits FILE or PATH IMAGE TAG arguments").into());
    }
    let auth = match (&args.credentials_env, &args.ssh_key) {
        (Some(var), _) => {
            let value = std::env::var(var)
                .with_context(|| format!("--credentials-env: {var} is not set"))?;
            let (user, pass) = value
                .split_once(':')
                .ok_or_else(|| anyhow!("--credentials-env: {var} must hold user:password"))?;
            Auth::Basic {
                username: user.to_owned(),
                password: Secret::new(pass),
            }
        }
        (None, Some(key)) => Auth::SshKey {
            key: key.clone(),
            known_hosts: args.known_hosts.clone(),
        },
        (None, None) => Auth::None,
    };
    let template = match &args.message_template {
        Some(p) => {
            std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?
        }
        None => DEFAULT_COMMIT_TEMPLATE.to_owned(),
    };
    let state = args.state_dir.clone().unwrap_or_else(default_state_dir);
    let mirror = Mirror::open(&state, &args.repo, auth)?;
    let spec = BranchSpec::parse(&args.branch, "main");

    // Group edits per file; each file is re-read from the head on every attempt.
    let mut by_file: BTreeMap<String, Vec<&Edit>> = BTreeMap::new();
    for e in &edits {
        by_file.entry(e.path.clone()).or_default().push(e);
    }
    let identity = Identity {
        name: args.author_name.clone(),
        email: args.author_email.clone(),
        signing: match (&args.gpg_key, &args.ssh_signing_key) {
            (Some(k), _) => Some(Signing::Gpg {
                key: Some(k.clone()),
                home: None,
            }),
            (None, Some(k)) => Some(Signing::Ssh { key: k.clone() }),
            _ => None,
        },
        signoff: args.signoff,
    };
    let request = UpdateRequest {
        base: spec.base.clone(),
        identity,
        max_attempts: 8,
    };
    let mut changes: Vec<Change> = Vec::new();
    let mut files = 0;
    let mut edit_error: Option<anyhow::Error> = None;
    // Runs on every attempt, against the head fetched for it: a retry after a race re-reads the
    // files and re-applies the edits, so another writer's commit is never overwritten.
    let outcome = mirror.update(&request, |snap| {
        let result = plan(snap, &by_file, &template, &args.app, spec.target.as_deref());
        match result {
            Ok((plan, c)) => {
                changes = c;
                files = plan.writes.len();
                Ok(plan)
            }
            Err(e) => {
                let msg = format!("{e:#}");
                edit_error = Some(e);
                Err(driftwatch_git::Error::Edit(msg))
            }
        }
    });
    let outcome = match (outcome, edit_error) {
        (Err(_), Some(e)) => return Err(e.into()),
        (r, _) => r?,
    };
    match outcome {
        Outcome::Unchanged => {}
        Outcome::Pushed {
            commit,
            branch,
            attempts,
        } => println!(
            "pushed {commit} to {branch}: {} image change(s) in {} file(s){}",
            changes.len(),
            files,
            if attempts > 1 {
                format!(", after {attempts} attempts")
            } else {
                String::new()
            }
        ),
    }
    Ok(())
}

/// The commit for one attempt: every file's edits applied to its content at `snap`, the message
/// rendered from what changed, and the write branch when there is one.
fn plan(
    snap: &driftwatch_git::Snapshot<'_>,
    by_file: &BTreeMap<String, Vec<&Edit>>,
    template: &str,
    app: &str,
    target: Option<&str>,
) -> anyhow::Result<(Plan, Vec<Change>)> {
    let mut changes = Vec::new();
    let mut writes = Vec::new();
    for (path, file_edits) in by_file {
        let mut text = match snap.read(path)? {
            Some(bytes) => {
                String::from_utf8(bytes).map_err(|_| anyhow!("{path}: not valid UTF-8"))?
            }
            None => String::new(),
        };
        let mut changed = false;
        for e in file_edits {
            let out = set_image(&text, path, &e.target, &e.change)?;
            if out.changed {
                changes.push(Change {
                    image: e.change.image.clone(),
                    alias: String::new(),
                    old_tag: previous_tag(&out, &e.change.image).unwrap_or_default(),
                    new_tag: e.change.tag_value().unwrap_or_default(),
                });
                text = out.text;
                changed = true;
            }
        }
        if changed {
            writes.push(FileWrite {
                path: path.clone(),
                content: text.into_bytes(),
            });
        }
    }
    if writes.is_empty() {
        return Ok((Plan::default(), changes));
    }
    let message = commit_message(template, app, &changes)?;
    let target = target
        .map(|t| branch_name(t, "", app, &changes))
        .transpose()?;
    Ok((
        Plan {
            writes,
            message,
            target,
            deletes: Vec::new(),
        },
        changes,
    ))
}
