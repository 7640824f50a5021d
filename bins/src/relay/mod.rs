//! graphite-relay: carbon-relay / carbon-c-relay's job on the server's listeners and the
//! agent's sender.
//!
//! Points come in through the server's listeners (plaintext TCP and UDP, pickle: the same
//! code as `graphite-rs`, see [`crate::server`]), which hand them to [`Relay`], a
//! [`Sink`]. The relay routes each name ([`router`]: carbon's `rules` and
//! `consistent-hashing`, or a carbon-c-relay route list) and queues it for its destinations.
//! Each destination is a [`collect::sender::Sender`] of its own: a memory queue, an on-disk
//! spool replayed in order, reconnects with backoff, counters.
//!
//! **Nothing is dropped for lack of room.** The sender drops the oldest points when its memory
//! queue overflows without a spool, or when the spool reaches its size cap. The relay never
//! lets either happen: before it queues points for a destination it checks that they fit
//! (memory queue without a spool; spool bytes, counting every point as the longest name seen,
//! with a spool) and otherwise waits, under a per-destination gate so that concurrent
//! connections cannot both take the last room. While a destination is full the listeners also
//! stop reading ([`Sink::is_full`]), so senders' TCP windows
//! close: backpressure instead of loss. Memory is bounded by the queues plus what each
//! connection reads at once; disk by the spools. A slow destination with a spool does not
//! slow the others until its spool is nearly full; without a spool it slows the relay to its
//! pace.
//!
//! What can still be lost, and is counted as `dropped`: points sent to a UDP destination
//! (fire-and-forget), spool segments found damaged, points the relay is given after shutdown,
//! and, if the spool's disk fails, what overflows the memory queue. Carbon's protocols carry
//! no acknowledgement, so points a destination's kernel accepted and the destination then
//! threw away unread (a `kill -9`) cannot be known to the relay; an orderly restart of the
//! destination loses nothing (see `bins/tests/integration/relay.rs`).

pub mod aggregate;
pub mod app;
pub mod config_carbon;
pub mod config_crelay;
mod glob;
pub mod router;
pub mod statistics;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use carbon_proto::ring::Destination;
use carbon_proto::{MetricName, Point};
use collect::sender::{DestinationConfig, DestinationStats, Protocol, Sender, SenderConfig};

use crate::server::{RawPoint, Sink};
use router::{Health, PointIn, Router};

/// One destination: where, and how it is spoken to.
#[derive(Debug, Clone, PartialEq)]
pub struct DestSpec {
    /// Host, port, instance (carbon's identity; carbon-c-relay's is host and port).
    pub dest: Destination,
    /// Plaintext, pickle or UDP.
    pub protocol: Protocol,
    /// A c-relay `file` cluster member: the points are appended to this file as lines, and
    /// `dest` (host: the path, port 0) only names it.
    pub file: Option<PathBuf>,
}

impl DestSpec {
    /// carbon's name for the destination in its self-metrics: `host:port:instance` with dots
    /// made underscores, `None` without an instance (`127_0_0_1:2004:a`).
    pub fn label(&self) -> String {
        if let Some(path) = &self.file {
            return path.display().to_string().replace('.', "_");
        }
        format!(
            "{}:{}:{}",
            self.dest.host(),
            self.dest.port(),
            self.dest.instance().unwrap_or("None")
        )
        .replace('.', "_")
    }

    /// `host:port`, IPv6 in brackets; a file's path.
    pub fn address(&self) -> String {
        if let Some(path) = &self.file {
            path.display().to_string()
        } else if self.dest.host().contains(':') {
            format!("[{}]:{}", self.dest.host(), self.dest.port())
        } else {
            format!("{}:{}", self.dest.host(), self.dest.port())
        }
    }
}

/// Where to listen: `(interface, port)` per protocol, `None` for off.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListenSpec {
    /// Plaintext TCP.
    pub line: Option<(String, u16)>,
    /// Pickle TCP.
    pub pickle: Option<(String, u16)>,
    /// Plaintext UDP.
    pub udp: Option<(String, u16)>,
}

