//! `driftwatch run --leader-elect` with three replicas on one application, against the real
//! API server (`DRIFTWATCH_E2E_KUBECONFIG`; the in-process fake serves no Leases, so the test is
//! skipped there): exactly one leads, a registry push is committed once and applied; after
//! `kill -9` of the leader another leads within the lease duration, and after a SIGTERM at
//! once (the Lease is released); no commit is ever made twice. A leader cut off from the API
//! server stops acting before another takes over. The failover times are printed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::BufRead;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use driftwatch_testkit::git::BareRepo;
use driftwatch_testkit::http::request;
use driftwatch_testkit::kube::Cluster;
use driftwatch_testkit::registry::{Auth, Registry};
use driftwatch_testkit::{TempDir, free_port, wait_for_port};

/// One `driftwatch run --leader-elect`, its stderr on a channel, killed on drop.
struct Replica {
    name: &'static str,
    child: Child,
    lines: Receiver<String>,
    port: u16,
}

impl Replica {
    fn start(name: &'static str, conf: &Path, state: &Path, kubeconfig: &Path, ns: &str) -> Self {
        Self::start_with(
            name,
            conf,
            state,
            kubeconfig,
            ns,
            &["--sync-interval", "3600"],
        )
    }

    /// A replica with `extra` flags.
    fn start_with(
        name: &'static str,
        conf: &Path,
        state: &Path,
        kubeconfig: &Path,
        ns: &str,
        extra: &[&str],
    ) -> Self {
        let port = free_port();
        let mut child = Command::new(env!("CARGO_BIN_EXE_driftwatch"))
            .args(["run", "--config"])
            .arg(conf)
            .arg("--state-dir")
            .arg(state)
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args([
                "--leader-elect",
                "--leader-elect-namespace",
                ns,
                "--leader-elect-name",
                "driftwatch-test",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--webhook-secret-env",
                "HOOK_SECRET",
                "--interval",
                "3600",
            ])
            .args(extra)
            .env("HOOK_SECRET", "s3cret")
            .env("POD_NAME", name)
            .env_remove("POD_NAMESPACE")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        assert!(wait_for_port(port, Duration::from_secs(20)));
        Replica {
            name,
            child,
            lines,
            port,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// `driftwatch_leader` on `/metrics`; `None` when the process does not answer.
    fn leads(&self) -> Option<bool> {
        let (_, _, body) = request("GET", &self.url("/metrics"), &[], b"").ok()?;
        let text = String::from_utf8(body).ok()?;
        text.lines()
            .find_map(|l| {
                l.strip_prefix("driftwatch_leader ")?
                    .trim()
                    .parse::<u8>()
                    .ok()
            })
            .map(|v| v == 1)
    }

    fn webhook(&self, body: &str) -> u16 {
        request(
            "POST",
            &self.url("/webhook/distribution"),
            &[("Authorization", "Bearer s3cret")],
            body.as_bytes(),
        )
        .map_or(0, |(code, _, _)| code)
    }

    fn logs(&self) -> String {
        self.lines.try_iter().collect::<Vec<_>>().join("\n")
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn deployment(ns: &str, image: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: backend\n  namespace: {ns}\nspec:\n  replicas: 1\n  selector:\n    matchLabels:\n      app: backend\n  template:\n    metadata:\n      labels:\n        app: backend\n    spec:\n      containers:\n      - name: backend\n        image: {image}\n"
    )
}

fn image_of(cluster: &Cluster, ns: &str) -> Option<String> {
    cluster.get("deployments", ns, "backend").and_then(|d| {
        d["spec"]["template"]["spec"]["containers"][0]["image"]
            .as_str()
            .map(str::to_owned)
    })
}

/// Polls until `f` holds, at most `limit`; returns how long it took.
fn within(
    limit: Duration,
    what: &str,
    replicas: &[&Replica],
    mut f: impl FnMut() -> bool,
) -> Duration {
    let started = Instant::now();
    while !f() {
        if started.elapsed() > limit {
            let logs: Vec<String> = replicas
                .iter()
                .map(|r| format!("--- {}\n{}", r.name, r.logs()))
                .collect();
            panic!("not within {limit:?}: {what}\n{}", logs.join("\n"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    started.elapsed()
}

/// The one replica of `replicas` that leads, once exactly one does (and the others say they
/// follow).
fn the_leader(replicas: &[&Replica], limit: Duration) -> &'static str {
    let mut found = None;
    let took = within(limit, "exactly one leader", replicas, || {
        let states: Vec<Option<bool>> = replicas.iter().map(|r| r.leads()).collect();
        let leaders: Vec<usize> = (0..states.len())
            .filter(|&i| states[i] == Some(true))
            .collect();
        let all_answer = states.iter().all(Option::is_some);
        if leaders.len() == 1 && all_answer {
            found = Some(leaders[0]);
            return true;
        }
        assert!(leaders.len() <= 1, "two leaders at once: {states:?}");
        false
    });
    let _ = took;
    replicas[found.unwrap()].name
}

/// Pushes `tag`, sends the webhook to every replica (only the leader accepts it), and waits for
/// the commit and the new image in the cluster.
fn push_and_deploy(
    reg: &Registry,
    repo: &BareRepo,
    cluster: &Cluster,
    ns: &str,
    leader: &str,
    all: &[&Replica],
    tag: &str,
) {
    let digest = reg.push_image(
        "shop/backend",
        tag,
        &format!("2026-11-{:02}T00:00:00Z", 2 + tag.len()),
    );
    let body = reg.push_event("shop/backend", &digest, tag);
    for r in all {
        let code = r.webhook(&body);
        if r.name == leader {
            assert_eq!(code, 202, "the leader accepts the webhook");
        } else {
            assert_eq!(code, 503, "a follower refuses the webhook");
        }
    }
    let want = format!("{}/shop/backend:{tag}", reg.host());
    within(
        Duration::from_secs(30),
        &format!("{tag} committed"),
        all,
        || {
            repo.show("main", "apps/shop/deployment.yaml")
                .contains(&want)
        },
    );
    within(
        Duration::from_secs(30),
        &format!("{tag} applied"),
        all,
        || image_of(cluster, ns).as_deref() == Some(want.as_str()),
    );
}

/// Commits made since the repository was created.
fn updates(repo: &BareRepo, initial: usize) -> usize {
    repo.subjects("main").len() - initial
}

/// A namespace, a registry with `shop/backend:v1.0.0`, a repository deploying it there, and
/// `driftwatch.yaml` tracking the image and syncing the application.
fn shop(dir: &TempDir, cluster: &Cluster, base: &str) -> (String, Registry, BareRepo, PathBuf) {
    let ns = cluster.unique_namespace(base);
    cluster.create_namespace(&ns);
    let reg = Registry::start(Auth::None);
    reg.push_image("shop/backend", "v1.0.0", "2026-11-01T00:00:00Z");
    let repo = BareRepo::new(&[(
        "apps/shop/deployment.yaml",
        &deployment(&ns, &format!("{}/shop/backend:v1.0.0", reg.host())),
    )]);
    let conf = dir.path().join("driftwatch.yaml");
    std::fs::write(
        &conf,
        format!(
            "applications:\n- name: shop\n  repo: {}\n  path: apps/shop\n  writeBack: manifests:deployment.yaml\n  images:\n  - image: {}/shop/backend\n  sync:\n    namespace: {ns}\n    automated:\n      selfHeal: true\n      prune: true\n",
            repo.file_url(),
            reg.host()
        ),
    )
    .unwrap();
    (ns, reg, repo, conf)
}

#[test]
fn one_leader_of_three_fails_over_after_kill_and_hands_over_on_sigterm() {
    let dir = TempDir::new("leader");
    let cluster = Cluster::new(dir.path());
    if !cluster.is_real() {
        eprintln!(
            "skipped: the in-process API server has no coordination.k8s.io Leases; needs a real one (DRIFTWATCH_E2E_KUBECONFIG, scripts/test starts one)"
        );
        return;
    }
    let (ns, reg, repo, conf) = shop(&dir, &cluster, "dw-leader");
    let initial = repo.subjects("main").len();
    let start = |name: &'static str| {
        Replica::start(
            name,
            &conf,
            &dir.path().join(name),
            &cluster.kubeconfig,
            &ns,
        )
    };
    let a = start("replica-a");
    let b = start("replica-b");
    let c = start("replica-c");

    // Exactly one leads; it syncs Git to the cluster, and only it.
    let first = the_leader(&[&a, &b, &c], Duration::from_secs(30));
    within(
        Duration::from_secs(30),
        "v1.0.0 applied",
        &[&a, &b, &c],
        || image_of(&cluster, &ns).is_some(),
    );
    // Followers serve a read-only /status naming no sync of theirs.
    for r in [&a, &b, &c].into_iter().filter(|r| r.name != first) {
        let (code, headers, body) = request("GET", &r.url("/status"), &[], b"").unwrap();
        assert_eq!(code, 200);
        assert_eq!(
            headers.get("x-driftwatch-role").map(String::as_str),
            Some("follower")
        );
        assert!(String::from_utf8_lossy(&body).contains("follows"));
        let (code, _, _) = request("GET", &r.url("/readyz"), &[], b"").unwrap();
        assert_eq!(code, 200, "a follower is ready (it serves)");
        let (code, _, page) = request("GET", &r.url("/"), &[], b"").unwrap();
        assert_eq!(code, 200);
        let page = String::from_utf8_lossy(&page);
        assert!(
            page.contains(&format!("follows (leader: {first})")),
            "{page}"
        );
    }
    push_and_deploy(&reg, &repo, &cluster, &ns, first, &[&a, &b, &c], "v1.1.0");
    assert_eq!(updates(&repo, initial), 1, "{:?}", repo.subjects("main"));

    // kill -9 the leader: another leads within the lease duration.
    let (mut killed, rest): (Vec<Replica>, Vec<Replica>) =
        [a, b, c].into_iter().partition(|r| r.name == first);
    let mut dead = killed.pop().unwrap();
    let killed_at = Instant::now();
    dead.child.kill().unwrap();
    dead.child.wait().unwrap();
    let survivors: Vec<&Replica> = rest.iter().collect();
    let second = the_leader(&survivors, Duration::from_secs(20));
    let failover_kill = killed_at.elapsed();
    eprintln!(
        "failover after kill -9 of the leader: {:.1} s",
        failover_kill.as_secs_f64()
    );
    assert!(failover_kill < Duration::from_secs(15), "{failover_kill:?}");
    push_and_deploy(&reg, &repo, &cluster, &ns, second, &survivors, "v1.2.0");
    assert_eq!(updates(&repo, initial), 2, "{:?}", repo.subjects("main"));

    // SIGTERM the new leader: it stops, releases the Lease, and the last one leads at once.
    let (mut termed, last): (Vec<Replica>, Vec<Replica>) =
        rest.into_iter().partition(|r| r.name == second);
    let mut stopping = termed.pop().unwrap();
    let termed_at = Instant::now();
    Command::new("kill")
        .arg(stopping.child.id().to_string())
        .status()
        .unwrap();
    let last: Vec<&Replica> = last.iter().collect();
    let third = the_leader(&last, Duration::from_secs(20));
    let failover_term = termed_at.elapsed();
    let status = stopping.child.wait().unwrap();
    assert!(
        status.success(),
        "a stopped leader exits cleanly: {status:?}"
    );
    assert!(
        stopping.logs().contains("lease released"),
        "{}",
        stopping.logs()
    );
    eprintln!(
        "failover after SIGTERM of the leader: {:.1} s",
        failover_term.as_secs_f64()
    );
    assert!(failover_term < Duration::from_secs(6), "{failover_term:?}");
    push_and_deploy(&reg, &repo, &cluster, &ns, third, &last, "v1.3.0");

    // Every update committed exactly once, in order: one commit per tag, none repeated.
    assert_eq!(
        repo.subjects("main").len(),
        initial + 3,
        "{:?}",
        repo.subjects("main")
    );
    for (rev, tag) in [
        ("main~3", "v1.0.0"),
        ("main~2", "v1.1.0"),
        ("main~1", "v1.2.0"),
        ("main", "v1.3.0"),
    ] {
        let file = repo.show(rev, "apps/shop/deployment.yaml");
        assert!(
            file.contains(&format!("shop/backend:{tag}")),
            "{rev} should carry {tag}: {file}"
        );
    }
}

/// A TCP proxy to the API server that can be cut: while cut, bytes stop flowing both ways and
/// connections hang (as through a network partition), without being closed.
struct Partition {
    port: u16,
    cut: Arc<AtomicBool>,
}

impl Partition {
    fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(AtomicBool::new(false));
        let flag = cut.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { break };
                let Ok(server) = TcpStream::connect(&upstream) else {
                    continue;
                };
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    let flag = flag.clone();
                    std::thread::spawn(move || {
                        use std::io::{Read, Write};
                        let mut buf = [0u8; 16 * 1024];
                        loop {
                            let n = match from.read(&mut buf) {
                                Ok(0) | Err(_) => break,
                                Ok(n) => n,
                            };
                            while flag.load(Ordering::SeqCst) {
                                std::thread::sleep(Duration::from_millis(50));
                            }
                            if to.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
        });
        Partition { port, cut }
    }
}

/// The API server's `host:port` in `kubeconfig`.
fn server_of(kubeconfig: &Path) -> String {
    std::fs::read_to_string(kubeconfig)
        .unwrap()
        .lines()
        .find_map(|l| l.trim().strip_prefix("server: https://"))
        .expect("a server in the kubeconfig")
        .trim()
        .to_owned()
}

/// A copy of `kubeconfig` (in `into`) that reaches its API server through `proxy`.
fn through(proxy: &Partition, kubeconfig: &Path, into: &Path) -> PathBuf {
    let text = std::fs::read_to_string(kubeconfig).unwrap();
    let server = server_of(kubeconfig);
    let path = into.join("kubeconfig-partitioned");
    std::fs::write(
        &path,
        text.replace(
            &format!("https://{server}"),
            &format!("https://127.0.0.1:{}", proxy.port),
        ),
    )
    .unwrap();
    path
}

#[test]
fn a_partitioned_leader_stops_acting_before_another_takes_over() {
    let dir = TempDir::new("leader-partition");
    let cluster = Cluster::new(dir.path());
    if !cluster.is_real() {
        eprintln!(
            "skipped: the in-process API server has no coordination.k8s.io Leases; needs a real one (DRIFTWATCH_E2E_KUBECONFIG, scripts/test starts one)"
        );
        return;
    }
    let (ns, reg, repo, conf) = shop(&dir, &cluster, "dw-partition");
    let initial = repo.subjects("main").len();
    let proxy = Partition::start(server_of(&cluster.kubeconfig));
    let partitioned = through(&proxy, &cluster.kubeconfig, dir.path());
    let a = Replica::start("replica-a", &conf, &dir.path().join("a"), &partitioned, &ns);
    assert_eq!(the_leader(&[&a], Duration::from_secs(30)), "replica-a");
    let b = Replica::start(
        "replica-b",
        &conf,
        &dir.path().join("b"),
        &cluster.kubeconfig,
        &ns,
    );
    assert_eq!(the_leader(&[&a, &b], Duration::from_secs(30)), "replica-a");
    within(Duration::from_secs(30), "v1.0.0 applied", &[&a, &b], || {
        image_of(&cluster, &ns).is_some()
    });

    // The leader loses the API server: it must stop acting before the other may start.
    proxy.cut.store(true, Ordering::SeqCst);
    let cut_at = Instant::now();
    let mut a_stopped = None;
    within(
        Duration::from_secs(25),
        "replica-b leads",
        &[&a, &b],
        || {
            let (la, lb) = (a.leads(), b.leads());
            assert!(
                !(la == Some(true) && lb == Some(true)),
                "two leaders at once after {:?}",
                cut_at.elapsed()
            );
            if la == Some(false) && a_stopped.is_none() {
                a_stopped = Some(cut_at.elapsed());
            }
            lb == Some(true)
        },
    );
    let b_leads = cut_at.elapsed();
    let a_stopped = a_stopped.expect("replica-a stepped down");
    eprintln!(
        "partitioned leader stopped after {:.1} s; the other led after {:.1} s",
        a_stopped.as_secs_f64(),
        b_leads.as_secs_f64()
    );
    assert!(a_stopped < b_leads);
    assert!(a_stopped <= Duration::from_secs(11), "{a_stopped:?}");

    // The new leader acts; the old one, reconnected, follows.
    push_and_deploy(&reg, &repo, &cluster, &ns, "replica-b", &[&a, &b], "v1.1.0");
    proxy.cut.store(false, Ordering::SeqCst);
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(the_leader(&[&a, &b], Duration::from_secs(10)), "replica-b");
    assert_eq!(
        repo.subjects("main").len(),
        initial + 1,
        "{:?}",
        repo.subjects("main")
    );
}

/// The shards a replica says it holds (`x-driftwatch-shards: 0,3 of 6` on `/status`); `None`
/// when it holds none or does not answer.
fn shards_of(r: &Replica) -> Option<Vec<u32>> {
    let (_, headers, _) = request("GET", &r.url("/status"), &[], b"").ok()?;
    let text = headers.get("x-driftwatch-shards")?;
    let (held, _) = text.split_once(" of ")?;
    Some(held.split(',').filter_map(|s| s.parse().ok()).collect())
}

#[test]
fn three_replicas_split_thirty_applications_by_shard_and_take_over_a_dead_ones() {
    let dir = TempDir::new("shards");
    let cluster = Cluster::new(dir.path());
    if !cluster.is_real() {
        eprintln!(
            "skipped: the in-process API server has no coordination.k8s.io Leases; needs a real one (DRIFTWATCH_E2E_KUBECONFIG, scripts/test starts one)"
        );
        return;
    }
    let ns = cluster.unique_namespace("dw-shards");
    cluster.create_namespace(&ns);
    let names: Vec<String> = (0..30).map(|i| format!("app-{i:02}")).collect();
    let config_map = |name: &str, v: &str| {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: {ns}\ndata:\n  v: \"{v}\"\n"
        )
    };
    let files: Vec<(String, String)> = names
        .iter()
        .map(|n| (format!("apps/{n}/cm.yaml"), config_map(n, "1")))
        .collect();
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    let repo = BareRepo::new(&refs);
    let conf = dir.path().join("driftwatch.yaml");
    let apps: String = names
        .iter()
        .map(|n| {
            format!(
                "- name: {n}\n  repo: {}\n  path: apps/{n}\n  sync:\n    namespace: {ns}\n    automated: {{}}\n",
                repo.file_url()
            )
        })
        .collect();
    std::fs::write(&conf, format!("applications:\n{apps}")).unwrap();
    let start = |name: &'static str| {
        Replica::start_with(
            name,
            &conf,
            &dir.path().join(name),
            &cluster.kubeconfig,
            &ns,
            &["--shards", "6", "--sync-interval", "2"],
        )
    };
    let replicas = [start("shard-a"), start("shard-b"), start("shard-c")];
    let all: Vec<&Replica> = replicas.iter().collect();
    let value = |n: &str| {
        cluster
            .get("configmaps", &ns, n)
            .map(|c| c["data"]["v"].as_str().unwrap_or("").to_owned())
    };

    // Each replica holds two of the six shards, no shard is held twice, and every application
    // is synced — by exactly one replica, the one holding its shard.
    within(Duration::from_secs(40), "shards shared 2/2/2", &all, || {
        let held: Vec<Vec<u32>> = all.iter().filter_map(|r| shards_of(r)).collect();
        let mut every: Vec<u32> = held.iter().flatten().copied().collect();
        every.sort_unstable();
        held.len() == 3 && held.iter().all(|h| h.len() == 2) && every == [0, 1, 2, 3, 4, 5]
    });
    within(
        Duration::from_secs(40),
        "30 applications synced",
        &all,
        || names.iter().all(|n| value(n).as_deref() == Some("1")),
    );
    let owner_of = |n: &str| -> Vec<String> {
        let mut by = cluster.event_instances(&ns, n, "Synced");
        by.sort();
        by.dedup();
        by
    };
    let mut synced_by: std::collections::BTreeMap<String, usize> = Default::default();
    for n in &names {
        let by = owner_of(n);
        assert_eq!(by.len(), 1, "{n} synced by {by:?}");
        *synced_by.entry(by[0].clone()).or_default() += 1;
    }
    assert_eq!(
        synced_by.len(),
        3,
        "every replica synced some: {synced_by:?}"
    );
    eprintln!("applications synced per replica: {synced_by:?}");

    // kill -9 one replica, change every application in Git: the two left take its shards
    // (three each) and sync all thirty.
    let [mut dead, b, c] = replicas;
    let dead_apps: Vec<&String> = names
        .iter()
        .filter(|n| owner_of(n) == [dead.name])
        .collect();
    assert!(!dead_apps.is_empty());
    let killed_at = Instant::now();
    dead.child.kill().unwrap();
    dead.child.wait().unwrap();
    let v2: Vec<(String, String)> = names
        .iter()
        .map(|n| (format!("apps/{n}/cm.yaml"), config_map(n, "2")))
        .collect();
    let v2: Vec<(&str, &str)> = v2.iter().map(|(p, c)| (p.as_str(), c.as_str())).collect();
    repo.commit_files_elsewhere(&v2, "v2");
    let left = [&b, &c];
    within(Duration::from_secs(40), "shards retaken 3/3", &left, || {
        let held: Vec<Vec<u32>> = left.iter().filter_map(|r| shards_of(r)).collect();
        held.len() == 2 && held.iter().all(|h| h.len() == 3)
    });
    let retaken = killed_at.elapsed();
    within(
        Duration::from_secs(40),
        "30 applications at v2",
        &left,
        || names.iter().all(|n| value(n).as_deref() == Some("2")),
    );
    eprintln!(
        "shards of a killed replica retaken after {:.1} s; all 30 applications at v2 after {:.1} s",
        retaken.as_secs_f64(),
        killed_at.elapsed().as_secs_f64()
    );
    assert!(retaken < Duration::from_secs(20), "{retaken:?}");
    for n in dead_apps {
        let by = owner_of(n);
        assert!(
            by.iter().any(|i| i == b.name || i == c.name),
            "{n} synced again by a survivor: {by:?}"
        );
    }
}
