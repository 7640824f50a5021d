//! The Sorting family: reorder a series list by name or by a summary of the values
//! (`sortBy`, `sortByName`, `sortByTotal`, `sortByMaxima`, `sortByMinima`).
//!
//! Sorts are stable in both directions, as Python's `list.sort(reverse=True)` is, so series
//! with equal keys keep the order they came in; a series whose summary is empty sorts as -inf.

use crate::aggfunc::AggFunc;
use crate::error::Result;
use crate::function::{Args, Default, FunctionDef, Param, ParamType, SERIES_LIST};
use crate::functions::alias::AGG_FUNC_OPTIONS;
use crate::functions::filter::{agg_func_arg, series_agg, sort_by_key, sort_key};
use crate::series::Series;

/// The functions this family defines.
pub(crate) const FUNCTIONS: &[FunctionDef] = &[
    FunctionDef {
        name: "sortBy",
        group: "Sorting",
        description: "Orders the series by the value of the aggregation function `func` \
            (`average` by default), ascending, or descending with `reverse`.\n\n\
            ```\n&target=sortBy(server*.instance*.threads.busy,'max')\n```",
        params: &[
            SERIES_LIST,
            Param::new("func", ParamType::AggFunc)
                .default(Default::Str("average"))
                .options(AGG_FUNC_OPTIONS),
            Param::new("reverse", ParamType::Boolean).default(Default::Bool(false)),
        ],
        aggregator: false,
        call: sort_by,
    },
    FunctionDef {
        name: "sortByMaxima",
        group: "Sorting",
        description: "Orders the series by their maximum, largest first; handy with \
            `areaMode=all` so that the lower lines stay visible.\n\n\
            ```\n&target=sortByMaxima(server*.instance*.memory.free)\n```",
        params: &[SERIES_LIST],
        aggregator: false,
        call: sort_by_maxima,
    },
    FunctionDef {
        name: "sortByMinima",
        group: "Sorting",
        description: "Orders the series by their minimum, smallest first, dropping the series \
            whose maximum is not above 0.\n\n\
            ```\n&target=sortByMinima(server*.instance*.memory.free)\n```",
        params: &[SERIES_LIST],
        aggregator: false,
        call: sort_by_minima,
    },
    FunctionDef {
        name: "sortByName",
        group: "Sorting",
        description: "Orders the series by name, alphabetically or, with `natural`, with \
            numbers compared by value (`server2` before `server11`); `reverse` flips the \
            order.",
        params: &[
            SERIES_LIST,
            Param::new("natural", ParamType::Boolean).default(Default::Bool(false)),
            Param::new("reverse", ParamType::Boolean).default(Default::Bool(false)),
        ],
        aggregator: false,
        call: sort_by_name,
    },
    FunctionDef {
        name: "sortByTotal",
        group: "Sorting",
        description: "Orders the series by the sum of their values, largest first.",
        params: &[SERIES_LIST],
        aggregator: false,
        call: sort_by_total,
    },
];

fn sort_by(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let list = args.series(0)?;
    let func = agg_func_arg(args, 1)?;
    let reverse = args.bool(2)?;
    Ok(sort_by_key(list, |s| sort_key(series_agg(func, s)), reverse))
}

fn sort_by_total(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let list = args.series(0)?;
    Ok(sort_by_key(list, |s| sort_key(series_agg(AggFunc::Sum, s)), true))
}

fn sort_by_maxima(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let list = args.series(0)?;
    Ok(sort_by_key(list, |s| sort_key(series_agg(AggFunc::Max, s)), true))
}

fn sort_by_minima(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let list = args.series(0)?;
    let kept = list.into_iter().filter(|s| series_agg(AggFunc::Max, s).unwrap_or(0.0) > 0.0);
    Ok(sort_by_key(kept.collect(), |s| sort_key(series_agg(AggFunc::Min, s)), false))
}

fn sort_by_name(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let list = args.series(0)?;
    let natural = args.bool(1)?;
    let reverse = args.bool(2)?;
    let mut keyed: Vec<(String, Series)> = list
        .into_iter()
        .map(|s| (if natural { natural_key(&s.name) } else { s.name.clone() }, s))
        .collect();
    // Rust's `str` order is code point order, as Python's.
    keyed.sort_by(|(a, _), (b, _)| if reverse { b.cmp(a) } else { a.cmp(b) });
    Ok(keyed.into_iter().map(|(_, s)| s).collect())
}

