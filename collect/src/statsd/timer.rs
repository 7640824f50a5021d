//! A timer's values over one flush interval and the statistics statsd computes from them
//! (`lib/process_metrics.js`): the same sums in the same order, so the numbers are the same
//! to the last bit while the values fit in the sample.

use super::config::{Bin, Settings, TIMER_STATS};

/// One timer key's interval.
#[derive(Clone, Debug, Default)]
pub(crate) struct Timer {
    /// The kept values: all of them up to the cap, then a uniform sample (reservoir).
    pub(crate) samples: Vec<f64>,
    /// Values received (each once, whatever its sample rate).
    pub(crate) seen: u64,
    /// statsd's `timer_counters`: the sum of `1 / rate` over the values.
    pub(crate) count: f64,
    /// Exact running figures, used when the sample is not everything.
    pub(crate) sum: f64,
    pub(crate) sum_squares: f64,
    pub(crate) min: f64,
    pub(crate) max: f64,
}

impl Timer {
    /// Adds a value received with sample rate `1 / inverse_rate`. `random` picks the slot
    /// the value may replace once the sample is full.
    pub(crate) fn add(&mut self, value: f64, inverse_rate: f64, cap: usize, random: u64) {
        // -0 is stored as 0: statsd's numeric sort and printing do not tell them apart.
        let value = value + 0.0;
        self.count += inverse_rate;
        if self.seen == 0 {
            self.min = value;
            self.max = value;
        } else {
            self.min = self.min.min(value);
            self.max = self.max.max(value);
        }
        self.seen += 1;
        self.sum += value;
        self.sum_squares += value * value;
        if self.samples.len() < cap {
            self.samples.push(value);
        } else {
            // Algorithm R: the new value replaces a kept one with probability cap / seen.
            let slot = random % self.seen;
            if let Some(s) = usize::try_from(slot).ok().and_then(|i| self.samples.get_mut(i)) {
                *s = value;
            }
        }
    }

    /// Whether the sample holds every value.
    fn exact(&self) -> bool {
        self.seen == self.samples.len() as u64
    }
}

/// Scratch space reused across timers: the prefix sums statsd builds.
#[derive(Default)]
pub(crate) struct Scratch {
    cumulative: Vec<f64>,
    cumulative_squares: Vec<f64>,
}

/// Emits `key`'s statistics as `(statistic, value)` in statsd's order: the percentile ones,
/// then `std upper lower count count_ps sum sum_squares mean median`, then histogram bins
/// (`emit_bin`). A timer with no value this interval gives `count` and `count_ps` only.
pub(crate) fn statistics(
    key: &str,
    timer: &mut Timer,
    settings: &Settings,
    scratch: &mut Scratch,
    mut emit: impl FnMut(&str, f64),
    mut emit_bin: impl FnMut(&str, f64),
) {
    let on = |i: usize| settings.timer_stats.get(i).copied().unwrap_or(true);
    let count_ps = timer.count / settings.interval_secs;
    if timer.samples.is_empty() {
        // statsd: `count` and `count_ps` are 0 (and nothing else is sent).
        if on(3) {
            emit("count", 0.0);
        }
        if on(4) {
            emit("count_ps", 0.0);
        }
        return;
    }
    let exact = timer.exact();
    let values = &mut timer.samples;
    values.sort_unstable_by(f64::total_cmp);
    let n = values.len();
    let (cumulative, squares) = (&mut scratch.cumulative, &mut scratch.cumulative_squares);
    cumulative.clear();
    squares.clear();
    let (mut sum, mut sum_sq) = (0.0, 0.0);
    for (i, &v) in values.iter().enumerate() {
        if i == 0 {
            (sum, sum_sq) = (v, v * v);
        } else {
            sum += v;
            sum_sq += v * v;
        }
        cumulative.push(sum);
        squares.push(sum_sq);
    }
    let at = |s: &[f64], i: usize| s.get(i).copied().unwrap_or(f64::NAN);
    let (min, max) = (at(values, 0), at(values, n - 1));
    // Beyond the sample, the percentile sums are scaled from it to every value seen.
    let seen = timer.seen as f64;

    for p in &settings.percentiles {
        let fraction = p.pct.abs() / 100.0;
        let (mut k, mut boundary, mut p_sum, mut p_sq, mut mean) = (n, max, min, min * min, min);
        if n > 1 {
            k = round(fraction * n as f64) as usize;
            if k == 0 {
                continue;
            }
            if p.pct > 0.0 {
                boundary = at(values, k - 1);
                p_sum = at(cumulative, k - 1);
                p_sq = at(squares, k - 1);
            } else {
                boundary = at(values, n - k);
                // statsd subtracts the prefix sum before the top k; at -100 there is none and
                // statsd sends NaN, here the whole sum.
                let before = |s: &[f64]| if k < n { at(s, n - k - 1) } else { 0.0 };
                p_sum = at(cumulative, n - 1) - before(cumulative);
                p_sq = at(squares, n - 1) - before(squares);
            }
            mean = p_sum / k as f64;
        }
        let mut count = k as f64;
        if !exact {
            count = round(fraction * seen);
            if count == 0.0 {
                continue;
            }
            p_sum = mean * count;
            p_sq = p_sq / k as f64 * count;
        }
        for ((name, send), value) in p.stats.iter().zip([count, mean, boundary, p_sum, p_sq]) {
            if *send {
                emit(name, value);
            }
        }
    }

    let (sum, sum_sq, mean, std) = if exact {
        let sum = at(cumulative, n - 1);
        let mean = sum / n as f64;
        let diffs: f64 = values.iter().map(|v| (v - mean) * (v - mean)).sum();
        (sum, at(squares, n - 1), mean, (diffs / n as f64).sqrt())
    } else {
        let mean = timer.sum / seen;
        let variance = (timer.sum_squares / seen - mean * mean).max(0.0);
        (timer.sum, timer.sum_squares, mean, variance.sqrt())
    };
    let (min, max) = if exact { (min, max) } else { (timer.min, timer.max) };
    let mid = n / 2;
    let median = if n % 2 == 1 {
        at(values, mid)
    } else {
        (at(values, mid.wrapping_sub(1)) + at(values, mid)) / 2.0
    };
    let figures = [std, max, min, timer.count, count_ps, sum, sum_sq, mean, median];
    for (i, (name, value)) in TIMER_STATS.iter().zip(figures).enumerate() {
        if on(i) {
            emit(name, value);
        }
    }

    if !settings.send_histogram {
        return;
    }
    let Some((index, config)) =
        settings.histogram.iter().enumerate().find(|(_, h)| key.contains(h.metric.as_str()))
    else {
        return;
    };
    let names = settings.bin_names.get(index).map(Vec::as_slice).unwrap_or_default();
    let scale = if exact { 1.0 } else { seen / n as f64 };
    let mut i = 0;
    for (bin, name) in config.bins.iter().zip(names) {
        let mut freq = 0usize;
        while let Some(&v) = values.get(i) {
            let inside = match *bin {
                Bin::Inf => true,
                Bin::Below(upper) => v < upper,
            };
            if !inside {
                break;
            }
            freq += 1;
            i += 1;
        }
        let freq = if exact { freq as f64 } else { round(freq as f64 * scale) };
        emit_bin(name, freq);
    }
}

/// JavaScript's `Math.round` for the non-negative numbers it is used on here: halves go up.
fn round(x: f64) -> f64 {
    x.round()
}
