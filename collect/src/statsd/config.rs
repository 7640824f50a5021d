//! [`StatsdConfig`]: the server's settings, named after statsd's `config.js` keys (each field
//! also accepts the camelCase spelling statsd uses), and their checked, resolved form.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use serde::Deserialize;

use super::error::{Error, Result};
use super::names::Names;

/// statsd's port, for UDP and TCP.
pub const DEFAULT_PORT: u16 = 8125;

/// The statsd server's settings.
///
/// Every field has statsd's default where statsd has the setting; the bounds
/// (`max_keys`, `max_timer_samples`, ...) are ours: statsd keeps everything it is sent.
///
/// ```
/// let config: collect::statsd::StatsdConfig = serde_json::from_str(r#"{
///     "flushInterval": 1000,
///     "percentThreshold": [90, 99.9],
///     "graphite": { "legacyNamespace": false, "globalSuffix": "web01" }
/// }"#).unwrap();
/// assert_eq!(config.flush_interval_ms, 1000);
/// assert_eq!(config.percent_threshold, [90.0, 99.9]);
/// ```
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct StatsdConfig {
    /// Where to receive UDP datagrams (statsd's `address` and `port`). Default
    /// `0.0.0.0:8125`; `None` turns UDP off.
    pub udp: Option<SocketAddr>,
    /// Where to accept TCP connections carrying newline-terminated lines (statsd's
    /// `servers: [{server: "./servers/tcp"}]`). Default `0.0.0.0:8125`; `None` turns TCP off.
    pub tcp: Option<SocketAddr>,
    /// Milliseconds between flushes (`flushInterval`, default 10000). Counter rates and
    /// `count_ps` divide by it.
    #[serde(alias = "flushInterval")]
    pub flush_interval_ms: u64,
    /// Timer percentiles (`percentThreshold`, default `[90]`; a single number is allowed).
    /// A negative one gives the top percent (`-10` makes `mean_top10`, `lower_top10`...).
    /// Each must be non-zero and within -100..=100.
    #[serde(alias = "percentThreshold", deserialize_with = "one_or_many")]
    pub percent_threshold: Vec<f64>,
    /// Histogram bins for timers (`histogram`): the first entry whose `metric` occurs in a
    /// timer's key gives its bins. Default none.
    pub histogram: Vec<HistogramConfig>,
    /// Which timer statistics to send (`calculatedTimerMetrics`): `count`, `count_ps`,
    /// `lower`, `upper`, `mean`, `median`, `std`, `sum`, `sum_squares`, `histogram`, and
    /// `<stat>_percent` for the per-percentile ones (`mean_percent`, `upper_percent`...).
    /// Empty (the default) sends all.
    #[serde(alias = "calculatedTimerMetrics")]
    pub calculated_timer_metrics: Vec<String>,
    /// Sets the defaults of the four `delete_*` settings to true (`deleteIdleStats`,
    /// default false).
    #[serde(alias = "deleteIdleStats")]
    pub delete_idle_stats: bool,
    /// Forget a counter after each flush instead of sending 0 when it was not updated
    /// (`deleteCounters`; default `delete_idle_stats`). statsd's own counters stay.
    #[serde(alias = "deleteCounters")]
    pub delete_counters: Option<bool>,
    /// Forget a timer after each flush (`deleteTimers`; default `delete_idle_stats`).
    #[serde(alias = "deleteTimers")]
    pub delete_timers: Option<bool>,
    /// Forget a set after each flush (`deleteSets`; default `delete_idle_stats`).
    #[serde(alias = "deleteSets")]
    pub delete_sets: Option<bool>,
    /// Forget a gauge `gauges_max_ttl` flushes after its last update (`deleteGauges`;
    /// default `delete_idle_stats`). Otherwise gauges are sent every flush forever.
    #[serde(alias = "deleteGauges")]
    pub delete_gauges: Option<bool>,
    /// Flushes a gauge is still sent after its last update when `delete_gauges` is on
    /// (`gaugesMaxTTL`, default 1; values below 1 count as 1, as in statsd).
    #[serde(alias = "gaugesMaxTTL", alias = "gauges_max_TTL")]
    pub gauges_max_ttl: u32,
    /// The node under which statsd reports on itself (`prefixStats`, default `statsd`).
    #[serde(alias = "prefixStats")]
    pub prefix_stats: String,
    /// Whether counters also send their raw count (`flush_counts`, default true):
    /// `stats_counts.<key>` (legacy) or `<prefix>.<key>.count`.
    pub flush_counts: bool,
    /// The Graphite names (statsd's `graphite` section).
    pub graphite: GraphiteNames,
    /// Distinct keys held at most, all types together (default 100000). A packet for a new
    /// key beyond it is dropped and counted; a warning names the count once per flush.
    pub max_keys: usize,
    /// Timer values kept per key per flush interval (default 1000). Up to it, every
    /// statistic is exact, as in statsd. Beyond it the kept values are a uniform random
    /// sample of all (reservoir sampling): `count`, `count_ps`, `lower`, `upper`, `sum`,
    /// `sum_squares`, `mean` and `std` stay exact (running sums), `count_<p>` too; the
    /// median, the other percentile statistics and histogram bins are estimated from the
    /// sample.
    pub max_timer_samples: usize,
    /// Distinct members kept per set per flush interval (default 100000); more are dropped
    /// and counted. Members are held as 64-bit hashes.
    pub max_set_members: usize,
    /// Most bytes of an unfinished TCP line held while waiting for its newline (default
    /// 65536); a line that grows beyond it is dropped up to its newline and counted as a bad
    /// line. (A long line that arrives whole in one read is taken.)
    pub max_line_bytes: usize,
    /// Open TCP connections at most (default 1024); beyond it new ones wait.
    pub max_connections: usize,
    /// Close a TCP connection idle for this many seconds (default 300; 0 never).
    pub idle_timeout_secs: u64,
    /// The UDP receive buffer to ask the kernel for (SO_RCVBUF, default 8 MiB; 0 leaves
    /// the system default). Linux caps it at `net.core.rmem_max`.
    pub udp_receive_buffer_bytes: usize,
}

