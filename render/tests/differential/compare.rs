//! What an answer is, read from a `/render?format=json` body (graphite-web's, or ours written
//! by render's own JSON writer), and how two answers are compared: names and tags exactly,
//! timestamps exactly, values to a relative 1e-9 (the JSON round trip of a float may move it by
//! an ulp), null equal to null. Other endpoints' answers are compared as JSON values.

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// One series as `/render?format=json` gives it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct OutSeries {
    /// `target`.
    pub(crate) name: String,
    /// `tags`, values as text (numbers as Python prints them).
    pub(crate) tags: BTreeMap<String, String>,
    /// The tags whose value is a JSON number rather than a string (graphite-web stores some
    /// function tags as numbers: `nonNegativeDerivative: 1`, `nPercentile: 50.0`).
    pub(crate) numeric_tags: Vec<String>,
    /// `datapoints`: `(value, timestamp)`.
    pub(crate) points: Vec<(Option<f64>, i64)>,
}

/// A whole answer.
#[derive(Clone, Debug)]
pub(crate) enum Answer {
    /// 200 with these series.
    Series(Vec<OutSeries>),
    /// An error status and its message.
    Error {
        /// The HTTP status (ours: `Error::status`).
        status: u16,
        /// The message (graphite-web's body is an HTML page; its first lines).
        message: String,
    },
}

/// Reads a `/render` JSON body. graphite-web writes `NaN` as `null` and `Infinity` as
/// `1e9999` (with a comma after it, always true of a value in `[value, ts]`), which JSON
/// parsers refuse as out of range: they are turned into strings first.
pub(crate) fn from_json(status: u16, body: &str) -> Answer {
    if status != 200 {
        let message: String = body
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .take(3)
            .collect::<Vec<_>>()
            .join(" | ");
        return Answer::Error { status, message: message.chars().take(300).collect() };
    }
    let text = body.replace("-1e9999,", "\"-inf\",").replace("1e9999,", "\"inf\",");
    let parsed: serde_json::Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => {
            return Answer::Error {
                status: 599,
                message: format!("invalid JSON ({e}): {body:.200}"),
            };
        }
    };
    let mut out = Vec::new();
    for s in parsed.as_array().into_iter().flatten() {
        let name = s["target"].as_str().unwrap_or_default().to_string();
        let tag_map = s["tags"].as_object();
        let tags = tag_map
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| v.to_string(), str::to_string)))
            .collect();
        let numeric_tags = tag_map
            .into_iter()
            .flatten()
            .filter(|(_, v)| v.is_number())
            .map(|(k, _)| k.clone())
            .collect();
        let points = s["datapoints"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| {
                let v = match &p[0] {
                    serde_json::Value::Null => None,
                    serde_json::Value::String(s) if s == "inf" => Some(f64::INFINITY),
                    serde_json::Value::String(s) if s == "-inf" => Some(f64::NEG_INFINITY),
                    v => v.as_f64(),
                };
                (v, p[1].as_i64().unwrap_or(i64::MIN))
            })
            .collect();
        out.push(OutSeries { name, tags, numeric_tags, points });
    }
    Answer::Series(out)
}

/// Whether two values agree.
fn same_value(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(x), Some(y)) => {
            if x == y {
                return true;
            }
            if !x.is_finite() || !y.is_finite() {
                return false;
            }
            (x - y).abs() <= 1e-9 * x.abs().max(y.abs())
        }
        _ => false,
    }
}

fn show(v: Option<f64>) -> String {
    v.map_or_else(|| "null".to_string(), |x| format!("{x:?}"))
}

/// The first difference between our answer and graphite-web's, if any.
pub(crate) fn difference(ours: &Answer, theirs: &Answer) -> Option<String> {
    match (ours, theirs) {
        (Answer::Error { .. }, Answer::Error { .. }) => None,
        (Answer::Error { status, message }, Answer::Series(s)) => {
            Some(format!("we fail ({status}: {message}), graphite-web answers {} series", s.len()))
        }
        (Answer::Series(s), Answer::Error { status, message }) => {
            Some(format!("graphite-web fails ({status}: {message}), we answer {} series", s.len()))
        }
        (Answer::Series(a), Answer::Series(b)) => series_difference(a, b),
    }
}

