//! The native configuration file, `driftwatch.yaml`: registries, applications and the images
//! they track. Validated at load; errors name the file and the key path.

use std::path::Path;
use std::time::Duration;

use driftwatch_git::{Auth, DEFAULT_COMMIT_TEMPLATE, Identity, Secret, Signing};
use driftwatch_manifest::Target;
use driftwatch_policy::{ImageRef, Order, Platform, Policy, Strategy, TagFilter};
use driftwatch_registry::{RegistriesConf, parse_go_duration};
use serde::Deserialize;

use crate::error::Error;
use crate::model::{App, TrackedImage};
use crate::notification::{Notifier, RawNotifier};
use crate::target::file_for;

/// A loaded configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// Registries (argocd-image-updater's `registries.conf` format).
    pub registries: RegistriesConf,
    /// How often `run` scans.
    pub interval: Duration,
    /// The applications.
    pub apps: Vec<App>,
    /// Where to tell people what happened.
    pub notifications: Vec<Notifier>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Raw {
    interval: Option<String>,
    registries_conf: Option<String>,
    registries: Option<serde_json::Value>,
    #[serde(default)]
    applications: Vec<RawApp>,
    #[serde(default)]
    notifications: Vec<RawNotifier>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawApp {
    name: String,
    repo: String,
    #[serde(default = "main")]
    branch: String,
    #[serde(default)]
    path: String,
    write_back: Option<String>,
    git_credentials: Option<RawGitCreds>,
    commit: Option<RawCommit>,
    #[serde(default)]
    images: Vec<RawImage>,
    /// Helm charts in OCI registries whose version is followed.
    #[serde(default)]
    charts: Vec<RawChart>,
    sync: Option<RawSync>,
    /// `required`: every image's update waits for an approval.
    approval: Option<String>,
    /// Every image's tags must be at least this old (`3d`, `12h`).
    minimum_release_age: Option<String>,
    /// When updates may be written.
    #[serde(default)]
    update_windows: Vec<RawWindow>,
    /// Every image follows this application's live image (an image's own `promote` wins).
    promote: Option<RawPromote>,
}

/// `promote: {from: APP, when: healthy, soak: 10m, pinDigest: true}`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawPromote {
    from: String,
    #[serde(default = "healthy")]
    when: String,
    soak: Option<String>,
    #[serde(default)]
    pin_digest: bool,
}

