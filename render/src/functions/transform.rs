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

use crate::aggfunc::AggFunc;
use crate::error::{Error, Result};
use crate::eval::Context;
use crate::expr::Literal;
use crate::function::{Args, Default, FunctionDef, Param, ParamType, SERIES_LIST};
use crate::functions::alias::AGG_FUNC_OPTIONS;
use crate::pyfmt::{float_repr, format_g};
use crate::series::{Series, py_max, py_min};

const GROUP: &str = "Transform";

/// The interval suggestions graphite-web offers for the bucketing functions.
const BUCKET_SUGGESTIONS: &[&str] = &["10min", "1h", "1d"];

/// The shift suggestions graphite-web offers for `timeShift` and `timeStack`.
const SHIFT_SUGGESTIONS: &[&str] = &["1h", "6h", "12h", "1d", "2d", "7d", "14d", "30d"];

/// What `smartSummarize`'s `alignTo` lists as options: graphite-web's unit names plus `None`,
/// `True` and `False` (the old alignToFrom values, ignored), sorted by `str()` as
/// `/functions` shows them (`/functions` writes the words as JSON values).
const ALIGN_OPTIONS: &[&str] =
    &["False", "None", "True", "days", "hours", "minutes", "months", "seconds", "weeks", "years"];

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
            Param::new("precision", ParamType::Integer)
                .default(Default::Int(0))
                .fallback(Default::None),
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
                .options(AGG_FUNC_OPTIONS),
            Param::new("alignTo", ParamType::String).options(ALIGN_OPTIONS),
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
                .options(AGG_FUNC_OPTIONS),
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
            Param::new("alignDst", ParamType::Boolean)
                .default(Default::Bool(false))
                .py_name("alignDST"),
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
    // Negative ndigits: round the exact integer digits (and the fraction, for ties) to a
    // multiple of 10^k in decimal, then read the result back once.
    let k = usize::try_from(-ndigits).unwrap_or(0);
    let digits = format!("{:.0}", x.abs().trunc());
    let fraction_nonzero = x.fract() != 0.0;
    let padded = format!("{}{digits}", "0".repeat((k + 1).saturating_sub(digits.len())));
    let (kept, dropped) = padded.split_at(padded.len() - k);
    let first = dropped.as_bytes().first().map_or(0, |b| b - b'0');
    let rest_nonzero = dropped.bytes().skip(1).any(|b| b != b'0') || fraction_nonzero;
    let last_kept_odd = kept.as_bytes().last().is_some_and(|b| (b - b'0') % 2 == 1);
    let round_up = first > 5 || (first == 5 && (rest_nonzero || last_kept_odd));
    let mut kept = kept.as_bytes().to_vec();
    if round_up {
        increment_decimal(&mut kept);
    }
    let text = format!("{}{}", String::from_utf8_lossy(&kept), "0".repeat(k));
    let value: f64 = text.parse().unwrap_or(f64::INFINITY);
    if x.is_sign_negative() { -value } else { value }
}

/// Adds one to a string of ASCII decimal digits, growing it on a carry out of the top.
fn increment_decimal(digits: &mut Vec<u8>) {
    for d in digits.iter_mut().rev() {
        if *d == b'9' {
            *d = b'0';
        } else {
            *d += 1;
            return;
        }
    }
    digits.insert(0, b'1');
}

/// CPython's `math.pow` as graphite-web's `safePow` uses it: null when either side is null or
/// when finite inputs give a non-finite result (Python raises ValueError/OverflowError).
fn safe_pow(a: Option<f64>, b: f64) -> Option<f64> {
    let a = a?;
    // black_box keeps the optimizer from turning pow(x, 0.5) into sqrt(x) and pow(x, -1)
    // into 1/x: libm's pow differs from both in the last bit now and then, and graphite-web
    // calls pow.
    let r = a.powf(std::hint::black_box(b));
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

/// An interval argument in seconds ([`crate::time::parse_time_offset`], graphite-web's
/// `parseTimeOffset`: `"5min"`, `"-1d"`, `"1h30min"`), its error reported as a bad argument.
fn parse_offset(func: &str, text: &str) -> Result<i64> {
    crate::time::parse_time_offset(text)
        .map_err(|e| Error::arg(format!("{func}(): invalid interval '{text}': {e}")))
}

/// graphite-web's `getUnitString`: the unit a prefix names, checked in its order so that
/// `min` is minutes and `mon` months (`smartSummarize`'s `alignTo`).
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
    let offset = tz.offset_seconds(t);
    let local = t.saturating_add(offset);
    let days = local.div_euclid(SECONDS_PER_DAY);
    let secs = local.rem_euclid(SECONDS_PER_DAY);
    let (year, month, _) = civil_from_days(days);
    let local_start = match unit {
        Truncate::Year => days_from_civil(year, 1, 1) * SECONDS_PER_DAY,
        Truncate::Month => days_from_civil(year, month, 1) * SECONDS_PER_DAY,
        Truncate::Week(iso_day) => {
            // 1970-01-01 was a Thursday (ISO weekday 4).
            let weekday = (days + 3).rem_euclid(7) + 1;
            // graphite-web adds 7 once to a negative difference (a day digit of 8 or 9 can
            // leave it negative, moving forward).
            let back = weekday - iso_day;
            let back = if back < 0 { back + 7 } else { back };
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
    let mut list = args.series(0)?;
    // graphite-web formats the name inside its loop: no series, no formatting error.
    let shown = if list.is_empty() { String::new() } else { percent_d("add", constant)? };
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
    let mut list = args.series(0)?;
    let shown = if list.is_empty() { String::new() } else { percent_d("scaleToSeconds", seconds)? };
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
        slice_values(s, ctx.from, start, end);
    }
    Ok(list)
}

/// Nulls the points of `series` outside `[start, end]`. The clock starts at the request's
/// start `from`, not at the series' first point (graphite-web's quirk).
fn slice_values(series: &mut Series, from: i64, start: i64, end: i64) {
    let mut current = from;
    let step = series.step;
    // The closure never fails.
    let _ = for_each_point(series, |_, v, slot| {
        if v.is_none() || current < start || current > end {
            *slot = None;
        }
        current += step;
        Ok(())
    });
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
        keep_last(s, limit);
    }
    Ok(list)
}

/// Fills runs of at most `limit` nulls with the value before them.
fn keep_last(series: &mut Series, limit: f64) {
    let values = series.consolidated();
    let mut nones = 0usize;
    let mut last: Option<f64> = None;
    for (i, v) in values.iter().enumerate() {
        match v {
            None => nones += 1,
            Some(x) => {
                if nones > 0 && nones as f64 <= limit && last.is_some() {
                    // i < values.len() <= series.values.len(), so the range is in bounds.
                    for slot in series.values.iter_mut().take(i).skip(i - nones) {
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
        let n = series.values.len();
        for slot in series.values.iter_mut().skip(n.saturating_sub(nones)) {
            *slot = last;
        }
    }
}

fn interpolate(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let limit = limit(args, 1)?;
    let mut list = args.series(0)?;
    for s in &mut list {
        s.set_name(format!("interpolate({})", s.name));
        interpolate_values(s, limit);
    }
    Ok(list)
}

/// Fills runs of at most `limit` nulls that have a value on both sides with a straight line.
/// A leading run is never filled, nor a run at the end.
fn interpolate_values(series: &mut Series, limit: f64) {
    let mut v = series.consolidated();
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
    // graphite-web writes every consolidated value back at its raw index.
    for (slot, x) in series.values.iter_mut().zip(v) {
        *slot = x;
    }
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
            let values = differences(&s.consolidated());
            s.tags.insert("derivative".into(), "1".into());
            copied(&s, format!("derivative({})", s.name), values)
        })
        .collect())
}

/// Each value minus the one before it; null when either is null.
fn differences(values: &[Option<f64>]) -> Vec<Option<f64>> {
    let mut prev: Option<f64> = None;
    values
        .iter()
        .map(|&v| {
            let out = match (prev, v) {
                (Some(p), Some(x)) => Some(x - p),
                _ => None,
            };
            prev = v;
            out
        })
        .collect()
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
            let values = delayed(&s.values, steps);
            s.tags.insert("delay".into(), steps.to_string());
            copied(&s, format!("delay({},{steps})", s.name), values)
        })
        .collect())
}

