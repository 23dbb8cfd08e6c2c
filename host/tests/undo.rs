//! `muster undo RUN` and the leavers' grace period end to end: the real
//! `muster` binary, a simulated Lucca tenant and Leapsome organisation on
//! loopback HTTP, the real Lucca and Leapsome `.wasm` plugins and a real
//! SQLite store.
//!
//! - **a deactivation wave** (HR ended the wrong contracts) is undone: the
//!   undo plan is shown first and changes nothing, `--yes` reactivates every
//!   account, and the undo — a run of its own — can itself be undone;
//! - **an update** is undone field by field: the value the run overwrote is
//!   written back, a field changed by hand since is named and left alone;
//! - **bad input**: an unknown run, another flow's run, a run still running,
//!   a held run and a run that changed nothing are refused with their exit
//!   codes;
//! - **grace period**: with `deactivate_after_days`, a leaver's account
//!   stays active and the plan says when it will be deactivated; on that day
//!   it is; a rehire within the grace cancels it.

mod common;

use common::world::{FLOW, World, json, text};
use muster::store::{RunStatus, Trigger};
use muster_sandbox::LeapsomeOptions;

/// The ids of the first `n` people with an active Leapsome account.
fn synced(world: &World, n: usize) -> Vec<String> {
    let ids: Vec<String> = world
        .leapsome
        .users()
        .iter()
        .filter(|u| u.active)
        .filter_map(|u| u.external_id.clone())
        .take(n)
        .collect();
    assert_eq!(ids.len(), n, "{n} synced people expected");
    ids
}

fn active(world: &World, id: &str) -> bool {
    world
        .leapsome
        .user_by_external_id(id)
        .expect("account")
        .active
}

/// The run id of a `--json` run report.
fn run_of(report: &serde_json::Value) -> i64 {
    report["run"].as_i64().expect("a run id")
}

/// `(kind, source id, reason)` of every step of a JSON report.
fn steps(report: &serde_json::Value) -> Vec<(String, String, String)> {
    report["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| {
            let field = |k: &str| s[k].as_str().unwrap_or_default().to_owned();
            (field("kind"), field("source_id"), field("reason"))
        })
        .collect()
}

/// Ends the contracts of `ids` (in the past of the sandbox's today).
fn end_contracts(world: &World, ids: &[String], end: &str) {
    world.lucca.with_tenant(|t| {
        for id in ids {
            let user = t.user_mut(id.parse().expect("a Lucca id")).expect("user");
            user.dt_contract_end = Some(format!("{end}T00:00:00"));
        }
    });
}

