//! Helpers for the unit tests of the function families: a small in-memory data set and a
//! one-call evaluator.
#![allow(dead_code)] // Used by the function families as they land.

use crate::eval::{Context, Limits, UsageCell};
use crate::series::Series;
use crate::source::MemorySource;

/// The start of every test series: an arbitrary minute-aligned epoch.
pub(crate) const T0: i64 = 1_700_000_040;

/// A source holding `series`: each `(name, step, values)` starts at [`T0`].
pub(crate) fn source(series: &[(&str, i64, &[Option<f64>])]) -> MemorySource {
    let mut src = MemorySource::new();
    for (name, step, values) in series {
        src.insert(name, T0, *step, values.to_vec());
    }
    src
}

/// Evaluates `target` over `(from, until]` against `src` (now = `until`).
///
/// # Panics
///
/// The target does not parse or evaluation fails (use [`try_eval`] to test errors).
pub(crate) fn eval(src: &MemorySource, target: &str, from: i64, until: i64) -> Vec<Series> {
    match try_eval(src, target, from, until) {
        Ok(s) => s,
        Err(e) => panic!("{target}: {e}"),
    }
}

/// Evaluates `target`, returning the error instead of panicking.
pub(crate) fn try_eval(
    src: &MemorySource,
    target: &str,
    from: i64,
    until: i64,
) -> crate::Result<Vec<Series>> {
    let expr = crate::parse::parse(target)?;
    let limits = Limits::default();
    let usage = UsageCell::default();
    let ctx = Context::new(src, &limits, &usage, from, until, until);
    ctx.eval_series(&expr)
}

/// The names of `series`.
pub(crate) fn names(series: &[Series]) -> Vec<&str> {
    series.iter().map(|s| s.name.as_str()).collect()
}

/// Shorthand for a list of present values.
pub(crate) fn some(values: &[f64]) -> Vec<Option<f64>> {
    values.iter().copied().map(Some).collect()
}
