//! graphite-web's glob language for one `.`-separated component of a find pattern.
//!
//! graphite-web's `StandardFinder` matches a pattern component in three steps, and this module
//! reproduces each one (checked against graphite-web 1.1.8 on Python 3.11 by the differential
//! tests in `tests/integration/index.rs`):
//!
//! 1. [`expand_braces`]: `{a,b}` alternation as graphite-web's `expand_braces` does it, which
//!    repeatedly expands the leftmost brace group that has no brace inside. That is the same
//!    as pairing braces with a stack (an unpaired `{` or `}` is an ordinary character) and
//!    splitting a group at its own commas, which is how it is done here, without re-scanning.
//! 2. A variant containing `*`, `?` or `[` is a glob ([`Glob`]); `**` alone is the multi-level
//!    wildcard; anything else is looked up literally.
//! 3. A glob is Python's `fnmatch.fnmatchcase`: [`Glob::new`] follows `fnmatch.translate`
//!    character for character, including its quirks (an unclosed `[` is a literal, `[!]` and
//!    `]` first in a class, ranges whose bounds are reversed are dropped and their neighbours
//!    merged, `[!z-a]` matches anything, `[z-a]` nothing).

/// The most variants [`expand_braces`] makes from one component before giving up.
pub(crate) const MAX_BRACE_VARIANTS: usize = 10_000;

/// The deepest nesting of brace groups [`expand_braces`] accepts (it recurses once a level).
pub(crate) const MAX_BRACE_DEPTH: usize = 64;

/// A component whose brace expansion is too large (more than [`MAX_BRACE_VARIANTS`] variants
/// or brace groups nested deeper than [`MAX_BRACE_DEPTH`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TooComplex;

/// The variants of `s` after brace expansion, sorted and without duplicates (graphite-web
/// returns them as a set, so their order never mattered).
pub(crate) fn expand_braces(s: &str) -> Result<Vec<String>, TooComplex> {
    let bytes = s.as_bytes();
    if !bytes.contains(&b'{') {
        return Ok(vec![s.to_string()]);
    }
    // Pair the braces with a stack: `close[i]` is the matching `}` of a `{` at `i`.
    let mut close = vec![usize::MAX; bytes.len()];
    let mut open = Vec::new();
    let mut paired = false;
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'{' {
            open.push(i);
        } else if b == b'}'
            && let Some(o) = open.pop()
            && let Some(slot) = close.get_mut(o)
        {
            *slot = i;
            paired = true;
        }
    }
    if !paired {
        return Ok(vec![s.to_string()]);
    }
    let mut out = expand_range(s, &close, 0, bytes.len(), 0)?;
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// Expands `s[start..end]`, a range that contains only whole brace pairs.
fn expand_range(
    s: &str,
    close: &[usize],
    start: usize,
    end: usize,
    depth: usize,
) -> Result<Vec<String>, TooComplex> {
    if depth > MAX_BRACE_DEPTH {
        return Err(TooComplex);
    }
    let bytes = s.as_bytes();
    let mut results = vec![String::new()];
    let mut literal_start = start;
    let mut i = start;
    while i < end {
        let group_end = match (bytes.get(i), close.get(i)) {
            (Some(b'{'), Some(&c)) if c != usize::MAX => c,
            _ => {
                i += 1;
                continue;
            }
        };
        // Braces and commas are ASCII, so these byte offsets are char boundaries.
        let literal = s.get(literal_start..i).unwrap_or_default();
        for r in &mut results {
            r.push_str(literal);
        }
        // The group's alternatives: split at its own commas, stepping over nested groups.
        let mut alternatives = Vec::new();
        let mut alt_start = i + 1;
        let mut j = i + 1;
        while j < group_end {
            match (bytes.get(j), close.get(j)) {
                (Some(b'{'), Some(&c)) if c != usize::MAX => j = c + 1,
                (Some(b','), _) => {
                    alternatives.extend(expand_range(s, close, alt_start, j, depth + 1)?);
                    alt_start = j + 1;
                    j += 1;
                }
                _ => j += 1,
            }
            if alternatives.len() > MAX_BRACE_VARIANTS {
                return Err(TooComplex);
            }
        }
        alternatives.extend(expand_range(s, close, alt_start, group_end, depth + 1)?);
        if results.len().saturating_mul(alternatives.len()) > MAX_BRACE_VARIANTS {
            return Err(TooComplex);
        }
        let mut next = Vec::with_capacity(results.len() * alternatives.len());
        for r in &results {
            for a in &alternatives {
                let mut v = String::with_capacity(r.len() + a.len());
                v.push_str(r);
                v.push_str(a);
                next.push(v);
            }
        }
        results = next;
        i = group_end + 1;
        literal_start = i;
    }
    let literal = s.get(literal_start..end).unwrap_or_default();
    for r in &mut results {
        r.push_str(literal);
    }
    Ok(results)
}

