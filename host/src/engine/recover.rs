//! Recovery: settling the journal entries a dead run left behind.
//!
//! A run killed between a journal *intent* and its *outcome* leaves the entry
//! `intent`: the call may or may not have reached the target. Before the next
//! plan, with both sides freshly read, each such entry is decided from what
//! the target shows now:
//!
//! - a **create** is looked for among the accounts no link names with the
//!   planner's own correlation keys and normalisation
//!   ([`muster_core::recover::Accounts::find_created`]); exactly one match
//!   means the call took effect, and the link is recorded with the outcome
//!   in one transaction — so the next plan updates that account instead of
//!   creating a second one;
//! - a **group creation** is looked for among unlinked groups by the name the
//!   journaled step carries as data ([`muster_core::Step::group_name`]);
//! - deactivate, reactivate, update, manager and membership changes are
//!   checked against the account's or group's current state, values with
//!   the planner's equality ([`muster_core::recover::values_match`]);
//! - whatever cannot be told is recorded as `unknown` with a note: the fresh
//!   plan re-applies what is still missing, which is safe for every operation
//!   but a create, and creates are always decidable when a correlation key
//!   exists.
//!
//! Recovery runs only under the flow's lease (`plan`, which holds none,
//! never recovers). So runs still marked `running` belong to an owner whose
//! lease expired — a process that died, or one fenced out that can write
//! nothing more: they are finished as `aborted`, and their open intents are
//! theirs to settle, never a live run's.

use std::collections::{HashMap, HashSet};

use muster_core::recover::{Accounts, Found, group_name_matches, values_match};
use muster_core::{ActionKind, FieldValue, Group, Person, Policy};

use super::EngineError;
use crate::store::{JournalEntry, LinkKind, Resolution, RunCounts, RunId, RunStatus, Store};

/// What recovery did, for the run report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovered {
    pub aborted_runs: usize,
    pub done: usize,
    pub failed: usize,
    pub unknown: usize,
}

impl Recovered {
    pub fn is_empty(&self) -> bool {
        *self == Recovered::default()
    }
}

/// Settles every unresolved journal entry of `flow` against the fresh reads.
/// `current` is the run doing the recovery, which is not a dead one.
/// `source` holds the *mapped* source people (the values creates were made
/// from).
pub fn recover(
    store: &mut Store,
    flow: &str,
    current: Option<RunId>,
    policy: &Policy,
    source: &[Person],
    target: &[Person],
    target_groups: &[Group],
) -> Result<Recovered, EngineError> {
    let mut out = Recovered::default();
    for run in store.unfinished_runs(flow)? {
        if Some(run) == current {
            continue;
        }
        store.finish_run(
            run,
            RunStatus::Aborted,
            &RunCounts::new(),
            Some("interrupted: the process stopped before the run finished"),
        )?;
        out.aborted_runs += 1;
    }
    let entries = store.unresolved_journal(flow)?;
    if entries.is_empty() {
        return Ok(out);
    }
    let links = store.links(flow)?;
    let linked: HashSet<String> = links.iter().map(|l| l.target_id.clone()).collect();
    let linked_groups: HashSet<String> = store
        .group_links(flow)?
        .into_iter()
        .map(|l| l.target_id)
        .collect();
    let accounts: HashMap<&str, &Person> = target.iter().map(|p| (p.id.as_str(), p)).collect();
    let groups: HashMap<&str, &Group> = target_groups.iter().map(|g| (g.id.as_str(), g)).collect();
    let source_by_id: HashMap<&str, &Person> = source.iter().map(|p| (p.id.as_str(), p)).collect();
    let link_of: HashMap<String, String> = links
        .into_iter()
        .map(|l| (l.source_id, l.target_id))
        .collect();
    let by_key = Accounts::new(policy, target);

    let mut ctx = Ctx {
        target_groups,
        linked,
        linked_groups,
        accounts: &accounts,
        groups: &groups,
        source_by_id: &source_by_id,
        link_of: &link_of,
        by_key: &by_key,
        target,
    };
    for entry in entries {
        match ctx.decide(&entry) {
            Decision::Link(kind, target_id) => {
                let source_id = entry.source_id.clone().unwrap_or_default();
                store.record_link_and_done(entry.id, kind, &source_id, &target_id)?;
                // Taken now: a later entry must not adopt the same record.
                match kind {
                    LinkKind::Person => ctx.linked.insert(target_id),
                    LinkKind::Group => ctx.linked_groups.insert(target_id),
                };
                out.done += 1;
            }
            Decision::Resolve(resolution) => {
                match &resolution {
                    Resolution::Done { .. } => out.done += 1,
                    Resolution::Failed { .. } => out.failed += 1,
                    Resolution::Unknown { .. } => out.unknown += 1,
                }
                store.resolve_journal(entry.id, &resolution)?;
            }
        }
    }
    Ok(out)
}

enum Decision {
    Link(LinkKind, String),
    Resolve(Resolution),
}

