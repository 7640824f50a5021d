//! graphite-web 1.1.8's HTTP API (graphite-reference §3): `/render`, `/metrics/*`, `/tags/*`,
//! `/functions`, `/events/*` and `/version`, with the same parameters, status codes and bodies.
//!
//! [`run`] serves a bound listener until a shutdown token is cancelled, then stops accepting
//! and lets the requests under way finish. Every request is answered off the runtime's I/O
//! threads (evaluation reads files and burns CPU; it must never hold them up, they also carry
//! ingest): in place with `block_in_place` on a multi-thread runtime (the worker hands its
//! other tasks to a fresh thread, and the request skips two thread hand-offs, each a wake-up
//! that costs tens of µs on an idle 2-core VM), on tokio's blocking pool on a current-thread
//! runtime; under a per-request time limit
//! ([`HttpConfig::request_timeout`], 503 past it), with its body capped
//! ([`HttpConfig::max_body_bytes`], 413)
//! and `/render` capped in series and points ([`HttpConfig::max_series`],
//! [`HttpConfig::max_points`], 422). Nothing takes a lock shared by all requests: the store's
//! indexes are sharded, and each response is serialised into its own single buffer.
//!
//! Where this differs from graphite-web, on purpose:
//!
//! - images (`png`, the default, `svg`, `pdf`, and `graphType=pie`) are drawn by
//!   [`crate::image`] in graphite-web's manner, not pixel for pixel (see the README's
//!   "Images"); `format=svg` with `jsonp` gives the SVG as a JSON string, as graphite-web
//!   means to (its Python 3 code fails there);
//! - a target that does not parse is a 400 `Invalid parameters (...)` with the position
//!   (graphite-web answers 500 with a pyparsing trace);
//! - `/functions` writes infinite defaults as `1e9999` (graphite-web writes an invalid
//!   `Infinity` when the default is the last key of its object);
//! - `/metrics/get-metadata` and `/metrics/set-metadata` answer from the store
//!   (graphite-web's CarbonLink code drops the `value` it asks for and always reports an
//!   error);
//! - no request or data cache (graphite-web's default dummy cache caches nothing either),
//!   but the `cacheTimeout` headers are sent as graphite-web sends them;
//! - the legacy UIs (browser, composer, dashboard, account, whitelist, URL shortener) are not
//!   served, and `/events/` and `/events/<id>` without `Accept: application/json` give a
//!   minimal HTML page.

mod backend;
mod events;
mod functions;
mod metrics;
pub mod params;
mod render;
mod reply;
mod tags;

use std::io;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use tokio::net::TcpListener;
use tokio::runtime::{Handle, RuntimeFlavor};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

pub use backend::{Backend, StoreBackend};
pub use params::Params;

use crate::events::EventStore;

/// What the HTTP API allows and costs (plain settings; [`Default`] gives the documented
/// defaults).
#[derive(Clone, Debug)]
pub struct HttpConfig {
    /// Origins allowed by CORS: `["*"]` (the default) answers any origin with `*`; otherwise
    /// a request's `Origin` is echoed back when it is in the list.
    pub cors_origins: Vec<String>,
    /// How long one request may take before it is answered 503 (default 30 s).
    pub request_timeout: Duration,
    /// The largest request body accepted (default 8 MiB); larger bodies get 413.
    pub max_body_bytes: usize,
    /// Series one `/render` request may fetch (default 100,000); more gives 422.
    pub max_series: usize,
    /// Raw values one `/render` request may fetch (default 50 million); more gives 422.
    pub max_points: usize,
    /// `/render` evaluations running at once (default: 4 per core); more wait their turn
    /// (within their time limit).
    pub max_concurrent_renders: usize,
}

