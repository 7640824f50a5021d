//! The function registry: what each render function declares (for argument binding and for
//! `/functions`), and [`Args`], through which an implementation reads its arguments.
//!
//! Every function lives in a `functions/<family>.rs` file as a [`FunctionDef`] in that file's
//! `FUNCTIONS` slice; [`lookup`] and [`all`] see the union. A definition carries graphite-web's
//! parameter list (names, types, defaults, options) so that keyword arguments bind by name,
//! `/functions` can describe it to Grafana's editor, and the signature text matches
//! graphite-web's.

use std::collections::HashMap;
use std::sync::OnceLock;

use crate::error::{Error, Result};
use crate::eval::{Context, Value};
use crate::expr::{Arg, Call, Expr, Literal};
use crate::pyfmt;
use crate::series::Series;

/// A parameter type as `/functions` names it (graphite-reference §4.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamType {
    /// `boolean`
    Boolean,
    /// `date`
    Date,
    /// `float`
    Float,
    /// `integer`
    Integer,
    /// `interval` (`"5min"`)
    Interval,
    /// `intOrInterval`
    IntOrInterval,
    /// `intOrInf`
    IntOrInf,
    /// `node` (an index into the dotted name)
    Node,
    /// `nodeOrTag`
    NodeOrTag,
    /// `series`
    Series,
    /// `seriesList`
    SeriesList,
    /// `seriesLists`
    SeriesLists,
    /// `string`
    String,
    /// `tag`
    Tag,
    /// `any`
    Any,
    /// `aggFunc`
    AggFunc,
    /// `aggOrSeriesFunc`
    AggOrSeriesFunc,
}

impl ParamType {
    /// The name `/functions` reports.
    pub fn name(self) -> &'static str {
        match self {
            ParamType::Boolean => "boolean",
            ParamType::Date => "date",
            ParamType::Float => "float",
            ParamType::Integer => "integer",
            ParamType::Interval => "interval",
            ParamType::IntOrInterval => "intOrInterval",
            ParamType::IntOrInf => "intOrInf",
            ParamType::Node => "node",
            ParamType::NodeOrTag => "nodeOrTag",
            ParamType::Series => "series",
            ParamType::SeriesList => "seriesList",
            ParamType::SeriesLists => "seriesLists",
            ParamType::String => "string",
            ParamType::Tag => "tag",
            ParamType::Any => "any",
            ParamType::AggFunc => "aggFunc",
            ParamType::AggOrSeriesFunc => "aggOrSeriesFunc",
        }
    }
}

/// A default value as declared (and shown in `/functions` and the signature text).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Default {
    /// `True` / `False`
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float (`inf` allowed).
    Float(f64),
    /// A string.
    Str(&'static str),
    /// `None`.
    None,
}

impl Default {
    fn literal(self) -> Literal {
        match self {
            Default::Bool(b) => Literal::Bool(b),
            Default::Int(i) => Literal::Int(i),
            Default::Float(f) => Literal::Float(f),
            Default::Str(s) => Literal::Str(s.to_string()),
            Default::None => Literal::None,
        }
    }

    /// Python's `repr()` of the default, as in graphite-web's signature text.
    pub fn python_repr(self) -> String {
        match self {
            Default::Bool(true) => "True".into(),
            Default::Bool(false) => "False".into(),
            Default::Int(i) => i.to_string(),
            Default::Float(f) => pyfmt::float_repr(f),
            Default::Str(s) => format!("'{s}'"),
            Default::None => "None".into(),
        }
    }
}

