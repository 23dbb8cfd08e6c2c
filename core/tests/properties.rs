//! Property tests over random worlds: sources, targets, links and policies
//! drawn from small pools so that collisions (shared emails, employee
//! numbers, team names, dangling links) are common.
//!
//! (a) convergence, (b) nothing deleted and nothing unowned touched,
//! (c) determinism under reordering, (d) an incomplete source never plans
//! for a flow that can deactivate, (e) nor touches absent or held people's
//! accounts for one that cannot.

mod support;

use muster_core::{
    Action, ActionKind, CorrelationKey, Coverage, Date, FieldValue, Gender, Group, GroupRef, Link,
    Person, PlanError, Policy, Prepared, PreparedLinks, Step,
};
use proptest::prelude::*;
use support::World;

/// A tiny deterministic generator: proptest picks the seed and the sizes,
/// this turns them into a world.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

const NAMES: &[&str] = &["Ana", "Ben", "Élodie", "Zoë", "Mark"];
const EMAILS: &[&str] = &[
    "a@x.fr", "b@x.fr", "B@x.fr ", "c@x.fr", "d@x.fr", "e@x.fr", "f@x.fr",
];
const NUMBERS: &[&str] = &["E1", "E2", "E3", "E4"];
const TEAMS: &[&str] = &["Eng", "Sales", "eng", "Ops"];

fn random_person(rng: &mut Rng, id: String, ids: &[String]) -> Person {
    let today = Date::from_ymd(2026, 3, 2).unwrap();
    let date = |rng: &mut Rng| today.add_days(rng.below(40) as i32 - 20);
    Person {
        active: rng.chance(85),
        employee_number: rng.chance(50).then(|| rng.pick(NUMBERS).into()),
        given_name: rng.chance(90).then(|| rng.pick(NAMES).into()),
        family_name: Some(rng.pick(NAMES).into()),
        work_email: rng.chance(85).then(|| rng.pick(EMAILS).into()),
        job_title: rng
            .chance(50)
            .then(|| rng.pick(&["Dev", "dev", "Lead"]).into()),
        gender: rng.chance(50).then_some(Gender::Female),
        start_date: rng.chance(90).then(|| date(rng)),
        end_date: rng.chance(25).then(|| date(rng)),
        department_id: rng.chance(70).then(|| format!("d{}", rng.below(5))),
        manager_id: (rng.chance(50) && !ids.is_empty())
            .then(|| ids[rng.below(ids.len() as u64) as usize].clone()),
        custom: if rng.chance(30) {
            [(
                "e_level".to_string(),
                FieldValue::Number(rng.below(3) as f64),
            )]
            .into()
        } else {
            Default::default()
        },
        ..Person::new(id)
    }
}

fn world(seed: u64, n_source: usize, n_target: usize) -> World {
    let mut rng = Rng(seed | 1);
    let mut policy = Policy {
        reactivate: rng.chance(50),
        sync_groups: rng.chance(80),
        pre_start_days: rng.below(10) as u16,
        ..Policy::default()
    };
    policy.owned.insert(muster_core::FieldRef::parse("e_level"));
    policy.correlation = match rng.below(3) {
        0 => vec![CorrelationKey::WorkEmail],
        1 => vec![CorrelationKey::EmployeeNumber, CorrelationKey::WorkEmail],
        _ => vec![CorrelationKey::EmployeeNumber],
    };
    let mut w = World::new(policy);
    let source_ids: Vec<String> = (0..n_source).map(|i| format!("s{i}")).collect();
    let mut with_missing = source_ids.clone();
    with_missing.push("s-missing".into());
    w.source = source_ids
        .iter()
        .map(|id| random_person(&mut rng, id.clone(), &with_missing))
        .collect();
    let target_ids: Vec<String> = (0..n_target).map(|i| format!("t{i}")).collect();
    w.target = target_ids
        .iter()
        .map(|id| random_person(&mut rng, id.clone(), &target_ids))
        .collect();
    // Links: a random partial matching, plus dangling ones on either side.
    let mut free: Vec<&String> = target_ids.iter().collect();
    for id in &source_ids {
        if !free.is_empty() && rng.chance(50) {
            let t = free.swap_remove(rng.below(free.len() as u64) as usize);
            w.links.push(Link::new(id.clone(), t.clone()));
        }
    }
    if rng.chance(30) && !free.is_empty() {
        w.links
            .push(Link::new("s-gone", free.swap_remove(0).clone()));
    }
    w.departments = (0..rng.below(5))
        .map(|i| Group {
            id: format!("d{i}"),
            name: rng.pick(TEAMS).into(),
            ..Group::default()
        })
        .collect();
    w.teams = (0..rng.below(4))
        .map(|i| Group {
            id: format!("g{i}"),
            name: rng.pick(TEAMS).into(),
            members: target_ids
                .iter()
                .filter(|_| rng.chance(20))
                .cloned()
                .collect(),
            ..Group::default()
        })
        .collect();
    for (i, d) in w.departments.iter().enumerate() {
        if i < w.teams.len() && rng.chance(50) {
            w.group_links
                .push(Link::new(d.id.clone(), w.teams[i].id.clone()));
        }
    }
    w
}

