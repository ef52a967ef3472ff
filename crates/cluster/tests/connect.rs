//! Reaching a cluster: contexts, kubeconfigs merged like `KUBECONFIG=a:b`, exec credential
//! plugins, an HTTP proxy (`proxy-url`, else `HTTPS_PROXY`) — and bad input (a missing context,
//! a failing or absent plugin, a missing proxy, a CA that does not match, refused credentials),
//! each one clear error naming the kubeconfig and context, never a panic or a hang. Against the
//! in-process fake, or the real API server of `DRIFTWATCH_E2E_KUBECONFIG`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use driftwatch_cluster::{Error, KubeClient, KubeTarget};
use driftwatch_testkit::TempDir;
use driftwatch_testkit::kube::Cluster;
use serde_json::{Value, json};

/// The test cluster's kubeconfig as JSON (which is YAML), to rewrite.
fn kubeconfig_of(cluster: &Cluster) -> Value {
    let text = std::fs::read_to_string(&cluster.kubeconfig).unwrap();
    serde_saphyr::from_str(&text).unwrap()
}

fn write(dir: &Path, name: &str, v: &Value) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, v.to_string()).unwrap();
    path
}

/// The name of the test kubeconfig's current context.
fn current(k: &Value) -> String {
    k["current-context"].as_str().unwrap().to_owned()
}

/// Lists namespaces through `client`, with a deadline so a hang fails the test.
async fn list_namespaces(client: &KubeClient) -> Result<Vec<Value>, Error> {
    tokio::time::timeout(Duration::from_secs(100), client.list("v1", "Namespace", ""))
        .await
        .expect("an answer, not a hang")
}

/// A kubeconfig whose current context, `broken`, points at a port nobody listens on, and which
/// still has the test cluster's context.
fn with_broken_current(k: &Value) -> Value {
    let mut k = k.clone();
    k["clusters"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "nowhere", "cluster": {"server": format!("http://127.0.0.1:{}", driftwatch_testkit::free_port())}}));
    k["contexts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "broken", "context": {"cluster": "nowhere"}}));
    k["current-context"] = json!("broken");
    k
}

#[tokio::test]
async fn a_chosen_context_is_used_and_the_current_one_named_when_it_fails() {
    let dir = TempDir::new("kube-context");
    let cluster = Cluster::new(dir.path());
    let k = kubeconfig_of(&cluster);
    let file = write(dir.path(), "two-contexts", &with_broken_current(&k));

    let chosen =
        KubeClient::connect(&KubeTarget::file(&file).with_context(Some(&current(&k)))).unwrap();
    let names = list_namespaces(&chosen).await.unwrap();
    assert!(
        names.iter().any(|n| n["metadata"]["name"] == "default"),
        "{names:?}"
    );

    let err = list_namespaces(&KubeClient::from_kubeconfig(&file).unwrap())
        .await
        .unwrap_err();
    let text = err.to_string();
    eprintln!("the error: {text}");
    assert!(matches!(err, Error::Unreachable { .. }), "{err:?}");
    assert!(
        text.contains(&file.display().to_string()) && text.contains("\"broken\""),
        "{text}"
    );
}

#[tokio::test]
async fn kubeconfig_files_joined_like_kubeconfig_are_merged() {
    let dir = TempDir::new("kube-merge");
    let cluster = Cluster::new(dir.path());
    let k = kubeconfig_of(&cluster);
    // The first file names the context; the second holds the cluster and the user; a context
    // the second file also defines is the first file's.
    let mut decoy = with_broken_current(&k);
    decoy["contexts"] = json!([{"name": current(&k), "context": {"cluster": "nowhere"}}]);
    let a = write(
        dir.path(),
        "a",
        &json!({"apiVersion": "v1", "kind": "Config", "current-context": current(&k), "contexts": k["contexts"]}),
    );
    let b = write(dir.path(), "b", &decoy);
    let c = write(
        dir.path(),
        "c",
        &json!({"apiVersion": "v1", "kind": "Config", "clusters": k["clusters"], "users": k["users"]}),
    );
    let joined = std::env::join_paths([&a, &b, &c]).unwrap();
    let client = KubeClient::from_kubeconfig(Path::new(&joined)).unwrap();
    list_namespaces(&client).await.unwrap();
}

#[test]
fn a_missing_context_is_one_error_naming_the_file_and_the_context() {
    let dir = TempDir::new("kube-missing-context");
    let cluster = Cluster::new(dir.path());
    let k = kubeconfig_of(&cluster);
    let file = write(dir.path(), "config", &k);
    let err =
        KubeClient::connect(&KubeTarget::file(&file).with_context(Some("staging"))).unwrap_err();
    let text = err.to_string();
    eprintln!("the error: {text}");
    assert!(matches!(err, Error::Kubeconfig { .. }), "{err:?}");
    assert!(
        text.contains(&file.display().to_string())
            && text.contains("\"staging\"")
            && text.contains(&current(&k)),
        "names the file, the context and the contexts it has: {text}"
    );

    let missing = dir.path().join("no-such-file");
    let err = KubeClient::from_kubeconfig(&missing).unwrap_err();
    assert!(
        err.to_string().contains(&missing.display().to_string()),
        "{err}"
    );
}

