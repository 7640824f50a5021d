//! `whisper-fill`: see [`bins::whisper_cli::Fill`].

fn main() -> std::process::ExitCode {
    bins::whisper_cli::main::<bins::whisper_cli::Fill>()
}
