//! The UI's routes: the page, its assets, and the dashboards JSON API.
//!
//! | method and path | answer |
//! | --- | --- |
//! | `GET /` | the page |
//! | `GET /ui/assets/{file}` | an embedded asset (cached for a day: its URL carries the crate version) |
//! | `GET /ui/api/dashboards` | `{"dashboards": [names]}` |
//! | `GET /ui/api/dashboards/{name}` | the dashboard, or 404 |
//! | `PUT /ui/api/dashboards/{name}` | saves the body (a dashboard; its `name` is the path's) |
//! | `DELETE /ui/api/dashboards/{name}` | 204, or 404 |
//! | `POST /ui/api/dashboards/{name}/rename` | body `{"to": NEW}`; 409 when taken |
//! | `POST /ui/api/import` | body: graphite-web's dashboard state; saves it, answers it |
//!
//! Errors are `{"error": TEXT}` with 400 (bad name or body), 404, 409 or 500. File I/O runs
//! on the blocking pool so a slow disk never stalls the runtime.

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};

use crate::assets;
use crate::error::Error;
use crate::store::{self, DashboardStore};

/// The UI as axum routes over `store`. Requests it does not know fall through to the router's
/// fallback, so the caller adds the rest of the API with `.fallback_service(api)`.
pub fn router(store: Arc<DashboardStore>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/ui", get(index))
        .route("/ui/", get(index))
        .route("/ui/assets/{file}", get(asset))
        .route("/ui/api/dashboards", get(list))
        .route("/ui/api/dashboards/{name}", get(load).put(save).delete(remove))
        .route("/ui/api/dashboards/{name}/rename", post(rename))
        .route("/ui/api/import", post(import))
        .with_state(store)
}

fn respond(status: StatusCode, content_type: &'static str, body: impl Into<Body>) -> Response {
    let mut r = Response::new(body.into());
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static(content_type));
    r
}

fn json(status: StatusCode, value: &serde_json::Value) -> Response {
    respond(status, "application/json", value.to_string())
}

fn error(e: &Error) -> Response {
    let status = match e {
        Error::InvalidName { .. } | Error::InvalidDashboard { .. } => StatusCode::BAD_REQUEST,
        Error::NotFound { .. } => StatusCode::NOT_FOUND,
        Error::Exists { .. } => StatusCode::CONFLICT,
        _ => {
            tracing::warn!(error = %e, "dashboard store");
            StatusCode::INTERNAL_SERVER_ERROR
        }
    };
    json(status, &serde_json::json!({ "error": e.to_string() }))
}

/// Runs `f` on the blocking pool; a panic there (none is expected) becomes a 500, not a crash.
async fn blocking<F>(f: F) -> Response
where
    F: FnOnce() -> Response + Send + 'static,
{
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        tracing::error!(error = %e, "a dashboard handler panicked");
        json(StatusCode::INTERNAL_SERVER_ERROR, &serde_json::json!({"error": "internal error"}))
    })
}

async fn index() -> Response {
    let mut r = respond(StatusCode::OK, "text/html; charset=utf-8", assets::INDEX_HTML);
    r.headers_mut().insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-cache"));
    r
}

async fn asset(Path(file): Path<String>) -> Response {
    match assets::asset(&file) {
        Some(a) => {
            let mut r = respond(StatusCode::OK, a.content_type, a.bytes);
            r.headers_mut()
                .insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-cache"));
            r
        }
        None => respond(StatusCode::NOT_FOUND, "text/plain", "no such asset\n"),
    }
}

async fn list(State(store): State<Arc<DashboardStore>>) -> Response {
    blocking(move || match store.list() {
        Ok(names) => json(StatusCode::OK, &serde_json::json!({ "dashboards": names })),
        Err(e) => error(&e),
    })
    .await
}

async fn load(State(store): State<Arc<DashboardStore>>, Path(name): Path<String>) -> Response {
    blocking(move || match store.get(&name) {
        Ok(Some(d)) => json(StatusCode::OK, &serde_json::to_value(d).unwrap_or_default()),
        Ok(None) => error(&Error::NotFound { name }),
        Err(e) => error(&e),
    })
    .await
}

async fn save(
    State(store): State<Arc<DashboardStore>>,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    blocking(move || {
        let mut d = match store::parse(&body) {
            Ok(d) => d,
            Err(e) => return error(&e),
        };
        d.name = name;
        match store.put(&d) {
            Ok(()) => json(StatusCode::OK, &serde_json::to_value(d).unwrap_or_default()),
            Err(e) => error(&e),
        }
    })
    .await
}

async fn remove(State(store): State<Arc<DashboardStore>>, Path(name): Path<String>) -> Response {
    blocking(move || match store.delete(&name) {
        Ok(true) => respond(StatusCode::NO_CONTENT, "application/json", ""),
        Ok(false) => error(&Error::NotFound { name }),
        Err(e) => error(&e),
    })
    .await
}

async fn rename(
    State(store): State<Arc<DashboardStore>>,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    blocking(move || {
        let to = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("to").and_then(|t| t.as_str()).map(String::from));
        let Some(to) = to else {
            return error(&Error::invalid("the body is {\"to\": NEW_NAME}"));
        };
        match store.rename(&name, &to) {
            Ok(d) => json(StatusCode::OK, &serde_json::to_value(d).unwrap_or_default()),
            Err(e) => error(&e),
        }
    })
    .await
}

async fn import(State(store): State<Arc<DashboardStore>>, body: Bytes) -> Response {
    blocking(move || {
        if body.len() > store::MAX_DASHBOARD_BYTES {
            return error(&Error::invalid("larger than the dashboard limit"));
        }
        let state: serde_json::Value = match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(e) => return error(&Error::invalid(e.to_string())),
        };
        let d = match crate::import::from_graphite_web(&state, None) {
            Ok(d) => d,
            Err(e) => return error(&e),
        };
        match store.put(&d) {
            Ok(()) => json(StatusCode::OK, &serde_json::to_value(d).unwrap_or_default()),
            Err(e) => error(&e),
        }
    })
    .await
}
