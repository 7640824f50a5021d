//! `whisper-dump`: see [`bins::whisper_cli::Dump`].

fn main() -> std::process::ExitCode {
    bins::whisper_cli::main::<bins::whisper_cli::Dump>()
}
