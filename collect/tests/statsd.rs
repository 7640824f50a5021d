//! statsd semantics checked against the reference's documented outputs.
//!
//! The table below is built from statsd/statsd's own tests (`test/process_metrics_tests.js`,
//! `test/graphite_tests.js`, `graphite_legacy_tests.js`, `graphite_tests_statssuffix.js`,
//! `graphite_tests_filters.js`, `graphite_delete_counters_tests.js`) and the examples of its
//! README and docs (`gorets:1|c|@0.1`, `gaugor:-10|g`, ...): each case is packets and a
//! configuration in, and exact names and values out. Then the whole server end to end over UDP
//! and TCP on 127.0.0.1:0, and properties of the packet path (never panics; counters add up as
//! a simple model says).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use carbon_proto::Point;
use collect::statsd::{
    Aggregator, Bin, GraphiteNames, HistogramConfig, StatsdConfig, StatsdServer,
};
use proptest::prelude::*;
use tokio_util::sync::CancellationToken;

/// The start of every table case.
const T0: u64 = 1_700_000_000;

fn at(seconds_ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(seconds_ms)
}

/// Names whose values are timings (milliseconds the flush took): present, but not compared.
fn is_timing(name: &str) -> bool {
    name.contains("calculationtime")
        || name.contains("processing_time")
        || name.contains("flush_time")
}

fn to_map(points: &[Point]) -> BTreeMap<String, f64> {
    let mut map = BTreeMap::new();
    for p in points {
        let old = map.insert(p.name.to_string(), p.datapoint.value);
        assert!(old.is_none(), "{} sent twice in one flush", p.name);
    }
    map
}

/// Feeds `packets` to a fresh aggregator started at T0, flushes after one interval; with
/// `warm`, one empty flush first (as the reference's tests see their second flush, where
/// `timestamp_lag` exists). The flush's points by name.
fn run(config: &StatsdConfig, packets: &[&str], warm: bool) -> BTreeMap<String, f64> {
    let interval = config.flush_interval_ms;
    let mut a = Aggregator::new_at(config, at(T0 * 1000)).unwrap();
    let mut now = T0 * 1000;
    if warm {
        now += interval;
        a.flush(at(now));
    }
    for p in packets {
        a.ingest(p.as_bytes());
    }
    now += interval;
    let points = a.flush(at(now));
    let ts = (now as f64 / 1000.0).round();
    assert!(points.iter().all(|p| p.datapoint.timestamp == ts), "one timestamp per flush");
    to_map(&points)
}

fn interval(ms: u64) -> StatsdConfig {
    StatsdConfig { flush_interval_ms: ms, ..StatsdConfig::default() }
}

fn configurable(ms: u64) -> StatsdConfig {
    StatsdConfig {
        flush_interval_ms: ms,
        graphite: GraphiteNames { legacy_namespace: false, ..GraphiteNames::default() },
        ..StatsdConfig::default()
    }
}

/// In a table case: any value above 0 (the byte count of the warm-up flush).
const ANY_POSITIVE: f64 = f64::INFINITY;

/// A table case: what goes in, and the values that must come out (`None`: must be absent).
struct Case {
    name: &'static str,
    config: StatsdConfig,
    packets: &'static [&'static str],
    warm: bool,
    expect: &'static [(&'static str, Option<f64>)],
}

fn histogram_config() -> StatsdConfig {
    let h =
        |metric: &str, bins: &[Bin]| HistogramConfig { metric: metric.into(), bins: bins.to_vec() };
    StatsdConfig {
        flush_interval_ms: 100,
        histogram: vec![
            h("foo", &[]),
            h("abcd", &[Bin::Below(1.0), Bin::Below(5.0), Bin::Inf]),
            h("abc", &[Bin::Below(1.0), Bin::Below(2.21), Bin::Inf]),
            h("a", &[Bin::Below(1.0), Bin::Below(2.0)]),
        ],
        ..StatsdConfig::default()
    }
}

