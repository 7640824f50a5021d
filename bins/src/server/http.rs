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
//! status page and API are served under `/alerts/` on this port. SIGHUP (or
//! `POST /alerts/-/reload`) reloads its rules file; its self-metrics go into the store with
//! the server's own (`carbon.agents.<host>-<instance>.alert.*`). It stops (writing its state
//! file) after the HTTP server, before the store.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use carbon_proto::ring::HashType;
use clap::Args;
use render::cluster::{
    CarbonLinkBackend, CarbonLinkConfig, CarbonLinkPool, ClusterBackend, ClusterConfig,
};
use render::events::EventStore;
use render::http::{Backend, HttpConfig, StoreBackend};
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
    /// under /alerts/ on the HTTP port; SIGHUP reloads it.
    #[arg(long, value_name = "FILE")]
    alert_rules: Option<PathBuf>,
    /// The alerter's state file (default: `.alert-state.json` in the data directory).
    #[arg(long, value_name = "FILE", requires = "alert_rules")]
    alert_state: Option<PathBuf>,
    /// Peers to federate reads with (graphite-web's CLUSTER_SERVERS), comma-separated
    /// `host:port[/prefix]`: graphite-web nodes or ours. Requests with `local=1` (what peers
    /// send) read this node only.
    #[arg(long, value_name = "HOST:PORT", value_delimiter = ',')]
    cluster_servers: Vec<String>,
    /// Seconds a find on the peers may take (FIND_TIMEOUT).
    #[arg(long, value_name = "SECONDS", default_value_t = 3.0)]
    remote_find_timeout: f64,
    /// Seconds a fetch from the peers may take, retries included (FETCH_TIMEOUT).
    #[arg(long, value_name = "SECONDS", default_value_t = 6.0)]
    remote_fetch_timeout: f64,
    /// Attempts per peer fetch (MAX_FETCH_RETRIES).
    #[arg(long, value_name = "N", default_value_t = 2)]
    max_fetch_retries: u32,
    /// Seconds a failed peer is left out (REMOTE_RETRY_DELAY).
    #[arg(long, value_name = "SECONDS", default_value_t = 60.0)]
    remote_retry_delay: f64,
    /// Cache nodes whose unwritten points reads merge in (graphite-web's CARBONLINK_HOSTS),
    /// comma-separated `host:port:instance`; each metric is asked of the node the ring names.
    /// Default: none (the store's own cache only).
    #[arg(long, value_name = "HOST:PORT:INSTANCE")]
    carbonlink_hosts: Option<String>,
    /// The ring of --carbonlink-hosts: carbon_ch or fnv1a_ch (CARBONLINK_HASHING_TYPE).
    #[arg(long, value_name = "TYPE", default_value = "carbon_ch")]
    carbonlink_hashing_type: String,
    /// Seconds a CarbonLink query may take (CARBONLINK_TIMEOUT).
    #[arg(long, value_name = "SECONDS", default_value_t = 1.0)]
    carbonlink_timeout: f64,
}

/// Seconds from a flag, as a duration (a negative or non-finite value gives `min`).
fn seconds(value: f64, min: Duration) -> Duration {
    Duration::try_from_secs_f64(value).unwrap_or(min).max(min)
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
    let mut backend: Arc<dyn Backend> = Arc::new(StoreBackend::new(store.clone(), data_dir));
    if let Some(hosts) = args.carbonlink_hosts.as_deref().filter(|h| !h.trim().is_empty()) {
        let hash_type: HashType = args
            .carbonlink_hashing_type
            .parse()
            .map_err(|e| anyhow::anyhow!("--carbonlink-hashing-type: {e}"))?;
        let mut cl = CarbonLinkConfig::parse(hosts, hash_type)
            .map_err(|e| anyhow::anyhow!("--carbonlink-hosts: {e}"))?;
        cl.timeout = seconds(args.carbonlink_timeout, Duration::from_millis(1));
        let pool =
            CarbonLinkPool::new(cl).map_err(|e| anyhow::anyhow!("--carbonlink-hosts: {e}"))?;
        backend = Arc::new(CarbonLinkBackend::new(backend, data_dir, pool));
    }
    if !args.cluster_servers.is_empty() {
        let config = ClusterConfig {
            servers: args.cluster_servers.clone(),
            find_timeout: seconds(args.remote_find_timeout, Duration::from_millis(1)),
            fetch_timeout: seconds(args.remote_fetch_timeout, Duration::from_millis(1)),
            max_fetch_retries: args.max_fetch_retries.max(1),
            retry_delay: seconds(args.remote_retry_delay, Duration::ZERO),
            ..ClusterConfig::default()
        };
        let cluster = ClusterBackend::new(backend, config)
            .map_err(|e| anyhow::anyhow!("--cluster-servers: {e}"))?;
        backend = Arc::new(cluster);
    }
    // The alerter (with --alert-rules) reads the same backend: the store, its cache peers and
    // the cluster, as /render does.
    let alerter = match &args.alert_rules {
        None => None,
        Some(rules_path) => {
            let rules = alert::rules::load(rules_path)?;
            let state = args.alert_state.clone().unwrap_or_else(|| data_dir.join(ALERT_STATE_FILE));
            let data: Arc<dyn render::DataSource> = backend.clone();
            let service = Arc::new(alert::AlertService::new(
                rules,
                alert::source::Sources::local(data),
                Some(state),
                alert::engine::EngineConfig::default(),
            )?);
            // Its self-metrics are written with the store's, every CARBON_METRIC_INTERVAL.
            let mut reporter = service.metrics_reporter();
            store.add_self_metrics(Box::new(move || {
                let points = reporter.points(alert::Dispatcher::now());
                points.into_iter().map(|(name, v)| (format!("alert.{name}"), v)).collect()
            }));
            // Before the ready file: whoever sees the server up may send SIGHUP.
            let hangup = crate::signals::ReloadSignal::install()
                .context("cannot install the SIGHUP handler")?;
            tokio::spawn(crate::signals::reload_alerts_on_sighup(hangup, Arc::clone(&service)));
            service.start().context("cannot start the alerter's threads")?;
            tracing::info!(rules = %rules_path.display(), "alerter running; page at /alerts/");
            Some(service)
        }
    };
    let mut api = render::http::router(backend, Arc::new(events), config);
    if let Some(service) = &alerter {
        api = axum::Router::new()
            .route(
                "/alerts",
                axum::routing::get(|| async { axum::response::Redirect::permanent("/alerts/") }),
            )
            .nest_service("/alerts/", alert::api::router(service.api_state()))
            .merge(api);
    }
    // The web UI (`/`, `/ui/...`) answers its own paths and hands the rest to the API.
    let dashboards_dir = data_dir.join(ui::DASHBOARDS_DIR);
    let dashboards = ui::DashboardStore::open(&dashboards_dir)
        .with_context(|| format!("cannot open the dashboards in {}", dashboards_dir.display()))?;
    let app = ui::router(Arc::new(dashboards)).fallback_service(api);
    Ok(tokio::spawn(async move {
        let served =
            axum::serve(listener, app).with_graceful_shutdown(shutdown.cancelled_owned()).await;
        if let Some(service) = alerter {
            // The alerter reads the store: it stops (and saves its state) before the store does.
            match tokio::task::spawn_blocking(move || service.stop(Duration::from_secs(10))).await {
                Ok(Ok(())) => tracing::info!("alerter stopped; state saved"),
                Ok(Err(e)) => tracing::error!(error = %e, "alerter state not saved"),
                Err(e) => tracing::error!(error = %e, "the alerter's stop panicked"),
            }
        }
        served
    }))
}
