//! Where `driftwatch.yaml`'s `notifications:` send messages, and on what: plain data, validated
//! at load so a typo in a trigger or a URL is an error naming the key, not a silent no-op.

use driftwatch_git::Secret;
use driftwatch_policy::star_match;
use serde::Deserialize;

/// What a notification is sent on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Trigger {
    /// An image update was committed and pushed.
    Committed,
    /// A revision was applied to the cluster.
    Synced,
    /// Rendering or applying failed.
    SyncFailed,
    /// A detect-only application differs from Git.
    OutOfSync,
    /// A rollout settled Degraded (or stopped progressing).
    Degraded,
    /// A manual change was put back.
    Healed,
    /// A manual change was seen and left (self-heal off).
    Drifted,
    /// Healing stopped: another writer keeps changing an object.
    Fight,
    /// Putting a change back failed.
    HealFailed,
    /// Objects left Git and stay in the cluster because prune is off.
    RequiresPruning,
}

impl Trigger {
    /// Every trigger with its name in `on:`.
    pub const ALL: [(Trigger, &'static str); 10] = [
        (Trigger::Committed, "committed"),
        (Trigger::Synced, "synced"),
        (Trigger::SyncFailed, "sync-failed"),
        (Trigger::OutOfSync, "out-of-sync"),
        (Trigger::Degraded, "degraded"),
        (Trigger::Healed, "healed"),
        (Trigger::Drifted, "drifted"),
        (Trigger::Fight, "fight"),
        (Trigger::HealFailed, "heal-failed"),
        (Trigger::RequiresPruning, "requires-pruning"),
    ];

    /// What a notifier that names no `on:` is sent: what someone has to act on, and updates.
    pub const DEFAULT: [Trigger; 6] = [
        Trigger::Committed,
        Trigger::SyncFailed,
        Trigger::Degraded,
        Trigger::Fight,
        Trigger::HealFailed,
        Trigger::RequiresPruning,
    ];

    /// The trigger named `name` in `on:`.
    pub fn parse(name: &str) -> Option<Trigger> {
        Self::ALL.iter().find(|(_, n)| *n == name).map(|(t, _)| *t)
    }

    /// Its name in `on:` (and in messages).
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(t, _)| *t == self)
            .map_or("", |(_, n)| n)
    }
}

/// The body a notifier sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `{"trigger", "app", "text", "event"}`: for scripts and generic receivers.
    Json,
    /// `{"text"}`: Slack's incoming webhooks and the chat tools that copy them (Mattermost,
    /// Rocket.Chat, Discord's `/slack` endpoint).
    Slack,
}

/// One endpoint that is told about what driftwatch does.
#[derive(Clone, Debug)]
pub struct Notifier {
    /// Its name, in logs and metrics (the URL may hold a token and is never shown).
    pub name: String,
    /// Where messages are POSTed.
    pub url: Secret,
    /// The body's shape.
    pub format: Format,
    /// What it is sent on.
    pub on: Vec<Trigger>,
    /// Applications it is about (`*` matches any run of characters); empty: all.
    pub applications: Vec<String>,
    /// A Go text/template for the message text over the event's fields (as `/events` shows
    /// them: `.app`, `.kind`, `.revision`, `.object`…); without one, a sentence per trigger.
    pub template: Option<String>,
}

impl Notifier {
    /// Whether `trigger` for application `app` is sent to this endpoint.
    pub fn wants(&self, trigger: Trigger, app: &str) -> bool {
        self.on.contains(&trigger)
            && (self.applications.is_empty()
                || self.applications.iter().any(|p| star_match(p, app)))
    }
}

/// `notifications[i]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct RawNotifier {
    name: String,
    url: Option<String>,
    url_env: Option<String>,
    #[serde(default)]
    format: Option<String>,
    #[serde(default)]
    on: Option<Vec<String>>,
    #[serde(default)]
    applications: Vec<String>,
    template: Option<String>,
}