impl Default for HttpConfig {
    fn default() -> HttpConfig {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        HttpConfig {
            cors_origins: vec!["*".to_string()],
            request_timeout: Duration::from_secs(30),
            max_body_bytes: 8 << 20,
            max_series: crate::Limits::default().max_series,
            max_points: crate::Limits::default().max_points,
            max_concurrent_renders: 4 * cores,
        }
    }
}

/// What every request handler shares.
pub(crate) struct Shared {
    /// Where metrics, tags and series come from.
    pub(crate) backend: Arc<dyn Backend>,
    /// The events.
    pub(crate) events: Arc<EventStore>,
    /// The settings.
    pub(crate) config: HttpConfig,
    /// Permits for concurrent `/render` evaluations.
    pub(crate) renders: Arc<Semaphore>,
}

impl Shared {
    /// The backend a request reads: the local part alone for `local=1`.
    pub(crate) fn backend_for(&self, local_only: bool) -> &dyn Backend {
        if local_only && let Some(local) = self.backend.local_part() {
            return local;
        }
        &*self.backend
    }
}

/// One request as the handlers see it: method, decoded path, merged parameters, headers and
/// the raw body.
pub(crate) struct Req {
    pub(crate) method: Method,
    pub(crate) path: String,
    pub(crate) params: Params,
    pub(crate) headers: HeaderMap,
    pub(crate) body: bytes::Bytes,
}

impl Req {
    /// A header's value as text.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// The HTTP API as an axum service over `backend` and `events`.
pub fn router(
    backend: Arc<dyn Backend>,
    events: Arc<EventStore>,
    config: HttpConfig,
) -> axum::Router {
    let renders = Arc::new(Semaphore::new(config.max_concurrent_renders.max(1)));
    let shared = Arc::new(Shared { backend, events, config, renders });
    axum::Router::new().fallback(dispatch).with_state(shared)
}

/// Serves the HTTP API on `listener` until `shutdown` is cancelled; then stops accepting,
/// lets the requests under way finish, and returns.
///
/// # Errors
///
/// The server failed (accept errors are retried by axum and do not end it).
pub async fn run(
    listener: TcpListener,
    backend: Arc<dyn Backend>,
    events: Arc<EventStore>,
    config: HttpConfig,
    shutdown: CancellationToken,
) -> io::Result<()> {
    let app = router(backend, events, config);
    axum::serve(listener, app).with_graceful_shutdown(shutdown.cancelled_owned()).await
}

async fn dispatch(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let origin = request.headers().get(header::ORIGIN).cloned();
    if request.method() == Method::OPTIONS {
        return reply::preflight(&shared.config, origin.as_ref(), request.headers());
    }
    let mut response = handle(Arc::clone(&shared), request).await;
    reply::add_cors(&shared.config, origin.as_ref(), response.headers_mut());
    response
}

async fn handle(shared: Arc<Shared>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, shared.config.max_body_bytes).await {
        Ok(b) => b,
        Err(_) => {
            return reply::text(
                StatusCode::PAYLOAD_TOO_LARGE,
                "text/plain",
                format!(
                    "request body larger than {} bytes (limit max_body_bytes)",
                    shared.config.max_body_bytes
                ),
            );
        }
    };
    let mut params = Params::from_query(parts.uri.query().unwrap_or(""));
    let is_form = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.trim_start().starts_with("application/x-www-form-urlencoded"));
    if parts.method == Method::POST && is_form {
        params.extend_urlencoded(&body);
    }
    let req = Req {
        method: parts.method,
        path: params::decode_path(parts.uri.path()),
        params,
        headers: parts.headers,
        body,
    };
    let timeout = shared.config.request_timeout;
    let deadline = Instant::now() + timeout;
    let task = {
        let shared = Arc::clone(&shared);
        async move {
            // `/render` waits for a permit; the rest are cheap index reads.
            let _permit = if route_is_render(&req.path) {
                Arc::clone(&shared.renders).acquire_owned().await.ok()
            } else {
                None
            };
            let answer = move || {
                std::panic::catch_unwind(AssertUnwindSafe(|| route(&shared, &req, deadline)))
                    .map_err(|panic| panic_message(&*panic))
            };
            if Handle::current().runtime_flavor() == RuntimeFlavor::MultiThread {
                let answer = tokio::task::block_in_place(answer);
                // Answered in place, the time limit could not cut in: a late answer is the
                // 503 the limit would have given.
                if Instant::now() > deadline {
                    return Ok(reply::timeout(timeout));
                }
                answer
            } else {
                tokio::task::spawn_blocking(answer).await.unwrap_or_else(|e| Err(e.to_string()))
            }
        }
    };
    match tokio::time::timeout(timeout, task).await {
        Ok(Ok(response)) => response,
        Ok(Err(e)) => {
            tracing::error!(error = %e, "an HTTP handler panicked");
            reply::text(StatusCode::INTERNAL_SERVER_ERROR, "text/plain", "internal error".into())
        }
        Err(_) => reply::timeout(timeout),
    }
}

