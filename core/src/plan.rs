//! The plan: what will be done, in what order, and why.
//!
//! A [`Plan`] borrows the [`Input`] it was made from and holds actions as
//! *indices* into it plus small change lists, so unchanged records cost
//! nothing to represent. [`Plan::steps`] resolves the actions into owned,
//! serialisable [`Step`]s (ids, values, reasons) for plan files and `--json`,
//! and `Display` renders them like a terraform plan.

use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::cell::OnceCell;
use core::fmt;

use crate::date::Date;
use crate::model::{Field, FieldRef, FieldValue, Group, Link, Person};
use crate::normalize::Lookalike;
use crate::policy::{ActionKind, CorrelationKey, Policy};
use crate::prepare::{Prepared, PreparedLinks};
use crate::present::{person_name, write_details};
use crate::read::Coverage;
use crate::rows::{self, RowChange, RowProblem, WrittenRows};

/// One side of a reconciliation: people (or accounts) and groups.
#[derive(Debug, Clone, Copy)]
pub struct Side<'a> {
    pub people: &'a [Person],
    pub groups: &'a [Group],
    /// What the read covered ([`crate::read`]). A changes-only source is
    /// planned only for a flow that cannot deactivate, and then the accounts
    /// of the people absent from it are left untouched; a target must be
    /// read in full.
    pub coverage: Coverage,
    /// Source ids that were read but cannot be used this run (their record
    /// could not be mapped): they are not in `people`, and their linked
    /// accounts are left untouched — no update, deactivation or membership
    /// change — and reported ([`Reason::SourceRecordUnusable`]). Empty on
    /// the target side.
    pub held: &'a [String],
    /// Per-record hashes computed when the records were read
    /// ([`Prepared::new`]); without them the planner prepares the side
    /// itself.
    pub prepared: Option<&'a Prepared>,
    /// Target side: logins of accounts that exist but are not in `people`
    /// (a single-record run leaves out the accounts linked to people it did
    /// not read). A create may not take them ([`crate::login`]). Empty on
    /// the source side.
    pub other_logins: &'a [String],
}

impl<'a> Side<'a> {
    /// A fully read side without groups, held records or fingerprints.
    pub fn people(people: &'a [Person]) -> Side<'a> {
        Side {
            people,
            groups: &[],
            coverage: Coverage::Full,
            held: &[],
            prepared: None,
            other_logins: &[],
        }
    }
}

/// Everything one plan is made from.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    /// The desired state: source people, mapped into the target's vocabulary
    /// (`manager_id`/`department_id` still hold *source* ids), and the
    /// source's departments.
    pub source: Side<'a>,
    /// The actual state: target accounts and groups.
    pub target: Side<'a>,
    /// Person links: source id ↔ target account id.
    pub links: &'a [Link],
    /// Join keys of `links`, computed when they were loaded
    /// ([`PreparedLinks::new`]); without them the planner computes them.
    pub prepared_links: Option<&'a PreparedLinks>,
    /// Group links: source department id ↔ target group id. A target group
    /// is *owned* by the flow exactly when a group link names it.
    pub group_links: &'a [Link],
    /// Person links of *another* flow whose target is this flow's source
    /// (e.g. `lucca-to-cards` for a Cards → Lucca flow): an unlinked source
    /// person that is the target of one of them is matched, before any
    /// correlation key, to the account that link's source id names — the
    /// identity that flow established ([`Policy::identity_links`]). Empty
    /// for most flows.
    pub identities: &'a [Link],
    /// The compound-field rows this flow wrote, per account: the only rows
    /// it may change or remove ([`crate::rows`]). [`rows::NOTHING_WRITTEN`]
    /// for a flow without row keys.
    pub written_rows: &'a WrittenRows,
    pub policy: &'a Policy,
    /// Today in the tenant's time zone.
    pub today: Date,
}

/// A group that exists, or one this plan creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupRef {
    /// Index into the target's groups.
    Existing(usize),
    /// Index into the source's groups (a `CreateGroup` earlier in the plan).
    Planned(usize),
}

/// What a report (skip or conflict) is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    /// Index into the source's people.
    Person(usize),
    /// Index into the target's accounts.
    Account(usize),
    /// Index into the source's groups.
    Department(usize),
}

/// How an unlinked person was matched to an existing account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchedBy {
    /// Through a link of another flow ([`Input::identities`]).
    Identity,
    /// By a correlation key.
    Key(CorrelationKey),
}

