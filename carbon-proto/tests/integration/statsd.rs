//! Tests of `carbon_proto::statsd`.
