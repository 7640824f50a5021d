//! `graphite-rs`: the server (a carbon-cache replacement today) and its operations commands.
//!
//! ```text
//! graphite-rs [serve] [--config carbon.conf] [--instance a] [--storage-dir DIR] ...
//! graphite-rs check   [--config carbon.conf] ...     files that differ from the schemas
//! graphite-rs migrate [--config carbon.conf] [--dry-run] [--aggregate] [--nobackup] ...
//! ```
//!
//! With no `--config`, the server reads `./conf/carbon.conf` if there is one (carbon's
//! `$GRAPHITE_ROOT/conf`, the root being the current directory unless `GRAPHITE_ROOT` says
//! otherwise) and otherwise runs on built-in defaults: data in `./storage/whisper`, the
//! write-ahead log in `./storage/wal`, plaintext on TCP and UDP 2003, pickle on 2004, cache
//! queries on 7002, no update rate limit.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use store::config::{CarbonConfig, CarbonConfigBuilder, ConfigEnv, RateLimit, Reloadable};
use store::wal::FsyncPolicy;
use store::{Store, StoreOptions};
use tokio_util::sync::CancellationToken;

use super::store_sink::{StatsBridge, StoreSink};
use super::{Limits, ListenConfig, ListenerStats, Listeners};
use crate::signals::{StopSignals, init_logging};

/// The roles this build can run.
const ROLES: &[&str] = &["cache"];

/// graphite-rs: carbon-cache's protocols, files and config, with a write-ahead log.
#[derive(Debug, Parser)]
#[command(name = "graphite-rs", version, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve(ServeArgs),
    /// List the files whose archives, aggregation method or xFilesFactor differ from what
    /// storage-schemas.conf and storage-aggregation.conf say now. Exit status 1 if any do.
    Check(CheckArgs),
    /// Rewrite the files `check` lists to match the config (resize, new metadata). Run it
    /// with the server stopped.
    Migrate(MigrateArgs),
}

/// Where the config and the data are.
#[derive(Debug, Args, Clone)]
struct ConfigArgs {
    /// carbon.conf to read (its directory is then CONF_DIR, as in carbon). Default:
    /// `$GRAPHITE_CONF_DIR/carbon.conf` or `$GRAPHITE_ROOT/conf/carbon.conf` if it exists.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The instance: `[cache:<instance>]` overrides `[cache]`.
    #[arg(long, default_value = store::config::DEFAULT_INSTANCE)]
    instance: String,
    /// GRAPHITE_ROOT (default: the environment's, else the current directory).
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,
    /// STORAGE_DIR: the Whisper tree is `<DIR>/whisper`, the write-ahead log `<DIR>/wal`.
    #[arg(long, value_name = "DIR")]
    storage_dir: Option<PathBuf>,
    /// LOCAL_DATA_DIR: the Whisper tree itself.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct ServeArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Interface every listener binds (default: each listener's carbon.conf interface, 0.0.0.0).
    #[arg(long, value_name = "ADDR")]
    bind: Option<String>,
    /// Plaintext TCP port (LINE_RECEIVER_PORT); `off` disables, 0 takes any free port.
    #[arg(long, value_name = "PORT", value_parser = parse_port)]
    line_port: Option<Port>,
    /// Plaintext UDP port (UDP_RECEIVER_PORT, on by default here); `off` disables, 0 takes
    /// any free port.
    #[arg(long, value_name = "PORT", value_parser = parse_port)]
    udp_port: Option<Port>,
    /// Pickle port (PICKLE_RECEIVER_PORT); `off` disables, 0 takes any free port.
    #[arg(long, value_name = "PORT", value_parser = parse_port)]
    pickle_port: Option<Port>,
    /// Cache query port (CACHE_QUERY_PORT); `off` disables, 0 takes any free port.
    #[arg(long, value_name = "PORT", value_parser = parse_port)]
    query_port: Option<Port>,
    /// The roles to run, comma-separated (available: cache).
    #[arg(long, value_delimiter = ',', default_value = "cache")]
    roles: Vec<String>,
    /// Points the cache holds at most before the listeners stop reading (MAX_CACHE_SIZE).
    #[arg(long, value_name = "POINTS")]
    max_cache_points: Option<usize>,
    /// When the write-ahead log is fsynced: `interval` (WAL_FSYNC_INTERVAL, 1 s), `always`
    /// (points are acknowledged only once on disk) or `never`.
    #[arg(long, value_name = "MODE")]
    wal_fsync: Option<String>,
    /// Run without a write-ahead log (a crash then loses the cache, as with carbon).
    #[arg(long)]
    no_wal: bool,
    /// Open connections at most (MAX_RECEIVER_CONNECTIONS; default 10000).
    #[arg(long, value_name = "N")]
    max_connections: Option<usize>,
    /// How long shutdown may take to write the cache; what is left stays in the log.
    #[arg(long, value_name = "SECONDS", default_value_t = 120)]
    shutdown_timeout: u64,
    /// Write the bound addresses here once serving (`line=ADDR udp=ADDR ...`): for scripts and
    /// tests that use port 0.
    #[arg(long, value_name = "FILE")]
    ready_file: Option<PathBuf>,
    /// Write the process id here.
    #[arg(long, value_name = "FILE")]
    pidfile: Option<PathBuf>,
    #[command(flatten)]
    aggregation: Box<AggregationArgs>,
    #[command(flatten)]
    statsd: Box<StatsdArgs>,
    #[command(flatten)]
    http: Box<super::http::HttpArgs>,
}

