//! What makes an update wait. **Rollbacks that stick**: when someone else sets an image back from the value driftwatch last
//! wrote (a revert commit, `driftwatch rollback`, an edit by hand), driftwatch holds that image —
//! it writes neither the value rolled back from nor anything older — until a newer version
//! appears or `driftwatch release APP IMAGE` lifts the hold. Without this, the next cycle writes
//! the bad version straight back (argocd-image-updater #1249). **Approvals**: an image with
//! `approval: required` writes a new version only once `driftwatch approve` said yes to that
//! very version; a rejected one is not proposed again. Pure: the caller reads Git, the history,
//! the releases and the decisions.

use driftwatch_policy::Version;

/// What decides a hold for one image.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HoldInput {
    /// The value driftwatch last wrote (`tag` or `tag@digest`), from its history.
    pub last_written: Option<String>,
    /// Whether a hold from that value was released.
    pub released: bool,
    /// Updates wait for an approval.
    pub approval_required: bool,
    /// The decision on the value to write, if any: approved or not, and by whom.
    pub decision: Option<(bool, String)>,
    /// Outside every update window: when the next one opens.
    pub window_closed: Option<String>,
}

/// Why an update waits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Wait {
    /// Someone set the image back: see [`Hold`].
    Rollback(Hold),
    /// `approval: required` and nobody approved this value yet.
    Pending {
        /// The value waiting.
        value: String,
    },
    /// Outside the update windows.
    Window {
        /// When the next one opens.
        why: String,
    },
    /// This value was rejected.
    Rejected {
        /// The value rejected.
        value: String,
        /// Who rejected it.
        by: String,
    },
}

impl Wait {
    /// The sentence shown for it; `by` as for [`Hold::describe`].
    pub fn describe(&self, by: Option<(&str, &str)>) -> String {
        match self {
            Wait::Rollback(h) => h.describe(by),
            Wait::Pending { value } => format!(
                "pending approval of {value}: `driftwatch approve` writes it, `driftwatch reject` refuses it"
            ),
            Wait::Window { why } => why.clone(),
            Wait::Rejected { value, by } => {
                format!("held: {value} was rejected by {by}; a newer version will be proposed")
            }
        }
    }
}

/// Why writing `desired` over Git's `git_now` must wait, if it must: a rollback that holds the
/// image ([`held`]) first, then an approval not given (or refused) for `desired`.
pub fn wait(input: &HoldInput, git_now: Option<&str>, desired: &str) -> Option<Wait> {
    if let Some(h) = held(input, git_now, desired) {
        return Some(Wait::Rollback(h));
    }
    if let Some(why) = &input.window_closed {
        return Some(Wait::Window { why: why.clone() });
    }
    if !input.approval_required {
        return None;
    }
    match &input.decision {
        Some((true, _)) => None,
        Some((false, by)) => Some(Wait::Rejected {
            value: desired.to_owned(),
            by: by.clone(),
        }),
        None => Some(Wait::Pending {
            value: desired.to_owned(),
        }),
    }
}

/// A `tag@digest` value's tag.
fn tag_of(value: &str) -> &str {
    value.split_once('@').map_or(value, |(t, _)| t)
}

/// Whether two written values name the same image version: equal, or the same tag where one
/// of them carries no digest.
fn same(a: &str, b: &str) -> bool {
    a == b || ((!a.contains('@') || !b.contains('@')) && tag_of(a) == tag_of(b))
}

/// Whether `candidate` is newer than `held_from`: by semantic version when both tags are
/// versions; otherwise any other value is newer, since the policy that once chose `held_from`
/// now prefers it (a newer build, a moved digest).
fn newer(candidate: &str, held_from: &str) -> bool {
    match (
        Version::parse_quiet(tag_of(candidate)),
        Version::parse_quiet(tag_of(held_from)),
    ) {
        (Some(c), Some(h)) => c.precedence(&h) == std::cmp::Ordering::Greater,
        _ => !same(candidate, held_from),
    }
}

/// A rollback that holds an image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hold {
    /// The value driftwatch had written.
    pub from: String,
    /// The value someone set it back to.
    pub to: String,
}

impl Hold {
    /// The sentence `check`, `/status` and the page show; `by` is the commit that set it back
    /// and its author, when known.
    pub fn describe(&self, by: Option<(&str, &str)>) -> String {
        let who = by.map_or(String::new(), |(id, author)| {
            format!(" in {id} by {author}")
        });
        format!(
            "held: set back from {} to {}{who}; nothing up to {} is written until a newer version \
             appears or `driftwatch release` lifts the hold",
            self.from, self.to, self.from
        )
    }
}

