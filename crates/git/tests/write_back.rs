//! Write-back against real git servers: file://, git daemon, smart HTTP with basic auth and SSH.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::{Arc, Barrier};

use driftwatch_git::{
    Auth, Change, DEFAULT_COMMIT_TEMPLATE, Error, FileWrite, Identity, Mirror, Outcome, Plan,
    Secret, Signing, TransportCause, UpdateRequest, branch_name, commit_message,
};
use driftwatch_manifest::{ImageChange, set_kustomize_image};
use driftwatch_testkit::TempDir;
use driftwatch_testkit::git::{BareRepo, GitDaemon, GitHttp, Sshd, git};
use driftwatch_testkit::http::{Reply, Request};

const KUSTOMIZATION: &str = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- deployment.yaml\nimages:\n- name: backend # api\n  newTag: v1.0.0\n";

fn repo() -> BareRepo {
    BareRepo::new(&[
        ("apps/shop/kustomization.yaml", KUSTOMIZATION),
        ("apps/shop/deployment.yaml", "kind: Deployment\n"),
        ("README.md", "shop\n"),
    ])
}

fn request() -> UpdateRequest {
    UpdateRequest {
        base: "main".into(),
        identity: Identity::default(),
        max_attempts: 8,
    }
}

/// Wraps an edit that yields files into one that yields a plan with this message and target.
fn plan<F>(
    message: &str,
    target: Option<&str>,
    mut f: F,
) -> impl FnMut(&driftwatch_git::Snapshot<'_>) -> Result<Plan, Error>
where
    F: FnMut(&driftwatch_git::Snapshot<'_>) -> Result<Vec<FileWrite>, Error>,
{
    let message = message.to_owned();
    let target = target.map(str::to_owned);
    move |snap| {
        Ok(Plan {
            writes: f(snap)?,
            message: message.clone(),
            target: target.clone(),
            deletes: Vec::new(),
        })
    }
}

/// An edit that sets `image` to `tag` in the shop kustomization, re-read from each snapshot.
fn set_tag(
    path: &'static str,
    image: &'static str,
    tag: &'static str,
) -> impl FnMut(&driftwatch_git::Snapshot<'_>) -> Result<Vec<FileWrite>, Error> {
    move |snap| {
        let src = String::from_utf8(snap.read(path)?.unwrap()).unwrap();
        let change = ImageChange {
            image: image.into(),
            new_name: None,
            tag: Some(tag.into()),
            digest: None,
        };
        let out =
            set_kustomize_image(&src, path, &change).map_err(|e| Error::Edit(e.to_string()))?;
        Ok(if out.changed {
            vec![FileWrite {
                path: path.into(),
                content: out.text.into_bytes(),
            }]
        } else {
            vec![]
        })
    }
}

const K: &str = "apps/shop/kustomization.yaml";

fn assert_pushes(url: &str, auth: Auth, repo: &BareRepo) {
    let state = TempDir::new("state");
    let mirror = Mirror::open(state.path(), url, auth.clone()).unwrap();
    let msg = commit_message(
        DEFAULT_COMMIT_TEMPLATE,
        "shop",
        &[Change {
            image: "backend".into(),
            alias: String::new(),
            old_tag: "v1.0.0".into(),
            new_tag: "v1.0.1".into(),
        }],
    )
    .unwrap();
    let out = mirror
        .update(
            &request(),
            plan(&msg, None, set_tag(K, "backend", "v1.0.1")),
        )
        .unwrap();
    let Outcome::Pushed {
        commit,
        branch,
        attempts,
    } = out
    else {
        panic!("expected a push, got {out:?}");
    };
    assert_eq!((branch.as_str(), attempts), ("main", 1));
    assert_eq!(
        repo.show("main", K),
        KUSTOMIZATION.replace("v1.0.0", "v1.0.1")
    );
    assert_eq!(
        git(&repo.path, &["show", "--name-only", "--format=", &commit]),
        format!("{K}\n")
    );
    let raw = git(&repo.path, &["cat-file", "commit", &commit]);
    assert!(raw.ends_with(&format!("\n\n{msg}")), "{raw}");
    // A second run in a new process-like mirror object: nothing to do, no commit.
    let again = Mirror::open(state.path(), url, auth).unwrap();
    assert_eq!(
        again
            .update(&request(), plan("x", None, set_tag(K, "backend", "v1.0.1")))
            .unwrap(),
        Outcome::Unchanged
    );
    assert_eq!(repo.subjects("main").len(), 2);
}

#[test]
fn file_transport_one_commit_then_nothing() {
    let repo = repo();
    assert_pushes(&repo.file_url(), Auth::None, &repo);
}

#[test]
fn git_daemon_transport() {
    let repo = repo();
    let daemon = GitDaemon::start(repo.path.parent().unwrap());
    let url = format!("git://127.0.0.1:{}/repo.git", daemon.port);
    assert_pushes(&url, Auth::None, &repo);
}

#[test]
fn smart_http_with_basic_auth() {
    let repo = repo();
    let server = GitHttp::start(repo.path.parent().unwrap(), "bot", "s3cret-token");
    let url = format!("http://127.0.0.1:{}/repo.git", server.port);
    let auth = Auth::Basic {
        username: "bot".into(),
        password: Secret::new("s3cret-token"),
    };
    assert_pushes(&url, auth, &repo);

    // Wrong credentials fail clearly, and the password is nowhere in the error.
    let state = TempDir::new("state");
    let wrong = Auth::Basic {
        username: "bot".into(),
        password: Secret::new("wrong-password-123"),
    };
    let mirror = Mirror::open(state.path(), &url, wrong).unwrap();
    let err = mirror
        .update(&request(), plan("x", None, set_tag(K, "backend", "v9")))
        .unwrap_err()
        .to_string();
    assert!(!err.contains("wrong-password-123"), "{err}");
    assert!(err.contains("127.0.0.1"), "{err}");
}

#[test]
fn ssh_with_key_and_known_hosts() {
    let Some(sshd) = Sshd::start() else {
        panic!("sshd is not installed: scripts/install-deps installs openssh-server");
    };
    let repo = repo();
    let url = sshd.url(&repo.path);
    let auth = Auth::SshKey {
        key: sshd.client_key(),
        known_hosts: Some(sshd.known_hosts()),
    };
    assert_pushes(&url, auth, &repo);

    // A server whose host key is not known is refused.
    let empty = TempDir::new("kh");
    let unknown = empty.path().join("known_hosts");
    std::fs::write(&unknown, "").unwrap();
    let state = TempDir::new("state");
    let auth = Auth::SshKey {
        key: sshd.client_key(),
        known_hosts: Some(unknown),
    };
    let mirror = Mirror::open(state.path(), &url, auth).unwrap();
    let err = mirror
        .update(&request(), plan("x", None, set_tag(K, "backend", "v2")))
        .unwrap_err()
        .to_string();
    assert!(err.to_lowercase().contains("host key"), "{err}");
}

#[test]
fn rebase_and_retry_keeps_the_other_writers_commit() {
    let repo = repo();
    let state = TempDir::new("state");
    let mirror = Mirror::open(state.path(), &repo.file_url(), Auth::None).unwrap();
    let mut first = true;
    let mut inner = set_tag(K, "backend", "v1.0.1");
    let out = mirror
        .update(
            &request(),
            plan("bump backend", None, |snap| {
                if first {
                    // Someone pushes between our fetch and our push.
                    first = false;
                    repo.commit_elsewhere(
                        "README.md",
                        "shop, edited by a human\n",
                        "docs: human edit",
                    );
                }
                inner(snap)
            }),
        )
        .unwrap();
    assert!(
        matches!(out, Outcome::Pushed { attempts: 2, .. }),
        "{out:?}"
    );
    assert_eq!(
        repo.subjects("main"),
        ["bump backend", "docs: human edit", "initial"]
    );
    assert_eq!(repo.show("main", "README.md"), "shop, edited by a human\n");
    assert!(repo.show("main", K).contains("newTag: v1.0.1"));
}

#[test]
fn concurrent_writers_each_land_exactly_once() {
    const WRITERS: usize = 6;
    let files: Vec<(String, String)> = (0..WRITERS)
        .map(|i| {
            (
                format!("apps/app{i}/kustomization.yaml"),
                KUSTOMIZATION.to_owned(),
            )
        })
        .collect();
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    let repo = Arc::new(BareRepo::new(&refs));
    let barrier = Arc::new(Barrier::new(WRITERS * 2));
    let mut handles = Vec::new();
    for i in 0..WRITERS {
        for (image, tag) in [("backend", "v2.0.0"), ("frontend", "v3.0.0")] {
            let repo = repo.clone();
            let barrier = barrier.clone();
            handles.push(std::thread::spawn(move || {
                // Separate state dirs: separate processes in effect, racing on the remote only.
                let state = TempDir::new("race");
                let mirror = Mirror::open(state.path(), &repo.file_url(), Auth::None).unwrap();
                let path: &'static str =
                    Box::leak(format!("apps/app{i}/kustomization.yaml").into_boxed_str());
                barrier.wait();
                let mut req = request();
                req.max_attempts = 40;
                let msg = format!("app{i}: {image} {tag}");
                mirror
                    .update(&req, plan(&msg, None, set_tag(path, image, tag)))
                    .unwrap()
            }));
        }
    }
    for h in handles {
        assert!(matches!(h.join().unwrap(), Outcome::Pushed { .. }));
    }
    let subjects = repo.subjects("main");
    assert_eq!(subjects.len(), WRITERS * 2 + 1, "{subjects:?}");
    for i in 0..WRITERS {
        let k = repo.show("main", &format!("apps/app{i}/kustomization.yaml"));
        assert!(
            k.contains("- name: backend # api\n  newTag: v2.0.0\n"),
            "{k}"
        );
        assert!(k.contains("- name: frontend\n  newTag: v3.0.0\n"), "{k}");
        for image in ["backend", "frontend"] {
            let n = subjects
                .iter()
                .filter(|s| s.starts_with(&format!("app{i}: {image}")))
                .count();
            assert_eq!(n, 1, "app{i} {image} landed {n} times");
        }
    }
}

#[test]
fn write_branch_from_template_leaves_base_alone() {
    let repo = repo();
    let state = TempDir::new("state");
    let mirror = Mirror::open(state.path(), &repo.file_url(), Auth::None).unwrap();
    let changes = [Change {
        image: "backend".into(),
        alias: String::new(),
        old_tag: "v1.0.0".into(),
        new_tag: "v1.0.1".into(),
    }];
    let target = branch_name("image-updates-{{.SHA256}}", "argocd", "shop", &changes).unwrap();
    let req = request();
    let out = mirror
        .update(
            &req,
            plan("bump", Some(&target), set_tag(K, "backend", "v1.0.1")),
        )
        .unwrap();
    assert!(matches!(&out, Outcome::Pushed { branch, .. } if branch == &target));
    assert_eq!(repo.show("main", K), KUSTOMIZATION);
    assert!(repo.show(&target, K).contains("v1.0.1"));
    // Running again rebuilds the write branch from the base: still one commit on top of main.
    let out = mirror
        .update(
            &req,
            plan("bump", Some(&target), set_tag(K, "backend", "v1.0.1")),
        )
        .unwrap();
    assert!(matches!(out, Outcome::Pushed { .. }));
    assert_eq!(repo.subjects(&target), ["bump", "initial"]);
}

#[test]
fn signed_off_and_ssh_signed_commits() {
    let repo = repo();
    let state = TempDir::new("state");
    let keys = TempDir::new("signing");
    let key = keys.path().join("sign_key");
    let ok = std::process::Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "bot@example.invalid",
            "-f",
        ])
        .arg(&key)
        .status()
        .unwrap();
    assert!(ok.success());
    let mirror = Mirror::open(state.path(), &repo.file_url(), Auth::None).unwrap();
    let mut req = request();
    req.identity = Identity {
        name: "Image Bot".into(),
        email: "bot@example.invalid".into(),
        signing: Some(Signing::Ssh { key: key.clone() }),
        signoff: true,
    };
    let Outcome::Pushed { commit, .. } = mirror
        .update(
            &req,
            plan("bump backend", None, set_tag(K, "backend", "v5")),
        )
        .unwrap()
    else {
        panic!("no push");
    };
    let raw = git(&repo.path, &["cat-file", "commit", &commit]);
    assert!(raw.contains("-----BEGIN SSH SIGNATURE-----"), "{raw}");
    assert!(
        raw.contains("author Image Bot <bot@example.invalid>"),
        "{raw}"
    );
    assert!(
        raw.ends_with("bump backend\n\nSigned-off-by: Image Bot <bot@example.invalid>\n"),
        "{raw}"
    );
    // The signature verifies against the key.
    let allowed = keys.path().join("allowed");
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    std::fs::write(&allowed, format!("bot@example.invalid {public}")).unwrap();
    let verify = std::process::Command::new("git")
        .arg("--git-dir")
        .arg(&repo.path)
        .args([
            "-c",
            &format!("gpg.ssh.allowedSignersFile={}", allowed.display()),
            "verify-commit",
            &commit,
        ])
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
}

