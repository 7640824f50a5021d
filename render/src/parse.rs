//! The target parser (graphite-reference §5): graphite-web 1.1.8's pyparsing grammar,
//! reproduced rule by rule.
//!
//! graphite-web parses targets with a pyparsing grammar (`graphite/render/grammar_unsafe.py`).
//! pyparsing is a PEG: every choice is ordered, the first alternative that matches wins and is
//! never revisited, and `~kwarg` is a negative lookahead. The parser below is a hand-written
//! recursive descent that follows the same rules in the same order, so every target graphite-web
//! accepts yields the same tree (checked against the real grammar by `tests/parse.rs`). A few
//! consequences worth knowing, all inherited from graphite-web:
//!
//! * Whitespace (space, tab, CR, LF) is skipped between tokens, never inside a path, a number
//!   or a string. `a.b c` is the path `a.b` followed by junk.
//! * An argument is tried as, in order: `true`/`false`, a number, `none`, a quoted string,
//!   `inf`, an expression. Keywords are caseless and must not run into an identifier character
//!   (`trueish` is a path). A number must be followed by `,`, `)`, a line end or the end of the
//!   input, so `1abc`, `5.` and `.5` are not numbers (`1abc` is a path, `.5` is nothing).
//!   Integers become [`Literal::Int`], decimals and scientific notation [`Literal::Float`].
//!   Like Python's `\d`, digits are any Unicode decimal digits.
//! * Strings keep their content verbatim: the outer quotes are removed and nothing is unescaped
//!   (`'it\'s'` is the five characters `it\'s`; `"a""b"` is `a""b`).
//! * A path is one or more elements separated by `.`; an element is made of runs of printable
//!   ASCII other than `(){},.'"\|`, backslash escapes of those characters and `=` (the backslash
//!   is dropped: `a\(b\)` is `a(b)`), and `{x,y}` alternatives. Braces and commas of
//!   alternatives are kept in the path for the finder.
//! * A call needs at least one positional argument before keyword arguments: graphite-web
//!   1.1.8's grammar has no rule for a call with keyword arguments only, so `f(k=1)` is not a
//!   call. A positional argument after a keyword argument ends the call's grammar too.
//! * `a.b|f(x)|g()` is `g(f(a.b,x))`: each piped value becomes the first positional argument
//!   of the next call. [`Call::raw`] of a piped call is its own text (`f(x)`), as in
//!   graphite-web, whose `seriesByTag` uses that text as its fetch key.
//! * `template(inner, ...)` is a template only when its extra arguments are numbers and strings,
//!   all positional or all keyword; otherwise it is an ordinary call named `template`, which the
//!   evaluator rejects with graphite-web's `invalid template() syntax`.
//! * An integer that does not fit an `i64` becomes a [`Literal::Float`] (Python keeps a big
//!   int, which every function turns into a float anyway).
//!
//! **One deliberate difference.** pyparsing stops at the first character it cannot use and
//! graphite-web ignores the rest of the target: `scale(a.b,.5)` silently fetches a metric named
//! `scale`, `f(a.b, k=1, 2)` one named `f`. Here input left over after a complete expression is
//! an [`Error::Parse`] naming the furthest position any rule reached and what it expected
//! there, so a typo gives a 400 instead of an empty graph.
//!
//! Nesting deeper than [`MAX_DEPTH`] calls is an error rather than a stack overflow
//! (graphite-web itself hits Python's recursion limit at about 40 levels). Results of the two
//! recursive rules are memoized by position (packrat parsing): the grammar re-parses the same
//! text in several alternatives (a failed `template(...)` is retried as a call, a keyword
//! argument is parsed once as a lookahead), which would otherwise be exponential in the depth.
//!
//! [`Expr`] implements [`std::fmt::Display`] to print a tree back as a canonical target.

use std::collections::HashMap;
use std::fmt;

use crate::error::{Error, Result};
use crate::expr::{Arg, Call, Expr, Literal};

/// The deepest nesting of calls and templates (`f(g(h(x)))` is 3) a target may have.
pub const MAX_DEPTH: usize = 128;

/// Parses one target.
///
/// # Errors
///
/// [`Error::Parse`] when the target is not an expression, when input is left over after the
/// expression (graphite-web would ignore it, see the module docs), or when it nests deeper than
/// [`MAX_DEPTH`].
pub fn parse(target: &str) -> Result<Expr> {
    let mut parser = Parser::new(target);
    let parsed = parser.expression(0);
    if let Some(position) = parser.too_deep {
        return Err(Error::Parse {
            position,
            expected: format!("at most {MAX_DEPTH} nested calls"),
            found: "deeper nesting".into(),
        });
    }
    match parsed {
        Some((expr, end)) => {
            let end = parser.skip_ws(end);
            if end == target.len() {
                return Ok(expr);
            }
            parser.fail(end, "end of input");
            Err(parser.error())
        }
        None => {
            let start = parser.skip_ws(0);
            parser.fail(start, "a path, a function call or template()");
            Err(parser.error())
        }
    }
}

/// pyparsing's default whitespace: skipped before every token outside `Combine`.
fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// The characters a path uses verbatim: printable ASCII except `(){},.'"\|` (graphite-web's
/// `validMetricChars` with `UTF8_METRICS = False`, the default).
fn is_metric_char(b: u8) -> bool {
    (0x21..=0x7e).contains(&b) && !is_symbol(b)
}

/// The characters with a meaning in the grammar; a backslash makes them (and `=`) literal.
fn is_symbol(b: u8) -> bool {
    matches!(b, b'(' | b')' | b'{' | b'}' | b',' | b'.' | b'\'' | b'"' | b'\\' | b'|')
}

fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

fn is_ident_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// How pyparsing's caseless keywords see a character: Python's `c.upper()` when that is a
/// single keyword-identifier character (`[A-Z0-9_$]`). Besides ASCII, only `ı` and `ſ`
/// uppercase into that set (to `I` and `S`), so `ınf` is the keyword `inf`, as in graphite-web.
fn keyword_upper(c: char) -> Option<u8> {
    match c {
        'a'..='z' => Some(c.to_ascii_uppercase() as u8),
        'A'..='Z' | '0'..='9' | '_' | '$' => Some(c as u8),
        '\u{131}' => Some(b'I'),
        '\u{17f}' => Some(b'S'),
        _ => None,
    }
}

