//! The y axis as graphite-web's glyph.py chooses it: the data's range adjusted by
//! `yMin`/`yMax`/`yLimit`, a "nice" step (1, 2 or 5 times a power of ten, or powers of two
//! for binary units) that divides the range into 4, 5 or 6 parts with the least wasted room,
//! round limits, and labels with unit prefixes (`_LinearAxisTics`, `_LogAxisTics`,
//! `format_units`, `makeLabel`).
//!
//! The arithmetic follows Python's operation for operation (`math.log(x, b)` is
//! `ln x / ln b`, `b ** e` is `pow`), so labels and positions come out as graphite-web's.

use crate::error::{Error, Result};
use crate::pyfmt::format_g;

/// Values a hair outside the nominal limits still count as inside (glyph.py's `EPSILON`).
const EPSILON: f64 = 0.0001;

/// More labels than this is a runaway (a tiny step or a log base near 1): an error instead
/// of a hang.
const MAX_LABELS: usize = 2_000;

/// Unit prefixes for y labels (`yUnitSystem`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum UnitSystem {
    /// k, M, G, T, P (powers of 1000).
    Si,
    /// Ki, Mi, Gi, Ti, Pi (powers of 1024).
    Binary,
    /// m, H, D, M, Y over seconds.
    Sec,
    /// s, m, H, D, M, Y over milliseconds.
    Msec,
    /// No prefixes.
    None,
}

impl UnitSystem {
    /// The system named `name` (lower-cased), `si` for anything unknown, as glyph.py does.
    pub(crate) fn parse(name: &str) -> UnitSystem {
        match name.to_lowercase().as_str() {
            "binary" => UnitSystem::Binary,
            "sec" => UnitSystem::Sec,
            "msec" => UnitSystem::Msec,
            "none" => UnitSystem::None,
            _ => UnitSystem::Si,
        }
    }

    /// The prefixes, largest first (glyph.py's `UnitSystems`).
    fn prefixes(self) -> &'static [(&'static str, f64)] {
        const KI: f64 = 1024.0;
        const K: f64 = 1000.0;
        match self {
            UnitSystem::Binary => &[
                ("Pi", KI * KI * KI * KI * KI),
                ("Ti", KI * KI * KI * KI),
                ("Gi", KI * KI * KI),
                ("Mi", KI * KI),
                ("Ki", KI),
            ],
            UnitSystem::Si => &[
                ("P", K * K * K * K * K),
                ("T", K * K * K * K),
                ("G", K * K * K),
                ("M", K * K),
                ("k", K),
            ],
            UnitSystem::Sec => &[
                ("Y", 31_536_000.0),
                ("M", 2_592_000.0),
                ("D", 86_400.0),
                ("H", 3_600.0),
                ("m", 60.0),
            ],
            UnitSystem::Msec => &[
                ("Y", 31_536_000_000.0),
                ("M", 2_592_000_000.0),
                ("D", 86_400_000.0),
                ("H", 3_600_000.0),
                ("m", 60_000.0),
                ("s", 1_000.0),
            ],
            UnitSystem::None => &[],
        }
    }
}

/// glyph.py's `format_units`: `v` scaled by the largest prefix it (and `step`, when given)
/// reaches, and the prefix.
pub(crate) fn format_units(v: f64, step: Option<f64>, system: UnitSystem) -> (f64, &'static str) {
    for &(prefix, size) in system.prefixes() {
        let fits = v.abs() >= size && step.is_none_or(|s| s >= size);
        if fits {
            let mut v2 = v / size;
            if v2 - v2.floor() < 0.000_000_000_01 && v > 1.0 {
                v2 = v2.floor();
            }
            return (v2, prefix);
        }
    }
    let mut v = v;
    if v - v.floor() < 0.000_000_000_01 && v > 1.0 {
        v = v.floor();
    }
    (v, "")
}

/// Where an axis limit came from (glyph.py's `minValueSource`/`maxValueSource`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    Data,
    Min,
    Max,
    Extremum,
    Limit,
}

