//! The Combine family (graphite-reference §4.4): functions that merge series — point-wise
//! aggregation (`sumSeries`, `aggregate`, ...), ratios (`divideSeries`, `asPercent`,
//! `weightedAverage`), and grouping (`groupByNode`, `groupByTags`, `mapSeries` /
//! `reduceSeries`, `applyByNode`, the `*WithWildcards` and `*SeriesLists` variants).
//!
//! Everything follows graphite-web 1.1.8's `render/functions.py` operation for operation,
//! including its quirks:
//! - series of different steps are consolidated to the least common multiple of their steps
//!   and then combined **by index**, not by timestamp (`normalize`, graphite-reference §4.3);
//! - results are named after the inputs' path expressions (`sumSeries(servers.*.cpu)`), and
//!   grouping functions rename their results without touching the path expression;
//! - graphite-web mutates the consolidation of its inputs in place, and a few functions read
//!   that state later (`asPercent` with a plain number as total, the windows of its
//!   `MISSING` series); [`normalize_mut`] reproduces the mutation on our copies.
//!
//! Where graphite-web fails with a Python exception (HTTP 500) on input it could answer, we
//! answer sensibly instead; each such place says so.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use crate::aggfunc::AggFunc;
use crate::error::{Error, Result};
use crate::eval::{Context, Value};
use crate::expr::{Arg, Literal};
use crate::function::{self, Args, Default, FunctionDef, Param, ParamType};
use crate::functions::common::{
    NodeOrTag, agg_key, format_path_expressions, py_index, py_slice_to,
};
use crate::pyfmt::format_g;
use crate::series::{self, Series};

const GROUP: &str = "Combine";

/// `/functions` options of an `aggFunc` parameter, sorted as graphite-web lists them.
const AGG_FUNC_OPTIONS: &[&str] = &[
    "average", "avg", "avg_zero", "count", "current", "diff", "last", "max", "median", "min",
    "multiply", "range", "rangeOf", "stddev", "sum", "total",
];

/// `/functions` options of an `aggOrSeriesFunc` parameter: the aggregation functions and the
/// functions flagged as aggregators, sorted as graphite-web lists them.
const AGG_OR_SERIES_FUNC_OPTIONS: &[&str] = &[
    "asPercent",
    "average",
    "averageSeries",
    "averageSeriesWithWildcards",
    "avg",
    "avg_zero",
    "count",
    "countSeries",
    "current",
    "diff",
    "diffSeries",
    "diffSeriesLists",
    "last",
    "max",
    "maxSeries",
    "median",
    "min",
    "minSeries",
    "multiply",
    "multiplySeries",
    "multiplySeriesLists",
    "multiplySeriesWithWildcards",
    "pct",
    "powSeries",
    "range",
    "rangeOf",
    "rangeOfSeries",
    "stddev",
    "stddevSeries",
    "sum",
    "sumSeries",
    "sumSeriesLists",
    "sumSeriesWithWildcards",
    "total",
];

const SERIES_LISTS: &[Param] =
    &[Param::new("seriesLists", ParamType::SeriesList).required().multiple()];
const SERIES_LISTS_OPTIONAL: &[Param] =
    &[Param::new("seriesLists", ParamType::SeriesList).multiple()];
const TWO_LISTS: &[Param] = &[
    Param::new("seriesListFirstPos", ParamType::SeriesList).required(),
    Param::new("seriesListSecondPos", ParamType::SeriesList).required(),
];
const WILDCARDS: &[Param] = &[
    Param::new("seriesList", ParamType::SeriesList).required(),
    Param::new("position", ParamType::Node).multiple(),
];
const AS_PERCENT: &[Param] = &[
    Param::new("seriesList", ParamType::SeriesList).required(),
    Param::new("total", ParamType::Any),
    Param::new("nodes", ParamType::NodeOrTag).multiple(),
];
const MAP_SERIES: &[Param] = &[
    Param::new("seriesList", ParamType::SeriesList).required(),
    Param::new("mapNodes", ParamType::NodeOrTag).required().multiple(),
];
const REDUCE_SERIES: &[Param] = &[
    Param::new("seriesLists", ParamType::SeriesLists).required(),
    Param::new("reduceFunction", ParamType::String).required(),
    Param::new("reduceNode", ParamType::Node).required(),
    Param::new("reduceMatchers", ParamType::String).required().multiple(),
];

/// Shorthand for a definition of this family.
const fn def(
    name: &'static str,
    description: &'static str,
    params: &'static [Param],
    aggregator: bool,
    call: function::FunctionImpl,
) -> FunctionDef {
    FunctionDef { name, group: GROUP, description, params, aggregator, call }
}

const SUM_DESC: &str = "Adds the series together point by point (nulls are skipped; a point \
    where every series is null stays null). Short form: sum(). Series of different steps are \
    first consolidated to a common step.";
const AVERAGE_DESC: &str = "The mean of the series at each point, over the non-null values. \
    Short form: avg().";
const AS_PERCENT_DESC: &str = "Each series as a percentage of a total: by default the sum of \
    all the series; otherwise a number, one series, a list of as many series as the first \
    (paired by sorted name), or, with nodes, totals matched to series by the given nodes or \
    tags (unmatched ones give all-null series named with MISSING). Short form: pct().";
const MAP_DESC: &str = "Splits a series list into groups sharing the given nodes or tags, for \
    reduceSeries. Short form: map(). graphite-web returns a list of lists; here the groups \
    come back one after the other in a single list, which reduceSeries reads the same way.";
const REDUCE_DESC: &str = "Within each group of mapSeries output, takes the series whose node \
    reduceNode equals each matcher, in matcher order, and calls reduceFunction with them as \
    separate arguments; each result is named <nodes before reduceNode>.reduce.<function>. \
    Short form: reduce().";

/// The functions this family defines.
pub(crate) const FUNCTIONS: &[FunctionDef] = &[
    def(
        "aggregate",
        "Combines the series point by point with an aggregation function (average, median, \
         sum, min, max, diff, stddev, count, range, multiply, last, avg_zero, or an alias), \
         naming the result <func>Series(<path expressions>). A point is null unless enough \
         of its values are non-null (xFilesFactor, by default the request's).",
        &[
            Param::new("seriesList", ParamType::SeriesList).required(),
            Param::new("func", ParamType::AggFunc).required().options(AGG_FUNC_OPTIONS),
            Param::new("xFilesFactor", ParamType::Float),
        ],
        false,
        aggregate,
    ),
    def(
        "aggregateSeriesLists",
        "Aggregates two equally long series lists pair by pair: the first series of each \
         list together, then the second ones, and so on.",
        &[
            Param::new("seriesListFirstPos", ParamType::SeriesList).required(),
            Param::new("seriesListSecondPos", ParamType::SeriesList).required(),
            Param::new("func", ParamType::AggFunc).required().options(AGG_FUNC_OPTIONS),
            Param::new("xFilesFactor", ParamType::Float),
        ],
        false,
        aggregate_series_lists,
    ),
    def(
        "aggregateWithWildcards",
        "Groups series whose names are equal once the given node positions are removed, and \
         aggregates each group with the function; each result is named after what remains \
         of the name.",
        &[
            Param::new("seriesList", ParamType::SeriesList).required(),
            Param::new("func", ParamType::AggFunc).required().options(AGG_FUNC_OPTIONS),
            Param::new("position", ParamType::Node).multiple().py_name("positions"),
        ],
        false,
        aggregate_with_wildcards,
    ),
    def(
        "applyByNode",
        "For every distinct name prefix up to node nodeNum, evaluates the template target \
         with each % replaced by the prefix; newName, if given, names the results the same \
         way.",
        &[
            Param::new("seriesList", ParamType::SeriesList).required(),
            Param::new("nodeNum", ParamType::Node).required(),
            Param::new("templateFunction", ParamType::String).required(),
            Param::new("newName", ParamType::String),
        ],
        false,
        apply_by_node,
    ),
    def("asPercent", AS_PERCENT_DESC, AS_PERCENT, true, as_percent),
    def("averageSeries", AVERAGE_DESC, SERIES_LISTS, true, average_series),
    def(
        "averageSeriesWithWildcards",
        "Averages the series in groups of names that match once the given node positions \
         are ignored.",
        WILDCARDS,
        true,
        average_series_with_wildcards,
    ),
    def("avg", AVERAGE_DESC, SERIES_LISTS, true, average_series),
    def(
        "countSeries",
        "A constant line at the number of series given, over their common window; with no \
         argument, a line at 0 over the request's range.",
        SERIES_LISTS_OPTIONAL,
        true,
        count_series,
    ),
    def(
        "diffSeries",
        "The first series minus all the others, point by point (null values are skipped).",
        SERIES_LISTS,
        true,
        diff_series,
    ),
    def(
        "diffSeriesLists",
        "Subtracts two equally long series lists pair by pair.",
        TWO_LISTS,
        true,
        diff_series_lists,
    ),
    def(
        "divideSeries",
        "Divides each series of the first list by the single divisor series, point by point \
         (division by zero or null gives null). Without a divisor the dividends come back \
         all null, named divideSeries(x,MISSING).",
        &[
            Param::new("dividendSeriesList", ParamType::SeriesList).required(),
            Param::new("divisorSeries", ParamType::SeriesList).required(),
        ],
        false,
        divide_series,
    ),
    def(
        "divideSeriesLists",
        "Divides two equally long series lists pair by pair.",
        &[
            Param::new("dividendSeriesList", ParamType::SeriesList).required(),
            Param::new("divisorSeriesList", ParamType::SeriesList).required(),
        ],
        false,
        divide_series_lists,
    ),
    def(
        "group",
        "Joins several series lists into one, so that functions taking a single list can \
         take them all.",
        SERIES_LISTS_OPTIONAL,
        false,
        group,
    ),
    def(
        "groupByNode",
        "Groups the series by one node (or tag) of their names and applies the callback \
         (an aggregation function or an aggregating series function) to each group; the \
         results are named after the node.",
        &[
            Param::new("seriesList", ParamType::SeriesList).required(),
            Param::new("nodeNum", ParamType::NodeOrTag).required(),
            Param::new("callback", ParamType::AggOrSeriesFunc)
                .default(Default::Str("average"))
                .options(AGG_OR_SERIES_FUNC_OPTIONS),
        ],
        false,
        group_by_node,
    ),
    def(
        "groupByNodes",
        "Groups the series by several nodes and/or tags of their names and applies the \
         callback to each group; each result is named after its nodes joined with dots.",
        &[
            Param::new("seriesList", ParamType::SeriesList).required(),
            Param::new("callback", ParamType::AggOrSeriesFunc)
                .required()
                .options(AGG_OR_SERIES_FUNC_OPTIONS),
            Param::new("nodes", ParamType::NodeOrTag).multiple(),
        ],
        false,
        group_by_nodes,
    ),
    def(
        "groupByTags",
        "Groups tagged series by the values of the given tags and applies the callback to \
         each group; results are named <name>;tag=value;... and tagged accordingly.",
        &[
            Param::new("seriesList", ParamType::SeriesList).required(),
            Param::new("callback", ParamType::AggOrSeriesFunc)
                .required()
                .options(AGG_OR_SERIES_FUNC_OPTIONS),
            Param::new("tags", ParamType::Tag).required().multiple(),
        ],
        false,
        group_by_tags,
    ),
    def("map", MAP_DESC, MAP_SERIES, false, map_series),
    def("mapSeries", MAP_DESC, MAP_SERIES, false, map_series),
    def(
        "maxSeries",
        "The largest value of the series at each point.",
        SERIES_LISTS,
        true,
        max_series,
    ),
    def(
        "minSeries",
        "The smallest value of the series at each point.",
        SERIES_LISTS,
        true,
        min_series,
    ),
    def(
        "multiplySeries",
        "Multiplies the series point by point (a null anywhere gives null). A single series \
         comes back unchanged.",
        SERIES_LISTS,
        true,
        multiply_series,
    ),
    def(
        "multiplySeriesLists",
        "Multiplies two equally long series lists pair by pair.",
        TWO_LISTS,
        true,
        multiply_series_lists,
    ),
    def(
        "multiplySeriesWithWildcards",
        "Multiplies the series in groups of names that match once the given node positions \
         are ignored.",
        WILDCARDS,
        true,
        multiply_series_with_wildcards,
    ),
    def("pct", AS_PERCENT_DESC, AS_PERCENT, true, as_percent),
    def(
        "percentileOfSeries",
        "The n-th percentile of the series' values at each point (nearest rank, or linear \
         interpolation between ranks when interpolate is true).",
        &[
            Param::new("seriesList", ParamType::SeriesList).required(),
            Param::new("n", ParamType::Float).required(),
            Param::new("interpolate", ParamType::Boolean).default(Default::Bool(false)),
        ],
        false,
        percentile_of_series,
    ),
    def(
        "powSeries",
        "Raises the first series to the power of the second, the result to the power of the \
         third, and so on, point by point.",
        &[Param::new("seriesList", ParamType::SeriesList)
            .required()
            .multiple()
            .py_name("seriesLists")],
        true,
        pow_series,
    ),
    def(
        "rangeOfSeries",
        "The spread (largest minus smallest value) of the series at each point.",
        SERIES_LISTS,
        true,
        range_of_series,
    ),
    def("reduce", REDUCE_DESC, REDUCE_SERIES, false, reduce_series),
    def("reduceSeries", REDUCE_DESC, REDUCE_SERIES, false, reduce_series),
    def(
        "stddevSeries",
        "The population standard deviation of the series' values at each point.",
        SERIES_LISTS,
        true,
        stddev_series,
    ),
    def("sum", SUM_DESC, SERIES_LISTS, true, sum_series),
    def("sumSeries", SUM_DESC, SERIES_LISTS, true, sum_series),
    def(
        "sumSeriesLists",
        "Adds two equally long series lists pair by pair.",
        TWO_LISTS,
        true,
        sum_series_lists,
    ),
    def(
        "sumSeriesWithWildcards",
        "Adds the series in groups of names that match once the given node positions are \
         ignored.",
        WILDCARDS,
        true,
        sum_series_with_wildcards,
    ),
    def(
        "weightedAverage",
        "The average of the first list weighted by the second: at each point, the sum of \
         value times weight over the sum of the weights. Values and weights are paired by \
         the given nodes or tags.",
        &[
            Param::new("seriesListAvg", ParamType::SeriesList).required(),
            Param::new("seriesListWeight", ParamType::SeriesList).required(),
            Param::new("nodes", ParamType::NodeOrTag).multiple(),
        ],
        false,
        weighted_average,
    ),
];

// ---------------------------------------------------------------------------------------
// Shared machinery
// ---------------------------------------------------------------------------------------

/// The window `normalize` computes: earliest start, latest end trimmed to whole steps, and
/// the common step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Window {
    start: i64,
    end: i64,
    step: i64,
}

impl Window {
    /// The window a series reads over on its own (used where graphite-web would read a
    /// variable that was never set).
    fn of(series: &Series) -> Window {
        Window { start: series.start, end: series.end, step: series.read_step() }
    }

    /// A series' own start, end and raw step (graphite-web's `TimeSeries(name, s.start,
    /// s.end, s.step, ...)`).
    fn of_raw(series: &Series) -> Window {
        Window { start: series.start, end: series.end, step: series.step }
    }
}

/// graphite-web's `normalize`, applied in place: every series is consolidated to the LCM of
/// the steps (its `values_per_point` set), and the common window is returned. `None` when
/// there is no series (graphite-web's `NormalizeEmptyResultError`).
fn normalize_mut<'s>(series: impl IntoIterator<Item = &'s mut Series>) -> Option<Window> {
    let mut series: Vec<&mut Series> = series.into_iter().collect();
    // Python's integers do not overflow; an LCM beyond i64 (only reachable with odd steps
    // made by functions such as `summarize`) saturates, which still reads every series as a
    // single point, as graphite-web would.
    let step = series
        .iter()
        .map(|s| s.step.max(1))
        .try_fold(1i64, |acc, step| (acc / gcd(acc, step)).checked_mul(step))
        .unwrap_or(i64::MAX)
        .max(1);
    for s in &mut series {
        s.consolidate(usize::try_from(step / s.step.max(1)).unwrap_or(1));
    }
    let start = series.iter().map(|s| s.start).min()?;
    let mut end = series.iter().map(|s| s.end).max()?;
    end -= (end - start).rem_euclid(step);
    Some(Window { start, end, step })
}

/// Greatest common divisor of two positive numbers.
fn gcd(mut a: i64, mut b: i64) -> i64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a.max(1)
}

/// A new series as graphite-web's `TimeSeries(name, start, end, step, values,
/// xFilesFactor=...)` makes it: tags parsed from the name, path expression = name.
fn new_series(name: String, w: Window, values: Vec<Option<f64>>, xff: f64) -> Series {
    let mut s = Series::new(name, w.start, w.end, w.step, values);
    s.x_files_factor = xff;
    s
}

/// Python's `zip_longest(a, b)` over two value lists, padded with null.
fn zip_longest(a: &[Option<f64>], b: &[Option<f64>]) -> Vec<(Option<f64>, Option<f64>)> {
    (0..a.len().max(b.len()))
        .map(|i| (a.get(i).copied().flatten(), b.get(i).copied().flatten()))
        .collect()
}

/// graphite-web's `safeDiv`: null when the dividend is null or the divisor null or zero.
fn safe_div(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b != 0.0 => Some(a / b),
        _ => None,
    }
}

/// graphite-web's `safeMul` of two values: null if either is.
fn safe_mul(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    Some(a? * b?)
}

/// graphite-web's `safeSum`: the sum of the non-null values, null when there are none.
fn safe_sum(row: &[Option<f64>]) -> Option<f64> {
    AggFunc::Sum.apply(row)
}

/// graphite-web's `safePow` (Python's `math.pow`): null when either value is null, and where
/// `math.pow` raises — a finite base and exponent giving NaN (negative base, fractional
/// exponent) or an infinity (overflow, zero to a negative power).
fn safe_pow(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    let (a, b) = (a?, b?);
    let r = a.powf(b);
    if a.is_finite() && b.is_finite() && !r.is_finite() { None } else { Some(r) }
}

/// graphite-web's `xffValues(row, xFilesFactor)`: the row has non-null values, and enough of
/// them.
fn xff_passes(row: &[Option<f64>], xff: f64) -> bool {
    let non_null = row.iter().flatten().count();
    non_null > 0 && non_null as f64 / row.len() as f64 >= xff
}

/// Splits `series` into groups by `key`, groups in order of first appearance and series in
/// their original order (graphite-web's `metaSeries` / `keys` idiom).
fn group_by(series: Vec<Series>, key: impl Fn(&Series) -> String) -> Vec<(String, Vec<Series>)> {
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut groups: Vec<(String, Vec<Series>)> = Vec::new();
    for s in series {
        let k = key(&s);
        match index.get(&k) {
            Some(&i) => groups[i].1.push(s),
            None => {
                index.insert(k.clone(), groups.len());
                groups.push((k, vec![s]));
            }
        }
    }
    groups
}

/// Resolves an aggregation function name as `aggregate` does: a trailing `Series` is dropped
/// (`sumSeries` -> `sum`), then aliases are accepted. Returns the name as written after the
/// strip (it names the result: `avgSeries(...)`, `aggregatedBy=avg`) and the function.
fn resolve_agg_func(func: &str) -> Result<(&str, AggFunc)> {
    let name = func.strip_suffix("Series").unwrap_or(func);
    AggFunc::parse(name)
        .map(|f| (name, f))
        .ok_or_else(|| Error::arg(format!("Unsupported aggregation function: {func}")))
}