/// What a configuration file says.
#[derive(Debug)]
pub struct RelaySettings {
    /// Listeners.
    pub listen: ListenSpec,
    /// Destinations; the router's indices point here.
    pub destinations: Vec<DestSpec>,
    /// The router.
    pub router: Router,
    /// Apply carbon-c-relay's name cleansing before routing.
    pub cleanse: bool,
    /// Memory queue per destination, if the file sets one (`MAX_QUEUE_SIZE`).
    pub queue_points: Option<usize>,
    /// Points per write, if the file sets it (`MAX_DATAPOINTS_PER_MESSAGE`).
    pub batch_size: Option<usize>,
    /// `CARBON_METRIC_PREFIX`.
    pub metric_prefix: String,
    /// `CARBON_METRIC_INTERVAL` in seconds (c-relay: `statistics submit every`); 0 turns
    /// self-metrics off.
    pub metric_interval: u64,
    /// carbon-c-relay's statistics instead of carbon's self-metrics (c-relay mode).
    pub statistics: Option<statistics::CRelayStatistics>,
}

/// Queue, spool and timing settings of every destination.
#[derive(Debug, Clone)]
pub struct QueueOptions {
    /// Points in memory per destination.
    pub queue_points: usize,
    /// Points per write.
    pub batch_size: usize,
    /// Longest a point waits for its batch to fill.
    pub batch_delay: Duration,
    /// Spool directory (each destination gets a subdirectory); `None`: memory only.
    pub spool_dir: Option<PathBuf>,
    /// Spool cap per destination.
    pub spool_max_bytes: u64,
    /// First reconnect delay.
    pub reconnect_min: Duration,
    /// Longest reconnect delay (carbon's Twisted backoff stops at 5 s).
    pub reconnect_max: Duration,
}

impl Default for QueueOptions {
    fn default() -> QueueOptions {
        QueueOptions {
            queue_points: 100_000,
            batch_size: 2500,
            batch_delay: Duration::from_millis(50),
            spool_dir: None,
            spool_max_bytes: 1 << 30,
            reconnect_min: Duration::from_millis(200),
            reconnect_max: Duration::from_secs(5),
        }
    }
}

/// Spool bytes a point costs besides its name: a u16 name length and two f64 (the record
/// format of `collect::sender::record`), plus a share of record headers.
const SPOOL_POINT_OVERHEAD: usize = 18 + 12;

/// Spool bytes kept free for segment headers and rounding.
const SPOOL_SLACK: u64 = 1 << 20;

/// How long a blocked ingest sleeps before looking again.
const FULL_WAIT: Duration = Duration::from_millis(2);

/// A routing step: calls its last argument with `(name, destination)` for each destination
/// of the name (and point) it is given; returns whether an `aggregate` took the point.
type RouteFn<'a> = dyn Fn(&str, &RawPoint<'_>, &mut dyn FnMut(&str, usize)) -> bool + 'a;

/// Relay-wide counters.
#[derive(Debug, Default)]
pub struct RelayCounters {
    /// Points received (all listeners).
    pub received: AtomicU64,
    /// Points refused: a name the destinations' formats cannot carry.
    pub invalid: AtomicU64,
    /// Points no rule sent anywhere.
    pub unrouted: AtomicU64,
    /// Times an ingest waited for room.
    pub waits: AtomicU64,
}

/// Where a destination's points go.
enum Output {
    /// A server, through a sender (queue, spool, reconnects).
    Net(Sender),
    /// A `file` cluster member.
    File(FileOutput),
}

impl Output {
    fn stats(&self) -> Option<DestinationStats> {
        match self {
            Output::Net(sender) => sender.stats().into_iter().next(),
            Output::File(file) => Some(file.stats()),
        }
    }

    fn send(&self, points: Vec<Point>) {
        match self {
            Output::Net(sender) => sender.send(points),
            Output::File(file) => file.write(&points),
        }
    }

    fn shutdown(&self, deadline: Duration) -> anyhow::Result<()> {
        match self {
            Output::Net(sender) => sender.shutdown(deadline).map_err(|e| anyhow::anyhow!("{e}")),
            Output::File(_) => Ok(()),
        }
    }
}

