//! The Alias family: functions that only rename series (graphite-web's `alias`,
//! `aliasByNode`, `aliasByTags`, `aliasByMetric`, `aliasSub`, `aliasQuery`, `legendValue`).
//!
//! Renaming touches `name` only: the path expression and the tags stay, so a combining function
//! applied afterwards still names its result after the original path (graphite-web does the
//! same; see graphite-reference §4.6).
//!
//! The module also holds the helpers shared with the filter family, kept here because this file
//! owns them: Python `re` semantics on top of the `regex` crate ([`PyRegex`]) and graphite-web's
//! node/tag extraction ([`agg_key`]).

use std::collections::HashMap;

use regex::Regex;

use super::common::first_path_expression;
use crate::aggfunc::AggFunc;
use crate::error::{Error, Result};
use crate::expr::Literal;
use crate::function::{Args, FunctionDef, Param, ParamType};
use crate::pyfmt;
use crate::series::Series;

/// The functions this family defines.
pub(crate) const FUNCTIONS: &[FunctionDef] = &[
    FunctionDef {
        name: "alias",
        group: "Alias",
        description: "Gives every series of the list the same display name, `newName`.\n\n\
            ```\n&target=alias(Sales.widgets.largeBlue,\"Large Blue Widgets\")\n```\n\n\
            Only the legend name changes: the path expression and the tags are kept.",
        params: &[
            Param::new("seriesList", ParamType::SeriesList).required(),
            Param::new("newName", ParamType::String).required(),
        ],
        aggregator: false,
        call: alias,
    },
    FunctionDef {
        name: "aliasByMetric",
        group: "Alias",
        description: "Names each series after the last dot-separated part of its metric path.\n\n\
            ```\n&target=aliasByMetric(carbon.agents.graphite.creates)\n```\n\n\
            gives `creates`. For a name wrapped in functions the innermost path is used.",
        params: &[Param::new("seriesList", ParamType::SeriesList).required()],
        aggregator: false,
        call: alias_by_metric,
    },
    FunctionDef {
        name: "aliasByNode",
        group: "Alias",
        description: "Names each series after one or more of its nodes (0-based, negative counts \
            from the end) joined with dots; a non-numeric argument names a tag instead.\n\n\
            ```\n&target=aliasByNode(ganglia.*.cpu.load5,1)\n\
            &target=seriesByTag(\"name=~cpu.load.*\", \"server=~server[1-9]+\")|aliasByNode(\"server\", 1)\n```\n\n\
            When the name is wrapped in functions, the nodes come from the first path inside it.",
        params: &[
            Param::new("seriesList", ParamType::SeriesList).required(),
            Param::new("nodes", ParamType::NodeOrTag).required().multiple(),
        ],
        aggregator: false,
        call: alias_by_node,
    },
    FunctionDef {
        name: "aliasByTags",
        group: "Alias",
        description: "Names each series after the values of the given tags and/or nodes, joined \
            with dots.\n\n\
            ```\n&target=seriesByTag(\"name=cpu\")|aliasByTags(\"server\",\"name\")\n```\n\n\
            The same as `aliasByNode`, which also accepts tag names.",
        params: &[
            Param::new("seriesList", ParamType::SeriesList).required(),
            Param::new("tags", ParamType::NodeOrTag).required().multiple(),
        ],
        aggregator: false,
        call: alias_by_node,
    },
    FunctionDef {
        name: "aliasQuery",
        group: "Alias",
        description: "Names each series from the latest value of a related query: the series \
            name is rewritten with the regular expression `search` and `replace` into a target, \
            that target is evaluated, and its last non-null value is put into `newName` with a \
            printf-style format.\n\n\
            ```\n&target=aliasQuery(channel.power.*,\"channel\\.power\\.([0-9]+)\",\"channel.frequency.\\1\", \"Channel %d MHz\")\n```",
        params: &[
            Param::new("seriesList", ParamType::SeriesList).required(),
            Param::new("search", ParamType::String).required(),
            Param::new("replace", ParamType::String).required(),
            Param::new("newName", ParamType::String).required(),
        ],
        aggregator: false,
        call: alias_query,
    },
    FunctionDef {
        name: "aliasSub",
        group: "Alias",
        description: "Rewrites each series name with a regular expression search and replace \
            (Python syntax: `\\1` or `\\g<1>` refer to groups; every match is replaced).\n\n\
            ```\n&target=aliasSub(ip.*TCP*,\"^.*TCP(\\d+)\",\"\\1\")\n```",
        params: &[
            Param::new("seriesList", ParamType::SeriesList).required(),
            Param::new("search", ParamType::String).required(),
            Param::new("replace", ParamType::String).required(),
        ],
        aggregator: false,
        call: alias_sub,
    },
    FunctionDef {
        name: "legendValue",
        group: "Alias",
        description: "Appends summary values to each series name: any of the aggregation \
            functions (`last`, `avg`, `total`, `min`, `max`, ...). A final `si` or `binary` \
            formats the values with unit prefixes in aligned columns.\n\n\
            ```\n&target=legendValue(Sales.widgets.largeBlue, 'avg', 'max', 'si')\n```",
        params: &[
            Param::new("seriesList", ParamType::SeriesList).required(),
            Param::new("valuesTypes", ParamType::String)
                .py_name("valueTypes")
                .multiple()
                .options(LEGEND_VALUE_OPTIONS),
        ],
        aggregator: false,
        call: legend_value,
    },
];