/// One declared parameter.
#[derive(Clone, Copy, Debug)]
pub struct Param {
    /// The keyword name.
    pub name: &'static str,
    /// The declared type.
    pub ty: ParamType,
    /// Must be given.
    pub required: bool,
    /// Used when not given.
    pub default: Option<Default>,
    /// Takes all remaining positional arguments (`*seriesLists`, `*nodes`).
    pub multiple: bool,
    /// The allowed values, when the type is an enumeration.
    pub options: &'static [&'static str],
    /// Values Grafana's editor suggests.
    pub suggestions: &'static [&'static str],
    /// The Python signature's default of a parameter graphite-web declares required
    /// (`highest(seriesList, n=1)`): shown in the signature text, and used when the argument is
    /// missing, because graphite-web's validation is advisory and the call then runs with the
    /// Python default.
    pub fallback: Option<Default>,
    /// The Python keyword, where graphite-web's declared name differs from its function's
    /// argument (`timeShift`'s `alignDst` is `alignDST` in Python; `legendValue`'s
    /// `valuesTypes` is `*valueTypes`): the signature text shows it, and a keyword argument
    /// binds under either name.
    pub py_name: Option<&'static str>,
}

impl Param {
    /// An optional parameter without a default (defaults to `None`).
    pub const fn new(name: &'static str, ty: ParamType) -> Param {
        Param {
            name,
            ty,
            required: false,
            default: None,
            multiple: false,
            options: &[],
            suggestions: &[],
            fallback: None,
            py_name: None,
        }
    }

    /// Marks the parameter required.
    pub const fn required(mut self) -> Param {
        self.required = true;
        self
    }

    /// Sets the default.
    pub const fn default(mut self, value: Default) -> Param {
        self.default = Some(value);
        self
    }

    /// Marks the parameter as taking the remaining positional arguments.
    pub const fn multiple(mut self) -> Param {
        self.multiple = true;
        self
    }

    /// Sets the allowed values.
    pub const fn options(mut self, options: &'static [&'static str]) -> Param {
        self.options = options;
        self
    }

    /// Sets the suggested values.
    pub const fn suggestions(mut self, suggestions: &'static [&'static str]) -> Param {
        self.suggestions = suggestions;
        self
    }

    /// Sets the Python signature's default (see [`Param::fallback`]); for an optional
    /// parameter it only changes the signature text (`round(seriesList, precision=None)`).
    pub const fn fallback(mut self, value: Default) -> Param {
        self.fallback = Some(value);
        self
    }

    /// Sets the Python keyword (see [`Param::py_name`]).
    pub const fn py_name(mut self, name: &'static str) -> Param {
        self.py_name = Some(name);
        self
    }
}

/// The first parameter of most functions: the series to work on (`seriesList`, required).
pub const SERIES_LIST: Param = Param::new("seriesList", ParamType::SeriesList).required();

/// What a function returns.
pub type FunctionImpl = fn(&Args<'_, '_>) -> Result<Vec<Series>>;

/// A registered render function.
#[derive(Clone, Copy)]
pub struct FunctionDef {
    /// The name targets call it by.
    pub name: &'static str,
    /// The `/functions` group (`Combine`, `Transform`, `Calculate`, `Filter Series`,
    /// `Filter Data`, `Sorting`, `Alias`, `Graph`, `Special`).
    pub group: &'static str,
    /// The description shown by `/functions` (graphite-web's docstring, in our words).
    pub description: &'static str,
    /// The declared parameters, in positional order.
    pub params: &'static [Param],
    /// Usable as a `groupBy*`/`applyByNode` callback by name (`aggOrSeriesFunc`).
    pub aggregator: bool,
    /// The implementation.
    pub call: FunctionImpl,
}

impl std::fmt::Debug for FunctionDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FunctionDef").field("name", &self.name).finish_non_exhaustive()
    }
}

impl FunctionDef {
    /// graphite-web's signature text: `summarize(seriesList, intervalString, func='sum', ...)`.
    pub fn signature(&self) -> String {
        let params: Vec<String> = self
            .params
            .iter()
            .map(|p| {
                let name = p.py_name.unwrap_or(p.name);
                match (p.multiple, p.fallback.or(p.default)) {
                    (true, _) => format!("*{name}"),
                    (false, Some(d)) => format!("{name}={}", d.python_repr()),
                    (false, None) if !p.required => format!("{name}=None"),
                    (false, None) => name.to_string(),
                }
            })
            .collect();
        format!("{}({})", self.name, params.join(", "))
    }
}

