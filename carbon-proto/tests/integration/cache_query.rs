//! Tests of `carbon_proto::cache_query`.
