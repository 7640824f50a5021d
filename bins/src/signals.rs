//! What the long-running programs (server, relay, alert) share at the process edge: the
//! tracing set-up, the SIGTERM/SIGINT handlers and the SIGHUP (reload) handler.

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

/// The SIGHUP handler: "read your configuration again", as Prometheus and Alertmanager
/// take it. Once installed, SIGHUP no longer ends the process.
pub(crate) struct ReloadSignal(Signal);

impl ReloadSignal {
    /// Installs the handler (needs a tokio runtime).
    ///
    /// # Errors
    ///
    /// The runtime cannot register it.
    pub(crate) fn install() -> std::io::Result<ReloadSignal> {
        Ok(ReloadSignal(signal(SignalKind::hangup())?))
    }

    /// Waits for the next SIGHUP (several sent at once may arrive as one).
    pub(crate) async fn recv(&mut self) {
        self.0.recv().await;
    }
}

/// Reloads the alerter's rules file on every SIGHUP until the process ends: the rules are
/// read and validated on a blocking thread, and swapped in between two rounds; an invalid
/// file is logged (file, line, rule) and the old rules stay. The service logs each reload.
pub(crate) async fn reload_alerts_on_sighup(
    mut signal: ReloadSignal,
    service: std::sync::Arc<alert::AlertService>,
) {
    loop {
        signal.recv().await;
        tracing::info!("SIGHUP: reloading the alert rules");
        let service = std::sync::Arc::clone(&service);
        let now = alert::Dispatcher::now();
        // The outcome is logged (and counted) by the service itself.
        let _ = tokio::task::spawn_blocking(move || service.reload_from_file(now)).await;
    }
}