/// graphite-web's `aggregate(requestContext, seriesLists, func, xFilesFactor)`: every series
/// normalized to the LCM step, then each row reduced when it passes the xFilesFactor check.
/// The result is named `<func>Series(<path expressions>)` and keeps the tags all inputs share
/// (plus `aggregatedBy`). No series gives no result.
///
/// `RENDER_TRIM_RECENT_IN_AGGREGATE` (off by default in graphite-web) is not supported.
fn aggregate_lists(
    ctx: &Context<'_>,
    lists: Vec<Vec<Series>>,
    func: &str,
    xff: Option<f64>,
) -> Result<Vec<Series>> {
    let (label, agg) = resolve_agg_func(func)?;
    let mut series: Vec<Series> = lists.into_iter().flatten().collect();
    let Some(w) = normalize_mut(series.iter_mut()) else { return Ok(Vec::new()) };
    let xff = xff.unwrap_or(ctx.effective_x_files_factor());
    let name = format!("{label}Series({})", format_path_expressions(&series));
    let values =
        series::map_rows(&series, |row| if xff_passes(row, xff) { agg.apply(row) } else { None });
    let mut tags = series.first().map(|s| s.tags.clone()).unwrap_or_default();
    for s in series.iter().skip(1) {
        tags.retain(|k, v| s.tags.get(k) == Some(v));
    }
    tags.entry("name".to_string()).or_insert_with(|| name.clone());
    tags.insert("aggregatedBy".to_string(), label.to_string());
    let mut out = new_series(name, w, values, xff);
    out.tags = tags;
    Ok(vec![out])
}

/// graphite-web's `aggregateSeriesLists`: `aggregate(first[i], second[i])` for each `i`,
/// renamed `<func>Series(<first name>,<second name>)` (the path expression keeps the
/// aggregate's name).
fn aggregate_pairs(
    ctx: &Context<'_>,
    first: Vec<Series>,
    second: Vec<Series>,
    func: &str,
    xff: Option<f64>,
) -> Result<Vec<Series>> {
    if first.len() != second.len() {
        return Err(Error::arg(
            "seriesListFirstPos and seriesListSecondPos argument must have equal length",
        ));
    }
    let mut out = Vec::with_capacity(first.len());
    for (a, b) in first.into_iter().zip(second) {
        let pair = format!("({},{})", a.name, b.name);
        let Some(mut result) = aggregate_lists(ctx, vec![vec![a, b]], func, xff)?.pop() else {
            continue;
        };
        let prefix = result.name.find("Series(").map_or("", |i| &result.name[..i]);
        result.name = format!("{prefix}Series{pair}");
        out.push(result);
    }
    Ok(out)
}

/// graphite-web's `aggregateWithWildcards`: series grouped by their name without the nodes at
/// `positions`, each group aggregated and renamed after the remaining nodes.
fn aggregate_wildcards(
    ctx: &Context<'_>,
    series: Vec<Series>,
    func: &str,
    positions: &[i64],
) -> Result<Vec<Series>> {
    let groups = group_by(series, |s| {
        let kept: Vec<&str> = s
            .name
            .split('.')
            .enumerate()
            .filter(|(i, _)| !i64::try_from(*i).is_ok_and(|i| positions.contains(&i)))
            .map(|(_, node)| node)
            .collect();
        kept.join(".")
    });
    let mut out = Vec::with_capacity(groups.len());
    for (key, group) in groups {
        if let Some(mut result) = aggregate_lists(ctx, vec![group], func, None)?.pop() {
            result.name = key;
            out.push(result);
        }
    }
    Ok(out)
}

/// The `*position` arguments of the `*WithWildcards` functions as node indexes. graphite-web
/// tests `index in positions` with Python's `==`, so an integral float matches and anything
/// else (a string) never does.
fn positions(args: &Args<'_, '_>) -> Result<Vec<i64>> {
    Ok(args
        .literal_rest()?
        .iter()
        .filter_map(|l| match l {
            Literal::Int(i) => Some(*i),
            Literal::Bool(b) => Some(i64::from(*b)),
            Literal::Float(f) if f.fract() == 0.0 && f.abs() < 9e15 => Some(*f as i64),
            _ => None,
        })
        .collect())
}

/// The `nodeOrTag` parameter `i` (a literal; a series expression is refused).
fn node_param(args: &Args<'_, '_>, i: usize) -> Result<NodeOrTag> {
    match args.literal(i) {
        Some(l) => NodeOrTag::from_literal(args.def.name, &l),
        None => Err(Error::arg(format!(
            "{}(): a node must be an integer or a quoted tag name",
            args.def.name
        ))),
    }
}

/// The `*nodes` literals of a `nodeOrTag` multiple parameter.
fn node_rest(args: &Args<'_, '_>) -> Result<Vec<NodeOrTag>> {
    NodeOrTag::from_literals(args.def.name, &args.literal_rest()?)
}

/// Applies a `groupBy*` callback to one group as graphite-web does: a registered function of
/// that name is called with the group as its only argument, anything else is an aggregation
/// function for `aggregate`. The first series of the result is kept.
fn apply_callback(
    ctx: &Context<'_>,
    caller: &str,
    callback: &str,
    group: Vec<Series>,
) -> Result<Series> {
    let result = match function::lookup(callback) {
        Some(def) => {
            let args = Args::with_series(ctx, def, vec![group])?;
            (def.call)(&args)?
        }
        None => aggregate_lists(ctx, vec![group], callback, None)?,
    };
    result.into_iter().next().ok_or_else(|| {
        // graphite-web fails here with an IndexError (HTTP 500).
        Error::Evaluation(format!("{caller}(): the callback {callback} returned no series"))
    })
}

// ---------------------------------------------------------------------------------------
// aggregate and its aliases
// ---------------------------------------------------------------------------------------

fn aggregate(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let series = args.series(0)?;
    let func = args.string(1)?;
    let xff = args.opt_float(2)?;
    // graphite-web rejects a bad function name even when there is nothing to aggregate.
    resolve_agg_func(&func)?;
    aggregate_lists(args.ctx, vec![series], &func, xff)
}

fn sum_series(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    aggregate_lists(args.ctx, args.series_rest()?, "sum", None)
}

fn average_series(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    aggregate_lists(args.ctx, args.series_rest()?, "average", None)
}

fn stddev_series(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    aggregate_lists(args.ctx, args.series_rest()?, "stddev", None)
}

fn min_series(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    aggregate_lists(args.ctx, args.series_rest()?, "min", None)
}

fn max_series(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    aggregate_lists(args.ctx, args.series_rest()?, "max", None)
}

fn range_of_series(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    aggregate_lists(args.ctx, args.series_rest()?, "rangeOf", None)
}

fn diff_series(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    aggregate_lists(args.ctx, args.series_rest()?, "diff", None)
}

/// A single series given alone comes back as it is (graphite-web's legacy behaviour).
fn multiply_series(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let mut lists = args.series_rest()?;
    if lists.len() == 1 && lists.first().is_some_and(|l| l.len() == 1) {
        return Ok(lists.pop().unwrap_or_default());
    }
    aggregate_lists(args.ctx, lists, "multiply", None)
}

fn aggregate_series_lists(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let (first, second) = (args.series(0)?, args.series(1)?);
    let func = args.string(2)?;
    aggregate_pairs(args.ctx, first, second, &func, args.opt_float(3)?)
}

fn sum_series_lists(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    aggregate_pairs(args.ctx, args.series(0)?, args.series(1)?, "sum", None)
}

fn diff_series_lists(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    aggregate_pairs(args.ctx, args.series(0)?, args.series(1)?, "diff", None)
}

fn multiply_series_lists(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    aggregate_pairs(args.ctx, args.series(0)?, args.series(1)?, "multiply", None)
}

fn aggregate_with_wildcards(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let series = args.series(0)?;
    let func = args.string(1)?;
    aggregate_wildcards(args.ctx, series, &func, &positions(args)?)
}

fn sum_series_with_wildcards(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    aggregate_wildcards(args.ctx, args.series(0)?, "sum", &positions(args)?)
}

fn average_series_with_wildcards(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    aggregate_wildcards(args.ctx, args.series(0)?, "average", &positions(args)?)
}

fn multiply_series_with_wildcards(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    aggregate_wildcards(args.ctx, args.series(0)?, "multiply", &positions(args)?)
}

// ---------------------------------------------------------------------------------------
// countSeries, group, percentileOfSeries, powSeries
// ---------------------------------------------------------------------------------------

fn count_series(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let lists = args.series_rest()?;
    let ctx = args.ctx;
    if lists.is_empty() {
        // graphite-web answers constantLine(0): three points over the request's range, the
        // step truncated from (until - from) / 2.
        let step = ((ctx.until - ctx.from) as f64 / 2.0) as i64;
        let mut s = Series::new("0", ctx.from, ctx.until, step, vec![Some(0.0); 3]);
        s.path_expression = "countSeries()".into();
        s.x_files_factor = ctx.effective_x_files_factor();
        return Ok(vec![s]);
    }
    let mut series: Vec<Series> = lists.into_iter().flatten().collect();
    let Some(w) = normalize_mut(series.iter_mut()) else { return Ok(Vec::new()) };
    let name = format!("countSeries({})", format_path_expressions(&series));
    let rows = series.iter().map(Series::len).max().unwrap_or(0);
    let values = vec![Some(series.len() as f64); rows];
    Ok(vec![new_series(name, w, values, ctx.effective_x_files_factor())])
}

fn group(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    Ok(args.series_rest()?.into_iter().flatten().collect())
}

fn percentile_of_series(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let mut series = args.series(0)?;
    let n = args.float(1)?;
    let interpolate = args.bool(2)?;
    if n <= 0.0 {
        return Err(Error::arg("The requested percent is required to be greater than 0"));
    }
    if series.is_empty() {
        return Ok(Vec::new());
    }
    if n.is_nan() || n > 100.0 {
        // graphite-web indexes past the sorted values (an IndexError, HTTP 500) for any point
        // that has a value.
        return Err(Error::arg(format!(
            "percentileOfSeries(): the percent must be at most 100, got {}",
            format_g(n)
        )));
    }
    let name = format!(
        "percentileOfSeries({},{})",
        series.first().map_or("", |s| s.path_expression.as_str()),
        format_g(n)
    );
    let Some(w) = normalize_mut(series.iter_mut()) else { return Ok(Vec::new()) };
    let values = series::map_rows(&series, |row| percentile(row, n, interpolate));
    Ok(vec![new_series(name, w, values, args.ctx.effective_x_files_factor())])
}

/// graphite-web's `_getPercentile(points, n, interpolate)` (NIST method) for `0 < n <= 100`.
///
/// With `interpolate` and `n = 100`, graphite-web reads past the end (HTTP 500); this returns
/// the largest value.
pub(crate) fn percentile(points: &[Option<f64>], n: f64, interpolate: bool) -> Option<f64> {
    let mut sorted: Vec<f64> = points.iter().flatten().copied().collect();
    if sorted.is_empty() {
        return None;
    }
    // Python's sort is stable and compares with `<`: equal values (0.0 and -0.0) keep their
    // order.
    sorted.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let fractional_rank = (n / 100.0) * (sorted.len() + 1) as f64;
    let mut rank = fractional_rank as usize;
    let rank_fraction = fractional_rank - rank as f64;
    if !interpolate {
        rank += rank_fraction.ceil() as usize;
    }
    let last = *sorted.last()?;
    let mut value = if rank == 0 {
        *sorted.first()?
    } else if rank - 1 == sorted.len() {
        last
    } else {
        *sorted.get(rank - 1).unwrap_or(&last)
    };
    if interpolate
        && rank != sorted.len()
        && let Some(next) = sorted.get(rank)
    {
        value += rank_fraction * (next - value);
    }
    Some(value)
}

fn pow_series(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let mut series: Vec<Series> = args.series_rest()?.into_iter().flatten().collect();
    let Some(w) = normalize_mut(series.iter_mut()) else { return Ok(Vec::new()) };
    let names: Vec<&str> = series.iter().map(|s| s.name.as_str()).collect();
    let name = format!("powSeries({})", names.join(","));
    let values = series::rows(&series)
        .iter()
        .map(|row| {
            let mut it = row.iter().copied();
            let first = it.next().flatten();
            it.fold(first, safe_pow)
        })
        .collect();
    Ok(vec![new_series(name, w, values, args.ctx.effective_x_files_factor())])
}

// ---------------------------------------------------------------------------------------
// divideSeries, divideSeriesLists, asPercent, weightedAverage
// ---------------------------------------------------------------------------------------

/// One quotient series `divideSeries(<a>,<b>)`: both consolidated to their LCM step and
/// divided by index.
fn divide_pair(ctx: &Context<'_>, mut a: Series, mut b: Series) -> Series {
    let name = format!("divideSeries({},{})", a.name, b.name);
    let w = normalize_mut([&mut a, &mut b]).unwrap_or_else(|| Window::of(&a));
    let values =
        zip_longest(&a.consolidated(), &b.consolidated()).into_iter().map(|(x, y)| safe_div(x, y));
    new_series(name, w, values.collect(), ctx.effective_x_files_factor())
}

fn divide_series(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let mut dividends = args.series(0)?;
    let divisors = args.series(1)?;
    let divisor = match divisors.as_slice() {
        [] => {
            for s in &mut dividends {
                let name = format!("divideSeries({},MISSING)", s.name);
                s.set_name(name);
                s.values.iter_mut().for_each(|v| *v = None);
            }
            return Ok(dividends);
        }
        [one] => one,
        more => {
            return Err(Error::arg(format!(
                "divideSeries second argument must reference exactly 1 series (got {})",
                more.len()
            )));
        }
    };
    Ok(dividends.into_iter().map(|d| divide_pair(args.ctx, d, divisor.clone())).collect())
}

fn divide_series_lists(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let dividends = args.series(0)?;
    let divisors = args.series(1)?;
    if dividends.len() != divisors.len() {
        return Err(Error::arg(
            "dividendSeriesList and divisorSeriesList argument must have equal length",
        ));
    }
    Ok(dividends.into_iter().zip(divisors).map(|(a, b)| divide_pair(args.ctx, a, b)).collect())
}

/// `100 * a / b`, null when `a` is null or `b` null or zero (graphite-web's
/// `safeMul(safeDiv(a, b), 100.0)`).
fn percent(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    safe_div(a, b).map(|q| q * 100.0)
}

/// `asPercent`'s total argument.
enum Total {
    /// Not given: the sum of the series.
    None,
    /// A series list.
    Series(Vec<Series>),
    /// A number, with its Python `str()` (it appears in result names).
    Number(f64, String),
    /// Anything else (a string).
    Other(Literal),
}

fn as_percent(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let mut series = args.series(0)?;
    let total = match args.value(1)? {
        Value::Series(s) => Total::Series(s),
        Value::Literal(Literal::None) => Total::None,
        Value::Literal(l @ (Literal::Int(_) | Literal::Bool(_) | Literal::Float(_))) => {
            Total::Number(literal_number(&l), l.to_string())
        }
        Value::Literal(l) => Total::Other(l),
    };
    let nodes = node_rest(args)?;
    // graphite-web normalizes the inputs first; this also makes an empty list return nothing.
    if normalize_mut(series.iter_mut()).is_none() {
        return Ok(Vec::new());
    }
    let xff = args.ctx.effective_x_files_factor();
    if !nodes.is_empty() {
        return as_percent_by_nodes(series, total, &nodes, xff);
    }
    let (total_values, total_text) = match total {
        Total::None => {
            let total: Vec<Option<f64>> = series::map_rows(&series, safe_sum);
            (total, format!("sumSeries({})", format_path_expressions(&series)))
        }
        Total::Series(mut totals) => {
            if totals.len() != 1 && totals.len() != series.len() {
                return Err(Error::arg(
                    "asPercent second argument must be missing, a single digit, reference \
                     exactly 1 series or reference the same number of series as the first \
                     argument",
                ));
            }
            if totals.len() == series.len() {
                return Ok(as_percent_pairs(series, totals, xff));
            }
            normalize_mut(series.iter_mut().chain(totals.iter_mut()));
            let total = totals.first().map(|t| (t.consolidated(), t.name.clone()));
            total.unwrap_or_default()
        }
        Total::Number(value, text) => {
            // graphite-web repeats the number len(seriesList[0]) times: the raw length, even
            // when the series reads consolidated.
            let len = series.first().map_or(0, |s| s.values.len());
            (vec![Some(value); len], text)
        }
        Total::Other(l) => {
            // graphite-web fails dividing by it (a TypeError, HTTP 500).
            return Err(Error::arg(format!(
                "asPercent(): total must be a number or a series list, got {}",
                function::literal_repr(&l)
            )));
        }
    };
    Ok(series
        .iter()
        .map(|s| {
            let values = zip_longest(&s.consolidated(), &total_values)
                .into_iter()
                .map(|(v, t)| percent(v, t));
            let shown = if total_text.is_empty() { &s.path_expression } else { &total_text };
            let name = format!("asPercent({},{shown})", s.name);
            // The result keeps the series' own step even when it was read consolidated.
            new_series(name, Window::of_raw(s), values.collect(), xff)
        })
        .collect())
}

/// A number literal's value (integers, booleans and floats).
fn literal_number(l: &Literal) -> f64 {
    match l {
        Literal::Int(i) => *i as f64,
        Literal::Float(f) => *f,
        Literal::Bool(b) => f64::from(u8::from(*b)),
        Literal::Str(_) | Literal::None => 0.0,
    }
}

/// `asPercent(list, totals)` with as many totals as series: both sorted by name and paired.
fn as_percent_pairs(mut series: Vec<Series>, mut totals: Vec<Series>, xff: f64) -> Vec<Series> {
    series.sort_by(|a, b| a.name.cmp(&b.name));
    totals.sort_by(|a, b| a.name.cmp(&b.name));
    series
        .into_iter()
        .zip(totals)
        .map(|(mut a, mut b)| {
            let name = format!("asPercent({},{})", a.name, b.name);
            let w = normalize_mut([&mut a, &mut b]).unwrap_or_else(|| Window::of(&a));
            let values = zip_longest(&a.consolidated(), &b.consolidated())
                .into_iter()
                .map(|(x, y)| percent(x, y));
            new_series(name, w, values.collect(), xff)
        })
        .collect()
}

/// A group's total as graphite-web's `asPercent` builds it: a lone series is its own total,
/// several are summed into `sumSeries(<path expressions>)` after normalizing the group (whose
/// window becomes the "last window", see [`as_percent_by_nodes`]).
fn group_total(mut group: Vec<Series>, last: &mut Option<Window>, xff: f64) -> Option<Series> {
    if group.len() <= 1 {
        return group.pop();
    }
    let name = format!("sumSeries({})", format_path_expressions(&group));
    let w = normalize_mut(group.iter_mut())?;
    *last = Some(w);
    let values = series::map_rows(&group, safe_sum);
    Some(new_series(name, w, values, xff))
}

/// `asPercent` with nodes: series and totals grouped by their node/tag key.
///
/// graphite-web gives an all-null `MISSING` series the window (start, end, step) of whatever
/// `normalize` ran last — that is reproduced. When none has run yet graphite-web fails (an
/// `UnboundLocalError`, HTTP 500); we use the series' own window instead.
fn as_percent_by_nodes(
    series: Vec<Series>,
    total: Total,
    nodes: &[NodeOrTag],
    xff: f64,
) -> Result<Vec<Series>> {
    let groups = group_by(series, |s| agg_key(s, nodes));
    let mut keys: Vec<String> = groups.iter().map(|(k, _)| k.clone()).collect();
    let mut last: Option<Window> = None;
    let mut totals: HashMap<String, Series> = HashMap::new();
    match total {
        Total::None => {
            for (key, group) in &groups {
                if let Some(t) = group_total(group.clone(), &mut last, xff) {
                    totals.insert(key.clone(), t);
                }
            }
        }
        Total::Series(list) => {
            let mut known: HashSet<String> = keys.iter().cloned().collect();
            for (key, group) in group_by(list, |s| agg_key(s, nodes)) {
                if known.insert(key.clone()) {
                    keys.push(key.clone());
                }
                if let Some(t) = group_total(group, &mut last, xff) {
                    totals.insert(key, t);
                }
            }
        }
        Total::Number(..) | Total::Other(_) => {
            return Err(Error::arg("total must be None or a seriesList"));
        }
    }
    let mut groups: HashMap<String, Vec<Series>> = groups.into_iter().collect();
    let mut out = Vec::new();
    for key in keys {
        let Some(group) = groups.remove(&key) else {
            // Totals with no series.
            if let Some(t) = totals.get(&key) {
                let name = format!("asPercent(MISSING,{})", t.name);
                let w = last.unwrap_or_else(|| Window::of(t));
                out.push(new_series(name, w, vec![None; t.len()], xff));
            }
            continue;
        };
        for mut s in group {
            match totals.get_mut(&key) {
                None => {
                    let name = format!("asPercent({},MISSING)", s.name);
                    let w = last.unwrap_or_else(|| Window::of(&s));
                    out.push(new_series(name, w, vec![None; s.len()], xff));
                }
                Some(t) => {
                    let name = format!("asPercent({},{})", s.name, t.name);
                    let w = normalize_mut([&mut s, t]).unwrap_or_else(|| Window::of(&s));
                    last = Some(w);
                    let values = zip_longest(&s.consolidated(), &t.consolidated())
                        .into_iter()
                        .map(|(x, y)| percent(x, y));
                    out.push(new_series(name, w, values.collect(), xff));
                }
            }
        }
    }
    Ok(out)
}

