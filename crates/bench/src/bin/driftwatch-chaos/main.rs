//! `scripts/chaos`: `driftwatch run` through fault proxies for a while, then without faults,
//! checking that nothing was written from partial data, every failure was retried or
//! reported, and everything caught up soon after the faults stopped.
//!
//! Real components: Debian's docker-registry, two Git repositories served over smart HTTP by
//! `git http-backend` (with basic auth), and — with `--kubeconfig` — a real API server. A fault
//! proxy (see `proxy.rs`) sits in front of each: HTTP-aware for the registry and Git, TCP-level
//! (TLS passes through) for the API server. Six applications (three per repository) are
//! kustomizations whose image tag driftwatch updates (semver) and, with a cluster, syncs
//! automatically. A new tag of a random application's image is pushed every `--push-every`
//! seconds while the faults last.
//!
//! Checked at the end (each failure is a violation; exit 1 when there is any):
//!   git      every commit of both repositories holds every kustomization exactly as seeded
//!            but for a tag that was pushed, and `deploy.yaml` untouched (nothing partial); each
//!            tag enters an application's file once and tags only move forward; every bot
//!            commit changes a tag
//!   history  the store has one row per update in Git
//!   cluster  every image sampled live during the run was one Git held (never a partial render)
//!   log      no panic; every cycle accounts for all six images (none skipped silently)
//!   recovery after the faults stop, Git and the cluster reach every newest tag within the
//!            target (`--interval` + `--sync-interval` + one cycle's slack of 10 s)
//!
//!   driftwatch-chaos [--minutes 5] [--calm-seconds 60] [--seed 1] [--rate 0.3]
//!                    [--interval 2] [--push-every 4] [--kubeconfig FILE] [--out DIR]

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod proxy;

use std::collections::{BTreeMap, HashSet};
use std::io::BufRead;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use driftwatch_testkit::git::{BareRepo, GitHttp, git};
use driftwatch_testkit::registry::{Auth, Registry};

use proxy::{Mode, Proxy, Rng};

const APPS: usize = 6;
const GIT_USER: &str = "bot";
const GIT_PASSWORD: &str = "chaos-git-password";

struct Args {
    minutes: f64,
    calm: f64,
    seed: u64,
    rate: f64,
    interval: u64,
    push_every: f64,
    kubeconfig: Option<PathBuf>,
    out: PathBuf,
    driftwatch: PathBuf,
}

