//! `/metrics/find`, `/metrics/expand`, `/metrics/index.json` and the metadata views
//! (graphite-web's `metrics/views.py`, graphite-reference §3.4).

use std::collections::BTreeSet;

use axum::http::StatusCode;
use axum::response::Response;

use super::params::{py_int, py_repr, unquote_plus};
use super::render::{now_epoch, request_zone};
use super::{Req, Shared, reply, response};
use crate::format::{Json, msgpack};

/// A node as graphite-web's finders yield it: a branch or a leaf (a name that is both is two
/// nodes, the branch first, as `STORE.find` yields them).
struct FoundNode {
    path: String,
    is_leaf: bool,
}

impl FoundNode {
    /// The last component (`node.name`).
    fn name(&self) -> &str {
        self.path.rsplit('.').next().unwrap_or(&self.path)
    }
}

/// `queryParamAsInt`: absent gives the default, bad text an input error.
fn param_int(req: &Req, name: &str, default: i64) -> Result<i64, String> {
    match req.params.get(name) {
        None => Ok(default),
        Some(v) => {
            py_int(v).map_err(|e| format!("Invalid int value {} for param {name}: {e}", py_repr(v)))
        }
    }
}

/// `/metrics/find` (and `/metrics`).
pub(crate) fn find(shared: &Shared, req: &Req) -> Response {
    match find_inner(shared, req) {
        Ok(r) => r,
        Err(msg) => reply::invalid_parameters(&msg, &[]),
    }
}