fn cases() -> Vec<Case> {
    vec![
        // process_metrics_tests.js
        Case {
            name: "counters_has_stats_count",
            config: interval(1000),
            packets: &["a:2|c"],
            warm: false,
            expect: &[("stats_counts.a", Some(2.0)), ("stats.a", Some(2.0))],
        },
        Case {
            name: "counters_has_correct_rate",
            config: interval(100),
            packets: &["a:2|c"],
            warm: false,
            expect: &[("stats.a", Some(20.0))],
        },
        Case {
            name: "timers_single_time",
            config: interval(100),
            packets: &["a:100|ms"],
            warm: false,
            expect: &[
                ("stats.timers.a.std", Some(0.0)),
                ("stats.timers.a.upper", Some(100.0)),
                ("stats.timers.a.lower", Some(100.0)),
                ("stats.timers.a.count", Some(1.0)),
                ("stats.timers.a.count_ps", Some(10.0)),
                ("stats.timers.a.sum", Some(100.0)),
                ("stats.timers.a.sum_squares", Some(10000.0)),
                ("stats.timers.a.mean", Some(100.0)),
                ("stats.timers.a.median", Some(100.0)),
                ("stats.timers.a.count_90", Some(1.0)),
                ("stats.timers.a.mean_90", Some(100.0)),
                ("stats.timers.a.upper_90", Some(100.0)),
                ("stats.timers.a.sum_90", Some(100.0)),
                ("stats.timers.a.sum_squares_90", Some(10000.0)),
            ],
        },
        Case {
            name: "timers_multiple_times",
            config: interval(100),
            packets: &["a:100|ms", "a:200|ms", "a:300|ms"],
            warm: false,
            expect: &[
                ("stats.timers.a.std", Some(81.64965809277261)),
                ("stats.timers.a.upper", Some(300.0)),
                ("stats.timers.a.lower", Some(100.0)),
                ("stats.timers.a.count", Some(3.0)),
                ("stats.timers.a.count_ps", Some(30.0)),
                ("stats.timers.a.sum", Some(600.0)),
                ("stats.timers.a.mean", Some(200.0)),
                ("stats.timers.a.median", Some(200.0)),
            ],
        },
        Case {
            name: "timers_single_time_multiple_percentiles",
            config: StatsdConfig { percent_threshold: vec![90.0, 80.0], ..interval(100) },
            packets: &["a:100|ms"],
            warm: false,
            expect: &[
                ("stats.timers.a.mean_90", Some(100.0)),
                ("stats.timers.a.upper_90", Some(100.0)),
                ("stats.timers.a.sum_90", Some(100.0)),
                ("stats.timers.a.mean_80", Some(100.0)),
                ("stats.timers.a.upper_80", Some(100.0)),
                ("stats.timers.a.sum_80", Some(100.0)),
            ],
        },
        Case {
            name: "timers_multiple_times_multiple_percentiles",
            config: StatsdConfig { percent_threshold: vec![90.0, 80.0], ..interval(100) },
            packets: &["a:100|ms\na:200|ms\na:300|ms"],
            warm: false,
            expect: &[
                ("stats.timers.a.mean_90", Some(200.0)),
                ("stats.timers.a.upper_90", Some(300.0)),
                ("stats.timers.a.sum_90", Some(600.0)),
                ("stats.timers.a.count_90", Some(3.0)),
                ("stats.timers.a.mean_80", Some(150.0)),
                ("stats.timers.a.upper_80", Some(200.0)),
                ("stats.timers.a.sum_80", Some(300.0)),
                ("stats.timers.a.count_80", Some(2.0)),
                ("stats.timers.a.sum_squares_80", Some(50000.0)),
            ],
        },
        Case {
            // The reference sets timer_counters to 50 by hand; here sample rates make it:
            // 1/0.0625 + 1/0.03125 + 1/0.5 = 16 + 32 + 2.
            name: "timers_sampled_times",
            config: StatsdConfig { percent_threshold: vec![90.0, 80.0], ..interval(100) },
            packets: &["a:100|ms|@0.0625", "a:200|ms|@0.03125", "a:300|ms|@0.5"],
            warm: false,
            expect: &[
                ("stats.timers.a.count", Some(50.0)),
                ("stats.timers.a.count_ps", Some(500.0)),
                ("stats.timers.a.mean_90", Some(200.0)),
                ("stats.timers.a.upper_90", Some(300.0)),
                ("stats.timers.a.sum_90", Some(600.0)),
                ("stats.timers.a.mean_80", Some(150.0)),
                ("stats.timers.a.upper_80", Some(200.0)),
                ("stats.timers.a.sum_80", Some(300.0)),
            ],
        },
        Case {
            name: "timers_histogram",
            config: histogram_config(),
            packets: &[
                "a:1|ms:2|ms:3|ms:4|ms:5|ms:6|ms:7|ms:8|ms:9|ms:10|ms",
                "abc:0.1234|ms:2.89|ms:4|ms:6|ms:8|ms",
                "foo:0|ms:2|ms:4|ms:6|ms:8|ms",
                "barbazfoobar:0|ms:2|ms:4|ms:6|ms:8|ms",
                "bar.bazfoobar.abc:0|ms:2|ms:4|ms:6|ms:8|ms",
                "xyz:0|ms:2|ms:4|ms:6|ms:8|ms",
            ],
            warm: false,
            expect: &[
                ("stats.timers.a.histogram.bin_5", None),
                ("stats.timers.abc.histogram.bin_5", None),
                ("stats.timers.a.histogram.bin_1", Some(0.0)),
                ("stats.timers.a.histogram.bin_2", Some(1.0)),
                ("stats.timers.a.histogram.bin_inf", None),
                ("stats.timers.abc.histogram.bin_1", Some(1.0)),
                ("stats.timers.abc.histogram.bin_2_21", Some(0.0)),
                ("stats.timers.abc.histogram.bin_inf", Some(4.0)),
                ("stats.timers.foo.histogram.bin_1", None),
                ("stats.timers.barbazfoobar.histogram.bin_1", None),
                ("stats.timers.bar.bazfoobar.abc.histogram.bin_1", None),
                ("stats.timers.xyz.histogram.bin_1", None),
            ],
        },
        Case {
            name: "timers_single_time_single_top_percentile",
            config: StatsdConfig { percent_threshold: vec![-10.0], ..interval(100) },
            packets: &["a:100|ms"],
            warm: false,
            expect: &[
                ("stats.timers.a.mean_top10", Some(100.0)),
                ("stats.timers.a.lower_top10", Some(100.0)),
                ("stats.timers.a.sum_top10", Some(100.0)),
                ("stats.timers.a.upper_top10", None),
            ],
        },
        Case {
            name: "timers_multiple_times_single_top_percentile",
            config: StatsdConfig { percent_threshold: vec![-20.0], ..interval(100) },
            packets: &["a:10|ms:10|ms:10|ms:10|ms:10|ms:10|ms:10|ms:10|ms:100|ms:200|ms"],
            warm: false,
            expect: &[
                ("stats.timers.a.mean_top20", Some(150.0)),
                ("stats.timers.a.lower_top20", Some(100.0)),
                ("stats.timers.a.sum_top20", Some(300.0)),
                ("stats.timers.a.count_top20", Some(2.0)),
            ],
        },
        Case {
            name: "timers_multiple_times_even",
            config: interval(100),
            packets: &["a:300|ms\na:200|ms\na:400|ms\na:100|ms"],
            warm: false,
            expect: &[("stats.timers.a.median", Some(250.0))],
        },
        Case {
            name: "percentile_99_9_names",
            config: StatsdConfig { percent_threshold: vec![99.9], ..interval(1000) },
            packets: &["a:5|ms"],
            warm: false,
            expect: &[
                ("stats.timers.a.upper_99_9", Some(5.0)),
                ("stats.timers.a.count_99_9", Some(1.0)),
            ],
        },
        // graphite_tests.js (legacyNamespace: false, flushInterval 200).
        Case {
            name: "send_well_formed_posts",
            config: configurable(200),
            packets: &[],
            warm: false,
            expect: &[("stats.statsd.numStats", Some(3.0))],
        },
        Case {
            name: "send_malformed_post",
            config: configurable(200),
            packets: &["a_bad_test_value|z"],
            warm: true,
            expect: &[
                ("stats.statsd.numStats", Some(4.0)),
                ("stats.counters.statsd.bad_lines_seen.count", Some(1.0)),
                ("stats.counters.statsd.bad_lines_seen.rate", Some(5.0)),
                ("stats.counters.statsd.packets_received.count", Some(1.0)),
                ("stats.counters.statsd.metrics_received.count", Some(1.0)),
                // Flush times are rounded to seconds: 200 ms apart they are 0 s apart.
                ("stats.gauges.statsd.timestamp_lag", Some(-0.2)),
            ],
        },
        Case {
            name: "timers_are_valid",
            config: StatsdConfig {
                histogram: vec![HistogramConfig {
                    metric: "a_test_value".into(),
                    bins: vec![Bin::Below(1000.0)],
                }],
                ..configurable(200)
            },
            packets: &["a_test_value:100|ms"],
            warm: true,
            expect: &[
                ("stats.statsd.numStats", Some(5.0)),
                ("stats.timers.a_test_value.mean_90", Some(100.0)),
                ("stats.timers.a_test_value.histogram.bin_1000", Some(1.0)),
                ("stats.timers.a_test_value.count_ps", Some(5.0)),
                ("stats.timers.a_test_value.count", Some(1.0)),
            ],
        },
        Case {
            name: "sampled_timers_are_valid",
            config: configurable(200),
            packets: &["a_test_value:100|ms|@0.1"],
            warm: true,
            expect: &[
                ("stats.timers.a_test_value.count_ps", Some(50.0)),
                ("stats.timers.a_test_value.count", Some(10.0)),
            ],
        },
        Case {
            name: "counts_are_valid",
            config: configurable(200),
            packets: &["a_test_value:100|c"],
            warm: true,
            expect: &[
                ("stats.statsd.numStats", Some(5.0)),
                ("stats.counters.a_test_value.rate", Some(500.0)),
                ("stats.counters.a_test_value.count", Some(100.0)),
            ],
        },
        Case {
            name: "gauges_are_valid",
            config: configurable(200),
            packets: &["a_test_value:70|g"],
            warm: true,
            expect: &[("stats.gauges.a_test_value", Some(70.0))],
        },
        Case {
            name: "gauge_modifications_are_valid",
            config: configurable(200),
            packets: &["test_value:50|g", "test_value:-3|g"],
            warm: true,
            expect: &[("stats.gauges.test_value", Some(47.0))],
        },
        Case {
            name: "metric_names_are_sanitized",
            config: configurable(200),
            packets: &["fo/o:250|c", "b ar:250|c", "foo+bar:250|c"],
            warm: true,
            expect: &[
                ("stats.counters.fo-o.count", Some(250.0)),
                ("stats.counters.b_ar.count", Some(250.0)),
                ("stats.counters.foobar.count", Some(250.0)),
            ],
        },
        // graphite_legacy_tests.js (the default namespace).
        Case {
            name: "legacy_send_well_formed_posts",
            config: interval(200),
            packets: &[],
            warm: false,
            expect: &[("statsd.numStats", Some(3.0)), ("stats.statsd.numStats", None)],
        },
        Case {
            name: "legacy_counts_are_valid",
            config: interval(200),
            packets: &["a_test_value:100|c"],
            warm: true,
            expect: &[
                ("statsd.numStats", Some(5.0)),
                ("stats.a_test_value", Some(500.0)),
                ("stats_counts.a_test_value", Some(100.0)),
                ("stats.statsd.packets_received", Some(5.0)),
                ("stats_counts.statsd.packets_received", Some(1.0)),
            ],
        },
        Case {
            name: "legacy_timers_are_valid",
            config: interval(200),
            packets: &["a_test_value:100|ms"],
            warm: true,
            expect: &[
                ("statsd.numStats", Some(5.0)),
                ("stats.timers.a_test_value.mean_90", Some(100.0)),
            ],
        },
        Case {
            name: "legacy_flush_counts_off",
            config: StatsdConfig { flush_counts: false, ..interval(200) },
            packets: &["a:100|c"],
            warm: false,
            expect: &[("stats.a", Some(500.0)), ("stats_counts.a", None)],
        },
        // graphite_tests_statssuffix.js.
        Case {
            name: "suffix",
            config: StatsdConfig {
                graphite: GraphiteNames {
                    legacy_namespace: false,
                    global_suffix: Some("statssuffix".into()),
                    ..GraphiteNames::default()
                },
                ..interval(200)
            },
            packets: &["a_test_value:100|c", "a_bad_test_value|z", "t:100|ms"],
            warm: true,
            expect: &[
                ("stats.statsd.numStats.statssuffix", Some(6.0)),
                ("stats.counters.statsd.bad_lines_seen.count.statssuffix", Some(1.0)),
                ("stats.counters.a_test_value.rate.statssuffix", Some(500.0)),
                ("stats.counters.a_test_value.count.statssuffix", Some(100.0)),
                ("stats.timers.t.mean_90.statssuffix", Some(100.0)),
            ],
        },
        // graphite_legacy_tests_statsprefix.js / graphite_tests_statsprefix.js.
        Case {
            name: "legacy_stats_prefix",
            config: StatsdConfig { prefix_stats: "statsprefix".into(), ..interval(200) },
            packets: &["a_bad_test_value|z"],
            warm: true,
            expect: &[
                ("statsprefix.numStats", Some(4.0)),
                ("stats.statsprefix.bad_lines_seen", Some(5.0)),
                ("stats_counts.statsprefix.bad_lines_seen", Some(1.0)),
                ("stats.statsprefix.graphiteStats.flush_length", Some(ANY_POSITIVE)),
            ],
        },
        Case {
            name: "stats_prefix",
            config: StatsdConfig { prefix_stats: "statsprefix".into(), ..configurable(200) },
            packets: &["a_bad_test_value|z"],
            warm: true,
            expect: &[
                ("stats.statsprefix.numStats", Some(4.0)),
                ("stats.counters.statsprefix.bad_lines_seen.count", Some(1.0)),
                ("stats.gauges.statsprefix.timestamp_lag", Some(-0.2)),
            ],
        },
        // graphite_tests_filters.js (calculatedTimerMetrics).
        Case {
            name: "calculated_timer_metrics",
            config: StatsdConfig {
                calculated_timer_metrics: [
                    "count_ps",
                    "count",
                    "count_percent",
                    "mean_percent",
                    "histogram",
                ]
                .map(String::from)
                .to_vec(),
                histogram: vec![HistogramConfig {
                    metric: "a_test_value".into(),
                    bins: vec![Bin::Below(1000.0)],
                }],
                ..configurable(200)
            },
            packets: &["a_test_value:100|ms"],
            warm: true,
            expect: &[
                ("stats.timers.a_test_value.count_ps", Some(5.0)),
                ("stats.timers.a_test_value.count", Some(1.0)),
                ("stats.timers.a_test_value.count_90", Some(1.0)),
                ("stats.timers.a_test_value.mean_90", Some(100.0)),
                ("stats.timers.a_test_value.histogram.bin_1000", Some(1.0)),
                ("stats.timers.a_test_value.sum", None),
                ("stats.timers.a_test_value.sum_squares", None),
                ("stats.timers.a_test_value.sum_90", None),
                ("stats.timers.a_test_value.sum_squares_90", None),
                ("stats.timers.a_test_value.upper_90", None),
                ("stats.timers.a_test_value.median", None),
            ],
        },
        // The README's examples.
        Case {
            name: "readme_sampling",
            config: interval(10_000),
            packets: &["gorets:1|c|@0.1"],
            warm: false,
            expect: &[("stats_counts.gorets", Some(10.0)), ("stats.gorets", Some(1.0))],
        },
        Case {
            name: "readme_gauge_deltas",
            config: interval(10_000),
            packets: &["gaugor:333|g", "gaugor:-10|g", "gaugor:+4|g"],
            warm: false,
            expect: &[("stats.gauges.gaugor", Some(327.0))],
        },
        Case {
            name: "readme_gauge_delta_without_gauge_sets_it",
            config: interval(10_000),
            packets: &["gaugor:-10|g"],
            warm: false,
            expect: &[("stats.gauges.gaugor", Some(-10.0))],
        },
        Case {
            name: "readme_sets",
            config: interval(10_000),
            packets: &["uniques:765|s", "uniques:765|s", "uniques:766|s\nuniques:abc|s"],
            warm: false,
            expect: &[("stats.sets.uniques.count", Some(3.0))],
        },
        Case {
            name: "readme_multi_metric_packets",
            config: interval(10_000),
            packets: &["gorets:1|c\nglork:320|ms\ngaugor:333|g\nuniques:765|s", "a:1|c:2|c:3|ms"],
            warm: false,
            expect: &[
                ("stats_counts.gorets", Some(1.0)),
                ("stats.timers.glork.upper", Some(320.0)),
                ("stats.gauges.gaugor", Some(333.0)),
                ("stats.sets.uniques.count", Some(1.0)),
                ("stats_counts.a", Some(3.0)),
                ("stats.timers.a.sum", Some(3.0)),
                ("stats_counts.statsd.packets_received", Some(2.0)),
                ("stats_counts.statsd.metrics_received", Some(5.0)),
                ("statsd.numStats", Some(9.0)),
            ],
        },
        Case {
            name: "histogram_and_unknown_types_count_as_counters",
            config: interval(10_000),
            packets: &["h:5|h", "d:2|d", "k:3|kv"],
            warm: false,
            expect: &[
                ("stats_counts.h", Some(5.0)),
                ("stats_counts.d", Some(2.0)),
                ("stats_counts.k", Some(3.0)),
                ("stats.timers.h.count", None),
            ],
        },
        Case {
            name: "dogstatsd_tags_become_graphite_tags",
            config: configurable(10_000),
            packets: &["req:1|c|#env:prod,host:web01", "lat:5|ms|#env:prod", "g:2|g|#env:prod"],
            warm: false,
            expect: &[
                ("stats.counters.req.count;env=prod;host=web01", Some(1.0)),
                ("stats.timers.lat.mean;env=prod", Some(5.0)),
                ("stats.gauges.g;env=prod", Some(2.0)),
            ],
        },
    ]
}

