//! What the listeners hand points to, and what answers the cache-query port.
//!
//! The listeners know nothing of the store: the binary connects them through these two small
//! traits (the store implements them; tests use in-memory ones), as go-carbon passes its
//! cache's `Add` into its receivers.

use std::sync::Mutex;

/// A received point, its name borrowed from the connection's buffer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RawPoint<'a> {
    /// The metric name, as received.
    pub name: &'a str,
    /// Seconds since the epoch, as received (carbon's receiver rules not yet applied).
    pub timestamp: f64,
    /// The value.
    pub value: f64,
}

impl<'a> From<&'a carbon_proto::Point> for RawPoint<'a> {
    /// Borrows a decoded point (pickle, statsd flush, aggregator output).
    fn from(p: &'a carbon_proto::Point) -> RawPoint<'a> {
        RawPoint {
            name: p.name.as_str(),
            timestamp: p.datapoint.timestamp,
            value: p.datapoint.value,
        }
    }
}

/// Where listeners put points.
pub trait Sink: Send + Sync + 'static {
    /// Takes a batch of points. Returns how many were accepted; the rest were refused for a
    /// reason the sink counts (NaN values, bad names, blacklisted, ...).
    fn ingest(&self, points: &[RawPoint<'_>]) -> usize;

    /// Whether the sink is full: listeners stop reading until it is not (backpressure).
    fn is_full(&self) -> bool;
}

/// What the cache-query port (7002) asks.
pub trait CacheService: Send + Sync + 'static {
    /// The points held in the cache for `metric`, one per timestamp (the last received),
    /// in the order timestamps first arrived: carbon's `cache-query` answer.
    fn cache_points(&self, metric: &str) -> Vec<(u32, f64)>;

    /// The metadata `key` of `metric` (carbon supports only `aggregationMethod`).
    ///
    /// # Errors
    ///
    /// The text carbon sends back as `{'error': ...}`.
    fn get_metadata(&self, metric: &str, key: &str) -> Result<String, String>;

    /// Sets metadata `key` of `metric` to `value`; returns the old value.
    ///
    /// # Errors
    ///
    /// The text carbon sends back as `{'error': ...}`.
    fn set_metadata(&self, metric: &str, key: &str, value: &str) -> Result<String, String>;
}

/// A sink that keeps everything in memory (tests, and a way to run listeners alone).
#[derive(Debug, Default)]
pub struct MemorySink {
    points: Mutex<Vec<(String, f64, f64)>>,
    /// Reports full while more than this many points are held (backpressure tests).
    limit: Option<usize>,
}

impl MemorySink {
    /// An unbounded sink.
    pub fn new() -> MemorySink {
        MemorySink::default()
    }

    /// A sink that reports full at `limit` points.
    pub fn with_limit(limit: usize) -> MemorySink {
        MemorySink { points: Mutex::default(), limit: Some(limit) }
    }

    /// Everything received so far.
    pub fn points(&self) -> Vec<(String, f64, f64)> {
        self.points.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Empties the sink (a test's "persister").
    pub fn drain(&self) -> Vec<(String, f64, f64)> {
        std::mem::take(&mut *self.points.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Sink for MemorySink {
    fn ingest(&self, points: &[RawPoint<'_>]) -> usize {
        let mut held = self.points.lock().unwrap_or_else(|e| e.into_inner());
        held.extend(points.iter().map(|p| (p.name.to_string(), p.timestamp, p.value)));
        points.len()
    }

    fn is_full(&self) -> bool {
        self.limit.is_some_and(|l| self.points.lock().unwrap_or_else(|e| e.into_inner()).len() >= l)
    }
}

impl CacheService for MemorySink {
    fn cache_points(&self, metric: &str) -> Vec<(u32, f64)> {
        let held = self.points.lock().unwrap_or_else(|e| e.into_inner());
        held.iter().filter(|p| p.0 == metric).map(|p| (p.1 as u32, p.2)).collect()
    }

    fn get_metadata(&self, _metric: &str, key: &str) -> Result<String, String> {
        Err(format!("Unsupported metadata key \"{key}\""))
    }

    fn set_metadata(&self, _metric: &str, key: &str, _value: &str) -> Result<String, String> {
        Err(format!("Unsupported metadata key \"{key}\""))
    }
}