fn find_inner(shared: &Shared, req: &Req) -> Result<Response, String> {
    let p = &req.params;
    let format = p.get("format").unwrap_or("treejson");
    let leaves_only = param_int(req, "leavesOnly", 0)? != 0;
    let local = param_int(req, "local", 0)? != 0;
    let wildcards = param_int(req, "wildcards", 0)? != 0;
    let tz = request_zone(p.get("tz"));
    let current = now_epoch();
    let now = match p.get("now") {
        Some(v) => crate::time::parse_at_time(v, &tz, current)
            .map_err(|e| format!("Invalid value {} for param now: {e}", py_repr(v)))?,
        None => current,
    };
    // `from`/`until` are read and checked as graphite-web does; the index has no time
    // dimension, so they do not narrow the answer (nor do they for graphite-web's finder).
    for key in ["from", "until"] {
        if let Some(v) = p.get(key).filter(|v| *v != "-1") {
            crate::time::parse_at_time(v, &tz, now)
                .map_err(|e| format!("Invalid value {} for param {key}: {e}", py_repr(v)))?;
        }
    }
    let position = param_int(req, "position", -1)?;
    let jsonp = p.get("jsonp");
    let automatic_variants = param_int(req, "automatic_variants", 0)? != 0;
    let Some(query) = p.get("query") else {
        return Err("Missing required parameter 'query'".into());
    };
    if query.is_empty() {
        return Err("Required parameter 'query' is empty".into());
    }
    let base_path = match query.rfind('.') {
        Some(i) => query.get(..=i).unwrap_or("").to_string(),
        None => String::new(),
    };
    let mut query = query.to_string();
    if format == "completer" {
        query = query.replace("..", "*.");
        if !query.ends_with('*') {
            query.push('*');
        }
        if automatic_variants {
            query = query
                .split('.')
                .map(|part| {
                    if part.contains(',') && !part.contains('{') {
                        format!("{{{part}}}")
                    } else {
                        part.to_string()
                    }
                })
                .collect::<Vec<_>>()
                .join(".");
        }
    }
    let found = shared.backend_for(local).find_nodes(&query).map_err(|e| e.to_string())?;
    let mut matches: Vec<FoundNode> = Vec::with_capacity(found.len());
    for node in found {
        if node.is_branch && !leaves_only {
            matches.push(FoundNode { path: node.path.clone(), is_leaf: false });
        }
        if node.is_leaf {
            matches.push(FoundNode { path: node.path, is_leaf: true });
        }
    }
    // graphite-web sorts by the last component (a stable sort over path order).
    matches.sort_by(|a, b| a.name().cmp(b.name()));

    let mut resp = match format {
        "treejson" => {
            reply::json_for(req, &tree_json(&matches, &base_path, wildcards), jsonp, StatusCode::OK)
        }
        "nodelist" => {
            let mut found = BTreeSet::new();
            for m in &matches {
                let parts: Vec<&str> = m.path.split('.').collect();
                let i = if position < 0 { parts.len() as i64 + position } else { position };
                match usize::try_from(i).ok().and_then(|i| parts.get(i)) {
                    Some(part) => {
                        found.insert(*part);
                    }
                    None => {
                        return Ok(reply::server_error(&format!(
                            "position {position} is out of range for {}",
                            m.path
                        )));
                    }
                }
            }
            let nodes = Json::Arr(found.into_iter().map(Json::str).collect());
            reply::json_for(req, &Json::obj([("nodes", nodes)]), jsonp, StatusCode::OK)
        }
        "json" => {
            let mut infos: Vec<(&str, Json<'_>)> = matches
                .iter()
                .map(|m| {
                    let mut entries = vec![
                        ("path", Json::str(m.path.as_str())),
                        ("is_leaf", Json::Bool(m.is_leaf)),
                    ];
                    if m.is_leaf {
                        let intervals = shared
                            .backend
                            .intervals(&m.path)
                            .into_iter()
                            .map(|(s, e)| {
                                Json::obj([("start", Json::Float(s)), ("end", Json::Float(e))])
                            })
                            .collect();
                        entries.push(("intervals", Json::Arr(intervals)));
                    }
                    (m.path.as_str(), Json::obj(entries))
                })
                .collect();
            infos.sort_by(|a, b| a.0.cmp(b.0));
            let list = Json::Arr(infos.into_iter().map(|(_, j)| j).collect());
            reply::json_for(req, &list, jsonp, StatusCode::OK)
        }
        "completer" => {
            let mut results: Vec<Json<'_>> = matches
                .iter()
                .map(|m| {
                    let path = if m.is_leaf { m.path.clone() } else { format!("{}.", m.path) };
                    Json::obj([
                        ("path", Json::str(path)),
                        ("name", Json::str(m.name())),
                        ("is_leaf", Json::str(if m.is_leaf { "1" } else { "0" })),
                    ])
                })
                .collect();
            if results.len() > 1 && wildcards {
                results.push(Json::obj([("name", Json::str("*"))]));
            }
            let body = Json::obj([("metrics", Json::Arr(results))]);
            reply::json_for(req, &body, jsonp, StatusCode::OK)
        }
        "msgpack" => {
            let mut out = Vec::new();
            msgpack::array(&mut out, matches.len());
            for m in &matches {
                msgpack::map(&mut out, if m.is_leaf { 3 } else { 2 });
                msgpack::str(&mut out, "path");
                msgpack::str(&mut out, &m.path);
                msgpack::str(&mut out, "is_leaf");
                msgpack::bool(&mut out, m.is_leaf);
                if m.is_leaf {
                    msgpack::str(&mut out, "intervals");
                    let intervals = shared.backend.intervals(&m.path);
                    msgpack::array(&mut out, intervals.len());
                    for (s, e) in intervals {
                        msgpack::array(&mut out, 2);
                        msgpack::float(&mut out, s);
                        msgpack::float(&mut out, e);
                    }
                }
            }
            response(StatusCode::OK, "application/x-msgpack", out)
        }
        "pickle" => {
            use carbon_proto::pickle::{Value, dumps};
            let list = matches
                .iter()
                .map(|m| {
                    let mut entries = vec![
                        (Value::str("path"), Value::str(&m.path)),
                        (Value::str("is_leaf"), Value::Bool(m.is_leaf)),
                    ];
                    if m.is_leaf {
                        let intervals = shared
                            .backend
                            .intervals(&m.path)
                            .into_iter()
                            .map(|(s, e)| Value::Tuple(vec![Value::Float(s), Value::Float(e)]))
                            .collect();
                        entries.push((Value::str("intervals"), Value::List(intervals)));
                    }
                    Value::Dict(entries)
                })
                .collect();
            response(StatusCode::OK, "application/pickle", dumps(&Value::List(list)))
        }
        _ => {
            return Ok(reply::text(
                StatusCode::BAD_REQUEST,
                "text/plain",
                "Invalid value for 'format' parameter".into(),
            ));
        }
    };
    reply::no_cache(&mut resp);
    Ok(resp)
}

/// graphite-web's `tree_json`: an optional `*` entry, then branches, then leaves, names
/// de-duplicated; ids keep the query's prefix with its wildcards.
fn tree_json<'a>(nodes: &'a [FoundNode], base_path: &str, wildcards: bool) -> Json<'a> {
    let branch = |j: &mut Vec<(&'static str, Json<'a>)>| {
        j.extend([
            ("allowChildren", Json::Int(1)),
            ("expandable", Json::Int(1)),
            ("leaf", Json::Int(0)),
        ]);
    };
    let leaf = |j: &mut Vec<(&'static str, Json<'a>)>| {
        j.extend([
            ("allowChildren", Json::Int(0)),
            ("expandable", Json::Int(0)),
            ("leaf", Json::Int(1)),
        ]);
    };
    let mut results = Vec::with_capacity(nodes.len() + 1);
    if nodes.len() > 1 && wildcards {
        let mut entry = vec![("text", Json::str("*")), ("id", Json::str(format!("{base_path}*")))];
        if nodes.iter().any(|n| !n.is_leaf) {
            branch(&mut entry);
        } else {
            leaf(&mut entry);
        }
        results.push(Json::obj(entry));
    }
    let mut seen = std::collections::HashSet::new();
    let (mut branches, mut leaves) = (Vec::new(), Vec::new());
    for node in nodes {
        let name = node.name();
        if !seen.insert(name) {
            continue;
        }
        let mut entry = vec![
            ("text", Json::str(unquote_plus(name))),
            ("id", Json::str(format!("{base_path}{name}"))),
        ];
        if node.is_leaf {
            leaf(&mut entry);
            leaves.push(Json::obj(entry));
        } else {
            branch(&mut entry);
            branches.push(Json::obj(entry));
        }
    }
    results.extend(branches);
    results.extend(leaves);
    Json::Arr(results)
}