/// Why an action is in the plan. Rendered in plain language by `Display`.
#[derive(Debug, Clone, PartialEq)]
pub enum Reason {
    NewPerson,
    /// Adopted an existing account with the same key (never created twice),
    /// or the one another flow's link names.
    Matched(MatchedBy),
    OwnedFieldsDiffer,
    ActiveAgain,
    ManagerChanged,
    NewDepartment,
    DepartmentRenamed,
    MembershipChanged,
    EndDatePassed(Date),
    InactiveInSource,
    VanishedFromSource,
    NoStartDate,
    NotStartedYet(Date),
    ReactivationDisabled,
    NotAllowed(ActionKind),
    /// An unlinked person matched no account, and the flow may not create
    /// one (an update-only write-back): reported, never dropped silently.
    NoMatch,
    MissingField(FieldRef),
    /// The manager has no account (yet) in the target.
    ManagerOutOfScope(String),
    /// The key is already used by an account linked to someone else.
    KeyTaken {
        key: CorrelationKey,
        account: usize,
    },
    /// The key matches more than one account.
    Ambiguous {
        key: CorrelationKey,
        candidates: usize,
    },
    /// Another source person has the same key.
    DuplicateInSource {
        key: CorrelationKey,
        other: usize,
    },
    /// Another source person has the same id.
    DuplicateId,
    /// An inbound create-only flow found the person already in the target.
    AlreadyExists {
        key: CorrelationKey,
        account: usize,
    },
    /// The link names an account the target no longer has.
    LinkedAccountMissing(String),
    /// A group of that name exists but was not created by this flow.
    GroupNameTaken(usize),
    /// The person's key (or, with `account`, the only account it matches)
    /// contains look-alike characters: neither linked nor created.
    LookalikeKey {
        key: CorrelationKey,
        account: Option<usize>,
        why: Lookalike,
    },
    /// A compound field's rows cannot be compared by their row key (a row
    /// without a key, two rows with one key): the field is left alone.
    BadRows(RowProblem),
    /// A target row has the key of a source row but was not written by this
    /// flow (added by hand): it is neither changed nor removed.
    RowNotWritten {
        field: String,
        key: String,
        value: String,
    },
    /// The account's source record was read but cannot be used this run
    /// (its mapping failed; the host reports the record and field): the
    /// account is left exactly as it is. Holds the source id.
    SourceRecordUnusable(String),
    /// The login a create would write is already held (by an account or
    /// by another create of this plan) and the flow's
    /// [`LoginTaken`](crate::LoginTaken) rule could not pick another.
    LoginTaken {
        login: String,
        holder: crate::LoginHolder,
    },
    /// The end date has passed but the flow's grace period
    /// ([`Policy::deactivate_after_days`]) keeps the account active: it is
    /// deactivated on `on` unless the person is rehired or the end date
    /// corrected by then.
    DeactivationPending {
        end: Date,
        on: Date,
    },
    /// An undo plan's action: it reverses the `undone` action of run `run`
    /// ([`crate::undo`]).
    Undoes {
        run: u64,
        undone: ActionKind,
    },
    /// Undo: the action of run `run` is already reversed in the target (a
    /// deactivated account is active again): nothing to do.
    NothingToUndo {
        run: u64,
        undone: ActionKind,
    },
    /// Undo: `field` no longer holds what run `run` wrote (someone changed
    /// it since): it is left alone.
    ChangedSince {
        run: u64,
        field: FieldRef,
        wrote: Option<FieldValue>,
        now: Option<FieldValue>,
    },
    /// Undo: the flow no longer owns `field`, so it does not write it back.
    NoLongerOwned {
        run: u64,
        field: FieldRef,
    },
    /// Undo: what run `run` did cannot be reversed by muster.
    NotUndoable {
        run: u64,
        what: crate::undo::NotUndoable,
    },
}

impl Reason {
    /// A stable snake_case code for JSON and tests.
    pub fn code(&self) -> &'static str {
        match self {
            Reason::NewPerson => "new_person",
            Reason::Matched(_) => "matched",
            Reason::OwnedFieldsDiffer => "owned_fields_differ",
            Reason::ActiveAgain => "active_again",
            Reason::ManagerChanged => "manager_changed",
            Reason::NewDepartment => "new_department",
            Reason::DepartmentRenamed => "department_renamed",
            Reason::MembershipChanged => "membership_changed",
            Reason::EndDatePassed(_) => "end_date_passed",
            Reason::InactiveInSource => "inactive_in_source",
            Reason::VanishedFromSource => "vanished_from_source",
            Reason::NoStartDate => "no_start_date",
            Reason::NotStartedYet(_) => "not_started_yet",
            Reason::ReactivationDisabled => "reactivation_disabled",
            Reason::NotAllowed(_) => "not_allowed",
            Reason::NoMatch => "no_match",
            Reason::MissingField(_) => "missing_field",
            Reason::ManagerOutOfScope(_) => "manager_out_of_scope",
            Reason::KeyTaken { .. } => "key_taken",
            Reason::Ambiguous { .. } => "ambiguous",
            Reason::DuplicateInSource { .. } => "duplicate_in_source",
            Reason::DuplicateId => "duplicate_id",
            Reason::AlreadyExists { .. } => "already_exists",
            Reason::LinkedAccountMissing(_) => "linked_account_missing",
            Reason::GroupNameTaken(_) => "group_name_taken",
            Reason::LookalikeKey { .. } => "lookalike_key",
            Reason::BadRows(_) => "bad_rows",
            Reason::RowNotWritten { .. } => "row_not_written",
            Reason::SourceRecordUnusable(_) => "source_record_unusable",
            Reason::LoginTaken { .. } => "login_taken",
            Reason::DeactivationPending { .. } => "deactivation_pending",
            Reason::Undoes { .. } => "undo",
            Reason::NothingToUndo { .. } => "nothing_to_undo",
            Reason::ChangedSince { .. } => "changed_since",
            Reason::NoLongerOwned { .. } => "no_longer_owned",
            Reason::NotUndoable { .. } => "not_undoable",
        }
    }
}

