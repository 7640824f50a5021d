//! `whisper-diff`: see [`bins::whisper_cli::Diff`].

fn main() -> std::process::ExitCode {
    bins::whisper_cli::main::<bins::whisper_cli::Diff>()
}
