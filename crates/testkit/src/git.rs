//! Git servers over every transport driftwatch supports: `file://`, `git daemon`, smart HTTP
//! through `git http-backend` with basic auth, and SSH through `sshd`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine;

use crate::http::{Reply, Request, Server};
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
        self.commit_files_elsewhere(&[(path, content)], message);
    }

    /// Commits changes to several files (`(path, content)`) as one commit, as another writer
    /// would.
    pub fn commit_files_elsewhere(&self, files: &[(&str, &str)], message: &str) {
        let dir = TempDir::new("other-writer");
        git(dir.path(), &["clone", "-q", &self.file_url(), "w"]);
        let w = dir.path().join("w");
        for (path, content) in files {
            let p = w.join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, content).unwrap();
        }
        git(&w, &["add", "-A"]);
        git(&w, &["commit", "-q", "-m", message]);
        git(&w, &["push", "-q", "origin", "HEAD:main"]);
    }

    /// Commits symlinks (`(path, target)`, the target written as is, like `ln -s target path`)
    /// to `main` as one commit, as someone pushing to the repository would; a path that exists
    /// is replaced by the link. Git stores each as a mode 120000 entry.
    pub fn commit_symlinks(&self, links: &[(&str, &str)], message: &str) {
        let dir = TempDir::new("symlinker");
        git(dir.path(), &["clone", "-q", &self.file_url(), "w"]);
        let w = dir.path().join("w");
        for (path, target) in links {
            let p = w.join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            if std::fs::symlink_metadata(&p).is_ok() {
                git(&w, &["rm", "-q", "-r", "--", path]);
            }
            std::os::unix::fs::symlink(target, &p).unwrap();
        }
        git(&w, &["add", "-A"]);
        git(&w, &["commit", "-q", "-m", message]);
        git(&w, &["push", "-q", "origin", "HEAD:main"]);
    }

    /// `git ls-tree` of one path on a branch: `MODE TYPE OID\tPATH`, empty when absent.
    pub fn ls_tree(&self, branch: &str, path: &str) -> String {
        git(&self.path, &["ls-tree", branch, "--", path])
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

/// Smart HTTP: the test HTTP server checking basic auth and running `git http-backend` as a
/// CGI for each request.
pub struct GitHttp {
    _server: Server,
    /// The port it listens on.
    pub port: u16,
}

impl GitHttp {
    /// Serves repositories below `base` at `http://127.0.0.1:port/<name>`, requiring
    /// `user`/`password`.
    pub fn start(base: &Path, user: &str, password: &str) -> Self {
        Self::start_with(base, user, password, |_| None)
    }

    /// [`GitHttp::start`] where `answer` may answer a request itself (after the auth check)
    /// instead of `git http-backend`: for statuses a real server cannot be made to send on
    /// purpose (503, 429) on chosen requests, such as only the push's.
    pub fn start_with<F>(base: &Path, user: &str, password: &str, answer: F) -> Self
    where
        F: Fn(&Request) -> Option<Reply> + Send + Sync + 'static,
    {
        let expected = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        );
        let base = base.to_path_buf();
        let server = Server::start(move |req: &Request| {
            if req.header("authorization") != Some(expected.as_str()) {
                return Reply::new(401, &[("WWW-Authenticate", "Basic realm=\"git\"")], "");
            }
            if let Some(reply) = answer(req) {
                return reply;
            }
            cgi(&base, req).unwrap_or_else(|e| Reply::new(500, &[], e.to_string()))
        });
        let port = server.port;
        GitHttp {
            _server: server,
            port,
        }
    }
}

fn cgi(base: &Path, req: &Request) -> std::io::Result<Reply> {
    let (path, query) = req.target.split_once('?').unwrap_or((&req.target, ""));
    let header = |name: &str| req.header(name).unwrap_or("").to_owned();
    let mut child = Command::new("git")
        .arg("http-backend")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("GIT_PROJECT_ROOT", base)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("REMOTE_USER", "tester")
        .env("REQUEST_METHOD", &req.method)
        .env("PATH_INFO", path)
        .env("QUERY_STRING", query)
        .env("CONTENT_TYPE", header("content-type"))
        .env("CONTENT_LENGTH", req.body.len().to_string())
        .env("HTTP_CONTENT_ENCODING", header("content-encoding"))
        .env("GIT_PROTOCOL", header("git-protocol"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(&req.body)?;
    }
    let out = child.wait_with_output()?.stdout;
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, 4))
        .or_else(|| out.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2)));
    let (head, payload) = match split {
        Some((i, n)) => (
            String::from_utf8_lossy(&out[..i]).into_owned(),
            out[i + n..].to_vec(),
        ),
        None => (String::new(), out),
    };
    let mut status = 200;
    let mut headers = Vec::new();
    for line in head.lines() {
        if let Some(s) = line.strip_prefix("Status:") {
            status = s
                .split_whitespace()
                .next()
                .and_then(|c| c.parse().ok())
                .unwrap_or(500);
        } else if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    Ok(Reply::Full {
        status,
        headers,
        body: payload,
    })
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
