//! carbon-c-relay's `aggregate` statement (its `aggregator.c`), driven by the caller's clock.
//!
//! ```text
//! aggregate <expr>... every <N> seconds expire after <M> seconds
//!     [timestamp at start|middle|end of bucket]
//!     compute sum|count|max|min|average|median|percentile<NN>|variance|stddev write to <name>
//!     [compute ... write to ...]... [send to <cluster>...] [stop] ;
//! ```
//!
//! Each `compute` has its own outputs ("invocations"), one per name its `write to` makes of a
//! matching metric: the replacement with `\1`.. of the expression's match (the text around
//! the match kept, as a `rewrite`), or the text as written when the expression has no groups.
//! An invocation is created by the first point for it, with `ceil(M / N) + 2` buckets of `N`
//! seconds, the first starting at `floor((now - M) / N) * N`. A point goes into the bucket of
//! its timestamp (the integer part, as `atoll` reads it); a timestamp before the first bucket
//! or past the last is dropped and counted, so is one for a bucket already emitted. A bucket
//! is emitted once `start + M + splay < now` (`splay` in `0..N`, spreading the emissions of
//! many outputs; carbon-c-relay draws it with `rand()`, here it is a hash of the output name
//! so runs repeat), if it received anything, then moves to the end of the ring as the next
//! bucket; an invocation left with only empty buckets is removed. The value is written as
//! `%f` writes it (six decimals) and read back, the timestamp is the bucket's start, middle
//! (`start + N / 2`) or end (`start + N`, the default).
//!
//! Methods, as carbon-c-relay computes them: `sum` adds in arrival order; `max`/`min` keep
//! the first value unless a later one is strictly greater/smaller; `average` is `sum / count`;
//! `variance` is `sum((v - average)^2) / count` in arrival order and `stddev` its square root;
//! `median` is `percentile50`, and `percentile<NN>` (1 to 99) is the `k`-th value, `k =
//! (int)(NN / 100 * count + 0.9)`, of the values sorted with glibc's merge sort and
//! carbon-c-relay's comparison, which truncates the difference of two values to an `int`
//! (values less than 1 apart compare equal, a difference of 2^31 or more compares as less).
//! When `k` is 0 carbon-c-relay reads before its array; what it prints there is 0.
//!
//! Memory is bounded where carbon-c-relay's is not: at most [`MAX_INVOCATIONS`] outputs per
//! statement and [`MAX_VALUES_PER_BUCKET`] values per bucket of the methods that keep them;
//! points beyond are dropped and counted.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use regex::Captures;

use super::router::{ReplPart, expand};

/// Outputs one `aggregate` statement holds at most (over its computes).
pub const MAX_INVOCATIONS: usize = 1_000_000;

/// Values one bucket of a `median`, `percentile`, `variance` or `stddev` holds at most.
pub const MAX_VALUES_PER_BUCKET: usize = 100_000;

/// What a `compute` computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `sum`.
    Sum,
    /// `count`.
    Count,
    /// `max`.
    Max,
    /// `min`.
    Min,
    /// `average`.
    Average,
    /// `median` (50) and `percentile<NN>`, 1 to 99.
    Percentile(u8),
    /// `variance` (of the population).
    Variance,
    /// `stddev`: the square root of `variance`.
    Stddev,
}

impl Method {
    /// The method called `name` in a config (`percentile` with its number).
    pub fn from_name(name: &str) -> Option<Method> {
        Some(match name {
            "sum" => Method::Sum,
            "count" => Method::Count,
            "max" => Method::Max,
            "min" => Method::Min,
            "average" => Method::Average,
            "median" => Method::Percentile(50),
            "variance" => Method::Variance,
            "stddev" => Method::Stddev,
            _ => {
                let n: u8 = name.strip_prefix("percentile")?.parse().ok()?;
                Method::Percentile(n)
            }
        })
    }

    /// Whether the method needs every value of a bucket.
    fn keeps_values(self) -> bool {
        matches!(self, Method::Percentile(_) | Method::Variance | Method::Stddev)
    }
}

/// Which second of a bucket its aggregates are stamped with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimestampAt {
    /// `timestamp at start of bucket` (carbon-aggregator's choice).
    Start,
    /// `timestamp at middle of bucket`: `start + interval / 2`, in whole seconds.
    Middle,
    /// `timestamp at end of bucket`: carbon-c-relay's default.
    #[default]
    End,
}

