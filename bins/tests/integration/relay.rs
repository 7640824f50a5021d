//! graphite-relay in a cluster with the reference implementations, on loopback:
//!
//! - carbon-c-relay's own routing (`-t` test mode) against ours for 10k names, for each of its
//!   consistent-hash cluster types;
//! - Debian's carbon-c-relay in front of two `graphite-rs` servers: every name lands on the
//!   server carbon-c-relay chose, which is the server our ring names;
//! - our relay (carbon.conf, `consistent-hashing`, pickle) in front of two Debian
//!   carbon-caches: every name's whisper file is on the node carbon's own `ConsistentHashRing`
//!   (asked in Python) names;
//! - a destination stopped and restarted mid-stream: nothing lost, with a spool and without
//!   one (backpressure), and the self-metrics arrive.
//!
//! Tests that need a reference tool print SKIP when it is missing, and fail instead under
//! `GRAPHITE_REQUIRE_REFERENCE=1`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bins::relay::config_crelay::parse_crelay;
use bins::relay::router::Health;

use crate::carbon::Carbon;
use crate::support;

pub(crate) const RELAY: &str = env!("CARGO_BIN_EXE_graphite-relay");
pub(crate) const CRELAY: &str = "/usr/bin/carbon-c-relay";
const CARBON_CACHE: &str = "/usr/bin/carbon-cache";
const PYTHON: &str = "/usr/bin/python3";

/// Whether `path` exists; otherwise SKIP (or fail under GRAPHITE_REQUIRE_REFERENCE=1).
pub(crate) fn have(path: &str, test: &str) -> bool {
    if Path::new(path).exists() {
        return true;
    }
    if std::env::var("GRAPHITE_REQUIRE_REFERENCE").is_ok_and(|v| v == "1") {
        panic!("{test}: {path} is missing and GRAPHITE_REQUIRE_REFERENCE=1");
    }
    eprintln!("SKIP {test}: {path} is not installed");
    false
}

pub(crate) fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    cond()
}

fn wait_port(port: u16, limit: Duration) -> bool {
    wait_until(limit, || TcpStream::connect(("127.0.0.1", port)).is_ok())
}

/// A child process, stopped with SIGTERM (then SIGKILL) when dropped.
pub(crate) struct Proc {
    child: Option<Child>,
    name: &'static str,
    log: PathBuf,
}

impl Proc {
    pub(crate) fn spawn(name: &'static str, cmd: &mut Command, log: PathBuf) -> Proc {
        let out = fs::File::create(&log).unwrap();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        Proc { child: Some(child), name, log }
    }