/// Whether graphite-web treats a (brace-expanded) component as a wildcard pattern.
pub(crate) fn has_wildcard(variant: &str) -> bool {
    variant.contains(['[', '*', '?'])
}

/// The indexes of the components of a raw pattern (backslashes still in) that graphite-web's
/// `find_escaped_pattern_fields` reports: those where the first `*`, `?`, `[` or `{` (each
/// looked for separately) sits after a backslash, not at the very start.
pub(crate) fn escaped_fields(raw_pattern: &str) -> Vec<usize> {
    raw_pattern
        .split('.')
        .enumerate()
        .filter(|(_, part)| {
            ['*', '?', '[', '{'].iter().any(|&symbol| match part.find(symbol) {
                Some(i) if i > 0 => part.as_bytes().get(i - 1) == Some(&b'\\'),
                _ => false,
            })
        })
        .map(|(i, _)| i)
        .collect()
}

/// One position of a translated glob.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// This character.
    Char(char),
    /// Any one character (`?`, and `[!]`-like classes that Python reduces to `.`).
    Any,
    /// One character of the class.
    Class(Class),
    /// Nothing (an empty class such as `[z-a]`).
    Never,
    /// Any run of characters, possibly empty.
    Star,
}

/// A character class: single characters and inclusive ranges, possibly negated.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Class {
    negated: bool,
    ranges: Vec<(char, char)>,
}

impl Class {
    fn contains(&self, c: char) -> bool {
        self.ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != self.negated
    }
}

/// A compiled `fnmatch` pattern (case-sensitive, as `fnmatch.filter` is on POSIX).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Glob {
    tokens: Vec<Token>,
    /// The pattern is a single `*` (or several): everything matches.
    match_all: bool,
}

impl Glob {
    /// Translates `pattern` as Python 3.11's `fnmatch.translate` does.
    pub(crate) fn new(pattern: &str) -> Glob {
        let p: Vec<char> = pattern.chars().collect();
        let n = p.len();
        let mut tokens = Vec::with_capacity(n);
        let mut i = 0;
        while let Some(&c) = p.get(i) {
            i += 1;
            match c {
                '*' => {
                    if tokens.last() != Some(&Token::Star) {
                        tokens.push(Token::Star);
                    }
                }
                '?' => tokens.push(Token::Any),
                '[' => {
                    let mut j = i;
                    if p.get(j) == Some(&'!') {
                        j += 1;
                    }
                    if p.get(j) == Some(&']') {
                        j += 1;
                    }
                    while j < n && p.get(j) != Some(&']') {
                        j += 1;
                    }
                    if j >= n {
                        tokens.push(Token::Char('['));
                    } else {
                        tokens.push(class_token(&p, i, j));
                        i = j + 1;
                    }
                }
                c => tokens.push(Token::Char(c)),
            }
        }
        let match_all = tokens == [Token::Star];
        Glob { tokens, match_all }
    }

