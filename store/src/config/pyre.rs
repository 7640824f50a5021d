//! Python `re` patterns, checked as Python 3.11's parser checks them and translated to the
//! `regex` crate's syntax; Python `re.sub` templates and `re.sub` itself.
//!
//! carbon's patterns are Python regular expressions. Most of the syntax means the same in the
//! `regex` crate, but not all of it, so patterns are translated rather than passed through:
//! * `\Z` is `\z`; `\<`, `\>` and other escaped punctuation are literals (in Rust `\<` is a word
//!   boundary); `\x41`, `\u0041`, `\U00000041` and octal `\101` are characters;
//! * a `{` that does not start a valid `{m,n}` is a literal (Rust refuses it); `{,n}` is `{0,n}`;
//! * inside `[...]`, `[`, `&&`, `--` and `~~` are literals (Rust reads nested classes and set
//!   operations); `\b` is a backspace;
//! * named groups become numbered ones (their names are kept for `\g<name>` in templates);
//! * `(?#...)` comments are dropped; the `u` flag is the default and dropped.
//!
//! What Python accepts and Rust cannot run is [`PyRegexError::Unsupported`]: look-around,
//! back-references, conditionals, atomic groups, possessive repeats, `\N{...}`, the `x`, `a` and
//! `t` flags, and whatever the `regex` crate refuses after translation (size limits). What
//! Python refuses is [`PyRegexError::Invalid`], with Python's message.
//!
//! Remaining differences, all around exotic input: Python's `$` also matches before a final
//! `\n` (Rust's only at the very end; metric names have no newlines); Unicode classes (`\w`,
//! `\s`, case folding) follow slightly different tables; lone surrogates, which Rust strings
//! cannot hold, never match.

use std::borrow::Cow;
use std::collections::HashMap;

use regex::{Captures, Regex};

use super::text::py_int;

/// Python's `sre_constants.MAXREPEAT` on 64-bit builds.
const MAX_REPEAT: u64 = u32::MAX as u64;

/// A class that matches nothing (what a lone surrogate becomes).
const NEVER: &str = r"[^\x{0}-\x{10FFFF}]";

/// Why a pattern cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PyRegexError {
    /// Python's `re` refuses it; the message is Python's.
    Invalid(String),
    /// Python accepts it but it cannot run here; names the construct.
    Unsupported(String),
}

/// A compiled Python pattern.
#[derive(Debug, Clone)]
pub(crate) struct PyRegex {
    pattern: String,
    regex: Regex,
    groups: usize,
    names: HashMap<String, usize>,
}

impl PyRegex {
    /// Checks and translates a Python pattern and compiles it.
    pub(crate) fn new(pattern: &str) -> Result<PyRegex, PyRegexError> {
        let t = translate(pattern)?;
        let regex = Regex::new(&t.rust).map_err(|e| {
            let message = e.to_string();
            let last = message.lines().last().unwrap_or("").trim_start_matches("error: ");
            PyRegexError::Unsupported(format!("a construct the regex engine refuses ({last})"))
        })?;
        Ok(PyRegex { pattern: pattern.to_string(), regex, groups: t.groups, names: t.names })
    }

    /// The Python pattern as written.
    pub(crate) fn as_str(&self) -> &str {
        &self.pattern
    }

    /// Python's `bool(regex.search(text))`.
    pub(crate) fn is_match(&self, text: &str) -> bool {
        self.regex.is_match(text)
    }

    /// The names of the pattern's named groups.
    pub(crate) fn group_names(&self) -> Vec<&str> {
        self.names.keys().map(String::as_str).collect()
    }

    /// Python's `regex.match(text)` (anchored at the start, not the end) and its
    /// `groupdict()`: each named group with its text, `None` for a group that took no part.
    pub(crate) fn match_groups<'t>(&self, text: &'t str) -> Option<Vec<(&str, Option<&'t str>)>> {
        // The leftmost match starts at 0 whenever any match does, and among the matches that
        // start there the engine picks the one Python's backtracking would.
        let caps = self.regex.captures(text)?;
        if caps.get(0)?.start() != 0 {
            return None;
        }
        let mut groups: Vec<(&str, Option<&'t str>)> = self
            .names
            .iter()
            .map(|(name, &index)| (name.as_str(), caps.get(index).map(|m| m.as_str())))
            .collect();
        groups.sort_unstable_by_key(|(name, _)| *name);
        Some(groups)
    }

    /// Translates a Python `re.sub` replacement for this pattern into the `regex` crate's
    /// replacement syntax (`${1}`, `$$`).
    pub(crate) fn template(&self, replacement: &str) -> Result<String, String> {
        translate_template(replacement, self.groups, &self.names)
    }

    /// Python's `regex.sub(template, text)` (all occurrences), `template` in the `regex`
    /// crate's syntax as [`PyRegex::template`] makes it.
    ///
    /// Like Python 3.7 and later, an empty match right after a non-empty one is replaced too
    /// (`re.sub('x*', '-', 'abxd')` is `-a-b--d-`; the `regex` crate's own `replace_all` gives
    /// `-a-b-d-`). After an empty match Python's backtracking engine first tries for a
    /// non-empty match at the same place (`a??` on `a`); this moves on to the next character
    /// instead, which only differs for patterns that prefer an empty match to a non-empty one.
    pub(crate) fn sub<'t>(&self, template: &str, text: &'t str) -> Cow<'t, str> {
        let mut out = String::new();
        let mut copied = 0;
        let mut pos = 0;
        let mut must_advance = false;
        let mut replaced = false;
        while pos <= text.len() {
            let Some(caps) = self.regex.captures_at(text, pos) else { break };
            let Some(m) = caps.get(0) else { break };
            if must_advance && m.start() == pos && m.end() == pos {
                match text.get(pos..).and_then(|rest| rest.chars().next()) {
                    Some(c) => {
                        pos += c.len_utf8();
                        must_advance = false;
                        continue;
                    }
                    None => break,
                }
            }
            out.push_str(text.get(copied..m.start()).unwrap_or_default());
            expand(&caps, template, &mut out);
            copied = m.end();
            must_advance = m.start() == m.end();
            pos = m.end();
            replaced = true;
        }
        if !replaced {
            return Cow::Borrowed(text);
        }
        out.push_str(text.get(copied..).unwrap_or_default());
        Cow::Owned(out)
    }
}