/// The first code point of every run of ten Unicode decimal digits (category Nd, Unicode 14 as
/// in graphite-web's Python 3.11): Python's `\d` matches all of them and `int()`/`float()` read
/// them.
const DIGIT_ZEROS: [u32; 66] = [
    0x30, 0x660, 0x6f0, 0x7c0, 0x966, 0x9e6, 0xa66, 0xae6, 0xb66, 0xbe6, 0xc66, 0xce6, 0xd66,
    0xde6, 0xe50, 0xed0, 0xf20, 0x1040, 0x1090, 0x17e0, 0x1810, 0x1946, 0x19d0, 0x1a80, 0x1a90,
    0x1b50, 0x1bb0, 0x1c40, 0x1c50, 0xa620, 0xa8d0, 0xa900, 0xa9d0, 0xa9f0, 0xaa50, 0xabf0, 0xff10,
    0x104a0, 0x10d30, 0x11066, 0x110f0, 0x11136, 0x111d0, 0x112f0, 0x11450, 0x114d0, 0x11650,
    0x116c0, 0x11730, 0x118e0, 0x11950, 0x11c50, 0x11d50, 0x11da0, 0x16a60, 0x16ac0, 0x16b50,
    0x1d7ce, 0x1d7d8, 0x1d7e2, 0x1d7ec, 0x1d7f6, 0x1e140, 0x1e2f0, 0x1e950, 0x1fbf0,
];

/// The value of a Unicode decimal digit.
pub(crate) fn digit_value(c: char) -> Option<u32> {
    let cp = u32::from(c);
    if c.is_ascii() {
        return c.is_ascii_digit().then(|| cp - 0x30);
    }
    let i = DIGIT_ZEROS.partition_point(|&z| z <= cp).checked_sub(1)?;
    let offset = cp - DIGIT_ZEROS.get(i)?;
    (offset < 10).then_some(offset)
}

/// A parse result: the value and the byte offset just past it; `None` is a (recoverable)
/// failure of that alternative.
type Parsed<T> = Option<(T, usize)>;

/// The state of one parse.
struct Parser<'a> {
    /// The target.
    src: &'a str,
    /// Current nesting of calls and templates being parsed.
    depth: usize,
    /// Set (with the position) when [`MAX_DEPTH`] was exceeded: every rule then fails at once
    /// and [`parse`] reports it.
    too_deep: Option<usize>,
    /// The furthest position where a rule failed, and what the rules wanted there.
    furthest: usize,
    /// Descriptions of what was expected at `furthest`.
    expected: Vec<&'static str>,
    /// Packrat memo of `expression` by start position.
    memo_expr: HashMap<usize, Parsed<Expr>>,
    /// Packrat memo of `call` by start position.
    memo_call: HashMap<usize, Parsed<Call>>,
}

impl<'a> Parser<'a> {
    fn new(src: &'a str) -> Parser<'a> {
        Parser {
            src,
            depth: 0,
            too_deep: None,
            furthest: 0,
            expected: Vec::new(),
            memo_expr: HashMap::new(),
            memo_call: HashMap::new(),
        }
    }

    fn byte(&self, pos: usize) -> Option<u8> {
        self.src.as_bytes().get(pos).copied()
    }

    fn char_at(&self, pos: usize) -> Option<char> {
        self.src.get(pos..)?.chars().next()
    }

    fn skip_ws(&self, mut pos: usize) -> usize {
        while self.byte(pos).is_some_and(is_ws) {
            pos += 1;
        }
        pos
    }

    /// Goes one call deeper, unless that exceeds [`MAX_DEPTH`] (then the whole parse stops).
    fn enter(&mut self, pos: usize) -> bool {
        if self.depth >= MAX_DEPTH {
            self.too_deep = Some(self.skip_ws(pos));
            return false;
        }
        self.depth += 1;
        true
    }

    /// Notes that something described by `what` was expected at `pos`.
    fn fail(&mut self, pos: usize, what: &'static str) {
        if pos > self.furthest {
            self.furthest = pos;
            self.expected.clear();
        }
        if pos == self.furthest && !self.expected.contains(&what) {
            self.expected.push(what);
        }
    }

    /// The error for the furthest failure.
    fn error(&self) -> Error {
        let found = match self.src.get(self.furthest..) {
            Some(rest) if !rest.is_empty() => {
                let mut excerpt: String = rest.chars().take(20).collect();
                if excerpt.len() < rest.len() {
                    excerpt.push('…');
                }
                format!("{excerpt:?}")
            }
            _ => "end of input".into(),
        };
        let expected = match self.expected.split_last() {
            None => "an expression".into(),
            Some((last, [])) => (*last).into(),
            Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        };
        Error::Parse { position: self.furthest, expected, found }
    }

    /// Matches the single byte `b` after whitespace; returns the position past it.
    fn punct(&mut self, pos: usize, b: u8, what: &'static str) -> Option<usize> {
        let p = self.skip_ws(pos);
        if self.byte(p) == Some(b) {
            Some(p + 1)
        } else {
            self.fail(p, what);
            None
        }
    }

    /// `[A-Za-z_][A-Za-z0-9_]*` after whitespace (graphite-web's `funcname` and `argname`).
    fn identifier(&self, pos: usize) -> Parsed<&'a str> {
        let start = self.skip_ws(pos);
        if !self.byte(start).is_some_and(is_ident_start) {
            return None;
        }
        let mut end = start + 1;
        while self.byte(end).is_some_and(is_ident_char) {
            end += 1;
        }
        Some((self.src.get(start..end)?, end))
    }

    /// A caseless keyword (`upper` is its uppercase ASCII text) after whitespace, not preceded
    /// or followed by a keyword-identifier character.
    fn keyword(&self, pos: usize, upper: &str) -> Option<usize> {
        let start = self.skip_ws(pos);
        let before = self.src.get(..start)?.chars().next_back();
        if before.and_then(keyword_upper).is_some() {
            return None;
        }
        let mut end = start;
        for want in upper.bytes() {
            let c = self.char_at(end)?;
            if keyword_upper(c) != Some(want) {
                return None;
            }
            end += c.len_utf8();
        }
        if self.char_at(end).and_then(keyword_upper).is_some() {
            return None;
        }
        Some(end)
    }