fn registry() -> &'static HashMap<&'static str, &'static FunctionDef> {
    static REGISTRY: OnceLock<HashMap<&'static str, &'static FunctionDef>> = OnceLock::new();
    REGISTRY.get_or_init(|| all().map(|def| (def.name, def)).collect())
}

/// Every registered function.
pub fn all() -> impl Iterator<Item = &'static FunctionDef> {
    crate::functions::FAMILIES.iter().flat_map(|family| family.iter())
}

/// The pie functions (`graphType=pie`'s `pieMode`, `/functions?type=pie`): described like the
/// render functions, but not callable from a target (see [`crate::pie_value`]).
pub fn pie_functions() -> &'static [FunctionDef] {
    crate::functions::pie::FUNCTIONS
}

/// The function called `name`.
pub fn lookup(name: &str) -> Option<&'static FunctionDef> {
    registry().get(name).copied()
}

/// A function's arguments, bound to its declared parameters, evaluated on demand.
///
/// Index `i` is the `i`-th declared parameter. Series arguments are evaluated when first asked
/// for, so re-fetching functions (`timeShift`, `movingAverage` with a window...) can instead
/// take the unevaluated [`Args::expr`] and evaluate it over another range with
/// [`Args::eval_with_range`].
pub struct Args<'c, 'a> {
    /// The request's context.
    pub ctx: &'c Context<'a>,
    /// The call as written (after pipes were desugared).
    pub call: &'c Call,
    /// The function's definition.
    pub def: &'static FunctionDef,
    bound: Vec<Option<&'c Arg>>,
    rest: Vec<&'c Arg>,
    /// Series lists handed over already evaluated, by parameter index ([`Args::with_series`]).
    given_series: Vec<Option<Vec<Series>>>,
    /// Already evaluated series lists for the `multiple` parameter.
    rest_series: Vec<Vec<Series>>,
}

/// The call an [`Args::with_series`] binding reports: there is no source text.
static NO_CALL: Call =
    Call { name: String::new(), args: Vec::new(), kwargs: Vec::new(), raw: String::new() };

impl<'c, 'a> Args<'c, 'a> {
    /// Binds `call`'s arguments to `def`'s parameters as Python binds them: positional first
    /// (the `multiple` parameter taking the rest), then keywords by name.
    ///
    /// # Errors
    ///
    /// Too many positional arguments, an unknown keyword, a parameter given twice, or a
    /// required parameter missing.
    pub fn bind(
        ctx: &'c Context<'a>,
        call: &'c Call,
        def: &'static FunctionDef,
    ) -> Result<Args<'c, 'a>> {
        let mut bound: Vec<Option<&'c Arg>> = vec![None; def.params.len()];
        let mut rest = Vec::new();
        let mut positional = call.args.iter();
        for (i, param) in def.params.iter().enumerate() {
            if param.multiple {
                rest.extend(positional.by_ref());
                break;
            }
            match positional.next() {
                Some(arg) => bound[i] = Some(arg),
                None => break,
            }
        }
        if positional.next().is_some() {
            return Err(Error::arg(format!(
                "{}() takes at most {} positional arguments ({} given)",
                def.name,
                def.params.len(),
                call.args.len()
            )));
        }
        for (key, arg) in &call.kwargs {
            let Some(i) =
                def.params.iter().position(|p| p.name == key || p.py_name == Some(key.as_str()))
            else {
                return Err(Error::arg(format!(
                    "{}() got an unexpected keyword argument '{key}'",
                    def.name
                )));
            };
            if def.params[i].multiple {
                rest.push(arg);
            } else if bound[i].replace(arg).is_some() {
                return Err(Error::arg(format!(
                    "{}() got multiple values for argument '{key}'",
                    def.name
                )));
            }
        }
        for (i, param) in def.params.iter().enumerate() {
            let missing = if param.multiple { rest.is_empty() } else { bound[i].is_none() };
            if param.required && missing && param.fallback.is_none() {
                return Err(Error::arg(format!(
                    "{}() missing required argument '{}'",
                    def.name, param.name
                )));
            }
        }
        Ok(Args { ctx, call, def, bound, rest, given_series: Vec::new(), rest_series: Vec::new() })
    }

