//! `/events/` (create, list), `/events/get_data` and `/events/<id>` (graphite-web's
//! `events/views.py`, graphite-reference §3.7) over the [`EventStore`].

use axum::http::{Method, StatusCode};
use axum::response::Response;

use super::render::{now_epoch, request_zone};
use super::{Req, Shared, reply, response};
use crate::events::{Event, TagSet};
use crate::format::{Json, jsonp_wrap};

/// `/events/`: GET lists the events as HTML, POST creates one from a JSON body.
pub(crate) fn view_events(shared: &Shared, req: &Req) -> Response {
    if req.method == Method::GET {
        let events = shared.events.find(f64::MIN, f64::MAX, None, TagSet::All);
        let mut html = String::from(
            "<!DOCTYPE html>\n<html><head><title>Events</title></head><body>\n<h1>Events</h1>\n<table>\n<tr><th>when</th><th>what</th><th>tags</th><th>data</th></tr>\n",
        );
        for e in events.iter().rev() {
            html.push_str(&format!(
                "<tr><td><a href=\"{}/\">{}</a></td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                e.id,
                iso_time(e.when),
                escape(&e.what),
                escape(&e.tags.join(" ")),
                escape(&e.data)
            ));
        }
        html.push_str("</table>\n</body></html>\n");
        return reply::text(StatusCode::OK, "text/html; charset=utf-8", html);
    }
    if req.method != Method::POST {
        return reply::empty(StatusCode::METHOD_NOT_ALLOWED);
    }
    post_event(shared, req)
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Creates an event: `{"what": str, "tags": [..] or "a b", "when": epoch, "data": str}`.
fn post_event(shared: &Shared, req: &Req) -> Response {
    let bad = |msg: String| {
        let body = Json::obj([("error", Json::str(msg))]).to_bytes(None, false);
        response(StatusCode::BAD_REQUEST, "text/html; charset=utf-8", body)
    };
    let event: serde_json::Value = match serde_json::from_slice(&req.body) {
        Ok(v) => v,
        Err(e) => return bad(format!("the body is not JSON: {e}")),
    };
    let Some(obj) = event.as_object() else {
        return bad("the body must be a JSON object".into());
    };
    let tags: Vec<String> = match obj.get("tags") {
        None | Some(serde_json::Value::Null) => Vec::new(),
        Some(serde_json::Value::String(s)) => s.split_whitespace().map(String::from).collect(),
        Some(serde_json::Value::Array(items)) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                match item.as_str() {
                    Some(s) => out.extend(s.split_whitespace().map(String::from)),
                    None => {
                        return bad("\"tags\" must be an array or space-separated string".into());
                    }
                }
            }
            out
        }
        Some(_) => return bad("\"tags\" must be an array or space-separated string".into()),
    };
    let when = match obj.get("when") {
        None => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64()),
        Some(w) => match w.as_f64() {
            Some(t) if t.is_finite() => t,
            _ => return bad("\"when\" must be an epoch timestamp".into()),
        },
    };
    let what = match obj.get("what") {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Null) | None => return bad("\"what\" is required".into()),
        Some(other) => other.to_string(),
    };
    let data = match obj.get("data") {
        None | Some(serde_json::Value::Null) => String::new(),
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    match shared.events.add(when, what, data, tags) {
        Ok(_) => reply::empty(StatusCode::OK),
        Err(e) => {
            tracing::error!(error = %e, "cannot record an event");
            reply::server_error(&e.to_string())
        }
    }
}

fn event_json(e: &Event) -> Json<'_> {
    Json::obj([
        ("when", Json::Int(e.when.floor() as i64)),
        ("what", Json::str(e.what.as_str())),
        ("data", Json::str(e.data.as_str())),
        ("tags", Json::Arr(e.tags.iter().map(|t| Json::str(t.as_str())).collect())),
        ("id", Json::Int(e.id as i64)),
    ])
}

