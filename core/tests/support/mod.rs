//! Test support: a small world (source, target, links) and an in-memory
//! target that applies plans the way a connector would, so tests can check
//! convergence and what a plan *does*, not only what it says.
#![allow(dead_code)]

use muster_core::{
    Action, Coverage, Date, Field, FieldRef, Group, GroupRef, Input, Link, Person, Plan, Policy,
    Side, WrittenRows,
};

pub fn day(text: &str) -> Date {
    Date::parse(text).unwrap()
}

/// An active person who started long ago, with a name and a work email.
pub fn person(id: &str, given: &str, family: &str, email: &str) -> Person {
    Person {
        given_name: Some(given.into()),
        family_name: Some(family.into()),
        work_email: Some(email.into()),
        start_date: Some(day("2020-01-01")),
        ..Person::new(id)
    }
}

pub fn group(id: &str, name: &str) -> Group {
    Group {
        id: id.into(),
        name: name.into(),
        ..Group::default()
    }
}

/// Source and target as a connector would return them, plus the store's
/// links, and a counter for new target ids.
#[derive(Debug, Clone)]
pub struct World {
    pub source: Vec<Person>,
    pub departments: Vec<Group>,
    pub target: Vec<Person>,
    pub teams: Vec<Group>,
    pub links: Vec<Link>,
    pub group_links: Vec<Link>,
    /// Another flow's person links ([`Input::identities`]).
    pub identities: Vec<Link>,
    /// The rows the flow wrote ([`Input::written_rows`]).
    pub written_rows: WrittenRows,
    pub policy: Policy,
    pub today: Date,
    /// What the source read covered.
    pub source_coverage: Coverage,
    /// Source ids read but unusable this run (not in `source`).
    pub held: Vec<String>,
    next_id: u32,
}

impl World {
    pub fn new(policy: Policy) -> World {
        World {
            source: Vec::new(),
            departments: Vec::new(),
            target: Vec::new(),
            teams: Vec::new(),
            links: Vec::new(),
            group_links: Vec::new(),
            identities: Vec::new(),
            written_rows: WrittenRows::default(),
            policy,
            today: day("2026-03-02"),
            source_coverage: Coverage::Full,
            held: Vec::new(),
            next_id: 1,
        }
    }

    pub fn input(&self) -> Input<'_> {
        Input {
            source: Side {
                people: &self.source,
                groups: &self.departments,
                coverage: self.source_coverage,
                held: &self.held,
                prepared: None,
                other_logins: &[],
            },
            target: Side {
                people: &self.target,
                groups: &self.teams,
                coverage: Coverage::Full,
                held: &[],
                prepared: None,
                other_logins: &[],
            },
            links: &self.links,
            prepared_links: None,
            group_links: &self.group_links,
            identities: &self.identities,
            written_rows: &self.written_rows,
            policy: &self.policy,
            today: self.today,
        }
    }

    pub fn plan(&self) -> Plan<'_> {
        muster_core::plan(&self.input()).expect("plan")
    }

    /// The (kind, source id or target id) of every action, for assertions.
    pub fn summary(&self) -> Vec<String> {
        let plan = self.plan();
        plan.steps()
            .iter()
            .map(|s| {
                let who = s
                    .source_id
                    .clone()
                    .or(s.target_id.clone())
                    .unwrap_or_default();
                format!("{} {} ({})", s.kind, who, s.reason)
            })
            .collect()
    }

    pub fn link(&mut self, source: &str, target: &str) {
        self.links.push(Link::new(source, target));
    }

    pub fn target_of(&self, source_id: &str) -> Option<&Person> {
        let link = self.links.iter().find(|l| l.source_id == source_id)?;
        self.target.iter().find(|a| a.id == link.target_id)
    }

    /// Plans and applies the plan to the in-memory target. Returns the
    /// number of changing actions applied.
    pub fn sync(&mut self) -> u32 {
        let (ops, changes) = {
            let plan = self.plan();
            (to_ops(&plan), plan.counts().changes())
        };
        for op in ops {
            self.apply(op);
        }
        changes
    }

    /// Applies what [`ops`] resolved from a plan made elsewhere (an undo
    /// plan) to the in-memory target.
    pub fn apply_ops(&mut self, ops: Ops) {
        for op in ops.0 {
            self.apply(op);
        }
    }

    fn fresh_id(&mut self, prefix: &str) -> String {
        let id = format!("{prefix}{}", self.next_id);
        self.next_id += 1;
        id
    }

    fn account_id(&self, source_id: &str) -> Option<String> {
        self.links
            .iter()
            .find(|l| l.source_id == source_id)
            .map(|l| l.target_id.clone())
    }

    fn account_mut(&mut self, id: &str) -> &mut Person {
        self.target
            .iter_mut()
            .find(|a| a.id == id)
            .expect("account")
    }

    fn apply(&mut self, op: Op) {
        match op {
            Op::CreateGroup { source_id, name } => {
                let id = self.fresh_id("team-");
                self.teams.push(Group {
                    id: id.clone(),
                    name,
                    ..Group::default()
                });
                self.group_links.push(Link::new(source_id, id));
            }
            Op::RenameGroup { target_id, name } => {
                self.teams
                    .iter_mut()
                    .find(|g| g.id == target_id)
                    .expect("team")
                    .name = name
            }
            Op::Create { person, fields } => {
                let id = self.fresh_id("acct-");
                let mut acc = Person::new(id.clone());
                for f in &fields {
                    acc.set(f, person.get(f).map(|v| v.to_owned_value()))
                        .unwrap();
                }
                self.target.push(acc);
                self.links.push(Link::new(person.id, id));
            }
            Op::Link {
                source_id,
                target_id,
            } => self.links.push(Link::new(source_id, target_id)),
            Op::Update {
                person,
                target_id,
                fields,
            } => {
                let acc = self.account_mut(&target_id);
                for f in &fields {
                    acc.set(f, person.get(f).map(|v| v.to_owned_value()))
                        .unwrap();
                }
            }
            Op::SetActive { target_id, active } => self.account_mut(&target_id).active = active,
            Op::SetManager {
                source_id,
                manager,
                manager_account,
            } => {
                let id = self.account_id(&source_id).expect("person's account");
                let manager = manager_account
                    .or_else(|| manager.map(|m| self.account_id(&m).expect("manager's account")));
                self.account_mut(&id).manager_id = manager;
            }
            Op::AddMembers { group, members } => {
                let team_id = match group {
                    Ok(t) => t,
                    Err(dept) => self
                        .group_links
                        .iter()
                        .find(|l| l.source_id == dept)
                        .expect("created team")
                        .target_id
                        .clone(),
                };
                let ids: Vec<String> = members
                    .iter()
                    .map(|m| self.account_id(m).expect("member"))
                    .collect();
                let team = self
                    .teams
                    .iter_mut()
                    .find(|g| g.id == team_id)
                    .expect("team");
                team.members.extend(ids);
            }
            Op::RemoveMembers { target_id, members } => {
                let team = self
                    .teams
                    .iter_mut()
                    .find(|g| g.id == target_id)
                    .expect("team");
                for m in members {
                    let at = team.members.iter().position(|x| *x == m).expect("member");
                    team.members.remove(at);
                }
            }
        }
    }
}