/// The aggregator role (carbon-aggregator's rules in front of the store).
#[derive(Debug, Args)]
struct AggregationArgs {
    /// aggregation-rules.conf: also run carbon-aggregator's role, storing the aggregated
    /// points with the received ones.
    #[arg(long, value_name = "FILE")]
    aggregation_rules: Option<PathBuf>,
    /// With --aggregation-rules: also store each received point (carbon's FORWARD_ALL,
    /// default true), unless its name is one of its own aggregates.
    #[arg(long, value_name = "BOOL", default_value_t = true, num_args = 0..=1,
          default_missing_value = "true", action = clap::ArgAction::Set)]
    aggregation_forward_all: bool,
    /// With --aggregation-rules: look at the rules file this often, in seconds, and use its
    /// new rules when it changed (carbon-aggregator: every 10 s; 0: read it once).
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    aggregation_rules_reload: u64,
}

/// The statsd server inside the main server.
#[derive(Debug, Args)]
struct StatsdArgs {
    /// Run a statsd server on this address, UDP and TCP (e.g. `127.0.0.1:8125`; off by
    /// default). Its flushes go into the store like received points.
    #[arg(long = "statsd", value_name = "ADDR")]
    addr: Option<SocketAddr>,
    /// The statsd flush interval (statsd's flushInterval): keep it at least the finest
    /// retention step, or flushes overwrite each other.
    #[arg(long = "statsd-flush-interval", value_name = "MS", default_value_t = 10_000)]
    flush_interval: u64,
}

/// A listener's port from the command line. (In carbon.conf a port of 0 disables the
/// listener, as in carbon; on the command line 0 is the usual "any free port".)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Port {
    Off,
    At(u16),
}

fn parse_port(text: &str) -> Result<Port, String> {
    if text == "off" {
        return Ok(Port::Off);
    }
    text.parse().map(Port::At).map_err(|_| format!("{text:?} is not a port (0-65535) or `off`"))
}

#[derive(Debug, Args)]
struct CheckArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Print only the paths.
    #[arg(long)]
    paths_only: bool,
}

#[derive(Debug, Args)]
struct MigrateArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Only say what would change.
    #[arg(long)]
    dry_run: bool,
    /// Aggregate old points into the new archives' intervals (whisper-resize --aggregate).
    #[arg(long)]
    aggregate: bool,
    /// Do not keep the old files as `<file>.bak`.
    #[arg(long)]
    nobackup: bool,
    /// Migrate even though the write-ahead log is locked (a server seems to be running).
    #[arg(long)]
    force: bool,
}

