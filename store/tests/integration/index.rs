//! Tests of `store::index`.
