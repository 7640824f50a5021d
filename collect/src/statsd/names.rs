//! The Graphite names statsd's `graphite` backend gives each flushed value, in the legacy
//! namespace (the default) and the configurable one.
//!
//! | what | legacy | `legacyNamespace: false` (defaults) |
//! |---|---|---|
//! | counter rate | `stats.<key>` | `stats.counters.<key>.rate` |
//! | counter count | `stats_counts.<key>` | `stats.counters.<key>.count` |
//! | timer | `stats.timers.<key>.<stat>` | `stats.timers.<key>.<stat>` |
//! | gauge | `stats.gauges.<key>` | `stats.gauges.<key>` |
//! | set | `stats.sets.<key>.count` | `stats.sets.<key>.count` |
//! | numStats | `statsd.numStats` | `stats.statsd.numStats` |
//! | calculationtime | `stats.statsd.graphiteStats.calculationtime` | the same |
//! | processing_time | `stats.statsd.processing_time` | the same |
//! | graphiteStats | `stats.statsd.graphiteStats.last_flush` ... | the same |
//!
//! The legacy namespace ignores `globalPrefix` and the type prefixes, as statsd does.
//! `globalSuffix` adds a last node to every name; a tagged key's tags (`key;env=prod`) go
//! after it. statsd appends a timer's statistic after the tags (`stats.timers.key;env=prod.mean`,
//! which Graphite reads as the tag value `prod.mean`); here the statistic goes before the
//! tags like every other name (`stats.timers.key.mean;env=prod`).

use carbon_proto::MetricName;

use super::config::StatsdConfig;
use super::error::{Error, Result};

/// The namespaces, each kept as the text that goes before a key (`stats.counters.`), so a
/// name is built with one allocation.
#[derive(Clone, Debug)]
pub(crate) struct Names {
    pub(crate) legacy: bool,
    pub(crate) flush_counts: bool,
    counter: String,
    timer: String,
    gauge: String,
    set: String,
    /// `globalNamespace` + `prefixStats` + `.`: where statsd's own metrics go.
    stats: String,
    /// `.` + `globalSuffix`, or empty.
    suffix: String,
    /// `prefixStats`, for the legacy `numStats`, `calculationtime` and `processing_time`.
    prefix_stats: String,
}

impl Names {
    pub(crate) fn new(config: &StatsdConfig) -> Result<Names> {
        let g = &config.graphite;
        let join = |nodes: &[&str]| -> String {
            let mut out = String::new();
            for n in nodes.iter().filter(|n| !n.is_empty()) {
                out.push_str(n);
                out.push('.');
            }
            out
        };
        let names = if g.legacy_namespace {
            Names {
                legacy: true,
                flush_counts: config.flush_counts,
                counter: "stats.".into(),
                timer: "stats.timers.".into(),
                gauge: "stats.gauges.".into(),
                set: "stats.sets.".into(),
                stats: join(&["stats", &config.prefix_stats]),
                suffix: String::new(),
                prefix_stats: config.prefix_stats.clone(),
            }
        } else {
            let p = g.global_prefix.as_str();
            Names {
                legacy: false,
                flush_counts: config.flush_counts,
                counter: join(&[p, &g.prefix_counter]),
                timer: join(&[p, &g.prefix_timer]),
                gauge: join(&[p, &g.prefix_gauge]),
                set: join(&[p, &g.prefix_set]),
                stats: join(&[p, &config.prefix_stats]),
                suffix: String::new(),
                prefix_stats: config.prefix_stats.clone(),
            }
        };
        let names = Names {
            suffix: g.global_suffix.as_ref().map_or_else(String::new, |s| format!(".{s}")),
            ..names
        };
        // Every name is a namespace, a key, nodes and the suffix: if these make valid names
        // with a plain key, every valid key does.
        for (key, sample) in [
            ("graphite.globalPrefix / prefixCounter", names.counter_rate("k")),
            ("graphite.prefixTimer", names.timer_stat("k", "mean")),
            ("graphite.prefixGauge", names.gauge("k")),
            ("graphite.prefixSet", names.set_count("k")),
            ("prefixStats", names.num_stats()),
            ("prefixStats", names.graphite_stat("last_flush")),
        ] {
            if let Err(e) = MetricName::new(&sample) {
                return Err(Error::config(
                    if sample.ends_with(&names.suffix) && !names.suffix.is_empty() {
                        "graphite.globalSuffix"
                    } else {
                        key
                    },
                    format!("makes the name {sample:?}: {e}"),
                ));
            }
        }
        Ok(names)
    }

    /// `namespace` + the key's metric part + `.node`s + suffix + the key's tags.
    fn build(&self, namespace: &str, key: &str, nodes: &[&str]) -> String {
        let (metric, tags) = match key.split_once(';') {
            Some((m, t)) => (m, Some(t)),
            None => (key, None),
        };
        let mut out = String::with_capacity(
            namespace.len()
                + key.len()
                + self.suffix.len()
                + nodes.iter().map(|n| n.len() + 1).sum::<usize>()
                + 1,
        );
        out.push_str(namespace);
        out.push_str(metric);
        for n in nodes {
            out.push('.');
            out.push_str(n);
        }
        out.push_str(&self.suffix);
        if let Some(t) = tags {
            out.push(';');
            out.push_str(t);
        }
        out
    }

    /// A counter's per-second rate.
    pub(crate) fn counter_rate(&self, key: &str) -> String {
        if self.legacy {
            self.build(&self.counter, key, &[])
        } else {
            self.build(&self.counter, key, &["rate"])
        }
    }

