//! `graphite-agent`: runs the collectors of [`collect`] and sends their points to carbon.
//!
//! ```text
//! graphite-agent                                  the default set every 10 s to 127.0.0.1:2003
//! graphite-agent --config /etc/graphite-rs/agent.toml
//! graphite-agent --diamond /etc/diamond/diamond.conf   a Diamond host, unchanged
//! graphite-agent --config agent.toml --print-config    the resolved configuration
//! graphite-agent --config agent.toml --once            one run of every collector, to stdout
//! graphite-agent --config agent.toml --ready-file F    statsd's bound addresses, written to F
//! ```
//!
//! With a `[statsd]` table the agent also runs a statsd server (collect::statsd) on a small
//! single-threaded tokio runtime of its own thread; its flushes go to the same sender as the
//! collectors' points, under statsd's own names (`stats.<key>`, `stats_counts.<key>`: no
//! prefix or host node, as statsd sends them).
//!
//! Signals: SIGHUP reads the configuration again (a bad one is logged and the running one
//! kept); an unchanged `[statsd]` table keeps the statsd server running with its figures
//! (gauges, the counters of the current interval), a changed one restarts it after a last
//! flush. SIGTERM and SIGINT stop the collectors, flush statsd a last time, flush the sender
//! (to carbon or its spool) within `--shutdown-timeout`, and exit 0.
//!
//! The signals are blocked in every thread and taken by `sigwait` on the main thread: no
//! handler runs at an arbitrary point, and no thread polls a flag.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use collect::agent::{Agent, AgentConfig, HostNames, PointSink, Registry, run_once};
use collect::sender::Sender;
use collect::statsd::{StatsdAddrs, StatsdConfig, StatsdServer};
use tokio_util::sync::CancellationToken;

/// graphite-agent: host and application collectors with Diamond's metric names.
#[derive(Debug, Parser)]
#[command(name = "graphite-agent", version)]
pub struct Cli {
    /// The agent's TOML configuration (see collect/agent.example.toml).
    #[arg(long, value_name = "FILE", conflicts_with = "diamond")]
    config: Option<PathBuf>,
    /// An existing diamond.conf (and the collector files it points at).
    #[arg(long, value_name = "FILE")]
    diamond: Option<PathBuf>,
    /// Print the resolved configuration (as agent.toml) and exit.
    #[arg(long)]
    print_config: bool,
    /// Run every enabled collector once (two samples a second apart, so rates show) and print
    /// the lines to stdout instead of sending them.
    #[arg(long, visible_alias = "dry-run")]
    once: bool,
    /// Seconds to wait for runs in progress and the sender's flush at exit.
    #[arg(long, default_value_t = 10.0, value_name = "SECONDS")]
    shutdown_timeout: f64,
    /// Write the statsd server's bound addresses here once running, and again after each
    /// reload (`statsd_udp=ADDR statsd_tcp=ADDR`, `off` for none): for scripts and tests that
    /// use port 0.
    #[arg(long, value_name = "FILE")]
    ready_file: Option<PathBuf>,
}

/// Parses the command line, runs, and maps the outcome to an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("graphite-agent: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ =
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

/// Reads the configuration the command line names (or the built-in one).
fn load(cli: &Cli, registry: &Registry) -> anyhow::Result<AgentConfig> {
    let names = HostNames::of_this_host();
    let config = match (&cli.config, &cli.diamond) {
        (Some(path), _) => AgentConfig::from_toml(path, registry, &names)?,
        (None, Some(path)) => AgentConfig::from_diamond(path, registry, &names)?,
        (None, None) => AgentConfig::builtin(registry, &names)?,
    };
    for name in &config.skipped {
        tracing::warn!(section = %name, "not supported by graphite-agent; skipped");
    }
    Ok(config)
}

fn run(cli: &Cli) -> anyhow::Result<()> {
    // Before any thread exists, so every thread inherits the mask.
    let signals = Signals::block()?;
    let registry = Registry::builtin();
    let mut config = load(cli, &registry)?;
    if cli.print_config {
        print!("{}", config.to_toml());
        return Ok(());
    }
    if cli.once {
        let points = run_once(&config, &registry, Duration::from_secs(1))?;
        let mut out = Vec::new();
        for p in &points {
            carbon_proto::plaintext::encode_line(
                &mut out,
                p.name.as_str(),
                p.datapoint.value,
                p.datapoint.timestamp,
            );
        }
        let mut stdout = std::io::stdout().lock();
        return match stdout.write_all(&out).and_then(|()| stdout.flush()) {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
            other => other.context("writing to stdout"),
        };
    }
    let deadline = Duration::from_secs_f64(cli.shutdown_timeout.clamp(0.0, 3600.0));
    let slot: SinkSlot = Arc::new(Mutex::new(Arc::new(Sender::start(config.sender.clone())?)));
    let mut statsd = config.statsd.as_ref().map(|c| Statsd::start(c, &slot)).transpose()?;
    let mut agent = Agent::start(&config, &registry, current(&slot))?;
    write_ready(cli.ready_file.as_deref(), statsd.as_ref())?;
    tracing::info!(collectors = config.collectors.len(), "graphite-agent started");
    while signals.wait() == libc::SIGHUP {
        let new = match load(cli, &registry) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "reload failed; keeping the running configuration");
                continue;
            }
        };
        stop_agent(agent, deadline);
        if !new.same_sender(&config) {
            // Under the lock: no statsd flush is handed to the old sender once it shuts down,
            // and one that comes meanwhile waits for the new sender.
            let mut sender = lock(&slot);
            sender.shutdown(deadline);
            *sender = Arc::new(Sender::start(new.sender.clone())?);
        }
        statsd = reload_statsd(statsd, new.statsd.as_ref(), &slot)?;
        agent = Agent::start(&new, &registry, current(&slot))?;
        config = new;
        write_ready(cli.ready_file.as_deref(), statsd.as_ref())?;
        tracing::info!(collectors = config.collectors.len(), "configuration reloaded");
    }
    stop_agent(agent, deadline);
    // statsd's last flush goes to the sender before the sender flushes.
    if let Some(statsd) = statsd {
        statsd.stop();
    }
    current(&slot).shutdown(deadline);
    tracing::info!("graphite-agent stopped");
    Ok(())
}

