//! The aggregator role: a [`Sink`] in front of another that runs received points through a
//! [`store::aggregator::Aggregator`] (carbon-aggregator's rules and buffers) and hands the
//! inner sink the points passed on (`FORWARD_ALL`) and, from a ticker thread, the aggregated
//! points when their buffers are due: carbon-aggregator-cache's `aggregate -> write` pipeline.
//! The same thread re-reads the rules file when it changed ([`AggregatingSink::watch_rules`]),
//! as carbon-aggregator does every 10 seconds.

use std::borrow::Cow;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use store::aggregator::{Aggregator, RulesFile, RulesReload};
use tokio_util::sync::CancellationToken;

use super::{RawPoint, Sink};

/// How often the ticker asks the aggregator for due buffers (carbon's timers have a
/// resolution of their frequency, at least one second).
const TICK: Duration = Duration::from_secs(1);

/// Seconds since the epoch, as `time.time()`.
fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// Aggregates what it receives, then passes it on to `inner`.
pub struct AggregatingSink {
    /// Where the passed-on and aggregated points go.
    inner: Arc<dyn Sink>,
    /// The engine; ingest and the ticker take turns.
    aggregator: Mutex<Aggregator>,
    /// The rules file to re-read when it changes, if any; only the ticker uses it.
    rules: Mutex<Option<WatchedRules>>,
}

/// The rules file and when to look at it next.
struct WatchedRules {
    file: RulesFile,
    every: Duration,
    next: Instant,
}

impl AggregatingSink {
    /// A sink that aggregates with `aggregator` in front of `inner`.
    pub fn new(aggregator: Aggregator, inner: Arc<dyn Sink>) -> AggregatingSink {
        AggregatingSink { inner, aggregator: Mutex::new(aggregator), rules: Mutex::new(None) }
    }

    /// Has the ticker look at `file` every `every` (carbon: 10 s) and put its rules in use
    /// when it changed. `file`'s rules are expected to be the aggregator's now. A zero
    /// interval never looks.
    pub fn watch_rules(&self, file: RulesFile, every: Duration) {
        if every.is_zero() {
            return;
        }
        let watched = WatchedRules { file, every, next: Instant::now() + every };
        *self.rules.lock().unwrap_or_else(|e| e.into_inner()) = Some(watched);
    }

