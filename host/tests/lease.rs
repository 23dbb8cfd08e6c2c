//! One run per flow, with real processes: the real `muster` binary, the
//! Lucca and Leapsome simulators (slowed down with their latency knob so
//! that runs overlap) and one real SQLite file.
//!
//! - **plan during a sync**: the plan writes nothing, notes the live run's
//!   unsettled calls, and the sync finishes with an exact journal.
//! - **two syncs**: the second is refused with exit code 4 naming the owner,
//!   a third with `--wait` runs after the first; Leapsome sees exactly the
//!   writes of one uninterrupted sync.
//! - **kill while another waits**: the waiter takes the lease over once it
//!   expires (`MUSTER_LEASE_TTL`), settles the dead run, and the result
//!   equals an uninterrupted sync.
//! - **plan after a kill**: reads the dead run's open intents, settles none.
//! - **serve**: a webhook event for a busy flow stays pending, with the
//!   reason, and nothing is logged as an error.
//! - **settings**: a bad `MUSTER_LEASE_TTL` is a usage error (exit 2).
//! - **suspended past its lease**: a sync frozen (SIGSTOP) until another took
//!   the flow over sends at most the call it was in, and writes nothing.

mod common;

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::world::{
    Account, FLOW, World, assert_journal_resolved, await_writes, http, json, kill_after_writes,
    text,
};
use muster::store::{InboxState, JournalState, RunStatus};
use muster_sandbox::LeapsomeOptions;

const PEOPLE: usize = 300;
/// A short lease, so that a killed sync's lease expires within the test.
const TTL: &str = "2";

/// Leapsome answering every request after 20 ms: a sync of [`PEOPLE`]
/// people takes several seconds to apply.
fn slow() -> LeapsomeOptions {
    LeapsomeOptions {
        latency: Duration::from_millis(20),
        ..LeapsomeOptions::default()
    }
}

fn spawn(world: &World, args: &[&str]) -> Child {
    world
        .command(args)
        .env("MUSTER_LEASE_TTL", TTL)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn muster")
}

/// What an uninterrupted sync of the same tenant makes: the accounts, the
/// number of links, and the number of writes Leapsome served.
fn reference() -> (BTreeMap<String, Account>, usize, usize) {
    let world = World::new(PEOPLE, LeapsomeOptions::default());
    let out = world.muster(&["sync"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let links = world.store().links(FLOW).expect("links").len();
    (
        world.accounts(),
        links,
        world.leapsome.request_counts().writes,
    )
}

fn statuses(world: &World) -> Vec<RunStatus> {
    let mut runs = world.store().history(FLOW, 100).expect("history");
    runs.reverse();
    runs.into_iter().map(|r| r.status).collect()
}

#[test]
fn plan_during_a_live_sync_changes_nothing_and_the_sync_succeeds() {
    let world = World::new(PEOPLE, slow());
    let mut sync = spawn(&world, &["sync", "--json"]);
    let start = world.leapsome.request_counts().writes;
    assert!(
        await_writes(&world, &mut sync, start, 10),
        "the sync ended before it applied anything"
    );

    let plan = world.command(&["plan"]).output().expect("plan");
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan));
    assert!(
        sync.try_wait().expect("try_wait").is_none(),
        "the sync finished before the plan did: the test proves nothing"
    );
    let stdout = String::from_utf8_lossy(&plan.stdout);
    assert!(
        stdout.contains("of run 1 are not settled yet; the next sync settles them first"),
        "{}",
        text(&plan)
    );
    // The plan recorded no run and aborted nothing.
    assert_eq!(statuses(&world), [RunStatus::Running]);

    let out = sync.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report = json(&out);
    assert_eq!(report["outcome"], "applied", "{report}");
    assert_eq!(report["recovered"]["aborted_runs"], 0);
    assert_eq!(statuses(&world), [RunStatus::Done]);

    // Every call of the sync is recorded as it happened: done, no recovery
    // notes, and one link per account.
    let run = world.store().history(FLOW, 1).expect("history").remove(0);
    assert!(!run.journal.is_empty());
    for entry in &run.journal {
        assert_eq!(entry.state, JournalState::Done, "{entry:?}");
        assert_eq!(entry.error, None, "{entry:?}");
    }
    let accounts = world.accounts();
    let links = world.store().links(FLOW).expect("links");
    assert_eq!(links.len(), accounts.len());
}