fn weighted_average(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let averages = args.series(0)?;
    let weights = args.series(1)?;
    let nodes = node_rest(args)?;
    let ctx = args.ctx;
    let xff = ctx.effective_x_files_factor();
    if averages.len() != weights.len() {
        return Err(Error::arg(format!(
            "weightedAverage must receive the same number of series for seriesListAvg and \
             seriesListWeight but received respectively {} and {}",
            averages.len(),
            weights.len()
        )));
    }
    // key -> (average, weight), keys in order of first appearance; later series win.
    let mut order: Vec<String> = Vec::new();
    let mut pairs: HashMap<String, (Option<&Series>, Option<&Series>)> = HashMap::new();
    for (a, w) in averages.iter().zip(&weights) {
        for (s, is_avg) in [(a, true), (w, false)] {
            let key = agg_key(s, &nodes);
            let entry = pairs.entry(key.clone()).or_insert_with(|| {
                order.push(key);
                (None, None)
            });
            if is_avg {
                entry.0 = Some(s);
            } else {
                entry.1 = Some(s);
            }
        }
    }
    let products: Vec<Series> = order
        .iter()
        .filter_map(|key| match pairs.get(key) {
            Some((Some(a), Some(w))) => {
                let values = zip_longest(&a.consolidated(), &w.consolidated())
                    .into_iter()
                    .map(|(x, y)| safe_mul(x, y));
                let name = format!("product({},{})", w.name, a.name);
                Some(new_series(name, Window::of_raw(a), values.collect(), xff))
            }
            _ => None,
        })
        .collect();
    if products.is_empty() {
        return Ok(Vec::new());
    }
    let sum_products = aggregate_lists(ctx, vec![products], "sum", None)?.pop();
    let sum_weights = aggregate_lists(ctx, vec![weights.clone()], "sum", None)?.pop();
    let (Some(sp), Some(sw)) = (sum_products, sum_weights) else { return Ok(Vec::new()) };
    let values = zip_longest(&sp.consolidated(), &sw.consolidated())
        .into_iter()
        .map(|(x, y)| safe_div(x, y))
        .collect();
    let sorted_paths = |list: &[Series]| {
        let set: BTreeSet<&str> = list.iter().map(|s| s.path_expression.as_str()).collect();
        set.into_iter().collect::<Vec<_>>().join(",")
    };
    let node_text: Vec<&str> = nodes.iter().map(NodeOrTag::text).collect();
    let name = format!(
        "weightedAverage({}, {}, {})",
        sorted_paths(&averages),
        sorted_paths(&weights),
        node_text.join(",")
    );
    Ok(vec![new_series(name, Window::of_raw(&sp), values, xff)])
}

// ---------------------------------------------------------------------------------------
// groupByNode(s), groupByTags, mapSeries, reduceSeries, applyByNode
// ---------------------------------------------------------------------------------------

/// graphite-web's `groupByNodes`: groups keyed by `aggKey`, the callback applied to each, the
/// result renamed after the key (its path expression is left as the callback made it).
fn group_by_nodes_core(
    ctx: &Context<'_>,
    caller: &str,
    series: Vec<Series>,
    callback: &str,
    nodes: &[NodeOrTag],
) -> Result<Vec<Series>> {
    group_by(series, |s| agg_key(s, nodes))
        .into_iter()
        .map(|(key, group)| {
            let mut result = apply_callback(ctx, caller, callback, group)?;
            result.name = key;
            Ok(result)
        })
        .collect()
}

fn group_by_node(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let series = args.series(0)?;
    let node = node_param(args, 1)?;
    let callback = args.string(2)?;
    group_by_nodes_core(args.ctx, args.def.name, series, &callback, &[node])
}

fn group_by_nodes(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let series = args.series(0)?;
    let callback = args.string(1)?;
    let nodes = node_rest(args)?;
    group_by_nodes_core(args.ctx, args.def.name, series, &callback, &nodes)
}

fn group_by_tags(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let series = args.series(0)?;
    let callback = args.string(1)?;
    let tags: Vec<String> = args
        .literal_rest()?
        .into_iter()
        .map(|l| match l {
            Literal::Str(s) => Ok(s),
            other => Err(Error::arg(format!(
                "groupByTags(): tags must be quoted tag names, got {}",
                function::literal_repr(&other)
            ))),
        })
        .collect::<Result<_>>()?;
    if tags.is_empty() {
        return Err(Error::arg("groupByTags(): no tags specified"));
    }
    let by_name = tags.iter().any(|t| t == "name");
    let tag_of = |s: &Series, t: &str| s.tags.get(t).cloned().unwrap_or_default();
    // Without `name` among the tags, results are named after the inputs' common name tag,
    // or after the callback when the names differ.
    let common_name = if by_name {
        String::new()
    } else {
        let names: BTreeSet<String> = series.iter().map(|s| tag_of(s, "name")).collect();
        match names.into_iter().collect::<Vec<_>>().as_slice() {
            [one] => one.clone(),
            _ => callback.clone(),
        }
    };
    let groups = group_by(series, |s| {
        let mut parts: Vec<String> = tags
            .iter()
            .filter(|t| !by_name || t.as_str() != "name")
            .map(|t| format!("{t}={}", tag_of(s, t)))
            .collect();
        parts.sort();
        let head = if by_name { tag_of(s, "name") } else { common_name.clone() };
        std::iter::once(head).chain(parts).collect::<Vec<_>>().join(";")
    });
    groups
        .into_iter()
        .map(|(key, group)| {
            let mut result = apply_callback(args.ctx, args.def.name, &callback, group)?;
            // graphite-web re-parses the key as a tagged name; a tag missing from a series
            // gives an empty value, which the parser rejects (HTTP 500 there too).
            let parsed = carbon_proto::tags::TaggedSeries::parse(&key)
                .map_err(|e| Error::Evaluation(format!("groupByTags(): {e}")))?;
            result.tags = parsed.tags().clone();
            result.set_name(key);
            Ok(result)
        })
        .collect()
}

/// The groups come back one after the other in a single list (see [`MAP_DESC`]).
fn map_series(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let series = args.series(0)?;
    let nodes = node_rest(args)?;
    Ok(group_by(series, |s| agg_key(s, &nodes)).into_iter().flat_map(|(_, g)| g).collect())
}

fn reduce_series(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let series = args.series(0)?;
    let function = args.string(1)?;
    let reduce_node = args.int(2)?;
    // Matchers compare with Python's `==` against node text: only strings can match.
    let matchers: Vec<Option<&str>> = args
        .rest_raw()
        .iter()
        .map(|a| match a {
            Arg::Literal(Literal::Str(s)) => Some(s.as_str()),
            _ => None,
        })
        .collect();
    let mut order: Vec<String> = Vec::new();
    let mut slots: HashMap<String, Vec<Option<Series>>> = HashMap::new();
    for s in series {
        let nodes: Vec<&str> = s.name.split('.').collect();
        let Some(node) = py_index(&nodes, reduce_node) else {
            // graphite-web: IndexError (HTTP 500).
            return Err(Error::arg(format!(
                "reduceSeries(): series {} has no node {reduce_node}",
                s.name
            )));
        };
        let Some(i) = matchers.iter().position(|m| *m == Some(*node)) else { continue };
        let key = format!("{}.reduce.{function}", py_slice_to(&nodes, reduce_node).join("."));
        let entry = slots.entry(key.clone()).or_insert_with(|| {
            order.push(key);
            vec![None; matchers.len()]
        });
        if let Some(slot) = entry.get_mut(i) {
            *slot = Some(s);
        }
    }
    if order.is_empty() {
        return Ok(Vec::new());
    }
    let def =
        function::lookup(&function).ok_or_else(|| Error::UnknownFunction(function.clone()))?;
    let mut out = Vec::with_capacity(order.len());
    for key in order {
        let group = slots.remove(&key).unwrap_or_default();
        let mut lists = Vec::with_capacity(group.len());
        for (slot, matcher) in group.into_iter().zip(&matchers) {
            match slot {
                Some(s) => lists.push(vec![s]),
                // graphite-web passes [None] on and fails inside the function (HTTP 500).
                None => {
                    return Err(Error::Evaluation(format!(
                        "reduceSeries(): no series matches {} for {key}",
                        matcher.unwrap_or("?")
                    )));
                }
            }
        }
        let call_args = Args::with_series(args.ctx, def, lists)?;
        let Some(mut result) = (def.call)(&call_args)?.into_iter().next() else {
            // graphite-web: IndexError (HTTP 500).
            return Err(Error::Evaluation(format!(
                "reduceSeries(): {function} returned no series for {key}"
            )));
        };
        result.name = key;
        out.push(result);
    }
    Ok(out)
}

