//! Application collectors against local servers and scripts: a tiny HTTP server serving real
//! nginx stub_status captures and JSON, a fake Redis serving a real INFO capture, and scripts
//! written to temporary directories.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use collect::apps::{
    ExecCollector, FilesCollector, HttpJsonCollector, NginxCollector, RedisCollector,
};
use collect::{Collector, Env, Options, RunContext, Sample};

/// The same collectors over `https`.
#[path = "apps/tls.rs"]
mod tls;

fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/apps").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn opts(pairs: &[(&str, &str)]) -> Options {
    pairs.iter().copied().collect()
}

fn ctx(now: Instant, unix_time: i64) -> RunContext {
    RunContext { now, unix_time }
}

/// Samples as name -> value, failing on a duplicate name.
fn by_name(samples: &[Sample]) -> BTreeMap<String, f64> {
    let mut m = BTreeMap::new();
    for s in samples {
        assert!(m.insert(s.name.clone(), s.value).is_none(), "duplicate {}", s.name);
    }
    m
}

fn assert_metrics(got: &[Sample], want: &[(&str, f64)]) {
    let got = by_name(got);
    let want: BTreeMap<String, f64> = want.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect();
    let names_got: Vec<&String> = got.keys().collect();
    let names_want: Vec<&String> = want.keys().collect();
    assert_eq!(names_got, names_want, "metric names");
    for (k, v) in &want {
        let g = got[k];
        assert!((g - v).abs() <= 1e-9 * v.abs().max(1.0), "{k}: got {g}, want {v}");
    }
}

