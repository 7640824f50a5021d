//! The Transform family (graphite-reference §4.4): functions that map each series of a list
//! to a new series — point-wise arithmetic (`scale`, `offset`, `pow`, `log`...), differences
//! and sums over time (`derivative`, `perSecond`, `integral`...), bucketing (`summarize`,
//! `smartSummarize`, `hitcount`), null handling (`keepLastValue`, `interpolate`,
//! `transformNull`), moves in time (`timeShift`, `timeStack`, `delay`, `timeSlice`) and the
//! generators `time` and `sin`.
//!
//! Every function reproduces graphite-web 1.1.8's `functions.py`, including its quirks,
//! because dashboards key on the names and alerts compare the values:
//!
//! * Two ways of producing a result, kept apart on purpose. Functions that graphite-web writes
//!   *in place* (`series[i] = ...` while iterating) keep the series' `values_per_point`,
//!   options and path expression handling; graphite-web iterates the *consolidated* values but
//!   writes back at *raw* indexes ([`for_each_point`] does the same). Functions that build a
//!   new series with `series.copy(...)` lose `values_per_point` and the graph options
//!   ([`copied`]).
//! * Parameters are converted as graphite-web's parameter validation converts them before the
//!   call: a `float` parameter given as `2` is `2.0`, so `scale(x,2)` is tagged `scale=2.0`.
//! * Names format numbers with Python's `%g`, `%d` (truncating) or `str()`, exactly as each
//!   function does.
//!
//! Deliberate differences from graphite-web (each is documented where it happens): arguments
//! graphite-web would crash on (a non-positive interval, which makes `summarize` loop forever,
//! a zero `step` for `time`/`sin`, an unknown aggregation function) are
//! [`Error::InvalidArgument`]s; `nonNegativeDerivative`/`perSecond` with `maxValue`/`minValue`
//! treat a null as a null (graphite-web on Python 3 answers 500 when it compares `None`).

use crate::aggfunc::{AGG_FUNC_NAMES, AggFunc};
use crate::error::{Error, Result};
use crate::eval::Context;
use crate::expr::Literal;
use crate::function::{Args, Default, FunctionDef, Param, ParamType};
use crate::pyfmt::{float_repr, format_g};
use crate::series::{Series, py_max, py_min};

const GROUP: &str = "Transform";

/// `seriesList`, required: the first parameter of nearly every function here.
const SERIES_LIST: Param = Param::new("seriesList", ParamType::SeriesList).required();

/// The interval suggestions graphite-web offers for the bucketing functions.
const BUCKET_SUGGESTIONS: &[&str] = &["10min", "1h", "1d"];

/// The shift suggestions graphite-web offers for `timeShift` and `timeStack`.
const SHIFT_SUGGESTIONS: &[&str] = &["1h", "6h", "12h", "1d", "2d", "7d", "14d", "30d"];

/// Units `smartSummarize` can align to (graphite-web's `*_STRING` constants; it also lists
/// `None`, `True` and `False`, which a list of strings cannot hold).
const ALIGN_UNITS: &[&str] = &["years", "months", "weeks", "days", "hours", "minutes", "seconds"];

const SECONDS_PER_DAY: i64 = 86_400;

/// A function over a single series list with no other parameter.
const fn unary(
    name: &'static str,
    description: &'static str,
    call: crate::function::FunctionImpl,
) -> FunctionDef {
    FunctionDef { name, group: GROUP, description, params: &[SERIES_LIST], aggregator: false, call }
}