impl Default for StatsdConfig {
    fn default() -> StatsdConfig {
        let any = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), DEFAULT_PORT);
        StatsdConfig {
            udp: Some(any),
            tcp: Some(any),
            flush_interval_ms: 10_000,
            percent_threshold: vec![90.0],
            histogram: Vec::new(),
            calculated_timer_metrics: Vec::new(),
            delete_idle_stats: false,
            delete_counters: None,
            delete_timers: None,
            delete_sets: None,
            delete_gauges: None,
            gauges_max_ttl: 1,
            prefix_stats: "statsd".into(),
            flush_counts: true,
            graphite: GraphiteNames::default(),
            max_keys: 100_000,
            max_timer_samples: 1_000,
            max_set_members: 100_000,
            max_line_bytes: 64 * 1024,
            max_connections: 1024,
            idle_timeout_secs: 300,
            udp_receive_buffer_bytes: 8 << 20,
        }
    }
}

impl StatsdConfig {
    /// Checks the settings as [`StatsdServer::bind`](super::StatsdServer::bind) does, without
    /// binding anything (a configuration file is checked before it is used).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the setting (statsd's spelling) that cannot be used.
    pub fn validate(&self) -> Result<()> {
        Settings::new(self).map(drop)
    }
}

/// statsd's `graphite` section: how flushed names are built.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct GraphiteNames {
    /// The legacy names (`legacyNamespace`, default true): `stats.<key>` and
    /// `stats_counts.<key>` for counters, `stats.timers.`, `stats.gauges.`, `stats.sets.`;
    /// the prefixes below are then ignored, as in statsd.
    #[serde(alias = "legacyNamespace")]
    pub legacy_namespace: bool,
    /// First node of every name outside the legacy namespace (`globalPrefix`, default
    /// `stats`; empty for none).
    #[serde(alias = "globalPrefix")]
    pub global_prefix: String,
    /// Node for counters (`prefixCounter`, default `counters`; empty for none).
    #[serde(alias = "prefixCounter")]
    pub prefix_counter: String,
    /// Node for timers (`prefixTimer`, default `timers`).
    #[serde(alias = "prefixTimer")]
    pub prefix_timer: String,
    /// Node for gauges (`prefixGauge`, default `gauges`).
    #[serde(alias = "prefixGauge")]
    pub prefix_gauge: String,
    /// Node for sets (`prefixSet`, default `sets`).
    #[serde(alias = "prefixSet")]
    pub prefix_set: String,
    /// A last node added to every name (`globalSuffix`, default none), before any tags.
    #[serde(alias = "globalSuffix")]
    pub global_suffix: Option<String>,
}

impl Default for GraphiteNames {
    fn default() -> GraphiteNames {
        GraphiteNames {
            legacy_namespace: true,
            global_prefix: "stats".into(),
            prefix_counter: "counters".into(),
            prefix_timer: "timers".into(),
            prefix_gauge: "gauges".into(),
            prefix_set: "sets".into(),
            global_suffix: None,
        }
    }
}

/// One entry of statsd's `histogram` list.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HistogramConfig {
    /// A timer whose key contains this text gets these bins (empty matches every timer).
    pub metric: String,
    /// Upper bounds, increasing; each bin counts the values below its bound and above the
    /// previous one. `"inf"` catches the rest; without it, larger values are not counted.
    pub bins: Vec<Bin>,
}

