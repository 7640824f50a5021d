//! carbon-c-relay's (3.7) consistent-hash clusters: `carbon_ch`, `fnv1a_ch` and
//! `jump_fnv1a_ch`, with `replication`.
//!
//! What carbon-c-relay does, and so what this does:
//!
//! - It hashes the metric up to its first space.
//! - `carbon_ch`: 100 entries per server at the MD5 position of `('%s', %s%s%s):%d`: carbon's
//!   tuple text, with the host and instance written raw (no Python escaping) and `None` without
//!   an instance, cut to 255 bytes (a `char[256]` buffer). Unlike carbon, equal positions are
//!   kept, not probed.
//! - `fnv1a_ch`: 100 entries at the 16-bit FNV-1a position of `%d-%s:%u` (index, host, port),
//!   or of `%d-%s` (index, instance) when the server has an instance. Bytes >= 0x80 are
//!   sign-extended before the XOR (a signed `char`), here and for the metric.
//! - Entries are sorted by position, then (`carbon_ch`) by host and instance, no instance
//!   last, or (`fnv1a_ch`) by host and port; a run of equal positions then takes the first
//!   entry's server throughout. A key goes to the first entry at or after its position,
//!   wrapping; replicas are the next distinct servers in ring order.
//! - `jump_fnv1a_ch`: servers with an instance come first, ordered by instance (as numbers
//!   when both parse as whole `strtol` numbers, else as strings), then those without, in
//!   config order; that sort is glibc's merge sort, reproduced here with the same comparator.
//!   The 64-bit FNV-1a of the metric picks a bucket with the jump consistent hash; each
//!   further replica rehashes with xorshift and multiply, and picks among the servers left
//!   after the chosen one is replaced by the last.

use std::cmp::Ordering;
use std::collections::HashSet;
use std::fmt::Write as _;

use super::hash::{fnv1a_32_c, fnv1a_64_c, fold16, jump_bucket, md5_prefix16};
use super::index::Positions;
use super::{Destination, RingError};

/// carbon-c-relay's `HASH_REPLICAS` for `carbon_ch` and `fnv1a_ch`.
const HASH_REPLICAS: u32 = 100;

/// carbon-c-relay's largest `replication`.
const MAX_REPLICATION: usize = 255;

/// The size of carbon-c-relay's replica key buffer, terminating NUL included.
const KEY_BUFFER_BYTES: usize = 256;

/// carbon-c-relay's consistent-hash cluster types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CRelayHash {
    /// `carbon_ch`: carbon's ring text and MD5, without carbon's collision probing.
    CarbonCh,
    /// `fnv1a_ch`: FNV-1a of `index-host:port`, or of `index-instance`.
    Fnv1aCh,
    /// `jump_fnv1a_ch`: the jump consistent hash over the ordered server list.
    JumpFnv1aCh,
}

impl CRelayHash {
    /// The name carbon-c-relay's configuration uses.
    pub fn as_str(self) -> &'static str {
        match self {
            CRelayHash::CarbonCh => "carbon_ch",
            CRelayHash::Fnv1aCh => "fnv1a_ch",
            CRelayHash::JumpFnv1aCh => "jump_fnv1a_ch",
        }
    }
}

impl std::str::FromStr for CRelayHash {
    type Err = RingError;

    fn from_str(s: &str) -> Result<CRelayHash, RingError> {
        match s {
            "carbon_ch" => Ok(CRelayHash::CarbonCh),
            "fnv1a_ch" => Ok(CRelayHash::Fnv1aCh),
            "jump_fnv1a_ch" => Ok(CRelayHash::JumpFnv1aCh),
            _ => Err(RingError::UnknownHashType { name: s.to_owned() }),
        }
    }
}

impl std::fmt::Display for CRelayHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Builds a [`CRelayRing`].
#[derive(Debug, Clone)]
pub struct CRelayRingBuilder {
    hash: CRelayHash,
    replication: usize,
}

impl CRelayRingBuilder {
    /// A builder for a cluster of type `hash`.
    pub fn new(hash: CRelayHash) -> CRelayRingBuilder {
        CRelayRingBuilder { hash, replication: 1 }
    }

    /// How many servers each metric goes to (`replication`). Default 1.
    pub fn replication(&mut self, count: usize) -> &mut Self {
        self.replication = count;
        self
    }

