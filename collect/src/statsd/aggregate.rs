//! [`Aggregator`]: the state statsd keeps between flushes (counters, timers, gauges, sets and
//! its own counters), fed packet by packet and turned into Graphite points at each flush.
//!
//! It has no I/O and no clock of its own: the server (or a test) hands it packets and the flush
//! time, so every flush is reproducible.

use std::fmt::Write as _;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use carbon_proto::statsd::{BadLine, Metric, Value, decode_packet};
use carbon_proto::{MetricName, Point};
use foldhash::fast::RandomState;
use hashbrown::hash_map::EntryRef;

use super::config::{Settings, StatsdConfig};
use super::error::Result;
use super::timer::{Scratch, Timer, statistics};

type Map<V> = hashbrown::HashMap<String, V, RandomState>;
type MemberSet = hashbrown::HashSet<u64, RandomState>;

/// A gauge's value and, with `delete_gauges`, the flushes it is still sent.
#[derive(Clone, Copy, Debug)]
struct Gauge {
    value: f64,
    /// `None` for gauges that are never deleted (statsd's own `timestamp_lag`, or every
    /// gauge without `delete_gauges`).
    ttl: Option<u32>,
}

/// What was refused because a bound was reached, since the last flush (and in total).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Dropped {
    /// Values for new keys refused because `max_keys` keys were held.
    pub keys: u64,
    /// Set members refused because a set held `max_set_members`.
    pub set_members: u64,
    /// Timer values not kept in the sample (they still count in `count`, `sum`, ...).
    pub timer_samples: u64,
}

/// statsd's state between flushes.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use collect::statsd::{Aggregator, StatsdConfig};
///
/// let start = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
/// let mut statsd = Aggregator::new_at(&StatsdConfig::default(), start)?;
/// statsd.ingest(b"gorets:1|c\ngorets:1|c|@0.1\nglork:320|ms\ngaugor:333|g");
/// let points = statsd.flush(start + Duration::from_secs(10));
/// let value = |name: &str| points.iter().find(|p| p.name.as_str() == name).map(|p| p.datapoint.value);
/// assert_eq!(value("stats_counts.gorets"), Some(11.0));
/// assert_eq!(value("stats.gorets"), Some(1.1));
/// assert_eq!(value("stats.timers.glork.mean_90"), Some(320.0));
/// assert_eq!(value("stats.gauges.gaugor"), Some(333.0));
/// assert_eq!(value("statsd.numStats"), Some(6.0));
/// # Ok::<(), collect::statsd::Error>(())
/// ```
pub struct Aggregator {
    settings: Arc<Settings>,
    counters: Map<f64>,
    timers: Map<Timer>,
    gauges: Map<Gauge>,
    sets: Map<MemberSet>,
    /// The three counters statsd keeps about itself, added into `counters` at each flush
    /// (kept apart so the packet path does no map lookup for them).
    packets_received: f64,
    metrics_received: f64,
    bad_lines_seen: f64,
    /// Their keys (`statsd.packets_received`, ... with `prefixStats`), and `timestamp_lag`'s.
    self_keys: [String; 3],
    lag_key: String,
    member_hasher: RandomState,
    /// xorshift state for the timers' reservoirs.
    random: u64,
    dropped: Dropped,
    dropped_total: Dropped,
    /// A key refused this interval, for the warning.
    dropped_example: Option<String>,
    /// The previous flush's timestamp (statsd's `old_timestamp`), for `timestamp_lag`.
    last_timestamp: Option<i64>,
    graphite: GraphiteStats,
    scratch: Scratch,
}

/// statsd's graphite backend's figures about its own previous flush.
#[derive(Clone, Copy, Debug)]
struct GraphiteStats {
    last_exception: i64,
    last_flush: i64,
    flush_time_ms: u64,
    flush_length: u64,
}

impl Aggregator {
    /// An empty aggregator started now.
    ///
    /// # Errors
    ///
    /// [`Error::Config`](super::Error::Config) for a setting that cannot be used.
    pub fn new(config: &StatsdConfig) -> Result<Aggregator> {
        Aggregator::new_at(config, SystemTime::now())
    }

    /// An empty aggregator started at `startup` (what `graphiteStats.last_flush` and
    /// `last_exception` report until the first flush).
    ///
    /// # Errors
    ///
    /// [`Error::Config`](super::Error::Config) for a setting that cannot be used.
    pub fn new_at(config: &StatsdConfig, startup: SystemTime) -> Result<Aggregator> {
        let settings = Arc::new(Settings::new(config)?);
        Ok(Aggregator::with_settings(settings, config, startup))
    }

