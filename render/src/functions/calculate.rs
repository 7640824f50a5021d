//! The Calculate family (graphite-reference §4.4): functions that derive new series from the
//! values of their input — moving windows, the exponential moving average, Holt-Winters
//! forecasts, linear regression, percentiles, rolling standard deviation, aggregate lines and
//! `identity`.
//!
//! Several of them re-fetch their first argument over a longer range so that the first output
//! points have a full window behind them (graphite-web re-evaluates `requestContext['args'][0]`
//! with `startTime` moved back): [`Args::expr`] plus [`Args::eval_with_range`] do the same here.
//!
//! Arithmetic follows graphite-web's Python operation for operation (left-to-right sums,
//! `int * float` as float multiplication, `round(x, 6)`), so results agree to the last bit.

use std::collections::BTreeMap;

use crate::aggfunc::AggFunc;
use crate::error::{Error, Result};
use crate::expr::Literal;
use crate::function::{Args, Default, FunctionDef, Param, ParamType};
use crate::pyfmt;
use crate::series::Series;

use super::special;

/// The `/functions` options of an `aggFunc` parameter: every name `getAggFunc` accepts, sorted
/// as graphite-web's `Param.options` sorts them (by `str`).
pub(crate) const AGG_FUNC_OPTIONS: &[&str] = &[
    "average", "avg", "avg_zero", "count", "current", "diff", "last", "max", "median", "min",
    "multiply", "range", "rangeOf", "stddev", "sum", "total",
];

/// graphite-web's `intOrIntervalSuggestions` (it mixes the integers 5, 7, 10 with strings; the
/// registry holds strings only).
const WINDOW_SUGGESTIONS: &[&str] = &["5", "7", "10", "1min", "5min", "10min", "30min", "1hour"];

const SERIES_LIST: Param = Param::new("seriesList", ParamType::SeriesList).required();
const WINDOW_SIZE: Param =
    Param::new("windowSize", ParamType::IntOrInterval).required().suggestions(WINDOW_SUGGESTIONS);
const XFF: Param = Param::new("xFilesFactor", ParamType::Float);
const BOOTSTRAP: Param = Param::new("bootstrapInterval", ParamType::Interval)
    .default(Default::Str("7d"))
    .suggestions(&["7d", "30d"]);
const SEASONALITY: Param = Param::new("seasonality", ParamType::Interval)
    .default(Default::Str("1d"))
    .suggestions(&["1d", "7d"]);
const DELTA: Param = Param::new("delta", ParamType::Integer).default(Default::Int(3));

const MOVING_PARAMS: &[Param] = &[SERIES_LIST, WINDOW_SIZE, XFF];
const HOLT_WINTERS_BAND_PARAMS: &[Param] = &[SERIES_LIST, DELTA, BOOTSTRAP, SEASONALITY];

const fn def(
    name: &'static str,
    description: &'static str,
    params: &'static [Param],
    call: crate::function::FunctionImpl,
) -> FunctionDef {
    FunctionDef { name, group: "Calculate", description, params, aggregator: false, call }
}