    pub(crate) fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM and wait (bounded); SIGKILL if it does not stop.
    pub(crate) fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if child.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!("{} ignored SIGTERM; killing", self.name);
        let _ = child.kill();
        let _ = child.wait();
    }

    pub(crate) fn assert_running(&mut self) {
        if let Some(c) = self.child.as_mut()
            && let Ok(Some(status)) = c.try_wait()
        {
            panic!("{} exited with {status}:\n{}", self.name, self.log());
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Reads `key=addr` pairs of a ready file.
pub(crate) fn ready_addrs(path: &Path, proc: &mut Proc) -> HashMap<String, SocketAddr> {
    let ok = wait_until(Duration::from_secs(60), || {
        proc.assert_running();
        path.exists()
    });
    assert!(ok, "{} not ready:\n{}", proc.name, proc.log());
    let text = fs::read_to_string(path).unwrap();
    text.split_whitespace()
        .filter_map(|f| f.split_once('='))
        .filter_map(|(k, v)| Some((k.to_string(), v.parse().ok()?)))
        .collect()
}

/// Our `graphite-rs` on free ports with small whisper files.
fn start_server(root: &Path) -> (Proc, SocketAddr) {
    fs::create_dir_all(root.join("conf")).unwrap();
    fs::write(
        root.join("conf/storage-schemas.conf"),
        "[default]\npattern = .*\nretentions = 60s:30\n",
    )
    .unwrap();
    let ready = root.join("ready");
    let mut p = Proc::spawn(
        "graphite-rs",
        Command::new(support::GRAPHITE_RS)
            .args(["--root", root.to_str().unwrap(), "--bind", "127.0.0.1"])
            .args(["--line-port", "0", "--udp-port", "0", "--pickle-port", "0"])
            .args(["--query-port", "0", "--http-port", "0"])
            .arg("--ready-file")
            .arg(&ready)
            .env_remove("GRAPHITE_ROOT")
            .env_remove("GRAPHITE_CONF_DIR")
            .env_remove("GRAPHITE_STORAGE_DIR"),
        root.join("server.log"),
    );
    let addrs = ready_addrs(&ready, &mut p);
    (p, addrs["line"])
}

/// Our relay with `args`; returns it and its plaintext address.
pub(crate) fn start_relay(dir: &Path, args: &[&str]) -> (Proc, SocketAddr) {
    let ready = dir.join("relay.ready");
    let _ = fs::remove_file(&ready);
    let mut p = Proc::spawn(
        "graphite-relay",
        Command::new(RELAY)
            .args(args)
            .args(["--bind", "127.0.0.1", "--line-port", "0", "--ready-file"])
            .arg(&ready),
        dir.join("relay.log"),
    );
    let addrs = ready_addrs(&ready, &mut p);
    (p, addrs["line"])
}

/// Every `.wsp` under `dir`, as metric names.
fn wsp_names(dir: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "wsp") {
                let rel = p.strip_prefix(dir).unwrap().with_extension("");
                out.insert(rel.to_string_lossy().replace('/', "."));
            }
        }
    }
    out
}

pub(crate) fn names(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}.host{}.metric_{i}", i % 97)).collect()
}

fn now_minute() -> i64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    (now as i64 / 60) * 60 - 60
}

pub(crate) fn send_lines(addr: SocketAddr, lines: &[String]) {
    let mut s = TcpStream::connect(addr).unwrap();
    let mut buf = String::new();
    for l in lines {
        buf.push_str(l);
        buf.push('\n');
    }
    s.write_all(buf.as_bytes()).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    // Wait for the peer to close (bounded by the read timeout).
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = s.read(&mut [0u8; 16]);
}

