//! The Python text rules carbon's files are read with: a file opened in text mode (UTF-8,
//! universal newlines), `str.strip()`'s idea of whitespace, `int()` and `float()` on a string,
//! and the `os.path` functions carbon builds its directories with.

use std::path::Path;

use super::error::{ConfigError, ConfigErrorKind};

/// Python's `str.isspace()`: Unicode `White_Space` plus the four ASCII separators
/// U+001C..U+001F, which Python counts as whitespace and Rust does not.
pub(crate) fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `s.strip()`.
pub(crate) fn py_strip(s: &str) -> &str {
    s.trim_matches(is_py_space)
}

/// Python's `s.rstrip()`.
pub(crate) fn py_rstrip(s: &str) -> &str {
    s.trim_end_matches(is_py_space)
}

/// Decodes a file's bytes as UTF-8, naming the line of the first bad byte.
pub(crate) fn decode<'a>(bytes: &'a [u8], path: &Path) -> Result<&'a str, ConfigError> {
    std::str::from_utf8(bytes).map_err(|e| {
        let before = bytes.get(..e.valid_up_to()).unwrap_or_default();
        // `before` is valid UTF-8, so counting its lines the universal way is exact.
        let text = std::str::from_utf8(before).unwrap_or_default();
        ConfigError::at(path, lines(text).count().max(1), ConfigErrorKind::NotUtf8)
    })
}

/// The lines of a text as Python's text mode yields them (`\n`, `\r\n` and `\r` all end a
/// line), without their ends, numbered from 1. A final line end does not start a new line.
pub(crate) fn lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut rest = text;
    let mut number = 0;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        number += 1;
        let (line, next) = match rest.find(['\n', '\r']) {
            None => (rest, ""),
            Some(i) => {
                let tail = rest.get(i..).unwrap_or_default();
                let skip = if tail.starts_with("\r\n") { 2 } else { 1 };
                (rest.get(..i).unwrap_or_default(), tail.get(skip..).unwrap_or_default())
            }
        };
        rest = next;
        Some((number, line))
    })
}

/// Python's `int(s)` in base 10, for ASCII digits: `Some(Ok(n))`, `Some(Err(()))` when the
/// literal is an integer too large for `i64`, `None` when it is not an integer.
pub(crate) fn py_int(s: &str) -> Option<Result<i64, ()>> {
    let s = py_strip(s);
    let (negative, digits) = match s.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if !digits_with_underscores(digits) {
        return None;
    }
    let mut value: i128 = 0;
    for b in digits.bytes().filter(u8::is_ascii_digit) {
        value = value * 10 + i128::from(b - b'0');
        if value > i128::from(i64::MAX) + 1 {
            return Some(Err(()));
        }
    }
    let value = if negative { -value } else { value };
    Some(i64::try_from(value).map_err(|_| ()))
}

/// Python's `float(s)`: decimal literals with `_` between digits, `inf`, `infinity` and `nan`
/// in any case, optionally signed, surrounded by whitespace.
pub(crate) fn py_float(s: &str) -> Option<f64> {
    let s = py_strip(s);
    let (negative, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let lower = body.to_ascii_lowercase();
    let magnitude = match lower.as_str() {
        "inf" | "infinity" => f64::INFINITY,
        "nan" => f64::NAN,
        _ => {
            let (mantissa, exponent) = match lower.split_once('e') {
                Some((m, e)) => (m, Some(e)),
                None => (lower.as_str(), None),
            };
            let (int_part, frac_part) = match mantissa.split_once('.') {
                Some((i, f)) => (i, Some(f)),
                None => (mantissa, None),
            };
            let int_ok = int_part.is_empty() || digits_with_underscores(int_part);
            let frac_ok = frac_part.is_none_or(|f| f.is_empty() || digits_with_underscores(f));
            let has_digit = !int_part.is_empty() || frac_part.is_some_and(|f| !f.is_empty());
            let exp_ok = exponent
                .is_none_or(|e| digits_with_underscores(e.strip_prefix(['+', '-']).unwrap_or(e)));
            if !(int_ok && frac_ok && has_digit && exp_ok) {
                return None;
            }
            let plain: String = lower.chars().filter(|&c| c != '_').collect();
            plain.parse::<f64>().ok()?
        }
    };
    Some(if negative { -magnitude } else { magnitude })
}

/// `1`, `1_000`: ASCII digits with single underscores between them.
fn digits_with_underscores(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with('_')
        && !s.ends_with('_')
        && !s.contains("__")
        && s.bytes().all(|b| b.is_ascii_digit() || b == b'_')
}

/// `os.path.join(a, b)` on POSIX: an absolute `b` replaces `a`.
pub(crate) fn py_join(a: &str, b: &str) -> String {
    if b.starts_with('/') {
        b.to_string()
    } else if a.is_empty() || a.ends_with('/') {
        format!("{a}{b}")
    } else {
        format!("{a}/{b}")
    }
}

/// `os.path.dirname(p)` on POSIX.
pub(crate) fn py_dirname(p: &str) -> String {
    let head = p.rfind('/').map_or("", |i| p.get(..=i).unwrap_or_default());
    if !head.is_empty() && head.bytes().any(|b| b != b'/') {
        head.trim_end_matches('/').to_string()
    } else {
        head.to_string()
    }
}

/// `os.path.normpath(p)` on POSIX: drops `.` and empty components, folds `..` lexically, keeps
/// exactly two leading slashes (POSIX leaves their meaning open), `.` for an empty result.
pub(crate) fn py_normpath(p: &str) -> String {
    if p.is_empty() {
        return ".".to_string();
    }
    let slashes = if p.starts_with("//") && !p.starts_with("///") {
        2
    } else if p.starts_with('/') {
        1
    } else {
        0
    };
    let mut parts: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." if slashes == 0 && (parts.is_empty() || parts.last() == Some(&"..")) => {
                parts.push(part);
            }
            ".." => {
                parts.pop();
            }
            _ => parts.push(part),
        }
    }
    let joined = format!("{}{}", "/".repeat(slashes), parts.join("/"));
    if joined.is_empty() { ".".to_string() } else { joined }
}

