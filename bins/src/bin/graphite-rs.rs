//! `graphite-rs`: the server and its operations commands; see [`bins::server::app`].

fn main() -> std::process::ExitCode {
    bins::server::app::main()
}