fn steps(w: &World) -> Vec<Step> {
    w.plan().steps()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// (a) Applying a plan and planning again yields no changes — except
    /// for people the first plan held back with a conflict that the plan
    /// itself resolves (an account's email that an update frees), and their
    /// reports (a manager waiting for such a person): those follow on the
    /// next run, and the world settles.
    #[test]
    fn convergence(seed in any::<u64>(), n in 0usize..25, m in 0usize..25) {
        let mut w = world(seed, n, m);
        let conflicted: Vec<String> = w
            .plan()
            .steps()
            .into_iter()
            .filter(|s| s.kind == ActionKind::Conflict || s.reason == "manager_out_of_scope")
            .filter_map(|s| s.source_id)
            .collect();
        w.sync();
        let second = w.plan().steps();
        for step in second.iter().filter(|s| s.kind.changes_target()) {
            let people: Vec<&String> = match step.kind {
                ActionKind::AddMembers | ActionKind::RemoveMembers => step.members.iter().collect(),
                _ => step.source_id.iter().collect(),
            };
            for p in people {
                prop_assert!(
                    conflicted.contains(p) || step.kind == ActionKind::RemoveMembers,
                    "second plan changes {p}, which the first did not hold back: {step:?}\n{}",
                    w.plan()
                );
            }
        }
        for _ in 0..4 {
            if w.sync() == 0 {
                break;
            }
        }
        let plan = w.plan();
        prop_assert!(plan.is_noop(), "did not settle:\n{}", plan);
    }

    /// (b) Nothing is ever deleted; no unowned account or group is touched.
    #[test]
    fn never_deletes_nor_touches_what_it_does_not_own(
        seed in any::<u64>(), n in 0usize..25, m in 0usize..25,
    ) {
        let mut w = world(seed, n, m);
        let before = w.clone();
        {
            let plan = w.plan();
            let input = plan.input();
            let linked: Vec<&str> = input.links.iter().map(|l| l.target_id.as_str()).collect();
            let adopted: Vec<usize> = plan.actions().iter().filter_map(|a| match a {
                Action::Link { account, .. } => Some(*account),
                _ => None,
            }).collect();
            let owned_account = |a: usize| {
                linked.contains(&input.target.people[a].id.as_str()) || adopted.contains(&a)
            };
            let owned_group = |g: usize| {
                input.group_links.iter().any(|l| l.target_id == input.target.groups[g].id)
            };
            for action in plan.actions() {
                match action {
                    Action::Update { account, .. }
                    | Action::Reactivate { account, .. }
                    | Action::Deactivate { account, .. }
                    | Action::SetManager { account: Some(account), .. } => {
                        prop_assert!(owned_account(*account), "touches unowned: {action:?}");
                    }
                    Action::RenameGroup { target, .. }
                    | Action::RemoveMembers { group: target, .. }
                    | Action::AddMembers { group: GroupRef::Existing(target), .. } => {
                        prop_assert!(owned_group(*target), "touches unowned group: {action:?}");
                    }
                    _ => {}
                }
            }
        }
        w.sync();
        prop_assert!(w.target.len() >= before.target.len());
        for old in &before.target {
            let now = w.target.iter().find(|a| a.id == old.id);
            prop_assert!(now.is_some(), "account {} deleted", old.id);
            let linked = before.links.iter().any(|l| l.target_id == old.id)
                || w.links.iter().any(|l| l.target_id == old.id);
            if !linked {
                prop_assert_eq!(now, Some(old), "unowned account changed");
            }
        }
        for old in &before.teams {
            let now = w.teams.iter().find(|g| g.id == old.id);
            prop_assert!(now.is_some(), "group {} deleted", old.id);
            if !before.group_links.iter().any(|l| l.target_id == old.id) {
                prop_assert_eq!(now, Some(old), "unowned group changed");
            }
        }
    }

    /// (c) The same plan whatever order the connectors returned records in.
    #[test]
    fn determinism(seed in any::<u64>(), n in 0usize..25, m in 0usize..25, shuffle in any::<u64>()) {
        let w = world(seed, n, m);
        let mut shuffled = w.clone();
        let mut rng = Rng(shuffle | 1);
        fn shuffle_vec<T>(v: &mut [T], rng: &mut Rng) {
            for i in (1..v.len()).rev() {
                v.swap(i, rng.below(i as u64 + 1) as usize);
            }
        }
        shuffle_vec(&mut shuffled.source, &mut rng);
        shuffle_vec(&mut shuffled.target, &mut rng);
        shuffle_vec(&mut shuffled.links, &mut rng);
        shuffle_vec(&mut shuffled.departments, &mut rng);
        shuffle_vec(&mut shuffled.teams, &mut rng);
        shuffle_vec(&mut shuffled.group_links, &mut rng);
        prop_assert_eq!(steps(&w), steps(&shuffled));
    }

    /// Prepared record hashes change nothing but speed.
    #[test]
    fn prepared_inputs_plan_the_same(seed in any::<u64>(), n in 0usize..25, m in 0usize..25) {
        let w = world(seed, n, m);
        let (dp, ap) = (
            Prepared::new(&w.source, &w.policy),
            Prepared::new(&w.target, &w.policy).with_groups(&w.teams),
        );
        let links = PreparedLinks::new(&w.links);
        let mut input = w.input();
        input.source.prepared = Some(&dp);
        input.target.prepared = Some(&ap);
        input.prepared_links = Some(&links);
        let prepared = muster_core::plan(&input).expect("plan").steps();
        prop_assert_eq!(prepared, steps(&w));
    }

    /// (d) A changes-only source never yields a plan for a flow that can
    /// deactivate, hence no Deactivate.
    #[test]
    fn incomplete_source_never_deactivates(seed in any::<u64>(), n in 0usize..25, m in 0usize..25) {
        let mut w = world(seed, n, m);
        w.sync();
        // The read returns only some people.
        w.source.truncate(n / 2);
        w.source_coverage = Coverage::Changes;
        prop_assert_eq!(
            muster_core::plan(&w.input()).err(),
            Some(PlanError::IncompleteSource)
        );
        w.source_coverage = Coverage::Full;
        let plan = w.plan();
        // Complete again: any mass deactivation it implies is held or small.
        let deactivations = plan.counts().get(ActionKind::Deactivate);
        prop_assert!(deactivations <= 1 || plan.is_held() || plan.linked_accounts() >= 10 * deactivations as usize);
    }
}

