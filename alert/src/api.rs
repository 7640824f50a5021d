//! The status page and the JSON API, as an axum [`Router`] (mounted at `/` by the
//! standalone binary and under `/alerts/` by the server).
//!
//! | method and path | answer |
//! | --- | --- |
//! | `GET /` | the status page: plain HTML, no scripts or external resources |
//! | `GET /api/alerts` | `[{rule, fingerprint, labels, annotations, status, severity, value, since, starts_at, last_eval, detail, silenced_by: [id], inhibited_by: [fingerprint], muted_by: [time interval], ack: {by, comment, at, expires_at, ...} \| null, groups: [group_key]}]` |
//! | `GET /api/rules` | `[{name, kind, subject, every, for_seconds, condition, last_eval, last_duration_ms, last_error, counts, generator_url, notify}]` |
//! | `GET /api/history?limit=N` | `[{at, rule, labels, from, to, severity, value}]`, newest first (N ≤ 1000, default 100) |
//! | `GET /api/silences` | `[{id, matchers: [{name, op, value}], starts_at, ends_at, created_by, comment, updated_at, state}]` |
//! | `POST /api/silences` | body `{matchers, starts_at?, ends_at \| duration, created_by, comment}`; answers the silence |
//! | `DELETE /api/silences/{id}` | expires it; answers the silence, 404 if unknown |
//! | `POST /api/ack` | body `{fingerprint \| group_key, by, comment?, expires_in?}`; answers the ack |
//! | `GET /api/receivers` | delivery counters per receiver and the last notifications |
//! | `GET /api/metrics` | the self-metrics: `{at, rounds, rule_evaluations, evaluation_errors, round_duration_ms_total, last_round_duration_ms, rules, instances: {status: n}, reloads, reload_failures, last_reload_at, last_reload_error, receivers: {name: {sent, failed_attempts, retries, given_up, dropped, queued}}}` |
//! | `POST /api/eval` | body: a rule as in the rules file (`{"target": "...", "reduce": "avg", "op": ">", "crit": 90}`, or `{"rule": {...}}`); evaluates it once now without storing or notifying: `{rule, at, condition, error, generator_url, instances: [{labels, status, severity, value, ...}]}`, 400 for an invalid rule |
//! | `POST /-/reload` | re-reads the rules file (Prometheus' convention): 200 with `{rules, kept, added, changed, removed}`, or 400 with the error (the old rules stay) |
//! | `GET /healthz` | `ok` while the engine's rounds run |
//!
//! Matchers are given as objects (`{"name": "host", "op": "=~", "value": "web.*"}`) or as
//! text (`"host=~web.*"`); times as Unix seconds or RFC 3339 text; durations as `"2h"`.
//! Errors are `{"error": "..."}` with status 400 (bad request), 404 or 413 (body over
//! 64 KiB). Times in answers are Unix seconds.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde::{Deserialize, Serialize};

use crate::ack::AckTarget;
use crate::dispatcher::{AckRequest, Dispatcher, Marks, ReceiverStatus, SentRecord};
use crate::engine::{EvalReport, ReloadReport};
use crate::metrics::{EngineMetrics, MetricsSnapshot};
use crate::model::{Labels, Severity, Status};
use crate::notify::HumanDuration;
use crate::silence::{Matcher, NewSilence, Silence, SilenceState};

/// One alert instance as the engine reports it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlertRow {
    /// The rule.
    pub rule: String,
    /// The labels' fingerprint.
    pub fingerprint: String,
    /// Identity.
    pub labels: Labels,
    /// Rendered annotations.
    pub annotations: Labels,
    /// Where it is.
    pub status: Status,
    /// Its severity while firing (or the prospective one while pending).
    pub severity: Option<Severity>,
    /// The last judged value.
    pub value: Option<f64>,
    /// When it entered its status (Unix seconds).
    pub since: i64,
    /// When it fired, if active.
    pub starts_at: Option<i64>,
    /// When it was last judged.
    pub last_eval: i64,
    /// An error or check detail.
    pub detail: Option<String>,
}

