//! `/render` (graphite-web's `renderView` and `parseOptions`, graphite-reference §3.3).

use std::collections::BTreeMap;
use std::time::Instant;

use axum::http::StatusCode;
use axum::response::Response;

use super::params::{py_float, py_int};
use super::{Req, Shared, reply, response};
use crate::error::Error;
use crate::eval::{Context, Limits, UsageCell};
use crate::expr::Expr;
use crate::format::{self, Format, jsonp_wrap};
use crate::series::Series;
use crate::time::TimeZone;

/// graphite-web's `DEFAULT_CACHE_DURATION`.
const DEFAULT_CACHE_SECONDS: i64 = 60;

/// What `parseOptions` reads from a render request.
#[derive(Debug)]
pub(crate) struct RenderOptions {
    pub(crate) targets: Vec<String>,
    pub(crate) templates: BTreeMap<String, String>,
    pub(crate) graph_type_pie: bool,
    pub(crate) format: Format,
    pub(crate) jsonp: Option<String>,
    pub(crate) pretty: bool,
    pub(crate) no_cache: bool,
    pub(crate) cache_timeout: i64,
    pub(crate) max_data_points: Option<u64>,
    pub(crate) no_null_points: bool,
    pub(crate) tz: TimeZone,
    pub(crate) from: i64,
    pub(crate) until: i64,
    pub(crate) now: i64,
    pub(crate) x_files_factor: f64,
}

/// The current time in whole epoch seconds.
pub(crate) fn now_epoch() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The request's `tz`: a known zone name, else graphite-web's default (UTC); an unknown
/// name is ignored, as pytz's `UnknownTimeZoneError` is.
pub(crate) fn request_zone(name: Option<&str>) -> TimeZone {
    name.and_then(TimeZone::named).unwrap_or_else(TimeZone::utc)
}

/// `parseOptions`: every parameter graphite-web reads, with its errors (the message inside
/// `Invalid parameters (...)`).
pub(crate) fn parse_options(req: &Req, current: i64) -> Result<RenderOptions, String> {
    let p = &req.params;
    let graph_type = p.get("graphType").unwrap_or("line");
    if graph_type != "line" && graph_type != "pie" {
        return Err(format!(
            "Invalid graphType {}, must be one of ['line', 'pie']",
            super::params::py_repr(graph_type)
        ));
    }
    let mut cache_timeout = match p.get("cacheTimeout") {
        Some(t) => py_int(t)?,
        None => DEFAULT_CACHE_SECONDS,
    };
    let targets: Vec<String> = p.list_or_brackets("target").into_iter().map(String::from).collect();
    let mut templates = BTreeMap::new();
    for (key, value) in p.items() {
        if let Some(rest) = key.strip_prefix("template[") {
            // Python's key[9:-1]: drop the last character whatever it is.
            let mut name = rest.to_string();
            name.pop();
            templates.insert(name, value.to_string());
        }
    }
    let mut format_name: Option<&str> = None;
    let mut jsonp = None;
    if p.has("pickle") {
        format_name = Some("pickle");
    }
    if p.has("rawData") {
        format_name = Some("raw");
    }
    if p.has("format") {
        format_name = p.get("format");
        jsonp = p.get("jsonp").map(String::from);
    }
    let format = Format::parse(format_name);
    let pretty = p.truthy("pretty");
    let mut no_cache = p.has("noCache");
    let max_data_points = p
        .get("maxDataPoints")
        .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
        .map(|v| v.parse::<u64>().unwrap_or(u64::MAX));
    let no_null_points = p.has("noNullPoints");
    let tz = request_zone(p.get("tz"));
    let now = match p.get("now") {
        Some(spec) => crate::time::parse_at_time(spec, &tz, current).map_err(|e| e.to_string())?,
        None => current,
    };
    let until = match p.get("until") {
        Some(spec) => crate::time::parse_at_time(spec, &tz, now).map_err(|e| e.to_string())?,
        None => now,
    };
    let from = match p.get("from") {
        Some(spec) => crate::time::parse_at_time(spec, &tz, now).map_err(|e| e.to_string())?,
        None => crate::time::parse_at_time("-1d", &tz, now).map_err(|e| e.to_string())?,
    };
    let (from, until) = (from.min(until), from.max(until));
    if from == until {
        return Err("Invalid empty time range".into());
    }
    if cache_timeout == 0 {
        no_cache = true;
    }
    if no_cache {
        cache_timeout = 0;
    }
    let x_files_factor = match p.get("xFilesFactor") {
        Some(x) => py_float(x)?,
        None => 0.0,
    };
    Ok(RenderOptions {
        targets,
        templates,
        graph_type_pie: graph_type == "pie",
        format,
        jsonp,
        pretty,
        no_cache,
        cache_timeout,
        max_data_points,
        no_null_points,
        tz,
        from,
        until,
        now,
        x_files_factor,
    })
}

