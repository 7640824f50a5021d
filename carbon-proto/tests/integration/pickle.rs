//! Tests of `carbon_proto::pickle`.