#[test]
fn only_edited_files_change_and_paths_are_checked() {
    let repo = repo();
    let state = TempDir::new("state");
    let mirror = Mirror::open(state.path(), &repo.file_url(), Auth::None).unwrap();
    let out = mirror
        .update(
            &request(),
            plan("two files", None, |snap| {
                let mut v = set_tag(K, "backend", "v7")(snap)?;
                v.push(FileWrite {
                    path: "apps/new/file.txt".into(),
                    content: b"new\n".to_vec(),
                });
                Ok(v)
            }),
        )
        .unwrap();
    let Outcome::Pushed { commit, .. } = out else {
        panic!()
    };
    let files = git(&repo.path, &["show", "--name-only", "--format=", &commit]);
    assert_eq!(
        files,
        format!("{K}\napps/new/file.txt\n")
            .lines()
            .rev()
            .collect::<Vec<_>>()
            .join("\n")
            + "\n"
    );
    for bad in ["../x", "/etc/passwd", "a/.git/config", "a//b"] {
        let err = mirror
            .update(
                &request(),
                plan("bad", None, |_| {
                    Ok(vec![FileWrite {
                        path: bad.into(),
                        content: vec![],
                    }])
                }),
            )
            .unwrap_err();
        assert!(matches!(err, Error::BadPath { .. }), "{bad}: {err}");
    }
    assert!(
        Path::new(mirror.dir()).join("HEAD").exists(),
        "the mirror persists"
    );
}