#[test]
fn a_second_sync_is_refused_and_a_waiting_one_runs_after_the_first() {
    let (expected, expected_links, expected_writes) = reference();
    let world = World::new(PEOPLE, slow());
    let mut first = spawn(&world, &["sync", "--json"]);
    let start = world.leapsome.request_counts().writes;
    assert!(await_writes(&world, &mut first, start, 5));

    let second = world.command(&["sync"]).output().expect("second sync");
    assert_eq!(second.status.code(), Some(4), "{}", text(&second));
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains("flow `people` is busy")
            && stderr.contains(&format!(":{}:", first.id()))
            && stderr.contains("nothing was done"),
        "{}",
        text(&second)
    );

    let waiter = spawn(&world, &["sync", "--wait", "600", "--json"]);
    let out = first.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(json(&out)["outcome"], "applied");
    let waited = waiter.wait_with_output().expect("wait");
    assert_eq!(waited.status.code(), Some(0), "{}", text(&waited));
    assert_eq!(json(&waited)["outcome"], "no_changes", "{}", text(&waited));

    // Leapsome served the writes of one sync, no more: nothing was sent twice.
    assert_eq!(world.leapsome.request_counts().writes, expected_writes);
    assert_eq!(world.accounts(), expected);
    assert_eq!(
        world.store().links(FLOW).expect("links").len(),
        expected_links
    );
    // The refused sync recorded no run.
    assert_eq!(statuses(&world), [RunStatus::Done, RunStatus::Done]);
    assert_journal_resolved(&world);
}

#[test]
fn a_killed_sync_is_taken_over_by_a_waiting_one_once_its_lease_expires() {
    let (expected, expected_links, _) = reference();
    let world = World::new(PEOPLE, slow());
    let mut first = spawn(&world, &["sync"]);
    let start = world.leapsome.request_counts().writes;
    assert!(await_writes(&world, &mut first, start, 5));
    let waiter = spawn(&world, &["sync", "--wait", "600", "--json"]);
    assert!(kill_after_writes(&world, &mut first, 20));

    let out = waiter.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report = json(&out);
    assert_eq!(report["outcome"], "applied", "{report}");
    assert_eq!(report["recovered"]["aborted_runs"], 1, "{report}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("took over the lease of"),
        "{}",
        text(&out)
    );

    // The same as an uninterrupted sync: nothing created twice, no link lost.
    assert_eq!(world.accounts(), expected);
    assert_eq!(
        world.store().links(FLOW).expect("links").len(),
        expected_links
    );
    assert_eq!(statuses(&world), [RunStatus::Aborted, RunStatus::Done]);
    assert_journal_resolved(&world);
    let again = world.muster(&["sync", "--json"]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    assert_eq!(json(&again)["outcome"], "no_changes");
}

#[test]
fn plan_after_a_killed_sync_settles_nothing_and_says_what_is_open() {
    let world = World::new(PEOPLE, slow());
    let mut first = spawn(&world, &["sync"]);
    assert!(kill_after_writes(&world, &mut first, 20));
    let open = world.store().unresolved_journal(FLOW).expect("journal");
    assert!(!open.is_empty(), "the kill left no open intent");
    let before = world.store().history(FLOW, 100).expect("history");

    let plan = world.command(&["plan"]).output().expect("plan");
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan));
    let note = format!(
        "{} call(s) of run 1 are not settled yet; the next sync settles them first",
        open.len()
    );
    assert!(
        String::from_utf8_lossy(&plan.stdout).contains(&note),
        "{}",
        text(&plan)
    );
    assert_eq!(world.store().history(FLOW, 100).expect("history"), before);

    // The next sync (once the dead run's lease has expired) settles them.
    let sync = world
        .command(&["sync", "--wait", "600", "--json"])
        .env("MUSTER_LEASE_TTL", TTL)
        .output()
        .expect("sync");
    assert_eq!(sync.status.code(), Some(0), "{}", text(&sync));
    assert_eq!(json(&sync)["recovered"]["aborted_runs"], 1);
    assert_journal_resolved(&world);
}