    pub(crate) fn with_settings(
        settings: Arc<Settings>,
        config: &StatsdConfig,
        startup: SystemTime,
    ) -> Aggregator {
        let p = &config.prefix_stats;
        let self_keys = [
            format!("{p}.bad_lines_seen"),
            format!("{p}.packets_received"),
            format!("{p}.metrics_received"),
        ];
        let mut counters = Map::default();
        for k in &self_keys {
            counters.insert(k.clone(), 0.0);
        }
        let started = unix_seconds(startup);
        let member_hasher = RandomState::default();
        let random = member_hasher.hash_one(started) | 1;
        Aggregator {
            settings,
            counters,
            timers: Map::default(),
            gauges: Map::default(),
            sets: Map::default(),
            packets_received: 0.0,
            metrics_received: 0.0,
            bad_lines_seen: 0.0,
            self_keys,
            lag_key: format!("{p}.timestamp_lag"),
            member_hasher,
            random,
            dropped: Dropped::default(),
            dropped_total: Dropped::default(),
            dropped_example: None,
            last_timestamp: None,
            graphite: GraphiteStats {
                last_exception: started,
                last_flush: started,
                flush_time_ms: 0,
                flush_length: 0,
            },
            scratch: Scratch::default(),
        }
    }

    /// Takes one packet: a UDP datagram, or complete lines from a TCP stream. Never fails:
    /// a bad part of a line is counted in `statsd.bad_lines_seen` and logged at debug level.
    pub fn ingest(&mut self, packet: &[u8]) {
        self.packets_received += 1.0;
        let stats = decode_packet(packet, |item| match item {
            Ok(metric) => self.add(&metric),
            Err(bad) => log_bad_line(&bad),
        });
        self.metrics_received += stats.lines as f64;
        self.bad_lines_seen += stats.bad_lines as f64;
    }

    /// Counts a packet that could not be read whole (a TCP line over the length limit): one
    /// packet, one line, one bad line.
    pub(crate) fn ingest_oversized(&mut self) {
        self.packets_received += 1.0;
        self.metrics_received += 1.0;
        self.bad_lines_seen += 1.0;
    }

    fn add(&mut self, metric: &Metric<'_>) {
        let key = metric.name();
        let rate = metric.sample_rate();
        let settings = &*self.settings;
        let held = self.counters.len() + self.timers.len() + self.gauges.len() + self.sets.len();
        let room = held < settings.max_keys;
        match metric.value() {
            Value::Timer(v) => {
                let random = next_random(&mut self.random);
                let cap = settings.max_timer_samples;
                if let Some(t) = slot(&mut self.timers, key, room, &mut self.dropped) {
                    if t.samples.len() >= cap {
                        self.dropped.timer_samples += 1;
                    }
                    t.add(*v, 1.0 / rate, cap, random);
                }
            }
            Value::Gauge(v) => {
                let ttl = settings.delete_gauges.then_some(settings.gauges_max_ttl);
                if let Some(g) = slot(&mut self.gauges, key, room, &mut self.dropped) {
                    *g = Gauge { value: *v, ttl };
                }
            }
            Value::GaugeDelta(v) => {
                let ttl = settings.delete_gauges.then_some(settings.gauges_max_ttl);
                if let Some(g) = slot(&mut self.gauges, key, room, &mut self.dropped) {
                    // statsd adds only to a gauge that is "truthy" (not absent, 0 or NaN);
                    // otherwise the signed value becomes the gauge.
                    let value = if g.value != 0.0 && !g.value.is_nan() { g.value + v } else { *v };
                    *g = Gauge { value, ttl };
                }
            }
            Value::Set(member) => {
                let hash = self.member_hasher.hash_one(member.as_bytes());
                let cap = settings.max_set_members;
                if let Some(s) = slot(&mut self.sets, key, room, &mut self.dropped) {
                    if s.len() < cap {
                        s.insert(hash);
                    } else if !s.contains(&hash) {
                        self.dropped.set_members += 1;
                    }
                }
            }
            // `c`, and every other type (`h`, `d`, unknown letters) as statsd does.
            other => {
                let v = other.as_f64().unwrap_or(0.0);
                if let Some(c) = slot(&mut self.counters, key, room, &mut self.dropped) {
                    // statsd multiplies by `1 / rate`; the order matters to the last bit.
                    *c += v * (1.0 / rate);
                }
            }
        }
        if !room && self.dropped_example.is_none() && self.dropped.keys > 0 {
            self.dropped_example = Some(key.to_string());
        }
    }

