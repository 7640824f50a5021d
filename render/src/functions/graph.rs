//! The Graph family (graphite-reference §4.4): functions that tell the image renderer how to
//! draw series (colour, transparency, line width and dashes, the second y axis, stacking, the
//! area between two series, vertical lines). `threshold`, also in the Graph group, lives with
//! `constantLine` in the Special family.
//!
//! Most of them leave the values alone and only record a hint in [`Series::options`]; the
//! JSON and CSV outputs do not show those hints, but several functions rename their series,
//! and `stacked` replaces the values with running totals, so the data formats see them too.
//! The option keys are the contract with the image renderer:
//!
//! | key | set by | value |
//! |---|---|---|
//! | `color` | `color`, `verticalLine`, `threshold` | the colour as given (name or hex) |
//! | `alpha` | `alpha` | a float, as Python prints it |
//! | `lineWidth` | `lineWidth` | a float, as Python prints it |
//! | `dashed` | `dashed` | the dash length, as Python prints it |
//! | `stacked` | `stacked`, `areaBetween` | `True`, or the stack's name for a named stack |
//! | `secondYAxis` | `secondYAxis` | `True` |
//! | `drawAsInfinite` | `drawAsInfinite`, `verticalLine` | `True` |
//! | `invisible` | `areaBetween` (the lower series) | `True` |
//! | `areaBetween` | `areaBetween` (both series) | `True` |

use crate::error::{Error, Result};
use crate::expr::Literal;
use crate::function::{Args, Default, FunctionDef, Param, ParamType, SERIES_LIST};
use crate::pyfmt;
use crate::series::Series;

/// The name graphite-web gives the stack of a `stacked()` call without one; only that stack
/// renames its series and tags them.
const DEFAULT_STACK: &str = "__DEFAULT__";

/// The option value of a flag.
const TRUE: &str = "True";

const fn def(
    name: &'static str,
    description: &'static str,
    params: &'static [Param],
    call: crate::function::FunctionImpl,
) -> FunctionDef {
    FunctionDef { name, group: "Graph", description, params, aggregator: false, call }
}

/// The functions this family defines.
pub(crate) const FUNCTIONS: &[FunctionDef] = &[
    def(
        "alpha",
        "Sets the transparency the series are drawn with, from 0 (invisible) to 1 (opaque).",
        &[SERIES_LIST, Param::new("alpha", ParamType::Float).required()],
        alpha,
    ),
    def(
        "areaBetween",
        "Fills the area between exactly two series (the argument must yield two: a lower and \
         an upper bound, in either order), for example a band between a minimum and a \
         maximum latency. The fill shows with areaMode=stacked; alpha() makes it see-through. \
         Both series are renamed areaBetween(<path of the second>).",
        &[SERIES_LIST],
        area_between,
    ),
    def(
        "color",
        "Draws the series in the given colour: a name such as 'green' or 'gray', or a hex \
         value such as 'ff0000' (with an optional alpha byte, '6464ffaa').",
        &[SERIES_LIST, Param::new("theColor", ParamType::String).required()],
        color,
    ),
    def(
        "dashed",
        "Draws the series with a dashed line whose segments are dashLength long (5 by \
         default). Renames each series dashed(<name>, <length>).",
        &[SERIES_LIST, Param::new("dashLength", ParamType::Integer).default(Default::Int(5))],
        dashed,
    ),
    def(
        "drawAsInfinite",
        "Draws each point as a vertical line across the whole graph when it is above zero, \
         at the bottom when it is zero, and nothing when it is null or negative: useful for \
         on/off metrics such as exit codes. Renames each series drawAsInfinite(<name>).",
        &[SERIES_LIST],
        draw_as_infinite,
    ),
    def(
        "lineWidth",
        "Draws the series with lines of the given width, instead of the default of 1 or the \
         request's lineWidth; for example to make one series stand out.",
        &[SERIES_LIST, Param::new("width", ParamType::Float).required()],
        line_width,
    ),
    def(
        "secondYAxis",
        "Draws the series against a second y axis on the right of the graph. Renames each \
         series secondYAxis(<name>).",
        &[SERIES_LIST],
        second_y_axis,
    ),
    def(
        "stacked",
        "Stacks the series on top of each other without areaMode=stacked (which stacks every \
         series of the graph), so a graph can mix stacked and unstacked series: each value is \
         replaced by the running total, point by point, of the series stacked so far in the \
         request. An optional stack name keeps separate stacks (for example 'tx' and 'rx'); \
         only the unnamed stack renames its series stacked(<name>).",
        &[
            SERIES_LIST.py_name("seriesLists"),
            Param::new("stack", ParamType::String)
                .fallback(Default::Str(DEFAULT_STACK))
                .py_name("stackName"),
        ],
        stacked,
    ),
    def(
        "verticalLine",
        "A vertical line at the time ts (an absolute or relative time as from and until \
         take, for example '-5min' or '16:00_20110501'), with an optional label (shown in \
         the legend) and colour. The time must lie inside the requested range.",
        &[
            Param::new("ts", ParamType::Date).required(),
            Param::new("label", ParamType::String),
            Param::new("color", ParamType::String),
        ],
        vertical_line,
    ),
];

/// Sets `key` to `value` in the options of every series.
fn set_option(list: &mut [Series], key: &str, value: &str) {
    for s in list {
        s.options.insert(key.to_string(), value.to_string());
    }
}

/// graphite-web's `alpha`: the value as a float (a string that reads as one is accepted, as
/// graphite-web's float validation converts it).
fn alpha(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let mut list = args.series(0)?;
    let alpha = args.float(1)?;
    set_option(&mut list, "alpha", &pyfmt::float_repr(alpha));
    Ok(list)
}

/// graphite-web's `color`: the colour text as given (a number is kept as its text).
fn color(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let mut list = args.series(0)?;
    let color = args.string(1)?;
    set_option(&mut list, "color", &color);
    Ok(list)
}

/// graphite-web's `lineWidth`.
fn line_width(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let mut list = args.series(0)?;
    let width = args.float(1)?;
    set_option(&mut list, "lineWidth", &pyfmt::float_repr(width));
    Ok(list)
}

/// A dash length as graphite-web ends up with it: an integer (its `integer` validation turns
/// `True` and digit strings into one), or a float kept as given, because a failed validation
/// is only logged (`dashed(x, 2.5)` is graphite-web's own example).
enum DashLength {
    Int(i64),
    Float(f64),
}