/// The functions this family defines.
pub(crate) const FUNCTIONS: &[FunctionDef] = &[
    unary("absolute", "Replaces every value by its absolute value.", absolute),
    FunctionDef {
        name: "add",
        group: GROUP,
        description: "Adds a constant to every non-null value. The name shows the constant \
                      truncated to an integer, as graphite-web prints it.",
        params: &[SERIES_LIST, Param::new("constant", ParamType::Float).required()],
        aggregator: false,
        call: add,
    },
    FunctionDef {
        name: "delay",
        group: GROUP,
        description: "Moves every value later by a number of steps (earlier when negative), \
                      filling the vacated points with nulls.",
        params: &[SERIES_LIST, Param::new("steps", ParamType::Integer).required()],
        aggregator: false,
        call: delay,
    },
    unary(
        "derivative",
        "The difference between each value and the one before it (null when either is null). \
         Not divided by time: see perSecond for a rate.",
        derivative,
    ),
    unary("exp", "Raises e to the power of every value.", exp),
    FunctionDef {
        name: "hitcount",
        group: GROUP,
        description: "Reads the values as per-second rates and estimates the number of hits in \
                      each interval bucket, weighting every point by the seconds it overlaps \
                      the bucket. Buckets end at the end of the series; alignToInterval \
                      re-fetches from the start of the day, hour or minute instead.",
        params: &[
            SERIES_LIST,
            Param::new("intervalString", ParamType::Interval)
                .required()
                .suggestions(BUCKET_SUGGESTIONS),
            Param::new("alignToInterval", ParamType::Boolean).default(Default::Bool(false)),
        ],
        aggregator: false,
        call: hitcount,
    },
    unary(
        "integral",
        "A running total of the values over time; null points stay null without resetting \
         the total.",
        integral,
    ),
    FunctionDef {
        name: "integralByInterval",
        group: GROUP,
        description: "A running total that starts again from zero at every interval boundary \
                      counted from the request's start time (for totals per hour, per day...).",
        params: &[SERIES_LIST, Param::new("intervalUnit", ParamType::String).required()],
        aggregator: false,
        call: integral_by_interval,
    },
    FunctionDef {
        name: "interpolate",
        group: GROUP,
        description: "Fills runs of nulls (up to limit long) by drawing a straight line between \
                      the known values on either side.",
        params: &[
            SERIES_LIST,
            Param::new("limit", ParamType::IntOrInf).default(Default::Float(f64::INFINITY)),
        ],
        aggregator: false,
        call: interpolate,
    },
    unary("invert", "Replaces every value x by 1/x.", invert),
    unary(
        "isNonNull",
        "1 where a series has a value, 0 where it is null: sum the result to count the series \
         reporting at each point.",
        is_non_null,
    ),
    FunctionDef {
        name: "keepLastValue",
        group: GROUP,
        description: "Fills runs of nulls (up to limit long) with the last value seen before \
                      them, so a line continues across gaps.",
        params: &[
            SERIES_LIST,
            Param::new("limit", ParamType::IntOrInf).default(Default::Float(f64::INFINITY)),
        ],
        aggregator: false,
        call: keep_last_value,
    },
    FunctionDef {
        name: "log",
        group: GROUP,
        description: "The logarithm of every value in the given base (10 by default); values \
                      at or below zero become null.",
        params: &[SERIES_LIST, Param::new("base", ParamType::Integer).default(Default::Int(10))],
        aggregator: false,
        call: logarithm,
    },
    unary("logit", "Applies log(x / (1 - x)) to every value; null where it is undefined.", logit),
    unary(
        "minMax",
        "Scales every series into [0, 1]: (value - min) / (max - min), 0 for a flat series.",
        min_max,
    ),
    FunctionDef {
        name: "nonNegativeDerivative",
        group: GROUP,
        description: "Like derivative, for counters: a decrease gives null, or, with maxValue \
                      and/or minValue, the increase computed as if the counter wrapped. Values \
                      above maxValue or below minValue are dropped.",
        params: &[
            SERIES_LIST,
            Param::new("maxValue", ParamType::Float),
            Param::new("minValue", ParamType::Float),
        ],
        aggregator: false,
        call: non_negative_derivative,
    },
    FunctionDef {
        name: "offset",
        group: GROUP,
        description: "Adds a constant to every non-null value.",
        params: &[SERIES_LIST, Param::new("factor", ParamType::Float).required()],
        aggregator: false,
        call: offset,
    },
    unary(
        "offsetToZero",
        "Subtracts each series' minimum from its values, so every series starts from zero.",
        offset_to_zero,
    ),
    FunctionDef {
        name: "perSecond",
        group: GROUP,
        description: "nonNegativeDerivative divided by the step: the per-second rate of a \
                      counter, rounded to 6 decimals.",
        params: &[
            SERIES_LIST,
            Param::new("maxValue", ParamType::Float),
            Param::new("minValue", ParamType::Float),
        ],
        aggregator: false,
        call: per_second,
    },
    FunctionDef {
        name: "pow",
        group: GROUP,
        description: "Raises every value to the given power; null where the result is not a \
                      real number.",
        params: &[SERIES_LIST, Param::new("factor", ParamType::Float).required()],
        aggregator: false,
        call: pow,
    },
    FunctionDef {
        name: "round",
        group: GROUP,
        description: "Rounds every value to the given number of decimals (negative: to tens, \
                      hundreds...), halves to even.",
        params: &[
            SERIES_LIST,
            Param::new("precision", ParamType::Integer).default(Default::Int(0)),
        ],
        aggregator: false,
        call: round,
    },
    FunctionDef {
        name: "scale",
        group: GROUP,
        description: "Multiplies every value by a constant.",
        params: &[SERIES_LIST, Param::new("factor", ParamType::Float).required()],
        aggregator: false,
        call: scale,
    },
    FunctionDef {
        name: "scaleToSeconds",
        group: GROUP,
        description: "Turns per-step values into per-N-seconds values (value * N / step, \
                      rounded to 6 decimals), whatever the resolution of the data.",
        params: &[SERIES_LIST, Param::new("seconds", ParamType::Float).required()],
        aggregator: false,
        call: scale_to_seconds,
    },
    unary("sigmoid", "Applies 1 / (1 + e^-x) to every value.", sigmoid),
    FunctionDef {
        name: "smartSummarize",
        group: GROUP,
        description: "Like summarize, with buckets starting at the request's start time, \
                      optionally first moved back to the start of its year, month, week, day, \
                      hour, minute or second (alignTo).",
        params: &[
            SERIES_LIST,
            Param::new("intervalString", ParamType::Interval)
                .required()
                .suggestions(BUCKET_SUGGESTIONS),
            Param::new("func", ParamType::AggFunc)
                .default(Default::Str("sum"))
                .options(AGG_FUNC_NAMES),
            Param::new("alignTo", ParamType::String).options(ALIGN_UNITS),
        ],
        aggregator: false,
        call: smart_summarize,
    },
    unary("squareRoot", "The square root of every value; null for negative values.", square_root),
    FunctionDef {
        name: "summarize",
        group: GROUP,
        description: "Groups the points into buckets of the given interval and reduces each \
                      bucket with an aggregation function (sum by default). Buckets are aligned \
                      to multiples of the interval unless alignToFrom starts them at the series' \
                      start.",
        params: &[
            SERIES_LIST,
            Param::new("intervalString", ParamType::Interval)
                .required()
                .suggestions(BUCKET_SUGGESTIONS),
            Param::new("func", ParamType::AggFunc)
                .default(Default::Str("sum"))
                .options(AGG_FUNC_NAMES),
            Param::new("alignToFrom", ParamType::Boolean).default(Default::Bool(false)),
        ],
        aggregator: false,
        call: summarize,
    },
    FunctionDef {
        name: "timeShift",
        group: GROUP,
        description: "Draws the series as they were an interval earlier (later with a leading \
                      '+'), re-fetched over the shifted range and drawn over the current one. \
                      alignDst compensates for a daylight-saving change between the two ranges.",
        params: &[
            SERIES_LIST,
            Param::new("timeShift", ParamType::Interval).required().suggestions(SHIFT_SUGGESTIONS),
            Param::new("resetEnd", ParamType::Boolean).default(Default::Bool(true)),
            Param::new("alignDst", ParamType::Boolean).default(Default::Bool(false)),
        ],
        aggregator: false,
        call: time_shift,
    },
    FunctionDef {
        name: "timeSlice",
        group: GROUP,
        description: "Keeps only the values between two times (inclusive); the rest become null.",
        params: &[
            SERIES_LIST,
            Param::new("startSliceAt", ParamType::Date).required(),
            Param::new("endSliceAt", ParamType::Date).default(Default::Str("now")),
        ],
        aggregator: false,
        call: time_slice,
    },
    FunctionDef {
        name: "timeStack",
        group: GROUP,
        description: "The first series shifted back by timeShiftUnit once for every multiplier \
                      from timeShiftStart up to (not including) timeShiftEnd, all drawn over the \
                      current range: this week against each of the weeks before, for example.",
        params: &[
            SERIES_LIST,
            Param::new("timeShiftUnit", ParamType::Interval)
                .default(Default::Str("1d"))
                .suggestions(SHIFT_SUGGESTIONS),
            Param::new("timeShiftStart", ParamType::Integer).default(Default::Int(0)),
            Param::new("timeShiftEnd", ParamType::Integer).default(Default::Int(7)),
        ],
        aggregator: false,
        call: time_stack,
    },
    FunctionDef {
        name: "transformNull",
        group: GROUP,
        description: "Replaces nulls by a default value (0 unless given); with \
                      referenceSeries, only at points where one of those series has a value.",
        params: &[
            SERIES_LIST,
            Param::new("default", ParamType::Float).default(Default::Int(0)),
            Param::new("referenceSeries", ParamType::SeriesList),
        ],
        aggregator: false,
        call: transform_null,
    },
    alias(TIME_FUNCTION, "time"),
    TIME_FUNCTION,
    alias(SIN_FUNCTION, "sin"),
    SIN_FUNCTION,
];

const TIME_FUNCTION: FunctionDef = FunctionDef {
    name: "timeFunction",
    group: GROUP,
    description: "A series whose value at every step is its own timestamp (epoch seconds), \
                  named as given.",
    params: &[
        Param::new("name", ParamType::String).required(),
        Param::new("step", ParamType::Integer).default(Default::Int(60)),
    ],
    aggregator: false,
    call: time_function,
};

const SIN_FUNCTION: FunctionDef = FunctionDef {
    name: "sinFunction",
    group: GROUP,
    description: "A series whose value at every step is the sine of its timestamp times \
                  amplitude, named as given.",
    params: &[
        Param::new("name", ParamType::String).required(),
        Param::new("amplitude", ParamType::Integer).default(Default::Int(1)),
        Param::new("step", ParamType::Integer).default(Default::Int(60)),
    ],
    aggregator: false,
    call: sin_function,
};

/// An alias of a definition (`time` for `timeFunction`): same parameters and code.
const fn alias(mut def: FunctionDef, name: &'static str) -> FunctionDef {
    def.name = name;
    def
}

// ---------------------------------------------------------------------------------------------
// Shared helpers.

