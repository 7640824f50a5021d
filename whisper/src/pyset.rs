//! The iteration order of a CPython `set` of small non-negative integers.
//!
//! whisper.py's `update_many` propagates each coarser interval in the order of
//! `set(lowerIntervals)`. That order is visible on disk: into an empty archive, the first
//! interval written becomes slot 0, and every later one is placed relative to it. To write the
//! same bytes we replay CPython 3.11's set insertion (`Objects/setobject.c`: `set_add_entry`,
//! `set_table_resize`, `set_insert_clean`) on a table of hashes. For integers `0 <= n < 2**61 - 1`,
//! `hash(n) == n`, which covers every whisper timestamp.
//!
//! The `tests/integration` suite checks this order against `/usr/bin/python3` on random inputs.

/// Probes of adjacent slots before jumping (CPython's `LINEAR_PROBES`).
const LINEAR_PROBES: usize = 9;
/// Shift of the perturbation between jumps (CPython's `PERTURB_SHIFT`).
const PERTURB_SHIFT: u32 = 5;
/// Slots in a fresh table (CPython's `PySet_MINSIZE`).
const MIN_SIZE: usize = 8;

/// A set of `u32` that iterates in CPython's order.
///
/// Keys are unique; inserting one that is present changes nothing.
#[derive(Debug)]
pub(crate) struct PySet {
    /// Open-addressed table; `None` is an empty slot. There are no deletions, so no dummies.
    table: Vec<Option<u32>>,
    /// Occupied slots (CPython's `fill`, equal to `used` without deletions).
    fill: usize,
}

impl PySet {
    pub(crate) fn new() -> PySet {
        PySet { table: vec![None; MIN_SIZE], fill: 0 }
    }

    /// Builds the set from keys in insertion order, as `set(list)` does.
    pub(crate) fn from_keys(keys: impl IntoIterator<Item = u32>) -> PySet {
        let mut set = PySet::new();
        for k in keys {
            set.insert(k);
        }
        set
    }

    fn mask(&self) -> usize {
        self.table.len() - 1
    }

    pub(crate) fn insert(&mut self, key: u32) {
        let mask = self.mask();
        let hash = key as usize;
        let mut perturb = hash;
        let mut i = hash & mask;
        loop {
            let probes = if i + LINEAR_PROBES <= mask { LINEAR_PROBES } else { 0 };
            for j in i..=i + probes {
                match self.table[j] {
                    None => {
                        self.table[j] = Some(key);
                        self.fill += 1;
                        if self.fill * 5 >= mask * 3 {
                            let used = self.fill;
                            self.resize(if used > 50_000 { used * 2 } else { used * 4 });
                        }
                        return;
                    }
                    Some(k) if k == key => return,
                    Some(_) => {}
                }
            }
            perturb >>= PERTURB_SHIFT;
            i = (i.wrapping_mul(5).wrapping_add(1).wrapping_add(perturb)) & mask;
        }
    }

    fn resize(&mut self, min_used: usize) {
        let mut size = MIN_SIZE;
        while size <= min_used {
            size <<= 1;
        }
        let old = std::mem::replace(&mut self.table, vec![None; size]);
        let mask = size - 1;
        for key in old.into_iter().flatten() {
            // set_insert_clean: the key is known to be absent and there are no dummies.
            let hash = key as usize;
            let mut perturb = hash;
            let mut i = hash & mask;
            'probe: loop {
                if self.table[i].is_none() {
                    self.table[i] = Some(key);
                    break 'probe;
                }
                if i + LINEAR_PROBES <= mask {
                    for j in i + 1..=i + LINEAR_PROBES {
                        if self.table[j].is_none() {
                            self.table[j] = Some(key);
                            break 'probe;
                        }
                    }
                }
                perturb >>= PERTURB_SHIFT;
                i = (i.wrapping_mul(5).wrapping_add(1).wrapping_add(perturb)) & mask;
            }
        }
    }

    /// The keys in CPython's iteration order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.table.iter().flatten().copied()
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.fill
    }
}

#[cfg(test)]
mod tests {
    use super::PySet;

    fn order(keys: &[u32]) -> Vec<u32> {
        PySet::from_keys(keys.iter().copied()).iter().collect()
    }

    #[test]
    fn small_ints_iterate_by_slot() {
        // list(set([5, 3, 9, 1])) == [9, 3, 5, 1] in CPython: 9 & 7 == 1 takes slot 1, so 1
        // jumps to slot (1 * 5 + 1) & 7 == 6.
        assert_eq!(order(&[5, 3, 9, 1]), vec![9, 3, 5, 1]);
        assert_eq!(order(&[1, 9]), vec![1, 9]);
    }

    #[test]
    fn known_cpython_orders() {
        // Checked with CPython 3.11: list(set([1700000100, 1700000400, 1700000700]))
        assert_eq!(
            order(&[1700000100, 1700000400, 1700000700]),
            vec![1700000400, 1700000700, 1700000100]
        );
    }

    #[test]
    fn duplicates_are_ignored_and_resizes_keep_everything() {
        let keys: Vec<u32> = (0..1000).map(|i| 1_700_000_000 + (i % 300) * 300).collect();
        let set = PySet::from_keys(keys.iter().copied());
        assert_eq!(set.len(), 300);
        let mut got: Vec<u32> = set.iter().collect();
        got.sort_unstable();
        got.dedup();
        assert_eq!(got.len(), 300);
    }
}
