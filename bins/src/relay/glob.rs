//! Path globs as glibc's `glob(3)` expands them with no flags, which is what carbon-c-relay's
//! `include` calls: `*`, `?` and `[...]` (`[!...]` or `[^...]` negated, ranges, `]` first is
//! literal) within one path component, a backslash escapes the next character, a leading `.`
//! of a name is only matched by a literal `.`, and the result is sorted (byte order, as
//! `strcoll` in the C locale). A pattern without wildcards names one path, which must exist.

use std::io;
use std::path::{Path, PathBuf};

/// Whether `pattern` is a glob for carbon-c-relay: it contains `*` or `?`, or both `[` and
/// `]` (`router_readconfig`'s test); otherwise it is a plain path.
pub(super) fn is_glob(pattern: &str) -> bool {
    pattern.contains('*')
        || pattern.contains('?')
        || (pattern.contains('[') && pattern.contains(']'))
}

/// The existing paths `pattern` matches, sorted. Relative patterns are relative to the
/// working directory.
///
/// # Errors
///
/// A directory that cannot be read on the way (other than one that does not exist).
pub(super) fn expand(pattern: &str) -> io::Result<Vec<PathBuf>> {
    let mut candidates: Vec<PathBuf> =
        vec![if pattern.starts_with('/') { PathBuf::from("/") } else { PathBuf::new() }];
    let parts: Vec<&str> = pattern.split('/').filter(|p| !p.is_empty()).collect();
    for (i, part) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        let mut next = Vec::new();
        if has_wildcard(part) {
            for dir in &candidates {
                let listing = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
                let entries = match std::fs::read_dir(listing) {
                    Ok(e) => e,
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                        ) =>
                    {
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                let mut names: Vec<String> = Vec::new();
                for entry in entries {
                    let entry = entry?;
                    // Names that are not UTF-8 cannot be matched by a UTF-8 pattern here.
                    if let Ok(name) = entry.file_name().into_string()
                        && matches(part.as_bytes(), name.as_bytes())
                    {
                        names.push(name);
                    }
                }
                names.sort_unstable();
                for name in names {
                    let path = dir.join(&name);
                    if last || path.is_dir() {
                        next.push(path);
                    }
                }
            }
        } else {
            let name = unescape(part);
            for dir in &candidates {
                next.push(dir.join(&name));
            }
        }
        candidates = next;
        if candidates.is_empty() {
            break;
        }
    }
    let mut out: Vec<PathBuf> =
        candidates.into_iter().filter(|p| !p.as_os_str().is_empty() && p.exists()).collect();
    out.sort_by(|a, b| a.as_os_str().as_encoded_bytes().cmp(b.as_os_str().as_encoded_bytes()));
    out.dedup();
    Ok(out)
}

/// Whether a path component has an unescaped wildcard.
fn has_wildcard(part: &str) -> bool {
    let mut escaped = false;
    for c in part.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '*' | '?' | '[' => return true,
            _ => {}
        }
    }
    false
}

/// A literal component with its backslash escapes removed.
fn unescape(part: &str) -> String {
    let mut out = String::with_capacity(part.len());
    let mut chars = part.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            } else {
                out.push('\\');
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// `fnmatch(pattern, name, FNM_PERIOD)` for one path component, on bytes.
fn matches(pattern: &[u8], name: &[u8]) -> bool {
    // A leading dot must be matched by a literal dot.
    if name.first() == Some(&b'.') && !matches!(pattern, [b'.', ..] | [b'\\', b'.', ..]) {
        return false;
    }
    match_from(pattern, name)
}

/// Backtracking match of `pattern` against all of `name`. The stack depth is bounded by the
/// number of `*` in the pattern (one path component).
fn match_from(pattern: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0usize, 0usize);
    // Where to resume after the last `*`: (pattern index after it, name index it covers to).
    let mut star: Option<(usize, usize)> = None;
    loop {
        match pattern.get(p) {
            Some(b'*') => {
                // Collapse runs of `*`.
                while pattern.get(p) == Some(&b'*') {
                    p += 1;
                }
                if p == pattern.len() {
                    return true;
                }
                star = Some((p, n));
                continue;
            }
            Some(&pc) if n < name.len() => {
                let Some(&nc) = name.get(n) else { return false };
                let step = match pc {
                    b'?' => Some(1),
                    b'[' => match bracket(pattern.get(p + 1..).unwrap_or_default(), nc) {
                        Some((true, used)) => Some(used + 1),
                        Some((false, _)) => None,
                        // An unclosed `[` is a literal `[`.
                        None => (nc == b'[').then_some(1),
                    },
                    b'\\' => match pattern.get(p + 1) {
                        Some(&lit) => (lit == nc).then_some(2),
                        None => (nc == b'\\').then_some(1),
                    },
                    _ => (pc == nc).then_some(1),
                };
                if let Some(used) = step {
                    p += used;
                    n += 1;
                    continue;
                }
            }
            None if n == name.len() => return true,
            _ => {}
        }
        // Mismatch: let the last `*` take one more byte, if there was one.
        match star {
            Some((sp, sn)) if sn < name.len() => {
                star = Some((sp, sn + 1));
                p = sp;
                n = sn + 1;
            }
            _ => return false,
        }
    }
}

