//! The Filter Series and Filter Data families: functions that keep or drop whole series by a
//! summary of their values or by name (`highestMax`, `currentAbove`, `exclude`, `limit`, ...),
//! and functions that null out single values (`removeBelowValue`, `removeAbovePercentile`,
//! ...).
//!
//! Summaries are computed the way graphite-web iterates a series: over its consolidated values
//! ([`Series::consolidated`]), with nulls skipped by the aggregation functions. Where
//! graphite-web 1.1.8 crashes on Python 3 (comparing `None` with a number in the percentile
//! filters and `useSeriesAbove`), the same inputs give an [`Error::Evaluation`] (HTTP 500, as
//! graphite-web answers) with a message saying why, rather than a made-up answer.

use crate::aggfunc::AggFunc;
use crate::error::{Error, Result};
use crate::expr::{Arg, Expr, Literal};
use crate::function::{Args, Default, FunctionDef, Param, ParamType, SERIES_LIST};
use crate::functions::alias::{AGG_FUNC_OPTIONS, PyRegex, py_index};
use crate::pyfmt;
use crate::series::Series;

const N_FLOAT: &[Param] = &[SERIES_LIST, Param::new("n", ParamType::Float).required()];
const N_INTEGER: &[Param] = &[SERIES_LIST, Param::new("n", ParamType::Integer).required()];
const PATTERN: &[Param] = &[SERIES_LIST, Param::new("pattern", ParamType::String).required()];
const N_FUNC: &[Param] = &[
    SERIES_LIST,
    Param::new("n", ParamType::Integer).required().fallback(Default::Int(1)),
    Param::new("func", ParamType::AggFunc)
        .default(Default::Str("average"))
        .options(AGG_FUNC_OPTIONS),
];

/// The operators `filterSeries` accepts, sorted as graphite-web lists them.
const OPERATORS: &[&str] = &["!=", "<", "<=", "=", ">", ">="];

const fn series_def(
    name: &'static str,
    description: &'static str,
    params: &'static [Param],
    call: crate::function::FunctionImpl,
) -> FunctionDef {
    FunctionDef { name, group: "Filter Series", description, params, aggregator: false, call }
}

const fn data_def(
    name: &'static str,
    description: &'static str,
    call: crate::function::FunctionImpl,
) -> FunctionDef {
    FunctionDef {
        name,
        group: "Filter Data",
        description,
        params: N_FLOAT,
        aggregator: false,
        call,
    }
}

