//! Calls in flight (docs/concurrency.md): the real `muster` binary syncing a
//! simulated Lucca tenant into a simulated Leapsome through the real
//! plugins, with several target calls in flight.
//!
//! - **overlap and order**: with latency on, `max_in_flight = 8` keeps
//!   several writes in flight at once (seen in the simulator's request log,
//!   never timed), no more than 8, and still sends every manager change
//!   and team membership after every create has been answered; the result
//!   is the one `max_in_flight = 1` gives, which sends one write at a time.
//! - **teams**: team calls (creates, renames, membership changes) are made
//!   by several instances at once too (seen in the simulator's log), and
//!   every instance catches up on the teams the others changed before a
//!   call that names one: teams end with exactly their departments' people
//!   after additions and removals made across instances, an account
//!   written by any instance carries its team's current name, and an
//!   initial sync is still one POST and one PATCH per account and per team.
//! - **429**: a simulator limit tighter than the connector declares, with 8
//!   calls in flight: Leapsome answers 429s, nothing fails, nothing is
//!   created twice.
//! - The kill test (`engine.rs`) runs with the default `max_in_flight`
//!   (8): killed mid-apply with calls in flight, the runs that follow leave
//!   no duplicate account and no lost link.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::world::{FLOW, Setup, World, assert_journal_resolved, json, text};
use muster_sandbox::{LeapsomeOptions, RateLimit, RequestRecord, Tenant};

const PEOPLE: usize = 80;
/// Latency of every Leapsome request: long enough that a call in flight
/// is still being answered when the next worker sends its own.
const LATENCY: Duration = Duration::from_millis(60);

fn world(max_in_flight: usize, leapsome: LeapsomeOptions) -> World {
    world_of(PEOPLE, max_in_flight, leapsome)
}

fn world_of(people: usize, max_in_flight: usize, leapsome: LeapsomeOptions) -> World {
    let extra = format!("max_in_flight = {max_in_flight}");
    World::with_setup(
        people,
        Setup {
            leapsome,
            leapsome_extra: &extra,
            options: "{ sync_groups = true, reactivate = true }",
            ..Setup::default()
        },
    )
}

fn with_latency() -> LeapsomeOptions {
    LeapsomeOptions {
        rate_limit: None,
        latency: LATENCY,
        ..LeapsomeOptions::default()
    }
}