/// A one-thread HTTP server on 127.0.0.1:0 answering each connection with the next response
/// (raw bytes), then exiting. Sends each request head it read.
fn http_server(responses: Vec<Vec<u8>>) -> (u16, mpsc::Receiver<String>, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    let handle = std::thread::spawn(move || {
        for response in responses {
            let Ok((mut conn, _)) = listener.accept() else { return };
            conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 65536 {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let _ = tx.send(String::from_utf8_lossy(&head).into_owned());
            let _ = conn.write_all(&response);
        }
    });
    (port, rx, handle)
}

fn http_ok(content_type: &str, body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nContent-Type: {content_type}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

fn http_chunked(content_type: &str, body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    .into_bytes();
    for part in body.chunks(7) {
        r.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
        r.extend_from_slice(part);
        r.extend_from_slice(b"\r\n");
    }
    r.extend_from_slice(b"0\r\n\r\n");
    r
}

/// A port nothing listens on (bound, then closed).
fn dead_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

// ---------------------------------------------------------------------------------------------
// nginx

/// Every name the nginx collector publishes once it has two reads, sorted.
const NGINX_NAMES: [&str; 8] = [
    "act_reads",
    "act_waits",
    "act_writes",
    "active_connections",
    "conn_accepted",
    "conn_handled",
    "req_handled",
    "req_per_conn",
];

/// What the nginx collector publishes from `nginx-stub-status-1.txt` on its first read
/// (gauges only: the rates need two reads).
const NGINX_FIRST_READ: &[(&str, f64)] = &[
    ("active_connections", 1.0),
    ("req_per_conn", 24.0 / 22.0),
    ("act_reads", 0.0),
    ("act_writes", 1.0),
    ("act_waits", 0.0),
];

/// ...and from `nginx-stub-status-2.txt` read 8 s later: 22 -> 54 accepted and handled,
/// 24 -> 59 requests.
const NGINX_SECOND_READ: &[(&str, f64)] = &[
    ("active_connections", 1.0),
    ("conn_accepted", 32.0 / 8.0),
    ("conn_handled", 32.0 / 8.0),
    ("req_handled", 35.0 / 8.0),
    ("req_per_conn", 59.0 / 54.0),
    ("act_reads", 0.0),
    ("act_writes", 1.0),
    ("act_waits", 0.0),
];

#[test]
fn nginx_publishes_diamonds_names_and_rates_over_real_elapsed_time() {
    let one = fixture("nginx-stub-status-1.txt");
    let two = fixture("nginx-stub-status-2.txt");
    let (port, heads, server) = http_server(vec![
        http_ok("text/plain", &one),
        http_ok("text/plain", &two),
        http_chunked("text/plain", &one),
    ]);
    let port_s = port.to_string();
    let mut c = NginxCollector::new(
        &opts(&[
            ("req_host", "127.0.0.1"),
            ("req_port", &port_s),
            ("req_host_header", "status.local"),
        ]),
        &Env::default(),
    )
    .unwrap();
    assert_eq!(c.default_path(), "nginx");
    let t0 = Instant::now();

    // First read: gauges only (the rates need two reads).
    let mut out = Vec::new();
    c.collect(&ctx(t0, 1_700_000_000), &mut out).unwrap();
    assert_metrics(&out, NGINX_FIRST_READ);
    let head = heads.recv().unwrap();
    assert!(head.starts_with("GET /nginx_status HTTP/1.1\r\n"), "{head}");
    // Sent as written, as Diamond's urllib2 did (no port added).
    assert!(head.contains("\r\nHost: status.local\r\n"), "{head}");

    // Second read 8 s later: 22 -> 54 accepted and handled, 24 -> 59 requests.
    let mut out = Vec::new();
    c.collect(&ctx(t0 + Duration::from_secs(8), 1_700_000_008), &mut out).unwrap();
    assert_metrics(&out, NGINX_SECOND_READ);

    // Third read (chunked body): the counters went down (nginx restarted), so no rates.
    let mut out = Vec::new();
    c.collect(&ctx(t0 + Duration::from_secs(16), 1_700_000_016), &mut out).unwrap();
    let names: Vec<String> = by_name(&out).into_keys().collect();
    assert!(!names.iter().any(|n| n.starts_with("conn_") || n == "req_handled"), "{names:?}");
    assert_eq!(by_name(&out)["req_per_conn"], 24.0 / 22.0);
    server.join().unwrap();
}

#[test]
fn nginx_unreachable_is_an_error_naming_the_address() {
    let port = dead_port();
    let mut c = NginxCollector::new(
        &opts(&[("req_host", "127.0.0.1"), ("req_port", &port.to_string())]),
        &Env::default(),
    )
    .unwrap();
    let mut out = Vec::new();
    let err = c.collect(&ctx(Instant::now(), 0), &mut out).unwrap_err().to_string();
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
    assert!(out.is_empty());
}

#[test]
fn nginx_that_never_answers_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // Accept and hold the connection open without a byte of answer, until the test is done.
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        let _ = done_rx.recv_timeout(Duration::from_secs(30));
        drop(conn);
    });
    let mut c = NginxCollector::new(
        &opts(&[("req_host", "127.0.0.1"), ("req_port", &port.to_string()), ("timeout", "0.3")]),
        &Env::default(),
    )
    .unwrap();
    let started = Instant::now();
    let err = c.collect(&ctx(Instant::now(), 0), &mut Vec::new()).unwrap_err().to_string();
    let waited = started.elapsed();
    done_tx.send(()).unwrap();
    holder.join().unwrap();
    assert!(err.contains("no complete answer") && err.contains(&port.to_string()), "{err}");
    assert!(waited < Duration::from_secs(10), "waited {waited:?}");
}

#[test]
fn nginx_error_status_and_non_status_pages_are_errors() {
    let (port, _heads, server) = http_server(vec![
        b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n".to_vec(),
        http_ok("text/html", b"<html>welcome</html>"),
        http_ok("application/json", b"{\"connections\":{}}"),
    ]);
    let mut c = NginxCollector::new(
        &opts(&[("url", &format!("http://127.0.0.1:{port}/basic_status"))]),
        &Env::default(),
    )
    .unwrap();
    let e1 = c.collect(&ctx(Instant::now(), 0), &mut Vec::new()).unwrap_err().to_string();
    assert!(e1.contains("403") && e1.contains("/basic_status"), "{e1}");
    let e2 = c.collect(&ctx(Instant::now(), 0), &mut Vec::new()).unwrap_err().to_string();
    assert!(e2.contains("stub_status"), "{e2}");
    let e3 = c.collect(&ctx(Instant::now(), 0), &mut Vec::new()).unwrap_err().to_string();
    assert!(e3.contains("http_json"), "{e3}");
    server.join().unwrap();
}

// ---------------------------------------------------------------------------------------------
// Redis

