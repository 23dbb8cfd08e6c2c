//! Applying a plan through the target plugin, journaled.
//!
//! Every call's intent is committed before the call and its outcome after
//! it. Calls are journaled in batches of one phase (group commit, see
//! `Store::journal_batch`): one transaction writes the outcomes of the
//! previous batch and the intents of the next, so the bookkeeping costs a
//! commit per batch instead of three per call. A batch is also a **wave**:
//! once its intents are committed its calls are made, up to the target
//! connection's `max_in_flight` at once (see [`super::inflight`]), and
//! their outcomes are settled in plan order before the next batch is
//! built. A failed call is journaled with its error and the run goes on — **per-record isolation** — and
//! actions that need what failed (the manager or group membership of a
//! person whose create failed, the members of a group whose creation
//! failed) are skipped with that reason instead of being sent half-formed.
//!
//! Plan actions reference records by index; here they become contract
//! operations with *target* ids, resolved through the links known before the
//! run plus those recorded during it.

use std::collections::{HashMap, HashSet};

use muster_core::{Action, Change, Field, GroupRef, Plan, Ref, Step};
use serde_json::json;

use super::EngineError;
use super::inflight::{self, Job, Pool, Sent};
use super::members::{self, Chunk};
use crate::runtime::connector::{person_to_target, row_changes_out};
use crate::runtime::contract::latest::field_ref_from_core;
use crate::runtime::{
    AccountRef, AccountUpdate, Applied as Made, GroupRename, ManagerChange, MemberChange, NewGroup,
    Operation, PluginError, PluginInstance,
};
use crate::store::{
    AuditEntry, Completion, JournalId, LeaseWatch, LinkKind, Outcome, RunCounts, RunId, Store,
};

/// A call that failed, or an action skipped because something it needed failed.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub step: Step,
    pub error: String,
    /// True when the target was never called (a dependency failed).
    pub skipped: bool,
}

/// What applying did.
#[derive(Debug, Clone, Default)]
pub struct Applied {
    /// Per kind: `"create" → 12`; failures under `"failed"`, dependency
    /// skips under `"skipped"`.
    pub counts: RunCounts,
    pub failures: Vec<Failure>,
    /// Set when the plugin instance trapped: the remaining actions were not
    /// attempted (the next run plans them again).
    pub aborted: Option<String>,
}

/// Which actions of the plan to apply: all, or those about one source
/// record (a single-record run).
#[derive(Debug, Clone, Copy)]
pub enum Selection<'s> {
    All,
    Only(&'s str),
}

pub(crate) struct Applier<'r, 'p, 'a> {
    pub store: &'r mut Store,
    pub flow: &'r str,
    pub run: RunId,
    /// The target's instances: the connected one and its siblings.
    pool: Pool<'r>,
    /// The run's lease, as the pool's workers check it before each call.
    lease: LeaseWatch,
    pub plan: &'p Plan<'a>,
    /// Source person id → target account id.
    pub links: HashMap<String, String>,
    /// Source department id → target group id.
    pub group_links: HashMap<String, String>,
    pub seq: u32,
    pub out: Applied,
    /// The most members one `change-members` call may carry (the target's
    /// `max-members-per-change`).
    max_members: usize,
    observer: &'r dyn super::Observer,
    /// Outcomes of the calls made since the last commit.
    pending: Vec<Pending>,
    /// Actions left to apply, the current wave's included (how many
    /// instances the pool makes, see [`inflight`]).
    ahead: usize,
    /// Source people whose create failed.
    failed_people: HashSet<usize>,
    /// Source groups whose creation failed.
    failed_groups: HashSet<usize>,
    /// Source people created in this run with their manager (target id):
    /// their `set_manager` step has nothing left to send.
    carried_managers: HashMap<usize, String>,
    /// The source reads no groups (an onboarding or recruiting tool): its
    /// `department_id`s are names or ids *for the target* to resolve, sent as
    /// they are when no group link translates them.
    departments_as_given: bool,
}

/// The source ids of the people and groups a wave being built creates.
#[derive(Default)]
struct Created<'s> {
    people: HashSet<&'s str>,
    groups: HashSet<&'s str>,
}