/// The functions this family defines.
pub(crate) const FUNCTIONS: &[FunctionDef] = &[
    def(
        "aggregateLine",
        "Draws, for each series, a horizontal line at the value of an aggregation function \
         (average by default) applied to the whole series. With keepStep the line keeps the \
         series' own window and step; otherwise it is a three-point line over the requested \
         range, like constantLine.",
        &[
            SERIES_LIST,
            Param::new("func", ParamType::AggFunc)
                .default(Default::Str("average"))
                .options(AGG_FUNC_OPTIONS),
            Param::new("keepStep", ParamType::Boolean).default(Default::Bool(false)),
        ],
        aggregate_line,
    ),
    def(
        "exponentialMovingAverage",
        "Exponential moving average of each series: the first value is the plain mean of the \
         window before the requested range, then each value is c * current + (1 - c) * \
         previous, with c = 2 / (windowSize + 1). The window is a number of points or an \
         interval such as '5min' (then windowSize counts seconds). Null inputs give null and \
         leave the average unchanged; values are rounded to 6 decimals.",
        &[SERIES_LIST, WINDOW_SIZE],
        exponential_moving_average,
    ),
    def(
        "holtWintersAberration",
        "How far each series strays outside its Holt-Winters confidence bands: the distance \
         above the upper band or below the lower band (negative), 0 inside the bands.",
        HOLT_WINTERS_BAND_PARAMS,
        holt_winters_aberration,
    ),
    def(
        "holtWintersConfidenceArea",
        "The Holt-Winters confidence bands of a single series, drawn as a filled area between \
         the lower and upper band.",
        HOLT_WINTERS_BAND_PARAMS,
        holt_winters_confidence_area,
    ),
    def(
        "holtWintersConfidenceBands",
        "Upper and lower Holt-Winters confidence bands of each series: the forecast plus and \
         minus delta times the predicted deviation.",
        HOLT_WINTERS_BAND_PARAMS,
        holt_winters_confidence_bands,
    ),
    def(
        "holtWintersForecast",
        "Holt-Winters forecast of each series, bootstrapped from the data of bootstrapInterval \
         (a week by default) before the requested range, with a seasonal period of \
         seasonality (a day by default).",
        &[SERIES_LIST, BOOTSTRAP, SEASONALITY],
        holt_winters_forecast,
    ),
    def(
        "identity",
        "A series whose value at every minute of the requested range is its own timestamp; \
         handy to compare against series that hold timestamps.",
        &[Param::new("name", ParamType::String).required()],
        identity,
    ),
    def(
        "linearRegression",
        "The least-squares straight line through each series, fitted on the data between \
         startSourceAt and endSourceAt (the requested range by default) and drawn over the \
         requested range.",
        &[
            SERIES_LIST,
            Param::new("startSourceAt", ParamType::Date),
            Param::new("endSourceAt", ParamType::Date),
        ],
        linear_regression,
    ),
    def(
        "movingAverage",
        "Average of the points in a sliding window before each point (the point itself \
         excluded). The window is a number of points or an interval such as '5min'; data \
         before the requested range is fetched to fill the first windows. xFilesFactor sets \
         the fraction of non-null points a window needs.",
        MOVING_PARAMS,
        moving_average,
    ),
    def(
        "movingMax",
        "Maximum of the points in a sliding window before each point. The window is a number \
         of points or an interval such as '5min'; xFilesFactor sets the fraction of non-null \
         points a window needs.",
        MOVING_PARAMS,
        moving_max,
    ),
    def(
        "movingMedian",
        "Median of the points in a sliding window before each point. The window is a number \
         of points or an interval such as '5min'; xFilesFactor sets the fraction of non-null \
         points a window needs.",
        MOVING_PARAMS,
        moving_median,
    ),
    def(
        "movingMin",
        "Minimum of the points in a sliding window before each point. The window is a number \
         of points or an interval such as '5min'; xFilesFactor sets the fraction of non-null \
         points a window needs.",
        MOVING_PARAMS,
        moving_min,
    ),
    def(
        "movingSum",
        "Sum of the points in a sliding window before each point. The window is a number of \
         points or an interval such as '5min'; xFilesFactor sets the fraction of non-null \
         points a window needs.",
        MOVING_PARAMS,
        moving_sum,
    ),
    def(
        "movingWindow",
        "Applies an aggregation function (average by default) to a sliding window before each \
         point (the point itself excluded). The window is a number of points or an interval \
         such as '5min'; data before the requested range is fetched to fill the first \
         windows. xFilesFactor sets the fraction of non-null points a window needs.",
        &[
            SERIES_LIST,
            WINDOW_SIZE,
            Param::new("func", ParamType::AggFunc)
                .default(Default::Str("average"))
                .options(AGG_FUNC_OPTIONS),
            XFF,
        ],
        moving_window,
    ),
    def(
        "nPercentile",
        "For each series with data, a flat series at its n-th percentile (nearest rank, NIST \
         method) over the whole window.",
        &[SERIES_LIST, Param::new("n", ParamType::Float).required()],
        n_percentile,
    ),
    def(
        "stdev",
        "Rolling population standard deviation over the last `points` values, the current one \
         included. A point is null unless the window's share of non-null values reaches \
         windowTolerance (0.1 by default).",
        &[
            SERIES_LIST,
            Param::new("points", ParamType::Integer).required(),
            Param::new("windowTolerance", ParamType::Float).default(Default::Float(0.1)),
        ],
        stdev,
    ),
];

// ---------------------------------------------------------------------------------------------
// Helpers shared by this family.

/// A fresh series derived from `s` as graphite-web's `TimeSeries.copy(name=, start=, values=)`
/// builds it: same end, step, consolidation function, xFilesFactor and tags, one value per
/// point, no graph options, and the new name as path expression.
fn derived(s: &Series, name: String, start: i64, values: Vec<Option<f64>>) -> Series {
    Series {
        path_expression: name.clone(),
        name,
        start,
        end: s.end,
        step: s.step,
        values,
        consolidation: s.consolidation,
        values_per_point: 1,
        x_files_factor: s.x_files_factor,
        tags: s.tags.clone(),
        options: BTreeMap::new(),
    }
}

/// A series built the way graphite-web's `TimeSeries(name, start, end, step, values,
/// tags=s.tags, xFilesFactor=s.xFilesFactor)` builds it: like [`derived`], but with the default
/// consolidation function rather than the input's.
fn constructed(s: &Series, name: String, start: i64, values: Vec<Option<f64>>) -> Series {
    let mut out = derived(s, name, start, values);
    out.consolidation = crate::series::Consolidation::Average;
    out
}

