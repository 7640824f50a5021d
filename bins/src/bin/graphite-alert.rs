//! `graphite-alert`: the alerter on its own; see [`bins::alert_cli`].

fn main() -> std::process::ExitCode {
    bins::alert_cli::main()
}
