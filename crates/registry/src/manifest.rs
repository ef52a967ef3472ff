//! Manifests of every media type in use and the fields driftwatch needs from them.

use driftwatch_policy::{Digest, Platform, Timestamp};
use serde::Deserialize;

/// Media types asked for on every manifest request.
pub const ACCEPT: &[&str] = &[
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

/// A parsed manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Manifest {
    /// A single-platform image: its config blob.
    Image { config: Digest },
    /// A multi-platform index: its entries.
    Index { manifests: Vec<IndexEntry> },
}

/// One entry of an index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexEntry {
    /// The platform manifest's digest.
    pub digest: Digest,
    /// Its platform, when the index says.
    pub platform: Option<Platform>,
}

#[derive(Deserialize)]
struct Raw {
    #[serde(rename = "schemaVersion")]
    schema_version: Option<u32>,
    #[serde(rename = "mediaType")]
    media_type: Option<String>,
    config: Option<Descriptor>,
    manifests: Option<Vec<RawEntry>>,
}

#[derive(Deserialize)]
struct Descriptor {
    digest: String,
}

#[derive(Deserialize)]
struct RawEntry {
    digest: String,
    platform: Option<RawPlatform>,
}

#[derive(Deserialize)]
struct RawPlatform {
    os: String,
    architecture: String,
    variant: Option<String>,
}

impl Manifest {
    /// Parses a manifest body; `content_type` is the response's Content-Type, if any.
    pub fn parse(body: &[u8], content_type: Option<&str>) -> Result<Self, String> {
        let raw: Raw =
            serde_json::from_slice(body).map_err(|e| format!("manifest is not valid JSON: {e}"))?;
        if raw.schema_version == Some(1) {
            return Err("schema 1 manifests are not supported (deprecated since 2017)".to_owned());
        }
        let media = raw
            .media_type
            .as_deref()
            .or(content_type)
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_owned();
        let is_index =
            media.contains("index") || media.contains("manifest.list") || raw.manifests.is_some();
        if is_index {
            let entries = raw.manifests.ok_or("an index without manifests")?;
            let mut manifests = Vec::with_capacity(entries.len());
            for e in entries {
                let digest = Digest::parse(&e.digest).map_err(|err| err.to_string())?;
                let platform = e.platform.map(|p| Platform {
                    os: p.os,
                    arch: p.architecture,
                    variant: p.variant.unwrap_or_default(),
                });
                manifests.push(IndexEntry { digest, platform });
            }
            return Ok(Manifest::Index { manifests });
        }
        let config = raw.config.ok_or("an image manifest without config")?;
        Ok(Manifest::Image {
            config: Digest::parse(&config.digest).map_err(|e| e.to_string())?,
        })
    }
}

/// What an image config blob tells.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImageConfig {
    /// When the image was built.
    pub created: Option<Timestamp>,
    /// Its platform.
    pub platform: Option<Platform>,
}

impl ImageConfig {
    /// Parses a config blob. A missing or unparsable `created` is `None`, not an error: some
    /// builders omit it (reproducible builds set it to the epoch).
    pub fn parse(body: &[u8]) -> Result<Self, String> {
        #[derive(Deserialize)]
        struct Raw {
            created: Option<String>,
            os: Option<String>,
            architecture: Option<String>,
            variant: Option<String>,
        }
        let raw: Raw = serde_json::from_slice(body)
            .map_err(|e| format!("config blob is not valid JSON: {e}"))?;
        Ok(ImageConfig {
            created: raw
                .created
                .as_deref()
                .and_then(|c| Timestamp::parse(c).ok()),
            platform: match (raw.os, raw.architecture) {
                (Some(os), Some(arch)) => Some(Platform {
                    os,
                    arch,
                    variant: raw.variant.unwrap_or_default(),
                }),
                _ => None,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    #[test]
    fn image_and_index() {
        let img = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{{"digest":"{}"}},"layers":[]}}"#,
            d('a')
        );
        assert!(matches!(
            Manifest::parse(img.as_bytes(), None).unwrap(),
            Manifest::Image { .. }
        ));
        let idx = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{{"digest":"{}","platform":{{"os":"linux","architecture":"arm","variant":"v7"}}}},{{"digest":"{}","platform":{{"os":"unknown","architecture":"unknown"}}}}]}}"#,
            d('b'),
            d('c')
        );
        let Manifest::Index { manifests } = Manifest::parse(idx.as_bytes(), None).unwrap() else {
            panic!()
        };
        assert_eq!(
            manifests[0].platform.as_ref().unwrap().to_string(),
            "linux/arm/v7"
        );
        assert!(manifests[1].platform.as_ref().unwrap().is_attestation());
        assert!(Manifest::parse(b"{\"schemaVersion\":1}", None).is_err());
        assert!(Manifest::parse(b"{garbage", None).is_err());
        assert!(Manifest::parse(br#"{"config":{"digest":"md5:x"}}"#, None).is_err());
    }

    #[test]
    fn config_blob() {
        let c = ImageConfig::parse(
            br#"{"created":"2024-05-01T10:00:00.123Z","os":"linux","architecture":"amd64"}"#,
        )
        .unwrap();
        assert_eq!(c.created.unwrap().to_string(), "2024-05-01T10:00:00.123Z");
        assert_eq!(c.platform.unwrap().to_string(), "linux/amd64");
        assert_eq!(ImageConfig::parse(b"{}").unwrap(), ImageConfig::default());
    }
}
