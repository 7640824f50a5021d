//! Tests of `store::wal`.
