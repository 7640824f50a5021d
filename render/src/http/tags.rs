//! `/tags/*` (graphite-web's `tags/views.py` over its TagDB, graphite-reference §3.5).
//!
//! Every view is an `@jsonResponse` view: errors are `{"error": "<msg>"}` with 400 for bad
//! input, a wrong method is 405 with an empty body.

use axum::http::{Method, StatusCode};
use axum::response::Response;

use super::params::py_int;
use super::{Req, Shared, reply};
use crate::format::Json;

/// graphite-web's `TAGDB_AUTOCOMPLETE_LIMIT`.
const AUTOCOMPLETE_LIMIT: usize = 100;

fn method_not_allowed() -> Response {
    reply::empty(StatusCode::METHOD_NOT_ALLOWED)
}

fn strings(list: Vec<String>) -> Json<'static> {
    Json::Arr(list.into_iter().map(Json::str).collect())
}

/// `POST /tags/tagSeries`: registers a series, answers its normalised name.
pub(crate) fn tag_series(shared: &Shared, req: &Req) -> Response {
    if req.method != Method::POST {
        return method_not_allowed();
    }
    let Some(path) = req.params.get("path").filter(|p| !p.is_empty()) else {
        return reply::json_error(req, "no path specified", StatusCode::BAD_REQUEST);
    };
    match register(shared, path) {
        Ok(name) => reply::json_view(req, &Json::str(name), StatusCode::OK),
        Err(e) => reply::json_error(req, &e, StatusCode::INTERNAL_SERVER_ERROR),
    }
}

fn register(shared: &Shared, path: &str) -> Result<String, String> {
    let name = carbon_proto::tags::normalize(path).map_err(|e| e.to_string())?;
    shared.backend.tag_index().insert(&name).map_err(|e| e.to_string())?;
    Ok(name)
}

/// `POST /tags/tagMultiSeries`: several `path`s (or `path[]`), answers their names.
pub(crate) fn tag_multi_series(shared: &Shared, req: &Req) -> Response {
    if req.method != Method::POST {
        return method_not_allowed();
    }
    let paths = req.params.list_or_brackets("path");
    if paths.is_empty() {
        return reply::json_error(req, "no paths specified", StatusCode::BAD_REQUEST);
    }
    let mut names = Vec::with_capacity(paths.len());
    for path in paths {
        match register(shared, path) {
            Ok(n) => names.push(n),
            Err(e) => return reply::json_error(req, &e, StatusCode::INTERNAL_SERVER_ERROR),
        }
    }
    reply::json_view(req, &strings(names), StatusCode::OK)
}

/// `POST /tags/delSeries`: forgets series; answers `true`.
pub(crate) fn del_series(shared: &Shared, req: &Req) -> Response {
    if req.method != Method::POST {
        return method_not_allowed();
    }
    let paths = req.params.list_or_brackets("path");
    if paths.is_empty() {
        return reply::json_error(req, "no path specified", StatusCode::BAD_REQUEST);
    }
    for path in paths {
        if let Err(e) = shared.backend.tag_index().remove(path) {
            return reply::json_error(req, &e.to_string(), StatusCode::INTERNAL_SERVER_ERROR);
        }
    }
    reply::json_view(req, &Json::Bool(true), StatusCode::OK)
}

/// `/tags/findSeries`: the series matching every `expr`, sorted.
pub(crate) fn find_series(shared: &Shared, req: &Req) -> Response {
    if req.method != Method::GET && req.method != Method::POST {
        return method_not_allowed();
    }
    let exprs = req.params.list_or_brackets("expr");
    if exprs.is_empty() {
        return reply::json_error(req, "no tag expressions specified", StatusCode::BAD_REQUEST);
    }
    match shared.backend.tag_index().find_series(&exprs) {
        Ok(list) => reply::json_view(req, &strings(list), StatusCode::OK),
        Err(e) => reply::json_error(req, &e.to_string(), StatusCode::BAD_REQUEST),
    }
}

/// A `limit` as graphite-web's SQL applies it: empty or absent is no limit, `0` is none at
/// all, a negative number is no limit (SQLite's `LIMIT -1`).
enum SqlLimit {
    All,
    None,
    At(usize),
}

fn sql_limit(text: Option<&str>) -> Result<SqlLimit, String> {
    match text.filter(|t| !t.is_empty()) {
        None => Ok(SqlLimit::All),
        Some(t) => Ok(match py_int(t)? {
            0 => SqlLimit::None,
            n if n < 0 => SqlLimit::All,
            n => SqlLimit::At(usize::try_from(n).unwrap_or(usize::MAX)),
        }),
    }
}