/// Reads one RESP command (an array of bulk strings) from `buf`, if complete.
fn take_command(buf: &mut Vec<u8>) -> Option<Vec<String>> {
    let text = buf.clone();
    let mut lines = text.split(|&b| b == b'\n');
    let first = lines.next()?;
    let n: usize = std::str::from_utf8(first.strip_prefix(b"*")?).ok()?.trim().parse().ok()?;
    let mut at = first.len() + 1;
    let mut args = Vec::new();
    for _ in 0..n {
        let rest = buf.get(at..)?;
        let nl = rest.iter().position(|&b| b == b'\n')?;
        let len: usize = std::str::from_utf8(rest.get(1..nl)?).ok()?.trim().parse().ok()?;
        let data = rest.get(nl + 1..nl + 1 + len)?;
        args.push(String::from_utf8_lossy(data).into_owned());
        at += nl + 1 + len + 2;
        if at > buf.len() {
            return None;
        }
    }
    buf.drain(..at);
    Some(args)
}

/// A fake Redis on 127.0.0.1:0 answering `connections` connections: AUTH (password
/// `secret`), INFO with the captured payload, CONFIG GET maxmemory with the captured reply.
fn fake_redis(connections: usize, config_disabled: bool) -> (u16, JoinHandle<Vec<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let info = fixture("redis-7.0.15-info.txt");
    let maxmemory = fixture("redis-config-get-maxmemory.resp");
    let handle = std::thread::spawn(move || {
        let mut seen = Vec::new();
        for _ in 0..connections {
            let (mut conn, _) = listener.accept().unwrap();
            conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let mut answered = 0;
            while answered < 3 {
                while let Some(cmd) = take_command(&mut buf) {
                    let reply: Vec<u8> =
                        match cmd.first().map(|s| s.to_ascii_uppercase()).as_deref() {
                            Some("AUTH") if cmd.get(1).map(String::as_str) == Some("secret") => {
                                b"+OK\r\n".to_vec()
                            }
                            Some("AUTH") => {
                                b"-WRONGPASS invalid username-password pair\r\n".to_vec()
                            }
                            Some("INFO") => {
                                let mut r = format!("${}\r\n", info.len()).into_bytes();
                                r.extend_from_slice(&info);
                                r.extend_from_slice(b"\r\n");
                                r
                            }
                            Some("CONFIG") if config_disabled => {
                                b"-ERR unknown command 'CONFIG'\r\n".to_vec()
                            }
                            Some("CONFIG") => maxmemory.clone(),
                            _ => b"-ERR unknown command\r\n".to_vec(),
                        };
                    conn.write_all(&reply).unwrap();
                    let last = cmd.first().is_some_and(|c| c.eq_ignore_ascii_case("CONFIG"));
                    seen.push(cmd);
                    answered += 1;
                    if last {
                        answered = 3;
                    }
                }
                if answered >= 3 {
                    break;
                }
                match conn.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
        }
        seen
    });
    (port, handle)
}

/// The metrics the captured INFO gives (names below the instance node), with `last_save.time`
/// 1795315230 and the run at 1795315240.
fn redis_expected() -> Vec<(&'static str, f64)> {
    vec![
        ("clients.blocked", 0.0),
        ("clients.connected", 1.0),
        ("cpu.parent.sys", 0.003023),
        ("cpu.children.sys", 0.0),
        ("cpu.parent.user", 0.00112),
        ("cpu.children.user", 0.0),
        ("keys.evicted", 0.0),
        ("keys.expired", 0.0),
        ("keyspace.hits", 1.0),
        ("keyspace.misses", 1.0),
        ("last_save.changes_since", 53.0),
        ("last_save.time", 1_795_315_230.0),
        ("last_save.time_since", 10.0),
        ("memory.internal_view", 1_020_288.0),
        ("memory.external_view", 7_208_960.0),
        ("memory.fragmentation_ratio", 7.36),
        ("memory.used_percent", 0.97),
        ("process.commands_processed", 57.0),
        ("process.connections_received", 56.0),
        ("process.uptime", 1.0),
        ("pubsub.channels", 0.0),
        ("pubsub.patterns", 0.0),
        ("replication.master", 1.0),
        ("slaves.connected", 0.0),
        ("db0.keys", 50.0),
        ("db0.expires", 1.0),
        ("db0.avg_ttl", 999_950.0),
        ("db3.keys", 2.0),
        ("db3.expires", 0.0),
        ("db3.avg_ttl", 0.0),
    ]
}

#[test]
fn redis_publishes_diamonds_renamed_keys_from_a_real_info() {
    let (port, server) = fake_redis(1, false);
    let mut c = RedisCollector::new(
        &opts(&[("host", "127.0.0.1"), ("port", &port.to_string())]),
        &Env::default(),
    )
    .unwrap();
    assert_eq!(c.default_path(), "redis");
    let mut out = Vec::new();
    c.collect(&ctx(Instant::now(), 1_795_315_240), &mut out).unwrap();
    // The nickname defaults to the port.
    let prefixed: Vec<(String, f64)> =
        redis_expected().into_iter().map(|(k, v)| (format!("{port}.{k}"), v)).collect();
    let want: Vec<(&str, f64)> = prefixed.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    assert_metrics(&out, &want);
    let seen = server.join().unwrap();
    assert_eq!(
        seen,
        [vec!["INFO".to_owned()], vec!["CONFIG".into(), "GET".into(), "maxmemory".into()]]
    );
}

#[test]
fn redis_instances_fail_alone_and_auth_is_sent() {
    let (port, server) = fake_redis(2, true);
    let dead = dead_port();
    let instances =
        format!("main@127.0.0.1:{port}/secret, down@127.0.0.1:{dead}, wrong@127.0.0.1:{port}/nope");
    let mut c = RedisCollector::new(
        &opts(&[("instances", &instances), ("databases", "1")]),
        &Env::default(),
    )
    .unwrap();
    let mut out = Vec::new();
    let err = c.collect(&ctx(Instant::now(), 1_795_315_240), &mut out).unwrap_err().to_string();
    assert!(err.contains(&format!("127.0.0.1:{dead}")), "{err}");
    assert!(err.contains("AUTH refused"), "{err}");
    // The healthy instance's samples are there, without used_percent (CONFIG is disabled)
    // and without db3 (databases = 1).
    let want: Vec<(String, f64)> = redis_expected()
        .into_iter()
        .filter(|(k, _)| *k != "memory.used_percent" && !k.starts_with("db3"))
        .map(|(k, v)| (format!("main.{k}"), v))
        .collect();
    let want: Vec<(&str, f64)> = want.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    assert_metrics(&out, &want);
    let seen = server.join().unwrap();
    assert_eq!(seen[0], ["AUTH", "secret"]);
}

#[test]
fn redis_that_is_not_redis_is_a_protocol_error() {
    // A web server that answers at once, whatever it was sent.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        conn.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ = conn.read_to_end(&mut Vec::new());
    });
    let mut c = RedisCollector::new(
        &opts(&[("instances", &format!("x@127.0.0.1:{port}"))]),
        &Env::default(),
    )
    .unwrap();
    let err = c.collect(&ctx(Instant::now(), 0), &mut Vec::new()).unwrap_err().to_string();
    assert!(err.contains("not a RESP reply") && err.contains(&port.to_string()), "{err}");
    server.join().unwrap();
}