/// `Captures::expand`, kept in one place.
fn expand(caps: &Captures<'_>, template: &str, out: &mut String) {
    caps.expand(template, out);
}

/// A translated pattern.
#[derive(Debug)]
struct Translated {
    rust: String,
    groups: usize,
    names: HashMap<String, usize>,
}

/// What the last item of the current sequence is, for Python's repeat checks.
#[derive(Clone, Copy, PartialEq)]
enum Last {
    /// Nothing yet (start of a sequence or alternative).
    Nothing,
    /// An anchor (`^`, `$`, `\b`, ...): Python refuses to repeat it.
    Anchor,
    /// A repeat: repeating it again is Python's "multiple repeat".
    Repeat,
    /// Something repeatable.
    Item,
}

/// An open parenthesis.
struct Frame {
    /// The group number, for capturing groups.
    group: Option<usize>,
    /// For conditionals, how many branches so far.
    branches: Option<usize>,
}

/// The pattern as Python's tokenizer sees it: characters, a backslash taking the next one.
struct Source {
    chars: Vec<char>,
    at: usize,
}

impl Source {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.at += 1;
        Some(c)
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    /// Up to `n` characters satisfying `f`.
    fn take_while(&mut self, n: usize, f: impl Fn(char) -> bool) -> String {
        let mut s = String::new();
        while s.chars().count() < n {
            match self.peek() {
                Some(c) if f(c) => {
                    s.push(c);
                    self.at += 1;
                }
                _ => break,
            }
        }
        s
    }

    /// Python's `getuntil`: characters up to `end` (escapes stay two characters).
    fn until(&mut self, end: char, what: &str) -> Result<String, PyRegexError> {
        let mut s = String::new();
        loop {
            let Some(c) = self.next() else {
                return Err(invalid(if s.is_empty() {
                    format!("missing {what}")
                } else {
                    format!("missing {end}, unterminated name")
                }));
            };
            if c == end {
                if s.is_empty() {
                    return Err(invalid(format!("missing {what}")));
                }
                return Ok(s);
            }
            s.push(c);
            if c == '\\' {
                match self.next() {
                    Some(d) => s.push(d),
                    None => return Err(invalid("bad escape (end of pattern)")),
                }
            }
        }
    }
}

fn invalid(message: impl Into<String>) -> PyRegexError {
    PyRegexError::Invalid(message.into())
}

/// One member of a character class.
enum ClassItem {
    Char(u32),
    Range(u32, u32),
    Category(char),
}

/// Python's `str.isidentifier()`, approximately (Rust has no XID tables in std).
fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_alphabetic() || c == '_')
        && chars.all(|c| c.is_alphanumeric() || c == '_')
}

/// A literal code point outside a class.
fn push_literal(out: &mut String, code: u32) {
    match char::from_u32(code) {
        Some(c) => out.push_str(&regex::escape(c.encode_utf8(&mut [0; 4]))),
        None => out.push_str(NEVER),
    }
}

/// A literal code point inside a class (the caller has dropped surrogates).
fn push_class_char(out: &mut String, c: char) {
    if matches!(c, '\\' | ']' | '[' | '^' | '-' | '&' | '~') {
        out.push('\\');
    }
    out.push(c);
}

/// `\xhh`, `\uhhhh`, `\Uhhhhhhhh` after the letter: exactly `n` hex digits.
fn hex_escape(src: &mut Source, letter: char, n: usize) -> Result<u32, PyRegexError> {
    let digits = src.take_while(n, |c| c.is_ascii_hexdigit());
    if digits.chars().count() != n {
        return Err(invalid(format!("incomplete escape \\{letter}{digits}")));
    }
    u32::from_str_radix(&digits, 16).map_err(|_| invalid(format!("bad escape \\{letter}{digits}")))
}