impl Source {
    fn name(self) -> &'static str {
        match self {
            Source::Data => "data",
            Source::Min => "min",
            Source::Max => "max",
            Source::Extremum => "extremum",
            Source::Limit => "limit",
        }
    }
}

/// The user's upper bound for an axis (`yMax`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum AxisMax {
    /// Not given: a round value above the data.
    Auto,
    /// `max`: exactly the data's maximum.
    Extremum,
    /// A number.
    Value(f64),
}

/// One y axis being laid out (`_LinearAxisTics` when `log_base` is `None`, else
/// `_LogAxisTics`).
#[derive(Clone, Debug)]
pub(crate) struct Tics {
    min: f64,
    min_source: Source,
    max: f64,
    max_source: Source,
    unit_system: UnitSystem,
    axis_limit: Option<f64>,
    log_base: Option<f64>,
    binary: bool,
    /// The step between labels (`None` on a log axis).
    pub(crate) step: Option<f64>,
    /// The bottom of the axis.
    pub(crate) bottom: f64,
    /// The top of the axis.
    pub(crate) top: f64,
    /// `top - bottom`.
    pub(crate) span: f64,
}

fn check_finite(value: f64, name: &str) -> Result<f64> {
    if value.is_nan() {
        Err(Error::Evaluation(format!("Encountered NaN {name}")))
    } else if value.is_infinite() {
        Err(Error::Evaluation(format!("Encountered infinite {name}")))
    } else {
        Ok(value)
    }
}

/// Python's `math.log(x, base)`.
fn log(x: f64, base: f64) -> f64 {
    x.ln() / base.ln()
}

impl Tics {
    /// An axis over data from `min` to `max`.
    ///
    /// # Errors
    ///
    /// Non-finite data limits, or a log base of 1 or less.
    pub(crate) fn new(
        min: f64,
        max: f64,
        unit_system: UnitSystem,
        log_base: Option<f64>,
    ) -> Result<Tics> {
        if let Some(base) = log_base {
            if base <= 1.0 {
                return Err(Error::Evaluation("Logarithmic base must be greater than one".into()));
            }
            check_finite(base, "log base")?;
        }
        Ok(Tics {
            min: check_finite(min, "data value")?,
            min_source: Source::Data,
            max: check_finite(max, "data value")?,
            max_source: Source::Data,
            unit_system,
            axis_limit: None,
            log_base,
            binary: false,
            step: None,
            bottom: 0.0,
            top: 0.0,
            span: 0.0,
        })
    }

    fn choose_delta(x: f64) -> f64 {
        if x.abs() < 1.0e-9 { 1.0 } else { 0.1 * x.abs() }
    }

    fn reconcile_limits(&mut self) -> Result<()> {
        if self.min < self.max {
            return Ok(());
        }
        let min_fixed = self.min_source == Source::Min;
        let max_fixed = matches!(self.max_source, Source::Max | Source::Limit);
        if min_fixed && max_fixed {
            return Err(Error::Evaluation(format!(
                "The {} must be less than the {}",
                self.min_source.name(),
                self.max_source.name()
            )));
        } else if min_fixed {
            self.max = self.min + Tics::choose_delta(self.min);
        } else if max_fixed {
            self.min = self.max - Tics::choose_delta(self.max);
        } else {
            let delta = Tics::choose_delta(self.min.abs().max(self.max.abs()));
            let average = (self.min + self.max) / 2.0;
            self.min = average - delta;
            self.max = average + delta;
        }
        Ok(())
    }