/// Runs the program.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let result = match cli.command {
        None => serve(cli.serve).map(|()| ExitCode::SUCCESS),
        Some(Command::Serve(args)) => serve(args).map(|()| ExitCode::SUCCESS),
        Some(Command::Check(args)) => check(&args),
        Some(Command::Migrate(args)) => migrate(&args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("graphite-rs: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// carbon.conf as carbon would read it, with the command line's directories on top.
fn load_config(args: &ConfigArgs) -> anyhow::Result<CarbonConfig> {
    let mut env = ConfigEnv::from_process();
    if let Some(root) = &args.root {
        env.graphite_root = Some(root.to_string_lossy().into_owned());
    } else if env.graphite_root.is_none() && args.config.is_none() {
        // The embedded default: everything under the current directory.
        env.graphite_root = Some(".".into());
    }
    let mut builder = CarbonConfigBuilder::new();
    builder.env(env).instance(&args.instance);
    if let Some(file) = &args.config {
        builder.config_file(file);
    }
    let mut config = builder.build()?;
    for warning in config.warnings() {
        tracing::warn!("{warning}");
    }
    if let Some(dir) = &args.storage_dir {
        config.storage_dir = dir.clone();
        config.local_data_dir = dir.join("whisper");
        config.wal_dir = dir.join("wal");
    }
    if let Some(dir) = &args.data_dir {
        config.local_data_dir = dir.clone();
    }
    match &config.config_file {
        Some(f) => tracing::info!(file = %f.display(), "read carbon.conf"),
        None => tracing::info!("no carbon.conf: built-in defaults"),
    }
    Ok(config)
}

fn store_options(config: &CarbonConfig, args: &ServeArgs) -> anyhow::Result<StoreOptions> {
    let mut options = StoreOptions::from_carbon(config)?;
    if config.config_file.is_none() {
        // carbon's code default is 500 updates a second, a limit for Python's writer.
        options.max_updates_per_second = RateLimit::Unlimited;
    }
    if let Some(n) = args.max_cache_points {
        options.max_cache_points = n;
    }
    if args.no_wal {
        options.wal = None;
    }
    if let (Some(mode), Some(wal)) = (&args.wal_fsync, options.wal.as_mut()) {
        wal.fsync = match mode.as_str() {
            "interval" => FsyncPolicy::Interval(match config.wal_fsync {
                FsyncPolicy::Interval(d) => d,
                _ => Duration::from_secs(1),
            }),
            "always" => FsyncPolicy::Always,
            "never" => FsyncPolicy::Never,
            other => bail!("--wal-fsync {other:?}: expected interval, always or never"),
        };
    }
    Ok(options)
}

fn listen_config(config: &CarbonConfig, args: &ServeArgs) -> anyhow::Result<ListenConfig> {
    let addr = |interface: &str, port: Option<u16>| -> anyhow::Result<Option<SocketAddr>> {
        let Some(port) = port else { return Ok(None) };
        let interface = args.bind.as_deref().unwrap_or(interface);
        let found = (interface, port)
            .to_socket_addrs()
            .with_context(|| format!("cannot resolve interface {interface:?}"))?
            .next();
        found.map(Some).with_context(|| format!("no address for interface {interface:?}"))
    };
    // The command line's port, else carbon.conf's (where 0 disables).
    let port = |cli: Option<Port>, conf: u16, enabled: bool| match cli {
        Some(Port::Off) => None,
        Some(Port::At(p)) => Some(p),
        None => (enabled && conf != 0).then_some(conf),
    };
    // carbon's default is off; with no config file ours is on (carbon's port).
    let udp_on = config.enable_udp_listener || config.config_file.is_none();
    let limits = Limits {
        max_connections: args.max_connections.or(config.max_receiver_connections).unwrap_or(10_000),
        idle_timeout: config.metric_client_idle_timeout.or(Limits::default().idle_timeout),
        max_pickle_frame: config.pickle_receiver_max_length,
        ..Limits::default()
    };
    Ok(ListenConfig {
        line: addr(
            &config.line_receiver_interface,
            port(args.line_port, config.line_receiver_port, true),
        )?,
        udp: addr(
            &config.udp_receiver_interface,
            port(args.udp_port, config.udp_receiver_port, udp_on),
        )?,
        pickle: addr(
            &config.pickle_receiver_interface,
            port(args.pickle_port, config.pickle_receiver_port, true),
        )?,
        cache_query: addr(
            &config.cache_query_interface,
            port(args.query_port, config.cache_query_port, true),
        )?,
        limits,
    })
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    for role in &args.roles {
        if !ROLES.contains(&role.as_str()) {
            bail!("unknown role {role:?} (this build has: {})", ROLES.join(", "));
        }
    }
    let config = load_config(&args.config)?;
    let options = store_options(&config, &args)?;
    let listen = listen_config(&config, &args)?;
    if let Some(pidfile) = &args.pidfile {
        std::fs::write(pidfile, format!("{}\n", std::process::id()))
            .with_context(|| format!("cannot write {}", pidfile.display()))?;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .worker_threads(4)
        .thread_name("graphite-rs-io")
        .on_thread_start(short_time_slice)
        .build()
        .context("cannot start the I/O runtime")?;
    let aggregator = load_aggregator(&args)?;
    let result = runtime.block_on(run(args, options, listen, aggregator));
    runtime.shutdown_timeout(Duration::from_secs(5));
    result
}

async fn run(
    args: ServeArgs,
    options: StoreOptions,
    listen: ListenConfig,
    aggregator: Option<(store::aggregator::Aggregator, store::aggregator::RulesFile)>,
) -> anyhow::Result<()> {
    // Sockets first, so a port in use fails before the (possibly long) log replay.
    let listeners = Listeners::bind(&listen).await?;
    let http_listener = super::http::bind(&args.http, args.bind.as_deref()).await?;
    let http_addr = http_listener.as_ref().and_then(|l| l.local_addr().ok());
    let addrs = listeners.addrs();
    let statsd = match args.statsd.addr {
        Some(addr) => Some(collect::statsd::StatsdServer::bind(&collect::statsd::StatsdConfig {
            udp: Some(addr),
            tcp: Some(addr),
            flush_interval_ms: args.statsd.flush_interval,
            ..collect::statsd::StatsdConfig::default()
        })?),
        None => None,
    };
    let statsd_addrs = statsd.as_ref().map(|s| s.local_addrs()).unwrap_or_default();
    let data_dir = options.data_dir.clone();
    let (store, report) = tokio::task::spawn_blocking(move || Store::open(options))
        .await
        .context("the store's opening panicked")?
        .with_context(|| format!("cannot open the store in {}", data_dir.display()))?;
    tracing::info!(
        data_dir = %data_dir.display(),
        metrics = report.metrics,
        replayed_points = report.replayed_points,
        took_ms = report.took.as_millis() as u64,
        "store open"
    );
    let stopping = Arc::new(AtomicBool::new(false));
    let sink = Arc::new(StoreSink::new(store.clone(), Arc::clone(&stopping)));
    let reload = Duration::from_secs(args.aggregation.aggregation_rules_reload);
    let aggregating = aggregator.map(|(a, file)| {
        let agg = super::AggregatingSink::new(a, Arc::clone(&sink) as Arc<dyn super::Sink>);
        agg.watch_rules(file, reload);
        Arc::new(agg)
    });
    let stats = Arc::new(ListenerStats::default());
    let shutdown = CancellationToken::new();

    // Installed here, before the ready file says we listen: a SIGTERM sent the moment after
    // must find the handler (a spawned task installing it could run too late, and the
    // default action would kill the server).
    let signals = StopSignals::install().context("cannot install the SIGTERM/SIGINT handlers")?;
    tokio::spawn(watch_signals(signals, shutdown.clone(), Arc::clone(&stopping)));
    {
        let (stats, store, shutdown) = (Arc::clone(&stats), store.clone(), shutdown.clone());
        tokio::spawn(async move {
            let mut bridge = StatsBridge::default();
            let mut warnings = Warnings::default();
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        bridge.forward(&stats, &store);
                        warnings.check(&stats);
                    }
                    () = shutdown.cancelled() => break,
                }
            }
        });
    }
    let show = |a: Option<SocketAddr>| a.map_or_else(|| "off".to_string(), |a| a.to_string());
    let http = match http_listener {
        Some(l) => {
            Some(super::http::spawn(l, store.clone(), &data_dir, &args.http, shutdown.clone())?)
        }
        None => None,
    };
    let ready = format!(
        "line={} udp={} pickle={} cache_query={} http={} statsd_udp={} statsd_tcp={}",
        show(addrs.line),
        show(addrs.udp),
        show(addrs.pickle),
        show(addrs.cache_query),
        show(http_addr),
        show(statsd_addrs.udp),
        show(statsd_addrs.tcp)
    );
    tracing::info!("listening: {ready}");
    if let Some(path) = &args.ready_file {
        write_atomically(path, &format!("{ready}\n"))?;
    }

    let ticker = match &aggregating {
        Some(a) => Some(a.spawn_ticker(shutdown.clone()).context("cannot start the aggregator")?),
        None => None,
    };
    // With the aggregator role, received points (statsd's flushes too) go through it.
    let received: Arc<dyn super::Sink> = match aggregating {
        Some(a) => a,
        None => sink.clone(),
    };
    // statsd's flushes go into the same sink as the listeners' points; its last flush (at
    // shutdown) lands before the store stops.
    let statsd = statsd.map(|server| {
        let (sink, stats) = (Arc::clone(&received), Arc::clone(&stats));
        tokio::spawn(server.run(
            move |points| {
                let raw: Vec<super::RawPoint<'_>> =
                    points.iter().map(super::RawPoint::from).collect();
                ListenerStats::add(&stats.points, raw.len() as u64);
                tokio::task::block_in_place(|| super::Sink::ingest(&*sink, &raw));
            },
            shutdown.clone(),
        ))
    });
    listeners.serve(received, sink, Arc::clone(&stats), shutdown).await?;
    if let Some(statsd) = statsd {
        match statsd.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "the statsd server failed"),
            Err(e) => tracing::error!(error = %e, "the statsd server panicked"),
        }
    }
    if let Some(ticker) = ticker {
        let _ = tokio::task::spawn_blocking(move || ticker.join()).await;
    }
    if let Some(http) = http {
        // The HTTP API reads the store: its requests finish before the store stops.
        match http.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "the HTTP API failed"),
            Err(e) => tracing::error!(error = %e, "the HTTP API panicked"),
        }
    }
    StatsBridge::default().forward(&stats, &store);
    tracing::info!(
        cached_points = store.cache_size(),
        "listeners closed; writing the cache to disk"
    );
    let started = Instant::now();
    let timeout = Duration::from_secs(args.shutdown_timeout);
    tokio::task::spawn_blocking(move || store.shutdown(timeout))
        .await
        .context("the store's shutdown panicked")?
        .context("the store did not shut down cleanly")?;
    tracing::info!(took_ms = started.elapsed().as_millis() as u64, "stopped");
    if let Some(pidfile) = &args.pidfile {
        let _ = std::fs::remove_file(pidfile);
    }
    Ok(())
}

