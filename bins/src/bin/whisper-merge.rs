//! `whisper-merge`: see [`bins::whisper_cli::Merge`].

fn main() -> std::process::ExitCode {
    bins::whisper_cli::main::<bins::whisper_cli::Merge>()
}