/// `/events/get_data`: events between `from` and `until` (default: all time up to now)
/// with `tags` (space-separated) combined as `set` says, ordered by time.
pub(crate) fn get_data(shared: &Shared, req: &Req) -> Response {
    let p = &req.params;
    let tz = request_zone(None);
    let now = now_epoch();
    let parse = |key: &str, default: i64| -> Result<i64, String> {
        match p.get(key) {
            Some(spec) => crate::time::parse_at_time(spec, &tz, now)
                .map_err(|e| format!("Invalid value for {key}: {e}")),
            None => Ok(default),
        }
    };
    let (from, until) = match (parse("from", 0), parse("until", now)) {
        (Ok(f), Ok(u)) => (f, u),
        (Err(e), _) | (_, Err(e)) => {
            return reply::text(StatusCode::BAD_REQUEST, "text/plain; charset=utf-8", e);
        }
    };
    let set = TagSet::parse(p.get("set"));
    // graphite-web splits on single spaces (so `a  b` asks for an empty tag too).
    let tags: Option<Vec<String>> = p.get("tags").map(|t| t.split(' ').map(String::from).collect());
    // Times are whole seconds here; an event at 12.5 s is inside `until=12`, as it is for
    // graphite-web, whose `until` carries the request's fraction of a second.
    let events = shared.events.find(from as f64, until as f64 + 0.999_999, tags.as_deref(), set);
    let list = Json::Arr(events.iter().map(event_json).collect());
    let body = list.to_bytes(None, false);
    match p.get("jsonp") {
        Some(cb) => response(StatusCode::OK, "text/javascript", jsonp_wrap(cb, &body)),
        None => response(StatusCode::OK, "application/json", body),
    }
}

/// `/events/<id>`: JSON `{"id", "when": ISO time, "what", "data", "tags"}` when the client
/// accepts exactly `application/json`, else a small HTML page.
pub(crate) fn detail(shared: &Shared, req: &Req, id: &str) -> Response {
    let event = id.parse::<u64>().ok().and_then(|id| shared.events.get(id));
    if req.header("accept") == Some("application/json") {
        return match event {
            Some(e) => {
                let body = Json::obj([
                    ("id", Json::Int(e.id as i64)),
                    ("when", Json::str(iso_time(e.when))),
                    ("what", Json::str(e.what.as_str())),
                    ("data", Json::str(e.data.as_str())),
                    ("tags", Json::Arr(e.tags.iter().map(|t| Json::str(t.as_str())).collect())),
                ]);
                reply::json_view(req, &body, StatusCode::OK)
            }
            None => {
                reply::json_error(req, "Event matching query does not exist", StatusCode::NOT_FOUND)
            }
        };
    }
    match event {
        Some(e) => reply::text(
            StatusCode::OK,
            "text/html; charset=utf-8",
            format!(
                "<!DOCTYPE html>\n<html><head><title>{what}</title></head><body>\n<h1>{what}</h1>\n<p>{when}</p>\n<p>tags: {tags}</p>\n<pre>{data}</pre>\n</body></html>\n",
                what = escape(&e.what),
                when = iso_time(e.when),
                tags = escape(&e.tags.join(" ")),
                data = escape(&e.data)
            ),
        ),
        None => reply::not_found(&req.path),
    }
}

/// Django's JSON form of a UTC datetime: `2026-11-21T19:12:20Z`, with milliseconds when the
/// time has a fraction (`...:20.250Z`).
fn iso_time(when: f64) -> String {
    let secs = when.floor();
    let micros = ((when - secs) * 1e6).round() as i64;
    let (secs, micros) =
        if micros >= 1_000_000 { (secs as i64 + 1, 0) } else { (secs as i64, micros) };
    let (y, mo, d, h, mi, s) = crate::format::civil(secs);
    let mut out = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}");
    if micros > 0 {
        out.push_str(&format!(".{:03}", micros / 1000));
    }
    out.push('Z');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_times_look_like_djangos() {
        assert_eq!(iso_time(1_795_288_200.0), "2026-11-21T19:10:00Z");
        assert_eq!(iso_time(1_795_288_200.25), "2026-11-21T19:10:00.250Z");
    }
}