/// The aggregator role, when `--aggregation-rules` names a file (read before anything starts,
/// so that a bad file stops the server at once, naming its line).
fn load_aggregator(
    args: &ServeArgs,
) -> anyhow::Result<Option<(store::aggregator::Aggregator, store::aggregator::RulesFile)>> {
    use store::aggregator::{Aggregator, AggregatorConfig, RulesFile};
    let Some(path) = &args.aggregation.aggregation_rules else { return Ok(None) };
    if !path.exists() {
        bail!("--aggregation-rules {}: no such file", path.display());
    }
    let file = RulesFile::open(path)?;
    let rules = file.rules().clone();
    tracing::info!(file = %path.display(), rules = rules.rules().len(), "read aggregation rules");
    let config = AggregatorConfig {
        forward_all: args.aggregation.aggregation_forward_all,
        ..AggregatorConfig::default()
    };
    Ok(Some((Aggregator::new(rules, config), file)))
}

/// Once a minute at most, a warning for what went wrong meanwhile: malformed input (each line
/// or frame is at debug level only, to keep a bad sender from flooding the log) and senders
/// held back by a full cache.
#[derive(Default)]
struct Warnings {
    last: Option<Instant>,
    seen: [u64; 3],
}

impl Warnings {
    fn check(&mut self, stats: &ListenerStats) {
        if self.last.is_some_and(|t| t.elapsed() < Duration::from_secs(60)) {
            return;
        }
        let now = [
            ListenerStats::get(&stats.bad_lines),
            ListenerStats::get(&stats.bad_frames) + ListenerStats::get(&stats.bad_items),
            ListenerStats::get(&stats.backpressure_waits),
        ];
        let [lines, frames, waits] = [0, 1, 2].map(|i| now[i] - self.seen[i]);
        if lines + frames > 0 {
            tracing::warn!(lines, frames, "skipped malformed input (RUST_LOG=debug shows each)");
        }
        if waits > 0 {
            tracing::warn!(waits, "the cache was full: listeners stopped reading until it drained");
        }
        if lines + frames + waits > 0 {
            self.last = Some(Instant::now());
            self.seen = now;
        }
    }
}