/// One rule as the engine reports it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RuleRow {
    /// Name.
    pub name: String,
    /// `graphite`, `freshness`, `http`, `tcp`.
    pub kind: String,
    /// The target, URL or address.
    pub subject: String,
    /// Seconds between evaluations.
    pub every: i64,
    /// The pending period in seconds.
    pub for_seconds: i64,
    /// The condition in words.
    pub condition: String,
    /// The last evaluation (Unix seconds).
    pub last_eval: Option<i64>,
    /// How long it took.
    pub last_duration_ms: f64,
    /// Why it failed, if it did.
    pub last_error: Option<String>,
    /// Instances by status name.
    pub counts: BTreeMap<String, usize>,
    /// A render link to the target (empty for checks).
    pub generator_url: String,
    /// Its receivers.
    pub notify: Vec<String>,
}

/// One state change of one instance: the state file's record, as the API shows it.
pub type TransitionRow = crate::state::Transition;

/// The last evaluation round: the engine's timing, as the API shows it.
pub type RoundRow = crate::engine::RoundStats;

/// What the page and API read from the engine. Implementations answer from a copy made
/// after each round, so a request never waits for an evaluation.
pub trait StatusSource: Send + Sync {
    /// Every tracked instance.
    fn alerts(&self) -> Vec<AlertRow>;
    /// Every rule.
    fn rules(&self) -> Vec<RuleRow>;
    /// The newest `limit` transitions, newest first.
    fn history(&self, limit: usize) -> Vec<TransitionRow>;
    /// The last round, if one ran.
    fn last_round(&self) -> Option<RoundRow>;
    /// Whether the engine is healthy (its rounds run); the text says why not.
    fn health(&self) -> Result<(), String> {
        Ok(())
    }
    /// The engine's self-metrics (none by default).
    fn metrics(&self) -> EngineMetrics {
        EngineMetrics::default()
    }
}

/// What `POST /-/reload` calls: re-reads the rules file and puts it in force.
pub trait Reload: Send + Sync {
    /// Reloads.
    ///
    /// # Errors
    ///
    /// The file is unreadable or invalid; the old rules stay in force.
    fn reload(&self) -> crate::Result<ReloadReport>;
}

/// What `POST /api/eval` calls: evaluates one rule now, storing and notifying nothing.
pub trait Evaluate: Send + Sync {
    /// Resolves `rule` (a `[[rule]]` table) against the rules file's defaults and evaluates
    /// it once at `now` through the engine's own path ([`crate::engine::evaluate_once`]).
    ///
    /// # Errors
    ///
    /// The rule is invalid ([`crate::Error::Rules`], without a line).
    fn evaluate(&self, rule: toml::Table, now: i64) -> crate::Result<EvalReport>;
}

/// A clock giving Unix seconds (injectable for tests).
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// What the handlers share.
#[derive(Clone)]
pub struct ApiState {
    /// The engine's side.
    pub source: Arc<dyn StatusSource>,
    /// The notifier's side.
    pub dispatcher: Arc<Dispatcher>,
    /// The time.
    pub clock: Clock,
    /// What `POST /-/reload` calls (`None`: it answers 404).
    pub reload: Option<Arc<dyn Reload>>,
    /// What `POST /api/eval` calls (`None`: it answers 404).
    pub eval: Option<Arc<dyn Evaluate>>,
}

/// Request bodies above this are refused (413).
const MAX_BODY_BYTES: usize = 64 * 1024;

/// Transitions shown on the page and the API's default.
const HISTORY_DEFAULT: usize = 100;

/// The most transitions one request gets.
const HISTORY_MAX: usize = 1000;

/// The status page and API over `state`.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/api/alerts", get(alerts))
        .route("/api/rules", get(rules))
        .route("/api/history", get(history))
        .route("/api/silences", get(silences).post(add_silence))
        .route("/api/silences/{id}", delete(expire_silence))
        .route("/api/ack", post(ack))
        .route("/api/receivers", get(receivers))
        .route("/api/metrics", get(metrics))
        .route("/api/eval", post(eval))
        .route("/-/reload", post(reload))
        .route("/healthz", get(healthz))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