/// The functions this family defines.
pub(crate) const FUNCTIONS: &[FunctionDef] = &[
    series_def(
        "averageAbove",
        "Keeps the series whose average over the time range is above `n`.\n\n\
         ```\n&target=averageAbove(server*.instance*.threads.busy,25)\n```",
        N_FLOAT,
        average_above,
    ),
    series_def(
        "averageBelow",
        "Keeps the series whose average over the time range is at most `n` (series without \
         any value are kept too).\n\n\
         ```\n&target=averageBelow(server*.instance*.threads.busy,25)\n```",
        N_FLOAT,
        average_below,
    ),
    series_def(
        "averageOutsidePercentile",
        "Drops the series whose average lies strictly inside the band between the `100-n`th \
         and `n`th percentiles of all the series' averages (`n` below 50 is mirrored).",
        N_FLOAT,
        average_outside_percentile,
    ),
    series_def(
        "currentAbove",
        "Keeps the series whose last non-null value is above `n`.\n\n\
         ```\n&target=currentAbove(server*.instance*.threads.busy,50)\n```",
        N_FLOAT,
        current_above,
    ),
    series_def(
        "currentBelow",
        "Keeps the series whose last non-null value is at most `n` (series without any value \
         are kept too).\n\n\
         ```\n&target=currentBelow(server*.instance*.threads.busy,3)\n```",
        N_FLOAT,
        current_below,
    ),
    series_def(
        "exclude",
        "Drops the series whose name matches the regular expression `pattern` anywhere.\n\n\
         ```\n&target=exclude(servers*.instance*.threads.busy,\"server02\")\n```",
        PATTERN,
        exclude,
    ),
    series_def(
        "filterSeries",
        "Keeps the series for which `func(series) operator threshold` holds, with `func` an \
         aggregation function and `operator` one of `=`, `!=`, `>`, `>=`, `<`, `<=`. A series \
         whose aggregate is empty passes `!=`, `<` and `<=` only.\n\n\
         ```\n&target=filterSeries(system.interface.eth*.packetsSent, 'max', '>', 1000)\n```",
        &[
            SERIES_LIST,
            Param::new("func", ParamType::AggFunc).required().options(AGG_FUNC_OPTIONS),
            Param::new("operator", ParamType::String).required().options(OPERATORS),
            Param::new("threshold", ParamType::Float).required(),
        ],
        filter_series,
    ),
    series_def(
        "grep",
        "Keeps only the series whose name matches the regular expression `pattern` \
         anywhere.\n\n\
         ```\n&target=grep(servers*.instance*.threads.busy,\"server02\")\n```",
        PATTERN,
        grep,
    ),
    series_def(
        "highest",
        "Keeps the `n` series with the largest value of the aggregation function `func` \
         (`average` by default), largest first.\n\n\
         ```\n&target=highest(server*.instance*.threads.busy,5,'max')\n```",
        N_FUNC,
        highest,
    ),
    series_def(
        "highestAverage",
        "Keeps the `n` series with the highest average, highest first (`highest` with \
         `average`).\n\n```\n&target=highestAverage(server*.instance*.threads.busy,5)\n```",
        N_INTEGER,
        highest_average,
    ),
    series_def(
        "highestCurrent",
        "Keeps the `n` series with the highest last value, highest first (`highest` with \
         `current`).\n\n```\n&target=highestCurrent(server*.instance*.threads.busy,5)\n```",
        N_INTEGER,
        highest_current,
    ),
    series_def(
        "highestMax",
        "Keeps the `n` series with the highest peak, highest first (`highest` with `max`).\n\n\
         ```\n&target=highestMax(server*.instance*.threads.busy,5)\n```",
        N_INTEGER,
        highest_max,
    ),
    series_def(
        "limit",
        "Keeps the first `n` series of the list.\n\n\
         ```\n&target=limit(server*.instance*.memory.free,5)\n```",
        N_INTEGER,
        limit,
    ),
    series_def(
        "lowest",
        "Keeps the `n` series with the smallest value of the aggregation function `func` \
         (`average` by default), smallest first.\n\n\
         ```\n&target=lowest(server*.instance*.threads.busy,5,'min')\n```",
        N_FUNC,
        lowest,
    ),
    series_def(
        "lowestAverage",
        "Keeps the `n` series with the lowest average, lowest first (`lowest` with \
         `average`).\n\n```\n&target=lowestAverage(server*.instance*.threads.busy,5)\n```",
        N_INTEGER,
        lowest_average,
    ),
    series_def(
        "lowestCurrent",
        "Keeps the `n` series with the lowest last value, lowest first (`lowest` with \
         `current`).\n\n```\n&target=lowestCurrent(server*.instance*.threads.busy,5)\n```",
        N_INTEGER,
        lowest_current,
    ),
    series_def(
        "maximumAbove",
        "Keeps the series whose maximum is above `n`.\n\n\
         ```\n&target=maximumAbove(system.interface.eth*.packetsSent,1000)\n```",
        N_FLOAT,
        maximum_above,
    ),
    series_def(
        "maximumBelow",
        "Keeps the series whose maximum is at most `n` (series without any value are kept \
         too).\n\n```\n&target=maximumBelow(system.interface.eth*.packetsSent,1000)\n```",
        N_FLOAT,
        maximum_below,
    ),
    series_def(
        "minimumAbove",
        "Keeps the series whose minimum is above `n`.\n\n\
         ```\n&target=minimumAbove(system.interface.eth*.packetsSent,1000)\n```",
        N_FLOAT,
        minimum_above,
    ),
    series_def(
        "minimumBelow",
        "Keeps the series whose minimum is at most `n` (series without any value are kept \
         too).\n\n```\n&target=minimumBelow(system.interface.eth*.packetsSent,1000)\n```",
        N_FLOAT,
        minimum_below,
    ),
    series_def(
        "mostDeviant",
        "Keeps the `n` series with the largest variance around their own mean, most deviant \
         first; series without values are dropped.\n\n\
         ```\n&target=mostDeviant(server*.instance*.memory.free, 5)\n```",
        N_INTEGER,
        most_deviant,
    ),
    series_def(
        "removeBetweenPercentile",
        "Keeps only the series that, at some point in time, lie outside the band between the \
         `100-n`th and `n`th percentiles of all series' values at that time.",
        N_FLOAT,
        remove_between_percentile,
    ),
    series_def(
        "removeEmptySeries",
        "Drops the series without enough values: the share of non-null values must reach \
         `xFilesFactor` (default 0, which drops only the series with no value at all).\n\n\
         ```\n&target=removeEmptySeries(server*.instance*.threads.busy)\n```",
        &[SERIES_LIST, Param::new("xFilesFactor", ParamType::Float)],
        remove_empty_series,
    ),
    series_def(
        "unique",
        "Merges series lists, keeping only the first series of each name.\n\n\
         ```\n&target=unique(mostDeviant(server.*.disk_free,5),lowestCurrent(server.*.disk_free,5))\n```",
        &[Param::new("seriesLists", ParamType::SeriesList).required().multiple()],
        unique,
    ),
    series_def(
        "useSeriesAbove",
        "For each series whose maximum is above `value`, rewrites its name with the regular \
         expression `search`/`replace` and returns the series that name fetches instead.\n\n\
         ```\n&target=useSeriesAbove(ganglia.metric1.reqs,10,\"reqs\",\"time\")\n```",
        &[
            SERIES_LIST,
            Param::new("value", ParamType::Float).required(),
            Param::new("search", ParamType::String).required(),
            Param::new("replace", ParamType::String).required(),
        ],
        use_series_above,
    ),
    data_def(
        "removeAbovePercentile",
        "Sets to null every value above the series' own `n`th percentile.",
        remove_above_percentile,
    ),
    data_def("removeAboveValue", "Sets to null every value above `n`.", remove_above_value),
    data_def(
        "removeBelowPercentile",
        "Sets to null every value below the series' own `n`th percentile.",
        remove_below_percentile,
    ),
    data_def("removeBelowValue", "Sets to null every value below `n`.", remove_below_value),
];

/// An aggregation function applied to a whole series as graphite-web does: over the values as
/// iterated (consolidated). `avg_zero` divides by the raw length, as Python's `len(series)`.
pub(crate) fn series_agg(func: AggFunc, s: &Series) -> Option<f64> {
    let values = s.consolidated();
    match func {
        AggFunc::AvgZero => {
            if s.values.is_empty() {
                return None;
            }
            let sum = values.iter().fold(0.0, |acc, v| acc + v.unwrap_or(0.0));
            Some(sum / s.values.len() as f64)
        }
        _ => func.apply(&values),
    }
}

/// Reads an `aggFunc` argument the way graphite-web's `getAggFunc` does (no `Series` suffix).
///
/// # Errors
///
/// An unknown name.
pub(crate) fn agg_func_arg(args: &Args<'_, '_>, i: usize) -> Result<AggFunc> {
    let name = args.string(i)?;
    AggFunc::parse(&name)
        .ok_or_else(|| Error::arg(format!("Unsupported aggregation function: {name}")))
}

