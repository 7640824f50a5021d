//! The buffers: carbon's `BufferManager`, `MetricBuffer` and `IntervalBuffer`, driven by the
//! caller's clock instead of Twisted's reactor.

use std::borrow::Cow;
use std::collections::HashMap;

use carbon_proto::{MetricName, Point};

use super::rules::{AggregationRules, Method};
use crate::config::RewriteRules;

/// carbon's `MAX_AGGREGATION_INTERVALS`.
pub const DEFAULT_MAX_AGGREGATION_INTERVALS: u32 = 5;
/// Interval buffers held at most, over all output metrics, by default.
pub const DEFAULT_MAX_INTERVALS: usize = 1_000_000;
/// Values one interval of a percentile rule holds at most, by default.
pub const DEFAULT_MAX_VALUES_PER_INTERVAL: usize = 100_000;

/// How an [`Aggregator`] behaves: carbon.conf's `[aggregator]` settings and the memory caps.
#[derive(Debug, Clone)]
pub struct AggregatorConfig {
    /// `FORWARD_ALL` (carbon's default `True`): every received point is passed on too, unless
    /// its name is one of the outputs it was aggregated into.
    pub forward_all: bool,
    /// `MAX_AGGREGATION_INTERVALS`: an interval is dropped once it is older than this many
    /// intervals before the current one (after its last value was emitted).
    pub max_aggregation_intervals: u32,
    /// `WRITE_BACK_FREQUENCY`: when set, buffers are computed every `min(this, frequency)`
    /// seconds instead of every `frequency`.
    pub write_back_frequency: Option<u32>,
    /// `rewrite-rules.conf`: `[pre]` applies to received names before aggregation, `[post]`
    /// to the points passed on (not to the aggregated ones: carbon's generated points skip it).
    pub rewrite: Option<RewriteRules>,
    /// Interval buffers held at most over all output metrics; a point that would need one
    /// more is dropped and counted (carbon has no cap).
    pub max_intervals: usize,
    /// Values held at most by one interval of a percentile rule; later ones are dropped and
    /// counted (the other methods keep a running total, not the values).
    pub max_values_per_interval: usize,
}

impl Default for AggregatorConfig {
    fn default() -> AggregatorConfig {
        AggregatorConfig {
            forward_all: true,
            max_aggregation_intervals: DEFAULT_MAX_AGGREGATION_INTERVALS,
            write_back_frequency: None,
            rewrite: None,
            max_intervals: DEFAULT_MAX_INTERVALS,
            max_values_per_interval: DEFAULT_MAX_VALUES_PER_INTERVAL,
        }
    }
}

/// What the aggregator counted since it was made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AggregatorStats {
    /// Points pushed.
    pub received: u64,
    /// Points that matched no rule.
    pub unmatched: u64,
    /// Aggregated points produced by [`Aggregator::tick`] (carbon's `aggregateDatapointsSent`).
    pub aggregated: u64,
    /// Values not buffered because of [`AggregatorConfig::max_intervals`] or
    /// [`AggregatorConfig::max_values_per_interval`].
    pub dropped: u64,
    /// Values whose timestamp or frequency makes no interval (a NaN or infinite timestamp).
    pub bad_timestamps: u64,
    /// Aggregated points not produced because their name is not a valid metric name.
    pub bad_names: u64,
}

/// What became of one pushed point.
#[derive(Debug, Clone, PartialEq)]
pub struct Pushed<'a> {
    /// How many rules matched it (a point goes into one buffer per matching rule).
    pub matched: usize,
    /// The name to pass the point on under, when it is passed on (`FORWARD_ALL`): the
    /// received name after the `[pre]` and `[post]` rewrite rules.
    pub forward: Option<Cow<'a, str>>,
}

/// The running state of one interval.
#[derive(Debug)]
struct IntervalBuffer {
    interval: f64,
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
    last: f64,
    /// Only for the percentiles.
    values: Vec<f64>,
    active: bool,
}

impl IntervalBuffer {
    fn new(interval: f64) -> IntervalBuffer {
        IntervalBuffer {
            interval,
            count: 0,
            sum: 0.0,
            min: f64::NAN,
            max: f64::NAN,
            last: f64::NAN,
            values: Vec::new(),
            active: true,
        }
    }

    /// Adds a value; false if it was dropped (the cap).
    fn input(&mut self, value: f64, method: Method, cap: usize) -> bool {
        if method.keeps_values() {
            if self.values.len() >= cap {
                return false;
            }
            self.values.push(value);
        }
        if self.count == 0 {
            self.min = value;
            self.max = value;
        } else {
            // Python's min() and max(): replace when strictly smaller (greater).
            if value < self.min {
                self.min = value;
            }
            if value > self.max {
                self.max = value;
            }
        }
        // Python's sum(): an int 0 plus each value in turn, which for floats is this.
        self.sum += value;
        self.last = value;
        self.count += 1;
        self.active = true;
        true
    }

    fn value(&mut self, method: Method) -> f64 {
        match method {
            Method::Sum => self.sum,
            Method::Avg => self.sum / self.count as f64,
            Method::Min => self.min,
            Method::Max => self.max,
            Method::Count => self.count as f64,
            Method::Last => self.last,
            Method::Percentile(factor) => percentile(&mut self.values, factor),
        }
    }
}

