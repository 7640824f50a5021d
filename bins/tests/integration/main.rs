//! Integration tests of the whisper-* tools: each one is run as Debian's Python script and as
//! our binary on the same files at the same instant, and the output bytes, exit codes and
//! resulting files are compared.

#[path = "../../../whisper/tests/integration/reference.rs"]
mod reference;

#[path = "../../../collect/tests/carbon/mod.rs"]
mod carbon;

mod agent;
mod aggregator;
mod alert;
mod federation;
mod file_tools;
mod fixtures;
mod harness;
mod http;
mod listeners;
mod read_tools;
mod relay;
mod relay_aggregate;
mod relay_crelay;
mod server;
mod statsd;
mod support;
mod ui;
mod write_tools;