proptest! {
    /// (e) For a flow that cannot deactivate, a changes-only read (and held
    /// records) leave the accounts of everybody absent or held untouched:
    /// only a `source_record_unusable` report may name them.
    #[test]
    fn absent_and_held_people_keep_their_accounts(seed in any::<u64>(), n in 0usize..25, m in 0usize..25, cut in 0usize..25) {
        let mut w = world(seed, n, m);
        w.policy.allowed.deactivate = false;
        w.sync();
        let mut rest = w.source.split_off(cut.min(w.source.len()));
        w.source_coverage = Coverage::Changes;
        // Half of the others were read but cannot be used.
        w.held = rest.drain(..rest.len() / 2).map(|p| p.id).collect();
        let untouched: std::collections::BTreeSet<String> = w
            .links
            .iter()
            .filter(|l| !w.source.iter().any(|p| p.id.trim() == l.source_id.trim()))
            .map(|l| l.target_id.clone())
            .collect();
        let plan = w.plan();
        prop_assert_eq!(plan.counts().get(ActionKind::Deactivate), 0);
        for s in plan.steps() {
            let named = s.target_id.iter().chain(&s.members).any(|t| untouched.contains(t));
            prop_assert!(
                !named || s.reason == "source_record_unusable",
                "{:?} touches an absent or held person's account", s
            );
        }
    }
}

#[test]
fn generator_makes_interesting_worlds() {
    // Guard against a generator that silently stops producing the cases the
    // properties are about.
    let mut kinds = std::collections::BTreeSet::new();
    for seed in 0..300 {
        let w = world(seed * 7919 + 1, 15, 15);
        for a in w.plan().actions() {
            kinds.insert(a.kind());
        }
    }
    for k in ActionKind::ALL {
        assert!(kinds.contains(&k), "no random world produced a {k}");
    }
}