/// Python's `_class_escape`, after the backslash.
fn class_escape(src: &mut Source) -> Result<ClassItem, PyRegexError> {
    let Some(c) = src.next() else {
        return Err(invalid("bad escape (end of pattern)"));
    };
    let code = match c {
        'a' => 7,
        'b' => 8,
        'f' => 12,
        'n' => 10,
        'r' => 13,
        't' => 9,
        'v' => 11,
        '\\' => 92,
        'd' | 'D' | 's' | 'S' | 'w' | 'W' => return Ok(ClassItem::Category(c)),
        'x' => hex_escape(src, c, 2)?,
        'u' => hex_escape(src, c, 4)?,
        'U' => {
            let code = hex_escape(src, c, 8)?;
            if code > 0x10_FFFF {
                return Err(invalid(format!("bad escape \\U{code:08x}")));
            }
            code
        }
        'N' => return Err(PyRegexError::Unsupported("a named character (\\N{...})".into())),
        '0'..='7' => {
            let more = src.take_while(2, |d| ('0'..='7').contains(&d));
            let code = u32::from_str_radix(&format!("{c}{more}"), 8).unwrap_or(u32::MAX);
            if code > 0o377 {
                return Err(invalid(format!(
                    "octal escape value \\{c}{more} outside of range 0-0o377"
                )));
            }
            code
        }
        _ if c.is_ascii_alphanumeric() => return Err(invalid(format!("bad escape \\{c}"))),
        _ => u32::from(c),
    };
    Ok(ClassItem::Char(code))
}

/// Parses a class after its `[`, writes it in Rust's syntax.
fn class(src: &mut Source, out: &mut String) -> Result<(), PyRegexError> {
    let negate = src.eat('^');
    let mut items: Vec<ClassItem> = Vec::new();
    let unterminated = || invalid("unterminated character set");
    // Python's token for messages: a character, or a backslash and the next one.
    let token = |src: &Source, at: usize| -> String {
        src.chars.get(at..(at + 2).min(src.chars.len())).map_or(String::new(), |t| {
            if t.first() == Some(&'\\') { t.iter().collect() } else { t.iter().take(1).collect() }
        })
    };
    loop {
        let at = src.at;
        let c = src.next().ok_or_else(unterminated)?;
        if c == ']' && !items.is_empty() {
            break;
        }
        let first = if c == '\\' { class_escape(src)? } else { ClassItem::Char(u32::from(c)) };
        if src.eat('-') {
            let at2 = src.at;
            let d = src.next().ok_or_else(unterminated)?;
            if d == ']' {
                items.push(first);
                items.push(ClassItem::Char(u32::from('-')));
                break;
            }
            let second = if d == '\\' { class_escape(src)? } else { ClassItem::Char(u32::from(d)) };
            match (first, second) {
                (ClassItem::Char(lo), ClassItem::Char(hi)) if lo <= hi => {
                    items.push(ClassItem::Range(lo, hi));
                }
                _ => {
                    let (this, that) = (token(src, at), token(src, at2));
                    return Err(invalid(format!("bad character range {this}-{that}")));
                }
            }
        } else {
            items.push(first);
        }
    }
    let mut body = String::new();
    for item in &items {
        match *item {
            ClassItem::Category(c) => {
                body.push('\\');
                body.push(c);
            }
            ClassItem::Char(code) => {
                if let Some(c) = char::from_u32(code) {
                    push_class_char(&mut body, c);
                }
            }
            ClassItem::Range(lo, hi) => {
                // Rust ranges are over scalar values: move surrogate ends off the gap.
                let lo = if (0xD800..=0xDFFF).contains(&lo) { 0xE000 } else { lo };
                let hi = if (0xD800..=0xDFFF).contains(&hi) { 0xD7FF } else { hi };
                if let (Some(l), Some(h)) = (char::from_u32(lo), char::from_u32(hi))
                    && l <= h
                {
                    push_class_char(&mut body, l);
                    body.push('-');
                    push_class_char(&mut body, h);
                }
            }
        }
    }
    match (body.is_empty(), negate) {
        (true, false) => out.push_str(NEVER),
        (true, true) => out.push_str(r"[\x{0}-\x{10FFFF}]"),
        (false, _) => {
            out.push('[');
            if negate {
                out.push('^');
            }
            out.push_str(&body);
            out.push(']');
        }
    }
    Ok(())
}

/// The flags of `(?...)`, as Python's `_parse_flags` reads them after the first flag letter.
struct Flags {
    on: String,
    off: String,
    /// `None` for global flags `(?i)`, `Some(())` for a scoped group `(?i:...)`.
    scoped: bool,
}

const FLAG_LETTERS: &str = "iLmsxatu";

fn parse_flags(src: &mut Source, first: char) -> Result<Flags, PyRegexError> {
    let mut on = String::new();
    let mut off = String::new();
    let mut c = first;
    if c != '-' {
        loop {
            if c == 'L' {
                return Err(invalid("bad inline flags: cannot use 'L' flag with a str pattern"));
            }
            on.push(c);
            if "au".contains(c) && on.chars().filter(|f| "au".contains(*f)).any(|f| f != c) {
                return Err(invalid("bad inline flags: flags 'a', 'u' and 'L' are incompatible"));
            }
            c = src.next().ok_or_else(|| invalid("missing -, : or )"))?;
            if ")-:".contains(c) {
                break;
            }
            if !FLAG_LETTERS.contains(c) {
                return Err(invalid(if c.is_alphabetic() {
                    "unknown flag"
                } else {
                    "missing -, : or )"
                }));
            }
        }
    }
    if c == ')' {
        return Ok(Flags { on, off, scoped: false });
    }
    if on.contains('t') {
        return Err(invalid("bad inline flags: cannot turn on global flag"));
    }
    if c == '-' {
        c = src.next().ok_or_else(|| invalid("missing flag"))?;
        if !FLAG_LETTERS.contains(c) {
            return Err(invalid(if c.is_alphabetic() { "unknown flag" } else { "missing flag" }));
        }
        loop {
            if "aLu".contains(c) {
                return Err(invalid("bad inline flags: cannot turn off flags 'a', 'u' and 'L'"));
            }
            off.push(c);
            c = src.next().ok_or_else(|| invalid("missing :"))?;
            if c == ':' {
                break;
            }
            if !FLAG_LETTERS.contains(c) {
                return Err(invalid(if c.is_alphabetic() { "unknown flag" } else { "missing :" }));
            }
        }
    }
    if off.contains('t') {
        return Err(invalid("bad inline flags: cannot turn off global flag"));
    }
    if on.chars().any(|f| off.contains(f)) {
        return Err(invalid("bad inline flags: flag turned on and off"));
    }
    Ok(Flags { on, off, scoped: true })
}