/// A histogram bin's upper bound: a number, or `"inf"` in the config.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Bin {
    /// Values below this (and not in an earlier bin).
    Below(f64),
    /// `"inf"`: every value left.
    Inf,
}

impl<'de> Deserialize<'de> for Bin {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Bin, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(f64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Number(v) => Ok(Bin::Below(v)),
            Raw::Text(t) if t == "inf" => Ok(Bin::Inf),
            Raw::Text(t) => {
                Err(serde::de::Error::custom(format!("bin {t:?}: expected a number or \"inf\"")))
            }
        }
    }
}

fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Vec<f64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(f64),
        Many(Vec<f64>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(v) => vec![v],
        OneOrMany::Many(v) => v,
    })
}

/// A percentile threshold with its names worked out once.
#[derive(Clone, Debug)]
pub(crate) struct Percentile {
    /// The threshold; negative for the top percent.
    pub(crate) pct: f64,
    /// `count_90`, `mean_90`, `upper_90` (`lower_top10`), `sum_90`, `sum_squares_90`, each
    /// with whether `calculated_timer_metrics` lets it through.
    pub(crate) stats: [(String, bool); 5],
}

/// The timer statistics other than the percentiles, in the order statsd sends them.
pub(crate) const TIMER_STATS: [&str; 9] =
    ["std", "upper", "lower", "count", "count_ps", "sum", "sum_squares", "mean", "median"];

/// The settings checked and resolved: what the aggregator and the server use.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub(crate) flush_interval: Duration,
    /// The flush interval in seconds, as statsd divides by it (`flushInterval / 1000`).
    pub(crate) interval_secs: f64,
    pub(crate) percentiles: Vec<Percentile>,
    /// Whether each of [`TIMER_STATS`] is sent.
    pub(crate) timer_stats: [bool; 9],
    pub(crate) send_histogram: bool,
    pub(crate) histogram: Vec<HistogramConfig>,
    /// Bin names (`bin_10`, `bin_2_21`, `bin_inf`), parallel to `histogram`.
    pub(crate) bin_names: Vec<Vec<String>>,
    pub(crate) delete_counters: bool,
    pub(crate) delete_timers: bool,
    pub(crate) delete_sets: bool,
    pub(crate) delete_gauges: bool,
    pub(crate) gauges_max_ttl: u32,
    pub(crate) names: Names,
    pub(crate) max_keys: usize,
    pub(crate) max_timer_samples: usize,
    pub(crate) max_set_members: usize,
}

impl Settings {
    pub(crate) fn new(config: &StatsdConfig) -> Result<Settings> {
        if config.flush_interval_ms == 0 {
            return Err(Error::config("flushInterval", "must be at least 1 millisecond"));
        }
        let filter = |name: &str| {
            config.calculated_timer_metrics.is_empty()
                || config.calculated_timer_metrics.iter().any(|m| *m == filter_key(name))
        };
        let mut percentiles = Vec::new();
        for &pct in &config.percent_threshold {
            if !pct.is_finite() || pct == 0.0 || pct.abs() > 100.0 {
                return Err(Error::config(
                    "percentThreshold",
                    format!("{pct} is not a non-zero number within -100..=100"),
                ));
            }
            let clean = js_number_string(pct).replacen('.', "_", 1).replacen('-', "top", 1);
            let bound = if pct > 0.0 { "upper" } else { "lower" };
            let stats = ["count", "mean", bound, "sum", "sum_squares"].map(|s| {
                let name = format!("{s}_{clean}");
                let on = filter(&name);
                (name, on)
            });
            percentiles.push(Percentile { pct, stats });
        }
        let timer_stats = TIMER_STATS.map(filter);
        let mut bin_names = Vec::new();
        for h in &config.histogram {
            let mut last = f64::NEG_INFINITY;
            for bin in &h.bins {
                if let Bin::Below(v) = *bin {
                    if v.is_nan() || v <= last {
                        return Err(Error::config(
                            "histogram",
                            format!("bins of {:?} must be increasing numbers", h.metric),
                        ));
                    }
                    last = v;
                }
            }
            bin_names.push(
                h.bins
                    .iter()
                    .map(|b| match b {
                        Bin::Below(v) => {
                            format!("bin_{}", js_number_string(*v).replacen('.', "_", 1))
                        }
                        Bin::Inf => "bin_inf".to_string(),
                    })
                    .collect(),
            );
        }
        let delete = |v: Option<bool>| v.unwrap_or(config.delete_idle_stats);
        let names = Names::new(config)?;
        Ok(Settings {
            flush_interval: Duration::from_millis(config.flush_interval_ms),
            interval_secs: config.flush_interval_ms as f64 / 1000.0,
            percentiles,
            timer_stats,
            send_histogram: filter("histogram"),
            histogram: config.histogram.clone(),
            bin_names,
            delete_counters: delete(config.delete_counters),
            delete_timers: delete(config.delete_timers),
            delete_sets: delete(config.delete_sets),
            delete_gauges: delete(config.delete_gauges),
            gauges_max_ttl: config.gauges_max_ttl.max(1),
            names,
            max_keys: config.max_keys,
            max_timer_samples: config.max_timer_samples.max(1),
            max_set_members: config.max_set_members,
        })
    }
}