fn json<T: Serialize>(status: StatusCode, value: &T) -> Response {
    let body = serde_json::to_vec(value).unwrap_or_else(|_| b"null".to_vec());
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn error(status: StatusCode, message: impl std::fmt::Display) -> Response {
    json(status, &serde_json::json!({ "error": message.to_string() }))
}

/// An alert with the notifier's marks.
#[derive(Serialize)]
struct AlertOut {
    #[serde(flatten)]
    row: AlertRow,
    #[serde(flatten)]
    marks: Marks,
}

fn marked(state: &ApiState, now: i64) -> Vec<AlertOut> {
    state
        .source
        .alerts()
        .into_iter()
        .map(|row| {
            let marks = state.dispatcher.marks(&row.labels, row.severity, now);
            AlertOut { row, marks }
        })
        .collect()
}

async fn alerts(State(state): State<ApiState>) -> Response {
    json(StatusCode::OK, &marked(&state, (state.clock)()))
}

async fn rules(State(state): State<ApiState>) -> Response {
    json(StatusCode::OK, &state.source.rules())
}

async fn history(State(state): State<ApiState>, uri: Uri) -> Response {
    let mut limit = HISTORY_DEFAULT;
    for (k, v) in form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()) {
        if k == "limit" {
            match v.parse::<usize>() {
                Ok(n) => limit = n.min(HISTORY_MAX),
                Err(_) => {
                    return error(StatusCode::BAD_REQUEST, format!("limit {v:?} is not a count"));
                }
            }
        }
    }
    json(StatusCode::OK, &state.source.history(limit))
}

#[derive(Serialize)]
struct SilenceOut {
    #[serde(flatten)]
    silence: Silence,
    state: SilenceState,
}

fn silence_out(s: Silence, now: i64) -> SilenceOut {
    let state = s.state(now);
    SilenceOut { silence: s, state }
}

async fn silences(State(state): State<ApiState>) -> Response {
    let now = (state.clock)();
    let list: Vec<SilenceOut> =
        state.dispatcher.silences().into_iter().map(|s| silence_out(s, now)).collect();
    json(StatusCode::OK, &list)
}

/// A time in a request: Unix seconds or RFC 3339.
#[derive(Deserialize)]
#[serde(untagged)]
enum TimeIn {
    Unix(i64),
    Text(String),
}

