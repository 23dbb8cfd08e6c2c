//! Batching one group's membership changes into `change-members` calls.
//!
//! The plan groups members per group (`Action::AddMembers` /
//! `Action::RemoveMembers`); the contract's `change-members` carries the
//! members of one group to add and to remove, at most the target's
//! `max-members-per-change` of them (1 for a 0.1 plugin, which then gets
//! one call per member exactly as before). This module only decides *how
//! to cut* the members into changes; journaling stays per member (see
//! `apply.rs`): one intent per member before the call, every member of the
//! change settled together after it.
//!
//! Two rules hold for every change [`chunk`] returns, whatever the input:
//! it carries between 1 and `max` members (`add` and `remove` together),
//! and no account is in it twice — in particular never in both `add` and
//! `remove`, whose order inside one call the contract does not define.

use std::collections::HashSet;
use std::hash::Hash;

/// Members to add to and remove from one group in one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Chunk<M> {
    pub add: Vec<M>,
    pub remove: Vec<M>,
}

impl<M> Chunk<M> {
    fn new() -> Chunk<M> {
        Chunk {
            add: Vec::new(),
            remove: Vec::new(),
        }
    }

    /// Members in the change, `add` and `remove` together.
    pub fn len(&self) -> usize {
        self.add.len() + self.remove.len()
    }
}

/// Cuts the members of one group into changes of at most `max` members
/// (`max` 0 is taken as 1), removals first, keeping the plan's order.
/// `account` names the account a member stands for: an account already in
/// the change being filled starts the next one, so a removal and an add of
/// the same account go in two calls, the removal first.
pub(crate) fn chunk<M, K: Eq + Hash>(
    add: Vec<M>,
    remove: Vec<M>,
    max: usize,
    account: impl Fn(&M) -> K,
) -> Vec<Chunk<M>> {
    let max = max.max(1);
    let mut changes = Vec::new();
    let mut current = Chunk::new();
    let mut in_current: HashSet<K> = HashSet::new();
    let members = remove
        .into_iter()
        .map(|m| (false, m))
        .chain(add.into_iter().map(|m| (true, m)));
    for (adding, member) in members {
        let key = account(&member);
        if current.len() == max || in_current.contains(&key) {
            changes.push(std::mem::replace(&mut current, Chunk::new()));
            in_current.clear();
        }
        in_current.insert(key);
        if adding {
            current.add.push(member);
        } else {
            current.remove.push(member);
        }
    }
    if current.len() > 0 {
        changes.push(current);
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(prefix: &str, n: usize) -> Vec<String> {
        (0..n).map(|i| format!("{prefix}{i}")).collect()
    }

    fn sizes(changes: &[Chunk<String>]) -> Vec<usize> {
        changes.iter().map(Chunk::len).collect()
    }

    fn cut(add: Vec<String>, remove: Vec<String>, max: usize) -> Vec<Chunk<String>> {
        chunk(add, remove, max, |m: &String| m.clone())
    }

    /// Every member comes out exactly once, in the plan's order per list.
    fn assert_all_once(changes: &[Chunk<String>], add: &[String], remove: &[String]) {
        let added: Vec<&String> = changes.iter().flat_map(|c| &c.add).collect();
        let removed: Vec<&String> = changes.iter().flat_map(|c| &c.remove).collect();
        assert_eq!(added, add.iter().collect::<Vec<_>>());
        assert_eq!(removed, remove.iter().collect::<Vec<_>>());
    }

    #[test]
    fn one_member_is_one_change() {
        let changes = cut(ids("a", 1), Vec::new(), 100);
        assert_eq!(
            changes,
            vec![Chunk {
                add: vec!["a0".to_owned()],
                remove: vec![],
            }]
        );
    }

    #[test]
    fn a_hundred_members_fit_one_change_of_max_100() {
        let add = ids("a", 100);
        let changes = cut(add.clone(), Vec::new(), 100);
        assert_eq!(sizes(&changes), [100]);
        assert_all_once(&changes, &add, &[]);
    }

    #[test]
    fn two_hundred_fifty_members_are_100_100_50() {
        let add = ids("a", 250);
        let changes = cut(add.clone(), Vec::new(), 100);
        assert_eq!(sizes(&changes), [100, 100, 50]);
        assert_all_once(&changes, &add, &[]);
        let remove = ids("r", 250);
        let changes = cut(Vec::new(), remove.clone(), 100);
        assert_eq!(sizes(&changes), [100, 100, 50]);
        assert_all_once(&changes, &[], &remove);
    }

    #[test]
    fn max_one_is_one_call_per_member_as_with_a_0_1_plugin() {
        let (add, remove) = (ids("a", 3), ids("r", 2));
        let changes = cut(add.clone(), remove.clone(), 1);
        assert_eq!(sizes(&changes), [1, 1, 1, 1, 1]);
        // Removals first, then adds, each in the plan's order.
        assert_eq!(changes[0].remove, ["r0"]);
        assert_eq!(changes[2].add, ["a0"]);
        assert_all_once(&changes, &add, &remove);
        // A max of 0 (a manifest that should have said 1) is taken as 1.
        assert_eq!(sizes(&cut(ids("a", 2), Vec::new(), 0)), [1, 1]);
    }

    #[test]
    fn adds_and_removes_share_changes_up_to_max() {
        let (add, remove) = (ids("a", 70), ids("r", 60));
        let changes = cut(add.clone(), remove.clone(), 100);
        assert_eq!(sizes(&changes), [100, 30]);
        assert_eq!((changes[0].remove.len(), changes[0].add.len()), (60, 40));
        assert_all_once(&changes, &add, &remove);
    }

    #[test]
    fn an_account_is_never_in_add_and_remove_of_one_change() {
        let add = vec!["x".to_owned(), "y".to_owned(), "z".to_owned()];
        let remove = vec!["w".to_owned(), "y".to_owned()];
        let changes = cut(add.clone(), remove.clone(), 100);
        for c in &changes {
            assert!(
                c.add.iter().all(|a| !c.remove.contains(a)),
                "{c:?} adds and removes the same account"
            );
        }
        // The removal of `y` comes in an earlier call than its add.
        assert_eq!(changes.len(), 2);
        assert_eq!(changes[0].remove, ["w", "y"]);
        assert_eq!(changes[0].add, ["x"]);
        assert_eq!(changes[1].add, ["y", "z"]);
        assert_all_once(&changes, &add, &remove);
    }

    #[test]
    fn a_repeated_account_goes_in_separate_changes() {
        let add = vec!["x".to_owned(), "x".to_owned()];
        assert_eq!(sizes(&cut(add, Vec::new(), 100)), [1, 1]);
    }

    #[test]
    fn nothing_to_change_is_no_call() {
        assert!(cut(Vec::new(), Vec::new(), 100).is_empty());
    }
}