/// `/metrics/expand`: `{"results": [sorted union]}`, or per query with `groupByExpr=1`.
pub(crate) fn expand(shared: &Shared, req: &Req) -> Response {
    let p = &req.params;
    let ints =
        ["local", "groupByExpr", "leavesOnly"].map(|k| p.get(k).map(py_int).unwrap_or(Ok(0)));
    let [_local, group_by_expr, leaves_only] = match ints {
        [Ok(a), Ok(b), Ok(c)] => [a, b, c],
        _ => {
            let e = ints.iter().find_map(|r| r.as_ref().err()).cloned().unwrap_or_default();
            return reply::server_error(&e);
        }
    };
    let jsonp = p.get("jsonp");
    let mut groups: Vec<(&str, BTreeSet<String>)> = Vec::new();
    for query in p.list("query") {
        let mut set = BTreeSet::new();
        match shared.backend.find_nodes(query) {
            Ok(nodes) => {
                for n in nodes {
                    if n.is_leaf || leaves_only == 0 {
                        set.insert(n.path);
                    }
                }
            }
            Err(e) => return reply::server_error(&e.to_string()),
        }
        match groups.iter_mut().find(|(q, _)| *q == query) {
            Some(slot) => slot.1 = set,
            None => groups.push((query, set)),
        }
    }
    let results = if group_by_expr != 0 {
        Json::obj(
            groups
                .into_iter()
                .map(|(q, set)| (q, Json::Arr(set.into_iter().map(Json::str).collect()))),
        )
    } else {
        let union: BTreeSet<String> = groups.into_iter().flat_map(|(_, s)| s).collect();
        Json::Arr(union.into_iter().map(Json::str).collect())
    };
    let mut resp = reply::json_for(req, &Json::obj([("results", results)]), jsonp, StatusCode::OK);
    reply::no_cache(&mut resp);
    resp
}

