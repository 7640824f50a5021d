//! [`MetricIndex`]: every metric name, for graphite-web's `find`.

use foldhash::fast::RandomState;
use std::collections::{BTreeSet, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::IndexError;
use super::glob::{self, Glob};
use super::trie::{Trie, Variant};

/// The number of shards (each a trie behind its own lock).
pub(crate) const SHARDS: usize = 16;

/// One match of [`MetricIndex::find`].
///
/// A name can be both a metric and a directory (`a.b` and `a.b.c` both stored): graphite-web
/// then returns two nodes with the same path, a leaf and a branch; here it is one node with
/// both flags set.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Node {
    /// The metric path (as graphite-web reports it: see [`MetricIndex::find`] for escapes).
    pub path: String,
    /// A metric is stored under this name.
    pub is_leaf: bool,
    /// Other metrics have this name as a prefix (`path.` something).
    pub is_branch: bool,
}

/// An in-memory index of metric names, safe to share between ingest threads and readers.
///
/// Plain names are split at `.` into a trie of interned components; tagged names
/// (`name;tag=value`) are kept whole in a set, as graphite-web only ever looks them up
/// exactly. See [`MetricIndex::find`] for the glob semantics.
///
/// # Concurrency
///
/// Names are spread over 16 shards by their first two components (`servers.web01`), each a
/// trie behind its own `RwLock`, so that neither side waits long for the other:
///
/// - [`insert`](MetricIndex::insert) of a name already present, the common case (it runs for
///   every received point), takes only its shard's read lock, and never allocates;
/// - inserting a new name holds one shard's write lock for one trie insertion (microseconds;
///   a shard's tables grow by doubling, so a rare insertion also rehashes one shard's table,
///   a sixteenth of the index);
/// - [`find`](MetricIndex::find) holds one shard's read lock at a time, and visits only the
///   shards that can hold a match when the pattern's first two components are literal.
///
/// A writer waits at most for the find that is walking its shard, and readers of other
/// shards do not wait at all.
///
/// # Memory
///
/// 54 bytes a metric for a million `servers.hostNNNNN.<group>.<item>.<stat>`-like names
/// (4 to 6 components, 95 a host), measured by `benches/store_index.rs` with a counting
/// global allocator, which agrees with [`heap_bytes`](MetricIndex::heap_bytes) (the sum of
/// the capacities): each component string is stored once, a trie node is 16 bytes, and the
/// two hash tables (child by name, leaf by full name) store only 8-byte slots. The test
/// `typical_names_take_under_100_bytes_each` keeps it under 100.
pub struct MetricIndex {
    /// The keyed hasher of every table (random keys: names come from the network).
    hasher: RandomState,
    /// The tries, by [`MetricIndex::shard_of`] of a name's first two components.
    shards: Box<[RwLock<Trie>]>,
    /// Tagged names, whole.
    tagged: RwLock<HashSet<Box<str>>>,
    /// Metrics in all shards plus tagged names (kept here so `len` takes no lock).
    len: AtomicUsize,
}

impl Default for MetricIndex {
    fn default() -> MetricIndex {
        MetricIndex::new()
    }
}

impl std::fmt::Debug for MetricIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricIndex").field("len", &self.len()).finish_non_exhaustive()
    }
}

/// The part of a plain name that picks its shard: up to its second `.`.
fn shard_key(name: &str) -> &str {
    let mut dots = name.match_indices('.').map(|(i, _)| i);
    let _first = dots.next();
    match dots.next() {
        Some(second) => name.get(..second).unwrap_or(name),
        None => name,
    }
}

impl MetricIndex {
    /// An empty index.
    pub fn new() -> MetricIndex {
        let hasher = RandomState::default();
        let shards = (0..SHARDS).map(|_| RwLock::new(Trie::new(hasher.clone()))).collect();
        MetricIndex {
            hasher,
            shards,
            tagged: RwLock::new(HashSet::new()),
            len: AtomicUsize::new(0),
        }
    }

    fn shard_of(&self, key: &str) -> usize {
        // Use the high bits: the tables index by the low ones.
        (Trie::hash_str(&self.hasher, key) >> 40) as usize % SHARDS
    }

