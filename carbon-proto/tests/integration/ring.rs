//! Tests of `carbon_proto::ring`.
