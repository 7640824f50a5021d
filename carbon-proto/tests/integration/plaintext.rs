//! Tests of `carbon_proto::plaintext`.