fn args() -> Args {
    let exe = std::env::current_exe().unwrap();
    let mut a = Args {
        minutes: 5.0,
        calm: 60.0,
        seed: 1,
        rate: 0.3,
        interval: 2,
        push_every: 4.0,
        kubeconfig: None,
        out: PathBuf::from("target/chaos"),
        driftwatch: exe.parent().unwrap().join("driftwatch"),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--minutes" => a.minutes = value().parse().expect("--minutes: a number"),
            "--calm-seconds" => a.calm = value().parse().expect("--calm-seconds: a number"),
            "--seed" => a.seed = value().parse().expect("--seed: a number"),
            "--rate" => a.rate = value().parse().expect("--rate: 0..1"),
            "--interval" => a.interval = value().parse().expect("--interval: seconds"),
            "--push-every" => a.push_every = value().parse().expect("--push-every: seconds"),
            "--kubeconfig" => a.kubeconfig = Some(PathBuf::from(value())),
            "--out" => a.out = PathBuf::from(value()),
            "--driftwatch" => a.driftwatch = PathBuf::from(value()),
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

/// The exact bytes every commit must hold for `app`, but for the tag.
fn kustomization(image: &str, tag: &str) -> String {
    format!(
        "# driftwatch edits only the tag below; this comment, key order and quoting must survive\napiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- deploy.yaml\nimages:\n- name: {image}\n  newTag: \"{tag}\"   # bumped by driftwatch\n"
    )
}

fn deploy(app: &str, image: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {app}\n  labels: {{app: {app}}}\nspec:\n  replicas: 0\n  selector: {{matchLabels: {{app: {app}}}}}\n  template:\n    metadata: {{labels: {{app: {app}}}}}\n    spec:\n      containers:\n      - name: main\n        image: {image}:placeholder\n"
    )
}

/// The tag in a kustomization that is exactly the seeded one but for its tag.
fn tag_of(text: &str, image: &str) -> Option<String> {
    let tag = text
        .lines()
        .find_map(|l| l.strip_prefix("  newTag: \""))?
        .split('"')
        .next()?
        .to_owned();
    (text == kustomization(image, &tag)).then_some(tag)
}

fn kubectl(kubeconfig: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `app=image` of every Deployment in the namespace.
fn live_images(kubeconfig: &Path) -> Option<BTreeMap<String, String>> {
    let out = kubectl(
        kubeconfig,
        &[
            "-n",
            "chaos",
            "get",
            "deployments",
            "-o",
            "jsonpath={range .items[*]}{.metadata.name}={.spec.template.spec.containers[0].image}{\"\\n\"}{end}",
        ],
    )?;
    Some(
        out.lines()
            .filter_map(|l| l.split_once('='))
            .map(|(a, i)| (a.to_owned(), i.to_owned()))
            .collect(),
    )
}

/// The kubeconfig with its server's address replaced by the proxy's.
fn through_proxy(kubeconfig: &Path, proxy: SocketAddr, out: &Path) -> SocketAddr {
    let text = std::fs::read_to_string(kubeconfig).unwrap();
    let mut upstream = None;
    let rewritten: Vec<String> = text
        .lines()
        .map(|l| {
            if let Some(rest) = l.trim_start().strip_prefix("server: https://") {
                upstream = Some(rest.trim().trim_end_matches('/').to_owned());
                let indent = &l[..l.len() - l.trim_start().len()];
                format!("{indent}server: https://{proxy}")
            } else {
                l.to_owned()
            }
        })
        .collect();
    std::fs::write(out, rewritten.join("\n") + "\n").unwrap();
    upstream
        .expect("the kubeconfig names a server")
        .parse()
        .expect("the kubeconfig's server is an IP address and port")
}

struct Violations(Vec<String>);

impl Violations {
    fn add(&mut self, what: String) {
        eprintln!("VIOLATION: {what}");
        self.0.push(what);
    }
}

fn main() {
    let a = args();
    std::fs::create_dir_all(&a.out).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let reg = Registry::start(Auth::None);
    let names: Vec<String> = (0..APPS).map(|i| format!("a{i}")).collect();
    let mut newest: Vec<u64> = vec![0; APPS];
    let mut pushed: HashSet<(usize, String)> = HashSet::new();
    for (i, n) in names.iter().enumerate() {
        reg.push_tags(
            &format!("chaos/{n}"),
            &["1.0.0".to_owned()],
            "2026-11-01T00:00:00Z",
        );
        pushed.insert((i, "1.0.0".to_owned()));
    }
    let seed_rng = |k: u64| a.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15).wrapping_add(k);
    let reg_proxy = rt.block_on(Proxy::start(
        reg.host().parse().unwrap(),
        Mode::Http,
        seed_rng(1),
        a.rate,
    ));
    let image = |i: usize| format!("{}/chaos/{}", reg_proxy.addr, names[i]);
    let repos: Vec<BareRepo> = (0..2)
        .map(|r| {
            let files: Vec<(String, String)> = (0..APPS)
                .filter(|i| i % 2 == r)
                .flat_map(|i| {
                    [
                        (
                            format!("apps/{}/kustomization.yaml", names[i]),
                            kustomization(&image(i), "1.0.0"),
                        ),
                        (
                            format!("apps/{}/deploy.yaml", names[i]),
                            deploy(&names[i], &image(i)),
                        ),
                    ]
                })
                .collect();
            let refs: Vec<(&str, &str)> = files
                .iter()
                .map(|(p, c)| (p.as_str(), c.as_str()))
                .collect();
            BareRepo::new(&refs)
        })
        .collect();
    let servers: Vec<GitHttp> = repos
        .iter()
        .map(|r| GitHttp::start(r.path.parent().unwrap(), GIT_USER, GIT_PASSWORD))
        .collect();
    let git_proxies: Vec<Proxy> = servers
        .iter()
        .enumerate()
        .map(|(k, s)| {
            rt.block_on(Proxy::start(
                SocketAddr::from(([127, 0, 0, 1], s.port)),
                Mode::Http,
                seed_rng(2 + k as u64),
                a.rate,
            ))
        })
        .collect();
    let kube = a.kubeconfig.as_ref().map(|k| {
        let _ = kubectl(
            k,
            &[
                "delete",
                "namespace",
                "chaos",
                "--wait=true",
                "--ignore-not-found",
            ],
        );
        kubectl(k, &["create", "namespace", "chaos"]).expect("kubectl create namespace chaos");
        let proxied = a.out.join("kubeconfig-proxied");
        let placeholder: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let upstream = through_proxy(k, placeholder, &proxied);
        let p = rt.block_on(Proxy::start(upstream, Mode::Tcp, seed_rng(9), a.rate));
        through_proxy(k, p.addr, &proxied);
        (k.clone(), proxied, p)
    });

    let mut conf = format!("interval: {}s\napplications:\n", a.interval);
    for (i, n) in names.iter().enumerate() {
        conf.push_str(&format!(
            "- name: {n}\n  repo: http://{}/repo.git\n  branch: main\n  gitCredentials: {{env: GIT_CREDS}}\n  path: apps/{n}\n  writeBack: kustomization\n  commit: {{authorName: driftwatch, authorEmail: bot@example.com}}\n  images:\n  - image: {}\n    strategy: semver\n",
            git_proxies[i % 2].addr,
            image(i)
        ));
        if kube.is_some() {
            conf.push_str(
                "  sync:\n    namespace: chaos\n    automated: {selfHeal: true, prune: true}\n",
            );
        }
    }
    let conf_path = a.out.join("driftwatch.yaml");
    std::fs::write(&conf_path, conf).unwrap();
    let state = a.out.join("state");
    let _ = std::fs::remove_dir_all(&state);
    let mut cmd = Command::new(&a.driftwatch);
    cmd.args(["run", "--log-format", "json", "--interval"])
        .arg(a.interval.to_string())
        .arg("--config")
        .arg(&conf_path)
        .arg("--state-dir")
        .arg(&state)
        .env("GIT_CREDS", format!("{GIT_USER}:{GIT_PASSWORD}"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some((_, proxied, _)) = &kube {
        cmd.arg("--kubeconfig")
            .arg(proxied)
            .args(["--sync-interval", &a.interval.to_string()]);
    }
    let mut child = cmd.spawn().expect("driftwatch");
    let log = Arc::new(Mutex::new(Vec::<String>::new()));
    let reader = {
        let log = log.clone();
        let stderr = child.stderr.take().unwrap();
        let mut file = std::fs::File::create(a.out.join("driftwatch.log")).unwrap();
        std::thread::spawn(move || {
            use std::io::Write;
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let _ = writeln!(file, "{line}");
                log.lock().unwrap().push(line);
            }
        })
    };

    let mut v = Violations(Vec::new());
    let total = Duration::from_secs_f64(a.minutes * 60.0);
    let faults_for = total.saturating_sub(Duration::from_secs_f64(a.calm));
    let t0 = Instant::now();
    let mut rng = Rng::new(seed_rng(100));
    let mut next_push = Duration::from_secs_f64(a.push_every);
    let mut live_seen: HashSet<String> = HashSet::new();
    let mut next_sample = Duration::ZERO;
    eprintln!(
        "chaos: faults for {:.0} s (rate {}, seed {}), then {:.0} s without; registry {} -> {}, git {} -> {}, {} -> {}{}",
        faults_for.as_secs_f64(),
        a.rate,
        a.seed,
        a.calm,
        reg_proxy.addr,
        reg.host(),
        git_proxies[0].addr,
        servers[0].port,
        git_proxies[1].addr,
        servers[1].port,
        kube.as_ref().map_or(String::new(), |(_, _, p)| format!(
            ", API server via {}",
            p.addr
        ))
    );
    while t0.elapsed() < faults_for {
        std::thread::sleep(Duration::from_millis(250));
        if t0.elapsed() >= next_push {
            let i = rng.below(APPS as u64) as usize;
            newest[i] += 1;
            let tag = format!("1.{}.0", newest[i]);
            reg.push_tags(
                &format!("chaos/{}", names[i]),
                std::slice::from_ref(&tag),
                "2026-11-02T00:00:00Z",
            );
            pushed.insert((i, tag));
            next_push += Duration::from_secs_f64(a.push_every);
        }
        if let Some((k, _, _)) = &kube
            && t0.elapsed() >= next_sample
        {
            next_sample = t0.elapsed() + Duration::from_secs(3);
            for img in live_images(k).unwrap_or_default().into_values() {
                live_seen.insert(img);
            }
        }
        if child.try_wait().ok().flatten().is_some() {
            v.add("driftwatch exited during the faults".to_owned());
            break;
        }
    }

    // Faults off; how long until Git and the cluster hold every newest tag.
    reg_proxy.calm();
    for p in &git_proxies {
        p.calm();
    }
    if let Some((_, _, p)) = &kube {
        p.calm();
    }
    let calm_at = Instant::now();
    // The wall-clock moment, to line the product's log up against.
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    eprintln!(
        "chaos: faults stopped at {}.{:03} (Unix time)",
        since_epoch.as_secs(),
        since_epoch.subsec_millis()
    );
    let want: Vec<String> = newest.iter().map(|n| format!("1.{n}.0")).collect();
    // (Git holds every newest tag, and so does the cluster).
    let converged = || -> (bool, bool) {
        let git_ok = (0..APPS).all(|i| {
            let text = repos[i % 2].show("main", &format!("apps/{}/kustomization.yaml", names[i]));
            tag_of(&text, &image(i)).as_deref() == Some(want[i].as_str())
        });
        let live_ok = kube.as_ref().is_none_or(|(k, _, _)| {
            live_images(k).is_some_and(|live| {
                (0..APPS).all(|i| live.get(&names[i]) == Some(&format!("{}:{}", image(i), want[i])))
            })
        });
        (git_ok, git_ok && live_ok)
    };
    let mut recovery = None;
    let mut git_recovery = None;
    let calm_for = Duration::from_secs_f64(a.calm.max(30.0));
    while calm_at.elapsed() < calm_for {
        if recovery.is_none() {
            let (git_ok, all_ok) = converged();
            if git_ok && git_recovery.is_none() {
                git_recovery = Some(calm_at.elapsed());
            }
            if all_ok {
                recovery = Some(calm_at.elapsed());
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    if let Some((k, _, _)) = &kube {
        for img in live_images(k).unwrap_or_default().into_values() {
            live_seen.insert(img);
        }
    }
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let _ = child.wait();
    let _ = reader.join();
    let elapsed = t0.elapsed();

    // --- checks ---------------------------------------------------------------------------
    let mut checks = 0u64;
    let mut updates_in_git = 0u64;
    for (r, repo) in repos.iter().enumerate() {
        let commits = git(&repo.path, &["rev-list", "--reverse", "main"]);
        let mut last: BTreeMap<usize, String> = BTreeMap::new();
        let mut entered: BTreeMap<usize, Vec<String>> = BTreeMap::new();
        for c in commits.lines() {
            let author = git(&repo.path, &["log", "-1", "--format=%an", c]);
            let mut changed = false;
            for i in (0..APPS).filter(|i| i % 2 == r) {
                checks += 1;
                let text = git(
                    &repo.path,
                    &["show", &format!("{c}:apps/{}/kustomization.yaml", names[i])],
                );
                let Some(tag) = tag_of(&text, &image(i)) else {
                    v.add(format!(
                        "{c}: apps/{}/kustomization.yaml is not the seeded file with a new tag",
                        names[i]
                    ));
                    continue;
                };
                if !pushed.contains(&(i, tag.clone())) {
                    v.add(format!(
                        "{c}: apps/{} holds {tag}, which was never pushed",
                        names[i]
                    ));
                }
                checks += 1;
                if git(
                    &repo.path,
                    &["show", &format!("{c}:apps/{}/deploy.yaml", names[i])],
                ) != deploy(&names[i], &image(i))
                {
                    v.add(format!("{c}: apps/{}/deploy.yaml changed", names[i]));
                }
                if last.get(&i) != Some(&tag) {
                    if last.contains_key(&i) {
                        changed = true;
                        updates_in_git += 1;
                    }
                    entered.entry(i).or_default().push(tag.clone());
                    last.insert(i, tag);
                }
            }
            checks += 1;
            if author.trim() == "driftwatch" && !changed {
                v.add(format!("{c}: a bot commit that changes no tag"));
            }
        }
        for (i, tags) in entered {
            checks += 1;
            let minors: Vec<u64> = tags
                .iter()
                .map(|t| {
                    t.split('.')
                        .nth(1)
                        .and_then(|m| m.parse().ok())
                        .unwrap_or(0)
                })
                .collect();
            if minors.windows(2).any(|w| w[1] <= w[0]) {
                v.add(format!(
                    "apps/{}: a tag entered twice or moved backwards: {tags:?}",
                    names[i]
                ));
            }
        }
    }
    checks += 1;
    let history: u64 = Command::new("sqlite3")
        .arg(state.join("driftwatch.db"))
        .arg("SELECT count(*) FROM updates;")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(0);
    if history != updates_in_git {
        v.add(format!(
            "history has {history} rows for {updates_in_git} updates in Git"
        ));
    }
    if kube.is_some() {
        let allowed: HashSet<String> = pushed
            .iter()
            .map(|(i, t)| format!("{}:{t}", image(*i)))
            .chain((0..APPS).map(|i| format!("{}:placeholder", image(i))))
            .collect();
        for img in &live_seen {
            checks += 1;
            if !allowed.contains(img) {
                v.add(format!("the cluster ran {img}, which Git never held"));
            }
        }
    }
    let lines = log.lock().unwrap().clone();
    let mut cycles = 0u64;
    let mut reported: BTreeMap<String, u64> = BTreeMap::new();
    let mut image_errors = 0u64;
    let mut retried = 0u64;
    for line in &lines {
        checks += 1;
        if line.contains("panicked") {
            v.add(format!(
                "panic in the log: {}",
                line.chars().take(300).collect::<String>()
            ));
        }
        let Ok(j) = serde_json::from_str::<serde_json::Value>(line) else {
            v.add(format!(
                "a log line that is not JSON: {}",
                line.chars().take(200).collect::<String>()
            ));
            continue;
        };
        let msg = j["msg"].as_str().unwrap_or("").to_owned();
        let level = j["level"].as_str().unwrap_or("").to_ascii_lowercase();
        if msg == "cycle" {
            cycles += 1;
            image_errors += j["errors"].as_u64().unwrap_or(0);
            if j["images"].as_u64() != Some(APPS as u64) {
                v.add(format!(
                    "a cycle accounted for {} images, not {APPS}",
                    j["images"]
                ));
            }
        } else if level == "warn" || level == "error" {
            *reported.entry(msg.chars().take(60).collect()).or_default() += 1;
        } else if msg.contains("retr") || msg.contains("raced") {
            retried += 1;
        }
    }
    let target = Duration::from_secs(a.interval * if kube.is_some() { 2 } else { 1 } + 10);
    checks += 1;
    match recovery {
        Some(r) if r <= target => {}
        Some(r) => v.add(format!(
            "recovery took {:.1} s (target {} s)",
            r.as_secs_f64(),
            target.as_secs()
        )),
        None => v.add(format!(
            "did not recover within {:.0} s of the faults stopping",
            calm_for.as_secs_f64()
        )),
    }

    // --- summary --------------------------------------------------------------------------
    println!(
        "\nchaos: {:.1} min (faults {:.0} s, seed {}, rate {}), interval {} s, cluster: {}",
        elapsed.as_secs_f64() / 60.0,
        faults_for.as_secs_f64(),
        a.seed,
        a.rate,
        a.interval,
        if kube.is_some() {
            "real API server"
        } else {
            "none"
        }
    );
    let mut proxies: Vec<(&str, &Proxy)> = vec![
        ("registry", &reg_proxy),
        ("git 0", &git_proxies[0]),
        ("git 1", &git_proxies[1]),
    ];
    if let Some((_, _, p)) = &kube {
        proxies.push(("API server (TLS)", p));
    }
    println!(
        "  {:<18} {:>11} {:>7}  faults by kind",
        "proxy", "connections", "faults"
    );
    for (name, p) in &proxies {
        let kinds: Vec<String> = p
            .stats
            .faults
            .lock()
            .unwrap()
            .iter()
            .map(|(k, n)| format!("{} {n}", k.name()))
            .collect();
        println!(
            "  {:<18} {:>11} {:>7}  {}",
            name,
            p.stats.connections.load(Ordering::Relaxed),
            p.stats.total_faults(),
            kinds.join(", ")
        );
    }
    println!(
        "  tags pushed: {}, updates in Git: {updates_in_git}, history rows: {history}, cycles: {cycles}",
        pushed.len() - APPS
    );
    println!(
        "  failures reported: {image_errors} image errors in cycle summaries; warnings and errors logged:"
    );
    let mut by_count: Vec<_> = reported.into_iter().collect();
    by_count.sort_by_key(|y| std::cmp::Reverse(y.1));
    for (msg, n) in by_count.iter().take(12) {
        println!("    {n:>5}  {msg}");
    }
    println!("  retries logged: {retried}");
    let secs =
        |r: Option<Duration>| r.map_or("none".to_owned(), |r| format!("{:.1} s", r.as_secs_f64()));
    println!(
        "  recovery after the faults stopped: {} (target {} s; Git alone: {})",
        secs(recovery),
        target.as_secs(),
        secs(git_recovery)
    );
    println!("  invariant checks: {checks}");
    println!("  violations: {}", v.0.len());
    if let Some((k, _, _)) = &kube {
        let _ = kubectl(k, &["delete", "namespace", "chaos", "--wait=false"]);
    }
    drop(rt);
    if !v.0.is_empty() {
        std::process::exit(1);
    }
}