/// What `calculatedTimerMetrics` matches a statistic's name against: statsd replaces a
/// trailing `_<digits>` or `_top<digits>` by `_percent` (so `count_90` and `mean_top10`
/// become `count_percent` and `mean_percent`; `mean_99_9` becomes `mean_99_percent`, which
/// no filter names, as in statsd).
pub(crate) fn filter_key(name: &str) -> String {
    let digits = name.bytes().rev().take_while(u8::is_ascii_digit).count();
    if digits > 0 {
        let head = &name[..name.len() - digits];
        if let Some(base) = head.strip_suffix("_top").or_else(|| head.strip_suffix('_')) {
            return format!("{base}_percent");
        }
    }
    name.to_string()
}

/// A number as JavaScript's `String(n)` writes it, for the ordinary magnitudes configuration
/// uses (Rust's shortest round-trip digits agree with JavaScript's below 1e21).
pub(crate) fn js_number_string(v: f64) -> String {
    if v == v.trunc() && v.abs() < 1e21 { format!("{}", v as i128) } else { format!("{v}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn camel_case_keys_and_defaults() {
        let c: StatsdConfig = serde_json::from_str(
            r#"{"flushInterval": 200, "percentThreshold": 95, "deleteIdleStats": true,
                "deleteGauges": false, "gaugesMaxTTL": 3, "prefixStats": "sd",
                "histogram": [{"metric": "a", "bins": [1, 2.5, "inf"]}],
                "graphite": {"legacyNamespace": false, "globalPrefix": ""}}"#,
        )
        .unwrap();
        assert_eq!(c.flush_interval_ms, 200);
        assert_eq!(c.percent_threshold, [95.0]);
        assert_eq!(c.histogram[0].bins, [Bin::Below(1.0), Bin::Below(2.5), Bin::Inf]);
        let s = Settings::new(&c).unwrap();
        assert!(s.delete_counters && s.delete_timers && s.delete_sets && !s.delete_gauges);
        assert_eq!(s.bin_names[0], ["bin_1", "bin_2_5", "bin_inf"]);
        assert_eq!(s.gauges_max_ttl, 3);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        assert!(serde_json::from_str::<StatsdConfig>(r#"{"flushIntervall": 1}"#).is_err());
        assert!(
            serde_json::from_str::<StatsdConfig>(
                r#"{"histogram": [{"metric": "a", "bins": ["x"]}]}"#
            )
            .is_err()
        );
        for pct in [0.0, 101.0, -100.5, f64::NAN] {
            let c = StatsdConfig { percent_threshold: vec![pct], ..StatsdConfig::default() };
            assert!(Settings::new(&c).is_err(), "{pct}");
        }
        let c = StatsdConfig { flush_interval_ms: 0, ..StatsdConfig::default() };
        assert!(Settings::new(&c).is_err());
    }

    #[test]
    fn percentile_names() {
        let c = StatsdConfig { percent_threshold: vec![90.0, 99.9, -10.0], ..Default::default() };
        let s = Settings::new(&c).unwrap();
        let names: Vec<Vec<&str>> = s
            .percentiles
            .iter()
            .map(|p| p.stats.iter().map(|(n, _)| n.as_str()).collect())
            .collect();
        assert_eq!(names[0], ["count_90", "mean_90", "upper_90", "sum_90", "sum_squares_90"]);
        assert_eq!(names[1][2], "upper_99_9");
        assert_eq!(
            names[2],
            ["count_top10", "mean_top10", "lower_top10", "sum_top10", "sum_squares_top10"]
        );
    }

    #[test]
    fn filter_keys_as_statsd_cleans_them() {
        assert_eq!(filter_key("count_90"), "count_percent");
        assert_eq!(filter_key("lower_top10"), "lower_percent");
        assert_eq!(filter_key("sum_squares_90"), "sum_squares_percent");
        assert_eq!(filter_key("mean_99_9"), "mean_99_percent");
        assert_eq!(filter_key("count_ps"), "count_ps");
        assert_eq!(filter_key("x9"), "x9");
    }

    #[test]
    fn numbers_print_as_javascript_does() {
        assert_eq!(js_number_string(90.0), "90");
        assert_eq!(js_number_string(99.9), "99.9");
        assert_eq!(js_number_string(-10.0), "-10");
        assert_eq!(js_number_string(2.21), "2.21");
        assert_eq!(js_number_string(0.5), "0.5");
    }
}
