//! Undo: the inverse of what one run did, as an ordinary [`Plan`].
//!
//! The host hands over what the run *did* — its journal steps that took
//! effect ([`UndoInput::done`]), a create's `target_id` set to the account it
//! produced — with the target as it is now and the flow's links and policy.
//! The inverse is a reconciliation rule, so it is decided here:
//!
//! - a **deactivation** is reversed by a reactivation, a **create** or a
//!   **reactivation** by a deactivation (never a delete);
//! - an **update** is reversed field by field, writing back the value the
//!   run overwrote (the step's `old`), but only where the flow still owns
//!   the field ([`Reason::NoLongerOwned`] otherwise) and the account still
//!   holds what the run wrote, under the planner's equality
//!   ([`crate::recover::values_match`]); a field changed since is left alone
//!   and named ([`Reason::ChangedSince`]);
//! - a **manager change** is reversed the same way (the previous manager's
//!   account must still exist);
//! - what is already reversed is reported ([`Reason::NothingToUndo`]), and
//!   what muster cannot reverse — an invitation e-mail already sent, a
//!   group created (groups are never deleted), a membership change (the
//!   next sync sets memberships from the source), a link (nothing was
//!   called), rows of a compound field, an account deleted since — is a
//!   note per record ([`Reason::NotUndoable`]).
//!
//! The flow's allowed actions still apply: an undo never makes a kind of
//! call the flow may not make ([`Reason::NotAllowed`]). The result is an
//! ordinary plan — rendered, guarded ([`crate::Guard`]: undoing a
//! 300-person deactivation wave is itself a big plan) and applied like any
//! other — whose source side is the *desired* state of each account it
//! touches (the account as it is, with the values to restore), so the
//! host's applier needs nothing new. An undo of an undo is the undo of an
//! ordinary run.

use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::cell::OnceCell;
use core::fmt;

use crate::date::Date;
use crate::model::{Field, FieldRef, FieldValue, Group, Link, Person};
use crate::plan::{Action, Counts, Input, Plan, Reason, Side, Step, Subject};
use crate::policy::{ActionKind, Policy};
use crate::reconcile::evaluate_guard;
use crate::recover::values_match;
use crate::rows::NOTHING_WRITTEN;

/// What muster cannot reverse, said in the undo plan per record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotUndoable {
    /// The flow invites new accounts: the invitation e-mail of the create
    /// was sent and cannot be taken back (the account is still deactivated).
    InvitationSent,
    /// A group was created or renamed: groups are never deleted, and their
    /// names follow the source.
    Group(ActionKind),
    /// A member was added to or removed from a group: the next sync sets
    /// memberships from the source. Holds the member's id.
    Membership { kind: ActionKind, member: String },
    /// An existing account was linked: nothing was called, the link stays.
    Link,
    /// The account the run touched is no longer in the target. Holds its id.
    AccountGone(String),
    /// Rows of a compound field compared by row key. Holds the field.
    Rows(String),
    /// The previous department is a group this flow does not know. Holds
    /// the group id.
    UnknownGroup(String),
    /// A value the run overwrote does not fit the field any more.
    BadValue(FieldRef),
}

impl fmt::Display for NotUndoable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotUndoable::InvitationSent => f.write_str(
                "the invitation e-mail sent when the account was created cannot be taken back",
            ),
            NotUndoable::Group(kind) => write!(
                f,
                "its {kind} is not undone: groups are never deleted and follow the source"
            ),
            NotUndoable::Membership { kind, member } => write!(
                f,
                "its {kind} of {member} is not undone: the next sync sets memberships from the source"
            ),
            NotUndoable::Link => {
                f.write_str("it linked an existing account: nothing was called, the link stays")
            }
            NotUndoable::AccountGone(id) => {
                write!(
                    f,
                    "account {id} is no longer in the target: nothing to undo"
                )
            }
            NotUndoable::Rows(field) => write!(
                f,
                "the rows it wrote in `{field}` are not undone (rows follow the source)"
            ),
            NotUndoable::UnknownGroup(id) => write!(
                f,
                "the previous department {id} is not a group this flow created: left alone"
            ),
            NotUndoable::BadValue(field) => write!(
                f,
                "the value it overwrote in `{field}` does not fit the field: left alone"
            ),
        }
    }
}

