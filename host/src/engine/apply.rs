//! Applying a plan through the target plugin, journaled.
//!
//! Every call's intent is committed before the call and its outcome after
//! it. Calls are journaled in batches of one phase (group commit, see
//! `Store::journal_batch`): one transaction writes the outcomes of the
//! previous batch and the intents of the next, so the bookkeeping costs a
//! commit per batch instead of three per call. A failed call is journaled
//! with its error and the run goes on — **per-record isolation** — and
//! actions that need what failed (the manager or group membership of a
//! person whose create failed, the members of a group whose creation
//! failed) are skipped with that reason instead of being sent half-formed.
//!
//! Plan actions reference records by index; here they become contract
//! operations with *target* ids, resolved through the links known before the
//! run plus those recorded during it.

use std::collections::{HashMap, HashSet};

use muster_core::{Action, ActionKind, Change, Field, FieldValue, GroupRef, Plan, Step};
use serde_json::json;

use super::EngineError;
use super::convert::person_out;
use crate::runtime::contract::latest::field_ref_from_core;
use crate::runtime::{
    AccountRef, AccountUpdate, GroupRename, ManagerChange, MemberChange, NewGroup, Operation,
    PluginInstance,
};
use crate::store::{AuditEntry, Completion, JournalId, LinkKind, Outcome, RunCounts, RunId, Store};

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
    pub target: &'r mut PluginInstance,
    pub plan: &'p Plan<'a>,
    /// Source person id → target account id.
    pub links: HashMap<String, String>,
    /// Source department id → target group id.
    pub group_links: HashMap<String, String>,
    pub seq: u32,
    pub out: Applied,
    observer: &'r dyn super::Observer,
    /// Outcomes of the calls made since the last commit.
    pending: Vec<Pending>,
    /// Source people whose create failed.
    failed_people: HashSet<usize>,
    /// Source groups whose creation failed.
    failed_groups: HashSet<usize>,
}

/// One call to make (or a link to record), with the step to journal.
enum Unit {
    Call(Step, Box<Operation>, Produces),
    /// A link needs no call: the account exists; recording it is the action.
    LinkOnly(Step, String, String),
    Skipped(Step, String),
}