struct Ctx<'a> {
    target: &'a [Person],
    target_groups: &'a [Group],
    /// Target ids some link names (grows as recovery records links).
    linked: HashSet<String>,
    linked_groups: HashSet<String>,
    accounts: &'a HashMap<&'a str, &'a Person>,
    groups: &'a HashMap<&'a str, &'a Group>,
    source_by_id: &'a HashMap<&'a str, &'a Person>,
    link_of: &'a HashMap<String, String>,
    /// Accounts by the planner's correlation keys.
    by_key: &'a Accounts<'a>,
}

fn not_applied(what: &str) -> Decision {
    Decision::Resolve(Resolution::Failed {
        error: format!(
            "recovered: {what}; the run died before the call took effect (the next plan redoes it if still needed)"
        ),
    })
}

fn done(target_id: Option<&str>) -> Decision {
    Decision::Resolve(Resolution::Done {
        target_id: target_id.map(str::to_owned),
    })
}

fn unknown(note: String) -> Decision {
    Decision::Resolve(Resolution::Unknown { note })
}

impl Ctx<'_> {
    fn decide(&self, e: &JournalEntry) -> Decision {
        let account = e
            .target_id
            .as_deref()
            .and_then(|id| self.accounts.get(id).copied());
        match e.kind {
            ActionKind::Create | ActionKind::Link => self.decide_create(e),
            ActionKind::CreateGroup => self.decide_create_group(e),
            ActionKind::Deactivate => match account {
                Some(a) if !a.active => done(Some(&a.id)),
                Some(_) => not_applied("the account is still active"),
                None => unknown("the account is no longer in the target".into()),
            },
            ActionKind::Reactivate => match account {
                Some(a) if a.active => done(Some(&a.id)),
                Some(_) => not_applied("the account is still inactive"),
                None => unknown("the account is no longer in the target".into()),
            },
            ActionKind::Update => match account {
                Some(a) => {
                    let applied = e.step.changes.iter().all(|c| {
                        let now = a.get(&c.field).map(|v| v.to_owned_value());
                        values_match(&c.field, now.as_ref(), c.new.as_ref())
                    });
                    if applied {
                        done(Some(&a.id))
                    } else {
                        not_applied("the account does not show the new values")
                    }
                }
                None => unknown("the account is no longer in the target".into()),
            },
            ActionKind::SetManager => self.decide_manager(e),
            ActionKind::AddMembers | ActionKind::RemoveMembers => self.decide_membership(e),
            ActionKind::RenameGroup => {
                let group = e.target_id.as_deref().and_then(|id| self.groups.get(id));
                let new = e.step.changes.first().and_then(|c| c.new.as_ref());
                match (group, new) {
                    (Some(g), Some(FieldValue::Text(name)))
                        if group_name_matches(&g.name, name) =>
                    {
                        done(Some(&g.id))
                    }
                    (Some(_), _) => not_applied("the group still has its old name"),
                    (None, _) => unknown("the group is no longer in the target".into()),
                }
            }
            ActionKind::Skip | ActionKind::Conflict => done(e.target_id.as_deref()),
        }
    }

    /// A create took effect when exactly one unlinked account matches the
    /// person by a correlation key.
    fn decide_create(&self, e: &JournalEntry) -> Decision {
        let Some(source_id) = e.source_id.as_deref() else {
            return unknown("the journal entry names no source record".into());
        };
        if let Some(t) = e.target_id.as_deref()
            && e.kind == ActionKind::Link
        {
            // A link needs no call: recording it is the whole action.
            return Decision::Link(LinkKind::Person, t.to_owned());
        }
        if let Some(target) = self.link_of.get(source_id) {
            return done(Some(target));
        }
        let Some(person) = self.source_by_id.get(source_id) else {
            return unknown(format!(
                "source record {source_id} is no longer in the source; cannot look its account up"
            ));
        };
        let linked = |a: &Person| self.linked.contains(&a.id);
        match self.by_key.find_created(person, linked) {
            Found::Account(i) => Decision::Link(LinkKind::Person, self.target[i].id.clone()),
            Found::Nothing => not_applied("no unlinked account matches the person"),
            Found::Ambiguous { key, candidates } => unknown(format!(
                "{candidates} unlinked accounts share its {key}; the next plan reports the conflict"
            )),
        }
    }

    fn decide_create_group(&self, e: &JournalEntry) -> Decision {
        let Some(name) = &e.step.group_name else {
            return unknown(
                "the journal entry names no group (written before steps carried group names)"
                    .into(),
            );
        };
        let found: Vec<&Group> = self
            .target_groups
            .iter()
            .filter(|g| group_name_matches(&g.name, name) && !self.linked_groups.contains(&g.id))
            .collect();
        match found.as_slice() {
            [one] => Decision::Link(LinkKind::Group, one.id.clone()),
            [] => not_applied("no unlinked group has that name"),
            many => unknown(format!("{} unlinked groups are named {name:?}", many.len())),
        }
    }

    fn decide_manager(&self, e: &JournalEntry) -> Decision {
        let account_id = e.target_id.clone().or_else(|| {
            e.source_id
                .as_deref()
                .and_then(|s| self.link_of.get(s).cloned())
        });
        let Some(account) = account_id.as_deref().and_then(|id| self.accounts.get(id)) else {
            return unknown("the account is not in the target".into());
        };
        match e.step.changes.first().map(|c| &c.new) {
            Some(None) if account.manager_id.is_none() => done(Some(&account.id)),
            Some(Some(FieldValue::Text(m))) if account.manager_id.as_deref() == Some(m) => {
                done(Some(&account.id))
            }
            _ => not_applied("the account does not show the new manager"),
        }
    }

    fn decide_membership(&self, e: &JournalEntry) -> Decision {
        let Some(group) = e.target_id.as_deref().and_then(|id| self.groups.get(id)) else {
            return unknown("the group is not in the target".into());
        };
        let adding = e.kind == ActionKind::AddMembers;
        let all = e.step.members.iter().all(|m| {
            // Added members are source ids; removed ones are account ids.
            let account = if adding {
                self.link_of.get(m).map(String::as_str)
            } else {
                Some(m.as_str())
            };
            match account {
                Some(a) => group.members.iter().any(|x| x == a) == adding,
                None => false,
            }
        });
        if all {
            done(Some(&group.id))
        } else {
            not_applied("the group's members do not show the change")
        }
    }
}

