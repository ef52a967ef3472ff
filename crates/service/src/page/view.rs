//! The page's HTML, as maud templates: checked when the crate compiles, and every `(value)`
//! is HTML-escaped, so an application, object or manager name can never become markup.

use maud::{DOCTYPE, Markup, html};

use super::plot::{self, Point};
use super::timeline::{Timeline, Tone, human};
use crate::state::ImageWait;

/// One application as the overview shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Row {
    /// Application.
    pub app: String,
    /// Synced, OutOfSync, Unknown; empty when Git → cluster does not cover it.
    pub sync: String,
    /// The worst health, Unknown before any report; empty without Git → cluster.
    pub health: String,
    /// Why, for the worst object, or the last error.
    pub detail: String,
    /// The revision last synced or compared.
    pub revision: String,
    /// When, RFC 3339.
    pub at: String,
    /// Objects that differ from Git; `None` without Git → cluster.
    pub drifted: Option<usize>,
    /// New revisions are applied.
    pub automated: bool,
    /// Manual changes are put back.
    pub self_heal: bool,
    /// Images tracked.
    pub images: usize,
    /// The newest update written to Git: `image:tag` and when it was committed.
    pub last_update: Option<(String, String)>,
    /// Promoted images that wait for (or are blocked by) their upstream: `image: why`.
    pub promotion: Vec<String>,
    /// Images whose update waits otherwise: a rollback hold, an approval, an update window,
    /// a release age.
    pub waits: Vec<ImageWait>,
}

/// The sync policy as the application page shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Namespace for objects that name none.
    pub namespace: String,
    /// Apply each new revision.
    pub automated: bool,
    /// Put manual changes back.
    pub self_heal: bool,
    /// Delete what Git no longer has.
    pub prune: bool,
}

/// Everything the application page shows.
#[derive(Clone, Debug, PartialEq)]
pub struct AppView {
    /// The overview's row for it.
    pub row: Row,
    /// Its images, as written in the configuration.
    pub images: Vec<String>,
    /// Its sync policy; `None` leaves the cluster alone.
    pub policy: Option<Policy>,
    /// Objects that differ from Git, with the differing field paths.
    pub out_of_sync: Vec<(String, Vec<String>)>,
    /// Updates and everything else that happened, newest first.
    pub timeline: Timeline,
    /// Push-to-commit latencies, oldest first.
    pub latencies: Vec<Point>,
    /// Whether the token actions are on (`--ui-token-env`): the buttons are shown.
    pub actions: bool,
}

/// A path segment with everything but unreserved characters percent-encoded, so any
/// application name makes a link that routes back to it.
pub fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The class that colours a status word; unknown words look muted.
fn tone_of(word: &str) -> &'static str {
    match word {
        "Synced" | "Healthy" => "ok",
        "OutOfSync" | "Progressing" | "Suspended" | "Missing" => "warn",
        "Degraded" => "bad",
        _ => "muted",
    }
}

fn tone_class(t: Tone) -> &'static str {
    match t {
        Tone::Ok => "ok",
        Tone::Warn => "warn",
        Tone::Bad => "bad",
    }
}

fn badge(word: &str) -> Markup {
    html! {
        @if word.is_empty() {
            span.badge.muted title="Git → cluster does not cover this application" { "—" }
        } @else {
            span class=(format!("badge {}", tone_of(word))) { (word) }
        }
    }
}

/// An image's last path segment, for a table cell.
fn image_name(image: &str) -> &str {
    image.rsplit('/').next().unwrap_or(image)
}

/// A wait's status word, coloured: a hold and an approval need a person, the rest time.
fn wait_badge(w: &ImageWait) -> Markup {
    let tone = if w.action.is_some() { "warn" } else { "muted" };
    html! { b class=(format!("wait {tone}")) { (w.status) } }
}

fn short(rev: &str) -> &str {
    rev.get(..12).unwrap_or(rev)
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// The page around `body`: stylesheet and script from this server only (no inline code, as the
/// Content-Security-Policy demands).
pub fn layout(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · driftwatch" }
                link rel="stylesheet" href="/assets/style.css";
                script src="/assets/app.js" defer {}
            }
            body {
                header.top {
                    a.brand href="/" { "driftwatch" }
                    span.live id="live" title="live updates" { "offline" }
                }
                main { (body) }
            }
        }
    }
}

/// A status word in the overview's table: a short `b` whose class colours it, since the
/// overview repeats it on every row (the application page keeps [`badge`]).
fn word(word: &str) -> Markup {
    html! {
        @if word.is_empty() { b.muted { "—" } } @else { b class=(tone_of(word)) { (word) } }
    }
}

