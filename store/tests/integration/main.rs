//! Integration tests of the store.

mod aggregator;
mod config;
mod engine;
mod index;
mod wal;