impl DashLength {
    fn read(args: &Args<'_, '_>, i: usize) -> Result<DashLength> {
        let bad = |got: String| {
            Error::arg(format!("dashed(): parameter 'dashLength' must be a number, got {got}"))
        };
        match args.literal(i) {
            Some(Literal::Int(n)) => Ok(DashLength::Int(n)),
            Some(Literal::Bool(b)) => Ok(DashLength::Int(i64::from(b))),
            Some(Literal::Float(f)) => Ok(DashLength::Float(f)),
            Some(Literal::Str(s)) => {
                s.trim().parse().map(DashLength::Int).map_err(|_| bad(format!("'{s}'")))
            }
            Some(Literal::None) => Err(bad("None".into())),
            None => Err(bad("a series list".into())),
        }
    }

    /// Python's `str()`, for the tag and the option.
    fn text(&self) -> String {
        match self {
            DashLength::Int(n) => n.to_string(),
            DashLength::Float(f) => pyfmt::float_repr(*f),
        }
    }

    /// Python's `"%g"`, for the name.
    fn g(&self) -> String {
        match self {
            DashLength::Int(n) => pyfmt::format_g(*n as f64),
            DashLength::Float(f) => pyfmt::format_g(*f),
        }
    }
}

/// graphite-web's `dashed`: renames to `dashed(<name>, %g)` (the path expression is kept), tags
/// `dashed` with the length.
fn dashed(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let mut list = args.series(0)?;
    let length = DashLength::read(args, 1)?;
    let (text, g) = (length.text(), length.g());
    for s in &mut list {
        s.tags.insert("dashed".into(), text.clone());
        s.name = format!("dashed({}, {g})", s.name);
        s.options.insert("dashed".into(), text.clone());
    }
    Ok(list)
}

/// `drawAsInfinite` and `secondYAxis`: set the flag, tag it with `1` and rename to
/// `<function>(<name>)`, leaving the path expression alone as graphite-web does.
fn flag_and_rename(args: &Args<'_, '_>, flag: &str) -> Result<Vec<Series>> {
    let mut list = args.series(0)?;
    for s in &mut list {
        s.options.insert(flag.to_string(), TRUE.into());
        s.tags.insert(flag.to_string(), "1".into());
        s.name = format!("{flag}({})", s.name);
    }
    Ok(list)
}

/// graphite-web's `drawAsInfinite`.
fn draw_as_infinite(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    flag_and_rename(args, "drawAsInfinite")
}

/// graphite-web's `secondYAxis`.
fn second_y_axis(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    flag_and_rename(args, "secondYAxis")
}

/// graphite-web's `stacked`: each value becomes the running total, index by index, of the
/// values of the series stacked so far under the same stack name in this request (null
/// values stay null and add nothing). The result reads raw values (one value per point), as
/// graphite-web's copy does. The unnamed stack renames to `stacked(<name>)` and tags
/// `stacked=__DEFAULT__`; a named stack keeps the names. The path expression becomes the
/// name.
///
/// Two small differences: the options set before `stacked()` (a `color()`, ...) are kept,
/// where graphite-web's copy drops them; and the totals are shared by the whole request,
/// re-ranged evaluations (`timeShift(stacked(x), ...)`) included, where graphite-web's
/// shallow copy of the request context shares them only once a stack exists.
fn stacked(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let list = args.series(0)?;
    // A `None` given explicitly is a stack of its own in graphite-web (a dictionary key).
    let stack = args.opt_string(1)?;
    let default = stack.as_deref() == Some(DEFAULT_STACK);
    let mut totals = args.ctx.take_stack(stack.as_deref());
    let mut out = Vec::with_capacity(list.len());
    for series in list {
        let mut values = Vec::with_capacity(series.values.len());
        for (i, v) in series.values.iter().enumerate() {
            if totals.len() <= i {
                totals.push(0.0);
            }
            match (v, totals.get_mut(i)) {
                (Some(x), Some(total)) => {
                    *total += x;
                    values.push(Some(*total));
                }
                _ => values.push(None),
            }
        }
        let name = if default { format!("stacked({})", series.name) } else { series.name.clone() };
        let mut s = series.renamed(name);
        s.values = values;
        s.values_per_point = 1;
        if default {
            s.tags.insert("stacked".into(), DEFAULT_STACK.into());
        }
        let flag = match stack.as_deref() {
            Some(name) if !default => name,
            _ => TRUE,
        };
        s.options.insert("stacked".into(), flag.into());
        out.push(s);
    }
    args.ctx.put_stack(stack.as_deref(), totals);
    Ok(out)
}

/// graphite-web's `areaBetween`: exactly two series; the first (lower) becomes stacked and
/// invisible, the second (upper) stacked, both get the upper's tags plus `areaBetween=1` and
/// the name `areaBetween(<upper's path expression>)`; path expressions are kept.
fn area_between(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let mut list = args.series(0)?;
    let [lower, upper] = list.as_mut_slice() else {
        return Err(Error::arg("areaBetween series argument must reference *exactly* 2 series"));
    };
    lower.options.insert("stacked".into(), TRUE.into());
    lower.options.insert("invisible".into(), TRUE.into());
    upper.options.insert("stacked".into(), TRUE.into());
    upper.tags.insert("areaBetween".into(), "1".into());
    lower.tags.clone_from(&upper.tags);
    let name = format!("areaBetween({})", upper.path_expression);
    lower.name.clone_from(&name);
    upper.name = name;
    set_option(&mut list, "areaBetween", TRUE);
    Ok(list)
}

/// graphite-web's `verticalLine`: a series of two 1.0 values at `ts` (start = end = `ts`,
/// step 1, so one point), flagged drawAsInfinite, named after the label. Without a label
/// graphite-web's name is Python's `None`: JSON `null`, an empty CSV field, `None` in its
/// tags and path expression; here the name is empty (as CSV shows it) and the tags and the
/// path expression say `None`. `ts` is read relative to the request's `now` (graphite-web
/// reads it relative to the clock, which is the same unless the request sets `now`).
fn vertical_line(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let spec = args.string(0)?;
    let ctx = args.ctx;
    let ts = crate::time::parse_at_time(&spec, &ctx.tz, ctx.now)?;
    if ts < ctx.from {
        return Err(Error::arg(format!(
            "verticalLine(): timestamp {ts} exists before start of range"
        )));
    }
    if ts > ctx.until {
        return Err(Error::arg(format!(
            "verticalLine(): timestamp {ts} exists after end of range"
        )));
    }
    let values = vec![Some(1.0), Some(1.0)];
    let mut s = match args.opt_string(1)? {
        Some(label) => Series::new(label, ts, ts, 1, values),
        None => {
            let mut s = Series::new("None", ts, ts, 1, values);
            s.name = String::new();
            s
        }
    };
    s.x_files_factor = ctx.effective_x_files_factor();
    s.options.insert("drawAsInfinite".into(), TRUE.into());
    if let Some(color) = args.opt_string(2)?.filter(|c| !c.is_empty()) {
        s.options.insert("color".into(), color);
    }
    Ok(vec![s])
}