/// graphite-web's sort key (`keyFunc`): a missing aggregate sorts as -inf.
pub(crate) fn sort_key(v: Option<f64>) -> f64 {
    match v {
        None => f64::NEG_INFINITY,
        // A canonical NaN keeps the order total; Python's order for NaN is arbitrary anyway.
        Some(x) if x.is_nan() => f64::NAN,
        // -0.0 and 0.0 compare equal in Python, so they must tie here (stable order).
        Some(x) => x + 0.0,
    }
}

/// Sorts `list` by `key` as Python's stable `list.sort(key=..., reverse=...)`: equal keys keep
/// their order in both directions.
pub(crate) fn sort_by_key(
    list: Vec<Series>,
    key: impl Fn(&Series) -> f64,
    reverse: bool,
) -> Vec<Series> {
    sort_keyed(list.into_iter().map(|s| (key(&s), s)).collect(), reverse)
}

/// Sorts items by precomputed keys (from [`sort_key`]), stably, as [`sort_by_key`] does.
pub(crate) fn sort_keyed<T>(mut keyed: Vec<(f64, T)>, reverse: bool) -> Vec<T> {
    keyed.sort_by(|(a, _), (b, _)| {
        let ord = a.total_cmp(b);
        if reverse { ord.reverse() } else { ord }
    });
    keyed.into_iter().map(|(_, item)| item).collect()
}

/// Python's `list[:n]`: a negative `n` drops that many from the end.
pub(crate) fn py_head<T>(mut list: Vec<T>, n: i64) -> Vec<T> {
    let len = list.len() as i64;
    let keep = if n < 0 { (len + n).max(0) } else { n.min(len) };
    list.truncate(usize::try_from(keep).unwrap_or(0));
    list
}

/// A comparison `filterSeries` applies; a null aggregate counts as true for `!=`, `<`, `<=`.
#[derive(Clone, Copy)]
enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

impl Op {
    fn parse(text: &str) -> Option<Op> {
        Some(match text {
            "=" => Op::Eq,
            "!=" => Op::Ne,
            ">" => Op::Gt,
            ">=" => Op::Ge,
            "<" => Op::Lt,
            "<=" => Op::Le,
            _ => return None,
        })
    }

    fn holds(self, value: Option<f64>, threshold: f64) -> bool {
        match (self, value) {
            (Op::Ne | Op::Lt | Op::Le, None) => true,
            (_, None) => false,
            (Op::Eq, Some(v)) => v == threshold,
            (Op::Ne, Some(v)) => v != threshold,
            (Op::Gt, Some(v)) => v > threshold,
            (Op::Ge, Some(v)) => v >= threshold,
            (Op::Lt, Some(v)) => v < threshold,
            (Op::Le, Some(v)) => v <= threshold,
        }
    }
}

fn keep_where(list: Vec<Series>, func: AggFunc, op: Op, threshold: f64) -> Vec<Series> {
    list.into_iter().filter(|s| op.holds(series_agg(func, s), threshold)).collect()
}

fn filter_with(args: &Args<'_, '_>, func: AggFunc, op: Op) -> Result<Vec<Series>> {
    let list = args.series(0)?;
    let n = args.float(1)?;
    Ok(keep_where(list, func, op, n))
}

fn filter_series(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let list = args.series(0)?;
    let func = agg_func_arg(args, 1)?;
    let operator = args.string(2)?;
    let op = Op::parse(&operator)
        .ok_or_else(|| Error::arg(format!("Unsupported operator: {operator}")))?;
    let threshold = args.float(3)?;
    Ok(keep_where(list, func, op, threshold))
}

fn maximum_above(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    filter_with(args, AggFunc::Max, Op::Gt)
}

fn minimum_above(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    filter_with(args, AggFunc::Min, Op::Gt)
}

fn maximum_below(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    filter_with(args, AggFunc::Max, Op::Le)
}

fn minimum_below(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    filter_with(args, AggFunc::Min, Op::Le)
}

fn current_above(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    filter_with(args, AggFunc::Last, Op::Gt)
}

fn current_below(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    filter_with(args, AggFunc::Last, Op::Le)
}

fn average_above(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    filter_with(args, AggFunc::Average, Op::Gt)
}

fn average_below(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    filter_with(args, AggFunc::Average, Op::Le)
}

/// `highest`'s `n`: graphite-web calls `int(n)`, so a float is truncated.
fn truncated_int(args: &Args<'_, '_>, i: usize) -> Result<i64> {
    match args.literal(i) {
        Some(Literal::Float(f)) if f.is_finite() => Ok(f.trunc() as i64),
        _ => args.int(i),
    }
}

fn top(args: &Args<'_, '_>, func: AggFunc, highest: bool) -> Result<Vec<Series>> {
    let list = args.series(0)?;
    let n = truncated_int(args, 1)?;
    let sorted = sort_by_key(list, |s| sort_key(series_agg(func, s)), highest);
    Ok(py_head(sorted, n))
}

fn highest(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let func = agg_func_arg(args, 2)?;
    top(args, func, true)
}

fn lowest(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let func = agg_func_arg(args, 2)?;
    top(args, func, false)
}

fn highest_current(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    top(args, AggFunc::Last, true)
}

fn highest_max(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    top(args, AggFunc::Max, true)
}

fn highest_average(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    top(args, AggFunc::Average, true)
}

fn lowest_current(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    top(args, AggFunc::Last, false)
}

fn lowest_average(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    top(args, AggFunc::Average, false)
}

fn limit(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let list = args.series(0)?;
    let n = args.int(1)?;
    Ok(py_head(list, n))
}

fn most_deviant(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let list = args.series(0)?;
    let n = args.int(1)?;
    let mut deviants = Vec::with_capacity(list.len());
    for s in list {
        let values = s.consolidated();
        let Some(mean) = AggFunc::Average.apply(&values) else { continue };
        let present = values.iter().flatten();
        let square_sum = present.clone().fold(0.0, |acc, v| acc + (v - mean) * (v - mean));
        let sigma = square_sum / present.count() as f64;
        deviants.push((sort_key(Some(sigma)), s));
    }
    Ok(py_head(sort_keyed(deviants, true), n))
}