/// One step of a plan. Indices point into the plan's [`Input`].
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Create a group for a source department (`group` indexes source groups).
    CreateGroup {
        group: usize,
    },
    /// Rename an owned group after its department.
    RenameGroup {
        group: usize,
        target: usize,
    },
    /// Create an account for a source person.
    Create {
        person: usize,
    },
    /// Adopt an existing account, matched by `key`.
    Link {
        person: usize,
        account: usize,
        by: MatchedBy,
    },
    /// Write the owned fields that differ.
    Update {
        person: usize,
        account: usize,
        changes: Vec<FieldRef>,
    },
    Reactivate {
        person: usize,
        account: usize,
    },
    /// Point the person's account at its manager's account (or at none).
    /// `account` and `manager_account` are `None` for accounts this plan
    /// creates: the applier resolves them through the links it recorded.
    SetManager {
        person: usize,
        account: Option<usize>,
        manager: Option<usize>,
        manager_account: Option<usize>,
    },
    /// Add people (source indices) to a group.
    AddMembers {
        group: GroupRef,
        members: Vec<usize>,
    },
    /// Remove members (indices into the target group's `members`).
    RemoveMembers {
        group: usize,
        members: Vec<usize>,
    },
    /// Deactivate an account; never delete.
    Deactivate {
        account: usize,
        person: Option<usize>,
        reason: Reason,
    },
    /// Nothing done, reported.
    Skip {
        subject: Subject,
        reason: Reason,
    },
    /// Nothing done: a human must resolve it.
    Conflict {
        subject: Subject,
        reason: Reason,
    },
}

impl Action {
    pub fn kind(&self) -> ActionKind {
        match self {
            Action::CreateGroup { .. } => ActionKind::CreateGroup,
            Action::RenameGroup { .. } => ActionKind::RenameGroup,
            Action::Create { .. } => ActionKind::Create,
            Action::Link { .. } => ActionKind::Link,
            Action::Update { .. } => ActionKind::Update,
            Action::Reactivate { .. } => ActionKind::Reactivate,
            Action::SetManager { .. } => ActionKind::SetManager,
            Action::AddMembers { .. } => ActionKind::AddMembers,
            Action::RemoveMembers { .. } => ActionKind::RemoveMembers,
            Action::Deactivate { .. } => ActionKind::Deactivate,
            Action::Skip { .. } => ActionKind::Skip,
            Action::Conflict { .. } => ActionKind::Conflict,
        }
    }

    /// The reason, as the plan explains it.
    pub fn reason(&self) -> Reason {
        match self {
            Action::CreateGroup { .. } => Reason::NewDepartment,
            Action::RenameGroup { .. } => Reason::DepartmentRenamed,
            Action::Create { .. } => Reason::NewPerson,
            Action::Link { by, .. } => Reason::Matched(*by),
            Action::Update { .. } => Reason::OwnedFieldsDiffer,
            Action::Reactivate { .. } => Reason::ActiveAgain,
            Action::SetManager { .. } => Reason::ManagerChanged,
            Action::AddMembers { .. } | Action::RemoveMembers { .. } => Reason::MembershipChanged,
            Action::Deactivate { reason, .. }
            | Action::Skip { reason, .. }
            | Action::Conflict { reason, .. } => reason.clone(),
        }
    }
}

/// How many actions of each kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts([u32; ActionKind::ALL.len()]);

impl Counts {
    pub fn get(&self, kind: ActionKind) -> u32 {
        self.0[kind as usize]
    }

    pub(crate) fn add(&mut self, kind: ActionKind) {
        self.0[kind as usize] += 1;
    }

    /// Actions that change the target (skips and conflicts excluded).
    pub fn changes(&self) -> u32 {
        ActionKind::ALL
            .iter()
            .filter(|k| k.changes_target())
            .map(|k| self.get(*k))
            .sum()
    }

    /// `(kind, count)` for every kind with a non-zero count.
    pub fn iter(&self) -> impl Iterator<Item = (ActionKind, u32)> + '_ {
        ActionKind::ALL
            .into_iter()
            .map(|k| (k, self.get(k)))
            .filter(|(_, n)| *n > 0)
    }
}

/// A guard threshold the plan exceeds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Breach {
    pub kind: ActionKind,
    pub count: u32,
    pub limit: Limit,
}

/// Which limit was exceeded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Limit {
    Max(u32),
    Ratio { max_ratio: f64, linked: usize },
}

impl fmt::Display for Breach {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.limit {
            Limit::Max(max) => write!(f, "{} {} > limit {max}", self.count, self.kind),
            Limit::Ratio { max_ratio, linked } => write!(
                f,
                "{} {} of {linked} linked accounts > limit {}%",
                self.count,
                self.kind,
                max_ratio * 100.0
            ),
        }
    }
}

