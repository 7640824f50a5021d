//! Integration tests of the store.

mod config;
mod engine;
mod index;
mod wal;