#[cfg(test)]
mod tests {
    //! Expected values come from graphite-web 1.1.8's own functions run on the same series
    //! (the calculate family's data set, served through graphite-web's evaluator); options are
    //! graphite-web's `series.options` (and `series.color`) written with the keys of this
    //! module's table.

    use super::*;
    use crate::eval::{Context, Limits, UsageCell};
    use crate::functions::calculate::tests::{Want, check, data, run, run_err};
    use crate::testutil::T0;

    /// Evaluates several targets in one request (one context), as `/render` does.
    fn run_all(targets: &[&str], from: i64, until: i64) -> Vec<Series> {
        let src = data();
        let limits = Limits::default();
        let usage = UsageCell::default();
        let ctx = Context::new(&src, &limits, &usage, T0 + from, T0 + until, T0 + until);
        let mut out = Vec::new();
        for target in targets {
            let expr = crate::parse::parse(target).unwrap();
            out.extend(ctx.eval_series(&expr).unwrap());
        }
        out
    }

    /// Compares every series' options.
    fn check_options(got: &[Series], want: &[&[(&str, &str)]]) {
        assert_eq!(got.len(), want.len(), "number of series");
        for (g, w) in got.iter().zip(want) {
            let options: Vec<(&str, &str)> =
                g.options.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            assert_eq!(options, *w, "options of {}", g.name);
        }
    }

    #[test]
    fn alpha_sets_the_option_only() {
        // Expected values computed by graphite-web 1.1.8 on the same data.
        let got = run("alpha(test.web0*.cpu,0.5)", 600, 900);
        check(
            &got,
            &[
                Want {
                    name: "test.web01.cpu",
                    path: "test.web0*.cpu",
                    start: 660,
                    end: 960,
                    step: 60,
                    cf: "average",
                    xff: 0.0,
                    tags: &[("name", "test.web01.cpu")],
                    values: &[Some(2.2), Some(9.9), Some(1.1), Some(0.7), Some(4.4)],
                },
                Want {
                    name: "test.web02.cpu",
                    path: "test.web0*.cpu",
                    start: 660,
                    end: 960,
                    step: 60,
                    cf: "average",
                    xff: 0.0,
                    tags: &[("name", "test.web02.cpu")],
                    values: &[Some(11.1), Some(12.0), None, Some(15.5), Some(16.25)],
                },
            ],
        );
        check_options(&got, &[&[("alpha", "0.5")], &[("alpha", "0.5")]]);
    }

    #[test]
    fn alpha_int_is_a_float() {
        // Expected values computed by graphite-web 1.1.8 on the same data.
        let got = run("alpha(test.db01.cpu,1)", 600, 900);
        check(
            &got,
            &[Want {
                name: "test.db01.cpu",
                path: "test.db01.cpu",
                start: 660,
                end: 960,
                step: 60,
                cf: "average",
                xff: 0.0,
                tags: &[("name", "test.db01.cpu")],
                values: &[Some(1.5), None, Some(2.5), None, None],
            }],
        );
        check_options(&got, &[&[("alpha", "1.0")]]);
    }

    #[test]
    fn color_keeps_the_text() {
        // Expected values computed by graphite-web 1.1.8 on the same data.
        let got = run("color(test.web01.cpu,'6464ffaa')", 600, 900);
        check(
            &got,
            &[Want {
                name: "test.web01.cpu",
                path: "test.web01.cpu",
                start: 660,
                end: 960,
                step: 60,
                cf: "average",
                xff: 0.0,
                tags: &[("name", "test.web01.cpu")],
                values: &[Some(2.2), Some(9.9), Some(1.1), Some(0.7), Some(4.4)],
            }],
        );
        check_options(&got, &[&[("color", "6464ffaa")]]);
    }

    #[test]
    fn color_by_name_on_a_tagged_series() {
        // Expected values computed by graphite-web 1.1.8 on the same data.
        let got = run("color(seriesByTag('name=tagged.disk.used'),'green')", 600, 900);
        check(
            &got,
            &[Want {
                name: "tagged.disk.used;dc=dc1;server=web01",
                path: "seriesByTag('name=tagged.disk.used')",
                start: 660,
                end: 960,
                step: 60,
                cf: "average",
                xff: 0.0,
                tags: &[("dc", "dc1"), ("name", "tagged.disk.used"), ("server", "web01")],
                values: &[Some(51.0), None, Some(49.5), Some(50.5), Some(52.0)],
            }],
        );
        check_options(&got, &[&[("color", "green")]]);
    }

    #[test]
    fn line_width_float() {
        // Expected values computed by graphite-web 1.1.8 on the same data.
        let got = run("lineWidth(test.*.cpu,2.5)", 600, 900);
        check(
            &got,
            &[
                Want {
                    name: "test.db01.cpu",
                    path: "test.*.cpu",
                    start: 660,
                    end: 960,
                    step: 60,
                    cf: "average",
                    xff: 0.0,
                    tags: &[("name", "test.db01.cpu")],
                    values: &[Some(1.5), None, Some(2.5), None, None],
                },
                Want {
                    name: "test.slow.cpu",
                    path: "test.*.cpu",
                    start: 660,
                    end: 960,
                    step: 300,
                    cf: "average",
                    xff: 0.0,
                    tags: &[("name", "test.slow.cpu")],
                    values: &[Some(90.25)],
                },
                Want {
                    name: "test.web01.cpu",
                    path: "test.*.cpu",
                    start: 660,
                    end: 960,
                    step: 60,
                    cf: "average",
                    xff: 0.0,
                    tags: &[("name", "test.web01.cpu")],
                    values: &[Some(2.2), Some(9.9), Some(1.1), Some(0.7), Some(4.4)],
                },
                Want {
                    name: "test.web02.cpu",
                    path: "test.*.cpu",
                    start: 660,
                    end: 960,
                    step: 60,
                    cf: "average",
                    xff: 0.0,
                    tags: &[("name", "test.web02.cpu")],
                    values: &[Some(11.1), Some(12.0), None, Some(15.5), Some(16.25)],
                },
            ],
        );
        check_options(
            &got,
            &[
                &[("lineWidth", "2.5")],
                &[("lineWidth", "2.5")],
                &[("lineWidth", "2.5")],
                &[("lineWidth", "2.5")],
            ],
        );
    }