fn exclude(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let list = args.series(0)?;
    let re = PyRegex::new(args.def.name, &args.string(1)?)?;
    Ok(list.into_iter().filter(|s| !re.is_match(&s.name)).collect())
}

fn grep(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let list = args.series(0)?;
    let re = PyRegex::new(args.def.name, &args.string(1)?)?;
    Ok(list.into_iter().filter(|s| re.is_match(&s.name)).collect())
}

fn remove_empty_series(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let list = args.series(0)?;
    let xff = args.opt_float(1)?.unwrap_or(0.0);
    Ok(list
        .into_iter()
        .filter(|s| {
            // graphite-web's xffValues: non-null values as iterated over the raw length.
            let non_null = s.consolidated().iter().flatten().count();
            non_null > 0 && !s.values.is_empty() && non_null as f64 / s.values.len() as f64 >= xff
        })
        .collect())
}

fn unique(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for list in args.series_rest()? {
        for s in list {
            if seen.insert(s.name.clone()) {
                out.push(s);
            }
        }
    }
    Ok(out)
}

fn use_series_above(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let list = args.series(0)?;
    let value = args.float(1)?;
    let re = PyRegex::new(args.def.name, &args.string(2)?)?;
    let template = re.template(args.def.name, &args.string(3)?)?;
    let mut new_names = Vec::new();
    for s in &list {
        let new_name = re.sub(&template, &s.name);
        if python_max(s)? > value {
            new_names.push(new_name);
        }
    }
    if new_names.is_empty() {
        return Ok(Vec::new());
    }
    // graphite-web evaluates the text `group(a,b,...)`; `group` concatenates its arguments.
    let target = format!("group({})", new_names.join(","));
    let expr = crate::parse::parse(&target)?;
    let found = match &expr {
        Expr::Call(call) if call.name == "group" => {
            if let Some((key, _)) = call.kwargs.first() {
                return Err(Error::arg(format!(
                    "group() got an unexpected keyword argument '{key}'"
                )));
            }
            let mut found = Vec::new();
            for arg in &call.args {
                match arg {
                    Arg::Expr(e) => {
                        found.extend(args.eval_with_range(e, args.ctx.from, args.ctx.until)?)
                    }
                    Arg::Literal(l) => {
                        return Err(Error::Evaluation(format!(
                            "useSeriesAbove(): the rewritten name {l} is not a series"
                        )));
                    }
                }
            }
            found
        }
        other => args.eval_with_range(other, args.ctx.from, args.ctx.until)?,
    };
    Ok(found.into_iter().filter(|s| !s.values.is_empty()).collect())
}

/// Python's builtin `max(series)`, which fails on an empty series and on any null (Python 3
/// cannot order `None` against a float): graphite-web answers 500 there, and so do we.
fn python_max(s: &Series) -> Result<f64> {
    let values = s.consolidated();
    let mut best: Option<f64> = None;
    for v in &values {
        let Some(v) = v else {
            return Err(Error::Evaluation(format!(
                "useSeriesAbove(): series {} has null values, which graphite-web cannot compare",
                s.name
            )));
        };
        // Python keeps the first maximum: a later value replaces it only when greater.
        best = Some(match best {
            Some(b) if *v > b => *v,
            Some(b) => b,
            None => *v,
        });
    }
    best.ok_or_else(|| {
        Error::Evaluation(format!("useSeriesAbove(): series {} has no values", s.name))
    })
}

/// Why a percentile could not be computed (graphite-web raises, on Python's list indexing).
struct PercentileOutOfRange;

/// graphite-web's `_getPercentile(points, n)` without interpolation (the NIST nearest-rank
/// method): `None` without non-null points.
fn percentile(
    points: &[Option<f64>],
    n: f64,
) -> std::result::Result<Option<f64>, PercentileOutOfRange> {
    let mut sorted: Vec<f64> = points.iter().flatten().copied().collect();
    if sorted.is_empty() {
        return Ok(None);
    }
    sorted.sort_by(|a, b| sort_key(Some(*a)).total_cmp(&sort_key(Some(*b))));
    let len = sorted.len();
    let fractional_rank = (n / 100.0) * (len + 1) as f64;
    if !fractional_rank.is_finite() {
        return Err(PercentileOutOfRange);
    }
    let mut rank = fractional_rank.trunc();
    let fraction = fractional_rank - rank;
    rank += fraction.ceil();
    if rank.abs() > 1e15 {
        return Err(PercentileOutOfRange);
    }
    let rank = rank as i64;
    if rank == 0 {
        return Ok(sorted.first().copied());
    }
    if rank - 1 == len as i64 {
        return Ok(sorted.last().copied());
    }
    py_index(len, rank - 1).map(|i| Some(sorted[i])).ok_or(PercentileOutOfRange)
}

/// graphite-web's `nPercentile` of one series as `removeAbove/BelowPercentile` use it: whether
/// it tagged the series, and the percentile to filter with. Nothing happens without values or
/// on an index error; a window shorter than one step gets the tag but no filtering (graphite-web
/// indexes an empty result and skips the series).
fn own_percentile(s: &Series, n: f64) -> (bool, Option<f64>) {
    let values = s.consolidated();
    match percentile(&values, n) {
        Ok(Some(p)) => {
            let point_count = ((s.end - s.start) as f64 / s.step as f64).trunc();
            (true, (point_count >= 1.0).then_some(p))
        }
        Ok(None) | Err(PercentileOutOfRange) => (false, None),
    }
}

