//! Integration tests of the store.

mod config;
mod index;
mod wal;