    // ---- numbers ----

    /// Unicode decimal digits from `pos`; the position past them.
    fn digits(&self, mut pos: usize) -> usize {
        while let Some(c) = self.char_at(pos) {
            if digit_value(c).is_none() {
                break;
            }
            pos += c.len_utf8();
        }
        pos
    }

    /// `-?\d+`.
    fn int_text(&self, pos: usize) -> Option<usize> {
        let p = if self.byte(pos) == Some(b'-') { pos + 1 } else { pos };
        let end = self.digits(p);
        (end > p).then_some(end)
    }

    /// `-?\d+\.\d+`.
    fn float_text(&self, pos: usize) -> Option<usize> {
        let dot = self.int_text(pos)?;
        if self.byte(dot) != Some(b'.') {
            return None;
        }
        let end = self.digits(dot + 1);
        (end > dot + 1).then_some(end)
    }

    /// `(float | int) [eE] int`.
    fn sci_text(&self, pos: usize) -> Option<usize> {
        let e = self.float_text(pos).or_else(|| self.int_text(pos))?;
        if !matches!(self.byte(e), Some(b'e' | b'E')) {
            return None;
        }
        self.int_text(e + 1)
    }

    /// graphite-web's `afterNumber`: followed (after whitespace) by `,` or `)`, or (after
    /// spaces, tabs and CRs) by a line feed or the end of the input.
    fn after_number(&self, pos: usize) -> bool {
        let p = self.skip_ws(pos);
        if matches!(self.byte(p), Some(b',' | b')')) {
            return true;
        }
        let mut q = pos;
        while matches!(self.byte(q), Some(b' ' | b'\t' | b'\r')) {
            q += 1;
        }
        matches!(self.byte(q), None | Some(b'\n'))
    }

    /// A number after whitespace: scientific, then decimal, then integer, each only when
    /// followed by [`Self::after_number`].
    fn number(&self, pos: usize) -> Parsed<Literal> {
        let start = self.skip_ws(pos);
        let ok = |end: Option<usize>| end.filter(|&e| self.after_number(e));
        let (end, is_int) = if let Some(end) = ok(self.sci_text(start)) {
            (end, false)
        } else if let Some(end) = ok(self.float_text(start)) {
            (end, false)
        } else {
            (ok(self.int_text(start))?, true)
        };
        let text: String = self
            .src
            .get(start..end)?
            .chars()
            .map(|c| match digit_value(c) {
                // A digit value is below 10, so this is an ASCII digit.
                Some(d) => char::from_digit(d, 10).unwrap_or(c),
                None => c,
            })
            .collect();
        let literal = if is_int {
            match text.parse::<i64>() {
                Ok(i) => Literal::Int(i),
                // Python keeps the big int; every consumer reads it as a float.
                Err(_) => Literal::Float(text.parse().ok()?),
            }
        } else {
            Literal::Float(text.parse().ok()?)
        };
        Some((literal, end))
    }

    // ---- strings ----

    /// A quoted string after whitespace (pyparsing's `quotedString`): its content, quotes
    /// removed and nothing unescaped.
    fn string(&mut self, pos: usize) -> Parsed<String> {
        let start = self.skip_ws(pos);
        let quote = match self.byte(start) {
            Some(q @ (b'\'' | b'"')) => q,
            _ => return None,
        };
        match scan_string_body(self.src, start + 1, quote) {
            Ok(close) => Some((self.src.get(start + 1..close)?.to_string(), close + 1)),
            Err(stop) => {
                self.fail(stop, if quote == b'"' { "a closing `\"`" } else { "a closing `'`" });
                None
            }
        }
    }

    // ---- paths ----

    /// `partialPathElem`: runs of metric characters and backslash escapes; appends the text
    /// (escapes resolved) to `out`.
    fn partial(&mut self, pos: usize, out: &mut String) -> Option<usize> {
        let mut p = pos;
        loop {
            match self.byte(p) {
                Some(b) if is_metric_char(b) => {
                    let start = p;
                    while self.byte(p).is_some_and(is_metric_char) {
                        p += 1;
                    }
                    out.push_str(self.src.get(start..p)?);
                }
                Some(b'\\') => match self.byte(p + 1) {
                    Some(b) if is_symbol(b) || b == b'=' => {
                        out.push(char::from(b));
                        p += 2;
                    }
                    _ => {
                        self.fail(p + 1, "one of (){},.'\"\\|= after `\\`");
                        break;
                    }
                },
                _ => break,
            }
        }
        (p > pos).then_some(p)
    }

    /// `matchEnum`: `{a,b,...}`, kept verbatim (escapes resolved).
    fn alternatives(&mut self, pos: usize, out: &mut String) -> Option<usize> {
        if self.byte(pos) != Some(b'{') {
            return None;
        }
        let mut text = String::from("{");
        let mut p = self.partial(pos + 1, &mut text)?;
        loop {
            if self.byte(p) != Some(b',') {
                break;
            }
            let mut next = String::from(",");
            match self.partial(p + 1, &mut next) {
                Some(e) => {
                    text.push_str(&next);
                    p = e;
                }
                None => break,
            }
        }
        if self.byte(p) != Some(b'}') {
            self.fail(p, "`}`");
            return None;
        }
        text.push('}');
        out.push_str(&text);
        Some(p + 1)
    }

    /// `pathElement`: partials and alternatives, at least one.
    fn path_element(&mut self, pos: usize, out: &mut String) -> Option<usize> {
        let mut p = self.partial(pos, out).or_else(|| self.alternatives(pos, out))?;
        while let Some(e) = self.alternatives(p, out).or_else(|| self.partial(p, out)) {
            p = e;
        }
        Some(p)
    }

    /// `pathExpression` after whitespace: elements separated by single dots.
    fn path(&mut self, pos: usize) -> Parsed<String> {
        let start = self.skip_ws(pos);
        let mut text = String::new();
        let mut p = self.path_element(start, &mut text)?;
        while self.byte(p) == Some(b'.') {
            let mut next = String::from(".");
            match self.path_element(p + 1, &mut next) {
                Some(e) => {
                    text.push_str(&next);
                    p = e;
                }
                None => break,
            }
        }
        Some((text, p))
    }