/// carbon's `percentile(factor)` on the values (sorted in place).
fn percentile(values: &mut [f64], factor: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let rank = factor * (values.len() - 1) as f64;
    let left = rank.floor();
    let right = rank.ceil();
    let at = |r: f64| values.get(r as usize).copied().unwrap_or(f64::NAN);
    if left == right { at(left) } else { at(left) * (right - rank) + at(right) * (rank - left) }
}

/// carbon's `MetricBuffer`: one output metric, configured by the first rule that made it.
#[derive(Debug)]
struct MetricBuffer {
    frequency: u32,
    method: Method,
    /// When its timer started, and its period (`LoopingCall(compute_value)`).
    started: f64,
    period: f64,
    next_due: f64,
    /// By the interval's start (its bits, `-0.0` taken as `0.0`, as Python's dict does).
    intervals: HashMap<u64, IntervalBuffer>,
}

impl MetricBuffer {
    /// The next firing of a timer started at `started` with `period`, strictly after `now`
    /// (Twisted's `LoopingCall._scheduleFrom`: missed calls are skipped).
    fn schedule_after(&mut self, now: f64) {
        let running = (now - self.started).max(0.0);
        let n = (running / self.period).floor() + 1.0;
        self.next_due = self.started + n * self.period;
    }
}

/// carbon-aggregator's engine: rules match received points into per-output buffers, and
/// [`Aggregator::tick`] emits each interval's aggregate when its buffer's timer fires.
///
/// Time is the caller's: `now` is seconds since the epoch (what `time.time()` says in carbon).
/// The server calls `tick` about once a second; a test can drive it with any clock.
///
/// ```
/// use store::aggregator::{AggregationRules, Aggregator, AggregatorConfig};
/// use std::path::Path;
///
/// let rules = AggregationRules::parse("all.requests (60) = sum <host>.requests\n", Path::new("rules"))?;
/// let mut agg = Aggregator::new(rules, AggregatorConfig::default());
/// let pushed = agg.push("web1.requests", 1_000_020.0, 3.0, 1_000_030.0);
/// assert_eq!(pushed.matched, 1);
/// assert_eq!(pushed.forward.as_deref(), Some("web1.requests")); // FORWARD_ALL
/// agg.push("web2.requests", 1_000_030.0, 4.0, 1_000_031.0);
/// assert!(agg.tick(1_000_060.0).is_empty()); // the buffer's timer fires 60 s after its first point
/// let out = agg.tick(1_000_090.0);
/// assert_eq!(out.len(), 1);
/// assert_eq!((out[0].name.as_str(), out[0].datapoint.timestamp, out[0].datapoint.value), ("all.requests", 1_000_020.0, 7.0));
/// # Ok::<(), store::aggregator::RulesError>(())
/// ```
#[derive(Debug)]
pub struct Aggregator {
    rules: AggregationRules,
    config: AggregatorConfig,
    buffers: HashMap<String, MetricBuffer>,
    intervals: usize,
    stats: AggregatorStats,
    /// What was dropped at the last warning, to log each new drop once per tick.
    warned_dropped: u64,
}

impl Aggregator {
    /// An aggregator with these rules.
    pub fn new(rules: AggregationRules, config: AggregatorConfig) -> Aggregator {
        Aggregator {
            rules,
            config,
            buffers: HashMap::new(),
            intervals: 0,
            stats: AggregatorStats::default(),
            warned_dropped: 0,
        }
    }

    /// The rules.
    pub fn rules(&self) -> &AggregationRules {
        &self.rules
    }

    /// Replaces the rules and clears every buffer, as carbon does when the file changes.
    pub fn set_rules(&mut self, rules: AggregationRules) {
        self.rules = rules;
        self.buffers.clear();
        self.intervals = 0;
    }

    /// Replaces the rules and keeps the buffers (they are emitted when due, then dropped):
    /// what carbon does when the rules file disappears.
    pub(crate) fn replace_rules_keeping_buffers(&mut self, rules: AggregationRules) {
        self.rules = rules;
    }

    /// What was counted so far.
    pub fn stats(&self) -> AggregatorStats {
        self.stats
    }

    /// Output metrics with a buffer now.
    pub fn buffers(&self) -> usize {
        self.buffers.len()
    }

    /// Interval buffers held now, over all output metrics.
    pub fn intervals(&self) -> usize {
        self.intervals
    }

    /// When the next buffer is due, if any: calling [`Aggregator::tick`] before then emits
    /// nothing.
    pub fn next_due(&self) -> Option<f64> {
        self.buffers.values().map(|b| b.next_due).reduce(f64::min)
    }