/// A c-relay `file` cluster member: each point appended as a `name value timestamp` line
/// (the data as [`router::data_text`] writes it), one write per batch, as it arrives.
struct FileOutput {
    name: String,
    file: Mutex<std::fs::File>,
    sent: AtomicU64,
    dropped: AtomicU64,
}

impl FileOutput {
    fn open(name: String, path: &std::path::Path) -> anyhow::Result<FileOutput> {
        let file =
            std::fs::OpenOptions::new().create(true).append(true).open(path).map_err(|e| {
                anyhow::anyhow!("failed to open file '{}' for writing: {e}", path.display())
            })?;
        Ok(FileOutput {
            name,
            file: Mutex::new(file),
            sent: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
        })
    }

    fn write(&self, points: &[Point]) {
        use std::io::Write as _;
        let mut buf = Vec::with_capacity(points.len() * 48);
        for p in points {
            buf.extend_from_slice(p.name.as_str().as_bytes());
            buf.push(b' ');
            buf.extend_from_slice(
                router::data_text(p.datapoint.value, p.datapoint.timestamp).as_bytes(),
            );
            buf.push(b'\n');
        }
        let n = points.len() as u64;
        let result = self.file.lock().unwrap_or_else(PoisonError::into_inner).write_all(&buf);
        match result {
            Ok(()) => self.sent.fetch_add(n, Ordering::Relaxed),
            Err(e) => {
                tracing::warn!(file = %self.name, error = %e, points = n, "cannot write, dropped");
                self.dropped.fetch_add(n, Ordering::Relaxed)
            }
        };
    }

    fn stats(&self) -> DestinationStats {
        let mut s = DestinationStats::default();
        s.name.clone_from(&self.name);
        s.sent = self.sent.load(Ordering::Relaxed);
        s.dropped = self.dropped.load(Ordering::Relaxed);
        s.connected = true;
        s
    }
}

struct Dest {
    spec: DestSpec,
    label: String,
    sender: Output,
    /// Serialises "is there room" and "queue" for this destination.
    gate: Mutex<()>,
    spooled: bool,
    /// Times an ingest waited for room here (carbon-c-relay's `stalls`).
    waits: AtomicU64,
}

/// The relay: router plus one sender per destination. A [`Sink`] for the listeners.
pub struct Relay {
    router: Router,
    health: Health,
    cleanse: bool,
    dests: Vec<Dest>,
    queue: QueueOptions,
    /// Longest name queued so far (bytes): the spool check counts every point at this size.
    max_name: AtomicUsize,
    stopping: AtomicBool,
    /// Counters.
    pub counters: RelayCounters,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay").field("destinations", &self.dests.len()).finish_non_exhaustive()
    }
}

impl Relay {
    /// Starts one sender per destination.
    ///
    /// # Errors
    ///
    /// A sender that cannot start (a spool directory that cannot be opened, a bad setting).
    pub fn start(
        destinations: Vec<DestSpec>,
        router: Router,
        cleanse: bool,
        queue: QueueOptions,
    ) -> anyhow::Result<Relay> {
        let mut dests = Vec::with_capacity(destinations.len());
        for spec in destinations {
            let label = spec.label();
            if let Some(path) = &spec.file {
                let file = FileOutput::open(label.clone(), path)?;
                dests.push(Dest {
                    spec,
                    label,
                    sender: Output::File(file),
                    gate: Mutex::new(()),
                    spooled: false,
                    waits: AtomicU64::new(0),
                });
                continue;
            }
            let config = DestinationConfig {
                name: Some(label.clone()),
                address: spec.address(),
                protocol: spec.protocol,
                batch_size: queue.batch_size,
                batch_delay: queue.batch_delay,
                queue_points: queue.queue_points,
                spool_dir: queue.spool_dir.clone(),
                spool_max_bytes: queue.spool_max_bytes,
                reconnect_min: queue.reconnect_min,
                reconnect_max: queue.reconnect_max,
                ..DestinationConfig::default()
            };
            let sender = Sender::start(SenderConfig { destinations: vec![config] })
                .map_err(|e| anyhow::anyhow!("destination {label}: {e}"))?;
            let spooled = queue.spool_dir.is_some() && spec.protocol != Protocol::Udp;
            dests.push(Dest {
                spec,
                label,
                sender: Output::Net(sender),
                gate: Mutex::new(()),
                spooled,
                waits: AtomicU64::new(0),
            });
        }
        Ok(Relay {
            health: Health::new(dests.len()),
            router,
            cleanse,
            dests,
            queue,
            max_name: AtomicUsize::new(64),
            stopping: AtomicBool::new(false),
            counters: RelayCounters::default(),
        })
    }