    /// A counter's count (sent when `flush_counts`).
    pub(crate) fn counter_count(&self, key: &str) -> String {
        if self.legacy {
            self.build("stats_counts.", key, &[])
        } else {
            self.build(&self.counter, key, &["count"])
        }
    }

    /// A timer statistic (`mean`, `upper_90`...).
    pub(crate) fn timer_stat(&self, key: &str, stat: &str) -> String {
        self.build(&self.timer, key, &[stat])
    }

    /// A timer's histogram bin.
    pub(crate) fn timer_bin(&self, key: &str, bin: &str) -> String {
        self.build(&self.timer, key, &["histogram", bin])
    }

    /// A gauge.
    pub(crate) fn gauge(&self, key: &str) -> String {
        self.build(&self.gauge, key, &[])
    }

    /// A set's member count.
    pub(crate) fn set_count(&self, key: &str) -> String {
        self.build(&self.set, key, &["count"])
    }

    /// `numStats`: legacy `statsd.numStats`, with no `stats.` in front (as statsd does).
    pub(crate) fn num_stats(&self) -> String {
        if self.legacy {
            format!("{}.numStats{}", self.prefix_stats, self.suffix)
        } else {
            format!("{}numStats{}", self.stats, self.suffix)
        }
    }

    /// `graphiteStats.calculationtime`.
    pub(crate) fn calculation_time(&self) -> String {
        self.self_stat("graphiteStats.calculationtime")
    }

    /// `processing_time` (statsd's only `statsd_metrics` entry).
    pub(crate) fn processing_time(&self) -> String {
        self.self_stat("processing_time")
    }

    fn self_stat(&self, node: &str) -> String {
        if self.legacy {
            format!("stats.{}.{node}{}", self.prefix_stats, self.suffix)
        } else {
            format!("{}{node}{}", self.stats, self.suffix)
        }
    }

    /// `graphiteStats.last_exception`, `last_flush`, `flush_time`, `flush_length`.
    pub(crate) fn graphite_stat(&self, stat: &str) -> String {
        format!("{}graphiteStats.{stat}{}", self.stats, self.suffix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::statsd::config::GraphiteNames;

    fn names(graphite: GraphiteNames) -> Names {
        Names::new(&StatsdConfig { graphite, ..StatsdConfig::default() }).unwrap()
    }

    #[test]
    fn legacy_names() {
        let n = names(GraphiteNames::default());
        assert_eq!(n.counter_rate("a.b"), "stats.a.b");
        assert_eq!(n.counter_count("a.b"), "stats_counts.a.b");
        assert_eq!(n.timer_stat("t", "upper_90"), "stats.timers.t.upper_90");
        assert_eq!(n.timer_bin("t", "bin_10"), "stats.timers.t.histogram.bin_10");
        assert_eq!(n.gauge("g"), "stats.gauges.g");
        assert_eq!(n.set_count("s"), "stats.sets.s.count");
        assert_eq!(n.num_stats(), "statsd.numStats");
        assert_eq!(n.calculation_time(), "stats.statsd.graphiteStats.calculationtime");
        assert_eq!(n.processing_time(), "stats.statsd.processing_time");
        assert_eq!(n.graphite_stat("flush_length"), "stats.statsd.graphiteStats.flush_length");
    }

    #[test]
    fn legacy_ignores_prefixes_but_not_the_suffix() {
        let n = names(GraphiteNames {
            global_prefix: "p".into(),
            prefix_counter: "c".into(),
            global_suffix: Some("sfx".into()),
            ..GraphiteNames::default()
        });
        assert_eq!(n.counter_rate("a"), "stats.a.sfx");
        assert_eq!(n.counter_count("a;env=prod"), "stats_counts.a.sfx;env=prod");
        assert_eq!(n.num_stats(), "statsd.numStats.sfx");
    }

    #[test]
    fn configurable_namespace() {
        let mut g = GraphiteNames { legacy_namespace: false, ..GraphiteNames::default() };
        let n = names(g.clone());
        assert_eq!(n.counter_rate("a"), "stats.counters.a.rate");
        assert_eq!(n.counter_count("a"), "stats.counters.a.count");
        assert_eq!(n.timer_stat("a;env=prod", "mean"), "stats.timers.a.mean;env=prod");
        assert_eq!(n.num_stats(), "stats.statsd.numStats");
        assert_eq!(n.calculation_time(), "stats.statsd.graphiteStats.calculationtime");
        g.global_prefix = String::new();
        g.prefix_gauge = String::new();
        g.global_suffix = Some("statssuffix".into());
        let n = names(g);
        assert_eq!(n.gauge("g"), "g.statssuffix");
        assert_eq!(n.counter_rate("a"), "counters.a.rate.statssuffix");
        assert_eq!(n.num_stats(), "statsd.numStats.statssuffix");
        assert_eq!(n.graphite_stat("last_flush"), "statsd.graphiteStats.last_flush.statssuffix");
    }

    #[test]
    fn prefixes_that_make_bad_names_are_refused() {
        for g in [
            GraphiteNames {
                legacy_namespace: false,
                global_prefix: "a..b".into(),
                ..Default::default()
            },
            GraphiteNames { global_suffix: Some(String::new()), ..Default::default() },
            GraphiteNames { global_suffix: Some("x/y".into()), ..Default::default() },
        ] {
            assert!(
                Names::new(&StatsdConfig { graphite: g.clone(), ..Default::default() }).is_err(),
                "{g:?}"
            );
        }
        let c = StatsdConfig { prefix_stats: String::new(), ..Default::default() };
        assert!(Names::new(&c).is_err());
    }
}