/// graphite-web's `parseTimeOffset` as a signed number of seconds: an optional sign, then one
/// or more `<digits><unit>` groups; units are matched by prefix (`s`, `min`, `h`, `d`, `w`,
/// `mon` = 30 days, `y` = 365 days), so `5m` is invalid and `5minutes` is fine.
///
/// Kept private until `crate::time` offers the same parser to everyone.
pub(crate) fn offset_seconds(text: &str) -> Result<i64> {
    let invalid = |why: &str| Error::arg(format!("Invalid interval value: '{text}': {why}"));
    let (sign, mut rest) = match text.as_bytes().first() {
        None => return Ok(0),
        Some(b'0'..=b'9') => (1i64, text),
        Some(b'+') => (1, &text[1..]),
        Some(b'-') => (-1, &text[1..]),
        Some(_) => return Err(invalid("an interval starts with a digit, '+' or '-'")),
    };
    let mut total: i64 = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(invalid("expected a number"));
        }
        let num: i64 = rest[..digits].parse().map_err(|_| invalid("number too large"))?;
        rest = &rest[digits..];
        let letters: usize =
            rest.chars().take_while(|c| c.is_alphabetic()).map(char::len_utf8).sum();
        let unit = &rest[..letters];
        rest = &rest[letters..];
        let unit_seconds: i64 = if unit.starts_with('s') {
            1
        } else if unit.starts_with("min") {
            60
        } else if unit.starts_with('h') {
            3600
        } else if unit.starts_with('d') {
            86_400
        } else if unit.starts_with('w') {
            7 * 86_400
        } else if unit.starts_with("mon") {
            30 * 86_400
        } else if unit.starts_with('y') {
            365 * 86_400
        } else {
            return Err(invalid(&format!("invalid offset unit '{unit}'")));
        };
        total = num
            .checked_mul(unit_seconds)
            .and_then(|s| s.checked_mul(sign))
            .and_then(|s| total.checked_add(s))
            .ok_or_else(|| invalid("interval too large"))?;
    }
    Ok(total)
}

/// A `windowSize` argument (`intOrInterval`): a number of points or an interval string.
enum Window {
    /// `int(windowSize)` points; `text` is Python's `%s` of the argument.
    Points { n: i64, text: String },
    /// An interval; `seconds` is its absolute length, `text` the string as given.
    Interval { seconds: i64, text: String },
}

impl Window {
    fn parse(args: &Args<'_, '_>, i: usize) -> Result<Window> {
        let name = args.def.name;
        let window = match args.literal(i) {
            Some(Literal::Str(s)) => {
                Window::Interval { seconds: offset_seconds(&s)?.abs(), text: s }
            }
            Some(Literal::Int(n)) => Window::Points { n, text: n.to_string() },
            Some(Literal::Float(f)) if f.is_finite() && f.abs() < 1e15 => {
                Window::Points { n: f.trunc() as i64, text: pyfmt::float_repr(f) }
            }
            _ => {
                return Err(Error::arg(format!(
                    "{name}(): windowSize must be a number of points or an interval string \
                     such as '5min'"
                )));
            }
        };
        if let Window::Points { n, .. } = window
            && n < 0
        {
            return Err(Error::arg(format!("{name}(): windowSize must not be negative, got {n}")));
        }
        Ok(window)
    }

    /// How far back the re-fetch starts: the interval, or `max step * points`.
    fn preview_seconds(&self, series: &[Series], fname: &str) -> Result<i64> {
        match self {
            Window::Interval { seconds, .. } => Ok(*seconds),
            Window::Points { n, .. } => {
                let step = series.iter().map(|s| s.step).max().unwrap_or(1);
                step.checked_mul(*n)
                    .ok_or_else(|| Error::arg(format!("{fname}(): windowSize is too large")))
            }
        }
    }

    /// The window in points for a series of `step`, and the `(series,window)` suffix of the
    /// output name.
    fn points_and_suffix(&self, step: i64) -> (i64, String) {
        match self {
            Window::Interval { seconds, text } => (seconds / step.max(1), format!("\"{text}\"")),
            Window::Points { n, text } => (*n, text.clone()),
        }
    }

    /// The tag value graphite-web stores (`str(windowSize)`).
    fn tag(&self) -> &str {
        match self {
            Window::Interval { text, .. } | Window::Points { text, .. } => text,
        }
    }
}

