//! The server's HTTP API (graphite-web's render, find, tags, functions, events, version):
//! its command-line flags, binding, and the task serving it over the store.
//!
//! The API itself lives in `render::http`; this file only wires it: the listener is bound
//! with the other sockets (so a port in use fails the start before the store opens), the
//! server runs on the same runtime and stops on the same shutdown token, and the caller waits
//! for it to finish its requests before the store shuts down.

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
}

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
    let HttpPort::At(port) = args.http_port else { return Ok(None) };
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
/// opened in `data_dir`.
///
/// # Errors
///
/// The events file cannot be read.
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
    let api = render::http::router(backend, Arc::new(events), config);
    // The web UI (`/`, `/ui/...`) answers its own paths and hands the rest to the API.
    let dashboards_dir = data_dir.join(ui::DASHBOARDS_DIR);
    let dashboards = ui::DashboardStore::open(&dashboards_dir)
        .with_context(|| format!("cannot open the dashboards in {}", dashboards_dir.display()))?;
    let app = ui::router(Arc::new(dashboards)).fallback_service(api);
    Ok(tokio::spawn(async move {
        axum::serve(listener, app).with_graceful_shutdown(shutdown.cancelled_owned()).await
    }))
}
