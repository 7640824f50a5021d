//! carbon's `FastHashRing` and the `fast-hashing` router built on it (carbon/routers.py,
//! carbon 1.1), which `RELAY_METHOD = fast-hashing` and `fast-aggregated-hashing` use.
//!
//! What the reference does, and so what this does:
//!
//! - It is not a ring: each node `(server, instance)` gets one position, the hash of its
//!   Python tuple text `str(node)` (`('127.0.0.1', 'a')`, `('10.0.0.1', None)`) — for every
//!   hash type, `fnv1a_ch` included — and the nodes are sorted by that position.
//! - The hash type is `ROUTER_HASH_TYPE`, or `mmh3_ch` when it is not set (the
//!   `consistent-hashing` router's default is `carbon_ch`).
//! - A key's walk starts at sorted node `hash(key) % len(nodes)` (Python's `%`, never
//!   negative, so a negative `mmh3_ch` hash still lands in range) and takes every node once,
//!   in sorted order, wrapping around.
//! - The router takes the first `REPLICATION_FACTOR` nodes of that walk, or, with
//!   `DIVERSE_REPLICAS`, skips nodes whose server was already taken until it has that many
//!   servers, as with the consistent-hashing ring.
//!
//! One difference: two nodes whose positions are equal are sorted by Python's stable sort in
//! the iteration order of a `set`, which depends on the process's string-hash seed, so carbon
//! itself routes differently from one start to the next. Here they keep the configured order.

use super::carbon::{Replicas, carbon_hash, check_nodes};
use super::hash::py_repr_str;
use super::{Destination, HashType, RingError};

/// Builds a [`FastHashRing`].
#[derive(Debug, Clone)]
pub struct FastHashRingBuilder {
    hash_type: HashType,
    replication_factor: usize,
    diverse_replicas: bool,
}

impl Default for FastHashRingBuilder {
    fn default() -> Self {
        FastHashRingBuilder::new()
    }
}

impl FastHashRingBuilder {
    /// A builder with carbon's defaults: `mmh3_ch`, a replication factor of 1, diverse
    /// replicas.
    pub fn new() -> FastHashRingBuilder {
        FastHashRingBuilder {
            hash_type: HashType::Mmh3Ch,
            replication_factor: 1,
            diverse_replicas: true,
        }
    }

    /// The position function (`ROUTER_HASH_TYPE`). Default [`HashType::Mmh3Ch`], carbon's
    /// default for this ring.
    pub fn hash_type(&mut self, hash_type: HashType) -> &mut Self {
        self.hash_type = hash_type;
        self
    }

    /// How many destinations [`FastHashRing::destinations`] returns (`REPLICATION_FACTOR`).
    /// Default 1.
    pub fn replication_factor(&mut self, factor: usize) -> &mut Self {
        self.replication_factor = factor;
        self
    }

    /// Whether replicas go to distinct servers (`DIVERSE_REPLICAS`). Default `true`.
    pub fn diverse_replicas(&mut self, yes: bool) -> &mut Self {
        self.diverse_replicas = yes;
        self
    }

    /// Builds the ring from `nodes` (the `DESTINATIONS` order breaks position ties).
    ///
    /// # Errors
    ///
    /// [`RingError::Empty`] without nodes, [`RingError::DuplicateNode`] when two nodes have
    /// the same host and instance (carbon's relay refuses those), [`RingError::ZeroReplication`]
    /// for a replication factor of 0, [`RingError::TooManyNodes`] beyond `u32::MAX` nodes.
    pub fn build(
        &self,
        nodes: impl IntoIterator<Item = Destination>,
    ) -> Result<FastHashRing, RingError> {
        let nodes: Vec<Destination> = nodes.into_iter().collect();
        // One position per node: the ring's own checks with a replica count of 1.
        check_nodes(&nodes, 1, self.replication_factor)?;

        let mut text = String::new();
        let mut sorted: Vec<(i64, u32)> = nodes
            .iter()
            .enumerate()
            .map(|(index, node)| {
                node_text(node, &mut text);
                // Fits: the node count fits u32.
                (carbon_hash(&text, self.hash_type), index as u32)
            })
            .collect();
        // Stable: equal positions keep the configured order.
        sorted.sort_by_key(|&(position, _)| position);
        let (positions, order): (Vec<i64>, Vec<u32>) = sorted.into_iter().unzip();

        let mut ring = FastHashRing {
            hash_type: self.hash_type,
            nodes,
            positions,
            order,
            offsets: Vec::new(),
            replicas: Vec::new(),
            replication_factor: self.replication_factor,
            diverse_replicas: self.diverse_replicas,
        };
        ring.precompute_destinations();
        Ok(ring)
    }
}