/// One call to make (or a link to record), with the step to journal.
enum Unit {
    Call(Step, Box<Operation>, Produces),
    /// One `change-members` call: its members, each with its own step
    /// (journaled one by one, settled together).
    Members(MemberCall),
    /// A link needs no call: the account exists; recording it is the action.
    LinkOnly(Step, String, String),
    /// A manager the account's create already set (target account id): the
    /// step is journaled as done, with no call of its own.
    Carried(Step, String),
    Skipped(Step, String),
}

fn call(step: Step, op: Operation, produces: Produces) -> Unit {
    Unit::Call(step, Box::new(op), produces)
}

/// The person a create made and the manager it sent with the account, if
/// it sent one.
fn carried_manager(op: &Operation, produces: Produces) -> Option<(usize, String)> {
    match (op, produces) {
        (Operation::Create(record), Produces::PersonLink(p)) => {
            record.manager_id.clone().map(|m| (p, m))
        }
        _ => None,
    }
}

/// One member of a membership change: its step (`members` names it alone)
/// and the target account id sent.
struct Member {
    step: Step,
    account: String,
}

/// One `change-members` call on one group.
struct MemberCall {
    group_id: String,
    change: Chunk<Member>,
}

impl MemberCall {
    /// The members' steps, removals first (the order of the call).
    fn steps(&self) -> impl Iterator<Item = &Step> {
        let Chunk { add, remove } = &self.change;
        remove.iter().chain(add).map(|m| &m.step)
    }
}

/// What a successful call's `target-id` is.
#[derive(Clone, Copy)]
enum Produces {
    Nothing,
    PersonLink(usize),
    GroupLink(usize),
}

impl<'r, 'p, 'a> Applier<'r, 'p, 'a> {
    /// The links come from the plan's input: the same table the plan was
    /// made from (read after recovery), so there is nothing to read again.
    pub fn new(
        store: &'r mut Store,
        flow: &'r str,
        run: RunId,
        target: &'r mut PluginInstance,
        plan: &'p Plan<'a>,
        observer: &'r dyn super::Observer,
    ) -> Self {
        let pairs = |links: &[muster_core::Link]| {
            links
                .iter()
                .map(|l| (l.source_id.clone(), l.target_id.clone()))
                .collect()
        };
        let links = pairs(plan.input().links);
        let group_links = pairs(plan.input().group_links);
        let max_members = max_members_per_change(target);
        let lease = store.lease_watch();
        Applier {
            store,
            flow,
            run,
            pool: Pool::new(target),
            lease,
            plan,
            links,
            group_links,
            seq: 0,
            out: Applied::default(),
            max_members,
            observer,
            pending: Vec::new(),
            ahead: 0,
            failed_people: HashSet::new(),
            failed_groups: HashSet::new(),
            carried_managers: HashMap::new(),
            departments_as_given: false,
        }
    }

    /// Applies the selected actions in plan order.
    pub fn apply(mut self, selection: Selection<'_>) -> Result<Applied, EngineError> {
        let plan = self.plan;
        let selected = |action: &Action| {
            action.kind().changes_target()
                && match selection {
                    Selection::All => true,
                    Selection::Only(id) => concerns(plan, action, id),
                }
        };
        let calls: u64 = plan
            .actions()
            .iter()
            .filter(|a| selected(a))
            .map(|a| match a {
                Action::AddMembers { members, .. } | Action::RemoveMembers { members, .. } => {
                    members.len() as u64
                }
                _ => 1,
            })
            .sum();
        self.observer.apply_started(calls);
        let actions: Vec<&Action> = plan.actions().iter().filter(|a| selected(a)).collect();
        let mut start = 0;
        while start < actions.len() {
            // A wave is consecutive actions of one phase: nothing in a phase
            // depends on another action of the same phase, except a create
            // whose manager, or a group whose parent, is created earlier in
            // it — such an action starts the next wave.
            let phase = actions[start].kind().phase();
            let max = wave_size(self.pool.width());
            let mut end = start + 1;
            let mut created = Created::default();
            self.note_create(actions[start], &mut created);
            while end < actions.len()
                && end - start < max
                && actions[end].kind().phase() == phase
                && !self.needs_created(actions[end], &created)
            {
                self.note_create(actions[end], &mut created);
                end += 1;
            }
            let units: Vec<Unit> = actions[start..end]
                .iter()
                .flat_map(|a| self.units(a, selection))
                .collect();
            self.ahead = actions.len() - start;
            self.run_batch(units)?;
            if self.out.aborted.is_some() {
                break;
            }
            start = end;
        }
        self.flush()?;
        Ok(self.out)
    }

