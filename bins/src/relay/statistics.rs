//! carbon-c-relay's self-statistics (its `collector.c`), from the relay's counters: the
//! `statistics` statement's settings and the metrics of one interval.
//!
//! Names are `<prefix>.<metric>`, the prefix being `prefix with`'s replacement applied to the
//! host name matched by `^(([^.]+)(\..*)?)$` (`\1` the host name, `\2` its first label, `\3`
//! the domain with its dot; the default `carbon.relays.\.1` is `carbon.relays.` and the host
//! name with dots made underscores). Emitted, in carbon-c-relay's order:
//!
//! | metric | from | kind |
//! |---|---|---|
//! | `metricsReceived` | points given to the relay (listeners, aggregates, these metrics) | counter |
//! | `metricsBlackholed` | points no rule sent anywhere (or only to `blackhole`) | counter |
//! | `metricsDiscarded` | lines the listeners refused, and names the destinations cannot carry | counter |
//! | `destinations.<ip:port>[-udp].sent` | points written to the destination | counter |
//! | `destinations.<ip:port>[-udp].queued` | points waiting for it (memory and spool) | level |
//! | `destinations.<ip:port>[-udp].stalls` | times an input waited for room in its queue | counter |
//! | `destinations.<ip:port>[-udp].dropped` | points the destination's sender dropped | counter |
//! | `metricsSent`, `metricsQueued`, `metricStalls`, `metricsDropped` | the sums over the destinations | as above |
//! | `connections`, `disconnects` | TCP connections accepted and closed | always cumulative |
//! | `aggregators.metricsReceived`, `.metricsSent`, `.metricsDropped` | the `aggregate` statements, when there are any | counter |
//!
//! Counters are cumulative since the start, or the change over the interval with `reset
//! counters after interval`. Not emitted: the per-dispatcher metrics, the wall and sleep
//! times (`*_wallTime_us`, `dispatch_sleepTime_us`) and `destinations.internal.*`, which
//! describe carbon-c-relay's threads and internal queue and have no counterpart here.

use super::router::{ReplPart, parse_replacement, rewrite};

/// carbon-c-relay's default `prefix with`.
pub const DEFAULT_PREFIX: &str = "carbon.relays.\\.1";

/// A `statistics` statement (all of them, later ones overriding earlier settings).
#[derive(Debug, Clone, PartialEq)]
pub struct CRelayStatistics {
    /// `reset counters after interval`: counters report the change over the interval.
    pub reset: bool,
    /// `prefix with`, parsed.
    pub prefix: Vec<ReplPart>,
    /// `send to`: cluster indices the metrics go to directly; `None`: they are routed like
    /// received metrics.
    pub send_to: Option<Vec<usize>>,
}

impl Default for CRelayStatistics {
    fn default() -> CRelayStatistics {
        CRelayStatistics { reset: false, prefix: parse_replacement(DEFAULT_PREFIX), send_to: None }
    }
}

impl CRelayStatistics {
    /// The prefix for this host name (the kernel's, as `gethostname`).
    pub fn prefix_for(&self, hostname: &str) -> String {
        // The pattern is a constant: it compiles.
        let re = regex::Regex::new(r"^(([^.]+)(\..*)?)$").ok();
        re.and_then(|re| rewrite(&re, &self.prefix, hostname)).unwrap_or_else(|| {
            // Only an empty host name does not match: use the text of the prefix.
            self.prefix
                .iter()
                .filter_map(|p| match p {
                    ReplPart::Text(t) => Some(t.as_str()),
                    ReplPart::Group { .. } => None,
                })
                .collect()
        })
    }
}

/// One destination's counters, cumulative.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DestinationCounters {
    /// carbon-c-relay's name: `ip:port` with dots made underscores, `-udp` for UDP.
    pub name: String,
    /// Points written.
    pub sent: u64,
    /// Points waiting (memory and spool): a level.
    pub queued: u64,
    /// Times an input waited for room.
    pub stalls: u64,
    /// Points dropped.
    pub dropped: u64,
}

/// The relay's counters at one instant, cumulative since the start (levels for `queued`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Points given to the relay.
    pub received: u64,
    /// Points sent nowhere.
    pub blackholed: u64,
    /// Lines and points refused.
    pub discarded: u64,
    /// Per destination, in table order.
    pub destinations: Vec<DestinationCounters>,
    /// TCP connections accepted.
    pub connections: u64,
    /// TCP connections closed.
    pub disconnects: u64,
    /// `(received, sent, dropped)` of the aggregates, when there are `aggregate` statements.
    pub aggregators: Option<(u64, u64, u64)>,
}

/// Makes the metrics of each interval; holds the last snapshot for `reset counters`.
#[derive(Debug, Default)]
pub struct Collector {
    last: Option<Snapshot>,
}

