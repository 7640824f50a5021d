//! Helpers several function families share: picking nodes and tags out of series names
//! (graphite-web's `getNodeOrTag` / `aggKey`, used by `groupByNode`, `asPercent`, `mapSeries`,
//! `aliasByNode`, ...), the first path expression inside a function-wrapped name, the name
//! combining functions give their result (`formatPathExpressions`), and Python's indexing and
//! slicing rules, which those functions inherit.
//!
//! The combine family owns this file; other families may use it once it is on main.

use crate::error::{Error, Result};
use crate::expr::{Arg, Expr, Literal};
use crate::series::Series;

/// One `nodeOrTag` argument: a node index into the dotted name, or a tag name.
///
/// graphite-web decides per value: an integer is a node (negative counts from the end), and
/// when that node does not exist the integer's text is looked up as a tag instead; anything
/// else is a tag name, and a missing tag reads as the empty string.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum NodeOrTag {
    /// A node index; `text` is what graphite-web looks up as a tag when the node is missing
    /// (Python's `str()` of the argument).
    Node {
        /// The index, Python style (negative from the end).
        index: i64,
        /// The argument as text.
        text: String,
    },
    /// A tag name.
    Tag(String),
}

impl NodeOrTag {
    /// Reads one argument as graphite-web's `getNodeOrTag` treats it: integers (and booleans,
    /// which Python counts as integers) are nodes, strings and non-integral floats are tag
    /// names. An integral float is a node here; graphite-web fails on it with a Python
    /// `TypeError` (HTTP 500), so accepting it only turns an error into an answer.
    ///
    /// # Errors
    ///
    /// `None` (graphite-web fails on it too).
    pub(crate) fn from_literal(function: &str, literal: &Literal) -> Result<NodeOrTag> {
        Ok(match literal {
            Literal::Int(i) => NodeOrTag::Node { index: *i, text: i.to_string() },
            Literal::Bool(b) => NodeOrTag::Node { index: i64::from(*b), text: literal.to_string() },
            Literal::Float(f) if f.fract() == 0.0 && f.abs() < 9e15 => {
                NodeOrTag::Node { index: *f as i64, text: literal.to_string() }
            }
            Literal::Float(_) | Literal::Str(_) => NodeOrTag::Tag(literal.to_string()),
            Literal::None => {
                return Err(Error::arg(format!(
                    "{function}(): a node must be an integer or a tag name, not None"
                )));
            }
        })
    }

    /// Reads every literal of a `*nodes` argument.
    ///
    /// # Errors
    ///
    /// As [`NodeOrTag::from_literal`].
    pub(crate) fn from_literals(function: &str, literals: &[Literal]) -> Result<Vec<NodeOrTag>> {
        literals.iter().map(|l| NodeOrTag::from_literal(function, l)).collect()
    }

    /// The argument as graphite-web prints it with `str()` (in `weightedAverage`'s name).
    pub(crate) fn text(&self) -> &str {
        match self {
            NodeOrTag::Node { text, .. } => text,
            NodeOrTag::Tag(t) => t,
        }
    }
}

/// graphite-web's `getNodeOrTag(series, n, pathExpression)`: the node `n` of `path` (or of
/// the series name when `path` is `None`), with any `;tag=value` part cut off first; a tag
/// name, or a node that does not exist, reads the series' tag (empty when absent).
pub(crate) fn node_or_tag(series: &Series, n: &NodeOrTag, path: Option<&str>) -> String {
    let tag = match n {
        NodeOrTag::Node { index, text } => {
            let source = path.unwrap_or(&series.name);
            let untagged = source.split(';').next().unwrap_or_default();
            let nodes: Vec<&str> = untagged.split('.').collect();
            if let Some(node) = py_index(&nodes, *index) {
                return (*node).to_string();
            }
            text.as_str()
        }
        NodeOrTag::Tag(t) => t.as_str(),
    };
    series.tags.get(tag).cloned().unwrap_or_default()
}

/// graphite-web's `aggKey(series, nodes)`: the selected nodes and tags joined with `.`. When
/// the series name ends with `)` (a function's output), nodes are read from the first path
/// expression inside it, so `sumSeries(a.b.c)` has node 1 `b`.
pub(crate) fn agg_key(series: &Series, nodes: &[NodeOrTag]) -> String {
    let first = if series.name.ends_with(')') { first_path_expression(&series.name) } else { None };
    let parts: Vec<String> =
        nodes.iter().map(|n| node_or_tag(series, n, first.as_deref())).collect();
    parts.join(".")
}

/// graphite-web's `_getFirstPathExpression(name)`: parses `name` as a target and follows the
/// first argument of each call down to a path expression. `None` when there is none (the first
/// argument is a literal, the name does not parse, ...); callers then use the name itself.
pub(crate) fn first_path_expression(name: &str) -> Option<String> {
    let mut expr = parse_prefix(name)?;
    loop {
        match expr {
            Expr::Path(path) => return Some(path),
            Expr::Call(call) => match call.args.into_iter().next() {
                Some(Arg::Expr(inner)) => expr = inner,
                _ => return None,
            },
            Expr::Template { .. } => return None,
        }
    }
}

/// Parses the longest prefix of `name` that is a whole target. graphite-web's pyparsing stops
/// at the first character it cannot use and keeps what it read (`a.b c.d(e)` reads as `a.b`);
/// our parser rejects leftover input, so shorter prefixes are retried. Only names that fail to
/// parse whole pay for the retries, and long ones (over [`MAX_RETRIED_BYTES`]) are not retried.
pub(crate) fn parse_prefix(name: &str) -> Option<Expr> {
    if let Ok(expr) = crate::parse::parse(name) {
        return Some(expr);
    }
    if name.len() > MAX_RETRIED_BYTES {
        return None;
    }
    name.char_indices()
        .rev()
        .map(|(i, _)| i)
        .filter(|&i| i > 0)
        .find_map(|i| crate::parse::parse(&name[..i]).ok())
}

