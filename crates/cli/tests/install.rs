//! The install manifests under `deploy/`: every overlay renders with `kubectl kustomize` and
//! says what the README promises; the probes point at endpoints the binary serves; and, on a
//! real API server (`DRIFTWATCH_E2E_KUBECONFIG`), the server accepts every object, the RBAC
//! grants what driftwatch needs and nothing it must not have (`kubectl auth can-i` as its
//! service account), and the binary itself, holding only that service account's token, syncs,
//! heals and prunes an application — or, detect-only, reports and changes nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use driftwatch_testkit::TempDir;
use driftwatch_testkit::git::BareRepo;
use serde_json::Value;

const OVERLAYS: [&str; 4] = [
    "base",
    "overlays/ha",
    "overlays/sharded",
    "overlays/detect-only",
];

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy")
        .canonicalize()
        .unwrap()
}

/// The real API server's admin kubeconfig, or `None` (and a line saying what is skipped).
fn real_server(what: &str) -> Option<PathBuf> {
    match std::env::var_os("DRIFTWATCH_E2E_KUBECONFIG") {
        Some(k) => Some(PathBuf::from(k)),
        None => {
            eprintln!("skipped: {what} needs a real API server (DRIFTWATCH_E2E_KUBECONFIG)");
            None
        }
    }
}

fn run(cmd: &mut Command, stdin: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn kubectl(kubeconfig: &Path, args: &[&str], stdin: &str) -> Output {
    run(
        Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(args),
        stdin,
    )
}

fn ok(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn kustomize(dir: &Path) -> (String, Vec<Value>) {
    let out = run(Command::new("kubectl").arg("kustomize").arg(dir), "");
    let text = ok(&out, &format!("kubectl kustomize {}", dir.display()));
    let objects = driftwatch_cluster::parse_objects(&text, "kustomize output").unwrap();
    (text, objects)
}

fn find<'a>(objects: &'a [Value], kind: &str) -> Vec<&'a Value> {
    objects.iter().filter(|o| o["kind"] == kind).collect()
}

fn one<'a>(objects: &'a [Value], kind: &str) -> &'a Value {
    let found = find(objects, kind);
    assert_eq!(found.len(), 1, "one {kind}");
    found[0]
}

const WRITE_VERBS: [&str; 7] = [
    "create",
    "update",
    "patch",
    "delete",
    "deletecollection",
    "*",
    "escalate",
];

