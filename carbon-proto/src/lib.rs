//! Graphite's ingest wire formats and carbon's hash rings, sans I/O.
//!
//! Every collector, script and relay that talks to Graphite speaks one of a few formats; this
//! crate decodes them from bytes and encodes them into buffers, exactly as carbon (1.1.7),
//! statsd, OpenTSDB and carbon-c-relay do, and never panics or allocates without bound on
//! hostile input. It does no I/O: the server, relay and agent own the sockets.
//!
//! | module | format |
//! |---|---|
//! | [`plaintext`] | `path value timestamp\n` over TCP and UDP (port 2003): a streaming line decoder and the relay encoder |
//! | [`tags`] | Graphite 1.1 tagged names `name;tag=value` (and OpenMetrics `name{tag="v"}`): validation, normalisation, the `_tagged/` on-disk path |
//! | [`pickle`] | the pickle protocol (port 2004): a safe decoder of the opcodes real clients send, and an encoder |
//! | [`cache_query`] | carbon's cache-query protocol (port 7002), as graphite-web's CarbonLink speaks it |
//! | [`statsd`] | statsd lines, with DogStatsD tags |
//! | [`opentsdb`] | OpenTSDB telnet `put` lines, mapped to tagged series |
//! | [`ring`] | carbon's `ConsistentHashRing` and carbon-c-relay's `fnv1a_ch` / `jump_fnv1a_ch` rings |
//!
//! The shared types live at the root: [`MetricName`] (a name that is safe to turn into a file
//! path), [`Datapoint`] and [`Point`].
#![deny(missing_docs)]

mod error;
mod framing;
mod metric;
mod pyfloat;

pub mod cache_query;
pub mod opentsdb;
pub mod pickle;
pub mod plaintext;
pub mod ring;
pub mod statsd;
pub mod tags;

pub use error::{Error, Result};
pub use metric::{Datapoint, MetricName, NameError, Point};
pub use pyfloat::parse_py_float;
