//! A statsd server with statsd's semantics and Graphite names (statsd/statsd 0.9 with its
//! `graphite` backend), for the agent and for the main server.
//!
//! - [`StatsdServer`]: UDP and TCP on port 8125 (TCP: newline-terminated lines); flushes
//!   every `flushInterval` into a sink of [`Point`](carbon_proto::Point)s, and once more at
//!   shutdown.
//! - [`Aggregator`]: the state between flushes, without I/O or clock: feed it packets, flush
//!   it at a given time. Tests and benches use it directly.
//! - [`StatsdConfig`]: the settings, with statsd's `config.js` names.
//!
//! What the wire carries is decoded by [`carbon_proto::statsd::decode_packet`] (several lines
//! per packet, several `value|type` parts per line, sample rates, `keyNameSanitize`'s cleaning,
//! DogStatsD `#k:v` tags as Graphite tags `key;k=v`). Then, as statsd does:
//!
//! - **counters** (`c`, and `h`, `d` or any unknown type, as statsd counts them) add
//!   `value * (1 / rate)`; a flush sends the rate (per second of `flushInterval`) and the count,
//!   then sets them to 0: an idle counter keeps being sent as 0 unless `deleteCounters`
//!   (or `deleteIdleStats`).
//! - **timers** (`ms`) keep their values; `count` adds `1 / rate` per value. A flush sends
//!   `count`, `count_ps`, `lower`, `upper`, `mean`, `median`, `std` (population), `sum`,
//!   `sum_squares`, for each `percentThreshold` `count_N`, `mean_N`, `upper_N` (`lower_topN`
//!   for a negative N), `sum_N`, `sum_squares_N` (99.9 makes `99_9`), and `histogram.bin_X`
//!   counts where configured. An idle timer sends `count` and `count_ps` of 0.
//! - **gauges** (`g`) keep the last value (a leading sign adds to it) and are sent every flush.
//! - **sets** (`s`) send their number of distinct members, then empty.
//! - statsd's own figures: `statsd.packets_received`, `statsd.metrics_received`,
//!   `statsd.bad_lines_seen` (counters), `statsd.timestamp_lag` (a gauge, from the second
//!   flush), `numStats`, `processing_time`, `graphiteStats.*`, named as statsd names them in
//!   each namespace (see the table in the names module docs).
//!
//! The flush timestamp is the flush time rounded to whole seconds (`Math.round`).
//!
//! Bounds statsd does not have: at most `max_keys` keys (values for new keys beyond it are
//! dropped, counted, and warned about once per flush), at most `max_timer_samples` values per
//! timer per interval (exact statistics up to it, then a uniform reservoir sample for the
//! median, percentiles and bins while count, sum, lower, upper, mean and std stay exact), at
//! most `max_set_members` members per set (held as 64-bit hashes), TCP lines of at most
//! `max_line_bytes`, `max_connections` TCP connections.
//!
//! Departures from statsd, on purpose: a tagged timer's statistic goes before the tags
//! (`stats.timers.t.mean;env=prod`; statsd writes `stats.timers.t;env=prod.mean`); a
//! `percentThreshold` of -100 gives the whole sum (statsd sends NaN), and thresholds outside
//! -100..=100 or 0 are refused at start; `graphiteStats.flush_time` is the time the sink took
//! and `flush_length` the plaintext bytes of the points (there is no TCP connection per
//! flush); `last_exception` stays the start time (a sink cannot fail); key cleaning is always
//! on (`keyNameSanitize: false` would let through names Graphite cannot store); the decoder's
//! own departures are listed in [`carbon_proto::statsd`].

mod aggregate;
mod config;
mod error;
mod names;
mod server;
mod timer;

pub use aggregate::{Aggregator, Dropped};
pub use config::{Bin, DEFAULT_PORT, GraphiteNames, HistogramConfig, StatsdConfig};
pub use error::{Error, Result};
pub use server::{StatsdAddrs, StatsdServer, UDP_BATCH};
