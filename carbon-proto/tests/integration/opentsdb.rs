//! Tests of `carbon_proto::opentsdb`.