    /// Builds the cluster from `servers`, in config order. The port is part of a server's
    /// identity here; the instance decides `fnv1a_ch` positions and the `jump_fnv1a_ch` order.
    ///
    /// # Errors
    ///
    /// [`RingError::Empty`] without servers; [`RingError::DuplicateNode`] for two servers
    /// with the same host and port (carbon-c-relay merges them into one server listed twice,
    /// which can make it loop forever looking for replicas); [`RingError::ZeroReplication`];
    /// [`RingError::ReplicationTooLarge`] above the server count or 255, as carbon-c-relay's
    /// configuration check.
    pub fn build(
        &self,
        servers: impl IntoIterator<Item = Destination>,
    ) -> Result<CRelayRing, RingError> {
        let nodes: Vec<Destination> = servers.into_iter().collect();
        if nodes.is_empty() {
            return Err(RingError::Empty);
        }
        if self.replication == 0 {
            return Err(RingError::ZeroReplication);
        }
        let max = nodes.len().min(MAX_REPLICATION);
        if self.replication > max {
            return Err(RingError::ReplicationTooLarge { replication: self.replication, max });
        }
        let replicas = match self.hash {
            CRelayHash::JumpFnv1aCh => 1,
            CRelayHash::CarbonCh | CRelayHash::Fnv1aCh => HASH_REPLICAS,
        };
        if u32::try_from(nodes.len().saturating_mul(replicas as usize)).is_err() {
            return Err(RingError::TooManyNodes { nodes: nodes.len(), replicas });
        }
        let mut identities = HashSet::new();
        for node in &nodes {
            if !identities.insert((node.host(), node.port())) {
                return Err(RingError::DuplicateNode {
                    destination: Box::new(node.clone()),
                    identity: "host and port",
                });
            }
        }

        let mut ring = CRelayRing {
            hash: self.hash,
            nodes,
            replication: self.replication,
            positions: Positions::new(Vec::new()),
            owners: Vec::new(),
            offsets: Vec::new(),
            replicas: Vec::new(),
        };
        match self.hash {
            CRelayHash::JumpFnv1aCh => {
                // Fits: the node count fits u32 (checked above).
                let mut order: Vec<u32> = (0..ring.nodes.len() as u32).collect();
                merge_sort_by(&mut order, &|&l, &r| {
                    jump_order(&ring.nodes[l as usize], l, &ring.nodes[r as usize], r)
                });
                ring.owners = order;
            }
            CRelayHash::CarbonCh | CRelayHash::Fnv1aCh => ring.build_ch_table(),
        }
        Ok(ring)
    }
}

/// A carbon-c-relay consistent-hash cluster.
///
/// Built by [`CRelayRingBuilder`]. Immutable and `Sync`: share it behind an `Arc`.
#[derive(Debug, Clone)]
pub struct CRelayRing {
    hash: CRelayHash,
    /// The servers, in config order.
    nodes: Vec<Destination>,
    replication: usize,
    /// `carbon_ch`, `fnv1a_ch`: entry positions, ascending, equal ones kept.
    positions: Positions,
    /// `carbon_ch`, `fnv1a_ch`: `owners[e]` is the index in `nodes` of entry `e`'s server
    /// (after a run of equal positions took its first server). `jump_fnv1a_ch`: the node
    /// indices in bucket order.
    owners: Vec<u32>,
    /// `carbon_ch`, `fnv1a_ch`: the servers for a key that lands on entry `e` are
    /// `replicas[offsets[e]..offsets[e + 1]]`.
    offsets: Vec<usize>,
    /// See `offsets`.
    replicas: Vec<u32>,
}

impl CRelayRing {
    /// The cluster type.
    pub fn hash(&self) -> CRelayHash {
        self.hash
    }

    /// The servers, in config order.
    pub fn nodes(&self) -> &[Destination] {
        &self.nodes
    }

    /// How many servers each metric goes to.
    pub fn replication(&self) -> usize {
        self.replication
    }