/// Why no plan could be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanError {
    /// The source read covers only changes and the flow can deactivate:
    /// planning would mistake the absent people for leavers. Read it fully
    /// ([`crate::read::since`]).
    IncompleteSource,
    /// The target read covers only changes: planning would create accounts
    /// that already exist.
    IncompleteTarget,
    /// [`Prepared`] hashes were computed for other records or another policy.
    StalePrepared { side: &'static str },
    /// More than `u32::MAX` records on one side.
    TooLarge,
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlanError::IncompleteSource => {
                f.write_str("the source read covers only changes and this flow can deactivate; no plan is made from a partial source (read it fully: remove any connector setting that makes the read incremental, such as Lucca's `modified_since`)")
            }
            PlanError::IncompleteTarget => {
                f.write_str("the target read covers only changes; no plan is made from a partial target")
            }
            PlanError::StalePrepared { side } => write!(
                f,
                "the {side} record hashes were prepared for other records or another policy"
            ),
            PlanError::TooLarge => f.write_str("more than 4,294,967,295 records on one side"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for PlanError {}

/// A computed plan. See the module docs.
#[derive(Debug, Clone)]
pub struct Plan<'a> {
    pub(crate) input: Input<'a>,
    pub(crate) actions: Vec<Action>,
    pub(crate) counts: Counts,
    pub(crate) breaches: Vec<Breach>,
    pub(crate) linked: usize,
    /// Target account id → index, built on first use by [`Plan::step`] to
    /// name the accounts a step refers to by id (a current manager, a
    /// member to remove).
    pub(crate) accounts_by_id: OnceCell<BTreeMap<&'a str, usize>>,
    /// Creates that write another login than the person's, because theirs
    /// was taken ([`crate::login`]): source index → login written.
    pub(crate) logins: BTreeMap<usize, String>,
    /// The run an undo plan reverses ([`crate::undo`]): its updates,
    /// reactivations and manager changes give that as their reason.
    pub(crate) undoes: Option<u64>,
}

impl<'a> Plan<'a> {
    pub fn input(&self) -> &Input<'a> {
        &self.input
    }

    /// Actions in application order ([`ActionKind::phase`]): groups,
    /// creates and links, updates and reactivations, managers, memberships,
    /// deactivations; then reports.
    pub fn actions(&self) -> &[Action] {
        &self.actions
    }

    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// True when the plan changes nothing (it may still report).
    pub fn is_noop(&self) -> bool {
        self.counts.changes() == 0
    }

    /// Accounts linked before this plan (the guard's ratio base).
    pub fn linked_accounts(&self) -> usize {
        self.linked
    }

    /// Guard thresholds exceeded; non-empty means the plan is held.
    pub fn breaches(&self) -> &[Breach] {
        &self.breaches
    }

    pub fn is_held(&self) -> bool {
        !self.breaches.is_empty()
    }

    /// The login the create of source person `person` writes when it is
    /// not the person's own (theirs was taken, see [`crate::login`]).
    pub fn create_login(&self, person: usize) -> Option<&str> {
        self.logins.get(&person).map(String::as_str)
    }

    /// The run this plan undoes, when it is an undo plan ([`crate::undo`]).
    pub fn undoes(&self) -> Option<u64> {
        self.undoes
    }

    /// Why `action` is in the plan: [`Action::reason`], except that in an
    /// undo plan an update, reactivation or manager change says which
    /// action of which run it reverses.
    pub fn reason(&self, action: &Action) -> Reason {
        let undone = match action {
            Action::Update { .. } => ActionKind::Update,
            Action::Reactivate { .. } => ActionKind::Deactivate,
            Action::SetManager { .. } => ActionKind::SetManager,
            _ => return action.reason(),
        };
        match self.undoes {
            Some(run) => Reason::Undoes { run, undone },
            None => action.reason(),
        }
    }

    /// The actions resolved into owned, serialisable steps.
    pub fn steps(&self) -> Vec<Step> {
        self.actions.iter().map(|a| self.step(a)).collect()
    }

    /// One action resolved into a [`Step`].
    pub fn step(&self, action: &Action) -> Step {
        let src = self.input.source.people;
        let tgt = self.input.target.people;
        let person_ids = |i: usize| (Some(src[i].id.clone()), None);
        let account_ids = |i: usize| (None, Some(tgt[i].id.clone()));
        let both = |p: usize, a: usize| (Some(src[p].id.clone()), Some(tgt[a].id.clone()));
        let mut step = Step {
            kind: action.kind(),
            source_id: None,
            target_id: None,
            label: String::new(),
            reason: self.reason(action).code().into(),
            explanation: String::new(),
            changes: Vec::new(),
            rows: Vec::new(),
            members: Vec::new(),
            member_names: BTreeMap::new(),
            carries: Vec::new(),
            group_name: None,
            manager_source_id: None,
            created: Vec::new(),
        };
        let (source_id, target_id) = match action {
            Action::CreateGroup { group } => {
                let g = &self.input.source.groups[*group];
                step.label = g.name.clone();
                step.group_name = Some(g.name.clone());
                (Some(g.id.clone()), None)
            }
            Action::RenameGroup { group, target } => {
                let (g, t) = (
                    &self.input.source.groups[*group],
                    &self.input.target.groups[*target],
                );
                step.label = g.name.clone();
                step.group_name = Some(g.name.clone());
                step.changes.push(Change::values(
                    FieldRef::Custom("name".into()),
                    Some(FieldValue::Text(t.name.clone())),
                    Some(FieldValue::Text(g.name.clone())),
                ));
                (Some(g.id.clone()), Some(t.id.clone()))
            }
            Action::Create { person } => {
                step.label = label(&src[*person]);
                step.carries = self.input.policy.carried_on_create().iter().collect();
                if let Some(login) = self.create_login(*person) {
                    step.changes.push(Change::values(
                        Field::Login.into(),
                        src[*person].login.clone().map(FieldValue::Text),
                        Some(FieldValue::Text(login.into())),
                    ));
                }
                step.created = self.created_values(*person);
                person_ids(*person)
            }
            Action::Link {
                person, account, ..
            }
            | Action::Reactivate { person, account } => {
                step.label = label(&src[*person]);
                both(*person, *account)
            }
            Action::Update {
                person,
                account,
                changes,
            } => {
                step.label = label(&src[*person]);
                for f in changes {
                    self.update_change(&mut step, *person, *account, f);
                }
                both(*person, *account)
            }
            Action::SetManager {
                person,
                account,
                manager,
                manager_account,
            } => {
                step.label = label(&src[*person]);
                step.manager_source_id = self.manager_source_id(*manager, *manager_account);
                let old = account
                    .and_then(|a| tgt[a].manager_id.as_deref())
                    .map(|id| self.account_ref(id));
                let new = match (manager, manager_account) {
                    (_, Some(m)) => Some(Ref {
                        id: tgt[*m].id.clone(),
                        planned: false,
                        // The source's name is the one the account is about to have.
                        name: manager
                            .map_or_else(|| person_name(&tgt[*m]), |s| person_name(&src[s])),
                    }),
                    (Some(m), None) => Some(Ref {
                        id: src[*m].id.clone(),
                        planned: true,
                        name: person_name(&src[*m]),
                    }),
                    (None, None) => None,
                };
                step.changes
                    .push(Change::references(Field::ManagerId, old, new));
                (
                    Some(src[*person].id.clone()),
                    account.map(|a| tgt[a].id.clone()),
                )
            }
            Action::AddMembers { group, members } => {
                step.members = members.iter().map(|m| src[*m].id.clone()).collect();
                step.member_names = members
                    .iter()
                    .filter_map(|m| Some((src[*m].id.clone(), person_name(&src[*m])?)))
                    .collect();
                match group {
                    GroupRef::Existing(t) => {
                        let g = &self.input.target.groups[*t];
                        step.label = g.name.clone();
                        step.group_name = Some(g.name.clone());
                        (None, Some(g.id.clone()))
                    }
                    GroupRef::Planned(s) => {
                        let g = &self.input.source.groups[*s];
                        step.label = g.name.clone();
                        step.group_name = Some(g.name.clone());
                        (Some(g.id.clone()), None)
                    }
                }
            }
            Action::RemoveMembers { group, members } => {
                let g = &self.input.target.groups[*group];
                step.label = g.name.clone();
                step.group_name = Some(g.name.clone());
                step.members = members.iter().map(|m| g.members[*m].clone()).collect();
                step.member_names = step
                    .members
                    .iter()
                    .filter_map(|id| Some((id.clone(), self.account_ref(id).name?)))
                    .collect();
                (None, Some(g.id.clone()))
            }
            Action::Deactivate {
                account, person, ..
            } => {
                step.label = label(&tgt[*account]);
                (
                    person.map(|p| src[p].id.clone()),
                    Some(tgt[*account].id.clone()),
                )
            }
            Action::Skip { subject, reason } | Action::Conflict { subject, reason } => {
                match subject {
                    Subject::Person(p) => {
                        step.label = label(&src[*p]);
                        person_ids(*p)
                    }
                    Subject::Account(a) => {
                        step.label = label(&tgt[*a]);
                        match reason {
                            Reason::SourceRecordUnusable(id) => {
                                (Some(id.clone()), Some(tgt[*a].id.clone()))
                            }
                            _ => account_ids(*a),
                        }
                    }
                    Subject::Department(g) => {
                        let g = &self.input.source.groups[*g];
                        step.label = g.name.clone();
                        (Some(g.id.clone()), None)
                    }
                }
            }
        };
        step.source_id = source_id;
        step.target_id = target_id;
        step.explanation = self.explain(&self.reason(action));
        step
    }

    /// One field of an update: a row-keyed compound field as row changes
    /// ([`crate::rows`]), any other as old → new (a reference field with the
    /// names of what it points at).
    fn update_change(&self, step: &mut Step, person: usize, account: usize, field: &FieldRef) {
        let (p, a) = (
            &self.input.source.people[person],
            &self.input.target.people[account],
        );
        let (new, old) = (p.get(field), a.get(field));
        if let Some(key) = self.input.policy.row_key(field) {
            let name = field.name();
            let (want, have) = (p.custom.get(name), a.custom.get(name));
            // The planner only lists a keyed field whose rows compare.
            let written = self.input.written_rows.keys(&a.id, name);
            if let Ok(diff) = rows::diff_values(name, key, want, have, written) {
                step.rows.extend(diff.changes);
                return;
            }
        }
        let mut change = Change::values(
            field.clone(),
            old.map(|v| v.to_owned_value()),
            new.map(|v| v.to_owned_value()),
        );
        match field {
            FieldRef::Canonical(Field::ManagerId) => {
                change.old_ref = a.manager_id.as_deref().map(|id| self.account_ref(id));
                change.new_ref = p.manager_id.as_deref().map(|id| self.person_ref(id));
            }
            FieldRef::Canonical(Field::DepartmentId) => {
                let group = |groups: &[Group], id: &str| Ref {
                    id: id.into(),
                    planned: false,
                    name: groups.iter().find(|g| g.id == id).map(|g| g.name.clone()),
                };
                change.old_ref = a
                    .department_id
                    .as_deref()
                    .map(|id| group(self.input.target.groups, id));
                change.new_ref = p
                    .department_id
                    .as_deref()
                    .map(|id| group(self.input.source.groups, id));
            }
            _ => {}
        }
        step.changes.push(change);
    }

    /// A target account by id, named when the target has it.
    fn account_ref(&self, id: &str) -> Ref {
        let index = self.accounts_by_id.get_or_init(|| {
            let people = self.input.target.people;
            people
                .iter()
                .enumerate()
                .map(|(i, p)| (p.id.as_str(), i))
                .collect()
        });
        Ref {
            id: id.into(),
            planned: false,
            name: index
                .get(id)
                .and_then(|i| person_name(&self.input.target.people[*i])),
        }
    }

    /// A source person by id (a reference on the desired side), named when
    /// the source has it.
    fn person_ref(&self, id: &str) -> Ref {
        let people = self.input.source.people;
        Ref {
            id: id.into(),
            planned: false,
            name: people.iter().find(|p| p.id == id).and_then(person_name),
        }
    }

    /// [`Step::created`] for source person `person`.
    fn created_values(&self, person: usize) -> Vec<Change> {
        let p = &self.input.source.people[person];
        let groups = self.input.source.groups;
        self.input
            .policy
            .create_fields()
            .iter()
            .filter(|f| *f != FieldRef::from(Field::ManagerId))
            .filter_map(|f| {
                let value = match self.create_login(person) {
                    // The login the plan chose when the template's was taken.
                    Some(login) if f == FieldRef::from(Field::Login) => {
                        FieldValue::Text(login.into())
                    }
                    _ => p.get(&f)?.to_owned_value(),
                };
                let mut change = Change::values(f.clone(), None, Some(value));
                if f == FieldRef::from(Field::DepartmentId)
                    && let Some(g) = p
                        .department_id
                        .as_deref()
                        .and_then(|d| groups.iter().find(|g| g.id == d))
                {
                    change.new_ref = Some(Ref {
                        id: g.id.clone(),
                        planned: false,
                        name: Some(g.name.clone()),
                    });
                }
                Some(change)
            })
            .collect()
    }

    /// A `set_manager`'s manager by source id: the planned person, or the
    /// person a retained account is linked to (held, or absent from a
    /// changes-only read).
    fn manager_source_id(
        &self,
        manager: Option<usize>,
        manager_account: Option<usize>,
    ) -> Option<String> {
        if let Some(m) = manager {
            return Some(self.input.source.people[m].id.clone());
        }
        let account = &self.input.target.people[manager_account?].id;
        self.input
            .links
            .iter()
            .find(|l| l.target_id.trim() == account.trim())
            .map(|l| l.source_id.trim().into())
    }

    /// The reason in plain language.
    pub fn explain(&self, reason: &Reason) -> String {
        let tgt = self.input.target.people;
        let src = self.input.source.people;
        match reason {
            Reason::NewPerson => "new person in the source".into(),
            Reason::Matched(MatchedBy::Key(key)) => {
                alloc::format!("existing account with the same {key}")
            }
            Reason::Matched(MatchedBy::Identity) => {
                "the account another flow's link names (the identity it established)".into()
            }
            Reason::OwnedFieldsDiffer => "source wins on owned fields".into(),
            Reason::ActiveAgain => "active in the source again".into(),
            Reason::ManagerChanged => "manager differs".into(),
            Reason::NewDepartment => "new department".into(),
            Reason::DepartmentRenamed => "department renamed".into(),
            Reason::MembershipChanged => "department membership differs".into(),
            Reason::EndDatePassed(d) => alloc::format!("end date {d} has passed"),
            Reason::InactiveInSource => "inactive in the source".into(),
            Reason::VanishedFromSource => "no longer in the source".into(),
            Reason::NoStartDate => "no start date: no account is created without one".into(),
            Reason::NotStartedYet(d) => alloc::format!("starts on {d}"),
            Reason::ReactivationDisabled => {
                "active in the source again, but reactivation is off for this flow".into()
            }
            Reason::NotAllowed(kind) => alloc::format!("this flow may not {kind}"),
            Reason::NoMatch => {
                let policy = self.input.policy;
                let mut tried: Vec<String> = Vec::new();
                if let Some(flow) = &policy.identity_links {
                    tried.push(alloc::format!("the links of flow `{flow}`"));
                }
                tried.extend(
                    policy
                        .correlation_keys()
                        .iter()
                        .filter(|(_, adopt)| *adopt)
                        .map(|(k, _)| k.to_string()),
                );
                alloc::format!(
                    "matches no account in the target (tried {}) and this flow may not create one",
                    tried.join(", ")
                )
            }
            Reason::MissingField(f) => alloc::format!("`{f}` is required to create an account"),
            Reason::ManagerOutOfScope(id) => {
                alloc::format!("manager {id} has no account in the target")
            }
            Reason::KeyTaken { key, account } => alloc::format!(
                "{key} {} is already used by account {}",
                tgt[*account]
                    .get(&key.field().into())
                    .map(|v| v.to_string())
                    .unwrap_or_default(),
                tgt[*account].id
            ),
            Reason::Ambiguous { key, candidates } => {
                alloc::format!("{key} matches {candidates} accounts")
            }
            Reason::DuplicateInSource { key, other } => {
                alloc::format!("same {key} as source person {}", src[*other].id)
            }
            Reason::DuplicateId => "another source person has the same id".into(),
            Reason::AlreadyExists { key, account } => {
                alloc::format!("already in the target as {} (same {key})", tgt[*account].id)
            }
            Reason::LinkedAccountMissing(id) => {
                alloc::format!("linked account {id} no longer exists in the target")
            }
            Reason::LookalikeKey {
                key,
                account: None,
                why,
            } => alloc::format!("{key} is a look-alike: {why}"),
            Reason::LookalikeKey {
                key,
                account: Some(a),
                why,
            } => alloc::format!(
                "{key} matches account {} only through look-alike characters: {why}",
                tgt[*a].id
            ),
            Reason::BadRows(problem) => alloc::format!("{problem}"),
            Reason::RowNotWritten { field, key, value } => alloc::format!(
                "`{field}` has a row with `{key}` {value:?} that this flow did not write and whose values differ from the source's: it is left as it is (remove or rename it in the target to let the flow write its own)"
            ),
            Reason::SourceRecordUnusable(id) => alloc::format!(
                "source record {id} could not be used this run; its account is left as it is"
            ),
            Reason::LoginTaken { login, holder } => match holder {
                crate::LoginHolder::Account(a) => {
                    alloc::format!("login {login} is already used by account {}", tgt[*a].id)
                }
                crate::LoginHolder::Person(p) => alloc::format!(
                    "login {login} is already written by the create of source person {}",
                    src[*p].id
                ),
                crate::LoginHolder::Elsewhere => {
                    alloc::format!("login {login} is already used by another account")
                }
            },
            Reason::DeactivationPending { end, on } => alloc::format!(
                "end date {end} has passed; the grace period keeps the account active: it will be deactivated on {on} (a rehire or a corrected end date before then cancels it)"
            ),
            Reason::Undoes { run, undone } => {
                alloc::format!("undoes the {undone} of run {run}")
            }
            Reason::NothingToUndo { run, undone } => alloc::format!(
                "the {undone} of run {run} is already reversed in the target: nothing to undo"
            ),
            Reason::ChangedSince {
                run,
                field,
                wrote,
                now,
            } => alloc::format!(
                "`{field}` changed since run {run} wrote {}: it now holds {}, so it is left alone",
                shown(wrote.as_ref()),
                shown(now.as_ref())
            ),
            Reason::NoLongerOwned { run, field } => alloc::format!(
                "run {run} wrote `{field}`, but this flow no longer owns it: it is left alone"
            ),
            Reason::NotUndoable { run, what } => alloc::format!("run {run}: {what}"),
            Reason::GroupNameTaken(g) => alloc::format!(
                "a group named {:?} exists ({}) but was not created by this flow",
                self.input.target.groups[*g].name,
                self.input.target.groups[*g].id
            ),
        }
    }
}