/// The longest name [`parse_prefix`] retries prefix by prefix (each retry is a parse).
const MAX_RETRIED_BYTES: usize = 512;

/// graphite-web's `formatPathExpressions(seriesList)`: the series' path expressions, each
/// once, in order of first appearance, joined with `,`. Combining functions name their result
/// after it (`sumSeries(servers.*.cpu,other.cpu)`).
pub(crate) fn format_path_expressions(series: &[Series]) -> String {
    let mut seen: Vec<&str> = Vec::new();
    for s in series {
        if !seen.contains(&s.path_expression.as_str()) {
            seen.push(&s.path_expression);
        }
    }
    seen.join(",")
}

/// Python's `items[i]`: negative indexes count from the end; `None` when out of range
/// (Python's `IndexError`).
pub(crate) fn py_index<T>(items: &[T], i: i64) -> Option<&T> {
    let len = i64::try_from(items.len()).ok()?;
    let i = if i < 0 { i.checked_add(len)? } else { i };
    usize::try_from(i).ok().and_then(|i| items.get(i))
}

/// Python's `items[..end]` (`items[:end]`): a negative end counts from the end, and the end is
/// clamped to the slice.
pub(crate) fn py_slice_to<T>(items: &[T], end: i64) -> &[T] {
    let len = i64::try_from(items.len()).unwrap_or(i64::MAX);
    let end = if end < 0 { end.saturating_add(len).max(0) } else { end.min(len) };
    // `end` is within 0..=len here.
    items.get(..usize::try_from(end).unwrap_or(0)).unwrap_or(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(name: &str) -> Series {
        Series::new(name, 0, 60, 60, vec![Some(1.0)])
    }

    fn node(i: i64) -> NodeOrTag {
        NodeOrTag::from_literal("t", &Literal::Int(i)).unwrap()
    }

    #[test]
    fn nodes_index_like_python() {
        let s = series("servers.web01.cpu");
        assert_eq!(node_or_tag(&s, &node(1), None), "web01");
        assert_eq!(node_or_tag(&s, &node(-1), None), "cpu");
        // A missing node is looked up as a tag named "7": absent, so empty.
        assert_eq!(node_or_tag(&s, &node(7), None), "");
        assert_eq!(node_or_tag(&s, &node(-4), None), "");
        assert_eq!(node_or_tag(&s, &NodeOrTag::Tag("name".into()), None), "servers.web01.cpu");
    }

    #[test]
    fn tagged_names_split_off_tags_before_nodes() {
        let s = series("disk.used;dc=dc1;server=web01");
        assert_eq!(node_or_tag(&s, &node(1), None), "used");
        assert_eq!(node_or_tag(&s, &NodeOrTag::Tag("dc".into()), None), "dc1");
        let key = agg_key(&s, &[NodeOrTag::Tag("server".into()), node(0)]);
        assert_eq!(key, "web01.disk");
    }

    #[test]
    fn literal_kinds_follow_get_node_or_tag() {
        let lit = |l: Literal| NodeOrTag::from_literal("f", &l).unwrap();
        assert_eq!(lit(Literal::Str("1".into())), NodeOrTag::Tag("1".into()));
        assert_eq!(lit(Literal::Float(1.5)), NodeOrTag::Tag("1.5".into()));
        assert_eq!(lit(Literal::Bool(true)), NodeOrTag::Node { index: 1, text: "True".into() });
        assert!(NodeOrTag::from_literal("f", &Literal::None).is_err());
    }

    #[test]
    fn path_expressions_are_deduplicated_in_order() {
        let mut a = series("a.x");
        a.path_expression = "a.*".into();
        let mut b = series("a.y");
        b.path_expression = "a.*".into();
        let c = series("b.z");
        assert_eq!(format_path_expressions(&[a, b, c]), "a.*,b.z");
    }

    #[test]
    fn first_path_expression_follows_first_arguments() {
        assert_eq!(first_path_expression("sumSeries(a.b.c)").as_deref(), Some("a.b.c"));
        assert_eq!(
            first_path_expression("scale(divideSeries(x.*.y,MISSING),2)").as_deref(),
            Some("x.*.y")
        );
        assert_eq!(first_path_expression("a.b").as_deref(), Some("a.b"));
        // The first argument is a string: no path (callers fall back to the name).
        assert_eq!(first_path_expression("seriesByTag('name=a.b')"), None);
        // Names that are not whole targets read as graphite-web's parser reads them.
        assert_eq!(first_path_expression("f(a.b) g(c)").as_deref(), Some("a.b"));
        assert_eq!(first_path_expression("x.y (avg: 5.0)").as_deref(), Some("x.y"));
        let s = series("sumSeries(servers.web01.cpu)");
        assert_eq!(agg_key(&s, &[node(1), node(-1)]), "web01.cpu");
    }

    #[test]
    fn python_slices_and_indexes() {
        let v = [1, 2, 3];
        assert_eq!(py_slice_to(&v, 2), &[1, 2]);
        assert_eq!(py_slice_to(&v, -1), &[1, 2]);
        assert_eq!(py_slice_to(&v, 0), &[] as &[i32]);
        assert_eq!(py_slice_to(&v, 9), &[1, 2, 3]);
        assert_eq!(py_slice_to(&v, -9), &[] as &[i32]);
        assert_eq!(py_index(&v, -3), Some(&1));
        assert_eq!(py_index(&v, 3), None);
    }
}
