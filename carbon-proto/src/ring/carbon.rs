//! carbon's `ConsistentHashRing` (carbon/hashing.py, identical in graphite-web's
//! render/hashing.py) and the `consistent-hashing` router built on it (carbon/routers.py).
//!
//! What the reference does, and so what this does:
//!
//! - Each node `(server, instance)` gets `replica_count` (100) entries. The replica key is
//!   `"%s:%d" % (node, i)`, the Python tuple repr (`('127.0.0.1', 'a'):0`,
//!   `('10.0.0.1', None):7`), for `carbon_ch` and `mmh3_ch`; for `fnv1a_ch` it is
//!   `"%d-%s" % (i, instance)` (`0-a`, or `0-None`), without the server.
//! - Nodes are added in the configured order; an entry whose position is taken moves up by
//!   one until it is free (no wrap at 65535), so the order matters.
//! - A key goes to the first entry at or after its position (`bisect_left`), wrapping to the
//!   first entry.
//! - `get_nodes` walks on from there, yielding each node once, but stops *before* the entry
//!   just before the start: that entry is never examined. With exactly one node it yields that
//!   node first and then walks, so the node comes twice.
//! - The router takes the first `REPLICATION_FACTOR` nodes of that walk, or, with
//!   `DIVERSE_REPLICAS`, skips nodes whose server was already taken until it has that many
//!   servers. So one node and a factor of 2 without `DIVERSE_REPLICAS` send everything twice
//!   to the same destination.

use std::collections::btree_map::{BTreeMap, Entry};
use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use super::hash::{fnv1a_32, fold16, md5_prefix16, murmur3_x86_32, py_repr_str};
use super::index::Positions;
use super::{Destination, HashType, RingError};

/// carbon's `replica_count` default, which nothing in carbon or graphite-web changes.
const DEFAULT_REPLICA_COUNT: u32 = 100;

/// carbon's `carbonHash(key, hash_type)`: the ring position of `key` (its UTF-8 bytes).
///
/// `carbon_ch` and `fnv1a_ch` give 0 to 65535, `mmh3_ch` a signed 32-bit number.
///
/// ```
/// use carbon_proto::ring::{HashType, carbon_hash};
/// assert_eq!(carbon_hash("foo.bar", HashType::CarbonCh), 1273);
/// assert_eq!(carbon_hash("foo.bar", HashType::Fnv1aCh), 58720);
/// ```
pub fn carbon_hash(key: impl AsRef<[u8]>, hash_type: HashType) -> i64 {
    let key = key.as_ref();
    match hash_type {
        HashType::CarbonCh => i64::from(md5_prefix16(key)),
        HashType::Fnv1aCh => i64::from(fold16(fnv1a_32(key))),
        HashType::Mmh3Ch => i64::from(murmur3_x86_32(key, 0) as i32),
    }
}

/// Builds a [`ConsistentHashRing`].
#[derive(Debug, Clone)]
pub struct ConsistentHashRingBuilder {
    hash_type: HashType,
    replica_count: u32,
    replication_factor: usize,
    diverse_replicas: bool,
}

impl Default for ConsistentHashRingBuilder {
    fn default() -> Self {
        ConsistentHashRingBuilder::new()
    }
}

impl ConsistentHashRingBuilder {
    /// A builder with carbon's defaults.
    pub fn new() -> ConsistentHashRingBuilder {
        ConsistentHashRingBuilder {
            hash_type: HashType::CarbonCh,
            replica_count: DEFAULT_REPLICA_COUNT,
            replication_factor: 1,
            diverse_replicas: true,
        }
    }

    /// The position function (`ROUTER_HASH_TYPE`, `CARBONLINK_HASHING_TYPE`). Default
    /// [`HashType::CarbonCh`].
    pub fn hash_type(&mut self, hash_type: HashType) -> &mut Self {
        self.hash_type = hash_type;
        self
    }

    /// Ring entries per node (the constructor's `replica_count`). Default 100, which is what
    /// carbon and graphite-web use; other values exist to exercise the walk's quirks.
    pub fn replica_count(&mut self, count: u32) -> &mut Self {
        self.replica_count = count;
        self
    }