    /// Remembers the source id of a person or group `action` creates.
    fn note_create<'s>(&'s self, action: &Action, created: &mut Created<'s>) {
        match action {
            Action::Create { person } => {
                created.people.insert(self.src(*person).id.as_str());
            }
            Action::CreateGroup { group } => {
                let g = &self.plan.input().source.groups[*group];
                created.groups.insert(g.id.as_str());
            }
            _ => {}
        }
    }

    /// Whether `action` needs what an action of the wave being built
    /// creates: a create whose manager, or a group whose parent, is created
    /// in it. Such an action starts the next wave: once this wave has
    /// settled, the manager's account (the parent group) exists and its id
    /// is known. The core orders creates managers first, so the create
    /// carries its manager (Leapsome: in the PATCH after the POST) instead
    /// of a `set_manager` call of its own.
    fn needs_created(&self, action: &Action, created: &Created<'_>) -> bool {
        match action {
            Action::Create { person } => self
                .src(*person)
                .manager_id
                .as_deref()
                .is_some_and(|m| created.people.contains(m)),
            Action::CreateGroup { group } => self.plan.input().source.groups[*group]
                .parent_id
                .as_deref()
                .is_some_and(|p| created.groups.contains(p)),
            _ => false,
        }
    }

    fn src(&self, i: usize) -> &'p muster_core::Person {
        &self.plan.input().source.people[i]
    }

    fn tgt(&self, i: usize) -> &'p muster_core::Person {
        &self.plan.input().target.people[i]
    }

    /// The desired person as the contract's record, with its manager and
    /// department translated to target ids where they are known.
    fn desired(&self, person: usize) -> crate::runtime::Person {
        self.to_target(self.src(person))
    }

    /// What a create sends: the core decides ([`muster_core::Policy::create_fields`]:
    /// owned fields plus those the target requires); the rest of the source
    /// record stays in muster.
    fn created(&self, person: usize) -> crate::runtime::Person {
        let fields = self.plan.input().policy.create_fields();
        let mut out = self.to_target(&self.src(person).only(&fields));
        // A login that was taken is replaced by the one the plan chose.
        if let Some(login) = self.plan.create_login(person) {
            out.login = Some(login.to_string());
        }
        out
    }

    /// When the source reads no groups, its department values are
    /// references for the target (Lucca resolves an id, code or name) and
    /// go through untranslated ([`Applier::departments_as_given`]).
    pub fn with_departments_as_given(mut self, on: bool) -> Self {
        self.departments_as_given = on;
        self
    }

    /// `person` as the target's record, its manager and department (source
    /// ids) as target ids where the links know them (a department as given
    /// when the source reads no groups).
    fn to_target(&self, person: &muster_core::Person) -> crate::runtime::Person {
        person_to_target(
            person,
            |m| self.links.get(m).cloned(),
            |d| match self.group_links.get(d) {
                Some(t) => Some(t.clone()),
                None if self.departments_as_given => Some(d.to_owned()),
                None => None,
            },
        )
    }

    fn units(&self, action: &Action, selection: Selection<'_>) -> Vec<Unit> {
        let plan = self.plan;
        let step = plan.step(action);
        match action {
            Action::Create { person } => vec![call(
                step,
                Operation::Create(self.created(*person)),
                Produces::PersonLink(*person),
            )],
            Action::Link {
                person, account, ..
            } => vec![Unit::LinkOnly(
                step,
                self.src(*person).id.clone(),
                self.tgt(*account).id.clone(),
            )],
            Action::Update {
                person,
                account,
                changes,
            } => {
                // A field compared row by row travels as row changes, never
                // also as a whole value.
                let policy = plan.input().policy;
                let rows = match row_changes_out(&step.rows) {
                    Ok(rows) => rows,
                    Err(e) => return vec![Unit::Skipped(step, e.to_string())],
                };
                let fields = changes
                    .iter()
                    .filter(|f| policy.row_key(f).is_none())
                    .map(field_ref_from_core)
                    .collect();
                vec![call(
                    step,
                    Operation::Update(AccountUpdate {
                        id: self.tgt(*account).id.clone(),
                        person: self.desired(*person),
                        fields,
                        rows,
                    }),
                    Produces::Nothing,
                )]
            }
            Action::Reactivate { account, .. } => vec![call(
                step,
                Operation::Reactivate(AccountRef {
                    id: self.tgt(*account).id.clone(),
                }),
                Produces::Nothing,
            )],
            Action::Deactivate { account, .. } => vec![call(
                step,
                Operation::Deactivate(AccountRef {
                    id: self.tgt(*account).id.clone(),
                }),
                Produces::Nothing,
            )],
            Action::SetManager {
                person,
                account,
                manager,
                manager_account,
            } => self.set_manager(step, *person, *account, *manager, *manager_account),
            Action::CreateGroup { group } => {
                let g = &plan.input().source.groups[*group];
                let parent_id = g
                    .parent_id
                    .as_ref()
                    .and_then(|p| self.group_links.get(p).cloned());
                vec![call(
                    step,
                    Operation::CreateGroup(NewGroup {
                        name: g.name.clone(),
                        parent_id,
                    }),
                    Produces::GroupLink(*group),
                )]
            }
            Action::RenameGroup { group, target } => {
                let name = plan.input().source.groups[*group].name.clone();
                let id = plan.input().target.groups[*target].id.clone();
                vec![call(
                    step,
                    Operation::RenameGroup(GroupRename { id, name }),
                    Produces::Nothing,
                )]
            }
            Action::AddMembers { group, members } => {
                self.add_members(step, *group, members, selection)
            }
            Action::RemoveMembers { group, members } => {
                let g = &plan.input().target.groups[*group];
                let remove = members
                    .iter()
                    .map(|m| {
                        let account = g.members[*m].clone();
                        let mut one = step.clone();
                        one.only_member(&account);
                        Member { step: one, account }
                    })
                    .collect();
                self.member_calls(&g.id, Vec::new(), remove)
            }
            Action::Skip { .. } | Action::Conflict { .. } => Vec::new(),
        }
    }

    /// The members of an `AddMembers` that can be sent, cut into calls;
    /// those whose group or account is missing are skipped, each by name.
    fn add_members(
        &self,
        step: Step,
        group: GroupRef,
        members: &[usize],
        selection: Selection<'_>,
    ) -> Vec<Unit> {
        let input = self.plan.input();
        let group_id = match group {
            GroupRef::Existing(t) => Some(input.target.groups[t].id.clone()),
            GroupRef::Planned(s) => self.group_links.get(&input.source.groups[s].id).cloned(),
        };
        let mut units = Vec::new();
        let mut add = Vec::new();
        let selected = members.iter().filter(|m| match selection {
            Selection::All => true,
            Selection::Only(id) => self.src(**m).id == id,
        });
        for m in selected {
            let member_id = self.src(*m).id.clone();
            let mut one = step.clone();
            one.only_member(&member_id);
            one.target_id = group_id.clone();
            match (&group_id, self.links.get(&member_id)) {
                (None, _) => units.push(Unit::Skipped(
                    one,
                    "skipped: the group was not created (its creation failed)".into(),
                )),
                (Some(_), None) => units.push(Unit::Skipped(
                    one,
                    format!(
                        "skipped: source {member_id} has no account (its create failed or was not planned)"
                    ),
                )),
                (Some(_), Some(account)) => add.push(Member {
                    step: one,
                    account: account.clone(),
                }),
            }
        }
        if let Some(group_id) = &group_id {
            units.extend(self.member_calls(group_id, add, Vec::new()));
        }
        units
    }

    /// Members of one group cut into `change-members` calls of at most the
    /// target's `max-members-per-change` (see [`members::chunk`]).
    fn member_calls(&self, group_id: &str, add: Vec<Member>, remove: Vec<Member>) -> Vec<Unit> {
        members::chunk(add, remove, self.max_members, |m| m.account.clone())
            .into_iter()
            .map(|change| {
                Unit::Members(MemberCall {
                    group_id: group_id.to_owned(),
                    change,
                })
            })
            .collect()
    }

    fn set_manager(
        &self,
        mut step: Step,
        person: usize,
        account: Option<usize>,
        manager: Option<usize>,
        manager_account: Option<usize>,
    ) -> Vec<Unit> {
        let person_id = &self.src(person).id;
        let account_id = match account {
            Some(a) => Some(self.tgt(a).id.clone()),
            None => self.links.get(person_id).cloned(),
        };
        let manager_id = match (manager_account, manager) {
            (Some(m), _) => Ok(Some(self.tgt(m).id.clone())),
            (None, Some(m)) => {
                let src_id = &self.src(m).id;
                self.links.get(src_id).cloned().map(Some).ok_or_else(|| {
                    format!("skipped: manager {src_id} has no account (its create failed)")
                })
            }
            (None, None) => Ok(None),
        };
        // Journal what is actually sent: resolved ids, not "the account this
        // plan creates", so recovery can check the outcome.
        step.target_id = account_id.clone();
        if let Ok(m) = &manager_id {
            let planned = step.changes.first().cloned();
            let name = planned
                .as_ref()
                .and_then(|c| c.new_ref.as_ref()?.name.clone());
            let new = m.clone().map(|id| Ref {
                id,
                planned: false,
                name,
            });
            let old_ref = planned.as_ref().and_then(|c| c.old_ref.clone());
            let mut change = Change::references(Field::ManagerId, old_ref, new);
            change.old = planned.and_then(|c| c.old);
            step.changes = vec![change];
        }
        match (account_id, manager_id) {
            (None, _) => vec![Unit::Skipped(
                step,
                format!("skipped: source {person_id} has no account (its create failed)"),
            )],
            (Some(_), Err(why)) => vec![Unit::Skipped(step, why)],
            (Some(id), Ok(Some(m))) if self.carried_managers.get(&person) == Some(&m) => {
                vec![Unit::Carried(step, id)]
            }
            (Some(id), Ok(manager_id)) => vec![call(
                step,
                Operation::SetManager(ManagerChange { id, manager_id }),
                Produces::Nothing,
            )],
        }
    }

    fn count(&mut self, key: &str) {
        *self.out.counts.entry(key.to_owned()).or_default() += 1;
    }

    /// Journals the intents of a batch's calls (with the previous batch's
    /// outcomes, in one transaction), then makes the calls.
    fn run_batch(&mut self, units: Vec<Unit>) -> Result<(), EngineError> {
        let mut seqs = Vec::new();
        for unit in &units {
            match unit {
                Unit::Call(step, ..) | Unit::LinkOnly(step, ..) | Unit::Carried(step, _) => {
                    self.seq += 1;
                    seqs.push((self.seq, step));
                }
                Unit::Members(call) => {
                    for step in call.steps() {
                        self.seq += 1;
                        seqs.push((self.seq, step));
                    }
                }
                Unit::Skipped(..) => {}
            }
        }
        let ids = {
            let (flow, run) = (self.flow, self.run);
            let done: Vec<Completion<'_>> = self
                .pending
                .iter()
                .map(|p| p.completion(flow, run))
                .collect();
            self.store.journal_batch(&done, run, &seqs)?
        };
        self.pending.clear();
        let mut ids = ids.into_iter();
        let mut journaled = Vec::with_capacity(units.len());
        for unit in &units {
            let calls = match unit {
                Unit::Call(..) | Unit::LinkOnly(..) | Unit::Carried(..) => 1,
                Unit::Members(call) => call.change.len(),
                Unit::Skipped(..) => 0,
            };
            let mut unit_ids = Vec::with_capacity(calls);
            for _ in 0..calls {
                unit_ids.push(next_id(&mut ids, self.run)?);
            }
            journaled.push(unit_ids);
        }
        let mut sent = self.send(&units);
        for ((unit, unit_ids), sent) in units.into_iter().zip(journaled).zip(&mut sent) {
            let sent = sent.take().unwrap_or_else(|| {
                Sent::NotAttempted("the call was not handed to any instance".into())
            });
            self.settle(unit, unit_ids, sent);
        }
        Ok(())
    }

    /// Makes the calls of a wave on the pool (see [`inflight`]): each
    /// unit's outcome by its index, `None` for a unit that makes no call.
    fn send(&mut self, units: &[Unit]) -> Vec<Option<Sent>> {
        let member_ops: Vec<(usize, Operation)> = units
            .iter()
            .enumerate()
            .filter_map(|(i, u)| match u {
                Unit::Members(call) => Some((i, member_operation(&call.group_id, &call.change))),
                _ => None,
            })
            .collect();
        let mut jobs: Vec<Job<'_>> = units
            .iter()
            .enumerate()
            .filter_map(|(unit, u)| match u {
                Unit::Call(_, op, _) => Some(Job { unit, op }),
                _ => None,
            })
            .chain(member_ops.iter().map(|(unit, op)| Job { unit: *unit, op }))
            .collect();
        jobs.sort_by_key(|j| j.unit);
        let mut sent: Vec<Option<Sent>> = units.iter().map(|_| None).collect();
        if let Some(why) = &self.out.aborted {
            for job in jobs {
                sent[job.unit] = Some(Sent::NotAttempted(why.clone()));
            }
            return sent;
        }
        let (made, stop) = self
            .pool
            .run(&inflight::lanes(jobs), self.ahead, &self.lease);
        for (unit, outcome) in made {
            sent[unit] = Some(outcome);
        }
        if let Some(why) = stop {
            self.out.aborted.get_or_insert(why);
        }
        sent
    }

    /// Settles one unit of a wave: its journal entries (`ids`) get what
    /// became of its call.
    fn settle(&mut self, unit: Unit, ids: Vec<JournalId>, sent: Sent) {
        let mut ids = ids.into_iter();
        match unit {
            Unit::Skipped(step, why) => {
                self.count("skipped");
                self.out.failures.push(Failure {
                    step,
                    error: why,
                    skipped: true,
                });
            }
            Unit::LinkOnly(step, source_id, target_id) => {
                let Some(id) = ids.next() else { return };
                self.links.insert(source_id.clone(), target_id.clone());
                self.count(step.kind.name());
                self.pending.push(Pending {
                    id,
                    outcome: PendingOutcome::Linked(LinkKind::Person, source_id, target_id),
                    audit: Some(audit_of(&step)),
                });
            }
            Unit::Carried(step, account) => {
                let Some(id) = ids.next() else { return };
                self.count(step.kind.name());
                self.pending.push(Pending {
                    id,
                    outcome: PendingOutcome::Done(account),
                    audit: Some(audit_of(&step)),
                });
            }
            Unit::Call(step, op, produces) => {
                let Some(id) = ids.next() else { return };
                match sent {
                    Sent::Made(result) => {
                        let carried = result.is_ok().then(|| carried_manager(&op, produces));
                        self.settle_call(id, step, produces, result);
                        if let Some(Some((person, manager))) = carried {
                            self.carried_managers.insert(person, manager);
                        }
                    }
                    Sent::NotAttempted(why) => self.not_attempted(id, step, &why),
                }
            }
            Unit::Members(call) => {
                match sent {
                    Sent::Made(result) => {
                        let result = result.map_err(|e| e.to_string());
                        self.settle_members(ids.collect(), call, result);
                    }
                    Sent::NotAttempted(why) => {
                        let Chunk { add, remove } = call.change;
                        for (id, m) in ids.zip(remove.into_iter().chain(add)) {
                            self.not_attempted(id, m.step, &why);
                            self.observer.applied_one();
                        }
                    }
                }
                // Counted per member.
                return;
            }
        }
        self.observer.applied_one();
    }

    /// A journaled call that is never sent: settled as such.
    fn not_attempted(&mut self, id: JournalId, step: Step, why: &str) {
        self.settle_failed(id, step, format!("not attempted: {why}"), true);
    }

    /// Settles a journal entry as failed and reports its step with `error`
    /// (`skipped` when the call was never sent).
    fn settle_failed(&mut self, id: JournalId, step: Step, error: String, skipped: bool) {
        self.pending.push(Pending {
            id,
            outcome: PendingOutcome::Failed(error.clone()),
            audit: None,
        });
        self.out.failures.push(Failure {
            step,
            error,
            skipped,
        });
    }

    /// Settles one `change-members` call; every member's journal entry gets
    /// the call's outcome (all or nothing, as the contract says). A failure
    /// is reported per member, naming the group and the member.
    fn settle_members(
        &mut self,
        ids: Vec<JournalId>,
        call: MemberCall,
        result: Result<Made, String>,
    ) {
        let MemberCall { group_id, change } = call;
        let size = change.len();
        if let Err(error) = &result {
            tracing::info!(group = %group_id, members = size, "membership change not applied: {error}");
        }
        let Chunk { add, remove } = change;
        for (id, member) in ids.into_iter().zip(remove.into_iter().chain(add)) {
            let step = member.step;
            match &result {
                Ok(applied) => {
                    self.count(step.kind.name());
                    self.pending.push(Pending {
                        id,
                        outcome: PendingOutcome::Done(applied.target_id.clone()),
                        audit: Some(audit_of(&step)),
                    });
                }
                Err(e) => {
                    let error = format!(
                        "{} of account {} in group {group_id} (one change of {size} member(s)) failed: {e}",
                        step.kind, member.account
                    );
                    self.count("failed");
                    self.settle_failed(id, step, error, false);
                }
            }
            self.observer.applied_one();
        }
    }

    /// Keeps one call's outcome for the next commit (and the link it made,
    /// for the waves that follow).
    fn settle_call(
        &mut self,
        id: JournalId,
        step: Step,
        produces: Produces,
        result: Result<Made, PluginError>,
    ) {
        match result {
            Ok(applied) => {
                let tid = applied.target_id;
                tracing::debug!(kind = %step.kind, target = %tid, "applied {}", step.label);
                let outcome = match produces {
                    Produces::PersonLink(p) => {
                        let sid = self.src(p).id.clone();
                        self.links.insert(sid.clone(), tid.clone());
                        PendingOutcome::Linked(LinkKind::Person, sid, tid)
                    }
                    Produces::GroupLink(g) => {
                        let sid = self.plan.input().source.groups[g].id.clone();
                        self.group_links.insert(sid.clone(), tid.clone());
                        PendingOutcome::Linked(LinkKind::Group, sid, tid)
                    }
                    Produces::Nothing => PendingOutcome::Done(tid),
                };
                self.count(step.kind.name());
                self.pending.push(Pending {
                    id,
                    outcome,
                    audit: Some(audit_of(&step)),
                });
            }
            Err(e) => {
                let error = e.to_string();
                match produces {
                    Produces::PersonLink(p) => {
                        self.failed_people.insert(p);
                    }
                    Produces::GroupLink(g) => {
                        self.failed_groups.insert(g);
                    }
                    Produces::Nothing => {}
                }
                self.count("failed");
                // Reported in the run's failures (printed by the CLI, kept in
                // the history): a log line only with `-v`.
                tracing::info!(
                    kind = %step.kind,
                    source = ?step.source_id,
                    target = ?step.target_id,
                    "not applied: {error}"
                );
                self.settle_failed(id, step, error, false);
            }
        }
    }

    /// Commits the outcomes of the last calls.
    fn flush(&mut self) -> Result<(), EngineError> {
        let (flow, run) = (self.flow, self.run);
        let done: Vec<Completion<'_>> = self
            .pending
            .iter()
            .map(|p| p.completion(flow, run))
            .collect();
        self.store.journal_complete(&done)?;
        self.pending.clear();
        Ok(())
    }
}

