//! The HTTP side: auth (anonymous, basic, bearer tokens from the challenge, cached until they
//! expire), politeness (a rate limit and a concurrency bound per registry, retries with
//! exponential backoff and jitter, `429` obeyed with `Retry-After`), timeouts, and bounded reads.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use driftwatch_policy::{Digest, ImageRef};
use reqwest::header::{
    ACCEPT, AUTHORIZATION, CONTENT_TYPE, ETAG, HeaderMap, IF_NONE_MATCH, LINK, RETRY_AFTER,
    WWW_AUTHENTICATE,
};
use reqwest::{Method, Response, StatusCode};
use sha2::{Digest as _, Sha256};
use tokio::sync::{Mutex, Semaphore};

use crate::challenge::Challenge;
use crate::credentials::{Credentials, Source, default_docker_config, from_docker_config};
use crate::endpoint::{Endpoint, RegistriesConf};
use crate::error::Error;
use crate::manifest::{ACCEPT as MANIFEST_TYPES, ImageConfig, Manifest};
use crate::stats::Stats;

/// Tunables; the defaults suit public registries.
#[derive(Clone, Debug)]
pub struct Options {
    /// Requests in flight per registry at most.
    pub max_concurrency: usize,
    /// TCP/TLS connect timeout.
    pub connect_timeout: Duration,
    /// Whole-request timeout, body included: a slow body fails instead of hanging.
    pub request_timeout: Duration,
    /// Retries after a transient failure (network, 5xx, 429).
    pub max_retries: u32,
    /// First backoff; doubles each retry, with jitter.
    pub backoff: Duration,
    /// The longest `Retry-After` obeyed; longer ones fail now and are retried next cycle.
    pub max_retry_after: Duration,
    /// Largest JSON body accepted (manifests, tag pages, configs, tokens).
    pub max_body: usize,
    /// Most tags read from one repository; more are cut with a warning.
    pub max_tags: usize,
    /// Tags asked for per page (`n=`).
    pub page_size: usize,
    /// Credentials for every registry that has none configured (overrides Docker's config).
    pub credentials: Option<Source>,
    /// Reads the Kubernetes Secrets of `pullsecret:` and `secret:` credentials; without it
    /// they are refused with the reason.
    pub secrets: Option<crate::credentials::Secrets>,
    /// How long credentials read from a Secret are kept when the registry names no
    /// `credsexpire`: a rotated Secret is taken within this, as argocd-image-updater reads it
    /// again every cycle.
    pub secret_ttl: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_concurrency: 8,
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_retries: 4,
            backoff: Duration::from_millis(250),
            max_retry_after: Duration::from_secs(60),
            max_body: 4 << 20,
            max_tags: 100_000,
            page_size: 1000,
            credentials: None,
            secrets: None,
            secret_ttl: Duration::from_secs(60),
        }
    }
}

/// A registry's tag list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TagList {
    /// Tags in the registry's order.
    pub tags: Vec<String>,
    /// True when `max_tags` cut the list.
    pub truncated: bool,
}

struct Host {
    sem: Semaphore,
    limiter: Mutex<Option<Bucket>>,
    tokens: Mutex<HashMap<String, (String, Instant)>>,
    challenge: Mutex<Option<Challenge>>,
    creds: Mutex<Option<(Option<Credentials>, Instant)>>,
}

struct Bucket {
    rate: f64,
    tokens: f64,
    last: Instant,
}

/// A registry client shared by every scan; cheap to clone.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    insecure_http: reqwest::Client,
    conf: RegistriesConf,
    options: Options,
    hosts: std::sync::Mutex<HashMap<String, Arc<Host>>>,
    stats: Stats,
    /// Tag lists the registry gave an `ETag` for, by URL: asked for again with
    /// `If-None-Match`, a `304` answers from here, with no body to read or parse.
    etags: std::sync::Mutex<HashMap<String, (String, Arc<TagList>)>>,
}

fn build_http(options: &Options, insecure: bool) -> Result<reqwest::Client, Error> {
    reqwest::Client::builder()
        .connect_timeout(options.connect_timeout)
        .timeout(options.request_timeout)
        .danger_accept_invalid_certs(insecure)
        .user_agent(concat!("driftwatch/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Error::Config {
            source_name: "HTTP client".to_owned(),
            reason: e.to_string(),
        })
}