    /// The destinations, in table order.
    pub fn destinations(&self) -> impl Iterator<Item = &DestSpec> {
        self.dests.iter().map(|d| &d.spec)
    }

    /// Each destination's counters, in table order.
    pub fn stats(&self) -> Vec<DestinationStats> {
        self.dests.iter().filter_map(|d| d.sender.stats()).collect()
    }

    /// Where `metric` goes: `(name sent, destination index)` pairs.
    pub fn route(&self, metric: &str) -> Vec<(String, usize)> {
        let name = if self.cleanse { router::cleanse(metric) } else { metric.into() };
        let mut out = Vec::new();
        self.router.route(&name, &self.health, &mut |n, d| out.push((n.to_string(), d)));
        out
    }

    /// Refreshes which destinations are up (for `any_of` and `failover`).
    pub fn refresh_health(&self) {
        for (i, d) in self.dests.iter().enumerate() {
            let up = d.sender.stats().is_none_or(|s| s.connected);
            self.health.set(i, up);
        }
    }

    /// Whether `incoming` more points fit destination `d` without the sender dropping any.
    fn has_room(&self, d: &Dest, incoming: usize) -> bool {
        let Some(s) = d.sender.stats() else { return true };
        if d.spec.protocol == Protocol::Udp {
            return true;
        }
        let pending = s.queued as usize + s.spooled as usize + incoming;
        if d.spooled {
            let per_point = self.max_name.load(Ordering::Relaxed) + SPOOL_POINT_OVERHEAD;
            let need = (pending as u64).saturating_mul(per_point as u64);
            need.saturating_add(SPOOL_SLACK) <= self.queue.spool_max_bytes
        } else {
            s.queued as usize + incoming <= self.queue.queue_points
        }
    }

    /// Queues `points` for destination `d`, waiting while they do not fit (unless stopping:
    /// then the sender spools or counts them).
    fn deliver(&self, d: &Dest, mut points: Vec<Point>) {
        // In pieces of at most half a queue, so that a read larger than the queue still fits.
        let piece = (self.queue.queue_points / 2).max(1);
        while points.len() > piece {
            let rest = points.split_off(piece);
            self.deliver_piece(d, points);
            points = rest;
        }
        self.deliver_piece(d, points);
    }

    fn deliver_piece(&self, d: &Dest, points: Vec<Point>) {
        let _gate = d.gate.lock().unwrap_or_else(PoisonError::into_inner);
        let mut waited = false;
        // Bounded by the destination draining, or by shutdown.
        while !self.has_room(d, points.len()) && !self.stopping.load(Ordering::Relaxed) {
            if !waited {
                self.counters.waits.fetch_add(1, Ordering::Relaxed);
                d.waits.fetch_add(1, Ordering::Relaxed);
                waited = true;
            }
            std::thread::sleep(FULL_WAIT);
        }
        d.sender.send(points);
    }

    /// Routes and queues owned points (self-metrics, tests).
    pub fn push(&self, points: &[(String, f64, f64)]) -> usize {
        self.push_to(points, None)
    }

    /// Queues owned points for the c-relay clusters `to` (a `send to` of `statistics` or
    /// `aggregate`: no rule applies), or routes them like received points when `to` is
    /// `None`. They count as received either way, as carbon-c-relay's internal metrics do.
    pub fn push_to(&self, points: &[(String, f64, f64)], to: Option<&[usize]>) -> usize {
        let raw: Vec<RawPoint<'_>> = points
            .iter()
            .map(|(n, t, v)| RawPoint { name: n.as_str(), timestamp: *t, value: *v })
            .collect();
        match to {
            None => self.ingest(&raw),
            Some(to) => self.dispatch(&raw, &|name, _, emit| {
                self.router.send_to_clusters(name, to, &self.health, emit);
                false
            }),
        }
    }