#[test]
fn reference_outputs_table() {
    for case in cases() {
        let out = run(&case.config, case.packets, case.warm);
        for &(name, want) in case.expect {
            match want {
                Some(ANY_POSITIVE) => {
                    assert!(
                        out.get(name).is_some_and(|&x| x > 0.0),
                        "{}: {name} in {out:#?}",
                        case.name
                    )
                }
                Some(v) => assert_eq!(out.get(name), Some(&v), "{}: {name} in {out:#?}", case.name),
                None => assert!(!out.contains_key(name), "{}: {name} must be absent", case.name),
            }
        }
    }
}

/// The complete output of two flushes, name by name, in each namespace.
#[test]
fn every_name_and_value_of_a_flush() {
    let start = T0 as f64;
    let legacy = [
        ("stats.a", 0.1),
        ("stats_counts.a", 1.0),
        ("stats.statsd.bad_lines_seen", 0.0),
        ("stats_counts.statsd.bad_lines_seen", 0.0),
        ("stats.statsd.packets_received", 0.1),
        ("stats_counts.statsd.packets_received", 1.0),
        ("stats.statsd.metrics_received", 0.1),
        ("stats_counts.statsd.metrics_received", 1.0),
        ("statsd.numStats", 4.0),
        ("stats.statsd.graphiteStats.calculationtime", -1.0),
        ("stats.statsd.processing_time", -1.0),
        ("stats.statsd.graphiteStats.last_exception", start),
        ("stats.statsd.graphiteStats.last_flush", start),
        ("stats.statsd.graphiteStats.flush_time", -1.0),
        ("stats.statsd.graphiteStats.flush_length", 0.0),
    ];
    let configurable_names = [
        ("stats.counters.a.rate", 0.1),
        ("stats.counters.a.count", 1.0),
        ("stats.counters.statsd.bad_lines_seen.rate", 0.0),
        ("stats.counters.statsd.bad_lines_seen.count", 0.0),
        ("stats.counters.statsd.packets_received.rate", 0.1),
        ("stats.counters.statsd.packets_received.count", 1.0),
        ("stats.counters.statsd.metrics_received.rate", 0.1),
        ("stats.counters.statsd.metrics_received.count", 1.0),
        ("stats.statsd.numStats", 4.0),
        ("stats.statsd.graphiteStats.calculationtime", -1.0),
        ("stats.statsd.processing_time", -1.0),
        ("stats.statsd.graphiteStats.last_exception", start),
        ("stats.statsd.graphiteStats.last_flush", start),
        ("stats.statsd.graphiteStats.flush_time", -1.0),
        ("stats.statsd.graphiteStats.flush_length", 0.0),
    ];
    for (config, expected) in
        [(interval(10_000), &legacy), (configurable(10_000), &configurable_names)]
    {
        let mut a = Aggregator::new_at(&config, at(T0 * 1000)).unwrap();
        a.ingest(b"a:1|c");
        let first = to_map(&a.flush(at((T0 + 10) * 1000)));
        assert_eq!(
            first.keys().collect::<Vec<_>>(),
            expected
                .iter()
                .map(|e| e.0)
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect::<Vec<_>>()
        );
        for (name, want) in expected.iter() {
            if is_timing(name) {
                assert!(first[*name] >= 0.0);
            } else {
                assert_eq!(first[*name], *want, "{name}");
            }
        }
        // The second flush: the counter is sent as 0, timestamp_lag appears, and the
        // graphiteStats describe the first flush.
        let second = to_map(&a.flush(at((T0 + 20) * 1000)));
        let rate =
            if config.graphite.legacy_namespace { "stats.a" } else { "stats.counters.a.rate" };
        let lag = "stats.gauges.statsd.timestamp_lag";
        let num = if config.graphite.legacy_namespace {
            "statsd.numStats"
        } else {
            "stats.statsd.numStats"
        };
        assert_eq!((second[rate], second[lag], second[num]), (0.0, 0.0, 5.0));
        assert_eq!(second["stats.statsd.graphiteStats.last_flush"], start + 10.0);
        let bytes: usize = first.iter().map(|(n, v)| format!("{n} {v} {}\n", T0 + 10).len()).sum();
        assert_eq!(second["stats.statsd.graphiteStats.flush_length"], bytes as f64);
        assert_eq!(second.len(), first.len() + 1);
    }
}