/// graphite-web's in-place idiom, `for i, value in enumerate(series): series[i] = f(value)`:
/// `f` sees the *consolidated* value at index `i` and the *raw* slot at index `i` (they are
/// the same unless `values_per_point > 1`, a case graphite-web handles this odd way too).
/// Writes never land ahead of the values still to be read, so reading the consolidated
/// values up front changes nothing.
fn for_each_point(
    series: &mut Series,
    mut f: impl FnMut(usize, Option<f64>, &mut Option<f64>) -> Result<()>,
) -> Result<()> {
    let consolidated = series.consolidated();
    for (i, value) in consolidated.into_iter().enumerate() {
        if let Some(slot) = series.values.get_mut(i) {
            f(i, value, slot)?;
        }
    }
    Ok(())
}

/// Writes `computed` back as graphite-web's `series.extend(values); del series[:len(values)]`
/// does (`transformNull`, `isNonNull`): the raw values past the computed ones come first.
fn extend_and_trim(series: &mut Series, computed: Vec<Option<f64>>) {
    let mut all = std::mem::take(&mut series.values);
    all.extend(computed.iter().copied());
    let skip = computed.len().min(all.len());
    series.values = all.split_off(skip);
}

/// graphite-web's `series.copy(name=..., values=...)`: a new series with the tags, step,
/// window, consolidation function and xFilesFactor of `series`, its path expression set to
/// the new name, one value per point, and no graph options (`copy` does not carry them).
fn copied(series: &Series, name: String, values: Vec<Option<f64>>) -> Series {
    let mut out = series.renamed(name);
    out.values = values;
    out.values_per_point = 1;
    out.options.clear();
    out
}

/// Python's `str()` of a float, as graphite-web stores a float parameter in a tag.
fn tag_float(x: f64) -> String {
    float_repr(x)
}

/// Python's `"%d" % x` for a float: truncated toward zero, every digit printed.
fn percent_d(func: &str, x: f64) -> Result<String> {
    if !x.is_finite() {
        return Err(Error::arg(format!("{func}(): cannot format {} as an integer", float_repr(x))));
    }
    // Adding 0.0 turns -0.0 (from truncating -0.5) into 0.0, which prints without a sign.
    Ok(format!("{:.0}", x.trunc() + 0.0))
}

/// Python's `round(x, ndigits)` for a float: the decimal nearest to the exact binary value,
/// ties to even, read back as a float (CPython goes through a correctly rounded decimal
/// string; Rust's formatting rounds the exact value the same way).
fn py_round(x: f64, ndigits: i64) -> f64 {
    if !x.is_finite() || ndigits > 323 {
        return x;
    }
    if ndigits < -308 {
        return 0.0 * x;
    }
    if let Ok(decimals) = usize::try_from(ndigits) {
        return format!("{x:.decimals$}").parse().unwrap_or(x);
    }
    // Negative ndigits: round the exact integer part (and the fraction, for ties) to a
    // multiple of 10^k by hand.
    let k = usize::try_from(-ndigits).unwrap_or(0);
    let digits = format!("{:.0}", x.abs().trunc());
    let fraction_nonzero = x.fract() != 0.0;
    let padded = format!("{}{digits}", "0".repeat((k + 1).saturating_sub(digits.len())));
    let (kept, dropped) = padded.split_at(padded.len() - k);
    let first = dropped.as_bytes().first().map_or(0, |b| b - b'0');
    let rest_nonzero = dropped.bytes().skip(1).any(|b| b != b'0') || fraction_nonzero;
    let last_kept_odd = kept.as_bytes().last().is_some_and(|b| (b - b'0') % 2 == 1);
    let round_up = first > 5 || (first == 5 && (rest_nonzero || last_kept_odd));
    let mut value: f64 = format!("{kept}{}", "0".repeat(k)).parse().unwrap_or(0.0);
    if round_up {
        let unit: f64 = format!("1{}", "0".repeat(k)).parse().unwrap_or(f64::INFINITY);
        value += unit;
    }
    if x.is_sign_negative() { -value } else { value }
}

/// CPython's `math.pow` as graphite-web's `safePow` uses it: null when either side is null or
/// when finite inputs give a non-finite result (Python raises ValueError/OverflowError).
fn safe_pow(a: Option<f64>, b: f64) -> Option<f64> {
    let a = a?;
    let r = a.powf(b);
    if a.is_finite() && b.is_finite() && !r.is_finite() { None } else { Some(r) }
}

/// CPython's `math.exp`: an overflow from a finite input is an error ("math range error"),
/// which graphite-web lets through as a 500.
fn checked_exp(func: &str, x: f64) -> Result<f64> {
    let r = x.exp();
    if r.is_infinite() && x.is_finite() {
        return Err(Error::Evaluation(format!(
            "{func}(): math range error (exp of {})",
            float_repr(x)
        )));
    }
    Ok(r)
}

/// An interval argument in seconds, as graphite-web's `parseTimeOffset` reads it (`"5min"`,
/// `"-1d"`, `"1h30min"`).
fn parse_offset(func: &str, text: &str) -> Result<i64> {
    let bad = |why: &str| Error::arg(format!("{func}(): invalid interval '{text}': {why}"));
    let (sign, mut rest) = match text.chars().next() {
        None => return Ok(0),
        Some(c) if c.is_ascii_digit() => (1i64, text),
        Some('+') => (1, &text[1..]),
        Some('-') => (-1, &text[1..]),
        Some(_) => return Err(bad("it must start with a number, '+' or '-'")),
    };
    let mut total: i64 = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad("a number is missing"));
        }
        let num: i64 = rest[..digits].parse().map_err(|_| bad("the number is too large"))?;
        rest = &rest[digits..];
        let unit_len: usize =
            rest.char_indices().find(|(_, c)| !c.is_alphabetic()).map_or(rest.len(), |(i, _)| i);
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let seconds = unit_seconds(unit).ok_or_else(|| bad(&format!("invalid unit '{unit}'")))?;
        total = num
            .checked_mul(seconds)
            .and_then(|n| n.checked_mul(sign))
            .and_then(|n| total.checked_add(n))
            .ok_or_else(|| bad("it is too large"))?;
    }
    // Python's timedelta stops at 999999999 days.
    if total.abs() >= 999_999_999 * SECONDS_PER_DAY {
        return Err(bad("it is too large"));
    }
    Ok(total)
}

/// graphite-web's `getUnitString`, in seconds (months are 30 days, years 365), checked in its
/// order so that `min` is minutes and `mon` months, and a bare `m` is rejected.
fn unit_seconds(unit: &str) -> Option<i64> {
    Some(match unit_name(unit)? {
        "seconds" => 1,
        "minutes" => 60,
        "hours" => 3600,
        "days" => SECONDS_PER_DAY,
        "weeks" => 7 * SECONDS_PER_DAY,
        "months" => 30 * SECONDS_PER_DAY,
        _ => 365 * SECONDS_PER_DAY,
    })
}

/// graphite-web's `getUnitString`: the unit a prefix names.
fn unit_name(unit: &str) -> Option<&'static str> {
    Some(if unit.starts_with('s') {
        "seconds"
    } else if unit.starts_with("min") {
        "minutes"
    } else if unit.starts_with('h') {
        "hours"
    } else if unit.starts_with('d') {
        "days"
    } else if unit.starts_with('w') {
        "weeks"
    } else if unit.starts_with("mon") {
        "months"
    } else if unit.starts_with('y') {
        "years"
    } else {
        return None;
    })
}