/// Writes Python's `str((host, instance))` for `node` into `out` (cleared first).
fn node_text(node: &Destination, out: &mut String) {
    out.clear();
    out.push('(');
    py_repr_str(node.host(), out);
    out.push_str(", ");
    match node.instance() {
        Some(instance) => py_repr_str(instance, out),
        None => out.push_str("None"),
    }
    out.push(')');
}

/// carbon's `FastHashRing`, with the relay's replication settings.
///
/// Built by [`FastHashRingBuilder`]. Immutable and `Sync`.
///
/// ```
/// use carbon_proto::ring::{FastHashRingBuilder, HashType, parse_destinations};
///
/// let nodes = parse_destinations("10.0.0.1:2004, 10.0.0.2:2004, 10.0.0.3:2004")?;
/// let ring = FastHashRingBuilder::new().hash_type(HashType::CarbonCh).build(nodes)?;
/// let first = ring.get_nodes("foo.bar").next().map(|d| d.host());
/// assert_eq!(ring.destinations("foo.bar").next().map(|d| d.host()), first);
/// # Ok::<(), carbon_proto::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct FastHashRing {
    hash_type: HashType,
    /// The nodes, in configured order.
    nodes: Vec<Destination>,
    /// The nodes' positions, ascending (`sorted_nodes`' first items).
    positions: Vec<i64>,
    /// `order[k]` is the index in `nodes` of the `k`-th sorted node.
    order: Vec<u32>,
    /// The router's destinations for a walk starting at sorted node `s` are
    /// `replicas[offsets[s]..offsets[s + 1]]`.
    offsets: Vec<usize>,
    /// See `offsets`.
    replicas: Vec<u32>,
    replication_factor: usize,
    diverse_replicas: bool,
}

impl FastHashRing {
    /// The position function.
    pub fn hash_type(&self) -> HashType {
        self.hash_type
    }

    /// The nodes, in the order they were given.
    pub fn nodes(&self) -> &[Destination] {
        &self.nodes
    }

    /// The replication factor [`destinations`](Self::destinations) applies.
    pub fn replication_factor(&self) -> usize {
        self.replication_factor
    }

    /// Whether [`destinations`](Self::destinations) picks distinct servers.
    pub fn diverse_replicas(&self) -> bool {
        self.diverse_replicas
    }

