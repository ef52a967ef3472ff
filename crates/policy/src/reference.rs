//! Image references, normalised as Docker normalises them, and argocd-image-updater's
//! `image-list` entries.
//!
//! `nginx` is `docker.io/library/nginx`; a first path component that contains `.` or `:`, is
//! `localhost`, or has an upper-case letter is a registry host; `index.docker.io` is `docker.io`.
//! The grammar is distribution/reference's, written out by hand so it is fast and fuzzable.

use std::fmt;

use crate::constraint::Constraint;
use crate::error::{Error, Result};

/// Docker Hub's canonical registry name.
pub const DOCKER_HUB: &str = "docker.io";
const LEGACY_DOCKER_HUB: &str = "index.docker.io";
const OFFICIAL_PREFIX: &str = "library/";
const NAME_MAX: usize = 255;
const TAG_MAX: usize = 128;

/// A fully normalised image reference: registry, repository, optional tag and digest.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ImageRef {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

/// A content digest such as `sha256:<64 hex>`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    algorithm: String,
    hex: String,
}

impl Digest {
    /// Parses `algorithm:hex`; sha256, sha384 and sha512 are checked for length and lower-case hex.
    pub fn parse(input: &str) -> Result<Self> {
        let bad = |reason| Error::InvalidDigest {
            input: input.to_owned(),
            reason,
        };
        let (algorithm, hex) = input
            .split_once(':')
            .ok_or_else(|| bad("expected algorithm:hex"))?;
        let want = match algorithm {
            "sha256" => 64,
            "sha384" => 96,
            "sha512" => 128,
            _ => return Err(bad("unsupported algorithm (sha256, sha384 or sha512)")),
        };
        if hex.len() != want {
            return Err(bad("wrong length for this algorithm"));
        }
        if !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(bad("expected lower-case hexadecimal"));
        }
        Ok(Digest {
            algorithm: algorithm.to_owned(),
            hex: hex.to_owned(),
        })
    }

    /// The algorithm, e.g. `sha256`.
    pub fn algorithm(&self) -> &str {
        &self.algorithm
    }

    /// The hex-encoded hash.
    pub fn hex(&self) -> &str {
        &self.hex
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm, self.hex)
    }
}

impl ImageRef {
    /// Parses and normalises a reference: `nginx`, `bitnami/nginx:1.25`,
    /// `localhost:5000/app@sha256:…`, `ghcr.io/org/app:v1@sha256:…`.
    pub fn parse(input: &str) -> Result<Self> {
        let bad = |reason: &str| Error::InvalidReference {
            input: input.to_owned(),
            reason: reason.to_owned(),
        };
        if input.is_empty() {
            return Err(bad("empty reference"));
        }
        if input.len() == 64
            && input
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Err(bad(
                "a 64-character hexadecimal string is an image ID, not a repository name",
            ));
        }
        let (name_tag, digest) = match input.split_once('@') {
            Some((n, d)) => (n, Some(Digest::parse(d).map_err(|e| bad(&e.to_string()))?)),
            None => (input, None),
        };
        let last_slash = name_tag.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match name_tag[last_slash..].rfind(':') {
            Some(i) => {
                let at = last_slash + i;
                (&name_tag[..at], Some(&name_tag[at + 1..]))
            }
            None => (name_tag, None),
        };
        if let Some(tag) = tag
            && !is_valid_tag(tag)
        {
            return Err(bad(&format!(
                "tag {tag:?} is invalid (letters, digits, '_', '.', '-'; at most 128, not starting with '.' or '-')"
            )));
        }
        let (registry, repository) = split_registry(name).map_err(|r| bad(&r))?;
        Ok(ImageRef {
            registry,
            repository,
            tag: tag.map(str::to_owned),
            digest,
        })
    }

    /// The registry host (and port), e.g. `docker.io`, `ghcr.io`, `localhost:5000`.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository path inside the registry, e.g. `library/nginx`.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag, if one was given.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, if one was given.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// `registry/repository`, without tag or digest: the repository's identity.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The short form Docker prints: `nginx`, `bitnami/nginx`, `ghcr.io/org/app`.
    pub fn familiar_name(&self) -> String {
        if self.registry == DOCKER_HUB {
            match self.repository.strip_prefix(OFFICIAL_PREFIX) {
                Some(rest) if !rest.contains('/') => rest.to_owned(),
                _ => self.repository.clone(),
            }
        } else {
            self.name()
        }
    }

    /// The same image with another tag and digest.
    pub fn with(&self, tag: Option<&str>, digest: Option<Digest>) -> Self {
        ImageRef {
            registry: self.registry.clone(),
            repository: self.repository.clone(),
            tag: tag.map(str::to_owned),
            digest,
        }
    }
}