/// Asks the kernel for a short time slice (0.1 ms) for the calling thread: with Linux's EEVDF
/// scheduler (6.12+) a woken thread with a short slice gets an early deadline and runs
/// promptly even when the cores are saturated, so a read waiting behind a busy ingest thread
/// waits less. It does not change the thread's share of CPU. Older kernels ignore it
/// (`sched_setattr` fails or the field is unused); any failure is ignored.
fn short_time_slice() {
    /// `struct sched_attr` of `sched_setattr(2)`.
    #[repr(C)]
    #[derive(Default)]
    struct SchedAttr {
        size: u32,
        sched_policy: u32,
        sched_flags: u64,
        sched_nice: i32,
        sched_priority: u32,
        sched_runtime: u64,
        sched_deadline: u64,
        sched_period: u64,
        sched_util_min: u32,
        sched_util_max: u32,
    }
    let attr = SchedAttr {
        size: std::mem::size_of::<SchedAttr>() as u32,
        sched_policy: libc::SCHED_OTHER as u32,
        sched_runtime: 100_000,
        ..SchedAttr::default()
    };
    // SAFETY: sched_setattr reads `attr` (a valid, fully initialised struct whose size field
    // matches) for the calling thread (pid 0) and writes nothing.
    let _ = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0u32) };
}

