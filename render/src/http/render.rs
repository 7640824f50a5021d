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
use crate::format::{self, Format, ImageFormat, jsonp_wrap};
use crate::functions::pie::{PieMode, pie_value};
use crate::image::{self, GraphOptions};
use crate::series::Series;
use crate::time::TimeZone;

/// graphite-web's `DEFAULT_CACHE_DURATION`.
const DEFAULT_CACHE_SECONDS: i64 = 60;

/// What `parseOptions` reads from a render request.
#[derive(Debug)]
pub(crate) struct RenderOptions {
    pub(crate) targets: Vec<String>,
    /// `local=1`: read this node only, not its cluster peers (graphite-web's `localOnly`).
    pub(crate) local_only: bool,
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
        local_only: p.get("local") == Some("1"),
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
    if options.graph_type_pie || matches!(options.format, Format::Image(_)) {
        return render_image(shared, req, &options, deadline);
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
    let targets: Vec<&str> = options.targets.iter().map(String::as_str).collect();
    Ok(evaluate_each(shared, options, &targets, deadline)?.into_iter().flatten().collect())
}

/// [`evaluate`] keeping each target's series apart (pie graphs reduce each target's
/// series on their own); blank targets give nothing.
fn evaluate_each(
    shared: &Shared,
    options: &RenderOptions,
    targets: &[&str],
    deadline: Instant,
) -> Result<Vec<Vec<Series>>, Error> {
    let mut exprs: Vec<Expr> = Vec::with_capacity(targets.len());
    for target in targets {
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
    let source: &dyn crate::eval::DataSource = shared.backend_for(options.local_only);
    let mut ctx = Context::new(source, &limits, &usage, options.from, options.until, options.now);
    ctx.x_files_factor = options.x_files_factor;
    ctx.tz = options.tz.clone();
    ctx.events = Some(&*shared.events);
    let mut out = Vec::with_capacity(exprs.len());
    for expr in &exprs {
        out.push(ctx.eval_series(expr)?);
    }
    Ok(out)
}

/// An image answer (`format=png`, the default, `svg`, `pdf`, and every `graphType=pie`):
/// graphite-web's `renderViewGraph` over the evaluated series, or over the pie slices.
fn render_image(
    shared: &Shared,
    req: &Req,
    options: &RenderOptions,
    deadline: Instant,
) -> Response {
    let requested = match options.format {
        Format::Image(f) => f,
        _ => ImageFormat::Png,
    };
    let graph = GraphOptions::from_params(&req.params, options.graph_type_pie);
    let targets: Vec<&str> = options.targets.iter().map(String::as_str).collect();
    let drawn = if options.graph_type_pie {
        pie_slices(shared, req, options, deadline)
            .and_then(|slices| image::render_pie(slices, &graph, requested))
    } else {
        evaluate(shared, options, deadline)
            .and_then(|series| image::render_line(series, &graph, &options.tz, requested))
    };
    let body = match drawn {
        Ok(body) => body,
        Err(e) => return eval_error(&e, &targets, shared),
    };
    let format = image::output_format(&graph, requested);
    let jsonp = options.jsonp.as_deref().filter(|cb| !cb.is_empty());
    let mut response = match (format, jsonp) {
        (ImageFormat::Svg, Some(cb)) => {
            // graphite-web means `cb("<svg...>")`: the document as a JSON string.
            let mut json = Vec::with_capacity(body.len() + 64);
            format::write_json_string(&mut json, &String::from_utf8_lossy(&body), true);
            response(StatusCode::OK, "text/javascript", jsonp_wrap(cb, &json))
        }
        _ => response(StatusCode::OK, Format::Image(format).content_type(), body),
    };
    reply::cache_headers(
        response.headers_mut(),
        (!options.no_cache).then_some(options.cache_timeout),
    );
    response
}

/// The pie graph's slices: a target `name:value` is a slice as given, any other target
/// gives one slice per series, reduced by `pieMode` (default `average`; no value is 0).
fn pie_slices(
    shared: &Shared,
    req: &Req,
    options: &RenderOptions,
    deadline: Instant,
) -> Result<Vec<(String, f64)>, Error> {
    let mode = req.params.get("pieMode").unwrap_or("average");
    let computed: Vec<&str> =
        options.targets.iter().map(String::as_str).filter(|t| !t.contains(':')).collect();
    let mut evaluated = evaluate_each(shared, options, &computed, deadline)?.into_iter();
    let mut slices = Vec::new();
    for target in &options.targets {
        if let Some((name, value)) = target.split_once(':') {
            let value = py_float(value)
                .map_err(|_| Error::Evaluation(format!("Invalid target '{target}'")))?;
            slices.push((name.to_string(), value));
        } else if !target.trim().is_empty() {
            let pie = PieMode::parse(mode)
                .ok_or_else(|| Error::Evaluation(format!("Function \"{mode}\" not found")))?;
            for series in evaluated.next().unwrap_or_default() {
                slices.push((series.name.clone(), pie_value(pie, &series).unwrap_or(0.0)));
            }
        }
    }
    Ok(slices)
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
        Vec::with_capacity(64 + series.iter().map(|s| s.values.len() * 40).sum::<usize>());
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
