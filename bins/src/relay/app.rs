//! `graphite-relay`: the command line.
//!
//! ```text
//! graphite-relay [--config carbon.conf] [--instance a] [--rules relay-rules.conf]   carbon-relay
//! graphite-relay --crelay-config relay.conf                                       carbon-c-relay
//! graphite-relay --aggregator [--config carbon.conf] [--aggregation-rules FILE]    carbon-aggregator
//!   [--aggregation-forward-all BOOL] [--aggregation-rules-reload SECS]
//!   [--bind ADDR] [--line-port P] [--pickle-port P] [--udp-port P]   (0: any free port)
//!   [--spool-dir DIR] [--spool-max-bytes N] [--queue-points N] [--batch-size N]
//!   [--ready-file FILE] [--metric-interval SECS]
//! ```
//!
//! SIGTERM or SIGINT: the listeners stop accepting and finish what they read, then every
//! destination gets `--shutdown-timeout` seconds to write its queue; what is left goes to its
//! spool (replayed at the next start).
//!
//! With `--aggregator` the relay is carbon-aggregator: received points go through a
//! [`store::aggregator::Aggregator`] first (the server's [`AggregatingSink`]); what it passes
//! on (`FORWARD_ALL`) and, from a ticker thread, the aggregates when due are routed like any
//! received point, with the same waiting for room. At shutdown, after the listeners close, the
//! aggregates due by then are emitted before the destinations flush.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use tokio_util::sync::CancellationToken;

use super::config_carbon::AggregatorSettings;
use super::config_carbon::CarbonRelayConf;
use super::config_crelay::read_crelay;
use super::statistics::{CRelayStatistics, Collector};
use super::{QueueOptions, Relay, RelaySettings, SelfMetricsState, carbon_host, hostname};
use crate::server::{AggregatingSink, Limits, ListenConfig, ListenerStats, Listeners, MemorySink};
use crate::signals::StopSignals;

/// graphite-relay: carbon-relay's and carbon-c-relay's routing, with a spool that loses
/// nothing.
#[derive(Debug, Parser)]
#[command(name = "graphite-relay", version)]
pub struct Cli {
    /// carbon.conf whose `[relay]` section to read (carbon-relay mode).
    #[arg(long, value_name = "FILE", conflicts_with = "crelay_config")]
    config: Option<PathBuf>,
    /// The instance: `[relay:<instance>]` overrides `[relay]`; also names the relay in its
    /// self-metrics (`carbon.relays.<host>-<instance>`).
    #[arg(long, default_value = "a")]
    instance: String,
    /// relay-rules.conf (default: RELAY_RULES in carbon.conf's directory).
    #[arg(long, value_name = "FILE")]
    rules: Option<PathBuf>,
    /// Run as carbon-aggregator: aggregate the received points with aggregation-rules.conf
    /// and relay the aggregates (and, with FORWARD_ALL, the points). Reads carbon.conf's
    /// `[aggregator]` section (`[aggregator:<instance>]` over it), with `RELAY_METHOD` forced to
    /// consistent-hashing; with `--crelay-config`, routes with that file instead.
    #[arg(long)]
    aggregator: bool,
    /// aggregation-rules.conf: the aggregator's rules with `--aggregator`, else the ring keys
    /// of `aggregated-consistent-hashing` (default: AGGREGATION_RULES in carbon.conf's
    /// directory).
    #[arg(long, value_name = "FILE")]
    aggregation_rules: Option<PathBuf>,
    /// With `--aggregator`: also relay each received point (default: FORWARD_ALL, else true),
    /// unless its name is one of its own aggregates.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true",
          action = clap::ArgAction::Set, requires = "aggregator")]
    aggregation_forward_all: Option<bool>,
    /// With `--aggregator`: look at the aggregation rules file this often, in seconds, and
    /// use its new rules when it changed (carbon-aggregator: every 10 s; 0: read it once).
    #[arg(long, value_name = "SECS", default_value_t = 10, requires = "aggregator")]
    aggregation_rules_reload: u64,
    /// A carbon-c-relay configuration file (carbon-c-relay mode).
    #[arg(long, value_name = "FILE")]
    crelay_config: Option<PathBuf>,
    /// Listen on this address instead of the configured interfaces.
    #[arg(long)]
    bind: Option<String>,
    /// Plaintext TCP port (0: any free port).
    #[arg(long)]
    line_port: Option<u16>,
    /// Pickle port (0: any free port).
    #[arg(long)]
    pickle_port: Option<u16>,
    /// Plaintext UDP port (0: any free port).
    #[arg(long)]
    udp_port: Option<u16>,
    /// Spool directory; each destination spools to a subdirectory. Without it, a full
    /// memory queue makes the relay stop reading its inputs.
    #[arg(long, value_name = "DIR")]
    spool_dir: Option<PathBuf>,
    /// Spool cap per destination, bytes.
    #[arg(long, default_value_t = 1 << 30)]
    spool_max_bytes: u64,
    /// Points in memory per destination (default: MAX_QUEUE_SIZE, else 100000).
    #[arg(long)]
    queue_points: Option<usize>,
    /// Points per write (default: MAX_DATAPOINTS_PER_MESSAGE, else 2500).
    #[arg(long)]
    batch_size: Option<usize>,
    /// Self-metrics interval in seconds (default: CARBON_METRIC_INTERVAL, else 60; 0: off).
    #[arg(long)]
    metric_interval: Option<u64>,
    /// Seconds the destinations get to flush at shutdown.
    #[arg(long, default_value_t = 10)]
    shutdown_timeout: u64,
    /// Write the bound addresses here once listening (`line=ADDR pickle=ADDR udp=ADDR`).
    #[arg(long, value_name = "FILE")]
    ready_file: Option<PathBuf>,
    /// I/O threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,
}

