//! Scanning with a cache: in one cycle each repository is listed once, however many images and
//! applications track it; per-digest metadata (creation time, platforms) is kept across cycles,
//! so `newest-build` fetches configs only for tags whose digest is new.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use driftwatch_policy::{Candidate, Digest, ImageRef, Platform, Timestamp};
use tokio::sync::OnceCell;

use crate::client::{Client, TagList};
use crate::endpoint::TagSort;
use crate::error::Error;
use crate::manifest::Manifest;

/// What is known about one manifest digest; immutable, so it is cached for good.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DigestMeta {
    /// Newest creation time among the wanted platforms' configs.
    pub created: Option<Timestamp>,
    /// Platforms offered (attestations excluded).
    pub platforms: Vec<Platform>,
}

/// What a scan needs to know per tag.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Needs {
    /// Creation times (`newest-build`).
    pub created: bool,
    /// Digests (`digest`, or reporting).
    pub digest: bool,
    /// Platforms (a platform filter).
    pub platforms: bool,
}

/// A long-lived scanner: the client and the per-digest cache.
pub struct Scanner {
    client: Client,
    meta: Mutex<HashMap<Digest, Arc<DigestMeta>>>,
}

/// A result shared by every caller in a cycle; errors keep their message and transience.
type Shared<T> = Arc<OnceCell<Result<T, (String, bool)>>>;

/// One scan cycle: tag lists are fetched once per repository within it.
pub struct Cycle<'s> {
    scanner: &'s Scanner,
    lists: Mutex<HashMap<String, Shared<Arc<TagList>>>>,
}

impl Scanner {
    /// A scanner over `client`.
    pub fn new(client: Client) -> Self {
        Scanner {
            client,
            meta: Mutex::new(HashMap::new()),
        }
    }

    /// The client, for its stats.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Starts a cycle.
    pub fn cycle(&self) -> Cycle<'_> {
        Cycle {
            scanner: self,
            lists: Mutex::new(HashMap::new()),
        }
    }

    /// Every cached digest's metadata, to persist between runs.
    pub fn export(&self) -> Vec<(Digest, DigestMeta)> {
        self.meta
            .lock()
            .map(|m| m.iter().map(|(d, v)| (d.clone(), (**v).clone())).collect())
            .unwrap_or_default()
    }

    /// Seeds the cache (a digest's metadata never changes, so it can be kept forever).
    pub fn import(&self, entries: impl IntoIterator<Item = (Digest, DigestMeta)>) {
        if let Ok(mut m) = self.meta.lock() {
            for (d, v) in entries {
                m.insert(d, Arc::new(v));
            }
        }
    }

    /// Digests whose metadata is cached.
    pub fn cached_digests(&self) -> usize {
        self.meta.lock().map_or(0, |m| m.len())
    }

    fn cached(&self, d: &Digest) -> Option<Arc<DigestMeta>> {
        self.meta.lock().ok()?.get(d).cloned()
    }

    fn remember(&self, d: Digest, m: Arc<DigestMeta>) {
        if let Ok(mut map) = self.meta.lock() {
            map.insert(d, m);
        }
    }
}

