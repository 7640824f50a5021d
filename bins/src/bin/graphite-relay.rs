//! `graphite-relay`: carbon-relay / carbon-c-relay routing; see [`bins::relay::app`].

fn main() -> std::process::ExitCode {
    bins::relay::app::main()
}