/// `/metrics/index.json`: every metric name, sorted.
pub(crate) fn index_json(shared: &Shared, req: &Req) -> Response {
    let names = shared.backend.leaf_names();
    let list = Json::Arr(names.into_iter().map(Json::str).collect());
    reply::json_for(req, &list, req.params.get("jsonp"), StatusCode::OK)
}

/// `/metrics/get-metadata`: `{metric: value}` or `{metric: {"error": ...}}` per `metric`.
pub(crate) fn get_metadata(shared: &Shared, req: &Req) -> Response {
    let key = req.params.get("key").unwrap_or("None");
    let mut results: Vec<(String, Json<'_>)> = Vec::new();
    for metric in req.params.list("metric") {
        let value = match shared.backend.get_metadata(metric, key) {
            Ok(v) => Json::str(v),
            Err(e) => Json::obj([("error", Json::str(e))]),
        };
        upsert(&mut results, metric, value);
    }
    reply::json_for(req, &Json::obj(results), req.params.get("jsonp"), StatusCode::OK)
}

fn upsert<'a>(results: &mut Vec<(String, Json<'a>)>, key: &str, value: Json<'a>) {
    match results.iter_mut().find(|(k, _)| k == key) {
        Some(slot) => slot.1 = value,
        None => results.push((key.to_string(), value)),
    }
}

/// `/metrics/set-metadata`: GET with `metric`, `key`, `value`; POST with a JSON body (when
/// the content type is `application/json`) or an `operations` form field holding a JSON list
/// of `{"metric", "key", "value"}`. Each metric's answer is `{"old_value", "new_value"}` or
/// `{"error": ...}`.
pub(crate) fn set_metadata(shared: &Shared, req: &Req) -> Response {
    let mut results: Vec<(String, Json<'_>)> = Vec::new();
    let apply = |metric: &str, key: &str, value: &str| -> Json<'static> {
        match shared.backend.set_metadata(metric, key, value) {
            Ok(old) => Json::obj([
                ("old_value", Json::str(old)),
                ("new_value", Json::str(value.to_string())),
            ]),
            Err(e) => Json::obj([("error", Json::str(e))]),
        }
    };
    if req.method == axum::http::Method::GET {
        let p = &req.params;
        let (Some(metric), Some(key), Some(value)) =
            (p.get("metric"), p.get("key"), p.get("value"))
        else {
            return reply::server_error("set-metadata needs metric, key and value");
        };
        upsert(&mut results, metric, apply(metric, key, value));
    } else if req.method == axum::http::Method::POST {
        let text: &[u8] = if req.header("content-type") == Some("application/json") {
            &req.body
        } else {
            match req.params.get("operations") {
                Some(ops) => ops.as_bytes(),
                None => return reply::server_error("set-metadata: no operations given"),
            }
        };
        let ops: serde_json::Value = match serde_json::from_slice(text) {
            Ok(v) => v,
            Err(e) => return reply::server_error(&format!("set-metadata: invalid JSON: {e}")),
        };
        for op in ops.as_array().map(Vec::as_slice).unwrap_or(&[]) {
            let field = |k: &str| op.get(k).and_then(serde_json::Value::as_str);
            match (field("metric"), field("key"), field("value")) {
                (Some(m), Some(k), Some(v)) => upsert(&mut results, m, apply(m, k, v)),
                (Some(m), _, _) => upsert(
                    &mut results,
                    m,
                    Json::obj([(
                        "error",
                        Json::str(format!(
                            "Unexpected error occurred in bulk CarbonLink.set_metadata({m})"
                        )),
                    )]),
                ),
                _ => {}
            }
        }
    } else {
        return reply::json_for(
            req,
            &Json::obj([("error", Json::str("Invalid request method"))]),
            None,
            StatusCode::OK,
        );
    }
    reply::json_for(req, &Json::obj(results), None, StatusCode::OK)
}
