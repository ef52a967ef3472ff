//! Git servers over every transport driftwatch supports: `file://`, `git daemon`, smart HTTP
//! through `git http-backend` with basic auth, and SSH through `sshd`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use base64::Engine;

use crate::{TempDir, free_port, wait_for_port};

/// Runs git with a fixed identity, panicking on failure.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "Test")
        .env("GIT_AUTHOR_EMAIL", "test@example.invalid")
        .env("GIT_COMMITTER_NAME", "Test")
        .env("GIT_COMMITTER_EMAIL", "test@example.invalid")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A bare repository with one commit on `main` holding `files`.
pub struct BareRepo {
    _dir: TempDir,
    /// The bare repository's path (`…/repo.git`).
    pub path: PathBuf,
}

impl BareRepo {
    /// Creates the repository.
    pub fn new(files: &[(&str, &str)]) -> Self {
        let dir = TempDir::new("bare");
        let work = dir.path().join("seed");
        std::fs::create_dir_all(&work).unwrap();
        git(&work, &["init", "-q", "-b", "main"]);
        for (path, content) in files {
            let p = work.join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, content).unwrap();
        }
        git(&work, &["add", "-A"]);
        git(&work, &["commit", "-q", "-m", "initial"]);
        let path = dir.path().join("repo.git");
        git(dir.path(), &["clone", "-q", "--bare", "seed", "repo.git"]);
        git(&path, &["config", "http.receivepack", "true"]);
        BareRepo { _dir: dir, path }
    }

    /// `file://` URL.
    pub fn file_url(&self) -> String {
        format!("file://{}", self.path.display())
    }

    /// A file's content on a branch.
    pub fn show(&self, branch: &str, path: &str) -> String {
        git(&self.path, &["show", &format!("{branch}:{path}")])
    }

    /// `git log --format=%s` of a branch, newest first.
    pub fn subjects(&self, branch: &str) -> Vec<String> {
        git(&self.path, &["log", "--format=%s", branch])
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Commits a change to one file directly, as another writer would.
    pub fn commit_elsewhere(&self, path: &str, content: &str, message: &str) {
        let dir = TempDir::new("other-writer");
        git(dir.path(), &["clone", "-q", &self.file_url(), "w"]);
        let w = dir.path().join("w");
        let p = w.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
        git(&w, &["add", "-A"]);
        git(&w, &["commit", "-q", "-m", message]);
        git(&w, &["push", "-q", "origin", "HEAD:main"]);
    }
}

/// `git daemon` serving a directory, push enabled.
pub struct GitDaemon {
    child: Child,
    /// The port it listens on.
    pub port: u16,
}

impl GitDaemon {
    /// Serves `base` (repositories below it are `git://127.0.0.1:port/<name>`).
    pub fn start(base: &Path) -> Self {
        for _ in 0..5 {
            let port = free_port();
            let child = Command::new("git")
                .arg("daemon")
                .arg("--reuseaddr")
                .arg("--export-all")
                .arg("--enable=receive-pack")
                .arg("--listen=127.0.0.1")
                .arg(format!("--port={port}"))
                .arg(format!("--base-path={}", base.display()))
                .arg(base)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start git daemon");
            let mut daemon = GitDaemon { child, port };
            if wait_for_port(port, Duration::from_secs(5)) {
                return daemon;
            }
            let _ = daemon.child.kill();
        }
        panic!("git daemon did not start");
    }
}

impl Drop for GitDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Smart HTTP: a small HTTP/1.1 server that checks basic auth and runs `git http-backend` as a
/// CGI for each request.
pub struct GitHttp {
    stop: Arc<AtomicBool>,
    /// The port it listens on.
    pub port: u16,
}