    /// `applySettings`: the user's minimum, maximum and limit (NaN counts as not given).
    ///
    /// # Errors
    ///
    /// Infinite settings, or a minimum not below a fixed maximum.
    pub(crate) fn apply_settings(
        &mut self,
        axis_min: Option<f64>,
        axis_max: AxisMax,
        axis_limit: Option<f64>,
    ) -> Result<()> {
        if let Some(min) = axis_min.filter(|m| !m.is_nan()) {
            self.min_source = Source::Min;
            self.min = check_finite(min, "axis min")?;
        }
        match axis_max {
            AxisMax::Extremum => self.max_source = Source::Extremum,
            AxisMax::Value(max) if !max.is_nan() => {
                self.max_source = Source::Max;
                self.max = check_finite(max, "axis max")?;
            }
            _ => {}
        }
        match axis_limit.filter(|l| !l.is_nan()) {
            None => self.axis_limit = None,
            Some(limit) if limit < self.max => {
                self.max = check_finite(limit, "axis limit")?;
                self.max_source = Source::Limit;
                self.axis_limit = None;
            }
            Some(limit) if limit.is_infinite() => self.axis_limit = None,
            Some(limit) => self.axis_limit = Some(limit),
        }
        self.reconcile_limits()
    }

    /// `setStep`: a user-given step (ignored on a log axis).
    ///
    /// # Errors
    ///
    /// A non-finite step.
    pub(crate) fn set_step(&mut self, step: f64) -> Result<()> {
        self.step = match self.log_base {
            Some(_) => None,
            None => Some(check_finite(step, "axis step")?),
        };
        Ok(())
    }