/// Everything an undo plan is made from.
#[derive(Debug, Clone, Copy)]
pub struct UndoInput<'a> {
    /// The run to undo (for reasons).
    pub run: u64,
    /// The run's journal steps that took effect, in order; a create's
    /// `target_id` is the account it produced.
    pub done: &'a [Step],
    /// The target's accounts, read now.
    pub accounts: &'a [Person],
    /// The target's groups, read now.
    pub groups: &'a [Group],
    /// The flow's person links (source id ↔ account id).
    pub links: &'a [Link],
    /// The flow's group links (department id ↔ group id).
    pub group_links: &'a [Link],
    pub policy: &'a Policy,
    pub today: Date,
}

/// An undo, decided: [`Undo::plan`] is the plan to show and apply.
#[derive(Debug, Clone)]
pub struct Undo<'a> {
    input: UndoInput<'a>,
    /// The desired state of every record the plan names: an account as it
    /// is, with the values to write back, under its source id.
    people: Vec<Person>,
    /// Groups the notes name (the run's group steps).
    groups: Vec<Group>,
    actions: Vec<Action>,
}

/// Decides the inverse of `input.done`. See the module docs.
pub fn undo(input: UndoInput<'_>) -> Undo<'_> {
    let mut b = Builder::new(input);
    for step in input.done {
        b.step(step);
    }
    b.finish()
}

impl<'a> Undo<'a> {
    /// The undo as an ordinary plan, guarded by the flow's guard.
    pub fn plan(&self) -> Plan<'_> {
        let i = &self.input;
        let input = Input {
            source: Side {
                groups: &self.groups,
                ..Side::people(&self.people)
            },
            target: Side {
                groups: i.groups,
                ..Side::people(i.accounts)
            },
            links: i.links,
            prepared_links: None,
            group_links: i.group_links,
            identities: &[],
            written_rows: &NOTHING_WRITTEN,
            policy: i.policy,
            today: i.today,
        };
        let mut counts = Counts::default();
        for a in &self.actions {
            counts.add(a.kind());
        }
        let linked = i.links.len();
        Plan {
            input,
            actions: self.actions.clone(),
            counts,
            breaches: evaluate_guard(i.policy, &counts, linked),
            linked,
            accounts_by_id: OnceCell::new(),
            logins: BTreeMap::new(),
            undoes: Some(i.run),
        }
    }
}

/// What one account's undo writes back.
#[derive(Default)]
struct Restore {
    fields: Vec<FieldRef>,
}

struct Builder<'a> {
    input: UndoInput<'a>,
    by_id: BTreeMap<&'a str, usize>,
    /// Account id → source id, from the links.
    owners: BTreeMap<&'a str, &'a str>,
    /// Target group id → department id, from the group links.
    departments: BTreeMap<&'a str, &'a str>,
    /// Account index → index of its desired record in `people`.
    desired: BTreeMap<usize, usize>,
    people: Vec<Person>,
    groups: Vec<Group>,
    restores: BTreeMap<usize, Restore>,
    actions: Vec<Action>,
}

impl<'a> Builder<'a> {
    fn new(input: UndoInput<'a>) -> Builder<'a> {
        let by_id = input
            .accounts
            .iter()
            .enumerate()
            .map(|(i, a)| (a.id.as_str(), i))
            .collect();
        let reverse = |links: &'a [Link]| {
            links
                .iter()
                .map(|l| (l.target_id.as_str(), l.source_id.as_str()))
                .collect()
        };
        Builder {
            input,
            by_id,
            owners: reverse(input.links),
            departments: reverse(input.group_links),
            desired: BTreeMap::new(),
            people: Vec::new(),
            groups: Vec::new(),
            restores: BTreeMap::new(),
            actions: Vec::new(),
        }
    }

    fn run(&self) -> u64 {
        self.input.run
    }

    /// One done step of the run, reversed or reported.
    fn step(&mut self, step: &'a Step) {
        let run = self.run();
        match step.kind {
            ActionKind::Create | ActionKind::Reactivate => self.reverse_status(step, false),
            ActionKind::Deactivate => self.reverse_status(step, true),
            ActionKind::Update => self.reverse_update(step),
            ActionKind::SetManager => self.reverse_manager(step),
            ActionKind::Link => {
                if let Some(a) = self.account(step) {
                    let what = NotUndoable::Link;
                    self.note(Subject::Account(a), Reason::NotUndoable { run, what });
                }
            }
            ActionKind::CreateGroup
            | ActionKind::RenameGroup
            | ActionKind::AddMembers
            | ActionKind::RemoveMembers => self.group_note(step),
            ActionKind::Skip | ActionKind::Conflict => {}
        }
    }