/// A bracket expression after its `[`: whether `c` is in it, and how many pattern bytes it
/// used (through the `]`); `None` when there is no closing `]`.
fn bracket(pattern: &[u8], c: u8) -> Option<(bool, usize)> {
    let mut i = 0usize;
    let negate = matches!(pattern.first(), Some(b'!' | b'^'));
    if negate {
        i += 1;
    }
    let mut found = false;
    let mut first = true;
    loop {
        let &b = pattern.get(i)?;
        if b == b']' && !first {
            return Some((found != negate, i + 1));
        }
        first = false;
        let (lo, used) = match b {
            b'\\' => (*pattern.get(i + 1)?, 2),
            _ => (b, 1),
        };
        i += used;
        // A range `lo-hi`, unless the `-` is last.
        if pattern.get(i) == Some(&b'-') && pattern.get(i + 1).is_some_and(|&h| h != b']') {
            let (hi, used) = match pattern.get(i + 1) {
                Some(b'\\') => (*pattern.get(i + 2)?, 3),
                Some(&h) => (h, 2),
                None => return None,
            };
            i += used;
            if lo <= c && c <= hi {
                found = true;
            }
        } else if lo == c {
            found = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_like_fnmatch() {
        assert!(matches(b"*.conf", b"a.conf"));
        assert!(!matches(b"*.conf", b".hidden.conf"));
        assert!(matches(b".*.conf", b".hidden.conf"));
        assert!(matches(b"a?c", b"abc"));
        assert!(!matches(b"a?c", b"ac"));
        assert!(matches(b"[ab]1", b"b1"));
        assert!(!matches(b"[!ab]1", b"b1"));
        assert!(matches(b"[^ab]1", b"c1"));
        assert!(matches(b"[a-c]x", b"bx"));
        assert!(matches(b"[]]", b"]"));
        assert!(matches(b"[a-]", b"-"));
        assert!(matches(b"\\*", b"*"));
        assert!(!matches(b"\\*", b"a"));
        assert!(matches(b"[x", b"[x"));
        assert!(matches(b"*a*b*", b"xxaxxbxx"));
        assert!(!matches(b"*a*b", b"xxaxxbxxc"));
        assert!(matches(b"**", b""));
    }

    #[test]
    fn is_glob_as_crelay_decides() {
        assert!(is_glob("conf.d/*.conf"));
        assert!(is_glob("a?.conf"));
        assert!(is_glob("[ab].conf"));
        assert!(!is_glob("a[.conf"));
        assert!(!is_glob("/etc/relay.conf"));
    }

    #[test]
    fn expands_sorted_and_only_existing() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("inc.d/sub")).unwrap();
        for f in ["b.conf", "a.conf", "B.conf", ".h.conf", "c.txt"] {
            std::fs::write(d.join("inc.d").join(f), "").unwrap();
        }
        std::fs::write(d.join("inc.d/sub/x.conf"), "").unwrap();
        let base = d.to_str().unwrap();
        let got = expand(&format!("{base}/inc.d/*.conf")).unwrap();
        let names: Vec<_> =
            got.iter().map(|p| p.file_name().unwrap().to_str().unwrap().to_string()).collect();
        assert_eq!(names, ["B.conf", "a.conf", "b.conf"]);
        assert_eq!(expand(&format!("{base}/*/sub/*.conf")).unwrap().len(), 1);
        assert_eq!(expand(&format!("{base}/inc.d/*.none")).unwrap().len(), 0);
        assert_eq!(expand(&format!("{base}/nodir/*.conf")).unwrap().len(), 0);
        assert_eq!(expand(&format!("{base}/inc.d/a.conf")).unwrap().len(), 1);
    }

    proptest::proptest! {
        #[test]
        fn matching_never_panics(p in "[a-c*?\\[\\]!^\\\\.-]{0,12}", n in "[a-c.\\[\\]-]{0,12}") {
            let _ = matches(p.as_bytes(), n.as_bytes());
        }
    }
}
