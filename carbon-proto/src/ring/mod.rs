//! Hash rings that place metrics exactly where carbon and carbon-c-relay place them.
//!
//! A relay in front of several carbon-caches, and graphite-web asking those caches for
//! unwritten points (CarbonLink), must agree on which cache owns which metric. They agree by
//! computing the same ring, so ours has to be bit-compatible with the reference:
//!
//! - [`ConsistentHashRing`] is carbon's (1.1.7) `ConsistentHashRing`, as carbon-relay's
//!   `consistent-hashing` router and graphite-web's CarbonLink use it, with its hash types
//!   ([`HashType`]: `carbon_ch`, `fnv1a_ch`, `mmh3_ch`), its replica key text, its collision
//!   probing, the quirks of its `get_nodes` walk, and the router's `REPLICATION_FACTOR` and
//!   `DIVERSE_REPLICAS`.
//! - [`FastHashRing`] is carbon's (1.1) `FastHashRing`, as the `fast-hashing` and
//!   `fast-aggregated-hashing` routers use it: one position per node, a walk from
//!   `hash(key) % nodes`, with the same replication settings.
//! - [`CRelayRing`] is carbon-c-relay's (3.7) `carbon_ch`, `fnv1a_ch` and `jump_fnv1a_ch`
//!   clusters ([`CRelayHash`]) with `replication`.
//!
//! A node is a [`Destination`]: `host:port[:instance]`. carbon identifies a node by
//! `(host, instance)` (the port only says where to connect); carbon-c-relay by `host:port`.
//! [`Destination::parse`] and [`parse_destinations`] read carbon's `DESTINATIONS` and
//! graphite-web's `CARBONLINK_HOSTS` syntax.
//!
//! Lookups hash the key once, binary-search a sorted position table and return a slice of a
//! table of replicas precomputed for every ring entry: no allocation and no walk per lookup.
//!
//! ```
//! use carbon_proto::ring::{ConsistentHashRingBuilder, parse_destinations};
//!
//! let nodes = parse_destinations("127.0.0.1:2104:a, 127.0.0.1:2204:b")?;
//! let ring = ConsistentHashRingBuilder::new().build(nodes)?;
//! assert_eq!(ring.get_node("foo.bar").instance(), Some("b"));
//! let dest: Vec<String> = ring.destinations("foo.bar").map(|d| d.to_string()).collect();
//! assert_eq!(dest, ["127.0.0.1:2204:b"]);
//! # Ok::<(), carbon_proto::Error>(())
//! ```

mod carbon;
mod crelay;
mod fast;
mod hash;
mod index;

use std::fmt;
use std::str::FromStr;

pub use carbon::{ConsistentHashRing, ConsistentHashRingBuilder, GetNodes, Replicas, carbon_hash};
pub use crelay::{CRelayHash, CRelayRing, CRelayRingBuilder, Route};
pub use fast::{FastHashRing, FastHashRingBuilder};

/// A hash ring that cannot be built, or a destination string that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RingError {
    /// The ring has no nodes, so a lookup would have nothing to return.
    #[error("hash ring has no nodes")]
    Empty,
    /// The same node is in the ring twice. carbon's relay refuses this ("destination instance
    /// already configured"); carbon-c-relay would route to it as one server.
    #[error("destination {destination} is in the ring twice (same {identity})")]
    DuplicateNode {
        /// The second destination with that identity.
        destination: Box<Destination>,
        /// What makes two destinations the same node in this ring.
        identity: &'static str,
    },
    /// A replica count of 0: no node would have a place on the ring.
    #[error("replica count must be at least 1")]
    ZeroReplicas,
    /// A replication factor of 0: no metric would go anywhere.
    #[error("replication factor must be at least 1")]
    ZeroReplication,
    /// A replication factor carbon-c-relay refuses: more than the servers, or more than 255.
    #[error("replication factor {replication} is larger than {max}")]
    ReplicationTooLarge {
        /// The factor asked for.
        replication: usize,
        /// The largest allowed: the number of servers, at most 255.
        max: usize,
    },
    /// More nodes than a ring can index.
    #[error("{nodes} nodes with {replicas} replicas each are too many for one ring")]
    TooManyNodes {
        /// The number of nodes.
        nodes: usize,
        /// Ring entries per node.
        replicas: u32,
    },
    /// A hash type name that is not known.
    #[error("unknown hash type {name:?}")]
    UnknownHashType {
        /// The name given.
        name: String,
    },
    /// A destination string that does not parse.
    #[error("bad destination {text:?}: {problem}")]
    BadDestination {
        /// The string, as given.
        text: String,
        /// What is wrong with it.
        problem: DestinationProblem,
    },
}

/// What is wrong with a destination string (see [`Destination::parse`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DestinationProblem {
    /// No `:port` after the host (or no `]:` after a bracketed IPv6 address).
    #[error("no port")]
    MissingPort,
    /// The port is not a number from 0 to 65535.
    #[error("port is not a number from 0 to 65535")]
    BadPort,
    /// The host is empty.
    #[error("empty host")]
    EmptyHost,
}