/// Checks a Python pattern as Python 3.11's `re._parser` does and writes it in the `regex`
/// crate's syntax.
fn translate(pattern: &str) -> Result<Translated, PyRegexError> {
    let mut src = Source { chars: pattern.chars().collect(), at: 0 };
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut stack: Vec<Frame> = Vec::new();
    let mut last = Last::Nothing;
    // Python's `first and not subpattern`: top level, first alternative, nothing emitted.
    let mut at_start = true;
    let mut closed: Vec<bool> = Vec::new();
    let mut names: HashMap<String, usize> = HashMap::new();
    let mut global_flags = String::new();
    let mut unsupported: Option<String> = None;
    let mut conditional_refs: Vec<usize> = Vec::new();
    let mut note = |what: &str| {
        if unsupported.is_none() {
            unsupported = Some(what.to_string());
        }
    };

    while let Some(c) = src.next() {
        match c {
            '\\' => {
                let Some(e) = src.next() else {
                    return Err(invalid("bad escape (end of pattern)"));
                };
                last = Last::Item;
                match e {
                    'A' | 'b' | 'B' => {
                        out.push('\\');
                        out.push(e);
                        last = Last::Anchor;
                    }
                    'Z' => {
                        out.push_str(r"\z");
                        last = Last::Anchor;
                    }
                    'd' | 'D' | 's' | 'S' | 'w' | 'W' => {
                        out.push('\\');
                        out.push(e);
                    }
                    'a' => push_literal(&mut out, 7),
                    'f' => push_literal(&mut out, 12),
                    'n' => push_literal(&mut out, 10),
                    'r' => push_literal(&mut out, 13),
                    't' => push_literal(&mut out, 9),
                    'v' => push_literal(&mut out, 11),
                    'x' => push_literal(&mut out, hex_escape(&mut src, e, 2)?),
                    'u' => push_literal(&mut out, hex_escape(&mut src, e, 4)?),
                    'U' => {
                        let code = hex_escape(&mut src, e, 8)?;
                        if code > 0x10_FFFF {
                            return Err(invalid(format!("bad escape \\U{code:08x}")));
                        }
                        push_literal(&mut out, code);
                    }
                    'N' => {
                        if !src.eat('{') {
                            return Err(invalid("missing {"));
                        }
                        src.until('}', "character name")?;
                        note("a named character (\\N{...})");
                    }
                    '0' => {
                        let more = src.take_while(2, |d| ('0'..='7').contains(&d));
                        push_literal(
                            &mut out,
                            u32::from_str_radix(&format!("0{more}"), 8).unwrap_or(0),
                        );
                    }
                    '1'..='9' => {
                        let mut digits = e.to_string();
                        if let Some(d) = src.peek().filter(char::is_ascii_digit) {
                            src.next();
                            digits.push(d);
                            let third = src.peek().filter(|t| ('0'..='7').contains(t));
                            if e <= '7' && d <= '7' && third.is_some() {
                                src.next();
                                digits.extend(third);
                                let code = u32::from_str_radix(&digits, 8).unwrap_or(u32::MAX);
                                if code > 0o377 {
                                    return Err(invalid(format!(
                                        "octal escape value \\{digits} outside of range 0-0o377"
                                    )));
                                }
                                push_literal(&mut out, code);
                                continue;
                            }
                        }
                        let group: usize = digits.parse().unwrap_or(usize::MAX);
                        match closed.get(group.wrapping_sub(1)) {
                            None => {
                                return Err(invalid(format!("invalid group reference {group}")));
                            }
                            Some(false) => return Err(invalid("cannot refer to an open group")),
                            Some(true) => note("a back-reference"),
                        }
                    }
                    _ if e.is_ascii_alphanumeric() => {
                        return Err(invalid(format!("bad escape \\{e}")));
                    }
                    _ => push_literal(&mut out, u32::from(e)),
                }
                at_start = false;
            }
            '[' => {
                class(&mut src, &mut out)?;
                last = Last::Item;
                at_start = false;
            }
            '*' | '+' | '?' | '{' => {
                let start = src.at;
                let (min, max) = match c {
                    '*' => (0, None),
                    '+' => (1, None),
                    '?' => (0, Some(1)),
                    _ => {
                        if src.peek() == Some('}') {
                            push_literal(&mut out, u32::from('{'));
                            last = Last::Item;
                            at_start = false;
                            continue;
                        }
                        let lo = src.take_while(usize::MAX, |d| d.is_ascii_digit());
                        let hi = if src.eat(',') {
                            Some(src.take_while(usize::MAX, |d| d.is_ascii_digit()))
                        } else {
                            None
                        };
                        if !src.eat('}') {
                            src.at = start;
                            push_literal(&mut out, u32::from('{'));
                            last = Last::Item;
                            at_start = false;
                            continue;
                        }
                        let number = |s: &str| -> Result<u64, PyRegexError> {
                            match s.parse::<u64>() {
                                Ok(n) if n < MAX_REPEAT => Ok(n),
                                _ => Err(invalid("the repetition number is too large")),
                            }
                        };
                        let min = if lo.is_empty() { 0 } else { number(&lo)? };
                        let max = match &hi {
                            None => Some(min),
                            Some(h) if h.is_empty() => None,
                            Some(h) => Some(number(h)?),
                        };
                        if max.is_some_and(|m| m < min) {
                            return Err(invalid("min repeat greater than max repeat"));
                        }
                        (min, max)
                    }
                };
                match last {
                    Last::Nothing | Last::Anchor => return Err(invalid("nothing to repeat")),
                    Last::Repeat => return Err(invalid("multiple repeat")),
                    Last::Item => {}
                }
                match (c, min, max) {
                    ('*' | '+' | '?', _, _) => out.push(c),
                    (_, m, Some(n)) if m == n => out.push_str(&format!("{{{m}}}")),
                    (_, m, Some(n)) => out.push_str(&format!("{{{m},{n}}}")),
                    (_, m, None) => out.push_str(&format!("{{{m},}}")),
                }
                if src.eat('?') {
                    out.push('?');
                } else if src.eat('+') {
                    note("a possessive repeat");
                }
                last = Last::Repeat;
                at_start = false;
            }
            '(' => {
                let mut frame = Frame { group: None, branches: None };
                if src.eat('?') {
                    let Some(kind) = src.next() else {
                        return Err(invalid("unexpected end of pattern"));
                    };
                    match kind {
                        'P' => {
                            if src.eat('<') {
                                let name = src.until('>', "group name")?;
                                if !is_identifier(&name) {
                                    return Err(invalid(format!(
                                        "bad character in group name {name:?}"
                                    )));
                                }
                                if names.contains_key(&name) {
                                    return Err(invalid(format!(
                                        "redefinition of group name {name:?}"
                                    )));
                                }
                                closed.push(false);
                                names.insert(name, closed.len());
                                frame.group = Some(closed.len());
                                out.push('(');
                            } else if src.eat('=') {
                                let name = src.until(')', "group name")?;
                                if !is_identifier(&name) {
                                    return Err(invalid(format!(
                                        "bad character in group name {name:?}"
                                    )));
                                }
                                let Some(&group) = names.get(&name) else {
                                    return Err(invalid(format!("unknown group name {name:?}")));
                                };
                                if closed.get(group - 1) != Some(&true) {
                                    return Err(invalid("cannot refer to an open group"));
                                }
                                note("a back-reference");
                                last = Last::Item;
                                at_start = false;
                                continue;
                            } else {
                                return Err(invalid(match src.next() {
                                    None => "unexpected end of pattern".to_string(),
                                    Some(x) => format!("unknown extension ?P{x}"),
                                }));
                            }
                        }
                        ':' => out.push_str("(?:"),
                        '#' => {
                            loop {
                                match src.next() {
                                    None => {
                                        return Err(invalid("missing ), unterminated comment"));
                                    }
                                    Some(')') => break,
                                    Some('\\') => {
                                        if src.next().is_none() {
                                            return Err(invalid("bad escape (end of pattern)"));
                                        }
                                    }
                                    Some(_) => {}
                                }
                            }
                            continue;
                        }
                        '=' | '!' => {
                            note("look-ahead");
                            out.push_str("(?:");
                        }
                        '<' => {
                            match src.next() {
                                None => return Err(invalid("unexpected end of pattern")),
                                Some('=' | '!') => {}
                                Some(x) => return Err(invalid(format!("unknown extension ?<{x}"))),
                            }
                            note("look-behind");
                            out.push_str("(?:");
                        }
                        '(' => {
                            let name = src.until(')', "group name")?;
                            if is_identifier(&name) {
                                if !names.contains_key(&name) {
                                    return Err(invalid(format!("unknown group name {name:?}")));
                                }
                            } else {
                                match py_int(&name) {
                                    Some(Ok(0)) => return Err(invalid("bad group number")),
                                    Some(Ok(n)) if n > 0 => {
                                        conditional_refs
                                            .push(usize::try_from(n).unwrap_or(usize::MAX));
                                    }
                                    _ => {
                                        return Err(invalid(format!(
                                            "bad character in group name {name:?}"
                                        )));
                                    }
                                }
                            }
                            note("a conditional group");
                            frame.branches = Some(1);
                            out.push_str("(?:");
                        }
                        '>' => {
                            note("an atomic group");
                            out.push_str("(?:");
                        }
                        f if f == '-' || FLAG_LETTERS.contains(f) => {
                            let flags = parse_flags(&mut src, f)?;
                            if flags.on.contains('x') {
                                // Verbose mode changes how everything after it reads.
                                return Err(PyRegexError::Unsupported("verbose mode (x)".into()));
                            }
                            if flags.on.contains('a') {
                                note("ASCII mode (a)");
                            }
                            if flags.on.contains('t') {
                                note("template mode (t)");
                            }
                            let keep = |s: &str| {
                                s.chars().filter(|f| "ims".contains(*f)).collect::<String>()
                            };
                            if !flags.scoped {
                                if !at_start {
                                    return Err(invalid(
                                        "global flags not at the start of the expression",
                                    ));
                                }
                                global_flags.push_str(&flags.on);
                                let on = keep(&flags.on);
                                if !on.is_empty() {
                                    out.push_str(&format!("(?{on})"));
                                }
                                continue;
                            }
                            let (on, off) = (keep(&flags.on), keep(&flags.off));
                            out.push_str("(?");
                            out.push_str(&on);
                            if !off.is_empty() {
                                out.push('-');
                                out.push_str(&off);
                            }
                            out.push(':');
                        }
                        x => return Err(invalid(format!("unknown extension ?{x}"))),
                    }
                } else {
                    closed.push(false);
                    frame.group = Some(closed.len());
                    out.push('(');
                }
                stack.push(frame);
                last = Last::Nothing;
                at_start = false;
            }
            ')' => {
                let Some(frame) = stack.pop() else {
                    return Err(invalid("unbalanced parenthesis"));
                };
                if let Some(slot) = frame.group.and_then(|g| closed.get_mut(g - 1)) {
                    *slot = true;
                }
                out.push(')');
                last = Last::Item;
            }
            '|' => {
                at_start = false;
                if let Some(branches) = stack.last_mut().and_then(|f| f.branches.as_mut()) {
                    *branches += 1;
                    if *branches > 2 {
                        return Err(invalid("conditional backref with more than two branches"));
                    }
                }
                out.push('|');
                last = Last::Nothing;
            }
            '.' => {
                out.push('.');
                last = Last::Item;
                at_start = false;
            }
            '^' | '$' => {
                out.push(c);
                last = Last::Anchor;
                at_start = false;
            }
            _ => {
                push_literal(&mut out, u32::from(c));
                last = Last::Item;
                at_start = false;
            }
        }
    }
    if !stack.is_empty() {
        return Err(invalid("missing ), unterminated subpattern"));
    }
    if let Some(&group) = conditional_refs.iter().find(|&&g| g > closed.len()) {
        return Err(invalid(format!("invalid group reference {group}")));
    }
    if global_flags.contains('a') && global_flags.contains('u') {
        return Err(invalid("ASCII and UNICODE flags are incompatible"));
    }
    if let Some(what) = unsupported {
        return Err(PyRegexError::Unsupported(what));
    }
    Ok(Translated { rust: out, groups: closed.len(), names })
}

