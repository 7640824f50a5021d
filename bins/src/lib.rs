//! The command-line programs of graphite-rs.
//!
//! Today these are the whisper-* tools, drop-in replacements for whisper.py's scripts: the
//! same names, options, output bytes and exit codes (see `README.md` for the few deliberate
//! differences). Each program is a [`whisper_cli::Tool`]; its binary in `src/bin/` only calls
//! [`whisper_cli::main`]. Python-compatible formatting lives in [`pyfmt`].
#![warn(missing_docs)]

pub mod agent;
pub mod alert_cli;
pub mod pyfmt;
pub mod relay;
pub mod server;
mod signals;
pub mod whisper_cli;