/// The test kubeconfig with its user replaced by an exec credential plugin running `script`.
fn with_exec_plugin(dir: &Path, k: &Value, command: &str) -> PathBuf {
    let mut k = k.clone();
    let context = current(&k);
    for c in k["contexts"].as_array_mut().unwrap() {
        if c["name"] == context.as_str() {
            c["context"]["user"] = json!("plugin");
        }
    }
    k["users"] = json!([{"name": "plugin", "user": {"exec": {
        "apiVersion": "client.authentication.k8s.io/v1beta1",
        "command": command,
        "interactiveMode": "Never",
    }}}]);
    write(dir, "exec-config", &k)
}

fn script(dir: &Path, name: &str, body: &str) -> String {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.display().to_string()
}

#[tokio::test]
async fn a_failing_or_absent_exec_plugin_is_one_error_without_its_output() {
    let dir = TempDir::new("kube-exec-fails");
    let cluster = Cluster::new(dir.path());
    let k = kubeconfig_of(&cluster);
    let failing = script(
        dir.path(),
        "plugin",
        "echo '{\"status\":{\"token\":\"s3cr3t-token\"}}'\necho 'no credentials for you' >&2\nexit 3",
    );
    let file = with_exec_plugin(dir.path(), &k, &failing);
    let err = list_namespaces(&KubeClient::from_kubeconfig(&file).unwrap())
        .await
        .unwrap_err();
    let text = err.to_string();
    eprintln!("the error: {text}");
    assert!(matches!(err, Error::Unreachable { .. }), "{err:?}");
    assert!(
        text.contains(&file.display().to_string())
            && text.contains(&current(&k))
            && text.contains("no credentials for you"),
        "{text}"
    );
    assert!(!text.contains("s3cr3t"), "no token in errors: {text}");

    let file = with_exec_plugin(dir.path(), &k, "/nonexistent/driftwatch-credential-plugin");
    let err = list_namespaces(&KubeClient::from_kubeconfig(&file).unwrap())
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains(&file.display().to_string())
            && err.to_string().contains("could not be started"),
        "{err}"
    );
}

#[tokio::test]
async fn an_exec_plugin_token_is_used_and_a_refused_one_names_the_kubeconfig() {
    let dir = TempDir::new("kube-exec-token");
    let cluster = Cluster::new(dir.path());
    let k = kubeconfig_of(&cluster);
    let plugin = script(
        dir.path(),
        "plugin",
        "echo '{\"apiVersion\":\"client.authentication.k8s.io/v1beta1\",\"kind\":\"ExecCredential\",\"status\":{\"token\":\"expired-s3cr3t\"}}'",
    );
    let file = with_exec_plugin(dir.path(), &k, &plugin);
    let result = list_namespaces(&KubeClient::from_kubeconfig(&file).unwrap()).await;
    if cluster.is_real() {
        // A real server refuses a token it never issued, as it refuses an expired one.
        let err = result.unwrap_err();
        let text = err.to_string();
        eprintln!("the error: {text}");
        assert_eq!(err.status_code(), Some(401), "{err:?}");
        assert!(
            text.contains(&file.display().to_string()) && text.contains(&current(&k)),
            "{text}"
        );
        assert!(!text.contains("s3cr3t"), "no token in errors: {text}");
    } else {
        // The fake checks no credentials: the plugin ran and the call went through.
        result.unwrap();
    }
}