/// The most members one `change-members` call may carry on `target`: its
/// manifest's `max-members-per-change` (1 for a 0.1 plugin, as the runtime
/// adapts it; a 0 is taken as 1).
fn max_members_per_change(target: &PluginInstance) -> usize {
    usize::try_from(target.manifest().max_members_per_change)
        .unwrap_or(usize::MAX)
        .max(1)
}

/// The contract operation for one membership change.
fn member_operation(group_id: &str, change: &Chunk<Member>) -> Operation {
    let ids = |members: &[Member]| members.iter().map(|m| m.account.clone()).collect();
    Operation::ChangeMembers(MemberChange {
        group_id: group_id.to_owned(),
        add: ids(&change.add),
        remove: ids(&change.remove),
    })
}

/// Calls journaled per transaction. Bigger batches save commits (each costs
/// ~180 µs here, see `benches/journal_overhead.rs`) but leave more intents
/// for recovery to settle after a crash.
const BATCH: usize = 64;

/// Calls per wave and instance in flight: a wave ends when its slowest
/// lane does, so with several calls in flight a wave is made longer (16
/// calls per instance) to keep the instances busy between waves.
const WAVE_PER_INSTANCE: usize = 16;

/// The calls journaled and made per wave with `width` instances in flight:
/// [`BATCH`], or more with many instances.
fn wave_size(width: usize) -> usize {
    BATCH.max(WAVE_PER_INSTANCE.saturating_mul(width))
}

