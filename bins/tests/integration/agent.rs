//! `graphite-agent` end to end: the binary collecting this host with a 1 s interval and
//! sending to (a) our server and (b) Debian's carbon-cache, the metrics found in the whisper
//! files they write; (c) an outage: our server stopped for a few seconds and started again on
//! the same port, and every point the agent produced meanwhile is in the files afterwards;
//! (d) the agent's statsd server: packets counted through a reload, flushed at SIGTERM into
//! the sender and found in our server's files.

use std::fs;
use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

const AGENT: &str = env!("CARGO_BIN_EXE_graphite-agent");
const SERVER: &str = env!("CARGO_BIN_EXE_graphite-rs");

/// The host node every test uses (a literal, so paths do not depend on the machine).
const HOST: &str = "e2ehost";

/// A child process killed on drop.
struct Proc {
    child: Option<Child>,
    log: PathBuf,
    what: &'static str,
}

impl Proc {
    fn spawn(what: &'static str, cmd: &mut Command, log: PathBuf) -> Proc {
        let err = fs::OpenOptions::new().create(true).append(true).open(&log).unwrap();
        let child = cmd
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("start {what}: {e}"));
        Proc { child: Some(child), log, what }
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn pid(&self) -> i32 {
        self.child.as_ref().unwrap().id() as i32
    }

