//! Counter deltas and rates between collector runs.
//!
//! Diamond divides a counter's delta by the *configured* interval and publishes 0 for the
//! first sample and after a wrap it guesses. Here a rate is the delta over the *real* time
//! between two runs ([`Clock`], from the monotonic [`Instant`] of each run), and a sample with
//! nothing to compare against (the first one, or one after the counter went down, i.e. a
//! reset: a re-created interface, a re-attached disk, a reused pid) is skipped rather than
//! published as a fake 0 or a huge spike.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::time::Instant;

/// The real time between consecutive runs of one collector.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    last: Option<Instant>,
}

impl Clock {
    /// A clock that has not ticked yet.
    pub fn new() -> Clock {
        Clock::default()
    }

    /// Records a run at `now` and returns the seconds since the previous run, or `None` on the
    /// first run or when `now` is not after the previous run (no rate can be computed).
    pub fn tick(&mut self, now: Instant) -> Option<f64> {
        let prev = self.last.replace(now)?;
        let secs = now.checked_duration_since(prev)?.as_secs_f64();
        (secs > 0.0).then_some(secs)
    }
}

/// `delta` per second over `elapsed` seconds.
pub fn per_second(delta: u64, elapsed: f64) -> f64 {
    delta as f64 / elapsed
}

/// The last values of a set of counters, grouped by entity (a device, an interface, a cpu, a
/// pid), so one lookup serves all of an entity's fields.
///
/// Entities not updated between two [`sweep`](CounterTable::sweep)s are forgotten, so the
/// table stays as large as what the host currently has (pids come and go).
#[derive(Debug)]
pub struct CounterTable<K = String> {
    entries: HashMap<K, Entry>,
    generation: u64,
}

#[derive(Debug)]
struct Entry {
    values: Vec<u64>,
    generation: u64,
}

impl<K> Default for CounterTable<K> {
    fn default() -> Self {
        CounterTable { entries: HashMap::new(), generation: 0 }
    }
}

impl<K: Eq + Hash> CounterTable<K> {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores `values` as `entity`'s counters and writes into `deltas` (cleared first) the
    /// increase of each since the previous update: `None` for a counter seen for the first
    /// time or one that went down (a reset). Allocates only for an entity not seen before.
    pub fn update<Q>(&mut self, entity: &Q, values: &[u64], deltas: &mut Vec<Option<u64>>)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        deltas.clear();
        let generation = self.generation;
        match self.entries.get_mut(entity) {
            Some(entry) => {
                deltas.extend(
                    values
                        .iter()
                        .enumerate()
                        .map(|(i, &v)| entry.values.get(i).and_then(|&old| v.checked_sub(old))),
                );
                entry.values.clear();
                entry.values.extend_from_slice(values);
                entry.generation = generation;
            }
            None => {
                deltas.extend(values.iter().map(|_| None));
                self.entries
                    .insert(entity.to_owned(), Entry { values: values.to_vec(), generation });
            }
        }
    }

    /// Forgets the entities not updated since the previous sweep.
    pub fn sweep(&mut self) {
        let current = self.generation;
        self.entries.retain(|_, e| e.generation == current);
        self.generation = self.generation.wrapping_add(1);
    }

    /// How many entities are remembered.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no entity is remembered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn first_sample_and_resets_give_no_delta() {
        let mut t: CounterTable = CounterTable::new();
        let mut d = Vec::new();
        t.update("eth0", &[100, 5], &mut d);
        assert_eq!(d, [None, None]);
        t.update("eth0", &[150, 5], &mut d);
        assert_eq!(d, [Some(50), Some(0)]);
        t.update("eth0", &[10, 9], &mut d);
        assert_eq!(d, [None, Some(4)], "a counter that went down is a reset");
        t.update("eth0", &[30, 9, 1], &mut d);
        assert_eq!(d, [Some(20), Some(0), None], "a new field is a first sample");
    }

    #[test]
    fn sweep_forgets_entities_that_went_away() {
        let mut t: CounterTable = CounterTable::new();
        let mut d = Vec::new();
        t.update("a", &[1], &mut d);
        t.update("b", &[1], &mut d);
        t.sweep();
        t.update("a", &[2], &mut d);
        t.sweep();
        assert_eq!(t.len(), 1);
        t.update("b", &[3], &mut d);
        assert_eq!(d, [None], "b was forgotten, so this is a first sample again");
    }

    #[test]
    fn tuple_keys_work_without_strings() {
        let mut t: CounterTable<(u32, u64)> = CounterTable::new();
        let mut d = Vec::new();
        t.update(&(7, 100), &[10], &mut d);
        t.update(&(7, 100), &[25], &mut d);
        assert_eq!(d, [Some(15)]);
    }

    #[test]
    fn clock_measures_real_elapsed_time() {
        let mut c = Clock::new();
        let t0 = Instant::now();
        assert_eq!(c.tick(t0), None);
        assert_eq!(c.tick(t0 + Duration::from_millis(2500)), Some(2.5));
        assert_eq!(c.tick(t0 + Duration::from_millis(2500)), None, "no time passed");
        assert_eq!(per_second(10, 2.5), 4.0);
    }
}