/// One `compute <method> write to <name>`.
#[derive(Debug, Clone, PartialEq)]
pub struct Compute {
    /// The method.
    pub method: Method,
    /// `write to` as written.
    pub name: String,
    /// `write to` parsed as a replacement (used when the expression has groups).
    pub template: Vec<ReplPart>,
}

/// An `aggregate` statement's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct AggregateSpec {
    /// `every N seconds`: the bucket length, more than 0.
    pub interval: u32,
    /// `expire after M seconds`: more than `interval`.
    pub expire: u32,
    /// `timestamp at ... of bucket`.
    pub timestamp: TimestampAt,
    /// The computes, in order.
    pub computes: Vec<Compute>,
}

/// One aggregate emitted: the output name, its timestamp and value.
pub type Emitted = (String, f64, f64);

/// A bucket: the running aggregates of one interval of one output.
#[derive(Debug, Clone)]
struct Bucket {
    start: i64,
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
    /// Only for the methods that keep values; kept allocated across rotations.
    values: Vec<f64>,
}

impl Bucket {
    fn new(start: i64) -> Bucket {
        Bucket { start, count: 0, sum: 0.0, min: 0.0, max: 0.0, values: Vec::new() }
    }

    fn add(&mut self, value: f64, keep: bool) {
        if self.count == 0 {
            self.sum = value;
            self.max = value;
            self.min = value;
        } else {
            self.sum += value;
            // C's comparisons: a NaN never replaces, and is never replaced.
            if self.max < value {
                self.max = value;
            }
            if self.min > value {
                self.min = value;
            }
        }
        if keep {
            self.values.push(value);
        }
        self.count += 1;
    }

    fn value(&mut self, method: Method) -> f64 {
        let count = self.count as f64;
        match method {
            Method::Sum => self.sum,
            Method::Count => count,
            Method::Max => self.max,
            Method::Min => self.min,
            Method::Average => self.sum / count,
            Method::Percentile(p) => {
                msort(&mut self.values);
                // C: `(int)(((double)p / 100.0 * (double)cnt) + 0.9)`.
                let k = (f64::from(p) / 100.0 * count + 0.9) as usize;
                match k.checked_sub(1) {
                    Some(i) => self.values.get(i).copied().unwrap_or(0.0),
                    None => 0.0,
                }
            }
            Method::Variance | Method::Stddev => {
                let average = self.sum / count;
                let mut k = 0.0;
                for v in &self.values {
                    k += (v - average).powi(2);
                }
                k /= count;
                if method == Method::Variance { k } else { k.sqrt() }
            }
        }
    }
}

/// carbon-c-relay's `cmp_entry`: the difference of two doubles returned as an `int`, which
/// truncates it (x86-64's conversion gives `INT_MIN` for a NaN or a difference out of range).
fn cmp_entry(left: f64, right: f64) -> i32 {
    let d = left - right;
    if d > -2_147_483_649.0 && d < 2_147_483_648.0 { d as i32 } else { i32::MIN }
}

/// glibc's `qsort` for small arrays (`msort_with_tmp`): a top-down merge sort that splits at
/// `n / 2` and takes from the left run while `cmp_entry(left, right) <= 0`. With
/// carbon-c-relay's comparison the order is not a true sort; this reproduces it exactly.
fn msort(values: &mut [f64]) {
    let n = values.len();
    if n <= 1 {
        return;
    }
    let (left, right) = values.split_at_mut(n / 2);
    msort(left);
    msort(right);
    let mut merged = Vec::with_capacity(n);
    let (mut i, mut j) = (0, 0);
    while let (Some(&l), Some(&r)) = (left.get(i), right.get(j)) {
        if cmp_entry(l, r) <= 0 {
            merged.push(l);
            i += 1;
        } else {
            merged.push(r);
            j += 1;
        }
    }
    merged.extend_from_slice(left.get(i..).unwrap_or_default());
    merged.extend_from_slice(right.get(j..).unwrap_or_default());
    values.copy_from_slice(&merged);
}

/// `%f` and back: the six decimals carbon-c-relay writes its aggregates with.
fn as_printed(value: f64) -> f64 {
    format!("{value:.6}").parse().unwrap_or(value)
}

