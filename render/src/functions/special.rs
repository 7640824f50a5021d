//! The Special family (graphite-reference §4.4), plus `threshold` from the Graph group:
//! functions that change how series consolidate (`consolidateBy`, `cumulative`,
//! `setXFilesFactor`), rename them (`cactiStyle`, `substr`), make series out of nothing
//! (`constantLine`, `threshold`, `randomWalk`) or choose between lists (`fallbackSeries`).
//!
//! `seriesByTag` is registered here so `/functions` lists it, but the evaluator resolves it
//! itself (it is a fetch, not a function); `events` counts the events of the request's
//! [`Context::events`] store.

use std::hash::{BuildHasher, Hasher};

use crate::error::{Error, Result};
use crate::eval::Context;
use crate::events::TagSet;
use crate::function::{Args, Default, FunctionDef, Param, ParamType, SERIES_LIST};
use crate::pyfmt;
use crate::series::{Consolidation, Series};

/// The names `consolidateBy` accepts, sorted as graphite-web lists them in `/functions`.
const CONSOLIDATION_OPTIONS: &[&str] =
    &["average", "avg", "avg_zero", "first", "last", "max", "min", "sum"];

const XFF_PARAMS: &[Param] =
    &[SERIES_LIST, Param::new("xFilesFactor", ParamType::Float).required()];
const RANDOM_WALK_PARAMS: &[Param] = &[
    Param::new("name", ParamType::String).required(),
    Param::new("step", ParamType::Integer).default(Default::Int(60)),
];

const fn def(
    name: &'static str,
    description: &'static str,
    params: &'static [Param],
    call: crate::function::FunctionImpl,
) -> FunctionDef {
    FunctionDef { name, group: "Special", description, params, aggregator: false, call }
}

/// The functions this family defines.
pub(crate) const FUNCTIONS: &[FunctionDef] = &[
    def(
        "cactiStyle",
        "Renames each series to aligned columns in the style of Cacti: the name, then its \
         current (last), maximum and minimum values. system ('si' or 'binary') scales values \
         with unit prefixes, units appends a unit. Alignment needs a monospace font and one \
         cactiStyle call over all series (use group() to combine lists).",
        &[
            SERIES_LIST,
            Param::new("system", ParamType::String).options(&["binary", "si"]),
            Param::new("units", ParamType::String),
        ],
        cacti_style,
    ),
    def(
        "changed",
        "1 where a value differs from the previous non-null value, 0 elsewhere (the first \
         value and nulls give 0).",
        &[SERIES_LIST],
        changed,
    ),
    def(
        "consolidateBy",
        "Sets the function used when several points are merged into one (for maxDataPoints, \
         for the width of a graph, or to combine series of different steps): sum, average \
         (avg), avg_zero, min, max, first or last. The default is average.",
        &[
            SERIES_LIST,
            Param::new("consolidationFunc", ParamType::String)
                .required()
                .options(CONSOLIDATION_OPTIONS),
        ],
        consolidate_by,
    ),
    def(
        "constantLine",
        "A horizontal line at the given value over the requested range (three points: start, \
         middle and end).",
        &[Param::new("value", ParamType::Float).required()],
        constant_line_fn,
    ),
    def(
        "cumulative",
        "Makes points merged by consolidation add up instead of averaging: the same as \
         consolidateBy(seriesList, 'sum').",
        &[SERIES_LIST],
        cumulative,
    ),
    def(
        "events",
        "The number of events (from the events database) at each second of the requested \
         range, for events carrying all the given tags ('*' for every event).",
        &[Param::new("tags", ParamType::String).required().multiple()],
        events,
    ),
    def(
        "fallbackSeries",
        "Returns seriesList when it has at least one series, otherwise fallback; for example \
         a constantLine(0) where a metric does not exist.",
        &[SERIES_LIST, Param::new("fallback", ParamType::SeriesList).required()],
        fallback_series,
    ),
    def(
        "randomWalk",
        "A random walk starting at 0 over the requested range: each value adds a random \
         number between -0.5 and 0.5 to the previous one. Meant for testing. Short form of \
         randomWalkFunction.",
        RANDOM_WALK_PARAMS,
        random_walk,
    ),
    def(
        "randomWalkFunction",
        "A random walk starting at 0 over the requested range: each value adds a random \
         number between -0.5 and 0.5 to the previous one. Meant for testing.",
        RANDOM_WALK_PARAMS,
        random_walk,
    ),
    def(
        "seriesByTag",
        "The series whose tags match every given tag expression: tag=value, tag!=value, \
         tag=~regex and tag!=~regex (regexes are anchored at the start). An expression that \
         matches an empty value also matches series without the tag, so at least one \
         expression must require a value.",
        &[Param::new("tagExpressions", ParamType::String).required().multiple()],
        series_by_tag,
    ),
    def(
        "setXFilesFactor",
        "Sets the xFilesFactor of each series: the fraction (0 to 1) of non-null values a \
         group of points needs for its consolidated value not to be null. Short form: \
         xFilesFactor.",
        XFF_PARAMS,
        set_x_files_factor,
    ),
    def(
        "substr",
        "Renames each series to a slice of the dot-separated nodes of its metric path (the \
         innermost path of a function-wrapped name): nodes start to stop, like a Python \
         slice; stop 0 means to the end.",
        &[
            SERIES_LIST,
            Param::new("start", ParamType::Node).default(Default::Int(0)),
            Param::new("stop", ParamType::Node).default(Default::Int(0)),
        ],
        substr,
    ),
    FunctionDef {
        name: "threshold",
        group: "Graph",
        description: "A horizontal line at the given value over the requested range, as \
                      constantLine, with an optional label (its name) and color.",
        params: &[
            Param::new("value", ParamType::Float).required(),
            Param::new("label", ParamType::String),
            Param::new("color", ParamType::String),
        ],
        aggregator: false,
        call: threshold,
    },
    def(
        "xFilesFactor",
        "Sets the xFilesFactor of each series: the fraction (0 to 1) of non-null values a \
         group of points needs for its consolidated value not to be null. Same as \
         setXFilesFactor.",
        XFF_PARAMS,
        set_x_files_factor,
    ),
];

// ---------------------------------------------------------------------------------------------
// Lines.

/// graphite-web's `constantLine(value)`: three points at `from`, the middle and `until` (step
/// `(until - from) / 2`), named `text` (Python's `str(value)`), with tags parsed from that name
/// and `constantLine(<text>)` as path expression. `aggregateLine` reuses it.
pub(crate) fn constant_line(ctx: &Context<'_>, value: Option<f64>, text: &str) -> Series {
    let (start, end) = (ctx.from, ctx.until);
    let step = (end - start) / 2;
    let mut s = Series::new(text, start, end, step, vec![value; 3]);
    s.path_expression = format!("constantLine({text})");
    s.x_files_factor = ctx.effective_x_files_factor();
    s
}