/// What `carbon-c-relay -t` prints for `config` (written to `dir`) with `names` on stdin.
pub(crate) fn crelay_test_output(dir: &Path, config: &str, names: &[String]) -> String {
    let path = dir.join("test-mode.conf");
    fs::write(&path, config).unwrap();
    let mut child = Command::new(CRELAY)
        .args(["-t", "-f"])
        .arg(&path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input: String = names.iter().map(|n| format!("{n} 1 1700000000\n")).collect();
    let writer = std::thread::spawn(move || {
        stdin.write_all(input.as_bytes()).unwrap();
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `carbon-c-relay -t` on `config` with `names` and returns, per name, the servers it
/// would send to.
pub(crate) fn crelay_test_mode(
    dir: &Path,
    config: &str,
    names: &[String],
) -> BTreeMap<String, Vec<String>> {
    let text = crelay_test_output(dir, config, names);
    // Blocks: "    * -> NAME" then "    <type>(<cluster>)" then "        host:port" lines.
    let mut routes: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        if let Some(name) = line.strip_prefix("    * -> ") {
            current = Some(name.trim().to_string());
            routes.entry(name.trim().to_string()).or_default();
        } else if let Some(server) = line.strip_prefix("        ")
            && let Some(name) = &current
            && !server.starts_with(' ')
        {
            routes.entry(name.clone()).or_default().push(server.trim().to_string());
        } else if line.trim() == "stop" {
            current = None;
        }
    }
    routes
}

/// Our routing for the same config: per name, `host:port` of each destination.
fn our_routes(config: &str, names: &[String]) -> BTreeMap<String, Vec<String>> {
    routes_of(&parse_crelay(config).unwrap(), names)
}

/// How the parsed c-relay config `s` routes `names`: per name, `host:port` of each
/// destination.
pub(crate) fn routes_of(
    s: &bins::relay::RelaySettings,
    names: &[String],
) -> BTreeMap<String, Vec<String>> {
    let health = Health::new(s.destinations.len());
    names
        .iter()
        .map(|n| {
            let mut to = Vec::new();
            s.router.route(n, &health, &mut |_, d| to.push(s.destinations[d].address()));
            (n.clone(), to)
        })
        .collect()
}

#[test]
fn routing_matches_carbon_c_relay_test_mode_for_10k_names() {
    if !have(CRELAY, "routing_matches_carbon_c_relay_test_mode_for_10k_names") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let names = names("crelay.route", 10_000);
    for (kind, servers) in [
        ("carbon_ch", "127.0.0.1:2101=a 127.0.0.1:2102=b"),
        ("carbon_ch replication 2", "10.0.0.1:2003 10.0.0.2:2003 10.0.0.3:2003"),
        ("fnv1a_ch", "127.0.0.1:2101 127.0.0.1:2102"),
        ("fnv1a_ch replication 2", "127.0.0.1:2101 127.0.0.1:2102 127.0.0.1:2103=x"),
        ("jump_fnv1a_ch", "127.0.0.1:2101=1 127.0.0.1:2102=0 127.0.0.1:2103=2"),
        ("jump_fnv1a_ch replication 2", "10.0.0.1:1 10.0.0.2:1 10.0.0.3:1 10.0.0.4:1"),
    ] {
        let config = format!("cluster c {kind} {servers} ;\nmatch * send to c stop ;\n");
        let theirs = crelay_test_mode(dir.path(), &config, &names);
        let ours = our_routes(&config, &names);
        assert_eq!(
            theirs.len(),
            names.len(),
            "{kind}: carbon-c-relay -t printed {} routes",
            theirs.len()
        );
        let differ: Vec<_> =
            names.iter().filter(|n| theirs.get(*n) != ours.get(*n)).take(5).collect();
        assert!(
            differ.is_empty(),
            "{kind}: routes differ, e.g. {:?}",
            differ.iter().map(|n| (n, &theirs[*n], &ours[*n])).collect::<Vec<_>>()
        );
        let used: BTreeSet<&String> = ours.values().flatten().collect();
        assert!(used.len() >= 2, "{kind}: everything went to one server");
        eprintln!("{kind}: {} names routed identically over {} servers", names.len(), used.len());
    }
}

#[test]
fn carbon_c_relay_in_front_of_two_graphite_rs_servers() {
    if !have(CRELAY, "carbon_c_relay_in_front_of_two_graphite_rs_servers") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (mut s1, a1) = start_server(&dir.path().join("s1"));
    let (mut s2, a2) = start_server(&dir.path().join("s2"));
    let port = support::free_port();
    let config = format!(
        "listen type linemode 127.0.0.1:{port} proto tcp ;\n\
         cluster nodes carbon_ch 127.0.0.1:{}=a 127.0.0.1:{}=b ;\n\
         match * send to nodes stop ;\n",
        a1.port(),
        a2.port()
    );
    fs::write(dir.path().join("crelay.conf"), &config).unwrap();
    let mut crelay = Proc::spawn(
        "carbon-c-relay",
        Command::new(CRELAY)
            .arg("-f")
            .arg(dir.path().join("crelay.conf"))
            .args(["-s", "-w", "2", "-q", "100000"]),
        dir.path().join("crelay.log"),
    );
    assert!(wait_port(port, Duration::from_secs(15)), "carbon-c-relay:\n{}", crelay.log());
    let names = names("cr.front", 10_000);
    let t = now_minute();
    let lines: Vec<String> = names.iter().map(|n| format!("{n} 1 {t}")).collect();
    send_lines(SocketAddr::from(([127, 0, 0, 1], port)), &lines);
    let (d1, d2) = (dir.path().join("s1/storage/whisper"), dir.path().join("s2/storage/whisper"));
    let done = wait_until(Duration::from_secs(180), || {
        wsp_names(&d1).len() + wsp_names(&d2).len() >= names.len()
    });
    crelay.stop();
    s1.stop();
    s2.stop();
    let (on1, on2) = (wsp_names(&d1), wsp_names(&d2));
    assert!(done, "only {} + {} of {} names arrived", on1.len(), on2.len(), names.len());
    // Where our ring puts each name, for the same cluster.
    let ours = our_routes(&config, &names);
    let mut wrong = Vec::new();
    for n in &names {
        let want = &ours[n];
        let got: Vec<String> = [(&on1, a1), (&on2, a2)]
            .iter()
            .filter(|(set, _)| set.contains(n))
            .map(|(_, a)| a.to_string())
            .collect();
        if &got != want {
            wrong.push((n.clone(), got, want.clone()));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} names not where our ring puts them, e.g. {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(5)]
    );
    assert!(on1.len() > 3000 && on2.len() > 3000, "split {} / {}", on1.len(), on2.len());
    eprintln!(
        "carbon-c-relay -> graphite-rs: {} + {} names, each on the node our ring names",
        on1.len(),
        on2.len()
    );
}

/// A Debian carbon-cache on free ports; returns it, its pickle port and its whisper dir.
fn start_carbon_cache(dir: &Path) -> (Proc, u16, PathBuf) {
    let (line, pickle, query) = (support::free_port(), support::free_port(), support::free_port());
    for sub in ["conf", "storage/whisper", "log", "lists"] {
        fs::create_dir_all(dir.join(sub)).unwrap();
    }
    let d = dir.display();
    fs::write(
        dir.join("conf/carbon.conf"),
        format!(
            "[cache]\nSTORAGE_DIR = {d}/storage/\nLOCAL_DATA_DIR = {d}/storage/whisper/\n\
             WHITELISTS_DIR = {d}/lists/\nCONF_DIR = {d}/conf/\nLOG_DIR = {d}/log/\nPID_DIR = {d}/\n\
             ENABLE_LOGROTATION = False\nUSER =\nMAX_CACHE_SIZE = inf\nMAX_UPDATES_PER_SECOND = inf\n\
             MAX_CREATES_PER_MINUTE = inf\nLINE_RECEIVER_INTERFACE = 127.0.0.1\nLINE_RECEIVER_PORT = {line}\n\
             ENABLE_UDP_LISTENER = False\nPICKLE_RECEIVER_INTERFACE = 127.0.0.1\nPICKLE_RECEIVER_PORT = {pickle}\n\
             CACHE_QUERY_INTERFACE = 127.0.0.1\nCACHE_QUERY_PORT = {query}\nLOG_UPDATES = False\n\
             LOG_CREATES = False\nCARBON_METRIC_INTERVAL = 0\nENABLE_TAGS = False\n"
        ),
    )
    .unwrap();
    fs::write(
        dir.join("conf/storage-schemas.conf"),
        "[default]\npattern = .*\nretentions = 60s:30\n",
    )
    .unwrap();
    let mut p = Proc::spawn(
        "carbon-cache",
        Command::new(PYTHON)
            .arg(CARBON_CACHE)
            .arg(format!("--config={d}/conf/carbon.conf"))
            .arg(format!("--pidfile={d}/carbon-cache.pid"))
            .arg(format!("--logdir={d}/log"))
            .args(["--nodaemon", "start"]),
        dir.join("stdout.log"),
    );
    let up = wait_until(Duration::from_secs(60), || {
        p.assert_running();
        TcpStream::connect(("127.0.0.1", pickle)).is_ok()
    });
    assert!(up, "carbon-cache did not open {pickle}:\n{}", p.log());
    (p, pickle, dir.join("storage/whisper"))
}

/// carbon's own ConsistentHashRing (Python) for `names`: the instance of each name's node.
fn carbon_ring_instances(nodes: &[(u16, &str)], names: &[String]) -> Vec<String> {
    // carbon's ring identity is (host, instance): the port does not matter.
    let ring: Vec<String> = nodes.iter().map(|(_, i)| format!("('127.0.0.1', '{i}')")).collect();
    let script = format!(
        "import sys\nfrom carbon.hashing import ConsistentHashRing\n\
         r = ConsistentHashRing([{}])\n\
         for l in sys.stdin:\n    print(r.get_node(l.strip())[1])\n",
        ring.join(", ")
    );
    let mut child = Command::new(PYTHON)
        .args(["-c", &script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input: String = names.iter().map(|n| format!("{n}\n")).collect();
    let w = std::thread::spawn(move || stdin.write_all(input.as_bytes()).unwrap());
    let out = child.wait_with_output().unwrap();
    w.join().unwrap();
    assert!(out.status.success(), "python carbon.hashing failed");
    String::from_utf8(out.stdout).unwrap().lines().map(str::to_string).collect()
}

#[test]
fn our_relay_in_front_of_two_carbon_caches() {
    if !have(CARBON_CACHE, "our_relay_in_front_of_two_carbon_caches") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (mut c1, p1, w1) = start_carbon_cache(&dir.path().join("a"));
    let (mut c2, p2, w2) = start_carbon_cache(&dir.path().join("b"));
    fs::create_dir_all(dir.path().join("relay")).unwrap();
    let conf = dir.path().join("relay/carbon.conf");
    fs::write(
        &conf,
        format!(
            "[relay]\nRELAY_METHOD = consistent-hashing\nREPLICATION_FACTOR = 1\n\
             DESTINATIONS = 127.0.0.1:{p1}:a, 127.0.0.1:{p2}:b\nDESTINATION_PROTOCOL = pickle\n"
        ),
    )
    .unwrap();
    let (mut relay, addr) = start_relay(
        dir.path(),
        &["--config", conf.to_str().unwrap(), "--pickle-port", "0", "--metric-interval", "0"],
    );
    let names = names("relay.carbon", 2000);
    let t = now_minute();
    let lines: Vec<String> = names.iter().map(|n| format!("{n} 2.5 {t}")).collect();
    send_lines(addr, &lines);
    let done = wait_until(Duration::from_secs(120), || {
        wsp_names(&w1).len() + wsp_names(&w2).len() >= names.len()
    });
    relay.stop();
    c1.stop();
    c2.stop();
    let (on_a, on_b) = (wsp_names(&w1), wsp_names(&w2));
    assert!(
        done,
        "only {} + {} of {} whisper files:\n{}",
        on_a.len(),
        on_b.len(),
        names.len(),
        relay.log()
    );
    let want = carbon_ring_instances(&[(p1, "a"), (p2, "b")], &names);
    let mut wrong = Vec::new();
    for (n, inst) in names.iter().zip(&want) {
        let (here, there) = if inst == "a" { (&on_a, &on_b) } else { (&on_b, &on_a) };
        if !here.contains(n) || there.contains(n) {
            wrong.push((n, inst));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} names not on carbon's node, e.g. {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(5)]
    );
    eprintln!(
        "graphite-relay -> carbon-cache: {} on a, {} on b, each where carbon_ch says",
        on_a.len(),
        on_b.len()
    );
}

/// Sends `total` points over `conns` connections at about `rate` points/s per connection,
/// stopping the destination `sink` (given back by `outage`) midway and restarting it.
fn restart_mid_stream(spool: bool) {
    let dir = tempfile::tempdir().unwrap();
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = Carbon::start_on("127.0.0.1:0".parse().unwrap(), Arc::clone(&lines));
    let sink_addr = sink.addr;
    let config = format!(
        "cluster out forward 127.0.0.1:{} ;\nmatch * send to out stop ;\n",
        sink_addr.port()
    );
    let cfg = dir.path().join("relay.conf");
    fs::write(&cfg, config).unwrap();
    let spool_dir = dir.path().join("spool");
    // Without a `listen` block carbon-c-relay (and we) take TCP and UDP 2003: free ports here.
    let mut args =
        vec!["--crelay-config", cfg.to_str().unwrap(), "--metric-interval", "1", "--udp-port", "0"];
    if spool {
        args.extend(["--spool-dir", spool_dir.to_str().unwrap()]);
    } else {
        // A small queue: the outage must be carried by backpressure alone.
        args.extend(["--queue-points", "2000"]);
    }
    let (mut relay, addr) = start_relay(dir.path(), &args);
    let total = 40_000usize;
    let conns = 4usize;
    let t0 = 1_700_000_000usize;
    let senders: Vec<JoinHandle<()>> = (0..conns)
        .map(|c| {
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(addr).unwrap();
                let mut i = c;
                while i < total {
                    let mut chunk = String::new();
                    for _ in 0..100 {
                        if i >= total {
                            break;
                        }
                        chunk.push_str(&format!("restart.c{c}.m{} {i} {}\n", i % 50, t0 + i));
                        i += conns;
                    }
                    s.write_all(chunk.as_bytes()).unwrap();
                    std::thread::sleep(Duration::from_millis(2));
                }
                s.shutdown(Shutdown::Write).unwrap();
            })
        })
        .collect();
    assert!(
        wait_until(Duration::from_secs(30), || sink.count() > total / 4),
        "no data before the outage"
    );
    sink.finish();
    let at_stop = lines.lock().unwrap().len();
    std::thread::sleep(Duration::from_millis(1500));
    let sink = Carbon::start_on(sink_addr, Arc::clone(&lines));
    for s in senders {
        s.join().unwrap();
    }
    let want: BTreeSet<usize> = (0..total).collect();
    let got_all = || {
        let l = lines.lock().unwrap();
        let got: BTreeSet<usize> = l
            .iter()
            .filter(|x| x.starts_with("restart."))
            .filter_map(|x| x.split(' ').nth(1)?.parse::<f64>().ok().map(|v| v as usize))
            .collect();
        got == want
    };
    let complete = wait_until(Duration::from_secs(60), got_all);
    // The statistics of the destination (carbon-c-relay's names) arrive through the relay.
    let label = format!("destinations.127_0_0_1:{}.sent", sink_addr.port());
    let metrics = wait_until(Duration::from_secs(10), || {
        lines.lock().unwrap().iter().any(|l| l.starts_with("carbon.relays.") && l.contains(&label))
    });
    relay.stop();
    let log = relay.log();
    sink.finish();
    let l = lines.lock().unwrap();
    let got: BTreeSet<usize> = l
        .iter()
        .filter(|x| x.starts_with("restart."))
        .filter_map(|x| x.split(' ').nth(1)?.parse::<f64>().ok().map(|v| v as usize))
        .collect();
    let missing = want.difference(&got).count();
    assert!(
        complete && missing == 0,
        "{missing} of {total} points lost (spool: {spool}); {at_stop} before the outage\n{log}"
    );
    assert!(metrics, "no self-metric {label}");
    eprintln!(
        "restart (spool {spool}): all {total} points delivered, {} lines in all ({at_stop} before the outage)",
        l.len()
    );
}

#[test]
fn a_destination_restarted_mid_stream_loses_nothing_with_a_spool() {
    restart_mid_stream(true);
}

#[test]
fn a_destination_restarted_mid_stream_loses_nothing_by_backpressure() {
    restart_mid_stream(false);
}

/// carbon's own routers (Python) for `names`: per name, `host:port:instance` of each
/// destination, in the router's order (sorted for the aggregated one, which yields a set).
const CARBON_ROUTER_SCRIPT: &str = r#"
import sys
from carbon import routers

class Settings(dict):
    __getattr__ = dict.__getitem__

method, hash_type, factor, rules_path = sys.argv[1:5]
s = Settings(REPLICATION_FACTOR=int(factor), DIVERSE_REPLICAS=True, ROUTER_HASH_TYPE=hash_type)
s['aggregation-rules'] = rules_path
router = routers.DatapointRouter.plugins[method](s)
for d in sys.argv[5:]:
    parts = d.split(':')
    router.addDestination((parts[0], int(parts[1]), parts[2] if len(parts) > 2 else None))
out = []
for name in sys.stdin.read().split('\n'):
    dests = ['%s:%d:%s' % d for d in router.getDestinations(name)]
    if 'aggregated' in method:
        dests.sort()
    out.append(' '.join(dests))
sys.stdout.write('\n'.join(out) + '\n')
"#;

/// `RELAY_METHOD = fast-hashing` and `fast-aggregated-hashing` read from carbon.conf: 10,000
/// names routed by our relay's router and by carbon's `FastHashingRouter` /
/// `FastAggregatedHashingRouter` (with the same aggregation-rules.conf, read by carbon's
/// `RuleManager`), destination for destination.
#[test]
fn fast_hashing_routes_like_carbon_routers() {
    let test = "fast_hashing_routes_like_carbon_routers";
    if !have(PYTHON, test) || !have("/usr/lib/python3/dist-packages/carbon/routers.py", test) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("aggregation-rules.conf");
    fs::write(
        &rules,
        "app.<env>.all.requests (60) = sum app.<env>.*.requests\n\
         servers.all.cpu.<kind> (60) = avg servers.*.cpu.<kind>\n\
         servers.<host>.cpu.total (60) = sum servers.<host>.cpu.*\n",
    )
    .unwrap();
    let mut names = names("fast", 6_000);
    for i in 0..2_000 {
        names.push(format!("app.env{}.web{i}.requests", i % 7));
        names.push(format!("servers.h{}.cpu.{}", i % 53, ["user", "system", "idle"][i % 3]));
    }
    let destinations =
        "10.0.0.1:2004:a, 10.0.0.1:2104:b, 10.0.0.2:2004:a, 10.0.0.3:2004, 10.0.0.4:2004:c";
    for (method, hash, factor) in [
        ("fast-hashing", "carbon_ch", 2),
        ("fast-hashing", "fnv1a_ch", 1),
        ("fast-aggregated-hashing", "carbon_ch", 1),
        ("fast-aggregated-hashing", "fnv1a_ch", 2),
    ] {
        let conf = bins::relay::config_carbon::CarbonRelayConf::parse(
            &format!(
                "[relay]\nRELAY_METHOD = {method}\nROUTER_HASH_TYPE = {hash}\n\
                 REPLICATION_FACTOR = {factor}\nDESTINATIONS = {destinations}\n"
            ),
            dir.path(),
        )
        .unwrap();
        let s = conf.settings(None, Some(&rules)).unwrap();
        let health = Health::new(s.destinations.len());
        let ours: Vec<String> = names
            .iter()
            .map(|n| {
                let mut to = Vec::new();
                s.router.route(n, &health, &mut |_, d| {
                    let dest = &s.destinations[d].dest;
                    to.push(format!(
                        "{}:{}:{}",
                        dest.host(),
                        dest.port(),
                        dest.instance().unwrap_or("None")
                    ));
                });
                if method.contains("aggregated") {
                    to.sort();
                }
                to.join(" ")
            })
            .collect();
        let mut args = vec![
            "-c".to_owned(),
            CARBON_ROUTER_SCRIPT.to_owned(),
            method.to_owned(),
            hash.to_owned(),
            factor.to_string(),
            rules.display().to_string(),
        ];
        args.extend(destinations.split(", ").map(str::to_owned));
        let mut child = Command::new(PYTHON)
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let input = names.join("\n");
        let w = std::thread::spawn(move || stdin.write_all(input.as_bytes()).unwrap());
        let out = child.wait_with_output().unwrap();
        w.join().unwrap();
        assert!(out.status.success(), "{method}: python carbon.routers failed");
        let out = String::from_utf8(out.stdout).unwrap();
        let theirs: Vec<&str> = out.lines().collect();
        assert_eq!(theirs.len(), names.len(), "{method} {hash}");
        let differ: Vec<_> = (0..names.len())
            .filter(|&k| theirs[k] != ours[k])
            .take(5)
            .map(|k| (&names[k], theirs[k], &ours[k]))
            .collect();
        assert!(differ.is_empty(), "{method} {hash} x{factor}: routes differ, e.g. {differ:?}");
        let used: BTreeSet<&str> = ours.iter().flat_map(|l| l.split(' ')).collect();
        assert!(used.len() >= 3, "{method} {hash}: everything went to {used:?}");
        eprintln!("{method} {hash} x{factor}: {} names routed as carbon routes them", names.len());
    }
}