/// The sync policy in a word or two: `auto+heal`, `auto` or `manual`.
fn policy_word(automated: bool, self_heal: bool) -> &'static str {
    match (automated, self_heal) {
        (true, true) => "auto+heal",
        (true, false) => "auto",
        _ => "manual",
    }
}

/// What an update wrote, short enough for a table cell: the image's last path segment and
/// the tag, with a pinned digest cut to 12 hex digits (the application page has it whole).
fn short_update(what: &str) -> String {
    let (image, value) = what.rsplit_once(':').map_or(("", what), |(i, v)| (i, v));
    // `image:tag@sha256:HEX` splits at the digest's colon: take the tag from the image side.
    let (image, value) = match image.rsplit_once('@') {
        Some((img, _)) => match img.rsplit_once(':') {
            Some((name, tag)) => (name, format!("{tag}@{}", value.get(..12).unwrap_or(value))),
            None => (img, value.to_owned()),
        },
        None => (image, value.to_owned()),
    };
    let name = image.rsplit('/').next().unwrap_or(image);
    if name.is_empty() {
        value
    } else {
        format!("{name}:{value}")
    }
}

/// The overview's table rows (also served alone, for the live refresh). A thousand of them
/// must stay light, so each row carries only its values: the columns' looks are in the
/// stylesheet (`#rows td:nth-child(N)`), the filter reads the link's text, and a time is
/// written once (RFC 3339, no `time` element repeating it).
pub fn rows(rows: &[Row]) -> Markup {
    html! {
        @if rows.is_empty() {
            tr { td colspan="8" .muted { "No applications." } }
        }
        @for r in rows {
            tr {
                td { a href=(format!("/apps/{}", segment(&r.app))) { (r.app) } }
                td { (word(&r.sync)) }
                td {
                    (word(&r.health)) @if !r.detail.is_empty() { i { (r.detail) } }
                    @for w in &r.promotion { br; span.promotion { (w) } }
                    @for w in &r.waits { br; span.waiting { (wait_badge(w)) " " (image_name(&w.image)) ": " (w.reason) } }
                }
                td { (short(&r.revision)) }
                td { (r.at) }
                td { @match r.drifted { Some(n) => (n), None => "—" } }
                td { (policy_word(r.automated, r.self_heal)) }
                td {
                    @match &r.last_update {
                        Some((what, at)) => { (short_update(what)) i { (at) } }
                        None => i { "none yet" }
                    }
                }
            }
        }
    }
}

/// The overview: every application, filtered by `q` (the filter box also filters live).
/// `follows` names the leader when this replica follows (`run --leader-elect`): it acts on
/// nothing, and says so.
pub fn overview(all: &[Row], q: &str, cluster: bool, follows: Option<&str>) -> Markup {
    let shown: Vec<Row> = all
        .iter()
        .filter(|r| q.is_empty() || r.app.to_lowercase().contains(&q.to_lowercase()))
        .cloned()
        .collect();
    let live = if q.is_empty() {
        "/ui/rows".to_owned()
    } else {
        format!("/ui/rows?q={}", segment(q))
    };
    layout(
        "Applications",
        html! {
            h1 { "Applications" }
            form.filter method="get" action="/" role="search" {
                label for="filter" { "Filter" }
                input id="filter" type="search" name="q" value=(q) placeholder="application name" autocomplete="off";
            }
            @if let Some(leader) = follows {
                p.muted { "This replica follows (leader: " (leader) "): it writes and applies nothing; the leader's page shows sync and health." }
            }
            @if !cluster {
                p.muted { "Git → cluster is off (start run with --kubeconfig): sync and health are not known." }
            }
            div.scroll {
                table.apps {
                    thead { tr {
                        th { "Application" } th { "Sync" } th { "Health" } th { "Revision" }
                        th { "When" } th { "Drifted" } th { "Policy" } th { "Last update" }
                    } }
                    tbody id="rows" data-live=(live) { (rows(&shown)) }
                }
            }
        },
    )
}

fn timeline(t: &Timeline) -> Markup {
    html! {
        h2 { "Timeline" }
        @if t.changes.is_empty() && t.entries.is_empty() {
            p.muted { "Nothing has happened to this application since the service started." }
        }
        @for c in &t.changes {
            article.change {
                h3 { span.mono { (c.image) } " " (c.old) " → " (c.new) }
                ol.steps {
                    @for s in &c.steps {
                        li {
                            span.what { (s.what) }
                            @if !s.at.is_empty() { " " time datetime=(s.at) { (s.at) } }
                            @if let Some(n) = s.after { " " span.after { "+" (human(n)) } }
                            @if !s.detail.is_empty() { " " span.mono { (s.detail) } }
                        }
                    }
                }
            }
        }
        @if !t.entries.is_empty() {
            ul.entries {
                @for e in &t.entries {
                    li class=(tone_class(e.tone)) {
                        time datetime=(e.at) { (e.at) } " " span.what { (e.what) } " " (e.text)
                    }
                }
            }
        }
    }
}