/// A carbon destination: where to connect (`host`, `port`) and which node of the ring it is
/// (`host` and `instance`, for carbon).
///
/// carbon writes it `host:port[:instance]`, and `[address]:port[:instance]` for IPv6; without an
/// instance, the instance is Python's `None`, which is not the same node as an empty instance.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Destination {
    host: String,
    port: u16,
    instance: Option<String>,
}

impl Destination {
    /// A destination. `host` is kept as written (carbon hashes the text, not the address).
    pub fn new(host: impl Into<String>, port: u16, instance: Option<String>) -> Destination {
        Destination { host: host.into(), port, instance }
    }

    /// Reads one destination as carbon's `parseDestination` (and graphite-web's `parseHost`
    /// for `CARBONLINK_HOSTS`) does.
    ///
    /// - Surrounding whitespace is trimmed.
    /// - `[address]:port...` is an IPv6 address: the host is what lies between `[` and the last
    ///   `]:`. Otherwise the host ends at the first `:`.
    /// - After the port, everything past the next `:` is the instance, colons included; a
    ///   trailing `:` makes an empty instance, which is not the same as no instance.
    ///
    /// ```
    /// use carbon_proto::ring::Destination;
    /// let d = Destination::parse("[::1]:2004:a")?;
    /// assert_eq!((d.host(), d.port(), d.instance()), ("::1", 2004, Some("a")));
    /// assert_eq!(Destination::parse("10.0.0.1:2004")?.instance(), None);
    /// # Ok::<(), carbon_proto::ring::RingError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`RingError::BadDestination`] when there is no port, the port is not a number from 0
    /// to 65535, or the host is empty. carbon itself reads a string without a colon as a host
    /// made of all but its last character with the whole string as the port, accepts any
    /// Python integer as a port, and accepts an empty host; those are refused here.
    pub fn parse(text: &str) -> Result<Destination, RingError> {
        let bad = |problem| RingError::BadDestination { text: text.to_owned(), problem };
        let s = text.trim();
        let (host, rest) = if let Some(bracketed) = s.strip_prefix('[') {
            let end = bracketed.rfind("]:").ok_or_else(|| bad(DestinationProblem::MissingPort))?;
            (&bracketed[..end], &bracketed[end + 2..])
        } else {
            s.split_once(':').ok_or_else(|| bad(DestinationProblem::MissingPort))?
        };
        let (port, instance) = match rest.split_once(':') {
            Some((port, instance)) => (port, Some(instance.to_owned())),
            None => (rest, None),
        };
        if host.is_empty() {
            return Err(bad(DestinationProblem::EmptyHost));
        }
        // Python's int() ignores surrounding whitespace and accepts a leading '+'; so does
        // u16::from_str after the trim.
        let port = port.trim().parse::<u16>().map_err(|_| bad(DestinationProblem::BadPort))?;
        Ok(Destination { host: host.to_owned(), port, instance })
    }

    /// The host, as written (an IPv6 address without its brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The instance, or `None` when there is none.
    pub fn instance(&self) -> Option<&str> {
        self.instance.as_deref()
    }
}

impl FromStr for Destination {
    type Err = RingError;

    fn from_str(s: &str) -> Result<Destination, RingError> {
        Destination::parse(s)
    }
}

/// carbon's syntax: `host:port[:instance]`, with brackets around a host that has a `:`.
impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)?;
        } else {
            write!(f, "{}:{}", self.host, self.port)?;
        }
        match &self.instance {
            Some(instance) => write!(f, ":{instance}"),
            None => Ok(()),
        }
    }
}

/// Reads a comma-separated list of destinations, as carbon reads `DESTINATIONS` from
/// carbon.conf: split on `,`, then [`Destination::parse`] each part.
///
/// ```
/// use carbon_proto::ring::parse_destinations;
/// let nodes = parse_destinations("127.0.0.1:2004:a, 127.0.0.1:2104:b,[::1]:2204")?;
/// assert_eq!(nodes.len(), 3);
/// assert_eq!(nodes[2].host(), "::1");
/// # Ok::<(), carbon_proto::ring::RingError>(())
/// ```
///
/// # Errors
///
/// The first part that does not parse, as [`RingError::BadDestination`]; an empty part (from
/// an empty string or a stray comma) has no port, as in carbon.
pub fn parse_destinations(list: &str) -> Result<Vec<Destination>, RingError> {
    list.split(',').map(Destination::parse).collect()
}

/// How carbon's [`ConsistentHashRing`] turns a key into a ring position (carbon's
/// `ROUTER_HASH_TYPE`, graphite-web's `CARBONLINK_HASHING_TYPE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum HashType {
    /// `carbon_ch`, the default: the first 16 bits of the key's MD5 digest.
    #[default]
    CarbonCh,
    /// `fnv1a_ch`: 32-bit FNV-1a folded to 16 bits (`(h >> 16) ^ (h & 0xffff)`).
    Fnv1aCh,
    /// `mmh3_ch`: MurmurHash3 x86_32 with seed 0, as a signed 32-bit number.
    Mmh3Ch,
}

