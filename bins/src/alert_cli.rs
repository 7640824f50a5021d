//! `graphite-alert`: the alerter on its own, against a remote graphite-web (or our server's
//! API) or a local Whisper tree.
//!
//! ```text
//! graphite-alert run RULES [--state FILE] [--listen 127.0.0.1:9093] [--source URL | --data-dir DIR]
//!                    [--self-metrics HOST:PORT]
//! graphite-alert check RULES                  validate; print the resolved rules and receivers
//! graphite-alert backtest RULES --rule X [--from -7d] [--until now] [--step 1m] [--source URL | --data-dir DIR]
//! graphite-alert test FILE                    run rule unit tests
//! ```
//!
//! `run` reloads the rules file on SIGHUP (and `POST /-/reload`): an invalid file is logged
//! with its file, line and rule, and the old rules keep running.
//!
//! Exit status: 0 on success (`run` after SIGTERM or SIGINT, with the state saved), 1 when
//! `test` has failures, 2 on errors (a rules file with a typo names the file, line and rule).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use alert::engine::EngineConfig;
use alert::rules::{RulesFile, SourceSpec};
use alert::source::Sources;
use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};

use crate::signals::{ReloadSignal, StopSignals, init_logging, reload_alerts_on_sighup};

/// graphite-alert: alerting on Graphite render targets.
#[derive(Debug, Parser)]
#[command(name = "graphite-alert", version)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Evaluate the rules, notify, and serve the status page and API until SIGTERM; SIGHUP
    /// reloads the rules file.
    Run(RunArgs),
    /// Validate a rules file and print the rules as resolved (defaults applied).
    Check {
        /// The rules file.
        #[arg(long = "rules", value_name = "FILE", required_unless_present = "file")]
        rules: Option<PathBuf>,
        /// The rules file (positional form).
        file: Option<PathBuf>,
    },
    /// Replay one rule over stored history and print when it would have fired.
    Backtest(BacktestArgs),
    /// Run the rule unit tests of a test file (synthetic series, expected alerts).
    Test {
        /// The test file.
        file: PathBuf,
    },
}

/// Where data comes from, for rules whose source is `local`.
#[derive(Debug, Args)]
struct SourceArgs {
    /// A graphite-web or graphite-rs base URL: rules with `source = "local"` read from it.
    #[arg(long, value_name = "URL", conflicts_with = "data_dir")]
    source: Option<String>,
    /// A Whisper tree to read local rules' data from (read-only).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct RunArgs {
    /// The rules file.
    #[arg(long = "rules", value_name = "FILE", required_unless_present = "file")]
    rules: Option<PathBuf>,
    /// The rules file (positional form).
    file: Option<PathBuf>,
    /// The state file (instances, timers, notification log, silences, acks).
    #[arg(long, value_name = "FILE")]
    state: Option<PathBuf>,
    /// Where the status page and API listen.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9093")]
    listen: SocketAddr,
    /// The page's public address, for links in notifications (default: http://LISTEN/).
    #[arg(long, value_name = "URL")]
    external_url: Option<String>,
    /// Send the alerter's self-metrics as carbon plaintext lines to this address
    /// (`host:port`), overriding the rules file's `[self_metrics] carbon`; prefix and
    /// interval come from `[self_metrics]` (default `alert.{host}`, 60 s).
    #[arg(long, value_name = "HOST:PORT", value_parser = parse_carbon)]
    self_metrics: Option<String>,
    #[command(flatten)]
    source: SourceArgs,
}

fn parse_carbon(text: &str) -> Result<String, String> {
    match text.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p != 0) => {
            Ok(text.to_owned())
        }
        _ => Err(format!("{text:?} is not host:port")),
    }
}

#[derive(Debug, Args)]
struct BacktestArgs {
    /// The rules file.
    #[arg(long = "rules", value_name = "FILE", required_unless_present = "file")]
    rules: Option<PathBuf>,
    /// The rules file (positional form).
    file: Option<PathBuf>,
    /// The rule to replay.
    #[arg(long)]
    rule: String,
    /// Start: `now`, `-7d`, Unix seconds or RFC 3339.
    #[arg(long, default_value = "-7d", allow_hyphen_values = true)]
    from: String,
    /// End, as `--from`.
    #[arg(long, default_value = "now", allow_hyphen_values = true)]
    until: String,
    /// Evaluation step (default: the rule's `every`).
    #[arg(long)]
    step: Option<String>,
    #[command(flatten)]
    source: SourceArgs,
}