fn rules(objects: &[Value]) -> Vec<(&str, &Value)> {
    objects
        .iter()
        .filter(|o| o["kind"] == "ClusterRole" || o["kind"] == "Role")
        .flat_map(|o| {
            let name = o["metadata"]["name"].as_str().unwrap();
            o["rules"]
                .as_array()
                .unwrap()
                .iter()
                .map(move |r| (name, r))
        })
        .collect()
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

#[test]
fn every_overlay_renders_as_documented() {
    for overlay in OVERLAYS {
        let (_, objects) = kustomize(&deploy_dir().join(overlay));
        let kinds: std::collections::BTreeSet<&str> =
            objects.iter().filter_map(|o| o["kind"].as_str()).collect();
        for kind in [
            "Namespace",
            "ServiceAccount",
            "ClusterRole",
            "ClusterRoleBinding",
            "Role",
            "RoleBinding",
            "Deployment",
            "Service",
            "ConfigMap",
        ] {
            assert!(kinds.contains(kind), "{overlay}: no {kind}");
        }
        // The Deployment: non-root, read-only root, nothing added, seccomp, writable volumes.
        let d = one(&objects, "Deployment");
        let pod = &d["spec"]["template"]["spec"];
        let c = &pod["containers"][0];
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{overlay}");
        assert_eq!(pod["securityContext"]["runAsUser"], 65532, "{overlay}");
        assert_eq!(
            pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault",
            "{overlay}"
        );
        let sc = &c["securityContext"];
        assert_eq!(sc["readOnlyRootFilesystem"], true, "{overlay}");
        assert_eq!(sc["allowPrivilegeEscalation"], false, "{overlay}");
        assert_eq!(strings(&sc["capabilities"]["drop"]), ["ALL"], "{overlay}");
        assert!(sc["capabilities"].get("add").is_none(), "{overlay}");
        assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
        assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
        assert!(
            c["resources"]["requests"]["memory"].is_string(),
            "{overlay}"
        );
        assert!(c["resources"]["limits"]["memory"].is_string(), "{overlay}");
        for (path, volume) in [("/var/lib/driftwatch", "state"), ("/tmp", "tmp")] {
            assert!(
                c["volumeMounts"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|m| m["mountPath"] == path && m["name"] == volume),
                "{overlay}: {path} is not a volume"
            );
            assert!(
                pod["volumes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|v| v["name"] == volume && v.get("emptyDir").is_some()),
                "{overlay}: {volume} is not an emptyDir"
            );
        }
        assert_eq!(pod["serviceAccountName"], "driftwatch");
        let service = one(&objects, "Service");
        assert_eq!(service["spec"]["ports"][0]["targetPort"], "http");

        // The configuration it mounts is valid, and so is its kubeconfig's shape.
        let config = one(&objects, "ConfigMap");
        let dir = TempDir::new("install-config");
        let file = dir.path().join("driftwatch.yaml");
        std::fs::write(&file, config["data"]["driftwatch.yaml"].as_str().unwrap()).unwrap();
        let loaded = driftwatch_engine::Config::load(&file)
            .unwrap_or_else(|e| panic!("{overlay}: driftwatch.yaml: {e}"));
        assert!(!loaded.apps.is_empty(), "{overlay}");
        let sync = loaded.apps[0].sync.as_ref().expect("a sync policy");
        assert_eq!(
            sync.automated,
            overlay != "overlays/detect-only",
            "{overlay}: detect-only means no automated sync"
        );
        let kubeconfig = config["data"]["kubeconfig"].as_str().unwrap();
        assert!(
            kubeconfig.contains("tokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token"),
            "{kubeconfig}"
        );

        // Secrets only by name; never a write to RBAC or a verb wildcard.
        for (role, rule) in rules(&objects) {
            let resources = strings(&rule["resources"]);
            if resources.contains(&"secrets") {
                assert!(
                    !strings(&rule["resourceNames"]).is_empty(),
                    "{overlay}: {role} reads Secrets not named"
                );
                assert_eq!(strings(&rule["verbs"]), ["get"], "{overlay}: {role}");
            }
            assert!(!resources.contains(&"*"), "{overlay}: {role}");
            assert!(!strings(&rule["verbs"]).contains(&"*"), "{overlay}: {role}");
            assert!(
                !strings(&rule["apiGroups"]).contains(&"rbac.authorization.k8s.io"),
                "{overlay}: {role} touches RBAC"
            );
        }
        let replicas = &d["spec"]["replicas"];
        match overlay {
            "overlays/ha" | "overlays/sharded" => {
                // Several replicas only with leader election, named by the pod; sharded, three
                // replicas share six shards.
                let container = &d["spec"]["template"]["spec"]["containers"][0];
                let args = strings(&container["args"]);
                assert!(args.contains(&"--leader-elect"), "{container}");
                if overlay == "overlays/sharded" {
                    assert_eq!(replicas, 3);
                    assert!(args.contains(&"--shards=6"), "{container}");
                } else {
                    assert_eq!(replicas, 2);
                    assert!(!args.iter().any(|a| a.starts_with("--shards")));
                }
                let env = container["env"].as_array().unwrap();
                for (var, field) in [
                    ("POD_NAME", "metadata.name"),
                    ("POD_NAMESPACE", "metadata.namespace"),
                ] {
                    assert!(
                        env.iter().any(|e| e["name"] == var
                            && e["valueFrom"]["fieldRef"]["fieldPath"] == field),
                        "{var} from {field}: {env:?}"
                    );
                }
                let pdb = one(&objects, "PodDisruptionBudget");
                assert_eq!(pdb["spec"]["minAvailable"], 1);
                assert_eq!(
                    pdb["spec"]["selector"]["matchLabels"],
                    d["spec"]["selector"]["matchLabels"]
                );
            }
            _ => {
                assert_eq!(
                    replicas, 1,
                    "{overlay}: one replica without leader election"
                );
                assert_eq!(d["spec"]["strategy"]["type"], "Recreate", "{overlay}");
                assert!(find(&objects, "PodDisruptionBudget").is_empty());
            }
        }
        if overlay == "overlays/detect-only" {
            // Only the namespace's Role may write (Leases), and only Events cluster-wide.
            for (role, rule) in rules(&objects) {
                let verbs = strings(&rule["verbs"]);
                let resources = strings(&rule["resources"]);
                if verbs.iter().any(|v| WRITE_VERBS.contains(v)) {
                    assert!(
                        resources == ["leases"] || resources == ["events"],
                        "{overlay}: {role} may write {resources:?}"
                    );
                }
            }
        }
    }
}

/// GET `path` on 127.0.0.1:`port`: the status code.
fn http_status(port: u16, path: &str) -> Option<u16> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    text.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn the_probes_ask_endpoints_the_binary_serves() {
    let (_, objects) = kustomize(&deploy_dir().join("base"));
    let c = &one(&objects, "Deployment")["spec"]["template"]["spec"]["containers"][0];
    let live = c["livenessProbe"]["httpGet"]["path"].as_str().unwrap();
    let ready = c["readinessProbe"]["httpGet"]["path"].as_str().unwrap();
    let startup = c["startupProbe"]["httpGet"]["path"].as_str().unwrap();
    let dir = TempDir::new("install-probes");
    let conf = dir.path().join("driftwatch.yaml");
    std::fs::write(&conf, "interval: 1h\napplications: []\n").unwrap();
    let port = driftwatch_testkit::free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_driftwatch"))
        .args(["run", "--config"])
        .arg(&conf)
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut seen = (None, None, None);
    while std::time::Instant::now() < deadline {
        seen = (
            http_status(port, live),
            http_status(port, ready),
            http_status(port, startup),
        );
        if seen == (Some(200), Some(200), Some(200)) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(seen, (Some(200), Some(200), Some(200)), "{live} {ready}");
    // A path the binary does not serve would not pass for one.
    assert_ne!(http_status(port, "/no-such-probe"), Some(200));
}

/// One overlay installed for a test: in its own namespace, with every name suffixed so that
/// cluster-scoped objects of parallel tests never meet; all of it deleted at the end.
struct Installed {
    admin: PathBuf,
    ns: String,
    suffix: String,
    objects: Vec<Value>,
    text: String,
    _dir: TempDir,
}

fn relative(from: &Path, to: &Path) -> PathBuf {
    let from: Vec<_> = from.components().collect();
    let to: Vec<_> = to.components().collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut rel = PathBuf::new();
    for _ in common..from.len() {
        rel.push("..");
    }
    for c in &to[common..] {
        rel.push(c);
    }
    rel
}

impl Installed {
    fn render(admin: &Path, overlay: &str, tag: &str) -> Self {
        let suffix = format!("{tag}-{}", std::process::id());
        let ns = format!("dw-install-{suffix}");
        let dir = TempDir::new(&format!("install-{tag}"));
        let root = dir.path().canonicalize().unwrap();
        // kustomize takes other kustomizations by relative path only.
        let base = relative(&root, &deploy_dir().join(overlay));
        std::fs::write(
            root.join("kustomization.yaml"),
            format!(
                "resources:\n- {}\nnamespace: {ns}\nnameSuffix: \"-{suffix}\"\nlabels:\n- pairs:\n    driftwatch.io/install-test: \"{suffix}\"\n",
                base.display()
            ),
        )
        .unwrap();
        let (text, objects) = kustomize(&root);
        Installed {
            admin: admin.to_path_buf(),
            ns,
            suffix,
            objects,
            text,
            _dir: dir,
        }
    }

    fn service_account(&self) -> String {
        format!("driftwatch-{}", self.suffix)
    }

    fn can_i(&self, verb: &str, resource: &str, scope: &str) -> bool {
        // `resource#sub` asks for a subresource (`serviceaccounts/token` would name an object).
        let (resource, sub) = match resource.split_once('#') {
            Some((r, s)) => (r, Some(format!("--subresource={s}"))),
            None => (resource, None),
        };
        let mut args = vec!["auth", "can-i", verb, resource];
        if let Some(s) = &sub {
            args.push(s);
        }
        let user = format!(
            "--as=system:serviceaccount:{}:{}",
            self.ns,
            self.service_account()
        );
        args.push(&user);
        let own = ["-n", &self.ns];
        match scope {
            "all" => args.push("--all-namespaces"),
            "own" => args.extend(own),
            "cluster" => {}
            other => args.extend(["-n", other]),
        }
        let out = kubectl(&self.admin, &args, "");
        match out.status.code() {
            Some(0) => true,
            Some(1) => false,
            _ => panic!("can-i {args:?}: {}", String::from_utf8_lossy(&out.stderr)),
        }
    }

    /// A kubeconfig holding only the service account's token (TokenRequest API), as a token
    /// file: the shape of the in-cluster kubeconfig the ConfigMap mounts.
    fn service_account_kubeconfig(&self, dir: &Path) -> PathBuf {
        let token = ok(
            &kubectl(
                &self.admin,
                &[
                    "-n",
                    &self.ns,
                    "create",
                    "token",
                    &self.service_account(),
                    "--duration=1h",
                ],
                "",
            ),
            "kubectl create token",
        );
        std::fs::write(dir.join("token"), token.trim()).unwrap();
        let admin: Value = serde_json::from_str(&ok(
            &kubectl(
                &self.admin,
                &["config", "view", "--raw", "--minify", "-o", "json"],
                "",
            ),
            "kubectl config view",
        ))
        .unwrap();
        let cluster = &admin["clusters"][0]["cluster"];
        let path = dir.join("sa-kubeconfig");
        std::fs::write(
            &path,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {}\n    certificate-authority-data: {}\nusers:\n- name: sa\n  user:\n    tokenFile: token\ncontexts:\n- name: sa\n  context:\n    cluster: c\n    user: sa\ncurrent-context: sa\n",
                cluster["server"].as_str().unwrap(),
                cluster["certificate-authority-data"].as_str().unwrap(),
            ),
        )
        .unwrap();
        path
    }

    /// Server-side dry run of everything (after the Namespace, which the rest lives in, is
    /// created for real), then the real apply.
    fn apply(&self) {
        let namespace = one(&self.objects, "Namespace");
        ok(
            &kubectl(
                &self.admin,
                &["apply", "--server-side", "-f", "-"],
                &namespace.to_string(),
            ),
            "apply the Namespace",
        );
        let out = kubectl(
            &self.admin,
            &[
                "apply",
                "--server-side",
                "--dry-run=server",
                "-o",
                "json",
                "-f",
                "-",
            ],
            &self.text,
        );
        let accepted: Value = serde_json::from_str(&ok(&out, "server-side dry run")).unwrap();
        let items = accepted["items"].as_array().unwrap();
        assert_eq!(items.len(), self.objects.len(), "every object accepted");
        let warnings = String::from_utf8_lossy(&out.stderr);
        assert!(
            !warnings.contains("violate PodSecurity"),
            "the pod must meet the restricted standard: {warnings}"
        );
        ok(
            &kubectl(
                &self.admin,
                &["apply", "--server-side", "-f", "-"],
                &self.text,
            ),
            "apply",
        );
    }
}

impl Drop for Installed {
    fn drop(&mut self) {
        let label = format!("driftwatch.io/install-test={}", self.suffix);
        let _ = kubectl(
            &self.admin,
            &[
                "delete",
                "clusterrole,clusterrolebinding,namespace",
                "-l",
                &label,
                "--wait=false",
            ],
            "",
        );
    }
}

/// (verb, resource, scope, allowed with the base's RBAC, allowed detect-only). Scope: "own"
/// (its namespace), "all" (every namespace), "cluster", or another namespace's name.
const MATRIX: &[(&str, &str, &str, bool, bool)] = &[
    ("get", "deployments", "all", true, true),
    ("list", "deployments", "all", true, true),
    ("watch", "deployments", "all", true, true),
    ("list", "configmaps", "all", true, true),
    ("watch", "statefulsets.apps", "all", true, true),
    ("list", "pods", "all", true, true),
    ("list", "replicasets.apps", "all", true, true),
    ("get", "namespaces", "cluster", true, true),
    ("patch", "deployments", "default", true, false),
    ("create", "deployments", "default", true, false),
    ("delete", "deployments", "default", true, false),
    ("patch", "configmaps", "default", true, false),
    ("patch", "services", "kube-public", true, false),
    ("create", "namespaces", "cluster", true, false),
    ("patch", "namespaces", "cluster", true, false),
    ("create", "events", "default", true, true),
    ("create", "events.events.k8s.io", "default", true, true),
    ("get", "leases.coordination.k8s.io", "own", true, true),
    ("create", "leases.coordination.k8s.io", "own", true, true),
    ("update", "leases.coordination.k8s.io", "own", true, true),
    ("list", "leases.coordination.k8s.io", "own", true, true),
    ("get", "secrets/driftwatch-git", "own", true, true),
    ("get", "secrets/driftwatch-registry", "own", true, true),
    // Must not.
    ("list", "secrets", "all", false, false),
    ("list", "secrets", "own", false, false),
    ("get", "secrets", "default", false, false),
    ("get", "secrets/driftwatch-git", "default", false, false),
    ("get", "secrets/other", "own", false, false),
    ("watch", "secrets", "all", false, false),
    ("delete", "namespaces", "cluster", false, false),
    (
        "update",
        "leases.coordination.k8s.io",
        "default",
        false,
        false,
    ),
    // The elector lists its namespace's Leases (every shard's and member's in one call) and
    // replaces one at a resourceVersion: never a patch, never another namespace's.
    ("patch", "leases.coordination.k8s.io", "own", false, false),
    (
        "list",
        "leases.coordination.k8s.io",
        "default",
        false,
        false,
    ),
    ("create", "pods", "default", false, false),
    ("create", "pods#exec", "default", false, false),
    ("escalate", "clusterroles", "cluster", false, false),
    ("bind", "clusterroles", "cluster", false, false),
    ("create", "clusterrolebindings", "cluster", false, false),
    ("create", "rolebindings", "default", false, false),
    ("patch", "roles", "own", false, false),
    ("impersonate", "serviceaccounts", "all", false, false),
    ("create", "serviceaccounts#token", "own", false, false),
    (
        "create",
        "serviceaccounts#token",
        "kube-system",
        false,
        false,
    ),
    ("get", "nodes", "cluster", false, false),
    (
        "create",
        "customresourcedefinitions.apiextensions.k8s.io",
        "cluster",
        false,
        false,
    ),
    (
        "patch",
        "mutatingwebhookconfigurations",
        "cluster",
        false,
        false,
    ),
];

#[test]
fn the_server_accepts_every_object_and_grants_least_privilege() {
    let Some(admin) = real_server("install manifests on the API server") else {
        return;
    };
    let mut table =
        String::from("RBAC as the service account (base / ha / sharded / detect-only):\n");
    let installed: Vec<(&str, Installed)> = OVERLAYS
        .iter()
        .map(|o| {
            let tag = o.rsplit('/').next().unwrap();
            let i = Installed::render(&admin, o, tag);
            i.apply();
            (*o, i)
        })
        .collect();
    let mut wrong = Vec::new();
    for (verb, resource, scope, base, detect) in MATRIX {
        let mut cells = Vec::new();
        for (overlay, i) in &installed {
            let want = if *overlay == "overlays/detect-only" {
                *detect
            } else {
                *base
            };
            let got = i.can_i(verb, resource, scope);
            if got != want {
                wrong.push(format!("{overlay}: {verb} {resource} ({scope}) is {got}"));
            }
            cells.push(if got { "yes" } else { "no" });
        }
        table.push_str(&format!(
            "  {:<12} {:<48} {:<12} {}\n",
            verb,
            resource,
            scope,
            cells.join(" / ")
        ));
    }
    eprintln!("{table}");
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

fn app_manifests(ns: &str) -> Vec<(String, String)> {
    vec![
        (
            "apps/web/namespace.yaml".into(),
            format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n"),
        ),
        (
            "apps/web/configmap.yaml".into(),
            format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: {ns}\ndata:\n  mode: fast\n"
            ),
        ),
        (
            "apps/web/deployment.yaml".into(),
            format!(
                "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: {ns}\nspec:\n  replicas: 1\n  selector:\n    matchLabels:\n      app: web\n  template:\n    metadata:\n      labels:\n        app: web\n    spec:\n      containers:\n      - name: web\n        image: registry.local/web:v1.0.0\n"
            ),
        ),
    ]
}

fn driftwatch(conf: &Path, state: &Path, kubeconfig: &Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_driftwatch"))
        .args(args)
        .arg("--config")
        .arg(conf)
        .arg("--state-dir")
        .arg(state)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn live_image(admin: &Path, ns: &str) -> String {
    ok(
        &kubectl(
            admin,
            &[
                "-n",
                ns,
                "get",
                "deployment",
                "web",
                "-o",
                "jsonpath={.spec.template.spec.containers[0].image}",
            ],
            "",
        ),
        "get the deployment",
    )
}

#[test]
fn driftwatch_syncs_heals_and_prunes_as_its_service_account() {
    let Some(admin) = real_server("running driftwatch as its service account") else {
        return;
    };
    let installed = Installed::render(&admin, "base", "sa");
    installed.apply();
    let dir = TempDir::new("install-sa");
    let kubeconfig = installed.service_account_kubeconfig(dir.path());
    // The token really is the service account's: it may not list Secrets.
    let out = kubectl(&kubeconfig, &["get", "secrets", "-A"], "");
    assert!(!out.status.success(), "the service account lists Secrets");

    let app_ns = format!("dw-install-app-{}", std::process::id());
    let files = app_manifests(&app_ns);
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    let repo = BareRepo::new(&refs);
    let conf = dir.path().join("driftwatch.yaml");
    std::fs::write(
        &conf,
        format!(
            "applications:\n- name: web\n  repo: {}\n  path: apps/web\n  writeBack: manifests:deployment.yaml\n  images:\n  - image: registry.local/web\n  sync:\n    namespace: {app_ns}\n    automated: {{selfHeal: true, prune: true}}\n",
            repo.file_url()
        ),
    )
    .unwrap();
    let state = dir.path().join("state");
    let _cleanup = Cleanup(admin.clone(), app_ns.clone());
    let dw = |args: &[&str]| driftwatch(&conf, &state, &kubeconfig, args);

    let (code, out) = dw(&["sync", "web"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("3 applied"), "{out}");
    assert_eq!(live_image(&admin, &app_ns), "registry.local/web:v1.0.0");
    let (code, out) = dw(&["status", "-o", "json"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("\"Synced\""), "{out}");

    // A manual change (as the admin) is seen and healed by the service account.
    ok(
        &kubectl(
            &admin,
            &[
                "-n",
                &app_ns,
                "set",
                "image",
                "deployment/web",
                "web=registry.local/web:manual",
            ],
            "",
        ),
        "kubectl set image",
    );
    let (code, out) = dw(&["status"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("OutOfSync"), "{out}");
    let (code, out) = dw(&["sync", "web"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(live_image(&admin, &app_ns), "registry.local/web:v1.0.0");

    // Gone from Git, pruned.
    repo.commit_elsewhere("apps/web/configmap.yaml", "", "drop the configmap");
    let (code, out) = dw(&["sync", "web", "--prune"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("pruned ConfigMap/{app_ns}/settings")),
        "{out}"
    );

    // Detect-only: the same application is reported, and nothing is applied.
    let detect = Installed::render(&admin, "overlays/detect-only", "detect");
    detect.apply();
    let ddir = TempDir::new("install-detect");
    let dkubeconfig = detect.service_account_kubeconfig(ddir.path());
    ok(
        &kubectl(
            &admin,
            &[
                "-n",
                &app_ns,
                "set",
                "image",
                "deployment/web",
                "web=registry.local/web:manual",
            ],
            "",
        ),
        "kubectl set image",
    );
    let dstate = ddir.path().join("state");
    let (code, out) = driftwatch(&conf, &dstate, &dkubeconfig, &["status"]);
    assert_eq!(code, 2, "detect-only reports the drift: {out}");
    assert!(out.contains("OutOfSync"), "{out}");
    let (code, out) = driftwatch(&conf, &dstate, &dkubeconfig, &["sync", "web"]);
    assert_ne!(code, 0, "detect-only may not apply: {out}");
    assert!(out.contains("forbidden"), "{out}");
    assert_eq!(live_image(&admin, &app_ns), "registry.local/web:manual");
}

/// Deletes the application's namespace at the end.
struct Cleanup(PathBuf, String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = kubectl(
            &self.0,
            &["delete", "namespace", &self.1, "--wait=false"],
            "",
        );
    }
}