impl HashType {
    /// The name carbon's settings use.
    pub fn as_str(self) -> &'static str {
        match self {
            HashType::CarbonCh => "carbon_ch",
            HashType::Fnv1aCh => "fnv1a_ch",
            HashType::Mmh3Ch => "mmh3_ch",
        }
    }
}

/// Reads `carbon_ch`, `fnv1a_ch` or `mmh3_ch`. carbon itself falls back to `carbon_ch` for any
/// other name; this refuses it ([`RingError::UnknownHashType`]) so a typo does not reshuffle
/// a cluster silently.
impl FromStr for HashType {
    type Err = RingError;

    fn from_str(s: &str) -> Result<HashType, RingError> {
        match s {
            "carbon_ch" => Ok(HashType::CarbonCh),
            "fnv1a_ch" => Ok(HashType::Fnv1aCh),
            "mmh3_ch" => Ok(HashType::Mmh3Ch),
            _ => Err(RingError::UnknownHashType { name: s.to_owned() }),
        }
    }
}

impl fmt::Display for HashType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dest(host: &str, port: u16, instance: Option<&str>) -> Destination {
        Destination::new(host, port, instance.map(str::to_owned))
    }

    fn problem(text: &str) -> DestinationProblem {
        match Destination::parse(text) {
            Err(RingError::BadDestination { text: t, problem }) => {
                assert_eq!(t, text);
                problem
            }
            other => panic!("{text:?} parsed as {other:?}"),
        }
    }

    #[test]
    fn parses_host_port_and_instance() {
        assert_eq!(Destination::parse("127.0.0.1:2004").unwrap(), dest("127.0.0.1", 2004, None));
        assert_eq!(
            Destination::parse(" 127.0.0.1:2004:a \n").unwrap(),
            dest("127.0.0.1", 2004, Some("a"))
        );
        assert_eq!(Destination::parse("cache1:2004:").unwrap(), dest("cache1", 2004, Some("")));
        assert_eq!(Destination::parse("h:2004:a:b").unwrap(), dest("h", 2004, Some("a:b")));
        assert_eq!(Destination::parse("h: +2004 ").unwrap(), dest("h", 2004, None));
    }

    #[test]
    fn parses_bracketed_ipv6() {
        assert_eq!(Destination::parse("[::1]:2004").unwrap(), dest("::1", 2004, None));
        assert_eq!(
            Destination::parse("[fe80::1%eth0]:2004:x").unwrap(),
            dest("fe80::1%eth0", 2004, Some("x"))
        );
    }

    #[test]
    fn rejects_destination_without_port() {
        assert_eq!(problem("cache1"), DestinationProblem::MissingPort);
        assert_eq!(problem(""), DestinationProblem::MissingPort);
        assert_eq!(problem("[::1]"), DestinationProblem::MissingPort);
        assert_eq!(problem("[::1]2004"), DestinationProblem::MissingPort);
    }

    #[test]
    fn rejects_bad_port_and_empty_host() {
        assert_eq!(problem("h:"), DestinationProblem::BadPort);
        assert_eq!(problem("h:65536"), DestinationProblem::BadPort);
        assert_eq!(problem("h:-1"), DestinationProblem::BadPort);
        assert_eq!(problem("h:20x4:a"), DestinationProblem::BadPort);
        assert_eq!(problem(":2004"), DestinationProblem::EmptyHost);
        assert_eq!(problem("[]:2004"), DestinationProblem::EmptyHost);
    }

    #[test]
    fn parses_destination_lists() {
        let nodes = parse_destinations("a:1, b:2:x ,[::1]:3").unwrap();
        assert_eq!(nodes, [dest("a", 1, None), dest("b", 2, Some("x")), dest("::1", 3, None)]);
        assert!(matches!(
            parse_destinations("a:1,"),
            Err(RingError::BadDestination { problem: DestinationProblem::MissingPort, .. })
        ));
    }

    #[test]
    fn displays_in_carbon_syntax_and_round_trips() {
        for text in ["127.0.0.1:2004", "h:1:a", "[::1]:2004:b", "h:2:"] {
            let d = Destination::parse(text).unwrap();
            assert_eq!(d.to_string(), text);
            assert_eq!(text.parse::<Destination>().unwrap(), d);
        }
    }

    #[test]
    fn hash_type_names_round_trip() {
        for t in [HashType::CarbonCh, HashType::Fnv1aCh, HashType::Mmh3Ch] {
            assert_eq!(t.as_str().parse::<HashType>().unwrap(), t);
            assert_eq!(t.to_string(), t.as_str());
        }
        assert_eq!(
            "md5".parse::<HashType>(),
            Err(RingError::UnknownHashType { name: "md5".into() })
        );
        assert_eq!(HashType::default(), HashType::CarbonCh);
    }

    #[test]
    fn error_stays_small() {
        assert!(std::mem::size_of::<RingError>() <= 64);
        assert!(std::mem::size_of::<crate::Error>() <= 128);
    }
}