#[test]
fn timestamp_lag_is_the_flush_delay_and_the_timestamp_is_rounded() {
    let mut a = Aggregator::new_at(&interval(10_000), at(T0 * 1000)).unwrap();
    let first = a.flush(at(T0 * 1000 + 10_499));
    assert_eq!(first[0].datapoint.timestamp, (T0 + 10) as f64);
    let second = to_map(&a.flush(at(T0 * 1000 + 22_500)));
    // Math.round(22.5) is 23: 23 - 10 - 10.
    assert_eq!(second["stats.gauges.statsd.timestamp_lag"], 3.0);
}

#[test]
fn delete_idle_stats_forgets_idle_keys_but_not_statsds_own() {
    let config = StatsdConfig { delete_idle_stats: true, ..interval(1000) };
    let mut a = Aggregator::new_at(&config, at(T0 * 1000)).unwrap();
    a.ingest(b"c:1|c\nt:1|ms\ng:1|g\ns:x|s");
    let first = to_map(&a.flush(at((T0 + 1) * 1000)));
    for name in ["stats.c", "stats.timers.t.count", "stats.gauges.g", "stats.sets.s.count"] {
        assert!(first.contains_key(name), "{name}");
    }
    let second = to_map(&a.flush(at((T0 + 2) * 1000)));
    for name in ["stats.c", "stats.timers.t.count", "stats.gauges.g", "stats.sets.s.count"] {
        assert!(!second.contains_key(name), "{name}");
    }
    assert_eq!(second["stats_counts.statsd.packets_received"], 0.0);
    assert_eq!(second["statsd.numStats"], 4.0, "3 own counters and timestamp_lag");
}