/// A value as a plan shows it (text quoted), or `(none)`.
fn shown(v: Option<&FieldValue>) -> String {
    match v {
        Some(v) => v.to_string(),
        None => "(none)".into(),
    }
}

/// A name for people in plans: "Ana Lopez <ana@acme.fr>", or the id.
fn label(p: &Person) -> String {
    let mut out = String::new();
    for part in [&p.given_name, &p.family_name].into_iter().flatten() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(part.trim());
    }
    match (&p.work_email, out.is_empty()) {
        (Some(mail), false) => alloc::format!("{out} <{}>", mail.trim()),
        (Some(mail), true) => mail.trim().into(),
        (None, false) => out,
        (None, true) => alloc::format!("#{}", p.id),
    }
}

/// An action resolved to ids and values: what plan files and `--json` hold.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Step {
    pub kind: ActionKind,
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    pub source_id: Option<String>,
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    pub target_id: Option<String>,
    /// A human name for the subject.
    pub label: String,
    /// A stable code (see [`Reason::code`]).
    pub reason: String,
    /// The reason in plain language.
    pub explanation: String,
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Vec::is_empty")
    )]
    pub changes: Vec<Change>,
    /// Row-level changes of compound fields the flow compares by row key
    /// ([`crate::rows`]); such a field is never also in `changes`.
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Vec::is_empty")
    )]
    pub rows: Vec<RowChange>,
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Vec::is_empty")
    )]
    pub members: Vec<String>,
    /// What people call the `members` (member id → name), for the human
    /// plan only: ids stay the reference, names are never parsed back. A
    /// member without a known name is absent.
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "BTreeMap::is_empty")
    )]
    pub member_names: BTreeMap<String, String>,
    /// On a create: fields written although the flow does not own them,
    /// because the target cannot create an account without them (e.g. a
    /// SCIM `userName` from `login`). Written once, never updated.
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Vec::is_empty")
    )]
    pub carries: Vec<FieldRef>,
    /// On a group step (create, rename, membership): the group's name as
    /// data — the new name on a rename — so nothing reads it back out of
    /// `label`. Absent from plans and journals written before it existed.
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    pub group_name: Option<String>,
    /// On a `set_manager`: the new manager's *source* id, also when its
    /// account is created in the same run (then the change's new value is a
    /// placeholder until the applier resolves it). `None` when the manager
    /// is cleared.
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    pub manager_source_id: Option<String>,
    /// On a create: what it writes — each field the create sends
    /// ([`crate::Policy::create_fields`]) that the mapped record has, as
    /// `(none) -> value` — so a plan says exactly what would be created.
    /// The manager is left to the `set_manager` step that follows; a
    /// department the source knows as a group is named.
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Vec::is_empty")
    )]
    pub created: Vec<Change>,
}

