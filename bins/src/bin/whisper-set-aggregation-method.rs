//! `whisper-set-aggregation-method`: see [`bins::whisper_cli::SetAggregationMethod`].

fn main() -> std::process::ExitCode {
    bins::whisper_cli::main::<bins::whisper_cli::SetAggregationMethod>()
}