impl TimeIn {
    fn seconds(&self, field: &str) -> Result<i64, String> {
        match self {
            TimeIn::Unix(s) => Ok(*s),
            TimeIn::Text(t) => t
                .parse::<jiff::Timestamp>()
                .map(|ts| ts.as_second())
                .map_err(|e| format!("{field} {t:?}: {e}")),
        }
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum MatcherIn {
    Text(String),
    Object(Matcher),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SilenceIn {
    matchers: Vec<MatcherIn>,
    #[serde(default)]
    starts_at: Option<TimeIn>,
    #[serde(default)]
    ends_at: Option<TimeIn>,
    #[serde(default)]
    duration: Option<HumanDuration>,
    #[serde(default)]
    created_by: String,
    #[serde(default)]
    comment: String,
}

fn parse_silence(body: &[u8], now: i64) -> Result<NewSilence, String> {
    let input: SilenceIn = serde_json::from_slice(body).map_err(|e| format!("silence: {e}"))?;
    let mut matchers = Vec::new();
    for m in input.matchers {
        matchers.push(match m {
            MatcherIn::Object(m) => m,
            MatcherIn::Text(t) => Matcher::parse(&t).map_err(|e| e.to_string())?,
        });
    }
    let starts_at = input.starts_at.map(|t| t.seconds("starts_at")).transpose()?;
    let ends_at = match (input.ends_at, input.duration) {
        (Some(t), None) => t.seconds("ends_at")?,
        (None, Some(d)) => starts_at.unwrap_or(now).saturating_add(d.as_secs_ceil()),
        _ => return Err("silence: give `ends_at` or `duration` (one of them)".into()),
    };
    Ok(NewSilence {
        matchers,
        starts_at,
        ends_at,
        created_by: input.created_by,
        comment: input.comment,
    })
}

async fn add_silence(State(state): State<ApiState>, body: Bytes) -> Response {
    let now = (state.clock)();
    let new = match parse_silence(&body, now) {
        Ok(s) => s,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    match state.dispatcher.add_silence(new, now) {
        Ok(s) => {
            tracing::info!(id = s.id, by = s.created_by, "silence added");
            json(StatusCode::OK, &silence_out(s, now))
        }
        Err(e) => error(StatusCode::BAD_REQUEST, e),
    }
}

async fn expire_silence(State(state): State<ApiState>, Path(id): Path<String>) -> Response {
    let now = (state.clock)();
    match state.dispatcher.expire_silence(&id, now) {
        Some(s) => json(StatusCode::OK, &silence_out(s, now)),
        None => error(StatusCode::NOT_FOUND, format!("no silence {id:?}")),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AckIn {
    #[serde(default)]
    fingerprint: Option<String>,
    #[serde(default)]
    group_key: Option<String>,
    #[serde(default)]
    by: String,
    #[serde(default)]
    comment: String,
    #[serde(default)]
    expires_in: Option<HumanDuration>,
}

async fn ack(State(state): State<ApiState>, body: Bytes) -> Response {
    let input: AckIn = match serde_json::from_slice(&body) {
        Ok(a) => a,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("ack: {e}")),
    };
    let target = match (input.fingerprint, input.group_key) {
        (Some(fp), None) => AckTarget::Fingerprint(fp),
        (None, Some(key)) => AckTarget::GroupKey(key),
        _ => return error(StatusCode::BAD_REQUEST, "ack: give `fingerprint` or `group_key`"),
    };
    let request =
        AckRequest { target, by: input.by, comment: input.comment, expires_in: input.expires_in };
    match state.dispatcher.ack(request, (state.clock)()) {
        Ok(a) => {
            tracing::info!(by = a.by, target = ?a.target, "acknowledged");
            json(StatusCode::OK, &a)
        }
        Err(e) => error(StatusCode::NOT_FOUND, e),
    }
}

#[derive(Serialize)]
struct ReceiversOut {
    receivers: Vec<ReceiverStatus>,
    recent: Vec<SentRecord>,
    dropped_alerts: u64,
}

async fn receivers(State(state): State<ApiState>) -> Response {
    json(
        StatusCode::OK,
        &ReceiversOut {
            receivers: state.dispatcher.receivers(),
            recent: state.dispatcher.recent(),
            dropped_alerts: state.dispatcher.dropped_alerts(),
        },
    )
}

async fn metrics(State(state): State<ApiState>) -> Response {
    let now = (state.clock)();
    let snapshot = MetricsSnapshot::new(now, state.source.metrics(), &state.dispatcher.receivers());
    json(StatusCode::OK, &snapshot)
}

/// JSON into TOML, for a rule given in JSON: `null` has no TOML form and is refused.
fn toml_of(v: serde_json::Value, key: &str) -> Result<toml::Value, String> {
    use serde_json::Value as J;
    Ok(match v {
        J::Null => return Err(format!("`{key}`: null is not a value a rule takes; leave it out")),
        J::Bool(b) => toml::Value::Boolean(b),
        J::Number(n) => match n.as_i64() {
            Some(i) => toml::Value::Integer(i),
            None => toml::Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        J::String(s) => toml::Value::String(s),
        J::Array(a) => toml::Value::Array(
            a.into_iter().map(|v| toml_of(v, key)).collect::<Result<Vec<_>, String>>()?,
        ),
        J::Object(o) => toml::Value::Table(
            o.into_iter()
                .map(|(k, v)| toml_of(v, &k).map(|v| (k, v)))
                .collect::<Result<toml::Table, String>>()?,
        ),
    })
}

/// The rule of an eval request: the body's object itself, or its `rule` object; `reducer`
/// is taken for `reduce`.
fn parse_eval(body: &[u8]) -> Result<toml::Table, String> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))?;
    let serde_json::Value::Object(mut object) = value else {
        return Err("the body must be a JSON object: a rule, or {\"rule\": {...}}".into());
    };
    if object.len() == 1
        && let Some(serde_json::Value::Object(inner)) = object.get("rule")
    {
        object = inner.clone();
    }
    if let Some(reducer) = object.remove("reducer") {
        if object.contains_key("reduce") {
            return Err("give `reduce` or `reducer`, not both".into());
        }
        object.insert("reduce".into(), reducer);
    }
    match toml_of(serde_json::Value::Object(object), "rule")? {
        toml::Value::Table(t) => Ok(t),
        _ => Err("the body must be a JSON object".into()),
    }
}

async fn eval(State(state): State<ApiState>, body: Bytes) -> Response {
    let Some(evaluator) = state.eval.clone() else {
        return error(StatusCode::NOT_FOUND, "evaluation is not available here");
    };
    let rule = match parse_eval(&body) {
        Ok(rule) => rule,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let now = (state.clock)();
    // The query (or check) may take up to the rule's timeout: off the I/O threads.
    match tokio::task::spawn_blocking(move || evaluator.evaluate(rule, now)).await {
        Ok(Ok(report)) => json(StatusCode::OK, &report),
        Ok(Err(e)) => error(StatusCode::BAD_REQUEST, e),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, format!("the evaluation failed: {e}")),
    }
}

async fn reload(State(state): State<ApiState>) -> Response {
    let Some(reload) = state.reload.clone() else {
        return error(StatusCode::NOT_FOUND, "reloading is not available here");
    };
    // A reload waits for a round under way to finish: off the I/O threads.
    match tokio::task::spawn_blocking(move || reload.reload()).await {
        Ok(Ok(report)) => json(StatusCode::OK, &report),
        Ok(Err(e)) => error(StatusCode::BAD_REQUEST, e),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, format!("the reload failed: {e}")),
    }
}

async fn healthz(State(state): State<ApiState>) -> Response {
    match state.source.health() {
        Ok(()) => (StatusCode::OK, "ok\n").into_response(),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")).into_response(),
    }
}

async fn page(State(state): State<ApiState>) -> Response {
    let html = render_page(&state);
    let mut r = Response::new(Body::from(html));
    r.headers_mut()
        .insert(header::CONTENT_TYPE, header::HeaderValue::from_static("text/html; charset=utf-8"));
    r
}

/// HTML-escapes text.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn time(t: i64) -> String {
    jiff::Timestamp::from_second(t)
        .map(|ts| ts.strftime("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|_| t.to_string())
}

fn status_name(s: Status) -> &'static str {
    match s {
        Status::Normal => "normal",
        Status::Pending => "pending",
        Status::Firing => "firing",
        Status::Recovering => "recovering",
        Status::NoData => "nodata",
        Status::Error => "error",
    }
}

fn severity_name(s: Option<Severity>) -> &'static str {
    match s {
        Some(Severity::Warning) => "warning",
        Some(Severity::Critical) => "critical",
        None => "",
    }
}

fn labels_text(labels: &Labels) -> String {
    labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ")
}

fn value_text(v: Option<f64>) -> String {
    v.map_or_else(String::new, |v| v.to_string())
}

/// The render PNG of a generator link: its `format` set to `png`.
fn png_url(url: &str) -> String {
    if url.is_empty() {
        return String::new();
    }
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .filter(|(k, _)| k != "format")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    pairs.push(("format".into(), "png".into()));
    let query = form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish();
    format!("{base}?{query}")
}

const STYLE: &str = "body{font-family:sans-serif;margin:1em 2em;color:#222}\
table{border-collapse:collapse;margin-bottom:1.5em}th,td{border:1px solid #ccc;padding:3px 8px;\
text-align:left;vertical-align:top}th{background:#eee}h2{margin-top:1.2em}\
.critical{background:#fdd}.warning{background:#ffe9c7}.nodata,.error{background:#e8e0ff}\
.pending{background:#fffbd0}.silenced,.inhibited{color:#777}.muted{color:#777}code{font-size:90%}";

fn render_page(state: &ApiState) -> String {
    let now = (state.clock)();
    let alerts = marked(state, now);
    let rules = state.source.rules();
    let history = state.source.history(HISTORY_DEFAULT);
    let graph: BTreeMap<&str, &str> =
        rules.iter().map(|r| (r.name.as_str(), r.generator_url.as_str())).collect();
    let active = |a: &&AlertOut| {
        matches!(a.row.status, Status::Firing | Status::Recovering | Status::NoData | Status::Error)
    };
    let firing: Vec<&AlertOut> = alerts
        .iter()
        .filter(active)
        .filter(|a| {
            a.marks.silenced_by.is_empty()
                && a.marks.inhibited_by.is_empty()
                && a.marks.muted_by.is_empty()
        })
        .collect();
    let silenced: Vec<&AlertOut> =
        alerts.iter().filter(active).filter(|a| !a.marks.silenced_by.is_empty()).collect();
    let inhibited: Vec<&AlertOut> = alerts
        .iter()
        .filter(active)
        .filter(|a| a.marks.silenced_by.is_empty() && !a.marks.inhibited_by.is_empty())
        .collect();
    // Held by the route's time intervals (and neither silenced nor inhibited).
    let muted: Vec<&AlertOut> = alerts
        .iter()
        .filter(active)
        .filter(|a| {
            a.marks.silenced_by.is_empty()
                && a.marks.inhibited_by.is_empty()
                && !a.marks.muted_by.is_empty()
        })
        .collect();
    // Inhibitors are named by their alertname and labels where the page knows them.
    let by_fingerprint: BTreeMap<&str, &AlertRow> =
        alerts.iter().map(|a| (a.row.fingerprint.as_str(), &a.row)).collect();
    let pending: Vec<&AlertOut> =
        alerts.iter().filter(|a| a.row.status == Status::Pending).collect();

    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"30\"><title>Alerts: {} firing</title>\
         <style>{STYLE}</style></head><body>\n<h1>Alerts</h1>\n<p id=\"summary\">{} firing, {} pending, \
         {} silenced, {} inhibited, {} muted; {} rules. Page made {}",
        firing.len(),
        firing.len(),
        pending.len(),
        silenced.len(),
        inhibited.len(),
        muted.len(),
        rules.len(),
        time(now)
    );
    if let Some(r) = state.source.last_round() {
        let _ = write!(
            h,
            "; last round {} ({} rules in {:.1} ms, {} errors)",
            time(r.at),
            r.rules,
            r.duration_ms,
            r.errors
        );
    }
    h.push_str(
        ". JSON: <a href=\"api/alerts\">alerts</a>, <a href=\"api/rules\">rules</a>, \
        <a href=\"api/history\">history</a>, <a href=\"api/silences\">silences</a>, \
        <a href=\"api/receivers\">receivers</a>, <a href=\"api/metrics\">metrics</a>.</p>\n",
    );

