//! `graphite-agent`: runs the collectors of [`collect`] and sends their points to carbon.
//!
//! ```text
//! graphite-agent                                  the default set every 10 s to 127.0.0.1:2003
//! graphite-agent --config /etc/graphite-rs/agent.toml
//! graphite-agent --diamond /etc/diamond/diamond.conf   a Diamond host, unchanged
//! graphite-agent --config agent.toml --print-config    the resolved configuration
//! graphite-agent --config agent.toml --once            one run of every collector, to stdout
//! ```
//!
//! Signals: SIGHUP reads the configuration again (a bad one is logged and the running one
//! kept); SIGTERM and SIGINT stop the collectors, flush the sender (to carbon or its spool)
//! within `--shutdown-timeout`, and exit 0.
//!
//! The signals are blocked in every thread and taken by `sigwait` on the main thread: no
//! handler runs at an arbitrary point, and no thread polls a flag.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use collect::agent::{Agent, AgentConfig, HostNames, PointSink, Registry, run_once};
use collect::sender::Sender;

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
    let mut sender: Arc<dyn PointSink> = Arc::new(Sender::start(config.sender.clone())?);
    let mut agent = Agent::start(&config, &registry, Arc::clone(&sender))?;
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
            sender.shutdown(deadline);
            sender = Arc::new(Sender::start(new.sender.clone())?);
        }
        agent = Agent::start(&new, &registry, Arc::clone(&sender))?;
        config = new;
        tracing::info!(collectors = config.collectors.len(), "configuration reloaded");
    }
    stop_agent(agent, deadline);
    sender.shutdown(deadline);
    tracing::info!("graphite-agent stopped");
    Ok(())
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
