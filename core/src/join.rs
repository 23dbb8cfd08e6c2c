//! Cache-conscious hash joins on precomputed 128-bit keys.
//!
//! Joining a million ids through an ordinary hash table costs a cache miss
//! per insert and per probe, because the table is far larger than the CPU
//! caches. Databases solve this with *radix-partitioned* joins, and so do we:
//! both sides are scattered by the top bits of their hash into
//! partitions small enough for L1/L2 (a sequential pass), then each
//! partition is joined with a small open-addressing table that stays in
//! cache. Every record is touched a constant number of times, mostly
//! sequentially, and the whole join allocates a fixed number of buffers.
//!
//! Keys are two independent 64-bit hashes of the id ([`Key`]); two ids are
//! taken as equal when both halves agree (a false match needs a 128-bit
//! collision: about n²/2¹²⁹, i.e. never).

use alloc::vec;
use alloc::vec::Vec;

/// A 128-bit key: two independent 64-bit hashes of one text.
pub type Key = (u64, u64);

/// No key (an absent id or reference). Never matches.
pub const NO_KEY: Key = (0, 0);

/// No match for this probe row.
pub const NO_MATCH: u32 = u32::MAX;

fn partition_bits(len: usize) -> u32 {
    // About 512 rows a partition: its table (1024 × 24 B) stays in L1/L2.
    let parts = (len / 512).max(1).next_power_of_two();
    parts.trailing_zeros().min(16)
}

/// Scatters the non-empty `keys` by the top `bits` of their first hash:
/// returns partition offsets and the `(key, index)` rows, partition by
/// partition, in index order within each partition.
fn partition(keys: &[Key], bits: u32) -> (Vec<u32>, Vec<(Key, u32)>) {
    let parts = 1usize << bits;
    let part_of = |k: &Key| {
        if bits == 0 {
            0
        } else {
            (k.0 >> (64 - bits)) as usize
        }
    };
    let mut offsets = vec![0u32; parts + 1];
    for k in keys.iter().filter(|k| **k != NO_KEY) {
        offsets[part_of(k) + 1] += 1;
    }
    for p in 0..parts {
        offsets[p + 1] += offsets[p];
    }
    let mut cursor = offsets.clone();
    let mut rows = vec![(NO_KEY, 0u32); offsets[parts] as usize];
    for (i, k) in keys.iter().enumerate() {
        if *k != NO_KEY {
            let p = part_of(k);
            rows[cursor[p] as usize] = (*k, i as u32);
            cursor[p] += 1;
        }
    }
    (offsets, rows)
}

/// One side's keys, partitioned, with a small open-addressing table per
/// partition. Built once per side (when records are read), probed by every
/// join against that side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Index {
    bits: u32,
    /// Start of each partition's table in `slots`; `len() == parts + 1`.
    starts: Vec<u32>,
    slots: Vec<(Key, u32)>,
    /// `(first, later)` index pairs of equal keys; the first is the match.
    duplicates: Vec<(u32, u32)>,
}

impl Index {
    pub fn new(keys: &[Key]) -> Index {
        let bits = partition_bits(keys.len());
        let parts = 1usize << bits;
        let (offsets, rows) = partition(keys, bits);
        let mut starts = vec![0u32; parts + 1];
        for p in 0..parts {
            let n = (offsets[p + 1] - offsets[p]) as usize;
            let size = if n == 0 {
                0
            } else {
                (n * 2).next_power_of_two()
            };
            starts[p + 1] = starts[p] + size as u32;
        }
        let mut slots = vec![(NO_KEY, NO_MATCH); starts[parts] as usize];
        let mut duplicates = Vec::new();
        for p in 0..parts {
            let table = &mut slots[starts[p] as usize..starts[p + 1] as usize];
            let mask = table.len().wrapping_sub(1);
            for &(k, i) in &rows[offsets[p] as usize..offsets[p + 1] as usize] {
                let mut s = (k.1 as usize) & mask;
                loop {
                    let (sk, si) = table[s];
                    if si == NO_MATCH {
                        table[s] = (k, i);
                        break;
                    }
                    if sk == k {
                        duplicates.push((si, i));
                        break;
                    }
                    s = (s + 1) & mask;
                }
            }
        }
        Index {
            bits,
            starts,
            slots,
            duplicates,
        }
    }

    /// `(first, later)` index pairs of keys that occur more than once.
    pub fn duplicates(&self) -> &[(u32, u32)] {
        &self.duplicates
    }

    /// For each `probe` key, the index of the equal indexed key, or
    /// [`NO_MATCH`]. Probes are partitioned first, so each partition's table
    /// is loaded into cache once.
    pub fn probe(&self, probe: &[Key]) -> Vec<u32> {
        let mut out = vec![NO_MATCH; probe.len()];
        if self.slots.is_empty() {
            return out;
        }
        let (offsets, rows) = partition(probe, self.bits);
        for p in 0..1usize << self.bits {
            let table = &self.slots[self.starts[p] as usize..self.starts[p + 1] as usize];
            if table.is_empty() {
                continue;
            }
            let mask = table.len() - 1;
            for &(k, i) in &rows[offsets[p] as usize..offsets[p + 1] as usize] {
                let mut s = (k.1 as usize) & mask;
                loop {
                    let (sk, si) = table[s];
                    if si == NO_MATCH {
                        break;
                    }
                    if sk == k {
                        out[i as usize] = si;
                        break;
                    }
                    s = (s + 1) & mask;
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u64) -> Key {
        let h = i.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        (h, h.rotate_left(17) ^ 0x55)
    }

    #[test]
    fn joins_every_size_and_reports_duplicates() {
        for n in [0usize, 1, 7, 600, 5_000, 70_000] {
            let build: Vec<Key> = (0..n as u64).map(key).collect();
            let probe: Vec<Key> = (0..n as u64 + 10).rev().map(key).collect();
            let index = Index::new(&build);
            assert!(index.duplicates().is_empty());
            let out = index.probe(&probe);
            for (i, m) in out.iter().enumerate() {
                let wanted = (n as u64 + 9)
                    .checked_sub(i as u64)
                    .filter(|v| *v < n as u64);
                assert_eq!(
                    wanted.map(|v| v as u32).unwrap_or(NO_MATCH),
                    *m,
                    "n={n} i={i}"
                );
            }
        }
        let build = [key(1), key(2), key(1), NO_KEY, NO_KEY];
        let index = Index::new(&build);
        assert_eq!(
            index.probe(&[key(1), NO_KEY, key(3)]),
            [0, NO_MATCH, NO_MATCH]
        );
        assert_eq!(index.duplicates(), [(0, 2)]);
        assert_eq!(Index::new(&[]).probe(&[key(1)]), [NO_MATCH]);
    }
}