    // ---- expressions ----

    /// `pipedExpression`: (template | call | path), then `| call` any number of times.
    fn expression(&mut self, pos: usize) -> Parsed<Expr> {
        if self.too_deep.is_some() {
            return None;
        }
        if let Some(hit) = self.memo_expr.get(&pos) {
            return hit.clone();
        }
        let result = self.expression_uncached(pos);
        if self.too_deep.is_none() {
            self.memo_expr.insert(pos, result.clone());
        }
        result
    }

    fn expression_uncached(&mut self, pos: usize) -> Parsed<Expr> {
        let (mut expr, mut end) = if let Some(t) = self.template(pos) {
            t
        } else if let Some((call, e)) = self.call(pos) {
            (Expr::Call(call), e)
        } else {
            let (path, e) = self.path(pos)?;
            (Expr::Path(path), e)
        };
        loop {
            let bar = self.skip_ws(end);
            if self.byte(bar) != Some(b'|') {
                break;
            }
            match self.call(bar + 1) {
                Some((mut call, e)) => {
                    call.args.insert(0, Arg::Expr(expr));
                    expr = Expr::Call(call);
                    end = e;
                }
                None => {
                    let at = self.skip_ws(bar + 1);
                    self.fail(at, "a function call after `|`");
                    break;
                }
            }
        }
        Some((expr, end))
    }

    /// `call`: `name(positional..., keyword=...)`, with its source text as `raw`.
    fn call(&mut self, pos: usize) -> Parsed<Call> {
        if self.too_deep.is_some() {
            return None;
        }
        if let Some(hit) = self.memo_call.get(&pos) {
            return hit.clone();
        }
        let result = self.call_uncached(pos);
        if self.too_deep.is_none() {
            self.memo_call.insert(pos, result.clone());
        }
        result
    }

    fn call_uncached(&mut self, pos: usize) -> Parsed<Call> {
        let (name, after_name) = self.identifier(pos)?;
        let start = after_name - name.len();
        let open = self.punct(after_name, b'(', "`(`")?;
        if !self.enter(start) {
            return None;
        }
        let result = self.call_body(name, start, open);
        self.depth -= 1;
        result
    }

    /// The rest of a call once `name(` was seen (`start` is where the name starts, `open` is
    /// just past the `(`).
    fn call_body(&mut self, name: &str, start: usize, open: usize) -> Parsed<Call> {
        let mut p = open;
        let mut args = Vec::new();
        let mut kwargs = Vec::new();
        if let Some(first) = self.positional(p, true) {
            args.push(first.0);
            p = first.1;
            // More positionals: `, arg` as long as the next one is not a keyword argument.
            loop {
                let comma = self.skip_ws(p);
                if self.byte(comma) != Some(b',') {
                    break;
                }
                match self.positional(comma + 1, false) {
                    Some((arg, e)) => {
                        args.push(arg);
                        p = e;
                    }
                    None => break,
                }
            }
            // Then optionally `, kw=arg, ...`.
            let comma = self.skip_ws(p);
            if self.byte(comma) == Some(b',')
                && let Some((first, e)) = self.kwarg(comma + 1, true)
            {
                kwargs.push(first);
                p = e;
                loop {
                    let comma = self.skip_ws(p);
                    if self.byte(comma) != Some(b',') {
                        break;
                    }
                    match self.kwarg(comma + 1, true) {
                        Some((kw, e)) => {
                            kwargs.push(kw);
                            p = e;
                        }
                        None => break,
                    }
                }
            }
            let close = self.skip_ws(p);
            if self.byte(close) != Some(b')') {
                self.fail(close, "`,`");
            }
        }
        let end = self.punct(p, b')', "`)`")?;
        let raw = self.src.get(start..end)?.to_string();
        Some((Call { name: name.to_string(), args, kwargs, raw }, end))
    }

    /// A positional argument: anything that is not a complete keyword argument (graphite-web's
    /// `~kwarg + arg`).
    fn positional(&mut self, pos: usize, first: bool) -> Parsed<Arg> {
        if self.kwarg(pos, false).is_some() {
            if first {
                let at = self.skip_ws(pos);
                self.fail(at, "a positional argument (graphite-web 1.1.8 needs one first)");
            }
            return None;
        }
        self.arg(pos)
    }

    /// `argname = arg`. `report` says whether a missing name is worth an error message.
    fn kwarg(&mut self, pos: usize, report: bool) -> Parsed<(String, Arg)> {
        let Some((name, e)) = self.identifier(pos) else {
            if report {
                let at = self.skip_ws(pos);
                self.fail(at, "a keyword argument");
            }
            return None;
        };
        let eq = self.skip_ws(e);
        if self.byte(eq) != Some(b'=') {
            if report {
                self.fail(eq, "`=`");
            }
            return None;
        }
        let (arg, end) = self.arg(eq + 1)?;
        Some(((name.to_string(), arg), end))
    }

    /// `arg`: boolean | number | none | string | infinity | expression.
    fn arg(&mut self, pos: usize) -> Parsed<Arg> {
        if let Some(e) = self.keyword(pos, "TRUE") {
            return Some((Arg::Literal(Literal::Bool(true)), e));
        }
        if let Some(e) = self.keyword(pos, "FALSE") {
            return Some((Arg::Literal(Literal::Bool(false)), e));
        }
        if let Some((n, e)) = self.number(pos) {
            return Some((Arg::Literal(n), e));
        }
        if let Some(e) = self.keyword(pos, "NONE") {
            return Some((Arg::Literal(Literal::None), e));
        }
        if let Some((s, e)) = self.string(pos) {
            return Some((Arg::Literal(Literal::Str(s)), e));
        }
        if let Some(e) = self.keyword(pos, "INF") {
            return Some((Arg::Literal(Literal::Float(f64::INFINITY)), e));
        }
        if let Some((expr, e)) = self.expression(pos) {
            return Some((Arg::Expr(expr), e));
        }
        let at = self.skip_ws(pos);
        self.fail(at, "an argument");
        None
    }