/// Translates a Python `re.sub` template (Python 3.11's `parse_template`) into the `regex`
/// crate's replacement syntax: `\1`, `\g<1>` and `\g<name>` become `${1}`, escapes such as
/// `\n` and octal `\0`, `\101` become their characters, an unknown punctuation escape keeps its
/// backslash (`\.` is backslash, dot), and `$` becomes `$$`.
fn translate_template(
    template: &str,
    groups: usize,
    names: &HashMap<String, usize>,
) -> Result<String, String> {
    let mut src = Source { chars: template.chars().collect(), at: 0 };
    let mut out = String::with_capacity(template.len());
    let literal = |out: &mut String, c: char| {
        if c == '$' {
            out.push_str("$$");
        } else {
            out.push(c);
        }
    };
    let group = |out: &mut String, index: usize| -> Result<(), String> {
        if index > groups {
            return Err(format!("invalid group reference {index}"));
        }
        out.push_str(&format!("${{{index}}}"));
        Ok(())
    };
    while let Some(c) = src.next() {
        if c != '\\' {
            literal(&mut out, c);
            continue;
        }
        let Some(e) = src.next() else {
            return Err("bad escape (end of pattern)".into());
        };
        match e {
            'g' => {
                if !src.eat('<') {
                    return Err("missing <".into());
                }
                let name = src.until('>', "group name").map_err(|e| match e {
                    PyRegexError::Invalid(m) | PyRegexError::Unsupported(m) => m,
                })?;
                let index = if is_identifier(&name) {
                    *names.get(&name).ok_or_else(|| format!("unknown group name {name:?}"))?
                } else {
                    match py_int(&name) {
                        Some(Ok(n)) if n >= 0 => usize::try_from(n).unwrap_or(usize::MAX),
                        Some(Err(())) if !name.trim_start().starts_with('-') => usize::MAX,
                        _ => return Err(format!("bad character in group name {name:?}")),
                    }
                };
                group(&mut out, index)?;
            }
            '0' => {
                let more = src.take_while(2, |d| ('0'..='7').contains(&d));
                let code = u32::from_str_radix(&format!("0{more}"), 8).unwrap_or(0) & 0xff;
                literal(&mut out, char::from_u32(code).unwrap_or('\0'));
            }
            '1'..='9' => {
                let mut digits = e.to_string();
                if let Some(d) = src.peek().filter(char::is_ascii_digit) {
                    src.next();
                    digits.push(d);
                    let third = src.peek().filter(|t| ('0'..='7').contains(t));
                    if e <= '7' && d <= '7' && third.is_some() {
                        src.next();
                        digits.extend(third);
                        let code = u32::from_str_radix(&digits, 8).unwrap_or(u32::MAX);
                        if code > 0o377 {
                            return Err(format!(
                                "octal escape value \\{digits} outside of range 0-0o377"
                            ));
                        }
                        literal(&mut out, char::from_u32(code).unwrap_or('\0'));
                        continue;
                    }
                }
                group(&mut out, digits.parse().unwrap_or(usize::MAX))?;
            }
            'a' => out.push('\u{7}'),
            'b' => out.push('\u{8}'),
            'f' => out.push('\u{c}'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'v' => out.push('\u{b}'),
            '\\' => out.push('\\'),
            _ if e.is_ascii_alphabetic() => return Err(format!("bad escape \\{e}")),
            _ => {
                out.push('\\');
                literal(&mut out, e);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rust(pattern: &str) -> String {
        translate(pattern).unwrap_or_else(|e| panic!("{pattern:?}: {e:?}")).rust
    }

    fn invalid_msg(pattern: &str) -> String {
        match translate(pattern) {
            Err(PyRegexError::Invalid(m)) => m,
            other => panic!("{pattern:?}: {other:?}"),
        }
    }

    fn unsupported(pattern: &str) -> String {
        match PyRegex::new(pattern) {
            Err(PyRegexError::Unsupported(m)) => m,
            other => panic!("{pattern:?}: {other:?}"),
        }
    }

    fn matches(pattern: &str, text: &str) -> bool {
        PyRegex::new(pattern).unwrap_or_else(|e| panic!("{pattern:?}: {e:?}")).is_match(text)
    }

    #[test]
    fn common_patterns_pass_through() {
        assert_eq!(rust(r"^carbon\."), r"^carbon\.");
        assert_eq!(rust(".*"), ".*");
        assert_eq!(rust(r"\.count$"), r"\.count$");
        assert_eq!(rust(r"^servers\.(web|db)[0-9]+\.cpu"), r"^servers\.(web|db)[0-9]+\.cpu");
        assert_eq!(rust(r"(?P<host>\w+)\.x"), r"(\w+)\.x");
        assert_eq!(rust(r"a{2}b{1,}c{,3}d{2,5}?"), r"a{2}b{1,}c{0,3}d{2,5}?");
    }

    #[test]
    fn python_only_syntax_is_translated() {
        assert!(matches(r"a\Z", "ba"));
        assert!(!matches(r"a\Z", "ab"));
        assert!(matches(r"\<x\>", "<x>"));
        assert!(!matches(r"\<x\>", "x"));
        assert!(matches(r"a{", "a{"));
        assert!(matches(r"a{x}", "a{x}"));
        assert!(matches(r"a{}", "a{}"));
        assert!(matches(r"a{1,2", "a{1,2"));
        assert!(matches(r"[[]", "["));
        assert!(matches(r"[a&&b]", "&"));
        assert!(matches(r"[--/]", "."));
        assert!(matches(r"[a~~b]", "~"));
        assert!(matches(r"[]a]", "]"));
        assert!(matches(r"[^]a]", "b"));
        assert!(!matches(r"[^]a]", "]"));
        assert!(matches(r"[\b]", "\u{8}"));
        assert!(matches(r"\x41\u0042\U00000043\101\0", "ABCA\0"));
        assert!(matches(r"[\d-]", "-"));
        assert!(matches(r"a(?#comment \) still)b", "ab"));
        assert!(matches(r"(?i)ABC", "abc"));
        assert!(matches(r"(?u)x", "x"));
        assert!(matches(r"(?i:a)B", "AB"));
        assert!(!matches(r"(?i:a)B", "Ab"));
        assert!(matches(r"\ud800|x", "x"));
        assert!(!matches(r"\ud800", "\u{fffd}"));
        assert!(matches(r"[\ud800-\ue000]", "\u{e000}"));
        assert!(matches(r"[^\ud800]", "\n"));
        assert!(matches(r"\é\-\ ", "é- "));
    }

    #[test]
    fn python_errors_are_invalid() {
        assert_eq!(invalid_msg("*a"), "nothing to repeat");
        assert_eq!(invalid_msg("^*"), "nothing to repeat");
        assert_eq!(invalid_msg(r"\b+"), "nothing to repeat");
        assert_eq!(invalid_msg("a|*"), "nothing to repeat");
        assert_eq!(invalid_msg("(?i)*"), "nothing to repeat");
        assert_eq!(invalid_msg("a**"), "multiple repeat");
        assert_eq!(invalid_msg("a{2}{3}"), "multiple repeat");
        assert_eq!(invalid_msg("a*?*"), "multiple repeat");
        assert_eq!(invalid_msg("(a"), "missing ), unterminated subpattern");
        assert_eq!(invalid_msg("a)"), "unbalanced parenthesis");
        assert_eq!(invalid_msg("[a"), "unterminated character set");
        assert_eq!(invalid_msg("[]"), "unterminated character set");
        assert_eq!(invalid_msg("[z-a]"), "bad character range z-a");
        assert_eq!(invalid_msg(r"[\d-z]"), r"bad character range \d-z");
        assert_eq!(invalid_msg(r"[\x41-\x40]"), r"bad character range \x-\x");
        assert_eq!(invalid_msg("|(?i)a"), "global flags not at the start of the expression");
        assert_eq!(invalid_msg(r"\q"), r"bad escape \q");
        assert_eq!(invalid_msg(r"[\A]"), r"bad escape \A");
        assert_eq!(invalid_msg(r"[\8]"), r"bad escape \8");
        assert_eq!(invalid_msg("a\\"), "bad escape (end of pattern)");
        assert_eq!(invalid_msg(r"\x4"), r"incomplete escape \x4");
        assert_eq!(invalid_msg(r"\1"), "invalid group reference 1");
        assert_eq!(invalid_msg(r"(a\1)"), "cannot refer to an open group");
        assert_eq!(invalid_msg(r"\400"), r"octal escape value \400 outside of range 0-0o377");
        assert_eq!(invalid_msg("a{3,2}"), "min repeat greater than max repeat");
        assert_eq!(invalid_msg("a{4294967295}"), "the repetition number is too large");
        assert_eq!(invalid_msg("(?P<1a>x)"), "bad character in group name \"1a\"");
        assert_eq!(invalid_msg("(?P<a>x)(?P<a>y)"), "redefinition of group name \"a\"");
        assert_eq!(invalid_msg("(?P=a)"), "unknown group name \"a\"");
        assert_eq!(invalid_msg("(?Px)"), "unknown extension ?Px");
        assert_eq!(invalid_msg("(?<x)"), "unknown extension ?<x");
        assert_eq!(invalid_msg("(?z)"), "unknown extension ?z");
        assert_eq!(invalid_msg("a(?i)"), "global flags not at the start of the expression");
        assert_eq!(
            invalid_msg("(?L)a"),
            "bad inline flags: cannot use 'L' flag with a str pattern"
        );
        assert_eq!(invalid_msg("(?i-i:a)"), "bad inline flags: flag turned on and off");
        assert_eq!(
            invalid_msg("(?-u:a)"),
            "bad inline flags: cannot turn off flags 'a', 'u' and 'L'"
        );
        assert_eq!(invalid_msg("(?a)(?u)x"), "ASCII and UNICODE flags are incompatible");
        assert_eq!(invalid_msg("(?#x"), "missing ), unterminated comment");
        assert_eq!(invalid_msg("(?"), "unexpected end of pattern");
        // An invalid construct after an unsupported one: Python reports the invalid one.
        assert_eq!(invalid_msg("(?=a)[b"), "unterminated character set");
    }

    #[test]
    fn constructs_rust_cannot_run_are_unsupported() {
        assert_eq!(unsupported("a(?=b)"), "look-ahead");
        assert_eq!(unsupported("a(?!b)"), "look-ahead");
        assert_eq!(unsupported("(?<=a)b"), "look-behind");
        assert_eq!(unsupported("(?<!a)b"), "look-behind");
        assert_eq!(unsupported(r"(a)\1"), "a back-reference");
        assert_eq!(unsupported(r"(?P<x>a)(?P=x)"), "a back-reference");
        assert_eq!(unsupported("(a)?(?(1)b|c)"), "a conditional group");
        assert_eq!(unsupported("(?>a)"), "an atomic group");
        assert_eq!(unsupported("a*+"), "a possessive repeat");
        assert_eq!(unsupported(r"\N{EM DASH}"), r"a named character (\N{...})");
        assert_eq!(unsupported("(?x) a b"), "verbose mode (x)");
        assert_eq!(unsupported("(?a)\\w"), "ASCII mode (a)");
        assert!(unsupported("(((a{1000}){1000}){1000})").contains("regex engine"));
    }

    #[test]
    fn anchors_and_classes_match_like_python() {
        assert!(matches("^a.c$", "abc"));
        assert!(!matches("^a.c$", "a\nc"));
        assert!(matches("(?s)^a.c$", "a\nc"));
        assert!(matches(r"\d", "٣"));
        assert!(matches(r"\Aab", "abc"));
        assert!(matches("x|", "y"));
    }

    fn sub(pattern: &str, replacement: &str, text: &str) -> String {
        let r = PyRegex::new(pattern).unwrap();
        let t = r.template(replacement).unwrap();
        r.sub(&t, text).into_owned()
    }

    #[test]
    fn templates_and_sub_like_python() {
        assert_eq!(sub(r"_sum$", "", "a.b_sum"), "a.b");
        assert_eq!(sub(r"^(\w+)\.(\w+)", r"\2.\1", "a.b.c"), "b.a.c");
        assert_eq!(sub(r"(?P<h>\w+)-(\d)", r"\g<h>\g<2>\g<0>", "x-1"), "x1x-1");
        assert_eq!(sub(r"(\w)", r"$\1\\\.", "ab"), r"$a\\.$b\\.");
        assert_eq!(sub(r"(a)|b", r"[\1]", "ab"), "[a][]");
        assert_eq!(sub(r"x", r"\n\t\101\0", "x"), "\n\tA\0");
        assert_eq!(sub(r"(a)(b)(c)(d)(e)(f)(g)(h)(i)(j)", r"\10", "abcdefghij"), "j");
        // Python 3.7+: an empty match next to a non-empty one is replaced as well.
        assert_eq!(sub("x*", "-", "abxd"), "-a-b--d-");
        assert_eq!(sub("", "-", "ab"), "-a-b-");
        assert_eq!(sub("é*", "-", "aé"), "-a--");
        assert_eq!(sub("q", "-", "abc"), "abc");

        let r = PyRegex::new(r"(a)").unwrap();
        assert_eq!(r.template(r"\2").unwrap_err(), "invalid group reference 2");
        assert_eq!(r.template(r"\g<x>").unwrap_err(), "unknown group name \"x\"");
        assert_eq!(r.template(r"\g<-1>").unwrap_err(), "bad character in group name \"-1\"");
        assert_eq!(r.template(r"\g1").unwrap_err(), "missing <");
        assert_eq!(r.template(r"\q").unwrap_err(), r"bad escape \q");
        assert_eq!(r.template("\\").unwrap_err(), "bad escape (end of pattern)");
        assert_eq!(r.template(r"\g< 1>").unwrap(), "${1}");
    }
}