/// Runs the program.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let result = match cli.command {
        Command::Run(args) => run(args).map(|()| ExitCode::SUCCESS),
        Command::Check { rules, file } => check(&pick(rules, file)),
        Command::Backtest(args) => backtest(args),
        Command::Test { file } => test(&file),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("graphite-alert: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn pick(flag: Option<PathBuf>, positional: Option<PathBuf>) -> PathBuf {
    // clap's required_unless_present guarantees one of them.
    flag.or(positional).unwrap_or_default()
}

/// Loads the rules file and points `local` rules at `--source`, if given.
fn load(path: &Path, source: &SourceArgs) -> anyhow::Result<RulesFile> {
    Ok(load_with(path, source.source.as_deref())?)
}

/// [`load`] with the `--source` URL (also what a reload reads the file with).
fn load_with(path: &Path, source: Option<&str>) -> alert::Result<RulesFile> {
    let mut rules = alert::rules::load(path)?;
    if let Some(url) = source {
        for r in &mut rules.rules {
            if r.source == SourceSpec::Local {
                r.source = SourceSpec::Remote(url.to_owned());
            }
        }
    }
    Ok(rules)
}

/// The sources: the Whisper tree of `--data-dir` as `local`, else remote only. The store is
/// returned so the caller can shut it down.
fn sources(source: &SourceArgs) -> anyhow::Result<(Sources, Option<store::Store>)> {
    let Some(dir) = &source.data_dir else { return Ok((Sources::remote_only(), None)) };
    let mut options = store::StoreOptions::new(dir)?;
    options.wal = None;
    let (store, _) = store::Store::open(options)
        .with_context(|| format!("cannot open the Whisper tree {}", dir.display()))?;
    let backend = Arc::new(render::http::StoreBackend::new(store.clone(), dir));
    Ok((Sources::local(backend), Some(store)))
}

fn check(path: &Path) -> anyhow::Result<ExitCode> {
    let rules = alert::rules::load(path)?;
    let notify = alert::notify::NotifyConfig::from_rules(&rules)?;
    let d = &rules.defaults;
    println!(
        "# {}: {} rules, {} receivers; defaults: source {}, every {}, window {}, lag {}",
        path.display(),
        rules.rules.len(),
        notify.receivers.len(),
        d.source,
        alert::rules::format_duration(d.every),
        alert::rules::format_duration(d.window),
        alert::rules::format_duration(d.lag),
    );
    for r in &rules.rules {
        let dur = alert::rules::format_duration;
        println!("\n[[rule]]  # line {}", r.line);
        println!("name = {:?}", r.name);
        println!("kind = {:?}  # {}", r.kind.name(), r.subject());
        println!("source = \"{}\"", r.source);
        println!(
            "every = {:?}, window = {:?}, lag = {:?}, timeout = {:?}",
            dur(r.every),
            dur(r.window),
            dur(r.lag),
            dur(r.timeout)
        );
        println!(
            "reduce = {:?}, op = {:?}, warn = {:?}, crit = {:?}, clear = {:?}",
            r.reduce, r.op, r.warn, r.crit, r.clear
        );
        println!("for = {:?}, keep_firing_for = {:?}", dur(r.for_), dur(r.keep_firing_for));
        println!(
            "no_data = {:?}, on_error = {:?}, missing = {:?} after {} rounds",
            r.no_data, r.on_error, r.missing, r.missing_after
        );
        println!("min_series = {:?}, max_failing = {:?}", r.min_series, r.max_failing);
        println!("notify = {:?}", r.notify);
    }
    println!("\n# receivers and route, resolved\n{}", toml::to_string_pretty(&notify)?);
    Ok(ExitCode::SUCCESS)
}

/// A time argument: `now`, `-7d`/`-90m` relative to now, Unix seconds or RFC 3339.
fn parse_time(text: &str, now: i64) -> anyhow::Result<i64> {
    let t = text.trim();
    if t == "now" {
        return Ok(now);
    }
    if let Some(ago) = t.strip_prefix('-') {
        return alert::rules::parse_duration(ago)
            .map(|s| now - s)
            .with_context(|| format!("{text:?} is not a time (now, -7d, Unix seconds, RFC 3339)"));
    }
    if let Ok(s) = t.parse::<i64>() {
        return Ok(s);
    }
    t.parse::<jiff::Timestamp>()
        .map(|ts| ts.as_second())
        .with_context(|| format!("{text:?} is not a time (now, -7d, Unix seconds, RFC 3339)"))
}