#[test]
fn idle_keys_are_sent_as_zero_without_delete() {
    let mut a = Aggregator::new_at(&interval(1000), at(T0 * 1000)).unwrap();
    a.ingest(b"c:1|c\nt:1|ms\ng:7|g\ns:x|s");
    a.flush(at((T0 + 1) * 1000));
    let second = to_map(&a.flush(at((T0 + 2) * 1000)));
    assert_eq!(second["stats_counts.c"], 0.0);
    assert_eq!(second["stats.timers.t.count"], 0.0);
    assert_eq!(second["stats.timers.t.count_ps"], 0.0);
    assert!(!second.contains_key("stats.timers.t.mean"));
    assert_eq!(second["stats.gauges.g"], 7.0);
    assert_eq!(second["stats.sets.s.count"], 0.0);
}

#[test]
fn gauges_max_ttl_keeps_a_gauge_for_that_many_flushes() {
    let config = StatsdConfig { delete_gauges: Some(true), gauges_max_ttl: 2, ..interval(1000) };
    let mut a = Aggregator::new_at(&config, at(T0 * 1000)).unwrap();
    a.ingest(b"g:1|g");
    let seen: Vec<bool> = (1..=3)
        .map(|i| to_map(&a.flush(at((T0 + i) * 1000))).contains_key("stats.gauges.g"))
        .collect();
    assert_eq!(seen, [true, true, false]);
}

