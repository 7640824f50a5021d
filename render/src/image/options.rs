//! Graph options as graphite-web's `parseOptions` hands them to the graph classes.
//!
//! graphite-web copies each option the graph type knows (`customizable`) from the request and
//! guesses its type from the text: digits (with an optional `-`) become an int unless the
//! name contains "color", `x.y` a float, `true`/`false` (any case) a bool, and `default` or an
//! empty value is dropped; anything else stays a string. The graph code then reads each
//! option with Python's conversions (`int(...)`, `float(...)`, truth), so `hideLegend=1` and
//! `hideLegend=true` both hide the legend while `hideLegend=0` and `hideLegend=false` do not.
//! [`GraphOptions`] keeps both the guessed value and the text, and its readers apply the same
//! conversions, failing where Python raises.

use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::http::params::{Params, py_float, py_int};

/// The options every graph type reads (`Graph.customizable`).
const BASE_OPTIONS: &[&str] = &[
    "width",
    "height",
    "margin",
    "bgcolor",
    "fgcolor",
    "fontName",
    "fontSize",
    "fontBold",
    "fontItalic",
    "colorList",
    "template",
    "yAxisSide",
    "outputFormat",
];

/// The line graph's own options (`LineGraph.customizable`).
const LINE_OPTIONS: &[&str] = &[
    "title",
    "vtitle",
    "lineMode",
    "lineWidth",
    "hideLegend",
    "hideAxes",
    "minXStep",
    "hideGrid",
    "majorGridLineColor",
    "minorGridLineColor",
    "thickness",
    "min",
    "max",
    "graphOnly",
    "yMin",
    "yMax",
    "yLimit",
    "yStep",
    "areaMode",
    "areaAlpha",
    "drawNullAsZero",
    "tz",
    "pieMode",
    "yUnitSystem",
    "logBase",
    "yMinLeft",
    "yMinRight",
    "yMaxLeft",
    "yMaxRight",
    "yLimitLeft",
    "yLimitRight",
    "yStepLeft",
    "yStepRight",
    "rightWidth",
    "rightColor",
    "rightDashed",
    "leftWidth",
    "leftColor",
    "leftDashed",
    "xFormat",
    "minorY",
    "hideYAxis",
    "uniqueLegend",
    "vtitleRight",
    "yDivisors",
    "connectedLimit",
    "hideXAxis",
    "hideNullFromLegend",
];

/// The pie graph's own options (`PieGraph.customizable`).
const PIE_OPTIONS: &[&str] = &[
    "title",
    "valueLabels",
    "valueLabelsMin",
    "hideLegend",
    "pieLabels",
    "areaAlpha",
    "valueLabelsColor",
];

/// An option's value after graphite-web's type guess.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Value {
    /// Digits, optionally after `-` (names without "color").
    Int(i64),
    /// `x.y`, `.5`, `5.`, optionally after `-`.
    Float(f64),
    /// `true` / `false` in any case.
    Bool(bool),
    /// Anything else.
    Str(String),
}

impl Value {
    /// graphite-web's guess for option `name` given `text`; `None` drops the option.
    fn guess(name: &str, text: &str) -> Option<Value> {
        let unsigned = text.strip_prefix('-').unwrap_or(text);
        let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if all_digits(unsigned) && !name.to_lowercase().contains("color") {
            // Python's ints are unbounded; past i64 the value is only ever compared or used
            // as a float, so read it as a float.
            return Some(match text.parse::<i64>() {
                Ok(i) => Value::Int(i),
                Err(_) => Value::Float(py_float(text).unwrap_or(f64::INFINITY)),
            });
        }
        if text.contains('.')
            && all_digits(&unsigned.replacen('.', "", 1))
            && let Ok(x) = py_float(text)
        {
            return Some(Value::Float(x));
        }
        let lower = text.to_lowercase();
        if lower == "true" || lower == "false" {
            return Some(Value::Bool(lower == "true"));
        }
        if lower == "default" || text.is_empty() {
            return None;
        }
        Some(Value::Str(text.to_string()))
    }

