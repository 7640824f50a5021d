//! `whisper-create`: see [`bins::whisper_cli::Create`].

fn main() -> std::process::ExitCode {
    bins::whisper_cli::main::<bins::whisper_cli::Create>()
}