    /// The ring as carbon-c-relay prints it with `-d`: `(position, server)` in ring order.
    /// For `jump_fnv1a_ch`, the servers in bucket order, each with its index in the config.
    pub fn entries(&self) -> impl ExactSizeIterator<Item = (u32, &Destination)> + '_ {
        let jump = self.hash == CRelayHash::JumpFnv1aCh;
        self.owners.iter().enumerate().map(move |(e, &n)| {
            // Positions of these rings are 16-bit.
            let position = if jump { n } else { self.positions.as_slice()[e] as u32 };
            (position, &self.nodes[n as usize])
        })
    }

    /// What carbon-c-relay's `-d -t` prints as `hash_pos` for `metric`: the ring position
    /// (0 to 65535), or for `jump_fnv1a_ch` the first bucket. Only the bytes before the first
    /// space count.
    pub fn position(&self, metric: impl AsRef<[u8]>) -> u32 {
        self.key_position(hash_key(metric.as_ref()))
    }

    /// [`position`](Self::position) of a key already cut at its first space.
    fn key_position(&self, key: &[u8]) -> u32 {
        match self.hash {
            CRelayHash::CarbonCh => u32::from(md5_prefix16(key)),
            CRelayHash::Fnv1aCh => u32::from(fold16(fnv1a_32_c(key))),
            // The node count fits u32 (checked by the builder).
            CRelayHash::JumpFnv1aCh => jump_bucket(fnv1a_64_c(key), self.nodes.len() as u32),
        }
    }

    /// The servers `metric` goes to, `replication` of them, in carbon-c-relay's order. Only
    /// the bytes before the first space count, so a whole `path value timestamp` line may be
    /// passed.
    ///
    /// ```
    /// use carbon_proto::ring::{CRelayHash, CRelayRingBuilder, Destination};
    /// let ring = CRelayRingBuilder::new(CRelayHash::Fnv1aCh).replication(2).build([
    ///     Destination::new("127.0.0.1", 2003, None),
    ///     Destination::new("127.0.0.2", 2003, None),
    ///     Destination::new("127.0.0.3", 2003, None),
    /// ])?;
    /// let to: Vec<&str> = ring.route("a..b 1 1700000000").map(|d| d.host()).collect();
    /// assert_eq!(to, ["127.0.0.1", "127.0.0.3"]);
    /// # Ok::<(), carbon_proto::ring::RingError>(())
    /// ```
    ///
    /// For `carbon_ch` and `fnv1a_ch`, a binary search and a slice of a precomputed table;
    /// for `jump_fnv1a_ch`, the jump hash once per replica. Neither allocates, unless the
    /// jump ring replicates to more than 16 servers.
    pub fn route(&self, metric: impl AsRef<[u8]>) -> Route<'_> {
        let key = hash_key(metric.as_ref());
        let inner = match self.hash {
            CRelayHash::JumpFnv1aCh => RouteInner::Jump(JumpWalk {
                hash: fnv1a_64_c(key),
                // Fits u32 (checked by the builder).
                left: self.nodes.len() as u32,
                remaining: self.replication,
                swaps: Swaps::default(),
            }),
            CRelayHash::CarbonCh | CRelayHash::Fnv1aCh => {
                let e = self.positions.start(i64::from(self.key_position(key)));
                RouteInner::Table(self.replicas[self.offsets[e]..self.offsets[e + 1]].iter())
            }
        };
        Route { ring: self, inner }
    }

    /// Computes the sorted entries and the replica table of a `carbon_ch` or `fnv1a_ch` ring.
    fn build_ch_table(&mut self) {
        let mut entries: Vec<(u16, u32)> = Vec::with_capacity(self.nodes.len() * 100);
        let mut key = String::new();
        for (n, node) in self.nodes.iter().enumerate() {
            for i in 0..HASH_REPLICAS {
                let position = match self.hash {
                    CRelayHash::CarbonCh => {
                        key.clear();
                        // Writing to a String cannot fail.
                        let _ = match node.instance() {
                            Some(instance) => {
                                write!(key, "('{}', '{}'):{i}", c_str(node.host()), c_str(instance))
                            }
                            None => write!(key, "('{}', None):{i}", c_str(node.host())),
                        };
                        md5_prefix16(truncated(key.as_bytes()))
                    }
                    _ => {
                        key.clear();
                        let _ = match node.instance() {
                            Some(instance) => write!(key, "{i}-{}", c_str(instance)),
                            None => write!(key, "{i}-{}:{}", c_str(node.host()), node.port()),
                        };
                        fold16(fnv1a_32_c(truncated(key.as_bytes())))
                    }
                };
                // Fits: the builder checked that nodes * 100 fits u32.
                entries.push((position, n as u32));
            }
        }
        let nodes = &self.nodes;
        let carbon = self.hash == CRelayHash::CarbonCh;
        merge_sort_by(&mut entries, &|l, r| {
            l.0.cmp(&r.0).then_with(|| {
                let (a, b) = (&nodes[l.1 as usize], &nodes[r.1 as usize]);
                let by_host = c_str(a.host()).cmp(c_str(b.host()));
                if carbon {
                    by_host.then_with(|| match (a.instance(), b.instance()) {
                        (None, None) => Ordering::Equal,
                        (None, Some(_)) => Ordering::Greater,
                        (Some(_), None) => Ordering::Less,
                        (Some(x), Some(y)) => c_str(x).cmp(c_str(y)),
                    })
                } else {
                    by_host.then_with(|| a.port().cmp(&b.port()))
                }
            })
        });
        // A run of equal positions takes its first entry's server, so that a binary search
        // landing anywhere in the run finds the same server.
        for e in 1..entries.len() {
            if entries[e].0 == entries[e - 1].0 {
                entries[e].1 = entries[e - 1].1;
            }
        }
        let positions: Vec<i64>;
        (positions, self.owners) = entries.into_iter().map(|(p, n)| (i64::from(p), n)).unzip();
        self.positions = Positions::new(positions);

        let len = self.owners.len();
        let mut seen = vec![false; self.nodes.len()];
        let mut offsets = Vec::with_capacity(len + 1);
        let mut replicas = Vec::with_capacity(len * self.replication);
        for start in 0..len {
            offsets.push(replicas.len());
            let first = replicas.len();
            // carbon-c-relay walks until it has `replication` distinct servers. A server whose
            // every position was taken by another is not on the ring; carbon-c-relay then
            // never finds enough and spins, this stops after one lap.
            for step in 0..len {
                let node = self.owners[(start + step) % len];
                if !seen[node as usize] {
                    seen[node as usize] = true;
                    replicas.push(node);
                    if replicas.len() - first == self.replication {
                        break;
                    }
                }
            }
            for &node in &replicas[first..] {
                seen[node as usize] = false;
            }
        }
        offsets.push(replicas.len());
        self.offsets = offsets;
        self.replicas = replicas;
    }
}

