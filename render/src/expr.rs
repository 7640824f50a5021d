//! The syntax tree of a target expression (graphite-reference §5).
//!
//! [`crate::parse::parse`] builds it; [`crate::eval`] walks it. Pipes (`a.b|f()`) are desugared
//! by the parser into ordinary calls, and `template(...)` is kept as its own node until the
//! request's `template[...]` values are applied ([`Expr::apply_templates`]).

use std::collections::BTreeMap;
use std::fmt;

/// One expression: a path, a function call, or a template.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    /// A path expression with globs, escapes already removed (`servers.*.cpu.{user,system}`).
    Path(String),
    /// A function call.
    Call(Call),
    /// `template(inner, args...)`: `inner` with `$1`, `$name` bound to `args`/`kwargs`.
    Template {
        /// The templated call or path.
        inner: Box<Expr>,
        /// Positional literals, bound to `$1`, `$2`, ...
        args: Vec<Literal>,
        /// Keyword literals, bound to `$name`.
        kwargs: Vec<(String, Literal)>,
    },
}

/// A function call: `name(args..., kw=arg, ...)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    /// The function name as written.
    pub name: String,
    /// Positional arguments, in order.
    pub args: Vec<Arg>,
    /// Keyword arguments, in the order written.
    pub kwargs: Vec<(String, Arg)>,
    /// The call's source text exactly as written (`seriesByTag('name=a.b')`): graphite-web
    /// uses it as the path expression of `seriesByTag` results.
    pub raw: String,
}

/// A literal value (template arguments, and the leaves of [`Arg`]).
#[derive(Clone, Debug, PartialEq)]
pub enum Literal {
    /// `true` / `false` (any case).
    Bool(bool),
    /// An integer literal (`-12`).
    Int(i64),
    /// A float literal (`1.5`, `1e3`, `inf`).
    Float(f64),
    /// A quoted string, outer quotes removed, nothing unescaped (graphite-web's behaviour).
    Str(String),
    /// `None` (any case).
    None,
}

/// One argument of a call.
#[derive(Clone, Debug, PartialEq)]
pub enum Arg {
    /// A literal.
    Literal(Literal),
    /// A nested expression (a path or a call).
    Expr(Expr),
}

impl Expr {
    /// Every path expression this expression fetches, in order of appearance (for prefetch),
    /// including the raw text of `seriesByTag(...)` calls as `seriesByTag('a=b',...)`.
    pub fn paths(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.collect_paths(&mut out);
        out
    }

    fn collect_paths(&self, out: &mut Vec<String>) {
        match self {
            Expr::Path(p) => out.push(p.clone()),
            Expr::Call(call) => {
                for arg in call.args.iter().chain(call.kwargs.iter().map(|(_, a)| a)) {
                    if let Arg::Expr(e) = arg {
                        e.collect_paths(out);
                    }
                }
            }
            Expr::Template { inner, .. } => inner.collect_paths(out),
        }
    }

    /// Replaces every `template(...)` by its inner expression with `$name` substituted.
    ///
    /// Values come from the template's own arguments (`$1`, `$2`, ... and `$name`), overridden
    /// by the request's `template[name]=value` parameters in `overrides`. Substitution is
    /// textual inside path expressions; a path that is exactly `$name` bound to a non-string
    /// literal becomes that literal (graphite-web's behaviour), returned as an [`Arg`].
    pub fn apply_templates(self, overrides: &BTreeMap<String, String>) -> Expr {
        match self {
            Expr::Template { inner, args, kwargs } => {
                let mut vars: BTreeMap<String, Literal> = BTreeMap::new();
                for (i, lit) in args.into_iter().enumerate() {
                    vars.insert((i + 1).to_string(), lit);
                }
                for (k, lit) in kwargs {
                    vars.insert(k, lit);
                }
                for (k, v) in overrides {
                    vars.insert(k.clone(), Literal::Str(v.clone()));
                }
                match substitute_expr(*inner, &vars) {
                    Arg::Expr(e) => e.apply_templates(overrides),
                    // A template that is a bare `$name`: fetch the bound text as a path.
                    Arg::Literal(lit) => Expr::Path(lit.to_string()),
                }
            }
            Expr::Call(mut call) => {
                call.args = call.args.into_iter().map(|a| a.apply_templates(overrides)).collect();
                call.kwargs = call
                    .kwargs
                    .into_iter()
                    .map(|(k, a)| (k, a.apply_templates(overrides)))
                    .collect();
                Expr::Call(call)
            }
            path @ Expr::Path(_) => path,
        }
    }
}

impl Arg {
    fn apply_templates(self, overrides: &BTreeMap<String, String>) -> Arg {
        match self {
            Arg::Expr(e) => Arg::Expr(e.apply_templates(overrides)),
            lit => lit,
        }
    }
}

fn substitute_expr(expr: Expr, vars: &BTreeMap<String, Literal>) -> Arg {
    match expr {
        Expr::Path(p) => {
            if let Some(name) = p.strip_prefix('$')
                && let Some(lit) = vars.get(name)
            {
                // graphite-web hands the bound value itself to the function: a string stays a
                // string (not a path to fetch), a numeric-looking string becomes a float.
                return match lit {
                    Literal::Str(s) if is_numeric_text(s) => Arg::Literal(
                        s.parse().map_or_else(|_| Literal::Str(s.clone()), Literal::Float),
                    ),
                    other => Arg::Literal(other.clone()),
                };
            }
            // Longest names first so `$10` is not replaced as `$1` followed by `0`.
            let mut names: Vec<&String> = vars.keys().collect();
            names.sort_by_key(|n| std::cmp::Reverse(n.len()));
            let mut text = p;
            for name in names {
                let needle = format!("${name}");
                if text.contains(&needle) {
                    text = text.replace(&needle, &vars[name].to_string());
                }
            }
            Arg::Expr(Expr::Path(text))
        }
        Expr::Call(mut call) => {
            call.args = call
                .args
                .into_iter()
                .map(|a| match a {
                    Arg::Expr(e) => substitute_expr(e, vars),
                    lit => lit,
                })
                .collect();
            call.kwargs = call
                .kwargs
                .into_iter()
                .map(|(k, a)| match a {
                    Arg::Expr(e) => (k, substitute_expr(e, vars)),
                    lit => (k, lit),
                })
                .collect();
            Arg::Expr(Expr::Call(call))
        }
        t @ Expr::Template { .. } => Arg::Expr(t),
    }
}

/// graphite-web's `^-?[\d.]+$` test for a template value that becomes a float.
fn is_numeric_text(s: &str) -> bool {
    let digits = s.strip_prefix('-').unwrap_or(s);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit() || b == b'.')
}

impl fmt::Display for Literal {
    /// The literal as text: strings bare, numbers as Python prints them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Literal::Bool(true) => f.write_str("True"),
            Literal::Bool(false) => f.write_str("False"),
            Literal::Int(i) => write!(f, "{i}"),
            Literal::Float(x) => f.write_str(&crate::pyfmt::float_repr(*x)),
            Literal::Str(s) => f.write_str(s),
            Literal::None => f.write_str("None"),
        }
    }
}
