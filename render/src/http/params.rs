//! Request parameters as Django reads them, and Python's conversions of their text.
//!
//! graphite-web's views merge the query string and, for a POST with a form body, the form
//! (`request.GET.copy(); update(request.POST)`): a key keeps every value from both, query
//! string first. A single-valued read (`params['format']`, `.get`) takes the **last** value,
//! a list read (`getlist('target')`) all of them in order.

/// The merged parameters of one request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Params {
    /// Every `(key, value)` in order.
    pairs: Vec<(String, String)>,
}

impl Params {
    /// Parameters from a query string (no leading `?`).
    pub fn from_query(query: &str) -> Params {
        let mut p = Params::default();
        p.extend_urlencoded(query.as_bytes());
        p
    }

    /// Adds the pairs of an `application/x-www-form-urlencoded` text (`+` is a space, `%XX`
    /// escapes, invalid UTF-8 replaced, blank values kept: Django's `parse_qsl` settings).
    pub fn extend_urlencoded(&mut self, text: &[u8]) {
        self.pairs
            .extend(form_urlencoded::parse(text).map(|(k, v)| (k.into_owned(), v.into_owned())));
    }

    /// Adds one pair (tests).
    pub fn push(&mut self, key: &str, value: &str) {
        self.pairs.push((key.to_string(), value.to_string()));
    }

    /// The last value of `key` (Django's `QueryDict.get` / `[key]`).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// Whether `key` is present (with any value, empty included).
    pub fn has(&self, key: &str) -> bool {
        self.pairs.iter().any(|(k, _)| k == key)
    }

    /// Every value of `key`, in order (`getlist`).
    pub fn list(&self, key: &str) -> Vec<&str> {
        self.pairs.iter().filter(|(k, _)| k == key).map(|(_, v)| v.as_str()).collect()
    }

    /// `getlist(key)`, or `getlist(key + "[]")` when that is empty (the jQuery/PHP form
    /// graphite-web accepts for `target`, `path`, `expr`).
    pub fn list_or_brackets(&self, key: &str) -> Vec<&str> {
        let plain = self.list(key);
        if !plain.is_empty() {
            return plain;
        }
        let brackets = format!("{key}[]");
        self.list(&brackets)
    }

    /// Each key once with its last value, in the order keys first appear (`QueryDict.items()`).
    pub fn items(&self) -> Vec<(&str, &str)> {
        let mut out: Vec<(&str, &str)> = Vec::new();
        for (k, v) in &self.pairs {
            match out.iter_mut().find(|(key, _)| key == k) {
                Some(slot) => slot.1 = v,
                None => out.push((k, v)),
            }
        }
        out
    }

    /// A value's truth as Python sees a string: present and non-empty.
    pub fn truthy(&self, key: &str) -> bool {
        self.get(key).is_some_and(|v| !v.is_empty())
    }
}

/// Python's `int(text)`: surrounding whitespace, a sign, ASCII digits with single `_`
/// between them. Values past `i64` are clamped (Python's ints are unbounded; the callers
/// only compare or bound them).
///
/// # Errors
///
/// Python's message: `invalid literal for int() with base 10: 'x'`.
pub fn py_int(text: &str) -> Result<i64, String> {
    let err = || format!("invalid literal for int() with base 10: {}", py_repr(text));
    let t = text.trim_matches(|c: char| c.is_whitespace());
    let (negative, digits) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
    {
        return Err(err());
    }
    let mut value: i64 = 0;
    for b in digits.bytes() {
        match b {
            b'_' => {}
            b'0'..=b'9' => {
                value = value.saturating_mul(10).saturating_add(i64::from(b - b'0'));
            }
            _ => return Err(err()),
        }
    }
    Ok(if negative { -value } else { value })
}

/// Python's `float(text)`.
///
/// # Errors
///
/// Python's message: `could not convert string to float: 'x'`.
pub fn py_float(text: &str) -> Result<f64, String> {
    carbon_proto::parse_py_float(text.trim())
        .ok_or_else(|| format!("could not convert string to float: {}", py_repr(text)))
}

/// Python's `repr()` of a string: single quotes unless the text has a `'` and no `"`;
/// backslashes, quotes of the chosen kind and control characters escaped.
pub fn py_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') { '"' } else { '\'' };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// Python's `unquote_plus`: `+` is a space, `%XX` escapes decoded, invalid UTF-8 replaced,
/// a `%` without two hex digits kept as is.
pub fn unquote_plus(s: &str) -> String {
    if !s.contains(['+', '%']) {
        return s.to_string();
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = |j: usize| bytes.get(j).and_then(|c| (*c as char).to_digit(16));
                if let (Some(h), Some(l)) = (hex(i + 1), hex(i + 2)) {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                out.push(b'%');
            }
            _ => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Percent-decodes a URL path (Django matches its patterns on the decoded path).
pub fn decode_path(path: &str) -> String {
    if !path.contains('%') {
        return path.to_string();
    }
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = |j: usize| bytes.get(j).and_then(|c| (*c as char).to_digit(16));
            if let (Some(h), Some(l)) = (hex(i + 1), hex(i + 2)) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`) of an epoch.
pub fn http_date(ts: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let (y, mo, d, h, mi, s) = crate::format::civil(ts);
    let weekday = DAYS.get(ts.div_euclid(86_400).rem_euclid(7) as usize).copied().unwrap_or("Thu");
    let month = MONTHS.get(mo.saturating_sub(1) as usize).copied().unwrap_or("Jan");
    format!("{weekday}, {d:02} {month} {y:04} {h:02}:{mi:02}:{s:02} GMT")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_params_read_like_a_query_dict() {
        let mut p = Params::from_query("target=a.b&format=csv&target=c&x=");
        p.extend_urlencoded(b"target=d+e&format=json&maxDataPoints=%31%30");
        assert_eq!(p.list("target"), ["a.b", "c", "d e"]);
        assert_eq!(p.get("format"), Some("json"));
        assert_eq!(p.get("maxDataPoints"), Some("10"));
        assert!(p.has("x") && !p.truthy("x"));
        assert_eq!(p.items()[1], ("format", "json"));
        let q = Params::from_query("target%5B%5D=a&target%5B%5D=b");
        assert_eq!(q.list_or_brackets("target"), ["a", "b"]);
    }

    #[test]
    fn python_conversions() {
        assert_eq!(py_int(" 12 "), Ok(12));
        assert_eq!(py_int("-1_000"), Ok(-1000));
        assert_eq!(py_int("1.5"), Err("invalid literal for int() with base 10: '1.5'".into()));
        assert_eq!(py_int(""), Err("invalid literal for int() with base 10: ''".into()));
        assert_eq!(py_float("0.5"), Ok(0.5));
        assert_eq!(py_float("x"), Err("could not convert string to float: 'x'".into()));
        assert_eq!(py_repr("it's"), "\"it's\"");
        assert_eq!(py_repr("a\\b"), "'a\\\\b'");
        assert_eq!(unquote_plus("a+b%2Ec%zz"), "a b.c%zz");
        assert_eq!(decode_path("/tags/a%20b"), "/tags/a b");
        assert_eq!(http_date(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
    }
}