#[test]
fn the_key_limit_drops_new_keys_only() {
    let config = StatsdConfig { max_keys: 5, ..interval(1000) };
    let mut a = Aggregator::new_at(&config, at(T0 * 1000)).unwrap();
    // Three keys are statsd's own counters: two more fit.
    a.ingest(b"k1:1|c\nk2:1|ms\nk3:1|g\nk1:1|c");
    let (now, _) = a.dropped();
    assert_eq!(now.keys, 1);
    let out = to_map(&a.flush(at((T0 + 1) * 1000)));
    assert_eq!(out["stats_counts.k1"], 2.0);
    assert!(out.contains_key("stats.timers.k2.count"));
    assert!(!out.contains_key("stats.gauges.k3"));
    assert_eq!(a.dropped().1.keys, 1);
}

#[test]
fn timers_beyond_the_sample_cap_keep_exact_sums() {
    let config = StatsdConfig { max_timer_samples: 100, ..interval(1000) };
    let mut a = Aggregator::new_at(&config, at(T0 * 1000)).unwrap();
    let mut packet = String::new();
    for v in 1..=1000 {
        packet.push_str(&format!("t:{v}|ms\n"));
    }
    a.ingest(packet.as_bytes());
    let out = to_map(&a.flush(at((T0 + 1) * 1000)));
    assert_eq!(out["stats.timers.t.count"], 1000.0);
    assert_eq!(out["stats.timers.t.sum"], 500_500.0);
    assert_eq!(out["stats.timers.t.lower"], 1.0);
    assert_eq!(out["stats.timers.t.upper"], 1000.0);
    assert_eq!(out["stats.timers.t.mean"], 500.5);
    assert_eq!(out["stats.timers.t.count_90"], 900.0);
    let std = out["stats.timers.t.std"];
    assert!((std - 288.67499025720947).abs() < 1e-6, "{std}");
    // Estimated from a uniform sample of 100: within a wide margin of the true values.
    let median = out["stats.timers.t.median"];
    assert!((200.0..800.0).contains(&median), "{median}");
    let upper_90 = out["stats.timers.t.upper_90"];
    assert!((700.0..=1000.0).contains(&upper_90), "{upper_90}");
}

