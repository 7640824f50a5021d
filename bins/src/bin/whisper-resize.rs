//! `whisper-resize`: see [`bins::whisper_cli::Resize`].

fn main() -> std::process::ExitCode {
    bins::whisper_cli::main::<bins::whisper_cli::Resize>()
}
