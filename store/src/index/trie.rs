//! One shard of the metric index: a trie of interned name components.
//!
//! Layout, chosen to stay well under 100 bytes a metric for a million typical names:
//!
//! - every distinct component string is stored once, end to end in `text`, and named by a
//!   `u32` id (`ends[id]` is where it stops);
//! - a node is 16 bytes (parent, component id with a leaf bit, first child, next sibling) in
//!   one `Vec`; a node is a branch exactly when it has a child, as a directory with files is;
//! - `edges` finds the child of a node by component id, `names` finds the leaf of a full
//!   name: both are [`IdTable`]s of 8-byte slots that keep no string of their own (a name is
//!   checked by walking from its leaf up to the root).
//!
//! So the "already indexed" test that runs for every received point is one hash of the name
//! and one probe, then a walk of a few nodes: no allocation.

use foldhash::fast::RandomState;
use std::collections::HashSet;
use std::hash::BuildHasher;

use super::glob::Glob;
use super::table::{IdTable, MAX_ID};

/// "No node".
const NIL: u32 = u32::MAX;
/// The root node (the data directory itself).
const ROOT: u32 = 0;
/// The leaf bit of [`TrieNode::comp`]: a metric ends here.
const LEAF: u32 = 1 << 31;
/// The component id of a freed node.
const FREE: u32 = LEAF - 1;
/// The largest component id (ids must stay below the leaf bit and the free marker).
const MAX_COMP: u32 = FREE - 1;

/// A trie node (16 bytes).
#[derive(Clone, Copy)]
struct TrieNode {
    /// The parent node (`NIL` for the root).
    parent: u32,
    /// The component id, with [`LEAF`] set when a metric ends here.
    comp: u32,
    /// The first child, or `NIL`.
    first_child: u32,
    /// The next child of the same parent, or `NIL` (or the next free node).
    next_sibling: u32,
}

/// One brace-expanded variant of a pattern component, ready to match.
pub(crate) enum Variant {
    /// An empty literal: graphite-web's `isdir(join(dir, ''))` is true, so the walk stays
    /// where it is and goes on with the next component.
    Stay,
    /// A name looked up directly, with its hash under the index's hasher.
    Literal(String, u64),
    /// An `fnmatch` pattern matched against each child.
    Glob(Glob),
    /// `**`: any number of levels.
    GlobStar,
}

/// A trie of metric names.
pub(crate) struct Trie {
    /// The hasher every table of the index uses (one per index, randomly keyed).
    hasher: RandomState,
    /// The key of the edge hash (node ids are ours, but their order follows the names).
    edge_key: u64,
    /// Component strings, end to end.
    text: String,
    /// `ends[id]`: where component `id` ends in `text` (it starts where `id - 1` ends).
    ends: Vec<u32>,
    /// Component string -> id.
    comp_ids: IdTable,
    /// Node 0 is the root.
    nodes: Vec<TrieNode>,
    /// Head of the list of freed nodes, chained through `next_sibling`.
    free: u32,
    /// (parent, component id) -> child node.
    edges: IdTable,
    /// Full name -> leaf node.
    names: IdTable,
    /// Number of leaves.
    leaves: usize,
}

impl Trie {
    /// An empty trie hashing with `hasher`.
    pub(crate) fn new(hasher: RandomState) -> Trie {
        Trie {
            edge_key: hasher.hash_one(0x5EED_u64),
            hasher,
            text: String::new(),
            ends: Vec::new(),
            comp_ids: IdTable::new(),
            nodes: vec![TrieNode { parent: NIL, comp: FREE, first_child: NIL, next_sibling: NIL }],
            free: NIL,
            edges: IdTable::new(),
            names: IdTable::new(),
            leaves: 0,
        }
    }

    /// The hash of a string (a full name or a component) under this trie's hasher.
    pub(crate) fn hash_str(hasher: &RandomState, s: &str) -> u64 {
        hasher.hash_one(s)
    }

    /// The hash of a string under this trie's hasher.
    pub(crate) fn hash(&self, s: &str) -> u64 {
        self.hasher.hash_one(s)
    }

    /// The hash of an edge: a keyed SplitMix64 finaliser of the two ids (much cheaper than
    /// SipHash, and the key keeps the layout unpredictable).
    fn edge_hash(&self, parent: u32, comp: u32) -> u64 {
        let mut z = ((u64::from(parent) << 32) | u64::from(comp)) ^ self.edge_key;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Number of metrics.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.leaves
    }

    /// Bytes allocated by the trie (capacities, not lengths).
    pub(crate) fn heap_bytes(&self) -> usize {
        self.text.capacity()
            + self.ends.capacity() * 4
            + self.nodes.capacity() * std::mem::size_of::<TrieNode>()
            + self.comp_ids.heap_bytes()
            + self.edges.heap_bytes()
            + self.names.heap_bytes()
    }

