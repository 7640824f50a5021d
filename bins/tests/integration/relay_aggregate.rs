//! `graphite-relay --aggregator` (carbon-aggregator's role): carbon.conf's `[aggregator]`
//! section, aggregation-rules.conf, points sent over plaintext TCP, the aggregates (and, with
//! `FORWARD_ALL`, the points) relayed to a plaintext destination in the test, which checks the
//! values. The engine itself is compared with Debian's carbon-aggregator in
//! `store/tests/integration/aggregator.rs`.

use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const RELAY: &str = env!("CARGO_BIN_EXE_graphite-relay");

/// A plaintext destination: every line it receives, until the test ends.
fn line_sink() -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let lines = Arc::new(Mutex::new(Vec::new()));
    let out = Arc::clone(&lines);
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let out = Arc::clone(&out);
            std::thread::spawn(move || {
                let mut pending = Vec::new();
                let mut buf = [0u8; 8192];
                while let Ok(n) = conn.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    pending.extend_from_slice(&buf[..n]);
                    while let Some(end) = pending.iter().position(|&b| b == b'\n') {
                        let line: Vec<u8> = pending.drain(..=end).collect();
                        out.lock()
                            .unwrap()
                            .push(String::from_utf8_lossy(&line).trim_end().to_string());
                    }
                }
            });
        }
    });
    (addr, lines)
}

/// The running relay; SIGTERM when dropped.
struct Relay {
    child: Child,
    log: std::path::PathBuf,
}