#[test]
fn set_members_are_capped() {
    let config = StatsdConfig { max_set_members: 2, ..interval(1000) };
    let mut a = Aggregator::new_at(&config, at(T0 * 1000)).unwrap();
    a.ingest(b"s:a|s\ns:b|s\ns:a|s\ns:c|s");
    assert_eq!(a.dropped().0.set_members, 1);
    assert_eq!(to_map(&a.flush(at((T0 + 1) * 1000)))["stats.sets.s.count"], 2.0);
}

// The server end to end.

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn loopback(flush_ms: u64) -> StatsdConfig {
    let any = "127.0.0.1:0".parse().ok();
    StatsdConfig { udp: any, tcp: any, flush_interval_ms: flush_ms, ..StatsdConfig::default() }
}

/// Starts a server, runs `client` against it, stops it; every flush's points.
fn serve(
    config: StatsdConfig,
    client: impl FnOnce(collect::statsd::StatsdAddrs),
) -> Vec<Vec<Point>> {
    let rt = runtime();
    let server = StatsdServer::bind(&config).unwrap();
    let addrs = server.local_addrs();
    let (tx, rx) = mpsc::channel();
    let shutdown = CancellationToken::new();
    let task = rt.spawn(server.run(move |points| tx.send(points).unwrap(), shutdown.clone()));
    client(addrs);
    shutdown.cancel();
    rt.block_on(task).unwrap().unwrap();
    rx.try_iter().collect()
}

fn total(flushes: &[Vec<Point>], name: &str) -> f64 {
    flushes.iter().flatten().filter(|p| p.name.as_str() == name).map(|p| p.datapoint.value).sum()
}

#[test]
fn udp_end_to_end_with_a_last_flush_at_shutdown() {
    let flushes = serve(loopback(3_600_000), |addrs| {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = addrs.udp.unwrap();
        for _ in 0..100 {
            s.send_to(b"hits:1|c\nlat:5|ms", to).unwrap();
        }
        s.send_to(b"temp:21.5|g\nbad line", to).unwrap();
    });
    assert_eq!(flushes.len(), 1, "only the shutdown flush");
    assert_eq!(total(&flushes, "stats_counts.hits"), 100.0);
    assert_eq!(total(&flushes, "stats.timers.lat.count"), 100.0);
    assert_eq!(total(&flushes, "stats.gauges.temp"), 21.5);
    assert_eq!(total(&flushes, "stats_counts.statsd.packets_received"), 101.0);
    assert_eq!(total(&flushes, "stats_counts.statsd.bad_lines_seen"), 1.0);
}

#[test]
fn tcp_end_to_end_lines_split_across_writes() {
    let flushes = serve(loopback(3_600_000), |addrs| {
        let mut c = TcpStream::connect(addrs.tcp.unwrap()).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        c.write_all(b"a:1|c\na:2").unwrap();
        c.flush().unwrap();
        std::thread::sleep(Duration::from_millis(20));
        c.write_all(b"|c\nb:3|ms\nlast:4|c").unwrap();
        c.shutdown(std::net::Shutdown::Write).unwrap();
        // The server closes once it has read everything.
        let mut rest = Vec::new();
        let _ = c.read_to_end(&mut rest);
    });
    assert_eq!(total(&flushes, "stats_counts.a"), 3.0);
    assert_eq!(total(&flushes, "stats.timers.b.upper"), 3.0);
    assert_eq!(total(&flushes, "stats_counts.last"), 4.0, "the unterminated last line");
    assert_eq!(total(&flushes, "stats_counts.statsd.bad_lines_seen"), 0.0);
}

#[test]
fn tcp_lines_over_the_limit_cost_only_themselves() {
    let config = StatsdConfig { max_line_bytes: 100, ..loopback(3_600_000) };
    let flushes = serve(config, |addrs| {
        let mut c = TcpStream::connect(addrs.tcp.unwrap()).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let long = format!("{}:1|c", "x".repeat(5000));
        c.write_all(format!("ok:1|c\n{long}").as_bytes()).unwrap();
        c.flush().unwrap();
        std::thread::sleep(Duration::from_millis(50));
        c.write_all(b"\nok:1|c\n").unwrap();
        c.shutdown(std::net::Shutdown::Write).unwrap();
        let _ = c.read_to_end(&mut Vec::new());
    });
    assert_eq!(total(&flushes, "stats_counts.ok"), 2.0);
    assert_eq!(total(&flushes, "stats_counts.statsd.bad_lines_seen"), 1.0);
}