/// A bucket width for `summarize`, `smartSummarize` and `hitcount`: a positive interval.
/// graphite-web divides by it (zero raises) and loops until it passes the end (a negative one
/// never does), so both are refused here.
fn bucket_interval(func: &str, text: &str) -> Result<i64> {
    let interval = parse_offset(func, text)?;
    if interval <= 0 {
        return Err(Error::arg(format!(
            "{func}(): the interval '{text}' must be positive, got {interval} seconds"
        )));
    }
    Ok(interval)
}

/// Refuses to build more points than the request may return (graphite-web has no limit; a
/// one-second bucket over years would exhaust memory).
fn check_points(ctx: &Context<'_>, func: &str, points: i64) -> Result<()> {
    let max = ctx.limits.max_points;
    if usize::try_from(points).map_or(true, |p| p > max) {
        return Err(Error::Limit(format!(
            "{func}() would build more than {max} points (limit max_points)"
        )));
    }
    Ok(())
}

/// The expression of the first argument, for the functions that re-evaluate it over another
/// range (graphite-web's `requestContext['args'][0]`).
fn first_expr<'c>(args: &Args<'c, '_>) -> Result<&'c crate::expr::Expr> {
    args.expr(0).ok_or_else(|| {
        Error::arg(format!("{}(): the first argument must be a series expression", args.def.name))
    })
}

// ---------------------------------------------------------------------------------------------
// Calendar arithmetic in the request's time zone, for smartSummarize and hitcount alignment.

/// The UTC offset (seconds east) of `tz` at `t`.
fn utc_offset(_tz: &crate::time::TimeZone, _t: i64) -> i64 {
    0
}

/// Whether `t` falls in daylight-saving time in `tz`.
fn is_dst(_tz: &crate::time::TimeZone, _t: i64) -> bool {
    false
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count since 1970-01-01: `(year, month, day)`.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (if month <= 2 { yoe + era * 400 + 1 } else { yoe + era * 400 }, month, day)
}

/// A calendar unit to truncate a time to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Truncate {
    Year,
    Month,
    /// To the start of the day of the week given as ISO weekday (1 = Monday).
    Week(i64),
    Day,
    Hour,
    Minute,
    Second,
}

/// `t` truncated to `unit` as graphite-web does it: the wall-clock fields of `t` in `tz`,
/// rebuilt with *the same UTC offset* as `t` (`datetime(..., tzinfo=s.tzinfo)` keeps pytz's
/// offset of the original time, so no daylight-saving change is applied).
fn truncate_time(t: i64, tz: &crate::time::TimeZone, unit: Truncate) -> i64 {
    let offset = utc_offset(tz, t);
    let local = t + offset;
    let days = local.div_euclid(SECONDS_PER_DAY);
    let secs = local.rem_euclid(SECONDS_PER_DAY);
    let (year, month, _) = civil_from_days(days);
    let local_start = match unit {
        Truncate::Year => days_from_civil(year, 1, 1) * SECONDS_PER_DAY,
        Truncate::Month => days_from_civil(year, month, 1) * SECONDS_PER_DAY,
        Truncate::Week(iso_day) => {
            // 1970-01-01 was a Thursday (ISO weekday 4).
            let weekday = (days + 3).rem_euclid(7) + 1;
            let back = (weekday - iso_day).rem_euclid(7);
            (days - back) * SECONDS_PER_DAY
        }
        Truncate::Day => days * SECONDS_PER_DAY,
        Truncate::Hour => local - secs % 3600,
        Truncate::Minute => local - secs % 60,
        Truncate::Second => local,
    };
    local_start - offset
}

// ---------------------------------------------------------------------------------------------
// Point-wise functions (graphite-web writes them in place).

fn absolute(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let mut list = args.series(0)?;
    for s in &mut list {
        s.tags.insert("absolute".into(), "1".into());
        s.set_name(format!("absolute({})", s.name));
        for_each_point(s, |_, v, slot| {
            *slot = v.map(f64::abs);
            Ok(())
        })?;
    }
    Ok(list)
}

fn add(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let constant = args.float(1)?;
    let shown = percent_d("add", constant)?;
    let mut list = args.series(0)?;
    for s in &mut list {
        s.tags.insert("add".into(), tag_float(constant));
        s.set_name(format!("add({},{shown})", s.name));
        for_each_point(s, |_, v, slot| {
            *slot = v.map(|x| x + constant);
            Ok(())
        })?;
    }
    Ok(list)
}

fn scale(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let factor = args.float(1)?;
    let mut list = args.series(0)?;
    for s in &mut list {
        s.tags.insert("scale".into(), tag_float(factor));
        s.set_name(format!("scale({},{})", s.name, format_g(factor)));
        for_each_point(s, |_, v, slot| {
            *slot = v.map(|x| x * factor);
            Ok(())
        })?;
    }
    Ok(list)
}

fn offset(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let factor = args.float(1)?;
    let mut list = args.series(0)?;
    for s in &mut list {
        s.tags.insert("offset".into(), tag_float(factor));
        s.set_name(format!("offset({},{})", s.name, format_g(factor)));
        for_each_point(s, |_, v, slot| {
            if let Some(x) = v {
                *slot = Some(x + factor);
            }
            Ok(())
        })?;
    }
    Ok(list)
}

fn scale_to_seconds(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let seconds = args.float(1)?;
    let shown = percent_d("scaleToSeconds", seconds)?;
    let mut list = args.series(0)?;
    for s in &mut list {
        s.tags.insert("scaleToSeconds".into(), tag_float(seconds));
        s.set_name(format!("scaleToSeconds({},{shown})", s.name));
        let factor = seconds / s.step as f64;
        for_each_point(s, |_, v, slot| {
            if let Some(x) = v {
                *slot = Some(py_round(x * factor, 6));
            }
            Ok(())
        })?;
    }
    Ok(list)
}

fn exp(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let mut list = args.series(0)?;
    for s in &mut list {
        s.tags.insert("exp".into(), "e".into());
        s.set_name(format!("exp({})", s.name));
        for_each_point(s, |_, v, slot| {
            *slot = v.map(|x| checked_exp("exp", x)).transpose()?;
            Ok(())
        })?;
    }
    Ok(list)
}

fn sigmoid(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let mut list = args.series(0)?;
    for s in &mut list {
        s.tags.insert("sigmoid".into(), "sigmoid".into());
        s.set_name(format!("sigmoid({})", s.name));
        for_each_point(s, |_, v, slot| {
            *slot = match v {
                Some(x) => Some(1.0 / (1.0 + checked_exp("sigmoid", -x)?)),
                None => None,
            };
            Ok(())
        })?;
    }
    Ok(list)
}

fn logit(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let mut list = args.series(0)?;
    for s in &mut list {
        s.tags.insert("logit".into(), "logit".into());
        s.set_name(format!("logit({})", s.name));
        for_each_point(s, |_, v, slot| {
            *slot = v.and_then(|x| {
                // Python raises ZeroDivisionError for x == 1 and ValueError for a ratio at or
                // below zero; graphite-web turns both into null. log(nan) stays nan.
                let denominator = 1.0 - x;
                if denominator == 0.0 {
                    return None;
                }
                let ratio = x / denominator;
                (ratio > 0.0 || ratio.is_nan()).then(|| ratio.ln())
            });
            Ok(())
        })?;
    }
    Ok(list)
}