/// graphite-web's list slicing for `delay`, on the *raw* values: `steps` nulls in front and
/// the tail dropped (or the head dropped and nulls behind for a negative `steps`). A delay of
/// 0 gives no values at all, because `series[:-0]` is empty in Python.
fn delayed(raw: &[Option<f64>], steps: i64) -> Vec<Option<f64>> {
    let n = raw.len();
    let shift = usize::try_from(steps.unsigned_abs()).unwrap_or(usize::MAX).min(n);
    if steps < 0 {
        let mut v = raw.get(shift..).unwrap_or(&[]).to_vec();
        v.extend(std::iter::repeat_n(None, shift));
        v
    } else {
        let mut v = vec![None; shift];
        if steps > 0 {
            v.extend_from_slice(raw.get(..n - shift).unwrap_or(&[]));
        }
        v
    }
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
                    // A trailing digit picks the ISO weekday to align to (Monday after a
                    // letter); graphite-web fails on anything else there.
                    let day = match align.chars().last() {
                        Some(c) if c.is_alphabetic() => 1,
                        Some(c) => c.to_digit(10).map(i64::from).ok_or_else(|| {
                            Error::arg(format!(
                                "smartSummarize(): invalid weekday in alignTo '{align}'"
                            ))
                        })?,
                        None => 1,
                    };
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
    let shifted_range = |offset: i64| {
        ctx.from.checked_add(offset).zip(ctx.until.checked_add(offset)).ok_or_else(|| {
            Error::arg(format!("timeShift(): shifting by '{text}' leaves the time range"))
        })
    };
    let (mut from, mut until) = shifted_range(delta)?;
    if align_dst {
        let (req_start, req_end) = (ctx.tz.is_dst(ctx.from), ctx.tz.is_dst(ctx.until));
        let (my_start, my_end) = (ctx.tz.is_dst(from), ctx.tz.is_dst(until));
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
    // Every shift is a fetch; more shifts than the request may fetch series cannot succeed.
    let shifts = i128::from(last_shift) - i128::from(first_shift);
    if shifts > i128::try_from(ctx.limits.max_series).unwrap_or(i128::MAX) {
        return Err(Error::Limit(format!(
            "timeStack() would fetch {shifts} shifted copies (limit max_series)"
        )));
    }
    let mut out = Vec::new();
    for shift in first_shift..last_shift {
        let range = delta
            .checked_mul(shift)
            .filter(|o| o.abs() < 999_999_999 * SECONDS_PER_DAY)
            .and_then(|o| ctx.from.checked_add(o).zip(ctx.until.checked_add(o)));
        let Some((from, until)) = range else {
            return Err(Error::arg(format!("timeStack(): shift {shift} x '{unit}' is too large")));
        };
        for mut s in args.eval_with_range(expr, from, until)? {
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
    let span = i128::from(ctx.until) - i128::from(ctx.from);
    let count =
        i64::try_from((span.max(0) + i128::from(step) - 1) / i128::from(step)).unwrap_or(i64::MAX);
    check_points(ctx, args.def.name, count)?;
    Ok((0..count).map(|k| ctx.from + k * step).collect())
}

fn time_function(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let name = args.string(0)?;
    let step = generator_step(args, 1)?;
    let values = generator_times(args, step)?.into_iter().map(|t| Some(t as f64)).collect();
    let mut s = Series::new(name, args.ctx.from, args.ctx.until, step, values);
    s.x_files_factor = args.ctx.effective_x_files_factor();
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
    s.x_files_factor = args.ctx.effective_x_files_factor();
    Ok(vec![s])
}

#[cfg(test)]
mod tests {
    //! Expected values come from graphite-web 1.1.8: each target was evaluated by its real
    //! `evaluateTarget` (/usr/bin/python3, graphite.render.evaluator with `fetchData` reading
    //! the same data the way `MemorySource` does), and the results pasted here.
    // Pasted values such as 1.4142135623730951 are graphite-web's output, not constants.
    #![allow(clippy::approx_constant)]

    use std::collections::BTreeMap;

    use super::*;
    use crate::source::MemorySource;
    use crate::testutil::{T0, eval, names, source, try_eval};

    const N: Option<f64> = None;

    /// The data every test reads: 60 s series with nulls, a counter without nulls, a 300 s
    /// series and a tagged one.
    fn data() -> MemorySource {
        source(&[
            (
                "test.web01.cpu",
                60,
                &[
                    Some(1.0),
                    Some(2.0),
                    N,
                    Some(4.0),
                    Some(8.0),
                    Some(7.0),
                    N,
                    N,
                    Some(10.0),
                    Some(3.0),
                ],
            ),
            (
                "test.web02.cpu",
                60,
                &[
                    N,
                    Some(0.5),
                    Some(1.5),
                    Some(-2.0),
                    N,
                    Some(3.25),
                    Some(100.0),
                    Some(0.0),
                    Some(-0.5),
                    Some(2.0),
                ],
            ),
            (
                "test.counter.x",
                60,
                &[
                    Some(5.0),
                    Some(9.0),
                    Some(2.0),
                    Some(6.0),
                    Some(12.0),
                    Some(3.0),
                    Some(3.0),
                    Some(8.0),
                    Some(1.0),
                    Some(4.0),
                ],
            ),
            ("test.slow.cpu", 300, &[Some(1.0), Some(6.0), N, Some(9.0)]),
            (
                "test.ratio.cpu",
                60,
                &[
                    Some(0.5),
                    Some(0.25),
                    N,
                    Some(1.0),
                    Some(0.0),
                    Some(0.9),
                    Some(-0.5),
                    Some(2.0),
                    Some(0.75),
                    Some(0.1),
                ],
            ),
            (
                "tagged.disk.used;dc=dc1;server=web01",
                60,
                &[
                    Some(10.0),
                    N,
                    Some(30.0),
                    Some(40.0),
                    Some(35.0),
                    N,
                    Some(20.0),
                    Some(25.0),
                    Some(30.0),
                    Some(50.0),
                ],
            ),
        ])
    }

    /// One expected series.
    struct W {
        name: &'static str,
        path: &'static str,
        start: i64,
        end: i64,
        step: i64,
        values: &'static [Option<f64>],
        tags: &'static [(&'static str, &'static str)],
    }

    /// Compares a result with graphite-web's, value for value (bit for bit, so -0.0 and 0.0
    /// differ only where graphite-web's do too).
    fn want(got: &[Series], want: &[W]) {
        assert_eq!(got.len(), want.len(), "series: {:?}", names(got));
        for (g, w) in got.iter().zip(want) {
            assert_eq!(g.name, w.name);
            assert_eq!(g.path_expression, w.path, "{}", w.name);
            assert_eq!((g.start, g.end, g.step), (w.start, w.end, w.step), "{}", w.name);
            let values = g.consolidated();
            assert_eq!(values.len(), w.values.len(), "{}: {values:?}", w.name);
            for (i, (a, b)) in values.iter().zip(w.values).enumerate() {
                let same = match (a, b) {
                    (Some(a), Some(b)) => a == b || (a.is_nan() && b.is_nan()),
                    (None, None) => true,
                    _ => false,
                };
                assert!(same, "{} [{i}]: got {a:?}, want {b:?}\n{values:?}", w.name);
            }
            let tags: BTreeMap<String, String> =
                w.tags.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            assert_eq!(g.tags, tags, "{}", w.name);
        }
    }

    #[test]
    #[rustfmt::skip]
    fn scale_matches_graphite_web() {
        let src = data();
        // scale(test.web01.cpu,2)
        want(&eval(&src, "scale(test.web01.cpu,2)", T0 - 60, T0 + 540), &[
            W { name: "scale(test.web01.cpu,2)", path: "scale(test.web01.cpu,2)", start: T0, end: T0 + 600, step: 60,
                values: &[Some(2.0), Some(4.0), None, Some(8.0), Some(16.0), Some(14.0), None, None, Some(20.0), Some(6.0)],
                tags: &[("name", "test.web01.cpu"), ("scale", "2.0")] },
        ]);
        // scale(test.web*.cpu,-1.5)
        want(&eval(&src, "scale(test.web*.cpu,-1.5)", T0 - 60, T0 + 540), &[
            W { name: "scale(test.web01.cpu,-1.5)", path: "scale(test.web01.cpu,-1.5)", start: T0, end: T0 + 600, step: 60,
                values: &[Some(-1.5), Some(-3.0), None, Some(-6.0), Some(-12.0), Some(-10.5), None, None, Some(-15.0), Some(-4.5)],
                tags: &[("name", "test.web01.cpu"), ("scale", "-1.5")] },
            W { name: "scale(test.web02.cpu,-1.5)", path: "scale(test.web02.cpu,-1.5)", start: T0, end: T0 + 600, step: 60,
                values: &[None, Some(-0.75), Some(-2.25), Some(3.0), None, Some(-4.875), Some(-150.0), Some(-0.0), Some(0.75), Some(-3.0)],
                tags: &[("name", "test.web02.cpu"), ("scale", "-1.5")] },
        ]);
        // scale(seriesByTag('name=tagged.disk.used'),0.1)
        want(&eval(&src, "scale(seriesByTag('name=tagged.disk.used'),0.1)", T0 - 60, T0 + 540), &[
            W { name: "scale(tagged.disk.used;dc=dc1;server=web01,0.1)", path: "scale(tagged.disk.used;dc=dc1;server=web01,0.1)", start: T0, end: T0 + 600, step: 60,
                values: &[Some(1.0), None, Some(3.0), Some(4.0), Some(3.5), None, Some(2.0), Some(2.5), Some(3.0), Some(5.0)],
                tags: &[("dc", "dc1"), ("name", "tagged.disk.used"), ("scale", "0.1"), ("server", "web01")] },
        ]);
        // scale(test.slow.cpu,1e-7)
        want(&eval(&src, "scale(test.slow.cpu,1e-7)", T0 - 60, T0 + 540), &[
            W { name: "scale(test.slow.cpu,1e-07)", path: "scale(test.slow.cpu,1e-07)", start: T0 + 60, end: T0 + 660, step: 300,
                values: &[Some(6e-07), None],
                tags: &[("name", "test.slow.cpu"), ("scale", "1e-07")] },
        ]);
    }

    #[test]
    #[rustfmt::skip]
    fn offset_matches_graphite_web() {
        let src = data();
        // offset(test.web01.cpu,10)
        want(&eval(&src, "offset(test.web01.cpu,10)", T0 - 60, T0 + 540), &[
            W { name: "offset(test.web01.cpu,10)", path: "offset(test.web01.cpu,10)", start: T0, end: T0 + 600, step: 60,
                values: &[Some(11.0), Some(12.0), None, Some(14.0), Some(18.0), Some(17.0), None, None, Some(20.0), Some(13.0)],
                tags: &[("name", "test.web01.cpu"), ("offset", "10.0")] },
        ]);
        // offset(test.web02.cpu,-0.25)
        want(&eval(&src, "offset(test.web02.cpu,-0.25)", T0 - 60, T0 + 540), &[
            W { name: "offset(test.web02.cpu,-0.25)", path: "offset(test.web02.cpu,-0.25)", start: T0, end: T0 + 600, step: 60,
                values: &[None, Some(0.25), Some(1.25), Some(-2.25), None, Some(3.0), Some(99.75), Some(-0.25), Some(-0.75), Some(1.75)],
                tags: &[("name", "test.web02.cpu"), ("offset", "-0.25")] },
        ]);
        // offset(seriesByTag('name=tagged.disk.used'),3)
        want(&eval(&src, "offset(seriesByTag('name=tagged.disk.used'),3)", T0 - 60, T0 + 540), &[
            W { name: "offset(tagged.disk.used;dc=dc1;server=web01,3)", path: "offset(tagged.disk.used;dc=dc1;server=web01,3)", start: T0, end: T0 + 600, step: 60,
                values: &[Some(13.0), None, Some(33.0), Some(43.0), Some(38.0), None, Some(23.0), Some(28.0), Some(33.0), Some(53.0)],
                tags: &[("dc", "dc1"), ("name", "tagged.disk.used"), ("offset", "3.0"), ("server", "web01")] },
        ]);
    }

    #[test]
    #[rustfmt::skip]
    fn absolute_matches_graphite_web() {
        let src = data();
        // absolute(test.web02.cpu)
        want(&eval(&src, "absolute(test.web02.cpu)", T0 - 60, T0 + 540), &[
            W { name: "absolute(test.web02.cpu)", path: "absolute(test.web02.cpu)", start: T0, end: T0 + 600, step: 60,
                values: &[None, Some(0.5), Some(1.5), Some(2.0), None, Some(3.25), Some(100.0), Some(0.0), Some(0.5), Some(2.0)],
                tags: &[("absolute", "1"), ("name", "test.web02.cpu")] },
        ]);
        // absolute(seriesByTag('name=tagged.disk.used'))
        want(&eval(&src, "absolute(seriesByTag('name=tagged.disk.used'))", T0 - 60, T0 + 540), &[
            W { name: "absolute(tagged.disk.used;dc=dc1;server=web01)", path: "absolute(tagged.disk.used;dc=dc1;server=web01)", start: T0, end: T0 + 600, step: 60,
                values: &[Some(10.0), None, Some(30.0), Some(40.0), Some(35.0), None, Some(20.0), Some(25.0), Some(30.0), Some(50.0)],
                tags: &[("absolute", "1"), ("dc", "dc1"), ("name", "tagged.disk.used"), ("server", "web01")] },
        ]);
    }

    #[test]
    #[rustfmt::skip]
    fn derivative_matches_graphite_web() {
        let src = data();
        // derivative(test.web01.cpu)
        want(&eval(&src, "derivative(test.web01.cpu)", T0 - 60, T0 + 540), &[
            W { name: "derivative(test.web01.cpu)", path: "derivative(test.web01.cpu)", start: T0, end: T0 + 600, step: 60,
                values: &[None, Some(1.0), None, None, Some(4.0), Some(-1.0), None, None, None, Some(-7.0)],
                tags: &[("derivative", "1"), ("name", "test.web01.cpu")] },
        ]);
        // derivative(test.web02.cpu)
        want(&eval(&src, "derivative(test.web02.cpu)", T0 - 60, T0 + 540), &[
            W { name: "derivative(test.web02.cpu)", path: "derivative(test.web02.cpu)", start: T0, end: T0 + 600, step: 60,
                values: &[None, None, Some(1.0), Some(-3.5), None, None, Some(96.75), Some(-100.0), Some(-0.5), Some(2.5)],
                tags: &[("derivative", "1"), ("name", "test.web02.cpu")] },
        ]);
        // derivative(test.slow.cpu)
        want(&eval(&src, "derivative(test.slow.cpu)", T0 - 60, T0 + 540), &[
            W { name: "derivative(test.slow.cpu)", path: "derivative(test.slow.cpu)", start: T0 + 60, end: T0 + 660, step: 300,
                values: &[None, None],
                tags: &[("derivative", "1"), ("name", "test.slow.cpu")] },
        ]);
    }

    #[test]
    #[rustfmt::skip]
    fn non_negative_derivative_matches_graphite_web() {
        let src = data();
        // nonNegativeDerivative(test.web01.cpu)
        want(&eval(&src, "nonNegativeDerivative(test.web01.cpu)", T0 - 60, T0 + 540), &[
            W { name: "nonNegativeDerivative(test.web01.cpu)", path: "nonNegativeDerivative(test.web01.cpu)", start: T0, end: T0 + 600, step: 60,
                values: &[None, Some(1.0), None, None, Some(4.0), None, None, None, None, None],
                tags: &[("name", "test.web01.cpu"), ("nonNegativeDerivative", "1")] },
        ]);
        // nonNegativeDerivative(test.counter.x)
        want(&eval(&src, "nonNegativeDerivative(test.counter.x)", T0 - 60, T0 + 540), &[
            W { name: "nonNegativeDerivative(test.counter.x)", path: "nonNegativeDerivative(test.counter.x)", start: T0, end: T0 + 600, step: 60,
                values: &[None, Some(4.0), None, Some(4.0), Some(6.0), None, Some(0.0), Some(5.0), None, Some(3.0)],
                tags: &[("name", "test.counter.x"), ("nonNegativeDerivative", "1")] },
        ]);
        // nonNegativeDerivative(test.counter.x,10)
        want(&eval(&src, "nonNegativeDerivative(test.counter.x,10)", T0 - 60, T0 + 540), &[
            W { name: "nonNegativeDerivative(test.counter.x)", path: "nonNegativeDerivative(test.counter.x)", start: T0, end: T0 + 600, step: 60,
                values: &[None, Some(4.0), Some(4.0), Some(4.0), None, None, Some(0.0), Some(5.0), Some(4.0), Some(3.0)],
                tags: &[("name", "test.counter.x"), ("nonNegativeDerivative", "1")] },
        ]);
        // nonNegativeDerivative(test.counter.x,minValue=1)
        want(&eval(&src, "nonNegativeDerivative(test.counter.x,minValue=1)", T0 - 60, T0 + 540), &[
            W { name: "nonNegativeDerivative(test.counter.x)", path: "nonNegativeDerivative(test.counter.x)", start: T0, end: T0 + 600, step: 60,
                values: &[None, Some(4.0), Some(1.0), Some(4.0), Some(6.0), Some(2.0), Some(0.0), Some(5.0), Some(0.0), Some(3.0)],
                tags: &[("name", "test.counter.x"), ("nonNegativeDerivative", "1")] },
        ]);
        // nonNegativeDerivative(test.counter.x,11,2)
        want(&eval(&src, "nonNegativeDerivative(test.counter.x,11,2)", T0 - 60, T0 + 540), &[
            W { name: "nonNegativeDerivative(test.counter.x)", path: "nonNegativeDerivative(test.counter.x)", start: T0, end: T0 + 600, step: 60,
                values: &[None, Some(4.0), Some(3.0), Some(4.0), None, None, Some(0.0), Some(5.0), None, None],
                tags: &[("name", "test.counter.x"), ("nonNegativeDerivative", "1")] },
        ]);
        // nonNegativeDerivative(seriesByTag('name=tagged.disk.used'))
        want(&eval(&src, "nonNegativeDerivative(seriesByTag('name=tagged.disk.used'))", T0 - 60, T0 + 540), &[
            W { name: "nonNegativeDerivative(tagged.disk.used;dc=dc1;server=web01)", path: "nonNegativeDerivative(tagged.disk.used;dc=dc1;server=web01)", start: T0, end: T0 + 600, step: 60,
                values: &[None, None, None, Some(10.0), None, None, None, Some(5.0), Some(5.0), Some(20.0)],
                tags: &[("dc", "dc1"), ("name", "tagged.disk.used"), ("nonNegativeDerivative", "1"), ("server", "web01")] },
        ]);
    }

    #[test]
    #[rustfmt::skip]
    fn per_second_matches_graphite_web() {
        let src = data();
        // perSecond(test.web01.cpu)
        want(&eval(&src, "perSecond(test.web01.cpu)", T0 - 60, T0 + 540), &[
            W { name: "perSecond(test.web01.cpu)", path: "perSecond(test.web01.cpu)", start: T0, end: T0 + 600, step: 60,
                values: &[None, Some(0.016667), None, None, Some(0.066667), None, None, None, None, None],
                tags: &[("name", "test.web01.cpu"), ("perSecond", "1")] },
        ]);
        // perSecond(test.counter.x)
        want(&eval(&src, "perSecond(test.counter.x)", T0 - 60, T0 + 540), &[
            W { name: "perSecond(test.counter.x)", path: "perSecond(test.counter.x)", start: T0, end: T0 + 600, step: 60,
                values: &[None, Some(0.066667), None, Some(0.066667), Some(0.1), None, Some(0.0), Some(0.083333), None, Some(0.05)],
                tags: &[("name", "test.counter.x"), ("perSecond", "1")] },
        ]);
        // perSecond(test.counter.x,10)
        want(&eval(&src, "perSecond(test.counter.x,10)", T0 - 60, T0 + 540), &[
            W { name: "perSecond(test.counter.x)", path: "perSecond(test.counter.x)", start: T0, end: T0 + 600, step: 60,
                values: &[None, Some(0.066667), Some(0.066667), Some(0.066667), None, None, Some(0.0), Some(0.083333), Some(0.066667), Some(0.05)],
                tags: &[("name", "test.counter.x"), ("perSecond", "1")] },
        ]);
        // perSecond(test.counter.x,maxValue=11,minValue=2)
        want(&eval(&src, "perSecond(test.counter.x,maxValue=11,minValue=2)", T0 - 60, T0 + 540), &[
            W { name: "perSecond(test.counter.x)", path: "perSecond(test.counter.x)", start: T0, end: T0 + 600, step: 60,
                values: &[None, Some(0.066667), Some(0.05), Some(0.066667), None, None, Some(0.0), Some(0.083333), None, None],
                tags: &[("name", "test.counter.x"), ("perSecond", "1")] },
        ]);
        // perSecond(test.slow.cpu)
        want(&eval(&src, "perSecond(test.slow.cpu)", T0 - 60, T0 + 540), &[
            W { name: "perSecond(test.slow.cpu)", path: "perSecond(test.slow.cpu)", start: T0 + 60, end: T0 + 660, step: 300,
                values: &[None, None],
                tags: &[("name", "test.slow.cpu"), ("perSecond", "1")] },
        ]);
        // perSecond(test.web02.cpu)
        want(&eval(&src, "perSecond(test.web02.cpu)", T0 - 60, T0 + 540), &[
            W { name: "perSecond(test.web02.cpu)", path: "perSecond(test.web02.cpu)", start: T0, end: T0 + 600, step: 60,
                values: &[None, None, Some(0.016667), None, None, None, Some(1.6125), None, None, Some(0.041667)],
                tags: &[("name", "test.web02.cpu"), ("perSecond", "1")] },
        ]);
    }

    #[test]
    #[rustfmt::skip]
    fn integral_matches_graphite_web() {
        let src = data();
        // integral(test.web01.cpu)
        want(&eval(&src, "integral(test.web01.cpu)", T0 - 60, T0 + 540), &[
            W { name: "integral(test.web01.cpu)", path: "integral(test.web01.cpu)", start: T0, end: T0 + 600, step: 60,
                values: &[Some(1.0), Some(3.0), None, Some(7.0), Some(15.0), Some(22.0), None, None, Some(32.0), Some(35.0)],
                tags: &[("integral", "1"), ("name", "test.web01.cpu")] },
        ]);
        // integral(test.web02.cpu)
        want(&eval(&src, "integral(test.web02.cpu)", T0 - 60, T0 + 540), &[
            W { name: "integral(test.web02.cpu)", path: "integral(test.web02.cpu)", start: T0, end: T0 + 600, step: 60,
                values: &[None, Some(0.5), Some(2.0), Some(0.0), None, Some(3.25), Some(103.25), Some(103.25), Some(102.75), Some(104.75)],
                tags: &[("integral", "1"), ("name", "test.web02.cpu")] },
        ]);
        // integral(seriesByTag('name=tagged.disk.used'))
        want(&eval(&src, "integral(seriesByTag('name=tagged.disk.used'))", T0 - 60, T0 + 540), &[
            W { name: "integral(tagged.disk.used;dc=dc1;server=web01)", path: "integral(tagged.disk.used;dc=dc1;server=web01)", start: T0, end: T0 + 600, step: 60,
                values: &[Some(10.0), None, Some(40.0), Some(80.0), Some(115.0), None, Some(135.0), Some(160.0), Some(190.0), Some(240.0)],
                tags: &[("dc", "dc1"), ("integral", "1"), ("name", "tagged.disk.used"), ("server", "web01")] },
        ]);
    }

    #[test]
    #[rustfmt::skip]
    fn summarize_matches_graphite_web() {
        let src = data();
        // summarize(test.web01.cpu,"2min")
        want(&eval(&src, "summarize(test.web01.cpu,\"2min\")", T0 - 60, T0 + 540), &[
            W { name: "summarize(test.web01.cpu, \"2min\", \"sum\")", path: "summarize(test.web01.cpu, \"2min\", \"sum\")", start: T0, end: T0 + 720, step: 120,
                values: &[Some(3.0), Some(4.0), Some(15.0), None, Some(13.0), None],
                tags: &[("name", "test.web01.cpu"), ("summarize", "2min"), ("summarizeFunction", "sum")] },
        ]);
        // summarize(test.web01.cpu,"2min","avg")
        want(&eval(&src, "summarize(test.web01.cpu,\"2min\",\"avg\")", T0 - 60, T0 + 540), &[
            W { name: "summarize(test.web01.cpu, \"2min\", \"avg\")", path: "summarize(test.web01.cpu, \"2min\", \"avg\")", start: T0, end: T0 + 720, step: 120,
                values: &[Some(1.5), Some(4.0), Some(7.5), None, Some(6.5), None],
                tags: &[("name", "test.web01.cpu"), ("summarize", "2min"), ("summarizeFunction", "avg")] },
        ]);
        // summarize(test.web01.cpu,"5min","max",true)
        want(&eval(&src, "summarize(test.web01.cpu,\"5min\",\"max\",true)", T0 - 60, T0 + 540), &[
            W { name: "summarize(test.web01.cpu, \"5min\", \"max\", true)", path: "summarize(test.web01.cpu, \"5min\", \"max\", true)", start: T0, end: T0 + 600, step: 300,
                values: &[Some(8.0), Some(10.0)],
                tags: &[("name", "test.web01.cpu"), ("summarize", "5min"), ("summarizeFunction", "max")] },
        ]);
        // summarize(test.web02.cpu,"3min","last")
        want(&eval(&src, "summarize(test.web02.cpu,\"3min\",\"last\")", T0 - 60, T0 + 540), &[
            W { name: "summarize(test.web02.cpu, \"3min\", \"last\")", path: "summarize(test.web02.cpu, \"3min\", \"last\")", start: T0 - 120, end: T0 + 780, step: 180,
                values: &[None, Some(-2.0), Some(100.0), Some(2.0), None],
                tags: &[("name", "test.web02.cpu"), ("summarize", "3min"), ("summarizeFunction", "last")] },
        ]);
        // summarize(test.slow.cpu,"10min")
        want(&eval(&src, "summarize(test.slow.cpu,\"10min\")", T0 - 60, T0 + 540), &[
            W { name: "summarize(test.slow.cpu, \"10min\", \"sum\")", path: "summarize(test.slow.cpu, \"10min\", \"sum\")", start: T0 - 240, end: T0 + 960, step: 600,
                values: &[Some(6.0), None],
                tags: &[("name", "test.slow.cpu"), ("summarize", "10min"), ("summarizeFunction", "sum")] },
        ]);
        // summarize(test.web01.cpu,"1h","count")
        want(&eval(&src, "summarize(test.web01.cpu,\"1h\",\"count\")", T0 - 60, T0 + 540), &[
            W { name: "summarize(test.web01.cpu, \"1h\", \"count\")", path: "summarize(test.web01.cpu, \"1h\", \"count\")", start: T0 - 840, end: T0 + 2760, step: 3600,
                values: &[Some(7.0)],
                tags: &[("name", "test.web01.cpu"), ("summarize", "1h"), ("summarizeFunction", "count")] },
        ]);
        // summarize(test.web02.cpu,"4min","median",alignToFrom=true)
        want(&eval(&src, "summarize(test.web02.cpu,\"4min\",\"median\",alignToFrom=true)", T0 - 60, T0 + 540), &[
            W { name: "summarize(test.web02.cpu, \"4min\", \"median\", true)", path: "summarize(test.web02.cpu, \"4min\", \"median\", true)", start: T0, end: T0 + 720, step: 240,
                values: &[Some(0.5), Some(3.25), Some(0.75)],
                tags: &[("name", "test.web02.cpu"), ("summarize", "4min"), ("summarizeFunction", "median")] },
        ]);
        // summarize(seriesByTag('name=tagged.disk.used'),"2min","diff")
        want(&eval(&src, "summarize(seriesByTag('name=tagged.disk.used'),\"2min\",\"diff\")", T0 - 60, T0 + 540), &[
            W { name: "summarize(tagged.disk.used;dc=dc1;server=web01, \"2min\", \"diff\")", path: "summarize(tagged.disk.used;dc=dc1;server=web01, \"2min\", \"diff\")", start: T0, end: T0 + 720, step: 120,
                values: &[Some(10.0), Some(-10.0), Some(35.0), Some(-5.0), Some(-20.0), None],
                tags: &[("dc", "dc1"), ("name", "tagged.disk.used"), ("server", "web01"), ("summarize", "2min"), ("summarizeFunction", "diff")] },
        ]);
        // summarize(test.web01.cpu,"3min","multiply")
        want(&eval(&src, "summarize(test.web01.cpu,\"3min\",\"multiply\")", T0 - 60, T0 + 540), &[
            W { name: "summarize(test.web01.cpu, \"3min\", \"multiply\")", path: "summarize(test.web01.cpu, \"3min\", \"multiply\")", start: T0 - 120, end: T0 + 780, step: 180,
                values: &[Some(1.0), None, None, None, None],
                tags: &[("name", "test.web01.cpu"), ("summarize", "3min"), ("summarizeFunction", "multiply")] },
        ]);
        // summarize(test.web02.cpu,"3min","stddev")
        want(&eval(&src, "summarize(test.web02.cpu,\"3min\",\"stddev\")", T0 - 60, T0 + 540), &[
            W { name: "summarize(test.web02.cpu, \"3min\", \"stddev\")", path: "summarize(test.web02.cpu, \"3min\", \"stddev\")", start: T0 - 120, end: T0 + 780, step: 180,
                values: &[None, Some(1.4719601443879744), Some(48.375), Some(1.0801234497346435), None],
                tags: &[("name", "test.web02.cpu"), ("summarize", "3min"), ("summarizeFunction", "stddev")] },
        ]);
        // summarize(test.web02.cpu,"3min","range")
        want(&eval(&src, "summarize(test.web02.cpu,\"3min\",\"range\")", T0 - 60, T0 + 540), &[
            W { name: "summarize(test.web02.cpu, \"3min\", \"range\")", path: "summarize(test.web02.cpu, \"3min\", \"range\")", start: T0 - 120, end: T0 + 780, step: 180,
                values: &[None, Some(3.5), Some(96.75), Some(2.5), None],
                tags: &[("name", "test.web02.cpu"), ("summarize", "3min"), ("summarizeFunction", "range")] },
        ]);
        // summarize(test.web02.cpu,"3min","avg_zero")
        want(&eval(&src, "summarize(test.web02.cpu,\"3min\",\"avg_zero\")", T0 - 60, T0 + 540), &[
            W { name: "summarize(test.web02.cpu, \"3min\", \"avg_zero\")", path: "summarize(test.web02.cpu, \"3min\", \"avg_zero\")", start: T0 - 120, end: T0 + 780, step: 180,
                values: &[None, Some(0.0), Some(34.416666666666664), Some(0.5), None],
                tags: &[("name", "test.web02.cpu"), ("summarize", "3min"), ("summarizeFunction", "avg_zero")] },
        ]);
    }

    #[test]
    #[rustfmt::skip]
    fn smart_summarize_matches_graphite_web() {
        let src = data();
        // smartSummarize(test.web01.cpu,"2min")
        want(&eval(&src, "smartSummarize(test.web01.cpu,\"2min\")", T0 - 60, T0 + 540), &[
            W { name: "smartSummarize(test.web01.cpu, \"2min\", \"sum\")", path: "smartSummarize(test.web01.cpu, \"2min\", \"sum\")", start: T0, end: T0 + 600, step: 120,
                values: &[Some(3.0), Some(4.0), Some(15.0), None, Some(13.0)],
                tags: &[("name", "test.web01.cpu"), ("smartSummarize", "2min"), ("smartSummarizeFunction", "sum")] },
        ]);
        // smartSummarize(test.web01.cpu,"3min","average")
        want(&eval(&src, "smartSummarize(test.web01.cpu,\"3min\",\"average\")", T0 - 60, T0 + 540), &[
            W { name: "smartSummarize(test.web01.cpu, \"3min\", \"average\")", path: "smartSummarize(test.web01.cpu, \"3min\", \"average\")", start: T0, end: T0 + 720, step: 180,
                values: &[Some(1.5), Some(6.333333333333333), Some(10.0), Some(3.0)],
                tags: &[("name", "test.web01.cpu"), ("smartSummarize", "3min"), ("smartSummarizeFunction", "average")] },
        ]);
        // smartSummarize(test.web01.cpu,"3min","max","minutes")
        want(&eval(&src, "smartSummarize(test.web01.cpu,\"3min\",\"max\",\"minutes\")", T0 - 60, T0 + 540), &[
            W { name: "smartSummarize(test.web01.cpu, \"3min\", \"max\")", path: "smartSummarize(test.web01.cpu, \"3min\", \"max\")", start: T0, end: T0 + 720, step: 180,
                values: &[Some(2.0), Some(8.0), Some(10.0), Some(3.0)],
                tags: &[("name", "test.web01.cpu"), ("smartSummarize", "3min"), ("smartSummarizeFunction", "max")] },
        ]);
        // smartSummarize(test.web01.cpu,"1h","sum","hours")
        want(&eval(&src, "smartSummarize(test.web01.cpu,\"1h\",\"sum\",\"hours\")", T0 - 60, T0 + 540), &[
            W { name: "smartSummarize(test.web01.cpu, \"1h\", \"sum\")", path: "smartSummarize(test.web01.cpu, \"1h\", \"sum\")", start: T0 - 780, end: T0 + 2820, step: 3600,
                values: &[Some(35.0)],
                tags: &[("name", "test.web01.cpu"), ("smartSummarize", "1h"), ("smartSummarizeFunction", "sum")] },
        ]);
        // smartSummarize(test.web02.cpu,"4min","min","hours")
        want(&eval(&src, "smartSummarize(test.web02.cpu,\"4min\",\"min\",\"hours\")", T0 - 60, T0 + 540), &[
            W { name: "smartSummarize(test.web02.cpu, \"4min\", \"min\")", path: "smartSummarize(test.web02.cpu, \"4min\", \"min\")", start: T0 - 780, end: T0 + 660, step: 240,
                values: &[None, None, None, Some(0.5), Some(-2.0), Some(-0.5)],
                tags: &[("name", "test.web02.cpu"), ("smartSummarize", "4min"), ("smartSummarizeFunction", "min")] },
        ]);
        // smartSummarize(test.web02.cpu,"3min","last","seconds")
        want(&eval(&src, "smartSummarize(test.web02.cpu,\"3min\",\"last\",\"seconds\")", T0 - 60, T0 + 540), &[
            W { name: "smartSummarize(test.web02.cpu, \"3min\", \"last\")", path: "smartSummarize(test.web02.cpu, \"3min\", \"last\")", start: T0, end: T0 + 720, step: 180,
                values: &[Some(1.5), Some(3.25), Some(-0.5), Some(2.0)],
                tags: &[("name", "test.web02.cpu"), ("smartSummarize", "3min"), ("smartSummarizeFunction", "last")] },
        ]);
        // smartSummarize(test.slow.cpu,"5min","sum",true)
        want(&eval(&src, "smartSummarize(test.slow.cpu,\"5min\",\"sum\",true)", T0 - 60, T0 + 540), &[
            W { name: "smartSummarize(test.slow.cpu, \"5min\", \"sum\")", path: "smartSummarize(test.slow.cpu, \"5min\", \"sum\")", start: T0 + 60, end: T0 + 660, step: 300,
                values: &[Some(6.0), None],
                tags: &[("name", "test.slow.cpu"), ("smartSummarize", "5min"), ("smartSummarizeFunction", "sum")] },
        ]);
    }

    #[test]
    #[rustfmt::skip]
    fn hitcount_matches_graphite_web() {
        let src = data();
        // hitcount(test.web01.cpu,"2min")
        want(&eval(&src, "hitcount(test.web01.cpu,\"2min\")", T0 - 60, T0 + 540), &[
            W { name: "hitcount(test.web01.cpu, \"2min\")", path: "hitcount(test.web01.cpu, \"2min\")", start: T0, end: T0 + 600, step: 120,
                values: &[Some(180.0), Some(240.0), Some(900.0), None, Some(780.0)],
                tags: &[("hitcount", "2min"), ("name", "test.web01.cpu")] },
        ]);
        // hitcount(test.slow.cpu,"4min")
        want(&eval(&src, "hitcount(test.slow.cpu,\"4min\")", T0 - 60, T0 + 540), &[
            W { name: "hitcount(test.slow.cpu, \"4min\")", path: "hitcount(test.slow.cpu, \"4min\")", start: T0 - 60, end: T0 + 660, step: 240,
                values: &[Some(720.0), Some(1080.0), None],
                tags: &[("hitcount", "4min"), ("name", "test.slow.cpu")] },
        ]);
        // hitcount(test.web01.cpu,"5min",true)
        want(&eval(&src, "hitcount(test.web01.cpu,\"5min\",true)", T0 - 60, T0 + 540), &[
            W { name: "hitcount(test.web01.cpu, \"5min\", true)", path: "hitcount(test.web01.cpu, \"5min\", true)", start: T0, end: T0 + 900, step: 300,
                values: &[Some(900.0), Some(1200.0), None],
                tags: &[("hitcount", "5min"), ("name", "test.web01.cpu")] },
        ]);
        // hitcount(test.web02.cpu,"90s")
        want(&eval(&src, "hitcount(test.web02.cpu,\"90s\")", T0 - 60, T0 + 540), &[
            W { name: "hitcount(test.web02.cpu, \"90s\")", path: "hitcount(test.web02.cpu, \"90s\")", start: T0 - 30, end: T0 + 600, step: 90,
                values: &[None, Some(75.0), Some(-75.0), Some(97.5), Some(6097.5), Some(-15.0), Some(105.0)],
                tags: &[("hitcount", "90s"), ("name", "test.web02.cpu")] },
        ]);
        // hitcount(seriesByTag('name=tagged.disk.used'),"1h",true)
        want(&eval(&src, "hitcount(seriesByTag('name=tagged.disk.used'),\"1h\",true)", T0 - 60, T0 + 540), &[
            W { name: "hitcount(tagged.disk.used;dc=dc1;server=web01, \"1h\", true)", path: "hitcount(tagged.disk.used;dc=dc1;server=web01, \"1h\", true)", start: T0 - 780, end: T0 + 2820, step: 3600,
                values: &[Some(14400.0)],
                tags: &[("dc", "dc1"), ("hitcount", "1h"), ("name", "tagged.disk.used"), ("server", "web01")] },
        ]);
        // hitcount(test.slow.cpu,"7min")
        want(&eval(&src, "hitcount(test.slow.cpu,\"7min\")", T0 - 60, T0 + 540), &[
            W { name: "hitcount(test.slow.cpu, \"7min\")", path: "hitcount(test.slow.cpu, \"7min\")", start: T0 - 180, end: T0 + 660, step: 420,
                values: &[Some(1080.0), Some(720.0)],
                tags: &[("hitcount", "7min"), ("name", "test.slow.cpu")] },
        ]);
    }

    #[test]
    #[rustfmt::skip]
    fn time_shift_matches_graphite_web() {
        let src = data();
        // timeShift(test.web01.cpu,"1min")
        want(&eval(&src, "timeShift(test.web01.cpu,\"1min\")", T0 - 60, T0 + 540), &[
            W { name: "timeShift(test.web01.cpu, \"-1min\")", path: "test.web01.cpu", start: T0, end: T0 + 600, step: 60,
                values: &[None, Some(1.0), Some(2.0), None, Some(4.0), Some(8.0), Some(7.0), None, None, Some(10.0)],
                tags: &[("name", "test.web01.cpu"), ("timeShift", "-1min")] },
        ]);
        // timeShift(test.web01.cpu,"+2min")
        want(&eval(&src, "timeShift(test.web01.cpu,\"+2min\")", T0 - 60, T0 + 540), &[
            W { name: "timeShift(test.web01.cpu, \"+2min\")", path: "test.web01.cpu", start: T0, end: T0 + 600, step: 60,
                values: &[None, Some(4.0), Some(8.0), Some(7.0), None, None, Some(10.0), Some(3.0), None, None],
                tags: &[("name", "test.web01.cpu"), ("timeShift", "+2min")] },
        ]);
        // timeShift(test.web01.cpu,"-3min",false)
        want(&eval(&src, "timeShift(test.web01.cpu,\"-3min\",false)", T0 - 60, T0 + 540), &[
            W { name: "timeShift(test.web01.cpu, \"-3min\")", path: "test.web01.cpu", start: T0, end: T0 + 600, step: 60,
                values: &[None, None, None, Some(1.0), Some(2.0), None, Some(4.0), Some(8.0), Some(7.0), None],
                tags: &[("name", "test.web01.cpu"), ("timeShift", "-3min")] },
        ]);
        // timeShift(test.web*.cpu,"5min")
        want(&eval(&src, "timeShift(test.web*.cpu,\"5min\")", T0 - 60, T0 + 540), &[
            W { name: "timeShift(test.web01.cpu, \"-5min\")", path: "test.web*.cpu", start: T0, end: T0 + 600, step: 60,
                values: &[None, None, None, None, None, Some(1.0), Some(2.0), None, Some(4.0), Some(8.0)],
                tags: &[("name", "test.web01.cpu"), ("timeShift", "-5min")] },
            W { name: "timeShift(test.web02.cpu, \"-5min\")", path: "test.web*.cpu", start: T0, end: T0 + 600, step: 60,
                values: &[None, None, None, None, None, None, Some(0.5), Some(1.5), Some(-2.0), None],
                tags: &[("name", "test.web02.cpu"), ("timeShift", "-5min")] },
        ]);
        // timeShift(seriesByTag('name=tagged.disk.used'),"1min")
        want(&eval(&src, "timeShift(seriesByTag('name=tagged.disk.used'),\"1min\")", T0 - 60, T0 + 540), &[
            W { name: "timeShift(tagged.disk.used;dc=dc1;server=web01, \"-1min\")", path: "seriesByTag('name=tagged.disk.used')", start: T0, end: T0 + 600, step: 60,
                values: &[None, Some(10.0), None, Some(30.0), Some(40.0), Some(35.0), None, Some(20.0), Some(25.0), Some(30.0)],
                tags: &[("dc", "dc1"), ("name", "tagged.disk.used"), ("server", "web01"), ("timeShift", "-1min")] },
        ]);
        // timeShift(test.slow.cpu,"10min")
        want(&eval(&src, "timeShift(test.slow.cpu,\"10min\")", T0 - 60, T0 + 540), &[
            W { name: "timeShift(test.slow.cpu, \"-10min\")", path: "test.slow.cpu", start: T0 + 60, end: T0 + 660, step: 300,
                values: &[None, Some(1.0)],
                tags: &[("name", "test.slow.cpu"), ("timeShift", "-10min")] },
        ]);
    }

    #[test]
    #[rustfmt::skip]
    fn time_stack_matches_graphite_web() {
        let src = data();
        // timeStack(test.web01.cpu,"1min",0,3)
        want(&eval(&src, "timeStack(test.web01.cpu,\"1min\",0,3)", T0 - 60, T0 + 540), &[
            W { name: "timeShift(test.web01.cpu, -1min, 0)", path: "timeShift(test.web01.cpu, -1min, 0)", start: T0, end: T0 + 600, step: 60,
                values: &[Some(1.0), Some(2.0), None, Some(4.0), Some(8.0), Some(7.0), None, None, Some(10.0), Some(3.0)],
                tags: &[("name", "test.web01.cpu"), ("timeShift", "0"), ("timeShiftUnit", "-1min")] },
            W { name: "timeShift(test.web01.cpu, -1min, 1)", path: "timeShift(test.web01.cpu, -1min, 1)", start: T0, end: T0 + 600, step: 60,
                values: &[None, Some(1.0), Some(2.0), None, Some(4.0), Some(8.0), Some(7.0), None, None, Some(10.0)],
                tags: &[("name", "test.web01.cpu"), ("timeShift", "1"), ("timeShiftUnit", "-1min")] },
            W { name: "timeShift(test.web01.cpu, -1min, 2)", path: "timeShift(test.web01.cpu, -1min, 2)", start: T0, end: T0 + 600, step: 60,
                values: &[None, None, Some(1.0), Some(2.0), None, Some(4.0), Some(8.0), Some(7.0), None, None],
                tags: &[("name", "test.web01.cpu"), ("timeShift", "2"), ("timeShiftUnit", "-1min")] },
        ]);
        // timeStack(test.web02.cpu,"2min",1,2)
        want(&eval(&src, "timeStack(test.web02.cpu,\"2min\",1,2)", T0 - 60, T0 + 540), &[
            W { name: "timeShift(test.web02.cpu, -2min, 1)", path: "timeShift(test.web02.cpu, -2min, 1)", start: T0, end: T0 + 600, step: 60,
                values: &[None, None, None, Some(0.5), Some(1.5), Some(-2.0), None, Some(3.25), Some(100.0), Some(0.0)],
                tags: &[("name", "test.web02.cpu"), ("timeShift", "1"), ("timeShiftUnit", "-2min")] },
        ]);
        // timeStack(test.slow.cpu,"5min")
        want(&eval(&src, "timeStack(test.slow.cpu,\"5min\")", T0 - 60, T0 + 540), &[
            W { name: "timeShift(test.slow.cpu, -5min, 0)", path: "timeShift(test.slow.cpu, -5min, 0)", start: T0 + 60, end: T0 + 660, step: 300,
                values: &[Some(6.0), None],
                tags: &[("name", "test.slow.cpu"), ("timeShift", "0"), ("timeShiftUnit", "-5min")] },
            W { name: "timeShift(test.slow.cpu, -5min, 1)", path: "timeShift(test.slow.cpu, -5min, 1)", start: T0 + 60, end: T0 + 660, step: 300,
                values: &[Some(1.0), Some(6.0)],
                tags: &[("name", "test.slow.cpu"), ("timeShift", "1"), ("timeShiftUnit", "-5min")] },
            W { name: "timeShift(test.slow.cpu, -5min, 2)", path: "timeShift(test.slow.cpu, -5min, 2)", start: T0 + 60, end: T0 + 660, step: 300,
                values: &[None, Some(1.0)],
                tags: &[("name", "test.slow.cpu"), ("timeShift", "2"), ("timeShiftUnit", "-5min")] },
            W { name: "timeShift(test.slow.cpu, -5min, 3)", path: "timeShift(test.slow.cpu, -5min, 3)", start: T0 + 60, end: T0 + 660, step: 300,
                values: &[None, None],
                tags: &[("name", "test.slow.cpu"), ("timeShift", "3"), ("timeShiftUnit", "-5min")] },
            W { name: "timeShift(test.slow.cpu, -5min, 4)", path: "timeShift(test.slow.cpu, -5min, 4)", start: T0 + 60, end: T0 + 660, step: 300,
                values: &[None, None],
                tags: &[("name", "test.slow.cpu"), ("timeShift", "4"), ("timeShiftUnit", "-5min")] },
            W { name: "timeShift(test.slow.cpu, -5min, 5)", path: "timeShift(test.slow.cpu, -5min, 5)", start: T0 + 60, end: T0 + 660, step: 300,
                values: &[None, None],
                tags: &[("name", "test.slow.cpu"), ("timeShift", "5"), ("timeShiftUnit", "-5min")] },
            W { name: "timeShift(test.slow.cpu, -5min, 6)", path: "timeShift(test.slow.cpu, -5min, 6)", start: T0 + 60, end: T0 + 660, step: 300,
                values: &[None, None],
                tags: &[("name", "test.slow.cpu"), ("timeShift", "6"), ("timeShiftUnit", "-5min")] },
        ]);
    }

    #[test]
    #[rustfmt::skip]
    fn keep_last_value_matches_graphite_web() {
        let src = data();
        // keepLastValue(test.web01.cpu)
        want(&eval(&src, "keepLastValue(test.web01.cpu)", T0 - 60, T0 + 540), &[
            W { name: "keepLastValue(test.web01.cpu)", path: "keepLastValue(test.web01.cpu)", start: T0, end: T0 + 600, step: 60,
                values: &[Some(1.0), Some(2.0), Some(2.0), Some(4.0), Some(8.0), Some(7.0), Some(7.0), Some(7.0), Some(10.0), Some(3.0)],
                tags: &[("name", "test.web01.cpu")] },
        ]);
        // keepLastValue(test.web01.cpu,1)
        want(&eval(&src, "keepLastValue(test.web01.cpu,1)", T0 - 60, T0 + 540), &[
            W { name: "keepLastValue(test.web01.cpu)", path: "keepLastValue(test.web01.cpu)", start: T0, end: T0 + 600, step: 60,
                values: &[Some(1.0), Some(2.0), Some(2.0), Some(4.0), Some(8.0), Some(7.0), None, None, Some(10.0), Some(3.0)],
                tags: &[("name", "test.web01.cpu")] },
        ]);
        // keepLastValue(test.web02.cpu)
        want(&eval(&src, "keepLastValue(test.web02.cpu)", T0 - 60, T0 + 540), &[
            W { name: "keepLastValue(test.web02.cpu)", path: "keepLastValue(test.web02.cpu)", start: T0, end: T0 + 600, step: 60,
                values: &[None, Some(0.5), Some(1.5), Some(-2.0), Some(-2.0), Some(3.25), Some(100.0), Some(0.0), Some(-0.5), Some(2.0)],
                tags: &[("name", "test.web02.cpu")] },
        ]);
        // keepLastValue(test.web01.cpu,0)
        want(&eval(&src, "keepLastValue(test.web01.cpu,0)", T0 - 60, T0 + 540), &[
            W { name: "keepLastValue(test.web01.cpu)", path: "keepLastValue(test.web01.cpu)", start: T0, end: T0 + 600, step: 60,
                values: &[Some(1.0), Some(2.0), None, Some(4.0), Some(8.0), Some(7.0), None, None, Some(10.0), Some(3.0)],
                tags: &[("name", "test.web01.cpu")] },
        ]);
        // keepLastValue(seriesByTag('name=tagged.disk.used'))
        want(&eval(&src, "keepLastValue(seriesByTag('name=tagged.disk.used'))", T0 - 60, T0 + 540), &[
            W { name: "keepLastValue(tagged.disk.used;dc=dc1;server=web01)", path: "keepLastValue(tagged.disk.used;dc=dc1;server=web01)", start: T0, end: T0 + 600, step: 60,
                values: &[Some(10.0), Some(10.0), Some(30.0), Some(40.0), Some(35.0), Some(35.0), Some(20.0), Some(25.0), Some(30.0), Some(50.0)],
                tags: &[("dc", "dc1"), ("name", "tagged.disk.used"), ("server", "web01")] },
        ]);
    }

    #[test]
    #[rustfmt::skip]
    fn transform_null_matches_graphite_web() {
        let src = data();
        // transformNull(test.web01.cpu)
        want(&eval(&src, "transformNull(test.web01.cpu)", T0 - 60, T0 + 540), &[
            W { name: "transformNull(test.web01.cpu,0)", path: "transformNull(test.web01.cpu,0)", start: T0, end: T0 + 600, step: 60,
                values: &[Some(1.0), Some(2.0), Some(0.0), Some(4.0), Some(8.0), Some(7.0), Some(0.0), Some(0.0), Some(10.0), Some(3.0)],
                tags: &[("name", "test.web01.cpu"), ("transformNull", "0")] },
        ]);
        // transformNull(test.web01.cpu,-1)
        want(&eval(&src, "transformNull(test.web01.cpu,-1)", T0 - 60, T0 + 540), &[
            W { name: "transformNull(test.web01.cpu,-1)", path: "transformNull(test.web01.cpu,-1)", start: T0, end: T0 + 600, step: 60,
                values: &[Some(1.0), Some(2.0), Some(-1.0), Some(4.0), Some(8.0), Some(7.0), Some(-1.0), Some(-1.0), Some(10.0), Some(3.0)],
                tags: &[("name", "test.web01.cpu"), ("transformNull", "-1.0")] },
        ]);
        // transformNull(test.web01.cpu,2.5,test.web02.cpu)
        want(&eval(&src, "transformNull(test.web01.cpu,2.5,test.web02.cpu)", T0 - 60, T0 + 540), &[
            W { name: "transformNull(test.web01.cpu,2.5,referenceSeries)", path: "transformNull(test.web01.cpu,2.5,referenceSeries)", start: T0, end: T0 + 600, step: 60,
                values: &[Some(1.0), Some(2.0), Some(2.5), Some(4.0), Some(8.0), Some(7.0), Some(2.5), Some(2.5), Some(10.0), Some(3.0)],
                tags: &[("name", "test.web01.cpu"), ("referenceSeries", "1"), ("transformNull", "2.5")] },
        ]);
        // transformNull(test.web02.cpu,default=7,referenceSeries=test.web01.cpu)
        want(&eval(&src, "transformNull(test.web02.cpu,default=7,referenceSeries=test.web01.cpu)", T0 - 60, T0 + 540), &[
            W { name: "transformNull(test.web02.cpu,7,referenceSeries)", path: "transformNull(test.web02.cpu,7,referenceSeries)", start: T0, end: T0 + 600, step: 60,
                values: &[Some(7.0), Some(0.5), Some(1.5), Some(-2.0), Some(7.0), Some(3.25), Some(100.0), Some(0.0), Some(-0.5), Some(2.0)],
                tags: &[("name", "test.web02.cpu"), ("referenceSeries", "1"), ("transformNull", "7.0")] },
        ]);
        // transformNull(test.slow.cpu)
        want(&eval(&src, "transformNull(test.slow.cpu)", T0 - 60, T0 + 540), &[
            W { name: "transformNull(test.slow.cpu,0)", path: "transformNull(test.slow.cpu,0)", start: T0 + 60, end: T0 + 660, step: 300,
                values: &[Some(6.0), Some(0.0)],
                tags: &[("name", "test.slow.cpu"), ("transformNull", "0")] },
        ]);
        // transformNull(seriesByTag('name=tagged.disk.used'),0)
        want(&eval(&src, "transformNull(seriesByTag('name=tagged.disk.used'),0)", T0 - 60, T0 + 540), &[
            W { name: "transformNull(tagged.disk.used;dc=dc1;server=web01,0)", path: "transformNull(tagged.disk.used;dc=dc1;server=web01,0)", start: T0, end: T0 + 600, step: 60,
                values: &[Some(10.0), Some(0.0), Some(30.0), Some(40.0), Some(35.0), Some(0.0), Some(20.0), Some(25.0), Some(30.0), Some(50.0)],
                tags: &[("dc", "dc1"), ("name", "tagged.disk.used"), ("server", "web01"), ("transformNull", "0.0")] },
        ]);
    }

    #[test]
    #[rustfmt::skip]
    fn delay_matches_graphite_web() {
        let src = data();
        // delay(test.web01.cpu,2)
        want(&eval(&src, "delay(test.web01.cpu,2)", T0 - 60, T0 + 540), &[
            W { name: "delay(test.web01.cpu,2)", path: "delay(test.web01.cpu,2)", start: T0, end: T0 + 600, step: 60,
                values: &[None, None, Some(1.0), Some(2.0), None, Some(4.0), Some(8.0), Some(7.0), None, None],
                tags: &[("delay", "2"), ("name", "test.web01.cpu")] },
        ]);
        // delay(test.web01.cpu,-3)
        want(&eval(&src, "delay(test.web01.cpu,-3)", T0 - 60, T0 + 540), &[
            W { name: "delay(test.web01.cpu,-3)", path: "delay(test.web01.cpu,-3)", start: T0, end: T0 + 600, step: 60,
                values: &[Some(4.0), Some(8.0), Some(7.0), None, None, Some(10.0), Some(3.0), None, None, None],
                tags: &[("delay", "-3"), ("name", "test.web01.cpu")] },
        ]);
        // delay(test.web01.cpu,0)
        want(&eval(&src, "delay(test.web01.cpu,0)", T0 - 60, T0 + 540), &[
            W { name: "delay(test.web01.cpu,0)", path: "delay(test.web01.cpu,0)", start: T0, end: T0 + 600, step: 60,
                values: &[],
                tags: &[("delay", "0"), ("name", "test.web01.cpu")] },
        ]);
        // delay(test.web01.cpu,20)
        want(&eval(&src, "delay(test.web01.cpu,20)", T0 - 60, T0 + 540), &[
            W { name: "delay(test.web01.cpu,20)", path: "delay(test.web01.cpu,20)", start: T0, end: T0 + 600, step: 60,
                values: &[None, None, None, None, None, None, None, None, None, None],
                tags: &[("delay", "20"), ("name", "test.web01.cpu")] },
        ]);
        // delay(test.web01.cpu,-20)
        want(&eval(&src, "delay(test.web01.cpu,-20)", T0 - 60, T0 + 540), &[
            W { name: "delay(test.web01.cpu,-20)", path: "delay(test.web01.cpu,-20)", start: T0, end: T0 + 600, step: 60,
                values: &[None, None, None, None, None, None, None, None, None, None],
                tags: &[("delay", "-20"), ("name", "test.web01.cpu")] },
        ]);
        // delay(seriesByTag('name=tagged.disk.used'),1)
        want(&eval(&src, "delay(seriesByTag('name=tagged.disk.used'),1)", T0 - 60, T0 + 540), &[
            W { name: "delay(tagged.disk.used;dc=dc1;server=web01,1)", path: "delay(tagged.disk.used;dc=dc1;server=web01,1)", start: T0, end: T0 + 600, step: 60,
                values: &[None, Some(10.0), None, Some(30.0), Some(40.0), Some(35.0), None, Some(20.0), Some(25.0), Some(30.0)],
                tags: &[("dc", "dc1"), ("delay", "1"), ("name", "tagged.disk.used"), ("server", "web01")] },
        ]);
    }

    #[test]
    #[rustfmt::skip]
    fn logarithm_matches_graphite_web() {
        let src = data();
        // log(test.web01.cpu)
        want(&eval(&src, "log(test.web01.cpu)", T0 - 60, T0 + 540), &[
            W { name: "log(test.web01.cpu, 10)", path: "log(test.web01.cpu, 10)", start: T0, end: T0 + 600, step: 60,
                values: &[Some(0.0), Some(0.30102999566398114), None, Some(0.6020599913279623), Some(0.9030899869919434), Some(0.8450980400142567), None, None, Some(1.0), Some(0.47712125471966244)],
                tags: &[("log", "10"), ("name", "test.web01.cpu")] },
        ]);
        // log(test.web01.cpu,2)
        want(&eval(&src, "log(test.web01.cpu,2)", T0 - 60, T0 + 540), &[
            W { name: "log(test.web01.cpu, 2)", path: "log(test.web01.cpu, 2)", start: T0, end: T0 + 600, step: 60,
                values: &[Some(0.0), Some(1.0), None, Some(2.0), Some(3.0), Some(2.807354922057604), None, None, Some(3.3219280948873626), Some(1.5849625007211563)],
                tags: &[("log", "2"), ("name", "test.web01.cpu")] },
        ]);
        // log(test.web02.cpu,10)
        want(&eval(&src, "log(test.web02.cpu,10)", T0 - 60, T0 + 540), &[
            W { name: "log(test.web02.cpu, 10)", path: "log(test.web02.cpu, 10)", start: T0, end: T0 + 600, step: 60,
                values: &[None, Some(-0.30102999566398114), Some(0.17609125905568124), None, None, Some(0.5118833609788743), Some(2.0), None, None, Some(0.30102999566398114)],
                tags: &[("log", "10"), ("name", "test.web02.cpu")] },
        ]);
        // log(seriesByTag('name=tagged.disk.used'),3)
        want(&eval(&src, "log(seriesByTag('name=tagged.disk.used'),3)", T0 - 60, T0 + 540), &[
            W { name: "log(tagged.disk.used;dc=dc1;server=web01, 3)", path: "log(tagged.disk.used;dc=dc1;server=web01, 3)", start: T0, end: T0 + 600, step: 60,
                values: &[Some(2.095903274289385), None, Some(3.0959032742893844), Some(3.357762781432299), Some(3.236217269879349), None, Some(2.7268330278608417), Some(2.9299470414358537), Some(3.0959032742893844), Some(3.5608767950073115)],
                tags: &[("dc", "dc1"), ("log", "3"), ("name", "tagged.disk.used"), ("server", "web01")] },
        ]);
    }

    #[test]
    #[rustfmt::skip]
    fn pow_matches_graphite_web() {
        let src = data();
        // pow(test.web01.cpu,2)
        want(&eval(&src, "pow(test.web01.cpu,2)", T0 - 60, T0 + 540), &[
            W { name: "pow(test.web01.cpu,2)", path: "pow(test.web01.cpu,2)", start: T0, end: T0 + 600, step: 60,
                values: &[Some(1.0), Some(4.0), None, Some(16.0), Some(64.0), Some(49.0), None, None, Some(100.0), Some(9.0)],
                tags: &[("name", "test.web01.cpu"), ("pow", "2.0")] },
        ]);
        // pow(test.web02.cpu,0.5)
        want(&eval(&src, "pow(test.web02.cpu,0.5)", T0 - 60, T0 + 540), &[
            W { name: "pow(test.web02.cpu,0.5)", path: "pow(test.web02.cpu,0.5)", start: T0, end: T0 + 600, step: 60,
                values: &[None, Some(0.7071067811865476), Some(1.224744871391589), None, None, Some(1.8027756377319946), Some(10.0), Some(0.0), None, Some(1.4142135623730951)],
                tags: &[("name", "test.web02.cpu"), ("pow", "0.5")] },
        ]);
        // pow(test.web02.cpu,-1)
        want(&eval(&src, "pow(test.web02.cpu,-1)", T0 - 60, T0 + 540), &[
            W { name: "pow(test.web02.cpu,-1)", path: "pow(test.web02.cpu,-1)", start: T0, end: T0 + 600, step: 60,
                values: &[None, Some(2.0), Some(0.6666666666666666), Some(-0.5), None, Some(0.3076923076923077), Some(0.01), None, Some(-2.0), Some(0.5)],
                tags: &[("name", "test.web02.cpu"), ("pow", "-1.0")] },
        ]);
        // pow(seriesByTag('name=tagged.disk.used'),1.5)
        want(&eval(&src, "pow(seriesByTag('name=tagged.disk.used'),1.5)", T0 - 60, T0 + 540), &[
            W { name: "pow(tagged.disk.used;dc=dc1;server=web01,1.5)", path: "pow(tagged.disk.used;dc=dc1;server=web01,1.5)", start: T0, end: T0 + 600, step: 60,
                values: &[Some(31.622776601683793), None, Some(164.31676725154983), Some(252.98221281347034), Some(207.06279240848656), None, Some(89.44271909999159), Some(125.0), Some(164.31676725154983), Some(353.5533905932738)],
                tags: &[("dc", "dc1"), ("name", "tagged.disk.used"), ("pow", "1.5"), ("server", "web01")] },
        ]);
    }

    #[test]
    #[rustfmt::skip]
    fn add_matches_graphite_web() {
        let src = data();
        // add(test.web01.cpu,1.5)
        want(&eval(&src, "add(test.web01.cpu,1.5)", T0 - 60, T0 + 540), &[
            W { name: "add(test.web01.cpu,1)", path: "add(test.web01.cpu,1)", start: T0, end: T0 + 600, step: 60,
                values: &[Some(2.5), Some(3.5), None, Some(5.5), Some(9.5), Some(8.5), None, None, Some(11.5), Some(4.5)],
                tags: &[("add", "1.5"), ("name", "test.web01.cpu")] },
        ]);
        // add(test.web02.cpu,-2.7)
        want(&eval(&src, "add(test.web02.cpu,-2.7)", T0 - 60, T0 + 540), &[
            W { name: "add(test.web02.cpu,-2)", path: "add(test.web02.cpu,-2)", start: T0, end: T0 + 600, step: 60,
                values: &[None, Some(-2.2), Some(-1.2000000000000002), Some(-4.7), None, Some(0.5499999999999998), Some(97.3), Some(-2.7), Some(-3.2), Some(-0.7000000000000002)],
                tags: &[("add", "-2.7"), ("name", "test.web02.cpu")] },
        ]);
        // add(seriesByTag('name=tagged.disk.used'),100)
        want(&eval(&src, "add(seriesByTag('name=tagged.disk.used'),100)", T0 - 60, T0 + 540), &[
            W { name: "add(tagged.disk.used;dc=dc1;server=web01,100)", path: "add(tagged.disk.used;dc=dc1;server=web01,100)", start: T0, end: T0 + 600, step: 60,
                values: &[Some(110.0), None, Some(130.0), Some(140.0), Some(135.0), None, Some(120.0), Some(125.0), Some(130.0), Some(150.0)],
                tags: &[("add", "100.0"), ("dc", "dc1"), ("name", "tagged.disk.used"), ("server", "web01")] },
        ]);
    }

    #[test]
    #[rustfmt::skip]
    fn exp_matches_graphite_web() {
        let src = data();
        // exp(test.web02.cpu)
        want(&eval(&src, "exp(test.web02.cpu)", T0 - 60, T0 + 540), &[
            W { name: "exp(test.web02.cpu)", path: "exp(test.web02.cpu)", start: T0, end: T0 + 600, step: 60,
                values: &[None, Some(1.6487212707001282), Some(4.4816890703380645), Some(0.1353352832366127), None, Some(25.790339917193062), Some(2.6881171418161356e+43), Some(1.0), Some(0.6065306597126334), Some(7.38905609893065)],
                tags: &[("exp", "e"), ("name", "test.web02.cpu")] },
        ]);
        // exp(test.ratio.cpu)
        want(&eval(&src, "exp(test.ratio.cpu)", T0 - 60, T0 + 540), &[
            W { name: "exp(test.ratio.cpu)", path: "exp(test.ratio.cpu)", start: T0, end: T0 + 600, step: 60,
                values: &[Some(1.6487212707001282), Some(1.2840254166877414), None, Some(2.718281828459045), Some(1.0), Some(2.45960311115695), Some(0.6065306597126334), Some(7.38905609893065), Some(2.117000016612675), Some(1.1051709180756477)],
                tags: &[("exp", "e"), ("name", "test.ratio.cpu")] },
        ]);
    }

    #[test]
    #[rustfmt::skip]
    fn integral_by_interval_matches_graphite_web() {
        let src = data();
        // integralByInterval(test.web01.cpu,"3min")
        want(&eval(&src, "integralByInterval(test.web01.cpu,\"3min\")", T0 - 60, T0 + 540), &[
            W { name: "integralByInterval(test.web01.cpu,'3min')", path: "integralByInterval(test.web01.cpu,'3min')", start: T0, end: T0 + 600, step: 60,
                values: &[Some(1.0), Some(3.0), Some(0.0), Some(4.0), Some(12.0), Some(7.0), Some(7.0), Some(7.0), Some(10.0), Some(13.0)],
                tags: &[("integralByInterval", "3min"), ("name", "test.web01.cpu")] },
        ]);
        // integralByInterval(test.web02.cpu,"2min")
        want(&eval(&src, "integralByInterval(test.web02.cpu,\"2min\")", T0 - 60, T0 + 540), &[
            W { name: "integralByInterval(test.web02.cpu,'2min')", path: "integralByInterval(test.web02.cpu,'2min')", start: T0, end: T0 + 600, step: 60,
                values: &[Some(0.0), Some(0.5), Some(2.0), Some(-2.0), Some(-2.0), Some(3.25), Some(103.25), Some(0.0), Some(-0.5), Some(2.0)],
                tags: &[("integralByInterval", "2min"), ("name", "test.web02.cpu")] },
        ]);
        // integralByInterval(test.slow.cpu,"10min")
        want(&eval(&src, "integralByInterval(test.slow.cpu,\"10min\")", T0 - 60, T0 + 540), &[
            W { name: "integralByInterval(test.slow.cpu,'10min')", path: "integralByInterval(test.slow.cpu,'10min')", start: T0 + 60, end: T0 + 660, step: 300,
                values: &[Some(6.0), Some(6.0)],
                tags: &[("integralByInterval", "10min"), ("name", "test.slow.cpu")] },
        ]);
    }

    #[test]
    #[rustfmt::skip]
    fn interpolate_matches_graphite_web() {
        let src = data();
        // interpolate(test.web01.cpu)
        want(&eval(&src, "interpolate(test.web01.cpu)", T0 - 60, T0 + 540), &[
            W { name: "interpolate(test.web01.cpu)", path: "interpolate(test.web01.cpu)", start: T0, end: T0 + 600, step: 60,
                values: &[Some(1.0), Some(2.0), Some(3.0), Some(4.0), Some(8.0), Some(7.0), Some(8.0), Some(9.0), Some(10.0), Some(3.0)],
                tags: &[("name", "test.web01.cpu")] },
        ]);
        // interpolate(test.web01.cpu,1)
        want(&eval(&src, "interpolate(test.web01.cpu,1)", T0 - 60, T0 + 540), &[
            W { name: "interpolate(test.web01.cpu)", path: "interpolate(test.web01.cpu)", start: T0, end: T0 + 600, step: 60,
                values: &[Some(1.0), Some(2.0), Some(3.0), Some(4.0), Some(8.0), Some(7.0), None, None, Some(10.0), Some(3.0)],
                tags: &[("name", "test.web01.cpu")] },
        ]);
        // interpolate(test.web02.cpu)
        want(&eval(&src, "interpolate(test.web02.cpu)", T0 - 60, T0 + 540), &[
            W { name: "interpolate(test.web02.cpu)", path: "interpolate(test.web02.cpu)", start: T0, end: T0 + 600, step: 60,
                values: &[None, Some(0.5), Some(1.5), Some(-2.0), Some(0.625), Some(3.25), Some(100.0), Some(0.0), Some(-0.5), Some(2.0)],
                tags: &[("name", "test.web02.cpu")] },
        ]);
        // interpolate(seriesByTag('name=tagged.disk.used'))
        want(&eval(&src, "interpolate(seriesByTag('name=tagged.disk.used'))", T0 - 60, T0 + 540), &[
            W { name: "interpolate(tagged.disk.used;dc=dc1;server=web01)", path: "interpolate(tagged.disk.used;dc=dc1;server=web01)", start: T0, end: T0 + 600, step: 60,
                values: &[Some(10.0), Some(20.0), Some(30.0), Some(40.0), Some(35.0), Some(27.5), Some(20.0), Some(25.0), Some(30.0), Some(50.0)],
                tags: &[("dc", "dc1"), ("name", "tagged.disk.used"), ("server", "web01")] },
        ]);
    }

    #[test]
    #[rustfmt::skip]
    fn invert_matches_graphite_web() {
        let src = data();
        // invert(test.web02.cpu)
        want(&eval(&src, "invert(test.web02.cpu)", T0 - 60, T0 + 540), &[
            W { name: "invert(test.web02.cpu)", path: "invert(test.web02.cpu)", start: T0, end: T0 + 600, step: 60,
                values: &[None, Some(2.0), Some(0.6666666666666666), Some(-0.5), None, Some(0.3076923076923077), Some(0.01), None, Some(-2.0), Some(0.5)],
                tags: &[("invert", "1"), ("name", "test.web02.cpu")] },
        ]);
        // invert(test.web01.cpu)
        want(&eval(&src, "invert(test.web01.cpu)", T0 - 60, T0 + 540), &[
            W { name: "invert(test.web01.cpu)", path: "invert(test.web01.cpu)", start: T0, end: T0 + 600, step: 60,
                values: &[Some(1.0), Some(0.5), None, Some(0.25), Some(0.125), Some(0.14285714285714285), None, None, Some(0.1), Some(0.3333333333333333)],
                tags: &[("invert", "1"), ("name", "test.web01.cpu")] },
        ]);
    }

    #[test]
    #[rustfmt::skip]
    fn is_non_null_matches_graphite_web() {
        let src = data();
        // isNonNull(test.web01.cpu)
        want(&eval(&src, "isNonNull(test.web01.cpu)", T0 - 60, T0 + 540), &[
            W { name: "isNonNull(test.web01.cpu)", path: "isNonNull(test.web01.cpu)", start: T0, end: T0 + 600, step: 60,
                values: &[Some(1.0), Some(1.0), Some(0.0), Some(1.0), Some(1.0), Some(1.0), Some(0.0), Some(0.0), Some(1.0), Some(1.0)],
                tags: &[("isNonNull", "1"), ("name", "test.web01.cpu")] },
        ]);
        // isNonNull(seriesByTag('name=tagged.disk.used'))
        want(&eval(&src, "isNonNull(seriesByTag('name=tagged.disk.used'))", T0 - 60, T0 + 540), &[
            W { name: "isNonNull(tagged.disk.used;dc=dc1;server=web01)", path: "isNonNull(tagged.disk.used;dc=dc1;server=web01)", start: T0, end: T0 + 600, step: 60,
                values: &[Some(1.0), Some(0.0), Some(1.0), Some(1.0), Some(1.0), Some(0.0), Some(1.0), Some(1.0), Some(1.0), Some(1.0)],
                tags: &[("dc", "dc1"), ("isNonNull", "1"), ("name", "tagged.disk.used"), ("server", "web01")] },
        ]);
    }

    #[test]
    #[rustfmt::skip]
    fn logit_matches_graphite_web() {
        let src = data();
        // logit(test.ratio.cpu)
        want(&eval(&src, "logit(test.ratio.cpu)", T0 - 60, T0 + 540), &[
            W { name: "logit(test.ratio.cpu)", path: "logit(test.ratio.cpu)", start: T0, end: T0 + 600, step: 60,
                values: &[Some(0.0), Some(-1.0986122886681098), None, None, None, Some(2.1972245773362196), None, None, Some(1.0986122886681098), Some(-2.197224577336219)],
                tags: &[("logit", "logit"), ("name", "test.ratio.cpu")] },
        ]);
    }

    #[test]
    #[rustfmt::skip]
    fn min_max_matches_graphite_web() {
        let src = data();
        // minMax(test.web01.cpu)
        want(&eval(&src, "minMax(test.web01.cpu)", T0 - 60, T0 + 540), &[
            W { name: "minMax(test.web01.cpu)", path: "minMax(test.web01.cpu)", start: T0, end: T0 + 600, step: 60,
                values: &[Some(0.0), Some(0.1111111111111111), None, Some(0.3333333333333333), Some(0.7777777777777778), Some(0.6666666666666666), None, None, Some(1.0), Some(0.2222222222222222)],
                tags: &[("name", "test.web01.cpu")] },
        ]);
        // minMax(test.web02.cpu)
        want(&eval(&src, "minMax(test.web02.cpu)", T0 - 60, T0 + 540), &[
            W { name: "minMax(test.web02.cpu)", path: "minMax(test.web02.cpu)", start: T0, end: T0 + 600, step: 60,
                values: &[None, Some(0.024509803921568627), Some(0.03431372549019608), Some(0.0), None, Some(0.051470588235294115), Some(1.0), Some(0.0196078431372549), Some(0.014705882352941176), Some(0.0392156862745098)],
                tags: &[("name", "test.web02.cpu")] },
        ]);
        // minMax(test.slow.cpu)
        want(&eval(&src, "minMax(test.slow.cpu)", T0 - 60, T0 + 540), &[
            W { name: "minMax(test.slow.cpu)", path: "minMax(test.slow.cpu)", start: T0 + 60, end: T0 + 660, step: 300,
                values: &[Some(0.0), None],
                tags: &[("name", "test.slow.cpu")] },
        ]);
    }

    #[test]
    #[rustfmt::skip]
    fn offset_to_zero_matches_graphite_web() {
        let src = data();
        // offsetToZero(test.web02.cpu)
        want(&eval(&src, "offsetToZero(test.web02.cpu)", T0 - 60, T0 + 540), &[
            W { name: "offsetToZero(test.web02.cpu)", path: "offsetToZero(test.web02.cpu)", start: T0, end: T0 + 600, step: 60,
                values: &[None, Some(2.5), Some(3.5), Some(0.0), None, Some(5.25), Some(102.0), Some(2.0), Some(1.5), Some(4.0)],
                tags: &[("name", "test.web02.cpu"), ("offsetToZero", "-2.0")] },
        ]);
        // offsetToZero(seriesByTag('name=tagged.disk.used'))
        want(&eval(&src, "offsetToZero(seriesByTag('name=tagged.disk.used'))", T0 - 60, T0 + 540), &[
            W { name: "offsetToZero(tagged.disk.used;dc=dc1;server=web01)", path: "offsetToZero(tagged.disk.used;dc=dc1;server=web01)", start: T0, end: T0 + 600, step: 60,
                values: &[Some(0.0), None, Some(20.0), Some(30.0), Some(25.0), None, Some(10.0), Some(15.0), Some(20.0), Some(40.0)],
                tags: &[("dc", "dc1"), ("name", "tagged.disk.used"), ("offsetToZero", "10.0"), ("server", "web01")] },
        ]);
    }

    #[test]
    #[rustfmt::skip]
    fn round_matches_graphite_web() {
        let src = data();
        // round(test.web02.cpu)
        want(&eval(&src, "round(test.web02.cpu)", T0 - 60, T0 + 540), &[
            W { name: "round(test.web02.cpu)", path: "round(test.web02.cpu)", start: T0, end: T0 + 600, step: 60,
                values: &[None, Some(0.0), Some(2.0), Some(-2.0), None, Some(3.0), Some(100.0), Some(0.0), Some(-0.0), Some(2.0)],
                tags: &[("name", "test.web02.cpu"), ("round", "0")] },
        ]);
        // round(test.web02.cpu,1)
        want(&eval(&src, "round(test.web02.cpu,1)", T0 - 60, T0 + 540), &[
            W { name: "round(test.web02.cpu,1)", path: "round(test.web02.cpu,1)", start: T0, end: T0 + 600, step: 60,
                values: &[None, Some(0.5), Some(1.5), Some(-2.0), None, Some(3.2), Some(100.0), Some(0.0), Some(-0.5), Some(2.0)],
                tags: &[("name", "test.web02.cpu"), ("round", "1")] },
        ]);
        // round(test.counter.x,-1)
        want(&eval(&src, "round(test.counter.x,-1)", T0 - 60, T0 + 540), &[
            W { name: "round(test.counter.x,-1)", path: "round(test.counter.x,-1)", start: T0, end: T0 + 600, step: 60,
                values: &[Some(0.0), Some(10.0), Some(0.0), Some(10.0), Some(10.0), Some(0.0), Some(0.0), Some(10.0), Some(0.0), Some(0.0)],
                tags: &[("name", "test.counter.x"), ("round", "-1")] },
        ]);
        // round(scale(test.web01.cpu,0.125),2)
        want(&eval(&src, "round(scale(test.web01.cpu,0.125),2)", T0 - 60, T0 + 540), &[
            W { name: "round(scale(test.web01.cpu,0.125),2)", path: "round(scale(test.web01.cpu,0.125),2)", start: T0, end: T0 + 600, step: 60,
                values: &[Some(0.12), Some(0.25), None, Some(0.5), Some(1.0), Some(0.88), None, None, Some(1.25), Some(0.38)],
                tags: &[("name", "test.web01.cpu"), ("round", "2"), ("scale", "0.125")] },
        ]);
        // round(test.ratio.cpu,0)
        want(&eval(&src, "round(test.ratio.cpu,0)", T0 - 60, T0 + 540), &[
            W { name: "round(test.ratio.cpu,0)", path: "round(test.ratio.cpu,0)", start: T0, end: T0 + 600, step: 60,
                values: &[Some(0.0), Some(0.0), None, Some(1.0), Some(0.0), Some(1.0), Some(-0.0), Some(2.0), Some(1.0), Some(0.0)],
                tags: &[("name", "test.ratio.cpu"), ("round", "0")] },
        ]);
    }

    #[test]
    #[rustfmt::skip]
    fn scale_to_seconds_matches_graphite_web() {
        let src = data();
        // scaleToSeconds(test.web01.cpu,1)
        want(&eval(&src, "scaleToSeconds(test.web01.cpu,1)", T0 - 60, T0 + 540), &[
            W { name: "scaleToSeconds(test.web01.cpu,1)", path: "scaleToSeconds(test.web01.cpu,1)", start: T0, end: T0 + 600, step: 60,
                values: &[Some(0.016667), Some(0.033333), None, Some(0.066667), Some(0.133333), Some(0.116667), None, None, Some(0.166667), Some(0.05)],
                tags: &[("name", "test.web01.cpu"), ("scaleToSeconds", "1.0")] },
        ]);
        // scaleToSeconds(test.slow.cpu,60)
        want(&eval(&src, "scaleToSeconds(test.slow.cpu,60)", T0 - 60, T0 + 540), &[
            W { name: "scaleToSeconds(test.slow.cpu,60)", path: "scaleToSeconds(test.slow.cpu,60)", start: T0 + 60, end: T0 + 660, step: 300,
                values: &[Some(1.2), None],
                tags: &[("name", "test.slow.cpu"), ("scaleToSeconds", "60.0")] },
        ]);
        // scaleToSeconds(test.web02.cpu,7)
        want(&eval(&src, "scaleToSeconds(test.web02.cpu,7)", T0 - 60, T0 + 540), &[
            W { name: "scaleToSeconds(test.web02.cpu,7)", path: "scaleToSeconds(test.web02.cpu,7)", start: T0, end: T0 + 600, step: 60,
                values: &[None, Some(0.058333), Some(0.175), Some(-0.233333), None, Some(0.379167), Some(11.666667), Some(0.0), Some(-0.058333), Some(0.233333)],
                tags: &[("name", "test.web02.cpu"), ("scaleToSeconds", "7.0")] },
        ]);
    }

    #[test]
    #[rustfmt::skip]
    fn sigmoid_matches_graphite_web() {
        let src = data();
        // sigmoid(test.web02.cpu)
        want(&eval(&src, "sigmoid(test.web02.cpu)", T0 - 60, T0 + 540), &[
            W { name: "sigmoid(test.web02.cpu)", path: "sigmoid(test.web02.cpu)", start: T0, end: T0 + 600, step: 60,
                values: &[None, Some(0.6224593312018546), Some(0.8175744761936437), Some(0.11920292202211755), None, Some(0.9626731126558706), Some(1.0), Some(0.5), Some(0.3775406687981454), Some(0.8807970779778823)],
                tags: &[("name", "test.web02.cpu"), ("sigmoid", "sigmoid")] },
        ]);
        // sigmoid(test.ratio.cpu)
        want(&eval(&src, "sigmoid(test.ratio.cpu)", T0 - 60, T0 + 540), &[
            W { name: "sigmoid(test.ratio.cpu)", path: "sigmoid(test.ratio.cpu)", start: T0, end: T0 + 600, step: 60,
                values: &[Some(0.6224593312018546), Some(0.5621765008857981), None, Some(0.7310585786300049), Some(0.5), Some(0.7109495026250039), Some(0.3775406687981454), Some(0.8807970779778823), Some(0.679178699175393), Some(0.52497918747894)],
                tags: &[("name", "test.ratio.cpu"), ("sigmoid", "sigmoid")] },
        ]);
    }

    #[test]
    #[rustfmt::skip]
    fn square_root_matches_graphite_web() {
        let src = data();
        // squareRoot(test.web02.cpu)
        want(&eval(&src, "squareRoot(test.web02.cpu)", T0 - 60, T0 + 540), &[
            W { name: "squareRoot(test.web02.cpu)", path: "squareRoot(test.web02.cpu)", start: T0, end: T0 + 600, step: 60,
                values: &[None, Some(0.7071067811865476), Some(1.224744871391589), None, None, Some(1.8027756377319946), Some(10.0), Some(0.0), None, Some(1.4142135623730951)],
                tags: &[("name", "test.web02.cpu"), ("squareRoot", "1")] },
        ]);
        // squareRoot(test.web01.cpu)
        want(&eval(&src, "squareRoot(test.web01.cpu)", T0 - 60, T0 + 540), &[
            W { name: "squareRoot(test.web01.cpu)", path: "squareRoot(test.web01.cpu)", start: T0, end: T0 + 600, step: 60,
                values: &[Some(1.0), Some(1.4142135623730951), None, Some(2.0), Some(2.8284271247461903), Some(2.6457513110645907), None, None, Some(3.1622776601683795), Some(1.7320508075688772)],
                tags: &[("name", "test.web01.cpu"), ("squareRoot", "1")] },
        ]);
    }

    #[test]
    #[rustfmt::skip]
    fn time_slice_matches_graphite_web() {
        let src = data();
        // timeSlice(test.web01.cpu,"1700000160","1700000340")
        want(&eval(&src, "timeSlice(test.web01.cpu,\"1700000160\",\"1700000340\")", T0 - 60, T0 + 540), &[
            W { name: "timeSlice(test.web01.cpu, 1700000160, 1700000340)", path: "test.web01.cpu", start: T0, end: T0 + 600, step: 60,
                values: &[None, None, None, Some(4.0), Some(8.0), Some(7.0), None, None, None, None],
                tags: &[("name", "test.web01.cpu"), ("timeSliceEnd", "1700000340"), ("timeSliceStart", "1700000160")] },
        ]);
        // timeSlice(test.web02.cpu,"1700000280","1700100040")
        want(&eval(&src, "timeSlice(test.web02.cpu,\"1700000280\",\"1700100040\")", T0 - 60, T0 + 540), &[
            W { name: "timeSlice(test.web02.cpu, 1700000280, 1700100040)", path: "test.web02.cpu", start: T0, end: T0 + 600, step: 60,
                values: &[None, None, None, None, None, Some(3.25), Some(100.0), Some(0.0), Some(-0.5), Some(2.0)],
                tags: &[("name", "test.web02.cpu"), ("timeSliceEnd", "1700100040"), ("timeSliceStart", "1700000280")] },
        ]);
    }

    #[test]
    #[rustfmt::skip]
    fn generators_matches_graphite_web() {
        let src = data();
        // time("the.time")
        want(&eval(&src, "time(\"the.time\")", T0 - 60, T0 + 540), &[
            W { name: "the.time", path: "the.time", start: T0 - 60, end: T0 + 540, step: 60,
                values: &[Some(1699999980.0), Some(1700000040.0), Some(1700000100.0), Some(1700000160.0), Some(1700000220.0), Some(1700000280.0), Some(1700000340.0), Some(1700000400.0), Some(1700000460.0), Some(1700000520.0)],
                tags: &[("name", "the.time")] },
        ]);
        // time("t",120)
        want(&eval(&src, "time(\"t\",120)", T0 - 60, T0 + 540), &[
            W { name: "t", path: "t", start: T0 - 60, end: T0 + 540, step: 120,
                values: &[Some(1699999980.0), Some(1700000100.0), Some(1700000220.0), Some(1700000340.0), Some(1700000460.0)],
                tags: &[("name", "t")] },
        ]);
        // sin("the.sine",2)
        want(&eval(&src, "sin(\"the.sine\",2)", T0 - 60, T0 + 540), &[
            W { name: "the.sine", path: "the.sine", start: T0 - 60, end: T0 + 540, step: 60,
                values: &[Some(0.8869044565593012), Some(-1.3911016225478843), Some(1.7629020282230796), Some(-1.96691992721185), Some(1.983738112004521), Some(-1.811755928022872), Some(1.4673416143816609), Some(-0.9832744724579773), Some(0.40562512737802425), Some(0.21062919946321423)],
                tags: &[("name", "the.sine")] },
        ]);
        // sin("s",1,180)
        want(&eval(&src, "sin(\"s\",1,180)", T0 - 60, T0 + 540), &[
            W { name: "s", path: "s", start: T0 - 60, end: T0 + 540, step: 180,
                values: &[Some(0.4434522282796506), Some(-0.983459963605925), Some(0.7336708071908304), Some(0.10531459973160712)],
                tags: &[("name", "s")] },
        ]);
        // timeFunction("t",step=300)
        want(&eval(&src, "timeFunction(\"t\",step=300)", T0 - 60, T0 + 540), &[
            W { name: "t", path: "t", start: T0 - 60, end: T0 + 540, step: 300,
                values: &[Some(1699999980.0), Some(1700000280.0)],
                tags: &[("name", "t")] },
        ]);
        // sinFunction("x;a=b")
        want(&eval(&src, "sinFunction(\"x;a=b\")", T0 - 60, T0 + 540), &[
            W { name: "x;a=b", path: "x;a=b", start: T0 - 60, end: T0 + 540, step: 60,
                values: &[Some(0.4434522282796506), Some(-0.6955508112739421), Some(0.8814510141115398), Some(-0.983459963605925), Some(0.9918690560022605), Some(-0.905877964011436), Some(0.7336708071908304), Some(-0.49163723622898864), Some(0.20281256368901213), Some(0.10531459973160712)],
                tags: &[("a", "b"), ("name", "x")] },
        ]);
    }

    #[test]
    #[rustfmt::skip]
    fn pipes_and_nesting_matches_graphite_web() {
        let src = data();
        // test.web01.cpu|scale(2)|offset(1)
        want(&eval(&src, "test.web01.cpu|scale(2)|offset(1)", T0 - 60, T0 + 540), &[
            W { name: "offset(scale(test.web01.cpu,2),1)", path: "offset(scale(test.web01.cpu,2),1)", start: T0, end: T0 + 600, step: 60,
                values: &[Some(3.0), Some(5.0), None, Some(9.0), Some(17.0), Some(15.0), None, None, Some(21.0), Some(7.0)],
                tags: &[("name", "test.web01.cpu"), ("offset", "1.0"), ("scale", "2.0")] },
        ]);
        // derivative(integral(test.web02.cpu))
        want(&eval(&src, "derivative(integral(test.web02.cpu))", T0 - 60, T0 + 540), &[
            W { name: "derivative(integral(test.web02.cpu))", path: "derivative(integral(test.web02.cpu))", start: T0, end: T0 + 600, step: 60,
                values: &[None, None, Some(1.5), Some(-2.0), None, None, Some(100.0), Some(0.0), Some(-0.5), Some(2.0)],
                tags: &[("derivative", "1"), ("integral", "1"), ("name", "test.web02.cpu")] },
        ]);
        // perSecond(summarize(test.counter.x,"2min"))
        want(&eval(&src, "perSecond(summarize(test.counter.x,\"2min\"))", T0 - 60, T0 + 540), &[
            W { name: "perSecond(summarize(test.counter.x, \"2min\", \"sum\"))", path: "perSecond(summarize(test.counter.x, \"2min\", \"sum\"))", start: T0, end: T0 + 720, step: 120,
                values: &[None, None, Some(0.058333), None, None, None],
                tags: &[("name", "test.counter.x"), ("perSecond", "1"), ("summarize", "2min"), ("summarizeFunction", "sum")] },
        ]);
    }

    #[test]
    fn consolidated_series_are_rewritten_at_raw_indexes() {
        // graphite-web 1.1.8 on TimeSeries('a.b', 0, 300, 60, [1, 2, None, 4, None, None, 7])
        // after consolidate(2), which reads as [1.5, 4.0, None, 7.0].
        let mk = || {
            let values = vec![Some(1.0), Some(2.0), N, Some(4.0), N, N, Some(7.0)];
            let mut s = Series::new("a.b", 0, 300, 60, values);
            s.consolidate(2);
            s
        };
        // scale(a.b, 2): raw index i gets 2 x consolidated value i.
        let mut s = mk();
        for_each_point(&mut s, |_, v, slot| {
            *slot = v.map(|x| x * 2.0);
            Ok(())
        })
        .unwrap();
        assert_eq!(s.values, [Some(3.0), Some(8.0), N, Some(14.0), N, N, Some(7.0)]);
        // transformNull(a.b, -1): extend, then drop as many from the front.
        let mut s = mk();
        let computed = s.consolidated().iter().map(|v| v.or(Some(-1.0))).collect();
        extend_and_trim(&mut s, computed);
        assert_eq!(s.values, [N, N, Some(7.0), Some(1.5), Some(4.0), Some(-1.0), Some(7.0)]);
        // isNonNull(a.b)
        let mut s = mk();
        let computed =
            s.consolidated().iter().map(|v| Some(f64::from(u8::from(v.is_some())))).collect();
        extend_and_trim(&mut s, computed);
        assert_eq!(s.values, [N, N, Some(7.0), Some(1.0), Some(1.0), Some(0.0), Some(1.0)]);
        // keepLastValue(a.b)
        let mut s = mk();
        keep_last(&mut s, f64::INFINITY);
        assert_eq!(s.values, [Some(1.0), Some(2.0), Some(4.0), Some(4.0), N, N, Some(7.0)]);
        // interpolate(a.b)
        let mut s = mk();
        interpolate_values(&mut s, f64::INFINITY);
        assert_eq!(s.values, [Some(1.5), Some(4.0), Some(5.5), Some(7.0), N, N, Some(7.0)]);
        // derivative(a.b) reads consolidated values; delay(a.b, 1) slices the raw ones.
        assert_eq!(differences(&mk().consolidated()), [N, Some(2.5), N, N]);
        assert_eq!(delayed(&mk().values, 1), [N, Some(1.0), Some(2.0), N, Some(4.0), N, N]);
        // timeSlice(a.b, "60", "240") with the request starting at 0.
        let mut s = mk();
        slice_values(&mut s, 0, 60, 240);
        assert_eq!(s.values, [N, Some(2.0), N, Some(4.0), N, N, Some(7.0)]);
    }

    #[test]
    fn copies_drop_consolidation_and_graph_options() {
        let mut s = Series::new("a.b", 0, 300, 60, vec![Some(1.0); 4]);
        s.consolidate(2);
        s.options.insert("stacked".into(), "true".into());
        let c = copied(&s, "derivative(a.b)".into(), vec![N, Some(0.0)]);
        assert_eq!((c.values_per_point, c.step, c.options.len()), (1, 60, 0));
        assert_eq!(c.path_expression, "derivative(a.b)");
    }

    #[test]
    fn counter_bounds_treat_null_as_null() {
        // Not graphite-web's answer: on Python 3 it raises comparing None with maxValue (a
        // 500). This is what its code does on Python 2, and without the bounds.
        let got = eval(&data(), "nonNegativeDerivative(test.web01.cpu,9)", T0 - 60, T0 + 540);
        assert_eq!(got[0].values, [N, Some(1.0), N, N, Some(4.0), Some(9.0), N, N, N, N]);
        let got = eval(&data(), "perSecond(test.web01.cpu,minValue=2)", T0 - 60, T0 + 540);
        assert_eq!(
            got[0].values,
            [N, N, N, N, Some(0.066667), Some(0.083333), N, N, N, Some(0.016667)]
        );
    }

    #[test]
    fn empty_lists_give_empty_results() {
        let src = data();
        for target in [
            "scale(test.nothing.*,2)",
            "summarize(test.nothing,\"1h\")",
            "smartSummarize(test.nothing,\"1h\",\"sum\",\"hours\")",
            "hitcount(test.nothing,\"1h\",true)",
            "timeShift(test.nothing,\"1d\")",
            "timeStack(test.nothing,\"1d\",0,3)",
            "transformNull(test.nothing,1,test.web01.cpu)",
            "delay(test.nothing,1)",
        ] {
            assert!(eval(&src, target, T0 - 60, T0 + 540).is_empty(), "{target}");
        }
        // An empty reference list is no reference at all (Python's falsy list).
        let got = eval(&src, "transformNull(test.web01.cpu,1,test.nothing)", T0 - 60, T0 + 540);
        assert_eq!(got[0].name, "transformNull(test.web01.cpu,1)");
    }

    #[test]
    fn bad_arguments_are_invalid_argument_errors() {
        let src = data();
        for target in [
            "summarize(test.web01.cpu,\"0min\")",
            "summarize(test.web01.cpu,\"-1h\")",
            "summarize(test.web01.cpu,\"5m\")",
            "summarize(test.web01.cpu,\"1.5h\")",
            "summarize(test.web01.cpu,\"1h\",\"sumSeries\")",
            "summarize(test.web01.cpu,\"1h\",\"bogus\")",
            "summarize(test.web01.cpu)",
            "hitcount(test.web01.cpu,\"\")",
            "smartSummarize(test.web01.cpu,\"1h\",\"sum\",\"fortnight\")",
            "smartSummarize(test.web01.cpu,\"1h\",\"sum\",5)",
            "smartSummarize(test.web01.cpu,\"1h\",\"sum\",\"weeks!\")",
            "log(test.web01.cpu,1)",
            "log(test.web01.cpu,-2)",
            "log(test.web01.cpu,\"two\")",
            "add(test.web01.cpu,inf)",
            "scale(test.web01.cpu,\"abc\")",
            "scale(test.web01.cpu)",
            "delay(test.web01.cpu,1.5)",
            "time(\"t\",0)",
            "sin(\"s\",1,-60)",
            "time(test.web01.cpu)",
            "timeShift(test.web01.cpu,\"\")",
            "timeShift(test.web01.cpu,\"1x\")",
            "timeShift(test.web01.cpu,\"99999999999d\")",
            "timeStack(test.web01.cpu,\"1d\",0,\"x\")",
            "integralByInterval(test.web01.cpu,\"0s\")",
            "transformNull(test.web01.cpu,None)",
            "keepLastValue(test.web01.cpu,\"x\")",
        ] {
            match try_eval(&src, target, T0 - 60, T0 + 540) {
                Err(Error::InvalidArgument(msg)) => assert!(!msg.is_empty()),
                other => panic!("{target}: {other:?}"),
            }
        }
    }

    #[test]
    fn math_range_errors_are_evaluation_errors() {
        // graphite-web lets Python's OverflowError from math.exp through (a 500).
        for target in ["exp(scale(test.web01.cpu,1000))", "sigmoid(scale(test.web02.cpu,-1000))"] {
            let got = try_eval(&data(), target, T0 - 60, T0 + 540);
            assert!(matches!(got, Err(Error::Evaluation(_))), "{target}: {got:?}");
        }
    }

    #[test]
    fn generators_respect_the_point_limit() {
        let got = try_eval(&data(), "time(\"t\",1)", 0, 200_000_000);
        assert!(matches!(got, Err(Error::Limit(_))), "{got:?}");
        let got = try_eval(&data(), "summarize(test.web01.cpu,\"1s\")", T0 - 60, T0 + 540);
        assert!(got.is_ok());
    }

    #[test]
    fn odd_targets_never_panic() {
        let src = data();
        for target in [
            "delay(test.web01.cpu,-9223372036854775808)",
            "delay(test.web01.cpu,9223372036854775807)",
            "round(test.web01.cpu,-400)",
            "round(test.web01.cpu,400)",
            "round(test.web01.cpu,-9223372036854775808)",
            "timeStack(test.web01.cpu,\"1y\",-9223372036854775808,-9223372036854775806)",
            "keepLastValue(test.web01.cpu,-1)",
            "interpolate(test.web01.cpu,0)",
            "hitcount(test.slow.cpu,\"1s\")",
            "integralByInterval(test.web01.cpu,\"-1min\")",
            "scaleToSeconds(test.web01.cpu,1e308)",
            "pow(test.web02.cpu,1e308)",
            "log(test.web01.cpu,inf)",
            "offsetToZero(transformNull(test.web01.cpu,inf))",
            "minMax(scale(test.web02.cpu,inf))",
        ] {
            let _ = try_eval(&src, target, T0 - 60, T0 + 540);
        }
    }

    #[test]
    fn intervals_read_like_parse_time_offset() {
        for (text, want) in [
            ("5min", 300),
            ("-1d", -86_400),
            ("+2w", 1_209_600),
            ("1h30min", 5400),
            ("3minutes", 180),
            ("10s", 10),
            ("2hours", 7200),
            ("1mon", 2_592_000),
            ("1y", 31_536_000),
            ("", 0),
        ] {
            assert_eq!(parse_offset("f", text).unwrap(), want, "{text}");
        }
        for text in ["5m", "5", "h", "1.5h", "x1d", "1d 2h"] {
            assert!(parse_offset("f", text).is_err(), "{text}");
        }
    }

    #[test]
    fn round_matches_python() {
        // Python 3: round(x, n).
        for (x, n, want) in [
            (2.675, 2, 2.67),
            (0.125, 2, 0.12),
            (0.375, 2, 0.38),
            (2.5, 0, 2.0),
            (1234.5, -2, 1200.0),
            (1250.0, -2, 1200.0),
            (1350.0, -2, 1400.0),
            (999.9, -3, 1000.0),
            (-1250.0001, -2, -1300.0),
            (5e-324, 6, 0.0),
            (3.038958552158233e17, -2, 3.038958552158233e17),
            (2.1863297251506656e16, -1, 2.186329725150666e16),
        ] {
            assert_eq!(py_round(x, n), want, "round({x}, {n})");
        }
        assert!(py_round(-0.4, 0).is_sign_negative());
        assert_eq!(py_round(1e300, -2), 1e300);
    }

    #[test]
    fn pow_is_libm_pow_not_sqrt() {
        // Python's math.pow(x, 0.5) and math.pow(x, -1); sqrt(x) and 1/x differ in the last bit.
        assert_eq!(safe_pow(Some(0.6464261681817989), 0.5), Some(0.8040063234712764));
        assert_eq!(safe_pow(Some(166.3875310743092), -1.0), Some(0.006010065739561919));
        assert_eq!(safe_pow(Some(-1.0), 0.5), None);
        assert_eq!(safe_pow(Some(0.0), -1.0), None);
        assert_eq!(safe_pow(Some(1e300), 2.0), None);
        assert_eq!(safe_pow(Some(f64::INFINITY), 2.0), Some(f64::INFINITY));
    }

    #[test]
    fn percent_d_truncates() {
        assert_eq!(percent_d("f", 1.9).unwrap(), "1");
        assert_eq!(percent_d("f", -2.7).unwrap(), "-2");
        assert_eq!(percent_d("f", -0.5).unwrap(), "0");
        assert_eq!(percent_d("f", 1e20).unwrap(), "100000000000000000000");
        assert!(percent_d("f", f64::NAN).is_err());
    }

    #[test]
    fn truncation_follows_the_calendar() {
        // Python: datetime fields of 2023-11-14 22:14:37 UTC (a Tuesday), rebuilt.
        let utc = crate::time::TimeZone::utc();
        let t = 1_700_000_077;
        for (unit, want) in [
            (Truncate::Year, 1_672_531_200),
            (Truncate::Month, 1_698_796_800),
            (Truncate::Week(1), 1_699_833_600),
            (Truncate::Week(2), 1_699_920_000),
            (Truncate::Week(3), 1_699_401_600),
            (Truncate::Week(7), 1_699_747_200),
            (Truncate::Day, 1_699_920_000),
            (Truncate::Hour, 1_699_999_200),
            (Truncate::Minute, 1_700_000_040),
            (Truncate::Second, t),
        ] {
            assert_eq!(truncate_time(t, &utc, unit), want, "{unit:?}");
        }
        // A day digit of 9 on a Monday leaves graphite-web's difference at -1: the next day.
        assert_eq!(truncate_time(1_699_876_800, &utc, Truncate::Week(9)), 1_699_920_000);
        for days in [-800_000, -1, 0, 59, 365, 11_016, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn registry_lists_the_transform_group() {
        assert_eq!(FUNCTIONS.len(), 35);
        let mut seen = std::collections::HashSet::new();
        for def in FUNCTIONS {
            assert!(seen.insert(def.name), "{} twice", def.name);
            assert_eq!(def.group, "Transform");
            assert!(!def.aggregator);
        }
        let find = |n: &str| FUNCTIONS.iter().find(|d| d.name == n).unwrap();
        assert_eq!(find("time").call as usize, find("timeFunction").call as usize);
        assert_eq!(find("sin").call as usize, find("sinFunction").call as usize);
        assert_eq!(
            find("summarize").signature(),
            "summarize(seriesList, intervalString, func='sum', alignToFrom=False)"
        );
        assert_eq!(find("keepLastValue").signature(), "keepLastValue(seriesList, limit=inf)");
    }

    /// [`eval`] with the request in time zone `tz`.
    fn eval_tz(src: &MemorySource, target: &str, from: i64, until: i64, tz: &str) -> Vec<Series> {
        let expr = crate::parse::parse(target).unwrap();
        let limits = crate::eval::Limits::default();
        let usage = crate::eval::UsageCell::default();
        let mut ctx = Context::new(src, &limits, &usage, from, until, until);
        ctx.tz = crate::time::TimeZone::named(tz).unwrap();
        ctx.eval_series(&expr).unwrap()
    }

    #[test]
    #[rustfmt::skip]
    fn alignment_uses_the_request_zone() {
        let src = data();
        // smartSummarize(test.web01.cpu,"1h","sum","hours")
        want(&eval_tz(&src, "smartSummarize(test.web01.cpu,\"1h\",\"sum\",\"hours\")", T0 - 60, T0 + 540, "Asia/Kolkata"), &[
            W { name: "smartSummarize(test.web01.cpu, \"1h\", \"sum\")", path: "smartSummarize(test.web01.cpu, \"1h\", \"sum\")", start: T0 - 2580, end: T0 + 1020, step: 3600,
                values: &[Some(35.0)],
                tags: &[("name", "test.web01.cpu"), ("smartSummarize", "1h"), ("smartSummarizeFunction", "sum")] },
        ]);
        // hitcount(test.web01.cpu,"1h",true)
        want(&eval_tz(&src, "hitcount(test.web01.cpu,\"1h\",true)", T0 - 60, T0 + 540, "Asia/Kolkata"), &[
            W { name: "hitcount(test.web01.cpu, \"1h\", true)", path: "hitcount(test.web01.cpu, \"1h\", true)", start: T0 - 2580, end: T0 + 1020, step: 3600,
                values: &[Some(2100.0)],
                tags: &[("hitcount", "1h"), ("name", "test.web01.cpu")] },
        ]);
        // smartSummarize(test.web01.cpu,"1d","max","days")
        want(&eval_tz(&src, "smartSummarize(test.web01.cpu,\"1d\",\"max\",\"days\")", T0 - 60, T0 + 540, "Europe/Berlin"), &[
            W { name: "smartSummarize(test.web01.cpu, \"1d\", \"max\")", path: "smartSummarize(test.web01.cpu, \"1d\", \"max\")", start: T0 - 83580, end: T0 + 2820, step: 86400,
                values: &[Some(10.0)],
                tags: &[("name", "test.web01.cpu"), ("smartSummarize", "1d"), ("smartSummarizeFunction", "max")] },
        ]);
        // hitcount(test.web02.cpu,"1d",true)
        want(&eval_tz(&src, "hitcount(test.web02.cpu,\"1d\",true)", T0 - 60, T0 + 540, "Europe/Berlin"), &[
            W { name: "hitcount(test.web02.cpu, \"1d\", true)", path: "hitcount(test.web02.cpu, \"1d\", true)", start: T0 - 83580, end: T0 + 2820, step: 86400,
                values: &[Some(6285.0)],
                tags: &[("hitcount", "1d"), ("name", "test.web02.cpu")] },
        ]);
        // smartSummarize(test.web01.cpu,"1w","sum","weeks")
        want(&eval_tz(&src, "smartSummarize(test.web01.cpu,\"1w\",\"sum\",\"weeks\")", T0 - 60, T0 + 540, "Europe/Berlin"), &[
            W { name: "smartSummarize(test.web01.cpu, \"1w\", \"sum\")", path: "smartSummarize(test.web01.cpu, \"1w\", \"sum\")", start: T0 - 169980, end: T0 + 434820, step: 604800,
                values: &[Some(35.0)],
                tags: &[("name", "test.web01.cpu"), ("smartSummarize", "1w"), ("smartSummarizeFunction", "sum")] },
        ]);
        // smartSummarize(test.web01.cpu,"1w","sum","weeks3")
        want(&eval_tz(&src, "smartSummarize(test.web01.cpu,\"1w\",\"sum\",\"weeks3\")", T0 - 60, T0 + 540, "Europe/Berlin"), &[
            W { name: "smartSummarize(test.web01.cpu, \"1w\", \"sum\")", path: "smartSummarize(test.web01.cpu, \"1w\", \"sum\")", start: T0 - 601980, end: T0 + 2820, step: 604800,
                values: &[Some(35.0)],
                tags: &[("name", "test.web01.cpu"), ("smartSummarize", "1w"), ("smartSummarizeFunction", "sum")] },
        ]);
        // smartSummarize(test.web01.cpu,"30d","sum","months")
        want(&eval_tz(&src, "smartSummarize(test.web01.cpu,\"30d\",\"sum\",\"months\")", T0 - 60, T0 + 540, "Europe/Berlin"), &[
            W { name: "smartSummarize(test.web01.cpu, \"30d\", \"sum\")", path: "smartSummarize(test.web01.cpu, \"30d\", \"sum\")", start: T0 - 1206780, end: T0 + 1385220, step: 2592000,
                values: &[Some(35.0)],
                tags: &[("name", "test.web01.cpu"), ("smartSummarize", "30d"), ("smartSummarizeFunction", "sum")] },
        ]);
        // timeShift(test.web01.cpu,"182d",true,true)
        want(&eval_tz(&src, "timeShift(test.web01.cpu,\"182d\",true,true)", T0 + 15721140, T0 + 15721740, "Europe/Berlin"), &[
            W { name: "timeShift(test.web01.cpu, \"-182d\")", path: "test.web01.cpu", start: T0 + 15721200, end: T0 + 15721800, step: 60,
                values: &[Some(1.0), Some(2.0), None, Some(4.0), Some(8.0), Some(7.0), None, None, Some(10.0), Some(3.0)],
                tags: &[("name", "test.web01.cpu"), ("timeShift", "-182d")] },
        ]);
        // timeShift(test.web01.cpu,"182d",true,false)
        want(&eval_tz(&src, "timeShift(test.web01.cpu,\"182d\",true,false)", T0 + 15721140, T0 + 15721740, "Europe/Berlin"), &[
            W { name: "timeShift(test.web01.cpu, \"-182d\")", path: "test.web01.cpu", start: T0 + 15721200, end: T0 + 15721800, step: 60,
                values: &[None, None, None, None, None, None, None, None, None, None],
                tags: &[("name", "test.web01.cpu"), ("timeShift", "-182d")] },
        ]);
        // timeShift(test.web01.cpu,"+182d",true,true)
        want(&eval_tz(&src, "timeShift(test.web01.cpu,\"+182d\",true,true)", T0 - 15728460, T0 - 15727860, "Europe/Berlin"), &[
            W { name: "timeShift(test.web01.cpu, \"+182d\")", path: "test.web01.cpu", start: T0 - 15728400, end: T0 - 15727800, step: 60,
                values: &[Some(1.0), Some(2.0), None, Some(4.0), Some(8.0), Some(7.0), None, None, Some(10.0), Some(3.0)],
                tags: &[("name", "test.web01.cpu"), ("timeShift", "+182d")] },
        ]);
    }
}
