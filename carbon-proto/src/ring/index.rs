//! The sorted position table of a ring, with a radix index in front of its search.
//!
//! Both references find a key's entry with a binary search (`bisect_left`, or carbon-c-relay's
//! own). Here the position range is cut into about as many buckets as there are entries,
//! and a table says where each bucket starts, so a lookup reads one table slot and searches
//! the one or two entries of its bucket: the same answer as the binary search, without its
//! ten or so unpredictable branches.

/// Ring positions, ascending (equal ones allowed), with the bucket table.
#[derive(Debug, Clone)]
pub(crate) struct Positions {
    positions: Vec<i64>,
    /// The first position; bucket `b` covers `min + (b << shift)` up to the next bucket.
    min: i64,
    shift: u32,
    /// `starts[b]` is the index of the first position at or after bucket `b`'s start; one
    /// more slot than there are buckets, holding `positions.len()`.
    starts: Vec<u32>,
}

impl Positions {
    /// Indexes `positions`, which must be sorted and hold at most `u32::MAX` entries (ring
    /// builders check both).
    pub(crate) fn new(positions: Vec<i64>) -> Positions {
        debug_assert!(positions.is_sorted());
        let (Some(&min), Some(&max)) = (positions.first(), positions.last()) else {
            return Positions { positions, min: 0, shift: 0, starts: vec![0] };
        };
        // Both fit u64: max >= min, and positions are at most a ring length beyond i32.
        let range = max.abs_diff(min);
        let target = positions.len().next_power_of_two().trailing_zeros();
        let bits = u64::BITS - range.leading_zeros();
        let shift = bits.saturating_sub(target);
        let buckets = (range >> shift) as usize + 1;
        let mut starts = Vec::with_capacity(buckets + 1);
        let mut e = 0usize;
        for b in 0..buckets {
            let start = min + ((b as i64) << shift);
            while e < positions.len() && positions[e] < start {
                e += 1;
            }
            starts.push(e as u32);
        }
        starts.push(positions.len() as u32);
        Positions { positions, min, shift, starts }
    }

    /// The index of the first entry at or after `position`, wrapping to 0 past the last
    /// (`bisect_left(...) % len`). 0 for an empty table.
    #[inline]
    pub(crate) fn start(&self, position: i64) -> usize {
        let Some(&max) = self.positions.last() else { return 0 };
        if position <= self.min || position > max {
            return 0;
        }
        // min < position <= max, so the bucket exists and the answer is in it or at the next
        // bucket's first entry.
        let b = (position.abs_diff(self.min) >> self.shift) as usize;
        let (lo, hi) = (self.starts[b] as usize, self.starts[b + 1] as usize);
        lo + self.positions[lo..hi].partition_point(|&p| p < position)
    }

    /// The positions, ascending.
    pub(crate) fn as_slice(&self) -> &[i64] {
        &self.positions
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn bisect(positions: &[i64], p: i64) -> usize {
        let e = positions.partition_point(|&x| x < p);
        if e == positions.len() { 0 } else { e }
    }

    #[test]
    fn finds_entries_at_edges() {
        let t = Positions::new(vec![5, 9, 9, 9, 200, 65535, 65600]);
        for (p, e) in [(-1, 0), (5, 0), (6, 1), (9, 1), (10, 4), (65535, 5), (65600, 6), (65601, 0)]
        {
            assert_eq!(t.start(p), e, "{p}");
        }
        assert_eq!(Positions::new(vec![]).start(3), 0);
        assert_eq!(Positions::new(vec![7]).start(8), 0);
        let wide = Positions::new(vec![i64::from(i32::MIN), 0, i64::from(i32::MAX) + 100]);
        assert_eq!(wide.start(1), 2);
        assert_eq!(wide.start(i64::from(i32::MIN) + 1), 1);
    }

    proptest! {
        #[test]
        fn matches_binary_search(
            mut positions in proptest::collection::vec(-70_000i64..70_000, 1..300),
            probes in proptest::collection::vec(-80_000i64..80_000, 1..100),
            scale in prop_oneof![Just(1i64), Just(1 << 16), Just(1 << 20)],
        ) {
            for p in &mut positions {
                *p *= scale;
            }
            positions.sort_unstable();
            let t = Positions::new(positions.clone());
            for probe in probes.iter().map(|p| p * scale).chain(positions.iter().copied()) {
                prop_assert_eq!(t.start(probe), bisect(&positions, probe));
                prop_assert_eq!(t.start(probe + 1), bisect(&positions, probe + 1));
            }
        }
    }
}
