//! Untrusted repositories and Applications stay confined: `driftwatch render` refuses an
//! application path that leaves the repository and any committed symlink whose target does
//! (Argo CD's CVE-2022-24348), naming the link by its repository path, printing nothing of the
//! host file it points to and nothing of driftwatch's temporary export directory; links that
//! stay inside keep working, for plain YAML and kustomize alike.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

use driftwatch_testkit::TempDir;
use driftwatch_testkit::git::BareRepo;

/// What a host file holds; a manifest, so a renderer that followed the link would print it.
const SECRET: &str = "HOST-SECRET-7f3a";

fn host_secret(dir: &Path) -> String {
    let file = dir.join("secret.yaml");
    std::fs::write(
        &file,
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: stolen\ndata:\n  token: {SECRET}\n"
        ),
    )
    .unwrap();
    file.display().to_string()
}

const CM: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: shared\ndata:\n  a: b\n";

fn repo() -> BareRepo {
    BareRepo::new(&[
        ("apps/web/web.yaml", CM),
        ("shared/cm.yaml", CM),
        ("shared-base/cm.yaml", CM),
        ("shared-base/kustomization.yaml", "resources:\n- cm.yaml\n"),
        ("apps/kust/kustomization.yaml", "resources:\n- base\n"),
    ])
}

/// Runs `driftwatch render APP` with a configuration of one application at `path`; returns the
/// exit code, stdout and stderr.
fn render(dir: &TempDir, repo: &BareRepo, path: &str) -> (i32, String, String) {
    let conf = dir.path().join("driftwatch.yaml");
    std::fs::write(
        &conf,
        format!(
            "applications:\n- name: web\n  repo: {}\n  path: {path:?}\n  writeBack: kustomization\n  images:\n  - image: registry.local/web\n",
            repo.file_url()
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_driftwatch"))
        .args(["render", "web", "--config"])
        .arg(&conf)
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn refused(dir: &TempDir, repo: &BareRepo, path: &str, link: &str, why: &str) {
    let (code, out, err) = render(dir, repo, path);
    assert_eq!(code, 1, "{path}: {out}{err}");
    assert!(out.is_empty(), "nothing is rendered: {out}");
    assert!(!err.contains(SECRET), "{err}");
    assert!(
        err.contains("application web") && err.contains(&format!("symlink {link:?}")),
        "names the application and the link {link}: {err}"
    );
    assert!(err.contains(why), "{why}: {err}");
    assert!(!err.contains("render-"), "no temporary directory: {err}");
    assert_eq!(err.matches("refusing").count(), 1, "said once: {err}");
}

#[test]
fn links_that_leave_the_repository_are_refused() {
    let dir = TempDir::new("confine");
    let secret = host_secret(dir.path());
    let hostdir = dir.path().display().to_string();

    // A file link to an absolute host path.
    let r = repo();
    r.commit_symlinks(&[("apps/web/x.yaml", &secret)], "absolute link");
    refused(&dir, &r, "apps/web", "apps/web/x.yaml", "absolute path");

    // A relative link climbing out of the export (state/tmp/render-N/apps/web → the test dir).
    let r = repo();
    r.commit_symlinks(
        &[("apps/web/x.yaml", "../../../../../secret.yaml")],
        "relative link",
    );
    refused(
        &dir,
        &r,
        "apps/web",
        "apps/web/x.yaml",
        "outside the repository",
    );

    // The application's own directory is a link to a host directory.
    let r = repo();
    r.commit_symlinks(&[("apps/host", &hostdir)], "directory link");
    refused(&dir, &r, "apps/host", "apps/host", "absolute path");

    // A chain: lexically `apps/root/../secret.yaml` is inside, but `apps/root` is the
    // repository root, so `..` from there is its parent.
    let r = repo();
    r.commit_symlinks(
        &[
            ("apps/root", ".."),
            ("apps/web/x.yaml", "../root/../secret.yaml"),
        ],
        "chain",
    );
    refused(
        &dir,
        &r,
        "apps/web",
        "apps/web/x.yaml",
        "outside the repository",
    );

    // A loop never resolves.
    let r = repo();
    r.commit_symlinks(
        &[("apps/web/a.yaml", "b.yaml"), ("apps/web/b.yaml", "a.yaml")],
        "loop",
    );
    let (code, _, err) = render(&dir, &r, "apps/web");
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("40 links") && err.contains("apps/web/"),
        "{err}"
    );

    // kustomize reading a resource through a link out.
    let r = repo();
    r.commit_elsewhere(
        "apps/kust/kustomization.yaml",
        "resources:\n- x.yaml\n",
        "kustomization",
    );
    r.commit_symlinks(&[("apps/kust/x.yaml", &secret)], "kustomize link");
    refused(&dir, &r, "apps/kust", "apps/kust/x.yaml", "absolute path");
}

#[test]
fn links_inside_the_repository_keep_working() {
    let dir = TempDir::new("confine-inside");
    let r = repo();
    r.commit_symlinks(
        &[
            ("apps/web/cm.yaml", "../../shared/cm.yaml"),
            ("apps/kust/base", "../../shared-base"),
        ],
        "links inside",
    );
    let (code, out, err) = render(&dir, &r, "apps/web");
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.lines().count(),
        2,
        "web.yaml and the linked cm.yaml: {out}"
    );
    let (code, out, err) = render(&dir, &r, "apps/kust");
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("\"shared\""), "{out}");
}

#[test]
fn an_application_path_outside_the_repository_is_refused() {
    let dir = TempDir::new("confine-path");
    let r = repo();
    for (path, why) in [
        ("../..", "leaves the repository"),
        ("apps/../../x", "leaves the repository"),
        ("/etc", "is absolute"),
    ] {
        let (code, out, err) = render(&dir, &r, path);
        assert_eq!(code, 1, "{path}: {err}");
        assert!(out.is_empty());
        assert!(
            err.contains(&format!("application web: path {path:?} {why}")),
            "{path}: {err}"
        );
    }
}

#[test]
fn render_errors_name_repository_paths() {
    let dir = TempDir::new("confine-errors");
    let r = BareRepo::new(&[
        ("apps/web/bad.yaml", "kind: [broken\n"),
        (
            "apps/kust/kustomization.yaml",
            "resources:\n- missing.yaml\n",
        ),
    ]);
    let (code, _, err) = render(&dir, &r, "apps/web");
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("apps/web/bad.yaml"), "{err}");
    assert!(
        !err.contains("render-") && !err.contains("state/tmp"),
        "{err}"
    );
    let (code, _, err) = render(&dir, &r, "apps/kust");
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("apps/kust"), "{err}");
    assert!(
        !err.contains("render-") && !err.contains("state/tmp"),
        "{err}"
    );
}