/// SIGTERM or SIGINT: stop gracefully. A second one: exit now (unwritten points stay in the
/// write-ahead log for the next start).
async fn watch_signals(
    mut signals: StopSignals,
    shutdown: CancellationToken,
    stopping: Arc<AtomicBool>,
) {
    let name = signals.recv().await;
    tracing::info!("{name}: shutting down");
    stopping.store(true, Ordering::SeqCst);
    shutdown.cancel();
    signals.recv().await;
    tracing::warn!("second signal: exiting now; unwritten points stay in the write-ahead log");
    std::process::exit(130);
}

fn write_atomically(path: &Path, text: &str) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// The schema and aggregation files as the server would read them.
fn audit(args: &ConfigArgs) -> anyhow::Result<(CarbonConfig, store::audit::AuditReport)> {
    let config = load_config(args)?;
    let schemas = Reloadable::<store::config::StorageSchemas>::open(config.storage_schemas_path())?;
    let aggregation =
        Reloadable::<store::config::StorageAggregation>::open(config.storage_aggregation_path())?;
    for w in schemas.get().warnings().iter().chain(aggregation.get().warnings()) {
        tracing::warn!("{w}");
    }
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(1, 8);
    let report = store::audit::audit(
        &config.local_data_dir,
        schemas.get(),
        aggregation.get(),
        config.tag_hash_filenames,
        threads,
    )?;
    for (path, error) in &report.errors {
        tracing::error!(path = %path.display(), "{error}");
    }
    Ok((config, report))
}

fn check(args: &CheckArgs) -> anyhow::Result<ExitCode> {
    let (config, report) = audit(&args.config)?;
    let mut out = String::new();
    for m in &report.mismatches {
        if args.paths_only {
            out.push_str(&format!("{}\n", m.path.display()));
        } else {
            out.push_str(&format!("{}: {}\n", m.path.display(), m.differences().join("; ")));
        }
    }
    print!("{out}");
    eprintln!(
        "{} files checked in {}: {} differ from the config, {} unreadable",
        report.checked,
        config.local_data_dir.display(),
        report.mismatches.len(),
        report.errors.len()
    );
    Ok(if report.mismatches.is_empty() && report.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn migrate(args: &MigrateArgs) -> anyhow::Result<ExitCode> {
    let (config, report) = audit(&args.config)?;
    if !args.dry_run && !args.force {
        ensure_server_stopped(&config.wal_dir)?;
    }
    let options =
        store::audit::MigrateOptions { aggregate: args.aggregate, keep_backup: !args.nobackup };
    let now = whisper::now();
    let mut failed = 0usize;
    for m in &report.mismatches {
        let what = m.differences().join("; ");
        if args.dry_run {
            println!("would migrate {}: {what}", m.path.display());
            continue;
        }
        match store::audit::migrate(m, options, now) {
            Ok(()) => println!("migrated {}: {what}", m.path.display()),
            Err(e) => {
                failed += 1;
                tracing::error!(path = %m.path.display(), "cannot migrate: {e}");
            }
        }
    }
    eprintln!(
        "{} files checked, {} {}, {} failed",
        report.checked,
        report.mismatches.len() - failed,
        if args.dry_run { "to migrate" } else { "migrated" },
        failed
    );
    Ok(if failed == 0 && report.errors.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// Refuses to migrate while a server holds the write-ahead log: it would keep writing to the
/// old files, and those points would be lost when the new file is renamed into place.
fn ensure_server_stopped(wal_dir: &Path) -> anyhow::Result<()> {
    use std::os::fd::AsRawFd;
    let lock = wal_dir.join(store::wal::LOCK_FILE);
    let Ok(file) = std::fs::File::open(&lock) else { return Ok(()) };
    // SAFETY: flock on a descriptor we own, with no pointers involved.
    let held = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0;
    if held {
        bail!(
            "{} is locked: a server is running on this data; stop it first (or --force)",
            lock.display()
        );
    }
    Ok(())
}
