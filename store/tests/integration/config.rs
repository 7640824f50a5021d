//! Tests of `store::config`.