fn pow(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let factor = args.float(1)?;
    let mut list = args.series(0)?;
    for s in &mut list {
        s.tags.insert("pow".into(), tag_float(factor));
        s.set_name(format!("pow({},{})", s.name, format_g(factor)));
        for_each_point(s, |_, v, slot| {
            *slot = safe_pow(v, factor);
            Ok(())
        })?;
    }
    Ok(list)
}

fn square_root(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let mut list = args.series(0)?;
    for s in &mut list {
        s.tags.insert("squareRoot".into(), "1".into());
        s.set_name(format!("squareRoot({})", s.name));
        for_each_point(s, |_, v, slot| {
            *slot = safe_pow(v, 0.5);
            Ok(())
        })?;
    }
    Ok(list)
}

fn invert(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let mut list = args.series(0)?;
    for s in &mut list {
        s.tags.insert("invert".into(), "1".into());
        s.set_name(format!("invert({})", s.name));
        for_each_point(s, |_, v, slot| {
            *slot = safe_pow(v, -1.0);
            Ok(())
        })?;
    }
    Ok(list)
}

fn offset_to_zero(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let mut list = args.series(0)?;
    for s in &mut list {
        let minimum = s.consolidated().into_iter().flatten().reduce(py_min);
        s.tags.insert("offsetToZero".into(), minimum.map_or_else(|| "None".into(), tag_float));
        s.set_name(format!("offsetToZero({})", s.name));
        if let Some(minimum) = minimum {
            for_each_point(s, |_, v, slot| {
                if let Some(x) = v {
                    *slot = Some(x - minimum);
                }
                Ok(())
            })?;
        }
    }
    Ok(list)
}

fn round(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    // graphite-web's own default is None (name without precision); the declared default of
    // 0 only shows in /functions.
    let precision = if args.given(1) { args.opt_int(1)? } else { None };
    let mut list = args.series(0)?;
    for s in &mut list {
        s.tags.insert("round".into(), precision.unwrap_or(0).to_string());
        let name = match precision {
            None => format!("round({})", s.name),
            Some(p) => format!("round({},{})", s.name, format_g(p as f64)),
        };
        s.set_name(name);
        let digits = precision.unwrap_or(0);
        for_each_point(s, |_, v, slot| {
            if let Some(x) = v {
                *slot = Some(py_round(x, digits));
            }
            Ok(())
        })?;
    }
    Ok(list)
}

fn min_max(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let mut list = args.series(0)?;
    for s in &mut list {
        s.set_name(format!("minMax({})", s.name));
        let values = s.consolidated();
        let min = values.iter().flatten().copied().reduce(py_min).unwrap_or(0.0);
        let max = values.iter().flatten().copied().reduce(py_max).unwrap_or(0.0);
        for_each_point(s, |_, v, slot| {
            // graphite-web tests the raw slot, then computes with the consolidated value.
            if slot.is_some() {
                let Some(x) = v else {
                    return Err(Error::Evaluation(
                        "minMax(): a consolidated point is null where the raw one is not".into(),
                    ));
                };
                let range = max - min;
                *slot = Some(if range == 0.0 { 0.0 } else { (x - min) / range });
            }
            Ok(())
        })?;
    }
    Ok(list)
}

fn time_slice(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let ctx = args.ctx;
    let start_spec = args.string(1)?;
    let end_spec = args.string(2)?;
    // graphite-web parses both in the server's time zone against the wall clock; the
    // request's zone and "now" are what this server has for them.
    let start = crate::time::parse_at_time(&start_spec, &ctx.tz, ctx.now)?;
    let end = crate::time::parse_at_time(&end_spec, &ctx.tz, ctx.now)?;
    let mut list = args.series(0)?;
    for s in &mut list {
        s.tags.insert("timeSliceStart".into(), start.to_string());
        s.tags.insert("timeSliceEnd".into(), end.to_string());
        // graphite-web renames without touching the path expression.
        s.name = format!("timeSlice({}, {start}, {end})", s.name);
        // The clock starts at the request's start, not at the series' first point.
        let mut current = ctx.from;
        let step = s.step;
        for_each_point(s, |_, v, slot| {
            if v.is_none() || current < start || current > end {
                *slot = None;
            }
            current += step;
            Ok(())
        })?;
    }
    Ok(list)
}

// ---------------------------------------------------------------------------------------------
// Null handling.

/// A run-length limit (`intOrInf`): an integer, or any number (graphite-web runs with the raw
/// value when validation fails); null means no limit.
fn limit(args: &Args<'_, '_>, i: usize) -> Result<f64> {
    Ok(args.opt_float(i)?.unwrap_or(f64::INFINITY))
}

fn keep_last_value(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let limit = limit(args, 1)?;
    let mut list = args.series(0)?;
    for s in &mut list {
        s.set_name(format!("keepLastValue({})", s.name));
        let values = s.consolidated();
        let mut nones = 0usize;
        let mut last: Option<f64> = None;
        for (i, v) in values.iter().enumerate() {
            match v {
                None => nones += 1,
                Some(x) => {
                    if nones > 0 && nones as f64 <= limit && last.is_some() {
                        for slot in &mut s.values[i - nones..i] {
                            *slot = last;
                        }
                    }
                    nones = 0;
                    last = Some(*x);
                }
            }
        }
        // A trailing run is filled at the end of the *raw* values (graphite-web's len()).
        if nones > 0 && nones as f64 <= limit && last.is_some() {
            let n = s.values.len();
            for slot in &mut s.values[n.saturating_sub(nones)..] {
                *slot = last;
            }
        }
    }
    Ok(list)
}

fn interpolate(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let limit = limit(args, 1)?;
    let mut list = args.series(0)?;
    for s in &mut list {
        s.set_name(format!("interpolate({})", s.name));
        let mut v = s.consolidated();
        let mut nones = 0usize;
        for i in 1..v.len() {
            let Some(value) = v[i] else {
                nones += 1;
                continue;
            };
            if nones == 0 {
                continue;
            }
            let base = i - nones - 1;
            let Some(from) = v[base] else {
                nones = 0;
                continue;
            };
            if nones as f64 <= limit {
                for (k, slot) in v.iter_mut().enumerate().take(i).skip(i - nones) {
                    let offset = (k - base) as f64;
                    *slot = Some(from + offset * (value - from) / (nones + 1) as f64);
                }
            }
            nones = 0;
        }
        for (slot, x) in s.values.iter_mut().zip(v) {
            *slot = x;
        }
    }
    Ok(list)
}

