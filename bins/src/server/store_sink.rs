//! The listeners' [`Sink`] and [`CacheService`] on top of a [`store::Store`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use store::{Counters, Store};

use super::{CacheService, ListenerStats, RawPoint, Sink};

/// How long a batch the log refused (a full disk) waits before the next try.
const RETRY_AFTER: Duration = Duration::from_millis(200);
/// How often a persisting log failure is logged again.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// Hands received points to the store. When the store cannot take a batch (its write-ahead
/// log cannot write: a full disk), the connection waits and retries, so its sender is held
/// back instead of points being lost; once the server is stopping, a batch that still
/// cannot be logged is dropped, counted as errors and logged.
pub struct StoreSink {
    store: Store,
    stopping: Arc<AtomicBool>,
    last_logged: std::sync::Mutex<Option<Instant>>,
}

impl StoreSink {
    /// A sink into `store`; `stopping` is set when the server shuts down.
    pub fn new(store: Store, stopping: Arc<AtomicBool>) -> StoreSink {
        StoreSink { store, stopping, last_logged: std::sync::Mutex::new(None) }
    }

    fn log_failure(&self, error: &store::Error) {
        let mut last = self.last_logged.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_none_or(|t| t.elapsed() >= LOG_EVERY) {
            *last = Some(Instant::now());
            tracing::error!(%error, "cannot log received points; holding the senders back until it can");
        }
    }
}

impl Sink for StoreSink {
    fn ingest(&self, points: &[RawPoint<'_>]) -> usize {
        loop {
            match self.store.ingest(points.iter().map(|p| (p.name, p.timestamp, p.value))) {
                Ok(n) => return n,
                Err(error) => {
                    self.log_failure(&error);
                    if self.stopping.load(Ordering::Relaxed) {
                        tracing::error!(points = points.len(), %error, "dropping points at shutdown");
                        Counters::add(&self.store.counters().errors, points.len() as u64);
                        return 0;
                    }
                    std::thread::sleep(RETRY_AFTER);
                }
            }
        }
    }

    fn is_full(&self) -> bool {
        self.store.is_full()
    }
}

impl CacheService for StoreSink {
    fn cache_points(&self, metric: &str) -> Vec<(u32, f64)> {
        self.store.cache_points(metric)
    }

    fn get_metadata(&self, metric: &str, key: &str) -> Result<String, String> {
        self.store.get_metadata(metric, key)
    }

    fn set_metadata(&self, metric: &str, key: &str, value: &str) -> Result<String, String> {
        self.store.set_metadata(metric, key, value)
    }
}

/// Copies what the listeners counted into the store's self-metrics, as deltas.
#[derive(Debug, Default)]
pub struct StatsBridge {
    last: [u64; 5],
}

impl StatsBridge {
    /// Adds what `stats` counted since the last call to `store`'s counters.
    pub fn forward(&mut self, stats: &ListenerStats, store: &Store) {
        let c = store.counters();
        let now = [
            ListenerStats::get(&stats.bad_lines),
            ListenerStats::get(&stats.bad_frames) + ListenerStats::get(&stats.bad_items),
            ListenerStats::get(&stats.cache_queries),
            ListenerStats::get(&stats.bulk_queries),
            ListenerStats::get(&stats.bulk_query_metrics),
        ];
        let targets: [&AtomicU64; 5] =
            [&c.bad_lines, &c.bad_frames, &c.cache_queries, &c.bulk_queries, &c.bulk_query_metrics];
        for ((now, last), target) in now.iter().zip(self.last.iter_mut()).zip(targets) {
            Counters::add(target, now.saturating_sub(*last));
            *last = *now;
        }
        let active = stats.active_connections.load(Ordering::Relaxed);
        store.set_active_connections(u64::try_from(active).unwrap_or(0));
    }
}