#[test]
fn missing_branch_is_an_error() {
    let repo = repo();
    let state = TempDir::new("state");
    let mirror = Mirror::open(state.path(), &repo.file_url(), Auth::None).unwrap();
    let mut req = request();
    req.base = "release".into();
    let err = mirror
        .update(&req, plan("x", None, set_tag(K, "backend", "v1")))
        .unwrap_err();
    assert!(matches!(err, Error::NoBranch { .. }), "{err}");
}

#[test]
fn gpg_signed_commits() {
    let repo = repo();
    let state = TempDir::new("state");
    let home = TempDir::new("gnupg");
    let status = std::process::Command::new("gpg")
        .arg("--homedir")
        .arg(home.path())
        .args([
            "--batch",
            "--quiet",
            "--passphrase",
            "",
            "--quick-gen-key",
            "Image Bot <bot@example.invalid>",
            "ed25519",
            "sign",
            "never",
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let mirror = Mirror::open(state.path(), &repo.file_url(), Auth::None).unwrap();
    let mut req = request();
    req.identity = Identity {
        name: "Image Bot".into(),
        email: "bot@example.invalid".into(),
        signing: Some(Signing::Gpg {
            key: Some("bot@example.invalid".into()),
            home: Some(home.path().to_path_buf()),
        }),
        signoff: false,
    };
    let Outcome::Pushed { commit, .. } = mirror
        .update(
            &req,
            plan("bump backend", None, set_tag(K, "backend", "v6")),
        )
        .unwrap()
    else {
        panic!("no push");
    };
    let raw = git(&repo.path, &["cat-file", "commit", &commit]);
    assert!(raw.contains("-----BEGIN PGP SIGNATURE-----"), "{raw}");
    let verify = std::process::Command::new("git")
        .arg("--git-dir")
        .arg(&repo.path)
        .args(["verify-commit", &commit])
        .env("GNUPGHOME", home.path())
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
    let _ = std::process::Command::new("gpgconf")
        .arg("--homedir")
        .arg(home.path())
        .args(["--kill", "gpg-agent"])
        .status();
}

#[test]
fn head_means_the_default_branch() {
    let repo = repo();
    let state = TempDir::new("state");
    let mirror = Mirror::open(state.path(), &repo.file_url(), Auth::None).unwrap();
    assert_eq!(mirror.resolve_branch("HEAD").unwrap(), "main");
    assert_eq!(mirror.resolve_branch("release").unwrap(), "release");
    let mut req = request();
    req.base = "HEAD".into();
    let out = mirror
        .update(&req, plan("via HEAD", None, set_tag(K, "backend", "v3")))
        .unwrap();
    assert!(
        matches!(out, Outcome::Pushed { ref branch, .. } if branch == "main"),
        "{out:?}"
    );
}

/// Write-back never follows a symlink: an edit of a path that is a link in the tree, or below a
/// directory that is one, is refused naming the path and the link, and nothing is pushed.
#[test]
fn writes_through_symlinks_are_refused() {
    let repo = repo();
    repo.commit_symlinks(
        &[
            ("apps/link.yaml", "shop/kustomization.yaml"),
            ("apps/elsewhere", "/etc"),
            ("apps/inside", "shop"),
        ],
        "links",
    );
    let before = repo.subjects("main");
    let dir = TempDir::new("links");
    let mirror = Mirror::open(dir.path(), &repo.file_url(), Auth::None).unwrap();
    for (path, link) in [
        ("apps/link.yaml", "apps/link.yaml"),
        ("apps/elsewhere/passwd", "apps/elsewhere"),
        ("apps/inside/.argocd-source-shop.yaml", "apps/inside"),
    ] {
        let e = mirror
            .update(
                &request(),
                plan("write", None, |_| {
                    Ok(vec![FileWrite {
                        path: path.to_owned(),
                        content: b"kustomize:\n  images: []\n".to_vec(),
                    }])
                }),
            )
            .unwrap_err();
        assert!(
            matches!(&e, Error::WriteThroughLink { path: p, link: l } if p == path && l == link),
            "{path}: {e}"
        );
        assert!(e.to_string().contains(&format!("{path:?}")), "{e}");
    }
    assert_eq!(repo.subjects("main"), before, "nothing was pushed");
    assert!(
        repo.ls_tree("main", "apps/link.yaml")
            .starts_with("120000 ")
    );
    // A real file beside the links is still written.
    let out = mirror
        .update(
            &request(),
            plan("write", None, |_| {
                Ok(vec![FileWrite {
                    path: "apps/shop/.argocd-source-shop.yaml".to_owned(),
                    content: b"kustomize:\n  images: []\n".to_vec(),
                }])
            }),
        )
        .unwrap();
    assert!(matches!(out, Outcome::Pushed { .. }), "{out:?}");
}

/// An export with a link out of the repository is refused, naming the link.
#[test]
fn export_refuses_links_out() {
    let repo = repo();
    repo.commit_symlinks(&[("apps/shop/x.yaml", "/etc/passwd")], "link out");
    let dir = TempDir::new("export");
    let mirror = Mirror::open(dir.path(), &repo.file_url(), Auth::None).unwrap();
    mirror.fetch(&["main"]).unwrap();
    let head = mirror.head("main").unwrap().unwrap();
    let tree = dir.path().join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    let e = mirror.export(&head, &tree).unwrap_err();
    assert_eq!(
        e.to_string(),
        "refusing symlink \"apps/shop/x.yaml\" -> \"/etc/passwd\": it points to an absolute path, outside the repository"
    );
}

/// An export is the commit's tree as it is: nested files, an executable bit, an inside link,
/// and files `git archive` would drop or rewrite (`export-ignore`, `export-subst`) — a
/// rendering must see what Git says, not an archive of it.
#[test]
fn export_writes_the_commit_tree_as_it_is() {
    let repo = BareRepo::new(&[
        ("apps/shop/kustomization.yaml", KUSTOMIZATION),
        ("apps/shop/deployment.yaml", "kind: Deployment\n"),
        ("apps/shop/secret.yaml", "kind: ConfigMap\n"),
        ("apps/shop/version.txt", "$Format:%H$\n"),
        ("tools/run.sh", "#!/bin/sh\n"),
        (
            ".gitattributes",
            "apps/shop/secret.yaml export-ignore\napps/shop/version.txt export-subst\n",
        ),
    ]);
    repo.commit_symlinks(&[("apps/shop/base.yaml", "deployment.yaml")], "link");
    let dir = TempDir::new("export-tree");
    git(dir.path(), &["clone", "-q", &repo.file_url(), "w"]);
    let w = dir.path().join("w");
    git(&w, &["update-index", "--chmod=+x", "tools/run.sh"]);
    git(&w, &["commit", "-q", "-m", "executable"]);
    git(&w, &["push", "-q", "origin", "HEAD:main"]);
    let mirror = Mirror::open(dir.path(), &repo.file_url(), Auth::None).unwrap();
    mirror.fetch(&["main"]).unwrap();
    let head = mirror.head("main").unwrap().unwrap();
    let tree = dir.path().join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    mirror.export(&head, &tree).unwrap();
    let read = |p: &str| std::fs::read_to_string(tree.join(p)).unwrap();
    assert_eq!(read("apps/shop/kustomization.yaml"), KUSTOMIZATION);
    assert_eq!(read("apps/shop/secret.yaml"), "kind: ConfigMap\n");
    assert_eq!(read("apps/shop/version.txt"), "$Format:%H$\n");
    assert_eq!(read("apps/shop/base.yaml"), "kind: Deployment\n");
    let mode = |p: &str| {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::metadata(tree.join(p))
            .unwrap()
            .permissions()
            .mode()
            & 0o111
    };
    assert_ne!(mode("tools/run.sh"), 0, "executable");
    assert_eq!(mode("apps/shop/deployment.yaml"), 0);
    assert_eq!(
        std::fs::read_link(tree.join("apps/shop/base.yaml")).unwrap(),
        std::path::PathBuf::from("deployment.yaml")
    );
    let mut files: Vec<String> = Vec::new();
    let mut stack = vec![tree.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(d).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                let rel = e.path().strip_prefix(&tree).unwrap().display().to_string();
                files.push(rel);
            }
        }
    }
    files.sort();
    assert_eq!(
        files,
        [
            ".gitattributes",
            "apps/shop/base.yaml",
            "apps/shop/deployment.yaml",
            "apps/shop/kustomization.yaml",
            "apps/shop/secret.yaml",
            "apps/shop/version.txt",
            "tools/run.sh",
        ]
    );
}