    /// Whether `name` matches the whole pattern.
    pub(crate) fn matches(&self, name: &str) -> bool {
        if self.match_all {
            return true;
        }
        // The classic two-cursor matcher with one backtrack point (the last star). Each token
        // but `Star` consumes exactly one character, so taking the earliest place where the
        // text after a star fits is never worse than a later one: this gives the same answers
        // as Python's regex (whose `(?>.*?fixed)` groups make the same choice).
        // `t` is a byte offset into `name`, always on a character boundary.
        let (mut t, mut k) = (0usize, 0usize);
        let mut backtrack: Option<(usize, usize)> = None;
        loop {
            let next = name.get(t..).and_then(|rest| rest.chars().next());
            match self.tokens.get(k) {
                Some(Token::Star) => {
                    k += 1;
                    backtrack = Some((k, t));
                    continue;
                }
                Some(token) => {
                    if let Some(c) = next {
                        let ok = match token {
                            Token::Char(x) => *x == c,
                            Token::Any => true,
                            Token::Class(class) => class.contains(c),
                            Token::Never | Token::Star => false,
                        };
                        if ok {
                            t += c.len_utf8();
                            k += 1;
                            continue;
                        }
                    }
                }
                None if next.is_none() => return true,
                None => {}
            }
            // Mismatch: let the last star take one more character, if there is one.
            let star_next = backtrack.and_then(|(_, bt)| name.get(bt..)?.chars().next());
            match (backtrack, star_next) {
                (Some((bk, bt)), Some(c)) => {
                    backtrack = Some((bk, bt + c.len_utf8()));
                    k = bk;
                    t = bt + c.len_utf8();
                }
                _ => return false,
            }
        }
    }
}