/// `GET /tags`: `[{"id", "tag"}]`, filtered by `filter` (an anchored regex) and `limit`.
pub(crate) fn tag_list(shared: &Shared, req: &Req) -> Response {
    if req.method != Method::GET {
        return method_not_allowed();
    }
    let limit = match sql_limit(req.params.get("limit")) {
        Ok(l) => l,
        Err(e) => return reply::json_error(req, &e, StatusCode::BAD_REQUEST),
    };
    let limit = match limit {
        SqlLimit::None => return reply::json_view(req, &Json::Arr(Vec::new()), StatusCode::OK),
        SqlLimit::All => None,
        SqlLimit::At(n) => Some(n),
    };
    let filter = req.params.get("filter").filter(|f| !f.is_empty());
    match shared.backend.tag_index().tags(filter, limit) {
        Ok(tags) => {
            let list = tags
                .into_iter()
                .map(|t| Json::obj([("id", Json::Int(t.id as i64)), ("tag", Json::str(t.tag))]))
                .collect();
            reply::json_view(req, &Json::Arr(list), StatusCode::OK)
        }
        Err(e) => reply::json_error(req, &e.to_string(), StatusCode::BAD_REQUEST),
    }
}

/// `GET /tags/<tag>`: `{"id", "tag", "values": [{"id", "value", "count"}]}`, or `null`.
pub(crate) fn tag_details(shared: &Shared, req: &Req, tag: &str) -> Response {
    if req.method != Method::GET {
        return method_not_allowed();
    }
    let limit = match sql_limit(req.params.get("limit")) {
        Ok(l) => l,
        Err(e) => return reply::json_error(req, &e, StatusCode::BAD_REQUEST),
    };
    let filter = req.params.get("filter").filter(|f| !f.is_empty());
    let index_limit = match limit {
        SqlLimit::At(n) => Some(n),
        _ => None,
    };
    match shared.backend.tag_index().tag_values(tag, filter, index_limit) {
        Ok(None) => reply::json_view(req, &Json::Null, StatusCode::OK),
        Ok(Some(tv)) => {
            let values = if matches!(limit, SqlLimit::None) {
                Vec::new()
            } else {
                tv.values
                    .into_iter()
                    .map(|v| {
                        Json::obj([
                            ("id", Json::Int(v.id as i64)),
                            ("value", Json::str(v.value)),
                            ("count", Json::Int(v.count as i64)),
                        ])
                    })
                    .collect()
            };
            let body = Json::obj([
                ("id", Json::Int(tv.id as i64)),
                ("tag", Json::str(tv.tag)),
                ("values", Json::Arr(values)),
            ]);
            reply::json_view(req, &body, StatusCode::OK)
        }
        Err(e) => reply::json_error(req, &e.to_string(), StatusCode::BAD_REQUEST),
    }
}

fn autocomplete_limit(req: &Req) -> Result<usize, String> {
    match req.params.get("limit") {
        None => Ok(AUTOCOMPLETE_LIMIT),
        Some(t) => Ok(usize::try_from(py_int(t)?.max(0)).unwrap_or(usize::MAX)),
    }
}

/// `/tags/autoComplete/tags`: tag names for `expr`s and `tagPrefix`, sorted, at most `limit`.
pub(crate) fn auto_complete_tags(shared: &Shared, req: &Req) -> Response {
    if req.method != Method::GET && req.method != Method::POST {
        return method_not_allowed();
    }
    let exprs = req.params.list_or_brackets("expr");
    let limit = match autocomplete_limit(req) {
        Ok(l) => l,
        Err(e) => return reply::json_error(req, &e, StatusCode::BAD_REQUEST),
    };
    let prefix = req.params.get("tagPrefix");
    match shared.backend.tag_index().auto_complete_tags(&exprs, prefix, limit) {
        Ok(list) => reply::json_view(req, &strings(list), StatusCode::OK),
        Err(e) => reply::json_error(req, &e.to_string(), StatusCode::BAD_REQUEST),
    }
}

/// `/tags/autoComplete/values`: values of `tag` for `expr`s and `valuePrefix`.
pub(crate) fn auto_complete_values(shared: &Shared, req: &Req) -> Response {
    if req.method != Method::GET && req.method != Method::POST {
        return method_not_allowed();
    }
    let exprs = req.params.list_or_brackets("expr");
    let Some(tag) = req.params.get("tag").filter(|t| !t.is_empty()) else {
        return reply::json_error(req, "no tag specified", StatusCode::BAD_REQUEST);
    };
    let limit = match autocomplete_limit(req) {
        Ok(l) => l,
        Err(e) => return reply::json_error(req, &e, StatusCode::BAD_REQUEST),
    };
    let prefix = req.params.get("valuePrefix");
    match shared.backend.tag_index().auto_complete_values(tag, &exprs, prefix, limit) {
        Ok(list) => reply::json_view(req, &strings(list), StatusCode::OK),
        Err(e) => reply::json_error(req, &e.to_string(), StatusCode::BAD_REQUEST),
    }
}