    /// How many destinations [`ConsistentHashRing::destinations`] returns
    /// (`REPLICATION_FACTOR`). Default 1.
    pub fn replication_factor(&mut self, factor: usize) -> &mut Self {
        self.replication_factor = factor;
        self
    }

    /// Whether replicas go to distinct servers (`DIVERSE_REPLICAS`). Default `true`, carbon's
    /// default. graphite-web's CarbonLink always picks distinct servers.
    pub fn diverse_replicas(&mut self, yes: bool) -> &mut Self {
        self.diverse_replicas = yes;
        self
    }

    /// Builds the ring from `nodes`, in order (the `DESTINATIONS` order: it decides who wins
    /// a position collision).
    ///
    /// # Errors
    ///
    /// [`RingError::Empty`] without nodes, [`RingError::DuplicateNode`] when two nodes have
    /// the same host and instance (carbon's relay refuses those too), and
    /// [`RingError::ZeroReplicas`], [`RingError::ZeroReplication`] or
    /// [`RingError::TooManyNodes`] for settings no ring can have.
    pub fn build(
        &self,
        nodes: impl IntoIterator<Item = Destination>,
    ) -> Result<ConsistentHashRing, RingError> {
        let nodes: Vec<Destination> = nodes.into_iter().collect();
        check_nodes(&nodes, self.replica_count, self.replication_factor)?;

        // Position -> node. Probing by +1 until free, in insertion order, as add_node does.
        let mut taken: BTreeMap<i64, u32> = BTreeMap::new();
        let mut key = String::new();
        for (index, node) in nodes.iter().enumerate() {
            // Fits: ring_len fits u32, so the node count does.
            let index = index as u32;
            for i in 0..self.replica_count {
                replica_key(self.hash_type, node, i, &mut key);
                let mut position = carbon_hash(&key, self.hash_type);
                loop {
                    match taken.entry(position) {
                        Entry::Vacant(slot) => {
                            slot.insert(index);
                            break;
                        }
                        Entry::Occupied(_) => position += 1,
                    }
                }
            }
        }
        let (positions, owners): (Vec<i64>, Vec<u32>) = taken.into_iter().unzip();

        let mut server_ids = HashMap::new();
        let servers: Vec<u32> = nodes
            .iter()
            .map(|node| {
                let next = server_ids.len() as u32;
                *server_ids.entry(node.host()).or_insert(next)
            })
            .collect();

        let mut ring = ConsistentHashRing {
            hash_type: self.hash_type,
            nodes,
            positions: Positions::new(positions),
            owners,
            offsets: Vec::new(),
            replicas: Vec::new(),
            replication_factor: self.replication_factor,
            diverse_replicas: self.diverse_replicas,
        };
        ring.precompute_destinations(&servers);
        Ok(ring)
    }
}

/// Writes the replica key of `node`'s `i`-th entry into `out` (cleared first).
/// The checks both of carbon's rings make of their settings and nodes, in this order:
/// [`RingError::Empty`], [`RingError::ZeroReplicas`], [`RingError::ZeroReplication`],
/// [`RingError::TooManyNodes`] (`nodes x replica_count` must fit `u32`, the ring's index
/// type), [`RingError::DuplicateNode`] (same host and instance: carbon's relay refuses those).
pub(super) fn check_nodes(
    nodes: &[Destination],
    replica_count: u32,
    replication_factor: usize,
) -> Result<(), RingError> {
    if nodes.is_empty() {
        return Err(RingError::Empty);
    }
    if replica_count == 0 {
        return Err(RingError::ZeroReplicas);
    }
    if replication_factor == 0 {
        return Err(RingError::ZeroReplication);
    }
    let too_many = || RingError::TooManyNodes { nodes: nodes.len(), replicas: replica_count };
    let ring_len = nodes.len().checked_mul(replica_count as usize).ok_or_else(too_many)?;
    if u32::try_from(ring_len).is_err() {
        return Err(too_many());
    }
    let mut identities = HashSet::new();
    for node in nodes {
        if !identities.insert((node.host(), node.instance())) {
            return Err(RingError::DuplicateNode {
                destination: Box::new(node.clone()),
                identity: "host and instance",
            });
        }
    }
    Ok(())
}