impl Step {
    /// The step narrowed to one member (a membership call is one member):
    /// its id and, when known, its name.
    pub fn only_member(&mut self, id: &str) {
        self.members = alloc::vec![id.into()];
        self.member_names.retain(|m, _| m == id);
    }

    /// The step narrowed to the members `keep` accepts, names included.
    pub fn retain_members(&mut self, mut keep: impl FnMut(&str) -> bool) {
        self.members.retain(|m| keep(m));
        self.member_names.retain(|m, _| keep(m));
    }
}

/// One field change: old value (target) → new value (source).
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Change {
    pub field: FieldRef,
    pub old: Option<FieldValue>,
    pub new: Option<FieldValue>,
    /// For a reference field (`manager_id`, `department_id`): the record
    /// `old` points at, typed and named.
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    pub old_ref: Option<Ref>,
    /// For a reference field: the record `new` points at. A manager whose
    /// account this same plan creates has no target id yet: `new` is then
    /// absent and `new_ref` names the manager by source id (`planned`).
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    pub new_ref: Option<Ref>,
}

impl Change {
    /// A change of a plain value.
    pub fn values(field: FieldRef, old: Option<FieldValue>, new: Option<FieldValue>) -> Change {
        Change {
            field,
            old,
            new,
            old_ref: None,
            new_ref: None,
        }
    }