/// The bytes carbon-c-relay hashes: the metric up to its first space.
fn hash_key(metric: &[u8]) -> &[u8] {
    match memchr::memchr(b' ', metric) {
        Some(space) => &metric[..space],
        None => metric,
    }
}

/// What C's `%s` prints of `s`: up to its first NUL.
fn c_str(s: &str) -> &str {
    s.split('\0').next().unwrap_or(s)
}

/// What fits carbon-c-relay's replica key buffer.
fn truncated(key: &[u8]) -> &[u8] {
    &key[..key.len().min(KEY_BUFFER_BYTES - 1)]
}

/// carbon-c-relay's `jump_fnv1a_ch` server order (`entrycmp_jump_fnv1a`): `l` and `r` are the
/// servers' indices in the config.
fn jump_order(l: &Destination, li: u32, r: &Destination, ri: u32) -> Ordering {
    match (l.instance().map(c_str), r.instance().map(c_str)) {
        (None, None) => li.cmp(&ri),
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(a), Some(b)) => match (strtol_whole(a), strtol_whole(b)) {
            // `(int)(val_l - val_r)`: a long difference, wrapped and truncated to int.
            (Some(x), Some(y)) => (x.wrapping_sub(y) as i32).cmp(&0),
            _ => a.as_bytes().cmp(b.as_bytes()),
        },
    }
}

/// C's `strtol(s, &end, 10)` when it consumes all of `s` (`*end == '\0'`), else `None`.
/// Leading white space and a sign are accepted; out-of-range values clamp to `i64` (a
/// 64-bit `long`). An empty string counts as 0: `strtol` leaves `end` at its NUL.
fn strtol_whole(s: &str) -> Option<i64> {
    let bytes = s.as_bytes();
    let mut i = bytes.iter().take_while(|b| matches!(b, b' ' | b'\t'..=b'\r')).count();
    let negative = match bytes.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let digits = &bytes[i..];
    let n = digits.iter().take_while(|b| b.is_ascii_digit()).count();
    if n == 0 {
        // No number: `end` is `s` itself.
        return bytes.is_empty().then_some(0);
    }
    if n != digits.len() {
        return None;
    }
    let mut value: i64 = 0;
    for &d in digits {
        let d = i64::from(d - b'0');
        let next = value
            .checked_mul(10)
            .and_then(|v| if negative { v.checked_sub(d) } else { v.checked_add(d) });
        match next {
            Some(v) => value = v,
            None => return Some(if negative { i64::MIN } else { i64::MAX }),
        }
    }
    Some(value)
}

/// glibc's `qsort` merge sort (`msort_with_tmp`): split at `n / 2`, sort both halves, merge
/// taking from the left while `cmp(left, right)` is not `Greater`. Matching its exact steps
/// keeps the result identical even for a comparator that is not a total order, as
/// `jump_fnv1a_ch`'s mix of numeric and string instances can be.
fn merge_sort_by<T: Copy>(v: &mut [T], cmp: &impl Fn(&T, &T) -> Ordering) {
    let mut tmp = Vec::with_capacity(v.len());
    merge_sort_rec(v, &mut tmp, cmp);
}

