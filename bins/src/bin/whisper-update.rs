//! `whisper-update`: see [`bins::whisper_cli::Update`].

fn main() -> std::process::ExitCode {
    bins::whisper_cli::main::<bins::whisper_cli::Update>()
}
