//! Tests of `carbon_proto::tags`.
