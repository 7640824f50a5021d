//! carbon-cache's self-instrumentation: `carbon.agents.<host>-<instance>.<metric>`, every
//! `CARBON_METRIC_INTERVAL` seconds, written into the store itself.
//!
//! Counters are per interval (reset after each report), as carbon's are. The names and their
//! presence rules follow carbon 1.1.7 (`avgUpdateTime` only when there were updates,
//! `pointsPerUpdate` only when points were committed, ...).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Counters the store and the server bump; read and reset once per interval.
#[derive(Debug, Default)]
pub struct Counters {
    /// Points received (before filtering), carbon's `metricsReceived`.
    pub metrics_received: AtomicU64,
    /// Points written to Whisper files.
    pub committed_points: AtomicU64,
    /// `update_many` calls.
    pub update_operations: AtomicU64,
    /// Microseconds spent in `update_many` calls.
    pub update_micros: AtomicU64,
    /// Files created.
    pub creates: AtomicU64,
    /// Creates put off for lack of a create token (carbon drops these points; we keep them).
    pub deferred_creates: AtomicU64,
    /// Metrics whose points were dropped because creates are off (`MAX_CREATES_PER_MINUTE = 0`).
    pub dropped_creates: AtomicU64,
    /// Write errors.
    pub errors: AtomicU64,
    /// Points dropped by the blacklist.
    pub blacklist_matches: AtomicU64,
    /// Points dropped because the whitelist did not match.
    pub whitelist_rejects: AtomicU64,
    /// Points with a NaN value (carbon drops them silently).
    pub nan_values: AtomicU64,
    /// Points refused for their name (unsafe path, too long for the filesystem).
    pub bad_names: AtomicU64,
    /// Points refused for their timestamp (outside what Whisper stores).
    pub bad_timestamps: AtomicU64,
    /// Points dropped because their file cannot be written at all (not Whisper, a name the
    /// store cannot map); each is logged with its path.
    pub dropped_points: AtomicU64,
    /// Points dropped because the cache was full and flow control is off
    /// (`USE_FLOW_CONTROL = False`), carbon's `cache.overflow`.
    pub overflow: AtomicU64,
    /// Times the cache reached its limit and the listeners were told to stop reading.
    pub cache_full_events: AtomicU64,
    /// Plaintext lines skipped as malformed (counted by the server's listeners).
    pub bad_lines: AtomicU64,
    /// Pickle frames or items skipped as malformed (counted by the server's listeners).
    pub bad_frames: AtomicU64,
    /// `cache-query` requests.
    pub cache_queries: AtomicU64,
    /// `cache-query-bulk` requests.
    pub bulk_queries: AtomicU64,
    /// Metrics asked for in bulk requests.
    pub bulk_query_metrics: AtomicU64,
}

impl Counters {
    /// Adds `n` to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    fn take(counter: &AtomicU64) -> u64 {
        counter.swap(0, Ordering::Relaxed)
    }
}

/// Everything reported for one interval, beyond the counters.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Gauges {
    /// Points in the cache now.
    pub(crate) cache_size: usize,
    /// Metrics with points in the cache now.
    pub(crate) cache_queues: usize,
    /// Open connections (from the server).
    pub(crate) active_connections: u64,
}

/// Builds the report of one interval.
#[derive(Debug)]
pub(crate) struct Reporter {
    prefix: String,
    last_cpu: Option<(Instant, u64)>,
}

impl Reporter {
    /// Reports under `<prefix>.agents.<host>-<instance>`, with the host's dots as `_`, as
    /// carbon names them.
    pub(crate) fn new(prefix: &str, host: &str, instance: &str) -> Reporter {
        let host = host.replace('.', "_");
        Reporter { prefix: format!("{prefix}.agents.{host}-{instance}"), last_cpu: None }
    }