    /// `chooseStep`: the step with the least slop over the divisors (ignored on a log axis).
    ///
    /// # Errors
    ///
    /// A divisor below one, or a range too wide to handle.
    pub(crate) fn choose_step(&mut self, divisors: &[i64], binary: bool) -> Result<()> {
        if self.log_base.is_some() {
            self.step = None;
            return Ok(());
        }
        self.binary = binary;
        let default = [4, 5, 6];
        let divisors = if divisors.is_empty() { &default[..] } else { divisors };
        if divisors.iter().any(|d| *d < 1) {
            return Err(Error::Evaluation("Divisors must be greater than or equal to one".into()));
        }
        if self.min == self.max {
            if self.min == 0.0 {
                self.max = 1.0;
            } else if self.min < 0.0 {
                self.min *= 1.1;
                self.max *= 0.9;
            } else {
                self.min *= 0.9;
                self.max *= 1.1;
            }
        }
        let variance = self.max - self.min;
        let max_div = divisors.iter().copied().max().unwrap_or(6) as f64;
        let min_div = divisors.iter().copied().min().unwrap_or(4) as f64;
        let min_step = check_finite(variance / max_div, "value")?;
        let (base, mantissas, mut exponent): (f64, &[f64], f64) = if binary {
            (2.0, &[1.0], (log(min_step, 2.0) - EPSILON).floor())
        } else {
            (10.0, &[1.0, 2.0, 5.0], (min_step.log10() - EPSILON).floor())
        };
        if !exponent.is_finite() {
            return Err(Error::Evaluation("Encountered invalid axis range".into()));
        }
        let mut best: Option<(f64, f64)> = None;
        // The loop ends once steps are too large to beat the best slop; the bound only
        // guards against ranges no float step can cover.
        'steps: for _ in 0..4096 {
            let multiplier = base.powf(exponent);
            for &mantissa in mantissas {
                let step = mantissa * multiplier;
                if step < min_step * (1.0 - EPSILON) {
                    continue;
                }
                if let Some((best_slop, _)) = best
                    && step * min_div >= 2.0 * best_slop + variance
                {
                    break 'steps;
                }
                for &divisor in divisors {
                    if let Some(slop) = self.compute_slop(step, divisor as f64)
                        && best.is_none_or(|(b, _)| slop < b)
                    {
                        best = Some((slop, step));
                    }
                }
            }
            exponent += 1.0;
        }
        match best {
            Some((_, step)) => {
                self.step = Some(step);
                Ok(())
            }
            None => Err(Error::Evaluation("could not choose a y axis step".into())),
        }
    }

    fn compute_slop(&self, step: f64, divisor: f64) -> Option<f64> {
        let bottom = step * (self.min / step + EPSILON).floor();
        let top = bottom + step * divisor;
        (top >= self.max - EPSILON * step).then(|| (top - self.max).max(self.min - bottom))
    }

    /// `chooseLimits`: the axis' bottom and top.
    ///
    /// # Errors
    ///
    /// A log axis over values that are not all positive, or a zero step.
    pub(crate) fn choose_limits(&mut self) -> Result<()> {
        match self.log_base {
            Some(base) => {
                if self.min <= 0.0 {
                    return Err(Error::Evaluation(
                        "Logarithmic scale specified with a dataset with a minimum value less than or equal to zero".into(),
                    ));
                }
                self.bottom = base.powf(log(self.min, base).floor());
                self.top = base.powf(log(self.max, base).ceil());
                self.span = self.top - self.bottom;
                if self.span == 0.0 {
                    self.top *= base;
                    self.span = self.top - self.bottom;
                }
            }
            None => {
                let step = self.step.unwrap_or(1.0);
                if step == 0.0 {
                    return Err(Error::Evaluation("float division by zero (yStep)".into()));
                }
                self.bottom = if self.min_source == Source::Data {
                    step * (self.min / step + EPSILON).floor()
                } else {
                    self.min
                };
                if self.max_source == Source::Data {
                    self.top = step * (self.max / step - EPSILON).ceil();
                    if let Some(limit) = self.axis_limit
                        && self.top > limit + EPSILON * step
                    {
                        self.top = limit;
                    }
                } else {
                    self.top = self.max;
                }
                self.span = self.top - self.bottom;
                if self.span == 0.0 {
                    self.top += 1.0;
                    self.span += 1.0;
                }
            }
        }
        if !(self.bottom.is_finite() && self.top.is_finite()) {
            return Err(Error::Evaluation("math range error (y axis limits)".into()));
        }
        Ok(())
    }

    /// `getLabelValues`: where the labels (and major grid lines) go.
    ///
    /// # Errors
    ///
    /// A step that is not positive, or a runaway number of labels.
    pub(crate) fn label_values(&mut self) -> Result<Vec<f64>> {
        let mut values = Vec::new();
        match self.log_base {
            Some(base) => {
                let mut value = base.powf((log(self.bottom, base) - EPSILON).ceil());
                while value < self.top * (1.0 + EPSILON) {
                    values.push(value);
                    if values.len() > MAX_LABELS {
                        return Err(too_many_labels());
                    }
                    value *= base;
                }
            }
            None => {
                let mut step = self.step.unwrap_or(0.0);
                if step <= 0.0 {
                    return Err(Error::Evaluation("The step size must be positive".into()));
                }
                if self.span > 1000.0 * step {
                    // What glyph.py does with an absurd step: pick a sensible one.
                    self.choose_step(&[], false)?;
                    step = self.step.unwrap_or(1.0);
                }
                let start = step * (self.bottom / step - EPSILON).ceil();
                let mut i = 0.0;
                loop {
                    let value = start + i * step;
                    if value > self.top + EPSILON * step {
                        break;
                    }
                    values.push(value);
                    if values.len() > MAX_LABELS {
                        return Err(too_many_labels());
                    }
                    i += 1.0;
                }
            }
        }
        Ok(values)
    }

    /// `makeLabel`: the label text for `value` (with a trailing space, or a prefix and a
    /// space, as graphite-web writes it).
    pub(crate) fn make_label(&self, value: f64) -> String {
        let (value, prefix) = format_units(value, self.step, self.unit_system);
        let (span, span_prefix) = format_units(self.span, self.step, self.unit_system);
        let prefix = if prefix.is_empty() { String::new() } else { format!("{prefix} ") };
        if value < 0.1 {
            format!("{} {prefix}", format_g(value))
        } else if value < 1.0 {
            format!("{value:.2} {prefix}")
        } else if span > 10.0 || span_prefix != prefix {
            // glyph.py compares the span's bare prefix with the value's spaced one, so any
            // prefixed label takes this branch.
            // The value is always a float here, so Python's "%.1f" branch.
            format!("{value:.1} {prefix}")
        } else if span > 3.0 {
            format!("{value:.1} {prefix}")
        } else if span > 0.1 {
            format!("{value:.2} {prefix}")
        } else {
            format!("{} {prefix}", format_g(value))
        }
    }
}