/// `os.path.expanduser(p)` given `$HOME`. `~user` forms and a `~` without `$HOME` are left as
/// they are (Python would look the user up in the password database).
pub(crate) fn py_expanduser(p: &str, home: Option<&str>) -> String {
    let Some(rest) = p.strip_prefix('~') else {
        return p.to_string();
    };
    if !(rest.is_empty() || rest.starts_with('/')) {
        return p.to_string();
    }
    let Some(home) = home else {
        return p.to_string();
    };
    let joined = format!("{}{rest}", home.trim_end_matches('/'));
    if joined.is_empty() { "/".to_string() } else { joined }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_whitespace_includes_the_ascii_separators() {
        assert_eq!(py_strip("\u{1c} a b\u{1f}\u{85}\u{a0}"), "a b");
        assert!(!is_py_space('\u{feff}'));
        assert!(!is_py_space('\u{180e}'));
    }

    #[test]
    fn universal_newlines() {
        let got: Vec<_> = lines("a\r\nb\rc\n\nd").collect();
        assert_eq!(got, [(1, "a"), (2, "b"), (3, "c"), (4, ""), (5, "d")]);
        assert_eq!(lines("a\n").count(), 1);
        assert_eq!(lines("").count(), 0);
        assert_eq!(lines("\x0b\x0c\u{2028}").count(), 1, "only \\r and \\n end lines");
    }

    #[test]
    fn decode_names_the_line_of_the_bad_byte() {
        let e = decode(b"a\nb\r\nc\xff", Path::new("f")).unwrap_err();
        assert_eq!(e.line(), Some(3));
        assert_eq!(e.to_string(), "f:3: not valid UTF-8");
        let e = decode(b"\xff", Path::new("f")).unwrap_err();
        assert_eq!(e.line(), Some(1));
    }

    #[test]
    fn ints_like_python() {
        assert_eq!(py_int(" 42 "), Some(Ok(42)));
        assert_eq!(py_int("-1_000"), Some(Ok(-1000)));
        assert_eq!(py_int("+007"), Some(Ok(7)));
        assert_eq!(py_int("-9223372036854775808"), Some(Ok(i64::MIN)));
        assert_eq!(py_int("9223372036854775808"), Some(Err(())));
        assert_eq!(py_int("99999999999999999999999999999999999999999999"), Some(Err(())));
        for bad in ["", "1_", "_1", "1__0", "1.0", "0x10", "+", "- 1", "1e3", "inf"] {
            assert_eq!(py_int(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn floats_like_python() {
        assert_eq!(py_float("inf"), Some(f64::INFINITY));
        assert_eq!(py_float("-Infinity"), Some(f64::NEG_INFINITY));
        assert!(py_float("+nAn").unwrap().is_nan());
        assert_eq!(py_float("1_000.5"), Some(1000.5));
        assert_eq!(py_float(".5"), Some(0.5));
        assert_eq!(py_float("5."), Some(5.0));
        assert_eq!(py_float("1E+3"), Some(1000.0));
        assert_eq!(py_float(" 2.5\t"), Some(2.5));
        for bad in ["", ".", "e3", "1e", "1_.5", "1._5", "infinit", "0x1p3", "1e_3", "--1", "1.5.2"]
        {
            assert_eq!(py_float(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn os_path_functions() {
        assert_eq!(py_join("/var/lib/graphite/", "whisper"), "/var/lib/graphite/whisper");
        assert_eq!(py_join("/a", "b"), "/a/b");
        assert_eq!(py_join("/a", "/b"), "/b");
        assert_eq!(py_join("", "b"), "b");
        assert_eq!(py_dirname("/etc/carbon/carbon.conf"), "/etc/carbon");
        assert_eq!(py_dirname("carbon.conf"), "");
        assert_eq!(py_dirname("/carbon.conf"), "/");
        assert_eq!(py_dirname("//x"), "//");
        assert_eq!(py_normpath("/var/lib/graphite/"), "/var/lib/graphite");
        assert_eq!(py_normpath("//a//b/./c/../d"), "//a/b/d");
        assert_eq!(py_normpath("///a"), "/a");
        assert_eq!(py_normpath("../a/.."), "..");
        assert_eq!(py_normpath("/.."), "/");
        assert_eq!(py_normpath(""), ".");
        assert_eq!(py_normpath("a/.."), ".");
        assert_eq!(py_expanduser("~/x", Some("/home/u/")), "/home/u/x");
        assert_eq!(py_expanduser("~", Some("/")), "/");
        assert_eq!(py_expanduser("~bob/x", Some("/home/u")), "~bob/x");
        assert_eq!(py_expanduser("~/x", None), "~/x");
        assert_eq!(py_expanduser("/a/~", Some("/h")), "/a/~");
    }
}