impl GitHttp {
    /// Serves repositories below `base` at `http://127.0.0.1:port/<name>`, requiring
    /// `user`/`password`.
    pub fn start(base: &Path, user: &str, password: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let expected = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        );
        let base = base.to_path_buf();
        let flag = stop.clone();
        std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let base = base.clone();
                        let expected = expected.clone();
                        std::thread::spawn(move || {
                            let _ = serve(stream, &base, &expected);
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        GitHttp { stop, port }
    }
}

impl Drop for GitHttp {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn serve(stream: TcpStream, base: &Path, expected_auth: &str) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut out = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line)? == 0 {
            return Ok(());
        }
        let mut parts = request_line.split_whitespace();
        let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or("/"));
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line)?;
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
            }
        }
        let header = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        let mut body = Vec::new();
        if let Some(len) = header("content-length").and_then(|l| l.parse::<usize>().ok()) {
            body.resize(len, 0);
            reader.read_exact(&mut body)?;
        } else if header("transfer-encoding").is_some_and(|t| t.contains("chunked")) {
            loop {
                let mut size = String::new();
                reader.read_line(&mut size)?;
                let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
                let mut chunk = vec![0; n + 2];
                reader.read_exact(&mut chunk)?;
                if n == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..n]);
            }
        }
        if header("authorization").as_deref() != Some(expected_auth) {
            out.write_all(b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"git\"\r\nContent-Length: 0\r\n\r\n")?;
            continue;
        }
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let backend = Command::new("git")
            .arg("http-backend")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("GIT_PROJECT_ROOT", base)
            .env("GIT_HTTP_EXPORT_ALL", "1")
            .env("REMOTE_USER", "tester")
            .env("REQUEST_METHOD", method)
            .env("PATH_INFO", path)
            .env("QUERY_STRING", query)
            .env("CONTENT_TYPE", header("content-type").unwrap_or_default())
            .env("CONTENT_LENGTH", body.len().to_string())
            .env(
                "HTTP_CONTENT_ENCODING",
                header("content-encoding").unwrap_or_default(),
            )
            .env("GIT_PROTOCOL", header("git-protocol").unwrap_or_default())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let mut child = backend;
        child.stdin.take().unwrap().write_all(&body)?;
        let cgi = child.wait_with_output()?.stdout;
        let split = cgi
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map(|i| (i, 4))
            .or_else(|| cgi.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2)));
        let (head, payload) = match split {
            Some((i, n)) => (
                String::from_utf8_lossy(&cgi[..i]).into_owned(),
                &cgi[i + n..],
            ),
            None => (String::new(), &cgi[..]),
        };
        let mut status = "200 OK".to_owned();
        let mut response = Vec::new();
        for line in head.lines() {
            if let Some(s) = line.strip_prefix("Status:") {
                status = s.trim().to_owned();
            } else if !line.is_empty() {
                response.extend_from_slice(line.as_bytes());
                response.extend_from_slice(b"\r\n");
            }
        }
        out.write_all(
            format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\n", payload.len()).as_bytes(),
        )?;
        out.write_all(&response)?;
        out.write_all(b"\r\n")?;
        out.write_all(payload)?;
        out.flush()?;
    }
}

/// `sshd` on loopback accepting one generated key, with a known_hosts file for its host key.
pub struct Sshd {
    child: Child,
    dir: TempDir,
    /// The port it listens on.
    pub port: u16,
}

impl Sshd {
    /// Starts sshd; `None` when sshd is not installed.
    pub fn start() -> Option<Self> {
        let sshd = ["/usr/sbin/sshd", "/usr/bin/sshd"]
            .into_iter()
            .find(|p| Path::new(p).exists())?;
        let dir = TempDir::new("sshd");
        let d = dir.path();
        let keygen = |file: &str| {
            let ok = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(d.join(file))
                .status()
                .expect("ssh-keygen");
            assert!(ok.success());
        };
        keygen("host_key");
        keygen("client_key");
        std::fs::copy(d.join("client_key.pub"), d.join("authorized_keys")).unwrap();
        let _ = std::fs::create_dir_all("/run/sshd");
        let user = std::env::var("USER").unwrap_or_else(|_| "root".to_owned());
        for _ in 0..5 {
            let port = free_port();
            let config = format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {hk}\nAuthorizedKeysFile {ak}\n\
                 PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n\
                 PermitRootLogin prohibit-password\nStrictModes no\nPidFile {pid}\n\
                 AllowUsers {user}\nLogLevel ERROR\n",
                hk = d.join("host_key").display(),
                ak = d.join("authorized_keys").display(),
                pid = d.join("sshd.pid").display(),
            );
            std::fs::write(d.join("sshd_config"), config).unwrap();
            let child = Command::new(sshd)
                .arg("-D")
                .arg("-e")
                .arg("-f")
                .arg(d.join("sshd_config"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start sshd");
            if wait_for_port(port, Duration::from_secs(5)) {
                let host_pub = std::fs::read_to_string(d.join("host_key.pub")).unwrap();
                let mut fields = host_pub.split_whitespace();
                let line = format!(
                    "[127.0.0.1]:{port} {} {}\n",
                    fields.next().unwrap(),
                    fields.next().unwrap()
                );
                std::fs::write(d.join("known_hosts"), line).unwrap();
                return Some(Sshd { child, dir, port });
            }
            let mut child = child;
            let _ = child.kill();
        }
        panic!("sshd did not start");
    }

    /// The client's private key.
    pub fn client_key(&self) -> PathBuf {
        self.dir.path().join("client_key")
    }

    /// A known_hosts file holding the server's host key.
    pub fn known_hosts(&self) -> PathBuf {
        self.dir.path().join("known_hosts")
    }

    /// An ssh:// URL for a repository path on this machine.
    pub fn url(&self, repo: &Path) -> String {
        let user = std::env::var("USER").unwrap_or_else(|_| "root".to_owned());
        format!("ssh://{user}@127.0.0.1:{}{}", self.port, repo.display())
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
