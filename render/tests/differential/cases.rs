//! The cases: `targets.txt` (what to ask) and `known-differences.txt` (where we differ from
//! graphite-web on purpose).
//!
//! # `targets.txt`
//!
//! One target a line, as it would be typed into Grafana; blank lines and lines starting with
//! `#` are ignored. Request options may follow ` ||| `, separated by spaces:
//!
//! - `from=-2h`, `until=-30min`: the range relative to the fixture's `now` (units `s`, `min`,
//!   `h`, `d`; `0` is now). Default `from=-12h until=0`. Both implementations get the same
//!   absolute epoch seconds.
//! - `maxDataPoints=N`, `noNullPoints`, `xFilesFactor=F`: as graphite-web's `/render` takes them.
//! - `template[name]=value`: a template variable (no spaces in the value).
//!
//! A line starting with `/` is a request to another endpoint (`/metrics/find?query=test.*`,
//! `/tags/findSeries?expr=name%3Ddisk.used`), sent as written to graphite-web and to our HTTP
//! server, whose JSON answers are compared (for `/tags...`, without the `id` keys: graphite-web's
//! are row ids of its SQL database, ours are not, on purpose).
//!
//! # `known-differences.txt`
//!
//! A case line exactly as in `targets.txt`, followed by an indented `reason:` line saying why
//! we differ on purpose. Such a case is still run: its difference is reported, not failed; a
//! known difference that no longer differs fails the test, so the list stays true.

use std::collections::BTreeMap;
use std::path::Path;

use super::fixture::NOW;

/// One request.
#[derive(Clone, Debug)]
pub(crate) struct Case {
    /// Line number in `targets.txt`.
    pub(crate) line: usize,
    /// The line as written (the key for known differences).
    pub(crate) text: String,
    /// The target; for an endpoint case, the path and query.
    pub(crate) target: String,
    /// An endpoint case (`/metrics/find?...`): compared over HTTP as JSON.
    pub(crate) endpoint: bool,
    /// Start of the range (epoch seconds).
    pub(crate) from: i64,
    /// End of the range (epoch seconds).
    pub(crate) until: i64,
    /// `maxDataPoints`.
    pub(crate) max_data_points: Option<u64>,
    /// `noNullPoints`.
    pub(crate) no_null_points: bool,
    /// `xFilesFactor`.
    pub(crate) x_files_factor: Option<f64>,
    /// `template[name]=value`.
    pub(crate) templates: BTreeMap<String, String>,
}

impl Case {
    /// The query string for graphite-web's `/render` (and ours).
    pub(crate) fn query(&self) -> String {
        use super::reference::encode;
        let mut q = format!(
            "format=json&noCache=1&target={}&from={}&until={}&now={NOW}",
            encode(&self.target),
            self.from,
            self.until
        );
        if let Some(n) = self.max_data_points {
            q.push_str(&format!("&maxDataPoints={n}"));
        }
        if self.no_null_points {
            q.push_str("&noNullPoints=1");
        }
        if let Some(x) = self.x_files_factor {
            q.push_str(&format!("&xFilesFactor={x}"));
        }
        for (k, v) in &self.templates {
            q.push_str(&format!("&{}={}", encode(&format!("template[{k}]")), encode(v)));
        }
        q
    }
}

/// Seconds of a relative time such as `-2h`, `-90min`, `0`.
fn offset(spec: &str) -> Result<i64, String> {
    if spec == "0" || spec == "now" {
        return Ok(0);
    }
    let (sign, rest) = match spec.strip_prefix('-') {
        Some(r) => (-1, r),
        None => (1, spec.strip_prefix('+').unwrap_or(spec)),
    };
    let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
    let n: i64 = rest[..digits].parse().map_err(|_| format!("bad time offset `{spec}`"))?;
    let unit = match &rest[digits..] {
        "s" => 1,
        "min" => 60,
        "h" => 3600,
        "d" => 86_400,
        other => return Err(format!("bad time unit `{other}` in `{spec}`")),
    };
    Ok(sign * n * unit)
}

/// Parses one case line.
fn parse_line(line: usize, text: &str) -> Result<Case, String> {
    let (target, options) = match text.split_once(" ||| ") {
        Some((t, o)) => (t.trim(), o.trim()),
        None => (text.trim(), ""),
    };
    let mut case = Case {
        line,
        text: text.trim().to_string(),
        target: target.to_string(),
        endpoint: target.starts_with('/'),
        from: NOW - 12 * 3600,
        until: NOW,
        max_data_points: None,
        no_null_points: false,
        x_files_factor: None,
        templates: BTreeMap::new(),
    };
    if case.endpoint && !options.is_empty() {
        return Err("an endpoint case takes no options (put them in its query)".into());
    }
    for opt in options.split_whitespace() {
        let (key, value) = opt.split_once('=').unwrap_or((opt, ""));
        match key {
            "from" => case.from = NOW + offset(value)?,
            "until" => case.until = NOW + offset(value)?,
            "maxDataPoints" => {
                case.max_data_points =
                    Some(value.parse().map_err(|_| format!("bad maxDataPoints `{value}`"))?);
            }
            "noNullPoints" => case.no_null_points = true,
            "xFilesFactor" => {
                case.x_files_factor =
                    Some(value.parse().map_err(|_| format!("bad xFilesFactor `{value}`"))?);
            }
            _ if key.starts_with("template[") && key.ends_with(']') => {
                case.templates.insert(key[9..key.len() - 1].to_string(), value.to_string());
            }
            _ => return Err(format!("unknown option `{opt}`")),
        }
    }
    Ok(case)
}

/// Reads `targets.txt`.
///
/// # Panics
///
/// A line that does not parse (a broken case file is a broken test).
pub(crate) fn load_targets(path: &Path) -> Vec<Case> {
    let text = std::fs::read_to_string(path).expect("read targets.txt");
    let mut cases = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match parse_line(i + 1, line) {
            Ok(c) => cases.push(c),
            Err(e) => panic!("{}:{}: {e}", path.display(), i + 1),
        }
    }
    cases
}

/// Reads `known-differences.txt`: case line -> reason.
///
/// # Panics
///
/// An entry without its `reason:` line.
pub(crate) fn load_known(path: &Path) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut known = BTreeMap::new();
    let mut pending: Option<String> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if raw.starts_with(char::is_whitespace) {
            let Some(reason) = line.strip_prefix("reason:") else {
                panic!("{}:{}: expected `reason: ...`", path.display(), i + 1);
            };
            let Some(case) = pending.take() else {
                panic!("{}:{}: a reason without a case line above it", path.display(), i + 1);
            };
            known.insert(case, reason.trim().to_string());
        } else {
            if let Some(case) = pending.replace(line.to_string()) {
                panic!("{}: `{case}` has no reason", path.display());
            }
        }
    }
    if let Some(case) = pending {
        panic!("{}: `{case}` has no reason", path.display());
    }
    known
}
