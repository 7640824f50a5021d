//! `whisper-info`: see [`bins::whisper_cli::Info`].

fn main() -> std::process::ExitCode {
    bins::whisper_cli::main::<bins::whisper_cli::Info>()
}