/// The text of a caught panic.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_string()))
        .unwrap_or_else(|| "a panic without a message".to_string())
}

fn route_is_render(path: &str) -> bool {
    path == "/render" || path == "/render/"
}

/// Picks the view as graphite-web's URL patterns do (graphite-reference §3.2).
fn route(shared: &Shared, req: &Req, deadline: Instant) -> Response {
    let path = req.path.as_str();
    match path {
        "/render" | "/render/" => render::render(shared, req, deadline),
        "/metrics/find" | "/metrics/find/" | "/metrics" | "/metrics/" => metrics::find(shared, req),
        "/metrics/expand" | "/metrics/expand/" => metrics::expand(shared, req),
        "/metrics/index.json" => metrics::index_json(shared, req),
        "/metrics/get-metadata" | "/metrics/get-metadata/" => metrics::get_metadata(shared, req),
        "/metrics/set-metadata" | "/metrics/set-metadata/" => metrics::set_metadata(shared, req),
        "/tags/tagSeries" => tags::tag_series(shared, req),
        "/tags/tagMultiSeries" => tags::tag_multi_series(shared, req),
        "/tags/delSeries" => tags::del_series(shared, req),
        "/tags/findSeries" => tags::find_series(shared, req),
        "/tags/autoComplete/tags" => tags::auto_complete_tags(shared, req),
        "/tags/autoComplete/values" => tags::auto_complete_values(shared, req),
        "/tags" | "/tags/" => tags::tag_list(shared, req),
        "/functions" | "/functions/" => functions::list(req),
        "/events" | "/events/" => events::view_events(shared, req),
        // graphite-web's pattern is `get_data?`: the last letter is optional.
        "/events/get_data" | "/events/get_dat" => events::get_data(shared, req),
        "/version" | "/version/" => reply::text(
            StatusCode::OK,
            "text/html; charset=utf-8",
            format!("{}\n", GRAPHITE_VERSION),
        ),
        _ => {
            if let Some(tag) = path.strip_prefix("/tags/") {
                return tags::tag_details(shared, req, tag);
            }
            if let Some(name) = path.strip_prefix("/functions/") {
                return functions::details(req, name);
            }
            if let Some(rest) = path.strip_prefix("/events/") {
                let id = rest.strip_suffix('/').unwrap_or(rest);
                if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) {
                    return events::detail(shared, req, id);
                }
            }
            reply::not_found(path)
        }
    }
}

/// The graphite-web version this API reproduces (what `/version` answers; Grafana picks its
/// feature set from it).
pub const GRAPHITE_VERSION: &str = "1.1.8";

/// A header value from text known to be valid (ASCII without control characters); an
/// invalid one is dropped to an empty value rather than failing the response.
pub(crate) fn header_value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// A response with a body.
pub(crate) fn response(status: StatusCode, content_type: &str, body: Vec<u8>) -> Response {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, header_value(content_type));
    r
}