impl Cycle<'_> {
    /// The repository's tags, fetched at most once in this cycle.
    pub async fn tags(
        &self,
        image: &ImageRef,
        implicit_registry: bool,
    ) -> Result<Arc<TagList>, Error> {
        let ep = self.scanner.client.endpoint(image, implicit_registry);
        let key = format!("{}/{}", ep.base_url, ep.repository);
        let cell = {
            let mut lists = self.lists.lock().map_err(|_| poisoned())?;
            lists.entry(key).or_default().clone()
        };
        let result = cell
            .get_or_init(|| async {
                self.scanner
                    .client
                    .list_tags(&ep)
                    .await
                    .map_err(|e| (e.to_string(), e.is_transient()))
            })
            .await;
        result
            .clone()
            .map_err(|(message, transient)| Error::Shared { message, transient })
    }

    /// Candidates for the policy: every tag, with digests, times and platforms as `needs` asks.
    /// `only` restricts metadata fetching to these tags (the digest strategy's tracked tag).
    pub async fn candidates(
        &self,
        image: &ImageRef,
        implicit_registry: bool,
        needs: Needs,
        only: Option<&str>,
    ) -> Result<(Vec<Candidate>, bool), Error> {
        let list = self.tags(image, implicit_registry).await?;
        let mut out: Vec<Candidate> = list.tags.iter().map(Candidate::new).collect();
        let ep = self.scanner.client.endpoint(image, implicit_registry);
        let mut needs = needs;
        if needs.created && ep.tag_sort != TagSort::None {
            // The registry lists tags in build order: the order stands in for creation times, as
            // argocd-image-updater's `tagsortmode` does, and no config blob is fetched.
            for (c, t) in out
                .iter_mut()
                .zip(order_times(list.tags.len(), ep.tag_sort))
            {
                c.created = Some(t);
            }
            needs.created = false;
        }
        if needs.created || needs.digest || needs.platforms {
            for c in out.iter_mut().filter(|c| only.is_none_or(|t| t == c.tag)) {
                let digest = self.scanner.client.manifest_digest(&ep, &c.tag).await?;
                if needs.created || needs.platforms {
                    let meta = self.digest_meta(&ep, &digest).await?;
                    c.created = meta.created;
                    c.platforms = meta.platforms.clone();
                }
                c.digest = Some(digest);
            }
        }
        Ok((out, list.truncated))
    }

    /// When `tag` was built (its image config's `created`; for an index, its newest
    /// platform's), read from the registry — never the synthetic order of a sorted tag list —
    /// and cached by digest. `None` when the image does not say.
    pub async fn created(
        &self,
        image: &ImageRef,
        implicit_registry: bool,
        tag: &str,
    ) -> Result<Option<Timestamp>, Error> {
        let ep = self.scanner.client.endpoint(image, implicit_registry);
        let digest = self.scanner.client.manifest_digest(&ep, tag).await?;
        Ok(self.digest_meta(&ep, &digest).await?.created)
    }

    async fn digest_meta(
        &self,
        ep: &crate::endpoint::Endpoint,
        digest: &Digest,
    ) -> Result<Arc<DigestMeta>, Error> {
        if let Some(m) = self.scanner.cached(digest) {
            return Ok(m);
        }
        let client = &self.scanner.client;
        let (manifest, _) = client.manifest(ep, &digest.to_string()).await?;
        let meta = match manifest {
            Manifest::Image { config } => {
                let cfg = client.config(ep, &config).await?;
                DigestMeta {
                    created: cfg.created,
                    platforms: cfg.platform.into_iter().collect(),
                }
            }
            Manifest::Index { manifests } => {
                let runnable: Vec<_> = manifests
                    .iter()
                    .filter(|m| !m.platform.as_ref().is_some_and(Platform::is_attestation))
                    .collect();
                // The newest config among the platform images: one more manifest and blob each.
                let mut created: Option<Timestamp> = None;
                for entry in &runnable {
                    if let Some(inner) = self.scanner.cached(&entry.digest) {
                        created = created.max(inner.created);
                        continue;
                    }
                    if let (Manifest::Image { config }, _) =
                        client.manifest(ep, &entry.digest.to_string()).await?
                    {
                        let cfg = client.config(ep, &config).await?;
                        self.scanner.remember(
                            entry.digest.clone(),
                            Arc::new(DigestMeta {
                                created: cfg.created,
                                platforms: cfg.platform.into_iter().collect(),
                            }),
                        );
                        created = created.max(cfg.created);
                    }
                }
                DigestMeta {
                    created,
                    platforms: runnable.iter().filter_map(|m| m.platform.clone()).collect(),
                }
            }
        };
        let meta = Arc::new(meta);
        self.scanner.remember(digest.clone(), meta.clone());
        Ok(meta)
    }
}

/// Synthetic creation times that order `n` tags as a sorted registry lists them.
pub fn order_times(n: usize, sort: TagSort) -> Vec<Timestamp> {
    (0..n)
        .map(|i| {
            let rank = match sort {
                TagSort::LatestFirst => n - i,
                _ => i + 1,
            };
            Timestamp::from_unix_seconds(i64::try_from(rank).unwrap_or(i64::MAX))
        })
        .collect()
}

fn poisoned() -> Error {
    Error::Protocol {
        registry: String::new(),
        what: "scan cache".to_owned(),
        reason: "a scan task panicked".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_registries_stand_in_for_creation_times() {
        let first = order_times(3, TagSort::LatestFirst);
        assert!(first[0] > first[1] && first[1] > first[2]);
        let last = order_times(3, TagSort::LatestLast);
        assert!(last[2] > last[1] && last[1] > last[0]);
    }
}
