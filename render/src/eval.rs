//! Evaluating targets: the request context, where data comes from, and the walk over the
//! syntax tree (graphite-web's `evaluateTarget` / `evaluateTokens`).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::time::Instant;

use crate::error::{Error, Result};
use crate::events::EventStore;
use crate::expr::{Arg, Call, Expr, Literal};
use crate::function::{self, Args};
use crate::series::Series;

/// One stored series as the data source returns it.
#[derive(Clone, Debug, PartialEq)]
pub struct Fetched {
    /// Timestamp of the first value.
    pub start: i64,
    /// End of the window (exclusive).
    pub end: i64,
    /// Seconds between values.
    pub step: i64,
    /// The values; `None` is null.
    pub values: Vec<Option<f64>>,
}

/// Where series come from: the store in the server, an in-memory map in tests.
pub trait DataSource: Send + Sync {
    /// The leaf metric names matching a graphite-web glob, sorted.
    ///
    /// # Errors
    ///
    /// An invalid pattern, or the index failed.
    fn find_leaves(&self, pattern: &str) -> Result<Vec<String>>;

    /// The series names matching tag expressions (`seriesByTag`, `/tags/findSeries`).
    ///
    /// # Errors
    ///
    /// An invalid expression (for example, every expression matches the empty value).
    fn find_tagged(&self, exprs: &[String]) -> Result<Vec<String>>;

    /// Reads `name` over `(from, until]` as graphite-web's reader does, with `now` deciding
    /// the archive. `None` when the metric does not exist.
    ///
    /// # Errors
    ///
    /// The storage failed.
    fn fetch(&self, name: &str, from: i64, until: i64, now: i64) -> Result<Option<Fetched>>;

    /// Fetches every series `query` names in one go, for sources that answer a whole pattern
    /// at once: a cluster sends the pattern to each peer's `/render`, as graphite-web's
    /// remote finder does, and merges the answers. `None` (the default): the evaluator finds
    /// the names, then fetches each.
    ///
    /// # Errors
    ///
    /// As [`DataSource::find_leaves`] and [`DataSource::fetch`].
    fn fetch_query(
        &self,
        _query: Query<'_>,
        _from: i64,
        _until: i64,
        _now: i64,
    ) -> Result<Option<Vec<(String, Fetched)>>> {
        Ok(None)
    }
}

/// What a target fetches: a glob, or a `seriesByTag()` call.
#[derive(Clone, Copy, Debug)]
pub enum Query<'a> {
    /// A path pattern.
    Glob(&'a str),
    /// `seriesByTag(...)`: the call as written and its tag expressions.
    Tagged {
        /// The call's text (what a peer is sent as the target).
        expression: &'a str,
        /// The tag expressions.
        exprs: &'a [String],
    },
}

/// Limits on what one request may cost (graphite-reference: not in graphite-web; ours).
#[derive(Clone, Debug)]
pub struct Limits {
    /// Most series one request may fetch.
    pub max_series: usize,
    /// Most raw values one request may fetch.
    pub max_points: usize,
    /// When the request must give up.
    pub deadline: Option<Instant>,
}

impl std::default::Default for Limits {
    fn default() -> Limits {
        Limits { max_series: 100_000, max_points: 50_000_000, deadline: None }
    }
}

/// An evaluated argument: a series list or a literal.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// A list of series.
    Series(Vec<Series>),
    /// A literal.
    Literal(Literal),
}

/// Shared accounting across the re-ranged contexts of one request.
#[derive(Debug, Default)]
struct Usage {
    series: Cell<usize>,
    points: Cell<usize>,
    /// The running totals of `stacked()`, by stack name (`None` when a target passes `None`
    /// as the name): graphite-web keeps them in the request context (`totalStack`), so a
    /// stack continues across the targets of one request.
    stacks: RefCell<HashMap<Option<String>, Vec<f64>>>,
}

