//! Debian's `docker-registry` (CNCF distribution 2.8) on loopback: anonymous, htpasswd basic
//! auth, or bearer tokens from a token server here; images pushed over its API; a paging proxy
//! (2.8 ignores `?n=`); and a misbehaving registry for fault tests.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine;
use sha2::{Digest, Sha256};

use crate::http::{Reply, Request, Server, request};
use crate::{TempDir, free_port, wait_for_port};

/// How the registry authenticates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Auth {
    /// Anonymous.
    None,
    /// htpasswd basic auth with this user and password.
    Basic(String, String),
    /// Bearer tokens from a token server that checks this user and password.
    Token(String, String),
}

/// A running registry.
pub struct Registry {
    child: Child,
    _dir: TempDir,
    _token: Option<Server>,
    /// The port.
    pub port: u16,
    /// Its auth.
    pub auth: Auth,
    key: PathBuf,
    cert_der: Vec<u8>,
}

fn sha256_hex(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

fn b64url(b: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().expect("run command");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

impl Registry {
    /// Starts `docker-registry` with a temp storage dir.
    pub fn start(auth: Auth) -> Self {
        let dir = TempDir::new("registry");
        let d = dir.path().to_path_buf();
        let key = d.join("token.key");
        let cert = d.join("token.pem");
        run(Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=driftwatch-testkit",
            ])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .stderr(Stdio::piped()));
        let cert_der = run(Command::new("openssl")
            .args(["x509", "-outform", "DER", "-in"])
            .arg(&cert));

        let mut token_server = None;
        let auth_section = match &auth {
            Auth::None => String::new(),
            Auth::Basic(user, pass) => {
                let line = run(Command::new("htpasswd").args(["-Bbn", user, pass]));
                std::fs::write(d.join("htpasswd"), line).expect("write htpasswd");
                format!(
                    "auth:\n  htpasswd:\n    realm: driftwatch-test\n    path: {}\n",
                    d.join("htpasswd").display()
                )
            }
            Auth::Token(user, pass) => {
                let server =
                    token_server_for(key.clone(), cert_der.clone(), user.clone(), pass.clone());
                let section = format!(
                    "auth:\n  token:\n    realm: {}/token\n    service: driftwatch-test\n    issuer: driftwatch-testkit\n    rootcertbundle: {}\n",
                    server.url(),
                    cert.display()
                );
                token_server = Some(server);
                section
            }
        };
        for _ in 0..5 {
            let port = free_port();
            let config = format!(
                "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: testkit-secret\n{auth_section}",
                d.join("storage").display()
            );
            std::fs::write(d.join("config.yml"), config).expect("write config");
            let mut child = Command::new("docker-registry")
                .arg("serve")
                .arg(d.join("config.yml"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start docker-registry (apt-get install docker-registry)");
            if wait_for_port(port, Duration::from_secs(10)) {
                return Registry {
                    child,
                    _dir: dir,
                    _token: token_server,
                    port,
                    auth,
                    key,
                    cert_der,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("docker-registry did not start");
    }

    /// `127.0.0.1:port`
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn auth_header(&self, repo: &str) -> Option<String> {
        match &self.auth {
            Auth::None => None,
            Auth::Basic(u, p) => Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
            )),
            Auth::Token(..) => Some(format!(
                "Bearer {}",
                sign_token(
                    &self.key,
                    &self.cert_der,
                    "pusher",
                    &format!("repository:{repo}:pull,push")
                )
            )),
        }
    }

    fn put_blob(&self, repo: &str, blob: &[u8]) -> String {
        let digest = format!("sha256:{}", sha256_hex(blob));
        let auth = self.auth_header(repo);
        let mut headers: Vec<(&str, &str)> = Vec::new();
        if let Some(a) = &auth {
            headers.push(("Authorization", a));
        }
        let base = format!("http://{}", self.host());
        let (status, resp, _) = request(
            "POST",
            &format!("{base}/v2/{repo}/blobs/uploads/"),
            &headers,
            b"",
        )
        .expect("start upload");
        assert_eq!(status, 202, "start upload");
        let location = resp.get("location").expect("upload location").clone();
        let location = if location.starts_with("http") {
            location
        } else {
            format!("{base}{location}")
        };
        let sep = if location.contains('?') { '&' } else { '?' };
        let mut put_headers = headers.clone();
        put_headers.push(("Content-Type", "application/octet-stream"));
        let (status, _, body) = request(
            "PUT",
            &format!("{location}{sep}digest={digest}"),
            &put_headers,
            blob,
        )
        .expect("upload");
        assert_eq!(
            status,
            201,
            "upload blob: {}",
            String::from_utf8_lossy(&body)
        );
        digest
    }

    fn put_manifest(&self, repo: &str, reference: &str, media_type: &str, body: &[u8]) -> String {
        let auth = self.auth_header(repo);
        let mut headers: Vec<(&str, &str)> = vec![("Content-Type", media_type)];
        if let Some(a) = &auth {
            headers.push(("Authorization", a));
        }
        let url = format!("http://{}/v2/{repo}/manifests/{reference}", self.host());
        let (status, _, resp) = request("PUT", &url, &headers, body).expect("put manifest");
        assert_eq!(
            status,
            201,
            "put manifest: {}",
            String::from_utf8_lossy(&resp)
        );
        format!("sha256:{}", sha256_hex(body))
    }

    fn image_manifest(
        &self,
        repo: &str,
        os: &str,
        arch: &str,
        variant: &str,
        created: &str,
    ) -> (Vec<u8>, String) {
        let layer = format!("layer {repo} {os}/{arch}{variant} {created}").into_bytes();
        let layer_digest = self.put_blob(repo, &layer);
        let variant_field = if variant.is_empty() {
            String::new()
        } else {
            format!(r#","variant":"{variant}""#)
        };
        let config = format!(
            r#"{{"architecture":"{arch}","os":"{os}"{variant_field},"created":"{created}","rootfs":{{"type":"layers","diff_ids":["{layer_digest}"]}},"config":{{}}}}"#
        );
        let config_digest = self.put_blob(repo, config.as_bytes());
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{{"mediaType":"application/vnd.docker.container.image.v1+json","size":{},"digest":"{config_digest}"}},"layers":[{{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":{},"digest":"{layer_digest}"}}]}}"#,
            config.len(),
            layer.len()
        );
        let digest = format!("sha256:{}", sha256_hex(manifest.as_bytes()));
        (manifest.into_bytes(), digest)
    }

    /// The registry's push notification (the distribution envelope, as `POST /webhook` takes
    /// it) for `repository:tag` at `digest`.
    pub fn push_event(&self, repository: &str, digest: &str, tag: &str) -> String {
        format!(
            r#"{{"events":[{{"action":"push","target":{{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","repository":"{repository}","digest":"{digest}","tag":"{tag}"}},"request":{{"host":"{}"}}}}]}}"#,
            self.host()
        )
    }

    /// Pushes a single-platform image (linux/amd64) built at `created`; returns its digest.
    pub fn push_image(&self, repo: &str, tag: &str, created: &str) -> String {
        let (manifest, _) = self.image_manifest(repo, "linux", "amd64", "", created);
        self.put_manifest(
            repo,
            tag,
            "application/vnd.docker.distribution.manifest.v2+json",
            &manifest,
        )
    }

    /// Pushes a multi-platform OCI index (plus an attestation entry); returns its digest.
    pub fn push_index(&self, repo: &str, tag: &str, platforms: &[&str], created: &str) -> String {
        let mut entries = Vec::new();
        for p in platforms {
            let parts: Vec<&str> = p.split('/').collect();
            let (os, arch, variant) = (parts[0], parts[1], parts.get(2).copied().unwrap_or(""));
            let (manifest, digest) = self.image_manifest(repo, os, arch, variant, created);
            self.put_manifest(
                repo,
                &digest,
                "application/vnd.docker.distribution.manifest.v2+json",
                &manifest,
            );
            let variant_field = if variant.is_empty() {
                String::new()
            } else {
                format!(r#","variant":"{variant}""#)
            };
            entries.push(format!(
                r#"{{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","size":{},"digest":"{digest}","platform":{{"architecture":"{arch}","os":"{os}"{variant_field}}}}}"#,
                manifest.len()
            ));
        }
        let (att, att_digest) = self.image_manifest(repo, "unknown", "unknown", "", created);
        self.put_manifest(
            repo,
            &att_digest,
            "application/vnd.docker.distribution.manifest.v2+json",
            &att,
        );
        entries.push(format!(
            r#"{{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","size":{},"digest":"{att_digest}","platform":{{"architecture":"unknown","os":"unknown"}}}}"#,
            att.len()
        ));
        let index = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{}]}}"#,
            entries.join(",")
        );
        self.put_manifest(
            repo,
            tag,
            "application/vnd.oci.image.index.v1+json",
            index.as_bytes(),
        )
    }

    /// Pushes a Helm chart `name` at `version` to `repo` as Helm pushes one: an OCI image
    /// manifest whose config is the chart's metadata (`application/vnd.cncf.helm.config.v1+json`)
    /// and whose one layer is the packaged chart (`application/vnd.cncf.helm.chart.content.v1.tar+gzip`,
    /// a real `.tgz` of `name/Chart.yaml` and a template, made by `tar`), tagged with the
    /// version's `+` written as `_`. Returns the manifest digest.
    pub fn push_chart(&self, repo: &str, name: &str, version: &str) -> String {
        let chart_yaml = format!(
            "apiVersion: v2\nname: {name}\nversion: {version}\ndescription: A test chart\ntype: application\n"
        );
        let dir = TempDir::new("chart");
        let root = dir.path().join(name);
        std::fs::create_dir_all(root.join("templates")).expect("chart dir");
        std::fs::write(root.join("Chart.yaml"), &chart_yaml).expect("Chart.yaml");
        std::fs::write(
            root.join("templates/configmap.yaml"),
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\ndata:\n  version: {{ .Chart.Version | quote }}\n",
        )
        .expect("template");
        let tgz = run(Command::new("tar").current_dir(dir.path()).args([
            "--sort=name",
            "--mtime=@0",
            "--owner=0",
            "--group=0",
            "--numeric-owner",
            "-czf",
            "-",
            name,
        ]));
        assert!(tgz.starts_with(&[0x1f, 0x8b]), "tar wrote no gzip stream");
        let layer = self.put_blob(repo, &tgz);
        let config = format!(
            r#"{{"apiVersion":"v2","name":"{name}","version":"{version}","description":"A test chart","type":"application"}}"#
        );
        let config_digest = self.put_blob(repo, config.as_bytes());
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.cncf.helm.config.v1+json","digest":"{config_digest}","size":{}}},"layers":[{{"mediaType":"application/vnd.cncf.helm.chart.content.v1.tar+gzip","digest":"{layer}","size":{}}}],"annotations":{{"org.opencontainers.image.title":"{name}","org.opencontainers.image.version":"{version}"}}}}"#,
            config.len(),
            tgz.len()
        );
        self.put_manifest(
            repo,
            &version.replace('+', "_"),
            "application/vnd.oci.image.manifest.v1+json",
            manifest.as_bytes(),
        )
    }

    /// Pushes one image and gives every tag in `tags` its manifest (one PUT per tag).
    pub fn push_tags(&self, repo: &str, tags: &[String], created: &str) {
        let (manifest, _) = self.image_manifest(repo, "linux", "amd64", "", created);
        for tag in tags {
            self.put_manifest(
                repo,
                tag,
                "application/vnd.docker.distribution.manifest.v2+json",
                &manifest,
            );
        }
    }

    /// Seeds many repositories with many tags fast, for scale runs: one real push of an image
    /// to `repos[0]`, then the registry's own storage layout (filesystem driver) written for
    /// every repository and tag, as its pushes would have left it. The registry serves them as
    /// any other; pushing 40,000 tags one `PUT` at a time would take most of an hour.
    pub fn seed_on_disk(&self, repos: &[String], tags: &[String], created: &str) {
        let Some(first) = repos.first() else { return };
        let (manifest, _) = self.image_manifest(first, "linux", "amd64", "", created);
        let digest = self.put_manifest(
            first,
            &tags[0],
            "application/vnd.docker.distribution.manifest.v2+json",
            &manifest,
        );
        let hex = digest.trim_start_matches("sha256:");
        let root = self
            ._dir
            .path()
            .join("storage/docker/registry/v2/repositories");
        let template = root.join(first);
        for repo in repos {
            let dir = root.join(repo);
            if dir != template {
                for part in ["_layers", "_manifests/revisions"] {
                    copy_tree(&template.join(part), &dir.join(part));
                }
            }
            for tag in tags {
                let t = dir.join("_manifests/tags").join(tag);
                let index = t.join("index/sha256").join(hex);
                std::fs::create_dir_all(&index).expect("tag index dir");
                std::fs::create_dir_all(t.join("current")).expect("tag dir");
                std::fs::write(index.join("link"), &digest).expect("index link");
                std::fs::write(t.join("current/link"), &digest).expect("tag link");
            }
        }
    }

    /// Gives `tag` the manifest of `source` (a retag, as `docker tag && docker push` does).
    pub fn retag(&self, repo: &str, source: &str, tag: &str) {
        let auth = self.auth_header(repo);
        let mut headers: Vec<(&str, &str)> = vec![(
            "Accept",
            "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json",
        )];
        if let Some(a) = &auth {
            headers.push(("Authorization", a));
        }
        let url = format!("http://{}/v2/{repo}/manifests/{source}", self.host());
        let (status, resp, body) = request("GET", &url, &headers, b"").expect("get manifest");
        assert_eq!(status, 200);
        let media = resp.get("content-type").cloned().unwrap_or_default();
        self.put_manifest(repo, tag, &media, &body);
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An RS256 JWT the registry trusts (x5c chain to its root bundle), granting `scope`.
fn sign_token(key: &PathBuf, cert_der: &[u8], subject: &str, scope: &str) -> String {
    let header = format!(
        r#"{{"typ":"JWT","alg":"RS256","x5c":["{}"]}}"#,
        base64::engine::general_purpose::STANDARD.encode(cert_der)
    );
    let mut access = Vec::new();
    for s in scope.split(' ').filter(|s| !s.is_empty()) {
        let parts: Vec<&str> = s.splitn(3, ':').collect();
        if parts.len() == 3 {
            let actions: Vec<String> = parts[2].split(',').map(|a| format!("\"{a}\"")).collect();
            access.push(format!(
                r#"{{"type":"{}","name":"{}","actions":[{}]}}"#,
                parts[0],
                parts[1],
                actions.join(",")
            ));
        }
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let claims = format!(
        r#"{{"iss":"driftwatch-testkit","sub":"{subject}","aud":"driftwatch-test","exp":{},"nbf":{},"iat":{now},"jti":"{now}-{}","access":[{}]}}"#,
        now + 300,
        now - 10,
        std::process::id(),
        access.join(",")
    );
    let signing_input = format!(
        "{}.{}",
        b64url(header.as_bytes()),
        b64url(claims.as_bytes())
    );
    let mut child = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("openssl");
    use std::io::Write;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(signing_input.as_bytes())
        .expect("write");
    let sig = child.wait_with_output().expect("sign").stdout;
    format!("{signing_input}.{}", b64url(&sig))
}

fn token_server_for(key: PathBuf, cert_der: Vec<u8>, user: String, pass: String) -> Server {
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
    );
    Server::start(move |req: &Request| {
        if req.path() != "/token" {
            return Reply::new(404, &[], "");
        }
        if req.header("authorization") != Some(expected.as_str()) {
            return Reply::new(401, &[("WWW-Authenticate", "Basic realm=\"token\"")], "");
        }
        let scope = req.query("scope").unwrap_or_default();
        let token = sign_token(&key, &cert_der, &user, &scope);
        Reply::new(
            200,
            &[("Content-Type", "application/json")],
            format!(r#"{{"token":"{token}","access_token":"{token}","expires_in":300}}"#),
        )
    })
}

/// Forwards to a registry but pages `tags/list` by `n` and `last` with `Link` headers, as newer
/// registries do and distribution 2.8 does not.
pub struct PagingProxy {
    server: Server,
    /// Tag-list pages served.
    pub pages: std::sync::Arc<Mutex<u64>>,
    down: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl PagingProxy {
    /// Proxies `upstream` (`127.0.0.1:port`), serving at most `max_page` tags per page.
    pub fn start(upstream: String, max_page: usize) -> Self {
        let pages = std::sync::Arc::new(Mutex::new(0u64));
        let counter = pages.clone();
        let down = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let is_down = down.clone();
        let server = Server::start(move |req: &Request| {
            if is_down.load(std::sync::atomic::Ordering::Relaxed) {
                return Reply::new(503, &[], "registry down");
            }
            let mut headers: Vec<(String, String)> = Vec::new();
            for name in ["authorization", "accept"] {
                if let Some(v) = req.header(name) {
                    headers.push((name.to_owned(), v.to_owned()));
                }
            }
            let refs: Vec<(&str, &str)> = headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let is_tags = req.method == "GET" && req.path().ends_with("/tags/list");
            let target = if is_tags {
                req.path().to_owned()
            } else {
                req.target.clone()
            };
            let Ok((status, resp_headers, body)) = request(
                &req.method,
                &format!("http://{upstream}{target}"),
                &refs,
                &req.body,
            ) else {
                return Reply::new(502, &[], "");
            };
            let mut out: Vec<(String, String)> = resp_headers
                .iter()
                .filter(|(k, _)| k.as_str() != "content-length" && k.as_str() != "connection")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            if !is_tags || status != 200 {
                return Reply::Full {
                    status,
                    headers: out,
                    body,
                };
            }
            if let Ok(mut n) = counter.lock() {
                *n += 1;
            }
            let parsed: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            let mut tags: Vec<String> = parsed["tags"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|t| t.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            tags.sort();
            let n = req
                .query("n")
                .and_then(|n| n.parse::<usize>().ok())
                .unwrap_or(max_page)
                .min(max_page);
            let start = match req.query("last") {
                Some(last) => tags.iter().position(|t| *t > last).unwrap_or(tags.len()),
                None => 0,
            };
            let page: Vec<String> = tags.iter().skip(start).take(n).cloned().collect();
            if start + page.len() < tags.len()
                && let Some(last) = page.last()
            {
                out.push((
                    "Link".to_owned(),
                    format!("<{}?n={n}&last={last}>; rel=\"next\"", req.path()),
                ));
            }
            let name = parsed["name"].as_str().unwrap_or("");
            Reply::Full {
                status: 200,
                headers: out,
                body: serde_json::json!({"name": name, "tags": page})
                    .to_string()
                    .into_bytes(),
            }
        });
        PagingProxy {
            server,
            pages,
            down,
        }
    }

    /// Makes the registry behind the proxy look dead (503 to everything) or alive again.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, std::sync::atomic::Ordering::Relaxed);
    }

    /// `127.0.0.1:port`
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.server.port)
    }
}

/// Copies a directory tree (files and directories only).
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("dir entry");
        let dest = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_tree(&entry.path(), &dest);
        } else {
            std::fs::copy(entry.path(), dest).expect("copy file");
        }
    }
}