/// An export that fails part way (a file stands where a directory must go) leaves the
/// snapshot usable: its next read gets the right bytes, not a stale answer.
#[test]
fn a_failed_export_leaves_the_snapshot_readable() {
    let repo = repo();
    let dir = TempDir::new("export-fail");
    let mirror = Mirror::open(dir.path(), &repo.file_url(), Auth::None).unwrap();
    mirror.fetch(&["main"]).unwrap();
    let head = mirror.head("main").unwrap().unwrap();
    let snap = mirror.snapshot(&head);
    let dest = dir.path().join("blocked");
    std::fs::create_dir_all(&dest).unwrap();
    std::fs::write(dest.join("apps"), "in the way").unwrap();
    let e = snap.export(&dest).unwrap_err();
    assert!(matches!(e, Error::Io { .. }), "{e}");
    assert_eq!(snap.read("README.md").unwrap().unwrap(), b"shop\n");
    assert_eq!(
        snap.read("apps/shop/kustomization.yaml").unwrap().unwrap(),
        KUSTOMIZATION.as_bytes()
    );
}

/// A smart-HTTP server that accepts connections and never answers (a stalled proxy, a
/// half-open connection) fails the fetch after Git's low-speed limit instead of holding the
/// write-back for ever. The bound is generous: the limit is 30 s.
#[test]
fn a_server_that_stops_answering_fails_the_fetch() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let held = std::thread::spawn(move || {
        // Holds every connection open, reading nothing and writing nothing.
        let mut open = Vec::new();
        for stream in listener.incoming().take(4) {
            open.push(stream);
        }
        std::thread::sleep(std::time::Duration::from_secs(600));
    });
    let state = TempDir::new("state");
    let url = format!("http://127.0.0.1:{port}/repo.git");
    let mirror = Mirror::open(state.path(), &url, Auth::None).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(mirror.fetch(&["main"]).map_err(|e| e.to_string()));
    });
    let result = rx
        .recv_timeout(std::time::Duration::from_secs(150))
        .expect("the fetch still waits on a server that stopped answering");
    let err = result.unwrap_err();
    assert!(err.contains("127.0.0.1"), "{err}");
    assert!(
        err.contains("failed in transit: the server stopped answering (timed out)"),
        "{err}"
    );
    drop(held);
}

