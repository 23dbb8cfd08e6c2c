//! What each instance of a [`Pool`](super::inflight::Pool) knows of the
//! target's groups, and when it must read them again.
//!
//! A plugin instance may keep what it read or wrote about the target's
//! groups between calls (Leapsome sends a person's department as the team's
//! *name*, which it knows from the teams it read or created, and rewrites a
//! team's full member list from the members it knows when a change removes
//! one). With several instances in flight, a group created, renamed or
//! re-membered by one instance is unknown, or known wrong, to every other.
//!
//! The rule the pool keeps — and the guarantee a plugin may rely on
//! (`plugins/README.md`): **before an instance makes a call, it has seen
//! every change to each group the call names**, either because it made the
//! change itself or because it read the target's groups since. The groups a
//! call names ([`named_groups`]) are the group it changes (`rename-group`,
//! `change-members`) and the department of the account it creates or
//! updates; a new group's parent is sent as the target id the host
//! resolved, and needs nothing more. A call that names no group changed
//! by another instance since this one's last read goes ahead at once; one
//! that does is preceded by a `read-target-groups` on that instance (as a
//! new sibling does before its first call).
//!
//! Why per group and not "every other instance is stale after a wave with a
//! group change": a membership wave changes a hundred teams across all the
//! instances, and Leapsome's groups read is a read of the whole directory
//! (its group GET lists no members). Re-reading after each such wave would
//! cost every instance that read per wave; per group, an initial sync
//! re-reads once per instance after the teams are created (the accounts'
//! departments name them) and never during the memberships (each team's
//! change is made once, and the instance that creates a team never needs
//! news of it).
//!
//! How it is counted: waves are numbered from 1; the connected instance
//! read the target at the start of the run (wave 0). A read made during
//! wave `w` surely holds every change of the waves before `w`, perhaps
//! some of `w`'s; so an instance that read at `w` is stale for a group
//! another instance changed at `w` or later. Within one wave no call names
//! a group that another call of the wave changes (a wave is one phase of
//! the plan — groups are created, then renamed, then accounts written, then
//! members changed — and one group's calls share a lane), so the record is
//! only updated between waves.

use std::collections::HashMap;

use crate::runtime::{Applied, Operation, PluginError};

/// The last change of each group made through the pool, by target group id.
#[derive(Debug, Default)]
pub(crate) struct Changes {
    /// The wave being made (0 before the first).
    wave: u64,
    last: HashMap<String, Change>,
}

/// Who changed a group last, and in which wave.
#[derive(Debug, Clone, Copy)]
struct Change {
    by: usize,
    wave: u64,
}

/// What one instance of the pool has seen: its index in the pool (0 is the
/// connected instance) and the wave in which it last read the groups.
#[derive(Debug, Clone, Copy)]
pub(crate) struct View {
    pub index: usize,
    read_at: u64,
}

impl View {
    /// The view of instance `index`, which read the target's groups during
    /// wave `read_at` (0: at the start of the run).
    pub fn new(index: usize, read_at: u64) -> View {
        View { index, read_at }
    }

    /// The instance has just read the target's groups, during `changes`'
    /// current wave.
    pub fn refreshed(&mut self, changes: &Changes) {
        self.read_at = changes.wave;
    }
}

impl Changes {
    /// Starts the next wave; returns its number.
    pub fn next_wave(&mut self) -> u64 {
        self.wave += 1;
        self.wave
    }

    /// The wave being made.
    pub fn wave(&self) -> u64 {
        self.wave
    }

    /// The first group `op` names that another instance changed since
    /// `view` last read the groups: the instance must read them again
    /// before making `op`.
    pub fn stale_for<'o>(&self, view: &View, op: &'o Operation) -> Option<&'o str> {
        named_groups(op).find(|group| {
            self.last
                .get(*group)
                .is_some_and(|c| c.by != view.index && c.wave >= view.read_at)
        })
    }

    /// Records that instance `by` changed `group` (a target group id) in
    /// the current wave (see [`changed_group`]).
    pub fn record(&mut self, by: usize, group: String) {
        let wave = self.wave;
        self.last.insert(group, Change { by, wave });
    }
}

/// The target groups a call names whose state a plugin may use to build
/// it: the group it renames or whose members it changes, and the department
/// of the account it creates or updates (a dialect may write it by the
/// team's name, as Leapsome does). A new group's parent is not one: it
/// travels as the target id the host resolved from its links, and the new
/// group is all the call makes (so creating the teams of a tree never waits
/// for a read).
pub(crate) fn named_groups(op: &Operation) -> impl Iterator<Item = &str> {
    let group = match op {
        Operation::Create(person) => person.department_id.as_deref(),
        Operation::Update(update) => update.person.department_id.as_deref(),
        Operation::RenameGroup(rename) => Some(rename.id.as_str()),
        Operation::ChangeMembers(change) => Some(change.group_id.as_str()),
        Operation::CreateGroup(_)
        | Operation::Deactivate(_)
        | Operation::Reactivate(_)
        | Operation::SetManager(_) => None,
    };
    group.into_iter()
}