    /// Releases spare capacity (after a bulk load).
    pub(crate) fn shrink_to_fit(&mut self) {
        self.text.shrink_to_fit();
        self.ends.shrink_to_fit();
        self.nodes.shrink_to_fit();
        self.comp_ids.shrink_to_fit();
        self.edges.shrink_to_fit();
        self.names.shrink_to_fit();
    }

    fn node(&self, id: u32) -> TrieNode {
        // Ids come from this trie's own links, so they are in range; a stale id would be a
        // bug, and reads as a free node rather than panicking.
        self.nodes.get(id as usize).copied().unwrap_or(TrieNode {
            parent: NIL,
            comp: FREE,
            first_child: NIL,
            next_sibling: NIL,
        })
    }

    fn node_mut(&mut self, id: u32) -> Option<&mut TrieNode> {
        self.nodes.get_mut(id as usize)
    }

    /// The text of component `id`.
    fn comp_str(&self, id: u32) -> &str {
        let end = self.ends.get(id as usize).copied().unwrap_or(0) as usize;
        let start =
            if id == 0 { 0 } else { self.ends.get(id as usize - 1).copied().unwrap_or(0) as usize };
        self.text.get(start..end).unwrap_or_default()
    }

    /// The component name of node `id`.
    fn name_of(&self, id: u32) -> &str {
        self.comp_str(self.node(id).comp & !LEAF)
    }

    fn is_leaf(&self, id: u32) -> bool {
        let comp = self.node(id).comp;
        comp != FREE && comp & LEAF != 0
    }

    fn has_children(&self, id: u32) -> bool {
        self.node(id).first_child != NIL
    }

    fn comp_id(&self, s: &str, hash: u64) -> Option<u32> {
        self.comp_ids.get(hash, |id| self.comp_str(id) == s)
    }

    fn intern(&mut self, s: &str) -> Option<u32> {
        let hash = Self::hash_str(&self.hasher, s);
        if let Some(id) = self.comp_id(s, hash) {
            return Some(id);
        }
        let id = u32::try_from(self.ends.len()).ok().filter(|&id| id <= MAX_COMP)?;
        let end = u32::try_from(self.text.len() + s.len()).ok()?;
        self.text.push_str(s);
        self.ends.push(end);
        self.comp_ids.insert(hash, id);
        Some(id)
    }

    fn child(&self, parent: u32, comp: u32) -> Option<u32> {
        let hash = self.edge_hash(parent, comp);
        self.edges.get(hash, |c| {
            let n = self.node(c);
            n.parent == parent && n.comp & !LEAF == comp
        })
    }