/// Sends `signal` (`STOP`, `CONT`) to the child with kill(1).
fn signal(child: &Child, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(child.id().to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{signal} failed");
}

#[test]
fn a_sync_suspended_past_its_lease_sends_nothing_more_and_writes_nothing() {
    let (expected, expected_links, _) = reference();
    let world = World::new(PEOPLE, slow());
    let mut first = spawn(&world, &["sync"]);
    let start = world.leapsome.request_counts().writes;
    assert!(await_writes(&world, &mut first, start, 10));
    signal(&first, "STOP");

    // Another sync takes the flow over once the frozen one's lease expires.
    let second = world
        .command(&["sync", "--wait", "600", "--json"])
        .env("MUSTER_LEASE_TTL", TTL)
        .output()
        .expect("second sync");
    signal(&first, "CONT");
    assert_eq!(second.status.code(), Some(0), "{}", text(&second));
    assert_eq!(json(&second)["recovered"]["aborted_runs"], 1);
    let writes = world.leapsome.request_counts().writes;

    // Woken up, the first finds its lease lapsed: it stops calling, and its
    // writes are refused by the fence.
    let out = first.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("this run lost its lease (fence 1)"),
        "{}",
        text(&out)
    );
    // Each call in flight checks the lease before it is sent, so a process
    // frozen between that check and its call sends at most one call per
    // call in flight (docs/concurrency.md).
    let after = world.leapsome.request_counts().writes;
    assert!(
        after <= writes + muster::config::DEFAULT_IN_FLIGHT,
        "the run that lost its lease made {} more calls",
        after - writes
    );
    assert_eq!(world.accounts(), expected);
    assert_eq!(
        world.store().links(FLOW).expect("links").len(),
        expected_links
    );
    assert_eq!(statuses(&world), [RunStatus::Aborted, RunStatus::Done]);
    assert_journal_resolved(&world);
}

#[test]
fn serve_leaves_a_busy_flows_webhook_event_pending_and_logs_no_error() {
    let world = World::with_flow(
        PEOPLE,
        slow(),
        r#"webhook = { secret = { file = "hook.secret" }, id_field = "candidate.id" }"#,
    );
    std::fs::write(world.dir.path().join("hook.secret"), "s3cret-hook\n").expect("secret");
    let mut sync = spawn(&world, &["sync"]);
    let start = world.leapsome.request_counts().writes;
    assert!(await_writes(&world, &mut sync, start, 5));

    let serving = world.serve();
    let (status, body) = http(
        &serving.addr,
        "POST",
        "/webhooks/people",
        &[
            ("X-Muster-Secret", "s3cret-hook"),
            ("Content-Type", "application/json"),
        ],
        r#"{"candidate": {"id": "1"}}"#,
    );
    assert_eq!(status, 202, "{body}");
    let deadline = Instant::now() + Duration::from_secs(120);
    let event = loop {
        let events = world.store().inbox_recent(FLOW, 10).expect("inbox");
        if let Some(e) = events.into_iter().find(|e| e.attempts > 0) {
            break e;
        }
        assert!(Instant::now() < deadline, "serve never tried the event");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        sync.try_wait().expect("try_wait").is_none(),
        "the sync finished before serve tried the event: the test proves nothing"
    );
    assert_eq!(event.state, InboxState::Pending, "{event:?}");
    let error = event.error.as_deref().unwrap_or_default();
    assert!(
        error.starts_with("skipped: flow `people` is busy"),
        "{event:?}"
    );
    let log = serving.log.lock().expect("log").clone();
    assert!(
        !log.contains("ERROR") && !log.contains("run failed"),
        "serve logged the busy flow as an error:\n{log}"
    );
    let out = sync.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[test]
fn a_bad_lease_time_to_live_is_a_usage_error() {
    let world = World::new(10, LeapsomeOptions::default());
    for bad in ["soon", "0", "-5"] {
        let out = world
            .command(&["sync"])
            .env("MUSTER_LEASE_TTL", bad)
            .output()
            .expect("sync");
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(&format!(
                "MUSTER_LEASE_TTL={bad:?} is not a lease time-to-live"
            )),
            "{}",
            text(&out)
        );
    }
    assert!(world.leapsome.users().is_empty(), "a refused sync wrote");
}