/// Runs the relay.
pub fn main() -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("graphite-relay: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The relay's settings, and the aggregator's with `--aggregator`.
fn settings(cli: &Cli) -> anyhow::Result<(RelaySettings, Option<AggregatorSettings>)> {
    let section = if cli.aggregator { "aggregator" } else { "relay" };
    let path = cli.config.clone().unwrap_or_else(|| PathBuf::from("conf/carbon.conf"));
    let conf = if path.exists() || cli.config.is_some() {
        CarbonRelayConf::open_section(&path, section, Some(&cli.instance))?
    } else {
        CarbonRelayConf::parse_section("", section, std::path::Path::new("conf"))?
    };
    let aggregator = if cli.aggregator {
        let mut a = conf.aggregator(cli.aggregation_rules.as_deref())?;
        if let Some(forward_all) = cli.aggregation_forward_all {
            a.config.forward_all = forward_all;
        }
        tracing::info!(
            file = %a.rules.path().display(), rules = a.rules.rules().len(),
            forward_all = a.config.forward_all, "read aggregation rules"
        );
        Some(a)
    } else {
        None
    };
    let relay = if let Some(path) = &cli.crelay_config {
        read_crelay(path)?
    } else {
        conf.settings(cli.rules.as_deref(), cli.aggregation_rules.as_deref())?
    };
    Ok((relay, aggregator))
}

fn addr(iface: &str, port: u16, bind: Option<&str>) -> anyhow::Result<SocketAddr> {
    let host = bind.unwrap_or(iface);
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    format!("{host}:{port}")
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve {host}"))?
        .next()
        .with_context(|| format!("{host} resolves to nothing"))
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let (s, aggregator) = settings(&cli)?;
    if s.destinations.is_empty() {
        bail!("no destinations configured");
    }
    let bind = cli.bind.as_deref();
    let pick =
        |spec: &Option<(String, u16)>, over: Option<u16>| -> anyhow::Result<Option<SocketAddr>> {
            match (spec, over) {
                (Some((i, _)), Some(p)) => Ok(Some(addr(i, p, bind)?)),
                (None, Some(p)) => Ok(Some(addr("0.0.0.0", p, bind)?)),
                (Some((i, p)), None) => Ok(Some(addr(i, *p, bind)?)),
                (None, None) => Ok(None),
            }
        };
    let listen = ListenConfig {
        line: pick(&s.listen.line, cli.line_port)?,
        udp: pick(&s.listen.udp, cli.udp_port)?,
        pickle: pick(&s.listen.pickle, cli.pickle_port)?,
        cache_query: None,
        limits: Limits::default(),
    };
    let queue = QueueOptions {
        queue_points: cli.queue_points.or(s.queue_points).unwrap_or(100_000).max(1),
        batch_size: cli.batch_size.or(s.batch_size).unwrap_or(2500).max(1),
        spool_dir: cli.spool_dir.clone(),
        spool_max_bytes: cli.spool_max_bytes,
        ..QueueOptions::default()
    };
    let interval = cli.metric_interval.unwrap_or(s.metric_interval);
    let prefix = s.metric_prefix.clone();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .worker_threads(cli.threads.max(1))
        .thread_name("graphite-relay-io")
        .build()
        .context("cannot start the I/O runtime")?;
    let relay = Arc::new(Relay::start(s.destinations, s.router, s.cleanse, queue)?);
    for (i, d) in relay.destinations().enumerate() {
        tracing::info!(index = i, destination = %d.address(), protocol = ?d.protocol, "destination");
    }
    let reload = Duration::from_secs(cli.aggregation_rules_reload);
    let aggregating = match aggregator {
        Some(a) => {
            // Read again, with the version the reloads compare against.
            let file = store::aggregator::RulesFile::open(a.rules.path())?;
            let inner: Arc<dyn crate::server::Sink> = relay.clone();
            let rules = file.rules().clone();
            let sink =
                AggregatingSink::new(store::aggregator::Aggregator::new(rules, a.config), inner);
            sink.watch_rules(file, reload);
            Some(Arc::new(sink))
        }
        None => None,
    };
    let host = carbon_host(Some(&cli.instance));
    let crelay = s.statistics.map(|st| {
        let prefix = st.prefix_for(&hostname());
        (st, prefix)
    });
    let metrics = SelfMetrics { interval, prefix, host, crelay };
    let result = runtime.block_on(serve(Arc::clone(&relay), aggregating, listen, cli, metrics));
    runtime.shutdown_timeout(Duration::from_secs(5));
    result
}

/// How often the `aggregate` statements' buckets are checked for expiry.
const AGGREGATE_EXPIRY: Duration = Duration::from_millis(250);

/// Where and how often the self-metrics go.
struct SelfMetrics {
    /// Seconds; 0: off.
    interval: u64,
    /// `CARBON_METRIC_PREFIX`.
    prefix: String,
    /// carbon's `<host>-<instance>`.
    host: String,
    /// c-relay mode: its `statistics` settings and the prefix they make of the host name.
    crelay: Option<(CRelayStatistics, String)>,
}

/// carbon-aggregator's self-metrics: the relay's (destinations) under
/// `<prefix>.aggregator.<host>`, `metricsReceived` counting the received points only, plus
/// `allocatedBuffers` and `aggregateDatapointsSent`.
fn aggregator_metrics(
    relay: &Relay,
    agg: &AggregatingSink,
    m: &SelfMetrics,
    state: &mut SelfMetricsState,
    last: &mut store::aggregator::AggregatorStats,
) -> Vec<(String, f64)> {
    let relays = format!("{}.relays.{}.", m.prefix, m.host);
    let base = format!("{}.aggregator.{}", m.prefix, m.host);
    let mut out: Vec<(String, f64)> = relay
        .self_metrics(&m.prefix, &m.host, state)
        .into_iter()
        .filter_map(|(n, v)| {
            let rest = n.strip_prefix(&relays)?;
            (rest != "metricsReceived").then(|| (format!("{base}.{rest}"), v))
        })
        .collect();
    let now = agg.stats();
    out.push((format!("{base}.allocatedBuffers"), agg.buffers() as f64));
    out.push((
        format!("{base}.aggregateDatapointsSent"),
        now.aggregated.saturating_sub(last.aggregated) as f64,
    ));
    out.push((
        format!("{base}.metricsReceived"),
        now.received.saturating_sub(last.received) as f64,
    ));
    *last = now;
    out
}

async fn serve(
    relay: Arc<Relay>,
    aggregating: Option<Arc<AggregatingSink>>,
    listen: ListenConfig,
    cli: Cli,
    m: SelfMetrics,
) -> anyhow::Result<()> {
    let listeners = Listeners::bind(&listen).await?;
    let addrs = listeners.addrs();
    let shutdown = CancellationToken::new();
    // Installed before anything says we listen, so an early SIGTERM finds the handler.
    let signals = StopSignals::install().context("cannot install the SIGTERM/SIGINT handlers")?;
    tokio::spawn(watch_signals(signals, shutdown.clone()));
    let stats = Arc::new(ListenerStats::default());
    {
        let (relay, shutdown) = (Arc::clone(&relay), shutdown.clone());
        let listener_stats = Arc::clone(&stats);
        let aggregating = aggregating.clone();
        let interval = m.interval;
        tokio::spawn(async move {
            let mut health = tokio::time::interval(Duration::from_millis(200));
            let period = Duration::from_secs(interval.max(1));
            let mut metrics =
                tokio::time::interval_at(tokio::time::Instant::now() + period, period);
            let mut state = SelfMetricsState::default();
            let mut last = store::aggregator::AggregatorStats::default();
            let mut collector = Collector::default();
            loop {
                tokio::select! {
                    _ = health.tick() => relay.refresh_health(),
                    _ = metrics.tick(), if interval > 0 => {
                        let now = std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .map_or(0, |d| d.as_secs()) as f64;
                        let (values, to) = match (&m.crelay, &aggregating) {
                            (Some((st, prefix)), _) => {
                                let snapshot = relay
                                    .crelay_snapshot(&listener_stats, relay.aggregate_counters());
                                (collector.collect(st, prefix, snapshot), st.send_to.clone())
                            }
                            (None, Some(a)) => {
                                (aggregator_metrics(&relay, a, &m, &mut state, &mut last), None)
                            }
                            (None, None) => {
                                (relay.self_metrics(&m.prefix, &m.host, &mut state), None)
                            }
                        };
                        let points: Vec<(String, f64, f64)> =
                            values.into_iter().map(|(n, v)| (n, now, v)).collect();
                        let r = Arc::clone(&relay);
                        // Queuing may wait for room: off the I/O threads.
                        let _ = tokio::task::spawn_blocking(move || {
                            r.push_to(&points, to.as_deref())
                        })
                        .await;
                    }
                    () = shutdown.cancelled() => break,
                }
            }
        });
    }
    // carbon-c-relay's `aggregate` statements: its expiry pass runs every 250 ms when idle.
    let expiry = relay.has_aggregates().then(|| {
        let (relay, shutdown) = (Arc::clone(&relay), shutdown.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(AGGREGATE_EXPIRY);
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        let r = Arc::clone(&relay);
                        // Queuing may wait for room: off the I/O threads.
                        let _ = tokio::task::spawn_blocking(move || {
                            r.expire_aggregates(super::unix_now(), false)
                        })
                        .await;
                    }
                    () = shutdown.cancelled() => break,
                }
            }
        })
    });
    let show = |a: Option<SocketAddr>| a.map_or_else(|| "off".to_string(), |a| a.to_string());
    let ready =
        format!("line={} udp={} pickle={}", show(addrs.line), show(addrs.udp), show(addrs.pickle));
    tracing::info!("listening: {ready}");
    if let Some(path) = &cli.ready_file {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, format!("{ready}\n"))
            .and_then(|()| std::fs::rename(&tmp, path))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    let ticker = match &aggregating {
        Some(a) => Some(a.spawn_ticker(shutdown.clone()).context("cannot start the aggregator")?),
        None => None,
    };
    let sink: Arc<dyn crate::server::Sink> = match &aggregating {
        Some(a) => a.clone(),
        None => relay.clone(),
    };
    listeners.serve(sink, Arc::new(MemorySink::new()), stats, shutdown).await?;
    if let (Some(ticker), Some(a)) = (ticker, aggregating) {
        // The ticker has seen the cancellation; emit what is due now, once, before the
        // destinations flush (queuing may wait for room: off the I/O threads).
        let due = tokio::task::spawn_blocking(move || {
            let _ = ticker.join();
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64());
            a.tick(now)
        })
        .await
        .context("the aggregator's last tick panicked")?;
        tracing::info!(aggregates = due, "aggregator stopped");
    }
    if let Some(expiry) = expiry {
        let _ = expiry.await;
        // As carbon-c-relay stops: every bucket complete by now is emitted.
        let r = Arc::clone(&relay);
        let n = tokio::task::spawn_blocking(move || r.expire_aggregates(super::unix_now(), true))
            .await
            .context("the last aggregate expiry panicked")?;
        tracing::info!(aggregates = n, "aggregates of complete buckets emitted");
    }
    tracing::info!("listeners closed; flushing the destinations");
    let timeout = Duration::from_secs(cli.shutdown_timeout);
    let r = Arc::clone(&relay);
    tokio::task::spawn_blocking(move || r.shutdown(timeout)).await.context("shutdown panicked")?;
    for s in relay.stats() {
        tracing::info!(
            destination = %s.name, sent = s.sent, spooled = s.spooled, dropped = s.dropped,
            "stopped"
        );
    }
    Ok(())
}

async fn watch_signals(mut signals: StopSignals, shutdown: CancellationToken) {
    let name = signals.recv().await;
    tracing::info!("{name}: shutting down");
    shutdown.cancel();
    signals.recv().await;
    tracing::warn!("second signal: exiting now; queued points not yet spooled are lost");
    std::process::exit(130);
}
