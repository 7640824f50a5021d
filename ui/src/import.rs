//! Import of graphite-web's dashboards: the `state` its `/dashboard/save/NAME` receives and
//! `/dashboard/load/NAME` answers (`{"state": {...}}`), as built by `getState()` in its
//! `static/js/dashboard.js`:
//!
//! ```text
//! {name, timeConfig: {type, relativeStartQuantity, relativeStartUnits, relativeUntilQuantity,
//!  relativeUntilUnits, startDate, startTime, endDate, endTime},
//!  refreshConfig: {enabled, interval /* ms */}, graphSize, defaultGraphParams,
//!  graphs: [[id, target, params, url], ...]}
//! ```
//!
//! Older releases wrote graphs as `[target, params, url]`; both are read by taking the first
//! object as `params` and the string holding `?` as the render URL. Targets come from
//! `params.target` (a string or a list), else from the URL's `target=` parameters.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::error::{Error, Result};
use crate::store::{Dashboard, Graph, MAX_GRAPHS, MAX_NAME_BYTES, TimeRange};

/// Render parameters that the dashboard itself sets, so not kept per graph.
const DROPPED_PARAMS: &[&str] = &["target", "from", "until", "width", "height", "_uniq", "title"];

/// Converts a graphite-web dashboard state (or `{"state": ...}`) into a [`Dashboard`]; `name`
/// overrides the state's name when given. Characters a file name may not hold become `_`.
///
/// # Errors
///
/// [`Error::InvalidDashboard`] when the JSON is not a dashboard state.
pub fn from_graphite_web(state: &Value, name: Option<&str>) -> Result<Dashboard> {
    let state = state.get("state").unwrap_or(state);
    let Some(obj) = state.as_object() else {
        return Err(Error::invalid("a graphite-web dashboard state is a JSON object"));
    };
    let raw_name = name.or_else(|| obj.get("name").and_then(Value::as_str)).unwrap_or("imported");
    let mut graphs = Vec::new();
    for g in obj.get("graphs").and_then(Value::as_array).into_iter().flatten() {
        if graphs.len() >= MAX_GRAPHS {
            break;
        }
        if let Some(graph) = graph(g) {
            graphs.push(graph);
        }
    }
    let defaults = obj.get("defaultGraphParams");
    let time = obj
        .get("timeConfig")
        .and_then(time_range)
        .or_else(|| {
            let from = defaults?.get("from")?.as_str()?;
            let until = defaults?.get("until").and_then(Value::as_str).unwrap_or("now");
            Some(TimeRange { from: from.into(), until: until.into() })
        })
        .unwrap_or_default();
    let refresh = obj.get("refreshConfig");
    let refresh_seconds = match refresh.and_then(|r| r.get("enabled")).and_then(Value::as_bool) {
        Some(true) => refresh
            .and_then(|r| r.get("interval"))
            .and_then(Value::as_f64)
            .map_or(60, |ms| (ms / 1000.0).clamp(1.0, 86_400.0) as u32),
        _ => 0,
    };
    Ok(Dashboard {
        name: sanitize_name(raw_name),
        graphs,
        time,
        refresh_seconds,
        variables: Vec::new(),
    })
}

/// A file-safe version of a graphite-web name (which may hold `/` and anything else).
fn sanitize_name(name: &str) -> String {
    let mut out: String =
        name.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ' ') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
    while out.starts_with(['.', ' ']) {
        out.replace_range(..1, "_");
    }
    out.truncate(MAX_NAME_BYTES);
    if out.is_empty() { "imported".into() } else { out }
}

fn graph(g: &Value) -> Option<Graph> {
    let items = g.as_array()?;
    let params = items.iter().find_map(Value::as_object);
    let url = items.iter().filter_map(Value::as_str).find(|s| s.contains('?'));
    let mut targets: Vec<String> = match params.and_then(|p| p.get("target")) {
        Some(Value::String(t)) => vec![t.clone()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).map(String::from).collect(),
        _ => Vec::new(),
    };
    if let (true, Some((_, query))) = (targets.is_empty(), url.and_then(|u| u.split_once('?'))) {
        targets = query
            .split('&')
            .filter_map(|kv| kv.strip_prefix("target="))
            .map(percent_decode)
            .collect();
    }
    if targets.is_empty() {
        return None;
    }
    let mut kept = BTreeMap::new();
    let mut title = String::new();
    if let Some(p) = params {
        for (k, v) in p {
            if k == "title" {
                title = v.as_str().unwrap_or_default().to_string();
            } else if !DROPPED_PARAMS.contains(&k.as_str()) {
                kept.insert(k.clone(), v.clone());
            }
        }
    }
    Some(Graph { title, targets, params: kept })
}

/// `%XX` and `+` decoding of one query value; bad escapes are kept as they are.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let hex = |at: usize| bytes.get(at).and_then(|c| (*c as char).to_digit(16));
        match (b, hex(i + 1), hex(i + 2)) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b'+', _, _) => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// graphite-web's `timeConfig` as render's `from`/`until`.
