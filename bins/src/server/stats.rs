//! Counters of the listeners, for the logs and carbon's self-metrics.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Listener counters. Every field only ever grows, except `active_connections`.
#[derive(Debug, Default)]
pub struct ListenerStats {
    /// TCP connections accepted (all listeners).
    pub connections: AtomicU64,
    /// TCP connections open now.
    pub active_connections: AtomicI64,
    /// Connections refused because the connection limit was reached.
    pub refused_connections: AtomicU64,
    /// Connections closed for being idle longer than the read timeout.
    pub idle_timeouts: AtomicU64,
    /// Points decoded and handed to the sink (plaintext, UDP and pickle).
    pub points: AtomicU64,
    /// Plaintext lines skipped as malformed.
    pub bad_lines: AtomicU64,
    /// Pickle frames that did not unpickle, or were too long.
    pub bad_frames: AtomicU64,
    /// Items of good pickle frames that were not datapoints.
    pub bad_items: AtomicU64,
    /// Times a connection stopped reading because the sink was full.
    pub backpressure_waits: AtomicU64,
    /// `cache-query` requests.
    pub cache_queries: AtomicU64,
    /// `cache-query-bulk` requests.
    pub bulk_queries: AtomicU64,
    /// Metrics asked for in bulk requests.
    pub bulk_query_metrics: AtomicU64,
    /// Cache-query requests that could not be decoded.
    pub bad_queries: AtomicU64,
}

impl ListenerStats {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// A counter's value.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// Keeps `active_connections` right however a connection task ends.
pub(crate) struct ConnectionGuard<'a>(&'a ListenerStats);

impl<'a> ConnectionGuard<'a> {
    pub(crate) fn new(stats: &'a ListenerStats) -> ConnectionGuard<'a> {
        stats.connections.fetch_add(1, Ordering::Relaxed);
        stats.active_connections.fetch_add(1, Ordering::Relaxed);
        ConnectionGuard(stats)
    }
}

impl Drop for ConnectionGuard<'_> {
    fn drop(&mut self) {
        self.0.active_connections.fetch_sub(1, Ordering::Relaxed);
    }
}