fn call(step: Step, op: Operation, produces: Produces) -> Unit {
    Unit::Call(step, Box::new(op), produces)
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
        Applier {
            store,
            flow,
            run,
            target,
            plan,
            links,
            group_links,
            seq: 0,
            out: Applied::default(),
            observer,
            pending: Vec::new(),
            failed_people: HashSet::new(),
            failed_groups: HashSet::new(),
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
            // A batch is consecutive actions of one phase: nothing in a phase
            // depends on another action of the same phase, except a group
            // whose parent is created just before it — those go one by one.
            let phase = phase_of(actions[start].kind());
            let max = if actions[start].kind() == ActionKind::CreateGroup {
                1
            } else {
                BATCH
            };
            let mut end = start + 1;
            while end < actions.len() && end - start < max && phase_of(actions[end].kind()) == phase
            {
                end += 1;
            }
            let units: Vec<Unit> = actions[start..end]
                .iter()
                .flat_map(|a| self.units(a, selection))
                .collect();
            self.run_batch(units)?;
            if self.out.aborted.is_some() {
                break;
            }
            start = end;
        }
        self.flush()?;
        Ok(self.out)
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
        self.translated(person_out(self.src(person)))
    }

    /// What a create sends: the core decides ([`muster_core::Policy::create_fields`]:
    /// owned fields plus those the target requires); the rest of the source
    /// record stays in muster.
    fn created(&self, person: usize) -> crate::runtime::Person {
        let fields = self.plan.input().policy.create_fields();
        self.translated(person_out(&self.src(person).only(&fields)))
    }

    /// `out`'s manager and department (source ids) as target ids, where the
    /// links know them.
    fn translated(&self, mut out: crate::runtime::Person) -> crate::runtime::Person {
        out.manager_id = out.manager_id.and_then(|m| self.links.get(&m).cloned());
        out.department_id = out
            .department_id
            .and_then(|d| self.group_links.get(&d).cloned());
        out
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
            } => vec![call(
                step,
                Operation::Update(AccountUpdate {
                    id: self.tgt(*account).id.clone(),
                    person: self.desired(*person),
                    fields: changes.iter().map(field_ref_from_core).collect(),
                    rows: Vec::new(),
                }),
                Produces::Nothing,
            )],
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
                let group_id = match group {
                    GroupRef::Existing(t) => Some(plan.input().target.groups[*t].id.clone()),
                    GroupRef::Planned(s) => {
                        let src = &plan.input().source.groups[*s];
                        self.group_links.get(&src.id).cloned()
                    }
                };
                members
                    .iter()
                    .filter(|m| match selection {
                        Selection::All => true,
                        Selection::Only(id) => self.src(**m).id == id,
                    })
                    .map(|m| {
                        let member_id = self.src(*m).id.clone();
                        let mut one = step.clone();
                        one.members = vec![member_id.clone()];
                        one.target_id = group_id.clone();
                        let account = self.links.get(&member_id).cloned();
                        match (&group_id, account) {
                            (None, _) => Unit::Skipped(
                                one,
                                "skipped: the group was not created (its creation failed)".into(),
                            ),
                            (Some(_), None) => Unit::Skipped(
                                one,
                                format!(
                                    "skipped: source {member_id} has no account (its create failed or was not planned)"
                                ),
                            ),
                            (Some(g), Some(a)) => call(
                                one,
                                Operation::ChangeMembers(MemberChange {
                                    group_id: g.clone(),
                                    add: vec![a],
                                    remove: Vec::new(),
                                }),
                                Produces::Nothing,
                            ),
                        }
                    })
                    .collect()
            }
            Action::RemoveMembers { group, members } => {
                let g = &plan.input().target.groups[*group];
                members
                    .iter()
                    .map(|m| {
                        let account = g.members[*m].clone();
                        let mut one = step.clone();
                        one.members = vec![account.clone()];
                        call(
                            one,
                            Operation::ChangeMembers(MemberChange {
                                group_id: g.id.clone(),
                                add: Vec::new(),
                                remove: vec![account],
                            }),
                            Produces::Nothing,
                        )
                    })
                    .collect()
            }
            Action::Skip { .. } | Action::Conflict { .. } => Vec::new(),
        }
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
            step.changes = vec![Change {
                field: Field::ManagerId.into(),
                old: step.changes.first().and_then(|c| c.old.clone()),
                new: m.clone().map(FieldValue::Text),
            }];
        }
        match (account_id, manager_id) {
            (None, _) => vec![Unit::Skipped(
                step,
                format!("skipped: source {person_id} has no account (its create failed)"),
            )],
            (Some(_), Err(why)) => vec![Unit::Skipped(step, why)],
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
            if let Unit::Call(step, ..) | Unit::LinkOnly(step, ..) = unit {
                self.seq += 1;
                seqs.push((self.seq, step));
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
        for unit in units {
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
                    let id = next_id(&mut ids, self.run)?;
                    self.links.insert(source_id.clone(), target_id.clone());
                    self.count(step.kind.name());
                    self.pending.push(Pending {
                        id,
                        outcome: PendingOutcome::Linked(LinkKind::Person, source_id, target_id),
                        audit: Some(audit_of(&step)),
                    });
                }
                Unit::Call(step, op, produces) => {
                    let id = next_id(&mut ids, self.run)?;
                    if self.out.aborted.is_none() && self.store.lease_lapsed() {
                        // Another run may take the flow over (and settle
                        // these intents): stop calling (store/lease.rs, rule 6).
                        self.out.aborted = Some(
                            "this run's lease on the flow lapsed (the process was suspended, or the database unreachable); the remaining actions were not attempted".into(),
                        );
                    }
                    if let Some(why) = &self.out.aborted {
                        // Journaled but never sent: settle it as such.
                        let error = format!("not attempted: {why}");
                        self.pending.push(Pending {
                            id,
                            outcome: PendingOutcome::Failed(error.clone()),
                            audit: None,
                        });
                        self.out.failures.push(Failure {
                            step,
                            error,
                            skipped: true,
                        });
                    } else {
                        self.call(id, step, *op, produces);
                    }
                }
            }
            self.observer.applied_one();
        }
        Ok(())
    }

    /// Makes one call and keeps its outcome for the next commit.
    fn call(&mut self, id: JournalId, step: Step, op: Operation, produces: Produces) {
        match self.target.apply(&op) {
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
                if self.target.is_poisoned() {
                    self.out.aborted = Some(format!(
                        "the target plugin stopped working ({error}); the remaining actions were not attempted"
                    ));
                }
                self.pending.push(Pending {
                    id,
                    outcome: PendingOutcome::Failed(error.clone()),
                    audit: None,
                });
                self.out.failures.push(Failure {
                    step,
                    error,
                    skipped: false,
                });
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

/// Calls journaled per transaction. Bigger batches save commits (each costs
/// ~180 µs here, see `benches/journal_overhead.rs`) but leave more intents
/// for recovery to settle after a crash.
const BATCH: usize = 64;

/// Actions of one phase never depend on each other (see `apply`).
fn phase_of(kind: ActionKind) -> u8 {
    match kind {
        ActionKind::CreateGroup => 0,
        ActionKind::RenameGroup => 1,
        ActionKind::Create | ActionKind::Link => 2,
        ActionKind::Update | ActionKind::Reactivate => 3,
        ActionKind::SetManager => 4,
        ActionKind::AddMembers | ActionKind::RemoveMembers => 5,
        ActionKind::Deactivate => 6,
        ActionKind::Skip | ActionKind::Conflict => 7,
    }
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
                step.members.retain(|m| m == id);
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
