//! `graphite-agent`: the collecting agent; see [`bins::agent`].

fn main() -> std::process::ExitCode {
    bins::agent::main()
}