#[cfg(test)]
mod tests {
    use muster_core::{Change, Field, Link, Step};

    use super::*;
    use crate::store::Trigger;

    const FLOW: &str = "lucca-to-leapsome";

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = Store::open(dir.path().join("state.db")).expect("open store");
        store.ensure_flow(FLOW, "lucca", "leapsome").expect("flow");
        (dir, store)
    }

    /// A step as the applier journals it; `label` is display text that
    /// recovery must never read.
    fn step(kind: ActionKind, source_id: Option<&str>, target_id: Option<&str>) -> Step {
        Step {
            kind,
            source_id: source_id.map(Into::into),
            target_id: target_id.map(Into::into),
            label: "not the name of anything".into(),
            reason: String::new(),
            explanation: String::new(),
            changes: Vec::new(),
            members: Vec::new(),
            member_names: Default::default(),
            carries: Vec::new(),
            rows: Vec::new(),
            group_name: None,
            manager_source_id: None,
            created: Vec::new(),
        }
    }

    /// Journals `steps` as the intents of a run that then dies.
    fn dead_run(store: &mut Store, steps: &[Step]) {
        let run = store.begin_run(FLOW, Trigger::Manual).expect("run");
        let seqs: Vec<(u32, &Step)> = (1..).zip(steps).collect();
        store.journal_batch(&[], run, &seqs).expect("journal");
    }

    #[test]
    fn a_group_creation_is_found_by_the_name_the_step_carries() {
        let (_dir, mut store) = store();
        let mut create = step(ActionKind::CreateGroup, Some("10"), None);
        create.group_name = Some("Engineering".into());
        // An entry from before steps carried names: undecidable, not guessed.
        let old = step(ActionKind::CreateGroup, Some("20"), None);
        dead_run(&mut store, &[create, old]);
        let groups = [
            Group {
                id: "t-1".into(),
                name: "Engineering ".into(),
                ..Group::default()
            },
            Group {
                id: "t-2".into(),
                name: "not the name of anything".into(),
                ..Group::default()
            },
        ];
        let policy = Policy::default();
        let out = recover(&mut store, FLOW, None, &policy, &[], &[], &groups).expect("recover");
        assert_eq!((out.aborted_runs, out.done, out.unknown), (1, 1, 1));
        assert_eq!(
            store.group_links(FLOW).expect("links"),
            [Link::new("10", "t-1")]
        );
    }

    #[test]
    fn a_create_is_found_with_the_planners_keys_and_an_update_with_its_equality() {
        let (_dir, mut store) = store();
        let mut update = step(ActionKind::Update, Some("2"), Some("a-2"));
        update.changes = vec![Change::values(
            Field::JobTitle.into(),
            None,
            Some(FieldValue::Text("Lead".into())),
        )];
        dead_run(
            &mut store,
            &[step(ActionKind::Create, Some("1"), None), update],
        );
        let source = [Person {
            work_email: Some("Ana@Acme.fr".into()),
            ..Person::new("1")
        }];
        let target = [
            Person {
                work_email: Some(" ana@acme.fr".into()),
                ..Person::new("a-1")
            },
            Person {
                job_title: Some("Lead ".into()),
                ..Person::new("a-2")
            },
        ];
        let policy = Policy::default();
        let out = recover(&mut store, FLOW, None, &policy, &source, &target, &[]).expect("recover");
        assert_eq!((out.done, out.failed, out.unknown), (2, 0, 0));
        assert_eq!(store.links(FLOW).expect("links"), [Link::new("1", "a-1")]);
        assert!(store.unresolved_journal(FLOW).expect("journal").is_empty());
    }
}