impl Client {
    /// Builds a client over `registries.conf` (empty for defaults).
    pub fn new(conf: RegistriesConf, options: Options) -> Result<Self, Error> {
        Ok(Client {
            inner: Arc::new(Inner {
                http: build_http(&options, false)?,
                insecure_http: build_http(&options, true)?,
                conf,
                options,
                hosts: std::sync::Mutex::new(HashMap::new()),
                stats: Stats::default(),
                etags: std::sync::Mutex::new(HashMap::new()),
            }),
        })
    }

    /// Request counters.
    pub fn stats(&self) -> &Stats {
        &self.inner.stats
    }

    /// Where `image` is asked about.
    pub fn endpoint(&self, image: &ImageRef, implicit_registry: bool) -> Endpoint {
        self.inner.conf.resolve(image, implicit_registry)
    }

    fn host(&self, ep: &Endpoint) -> Arc<Host> {
        let mut hosts = match self.inner.hosts.lock() {
            Ok(h) => h,
            Err(poisoned) => poisoned.into_inner(),
        };
        // Credentials are cached per host; a repository with its own credentials is its own host.
        let key = match &ep.credentials {
            Some(c) => format!("{}|{c}", ep.registry),
            None => ep.registry.clone(),
        };
        hosts
            .entry(key)
            .or_insert_with(|| {
                Arc::new(Host {
                    sem: Semaphore::new(self.inner.options.max_concurrency.max(1)),
                    limiter: Mutex::new(ep.limit.map(|rate| Bucket {
                        rate,
                        tokens: rate.max(1.0),
                        last: Instant::now(),
                    })),
                    tokens: Mutex::new(HashMap::new()),
                    challenge: Mutex::new(None),
                    creds: Mutex::new(None),
                })
            })
            .clone()
    }

    async fn credentials(&self, ep: &Endpoint, host: &Host) -> Result<Option<Credentials>, Error> {
        let mut cached = host.creds.lock().await;
        let from_secret = ep
            .credentials
            .as_deref()
            .is_some_and(|s| s.starts_with("pullsecret:") || s.starts_with("secret:"));
        let expire = match ep.creds_expire {
            None if from_secret => Some(self.inner.options.secret_ttl),
            other => other,
        };
        if let Some((creds, at)) = cached.as_ref() {
            let fresh = expire.is_none_or(|ttl| at.elapsed() < ttl);
            if fresh {
                return Ok(creds.clone());
            }
        }
        let secrets = self.inner.options.secrets.as_ref().map(|s| &*s.0);
        let creds = match (&ep.credentials, &self.inner.options.credentials) {
            (Some(spec), _) => {
                let source = match secrets {
                    Some(_) => Source::parse_with_secrets(spec)?,
                    None => Source::parse(spec)?,
                };
                source.get_with(&ep.registry, secrets).await?
            }
            (None, Some(source)) => source.get(&ep.registry).await?,
            (None, None) => match default_docker_config() {
                Some(path) => from_docker_config(&path, &ep.registry)
                    .await
                    .unwrap_or(None),
                None => None,
            },
        };
        *cached = Some((creds.clone(), Instant::now()));
        Ok(creds)
    }