fn merge_sort_rec<T: Copy>(v: &mut [T], tmp: &mut Vec<T>, cmp: &impl Fn(&T, &T) -> Ordering) {
    let n = v.len();
    if n <= 1 {
        return;
    }
    let (left, right) = v.split_at_mut(n / 2);
    merge_sort_rec(left, tmp, cmp);
    merge_sort_rec(right, tmp, cmp);
    tmp.clear();
    let (mut i, mut j) = (0, 0);
    while i < left.len() && j < right.len() {
        if cmp(&left[i], &right[j]) != Ordering::Greater {
            tmp.push(left[i]);
            i += 1;
        } else {
            tmp.push(right[j]);
            j += 1;
        }
    }
    tmp.extend_from_slice(&left[i..]);
    // The rest of `right` is already in place.
    let merged = tmp.len();
    v[..merged].copy_from_slice(tmp);
}

/// The servers one metric goes to: see [`CRelayRing::route`].
#[derive(Debug, Clone)]
pub struct Route<'a> {
    ring: &'a CRelayRing,
    inner: RouteInner<'a>,
}

#[derive(Debug, Clone)]
enum RouteInner<'a> {
    /// `carbon_ch`, `fnv1a_ch`: the precomputed servers.
    Table(std::slice::Iter<'a, u32>),
    /// `jump_fnv1a_ch`: computed one replica at a time.
    Jump(JumpWalk),
}

/// The state of carbon-c-relay's jump replica loop.
#[derive(Debug, Clone)]
struct JumpWalk {
    /// The current 64-bit hash.
    hash: u64,
    /// Servers still to choose from: positions `0..left` of the virtual bucket list.
    left: u32,
    /// Replicas still to pick.
    remaining: usize,
    /// The virtual bucket list's changes from the identity.
    swaps: Swaps,
}

impl JumpWalk {
    /// The next replica, as a position in bucket order.
    fn next_bucket(&mut self) -> Option<u32> {
        if self.remaining == 0 || self.left == 0 {
            return None;
        }
        let j = jump_bucket(self.hash, self.left);
        let chosen = self.swaps.get(j);
        self.remaining -= 1;
        if self.remaining > 0 {
            let mut h = self.hash;
            h ^= h >> 12;
            h ^= h << 25;
            h ^= h >> 27;
            self.hash = h.wrapping_mul(2_685_821_657_736_338_717);
            // `bcklst[j] = bcklst[--i]`: the last candidate takes the chosen one's place.
            self.left -= 1;
            let last = self.swaps.get(self.left);
            self.swaps.set(j, last);
        }
        Some(chosen)
    }

    fn len(&self) -> usize {
        self.remaining.min(self.left as usize)
    }
}

/// A sparse map from bucket list positions to what they hold now; absent means unchanged.
/// Inline for up to 16 changes (a replication of 17).
#[derive(Debug, Clone, Default)]
struct Swaps {
    inline: [(u32, u32); 16],
    len: usize,
    spill: Vec<(u32, u32)>,
}

impl Swaps {
    fn get(&self, at: u32) -> u32 {
        self.inline[..self.len]
            .iter()
            .chain(&self.spill)
            .find(|(k, _)| *k == at)
            .map_or(at, |&(_, v)| v)
    }

    fn set(&mut self, at: u32, value: u32) {
        if let Some(slot) =
            self.inline[..self.len].iter_mut().chain(&mut self.spill).find(|(k, _)| *k == at)
        {
            slot.1 = value;
        } else if self.len < self.inline.len() {
            self.inline[self.len] = (at, value);
            self.len += 1;
        } else {
            self.spill.push((at, value));
        }
    }
}

impl<'a> Route<'a> {
    /// The remaining servers as indices into [`CRelayRing::nodes`], for callers that keep
    /// one queue per server in a `Vec`.
    pub fn indices(self) -> impl ExactSizeIterator<Item = usize> + 'a {
        RouteIndices(self)
    }

    fn next_index(&mut self) -> Option<usize> {
        match &mut self.inner {
            RouteInner::Table(it) => it.next().map(|&n| n as usize),
            RouteInner::Jump(walk) => {
                walk.next_bucket().map(|b| self.ring.owners[b as usize] as usize)
            }
        }
    }

    fn remaining(&self) -> usize {
        match &self.inner {
            RouteInner::Table(it) => it.len(),
            RouteInner::Jump(walk) => walk.len(),
        }
    }
}

