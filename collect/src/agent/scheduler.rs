//! Runs every enabled collector on its own thread, on its own interval.
//!
//! Timing follows Diamond: runs are lined up on multiples of the interval (wall clock) plus a
//! per-collector offset inside it (`stagger_collection`), so a host's collectors do not fire
//! in the same second and every host's points of one window land in the same whisper slot.
//! Diamond draws the offset at random; ours is a hash of the collector's name, so it stays
//! the same across restarts and reloads. A run that overruns its interval delays only its own
//! thread: the windows it covered are skipped (not run late in a burst) and counted as
//! overruns. A collector that fails or panics costs only its run: the error is counted,
//! logged, and the next window runs as usual.
//!
//! The agent's own counters go out every `self_interval` under
//! `<prefix>.<host>[.<suffix>].collect.`:
//! `collectors.<name>.{runs,errors,overruns,points,dropped_names}` (counts since the last
//! report), `collectors.<name>.run_time_ms` (the last run), and per destination
//! `sender.<dest>.{sent,dropped,errors}` (counts since the last report) and
//! `sender.<dest>.{queued,spooled}` (now).

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use carbon_proto::Point;

use super::config::{AgentConfig, CollectorConfig, Naming};
use super::error::{AgentError, Origin};
use super::path::{MetricFilter, MetricPath, node};
use super::registry::Registry;
use super::sink::PointSink;
use crate::{Collector, RunContext, Sample};

/// Counters of one collector, shared between its thread and the self-metrics thread.
#[derive(Debug, Default)]
pub struct RunStats {
    /// Runs done.
    pub runs: AtomicU64,
    /// Runs that failed (an error or a panic in the collector).
    pub errors: AtomicU64,
    /// Windows skipped because a run was still going.
    pub overruns: AtomicU64,
    /// Points handed to the sender.
    pub points: AtomicU64,
    /// Samples whose name could not make a valid path.
    pub dropped_names: AtomicU64,
    /// Duration of the last run, microseconds.
    pub last_run_us: AtomicU64,
}

/// A collector ready to run: the collector and how its samples become points.
struct Prepared {
    name: String,
    collector: Box<dyn Collector>,
    path: MetricPath,
    filter: MetricFilter,
    measure_time: bool,
    /// Whether a bad sample name was logged already (logged once, then counted).
    warned_name: bool,
}

impl Prepared {
    fn new(
        c: &CollectorConfig,
        registry: &Registry,
        config: &AgentConfig,
    ) -> Result<Prepared, AgentError> {
        let origin = |key: &str| c.origins.0.get(key).cloned().unwrap_or_default();
        let kind = registry
            .find(&c.kind)
            .ok_or_else(|| AgentError::config(Origin::default(), &c.kind, "no such collector"))?;
        let collector =
            (kind.make)(&c.collector_options(), &config.env.env()).map_err(|e| match e {
                crate::Error::BadOption { key, value, reason } => {
                    AgentError::config(origin(&key), key, format!("{value:?}: {reason}"))
                }
                other => AgentError::config(Origin::default(), &c.name, other.to_string()),
            })?;
        let node_path = c.path.clone().unwrap_or_else(|| collector.default_path().to_owned());
        let filter =
            MetricFilter::new(c.metrics_whitelist.as_deref(), c.metrics_blacklist.as_deref())
                .map_err(|(key, e)| AgentError::config(origin(key), key, e.to_string()))?;
        Ok(Prepared {
            name: c.name.clone(),
            collector,
            path: path_of(&c.naming, &node_path),
            filter,
            measure_time: c.measure_collector_time,
            warned_name: false,
        })
    }

    /// One run: collects, names, filters. Returns the points (after an error, those the
    /// collector appended before it failed; none after a panic).
    fn run(&mut self, unix_time: i64, stats: &RunStats, buf: &mut Vec<Sample>) -> Vec<Point> {
        buf.clear();
        let ctx = RunContext { now: Instant::now(), unix_time };
        let started = Instant::now();
        let outcome =
            std::panic::catch_unwind(AssertUnwindSafe(|| self.collector.collect(&ctx, buf)));
        let took = started.elapsed();
        stats.runs.fetch_add(1, Ordering::Relaxed);
        stats.last_run_us.store(took.as_micros() as u64, Ordering::Relaxed);
        let ok = matches!(outcome, Ok(Ok(())));
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                // What the collector appended before failing is good (a Redis collector's
                // healthy instances, the scripts that ran): it is published.
                stats.errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(collector = %self.name, error = %e, "collector failed");
            }
            Err(_) => {
                stats.errors.fetch_add(1, Ordering::Relaxed);
                tracing::error!(collector = %self.name, "collector panicked");
                buf.clear();
            }
        }
        if self.measure_time && ok {
            buf.push(Sample::new("collector_time_ms", took.as_millis() as f64));
        }
        let mut points = Vec::with_capacity(buf.len());
        for s in buf.drain(..) {
            if !self.filter.allows(&s.name) {
                continue;
            }
            match self.path.full(&s.name) {
                Some(name) => {
                    points.push(Point::new(name, s.timestamp.unwrap_or(unix_time) as f64, s.value));
                }
                None => {
                    stats.dropped_names.fetch_add(1, Ordering::Relaxed);
                    if !self.warned_name {
                        self.warned_name = true;
                        tracing::warn!(collector = %self.name, name = %s.name, "sample name makes no valid path (dropped; counted from now on)");
                    }
                }
            }
        }
        stats.points.fetch_add(points.len() as u64, Ordering::Relaxed);
        points
    }
}