/// What the in-memory target is asked to do, resolved to ids.
#[derive(Debug)]
enum Op {
    CreateGroup {
        source_id: String,
        name: String,
    },
    RenameGroup {
        target_id: String,
        name: String,
    },
    Create {
        person: Person,
        fields: Vec<FieldRef>,
    },
    Link {
        source_id: String,
        target_id: String,
    },
    Update {
        person: Person,
        target_id: String,
        fields: Vec<FieldRef>,
    },
    SetActive {
        target_id: String,
        active: bool,
    },
    SetManager {
        source_id: String,
        /// The manager's source id, when it is a planned person.
        manager: Option<String>,
        /// The manager's existing account, when known.
        manager_account: Option<String>,
    },
    AddMembers {
        group: Result<String, String>,
        members: Vec<String>,
    },
    RemoveMembers {
        target_id: String,
        members: Vec<String>,
    },
}

/// A plan's calls, resolved to ids, for [`World::apply_ops`].
pub struct Ops(Vec<Op>);

/// The calls `plan` makes.
pub fn ops(plan: &Plan<'_>) -> Ops {
    Ops(to_ops(plan))
}

fn to_ops(plan: &Plan<'_>) -> Vec<Op> {
    let input = plan.input();
    let (src, tgt) = (input.source.people, input.target.people);
    let compared: Vec<FieldRef> = input
        .policy
        .owned
        .iter()
        .filter(|f| !matches!(f, FieldRef::Canonical(c) if c.is_reference()))
        .collect();
    plan.actions()
        .iter()
        .filter_map(|a| {
            Some(match a {
                Action::CreateGroup { group } => Op::CreateGroup {
                    source_id: input.source.groups[*group].id.clone(),
                    name: input.source.groups[*group].name.clone(),
                },
                Action::RenameGroup { group, target } => Op::RenameGroup {
                    target_id: input.target.groups[*target].id.clone(),
                    name: input.source.groups[*group].name.clone(),
                },
                Action::Create { person } => Op::Create {
                    person: src[*person].clone(),
                    fields: compared.clone(),
                },
                Action::Link {
                    person, account, ..
                } => Op::Link {
                    source_id: src[*person].id.clone(),
                    target_id: tgt[*account].id.clone(),
                },
                Action::Update {
                    person,
                    account,
                    changes,
                } => Op::Update {
                    person: src[*person].clone(),
                    target_id: tgt[*account].id.clone(),
                    fields: changes.clone(),
                },
                Action::Reactivate { account, .. } => Op::SetActive {
                    target_id: tgt[*account].id.clone(),
                    active: true,
                },
                Action::Deactivate { account, .. } => Op::SetActive {
                    target_id: tgt[*account].id.clone(),
                    active: false,
                },
                Action::SetManager {
                    person,
                    manager,
                    manager_account,
                    ..
                } => Op::SetManager {
                    source_id: src[*person].id.clone(),
                    manager: manager.map(|m| src[m].id.clone()),
                    manager_account: manager_account.map(|a| tgt[a].id.clone()),
                },
                Action::AddMembers { group, members } => Op::AddMembers {
                    group: match group {
                        GroupRef::Existing(t) => Ok(input.target.groups[*t].id.clone()),
                        GroupRef::Planned(s) => Err(input.source.groups[*s].id.clone()),
                    },
                    members: members.iter().map(|m| src[*m].id.clone()).collect(),
                },
                Action::RemoveMembers { group, members } => {
                    let g = &input.target.groups[*group];
                    Op::RemoveMembers {
                        target_id: g.id.clone(),
                        members: members.iter().map(|m| g.members[*m].clone()).collect(),
                    }
                }
                Action::Skip { .. } | Action::Conflict { .. } => return None,
            })
        })
        .collect()
}

/// A field's name, for readable assertions.
pub fn names(fields: &[FieldRef]) -> Vec<&str> {
    fields.iter().map(|f| f.name()).collect()
}

pub const SYNCED: &[Field] = &[
    Field::GivenName,
    Field::FamilyName,
    Field::WorkEmail,
    Field::BirthDate,
    Field::StartDate,
    Field::EndDate,
    Field::JobTitle,
    Field::Gender,
    Field::EmployeeNumber,
];