    /// The account a step touched, or a note that it is gone.
    fn account(&mut self, step: &Step) -> Option<usize> {
        let id = step.target_id.as_deref()?;
        if let Some(a) = self.by_id.get(id.trim()) {
            return Some(*a);
        }
        let what = NotUndoable::AccountGone(id.into());
        let who = self.placeholder(step);
        let run = self.run();
        self.note(Subject::Person(who), Reason::NotUndoable { run, what });
        None
    }

    /// The desired record of account `a` (created on first use).
    fn person(&mut self, a: usize, step: &Step) -> usize {
        if let Some(p) = self.desired.get(&a) {
            return *p;
        }
        let account = &self.input.accounts[a];
        let id = step
            .source_id
            .as_deref()
            .or_else(|| self.owners.get(account.id.as_str()).copied())
            .unwrap_or(account.id.as_str());
        let mut p = account.clone();
        p.id = id.into();
        self.people.push(p);
        self.desired.insert(a, self.people.len() - 1);
        self.people.len() - 1
    }

    /// A record for a step whose account is gone: its ids only.
    fn placeholder(&mut self, step: &Step) -> usize {
        let id = step.source_id.as_deref().or(step.target_id.as_deref());
        let mut p = Person::new(id.unwrap_or_default());
        p.family_name = Some(step.label.clone()).filter(|l| !l.is_empty());
        self.people.push(p);
        self.people.len() - 1
    }

    fn note(&mut self, subject: Subject, reason: Reason) {
        self.actions.push(Action::Skip { subject, reason });
    }

    /// `kind` if the flow may make it, else a note.
    fn allowed(&mut self, kind: ActionKind, a: usize) -> bool {
        if self.input.policy.allowed.permits(kind) {
            return true;
        }
        self.note(Subject::Account(a), Reason::NotAllowed(kind));
        false
    }

    /// A create or reactivation is reversed by a deactivation, a
    /// deactivation by a reactivation (`reactivate`).
    fn reverse_status(&mut self, step: &Step, reactivate: bool) {
        let Some(a) = self.account(step) else {
            return;
        };
        let run = self.run();
        let active = self.input.accounts[a].active;
        if active == reactivate {
            let undone = step.kind;
            self.note(Subject::Account(a), Reason::NothingToUndo { run, undone });
        } else if reactivate {
            if self.allowed(ActionKind::Reactivate, a) {
                let person = self.person(a, step);
                self.actions.push(Action::Reactivate { person, account: a });
            }
        } else if self.allowed(ActionKind::Deactivate, a) {
            let person = Some(self.person(a, step));
            let reason = Reason::Undoes {
                run,
                undone: step.kind,
            };
            self.actions.push(Action::Deactivate {
                account: a,
                person,
                reason,
            });
        }
        if step.kind == ActionKind::Create && self.input.policy.invite_on_create {
            let what = NotUndoable::InvitationSent;
            self.note(Subject::Account(a), Reason::NotUndoable { run, what });
        }
    }

    /// Writes back the values an update overwrote, field by field.
    fn reverse_update(&mut self, step: &Step) {
        let Some(a) = self.account(step) else {
            return;
        };
        let run = self.run();
        let mut rows: Vec<&str> = step.rows.iter().map(|r| r.field.as_str()).collect();
        rows.dedup();
        for field in rows {
            let what = NotUndoable::Rows(field.into());
            self.note(Subject::Account(a), Reason::NotUndoable { run, what });
        }
        for change in &step.changes {
            if change.field == FieldRef::from(Field::ManagerId) {
                self.reverse_manager_change(step, a, change);
            } else if let Some(value) = self.restorable(a, change) {
                self.restore(step, a, &change.field, value);
            }
        }
    }