impl fmt::Display for ImageRef {
    /// The fully qualified form: `docker.io/library/nginx:1.25@sha256:…`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// True for a valid Docker tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub fn is_valid_tag(tag: &str) -> bool {
    let b = tag.as_bytes();
    !b.is_empty()
        && b.len() <= TAG_MAX
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b[1..]
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// Docker's `splitDockerDomain` plus validation of both halves.
fn split_registry(name: &str) -> std::result::Result<(String, String), String> {
    let (mut registry, mut remainder) = match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.bytes().any(|b| b.is_ascii_uppercase()) =>
        {
            (first.to_owned(), rest.to_owned())
        }
        _ => (DOCKER_HUB.to_owned(), name.to_owned()),
    };
    validate_registry(&registry)?;
    if registry == LEGACY_DOCKER_HUB {
        registry = DOCKER_HUB.to_owned();
    }
    if registry == DOCKER_HUB && !remainder.contains('/') {
        remainder.insert_str(0, OFFICIAL_PREFIX);
    }
    if remainder.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(format!("repository name {remainder:?} must be lower-case"));
    }
    for component in remainder.split('/') {
        if !is_valid_path_component(component) {
            return Err(if component.is_empty() {
                "empty path component".to_owned()
            } else {
                format!(
                    "path component {component:?} is invalid (lower-case letters and digits, \
                     separated by '.', '_', '__' or dashes)"
                )
            });
        }
    }
    if registry.len() + 1 + remainder.len() > NAME_MAX {
        return Err(format!("name is longer than {NAME_MAX} characters"));
    }
    Ok((registry, remainder))
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`
fn is_valid_path_component(s: &str) -> bool {
    let b = s.as_bytes();
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    let mut i = 0;
    loop {
        let start = i;
        while i < b.len() && alnum(b[i]) {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i == b.len() {
            return true;
        }
        match b[i] {
            b'.' => i += 1,
            b'_' => i += if b.get(i + 1) == Some(&b'_') { 2 } else { 1 },
            b'-' => {
                while b.get(i) == Some(&b'-') {
                    i += 1;
                }
            }
            _ => return false,
        }
    }
}

/// `host[:port]` where host is DNS-ish components or a bracketed IPv6 address.
fn validate_registry(registry: &str) -> std::result::Result<(), String> {
    let bad = || format!("registry {registry:?} is not a valid host[:port]");
    let (host, port) = if let Some(rest) = registry.strip_prefix('[') {
        let (addr, after) = rest.split_once(']').ok_or_else(bad)?;
        if addr.is_empty()
            || !addr
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return Err(bad());
        }
        match after {
            "" => ("", None),
            p => (addr, Some(p.strip_prefix(':').ok_or_else(bad)?)),
        }
    } else {
        match registry.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (registry, None),
        }
    };
    if !registry.starts_with('[') {
        let ok = host.split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'-')
        });
        if !ok {
            return Err(bad());
        }
    }
    if let Some(port) = port
        && (port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(bad());
    }
    Ok(())
}

/// One entry of argocd-image-updater's `image-list` annotation: `[alias=]image[:constraint]`.
///
/// The part after the image name is a version constraint for the semver strategy, a tag to track
/// for the digest strategy, or a pinned tag; it is kept as written and validated by the policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageListEntry {
    /// The alias that names per-image annotations (`<alias>.update-strategy`).
    pub alias: Option<String>,
    /// The image, normalised, without tag.
    pub image: ImageRef,
    /// What followed the image name after `:`, trimmed; `None` when nothing did.
    pub constraint: Option<String>,
    /// The image name as written (`nginx`, `docker.io/nginx`), which is how manifests name it.
    pub written: String,
}

impl ImageListEntry {
    /// Parses one entry. Unlike argocd-image-updater's naive split on the first `=`, an `=` that
    /// belongs to a constraint (`nginx:>=1.2`) is not taken for an alias.
    pub fn parse(input: &str) -> Result<Self> {
        let entry = input.trim();
        let bad = |reason: String| Error::InvalidImageListEntry {
            input: input.to_owned(),
            reason,
        };
        let (alias, rest) = match entry.split_once('=') {
            Some((a, rest)) if is_alias(a.trim()) => (Some(a.trim().to_owned()), rest.trim()),
            _ => (None, entry),
        };
        if rest.is_empty() {
            return Err(bad("no image after the alias".to_owned()));
        }
        if rest.contains('@') {
            let image = ImageRef::parse(rest)?;
            let constraint = image.tag().map(str::to_owned);
            let before_digest = rest.split('@').next().unwrap_or(rest);
            let slash = before_digest.rfind('/').map_or(0, |i| i + 1);
            let written = match before_digest[slash..].find(':') {
                Some(i) => before_digest[..slash + i].to_owned(),
                None => before_digest.to_owned(),
            };
            return Ok(ImageListEntry {
                alias,
                written,
                image,
                constraint,
            });
        }
        let after_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, constraint) = match rest[after_slash..].find(':') {
            Some(i) => {
                let at = after_slash + i;
                (&rest[..at], Some(rest[at + 1..].trim()))
            }
            None => (rest, None),
        };
        if constraint == Some("") {
            return Err(bad("nothing after ':'".to_owned()));
        }
        let image = ImageRef::parse(name.trim())?;
        Ok(ImageListEntry {
            alias,
            written: name.trim().to_owned(),
            image,
            constraint: constraint.map(str::to_owned),
        })
    }

    /// Parses a whole `image-list` annotation value. Entries are separated by commas; a piece that
    /// is itself a version constraint continues the previous entry's constraint (`app=x:>=1.2, <2`).
    pub fn parse_list(value: &str) -> Result<Vec<Self>> {
        let mut entries: Vec<ImageListEntry> = Vec::new();
        for piece in value.split(',') {
            let trimmed = piece.trim();
            if trimmed.is_empty() {
                continue;
            }
            if let Some(last) = entries.last_mut()
                && let Some(constraint) = &last.constraint
            {
                let joined = format!("{constraint}, {trimmed}");
                if Constraint::parse(trimmed).is_ok() && Constraint::parse(&joined).is_ok() {
                    last.constraint = Some(joined);
                    continue;
                }
            }
            entries.push(ImageListEntry::parse(trimmed)?);
        }
        Ok(entries)
    }
}

fn is_alias(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> ImageRef {
        ImageRef::parse(s).unwrap()
    }

    #[test]
    fn docker_normalisation() {
        let cases = [
            ("nginx", "docker.io/library/nginx"),
            ("nginx:1.25", "docker.io/library/nginx:1.25"),
            ("library/nginx", "docker.io/library/nginx"),
            ("bitnami/nginx", "docker.io/bitnami/nginx"),
            ("docker.io/nginx", "docker.io/library/nginx"),
            ("index.docker.io/nginx", "docker.io/library/nginx"),
            ("localhost/app", "localhost/app"),
            ("localhost:5000/app:v1", "localhost:5000/app:v1"),
            ("ghcr.io/org/team/app", "ghcr.io/org/team/app"),
            ("Registry/app", "Registry/app"),
            ("[::1]:5000/app", "[::1]:5000/app"),
            (
                "my-registry.local:443/a/b_c/d__e/f--g:tag_1.0-x",
                "my-registry.local:443/a/b_c/d__e/f--g:tag_1.0-x",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(r(input).to_string(), want, "{input}");
        }
    }

    #[test]
    fn tag_and_digest() {
        let d = "sha256:".to_owned() + &"ab".repeat(32);
        let x = r(&format!("ghcr.io/org/app:v1.2@{d}"));
        assert_eq!(x.tag(), Some("v1.2"));
        assert_eq!(x.digest().unwrap().to_string(), d);
        let y = r(&format!("localhost:5000/app@{d}"));
        assert_eq!(y.tag(), None);
        assert_eq!(y.registry(), "localhost:5000");
    }

    #[test]
    fn familiar_names() {
        assert_eq!(r("nginx:1").familiar_name(), "nginx");
        assert_eq!(r("docker.io/library/a/b").familiar_name(), "library/a/b");
        assert_eq!(r("bitnami/nginx").familiar_name(), "bitnami/nginx");
        assert_eq!(r("quay.io/x/y").familiar_name(), "quay.io/x/y");
    }

    #[test]
    fn invalid_references() {
        for bad in [
            "",
            "Nginx",
            "nginx:",
            "nginx:-x",
            "nginx:.x",
            "a//b",
            "/a",
            "a/",
            "a..b",
            "a___b",
            "a-",
            "ghcr.io/App",
            "bad host/x",
            "host:port/x",
            "nginx@sha256:abc",
            "nginx@md5:0123456789abcdef0123456789abcdef",
            &"a".repeat(256),
            &"0123456789abcdef".repeat(4),
        ] {
            let err = ImageRef::parse(bad);
            assert!(err.is_err(), "{bad:?} should be rejected, got {err:?}");
            let msg = err.unwrap_err().to_string();
            assert!(msg.contains(&format!("{bad:?}")), "{msg}");
        }
    }

    #[test]
    fn image_list_entries() {
        let e = ImageListEntry::parse("backend=registry.local:5000/org/backend:~1.0").unwrap();
        assert_eq!(e.alias.as_deref(), Some("backend"));
        assert_eq!(e.image.name(), "registry.local:5000/org/backend");
        assert_eq!(e.constraint.as_deref(), Some("~1.0"));

        let e = ImageListEntry::parse("nginx:>=1.2 <2.0 || 3.x").unwrap();
        assert_eq!(e.alias, None);
        assert_eq!(e.image.name(), "docker.io/library/nginx");
        assert_eq!(e.constraint.as_deref(), Some(">=1.2 <2.0 || 3.x"));

        let e = ImageListEntry::parse(" web = nginx: != 1.2.3 ").unwrap();
        assert_eq!(e.alias.as_deref(), Some("web"));
        assert_eq!(e.constraint.as_deref(), Some("!= 1.2.3"));

        let e = ImageListEntry::parse("localhost:5000/app").unwrap();
        assert_eq!(e.constraint, None);
        assert_eq!(e.written, "localhost:5000/app");
        let d = format!("sha256:{}", "ab".repeat(32));
        let e = ImageListEntry::parse(&format!("x=localhost:5000/app:v1@{d}")).unwrap();
        assert_eq!(
            (e.written.as_str(), e.constraint.as_deref()),
            ("localhost:5000/app", Some("v1"))
        );
        assert_eq!(
            ImageListEntry::parse("docker.io/nginx:~1").unwrap().written,
            "docker.io/nginx"
        );
        assert_eq!(e.image.registry(), "localhost:5000");

        let e = ImageListEntry::parse("a=nginx:<=1.4").unwrap();
        assert_eq!(e.constraint.as_deref(), Some("<=1.4"));

        assert!(ImageListEntry::parse("web=").is_err());
        assert!(ImageListEntry::parse("nginx:").is_err());
    }

    #[test]
    fn image_list_with_commas_in_constraints() {
        let list =
            ImageListEntry::parse_list("api=org/api:>=1.2, <2.0, web=nginx:~1.25,,redis").unwrap();
        assert_eq!(list.len(), 3);
        assert_eq!(list[0].constraint.as_deref(), Some(">=1.2, <2.0"));
        assert_eq!(list[1].alias.as_deref(), Some("web"));
        assert_eq!(list[2].image.familiar_name(), "redis");
    }
}