// ---------------------------------------------------------------------------------------------
// HTTP JSON

#[test]
fn http_json_flattens_a_nested_document() {
    let doc = br#"{
        "uptime": 3600,
        "cluster name": "prod.eu",
        "healthy": true,
        "jvm": {"heap": {"used": 1.5e9, "max": 4294967296}, "gc": [{"count": 12}, {"count": 3}]},
        "pools": {"db.main": {"active": 4, "idle": "6"}},
        "nothing": null
    }"#;
    let (port, heads, server) = http_server(vec![http_chunked("application/json", doc)]);
    let mut c = HttpJsonCollector::new(
        &opts(&[
            ("url", &format!("http://127.0.0.1:{port}/stats?pretty")),
            ("headers", "X-Token: abc"),
        ]),
        &Env::default(),
    )
    .unwrap();
    assert_eq!(c.default_path(), "httpjson");
    let mut out = Vec::new();
    c.collect(&ctx(Instant::now(), 0), &mut out).unwrap();
    assert_metrics(
        &out,
        &[
            ("uptime", 3600.0),
            ("healthy", 1.0),
            ("jvm.heap.used", 1.5e9),
            ("jvm.heap.max", 4_294_967_296.0),
            ("jvm.gc.0.count", 12.0),
            ("jvm.gc.1.count", 3.0),
            ("pools.db_main.active", 4.0),
            ("pools.db_main.idle", 6.0),
        ],
    );
    let head = heads.recv().unwrap();
    assert!(head.starts_with("GET /stats?pretty HTTP/1.1"), "{head}");
    assert!(head.contains("\r\nX-Token: abc\r\n"), "{head}");
    server.join().unwrap();
}

