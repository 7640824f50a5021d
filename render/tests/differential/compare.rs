//! What an answer is, read from graphite-web's JSON or from our series, and how two answers
//! are compared: names and tags exactly, timestamps exactly, values to a relative 1e-9 (the
//! JSON round trip of a float may move it by an ulp), null equal to null.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use render::Series;

/// One series as `/render?format=json` gives it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct OutSeries {
    /// `target`.
    pub(crate) name: String,
    /// `tags` (values as text: graphite-web keeps them as strings).
    pub(crate) tags: BTreeMap<String, String>,
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
        let tags = s["tags"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| v.to_string(), str::to_string)))
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
        out.push(OutSeries { name, tags, points });
    }
    Answer::Series(out)
}

/// graphite-web's JSON view applied to our series: `maxDataPoints` consolidation (with its
/// start "nudge") and `noNullPoints`, then `datapoints()`. A stand-in for render's HTTP layer
/// in the in-process comparison; the HTTP comparison uses the server's own.
pub(crate) fn from_series(
    mut series: Vec<Series>,
    max_data_points: Option<u64>,
    no_null_points: bool,
) -> Answer {
    if let Some(mdp) = max_data_points
        && !series.is_empty()
    {
        let start = series.iter().map(|s| s.start).min().unwrap_or(0);
        let end = series.iter().map(|s| s.end).max().unwrap_or(0);
        let range = end - start;
        for s in &mut series {
            if mdp == 1 {
                // Python's `len(series)`: the raw values.
                let n = s.values.len();
                s.consolidate(n);
                continue;
            }
            // Python 3: `timeRange / step` is a true division.
            let points = range as f64 / s.step as f64;
            if (mdp as f64) < points {
                let per_point = (points / mdp as f64).ceil() as i64;
                let seconds_per_point = per_point * s.step;
                let nudge = seconds_per_point + s.start.rem_euclid(s.step)
                    - s.start.rem_euclid(seconds_per_point);
                s.start += nudge;
                let lose = usize::try_from(nudge / s.step).unwrap_or(0);
                // graphite-web deletes one value fewer than the nudge moved the start.
                let drop = lose.saturating_sub(1).min(s.values.len());
                s.values.drain(..drop);
                s.consolidate(usize::try_from(per_point).unwrap_or(1));
            }
        }
    }
    // graphite-web renders nothing at all (`if any(data)`) when every series is empty.
    if series.iter().all(|s| s.values.is_empty()) {
        return Answer::Series(Vec::new());
    }
    let mut out = Vec::new();
    for s in &series {
        let mut points: Vec<(Option<f64>, i64)> =
            s.datapoints().into_iter().map(|(v, t)| (v.filter(|x| !x.is_nan()), t)).collect();
        if no_null_points {
            points.retain(|(v, _)| v.is_some());
            if points.is_empty() {
                continue;
            }
        }
        out.push(OutSeries { name: s.name.clone(), tags: s.tags.clone(), points });
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
    if ours.len() != theirs.len() {
        return Some(format!(
            "{} series vs graphite-web's {}: ours {:?}, graphite-web {:?}",
            ours.len(),
            theirs.len(),
            abbreviate(&names(ours)),
            abbreviate(&names(theirs))
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