    /// `template(call | path [, literals])`: the literals all positional or all keyword.
    fn template(&mut self, pos: usize) -> Parsed<Expr> {
        let start = self.skip_ws(pos);
        if !self.src.get(start..)?.starts_with("template") {
            return None;
        }
        let open = self.skip_ws(start + "template".len());
        if self.byte(open) != Some(b'(') || !self.enter(pos) {
            return None;
        }
        let result = self.template_body(open);
        self.depth -= 1;
        result
    }

    /// The rest of `template(` once `(` (at `open`) was seen.
    fn template_body(&mut self, open: usize) -> Parsed<Expr> {
        let (inner, mut p) = match self.call(open + 1) {
            Some((call, e)) => (Expr::Call(call), e),
            None => {
                let (path, e) = self.path(open + 1)?;
                (Expr::Path(path), e)
            }
        };
        let mut args = Vec::new();
        let mut kwargs = Vec::new();
        let comma = self.skip_ws(p);
        if self.byte(comma) == Some(b',') {
            if let Some((list, e)) = self.literal_args(comma + 1) {
                args = list;
                p = e;
            } else if let Some((list, e)) = self.literal_kwargs(comma + 1) {
                kwargs = list;
                p = e;
            }
        }
        let close = self.skip_ws(p);
        if self.byte(close) != Some(b')') {
            return None;
        }
        Some((Expr::Template { inner: Box::new(inner), args, kwargs }, close + 1))
    }

    /// `litarg`: a number or a string.
    fn literal(&mut self, pos: usize) -> Parsed<Literal> {
        if let Some(n) = self.number(pos) {
            return Some(n);
        }
        let (s, e) = self.string(pos)?;
        Some((Literal::Str(s), e))
    }

    /// `litkwarg`: `name = literal`.
    fn literal_kwarg(&mut self, pos: usize) -> Parsed<(String, Literal)> {
        let (name, e) = self.identifier(pos)?;
        let eq = self.skip_ws(e);
        if self.byte(eq) != Some(b'=') {
            return None;
        }
        let (lit, end) = self.literal(eq + 1)?;
        Some(((name.to_string(), lit), end))
    }

    /// `litargs`: literals separated by commas, none of them a keyword literal.
    fn literal_args(&mut self, pos: usize) -> Parsed<Vec<Literal>> {
        let positional = |this: &mut Self, p: usize| {
            if this.literal_kwarg(p).is_some() { None } else { this.literal(p) }
        };
        let (first, mut p) = positional(self, pos)?;
        let mut list = vec![first];
        loop {
            let comma = self.skip_ws(p);
            if self.byte(comma) != Some(b',') {
                break;
            }
            match positional(self, comma + 1) {
                Some((lit, e)) => {
                    list.push(lit);
                    p = e;
                }
                None => break,
            }
        }
        Some((list, p))
    }

    /// `litkwargs`: keyword literals separated by commas.
    fn literal_kwargs(&mut self, pos: usize) -> Parsed<Vec<(String, Literal)>> {
        let (first, mut p) = self.literal_kwarg(pos)?;
        let mut list = vec![first];
        loop {
            let comma = self.skip_ws(p);
            if self.byte(comma) != Some(b',') {
                break;
            }
            match self.literal_kwarg(comma + 1) {
                Some((kw, e)) => {
                    list.push(kw);
                    p = e;
                }
                None => break,
            }
        }
        Some((list, p))
    }
}

/// Scans the body of a string that opened with `quote` just before `pos`, as pyparsing's
/// `quotedString` regex does: any character but the quote, CR, LF and backslash; a doubled
/// quote; a backslash and any character but `x`; `\x` and hex digits. Returns the position of
/// the closing quote, or the position where the body stopped without one.
fn scan_string_body(src: &str, pos: usize, quote: u8) -> std::result::Result<usize, usize> {
    let bytes = src.as_bytes();
    let mut p = pos;
    loop {
        match bytes.get(p) {
            None | Some(b'\n' | b'\r') => return Err(p),
            Some(&b) if b == quote => {
                if bytes.get(p + 1) == Some(&quote) {
                    p += 2;
                } else {
                    return Ok(p);
                }
            }
            Some(b'\\') => {
                let Some(next) = src.get(p + 1..).and_then(|rest| rest.chars().next()) else {
                    return Err(p);
                };
                if next == 'x' {
                    let hex = bytes.get(p + 2..).map_or(0, |rest| {
                        rest.iter().take_while(|b| b.is_ascii_hexdigit()).count()
                    });
                    if hex == 0 {
                        return Err(p);
                    }
                    p += 2 + hex;
                } else {
                    p += 1 + next.len_utf8();
                }
            }
            Some(_) => {
                let c = src.get(p..).and_then(|rest| rest.chars().next()).map_or(1, char::len_utf8);
                p += c;
            }
        }
    }
}

// ---- printing ----

impl fmt::Display for Expr {
    /// The expression as a canonical target: no pipes, no spaces, paths escaped where needed,
    /// strings in single quotes unless only double quotes can hold them.
    ///
    /// Parsing the text gives the same tree back whenever graphite-web's grammar can express
    /// that tree at all. It cannot for a few values, which are printed as is: a path argument
    /// that reads as a keyword or number (`true`, `12`), a path with whitespace or non-ASCII
    /// characters (only `template()` substitution makes those), a string holding both quote
    /// kinds unpaired, and NaN.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Path(path) => write_path(f, path),
            Expr::Call(call) => {
                write!(f, "{}(", call.name)?;
                let mut sep = "";
                for arg in &call.args {
                    f.write_str(sep)?;
                    write_arg(f, arg)?;
                    sep = ",";
                }
                for (name, arg) in &call.kwargs {
                    write!(f, "{sep}{name}=")?;
                    write_arg(f, arg)?;
                    sep = ",";
                }
                f.write_str(")")
            }
            Expr::Template { inner, args, kwargs } => {
                write!(f, "template({inner}")?;
                for lit in args {
                    f.write_str(",")?;
                    write_literal(f, lit)?;
                }
                for (name, lit) in kwargs {
                    write!(f, ",{name}=")?;
                    write_literal(f, lit)?;
                }
                f.write_str(")")
            }
        }
    }
}