#[test]
fn http_json_that_is_not_json_is_an_error() {
    let (port, _heads, server) = http_server(vec![http_ok("text/html", b"<html>")]);
    let mut c = HttpJsonCollector::new(
        &opts(&[("url", &format!("http://127.0.0.1:{port}/"))]),
        &Env::default(),
    )
    .unwrap();
    let err = c.collect(&ctx(Instant::now(), 0), &mut Vec::new()).unwrap_err().to_string();
    assert!(err.contains("not JSON"), "{err}");
    server.join().unwrap();
}

// ---------------------------------------------------------------------------------------------
// Scripts

fn write_script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn exec(dir: &Path, extra: &[(&str, &str)]) -> ExecCollector {
    let mut o = opts(extra);
    o.set("scripts_path", dir.to_string_lossy().into_owned());
    ExecCollector::new(&o, &Env::default()).unwrap()
}

fn run(c: &mut ExecCollector) -> (Vec<Sample>, collect::Result<()>) {
    let mut out = Vec::new();
    let r = c.collect(&ctx(Instant::now(), 1_700_000_100), &mut out);
    (out, r)
}

#[test]
fn graphite_scripts_publish_lines_and_garbage_is_counted() {
    let dir = tempfile::tempdir().unwrap();
    write_script(dir.path(), "good", "echo 'app.queue 12'\necho 'app.latency 0.25 1700000000'");
    write_script(
        dir.path(),
        "garbage",
        "printf 'hello there world\\n\\377\\376 1\\nok.metric 1\\na..b 2\\nx notanumber\\n\\n'",
    );
    write_script(dir.path(), "failing", "echo 'never.published 1'\nexit 3");
    write_script(dir.path(), "noisy", "echo 'noisy.value 7'\necho 'a warning' >&2");
    std::fs::write(dir.path().join("not-executable"), "#!/bin/sh\necho 'x 1'\n").unwrap();
    std::fs::create_dir(dir.path().join("subdir-ignored")).unwrap();
    let mut c = exec(dir.path(), &[]);
    assert_eq!(c.default_path(), ".");
    let (out, r) = run(&mut c);
    r.unwrap();
    let mut got: Vec<(String, f64, Option<i64>)> =
        out.into_iter().map(|s| (s.name, s.value, s.timestamp)).collect();
    got.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        got,
        [
            ("app.latency".to_owned(), 0.25, Some(1_700_000_000)),
            ("app.queue".to_owned(), 12.0, None),
            ("noisy.value".to_owned(), 7.0, None),
            ("ok.metric".to_owned(), 1.0, None),
        ]
    );
    let st = c.stats();
    assert_eq!(st.lines_valid, 4);
    assert_eq!(st.lines_invalid, 4, "{st:?}");
    assert_eq!(st.runs_failed, 1);
    assert_eq!(st.runs, 4);
}

#[test]
fn a_hanging_script_is_killed_with_its_children_and_only_its_collector_errors() {
    let hang_dir = tempfile::tempdir().unwrap();
    let ok_dir = tempfile::tempdir().unwrap();
    let pidfile = hang_dir.path().join("child.pid");
    write_script(
        hang_dir.path(),
        "hang",
        &format!("echo 'before.hang 1'\nsleep 300 &\necho $! > '{}'\nwait", pidfile.display()),
    );
    write_script(hang_dir.path(), "quick", "echo 'quick.value 5'");
    write_script(ok_dir.path(), "fine", "echo 'fine.value 9'");

    // 2 s, not less: the quick script shares the deadline, and on a loaded 2-core machine
    // even `echo` has been seen to miss 0.5 s.
    let mut hanging = exec(hang_dir.path(), &[("timeout", "2")]);
    let mut healthy = exec(ok_dir.path(), &[("timeout", "2")]);
    let started = Instant::now();
    let (out, r) = run(&mut hanging);
    let waited = started.elapsed();
    let err = r.unwrap_err().to_string();
    assert!(err.contains("hang") && err.contains("killed"), "{err}");
    assert!(waited < Duration::from_secs(10), "waited {waited:?}");
    // The other script of the same collector still published; the hung one did not.
    assert_eq!(by_name(&out).into_iter().collect::<Vec<_>>(), [("quick.value".to_owned(), 5.0)]);
    assert_eq!(hanging.stats().timeouts, 1);

    // The background `sleep` went with its process group.
    let pid: i32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
    let gone = (0..100).any(|_| {
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok();
        let dead = state
            .is_none_or(|s| s.rsplit(')').next().is_some_and(|r| r.trim_start().starts_with('Z')));
        if !dead {
            std::thread::sleep(Duration::from_millis(20));
        }
        dead
    });
    assert!(gone, "child {pid} of the hung script still runs");

    let (out, r) = run(&mut healthy);
    r.unwrap();
    assert_eq!(by_name(&out)["fine.value"], 9.0);
}