    /// Re-reads the rules file if it is time and it changed; an unusable new version is
    /// logged and the rules in use stay. Returns what was done, if anything.
    pub fn check_rules(&self, now: Instant) -> Option<RulesReload> {
        let mut guard = self.rules.lock().unwrap_or_else(|e| e.into_inner());
        let watched = guard.as_mut()?;
        if now < watched.next {
            return None;
        }
        watched.next = now + watched.every;
        // The file is read without holding the aggregator.
        let update = match watched.file.poll() {
            Ok(Some(update)) => update,
            Ok(None) => return None,
            Err(e) => {
                tracing::error!(
                    error = %e, "aggregation rules file changed but cannot be used; keeping the rules in use"
                );
                return None;
            }
        };
        let file = watched.file.path().display().to_string();
        let done = self.lock().update_rules(update);
        match done {
            RulesReload::Replaced { rules } => {
                tracing::info!(%file, rules, "re-read aggregation rules; buffers cleared")
            }
            RulesReload::SameRules => {
                tracing::debug!(%file, "aggregation rules file touched, rules unchanged")
            }
            RulesReload::Removed => {
                tracing::warn!(%file, "aggregation rules file removed: nothing to aggregate")
            }
            _ => {}
        }
        Some(done)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Aggregator> {
        self.aggregator.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Emits what is due at `now` into the inner sink; returns how many points.
    pub fn tick(&self, now: f64) -> usize {
        let due = self.lock().tick(now);
        if due.is_empty() {
            return 0;
        }
        let points: Vec<RawPoint<'_>> = due.iter().map(RawPoint::from).collect();
        self.inner.ingest(&points)
    }

    /// Output metrics with a buffer now (carbon's `allocatedBuffers`).
    pub fn buffers(&self) -> usize {
        self.lock().buffers()
    }

    /// What the aggregator counted.
    pub fn stats(&self) -> store::aggregator::AggregatorStats {
        self.lock().stats()
    }

    /// Starts the thread that calls [`AggregatingSink::tick`] (and
    /// [`AggregatingSink::check_rules`]) every second until `shutdown`.
    ///
    /// # Errors
    ///
    /// The thread could not be started.
    pub fn spawn_ticker(
        self: &Arc<Self>,
        shutdown: CancellationToken,
    ) -> std::io::Result<JoinHandle<()>> {
        let sink = Arc::clone(self);
        std::thread::Builder::new().name("aggregator".into()).spawn(move || {
            while !shutdown.is_cancelled() {
                // Wake often enough to notice the shutdown promptly.
                for _ in 0..10 {
                    if shutdown.is_cancelled() {
                        return;
                    }
                    std::thread::sleep(TICK / 10);
                }
                sink.tick(now());
                sink.check_rules(Instant::now());
            }
        })
    }
}

impl Sink for AggregatingSink {
    fn ingest(&self, points: &[RawPoint<'_>]) -> usize {
        let now = now();
        let mut passed: Vec<(Cow<'_, str>, f64, f64)> = Vec::with_capacity(points.len());
        {
            let mut aggregator = self.lock();
            for p in points {
                if let Some(name) = aggregator.push(p.name, p.timestamp, p.value, now).forward {
                    passed.push((name, p.timestamp, p.value));
                }
            }
        }
        let kept = points.len() - passed.len();
        if passed.is_empty() {
            return kept;
        }
        let raw: Vec<RawPoint<'_>> =
            passed.iter().map(|(n, t, v)| RawPoint { name: n, timestamp: *t, value: *v }).collect();
        kept + self.inner.ingest(&raw)
    }

    fn is_full(&self) -> bool {
        self.inner.is_full()
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use store::aggregator::{AggregationRules, AggregatorConfig, RulesFile};

    use super::super::MemorySink;
    use super::*;

    #[test]
    fn aggregates_and_forwards_into_the_inner_sink() {
        let rules =
            AggregationRules::parse("total (10) = sum <h>.cpu\n", Path::new("rules")).unwrap();
        let inner = Arc::new(MemorySink::new());
        let sink = AggregatingSink::new(
            Aggregator::new(rules, AggregatorConfig::default()),
            Arc::clone(&inner) as Arc<dyn Sink>,
        );
        let points = [
            RawPoint { name: "a.cpu", timestamp: 100.0, value: 1.0 },
            RawPoint { name: "b.cpu", timestamp: 105.0, value: 2.0 },
            RawPoint { name: "other", timestamp: 105.0, value: 3.0 },
        ];
        assert_eq!(sink.ingest(&points), 3);
        assert_eq!(inner.drain().len(), 3);
        assert_eq!(sink.tick(now() + 20.0), 1);
        assert_eq!(inner.drain(), [("total".to_string(), 100.0, 3.0)]);
    }

    #[test]
    fn re_reads_the_rules_file_when_due() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("aggregation-rules.conf");
        std::fs::write(&path, "total (10) = sum <h>.cpu\n").unwrap();
        let file = RulesFile::open(&path).unwrap();
        let inner = Arc::new(MemorySink::new());
        let sink = AggregatingSink::new(
            Aggregator::new(file.rules().clone(), AggregatorConfig::default()),
            Arc::clone(&inner) as Arc<dyn Sink>,
        );
        let start = Instant::now();
        sink.watch_rules(file, Duration::from_secs(10));
        std::fs::write(&path, "total (10) = sum <h>.mem\nbad line\n").unwrap();
        assert_eq!(sink.check_rules(start), None, "not due yet");
        assert_eq!(sink.check_rules(start + Duration::from_secs(11)), None, "invalid: kept");
        let t = now();
        let p = [RawPoint { name: "a.cpu", timestamp: t, value: 1.0 }];
        sink.ingest(&p);
        assert_eq!(sink.stats().unmatched, 0, "the old rule is still in use");
        std::fs::write(&path, "total (10) = sum <h>.mem\n").unwrap();
        assert_eq!(
            sink.check_rules(start + Duration::from_secs(22)),
            Some(RulesReload::Replaced { rules: 1 })
        );
        sink.ingest(&p);
        assert_eq!(sink.stats().unmatched, 1, "the new rules are in use");
    }
}