    fn read(&self, shard: usize) -> Option<RwLockReadGuard<'_, Trie>> {
        // A panic cannot leave a trie half-updated in a way that breaks memory safety, and
        // losing the index would be worse than one odd name: carry on after a poisoning.
        self.shards.get(shard).map(|l| l.read().unwrap_or_else(PoisonError::into_inner))
    }

    fn write(&self, shard: usize) -> Option<RwLockWriteGuard<'_, Trie>> {
        self.shards.get(shard).map(|l| l.write().unwrap_or_else(PoisonError::into_inner))
    }

    fn tagged_read(&self) -> RwLockReadGuard<'_, HashSet<Box<str>>> {
        self.tagged.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn tagged_write(&self) -> RwLockWriteGuard<'_, HashSet<Box<str>>> {
        self.tagged.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a metric name; true if it was not there yet.
    ///
    /// Pass names as they are stored: a [`MetricName`](carbon_proto::MetricName), tagged
    /// names normalised ([`carbon_proto::tags::normalize`]). A plain name with an empty
    /// component (`a..b`, `.a`, `a.`) cannot be a file name and is not indexed (false).
    ///
    /// The "already there" path takes a shared lock, hashes the name once and walks a few
    /// trie nodes: no allocation.
    pub fn insert(&self, name: &str) -> bool {
        if name.contains(';') {
            if self.tagged_read().contains(name) {
                return false;
            }
            let added = self.tagged_write().insert(name.into());
            if added {
                self.len.fetch_add(1, Ordering::Relaxed);
            }
            return added;
        }
        let shard = self.shard_of(shard_key(name));
        let hash = Trie::hash_str(&self.hasher, name);
        if self.read(shard).is_some_and(|t| t.contains(name, hash)) {
            return false;
        }
        let added = self.write(shard).is_some_and(|mut t| t.insert(name, hash));
        if added {
            self.len.fetch_add(1, Ordering::Relaxed);
        }
        added
    }

    /// Whether the metric `name` is indexed.
    pub fn contains(&self, name: &str) -> bool {
        if name.contains(';') {
            return self.tagged_read().contains(name);
        }
        let hash = Trie::hash_str(&self.hasher, name);
        self.read(self.shard_of(shard_key(name))).is_some_and(|t| t.contains(name, hash))
    }

    /// Removes a metric (its file was deleted); true if it was indexed. Directories left
    /// without metrics disappear with it.
    pub fn remove(&self, name: &str) -> bool {
        let removed = if name.contains(';') {
            self.tagged_write().remove(name)
        } else {
            let hash = Trie::hash_str(&self.hasher, name);
            self.write(self.shard_of(shard_key(name))).is_some_and(|mut t| t.remove(name, hash))
        };
        if removed {
            self.len.fetch_sub(1, Ordering::Relaxed);
        }
        removed
    }

    /// The number of metrics (plain and tagged).
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    /// Whether there is no metric.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every metric name (plain and tagged), sorted.
    pub fn to_names(&self) -> Vec<String> {
        let mut out = Vec::with_capacity(self.len());
        for shard in 0..self.shards.len() {
            if let Some(t) = self.read(shard) {
                t.names(&mut out);
            }
        }
        out.extend(self.tagged_read().iter().map(|s| s.to_string()));
        out.sort_unstable();
        out
    }

    /// Bytes the index has allocated: the capacities of its vectors and tables, plus the
    /// tagged names and their set's buckets (an estimate for `std`'s `HashSet`).
    pub fn heap_bytes(&self) -> usize {
        let tries: usize =
            (0..self.shards.len()).filter_map(|s| self.read(s)).map(|t| t.heap_bytes()).sum();
        let tagged = self.tagged_read();
        let tagged_bytes = tagged.capacity() * (std::mem::size_of::<Box<str>>() + 1)
            + tagged.iter().map(|s| s.len()).sum::<usize>();
        tries + tagged_bytes
    }

    /// Releases spare capacity (after a bulk load).
    pub fn shrink_to_fit(&self) {
        for shard in 0..self.shards.len() {
            if let Some(mut t) = self.write(shard) {
                t.shrink_to_fit();
            }
        }
        self.tagged_write().shrink_to_fit();
    }

    /// Runs `f` on a shard's trie under its write lock (bulk loads).
    pub(crate) fn with_shard_of<R>(&self, name: &str, f: impl FnOnce(&mut Trie) -> R) -> Option<R> {
        let shard = self.shard_of(shard_key(name));
        self.write(shard).map(|mut t| f(&mut t))
    }

    /// Counts metrics a bulk load added through [`MetricIndex::with_shard_of`].
    pub(crate) fn add_len(&self, n: usize) {
        self.len.fetch_add(n, Ordering::Relaxed);
    }

    /// The metrics and directories matching a graphite-web find pattern, sorted by path.
    ///
    /// This is graphite-web 1.1.8's `StandardFinder.find_nodes` on the data directory:
    ///
    /// - a pattern with `;` (not starting with `_tagged.`) is an exact tagged name;
    /// - otherwise backslashes are removed, the pattern is split at `.`, and each component
    ///   is brace-expanded (`{a,b}`, nested too) and every variant matched: `**` alone spans
    ///   any number of levels (as the last component, everything below), a variant with `*`,
    ///   `?` or `[` is an `fnmatch` pattern (`[!a-c]` negates; see `glob.rs` for the
    ///   quirks), anything else is looked up as is, and an empty one (`a..b`, `{,x}`) stays
    ///   at the same level, as `isdir(dir + '/')` does;
    /// - a component whose raw text has an escaped `*`, `?`, `[` or `{` is reported with its
    ///   pattern text instead of the matched name (graphite-web's `find_escaped_pattern_fields`,
    ///   so `a.b\*` finds `a.bx` as `a.b*`).
    ///
    /// Where this differs from graphite-web: an empty last component (`a.`) finds nothing
    /// (graphite-web lists the directory itself as a branch named `a.`); an escaped component
    /// past the end of a `**` match is left alone (graphite-web fails the request with an
    /// `IndexError`); the `_tagged` directory and empty directories are not listed.
    ///
    /// # Errors
    ///
    /// [`IndexError::PatternTooComplex`] when a component expands to more than 10,000
    /// variants or nests braces deeper than 64 levels.
    pub fn find(&self, pattern: &str) -> Result<Vec<Node>, IndexError> {
        if pattern.contains(';') && !pattern.starts_with("_tagged.") {
            let found = self.tagged_read().contains(pattern);
            return Ok(if found {
                vec![Node { path: pattern.to_string(), is_leaf: true, is_branch: false }]
            } else {
                Vec::new()
            });
        }
        let clean = pattern.replace('\\', "");
        let parts = self.compile(pattern, &clean)?;
        let mut found = Vec::new();
        for shard in self.shards_for(&parts) {
            if let Some(t) = self.read(shard) {
                t.find(&parts, &mut found);
            }
        }
        let fields = glob::escaped_fields(pattern);
        if !fields.is_empty() {
            let pattern_parts: Vec<&str> = clean.split('.').collect();
            for (path, _, _) in &mut found {
                let mut parts: Vec<&str> = path.split('.').collect();
                for &f in &fields {
                    if let (Some(slot), Some(&text)) = (parts.get_mut(f), pattern_parts.get(f)) {
                        *slot = text;
                    }
                }
                *path = parts.join(".");
            }
        }
        found.sort_unstable();
        let mut nodes: Vec<Node> = Vec::with_capacity(found.len());
        for (path, is_leaf, is_branch) in found {
            match nodes.last_mut() {
                Some(last) if last.path == path => {
                    last.is_leaf |= is_leaf;
                    last.is_branch |= is_branch;
                }
                _ => nodes.push(Node { path, is_leaf, is_branch }),
            }
        }
        Ok(nodes)
    }

    /// Brace-expands and compiles each component of the cleaned pattern.
    fn compile(&self, pattern: &str, clean: &str) -> Result<Vec<Vec<Variant>>, IndexError> {
        clean
            .split('.')
            .map(|part| {
                let variants =
                    glob::expand_braces(part).map_err(|_| IndexError::PatternTooComplex {
                        pattern: pattern.to_string(),
                        limit: glob::MAX_BRACE_VARIANTS,
                    })?;
                Ok(variants
                    .into_iter()
                    .map(|v| {
                        if v.is_empty() {
                            Variant::Stay
                        } else if v == "**" {
                            Variant::GlobStar
                        } else if glob::has_wildcard(&v) {
                            Variant::Glob(Glob::new(&v))
                        } else {
                            let hash = Trie::hash_str(&self.hasher, &v);
                            Variant::Literal(v, hash)
                        }
                    })
                    .collect())
            })
            .collect()
    }

    /// The shards that can hold a match: when the first two components are literal, only
    /// the shards of their combinations; otherwise all.
    fn shards_for(&self, parts: &[Vec<Variant>]) -> Vec<usize> {
        fn literals(part: Option<&Vec<Variant>>) -> Option<Vec<&str>> {
            part?
                .iter()
                .map(|v| match v {
                    Variant::Literal(s, _) => Some(s.as_str()),
                    _ => None,
                })
                .collect()
        }
        if let (Some(first), Some(second)) = (literals(parts.first()), literals(parts.get(1))) {
            let mut shards = BTreeSet::new();
            for a in &first {
                for b in &second {
                    shards.insert(self.shard_of(&format!("{a}.{b}")));
                }
            }
            return shards.into_iter().collect();
        }
        (0..self.shards.len()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(names: &[&str]) -> MetricIndex {
        let idx = MetricIndex::new();
        for n in names {
            assert!(idx.insert(n), "{n}");
        }
        idx
    }

    fn find(idx: &MetricIndex, pattern: &str) -> Vec<(String, bool, bool)> {
        idx.find(pattern).unwrap().into_iter().map(|n| (n.path, n.is_leaf, n.is_branch)).collect()
    }

    fn s(path: &str, leaf: bool, branch: bool) -> (String, bool, bool) {
        (path.to_string(), leaf, branch)
    }

    #[test]
    fn finds_leaves_branches_and_both() {
        let idx = index(&["a.b", "a.b.c", "a.d", "x.y.z", "x.q"]);
        assert_eq!(find(&idx, "*"), [s("a", false, true), s("x", false, true)]);
        assert_eq!(find(&idx, "a.*"), [s("a.b", true, true), s("a.d", true, false)]);
        assert_eq!(find(&idx, "a.b"), [s("a.b", true, true)]);
        assert_eq!(find(&idx, "a.b.c"), [s("a.b.c", true, false)]);
        assert_eq!(find(&idx, "{a,x}.{b,q}"), [s("a.b", true, true), s("x.q", true, false)]);
        assert_eq!(find(&idx, "nope.*"), []);
    }

    #[test]
    fn globstar_spans_levels() {
        let idx = index(&["a.b", "a.b.c", "a.d", "x.y.z"]);
        assert_eq!(
            find(&idx, "**"),
            [
                s("a", false, true),
                s("a.b", true, true),
                s("a.b.c", true, false),
                s("a.d", true, false),
                s("x", false, true),
                s("x.y", false, true),
                s("x.y.z", true, false)
            ]
        );
        assert_eq!(find(&idx, "**.c"), [s("a.b.c", true, false)]);
        assert_eq!(find(&idx, "a.**.c"), [s("a.b.c", true, false)]);
        assert_eq!(find(&idx, "a.**.b"), [s("a.b", true, true)]);
        assert_eq!(find(&idx, "**.**.z"), [s("x.y.z", true, false)]);
    }

    #[test]
    fn escapes_report_the_pattern_text() {
        let idx = index(&["a.bx", "a.by"]);
        assert_eq!(find(&idx, "a.b\\*"), [s("a.b*", true, false)]);
        assert_eq!(find(&idx, "a.b*"), [s("a.bx", true, false), s("a.by", true, false)]);
    }

    #[test]
    fn empty_components_stay() {
        let idx = index(&["a.b", "a.c.d"]);
        assert_eq!(find(&idx, "a..b"), [s("a.b", true, false)]);
        assert_eq!(find(&idx, "a.{,c}.d"), [s("a.c.d", true, false)]);
        assert_eq!(find(&idx, "a."), []);
    }

    #[test]
    fn tagged_names_are_exact() {
        let idx = index(&["cpu;host=a", "plain"]);
        assert_eq!(find(&idx, "cpu;host=a"), [s("cpu;host=a", true, false)]);
        assert_eq!(find(&idx, "cpu;host=*"), []);
        assert_eq!(find(&idx, "*"), [s("plain", true, false)]);
        assert!(idx.contains("cpu;host=a"));
        assert_eq!(idx.len(), 2);
        assert!(idx.remove("cpu;host=a"));
        assert_eq!(idx.len(), 1);
    }

    #[test]
    fn refuses_explosive_patterns() {
        let idx = index(&["a"]);
        let p = "{a,b}".repeat(20);
        assert!(matches!(idx.find(&p), Err(IndexError::PatternTooComplex { .. })));
    }
}
