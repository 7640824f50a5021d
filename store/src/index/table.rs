//! A small open-addressing hash table of `u32` ids, for keys that live elsewhere.
//!
//! The metric index keeps every string once (component names in an arena, full names only as
//! paths through the trie), so its hash tables store just an id and 32 bits of the key's hash:
//! 8 bytes a slot. The caller supplies the hash and an equality test that looks the id up in
//! its own storage (`std`'s `HashMap` cannot do that without storing the key). Linear probing;
//! deleted slots become tombstones until the next rehash. The stored hash bits let the table
//! grow without asking for the keys again, so a resize is one pass over the slots.

/// A slot: an id and the low 32 bits of its key's hash.
#[derive(Clone, Copy)]
struct Slot {
    id: u32,
    tag: u32,
}

/// An empty slot's id.
const EMPTY: u32 = u32::MAX;
/// A deleted slot's id (a tombstone: probing goes on past it).
const DELETED: u32 = u32::MAX - 1;

/// The largest id the table can hold (the two values above are markers).
pub(crate) const MAX_ID: u32 = u32::MAX - 2;

/// An open-addressing table of ids, keyed by a caller-computed hash.
pub(crate) struct IdTable {
    /// Power-of-two many slots, or none before the first insert.
    slots: Vec<Slot>,
    /// Live ids.
    len: usize,
    /// Tombstones.
    deleted: usize,
}

impl IdTable {
    /// An empty table (allocates on the first insert).
    pub(crate) const fn new() -> IdTable {
        IdTable { slots: Vec::new(), len: 0, deleted: 0 }
    }

    /// The number of ids in the table.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Bytes allocated for the slots.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<Slot>()
    }

    /// The slot holding an id with this hash for which `eq` is true.
    pub(crate) fn find(&self, hash: u64, mut eq: impl FnMut(u32) -> bool) -> Option<usize> {
        if self.slots.is_empty() {
            return None;
        }
        let mask = self.slots.len() - 1;
        let tag = hash as u32;
        let mut i = tag as usize & mask;
        // The table is never full (load stays under 3/4), so an empty slot ends the probe.
        loop {
            let slot = self.slots.get(i)?;
            if slot.id == EMPTY {
                return None;
            }
            if slot.id != DELETED && slot.tag == tag && eq(slot.id) {
                return Some(i);
            }
            i = (i + 1) & mask;
        }
    }

    /// The id with this hash for which `eq` is true.
    pub(crate) fn get(&self, hash: u64, eq: impl FnMut(u32) -> bool) -> Option<u32> {
        self.find(hash, eq).and_then(|i| self.slots.get(i)).map(|s| s.id)
    }

    /// The id at `slot` (as returned by [`IdTable::find`]).
    pub(crate) fn id_at(&self, slot: usize) -> Option<u32> {
        self.slots.get(slot).map(|s| s.id).filter(|&id| id != EMPTY && id != DELETED)
    }

    /// Adds `id` under `hash`. The caller has checked that no equal key is present.
    pub(crate) fn insert(&mut self, hash: u64, id: u32) {
        debug_assert!(id <= MAX_ID);
        if (self.len + self.deleted + 1) * 4 > self.slots.len() * 3 {
            self.rehash();
        }
        self.place(hash as u32, id);
        self.len += 1;
    }

    /// Removes the id found at `slot` by [`IdTable::find`].
    pub(crate) fn remove_at(&mut self, slot: usize) {
        if let Some(s) = self.slots.get_mut(slot)
            && s.id != EMPTY
            && s.id != DELETED
        {
            s.id = DELETED;
            self.len -= 1;
            self.deleted += 1;
        }
    }

    /// Frees what the table does not need (after a bulk load).
    pub(crate) fn shrink_to_fit(&mut self) {
        let wanted = Self::capacity_for(self.len);
        if wanted < self.slots.len() || self.deleted > 0 {
            self.resize(wanted);
        }
    }

    /// Puts `id` in the first free slot of its probe sequence.
    fn place(&mut self, tag: u32, id: u32) {
        let mask = self.slots.len() - 1;
        let mut i = tag as usize & mask;
        loop {
            match self.slots.get_mut(i) {
                Some(slot) if slot.id == EMPTY || slot.id == DELETED => {
                    if slot.id == DELETED {
                        self.deleted -= 1;
                    }
                    *slot = Slot { id, tag };
                    return;
                }
                _ => i = (i + 1) & mask,
            }
        }
    }

    /// The slot count that keeps `len` ids at most half full.
    fn capacity_for(len: usize) -> usize {
        (len * 2).next_power_of_two().max(8)
    }

    /// Grows (or just clears the tombstones) so that one more id fits.
    fn rehash(&mut self) {
        let wanted = Self::capacity_for(self.len + 1);
        self.resize(wanted.max(self.slots.len()));
    }

    fn resize(&mut self, capacity: usize) {
        let old = std::mem::replace(&mut self.slots, vec![Slot { id: EMPTY, tag: 0 }; capacity]);
        self.deleted = 0;
        for slot in old {
            if slot.id != EMPTY && slot.id != DELETED {
                self.place(slot.tag, slot.id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn matches_a_hashmap_under_inserts_and_removes() {
        // Keys are small numbers with a deliberately weak hash, so probes collide a lot.
        let mut keys: Vec<u64> = Vec::new();
        let mut table = IdTable::new();
        let mut model: HashMap<u64, u32> = HashMap::new();
        let hash = |k: u64| k % 37;
        let mut x = 12345u64;
        for step in 0..20_000u32 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let key = (x >> 33) % 500;
            let found = table.find(hash(key), |id| keys[id as usize] == key);
            assert_eq!(found.is_some(), model.contains_key(&key), "step {step}");
            if let Some(slot) = found {
                if step % 3 == 0 {
                    table.remove_at(slot);
                    model.remove(&key);
                }
            } else {
                keys.push(key);
                let id = (keys.len() - 1) as u32;
                table.insert(hash(key), id);
                model.insert(key, id);
            }
            assert_eq!(table.len(), model.len());
        }
        table.shrink_to_fit();
        for (&k, &id) in &model {
            assert_eq!(table.get(hash(k), |i| keys[i as usize] == k), Some(id));
        }
    }
}
