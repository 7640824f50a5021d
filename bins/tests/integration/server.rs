//! The `graphite-rs` server as a user runs it: a child process on loopback ports, real traffic
//! in every protocol, files read back; SIGTERM draining the cache; `kill -9` and the
//! write-ahead log's bound; the full-cache backpressure; graphite-web's CarbonLink client
//! reading the cache over the query port; the `check` and `migrate` commands.

use std::collections::BTreeSet;
use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use carbon_proto::cache_query::{Request, Response};
use carbon_proto::pickle::{encode_datapoints, encode_frame};
use carbon_proto::{MetricName, Point};

use crate::support;

/// A running server and where it keeps everything.
struct Server {
    child: Option<Child>,
    root: PathBuf,
    line: SocketAddr,
    udp: Option<SocketAddr>,
    pickle: SocketAddr,
    query: SocketAddr,
}

impl Server {
    /// Starts `graphite-rs` with `root` as GRAPHITE_ROOT (config in `root/conf`, data in
    /// `root/storage`) on free loopback ports.
    fn start(root: &Path, extra: &[&str]) -> Server {
        let (ready, log) = (root.join("ready"), root.join("server.log"));
        let _ = fs::remove_file(&ready);
        let log_file = fs::OpenOptions::new().create(true).append(true).open(&log).unwrap();
        let child = support::graphite_rs(root, &ready, log_file)
            .args(["--line-port", "0", "--udp-port", "0", "--pickle-port", "0"])
            .args(["--query-port", "0", "--http-port", "0"])
            .args(extra)
            .spawn()
            .expect("start graphite-rs");
        let mut server = Server {
            child: Some(child),
            root: root.to_path_buf(),
            line: any(),
            udp: None,
            pickle: any(),
            query: any(),
        };
        let text = support::wait_ready(server.child.as_mut().unwrap(), &ready, &log);
        for field in text.split_whitespace() {
            let (key, value) = field.split_once('=').unwrap();
            let addr = value.parse().ok();
            match key {
                "line" => server.line = addr.unwrap(),
                "udp" => server.udp = addr,
                "pickle" => server.pickle = addr.unwrap(),
                "cache_query" => server.query = addr.unwrap(),
                _ => {}
            }
        }
        server
    }

    fn log(&self) -> String {
        fs::read_to_string(self.root.join("server.log")).unwrap_or_default()
    }

    /// SIGTERM, then waits for the exit.
    ///
    /// # Panics
    ///
    /// The server exits with a failure: the panic shows its log, which says why.
    fn stop(mut self) -> ExitStatus {
        let mut child = self.child.take().unwrap();
        support::sigterm(&child);
        let log = self.root.join("server.log");
        let status = support::wait_exit(&mut child, Duration::from_secs(120), &log);
        assert!(status.success(), "exit {status}:\n{}", self.log());
        status
    }

