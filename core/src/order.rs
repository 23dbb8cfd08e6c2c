//! The order of a plan's creates: **managers first**.
//!
//! A new account's manager can only be written once the manager's account
//! exists. When the manager is created earlier in the same run, the applier
//! can send the manager with the create itself (for Leapsome: in the PATCH
//! that follows the POST) instead of a separate `set_manager` call later —
//! one vendor call fewer per such person. So the creates are ordered over
//! the manager chain: by *depth* (how many managers above a person are also
//! created in this plan), then by id. Depth order is a topological order
//! (a manager's depth is one less than each of its reports'), and it keeps
//! the people of one depth together: nothing in one depth depends on
//! another create of that depth, so they can be sent in any order, or
//! together.
//!
//! A manager that is not created by this plan (it already has an account,
//! or none at all) puts no constraint on the order: the person is a root
//! (depth 0). A cycle in the manager chain (A manages B manages A — bad
//! data, but possible) cannot be ordered: its members are all roots, and
//! whoever of them is created second gets its manager from the plan's
//! `set_manager` step as before. Nothing is dropped either way: only the
//! order changes.

use alloc::vec;
use alloc::vec::Vec;

/// Not reached yet.
const UNSEEN: u32 = u32::MAX;
/// On the chain being walked (seeing it again is a cycle).
const ON_PATH: u32 = u32::MAX - 1;

/// The depths of `creates` (indices below `people`) in the manager chain:
/// `depth[p]` for each created `p`, `UNSEEN` for everyone else.
/// `manager(p)` is `p`'s manager's index, if it has one among the people.
fn depths(people: usize, creates: &[usize], manager: impl Fn(usize) -> Option<usize>) -> Vec<u32> {
    let mut created = vec![false; people];
    for &c in creates {
        created[c] = true;
    }
    let mut depth = vec![UNSEEN; people];
    let mut path = Vec::new();
    for &start in creates {
        // Walk up until a root, a person already placed, or a cycle.
        let mut at = start;
        let base = loop {
            match depth[at] {
                UNSEEN => {
                    depth[at] = ON_PATH;
                    path.push(at);
                    match manager(at).filter(|&m| m < people && created[m]) {
                        Some(m) => at = m,
                        None => break 0,
                    }
                }
                ON_PATH => {
                    // `at` is on the path: from it on, the path is the cycle.
                    let from = path.iter().position(|&p| p == at).unwrap_or(0);
                    for p in path.drain(from..) {
                        depth[p] = 0;
                    }
                    break 1;
                }
                placed => break placed + 1,
            }
        };
        // The last node walked sits at `base`; each one below it, one deeper.
        for (i, p) in path.drain(..).rev().enumerate() {
            depth[p] = base + i as u32;
        }
    }
    depth
}

/// Reorders `creates` (source person indices) managers first: by depth in
/// the manager chain, then by `id`, then by index (see the module doc).
/// `manager(p)` is the index of `p`'s manager, if any.
pub(crate) fn managers_first<'p>(
    creates: &mut [usize],
    people: usize,
    manager: impl Fn(usize) -> Option<usize>,
    id: impl Fn(usize) -> &'p str,
) {
    let depth = depths(people, creates, manager);
    creates.sort_by(|&x, &y| (depth[x], id(x), x).cmp(&(depth[y], id(y), y)));
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;
    use alloc::string::String;

    /// `managers[p]`: person p's manager. Ids are `p{index}`, so id order is
    /// index order for fewer than ten people.
    fn order(managers: &[Option<usize>], creates: &[usize]) -> Vec<usize> {
        let ids: Vec<String> = (0..managers.len()).map(|i| format!("p{i}")).collect();
        let mut creates = creates.to_vec();
        managers_first(&mut creates, managers.len(), |p| managers[p], |p| &ids[p]);
        creates
    }

    fn position(order: &[usize], p: usize) -> usize {
        order.iter().position(|&x| x == p).expect("present")
    }

    #[test]
    fn a_manager_comes_before_its_reports() {
        // 0 reports to 3, 3 to 1, 2 to 0; 1 is the top.
        let m = [Some(3), None, Some(0), Some(1)];
        assert_eq!(order(&m, &[0, 1, 2, 3]), [1, 3, 0, 2]);
    }

    #[test]
    fn one_depth_is_in_id_order() {
        // 0 manages 1..=4, given in reverse.
        let m = [None, Some(0), Some(0), Some(0), Some(0)];
        assert_eq!(order(&m, &[4, 3, 2, 1, 0]), [0, 1, 2, 3, 4]);
    }

    #[test]
    fn a_manager_not_created_here_puts_no_constraint() {
        // 1's manager 0 already has an account (not a create); 3's manager
        // (index 9) is not among the people at all.
        let m = [None, Some(0), Some(1), Some(9)];
        assert_eq!(order(&m, &[3, 2, 1]), [1, 3, 2]);
    }

    #[test]
    fn a_cycle_is_ordered_as_roots_and_loses_nobody() {
        // 0 → 1 → 2 → 0 is a cycle; 3 reports to 2, 4 to 3; 5 to itself.
        let m = [Some(1), Some(2), Some(0), Some(2), Some(3), Some(5)];
        let out = order(&m, &[4, 3, 2, 1, 0, 5]);
        assert_eq!(out, [0, 1, 2, 5, 3, 4]);
        // Entering the cycle from a report first gives the same order.
        assert_eq!(order(&m, &[4, 0, 1, 2, 3, 5]), out);
    }

    #[test]
    fn every_create_follows_its_created_manager_on_a_deep_random_tree() {
        // A deterministic pseudo-random forest of 2 000 people, of whom
        // every third is not created (already has an account).
        let n = 2_000;
        let mut state = 0x9E37_79B9_u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let managers: Vec<Option<usize>> = (0..n)
            .map(|p| (p > 0).then(|| (next() % p as u64) as usize))
            .collect();
        // Shuffle so that the id order is unrelated to the tree.
        let mut perm: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            perm.swap(i, (next() % (i as u64 + 1)) as usize);
        }
        let managers: Vec<Option<usize>> = {
            let mut inv = vec![0; n];
            for (i, &p) in perm.iter().enumerate() {
                inv[p] = i;
            }
            (0..n).map(|i| managers[perm[i]].map(|m| inv[m])).collect()
        };
        let creates: Vec<usize> = (0..n).filter(|p| !p.is_multiple_of(3)).collect();
        let ids: Vec<String> = (0..n).map(|i| format!("{i:05}")).collect();
        let mut out = creates.clone();
        managers_first(&mut out, n, |p| managers[p], |p| &ids[p]);
        let mut sorted = out.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, creates, "the same creates, each once");
        let created = |p: usize| !p.is_multiple_of(3);
        for (i, &p) in out.iter().enumerate() {
            if let Some(m) = managers[p].filter(|&m| created(m)) {
                assert!(position(&out, m) < i, "{m} manages {p} but comes after it");
            }
        }
    }
}
