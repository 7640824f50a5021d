//! A mixed federation on loopback: our server A (holding `a.*` and `shared.m`) and Debian's
//! graphite-web B (holding `b.*` and `shared.m` with other nulls), each listing the other in
//! its cluster servers. A queried with `--cluster-servers=B` must answer what B answers
//! (B federating to A with graphite-web's own code); the shared metric merges as graphite-web
//! merges; a dead peer times out, is marked down and does not fail the request.
//!
//! Skipped with a printed reason when graphite-web is missing, unless
//! GRAPHITE_REQUIRE_REFERENCE=1.

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use whisper::Retention;

use crate::support;

const PYTHON: &str = "/usr/bin/python3";
const STEP: i64 = 60;
const POINTS: i64 = 10;

fn reference_missing() -> Option<String> {
    if !Path::new(PYTHON).exists() {
        return Some(format!("{PYTHON} does not exist"));
    }
    let ok = Command::new(PYTHON)
        .args(["-c", "import graphite.render, django, whisper, wsgiref"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    (!ok).then(|| "graphite-web (python3-graphite-web) cannot be imported".to_string())
}

/// True when the test must be skipped (and says why); panics instead under
/// GRAPHITE_REQUIRE_REFERENCE=1.
fn skip() -> bool {
    let Some(reason) = reference_missing() else { return false };
    if std::env::var("GRAPHITE_REQUIRE_REFERENCE").is_ok_and(|v| v == "1") {
        panic!("graphite-web is required (GRAPHITE_REQUIRE_REFERENCE=1): {reason}");
    }
    eprintln!("skipping the federation test: {reason}");
    true
}

/// Debian's graphite-web on `whisper_dir`, federated with `cluster`.
struct GraphiteWeb {
    child: Child,
    _stdin: ChildStdin,
    port: u16,
}

impl GraphiteWeb {
    fn start(whisper_dir: &Path, work_dir: &Path, cluster: &str) -> GraphiteWeb {
        let script = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../render/tests/differential/graphite_web.py");
        fs::create_dir_all(work_dir).unwrap();
        let log = fs::File::create(work_dir.join("server.log")).unwrap();
        let mut child = Command::new(PYTHON)
            .arg(&script)
            .arg(whisper_dir)
            .arg(work_dir)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env("GWDIFF_CLUSTER_SERVERS", cluster)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("spawn graphite-web");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(60)).unwrap_or_default();
        let port = line.trim().strip_prefix("READY ").and_then(|p| p.parse().ok());
        let Some(port) = port else {
            let _ = child.kill();
            panic!(
                "graphite-web did not start: {}",
                fs::read_to_string(work_dir.join("server.log")).unwrap_or_default()
            );
        };
        GraphiteWeb { child, _stdin: stdin, port }
    }
}

impl Drop for GraphiteWeb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Our server on `data_dir`, HTTP on `port`, with extra flags.
struct Ours {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Ours {
    fn start(root: &Path, data_dir: &Path, port: u16, extra: &[String]) -> Ours {
        fs::create_dir_all(root).unwrap();
        let (ready, log) = (root.join("ready"), root.join("server.log"));
        let mut child = support::graphite_rs(root, &ready, fs::File::create(&log).unwrap())
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--line-port", "off", "--udp-port", "off", "--pickle-port", "off"])
            .args(["--query-port", "off", "--no-wal", "--http-port", &port.to_string()])
            .args(extra)
            .env("RUST_LOG", "info")
            .spawn()
            .expect("start graphite-rs");
        support::wait_ready(&mut child, &ready, &log);
        Ours { child, port, log }
    }

    fn log(&self) -> String {
        support::read_log(&self.log)
    }
}

impl Drop for Ours {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// GET `path` from 127.0.0.1:`port` (HTTP/1.0): status and body.
fn get(port: u16, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, body.to_string())
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A render answer as `(target, [(value, timestamp)])`, sorted by target.
type Rendered = Vec<(String, Vec<(Option<f64>, i64)>)>;

fn render(port: u16, targets: &[&str], from: i64, until: i64, now: i64) -> Rendered {
    let mut path = format!("/render?format=json&from={from}&until={until}&now={now}");
    for t in targets {
        path.push_str(&format!("&target={}", enc(t)));
    }
    let (status, body) = get(port, &path);
    assert_eq!(status, 200, "{path}: {body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    let mut out: Rendered = json
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let points = s["datapoints"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| (p[0].as_f64(), p[1].as_i64().unwrap()))
                .collect();
            (s["target"].as_str().unwrap().to_string(), points)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Creates `name` under `dir` with `values[i]` at `start + i * STEP` (None: not written).
fn write_metric(dir: &Path, name: &str, start: i64, values: &[Option<f64>], now: i64) {
    let mut path = dir.to_path_buf();
    for part in name.split('.') {
        path.push(part);
    }
    path.set_extension("wsp");
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    whisper::create(&path, &[Retention::new(STEP as u32, 1440)]).unwrap();
    let points: Vec<(i64, f64)> = values
        .iter()
        .enumerate()
        .filter_map(|(i, v)| v.map(|v| (start + i as i64 * STEP, v)))
        .collect();
    whisper::update_many(&path, &points, now).unwrap();
}

fn find_ids(port: u16, query: &str, local: bool) -> Vec<(String, bool)> {
    let local = if local { "&local=1" } else { "" };
    let (status, body) =
        get(port, &format!("/metrics/find?format=json&query={}{local}", enc(query)));
    assert_eq!(status, 200, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    let mut out: Vec<(String, bool)> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["path"].as_str().unwrap().to_string(), n["is_leaf"].as_bool().unwrap()))
        .collect();
    out.sort();
    out
}

#[test]
fn our_render_and_graphite_web_federate_both_ways() {
    if skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (a_data, b_data) = (dir.path().join("a-whisper"), dir.path().join("b-whisper"));
    let now = whisper::now();
    let start = now - now % STEP - POINTS * STEP;
    let vals = |f: &dyn Fn(i64) -> Option<f64>| (0..POINTS).map(f).collect::<Vec<_>>();
    write_metric(&a_data, "a.x", start, &vals(&|i| Some(i as f64)), now);
    write_metric(&a_data, "a.y", start, &vals(&|i| Some(2.0 * i as f64)), now);
    write_metric(&b_data, "b.x", start, &vals(&|i| Some(100.0 + i as f64)), now);
    write_metric(&b_data, "b.y", start, &vals(&|i| (i % 2 == 0).then_some(7.5)), now);
    // The shared metric: A has the odd slots, B every third; where both have a value it is
    // the same (so the merge does not depend on which answer arrives first).
    write_metric(
        &a_data,
        "shared.m",
        start,
        &vals(&|i| (i % 2 == 1).then_some(10.0 * i as f64)),
        now,
    );
    write_metric(
        &b_data,
        "shared.m",
        start,
        &vals(&|i| (i % 3 == 0).then_some(10.0 * i as f64)),
        now,
    );

    let a_port = support::free_port();
    let b = GraphiteWeb::start(&b_data, &dir.path().join("b-work"), &format!("127.0.0.1:{a_port}"));
    let a = Ours::start(
        &dir.path().join("a-root"),
        &a_data,
        a_port,
        &["--cluster-servers".into(), format!("127.0.0.1:{}", b.port)],
    );

    let (from, until) = (start - STEP, now);
    let targets = ["a.*", "b.*", "shared.m", "sumSeries(*.x)"];
    let ours = render(a.port, &targets, from, until, now);
    let theirs = render(b.port, &targets, from, until, now);
    assert_eq!(ours, theirs, "A federating to B differs from B federating to A\n{}", a.log());
    let names: Vec<&str> = ours.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["a.x", "a.y", "b.x", "b.y", "shared.m", "sumSeries(*.x)"]);

    // The shared series: the union of both nodes' values.
    let shared = &ours.iter().find(|(n, _)| n == "shared.m").unwrap().1;
    for i in 0..POINTS {
        let t = start + i * STEP;
        let want = (i % 2 == 1 || i % 3 == 0).then_some(10.0 * i as f64);
        let got = shared.iter().find(|(_, ts)| *ts == t).map(|(v, _)| *v);
        assert_eq!(got, Some(want), "shared.m at {t}");
    }

    // local=1 reads A alone (what B sends it; no loop).
    let local = render_local(a.port, "b.*", from, until, now);
    assert_eq!(local, "[]");

    // Finds: the same nodes through either side.
    assert_eq!(find_ids(a.port, "*", false), find_ids(b.port, "*", false));
    assert_eq!(find_ids(a.port, "*.*", false), find_ids(b.port, "*.*", false));
    assert_eq!(find_ids(a.port, "*", true), vec![("a".into(), false), ("shared".into(), false)]);
}

fn render_local(port: u16, target: &str, from: i64, until: i64, now: i64) -> String {
    let path = format!(
        "/render?format=json&local=1&from={from}&until={until}&now={now}&target={}",
        enc(target)
    );
    let (status, body) = get(port, &path);
    assert_eq!(status, 200, "{body}");
    body
}

#[test]
fn a_dead_peer_times_out_and_is_marked_down() {
    if skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (a_data, b_data) = (dir.path().join("a-whisper"), dir.path().join("b-whisper"));
    let now = whisper::now();
    let start = now - now % STEP - POINTS * STEP;
    let ones: Vec<Option<f64>> = (0..POINTS).map(|_| Some(1.0)).collect();
    write_metric(&a_data, "a.x", start, &ones, now);
    write_metric(&b_data, "b.x", start, &ones, now);
    let b = GraphiteWeb::start(&b_data, &dir.path().join("b-work"), "");
    // A peer that accepts connections and never answers.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let a = Ours::start(
        &dir.path().join("a-root"),
        &a_data,
        support::free_port(),
        &[
            "--cluster-servers".into(),
            format!("127.0.0.1:{silent_port},127.0.0.1:{}", b.port),
            "--remote-fetch-timeout".into(),
            "1".into(),
            "--remote-find-timeout".into(),
            "1".into(),
        ],
    );
    let started = Instant::now();
    let first = render(a.port, &["*.x"], start - STEP, now, now);
    let took = started.elapsed();
    let names: Vec<&str> = first.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["a.x", "b.x"], "{}", a.log());
    assert!(took >= Duration::from_millis(900), "the silent peer was not waited for: {took:?}");
    assert!(took < Duration::from_secs(10), "the timeout did not hold: {took:?}");
    assert!(a.log().contains("marked down"), "{}", a.log());

    // Marked down: the next request does not wait for it.
    let started = Instant::now();
    let second = render(a.port, &["*.x"], start - STEP, now, now);
    assert_eq!(second, first);
    assert!(started.elapsed() < Duration::from_millis(900), "{:?}", started.elapsed());
    drop(silent);
}

/// A stand-in carbon-cache query port answering every `cache-query` with one point,
/// `(ts, value)`; counts the queries it got.
fn fake_cache(ts: i64, value: f64) -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use carbon_proto::cache_query::{Timestamps, encode_datapoints_response};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = std::sync::Arc::clone(&count);
    std::thread::spawn(move || {
        for conn in listener.incoming().take(64) {
            let Ok(mut conn) = conn else { return };
            let seen = std::sync::Arc::clone(&seen);
            std::thread::spawn(move || {
                let mut len = [0u8; 4];
                for _ in 0..1000 {
                    if conn.read_exact(&mut len).is_err() {
                        return;
                    }
                    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
                    if conn.read_exact(&mut body).is_err() {
                        return;
                    }
                    seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let mut payload = Vec::new();
                    let point = carbon_proto::Datapoint::new(ts as f64, value);
                    encode_datapoints_response(&mut payload, &[point], Timestamps::Int);
                    let mut frame = Vec::new();
                    carbon_proto::pickle::encode_frame(&mut frame, &payload).unwrap();
                    if conn.write_all(&frame).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (port, count)
}

#[test]
fn reads_ask_the_cache_node_the_ring_names() {
    use carbon_proto::ring::{ConsistentHashRingBuilder, Destination};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("whisper");
    let now = whisper::now();
    let start = now - now % STEP - POINTS * STEP;
    let last = start + (POINTS - 1) * STEP;
    // Every metric's last slot is empty on disk: only the cache node holds it.
    let values: Vec<Option<f64>> = (0..POINTS).map(|i| (i < POINTS - 1).then_some(1.0)).collect();
    let names: Vec<String> = (0..12).map(|i| format!("servers.web{i}.cpu")).collect();
    for n in &names {
        write_metric(&data, n, start, &values, now);
    }
    let (pa, count_a) = fake_cache(last, 1000.0);
    let (pb, count_b) = fake_cache(last, 2000.0);
    let hosts = format!("127.0.0.1:{pa}:a,127.0.0.1:{pb}:b");
    let reader = Ours::start(
        &dir.path().join("root"),
        &data,
        support::free_port(),
        &["--carbonlink-hosts".into(), hosts.clone()],
    );
    let ring = ConsistentHashRingBuilder::new()
        .build(hosts.split(',').map(|h| Destination::parse(h).unwrap()))
        .unwrap();
    let rendered = render(reader.port, &["servers.*.cpu"], start - STEP, now, now);
    assert_eq!(rendered.len(), names.len(), "{}", reader.log());
    for (name, points) in &rendered {
        let want = if ring.get_node(name).port() == pa { 1000.0 } else { 2000.0 };
        let got = points.iter().find(|(_, t)| *t == last).and_then(|(v, _)| *v);
        assert_eq!(got, Some(want), "{name}");
    }
    let (a, b) = (
        count_a.load(std::sync::atomic::Ordering::SeqCst),
        count_b.load(std::sync::atomic::Ordering::SeqCst),
    );
    assert_eq!(a + b, names.len());
    assert!(a > 0 && b > 0, "the ring spread {a}/{b}");
}