impl<'a> Iterator for Route<'a> {
    type Item = &'a Destination;

    fn next(&mut self) -> Option<&'a Destination> {
        let ring = self.ring;
        self.next_index().map(|n| &ring.nodes[n])
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.remaining();
        (n, Some(n))
    }
}

impl ExactSizeIterator for Route<'_> {}

/// [`Route::indices`].
struct RouteIndices<'a>(Route<'a>);

impl Iterator for RouteIndices<'_> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        self.0.next_index()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl ExactSizeIterator for RouteIndices<'_> {}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn server(host: &str, port: u16, instance: Option<&str>) -> Destination {
        Destination::new(host, port, instance.map(str::to_owned))
    }

    fn hosts<'a>(it: impl Iterator<Item = &'a Destination>) -> Vec<String> {
        it.map(|d| format!("{}:{}", d.host(), d.port())).collect()
    }

    #[test]
    fn routes_like_carbon_c_relay_test_mode() {
        // Observed with `carbon-c-relay -d -t` (3.7.3).
        let ch = CRelayRingBuilder::new(CRelayHash::CarbonCh)
            .replication(2)
            .build([
                server("127.0.0.1", 2003, Some("a")),
                server("127.0.0.1", 2004, Some("b")),
                server("10.0.0.3", 2003, None),
            ])
            .unwrap();
        let first: Vec<(u32, String)> =
            ch.entries().take(3).map(|(p, d)| (p, d.to_string())).collect();
        assert_eq!(
            first,
            [
                (259, "10.0.0.3:2003".into()),
                (398, "127.0.0.1:2003:a".into()),
                (474, "127.0.0.1:2003:a".into())
            ]
        );
        assert_eq!(ch.position("foo.bar"), 1273);
        assert_eq!(hosts(ch.route("foo.bar")), ["10.0.0.3:2003", "127.0.0.1:2004"]);
        assert_eq!(hosts(ch.route("foo bar")), ["10.0.0.3:2003", "127.0.0.1:2003"]);
        assert_eq!(ch.position("h\u{e9}llo.x"), 28585);

        let servers = [
            server("127.0.0.1", 2003, None),
            server("127.0.0.2", 2003, None),
            server("127.0.0.3", 2003, None),
        ];
        let fnv =
            CRelayRingBuilder::new(CRelayHash::Fnv1aCh).replication(2).build(servers).unwrap();
        assert_eq!(fnv.position("a..b"), 14896);
        assert_eq!(hosts(fnv.route("a..b")), ["127.0.0.1:2003", "127.0.0.3:2003"]);
        // Sign-extended bytes: U+1F600 and U+65E5 (unsigned would give 15650).
        assert_eq!(fnv.position("\u{1f600}.\u{65e5}"), 21998);
        assert_eq!(fnv.position("  sp  x"), 7385);

        let jump = CRelayRingBuilder::new(CRelayHash::JumpFnv1aCh)
            .replication(2)
            .build([
                server("127.0.0.1", 3003, Some("2")),
                server("127.0.0.2", 3003, Some("1")),
                server("127.0.0.3", 3003, None),
            ])
            .unwrap();
        let order: Vec<(u32, String)> = jump.entries().map(|(p, d)| (p, d.host().into())).collect();
        assert_eq!(
            order,
            [(1, "127.0.0.2".into()), (0, "127.0.0.1".into()), (2, "127.0.0.3".into())]
        );
        assert_eq!(jump.position("a..b"), 0);
        assert_eq!(hosts(jump.route("a..b")), ["127.0.0.2:3003", "127.0.0.1:3003"]);
        assert_eq!(jump.position(".lead.trail."), 2);
        assert_eq!(hosts(jump.route(".lead.trail.")), ["127.0.0.3:3003", "127.0.0.1:3003"]);
        assert_eq!(hosts(jump.route("\u{1f600}.\u{65e5}")), ["127.0.0.1:3003", "127.0.0.2:3003"]);
    }

    #[test]
    fn equal_positions_take_the_first_server() {
        // Same instance: fnv1a_ch ignores host and port, so all positions are equal and the
        // lower host wins every one of them.
        let ring = CRelayRingBuilder::new(CRelayHash::Fnv1aCh)
            .build([server("10.0.0.2", 2003, Some("x")), server("10.0.0.1", 2003, Some("x"))])
            .unwrap();
        assert!(ring.entries().all(|(_, d)| d.host() == "10.0.0.1"));
        assert_eq!(ring.entries().len(), 200);
        for key in ["a", "b", "foo.bar"] {
            assert_eq!(hosts(ring.route(key)), ["10.0.0.1:2003"]);
        }
    }

    #[test]
    fn replica_keys_are_cut_to_the_c_buffer() {
        let long = "h".repeat(300);
        let a = CRelayRingBuilder::new(CRelayHash::CarbonCh)
            .build([server(&long, 1, None), server("x", 1, None)])
            .unwrap();
        // Every key of the long host is cut to the same 255 bytes: one position.
        let positions: HashSet<u32> =
            a.entries().filter(|(_, d)| d.host() == long).map(|e| e.0).collect();
        assert!(positions.len() <= 1);
        let key = format!("('{long}', None):0");
        let cut = u32::from(md5_prefix16(&key.as_bytes()[..255]));
        assert!(a.entries().any(|(p, _)| p == cut));
    }

    #[test]
    fn jump_orders_instances_numerically_then_by_text() {
        let nodes = [
            server("h", 1, None),
            server("h", 2, Some("10")),
            server("h", 3, Some("9")),
            server("h", 4, Some("b")),
            server("h", 5, None),
            server("h", 6, Some("a")),
        ];
        let ring = CRelayRingBuilder::new(CRelayHash::JumpFnv1aCh).build(nodes).unwrap();
        let ports: Vec<u16> = ring.entries().map(|(_, d)| d.port()).collect();
        assert_eq!(ports, [3, 2, 6, 4, 1, 5]);
    }

    #[test]
    fn strtol_accepts_what_c_accepts() {
        assert_eq!(strtol_whole("42"), Some(42));
        assert_eq!(strtol_whole(" -7"), Some(-7));
        assert_eq!(strtol_whole("+3"), Some(3));
        assert_eq!(strtol_whole(""), Some(0));
        assert_eq!(strtol_whole(" "), None);
        assert_eq!(strtol_whole("-"), None);
        assert_eq!(strtol_whole("1a"), None);
        assert_eq!(strtol_whole("99999999999999999999"), Some(i64::MAX));
        assert_eq!(strtol_whole("-99999999999999999999"), Some(i64::MIN));
    }

    #[test]
    fn merge_sort_is_stable_and_sorts() {
        let mut v: Vec<(u8, usize)> =
            [3u8, 1, 2, 1, 3, 0, 2].iter().enumerate().map(|(i, &k)| (k, i)).collect();
        merge_sort_by(&mut v, &|a, b| a.0.cmp(&b.0));
        assert_eq!(v, [(0, 5), (1, 1), (1, 3), (2, 2), (2, 6), (3, 0), (3, 4)]);
    }

    #[test]
    fn refuses_impossible_clusters() {
        let b = CRelayRingBuilder::new(CRelayHash::Fnv1aCh);
        assert_eq!(b.build([]).unwrap_err(), RingError::Empty);
        let two = [server("a", 1, None), server("b", 1, None)];
        assert_eq!(
            CRelayRingBuilder::new(CRelayHash::CarbonCh)
                .replication(3)
                .build(two.clone())
                .unwrap_err(),
            RingError::ReplicationTooLarge { replication: 3, max: 2 }
        );
        assert_eq!(
            CRelayRingBuilder::new(CRelayHash::CarbonCh).replication(0).build(two).unwrap_err(),
            RingError::ZeroReplication
        );
        let dup = b.build([server("a", 1, Some("x")), server("a", 1, Some("y"))]);
        assert!(matches!(dup, Err(RingError::DuplicateNode { .. })));
        assert!(b.build([server("a", 1, None), server("a", 2, None)]).is_ok());
        assert_eq!("fnv1a_ch".parse::<CRelayHash>().unwrap(), CRelayHash::Fnv1aCh);
        assert!("mmh3_ch".parse::<CRelayHash>().is_err());
    }

    fn arb_hash() -> impl Strategy<Value = CRelayHash> {
        prop_oneof![
            Just(CRelayHash::CarbonCh),
            Just(CRelayHash::Fnv1aCh),
            Just(CRelayHash::JumpFnv1aCh)
        ]
    }

    fn arb_servers() -> impl Strategy<Value = Vec<Destination>> {
        proptest::collection::btree_map(
            (0u8..5, 2003u16..2006),
            proptest::option::of("[0-9a-z]{1,3}"),
            1..9,
        )
        .prop_map(|m| {
            m.into_iter().map(|((h, p), i)| Destination::new(format!("10.0.0.{h}"), p, i)).collect()
        })
    }

    proptest! {
        #[test]
        fn routes_are_distinct_servers_and_never_panic(
            hash in arb_hash(),
            servers in arb_servers(),
            replication in 1usize..9,
            key in proptest::collection::vec(any::<u8>(), 0..60),
        ) {
            let replication = replication.min(servers.len());
            let ring = CRelayRingBuilder::new(hash).replication(replication).build(servers).unwrap();
            let route: Vec<&Destination> = ring.route(&key).collect();
            let distinct: HashSet<&Destination> = route.iter().copied().collect();
            prop_assert_eq!(distinct.len(), route.len());
            prop_assert!(route.len() <= replication);
            prop_assert_eq!(ring.route(&key).len(), route.len());
            let by_index: Vec<&Destination> =
                ring.route(&key).indices().map(|i| &ring.nodes()[i]).collect();
            prop_assert_eq!(&by_index, &route);
            // A server whose replica keys are all another's (carbon_ch: same host and
            // instance; fnv1a_ch: same instance, or same host and port) is hidden behind it.
            // Otherwise every route is complete.
            let identities: HashSet<String> = ring
                .nodes()
                .iter()
                .map(|d| match (hash, d.instance()) {
                    (CRelayHash::CarbonCh, i) => format!("{}/{i:?}", d.host()),
                    (CRelayHash::Fnv1aCh, Some(i)) => format!("={i}"),
                    _ => format!("{}:{}", d.host(), d.port()),
                })
                .collect();
            if identities.len() == ring.nodes().len() {
                prop_assert_eq!(route.len(), replication);
            }
            // Everything after the first space is ignored.
            let mut line = key.clone();
            line.extend_from_slice(b" 1 2");
            if !key.contains(&b' ') {
                prop_assert_eq!(ring.route(&line).collect::<Vec<_>>(), route);
            }
        }

        #[test]
        fn jump_replicas_match_a_copied_bucket_list(
            servers in arb_servers(),
            key in proptest::collection::vec(any::<u8>(), 0..30),
        ) {
            let n = servers.len();
            let ring = CRelayRingBuilder::new(CRelayHash::JumpFnv1aCh)
                .replication(n)
                .build(servers)
                .unwrap();
            // carbon-c-relay's loop on a real array.
            let mut list: Vec<u32> = ring.owners.clone();
            let mut hash = fnv1a_64_c(hash_key(&key));
            let mut expected = Vec::new();
            let mut i = list.len();
            let mut pos = n;
            while i > 0 {
                let j = jump_bucket(hash, i as u32) as usize;
                expected.push(list[j] as usize);
                pos -= 1;
                if pos == 0 {
                    break;
                }
                hash ^= hash >> 12;
                hash ^= hash << 25;
                hash ^= hash >> 27;
                hash = hash.wrapping_mul(2_685_821_657_736_338_717);
                i -= 1;
                list[j] = list[i];
            }
            let got: Vec<usize> = ring.route(&key).indices().collect();
            prop_assert_eq!(got, expected);
        }

        #[test]
        fn ch_routes_match_a_linear_scan(
            hash in prop_oneof![Just(CRelayHash::CarbonCh), Just(CRelayHash::Fnv1aCh)],
            servers in arb_servers(),
            key in proptest::collection::vec(any::<u8>(), 0..30),
        ) {
            let n = servers.len();
            let ring = CRelayRingBuilder::new(hash).replication(n).build(servers).unwrap();
            let pos = ring.position(&key);
            let entries: Vec<(u32, &Destination)> = ring.entries().collect();
            let start = entries.iter().position(|e| e.0 >= pos).unwrap_or(0);
            let mut expected: Vec<&Destination> = Vec::new();
            for step in 0..entries.len() {
                let d = entries[(start + step) % entries.len()].1;
                if !expected.contains(&d) {
                    expected.push(d);
                }
            }
            let got: Vec<&Destination> = ring.route(&key).collect();
            prop_assert_eq!(got, expected);
        }
    }

    #[test]
    fn long_jump_replication_spills_swaps() {
        let servers: Vec<Destination> =
            (0..40).map(|i| server("10.0.0.1", 2000 + i, None)).collect();
        let ring =
            CRelayRingBuilder::new(CRelayHash::JumpFnv1aCh).replication(40).build(servers).unwrap();
        let got: HashSet<usize> = ring.route("foo.bar").indices().collect();
        assert_eq!(got.len(), 40);
    }
}