fn apply_by_node(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let series = args.series(0)?;
    let node_num = args.int(1)?;
    let template = args.string(2)?;
    let new_name = args.opt_string(3)?.filter(|n| !n.is_empty());
    // graphite-web gives every result the window of the *last* input series (a loop
    // variable read after the loop).
    let Some(last) = series.last() else { return Ok(Vec::new()) };
    let (start, end) = (last.start, last.end);
    let prefixes: BTreeSet<String> = series
        .iter()
        .map(|s| {
            let nodes: Vec<&str> = s.name.split('.').collect();
            py_slice_to(&nodes, node_num.saturating_add(1)).join(".")
        })
        .collect();
    let mut out = Vec::new();
    for prefix in prefixes {
        let target = template.replace('%', &prefix);
        let expr = crate::parse::parse(&target)?.apply_templates(&BTreeMap::new());
        for mut s in args.ctx.eval_series(&expr)? {
            if let Some(n) = &new_name {
                s.name = n.replace('%', &prefix);
            }
            s.path_expression.clone_from(&prefix);
            s.start = start;
            s.end = end;
            out.push(s);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    //! Expected values, names, windows and tags below come from graphite-web 1.1.8: each target
    //! was evaluated by its `evaluateTarget` on the same data (fetch stubbed to read what
    //! `testutil::source` serves), and the output pasted here.

    use std::collections::BTreeMap;

    use super::*;
    use crate::source::MemorySource;
    use crate::testutil::{T0, eval, names, source, try_eval};

    /// One expected output series.
    struct Want {
        name: &'static str,
        path: &'static str,
        start: i64,
        end: i64,
        step: i64,
        values: &'static [Option<f64>],
        tags: &'static [(&'static str, &'static str)],
    }

    const N: Option<f64> = None;

    /// The data every test reads (60 s steps but `test.slow.cpu` at 300 s; some nulls).
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
                    Some(5.0),
                    Some(6.0),
                    N,
                    Some(8.0),
                    Some(9.0),
                    Some(10.0),
                ],
            ),
            (
                "test.web02.cpu",
                60,
                &[
                    Some(10.0),
                    N,
                    N,
                    Some(3.0),
                    Some(2.5),
                    Some(1.0),
                    Some(0.0),
                    Some(-1.0),
                    N,
                    Some(4.0),
                ],
            ),
            (
                "test.db01.cpu",
                60,
                &[
                    N,
                    Some(7.0),
                    Some(7.0),
                    N,
                    Some(0.5),
                    Some(100.0),
                    Some(3.0),
                    Some(3.0),
                    Some(3.0),
                    N,
                ],
            ),
            ("test.slow.cpu", 300, &[Some(50.0), N, Some(20.0)]),
            ("test.empty.cpu", 60, &[N; 10]),
            (
                "test.web01.mem",
                60,
                &[
                    Some(100.0),
                    Some(200.0),
                    Some(300.0),
                    Some(400.0),
                    Some(500.0),
                    Some(600.0),
                    Some(700.0),
                    Some(800.0),
                    Some(900.0),
                    Some(1000.0),
                ],
            ),
            (
                "test.web02.mem",
                60,
                &[
                    Some(50.0),
                    Some(50.0),
                    N,
                    Some(50.0),
                    Some(50.0),
                    Some(0.0),
                    Some(50.0),
                    Some(50.0),
                    Some(50.0),
                    Some(50.0),
                ],
            ),
            (
                "disk.used;dc=dc1;server=web01",
                60,
                &[
                    Some(1.0),
                    Some(2.0),
                    Some(3.0),
                    Some(4.0),
                    Some(5.0),
                    Some(6.0),
                    Some(7.0),
                    Some(8.0),
                    Some(9.0),
                    Some(10.0),
                ],
            ),
            (
                "disk.used;dc=dc1;server=web02",
                60,
                &[Some(2.0), N, Some(2.0), N, Some(2.0), N, Some(2.0), N, Some(2.0), N],
            ),
            ("disk.used;dc=dc2;server=db01", 60, &[Some(0.5); 10]),
            (
                "disk.free;dc=dc1;server=web01",
                60,
                &[
                    Some(9.0),
                    Some(8.0),
                    Some(7.0),
                    Some(6.0),
                    Some(5.0),
                    Some(4.0),
                    Some(3.0),
                    Some(2.0),
                    Some(1.0),
                    Some(0.0),
                ],
            ),
        ])
    }

    /// The request range: ten 60 s points from `T0`.
    const FROM: i64 = T0 - 60;
    const UNTIL: i64 = T0 + 540;

    fn run(target: &str) -> Vec<Series> {
        eval(&data(), target, FROM, UNTIL)
    }

    fn error(target: &str) -> String {
        match try_eval(&data(), target, FROM, UNTIL) {
            Ok(s) => panic!("{target}: expected an error, got {:?}", names(&s)),
            Err(e) => e.to_string(),
        }
    }

    #[track_caller]
    fn check(target: &str, want: &[Want]) {
        let got = run(target);
        assert_eq!(names(&got), want.iter().map(|w| w.name).collect::<Vec<_>>(), "{target}: names");
        for (g, w) in got.iter().zip(want) {
            let what = format!("{target}: {}", w.name);
            assert_eq!(g.path_expression, w.path, "{what}: path expression");
            assert_eq!((g.start, g.end, g.step), (w.start, w.end, w.step), "{what}: window");
            assert_eq!(g.consolidated(), w.values, "{what}: values");
            let tags: BTreeMap<String, String> =
                w.tags.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            assert_eq!(g.tags, tags, "{what}: tags");
        }
    }

    #[test]
    fn sum_series_skips_nulls_and_names_after_path_expression() {
        check(
            "sumSeries(test.web0*.cpu)",
            &[Want {
                name: "sumSeries(test.web0*.cpu)",
                path: "sumSeries(test.web0*.cpu)",
                start: T0,
                end: T0 + 600,
                step: 60,
                values: &[
                    Some(11.0),
                    Some(2.0),
                    None,
                    Some(7.0),
                    Some(7.5),
                    Some(7.0),
                    Some(0.0),
                    Some(7.0),
                    Some(9.0),
                    Some(14.0),
                ],
                tags: &[("aggregatedBy", "sum"), ("name", "sumSeries(test.web0*.cpu)")],
            }],
        );
    }

    #[test]
    fn sum_alias_takes_several_lists() {
        check(
            "sum(test.web01.cpu,test.db01.cpu)",
            &[Want {
                name: "sumSeries(test.web01.cpu,test.db01.cpu)",
                path: "sumSeries(test.web01.cpu,test.db01.cpu)",
                start: T0,
                end: T0 + 600,
                step: 60,
                values: &[
                    Some(1.0),
                    Some(9.0),
                    Some(7.0),
                    Some(4.0),
                    Some(5.5),
                    Some(106.0),
                    Some(3.0),
                    Some(11.0),
                    Some(12.0),
                    Some(10.0),
                ],
                tags: &[
                    ("aggregatedBy", "sum"),
                    ("name", "sumSeries(test.web01.cpu,test.db01.cpu)"),
                ],
            }],
        );
    }

    #[test]
    fn sum_series_consolidates_steps_to_their_lcm() {
        check(
            "sumSeries(test.{web01,slow}.cpu)",
            &[Want {
                name: "sumSeries(test.{web01,slow}.cpu)",
                path: "sumSeries(test.{web01,slow}.cpu)",
                start: T0,
                end: T0 + 600,
                step: 300,
                values: &[Some(3.0), Some(28.25)],
                tags: &[("aggregatedBy", "sum"), ("name", "sumSeries(test.{web01,slow}.cpu)")],
            }],
        );
    }

    #[test]
    fn sum_series_of_nothing_is_empty() {
        check("sumSeries(test.nothing.*)", &[]);
    }

    #[test]
    fn sum_series_rows_of_only_nulls_stay_null() {
        check(
            "sumSeries(test.empty.cpu,test.web02.cpu)",
            &[Want {
                name: "sumSeries(test.empty.cpu,test.web02.cpu)",
                path: "sumSeries(test.empty.cpu,test.web02.cpu)",
                start: T0,
                end: T0 + 600,
                step: 60,
                values: &[
                    Some(10.0),
                    None,
                    None,
                    Some(3.0),
                    Some(2.5),
                    Some(1.0),
                    Some(0.0),
                    Some(-1.0),
                    None,
                    Some(4.0),
                ],
                tags: &[
                    ("aggregatedBy", "sum"),
                    ("name", "sumSeries(test.empty.cpu,test.web02.cpu)"),
                ],
            }],
        );
    }

    #[test]
    fn sum_series_keeps_the_tags_all_inputs_share() {
        check(
            "sumSeries(seriesByTag('name=disk.used','dc=dc1'))",
            &[Want {
                name: "sumSeries(seriesByTag('name=disk.used','dc=dc1'))",
                path: "sumSeries(seriesByTag('name=disk.used','dc=dc1'))",
                start: T0,
                end: T0 + 600,
                step: 60,
                values: &[
                    Some(3.0),
                    Some(2.0),
                    Some(5.0),
                    Some(4.0),
                    Some(7.0),
                    Some(6.0),
                    Some(9.0),
                    Some(8.0),
                    Some(11.0),
                    Some(10.0),
                ],
                tags: &[("aggregatedBy", "sum"), ("dc", "dc1"), ("name", "disk.used")],
            }],
        );
    }

    #[test]
    fn sum_series_by_pipe() {
        check(
            "test.web0*.cpu|sumSeries()",
            &[Want {
                name: "sumSeries(test.web0*.cpu)",
                path: "sumSeries(test.web0*.cpu)",
                start: T0,
                end: T0 + 600,
                step: 60,
                values: &[
                    Some(11.0),
                    Some(2.0),
                    None,
                    Some(7.0),
                    Some(7.5),
                    Some(7.0),
                    Some(0.0),
                    Some(7.0),
                    Some(9.0),
                    Some(14.0),
                ],
                tags: &[("aggregatedBy", "sum"), ("name", "sumSeries(test.web0*.cpu)")],
            }],
        );
    }

    #[test]
    fn average_series_over_non_null_values() {
        check(
            "averageSeries(test.{web01,web02,db01}.cpu)",
            &[Want {
                name: "averageSeries(test.{web01,web02,db01}.cpu)",
                path: "averageSeries(test.{web01,web02,db01}.cpu)",
                start: T0,
                end: T0 + 600,
                step: 60,
                values: &[
                    Some(5.5),
                    Some(4.5),
                    Some(7.0),
                    Some(3.5),
                    Some(2.6666666666666665),
                    Some(35.666666666666664),
                    Some(1.5),
                    Some(3.3333333333333335),
                    Some(6.0),
                    Some(7.0),
                ],
                tags: &[
                    ("aggregatedBy", "average"),
                    ("name", "averageSeries(test.{web01,web02,db01}.cpu)"),
                ],
            }],
        );
    }

    #[test]
    fn avg_alias_is_named_average_series() {
        check(
            "avg(test.web0*.cpu)",
            &[Want {
                name: "averageSeries(test.web0*.cpu)",
                path: "averageSeries(test.web0*.cpu)",
                start: T0,
                end: T0 + 600,
                step: 60,
                values: &[
                    Some(5.5),
                    Some(2.0),
                    None,
                    Some(3.5),
                    Some(3.75),
                    Some(3.5),
                    Some(0.0),
                    Some(3.5),
                    Some(9.0),
                    Some(7.0),
                ],
                tags: &[("aggregatedBy", "average"), ("name", "averageSeries(test.web0*.cpu)")],
            }],
        );
    }

    #[test]
    fn average_series_with_mixed_steps() {
        check(
            "averageSeries(test.*.cpu)",
            &[Want {
                name: "averageSeries(test.*.cpu)",
                path: "averageSeries(test.*.cpu)",
                start: T0,
                end: T0 + 600,
                step: 300,
                values: &[Some(4.333333333333333), Some(14.125)],
                tags: &[("aggregatedBy", "average"), ("name", "averageSeries(test.*.cpu)")],
            }],
        );
    }

    #[test]
    fn min_series_per_point() {
        check(
            "minSeries(test.web0*.cpu)",
            &[Want {
                name: "minSeries(test.web0*.cpu)",
                path: "minSeries(test.web0*.cpu)",
                start: T0,
                end: T0 + 600,
                step: 60,
                values: &[
                    Some(1.0),
                    Some(2.0),
                    None,
                    Some(3.0),
                    Some(2.5),
                    Some(1.0),
                    Some(0.0),
                    Some(-1.0),
                    Some(9.0),
                    Some(4.0),
                ],
                tags: &[("aggregatedBy", "min"), ("name", "minSeries(test.web0*.cpu)")],
            }],
        );
    }

    #[test]
    fn max_series_per_point() {
        check(
            "maxSeries(test.web0*.cpu,test.db01.cpu)",
            &[Want {
                name: "maxSeries(test.web0*.cpu,test.db01.cpu)",
                path: "maxSeries(test.web0*.cpu,test.db01.cpu)",
                start: T0,
                end: T0 + 600,
                step: 60,
                values: &[
                    Some(10.0),
                    Some(7.0),
                    Some(7.0),
                    Some(4.0),
                    Some(5.0),
                    Some(100.0),
                    Some(3.0),
                    Some(8.0),
                    Some(9.0),
                    Some(10.0),
                ],
                tags: &[
                    ("aggregatedBy", "max"),
                    ("name", "maxSeries(test.web0*.cpu,test.db01.cpu)"),
                ],
            }],
        );
    }

    #[test]
    fn diff_series_subtracts_the_rest_from_the_first() {
        check(
            "diffSeries(test.web01.cpu,test.web02.cpu)",
            &[Want {
                name: "diffSeries(test.web01.cpu,test.web02.cpu)",
                path: "diffSeries(test.web01.cpu,test.web02.cpu)",
                start: T0,
                end: T0 + 600,
                step: 60,
                values: &[
                    Some(-9.0),
                    Some(2.0),
                    None,
                    Some(1.0),
                    Some(2.5),
                    Some(5.0),
                    Some(0.0),
                    Some(9.0),
                    Some(9.0),
                    Some(6.0),
                ],
                tags: &[
                    ("aggregatedBy", "diff"),
                    ("name", "diffSeries(test.web01.cpu,test.web02.cpu)"),
                ],
            }],
        );
    }

    #[test]
    fn diff_series_skips_a_null_first_value() {
        check(
            "diffSeries(test.db01.cpu,test.web0*.cpu)",
            &[Want {
                name: "diffSeries(test.db01.cpu,test.web0*.cpu)",
                path: "diffSeries(test.db01.cpu,test.web0*.cpu)",
                start: T0,
                end: T0 + 600,
                step: 60,
                values: &[
                    Some(-9.0),
                    Some(5.0),
                    Some(7.0),
                    Some(1.0),
                    Some(-7.0),
                    Some(93.0),
                    Some(3.0),
                    Some(-4.0),
                    Some(-6.0),
                    Some(6.0),
                ],
                tags: &[
                    ("aggregatedBy", "diff"),
                    ("name", "diffSeries(test.db01.cpu,test.web0*.cpu)"),
                ],
            }],
        );
    }

    #[test]
    fn multiply_series_any_null_is_null() {
        check(
            "multiplySeries(test.web01.cpu,test.web02.cpu)",
            &[Want {
                name: "multiplySeries(test.web01.cpu,test.web02.cpu)",
                path: "multiplySeries(test.web01.cpu,test.web02.cpu)",
                start: T0,
                end: T0 + 600,
                step: 60,
                values: &[
                    Some(10.0),
                    None,
                    None,
                    Some(12.0),
                    Some(12.5),
                    Some(6.0),
                    None,
                    Some(-8.0),
                    None,
                    Some(40.0),
                ],
                tags: &[
                    ("aggregatedBy", "multiply"),
                    ("name", "multiplySeries(test.web01.cpu,test.web02.cpu)"),
                ],
            }],
        );
    }

    #[test]
    fn multiply_series_single_series_comes_back_unchanged() {
        check(
            "multiplySeries(test.web01.cpu)",
            &[Want {
                name: "test.web01.cpu",
                path: "test.web01.cpu",
                start: T0,
                end: T0 + 600,
                step: 60,
                values: &[
                    Some(1.0),
                    Some(2.0),
                    None,
                    Some(4.0),
                    Some(5.0),
                    Some(6.0),
                    None,
                    Some(8.0),
                    Some(9.0),
                    Some(10.0),
                ],
                tags: &[("name", "test.web01.cpu")],
            }],
        );
    }

    #[test]
    fn multiply_series_of_one_wildcard_list() {
        check(
            "multiplySeries(test.web0*.mem)",
            &[Want {
                name: "multiplySeries(test.web0*.mem)",
                path: "multiplySeries(test.web0*.mem)",
                start: T0,
                end: T0 + 600,
                step: 60,
                values: &[
                    Some(5000.0),
                    Some(10000.0),
                    None,
                    Some(20000.0),
                    Some(25000.0),
                    Some(0.0),
                    Some(35000.0),
                    Some(40000.0),
                    Some(45000.0),
                    Some(50000.0),
                ],
                tags: &[("aggregatedBy", "multiply"), ("name", "multiplySeries(test.web0*.mem)")],
            }],
        );
    }

    #[test]
    fn stddev_series_is_the_population_deviation() {
        check(
            "stddevSeries(test.web0*.cpu,test.db01.cpu)",
            &[Want {
                name: "stddevSeries(test.web0*.cpu,test.db01.cpu)",
                path: "stddevSeries(test.web0*.cpu,test.db01.cpu)",
                start: T0,
                end: T0 + 600,
                step: 60,
                values: &[
                    Some(4.5),
                    Some(2.5),
                    Some(0.0),
                    Some(0.5),
                    Some(1.8408935028645437),
                    Some(45.53631029799797),
                    Some(1.5),
                    Some(3.6817870057290873),
                    Some(3.0),
                    Some(3.0),
                ],
                tags: &[
                    ("aggregatedBy", "stddev"),
                    ("name", "stddevSeries(test.web0*.cpu,test.db01.cpu)"),
                ],
            }],
        );
    }

    #[test]
    fn range_of_series_is_max_minus_min() {
        check(
            "rangeOfSeries(test.{web01,web02,db01}.cpu)",
            &[Want {
                name: "rangeOfSeries(test.{web01,web02,db01}.cpu)",
                path: "rangeOfSeries(test.{web01,web02,db01}.cpu)",
                start: T0,
                end: T0 + 600,
                step: 60,
                values: &[
                    Some(9.0),
                    Some(5.0),
                    Some(0.0),
                    Some(1.0),
                    Some(4.5),
                    Some(99.0),
                    Some(3.0),
                    Some(9.0),
                    Some(6.0),
                    Some(6.0),
                ],
                tags: &[
                    ("aggregatedBy", "rangeOf"),
                    ("name", "rangeOfSeries(test.{web01,web02,db01}.cpu)"),
                ],
            }],
        );
    }

    #[test]
    fn count_series_counts_inputs() {
        check(
            "countSeries(test.web0*.cpu)",
            &[Want {
                name: "countSeries(test.web0*.cpu)",
                path: "countSeries(test.web0*.cpu)",
                start: T0,
                end: T0 + 600,
                step: 60,
                values: &[
                    Some(2.0),
                    Some(2.0),
                    Some(2.0),
                    Some(2.0),
                    Some(2.0),
                    Some(2.0),
                    Some(2.0),
                    Some(2.0),
                    Some(2.0),
                    Some(2.0),
                ],
                tags: &[("name", "countSeries(test.web0*.cpu)")],
            }],
        );
    }

    #[test]
    fn count_series_over_mixed_steps() {
        check(
            "countSeries(test.*.cpu,test.web01.mem)",
            &[Want {
                name: "countSeries(test.*.cpu,test.web01.mem)",
                path: "countSeries(test.*.cpu,test.web01.mem)",
                start: T0,
                end: T0 + 600,
                step: 300,
                values: &[Some(6.0), Some(6.0)],
                tags: &[("name", "countSeries(test.*.cpu,test.web01.mem)")],
            }],
        );
    }

    #[test]
    fn count_series_without_arguments_is_a_zero_line() {
        check(
            "countSeries()",
            &[Want {
                name: "0",
                path: "countSeries()",
                start: T0 - 60,
                end: T0 + 540,
                step: 300,
                values: &[Some(0.0), Some(0.0), Some(0.0)],
                tags: &[("name", "0")],
            }],
        );
    }

    #[test]
    fn count_series_of_nothing_is_empty() {
        check("countSeries(test.nothing)", &[]);
    }

    #[test]
    fn aggregate_median() {
        check(
            "aggregate(test.{web01,web02,db01}.cpu,'median')",
            &[Want {
                name: "medianSeries(test.{web01,web02,db01}.cpu)",
                path: "medianSeries(test.{web01,web02,db01}.cpu)",
                start: T0,
                end: T0 + 600,
                step: 60,
                values: &[
                    Some(5.5),
                    Some(4.5),
                    Some(7.0),
                    Some(3.5),
                    Some(2.5),
                    Some(6.0),
                    Some(1.5),
                    Some(3.0),
                    Some(6.0),
                    Some(7.0),
                ],
                tags: &[
                    ("aggregatedBy", "median"),
                    ("name", "medianSeries(test.{web01,web02,db01}.cpu)"),
                ],
            }],
        );
    }

    #[test]
    fn aggregate_strips_a_series_suffix() {
        check(
            "aggregate(test.web0*.cpu,'sumSeries')",
            &[Want {
                name: "sumSeries(test.web0*.cpu)",
                path: "sumSeries(test.web0*.cpu)",
                start: T0,
                end: T0 + 600,
                step: 60,
                values: &[
                    Some(11.0),
                    Some(2.0),
                    None,
                    Some(7.0),
                    Some(7.5),
                    Some(7.0),
                    Some(0.0),
                    Some(7.0),
                    Some(9.0),
                    Some(14.0),
                ],
                tags: &[("aggregatedBy", "sum"), ("name", "sumSeries(test.web0*.cpu)")],
            }],
        );
    }

    #[test]
    fn aggregate_avg_zero_counts_nulls_as_zero() {
        check(
            "aggregate(test.web0*.cpu,'avg_zero')",
            &[Want {
                name: "avg_zeroSeries(test.web0*.cpu)",
                path: "avg_zeroSeries(test.web0*.cpu)",
                start: T0,
                end: T0 + 600,
                step: 60,
                values: &[
                    Some(5.5),
                    Some(1.0),
                    None,
                    Some(3.5),
                    Some(3.75),
                    Some(3.5),
                    Some(0.0),
                    Some(3.5),
                    Some(4.5),
                    Some(7.0),
                ],
                tags: &[("aggregatedBy", "avg_zero"), ("name", "avg_zeroSeries(test.web0*.cpu)")],
            }],
        );
    }

    #[test]
    fn aggregate_count() {
        check(
            "aggregate(test.{web01,web02,db01}.cpu,'count')",
            &[Want {
                name: "countSeries(test.{web01,web02,db01}.cpu)",
                path: "countSeries(test.{web01,web02,db01}.cpu)",
                start: T0,
                end: T0 + 600,
                step: 60,
                values: &[
                    Some(2.0),
                    Some(2.0),
                    Some(1.0),
                    Some(2.0),
                    Some(3.0),
                    Some(3.0),
                    Some(2.0),
                    Some(3.0),
                    Some(2.0),
                    Some(2.0),
                ],
                tags: &[
                    ("aggregatedBy", "count"),
                    ("name", "countSeries(test.{web01,web02,db01}.cpu)"),
                ],
            }],
        );
    }

    #[test]
    fn aggregate_last() {
        check(
            "aggregate(test.web0*.cpu,'last')",
            &[Want {
                name: "lastSeries(test.web0*.cpu)",
                path: "lastSeries(test.web0*.cpu)",
                start: T0,
                end: T0 + 600,
                step: 60,
                values: &[
                    Some(10.0),
                    Some(2.0),
                    None,
                    Some(3.0),
                    Some(2.5),
                    Some(1.0),
                    Some(0.0),
                    Some(-1.0),
                    Some(9.0),
                    Some(4.0),
                ],
                tags: &[("aggregatedBy", "last"), ("name", "lastSeries(test.web0*.cpu)")],
            }],
        );
    }

    #[test]
    fn aggregate_alias_names_the_result_after_the_alias() {
        check(
            "aggregate(test.web0*.cpu,'avg')",
            &[Want {
                name: "avgSeries(test.web0*.cpu)",
                path: "avgSeries(test.web0*.cpu)",
                start: T0,
                end: T0 + 600,
                step: 60,
                values: &[
                    Some(5.5),
                    Some(2.0),
                    None,
                    Some(3.5),
                    Some(3.75),
                    Some(3.5),
                    Some(0.0),
                    Some(3.5),
                    Some(9.0),
                    Some(7.0),
                ],
                tags: &[("aggregatedBy", "avg"), ("name", "avgSeries(test.web0*.cpu)")],
            }],
        );
    }

    #[test]
    fn aggregate_total_and_keyword() {
        check(
            "aggregate(test.web0*.cpu,func='total')",
            &[Want {
                name: "totalSeries(test.web0*.cpu)",
                path: "totalSeries(test.web0*.cpu)",
                start: T0,
                end: T0 + 600,
                step: 60,
                values: &[
                    Some(11.0),
                    Some(2.0),
                    None,
                    Some(7.0),
                    Some(7.5),
                    Some(7.0),
                    Some(0.0),
                    Some(7.0),
                    Some(9.0),
                    Some(14.0),
                ],
                tags: &[("aggregatedBy", "total"), ("name", "totalSeries(test.web0*.cpu)")],
            }],
        );
    }

    #[test]
    fn aggregate_range() {
        check(
            "aggregate(test.web0*.cpu,'rangeOf')",
            &[Want {
                name: "rangeOfSeries(test.web0*.cpu)",
                path: "rangeOfSeries(test.web0*.cpu)",
                start: T0,
                end: T0 + 600,
                step: 60,
                values: &[
                    Some(9.0),
                    Some(0.0),
                    None,
                    Some(1.0),
                    Some(2.5),
                    Some(5.0),
                    Some(0.0),
                    Some(9.0),
                    Some(0.0),
                    Some(6.0),
                ],
                tags: &[("aggregatedBy", "rangeOf"), ("name", "rangeOfSeries(test.web0*.cpu)")],
            }],
        );
    }

    #[test]
    fn aggregate_multiply() {
        check(
            "aggregate(test.web0*.mem,'multiply')",
            &[Want {
                name: "multiplySeries(test.web0*.mem)",
                path: "multiplySeries(test.web0*.mem)",
                start: T0,
                end: T0 + 600,
                step: 60,
                values: &[
                    Some(5000.0),
                    Some(10000.0),
                    None,
                    Some(20000.0),
                    Some(25000.0),
                    Some(0.0),
                    Some(35000.0),
                    Some(40000.0),
                    Some(45000.0),
                    Some(50000.0),
                ],
                tags: &[("aggregatedBy", "multiply"), ("name", "multiplySeries(test.web0*.mem)")],
            }],
        );
    }

    #[test]
    fn aggregate_honours_x_files_factor() {
        check(
            "aggregate(test.{web01,web02,db01}.cpu,'sum',0.6)",
            &[Want {
                name: "sumSeries(test.{web01,web02,db01}.cpu)",
                path: "sumSeries(test.{web01,web02,db01}.cpu)",
                start: T0,
                end: T0 + 600,
                step: 60,
                values: &[
                    Some(11.0),
                    Some(9.0),
                    None,
                    Some(7.0),
                    Some(8.0),
                    Some(107.0),
                    Some(3.0),
                    Some(10.0),
                    Some(12.0),
                    Some(14.0),
                ],
                tags: &[
                    ("aggregatedBy", "sum"),
                    ("name", "sumSeries(test.{web01,web02,db01}.cpu)"),
                ],
            }],
        );
    }

    #[test]
    fn aggregate_of_tagged_series() {
        check(
            "aggregate(seriesByTag('name=disk.used'),'max')",
            &[Want {
                name: "maxSeries(seriesByTag('name=disk.used'))",
                path: "maxSeries(seriesByTag('name=disk.used'))",
                start: T0,
                end: T0 + 600,
                step: 60,
                values: &[
                    Some(2.0),
                    Some(2.0),
                    Some(3.0),
                    Some(4.0),
                    Some(5.0),
                    Some(6.0),
                    Some(7.0),
                    Some(8.0),
                    Some(9.0),
                    Some(10.0),
                ],
                tags: &[("aggregatedBy", "max"), ("name", "disk.used")],
            }],
        );
    }

    #[test]
    fn percentile_of_series_nearest_rank() {
        check(
            "percentileOfSeries(test.{web01,web02,db01}.cpu,50)",
            &[Want {
                name: "percentileOfSeries(test.{web01,web02,db01}.cpu,50)",
                path: "percentileOfSeries(test.{web01,web02,db01}.cpu,50)",
                start: T0,
                end: T0 + 600,
                step: 60,
                values: &[
                    Some(10.0),
                    Some(7.0),
                    Some(7.0),
                    Some(4.0),
                    Some(2.5),
                    Some(6.0),
                    Some(3.0),
                    Some(3.0),
                    Some(9.0),
                    Some(10.0),
                ],
                tags: &[("name", "percentileOfSeries(test.{web01,web02,db01}.cpu,50)")],
            }],
        );
    }

    #[test]
    fn percentile_of_series_interpolated() {
        check(
            "percentileOfSeries(test.{web01,web02,db01}.cpu,75,true)",
            &[Want {
                name: "percentileOfSeries(test.{web01,web02,db01}.cpu,75)",
                path: "percentileOfSeries(test.{web01,web02,db01}.cpu,75)",
                start: T0,
                end: T0 + 600,
                step: 60,
                values: &[
                    Some(10.0),
                    Some(7.0),
                    Some(7.0),
                    Some(4.0),
                    Some(5.0),
                    Some(100.0),
                    Some(3.0),
                    Some(8.0),
                    Some(9.0),
                    Some(10.0),
                ],
                tags: &[("name", "percentileOfSeries(test.{web01,web02,db01}.cpu,75)")],
            }],
        );
    }

    #[test]
    fn percentile_of_series_mixed_steps() {
        check(
            "percentileOfSeries(test.*.cpu,90)",
            &[Want {
                name: "percentileOfSeries(test.*.cpu,90)",
                path: "percentileOfSeries(test.*.cpu,90)",
                start: T0,
                end: T0 + 600,
                step: 300,
                values: &[Some(5.166666666666667), Some(27.25)],
                tags: &[("name", "percentileOfSeries(test.*.cpu,90)")],
            }],
        );
    }

    #[test]
    fn percentile_of_series_100() {
        check(
            "percentileOfSeries(test.web0*.cpu,100)",
            &[Want {
                name: "percentileOfSeries(test.web0*.cpu,100)",
                path: "percentileOfSeries(test.web0*.cpu,100)",
                start: T0,
                end: T0 + 600,
                step: 60,
                values: &[
                    Some(10.0),
                    Some(2.0),
                    None,
                    Some(4.0),
                    Some(5.0),
                    Some(6.0),
                    Some(0.0),
                    Some(8.0),
                    Some(9.0),
                    Some(10.0),
                ],
                tags: &[("name", "percentileOfSeries(test.web0*.cpu,100)")],
            }],
        );
    }

    #[test]
    fn percentile_of_series_small_fraction() {
        check(
            "percentileOfSeries(test.web0*.cpu,0.5)",
            &[Want {
                name: "percentileOfSeries(test.web0*.cpu,0.5)",
                path: "percentileOfSeries(test.web0*.cpu,0.5)",
                start: T0,
                end: T0 + 600,
                step: 60,
                values: &[
                    Some(1.0),
                    Some(2.0),
                    None,
                    Some(3.0),
                    Some(2.5),
                    Some(1.0),
                    Some(0.0),
                    Some(-1.0),
                    Some(9.0),
                    Some(4.0),
                ],
                tags: &[("name", "percentileOfSeries(test.web0*.cpu,0.5)")],
            }],
        );
    }

    #[test]
    fn pow_series_chains_powers() {
        check(
            "powSeries(test.web01.cpu,test.web02.cpu)",
            &[Want {
                name: "powSeries(test.web01.cpu,test.web02.cpu)",
                path: "powSeries(test.web01.cpu,test.web02.cpu)",
                start: T0,
                end: T0 + 600,
                step: 60,
                values: &[
                    Some(1.0),
                    None,
                    None,
                    Some(64.0),
                    Some(55.90169943749474),
                    Some(6.0),
                    None,
                    Some(0.125),
                    None,
                    Some(10000.0),
                ],
                tags: &[("name", "powSeries(test.web01.cpu,test.web02.cpu)")],
            }],
        );
    }

    #[test]
    fn pow_series_negative_base_fractional_exponent_is_null() {
        check(
            "powSeries(test.web02.cpu,test.web02.mem)",
            &[Want {
                name: "powSeries(test.web02.cpu,test.web02.mem)",
                path: "powSeries(test.web02.cpu,test.web02.mem)",
                start: T0,
                end: T0 + 600,
                step: 60,
                values: &[
                    Some(1e+50),
                    None,
                    None,
                    Some(7.178979876918526e+23),
                    Some(7.888609052210119e+19),
                    Some(1.0),
                    Some(0.0),
                    Some(1.0),
                    None,
                    Some(1.2676506002282294e+30),
                ],
                tags: &[("name", "powSeries(test.web02.cpu,test.web02.mem)")],
            }],
        );
    }

    #[test]
    fn pow_series_overflow_is_null() {
        check(
            "powSeries(test.web01.mem,test.web01.mem)",
            &[Want {
                name: "powSeries(test.web01.mem,test.web01.mem)",
                path: "powSeries(test.web01.mem,test.web01.mem)",
                start: T0,
                end: T0 + 600,
                step: 60,
                values: &[Some(1e+200), None, None, None, None, None, None, None, None, None],
                tags: &[("name", "powSeries(test.web01.mem,test.web01.mem)")],
            }],
        );
    }

    #[test]
    fn pow_series_zero_to_negative_power_is_null() {
        check(
            "powSeries(test.web02.mem,test.web02.cpu)",
            &[Want {
                name: "powSeries(test.web02.mem,test.web02.cpu)",
                path: "powSeries(test.web02.mem,test.web02.cpu)",
                start: T0,
                end: T0 + 600,
                step: 60,
                values: &[
                    Some(9.765625e+16),
                    None,
                    None,
                    Some(125000.0),
                    Some(17677.66952966369),
                    Some(0.0),
                    Some(1.0),
                    Some(0.02),
                    None,
                    Some(6250000.0),
                ],
                tags: &[("name", "powSeries(test.web02.mem,test.web02.cpu)")],
            }],
        );
    }

    #[test]
    fn divide_series_by_one_divisor() {
        check(
            "divideSeries(test.web0*.cpu,test.db01.cpu)",
            &[
                Want {
                    name: "divideSeries(test.web01.cpu,test.db01.cpu)",
                    path: "divideSeries(test.web01.cpu,test.db01.cpu)",
                    start: T0,
                    end: T0 + 600,
                    step: 60,
                    values: &[
                        None,
                        Some(0.2857142857142857),
                        None,
                        None,
                        Some(10.0),
                        Some(0.06),
                        None,
                        Some(2.6666666666666665),
                        Some(3.0),
                        None,
                    ],
                    tags: &[("name", "divideSeries(test.web01.cpu,test.db01.cpu)")],
                },
                Want {
                    name: "divideSeries(test.web02.cpu,test.db01.cpu)",
                    path: "divideSeries(test.web02.cpu,test.db01.cpu)",
                    start: T0,
                    end: T0 + 600,
                    step: 60,
                    values: &[
                        None,
                        None,
                        None,
                        None,
                        Some(5.0),
                        Some(0.01),
                        Some(0.0),
                        Some(-0.3333333333333333),
                        None,
                        None,
                    ],
                    tags: &[("name", "divideSeries(test.web02.cpu,test.db01.cpu)")],
                },
            ],
        );
    }

    #[test]
    fn divide_series_missing_divisor() {
        check(
            "divideSeries(test.web0*.cpu,test.nothing)",
            &[
                Want {
                    name: "divideSeries(test.web01.cpu,MISSING)",
                    path: "divideSeries(test.web01.cpu,MISSING)",
                    start: T0,
                    end: T0 + 600,
                    step: 60,
                    values: &[None, None, None, None, None, None, None, None, None, None],
                    tags: &[("name", "test.web01.cpu")],
                },
                Want {
                    name: "divideSeries(test.web02.cpu,MISSING)",
                    path: "divideSeries(test.web02.cpu,MISSING)",
                    start: T0,
                    end: T0 + 600,
                    step: 60,
                    values: &[None, None, None, None, None, None, None, None, None, None],
                    tags: &[("name", "test.web02.cpu")],
                },
            ],
        );
    }

    #[test]
    fn divide_series_with_different_steps() {
        check(
            "divideSeries(test.web01.cpu,test.slow.cpu)",
            &[Want {
                name: "divideSeries(test.web01.cpu,test.slow.cpu)",
                path: "divideSeries(test.web01.cpu,test.slow.cpu)",
                start: T0,
                end: T0 + 600,
                step: 300,
                values: &[None, Some(0.4125)],
                tags: &[("name", "divideSeries(test.web01.cpu,test.slow.cpu)")],
            }],
        );
    }

    #[test]
    fn divide_series_lists_pairs_in_order() {
        check(
            "divideSeriesLists(test.web0*.mem,test.web0*.cpu)",
            &[
                Want {
                    name: "divideSeries(test.web01.mem,test.web01.cpu)",
                    path: "divideSeries(test.web01.mem,test.web01.cpu)",
                    start: T0,
                    end: T0 + 600,
                    step: 60,
                    values: &[
                        Some(100.0),
                        Some(100.0),
                        None,
                        Some(100.0),
                        Some(100.0),
                        Some(100.0),
                        None,
                        Some(100.0),
                        Some(100.0),
                        Some(100.0),
                    ],
                    tags: &[("name", "divideSeries(test.web01.mem,test.web01.cpu)")],
                },
                Want {
                    name: "divideSeries(test.web02.mem,test.web02.cpu)",
                    path: "divideSeries(test.web02.mem,test.web02.cpu)",
                    start: T0,
                    end: T0 + 600,
                    step: 60,
                    values: &[
                        Some(5.0),
                        None,
                        None,
                        Some(16.666666666666668),
                        Some(20.0),
                        Some(0.0),
                        None,
                        Some(-50.0),
                        None,
                        Some(12.5),
                    ],
                    tags: &[("name", "divideSeries(test.web02.mem,test.web02.cpu)")],
                },
            ],
        );
    }

    #[test]
    fn as_percent_of_the_sum() {
        check(
            "asPercent(test.web0*.cpu)",
            &[
                Want {
                    name: "asPercent(test.web01.cpu,sumSeries(test.web0*.cpu))",
                    path: "asPercent(test.web01.cpu,sumSeries(test.web0*.cpu))",
                    start: T0,
                    end: T0 + 600,
                    step: 60,
                    values: &[
                        Some(9.090909090909092),
                        Some(100.0),
                        None,
                        Some(57.14285714285714),
                        Some(66.66666666666666),
                        Some(85.71428571428571),
                        None,
                        Some(114.28571428571428),
                        Some(100.0),
                        Some(71.42857142857143),
                    ],
                    tags: &[("name", "asPercent(test.web01.cpu,sumSeries(test.web0*.cpu))")],
                },
                Want {
                    name: "asPercent(test.web02.cpu,sumSeries(test.web0*.cpu))",
                    path: "asPercent(test.web02.cpu,sumSeries(test.web0*.cpu))",
                    start: T0,
                    end: T0 + 600,
                    step: 60,
                    values: &[
                        Some(90.9090909090909),
                        None,
                        None,
                        Some(42.857142857142854),
                        Some(33.33333333333333),
                        Some(14.285714285714285),
                        None,
                        Some(-14.285714285714285),
                        None,
                        Some(28.57142857142857),
                    ],
                    tags: &[("name", "asPercent(test.web02.cpu,sumSeries(test.web0*.cpu))")],
                },
            ],
        );
    }

    #[test]
    fn as_percent_of_a_number() {
        check(
            "asPercent(test.web01.cpu,20)",
            &[Want {
                name: "asPercent(test.web01.cpu,20)",
                path: "asPercent(test.web01.cpu,20)",
                start: T0,
                end: T0 + 600,
                step: 60,
                values: &[
                    Some(5.0),
                    Some(10.0),
                    None,
                    Some(20.0),
                    Some(25.0),
                    Some(30.0),
                    None,
                    Some(40.0),
                    Some(45.0),
                    Some(50.0),
                ],
                tags: &[("name", "asPercent(test.web01.cpu,20)")],
            }],
        );
    }

    #[test]
    fn as_percent_of_a_float() {
        check(
            "pct(test.web0*.cpu,0.5)",
            &[
                Want {
                    name: "asPercent(test.web01.cpu,0.5)",
                    path: "asPercent(test.web01.cpu,0.5)",
                    start: T0,
                    end: T0 + 600,
                    step: 60,
                    values: &[
                        Some(200.0),
                        Some(400.0),
                        None,
                        Some(800.0),
                        Some(1000.0),
                        Some(1200.0),
                        None,
                        Some(1600.0),
                        Some(1800.0),
                        Some(2000.0),
                    ],
                    tags: &[("name", "asPercent(test.web01.cpu,0.5)")],
                },
                Want {
                    name: "asPercent(test.web02.cpu,0.5)",
                    path: "asPercent(test.web02.cpu,0.5)",
                    start: T0,
                    end: T0 + 600,
                    step: 60,
                    values: &[
                        Some(2000.0),
                        None,
                        None,
                        Some(600.0),
                        Some(500.0),
                        Some(200.0),
                        Some(0.0),
                        Some(-200.0),
                        None,
                        Some(800.0),
                    ],
                    tags: &[("name", "asPercent(test.web02.cpu,0.5)")],
                },
            ],
        );
    }

    #[test]
    fn as_percent_of_one_series() {
        check(
            "asPercent(test.web0*.cpu,test.db01.cpu)",
            &[
                Want {
                    name: "asPercent(test.web01.cpu,test.db01.cpu)",
                    path: "asPercent(test.web01.cpu,test.db01.cpu)",
                    start: T0,
                    end: T0 + 600,
                    step: 60,
                    values: &[
                        None,
                        Some(28.57142857142857),
                        None,
                        None,
                        Some(1000.0),
                        Some(6.0),
                        None,
                        Some(266.66666666666663),
                        Some(300.0),
                        None,
                    ],
                    tags: &[("name", "asPercent(test.web01.cpu,test.db01.cpu)")],
                },
                Want {
                    name: "asPercent(test.web02.cpu,test.db01.cpu)",
                    path: "asPercent(test.web02.cpu,test.db01.cpu)",
                    start: T0,
                    end: T0 + 600,
                    step: 60,
                    values: &[
                        None,
                        None,
                        None,
                        None,
                        Some(500.0),
                        Some(1.0),
                        Some(0.0),
                        Some(-33.33333333333333),
                        None,
                        None,
                    ],
                    tags: &[("name", "asPercent(test.web02.cpu,test.db01.cpu)")],
                },
            ],
        );
    }

    #[test]
    fn as_percent_pairs_sorted_by_name() {
        check(
            "asPercent(test.web0*.cpu,test.web0*.mem)",
            &[
                Want {
                    name: "asPercent(test.web01.cpu,test.web01.mem)",
                    path: "asPercent(test.web01.cpu,test.web01.mem)",
                    start: T0,
                    end: T0 + 600,
                    step: 60,
                    values: &[
                        Some(1.0),
                        Some(1.0),
                        None,
                        Some(1.0),
                        Some(1.0),
                        Some(1.0),
                        None,
                        Some(1.0),
                        Some(1.0),
                        Some(1.0),
                    ],
                    tags: &[("name", "asPercent(test.web01.cpu,test.web01.mem)")],
                },
                Want {
                    name: "asPercent(test.web02.cpu,test.web02.mem)",
                    path: "asPercent(test.web02.cpu,test.web02.mem)",
                    start: T0,
                    end: T0 + 600,
                    step: 60,
                    values: &[
                        Some(20.0),
                        None,
                        None,
                        Some(6.0),
                        Some(5.0),
                        None,
                        Some(0.0),
                        Some(-2.0),
                        None,
                        Some(8.0),
                    ],
                    tags: &[("name", "asPercent(test.web02.cpu,test.web02.mem)")],
                },
            ],
        );
    }

    #[test]
    fn as_percent_by_node_sums_each_group() {
        check(
            "asPercent(test.web0*.*,None,1)",
            &[
                Want {
                    name: "asPercent(test.web01.cpu,sumSeries(test.web0*.*))",
                    path: "asPercent(test.web01.cpu,sumSeries(test.web0*.*))",
                    start: T0,
                    end: T0 + 600,
                    step: 60,
                    values: &[
                        Some(0.9900990099009901),
                        Some(0.9900990099009901),
                        None,
                        Some(0.9900990099009901),
                        Some(0.9900990099009901),
                        Some(0.9900990099009901),
                        None,
                        Some(0.9900990099009901),
                        Some(0.9900990099009901),
                        Some(0.9900990099009901),
                    ],
                    tags: &[("name", "asPercent(test.web01.cpu,sumSeries(test.web0*.*))")],
                },
                Want {
                    name: "asPercent(test.web01.mem,sumSeries(test.web0*.*))",
                    path: "asPercent(test.web01.mem,sumSeries(test.web0*.*))",
                    start: T0,
                    end: T0 + 600,
                    step: 60,
                    values: &[
                        Some(99.00990099009901),
                        Some(99.00990099009901),
                        Some(100.0),
                        Some(99.00990099009901),
                        Some(99.00990099009901),
                        Some(99.00990099009901),
                        Some(100.0),
                        Some(99.00990099009901),
                        Some(99.00990099009901),
                        Some(99.00990099009901),
                    ],
                    tags: &[("name", "asPercent(test.web01.mem,sumSeries(test.web0*.*))")],
                },
                Want {
                    name: "asPercent(test.web02.cpu,sumSeries(test.web0*.*))",
                    path: "asPercent(test.web02.cpu,sumSeries(test.web0*.*))",
                    start: T0,
                    end: T0 + 600,
                    step: 60,
                    values: &[
                        Some(16.666666666666664),
                        None,
                        None,
                        Some(5.660377358490567),
                        Some(4.761904761904762),
                        Some(100.0),
                        Some(0.0),
                        Some(-2.0408163265306123),
                        None,
                        Some(7.4074074074074066),
                    ],
                    tags: &[("name", "asPercent(test.web02.cpu,sumSeries(test.web0*.*))")],
                },
                Want {
                    name: "asPercent(test.web02.mem,sumSeries(test.web0*.*))",
                    path: "asPercent(test.web02.mem,sumSeries(test.web0*.*))",
                    start: T0,
                    end: T0 + 600,
                    step: 60,
                    values: &[
                        Some(83.33333333333334),
                        Some(100.0),
                        None,
                        Some(94.33962264150944),
                        Some(95.23809523809523),
                        Some(0.0),
                        Some(100.0),
                        Some(102.04081632653062),
                        Some(100.0),
                        Some(92.5925925925926),
                    ],
                    tags: &[("name", "asPercent(test.web02.mem,sumSeries(test.web0*.*))")],
                },
            ],
        );
    }

    #[test]
    fn as_percent_by_node_with_totals() {
        check(
            "asPercent(test.web0*.cpu,test.web0*.mem,1)",
            &[
                Want {
                    name: "asPercent(test.web01.cpu,test.web01.mem)",
                    path: "asPercent(test.web01.cpu,test.web01.mem)",
                    start: T0,
                    end: T0 + 600,
                    step: 60,
                    values: &[
                        Some(1.0),
                        Some(1.0),
                        None,
                        Some(1.0),
                        Some(1.0),
                        Some(1.0),
                        None,
                        Some(1.0),
                        Some(1.0),
                        Some(1.0),
                    ],
                    tags: &[("name", "asPercent(test.web01.cpu,test.web01.mem)")],
                },
                Want {
                    name: "asPercent(test.web02.cpu,test.web02.mem)",
                    path: "asPercent(test.web02.cpu,test.web02.mem)",
                    start: T0,
                    end: T0 + 600,
                    step: 60,
                    values: &[
                        Some(20.0),
                        None,
                        None,
                        Some(6.0),
                        Some(5.0),
                        None,
                        Some(0.0),
                        Some(-2.0),
                        None,
                        Some(8.0),
                    ],
                    tags: &[("name", "asPercent(test.web02.cpu,test.web02.mem)")],
                },
            ],
        );
    }

    #[test]
    fn as_percent_by_node_missing_totals_and_series() {
        check(
            "asPercent(test.web0*.cpu,group(test.web01.mem,test.db01.cpu),1)",
            &[
                Want {
                    name: "asPercent(test.web01.cpu,test.web01.mem)",
                    path: "asPercent(test.web01.cpu,test.web01.mem)",
                    start: T0,
                    end: T0 + 600,
                    step: 60,
                    values: &[
                        Some(1.0),
                        Some(1.0),
                        None,
                        Some(1.0),
                        Some(1.0),
                        Some(1.0),
                        None,
                        Some(1.0),
                        Some(1.0),
                        Some(1.0),
                    ],
                    tags: &[("name", "asPercent(test.web01.cpu,test.web01.mem)")],
                },
                Want {
                    name: "asPercent(test.web02.cpu,MISSING)",
                    path: "asPercent(test.web02.cpu,MISSING)",
                    start: T0,
                    end: T0 + 600,
                    step: 60,
                    values: &[None, None, None, None, None, None, None, None, None, None],
                    tags: &[("name", "asPercent(test.web02.cpu,MISSING)")],
                },
                Want {
                    name: "asPercent(MISSING,test.db01.cpu)",
                    path: "asPercent(MISSING,test.db01.cpu)",
                    start: T0,
                    end: T0 + 600,
                    step: 60,
                    values: &[None, None, None, None, None, None, None, None, None, None],
                    tags: &[("name", "asPercent(MISSING,test.db01.cpu)")],
                },
            ],
        );
    }

    #[test]
    fn as_percent_number_total_with_mixed_steps() {
        check(
            "asPercent(test.{web01,slow}.cpu,50)",
            &[
                Want {
                    name: "asPercent(test.slow.cpu,50)",
                    path: "asPercent(test.slow.cpu,50)",
                    start: T0 + 60,
                    end: T0 + 660,
                    step: 300,
                    values: &[None, Some(40.0)],
                    tags: &[("name", "asPercent(test.slow.cpu,50)")],
                },
                Want {
                    name: "asPercent(test.web01.cpu,50)",
                    path: "asPercent(test.web01.cpu,50)",
                    start: T0,
                    end: T0 + 600,
                    step: 60,
                    values: &[Some(6.0), Some(16.5)],
                    tags: &[("name", "asPercent(test.web01.cpu,50)")],
                },
            ],
        );
    }

    #[test]
    fn as_percent_sum_with_mixed_steps() {
        check(
            "asPercent(test.{web01,slow}.cpu)",
            &[
                Want {
                    name: "asPercent(test.slow.cpu,sumSeries(test.{web01,slow}.cpu))",
                    path: "asPercent(test.slow.cpu,sumSeries(test.{web01,slow}.cpu))",
                    start: T0 + 60,
                    end: T0 + 660,
                    step: 300,
                    values: &[None, Some(70.79646017699115)],
                    tags: &[("name", "asPercent(test.slow.cpu,sumSeries(test.{web01,slow}.cpu))")],
                },
                Want {
                    name: "asPercent(test.web01.cpu,sumSeries(test.{web01,slow}.cpu))",
                    path: "asPercent(test.web01.cpu,sumSeries(test.{web01,slow}.cpu))",
                    start: T0,
                    end: T0 + 600,
                    step: 60,
                    values: &[Some(100.0), Some(29.20353982300885)],
                    tags: &[("name", "asPercent(test.web01.cpu,sumSeries(test.{web01,slow}.cpu))")],
                },
            ],
        );
    }

    #[test]
    fn as_percent_by_tag() {
        check(
            "asPercent(seriesByTag('name=disk.used'),None,'dc')",
            &[
                Want {
                    name: "asPercent(disk.used;dc=dc1;server=web01,sumSeries(seriesByTag('name=disk.used')))",
                    path: "asPercent(disk.used;dc=dc1;server=web01,sumSeries(seriesByTag('name=disk.used')))",
                    start: T0,
                    end: T0 + 600,
                    step: 60,
                    values: &[
                        Some(33.33333333333333),
                        Some(100.0),
                        Some(60.0),
                        Some(100.0),
                        Some(71.42857142857143),
                        Some(100.0),
                        Some(77.77777777777779),
                        Some(100.0),
                        Some(81.81818181818183),
                        Some(100.0),
                    ],
                    tags: &[(
                        "name",
                        "asPercent(disk.used;dc=dc1;server=web01,sumSeries(seriesByTag('name=disk.used')))",
                    )],
                },
                Want {
                    name: "asPercent(disk.used;dc=dc1;server=web02,sumSeries(seriesByTag('name=disk.used')))",
                    path: "asPercent(disk.used;dc=dc1;server=web02,sumSeries(seriesByTag('name=disk.used')))",
                    start: T0,
                    end: T0 + 600,
                    step: 60,
                    values: &[
                        Some(66.66666666666666),
                        None,
                        Some(40.0),
                        None,
                        Some(28.57142857142857),
                        None,
                        Some(22.22222222222222),
                        None,
                        Some(18.181818181818183),
                        None,
                    ],
                    tags: &[(
                        "name",
                        "asPercent(disk.used;dc=dc1;server=web02,sumSeries(seriesByTag('name=disk.used')))",
                    )],
                },
                Want {
                    name: "asPercent(disk.used;dc=dc2;server=db01,disk.used;dc=dc2;server=db01)",
                    path: "asPercent(disk.used;dc=dc2;server=db01,disk.used;dc=dc2;server=db01)",
                    start: T0,
                    end: T0 + 600,
                    step: 60,
                    values: &[
                        Some(100.0),
                        Some(100.0),
                        Some(100.0),
                        Some(100.0),
                        Some(100.0),
                        Some(100.0),
                        Some(100.0),
                        Some(100.0),
                        Some(100.0),
                        Some(100.0),
                    ],
                    tags: &[(
                        "name",
                        "asPercent(disk.used;dc=dc2;server=db01,disk.used;dc=dc2;server=db01)",
                    )],
                },
            ],
        );
    }

    #[test]
    fn group_concatenates() {
        check(
            "group(test.web01.cpu,test.db01.cpu,test.nothing)",
            &[
                Want {
                    name: "test.web01.cpu",
                    path: "test.web01.cpu",
                    start: T0,
                    end: T0 + 600,
                    step: 60,
                    values: &[
                        Some(1.0),
                        Some(2.0),
                        None,
                        Some(4.0),
                        Some(5.0),
                        Some(6.0),
                        None,
                        Some(8.0),
                        Some(9.0),
                        Some(10.0),
                    ],
                    tags: &[("name", "test.web01.cpu")],
                },
                Want {
                    name: "test.db01.cpu",
                    path: "test.db01.cpu",
                    start: T0,
                    end: T0 + 600,
                    step: 60,
                    values: &[
                        None,
                        Some(7.0),
                        Some(7.0),
                        None,
                        Some(0.5),
                        Some(100.0),
                        Some(3.0),
                        Some(3.0),
                        Some(3.0),
                        None,
                    ],
                    tags: &[("name", "test.db01.cpu")],
                },
            ],
        );
    }

    #[test]
    fn group_of_nothing() {
        check("group()", &[]);
    }

    #[test]
    fn group_by_node_with_aggregation() {
        check(
            "groupByNode(test.*.cpu,1,'sum')",
            &[
                Want {
                    name: "db01",
                    path: "sumSeries(test.*.cpu)",
                    start: T0,
                    end: T0 + 600,
                    step: 60,
                    values: &[
                        None,
                        Some(7.0),
                        Some(7.0),
                        None,
                        Some(0.5),
                        Some(100.0),
                        Some(3.0),
                        Some(3.0),
                        Some(3.0),
                        None,
                    ],
                    tags: &[("aggregatedBy", "sum"), ("name", "test.db01.cpu")],
                },
                Want {
                    name: "empty",
                    path: "sumSeries(test.*.cpu)",
                    start: T0,
                    end: T0 + 600,
                    step: 60,
                    values: &[None, None, None, None, None, None, None, None, None, None],
                    tags: &[("aggregatedBy", "sum"), ("name", "test.empty.cpu")],
                },
                Want {
                    name: "slow",
                    path: "sumSeries(test.*.cpu)",
                    start: T0 + 60,
                    end: T0 + 660,
                    step: 300,
                    values: &[None, Some(20.0)],
                    tags: &[("aggregatedBy", "sum"), ("name", "test.slow.cpu")],
                },
                Want {
                    name: "web01",
                    path: "sumSeries(test.*.cpu)",
                    start: T0,
                    end: T0 + 600,
                    step: 60,
                    values: &[
                        Some(1.0),
                        Some(2.0),
                        None,
                        Some(4.0),
                        Some(5.0),
                        Some(6.0),
                        None,
                        Some(8.0),
                        Some(9.0),
                        Some(10.0),
                    ],
                    tags: &[("aggregatedBy", "sum"), ("name", "test.web01.cpu")],
                },
                Want {
                    name: "web02",
                    path: "sumSeries(test.*.cpu)",
                    start: T0,
                    end: T0 + 600,
                    step: 60,
                    values: &[
                        Some(10.0),
                        None,
                        None,
                        Some(3.0),
                        Some(2.5),
                        Some(1.0),
                        Some(0.0),
                        Some(-1.0),
                        None,
                        Some(4.0),
                    ],
                    tags: &[("aggregatedBy", "sum"), ("name", "test.web02.cpu")],
                },
            ],
        );
    }

    #[test]
    fn group_by_node_default_average() {
        check(
            "groupByNode(test.*.*,2)",
            &[
                Want {
                    name: "cpu",
                    path: "averageSeries(test.*.*)",
                    start: T0,
                    end: T0 + 600,
                    step: 300,
                    values: &[Some(4.333333333333333), Some(14.125)],
                    tags: &[("aggregatedBy", "average"), ("name", "averageSeries(test.*.*)")],
                },
                Want {
                    name: "mem",
                    path: "averageSeries(test.*.*)",
                    start: T0,
                    end: T0 + 600,
                    step: 60,
                    values: &[
                        Some(75.0),
                        Some(125.0),
                        Some(300.0),
                        Some(225.0),
                        Some(275.0),
                        Some(300.0),
                        Some(375.0),
                        Some(425.0),
                        Some(475.0),
                        Some(525.0),
                    ],
                    tags: &[("aggregatedBy", "average"), ("name", "averageSeries(test.*.*)")],
                },
            ],
        );
    }

    #[test]
    fn group_by_node_with_series_function() {
        check(
            "groupByNode(test.*.*,2,'sumSeries')",
            &[
                Want {
                    name: "cpu",
                    path: "sumSeries(test.*.*)",
                    start: T0,
                    end: T0 + 600,
                    step: 300,
                    values: &[Some(13.0), Some(56.5)],
                    tags: &[("aggregatedBy", "sum"), ("name", "sumSeries(test.*.*)")],
                },
                Want {
                    name: "mem",
                    path: "sumSeries(test.*.*)",
                    start: T0,
                    end: T0 + 600,
                    step: 60,
                    values: &[
                        Some(150.0),
                        Some(250.0),
                        Some(300.0),
                        Some(450.0),
                        Some(550.0),
                        Some(600.0),
                        Some(750.0),
                        Some(850.0),
                        Some(950.0),
                        Some(1050.0),
                    ],
                    tags: &[("aggregatedBy", "sum"), ("name", "sumSeries(test.*.*)")],
                },
            ],
        );
    }

    #[test]
    fn group_by_node_keyword_arguments() {
        check(
            "groupByNode(test.web0*.*,nodeNum=1,callback='maxSeries')",
            &[
                Want {
                    name: "web01",
                    path: "maxSeries(test.web0*.*)",
                    start: T0,
                    end: T0 + 600,
                    step: 60,
                    values: &[
                        Some(100.0),
                        Some(200.0),
                        Some(300.0),
                        Some(400.0),
                        Some(500.0),
                        Some(600.0),
                        Some(700.0),
                        Some(800.0),
                        Some(900.0),
                        Some(1000.0),
                    ],
                    tags: &[("aggregatedBy", "max"), ("name", "maxSeries(test.web0*.*)")],
                },
                Want {
                    name: "web02",
                    path: "maxSeries(test.web0*.*)",
                    start: T0,
                    end: T0 + 600,
                    step: 60,
                    values: &[
                        Some(50.0),
                        Some(50.0),
                        None,
                        Some(50.0),
                        Some(50.0),
                        Some(1.0),
                        Some(50.0),
                        Some(50.0),
                        Some(50.0),
                        Some(50.0),
                    ],
                    tags: &[("aggregatedBy", "max"), ("name", "maxSeries(test.web0*.*)")],
                },
            ],
        );
    }

    #[test]
    fn group_by_node_count_series_callback() {
        check(
            "groupByNode(test.*.*,2,'countSeries')",
            &[
                Want {
                    name: "cpu",
                    path: "countSeries(test.*.*)",
                    start: T0,
                    end: T0 + 600,
                    step: 300,
                    values: &[Some(5.0), Some(5.0)],
                    tags: &[("name", "countSeries(test.*.*)")],
                },
                Want {
                    name: "mem",
                    path: "countSeries(test.*.*)",
                    start: T0,
                    end: T0 + 600,
                    step: 60,
                    values: &[
                        Some(2.0),
                        Some(2.0),
                        Some(2.0),
                        Some(2.0),
                        Some(2.0),
                        Some(2.0),
                        Some(2.0),
                        Some(2.0),
                        Some(2.0),
                        Some(2.0),
                    ],
                    tags: &[("name", "countSeries(test.*.*)")],
                },
            ],
        );
    }

    #[test]
    fn group_by_node_reads_nodes_inside_function_names() {
        check(
            "groupByNode(sumSeries(test.web0*.cpu),1)",
            &[Want {
                name: "web0*",
                path: "averageSeries(sumSeries(test.web0*.cpu))",
                start: T0,
                end: T0 + 600,
                step: 60,
                values: &[
                    Some(11.0),
                    Some(2.0),
                    None,
                    Some(7.0),
                    Some(7.5),
                    Some(7.0),
                    Some(0.0),
                    Some(7.0),
                    Some(9.0),
                    Some(14.0),
                ],
                tags: &[("aggregatedBy", "average"), ("name", "sumSeries(test.web0*.cpu)")],
            }],
        );
    }

    #[test]
    fn group_by_nodes_several_nodes() {
        check(
            "groupByNodes(test.*.*,'max',2,1)",
            &[
                Want {
                    name: "cpu.db01",
                    path: "maxSeries(test.*.*)",
                    start: T0,
                    end: T0 + 600,
                    step: 60,
                    values: &[
                        None,
                        Some(7.0),
                        Some(7.0),
                        None,
                        Some(0.5),
                        Some(100.0),
                        Some(3.0),
                        Some(3.0),
                        Some(3.0),
                        None,
                    ],
                    tags: &[("aggregatedBy", "max"), ("name", "test.db01.cpu")],
                },
                Want {
                    name: "cpu.empty",
                    path: "maxSeries(test.*.*)",
                    start: T0,
                    end: T0 + 600,
                    step: 60,
                    values: &[None, None, None, None, None, None, None, None, None, None],
                    tags: &[("aggregatedBy", "max"), ("name", "test.empty.cpu")],
                },
                Want {
                    name: "cpu.slow",
                    path: "maxSeries(test.*.*)",
                    start: T0 + 60,
                    end: T0 + 660,
                    step: 300,
                    values: &[None, Some(20.0)],
                    tags: &[("aggregatedBy", "max"), ("name", "test.slow.cpu")],
                },
                Want {
                    name: "cpu.web01",
                    path: "maxSeries(test.*.*)",
                    start: T0,
                    end: T0 + 600,
                    step: 60,
                    values: &[
                        Some(1.0),
                        Some(2.0),
                        None,
                        Some(4.0),
                        Some(5.0),
                        Some(6.0),
                        None,
                        Some(8.0),
                        Some(9.0),
                        Some(10.0),
                    ],
                    tags: &[("aggregatedBy", "max"), ("name", "test.web01.cpu")],
                },
                Want {
                    name: "mem.web01",
                    path: "maxSeries(test.*.*)",
                    start: T0,
                    end: T0 + 600,
                    step: 60,
                    values: &[
                        Some(100.0),
                        Some(200.0),
                        Some(300.0),
                        Some(400.0),
                        Some(500.0),
                        Some(600.0),
                        Some(700.0),
                        Some(800.0),
                        Some(900.0),
                        Some(1000.0),
                    ],
                    tags: &[("aggregatedBy", "max"), ("name", "test.web01.mem")],
                },
                Want {
                    name: "cpu.web02",
                    path: "maxSeries(test.*.*)",
                    start: T0,
                    end: T0 + 600,
                    step: 60,
                    values: &[
                        Some(10.0),
                        None,
                        None,
                        Some(3.0),
                        Some(2.5),
                        Some(1.0),
                        Some(0.0),
                        Some(-1.0),
                        None,
                        Some(4.0),
                    ],
                    tags: &[("aggregatedBy", "max"), ("name", "test.web02.cpu")],
                },
                Want {
                    name: "mem.web02",
                    path: "maxSeries(test.*.*)",
                    start: T0,
                    end: T0 + 600,
                    step: 60,
                    values: &[
                        Some(50.0),
                        Some(50.0),
                        None,
                        Some(50.0),
                        Some(50.0),
                        Some(0.0),
                        Some(50.0),
                        Some(50.0),
                        Some(50.0),
                        Some(50.0),
                    ],
                    tags: &[("aggregatedBy", "max"), ("name", "test.web02.mem")],
                },
            ],
        );
    }

    #[test]
    fn group_by_nodes_by_tag() {
        check(
            "groupByNodes(seriesByTag('name=disk.used'),'sum','dc')",
            &[
                Want {
                    name: "dc1",
                    path: "sumSeries(seriesByTag('name=disk.used'))",
                    start: T0,
                    end: T0 + 600,
                    step: 60,
                    values: &[
                        Some(3.0),
                        Some(2.0),
                        Some(5.0),
                        Some(4.0),
                        Some(7.0),
                        Some(6.0),
                        Some(9.0),
                        Some(8.0),
                        Some(11.0),
                        Some(10.0),
                    ],
                    tags: &[("aggregatedBy", "sum"), ("dc", "dc1"), ("name", "disk.used")],
                },
                Want {
                    name: "dc2",
                    path: "sumSeries(seriesByTag('name=disk.used'))",
                    start: T0,
                    end: T0 + 600,
                    step: 60,
                    values: &[
                        Some(0.5),
                        Some(0.5),
                        Some(0.5),
                        Some(0.5),
                        Some(0.5),
                        Some(0.5),
                        Some(0.5),
                        Some(0.5),
                        Some(0.5),
                        Some(0.5),
                    ],
                    tags: &[
                        ("aggregatedBy", "sum"),
                        ("dc", "dc2"),
                        ("name", "disk.used"),
                        ("server", "db01"),
                    ],
                },
            ],
        );
    }

    #[test]
    fn group_by_nodes_without_nodes() {
        check(
            "groupByNodes(test.web0*.cpu,'sum')",
            &[Want {
                name: "",
                path: "sumSeries(test.web0*.cpu)",
                start: T0,
                end: T0 + 600,
                step: 60,
                values: &[
                    Some(11.0),
                    Some(2.0),
                    None,
                    Some(7.0),
                    Some(7.5),
                    Some(7.0),
                    Some(0.0),
                    Some(7.0),
                    Some(9.0),
                    Some(14.0),
                ],
                tags: &[("aggregatedBy", "sum"), ("name", "sumSeries(test.web0*.cpu)")],
            }],
        );
    }

    #[test]
    fn group_by_nodes_missing_node_is_empty_tag() {
        check(
            "groupByNodes(test.web0*.cpu,'avg',1,5)",
            &[
                Want {
                    name: "web01.",
                    path: "averageSeries(test.web0*.cpu)",
                    start: T0,
                    end: T0 + 600,
                    step: 60,
                    values: &[
                        Some(1.0),
                        Some(2.0),
                        None,
                        Some(4.0),
                        Some(5.0),
                        Some(6.0),
                        None,
                        Some(8.0),
                        Some(9.0),
                        Some(10.0),
                    ],
                    tags: &[("aggregatedBy", "average"), ("name", "test.web01.cpu")],
                },
                Want {
                    name: "web02.",
                    path: "averageSeries(test.web0*.cpu)",
                    start: T0,
                    end: T0 + 600,
                    step: 60,
                    values: &[
                        Some(10.0),
                        None,
                        None,
                        Some(3.0),
                        Some(2.5),
                        Some(1.0),
                        Some(0.0),
                        Some(-1.0),
                        None,
                        Some(4.0),
                    ],
                    tags: &[("aggregatedBy", "average"), ("name", "test.web02.cpu")],
                },
            ],
        );
    }

    #[test]
    fn group_by_tags_common_name() {
        check(
            "groupByTags(seriesByTag('name=disk.used'),'sum','dc')",
            &[
                Want {
                    name: "disk.used;dc=dc1",
                    path: "disk.used;dc=dc1",
                    start: T0,
                    end: T0 + 600,
                    step: 60,
                    values: &[
                        Some(3.0),
                        Some(2.0),
                        Some(5.0),
                        Some(4.0),
                        Some(7.0),
                        Some(6.0),
                        Some(9.0),
                        Some(8.0),
                        Some(11.0),
                        Some(10.0),
                    ],
                    tags: &[("dc", "dc1"), ("name", "disk.used")],
                },
                Want {
                    name: "disk.used;dc=dc2",
                    path: "disk.used;dc=dc2",
                    start: T0,
                    end: T0 + 600,
                    step: 60,
                    values: &[
                        Some(0.5),
                        Some(0.5),
                        Some(0.5),
                        Some(0.5),
                        Some(0.5),
                        Some(0.5),
                        Some(0.5),
                        Some(0.5),
                        Some(0.5),
                        Some(0.5),
                    ],
                    tags: &[("dc", "dc2"), ("name", "disk.used")],
                },
            ],
        );
    }

    #[test]
    fn group_by_tags_names_differ() {
        check(
            "groupByTags(seriesByTag('name=~disk.*'),'avg','dc')",
            &[
                Want {
                    name: "avg;dc=dc1",
                    path: "avg;dc=dc1",
                    start: T0,
                    end: T0 + 600,
                    step: 60,
                    values: &[
                        Some(4.0),
                        Some(5.0),
                        Some(4.0),
                        Some(5.0),
                        Some(4.0),
                        Some(5.0),
                        Some(4.0),
                        Some(5.0),
                        Some(4.0),
                        Some(5.0),
                    ],
                    tags: &[("dc", "dc1"), ("name", "avg")],
                },
                Want {
                    name: "avg;dc=dc2",
                    path: "avg;dc=dc2",
                    start: T0,
                    end: T0 + 600,
                    step: 60,
                    values: &[
                        Some(0.5),
                        Some(0.5),
                        Some(0.5),
                        Some(0.5),
                        Some(0.5),
                        Some(0.5),
                        Some(0.5),
                        Some(0.5),
                        Some(0.5),
                        Some(0.5),
                    ],
                    tags: &[("dc", "dc2"), ("name", "avg")],
                },
            ],
        );
    }

    #[test]
    fn group_by_tags_by_name() {
        check(
            "groupByTags(seriesByTag('name=~disk.*'),'max','name','server')",
            &[
                Want {
                    name: "disk.free;server=web01",
                    path: "disk.free;server=web01",
                    start: T0,
                    end: T0 + 600,
                    step: 60,
                    values: &[
                        Some(9.0),
                        Some(8.0),
                        Some(7.0),
                        Some(6.0),
                        Some(5.0),
                        Some(4.0),
                        Some(3.0),
                        Some(2.0),
                        Some(1.0),
                        Some(0.0),
                    ],
                    tags: &[("name", "disk.free"), ("server", "web01")],
                },
                Want {
                    name: "disk.used;server=web01",
                    path: "disk.used;server=web01",
                    start: T0,
                    end: T0 + 600,
                    step: 60,
                    values: &[
                        Some(1.0),
                        Some(2.0),
                        Some(3.0),
                        Some(4.0),
                        Some(5.0),
                        Some(6.0),
                        Some(7.0),
                        Some(8.0),
                        Some(9.0),
                        Some(10.0),
                    ],
                    tags: &[("name", "disk.used"), ("server", "web01")],
                },
                Want {
                    name: "disk.used;server=web02",
                    path: "disk.used;server=web02",
                    start: T0,
                    end: T0 + 600,
                    step: 60,
                    values: &[
                        Some(2.0),
                        None,
                        Some(2.0),
                        None,
                        Some(2.0),
                        None,
                        Some(2.0),
                        None,
                        Some(2.0),
                        None,
                    ],
                    tags: &[("name", "disk.used"), ("server", "web02")],
                },
                Want {
                    name: "disk.used;server=db01",
                    path: "disk.used;server=db01",
                    start: T0,
                    end: T0 + 600,
                    step: 60,
                    values: &[
                        Some(0.5),
                        Some(0.5),
                        Some(0.5),
                        Some(0.5),
                        Some(0.5),
                        Some(0.5),
                        Some(0.5),
                        Some(0.5),
                        Some(0.5),
                        Some(0.5),
                    ],
                    tags: &[("name", "disk.used"), ("server", "db01")],
                },
            ],
        );
    }

    #[test]
    fn group_by_tags_series_function() {
        check(
            "groupByTags(seriesByTag('name=disk.used'),'sumSeries','server','dc')",
            &[
                Want {
                    name: "disk.used;dc=dc1;server=web01",
                    path: "disk.used;dc=dc1;server=web01",
                    start: T0,
                    end: T0 + 600,
                    step: 60,
                    values: &[
                        Some(1.0),
                        Some(2.0),
                        Some(3.0),
                        Some(4.0),
                        Some(5.0),
                        Some(6.0),
                        Some(7.0),
                        Some(8.0),
                        Some(9.0),
                        Some(10.0),
                    ],
                    tags: &[("dc", "dc1"), ("name", "disk.used"), ("server", "web01")],
                },
                Want {
                    name: "disk.used;dc=dc1;server=web02",
                    path: "disk.used;dc=dc1;server=web02",
                    start: T0,
                    end: T0 + 600,
                    step: 60,
                    values: &[
                        Some(2.0),
                        None,
                        Some(2.0),
                        None,
                        Some(2.0),
                        None,
                        Some(2.0),
                        None,
                        Some(2.0),
                        None,
                    ],
                    tags: &[("dc", "dc1"), ("name", "disk.used"), ("server", "web02")],
                },
                Want {
                    name: "disk.used;dc=dc2;server=db01",
                    path: "disk.used;dc=dc2;server=db01",
                    start: T0,
                    end: T0 + 600,
                    step: 60,
                    values: &[
                        Some(0.5),
                        Some(0.5),
                        Some(0.5),
                        Some(0.5),
                        Some(0.5),
                        Some(0.5),
                        Some(0.5),
                        Some(0.5),
                        Some(0.5),
                        Some(0.5),
                    ],
                    tags: &[("dc", "dc2"), ("name", "disk.used"), ("server", "db01")],
                },
            ],
        );
    }

    #[test]
    fn reduce_series_as_percent() {
        check(
            "reduceSeries(mapSeries(test.web0*.*,1),'asPercent',2,'cpu','mem')",
            &[
                Want {
                    name: "test.web01.reduce.asPercent",
                    path: "asPercent(test.web01.cpu,test.web01.mem)",
                    start: T0,
                    end: T0 + 600,
                    step: 60,
                    values: &[
                        Some(1.0),
                        Some(1.0),
                        None,
                        Some(1.0),
                        Some(1.0),
                        Some(1.0),
                        None,
                        Some(1.0),
                        Some(1.0),
                        Some(1.0),
                    ],
                    tags: &[("name", "asPercent(test.web01.cpu,test.web01.mem)")],
                },
                Want {
                    name: "test.web02.reduce.asPercent",
                    path: "asPercent(test.web02.cpu,test.web02.mem)",
                    start: T0,
                    end: T0 + 600,
                    step: 60,
                    values: &[
                        Some(20.0),
                        None,
                        None,
                        Some(6.0),
                        Some(5.0),
                        None,
                        Some(0.0),
                        Some(-2.0),
                        None,
                        Some(8.0),
                    ],
                    tags: &[("name", "asPercent(test.web02.cpu,test.web02.mem)")],
                },
            ],
        );
    }

    #[test]
    fn reduce_alias_divide() {
        check(
            "reduce(map(test.web0*.*,1),'divideSeries',2,'mem','cpu')",
            &[
                Want {
                    name: "test.web01.reduce.divideSeries",
                    path: "divideSeries(test.web01.mem,test.web01.cpu)",
                    start: T0,
                    end: T0 + 600,
                    step: 60,
                    values: &[
                        Some(100.0),
                        Some(100.0),
                        None,
                        Some(100.0),
                        Some(100.0),
                        Some(100.0),
                        None,
                        Some(100.0),
                        Some(100.0),
                        Some(100.0),
                    ],
                    tags: &[("name", "divideSeries(test.web01.mem,test.web01.cpu)")],
                },
                Want {
                    name: "test.web02.reduce.divideSeries",
                    path: "divideSeries(test.web02.mem,test.web02.cpu)",
                    start: T0,
                    end: T0 + 600,
                    step: 60,
                    values: &[
                        Some(5.0),
                        None,
                        None,
                        Some(16.666666666666668),
                        Some(20.0),
                        Some(0.0),
                        None,
                        Some(-50.0),
                        None,
                        Some(12.5),
                    ],
                    tags: &[("name", "divideSeries(test.web02.mem,test.web02.cpu)")],
                },
            ],
        );
    }

    #[test]
    fn reduce_series_sum() {
        check(
            "reduceSeries(mapSeries(test.web0*.*,1),'sumSeries',2,'cpu','mem')",
            &[
                Want {
                    name: "test.web01.reduce.sumSeries",
                    path: "sumSeries(test.web0*.*)",
                    start: T0,
                    end: T0 + 600,
                    step: 60,
                    values: &[
                        Some(101.0),
                        Some(202.0),
                        Some(300.0),
                        Some(404.0),
                        Some(505.0),
                        Some(606.0),
                        Some(700.0),
                        Some(808.0),
                        Some(909.0),
                        Some(1010.0),
                    ],
                    tags: &[("aggregatedBy", "sum"), ("name", "sumSeries(test.web0*.*)")],
                },
                Want {
                    name: "test.web02.reduce.sumSeries",
                    path: "sumSeries(test.web0*.*)",
                    start: T0,
                    end: T0 + 600,
                    step: 60,
                    values: &[
                        Some(60.0),
                        Some(50.0),
                        None,
                        Some(53.0),
                        Some(52.5),
                        Some(1.0),
                        Some(50.0),
                        Some(49.0),
                        Some(50.0),
                        Some(54.0),
                    ],
                    tags: &[("aggregatedBy", "sum"), ("name", "sumSeries(test.web0*.*)")],
                },
            ],
        );
    }

    #[test]
    fn apply_by_node_sum() {
        check(
            "applyByNode(test.web0*.cpu,1,'sumSeries(%.*)')",
            &[
                Want {
                    name: "sumSeries(test.web01.*)",
                    path: "test.web01",
                    start: T0,
                    end: T0 + 600,
                    step: 60,
                    values: &[
                        Some(101.0),
                        Some(202.0),
                        Some(300.0),
                        Some(404.0),
                        Some(505.0),
                        Some(606.0),
                        Some(700.0),
                        Some(808.0),
                        Some(909.0),
                        Some(1010.0),
                    ],
                    tags: &[("aggregatedBy", "sum"), ("name", "sumSeries(test.web01.*)")],
                },
                Want {
                    name: "sumSeries(test.web02.*)",
                    path: "test.web02",
                    start: T0,
                    end: T0 + 600,
                    step: 60,
                    values: &[
                        Some(60.0),
                        Some(50.0),
                        None,
                        Some(53.0),
                        Some(52.5),
                        Some(1.0),
                        Some(50.0),
                        Some(49.0),
                        Some(50.0),
                        Some(54.0),
                    ],
                    tags: &[("aggregatedBy", "sum"), ("name", "sumSeries(test.web02.*)")],
                },
            ],
        );
    }

    #[test]
    fn apply_by_node_new_name() {
        check(
            "applyByNode(test.web0*.cpu,1,'divideSeries(%.cpu,%.mem)','%.ratio')",
            &[
                Want {
                    name: "test.web01.ratio",
                    path: "test.web01",
                    start: T0,
                    end: T0 + 600,
                    step: 60,
                    values: &[
                        Some(0.01),
                        Some(0.01),
                        None,
                        Some(0.01),
                        Some(0.01),
                        Some(0.01),
                        None,
                        Some(0.01),
                        Some(0.01),
                        Some(0.01),
                    ],
                    tags: &[("name", "divideSeries(test.web01.cpu,test.web01.mem)")],
                },
                Want {
                    name: "test.web02.ratio",
                    path: "test.web02",
                    start: T0,
                    end: T0 + 600,
                    step: 60,
                    values: &[
                        Some(0.2),
                        None,
                        None,
                        Some(0.06),
                        Some(0.05),
                        None,
                        Some(0.0),
                        Some(-0.02),
                        None,
                        Some(0.08),
                    ],
                    tags: &[("name", "divideSeries(test.web02.cpu,test.web02.mem)")],
                },
            ],
        );
    }

    #[test]
    fn apply_by_node_takes_the_last_window() {
        check(
            "applyByNode(test.{slow,web01}.cpu,1,'sumSeries(%.cpu)')",
            &[
                Want {
                    name: "sumSeries(test.slow.cpu)",
                    path: "test.slow",
                    start: T0,
                    end: T0 + 600,
                    step: 300,
                    values: &[None, Some(20.0)],
                    tags: &[("aggregatedBy", "sum"), ("name", "test.slow.cpu")],
                },
                Want {
                    name: "sumSeries(test.web01.cpu)",
                    path: "test.web01",
                    start: T0,
                    end: T0 + 600,
                    step: 60,
                    values: &[
                        Some(1.0),
                        Some(2.0),
                        None,
                        Some(4.0),
                        Some(5.0),
                        Some(6.0),
                        None,
                        Some(8.0),
                        Some(9.0),
                        Some(10.0),
                    ],
                    tags: &[("aggregatedBy", "sum"), ("name", "test.web01.cpu")],
                },
            ],
        );
    }

    #[test]
    fn sum_series_with_wildcards() {
        check(
            "sumSeriesWithWildcards(test.*.*,1)",
            &[
                Want {
                    name: "test.cpu",
                    path: "sumSeries(test.*.*)",
                    start: T0,
                    end: T0 + 600,
                    step: 300,
                    values: &[Some(13.0), Some(56.5)],
                    tags: &[("aggregatedBy", "sum"), ("name", "sumSeries(test.*.*)")],
                },
                Want {
                    name: "test.mem",
                    path: "sumSeries(test.*.*)",
                    start: T0,
                    end: T0 + 600,
                    step: 60,
                    values: &[
                        Some(150.0),
                        Some(250.0),
                        Some(300.0),
                        Some(450.0),
                        Some(550.0),
                        Some(600.0),
                        Some(750.0),
                        Some(850.0),
                        Some(950.0),
                        Some(1050.0),
                    ],
                    tags: &[("aggregatedBy", "sum"), ("name", "sumSeries(test.*.*)")],
                },
            ],
        );
    }

    #[test]
    fn sum_series_with_wildcards_mixed_steps() {
        check(
            "sumSeriesWithWildcards(test.*.cpu,1)",
            &[Want {
                name: "test.cpu",
                path: "sumSeries(test.*.cpu)",
                start: T0,
                end: T0 + 600,
                step: 300,
                values: &[Some(13.0), Some(56.5)],
                tags: &[("aggregatedBy", "sum"), ("name", "sumSeries(test.*.cpu)")],
            }],
        );
    }

    #[test]
    fn average_series_with_wildcards() {
        check(
            "averageSeriesWithWildcards(test.web0*.*,2)",
            &[
                Want {
                    name: "test.web01",
                    path: "averageSeries(test.web0*.*)",
                    start: T0,
                    end: T0 + 600,
                    step: 60,
                    values: &[
                        Some(50.5),
                        Some(101.0),
                        Some(300.0),
                        Some(202.0),
                        Some(252.5),
                        Some(303.0),
                        Some(700.0),
                        Some(404.0),
                        Some(454.5),
                        Some(505.0),
                    ],
                    tags: &[("aggregatedBy", "average"), ("name", "averageSeries(test.web0*.*)")],
                },
                Want {
                    name: "test.web02",
                    path: "averageSeries(test.web0*.*)",
                    start: T0,
                    end: T0 + 600,
                    step: 60,
                    values: &[
                        Some(30.0),
                        Some(50.0),
                        None,
                        Some(26.5),
                        Some(26.25),
                        Some(0.5),
                        Some(25.0),
                        Some(24.5),
                        Some(50.0),
                        Some(27.0),
                    ],
                    tags: &[("aggregatedBy", "average"), ("name", "averageSeries(test.web0*.*)")],
                },
            ],
        );
    }

    #[test]
    fn multiply_series_with_wildcards() {
        check(
            "multiplySeriesWithWildcards(test.web0*.*,2)",
            &[
                Want {
                    name: "test.web01",
                    path: "multiplySeries(test.web0*.*)",
                    start: T0,
                    end: T0 + 600,
                    step: 60,
                    values: &[
                        Some(100.0),
                        Some(400.0),
                        None,
                        Some(1600.0),
                        Some(2500.0),
                        Some(3600.0),
                        None,
                        Some(6400.0),
                        Some(8100.0),
                        Some(10000.0),
                    ],
                    tags: &[("aggregatedBy", "multiply"), ("name", "multiplySeries(test.web0*.*)")],
                },
                Want {
                    name: "test.web02",
                    path: "multiplySeries(test.web0*.*)",
                    start: T0,
                    end: T0 + 600,
                    step: 60,
                    values: &[
                        Some(500.0),
                        None,
                        None,
                        Some(150.0),
                        Some(125.0),
                        Some(0.0),
                        Some(0.0),
                        Some(-50.0),
                        None,
                        Some(200.0),
                    ],
                    tags: &[("aggregatedBy", "multiply"), ("name", "multiplySeries(test.web0*.*)")],
                },
            ],
        );
    }

    #[test]
    fn aggregate_with_wildcards() {
        check(
            "aggregateWithWildcards(test.*.*,'max',1)",
            &[
                Want {
                    name: "test.cpu",
                    path: "maxSeries(test.*.*)",
                    start: T0,
                    end: T0 + 600,
                    step: 300,
                    values: &[Some(5.166666666666667), Some(27.25)],
                    tags: &[("aggregatedBy", "max"), ("name", "maxSeries(test.*.*)")],
                },
                Want {
                    name: "test.mem",
                    path: "maxSeries(test.*.*)",
                    start: T0,
                    end: T0 + 600,
                    step: 60,
                    values: &[
                        Some(100.0),
                        Some(200.0),
                        Some(300.0),
                        Some(400.0),
                        Some(500.0),
                        Some(600.0),
                        Some(700.0),
                        Some(800.0),
                        Some(900.0),
                        Some(1000.0),
                    ],
                    tags: &[("aggregatedBy", "max"), ("name", "maxSeries(test.*.*)")],
                },
            ],
        );
    }

    #[test]
    fn aggregate_with_wildcards_no_positions() {
        check(
            "aggregateWithWildcards(test.web0*.cpu,'sum')",
            &[
                Want {
                    name: "test.web01.cpu",
                    path: "sumSeries(test.web0*.cpu)",
                    start: T0,
                    end: T0 + 600,
                    step: 60,
                    values: &[
                        Some(1.0),
                        Some(2.0),
                        None,
                        Some(4.0),
                        Some(5.0),
                        Some(6.0),
                        None,
                        Some(8.0),
                        Some(9.0),
                        Some(10.0),
                    ],
                    tags: &[("aggregatedBy", "sum"), ("name", "test.web01.cpu")],
                },
                Want {
                    name: "test.web02.cpu",
                    path: "sumSeries(test.web0*.cpu)",
                    start: T0,
                    end: T0 + 600,
                    step: 60,
                    values: &[
                        Some(10.0),
                        None,
                        None,
                        Some(3.0),
                        Some(2.5),
                        Some(1.0),
                        Some(0.0),
                        Some(-1.0),
                        None,
                        Some(4.0),
                    ],
                    tags: &[("aggregatedBy", "sum"), ("name", "test.web02.cpu")],
                },
            ],
        );
    }

    #[test]
    fn aggregate_with_wildcards_several_positions() {
        check(
            "aggregateWithWildcards(test.*.*,'count',0,2)",
            &[
                Want {
                    name: "db01",
                    path: "countSeries(test.*.*)",
                    start: T0,
                    end: T0 + 600,
                    step: 60,
                    values: &[
                        None,
                        Some(1.0),
                        Some(1.0),
                        None,
                        Some(1.0),
                        Some(1.0),
                        Some(1.0),
                        Some(1.0),
                        Some(1.0),
                        None,
                    ],
                    tags: &[("aggregatedBy", "count"), ("name", "test.db01.cpu")],
                },
                Want {
                    name: "empty",
                    path: "countSeries(test.*.*)",
                    start: T0,
                    end: T0 + 600,
                    step: 60,
                    values: &[None, None, None, None, None, None, None, None, None, None],
                    tags: &[("aggregatedBy", "count"), ("name", "test.empty.cpu")],
                },
                Want {
                    name: "slow",
                    path: "countSeries(test.*.*)",
                    start: T0 + 60,
                    end: T0 + 660,
                    step: 300,
                    values: &[None, Some(1.0)],
                    tags: &[("aggregatedBy", "count"), ("name", "test.slow.cpu")],
                },
                Want {
                    name: "web01",
                    path: "countSeries(test.*.*)",
                    start: T0,
                    end: T0 + 600,
                    step: 60,
                    values: &[
                        Some(2.0),
                        Some(2.0),
                        Some(1.0),
                        Some(2.0),
                        Some(2.0),
                        Some(2.0),
                        Some(1.0),
                        Some(2.0),
                        Some(2.0),
                        Some(2.0),
                    ],
                    tags: &[("aggregatedBy", "count"), ("name", "countSeries(test.*.*)")],
                },
                Want {
                    name: "web02",
                    path: "countSeries(test.*.*)",
                    start: T0,
                    end: T0 + 600,
                    step: 60,
                    values: &[
                        Some(2.0),
                        Some(1.0),
                        None,
                        Some(2.0),
                        Some(2.0),
                        Some(2.0),
                        Some(2.0),
                        Some(2.0),
                        Some(1.0),
                        Some(2.0),
                    ],
                    tags: &[("aggregatedBy", "count"), ("name", "countSeries(test.*.*)")],
                },
            ],
        );
    }

    #[test]
    fn sum_series_lists() {
        check(
            "sumSeriesLists(test.web0*.cpu,test.web0*.mem)",
            &[
                Want {
                    name: "sumSeries(test.web01.cpu,test.web01.mem)",
                    path: "sumSeries(test.web0*.cpu,test.web0*.mem)",
                    start: T0,
                    end: T0 + 600,
                    step: 60,
                    values: &[
                        Some(101.0),
                        Some(202.0),
                        Some(300.0),
                        Some(404.0),
                        Some(505.0),
                        Some(606.0),
                        Some(700.0),
                        Some(808.0),
                        Some(909.0),
                        Some(1010.0),
                    ],
                    tags: &[
                        ("aggregatedBy", "sum"),
                        ("name", "sumSeries(test.web0*.cpu,test.web0*.mem)"),
                    ],
                },
                Want {
                    name: "sumSeries(test.web02.cpu,test.web02.mem)",
                    path: "sumSeries(test.web0*.cpu,test.web0*.mem)",
                    start: T0,
                    end: T0 + 600,
                    step: 60,
                    values: &[
                        Some(60.0),
                        Some(50.0),
                        None,
                        Some(53.0),
                        Some(52.5),
                        Some(1.0),
                        Some(50.0),
                        Some(49.0),
                        Some(50.0),
                        Some(54.0),
                    ],
                    tags: &[
                        ("aggregatedBy", "sum"),
                        ("name", "sumSeries(test.web0*.cpu,test.web0*.mem)"),
                    ],
                },
            ],
        );
    }

    #[test]
    fn diff_series_lists() {
        check(
            "diffSeriesLists(test.web0*.mem,test.web0*.cpu)",
            &[
                Want {
                    name: "diffSeries(test.web01.mem,test.web01.cpu)",
                    path: "diffSeries(test.web0*.mem,test.web0*.cpu)",
                    start: T0,
                    end: T0 + 600,
                    step: 60,
                    values: &[
                        Some(99.0),
                        Some(198.0),
                        Some(300.0),
                        Some(396.0),
                        Some(495.0),
                        Some(594.0),
                        Some(700.0),
                        Some(792.0),
                        Some(891.0),
                        Some(990.0),
                    ],
                    tags: &[
                        ("aggregatedBy", "diff"),
                        ("name", "diffSeries(test.web0*.mem,test.web0*.cpu)"),
                    ],
                },
                Want {
                    name: "diffSeries(test.web02.mem,test.web02.cpu)",
                    path: "diffSeries(test.web0*.mem,test.web0*.cpu)",
                    start: T0,
                    end: T0 + 600,
                    step: 60,
                    values: &[
                        Some(40.0),
                        Some(50.0),
                        None,
                        Some(47.0),
                        Some(47.5),
                        Some(-1.0),
                        Some(50.0),
                        Some(51.0),
                        Some(50.0),
                        Some(46.0),
                    ],
                    tags: &[
                        ("aggregatedBy", "diff"),
                        ("name", "diffSeries(test.web0*.mem,test.web0*.cpu)"),
                    ],
                },
            ],
        );
    }

    #[test]
    fn multiply_series_lists() {
        check(
            "multiplySeriesLists(test.web0*.cpu,test.web0*.mem)",
            &[
                Want {
                    name: "multiplySeries(test.web01.cpu,test.web01.mem)",
                    path: "multiplySeries(test.web0*.cpu,test.web0*.mem)",
                    start: T0,
                    end: T0 + 600,
                    step: 60,
                    values: &[
                        Some(100.0),
                        Some(400.0),
                        None,
                        Some(1600.0),
                        Some(2500.0),
                        Some(3600.0),
                        None,
                        Some(6400.0),
                        Some(8100.0),
                        Some(10000.0),
                    ],
                    tags: &[
                        ("aggregatedBy", "multiply"),
                        ("name", "multiplySeries(test.web0*.cpu,test.web0*.mem)"),
                    ],
                },
                Want {
                    name: "multiplySeries(test.web02.cpu,test.web02.mem)",
                    path: "multiplySeries(test.web0*.cpu,test.web0*.mem)",
                    start: T0,
                    end: T0 + 600,
                    step: 60,
                    values: &[
                        Some(500.0),
                        None,
                        None,
                        Some(150.0),
                        Some(125.0),
                        Some(0.0),
                        Some(0.0),
                        Some(-50.0),
                        None,
                        Some(200.0),
                    ],
                    tags: &[
                        ("aggregatedBy", "multiply"),
                        ("name", "multiplySeries(test.web0*.cpu,test.web0*.mem)"),
                    ],
                },
            ],
        );
    }

    #[test]
    fn aggregate_series_lists() {
        check(
            "aggregateSeriesLists(test.web0*.cpu,test.{db01,slow}.cpu,'avg')",
            &[
                Want {
                    name: "avgSeries(test.web01.cpu,test.db01.cpu)",
                    path: "avgSeries(test.web0*.cpu,test.{db01,slow}.cpu)",
                    start: T0,
                    end: T0 + 600,
                    step: 60,
                    values: &[
                        Some(1.0),
                        Some(4.5),
                        Some(7.0),
                        Some(4.0),
                        Some(2.75),
                        Some(53.0),
                        Some(3.0),
                        Some(5.5),
                        Some(6.0),
                        Some(10.0),
                    ],
                    tags: &[
                        ("aggregatedBy", "avg"),
                        ("name", "avgSeries(test.web0*.cpu,test.{db01,slow}.cpu)"),
                    ],
                },
                Want {
                    name: "avgSeries(test.web02.cpu,test.slow.cpu)",
                    path: "avgSeries(test.web0*.cpu,test.{db01,slow}.cpu)",
                    start: T0,
                    end: T0 + 600,
                    step: 300,
                    values: &[Some(5.166666666666667), Some(10.5)],
                    tags: &[
                        ("aggregatedBy", "avg"),
                        ("name", "avgSeries(test.web0*.cpu,test.{db01,slow}.cpu)"),
                    ],
                },
            ],
        );
    }

    #[test]
    fn aggregate_series_lists_same_path() {
        check(
            "aggregateSeriesLists(test.web0*.cpu,test.web0*.cpu,'sum',1)",
            &[
                Want {
                    name: "sumSeries(test.web01.cpu,test.web01.cpu)",
                    path: "sumSeries(test.web0*.cpu)",
                    start: T0,
                    end: T0 + 600,
                    step: 60,
                    values: &[
                        Some(2.0),
                        Some(4.0),
                        None,
                        Some(8.0),
                        Some(10.0),
                        Some(12.0),
                        None,
                        Some(16.0),
                        Some(18.0),
                        Some(20.0),
                    ],
                    tags: &[("aggregatedBy", "sum"), ("name", "test.web01.cpu")],
                },
                Want {
                    name: "sumSeries(test.web02.cpu,test.web02.cpu)",
                    path: "sumSeries(test.web0*.cpu)",
                    start: T0,
                    end: T0 + 600,
                    step: 60,
                    values: &[
                        Some(20.0),
                        None,
                        None,
                        Some(6.0),
                        Some(5.0),
                        Some(2.0),
                        Some(0.0),
                        Some(-2.0),
                        None,
                        Some(8.0),
                    ],
                    tags: &[("aggregatedBy", "sum"), ("name", "test.web02.cpu")],
                },
            ],
        );
    }

    #[test]
    fn weighted_average_by_node() {
        check(
            "weightedAverage(test.web0*.cpu,test.web0*.mem,1)",
            &[Want {
                name: "weightedAverage(test.web0*.cpu, test.web0*.mem, 1)",
                path: "weightedAverage(test.web0*.cpu, test.web0*.mem, 1)",
                start: T0,
                end: T0 + 600,
                step: 60,
                values: &[
                    Some(4.0),
                    Some(1.6),
                    None,
                    Some(3.888888888888889),
                    Some(4.7727272727272725),
                    Some(6.0),
                    Some(0.0),
                    Some(7.470588235294118),
                    Some(8.526315789473685),
                    Some(9.714285714285714),
                ],
                tags: &[("name", "weightedAverage(test.web0*.cpu, test.web0*.mem, 1)")],
            }],
        );
    }

    #[test]
    fn weighted_average_by_tag() {
        check(
            "weightedAverage(seriesByTag('name=disk.used','server=web01'),seriesByTag('name=disk.free'),'server')",
            &[Want {
                name: "weightedAverage(seriesByTag('name=disk.used','server=web01'), seriesByTag('name=disk.free'), server)",
                path: "weightedAverage(seriesByTag('name=disk.used','server=web01'), seriesByTag('name=disk.free'), server)",
                start: T0,
                end: T0 + 600,
                step: 60,
                values: &[
                    Some(1.0),
                    Some(2.0),
                    Some(3.0),
                    Some(4.0),
                    Some(5.0),
                    Some(6.0),
                    Some(7.0),
                    Some(8.0),
                    Some(9.0),
                    None,
                ],
                tags: &[(
                    "name",
                    "weightedAverage(seriesByTag('name=disk.used','server=web01'), seriesByTag('name=disk.free'), server)",
                )],
            }],
        );
    }

    #[test]
    fn weighted_average_unmatched() {
        check("weightedAverage(test.web01.cpu,test.web02.mem,1)", &[]);
    }

    // Errors. graphite-web 1.1.8 answers these with HTTP 400 (an InputParameterError), except
    // where a comment says it fails with a Python exception (HTTP 500).

    #[test]
    fn bad_aggregation_functions_are_rejected_even_without_series() {
        for target in [
            "aggregate(test.web0*.cpu,'bogus')",
            "aggregate(test.nothing,'bogus')",
            "groupByNode(test.*.cpu,1,'bogus')",
        ] {
            assert_eq!(error(target), "Unsupported aggregation function: bogus", "{target}");
        }
    }

    #[test]
    fn list_length_mismatches_are_rejected() {
        assert_eq!(
            error("sumSeriesLists(test.web0*.cpu,test.db01.cpu)"),
            "seriesListFirstPos and seriesListSecondPos argument must have equal length"
        );
        assert_eq!(
            error("divideSeriesLists(test.web0*.cpu,test.db01.cpu)"),
            "dividendSeriesList and divisorSeriesList argument must have equal length"
        );
        assert_eq!(
            error("divideSeries(test.web01.cpu,test.web0*.cpu)"),
            "divideSeries second argument must reference exactly 1 series (got 2)"
        );
        assert!(
            error("asPercent(test.web0*.cpu,test.{web01,web02,db01}.cpu)")
                .starts_with("asPercent second argument must be missing")
        );
        assert_eq!(
            error("weightedAverage(test.*.cpu,test.web0*.mem,1)"),
            "weightedAverage must receive the same number of series for seriesListAvg and \
             seriesListWeight but received respectively 5 and 2"
        );
    }

    #[test]
    fn bad_values_are_rejected() {
        assert_eq!(
            error("percentileOfSeries(test.web0*.cpu,0)"),
            "The requested percent is required to be greater than 0"
        );
        assert_eq!(error("asPercent(test.web0*.cpu,10,1)"), "total must be None or a seriesList");
        // graphite-web: TypeError dividing by the string (HTTP 500).
        assert!(error("asPercent(test.web01.cpu,'abc')").contains("total must be a number"));
        // graphite-web: IndexError (HTTP 500).
        assert!(error("percentileOfSeries(test.web0*.cpu,150)").contains("at most 100"));
        assert!(
            error("reduceSeries(mapSeries(test.web0*.*,1),'asPercent',5,'cpu','mem')")
                .contains("has no node 5")
        );
        assert!(error("groupByNode(test.*.cpu,None)").contains("not None"));
    }

    #[test]
    fn group_by_tags_rejects_a_key_with_an_empty_tag_value() {
        // graphite-web 1.1.8: Exception: Value for tag "missing" may not be empty (HTTP 500).
        let err = try_eval(
            &data(),
            "groupByTags(seriesByTag('name=disk.used'),'sum','missing')",
            FROM,
            UNTIL,
        )
        .unwrap_err();
        assert!(matches!(err, Error::Evaluation(_)), "{err}");
        assert!(err.to_string().contains("may not be empty"), "{err}");
    }

    #[test]
    fn reduce_series_needs_every_matcher() {
        // graphite-web 1.1.8: AttributeError on the missing series (HTTP 500).
        let err = try_eval(
            &data(),
            "reduceSeries(mapSeries(test.*.*,1),'asPercent',2,'cpu','mem')",
            FROM,
            UNTIL,
        )
        .unwrap_err();
        assert!(err.to_string().contains("no series matches mem"), "{err}");
        // graphite-web 1.1.8: KeyError (HTTP 500); an unknown function here is a 400.
        let err = try_eval(
            &data(),
            "reduceSeries(mapSeries(test.web0*.*,1),'bogus',2,'cpu','mem')",
            FROM,
            UNTIL,
        )
        .unwrap_err();
        assert!(matches!(err, Error::UnknownFunction(_)), "{err}");
    }

    #[test]
    fn functions_called_by_name_bind_series_positionally() {
        let src = data();
        let limits = crate::eval::Limits::default();
        let usage = crate::eval::UsageCell::default();
        let ctx = Context::new(&src, &limits, &usage, FROM, UNTIL, UNTIL);
        let divide = function::lookup("divideSeries").unwrap();
        let a = Series::new("a", T0, T0 + 120, 60, vec![Some(6.0), Some(1.0)]);
        let b = Series::new("b", T0, T0 + 120, 60, vec![Some(3.0), Some(0.0)]);
        let args = Args::with_series(&ctx, divide, vec![vec![a.clone()], vec![b.clone()]]);
        let got = (divide.call)(&args.unwrap()).unwrap();
        assert_eq!(names(&got), ["divideSeries(a,b)"]);
        assert_eq!(got[0].values, vec![Some(2.0), None]);
        // graphite-web: a Python TypeError (HTTP 500).
        let three = vec![vec![a.clone()], vec![b.clone()], vec![a.clone()]];
        let err = Args::with_series(&ctx, divide, three).err().unwrap();
        assert!(err.to_string().contains("takes at most 2"), "{err}");
        let err = Args::with_series(&ctx, divide, vec![vec![a.clone()]]).err().unwrap();
        assert!(err.to_string().contains("missing required argument"), "{err}");
        // Literal parameters cannot take a series.
        let percentile = function::lookup("percentileOfSeries").unwrap();
        let args = Args::with_series(&ctx, percentile, vec![vec![a.clone()], vec![b]]).unwrap();
        assert!((percentile.call)(&args).is_err());
        // The `multiple` parameter takes every list; defaults still apply.
        let sum = function::lookup("sumSeries").unwrap();
        let args = Args::with_series(&ctx, sum, vec![vec![a.clone()], vec![a]]).unwrap();
        assert_eq!((sum.call)(&args).unwrap()[0].values, vec![Some(12.0), Some(2.0)]);
    }

    #[test]
    fn steps_without_a_common_multiple_in_range_do_not_panic() {
        let src = data();
        let limits = crate::eval::Limits::default();
        let usage = crate::eval::UsageCell::default();
        let ctx = Context::new(&src, &limits, &usage, FROM, UNTIL, UNTIL);
        // Two primes near 2^32: their LCM does not fit in an i64.
        let a = Series::new("a", 0, 4_294_967_291 * 2, 4_294_967_291, vec![Some(1.0), Some(2.0)]);
        let b = Series::new("b", 0, 4_294_967_279 * 2, 4_294_967_279, vec![Some(3.0), None]);
        let got = aggregate_lists(&ctx, vec![vec![a, b]], "sum", None).unwrap();
        assert_eq!(got[0].step, i64::MAX);
        assert_eq!(got[0].values, vec![Some(4.5)]);
    }

    #[test]
    fn map_series_returns_the_groups_in_order() {
        // graphite-web returns [[db01.cpu], [empty.cpu], [slow.cpu], [web01.cpu, web01.mem],
        // [web02.cpu, web02.mem]]; we flatten it.
        let got = run("mapSeries(test.*.*,1)");
        assert_eq!(
            names(&got),
            [
                "test.db01.cpu",
                "test.empty.cpu",
                "test.slow.cpu",
                "test.web01.cpu",
                "test.web01.mem",
                "test.web02.cpu",
                "test.web02.mem"
            ]
        );
        let got = run("map(seriesByTag('name=disk.used'),'server')");
        assert_eq!(
            names(&got),
            [
                "disk.used;dc=dc1;server=web01",
                "disk.used;dc=dc1;server=web02",
                "disk.used;dc=dc2;server=db01"
            ]
        );
    }

    #[test]
    fn as_percent_missing_series_before_any_total_use_their_own_window() {
        // graphite-web 1.1.8 fails here (UnboundLocalError, HTTP 500): the first key, db01,
        // has no total and no window was computed yet.
        let got = run("asPercent(test.{web01,db01}.cpu,test.web0*.mem,1)");
        assert_eq!(
            names(&got),
            [
                "asPercent(test.db01.cpu,MISSING)",
                "asPercent(test.web01.cpu,test.web01.mem)",
                "asPercent(MISSING,test.web02.mem)"
            ]
        );
        assert_eq!(got[0].consolidated(), vec![None; 10]);
        assert_eq!((got[0].start, got[0].step), (T0, 60));
        let want: Vec<Option<f64>> = [1.0, 1.0, f64::NAN, 1.0, 1.0, 1.0, f64::NAN, 1.0, 1.0, 1.0]
            .iter()
            .map(|v| (!v.is_nan()).then_some(*v))
            .collect();
        assert_eq!(got[1].consolidated(), want);
    }

    #[test]
    fn percentile_100_interpolated_is_the_largest_value() {
        // graphite-web 1.1.8 reads past the end here (IndexError, HTTP 500).
        let got = run("percentileOfSeries(test.web0*.cpu,100,true)");
        assert_eq!(got[0].name, "percentileOfSeries(test.web0*.cpu,100)");
        assert_eq!(got[0].values[0], Some(10.0));
        assert_eq!(got[0].values[2], None);
        assert_eq!(percentile(&[Some(3.0), Some(1.0), Some(2.0)], 100.0, true), Some(3.0));
    }

    #[test]
    fn callbacks_reach_functions_of_other_families_by_name() {
        // A registered function is called with the group; `group` returns it unchanged and
        // the first series is kept.
        let got = run("groupByNode(test.web0*.*,1,'group')");
        assert_eq!(names(&got), ["web01", "web02"]);
        assert_eq!(got[0].path_expression, "test.web0*.*");
        assert_eq!(got[0].values[0], Some(1.0));
    }

    #[test]
    fn every_combine_function_is_registered_once() {
        let mut seen = std::collections::HashSet::new();
        for def in FUNCTIONS {
            assert!(seen.insert(def.name), "{} twice", def.name);
            assert_eq!(def.group, "Combine");
            assert_eq!(function::lookup(def.name).map(|d| d.name), Some(def.name));
        }
        assert_eq!(FUNCTIONS.len(), 36);
        let aggregators = FUNCTIONS.iter().filter(|d| d.aggregator).count();
        assert_eq!(aggregators, 20);
        let group_by_node = function::lookup("groupByNode").unwrap();
        assert_eq!(
            group_by_node.signature(),
            "groupByNode(seriesList, nodeNum, callback='average')"
        );
    }
}
