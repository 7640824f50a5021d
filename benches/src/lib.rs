//! Inputs shared by the criterion benches (`benches/whisper.rs`) and the side-by-side program
//! (`src/bin/whisper-side-by-side.rs`), so both measure exactly what
//! `shared/peers/bench-whisper.py` measures on whisper.py.
//!
//! Files are `60s:1d,5m:7d,15m:3y` (xFilesFactor 0.5, `average`), as carbon's Debian schema.
//! Values follow the load generator's scheme, `(7 * i + 13 * k) % 1000` for metric `i` and
//! point `k`: the metric index is the seed, so every input is generated, none is committed.
#![warn(missing_docs)]

pub mod statsd_packets;

use whisper::{AggregationMethod, Allocation, CreateOptions, Retention};

/// A small xorshift generator, so that generated inputs are the same on every run.
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// The archive list of every benchmark file: `60s:1d,5m:7d,15m:3y`.
pub const SCHEMA: [(u32, u32); 3] = [(60, 1440), (300, 2016), (900, 105_120)];

/// Points in one day of the finest archive (one update_many day per file).
pub const POINTS_PER_DAY: usize = 1440;

/// Seconds between two points of the finest archive.
pub const STEP_SECONDS: i64 = 60;

/// The archives of [`SCHEMA`].
pub fn archives() -> Vec<Retention> {
    SCHEMA.iter().map(|&(spp, points)| Retention::new(spp, points)).collect()
}

/// Create options as bench-whisper.py passes them: xFilesFactor 0.5, `average`, and the given
/// allocation.
pub fn create_options(allocation: Allocation) -> CreateOptions {
    let mut options = CreateOptions::new();
    options
        .x_files_factor(0.5)
        .aggregation_method(AggregationMethod::Average)
        .allocation(allocation);
    options
}

/// The value of point `k` of metric `i` (the load generator's scheme).
pub fn value(i: usize, k: usize) -> f64 {
    ((7 * i + 13 * k) % 1000) as f64
}

/// One day of 60 s points of metric `i`, oldest first, the last one at `end`
/// (bench-whisper.py's `points_for`).
pub fn day_of_points(i: usize, end: i64) -> Vec<(i64, f64)> {
    let start = end - (POINTS_PER_DAY as i64 - 1) * STEP_SECONDS;
    (0..POINTS_PER_DAY).map(|k| (start + k as i64 * STEP_SECONDS, value(i, k))).collect()
}

/// `t` rounded down to a whole minute (bench-whisper.py's `now - now % 60`).
pub fn align_minute(t: i64) -> i64 {
    t - t.rem_euclid(STEP_SECONDS)
}

/// The allocation modes by the names the benches and the side-by-side program use.
pub const ALLOCATIONS: [(&str, Allocation); 4] = [
    ("zeroed", Allocation::Zeroed),
    ("writezeros", Allocation::WriteZeros),
    ("fallocate", Allocation::Fallocate),
    ("sparse", Allocation::Sparse),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_of_points_matches_bench_whisper_py() {
        let end = 1_700_000_040;
        let points = day_of_points(3, end);
        assert_eq!(points.len(), 1440);
        assert_eq!(points[0], (end - 1439 * 60, 21.0));
        assert_eq!(points[1439], (end, ((21 + 13 * 1439) % 1000) as f64));
        assert_eq!(align_minute(1_700_000_059), 1_700_000_040);
    }
}