fn next_id(
    ids: &mut impl Iterator<Item = JournalId>,
    run: RunId,
) -> Result<JournalId, EngineError> {
    ids.next()
        .ok_or(EngineError::Store(crate::store::StoreError::UnknownRun(
            run,
        )))
}

/// A call's outcome, held until the next batch's intents (or the end of
/// the apply) commit it.
struct Pending {
    id: JournalId,
    outcome: PendingOutcome,
    audit: Option<PendingAudit>,
}

enum PendingOutcome {
    Done(String),
    Linked(LinkKind, String, String),
    Failed(String),
}

struct PendingAudit {
    what: &'static str,
    subject: String,
    before: Option<serde_json::Value>,
    after: serde_json::Value,
}

impl Pending {
    fn completion<'s>(&'s self, flow: &'s str, run: RunId) -> Completion<'s> {
        let outcome = match &self.outcome {
            PendingOutcome::Done(t) => Outcome::Done {
                target_id: Some(t.as_str()),
            },
            PendingOutcome::Linked(kind, s, t) => Outcome::Linked {
                kind: *kind,
                source_id: s,
                target_id: t,
            },
            PendingOutcome::Failed(e) => Outcome::Failed { error: e },
        };
        Completion {
            id: self.id,
            outcome,
            audit: self.audit.as_ref().map(|a| AuditEntry {
                flow: Some(flow),
                run: Some(run),
                what: a.what,
                subject: &a.subject,
                before: a.before.as_ref(),
                after: Some(&a.after),
            }),
        }
    }
}

