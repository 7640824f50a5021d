//! Building responses the way graphite-web's helpers do: `json_response_for` (metrics views),
//! `@jsonResponse` (tags, functions), `HttpResponseBadRequest` for input errors, Django's
//! cache headers, and CORS.

use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;

use super::{HttpConfig, Req, header_value, response};
use crate::format::{Json, jsonp_wrap};

/// A text response.
pub(crate) fn text(status: StatusCode, content_type: &str, body: String) -> Response {
    response(status, content_type, body.into_bytes())
}

/// graphite-web's `InputParameterError` answer: 400, `text/html`, the message with `&`, `<`
/// and `>` escaped (`htmlEscape`).
pub(crate) fn bad_request(message: &str) -> Response {
    let escaped = message.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    text(StatusCode::BAD_REQUEST, "text/html; charset=utf-8", escaped)
}

/// `Invalid parameters (<msg>)` plus `; targets: "<t1, t2>"` when targets are known.
pub(crate) fn invalid_parameters(message: &str, targets: &[&str]) -> Response {
    let mut msg = format!("Invalid parameters ({message})");
    if !targets.is_empty() {
        msg.push_str(&format!("; targets: \"{}\"", targets.join(", ")));
    }
    bad_request(&msg)
}

/// A 500 with the error's text (graphite-web shows Django's error page).
pub(crate) fn server_error(message: &str) -> Response {
    text(StatusCode::INTERNAL_SERVER_ERROR, "text/plain; charset=utf-8", message.to_string())
}

/// 503 for a request that ran out of time.
pub(crate) fn timeout(limit: Duration) -> Response {
    text(
        StatusCode::SERVICE_UNAVAILABLE,
        "text/plain; charset=utf-8",
        format!(
            "the request took longer than {} ms (limit request_timeout); ask for fewer series or a shorter range",
            limit.as_millis()
        ),
    )
}

/// 404 for a path no view answers.
pub(crate) fn not_found(path: &str) -> Response {
    let escaped = path.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    text(
        StatusCode::NOT_FOUND,
        "text/html; charset=utf-8",
        format!(
            "<h1>Not Found</h1><p>The requested resource {escaped} was not found on this server.</p>"
        ),
    )
}

/// An empty response with a status (405 for a wrong method, 200 for a created event).
pub(crate) fn empty(status: StatusCode) -> Response {
    response(status, "text/html; charset=utf-8", Vec::new())
}

/// graphite-web's `json_response_for`: ASCII-escaped unless the client's `Accept` is
/// something other than exactly `application/json` (then UTF-8 and `;charset=utf-8`),
/// indented by 2 when `pretty` is set (POST's value first, as graphite-web reads it), JSONP
/// when `jsonp` is given.
pub(crate) fn json_for(
    req: &Req,
    data: &Json<'_>,
    jsonp: Option<&str>,
    status: StatusCode,
) -> Response {
    let ensure_ascii = req.header("accept").is_none_or(|a| a == "application/json");
    let pretty = req.params.truthy("pretty");
    let mut body = Vec::with_capacity(256);
    data.write(&mut body, pretty.then_some(2), false, ensure_ascii);
    let mut content_type = "application/json".to_string();
    if let Some(cb) = jsonp.filter(|cb| !cb.is_empty()) {
        body = jsonp_wrap(cb, &body);
        content_type = "text/javascript".into();
    }
    if !ensure_ascii {
        content_type.push_str(";charset=utf-8");
    }
    response(status, &content_type, body)
}

/// graphite-web's `@jsonResponse`: indented and key-sorted when `pretty` is set.
pub(crate) fn json_view(req: &Req, data: &Json<'_>, status: StatusCode) -> Response {
    let pretty = req.params.truthy("pretty");
    let mut body = Vec::with_capacity(256);
    data.write(&mut body, pretty.then_some(2), pretty, true);
    response(status, "application/json", body)
}

/// `@jsonResponse`'s error answer: `{"error": "<msg>"}`.
pub(crate) fn json_error(req: &Req, message: &str, status: StatusCode) -> Response {
    json_view(req, &Json::obj([("error", Json::str(message))]), status)
}

/// Django's `patch_response_headers` (`Expires` now + timeout, `Cache-Control: max-age`) or,
/// for `noCache`/`cacheTimeout=0`, `add_never_cache_headers`.
pub(crate) fn cache_headers(headers: &mut HeaderMap, timeout: Option<i64>) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    match timeout {
        Some(t) => {
            let t = t.max(0);
            headers.insert(
                header::EXPIRES,
                header_value(&super::params::http_date(now.saturating_add(t))),
            );
            headers.insert(header::CACHE_CONTROL, header_value(&format!("max-age={t}")));
        }
        None => {
            headers.insert(header::EXPIRES, header_value(&super::params::http_date(now)));
            headers.insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("max-age=0, no-cache, no-store, must-revalidate, private"),
            );
        }
    }
}

/// `Pragma: no-cache` and `Cache-Control: no-cache`, as the metrics views set them.
pub(crate) fn no_cache(response: &mut Response) {
    let h = response.headers_mut();
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
}

/// The `Access-Control-Allow-Origin` value for a request's origin, if it is allowed.
fn allowed_origin(config: &HttpConfig, origin: Option<&HeaderValue>) -> Option<HeaderValue> {
    if config.cors_origins.iter().any(|o| o == "*") {
        return Some(HeaderValue::from_static("*"));
    }
    let origin = origin?;
    let text = origin.to_str().ok()?;
    config.cors_origins.iter().any(|o| o == text).then(|| origin.clone())
}

/// Adds CORS headers to a response.
pub(crate) fn add_cors(config: &HttpConfig, origin: Option<&HeaderValue>, headers: &mut HeaderMap) {
    if let Some(allow) = allowed_origin(config, origin) {
        if allow != "*" {
            headers.insert(header::VARY, HeaderValue::from_static("Origin"));
        }
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allow);
    }
}

/// The answer to a CORS preflight (`OPTIONS`): the allowed origin, methods and the headers
/// the browser asked for; 204 without a body.
pub(crate) fn preflight(
    config: &HttpConfig,
    origin: Option<&HeaderValue>,
    request: &HeaderMap,
) -> Response {
    let mut r = response(StatusCode::NO_CONTENT, "text/plain", Vec::new());
    r.headers_mut().remove(header::CONTENT_TYPE);
    let h = r.headers_mut();
    h.insert(header::ALLOW, HeaderValue::from_static("GET, POST, OPTIONS"));
    if let Some(allow) = allowed_origin(config, origin) {
        if allow != "*" {
            h.insert(header::VARY, HeaderValue::from_static("Origin"));
        }
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allow);
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST, OPTIONS"),
        );
        let asked = request
            .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
            .cloned()
            .unwrap_or_else(|| HeaderValue::from_static("Content-Type, Authorization"));
        h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, asked);
        h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("86400"));
    }
    r
}