    /// Python's truth of the value.
    fn truthy(&self) -> bool {
        match self {
            Value::Int(i) => *i != 0,
            Value::Float(x) => *x != 0.0,
            Value::Bool(b) => *b,
            Value::Str(s) => !s.is_empty(),
        }
    }

    /// Python's type name, for error messages.
    fn type_name(&self) -> &'static str {
        match self {
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Bool(_) => "bool",
            Value::Str(_) => "str",
        }
    }
}

/// One option: the guessed value and the request's text.
#[derive(Clone, Debug, PartialEq)]
struct Opt {
    value: Value,
    text: String,
}

/// The graph options of one request (graphite-web's `graphOptions`), read with Python's
/// conversions.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GraphOptions {
    options: BTreeMap<String, Opt>,
}

impl GraphOptions {
    /// The options a line graph (`pie == false`) or a pie graph reads from the request's
    /// parameters (the last value of each), typed as graphite-web types them.
    pub fn from_params(params: &Params, pie: bool) -> GraphOptions {
        let own = if pie { PIE_OPTIONS } else { LINE_OPTIONS };
        let mut out = GraphOptions::default();
        for name in BASE_OPTIONS.iter().chain(own) {
            if let Some(text) = params.get(name) {
                out.set(name, text);
            }
        }
        out
    }

    /// Line-graph options from a query string (`width=400&areaMode=stacked`): a shorthand
    /// for tests, benches and examples.
    pub fn from_query(query: &str) -> GraphOptions {
        GraphOptions::from_params(&Params::from_query(query), false)
    }

    /// Sets an option from its request text, typed as graphite-web types it (an empty or
    /// `default` value removes it).
    pub fn set(&mut self, name: &str, text: &str) {
        match Value::guess(name, text) {
            Some(value) => {
                self.options.insert(name.to_string(), Opt { value, text: text.to_string() });
            }
            None => {
                self.options.remove(name);
            }
        }
    }

    /// Sets an option to a value directly (graphite-web's own overrides, such as
    /// `graphOnly` setting `hideLegend`).
    pub(crate) fn set_value(&mut self, name: &str, value: Value) {
        let text = match &value {
            Value::Int(i) => i.to_string(),
            Value::Float(x) => crate::pyfmt::float_repr(*x),
            Value::Bool(b) => if *b { "True" } else { "False" }.to_string(),
            Value::Str(s) => s.clone(),
        };
        self.options.insert(name.to_string(), Opt { value, text });
    }

    /// Whether the option was given (`name in params`).
    pub(crate) fn has(&self, name: &str) -> bool {
        self.options.contains_key(name)
    }

    /// The typed value.
    pub(crate) fn value(&self, name: &str) -> Option<&Value> {
        self.options.get(name).map(|o| &o.value)
    }

    /// The request's text of the option (titles, formats and colours are used as text).
    pub(crate) fn text(&self, name: &str) -> Option<&str> {
        self.options.get(name).map(|o| o.text.as_str())
    }

    /// `params.get(name, default)` read for its truth.
    pub(crate) fn flag(&self, name: &str, default: bool) -> bool {
        self.value(name).map_or(default, Value::truthy)
    }

    /// `int(params.get(name, default))`.
    ///
    /// # Errors
    ///
    /// Text that Python's `int()` rejects.
    pub(crate) fn int(&self, name: &str, default: i64) -> Result<i64> {
        match self.value(name) {
            None => Ok(default),
            Some(Value::Int(i)) => Ok(*i),
            Some(Value::Float(x)) if x.is_finite() => Ok(x.trunc() as i64),
            Some(Value::Float(_)) => {
                Err(Error::Evaluation(format!("cannot convert float to integer ({name})")))
            }
            Some(Value::Bool(b)) => Ok(i64::from(*b)),
            Some(Value::Str(s)) => {
                py_int(s).map_err(|e| Error::Evaluation(format!("{e} ({name})")))
            }
        }
    }

