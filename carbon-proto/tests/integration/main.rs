//! Integration tests of carbon-proto: golden vectors from the reference implementations,
//! round trips and hostile input, one module per format.

mod cache_query;
mod opentsdb;
mod pickle;
mod plaintext;
mod reference;
mod ring;
mod statsd;
mod tags;