    /// Binds already evaluated series lists positionally, as graphite-web calls a function by
    /// name from inside another one (`groupByNode(x, 1, "sumSeries")` calls
    /// `sumSeries(group)`, `reduceSeries` calls `f([a], [b])`): list `i` goes to parameter
    /// `i`, the `multiple` parameter takes the rest, and the other parameters keep their
    /// defaults. [`Args::call`] is then an empty call.
    ///
    /// # Errors
    ///
    /// More lists than the function takes, or a required parameter left without one.
    pub fn with_series(
        ctx: &'c Context<'a>,
        def: &'static FunctionDef,
        lists: Vec<Vec<Series>>,
    ) -> Result<Args<'c, 'a>> {
        let given = lists.len();
        let mut given_series: Vec<Option<Vec<Series>>> = vec![None; def.params.len()];
        let mut rest_series = Vec::new();
        let mut lists = lists.into_iter();
        for (i, param) in def.params.iter().enumerate() {
            if param.multiple {
                rest_series.extend(lists.by_ref());
                break;
            }
            match lists.next() {
                Some(list) => given_series[i] = Some(list),
                None => break,
            }
        }
        if lists.next().is_some() {
            return Err(Error::arg(format!(
                "{}() takes at most {} positional arguments ({given} given)",
                def.name,
                def.params.len(),
            )));
        }
        for (i, param) in def.params.iter().enumerate() {
            let missing =
                if param.multiple { rest_series.is_empty() } else { given_series[i].is_none() };
            if param.required && missing {
                return Err(Error::arg(format!(
                    "{}() missing required argument '{}'",
                    def.name, param.name
                )));
            }
        }
        let bound = vec![None; def.params.len()];
        Ok(Args { ctx, call: &NO_CALL, def, bound, rest: Vec::new(), given_series, rest_series })
    }

    /// The series list handed over for parameter `i` by [`Args::with_series`].
    fn given_list(&self, i: usize) -> Option<&Vec<Series>> {
        self.given_series.get(i).and_then(Option::as_ref)
    }

    /// The number of declared parameters.
    pub fn len(&self) -> usize {
        self.bound.len()
    }

    /// Whether the function declares no parameters.
    pub fn is_empty(&self) -> bool {
        self.bound.is_empty()
    }

    /// Whether parameter `i` was given (explicitly, not by default).
    pub fn given(&self, i: usize) -> bool {
        self.bound.get(i).is_some_and(Option::is_some) || self.given_list(i).is_some()
    }

