//! graphite-web's pie functions (graphite-reference §4.5): with `graphType=pie`, each series
//! becomes one slice whose size is the series reduced to a single number by `pieMode`
//! (`average`, the default, `maximum` or `minimum`).
//!
//! They are not render functions (a target cannot call them), so they are kept out of the
//! registry; [`FUNCTIONS`] describes them for `/functions?type=pie`, and [`pie_value`] is what
//! the pie renderer calls.

use crate::error::{Error, Result};
use crate::function::{Args, FunctionDef, Param, ParamType};
use crate::series::{Series, py_max, py_min};

/// How a pie slice reduces its series (`pieMode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PieMode {
    /// The mean of the non-null values (graphite-web's default).
    Average,
    /// The largest non-null value.
    Maximum,
    /// The smallest non-null value.
    Minimum,
}

impl PieMode {
    /// The mode called `name` (`average`, `maximum`, `minimum`); `None` for any other name,
    /// which graphite-web fails on (`Function "x" not found`).
    pub fn parse(name: &str) -> Option<PieMode> {
        Some(match name {
            "average" => PieMode::Average,
            "maximum" => PieMode::Maximum,
            "minimum" => PieMode::Minimum,
            _ => return None,
        })
    }

    /// The mode's name.
    pub fn name(self) -> &'static str {
        match self {
            PieMode::Average => "average",
            PieMode::Maximum => "maximum",
            PieMode::Minimum => "minimum",
        }
    }
}

/// The value of a pie slice: `series` (as it reads, consolidated when it is) reduced by
/// `mode`, as graphite-web's `pieAverage`, `pieMaximum` and `pieMinimum` compute it. `None`
/// when the series has no non-null value; graphite-web's pie view then draws the slice as 0
/// (`func(...) or 0`), which is the caller's part.
///
/// The average sums left to right from 0 and divides by the number of non-null values;
/// maximum and minimum keep the first of equal values and follow Python's comparisons (a NaN
/// first stays).
pub fn pie_value(mode: PieMode, series: &Series) -> Option<f64> {
    let values = series.consolidated();
    let mut present = values.iter().flatten().copied();
    match mode {
        PieMode::Average => {
            let (sum, count) = present.fold((0.0, 0usize), |(sum, n), x| (sum + x, n + 1));
            (count > 0).then(|| sum / count as f64)
        }
        PieMode::Maximum => present.next().map(|first| present.fold(first, py_max)),
        PieMode::Minimum => present.next().map(|first| present.fold(first, py_min)),
    }
}

const SERIES: Param = Param::new("series", ParamType::Series).required();

const fn def(name: &'static str, description: &'static str) -> FunctionDef {
    FunctionDef { name, group: "Pie", description, params: &[SERIES], aggregator: false, call }
}

/// The pie functions as `/functions?type=pie` lists them.
pub(crate) const FUNCTIONS: &[FunctionDef] = &[
    def("average", "The mean of the series' non-null values."),
    def("maximum", "The largest of the series' non-null values."),
    def("minimum", "The smallest of the series' non-null values."),
];

/// A pie function is not callable from a target: graphite-web does not register it as a
/// render function, so a target naming it is an unknown function there. The registry never
/// dispatches here; this only fills [`FunctionDef::call`].
fn call(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    Err(Error::UnknownFunction(args.def.name.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(values: &[Option<f64>]) -> Series {
        Series::new("a.b", 0, 60 * values.len() as i64, 60, values.to_vec())
    }

    #[test]
    fn pie_values_match_graphite_web() {
        // pieAverage/pieMaximum/pieMinimum of graphite-web 1.1.8 on the same lists (and the
        // same consolidation below).
        let s = series(&[Some(1.0), None, Some(2.5), Some(0.1), None, Some(0.2)]);
        assert_eq!(pie_value(PieMode::Average, &s), Some(0.9500000000000001));
        assert_eq!(pie_value(PieMode::Maximum, &s), Some(2.5));
        assert_eq!(pie_value(PieMode::Minimum, &s), Some(0.1));
        let s = series(&[Some(0.1), Some(0.2), Some(0.3)]);
        assert_eq!(pie_value(PieMode::Average, &s), Some(0.20000000000000004));
        let empty = series(&[None, None]);
        for mode in [PieMode::Average, PieMode::Maximum, PieMode::Minimum] {
            assert_eq!(pie_value(mode, &empty), None);
            assert_eq!(pie_value(mode, &series(&[])), None);
        }
    }

    #[test]
    fn pie_values_follow_python_comparisons_with_nan() {
        // max([nan, 1.0]) is nan, max([1.0, nan]) is 1.0 in Python.
        let s = series(&[Some(f64::NAN), Some(1.0)]);
        assert!(pie_value(PieMode::Maximum, &s).is_some_and(f64::is_nan));
        assert!(pie_value(PieMode::Minimum, &s).is_some_and(f64::is_nan));
        let s = series(&[Some(1.0), Some(f64::NAN), Some(-3.0)]);
        assert_eq!(pie_value(PieMode::Maximum, &s), Some(1.0));
        assert_eq!(pie_value(PieMode::Minimum, &s), Some(-3.0));
        assert!(pie_value(PieMode::Average, &s).is_some_and(f64::is_nan));
    }

    #[test]
    fn pie_values_read_the_series_consolidated() {
        let mut s = series(&[Some(1.0), Some(3.0), Some(10.0), None]);
        s.consolidate(2);
        // Reads [2.0, 10.0].
        assert_eq!(pie_value(PieMode::Average, &s), Some(6.0));
        assert_eq!(pie_value(PieMode::Minimum, &s), Some(2.0));
    }

    #[test]
    fn modes_parse_by_name_only() {
        for mode in [PieMode::Average, PieMode::Maximum, PieMode::Minimum] {
            assert_eq!(PieMode::parse(mode.name()), Some(mode));
        }
        assert_eq!(PieMode::parse("avg"), None);
        assert_eq!(PieMode::parse("Average"), None);
    }

    #[test]
    fn pie_functions_describe_themselves_as_graphite_web() {
        let names: Vec<&str> = FUNCTIONS.iter().map(|f| f.name).collect();
        assert_eq!(names, ["average", "maximum", "minimum"]);
        for f in FUNCTIONS {
            assert_eq!(f.group, "Pie");
            assert_eq!(f.signature(), format!("{}(series)", f.name));
        }
        assert!(crate::function::lookup("average").is_none());
    }
}
