//! The server's HTTP API (graphite-web's render, find, tags, functions, events, version):
//! its command-line flags, binding, and the task serving it over the store.
//!
//! The API itself lives in `render::http`; this file only wires it: the listener is bound
//! with the other sockets (so a port in use fails the start before the store opens), the
//! server runs on the same runtime and stops on the same shutdown token, and the caller waits
//! for it to finish its requests before the store shuts down.
//!
//! With `--alert-rules FILE` the alerter runs in the same process: its engine evaluates the
//! rules through render over the same store (no HTTP hop), on its own threads, and its
//! status page and API are served under `/alerts/` on this port. It stops (writing its state
//! file) after the HTTP server, before the store.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use render::events::EventStore;
use render::http::{HttpConfig, StoreBackend};
use store::Store;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The events file, in the data directory (hidden, so no finder takes it for a metric).
pub(crate) const EVENTS_FILE: &str = ".events.jsonl";

/// The HTTP API's flags.
#[derive(Debug, Args)]
pub(crate) struct HttpArgs {
    /// HTTP API port (graphite-web's /render, /metrics, /tags, /functions, /events,
    /// /version); `off` disables it, 0 takes any free port.
    #[arg(long, value_name = "PORT", default_value = "8080", value_parser = parse_http_port)]
    http_port: HttpPort,
    /// Interface the HTTP API binds (default: `--bind`, else 0.0.0.0).
    #[arg(long, value_name = "ADDR")]
    http_bind: Option<String>,
    /// Origins browsers may call the API from (CORS), comma-separated; `*` allows any.
    #[arg(long, value_name = "ORIGIN", value_delimiter = ',', default_value = "*")]
    cors_origin: Vec<String>,
    /// Seconds one HTTP request may take before it is answered 503.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    http_timeout: u64,
    /// An alert rules file: run the alerter over the store, with its status page and API
    /// under /alerts/ on the HTTP port.
    #[arg(long, value_name = "FILE")]
    alert_rules: Option<PathBuf>,
    /// The alerter's state file (default: `.alert-state.json` in the data directory).
    #[arg(long, value_name = "FILE", requires = "alert_rules")]
    alert_state: Option<PathBuf>,
}

/// The alerter's state file, in the data directory (hidden, so no finder takes it for a
/// metric).
pub(crate) const ALERT_STATE_FILE: &str = ".alert-state.json";

/// `--http-port`: a port or `off`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HttpPort {
    Off,
    At(u16),
}

fn parse_http_port(text: &str) -> Result<HttpPort, String> {
    if text == "off" {
        return Ok(HttpPort::Off);
    }
    text.parse().map(HttpPort::At).map_err(|_| format!("{text:?} is not a port (0-65535) or `off`"))
}

/// Binds the HTTP listener, unless disabled. `bind` is the server's `--bind`.
///
/// # Errors
///
/// The interface does not resolve, or the port is in use.
pub(crate) async fn bind(
    args: &HttpArgs,
    bind: Option<&str>,
) -> anyhow::Result<Option<TcpListener>> {
    let HttpPort::At(port) = args.http_port else {
        if args.alert_rules.is_some() {
            anyhow::bail!("--alert-rules serves its page on the HTTP port: it needs --http-port");
        }
        return Ok(None);
    };
    let interface = args.http_bind.as_deref().or(bind).unwrap_or("0.0.0.0");
    let addr: SocketAddr = (interface, port)
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve interface {interface:?}"))?
        .next()
        .with_context(|| format!("no address for interface {interface:?}"))?;
    let listener =
        TcpListener::bind(addr).await.with_context(|| format!("cannot listen on http {addr}"))?;
    Ok(Some(listener))
}

/// Starts serving the API over `store` on `listener` until `shutdown`; the events file is
/// opened in `data_dir`. With `--alert-rules`, the alerter starts too, and the returned task
/// ends only once it has stopped and saved its state.
///
/// # Errors
///
/// The events file cannot be read; the alert rules file is invalid (naming its line and
/// rule) or the alerter's state file is corrupt.
pub(crate) fn spawn(
    listener: TcpListener,
    store: Store,
    data_dir: &Path,
    args: &HttpArgs,
    shutdown: CancellationToken,
) -> anyhow::Result<JoinHandle<std::io::Result<()>>> {
    let events_path: PathBuf = data_dir.join(EVENTS_FILE);
    let events = EventStore::open(&events_path)
        .with_context(|| format!("cannot open the events file {}", events_path.display()))?;
    let config = HttpConfig {
        cors_origins: args.cors_origin.clone(),
        request_timeout: Duration::from_secs(args.http_timeout.max(1)),
        ..HttpConfig::default()
    };
    let backend = Arc::new(StoreBackend::new(store, data_dir));
    let Some(rules_path) = &args.alert_rules else {
        return Ok(tokio::spawn(render::http::run(
            listener,
            backend,
            Arc::new(events),
            config,
            shutdown,
        )));
    };
    let rules = alert::rules::load(rules_path)?;
    let state = args.alert_state.clone().unwrap_or_else(|| data_dir.join(ALERT_STATE_FILE));
    let sources = alert::source::Sources::local(backend.clone());
    let service = Arc::new(alert::AlertService::new(
        rules,
        sources,
        Some(state),
        alert::engine::EngineConfig::default(),
    )?);
    service.start().context("cannot start the alerter's threads")?;
    tracing::info!(rules = %rules_path.display(), "alerter running; page at /alerts/");
    let app = axum::Router::new()
        .route(
            "/alerts",
            axum::routing::get(|| async { axum::response::Redirect::permanent("/alerts/") }),
        )
        .nest_service("/alerts/", alert::api::router(service.api_state()))
        .merge(render::http::router(backend, Arc::new(events), config));
    Ok(tokio::spawn(async move {
        let served =
            axum::serve(listener, app).with_graceful_shutdown(shutdown.cancelled_owned()).await;
        // The alerter reads the store: it stops (and saves its state) before the store does.
        match tokio::task::spawn_blocking(move || service.stop(Duration::from_secs(10))).await {
            Ok(Ok(())) => tracing::info!("alerter stopped; state saved"),
            Ok(Err(e)) => tracing::error!(error = %e, "alerter state not saved"),
            Err(e) => tracing::error!(error = %e, "the alerter's stop panicked"),
        }
        served
    }))
}