impl Collector {
    /// The metrics for `now`, as `(name, value)` in carbon-c-relay's order, and remembers
    /// `now` for the next interval's changes.
    pub fn collect(
        &mut self,
        settings: &CRelayStatistics,
        prefix: &str,
        now: Snapshot,
    ) -> Vec<(String, f64)> {
        let zero = Snapshot::default();
        let base = if settings.reset { self.last.as_ref().unwrap_or(&zero) } else { &zero };
        let delta = |now: u64, then: u64| now.saturating_sub(then) as f64;
        let name = |m: &str| format!("{prefix}.{m}");
        let mut out = vec![
            (name("metricsReceived"), delta(now.received, base.received)),
            (name("metricsBlackholed"), delta(now.blackholed, base.blackholed)),
            (name("metricsDiscarded"), delta(now.discarded, base.discarded)),
        ];
        let (mut sent, mut queued, mut stalls, mut dropped) = (0.0, 0.0, 0.0, 0.0);
        for (i, d) in now.destinations.iter().enumerate() {
            let before = base.destinations.get(i).filter(|b| b.name == d.name);
            let (s, st, dr) = match before {
                Some(b) => {
                    (delta(d.sent, b.sent), delta(d.stalls, b.stalls), delta(d.dropped, b.dropped))
                }
                None => (d.sent as f64, d.stalls as f64, d.dropped as f64),
            };
            let m = |k: &str| name(&format!("destinations.{}.{k}", d.name));
            out.push((m("sent"), s));
            out.push((m("queued"), d.queued as f64));
            out.push((m("stalls"), st));
            out.push((m("dropped"), dr));
            sent += s;
            queued += d.queued as f64;
            stalls += st;
            dropped += dr;
        }
        out.push((name("metricsSent"), sent));
        out.push((name("metricsQueued"), queued));
        out.push((name("metricStalls"), stalls));
        out.push((name("metricsDropped"), dropped));
        out.push((name("connections"), now.connections as f64));
        out.push((name("disconnects"), now.disconnects as f64));
        if let Some((r, s, d)) = now.aggregators {
            let (br, bs, bd) = base.aggregators.unwrap_or_default();
            out.push((name("aggregators.metricsReceived"), delta(r, br)));
            out.push((name("aggregators.metricsSent"), delta(s, bs)));
            out.push((name("aggregators.metricsDropped"), delta(d, bd)));
        }
        self.last = Some(now);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_as_crelay_rewrites_the_host_name() {
        let s = CRelayStatistics::default();
        assert_eq!(s.prefix_for("web1.dc.example.com"), "carbon.relays.web1_dc_example_com");
        assert_eq!(s.prefix_for("vm"), "carbon.relays.vm");
        let p = |t: &str| CRelayStatistics { prefix: parse_replacement(t), ..Default::default() };
        assert_eq!(p("stats.\\_2.x").prefix_for("WEB1.dc"), "stats.web1.x");
        assert_eq!(p("a.\\3.b").prefix_for("vm"), "a..b");
        assert_eq!(p("a\\3").prefix_for("h.example.com"), "a.example.com");
        assert_eq!(p("fixed").prefix_for(""), "fixed");
    }

    fn snapshot(received: u64, sent: u64) -> Snapshot {
        Snapshot {
            received,
            blackholed: 1,
            discarded: 2,
            destinations: vec![DestinationCounters {
                name: "127_0_0_1:2003".into(),
                sent,
                queued: 5,
                stalls: 0,
                dropped: 0,
            }],
            connections: 3,
            disconnects: 1,
            aggregators: None,
        }
    }

    #[test]
    fn cumulative_by_default_and_per_interval_with_reset() {
        let cumulative = CRelayStatistics::default();
        let mut c = Collector::default();
        c.collect(&cumulative, "p", snapshot(10, 8));
        let out = c.collect(&cumulative, "p", snapshot(30, 20));
        let get = |out: &[(String, f64)], n: &str| out.iter().find(|(k, _)| k == n).unwrap().1;
        assert_eq!(get(&out, "p.metricsReceived"), 30.0);
        assert_eq!(get(&out, "p.destinations.127_0_0_1:2003.sent"), 20.0);
        assert_eq!(get(&out, "p.metricsSent"), 20.0);

        let reset = CRelayStatistics { reset: true, ..Default::default() };
        let mut c = Collector::default();
        c.collect(&reset, "p", snapshot(10, 8));
        let out = c.collect(&reset, "p", snapshot(30, 20));
        assert_eq!(get(&out, "p.metricsReceived"), 20.0);
        assert_eq!(get(&out, "p.metricsSent"), 12.0);
        assert_eq!(get(&out, "p.metricsBlackholed"), 0.0);
        assert_eq!(get(&out, "p.metricsQueued"), 5.0, "a level");
        assert_eq!(get(&out, "p.connections"), 3.0, "always cumulative");
        let names: Vec<&str> = out.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "p.metricsReceived",
                "p.metricsBlackholed",
                "p.metricsDiscarded",
                "p.destinations.127_0_0_1:2003.sent",
                "p.destinations.127_0_0_1:2003.queued",
                "p.destinations.127_0_0_1:2003.stalls",
                "p.destinations.127_0_0_1:2003.dropped",
                "p.metricsSent",
                "p.metricsQueued",
                "p.metricStalls",
                "p.metricsDropped",
                "p.connections",
                "p.disconnects",
            ]
        );
    }
}