    /// The metric prefix.
    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The points of one interval (and resets the counters).
    pub(crate) fn report(&mut self, c: &Counters, g: Gauges) -> Vec<(String, f64)> {
        let mut out = Vec::new();
        let mut put = |name: &str, v: f64| out.push((format!("{}.{name}", self.prefix), v));
        let updates = Counters::take(&c.update_operations);
        let committed = Counters::take(&c.committed_points);
        let micros = Counters::take(&c.update_micros);
        put("updateOperations", updates as f64);
        put("committedPoints", committed as f64);
        if updates > 0 {
            put("avgUpdateTime", micros as f64 / 1e6 / updates as f64);
        }
        if committed > 0 && updates > 0 {
            put("pointsPerUpdate", committed as f64 / updates as f64);
        }
        put("creates", Counters::take(&c.creates) as f64);
        // Only with creates off: for lack of a token, creates wait instead.
        put("droppedCreates", Counters::take(&c.dropped_creates) as f64);
        put("deferredCreates", Counters::take(&c.deferred_creates) as f64);
        put("errors", Counters::take(&c.errors) as f64);
        put("droppedPoints", Counters::take(&c.dropped_points) as f64);
        put("cache.size", g.cache_size as f64);
        put("cache.queues", g.cache_queues as f64);
        // Zero unless flow control is off: listeners stop reading when the cache is full.
        put("cache.overflow", Counters::take(&c.overflow) as f64);
        put("cache.fullEvents", Counters::take(&c.cache_full_events) as f64);
        put("cache.queries", Counters::take(&c.cache_queries) as f64);
        let bulk = Counters::take(&c.bulk_queries);
        let bulk_metrics = Counters::take(&c.bulk_query_metrics);
        put("cache.bulk_queries", bulk as f64);
        if bulk > 0 {
            put("cache.bulk_queries_average_size", bulk_metrics as f64 / bulk as f64);
        }
        put("activeConnections", g.active_connections as f64);
        put("metricsReceived", Counters::take(&c.metrics_received) as f64);
        put("blacklistMatches", Counters::take(&c.blacklist_matches) as f64);
        put("whitelistRejects", Counters::take(&c.whitelist_rejects) as f64);
        put("nanValues", Counters::take(&c.nan_values) as f64);
        put("badNames", Counters::take(&c.bad_names) as f64);
        put("badTimestamps", Counters::take(&c.bad_timestamps) as f64);
        put("invalidLines", Counters::take(&c.bad_lines) as f64);
        put("invalidFrames", Counters::take(&c.bad_frames) as f64);
        if let Some(ticks) = cpu_ticks() {
            let now = Instant::now();
            if let Some((then, before)) = self.last_cpu {
                let secs = now.duration_since(then).as_secs_f64();
                if secs > 0.0 {
                    // Linux reports CPU time in USER_HZ (100) ticks.
                    put("cpuUsage", ticks.saturating_sub(before) as f64 / 100.0 / secs * 100.0);
                }
            }
            self.last_cpu = Some((now, ticks));
        }
        if let Some(rss) = rss_bytes() {
            put("memUsage", rss as f64);
        }
        out
    }
}

/// The process's user + system CPU time in clock ticks, from `/proc/self/stat`.
fn cpu_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may contain spaces) in parentheses.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// The resident set size in bytes, from `/proc/self/status`.
pub(crate) fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// The host name as carbon's `socket.gethostname()` gives it.
pub(crate) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_carbon_and_counters_reset() {
        let c = Counters::default();
        Counters::add(&c.update_operations, 4);
        Counters::add(&c.committed_points, 40);
        Counters::add(&c.update_micros, 2000);
        let mut r = Reporter::new("carbon", "web01.example.com", "a");
        assert_eq!(r.prefix(), "carbon.agents.web01_example_com-a");
        let first = r.report(&c, Gauges { cache_size: 7, cache_queues: 2, active_connections: 1 });
        let get = |pts: &[(String, f64)], m: &str| {
            pts.iter().find(|(n, _)| n.ends_with(&format!(".{m}"))).map(|p| p.1)
        };
        assert_eq!(get(&first, "pointsPerUpdate"), Some(10.0));
        assert_eq!(get(&first, "avgUpdateTime"), Some(0.0005));
        assert_eq!(get(&first, "cache.size"), Some(7.0));
        assert!(get(&first, "memUsage").is_some());
        let second = r.report(&c, Gauges::default());
        assert_eq!(get(&second, "updateOperations"), Some(0.0));
        assert_eq!(get(&second, "pointsPerUpdate"), None, "only when points were committed");
        assert!(get(&second, "cpuUsage").is_some(), "from the second report on");
    }
}