/// The commit is built in-process (blobs, trees, commit object): its tree must be exactly the
/// one git itself makes for the same edit in a work tree — modes kept, new directories made,
/// emptied directories gone — and the repository must pass `git fsck --strict`.
#[test]
fn a_commit_has_the_tree_git_would_write() {
    let repo = repo();
    // An executable and a directory that a delete empties, committed as a person would.
    let dir = TempDir::new("person");
    git(dir.path(), &["clone", "-q", &repo.file_url(), "w"]);
    let w = dir.path().join("w");
    std::fs::create_dir_all(w.join("bin")).unwrap();
    std::fs::create_dir_all(w.join("old")).unwrap();
    std::fs::write(w.join("bin/run.sh"), "#!/bin/sh\n").unwrap();
    std::fs::write(w.join("old/gone.yaml"), "x: 1\n").unwrap();
    std::fs::write(w.join("a-b"), "sorts before a/\n").unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(w.join("bin/run.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    git(&w, &["add", "-A"]);
    git(&w, &["commit", "-q", "-m", "scripts"]);
    git(&w, &["push", "-q", "origin", "HEAD:main"]);

    let state = TempDir::new("state");
    let mirror = Mirror::open(state.path(), &repo.file_url(), Auth::None).unwrap();
    let writes = [
        ("bin/run.sh", "#!/bin/sh\necho changed\n"),
        ("a/b/c/new.yaml", "new: true\n"),
        (K, "kind: Kustomization\n"),
    ];
    let out = mirror
        .update(&request(), |_: &driftwatch_git::Snapshot<'_>| {
            Ok(Plan {
                writes: writes
                    .iter()
                    .map(|(p, c)| FileWrite {
                        path: (*p).into(),
                        content: c.as_bytes().to_vec(),
                    })
                    .collect(),
                message: "in-process\n".into(),
                target: None,
                deletes: vec!["old/gone.yaml".into(), "README.md".into(), "no/such".into()],
            })
        })
        .unwrap();
    let Outcome::Pushed { commit, .. } = out else {
        panic!("expected a push, got {out:?}")
    };

    // The same edit by git in the work tree.
    git(&w, &["pull", "-q", "--ff-only", "origin", "main"]);
    let ours = git(&w, &["rev-parse", "HEAD^{tree}"]);
    git(&w, &["reset", "-q", "--hard", "HEAD~1"]);
    for (p, c) in writes {
        std::fs::create_dir_all(w.join(p).parent().unwrap()).unwrap();
        std::fs::write(w.join(p), c).unwrap();
    }
    git(&w, &["rm", "-q", "old/gone.yaml", "README.md"]);
    git(&w, &["add", "-A"]);
    let theirs = git(&w, &["write-tree"]);
    assert_eq!(ours.trim(), theirs.trim());
    assert_eq!(
        repo.ls_tree("main", "bin/run.sh").split(' ').next(),
        Some("100755")
    );
    assert_eq!(repo.ls_tree("main", "old"), "");
    git(&repo.path, &["fsck", "--strict", "--no-dangling"]);
    let raw = git(&repo.path, &["cat-file", "commit", &commit]);
    assert!(raw.ends_with("\n\nin-process\n"), "{raw}");
    assert!(
        raw.contains("\nauthor driftwatch <"),
        "the identity is the configured one: {raw}"
    );
}

/// The remote's URL is written into a new mirror's config by hand (not by `git config`): git
/// must read back exactly the URL given, quotes, backslashes and all.
#[test]
fn a_new_mirror_reads_back_its_url_exactly() {
    let state = TempDir::new("state");
    for url in [
        "https://git.example/org/repo.git",
        "file:///srv/a \"quoted\" \\ path\tx/repo",
        "ssh://git@host:2222/~user/re;po#frag",
    ] {
        let mirror = Mirror::open(state.path(), url, Auth::None).unwrap();
        assert_eq!(
            git(mirror.dir(), &["config", "--get", "remote.origin.url"]).trim_end_matches('\n'),
            url
        );
        assert_eq!(
            git(mirror.dir(), &["config", "--get", "gc.auto"]).trim(),
            "0"
        );
    }
}

/// A smart-HTTP server whose answers to requests matching `hit` are `answer`'s, and real
/// otherwise (`git http-backend`), with the credentials the tests use.
fn faulty_server(
    repo: &BareRepo,
    hit: &'static str,
    answer: fn() -> Reply,
) -> (GitHttp, String, Auth) {
    let server = GitHttp::start_with(
        repo.path.parent().unwrap(),
        "bot",
        "s3cret-token",
        move |req: &Request| req.target.contains(hit).then(answer),
    );
    let url = format!("http://127.0.0.1:{}/repo.git", server.port);
    let auth = Auth::Basic {
        username: "bot".into(),
        password: Secret::new("s3cret-token"),
    };
    (server, url, auth)
}

/// Tries to push v2 through `url`; returns the error and checks nothing was written.
fn failed_push(repo: &BareRepo, url: &str, auth: Auth) -> Error {
    let state = TempDir::new("state");
    let mirror = Mirror::open(state.path(), url, auth).unwrap();
    let err = mirror
        .update(&request(), plan("bump", None, set_tag(K, "backend", "v2")))
        .unwrap_err();
    assert_eq!(repo.subjects("main").len(), 1, "nothing was pushed");
    let text = err.to_string();
    assert!(!text.contains("s3cret-token"), "{text}");
    err
}

/// A push the server answers with 503 failed in transit: the error says so, names the status,
/// and does not call it a refusal (which would send an operator after permissions or hooks).
#[test]
fn a_push_answered_503_failed_in_transit_and_is_not_called_refused() {
    let repo = repo();
    let (_server, url, auth) = faulty_server(&repo, "git-receive-pack", || {
        Reply::new(503, &[], "unavailable")
    });
    let err = failed_push(&repo, &url, auth);
    let text = err.to_string();
    assert!(
        matches!(
            err,
            Error::Transport {
                cause: TransportCause::ServerError(503),
                ref command,
                ..
            } if command == "push"
        ),
        "{err:?}"
    );
    assert!(err.is_transient());
    assert!(
        text.contains("git push failed in transit: the server answered HTTP 503"),
        "{text}"
    );
    assert!(!text.contains("refused"), "{text}");
}

/// 429 on the push: rate limited, in those words.
#[test]
fn a_push_answered_429_says_rate_limited() {
    let repo = repo();
    let (_server, url, auth) = faulty_server(&repo, "git-receive-pack", || {
        Reply::new(429, &[("Retry-After", "1")], "slow down")
    });
    let err = failed_push(&repo, &url, auth);
    let text = err.to_string();
    assert!(
        matches!(
            err,
            Error::Transport {
                cause: TransportCause::RateLimited,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(text.contains("HTTP 429 (rate limited)"), "{text}");
    assert!(!text.contains("refused"), "{text}");
}

/// A fetch whose answer is cut short (the connection closes inside the body) lost the
/// connection; a fetch answered 502 names the status.
#[test]
fn a_fetch_cut_short_or_answered_502_failed_in_transit() {
    let repo = repo();
    let (_server, url, auth) = faulty_server(&repo, "git-upload-pack", || {
        Reply::Raw {
        chunks: vec![
            b"HTTP/1.1 200 OK\r\nContent-Type: application/x-git-upload-pack-advertisement\r\nContent-Length: 4000\r\n\r\n001e# service=git-upload-pack\n".to_vec(),
        ],
        pause: std::time::Duration::ZERO,
    }
    });
    let state = TempDir::new("state");
    let mirror = Mirror::open(state.path(), &url, auth.clone()).unwrap();
    let err = mirror.fetch(&["main"]).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Transport {
                cause: TransportCause::ConnectionLost,
                ref command,
                ..
            } if command == "fetch"
        ),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("the connection was reset or cut short"),
        "{err}"
    );

    let (_server, url, auth) = faulty_server(&repo, "git-upload-pack", || {
        Reply::new(502, &[], "bad gateway")
    });
    let state = TempDir::new("state");
    let mirror = Mirror::open(state.path(), &url, auth).unwrap();
    let err = mirror.fetch(&["main"]).unwrap_err();
    assert!(
        err.to_string()
            .contains("git fetch failed in transit: the server answered HTTP 502"),
        "{err}"
    );
}

/// Nothing listening: unreachable.
#[test]
fn an_unreachable_server_is_called_unreachable() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let state = TempDir::new("state");
    let url = format!("http://127.0.0.1:{port}/repo.git");
    let mirror = Mirror::open(state.path(), &url, Auth::None).unwrap();
    let err = mirror.fetch(&["main"]).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Transport {
                cause: TransportCause::Unreachable,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("the server could not be reached"),
        "{err}"
    );
}

/// What the server decides is still a refusal: a pre-receive hook that declines, and HTTP 403.
#[test]
fn a_push_the_server_declines_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let repo = repo();
    let hook = repo.path.join("hooks/pre-receive");
    std::fs::create_dir_all(hook.parent().unwrap()).unwrap();
    std::fs::write(&hook, "#!/bin/sh\necho 'main is frozen' >&2\nexit 1\n").unwrap();
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    let err = failed_push(&repo, &repo.file_url(), Auth::None);
    let text = err.to_string();
    assert!(matches!(err, Error::PushRefused { .. }), "{err:?}");
    assert!(!err.is_transient());
    assert!(text.contains("push to main refused"), "{text}");
    assert!(text.contains("main is frozen"), "{text}");
    std::fs::remove_file(&hook).unwrap();

    let (_server, url, auth) = faulty_server(&repo, "git-receive-pack", || {
        Reply::new(403, &[], "forbidden")
    });
    let err = failed_push(&repo, &url, auth);
    assert!(matches!(err, Error::PushRefused { .. }), "{err:?}");
    assert!(err.to_string().contains("403"), "{err}");
}