/// Re-evaluates the first argument over `[from - preview, until]`, as graphite-web does for
/// the moving-window family.
fn refetch(args: &Args<'_, '_>, preview: i64) -> Result<Vec<Series>> {
    let expr = args.expr(0).ok_or_else(|| {
        Error::arg(format!("{}(): seriesList must be a series expression", args.def.name))
    })?;
    let from = args
        .ctx
        .from
        .checked_sub(preview)
        .ok_or_else(|| Error::arg(format!("{}(): window is too large", args.def.name)))?;
    args.eval_with_range(expr, from, args.ctx.until)
}

/// `getAggFunc`: the aggregation names (and aliases) without the deprecated `Series` suffix.
fn agg_func(args: &Args<'_, '_>, name: &str) -> Result<AggFunc> {
    AggFunc::parse(name).ok_or_else(|| {
        Error::arg(format!("{}(): unsupported aggregation function: {name}", args.def.name))
    })
}

/// Python's `str.capitalize()` for the ASCII names aggregation functions have.
fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars.flat_map(char::to_lowercase)).collect(),
        None => String::new(),
    }
}

/// Python's `round(x, 6)`: the correctly rounded decimal (ties to even on the exact binary
/// value), read back as a float. Rust's fixed-precision formatting rounds the same way.
fn round6(x: f64) -> f64 {
    if !x.is_finite() {
        return x;
    }
    format!("{x:.6}").parse().unwrap_or(x)
}

