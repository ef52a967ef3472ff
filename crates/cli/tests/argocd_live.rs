//! Argo CD, live: Applications read from the cluster (the in-process fake by default, a real API
//! server with Argo CD's Application CRD installed when `DRIFTWATCH_E2E_KUBECONFIG` names one),
//! their registry and Git credentials read from Secrets, and `write-back-method: argocd`
//! patching the live Application.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};

use driftwatch_testkit::TempDir;
use driftwatch_testkit::kube::Cluster;

/// An Application with every documented field this CRD describes.
fn full_application(ns: &str) -> Value {
    json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": "shop", "namespace": ns},
        "spec": {
            "project": "default",
            "source": {
                "repoURL": "https://git.example.com/shop.git",
                "path": "apps/shop",
                "targetRevision": "main",
                "kustomize": {"images": ["backend=registry.local/backend:1.0.0"]},
                "helm": {
                    "parameters": [{"name": "image.tag", "value": "1.0.0", "forceString": true}],
                    "valueFiles": ["values-prod.yaml"]
                }
            },
            "sources": [{"repoURL": "https://git.example.com/values.git", "ref": "values"}],
            "destination": {"server": "https://kubernetes.default.svc", "namespace": "shop"},
            "syncPolicy": {"automated": {"prune": true, "selfHeal": true}, "syncOptions": ["CreateNamespace=true"]},
            "ignoreDifferences": [{"group": "apps", "kind": "Deployment", "jsonPointers": ["/spec/replicas"]}]
        },
        "status": {"summary": {"images": ["registry.local/backend:1.0.0"]}, "anything": {"goes": [1, 2]}}
    })
}

#[test]
fn the_application_crd_is_structural_and_installs_idempotently() {
    let dir = TempDir::new("argo-crd");
    let cluster = Cluster::new(dir.path());
    if !cluster.is_real() {
        eprintln!(
            "skipped: the Application CRD's schema needs the real API server (DRIFTWATCH_E2E_KUBECONFIG); the fake serves Applications without one"
        );
        return;
    }
    // Tests in several processes install it at once: each install must succeed.
    std::thread::scope(|s| {
        for _ in 0..3 {
            s.spawn(|| cluster.install_application_crd());
        }
    });
    cluster.install_application_crd();
    let ns = cluster.unique_namespace("dw-argo-crd");
    cluster.create_namespace(&ns);
    cluster.create(full_application(&ns));
    let live = cluster.get("applications", &ns, "shop").unwrap();
    let spec = &live["spec"];
    assert_eq!(
        spec["source"]["kustomize"]["images"],
        json!(["backend=registry.local/backend:1.0.0"])
    );
    assert_eq!(
        spec["source"]["helm"]["parameters"][0],
        json!({"name": "image.tag", "value": "1.0.0", "forceString": true})
    );
    assert_eq!(
        spec["source"]["helm"]["valueFiles"],
        json!(["values-prod.yaml"])
    );
    assert_eq!(spec["sources"][0]["ref"], "values");
    assert_eq!(spec["destination"]["namespace"], "shop");
    assert_eq!(spec["syncPolicy"]["automated"]["selfHeal"], true);
    assert_eq!(spec["ignoreDifferences"][0]["kind"], "Deployment");
    // Free-form where Argo CD's status is.
    assert_eq!(live["status"]["anything"]["goes"], json!([1, 2]));
    // Structural: a wrong type and a field the schema does not know are refused (kubectl asks
    // for strict validation), or pruned when validation is off.
    let create = |obj: &Value, validate: &str| {
        let out = std::process::Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&cluster.kubeconfig)
            .args(["create", &format!("--validate={validate}"), "-f", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                use std::io::Write;
                c.stdin
                    .take()
                    .unwrap()
                    .write_all(obj.to_string().as_bytes())?;
                c.wait_with_output()
            })
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let mut bad = full_application(&ns);
    bad["metadata"]["name"] = json!("bad");
    bad["spec"]["source"]["kustomize"]["images"] = json!("not-a-list");
    let (created, err) = create(&bad, "strict");
    assert!(
        !created && err.contains("spec.source.kustomize.images"),
        "{err}"
    );
    let mut unknown = full_application(&ns);
    unknown["metadata"]["name"] = json!("unknown");
    unknown["spec"]["notAField"] = json!("x");
    let (created, err) = create(&unknown, "strict");
    assert!(!created && err.contains("spec.notAField"), "{err}");
    let (created, err) = create(&unknown, "ignore");
    assert!(created, "{err}");
    let pruned = cluster.get("applications", &ns, "unknown").unwrap();
    assert!(pruned["spec"].get("notAField").is_none(), "{pruned}");
    assert_eq!(pruned["spec"]["project"], "default");
}

const PREFIX: &str = "argocd-image-updater.argoproj.io/";

/// An Application tracking `image` (alias `api`) in `path` of `repo`, with these annotations
/// (after the prefix) besides the image list.
fn argo_app(
    ns: &str,
    name: &str,
    repo: &str,
    path: &str,
    image: &str,
    annotations: &[(&str, &str)],
) -> Value {
    let mut a = serde_json::Map::new();
    a.insert(format!("{PREFIX}image-list"), json!(format!("api={image}")));
    for (k, v) in annotations {
        a.insert(format!("{PREFIX}{k}"), json!(v));
    }
    json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": name, "namespace": ns, "annotations": a},
        "spec": {
            "project": "default",
            "source": {"repoURL": repo, "path": path, "targetRevision": "main"},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": ns}
        }
    })
}