/// One audit line per change: what, to whom, before and after. Never a
/// secret: the store redacts secret-named keys, and plans carry none.
fn audit_of(step: &Step) -> PendingAudit {
    let subject = match (&step.source_id, &step.target_id) {
        (Some(s), Some(t)) => format!("{} (source {s}, target {t})", step.label),
        (Some(s), None) => format!("{} (source {s})", step.label),
        (None, Some(t)) => format!("{} (target {t})", step.label),
        (None, None) => step.label.clone(),
    };
    let before = (!step.changes.is_empty()).then(|| {
        json!(
            step.changes
                .iter()
                .map(|c| (c.field.to_string(), json!(c.old)))
                .collect::<serde_json::Map<_, _>>()
        )
    });
    let after = json!({
        "changes": step.changes.iter().map(|c| (c.field.to_string(), json!(c.new))).collect::<serde_json::Map<_, _>>(),
        "members": step.members,
    });
    PendingAudit {
        what: step.kind.name(),
        subject,
        before,
        after,
    }
}

/// Whether an action is about source record `id` (single-record runs): its
/// own create, link, update, status and manager, its memberships, and the
/// creation of its department's group.
pub fn concerns(plan: &Plan<'_>, action: &Action, id: &str) -> bool {
    let input = plan.input();
    let src = |i: usize| input.source.people[i].id == id;
    match action {
        Action::Create { person }
        | Action::Link { person, .. }
        | Action::Update { person, .. }
        | Action::Reactivate { person, .. }
        | Action::SetManager { person, .. } => src(*person),
        Action::Deactivate { person, .. } => person.is_some_and(src),
        Action::AddMembers { members, .. } => members.iter().any(|m| src(*m)),
        Action::CreateGroup { group } => {
            let dept = &input.source.groups[*group].id;
            input
                .source
                .people
                .iter()
                .any(|p| p.id == id && p.department_id.as_ref() == Some(dept))
        }
        Action::RenameGroup { .. } | Action::RemoveMembers { .. } => false,
        Action::Skip { .. } | Action::Conflict { .. } => false,
    }
}