fn constant_line_fn(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let value = args.float(0)?;
    Ok(vec![constant_line(args.ctx, Some(value), &pyfmt::float_repr(value))])
}

/// graphite-web's `threshold`: a constantLine renamed to `label` (when not empty), with an
/// optional color.
fn threshold(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let value = args.float(0)?;
    let mut s = constant_line(args.ctx, Some(value), &pyfmt::float_repr(value));
    if let Some(label) = args.opt_string(1)?.filter(|l| !l.is_empty()) {
        // Only the name changes: the path expression stays `constantLine(...)`.
        s.name = label;
    }
    if let Some(color) = args.opt_string(2)?.filter(|c| !c.is_empty()) {
        s.options.insert("color".into(), color);
    }
    Ok(vec![s])
}

/// graphite-web's `randomWalkFunction`: values at `from, from + step, ...` while before
/// `until`, starting at 0 and adding `random() - 0.5` each step.
fn random_walk(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let name = args.string(0)?;
    let step = args.int(1)?;
    if step <= 0 {
        return Err(Error::arg(format!("{}(): step must be positive, got {step}", args.def.name)));
    }
    let (start, end) = (args.ctx.from, args.ctx.until);
    let count = if end > start { (end - start).saturating_add(step - 1) / step } else { 0 };
    let count = usize::try_from(count).unwrap_or(0);
    let mut rng = SplitMix64::seeded();
    let mut current = 0.0;
    let mut values = Vec::with_capacity(count);
    for _ in 0..count {
        values.push(Some(current));
        current += rng.next_f64() - 0.5;
    }
    let mut s = Series::new(name, start, end, step, values);
    s.x_files_factor = args.ctx.effective_x_files_factor();
    Ok(vec![s])
}

/// A small random generator for `randomWalk` (SplitMix64), seeded from the standard library's
/// per-process random hasher keys: the walk only has to look random, not be reproducible.
struct SplitMix64(u64);