fn too_many_labels() -> Error {
    Error::Evaluation(format!(
        "more than {MAX_LABELS} y axis labels; choose another yStep or logBase"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn axis(min: f64, max: f64) -> (Tics, Vec<String>) {
        let mut t = Tics::new(min, max, UnitSystem::Si, None).unwrap();
        t.apply_settings(None, AxisMax::Auto, None).unwrap();
        t.choose_step(&[4, 5, 6], false).unwrap();
        t.choose_limits().unwrap();
        let values = t.label_values().unwrap();
        let labels = values.iter().map(|v| t.make_label(*v)).collect();
        (t, labels)
    }

    #[test]
    fn linear_labels_as_graphite_web() {
        // graphite-web's labels for data from 5 to 16 (the basic golden graph).
        let (t, labels) = axis(5.0, 16.0);
        assert_eq!((t.bottom, t.top, t.step), (4.0, 16.0, Some(2.0)));
        assert_eq!(labels, ["4.0 ", "6.0 ", "8.0 ", "10.0 ", "12.0 ", "14.0 ", "16.0 "]);
        // A prefix only once the step reaches it.
        let (_, labels) = axis(0.0, 2500.0);
        assert_eq!(labels, ["0 ", "500.0 ", "1000.0 ", "1500.0 ", "2000.0 ", "2500.0 "]);
        let (_, labels) = axis(0.0, 0.5);
        assert_eq!(labels, ["0 ", "0.10 ", "0.20 ", "0.30 ", "0.40 ", "0.50 "]);
    }

    #[test]
    fn equal_limits_are_spread() {
        // graphite-web: 2.70 to 3.30 by 0.1, and -1 to 1 by 0.5.
        let (t, labels) = axis(3.0, 3.0);
        assert_eq!((t.bottom, t.top, t.step), (2.7, 3.3000000000000003, Some(0.1)));
        assert_eq!(labels, ["2.70 ", "2.80 ", "2.90 ", "3.00 ", "3.10 ", "3.20 ", "3.30 "]);
        let (t, labels) = axis(0.0, 0.0);
        assert_eq!((t.bottom, t.top), (-1.0, 1.0));
        assert_eq!(labels, ["-1 ", "-0.5 ", "0 ", "0.50 ", "1.00 "]);
    }

    #[test]
    fn fixed_limits_conflict() {
        let mut t = Tics::new(0.0, 10.0, UnitSystem::Si, None).unwrap();
        let e = t.apply_settings(Some(5.0), AxisMax::Value(2.0), None).unwrap_err();
        assert_eq!(e.to_string(), "The min must be less than the max");
    }

    #[test]
    fn log_axis_powers() {
        let mut t = Tics::new(3.0, 2000.0, UnitSystem::Si, Some(10.0)).unwrap();
        t.apply_settings(None, AxisMax::Auto, None).unwrap();
        t.choose_step(&[], false).unwrap();
        t.choose_limits().unwrap();
        let values = t.label_values().unwrap();
        assert_eq!(values, [1.0, 10.0, 100.0, 1000.0, 10000.0]);
        let labels: Vec<String> = values.iter().map(|v| t.make_label(*v)).collect();
        assert_eq!(labels, ["1.0 ", "10.0 ", "100.0 ", "1.0 k ", "10.0 k "]);
        assert!(Tics::new(0.0, 1.0, UnitSystem::Si, Some(1.0)).is_err());
    }

    #[test]
    fn prefixed_labels_have_one_decimal() {
        // graphite-web: log base 2 over 300..1800 gives 256, 512, 1.0 k, 2.0 k.
        let mut t = Tics::new(300.0, 1800.0, UnitSystem::Si, Some(2.0)).unwrap();
        t.apply_settings(None, AxisMax::Auto, None).unwrap();
        t.choose_step(&[], false).unwrap();
        t.choose_limits().unwrap();
        let labels: Vec<String> =
            t.label_values().unwrap().iter().map(|v| t.make_label(*v)).collect();
        assert_eq!(labels, ["256.0 ", "512.0 ", "1.0 k ", "2.0 k "]);
    }

    #[test]
    fn units() {
        assert_eq!(format_units(2048.0, Some(1024.0), UnitSystem::Binary), (2.0, "Ki"));
        assert_eq!(format_units(7200.0, Some(3600.0), UnitSystem::Sec), (2.0, "H"));
        assert_eq!(format_units(1500.0, Some(500.0), UnitSystem::Si), (1500.0, ""));
        assert_eq!(format_units(5.0, None, UnitSystem::None), (5.0, ""));
    }
}

/// Every y axis of `tests/data/image/axis_golden.json`, laid out by graphite-web's glyph.py
/// (`axis_golden.py`), laid out again here: the same limits, label values and label texts,
/// or an error where glyph.py raises.
#[cfg(test)]
mod golden {
    use super::*;

    /// A float written as Python's repr (exact, unlike a JSON number read by serde_json).
    #[derive(serde::Deserialize)]
    struct F(String);

    impl F {
        fn get(&self) -> f64 {
            self.0.parse().unwrap()
        }
    }

    #[derive(serde::Deserialize)]
    struct Case {
        min: F,
        max: F,
        system: String,
        log: Option<F>,
        ymin: Option<F>,
        /// A number, or "max".
        ymax: Option<F>,
        ylimit: Option<F>,
        ystep: Option<F>,
        divisors: Vec<i64>,
        ok: Option<Expected>,
        error: Option<String>,
    }

    #[derive(serde::Deserialize)]
    struct Expected {
        bottom: serde_json::Value,
        top: serde_json::Value,
        values: Vec<F>,
        labels: Vec<String>,
    }

    /// `bottom`/`top` may be Python ints (`0`) or floats (as repr strings).
    fn number(v: &serde_json::Value) -> f64 {
        match v {
            serde_json::Value::String(s) => s.parse().unwrap(),
            other => other.as_f64().unwrap(),
        }
    }

    fn lay_out(c: &Case) -> Result<(f64, f64, Vec<f64>, Vec<String>)> {
        let mut t = Tics::new(
            c.min.get(),
            c.max.get(),
            UnitSystem::parse(&c.system),
            c.log.as_ref().map(F::get),
        )?;
        let axis_max = match &c.ymax {
            None => AxisMax::Auto,
            Some(F(s)) if s == "max" => AxisMax::Extremum,
            Some(f) => AxisMax::Value(f.get()),
        };
        t.apply_settings(c.ymin.as_ref().map(F::get), axis_max, c.ylimit.as_ref().map(F::get))?;
        match &c.ystep {
            Some(step) => t.set_step(step.get())?,
            None => t.choose_step(&c.divisors, c.system == "binary")?,
        }
        t.choose_limits()?;
        let values = t.label_values()?;
        let labels = values.iter().map(|v| t.make_label(*v)).collect();
        Ok((t.bottom, t.top, values, labels))
    }

    #[test]
    fn axes_match_glyph_py() {
        let text = include_str!("../../tests/data/image/axis_golden.json");
        let cases: Vec<Case> = serde_json::from_str(text).unwrap();
        let mut failures = Vec::new();
        for (i, c) in cases.iter().enumerate() {
            match (lay_out(c), &c.ok, &c.error) {
                (Ok(got), Some(want), _) => {
                    let values: Vec<f64> = want.values.iter().map(F::get).collect();
                    let same = got.0 == number(&want.bottom)
                        && got.1 == number(&want.top)
                        && got.2 == values
                        && got.3 == want.labels;
                    if !same {
                        failures.push(format!(
                            "case {i}: got {got:?}, want ({}, {}, {values:?}, {:?})",
                            want.bottom, want.top, want.labels
                        ));
                    }
                }
                (Err(_), None, Some(_)) => {}
                (got, _, error) => failures.push(format!("case {i}: got {got:?}, want {error:?}")),
            }
        }
        assert!(
            failures.is_empty(),
            "{} of {} differ:\n{}",
            failures.len(),
            cases.len(),
            failures.join("\n")
        );
    }
}
