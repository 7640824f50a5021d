//! The two line formats a script may print: Graphite's `name value [timestamp]` and
//! tcollector's `metric timestamp value [tag=value ...]`. Pure functions on one line.

use carbon_proto::{MetricName, parse_py_float};

/// tcollector refuses lines of 1024 characters or more (OpenTSDB's own line limit).
pub const MAX_TCOLLECTOR_LINE: usize = 1023;
/// The longest Graphite line accepted from a script.
pub const MAX_GRAPHITE_LINE: usize = 4096;
/// tcollector's `MAX_REASONABLE_TIMESTAMP` (2040-01-02), in seconds: later stamps are refused.
pub const MAX_REASONABLE_SECONDS: i64 = 2_209_212_000;

/// Why a line was refused. Each is counted as an invalid line.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LineError {
    /// Longer than the format allows.
    #[error("line of {0} bytes is too long")]
    TooLong(usize),
    /// Not the number of fields the format needs.
    #[error("wrong number of fields")]
    Fields,
    /// The name is not a usable metric name (characters, empty components).
    #[error("bad metric name")]
    Name,
    /// The value is not a finite number (or `true`/`false` in tcollector lines).
    #[error("bad value")]
    Value,
    /// The timestamp is not a whole number of seconds (or milliseconds), or is past 2040.
    #[error("bad timestamp")]
    Timestamp,
    /// A tcollector tag is not `key=value` of the allowed characters.
    #[error("bad tag")]
    Tag,
}

/// A Graphite line from a script.
#[derive(Clone, Debug, PartialEq)]
pub struct GraphitePoint {
    /// The name as printed (below the host).
    pub name: String,
    /// The value.
    pub value: f64,
    /// Unix seconds, when printed.
    pub timestamp: Option<i64>,
}

/// Parses `name value [timestamp]` (whitespace separated; Diamond accepted only two fields, a
/// third is taken as Graphite's timestamp). The value is read as Python's `float()` reads it,
/// as Diamond did, but must be finite; a fractional timestamp is truncated to whole seconds.
///
/// # Errors
///
/// The [`LineError`] that applies.
pub fn parse_graphite(line: &str) -> Result<GraphitePoint, LineError> {
    if line.len() > MAX_GRAPHITE_LINE {
        return Err(LineError::TooLong(line.len()));
    }
    let mut f = line.split_whitespace();
    let (Some(name), Some(value), ts, None) = (f.next(), f.next(), f.next(), f.next()) else {
        return Err(LineError::Fields);
    };
    if MetricName::new(name).is_err() {
        return Err(LineError::Name);
    }
    let value = parse_py_float(value).filter(|v| v.is_finite()).ok_or(LineError::Value)?;
    let timestamp = match ts {
        None => None,
        Some(t) => {
            let t = parse_py_float(t)
                .filter(|t| t.is_finite() && *t >= 0.0 && *t < MAX_REASONABLE_SECONDS as f64)
                .ok_or(LineError::Timestamp)?;
            Some(t as i64)
        }
    };
    Ok(GraphitePoint { name: name.to_owned(), value, timestamp })
}

/// A tcollector line from a script.
#[derive(Clone, Debug, PartialEq)]
pub struct TcPoint {
    /// The metric, `/` turned into `_` (a `/` would make a directory in Graphite).
    pub metric: String,
    /// The timestamp in milliseconds (seconds times 1000 when it was printed in seconds).
    pub ts_ms: i64,
    /// The value (`true`/`false` become 1/0).
    pub value: f64,
    /// The tags, sorted by key (so the same series always has the same name).
    pub tags: Vec<(String, String)>,
}

impl TcPoint {
    /// The Graphite name: `metric;k=v;...` with `tags`, the bare metric without.
    pub fn name(&self, with_tags: bool) -> String {
        let mut s = self.metric.clone();
        if with_tags {
            for (k, v) in &self.tags {
                s.push(';');
                s.push_str(k);
                s.push('=');
                s.push_str(v);
            }
        }
        s
    }
}

fn tc_chars(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./".contains(&b))
}