#[test]
fn tcollector_lines_are_deduplicated_within_a_run() {
    let dir = tempfile::tempdir().unwrap();
    write_script(
        dir.path(),
        "tc",
        "cat <<'EOF'\n\
         proc.loadavg.1min 1700000000 5 host=web01\n\
         proc.loadavg.1min 1700000015 5 host=web01\n\
         proc.loadavg.1min 1700000030 5 host=web01\n\
         proc.loadavg.1min 1700000045 7 host=web01\n\
         proc.loadavg.1min 1700000040 9 host=web01\n\
         net.up 1700000000123 true\n\
         this is garbage\n\
         bad.value 1700000000 abc\n\
         EOF",
    );
    let mut c = exec(dir.path(), &[("format", "tcollector")]);
    let (out, r) = run(&mut c);
    r.unwrap();
    let got: Vec<(String, f64, Option<i64>)> =
        out.into_iter().map(|s| (s.name, s.value, s.timestamp)).collect();
    assert_eq!(
        got,
        [
            ("proc.loadavg.1min;host=web01".to_owned(), 5.0, Some(1_700_000_000)),
            // The value changed at 45: the last held-back point (30) goes first.
            ("proc.loadavg.1min;host=web01".to_owned(), 5.0, Some(1_700_000_030)),
            ("proc.loadavg.1min;host=web01".to_owned(), 7.0, Some(1_700_000_045)),
            ("net.up".to_owned(), 1.0, Some(1_700_000_000)),
        ]
    );
    let st = c.stats();
    assert_eq!((st.lines_valid, st.lines_held, st.lines_invalid), (3, 2, 3), "{st:?}");
}

#[test]
fn tcollector_dedup_spans_runs_and_tags_can_be_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    // Each run prints the next 60 s step; the value stays 1 for 6 runs, then becomes 2.
    write_script(
        dir.path(),
        "step",
        &format!(
            "n=$(cat '{s}' 2>/dev/null || echo 0); echo $((n+1)) > '{s}'\n\
             v=1; [ $n -ge 6 ] && v=2\n\
             echo \"queue.depth $((1700000000 + n*60)) $v dc=eu\"",
            s = state.display()
        ),
    );
    let mut c = exec(dir.path(), &[("format", "tcollector"), ("tags", "drop")]);
    let mut sent = Vec::new();
    for _ in 0..8 {
        let (out, r) = run(&mut c);
        r.unwrap();
        sent.extend(out.into_iter().map(|s| (s.name, s.value, s.timestamp.unwrap())));
    }
    let t = |n: i64| 1_700_000_000 + n * 60;
    assert_eq!(
        sent,
        [
            ("queue.depth".to_owned(), 1.0, t(0)),
            // 300 s after the last sent point: a repeat goes out.
            ("queue.depth".to_owned(), 1.0, t(5)),
            // No held point since then: the change goes alone.
            ("queue.depth".to_owned(), 2.0, t(6)),
        ]
    );
    assert_eq!(c.stats().lines_held, 5);
}