/// The steps a selection applies (for reports and plan files).
pub fn selected_steps(plan: &Plan<'_>, selection: Selection<'_>) -> Vec<Step> {
    plan.actions()
        .iter()
        .filter(|a| match selection {
            Selection::All => true,
            Selection::Only(id) => concerns(plan, a, id) || is_report_about(plan, a, id),
        })
        .map(|a| {
            let mut step = plan.step(a);
            if let (Selection::Only(id), Action::AddMembers { .. }) = (selection, a) {
                step.retain_members(|m| m == id);
            }
            step
        })
        .collect()
}

fn is_report_about(plan: &Plan<'_>, action: &Action, id: &str) -> bool {
    match action {
        Action::Skip { subject, .. } | Action::Conflict { subject, .. } => match subject {
            muster_core::Subject::Person(p) => plan.input().source.people[*p].id == id,
            _ => false,
        },
        _ => false,
    }
}

/// Per-kind counts of steps, for plan summaries.
pub fn count_steps(steps: &[Step]) -> RunCounts {
    let mut counts = RunCounts::new();
    for s in steps {
        *counts.entry(s.kind.name().to_owned()).or_default() += 1;
    }
    counts
}

/// Whether any step changes the target.
pub fn has_changes(steps: &[Step]) -> bool {
    steps.iter().any(|s| s.kind.changes_target())
}