fn replica_key(hash_type: HashType, node: &Destination, i: u32, out: &mut String) {
    out.clear();
    // Writing to a String cannot fail.
    match hash_type {
        HashType::Fnv1aCh => {
            let _ = write!(out, "{i}-{}", node.instance().unwrap_or("None"));
        }
        HashType::CarbonCh | HashType::Mmh3Ch => {
            out.push('(');
            py_repr_str(node.host(), out);
            out.push_str(", ");
            match node.instance() {
                Some(instance) => py_repr_str(instance, out),
                None => out.push_str("None"),
            }
            let _ = write!(out, "):{i}");
        }
    }
}

/// carbon's consistent hash ring, with the relay's replication settings.
///
/// Built by [`ConsistentHashRingBuilder`]. Immutable and `Sync`: share it behind an `Arc`.
#[derive(Debug, Clone)]
pub struct ConsistentHashRing {
    hash_type: HashType,
    /// The nodes, in insertion order.
    nodes: Vec<Destination>,
    /// The ring: distinct positions, ascending.
    positions: Positions,
    /// `owners[e]` is the index in `nodes` of entry `e`'s node.
    owners: Vec<u32>,
    /// The router's destinations for a key that lands on entry `e` are
    /// `replicas[offsets[e]..offsets[e + 1]]`.
    offsets: Vec<usize>,
    /// See `offsets`.
    replicas: Vec<u32>,
    replication_factor: usize,
    diverse_replicas: bool,
}

impl ConsistentHashRing {
    /// The ring's position function.
    pub fn hash_type(&self) -> HashType {
        self.hash_type
    }

    /// The nodes, in the order they were added.
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