    /// SIGKILL: a crash.
    fn kill9(mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// The cached points of `metric`, asked over the cache-query port.
    fn cache_query(&self, metric: &str) -> Vec<(f64, f64)> {
        match self.ask(&Request::CacheQuery { metric: metric.into() }) {
            Response::Datapoints(points) => points.iter().map(|p| (p.timestamp, p.value)).collect(),
            other => panic!("cache-query answered {other:?}"),
        }
    }

    fn ask(&self, request: &Request) -> Response {
        let mut s = TcpStream::connect(self.query).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut payload = Vec::new();
        request.encode(&mut payload);
        let mut frame = Vec::new();
        encode_frame(&mut frame, &payload).unwrap();
        s.write_all(&frame).unwrap();
        let mut len = [0u8; 4];
        s.read_exact(&mut len).unwrap();
        let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
        s.read_exact(&mut body).unwrap();
        Response::decode(&body).unwrap()
    }

    fn whisper_dir(&self) -> PathBuf {
        self.root.join("storage/whisper")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn any() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// A minute boundary `minutes` before the current one.
fn minute(minutes: i64) -> i64 {
    let now = whisper::now();
    now - now % 60 - 60 * minutes
}

fn wsp(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{}.wsp", name.replace('.', "/")))
}

fn wsp_files(dir: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "wsp") {
                out.insert(p.strip_prefix(dir).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    out
}

/// The non-empty `(timestamp, value)`s of a file over the last day.
fn file_points(path: &Path) -> Vec<(i64, f64)> {
    file_points_since(path, 86_400)
}

/// The non-empty `(timestamp, value)`s of a file over the last `seconds`.
fn file_points_since(path: &Path, seconds: i64) -> Vec<(i64, f64)> {
    let now = whisper::now();
    let s = whisper::fetch(path, now - seconds, Some(now), now)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .unwrap();
    s.points().filter_map(|(t, v)| v.map(|v| (t, v))).collect()
}

fn send_tcp(addr: SocketAddr, bytes: &[u8]) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(bytes).unwrap();
}

fn write_conf(root: &Path, carbon_conf: &str) {
    fs::create_dir_all(root.join("conf")).unwrap();
    fs::write(root.join("conf/carbon.conf"), carbon_conf).unwrap();
}

/// Waits until `metric` has `(ts, value)` in the cache or, once written, in its file.
fn wait_cached(server: &Server, metric: &str, ts: i64, value: f64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let path = wsp(&server.whisper_dir(), metric);
    loop {
        if server.cache_query(metric).contains(&(ts as f64, value))
            || (path.exists() && file_points(&path).contains(&(ts, value)))
        {
            return;
        }
        assert!(Instant::now() < deadline, "{metric} never had {ts} {value}:\n{}", server.log());
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn every_protocol_reaches_its_files_and_sigterm_drains_the_cache() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(tmp.path(), &[]);
    let t = minute(5);
    let mut text = String::new();
    for i in 0..5 {
        text.push_str(&format!("tcp.a {} {}\n", i, t + 60 * i));
    }
    let overlong = format!("tcp.long {} 1 {t}\n", "x".repeat(20_000));
    text.push_str(&overlong);
    text.push_str(&format!(
        "not a line\ntcp.nan nan {t}\n../../escape 1 {t}\na..b 1 {t}\n/abs 1 {t}\n"
    ));
    text.push_str(&format!("tcp.b 7.5 {t}\ntcp.tagged;dc=x;host=a 3 {t}\n"));
    send_tcp(server.line, text.as_bytes());

    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.send_to(format!("udp.a 1 {t}\nudp.b 2 {t}\nbroken\n").as_bytes(), server.udp.unwrap())
        .unwrap();

    let points: Vec<Point> = (0..3)
        .map(|i| {
            Point::new(MetricName::new("pickle.a").unwrap(), (t + 60 * i) as f64, 10.0 + i as f64)
        })
        .collect();
    let mut frame = Vec::new();
    encode_frame(&mut frame, &encode_datapoints(&points)).unwrap();
    let mut junk = Vec::new();
    encode_frame(&mut junk, b"\x80\x02not really").unwrap();
    let mut stream = Vec::new();
    stream.extend_from_slice(&junk);
    stream.extend_from_slice(&frame);
    send_tcp(server.pickle, &stream);

    // Everything is readable (cache or file) before the shutdown.
    wait_cached(&server, "pickle.a", t + 120, 12.0);
    wait_cached(&server, "udp.b", t, 2.0);
    wait_cached(&server, "tcp.b", t, 7.5);

    let dir = server.whisper_dir();
    let status = server.stop();
    assert!(status.success(), "exit status {status}");

    assert_eq!(
        file_points(&wsp(&dir, "tcp.a")),
        (0..5).map(|i| (t + 60 * i, i as f64)).collect::<Vec<_>>()
    );
    assert_eq!(file_points(&wsp(&dir, "tcp.b")), [(t, 7.5)]);
    assert_eq!(file_points(&wsp(&dir, "udp.a")), [(t, 1.0)]);
    assert_eq!(file_points(&wsp(&dir, "pickle.a")), [(t, 10.0), (t + 60, 11.0), (t + 120, 12.0)]);
    let files = wsp_files(&dir);
    let plain: Vec<&String> = files.iter().filter(|f| !f.starts_with("_tagged/")).collect();
    assert_eq!(plain, ["pickle/a.wsp", "tcp/a.wsp", "tcp/b.wsp", "udp/a.wsp", "udp/b.wsp"]);
    assert_eq!(files.len(), 6, "one tagged series: {files:?}");
    assert!(!tmp.path().join("escape.wsp").exists() && !Path::new("/abs.wsp").exists());
    // A clean stop leaves nothing to replay.
    let segments: Vec<_> = fs::read_dir(tmp.path().join("storage/wal"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".wal"))
        .collect();
    assert!(segments.is_empty(), "{segments:?}");
}

/// Sends `metrics x points` plaintext points, `value = metric * 1000 + point`.
fn send_load(addr: SocketAddr, prefix: &str, metrics: usize, points: usize, start: i64) {
    let mut s = TcpStream::connect(addr).unwrap();
    let mut buf = String::new();
    for p in 0..points {
        for m in 0..metrics {
            buf.push_str(&format!("{prefix}.m{m} {} {}\n", m * 1000 + p, start + 60 * p as i64));
        }
        if buf.len() > 1 << 16 {
            s.write_all(buf.as_bytes()).unwrap();
            buf.clear();
        }
    }
    s.write_all(buf.as_bytes()).unwrap();
}

fn check_load(dir: &Path, prefix: &str, metrics: usize, points: usize, start: i64) {
    for m in 0..metrics {
        let expected: Vec<(i64, f64)> =
            (0..points).map(|p| (start + 60 * p as i64, (m * 1000 + p) as f64)).collect();
        assert_eq!(file_points(&wsp(dir, &format!("{prefix}.m{m}"))), expected, "{prefix}.m{m}");
    }
}

/// Sends a load, waits until the server has read all of it, kills it with SIGKILL after
/// `wait`, restarts it with writers and checks every point reached its file.
fn crash_and_recover(fsync: &str, wait: Duration) {
    let tmp = tempfile::tempdir().unwrap();
    // Writers held back: at the kill, every point is in the cache and the log only.
    write_conf(tmp.path(), "[cache]\nMAX_UPDATES_PER_SECOND = 0.001\nWAL_FSYNC_INTERVAL = 0.2\n");
    let server = Server::start(tmp.path(), &["--wal-fsync", fsync]);
    let (metrics, points) = (500, 40);
    let start = minute(points as i64);
    send_load(server.line, "crash", metrics, points, start);
    let last = metrics - 1;
    wait_cached(
        &server,
        &format!("crash.m{last}"),
        start + 60 * (points as i64 - 1),
        (last * 1000 + points - 1) as f64,
    );
    std::thread::sleep(wait);
    let dir = server.whisper_dir();
    assert!(wsp_files(&dir).is_empty(), "the writers were held back");
    server.kill9();

    write_conf(tmp.path(), "[cache]\nMAX_UPDATES_PER_SECOND = inf\n");
    let server = Server::start(tmp.path(), &[]);
    let log = server.log();
    assert!(log.contains(&format!("replayed_points={}", metrics * points)), "{log}");
    let status = server.stop();
    assert!(status.success());
    check_load(&dir, "crash", metrics, points, start);
}

#[test]
fn kill_9_loses_nothing_older_than_the_fsync_interval() {
    // 0.2 s interval; the slack covers a loaded machine's scheduling.
    crash_and_recover("interval", Duration::from_millis(1200));
}

#[test]
fn kill_9_loses_nothing_acknowledged_with_fsync_always() {
    crash_and_recover("always", Duration::ZERO);
}

#[test]
fn check_lists_files_that_differ_and_migrate_fixes_them() {
    let tmp = tempfile::tempdir().unwrap();
    let conf = tmp.path().join("conf");
    fs::create_dir_all(&conf).unwrap();
    fs::write(conf.join("storage-schemas.conf"), "[all]\npattern = .*\nretentions = 60s:1d\n")
        .unwrap();
    let server = Server::start(tmp.path(), &[]);
    let t = minute(3);
    send_tcp(server.line, format!("ops.a 1 {t}\nops.b 2 {t}\nops.c.sum 3 {t}\n").as_bytes());
    wait_cached(&server, "ops.c.sum", t, 3.0);
    assert!(server.stop().success());
    let run = |args: &[&str]| {
        let out = Command::new(support::GRAPHITE_RS)
            .args(args)
            .arg("--root")
            .arg(tmp.path())
            .env_remove("GRAPHITE_ROOT")
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, err) = run(&["check"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert_eq!(out, "");

    // New retentions for ops.a, a new method for *.sum.
    fs::write(conf.join("storage-schemas.conf"), "[a]\npattern = ^ops\\.a$\nretentions = 10s:1h,60s:1d\n[all]\npattern = .*\nretentions = 60s:1d\n").unwrap();
    fs::write(
        conf.join("storage-aggregation.conf"),
        "[sum]\npattern = \\.sum$\nxFilesFactor = 0\naggregationMethod = sum\n",
    )
    .unwrap();
    let (code, out, err) = run(&["check"]);
    assert_eq!(code, Some(1), "{out}{err}");
    let dir = tmp.path().join("storage/whisper");
    let a = wsp(&dir, "ops.a");
    let sum = wsp(&dir, "ops.c.sum");
    assert_eq!(
        out,
        format!(
            "{}: retentions 1m:1d -> 10s:1h,1m:1d ([a])\n{}: aggregationMethod average -> sum ([sum]); xFilesFactor 0.5 -> 0 ([sum])\n",
            a.display(),
            sum.display()
        )
    );
    let (code, out, _) = run(&["migrate", "--dry-run"]);
    assert_eq!(code, Some(0));
    assert_eq!(out.lines().count(), 2);
    assert_eq!(whisper::info(&a).unwrap().archives().len(), 1, "a dry run changes nothing");

    let (code, out, err) = run(&["migrate", "--nobackup"]);
    assert_eq!(code, Some(0), "{out}{err}");
    let header = whisper::info(&a).unwrap();
    assert_eq!(
        header.archives().iter().map(|x| x.seconds_per_point()).collect::<Vec<_>>(),
        [10, 60]
    );
    // whisper-resize's copy: into the 10 s archive (one 10 s point of six is below the
    // xFilesFactor, so the minute archive stays empty).
    assert_eq!(file_points_since(&a, 3000), [(t, 1.0)], "the data moved with the file");
    let header = whisper::info(&sum).unwrap();
    assert_eq!(header.aggregation_method(), whisper::AggregationMethod::Sum);
    assert_eq!(header.x_files_factor(), 0.0);
    let (code, out, _) = run(&["check"]);
    assert_eq!((code, out.as_str()), (Some(0), ""));

    // With the server running, migrate refuses (its writes would go to the old files).
    let server = Server::start(tmp.path(), &[]);
    fs::write(conf.join("storage-schemas.conf"), "[all]\npattern = .*\nretentions = 60s:2d\n")
        .unwrap();
    let (code, _, err) = run(&["migrate"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("a server is running"), "{err}");
    assert!(server.stop().success());
}

/// Whether the system Python imports `module` (graphite-web's); prints SKIP, or fails under
/// `GRAPHITE_REQUIRE_REFERENCE`, when it does not.
fn python_has(module: &str) -> bool {
    use super::reference::{PYTHON, REQUIRE_ENV};
    let ok = Command::new(PYTHON)
        .args(["-c", &format!("import {module}")])
        .env("DJANGO_SETTINGS_MODULE", "graphite.settings")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        let reason = format!("{PYTHON} cannot import {module} (apt-get install graphite-web)");
        assert!(
            std::env::var_os(REQUIRE_ENV).is_none_or(|v| v == "0"),
            "reference implementation required ({REQUIRE_ENV} is set) but {reason}"
        );
        eprintln!("SKIP: {reason}");
    }
    ok
}

/// Runs a Python script (argv[1] = `dir`) with `input` on stdin; its stdout.
fn run_python(script: &str, dir: &Path, input: &str) -> String {
    let mut child = Command::new(super::reference::PYTHON)
        .arg("-c")
        .arg(script)
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "python failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// graphite-web's settings for the interop test: the CarbonLink host is filled in.
const GRAPHITE_SETTINGS: &str = r#"
SECRET_KEY = 'graphite-rs tests'
DATABASES = {'default': {'NAME': ':memory:', 'ENGINE': 'django.db.backends.sqlite3'}}
CARBONLINK_TIMEOUT = 5.0
"#;

/// graphite-web's own code: the CarbonLink pool and the Whisper reader that merges its answer.
const GRAPHITE_SCRIPT: &str = r#"
import os, sys, json, warnings
warnings.simplefilter('ignore')
sys.path.insert(0, sys.argv[1])
os.environ['GRAPHITE_SETTINGS_MODULE'] = 'gwtest_settings'
os.environ['DJANGO_SETTINGS_MODULE'] = 'graphite.settings'
os.environ.setdefault('GRAPHITE_STORAGE_DIR', sys.argv[1])
import django
django.setup()
from graphite.carbonlink import CarbonLink
from graphite.readers.whisper import WhisperReader
args = json.load(sys.stdin)
link = CarbonLink()
out = {}
out['query'] = sorted(link.query(args['metric']))
out['query_cache_only'] = sorted(link.query(args['cache_only']))
out['metadata'] = link.get_metadata(args['metric'], 'aggregationMethod')
out['set'] = link.set_metadata(args['metric'], 'aggregationMethod', 'max')
try:
    link.get_metadata(args['metric'], 'nope')
    out['bad_key'] = None
except Exception as e:
    out['bad_key'] = str(e)
reader = WhisperReader(args['path'], args['metric'])
(start, end, step), values = reader.fetch(args['from'], args['until'], now=args['until'])
out['fetch'] = [start, end, step, values]
json.dump(out, sys.stdout)
"#;

#[test]
fn graphite_web_reads_the_cache_over_carbonlink() {
    if !python_has("graphite.carbonlink") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    write_conf(tmp.path(), "[cache]\nMAX_UPDATES_PER_SECOND = 0.001\n");
    let dir = tmp.path().join("storage/whisper");
    let path = wsp(&dir, "interop.m1");
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    whisper::create(&path, &[whisper::Retention::new(60, 1440)]).unwrap();
    let t = minute(30);
    // Older points in the file, newer ones (one overwriting a file value) only in the cache.
    let on_disk: Vec<(i64, f64)> = (0..10).map(|i| (t + 60 * i, i as f64)).collect();
    whisper::update_many(&path, &on_disk, whisper::now()).unwrap();
    let server = Server::start(tmp.path(), &[]);
    let cached: Vec<(i64, f64)> = (9..15).map(|i| (t + 60 * i, 100.0 + i as f64)).collect();
    let mut text: String = cached.iter().map(|(ts, v)| format!("interop.m1 {v} {ts}\n")).collect();
    text.push_str(&format!("interop.cacheonly 5 {t}\n"));
    send_tcp(server.line, text.as_bytes());
    wait_cached(&server, "interop.cacheonly", t, 5.0);
    wait_cached(&server, "interop.m1", t + 60 * 14, 114.0);

    let settings_dir = tempfile::tempdir().unwrap();
    let settings = format!(
        "LOG_DIR = {:?}\nCARBONLINK_HOSTS = ['{}:a']\n{GRAPHITE_SETTINGS}",
        settings_dir.path().to_str().unwrap(),
        server.query
    );
    fs::write(settings_dir.path().join("gwtest_settings.py"), settings).unwrap();
    let input = serde_json::json!({
        "metric": "interop.m1", "cache_only": "interop.cacheonly", "path": path,
        "from": t - 60, "until": t + 60 * 20,
    });
    let out = run_python(GRAPHITE_SCRIPT, settings_dir.path(), &input.to_string());
    let got: serde_json::Value = serde_json::from_str(&out).unwrap();

    let as_pairs = |v: &serde_json::Value| -> Vec<(i64, f64)> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|p| (p[0].as_i64().unwrap(), p[1].as_f64().unwrap()))
            .collect()
    };
    assert_eq!(as_pairs(&got["query"]), cached);
    assert_eq!(as_pairs(&got["query_cache_only"]), [(t, 5.0)]);
    assert_eq!(got["metadata"], "average");
    assert_eq!(got["set"], serde_json::json!({"old_value": "average", "new_value": "max"}));
    assert_eq!(got["bad_key"], "Unsupported metadata key \"nope\"");
    // The file's values, then the cache's over them: graphite-web's merge of our answer.
    let fetch = &got["fetch"];
    assert_eq!(fetch[2], 60);
    let values: Vec<Option<f64>> =
        fetch[3].as_array().unwrap().iter().map(serde_json::Value::as_f64).collect();
    let start = fetch[0].as_i64().unwrap();
    let mut expected = vec![None; values.len()];
    for &(ts, v) in on_disk.iter().chain(&cached) {
        expected[((ts - start) / 60) as usize] = Some(v);
    }
    assert_eq!(values, expected);
    assert_eq!(whisper::info(&path).unwrap().aggregation_method(), whisper::AggregationMethod::Max);
    assert!(server.stop().success());
}

/// The whole path in one process, to watch the cache: a sender far faster than the writers
/// (held to 500 updates a second) fills a 1000-point cache; the listener stops reading, the
/// cache stays near its bound, and every point still reaches its file.
#[test]
fn a_full_cache_holds_the_sender_back_and_loses_nothing() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    use bins::server::{Limits, ListenConfig, ListenerStats, Listeners, StoreSink};
    use store::config::{RateLimit, Reloadable};

    let tmp = tempfile::tempdir().unwrap();
    let conf = tmp.path().join("storage-schemas.conf");
    fs::write(&conf, "[all]\npattern = .*\nretentions = 1s:1d\n").unwrap();
    let mut options = store::StoreOptions::new(tmp.path().join("whisper")).unwrap();
    options.max_cache_points = 1000;
    options.max_updates_per_second = RateLimit::Limited(500.0);
    options.schemas = Reloadable::open(&conf).unwrap();
    options.self_metrics = None;
    let (store, _) = store::Store::open(options).unwrap();

    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let config = ListenConfig {
        line: Some(any()),
        udp: None,
        pickle: None,
        cache_query: None,
        limits: Limits::default(),
    };
    let listeners = runtime.block_on(Listeners::bind(&config)).unwrap();
    let addr = listeners.addrs().line.unwrap();
    let sink = Arc::new(StoreSink::new(store.clone(), Arc::new(AtomicBool::new(false))));
    let stats = Arc::new(ListenerStats::default());
    let shutdown = tokio_util::sync::CancellationToken::new();
    let serving =
        runtime.spawn(listeners.serve(sink.clone(), sink, Arc::clone(&stats), shutdown.clone()));

    // 10 metrics x 20,000 one-second points: 200,000 lines, about 6 MB.
    let (metrics, points) = (10usize, 20_000i64);
    let start = whisper::now() - 30_000;
    let sent = Arc::new(AtomicUsize::new(0));
    let sender = {
        let sent = Arc::clone(&sent);
        std::thread::spawn(move || {
            let mut s = TcpStream::connect(addr).unwrap();
            let mut buf = String::new();
            for p in 0..points {
                for m in 0..metrics {
                    buf.push_str(&format!("full.m{m} {} {}\n", p, start + p));
                }
                if buf.len() > 32 << 10 {
                    s.write_all(buf.as_bytes()).unwrap();
                    sent.fetch_add(buf.len(), Ordering::Relaxed);
                    buf.clear();
                }
            }
            s.write_all(buf.as_bytes()).unwrap();
        })
    };
    let mut max_cached = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    while !sender.is_finished() {
        max_cached = max_cached.max(store.cache_size());
        assert!(Instant::now() < deadline, "the sender never finished");
        std::thread::sleep(Duration::from_millis(1));
    }
    sender.join().unwrap();
    let total = metrics * points as usize;
    while store.counters().metrics_received.load(Ordering::Relaxed) < total as u64 {
        max_cached = max_cached.max(store.cache_size());
        assert!(Instant::now() < deadline, "not everything was read");
        std::thread::sleep(Duration::from_millis(1));
    }
    shutdown.cancel();
    runtime.block_on(serving).unwrap().unwrap();
    // Bounded: the limit plus what one read (64 KiB, ~2,300 lines) can bring in past it.
    assert!(max_cached <= 1000 + 2500, "the cache reached {max_cached} points");
    assert!(ListenerStats::get(&stats.backpressure_waits) > 0, "the listener never waited");
    assert!(store.counters().committed_points.load(Ordering::Relaxed) > 0);
    store.shutdown(Duration::from_secs(60)).unwrap();
    for m in 0..metrics {
        let path = tmp.path().join(format!("whisper/full/m{m}.wsp"));
        let s = whisper::fetch(&path, start - 1, Some(start + points - 1), whisper::now())
            .unwrap()
            .unwrap();
        let got: Vec<f64> =
            s.values.iter().map(|v| v.expect("every second has its point")).collect();
        assert_eq!(got, (0..points).map(|p| p as f64).collect::<Vec<_>>(), "full.m{m}");
    }
}