fn remove_by_percentile(args: &Args<'_, '_>, above: bool) -> Result<Vec<Series>> {
    let mut list = args.series(0)?;
    let n = args.float(1)?;
    let shown = pyfmt::format_g(n);
    // nPercentile writes its tag into the tags it shares with the series: graphite-web leaks
    // `nPercentile` into the result's tags, with Python's str() of the argument after its
    // parameter validation made it a float (`50` -> "50.0").
    let tag = pyfmt::float_repr(n);
    let name = args.def.name;
    for s in &mut list {
        s.set_name(format!("{name}({}, {shown})", s.name));
        if n == 0.0 {
            return Err(Error::arg(format!(
                "{name}(): the requested percent is required to be greater than 0"
            )));
        }
        let (tagged, p) = own_percentile(s, n);
        if tagged {
            s.tags.insert("nPercentile".into(), tag.clone());
        }
        let Some(p) = p else { continue };
        null_where(s, |v| match v {
            Some(v) if above => v > p,
            Some(v) => v < p,
            None => !above,
        });
    }
    Ok(list)
}

/// Nulls the values for which `drop` holds, judged on the values as iterated: graphite-web
/// writes `series[i] = None` with the index of the consolidated value, which for a
/// consolidated series touches raw slot `i` (reproduced).
fn null_where(s: &mut Series, drop: impl Fn(Option<f64>) -> bool) {
    for (i, v) in s.consolidated().into_iter().enumerate() {
        if drop(v)
            && let Some(slot) = s.values.get_mut(i)
        {
            *slot = None;
        }
    }
}

fn remove_above_percentile(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    remove_by_percentile(args, true)
}

fn remove_below_percentile(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    remove_by_percentile(args, false)
}

fn remove_by_value(args: &Args<'_, '_>, above: bool) -> Result<Vec<Series>> {
    let mut list = args.series(0)?;
    let n = args.float(1)?;
    let shown = pyfmt::format_g(n);
    let name = args.def.name;
    for s in &mut list {
        s.set_name(format!("{name}({}, {shown})", s.name));
        null_where(s, |v| match v {
            Some(v) if above => v > n,
            Some(v) => v < n,
            None => !above,
        });
    }
    Ok(list)
}

fn remove_above_value(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    remove_by_value(args, true)
}

fn remove_below_value(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    remove_by_value(args, false)
}

/// graphite-web's `if n < 50: n = 100 - n`.
fn mirrored(n: f64) -> f64 {
    if n < 50.0 { 100.0 - n } else { n }
}

fn out_of_range(function: &str) -> Error {
    Error::Evaluation(format!("{function}(): the percentile is out of range (n must be 0..100)"))
}

fn average_outside_percentile(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let list = args.series(0)?;
    let n = mirrored(args.float(1)?);
    let averages: Vec<Option<f64>> = list.iter().map(|s| series_agg(AggFunc::Average, s)).collect();
    let name = args.def.name;
    let low = percentile(&averages, 100.0 - n).map_err(|_| out_of_range(name))?;
    let high = percentile(&averages, n).map_err(|_| out_of_range(name))?;
    let mut out = Vec::new();
    for (s, avg) in list.into_iter().zip(averages) {
        let (Some(low), Some(avg)) = (low, avg) else {
            return Err(Error::Evaluation(format!(
                "{name}(): series {} has no values, which graphite-web cannot compare",
                s.name
            )));
        };
        let inside = low < avg && high.is_some_and(|high| avg < high);
        if !inside {
            out.push(s);
        }
    }
    Ok(out)
}