/// legendValue's options as graphite-web lists them: every aggregation function name, its
/// deprecated `<name>Series` form, and the two unit systems, sorted.
const LEGEND_VALUE_OPTIONS: &[&str] = &[
    "average",
    "averageSeries",
    "avg",
    "avgSeries",
    "avg_zero",
    "avg_zeroSeries",
    "binary",
    "count",
    "countSeries",
    "current",
    "currentSeries",
    "diff",
    "diffSeries",
    "last",
    "lastSeries",
    "max",
    "maxSeries",
    "median",
    "medianSeries",
    "min",
    "minSeries",
    "multiply",
    "multiplySeries",
    "range",
    "rangeOf",
    "rangeOfSeries",
    "rangeSeries",
    "si",
    "stddev",
    "stddevSeries",
    "sum",
    "sumSeries",
    "total",
    "totalSeries",
];

fn alias(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let mut list = args.series(0)?;
    let new_name = args.string(1)?;
    for s in &mut list {
        s.name.clone_from(&new_name);
    }
    Ok(list)
}

fn alias_by_node(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let mut list = args.series(0)?;
    let nodes = args.literal_rest()?;
    for s in &mut list {
        s.name = agg_key(s, &nodes)?;
    }
    Ok(list)
}

fn alias_by_metric(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let mut list = args.series(0)?;
    for s in &mut list {
        s.name = last_metric_node(&s.name);
    }
    Ok(list)
}

fn alias_sub(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let mut list = args.series(0)?;
    let re = PyRegex::new(args.def.name, &args.string(1)?)?;
    let template = re.template(args.def.name, &args.string(2)?)?;
    for s in &mut list {
        s.name = re.sub(&template, &s.name);
    }
    Ok(list)
}

fn alias_query(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let mut list = args.series(0)?;
    let re = PyRegex::new(args.def.name, &args.string(1)?)?;
    let template = re.template(args.def.name, &args.string(2)?)?;
    let new_name = args.string(3)?;
    for s in &mut list {
        let query = re.sub(&template, &s.name);
        let found = eval_target(args, &query)?;
        let Some(first) = found.first() else {
            return Err(Error::arg(format!("No series found with query: {query}")));
        };
        let Some(current) = first.consolidated().into_iter().rev().flatten().next() else {
            return Err(Error::arg(format!("Cannot get last value of series: {}", first.name)));
        };
        s.name = percent_format(&new_name, current)
            .map_err(|e| Error::arg(format!("aliasQuery(): newName {new_name:?}: {e}")))?;
    }
    Ok(list)
}

/// Parses and evaluates a target built at run time (aliasQuery's rewritten names), over the
/// request's range as graphite-web's `evaluateTarget` does. A blank target yields nothing.
fn eval_target(args: &Args<'_, '_>, target: &str) -> Result<Vec<Series>> {
    if target.trim().is_empty() {
        return Ok(Vec::new());
    }
    let expr = crate::parse::parse(target)?.apply_templates(&Default::default());
    args.eval_with_range(&expr, args.ctx.from, args.ctx.until)
}

fn legend_value(args: &Args<'_, '_>) -> Result<Vec<Series>> {
    let mut list = args.series(0)?;
    let mut types: Vec<String> = args.literal_rest()?.iter().map(Literal::to_string).collect();
    let system = match types.last().map(String::as_str) {
        Some(unit @ ("si" | "binary")) => {
            let unit = unit.to_string();
            types.pop();
            Some(unit)
        }
        Some(_) => None,
        None => return Err(Error::arg("legendValue(): at least one value type is required")),
    };
    for value_type in &types {
        let func = AggFunc::parse(value_type);
        for s in &mut list {
            // An unknown name is shown as `(?)` rather than rejected, as graphite-web does.
            let value = func.map(|f| LegendValue::of(f, s));
            match &system {
                None => {
                    let text = value.map_or_else(|| "(?)".to_string(), LegendValue::py_str);
                    s.name = format!("{} ({value_type}: {text})", s.name);
                }
                Some(system) => {
                    let formatted = match value {
                        None => "(?)".to_string(),
                        Some(LegendValue::Missing) => "None".to_string(),
                        Some(LegendValue::Float(v)) => {
                            let (v, prefix) = format_units(v, system);
                            format!("{v:.2}{prefix}")
                        }
                        Some(LegendValue::Int(n)) => {
                            let (v, prefix) = format_units(n as f64, system);
                            format!("{v:.2}{prefix}")
                        }
                    };
                    s.name = format!("{:<20}{value_type:<5}{formatted:<10}", s.name);
                }
            }
        }
    }
    Ok(list)
}

/// An aggregation result as Python holds it: `count` is an int, the others floats or None.
#[derive(Clone, Copy)]
enum LegendValue {
    Missing,
    Int(i64),
    Float(f64),
}

impl LegendValue {
    fn of(func: AggFunc, s: &Series) -> LegendValue {
        match (func, crate::functions::filter::series_agg(func, s)) {
            (_, None) => LegendValue::Missing,
            (AggFunc::Count, Some(v)) => LegendValue::Int(v as i64),
            (_, Some(v)) => LegendValue::Float(v),
        }
    }

    /// Python's `str()`.
    fn py_str(self) -> String {
        match self {
            LegendValue::Missing => "None".into(),
            LegendValue::Int(n) => n.to_string(),
            LegendValue::Float(v) => pyfmt::float_repr(v),
        }
    }
}