    async fn wait_for_rate(&self, host: &Host) {
        loop {
            let wait = {
                let mut guard = host.limiter.lock().await;
                let Some(bucket) = guard.as_mut() else { return };
                let now = Instant::now();
                let elapsed = now.duration_since(bucket.last).as_secs_f64();
                bucket.tokens = (bucket.tokens + elapsed * bucket.rate).min(bucket.rate.max(1.0));
                bucket.last = now;
                if bucket.tokens >= 1.0 {
                    bucket.tokens -= 1.0;
                    return;
                }
                Duration::from_secs_f64((1.0 - bucket.tokens) / bucket.rate)
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// The Authorization header for a request in `scope`, from the last challenge seen.
    async fn authorization(
        &self,
        ep: &Endpoint,
        host: &Host,
        scope: &str,
    ) -> Result<Option<String>, Error> {
        let challenge = host.challenge.lock().await.clone();
        match challenge {
            None => Ok(None),
            Some(c) if c.scheme == "basic" => {
                Ok(self.credentials(ep, host).await?.map(|c| c.basic_header()))
            }
            Some(c) if c.scheme == "bearer" => {
                if let Some((token, expires)) = host.tokens.lock().await.get(scope)
                    && Instant::now() < *expires
                {
                    return Ok(Some(format!("Bearer {token}")));
                }
                let token = self.fetch_token(ep, host, &c, scope).await?;
                Ok(Some(format!("Bearer {token}")))
            }
            Some(c) => Err(Error::Auth {
                registry: ep.registry.clone(),
                reason: format!("unsupported authentication scheme {:?}", c.scheme),
            }),
        }
    }

    async fn fetch_token(
        &self,
        ep: &Endpoint,
        host: &Host,
        c: &Challenge,
        scope: &str,
    ) -> Result<String, Error> {
        let auth_err = |reason: String| Error::Auth {
            registry: ep.registry.clone(),
            reason,
        };
        let realm = c
            .param("realm")
            .ok_or_else(|| auth_err("bearer challenge without realm".to_owned()))?;
        let mut url = reqwest::Url::parse(realm)
            .map_err(|_| auth_err(format!("invalid token realm {realm:?}")))?;
        {
            let mut q = url.query_pairs_mut();
            if let Some(service) = c.param("service") {
                q.append_pair("service", service);
            }
            if !scope.is_empty() {
                q.append_pair("scope", scope);
            }
        }
        let creds = self.credentials(ep, host).await?;
        let mut attempt = 0;
        let response = loop {
            let mut req = self.http_for(ep).get(url.clone());
            if let Some(c) = &creds {
                req = req.header(AUTHORIZATION, c.basic_header());
            }
            match req.send().await {
                Ok(r) => {
                    self.inner
                        .stats
                        .add(&ep.registry, "token", r.status().as_str());
                    if r.status().is_server_error() && attempt < self.inner.options.max_retries {
                        attempt += 1;
                        let wait = self.backoff(attempt);
                        log_retry(
                            ep,
                            "token",
                            attempt,
                            wait,
                            &format!("HTTP {}", r.status().as_u16()),
                        );
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                    break r;
                }
                Err(e) => {
                    self.inner.stats.add(&ep.registry, "token", "error");
                    if attempt < self.inner.options.max_retries
                        && (e.is_timeout() || e.is_connect())
                    {
                        attempt += 1;
                        let wait = self.backoff(attempt);
                        log_retry(ep, "token", attempt, wait, &describe(&e));
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                    return Err(auth_err(format!(
                        "token endpoint unreachable: {}",
                        describe(&e)
                    )));
                }
            }
        };
        let status = response.status();
        if !status.is_success() {
            return Err(auth_err(format!(
                "token endpoint answered HTTP {}{}",
                status.as_u16(),
                if creds.is_some() {
                    " (credentials refused?)"
                } else {
                    " (credentials needed?)"
                }
            )));
        }
        let body = self.read_body(response, ep, "token").await?;
        #[derive(serde::Deserialize)]
        struct TokenAnswer {
            token: Option<String>,
            access_token: Option<String>,
            expires_in: Option<u64>,
        }
        let answer: TokenAnswer = serde_json::from_slice(&body)
            .map_err(|_| auth_err("token endpoint answered invalid JSON".to_owned()))?;
        let token = answer
            .token
            .or(answer.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| auth_err("token endpoint answered no token".to_owned()))?;
        // Renew a little early; the spec's default lifetime is 60 s.
        let ttl = answer.expires_in.unwrap_or(60).max(10);
        host.tokens.lock().await.insert(
            scope.to_owned(),
            (
                token.clone(),
                Instant::now() + Duration::from_secs(ttl - ttl / 10),
            ),
        );
        Ok(token)
    }

    fn http_for(&self, ep: &Endpoint) -> &reqwest::Client {
        if ep.insecure {
            &self.inner.insecure_http
        } else {
            &self.inner.http
        }
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let base = self
            .inner
            .options
            .backoff
            .saturating_mul(1 << attempt.min(8));
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        // Up to 50% jitter so clients that failed together do not retry together.
        base + base.mul_f64(f64::from(nanos % 1000) / 2000.0)
    }

    /// Sends a request with auth, rate limit, concurrency bound and retries; returns a response
    /// whose status is not 401/429/5xx (those are handled or turned into errors here).
    async fn send(
        &self,
        ep: &Endpoint,
        endpoint: &'static str,
        method: Method,
        url: &str,
        accept: &[&str],
        what: &str,
    ) -> Result<Response, Error> {
        self.send_if(ep, endpoint, method, url, accept, None, what)
            .await
    }

    /// [`Client::send`] with `If-None-Match: etag` when given.
    #[allow(clippy::too_many_arguments)]
    async fn send_if(
        &self,
        ep: &Endpoint,
        endpoint: &'static str,
        method: Method,
        url: &str,
        accept: &[&str],
        etag: Option<&str>,
        what: &str,
    ) -> Result<Response, Error> {
        let host = self.host(ep);
        let scope = format!("repository:{}:pull", ep.repository);
        let options = &self.inner.options;
        let mut attempt = 0u32;
        let mut auth_retried = false;
        loop {
            self.wait_for_rate(&host).await;
            let permit = host.sem.acquire().await.map_err(|_| Error::Transport {
                registry: ep.registry.clone(),
                what: what.to_owned(),
                reason: "client shut down".to_owned(),
            })?;
            let mut req = self.http_for(ep).request(method.clone(), url);
            if !accept.is_empty() {
                req = req.header(ACCEPT, accept.join(", "));
            }
            if let Some(etag) = etag {
                req = req.header(IF_NONE_MATCH, etag);
            }
            if let Some(auth) = self.authorization(ep, &host, &scope).await? {
                req = req.header(AUTHORIZATION, auth);
            }
            let result = req.send().await;
            drop(permit);
            let transient = match result {
                Err(e) => {
                    self.inner.stats.add(&ep.registry, endpoint, "error");
                    if !(e.is_timeout() || e.is_connect() || e.is_request() || e.is_body()) {
                        return Err(Error::Transport {
                            registry: ep.registry.clone(),
                            what: what.to_owned(),
                            reason: describe(&e),
                        });
                    }
                    Error::Transport {
                        registry: ep.registry.clone(),
                        what: what.to_owned(),
                        reason: describe(&e),
                    }
                }
                Ok(resp) => {
                    let status = resp.status();
                    self.inner
                        .stats
                        .add(&ep.registry, endpoint, status.as_str());
                    if status == StatusCode::UNAUTHORIZED && !auth_retried {
                        let challenge = resp
                            .headers()
                            .get(WWW_AUTHENTICATE)
                            .and_then(|v| v.to_str().ok())
                            .and_then(Challenge::parse)
                            .ok_or_else(|| Error::Auth {
                                registry: ep.registry.clone(),
                                reason: "401 without a WWW-Authenticate challenge".to_owned(),
                            })?;
                        *host.challenge.lock().await = Some(challenge);
                        host.tokens.lock().await.remove(&scope);
                        auth_retried = true;
                        continue;
                    }
                    if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
                        let creds = self.credentials(ep, &host).await?.is_some();
                        return Err(Error::Auth {
                            registry: ep.registry.clone(),
                            reason: format!(
                                "{what}: HTTP {} {}",
                                status.as_u16(),
                                if creds {
                                    "with the configured credentials"
                                } else {
                                    "without credentials"
                                }
                            ),
                        });
                    }
                    if status == StatusCode::TOO_MANY_REQUESTS {
                        let wait = retry_after(resp.headers())
                            .unwrap_or_else(|| self.backoff(attempt + 1));
                        if wait > options.max_retry_after || attempt >= options.max_retries {
                            return Err(Error::Status {
                                registry: ep.registry.clone(),
                                what: what.to_owned(),
                                status: 429,
                                detail: format!(
                                    " (rate limited; retry after {} s)",
                                    wait.as_secs()
                                ),
                            });
                        }
                        attempt += 1;
                        tracing::info!(
                            registry = %ep.registry,
                            what,
                            attempt,
                            retry_in_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                            "rate limited (429): retrying when Retry-After says"
                        );
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                    if status.is_server_error() {
                        Error::Status {
                            registry: ep.registry.clone(),
                            what: what.to_owned(),
                            status: status.as_u16(),
                            detail: String::new(),
                        }
                    } else {
                        return Ok(resp);
                    }
                }
            };
            if attempt >= options.max_retries {
                return Err(transient);
            }
            attempt += 1;
            let wait = self.backoff(attempt);
            log_retry(ep, what, attempt, wait, &transient.to_string());
            tokio::time::sleep(wait).await;
        }
    }

    /// [`Client::send_if`] and, for a success, the whole body, retried together: a body cut
    /// short or reset half-way is as transient as a reset before the answer, and costs one more
    /// request rather than a failed image until the next cycle. Any other status comes back
    /// with its headers and an empty body, for the caller to judge.
    async fn fetch(
        &self,
        ep: &Endpoint,
        endpoint: &'static str,
        url: &str,
        accept: &[&str],
        etag: Option<&str>,
        what: &str,
    ) -> Result<(StatusCode, HeaderMap, Vec<u8>), Error> {
        let mut attempt = 0u32;
        loop {
            let resp = self
                .send_if(ep, endpoint, Method::GET, url, accept, etag, what)
                .await?;
            let (status, headers) = (resp.status(), resp.headers().clone());
            if !status.is_success() {
                return Ok((status, headers, Vec::new()));
            }
            match self.read_body(resp, ep, what).await {
                Ok(body) => return Ok((status, headers, body)),
                Err(e @ Error::Transport { .. }) if attempt < self.inner.options.max_retries => {
                    attempt += 1;
                    let wait = self.backoff(attempt);
                    log_retry(ep, what, attempt, wait, &e.to_string());
                    tokio::time::sleep(wait).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads a body of at most `max_body` bytes; a larger one (declared or actual) is an error
    /// before it is buffered.
    async fn read_body(
        &self,
        mut resp: Response,
        ep: &Endpoint,
        what: &str,
    ) -> Result<Vec<u8>, Error> {
        let limit = self.inner.options.max_body;
        let too_large = || Error::TooLarge {
            registry: ep.registry.clone(),
            what: what.to_owned(),
            limit,
        };
        if resp.content_length().is_some_and(|n| n > limit as u64) {
            return Err(too_large());
        }
        let mut body = Vec::new();
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > limit {
                        return Err(too_large());
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => return Ok(body),
                Err(e) => {
                    return Err(Error::Transport {
                        registry: ep.registry.clone(),
                        what: what.to_owned(),
                        reason: format!("reading the body: {}", describe(&e)),
                    });
                }
            }
        }
    }

    fn expect_ok(status: StatusCode, ep: &Endpoint, what: &str) -> Result<(), Error> {
        if status.is_success() {
            return Ok(());
        }
        Err(Error::Status {
            registry: ep.registry.clone(),
            what: what.to_owned(),
            status: status.as_u16(),
            detail: if status == StatusCode::NOT_FOUND {
                " (not found)".to_owned()
            } else {
                String::new()
            },
        })
    }

    /// `GET /v2/`: reachable, and which auth it wants.
    pub async fn ping(&self, ep: &Endpoint) -> Result<(), Error> {
        let url = format!("{}/v2/", ep.base_url);
        let resp = self
            .send(ep, "ping", Method::GET, &url, &[], "ping")
            .await?;
        Self::expect_ok(resp.status(), ep, "ping")
    }

    /// Every tag of the repository, following `Link` pages to the end (capped at `max_tags`).
    /// A one-page list that came with an `ETag` is asked for conditionally the next time: the
    /// same one request, but a `304` is answered from memory.
    pub async fn list_tags(&self, ep: &Endpoint) -> Result<Arc<TagList>, Error> {
        let what = format!("listing tags of {}", ep.repository);
        let first = format!(
            "{}/v2/{}/tags/list?n={}",
            ep.base_url, ep.repository, self.inner.options.page_size
        );
        let known = self
            .inner
            .etags
            .lock()
            .ok()
            .and_then(|m| m.get(&first).cloned());
        let mut url = first.clone();
        let mut tags: Vec<String> = Vec::new();
        let mut seen_pages = std::collections::HashSet::new();
        loop {
            if !seen_pages.insert(url.clone()) {
                return Err(Error::Protocol {
                    registry: ep.registry.clone(),
                    what,
                    reason: "the Link header loops back to a page already read".to_owned(),
                });
            }
            let etag = known
                .as_ref()
                .filter(|_| url == first)
                .map(|(e, _)| e.as_str());
            let (status, headers, body) = self
                .fetch(ep, "tags", &url, &["application/json"], etag, &what)
                .await?;
            if status == StatusCode::NOT_MODIFIED
                && let Some((_, list)) = known.as_ref().filter(|_| url == first)
            {
                return Ok(list.clone());
            }
            Self::expect_ok(status, ep, &what)?;
            // Kept only for a list that is whole in this one response.
            let new_etag = (url == first)
                .then(|| headers.get(ETAG)?.to_str().ok().map(str::to_owned))
                .flatten();
            let next = headers
                .get(LINK)
                .and_then(|v| v.to_str().ok())
                .and_then(next_link)
                .map(|link| resolve(&ep.base_url, &link));
            #[derive(serde::Deserialize)]
            struct Page {
                tags: Option<Vec<String>>,
            }
            let page: Page = serde_json::from_slice(&body).map_err(|e| Error::Protocol {
                registry: ep.registry.clone(),
                what: what.clone(),
                reason: format!("tag list is not valid JSON: {e}"),
            })?;
            tags.extend(page.tags.unwrap_or_default());
            if tags.len() >= self.inner.options.max_tags {
                tags.truncate(self.inner.options.max_tags);
                self.remember_etag(&first, None);
                return Ok(Arc::new(TagList {
                    tags,
                    truncated: true,
                }));
            }
            match next {
                Some(n) => url = n,
                None => {
                    let list = Arc::new(TagList {
                        tags,
                        truncated: false,
                    });
                    let single = seen_pages.len() == 1;
                    self.remember_etag(
                        &first,
                        new_etag.filter(|_| single).map(|e| (e, list.clone())),
                    );
                    return Ok(list);
                }
            }
        }
    }

    /// Keeps (or, with `None`, forgets) the `ETag` of the tag list at `url`.
    fn remember_etag(&self, url: &str, entry: Option<(String, Arc<TagList>)>) {
        if let Ok(mut m) = self.inner.etags.lock() {
            match entry {
                Some(e) => {
                    m.insert(url.to_owned(), e);
                }
                None => {
                    m.remove(url);
                }
            }
        }
    }

    /// The digest of a tag's manifest, by `HEAD` (`Docker-Content-Digest`), else by hashing `GET`.
    pub async fn manifest_digest(&self, ep: &Endpoint, reference: &str) -> Result<Digest, Error> {
        let what = format!("manifest {}:{reference}", ep.repository);
        let url = format!("{}/v2/{}/manifests/{reference}", ep.base_url, ep.repository);
        let resp = self
            .send(
                ep,
                "manifest_head",
                Method::HEAD,
                &url,
                MANIFEST_TYPES,
                &what,
            )
            .await?;
        Self::expect_ok(resp.status(), ep, &what)?;
        if let Some(d) = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .and_then(|s| Digest::parse(s.trim()).ok())
        {
            return Ok(d);
        }
        let (_, digest) = self.manifest(ep, reference).await?;
        Ok(digest)
    }

    /// A manifest and its digest. When asked by digest, the body is checked against it.
    pub async fn manifest(
        &self,
        ep: &Endpoint,
        reference: &str,
    ) -> Result<(Manifest, Digest), Error> {
        let what = format!("manifest {}:{reference}", ep.repository);
        let url = format!("{}/v2/{}/manifests/{reference}", ep.base_url, ep.repository);
        let (status, headers, body) = self
            .fetch(ep, "manifest", &url, MANIFEST_TYPES, None, &what)
            .await?;
        Self::expect_ok(status, ep, &what)?;
        let content_type = headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let digest = sha256_digest(&body)?;
        if reference.starts_with("sha256:") && reference != digest.to_string() {
            return Err(Error::Protocol {
                registry: ep.registry.clone(),
                what,
                reason: format!("the body hashes to {digest}, not the digest asked for"),
            });
        }
        let manifest =
            Manifest::parse(&body, content_type.as_deref()).map_err(|reason| Error::Protocol {
                registry: ep.registry.clone(),
                what,
                reason,
            })?;
        Ok((manifest, digest))
    }

    /// An image config blob's creation time and platform.
    pub async fn config(&self, ep: &Endpoint, digest: &Digest) -> Result<ImageConfig, Error> {
        let what = format!("config blob {digest} of {}", ep.repository);
        let url = format!("{}/v2/{}/blobs/{digest}", ep.base_url, ep.repository);
        let (status, _, body) = self.fetch(ep, "blob", &url, &[], None, &what).await?;
        Self::expect_ok(status, ep, &what)?;
        if sha256_digest(&body)? != *digest {
            return Err(Error::Protocol {
                registry: ep.registry.clone(),
                what,
                reason: "the blob does not hash to its digest".to_owned(),
            });
        }
        ImageConfig::parse(&body).map_err(|reason| Error::Protocol {
            registry: ep.registry.clone(),
            what,
            reason,
        })
    }
}

fn sha256_digest(body: &[u8]) -> Result<Digest, Error> {
    let hex: String = Sha256::digest(body)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok(Digest::parse(&format!("sha256:{hex}"))?)
}

/// One line per retry, at info: an operator reading the log sees what failed and when it is
/// tried again, not only the errors that remain. `error` is this crate's message, which never
/// holds credentials.
fn log_retry(ep: &Endpoint, what: &str, attempt: u32, wait: Duration, error: &str) {
    tracing::info!(
        registry = %ep.registry,
        what,
        attempt,
        retry_in_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
        error,
        "registry request failed; retrying"
    );
}

/// `Retry-After` as seconds or an HTTP date.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    // All three HTTP date forms (IMF-fixdate, RFC 850, asctime); a date passed means now.
    let when = httpdate::parse_http_date(value).ok()?;
    Some(
        when.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// The `rel="next"` target of a `Link` header.
fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        params
            .split(';')
            .any(|p| {
                let p = p.trim().replace(' ', "");
                p == "rel=\"next\"" || p == "rel=next"
            })
            .then(|| target.to_owned())
    })
}

fn resolve(base: &str, link: &str) -> String {
    if link.starts_with("http://") || link.starts_with("https://") {
        link.to_owned()
    } else if link.starts_with('/') {
        format!("{base}{link}")
    } else {
        format!("{base}/{link}")
    }
}

/// An error's message with its causes, without the URL (which may carry a token query).
fn describe(e: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut msg = if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "connection failed".to_owned()
    } else {
        "request failed".to_owned()
    };
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !msg.contains(&text) {
            msg.push_str(": ");
            msg.push_str(&text);
        }
        source = s.source();
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Secret in memory that counts its reads.
    struct Counting(std::sync::atomic::AtomicUsize);

    impl crate::credentials::SecretReader for Counting {
        fn read<'a>(&'a self, _: &'a str, _: &'a str) -> crate::credentials::SecretRead<'a> {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Box::pin(async {
                Ok(Some(crate::credentials::SecretData::from([(
                    "creds".to_owned(),
                    b"bot:pw".to_vec(),
                )])))
            })
        }
    }

    #[tokio::test]
    async fn secret_credentials_are_read_again_after_their_ttl() {
        for (ttl, reads) in [(Duration::from_secs(60), 1), (Duration::ZERO, 3)] {
            let counter = Arc::new(Counting(std::sync::atomic::AtomicUsize::new(0)));
            let client = Client::new(
                RegistriesConf::default(),
                Options {
                    secrets: Some(crate::credentials::Secrets(counter.clone())),
                    secret_ttl: ttl,
                    ..Options::default()
                },
            )
            .unwrap();
            let mut ep = client.endpoint(
                &driftwatch_policy::ImageRef::parse("reg.local/team/api").unwrap(),
                false,
            );
            ep.credentials = Some("secret:ns/pair#creds".to_owned());
            let host = client.host(&ep);
            for _ in 0..3 {
                let c = client.credentials(&ep, &host).await.unwrap().unwrap();
                assert_eq!(c.username, "bot");
            }
            assert_eq!(
                counter.0.load(std::sync::atomic::Ordering::SeqCst),
                reads,
                "{ttl:?}"
            );
        }
    }

    #[test]
    fn link_headers() {
        assert_eq!(
            next_link(r#"</v2/app/tags/list?n=2&last=b>; rel="next""#).as_deref(),
            Some("/v2/app/tags/list?n=2&last=b")
        );
        assert_eq!(
            next_link(r#"<https://x/a>; rel="prev", <https://x/b>; rel=next"#).as_deref(),
            Some("https://x/b")
        );
        assert_eq!(next_link("garbage"), None);
        assert_eq!(resolve("http://h:1", "/v2/x"), "http://h:1/v2/x");
    }

    #[test]
    fn retry_after_forms() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert(
            RETRY_AFTER,
            "Sun, 06 Nov 1994 08:49:37 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&h), Some(Duration::ZERO), "in the past: now");
        // A date ahead: waited until then.
        let ahead =
            httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(120));
        h.insert(RETRY_AFTER, ahead.parse().unwrap());
        let wait = retry_after(&h).unwrap();
        assert!(
            wait > Duration::from_secs(100) && wait <= Duration::from_secs(120),
            "{ahead}: {wait:?}"
        );
        h.insert(
            RETRY_AFTER,
            "Sunday, 06-Nov-94 08:49:37 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&h), Some(Duration::ZERO), "RFC 850 form");
        h.insert(RETRY_AFTER, "Sun Nov  6 08:49:37 1994".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::ZERO), "asctime form");
        h.insert(RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&h), None);
    }
}