    /// `float(params.get(name, default))`.
    ///
    /// # Errors
    ///
    /// Text that Python's `float()` rejects.
    pub(crate) fn float(&self, name: &str, default: f64) -> Result<f64> {
        match self.value(name) {
            None => Ok(default),
            Some(v) => to_float(name, v),
        }
    }

    /// A number-valued option used without conversion (`yMin`, `yLimit`, ...): ints, floats
    /// and bools are numbers to Python, text is not.
    ///
    /// # Errors
    ///
    /// Text (graphite-web fails with a `TypeError` when it compares or checks it).
    pub(crate) fn number(&self, name: &str) -> Result<Option<f64>> {
        match self.value(name) {
            None => Ok(None),
            Some(Value::Int(i)) => Ok(Some(*i as f64)),
            Some(Value::Float(x)) => Ok(Some(*x)),
            Some(Value::Bool(b)) => Ok(Some(f64::from(u8::from(*b)))),
            Some(v @ Value::Str(_)) => Err(Error::Evaluation(format!(
                "{name} must be a number, not {} ({:?})",
                v.type_name(),
                self.text(name).unwrap_or_default()
            ))),
        }
    }

    /// `params.get(name, default).lower()`: text options compared by name (`lineMode`,
    /// `areaMode`).
    ///
    /// # Errors
    ///
    /// A number or bool (Python has no `.lower()` on them).
    pub(crate) fn lower(&self, name: &str, default: &str) -> Result<String> {
        match self.value(name) {
            None => Ok(default.to_string()),
            Some(Value::Str(s)) => Ok(s.to_lowercase()),
            Some(v) => Err(Error::Evaluation(format!(
                "'{}' object has no attribute 'lower' ({name})",
                v.type_name()
            ))),
        }
    }
}

/// Python's `float(value)`.
pub(crate) fn to_float(name: &str, value: &Value) -> Result<f64> {
    match value {
        Value::Int(i) => Ok(*i as f64),
        Value::Float(x) => Ok(*x),
        Value::Bool(b) => Ok(f64::from(u8::from(*b))),
        Value::Str(s) => py_float(s).map_err(|e| Error::Evaluation(format!("{e} ({name})"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_typed_as_parse_options_types_them() {
        let o = GraphOptions::from_query(
            "width=400&yMin=-5&yMax=1.5&hideLegend=TRUE&bgcolor=000000&title=&lineMode=Staircase&areaAlpha=default&unknown=1",
        );
        assert_eq!(o.value("width"), Some(&Value::Int(400)));
        assert_eq!(o.value("yMin"), Some(&Value::Int(-5)));
        assert_eq!(o.value("yMax"), Some(&Value::Float(1.5)));
        assert_eq!(o.value("hideLegend"), Some(&Value::Bool(true)));
        // "color" in the name: digits stay text.
        assert_eq!(o.value("bgcolor"), Some(&Value::Str("000000".into())));
        assert!(!o.has("title") && !o.has("areaAlpha") && !o.has("unknown"));
        assert_eq!(o.lower("lineMode", "slope").unwrap(), "staircase");
    }

    #[test]
    fn readers_convert_like_python() {
        let o = GraphOptions::from_query("width=300.9&hideLegend=0&minorY=x&yMin=abc&margin=true");
        assert_eq!(o.int("width", 200).unwrap(), 300);
        assert_eq!(o.int("height", 200).unwrap(), 200);
        assert!(!o.flag("hideLegend", true));
        assert!(o.flag("hideAxes", true));
        assert!(o.int("minorY", 1).is_err());
        assert!(o.number("yMin").is_err());
        assert_eq!(o.int("margin", 10).unwrap(), 1);
        assert!(GraphOptions::from_query("lineMode=5").lower("lineMode", "slope").is_err());
    }

    #[test]
    fn pie_graphs_read_their_own_options() {
        let p = Params::from_query("valueLabels=number&lineMode=staircase");
        let pie = GraphOptions::from_params(&p, true);
        assert!(pie.has("valueLabels") && !pie.has("lineMode"));
        let line = GraphOptions::from_params(&p, false);
        assert!(!line.has("valueLabels") && line.has("lineMode"));
    }
}