/// The part of the application page that live updates replace.
pub fn app_live(v: &AppView) -> Markup {
    let r = &v.row;
    html! {
        section {
            dl.facts {
                dt { "Sync" } dd { (badge(&r.sync)) }
                dt { "Health" } dd { (badge(&r.health)) @if !r.detail.is_empty() { " " span.detail { (r.detail) } } }
                dt { "Revision" } dd.mono { @if r.revision.is_empty() { "—" } @else { (r.revision) } }
                dt { "When" } dd { @if r.at.is_empty() { "—" } @else { time datetime=(r.at) { (r.at) } } }
                dt { "Images" } dd { @for i in &v.images { span.mono { (i) } br; } }
                @if !r.promotion.is_empty() {
                    dt { "Promotion" } dd { @for w in &r.promotion { span.promotion { (w) } br; } }
                }
                @if !r.waits.is_empty() {
                    dt { "Waiting" } dd id="waits" {
                        @for w in &r.waits {
                            div.wait data-image=(w.image) {
                                (wait_badge(w)) " " span.mono { (w.image) } " " span.reason { (w.reason) }
                                @if v.actions {
                                    @let image = segment(&w.image);
                                    @match w.action {
                                        Some("approve") => {
                                            " " button type="button" data-action=(format!("approve?image={image}")) { "Approve" }
                                            " " button type="button" data-action=(format!("reject?image={image}")) { "Reject" }
                                        }
                                        Some("release") => {
                                            " " button type="button" data-action=(format!("release?image={image}")) { "Release" }
                                        }
                                        _ => {}
                                    }
                                }
                            }
                        }
                    }
                }
                dt { "Sync policy" } dd {
                    @match &v.policy {
                        Some(p) => {
                            "automated " (yes_no(p.automated)) ", selfHeal " (yes_no(p.self_heal))
                            ", prune " (yes_no(p.prune)) ", namespace " span.mono { (p.namespace) }
                        }
                        None => span.muted { "none: image updates only, the cluster is left alone" }
                    }
                }
            }
        }
        section {
            h2 { "Out of sync" }
            @if v.out_of_sync.is_empty() {
                p.muted { "No object differs from Git." }
            } @else {
                table.objects {
                    thead { tr { th { "Object" } th { "Differing fields" } } }
                    tbody {
                        @for (o, fields) in &v.out_of_sync {
                            tr { td.mono { (o) } td { @for f in fields { span.mono { (f) } br; } } }
                        }
                    }
                }
            }
        }
        section { (timeline(&v.timeline)) }
        section {
            h2 { "Push to commit" }
            (plot::svg(&v.latencies))
        }
    }
}

/// The application page; `v.actions` says whether the actions are on (a token was given).
pub fn app_page(v: &AppView) -> Markup {
    let actions = v.actions;
    let base = format!("/apps/{}", segment(&v.row.app));
    layout(
        &v.row.app,
        html! {
            p.crumbs { a href="/" { "Applications" } " / " }
            h1 { (v.row.app) }
            div id="app-live" data-live=(format!("{base}/live")) { (app_live(v)) }
            section.actions {
                h2 { "Actions" }
                @if actions {
                    form id="actions" data-base=(base) {
                        label for="token" { "Token" }
                        input id="token" type="password" autocomplete="off" placeholder="the --ui-token-env value";
                        label for="user" { "Name" }
                        input id="user" type="text" autocomplete="off" placeholder="who decides (optional)";
                        button type="button" data-action="sync" { "Sync now" }
                        button type="button" data-action="refresh" { "Refresh images" }
                        output id="action-result" {}
                    }
                } @else {
                    p.muted { "Actions are off: start driftwatch run with --ui-token-env VAR." }
                }
            }
        },
    )
}