#[test]
fn a_long_running_script_that_dies_is_respawned() {
    let dir = tempfile::tempdir().unwrap();
    let stream_dir = dir.path().join("0");
    std::fs::create_dir(&stream_dir).unwrap();
    let gen_file = dir.path().join("generation");
    write_script(
        &stream_dir,
        "stream",
        &format!(
            "g=$(cat '{f}' 2>/dev/null || echo 0); g=$((g+1)); echo $g > '{f}'\n\
             echo \"stream.generation $g\"\necho \"stream.line.$g 1\"\nexit 1",
            f = gen_file.display()
        ),
    );
    let mut c = exec(dir.path(), &[("respawn_min", "0.05"), ("respawn_max", "0.2")]);
    let mut generations = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    for _ in 0..400 {
        let (out, r) = run(&mut c);
        r.unwrap();
        for s in out {
            if s.name == "stream.generation" {
                assert!(s.timestamp.is_some(), "stream lines carry the time they were read");
                generations.push(s.value);
            }
        }
        if generations.len() >= 3 || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    assert!(generations.len() >= 3, "saw generations {generations:?}");
    assert_eq!(generations[..3], [1.0, 2.0, 3.0]);
    let st = c.stats();
    assert!(st.stream_restarts >= 2 && st.runs >= 3, "{st:?}");
}

#[test]
fn a_silent_long_running_script_is_killed_and_respawned() {
    let dir = tempfile::tempdir().unwrap();
    let stream_dir = dir.path().join("0");
    std::fs::create_dir(&stream_dir).unwrap();
    let starts = dir.path().join("starts");
    write_script(
        &stream_dir,
        "quiet",
        &format!("echo start >> '{}'\nexec sleep 300", starts.display()),
    );
    let mut c = exec(
        dir.path(),
        &[("allowed_inactivity", "0.2"), ("respawn_min", "0.05"), ("respawn_max", "0.1")],
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    for _ in 0..400 {
        run(&mut c).1.unwrap();
        // The respawned copy writes its line a moment after it was started.
        let started = std::fs::read_to_string(&starts).map_or(0, |s| s.lines().count());
        if c.stats().stream_restarts >= 1 && started >= 2 || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    let st = c.stats();
    assert!(st.stream_restarts >= 1 && st.runs >= 2, "{st:?}");
    let n = std::fs::read_to_string(&starts).unwrap().lines().count();
    assert!(n >= 2, "started {n} times");
    // Dropping the collector kills the running copy.
    drop(c);
}

// ---------------------------------------------------------------------------------------------
// Files

#[test]
fn files_are_read_and_deleted_only_when_they_gave_metrics() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.txt"), "backup.age 3600\njobs=4\nqueue:1.5 extra\n").unwrap();
    std::fs::write(dir.path().join("b.txt"), "Not A Metric\n").unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    let mut o = opts(&[("delete", "true")]);
    o.set("dir", dir.path().to_string_lossy().into_owned());
    let mut c = FilesCollector::new(&o, &Env::default()).unwrap();
    assert_eq!(c.default_path(), ".");
    let mut out = Vec::new();
    c.collect(&ctx(Instant::now(), 0), &mut out).unwrap();
    assert_metrics(&out, &[("backup.age", 3600.0), ("jobs", 4.0), ("queue", 1.5)]);
    assert!(!dir.path().join("a.txt").exists());
    assert!(dir.path().join("b.txt").exists());
    assert_eq!(c.stats().lines_invalid, 1);
    assert_eq!(c.stats().files_deleted, 1);

    // A missing directory publishes nothing and is not an error (as in Diamond).
    let o = opts(&[("dir", "/nonexistent/graphite-rs-test")]);
    let mut c = FilesCollector::new(&o, &Env::default()).unwrap();
    let mut out = Vec::new();
    c.collect(&ctx(Instant::now(), 0), &mut out).unwrap();
    assert!(out.is_empty());
}

// ---------------------------------------------------------------------------------------------
// Against the real servers (Debian's redis-server and nginx), when installed.

/// The reference server binary, or `None` (test skipped) when it is missing; with
/// `GRAPHITE_REQUIRE_REFERENCE=1` (set by `.ci/run`) a missing one fails the test instead.
fn reference_binary(path: &str, package: &str) -> Option<PathBuf> {
    let p = PathBuf::from(path);
    if p.exists() {
        return Some(p);
    }
    if std::env::var("GRAPHITE_REQUIRE_REFERENCE").as_deref() == Ok("1") {
        panic!("{path} is missing (apt-get install {package}) and GRAPHITE_REQUIRE_REFERENCE=1");
    }
    eprintln!("skipped: {path} is missing (apt-get install {package})");
    None
}

/// Kills and reaps a server we started when the test ends, however it ends.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits (at most 10 s) until `ready` says yes.
fn wait_for(what: &str, mut ready: impl FnMut() -> bool) {
    for _ in 0..500 {
        if ready() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{what} not ready after 10 s");
}

#[test]
fn redis_collector_reads_a_real_redis_over_a_unix_socket() {
    let Some(bin) = reference_binary("/usr/bin/redis-server", "redis-server") else { return };
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("redis.sock");
    let _server = KillOnDrop(
        std::process::Command::new(bin)
            .args(["--port", "0", "--unixsocket"])
            .arg(&sock)
            .args(["--save", "", "--appendonly", "no", "--maxmemory", "64mb", "--dir"])
            .arg(dir.path())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for("redis-server", || std::os::unix::net::UnixStream::connect(&sock).is_ok());
    let spec = format!("live@unix:{}", sock.display());
    let mut c = RedisCollector::new(&opts(&[("instances", &spec)]), &Env::default()).unwrap();
    let mut out = Vec::new();
    c.collect(&ctx(Instant::now(), 1_700_000_000), &mut out).unwrap();
    let m = by_name(&out);
    for key in [
        "clients.connected",
        "memory.internal_view",
        "memory.external_view",
        "memory.used_percent",
        "process.uptime",
        "keyspace.hits",
        "cpu.parent.sys",
        "cpu.children.user",
        "last_save.time",
        "last_save.time_since",
        "replication.master",
    ] {
        assert!(m.contains_key(&format!("live.{key}")), "live.{key} missing from {m:?}");
    }
    assert!(m["live.clients.connected"] >= 1.0);
    assert_eq!(m["live.replication.master"], 1.0);
    let pct = m["live.memory.used_percent"];
    assert!(pct > 0.0 && pct < 100.0, "{pct}");
}

/// Starts Debian's nginx (`bin`) on a free loopback port with its files in `dir`, serving
/// `/nginx_status` (stub_status), `/` ("ok") and `locations`; `listen` is appended to the
/// `listen` directive (e.g. ` ssl`), `server` (more directives) to the server block. Returns
/// the port once it accepts, and the process, killed on drop.
pub(crate) fn start_nginx(
    bin: &std::path::Path,
    dir: &std::path::Path,
    listen: &str,
    server: &str,
) -> (u16, KillOnDrop) {
    let port = dead_port();
    let d = dir.display();
    let conf = dir.join("nginx.conf");
    std::fs::write(
        &conf,
        format!(
            "daemon off; master_process off; worker_processes 1; pid {d}/nginx.pid;\n\
             error_log {d}/error.log;\nevents {{ worker_connections 64; }}\n\
             http {{ access_log off; client_body_temp_path {d}; proxy_temp_path {d};\n\
             fastcgi_temp_path {d}; uwsgi_temp_path {d}; scgi_temp_path {d};\n\
             server {{ listen 127.0.0.1:{port}{listen};\n{server}\n\
             location /nginx_status {{ stub_status; }}\n\
             location / {{ return 200 \"ok\\n\"; }} }} }}\n"
        ),
    )
    .unwrap();
    let server = KillOnDrop(
        std::process::Command::new(bin)
            .arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(&conf)
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for("nginx", || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
    (port, server)
}

#[test]
fn nginx_collector_reads_a_real_nginx() {
    let Some(bin) = reference_binary("/usr/sbin/nginx", "nginx-light") else { return };
    let dir = tempfile::tempdir().unwrap();
    let (port, _server) = start_nginx(&bin, dir.path(), "", "");
    let get = || {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
        let mut body = Vec::new();
        let _ = s.read_to_end(&mut body);
    };
    let mut c = NginxCollector::new(
        &opts(&[("req_host", "127.0.0.1"), ("req_port", &port.to_string())]),
        &Env::default(),
    )
    .unwrap();
    let mut out = Vec::new();
    c.collect(&ctx(Instant::now(), 0), &mut out).unwrap();
    assert!(by_name(&out)["active_connections"] >= 1.0);
    for _ in 0..5 {
        get();
    }
    std::thread::sleep(Duration::from_millis(50));
    let mut out = Vec::new();
    c.collect(&ctx(Instant::now(), 0), &mut out).unwrap();
    let m = by_name(&out);
    let names: Vec<&str> = m.keys().map(String::as_str).collect();
    assert_eq!(names, NGINX_NAMES);
    // Six connections (five GETs and our second status read) over the elapsed time.
    assert!(m["conn_accepted"] > 0.0 && m["req_handled"] > 0.0, "{m:?}");
}