fn write_arg(f: &mut fmt::Formatter<'_>, arg: &Arg) -> fmt::Result {
    match arg {
        Arg::Literal(lit) => write_literal(f, lit),
        Arg::Expr(expr) => write!(f, "{expr}"),
    }
}

fn write_literal(f: &mut fmt::Formatter<'_>, lit: &Literal) -> fmt::Result {
    match lit {
        Literal::Bool(true) => f.write_str("true"),
        Literal::Bool(false) => f.write_str("false"),
        Literal::None => f.write_str("None"),
        Literal::Int(i) => write!(f, "{i}"),
        Literal::Float(x) if x.is_infinite() => {
            // `-inf` would be a path; a negative number too large for a double reads as -inf.
            f.write_str(if *x > 0.0 { "inf" } else { "-1e999" })
        }
        // Rust's `{:?}` is the shortest text that reads back to `x`, always with a `.` or an
        // exponent (and never `e+`, which the grammar does not accept).
        Literal::Float(x) => write!(f, "{x:?}"),
        Literal::Str(s) => {
            let quote = if string_fits(s, b'\'') || !string_fits(s, b'"') { '\'' } else { '"' };
            write!(f, "{quote}{s}{quote}")
        }
    }
}

/// Whether `s` between `quote`s scans back as exactly `s`.
fn string_fits(s: &str, quote: u8) -> bool {
    let q = char::from(quote);
    let text = format!("{q}{s}{q}");
    scan_string_body(&text, 1, quote) == Ok(text.len() - 1)
}

/// Prints a path so that it parses back to the same text: grammar characters get a backslash
/// unless they are structure (a `.` between two non-empty elements, a well-formed `{a,b}`).
fn write_path(f: &mut fmt::Formatter<'_>, path: &str) -> fmt::Result {
    let chars: Vec<char> = path.chars().collect();
    // `name=...` as an argument would read as a keyword argument: escape that `=`.
    let ident_len =
        chars.iter().position(|&c| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(chars.len());
    let kw_eq = (ident_len > 0
        && chars.first().is_some_and(|&c| is_ident_start_char(c))
        && chars.get(ident_len) == Some(&'='))
    .then_some(ident_len);
    let escape = |f: &mut fmt::Formatter<'_>, c: char, i: usize| -> fmt::Result {
        if (c.is_ascii() && is_symbol(c as u8)) || Some(i) == kw_eq {
            write!(f, "\\{c}")
        } else {
            write!(f, "{c}")
        }
    };
    let mut element_empty = true;
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        match c {
            '.' if !element_empty && i + 1 < chars.len() => {
                f.write_str(".")?;
                element_empty = true;
                i += 1;
                continue;
            }
            '{' => {
                if let Some(close) = alternatives_end(&chars, i) {
                    f.write_str("{")?;
                    for (j, &inner) in chars.iter().enumerate().take(close).skip(i + 1) {
                        if inner == ',' { f.write_str(",")? } else { escape(f, inner, j)? }
                    }
                    f.write_str("}")?;
                    i = close;
                } else {
                    escape(f, c, i)?;
                }
            }
            _ => escape(f, c, i)?,
        }
        element_empty = false;
        i += 1;
    }
    Ok(())
}