/// A page saying what was not found.
pub fn not_found(what: &str) -> Markup {
    layout(
        "Not found",
        html! { h1 { "Not found" } p { (what) } p { a href="/" { "All applications" } } },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_update_is_shortened_to_name_and_tag() {
        assert_eq!(
            short_update("registry.example/team/api:v1.2.3"),
            "api:v1.2.3"
        );
        assert_eq!(
            short_update("127.0.0.1:5000/team/api:v1.2.3@sha256:0123456789abcdef0123"),
            "api:v1.2.3@0123456789ab"
        );
        assert_eq!(short_update("api:v1"), "api:v1");
        assert_eq!(short_update("v1"), "v1");
    }

    fn hostile() -> Row {
        Row {
            app: "<script>alert('x')</script>".into(),
            sync: "Synced".into(),
            health: "Healthy".into(),
            detail: "\"><img src=x onerror=alert(1)>".into(),
            ..Row::default()
        }
    }

    #[test]
    fn a_hostile_name_is_text_everywhere() {
        let page = overview(&[hostile()], "", false, Some("<leader>")).into_string();
        assert!(!page.contains("<script>alert"), "{page}");
        assert!(!page.contains("<img"), "{page}");
        assert!(page.contains("follows (leader: &lt;leader&gt;)"), "{page}");
        let filtered = overview(&[hostile()], "<b>", false, None).into_string();
        assert!(!filtered.contains("<b>"), "{filtered}");
        assert!(
            page.contains("&lt;script&gt;alert('x')&lt;/script&gt;"),
            "{page}"
        );
        // The link routes back to the same name.
        assert!(page.contains("/apps/%3Cscript%3Ealert%28%27x%27%29%3C%2Fscript%3E"));
        let view = AppView {
            row: hostile(),
            images: vec!["<i>img</i>".into()],
            policy: None,
            out_of_sync: vec![("<o>".into(), vec!["<f>".into()])],
            timeline: Timeline::default(),
            latencies: vec![],
            actions: true,
        };
        let page = app_page(&view).into_string();
        for bad in ["<script>alert", "<img", "<i>", "<o>", "<f>"] {
            assert!(!page.contains(bad), "{bad} in {page}");
        }
        // The only scripts are the page's own file, and nothing is styled inline.
        assert_eq!(page.matches("<script").count(), 1);
        assert!(page.contains("<script src=\"/assets/app.js\" defer>"));
        assert!(!page.contains("style="));
    }

    fn waiting_row() -> Row {
        let w = |image: &str, status: &str, reason: &str, action| ImageWait {
            image: image.into(),
            status: status.into(),
            reason: reason.into(),
            action,
        };
        Row {
            app: "shop".into(),
            waits: vec![
                w(
                    "reg/team/api",
                    "pending",
                    "pending approval of v1.2.0: `driftwatch approve` writes it",
                    Some("approve"),
                ),
                w(
                    "reg/team/web",
                    "held",
                    "held: set back from v2 to v1 in 1a2b3c4 by Jane Doe; …",
                    Some("release"),
                ),
                w(
                    "reg/team/db",
                    "pending",
                    "outside the update windows; the next opens mon 09:00 Europe/Paris",
                    None,
                ),
            ],
            ..Row::default()
        }
    }

    #[test]
    fn waits_show_with_their_reason_and_the_buttons_that_end_them() {
        let page = overview(&[waiting_row()], "", false, None).into_string();
        for want in [
            "api: pending approval of v1.2.0",
            "web: held: set back from v2 to v1 in 1a2b3c4 by Jane Doe",
            "db: outside the update windows; the next opens mon 09:00 Europe/Paris",
            "<b class=\"wait warn\">held</b>",
            "<b class=\"wait muted\">pending</b>",
        ] {
            assert!(page.contains(want), "{want} not in {page}");
        }
        // The overview only shows; the buttons are on the application page.
        assert!(!page.contains("data-action"), "{page}");
        let mut view = AppView {
            row: waiting_row(),
            images: vec![],
            policy: None,
            out_of_sync: vec![],
            timeline: Timeline::default(),
            latencies: vec![],
            actions: true,
        };
        let page = app_page(&view).into_string();
        for want in [
            "data-action=\"approve?image=reg%2Fteam%2Fapi\"",
            "data-action=\"reject?image=reg%2Fteam%2Fapi\"",
            "data-action=\"release?image=reg%2Fteam%2Fweb\"",
            "outside the update windows",
        ] {
            assert!(page.contains(want), "{want} not in {page}");
        }
        // A window's wait has no button: only time ends it.
        assert_eq!(page.matches("?image=reg%2Fteam%2Fdb").count(), 0);
        assert_eq!(page.matches("data-action=\"release").count(), 1);
        // Without a token, the waits show and no button does.
        view.actions = false;
        let page = app_page(&view).into_string();
        assert!(page.contains("held: set back from v2"), "{page}");
        assert!(!page.contains("data-action"), "{page}");
    }

    #[test]
    fn the_filter_keeps_matching_rows() {
        let rows = [
            Row {
                app: "shop".into(),
                ..Row::default()
            },
            Row {
                app: "billing".into(),
                ..Row::default()
            },
        ];
        let page = overview(&rows, "SHO", true, None).into_string();
        assert!(page.contains("href=\"/apps/shop\""));
        assert!(!page.contains("href=\"/apps/billing\""));
        assert!(page.contains("data-live=\"/ui/rows?q=SHO\""));
    }
}