impl Relay {
    /// Starts `graphite-relay --aggregator` with `carbon_conf` and `rules` in `dir`; returns
    /// it and its plaintext address.
    fn start(dir: &Path, carbon_conf: &str, rules: &str, args: &[&str]) -> (Relay, SocketAddr) {
        fs::write(dir.join("carbon.conf"), carbon_conf).unwrap();
        fs::write(dir.join("aggregation-rules.conf"), rules).unwrap();
        let ready = dir.join("ready");
        let log = dir.join("relay.log");
        let child = Command::new(RELAY)
            .arg("--aggregator")
            .arg("--config")
            .arg(dir.join("carbon.conf"))
            .args(["--bind", "127.0.0.1", "--line-port", "0", "--pickle-port", "0"])
            .args(args)
            .arg("--ready-file")
            .arg(&ready)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut relay = Relay { child, log };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !ready.exists() {
            if let Ok(Some(status)) = relay.child.try_wait() {
                panic!("graphite-relay exited with {status}:\n{}", relay.log());
            }
            assert!(Instant::now() < deadline, "graphite-relay not ready:\n{}", relay.log());
            std::thread::sleep(Duration::from_millis(20));
        }
        let text = fs::read_to_string(&ready).unwrap();
        let line = text
            .split_whitespace()
            .find_map(|f| f.strip_prefix("line="))
            .and_then(|a| a.parse().ok())
            .unwrap();
        (relay, line)
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM; the exit status must be 0.
    fn stop(mut self) -> String {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let status = self.child.wait().unwrap();
        assert!(status.success(), "graphite-relay exited with {status}:\n{}", self.log());
        self.log()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

/// The last value received for each `name timestamp`.
fn values(lines: &Mutex<Vec<String>>) -> Vec<(String, f64, i64)> {
    lines
        .lock()
        .unwrap()
        .iter()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (n, v, t) = (f.next()?, f.next()?, f.next()?);
            Some((n.to_string(), v.parse().ok()?, t.parse::<f64>().ok()? as i64))
        })
        .collect()
}

fn wait_for(lines: &Mutex<Vec<String>>, what: impl Fn(&[(String, f64, i64)]) -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if what(&values(lines)) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

fn last(values: &[(String, f64, i64)], name: &str, ts: i64) -> Option<f64> {
    values.iter().rev().find(|(n, _, t)| n == name && *t == ts).map(|(_, v, _)| *v)
}

const RULES: &str = "cpu.total (60) = sum <host>.cpu\n\
                     cpu.mean (60) = avg <host>.cpu\n\
                     cpu.<host>.peak (60) = max <host>.cpu\n";

/// Sends the points of three hosts into one minute: a.cpu 1 and 5, b.cpu 2, c.cpu 4.
fn send(addr: SocketAddr, minute: i64) {
    let mut conn = TcpStream::connect(addr).unwrap();
    let text = format!(
        "a.cpu 1 {m}\nb.cpu 2 {}\nc.cpu 4 {}\na.cpu 5 {}\nother.metric 9 {m}\n",
        minute + 10,
        minute + 20,
        minute + 30,
        m = minute
    );
    conn.write_all(text.as_bytes()).unwrap();
}

fn conf(sink: SocketAddr, forward_all: bool) -> String {
    format!(
        "[aggregator]\nDESTINATIONS = {sink}\nDESTINATION_PROTOCOL = line\n\
         FORWARD_ALL = {forward_all}\nWRITE_BACK_FREQUENCY = 1\nCARBON_METRIC_INTERVAL = 0\n"
    )
}

fn aggregates_arrive(forward_all: bool) {
    let tmp = tempfile::tempdir().unwrap();
    let (sink, lines) = line_sink();
    let (relay, addr) = Relay::start(tmp.path(), &conf(sink, forward_all), RULES, &[]);
    let minute = (now() - 120) / 60 * 60;
    send(addr, minute);
    let ok = wait_for(&lines, |v| {
        last(v, "cpu.total", minute) == Some(12.0)
            && last(v, "cpu.mean", minute) == Some(3.0)
            && last(v, "cpu.a.peak", minute) == Some(5.0)
            && last(v, "cpu.c.peak", minute) == Some(4.0)
    });
    assert!(ok, "aggregates: {:?}\n{}", values(&lines), relay.log());
    let log = relay.stop();
    assert!(log.contains("aggregator stopped"), "{log}");
    let got = values(&lines);
    let forwarded: Vec<&(String, f64, i64)> =
        got.iter().filter(|(n, _, _)| !n.starts_with("cpu.")).collect();
    if forward_all {
        // Every received point, unmatched ones too, under its own name.
        let mut expect = vec![
            ("a.cpu".to_string(), 1.0, minute),
            ("b.cpu".to_string(), 2.0, minute + 10),
            ("c.cpu".to_string(), 4.0, minute + 20),
            ("a.cpu".to_string(), 5.0, minute + 30),
            ("other.metric".to_string(), 9.0, minute),
        ];
        let mut forwarded: Vec<(String, f64, i64)> = forwarded.into_iter().cloned().collect();
        expect.sort_by(|a, b| a.partial_cmp(b).unwrap());
        forwarded.sort_by(|a, b| a.partial_cmp(b).unwrap());
        assert_eq!(forwarded, expect);
    } else {
        assert!(forwarded.is_empty(), "FORWARD_ALL = false relayed {forwarded:?}");
    }
}

#[test]
fn relay_aggregator_sends_the_aggregates_and_the_points_with_forward_all() {
    aggregates_arrive(true);
}

#[test]
fn relay_aggregator_sends_only_the_aggregates_without_forward_all() {
    aggregates_arrive(false);
}

/// `--aggregation-rules` and `--aggregation-forward-all` override carbon.conf; the
/// self-metrics are carbon-aggregator's, under `carbon.aggregator.<host>-<instance>`.
#[test]
fn relay_aggregator_command_line_and_self_metrics() {
    let tmp = tempfile::tempdir().unwrap();
    let (sink, lines) = line_sink();
    let other = tmp.path().join("other-rules.conf");
    fs::write(&other, "all.cpu (60) = count <host>.cpu\n").unwrap();
    let (relay, addr) = Relay::start(
        tmp.path(),
        &conf(sink, true),
        RULES,
        &[
            "--aggregation-rules",
            other.to_str().unwrap(),
            "--aggregation-forward-all",
            "false",
            "--metric-interval",
            "1",
        ],
    );
    let minute = (now() - 120) / 60 * 60;
    send(addr, minute);
    let ok = wait_for(&lines, |v| {
        last(v, "all.cpu", minute) == Some(4.0)
            && v.iter().any(|(n, x, _)| n.ends_with("-a.aggregateDatapointsSent") && *x >= 1.0)
            && v.iter()
                .filter(|(n, _, _)| n.ends_with("-a.metricsReceived"))
                .map(|(_, x, _)| x)
                .sum::<f64>()
                == 5.0
    });
    assert!(ok, "{:?}\n{}", values(&lines), relay.log());
    relay.stop();
    let got = values(&lines);
    let inputs = ["a.cpu", "b.cpu", "c.cpu", "other.metric"];
    assert!(!got.iter().any(|(n, _, _)| n.starts_with("cpu.") || inputs.contains(&n.as_str())));
    let own: Vec<&String> =
        got.iter().map(|(n, _, _)| n).filter(|n| n.starts_with("carbon.")).collect();
    assert!(own.iter().all(|n| n.starts_with("carbon.aggregator.")), "{own:?}");
    assert!(own.iter().any(|n| n.ends_with(".allocatedBuffers")), "{own:?}");
    assert!(own.iter().any(|n| n.contains(".destinations.127_0_0_1:")), "{own:?}");
}

/// The rules file is re-read when it changes (every `--aggregation-rules-reload` seconds;
/// carbon: 10): a broken version is logged and the rules in use stay, a good one replaces
/// them.
#[test]
fn relay_aggregator_re_reads_a_changed_rules_file() {
    let tmp = tempfile::tempdir().unwrap();
    let (sink, lines) = line_sink();
    let (relay, addr) = Relay::start(
        tmp.path(),
        &conf(sink, false),
        "cpu.total (60) = sum <host>.cpu\n",
        &["--aggregation-rules-reload", "1"],
    );
    let rules = tmp.path().join("aggregation-rules.conf");
    let wait_log = |what: &str| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !relay.log().contains(what) {
            assert!(Instant::now() < deadline, "no {what:?}:\n{}", relay.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let m1 = (now() - 300) / 60 * 60;
    fs::write(&rules, "cpu.total (60) = sum <host>.cpu\ncpu.x (60) = median <host>.cpu\n").unwrap();
    wait_log("cannot be used");
    send(addr, m1);
    let ok = wait_for(&lines, |v| last(v, "cpu.total", m1) == Some(12.0));
    assert!(ok, "the old rule: {:?}\n{}", values(&lines), relay.log());
    fs::write(&rules, "cpu.count (60) = count <host>.cpu\n").unwrap();
    wait_log("re-read aggregation rules");
    let m2 = m1 + 60;
    send(addr, m2);
    let ok = wait_for(&lines, |v| last(v, "cpu.count", m2) == Some(4.0));
    assert!(ok, "the new rule: {:?}\n{}", values(&lines), relay.log());
    relay.stop();
    assert_eq!(last(&values(&lines), "cpu.total", m2), None, "the old rule is gone");
}