fn is_ident_start_char(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

/// The index of the `}` closing a well-formed `{a,b}` that opens at `open`: non-empty
/// alternatives, no `{` inside.
fn alternatives_end(chars: &[char], open: usize) -> Option<usize> {
    let mut part_len = 0;
    for (j, &c) in chars.iter().enumerate().skip(open + 1) {
        match c {
            '}' => return (part_len > 0).then_some(j),
            ',' if part_len == 0 => return None,
            ',' => part_len = 0,
            '{' => return None,
            _ => part_len += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(s: &str) -> Expr {
        Expr::Path(s.into())
    }

    fn call(name: &str, args: Vec<Arg>, raw: &str) -> Expr {
        Expr::Call(Call { name: name.into(), args, kwargs: Vec::new(), raw: raw.into() })
    }

    fn p(s: &str) -> Arg {
        Arg::Expr(path(s))
    }

    fn lit(l: Literal) -> Arg {
        Arg::Literal(l)
    }

    fn args_of(target: &str) -> Vec<Arg> {
        match parse(target) {
            Ok(Expr::Call(c)) => c.args,
            other => panic!("{target}: {other:?}"),
        }
    }

    fn parse_error(target: &str) -> (usize, String) {
        match parse(target) {
            Err(Error::Parse { position, expected, .. }) => (position, expected),
            other => panic!("{target}: expected an error, got {other:?}"),
        }
    }

    #[test]
    fn parses_paths_with_globs_and_escapes() {
        assert_eq!(
            parse("servers.*.cpu.{user,system}").ok(),
            Some(path("servers.*.cpu.{user,system}"))
        );
        assert_eq!(parse(r"a.b\(c\).d").ok(), Some(path("a.b(c).d")));
        assert_eq!(parse(r"a\=b\,c\.d").ok(), Some(path("a=b,c.d")));
        assert_eq!(parse("a.b;tag=v").ok(), Some(path("a.b;tag=v")));
        assert_eq!(parse("  a.b[0-9]?  ").ok(), Some(path("a.b[0-9]?")));
        assert_eq!(parse("123").ok(), Some(path("123")));
    }

    #[test]
    fn parses_nested_calls_with_raw_text() {
        let e = parse("sumSeries( a.b , scale(c.d, 2))").ok();
        let inner = call("scale", vec![p("c.d"), lit(Literal::Int(2))], "scale(c.d, 2)");
        assert_eq!(
            e,
            Some(call(
                "sumSeries",
                vec![p("a.b"), Arg::Expr(inner)],
                "sumSeries( a.b , scale(c.d, 2))"
            ))
        );
    }

    #[test]
    fn parses_literals() {
        let args =
            args_of("f(x, 1, -2, 1.5, 1e3, 2.5E-2, inf, INF, True, false, NONE, 'a', \"b\")");
        assert_eq!(
            args[1..],
            [
                lit(Literal::Int(1)),
                lit(Literal::Int(-2)),
                lit(Literal::Float(1.5)),
                lit(Literal::Float(1000.0)),
                lit(Literal::Float(0.025)),
                lit(Literal::Float(f64::INFINITY)),
                lit(Literal::Float(f64::INFINITY)),
                lit(Literal::Bool(true)),
                lit(Literal::Bool(false)),
                lit(Literal::None),
                lit(Literal::Str("a".into())),
                lit(Literal::Str("b".into())),
            ]
        );
    }

    #[test]
    fn keeps_string_escapes_verbatim() {
        assert_eq!(args_of(r"f('it\'s')"), [lit(Literal::Str(r"it\'s".into()))]);
        assert_eq!(args_of(r#"f("a""b")"#), [lit(Literal::Str(r#"a""b"#.into()))]);
        assert_eq!(args_of(r"f('\x41')"), [lit(Literal::Str(r"\x41".into()))]);
    }

    #[test]
    fn number_needs_a_following_separator() {
        assert_eq!(args_of("f(1abc)"), [p("1abc")]);
        assert_eq!(args_of("f(1.x)"), [p("1.x")]);
        assert_eq!(args_of("f(1e5.3)"), [p("1e5.3")]);
        assert_eq!(args_of("f(-inf)"), [p("-inf")]);
        assert_eq!(args_of("f(trueish)"), [p("trueish")]);
        assert_eq!(args_of("f(1 ,2\n)"), [lit(Literal::Int(1)), lit(Literal::Int(2))]);
        assert!(parse("f(1 \nabc)").is_err());
    }

    #[test]
    fn reads_unicode_digits_and_keyword_quirks() {
        assert_eq!(args_of("f(\u{663}\u{662})"), [lit(Literal::Int(32))]);
        assert_eq!(args_of("f(1.\u{ff15})"), [lit(Literal::Float(1.5))]);
        assert_eq!(args_of("f(\u{131}nf)"), [lit(Literal::Float(f64::INFINITY))]);
    }

    #[test]
    fn big_integers_become_floats() {
        assert_eq!(args_of("f(99999999999999999999)"), [lit(Literal::Float(1e20))]);
        assert_eq!(args_of("f(-9223372036854775808)"), [lit(Literal::Int(i64::MIN))]);
    }

    #[test]
    fn parses_keyword_arguments_after_positionals() {
        match parse("f(a.b, k=1, other = c.d)") {
            Ok(Expr::Call(c)) => {
                assert_eq!(c.args, [p("a.b")]);
                assert_eq!(
                    c.kwargs,
                    [("k".into(), lit(Literal::Int(1))), ("other".into(), p("c.d"))]
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn rejects_keyword_only_calls_like_graphite_1_1_8() {
        let (pos, expected) = parse_error("f(k=1)");
        assert_eq!(pos, 2);
        assert!(expected.contains("positional"), "{expected}");
    }

    #[test]
    fn rejects_positional_after_keyword() {
        let (pos, expected) = parse_error("f(a.b, k=1, 2)");
        assert_eq!(pos, 12, "{expected}");
    }

    #[test]
    fn rejects_trailing_input() {
        assert_eq!(parse_error("a.b c").0, 4);
        let (pos, expected) = parse_error("scale(a.b,.5)");
        assert_eq!((pos, expected.as_str()), (10, "an argument or a keyword argument"));
        assert_eq!(parse_error("f(a.b").1, "`,` or `)`");
        assert_eq!(parse_error("f('abc").1, "a closing `'`");
        assert_eq!(parse_error("a.b|").1, "a function call after `|`");
        assert_eq!(parse_error("").0, 0);
        assert_eq!(parse_error("  ").0, 2);
    }

    #[test]
    fn desugars_pipes() {
        let piped = parse("a.b | f(1) |g( )").ok();
        let f = call("f", vec![p("a.b"), lit(Literal::Int(1))], "f(1)");
        assert_eq!(piped, Some(call("g", vec![Arg::Expr(f)], "g( )")));
        assert_eq!(
            parse("sumSeries(a.*)|aliasByNode(0)").map(|e| e.to_string()).ok().as_deref(),
            Some("aliasByNode(sumSeries(a.*),0)")
        );
    }

    #[test]
    fn parses_templates() {
        let t = parse("template(a.$1.b, 'x', 2)").ok();
        assert_eq!(
            t,
            Some(Expr::Template {
                inner: Box::new(path("a.$1.b")),
                args: vec![Literal::Str("x".into()), Literal::Int(2)],
                kwargs: vec![],
            })
        );
        let t = parse("template(sumSeries(a.$host), host='web01')").ok();
        assert!(matches!(t, Some(Expr::Template { ref kwargs, .. }) if kwargs.len() == 1), "{t:?}");
        // Non-literal or mixed arguments: an ordinary call named `template`.
        assert!(
            matches!(parse("template(a.b, c.d)"), Ok(Expr::Call(ref c)) if c.name == "template")
        );
        assert!(
            matches!(parse("template(a.b, 1, k=2)"), Ok(Expr::Call(ref c)) if c.name == "template")
        );
        // `templatefoo` is just a function.
        assert!(
            matches!(parse("templatefoo(a)"), Ok(Expr::Call(ref c)) if c.name == "templatefoo")
        );
    }

    #[test]
    fn limits_nesting_depth() {
        let ok = format!("{}a{}", "f(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
        assert!(parse(&ok).is_ok());
        let deep = format!("{}a{}", "f(".repeat(MAX_DEPTH + 1), ")".repeat(MAX_DEPTH + 1));
        let err = parse(&deep).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("nested"), "{err}");
        // Far deeper, unclosed, with templates (retried as calls): still fast and no overflow.
        let nasty = "template(f(".repeat(100_000);
        assert!(parse(&nasty).is_err());
        // The deepest accepted nesting fits a 1 MiB stack even unoptimized (tokio's worker
        // threads have 2 MiB).
        let worst =
            format!("{}a.b{}", "template(f(".repeat(MAX_DEPTH / 2), "))".repeat(MAX_DEPTH / 2));
        let deepest = std::thread::Builder::new()
            .stack_size(1 << 20)
            .spawn(move || parse(&worst).is_ok() && parse(&ok).is_ok())
            .map(|h| h.join());
        assert!(matches!(deepest, Ok(Ok(true))));
    }

    #[test]
    fn memoizes_backtracking() {
        // Each level is tried as a template, then as a call: exponential without the memo.
        let n = MAX_DEPTH / 2;
        let target = format!("{}a.$1{}", "template(f(".repeat(n), "))".repeat(n));
        assert!(parse(&target).is_ok());
    }

    #[test]
    fn prints_canonical_targets() {
        let cases = [
            ("sumSeries( a.b , c.d )", "sumSeries(a.b,c.d)"),
            ("a.b|scale(2.0)|alias(\"x\")", "alias(scale(a.b,2.0),'x')"),
            ("f(a, inf, none, TRUE, k=1e20)", "f(a,inf,None,true,k=1e20)"),
            (r"a.b\(c\).d", r"a.b\(c\).d"),
            (r"f(a\=b)", r"f(a\=b)"),
            (r"\.a.b\..\.", r"\.a.b.\.\."),
            (r"a.{b,c\.d}.e\{f", r"a.{b,c\.d}.e\{f"),
            ("f(\"it's\")", "f(\"it's\")"),
            ("template(a.$1, 'x')", "template(a.$1,'x')"),
            ("f(-1e999)", "f(-1e999)"),
        ];
        for (target, want) in cases {
            let printed = parse(target).map(|e| e.to_string()).ok();
            assert_eq!(printed.as_deref(), Some(want), "{target}");
        }
    }

    mod props {
        use super::super::*;
        use proptest::prelude::*;

        /// Sets every `raw` to the call's printed text (what re-parsing the print gives).
        fn normalize(expr: &mut Expr) {
            match expr {
                Expr::Path(_) => {}
                Expr::Call(call) => {
                    for arg in call.args.iter_mut().chain(call.kwargs.iter_mut().map(|(_, a)| a)) {
                        if let Arg::Expr(e) = arg {
                            normalize(e);
                        }
                    }
                    call.raw = Expr::Call(call.clone()).to_string();
                }
                Expr::Template { inner, .. } => normalize(inner),
            }
        }

        fn ident() -> impl Strategy<Value = String> {
            "[a-zA-Z_][a-zA-Z0-9_]{0,6}".prop_filter("not template", |s| s != "template")
        }

        /// Paths graphite-web can write as an argument: not a keyword or number.
        fn path() -> impl Strategy<Value = String> {
            "[a-z*?$\\[\\]{},.;=:\\-_()'\"|\\\\0-9]{1,12}".prop_filter("expressible", |s| {
                matches!(parse(&format!("f({})", Expr::Path(s.clone()))),
                    Ok(Expr::Call(c)) if c.args == [Arg::Expr(Expr::Path(s.clone()))])
            })
        }

        fn string() -> impl Strategy<Value = String> {
            "[a-z '\"\\\\x0-9é]{0,8}"
                .prop_filter("quotable", |s| string_fits(s, b'\'') || string_fits(s, b'"'))
        }

        fn literal() -> impl Strategy<Value = Literal> {
            prop_oneof![
                any::<bool>().prop_map(Literal::Bool),
                any::<i64>().prop_map(Literal::Int),
                any::<f64>().prop_filter("not NaN", |x| !x.is_nan()).prop_map(Literal::Float),
                string().prop_map(Literal::Str),
                Just(Literal::None),
            ]
        }

        fn template_literal() -> impl Strategy<Value = Literal> {
            prop_oneof![
                any::<i64>().prop_map(Literal::Int),
                any::<f64>().prop_filter("finite", |x| x.is_finite()).prop_map(Literal::Float),
                string().prop_map(Literal::Str),
            ]
        }

        fn expr() -> impl Strategy<Value = Expr> {
            let leaf = path().prop_map(Expr::Path);
            let tree = leaf.prop_recursive(4, 32, 4, |inner| {
                let arg = prop_oneof![
                    literal().prop_map(Arg::Literal),
                    inner.clone().prop_map(Arg::Expr)
                ];
                (
                    ident(),
                    prop::collection::vec(arg.clone(), 0..4),
                    prop::collection::vec((ident(), arg), 0..3),
                )
                    .prop_map(|(name, args, kwargs)| {
                        // graphite-web 1.1.8 needs a positional argument before keywords.
                        let kwargs = if args.is_empty() { Vec::new() } else { kwargs };
                        Expr::Call(Call { name, args, kwargs, raw: String::new() })
                    })
            });
            (
                tree,
                prop::option::of((
                    prop::collection::vec(template_literal(), 0..3),
                    prop::collection::vec((ident(), template_literal()), 0..3),
                    any::<bool>(),
                )),
            )
                .prop_map(|(expr, template)| match (template, &expr) {
                    (Some((args, kwargs, positional)), Expr::Path(_) | Expr::Call(_)) => {
                        Expr::Template {
                            inner: Box::new(expr),
                            args: if positional { args } else { Vec::new() },
                            kwargs: if positional { Vec::new() } else { kwargs },
                        }
                    }
                    _ => expr,
                })
        }

        proptest! {
            #[test]
            fn never_panics(s in "\\PC{0,64}") {
                let _ = parse(&s);
            }

            #[test]
            fn never_panics_on_grammar_soup(s in "[a-z(){},.'\"\\\\|= 0-9eE\\-_\n]{0,64}") {
                let _ = parse(&s);
            }

            #[test]
            fn printed_trees_parse_back(mut e in expr()) {
                normalize(&mut e);
                let text = e.to_string();
                prop_assert_eq!(parse(&text).ok(), Some(e), "{}", text);
            }

            #[test]
            fn printing_a_parse_is_stable(s in "[a-z(){},.'\"|= 0-9\\-]{0,40}") {
                if let Ok(mut e) = parse(&s) {
                    normalize(&mut e);
                    let text = e.to_string();
                    let again = parse(&text);
                    // Paths that only parse at top level or as keywords are the documented
                    // exceptions; everything else must round-trip.
                    if let Ok(again) = again {
                        prop_assert_eq!(again.to_string(), text);
                    }
                }
            }
        }
    }
}