    #[test]
    fn dashed_default_length() {
        // Expected values computed by graphite-web 1.1.8 on the same data.
        let got = run("dashed(test.web01.cpu)", 600, 900);
        check(
            &got,
            &[Want {
                name: "dashed(test.web01.cpu, 5)",
                path: "test.web01.cpu",
                start: 660,
                end: 960,
                step: 60,
                cf: "average",
                xff: 0.0,
                tags: &[("dashed", "5"), ("name", "test.web01.cpu")],
                values: &[Some(2.2), Some(9.9), Some(1.1), Some(0.7), Some(4.4)],
            }],
        );
        check_options(&got, &[&[("dashed", "5")]]);
    }

    #[test]
    fn dashed_fraction_kept_as_given() {
        // Expected values computed by graphite-web 1.1.8 on the same data.
        let got = run("dashed(test.web0*.cpu,2.5)", 600, 900);
        check(
            &got,
            &[
                Want {
                    name: "dashed(test.web01.cpu, 2.5)",
                    path: "test.web0*.cpu",
                    start: 660,
                    end: 960,
                    step: 60,
                    cf: "average",
                    xff: 0.0,
                    tags: &[("dashed", "2.5"), ("name", "test.web01.cpu")],
                    values: &[Some(2.2), Some(9.9), Some(1.1), Some(0.7), Some(4.4)],
                },
                Want {
                    name: "dashed(test.web02.cpu, 2.5)",
                    path: "test.web0*.cpu",
                    start: 660,
                    end: 960,
                    step: 60,
                    cf: "average",
                    xff: 0.0,
                    tags: &[("dashed", "2.5"), ("name", "test.web02.cpu")],
                    values: &[Some(11.1), Some(12.0), None, Some(15.5), Some(16.25)],
                },
            ],
        );
        check_options(&got, &[&[("dashed", "2.5")], &[("dashed", "2.5")]]);
    }

    #[test]
    fn dashed_integral_float() {
        // Expected values computed by graphite-web 1.1.8 on the same data.
        let got = run("dashed(test.web01.cpu,5.0)", 600, 900);
        check(
            &got,
            &[Want {
                name: "dashed(test.web01.cpu, 5)",
                path: "test.web01.cpu",
                start: 660,
                end: 960,
                step: 60,
                cf: "average",
                xff: 0.0,
                tags: &[("dashed", "5.0"), ("name", "test.web01.cpu")],
                values: &[Some(2.2), Some(9.9), Some(1.1), Some(0.7), Some(4.4)],
            }],
        );
        check_options(&got, &[&[("dashed", "5.0")]]);
    }

    #[test]
    fn dashed_keeps_the_path_expression() {
        // Expected values computed by graphite-web 1.1.8 on the same data.
        let got = run("sumSeries(dashed(test.web0*.cpu,3))", 600, 900);
        check(
            &got,
            &[Want {
                name: "sumSeries(test.web0*.cpu)",
                path: "sumSeries(test.web0*.cpu)",
                start: 660,
                end: 960,
                step: 60,
                cf: "average",
                xff: 0.0,
                tags: &[
                    ("aggregatedBy", "sum"),
                    ("dashed", "3"),
                    ("name", "sumSeries(test.web0*.cpu)"),
                ],
                values: &[Some(13.3), Some(21.9), Some(1.1), Some(16.2), Some(20.65)],
            }],
        );
        check_options(&got, &[&[]]);
    }

    #[test]
    fn draw_as_infinite_renames_and_tags() {
        // Expected values computed by graphite-web 1.1.8 on the same data.
        let got = run("drawAsInfinite(test.db01.cpu)", 600, 900);
        check(
            &got,
            &[Want {
                name: "drawAsInfinite(test.db01.cpu)",
                path: "test.db01.cpu",
                start: 660,
                end: 960,
                step: 60,
                cf: "average",
                xff: 0.0,
                tags: &[("drawAsInfinite", "1"), ("name", "test.db01.cpu")],
                values: &[Some(1.5), None, Some(2.5), None, None],
            }],
        );
        check_options(&got, &[&[("drawAsInfinite", "True")]]);
    }

    #[test]
    fn draw_as_infinite_keeps_the_path_expression() {
        // Expected values computed by graphite-web 1.1.8 on the same data.
        let got = run("sumSeries(drawAsInfinite(test.web0*.cpu))", 600, 900);
        check(
            &got,
            &[Want {
                name: "sumSeries(test.web0*.cpu)",
                path: "sumSeries(test.web0*.cpu)",
                start: 660,
                end: 960,
                step: 60,
                cf: "average",
                xff: 0.0,
                tags: &[
                    ("aggregatedBy", "sum"),
                    ("drawAsInfinite", "1"),
                    ("name", "sumSeries(test.web0*.cpu)"),
                ],
                values: &[Some(13.3), Some(21.9), Some(1.1), Some(16.2), Some(20.65)],
            }],
        );
        check_options(&got, &[&[]]);
    }

    #[test]
    fn second_y_axis_renames_and_tags() {
        // Expected values computed by graphite-web 1.1.8 on the same data.
        let got = run("secondYAxis(test.web0*.cpu)", 600, 900);
        check(
            &got,
            &[
                Want {
                    name: "secondYAxis(test.web01.cpu)",
                    path: "test.web0*.cpu",
                    start: 660,
                    end: 960,
                    step: 60,
                    cf: "average",
                    xff: 0.0,
                    tags: &[("name", "test.web01.cpu"), ("secondYAxis", "1")],
                    values: &[Some(2.2), Some(9.9), Some(1.1), Some(0.7), Some(4.4)],
                },
                Want {
                    name: "secondYAxis(test.web02.cpu)",
                    path: "test.web0*.cpu",
                    start: 660,
                    end: 960,
                    step: 60,
                    cf: "average",
                    xff: 0.0,
                    tags: &[("name", "test.web02.cpu"), ("secondYAxis", "1")],
                    values: &[Some(11.1), Some(12.0), None, Some(15.5), Some(16.25)],
                },
            ],
        );
        check_options(&got, &[&[("secondYAxis", "True")], &[("secondYAxis", "True")]]);
    }

