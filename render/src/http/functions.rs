//! `/functions` and `/functions/<name>` (graphite-reference §3.6): the function catalogue
//! Grafana's editor reads, built from the registry ([`crate::function::all`]).

use std::borrow::Cow;

use axum::http::{Method, StatusCode};
use axum::response::Response;

use super::{Req, reply};
use crate::format::Json;
use crate::function::{self, Default, FunctionDef, Param};

/// graphite-web's module name, which `/functions` reports for every function.
const MODULE: &str = "graphite.render.functions";

fn default_json(d: Default) -> Option<Json<'static>> {
    Some(match d {
        Default::Bool(b) => Json::Bool(b),
        Default::Int(i) => Json::Int(i),
        // Valid JSON instead of graphite-web's `Infinity` (see the module docs of `http`).
        Default::Float(f) if f == f64::INFINITY => Json::Raw(Cow::Borrowed("1e9999")),
        Default::Float(f) if f == f64::NEG_INFINITY => Json::Raw(Cow::Borrowed("-1e9999")),
        Default::Float(f) => Json::Float(f),
        Default::Str(s) => Json::str(s),
        Default::None => return None,
    })
}

/// An option or suggestion as graphite-web lists it: the registry keeps them as text, but
/// graphite-web's are Python values, so an integer (`5`), `True`, `False` and `None` are
/// written as JSON numbers, booleans and null (no graphite-web option or suggestion is a
/// string of digits or one of those words).
fn choice_json(text: &'static str) -> Json<'static> {
    match text {
        "True" => Json::Bool(true),
        "False" => Json::Bool(false),
        "None" => Json::Null,
        _ => match text.parse::<i64>() {
            Ok(i) if !text.starts_with('+') => Json::Int(i),
            _ => Json::str(text),
        },
    }
}

fn param_json(p: &Param) -> Json<'static> {
    let mut entries: Vec<(&str, Json<'static>)> =
        vec![("name", Json::str(p.name)), ("type", Json::str(p.ty.name()))];
    if p.required {
        entries.push(("required", Json::Bool(true)));
    }
    if let Some(d) = p.default.and_then(default_json) {
        entries.push(("default", d));
    }
    if p.multiple {
        entries.push(("multiple", Json::Bool(true)));
    }
    if !p.options.is_empty() {
        entries.push(("options", Json::Arr(p.options.iter().map(|o| choice_json(o)).collect())));
    }
    if !p.suggestions.is_empty() {
        let s = p.suggestions.iter().map(|o| choice_json(o)).collect();
        entries.push(("suggestions", Json::Arr(s)));
    }
    Json::obj(entries)
}

/// A function's `info` object.
fn info(def: &FunctionDef) -> Json<'static> {
    Json::obj([
        ("name", Json::str(def.name)),
        ("function", Json::str(def.signature())),
        ("description", Json::str(def.description)),
        ("module", Json::str(MODULE)),
        ("group", Json::str(def.group)),
        ("params", Json::Arr(def.params.iter().map(param_json).collect())),
    ])
}

/// `GET /functions`: `{name: info}`, or `{group: {name: info}}` with `grouped=1|true`;
/// `group=<Group>` filters; `type=pie` lists the pie functions.
pub(crate) fn list(req: &Req) -> Response {
    if req.method != Method::GET {
        return reply::empty(StatusCode::METHOD_NOT_ALLOWED);
    }
    let p = &req.params;
    let grouped = p.get("grouped").is_some_and(|g| {
        let g = g.to_lowercase();
        g == "1" || g == "true"
    });
    let group_filter = p.get("group");
    let infos: Vec<(&'static str, &'static str, Json<'static>)> = if p.get("type") == Some("pie") {
        function::pie_functions().iter().map(|def| (def.name, def.group, info(def))).collect()
    } else {
        function::all().map(|def| (def.name, def.group, info(def))).collect()
    };
    let mut result: Vec<(Cow<'static, str>, Json<'static>)> = Vec::new();
    for (name, group, info) in infos {
        if group_filter.is_some_and(|g| g != group) {
            continue;
        }
        if grouped {
            let at = match result.iter().position(|(g, _)| g == group) {
                Some(i) => i,
                None => {
                    result.push((Cow::Borrowed(group), Json::Obj(Vec::new())));
                    result.len() - 1
                }
            };
            if let Some((_, Json::Obj(members))) = result.get_mut(at) {
                members.push((Cow::Borrowed(name), info));
            }
        } else {
            result.push((Cow::Borrowed(name), info));
        }
    }
    reply::json_view(req, &Json::Obj(result), StatusCode::OK)
}

/// `GET /functions/<name>`: one function's info, or 404 `{"error": "Function not found: x"}`.
pub(crate) fn details(req: &Req, name: &str) -> Response {
    if req.method != Method::GET {
        return reply::empty(StatusCode::METHOD_NOT_ALLOWED);
    }
    let found = if req.params.get("type") == Some("pie") {
        function::pie_functions().iter().find(|def| def.name == name).map(info)
    } else {
        function::lookup(name).map(info)
    };
    match found {
        Some(info) => reply::json_view(req, &info, StatusCode::OK),
        None => {
            reply::json_error(req, &format!("Function not found: {name}"), StatusCode::NOT_FOUND)
        }
    }
}