/// `values[k:]` with Python's slice semantics (negative `k` counts from the end).
fn py_tail<T: Clone>(values: &[T], k: i64) -> Vec<T> {
    let len = values.len() as i64;
    let start = if k < 0 { (len + k).max(0) } else { k.min(len) };
    values.get(usize::try_from(start).unwrap_or(0)..).map(<[T]>::to_vec).unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// movingWindow and its variants.

fn moving_window(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let func = args.string(2)?;
    moving(args, &func, 3)
}

fn moving_average(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    moving(args, "average", 2)
}

fn moving_sum(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    moving(args, "sum", 2)
}

fn moving_min(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    moving(args, "min", 2)
}

fn moving_max(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    moving(args, "max", 2)
}

fn moving_median(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    moving(args, "median", 2)
}

/// graphite-web's `movingWindow`: for each point, `func` over the non-null values of the
/// `windowPoints` raw values before it (the point itself excluded), null unless the window has
/// a non-null value and passes the xFilesFactor. The input is re-fetched from `from -
/// previewSeconds`, and the output starts `previewSeconds` after the re-fetched series.
fn moving(args: &Args<'_, '_>, func: &str, xff_param: usize) -> Result<Vec<Series>> {
    let list = args.series(0)?;
    if list.is_empty() {
        return Ok(Vec::new());
    }
    let agg = agg_func(args, func)?;
    let window = Window::parse(args, 1)?;
    let xff = args.opt_float(xff_param)?;
    let preview = window.preview_seconds(&list, args.def.name)?;
    let tag_name = format!("moving{}", capitalize(func));
    let mut out = Vec::new();
    for series in refetch(args, preview)? {
        let (points, suffix) = window.points_and_suffix(series.step);
        let name = format!("{tag_name}({},{suffix})", series.name);
        let effective_xff = xff.unwrap_or(series.x_files_factor);
        let wp = usize::try_from(points).unwrap_or(usize::MAX);
        let raw = &series.values;
        let mut values = Vec::with_capacity(raw.len().saturating_sub(wp));
        let mut non_null: Vec<Option<f64>> = Vec::with_capacity(wp.min(raw.len()));
        for i in wp..raw.len() {
            non_null.clear();
            non_null.extend(raw[i - wp..i].iter().filter(|v| v.is_some()).copied());
            let enough =
                !non_null.is_empty() && non_null.len() as f64 / points as f64 >= effective_xff;
            values.push(if enough { agg.apply(&non_null) } else { None });
        }
        let mut s = derived(&series, name, series.start.saturating_add(preview), values);
        s.tags.insert(tag_name.clone(), window.tag().to_string());
        out.push(s);
    }
    Ok(out)
}

/// graphite-web's `exponentialMovingAverage`: seeded with the mean of the first window (0 when
/// it has no data), then `c * v + (1 - c) * ema` for each non-null value after it; one more
/// point than `movingWindow` produces (the seed).
fn exponential_moving_average(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let list = args.series(0)?;
    if list.is_empty() {
        return Ok(Vec::new());
    }
    let window = Window::parse(args, 1)?;
    let preview = window.preview_seconds(&list, args.def.name)?;
    let constant = match &window {
        Window::Interval { seconds, .. } => 2.0 / (*seconds as f64 + 1.0),
        Window::Points { n, .. } => 2.0 / (*n as f64 + 1.0),
    };
    let mut out = Vec::new();
    for series in refetch(args, preview)? {
        let (points, suffix) = window.points_and_suffix(series.step);
        let name = format!("exponentialMovingAverage({},{suffix})", series.name);
        let raw = &series.values;
        let wp = usize::try_from(points).unwrap_or(usize::MAX).min(raw.len());
        // `safeAvg(...) or 0`: no data, or a mean of (negative) zero, seeds with 0.
        let mut ema = AggFunc::Average.apply(&raw[..wp]).filter(|m| *m != 0.0).unwrap_or(0.0);
        let mut values = Vec::with_capacity(raw.len() + 1 - wp);
        values.push(Some(round6(ema)));
        for v in &raw[wp..] {
            match v {
                Some(v) => {
                    ema = constant * v + (1.0 - constant) * ema;
                    values.push(Some(round6(ema)));
                }
                None => values.push(None),
            }
        }
        let mut s = derived(&series, name, series.start.saturating_add(preview), values);
        s.tags.insert("exponentialMovingAverage".into(), window.tag().to_string());
        out.push(s);
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Percentiles, stdev, aggregateLine, identity.

/// graphite-web's `_getPercentile` without interpolation, on already sorted values: the
/// nearest rank `ceil(n / 100 * (len + 1))`, clamped to the first and last value, with
/// Python's negative indexing for negative percentiles.
fn percentile(sorted: &[f64], n: f64, fname: &str) -> Result<f64> {
    let len = sorted.len();
    let fractional_rank = (n / 100.0) * (len as f64 + 1.0);
    let mut rank = fractional_rank.trunc();
    rank += (fractional_rank - rank).ceil();
    let out_of_range =
        || Error::arg(format!("{fname}(): percentile {} is out of range", pyfmt::format_g(n)));
    if !rank.is_finite() || rank.abs() > 1e15 {
        return Err(out_of_range());
    }
    let rank = rank as i64;
    let len_i = len as i64;
    let index = if rank == 0 {
        0
    } else if rank - 1 == len_i {
        len_i - 1
    } else if rank - 1 < 0 {
        len_i + rank - 1
    } else {
        rank - 1
    };
    usize::try_from(index).ok().and_then(|i| sorted.get(i)).copied().ok_or_else(out_of_range)
}

/// graphite-web's `nPercentile`: series without data are dropped; the others become a flat
/// line of `int((end - start) / step)` points at their percentile.
fn n_percentile(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let list = args.series(0)?;
    let n = args.float(1)?;
    if n == 0.0 {
        return Err(Error::arg("nPercentile(): the requested percent must be greater than 0"));
    }
    let mut out = Vec::new();
    for s in list {
        let mut sorted: Vec<f64> = s.consolidated().into_iter().flatten().collect();
        if sorted.is_empty() {
            continue;
        }
        sorted.sort_by(f64::total_cmp);
        let value = percentile(&sorted, n, args.def.name)?;
        let name = format!("nPercentile({}, {})", s.name, pyfmt::format_g(n));
        let count = ((s.end - s.start) as f64 / s.step as f64) as usize;
        let mut p = derived(&s, name, s.start, vec![Some(value); count]);
        p.tags.insert("nPercentile".into(), pyfmt::float_repr(n));
        out.push(p);
    }
    Ok(out)
}

/// graphite-web's `stdev`: a running sum and sum of squares over the last `points` values
/// (current one included), `sqrt(k * sumSq - sum^2) / k` over the `k` non-null values, null
/// below `windowTolerance` (or when rounding makes the radicand negative).
fn stdev(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let list = args.series(0)?;
    let points = args.int(1)?;
    let tolerance = args.float(2)?;
    if points < 0 {
        return Err(Error::arg(format!("stdev(): points must not be negative, got {points}")));
    }
    let window = usize::try_from(points).unwrap_or(usize::MAX);
    let mut out = Vec::with_capacity(list.len());
    for series in list {
        let name = format!("stdev({},{points})", series.name);
        // Python iterates the series (consolidated) but reads the dropped value by raw index.
        let read = series.consolidated();
        let mut valid: i64 = 0;
        let mut sum = 0.0;
        let mut sum_sq = 0.0;
        let mut values = Vec::with_capacity(read.len());
        for (index, new) in read.iter().enumerate() {
            let dropped = if index < window {
                None
            } else {
                series.values.get(index - window).copied().flatten()
            };
            if let Some(d) = dropped {
                valid -= 1;
                sum -= d;
                sum_sq -= d * d;
            }
            if let Some(v) = new {
                valid += 1;
                sum += v;
                sum_sq += v * v;
            }
            let value = if valid > 0 && valid as f64 / points as f64 >= tolerance {
                let radicand = valid as f64 * sum_sq - sum * sum;
                (radicand >= 0.0 || radicand.is_nan()).then(|| radicand.sqrt() / valid as f64)
            } else {
                None
            };
            values.push(value);
        }
        let mut s = derived(&series, name, series.start, values);
        s.tags.insert("stdev".into(), points.to_string());
        out.push(s);
    }
    Ok(out)
}

/// graphite-web's `aggregateLine`: `func` over each whole series, drawn as a constant line
/// (over the request range, or with the series' own shape when `keepStep`). The name carries
/// the value as `%g`, or `None` when the series has no data.
fn aggregate_line(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let list = args.series(0)?;
    let func_name = args.string(1)?;
    let agg = agg_func(args, &func_name)?;
    let keep_step = args.bool(2)?;
    let mut out = Vec::with_capacity(list.len());
    for series in list {
        let value = agg.apply(&series.consolidated());
        let shown = value.map_or_else(|| "None".to_string(), pyfmt::format_g);
        let name = format!("aggregateLine({}, {shown})", series.name);
        let line = if keep_step {
            derived(&series, name, series.start, vec![value; series.values.len()])
        } else {
            // `count` returns a Python int, so its constantLine is named without ".0".
            let text = match value {
                None => "None".to_string(),
                Some(v) => pyfmt::number_repr(v, agg == AggFunc::Count),
            };
            let mut line = special::constant_line(args.ctx, value, &text);
            line.set_name(name);
            line
        };
        out.push(line);
    }
    Ok(out)
}

/// graphite-web's `identity`: the timestamp as value, every 60 seconds over `[from, until)`.
fn identity(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let name = args.string(0)?;
    const STEP: i64 = 60;
    let (start, end) = (args.ctx.from, args.ctx.until);
    let values = (start..end).step_by(STEP as usize).map(|t| Some(t as f64)).collect();
    let mut s = Series::new(name.clone(), start, end, STEP, values);
    s.path_expression = format!("identity(\"{name}\")");
    s.x_files_factor = args.ctx.x_files_factor;
    Ok(vec![s])
}

// ---------------------------------------------------------------------------------------------
// Holt-Winters.

/// The result of graphite-web's `holtWintersAnalysis` that callers use.
struct HoltWinters {
    predictions: Vec<Option<f64>>,
    deviations: Vec<Option<f64>>,
}

/// graphite-web's `holtWintersAnalysis` with alpha = gamma = 0.1 and beta = 0.0035. A null
/// input resets the chain: its prediction is the pending one, and the next value starts over
/// from itself as intercept.
fn holt_winters_analysis(
    values: &[Option<f64>],
    season_length: i64,
    fname: &str,
) -> Result<HoltWinters> {
    const ALPHA: f64 = 0.1;
    const GAMMA: f64 = 0.1;
    const BETA: f64 = 0.0035;
    let n = values.len();
    let mut intercepts: Vec<Option<f64>> = Vec::with_capacity(n);
    let mut slopes: Vec<f64> = Vec::with_capacity(n);
    let mut seasonals: Vec<f64> = Vec::with_capacity(n);
    let mut predictions: Vec<Option<f64>> = Vec::with_capacity(n);
    let mut deviations: Vec<Option<f64>> = Vec::with_capacity(n);
    let mut next_pred: Option<f64> = None;
    // graphite-web indexes the season before `i`; a seasonality shorter than two steps asks
    // for values not computed yet (an IndexError there).
    let too_short =
        || Error::arg(format!("{fname}(): seasonality must span at least two steps of the series"));
    let last = |list: &[f64], i: i64| -> Result<f64> {
        let j = i - season_length;
        if j < 0 {
            return Ok(0.0);
        }
        usize::try_from(j).ok().and_then(|j| list.get(j)).copied().ok_or_else(too_short)
    };
    for (i, actual) in values.iter().enumerate() {
        let Some(actual) = *actual else {
            intercepts.push(None);
            slopes.push(0.0);
            seasonals.push(0.0);
            predictions.push(next_pred);
            deviations.push(Some(0.0));
            next_pred = None;
            continue;
        };
        let (last_intercept, last_slope, prediction) = if i == 0 {
            (actual, 0.0, Some(actual))
        } else {
            let li = intercepts.last().copied().flatten().unwrap_or(actual);
            (li, slopes.last().copied().unwrap_or(0.0), next_pred)
        };
        let i = i as i64;
        let last_seasonal = last(&seasonals, i)?;
        let next_last_seasonal = last(&seasonals, i + 1)?;
        let last_seasonal_dev = {
            let j = i - season_length;
            if j < 0 {
                0.0
            } else {
                usize::try_from(j)
                    .ok()
                    .and_then(|j| deviations.get(j))
                    .copied()
                    .ok_or_else(too_short)?
                    .unwrap_or(0.0)
            }
        };
        let intercept =
            ALPHA * (actual - last_seasonal) + (1.0 - ALPHA) * (last_intercept + last_slope);
        let slope = BETA * (intercept - last_intercept) + (1.0 - BETA) * last_slope;
        let seasonal = GAMMA * (actual - intercept) + (1.0 - GAMMA) * last_seasonal;
        next_pred = Some(intercept + slope + next_last_seasonal);
        let deviation =
            GAMMA * (actual - prediction.unwrap_or(0.0)).abs() + (1.0 - GAMMA) * last_seasonal_dev;
        intercepts.push(Some(intercept));
        slopes.push(slope);
        seasonals.push(seasonal);
        predictions.push(prediction);
        deviations.push(Some(deviation));
    }
    Ok(HoltWinters { predictions, deviations })
}

/// The bootstrap length in seconds (signed, as graphite-web uses it) and the re-fetched input.
fn holt_winters_input(args: &Args<'_, '_>, bootstrap_param: usize) -> Result<(i64, Vec<Series>)> {
    let bootstrap = offset_seconds(&args.string(bootstrap_param)?)?;
    let list = refetch(args, bootstrap)?;
    Ok((bootstrap, list))
}

fn season_length(args: &Args<'_, '_>, param: usize, step: i64) -> Result<i64> {
    Ok(offset_seconds(&args.string(param)?)?.div_euclid(step.max(1)))
}

/// Tags graphite-web leaves on every Holt-Winters output: the analysis adds both markers to
/// the input's (shared) tag dictionary.
fn holt_winters_tags(s: &Series, extra: &[&str]) -> BTreeMap<String, String> {
    let mut tags = s.tags.clone();
    for key in ["holtWintersForecast", "holtWintersDeviation"].iter().chain(extra) {
        tags.insert((*key).to_string(), "1".into());
    }
    tags
}

/// graphite-web's `holtWintersForecast`: the predictions after the bootstrap window.
fn holt_winters_forecast(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let (bootstrap, list) = holt_winters_input(args, 1)?;
    let mut out = Vec::with_capacity(list.len());
    for series in list {
        let season = season_length(args, 2, series.step)?;
        let hw = holt_winters_analysis(&series.consolidated(), season, args.def.name)?;
        let window_points = bootstrap.div_euclid(series.step);
        let name = format!("holtWintersForecast({})", series.name);
        let mut s = constructed(
            &series,
            name,
            series.start.saturating_add(bootstrap),
            py_tail(&hw.predictions, window_points),
        );
        s.tags = holt_winters_tags(&series, &[]);
        out.push(s);
    }
    Ok(out)
}

/// The lower and upper bands of one re-fetched series, in graphite-web's output order.
fn confidence_bands(
    args: &Args<'_, '_>,
    series: &Series,
    delta: i64,
    bootstrap: i64,
) -> Result<[Series; 2]> {
    let season = season_length(args, 3, series.step)?;
    let hw = holt_winters_analysis(&series.consolidated(), season, args.def.name)?;
    let window_points = bootstrap.div_euclid(series.step);
    let forecast = py_tail(&hw.predictions, window_points);
    let deviation = py_tail(&hw.deviations, window_points);
    let (mut upper, mut lower) = (Vec::new(), Vec::new());
    for (f, d) in forecast.iter().zip(&deviation) {
        match (f, d) {
            (Some(f), Some(d)) => {
                let scaled = delta as f64 * d;
                upper.push(Some(f + scaled));
                lower.push(Some(f - scaled));
            }
            _ => {
                upper.push(None);
                lower.push(None);
            }
        }
    }
    let tags =
        holt_winters_tags(series, &["holtWintersConfidenceUpper", "holtWintersConfidenceLower"]);
    let band = |kind: &str, values: Vec<Option<f64>>| {
        let mut s = constructed(
            series,
            format!("holtWintersConfidence{kind}({})", series.name),
            series.start.saturating_add(bootstrap),
            values,
        );
        s.path_expression.clone_from(&series.path_expression);
        s.tags.clone_from(&tags);
        s
    };
    Ok([band("Lower", lower), band("Upper", upper)])
}

fn all_bands(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let delta = args.int(1)?;
    let (bootstrap, list) = holt_winters_input(args, 2)?;
    let mut out = Vec::with_capacity(2 * list.len());
    for series in &list {
        out.extend(confidence_bands(args, series, delta, bootstrap)?);
    }
    Ok(out)
}

/// graphite-web's `holtWintersConfidenceBands`: lower and upper band for each series.
fn holt_winters_confidence_bands(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    all_bands(args)
}

/// graphite-web's `holtWintersAberration`: the input (over the requested range) compared
/// point by point with its bands, matched by name.
fn holt_winters_aberration(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let list = args.series(0)?;
    let bands = all_bands(args)?;
    let find = |name: String| {
        bands.iter().find(|b| b.name == name).ok_or_else(|| {
            Error::Evaluation(format!("holtWintersAberration(): no confidence band {name}"))
        })
    };
    let mut out = Vec::with_capacity(list.len());
    for series in list {
        let lower = find(format!("holtWintersConfidenceLower({})", series.name))?;
        let upper = find(format!("holtWintersConfidenceUpper({})", series.name))?;
        let read = series.consolidated();
        let mut values = Vec::with_capacity(read.len());
        for i in 0..read.len() {
            let Some(actual) = series.values.get(i).copied().flatten() else {
                values.push(Some(0.0));
                continue;
            };
            let band = |b: &Series| -> Result<Option<f64>> {
                b.values.get(i).copied().ok_or_else(|| {
                    Error::Evaluation(format!(
                        "holtWintersAberration(): the bands of {} are shorter than the series \
                         (the bootstrap data has another step)",
                        series.name
                    ))
                })
            };
            let value = match (band(upper)?, band(lower)?) {
                (Some(u), _) if actual > u => actual - u,
                (_, Some(l)) if actual < l => actual - l,
                _ => 0.0,
            };
            values.push(Some(value));
        }
        let name = format!("holtWintersAberration({})", series.name);
        let mut s = constructed(&series, name, series.start, values);
        s.tags.insert("holtWintersAberration".into(), "1".into());
        out.push(s);
    }
    Ok(out)
}

/// graphite-web's `holtWintersConfidenceArea`: the bands passed through `areaBetween` (so
/// exactly one input series is allowed), renamed.
fn holt_winters_confidence_area(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let mut bands = all_bands(args)?;
    if bands.len() != 2 {
        return Err(Error::arg(
            "holtWintersConfidenceArea(): the series argument must reference exactly 1 series",
        ));
    }
    // areaBetween names both after the upper band's path expression; every "areaBetween" in
    // the name is then replaced.
    let name = format!("areaBetween({})", bands[1].path_expression)
        .replace("areaBetween", "holtWintersConfidenceArea");
    for (i, band) in bands.iter_mut().enumerate() {
        band.options.insert("stacked".into(), "True".into());
        if i == 0 {
            band.options.insert("invisible".into(), "True".into());
        }
        band.tags.insert("holtWintersConfidenceArea".into(), "1".into());
        band.set_name(name.clone());
    }
    Ok(bands)
}

// ---------------------------------------------------------------------------------------------
// linearRegression.

/// graphite-web's `_linearRegressionAnalysis`: least squares over (index, value) pairs of the
/// non-null values, as `(factor per second, offset at epoch 0)`; `None` when the fit is
/// degenerate (fewer than two points).
fn linear_regression_analysis(s: &Series) -> Option<(f64, f64)> {
    let values = s.consolidated();
    let (mut n, mut sum_i, mut sum_ii) = (0i128, 0i128, 0i128);
    let (mut sum_v, mut sum_iv) = (0.0f64, 0.0f64);
    for (i, v) in values.iter().enumerate() {
        if let Some(v) = v {
            let i = i as i128;
            n += 1;
            sum_i += i;
            sum_ii += i * i;
            sum_v += v;
            sum_iv += i as f64 * v;
        }
    }
    let denominator = (n * sum_ii - sum_i * sum_i) as f64;
    if denominator == 0.0 {
        return None;
    }
    let factor = (n as f64 * sum_iv - sum_i as f64 * sum_v) / denominator / s.step as f64;
    let offset =
        (sum_ii as f64 * sum_v - sum_iv * sum_i as f64) / denominator - factor * s.start as f64;
    Some((factor, offset))
}

/// graphite-web's `linearRegression`: fit on the first argument re-evaluated over the source
/// range, then draw the line over each requested series (paired by position).
fn linear_regression(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let list = args.series(0)?;
    // graphite-web parses these with the server's default zone, not the request's.
    let tz = crate::time::TimeZone::utc();
    let from = match args.opt_string(1)? {
        Some(s) => crate::time::parse_at_time(&s, &tz, args.ctx.now)?,
        None => args.ctx.from,
    };
    let until = match args.opt_string(2)? {
        Some(s) => crate::time::parse_at_time(&s, &tz, args.ctx.now)?,
        None => args.ctx.until,
    };
    let expr = args
        .expr(0)
        .ok_or_else(|| Error::arg("linearRegression(): seriesList must be a series expression"))?;
    let sources = args.eval_with_range(expr, from, until)?;
    let mut out = Vec::new();
    for (source, series) in sources.iter().zip(&list) {
        let Some((factor, offset)) = linear_regression_analysis(source) else { continue };
        let name = format!("linearRegression({}, {from}, {until})", series.name);
        let values = (0..series.values.len() as i64)
            .map(|i| Some(offset + (series.start + i * series.step) as f64 * factor))
            .collect();
        let mut s = constructed(series, name, series.start, values);
        s.tags.insert("linearRegressions".into(), format!("{from}, {until}"));
        out.push(s);
    }
    Ok(out)
}