    #[test]
    fn second_y_axis_tagged() {
        // Expected values computed by graphite-web 1.1.8 on the same data.
        let got = run("secondYAxis(seriesByTag('name=tagged.disk.used'))", 600, 900);
        check(
            &got,
            &[Want {
                name: "secondYAxis(tagged.disk.used;dc=dc1;server=web01)",
                path: "seriesByTag('name=tagged.disk.used')",
                start: 660,
                end: 960,
                step: 60,
                cf: "average",
                xff: 0.0,
                tags: &[
                    ("dc", "dc1"),
                    ("name", "tagged.disk.used"),
                    ("secondYAxis", "1"),
                    ("server", "web01"),
                ],
                values: &[Some(51.0), None, Some(49.5), Some(50.5), Some(52.0)],
            }],
        );
        check_options(&got, &[&[("secondYAxis", "True")]]);
    }

    #[test]
    fn stacked_default_stack() {
        // Expected values computed by graphite-web 1.1.8 on the same data.
        let got = run("stacked(test.*.cpu)", 600, 1200);
        check(
            &got,
            &[
                Want {
                    name: "stacked(test.db01.cpu)",
                    path: "stacked(test.db01.cpu)",
                    start: 660,
                    end: 1260,
                    step: 60,
                    cf: "average",
                    xff: 0.0,
                    tags: &[("name", "test.db01.cpu"), ("stacked", "__DEFAULT__")],
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
                    ],
                },
                Want {
                    name: "stacked(test.slow.cpu)",
                    path: "stacked(test.slow.cpu)",
                    start: 660,
                    end: 1260,
                    step: 300,
                    cf: "average",
                    xff: 0.0,
                    tags: &[("name", "test.slow.cpu"), ("stacked", "__DEFAULT__")],
                    values: &[Some(91.75), Some(95.0)],
                },
                Want {
                    name: "stacked(test.web01.cpu)",
                    path: "stacked(test.web01.cpu)",
                    start: 660,
                    end: 1260,
                    step: 60,
                    cf: "average",
                    xff: 0.0,
                    tags: &[("name", "test.web01.cpu"), ("stacked", "__DEFAULT__")],
                    values: &[
                        Some(93.95),
                        Some(104.9),
                        Some(3.6),
                        Some(0.7),
                        Some(4.4),
                        None,
                        Some(3.0),
                        Some(12.8),
                        Some(2.0),
                        Some(7.0),
                    ],
                },
                Want {
                    name: "stacked(test.web02.cpu)",
                    path: "stacked(test.web02.cpu)",
                    start: 660,
                    end: 1260,
                    step: 60,
                    cf: "average",
                    xff: 0.0,
                    tags: &[("name", "test.web02.cpu"), ("stacked", "__DEFAULT__")],
                    values: &[
                        Some(105.05),
                        Some(116.9),
                        None,
                        Some(16.2),
                        Some(20.65),
                        Some(10.0),
                        Some(12.5),
                        Some(20.8),
                        Some(9.0),
                        Some(18.0),
                    ],
                },
            ],
        );
        check_options(
            &got,
            &[
                &[("stacked", "True")],
                &[("stacked", "True")],
                &[("stacked", "True")],
                &[("stacked", "True")],
            ],
        );
    }

    #[test]
    fn stacked_named_stack_keeps_names() {
        // Expected values computed by graphite-web 1.1.8 on the same data.
        let got = run("stacked(test.web0*.cpu,'tx')", 600, 1200);
        check(
            &got,
            &[
                Want {
                    name: "test.web01.cpu",
                    path: "test.web01.cpu",
                    start: 660,
                    end: 1260,
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
                    ],
                },
                Want {
                    name: "test.web02.cpu",
                    path: "test.web02.cpu",
                    start: 660,
                    end: 1260,
                    step: 60,
                    cf: "average",
                    xff: 0.0,
                    tags: &[("name", "test.web02.cpu")],
                    values: &[
                        Some(13.3),
                        Some(21.9),
                        None,
                        Some(16.2),
                        Some(20.65),
                        Some(10.0),
                        Some(12.5),
                        Some(16.8),
                        Some(9.0),
                        Some(12.0),
                    ],
                },
            ],
        );
        check_options(&got, &[&[("stacked", "tx")], &[("stacked", "tx")]]);
    }

    #[test]
    fn stacked_different_steps_by_index() {
        // Expected values computed by graphite-web 1.1.8 on the same data.
        let got = run("stacked(group(test.slow.cpu,test.web01.cpu))", 0, 1800);
        check(
            &got,
            &[
                Want {
                    name: "stacked(test.slow.cpu)",
                    path: "stacked(test.slow.cpu)",
                    start: 60,
                    end: 1860,
                    step: 300,
                    cf: "average",
                    xff: 0.0,
                    tags: &[("name", "test.slow.cpu"), ("stacked", "__DEFAULT__")],
                    values: &[Some(110.5), None, Some(90.25), Some(95.0), Some(120.0), Some(130.5)],
                },
                Want {
                    name: "stacked(test.web01.cpu)",
                    path: "stacked(test.web01.cpu)",
                    start: 60,
                    end: 1860,
                    step: 60,
                    cf: "average",
                    xff: 0.0,
                    tags: &[("name", "test.web01.cpu"), ("stacked", "__DEFAULT__")],
                    values: &[
                        Some(113.0),
                        None,
                        Some(94.5),
                        Some(95.1),
                        Some(127.0),
                        Some(133.8),
                        None,
                        None,
                        Some(5.5),
                        Some(6.0),
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
                        Some(2.1),
                        Some(3.9),
                        Some(4.8),
                        Some(0.2),
                        None,
                    ],
                },
            ],
        );
        check_options(&got, &[&[("stacked", "True")], &[("stacked", "True")]]);
    }

    #[test]
    fn stacked_after_consolidation_reads_raw() {
        // Expected values computed by graphite-web 1.1.8 on the same data.
        let got = run("stacked(test.web0*.cpu)|aliasByNode(1)", 600, 900);
        check(
            &got,
            &[
                Want {
                    name: "web01",
                    path: "stacked(test.web01.cpu)",
                    start: 660,
                    end: 960,
                    step: 60,
                    cf: "average",
                    xff: 0.0,
                    tags: &[("name", "test.web01.cpu"), ("stacked", "__DEFAULT__")],
                    values: &[Some(2.2), Some(9.9), Some(1.1), Some(0.7), Some(4.4)],
                },
                Want {
                    name: "web02",
                    path: "stacked(test.web02.cpu)",
                    start: 660,
                    end: 960,
                    step: 60,
                    cf: "average",
                    xff: 0.0,
                    tags: &[("name", "test.web02.cpu"), ("stacked", "__DEFAULT__")],
                    values: &[Some(13.3), Some(21.9), None, Some(16.2), Some(20.65)],
                },
            ],
        );
        check_options(&got, &[&[("stacked", "True")], &[("stacked", "True")]]);
    }

    #[test]
    fn stacked_explicit_default_name() {
        // Expected values computed by graphite-web 1.1.8 on the same data.
        let got = run("stacked(test.web01.cpu,'__DEFAULT__')", 600, 900);
        check(
            &got,
            &[Want {
                name: "stacked(test.web01.cpu)",
                path: "stacked(test.web01.cpu)",
                start: 660,
                end: 960,
                step: 60,
                cf: "average",
                xff: 0.0,
                tags: &[("name", "test.web01.cpu"), ("stacked", "__DEFAULT__")],
                values: &[Some(2.2), Some(9.9), Some(1.1), Some(0.7), Some(4.4)],
            }],
        );
        check_options(&got, &[&[("stacked", "True")]]);
    }

    #[test]
    fn area_between_two_series() {
        // Expected values computed by graphite-web 1.1.8 on the same data.
        let got = run("areaBetween(test.web0*.cpu)", 600, 900);
        check(
            &got,
            &[
                Want {
                    name: "areaBetween(test.web0*.cpu)",
                    path: "test.web0*.cpu",
                    start: 660,
                    end: 960,
                    step: 60,
                    cf: "average",
                    xff: 0.0,
                    tags: &[("areaBetween", "1"), ("name", "test.web02.cpu")],
                    values: &[Some(2.2), Some(9.9), Some(1.1), Some(0.7), Some(4.4)],
                },
                Want {
                    name: "areaBetween(test.web0*.cpu)",
                    path: "test.web0*.cpu",
                    start: 660,
                    end: 960,
                    step: 60,
                    cf: "average",
                    xff: 0.0,
                    tags: &[("areaBetween", "1"), ("name", "test.web02.cpu")],
                    values: &[Some(11.1), Some(12.0), None, Some(15.5), Some(16.25)],
                },
            ],
        );
        check_options(
            &got,
            &[
                &[("areaBetween", "True"), ("invisible", "True"), ("stacked", "True")],
                &[("areaBetween", "True"), ("stacked", "True")],
            ],
        );
    }

    #[test]
    fn area_between_group() {
        // Expected values computed by graphite-web 1.1.8 on the same data.
        let got = run(
            "areaBetween(group(minSeries(test.web0*.cpu),maxSeries(test.web0*.cpu)))",
            600,
            900,
        );
        check(
            &got,
            &[
                Want {
                    name: "areaBetween(maxSeries(test.web0*.cpu))",
                    path: "minSeries(test.web0*.cpu)",
                    start: 660,
                    end: 960,
                    step: 60,
                    cf: "average",
                    xff: 0.0,
                    tags: &[
                        ("aggregatedBy", "max"),
                        ("areaBetween", "1"),
                        ("name", "maxSeries(test.web0*.cpu)"),
                    ],
                    values: &[Some(2.2), Some(9.9), Some(1.1), Some(0.7), Some(4.4)],
                },
                Want {
                    name: "areaBetween(maxSeries(test.web0*.cpu))",
                    path: "maxSeries(test.web0*.cpu)",
                    start: 660,
                    end: 960,
                    step: 60,
                    cf: "average",
                    xff: 0.0,
                    tags: &[
                        ("aggregatedBy", "max"),
                        ("areaBetween", "1"),
                        ("name", "maxSeries(test.web0*.cpu)"),
                    ],
                    values: &[Some(11.1), Some(12.0), Some(1.1), Some(15.5), Some(16.25)],
                },
            ],
        );
        check_options(
            &got,
            &[
                &[("areaBetween", "True"), ("invisible", "True"), ("stacked", "True")],
                &[("areaBetween", "True"), ("stacked", "True")],
            ],
        );
    }

    #[test]
    fn area_between_alpha() {
        // Expected values computed by graphite-web 1.1.8 on the same data.
        let got = run("alpha(areaBetween(test.web0*.cpu),0.3)", 600, 900);
        check(
            &got,
            &[
                Want {
                    name: "areaBetween(test.web0*.cpu)",
                    path: "test.web0*.cpu",
                    start: 660,
                    end: 960,
                    step: 60,
                    cf: "average",
                    xff: 0.0,
                    tags: &[("areaBetween", "1"), ("name", "test.web02.cpu")],
                    values: &[Some(2.2), Some(9.9), Some(1.1), Some(0.7), Some(4.4)],
                },
                Want {
                    name: "areaBetween(test.web0*.cpu)",
                    path: "test.web0*.cpu",
                    start: 660,
                    end: 960,
                    step: 60,
                    cf: "average",
                    xff: 0.0,
                    tags: &[("areaBetween", "1"), ("name", "test.web02.cpu")],
                    values: &[Some(11.1), Some(12.0), None, Some(15.5), Some(16.25)],
                },
            ],
        );
        check_options(
            &got,
            &[
                &[
                    ("alpha", "0.3"),
                    ("areaBetween", "True"),
                    ("invisible", "True"),
                    ("stacked", "True"),
                ],
                &[("alpha", "0.3"), ("areaBetween", "True"), ("stacked", "True")],
            ],
        );
    }

    #[test]
    fn vertical_line_with_label_and_color() {
        // Expected values computed by graphite-web 1.1.8 on the same data.
        let got = run("verticalLine('1700000640','deploy','blue')", 0, 900);
        check(
            &got,
            &[Want {
                name: "deploy",
                path: "deploy",
                start: 600,
                end: 600,
                step: 1,
                cf: "average",
                xff: 0.0,
                tags: &[("name", "deploy")],
                values: &[Some(1.0), Some(1.0)],
            }],
        );
        check_options(&got, &[&[("color", "blue"), ("drawAsInfinite", "True")]]);
    }

    #[test]
    fn vertical_line_without_label() {
        // Expected values computed by graphite-web 1.1.8 on the same data.
        let got = run("verticalLine('1700000640')", 0, 900);
        check(
            &got,
            &[Want {
                // graphite-web: null (see vertical_line).
                name: "",
                path: "None",
                start: 600,
                end: 600,
                step: 1,
                cf: "average",
                xff: 0.0,
                tags: &[("name", "None")],
                values: &[Some(1.0), Some(1.0)],
            }],
        );
        check_options(&got, &[&[("drawAsInfinite", "True")]]);
    }

    #[test]
    fn vertical_line_at_from() {
        // Expected values computed by graphite-web 1.1.8 on the same data.
        let got = run("verticalLine('1700000040','start')", 0, 900);
        check(
            &got,
            &[Want {
                name: "start",
                path: "start",
                start: 0,
                end: 0,
                step: 1,
                cf: "average",
                xff: 0.0,
                tags: &[("name", "start")],
                values: &[Some(1.0), Some(1.0)],
            }],
        );
        check_options(&got, &[&[("drawAsInfinite", "True")]]);
    }

    #[test]
    fn vertical_line_at_until_with_empty_label() {
        // Expected values computed by graphite-web 1.1.8 on the same data.
        let got = run("verticalLine('1700000940','','')", 0, 900);
        check(
            &got,
            &[Want {
                name: "",
                path: "",
                start: 900,
                end: 900,
                step: 1,
                cf: "average",
                xff: 0.0,
                tags: &[("name", "")],
                values: &[Some(1.0), Some(1.0)],
            }],
        );
        check_options(&got, &[&[("drawAsInfinite", "True")]]);
    }

    #[test]
    fn vertical_line_absolute_time() {
        // Expected values computed by graphite-web 1.1.8 on the same data.
        let got = run("verticalLine('00:00_20231114','midnight','red')", -86400, 900);
        check(
            &got,
            &[Want {
                name: "midnight",
                path: "midnight",
                start: -80040,
                end: -80040,
                step: 1,
                cf: "average",
                xff: 0.0,
                tags: &[("name", "midnight")],
                values: &[Some(1.0), Some(1.0)],
            }],
        );
        check_options(&got, &[&[("color", "red"), ("drawAsInfinite", "True")]]);
    }

    #[test]
    fn stacked_continues_across_targets() {
        // Expected values computed by graphite-web 1.1.8 on the same data.
        let got = run_all(
            &[
                "stacked(test.web01.cpu)",
                "stacked(test.web02.cpu)",
                "stacked(test.db01.cpu,'other')",
                "stacked(test.web01.cpu,'other')",
            ],
            600,
            900,
        );
        check(
            &got,
            &[
                Want {
                    name: "stacked(test.web01.cpu)",
                    path: "stacked(test.web01.cpu)",
                    start: 660,
                    end: 960,
                    step: 60,
                    cf: "average",
                    xff: 0.0,
                    tags: &[("name", "test.web01.cpu"), ("stacked", "__DEFAULT__")],
                    values: &[Some(2.2), Some(9.9), Some(1.1), Some(0.7), Some(4.4)],
                },
                Want {
                    name: "stacked(test.web02.cpu)",
                    path: "stacked(test.web02.cpu)",
                    start: 660,
                    end: 960,
                    step: 60,
                    cf: "average",
                    xff: 0.0,
                    tags: &[("name", "test.web02.cpu"), ("stacked", "__DEFAULT__")],
                    values: &[Some(13.3), Some(21.9), None, Some(16.2), Some(20.65)],
                },
                Want {
                    name: "test.db01.cpu",
                    path: "test.db01.cpu",
                    start: 660,
                    end: 960,
                    step: 60,
                    cf: "average",
                    xff: 0.0,
                    tags: &[("name", "test.db01.cpu")],
                    values: &[Some(1.5), None, Some(2.5), None, None],
                },
                Want {
                    name: "test.web01.cpu",
                    path: "test.web01.cpu",
                    start: 660,
                    end: 960,
                    step: 60,
                    cf: "average",
                    xff: 0.0,
                    tags: &[("name", "test.web01.cpu")],
                    values: &[Some(3.7), Some(9.9), Some(3.6), Some(0.7), Some(4.4)],
                },
            ],
        );
        check_options(
            &got,
            &[
                &[("stacked", "True")],
                &[("stacked", "True")],
                &[("stacked", "other")],
                &[("stacked", "other")],
            ],
        );
    }

    #[test]
    fn stacked_nested_in_one_target() {
        // Expected values computed by graphite-web 1.1.8 on the same data.
        let got = run_all(
            &[
                "group(stacked(test.web01.cpu,'s'),stacked(test.web02.cpu,'s'))",
                "stacked(stacked(test.db01.cpu,'s'),'s')",
            ],
            600,
            900,
        );
        check(
            &got,
            &[
                Want {
                    name: "test.web01.cpu",
                    path: "test.web01.cpu",
                    start: 660,
                    end: 960,
                    step: 60,
                    cf: "average",
                    xff: 0.0,
                    tags: &[("name", "test.web01.cpu")],
                    values: &[Some(2.2), Some(9.9), Some(1.1), Some(0.7), Some(4.4)],
                },
                Want {
                    name: "test.web02.cpu",
                    path: "test.web02.cpu",
                    start: 660,
                    end: 960,
                    step: 60,
                    cf: "average",
                    xff: 0.0,
                    tags: &[("name", "test.web02.cpu")],
                    values: &[Some(13.3), Some(21.9), None, Some(16.2), Some(20.65)],
                },
                Want {
                    name: "test.db01.cpu",
                    path: "test.db01.cpu",
                    start: 660,
                    end: 960,
                    step: 60,
                    cf: "average",
                    xff: 0.0,
                    tags: &[("name", "test.db01.cpu")],
                    values: &[Some(29.6), None, Some(7.2), None, None],
                },
            ],
        );
        check_options(&got, &[&[("stacked", "s")], &[("stacked", "s")], &[("stacked", "s")]]);
    }

    #[test]
    fn graph_functions_chain() {
        // Expected values computed by graphite-web 1.1.8 on the same data.
        let got = run("lineWidth(dashed(color(secondYAxis(test.web01.cpu),'red'),2),3)", 600, 900);
        check(
            &got,
            &[Want {
                name: "dashed(secondYAxis(test.web01.cpu), 2)",
                path: "test.web01.cpu",
                start: 660,
                end: 960,
                step: 60,
                cf: "average",
                xff: 0.0,
                tags: &[("dashed", "2"), ("name", "test.web01.cpu"), ("secondYAxis", "1")],
                values: &[Some(2.2), Some(9.9), Some(1.1), Some(0.7), Some(4.4)],
            }],
        );
        check_options(
            &got,
            &[&[("color", "red"), ("dashed", "2"), ("lineWidth", "3.0"), ("secondYAxis", "True")]],
        );
    }

    #[test]
    fn area_between_needs_exactly_two_series() {
        for target in ["areaBetween(test.web01.cpu)", "areaBetween(test.*.cpu)", "areaBetween(x.y)"]
        {
            let err = run_err(target, 600, 900);
            assert!(matches!(err, Error::InvalidArgument(_)), "{target}: {err}");
            assert!(err.to_string().contains("*exactly* 2 series"), "{err}");
        }
    }

    #[test]
    fn vertical_line_reads_relative_times_from_now() {
        // now = until = T0 + 900.
        let got = run("verticalLine('-5min','x')", 0, 900);
        assert_eq!((got[0].start - T0, got[0].end - T0, got[0].step), (600, 600, 1));
        assert_eq!(got[0].datapoints(), [(Some(1.0), T0 + 600)]);
    }

    #[test]
    fn vertical_line_outside_the_range_is_an_argument_error() {
        let err = run_err("verticalLine('-20min')", 0, 900);
        let want = format!("verticalLine(): timestamp {} exists before start of range", T0 - 300);
        assert!(matches!(&err, Error::InvalidArgument(m) if *m == want), "{err}");
        let err = run_err(&format!("verticalLine('{}')", T0 + 901), 0, 900);
        let want = format!("verticalLine(): timestamp {} exists after end of range", T0 + 901);
        assert!(matches!(&err, Error::InvalidArgument(m) if *m == want), "{err}");
        assert!(matches!(run_err("verticalLine('soon')", 0, 900), Error::Time(_)));
        assert!(matches!(run_err("verticalLine()", 0, 900), Error::InvalidArgument(_)));
    }

    #[test]
    fn dashed_reads_its_length_as_graphite_web_validates_it() {
        // graphite-web 1.1.8: '3' and true pass its integer validation (3, 1); 1e20 is kept.
        for (target, name, tag) in [
            ("dashed(test.web01.cpu,'3')", "dashed(test.web01.cpu, 3)", "3"),
            ("dashed(test.web01.cpu,true)", "dashed(test.web01.cpu, 1)", "1"),
            ("dashed(test.web01.cpu,1e20)", "dashed(test.web01.cpu, 1e+20)", "1e+20"),
            ("dashed(test.web01.cpu,dashLength=7)", "dashed(test.web01.cpu, 7)", "7"),
        ] {
            let got = run(target, 600, 900);
            assert_eq!(got[0].name, name);
            assert_eq!(got[0].tags["dashed"], tag);
            assert_eq!(got[0].options["dashed"], tag);
        }
        // graphite-web fails with a Python TypeError (500) on these.
        for target in ["dashed(test.web01.cpu,None)", "dashed(test.web01.cpu,'abc')"] {
            assert!(matches!(run_err(target, 600, 900), Error::InvalidArgument(_)), "{target}");
        }
    }

    #[test]
    fn bad_numbers_and_missing_arguments_are_argument_errors() {
        // graphite-web only logs a failed validation, and keeps alpha='abc' as an option.
        for target in [
            "alpha(test.web01.cpu,'abc')",
            "alpha(test.web01.cpu)",
            "lineWidth(test.web01.cpu,'wide')",
            "color(test.web01.cpu)",
            "stacked(test.web01.cpu,'a','b')",
            "secondYAxis(test.web01.cpu,'-1h')",
        ] {
            assert!(matches!(run_err(target, 600, 900), Error::InvalidArgument(_)), "{target}");
        }
        let got = run("alpha(test.web01.cpu,'0.25')", 600, 900);
        assert_eq!(got[0].options["alpha"], "0.25");
        let got = run("color(test.web01.cpu,5)", 600, 900);
        assert_eq!(got[0].options["color"], "5");
    }

    #[test]
    fn stacked_with_none_is_a_stack_of_its_own() {
        // graphite-web 1.1.8: a None stack name and the name 'None' are different stacks, and
        // neither renames.
        let got = run(
            "group(stacked(test.web01.cpu,None),stacked(test.web01.cpu,'None'),stacked(test.web01.cpu,None))",
            600,
            720,
        );
        let values: Vec<_> = got.iter().map(|s| s.values.clone()).collect();
        assert_eq!(
            values,
            [vec![Some(2.2), Some(9.9)], vec![Some(2.2), Some(9.9)], vec![Some(4.4), Some(19.8)]]
        );
        assert_eq!(got[0].name, "test.web01.cpu");
        assert_eq!(got[0].options["stacked"], "True");
        assert_eq!(got[1].options["stacked"], "None");
    }

    #[test]
    fn stacked_binds_the_python_keyword_too() {
        // graphite-web runs stacked(x, stackName='a') (its call takes that name) and fails on
        // the declared stack='a'; both work here.
        for target in ["stacked(test.web01.cpu,stackName='a')", "stacked(test.web01.cpu,stack='a')"]
        {
            let got = run(target, 600, 900);
            assert_eq!(
                (got[0].name.as_str(), got[0].options["stacked"].as_str()),
                ("test.web01.cpu", "a")
            );
        }
    }

    #[test]
    fn stacked_keeps_earlier_options() {
        // graphite-web's copy drops them (a color() inside stacked() is lost there).
        let got = run("stacked(color(test.web01.cpu,'red'))", 600, 900);
        assert_eq!(got[0].options["color"], "red");
        assert_eq!(got[0].options["stacked"], "True");
    }

    #[test]
    fn signatures_match_graphite_web() {
        // graphite-web 1.1.8's /functions "function" text: the Python signatures.
        for (name, want) in [
            ("alpha", "alpha(seriesList, alpha)"),
            ("areaBetween", "areaBetween(seriesList)"),
            ("color", "color(seriesList, theColor)"),
            ("dashed", "dashed(seriesList, dashLength=5)"),
            ("drawAsInfinite", "drawAsInfinite(seriesList)"),
            ("lineWidth", "lineWidth(seriesList, width)"),
            ("secondYAxis", "secondYAxis(seriesList)"),
            ("stacked", "stacked(seriesLists, stackName='__DEFAULT__')"),
            ("verticalLine", "verticalLine(ts, label=None, color=None)"),
        ] {
            let def = crate::function::lookup(name).unwrap();
            assert_eq!((def.signature(), def.group), (want.to_string(), "Graph"));
        }
    }
}