    /// The unevaluated expression given for parameter `i`, if it is one.
    pub fn expr(&self, i: usize) -> Option<&'c Expr> {
        match self.bound.get(i).copied().flatten() {
            Some(Arg::Expr(e)) => Some(e),
            _ => None,
        }
    }

    /// The unevaluated arguments bound to the `multiple` parameter.
    pub fn rest_raw(&self) -> &[&'c Arg] {
        &self.rest
    }

    /// Parameter `i` evaluated: a series list, or a literal (the default when not given).
    ///
    /// # Errors
    ///
    /// Evaluating a series argument failed.
    pub fn value(&self, i: usize) -> Result<Value> {
        if let Some(list) = self.given_list(i) {
            return Ok(Value::Series(list.clone()));
        }
        match self.bound.get(i).copied().flatten() {
            Some(arg) => self.ctx.eval_arg(arg),
            None => Ok(Value::Literal(self.default_literal(i))),
        }
    }

    fn default_literal(&self, i: usize) -> Literal {
        self.def
            .params
            .get(i)
            .and_then(|p| p.default.or(p.fallback))
            .map_or(Literal::None, Default::literal)
    }

    /// The literal given for (or defaulted into) parameter `i`; `None` when it is a series.
    pub fn literal(&self, i: usize) -> Option<Literal> {
        if self.given_list(i).is_some() {
            return None;
        }
        match self.bound.get(i).copied().flatten() {
            Some(Arg::Literal(l)) => Some(l.clone()),
            Some(Arg::Expr(_)) => None,
            None => Some(self.default_literal(i)),
        }
    }

    /// Parameter `i` as a series list.
    ///
    /// # Errors
    ///
    /// It is a literal, or evaluation failed.
    pub fn series(&self, i: usize) -> Result<Vec<Series>> {
        match self.value(i)? {
            Value::Series(s) => Ok(s),
            Value::Literal(Literal::None) if !self.given(i) => Ok(Vec::new()),
            Value::Literal(l) => Err(self.type_error(i, "a series list", &l)),
        }
    }

    /// The series lists given for the `multiple` parameter (`*seriesLists`).
    ///
    /// # Errors
    ///
    /// One is a literal, or evaluation failed.
    pub fn series_rest(&self) -> Result<Vec<Vec<Series>>> {
        if !self.rest_series.is_empty() {
            return Ok(self.rest_series.clone());
        }
        self.rest
            .iter()
            .map(|arg| match self.ctx.eval_arg(arg)? {
                Value::Series(s) => Ok(s),
                Value::Literal(l) => Err(Error::arg(format!(
                    "{}(): expected a series list, got {}",
                    self.def.name,
                    literal_repr(&l)
                ))),
            })
            .collect()
    }

    /// The literals given for the `multiple` parameter (`*nodes`, `*tags`).
    ///
    /// # Errors
    ///
    /// One is a series expression.
    pub fn literal_rest(&self) -> Result<Vec<Literal>> {
        if !self.rest_series.is_empty() {
            return Err(Error::arg(format!("{}(): expected a literal argument", self.def.name)));
        }
        self.rest
            .iter()
            .map(|arg| match arg {
                Arg::Literal(l) => Ok(l.clone()),
                Arg::Expr(Expr::Path(p)) => Ok(Literal::Str(p.clone())),
                Arg::Expr(_) => {
                    Err(Error::arg(format!("{}(): expected a literal argument", self.def.name)))
                }
            })
            .collect()
    }

    /// Parameter `i` as a float (an integer is accepted, as Python does); `None` when null.
    ///
    /// # Errors
    ///
    /// A string that is not a number, or a series.
    pub fn opt_float(&self, i: usize) -> Result<Option<f64>> {
        match self.literal(i) {
            Some(Literal::Float(f)) => Ok(Some(f)),
            Some(Literal::Int(n)) => Ok(Some(n as f64)),
            Some(Literal::Bool(b)) => Ok(Some(f64::from(u8::from(b)))),
            Some(Literal::None) => Ok(None),
            Some(Literal::Str(s)) => carbon_proto::parse_py_float(s.trim())
                .map(Some)
                .ok_or_else(|| self.type_error(i, "a number", &Literal::Str(s))),
            None => Err(Error::arg(format!(
                "{}(): parameter '{}' must be a number, not a series",
                self.def.name,
                self.param_name(i)
            ))),
        }
    }

    /// Parameter `i` as a float, required.
    ///
    /// # Errors
    ///
    /// As [`Args::opt_float`], or null.
    pub fn float(&self, i: usize) -> Result<f64> {
        self.opt_float(i)?.ok_or_else(|| self.missing(i))
    }

    /// Parameter `i` as an integer (an integral float is accepted); `None` when null.
    ///
    /// # Errors
    ///
    /// A fractional number, a non-numeric string, or a series.
    pub fn opt_int(&self, i: usize) -> Result<Option<i64>> {
        match self.literal(i) {
            Some(Literal::Int(n)) => Ok(Some(n)),
            Some(Literal::Float(f)) if f.fract() == 0.0 && f.abs() < 9e18 => Ok(Some(f as i64)),
            Some(Literal::Bool(b)) => Ok(Some(i64::from(b))),
            Some(Literal::None) => Ok(None),
            Some(Literal::Str(s)) => s
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| self.type_error(i, "an integer", &Literal::Str(s))),
            Some(l) => Err(self.type_error(i, "an integer", &l)),
            None => Err(Error::arg(format!(
                "{}(): parameter '{}' must be an integer, not a series",
                self.def.name,
                self.param_name(i)
            ))),
        }
    }

    /// Parameter `i` as an integer, required.
    ///
    /// # Errors
    ///
    /// As [`Args::opt_int`], or null.
    pub fn int(&self, i: usize) -> Result<i64> {
        self.opt_int(i)?.ok_or_else(|| self.missing(i))
    }

    /// Parameter `i` as a string; `None` when null. Numbers and booleans are turned into
    /// their Python `str()`.
    ///
    /// # Errors
    ///
    /// A series expression other than a bare word (graphite-web would fetch it).
    pub fn opt_string(&self, i: usize) -> Result<Option<String>> {
        match self.bound.get(i).copied().flatten() {
            _ if self.given_list(i).is_some() => Err(Error::arg(format!(
                "{}(): parameter '{}' must be a quoted string, not a series",
                self.def.name,
                self.param_name(i)
            ))),
            Some(Arg::Expr(_)) => Err(Error::arg(format!(
                "{}(): parameter '{}' must be a quoted string",
                self.def.name,
                self.param_name(i)
            ))),
            _ => Ok(match self.literal(i) {
                Some(Literal::None) | None => None,
                Some(Literal::Str(s)) => Some(s),
                Some(l) => Some(l.to_string()),
            }),
        }
    }

    /// Parameter `i` as a string, required.
    ///
    /// # Errors
    ///
    /// As [`Args::opt_string`], or null.
    pub fn string(&self, i: usize) -> Result<String> {
        self.opt_string(i)?.ok_or_else(|| self.missing(i))
    }

    /// Parameter `i` as a boolean (graphite-web's `validateBoolean`: `true`/`false` strings in
    /// any case, 0 and 1, real booleans); null reads as false.
    ///
    /// # Errors
    ///
    /// Anything else.
    pub fn bool(&self, i: usize) -> Result<bool> {
        match self.literal(i) {
            Some(Literal::Bool(b)) => Ok(b),
            Some(Literal::None) => Ok(false),
            Some(Literal::Int(0)) => Ok(false),
            Some(Literal::Int(1)) => Ok(true),
            Some(Literal::Float(f)) if f == 0.0 || f == 1.0 => Ok(f == 1.0),
            Some(Literal::Str(s)) if s.eq_ignore_ascii_case("true") => Ok(true),
            Some(Literal::Str(s)) if s.eq_ignore_ascii_case("false") => Ok(false),
            Some(l) => Err(self.type_error(i, "a boolean", &l)),
            None => Err(Error::arg(format!(
                "{}(): parameter '{}' must be a boolean, not a series",
                self.def.name,
                self.param_name(i)
            ))),
        }
    }

    /// Python's `%s` of parameter `i`'s literal (for names such as `movingAverage(x,5)`).
    pub fn literal_text(&self, i: usize) -> String {
        self.literal(i).map_or_else(String::new, |l| l.to_string())
    }

    /// Evaluates `expr` over another time range (re-fetching functions: `timeShift`,
    /// `movingAverage` with a preview window, `hitcount` aligned, ...). `now` is unchanged.
    ///
    /// # Errors
    ///
    /// Evaluation failed.
    pub fn eval_with_range(&self, expr: &Expr, from: i64, until: i64) -> Result<Vec<Series>> {
        self.ctx.with_range(from, until).eval_series(expr)
    }

    fn param_name(&self, i: usize) -> &'static str {
        self.def.params.get(i).map_or("?", |p| p.name)
    }

    fn missing(&self, i: usize) -> Error {
        Error::arg(format!("{}(): parameter '{}' is required", self.def.name, self.param_name(i)))
    }

    fn type_error(&self, i: usize, wanted: &str, got: &Literal) -> Error {
        Error::arg(format!(
            "{}(): parameter '{}' must be {wanted}, got {}",
            self.def.name,
            self.param_name(i),
            literal_repr(got)
        ))
    }
}

/// Python's `repr()` of a literal (strings quoted).
pub fn literal_repr(l: &Literal) -> String {
    match l {
        Literal::Str(s) => format!("'{s}'"),
        other => other.to_string(),
    }
}