/// What one request evaluates against: its time range, defaults and data.
pub struct Context<'a> {
    /// Start of the range (epoch seconds).
    pub from: i64,
    /// End of the range (epoch seconds).
    pub until: i64,
    /// "Now" for archive selection and relative times.
    pub now: i64,
    /// The request's `xFilesFactor` (graphite-web's DEFAULT_XFILES_FACTOR, 0, when absent).
    pub x_files_factor: f64,
    /// The time zone of the request (`tz`), for functions that align to calendar days.
    pub tz: crate::time::TimeZone,
    /// Where series come from.
    pub source: &'a dyn DataSource,
    /// What the request may cost.
    pub limits: &'a Limits,
    /// The events `events()` counts (graphite-web's events database); `None` when the caller
    /// has none, and then `events()` finds nothing.
    pub events: Option<&'a EventStore>,
    usage: &'a UsageCell,
    /// The value the latest `setXFilesFactor()` stored: graphite-web writes it into the shared
    /// request context, where it becomes the default of everything evaluated after it.
    x_files_factor_set: Cell<Option<f64>>,
}

/// The request-wide usage counters, owned by whoever creates the first [`Context`].
#[derive(Debug, Default)]
pub struct UsageCell(Usage);

impl<'a> Context<'a> {
    /// A context over `[from, until]` reading from `source`.
    pub fn new(
        source: &'a dyn DataSource,
        limits: &'a Limits,
        usage: &'a UsageCell,
        from: i64,
        until: i64,
        now: i64,
    ) -> Context<'a> {
        Context {
            from,
            until,
            now,
            x_files_factor: 0.0,
            tz: crate::time::TimeZone::utc(),
            source,
            limits,
            events: None,
            usage,
            x_files_factor_set: Cell::new(None),
        }
    }

    /// The same request over another range (re-fetching functions). Like graphite-web's
    /// `requestContext.copy()`, it starts from the current xFilesFactor, and what it sets does
    /// not come back.
    pub fn with_range(&self, from: i64, until: i64) -> Context<'a> {
        Context {
            from,
            until,
            now: self.now,
            x_files_factor: self.effective_x_files_factor(),
            tz: self.tz.clone(),
            source: self.source,
            limits: self.limits,
            events: self.events,
            usage: self.usage,
            x_files_factor_set: Cell::new(None),
        }
    }

    /// The xFilesFactor functions default to at this point of the evaluation: the request's,
    /// or the one a `setXFilesFactor()` evaluated earlier stored (graphite-web's
    /// `requestContext.get('xFilesFactor')`).
    pub fn effective_x_files_factor(&self) -> f64 {
        self.x_files_factor_set.get().unwrap_or(self.x_files_factor)
    }

    /// Stores the xFilesFactor that later functions and fetches default to
    /// (`setXFilesFactor()`'s `requestContext['xFilesFactor'] = ...`).
    pub fn set_x_files_factor(&self, x_files_factor: f64) {
        self.x_files_factor_set.set(Some(x_files_factor));
    }

    /// Takes the running totals of the stack `name` for `stacked()` (empty for a new stack);
    /// give them back with [`Context::put_stack`].
    pub fn take_stack(&self, name: Option<&str>) -> Vec<f64> {
        let mut stacks = self.usage.0.stacks.borrow_mut();
        stacks.remove(&name.map(String::from)).unwrap_or_default()
    }

    /// Stores the running totals of the stack `name`, for the next `stacked()` of the request.
    pub fn put_stack(&self, name: Option<&str>, totals: Vec<f64>) {
        self.usage.0.stacks.borrow_mut().insert(name.map(String::from), totals);
    }

    /// Evaluates a whole target: a series list in graphite-web's order. A literal target
    /// (`5`) yields nothing, as in graphite-web.
    ///
    /// # Errors
    ///
    /// An unknown function, bad arguments, a limit, or a storage failure.
    pub fn eval_series(&self, expr: &Expr) -> Result<Vec<Series>> {
        match self.eval_expr(expr)? {
            Value::Series(s) => Ok(s),
            Value::Literal(_) => Ok(Vec::new()),
        }
    }

    /// Evaluates one argument.
    ///
    /// # Errors
    ///
    /// As [`Context::eval_series`].
    pub fn eval_arg(&self, arg: &Arg) -> Result<Value> {
        match arg {
            Arg::Literal(l) => Ok(Value::Literal(l.clone())),
            Arg::Expr(e) => self.eval_expr(e),
        }
    }

    fn eval_expr(&self, expr: &Expr) -> Result<Value> {
        self.check_deadline()?;
        match expr {
            Expr::Path(pattern) => self.fetch_path(pattern).map(Value::Series),
            Expr::Call(call) => self.eval_call(call),
            Expr::Template { .. } => {
                // Templates are applied before evaluation; one left here was nested where
                // graphite-web does not allow it.
                Err(Error::arg(
                    "invalid template() syntax, only string/numeric arguments are allowed",
                ))
            }
        }
    }

    fn eval_call(&self, call: &Call) -> Result<Value> {
        if call.name == "seriesByTag" {
            return self.fetch_tagged(call).map(Value::Series);
        }
        if call.name == "template" {
            return Err(Error::arg(
                "invalid template() syntax, only string/numeric arguments are allowed",
            ));
        }
        let def = function::lookup(&call.name)
            .ok_or_else(|| Error::UnknownFunction(call.name.clone()))?;
        let args = Args::bind(self, call, def)?;
        match (def.call)(&args) {
            Ok(series) => Ok(Value::Series(series)),
            // graphite-web: NormalizeEmptyResultError makes the function return [].
            Err(Error::NormalizeEmpty) => Ok(Value::Series(Vec::new())),
            Err(e) => Err(e),
        }
    }

    /// Fetches every metric matching `pattern`, named after the metric, with `pattern` as the
    /// path expression, sorted by name.
    fn fetch_path(&self, pattern: &str) -> Result<Vec<Series>> {
        let query = Query::Glob(pattern);
        if let Some(found) = self.source.fetch_query(query, self.from, self.until, self.now)? {
            return self.collect_fetched(found, pattern);
        }
        let names = self.source.find_leaves(pattern)?;
        self.fetch_names(&names, pattern)
    }

    fn fetch_tagged(&self, call: &Call) -> Result<Vec<Series>> {
        let mut exprs = Vec::with_capacity(call.args.len());
        for arg in &call.args {
            match arg {
                Arg::Literal(Literal::Str(s)) => exprs.push(s.clone()),
                _ => {
                    return Err(Error::arg(
                        "seriesByTag(): all arguments must be quoted tag expressions",
                    ));
                }
            }
        }
        if exprs.is_empty() {
            return Err(Error::arg("seriesByTag(): at least one tag expression is required"));
        }
        let query = Query::Tagged { expression: &call.raw, exprs: &exprs };
        if let Some(found) = self.source.fetch_query(query, self.from, self.until, self.now)? {
            return self.collect_fetched(found, &call.raw);
        }
        let names = self.source.find_tagged(&exprs)?;
        self.fetch_names(&names, &call.raw)
    }

    /// Series from a [`DataSource::fetch_query`] answer, counted against the limits.
    fn collect_fetched(
        &self,
        found: Vec<(String, Fetched)>,
        path_expression: &str,
    ) -> Result<Vec<Series>> {
        self.count_series(found.len())?;
        let mut out: Vec<Series> = Vec::with_capacity(found.len());
        for (name, f) in found {
            out.push(self.series_from(name, f, path_expression)?);
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out.dedup_by(|a, b| a.name == b.name);
        Ok(out)
    }

    fn count_series(&self, n: usize) -> Result<()> {
        let usage = &self.usage.0;
        let total = usage.series.get() + n;
        if total > self.limits.max_series {
            return Err(Error::Limit(format!(
                "the request matches more than {} series (limit max_series)",
                self.limits.max_series
            )));
        }
        usage.series.set(total);
        Ok(())
    }

    fn series_from(&self, name: String, f: Fetched, path_expression: &str) -> Result<Series> {
        let usage = &self.usage.0;
        let points = usage.points.get() + f.values.len();
        if points > self.limits.max_points {
            return Err(Error::Limit(format!(
                "the request reads more than {} points (limit max_points)",
                self.limits.max_points
            )));
        }
        usage.points.set(points);
        let mut s = Series::new(name, f.start, f.end, f.step, f.values);
        s.path_expression = path_expression.to_string();
        s.x_files_factor = self.effective_x_files_factor();
        Ok(s)
    }

    fn fetch_names(&self, names: &[String], path_expression: &str) -> Result<Vec<Series>> {
        self.count_series(names.len())?;
        let mut out: Vec<Series> = Vec::with_capacity(names.len());
        for name in names {
            self.check_deadline()?;
            let Some(f) = self.source.fetch(name, self.from, self.until, self.now)? else {
                continue;
            };
            out.push(self.series_from(name.clone(), f, path_expression)?);
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out.dedup_by(|a, b| a.name == b.name);
        Ok(out)
    }

    fn check_deadline(&self) -> Result<()> {
        if let Some(deadline) = self.limits.deadline
            && Instant::now() > deadline
        {
            return Err(Error::Timeout(0));
        }
        Ok(())
    }
}