/// The rollback that writing `desired` over Git's `git_now` would undo, if it would: Git no
/// longer holds what driftwatch last wrote, and `desired` is not newer than that. `None`: write
/// as usual.
pub fn held(input: &HoldInput, git_now: Option<&str>, desired: &str) -> Option<Hold> {
    let from = input.last_written.as_deref()?;
    let now = git_now?;
    if input.released || same(now, from) || same(now, desired) || newer(desired, from) {
        return None;
    }
    Some(Hold {
        from: from.to_owned(),
        to: now.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(last: &str) -> HoldInput {
        HoldInput {
            last_written: Some(last.to_owned()),
            ..HoldInput::default()
        }
    }

    #[test]
    fn an_update_that_needs_approval_waits_for_it_and_a_rejection_sticks() {
        let mut i = HoldInput {
            approval_required: true,
            ..HoldInput::default()
        };
        assert_eq!(
            wait(&i, Some("v1.0.0"), "v1.1.0"),
            Some(Wait::Pending {
                value: "v1.1.0".into()
            })
        );
        i.decision = Some((true, "ann".into()));
        assert_eq!(wait(&i, Some("v1.0.0"), "v1.1.0"), None);
        i.decision = Some((false, "bob".into()));
        let w = wait(&i, Some("v1.0.0"), "v1.1.0").unwrap();
        assert!(w.describe(None).contains("rejected by bob"), "{w:?}");
        // A rollback hold comes first, approved or not.
        let rolled = HoldInput {
            last_written: Some("v1.1.0".into()),
            decision: Some((true, "ann".into())),
            ..i
        };
        assert!(matches!(
            wait(&rolled, Some("v1.0.0"), "v1.1.0"),
            Some(Wait::Rollback(_))
        ));
        // Without approvals, nothing waits.
        assert_eq!(wait(&HoldInput::default(), Some("v1"), "v2"), None);
    }

    #[test]
    fn a_rollback_holds_until_something_newer_appears_or_it_is_released() {
        let i = input("v1.1.0");
        // Someone set it back: the same version, or an older one, is not written again.
        let hold = held(&i, Some("v1.0.0"), "v1.1.0").unwrap();
        assert_eq!(
            hold,
            Hold {
                from: "v1.1.0".into(),
                to: "v1.0.0".into()
            }
        );
        let why = hold.describe(Some(("7cd029c", "Ann")));
        assert!(
            why.starts_with("held: set back from v1.1.0 to v1.0.0 in 7cd029c by Ann;"),
            "{why}"
        );
        // A version newer than the rolled-back-from one goes through.
        assert_eq!(held(&i, Some("v1.0.0"), "v1.1.1"), None);
        assert_eq!(held(&i, Some("v1.0.0"), "v2.0.0"), None);
        // Released: written as usual.
        let released = HoldInput {
            released: true,
            ..i.clone()
        };
        assert_eq!(held(&released, Some("v1.0.0"), "v1.1.0"), None);
    }

    #[test]
    fn no_hold_without_a_rollback() {
        // Git still says what driftwatch wrote: an ordinary update.
        assert_eq!(held(&input("v1.1.0"), Some("v1.1.0"), "v1.2.0"), None);
        // Nothing written before, or nothing in Git.
        assert_eq!(held(&HoldInput::default(), Some("v1.0.0"), "v1.1.0"), None);
        assert_eq!(held(&input("v1.1.0"), None, "v1.1.0"), None);
        // Git already says the desired value.
        assert_eq!(held(&input("v1.1.0"), Some("v1.2.0"), "v1.2.0"), None);
        // A digest written, the tag alone in Git: the same version.
        assert_eq!(
            held(&input("v1.1.0@sha256:aa"), Some("v1.1.0"), "v1.2.0"),
            None
        );
    }

    #[test]
    fn without_versions_any_other_choice_is_newer() {
        let i = input("latest@sha256:aaaa");
        assert!(held(&i, Some("latest@sha256:0000"), "latest@sha256:aaaa").is_some());
        assert_eq!(
            held(&i, Some("latest@sha256:0000"), "latest@sha256:bbbb"),
            None
        );
        let b = input("build-20261101");
        assert!(held(&b, Some("build-20261001"), "build-20261101").is_some());
        assert_eq!(held(&b, Some("build-20261001"), "build-20261201"), None);
    }
}