    /// A change of a reference field: `old`/`new` hold the target ids
    /// (none for a planned record), the refs say what they are.
    pub fn references(field: Field, old: Option<Ref>, new: Option<Ref>) -> Change {
        let id = |r: &Option<Ref>| {
            r.as_ref()
                .filter(|r| !r.planned)
                .map(|r| FieldValue::Text(r.id.clone()))
        };
        Change {
            field: field.into(),
            old: id(&old),
            new: id(&new),
            old_ref: old,
            new_ref: new,
        }
    }
}

/// A record a change points at: a manager, a department.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Ref {
    /// The record's target id; when `planned`, its **source** id.
    pub id: String,
    /// The record is created by this same plan: its target id is only known
    /// once that create is applied.
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "core::ops::Not::not")
    )]
    pub planned: bool,
    /// What people call it (`Bruno Bernard`, `Sales`), for the human plan
    /// only; never parsed back. Absent when no name is known.
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    pub name: Option<String>,
}

fn symbol(kind: ActionKind) -> char {
    match kind {
        ActionKind::CreateGroup | ActionKind::Create | ActionKind::AddMembers => '+',
        ActionKind::Deactivate | ActionKind::RemoveMembers => '-',
        ActionKind::Skip => '.',
        ActionKind::Conflict => '!',
        _ => '~',
    }
}

impl fmt::Display for Plan<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.actions.is_empty() {
            return f.write_str("No changes. The target matches the source.\n");
        }
        for action in &self.actions {
            let s = self.step(action);
            write!(f, "  {} {:<14} {}", symbol(s.kind), s.kind.name(), s.label)?;
            match (&s.source_id, &s.target_id) {
                (Some(src), Some(tgt)) => write!(f, " (source {src} -> target {tgt})")?,
                (Some(src), None) => write!(f, " (source {src})")?,
                (None, Some(tgt)) => write!(f, " (target {tgt})")?,
                (None, None) => {}
            }
            writeln!(f, "\n      because {}", s.explanation)?;
            write_details(f, &s, "      ")?;
        }
        f.write_str("\nPlan:")?;
        let mut first = true;
        for (kind, n) in self.counts.iter() {
            write!(f, "{} {n} {kind}", if first { "" } else { "," })?;
            first = false;
        }
        f.write_str(".\n")?;
        if self.is_held() {
            f.write_str("HELD by the guard; approve it to apply:\n")?;
            for b in &self.breaches {
                writeln!(f, "  - {b}")?;
            }
        }
        Ok(())
    }
}