impl RawNotifier {
    /// Validates one entry; errors are `(key, reason)` for the caller to place in its file.
    /// `env` reads the variable `urlEnv` names.
    pub(crate) fn validate(
        self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Notifier, (&'static str, String)> {
        if self.name.trim().is_empty() {
            return Err(("name", "must not be empty".to_owned()));
        }
        let url = match (self.url, self.url_env) {
            (Some(u), None) => u,
            (None, Some(var)) => env(&var).ok_or(("urlEnv", format!("{var} is not set")))?,
            _ => return Err(("url", "give url or urlEnv (not both)".to_owned())),
        };
        // The URL itself may be a credential (Slack's are): checked, never echoed.
        let well_formed = ["http://", "https://"].iter().any(|s| {
            url.get(..s.len())
                .is_some_and(|p| p.eq_ignore_ascii_case(s))
        }) && url.split("://").nth(1).is_some_and(|rest| {
            !rest.is_empty() && !rest.starts_with('/') && !rest.contains(char::is_whitespace)
        });
        if !well_formed {
            return Err(("url", "is not an http:// or https:// URL".to_owned()));
        }
        let format = match self.format.as_deref() {
            None | Some("json") => Format::Json,
            Some("slack") => Format::Slack,
            Some(other) => {
                return Err(("format", format!("{other:?} is not json or slack")));
            }
        };
        let on = match self.on {
            None => Trigger::DEFAULT.to_vec(),
            Some(names) => {
                let mut on = Vec::new();
                for n in &names {
                    let t = Trigger::parse(n).ok_or_else(|| {
                        let known: Vec<&str> = Trigger::ALL.iter().map(|(_, n)| *n).collect();
                        ("on", format!("{n:?} is not one of {}", known.join(", ")))
                    })?;
                    if !on.contains(&t) {
                        on.push(t);
                    }
                }
                if on.is_empty() {
                    return Err(("on", "names no trigger".to_owned()));
                }
                on
            }
        };
        if let Some(t) = &self.template {
            driftwatch_git::render_json(t, "notification template", &serde_json::json!({}))
                .map_err(|e| ("template", e.to_string()))?;
        }
        Ok(Notifier {
            name: self.name,
            url: Secret::new(url),
            format,
            on,
            applications: self.applications,
            template: self.template,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(yaml: &str) -> RawNotifier {
        serde_saphyr::from_str(yaml).unwrap()
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn stars_match_runs_of_characters() {
        assert!(star_match("shop-*", "shop-prod"));
        assert!(star_match("*-prod", "shop-prod"));
        assert!(star_match("s*p-*d", "shop-prod"));
        assert!(star_match("*", ""));
        assert!(star_match("shop", "shop"));
        assert!(!star_match("shop", "shop-prod"));
        assert!(!star_match("shop-*", "cart-prod"));
        assert!(!star_match("a*a", "a"));
    }

    #[test]
    fn defaults_are_json_and_what_needs_acting_on() {
        let n = raw("name: ops\nurl: https://hooks.example/x\n")
            .validate(no_env)
            .unwrap();
        assert_eq!(n.format, Format::Json);
        assert_eq!(n.on, Trigger::DEFAULT.to_vec());
        assert!(n.wants(Trigger::Committed, "any"));
        assert!(!n.wants(Trigger::Synced, "any"));
    }

    #[test]
    fn applications_and_triggers_filter() {
        let n = raw("name: ops\nurl: http://h/x\nformat: slack\non: [synced, fight, synced]\napplications: [\"shop-*\"]\n")
            .validate(no_env)
            .unwrap();
        assert_eq!(n.format, Format::Slack);
        assert_eq!(n.on, vec![Trigger::Synced, Trigger::Fight]);
        assert!(n.wants(Trigger::Synced, "shop-prod"));
        assert!(!n.wants(Trigger::Synced, "cart"));
        assert!(!n.wants(Trigger::Committed, "shop-prod"));
    }

    #[test]
    fn the_url_may_come_from_the_environment() {
        let n = raw("name: ops\nurlEnv: HOOK\n")
            .validate(|v| (v == "HOOK").then(|| "https://hooks.example/T0/secret".to_owned()))
            .unwrap();
        assert_eq!(n.url.expose(), "https://hooks.example/T0/secret");
        assert!(!format!("{n:?}").contains("secret\""));
    }

    #[test]
    fn mistakes_name_the_key_and_never_the_url() {
        let bad = |yaml: &str| raw(yaml).validate(no_env).unwrap_err();
        assert_eq!(bad("name: a\nurl: ftp://h/tok3n\n").0, "url");
        assert!(!bad("name: a\nurl: ftp://h/tok3n\n").1.contains("tok3n"));
        assert_eq!(bad("name: a\nurl: https://\n").0, "url");
        assert_eq!(bad("name: a\n").0, "url");
        assert_eq!(bad("name: a\nurl: http://h\nurlEnv: X\n").0, "url");
        assert_eq!(bad("name: a\nurlEnv: NOPE\n").0, "urlEnv");
        assert_eq!(bad("name: a\nurl: http://h\nformat: xml\n").0, "format");
        let (key, reason) = bad("name: a\nurl: http://h\non: [comitted]\n");
        assert_eq!(key, "on");
        assert!(reason.contains("committed"), "{reason}");
        assert_eq!(bad("name: a\nurl: http://h\non: []\n").0, "on");
        assert_eq!(
            bad("name: a\nurl: http://h\ntemplate: \"{{ .app \"\n").0,
            "template"
        );
        assert_eq!(bad("name: \" \"\nurl: http://h\n").0, "name");
    }
}