    /// The value to write back for `change`, or `None` with a note saying
    /// why it stays. A department is written back as the department id the
    /// previous group is linked to.
    fn restorable(&mut self, a: usize, change: &crate::Change) -> Option<Option<FieldValue>> {
        let run = self.run();
        let field = &change.field;
        if !self.input.policy.owned.contains(field) {
            let reason = Reason::NoLongerOwned {
                run,
                field: field.clone(),
            };
            self.note(Subject::Account(a), reason);
            return None;
        }
        let now = self.input.accounts[a]
            .get(field)
            .map(|v| v.to_owned_value());
        if !values_match(field, now.as_ref(), change.new.as_ref()) {
            let reason = Reason::ChangedSince {
                run,
                field: field.clone(),
                wrote: change.new.clone(),
                now,
            };
            self.note(Subject::Account(a), reason);
            return None;
        }
        if *field != FieldRef::from(Field::DepartmentId) {
            return Some(change.old.clone());
        }
        let Some(FieldValue::Text(group)) = &change.old else {
            return Some(None);
        };
        match self.departments.get(group.trim()) {
            Some(dept) => Some(Some(FieldValue::Text((*dept).into()))),
            None => {
                let what = NotUndoable::UnknownGroup(group.clone());
                self.note(Subject::Account(a), Reason::NotUndoable { run, what });
                None
            }
        }
    }

    /// Puts `value` into the account's desired record and lists the field
    /// in its update.
    fn restore(&mut self, step: &Step, a: usize, field: &FieldRef, value: Option<FieldValue>) {
        if !self.allowed(ActionKind::Update, a) {
            return;
        }
        let p = self.person(a, step);
        if self.people[p].set(field, value).is_err() {
            let run = self.run();
            let what = NotUndoable::BadValue(field.clone());
            self.note(Subject::Account(a), Reason::NotUndoable { run, what });
            return;
        }
        let restore = self.restores.entry(a).or_default();
        if !restore.fields.contains(field) {
            restore.fields.push(field.clone());
        }
    }

    fn reverse_manager(&mut self, step: &Step) {
        let Some(a) = self.account(step) else {
            return;
        };
        if let Some(change) = step.changes.first() {
            self.reverse_manager_change(step, a, change);
        }
    }

    /// Points the account back at its previous manager, when the flow still
    /// owns the manager and the account still reports to the one the run
    /// set.
    fn reverse_manager_change(&mut self, step: &Step, a: usize, change: &crate::Change) {
        if self.restorable(a, change).is_none() || !self.allowed(ActionKind::SetManager, a) {
            return;
        }
        let manager_account = match change.old.as_ref().map(|v| v.to_string()) {
            None => None,
            Some(id) => match self.by_id.get(id.trim()) {
                Some(m) => Some(*m),
                None => {
                    let run = self.run();
                    let what = NotUndoable::AccountGone(id);
                    self.note(Subject::Account(a), Reason::NotUndoable { run, what });
                    return;
                }
            },
        };
        let person = self.person(a, step);
        self.actions.push(Action::SetManager {
            person,
            account: Some(a),
            manager: None,
            manager_account,
        });
    }

    /// A group step: reported, never reversed.
    fn group_note(&mut self, step: &Step) {
        let id = step.source_id.as_deref().or(step.target_id.as_deref());
        self.groups.push(Group {
            id: id.unwrap_or_default().into(),
            name: step
                .group_name
                .clone()
                .unwrap_or_else(|| step.label.clone()),
            parent_id: None,
            members: Vec::new(),
        });
        let what = match step.kind {
            ActionKind::AddMembers | ActionKind::RemoveMembers => NotUndoable::Membership {
                kind: step.kind,
                member: step.members.join(", "),
            },
            kind => NotUndoable::Group(kind),
        };
        let run = self.run();
        let subject = Subject::Department(self.groups.len() - 1);
        self.note(subject, Reason::NotUndoable { run, what });
    }

    /// The updates, then every action in apply order (stable within a
    /// phase: the order of the run's journal).
    fn finish(mut self) -> Undo<'a> {
        for (account, restore) in core::mem::take(&mut self.restores) {
            let person = self.desired[&account];
            self.actions.push(Action::Update {
                person,
                account,
                changes: restore.fields,
            });
        }
        self.actions.sort_by_key(|a| a.kind().phase());
        Undo {
            input: self.input,
            people: self.people,
            groups: self.groups,
            actions: self.actions,
        }
    }
}
