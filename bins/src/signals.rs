//! What the long-running programs (server, relay, alert) share at the process edge: the
//! tracing set-up and the SIGTERM/SIGINT handlers.

use tokio::signal::unix::{Signal, SignalKind, signal};

/// Logs to stderr at `RUST_LOG` (default `info`), in colour only on a terminal. A second
/// call does nothing.
pub(crate) fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .try_init();
}

/// The SIGTERM and SIGINT handlers, installed together.
pub(crate) struct StopSignals {
    /// SIGTERM.
    term: Signal,
    /// SIGINT.
    int: Signal,
}

impl StopSignals {
    /// Installs both handlers (needs a tokio runtime).
    ///
    /// # Errors
    ///
    /// The runtime cannot register a handler.
    pub(crate) fn install() -> std::io::Result<StopSignals> {
        Ok(StopSignals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    /// Waits for the next SIGTERM or SIGINT and names it (`"SIGTERM"` or `"SIGINT"`).
    pub(crate) async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}