/// Syncs once; the run must apply with no failure.
fn sync(world: &World) -> serde_json::Value {
    let out = world.muster(&["sync", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report = json(&out);
    assert_eq!(report["outcome"], "applied", "{}", text(&out));
    assert!(report["applied"]["failed"].is_null(), "{}", text(&out));
    assert!(report["aborted"].is_null(), "{}", text(&out));
    report
}

/// The writes Leapsome served, in the order they arrived.
fn writes(world: &World) -> Vec<RequestRecord> {
    let mut writes: Vec<RequestRecord> = world
        .leapsome
        .request_log()
        .records
        .into_iter()
        .filter(|r| r.method != "GET")
        .collect();
    writes.sort_by(|a, b| a.at.total_cmp(&b.at));
    writes
}

/// The most writes seen in flight at once. Each request is answered at
/// least [`LATENCY`] after it arrived, so a request that arrived less than
/// that after another was certainly sent while the other was in flight:
/// a lower bound of the real number, never above it.
fn most_in_flight(writes: &[RequestRecord]) -> usize {
    let latency = LATENCY.as_secs_f64();
    writes
        .iter()
        .enumerate()
        .map(|(i, w)| {
            writes[..=i]
                .iter()
                .filter(|earlier| w.at < earlier.at + latency)
                .count()
        })
        .max()
        .unwrap_or(0)
}

/// Who is who in Leapsome, by source id: active, manager's source id,
/// department; and each team's members' source ids.
type Directory = (
    BTreeMap<String, (bool, Option<String>, Option<String>)>,
    BTreeMap<String, Vec<String>>,
);

fn directory(world: &World) -> Directory {
    let users = world.leapsome.users();
    let source_of: BTreeMap<String, String> = users
        .iter()
        .filter_map(|u| Some((u.id.clone(), u.external_id.clone()?)))
        .collect();
    let mut people = BTreeMap::new();
    for u in &users {
        let Some(source) = &u.external_id else {
            continue;
        };
        let manager = u.manager.as_ref().and_then(|m| source_of.get(m).cloned());
        let previous = people.insert(source.clone(), (u.active, manager, u.department.clone()));
        assert!(previous.is_none(), "two accounts for source {source}");
    }
    let teams = world
        .leapsome
        .teams()
        .into_iter()
        .map(|t| {
            let mut members: Vec<String> = t
                .members
                .iter()
                .filter_map(|m| source_of.get(m).cloned())
                .collect();
            members.sort();
            (t.display_name, members)
        })
        .collect();
    (people, teams)
}

#[test]
fn calls_overlap_up_to_max_in_flight_and_what_names_an_account_follows_its_create() {
    let concurrent = world(8, with_latency());
    let sequential = world(1, with_latency());
    let report = sync(&concurrent);
    sync(&sequential);

    // The same directory either way, and a non-trivial one.
    let (people, teams) = directory(&concurrent);
    assert_eq!((people.clone(), teams.clone()), directory(&sequential));
    let created = report["planned"]["create"].as_u64().unwrap_or(0);
    assert!(
        created > PEOPLE as u64 / 2,
        "only {created} creates planned"
    );
    let managed = people.values().filter(|(_, m, _)| m.is_some()).count();
    assert!(managed > PEOPLE / 3, "only {managed} managers set");
    assert!(
        teams.values().filter(|m| !m.is_empty()).count() >= 2,
        "{teams:?}"
    );

    // Overlap: several writes at once with 8 in flight, never more; one at
    // a time with 1.
    let concurrent_writes = writes(&concurrent);
    let most = most_in_flight(&concurrent_writes);
    assert!(
        (4..=8).contains(&most),
        "{most} writes in flight at once with max_in_flight = 8"
    );
    assert_eq!(most_in_flight(&writes(&sequential)), 1);

    // Order: every create is answered before the first manager change or
    // membership is sent (they name the created accounts).
    let latency = LATENCY.as_secs_f64();
    let creates = |w: &&RequestRecord| w.method == "POST" && w.url.contains("/Users");
    let last_create = concurrent_writes
        .iter()
        .filter(creates)
        .map(|w| w.at)
        .fold(f64::MIN, f64::max);
    let naming: Vec<&RequestRecord> = concurrent_writes
        .iter()
        .filter(|w| w.method == "PATCH" && w.url.contains("/Groups"))
        .collect();
    assert!(!naming.is_empty(), "no membership was sent");
    for w in naming {
        assert!(
            w.at >= last_create + latency,
            "{} {} at {:.3} s, before the last create (at {last_create:.3} s) was answered",
            w.method,
            w.url,
            w.at
        );
    }
    assert_journal_resolved(&concurrent);
}

#[test]
fn a_429_slows_the_calls_in_flight_and_fails_nothing() {
    // Tighter than the 30/s the connector declares, so Leapsome answers
    // 429s even when the host paces the connector at its declared limit.
    let limited = LeapsomeOptions {
        rate_limit: Some(RateLimit {
            requests: 15,
            window_secs: 1.0,
        }),
        ..LeapsomeOptions::default()
    };
    let world = world(8, limited);
    sync(&world);
    let log = world.leapsome.request_log();
    assert!(
        log.count_status(429) > 0,
        "Leapsome never answered 429: the test did not exercise the back-off"
    );
    assert!(log.max_accepted_in_window(1.0) <= 15);

    // Nothing failed (checked by `sync`) and nothing was created twice: the
    // accounts are exactly the links, one each.
    let (people, _) = directory(&world);
    let links = world.store().links(FLOW).expect("links");
    assert_eq!(people.len(), links.len(), "accounts and links differ");
    let creates_answered = log
        .records
        .iter()
        .filter(|r| r.method == "POST" && r.url.contains("/Users") && r.status == 201)
        .count();
    assert_eq!(
        creates_answered,
        people.len(),
        "an account was created twice"
    );
    assert_journal_resolved(&world);

    // And the next run has nothing left to do.
    let again = world.muster(&["sync", "--json"]);
    assert_eq!(json(&again)["outcome"], "no_changes", "{}", text(&again));
}

/// People of the teams test, and the departments they are spread over (one
/// or two each, round robin): enough teams that a run's membership changes
/// (an add and a removal per team) make more than one wave.
const TEAM_PEOPLE: usize = 150;
const DEPARTMENTS: usize = 100;

/// Adds departments to the generated tenant (children of its first) until
/// it has [`DEPARTMENTS`], and spreads the people over them, round robin.
fn spread_over_departments(t: &mut Tenant) {
    let root = t.departments[0].clone();
    let mut next_id = t.departments.iter().map(|d| d.id).max().unwrap_or(0) + 1;
    while t.departments.len() < DEPARTMENTS {
        t.departments.push(muster_sandbox::Department {
            id: next_id,
            name: format!("Team {next_id:03}"),
            code: format!("T{next_id:03}"),
            parent_id: Some(root.id),
            ..root.clone()
        });
        next_id += 1;
    }
    let ids: Vec<u64> = t.departments.iter().map(|d| d.id).collect();
    for (i, user) in t.users.iter_mut().enumerate() {
        user.department_id = Some(ids[i % ids.len()]);
    }
}

fn teams_world(max_in_flight: usize) -> World {
    let world = world_of(TEAM_PEOPLE, max_in_flight, with_latency());
    world.lucca.with_tenant(spread_over_departments);
    world
}

/// Leapsome's team writes (creates, renames, membership changes), in the
/// order they arrived.
fn team_writes(world: &World) -> Vec<RequestRecord> {
    writes(world)
        .into_iter()
        .filter(|w| w.url.contains("/Groups"))
        .collect()
}

/// The source ids of the Lucca people who have an active Leapsome account
/// (a team's members), by their Lucca department's id.
fn account_holders(world: &World) -> BTreeMap<u64, Vec<String>> {
    let (people, _) = directory(world);
    let mut out: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    for user in world.lucca.tenant().users {
        let id = user.id.to_string();
        let active = people.get(&id).is_some_and(|(active, _, _)| *active);
        if let (Some(d), true) = (user.department_id, active) {
            out.entry(d).or_default().push(id);
        }
    }
    out
}

/// Checks Leapsome against Lucca: every team holds exactly the account
/// holders of its department (by the department's current name), and each
/// account of `written` (source ids) carries its department's current name.
fn assert_teams_match_lucca(world: &World, written: &BTreeSet<String>) {
    let tenant = world.lucca.tenant();
    let name_of: BTreeMap<u64, String> = tenant
        .departments
        .iter()
        .map(|d| (d.id, d.name.clone()))
        .collect();
    let (people, teams) = directory(world);
    let mut expected: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (department, mut holders) in account_holders(world) {
        holders.sort();
        expected.insert(name_of[&department].clone(), holders);
    }
    let teams: BTreeMap<String, Vec<String>> =
        teams.into_iter().filter(|(_, m)| !m.is_empty()).collect();
    assert_eq!(
        teams, expected,
        "Leapsome's teams are not Lucca's departments"
    );
    for user in &tenant.users {
        let id = user.id.to_string();
        if !written.contains(&id) {
            continue;
        }
        let department = user.department_id.map(|d| name_of[&d].clone());
        let (_, _, written_department) = &people[&id];
        assert_eq!(
            written_department, &department,
            "source {id}: the account's department is not its team's current name"
        );
    }
}

/// Writes by method and collection (`POST /Users`, `PATCH /Groups`, …).
fn writes_by_kind(world: &World) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for w in writes(world) {
        let collection = if w.url.contains("/Groups") {
            "/Groups"
        } else {
            "/Users"
        };
        *out.entry(format!("{} {collection}", w.method)).or_default() += 1;
    }
    out
}

/// What the second run changes: who moved, and who was hired.
struct Reorganised {
    moved: BTreeSet<String>,
    hired: BTreeSet<String>,
}

/// The second run's changes, the same in any world built alike: in each
/// department with an account holder, the first one moves to the next such
/// department (a cycle: every team gains one member and loses one); a
/// second one of the first department with two moves to a new department;
/// every fifth department of the cycle is renamed and hires one person, as
/// does the new department.
fn reorganise(world: &World) -> Reorganised {
    let holders = account_holders(world);
    let cycle: Vec<u64> = holders.keys().copied().collect();
    let mut moves: Vec<(String, u64)> = Vec::new();
    for (i, department) in cycle.iter().enumerate() {
        let next = cycle[(i + 1) % cycle.len()];
        moves.push((holders[department][0].clone(), next));
    }
    let second = holders
        .values()
        .find(|h| h.len() > 1)
        .map(|h| h[1].clone())
        .expect("a department with two account holders");
    let renamed: Vec<u64> = cycle.iter().copied().step_by(5).collect();
    assert!(
        renamed.len() >= 8,
        "too few renames to spread over instances"
    );
    // Every team's add and removal: more than one wave (128 at 8 in flight).
    assert!(2 * cycle.len() + 1 > 128, "{} teams change", cycle.len());
    let template = holders[&cycle[0]][0].clone();
    world.lucca.with_tenant(|t| {
        let new = t.departments.iter().map(|d| d.id).max().unwrap_or(0) + 1;
        let department = t.departments[1].clone();
        t.departments.push(muster_sandbox::Department {
            id: new,
            name: "New team".into(),
            code: "NEW".into(),
            ..department
        });
        moves.push((second, new));
        for d in t.departments.iter_mut().filter(|d| renamed.contains(&d.id)) {
            d.name = format!("{} (renamed)", d.name);
        }
        for (person, department) in &moves {
            if let Some(user) = t.users.iter_mut().find(|u| &u.id.to_string() == person) {
                user.department_id = Some(*department);
            }
        }
        let hired = hire(t, &template, renamed.iter().copied().chain([new]));
        Reorganised {
            moved: moves.into_iter().map(|(person, _)| person).collect(),
            hired,
        }
    })
}

/// Hires one person into each of `departments`, like the person `template`
/// (a source id) but with their own id, name, email and employee number.
fn hire(
    t: &mut Tenant,
    template: &str,
    departments: impl Iterator<Item = u64>,
) -> BTreeSet<String> {
    let like = t
        .users
        .iter()
        .find(|u| u.id.to_string() == template)
        .cloned()
        .expect("template");
    let mut hired = BTreeSet::new();
    for department in departments {
        let id = t.next_user_id;
        t.next_user_id += 1;
        t.users.push(muster_sandbox::User {
            id,
            first_name: "Hire".into(),
            last_name: format!("Number{id}"),
            login: format!("hire{id}"),
            mail: Some(format!("hire.{id}@sandbox.example")),
            personal_email: None,
            employee_number: Some(format!("H{id}")),
            department_id: Some(department),
            ..like.clone()
        });
        hired.insert(id.to_string());
    }
    hired
}

#[test]
fn team_calls_overlap_and_every_instance_sees_the_teams_the_others_changed() {
    let concurrent = teams_world(8);
    let sequential = teams_world(1);

    // Initial sync: teams created and filled by several instances at once.
    sync(&concurrent);
    sync(&sequential);
    assert_eq!(directory(&concurrent), directory(&sequential));
    let (people, teams) = directory(&concurrent);
    let created: BTreeSet<String> = people.keys().cloned().collect();
    assert_teams_match_lucca(&concurrent, &created);
    assert!(teams.len() > 90, "only {} teams", teams.len());
    let group_writes = team_writes(&concurrent);
    let most = most_in_flight(&group_writes);
    assert!(
        (2..=8).contains(&most),
        "{most} team writes in flight at once with max_in_flight = 8"
    );
    assert_eq!(most_in_flight(&team_writes(&sequential)), 1);
    // Exactly one POST and one PATCH per account and per team.
    let filled = teams.values().filter(|m| !m.is_empty()).count();
    let expected: BTreeMap<String, usize> = [
        ("PATCH /Groups".to_string(), filled),
        ("PATCH /Users".to_string(), people.len()),
        ("POST /Groups".to_string(), teams.len()),
        ("POST /Users".to_string(), people.len()),
    ]
    .into();
    assert_eq!(writes_by_kind(&concurrent), expected);
    assert_eq!(writes_by_kind(&sequential), expected);

    // Second run: every team gains a member and loses one, a fifth are
    // renamed and hire, a new team is made. A team's calls of one run may
    // be made by different instances (its add and its removal fall in two
    // waves for the team at the waves' boundary), and a team renamed by one
    // instance is named by accounts that others create.
    concurrent.leapsome.clear_request_log();
    let changes = reorganise(&concurrent);
    let same = reorganise(&sequential);
    assert_eq!((&changes.moved, &changes.hired), (&same.moved, &same.hired));
    sync(&concurrent);
    sync(&sequential);
    // The new hires' accounts, created by any instance, carry their teams'
    // new names (the department of a moved account is its team, and stays
    // as written: the plan moves the member, it does not update the
    // account).
    assert_teams_match_lucca(&concurrent, &changes.hired);
    assert_eq!(directory(&concurrent), directory(&sequential));
    let most = most_in_flight(&team_writes(&concurrent));
    assert!((2..=8).contains(&most), "{most} team writes at once");
    // Some instance read the teams again: more team reads than the run's
    // own read and one per sibling (at most 7) make.
    let team_reads = concurrent
        .leapsome
        .request_log()
        .records
        .iter()
        .filter(|r| r.method == "GET" && r.url.contains("/Groups"))
        .count();
    assert!(
        team_reads > 8,
        "{team_reads} team reads: no instance caught up"
    );
    assert_journal_resolved(&concurrent);
    let again = concurrent.muster(&["sync", "--json"]);
    assert_eq!(json(&again)["outcome"], "no_changes", "{}", text(&again));
}
