//! `whisper-set-xfilesfactor`: see [`bins::whisper_cli::SetXFilesFactor`].

fn main() -> std::process::ExitCode {
    bins::whisper_cli::main::<bins::whisper_cli::SetXFilesFactor>()
}