    /// SIGTERM, then the exit status (bounded wait).
    fn stop(mut self) -> ExitStatus {
        let mut child = self.child.take().unwrap();
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("{} did not stop within 60 s:\n{}", self.what, self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Our server on `root` (data in `root/storage/whisper`), every point kept at 1 s
/// resolution; `line_port` 0 picks a free one. Returns it and its plaintext address.
fn start_server(root: &Path, line_port: u16) -> (Proc, SocketAddr) {
    fs::create_dir_all(root.join("conf")).unwrap();
    fs::write(root.join("conf/storage-schemas.conf"), "[all]\npattern = .*\nretentions = 1s:1h\n")
        .unwrap();
    let ready = root.join("ready");
    let _ = fs::remove_file(&ready);
    let mut cmd = Command::new(SERVER);
    cmd.args(["--root", root.to_str().unwrap(), "--bind", "127.0.0.1"])
        .args(["--line-port", &line_port.to_string(), "--udp-port", "0", "--pickle-port", "0"])
        .args(["--query-port", "0", "--http-port", "0", "--ready-file"])
        .arg(&ready)
        .env_remove("GRAPHITE_ROOT")
        .env_remove("GRAPHITE_CONF_DIR")
        .env_remove("GRAPHITE_STORAGE_DIR");
    let mut server = Proc::spawn("graphite-rs", &mut cmd, root.join("server.log"));
    let deadline = Instant::now() + Duration::from_secs(60);
    let text = loop {
        if let Ok(t) = fs::read_to_string(&ready) {
            break t;
        }
        if let Some(status) = server.child.as_mut().unwrap().try_wait().unwrap() {
            panic!("graphite-rs exited with {status}:\n{}", server.log());
        }
        assert!(Instant::now() < deadline, "graphite-rs not ready:\n{}", server.log());
        std::thread::sleep(Duration::from_millis(20));
    };
    let line = text
        .split_whitespace()
        .find_map(|f| f.strip_prefix("line="))
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no line address in {text:?}"));
    (server, line)
}

/// Starts the agent with `toml` as its configuration file in `dir`.
fn start_agent(dir: &Path, toml: &str) -> Proc {
    start_agent_with(dir, toml, &[])
}

/// [`start_agent`] with more arguments.
fn start_agent_with(dir: &Path, toml: &str, args: &[&str]) -> Proc {
    let conf = dir.join("agent.toml");
    fs::write(&conf, toml).unwrap();
    let mut cmd = Command::new(AGENT);
    cmd.arg("--config").arg(&conf).args(args).env("RUST_LOG", "info");
    Proc::spawn("graphite-agent", &mut cmd, dir.join("agent.log"))
}

/// An agent.toml: loadavg and memory every second, to `destinations` (TOML text).
fn agent_toml(destinations: &str) -> String {
    format!(
        "[agent]\nhostname = \"{HOST}\"\ninterval = 1\ndefault_collectors = false\n\
         stagger_collection = false\n\
         [collectors.loadavg]\n[collectors.memory]\n{destinations}"
    )
}

fn wsp(data: &Path, metric: &str) -> PathBuf {
    data.join(format!("{}.wsp", metric.replace('.', "/")))
}

/// The non-empty timestamps of a whisper file over the last hour.
fn file_times(path: &Path) -> Vec<i64> {
    let now = whisper::now();
    match whisper::fetch(path, now - 3600, Some(now), now) {
        Ok(Some(s)) => s.points().filter_map(|(t, v)| v.map(|_| t)).collect(),
        _ => Vec::new(),
    }
}

/// Waits (bounded) until every metric has a whisper file with at least one point.
fn wait_files(data: &Path, metrics: &[String], limit: Duration, logs: &dyn Fn() -> String) {
    let deadline = Instant::now() + limit;
    for m in metrics {
        let path = wsp(data, m);
        while file_times(&path).is_empty() {
            assert!(Instant::now() < deadline, "no points in {}:\n{}", path.display(), logs());
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn metrics() -> Vec<String> {
    ["loadavg.01", "loadavg.processes_total", "memory.MemFree", "memory.MemTotal"]
        .iter()
        .map(|m| format!("servers.{HOST}.{m}"))
        .chain([format!("servers.{HOST}.collect.collectors.loadavg.runs")])
        .collect()
}

#[test]
fn agent_metrics_reach_our_servers_whisper_files() {
    let tmp = tempfile::tempdir().unwrap();
    let (server, line) = start_server(tmp.path(), 0);
    let agent = start_agent(
        tmp.path(),
        &agent_toml(&format!("[[sender.destinations]]\naddress = \"{line}\"\n")),
    );
    std::thread::sleep(Duration::from_secs(3));
    let agent_log = agent.log();
    let status = agent.stop();
    assert!(status.success(), "agent exit {status}:\n{agent_log}");
    let server_log = server.log();
    assert!(server.stop().success(), "{server_log}");
    let data = tmp.path().join("storage/whisper");
    wait_files(&data, &metrics(), Duration::from_secs(5), &|| agent_log.clone());
}

/// A free loopback port (bound and released).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn agent_metrics_reach_debian_carbon_caches_whisper_files() {
    if !Path::new("/usr/bin/carbon-cache").exists() {
        assert!(
            std::env::var("GRAPHITE_REQUIRE_REFERENCE").as_deref() != Ok("1"),
            "GRAPHITE_REQUIRE_REFERENCE=1 but /usr/bin/carbon-cache is missing (apt-get install graphite-carbon)"
        );
        eprintln!(
            "SKIP agent_metrics_reach_debian_carbon_caches_whisper_files: /usr/bin/carbon-cache is missing (apt-get install graphite-carbon)"
        );
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let (line, pickle, query) = (free_port(), free_port(), free_port());
    for sub in ["conf", "storage/whisper", "log", "lists"] {
        fs::create_dir_all(d.join(sub)).unwrap();
    }
    let p = d.display();
    fs::write(
        d.join("conf/carbon.conf"),
        format!(
            "[cache]\nSTORAGE_DIR = {p}/storage/\nLOCAL_DATA_DIR = {p}/storage/whisper/\n\
             WHITELISTS_DIR = {p}/lists/\nCONF_DIR = {p}/conf/\nLOG_DIR = {p}/log/\nPID_DIR = {p}/\n\
             ENABLE_LOGROTATION = False\nUSER =\nMAX_CACHE_SIZE = inf\nMAX_UPDATES_PER_SECOND = inf\n\
             MAX_CREATES_PER_MINUTE = inf\nLINE_RECEIVER_INTERFACE = 127.0.0.1\nLINE_RECEIVER_PORT = {line}\n\
             ENABLE_UDP_LISTENER = False\nPICKLE_RECEIVER_INTERFACE = 127.0.0.1\nPICKLE_RECEIVER_PORT = {pickle}\n\
             CACHE_QUERY_INTERFACE = 127.0.0.1\nCACHE_QUERY_PORT = {query}\nLOG_UPDATES = False\n\
             LOG_CREATES = False\nENABLE_TAGS = False\nCARBON_METRIC_INTERVAL = 60\n"
        ),
    )
    .unwrap();
    fs::write(d.join("conf/storage-schemas.conf"), "[all]\npattern = .*\nretentions = 1s:1h\n")
        .unwrap();
    let mut cmd = Command::new("/usr/bin/python3");
    cmd.arg("/usr/bin/carbon-cache")
        .arg(format!("--config={p}/conf/carbon.conf"))
        .arg(format!("--pidfile={p}/carbon.pid"))
        .arg(format!("--logdir={p}/log"))
        .args(["--nodaemon", "start"]);
    let carbon = Proc::spawn("carbon-cache", &mut cmd, d.join("carbon.log"));
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", line)).is_err() {
        assert!(Instant::now() < deadline, "carbon-cache did not open {line}:\n{}", carbon.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    let agent = start_agent(
        d,
        &agent_toml(&format!("[[sender.destinations]]\naddress = \"127.0.0.1:{line}\"\n")),
    );
    let data = d.join("storage/whisper");
    let logs = || {
        format!(
            "agent:\n{}\ncarbon:\n{}",
            fs::read_to_string(d.join("agent.log")).unwrap_or_default(),
            carbon.log()
        )
    };
    wait_files(&data, &metrics(), Duration::from_secs(60), &logs);
    assert!(agent.stop().success());
    let _ = carbon.pid();
    let _ = carbon.stop();
}

/// Lines `name value ts` of the archive files under `dir` for `metric`: the timestamps.
fn archived_times(dir: &Path, metric: &str) -> Vec<i64> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap().flatten() {
        if !e.file_name().to_string_lossy().starts_with("archive.log") {
            continue;
        }
        for l in fs::read_to_string(e.path()).unwrap().lines() {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() == 3 && f[0] == metric {
                out.push(f[2].parse().unwrap());
            }
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

#[test]
fn an_outage_is_replayed_from_the_spool() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("carbon");
    let (server, line) = start_server(&root, 0);
    let spool = tmp.path().join("spool");
    let archive = tmp.path().join("archive.log");
    let agent = start_agent(
        tmp.path(),
        &agent_toml(&format!(
            "[[sender.destinations]]\naddress = \"{line}\"\nspool_dir = \"{}\"\n\
             reconnect_min = 0.1\nreconnect_max = 0.5\nbatch_delay = 0.1\nqueue_points = 4\n\
             [[sender.destinations]]\nkind = \"archive\"\npath = \"{}\"\n",
            spool.display(),
            archive.display()
        )),
    );
    let data = root.join("storage/whisper");
    let one = format!("servers.{HOST}.loadavg.01");
    wait_files(&data, std::slice::from_ref(&one), Duration::from_secs(30), &|| agent.log());
    // Carbon goes away for 4 s: the agent keeps collecting. Its memory queue holds 4 points,
    // so nearly everything of the outage goes through the spool (without one it would be
    // dropped).
    let server_log = server.log();
    assert!(server.stop().success(), "{server_log}");
    let down = whisper::now();
    std::thread::sleep(Duration::from_secs(4));
    let (server, again) = start_server(&root, line.port());
    assert_eq!(again, line);
    // Back: the spool replays, and new points follow.
    std::thread::sleep(Duration::from_secs(3));
    let agent_log = agent.log();
    assert!(agent.stop().success(), "{agent_log}");
    assert!(server.stop().success());

    for m in [one, format!("servers.{HOST}.memory.MemFree")] {
        let produced = archived_times(tmp.path(), &m);
        let during: Vec<i64> = produced.iter().copied().filter(|&t| t >= down).collect();
        assert!(
            during.len() >= 3,
            "{m}: the archive has {produced:?}, down at {down}:\n{agent_log}"
        );
        let stored = file_times(&wsp(&data, &m));
        let missing: Vec<i64> = produced.iter().copied().filter(|t| !stored.contains(t)).collect();
        assert!(
            missing.is_empty(),
            "{m}: {missing:?} produced but not stored (down at {down}); stored {stored:?}:\n{agent_log}"
        );
    }
}

/// The non-empty `(timestamp, value)` points of a whisper file over the last hour, and the
/// next second: statsd stamps a flush with its time rounded to the nearest second.
fn file_points(path: &Path) -> Vec<(i64, f64)> {
    let now = whisper::now() + 1;
    match whisper::fetch(path, now - 3600, Some(now), now) {
        Ok(Some(s)) => s.points().filter_map(|(t, v)| v.map(|v| (t, v))).collect(),
        _ => Vec::new(),
    }
}

#[test]
fn agent_statsd_flushes_reach_our_servers_whisper_files() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("carbon");
    let (server, line) = start_server(&root, 0);
    let ready = tmp.path().join("agent.ready");
    // One flush only, the one at SIGTERM: every packet must survive the reload in between
    // and reach the sender before it shuts down.
    let toml = format!(
        "[agent]\nhostname = \"{HOST}\"\ninterval = 1\ndefault_collectors = false\n\
         [[sender.destinations]]\naddress = \"{line}\"\n\
         [statsd]\nudp = \"127.0.0.1:0\"\ntcp = \"127.0.0.1:0\"\nflush_interval_ms = 60000\n"
    );
    let agent = start_agent_with(tmp.path(), &toml, &["--ready-file", ready.to_str().unwrap()]);
    let deadline = Instant::now() + Duration::from_secs(30);
    let text = loop {
        if let Ok(t) = fs::read_to_string(&ready) {
            break t;
        }
        assert!(Instant::now() < deadline, "no ready file:\n{}", agent.log());
        std::thread::sleep(Duration::from_millis(20));
    };
    let addr = |key: &str| -> SocketAddr {
        text.split_whitespace()
            .find_map(|f| f.strip_prefix(key))
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no {key} in {text:?}"))
    };
    let (udp, tcp) = (addr("statsd_udp="), addr("statsd_tcp="));
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    for _ in 0..3 {
        client.send_to(b"foo:1|c", udp).unwrap();
    }
    TcpStream::connect(tcp).unwrap().write_all(b"foo:2|c\n").unwrap();
    std::thread::sleep(Duration::from_millis(300));

    // A reload with the same [statsd] keeps the server and what it counted.
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(agent.pid(), libc::SIGHUP) };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !agent.log().contains("configuration reloaded") {
        assert!(Instant::now() < deadline, "no reload:\n{}", agent.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(fs::read_to_string(&ready).unwrap(), text);
    client.send_to(b"foo:4|c", udp).unwrap();
    std::thread::sleep(Duration::from_millis(300));

    let status = agent.stop();
    let agent_log = fs::read_to_string(tmp.path().join("agent.log")).unwrap_or_default();
    assert!(status.success(), "{agent_log}");
    let server_log = server.log();
    assert!(server.stop().success(), "{server_log}");
    // statsd's names as they are: no servers.<host> in front.
    let data = root.join("storage/whisper");
    let agent_log = format!("{agent_log}\nserver:\n{server_log}");
    let counts = file_points(&wsp(&data, "stats_counts.foo"));
    assert_eq!(counts.iter().map(|p| p.1).collect::<Vec<_>>(), [9.0], "{agent_log}");
    let rate = file_points(&wsp(&data, "stats.foo"));
    assert_eq!(rate.iter().map(|p| p.1).collect::<Vec<_>>(), [9.0 / 60.0], "{agent_log}");
    assert!(!data.join("servers").join(HOST).join("stats_counts").exists());
}