    let alert_table = |h: &mut String, id: &str, title: &str, rows: &[&AlertOut], class: &str| {
        let _ = writeln!(h, "<h2>{title} ({})</h2>", rows.len());
        if rows.is_empty() {
            let _ = writeln!(h, "<p class=\"muted\" id=\"{id}-none\">None.</p>");
            return;
        }
        let _ = writeln!(
            h,
            "<table id=\"{id}\"><tr><th>Rule</th><th>Labels</th><th>Status</th><th>Severity</th>\
             <th>Value</th><th>Since</th><th>Summary</th><th>Notes</th><th>Graph</th></tr>"
        );
        for a in rows {
            let r = &a.row;
            let css = match (r.status, r.severity) {
                (Status::Pending, _) => "pending",
                (Status::NoData, _) => "nodata",
                (Status::Error, _) => "error",
                (_, s) => severity_name(s),
            };
            let mut notes = Vec::new();
            if !a.marks.silenced_by.is_empty() {
                notes.push(format!("silenced by {}", a.marks.silenced_by.join(", ")));
            }
            if !a.marks.inhibited_by.is_empty() {
                let sources: Vec<String> = a
                    .marks
                    .inhibited_by
                    .iter()
                    .map(|fp| match by_fingerprint.get(fp.as_str()) {
                        Some(s) => format!("{} {{{}}}", s.rule, labels_text(&s.labels)),
                        None => fp.clone(),
                    })
                    .collect();
                notes.push(format!("inhibited by {}", sources.join("; ")));
            }
            if !a.marks.muted_by.is_empty() {
                notes.push(format!("muted by {}", a.marks.muted_by.join(", ")));
            }
            if let Some(ack) = &a.marks.ack {
                notes.push(format!("acknowledged by {} until {}", ack.by, time(ack.expires_at)));
            }
            if let Some(d) = &r.detail {
                notes.push(d.clone());
            }
            let url = graph.get(r.rule.as_str()).map(|u| png_url(u)).unwrap_or_default();
            let link = if url.is_empty() {
                String::new()
            } else {
                format!("<a href=\"{}\">png</a>", esc(&url))
            };
            let _ = writeln!(
                h,
                "<tr class=\"alert {class} {css}\" data-fingerprint=\"{}\"><td>{}</td><td>{}</td>\
                 <td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{link}</td></tr>",
                esc(&r.fingerprint),
                esc(&r.rule),
                esc(&labels_text(&r.labels)),
                status_name(r.status),
                severity_name(r.severity),
                esc(&value_text(r.value)),
                time(r.since),
                esc(r.annotations.get("summary").map_or("", String::as_str)),
                esc(&notes.join("; ")),
            );
        }
        h.push_str("</table>\n");
    };
    alert_table(&mut h, "firing", "Firing", &firing, "firing");
    alert_table(&mut h, "pending", "Pending", &pending, "pending");
    alert_table(&mut h, "silenced", "Silenced", &silenced, "silenced");
    alert_table(&mut h, "inhibited", "Inhibited", &inhibited, "inhibited");
    alert_table(&mut h, "muted", "Muted", &muted, "muted");