fn transform_null(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let given = args.given(1);
    let default = match args.opt_float(1)? {
        Some(d) => d,
        None if !given => 0.0,
        None => return Err(Error::arg("transformNull(): parameter 'default' must be a number")),
    };
    // The declared default is the integer 0, which graphite-web's tag shows as "0".
    let default_text = if given { tag_float(default) } else { "0".into() };
    let reference = args.series(2)?;
    let defaults: Option<Vec<Option<f64>>> = (!reference.is_empty()).then(|| {
        crate::series::rows(&reference)
            .into_iter()
            .map(|row| row.iter().any(Option::is_some).then_some(default))
            .collect()
    });
    let mut list = args.series(0)?;
    for s in &mut list {
        s.tags.insert("transformNull".into(), default_text.clone());
        if reference.is_empty() {
            s.set_name(format!("transformNull({},{})", s.name, format_g(default)));
        } else {
            s.tags.insert("referenceSeries".into(), "1".into());
            s.set_name(format!("transformNull({},{},referenceSeries)", s.name, format_g(default)));
        }
        let values = s.consolidated();
        let computed: Vec<Option<f64>> = match &defaults {
            // An empty reference row list is falsy in Python: plain replacement.
            Some(d) if !d.is_empty() => {
                let len = values.len().max(d.len());
                (0..len)
                    .map(|i| values.get(i).copied().flatten().or(d.get(i).copied().flatten()))
                    .collect()
            }
            _ => values.iter().map(|v| v.or(Some(default))).collect(),
        };
        extend_and_trim(s, computed);
    }
    Ok(list)
}

fn is_non_null(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let mut list = args.series(0)?;
    for s in &mut list {
        s.tags.insert("isNonNull".into(), "1".into());
        s.set_name(format!("isNonNull({})", s.name));
        let computed =
            s.consolidated().iter().map(|v| Some(if v.is_some() { 1.0 } else { 0.0 })).collect();
        extend_and_trim(s, computed);
    }
    Ok(list)
}

// ---------------------------------------------------------------------------------------------
// Differences and sums over time (graphite-web builds new series with `copy`).

fn derivative(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let list = args.series(0)?;
    Ok(list
        .into_iter()
        .map(|mut s| {
            let mut prev: Option<f64> = None;
            let values = s
                .consolidated()
                .into_iter()
                .map(|v| {
                    let out = match (prev, v) {
                        (Some(p), Some(x)) => Some(x - p),
                        _ => None,
                    };
                    prev = v;
                    out
                })
                .collect();
            s.tags.insert("derivative".into(), "1".into());
            copied(&s, format!("derivative({})", s.name), values)
        })
        .collect())
}

/// graphite-web's `_nonNegativeDelta`: `(delta, new previous value)`.
///
/// A null value gives `(None, None)`: graphite-web on Python 3 raises when it compares `None`
/// with `maxValue`/`minValue` (a 500); this is what the code does under Python 2, for which it
/// was written, and what it does without the bounds.
fn non_negative_delta(
    value: Option<f64>,
    prev: Option<f64>,
    max: Option<f64>,
    min: Option<f64>,
) -> (Option<f64>, Option<f64>) {
    let Some(v) = value else { return (None, None) };
    if max.is_some_and(|m| v > m) || min.is_some_and(|m| v < m) {
        return (None, None);
    }
    let Some(p) = prev else { return (None, Some(v)) };
    if v >= p {
        return (Some(v - p), Some(v));
    }
    if let Some(m) = max {
        return (Some(m + 1.0 + v - p - min.unwrap_or(0.0)), Some(v));
    }
    if let Some(m) = min {
        return (Some(v - m), Some(v));
    }
    (None, Some(v))
}

fn non_negative_derivative(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let (max, min) = (args.opt_float(1)?, args.opt_float(2)?);
    let list = args.series(0)?;
    Ok(list
        .into_iter()
        .map(|mut s| {
            let mut prev = None;
            let values = s
                .consolidated()
                .into_iter()
                .map(|v| {
                    let (delta, next) = non_negative_delta(v, prev, max, min);
                    prev = next;
                    delta
                })
                .collect();
            s.tags.insert("nonNegativeDerivative".into(), "1".into());
            copied(&s, format!("nonNegativeDerivative({})", s.name), values)
        })
        .collect())
}

fn per_second(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let (max, min) = (args.opt_float(1)?, args.opt_float(2)?);
    let list = args.series(0)?;
    Ok(list
        .into_iter()
        .map(|mut s| {
            let step = s.step as f64;
            let mut prev = None;
            let values = s
                .consolidated()
                .into_iter()
                .map(|v| {
                    let (delta, next) = non_negative_delta(v, prev, max, min);
                    prev = next;
                    delta.map(|d| py_round(d / step, 6))
                })
                .collect();
            s.tags.insert("perSecond".into(), "1".into());
            copied(&s, format!("perSecond({})", s.name), values)
        })
        .collect())
}

fn integral(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let list = args.series(0)?;
    Ok(list
        .into_iter()
        .map(|mut s| {
            let mut total = 0.0;
            let values = s
                .consolidated()
                .into_iter()
                .map(|v| {
                    v.map(|x| {
                        total += x;
                        total
                    })
                })
                .collect();
            s.tags.insert("integral".into(), "1".into());
            copied(&s, format!("integral({})", s.name), values)
        })
        .collect())
}

fn integral_by_interval(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let unit = args.string(1)?;
    let duration = parse_offset("integralByInterval", &unit)?.abs();
    if duration == 0 {
        return Err(Error::arg(format!(
            "integralByInterval(): the interval '{unit}' must not be zero"
        )));
    }
    let start_time = args.ctx.from;
    let list = args.series(0)?;
    Ok(list
        .into_iter()
        .map(|mut s| {
            let step = s.step;
            let mut current_time = s.start;
            let mut total = 0.0;
            let values = s
                .consolidated()
                .into_iter()
                .map(|v| {
                    // Reset when this point and the previous step fall in different buckets.
                    let bucket = (current_time - start_time).div_euclid(duration);
                    let previous = (current_time - start_time - step).div_euclid(duration);
                    if bucket != previous {
                        total = 0.0;
                    }
                    if let Some(x) = v {
                        total += x;
                    }
                    current_time += step;
                    // A null point shows the running total (0 right after a reset).
                    Some(total)
                })
                .collect();
            s.tags.insert("integralByInterval".into(), unit.clone());
            copied(&s, format!("integralByInterval({},'{unit}')", s.name), values)
        })
        .collect())
}

fn delay(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let steps = args.int(1)?;
    let list = args.series(0)?;
    Ok(list
        .into_iter()
        .map(|mut s| {
            // graphite-web slices the raw list; delay 0 gives an empty series because
            // `series[:-0]` is empty.
            let raw = &s.values;
            let n = raw.len();
            let shift = usize::try_from(steps.unsigned_abs()).unwrap_or(usize::MAX);
            let values = if steps < 0 {
                let mut v: Vec<Option<f64>> = raw.get(shift.min(n)..).unwrap_or(&[]).to_vec();
                v.extend(std::iter::repeat_n(None, shift.min(n)));
                v
            } else {
                let mut v: Vec<Option<f64>> = vec![None; shift.min(n)];
                if shift > 0 {
                    v.extend_from_slice(&raw[..n.saturating_sub(shift)]);
                }
                v
            };
            s.tags.insert("delay".into(), steps.to_string());
            copied(&s, format!("delay({},{steps})", s.name), values)
        })
        .collect())
}

