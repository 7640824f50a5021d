//! The alerter's self-metrics: what the engine and the notifier count, as the JSON API shows
//! it (`GET /api/metrics`) and as Graphite points.
//!
//! The engine counts rounds, rule evaluations, evaluation errors (failed queries), the time
//! rounds take, reloads, and its instances by status; the notifier counts deliveries per
//! receiver. [`MetricsSnapshot`] holds totals since the process started;
//! [`MetricsSnapshot::points`] turns two snapshots into one interval's points the way carbon
//! reports its own (counters per interval, levels as they are):
//!
//! | name | meaning |
//! | --- | --- |
//! | `rounds`, `rule_evaluations`, `evaluation_errors` | in the interval |
//! | `round_duration_ms` | the rounds' average wall time in the interval (only when there were rounds) |
//! | `rules` | rules in force |
//! | `instances.<status>` | instances now in `normal`, `pending`, `firing`, `recovering`, `no_data`, `error` |
//! | `reloads`, `reload_failures` | rules-file reloads in the interval |
//! | `receivers.<name>.{sent,failed_attempts,retries,given_up,dropped}` | deliveries in the interval |
//! | `receivers.<name>.queued` | deliveries waiting or in retry now |
//!
//! The standalone alerter sends them as carbon plaintext lines ([`CarbonSender`]) when the
//! rules file's `[self_metrics]` (or `--self-metrics`) names a carbon address; inside
//! graphite-rs they go into the server's own store with its `carbon.agents.*` metrics.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::dispatcher::ReceiverStatus;

/// The default prefix of the carbon lines; `{host}` is the host name with dots as `_`.
pub const DEFAULT_PREFIX: &str = "alert.{host}";

/// The default interval between reports, in seconds.
pub const DEFAULT_INTERVAL_SECONDS: i64 = 60;

/// How long connecting to or writing to carbon may take.
const CARBON_TIMEOUT: Duration = Duration::from_secs(5);

/// The rules file's `[self_metrics]` table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SelfMetricsConfig {
    /// Where to send carbon plaintext lines (`host:port`); `None` sends nothing.
    pub carbon: Option<String>,
    /// The metric prefix; `{host}` is replaced by the host name (dots as `_`). Default
    /// [`DEFAULT_PREFIX`].
    pub prefix: String,
    /// Seconds between reports. Default [`DEFAULT_INTERVAL_SECONDS`].
    pub interval: i64,
}

impl Default for SelfMetricsConfig {
    fn default() -> SelfMetricsConfig {
        SelfMetricsConfig {
            carbon: None,
            prefix: DEFAULT_PREFIX.to_owned(),
            interval: DEFAULT_INTERVAL_SECONDS,
        }
    }
}

impl SelfMetricsConfig {
    /// The prefix with `{host}` filled in.
    pub fn resolved_prefix(&self) -> String {
        self.prefix.replace("{host}", &hostname().replace('.', "_"))
    }
}

/// The host name (`/proc/sys/kernel/hostname`, else `$HOSTNAME`, else `localhost`).
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// What the engine counted, totals since start (and levels now).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EngineMetrics {
    /// Evaluation rounds run.
    pub rounds: u64,
    /// Rules evaluated (each due rule in each round).
    pub rule_evaluations: u64,
    /// Evaluations whose query failed (render error, HTTP error, timeout, bad body).
    pub evaluation_errors: u64,
    /// Wall time of all rounds, state file writes included (milliseconds).
    pub round_duration_ms_total: f64,
    /// Wall time of the last round (milliseconds).
    pub last_round_duration_ms: f64,
    /// Rules in force.
    pub rules: u64,
    /// Instances now, by status name (every status, zeros included).
    pub instances: BTreeMap<String, u64>,
    /// Rules-file reloads that took effect.
    pub reloads: u64,
    /// Reloads refused (the old rules kept running).
    pub reload_failures: u64,
    /// When the last reload was tried (Unix seconds).
    pub last_reload_at: Option<i64>,
    /// Why the last reload was refused, if it was.
    pub last_reload_error: Option<String>,
}

/// One receiver's delivery counters, totals since start.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ReceiverMetrics {
    /// Notifications delivered.
    pub sent: u64,
    /// Attempts that failed.
    pub failed_attempts: u64,
    /// Attempts scheduled again after a failure.
    pub retries: u64,
    /// Notifications given up.
    pub given_up: u64,
    /// Notifications dropped (queue full, or the receiver removed by a reload).
    pub dropped: u64,
    /// Notifications waiting or in retry now.
    pub queued: u64,
}