fn backtest(args: BacktestArgs) -> anyhow::Result<ExitCode> {
    let path = pick(args.rules, args.file);
    let rules = load(&path, &args.source)?;
    let now = alert::Dispatcher::now();
    let from = parse_time(&args.from, now)?;
    let until = parse_time(&args.until, now)?;
    let step = match &args.step {
        Some(s) => alert::rules::parse_duration(s)
            .with_context(|| format!("--step {s:?} is not a duration"))?,
        None => 0,
    };
    let (sources, store) = sources(&args.source)?;
    let report = alert::backtest::run(&rules, &sources, &args.rule, from, until, step);
    if let Some(store) = store {
        let _ = store.shutdown(Duration::from_secs(10));
    }
    print_block(&report?.to_string());
    Ok(ExitCode::SUCCESS)
}

/// Prints `text`, ending it with a newline if it has none.
fn print_block(text: &str) {
    if text.ends_with('\n') {
        print!("{text}");
    } else {
        println!("{text}");
    }
}

fn test(path: &Path) -> anyhow::Result<ExitCode> {
    let report = alert::ruletest::run(path)?;
    print_block(&report.to_string());
    Ok(if report.passed() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn run(args: RunArgs) -> anyhow::Result<()> {
    let path = pick(args.rules, args.file);
    let rules = load(&path, &args.source)?;
    let (sources, store) = sources(&args.source)?;
    let config = EngineConfig {
        external_url: args
            .external_url
            .clone()
            .unwrap_or_else(|| format!("http://{}/", args.listen)),
        ..EngineConfig::default()
    };
    let remote = args.source.source.clone();
    let service = Arc::new(
        alert::AlertService::new(rules, sources, args.state.clone(), config)?
            .with_loader(Box::new(move |p| load_with(p, remote.as_deref())))
            .with_self_metrics_carbon(args.self_metrics.clone()),
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .worker_threads(2)
        .thread_name("graphite-alert-http")
        .build()
        .context("cannot start the runtime")?;
    let result = runtime.block_on(async {
        // Before the page answers: whoever sees it up may send SIGHUP.
        let hangup = ReloadSignal::install().context("cannot install the SIGHUP handler")?;
        tokio::spawn(reload_alerts_on_sighup(hangup, Arc::clone(&service)));
        // Likewise SIGTERM/SIGINT, installed now rather than when the shutdown future is
        // first polled, so a stop sent the moment the port answers is never the default
        // action (which would skip saving the state file).
        let stop = StopSignals::install().context("cannot install the SIGTERM/SIGINT handlers")?;
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        tracing::info!(addr = %args.listen, rules = %path.display(), "graphite-alert running");
        if let Some(carbon) = service.self_metrics_config().carbon {
            tracing::info!(carbon, "sending self-metrics");
        }
        service.start().context("cannot start the alert threads")?;
        let app = alert::api::router(service.api_state());
        axum::serve(listener, app)
            .with_graceful_shutdown(signal(stop))
            .await
            .context("the status page server failed")
    });
    let stopped = {
        let service = Arc::clone(&service);
        runtime.block_on(async move {
            tokio::task::spawn_blocking(move || service.stop(Duration::from_secs(10))).await
        })
    };
    if let Some(store) = store {
        let _ = store.shutdown(Duration::from_secs(10));
    }
    result?;
    match stopped {
        Ok(Ok(())) => {
            tracing::info!("state saved; stopped");
            Ok(())
        }
        Ok(Err(e)) => bail!("the state file was not written: {e}"),
        Err(e) => bail!("stopping panicked: {e}"),
    }
}

/// Waits for SIGTERM or SIGINT.
async fn signal(mut signals: StopSignals) {
    let name = signals.recv().await;
    tracing::info!("{name}: saving state and stopping");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_relative_absolute_and_text() {
        let now = 1_700_000_000;
        assert_eq!(parse_time("now", now).unwrap(), now);
        assert_eq!(parse_time("-7d", now).unwrap(), now - 7 * 86_400);
        assert_eq!(parse_time("-90m", now).unwrap(), now - 5400);
        assert_eq!(parse_time("1600000000", now).unwrap(), 1_600_000_000);
        assert_eq!(parse_time("2023-11-14T22:13:20Z", now).unwrap(), now);
        assert!(parse_time("yesterday", now).is_err());
        assert!(parse_time("-7x", now).is_err());
    }
}