    /// The ring entries, `(position, node)`, ascending: carbon's `ring.ring`.
    pub fn entries(&self) -> impl ExactSizeIterator<Item = (i64, &Destination)> + '_ {
        self.positions
            .as_slice()
            .iter()
            .zip(&self.owners)
            .map(|(&p, &n)| (p, &self.nodes[n as usize]))
    }

    /// The position of `key` on this ring (`compute_ring_position`).
    pub fn position(&self, key: impl AsRef<[u8]>) -> i64 {
        carbon_hash(key, self.hash_type)
    }

    /// The entry a key lands on: the first at or after its position, wrapping around.
    fn start(&self, key: &[u8]) -> usize {
        let position = carbon_hash(key, self.hash_type);
        self.positions.start(position)
    }

    /// The node that owns `key` (`get_node`).
    ///
    /// ```
    /// use carbon_proto::ring::{ConsistentHashRingBuilder, Destination};
    /// let ring = ConsistentHashRingBuilder::new().build([
    ///     Destination::new("127.0.0.1", 2104, Some("a".into())),
    ///     Destination::new("127.0.0.1", 2204, Some("b".into())),
    /// ])?;
    /// assert_eq!(ring.get_node("servers.web01.cpu.user").instance(), Some("a"));
    /// # Ok::<(), carbon_proto::ring::RingError>(())
    /// ```
    pub fn get_node(&self, key: impl AsRef<[u8]>) -> &Destination {
        let e = self.start(key.as_ref());
        &self.nodes[self.owners[e] as usize]
    }

    /// carbon's `get_nodes(key)`: the nodes in ring order from `key`'s entry, each once, with
    /// both quirks (the entry just before the start is never examined; a lone node comes
    /// twice). graphite-web's CarbonLink takes the first `REPLICATION_FACTOR` distinct servers
    /// of this.
    ///
    /// Lazy; it allocates only for rings of more than 128 nodes (a bitmap of seen nodes).
    pub fn get_nodes(&self, key: impl AsRef<[u8]>) -> GetNodes<'_> {
        let start = self.start(key.as_ref());
        let len = self.owners.len();
        GetNodes {
            ring: self,
            lone_node_first: self.nodes.len() == 1,
            index: start,
            last_index: (start + len - 1) % len,
            found: 0,
            seen: Seen::new(self.nodes.len()),
        }
    }

    /// Where the `consistent-hashing` router sends `key` (`getDestinations`), with this
    /// ring's replication factor and `DIVERSE_REPLICAS` setting. The first is always
    /// [`get_node`](Self::get_node)'s.
    ///
    /// A binary search and a slice of a table precomputed for every ring entry.
    pub fn destinations(&self, key: impl AsRef<[u8]>) -> Replicas<'_> {
        let e = self.start(key.as_ref());
        let (from, to) = (self.offsets[e], self.offsets[e + 1]);
        Replicas { nodes: &self.nodes, indices: self.replicas[from..to].iter() }
    }

    /// Calls `visit` with each node carbon's `get_nodes` yields for a key that lands on
    /// entry `start`, until `visit` returns `false`. `seen` is scratch space, all `false` on
    /// entry and on return.
    fn walk(&self, start: usize, seen: &mut [bool], mut visit: impl FnMut(u32) -> bool) {
        let len = self.owners.len();
        let mut touched = Vec::new();
        let mut go_on = true;
        if self.nodes.len() == 1 {
            go_on = visit(0);
        }
        let last_index = (start + len - 1) % len;
        let mut index = start;
        while go_on && touched.len() < self.nodes.len() && index != last_index {
            let node = self.owners[index];
            if !seen[node as usize] {
                seen[node as usize] = true;
                touched.push(node);
                go_on = visit(node);
            }
            index = (index + 1) % len;
        }
        for node in touched {
            seen[node as usize] = false;
        }
    }

    /// Fills `offsets` and `replicas` with the router's answer for every entry.
    fn precompute_destinations(&mut self, servers: &[u32]) {
        let len = self.owners.len();
        let factor = self.replication_factor;
        let mut seen = vec![false; self.nodes.len()];
        let mut used_servers = vec![false; servers.len()];
        let mut offsets = Vec::with_capacity(len + 1);
        let mut replicas = Vec::with_capacity(len * factor.min(self.nodes.len() + 1));
        for start in 0..len {
            offsets.push(replicas.len());
            let first = replicas.len();
            if self.diverse_replicas {
                let mut used = Vec::new();
                self.walk(start, &mut seen, |node| {
                    let server = servers[node as usize] as usize;
                    if !used_servers[server] {
                        used_servers[server] = true;
                        used.push(server);
                        replicas.push(node);
                    }
                    used.len() < factor
                });
                for server in used {
                    used_servers[server] = false;
                }
            } else {
                self.walk(start, &mut seen, |node| {
                    replicas.push(node);
                    replicas.len() - first < factor
                });
            }
        }
        offsets.push(replicas.len());
        self.offsets = offsets;
        self.replicas = replicas;
    }
}

/// The router's destinations for one key: see [`ConsistentHashRing::destinations`].
#[derive(Debug, Clone)]
pub struct Replicas<'a> {
    nodes: &'a [Destination],
    indices: std::slice::Iter<'a, u32>,
}

impl<'a> Replicas<'a> {
    /// Destinations `indices` of `nodes`.
    pub(super) fn new(nodes: &'a [Destination], indices: std::slice::Iter<'a, u32>) -> Self {
        Replicas { nodes, indices }
    }

    /// The remaining destinations as indices into the ring's `nodes()`, for callers
    /// that keep one queue per node in a `Vec`.
    pub fn indices(&self) -> impl ExactSizeIterator<Item = usize> + use<'a> {
        self.indices.clone().map(|&i| i as usize)
    }
}

impl<'a> Iterator for Replicas<'a> {
    type Item = &'a Destination;

    fn next(&mut self) -> Option<&'a Destination> {
        self.indices.next().map(|&i| &self.nodes[i as usize])
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.indices.size_hint()
    }
}

impl ExactSizeIterator for Replicas<'_> {}