/// graphite-web's `format_units(v, system=...)` without a step: scales by the largest prefix
/// not above `|v|` and snaps values a hair above a whole number down to it.
fn format_units(v: f64, system: &str) -> (f64, &'static str) {
    const SI: &[(&str, f64)] = &[("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)];
    const BINARY: &[(&str, f64)] = &[
        ("Pi", 1_125_899_906_842_624.0),
        ("Ti", 1_099_511_627_776.0),
        ("Gi", 1_073_741_824.0),
        ("Mi", 1_048_576.0),
        ("Ki", 1024.0),
    ];
    let units = if system == "binary" { BINARY } else { SI };
    let snap = |x: f64| if x - x.floor() < 0.000_000_000_01 && x > 1.0 { x.floor() } else { x };
    for (prefix, size) in units {
        if v.abs() >= *size {
            let v2 = v / size;
            // graphite-web tests `v > 1` (not `v2`) here; reproduced.
            let v2 = if v2 - v2.floor() < 0.000_000_000_01 && v > 1.0 { v2.floor() } else { v2 };
            return (v2, prefix);
        }
    }
    (snap(v), "")
}

/// graphite-web's `substr(name, -1)`, which is what `aliasByMetric` runs: the text between the
/// last `(` and the first `)`, its last dot-separated part, cut at the first comma.
fn last_metric_node(name: &str) -> String {
    let left = name.rfind('(').map_or(0, |i| i + 1);
    let right = name.find(')').unwrap_or(name.len());
    let clean = name.get(left..right).unwrap_or("");
    let last = clean.rsplit('.').next().unwrap_or("");
    strip_from_comma(last)
}

/// `re.sub(',.*$', '', text)`: drops everything from the first comma that is followed by no
/// newline before the end (or before a final newline, which `$` allows and which is kept).
fn strip_from_comma(text: &str) -> String {
    let (body, tail) = match text.strip_suffix('\n') {
        Some(body) => (body, "\n"),
        None => (text, ""),
    };
    for (i, _) in body.match_indices(',') {
        if !body[i..].contains('\n') {
            return format!("{}{tail}", &body[..i]);
        }
    }
    text.to_string()
}

/// graphite-web's `aggKey(series, nodes)`: the selected nodes or tags of a series joined with
/// dots. Nodes index the series name, or the first path expression inside it when the name
/// ends with `)`; the tag part after `;` is ignored. An integer out of range, or any other
/// literal, is looked up as a tag name (missing tags give an empty string).
///
/// # Errors
///
/// A `None` node, which graphite-web cannot handle either.
pub(crate) fn agg_key(series: &Series, nodes: &[Literal]) -> Result<String> {
    let path = if series.name.ends_with(')') { first_path_expression(&series.name) } else { None };
    let base = path.as_deref().filter(|p| !p.is_empty()).unwrap_or(&series.name);
    let base = base.split(';').next().unwrap_or("");
    let parts: Vec<&str> = base.split('.').collect();
    let mut out = Vec::with_capacity(nodes.len());
    for node in nodes {
        let index = match node {
            Literal::Int(i) => Some(*i),
            Literal::Bool(b) => Some(i64::from(*b)),
            // graphite-web fails on an integral float index; it is read as the integer here.
            Literal::Float(f) if f.fract() == 0.0 && f.abs() < 9e15 => Some(*f as i64),
            Literal::None => {
                return Err(Error::arg("a node must be an integer or a tag name, not None"));
            }
            _ => None,
        };
        let from_name = index.and_then(|i| py_index(parts.len(), i)).map(|i| parts[i]);
        let value = match from_name {
            Some(part) => part.to_string(),
            None => series.tags.get(&node.to_string()).cloned().unwrap_or_default(),
        };
        out.push(value);
    }
    Ok(out.join("."))
}

/// Python's list indexing: a negative index counts from the end; `None` when out of range.
pub(crate) fn py_index(len: usize, i: i64) -> Option<usize> {
    let len = i64::try_from(len).ok()?;
    let i = if i < 0 { i + len } else { i };
    (0..len).contains(&i).then_some(i as usize)
}

/// A Python `re` pattern run by the `regex` crate, with Python's `re.sub` semantics
/// (replacement templates, empty matches).
///
/// The `regex` crate has no look-around and no back-references; such patterns are rejected
/// with [`Error::InvalidArgument`] instead of silently matching something else. A few Python
/// spellings are translated: `\Z`, a `{` that is not a repetition, `[` inside a class.
pub(crate) struct PyRegex {
    re: Regex,
    names: HashMap<String, usize>,
}

/// One piece of a parsed replacement template.
#[derive(Debug, PartialEq)]
enum Piece {
    Text(String),
    Group(usize),
}

/// A parsed Python replacement template (`\1`, `\g<name>`, `\n`, ...).
#[derive(Debug, PartialEq)]
pub(crate) struct Template(Vec<Piece>);

impl PyRegex {
    /// Compiles a Python pattern.
    ///
    /// # Errors
    ///
    /// The pattern is invalid, or uses a feature the `regex` crate lacks.
    pub(crate) fn new(function: &str, pattern: &str) -> Result<PyRegex> {
        let re = Regex::new(&translate_pattern(pattern)).map_err(|e| {
            let detail = e.to_string().replace('\n', " ");
            Error::arg(format!(
                "{function}(): invalid or unsupported regular expression {pattern:?}: {detail}"
            ))
        })?;
        let names = re
            .capture_names()
            .enumerate()
            .filter_map(|(i, n)| n.map(|n| (n.to_string(), i)))
            .collect();
        Ok(PyRegex { re, names })
    }

    /// Python's `pattern.search(text) is not None`.
    pub(crate) fn is_match(&self, text: &str) -> bool {
        self.re.is_match(text)
    }

    /// Parses a replacement template as Python's `re` does.
    ///
    /// # Errors
    ///
    /// A reference to a group the pattern lacks, a bad `\g<...>`, an unknown letter escape, or
    /// an octal escape above `\377` (the errors Python raises).
    pub(crate) fn template(&self, function: &str, repl: &str) -> Result<Template> {
        parse_template(repl, self.re.captures_len() - 1, &self.names)
            .map_err(|e| Error::arg(format!("{function}(): replacement {repl:?}: {e}")))
    }

    /// Python's `re.sub(pattern, template, text)`: every match replaced, left to right, with
    /// empty matches allowed right after a non-empty one (Python 3.7+).
    ///
    /// Where Python would, after an empty match, prefer a non-empty alternative at the same
    /// position (`|b`), this moves on one character instead; no realistic alias pattern is
    /// affected.
    pub(crate) fn sub(&self, template: &Template, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut last = 0;
        let mut pos = 0;
        let mut after_empty = false;
        while pos <= text.len() {
            let Some(caps) = self.re.captures_at(text, pos) else { break };
            let Some(m) = caps.get(0) else { break };
            if after_empty && m.start() == pos && m.end() == pos {
                match text[pos..].chars().next() {
                    Some(c) => {
                        pos += c.len_utf8();
                        after_empty = false;
                        continue;
                    }
                    None => break,
                }
            }
            out.push_str(&text[last..m.start()]);
            for piece in &template.0 {
                match piece {
                    Piece::Text(t) => out.push_str(t),
                    Piece::Group(g) => out.push_str(caps.get(*g).map_or("", |c| c.as_str())),
                }
            }
            last = m.end();
            after_empty = m.start() == m.end();
            pos = m.end();
        }
        out.push_str(&text[last..]);
        out
    }
}

/// Rewrites the Python spellings the `regex` crate reads differently (see [`PyRegex`]).
fn translate_pattern(pattern: &str) -> String {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut i = 0;
    let mut in_class = false;
    let mut class_start = false;
    while let Some(&c) = chars.get(i) {
        let next = chars.get(i + 1).copied();
        if c == '\\' {
            match next {
                Some('Z') if !in_class => out.push_str("\\z"),
                Some(n) => {
                    out.push('\\');
                    out.push(n);
                }
                None => out.push('\\'),
            }
            i += 2;
            class_start = false;
            continue;
        }
        if in_class {
            match c {
                ']' if !class_start => in_class = false,
                '[' => out.push('\\'),
                // `&&` and `~~` are set operations for `regex`, plain characters for Python.
                '&' | '~' if next == Some(c) => {
                    out.push(c);
                    out.push('\\');
                    out.push(c);
                    i += 2;
                    class_start = false;
                    continue;
                }
                _ => {}
            }
            out.push(c);
            class_start = false;
            i += 1;
            continue;
        }
        match c {
            '[' => {
                in_class = true;
                class_start = true;
                out.push('[');
                if next == Some('^') {
                    out.push('^');
                    i += 1;
                }
                i += 1;
            }
            '{' => match repetition(&chars[i + 1..]) {
                Some((text, len)) => {
                    out.push_str(&text);
                    i += 1 + len;
                }
                None => {
                    out.push_str("\\{");
                    i += 1;
                }
            },
            '}' => {
                out.push_str("\\}");
                i += 1;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// A Python repetition after `{`: `m}`, `m,}`, `,n}`, `m,n}`, `,}`. Returns its `regex`
/// spelling and how many characters it used, or `None` when the `{` is a literal.
fn repetition(rest: &[char]) -> Option<(String, usize)> {
    let lo: String = rest.iter().take_while(|c| c.is_ascii_digit()).collect();
    let mut i = lo.len();
    let hi = if rest.get(i) == Some(&',') {
        i += 1;
        let hi: String = rest[i..].iter().take_while(|c| c.is_ascii_digit()).collect();
        i += hi.len();
        Some(hi)
    } else {
        None
    };
    if rest.get(i) != Some(&'}') || (lo.is_empty() && hi.is_none()) {
        return None;
    }
    let lo = if lo.is_empty() { "0".to_string() } else { lo };
    let text = match hi {
        None => format!("{{{lo}}}"),
        Some(hi) => format!("{{{lo},{hi}}}"),
    };
    Some((text, i + 1))
}

/// Python's `sre_parse.parse_template`.
fn parse_template(
    repl: &str,
    groups: usize,
    names: &HashMap<String, usize>,
) -> std::result::Result<Template, String> {
    let chars: Vec<char> = repl.chars().collect();
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut i = 0;
    let group = |g: usize, text: &mut String, pieces: &mut Vec<Piece>| {
        if g > groups {
            return Err(format!("invalid group reference {g}"));
        }
        if !text.is_empty() {
            pieces.push(Piece::Text(std::mem::take(text)));
        }
        pieces.push(Piece::Group(g));
        Ok(())
    };
    while let Some(&c) = chars.get(i) {
        i += 1;
        if c != '\\' {
            text.push(c);
            continue;
        }
        let Some(&e) = chars.get(i) else { return Err("bad escape (end of pattern)".into()) };
        i += 1;
        match e {
            'g' => {
                if chars.get(i) != Some(&'<') {
                    return Err("missing <".into());
                }
                let Some(len) = chars[i + 1..].iter().position(|&c| c == '>') else {
                    return Err("missing >, unterminated name".into());
                };
                let name: String = chars[i + 1..i + 1 + len].iter().collect();
                i += len + 2;
                let index = if name.is_empty() {
                    return Err("missing group name".into());
                } else if name.chars().all(|c| c.is_ascii_digit()) {
                    name.parse::<usize>().map_err(|_| format!("invalid group reference {name}"))?
                } else if is_identifier(&name) {
                    *names.get(&name).ok_or_else(|| format!("unknown group name '{name}'"))?
                } else {
                    return Err(format!("bad character in group name '{name}'"));
                };
                group(index, &mut text, &mut pieces)?;
            }
            '0' => {
                let digits: String =
                    chars[i..].iter().take(2).take_while(|c| is_octal(**c)).collect();
                i += digits.len();
                let code = u32::from_str_radix(&format!("0{digits}"), 8).unwrap_or(0);
                text.push(char::from_u32(code).unwrap_or('\0'));
            }
            '1'..='9' => {
                let mut digits = e.to_string();
                if let Some(&d) = chars.get(i).filter(|d| d.is_ascii_digit()) {
                    digits.push(d);
                    i += 1;
                    if let Some(&d3) = chars.get(i).filter(|d| is_octal(**d))
                        && is_octal(e)
                        && is_octal(d)
                    {
                        digits.push(d3);
                        i += 1;
                        let code = u32::from_str_radix(&digits, 8).unwrap_or(0);
                        if code > 0o377 {
                            return Err(format!(
                                "octal escape value \\{digits} outside of range 0-0o377"
                            ));
                        }
                        text.push(char::from_u32(code).unwrap_or('\0'));
                        continue;
                    }
                }
                group(digits.parse().unwrap_or(usize::MAX), &mut text, &mut pieces)?;
            }
            'a' => text.push('\u{7}'),
            'b' => text.push('\u{8}'),
            'f' => text.push('\u{c}'),
            'n' => text.push('\n'),
            'r' => text.push('\r'),
            't' => text.push('\t'),
            'v' => text.push('\u{b}'),
            '\\' => text.push('\\'),
            e if e.is_ascii_alphabetic() => return Err(format!("bad escape \\{e}")),
            e => {
                text.push('\\');
                text.push(e);
            }
        }
    }
    if !text.is_empty() {
        pieces.push(Piece::Text(text));
    }
    Ok(Template(pieces))
}

fn is_octal(c: char) -> bool {
    ('0'..='7').contains(&c)
}

/// Python's `str.isidentifier()` for the ASCII subset plus any non-ASCII letters.
fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c == '_' || c.is_alphabetic())
        && chars.all(|c| c == '_' || c.is_alphanumeric())
}

/// Python's `fmt % value` with one float argument (aliasQuery's `newName`): `%d %i %u %f %F
/// %e %E %g %G %s %r %a` with flags `-+ 0#`, a width and a precision, and `%%`.
///
/// # Errors
///
/// What Python raises: no conversion or more than one, `%(name)`, `*`, an integer-only or
/// unknown conversion, a NaN or infinity for `%d`.
fn percent_format(fmt: &str, value: f64) -> std::result::Result<String, String> {
    let chars: Vec<char> = fmt.chars().collect();
    let mut out = String::with_capacity(fmt.len() + 8);
    let mut used = false;
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        i += 1;
        if c != '%' {
            out.push(c);
            continue;
        }
        if chars.get(i) == Some(&'%') {
            out.push('%');
            i += 1;
            continue;
        }
        if chars.get(i) == Some(&'(') {
            return Err("format requires a mapping".into());
        }
        let (mut left, mut zero, mut plus, mut space, mut alt) =
            (false, false, false, false, false);
        while let Some(&f) = chars.get(i) {
            match f {
                '-' => left = true,
                '0' => zero = true,
                '+' => plus = true,
                ' ' => space = true,
                '#' => alt = true,
                _ => break,
            }
            i += 1;
        }
        let read_number = |i: &mut usize| -> std::result::Result<Option<usize>, String> {
            if chars.get(*i) == Some(&'*') {
                return Err("* wants int".into());
            }
            let digits: String = chars[*i..].iter().take_while(|c| c.is_ascii_digit()).collect();
            *i += digits.len();
            if digits.is_empty() {
                Ok(None)
            } else {
                digits.parse().map(Some).map_err(|_| "width too big".to_string())
            }
        };
        let width = read_number(&mut i)?.unwrap_or(0);
        let precision = if chars.get(i) == Some(&'.') {
            i += 1;
            Some(read_number(&mut i)?.unwrap_or(0))
        } else {
            None
        };
        while matches!(chars.get(i), Some('h' | 'l' | 'L')) {
            i += 1;
        }
        let Some(&conv) = chars.get(i) else { return Err("incomplete format".into()) };
        i += 1;
        let numeric = |body: String, negative: bool| {
            let sign = if negative {
                "-"
            } else if plus {
                "+"
            } else if space {
                " "
            } else {
                ""
            };
            pad(sign, &body, width, left, zero)
        };
        let piece = match conv {
            'd' | 'i' | 'u' => {
                if value.is_nan() {
                    return Err("cannot convert float NaN to integer".into());
                }
                if value.is_infinite() {
                    return Err("cannot convert float infinity to integer".into());
                }
                let t = value.trunc();
                let mut digits = format!("{:.0}", t.abs());
                if let Some(p) = precision
                    && digits.len() < p
                {
                    digits = format!("{}{digits}", "0".repeat(p - digits.len()));
                }
                numeric(digits, t < 0.0)
            }
            'f' | 'F' | 'e' | 'E' | 'g' | 'G' => {
                let body = format_float(value.abs(), conv, precision.unwrap_or(6), alt);
                numeric(body, value.is_sign_negative() && !value.is_nan())
            }
            's' | 'r' | 'a' => {
                let mut s = pyfmt::float_repr(value);
                if let Some(p) = precision {
                    s = s.chars().take(p).collect();
                }
                pad("", &s, width, left, false)
            }
            'x' | 'X' | 'o' => {
                return Err(format!("%{conv} format: an integer is required, not float"));
            }
            'c' => return Err("%c requires int or char".into()),
            other => {
                return Err(format!(
                    "unsupported format character '{other}' (0x{:x}) at index {}",
                    u32::from(other),
                    i - 1
                ));
            }
        };
        if used {
            return Err("not enough arguments for format string".into());
        }
        used = true;
        out.push_str(&piece);
    }
    if used { Ok(out) } else { Err("not all arguments converted during string formatting".into()) }
}

/// Pads `sign + body` to `width` as Python's `%` does: left-justified, zero-filled after the
/// sign, or right-justified with spaces.
fn pad(sign: &str, body: &str, width: usize, left: bool, zero: bool) -> String {
    let len = sign.chars().count() + body.chars().count();
    let fill = width.saturating_sub(len);
    if left {
        format!("{sign}{body}{}", " ".repeat(fill))
    } else if zero {
        format!("{sign}{}{body}", "0".repeat(fill))
    } else {
        format!("{}{sign}{body}", " ".repeat(fill))
    }
}

/// `%f %e %g` (and upper-case forms) of a non-negative float, without the sign.
fn format_float(x: f64, conv: char, precision: usize, alt: bool) -> String {
    let upper = conv.is_ascii_uppercase();
    if !x.is_finite() {
        let s = if x.is_nan() { "nan" } else { "inf" };
        return if upper { s.to_uppercase() } else { s.to_string() };
    }
    let body = match conv.to_ascii_lowercase() {
        'f' => {
            let s = format!("{x:.precision$}");
            if alt && precision == 0 { s + "." } else { s }
        }
        'e' => exp_form(x, precision, alt),
        _ => {
            let p = precision.max(1);
            let exp = if x == 0.0 { 0 } else { split_exp(&format!("{:.*e}", p - 1, x)).1 };
            let s = if (-4..p as i32).contains(&exp) {
                let decimals = usize::try_from(p as i32 - 1 - exp).unwrap_or(0);
                let s = format!("{x:.decimals$}");
                if alt && !s.contains('.') { s + "." } else { s }
            } else {
                exp_form(x, p - 1, alt)
            };
            if alt { s } else { strip_fraction_zeros(&s) }
        }
    };
    if upper { body.to_uppercase() } else { body }
}

/// `d.ddde+XX` with Python's at-least-two-digit exponent.
fn exp_form(x: f64, precision: usize, alt: bool) -> String {
    let text = format!("{x:.precision$e}");
    let (mantissa, exp) = split_exp(&text);
    let dot = if alt && precision == 0 { "." } else { "" };
    format!("{mantissa}{dot}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.unsigned_abs())
}

fn split_exp(s: &str) -> (&str, i32) {
    match s.split_once('e') {
        Some((m, e)) => (m, e.parse().unwrap_or(0)),
        None => (s, 0),
    }
}

/// Removes trailing zeros of the fraction (and a bare `.`), keeping any exponent.
fn strip_fraction_zeros(s: &str) -> String {
    let (mantissa, exp) = match s.find('e') {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, ""),
    };
    let mantissa = if mantissa.contains('.') {
        mantissa.trim_end_matches('0').trim_end_matches('.')
    } else {
        mantissa
    };
    format!("{mantissa}{exp}")
}

/// The aggregation function names graphite-web lists as options for an `aggFunc` parameter,
/// sorted as `/functions` shows them.
pub(crate) const AGG_FUNC_OPTIONS: &[&str] = &[
    "average", "avg", "avg_zero", "count", "current", "diff", "last", "max", "median", "min",
    "multiply", "range", "rangeOf", "stddev", "sum", "total",
];

/// Checks at test time that [`AGG_FUNC_OPTIONS`] is [`AGG_FUNC_NAMES`], sorted.
#[cfg(test)]
fn agg_options_match_names() -> bool {
    let mut names: Vec<&str> = crate::aggfunc::AGG_FUNC_NAMES.to_vec();
    names.sort_unstable();
    names == AGG_FUNC_OPTIONS
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{T0, eval, names, source, try_eval};

    fn sub(pattern: &str, repl: &str, text: &str) -> std::result::Result<String, String> {
        let re = PyRegex::new("t", pattern).map_err(|e| e.to_string())?;
        let t = re.template("t", repl).map_err(|e| e.to_string())?;
        Ok(re.sub(&t, text))
    }

    #[test]
    fn agg_func_options_are_the_sorted_names() {
        assert!(agg_options_match_names());
    }

    #[test]
    fn re_sub_matches_python() {
        // Expected values from Python 3.11's re.sub.
        assert_eq!(sub("x*", "-", "abxd").unwrap(), "-a-b--d-");
        assert_eq!(sub(".*", "X", "abc").unwrap(), "XX");
        assert_eq!(sub("(a)|(z)", r"[\2]", "abc").unwrap(), "[]bc");
        assert_eq!(sub("a", r"\n\\\g<0>\0", "abc").unwrap(), "\n\\a\0bc");
        assert_eq!(sub("(?P<n>a)", r"\g<n>\g<1>", "abc").unwrap(), "aabc");
        assert_eq!(sub("a", r"\01x", "abc").unwrap(), "\u{1}xbc");
        assert_eq!(sub("a", r"\101", "abc").unwrap(), "Abc");
        assert_eq!(sub(r"(^.*$)", r"\1 A", "test.web01.cpu").unwrap(), "test.web01.cpu A");
        assert_eq!(sub(r"^.*TCP(\d+)", r"\1", "ip.TCP80.x").unwrap(), "80.x");
        assert_eq!(sub(r"a\Z", "!", "aa").unwrap(), "a!");
        assert_eq!(sub("a{", "!", "a{b").unwrap(), "!b");
        assert_eq!(sub("a{,2}b", "!", "aab").unwrap(), "!");
        assert_eq!(sub("[[]", "!", "a[b").unwrap(), "a!b");
        assert!(sub("x", r"\9", "abc").unwrap_err().contains("invalid group reference 9"));
        assert!(sub("a", r"\q", "abc").unwrap_err().contains("bad escape \\q"));
        assert!(sub("a", r"\g<1a>", "a").unwrap_err().contains("bad character in group name"));
        assert!(sub("(a)\\1", "", "aa").unwrap_err().contains("unsupported regular expression"));
        assert!(sub("(", "", "a").is_err());
    }

    #[test]
    fn percent_format_matches_python() {
        // Expected values from Python 3.11's `fmt % value`.
        for (fmt, v, want) in [
            ("%05f", f64::INFINITY, "00inf"),
            ("%-8.3s|", 1.5, "1.5     |"),
            ("%+05d", -2.7, "-0002"),
            ("%.3d", 5.0, "005"),
            ("%#.0f", 2.0, "2."),
            ("%#g", 2.0, "2.00000"),
            ("%g", 1e-5, "1e-05"),
            ("%.0e", 12345.0, "1e+04"),
            ("%d", -0.5, "0"),
            ("%s %%", 2.5, "2.5 %"),
            ("%5.1f|", 2.25, "  2.2|"),
            ("%-6d|", 3.0, "3     |"),
            ("% d", 3.0, " 3"),
            ("%010.2f", -3.25159, "-000003.25"),
            ("%G", 1e20, "1E+20"),
            ("%.3g", 0.0001234, "0.000123"),
            ("%i", 1e20, "100000000000000000000"),
            ("%r", 0.1, "0.1"),
            ("%ld", 3.0, "3"),
            ("%e", f64::INFINITY, "inf"),
            ("%E", f64::NAN, "NAN"),
            ("%g", 100000.0, "100000"),
            ("%g", 1000000.0, "1e+06"),
            ("%#.3g", 1.0, "1.00"),
            ("%.0g", 123.0, "1e+02"),
            ("%+.2e", 0.0, "+0.00e+00"),
            ("Channel %d MHz", 2412.7, "Channel 2412 MHz"),
        ] {
            assert_eq!(percent_format(fmt, v).unwrap(), want, "{fmt}");
        }
        for (fmt, err) in [
            ("%x", "%x format: an integer is required, not float"),
            ("abc", "not all arguments converted during string formatting"),
            ("%d %d", "not enough arguments for format string"),
            ("%(a)s", "format requires a mapping"),
            ("%c", "%c requires int or char"),
            ("%*d", "* wants int"),
            ("%z", "unsupported format character 'z' (0x7a) at index 1"),
            ("%5%", "unsupported format character '%' (0x25) at index 2"),
            ("%", "incomplete format"),
        ] {
            assert_eq!(percent_format(fmt, 1.0).unwrap_err(), err, "{fmt}");
        }
    }

    #[test]
    fn metric_node_is_like_substr_minus_one() {
        // graphite-web 1.1.8 aliasByMetric on these names.
        assert_eq!(last_metric_node("test.web01.cpu"), "cpu");
        assert_eq!(last_metric_node("movingAverage(test.web01.cpu,'5min')"), "cpu");
        assert_eq!(last_metric_node("scale(sumSeries(a.b.c,d.e),2)"), "e");
        assert_eq!(last_metric_node("disk.used;dc=dc1"), "used;dc=dc1");
        assert_eq!(last_metric_node("x)y(z"), "");
        assert_eq!(last_metric_node("a.b,c.d"), "d");
        assert_eq!(last_metric_node("f(a.b,c)"), "b");
        assert_eq!(last_metric_node("a.b\n,c\n"), "b\n\n");
    }

    fn data() -> crate::source::MemorySource {
        source(&[
            ("test.web01.cpu", 60, &[Some(1.0), Some(2.0), Some(3.0)]),
            ("test.web02.cpu", 60, &[Some(4.0), None, Some(6.0)]),
            ("tagged.disk.used;dc=dc1;server=web01", 60, &[Some(1.0), Some(2.0), Some(3.0)]),
        ])
    }

    fn run(target: &str) -> Vec<Series> {
        eval(&data(), target, T0 - 60, T0 + 120)
    }

    #[test]
    fn alias_renames_but_keeps_path_and_tags() {
        let out = run("alias(test.*.cpu,'x')");
        assert_eq!(names(&out), ["x", "x"]);
        assert_eq!(out[0].path_expression, "test.*.cpu");
        assert_eq!(out[0].tags["name"], "test.web01.cpu");
    }

    #[test]
    fn alias_by_node_picks_nodes_tags_and_inner_paths() {
        // Names as graphite-web 1.1.8 gives them for the same targets.
        assert_eq!(names(&run("aliasByNode(test.*.cpu,1)")), ["web01", "web02"]);
        assert_eq!(names(&run("aliasByNode(test.*.cpu,-1,0)")), ["cpu.test", "cpu.test"]);
        assert_eq!(names(&run("aliasByNode(test.*.cpu,7)")), ["", ""]);
        assert_eq!(names(&run("aliasByNode(alias(test.web01.cpu,'a.b(c.d)'),0)")), ["a"]);
        assert_eq!(
            names(&run("aliasByNode(alias(test.web01.cpu,'sumSeries(x.y.z,q.r)'),0,1)")),
            ["x.y"]
        );
        assert_eq!(names(&run("aliasByNode(alias(test.web01.cpu,'f(5,a.b)'),0,1)")), ["f(5,a.b)"]);
        assert_eq!(names(&run("aliasByNode(alias(test.web01.cpu,'a(b.c.d;t=v)'),0,1)")), ["b.c"]);
        // Names that are not whole targets read as graphite-web's parser reads them.
        for (alias, want) in [
            ("CPU (user)", "user."),
            ("a.b c.d(e)", "a.b"),
            ("x.y (avg: 5.0)", "x.y"),
            ("f(a.b) g(c)", "a.b"),
            ("sumSeries(a.b).x(y)", "a.b"),
        ] {
            let target = format!("aliasByNode(alias(test.web01.cpu,'{alias}'),0,1)");
            assert_eq!(names(&run(&target)), [want], "{alias}");
        }
        assert_eq!(names(&run("aliasByNode(test.web01.cpu,1.5)")), [""]);
        assert_eq!(names(&run("aliasByNode(test.web01.cpu,true)")), ["web01"]);
        assert_eq!(
            names(&run("aliasByNode(seriesByTag('name=tagged.disk.used'),'server',2)")),
            ["web01.used"]
        );
        assert_eq!(
            names(&run("aliasByTags(seriesByTag('dc=dc1'),'dc','name')")),
            ["dc1.tagged.disk.used"]
        );
        assert_eq!(names(&run("aliasByNode(test.web01.cpu,'name')")), ["test.web01.cpu"]);
        assert!(try_eval(&data(), "aliasByNode(test.web01.cpu)", T0, T0 + 60).is_err());
    }

    #[test]
    fn alias_by_metric_and_alias_sub() {
        assert_eq!(names(&run("aliasByMetric(test.*.cpu)")), ["cpu", "cpu"]);
        assert_eq!(
            names(&run("aliasSub(test.*.cpu,'^test\\.(\\w+)\\..*','\\1 A')")),
            ["web01 A", "web02 A"]
        );
        assert_eq!(names(&run("aliasSub(test.web01.cpu,'(^.*$)','\\1 A')")), ["test.web01.cpu A"]);
        assert!(try_eval(&data(), "aliasSub(test.web01.cpu,'(','x')", T0, T0 + 60).is_err());
        assert!(try_eval(&data(), "aliasSub(test.web01.cpu,'a','\\2')", T0, T0 + 60).is_err());
    }

    #[test]
    fn alias_query_formats_the_last_value() {
        let out = run("aliasQuery(test.web01.cpu,'web01','web02','v=%d')");
        assert_eq!(names(&out), ["v=6"]);
        let err =
            try_eval(&data(), "aliasQuery(test.web01.cpu,'web01','nope','%d')", T0 - 60, T0 + 120);
        assert!(err.unwrap_err().to_string().contains("No series found with query: test.nope.cpu"));
        let err = try_eval(
            &data(),
            "aliasQuery(test.web01.cpu,'web01','web02','none')",
            T0 - 60,
            T0 + 120,
        );
        assert!(err.is_err());
    }

    #[test]
    fn legend_value_appends_values() {
        // graphite-web 1.1.8: legendValue(test.web02.cpu,'avg','count','total','foo')
        let out = run("legendValue(test.web02.cpu,'avg','count','total','foo')");
        assert_eq!(names(&out), ["test.web02.cpu (avg: 5.0) (count: 2) (total: 10.0) (foo: (?))"]);
        // graphite-web 1.1.8: legendValue(test.web02.cpu,'last','si')
        let out = run("legendValue(test.web02.cpu,'last','si')");
        assert_eq!(names(&out), ["test.web02.cpu      last 6.00      "]);
        assert!(try_eval(&data(), "legendValue(test.web02.cpu)", T0, T0 + 60).is_err());
    }

    #[test]
    fn legend_value_binary_columns() {
        // graphite-web 1.1.8: legendValue(a.b,'last','max','avg','count','foo','binary').
        let src = source(&[("a.b", 60, &[Some(1500.0), Some(2048.0 * 1024.0), None])]);
        let out = eval(
            &src,
            "legendValue(a.b,'last','max','avg','count','foo','binary')",
            T0 - 60,
            T0 + 120,
        );
        assert_eq!(
            names(&out),
            [
                "a.b                 last 2.00Mi    max  2.00Mi    avg  1.00Mi    count2.00      foo  (?)       "
            ]
        );
        let src = source(&[("a.b", 60, &[None])]);
        let out = eval(&src, "legendValue(a.b,'last','si')", T0 - 60, T0);
        assert_eq!(names(&out), ["a.b                 last None      "]);
    }

    #[test]
    fn format_units_snaps_and_scales() {
        assert_eq!(format_units(1500.0, "si"), (1.5, "k"));
        assert_eq!(format_units(2048.0, "binary"), (2.0, "Ki"));
        assert_eq!(format_units(3.000000000001, "si"), (3.0, ""));
        assert_eq!(format_units(0.5, "si"), (0.5, ""));
    }
}