fn path_of(n: &Naming, node_path: &str) -> MetricPath {
    MetricPath::new(&n.path_prefix, n.host.as_deref(), &n.path_suffix, node_path)
}

/// Wall-clock seconds.
fn unix_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// The first window start after `now`: `k * interval + offset`.
pub(crate) fn next_window(now: f64, interval: f64, offset: f64) -> f64 {
    ((now - offset) / interval).floor().mul_add(interval, interval + offset)
}

/// The per-collector offset inside its interval (FNV-1a of the name).
pub(crate) fn stagger_offset(name: &str, interval: Duration) -> f64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let ms = interval.as_millis().max(1) as u64;
    (h % ms) as f64 / 1000.0
}

/// A running thread and how to stop it.
struct Worker {
    name: String,
    /// Dropping it wakes the thread and ends its loop.
    stop: Option<mpsc::Sender<()>>,
    handle: JoinHandle<()>,
}

/// The running agent: one thread per collector plus one for the self metrics.
pub struct Agent {
    workers: Vec<Worker>,
    stats: Arc<Vec<(String, Arc<RunStats>)>>,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent").field("threads", &self.workers.len()).finish()
    }
}

impl Agent {
    /// Builds every enabled collector and starts its thread.
    ///
    /// # Errors
    ///
    /// A collector refuses its settings (nothing is started then).
    pub fn start(
        config: &AgentConfig,
        registry: &Registry,
        sink: Arc<dyn PointSink>,
    ) -> Result<Agent, AgentError> {
        let mut prepared = Vec::new();
        for c in &config.collectors {
            prepared.push((Prepared::new(c, registry, config)?, c.interval, c.stagger));
        }
        let stats: Arc<Vec<(String, Arc<RunStats>)>> = Arc::new(
            prepared
                .iter()
                .map(|(p, _, _)| (p.name.clone(), Arc::new(RunStats::default())))
                .collect(),
        );
        let mut workers = Vec::new();
        for ((p, interval, stagger), (_, st)) in prepared.into_iter().zip(stats.iter()) {
            let offset = if stagger { stagger_offset(&p.name, interval) } else { 0.0 };
            let st = Arc::clone(st);
            let sink = Arc::clone(&sink);
            let name = p.name.clone();
            workers.push(spawn(&name, move |stop| {
                collector_loop(p, interval, offset, &st, &*sink, &stop)
            })?);
        }
        if config.self_metrics {
            let base = path_of(&config.naming, "collect");
            let interval = config.self_interval;
            let stats2 = Arc::clone(&stats);
            let sink = Arc::clone(&sink);
            workers.push(spawn("self-metrics", move |stop| {
                self_loop(base, interval, &stats2, &*sink, &stop)
            })?);
        }
        Ok(Agent { workers, stats })
    }

    /// Each collector's counters.
    pub fn stats(&self) -> &[(String, Arc<RunStats>)] {
        &self.stats
    }

    /// Stops every thread, waiting at most `deadline` for runs in progress; returns the
    /// names of threads still busy then (left to finish on their own).
    pub fn stop(mut self, deadline: Duration) -> Vec<String> {
        for w in &mut self.workers {
            w.stop.take();
        }
        let until = Instant::now() + deadline;
        let mut busy = Vec::new();
        for w in self.workers {
            while !w.handle.is_finished() && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(5));
            }
            if w.handle.is_finished() {
                let _ = w.handle.join();
            } else {
                busy.push(w.name);
            }
        }
        busy
    }
}

fn spawn(
    name: &str,
    body: impl FnOnce(mpsc::Receiver<()>) + Send + 'static,
) -> Result<Worker, AgentError> {
    let (tx, rx) = mpsc::channel();
    let handle = std::thread::Builder::new()
        .name(format!("collect-{name}"))
        .stack_size(256 * 1024)
        .spawn(move || body(rx))
        .map_err(|e| {
            AgentError::config(Origin::default(), name, format!("cannot start a thread: {e}"))
        })?;
    Ok(Worker { name: name.to_owned(), stop: Some(tx), handle })
}