/// graphite-web's natural sort key: every run of digits replaced by its integer value
/// zero-padded to 10 digits (`{0:010}`), so that `2` sorts before `11`. Longer numbers keep all
/// their digits, without leading zeros.
///
/// Python's `\d` also matches non-ASCII decimal digits; only ASCII digit runs are rewritten
/// here.
fn natural_key(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 16);
    let mut rest = name;
    while let Some(start) = rest.find(|c: char| c.is_ascii_digit()) {
        out.push_str(&rest[..start]);
        let digits = &rest[start..];
        let len = digits.find(|c: char| !c.is_ascii_digit()).unwrap_or(digits.len());
        let value = digits[..len].trim_start_matches('0');
        let value = if value.is_empty() { "0" } else { value };
        out.push_str(&format!("{value:0>10}"));
        rest = &digits[len..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{T0, eval, names, source, try_eval};

    fn data() -> crate::source::MemorySource {
        source(&[
            ("test.web01.cpu", 60, &[Some(1.0), Some(5.0), Some(3.0)]),
            ("test.web02.cpu", 60, &[Some(4.0), None, Some(2.0)]),
            ("test.db01.cpu", 60, &[None, None, None]),
            ("test.db02.cpu", 60, &[Some(-1.0), Some(-2.0), Some(0.0)]),
            ("test.web10.cpu", 60, &[Some(3.0), Some(3.0), Some(3.0)]),
        ])
    }

    fn run(target: &str) -> Vec<String> {
        names(&eval(&data(), target, T0 - 60, T0 + 120)).into_iter().map(String::from).collect()
    }

    #[test]
    fn natural_key_pads_numbers() {
        assert_eq!(natural_key("server2"), "server0000000002");
        assert_eq!(natural_key("a007b12345678901"), "a0000000007b12345678901");
        assert_eq!(natural_key("x"), "x");
    }

    #[test]
    fn sorts_match_graphite_web() {
        // Orders from graphite-web 1.1.8 on the same series.
        assert_eq!(
            run("sortByName(test.*.cpu)"),
            [
                "test.db01.cpu",
                "test.db02.cpu",
                "test.web01.cpu",
                "test.web02.cpu",
                "test.web10.cpu"
            ]
        );
        assert_eq!(
            run("sortByName(test.*.cpu,reverse=true)"),
            [
                "test.web10.cpu",
                "test.web02.cpu",
                "test.web01.cpu",
                "test.db02.cpu",
                "test.db01.cpu"
            ]
        );
        assert_eq!(
            run("sortByName(aliasByNode(test.*.cpu,1),true)"),
            ["db01", "db02", "web01", "web02", "web10"]
        );
        assert_eq!(
            run("sortByTotal(test.*.cpu)"),
            [
                "test.web01.cpu",
                "test.web10.cpu",
                "test.web02.cpu",
                "test.db02.cpu",
                "test.db01.cpu"
            ]
        );
        assert_eq!(
            run("sortByMaxima(test.*.cpu)"),
            [
                "test.web01.cpu",
                "test.web02.cpu",
                "test.web10.cpu",
                "test.db02.cpu",
                "test.db01.cpu"
            ]
        );
        assert_eq!(
            run("sortByMinima(test.*.cpu)"),
            ["test.web01.cpu", "test.web02.cpu", "test.web10.cpu"]
        );
        assert_eq!(
            run("sortBy(test.*.cpu)"),
            [
                "test.db01.cpu",
                "test.db02.cpu",
                "test.web01.cpu",
                "test.web02.cpu",
                "test.web10.cpu"
            ]
        );
        assert_eq!(
            run("sortBy(test.*.cpu,'last',true)"),
            [
                "test.web01.cpu",
                "test.web10.cpu",
                "test.web02.cpu",
                "test.db02.cpu",
                "test.db01.cpu"
            ]
        );
        assert!(try_eval(&data(), "sortBy(test.*.cpu,'bogus')", T0 - 60, T0 + 120).is_err());
        assert!(run("sortByName(nothing.*)").is_empty());
    }
}
