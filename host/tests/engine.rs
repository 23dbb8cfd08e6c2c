//! The engine end to end: the real `muster` binary syncing a simulated Lucca
//! tenant into a simulated Leapsome organisation over loopback HTTP, through
//! the real Lucca and Leapsome `.wasm` plugins, with a real SQLite store.
//!
//! - **kill**: a sync is SIGKILLed at ≥ 50 seeded points during apply, with
//!   calls in flight (the default `max_in_flight`, 8); the
//!   runs that follow (each waiting for the dead one's lease to lapse)
//!   finish the job, and the result equals an uninterrupted
//!   sync: no duplicate account, no lost link, every journal entry resolved.
//! - **guard**: a source that suddenly returns nobody, or 10 % of the
//!   people, is held (exit code 3, nothing deactivated) until approved.
//! - **isolation**: a target refusing 1 create in 100 gets the other 99 %;
//!   the failures are listed, and the next run retries exactly those.

mod common;

use std::collections::BTreeSet;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::world::{
    FLOW, Setup, World, assert_journal_resolved, http, json, kill_after_writes, text,
};
use muster_sandbox::{LeapsomeOptions, RejectRule};

fn planned(report: &serde_json::Value, kind: &str) -> u64 {
    report["planned"][kind].as_u64().unwrap_or(0)
}