    fn children(&self, parent: u32) -> Children<'_> {
        Children { trie: self, next: self.node(parent).first_child }
    }

    /// The child of `parent` named `comp`, created if missing.
    fn child_or_insert(&mut self, parent: u32, comp: &str) -> Option<u32> {
        let comp = self.intern(comp)?;
        if let Some(c) = self.child(parent, comp) {
            return Some(c);
        }
        let sibling = self.node(parent).first_child;
        let node = TrieNode { parent, comp, first_child: NIL, next_sibling: sibling };
        let id = if self.free != NIL {
            let id = self.free;
            self.free = self.node(id).next_sibling;
            *self.node_mut(id)? = node;
            id
        } else {
            let id = u32::try_from(self.nodes.len()).ok().filter(|&id| id <= MAX_ID)?;
            self.nodes.push(node);
            id
        };
        self.node_mut(parent)?.first_child = id;
        let hash = self.edge_hash(parent, comp);
        self.edges.insert(hash, id);
        Some(id)
    }

    /// Whether leaf `id` is the metric `name` (walking up to the root).
    fn is_name_of(&self, id: u32, name: &str) -> bool {
        if !self.is_leaf(id) {
            return false;
        }
        let mut rest = name;
        let mut id = id;
        loop {
            let comp = self.name_of(id);
            match rest.strip_suffix(comp) {
                Some(r) => rest = r,
                None => return false,
            }
            let parent = self.node(id).parent;
            if parent == ROOT {
                return rest.is_empty();
            }
            match rest.strip_suffix('.') {
                Some(r) => rest = r,
                None => return false,
            }
            id = parent;
        }
    }

    /// Whether the metric `name` (hashed with [`Trie::hash_str`]) is in the trie.
    pub(crate) fn contains(&self, name: &str, hash: u64) -> bool {
        self.names.find(hash, |id| self.is_name_of(id, name)).is_some()
    }

    /// The node for the directory `components` (created as needed), for bulk loads.
    pub(crate) fn branch<'a>(&mut self, components: impl Iterator<Item = &'a str>) -> Option<u32> {
        let mut node = ROOT;
        for comp in components {
            node = self.child_or_insert(node, comp)?;
        }
        Some(node)
    }

    /// Adds the metric `name` (hashed with [`Trie::hash_str`]); true if it is new. A name with
    /// an empty component is refused (it could not be a file name).
    pub(crate) fn insert(&mut self, name: &str, hash: u64) -> bool {
        if self.contains(name, hash) || name.split('.').any(str::is_empty) {
            return false;
        }
        match self.branch(name.split('.')) {
            Some(leaf) => self.mark_leaf(leaf, hash),
            None => false,
        }
    }

    /// Adds the metric `name`, whose last component is `last` under the existing node
    /// `parent`, for bulk loads that resolve a directory once for all its files.
    pub(crate) fn insert_under(&mut self, parent: u32, last: &str, name: &str, hash: u64) -> bool {
        if last.is_empty() || self.contains(name, hash) {
            return false;
        }
        match self.child_or_insert(parent, last) {
            Some(leaf) => self.mark_leaf(leaf, hash),
            None => false,
        }
    }

    fn mark_leaf(&mut self, leaf: u32, hash: u64) -> bool {
        match self.node_mut(leaf) {
            Some(n) if n.comp & LEAF == 0 => n.comp |= LEAF,
            _ => return false,
        }
        self.names.insert(hash, leaf);
        self.leaves += 1;
        true
    }

    /// Removes the metric `name`; true if it was there. Nodes left with neither a metric nor
    /// a child are freed (a directory without files is not listed).
    pub(crate) fn remove(&mut self, name: &str, hash: u64) -> bool {
        let Some(slot) = self.names.find(hash, |id| self.is_name_of(id, name)) else {
            return false;
        };
        let Some(leaf) = self.names.id_at(slot) else {
            return false;
        };
        self.names.remove_at(slot);
        self.leaves -= 1;
        if let Some(n) = self.node_mut(leaf) {
            n.comp &= !LEAF;
        }
        self.prune(leaf);
        true
    }

    /// Frees `id` and its ancestors while they have neither a metric nor a child.
    fn prune(&mut self, mut id: u32) {
        while id != ROOT && !self.is_leaf(id) && !self.has_children(id) {
            let node = self.node(id);
            let parent = node.parent;
            // Unlink from the parent's child list.
            if self.node(parent).first_child == id {
                if let Some(p) = self.node_mut(parent) {
                    p.first_child = node.next_sibling;
                }
            } else {
                let mut prev = self.node(parent).first_child;
                while prev != NIL && self.node(prev).next_sibling != id {
                    prev = self.node(prev).next_sibling;
                }
                if let Some(p) = self.node_mut(prev) {
                    p.next_sibling = node.next_sibling;
                }
            }
            let hash = self.edge_hash(parent, node.comp & !LEAF);
            if let Some(slot) = self.edges.find(hash, |c| c == id) {
                self.edges.remove_at(slot);
            }
            let free = self.free;
            if let Some(n) = self.node_mut(id) {
                *n = TrieNode { parent: NIL, comp: FREE, first_child: NIL, next_sibling: free };
            }
            self.free = id;
            id = parent;
        }
    }

    /// The full name of node `id`.
    fn path_into(&self, id: u32, chain: &mut Vec<u32>, out: &mut String) {
        chain.clear();
        let mut n = id;
        while n != ROOT && n != NIL {
            chain.push(n);
            n = self.node(n).parent;
        }
        out.clear();
        for (i, &c) in chain.iter().rev().enumerate() {
            if i > 0 {
                out.push('.');
            }
            out.push_str(self.name_of(c));
        }
    }

    /// Every metric name, unordered.
    pub(crate) fn names(&self, out: &mut Vec<String>) {
        let mut chain = Vec::new();
        let mut stack = vec![ROOT];
        while let Some(n) = stack.pop() {
            for c in self.children(n) {
                if self.is_leaf(c) {
                    let mut s = String::new();
                    self.path_into(c, &mut chain, &mut s);
                    out.push(s);
                }
                if self.has_children(c) {
                    stack.push(c);
                }
            }
        }
    }

    /// Runs graphite-web's `_find_paths` over the trie: `parts` are the pattern's components,
    /// each already brace-expanded. Appends `(path, is_leaf, is_branch)` for every match
    /// (a node may come more than once).
    pub(crate) fn find(&self, parts: &[Vec<Variant>], out: &mut Vec<(String, bool, bool)>) {
        if parts.is_empty() {
            return;
        }
        // Literal names become component ids once: a name this trie has never seen matches
        // nothing here.
        let literal_ids: Vec<Vec<Option<u32>>> = parts
            .iter()
            .map(|variants| {
                variants
                    .iter()
                    .map(|v| match v {
                        Variant::Literal(name, hash) => self.comp_id(name, *hash),
                        _ => None,
                    })
                    .collect()
            })
            .collect();
        let mut hits: Vec<u32> = Vec::new();
        // Walk states (node, index of the next part). The same state can be reached along
        // several routes (`**`, an empty component, overlapping variants); it is then
        // expanded once. A pattern without those walks a tree, where no state repeats.
        let mut stack: Vec<(u32, usize)> = vec![(ROOT, 0)];
        let may_repeat = parts.iter().any(|variants| {
            variants.len() > 1
                || variants.iter().any(|v| matches!(v, Variant::Stay | Variant::GlobStar))
        });
        let mut seen: HashSet<(u32, usize)> = HashSet::new();
        let mut push = |stack: &mut Vec<(u32, usize)>, node: u32, part: usize| {
            if !may_repeat || seen.insert((node, part)) {
                stack.push((node, part));
            }
        };
        while let Some((node, i)) = stack.pop() {
            let (Some(variants), Some(ids)) = (parts.get(i), literal_ids.get(i)) else { continue };
            let last = i + 1 == parts.len();
            for (variant, id) in variants.iter().zip(ids) {
                match variant {
                    Variant::Stay => {
                        // As the last component graphite-web would list the directory itself
                        // under the name `<dir>.`; that is not a metric name, so nothing.
                        if !last {
                            push(&mut stack, node, i + 1);
                        }
                    }
                    Variant::Literal(..) => {
                        if let Some(c) = id.and_then(|comp| self.child(node, comp)) {
                            if last {
                                hits.push(c);
                            } else if self.has_children(c) {
                                push(&mut stack, c, i + 1);
                            }
                        }
                    }
                    Variant::Glob(glob) => {
                        for c in self.children(node) {
                            if glob.matches(self.name_of(c)) {
                                if last {
                                    hits.push(c);
                                } else if self.has_children(c) {
                                    push(&mut stack, c, i + 1);
                                }
                            }
                        }
                    }
                    Variant::GlobStar => {
                        // This directory and every directory below it; as the last component
                        // graphite-web then matches `*` in each, i.e. lists everything below.
                        let mut dirs = vec![node];
                        while let Some(d) = dirs.pop() {
                            if !last {
                                push(&mut stack, d, i + 1);
                            }
                            for c in self.children(d) {
                                if last {
                                    hits.push(c);
                                }
                                if self.has_children(c) {
                                    dirs.push(c);
                                }
                            }
                        }
                    }
                }
            }
        }
        hits.sort_unstable();
        hits.dedup();
        let mut chain = Vec::new();
        out.reserve(hits.len());
        for id in hits {
            let mut path = String::new();
            self.path_into(id, &mut chain, &mut path);
            out.push((path, self.is_leaf(id), self.has_children(id)));
        }
    }
}

