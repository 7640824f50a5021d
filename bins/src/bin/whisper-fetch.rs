//! `whisper-fetch`: see [`bins::whisper_cli::Fetch`].

fn main() -> std::process::ExitCode {
    bins::whisper_cli::main::<bins::whisper_cli::Fetch>()
}