/// The `/render` view.
pub(crate) fn render(shared: &Shared, req: &Req, deadline: Instant) -> Response {
    let started = Instant::now();
    let options = match parse_options(req, now_epoch()) {
        Ok(o) => o,
        Err(msg) => return reply::invalid_parameters(&msg, &[]),
    };
    if let Format::Image(image) = options.format {
        let what = if options.graph_type_pie { "pie graph" } else { image.name() };
        return reply::text(
            StatusCode::NOT_IMPLEMENTED,
            "text/plain; charset=utf-8",
            format!(
                "image rendering is not implemented yet ({what} requested); use format=json, csv, raw, pickle, msgpack, dygraph or rickshaw"
            ),
        );
    }
    if options.graph_type_pie {
        return reply::text(
            StatusCode::NOT_IMPLEMENTED,
            "text/plain; charset=utf-8",
            "image rendering is not implemented yet (pie graph requested); pie graphs are images in graphite-web whatever the format".into(),
        );
    }
    let targets: Vec<&str> = options.targets.iter().map(String::as_str).collect();
    let series = match evaluate(shared, &options, deadline) {
        Ok(s) => s,
        Err(e) => return eval_error(&e, &targets, shared),
    };
    let evaluated = started.elapsed();
    let mut response = write_format(series, &options);
    if response.status() == StatusCode::OK {
        reply::cache_headers(
            response.headers_mut(),
            (!options.no_cache).then_some(options.cache_timeout),
        );
    }
    tracing::debug!(
        targets = ?targets,
        eval_us = evaluated.as_micros() as u64,
        total_us = started.elapsed().as_micros() as u64,
        "render"
    );
    response
}

/// Parses every target first (graphite-web extracts the path expressions of all targets
/// before evaluating any), then evaluates them in order.
pub(crate) fn evaluate(
    shared: &Shared,
    options: &RenderOptions,
    deadline: Instant,
) -> Result<Vec<Series>, Error> {
    let mut exprs: Vec<Expr> = Vec::with_capacity(options.targets.len());
    for target in &options.targets {
        if target.trim().is_empty() {
            continue;
        }
        let expr = crate::parse::parse(target)?;
        exprs.push(expr.apply_templates(&options.templates));
    }
    let limits = Limits {
        max_series: shared.config.max_series,
        max_points: shared.config.max_points,
        deadline: Some(deadline),
    };
    let usage = UsageCell::default();
    let source: &dyn crate::eval::DataSource = &*shared.backend;
    let mut ctx = Context::new(source, &limits, &usage, options.from, options.until, options.now);
    ctx.x_files_factor = options.x_files_factor;
    ctx.tz = options.tz.clone();
    ctx.events = Some(&*shared.events);
    let mut out = Vec::new();
    for expr in &exprs {
        out.extend(ctx.eval_series(expr)?);
    }
    Ok(out)
}

/// The answer for an evaluation error: 400 `Invalid parameters (...)` with the targets for
/// input errors, 422 for a limit, 503 for the time limit, 500 otherwise.
fn eval_error(e: &Error, targets: &[&str], shared: &Shared) -> Response {
    match e.status() {
        400 => reply::invalid_parameters(&e.to_string(), targets),
        422 => reply::text(
            StatusCode::UNPROCESSABLE_ENTITY,
            "text/plain; charset=utf-8",
            format!("{e}; targets: \"{}\"", targets.join(", ")),
        ),
        503 => reply::timeout(shared.config.request_timeout),
        _ => {
            tracing::warn!(error = %e, targets = ?targets, "render failed");
            reply::server_error(&e.to_string())
        }
    }
}

/// Serialises the series in the requested format into one buffer.
fn write_format(mut series: Vec<Series>, options: &RenderOptions) -> Response {
    let mut body =
        Vec::with_capacity(64 + series.iter().map(|s| s.values.len() * 24).sum::<usize>());
    let jsonp = options.jsonp.as_deref().filter(|cb| !cb.is_empty());
    match options.format {
        Format::Json => {
            if let Some(max) = options.max_data_points
                && !series.is_empty()
            {
                format::apply_max_data_points(&mut series, max);
            }
            format::write_json(&mut body, &series, options.pretty, options.no_null_points);
        }
        Format::Csv => {
            let tz = options.tz.clone();
            format::write_csv(&mut body, &series, &|ts| tz.offset_seconds(ts));
        }
        Format::Raw => format::write_raw(&mut body, &series),
        Format::Pickle => format::write_pickle(&mut body, &series),
        Format::Msgpack => format::write_msgpack(&mut body, &series),
        Format::Dygraph => {
            if let Err(msg) = format::write_dygraph(&mut body, &series) {
                return reply::server_error(&msg);
            }
        }
        Format::Rickshaw => format::write_rickshaw(&mut body, &series, options.pretty),
        Format::Image(_) => {}
    }
    let json_like = matches!(options.format, Format::Json | Format::Dygraph | Format::Rickshaw);
    match jsonp {
        Some(cb) if json_like => response(StatusCode::OK, "text/javascript", jsonp_wrap(cb, &body)),
        _ => response(StatusCode::OK, options.format.content_type(), body),
    }
}