/// carbon's `get_nodes` walk: see [`ConsistentHashRing::get_nodes`].
#[derive(Debug, Clone)]
pub struct GetNodes<'a> {
    ring: &'a ConsistentHashRing,
    /// A lone node is yielded once before the walk (the second quirk).
    lone_node_first: bool,
    /// The next entry to examine.
    index: usize,
    /// The walk stops on reaching this entry, unexamined (the first quirk).
    last_index: usize,
    /// Distinct nodes yielded by the walk so far.
    found: usize,
    seen: Seen,
}

impl<'a> Iterator for GetNodes<'a> {
    type Item = &'a Destination;

    fn next(&mut self) -> Option<&'a Destination> {
        let ring = self.ring;
        if self.lone_node_first {
            self.lone_node_first = false;
            return ring.nodes.first();
        }
        let len = ring.owners.len();
        while self.found < ring.nodes.len() && self.index != self.last_index {
            let node = ring.owners[self.index];
            // A compare, not a division: this loop is the cost of a walk.
            self.index = if self.index + 1 == len { 0 } else { self.index + 1 };
            if self.seen.insert(node) {
                self.found += 1;
                return Some(&ring.nodes[node as usize]);
            }
        }
        None
    }
}

/// Nodes already yielded: a bitmap, inline for up to 128 nodes.
#[derive(Debug, Clone)]
enum Seen {
    Inline(u128),
    Heap(Vec<u64>),
}

impl Seen {
    fn new(nodes: usize) -> Seen {
        if nodes <= 128 { Seen::Inline(0) } else { Seen::Heap(vec![0; nodes.div_ceil(64)]) }
    }