/// Sleeps until the next window after `last`; `None` when asked to stop.
fn wait_window(stop: &mpsc::Receiver<()>, interval: f64, offset: f64, last: f64) -> Option<f64> {
    let now = unix_now();
    let mut next = next_window(now, interval, offset);
    // A clock stepping back must not run the same window twice.
    if next < last + interval / 2.0 {
        next += interval;
    }
    let wait = Duration::from_secs_f64((next - now).clamp(0.0, interval + offset + 1.0));
    match stop.recv_timeout(wait) {
        Err(RecvTimeoutError::Timeout) => Some(next),
        _ => None,
    }
}

fn collector_loop(
    mut p: Prepared,
    interval: Duration,
    offset: f64,
    stats: &RunStats,
    sink: &dyn PointSink,
    stop: &mpsc::Receiver<()>,
) {
    let every = interval.as_secs_f64();
    let mut buf = Vec::new();
    let mut last = f64::MIN;
    while let Some(window) = wait_window(stop, every, offset, last) {
        last = window;
        let points = p.run(window.floor() as i64, stats, &mut buf);
        if !points.is_empty() {
            sink.send(points);
        }
        let missed = ((unix_now() - window) / every).floor();
        if missed >= 1.0 {
            stats.overruns.fetch_add(missed as u64, Ordering::Relaxed);
            tracing::warn!(collector = %p.name, windows = missed as u64, "run overran its interval; windows skipped");
        }
    }
}

fn self_loop(
    base: MetricPath,
    interval: Duration,
    stats: &[(String, Arc<RunStats>)],
    sink: &dyn PointSink,
    stop: &mpsc::Receiver<()>,
) {
    let mut prev: HashMap<String, u64> = HashMap::new();
    let mut last = f64::MIN;
    let every = interval.as_secs_f64();
    while let Some(window) = wait_window(stop, every, 0.0, last) {
        last = window;
        let ts = window.floor();
        let mut points = Vec::new();
        let mut push = |name: String, value: f64| {
            if let Some(n) = base.full(&name) {
                points.push(Point::new(n, ts, value));
            }
        };
        let mut delta = |key: String, now: u64| -> f64 {
            let before = prev.insert(key, now).unwrap_or(0);
            now.saturating_sub(before) as f64
        };
        for (name, s) in stats {
            let n = node(name);
            for (field, counter) in [
                ("runs", &s.runs),
                ("errors", &s.errors),
                ("overruns", &s.overruns),
                ("points", &s.points),
                ("dropped_names", &s.dropped_names),
            ] {
                let key = format!("collectors.{n}.{field}");
                let v = delta(key.clone(), counter.load(Ordering::Relaxed));
                push(key, v);
            }
            push(
                format!("collectors.{n}.run_time_ms"),
                s.last_run_us.load(Ordering::Relaxed) as f64 / 1000.0,
            );
        }
        for d in sink.stats() {
            let n = node(&d.name);
            for (field, v) in [("sent", d.sent), ("dropped", d.dropped), ("errors", d.errors)] {
                let key = format!("sender.{n}.{field}");
                let v = delta(key.clone(), v);
                push(key, v);
            }
            push(format!("sender.{n}.queued"), d.queued as f64);
            push(format!("sender.{n}.spooled"), d.spooled as f64);
        }
        sink.send(points);
    }
}

/// Runs every enabled collector of `config` twice, `gap` apart (rates need two samples), on
/// its own thread, and returns the second run's points: what `--once` prints.
///
/// # Errors
///
/// A collector refuses its settings.
pub fn run_once(
    config: &AgentConfig,
    registry: &Registry,
    gap: Duration,
) -> Result<Vec<Point>, AgentError> {
    let mut prepared = Vec::new();
    for c in &config.collectors {
        prepared.push(Prepared::new(c, registry, config)?);
    }
    let out = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for p in &mut prepared {
            let out = &out;
            scope.spawn(move || {
                let stats = RunStats::default();
                let mut buf = Vec::new();
                let _ = p.run(unix_now().floor() as i64, &stats, &mut buf);
                std::thread::sleep(gap);
                let points = p.run(unix_now().floor() as i64, &stats, &mut buf);
                out.lock().unwrap_or_else(|e| e.into_inner()).push((p.name.clone(), points));
            });
        }
    });
    let mut all = out.into_inner().unwrap_or_else(|e| e.into_inner());
    all.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(all.into_iter().flat_map(|(_, p)| p).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_line_up_on_the_interval_plus_the_offset() {
        assert_eq!(next_window(100.0, 10.0, 0.0), 110.0);
        assert_eq!(next_window(105.0, 10.0, 0.0), 110.0);
        assert_eq!(next_window(105.0, 10.0, 3.0), 113.0);
        assert_eq!(next_window(114.0, 10.0, 3.0), 123.0);
        assert_eq!(next_window(1_700_000_299.5, 300.0, 0.0), 1_700_000_400.0);
        let a = stagger_offset("cpu", Duration::from_secs(10));
        assert!((0.0..10.0).contains(&a));
        assert_eq!(a, stagger_offset("cpu", Duration::from_secs(10)));
        assert_ne!(a, stagger_offset("memory", Duration::from_secs(10)));
    }
}