    /// Whether the routes have `aggregate` statements.
    pub fn has_aggregates(&self) -> bool {
        !self.router.aggregates().is_empty()
    }

    /// The `aggregate` statements' `(received, sent, dropped)`, summed; `None` without any.
    pub fn aggregate_counters(&self) -> Option<(u64, u64, u64)> {
        let rules = self.router.aggregates();
        (!rules.is_empty()).then(|| {
            rules
                .iter()
                .map(|r| r.engine.counters())
                .fold((0, 0, 0), |a, c| (a.0 + c.0, a.1 + c.1, a.2 + c.2))
        })
    }

    /// Emits the aggregates due at `now` (whole seconds; with `shutdown`, every complete
    /// bucket) and queues them: to their statement's `send to` clusters, or routed like
    /// received points. Returns how many. Queuing may wait for room: call it off the I/O
    /// threads.
    pub fn expire_aggregates(&self, now: i64, shutdown: bool) -> usize {
        let mut n = 0;
        for rule in self.router.aggregates() {
            let due = rule.engine.expire(now, shutdown);
            if !due.is_empty() {
                n += due.len();
                self.push_to(&due, rule.send_to.as_deref());
            }
        }
        n
    }

    /// carbon-c-relay's counters now (see [`statistics`]): `listeners` are the listeners'
    /// counters, `aggregators` the `aggregate` statements' `(received, sent, dropped)`.
    pub fn crelay_snapshot(
        &self,
        listeners: &crate::server::ListenerStats,
        aggregators: Option<(u64, u64, u64)>,
    ) -> statistics::Snapshot {
        use crate::server::ListenerStats as L;
        let stats = self.stats();
        let destinations = self
            .dests
            .iter()
            .zip(&stats)
            .map(|(d, s)| {
                let udp = if d.spec.protocol == Protocol::Udp { "-udp" } else { "" };
                statistics::DestinationCounters {
                    name: match &d.spec.file {
                        Some(path) => path.display().to_string(),
                        None => format!("{}:{}{udp}", d.spec.dest.host(), d.spec.dest.port()),
                    }
                    .replace('.', "_"),
                    sent: s.sent,
                    queued: s.queued + s.spooled,
                    stalls: d.waits.load(Ordering::Relaxed),
                    dropped: s.dropped,
                }
            })
            .collect();
        let connections = L::get(&listeners.connections);
        let active = listeners.active_connections.load(Ordering::Relaxed).max(0) as u64;
        statistics::Snapshot {
            received: self.counters.received.load(Ordering::Relaxed),
            blackholed: self.counters.unrouted.load(Ordering::Relaxed),
            discarded: L::get(&listeners.bad_lines)
                + L::get(&listeners.bad_frames)
                + L::get(&listeners.bad_items)
                + self.counters.invalid.load(Ordering::Relaxed),
            destinations,
            connections,
            disconnects: connections.saturating_sub(active),
            aggregators,
        }
    }