    /// The nodes with their positions, in sorted order: carbon's `sorted_nodes`.
    pub fn entries(&self) -> impl ExactSizeIterator<Item = (i64, &Destination)> + '_ {
        self.positions.iter().zip(&self.order).map(|(&p, &n)| (p, &self.nodes[n as usize]))
    }

    /// The hash of `key` (`_hash`), before the modulo.
    pub fn position(&self, key: impl AsRef<[u8]>) -> i64 {
        carbon_hash(key, self.hash_type)
    }

    /// The sorted node a key's walk starts at: `hash(key) % len(nodes)`, Python's modulo.
    fn start(&self, key: &[u8]) -> usize {
        // The node count fits i64 (it fits u32), and the remainder is below it.
        carbon_hash(key, self.hash_type).rem_euclid(self.nodes.len() as i64) as usize
    }

    /// carbon's `get_nodes(key)`: every node once, in sorted order from the key's start.
    pub fn get_nodes(&self, key: impl AsRef<[u8]>) -> impl ExactSizeIterator<Item = &Destination> {
        let start = self.start(key.as_ref());
        let len = self.order.len();
        (start..start + len).map(move |k| &self.nodes[self.order[k % len] as usize])
    }

    /// Where the `fast-hashing` router sends `key` (`getDestinations`), with this ring's
    /// replication factor and `DIVERSE_REPLICAS` setting.
    ///
    /// A modulo and a slice of a table precomputed for every start.
    pub fn destinations(&self, key: impl AsRef<[u8]>) -> Replicas<'_> {
        let s = self.start(key.as_ref());
        let (from, to) = (self.offsets[s], self.offsets[s + 1]);
        Replicas::new(&self.nodes, self.replicas[from..to].iter())
    }

    /// Fills `offsets` and `replicas` with the router's answer for every start.
    fn precompute_destinations(&mut self) {
        let len = self.order.len();
        let factor = self.replication_factor;
        let mut offsets = Vec::with_capacity(len + 1);
        let mut replicas = Vec::with_capacity(len * factor.min(len));
        for start in 0..len {
            offsets.push(replicas.len());
            let first = replicas.len();
            let mut used: Vec<&str> = Vec::new();
            for k in start..start + len {
                let node = self.order[k % len];
                if self.diverse_replicas {
                    let server = self.nodes[node as usize].host();
                    if used.contains(&server) {
                        continue;
                    }
                    used.push(server);
                    replicas.push(node);
                    if used.len() >= factor {
                        break;
                    }
                } else {
                    if replicas.len() - first == factor {
                        break;
                    }
                    replicas.push(node);
                }
            }
        }
        offsets.push(replicas.len());
        self.offsets = offsets;
        self.replicas = replicas;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dest(host: &str, port: u16, instance: Option<&str>) -> Destination {
        Destination::new(host, port, instance.map(str::to_owned))
    }

    #[test]
    fn node_text_is_the_python_tuple() {
        let mut out = String::new();
        node_text(&dest("127.0.0.1", 2004, Some("a")), &mut out);
        assert_eq!(out, "('127.0.0.1', 'a')");
        node_text(&dest("10.0.0.1", 2004, None), &mut out);
        assert_eq!(out, "('10.0.0.1', None)");
    }

    #[test]
    fn walk_and_replicas() {
        let nodes = vec![
            dest("h1", 1, Some("a")),
            dest("h1", 2, Some("b")),
            dest("h2", 3, None),
            dest("h3", 4, None),
        ];
        let ring = FastHashRingBuilder::new().replication_factor(2).build(nodes.clone()).unwrap();
        let plain = FastHashRingBuilder::new()
            .replication_factor(2)
            .diverse_replicas(false)
            .build(nodes.clone())
            .unwrap();
        let positions: Vec<i64> = ring.entries().map(|(p, _)| p).collect();
        assert!(positions.windows(2).all(|w| w[0] <= w[1]));
        for name in ["a", "b.c", "servers.web01.cpu", "x", "météo", ""] {
            let walk: Vec<&Destination> = ring.get_nodes(name).collect();
            assert_eq!(walk.len(), 4);
            let start = ring.position(name).rem_euclid(4) as usize;
            assert_eq!(walk[0], ring.entries().nth(start).unwrap().1);
            let want: Vec<&Destination> = walk.iter().take(2).copied().collect();
            assert_eq!(plain.destinations(name).collect::<Vec<_>>(), want);
            let diverse: Vec<&Destination> = ring.destinations(name).collect();
            assert_eq!(diverse.len(), 2);
            assert_ne!(diverse[0].host(), diverse[1].host());
            assert_eq!(diverse[0], walk[0]);
        }
        // More replicas than servers: every server once.
        let all = FastHashRingBuilder::new().replication_factor(9).build(nodes.clone()).unwrap();
        assert_eq!(all.destinations("k").len(), 3);
        let all = FastHashRingBuilder::new()
            .replication_factor(9)
            .diverse_replicas(false)
            .build(nodes)
            .unwrap();
        assert_eq!(all.destinations("k").len(), 4);
    }

    #[test]
    fn refuses_what_carbon_refuses() {
        assert!(matches!(FastHashRingBuilder::new().build([]), Err(RingError::Empty)));
        let twice = [dest("h", 1, Some("a")), dest("h", 2, Some("a"))];
        assert!(matches!(
            FastHashRingBuilder::new().build(twice),
            Err(RingError::DuplicateNode { .. })
        ));
        assert!(matches!(
            FastHashRingBuilder::new().replication_factor(0).build([dest("h", 1, None)]),
            Err(RingError::ZeroReplication)
        ));
    }
}