#[test]
fn periodic_flushes_happen() {
    let flushes = serve(loopback(50), |addrs| {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.send_to(b"x:1|c", addrs.udp.unwrap()).unwrap();
        std::thread::sleep(Duration::from_millis(400));
    });
    assert!(flushes.len() >= 2, "{} flushes", flushes.len());
    assert_eq!(total(&flushes, "stats_counts.x"), 1.0);
}

#[test]
fn start_and_stop_many_times_and_rebind_the_same_port() {
    let first = StatsdServer::bind(&loopback(1000)).unwrap();
    let addrs = first.local_addrs();
    drop(first);
    let rt = runtime();
    for _ in 0..5 {
        let config = StatsdConfig { udp: addrs.udp, tcp: addrs.tcp, ..loopback(1000) };
        let server = StatsdServer::bind(&config).unwrap();
        let shutdown = CancellationToken::new();
        let task = rt.spawn(server.run(|_| {}, shutdown.clone()));
        shutdown.cancel();
        rt.block_on(task).unwrap().unwrap();
    }
}

#[test]
fn bind_refuses_bad_settings_and_busy_ports() {
    let bad = StatsdConfig { percent_threshold: vec![0.0], ..loopback(1000) };
    assert!(matches!(StatsdServer::bind(&bad), Err(collect::statsd::Error::Config { .. })));
    let held = UdpSocket::bind("127.0.0.1:0").unwrap();
    let busy = StatsdConfig { udp: held.local_addr().ok(), tcp: None, ..loopback(1000) };
    assert!(matches!(StatsdServer::bind(&busy), Err(collect::statsd::Error::Bind { .. })));
}

// Properties of the packet path.

fn line() -> impl Strategy<Value = String> {
    let key = "[a-c]{1,2}(\\.[a-c]{1,2})?";
    let value = prop_oneof![
        "[0-9]{1,4}",
        "-[0-9]{1,3}",
        "\\+[0-9]{1,3}",
        "[0-9]\\.[0-9]{1,3}",
        "[a-z]{0,3}"
    ];
    let kind =
        prop_oneof![Just("c"), Just("ms"), Just("g"), Just("s"), Just("h"), Just("x"), Just("")];
    let rate = prop_oneof![Just(String::new()), "\\|@0\\.[0-9]{1,2}", "\\|@[a-z1]{0,2}"];
    let tags =
        prop_oneof![Just(String::new()), "\\|#[a-z]{1,3}:[a-z0-9]{0,3}(,[a-z]{1,2}:[a-z]{1,2})?"];
    (key, proptest::collection::vec((value, kind, rate), 1..4), tags).prop_map(
        |(k, parts, tags)| {
            let parts: Vec<String> =
                parts.into_iter().map(|(v, t, r)| format!("{v}|{t}{r}")).collect();
            format!("{k}:{}{tags}", parts.join(":"))
        },
    )
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(packets in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..8)) {
        for config in [interval(1000), StatsdConfig { max_keys: 4, max_timer_samples: 2, max_set_members: 1, delete_idle_stats: true, ..configurable(1000) }] {
            let mut a = Aggregator::new_at(&config, at(T0 * 1000)).unwrap();
            for p in &packets {
                a.ingest(p);
            }
            let points = a.flush(at((T0 + 1) * 1000));
            prop_assert!(!points.is_empty());
            a.flush(at((T0 + 2) * 1000));
        }
    }

    #[test]
    fn statsd_like_lines_never_panic(lines in proptest::collection::vec(line(), 0..40), pcts in proptest::collection::vec(-100.0f64..100.0, 1..3)) {
        let pcts: Vec<f64> = pcts.into_iter().filter(|p| *p != 0.0).collect();
        let config = StatsdConfig {
            percent_threshold: if pcts.is_empty() { vec![90.0] } else { pcts },
            max_timer_samples: 3,
            histogram: vec![HistogramConfig { metric: String::new(), bins: vec![Bin::Below(1.0), Bin::Inf] }],
            ..interval(1000)
        };
        let mut a = Aggregator::new_at(&config, at(T0 * 1000)).unwrap();
        a.ingest(lines.join("\n").as_bytes());
        for p in a.flush(at((T0 + 1) * 1000)) {
            prop_assert_eq!(p.datapoint.timestamp, (T0 + 1) as f64);
        }
    }

    /// Counters against a model: with rate 1, the count of a key is the sum of its values.
    #[test]
    fn counters_add_up(values in proptest::collection::vec((0usize..4, 0u32..1000), 0..60), split in 1usize..10) {
        let keys = ["k0", "k1", "k2.x", "k3"];
        let mut model = BTreeMap::new();
        let lines: Vec<String> = values.iter().map(|&(k, v)| {
            *model.entry(keys[k]).or_insert(0.0) += f64::from(v);
            format!("{}:{v}|c", keys[k])
        }).collect();
        let mut a = Aggregator::new_at(&interval(2000), at(T0 * 1000)).unwrap();
        for chunk in lines.chunks(split) {
            a.ingest(chunk.join("\n").as_bytes());
        }
        let out = to_map(&a.flush(at((T0 + 2) * 1000)));
        for (k, sum) in &model {
            prop_assert_eq!(out[&format!("stats_counts.{k}")], *sum);
            prop_assert_eq!(out[&format!("stats.{k}")], *sum / 2.0);
        }
        prop_assert_eq!(out["stats_counts.statsd.metrics_received"], lines.len() as f64);
    }
}