    /// Counts, cleanses (c-relay mode) and queues `points` for the destinations `route`
    /// emits for each name: the work of [`Sink::ingest`] with the routing supplied.
    fn dispatch(&self, points: &[RawPoint<'_>], route: &RouteFn<'_>) -> usize {
        self.counters.received.fetch_add(points.len() as u64, Ordering::Relaxed);
        let mut per_dest: Vec<Vec<Point>> = (0..self.dests.len()).map(|_| Vec::new()).collect();
        let mut accepted = 0usize;
        let mut longest = 0usize;
        for p in points {
            let name = if self.cleanse { router::cleanse(p.name) } else { p.name.into() };
            let mut last: Option<MetricName> = None;
            let mut invalid = false;
            let mut routed = false;
            let aggregated = route(&name, p, &mut |n, d| {
                routed = true;
                let metric = match &last {
                    Some(m) if m.as_str() == n => m.clone(),
                    _ => match MetricName::new(n) {
                        Ok(m) => {
                            longest = longest.max(n.len());
                            last = Some(m.clone());
                            m
                        }
                        Err(_) => {
                            invalid = true;
                            return;
                        }
                    },
                };
                if let Some(buf) = per_dest.get_mut(d) {
                    buf.push(Point::new(metric, p.timestamp, p.value));
                }
            });
            if invalid {
                self.counters.invalid.fetch_add(1, Ordering::Relaxed);
            } else if !routed && !aggregated {
                self.counters.unrouted.fetch_add(1, Ordering::Relaxed);
            } else {
                accepted += 1;
            }
        }
        self.max_name.fetch_max(longest, Ordering::Relaxed);
        for (d, buf) in self.dests.iter().zip(per_dest) {
            if !buf.is_empty() {
                self.deliver(d, buf);
            }
        }
        accepted
    }

    /// Stops: listeners are expected to be closed already. Each sender writes what it can
    /// within `deadline`, then spools the rest.
    pub fn shutdown(&self, deadline: Duration) {
        self.stopping.store(true, Ordering::SeqCst);
        for d in &self.dests {
            if let Err(e) = d.sender.shutdown(deadline) {
                tracing::warn!(destination = %d.label, error = %e, "sender did not stop in time");
            }
        }
    }

    /// carbon-relay's self-metrics for one interval, as `(name, value)`:
    /// `<prefix>.relays.<host>.destinations.<dest>.{sent,queued,spooled,dropped}` plus
    /// `metricsReceived`. `sent`, `dropped` and `metricsReceived` count the interval (carbon
    /// resets its counters); `queued` and `spooled` are the current levels. `previous` holds
    /// the cumulative counters of the last call.
    pub fn self_metrics(
        &self,
        prefix: &str,
        host: &str,
        previous: &mut SelfMetricsState,
    ) -> Vec<(String, f64)> {
        let base = format!("{prefix}.relays.{host}");
        let mut out = Vec::new();
        let stats = self.stats();
        previous.sent.resize(stats.len(), 0);
        previous.dropped.resize(stats.len(), 0);
        for (i, (d, s)) in self.dests.iter().zip(&stats).enumerate() {
            let m = |k: &str| format!("{base}.destinations.{}.{k}", d.label);
            out.push((m("sent"), s.sent.saturating_sub(previous.sent[i]) as f64));
            out.push((m("queued"), s.queued as f64));
            out.push((m("spooled"), s.spooled as f64));
            out.push((m("dropped"), s.dropped.saturating_sub(previous.dropped[i]) as f64));
            previous.sent[i] = s.sent;
            previous.dropped[i] = s.dropped;
        }
        let received = self.counters.received.load(Ordering::Relaxed);
        out.push((
            format!("{base}.metricsReceived"),
            received.saturating_sub(previous.received) as f64,
        ));
        previous.received = received;
        out
    }
}

/// Cumulative counters at the last self-metrics interval.
#[derive(Debug, Default, Clone)]
pub struct SelfMetricsState {
    sent: Vec<u64>,
    dropped: Vec<u64>,
    received: u64,
}

impl Sink for Relay {
    fn ingest(&self, points: &[RawPoint<'_>]) -> usize {
        let now = unix_now();
        self.dispatch(points, &|name, p, emit| {
            let point = PointIn { value: p.value, timestamp: p.timestamp, now };
            self.router.route_point(name, Some(point), &self.health, emit)
        })
    }

    fn is_full(&self) -> bool {
        // Room for one more read's worth on every destination; `ingest` is the exact check.
        let margin = (self.queue.queue_points / 2).min(16 * 1024);
        self.dests.iter().any(|d| !self.has_room(d, margin))
    }
}

/// The host name (`gethostname`), `localhost` if it cannot be read.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// The clock in whole seconds (`time(NULL)`).
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// `socket.gethostname()` with dots made underscores, then `-<instance>`: carbon's `<H>`.
pub fn carbon_host(instance: Option<&str>) -> String {
    let host = hostname().replace('.', "_");
    match instance {
        Some(i) if !i.is_empty() => format!("{host}-{i}"),
        _ => host,
    }
}

/// Keeps a relay's shutdown flag set when dropped (so a blocked ingest gives up).
impl Drop for Relay {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
    }
}

/// Shared handle used by the binary and tests.
pub type SharedRelay = Arc<Relay>;