fn logarithm(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    // graphite-web declares an integer base but runs with whatever number it is given.
    let (base, shown) = match args.literal(1) {
        Some(Literal::Int(n)) => (n as f64, n.to_string()),
        Some(Literal::Float(f)) => (f, float_repr(f)),
        Some(Literal::Bool(b)) => (f64::from(u8::from(b)), u8::from(b).to_string()),
        Some(Literal::Str(text)) => match text.trim().parse::<i64>() {
            Ok(n) => (n as f64, n.to_string()),
            Err(_) => {
                return Err(Error::arg(format!(
                    "log(): parameter 'base' must be a number, got '{text}'"
                )));
            }
        },
        Some(Literal::None) => (10.0, "10".into()),
        None => return Err(Error::arg("log(): parameter 'base' must be a number, not a series")),
    };
    let ln_base = base.ln();
    let list = args.series(0)?;
    list.into_iter()
        .map(|mut s| {
            let values = s
                .consolidated()
                .into_iter()
                .map(|v| match v {
                    Some(x) if x > 0.0 || x.is_nan() => {
                        // CPython's math.log(x, base) is log(x) / log(base); a base of 1 is a
                        // division by zero and a base at or below 0 a domain error.
                        if base <= 0.0 || ln_base == 0.0 {
                            return Err(Error::arg(format!("log(): invalid base {shown}")));
                        }
                        Ok(Some(x.ln() / ln_base))
                    }
                    _ => Ok(None),
                })
                .collect::<Result<Vec<_>>>()?;
            s.tags.insert("log".into(), shown.clone());
            Ok(copied(&s, format!("log({}, {shown})", s.name), values))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Bucketing.

/// graphite-web's `_summarizeValues`: reduce the points of `series` into buckets of
/// `interval` seconds from `start` while the bucket start is before `end`. Returns the values
/// and the end of the last bucket.
///
/// Quirks kept: a bucket's aggregation also sees the last point at or before the bucket's
/// start when it was not consumed yet, the xFilesFactor counts only points inside the bucket
/// against the *nominal* number of points per bucket, and timestamps use the raw step even
/// when the values read consolidated.
fn summarize_values(
    series: &Series,
    func: AggFunc,
    interval: i64,
    start: i64,
    end: i64,
) -> (Vec<Option<f64>>, i64) {
    let step = series.step;
    let points = series.consolidated();
    let timestamps =
        if series.end > series.start { (series.end - series.start + step - 1) / step } else { 0 };
    let count = usize::try_from(timestamps).unwrap_or(0).min(points.len());
    let per_bucket = interval as f64 / step as f64;
    let mut out = Vec::new();
    let mut i = 0usize;
    let mut t = start;
    while t < end {
        let mut first = i;
        let mut non_null = 0usize;
        while i < count {
            let ts = series.start + i as i64 * step;
            if ts >= t + interval {
                break;
            }
            if ts <= t {
                first = i;
            }
            if ts >= t && points[i].is_some() {
                non_null += 1;
            }
            i += 1;
        }
        let enough = non_null > 0 && non_null as f64 / per_bucket >= series.x_files_factor;
        out.push(if enough { func.apply(&points[first..i]) } else { None });
        t += interval;
    }
    (out, t)
}

/// The `func` argument of the bucketing functions: one of graphite-web's aggregation names
/// (`getAggFunc` does not take the `sumSeries` spellings).
fn agg_func(args: &Args<'_, '_>, i: usize) -> Result<(AggFunc, String)> {
    let name = args.string(i)?;
    let func = AggFunc::parse(&name).ok_or_else(|| {
        Error::arg(format!("{}(): unsupported aggregation function: {name}", args.def.name))
    })?;
    Ok((func, name))
}

fn summarize(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let text = args.string(1)?;
    let interval = bucket_interval("summarize", &text)?;
    let (func, func_name) = agg_func(args, 2)?;
    let align_to_from = args.bool(3)?;
    let list = args.series(0)?;
    let mut out = Vec::with_capacity(list.len());
    for mut s in list {
        let (start, end) = if align_to_from {
            (s.start, s.end)
        } else {
            (s.start - s.start.rem_euclid(interval), s.end - s.end.rem_euclid(interval) + interval)
        };
        check_points(args.ctx, "summarize", (end - start) / interval)?;
        let (values, aligned_end) = summarize_values(&s, func, interval, start, end);
        s.tags.insert("summarize".into(), text.clone());
        s.tags.insert("summarizeFunction".into(), func_name.clone());
        let flag = if align_to_from { ", true" } else { "" };
        let mut n =
            copied(&s, format!("summarize({}, \"{text}\", \"{func_name}\"{flag})", s.name), values);
        n.start = start;
        n.end = if align_to_from { aligned_end } else { end };
        n.step = interval;
        out.push(n);
    }
    Ok(out)
}

fn smart_summarize(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let text = args.string(1)?;
    let interval = bucket_interval("smartSummarize", &text)?;
    let (func, func_name) = agg_func(args, 2)?;
    let ctx = args.ctx;
    let list = match args.literal(3) {
        // A boolean is the old alignToFrom, which graphite-web ignores.
        Some(Literal::None | Literal::Bool(_)) => args.series(0)?,
        Some(Literal::Str(align)) => {
            let unit = match unit_name(&align) {
                Some("years") => Truncate::Year,
                Some("months") => Truncate::Month,
                Some("weeks") => {
                    // A trailing digit picks the ISO weekday to align to (Monday by default).
                    let day =
                        align.chars().last().and_then(|c| c.to_digit(10)).map_or(1, i64::from);
                    Truncate::Week(day)
                }
                Some("days") => Truncate::Day,
                Some("hours") => Truncate::Hour,
                Some("minutes") => Truncate::Minute,
                Some(_) => Truncate::Second,
                None => {
                    return Err(Error::arg(format!(
                        "smartSummarize(): invalid alignTo unit '{align}'"
                    )));
                }
            };
            let from = truncate_time(ctx.from, &ctx.tz, unit);
            args.eval_with_range(first_expr(args)?, from, ctx.until)?
        }
        Some(other) => {
            return Err(Error::arg(format!(
                "smartSummarize(): parameter 'alignTo' must be a time unit, got {other}"
            )));
        }
        None => return Err(Error::arg("smartSummarize(): parameter 'alignTo' must be a string")),
    };
    let mut out = Vec::with_capacity(list.len());
    for mut s in list {
        check_points(ctx, "smartSummarize", (s.end - s.start) / interval)?;
        let (values, aligned_end) = summarize_values(&s, func, interval, s.start, s.end);
        s.tags.insert("smartSummarize".into(), text.clone());
        s.tags.insert("smartSummarizeFunction".into(), func_name.clone());
        let name = format!("smartSummarize({}, \"{text}\", \"{func_name}\")", s.name);
        let mut n = copied(&s, name, values);
        n.end = aligned_end;
        n.step = interval;
        out.push(n);
    }
    Ok(out)
}

fn hitcount(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let text = args.string(1)?;
    let interval = bucket_interval("hitcount", &text)?;
    let align = args.bool(2)?;
    let ctx = args.ctx;
    let list = if align {
        let unit = if interval >= SECONDS_PER_DAY {
            Some(Truncate::Day)
        } else if interval >= 3600 {
            Some(Truncate::Hour)
        } else if interval >= 60 {
            Some(Truncate::Minute)
        } else {
            None
        };
        let from = unit.map_or(ctx.from, |u| truncate_time(ctx.from, &ctx.tz, u));
        let mut list = args.eval_with_range(first_expr(args)?, from, ctx.until)?;
        for s in &mut list {
            let count = (s.end - s.start).div_euclid(interval);
            s.end = s.start + count * interval + interval;
        }
        list
    } else {
        args.series(0)?
    };
    let mut out = Vec::with_capacity(list.len());
    for mut s in list {
        let step = s.step;
        let span = (s.end - s.start) as f64 / interval as f64;
        // ceil of a float, as graphite-web computes it; a negative count gives no buckets.
        let bucket_count = span.ceil().max(0.0) as i64;
        check_points(ctx, "hitcount", bucket_count)?;
        let new_start = s.end - bucket_count * interval;
        let mut buckets: Vec<Vec<f64>> =
            vec![Vec::new(); usize::try_from(bucket_count).unwrap_or(0)];
        for (i, v) in s.consolidated().into_iter().enumerate() {
            let Some(value) = v else { continue };
            if bucket_count == 0 {
                break;
            }
            let start_time = s.start + i as i64 * step;
            let (start_bucket, start_mod) = (
                (start_time - new_start).div_euclid(interval),
                (start_time - new_start).rem_euclid(interval),
            );
            let end_time = start_time + step;
            let (mut end_bucket, mut end_mod) = (
                (end_time - new_start).div_euclid(interval),
                (end_time - new_start).rem_euclid(interval),
            );
            if end_bucket >= bucket_count {
                end_bucket = bucket_count - 1;
                end_mod = interval;
            }
            let mut push = |bucket: i64, hits: f64| {
                if let Some(b) = usize::try_from(bucket).ok().and_then(|b| buckets.get_mut(b)) {
                    b.push(hits);
                }
            };
            if start_bucket == end_bucket {
                // All of the point's hits land in one bucket.
                if start_bucket >= 0 {
                    push(start_bucket, value * (end_mod - start_mod) as f64);
                }
            } else {
                // Spread over several buckets, in proportion to the overlap.
                if start_bucket >= 0 {
                    push(start_bucket, value * (interval - start_mod) as f64);
                }
                let full = value * interval as f64;
                for j in start_bucket + 1..end_bucket {
                    push(j, full);
                }
                if end_mod > 0 {
                    push(end_bucket, value * end_mod as f64);
                }
            }
        }
        let values = buckets
            .iter()
            .map(|b| (!b.is_empty()).then(|| b.iter().fold(0.0, |acc, x| acc + x)))
            .collect();
        s.tags.insert("hitcount".into(), text.clone());
        let flag = if align { ", true" } else { "" };
        let mut n = copied(&s, format!("hitcount({}, \"{text}\"{flag})", s.name), values);
        n.start = new_start;
        n.step = interval;
        out.push(n);
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Moves in time: re-evaluate the first argument over a shifted range.

/// An interval for `timeShift`/`timeStack`: without a sign it means the past.
fn shift_text(func: &str, text: &str) -> Result<(String, i64)> {
    let text = match text.chars().next() {
        None => return Err(Error::arg(format!("{func}(): the time shift is empty"))),
        Some(c) if c.is_ascii_digit() => format!("-{text}"),
        Some(_) => text.to_string(),
    };
    let delta = parse_offset(func, &text)?;
    Ok((text, delta))
}

fn time_shift(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let (text, delta) = shift_text("timeShift", &args.string(1)?)?;
    let reset_end = args.bool(2)?;
    let align_dst = args.bool(3)?;
    let ctx = args.ctx;
    let (mut from, mut until) = (ctx.from + delta, ctx.until + delta);
    if align_dst {
        let (req_start, req_end) = (is_dst(&ctx.tz, ctx.from), is_dst(&ctx.tz, ctx.until));
        let (my_start, my_end) = (is_dst(&ctx.tz, from), is_dst(&ctx.tz, until));
        let fix = if req_start && req_end && !my_start && !my_end {
            3600
        } else if !req_start && !req_end && my_start && my_end {
            -3600
        } else {
            0
        };
        from += fix;
        until += fix;
    }
    let original = args.series(0)?;
    let Some(first) = original.first() else { return Ok(Vec::new()) };
    let (start, end) = (first.start, first.end);
    let mut shifted = args.eval_with_range(first_expr(args)?, from, until)?;
    for s in &mut shifted {
        s.tags.insert("timeShift".into(), text.clone());
        // graphite-web renames without touching the path expression.
        s.name = format!("timeShift({}, \"{text}\")", s.name);
        s.end = if reset_end { end } else { s.end - s.start + start };
        s.start = start;
    }
    Ok(shifted)
}

/// `int(x)` of a literal, as `timeStack` applies it to its multipliers.
fn py_int(args: &Args<'_, '_>, i: usize) -> Result<i64> {
    match args.literal(i) {
        Some(Literal::Float(f)) if f.is_finite() && f.abs() < 9e18 => Ok(f.trunc() as i64),
        _ => args.int(i),
    }
}

fn time_stack(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let (unit, delta) = shift_text("timeStack", &args.string(1)?)?;
    let (first_shift, last_shift) = (py_int(args, 2)?, py_int(args, 3)?);
    let ctx = args.ctx;
    let original = args.series(0)?;
    let Some(first) = original.first() else { return Ok(Vec::new()) };
    let (start, end) = (first.start, first.end);
    let expr = first_expr(args)?;
    let mut out = Vec::new();
    for shift in first_shift..last_shift {
        let offset = delta
            .checked_mul(shift)
            .filter(|o| o.abs() < 999_999_999 * SECONDS_PER_DAY)
            .ok_or_else(|| {
            Error::arg(format!("timeStack(): shift {shift} x '{unit}' is too large"))
        })?;
        for mut s in args.eval_with_range(expr, ctx.from + offset, ctx.until + offset)? {
            s.tags.insert("timeShiftUnit".into(), unit.clone());
            s.tags.insert("timeShift".into(), shift.to_string());
            s.set_name(format!("timeShift({}, {unit}, {shift})", s.name));
            s.start = start;
            s.end = end;
            out.push(s);
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Generators.

/// A generator's step: a positive number of seconds (graphite-web loops forever on zero or a
/// negative step).
fn generator_step(args: &Args<'_, '_>, i: usize) -> Result<i64> {
    let step = args.int(i)?;
    if step <= 0 {
        return Err(Error::arg(format!(
            "{}(): parameter 'step' must be positive, got {step}",
            args.def.name
        )));
    }
    Ok(step)
}

/// The timestamps of a generated series: from the request's start, every `step`, while before
/// its end.
fn generator_times(args: &Args<'_, '_>, step: i64) -> Result<Vec<i64>> {
    let ctx = args.ctx;
    let count = if ctx.until > ctx.from { (ctx.until - ctx.from + step - 1) / step } else { 0 };
    check_points(ctx, args.def.name, count)?;
    Ok((0..count).map(|k| ctx.from + k * step).collect())
}

fn time_function(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let name = args.string(0)?;
    let step = generator_step(args, 1)?;
    let values = generator_times(args, step)?.into_iter().map(|t| Some(t as f64)).collect();
    let mut s = Series::new(name, args.ctx.from, args.ctx.until, step, values);
    s.x_files_factor = args.ctx.x_files_factor;
    Ok(vec![s])
}

fn sin_function(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let name = args.string(0)?;
    // Declared an integer; graphite-web multiplies by whatever number it is given.
    let amplitude = args.float(1)?;
    let step = generator_step(args, 2)?;
    let values = generator_times(args, step)?
        .into_iter()
        .map(|t| Some((t as f64).sin() * amplitude))
        .collect();
    let mut s = Series::new(name, args.ctx.from, args.ctx.until, step, values);
    s.x_files_factor = args.ctx.x_files_factor;
    Ok(vec![s])
}
