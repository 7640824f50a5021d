//! Integration tests of the whisper crate: differential tests against whisper.py, golden files,
//! model-based and corrupt-input properties.

mod cache;
mod corrupt;
mod create;
mod differential;
mod golden;
mod model;
mod reference;
mod tools;