impl From<&ReceiverStatus> for ReceiverMetrics {
    fn from(r: &ReceiverStatus) -> ReceiverMetrics {
        ReceiverMetrics {
            sent: r.sent,
            failed_attempts: r.failed_attempts,
            retries: r.retries,
            given_up: r.given_up,
            dropped: r.dropped,
            queued: r.queued,
        }
    }
}

/// Everything counted, at one time: the answer of `GET /api/metrics`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricsSnapshot {
    /// When it was taken (Unix seconds).
    pub at: i64,
    /// The engine's part.
    #[serde(flatten)]
    pub engine: EngineMetrics,
    /// Per receiver.
    pub receivers: BTreeMap<String, ReceiverMetrics>,
}

/// A metric path component: anything but letters, digits, `_` and `-` becomes `_`.
fn component(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' })
        .collect();
    if s.is_empty() { "_".to_owned() } else { s }
}

impl MetricsSnapshot {
    /// A snapshot at `at` of the engine's metrics and the receivers' counters.
    pub fn new(at: i64, engine: EngineMetrics, receivers: &[ReceiverStatus]) -> MetricsSnapshot {
        let receivers =
            receivers.iter().map(|r| (r.name.clone(), ReceiverMetrics::from(r))).collect();
        MetricsSnapshot { at, engine, receivers }
    }

    /// The points of the interval since `previous` (`None`: since start), named relative to
    /// the caller's prefix; see the module docs for the names.
    pub fn points(&self, previous: Option<&MetricsSnapshot>) -> Vec<(String, f64)> {
        let zero = MetricsSnapshot::default();
        let prev = previous.unwrap_or(&zero);
        let (e, p) = (&self.engine, &prev.engine);
        let delta = |now: u64, before: u64| now.saturating_sub(before) as f64;
        let mut out = Vec::new();
        let rounds = e.rounds.saturating_sub(p.rounds);
        out.push(("rounds".to_owned(), rounds as f64));
        out.push(("rule_evaluations".to_owned(), delta(e.rule_evaluations, p.rule_evaluations)));
        out.push(("evaluation_errors".to_owned(), delta(e.evaluation_errors, p.evaluation_errors)));
        if rounds > 0 {
            let ms = (e.round_duration_ms_total - p.round_duration_ms_total).max(0.0);
            out.push(("round_duration_ms".to_owned(), ms / rounds as f64));
        }
        out.push(("rules".to_owned(), e.rules as f64));
        for (status, n) in &e.instances {
            out.push((format!("instances.{}", component(status)), *n as f64));
        }
        out.push(("reloads".to_owned(), delta(e.reloads, p.reloads)));
        out.push(("reload_failures".to_owned(), delta(e.reload_failures, p.reload_failures)));
        let none = ReceiverMetrics::default();
        for (name, r) in &self.receivers {
            let before = prev.receivers.get(name).unwrap_or(&none);
            let base = format!("receivers.{}", component(name));
            out.push((format!("{base}.sent"), delta(r.sent, before.sent)));
            out.push((
                format!("{base}.failed_attempts"),
                delta(r.failed_attempts, before.failed_attempts),
            ));
            out.push((format!("{base}.retries"), delta(r.retries, before.retries)));
            out.push((format!("{base}.given_up"), delta(r.given_up, before.given_up)));
            out.push((format!("{base}.dropped"), delta(r.dropped, before.dropped)));
            out.push((format!("{base}.queued"), r.queued as f64));
        }
        out
    }
}

/// Carbon plaintext lines (`<prefix>.<name> <value> <timestamp>\n`) for `points`; values
/// that are not finite are left out.
pub fn carbon_lines(prefix: &str, points: &[(String, f64)], timestamp: i64) -> String {
    let mut text = String::new();
    for (name, value) in points {
        if value.is_finite() {
            text.push_str(&format!("{prefix}.{name} {value} {timestamp}\n"));
        }
    }
    text
}

/// Sends lines to a carbon plaintext port over one TCP connection, reconnecting when it
/// breaks. Connecting and writing each give up after 5 s: a dead carbon costs the
/// reporting thread at most that per interval, and the interval's points are lost (logged).
#[derive(Debug)]
pub struct CarbonSender {
    /// `host:port`.
    address: String,
    /// The open connection, if any.
    stream: Option<TcpStream>,
}

impl CarbonSender {
    /// A sender to `address` (`host:port`); nothing connects until the first send.
    pub fn new(address: &str) -> CarbonSender {
        CarbonSender { address: address.to_owned(), stream: None }
    }

    /// The address.
    pub fn address(&self) -> &str {
        &self.address
    }