fn remove_between_percentile(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let list = args.series(0)?;
    let n = mirrored(args.float(1)?);
    let name = args.def.name;
    let columns: Vec<Vec<Option<f64>>> = list.iter().map(Series::consolidated).collect();
    // Python's zip(*seriesList) stops at the shortest series.
    let width = columns.iter().map(Vec::len).min().unwrap_or(0);
    let mut bands = Vec::with_capacity(width);
    for i in 0..width {
        let column: Vec<Option<f64>> = columns.iter().map(|c| c[i]).collect();
        let low = percentile(&column, 100.0 - n).map_err(|_| out_of_range(name))?;
        let high = percentile(&column, n).map_err(|_| out_of_range(name))?;
        bands.push((low, high));
    }
    let mut out = Vec::new();
    for (s, values) in list.into_iter().zip(&columns) {
        let mut outside = 0usize;
        for (i, v) in values.iter().enumerate() {
            let Some(&(low, high)) = bands.get(i) else {
                return Err(Error::Evaluation(format!(
                    "{name}(): the series have different lengths, which graphite-web cannot handle"
                )));
            };
            let (Some(low), Some(v)) = (low, *v) else {
                return Err(Error::Evaluation(format!(
                    "{name}(): series {} has null values, which graphite-web cannot compare",
                    s.name
                )));
            };
            let inside = low < v && high.is_some_and(|high| v < high);
            outside += usize::from(!inside);
        }
        if outside > 0 {
            out.push(s);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::MemorySource;
    use crate::testutil::{T0, eval, names, source, try_eval};

    /// Five points each, one all-null series and one with gaps.
    fn data() -> MemorySource {
        source(&[
            ("test.db01.cpu", 60, &[None, None, None, None, None]),
            ("test.db02.cpu", 60, &[Some(2.0), Some(2.0), Some(8.0), Some(0.0), Some(3.0)]),
            ("test.web01.cpu", 60, &[Some(1.0), Some(2.0), Some(3.0), Some(4.0), Some(5.0)]),
            ("test.web02.cpu", 60, &[Some(5.0), None, Some(7.0), Some(1.0), None]),
        ])
    }

    /// Four points each, no nulls: what the percentile filters can compare.
    fn full() -> MemorySource {
        source(&[
            ("test.a.cpu", 60, &[Some(1.0), Some(9.0), Some(3.0), Some(4.0)]),
            ("test.b.cpu", 60, &[Some(2.0), Some(2.0), Some(2.0), Some(2.0)]),
            ("test.c.cpu", 60, &[Some(3.0), Some(1.0), Some(5.0), Some(0.5)]),
            ("test.d.cpu", 60, &[Some(4.0), Some(4.0), Some(4.0), Some(4.0)]),
            ("test.e.cpu", 60, &[Some(2.5), Some(3.0), Some(3.5), Some(3.0)]),
        ])
    }

    fn run(target: &str) -> Vec<Series> {
        eval(&data(), target, T0 - 60, T0 + 240)
    }

    /// The names of `target`'s result, without the common `test.` / `.cpu`.
    fn short(target: &str) -> Vec<String> {
        short_names(&run(target))
    }

    fn short_names(series: &[Series]) -> Vec<String> {
        series
            .iter()
            .map(|s| s.name.trim_start_matches("test.").trim_end_matches(".cpu").to_string())
            .collect()
    }

    fn values(s: &Series) -> Vec<Option<f64>> {
        s.values.clone()
    }

    // Every expected list below is what graphite-web 1.1.8 returns for the same call on the
    // same TimeSeries (run through /usr/bin/python3 and graphite.render.functions).

    #[test]
    fn threshold_filters() {
        for (target, want) in [
            ("averageAbove(test.*.cpu,2)", &["db02", "web01", "web02"][..]),
            ("averageAbove(test.*.cpu,3.5)", &["web02"]),
            ("averageBelow(test.*.cpu,2)", &["db01"]),
            ("averageBelow(test.*.cpu,3.5)", &["db01", "db02", "web01"]),
            ("currentAbove(test.*.cpu,2)", &["db02", "web01"]),
            ("currentAbove(test.*.cpu,3.5)", &["web01"]),
            ("currentBelow(test.*.cpu,2)", &["db01", "web02"]),
            ("currentBelow(test.*.cpu,3.5)", &["db01", "db02", "web02"]),
            ("maximumAbove(test.*.cpu,3.5)", &["db02", "web01", "web02"]),
            ("maximumBelow(test.*.cpu,3.5)", &["db01"]),
            ("minimumAbove(test.*.cpu,2)", &[]),
            ("minimumBelow(test.*.cpu,2)", &["db01", "db02", "web01", "web02"]),
        ] {
            assert_eq!(short(target), want, "{target}");
        }
    }

    #[test]
    fn filter_series_operators() {
        for (target, want) in [
            ("filterSeries(test.*.cpu,'max','=',5)", &["web01"][..]),
            ("filterSeries(test.*.cpu,'max','!=',5)", &["db01", "db02", "web02"]),
            ("filterSeries(test.*.cpu,'max','>',5)", &["db02", "web02"]),
            ("filterSeries(test.*.cpu,'max','>=',5)", &["db02", "web01", "web02"]),
            ("filterSeries(test.*.cpu,'max','<',5)", &["db01"]),
            ("filterSeries(test.*.cpu,'max','<=',5)", &["db01", "web01"]),
            ("filterSeries(test.*.cpu,'sum','=',10)", &[]),
            ("filterSeries(test.*.cpu,'sum','!=',10)", &["db01", "db02", "web01", "web02"]),
            ("filterSeries(test.*.cpu,'total','>=',10)", &["db02", "web01", "web02"]),
            ("filterSeries(test.*.cpu,'sum','<=',10)", &["db01"]),
        ] {
            assert_eq!(short(target), want, "{target}");
        }
        let err = try_eval(&data(), "filterSeries(test.*.cpu,'bogus','>',5)", T0, T0 + 60);
        assert_eq!(err.unwrap_err().to_string(), "Unsupported aggregation function: bogus");
        let err = try_eval(&data(), "filterSeries(test.*.cpu,'max','~',5)", T0, T0 + 60);
        assert_eq!(err.unwrap_err().to_string(), "Unsupported operator: ~");
        assert!(try_eval(&data(), "filterSeries(test.*.cpu,'max','>')", T0, T0 + 60).is_err());
        assert!(run("filterSeries(nothing.*,'max','>',1)").is_empty());
    }

    #[test]
    fn highest_and_lowest_by_each_function() {
        for (func, high, low) in [
            ("average", ["web02", "db02", "web01"], ["db01", "db02", "web01"]),
            ("median", ["web02", "web01", "db02"], ["db01", "db02", "web01"]),
            ("sum", ["db02", "web01", "web02"], ["db01", "web02", "db02"]),
            ("min", ["web01", "web02", "db02"], ["db01", "db02", "web01"]),
            ("max", ["db02", "web02", "web01"], ["db01", "web01", "web02"]),
            ("diff", ["web02", "db02", "web01"], ["db01", "web01", "db02"]),
            ("stddev", ["db02", "web02", "web01"], ["db01", "web01", "web02"]),
            ("count", ["db02", "web01", "web02"], ["db01", "web02", "db02"]),
            ("range", ["db02", "web02", "web01"], ["db01", "web01", "web02"]),
            ("multiply", ["web01", "db02", "db01"], ["db01", "web02", "db02"]),
            ("last", ["web01", "db02", "web02"], ["db01", "web02", "db02"]),
            ("avg_zero", ["db02", "web01", "web02"], ["db01", "web02", "db02"]),
        ] {
            assert_eq!(short(&format!("highest(test.*.cpu,3,'{func}')")), high, "highest {func}");
            assert_eq!(short(&format!("lowest(test.*.cpu,3,'{func}')")), low, "lowest {func}");
        }
        // graphite-web calls int(n): a float is truncated.
        assert_eq!(short("highest(test.*.cpu,2.7)"), ["web02", "db02"]);
        assert!(try_eval(&data(), "highest(test.*.cpu,2,'nope')", T0, T0 + 60).is_err());
    }

    #[test]
    fn top_n_shortcuts_slice_like_python() {
        for (target, want) in [
            ("highestCurrent(test.*.cpu,2)", &["web01", "db02"][..]),
            ("highestCurrent(test.*.cpu,-1)", &["web01", "db02", "web02"]),
            ("highestCurrent(test.*.cpu,10)", &["web01", "db02", "web02", "db01"]),
            ("highestAverage(test.*.cpu,2)", &["web02", "db02"]),
            ("highestAverage(test.*.cpu,10)", &["web02", "db02", "web01", "db01"]),
            ("highestMax(test.*.cpu,2)", &["db02", "web02"]),
            ("highestMax(test.*.cpu,-1)", &["db02", "web02", "web01"]),
            ("lowestCurrent(test.*.cpu,2)", &["db01", "web02"]),
            ("lowestCurrent(test.*.cpu,10)", &["db01", "web02", "db02", "web01"]),
            ("lowestAverage(test.*.cpu,2)", &["db01", "db02"]),
            ("lowestAverage(test.*.cpu,-1)", &["db01", "db02", "web01"]),
            ("limit(test.*.cpu,2)", &["db01", "db02"]),
            ("limit(test.*.cpu,-1)", &["db01", "db02", "web01"]),
            ("limit(test.*.cpu,10)", &["db01", "db02", "web01", "web02"]),
            ("limit(test.*.cpu,0)", &[]),
            ("mostDeviant(test.*.cpu,2)", &["db02", "web02"]),
            ("mostDeviant(test.*.cpu,-1)", &["db02", "web02"]),
            ("mostDeviant(test.*.cpu,10)", &["db02", "web02", "web01"]),
        ] {
            assert_eq!(short(target), want, "{target}");
        }
        let out = eval(&full(), "mostDeviant(test.*.cpu,3)", T0 - 60, T0 + 180);
        assert_eq!(short_names(&out), ["a", "c", "e"]);
        assert!(try_eval(&data(), "limit(test.*.cpu,'x')", T0, T0 + 60).is_err());
        assert!(try_eval(&data(), "limit(test.*.cpu)", T0, T0 + 60).is_err());
    }

    #[test]
    fn name_filters_and_unique() {
        assert_eq!(short("exclude(test.*.cpu,'web')"), ["db01", "db02"]);
        assert_eq!(short("grep(test.*.cpu,'0[12]\\.c')"), ["db01", "db02", "web01", "web02"]);
        assert_eq!(short("grep(test.*.cpu,'^test.w')"), ["web01", "web02"]);
        assert!(try_eval(&data(), "grep(test.*.cpu,'(')", T0, T0 + 60).is_err());
        assert_eq!(
            short("unique(test.*.cpu,test.d*.cpu,alias(test.*.cpu,'x'))"),
            ["db01", "db02", "web01", "web02", "x"]
        );
    }

    #[test]
    fn remove_empty_series_uses_xfiles_factor() {
        assert_eq!(short("removeEmptySeries(test.*.cpu)"), ["db02", "web01", "web02"]);
        assert_eq!(short("removeEmptySeries(test.*.cpu,0.8)"), ["db02", "web01"]);
        assert_eq!(short("removeEmptySeries(test.*.cpu,0.6)"), ["db02", "web01", "web02"]);
    }

    #[test]
    fn remove_by_value_renames_and_nulls() {
        let out = run("removeAboveValue(test.*.cpu,3)");
        assert_eq!(names(&out)[1], "removeAboveValue(test.db02.cpu, 3)");
        assert_eq!(out[1].path_expression, "removeAboveValue(test.db02.cpu, 3)");
        assert_eq!(values(&out[1]), [Some(2.0), Some(2.0), None, Some(0.0), Some(3.0)]);
        assert_eq!(values(&out[3]), [None, None, None, Some(1.0), None]);
        let out = run("removeAboveValue(test.*.cpu,2.5)");
        assert_eq!(names(&out)[2], "removeAboveValue(test.web01.cpu, 2.5)");
        assert_eq!(values(&out[2]), [Some(1.0), Some(2.0), None, None, None]);
        let out = run("removeBelowValue(test.*.cpu,3)");
        assert_eq!(values(&out[1]), [None, None, Some(8.0), None, Some(3.0)]);
        assert_eq!(values(&out[3]), [Some(5.0), None, Some(7.0), None, None]);
        let out = run("removeBelowValue(test.*.cpu,0.00001)");
        assert_eq!(names(&out)[1], "removeBelowValue(test.db02.cpu, 1e-05)");
        assert_eq!(values(&out[1]), [Some(2.0), Some(2.0), Some(8.0), None, Some(3.0)]);
        assert_eq!(out[1].tags["name"], "test.db02.cpu");
    }

    #[test]
    fn remove_by_percentile_nulls_and_leaks_the_tag() {
        let out = run("removeAbovePercentile(test.*.cpu,50)");
        assert_eq!(names(&out)[0], "removeAbovePercentile(test.db01.cpu, 50)");
        assert!(!out[0].tags.contains_key("nPercentile"));
        assert_eq!(out[1].tags["nPercentile"], "50.0");
        assert_eq!(values(&out[1]), [Some(2.0), Some(2.0), None, Some(0.0), None]);
        assert_eq!(values(&out[2]), [Some(1.0), Some(2.0), Some(3.0), None, None]);
        assert_eq!(values(&out[3]), [Some(5.0), None, None, Some(1.0), None]);
        let out = run("removeAbovePercentile(test.*.cpu,75.5)");
        assert_eq!(names(&out)[1], "removeAbovePercentile(test.db02.cpu, 75.5)");
        assert_eq!(out[1].tags["nPercentile"], "75.5");
        assert_eq!(values(&out[1]), [Some(2.0), Some(2.0), Some(8.0), Some(0.0), Some(3.0)]);
        let out = run("removeBelowPercentile(test.*.cpu,50)");
        assert_eq!(values(&out[1]), [Some(2.0), Some(2.0), Some(8.0), None, Some(3.0)]);
        assert_eq!(values(&out[2]), [None, None, Some(3.0), Some(4.0), Some(5.0)]);
        assert_eq!(values(&out[3]), [Some(5.0), None, Some(7.0), None, None]);
        // Out-of-range ranks: graphite-web skips the series (150) or wraps the index (-30).
        let out = run("removeAbovePercentile(test.*.cpu,150)");
        assert_eq!(values(&out[2]), [Some(1.0), Some(2.0), Some(3.0), Some(4.0), Some(5.0)]);
        assert!(!out[2].tags.contains_key("nPercentile"));
        let out = run("removeAbovePercentile(test.*.cpu,-30)");
        assert_eq!(out[2].tags["nPercentile"], "-30.0");
        assert_eq!(values(&out[1]), [Some(2.0), Some(2.0), None, Some(0.0), Some(3.0)]);
        assert_eq!(values(&out[2]), [Some(1.0), Some(2.0), Some(3.0), Some(4.0), None]);
        assert_eq!(values(&out[3]), [Some(5.0), None, None, Some(1.0), None]);
        assert!(try_eval(&data(), "removeBelowPercentile(test.*.cpu,0)", T0, T0 + 60).is_err());
        assert!(run("removeBelowPercentile(nothing.*,0)").is_empty());
    }

    #[test]
    fn percentile_band_filters() {
        let run_full = |t: &str| short_names(&eval(&full(), t, T0 - 60, T0 + 180));
        assert_eq!(run_full("averageOutsidePercentile(test.*.cpu,30)"), ["a", "b", "c"]);
        assert_eq!(run_full("averageOutsidePercentile(test.*.cpu,75)"), ["a", "b", "c"]);
        assert_eq!(run_full("removeBetweenPercentile(test.*.cpu,30)"), ["a", "b", "c", "d"]);
        assert_eq!(run_full("removeBetweenPercentile(test.*.cpu,80)"), ["a", "b", "c", "d"]);
        assert!(short("averageOutsidePercentile(nothing.*,90)").is_empty());
        assert!(short("removeBetweenPercentile(nothing.*,90)").is_empty());
        assert_eq!(
            short("averageOutsidePercentile(test.{db02,web01,web02}.cpu,90)"),
            ["db02", "web01", "web02"]
        );
        // graphite-web fails (TypeError / IndexError) on these; so do we, with a 500.
        for target in
            ["averageOutsidePercentile(test.*.cpu,90)", "removeBetweenPercentile(test.*.cpu,80)"]
        {
            let err = try_eval(&data(), target, T0 - 60, T0 + 240).unwrap_err();
            assert_eq!(err.status(), 500, "{target}");
        }
        let err = try_eval(&full(), "averageOutsidePercentile(test.*.cpu,200)", T0 - 60, T0 + 180);
        assert_eq!(err.unwrap_err().status(), 500);
    }

    #[test]
    fn use_series_above_fetches_the_rewritten_names() {
        let src = source(&[
            ("test.web01.reqs", 60, &[Some(1.0), Some(20.0)]),
            ("test.web02.reqs", 60, &[Some(1.0), Some(2.0)]),
            ("test.web01.time", 60, &[Some(0.5), Some(0.7)]),
            ("test.web02.time", 60, &[Some(0.1), Some(0.2)]),
        ]);
        let out = eval(&src, "useSeriesAbove(test.*.reqs,10,'reqs','time')", T0 - 60, T0 + 60);
        assert_eq!(names(&out), ["test.web01.time"]);
        assert_eq!(values(&out[0]), [Some(0.5), Some(0.7)]);
        let out = eval(&src, "useSeriesAbove(test.*.reqs,100,'reqs','time')", T0 - 60, T0 + 60);
        assert!(out.is_empty());
        let err = try_eval(&data(), "useSeriesAbove(test.*.cpu,1,'cpu','x')", T0 - 60, T0 + 240);
        assert_eq!(err.unwrap_err().status(), 500);
    }

    #[test]
    fn consolidated_series_are_judged_as_iterated() {
        // A series read with valuesPerPoint 2: averages [1.5, 3.5, 5.0].
        let mut s = Series::new(
            "a.b",
            T0,
            T0 + 300,
            60,
            vec![Some(1.0), Some(2.0), Some(3.0), Some(4.0), Some(5.0)],
        );
        s.consolidate(2);
        assert_eq!(series_agg(AggFunc::Max, &s), Some(5.0));
        assert_eq!(series_agg(AggFunc::Sum, &s), Some(10.0));
        // graphite-web's safeAvgZero divides by len(series), the raw length: 10 / 5.
        assert_eq!(series_agg(AggFunc::AvgZero, &s), Some(2.0));
        // removeBelowValue(3) drops consolidated index 0: raw slot 0 (graphite-web's quirk).
        null_where(&mut s, |v| v.is_none_or(|v| v < 3.0));
        assert_eq!(s.values, [None, Some(2.0), Some(3.0), Some(4.0), Some(5.0)]);
    }

    #[test]
    fn percentile_is_nearest_rank() {
        let pts = [Some(4.0), None, Some(1.0), Some(3.0), Some(2.0)];
        let p = |n| percentile(&pts, n).ok().flatten();
        assert_eq!(p(50.0), Some(3.0));
        assert_eq!(p(20.0), Some(1.0));
        assert_eq!(p(0.0), Some(1.0));
        assert_eq!(p(100.0), Some(4.0));
        assert_eq!(p(-30.0), Some(3.0));
        assert!(percentile(&pts, 150.0).is_err());
        assert_eq!(percentile(&[None], 50.0).ok().flatten(), None);
    }
}