    /// Flushes at `now`: the points, and the state reset as statsd resets it.
    pub fn flush(&mut self, now: SystemTime) -> Vec<Point> {
        let interval = self.take(now);
        let (points, bytes) = interval.into_points();
        self.flushed(Duration::ZERO, bytes, now);
        points
    }

    /// The bounds' refusals: since the last flush, and since the start.
    pub fn dropped(&self) -> (Dropped, Dropped) {
        (self.dropped, self.dropped_total)
    }

    /// Moves this interval's figures out (cheap: no statistic is computed), leaving the state
    /// statsd leaves after a flush. The server does this under its lock and computes the
    /// points outside it.
    pub(crate) fn take(&mut self, now: SystemTime) -> Interval {
        let started = Instant::now();
        let timestamp = unix_seconds(now);
        let settings = Arc::clone(&self.settings);
        if let Some(old) = self.last_timestamp {
            let lag = (timestamp - old) as f64 - settings.interval_secs;
            self.gauges.insert(self.lag_key.clone(), Gauge { value: lag, ttl: None });
        }
        self.last_timestamp = Some(timestamp);
        for (key, value) in self.self_keys.iter().zip([
            std::mem::take(&mut self.bad_lines_seen),
            std::mem::take(&mut self.packets_received),
            std::mem::take(&mut self.metrics_received),
        ]) {
            *self.counters.entry_ref(key.as_str()).or_insert(0.0) += value;
        }

        let num_stats =
            self.counters.len() + self.timers.len() + self.gauges.len() + self.sets.len();
        let counters = self.counters.iter().map(|(k, v)| (k.clone(), *v)).collect();
        if settings.delete_counters {
            // statsd keeps its own counters (anything named like them) at 0.
            self.counters.retain(|k, v| {
                *v = 0.0;
                ["packets_received", "metrics_received", "bad_lines_seen"]
                    .iter()
                    .any(|s| k.contains(s))
            });
        } else {
            self.counters.values_mut().for_each(|v| *v = 0.0);
        }
        let timers = self.timers.iter_mut().map(|(k, t)| (k.clone(), std::mem::take(t))).collect();
        if settings.delete_timers {
            self.timers.clear();
        }
        let gauges = self.gauges.iter().map(|(k, g)| (k.clone(), g.value)).collect();
        if settings.delete_gauges {
            self.gauges.retain(|_, g| match &mut g.ttl {
                None => true,
                Some(ttl) => {
                    *ttl = ttl.saturating_sub(1);
                    *ttl >= 1
                }
            });
        }
        let sets = self.sets.iter_mut().map(|(k, s)| {
            let n = s.len();
            s.clear();
            (k.clone(), n)
        });
        let sets = sets.collect();
        if settings.delete_sets {
            self.sets.clear();
        }
        let dropped = std::mem::take(&mut self.dropped);
        self.dropped_total.keys += dropped.keys;
        self.dropped_total.set_members += dropped.set_members;
        self.dropped_total.timer_samples += dropped.timer_samples;
        Interval {
            settings,
            timestamp,
            counters,
            timers,
            gauges,
            sets,
            num_stats,
            graphite: self.graphite,
            dropped,
            dropped_example: self.dropped_example.take(),
            scratch: std::mem::take(&mut self.scratch),
            took: started.elapsed(),
        }
    }

    /// Records how the flush went, for the next one's `graphiteStats`: how long the sink
    /// took, the plaintext bytes the points make, and when it ended.
    pub(crate) fn flushed(&mut self, took: Duration, bytes: u64, now: SystemTime) {
        self.graphite.flush_time_ms = took.as_millis() as u64;
        self.graphite.flush_length = bytes;
        self.graphite.last_flush = unix_seconds(now);
    }
}

/// One interval's figures, taken out of the [`Aggregator`].
pub(crate) struct Interval {
    settings: Arc<Settings>,
    pub(crate) timestamp: i64,
    counters: Vec<(String, f64)>,
    timers: Vec<(String, Timer)>,
    gauges: Vec<(String, f64)>,
    sets: Vec<(String, usize)>,
    num_stats: usize,
    graphite: GraphiteStats,
    pub(crate) dropped: Dropped,
    pub(crate) dropped_example: Option<String>,
    scratch: Scratch,
    took: Duration,
}

