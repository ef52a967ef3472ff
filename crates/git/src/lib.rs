//! Git write-back: persistent bare mirrors (fetch, never re-clone), one commit per repository
//! and branch built without a work tree, and push with fetch-reapply-retry on a moving branch.
//!
//! The backend is the `git` command line: it speaks every transport (file, git, smart HTTP, SSH)
//! and signs with gpg or SSH keys exactly as users' own git does.

mod auth;
mod confine;
mod error;
mod mirror;
mod objects;
mod refs;
mod template;
mod webhook;

pub use auth::{Auth, Secret, redact_url};
pub use confine::{MAX_FOLLOWS, check_links, normalize};
pub use error::{Error, TransportCause};
pub use mirror::{FileWrite, Identity, Mirror, Outcome, Plan, Signing, Snapshot, UpdateRequest};
pub use template::{
    BranchSpec, Change, DEFAULT_COMMIT_TEMPLATE, branch_name, changes_sha256, commit_message,
    render_json, valid_branch,
};
pub use webhook::{GitPush, WebhookError, parse_git_push, repo_identity};
