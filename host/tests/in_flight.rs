//! Calls in flight (docs/concurrency.md): the real `muster` binary syncing a
//! simulated Lucca tenant into a simulated Leapsome through the real
//! plugins, with several target calls in flight.
//!
//! - **overlap and order**: with latency on, `max_in_flight = 8` keeps
//!   several writes in flight at once (seen in the simulator's request log,
//!   never timed), no more than 8, and still sends every manager change
//!   and team membership after every create has been answered; the result
//!   is the one `max_in_flight = 1` gives, which sends one write at a time.
//! - **429**: a simulator limit tighter than the connector declares, with 8
//!   calls in flight: Leapsome answers 429s, nothing fails, nothing is
//!   created twice.
//! - The kill test (`engine.rs`) runs with the default `max_in_flight`
//!   (8): killed mid-apply with calls in flight, the runs that follow leave
//!   no duplicate account and no lost link.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::world::{FLOW, Setup, World, assert_journal_resolved, json, text};
use muster_sandbox::{LeapsomeOptions, RateLimit, RequestRecord};

const PEOPLE: usize = 80;
/// Latency of every Leapsome request: long enough that a call in flight
/// is still being answered when the next worker sends its own.
const LATENCY: Duration = Duration::from_millis(60);

fn world(max_in_flight: usize, leapsome: LeapsomeOptions) -> World {
    let extra = format!("max_in_flight = {max_in_flight}");
    World::with_setup(
        PEOPLE,
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