fn series_difference(ours: &[OutSeries], theirs: &[OutSeries]) -> Option<String> {
    let names = |l: &[OutSeries]| l.iter().map(|s| s.name.clone()).collect::<Vec<_>>();
    let with_points = |l: &[OutSeries]| {
        l.iter().map(|s| format!("{} ({} points)", s.name, s.points.len())).collect::<Vec<_>>()
    };
    if ours.len() != theirs.len() {
        return Some(format!(
            "{} series vs graphite-web's {}: ours {:?}, graphite-web {:?}",
            ours.len(),
            theirs.len(),
            abbreviate(&with_points(ours)),
            abbreviate(&with_points(theirs))
        ));
    }
    for (i, (a, b)) in ours.iter().zip(theirs).enumerate() {
        if a.name != b.name {
            return Some(format!(
                "series {i}: name {:?}, graphite-web {:?} (all ours {:?}, graphite-web {:?})",
                a.name,
                b.name,
                abbreviate(&names(ours)),
                abbreviate(&names(theirs))
            ));
        }
        if a.tags != b.tags {
            return Some(format!(
                "series {i} `{}`: tags {:?}, graphite-web {:?}",
                a.name, a.tags, b.tags
            ));
        }
        if a.points.len() != b.points.len()
            || a.points.first().map(|p| p.1) != b.points.first().map(|p| p.1)
        {
            let span = |p: &[(Option<f64>, i64)]| {
                format!(
                    "{} points {:?}..{:?}",
                    p.len(),
                    p.first().map(|x| x.1),
                    p.last().map(|x| x.1)
                )
            };
            return Some(format!(
                "series {i} `{}`: {}, graphite-web {}",
                a.name,
                span(&a.points),
                span(&b.points)
            ));
        }
        let mut diffs = a
            .points
            .iter()
            .zip(&b.points)
            .filter(|(p, q)| p.1 != q.1 || !same_value(p.0, q.0))
            .peekable();
        if let Some((p, q)) = diffs.peek().copied() {
            let count = diffs.count();
            let mut msg = format!(
                "series {i} `{}`: {count} of {} points differ; first ",
                a.name,
                a.points.len()
            );
            if p.1 != q.1 {
                let _ = write!(msg, "timestamp {} vs graphite-web {}", p.1, q.1);
            } else {
                let _ = write!(msg, "at {}: {} vs graphite-web {}", p.1, show(p.0), show(q.0));
            }
            return Some(msg);
        }
    }
    None
}

fn abbreviate(names: &[String]) -> Vec<String> {
    if names.len() <= 6 {
        return names.to_vec();
    }
    let mut out = names[..5].to_vec();
    out.push(format!("... {} more", names.len() - 5));
    out
}

/// Whether any series has a tag that one side writes as a number and the other as a string
/// (reported, not failed: our series keep tag values as text).
pub(crate) fn tag_types_differ(ours: &Answer, theirs: &Answer) -> bool {
    match (ours, theirs) {
        (Answer::Series(a), Answer::Series(b)) => {
            a.iter().zip(b).any(|(x, y)| x.numeric_tags != y.numeric_tags)
        }
        _ => false,
    }
}

/// The first difference between two JSON documents (any endpoint), numbers to a relative
/// 1e-9, at a JSON path like `[3].text`.
pub(crate) fn json_difference(
    ours: &serde_json::Value,
    theirs: &serde_json::Value,
    at: &str,
) -> Option<String> {
    use serde_json::Value;
    match (ours, theirs) {
        (Value::Number(a), Value::Number(b)) => {
            let (x, y) = (a.as_f64(), b.as_f64());
            (!same_value(x, y)).then(|| format!("{at}: {a}, graphite-web {b}"))
        }
        (Value::Array(a), Value::Array(b)) => {
            if a.len() != b.len() {
                return Some(format!("{at}: {} items, graphite-web {}", a.len(), b.len()));
            }
            a.iter()
                .zip(b)
                .enumerate()
                .find_map(|(i, (x, y))| json_difference(x, y, &format!("{at}[{i}]")))
        }
        (Value::Object(a), Value::Object(b)) => {
            let ka: Vec<&String> = a.keys().collect();
            let kb: Vec<&String> = b.keys().collect();
            if ka != kb {
                return Some(format!("{at}: keys {ka:?}, graphite-web {kb:?}"));
            }
            a.iter().find_map(|(k, v)| json_difference(v, &b[k], &format!("{at}.{k}")))
        }
        (a, b) => (a != b).then(|| format!("{at}: {a}, graphite-web {b}")),
    }
}
