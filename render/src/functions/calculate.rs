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
use crate::function::{Args, Default, FunctionDef, Param, ParamType, SERIES_LIST};
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
/// An interval argument as seconds ([`crate::time::parse_time_offset`]), its error reported
/// as a bad argument.
fn offset_seconds(text: &str) -> Result<i64> {
    crate::time::parse_time_offset(text)
        .map_err(|e| Error::arg(format!("Invalid interval value: '{text}': {e}")))
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
                let seconds = offset_seconds(&s)?.checked_abs().ok_or_else(|| {
                    Error::arg(format!("{name}(): windowSize '{s}' is too large"))
                })?;
                Window::Interval { seconds, text: s }
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
    // graphite-web moves a Python datetime back, which fails before year 1.
    const PY_DATETIME_MIN_EPOCH: i64 = -62_135_596_800;
    let from = args
        .ctx
        .from
        .checked_sub(preview)
        .filter(|from| *from >= PY_DATETIME_MIN_EPOCH)
        .ok_or_else(|| {
            Error::arg(format!("{}(): the window reaches back before year 1", args.def.name))
        })?;
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
        // graphite-web hands `func` the window's non-null values; only avg_zero and multiply
        // treat nulls differently from that, the others may read the window as it is.
        let filter = matches!(agg, AggFunc::AvgZero | AggFunc::Multiply);
        let mut non_null: Vec<Option<f64>> = Vec::new();
        for i in wp..raw.len() {
            let window = &raw[i - wp..i];
            let count = window.iter().filter(|v| v.is_some()).count();
            let enough = count > 0 && count as f64 / points as f64 >= effective_xff;
            values.push(match (enough, filter) {
                (false, _) => None,
                (true, false) => agg.apply(window),
                (true, true) => {
                    non_null.clear();
                    non_null.extend(window.iter().filter(|v| v.is_some()).copied());
                    agg.apply(&non_null)
                }
            });
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
    s.x_files_factor = args.ctx.effective_x_files_factor();
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

#[cfg(test)]
pub(crate) mod tests {
    //! Expected values come from graphite-web 1.1.8's own functions run on the same series
    //! (a harness that serves these values through graphite-web's evaluator the way
    //! [`MemorySource`] serves them here); they are compared bit for bit.

    use super::*;
    use crate::source::MemorySource;
    use crate::testutil::{self, T0};

    const N: Option<f64> = None;

    /// The shared data set: three 60 s series (one mostly null), a 300 s series and a tagged
    /// series, each starting at `T0`.
    pub(crate) fn data() -> MemorySource {
        let web01 = [
            Some(1.0),
            Some(2.5),
            N,
            Some(4.25),
            Some(0.1),
            Some(7.0),
            Some(3.3),
            N,
            N,
            Some(5.5),
            Some(6.0),
            Some(2.2),
            Some(9.9),
            Some(1.1),
            Some(0.7),
            Some(4.4),
            N,
            Some(3.0),
            Some(8.8),
            Some(2.0),
            Some(1.0),
            Some(0.3),
            Some(5.0),
            Some(6.6),
            Some(7.7),
            N,
            Some(2.1),
            Some(3.9),
            Some(4.8),
            Some(0.2),
        ];
        let web02 = [
            Some(10.0),
            Some(11.5),
            Some(12.25),
            Some(9.0),
            Some(8.5),
            N,
            Some(7.75),
            Some(13.0),
            Some(14.1),
            Some(10.2),
            Some(9.9),
            Some(11.1),
            Some(12.0),
            N,
            Some(15.5),
            Some(16.25),
            Some(10.0),
            Some(9.5),
            Some(8.0),
            Some(7.0),
            Some(11.0),
            Some(12.5),
            Some(13.75),
            Some(14.0),
            N,
            Some(9.25),
            Some(10.5),
            Some(11.0),
            Some(12.0),
            Some(13.0),
        ];
        let db01 = [
            N,
            N,
            Some(3.0),
            N,
            Some(5.0),
            N,
            N,
            Some(8.0),
            N,
            N,
            N,
            Some(1.5),
            N,
            Some(2.5),
            N,
            N,
            N,
            N,
            Some(4.0),
            N,
            Some(6.0),
            N,
            N,
            Some(7.0),
            N,
            N,
            Some(2.0),
            N,
            N,
            Some(9.0),
        ];
        let slow = [
            Some(100.0),
            Some(110.5),
            N,
            Some(90.25),
            Some(95.0),
            Some(120.0),
            Some(130.5),
            N,
            Some(105.0),
            Some(99.0),
        ];
        let tagged = [
            Some(50.0),
            Some(51.5),
            Some(49.0),
            N,
            Some(52.25),
            Some(53.0),
            Some(48.5),
            Some(47.0),
            Some(55.0),
            Some(54.5),
            Some(50.0),
            Some(51.0),
            N,
            Some(49.5),
            Some(50.5),
            Some(52.0),
            Some(53.5),
            Some(54.0),
            Some(48.0),
            Some(47.5),
            Some(50.0),
            Some(51.0),
            Some(52.0),
            Some(53.0),
            Some(54.0),
            Some(55.0),
            Some(56.0),
            Some(57.0),
            Some(58.0),
            Some(59.0),
        ];
        testutil::source(&[
            ("test.web01.cpu", 60, &web01),
            ("test.web02.cpu", 60, &web02),
            ("test.db01.cpu", 60, &db01),
            ("test.slow.cpu", 300, &slow),
            ("tagged.disk.used;dc=dc1;server=web01", 60, &tagged),
        ])
    }

    /// Evaluates `target` over `(T0 + from, T0 + until]`.
    pub(crate) fn run(target: &str, from: i64, until: i64) -> Vec<Series> {
        testutil::eval(&data(), target, T0 + from, T0 + until)
    }

    /// Evaluates `target`, expecting an error.
    pub(crate) fn run_err(target: &str, from: i64, until: i64) -> Error {
        match testutil::try_eval(&data(), target, T0 + from, T0 + until) {
            Ok(s) => panic!("{target}: expected an error, got {:?}", testutil::names(&s)),
            Err(e) => e,
        }
    }

    /// One expected output series; times are relative to `T0`.
    pub(crate) struct Want {
        pub name: &'static str,
        pub path: &'static str,
        pub start: i64,
        pub end: i64,
        pub step: i64,
        /// The consolidation function's name.
        pub cf: &'static str,
        /// The xFilesFactor.
        pub xff: f64,
        pub tags: &'static [(&'static str, &'static str)],
        pub values: &'static [Option<f64>],
    }

    fn same(a: Option<f64>, b: Option<f64>) -> bool {
        match (a, b) {
            (Some(x), Some(y)) => x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()),
            (None, None) => true,
            _ => false,
        }
    }

    /// Compares every field graphite-web's output shows, values bit for bit.
    pub(crate) fn check(got: &[Series], want: &[Want]) {
        assert_eq!(
            testutil::names(got),
            want.iter().map(|w| w.name).collect::<Vec<_>>(),
            "series names"
        );
        for (g, w) in got.iter().zip(want) {
            assert_eq!(g.path_expression, w.path, "path expression of {}", w.name);
            assert_eq!((g.start - T0, g.end - T0, g.step), (w.start, w.end, w.step), "{}", w.name);
            assert_eq!((g.consolidation.name(), g.x_files_factor), (w.cf, w.xff), "{}", w.name);
            let tags: Vec<(&str, &str)> =
                g.tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            assert_eq!(tags, w.tags, "tags of {}", w.name);
            let values = g.consolidated();
            assert!(
                values.len() == w.values.len()
                    && values.iter().zip(w.values).all(|(a, b)| same(*a, *b)),
                "values of {}:\n got  {values:?}\n want {:?}",
                w.name,
                w.values
            );
        }
    }

    #[test]
    fn moving_average_points_refetches_the_window() {
        // Expected values computed by graphite-web 1.1.8 on the same data.
        let got = run("movingAverage(test.web01.cpu,5)", 600, 1500);
        check(
            &got,
            &[Want {
                name: "movingAverage(test.web01.cpu,5)",
                path: "movingAverage(test.web01.cpu,5)",
                start: 660,
                end: 1560,
                step: 60,
                cf: "average",
                xff: 0.0,
                tags: &[("movingAverage", "5"), ("name", "test.web01.cpu")],
                values: &[
                    Some(4.933333333333334),
                    Some(4.566666666666666),
                    Some(5.9),
                    Some(4.94),
                    Some(3.9800000000000004),
                    Some(3.66),
                    Some(4.025),
                    Some(2.3),
                    Some(4.2250000000000005),
                    Some(4.550000000000001),
                    Some(3.7),
                    Some(3.0200000000000005),
                    Some(3.4200000000000004),
                    Some(2.98),
                    Some(4.119999999999999),
                ],
            }],
        );
    }

    #[test]
    fn moving_average_interval_per_series_points() {
        // Expected values computed by graphite-web 1.1.8 on the same data.
        let got = run("movingAverage(test.*.cpu,'5min')", 600, 1500);
        check(
            &got,
            &[
                Want {
                    name: "movingAverage(test.db01.cpu,\"5min\")",
                    path: "movingAverage(test.db01.cpu,\"5min\")",
                    start: 660,
                    end: 1560,
                    step: 60,
                    cf: "average",
                    xff: 0.0,
                    tags: &[("movingAverage", "5min"), ("name", "test.db01.cpu")],
                    values: &[
                        Some(8.0),
                        Some(4.75),
                        Some(1.5),
                        Some(2.0),
                        Some(2.0),
                        Some(2.0),
                        Some(2.5),
                        Some(2.5),
                        Some(4.0),
                        Some(4.0),
                        Some(5.0),
                        Some(5.0),
                        Some(5.0),
                        Some(6.5),
                        Some(6.5),
                    ],
                },
                Want {
                    name: "movingAverage(test.slow.cpu,\"5min\")",
                    path: "movingAverage(test.slow.cpu,\"5min\")",
                    start: 660,
                    end: 1560,
                    step: 300,
                    cf: "average",
                    xff: 0.0,
                    tags: &[("movingAverage", "5min"), ("name", "test.slow.cpu")],
                    values: &[None, Some(90.25), Some(95.0)],
                },
                Want {
                    name: "movingAverage(test.web01.cpu,\"5min\")",
                    path: "movingAverage(test.web01.cpu,\"5min\")",
                    start: 660,
                    end: 1560,
                    step: 60,
                    cf: "average",
                    xff: 0.0,
                    tags: &[("movingAverage", "5min"), ("name", "test.web01.cpu")],
                    values: &[
                        Some(4.933333333333334),
                        Some(4.566666666666666),
                        Some(5.9),
                        Some(4.94),
                        Some(3.9800000000000004),
                        Some(3.66),
                        Some(4.025),
                        Some(2.3),
                        Some(4.2250000000000005),
                        Some(4.550000000000001),
                        Some(3.7),
                        Some(3.0200000000000005),
                        Some(3.4200000000000004),
                        Some(2.98),
                        Some(4.119999999999999),
                    ],
                },
                Want {
                    name: "movingAverage(test.web02.cpu,\"5min\")",
                    path: "movingAverage(test.web02.cpu,\"5min\")",
                    start: 660,
                    end: 1560,
                    step: 60,
                    cf: "average",
                    xff: 0.0,
                    tags: &[("movingAverage", "5min"), ("name", "test.web02.cpu")],
                    values: &[
                        Some(10.989999999999998),
                        Some(11.66),
                        Some(11.459999999999999),
                        Some(10.8),
                        Some(12.125),
                        Some(13.7125),
                        Some(13.4375),
                        Some(12.8125),
                        Some(11.85),
                        Some(10.15),
                        Some(9.1),
                        Some(9.6),
                        Some(10.45),
                        Some(11.65),
                        Some(12.8125),
                    ],
                },
            ],
        );
    }

    #[test]
    fn moving_average_x_files_factor() {
        // Expected values computed by graphite-web 1.1.8 on the same data.
        let got = run("movingAverage(test.db01.cpu,4,0.5)", 600, 1500);
        check(
            &got,
            &[Want {
                name: "movingAverage(test.db01.cpu,4)",
                path: "movingAverage(test.db01.cpu,4)",
                start: 660,
                end: 1560,
                step: 60,
                cf: "average",
                xff: 0.0,
                tags: &[("movingAverage", "4"), ("name", "test.db01.cpu")],
                values: &[
                    None,
                    None,
                    None,
                    Some(2.0),
                    Some(2.0),
                    None,
                    None,
                    None,
                    None,
                    None,
                    Some(5.0),
                    Some(5.0),
                    None,
                    Some(6.5),
                    None,
                ],
            }],
        );
    }

    #[test]
    fn moving_sum() {
        // Expected values computed by graphite-web 1.1.8 on the same data.
        let got = run("movingSum(test.web01.cpu,3)", 600, 1500);
        check(
            &got,
            &[Want {
                name: "movingSum(test.web01.cpu,3)",
                path: "movingSum(test.web01.cpu,3)",
                start: 660,
                end: 1560,
                step: 60,
                cf: "average",
                xff: 0.0,
                tags: &[("movingSum", "3"), ("name", "test.web01.cpu")],
                values: &[
                    Some(11.5),
                    Some(13.7),
                    Some(18.1),
                    Some(13.200000000000001),
                    Some(11.7),
                    Some(6.2),
                    Some(5.1000000000000005),
                    Some(7.4),
                    Some(11.8),
                    Some(13.8),
                    Some(11.8),
                    Some(3.3),
                    Some(6.3),
                    Some(11.899999999999999),
                    Some(19.3),
                ],
            }],
        );
    }

    #[test]
    fn moving_min() {
        // Expected values computed by graphite-web 1.1.8 on the same data.
        let got = run("movingMin(test.web02.cpu,3)", 600, 1500);
        check(
            &got,
            &[Want {
                name: "movingMin(test.web02.cpu,3)",
                path: "movingMin(test.web02.cpu,3)",
                start: 660,
                end: 1560,
                step: 60,
                cf: "average",
                xff: 0.0,
                tags: &[("movingMin", "3"), ("name", "test.web02.cpu")],
                values: &[
                    Some(9.9),
                    Some(9.9),
                    Some(9.9),
                    Some(11.1),
                    Some(12.0),
                    Some(15.5),
                    Some(10.0),
                    Some(9.5),
                    Some(8.0),
                    Some(7.0),
                    Some(7.0),
                    Some(7.0),
                    Some(11.0),
                    Some(12.5),
                    Some(13.75),
                ],
            }],
        );
    }

    #[test]
    fn moving_max() {
        // Expected values computed by graphite-web 1.1.8 on the same data.
        let got = run("movingMax(test.web02.cpu,3)", 600, 1500);
        check(
            &got,
            &[Want {
                name: "movingMax(test.web02.cpu,3)",
                path: "movingMax(test.web02.cpu,3)",
                start: 660,
                end: 1560,
                step: 60,
                cf: "average",
                xff: 0.0,
                tags: &[("movingMax", "3"), ("name", "test.web02.cpu")],
                values: &[
                    Some(14.1),
                    Some(11.1),
                    Some(12.0),
                    Some(12.0),
                    Some(15.5),
                    Some(16.25),
                    Some(16.25),
                    Some(16.25),
                    Some(10.0),
                    Some(9.5),
                    Some(11.0),
                    Some(12.5),
                    Some(13.75),
                    Some(14.0),
                    Some(14.0),
                ],
            }],
        );
    }

    #[test]
    fn moving_median_interval() {
        // Expected values computed by graphite-web 1.1.8 on the same data.
        let got = run("movingMedian(test.web02.cpu,'4min')", 600, 1500);
        check(
            &got,
            &[Want {
                name: "movingMedian(test.web02.cpu,\"4min\")",
                path: "movingMedian(test.web02.cpu,\"4min\")",
                start: 660,
                end: 1560,
                step: 60,
                cf: "average",
                xff: 0.0,
                tags: &[("movingMedian", "4min"), ("name", "test.web02.cpu")],
                values: &[
                    Some(11.6),
                    Some(10.649999999999999),
                    Some(10.649999999999999),
                    Some(11.1),
                    Some(12.0),
                    Some(15.5),
                    Some(15.5),
                    Some(12.75),
                    Some(9.75),
                    Some(8.75),
                    Some(8.75),
                    Some(9.5),
                    Some(11.75),
                    Some(13.125),
                    Some(13.75),
                ],
            }],
        );
    }

    #[test]
    fn moving_window_avg_zero_names_after_func() {
        // Expected values computed by graphite-web 1.1.8 on the same data.
        let got = run("movingWindow(test.web01.cpu,3,'avg_zero')", 600, 1500);
        check(
            &got,
            &[Want {
                name: "movingAvg_zero(test.web01.cpu,3)",
                path: "movingAvg_zero(test.web01.cpu,3)",
                start: 660,
                end: 1560,
                step: 60,
                cf: "average",
                xff: 0.0,
                tags: &[("movingAvg_zero", "3"), ("name", "test.web01.cpu")],
                values: &[
                    Some(5.75),
                    Some(4.566666666666666),
                    Some(6.033333333333334),
                    Some(4.4),
                    Some(3.9),
                    Some(2.066666666666667),
                    Some(2.5500000000000003),
                    Some(3.7),
                    Some(5.9),
                    Some(4.6000000000000005),
                    Some(3.9333333333333336),
                    Some(1.0999999999999999),
                    Some(2.1),
                    Some(3.9666666666666663),
                    Some(6.433333333333334),
                ],
            }],
        );
    }

    #[test]
    fn moving_window_count_with_xff() {
        // Expected values computed by graphite-web 1.1.8 on the same data.
        let got = run("movingWindow(test.db01.cpu,'3min','count',0.3)", 600, 1500);
        check(
            &got,
            &[Want {
                name: "movingCount(test.db01.cpu,\"3min\")",
                path: "movingCount(test.db01.cpu,\"3min\")",
                start: 660,
                end: 1560,
                step: 60,
                cf: "average",
                xff: 0.0,
                tags: &[("movingCount", "3min"), ("name", "test.db01.cpu")],
                values: &[
                    None,
                    Some(1.0),
                    Some(1.0),
                    Some(2.0),
                    Some(1.0),
                    Some(1.0),
                    None,
                    None,
                    Some(1.0),
                    Some(1.0),
                    Some(2.0),
                    Some(1.0),
                    Some(1.0),
                    Some(1.0),
                    Some(1.0),
                ],
            }],
        );
    }

    #[test]
    fn moving_window_alias_capitalized() {
        // Expected values computed by graphite-web 1.1.8 on the same data.
        let got = run("movingWindow(test.web01.cpu,'2min','rangeOf')", 600, 1500);
        check(
            &got,
            &[Want {
                name: "movingRangeof(test.web01.cpu,\"2min\")",
                path: "movingRangeof(test.web01.cpu,\"2min\")",
                start: 660,
                end: 1560,
                step: 60,
                cf: "average",
                xff: 0.0,
                tags: &[("movingRangeof", "2min"), ("name", "test.web01.cpu")],
                values: &[
                    Some(0.5),
                    Some(3.8),
                    Some(7.7),
                    Some(8.8),
                    Some(0.40000000000000013),
                    Some(3.7),
                    Some(0.0),
                    Some(0.0),
                    Some(5.800000000000001),
                    Some(6.800000000000001),
                    Some(1.0),
                    Some(0.7),
                    Some(4.7),
                    Some(1.5999999999999996),
                    Some(1.1000000000000005),
                ],
            }],
        );
    }

    #[test]
    fn moving_average_mixed_steps_uses_largest_step() {
        // Expected values computed by graphite-web 1.1.8 on the same data.
        let got = run("movingAverage(test.{web01,slow}.cpu,2)", 600, 1500);
        check(
            &got,
            &[
                Want {
                    name: "movingAverage(test.slow.cpu,2)",
                    path: "movingAverage(test.slow.cpu,2)",
                    start: 660,
                    end: 1560,
                    step: 300,
                    cf: "average",
                    xff: 0.0,
                    tags: &[("movingAverage", "2"), ("name", "test.slow.cpu")],
                    values: &[Some(110.5), Some(90.25), Some(92.625)],
                },
                Want {
                    name: "movingAverage(test.web01.cpu,2)",
                    path: "movingAverage(test.web01.cpu,2)",
                    start: 660,
                    end: 1560,
                    step: 60,
                    cf: "average",
                    xff: 0.0,
                    tags: &[("movingAverage", "2"), ("name", "test.web01.cpu")],
                    values: &[
                        Some(2.5),
                        Some(4.25),
                        Some(2.175),
                        Some(3.55),
                        Some(5.15),
                        Some(3.3),
                        None,
                        Some(5.5),
                        Some(5.75),
                        Some(4.1),
                        Some(6.050000000000001),
                        Some(5.5),
                        Some(0.9),
                        Some(2.5500000000000003),
                        Some(4.4),
                        Some(3.0),
                        Some(5.9),
                        Some(5.4),
                        Some(1.5),
                        Some(0.65),
                        Some(2.65),
                        Some(5.8),
                        Some(7.15),
                    ],
                },
            ],
        );
    }

    #[test]
    fn moving_average_tagged_series() {
        // Expected values computed by graphite-web 1.1.8 on the same data.
        let got = run("movingAverage(seriesByTag('name=tagged.disk.used'),3)", 600, 1500);
        check(
            &got,
            &[Want {
                name: "movingAverage(tagged.disk.used;dc=dc1;server=web01,3)",
                path: "movingAverage(tagged.disk.used;dc=dc1;server=web01,3)",
                start: 660,
                end: 1560,
                step: 60,
                cf: "average",
                xff: 0.0,
                tags: &[
                    ("dc", "dc1"),
                    ("movingAverage", "3"),
                    ("name", "tagged.disk.used"),
                    ("server", "web01"),
                ],
                values: &[
                    Some(53.166666666666664),
                    Some(51.833333333333336),
                    Some(50.5),
                    Some(50.25),
                    Some(50.0),
                    Some(50.666666666666664),
                    Some(52.0),
                    Some(53.166666666666664),
                    Some(51.833333333333336),
                    Some(49.833333333333336),
                    Some(48.5),
                    Some(49.5),
                    Some(51.0),
                    Some(52.0),
                    Some(53.0),
                ],
            }],
        );
    }

    #[test]
    fn moving_average_zero_window_is_null() {
        // Expected values computed by graphite-web 1.1.8 on the same data.
        let got = run("movingAverage(test.web01.cpu,0)", 600, 1500);
        check(
            &got,
            &[Want {
                name: "movingAverage(test.web01.cpu,0)",
                path: "movingAverage(test.web01.cpu,0)",
                start: 660,
                end: 1560,
                step: 60,
                cf: "average",
                xff: 0.0,
                tags: &[("movingAverage", "0"), ("name", "test.web01.cpu")],
                values: &[
                    None, None, None, None, None, None, None, None, None, None, None, None, None,
                    None, None,
                ],
            }],
        );
    }

    #[test]
    fn moving_average_keyword_window() {
        // Expected values computed by graphite-web 1.1.8 on the same data.
        let got = run("movingAverage(test.web01.cpu,windowSize=2,xFilesFactor=1)", 600, 1500);
        check(
            &got,
            &[Want {
                name: "movingAverage(test.web01.cpu,2)",
                path: "movingAverage(test.web01.cpu,2)",
                start: 660,
                end: 1560,
                step: 60,
                cf: "average",
                xff: 0.0,
                tags: &[("movingAverage", "2"), ("name", "test.web01.cpu")],
                values: &[
                    Some(5.75),
                    Some(4.1),
                    Some(6.050000000000001),
                    Some(5.5),
                    Some(0.9),
                    Some(2.5500000000000003),
                    None,
                    None,
                    Some(5.9),
                    Some(5.4),
                    Some(1.5),
                    Some(0.65),
                    Some(2.65),
                    Some(5.8),
                    Some(7.15),
                ],
            }],
        );
    }

    #[test]
    fn exponential_moving_average_points() {
        // Expected values computed by graphite-web 1.1.8 on the same data.
        let got = run("exponentialMovingAverage(test.web01.cpu,5)", 600, 1500);
        check(
            &got,
            &[Want {
                name: "exponentialMovingAverage(test.web01.cpu,5)",
                path: "exponentialMovingAverage(test.web01.cpu,5)",
                start: 660,
                end: 1560,
                step: 60,
                cf: "average",
                xff: 0.0,
                tags: &[("exponentialMovingAverage", "5"), ("name", "test.web01.cpu")],
                values: &[
                    Some(4.933333),
                    Some(4.022222),
                    Some(5.981481),
                    Some(4.354321),
                    Some(3.136214),
                    Some(3.557476),
                    None,
                    Some(3.371651),
                    Some(5.1811),
                    Some(4.120734),
                    Some(3.080489),
                    Some(2.153659),
                    Some(3.10244),
                    Some(4.268293),
                    Some(5.412195),
                    None,
                ],
            }],
        );
    }

    #[test]
    fn exponential_moving_average_interval() {
        // Expected values computed by graphite-web 1.1.8 on the same data.
        let got = run("exponentialMovingAverage(test.web02.cpu,'3min')", 600, 1500);
        check(
            &got,
            &[Want {
                name: "exponentialMovingAverage(test.web02.cpu,\"3min\")",
                path: "exponentialMovingAverage(test.web02.cpu,\"3min\")",
                start: 660,
                end: 1560,
                step: 60,
                cf: "average",
                xff: 0.0,
                tags: &[("exponentialMovingAverage", "3min"), ("name", "test.web02.cpu")],
                values: &[
                    Some(11.4),
                    Some(11.396685),
                    Some(11.403352),
                    None,
                    Some(11.448618),
                    Some(11.501672),
                    Some(11.485079),
                    Some(11.463145),
                    Some(11.424878),
                    Some(11.375984),
                    Some(11.37183),
                    Some(11.384296),
                    Some(11.410436),
                    Some(11.43905),
                    None,
                    Some(11.414862),
                ],
            }],
        );
    }

    #[test]
    fn exponential_moving_average_nulls() {
        // Expected values computed by graphite-web 1.1.8 on the same data.
        let got = run("exponentialMovingAverage(test.db01.cpu,4)", 600, 1500);
        check(
            &got,
            &[Want {
                name: "exponentialMovingAverage(test.db01.cpu,4)",
                path: "exponentialMovingAverage(test.db01.cpu,4)",
                start: 660,
                end: 1560,
                step: 60,
                cf: "average",
                xff: 0.0,
                tags: &[("exponentialMovingAverage", "4"), ("name", "test.db01.cpu")],
                values: &[
                    Some(8.0),
                    Some(5.4),
                    None,
                    Some(4.24),
                    None,
                    None,
                    None,
                    None,
                    Some(4.144),
                    None,
                    Some(4.8864),
                    None,
                    None,
                    Some(5.73184),
                    None,
                    None,
                ],
            }],
        );
    }

    #[test]
    fn n_percentile_median() {
        // Expected values computed by graphite-web 1.1.8 on the same data.
        let got = run("nPercentile(test.*.cpu,50)", 600, 1500);
        check(
            &got,
            &[
                Want {
                    name: "nPercentile(test.db01.cpu, 50)",
                    path: "nPercentile(test.db01.cpu, 50)",
                    start: 660,
                    end: 1560,
                    step: 60,
                    cf: "average",
                    xff: 0.0,
                    tags: &[("nPercentile", "50.0"), ("name", "test.db01.cpu")],
                    values: &[
                        Some(4.0),
                        Some(4.0),
                        Some(4.0),
                        Some(4.0),
                        Some(4.0),
                        Some(4.0),
                        Some(4.0),
                        Some(4.0),
                        Some(4.0),
                        Some(4.0),
                        Some(4.0),
                        Some(4.0),
                        Some(4.0),
                        Some(4.0),
                        Some(4.0),
                    ],
                },
                Want {
                    name: "nPercentile(test.slow.cpu, 50)",
                    path: "nPercentile(test.slow.cpu, 50)",
                    start: 660,
                    end: 1560,
                    step: 300,
                    cf: "average",
                    xff: 0.0,
                    tags: &[("nPercentile", "50.0"), ("name", "test.slow.cpu")],
                    values: &[Some(95.0), Some(95.0), Some(95.0)],
                },
                Want {
                    name: "nPercentile(test.web01.cpu, 50)",
                    path: "nPercentile(test.web01.cpu, 50)",
                    start: 660,
                    end: 1560,
                    step: 60,
                    cf: "average",
                    xff: 0.0,
                    tags: &[("nPercentile", "50.0"), ("name", "test.web01.cpu")],
                    values: &[
                        Some(3.0),
                        Some(3.0),
                        Some(3.0),
                        Some(3.0),
                        Some(3.0),
                        Some(3.0),
                        Some(3.0),
                        Some(3.0),
                        Some(3.0),
                        Some(3.0),
                        Some(3.0),
                        Some(3.0),
                        Some(3.0),
                        Some(3.0),
                        Some(3.0),
                    ],
                },
                Want {
                    name: "nPercentile(test.web02.cpu, 50)",
                    path: "nPercentile(test.web02.cpu, 50)",
                    start: 660,
                    end: 1560,
                    step: 60,
                    cf: "average",
                    xff: 0.0,
                    tags: &[("nPercentile", "50.0"), ("name", "test.web02.cpu")],
                    values: &[
                        Some(11.1),
                        Some(11.1),
                        Some(11.1),
                        Some(11.1),
                        Some(11.1),
                        Some(11.1),
                        Some(11.1),
                        Some(11.1),
                        Some(11.1),
                        Some(11.1),
                        Some(11.1),
                        Some(11.1),
                        Some(11.1),
                        Some(11.1),
                        Some(11.1),
                    ],
                },
            ],
        );
    }

    #[test]
    fn n_percentile_high() {
        // Expected values computed by graphite-web 1.1.8 on the same data.
        let got = run("nPercentile(test.web01.cpu,95)", 600, 1500);
        check(
            &got,
            &[Want {
                name: "nPercentile(test.web01.cpu, 95)",
                path: "nPercentile(test.web01.cpu, 95)",
                start: 660,
                end: 1560,
                step: 60,
                cf: "average",
                xff: 0.0,
                tags: &[("nPercentile", "95.0"), ("name", "test.web01.cpu")],
                values: &[
                    Some(9.9),
                    Some(9.9),
                    Some(9.9),
                    Some(9.9),
                    Some(9.9),
                    Some(9.9),
                    Some(9.9),
                    Some(9.9),
                    Some(9.9),
                    Some(9.9),
                    Some(9.9),
                    Some(9.9),
                    Some(9.9),
                    Some(9.9),
                    Some(9.9),
                ],
            }],
        );
    }

    #[test]
    fn n_percentile_low_and_fractional() {
        // Expected values computed by graphite-web 1.1.8 on the same data.
        let got = run("nPercentile(test.db01.cpu,5.5)", 600, 1500);
        check(
            &got,
            &[Want {
                name: "nPercentile(test.db01.cpu, 5.5)",
                path: "nPercentile(test.db01.cpu, 5.5)",
                start: 660,
                end: 1560,
                step: 60,
                cf: "average",
                xff: 0.0,
                tags: &[("nPercentile", "5.5"), ("name", "test.db01.cpu")],
                values: &[
                    Some(1.5),
                    Some(1.5),
                    Some(1.5),
                    Some(1.5),
                    Some(1.5),
                    Some(1.5),
                    Some(1.5),
                    Some(1.5),
                    Some(1.5),
                    Some(1.5),
                    Some(1.5),
                    Some(1.5),
                    Some(1.5),
                    Some(1.5),
                    Some(1.5),
                ],
            }],
        );
    }

    #[test]
    fn stdev_window() {
        // Expected values computed by graphite-web 1.1.8 on the same data.
        let got = run("stdev(test.web01.cpu,5)", 600, 1500);
        check(
            &got,
            &[Want {
                name: "stdev(test.web01.cpu,5)",
                path: "stdev(test.web01.cpu,5)",
                start: 660,
                end: 1560,
                step: 60,
                cf: "average",
                xff: 0.0,
                tags: &[("name", "test.web01.cpu"), ("stdev", "5")],
                values: &[
                    Some(0.0),
                    Some(3.8499999999999996),
                    Some(3.9149286924114803),
                    Some(3.74991666574072),
                    Some(3.374374016021341),
                    Some(3.6833239064736074),
                    Some(1.4916433890176284),
                    Some(2.9532820725423425),
                    Some(2.5975950415721063),
                    Some(3.0282007859453435),
                    Some(3.0307754783223375),
                    Some(3.1320280969365517),
                    Some(2.4185946332529547),
                    Some(2.968770789400893),
                    Some(2.8240042492885866),
                ],
            }],
        );
    }

    #[test]
    fn stdev_tolerance() {
        // Expected values computed by graphite-web 1.1.8 on the same data.
        let got = run("stdev(test.db01.cpu,4,0.5)", 600, 1500);
        check(
            &got,
            &[Want {
                name: "stdev(test.db01.cpu,4)",
                path: "stdev(test.db01.cpu,4)",
                start: 660,
                end: 1560,
                step: 60,
                cf: "average",
                xff: 0.0,
                tags: &[("name", "test.db01.cpu"), ("stdev", "4")],
                values: &[
                    None,
                    None,
                    Some(0.5),
                    Some(0.5),
                    None,
                    None,
                    None,
                    None,
                    None,
                    Some(1.0),
                    Some(1.0),
                    None,
                    Some(0.5),
                    None,
                    None,
                ],
            }],
        );
    }

    #[test]
    fn stdev_zero_tolerance() {
        // Expected values computed by graphite-web 1.1.8 on the same data.
        let got = run("stdev(test.web02.cpu,3,0.0)", 600, 1500);
        check(
            &got,
            &[Want {
                name: "stdev(test.web02.cpu,3)",
                path: "stdev(test.web02.cpu,3)",
                start: 660,
                end: 1560,
                step: 60,
                cf: "average",
                xff: 0.0,
                tags: &[("name", "test.web02.cpu"), ("stdev", "3")],
                values: &[
                    Some(0.0),
                    Some(0.44999999999998486),
                    Some(0.44999999999998486),
                    Some(1.75),
                    Some(0.375),
                    Some(2.7863755828834145),
                    Some(3.070920962114713),
                    Some(0.8498365855987974),
                    Some(1.0274023338281626),
                    Some(1.6996731711975948),
                    Some(2.3213980461973533),
                    Some(1.1242281302693369),
                    Some(0.6561673228343176),
                    Some(0.125),
                    Some(2.375),
                ],
            }],
        );
    }

    #[test]
    fn aggregate_line_default_average() {
        // Expected values computed by graphite-web 1.1.8 on the same data.
        let got = run("aggregateLine(test.web01.cpu)", 600, 1500);
        check(
            &got,
            &[Want {
                name: "aggregateLine(test.web01.cpu, 4.05385)",
                path: "aggregateLine(test.web01.cpu, 4.05385)",
                start: 600,
                end: 1500,
                step: 450,
                cf: "average",
                xff: 0.0,
                tags: &[("name", "4.053846153846154")],
                values: &[
                    Some(4.053846153846154),
                    Some(4.053846153846154),
                    Some(4.053846153846154),
                ],
            }],
        );
    }

    #[test]
    fn aggregate_line_max_all() {
        // Expected values computed by graphite-web 1.1.8 on the same data.
        let got = run("aggregateLine(test.*.cpu,'max')", 600, 1500);
        check(
            &got,
            &[
                Want {
                    name: "aggregateLine(test.db01.cpu, 7)",
                    path: "aggregateLine(test.db01.cpu, 7)",
                    start: 600,
                    end: 1500,
                    step: 450,
                    cf: "average",
                    xff: 0.0,
                    tags: &[("name", "7.0")],
                    values: &[Some(7.0), Some(7.0), Some(7.0)],
                },
                Want {
                    name: "aggregateLine(test.slow.cpu, 120)",
                    path: "aggregateLine(test.slow.cpu, 120)",
                    start: 600,
                    end: 1500,
                    step: 450,
                    cf: "average",
                    xff: 0.0,
                    tags: &[("name", "120.0")],
                    values: &[Some(120.0), Some(120.0), Some(120.0)],
                },
                Want {
                    name: "aggregateLine(test.web01.cpu, 9.9)",
                    path: "aggregateLine(test.web01.cpu, 9.9)",
                    start: 600,
                    end: 1500,
                    step: 450,
                    cf: "average",
                    xff: 0.0,
                    tags: &[("name", "9.9")],
                    values: &[Some(9.9), Some(9.9), Some(9.9)],
                },
                Want {
                    name: "aggregateLine(test.web02.cpu, 16.25)",
                    path: "aggregateLine(test.web02.cpu, 16.25)",
                    start: 600,
                    end: 1500,
                    step: 450,
                    cf: "average",
                    xff: 0.0,
                    tags: &[("name", "16.25")],
                    values: &[Some(16.25), Some(16.25), Some(16.25)],
                },
            ],
        );
    }

    #[test]
    fn aggregate_line_count_keep_step() {
        // Expected values computed by graphite-web 1.1.8 on the same data.
        let got = run("aggregateLine(test.web01.cpu,'count',true)", 600, 1500);
        check(
            &got,
            &[Want {
                name: "aggregateLine(test.web01.cpu, 13)",
                path: "aggregateLine(test.web01.cpu, 13)",
                start: 660,
                end: 1560,
                step: 60,
                cf: "average",
                xff: 0.0,
                tags: &[("name", "test.web01.cpu")],
                values: &[
                    Some(13.0),
                    Some(13.0),
                    Some(13.0),
                    Some(13.0),
                    Some(13.0),
                    Some(13.0),
                    Some(13.0),
                    Some(13.0),
                    Some(13.0),
                    Some(13.0),
                    Some(13.0),
                    Some(13.0),
                    Some(13.0),
                    Some(13.0),
                    Some(13.0),
                ],
            }],
        );
    }

    #[test]
    fn aggregate_line_count_constant() {
        // Expected values computed by graphite-web 1.1.8 on the same data.
        let got = run("aggregateLine(test.db01.cpu,'count')", 600, 1500);
        check(
            &got,
            &[Want {
                name: "aggregateLine(test.db01.cpu, 5)",
                path: "aggregateLine(test.db01.cpu, 5)",
                start: 600,
                end: 1500,
                step: 450,
                cf: "average",
                xff: 0.0,
                tags: &[("name", "5")],
                values: &[Some(5.0), Some(5.0), Some(5.0)],
            }],
        );
    }

    #[test]
    fn aggregate_line_all_null_is_none() {
        // Expected values computed by graphite-web 1.1.8 on the same data.
        let got = run("aggregateLine(test.db01.cpu)", 780, 1020);
        check(
            &got,
            &[Want {
                name: "aggregateLine(test.db01.cpu, None)",
                path: "aggregateLine(test.db01.cpu, None)",
                start: 780,
                end: 1020,
                step: 120,
                cf: "average",
                xff: 0.0,
                tags: &[("name", "None")],
                values: &[None, None, None],
            }],
        );
    }

    #[test]
    fn identity_is_the_timestamp() {
        // Expected values computed by graphite-web 1.1.8 on the same data.
        let got = run("identity('the.time')", 600, 1500);
        check(
            &got,
            &[Want {
                name: "the.time",
                path: "identity(\"the.time\")",
                start: 600,
                end: 1500,
                step: 60,
                cf: "average",
                xff: 0.0,
                tags: &[("name", "the.time")],
                values: &[
                    Some(1700000640.0),
                    Some(1700000700.0),
                    Some(1700000760.0),
                    Some(1700000820.0),
                    Some(1700000880.0),
                    Some(1700000940.0),
                    Some(1700001000.0),
                    Some(1700001060.0),
                    Some(1700001120.0),
                    Some(1700001180.0),
                    Some(1700001240.0),
                    Some(1700001300.0),
                    Some(1700001360.0),
                    Some(1700001420.0),
                    Some(1700001480.0),
                ],
            }],
        );
    }

    #[test]
    fn linear_regression_default_range() {
        // Expected values computed by graphite-web 1.1.8 on the same data.
        let got = run("linearRegression(test.web01.cpu)", 600, 1500);
        check(
            &got,
            &[Want {
                name: "linearRegression(test.web01.cpu, 1700000640, 1700001540)",
                path: "linearRegression(test.web01.cpu, 1700000640, 1700001540)",
                start: 660,
                end: 1560,
                step: 60,
                cf: "average",
                xff: 0.0,
                tags: &[
                    ("linearRegressions", "1700000640, 1700001540"),
                    ("name", "test.web01.cpu"),
                ],
                values: &[
                    Some(3.317019822075963),
                    Some(3.428400546312332),
                    Some(3.5397812710143626),
                    Some(3.651161995716393),
                    Some(3.762542719952762),
                    Some(3.8739234446547925),
                    Some(3.985304169356823),
                    Some(4.096684893593192),
                    Some(4.2080656182952225),
                    Some(4.319446342997253),
                    Some(4.430827067233622),
                    Some(4.5422077919356525),
                    Some(4.653588516637683),
                    Some(4.764969240874052),
                    Some(4.8763499655760825),
                ],
            }],
        );
    }

    #[test]
    fn linear_regression_source_range() {
        // Expected values computed by graphite-web 1.1.8 on the same data.
        let got = run("linearRegression(test.*.cpu,'1700000340','1700001240')", 600, 1500);
        check(
            &got,
            &[
                Want {
                    name: "linearRegression(test.db01.cpu, 1700000340, 1700001240)",
                    path: "linearRegression(test.db01.cpu, 1700000340, 1700001240)",
                    start: 660,
                    end: 1560,
                    step: 60,
                    cf: "average",
                    xff: 0.0,
                    tags: &[
                        ("linearRegressions", "1700000340, 1700001240"),
                        ("name", "test.db01.cpu"),
                    ],
                    values: &[
                        Some(4.566787003772333),
                        Some(4.507220216561109),
                        Some(4.447653429582715),
                        Some(4.388086642604321),
                        Some(4.3285198556259274),
                        Some(4.268953068647534),
                        Some(4.20938628166914),
                        Some(4.149819494690746),
                        Some(4.090252707712352),
                        Some(4.0306859207339585),
                        Some(3.971119133522734),
                        Some(3.9115523465443403),
                        Some(3.8519855595659465),
                        Some(3.7924187725875527),
                        Some(3.732851985609159),
                    ],
                },
                Want {
                    name: "linearRegression(test.slow.cpu, 1700000340, 1700001240)",
                    path: "linearRegression(test.slow.cpu, 1700000340, 1700001240)",
                    start: 660,
                    end: 1560,
                    step: 300,
                    cf: "average",
                    xff: 0.0,
                    tags: &[
                        ("linearRegressions", "1700000340, 1700001240"),
                        ("name", "test.slow.cpu"),
                    ],
                    values: &[Some(90.25), Some(95.0), Some(99.75)],
                },
                Want {
                    name: "linearRegression(test.web01.cpu, 1700000340, 1700001240)",
                    path: "linearRegression(test.web01.cpu, 1700000340, 1700001240)",
                    start: 660,
                    end: 1560,
                    step: 60,
                    cf: "average",
                    xff: 0.0,
                    tags: &[
                        ("linearRegressions", "1700000340, 1700001240"),
                        ("name", "test.web01.cpu"),
                    ],
                    values: &[
                        Some(4.315228012856096),
                        Some(4.193892508279532),
                        Some(4.072557003237307),
                        Some(3.951221498195082),
                        Some(3.829885993618518),
                        Some(3.708550488576293),
                        Some(3.587214983534068),
                        Some(3.465879478957504),
                        Some(3.344543973915279),
                        Some(3.223208468873054),
                        Some(3.10187296429649),
                        Some(2.980537459254265),
                        Some(2.8592019542120397),
                        Some(2.737866449635476),
                        Some(2.6165309445932508),
                    ],
                },
                Want {
                    name: "linearRegression(test.web02.cpu, 1700000340, 1700001240)",
                    path: "linearRegression(test.web02.cpu, 1700000340, 1700001240)",
                    start: 660,
                    end: 1560,
                    step: 60,
                    cf: "average",
                    xff: 0.0,
                    tags: &[
                        ("linearRegressions", "1700000340, 1700001240"),
                        ("name", "test.web02.cpu"),
                    ],
                    values: &[
                        Some(11.324642856605351),
                        Some(11.208749999757856),
                        Some(11.0928571424447),
                        Some(10.976964285131544),
                        Some(10.861071428284049),
                        Some(10.745178570970893),
                        Some(10.629285714123398),
                        Some(10.513392856810242),
                        Some(10.397499999497086),
                        Some(10.281607142649591),
                        Some(10.165714285336435),
                        Some(10.049821428023279),
                        Some(9.933928571175784),
                        Some(9.818035713862628),
                        Some(9.702142856549472),
                    ],
                },
            ],
        );
    }

    #[test]
    fn holt_winters_forecast() {
        // Expected values computed by graphite-web 1.1.8 on the same data.
        let got = run("holtWintersForecast(test.web01.cpu,'10min','5min')", 600, 1500);
        check(
            &got,
            &[Want {
                name: "holtWintersForecast(test.web01.cpu)",
                path: "holtWintersForecast(test.web01.cpu)",
                start: 660,
                end: 1560,
                step: 60,
                cf: "average",
                xff: 0.0,
                tags: &[
                    ("holtWintersDeviation", "1"),
                    ("holtWintersForecast", "1"),
                    ("name", "test.web01.cpu"),
                ],
                values: &[
                    Some(5.47894107773875),
                    Some(5.226578569833917),
                    Some(5.694601644466375),
                    Some(4.894329301060025),
                    Some(5.113345371238937),
                    Some(4.366815711769789),
                    None,
                    Some(2.5442778463514815),
                    Some(2.8680318626016317),
                    Some(3.737099903352182),
                    Some(3.227412295789111),
                    Some(3.317180180897919),
                    Some(3.2525546799977203),
                    Some(2.6438173537978096),
                    Some(3.938638399216351),
                ],
            }],
        );
    }

    #[test]
    fn holt_winters_forecast_default_bootstrap() {
        // Expected values computed by graphite-web 1.1.8 on the same data.
        let got = run("holtWintersForecast(test.web02.cpu)", 600, 1500);
        check(
            &got,
            &[Want {
                name: "holtWintersForecast(test.web02.cpu)",
                path: "holtWintersForecast(test.web02.cpu)",
                start: 660,
                end: 1560,
                step: 60,
                cf: "average",
                xff: 0.0,
                tags: &[
                    ("holtWintersDeviation", "1"),
                    ("holtWintersForecast", "1"),
                    ("name", "test.web02.cpu"),
                ],
                values: &[
                    Some(9.095621143120203),
                    Some(9.301418733519458),
                    Some(9.577581068322056),
                    None,
                    Some(15.500000000000002),
                    Some(15.575262500000001),
                    Some(15.016047408125),
                    Some(14.460823208844657),
                    Some(13.808860141369252),
                    Some(13.119710279591908),
                    Some(12.898733505394441),
                    Some(12.849714851889832),
                    Some(12.930913163537523),
                    Some(13.029365824413208),
                    None,
                ],
            }],
        );
    }

    #[test]
    fn holt_winters_confidence_bands() {
        // Expected values computed by graphite-web 1.1.8 on the same data.
        let got = run("holtWintersConfidenceBands(test.web02.cpu,2,'10min','5min')", 600, 1500);
        check(
            &got,
            &[
                Want {
                    name: "holtWintersConfidenceLower(test.web02.cpu)",
                    path: "test.web02.cpu",
                    start: 660,
                    end: 1560,
                    step: 60,
                    cf: "average",
                    xff: 0.0,
                    tags: &[
                        ("holtWintersConfidenceLower", "1"),
                        ("holtWintersConfidenceUpper", "1"),
                        ("holtWintersDeviation", "1"),
                        ("holtWintersForecast", "1"),
                        ("name", "test.web02.cpu"),
                    ],
                    values: &[
                        Some(7.344096531367747),
                        Some(8.388116940091738),
                        Some(9.867926456261918),
                        None,
                        Some(15.301702804822842),
                        Some(12.99414518622767),
                        Some(13.148400704148195),
                        Some(13.099121034032013),
                        Some(8.847178547376052),
                        Some(12.498560064281467),
                        Some(10.002704155556252),
                        Some(10.514904372475172),
                        Some(10.831507359193242),
                        Some(12.35095041644023),
                        None,
                    ],
                },
                Want {
                    name: "holtWintersConfidenceUpper(test.web02.cpu)",
                    path: "test.web02.cpu",
                    start: 660,
                    end: 1560,
                    step: 60,
                    cf: "average",
                    xff: 0.0,
                    tags: &[
                        ("holtWintersConfidenceLower", "1"),
                        ("holtWintersConfidenceUpper", "1"),
                        ("holtWintersDeviation", "1"),
                        ("holtWintersForecast", "1"),
                        ("name", "test.web02.cpu"),
                    ],
                    values: &[
                        Some(10.921064354245164),
                        Some(11.34932796006116),
                        Some(9.867926456261918),
                        None,
                        Some(15.875203873848285),
                        Some(18.5153065800786),
                        Some(18.30396345368789),
                        Some(15.648681551048018),
                        Some(18.409814045869737),
                        Some(13.893028799075822),
                        Some(14.976007149092364),
                        Some(15.459941643804886),
                        Some(13.799841960557501),
                        Some(12.35095041644023),
                        None,
                    ],
                },
            ],
        );
    }

    #[test]
    fn holt_winters_aberration() {
        // Expected values computed by graphite-web 1.1.8 on the same data.
        let got = run("holtWintersAberration(test.web01.cpu,1,'10min','5min')", 600, 1500);
        check(
            &got,
            &[Want {
                name: "holtWintersAberration(test.web01.cpu)",
                path: "holtWintersAberration(test.web01.cpu)",
                start: 660,
                end: 1560,
                step: 60,
                cf: "average",
                xff: 0.0,
                tags: &[("holtWintersAberration", "1"), ("name", "test.web01.cpu")],
                values: &[
                    Some(-2.8745606042111254),
                    Some(4.206079287149475),
                    Some(-4.135141480019737),
                    Some(-2.943746370954022),
                    Some(-0.3695497121150435),
                    Some(0.0),
                    Some(0.0),
                    Some(5.2166357902816936),
                    Some(0.0),
                    Some(-2.1539738198054597),
                    Some(-2.6346710662102),
                    Some(0.8659907013484203),
                    Some(2.0775230609719078),
                    Some(3.459469340561962),
                    Some(0.0),
                ],
            }],
        );
    }

    #[test]
    fn holt_winters_confidence_area() {
        // Expected values computed by graphite-web 1.1.8 on the same data.
        let got = run("holtWintersConfidenceArea(test.db01.cpu,3,'10min','4min')", 600, 1500);
        check(
            &got,
            &[
                Want {
                    name: "holtWintersConfidenceArea(test.db01.cpu)",
                    path: "holtWintersConfidenceArea(test.db01.cpu)",
                    start: 660,
                    end: 1560,
                    step: 60,
                    cf: "average",
                    xff: 0.0,
                    tags: &[
                        ("holtWintersConfidenceArea", "1"),
                        ("holtWintersConfidenceLower", "1"),
                        ("holtWintersConfidenceUpper", "1"),
                        ("holtWintersDeviation", "1"),
                        ("holtWintersForecast", "1"),
                        ("name", "test.db01.cpu"),
                    ],
                    values: &[
                        None,
                        Some(1.5),
                        None,
                        Some(2.5),
                        None,
                        None,
                        None,
                        None,
                        Some(4.0),
                        None,
                        Some(6.0),
                        None,
                        None,
                        Some(7.0),
                        None,
                    ],
                },
                Want {
                    name: "holtWintersConfidenceArea(test.db01.cpu)",
                    path: "holtWintersConfidenceArea(test.db01.cpu)",
                    start: 660,
                    end: 1560,
                    step: 60,
                    cf: "average",
                    xff: 0.0,
                    tags: &[
                        ("holtWintersConfidenceArea", "1"),
                        ("holtWintersConfidenceLower", "1"),
                        ("holtWintersConfidenceUpper", "1"),
                        ("holtWintersDeviation", "1"),
                        ("holtWintersForecast", "1"),
                        ("name", "test.db01.cpu"),
                    ],
                    values: &[
                        None,
                        Some(1.5),
                        None,
                        Some(2.5),
                        None,
                        None,
                        None,
                        None,
                        Some(4.0),
                        None,
                        Some(6.0),
                        None,
                        None,
                        Some(7.0),
                        None,
                    ],
                },
            ],
        );
    }

    #[test]
    fn offsets_parse_like_parse_time_offset() {
        // graphite-web 1.1.8's parseTimeOffset: seconds + days * 86400.
        for (text, want) in [
            ("5min", 300),
            ("-1d", -86_400),
            ("1mon", 2_592_000),
            ("1y", 31_536_000),
            ("2w", 1_209_600),
            ("1h30min", 5_400),
            ("+10s", 10),
            ("3minutes", 180),
            ("1hour", 3_600),
            ("", 0),
        ] {
            assert_eq!(offset_seconds(text).unwrap(), want, "{text}");
        }
        // ValueError / KeyError in graphite-web.
        for text in
            ["5m", "min", "5", "x5min", "5 min", "99999999999999999999s", "9223372036854775807y"]
        {
            assert!(matches!(offset_seconds(text), Err(Error::InvalidArgument(_))), "{text}");
        }
    }

    #[test]
    fn percentile_follows_nearest_rank_and_python_indexing() {
        // graphite-web 1.1.8's _getPercentile([1, 2, 3, 4, 5], n).
        let pts = [1.0, 2.0, 3.0, 4.0, 5.0];
        for (n, want) in [(50.0, 3.0), (95.0, 5.0), (5.0, 1.0), (-10.0, 1.0), (-50.0, 2.0)] {
            assert_eq!(percentile(&pts, n, "nPercentile").unwrap(), want, "{n}");
        }
        // IndexError in graphite-web.
        for n in [-100.0, -150.0, 120.0, 100.0 / 6.0 * 7.0, f64::INFINITY, f64::NAN] {
            assert!(percentile(&pts, n, "nPercentile").is_err(), "{n}");
        }
    }

    #[test]
    fn agg_func_options_are_every_name_sorted() {
        let mut names = crate::aggfunc::AGG_FUNC_NAMES.to_vec();
        names.sort_unstable();
        assert_eq!(AGG_FUNC_OPTIONS, names.as_slice());
    }

    #[test]
    fn round6_is_pythons_round() {
        // round(x, 6) in Python 3.11.
        for (x, want) in
            [(0.0078125, 0.007812), (1.0000005, 1.000001), (2.675, 2.675), (-0.1234565, -0.123456)]
        {
            assert_eq!(round6(x), want, "{x}");
        }
    }

    #[test]
    fn signatures_match_graphite_web() {
        for (name, want) in [
            (
                "movingWindow",
                "movingWindow(seriesList, windowSize, func='average', xFilesFactor=None)",
            ),
            ("movingAverage", "movingAverage(seriesList, windowSize, xFilesFactor=None)"),
            ("aggregateLine", "aggregateLine(seriesList, func='average', keepStep=False)"),
            ("stdev", "stdev(seriesList, points, windowTolerance=0.1)"),
            (
                "holtWintersConfidenceBands",
                "holtWintersConfidenceBands(seriesList, delta=3, bootstrapInterval='7d', seasonality='1d')",
            ),
            (
                "linearRegression",
                "linearRegression(seriesList, startSourceAt=None, endSourceAt=None)",
            ),
            ("identity", "identity(name)"),
        ] {
            let def = crate::function::lookup(name).unwrap();
            assert_eq!((def.signature().as_str(), def.group), (want, "Calculate"));
        }
    }

    #[test]
    fn empty_inputs_give_empty_results() {
        for target in [
            "movingAverage(nonexistent.metric,5)",
            "movingWindow(nonexistent.metric,'5min','sum')",
            "exponentialMovingAverage(nonexistent.metric,5)",
            "nPercentile(nonexistent.metric,50)",
            "stdev(nonexistent.metric,5)",
            "aggregateLine(nonexistent.metric)",
            "linearRegression(nonexistent.metric)",
            "holtWintersForecast(nonexistent.metric)",
            "holtWintersConfidenceBands(nonexistent.metric)",
            "holtWintersAberration(nonexistent.metric)",
        ] {
            assert!(run(target, 600, 1500).is_empty(), "{target}");
        }
        // No series with data: nPercentile skips it, linearRegression cannot fit it.
        assert!(run("nPercentile(test.db01.cpu,50)", 780, 1020).is_empty());
        assert!(run("linearRegression(test.db01.cpu)", 780, 1020).is_empty());
    }

    #[test]
    fn bad_arguments_are_invalid_argument_errors() {
        for target in [
            "movingAverage(test.web01.cpu,-1)",
            "movingAverage(test.web01.cpu,'5')",
            "movingAverage(test.web01.cpu,'5m')",
            "movingAverage(test.web01.cpu,true)",
            "movingAverage(test.web01.cpu)",
            "movingWindow(test.web01.cpu,5,'bogus')",
            "movingWindow(test.web01.cpu,5,'sumSeries')",
            "movingSum(test.web01.cpu,99999999999999999)",
            "exponentialMovingAverage(test.web01.cpu,-3)",
            "nPercentile(test.web01.cpu,0)",
            "nPercentile(test.web01.cpu,150)",
            "stdev(test.web01.cpu,-1)",
            "stdev(test.web01.cpu,2.5)",
            "aggregateLine(test.web01.cpu,'bogus')",
            "holtWintersForecast(test.web01.cpu,'10min','1min')",
            "holtWintersForecast(test.web01.cpu,'10')",
            "holtWintersConfidenceArea(test.web0*.cpu,3,'10min','5min')",
            "identity(test.web01.cpu)",
        ] {
            assert!(
                matches!(run_err(target, 600, 1500), Error::InvalidArgument(_)),
                "{target}: {:?}",
                testutil::try_eval(&data(), target, T0 + 600, T0 + 1500).map(|s| s.len())
            );
        }
    }

    #[test]
    fn moving_window_consumes_the_refetched_data_not_the_requested() {
        // The first output point averages the 3 points before `from`, which the requested
        // evaluation never fetched.
        let got = run("movingSum(test.web01.cpu,3)", 600, 1500);
        // Raw points 8, 9, 10 (null, 5.5, 6.0) precede the first point of (600, 1500].
        assert_eq!(got[0].values[0], Some(5.5 + 6.0));
        assert_eq!(got[0].start, T0 + 660);
    }

    #[test]
    fn extreme_intervals_are_errors_not_overflows() {
        for target in [
            "movingAverage(test.web01.cpu,'-9223372036854775807s1s')",
            "movingAverage(test.web01.cpu,'9223372036854775807s')",
            "exponentialMovingAverage(test.web01.cpu,'300000000y')",
            "holtWintersForecast(test.web01.cpu,'-9223372036854775807s1s')",
        ] {
            assert!(matches!(run_err(target, 600, 1500), Error::InvalidArgument(_)), "{target}");
        }
    }
}