fn dw(args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_driftwatch"))
        .args(args)
        .env("HOME", "/nonexistent")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `pullsecret:NS/NAME` and `secret:NS/NAME#FIELD` read the Secret by name through the cluster
/// the Applications come from; a missing Secret, a missing field or a get RBAC forbids fails that
/// Application alone, naming it, the Secret and the field — and no value is ever printed.
#[test]
fn registry_credentials_from_secrets() {
    use driftwatch_testkit::git::{BareRepo, git};
    use driftwatch_testkit::registry::{Auth, Registry};

    let dir = TempDir::new("argo-pull");
    let cluster = Cluster::new(dir.path());
    cluster.install_application_crd();
    let ns = cluster.unique_namespace("dw-argo-pull");
    let other = cluster.unique_namespace("dw-argo-pull-other");
    cluster.create_namespace(&ns);
    cluster.create_namespace(&other);
    let password = "s3cr3t-pull-pw";
    let reg = Registry::start(Auth::Basic("puller".into(), password.into()));
    // One image repository per Application: credentials belong to an image's repository, so
    // each Application's own are what is tested.
    let apps = [
        "pull",
        "field",
        "nofield",
        "missing",
        "forbidden",
        "anonymous",
    ];
    for app in apps {
        reg.push_image(&format!("team/{app}"), "1.0.0", "2026-11-01T00:00:00Z");
        reg.push_image(&format!("team/{app}"), "1.0.1", "2026-11-02T00:00:00Z");
    }
    let image = |app: &str| format!("{}/team/{app}:~1.0", reg.host());
    let files: Vec<(String, String)> = apps
        .iter()
        .map(|a| {
            (
                format!("apps/{a}/kustomization.yaml"),
                "resources: []\n".to_owned(),
            )
        })
        .collect();
    let files: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    let repo = BareRepo::new(&files);

    let dockerconfig = format!(
        r#"{{"auths":{{"{}":{{"username":"puller","password":"{password}"}}}}}}"#,
        reg.host()
    );
    cluster.create_secret(
        &ns,
        "regcred",
        "kubernetes.io/dockerconfigjson",
        &[],
        &[(".dockerconfigjson", &dockerconfig)],
    );
    let pair = format!("puller:{password}");
    cluster.create_secret(&ns, "pair", "Opaque", &[], &[("creds", &pair)]);
    cluster.create_secret(&other, "pair", "Opaque", &[], &[("creds", &pair)]);
    let specs = [
        ("pull", format!("pullsecret:{ns}/regcred")),
        ("field", format!("secret:{ns}/pair#creds")),
        ("nofield", format!("secret:{ns}/pair#nope")),
        ("missing", format!("pullsecret:{ns}/absent")),
        ("forbidden", format!("secret:{other}/pair#creds")),
    ];
    for (name, spec) in &specs {
        cluster.create(argo_app(
            &ns,
            name,
            &repo.file_url(),
            &format!("apps/{name}"),
            &image(name),
            &[("write-back-method", "git"), ("api.pull-secret", spec)],
        ));
    }
    cluster.create(argo_app(
        &ns,
        "anonymous",
        &repo.file_url(),
        "apps/anonymous",
        &image("anonymous"),
        &[("write-back-method", "git")],
    ));
    // Credentials that may do anything in the Applications' namespace and nothing elsewhere.
    let kubeconfig = cluster.namespace_bound_kubeconfig(&ns, dir.path());
    if let Some(fake) = &cluster.fake {
        fake.forbid("secrets", &other);
    }
    let state = dir.path().join("state");
    let run = |extra: &[&str]| {
        let mut args = vec![
            "run",
            "--once",
            "--log-level",
            "debug",
            "--applications-from-cluster",
            &ns,
            "--applications-kubeconfig",
            kubeconfig.to_str().unwrap(),
            "--allow-local-repositories",
            "--state-dir",
            state.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        dw(&args)
    };
    let (code, out, err) = run(&[]);
    assert_eq!(code, 1, "some applications failed: {out}{err}");
    let row = |out: &str, app: &str| {
        out.lines()
            .find(|l| l.starts_with(&format!("{app} ")))
            .unwrap_or_else(|| panic!("no row for {app}: {out}"))
            .to_owned()
    };
    let written = |app: &str| {
        git(&repo.path, &["ls-tree", "-r", "--name-only", "main"])
            .contains(&format!("apps/{app}/.argocd-source-"))
    };
    for app in ["pull", "field"] {
        assert!(row(&out, app).contains("updated"), "{out}{err}");
        assert!(written(app), "{app}");
        assert!(
            repo.show(
                "main",
                &format!("apps/{app}/.argocd-source-{ns}_{app}.yaml")
            )
            .contains(&format!("team/{app}:1.0.1"))
        );
    }
    for (app, says) in [
        (
            "nofield",
            format!("secret:{ns}/pair#nope: Secret {ns}/pair has no field \"nope\""),
        ),
        (
            "missing",
            format!("pullsecret:{ns}/absent: Secret {ns}/absent not found"),
        ),
    ] {
        let row = row(&out, app);
        assert!(row.contains("error") && row.contains(&says), "{app}: {row}");
        assert!(!written(app), "{app}");
    }
    // A Secret in another namespace is not taken unless the operator allows that namespace:
    // the Application is left out, saying so, while the others go on.
    assert!(!out.lines().any(|l| l.starts_with("forbidden ")), "{out}");
    assert!(
        err.contains("Application forbidden: the pull-secret of")
            && err.contains(&format!("--allow-secret-namespace {other}")),
        "{err}"
    );
    // Without credentials the registry refuses: the Secrets really were what let the others in.
    assert!(row(&out, "anonymous").contains("error"), "{out}");
    assert!(!written("anonymous"));
    // No value of any Secret is printed, even at debug level.
    assert!(
        !out.contains(password) && !err.contains(password),
        "leaked: {out}{err}"
    );
    // Allowed, the namespace is asked — and RBAC refuses the get, which is named.
    let (code, out, err) = run(&["--allow-secret-namespace", &other]);
    assert_eq!(code, 1, "{out}{err}");
    let forbidden = row(&out, "forbidden");
    assert!(
        forbidden.contains(&format!(
            "secret:{other}/pair#creds: getting Secret {other}/pair"
        )) && forbidden.contains("forbidden")
            && forbidden.contains("403"),
        "{forbidden}"
    );
    assert!(!written("forbidden"));
    assert!(!out.contains(password) && !err.contains(password));

    // From the operator's files the same annotations are refused, saying why.
    let file = dir.path().join("apps.yaml");
    let app = argo_app(
        &ns,
        "pull",
        &repo.file_url(),
        "apps/pull",
        &image("pull"),
        &[
            ("write-back-method", "git"),
            ("api.pull-secret", &specs[0].1),
        ],
    );
    std::fs::write(&file, app.to_string()).unwrap();
    let (code, out, err) = dw(&[
        "check",
        "--applications",
        file.to_str().unwrap(),
        "--state-dir",
        state.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("Application pull: metadata.annotations[argocd-image-updater.argoproj.io/api.pull-secret]")
            && err.contains("--applications-from-cluster"),
        "{err}"
    );
}

/// Git credentials as argocd-image-updater takes them: `git:secret:NS/NAME` (username and
/// password), Argo CD's `repository` Secret for the exact URL (`git`, the default) and the
/// `repo-creds` Secret with the longest URL prefix (`git:repocreds`), against smart-HTTP servers
/// that require basic auth. A missing Secret or field fails that Application alone.
#[test]
fn git_credentials_from_secrets() {
    use driftwatch_testkit::git::{BareRepo, GitHttp};
    use driftwatch_testkit::registry::{Auth, Registry};

    let dir = TempDir::new("argo-git");
    let cluster = Cluster::new(dir.path());
    cluster.install_application_crd();
    let ns = cluster.unique_namespace("dw-argo-git");
    cluster.create_namespace(&ns);
    let reg = Registry::start(Auth::None);
    reg.push_image("team/api", "1.0.0", "2026-11-01T00:00:00Z");
    reg.push_image("team/api", "1.0.1", "2026-11-02T00:00:00Z");
    let image = format!("{}/team/api:~1.0", reg.host());
    let password = "s3cr3t-git-pw";
    let files = [("app/kustomization.yaml", "resources: []\n")];
    // Each way on its own repository, so each is what lets its Application push.
    let (by_secret, by_repository, by_template, failing) = (
        BareRepo::new(&files),
        BareRepo::new(&files),
        BareRepo::new(&files),
        BareRepo::new(&files),
    );
    let serve = |r: &BareRepo| {
        let server = GitHttp::start(r.path.parent().unwrap(), "bot", password);
        let url = format!("http://127.0.0.1:{}/repo.git", server.port);
        (server, url)
    };
    let (_s1, url_secret) = serve(&by_secret);
    let (_s2, url_repository) = serve(&by_repository);
    let (_s3, url_template) = serve(&by_template);
    let (_s4, url_failing) = serve(&failing);
    fn argo(kind: &str) -> [(&str, &str); 1] {
        [("argocd.argoproj.io/secret-type", kind)]
    }
    cluster.create_secret(
        &ns,
        "gitcreds",
        "Opaque",
        &[],
        &[("username", "bot"), ("password", password)],
    );
    cluster.create_secret(&ns, "nopassword", "Opaque", &[], &[("username", "bot")]);
    cluster.create_secret(
        &ns,
        "repo-exact",
        "Opaque",
        &argo("repository"),
        &[
            ("url", &url_repository),
            ("username", "bot"),
            ("password", password),
        ],
    );
    // Two templates match the third repository; the longer prefix is the one that works.
    let host = url_template.trim_end_matches("/repo.git");
    cluster.create_secret(
        &ns,
        "creds-host",
        "Opaque",
        &argo("repo-creds"),
        &[("url", host), ("username", "bot"), ("password", "wrong")],
    );
    cluster.create_secret(
        &ns,
        "creds-repo",
        "Opaque",
        &argo("repo-creds"),
        &[
            ("url", &format!("{host}/repo")),
            ("username", "bot"),
            ("password", password),
        ],
    );
    let apps = [
        (
            "bysecret",
            url_secret.clone(),
            format!("git:secret:{ns}/gitcreds"),
        ),
        ("byrepository", url_repository.clone(), "git".to_owned()),
        (
            "bytemplate",
            url_template.clone(),
            "git:repocreds".to_owned(),
        ),
        (
            "nosecret",
            url_failing.clone(),
            format!("git:secret:{ns}/absent"),
        ),
        (
            "nofield",
            url_failing.clone(),
            format!("git:secret:{ns}/nopassword"),
        ),
        (
            "elsewhere",
            url_failing.clone(),
            "git:secret:kube-system/creds".to_owned(),
        ),
    ];
    for (name, url, method) in &apps {
        cluster.create(argo_app(
            &ns,
            name,
            url,
            "app",
            &image,
            &[("write-back-method", method)],
        ));
    }
    let state = dir.path().join("state");
    let (code, out, err) = dw(&[
        "run",
        "--once",
        "--log-level",
        "debug",
        "--applications-from-cluster",
        &ns,
        "--applications-kubeconfig",
        cluster.kubeconfig.to_str().unwrap(),
        "--state-dir",
        state.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "two applications fail: {out}{err}");
    let row = |app: &str| {
        out.lines()
            .find(|l| l.starts_with(&format!("{app} ")))
            .unwrap_or_else(|| panic!("no row for {app}: {out}{err}"))
            .to_owned()
    };
    for (app, repo) in [
        ("bysecret", &by_secret),
        ("byrepository", &by_repository),
        ("bytemplate", &by_template),
    ] {
        assert!(row(app).contains("updated"), "{app}: {out}{err}");
        assert!(
            repo.show("main", &format!("app/.argocd-source-{ns}_{app}.yaml"))
                .contains("team/api:1.0.1"),
            "{app}"
        );
    }
    for (app, says) in [
        (
            "nosecret",
            format!(
                "Application nosecret: Git credentials git:secret:{ns}/absent: Secret {ns}/absent not found"
            ),
        ),
        (
            "nofield",
            format!(
                "Application nofield: Git credentials git:secret:{ns}/nopassword: Secret {ns}/nopassword has no field password"
            ),
        ),
    ] {
        assert!(row(app).contains(&says), "{app}: {}", row(app));
    }
    assert_eq!(
        failing.subjects("main").len(),
        1,
        "nothing was pushed for the failing ones"
    );
    // Another namespace's Secret is not taken unless allowed.
    assert!(!out.lines().any(|l| l.starts_with("elsewhere ")), "{out}");
    assert!(
        err.contains("Application elsewhere: write-back-method names a Secret in namespace")
            && err.contains("--allow-secret-namespace kube-system"),
        "{err}"
    );
    assert!(
        !out.contains(password) && !err.contains(password),
        "leaked: {out}{err}"
    );
}

/// `write-back-method: argocd` (the default): the new tag goes into the live Application —
/// `spec.source.kustomize.images` for a kustomize one, `spec.source.helm.parameters` (the
/// `helm.image-name`/`helm.image-tag` paths, as strings) for a Helm one — merged with what is
/// there, nothing else touched, no commit; `check` and a second run change nothing.
#[test]
fn argocd_write_back_patches_the_live_application() {
    use driftwatch_testkit::git::BareRepo;
    use driftwatch_testkit::registry::{Auth, Registry};

    let dir = TempDir::new("argo-live");
    let cluster = Cluster::new(dir.path());
    cluster.install_application_crd();
    let ns = cluster.unique_namespace("dw-argo-live");
    cluster.create_namespace(&ns);
    let reg = Registry::start(Auth::None);
    reg.push_image("team/api", "1.0.0", "2026-11-01T00:00:00Z");
    reg.push_image("team/api", "1.0.1", "2026-11-02T00:00:00Z");
    let repo = BareRepo::new(&[("app/kustomization.yaml", "resources: []\n")]);
    let api = format!("{}/team/api", reg.host());

    let mut kust = argo_app(
        &ns,
        "kust",
        &repo.file_url(),
        "app",
        &format!("{api}:~1.0"),
        &[("api.kustomize.image-name", "backend")],
    );
    kust["spec"]["source"]["kustomize"] = json!({
        "namePrefix": "shop-",
        "images": ["sidecar=registry.local/sidecar:2.0", format!("backend={api}:1.0.0")]
    });
    kust["spec"]["syncPolicy"] = json!({"automated": {"prune": true}});
    let mut helm = argo_app(
        &ns,
        "helm",
        &repo.file_url(),
        "app",
        &format!("{api}:~1.0"),
        &[
            ("write-back-method", "argocd"),
            ("api.helm.image-name", "image.repository"),
            ("api.helm.image-tag", "image.tag"),
        ],
    );
    helm["spec"]["source"]["helm"] = json!({
        "valueFiles": ["values-prod.yaml"],
        "parameters": [{"name": "replicaCount", "value": "2"}, {"name": "image.tag", "value": "1.0.0", "forceString": true}]
    });
    cluster.create(kust);
    cluster.create(helm);
    let before = |name: &str| cluster.get("applications", &ns, name).unwrap();
    let (kust_before, helm_before) = (before("kust"), before("helm"));
    let state = dir.path().join("state");
    let args = |cmd: &'static str| {
        let mut a = vec![
            cmd.to_owned(),
            "--applications-from-cluster".to_owned(),
            ns.clone(),
            "--applications-kubeconfig".to_owned(),
            cluster.kubeconfig.display().to_string(),
            "--allow-local-repositories".to_owned(),
            "--state-dir".to_owned(),
            state.display().to_string(),
        ];
        if cmd == "run" {
            a.push("--once".to_owned());
        }
        a
    };
    let run = |cmd: &'static str| {
        let a = args(cmd);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        dw(&a)
    };

    // check: the drift is reported from the live Application; nothing is written.
    let (code, out, err) = run("check");
    assert_eq!(code, 2, "{out}{err}");
    let kust_row = out.lines().find(|l| l.starts_with("kust ")).unwrap();
    assert!(
        kust_row.contains("1.0.0")
            && kust_row.contains("1.0.1")
            && kust_row.contains("update available"),
        "{out}"
    );
    assert_eq!(
        before("kust")["metadata"]["resourceVersion"],
        kust_before["metadata"]["resourceVersion"]
    );

    let (code, out, err) = run("run");
    assert_eq!(code, 0, "{out}{err}");
    for app in ["kust", "helm"] {
        let row = out
            .lines()
            .find(|l| l.starts_with(&format!("{app} ")))
            .unwrap();
        assert!(row.contains("updated"), "{out}{err}");
    }
    assert!(!out.contains("committed"), "{out}");
    assert_eq!(repo.subjects("main").len(), 1, "no commit");

    let kust_after = before("kust");
    assert_eq!(
        kust_after["spec"]["source"]["kustomize"]["images"],
        json!([
            "sidecar=registry.local/sidecar:2.0",
            format!("backend={api}:1.0.1")
        ])
    );
    // Nothing else of the Application changed.
    let mut expected = kust_before["spec"].clone();
    expected["source"]["kustomize"]["images"] =
        kust_after["spec"]["source"]["kustomize"]["images"].clone();
    assert_eq!(kust_after["spec"], expected);
    assert_eq!(
        kust_after["metadata"]["annotations"],
        kust_before["metadata"]["annotations"]
    );

    let helm_after = before("helm");
    let params = helm_after["spec"]["source"]["helm"]["parameters"]
        .as_array()
        .unwrap();
    let param = |name: &str| params.iter().find(|p| p["name"] == name).cloned();
    assert_eq!(
        param("replicaCount"),
        Some(json!({"name": "replicaCount", "value": "2"}))
    );
    assert_eq!(
        param("image.tag"),
        Some(json!({"name": "image.tag", "value": "1.0.1", "forceString": true}))
    );
    assert_eq!(
        param("image.repository"),
        Some(json!({"name": "image.repository", "value": api, "forceString": true}))
    );
    assert_eq!(params.len(), 3, "{params:?}");
    assert_eq!(
        helm_after["spec"]["source"]["helm"]["valueFiles"],
        json!(["values-prod.yaml"])
    );
    assert_eq!(
        helm_after["spec"]["destination"],
        helm_before["spec"]["destination"]
    );
    if cluster.is_real() {
        // An Event on the Application says what changed, as argocd-image-updater records one.
        let events = cluster.events_on(&ns, "kust");
        assert!(
            events
                .iter()
                .any(|(reason, controller, note)| reason == "ImagesUpdated"
                    && controller == "driftwatch"
                    && note.contains("Successfully updated application kust")
                    && note.contains("1.0.0 -> 1.0.1")),
            "{events:?}"
        );
        // Written by driftwatch's field manager, server-side.
        assert!(
            helm_after["metadata"]["managedFields"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m["manager"] == "driftwatch" && m["operation"] == "Apply"),
            "{helm_after}"
        );
    }

    // A second run finds both in sync and writes nothing.
    let (code, out, err) = run("run");
    assert_eq!(code, 0, "{out}{err}");
    assert!(!out.contains("updated"), "{out}");
    assert_eq!(
        before("kust")["metadata"]["resourceVersion"],
        kust_after["metadata"]["resourceVersion"]
    );
}

/// Applications are watched, not listed again each cycle: with an hour between cycles, a new
/// Application and a change to one are acted on within seconds.
#[test]
fn new_and_changed_applications_are_handled_at_once() {
    use driftwatch_testkit::git::BareRepo;
    use driftwatch_testkit::registry::{Auth, Registry};

    let dir = TempDir::new("argo-watch");
    let cluster = Cluster::new(dir.path());
    cluster.install_application_crd();
    let ns = cluster.unique_namespace("dw-argo-watch");
    cluster.create_namespace(&ns);
    let reg = Registry::start(Auth::None);
    reg.push_image("team/api", "1.0.0", "2026-11-01T00:00:00Z");
    reg.push_image("team/api", "1.0.1", "2026-11-02T00:00:00Z");
    let repo = BareRepo::new(&[("app/kustomization.yaml", "resources: []\n")]);
    let api = format!("{}/team/api", reg.host());
    let app = |name: &str, constraint: &str| {
        argo_app(
            &ns,
            name,
            &repo.file_url(),
            "app",
            &format!("{api}:{constraint}"),
            &[],
        )
    };
    cluster.create(app("first", "1.0.0"));
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_driftwatch"))
        .args([
            "run",
            "--interval",
            "3600",
            "--applications-from-cluster",
            &ns,
        ])
        .arg("--applications-kubeconfig")
        .arg(&cluster.kubeconfig)
        .arg("--allow-local-repositories")
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .env("HOME", "/nonexistent")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let images = |name: &str| {
        cluster
            .get("applications", &ns, name)
            .map(|a| a["spec"]["source"]["kustomize"]["images"].clone())
            .unwrap_or(Value::Null)
    };
    let wait = |what: &str, name: &str, want: Value| {
        let started = std::time::Instant::now();
        while images(name) != want {
            assert!(
                started.elapsed() < std::time::Duration::from_secs(30),
                "{what}: {} instead of {want}",
                images(name)
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        started.elapsed()
    };
    wait("the first cycle", "first", json!([format!("{api}:1.0.0")]));

    // A new Application: handled without waiting the hour.
    cluster.create(app("later", "~1.0"));
    let took = wait(
        "the new Application",
        "later",
        json!([format!("{api}:1.0.1")]),
    );
    eprintln!("new Application handled after {took:?}");

    // A changed one: its new constraint is followed at once.
    let mut changed = cluster.get("applications", &ns, "first").unwrap();
    changed["metadata"]["annotations"][format!("{PREFIX}image-list")] =
        json!(format!("api={api}:~1.0"));
    cluster.replace(changed);
    let took = wait(
        "the changed Application",
        "first",
        json!([format!("{api}:1.0.1")]),
    );
    eprintln!("changed Application handled after {took:?}");

    // A deleted one is dropped, and the others go on (no error from the service).
    cluster.delete("applications", &ns, "later");
    terminate(&mut child);
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("ERROR") && !err.contains("error:"), "{err}");
}

/// Stops the service as SIGTERM would.
fn terminate(child: &mut std::process::Child) {
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
}

/// Git → cluster reads the Application's repository with the same Argo CD credentials as the
/// write-back: a repository behind basic auth, known only through a `repository` Secret, is
/// updated and then deployed.
#[test]
fn argo_cd_repository_credentials_reach_the_deploy() {
    use driftwatch_testkit::git::GitHttp;

    let DeployFixture {
        dir,
        cluster,
        ns,
        target,
        reg: _reg,
        api,
        repo,
    } = deploy_fixture("argo-deploy");
    let password = "s3cr3t-deploy-pw";
    let server = GitHttp::start(repo.path.parent().unwrap(), "bot", password);
    let url = format!("http://127.0.0.1:{}/repo.git", server.port);
    cluster.create_secret(
        &ns,
        "repo",
        "Opaque",
        &[("argocd.argoproj.io/secret-type", "repository")],
        &[("url", &url), ("username", "bot"), ("password", password)],
    );
    let mut app = argo_app(
        &ns,
        "api",
        &url,
        "app",
        &format!("{api}:~1.0"),
        &[
            ("write-back-method", "git"),
            ("write-back-target", "kustomization"),
            ("api.kustomize.image-name", "backend"),
        ],
    );
    app["spec"]["destination"]["namespace"] = json!(target);
    app["spec"]["syncPolicy"] = json!({"automated": {"selfHeal": true}});
    cluster.create(app);
    let state = dir.path().join("state");
    let kubeconfig = cluster.kubeconfig.display().to_string();
    let (code, out, err) = dw(&[
        "run",
        "--once",
        "--applications-from-cluster",
        &ns,
        "--applications-kubeconfig",
        &kubeconfig,
        "--kubeconfig",
        &kubeconfig,
        "--state-dir",
        state.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        repo.show("main", "app/kustomization.yaml")
            .contains("newTag: 1.0.1")
    );
    let live = cluster
        .get("deployments", &target, "backend")
        .unwrap_or_else(|| panic!("not deployed: {out}{err}"));
    assert_eq!(
        live["spec"]["template"]["spec"]["containers"][0]["image"],
        format!("{api}:1.0.1")
    );
    assert!(!out.contains(password) && !err.contains(password));
}

/// RBAC that lets driftwatch read Applications but not patch them: `write-back-method: argocd`
/// fails that Application with the API server's refusal (naming it and the verb); an
/// Application written to Git goes on.
#[test]
fn a_forbidden_patch_names_the_application_and_the_verb() {
    use driftwatch_testkit::git::BareRepo;
    use driftwatch_testkit::registry::{Auth, Registry};

    let dir = TempDir::new("argo-rbac");
    let cluster = Cluster::new(dir.path());
    cluster.install_application_crd();
    let ns = cluster.unique_namespace("dw-argo-rbac");
    cluster.create_namespace(&ns);
    let reg = Registry::start(Auth::None);
    reg.push_image("team/api", "1.0.0", "2026-11-01T00:00:00Z");
    reg.push_image("team/api", "1.0.1", "2026-11-02T00:00:00Z");
    let repo = BareRepo::new(&[("app/kustomization.yaml", "resources: []\n")]);
    let image = format!("{}/team/api:~1.0", reg.host());
    cluster.create(argo_app(&ns, "live", &repo.file_url(), "app", &image, &[]));
    cluster.create(argo_app(
        &ns,
        "git",
        &repo.file_url(),
        "app",
        &image,
        &[("write-back-method", "git")],
    ));
    let kubeconfig = cluster.kubeconfig_allowed(
        &ns,
        "reader",
        "- apiGroups: [argoproj.io]\n  resources: [applications]\n  verbs: [get, list, watch]\n- apiGroups: ['']\n  resources: [secrets]\n  verbs: [get, list]\n",
        dir.path(),
    );
    if let Some(fake) = &cluster.fake {
        fake.forbid_method("PATCH", "applications", &ns);
    }
    let state = dir.path().join("state");
    let (code, out, err) = dw(&[
        "run",
        "--once",
        "--applications-from-cluster",
        &ns,
        "--applications-kubeconfig",
        kubeconfig.to_str().unwrap(),
        "--allow-local-repositories",
        "--state-dir",
        state.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{out}{err}");
    let row = |app: &str| {
        out.lines()
            .find(|l| l.starts_with(&format!("{app} ")))
            .unwrap_or_else(|| panic!("no row for {app}: {out}{err}"))
            .to_owned()
    };
    let live = row("live");
    assert!(
        live.contains("error")
            && live.contains(&format!("Application/{ns}/live"))
            && live.contains("403"),
        "{live}"
    );
    if cluster.is_real() {
        assert!(
            live.contains("cannot patch resource \"applications\""),
            "{live}"
        );
    }
    assert!(row("git").contains("updated"), "{out}");
    assert!(
        cluster.get("applications", &ns, "live").unwrap()["spec"]["source"]
            .get("kustomize")
            .is_none()
    );
}

/// `git:secret:` with an `sshPrivateKey`: the key is used over SSH, the server checked against
/// Argo CD's own known hosts (`argocd-ssh-known-hosts-cm`, `ssh_known_hosts`).
#[test]
fn git_ssh_key_from_a_secret_with_argo_cd_known_hosts() {
    use driftwatch_testkit::git::{BareRepo, Sshd};
    use driftwatch_testkit::registry::{Auth, Registry};

    let Some(sshd) = Sshd::start() else {
        eprintln!("skipped: needs sshd");
        return;
    };
    let dir = TempDir::new("argo-ssh");
    let cluster = Cluster::new(dir.path());
    cluster.install_application_crd();
    let ns = cluster.unique_namespace("dw-argo-ssh");
    cluster.create_namespace(&ns);
    let reg = Registry::start(Auth::None);
    reg.push_image("team/api", "1.0.0", "2026-11-01T00:00:00Z");
    reg.push_image("team/api", "1.0.1", "2026-11-02T00:00:00Z");
    let repo = BareRepo::new(&[("app/kustomization.yaml", "resources: []\n")]);
    let key = std::fs::read_to_string(sshd.client_key()).unwrap();
    cluster.create_secret(&ns, "gitssh", "Opaque", &[], &[("sshPrivateKey", &key)]);
    let url = sshd.url(&repo.path);
    cluster.create(argo_app(
        &ns,
        "api",
        &url,
        "app",
        &format!("{}/team/api:~1.0", reg.host()),
        &[("write-back-method", &format!("git:secret:{ns}/gitssh"))],
    ));
    let state = dir.path().join("state");
    let run = || {
        dw(&[
            "run",
            "--once",
            "--applications-from-cluster",
            &ns,
            "--applications-kubeconfig",
            cluster.kubeconfig.to_str().unwrap(),
            "--state-dir",
            state.to_str().unwrap(),
        ])
    };
    // Without Argo CD's known hosts the server is not trusted: nothing is written.
    let (code, out, err) = run();
    assert_eq!(code, 1, "{out}{err}");
    assert_eq!(repo.subjects("main").len(), 1);
    cluster.create(json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "argocd-ssh-known-hosts-cm", "namespace": ns},
        "data": {"ssh_known_hosts": std::fs::read_to_string(sshd.known_hosts()).unwrap()},
    }));
    let (code, out, err) = run();
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        repo.show("main", &format!("app/.argocd-source-{ns}_api.yaml"))
            .contains("team/api:1.0.1")
    );
    assert!(!out.contains("PRIVATE KEY") && !err.contains("PRIVATE KEY"));
}

/// An Application that is not valid is left out, named in the log, while the others are
/// updated; a single pass then fails.
#[test]
fn an_invalid_application_does_not_stop_the_others() {
    use driftwatch_testkit::git::BareRepo;
    use driftwatch_testkit::registry::{Auth, Registry};

    let dir = TempDir::new("argo-invalid");
    let cluster = Cluster::new(dir.path());
    cluster.install_application_crd();
    let ns = cluster.unique_namespace("dw-argo-invalid");
    cluster.create_namespace(&ns);
    let reg = Registry::start(Auth::None);
    reg.push_image("team/api", "1.0.0", "2026-11-01T00:00:00Z");
    reg.push_image("team/api", "1.0.1", "2026-11-02T00:00:00Z");
    let repo = BareRepo::new(&[("app/kustomization.yaml", "resources: []\n")]);
    let image = format!("{}/team/api:~1.0", reg.host());
    cluster.create(argo_app(
        &ns,
        "bad",
        &repo.file_url(),
        "app",
        &image,
        &[
            ("write-back-method", "git"),
            ("api.allow-tags", "regexp:^(v"),
        ],
    ));
    cluster.create(argo_app(
        &ns,
        "good",
        &repo.file_url(),
        "app",
        &image,
        &[("write-back-method", "git")],
    ));
    let state = dir.path().join("state");
    let (code, out, err) = dw(&[
        "run",
        "--once",
        "--applications-from-cluster",
        &ns,
        "--applications-kubeconfig",
        cluster.kubeconfig.to_str().unwrap(),
        "--allow-local-repositories",
        "--state-dir",
        state.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains(
            "Application bad: metadata.annotations[argocd-image-updater.argoproj.io/api.allow-tags]"
        ),
        "{err}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("good ") && l.contains("updated")),
        "{out}{err}"
    );
    assert!(!out.lines().any(|l| l.starts_with("bad ")), "{out}");
}

/// With driftwatch also syncing (`--kubeconfig`), an update written to the live Application
/// (`write-back-method: argocd`) reaches the workload, as Argo CD renders the Application's
/// `spec.source.kustomize.images` — in one pass, and in the service as the watch sees it.
#[test]
fn live_image_overrides_are_deployed() {
    let DeployFixture {
        dir,
        cluster,
        ns,
        target,
        reg: _reg,
        api,
        repo,
    } = deploy_fixture("argo-live-deploy");
    let mut app = argo_app(
        &ns,
        "api",
        &repo.file_url(),
        "app",
        &format!("{api}:1.0.0"),
        &[("api.kustomize.image-name", "backend")],
    );
    app["spec"]["destination"]["namespace"] = json!(target);
    app["spec"]["syncPolicy"] = json!({"automated": {"selfHeal": true}});
    cluster.create(app);
    let image = || {
        cluster.get("deployments", &target, "backend").map(|d| {
            d["spec"]["template"]["spec"]["containers"][0]["image"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
    };
    let state = dir.path().join("state");
    let kubeconfig = cluster.kubeconfig.display().to_string();
    let common = [
        "--applications-from-cluster",
        ns.as_str(),
        "--applications-kubeconfig",
        kubeconfig.as_str(),
        "--kubeconfig",
        kubeconfig.as_str(),
        "--allow-local-repositories",
        "--state-dir",
        state.to_str().unwrap(),
    ];
    // One pass: the exact constraint keeps 1.0.0, written into the Application and deployed.
    let mut once = vec!["run", "--once"];
    once.extend(common);
    let (code, out, err) = dw(&once);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(image(), Some(format!("{api}:1.0.0")), "{out}{err}");

    // The service: widening the constraint writes 1.0.1 into the Application, which the watch
    // sees and the deploy renders — with no commit.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_driftwatch"))
        .args(["run", "--interval", "3600"])
        .args(common)
        .env("HOME", "/nonexistent")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut changed = cluster.get("applications", &ns, "api").unwrap();
    changed["metadata"]["annotations"][format!("{PREFIX}image-list")] =
        json!(format!("api={api}:~1.0"));
    cluster.replace(changed);
    let started = std::time::Instant::now();
    while image() != Some(format!("{api}:1.0.1")) {
        if started.elapsed() > std::time::Duration::from_secs(60) {
            terminate(&mut child);
            let out = child.wait_with_output().unwrap();
            panic!(
                "not deployed: {:?}\n{}",
                image(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    terminate(&mut child);
    let _ = child.wait();
    assert_eq!(repo.subjects("main").len(), 1, "no commit");
    assert_eq!(
        cluster.get("applications", &ns, "api").unwrap()["spec"]["source"]["kustomize"]["images"],
        json!([format!("backend={api}:1.0.1")])
    );
}

/// The watch survives an API server restart whose history was compacted: it lists again and
/// an Application created meanwhile is handled. (The fake only: a real server cannot be made to
/// drop its history on purpose.)
#[test]
fn the_application_watch_recovers_after_a_restart() {
    use driftwatch_testkit::git::BareRepo;
    use driftwatch_testkit::registry::{Auth, Registry};

    let dir = TempDir::new("argo-restart");
    let cluster = Cluster::fake_only(
        dir.path(),
        "an API server restart with compacted history (410 Gone on resume)",
    );
    let fake = cluster.fake.as_ref().unwrap();
    let ns = "argocd";
    cluster.create_namespace(ns);
    let reg = Registry::start(Auth::None);
    reg.push_image("team/api", "1.0.0", "2026-11-01T00:00:00Z");
    let repo = BareRepo::new(&[("app/kustomization.yaml", "resources: []\n")]);
    let api = format!("{}/team/api", reg.host());
    let app = |name: &str| {
        argo_app(
            ns,
            name,
            &repo.file_url(),
            "app",
            &format!("{api}:~1.0"),
            &[],
        )
    };
    cluster.create(app("first"));
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_driftwatch"))
        .args([
            "run",
            "--interval",
            "3600",
            "--applications-from-cluster",
            ns,
        ])
        .arg("--applications-kubeconfig")
        .arg(&cluster.kubeconfig)
        .arg("--allow-local-repositories")
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .env("HOME", "/nonexistent")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut handled = |name: &str| {
        let started = std::time::Instant::now();
        loop {
            let images = cluster
                .get("applications", ns, name)
                .map(|a| a["spec"]["source"]["kustomize"]["images"].clone());
            if images == Some(json!([format!("{api}:1.0.0")])) {
                return;
            }
            if started.elapsed() > std::time::Duration::from_secs(60) {
                terminate(&mut child);
                panic!("{name} not handled: {images:?}");
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    };
    handled("first");
    fake.go_down();
    std::thread::sleep(std::time::Duration::from_millis(500));
    cluster.create(app("second"));
    fake.up();
    handled("second");
    assert!(fake.refused() > 0, "the watch was not cut off");
    terminate(&mut child);
    let _ = child.wait();
}

/// What the deploy tests share: a cluster with the Application CRD, a namespace for the
/// Applications and one they deploy to, a registry with `team/api` 1.0.0 and 1.0.1, and a
/// repository whose `app` kustomization deploys `backend` from it at 1.0.0.
struct DeployFixture {
    dir: TempDir,
    cluster: Cluster,
    ns: String,
    target: String,
    reg: driftwatch_testkit::registry::Registry,
    api: String,
    repo: driftwatch_testkit::git::BareRepo,
}

fn deploy_fixture(name: &str) -> DeployFixture {
    use driftwatch_testkit::git::BareRepo;
    use driftwatch_testkit::registry::{Auth, Registry};
    let dir = TempDir::new(name);
    let cluster = Cluster::new(dir.path());
    cluster.install_application_crd();
    let ns = cluster.unique_namespace(&format!("dw-{name}"));
    let target = cluster.unique_namespace(&format!("dw-{name}-target"));
    cluster.create_namespace(&ns);
    let reg = Registry::start(Auth::None);
    reg.push_image("team/api", "1.0.0", "2026-11-01T00:00:00Z");
    reg.push_image("team/api", "1.0.1", "2026-11-02T00:00:00Z");
    let api = format!("{}/team/api", reg.host());
    let repo = BareRepo::new(&[
        (
            "app/kustomization.yaml",
            &format!(
                "resources:\n- namespace.yaml\n- deployment.yaml\nimages:\n- name: backend\n  newName: {api}\n  newTag: 1.0.0\n"
            ),
        ),
        (
            "app/namespace.yaml",
            &format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {target}\n"),
        ),
        (
            "app/deployment.yaml",
            &format!(
                "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: backend\n  namespace: {target}\nspec:\n  replicas: 1\n  selector:\n    matchLabels:\n      app: backend\n  template:\n    metadata:\n      labels:\n        app: backend\n    spec:\n      containers:\n      - name: backend\n        image: backend\n"
            ),
        ),
    ]);
    DeployFixture {
        dir,
        cluster,
        ns,
        target,
        reg,
        api,
        repo,
    }
}