    /// Takes one received point at time `now`: carbon's `AggregationProcessor.process` (after
    /// the `[pre]` rewrite rules). Returns how many rules matched, and the name to pass the
    /// point on under if it is passed on.
    pub fn push<'a>(&mut self, name: &'a str, timestamp: f64, value: f64, now: f64) -> Pushed<'a> {
        self.stats.received += 1;
        let name: Cow<'a, str> = match &self.config.rewrite {
            Some(rw) if !rw.pre().is_empty() => match rw.apply_pre(name) {
                Cow::Borrowed(_) => Cow::Borrowed(name),
                Cow::Owned(s) => Cow::Owned(s),
            },
            _ => Cow::Borrowed(name),
        };
        let mut matched = 0;
        let mut outputs: Vec<String> = Vec::new();
        for rule in self.rules.rules() {
            let Some(output) = rule.output_for(&name) else { continue };
            matched += 1;
            let cap_values = self.config.max_values_per_interval;
            let buffer = self.buffers.entry(output.clone()).or_insert_with(|| {
                let period = match self.config.write_back_frequency {
                    Some(w) => w.min(rule.frequency()),
                    None => rule.frequency(),
                };
                let period = f64::from(period.max(1));
                MetricBuffer {
                    frequency: rule.frequency(),
                    method: rule.method(),
                    started: now,
                    period,
                    next_due: now + period,
                    intervals: HashMap::new(),
                }
            });
            let frequency = f64::from(buffer.frequency);
            // Python's `timestamp - timestamp % frequency` (the modulo has the divisor's sign).
            let interval = timestamp - timestamp.rem_euclid(frequency);
            if !interval.is_finite() {
                self.stats.bad_timestamps += 1;
            } else {
                let key = (interval + 0.0).to_bits();
                let full = self.intervals >= self.config.max_intervals;
                let slot = match buffer.intervals.entry(key) {
                    std::collections::hash_map::Entry::Occupied(e) => Some(e.into_mut()),
                    std::collections::hash_map::Entry::Vacant(_) if full => None,
                    std::collections::hash_map::Entry::Vacant(e) => {
                        self.intervals += 1;
                        Some(e.insert(IntervalBuffer::new(interval)))
                    }
                };
                let method = buffer.method;
                if !slot.is_some_and(|b| b.input(value, method, cap_values)) {
                    self.stats.dropped += 1;
                }
            }
            if buffer.intervals.is_empty() {
                // Nothing was buffered: no buffer (carbon would hold an empty one until its
                // timer removes it, which emits nothing either).
                self.buffers.remove(&output);
            }
            outputs.push(output);
        }
        if matched == 0 {
            self.stats.unmatched += 1;
        }
        let forward = if self.config.forward_all && !outputs.iter().any(|o| *o == *name) {
            Some(match &self.config.rewrite {
                Some(rw) if !rw.post().is_empty() => match rw.apply_post(&name) {
                    Cow::Borrowed(_) => name,
                    Cow::Owned(s) => Cow::Owned(s),
                },
                _ => name,
            })
        } else {
            None
        };
        Pushed { matched, forward }
    }

    /// [`Aggregator::push`] for a decoded point.
    pub fn push_point<'a>(&mut self, point: &'a Point, now: f64) -> Pushed<'a> {
        self.push(point.name.as_str(), point.datapoint.timestamp, point.datapoint.value, now)
    }

    /// Runs the buffer timers that are due at `now`: carbon's `MetricBuffer.compute_value`.
    /// Each interval that received a value since it was last emitted is emitted with its
    /// start as the timestamp (so a late point re-emits its interval with the new value);
    /// intervals older than `MAX_AGGREGATION_INTERVALS` intervals are then dropped, and a
    /// buffer left with none is removed (its timer restarts with its next point).
    pub fn tick(&mut self, now: f64) -> Vec<Point> {
        let mut out = Vec::new();
        let max_intervals = f64::from(self.config.max_aggregation_intervals);
        let mut removed = Vec::new();
        for (name, buffer) in &mut self.buffers {
            if buffer.next_due > now {
                continue;
            }
            buffer.schedule_after(now);
            let whole = now.floor();
            let frequency = f64::from(buffer.frequency);
            let current = whole - whole.rem_euclid(frequency);
            let threshold = current - max_intervals * frequency;
            let method = buffer.method;
            let mut metric: Option<MetricName> = None;
            for interval in buffer.intervals.values_mut() {
                if interval.active {
                    interval.active = false;
                    let value = interval.value(method);
                    if metric.is_none() {
                        metric = MetricName::new(name).ok();
                    }
                    match &metric {
                        Some(m) => {
                            self.stats.aggregated += 1;
                            out.push(Point::new(m.clone(), interval.interval, value));
                        }
                        None => self.stats.bad_names += 1,
                    }
                }
            }
            let before = buffer.intervals.len();
            buffer.intervals.retain(|_, b| b.interval >= threshold);
            self.intervals -= before - buffer.intervals.len();
            if buffer.intervals.is_empty() {
                removed.push(name.clone());
            }
        }
        for name in removed {
            self.buffers.remove(&name);
        }
        if self.stats.dropped > self.warned_dropped {
            tracing::warn!(
                dropped = self.stats.dropped - self.warned_dropped,
                intervals = self.intervals,
                max_intervals = self.config.max_intervals,
                max_values_per_interval = self.config.max_values_per_interval,
                "aggregator buffers full: values dropped"
            );
            self.warned_dropped = self.stats.dropped;
        }
        out
    }
}