/// The token for the class `p[i..j]` (between `[` and its `]`), as `fnmatch.translate`
/// builds its regex class and Python's regex parser reads it back.
fn class_token(p: &[char], i: usize, j: usize) -> Token {
    let stuff = p.get(i..j).unwrap_or_default();
    // Chunks are runs of literal characters; between two chunks is a range dash.
    let mut chunks: Vec<Vec<char>> = Vec::new();
    if !stuff.contains(&'-') {
        chunks.push(stuff.to_vec());
    } else {
        let mut start = i;
        let mut k = if p.get(i) == Some(&'!') { i + 2 } else { i + 1 };
        while let Some(found) =
            (k < j).then(|| p.get(k..j)?.iter().position(|&c| c == '-')).flatten()
        {
            let dash = k + found;
            chunks.push(p.get(start..dash).unwrap_or_default().to_vec());
            start = dash + 1;
            k = dash + 3;
        }
        let last = p.get(start..j).unwrap_or_default();
        if !last.is_empty() {
            chunks.push(last.to_vec());
        } else if let Some(prev) = chunks.last_mut() {
            prev.push('-');
        }
        // Drop ranges whose bounds are reversed, merging their neighbours (as fnmatch does).
        let mut k = chunks.len();
        while k > 1 {
            k -= 1;
            let reversed = match (chunks.get(k - 1).and_then(|c| c.last()), chunks.get(k)) {
                (Some(&a), Some(next)) => next.first().is_some_and(|&b| a > b),
                _ => false,
            };
            if reversed {
                let next = chunks.remove(k);
                if let Some(prev) = chunks.get_mut(k - 1) {
                    prev.pop();
                    prev.extend(next.iter().skip(1));
                }
            }
        }
    }
    let total: usize = chunks.iter().map(Vec::len).sum::<usize>() + chunks.len().saturating_sub(1);
    if total == 0 {
        return Token::Never;
    }
    if chunks.len() == 1 && chunks.first().is_some_and(|c| c.as_slice() == ['!']) {
        return Token::Any;
    }
    let negated = chunks.first().and_then(|c| c.first()) == Some(&'!');
    if negated && let Some(first) = chunks.first_mut() {
        first.remove(0);
    }
    // Read the class back as Python's regex parser does: items, where an item followed by an
    // unescaped dash and another item is a range. Only the dashes between chunks are unescaped.
    enum Piece {
        Lit(char),
        Dash,
    }
    let mut pieces = Vec::with_capacity(total);
    for (n, chunk) in chunks.iter().enumerate() {
        if n > 0 {
            pieces.push(Piece::Dash);
        }
        pieces.extend(chunk.iter().map(|&c| Piece::Lit(c)));
    }
    let value = |piece: &Piece| match piece {
        Piece::Lit(c) => *c,
        Piece::Dash => '-',
    };
    let mut ranges = Vec::new();
    let mut it = pieces.iter().peekable();
    while let Some(this) = it.next() {
        let lo = value(this);
        if matches!(it.peek(), Some(Piece::Dash)) {
            it.next();
            match it.next() {
                Some(that) => {
                    let hi = value(that);
                    // Python refuses a reversed range; fnmatch never produces one (see above).
                    if lo <= hi {
                        ranges.push((lo, hi));
                    }
                }
                None => {
                    ranges.push((lo, lo));
                    ranges.push(('-', '-'));
                }
            }
        } else {
            ranges.push((lo, lo));
        }
    }
    Token::Class(Class { negated, ranges })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, name: &str) -> bool {
        Glob::new(pattern).matches(name)
    }

    #[test]
    fn expands_braces_like_graphite_web() {
        let e = |s: &str| expand_braces(s).unwrap();
        assert_eq!(e("a"), ["a"]);
        assert_eq!(e("{a,b}c"), ["ac", "bc"]);
        assert_eq!(e("{a,{b,c}}"), ["a", "b", "c"]);
        assert_eq!(e("{a{b,c}d}"), ["abd", "acd"]);
        assert_eq!(e("{a,b}}"), ["a}", "b}"]);
        assert_eq!(e("{a,{b,c}"), ["{a,b", "{a,c"]);
        assert_eq!(e("{}x"), ["x"]);
        assert_eq!(e("{,a}"), ["", "a"]);
        assert_eq!(e("}{a}{"), ["}a{"]);
        assert_eq!(e("{a,b}{c,d}"), ["ac", "ad", "bc", "bd"]);
        assert_eq!(e("{a,a}"), ["a"]);
    }

    #[test]
    fn refuses_explosive_braces() {
        let many = "{a,b}".repeat(20);
        assert_eq!(expand_braces(&many), Err(TooComplex));
        let deep = format!("{}{}", "{".repeat(1000), "}".repeat(1000));
        assert_eq!(expand_braces(&deep), Err(TooComplex));
        assert!(expand_braces(&"{".repeat(100_000)).is_ok());
    }

    #[test]
    fn matches_like_fnmatch() {
        assert!(m("*", ""));
        assert!(m("*", ".hidden"));
        assert!(m("a*b", "ab"));
        assert!(m("a*b", "axxb"));
        assert!(!m("a*b", "axxbc"));
        assert!(m("a?c", "abc"));
        assert!(!m("a?c", "ac"));
        assert!(m("[abc]", "b"));
        assert!(m("[a-c]x", "bx"));
        assert!(!m("[!a-c]x", "bx"));
        assert!(m("[!a-c]x", "dx"));
        assert!(m("[", "["));
        assert!(m("[a", "[a"));
        assert!(m("[]]", "]"));
        assert!(m("[!]]", "a"));
        assert!(!m("[!]]", "]"));
        assert!(m("[]-a]", "^"));
        assert!(m("[a-]", "-"));
        assert!(m("[-a]", "-"));
        assert!(!m("[z-a]", "z"));
        assert!(!m("[z-a]", "-"));
        assert!(m("[!z-a]", "q"));
        assert!(m("[a-b-c]", "-"));
        assert!(m("[c-a-z]", "-"));
        assert!(m("[c-a-z]", "z"));
        assert!(!m("[c-a-z]", "c"));
        // A reversed range that leaves a leading `!` negates the class.
        assert!(m("[z-a!b]", "c"));
        assert!(!m("[z-a!b]", "b"));
        assert!(m("[\\]", "\\"));
        assert!(m("é*", "été"));
        assert!(m("*a*a*a*", "aaa"));
        assert!(!m("*a*a*a*", "aa"));
    }

    /// Runs `script` with `/usr/bin/python3`, JSON in and out; `None` (after printing why,
    /// or failing under `GRAPHITE_REQUIRE_REFERENCE=1`) when graphite-web is not installed.
    fn python(script: &str, input: &serde_json::Value) -> Option<serde_json::Value> {
        use std::io::Write;
        use std::process::{Command, Stdio};
        let have = Command::new("/usr/bin/python3")
            .args(["-c", "import graphite.finders"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !have {
            let reason =
                "/usr/bin/python3 cannot import graphite.finders (apt-get install graphite-web)";
            if std::env::var_os("GRAPHITE_REQUIRE_REFERENCE").is_some_and(|v| v != "0") {
                panic!("reference implementation required but {reason}");
            }
            eprintln!("SKIP: {reason}");
            return None;
        }
        let mut child = Command::new("/usr/bin/python3")
            .args(["-c", script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let data = serde_json::to_vec(input).unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let writer = std::thread::spawn(move || stdin.write_all(&data));
        let out = child.wait_with_output().unwrap();
        writer.join().unwrap().unwrap();
        assert!(out.status.success());
        Some(serde_json::from_slice(&out.stdout).unwrap())
    }

    /// SplitMix64 picks from `chars`.
    fn random_strings(seed: u64, count: usize, chars: &[char], max_len: u64) -> Vec<String> {
        let mut state = seed;
        let mut next = move || {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        (0..count)
            .map(|_| {
                let len = next() % (max_len + 1);
                (0..len).map(|_| chars[(next() % chars.len() as u64) as usize]).collect()
            })
            .collect()
    }

    #[test]
    fn fnmatch_agrees_with_python() {
        let patterns = random_strings(
            1,
            4000,
            &['a', 'b', 'z', '[', ']', '!', '-', '^', '*', '?', '\\', 'é', '&', '~'],
            7,
        );
        let names =
            random_strings(2, 40, &['a', 'b', 'z', '[', ']', '!', '-', '^', '\\', 'é', '&'], 4);
        let script = r#"
import fnmatch, json, sys
req = json.load(sys.stdin)
print(json.dumps([[fnmatch.fnmatchcase(n, p) for n in req['names']] for p in req['patterns']]))
"#;
        let input = serde_json::json!({ "patterns": patterns, "names": names });
        let Some(answer) = python(script, &input) else { return };
        let mut matched = 0;
        for (p, row) in patterns.iter().zip(answer.as_array().unwrap()) {
            let glob = Glob::new(p);
            for (n, expected) in names.iter().zip(row.as_array().unwrap()) {
                let expected = expected.as_bool().unwrap();
                assert_eq!(glob.matches(n), expected, "fnmatchcase({n:?}, {p:?})");
                matched += usize::from(expected);
            }
        }
        assert!(matched > 1000, "{matched}");
    }

    #[test]
    fn brace_expansion_agrees_with_graphite_web() {
        let inputs = random_strings(3, 3000, &['a', 'b', '{', '}', ',', '{', '}', ',', '*'], 12);
        let script = r#"
import json, sys
from graphite.finders import expand_braces
print(json.dumps([sorted(expand_braces(s)) for s in json.load(sys.stdin)]))
"#;
        let Some(answer) = python(script, &serde_json::json!(inputs)) else { return };
        for (s, expected) in inputs.iter().zip(answer.as_array().unwrap()) {
            let expected: Vec<String> = serde_json::from_value(expected.clone()).unwrap();
            assert_eq!(expand_braces(s).unwrap(), expected, "expand_braces({s:?})");
        }
    }

    #[test]
    fn finds_escaped_fields_like_graphite_web() {
        assert_eq!(escaped_fields("a.b\\*.c"), [1]);
        assert_eq!(escaped_fields("\\*x.b"), [0]);
        assert_eq!(escaped_fields("*\\*.b"), Vec::<usize>::new());
        assert_eq!(escaped_fields("x*\\*"), Vec::<usize>::new());
        assert_eq!(escaped_fields("x\\{a}.y\\[a]"), [0, 1]);
    }
}