/// The group a call changed (or may have changed: a failed rename or
/// membership change may have reached the target in part): the group it
/// renames or whose members it changes, or the one it created.
pub(crate) fn changed_group(
    op: &Operation,
    result: &Result<Applied, PluginError>,
) -> Option<String> {
    match (op, result) {
        (Operation::CreateGroup(_), Ok(made)) => Some(made.target_id.clone()),
        (Operation::RenameGroup(rename), _) => Some(rename.id.clone()),
        (Operation::ChangeMembers(change), _) => Some(change.group_id.clone()),
        _ => None,
    }
}

/// Whether a call changes a group.
pub(crate) fn changes_a_group(op: &Operation) -> bool {
    matches!(
        op,
        Operation::CreateGroup(_) | Operation::RenameGroup(_) | Operation::ChangeMembers(_)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::connector::person_to_target;
    use crate::runtime::{AccountRef, MemberChange, NewGroup};

    fn members(group: &str) -> Operation {
        Operation::ChangeMembers(MemberChange {
            group_id: group.into(),
            add: vec!["a".into()],
            remove: Vec::new(),
        })
    }

    /// An error as a call may end with.
    fn failed() -> PluginError {
        PluginError::Runtime("the call did not complete".into())
    }

    /// Records what instance `by` made, as the pool does after a wave.
    fn call(
        changes: &mut Changes,
        by: usize,
        op: &Operation,
        result: &Result<Applied, PluginError>,
    ) {
        if let Some(group) = changed_group(op, result) {
            changes.record(by, group);
        }
    }

    fn made(id: &str) -> Result<Applied, PluginError> {
        Ok(Applied {
            target_id: id.into(),
        })
    }

    #[test]
    fn another_instances_change_makes_a_view_stale_for_that_group_only() {
        let mut changes = Changes::default();
        let (first, mut sibling) = (View::new(0, 0), View::new(1, 0));
        changes.next_wave();
        call(&mut changes, 0, &members("t1"), &made("t1"));
        changes.next_wave();
        // The instance that made the change knows it; the other does not,
        // and only for that group.
        assert_eq!(changes.stale_for(&first, &members("t1")), None);
        assert_eq!(changes.stale_for(&sibling, &members("t1")), Some("t1"));
        assert_eq!(changes.stale_for(&sibling, &members("t2")), None);
        // Once it has read again, it is not.
        sibling.refreshed(&changes);
        assert_eq!(changes.stale_for(&sibling, &members("t1")), None);
    }

    #[test]
    fn a_read_during_a_wave_does_not_cover_that_waves_changes() {
        let mut changes = Changes::default();
        changes.next_wave();
        let mut sibling = View::new(1, 0);
        sibling.refreshed(&changes);
        // Another instance changes t1 in the same wave, maybe after the read.
        call(&mut changes, 0, &members("t1"), &made("t1"));
        changes.next_wave();
        assert_eq!(changes.stale_for(&sibling, &members("t1")), Some("t1"));
    }

    #[test]
    fn a_created_group_is_known_by_its_new_id_and_named_by_departments() {
        let mut changes = Changes::default();
        changes.next_wave();
        let create = Operation::CreateGroup(NewGroup {
            name: "Sales".into(),
            parent_id: None,
        });
        call(&mut changes, 2, &create, &made("t9"));
        // A failed create made no group to know.
        call(&mut changes, 2, &create, &Err(failed()));
        changes.next_wave();
        let sibling = View::new(1, 0);
        let child = Operation::CreateGroup(NewGroup {
            name: "Sales EMEA".into(),
            parent_id: Some("t9".into()),
        });
        // Its child names it by the id the host resolved: nothing to read.
        assert_eq!(changes.stale_for(&sibling, &child), None);
        let person = muster_core::Person {
            department_id: Some("dept-9".into()),
            ..muster_core::Person::new("p1")
        };
        let person = person_to_target(&person, |_| None, |_| Some("t9".into()));
        assert_eq!(
            changes.stale_for(&sibling, &Operation::Create(person)),
            Some("t9")
        );
        // A call that names no group never needs a read.
        let deactivate = Operation::Deactivate(AccountRef { id: "u1".into() });
        assert_eq!(changes.stale_for(&sibling, &deactivate), None);
    }

    #[test]
    fn a_failed_membership_change_still_counts_as_a_change() {
        let mut changes = Changes::default();
        changes.next_wave();
        call(&mut changes, 0, &members("t1"), &Err(failed()));
        changes.next_wave();
        assert_eq!(
            changes.stale_for(&View::new(1, 0), &members("t1")),
            Some("t1")
        );
    }
}