impl SplitMix64 {
    fn seeded() -> SplitMix64 {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u64(0x5eed);
        SplitMix64(hasher.finish())
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A float in `[0, 1)` with 53 random bits, as Python's `random.random()`.
    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

// ---------------------------------------------------------------------------------------------
// Consolidation settings.

/// graphite-web's `consolidateBy`: sets the function (keeping the name as given, `avg`
/// included, in the series name and the `consolidateBy` tag).
fn consolidate_by(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let func = args.string(1)?;
    set_consolidation(args.series(0)?, &func)
}

/// graphite-web's `cumulative`: `consolidateBy(seriesList, 'sum')`.
fn cumulative(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    set_consolidation(args.series(0)?, "sum")
}

fn set_consolidation(mut list: Vec<Series>, func: &str) -> Result<Vec<Series>> {
    let consolidation = Consolidation::parse(func).ok_or_else(|| {
        Error::arg(format!(
            "consolidateBy(): invalid consolidation function '{func}', expected one of {}",
            CONSOLIDATION_OPTIONS.join(", ")
        ))
    })?;
    for s in &mut list {
        s.consolidation = consolidation;
        s.tags.insert("consolidateBy".into(), func.to_string());
        let name = format!("consolidateBy({},\"{func}\")", s.name);
        s.set_name(name);
    }
    Ok(list)
}

/// graphite-web's `setXFilesFactor`: sets the series' xFilesFactor, tags it (as Python's
/// `str(float)`), and stores it in the request context, where it becomes the default of the
/// functions and fetches evaluated after it (an enclosing `sumSeries`, a later argument).
fn set_x_files_factor(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let mut list = args.series(0)?;
    let xff = args.float(1)?;
    args.ctx.set_x_files_factor(xff);
    for s in &mut list {
        s.x_files_factor = xff;
        s.tags.insert("xFilesFactor".into(), pyfmt::float_repr(xff));
    }
    Ok(list)
}

// ---------------------------------------------------------------------------------------------
// Values.

/// graphite-web's `changed`: compares each value (as read, consolidated) with the last
/// non-null one before it and writes 0/1 over the raw values by index, as Python assigns
/// `series[i]` while iterating.
fn changed(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let mut list = args.series(0)?;
    for s in &mut list {
        let name = format!("changed({})", s.name);
        s.set_name(name);
        let mut previous: Option<f64> = None;
        for (i, value) in s.consolidated().into_iter().enumerate() {
            let out = match (previous, value) {
                (None, v) => {
                    previous = v;
                    0.0
                }
                (Some(p), Some(v)) if p != v => {
                    previous = Some(v);
                    1.0
                }
                _ => 0.0,
            };
            if let Some(slot) = s.values.get_mut(i) {
                *slot = Some(out);
            }
        }
    }
    Ok(list)
}

/// graphite-web's `fallbackSeries`. Both arguments are evaluated, as graphite-web evaluates
/// every argument before the call.
fn fallback_series(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let list = args.series(0)?;
    let fallback = args.series(1)?;
    Ok(if list.is_empty() { fallback } else { list })
}

// ---------------------------------------------------------------------------------------------
// Names.

/// graphite-web's `substr`: the text between the last `(` and the first `)` of the name,
/// split on dots, sliced `[start:stop]` (`[start:]` when stop is 0), joined again, and cut
/// at the first comma. Tags and the path expression are kept.
fn substr(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let mut list = args.series(0)?;
    let start = args.int(1)?;
    let stop = args.int(2)?;
    for s in &mut list {
        let left = s.name.rfind('(').map_or(0, |i| i + 1);
        let right = s.name.find(')').unwrap_or(s.name.len());
        let clean = s.name.get(left..right.max(left)).unwrap_or("");
        let nodes: Vec<&str> = clean.split('.').collect();
        let (lo, hi) = py_slice(nodes.len(), start, (stop != 0).then_some(stop));
        let mut name = nodes.get(lo..hi.max(lo)).map(|n| n.join(".")).unwrap_or_default();
        if let Some(comma) = name.find(',') {
            name.truncate(comma);
        }
        s.name = name;
    }
    Ok(list)
}

/// The `[lo, hi)` bounds of Python's `seq[start:stop]` on a sequence of `len` items.
fn py_slice(len: usize, start: i64, stop: Option<i64>) -> (usize, usize) {
    let len_i = i64::try_from(len).unwrap_or(i64::MAX);
    let clamp = |i: i64| -> usize {
        let i = if i < 0 { (i.saturating_add(len_i)).max(0) } else { i.min(len_i) };
        usize::try_from(i).unwrap_or(0)
    };
    (clamp(start), stop.map_or(len, clamp))
}

/// SI and binary prefixes, largest first (graphite-web's `UnitSystems`).
const SI_UNITS: &[(&str, f64)] = &[("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)];
const BINARY_UNITS: &[(&str, f64)] = &[
    ("Pi", 1_125_899_906_842_624.0),
    ("Ti", 1_099_511_627_776.0),
    ("Gi", 1_073_741_824.0),
    ("Mi", 1_048_576.0),
    ("Ki", 1024.0),
];

/// graphite-web's `format_units(v, system=...)`: the value scaled by the largest prefix it
/// reaches, floored when within 1e-11 above a whole number greater than 1.
fn format_units(v: f64, units: &[(&'static str, f64)]) -> (f64, &'static str) {
    let snap = |x: f64| if x - x.floor() < 0.000_000_000_01 && v > 1.0 { x.floor() } else { x };
    for (prefix, size) in units {
        if v.abs() >= *size {
            return (snap(v / size), prefix);
        }
    }
    (snap(v), "")
}

/// graphite-web's `cactiStyle` value formatter.
struct CactiFormat {
    system: Option<&'static [(&'static str, f64)]>,
    units: Option<String>,
}

impl CactiFormat {
    fn format(&self, x: f64) -> String {
        match (self.system, &self.units) {
            (Some(system), Some(units)) => {
                let (v, prefix) = format_units(x, system);
                format!("{} {prefix}{units}", fixed2(v))
            }
            (Some(system), None) => {
                let (v, prefix) = format_units(x, system);
                format!("{}{prefix}", fixed2(v))
            }
            (None, Some(units)) => format!("{} {units}", fixed2(x)),
            (None, None) => fixed2(x),
        }
    }
}

/// Python's `"%.2f" % x` (Rust rounds exact ties the same way, to even).
fn fixed2(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf".into() } else { "-inf".into() };
    }
    format!("{x:.2}")
}

/// graphite-web's `cactiStyle`. Column widths come from the widest name and from the values
/// truncated to integers (`int(value or 3)`), plus 3.
fn cacti_style(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let mut list = args.series(0)?;
    if list.is_empty() {
        return Ok(list);
    }
    let system = match args.opt_string(1)?.as_deref() {
        None | Some("") => None,
        Some("si") => Some(SI_UNITS),
        Some("binary") => Some(BINARY_UNITS),
        Some(other) => {
            return Err(Error::arg(format!(
                "cactiStyle(): unknown unit system '{other}', expected 'si' or 'binary'"
            )));
        }
    };
    let units = args.opt_string(2)?.filter(|u| !u.is_empty());
    let fmt = CactiFormat { system, units };
    struct Stats {
        last: Option<f64>,
        max: Option<f64>,
        min: Option<f64>,
    }
    let stats: Vec<Stats> = list
        .iter()
        .map(|s| {
            let read = s.consolidated();
            Stats {
                // safeLast walks the raw values backwards; min and max iterate the series.
                last: s.values.iter().rev().flatten().next().copied(),
                max: read.iter().flatten().copied().reduce(crate::series::py_max),
                min: read.iter().flatten().copied().reduce(crate::series::py_min),
            }
        })
        .collect();
    // `len(fmt(int(value or 3)))`: Python's int() of inf or nan raises.
    let width = |pick: fn(&Stats) -> Option<f64>| -> Result<usize> {
        let mut widest = 0;
        for st in &stats {
            let v = pick(st).filter(|v| *v != 0.0).unwrap_or(3.0);
            if !v.is_finite() {
                return Err(Error::Evaluation(format!(
                    "cactiStyle(): cannot format the value {}",
                    pyfmt::float_repr(v)
                )));
            }
            widest = widest.max(fmt.format(v.trunc()).chars().count());
        }
        Ok(widest + 3)
    };
    let name_len = list.iter().map(|s| s.name.chars().count()).max().unwrap_or(0);
    let last_len = width(|s| s.last)?;
    let max_len = width(|s| s.max)?;
    let min_len = width(|s| s.min)?;
    for (s, st) in list.iter_mut().zip(&stats) {
        let show = |v: Option<f64>| v.map_or_else(|| "nan".to_string(), |v| fmt.format(v));
        s.name = format!(
            "{:<name_len$} Current:{:<last_len$} Max:{:<max_len$} Min:{:<min_len$} ",
            s.name,
            show(st.last),
            show(st.max),
            show(st.min),
        );
    }
    Ok(list)
}

// ---------------------------------------------------------------------------------------------
// Registered for /functions only.

/// Never reached: the evaluator fetches `seriesByTag(...)` itself before looking functions up.
fn series_by_tag(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    Err(Error::arg(format!(
        "{}() can only be used as a series expression (the evaluator resolves it)",
        args.def.name
    )))
}

/// graphite-web's `events(*tags)`: one value per second over the request's range (from
/// `from` to `until`, step 1, consolidated by `sum`), each the number of events at that second
/// carrying every given tag (`"*"` alone: every event), null where there is none. Named
/// `events("a", "b")`.
///
/// Two graphite-web behaviours are not reproduced: an event at exactly `until` makes
/// graphite-web fail (its index is one past the list, a 500); it is left out here. And
/// graphite-web's tag library drops the tags no event has ever carried before matching, so
/// `events("deploy", "typo")` counts every `deploy` event there; here every tag must match, as
/// `/events/get_data` matches them.
fn events(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let tags: Vec<String> = args.literal_rest()?.iter().map(ToString::to_string).collect();
    let name = format!("events(\"{}\")", tags.join("\", \""));
    let ctx = args.ctx;
    let (start, end) = (ctx.from, ctx.until);
    let points = usize::try_from(end.saturating_sub(start)).unwrap_or(0);
    if points > ctx.limits.max_points {
        return Err(Error::Limit(format!(
            "events(): the range has more than {} seconds (limit max_points)",
            ctx.limits.max_points
        )));
    }
    let mut values: Vec<Option<f64>> = vec![None; points];
    if let Some(store) = ctx.events {
        let wanted = (tags != ["*"]).then_some(tags.as_slice());
        for event in store.find(start as f64, end as f64, wanted, TagSet::All) {
            // graphite-web's epoch(): whole seconds, rounded down.
            let at = event.when.floor() as i64;
            let slot = usize::try_from(at - start).ok().and_then(|i| values.get_mut(i));
            if let Some(slot) = slot {
                *slot = Some(slot.unwrap_or(0.0) + 1.0);
            }
        }
    }
    let mut s = Series::new(name, start, end, 1, values);
    s.consolidation = Consolidation::Sum;
    s.x_files_factor = ctx.effective_x_files_factor();
    Ok(vec![s])
}

#[cfg(test)]
mod tests {
    //! Expected values come from graphite-web 1.1.8's own functions run on the same series
    //! (see the calculate family's tests for the data set and the comparison).

    use super::*;
    use crate::functions::calculate::tests::{Want, check, run, run_err};
    use crate::testutil::T0;

    #[test]
    fn format_units_matches_graphite_web() {
        // `"%.2f%s" % format_units(v, system='si')` and
        // `"%.2f %s" % format_units(v, system='binary', units='B')` from graphite-web 1.1.8.
        let si = CactiFormat { system: Some(SI_UNITS), units: None };
        let binary = CactiFormat { system: Some(BINARY_UNITS), units: Some("B".into()) };
        for (v, want_si, want_binary) in [
            (999.0, "999.00", "999.00 B"),
            (1000.0, "1.00k", "1000.00 B"),
            (123456.0, "123.46k", "120.56 KiB"),
            (1536.0, "1.54k", "1.50 KiB"),
            (1048576.0, "1.05M", "1.00 MiB"),
            (2.5e15, "2.50P", "2.22 PiB"),
            (-2048.0, "-2.05k", "-2.00 KiB"),
            (1.00000000000001e6, "1.00M", "976.56 KiB"),
            (0.5, "0.50", "0.50 B"),
        ] {
            assert_eq!(si.format(v), want_si, "{v}");
            assert_eq!(binary.format(v), want_binary, "{v}");
        }
    }

    #[test]
    fn threshold_sets_color_option() {
        let got = run("threshold(5,'limit','red')", 600, 1500);
        assert_eq!(got[0].options.get("color").map(String::as_str), Some("red"));
        let got = run("threshold(5)", 600, 1500);
        assert!(got[0].options.is_empty());
    }

    #[test]
    fn random_walk_starts_at_zero_and_moves_by_less_than_half() {
        for target in ["randomWalk('rw')", "randomWalkFunction('rw', 120)"] {
            let got = run(target, 600, 1500);
            assert_eq!(got.len(), 1);
            let s = &got[0];
            let step = if target.contains("120") { 120 } else { 60 };
            assert_eq!(
                (s.name.as_str(), s.start, s.end, s.step),
                ("rw", T0 + 600, T0 + 1500, step)
            );
            // Python appends while `when < endTime`: ceil(900 / step) values.
            assert_eq!(s.values.len(), 900_usize.div_ceil(step as usize));
            assert_eq!(s.values[0], Some(0.0));
            for pair in s.values.windows(2) {
                let d = pair[1].unwrap() - pair[0].unwrap();
                assert!((-0.5..0.5).contains(&d), "{d}");
            }
        }
        assert!(matches!(run_err("randomWalk('rw',0)", 600, 1500), Error::InvalidArgument(_)));
    }

    #[test]
    fn series_by_tag_is_registered_and_resolved_by_the_evaluator() {
        let def = crate::function::lookup("seriesByTag").unwrap();
        assert_eq!(def.group, "Special");
        assert_eq!(def.signature(), "seriesByTag(*tagExpressions)");
        let got = run("seriesByTag('name=tagged.disk.used','dc=dc1')", 600, 1500);
        assert_eq!(got[0].name, "tagged.disk.used;dc=dc1;server=web01");
    }

    /// Evaluates `target` over `(T0 + from, T0 + until]` with an event store holding events at
    /// T0+100 (deploy, web), T0+100.5 (deploy), T0+130 (web) and T0+200 (no tag).
    fn run_events(target: &str, from: i64, until: i64) -> crate::Result<Vec<Series>> {
        let store = crate::events::EventStore::in_memory();
        for (when, tags) in
            [(100.0, &["deploy", "web"][..]), (100.5, &["deploy"]), (130.0, &["web"]), (200.0, &[])]
        {
            let tags = tags.iter().map(|t| t.to_string()).collect();
            store.add(T0 as f64 + when, "e".into(), String::new(), tags).unwrap();
        }
        let src = crate::functions::calculate::tests::data();
        let limits = crate::eval::Limits::default();
        let usage = crate::eval::UsageCell::default();
        let mut ctx = Context::new(&src, &limits, &usage, T0 + from, T0 + until, T0 + until);
        ctx.events = Some(&store);
        ctx.eval_series(&crate::parse::parse(target)?)
    }

    /// The non-null values of `s` as `(offset from T0, value)`.
    fn counts(s: &Series) -> Vec<(i64, f64)> {
        s.values
            .iter()
            .enumerate()
            .filter_map(|(i, v)| v.map(|v| (s.start - T0 + i as i64, v)))
            .collect()
    }

    #[test]
    fn events_count_per_second_like_graphite_web() {
        // graphite-web 1.1.8 with the same events in its database, over (T0+90, T0+210].
        for (target, name, want) in [
            ("events('*')", "events(\"*\")", &[(100, 2.0), (130, 1.0), (200, 1.0)][..]),
            ("events('deploy')", "events(\"deploy\")", &[(100, 2.0)]),
            ("events('deploy','web')", "events(\"deploy\", \"web\")", &[(100, 1.0)]),
            ("events('nosuch')", "events(\"nosuch\")", &[]),
        ] {
            let got = run_events(target, 90, 210).unwrap();
            assert_eq!(got.len(), 1);
            let s = &got[0];
            assert_eq!(s.name, name);
            assert_eq!(s.path_expression, name);
            assert_eq!((s.start - T0, s.end - T0, s.step, s.values.len()), (90, 210, 1, 120));
            assert_eq!((s.consolidation, s.x_files_factor), (Consolidation::Sum, 0.0));
            assert_eq!(s.tags.len(), 1);
            assert_eq!(counts(s), want, "{target}");
        }
    }

    #[test]
    fn events_at_the_edges_of_the_range() {
        // An event at `from` counts; one at `until` is left out (graphite-web fails on it).
        let got = run_events("events('*')", 100, 200).unwrap();
        assert_eq!(counts(&got[0]), [(100, 2.0), (130, 1.0)]);
        let got = run_events("events('*')", 101, 130).unwrap();
        assert_eq!(got[0].values.len(), 29);
        assert_eq!(counts(&got[0]), []);
    }

    #[test]
    fn events_consolidate_by_sum() {
        let got = run_events("events('deploy')", 90, 210).unwrap();
        let mut s = got[0].clone();
        s.consolidate(60);
        assert_eq!(s.consolidated(), [Some(2.0), None]);
    }

    #[test]
    fn events_without_a_store_are_all_null() {
        let got = run("events('deploy')", 600, 660);
        assert_eq!(got[0].values, vec![None; 60]);
        assert!(matches!(run_err("events()", 600, 660), Error::InvalidArgument(_)));
    }

    #[test]
    fn events_over_a_huge_range_is_a_limit() {
        let err = run_events("events('*')", -T0, 0).unwrap_err();
        assert!(matches!(err, Error::Limit(_)), "{err}");
    }

    #[test]
    fn bad_arguments_are_invalid_argument_errors() {
        for target in [
            "consolidateBy(test.web01.cpu,'median')",
            "cactiStyle(test.web01.cpu,'metric')",
            "substr(test.web01.cpu,'a')",
            "constantLine('x')",
            "xFilesFactor(test.web01.cpu)",
        ] {
            assert!(matches!(run_err(target, 600, 1500), Error::InvalidArgument(_)), "{target}");
        }
    }

    #[test]
    fn signatures_match_graphite_web() {
        for (name, want) in [
            ("consolidateBy", "consolidateBy(seriesList, consolidationFunc)"),
            ("cactiStyle", "cactiStyle(seriesList, system=None, units=None)"),
            ("substr", "substr(seriesList, start=0, stop=0)"),
            ("randomWalk", "randomWalk(name, step=60)"),
            ("threshold", "threshold(value, label=None, color=None)"),
            ("events", "events(*tags)"),
        ] {
            assert_eq!(crate::function::lookup(name).unwrap().signature(), want);
        }
    }

    #[test]
    fn consolidate_by_sets_function_name_and_tag() {
        // Expected values computed by graphite-web 1.1.8 on the same data.
        let got = run("consolidateBy(test.web01.cpu,\"max\")", 600, 1500);
        check(
            &got,
            &[Want {
                name: "consolidateBy(test.web01.cpu,\"max\")",
                path: "consolidateBy(test.web01.cpu,\"max\")",
                start: 660,
                end: 1560,
                step: 60,
                cf: "max",
                xff: 0.0,
                tags: &[("consolidateBy", "max"), ("name", "test.web01.cpu")],
                values: &[
                    Some(2.2),
                    Some(9.9),
                    Some(1.1),
                    Some(0.7),
                    Some(4.4),
                    None,
                    Some(3.0),
                    Some(8.8),
                    Some(2.0),
                    Some(1.0),
                    Some(0.3),
                    Some(5.0),
                    Some(6.6),
                    Some(7.7),
                    None,
                ],
            }],
        );
    }

    #[test]
    fn consolidate_by_keeps_the_alias_as_given() {
        // Expected values computed by graphite-web 1.1.8 on the same data.
        let got = run("consolidateBy(test.slow.cpu,'avg')", 600, 1500);
        check(
            &got,
            &[Want {
                name: "consolidateBy(test.slow.cpu,\"avg\")",
                path: "consolidateBy(test.slow.cpu,\"avg\")",
                start: 660,
                end: 1560,
                step: 300,
                cf: "average",
                xff: 0.0,
                tags: &[("consolidateBy", "avg"), ("name", "test.slow.cpu")],
                values: &[Some(90.25), Some(95.0), Some(120.0)],
            }],
        );
    }

    #[test]
    fn cumulative_is_consolidate_by_sum() {
        // Expected values computed by graphite-web 1.1.8 on the same data.
        let got = run("cumulative(test.*.cpu)", 600, 1500);
        check(
            &got,
            &[
                Want {
                    name: "consolidateBy(test.db01.cpu,\"sum\")",
                    path: "consolidateBy(test.db01.cpu,\"sum\")",
                    start: 660,
                    end: 1560,
                    step: 60,
                    cf: "sum",
                    xff: 0.0,
                    tags: &[("consolidateBy", "sum"), ("name", "test.db01.cpu")],
                    values: &[
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
                        None,
                    ],
                },
                Want {
                    name: "consolidateBy(test.slow.cpu,\"sum\")",
                    path: "consolidateBy(test.slow.cpu,\"sum\")",
                    start: 660,
                    end: 1560,
                    step: 300,
                    cf: "sum",
                    xff: 0.0,
                    tags: &[("consolidateBy", "sum"), ("name", "test.slow.cpu")],
                    values: &[Some(90.25), Some(95.0), Some(120.0)],
                },
                Want {
                    name: "consolidateBy(test.web01.cpu,\"sum\")",
                    path: "consolidateBy(test.web01.cpu,\"sum\")",
                    start: 660,
                    end: 1560,
                    step: 60,
                    cf: "sum",
                    xff: 0.0,
                    tags: &[("consolidateBy", "sum"), ("name", "test.web01.cpu")],
                    values: &[
                        Some(2.2),
                        Some(9.9),
                        Some(1.1),
                        Some(0.7),
                        Some(4.4),
                        None,
                        Some(3.0),
                        Some(8.8),
                        Some(2.0),
                        Some(1.0),
                        Some(0.3),
                        Some(5.0),
                        Some(6.6),
                        Some(7.7),
                        None,
                    ],
                },
                Want {
                    name: "consolidateBy(test.web02.cpu,\"sum\")",
                    path: "consolidateBy(test.web02.cpu,\"sum\")",
                    start: 660,
                    end: 1560,
                    step: 60,
                    cf: "sum",
                    xff: 0.0,
                    tags: &[("consolidateBy", "sum"), ("name", "test.web02.cpu")],
                    values: &[
                        Some(11.1),
                        Some(12.0),
                        None,
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
                        None,
                        Some(9.25),
                    ],
                },
            ],
        );
    }

    #[test]
    fn changed_with_leading_nulls() {
        // Expected values computed by graphite-web 1.1.8 on the same data.
        let got = run("changed(test.db01.cpu)", 600, 1500);
        check(
            &got,
            &[Want {
                name: "changed(test.db01.cpu)",
                path: "changed(test.db01.cpu)",
                start: 660,
                end: 1560,
                step: 60,
                cf: "average",
                xff: 0.0,
                tags: &[("name", "test.db01.cpu")],
                values: &[
                    Some(0.0),
                    Some(0.0),
                    Some(1.0),
                    Some(0.0),
                    Some(0.0),
                    Some(0.0),
                    Some(0.0),
                    Some(1.0),
                    Some(0.0),
                    Some(1.0),
                    Some(0.0),
                    Some(0.0),
                    Some(1.0),
                    Some(0.0),
                    Some(0.0),
                ],
            }],
        );
    }

    #[test]
    fn changed_dense() {
        // Expected values computed by graphite-web 1.1.8 on the same data.
        let got = run("changed(test.web02.cpu)", 0, 1800);
        check(
            &got,
            &[Want {
                name: "changed(test.web02.cpu)",
                path: "changed(test.web02.cpu)",
                start: 60,
                end: 1860,
                step: 60,
                cf: "average",
                xff: 0.0,
                tags: &[("name", "test.web02.cpu")],
                values: &[
                    Some(0.0),
                    Some(1.0),
                    Some(1.0),
                    Some(1.0),
                    Some(0.0),
                    Some(1.0),
                    Some(1.0),
                    Some(1.0),
                    Some(1.0),
                    Some(1.0),
                    Some(1.0),
                    Some(1.0),
                    Some(0.0),
                    Some(1.0),
                    Some(1.0),
                    Some(1.0),
                    Some(1.0),
                    Some(1.0),
                    Some(1.0),
                    Some(1.0),
                    Some(1.0),
                    Some(1.0),
                    Some(1.0),
                    Some(0.0),
                    Some(1.0),
                    Some(1.0),
                    Some(1.0),
                    Some(1.0),
                    Some(1.0),
                    Some(0.0),
                ],
            }],
        );
    }

    #[test]
    fn cacti_style_plain() {
        // Expected values computed by graphite-web 1.1.8 on the same data.
        let got = run("cactiStyle(test.*.cpu)", 600, 1500);
        check(
            &got,
            &[
                Want {
                    name: "test.db01.cpu  Current:7.00      Max:7.00      Min:1.50     ",
                    path: "test.*.cpu",
                    start: 660,
                    end: 1560,
                    step: 60,
                    cf: "average",
                    xff: 0.0,
                    tags: &[("name", "test.db01.cpu")],
                    values: &[
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
                        None,
                    ],
                },
                Want {
                    name: "test.slow.cpu  Current:120.00    Max:120.00    Min:90.25    ",
                    path: "test.*.cpu",
                    start: 660,
                    end: 1560,
                    step: 300,
                    cf: "average",
                    xff: 0.0,
                    tags: &[("name", "test.slow.cpu")],
                    values: &[Some(90.25), Some(95.0), Some(120.0)],
                },
                Want {
                    name: "test.web01.cpu Current:7.70      Max:9.90      Min:0.30     ",
                    path: "test.*.cpu",
                    start: 660,
                    end: 1560,
                    step: 60,
                    cf: "average",
                    xff: 0.0,
                    tags: &[("name", "test.web01.cpu")],
                    values: &[
                        Some(2.2),
                        Some(9.9),
                        Some(1.1),
                        Some(0.7),
                        Some(4.4),
                        None,
                        Some(3.0),
                        Some(8.8),
                        Some(2.0),
                        Some(1.0),
                        Some(0.3),
                        Some(5.0),
                        Some(6.6),
                        Some(7.7),
                        None,
                    ],
                },
                Want {
                    name: "test.web02.cpu Current:9.25      Max:16.25     Min:7.00     ",
                    path: "test.*.cpu",
                    start: 660,
                    end: 1560,
                    step: 60,
                    cf: "average",
                    xff: 0.0,
                    tags: &[("name", "test.web02.cpu")],
                    values: &[
                        Some(11.1),
                        Some(12.0),
                        None,
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
                        None,
                        Some(9.25),
                    ],
                },
            ],
        );
    }

    #[test]
    fn cacti_style_si_with_units() {
        // Expected values computed by graphite-web 1.1.8 on the same data.
        let got = run("cactiStyle(test.*.cpu,'si','b')", 600, 1500);
        check(
            &got,
            &[
                Want {
                    name: "test.db01.cpu  Current:7.00 b      Max:7.00 b      Min:1.50 b     ",
                    path: "test.*.cpu",
                    start: 660,
                    end: 1560,
                    step: 60,
                    cf: "average",
                    xff: 0.0,
                    tags: &[("name", "test.db01.cpu")],
                    values: &[
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
                        None,
                    ],
                },
                Want {
                    name: "test.slow.cpu  Current:120.00 b    Max:120.00 b    Min:90.25 b    ",
                    path: "test.*.cpu",
                    start: 660,
                    end: 1560,
                    step: 300,
                    cf: "average",
                    xff: 0.0,
                    tags: &[("name", "test.slow.cpu")],
                    values: &[Some(90.25), Some(95.0), Some(120.0)],
                },
                Want {
                    name: "test.web01.cpu Current:7.70 b      Max:9.90 b      Min:0.30 b     ",
                    path: "test.*.cpu",
                    start: 660,
                    end: 1560,
                    step: 60,
                    cf: "average",
                    xff: 0.0,
                    tags: &[("name", "test.web01.cpu")],
                    values: &[
                        Some(2.2),
                        Some(9.9),
                        Some(1.1),
                        Some(0.7),
                        Some(4.4),
                        None,
                        Some(3.0),
                        Some(8.8),
                        Some(2.0),
                        Some(1.0),
                        Some(0.3),
                        Some(5.0),
                        Some(6.6),
                        Some(7.7),
                        None,
                    ],
                },
                Want {
                    name: "test.web02.cpu Current:9.25 b      Max:16.25 b     Min:7.00 b     ",
                    path: "test.*.cpu",
                    start: 660,
                    end: 1560,
                    step: 60,
                    cf: "average",
                    xff: 0.0,
                    tags: &[("name", "test.web02.cpu")],
                    values: &[
                        Some(11.1),
                        Some(12.0),
                        None,
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
                        None,
                        Some(9.25),
                    ],
                },
            ],
        );
    }

    #[test]
    fn cacti_style_binary() {
        // Expected values computed by graphite-web 1.1.8 on the same data.
        let got = run("cactiStyle(test.web0*.cpu,'binary')", 600, 1500);
        check(
            &got,
            &[
                Want {
                    name: "test.web01.cpu Current:7.70    Max:9.90     Min:0.30    ",
                    path: "test.web0*.cpu",
                    start: 660,
                    end: 1560,
                    step: 60,
                    cf: "average",
                    xff: 0.0,
                    tags: &[("name", "test.web01.cpu")],
                    values: &[
                        Some(2.2),
                        Some(9.9),
                        Some(1.1),
                        Some(0.7),
                        Some(4.4),
                        None,
                        Some(3.0),
                        Some(8.8),
                        Some(2.0),
                        Some(1.0),
                        Some(0.3),
                        Some(5.0),
                        Some(6.6),
                        Some(7.7),
                        None,
                    ],
                },
                Want {
                    name: "test.web02.cpu Current:9.25    Max:16.25    Min:7.00    ",
                    path: "test.web0*.cpu",
                    start: 660,
                    end: 1560,
                    step: 60,
                    cf: "average",
                    xff: 0.0,
                    tags: &[("name", "test.web02.cpu")],
                    values: &[
                        Some(11.1),
                        Some(12.0),
                        None,
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
                        None,
                        Some(9.25),
                    ],
                },
            ],
        );
    }

    #[test]
    fn cacti_style_units_only() {
        // Expected values computed by graphite-web 1.1.8 on the same data.
        let got = run("cactiStyle(test.web01.cpu,units='req/s')", 600, 1500);
        check(
            &got,
            &[Want {
                name: "test.web01.cpu Current:7.70 req/s    Max:9.90 req/s    Min:0.30 req/s    ",
                path: "test.web01.cpu",
                start: 660,
                end: 1560,
                step: 60,
                cf: "average",
                xff: 0.0,
                tags: &[("name", "test.web01.cpu")],
                values: &[
                    Some(2.2),
                    Some(9.9),
                    Some(1.1),
                    Some(0.7),
                    Some(4.4),
                    None,
                    Some(3.0),
                    Some(8.8),
                    Some(2.0),
                    Some(1.0),
                    Some(0.3),
                    Some(5.0),
                    Some(6.6),
                    Some(7.7),
                    None,
                ],
            }],
        );
    }

    #[test]
    fn cacti_style_no_data_is_nan() {
        // Expected values computed by graphite-web 1.1.8 on the same data.
        let got = run("cactiStyle(test.db01.cpu)", 780, 1020);
        check(
            &got,
            &[Want {
                name: "test.db01.cpu Current:nan     Max:nan     Min:nan     ",
                path: "test.db01.cpu",
                start: 840,
                end: 1080,
                step: 60,
                cf: "average",
                xff: 0.0,
                tags: &[("name", "test.db01.cpu")],
                values: &[None, None, None, None],
            }],
        );
    }

    #[test]
    fn substr_from_node() {
        // Expected values computed by graphite-web 1.1.8 on the same data.
        let got = run("substr(test.web01.cpu,1)", 600, 1500);
        check(
            &got,
            &[Want {
                name: "web01.cpu",
                path: "test.web01.cpu",
                start: 660,
                end: 1560,
                step: 60,
                cf: "average",
                xff: 0.0,
                tags: &[("name", "test.web01.cpu")],
                values: &[
                    Some(2.2),
                    Some(9.9),
                    Some(1.1),
                    Some(0.7),
                    Some(4.4),
                    None,
                    Some(3.0),
                    Some(8.8),
                    Some(2.0),
                    Some(1.0),
                    Some(0.3),
                    Some(5.0),
                    Some(6.6),
                    Some(7.7),
                    None,
                ],
            }],
        );
    }

    #[test]
    fn substr_inside_a_function_name() {
        // Expected values computed by graphite-web 1.1.8 on the same data.
        let got = run("substr(movingAverage(test.web01.cpu,5),1,2)", 600, 1500);
        check(
            &got,
            &[Want {
                name: "web01",
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
    fn substr_negative_start() {
        // Expected values computed by graphite-web 1.1.8 on the same data.
        let got = run("substr(test.web01.cpu,-2)", 600, 1500);
        check(
            &got,
            &[Want {
                name: "web01.cpu",
                path: "test.web01.cpu",
                start: 660,
                end: 1560,
                step: 60,
                cf: "average",
                xff: 0.0,
                tags: &[("name", "test.web01.cpu")],
                values: &[
                    Some(2.2),
                    Some(9.9),
                    Some(1.1),
                    Some(0.7),
                    Some(4.4),
                    None,
                    Some(3.0),
                    Some(8.8),
                    Some(2.0),
                    Some(1.0),
                    Some(0.3),
                    Some(5.0),
                    Some(6.6),
                    Some(7.7),
                    None,
                ],
            }],
        );
    }

    #[test]
    fn substr_negative_stop() {
        // Expected values computed by graphite-web 1.1.8 on the same data.
        let got = run("substr(test.web01.cpu,0,-1)", 600, 1500);
        check(
            &got,
            &[Want {
                name: "test.web01",
                path: "test.web01.cpu",
                start: 660,
                end: 1560,
                step: 60,
                cf: "average",
                xff: 0.0,
                tags: &[("name", "test.web01.cpu")],
                values: &[
                    Some(2.2),
                    Some(9.9),
                    Some(1.1),
                    Some(0.7),
                    Some(4.4),
                    None,
                    Some(3.0),
                    Some(8.8),
                    Some(2.0),
                    Some(1.0),
                    Some(0.3),
                    Some(5.0),
                    Some(6.6),
                    Some(7.7),
                    None,
                ],
            }],
        );
    }

    #[test]
    fn substr_tagged() {
        // Expected values computed by graphite-web 1.1.8 on the same data.
        let got = run("substr(seriesByTag('name=tagged.disk.used'),1)", 600, 1500);
        check(
            &got,
            &[Want {
                name: "disk.used;dc=dc1;server=web01",
                path: "seriesByTag('name=tagged.disk.used')",
                start: 660,
                end: 1560,
                step: 60,
                cf: "average",
                xff: 0.0,
                tags: &[("dc", "dc1"), ("name", "tagged.disk.used"), ("server", "web01")],
                values: &[
                    Some(51.0),
                    None,
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
                ],
            }],
        );
    }

    #[test]
    fn fallback_series_when_empty() {
        // Expected values computed by graphite-web 1.1.8 on the same data.
        let got = run("fallbackSeries(nonexistent.*,constantLine(1))", 600, 1500);
        check(
            &got,
            &[Want {
                name: "1.0",
                path: "constantLine(1.0)",
                start: 600,
                end: 1500,
                step: 450,
                cf: "average",
                xff: 0.0,
                tags: &[("name", "1.0")],
                values: &[Some(1.0), Some(1.0), Some(1.0)],
            }],
        );
    }

    #[test]
    fn fallback_series_when_present() {
        // Expected values computed by graphite-web 1.1.8 on the same data.
        let got = run("fallbackSeries(test.web01.cpu,constantLine(1))", 600, 1500);
        check(
            &got,
            &[Want {
                name: "test.web01.cpu",
                path: "test.web01.cpu",
                start: 660,
                end: 1560,
                step: 60,
                cf: "average",
                xff: 0.0,
                tags: &[("name", "test.web01.cpu")],
                values: &[
                    Some(2.2),
                    Some(9.9),
                    Some(1.1),
                    Some(0.7),
                    Some(4.4),
                    None,
                    Some(3.0),
                    Some(8.8),
                    Some(2.0),
                    Some(1.0),
                    Some(0.3),
                    Some(5.0),
                    Some(6.6),
                    Some(7.7),
                    None,
                ],
            }],
        );
    }

    #[test]
    fn constant_line_int_is_float_name() {
        // Expected values computed by graphite-web 1.1.8 on the same data.
        let got = run("constantLine(5)", 600, 1500);
        check(
            &got,
            &[Want {
                name: "5.0",
                path: "constantLine(5.0)",
                start: 600,
                end: 1500,
                step: 450,
                cf: "average",
                xff: 0.0,
                tags: &[("name", "5.0")],
                values: &[Some(5.0), Some(5.0), Some(5.0)],
            }],
        );
    }

    #[test]
    fn constant_line_fraction() {
        // Expected values computed by graphite-web 1.1.8 on the same data.
        let got = run("constantLine(-0.25)", 600, 1501);
        check(
            &got,
            &[Want {
                name: "-0.25",
                path: "constantLine(-0.25)",
                start: 600,
                end: 1501,
                step: 450,
                cf: "average",
                xff: 0.0,
                tags: &[("name", "-0.25")],
                values: &[Some(-0.25), Some(-0.25), Some(-0.25)],
            }],
        );
    }

    #[test]
    fn threshold_with_label() {
        // Expected values computed by graphite-web 1.1.8 on the same data.
        let got = run("threshold(5,'limit','red')", 600, 1500);
        check(
            &got,
            &[Want {
                name: "limit",
                path: "constantLine(5.0)",
                start: 600,
                end: 1500,
                step: 450,
                cf: "average",
                xff: 0.0,
                tags: &[("name", "5.0")],
                values: &[Some(5.0), Some(5.0), Some(5.0)],
            }],
        );
    }

    #[test]
    fn threshold_without_label() {
        // Expected values computed by graphite-web 1.1.8 on the same data.
        let got = run("threshold(2.5)", 600, 1500);
        check(
            &got,
            &[Want {
                name: "2.5",
                path: "constantLine(2.5)",
                start: 600,
                end: 1500,
                step: 450,
                cf: "average",
                xff: 0.0,
                tags: &[("name", "2.5")],
                values: &[Some(2.5), Some(2.5), Some(2.5)],
            }],
        );
    }

    #[test]
    fn x_files_factor_sets_and_tags() {
        // Expected values computed by graphite-web 1.1.8 on the same data.
        let got = run("xFilesFactor(test.web01.cpu,0.5)", 600, 1500);
        check(
            &got,
            &[Want {
                name: "test.web01.cpu",
                path: "test.web01.cpu",
                start: 660,
                end: 1560,
                step: 60,
                cf: "average",
                xff: 0.5,
                tags: &[("name", "test.web01.cpu"), ("xFilesFactor", "0.5")],
                values: &[
                    Some(2.2),
                    Some(9.9),
                    Some(1.1),
                    Some(0.7),
                    Some(4.4),
                    None,
                    Some(3.0),
                    Some(8.8),
                    Some(2.0),
                    Some(1.0),
                    Some(0.3),
                    Some(5.0),
                    Some(6.6),
                    Some(7.7),
                    None,
                ],
            }],
        );
    }

    #[test]
    fn set_x_files_factor_int_is_float_tag() {
        // Expected values computed by graphite-web 1.1.8 on the same data.
        let got = run("setXFilesFactor(test.*.cpu,1)", 600, 1500);
        check(
            &got,
            &[
                Want {
                    name: "test.db01.cpu",
                    path: "test.*.cpu",
                    start: 660,
                    end: 1560,
                    step: 60,
                    cf: "average",
                    xff: 1.0,
                    tags: &[("name", "test.db01.cpu"), ("xFilesFactor", "1.0")],
                    values: &[
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
                        None,
                    ],
                },
                Want {
                    name: "test.slow.cpu",
                    path: "test.*.cpu",
                    start: 660,
                    end: 1560,
                    step: 300,
                    cf: "average",
                    xff: 1.0,
                    tags: &[("name", "test.slow.cpu"), ("xFilesFactor", "1.0")],
                    values: &[Some(90.25), Some(95.0), Some(120.0)],
                },
                Want {
                    name: "test.web01.cpu",
                    path: "test.*.cpu",
                    start: 660,
                    end: 1560,
                    step: 60,
                    cf: "average",
                    xff: 1.0,
                    tags: &[("name", "test.web01.cpu"), ("xFilesFactor", "1.0")],
                    values: &[
                        Some(2.2),
                        Some(9.9),
                        Some(1.1),
                        Some(0.7),
                        Some(4.4),
                        None,
                        Some(3.0),
                        Some(8.8),
                        Some(2.0),
                        Some(1.0),
                        Some(0.3),
                        Some(5.0),
                        Some(6.6),
                        Some(7.7),
                        None,
                    ],
                },
                Want {
                    name: "test.web02.cpu",
                    path: "test.*.cpu",
                    start: 660,
                    end: 1560,
                    step: 60,
                    cf: "average",
                    xff: 1.0,
                    tags: &[("name", "test.web02.cpu"), ("xFilesFactor", "1.0")],
                    values: &[
                        Some(11.1),
                        Some(12.0),
                        None,
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
                        None,
                        Some(9.25),
                    ],
                },
            ],
        );
    }

    #[test]
    fn x_files_factor_becomes_the_default_of_later_arguments() {
        // Expected values computed by graphite-web 1.1.8 on the same data.
        let got =
            run("fallbackSeries(xFilesFactor(nonexistent.metric,0.5),constantLine(1))", 600, 1500);
        check(
            &got,
            &[Want {
                name: "1.0",
                path: "constantLine(1.0)",
                start: 600,
                end: 1500,
                step: 450,
                cf: "average",
                xff: 0.5,
                tags: &[("name", "1.0")],
                values: &[Some(1.0), Some(1.0), Some(1.0)],
            }],
        );
    }

    #[test]
    fn x_files_factor_applies_to_later_fetches() {
        // Expected values computed by graphite-web 1.1.8 on the same data.
        let got =
            run("fallbackSeries(xFilesFactor(nonexistent.metric,0.25),test.db01.cpu)", 600, 1500);
        check(
            &got,
            &[Want {
                name: "test.db01.cpu",
                path: "test.db01.cpu",
                start: 660,
                end: 1560,
                step: 60,
                cf: "average",
                xff: 0.25,
                tags: &[("name", "test.db01.cpu")],
                values: &[
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
                    None,
                ],
            }],
        );
    }

    #[test]
    fn x_files_factor_flows_into_refetches() {
        // Expected values computed by graphite-web 1.1.8 on the same data.
        let got = run("movingAverage(xFilesFactor(test.db01.cpu,0.75),4)", 600, 1500);
        check(
            &got,
            &[Want {
                name: "movingAverage(test.db01.cpu,4)",
                path: "movingAverage(test.db01.cpu,4)",
                start: 660,
                end: 1560,
                step: 60,
                cf: "average",
                xff: 0.75,
                tags: &[
                    ("movingAverage", "4"),
                    ("name", "test.db01.cpu"),
                    ("xFilesFactor", "0.75"),
                ],
                values: &[
                    None, None, None, None, None, None, None, None, None, None, None, None, None,
                    None, None,
                ],
            }],
        );
    }
}