fn time_range(t: &Value) -> Option<TimeRange> {
    let text = |k: &str| -> Option<String> {
        match t.get(k)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    };
    if t.get("type").and_then(Value::as_str) == Some("absolute") {
        let from = absolute(&text("startDate")?, text("startTime").as_deref())?;
        let until = absolute(&text("endDate")?, text("endTime").as_deref())?;
        return Some(TimeRange { from, until });
    }
    let quantity = text("relativeStartQuantity")?;
    let units = text("relativeStartUnits")?;
    let from = relative(&quantity, &units)?;
    let until = match (text("relativeUntilQuantity"), text("relativeUntilUnits")) {
        (Some(q), Some(u)) if !q.trim().is_empty() && u != "now" => {
            relative(&q, &u).unwrap_or_else(|| "now".into())
        }
        _ => "now".into(),
    };
    Some(TimeRange { from, until })
}

/// `-{quantity}{units}`, with the quantity checked to be a number and the units a word.
fn relative(quantity: &str, units: &str) -> Option<String> {
    let q: u64 = quantity.trim().parse().ok()?;
    let ok = !units.is_empty() && units.bytes().all(|b| b.is_ascii_alphabetic());
    ok.then(|| format!("-{q}{units}"))
}

/// An Ext date (`2023-11-14T00:00:00`, as `Ext.encode` writes a `Date`) and a time such as
/// `9:00 AM`, as render's `HH:MM_YYYYMMDD`.
fn absolute(date: &str, time: Option<&str>) -> Option<String> {
    let day = date.get(..10)?;
    let mut parts = day.split('-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !(all_digits(y) && all_digits(m) && all_digits(d)) {
        return None;
    }
    let (mut hour, mut minute) = (0u32, 0u32);
    if let Some(t) = time {
        let t = t.trim();
        let (clock, pm) = match t.rsplit_once(' ') {
            Some((c, ampm)) => (c, Some(ampm.eq_ignore_ascii_case("PM"))),
            None => (t, None),
        };
        let (h, mi) = clock.split_once(':')?;
        hour = h.trim().parse().ok()?;
        minute = mi.trim().parse().ok()?;
        match pm {
            Some(true) if hour < 12 => hour += 12,
            Some(false) if hour == 12 => hour = 0,
            _ => {}
        }
        if hour > 23 || minute > 59 {
            return None;
        }
    }
    Some(format!("{hour:02}:{minute:02}_{y}{m}{d}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn imports_graphite_web_dashboard_state() {
        let state = json!({"state": {
            "name": "ops/web servers",
            "timeConfig": {"type": "relative", "relativeStartQuantity": "6",
                "relativeStartUnits": "hours", "relativeUntilQuantity": "",
                "relativeUntilUnits": "now", "startDate": "2023-11-14T00:00:00",
                "startTime": "9:00 AM", "endDate": "2023-11-14T00:00:00", "endTime": "5:00 PM"},
            "refreshConfig": {"enabled": true, "interval": 60000},
            "graphSize": {"width": 400, "height": 250},
            "defaultGraphParams": {"from": "-6hours", "until": "now", "width": 400},
            "graphs": [
                ["target=a.b", {"target": ["a.b", "sumSeries(c.*)"], "title": "Load",
                    "yMin": 0, "from": "-2h"}, "/render?target=a.b&target=sumSeries(c.*)"],
                ["x", {"target": "single.one"}, "/render?target=single.one"],
                [{"width": 3}, "/render?target=from.url&target=sum%28a.%2A%29&from=-1h"],
                ["nothing", {}, "no url"]
            ]
        }});
        let d = from_graphite_web(&state, None).unwrap();
        assert_eq!(d.name, "ops_web servers");
        assert_eq!(d.time, TimeRange { from: "-6hours".into(), until: "now".into() });
        assert_eq!(d.refresh_seconds, 60);
        assert_eq!(d.graphs.len(), 3);
        assert_eq!(d.graphs[0].title, "Load");
        assert_eq!(d.graphs[0].targets, ["a.b", "sumSeries(c.*)"]);
        assert_eq!(d.graphs[0].params, BTreeMap::from([("yMin".to_string(), json!(0))]));
        assert_eq!(d.graphs[1].targets, ["single.one"]);
        assert_eq!(d.graphs[2].targets, ["from.url", "sum(a.*)"]);
        crate::store::validate(&d).unwrap();
    }

    #[test]
    fn imports_absolute_time_ranges() {
        let state = json!({"name": "abs", "graphs": [],
            "timeConfig": {"type": "absolute", "startDate": "2023-11-14T00:00:00",
                "startTime": "9:05 AM", "endDate": "2023-11-15T00:00:00", "endTime": "12:30 PM"}});
        let d = from_graphite_web(&state, Some("renamed")).unwrap();
        assert_eq!(d.name, "renamed");
        assert_eq!(d.time.from, "09:05_20231114");
        assert_eq!(d.time.until, "12:30_20231115");
    }

    #[test]
    fn never_panics_on_odd_input() {
        for v in [
            json!(null),
            json!([]),
            json!("x"),
            json!({"graphs": 3}),
            json!({"graphs": [[null], [1, 2], []], "timeConfig": {"type": "absolute",
                "startDate": "é", "endDate": 5}}),
            json!({"name": "...", "timeConfig": {"relativeStartQuantity": "-x"}}),
        ] {
            let _ = from_graphite_web(&v, None);
        }
        assert_eq!(sanitize_name(".."), "_.");
        assert!(crate::store::validate_name(&sanitize_name("..")).is_ok());
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
    }
}