/// `openssl s_server` on a free port with a fresh self-signed certificate for 127.0.0.1.
struct TlsServer(Child, u16);

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A self-signed certificate: a CA (`ca`), or a server's certificate that is no CA.
fn self_signed(dir: &Path, name: &str, ca: bool) -> (PathBuf, PathBuf) {
    let cert = dir.join(format!("{name}.crt"));
    let key = dir.join(format!("{name}.key"));
    let ok = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "1",
        ])
        .args([
            "-subj",
            &format!("/CN={name}"),
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .args([
            "-addext",
            if ca {
                "basicConstraints=critical,CA:TRUE"
            } else {
                "basicConstraints=critical,CA:FALSE"
            },
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    (cert, key)
}

fn tls_server(dir: &Path) -> TlsServer {
    let (cert, key) = self_signed(dir, "server", false);
    let port = driftwatch_testkit::free_port();
    let child = Command::new("openssl")
        .args(["s_server", "-quiet", "-www", "-accept"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("-cert")
        .arg(&cert)
        .arg("-key")
        .arg(&key)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let server = TlsServer(child, port);
    assert!(driftwatch_testkit::wait_for_port(
        port,
        Duration::from_secs(10)
    ));
    server
}

#[tokio::test]
async fn a_ca_that_does_not_match_is_one_error_naming_the_kubeconfig() {
    let dir = TempDir::new("kube-wrong-ca");
    let server = tls_server(dir.path());
    let (other_ca, _) = self_signed(dir.path(), "other-ca", true);
    let ca = std::fs::read_to_string(&other_ca).unwrap();
    use base64::Engine as _;
    let k = json!({
        "apiVersion": "v1", "kind": "Config", "current-context": "tls",
        "clusters": [{"name": "tls", "cluster": {
            "server": format!("https://127.0.0.1:{}", server.1),
            "certificate-authority-data": base64::engine::general_purpose::STANDARD.encode(ca),
        }}],
        "users": [{"name": "u", "user": {"token": "s3cr3t"}}],
        "contexts": [{"name": "tls", "context": {"cluster": "tls", "user": "u"}}],
    });
    let file = write(dir.path(), "config", &k);
    let err = list_namespaces(&KubeClient::from_kubeconfig(&file).unwrap())
        .await
        .unwrap_err();
    let text = err.to_string();
    eprintln!("the error: {text}");
    assert!(matches!(err, Error::Unreachable { .. }), "{err:?}");
    assert!(
        text.contains(&file.display().to_string())
            && text.contains("\"tls\"")
            && text.contains("UnknownIssuer"),
        "{text}"
    );
    assert!(!text.contains("s3cr3t"), "no token in errors: {text}");
}

/// An HTTP proxy that tunnels `CONNECT host:port` requests, recording each target: what a
/// corporate egress proxy does for kubectl.
struct ConnectProxy {
    port: u16,
    targets: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

fn connect_proxy() -> ConnectProxy {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let targets = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = targets.clone();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { return };
            let seen = seen.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(client.try_clone().unwrap());
                let mut request = String::new();
                reader.read_line(&mut request).unwrap();
                loop {
                    let mut header = String::new();
                    if reader.read_line(&mut header).unwrap() == 0 || header == "\r\n" {
                        break;
                    }
                }
                let target = request.split(' ').nth(1).unwrap_or("").to_owned();
                seen.lock().unwrap().push(format!(
                    "{} {target}",
                    request.split(' ').next().unwrap_or("")
                ));
                let Ok(upstream) = std::net::TcpStream::connect(&target) else {
                    let _ = (&client).write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n");
                    return;
                };
                (&client)
                    .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    .unwrap();
                let (mut up_read, mut up_write) = (upstream.try_clone().unwrap(), upstream);
                let mut down_write = client;
                // Bytes the reader buffered past the headers belong to the tunnel.
                let buffered = reader.buffer().to_vec();
                up_write.write_all(&buffered).unwrap();
                let mut down_read = reader.into_inner();
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut down_read, &mut up_write);
                    let _ = up_write.shutdown(std::net::Shutdown::Write);
                });
                let _ = std::io::copy(&mut up_read, &mut down_write);
                let _ = down_write.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    ConnectProxy { port, targets }
}

#[tokio::test]
async fn a_kubeconfig_proxy_url_carries_every_call_through_the_proxy() {
    let dir = TempDir::new("kube-proxy");
    let cluster = Cluster::new(dir.path());
    let proxy = connect_proxy();
    let mut k = kubeconfig_of(&cluster);
    let name = k["contexts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == k["current-context"])
        .unwrap()["context"]["cluster"]
        .clone();
    let server = {
        let c = k["clusters"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .find(|c| c["name"] == name)
            .unwrap();
        c["cluster"]["proxy-url"] = json!(format!("http://127.0.0.1:{}", proxy.port));
        c["cluster"]["server"].as_str().unwrap().to_owned()
    };
    let file = write(dir.path(), "config", &k);
    let names = list_namespaces(&KubeClient::from_kubeconfig(&file).unwrap())
        .await
        .unwrap();
    assert!(!names.is_empty());
    // The server's host and port, as the tunnel was asked for them.
    let authority = server
        .split_once("://")
        .map_or(server.as_str(), |(_, rest)| rest)
        .trim_end_matches('/')
        .to_owned();
    let targets = proxy.targets.lock().unwrap().clone();
    assert!(!targets.is_empty(), "the proxy saw no request");
    assert!(
        targets.iter().all(|t| *t == format!("CONNECT {authority}")),
        "{targets:?}"
    );

    // A proxy that is not there is one clear error naming the kubeconfig, not a hang.
    let c = k["clusters"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|c| c["name"] == name)
        .unwrap();
    c["cluster"]["proxy-url"] = json!(format!(
        "http://127.0.0.1:{}",
        driftwatch_testkit::free_port()
    ));
    let file = write(dir.path(), "config-no-proxy", &k);
    let err = list_namespaces(&KubeClient::from_kubeconfig(&file).unwrap())
        .await
        .unwrap_err();
    let text = err.to_string();
    eprintln!("the error: {text}");
    assert!(matches!(err, Error::Unreachable { .. }), "{err:?}");
    assert!(text.contains(&file.display().to_string()), "{text}");
}