/// SplitMix64: a small seeded generator, so the kill points are reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[test]
fn killed_syncs_converge_to_the_uninterrupted_result() {
    const PEOPLE: usize = 2_000;
    const KILLS: usize = 50;

    // The reference: one uninterrupted sync.
    let reference = World::new(PEOPLE, LeapsomeOptions::default());
    let out = reference.muster(&["sync"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let expected = reference.accounts();
    assert!(
        expected.len() > PEOPLE / 2,
        "only {} accounts",
        expected.len()
    );
    let expected_links = reference.store().links(FLOW).expect("links").len();

    // The same sync, killed again and again during apply, with calls in
    // flight (docs/concurrency.md).
    let world = World::with_setup(
        PEOPLE,
        Setup {
            leapsome_extra: "max_in_flight = 8",
            ..Setup::default()
        },
    );
    let mut rng = Rng(0x5eed_2026);
    let mut kills = 0;
    let mut finished = false;
    while !finished {
        // A killed sync's lease lapses after its time-to-live: the next one
        // waits for that (docs/concurrency.md), so keep it short.
        let mut child = world
            .command(&["sync", "--wait", "600"])
            .env("MUSTER_LEASE_TTL", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn muster sync");
        if kills < KILLS {
            let writes = 1 + rng.below(30) as usize;
            if kill_after_writes(&world, &mut child, writes) {
                kills += 1;
                continue;
            }
        }
        let out = child.wait_with_output().expect("wait");
        assert_eq!(
            out.status.code(),
            Some(0),
            "the sync after {kills} kills failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        finished = kills >= KILLS;
    }
    assert!(kills >= KILLS);

    // Nothing is left to do, and the target is what the uninterrupted run made.
    let again = world.muster(&["sync", "--json"]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    let report = json(&again);
    assert_eq!(report["outcome"], "no_changes", "{}", text(&again));
    assert_eq!(world.accounts(), expected);
    let links = world.store().links(FLOW).expect("links");
    assert_eq!(links.len(), expected_links, "links lost or duplicated");
    let targets: BTreeSet<&str> = links.iter().map(|l| l.target_id.as_str()).collect();
    assert_eq!(
        targets.len(),
        links.len(),
        "two people linked to one account"
    );
    let ids: BTreeSet<String> = world.leapsome.users().into_iter().map(|u| u.id).collect();
    assert!(
        links.iter().all(|l| ids.contains(&l.target_id)),
        "a link names no account"
    );
    assert_journal_resolved(&world);
}

fn deactivated(world: &World) -> usize {
    world.leapsome.users().iter().filter(|u| !u.active).count()
}

fn assert_guard_holds_then_approval_applies(keep: fn(usize) -> usize) {
    let world = World::new(300, LeapsomeOptions::default());
    let first = world.muster(&["sync"]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let before = deactivated(&world);
    let active = world.leapsome.users().len() - before;

    world.lucca.with_tenant(|t| {
        let n = keep(t.users.len());
        t.users.truncate(n);
    });
    let held = world.muster(&["sync", "--json"]);
    assert_eq!(held.status.code(), Some(3), "{}", text(&held));
    let report = json(&held);
    assert_eq!(report["outcome"], "held");
    assert!(planned(&report, "deactivate") > 25, "{report}");
    assert!(!report["breaches"].as_array().unwrap().is_empty());
    assert_eq!(
        deactivated(&world),
        before,
        "a held plan deactivated someone"
    );
    assert!(world.store().held_plan(FLOW).expect("held").is_some());

    // Held again without approval; approval applies exactly that plan.
    let still = world.muster(&["sync"]);
    assert_eq!(still.status.code(), Some(3), "{}", text(&still));
    assert_eq!(deactivated(&world), before);
    let approved = world.muster(&["sync", "--approve-held", "--json"]);
    assert_eq!(approved.status.code(), Some(0), "{}", text(&approved));
    let report = json(&approved);
    assert_eq!(report["outcome"], "applied");
    let n = report["applied"]["deactivate"].as_u64().unwrap_or(0) as usize;
    assert!(n > 25 && n <= active, "{n} deactivated of {active}");
    assert_eq!(deactivated(&world), before + n);
    assert!(world.store().held_plan(FLOW).expect("held").is_none());
}

#[test]
fn a_source_that_returns_nobody_is_held_until_approved() {
    assert_guard_holds_then_approval_applies(|_| 0);
}

#[test]
fn a_source_that_returns_a_tenth_is_held_until_approved() {
    assert_guard_holds_then_approval_applies(|n| n / 10);
}

#[test]
fn one_failing_record_in_a_hundred_does_not_stop_the_others() {
    let world = World::new(
        1_000,
        LeapsomeOptions {
            rejects: vec![RejectRule::every_nth_create(100)],
            ..LeapsomeOptions::default()
        },
    );
    let first = world.muster(&["sync", "--json"]);
    assert_eq!(first.status.code(), Some(1), "{}", text(&first));
    let report = json(&first);
    let creates = planned(&report, "create");
    let failures = report["failures"].as_array().expect("failures");
    let failed: BTreeSet<String> = failures
        .iter()
        .filter(|f| f["skipped"] == false)
        .map(|f| {
            f["step"]["source_id"]
                .as_str()
                .expect("source id")
                .to_owned()
        })
        .collect();
    assert_eq!(failed.len() as u64, creates / 100, "{failures:?}");
    assert!(
        failures
            .iter()
            .all(|f| !f["error"].as_str().unwrap().is_empty())
    );
    assert_eq!(
        report["applied"]["create"].as_u64(),
        Some(creates - failed.len() as u64)
    );
    assert_eq!(
        world.leapsome.users().len() as u64,
        creates - failed.len() as u64
    );

    // The next run retries exactly the failed records (the simulator's
    // 100th-create rule does not fire again within them).
    let second = world.muster(&["sync", "--json"]);
    assert_eq!(second.status.code(), Some(0), "{}", text(&second));
    let report = json(&second);
    let retried: BTreeSet<String> = report["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter(|s| s["kind"] != "skip" && s["kind"] != "conflict")
        .filter(|s| s["kind"] != "set_manager")
        .map(|s| s["source_id"].as_str().expect("source id").to_owned())
        .collect();
    assert_eq!(
        retried,
        failed,
        "planned: {}\nfirst update: {:?}",
        report["planned"],
        report["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["kind"] == "update")
    );
    assert_journal_resolved(&world);
}

#[test]
fn a_plan_file_applies_exactly_once_and_refuses_stale_data() {
    let world = World::new(50, LeapsomeOptions::default());
    let plan_path = world.dir.path().join("plan.json");
    let plan_arg = plan_path.to_str().expect("utf-8 path");
    let out = world.muster(&["plan", "--out", plan_arg]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(world.leapsome.users().is_empty(), "plan changed the target");

    let applied = world.muster(&["apply", plan_arg]);
    assert_eq!(applied.status.code(), Some(0), "{}", text(&applied));
    let created = world.leapsome.users().len();
    assert!(created > 0);

    // The data moved on (the plan's own changes, here): the same file is stale.
    let stale = world.muster(&["apply", plan_arg]);
    assert_eq!(stale.status.code(), Some(1), "{}", text(&stale));
    assert!(
        String::from_utf8_lossy(&stale.stderr).contains("stale"),
        "{}",
        text(&stale)
    );
    assert_eq!(world.leapsome.users().len(), created);
}

#[test]
fn logs_say_more_with_verbose_and_never_carry_a_secret() {
    let world = World::new(20, LeapsomeOptions::default());
    let quiet = world.muster(&["plan"]);
    assert_eq!(quiet.status.code(), Some(0), "{}", text(&quiet));
    let quiet_err = String::from_utf8_lossy(&quiet.stderr).into_owned();
    assert!(!quiet_err.contains("read the source"), "{quiet_err}");

    let verbose = world.muster(&["-vv", "sync"]);
    assert_eq!(verbose.status.code(), Some(0), "{}", text(&verbose));
    let err = String::from_utf8_lossy(&verbose.stderr).into_owned();
    assert!(err.contains("read the source"), "{err}");
    assert!(err.contains("run finished"), "{err}");
    assert!(err.contains("applied"), "{err}");
    for secret in [world.lucca.api_key(), world.leapsome.token()] {
        assert!(!err.contains(secret), "a secret reached the logs");
        assert!(!String::from_utf8_lossy(&verbose.stdout).contains(secret));
    }
}

/// Replaces the flow's extra keys in the config (a config change between runs).
fn set_flow_extra(world: &World, extra: &str) {
    let path = world.config();
    let text = std::fs::read_to_string(&path).expect("config");
    std::fs::write(&path, format!("{text}{extra}\n")).expect("config");
}

#[test]
fn records_that_cannot_be_mapped_are_reported_and_their_accounts_left_alone() {
    let world = World::new(60, LeapsomeOptions::default());
    let first = world.muster(&["sync"]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let active_before = world.leapsome.users().iter().filter(|u| u.active).count();

    // A value map nobody's job title is in, and no fallback: every person
    // with a job title fails to map.
    set_flow_extra(
        &world,
        r#"mapping = [ { value_map = { from = "job_title", to = "job_title", values = { "No such title" = "x" } } } ]"#,
    );
    let out = world.muster(&["sync", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report = json(&out);
    let problems = report["problems"].as_array().expect("problems");
    let unmapped: Vec<&serde_json::Value> = problems
        .iter()
        .filter(|p| p["field"] == "job_title")
        .collect();
    assert!(unmapped.len() > 10, "{problems:?}");
    for p in &unmapped {
        assert_eq!(p["side"], "source");
        assert!(!p["record"].as_str().unwrap().is_empty());
        assert!(
            p["message"].as_str().unwrap().contains("No such title")
                || p["message"].as_str().unwrap().contains("no mapping"),
            "{p}"
        );
    }
    // Left out of the run, but not mistaken for leavers: nobody is
    // deactivated and nobody's account is rewritten.
    assert_eq!(planned(&report, "deactivate"), 0, "{report}");
    assert_eq!(planned(&report, "update"), 0, "{report}");
    // The plan says why each of their accounts is left alone, by source
    // and target id: one report per unmappable record that has an account.
    let held: BTreeSet<&str> = report["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter(|s| s["reason"] == "source_record_unusable")
        .map(|s| {
            assert_eq!(s["kind"], "skip", "{s}");
            assert!(s["target_id"].is_string(), "{s}");
            s["source_id"].as_str().expect("source id")
        })
        .collect();
    let links = world.store().links(FLOW).expect("links");
    let records: BTreeSet<&str> = unmapped
        .iter()
        .map(|p| p["record"].as_str().expect("record"))
        .filter(|r| links.iter().any(|l| l.source_id == *r))
        .collect();
    assert!(records.len() > 10, "{records:?}");
    assert_eq!(held, records);
    let active_after = world.leapsome.users().iter().filter(|u| u.active).count();
    assert_eq!(active_after, active_before);
}

#[test]
fn a_single_record_run_touches_only_that_record() {
    let world = World::new(40, LeapsomeOptions::default());
    let plan = world.muster(&["plan", "--json"]);
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan));
    let plan = json(&plan);
    let creates: Vec<&str> = plan["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter(|s| s["kind"] == "create")
        .map(|s| s["source_id"].as_str().expect("id"))
        .collect();
    assert!(creates.len() > 5);
    let one = creates[creates.len() / 2];

    let out = world.muster(&["sync", "--only", one, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report = json(&out);
    assert_eq!(report["applied"]["create"], 1, "{report}");
    let users = world.leapsome.users();
    assert_eq!(users.len(), 1);
    assert_eq!(users[0].external_id.as_deref(), Some(one));
    let history = json(&world.muster(&["history", "--json"]));
    assert_eq!(history["runs"][0]["trigger"], "single");

    let unknown = world.muster(&["sync", "--only", "no-such-id"]);
    assert_eq!(unknown.status.code(), Some(1), "{}", text(&unknown));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no-such-id"));
}

#[test]
fn a_held_plan_file_applies_only_with_approval() {
    let world = World::new(200, LeapsomeOptions::default());
    assert_eq!(world.muster(&["sync"]).status.code(), Some(0));
    world.lucca.with_tenant(|t| t.users.clear());
    let plan_path = world.dir.path().join("held.json");
    let plan_arg = plan_path.to_str().expect("utf-8 path");
    let planned_out = world.muster(&["plan", "--out", plan_arg]);
    assert_eq!(planned_out.status.code(), Some(0), "{}", text(&planned_out));
    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&plan_path).expect("plan")).expect("json");
    assert_eq!(file["held"], true);

    let before = deactivated(&world);
    let refused = world.muster(&["apply", plan_arg]);
    assert_eq!(refused.status.code(), Some(3), "{}", text(&refused));
    assert_eq!(deactivated(&world), before);

    assert!(world.store().held_plan(FLOW).expect("held").is_some());
    let approved = world.muster(&["apply", plan_arg, "--approve-held"]);
    assert_eq!(approved.status.code(), Some(0), "{}", text(&approved));
    assert!(deactivated(&world) > before);
    // The plan held by the refused attempt is retired, not left pending.
    assert!(world.store().held_plan(FLOW).expect("held").is_none());
}

#[test]
fn serve_runs_a_single_record_sync_from_a_webhook() {
    let world = World::with_flow(
        30,
        LeapsomeOptions::default(),
        r#"webhook = { secret = { file = "hook.secret" }, id_field = "candidate.id" }"#,
    );
    std::fs::write(world.dir.path().join("hook.secret"), "s3cret-hook\n").expect("secret");
    let plan = json(&world.muster(&["plan", "--json"]));
    let hired = plan["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .find(|s| s["kind"] == "create")
        .and_then(|s| s["source_id"].as_str())
        .expect("someone to create")
        .to_owned();

    let serving = world.serve();
    let addr = serving.addr.clone();

    let (status, body) = http(&addr, "GET", "/healthz", &[], "");
    assert_eq!(status, 200, "{body}");

    let event = format!(r#"{{"candidate": {{"id": "{hired}"}}}}"#);
    let (status, _) = http(
        &addr,
        "POST",
        "/webhooks/people",
        &[("X-Muster-Secret", "wrong")],
        &event,
    );
    assert_eq!(status, 401);
    let (status, body) = http(
        &addr,
        "POST",
        "/webhooks/people",
        &[
            ("X-Muster-Secret", "s3cret-hook"),
            ("Content-Type", "application/json"),
        ],
        &event,
    );
    assert_eq!(status, 202, "{body}");

    // The single-record run creates exactly that person's account.
    let deadline = Instant::now() + Duration::from_secs(60);
    while world.leapsome.users().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the webhook's run never created the account"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(200));
    let users = world.leapsome.users();
    assert_eq!(users.len(), 1);
    assert_eq!(users[0].external_id.as_deref(), Some(hired.as_str()));
    let (status, page) = http(&addr, "GET", "/", &[], "");
    assert_eq!(status, 200);
    assert!(page.contains("people"), "{page}");
    drop(serving);
}

/// Leapsome keeps only core attributes on POST, so a create is a POST then a PATCH. A sync
/// SIGKILLed between the two leaves an account with core attributes only; the next sync's
/// recovery finds it by `userName`, links it, and the plan completes it with one update —
/// one account, linked, with its enterprise attributes stored.
#[test]
fn a_sync_killed_between_a_create_post_and_its_patch_is_completed_without_a_second_account() {
    let world = World::with_setup(
        30,
        Setup {
            leapsome: LeapsomeOptions {
                // The first user PATCH (the first create's completion) hangs, then is dropped.
                stalled_user_patches: vec![1],
                stall: Duration::from_secs(15),
                rate_limit: None,
                ..LeapsomeOptions::default()
            },
            // One call at a time, so the kill finds exactly one POST made;
            // with calls in flight the kill test above covers this case.
            leapsome_extra: "max_in_flight = 1",
            ..Setup::default()
        },
    );
    // A short lease: the killed sync's lapses quickly (docs/concurrency.md).
    let mut child = world
        .command(&["sync"])
        .env("MUSTER_LEASE_TTL", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn muster sync");
    let deadline = Instant::now() + Duration::from_secs(120);
    while world.leapsome.stalled() == 0 {
        assert!(
            child.try_wait().expect("wait").is_none(),
            "the sync ended before its first create's PATCH"
        );
        assert!(Instant::now() < deadline, "no PATCH reached Leapsome");
        std::thread::sleep(Duration::from_millis(2));
    }
    // SIGKILL while the PATCH hangs: the POST is applied, the PATCH is not.
    child.kill().expect("kill");
    let _ = child.wait();
    let cut = world.leapsome.users();
    assert_eq!(cut.len(), 1, "killed after exactly one POST");
    let cut = cut[0].clone();
    let source = cut.external_id.clone().expect("externalId = source id");
    assert_eq!(
        (cut.employee_number.as_ref(), cut.start_date.as_ref()),
        (None, None),
        "only core attributes before the kill"
    );

    let next = world
        .command(&["sync", "--wait", "60"])
        .env("MUSTER_LEASE_TTL", "1")
        .output()
        .expect("run muster sync");
    assert_eq!(next.status.code(), Some(0), "{}", text(&next));
    let same: Vec<_> = world
        .leapsome
        .users()
        .into_iter()
        .filter(|u| u.user_name.eq_ignore_ascii_case(&cut.user_name))
        .collect();
    assert_eq!(same.len(), 1, "a second account for {}", cut.user_name);
    let account = &same[0];
    assert_eq!(account.id, cut.id);
    let links = world.store().links(FLOW).expect("links");
    assert!(
        links
            .iter()
            .any(|l| l.source_id == source && l.target_id == cut.id),
        "the account is linked to {source}"
    );
    // The enterprise attributes are stored now, as the source has them.
    let tenant = world.lucca.tenant();
    let person = tenant
        .users
        .iter()
        .find(|u| u.id.to_string() == source)
        .expect("the source person");
    assert_eq!(account.employee_number, person.employee_number);
    assert_eq!(
        account.start_date.as_deref(),
        person.dt_contract_start.as_deref().map(|d| &d[..10])
    );
    assert!(account.employee_number.is_some() && account.start_date.is_some());
    assert_journal_resolved(&world);

    let again = world.muster(&["sync", "--json"]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    assert_eq!(json(&again)["outcome"], "no_changes", "{}", text(&again));
}

/// One date policy, end to end: a Lucca person whose birth date is no day
/// of the calendar, and one whose gender is no Lucca value, are named with
/// their field in `plan`, in the run report and in `history` (text and
/// JSON); both are held — their accounts neither updated nor deactivated —
/// while everybody else's change goes through.
#[test]
fn a_record_with_a_bad_value_is_held_and_named_while_the_others_go_on() {
    let world = World::new(30, LeapsomeOptions::default());
    let first = world.muster(&["sync"]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let synced: Vec<String> = world
        .leapsome
        .users()
        .iter()
        .filter(|u| u.active)
        .filter_map(|u| u.external_id.clone())
        .take(3)
        .collect();
    let [bad_date, bad_gender, fine] = synced.as_slice() else {
        panic!("three synced people expected: {synced:?}");
    };
    world.lucca.with_tenant(|t| {
        for id in &synced {
            let user = t.user_mut(id.parse().expect("a Lucca id")).expect("user");
            user.job_title = Some("Chief Tester".into());
        }
        let user = |id: &String| id.parse().expect("a Lucca id");
        t.user_mut(user(bad_date)).expect("user").birth_date = Some("2025-02-30T00:00:00".into());
        t.user_mut(user(bad_gender)).expect("user").gender = "Robot".into();
    });
    let named = |problems: &serde_json::Value, record: &str, field: &str| {
        problems
            .as_array()
            .expect("problems")
            .iter()
            .any(|p| p["record"] == record && p["field"] == field && p["plugin"] == "lucca")
    };

    let plan = world.muster(&["plan"]);
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan));
    let plan_text = String::from_utf8_lossy(&plan.stdout);
    for (record, field) in [(bad_date, "birth_date"), (bad_gender, "gender")] {
        assert!(
            plan_text.contains(&format!(
                "source record {record} (plugin `lucca`): field `{field}`"
            )),
            "{record} {field} not named in the plan:\n{plan_text}"
        );
    }

    let out = world.muster(&["sync", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report = json(&out);
    assert!(
        named(&report["problems"], bad_date, "birth_date"),
        "{report}"
    );
    assert!(named(&report["problems"], bad_gender, "gender"), "{report}");
    assert_eq!(planned(&report, "deactivate"), 0, "{report}");
    let held: Vec<&str> = report["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter(|s| s["reason"] == "source_record_unusable")
        .filter_map(|s| s["source_id"].as_str())
        .collect();
    assert!(
        held.contains(&bad_date.as_str()) && held.contains(&bad_gender.as_str()),
        "{held:?}"
    );
    let account = |id: &String| {
        world
            .leapsome
            .users()
            .into_iter()
            .find(|u| u.external_id.as_ref() == Some(id))
            .expect("account")
    };
    for id in [bad_date, bad_gender] {
        let held = account(id);
        assert!(held.active, "{id} was deactivated");
        assert_ne!(
            held.title.as_deref(),
            Some("Chief Tester"),
            "{id} was updated"
        );
    }
    assert_eq!(account(fine).title.as_deref(), Some("Chief Tester"));

    let history = world.muster(&["history"]);
    let history_text = String::from_utf8_lossy(&history.stdout);
    assert!(
        history_text.contains(&format!(
            "problem: source record {bad_date} (plugin `lucca`): field `birth_date`"
        )),
        "{history_text}"
    );
    let runs = json(&world.muster(&["history", "--json"]));
    let last = &runs["runs"][0];
    assert!(named(&last["problems"], bad_date, "birth_date"), "{last}");
    assert!(named(&last["problems"], bad_gender, "gender"), "{last}");
    assert_eq!(runs["runs"][1]["problems"], serde_json::json!([]));
}

/// The target side of the date policy: a Leapsome account whose birthday is
/// no day of the calendar is named (plugin `leapsome`, the account, the
/// field) in the run report and `history`, kept — not created again, not
/// deactivated — and never updated from the value it could not read: its
/// person is held, while another person's change goes through.
#[test]
fn a_target_account_with_a_bad_value_is_left_alone_and_named() {
    let world = World::new(20, LeapsomeOptions::default());
    let first = world.muster(&["sync"]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let accounts = world.leapsome.users();
    let synced: Vec<(String, String)> = accounts
        .iter()
        .filter(|u| u.active)
        .filter_map(|u| Some((u.external_id.clone()?, u.id.clone())))
        .take(2)
        .collect();
    let [(odd_person, odd_account), (fine_person, _)] = synced.as_slice() else {
        panic!("two synced people expected: {synced:?}");
    };
    world.leapsome.with_state(|d| {
        d.user_mut(odd_account).expect("account").birthday = Some("1990-02-30".into());
    });
    world.lucca.with_tenant(|t| {
        for id in [odd_person, fine_person] {
            let user = t.user_mut(id.parse().expect("a Lucca id")).expect("user");
            user.job_title = Some("Chief Tester".into());
        }
    });
    let accounts_before = world.leapsome.users().len();

    let out = world.muster(&["sync", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report = json(&out);
    let problems = report["problems"].as_array().expect("problems");
    assert!(
        problems.iter().any(|p| p["side"] == "target"
            && p["plugin"] == "leapsome"
            && p["record"] == odd_account.as_str()
            && p["field"] == "birth_date"),
        "{report}"
    );
    assert_eq!(planned(&report, "create"), 0, "{report}");
    assert_eq!(planned(&report, "deactivate"), 0, "{report}");
    let odd = world
        .leapsome
        .user_by_external_id(odd_person)
        .expect("kept");
    assert!(odd.active);
    assert_ne!(
        odd.title.as_deref(),
        Some("Chief Tester"),
        "updated from a bad read"
    );
    assert_eq!(odd.birthday.as_deref(), Some("1990-02-30"), "left as it is");
    let fine = world
        .leapsome
        .user_by_external_id(fine_person)
        .expect("kept");
    assert_eq!(fine.title.as_deref(), Some("Chief Tester"));
    assert_eq!(world.leapsome.users().len(), accounts_before);

    let runs = json(&world.muster(&["history", "--json"]));
    let stored = runs["runs"][0]["problems"].as_array().expect("problems");
    assert!(
        stored
            .iter()
            .any(|p| p["record"] == odd_account.as_str() && p["field"] == "birth_date"),
        "{runs}"
    );
}