fn healthy() -> String {
    "healthy".to_owned()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawWindow {
    schedule: String,
    duration: String,
    #[serde(default)]
    time_zone: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawSync {
    #[serde(default = "default_ns")]
    namespace: String,
    cluster: Option<String>,
    automated: Option<RawAutomated>,
    #[serde(default)]
    ignore_differences: Vec<crate::ignore::RawIgnore>,
}

fn default_ns() -> String {
    "default".to_owned()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawAutomated {
    #[serde(default)]
    self_heal: bool,
    #[serde(default)]
    prune: bool,
    #[serde(default)]
    allow_empty: bool,
}

fn main() -> String {
    "main".to_owned()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawGitCreds {
    env: Option<String>,
    ssh_key: Option<String>,
    known_hosts: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawCommit {
    template: Option<String>,
    author_name: Option<String>,
    author_email: Option<String>,
    #[serde(default)]
    signoff: bool,
    gpg_key: Option<String>,
    ssh_signing_key: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawImage {
    alias: Option<String>,
    image: String,
    #[serde(default = "semver")]
    strategy: String,
    constraint: Option<String>,
    allow_tags: Option<String>,
    #[serde(default)]
    ignore_tags: Vec<String>,
    #[serde(default)]
    platforms: Vec<String>,
    kustomize_name: Option<String>,
    helm: Option<RawHelm>,
    flux_policy: Option<String>,
    credentials: Option<String>,
    /// `required`: this image's updates wait for an approval (`none`: not, whatever the
    /// application says).
    approval: Option<String>,
    /// Its tags must be at least this old before one is chosen (`3d`, `12h`, `0s`: no wait).
    minimum_release_age: Option<String>,
    /// Follow another application's live image instead of the registry.
    promote: Option<RawPromote>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawChart {
    /// `oci://host/path/name`.
    chart: String,
    #[serde(default = "semver")]
    strategy: String,
    constraint: Option<String>,
    allow_tags: Option<String>,
    #[serde(default)]
    ignore_tags: Vec<String>,
    /// The file naming the chart's version, below the application's path (`/` from the
    /// repository root); the application's kustomization by default.
    file: Option<String>,
    credentials: Option<String>,
    approval: Option<String>,
}

/// The YAML parser's budget for a configuration of `text`. Its default stops near 250,000
/// nodes, which a configuration of some 25,000 images reaches. A node takes at least a byte of
/// text unless an alias copies it, so one node (and two events) per byte admits any
/// configuration written out in full, while an alias bomb still stops within a few times its
/// size.
fn yaml_options(text: &str) -> serde_saphyr::Options {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_nodes = budget.max_nodes.max(text.len());
    budget.max_events = budget.max_events.max(text.len().saturating_mul(2));
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    options
}

/// Whether updates wait for `driftwatch approve`: the entry's own `approval`, else its
/// application's (`applications[i].approval`); the error names whichever was written.
fn approval(
    own: Option<&str>,
    app: Option<&str>,
    own_field: impl Fn() -> String,
    i: usize,
    file: &str,
) -> Result<bool, Error> {
    match own.or(app) {
        None | Some("none") => Ok(false),
        Some("required") => Ok(true),
        Some(other) => {
            let field = if own.is_some() {
                own_field()
            } else {
                format!("applications[{i}].approval")
            };
            Err(err(
                file,
                &field,
                format!("{other:?}: expected required or none"),
            ))
        }
    }
}

fn semver() -> String {
    "semver".to_owned()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHelm {
    name: Option<String>,
    tag: Option<String>,
    spec: Option<String>,
}

/// An age as Go writes durations (`12h`, `90m`), with days in front (`3d`, `1d12h`).
fn parse_age(s: &str) -> Option<Duration> {
    let s = s.trim();
    let (days, rest) = match s.find('d') {
        Some(i) => (s[..i].parse::<u64>().ok()?, &s[i + 1..]),
        None => (0, s),
    };
    let rest = if rest.is_empty() {
        Duration::ZERO
    } else {
        parse_go_duration(rest)?
    };
    Some(Duration::from_secs(days.checked_mul(86_400)?) + rest)
}

/// One `promote:` entry, checked: `when` is `healthy` (the only condition for now), `soak` a
/// duration. A digest is pinned when asked (`pinDigest`) or when the image's strategy is
/// `digest`.
fn promote_of(
    p: &RawPromote,
    strategy: Strategy,
    file: &str,
    field: &str,
) -> Result<crate::promote::Promote, Error> {
    if p.when != "healthy" {
        return Err(err(
            file,
            &format!("{field}.when"),
            format!("{:?}: the only condition is healthy", p.when),
        ));
    }
    if p.from.is_empty() {
        return Err(err(file, &format!("{field}.from"), "names no application"));
    }
    let soak = match &p.soak {
        None => Duration::ZERO,
        Some(s) => parse_age(s).ok_or_else(|| {
            err(
                file,
                &format!("{field}.soak"),
                format!("{s:?} is not a duration like 10m, 30s or 1h"),
            )
        })?,
    };
    Ok(crate::promote::Promote {
        from: p.from.clone(),
        soak,
        pin_digest: p.pin_digest || strategy == Strategy::Digest,
    })
}

/// Every promotion names an application that tracks the same image, and none goes round in a
/// circle (`a` from `b` from `a`): the error names the applications.
fn check_promotions(apps: &[App], file: &str) -> Result<(), Error> {
    for (i, app) in apps.iter().enumerate() {
        for (j, img) in app.images.iter().enumerate() {
            let Some(p) = &img.promote else { continue };
            let field = format!("applications[{i}].images[{j}].promote.from");
            let Some(up) = apps.iter().find(|a| a.name == p.from) else {
                return Err(err(
                    file,
                    &field,
                    format!(
                        "application {}: no application {:?} to promote from",
                        app.name, p.from
                    ),
                ));
            };
            if up.name == app.name {
                return Err(err(
                    file,
                    &field,
                    format!("application {} promotes from itself", app.name),
                ));
            }
            if !up.images.iter().any(|u| u.image.name() == img.image.name()) {
                return Err(err(
                    file,
                    &field,
                    format!(
                        "application {}: {} does not track {}",
                        app.name,
                        up.name,
                        img.image.name()
                    ),
                ));
            }
        }
    }
    // Follow each image's chain upstream; meeting an application twice is a cycle.
    for app in apps {
        for img in &app.images {
            let mut chain = vec![app.name.as_str()];
            let mut at = img;
            while let Some(p) = &at.promote {
                if chain.contains(&p.from.as_str()) {
                    chain.push(&p.from);
                    return Err(err(
                        file,
                        "applications",
                        format!("promotion cycle: {}", chain.join(" -> ")),
                    ));
                }
                chain.push(&p.from);
                let next = apps
                    .iter()
                    .find(|a| a.name == p.from)
                    .and_then(|a| a.images.iter().find(|u| u.image.name() == img.image.name()));
                match next {
                    Some(n) => at = n,
                    None => break,
                }
            }
        }
    }
    Ok(())
}

fn err(file: &str, path: &str, reason: impl Into<String>) -> Error {
    Error::Config {
        file: file.to_owned(),
        path: path.to_owned(),
        reason: reason.into(),
    }
}

impl Config {
    /// Loads and validates a configuration file.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| Error::Read {
            file: file.clone(),
            reason: e.to_string(),
        })?;
        Self::parse(&text, &file, path.parent().unwrap_or(Path::new(".")))
    }

    /// Parses configuration text; `dir` resolves relative file references.
    pub fn parse(text: &str, file: &str, dir: &Path) -> Result<Self, Error> {
        let raw: Raw = serde_saphyr::from_str_with_options(text, yaml_options(text))
            .map_err(|e| err(file, "(document)", e.to_string()))?;
        let interval = match raw.interval.as_deref() {
            None => Duration::from_secs(120),
            Some(s) => parse_go_duration(s).ok_or_else(|| {
                err(
                    file,
                    "interval",
                    format!("{s:?} is not a duration like 2m or 30s"),
                )
            })?,
        };
        let registries = match (&raw.registries_conf, &raw.registries) {
            (Some(_), Some(_)) => {
                return Err(err(
                    file,
                    "registries",
                    "give registries or registriesConf, not both",
                ));
            }
            (Some(p), None) => {
                let p = dir.join(p);
                let text = std::fs::read_to_string(&p).map_err(|e| Error::Read {
                    file: p.display().to_string(),
                    reason: e.to_string(),
                })?;
                RegistriesConf::parse(&text, &p.display().to_string())?
            }
            (None, Some(v)) => {
                let yaml = serde_json::json!({ "registries": v }).to_string();
                RegistriesConf::parse(&yaml, &format!("{file}: registries"))?
            }
            (None, None) => RegistriesConf::default(),
        };
        let mut apps = Vec::new();
        let mut names = std::collections::HashSet::new();
        for (i, a) in raw.applications.into_iter().enumerate() {
            let at = |k: &str| format!("applications[{i}].{k}");
            if !names.insert(a.name.clone()) {
                return Err(err(
                    file,
                    &at("name"),
                    format!("{:?} is used twice", a.name),
                ));
            }
            // The path is chosen by whoever writes the configuration, but everything read from
            // it is a pushed repository's: it must stay inside that repository.
            let app_path = driftwatch_git::normalize(&a.path).map_err(|r| {
                err(
                    file,
                    &at("path"),
                    format!("application {}: path {:?} {r}", a.name, a.path),
                )
            })?;
            let target_file = file_for(a.write_back.as_deref(), &app_path, &a.name, "", "")
                .map_err(|r| err(file, &at("writeBack"), r))?;
            let auth = match a.git_credentials {
                None => Auth::None,
                Some(RawGitCreds {
                    env: Some(var),
                    ssh_key: None,
                    ..
                }) => {
                    let value = std::env::var(&var).map_err(|_| {
                        err(file, &at("gitCredentials.env"), format!("{var} is not set"))
                    })?;
                    let (u, p) = value.split_once(':').ok_or_else(|| {
                        err(
                            file,
                            &at("gitCredentials.env"),
                            format!("{var} must hold user:token"),
                        )
                    })?;
                    Auth::Basic {
                        username: u.to_owned(),
                        password: Secret::new(p),
                    }
                }
                Some(RawGitCreds {
                    env: None,
                    ssh_key: Some(key),
                    known_hosts,
                }) => Auth::SshKey {
                    key: dir.join(key),
                    known_hosts: known_hosts.map(|k| dir.join(k)),
                },
                Some(_) => {
                    return Err(err(
                        file,
                        &at("gitCredentials"),
                        "give env or sshKey (with knownHosts)",
                    ));
                }
            };
            let commit = a.commit.unwrap_or(RawCommit {
                template: None,
                author_name: None,
                author_email: None,
                signoff: false,
                gpg_key: None,
                ssh_signing_key: None,
            });
            let identity = Identity {
                name: commit
                    .author_name
                    .unwrap_or_else(|| "driftwatch".to_owned()),
                email: commit
                    .author_email
                    .unwrap_or_else(|| "noreply@driftwatch.invalid".to_owned()),
                signing: match (commit.gpg_key, commit.ssh_signing_key) {
                    (Some(k), None) => Some(Signing::Gpg {
                        key: Some(k),
                        home: None,
                    }),
                    (None, Some(k)) => Some(Signing::Ssh { key: dir.join(k) }),
                    (None, None) => None,
                    _ => {
                        return Err(err(
                            file,
                            &at("commit"),
                            "gpgKey and sshSigningKey exclude each other",
                        ));
                    }
                },
                signoff: commit.signoff,
            };
            let template = commit
                .template
                .unwrap_or_else(|| DEFAULT_COMMIT_TEMPLATE.to_owned());
            driftwatch_git::commit_message(&template, "x", &[])
                .map_err(|e| err(file, &at("commit.template"), e.to_string()))?;
            if a.images.is_empty() && a.charts.is_empty() && a.sync.is_none() {
                return Err(err(
                    file,
                    &at("images"),
                    "no images or charts (an application that only syncs Git to the cluster \
                     needs sync)",
                ));
            }
            let sync = match a.sync {
                None => None,
                Some(s) => Some(crate::model::SyncPolicy {
                    ignore_differences: crate::ignore::convert(
                        s.ignore_differences,
                        file,
                        &at("sync.ignoreDifferences"),
                    )?,
                    namespace: s.namespace,
                    cluster: s.cluster.filter(|c| !c.is_empty()),
                    automated: s.automated.is_some(),
                    self_heal: s.automated.as_ref().is_some_and(|a| a.self_heal),
                    prune: s.automated.as_ref().is_some_and(|a| a.prune),
                    allow_empty: s.automated.as_ref().is_some_and(|a| a.allow_empty),
                }),
            };
            // Sized up front: a tracked image is large, and doubling would leave a third of
            // every application's list unused (tens of MB at 100,000 images).
            let mut images = Vec::with_capacity(a.images.len() + a.charts.len());
            for (j, im) in a.images.into_iter().enumerate() {
                let at = |k: &str| format!("applications[{i}].images[{j}].{k}");
                let image = ImageRef::parse(&im.image)
                    .map_err(|e| err(file, &at("image"), e.to_string()))?;
                if image.tag().is_some() || image.digest().is_some() {
                    return Err(err(
                        file,
                        &at("image"),
                        "give the image without a tag; put the version rule in constraint",
                    ));
                }
                let strategy = Strategy::parse(&im.strategy)
                    .map_err(|e| err(file, &at("strategy"), e.to_string()))?;
                let mut filter = TagFilter::new();
                if let Some(allow) = &im.allow_tags {
                    filter = filter
                        .allow(allow)
                        .map_err(|e| err(file, &at("allowTags"), e.to_string()))?;
                }
                filter = filter
                    .ignore(im.ignore_tags.iter().map(String::as_str))
                    .map_err(|e| err(file, &at("ignoreTags"), e.to_string()))?;
                let platforms = im
                    .platforms
                    .iter()
                    .map(|p| Platform::parse(p))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| err(file, &at("platforms"), e.to_string()))?;
                filter = filter.platforms(platforms);
                let policy = Policy::new(strategy, im.constraint.as_deref(), filter, Order::Asc)
                    .map_err(|e| err(file, &at("constraint"), e.to_string()))?;
                let mut target = Target {
                    flux_policy: im.flux_policy,
                    ..Target::default()
                };
                if let Some(h) = im.helm {
                    match (h.spec, h.name, h.tag) {
                        (Some(spec), None, None) => target.helm_path = Some(spec),
                        (None, name, Some(tag)) => {
                            target.helm_path = Some(tag);
                            target.helm_name_path = name;
                        }
                        _ => {
                            return Err(err(
                                file,
                                &at("helm"),
                                "give spec, or tag (with an optional name)",
                            ));
                        }
                    }
                }
                if let Some(c) = &im.credentials {
                    driftwatch_registry::Source::parse(c)
                        .map_err(|e| err(file, &at("credentials"), e.to_string()))?;
                }
                let approval_required = approval(
                    im.approval.as_deref(),
                    a.approval.as_deref(),
                    || at("approval"),
                    i,
                    file,
                )?;
                let min_release_age = match (&im.minimum_release_age, &a.minimum_release_age) {
                    (Some(s), _) => Some((s, at("minimumReleaseAge"))),
                    (None, Some(s)) => Some((s, format!("applications[{i}].minimumReleaseAge"))),
                    (None, None) => None,
                }
                .map(|(s, field)| {
                    parse_age(s).ok_or_else(|| {
                        err(
                            file,
                            &field,
                            format!("{s:?} is not an age like 3d, 12h or 30m"),
                        )
                    })
                })
                .transpose()?
                .filter(|d| !d.is_zero());
                let promote = match (&im.promote, &a.promote) {
                    (Some(p), _) => Some((p, at("promote"))),
                    (None, Some(p)) => Some((p, format!("applications[{i}].promote"))),
                    (None, None) => None,
                }
                .map(|(p, field)| promote_of(p, policy.strategy(), file, &field))
                .transpose()?;
                let first = im.image.split('/').next().unwrap_or("");
                images.push(TrackedImage {
                    promote,
                    min_release_age,
                    approval_required,
                    alias: im.alias,
                    implicit_registry: !(im.image.contains('/')
                        && (first.contains(['.', ':']) || first == "localhost")),
                    written: im.image.clone(),
                    image,
                    file_name: im.kustomize_name,
                    policy,
                    target,
                    credentials: im.credentials,
                    file: None,
                });
            }
            for (j, c) in a.charts.into_iter().enumerate() {
                images.push(chart(c, file, i, j, &app_path, a.approval.as_deref())?);
            }
            let mut update_windows = Vec::new();
            for (k, w) in a.update_windows.iter().enumerate() {
                let at = |key: &str| format!("applications[{i}].updateWindows[{k}].{key}");
                let duration = parse_age(&w.duration).ok_or_else(|| {
                    err(
                        file,
                        &at("duration"),
                        format!("{:?} is not a duration like 8h or 1d", w.duration),
                    )
                })?;
                let window = crate::window::Window::new(&w.schedule, duration, &w.time_zone)
                    .map_err(|why| {
                        // The window names its field first (`duration: …`, `timeZone: …`).
                        let (key, reason) = match why.split_once(": ") {
                            Some((k, r)) if k == "duration" || k == "timeZone" => (k, r.to_owned()),
                            _ => ("schedule", why.clone()),
                        };
                        err(file, &at(key), reason)
                    })?;
                update_windows.push(crate::model::UpdateWindow {
                    written: (w.schedule.clone(), duration, w.time_zone.clone()),
                    window,
                });
            }
            apps.push(App {
                update_windows,
                path: app_path,
                name: a.name,
                namespace: String::new(),
                repo: a.repo,
                branch: a.branch,
                auth,
                file: target_file,
                template,
                identity,
                images,
                sync,
                git_credentials: None,
                write_back: crate::model::WriteBack::Git,
                source_images: Vec::new(),
                other_sources: Vec::new(),
                helm: None,
            });
        }
        check_promotions(&apps, file)?;
        let mut notifications: Vec<Notifier> = Vec::new();
        for (i, n) in raw.notifications.into_iter().enumerate() {
            let n = n
                .validate(|var| std::env::var(var).ok())
                .map_err(|(key, reason)| err(file, &format!("notifications[{i}].{key}"), reason))?;
            if notifications.iter().any(|o| o.name == n.name) {
                return Err(err(
                    file,
                    &format!("notifications[{i}].name"),
                    format!("{:?} is used twice", n.name),
                ));
            }
            notifications.push(n);
        }
        Ok(Config {
            registries,
            interval,
            apps,
            notifications,
        })
    }
}

/// One `charts:` entry of `applications[i]`, as a tracked image whose tags are chart versions.
fn chart(
    c: RawChart,
    file: &str,
    i: usize,
    j: usize,
    app_path: &str,
    app_approval: Option<&str>,
) -> Result<TrackedImage, Error> {
    let at = |k: &str| format!("applications[{i}].charts[{j}].{k}");
    let chart = driftwatch_policy::ChartRef::parse(&c.chart)
        .map_err(|e| err(file, &at("chart"), e.to_string()))?;
    let strategy =
        Strategy::parse(&c.strategy).map_err(|e| err(file, &at("strategy"), e.to_string()))?;
    if strategy != Strategy::Semver {
        return Err(err(
            file,
            &at("strategy"),
            format!(
                "{:?}: chart versions are followed by semver only",
                c.strategy
            ),
        ));
    }
    let mut filter = TagFilter::new();
    if let Some(allow) = &c.allow_tags {
        filter = filter
            .allow(allow)
            .map_err(|e| err(file, &at("allowTags"), e.to_string()))?;
    }
    filter = filter
        .ignore(c.ignore_tags.iter().map(String::as_str))
        .map_err(|e| err(file, &at("ignoreTags"), e.to_string()))?;
    let policy = Policy::new(strategy, c.constraint.as_deref(), filter, Order::Asc)
        .map_err(|e| err(file, &at("constraint"), e.to_string()))?;
    if let Some(cred) = &c.credentials {
        driftwatch_registry::Source::parse(cred)
            .map_err(|e| err(file, &at("credentials"), e.to_string()))?;
    }
    let approval_required = approval(
        c.approval.as_deref(),
        app_approval,
        || at("approval"),
        i,
        file,
    )?;
    let target_file =
        crate::target::join(app_path, c.file.as_deref().unwrap_or("kustomization.yaml"));
    if target_file.is_empty() {
        return Err(err(file, &at("file"), "names no file"));
    }
    let mut tracked = TrackedImage::chart(chart, policy, Some(target_file));
    tracked.credentials = c.credentials;
    tracked.approval_required = approval_required;
    Ok(tracked)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONF: &str = r#"
interval: 30s
registries:
- name: local
  api_url: http://127.0.0.1:5000
  prefix: 127.0.0.1:5000
applications:
- name: shop-prod
  repo: file:///srv/git/shop.git
  path: manifests/overlays/production
  writeBack: kustomization
  images:
  - image: 127.0.0.1:5000/shop/backend
    kustomizeName: backend
    constraint: "~1.0"
    allowTags: regexp:^v[0-9]+\.[0-9]+\.[0-9]+$
    ignoreTags: ["*-rc*"]
- name: shop-dev
  repo: file:///srv/git/shop.git
  path: manifests/overlays/development
  writeBack: kustomization
  images:
  - image: 127.0.0.1:5000/shop/backend
    kustomizeName: backend
    strategy: digest
    constraint: dev-latest
"#;

    #[test]
    fn loads_environments_as_applications() {
        let c = Config::parse(CONF, "driftwatch.yaml", Path::new(".")).unwrap();
        assert_eq!(c.interval, Duration::from_secs(30));
        assert_eq!(c.apps.len(), 2);
        assert_eq!(
            c.apps[0].file,
            "manifests/overlays/production/kustomization.yaml"
        );
        assert_eq!(c.apps[1].images[0].policy.tracked_tag(), Some("dev-latest"));
        assert_eq!(c.registries.entries.len(), 1);
    }

    #[test]
    fn sync_policy() {
        let c = Config::parse(CONF, "driftwatch.yaml", Path::new(".")).unwrap();
        assert_eq!(c.apps[0].sync, None, "no sync: the cluster is left alone");
        let with = CONF.replace(
            "  writeBack: kustomization\n  images:\n  - image: 127.0.0.1:5000/shop/backend\n    kustomizeName: backend\n    constraint",
            "  writeBack: kustomization\n  sync:\n    namespace: shop\n    automated: {selfHeal: true}\n  images:\n  - image: 127.0.0.1:5000/shop/backend\n    kustomizeName: backend\n    constraint",
        );
        let c = Config::parse(&with, "driftwatch.yaml", Path::new(".")).unwrap();
        let s = c.apps[0].sync.clone().unwrap();
        assert!(s.automated && s.self_heal && !s.prune && !s.allow_empty);
        assert_eq!(s.namespace, "shop");
        // Sync only, no images: allowed; neither: refused.
        let only = "applications:\n- name: x\n  repo: r\n  path: p\n  sync: {}\n";
        let c = Config::parse(only, "d.yaml", Path::new(".")).unwrap();
        assert_eq!(c.apps[0].sync.as_ref().unwrap().namespace, "default");
        assert!(!c.apps[0].sync.as_ref().unwrap().automated);
        let e = Config::parse(
            "applications:\n- name: x\n  repo: r\n  path: p\n",
            "d.yaml",
            Path::new("."),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("applications[0].images"), "{e}");
        let e = Config::parse(
            "applications:\n- name: x\n  repo: r\n  sync: {automated: {selfHeel: true}}\n",
            "d.yaml",
            Path::new("."),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("selfHeel"), "{e}");
    }

    #[test]
    fn errors_name_the_key_path() {
        for (bad, path) in [
            (CONF.replace("~1.0", "~1.x.y"), "applications[0].images[0].constraint"),
            (CONF.replace("strategy: digest", "strategy: newest"), "applications[1].images[0].strategy"),
            (CONF.replace("writeBack: kustomization\n  images:\n  - image: 127.0.0.1:5000/shop/backend\n    kustomizeName: backend\n    strategy", "writeBack: nowhere\n  images:\n  - image: 127.0.0.1:5000/shop/backend\n    kustomizeName: backend\n    strategy"), "applications[1].writeBack"),
            (CONF.replace("interval: 30s", "interval: soon"), "interval"),
            (CONF.replace("name: shop-dev", "name: shop-prod"), "applications[1].name"),
            (CONF.replace("path: manifests/overlays/development", "path: ../outside"), "applications[1].path: application shop-dev: path \"../outside\" leaves the repository"),
            (CONF.replace("path: manifests/overlays/development", "path: /etc"), "applications[1].path: application shop-dev: path \"/etc\" is absolute"),
            (CONF.replace("    constraint: \"~1.0\"\n", "    constraint: \"~1.0\"\n    approval: maybe\n"), "applications[0].images[0].approval"),
        ] {
            let e = Config::parse(&bad, "driftwatch.yaml", Path::new(".")).unwrap_err().to_string();
            assert!(e.contains("driftwatch.yaml") && e.contains(path), "{path}: {e}");
        }
        let e = Config::parse(
            "applications:\n- name: x\n  repo: r\n  images: []\n  bogus: 1\n",
            "d.yaml",
            Path::new("."),
        )
        .unwrap_err();
        assert!(e.to_string().contains("bogus"), "{e}");
    }

    #[test]
    fn update_windows_name_their_bad_field() {
        let with = |w: &str| {
            format!(
                "applications:\n- name: x\n  repo: r\n  updateWindows:\n  - {w}\n  images:\n  - image: a/b\n"
            )
        };
        let ok = Config::parse(
            &with("schedule: \"0 22 * * 1-5\"\n    duration: 8h\n    timeZone: Europe/Berlin"),
            "d.yaml",
            Path::new("."),
        )
        .unwrap();
        assert_eq!(ok.apps[0].update_windows.len(), 1);
        for (bad, field) in [
            (
                "schedule: \"0 25 * * *\"\n    duration: 1h",
                "updateWindows[0].schedule",
            ),
            (
                "schedule: \"0 2 * * *\"\n    duration: forever",
                "updateWindows[0].duration",
            ),
            (
                "schedule: \"0 2 * * *\"\n    duration: 9d",
                "updateWindows[0].duration",
            ),
            (
                "schedule: \"0 2 * * *\"\n    duration: 1h\n    timeZone: Mars/Base",
                "updateWindows[0].timeZone",
            ),
        ] {
            let e = Config::parse(&with(bad), "d.yaml", Path::new("."))
                .unwrap_err()
                .to_string();
            assert!(
                e.contains(&format!("applications[0].{field}")),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn a_large_configuration_loads_and_an_alias_bomb_does_not() {
        // 30,000 images: past the YAML parser's default node budget.
        let mut text = String::from("applications:\n");
        for a in 0..3_000 {
            text.push_str(&format!("- name: app-{a}\n  repo: r\n  images:\n"));
            for i in 0..10 {
                text.push_str(&format!(
                    "  - image: reg.local/img-{i}\n    kustomizeName: img-{i}\n"
                ));
            }
        }
        let c = Config::parse(&text, "d.yaml", Path::new(".")).unwrap();
        assert_eq!(c.apps.iter().map(|a| a.images.len()).sum::<usize>(), 30_000);
        let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..9 {
            let p = i - 1;
            bomb.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        bomb.push_str("all: [*a8, *a8, *a8, *a8, *a8, *a8, *a8, *a8, *a8, *a8]\n");
        let e =
            serde_saphyr::from_str_with_options::<serde_json::Value>(&bomb, yaml_options(&bomb))
                .unwrap_err()
                .to_string();
        assert!(e.contains("budget"), "{e}");
    }

    #[test]
    fn promotions_are_checked_at_load() {
        let conf = |prod: &str, staging: &str| {
            format!(
                "applications:\n- name: dev\n  repo: r\n  images:\n  - image: reg.local/shop/web\n- name: staging\n  repo: r\n  images:\n  - image: reg.local/shop/web\n{staging}- name: prod\n  repo: r\n{prod}  images:\n  - image: reg.local/shop/web\n    strategy: digest\n    constraint: main\n"
            )
        };
        let ok = conf(
            "  promote: {from: staging, when: healthy, soak: 10m}\n",
            "    promote: {from: dev, soak: 30s, pinDigest: true}\n",
        );
        let c = Config::parse(&ok, "d.yaml", Path::new(".")).unwrap();
        let prod = c.apps[2].images[0].promote.clone().unwrap();
        assert_eq!(prod.from, "staging");
        assert_eq!(prod.soak, Duration::from_secs(600));
        assert!(prod.pin_digest, "a digest strategy pins the digest");
        let staging = c.apps[1].images[0].promote.clone().unwrap();
        assert_eq!(
            (staging.soak, staging.pin_digest),
            (Duration::from_secs(30), true)
        );
        assert_eq!(c.apps[0].images[0].promote, None);
        for (prod, staging, want) in [
            (
                "  promote: {from: qa}\n",
                "",
                "applications[2].images[0].promote.from: application prod: no application \"qa\"",
            ),
            (
                "  promote: {from: staging, when: green}\n",
                "",
                "applications[2].promote.when: \"green\": the only condition is healthy",
            ),
            (
                "  promote: {from: staging, soak: soon}\n",
                "",
                "applications[2].promote.soak: \"soon\" is not a duration",
            ),
            (
                "  promote: {from: prod}\n",
                "",
                "application prod promotes from itself",
            ),
            (
                "  promote: {from: staging}\n",
                "    promote: {from: prod}\n",
                "promotion cycle: staging -> prod -> staging",
            ),
        ] {
            let e = Config::parse(&conf(prod, staging), "d.yaml", Path::new("."))
                .unwrap_err()
                .to_string();
            assert!(e.starts_with("d.yaml: ") && e.contains(want), "{want}: {e}");
        }
        let other = ok.replacen("reg.local/shop/web", "reg.local/shop/api", 1);
        let e = Config::parse(&other, "d.yaml", Path::new("."))
            .unwrap_err()
            .to_string();
        assert!(e.contains("dev does not track reg.local/shop/web"), "{e}");
    }

    #[test]
    fn charts_are_tracked_with_their_own_file() {
        let text = "applications:\n- name: web\n  repo: r\n  path: apps/web\n  approval: required\n  charts:\n  - chart: oci://reg.example.com/charts/web\n    constraint: \"~1.4\"\n  - chart: oci://reg.example.com/charts/api\n    file: /argo/api.yaml\n    approval: none\n";
        let c = Config::parse(text, "d.yaml", Path::new(".")).unwrap();
        let charts = &c.apps[0].images;
        assert_eq!(charts.len(), 2, "charts alone make an application");
        assert!(charts.iter().all(TrackedImage::is_chart));
        assert_eq!(charts[0].written, "chart:oci://reg.example.com/charts/web");
        assert_eq!(charts[0].image.repository(), "charts/web");
        assert_eq!(
            charts[0].file.as_deref(),
            Some("apps/web/kustomization.yaml")
        );
        assert_eq!(charts[1].file.as_deref(), Some("argo/api.yaml"));
        assert_eq!(
            charts
                .iter()
                .map(|c| c.approval_required)
                .collect::<Vec<_>>(),
            [true, false]
        );
        let e = Config::parse(
            &text.replace("    constraint: \"~1.4\"\n", "    minimumReleaseAge: 3d\n"),
            "d.yaml",
            Path::new("."),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("minimumReleaseAge"), "{e}");
    }

    #[test]
    fn approval_on_the_application_and_opted_out_per_image() {
        let text = "applications:\n- name: x\n  repo: r\n  approval: required\n  images:\n  - image: a/b\n  - image: a/c\n    approval: none\n";
        let c = Config::parse(text, "d.yaml", Path::new(".")).unwrap();
        let required: Vec<bool> = c.apps[0]
            .images
            .iter()
            .map(|i| i.approval_required)
            .collect();
        assert_eq!(required, [true, false]);
    }
}