/// The sender every point goes to; swapped when a reload changes it.
type SinkSlot = Arc<Mutex<Arc<dyn PointSink>>>;

fn lock(slot: &SinkSlot) -> MutexGuard<'_, Arc<dyn PointSink>> {
    slot.lock().unwrap_or_else(PoisonError::into_inner)
}

fn current(slot: &SinkSlot) -> Arc<dyn PointSink> {
    Arc::clone(&lock(slot))
}

/// The statsd server, running on its own thread.
struct Statsd {
    config: StatsdConfig,
    addrs: StatsdAddrs,
    shutdown: CancellationToken,
    thread: std::thread::JoinHandle<()>,
}

impl Statsd {
    /// Binds (so a port in use fails here) and starts the server; its flushes go to the
    /// slot's sender.
    fn start(config: &StatsdConfig, slot: &SinkSlot) -> anyhow::Result<Statsd> {
        let server = StatsdServer::bind(config)?;
        let addrs = server.local_addrs();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the statsd runtime")?;
        let shutdown = CancellationToken::new();
        let (token, slot) = (shutdown.clone(), Arc::clone(slot));
        let thread = std::thread::Builder::new()
            .name("statsd".into())
            .spawn(move || {
                let sink = move |points| lock(&slot).send(points);
                if let Err(e) = runtime.block_on(server.run(sink, token)) {
                    tracing::error!(error = %e, "the statsd server failed");
                }
            })
            .context("cannot start the statsd thread")?;
        tracing::info!(udp = %show(addrs.udp), tcp = %show(addrs.tcp), "statsd server listening");
        Ok(Statsd { config: config.clone(), addrs, shutdown, thread })
    }

    /// Stops receiving, flushes a last time into the sender, and waits for the thread.
    /// Returns the settings it ran with.
    fn stop(self) -> StatsdConfig {
        self.shutdown.cancel();
        if self.thread.join().is_err() {
            tracing::error!("the statsd server panicked");
        }
        self.config
    }
}

/// The statsd server after a reload: the running one when its settings are unchanged,
/// otherwise stopped (last flush) and started with the new ones. If those cannot start (a
/// port in use), the old settings run again.
fn reload_statsd(
    running: Option<Statsd>,
    new: Option<&StatsdConfig>,
    slot: &SinkSlot,
) -> anyhow::Result<Option<Statsd>> {
    if let (Some(s), Some(c)) = (&running, new)
        && s.config == *c
    {
        return Ok(running);
    }
    let old = running.map(Statsd::stop);
    let Some(new) = new else { return Ok(None) };
    match Statsd::start(new, slot) {
        Ok(s) => Ok(Some(s)),
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "statsd cannot start with the new settings; keeping the old ones");
            old.map(|c| Statsd::start(&c, slot)).transpose()
        }
    }
}

fn show(addr: Option<SocketAddr>) -> String {
    addr.map_or_else(|| "off".to_string(), |a| a.to_string())
}

/// `--ready-file`: the statsd addresses, written whole (a reader never sees half a file).
fn write_ready(path: Option<&Path>, statsd: Option<&Statsd>) -> anyhow::Result<()> {
    let Some(path) = path else { return Ok(()) };
    let addrs = statsd.map(|s| s.addrs).unwrap_or_default();
    let text = format!("statsd_udp={} statsd_tcp={}\n", show(addrs.udp), show(addrs.tcp));
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}

fn stop_agent(agent: Agent, deadline: Duration) {
    let busy = agent.stop(deadline);
    if !busy.is_empty() {
        tracing::warn!(collectors = ?busy, "runs still in progress at shutdown; left behind");
    }
}

/// SIGHUP, SIGTERM and SIGINT, blocked and waited for.
struct Signals {
    set: libc::sigset_t,
}

impl Signals {
    fn block() -> anyhow::Result<Signals> {
        // SAFETY: sigset_t is plain data, initialised by sigemptyset before use.
        let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: `set` is a valid sigset_t; the mask change affects this thread and the
        // threads it starts later.
        let rc = unsafe {
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGHUP);
            libc::sigaddset(&mut set, libc::SIGTERM);
            libc::sigaddset(&mut set, libc::SIGINT);
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut())
        };
        anyhow::ensure!(rc == 0, "cannot block signals: error {rc}");
        Ok(Signals { set })
    }

    /// The next of the three signals.
    fn wait(&self) -> libc::c_int {
        loop {
            let mut sig: libc::c_int = 0;
            // SAFETY: `self.set` is a valid, initialised signal set; `sig` receives the number.
            if unsafe { libc::sigwait(&self.set, &mut sig) } == 0 {
                return sig;
            }
        }
    }
}