/// The children of a node.
struct Children<'a> {
    trie: &'a Trie,
    next: u32,
}

impl Iterator for Children<'_> {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        if self.next == NIL {
            return None;
        }
        let id = self.next;
        self.next = self.trie.node(id).next_sibling;
        Some(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trie(names: &[&str]) -> Trie {
        let mut t = Trie::new(RandomState::default());
        for n in names {
            let h = Trie::hash_str(&t.hasher, n);
            assert!(t.insert(n, h), "{n}");
        }
        t
    }

    fn h(t: &Trie, s: &str) -> u64 {
        Trie::hash_str(&t.hasher, s)
    }

    #[test]
    fn inserts_contains_and_removes() {
        let mut t = trie(&["a.b.c", "a.b", "a.d", "x"]);
        assert_eq!(t.len(), 4);
        assert!(!t.insert("a.b", h(&t, "a.b")));
        assert!(t.contains("a.b.c", h(&t, "a.b.c")));
        assert!(!t.contains("a", h(&t, "a")));
        assert!(!t.contains("b.c", h(&t, "b.c")));
        assert!(!t.insert("a..b", h(&t, "a..b")));
        assert!(t.remove("a.b.c", h(&t, "a.b.c")));
        assert!(!t.remove("a.b.c", h(&t, "a.b.c")));
        assert!(t.contains("a.b", h(&t, "a.b")));
        assert!(t.remove("a.b", h(&t, "a.b")));
        assert!(t.remove("a.d", h(&t, "a.d")));
        assert_eq!(t.len(), 1);
        // The freed nodes are reused.
        let nodes = t.nodes.len();
        assert!(t.insert("q.r.s", h(&t, "q.r.s")));
        assert_eq!(t.nodes.len(), nodes);
        let mut all = Vec::new();
        t.names(&mut all);
        all.sort();
        assert_eq!(all, ["q.r.s", "x"]);
    }
}