/// Parses `metric timestamp value [tag=value ...]` with tcollector's rules: the line under 1024
/// characters; metric and tags of `[-_./a-zA-Z0-9]`; an integer timestamp, in milliseconds
/// when it has more than 11 digits; a value Python's `float()` reads (finite), or
/// `true`/`false`.
///
/// # Errors
///
/// The [`LineError`] that applies.
pub fn parse_tcollector(line: &str) -> Result<TcPoint, LineError> {
    if line.len() > MAX_TCOLLECTOR_LINE {
        return Err(LineError::TooLong(line.len()));
    }
    let mut f = line.split_whitespace();
    let (Some(metric), Some(ts), Some(value)) = (f.next(), f.next(), f.next()) else {
        return Err(LineError::Fields);
    };
    if !tc_chars(metric) {
        return Err(LineError::Name);
    }
    let metric = metric.replace('/', "_");
    if MetricName::new(&metric).is_err() {
        return Err(LineError::Name);
    }
    if ts.is_empty() || ts.len() > 16 || !ts.bytes().all(|b| b.is_ascii_digit()) {
        return Err(LineError::Timestamp);
    }
    let raw: i64 = ts.parse().map_err(|_| LineError::Timestamp)?;
    let ts_ms = if ts.len() > 11 { raw } else { raw.saturating_mul(1000) };
    if ts_ms >= MAX_REASONABLE_SECONDS * 1000 {
        return Err(LineError::Timestamp);
    }
    let value = if value.eq_ignore_ascii_case("true") {
        1.0
    } else if value.eq_ignore_ascii_case("false") {
        0.0
    } else {
        parse_py_float(value).filter(|v| v.is_finite()).ok_or(LineError::Value)?
    };
    let mut tags = Vec::new();
    for tag in f {
        let (k, v) = tag.split_once('=').ok_or(LineError::Tag)?;
        if !tc_chars(k) || !tc_chars(v) {
            return Err(LineError::Tag);
        }
        tags.push((k.to_owned(), v.to_owned()));
    }
    tags.sort();
    tags.dedup_by(|a, b| a.0 == b.0);
    Ok(TcPoint { metric, ts_ms, value, tags })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn graphite_lines_take_an_optional_timestamp() {
        assert_eq!(
            parse_graphite("app.queue 12"),
            Ok(GraphitePoint { name: "app.queue".into(), value: 12.0, timestamp: None })
        );
        assert_eq!(
            parse_graphite("  app.lat\t0.25  1700000000.9 "),
            Ok(GraphitePoint {
                name: "app.lat".into(),
                value: 0.25,
                timestamp: Some(1_700_000_000)
            })
        );
        assert_eq!(parse_graphite("a"), Err(LineError::Fields));
        assert_eq!(parse_graphite("a 1 2 3"), Err(LineError::Fields));
        assert_eq!(parse_graphite("a x"), Err(LineError::Value));
        assert_eq!(parse_graphite("a nan"), Err(LineError::Value));
        assert_eq!(parse_graphite("a..b 1"), Err(LineError::Name));
        assert_eq!(parse_graphite("a/b 1"), Err(LineError::Name));
        assert_eq!(parse_graphite("a 1 -5"), Err(LineError::Timestamp));
        assert!(matches!(parse_graphite(&"a".repeat(5000)), Err(LineError::TooLong(_))));
    }

    #[test]
    fn tcollector_lines_follow_tcollector() {
        let p = parse_tcollector("proc.loadavg.1min 1700000000 0.36 host=web01 cpu=0").unwrap();
        assert_eq!(p.metric, "proc.loadavg.1min");
        assert_eq!(p.ts_ms, 1_700_000_000_000);
        assert_eq!(p.value, 0.36);
        assert_eq!(p.name(true), "proc.loadavg.1min;cpu=0;host=web01");
        assert_eq!(p.name(false), "proc.loadavg.1min");
        let ms = parse_tcollector("m 1700000000123 5").unwrap();
        assert_eq!(ms.ts_ms, 1_700_000_000_123);
        assert_eq!(parse_tcollector("up 1700000000 true").unwrap().value, 1.0);
        assert_eq!(parse_tcollector("up 1700000000 False").unwrap().value, 0.0);
        assert_eq!(parse_tcollector("a/b 1700000000 1").unwrap().metric, "a_b");
    }

    #[test]
    fn tcollector_rejects_what_tcollector_rejects() {
        assert_eq!(parse_tcollector("m 1700000000"), Err(LineError::Fields));
        assert_eq!(parse_tcollector("m! 1700000000 1"), Err(LineError::Name));
        assert_eq!(parse_tcollector("m 17e8 1"), Err(LineError::Timestamp));
        assert_eq!(parse_tcollector("m 1700000000 abc"), Err(LineError::Value));
        assert_eq!(parse_tcollector("m 1700000000 1 host"), Err(LineError::Tag));
        assert_eq!(parse_tcollector("m 1700000000 1 h=a;b"), Err(LineError::Tag));
        assert_eq!(parse_tcollector("m 2209212000 1"), Err(LineError::Timestamp));
        let long = format!("m 1700000000 1 k={}", "v".repeat(1010));
        assert_eq!(long.len(), 1027);
        assert_eq!(parse_tcollector(&long), Err(LineError::TooLong(1027)));
        let edge = format!("m 1700000000 1 k={}", "v".repeat(1006));
        assert_eq!(edge.len(), 1023);
        assert!(parse_tcollector(&edge).is_ok());
    }

    proptest! {
        #[test]
        fn graphite_parser_never_panics(s in "\\PC{0,100}") {
            if let Ok(p) = parse_graphite(&s) {
                prop_assert!(p.value.is_finite());
                prop_assert!(MetricName::new(&p.name).is_ok());
            }
        }

        #[test]
        fn tcollector_parser_never_panics(s in "\\PC{0,100}") {
            if let Ok(p) = parse_tcollector(&s) {
                prop_assert!(p.value.is_finite());
                prop_assert!(MetricName::new(&p.name(true)).is_ok());
            }
        }

        #[test]
        fn tcollector_parser_never_panics_on_near_lines(
            m in "[a-z./_-]{1,12}", ts in "[0-9]{1,16}", v in "[-0-9.eE]{1,8}|true|false", tags in "( [a-z]{1,3}=[a-z0-9/]{0,3}){0,3}"
        ) {
            let _ = parse_tcollector(&format!("{m} {ts} {v}{tags}"));
        }
    }
}