#[test]
fn a_deactivation_wave_is_undone_and_the_undo_can_be_undone() {
    let world = World::new(30, LeapsomeOptions::default());
    let first = world.muster(&["sync"]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let wave = synced(&world, 5);
    end_contracts(&world, &wave, "2026-05-20");

    // Five leavers at once: over the guard, held, then approved.
    let held = world.muster(&["sync", "--json"]);
    assert_eq!(held.status.code(), Some(3), "{}", text(&held));
    let held_run = run_of(&json(&held));
    let out = world.muster(&["sync", "--approve-held", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let deactivation = run_of(&json(&out));
    assert!(wave.iter().all(|id| !active(&world, id)));

    // The wave was a mistake. The undo plan first: shown, nothing changed.
    let run = deactivation.to_string();
    let shown = world.muster(&["undo", &run]);
    assert_eq!(shown.status.code(), Some(0), "{}", text(&shown));
    let shown_text = String::from_utf8_lossy(&shown.stdout);
    assert!(
        shown_text.contains(&format!("undoes the deactivate of run {run}")),
        "{shown_text}"
    );
    assert!(shown_text.contains("Nothing was changed"), "{shown_text}");
    assert!(wave.iter().all(|id| !active(&world, id)));

    let out = world.muster(&["undo", &run, "--yes", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report = json(&out);
    let mut expected: Vec<(String, String, String)> = wave
        .iter()
        .map(|id| ("reactivate".into(), id.clone(), "undo".into()))
        .collect();
    expected.sort();
    let mut got = steps(&report);
    got.sort();
    assert_eq!(got, expected);
    assert!(wave.iter().all(|id| active(&world, id)));
    let undo_run = run_of(&report);

    // The undo is a run of its own, named in the history.
    let store = world.store();
    let record = store
        .run_record(muster::store::RunId(undo_run))
        .expect("run");
    assert_eq!(
        (record.trigger, record.status, record.undoes),
        (
            Trigger::Undo,
            RunStatus::Done,
            Some(muster::store::RunId(deactivation))
        )
    );
    let history = world.muster(&["history"]);
    assert!(
        String::from_utf8_lossy(&history.stdout).contains(&format!(
            "run {undo_run} {FLOW} undo of run {deactivation} done"
        )),
        "{}",
        text(&history)
    );

    // A held run never changed anything: nothing to undo.
    let out = world.muster(&["undo", &held_run.to_string()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("was never applied (held: the guard held its plan)"),
        "{}",
        text(&out)
    );

    // Undo of the undo: five deactivations again, which the guard holds
    // like any wave until approved.
    let again = undo_run.to_string();
    let out = world.muster(&["undo", &again, "--yes"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(wave.iter().all(|id| active(&world, id)));
    let out = world.muster(&["undo", &again, "--yes", "--approve-held"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(wave.iter().all(|id| !active(&world, id)));
}

#[test]
fn an_update_is_undone_field_by_field_and_a_field_changed_since_is_left_alone() {
    let world = World::new(20, LeapsomeOptions::default());
    let first = world.muster(&["sync"]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let people = synced(&world, 2);
    let title = |id: &str| {
        world
            .leapsome
            .user_by_external_id(id)
            .expect("account")
            .title
    };
    let before: Vec<Option<String>> = people.iter().map(|id| title(id)).collect();
    world.lucca.with_tenant(|t| {
        for id in &people {
            let user = t.user_mut(id.parse().expect("a Lucca id")).expect("user");
            user.job_title = Some("Chief Tester".into());
        }
    });
    let out = world.muster(&["sync", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let run = run_of(&json(&out)).to_string();
    // Since the run, someone retitled the second person by hand in Leapsome.
    let edited = world
        .leapsome
        .user_by_external_id(&people[1])
        .expect("account");
    world.leapsome.with_state(|d| {
        d.user_mut(&edited.id).expect("account").title = Some("Head of QA".into());
    });

    let out = world.muster(&["undo", &run, "--yes", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report = json(&out);
    assert_eq!(
        title(&people[0]),
        before[0],
        "the overwritten title is back"
    );
    assert_eq!(title(&people[1]).as_deref(), Some("Head of QA"));
    let left = report["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .find(|s| s["reason"] == "changed_since")
        .unwrap_or_else(|| panic!("no changed_since step: {report}"));
    assert_eq!(left["target_id"], edited.id.as_str());
    let why = left["explanation"].as_str().expect("explanation");
    assert!(
        why.contains("`job_title` changed since run")
            && why.contains("\"Chief Tester\"")
            && why.contains("\"Head of QA\""),
        "{why}"
    );
}

#[test]
fn a_run_that_cannot_be_undone_is_refused_with_its_exit_code() {
    let other = "\n[flows.other]\nsource = \"lucca\"\ntarget = \"leapsome\"\n";
    let world = World::with_flow(5, LeapsomeOptions::default(), other);
    let first = world.muster(&["sync", "--flow", FLOW, "--json"]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let synced_run = run_of(&json(&first)).to_string();
    let again = world.muster(&["sync", "--flow", FLOW, "--json"]);
    let nothing_run = run_of(&json(&again)).to_string();

    let refused = |args: &[&str], code: i32, says: &str| {
        let out = world.muster(args);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {}", text(&out));
        assert!(text(&out).contains(says), "{args:?}: {}", text(&out));
    };
    refused(
        &["undo", "999"],
        2,
        "run 999 does not exist (see `muster history`",
    );
    refused(
        &["undo", &synced_run, "--flow", "other"],
        2,
        &format!("run {synced_run} is a run of flow `people`, not of flow `other`"),
    );
    refused(
        &["undo", &nothing_run],
        2,
        &format!("run {nothing_run} of flow `people` changed nothing in the target"),
    );
    // A run still going on (begun by another process, not finished).
    let running = {
        let mut store = world.store();
        store.begin_run(FLOW, Trigger::Manual).expect("run").0
    };
    refused(
        &["undo", &running.to_string(), "--yes"],
        4,
        "is still running; undo it once it has finished",
    );
    // `--approve-held` only goes with `--yes`.
    refused(&["undo", &synced_run, "--approve-held"], 2, "--yes");
}

/// The flow of the common world, with a grace period.
fn with_grace(days: u16) -> World {
    let world = World::new(20, LeapsomeOptions::default());
    let path = world.config();
    let config = std::fs::read_to_string(&path).expect("config");
    let config = config.replace(
        "reactivate = true }",
        &format!("reactivate = true, deactivate_after_days = {days} }}"),
    );
    std::fs::write(&path, config).expect("config");
    world
}

#[test]
fn a_grace_period_keeps_a_leaver_active_until_the_day_it_names() {
    let world = with_grace(7);
    let first = world.muster(&["sync"]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let people = synced(&world, 2);
    let (leaver, rehired) = (&people[0], &people[1]);
    // Both left on 2026-05-28; the sandbox's today is 2026-06-01.
    end_contracts(&world, &people, "2026-05-28");

    let plan = world.muster(&["plan"]);
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan));
    assert!(
        text(&plan).contains("it will be deactivated on 2026-06-05"),
        "{}",
        text(&plan)
    );
    let out = world.muster(&["sync", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report = json(&out);
    for id in &people {
        assert!(
            steps(&report).contains(&("skip".into(), id.clone(), "deactivation_pending".into())),
            "{report}"
        );
        assert!(active(&world, id), "{id} deactivated within the grace");
    }

    // The second one is rehired within the grace: the end date is gone.
    world.lucca.with_tenant(|t| {
        let user = t
            .user_mut(rehired.parse().expect("a Lucca id"))
            .expect("user");
        user.dt_contract_end = None;
    });
    let on_the_day = |args: &[&str]| {
        world
            .command(args)
            .env("MUSTER_TODAY", "2026-06-05")
            .output()
            .expect("run muster")
    };
    let out = on_the_day(&["sync", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report = json(&out);
    let deactivated: Vec<String> = steps(&report)
        .into_iter()
        .filter(|(kind, _, _)| kind == "deactivate")
        .map(|(_, id, _)| id)
        .collect();
    assert_eq!(deactivated, std::slice::from_ref(leaver), "{report}");
    assert!(!active(&world, leaver));
    assert!(active(&world, rehired));
}

/// What the status page's undo button asks for (`Runner::undo`,
/// `UndoMode::Hold`): the undo plan is held for review even under the
/// guard's thresholds, and nothing changes until it is applied.
#[test]
fn an_undo_held_for_review_changes_nothing_until_applied() {
    use muster::engine::{LeaseSettings, Outcome, Quiet, UndoMode, UndoRequest, undo};

    let world = World::new(10, LeapsomeOptions::default());
    let first = world.muster(&["sync"]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let leaver = synced(&world, 1);
    end_contracts(&world, &leaver, "2026-05-20");
    let out = world.muster(&["sync", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let run = muster::store::RunId(run_of(&json(&out)));
    assert!(!active(&world, &leaver[0]));

    let config = muster::config::Config::load(world.config()).expect("config");
    let flow = config.flow(FLOW).expect("flow");
    let host = muster::connect::Host::new(&config).expect("host");
    let mut connected = host.connect_flow(&config, flow).expect("connect");
    let mut store = world.store();
    let request = UndoRequest {
        run,
        mode: UndoMode::Hold,
        today: muster_core::Date::parse(common::world::TODAY).expect("today"),
        approver: "test".into(),
    };
    let spec = muster::engine::FlowSpec::of(flow, connected.policy.clone());
    let report = undo::undo(
        &mut store,
        &spec,
        &mut connected.target,
        &request,
        &Quiet,
        &LeaseSettings::default(),
    )
    .expect("undo");
    assert_eq!(report.outcome, Outcome::Held);
    assert!(report.breaches.is_empty(), "{:?}", report.breaches);
    let held = store.held_plan(FLOW).expect("held").expect("a held plan");
    assert_eq!(held.run, report.run.expect("a run"));
    assert_eq!(held.steps, report.steps);
    assert!(!active(&world, &leaver[0]), "changed before approval");

    let out = world.muster(&["undo", &run.0.to_string(), "--yes", "--approve-held"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(active(&world, &leaver[0]));
    assert!(store.held_plan(FLOW).expect("held").is_none());
}