    /// Marks `node`; true if it was not marked before.
    fn insert(&mut self, node: u32) -> bool {
        match self {
            Seen::Inline(bits) => {
                let bit = 1u128 << node;
                let new = *bits & bit == 0;
                *bits |= bit;
                new
            }
            Seen::Heap(words) => {
                let (word, bit) = ((node / 64) as usize, 1u64 << (node % 64));
                let new = words[word] & bit == 0;
                words[word] |= bit;
                new
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn node(host: &str, instance: Option<&str>) -> Destination {
        Destination::new(host, 2004, instance.map(str::to_owned))
    }

    fn ring_ab() -> ConsistentHashRing {
        ConsistentHashRingBuilder::new()
            .build([node("127.0.0.1", Some("a")), node("127.0.0.1", Some("b"))])
            .unwrap()
    }

    fn ring_3() -> ConsistentHashRing {
        ConsistentHashRingBuilder::new()
            .replication_factor(3)
            .build([node("10.0.0.1", None), node("10.0.0.2", None), node("10.0.0.3", None)])
            .unwrap()
    }

    fn instances<'a>(nodes: impl Iterator<Item = &'a Destination>) -> Vec<&'a str> {
        nodes.map(|d| d.instance().unwrap_or("-")).collect()
    }

    fn hosts<'a>(nodes: impl Iterator<Item = &'a Destination>) -> Vec<&'a str> {
        nodes.map(Destination::host).collect()
    }

    #[test]
    fn replica_keys_are_python_tuple_text() {
        let mut key = String::new();
        replica_key(HashType::CarbonCh, &node("127.0.0.1", Some("a")), 0, &mut key);
        assert_eq!(key, "('127.0.0.1', 'a'):0");
        replica_key(HashType::Mmh3Ch, &node("10.0.0.1", None), 7, &mut key);
        assert_eq!(key, "('10.0.0.1', None):7");
        replica_key(HashType::CarbonCh, &node("h", Some("it's")), 99, &mut key);
        assert_eq!(key, "('h', \"it's\"):99");
        replica_key(HashType::Fnv1aCh, &node("127.0.0.1", Some("a")), 0, &mut key);
        assert_eq!(key, "0-a");
        replica_key(HashType::Fnv1aCh, &node("127.0.0.1", None), 42, &mut key);
        assert_eq!(key, "42-None");
    }

    #[test]
    fn matches_documented_ring_entries() {
        let ring = ring_ab();
        let first: Vec<(i64, &str)> =
            ring.entries().take(5).map(|(p, d)| (p, d.instance().unwrap())).collect();
        assert_eq!(first, [(398, "a"), (474, "a"), (1884, "b"), (2138, "b"), (2153, "a")]);
        assert_eq!(ring.entries().len(), 200);
    }

    #[test]
    fn matches_documented_get_node_vectors() {
        let ring = ring_ab();
        for (key, position, instance) in [
            ("foo.bar", 1273, "b"),
            ("servers.web01.cpu.user", 28773, "a"),
            ("a", 3265, "a"),
            ("carbon.agents.host-a.cpuUsage", 58653, "b"),
        ] {
            assert_eq!(ring.position(key), position, "{key}");
            assert_eq!(ring.get_node(key).instance(), Some(instance), "{key}");
            assert_eq!(instances(ring.destinations(key)), [instance], "{key}");
        }
    }

    #[test]
    fn matches_documented_get_nodes_vectors() {
        let ring = ring_3();
        assert_eq!(hosts(ring.get_nodes("foo.bar")), ["10.0.0.3", "10.0.0.1", "10.0.0.2"]);
        assert_eq!(
            hosts(ring.get_nodes("servers.web01.cpu.user")),
            ["10.0.0.2", "10.0.0.1", "10.0.0.3"]
        );
        assert_eq!(hosts(ring.destinations("foo.bar")), ["10.0.0.3", "10.0.0.1", "10.0.0.2"]);
    }

    #[test]
    fn lone_node_is_yielded_twice() {
        let ring = ConsistentHashRingBuilder::new()
            .diverse_replicas(false)
            .replication_factor(3)
            .build([node("10.0.0.1", None)])
            .unwrap();
        assert_eq!(ring.get_nodes("x").count(), 2);
        // So the router without DIVERSE_REPLICAS sends twice to the same place...
        assert_eq!(hosts(ring.destinations("x")), ["10.0.0.1", "10.0.0.1"]);
        // ...and once with it.
        let diverse = ConsistentHashRingBuilder::new()
            .replication_factor(3)
            .build([node("10.0.0.1", None)])
            .unwrap();
        assert_eq!(hosts(diverse.destinations("x")), ["10.0.0.1"]);
    }

    #[test]
    fn entry_before_start_is_never_examined() {
        // One entry per node: the walk from entry e stops at e - 1, so with two nodes only
        // the first is found.
        let ring = ConsistentHashRingBuilder::new()
            .replica_count(1)
            .diverse_replicas(false)
            .replication_factor(2)
            .build([node("10.0.0.1", None), node("10.0.0.2", None)])
            .unwrap();
        for key in ["a", "b", "c", "foo.bar"] {
            assert_eq!(ring.get_nodes(key).count(), 1, "{key}");
            assert_eq!(ring.destinations(key).count(), 1, "{key}");
        }
        // And a lone node with a single entry is yielded once only: the walk is empty.
        let lone = ConsistentHashRingBuilder::new()
            .replica_count(1)
            .build([node("10.0.0.1", None)])
            .unwrap();
        assert_eq!(lone.get_nodes("a").count(), 1);
    }

    #[test]
    fn diverse_replicas_skip_servers_already_used() {
        let nodes = [
            node("10.0.0.1", Some("a")),
            node("10.0.0.1", Some("b")),
            node("10.0.0.2", Some("a")),
            node("10.0.0.2", Some("b")),
        ];
        let ring = ConsistentHashRingBuilder::new().replication_factor(2).build(nodes).unwrap();
        for i in 0..200 {
            let key = format!("metric.{i}");
            let got: Vec<&Destination> = ring.destinations(&key).collect();
            assert_eq!(got.len(), 2);
            assert_ne!(got[0].host(), got[1].host());
            assert_eq!(got[0], ring.get_node(&key));
        }
    }

    #[test]
    fn positions_collide_and_probe_upwards() {
        // Two nodes with the same fnv1a_ch keys (the server is not in them): every position
        // of the second is taken and moves up by one, or more.
        let ring = ConsistentHashRingBuilder::new()
            .hash_type(HashType::Fnv1aCh)
            .build([node("10.0.0.1", Some("x")), node("10.0.0.2", Some("x"))])
            .unwrap();
        assert_eq!(ring.entries().len(), 200);
        let mut key = String::new();
        replica_key(HashType::Fnv1aCh, &ring.nodes()[0], 0, &mut key);
        let p = carbon_hash(&key, HashType::Fnv1aCh);
        let at: Vec<(i64, &str)> = ring
            .entries()
            .filter(|e| e.0 == p || e.0 == p + 1)
            .map(|(p, d)| (p, d.host()))
            .collect();
        assert_eq!(at, [(p, "10.0.0.1"), (p + 1, "10.0.0.2")]);
    }

    #[test]
    fn mmh3_positions_are_signed() {
        let ring = ConsistentHashRingBuilder::new()
            .hash_type(HashType::Mmh3Ch)
            .build([node("10.0.0.1", None), node("10.0.0.2", None)])
            .unwrap();
        assert_eq!(ring.position("foo"), -156_908_512);
        assert!(ring.entries().any(|(p, _)| p < 0));
        assert!(ring.entries().any(|(p, _)| p > 65535));
    }

    #[test]
    fn refuses_impossible_rings() {
        let b = ConsistentHashRingBuilder::new();
        assert_eq!(b.build([]).unwrap_err(), RingError::Empty);
        let dup = b.build([node("h", Some("a")), Destination::new("h", 9, Some("a".into()))]);
        assert!(matches!(dup, Err(RingError::DuplicateNode { .. })));
        // The port is not part of the identity, the instance is.
        assert!(b.build([node("h", Some("a")), node("h", None), node("h", Some(""))]).is_ok());
        assert_eq!(
            ConsistentHashRingBuilder::new().replica_count(0).build([node("h", None)]).unwrap_err(),
            RingError::ZeroReplicas
        );
        assert_eq!(
            ConsistentHashRingBuilder::new()
                .replication_factor(0)
                .build([node("h", None)])
                .unwrap_err(),
            RingError::ZeroReplication
        );
    }

    /// carbon's algorithm written as plainly as possible: a sorted list, a linear
    /// `bisect_left`, a walk with a `Vec` of seen nodes.
    struct Model {
        ring: Vec<(i64, usize)>,
        nodes: usize,
        hash_type: HashType,
    }

    impl Model {
        fn new(nodes: &[Destination], replicas: u32, hash_type: HashType) -> Model {
            let mut ring: Vec<(i64, usize)> = Vec::new();
            let mut key = String::new();
            for (n, d) in nodes.iter().enumerate() {
                for i in 0..replicas {
                    replica_key(hash_type, d, i, &mut key);
                    let mut p = carbon_hash(&key, hash_type);
                    while ring.iter().any(|e| e.0 == p) {
                        p += 1;
                    }
                    ring.push((p, n));
                    ring.sort();
                }
            }
            Model { ring, nodes: nodes.len(), hash_type }
        }

        fn get_nodes(&self, key: &str) -> Vec<usize> {
            let mut out = Vec::new();
            if self.nodes == 1 {
                out.push(0);
            }
            let p = carbon_hash(key, self.hash_type);
            let len = self.ring.len();
            let mut index = self.ring.iter().position(|e| e.0 >= p).unwrap_or(0);
            let last = (index + len - 1) % len;
            let mut seen = Vec::new();
            while seen.len() < self.nodes && index != last {
                let n = self.ring[index].1;
                if !seen.contains(&n) {
                    seen.push(n);
                    out.push(n);
                }
                index = (index + 1) % len;
            }
            out
        }
    }

    fn arb_hash_type() -> impl Strategy<Value = HashType> {
        prop_oneof![Just(HashType::CarbonCh), Just(HashType::Fnv1aCh), Just(HashType::Mmh3Ch)]
    }

    fn arb_nodes() -> impl Strategy<Value = Vec<Destination>> {
        proptest::collection::btree_set((0u8..4, proptest::option::of("[a-c]{0,2}")), 1..7)
            .prop_map(|set| {
                set.into_iter()
                    .map(|(h, i)| Destination::new(format!("10.0.0.{h}"), 2004, i))
                    .collect()
            })
    }

    fn index_of(ring: &ConsistentHashRing, d: &Destination) -> usize {
        ring.nodes().iter().position(|n| n == d).unwrap()
    }

    proptest! {
        #[test]
        fn get_nodes_matches_plain_model(
            nodes in arb_nodes(),
            replicas in 1u32..6,
            hash_type in arb_hash_type(),
            keys in proptest::collection::vec(".{0,12}", 1..20),
        ) {
            let ring = ConsistentHashRingBuilder::new()
                .hash_type(hash_type)
                .replica_count(replicas)
                .build(nodes.clone())
                .unwrap();
            let model = Model::new(&nodes, replicas, hash_type);
            let entries: Vec<(i64, usize)> =
                ring.entries().map(|(p, d)| (p, index_of(&ring, d))).collect();
            prop_assert_eq!(&entries, &model.ring);
            for key in &keys {
                let got: Vec<usize> = ring.get_nodes(key).map(|d| index_of(&ring, d)).collect();
                prop_assert_eq!(&got, &model.get_nodes(key));
                prop_assert_eq!(index_of(&ring, ring.get_node(key)), got[0]);
            }
        }

        #[test]
        fn destinations_follow_the_router(
            nodes in arb_nodes(),
            replicas in 1u32..6,
            factor in 1usize..5,
            diverse in any::<bool>(),
            keys in proptest::collection::vec(".{0,12}", 1..20),
        ) {
            let ring = ConsistentHashRingBuilder::new()
                .replica_count(replicas)
                .replication_factor(factor)
                .diverse_replicas(diverse)
                .build(nodes)
                .unwrap();
            for key in &keys {
                // routers.py getDestinations over the (already checked) get_nodes walk.
                let mut expected: Vec<&Destination> = Vec::new();
                let mut used = Vec::new();
                for d in ring.get_nodes(key) {
                    if diverse {
                        if used.contains(&d.host()) {
                            continue;
                        }
                        used.push(d.host());
                        expected.push(d);
                        if used.len() >= factor {
                            break;
                        }
                    } else {
                        if expected.len() == factor {
                            break;
                        }
                        expected.push(d);
                    }
                }
                let got: Vec<&Destination> = ring.destinations(key).collect();
                prop_assert_eq!(&got, &expected);
                let indices: Vec<usize> = ring.destinations(key).indices().collect();
                let by_index: Vec<&Destination> =
                    indices.iter().map(|&i| &ring.nodes()[i]).collect();
                prop_assert_eq!(by_index, expected);
            }
        }

        #[test]
        fn every_node_is_reachable_and_replicas_are_distinct(
            nodes in arb_nodes(),
            key in proptest::collection::vec(any::<u8>(), 0..40),
            hash_type in arb_hash_type(),
        ) {
            let n = nodes.len();
            let ring = ConsistentHashRingBuilder::new()
                .hash_type(hash_type)
                .replication_factor(n)
                .diverse_replicas(false)
                .build(nodes)
                .unwrap();
            // With 100 entries per node the walk finds every node (twice if alone).
            let walk: Vec<&Destination> = ring.get_nodes(&key).collect();
            let distinct: HashSet<&Destination> = walk.iter().copied().collect();
            prop_assert_eq!(distinct.len(), n);
            prop_assert_eq!(walk.len(), if n == 1 { 2 } else { n });
            if n > 1 {
                prop_assert_eq!(ring.destinations(&key).count(), n);
            }
            // Every node owns at least one entry.
            let owners: HashSet<&Destination> = ring.entries().map(|e| e.1).collect();
            prop_assert_eq!(owners.len(), n);
        }
    }

    #[test]
    fn large_rings_track_seen_nodes_on_the_heap() {
        let nodes: Vec<Destination> = (0..300)
            .map(|i| Destination::new(format!("10.0.{}.{}", i / 256, i % 256), 2004, None))
            .collect();
        let ring = ConsistentHashRingBuilder::new().replica_count(3).build(nodes).unwrap();
        let walk: Vec<&Destination> = ring.get_nodes("foo.bar").collect();
        let distinct: HashSet<&Destination> = walk.iter().copied().collect();
        assert_eq!(walk.len(), distinct.len());
        assert!(walk.len() >= 299);
    }
}