impl Interval {
    /// The points, in the order statsd's graphite backend writes them, and the bytes they
    /// take as plaintext lines (`graphiteStats.flush_length`).
    pub(crate) fn into_points(mut self) -> (Vec<Point>, u64) {
        let started = Instant::now();
        let settings = Arc::clone(&self.settings);
        let names = &settings.names;
        let ts = self.timestamp as f64;
        let mut out = Points { points: Vec::new(), timestamp: ts, bytes: 0, text: String::new() };

        // process_metrics: the rates and the timer statistics.
        let rates: Vec<f64> =
            self.counters.iter().map(|(_, v)| v / settings.interval_secs).collect();
        let mut timer_points = Vec::new();
        for (key, timer) in &mut self.timers {
            let mut stats = Vec::new();
            let mut bins = Vec::new();
            statistics(
                key,
                timer,
                &settings,
                &mut self.scratch,
                |stat, v| stats.push((names.timer_stat(key, stat), v)),
                |bin, v| bins.push((names.timer_bin(key, bin), v)),
            );
            timer_points.push((stats, bins));
        }
        let processing_ms = (self.took + started.elapsed()).as_millis() as f64;

        for ((key, count), rate) in self.counters.iter().zip(rates) {
            out.push(names.counter_rate(key), rate);
            if names.flush_counts {
                out.push(names.counter_count(key), *count);
            }
        }
        for (stats, bins) in timer_points {
            for (name, v) in stats.into_iter().chain(bins) {
                out.push(name, v);
            }
        }
        for (key, value) in &self.gauges {
            out.push(names.gauge(key), *value);
        }
        for (key, n) in &self.sets {
            out.push(names.set_count(key), *n as f64);
        }
        out.push(names.num_stats(), self.num_stats as f64);
        out.push(names.calculation_time(), started.elapsed().as_millis() as f64);
        out.push(names.processing_time(), processing_ms);
        let g = self.graphite;
        out.push(names.graphite_stat("last_exception"), g.last_exception as f64);
        out.push(names.graphite_stat("last_flush"), g.last_flush as f64);
        out.push(names.graphite_stat("flush_time"), g.flush_time_ms as f64);
        out.push(names.graphite_stat("flush_length"), g.flush_length as f64);
        (out.points, out.bytes)
    }
}

struct Points {
    points: Vec<Point>,
    timestamp: f64,
    bytes: u64,
    text: String,
}

impl Points {
    fn push(&mut self, name: String, value: f64) {
        // Keys were checked by the decoder and prefixes at start, so this holds; a name that
        // still fails is skipped rather than sent.
        match MetricName::new(&name) {
            Ok(metric) => {
                self.text.clear();
                let _ = writeln!(self.text, " {value} {}", self.timestamp);
                self.bytes += (name.len() + self.text.len()) as u64;
                self.points.push(Point::new(metric, self.timestamp, value));
            }
            Err(e) => tracing::debug!(name, error = %e, "statsd: unusable name skipped"),
        }
    }
}

/// The map entry for `key`, made if there is room (one lookup, and an allocation only for a
/// new key).
fn slot<'m, V: Default>(
    map: &'m mut Map<V>,
    key: &str,
    room: bool,
    dropped: &mut Dropped,
) -> Option<&'m mut V> {
    match map.entry_ref(key) {
        EntryRef::Occupied(o) => Some(o.into_mut()),
        EntryRef::Vacant(v) if room => Some(v.insert(V::default())),
        EntryRef::Vacant(_) => {
            dropped.keys += 1;
            None
        }
    }
}

impl Default for Gauge {
    fn default() -> Gauge {
        Gauge { value: 0.0, ttl: None }
    }
}

fn log_bad_line(bad: &BadLine<'_>) {
    tracing::debug!(
        error = %bad.error,
        line = %String::from_utf8_lossy(bad.line.get(..400).unwrap_or(bad.line)),
        "statsd: bad line"
    );
}

fn next_random(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// `Math.round(ms / 1000)`, as statsd stamps its flushes.
fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => ((d.as_millis() as f64) / 1000.0).round() as i64,
        Err(e) => -(((e.duration().as_millis() as f64) / 1000.0).round() as i64),
    }
}