    fn connect(&self) -> std::io::Result<TcpStream> {
        let mut last = None;
        for addr in self.address.to_socket_addrs()? {
            match TcpStream::connect_timeout(&addr, CARBON_TIMEOUT) {
                Ok(s) => {
                    s.set_write_timeout(Some(CARBON_TIMEOUT))?;
                    let _ = s.set_nodelay(true);
                    return Ok(s);
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::NotFound, "the address resolves to nothing")
        }))
    }

    /// Writes `text`; on a broken connection, connects again and retries once.
    ///
    /// # Errors
    ///
    /// The address does not resolve, nothing accepts the connection, or writing fails twice.
    pub fn send(&mut self, text: &str) -> std::io::Result<()> {
        if text.is_empty() {
            return Ok(());
        }
        let mut reused = self.stream.is_some();
        loop {
            let mut stream = match self.stream.take() {
                Some(s) => s,
                None => self.connect()?,
            };
            match stream.write_all(text.as_bytes()).and_then(|()| stream.flush()) {
                Ok(()) => {
                    self.stream = Some(stream);
                    return Ok(());
                }
                // The other end closed the connection since the last send: connect again.
                Err(_) if reused => reused = false,
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader};

    fn snapshot(rounds: u64, sent: u64) -> MetricsSnapshot {
        MetricsSnapshot {
            at: 0,
            engine: EngineMetrics {
                rounds,
                rule_evaluations: rounds * 3,
                round_duration_ms_total: rounds as f64 * 2.0,
                rules: 3,
                instances: BTreeMap::from([("firing".into(), 2), ("normal".into(), 1)]),
                ..EngineMetrics::default()
            },
            receivers: BTreeMap::from([(
                "ops hook".into(),
                ReceiverMetrics { sent, queued: 1, ..ReceiverMetrics::default() },
            )]),
        }
    }

    fn get(points: &[(String, f64)], name: &str) -> Option<f64> {
        points.iter().find(|(n, _)| n == name).map(|p| p.1)
    }

    #[test]
    fn counters_are_per_interval_and_levels_as_they_are() {
        let first = snapshot(5, 2);
        let p = first.points(None);
        assert_eq!(get(&p, "rounds"), Some(5.0));
        assert_eq!(get(&p, "round_duration_ms"), Some(2.0));
        assert_eq!(get(&p, "instances.firing"), Some(2.0));
        assert_eq!(get(&p, "receivers.ops_hook.sent"), Some(2.0));
        let second = snapshot(7, 2);
        let p = second.points(Some(&first));
        assert_eq!(get(&p, "rounds"), Some(2.0));
        assert_eq!(get(&p, "rule_evaluations"), Some(6.0));
        assert_eq!(get(&p, "receivers.ops_hook.sent"), Some(0.0));
        assert_eq!(get(&p, "receivers.ops_hook.queued"), Some(1.0));
        assert_eq!(get(&p, "rules"), Some(3.0));
        let p = second.points(Some(&second));
        assert_eq!(get(&p, "round_duration_ms"), None, "no rounds, no average");
    }

    #[test]
    fn lines_are_carbon_plaintext() {
        let text = carbon_lines("alert.h", &[("rounds".into(), 2.0), ("x".into(), f64::NAN)], 60);
        assert_eq!(text, "alert.h.rounds 2 60\n");
    }

    #[test]
    fn the_sender_keeps_its_connection_and_reconnects_when_it_is_gone() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut sender = CarbonSender::new(&addr.to_string());
        sender.send("a 1 1\n").unwrap();
        sender.send("a 2 2\n").unwrap();
        let (first, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(first);
        let mut lines = String::new();
        reader.read_line(&mut lines).unwrap();
        reader.read_line(&mut lines).unwrap();
        assert_eq!(lines, "a 1 1\na 2 2\n", "one connection for both");
        drop(reader);
        // Writes into a connection the other end closed fail once the reset came back (the
        // first may still be buffered); the sender then connects again.
        listener.set_nonblocking(true).unwrap();
        let mut second = None;
        for _ in 0..500 {
            sender.send("b 3 3\n").unwrap();
            if let Ok((s, _)) = listener.accept() {
                second = Some(s);
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let second = second.expect("the sender connected again");
        second.set_nonblocking(false).unwrap();
        let mut line = String::new();
        BufReader::new(second).read_line(&mut line).unwrap();
        assert_eq!(line, "b 3 3\n");
    }

    #[test]
    fn an_unreachable_carbon_is_an_error_not_a_hang() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let mut sender = CarbonSender::new(&port.to_string());
        assert!(sender.send("a 1 1\n").is_err());
        assert!(CarbonSender::new("no-port").send("a 1 1\n").is_err());
    }
}