/// 32-bit FNV-1a, for the splay.
fn fnv1a(bytes: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for &b in bytes {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// One output of one compute.
#[derive(Debug)]
struct Invocation {
    /// `expire` plus this output's splay.
    expire: i64,
    /// `bucket_count` consecutive buckets, oldest first.
    buckets: VecDeque<Bucket>,
}

/// An `aggregate` statement's buckets and counters.
#[derive(Debug)]
pub struct Aggregate {
    spec: AggregateSpec,
    interval: i64,
    expire: i64,
    bucket_count: usize,
    /// Per compute, its invocations by output name.
    state: Mutex<Vec<HashMap<String, Invocation>>>,
    /// Points put (once per point, whatever the computes).
    received: AtomicU64,
    /// Aggregates emitted.
    sent: AtomicU64,
    /// Points a compute could not take (too old, too new, full), once per compute.
    dropped: AtomicU64,
}

impl Aggregate {
    /// An aggregate with no buckets yet.
    ///
    /// # Panics
    ///
    /// Never for a spec the parser accepted; an interval of 0 is taken as 1.
    pub fn new(spec: AggregateSpec) -> Aggregate {
        let interval = i64::from(spec.interval.max(1));
        let expire = i64::from(spec.expire);
        let bucket_count = usize::try_from((expire + interval - 1) / interval + 2).unwrap_or(2);
        let state = Mutex::new(spec.computes.iter().map(|_| HashMap::new()).collect());
        Aggregate {
            spec,
            interval,
            expire,
            bucket_count,
            state,
            received: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
        }
    }

    /// The settings.
    pub fn spec(&self) -> &AggregateSpec {
        &self.spec
    }

    /// `(received, sent, dropped)` so far (carbon-c-relay's `aggregators.*` statistics).
    pub fn counters(&self) -> (u64, u64, u64) {
        (
            self.received.load(Ordering::Relaxed),
            self.sent.load(Ordering::Relaxed),
            self.dropped.load(Ordering::Relaxed),
        )
    }

    /// Takes a point whose `name` matched one of the statement's expressions: `caps` is the
    /// match when the expression has groups (the outputs are then rewrites of `name`),
    /// `None` otherwise (the outputs are named as written). `now` is the clock in whole
    /// seconds.
    pub fn put(
        &self,
        name: &str,
        caps: Option<&Captures<'_>>,
        value: f64,
        timestamp: f64,
        now: i64,
    ) {
        self.received.fetch_add(1, Ordering::Relaxed);
        // `atoll` of the timestamp's text: its integer part (NaN and infinities land out of
        // every window).
        let epoch = timestamp as i64;
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let held: usize = state.iter().map(HashMap::len).sum();
        let mut created = 0usize;
        for (compute, invocations) in self.spec.computes.iter().zip(state.iter_mut()) {
            let output = match caps {
                Some(caps) => expand(caps, &compute.template, name),
                None => compute.name.clone(),
            };
            let keep = compute.method.keeps_values();
            let new = !invocations.contains_key(&output);
            if new {
                if held + created >= MAX_INVOCATIONS {
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                created += 1;
                let first = (now - self.expire).div_euclid(self.interval) * self.interval;
                let buckets = (0..self.bucket_count as i64)
                    .map(|i| Bucket::new(first + i * self.interval))
                    .collect();
                let splay = i64::from(fnv1a(output.as_bytes())) % self.interval;
                invocations
                    .insert(output.clone(), Invocation { expire: self.expire + splay, buckets });
            }
            let Some(inv) = invocations.get_mut(&output) else { continue };
            let first = inv.buckets.front().map_or(0, |b| b.start);
            let slot = epoch
                .checked_sub(first)
                .filter(|t| *t >= 0)
                .and_then(|t| usize::try_from(t / self.interval).ok());
            match slot.and_then(|s| inv.buckets.get_mut(s)) {
                Some(b) if !(keep && b.values.len() >= MAX_VALUES_PER_BUCKET) => b.add(value, keep),
                _ => {
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                    // An invocation made for a point that was dropped holds nothing:
                    // carbon-c-relay frees it at its next expiry pass.
                    if new {
                        invocations.remove(&output);
                        created -= 1;
                    }
                }
            }
        }
    }

    /// Emits the buckets that expired by `now` (whole seconds): carbon-c-relay's expiry pass.
    /// With `shutdown`, every bucket that is complete by `now` is emitted, as carbon-c-relay
    /// does when it stops.
    pub fn expire(&self, now: i64, shutdown: bool) -> Vec<Emitted> {
        let mut out = Vec::new();
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        for (compute, invocations) in self.spec.computes.iter().zip(state.iter_mut()) {
            invocations.retain(|name, inv| {
                let (limit, now) = if shutdown {
                    (self.expire, now + self.expire - self.interval)
                } else {
                    (inv.expire, now)
                };
                let mut rotated = 0usize;
                while inv.buckets.front().is_some_and(|b| b.start + limit < now) {
                    let Some(mut b) = inv.buckets.pop_front() else { break };
                    if b.count > 0 {
                        let ts = match self.spec.timestamp {
                            TimestampAt::Start => b.start,
                            TimestampAt::Middle => b.start + self.interval / 2,
                            TimestampAt::End => b.start + self.interval,
                        };
                        let value = as_printed(b.value(compute.method));
                        out.push((name.clone(), ts as f64, value));
                        self.sent.fetch_add(1, Ordering::Relaxed);
                    }
                    let next = inv.buckets.back().map_or(b.start, |l| l.start) + self.interval;
                    b.start = next;
                    b.count = 0;
                    b.values.clear();
                    inv.buckets.push_back(b);
                    rotated += 1;
                    // Idle for a whole ring: it is empty, stop turning it.
                    if rotated >= self.bucket_count {
                        break;
                    }
                }
                inv.buckets.iter().any(|b| b.count > 0)
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relay::router::parse_replacement;

    fn spec(interval: u32, expire: u32, methods: &[&str]) -> AggregateSpec {
        AggregateSpec {
            interval,
            expire,
            timestamp: TimestampAt::End,
            computes: methods
                .iter()
                .map(|m| Compute {
                    method: Method::from_name(m).unwrap(),
                    name: format!("out.{m}"),
                    template: parse_replacement(&format!("out.{m}")),
                })
                .collect(),
        }
    }

    fn value_of(out: &[Emitted], name: &str) -> f64 {
        out.iter().find(|(n, _, _)| n == name).unwrap_or_else(|| panic!("no {name}: {out:?}")).2
    }

    /// The values and what carbon-c-relay 3.7.3 printed for them (observed).
    #[test]
    fn computes_as_carbon_c_relay_printed() {
        let methods = [
            "sum",
            "count",
            "max",
            "min",
            "average",
            "median",
            "percentile90",
            "percentile25",
            "variance",
            "stddev",
        ];
        let a = Aggregate::new(spec(2, 3, &methods));
        let now = 1_795_322_644;
        for v in [0.5, 0.2, 1.7, 3.0, 2.25, 10.0, -1.5] {
            a.put("agg.a.v", None, v, (now - 1) as f64, now);
        }
        assert!(a.expire(now, false).is_empty());
        let out = a.expire(now + 10, false);
        assert_eq!(out.len(), methods.len());
        assert!(out.iter().all(|(_, t, _)| *t == now as f64), "end of bucket 642..644");
        for (m, want) in [
            ("sum", 16.15),
            ("count", 7.0),
            ("max", 10.0),
            ("min", -1.5),
            ("average", 2.307143),
            ("median", 1.7),
            ("percentile90", 10.0),
            // Not 0.2: 0.5 and 0.2 compare equal, so the merge sort keeps 0.5 first.
            ("percentile25", 0.5),
            ("variance", 11.747449),
            ("stddev", 3.427455),
        ] {
            assert_eq!(value_of(&out, &format!("out.{m}")), want, "{m}");
        }
        assert_eq!(a.counters(), (7, 10, 0));
    }

    #[test]
    fn buckets_window_and_drops() {
        // every 2 expire after 3: 4 buckets from floor((now - 3) / 2) * 2.
        let a = Aggregate::new(spec(2, 3, &["count"]));
        let now = 1000;
        a.put("x", None, 1.0, 1001.0, now); // creates [996, 1004)
        a.put("x", None, 1.0, 1003.9, now);
        a.put("x", None, 1.0, 1004.0, now); // too new
        a.put("x", None, 1.0, 995.0, now); // too old
        assert_eq!(a.counters(), (4, 0, 2));
        // Bucket 1000 expires when 1000 + 3 (+ splay 0 or 1) < now.
        assert!(a.expire(1003, false).is_empty());
        let out = a.expire(1005, false);
        assert_eq!(out, [("out.count".to_string(), 1002.0, 1.0)]);
        // Late for the emitted bucket: dropped.
        a.put("x", None, 1.0, 1001.0, 1005);
        assert_eq!(a.counters().2, 3);
        let out = a.expire(1007, false);
        assert_eq!(out, [("out.count".to_string(), 1004.0, 1.0)]);
        // All empty now: the invocation is gone, the next point starts a new window.
        a.put("x", None, 1.0, 1010.0, 1010);
        let out = a.expire(1020, false);
        assert_eq!(out, [("out.count".to_string(), 1012.0, 1.0)]);
    }

    #[test]
    fn outputs_are_rewrites_of_the_name() {
        let mut s = spec(2, 3, &["sum"]);
        s.computes[0].template = parse_replacement(r"p.\1.s");
        s.timestamp = TimestampAt::Start;
        let a = Aggregate::new(s);
        let re = regex::Regex::new(r"^agg\.([a-z]+)").unwrap();
        for (n, v) in [("agg.a.v", 1.0), ("agg.a.v", 2.0), ("agg.b", 5.0)] {
            let caps = re.captures(n).unwrap();
            a.put(n, Some(&caps), v, 715.0, 716);
        }
        let mut out = a.expire(800, false);
        out.sort_by(|x, y| x.0.cmp(&y.0));
        // The text after the match stays, as carbon-c-relay's rewrite keeps it.
        assert_eq!(out, [("p.a.s.v".to_string(), 714.0, 3.0), ("p.b.s".to_string(), 714.0, 5.0)]);
    }

    #[test]
    fn shutdown_emits_the_complete_buckets() {
        let mut s = spec(2, 6, &["sum"]);
        s.timestamp = TimestampAt::Middle;
        let a = Aggregate::new(s);
        a.put("x", None, 1.0, 999.0, 1000);
        a.put("x", None, 2.0, 1000.0, 1000);
        assert!(a.expire(1001, false).is_empty(), "not expired yet");
        let out = a.expire(1001, true);
        // 998..1000 is complete (start + interval < now); 1000..1002 is not.
        assert_eq!(out, [("out.sum".to_string(), 999.0, 1.0)]);
    }

    #[test]
    fn percentile_sort_is_glibcs_merge_with_crelays_compare() {
        let mut v = [0.5, 0.2, 1.7, 3.0, 2.25, 10.0, -1.5];
        msort(&mut v);
        assert_eq!(v, [-1.5, 0.5, 0.2, 1.7, 3.0, 2.25, 10.0]);
        assert_eq!(cmp_entry(3e9, 0.0), i32::MIN, "out of int range compares as less");
        assert_eq!(cmp_entry(f64::NAN, 0.0), i32::MIN);
        assert_eq!(cmp_entry(-0.9, 0.0), 0);
        let mut b = Bucket::new(0);
        b.add(4.0, true);
        // percentile5 of one value: k = (int)(0.05 + 0.9) = 0.
        assert_eq!(b.value(Method::Percentile(5)), 0.0);
        assert_eq!(b.value(Method::Percentile(50)), 4.0);
    }

    #[test]
    fn methods_by_name() {
        assert_eq!(Method::from_name("percentile99"), Some(Method::Percentile(99)));
        assert_eq!(Method::from_name("median"), Some(Method::Percentile(50)));
        assert_eq!(Method::from_name("percentile"), None);
        assert_eq!(Method::from_name("avg"), None);
    }

    proptest::proptest! {
        #[test]
        fn put_and_expire_never_panic(
            points in proptest::collection::vec((-1e12f64..1e12, proptest::num::f64::ANY), 0..40),
            now in -1_000_000i64..4_000_000_000,
        ) {
            let a = Aggregate::new(spec(3, 7, &["sum", "percentile10", "stddev"]));
            for (ts, v) in points {
                a.put("n", None, v, ts, now);
            }
            let _ = a.expire(now + 100, false);
            let _ = a.expire(now + 200, true);
        }
    }
}