    let silences = state.dispatcher.silences();
    let _ = writeln!(h, "<h2>Silences ({})</h2>", silences.len());
    if silences.is_empty() {
        h.push_str("<p class=\"muted\">None.</p>\n");
    } else {
        h.push_str(
            "<table id=\"silences\"><tr><th>Id</th><th>State</th><th>Matchers</th><th>Starts</th>\
             <th>Ends</th><th>By</th><th>Comment</th></tr>\n",
        );
        for s in &silences {
            let matchers: Vec<String> = s.matchers.iter().map(ToString::to_string).collect();
            let state_name = match s.state(now) {
                SilenceState::Pending => "pending",
                SilenceState::Active => "active",
                SilenceState::Expired => "expired",
            };
            let _ = writeln!(
                h,
                "<tr><td><code>{}</code></td><td>{state_name}</td><td><code>{}</code></td><td>{}</td>\
                 <td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&s.id),
                esc(&matchers.join(", ")),
                time(s.starts_at),
                time(s.ends_at),
                esc(&s.created_by),
                esc(&s.comment)
            );
        }
        h.push_str("</table>\n");
    }

    let _ = writeln!(h, "<h2>Rules ({})</h2>", rules.len());
    h.push_str(
        "<table id=\"rules\"><tr><th>Rule</th><th>Kind</th><th>Target</th><th>Condition</th>\
         <th>Every</th><th>Last evaluation</th><th>Took</th><th>Instances</th><th>Error</th>\
         <th>Graph</th></tr>\n",
    );
    for r in &rules {
        let counts: Vec<String> = r.counts.iter().map(|(k, v)| format!("{k} {v}")).collect();
        let url = png_url(&r.generator_url);
        let link = if url.is_empty() {
            String::new()
        } else {
            format!("<a href=\"{}\">png</a>", esc(&url))
        };
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}s</td><td>{}</td>\
             <td>{:.1} ms</td><td>{}</td><td>{}</td><td>{link}</td></tr>",
            esc(&r.name),
            esc(&r.kind),
            esc(&r.subject),
            esc(&r.condition),
            r.every,
            r.last_eval.map_or_else(|| "never".to_owned(), time),
            r.last_duration_ms,
            esc(&counts.join(", ")),
            esc(r.last_error.as_deref().unwrap_or("")),
        );
    }
    h.push_str("</table>\n");

    let _ = writeln!(h, "<h2>Recent transitions ({})</h2>", history.len());
    if !history.is_empty() {
        h.push_str(
            "<table id=\"history\"><tr><th>At</th><th>Rule</th><th>Labels</th><th>From</th>\
             <th>To</th><th>Severity</th><th>Value</th></tr>\n",
        );
        for t in &history {
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                time(t.at),
                esc(&t.rule),
                esc(&labels_text(&t.labels)),
                status_name(t.from),
                status_name(t.to),
                severity_name(t.severity),
                esc(&value_text(t.value)),
            );
        }
        h.push_str("</table>\n");
    }

    let receivers = state.dispatcher.receivers();
    if !receivers.is_empty() {
        h.push_str(
            "<h2>Receivers</h2>\n<table id=\"receivers\"><tr><th>Receiver</th><th>Sent</th>\
             <th>Failed attempts</th><th>Given up</th><th>Dropped</th><th>Queued</th>\
             <th>Last error</th></tr>\n",
        );
        for r in &receivers {
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&r.name),
                r.sent,
                r.failed_attempts,
                r.given_up,
                r.dropped,
                r.queued,
                esc(&match (&r.last_error, r.last_error_at) {
                    (Some(e), Some(t)) => format!("{}: {e}", time(t)),
                    _ => String::new(),
                }),
            );
        }
        h.push_str("</table>\n");
    }
    h.push_str("</body></html>\n");
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_html() {
        assert_eq!(esc("<a href=\"x\">&'"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
    }

    #[test]
    fn png_links_replace_the_format() {
        assert_eq!(png_url("/render?target=a.b&format=json"), "/render?target=a.b&format=png");
        assert_eq!(
            png_url("http://g/render?target=x(y)"),
            "http://g/render?target=x%28y%29&format=png"
        );
        assert_eq!(png_url(""), "");
    }

    #[test]
    fn silence_requests_take_text_or_objects_and_times_or_durations() {
        let s = parse_silence(
            br#"{"matchers": ["host=~web.*", {"name": "alertname", "op": "=", "value": "x"}],
                "duration": "2h", "created_by": "me", "comment": "deploy"}"#,
            1000,
        )
        .unwrap();
        assert_eq!(s.matchers.len(), 2);
        assert_eq!(s.ends_at, 1000 + 7200);
        let s = parse_silence(
            br#"{"matchers": ["a=b"], "starts_at": "2023-11-14T22:13:20Z", "ends_at": 1700003600}"#,
            0,
        )
        .unwrap();
        assert_eq!(s.starts_at, Some(1_700_000_000));
        for bad in [
            &br#"{"matchers": ["a=b"]}"#[..],
            br#"{"matchers": ["a=~("], "duration": "1h"}"#,
            br#"{"matchers": ["a=b"], "duration": "1h", "ends_at": 5}"#,
            br#"{"matchers": ["a=b"], "ends_at": "yesterday"}"#,
            br#"{"matchers": ["a=b"], "duration": "1h", "extra": 1}"#,
            b"not json",
        ] {
            assert!(parse_silence(bad, 0).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    proptest::proptest! {
        #[test]
        fn silence_parsing_never_panics(body in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let _ = parse_silence(&body, 0);
        }
    }
}
