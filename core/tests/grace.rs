//! The grace period for leavers (`Policy::deactivate_after_days`).

mod support;

use muster_core::{Policy, Reason};
use support::{World, day, person};

fn world(grace: u16) -> World {
    let mut w = World::new(Policy {
        reactivate: true,
        sync_groups: false,
        deactivate_after_days: grace,
        ..Policy::default()
    });
    w.source = vec![
        person("1", "Ana", "Lopez", "ana@acme.fr"),
        person("2", "Ben", "Roy", "ben@acme.fr"),
    ];
    w.sync();
    // Ana's last day is 2026-03-02.
    w.source[0].end_date = Some(day("2026-03-02"));
    w.sync();
    w
}

fn on(w: &mut World, date: &str) -> Vec<String> {
    w.today = day(date);
    w.summary()
}

#[test]
fn without_a_grace_period_a_leaver_is_deactivated_the_day_after_the_end_date() {
    let mut w = world(0);
    assert!(on(&mut w, "2026-03-02").is_empty());
    assert_eq!(on(&mut w, "2026-03-03"), ["deactivate 1 (end_date_passed)"]);
}

#[test]
fn a_grace_period_keeps_the_account_active_and_says_until_when() {
    let mut w = world(7);
    // The last working day: nothing to say yet.
    assert!(on(&mut w, "2026-03-02").is_empty());
    // From the day after the end date to its seventh day, a notice.
    for date in ["2026-03-03", "2026-03-09"] {
        assert_eq!(
            on(&mut w, date),
            ["skip 1 (deactivation_pending)"],
            "{date}"
        );
    }
    let plan = w.plan();
    let reasons: Vec<Reason> = plan.actions().iter().map(|a| a.reason()).collect();
    assert_eq!(
        reasons,
        [Reason::DeactivationPending {
            end: day("2026-03-02"),
            on: day("2026-03-10"),
        }]
    );
    assert!(
        plan.to_string()
            .contains("it will be deactivated on 2026-03-10"),
        "{plan}"
    );
    drop(plan);
    // On that day, it is.
    assert_eq!(on(&mut w, "2026-03-10"), ["deactivate 1 (end_date_passed)"]);
}

#[test]
fn an_hr_source_marking_the_leaver_inactive_gets_the_grace_too() {
    let mut w = world(7);
    w.source[0].active = false;
    assert_eq!(on(&mut w, "2026-03-05"), ["skip 1 (deactivation_pending)"]);
    assert_eq!(on(&mut w, "2026-03-10"), ["deactivate 1 (end_date_passed)"]);
    // Inactive without an end date: nothing to count from, deactivated.
    w.source[0].end_date = None;
    assert_eq!(
        on(&mut w, "2026-03-05"),
        ["deactivate 1 (inactive_in_source)"]
    );
}

#[test]
fn a_rehire_or_a_corrected_end_date_within_the_grace_cancels_it_with_nothing_done() {
    let mut w = world(7);
    assert_eq!(on(&mut w, "2026-03-05"), ["skip 1 (deactivation_pending)"]);
    // HR corrects the end date: the new one is synced, nothing else.
    w.source[0].end_date = Some(day("2026-12-31"));
    assert_eq!(on(&mut w, "2026-03-05"), ["update 1 (owned_fields_differ)"]);
    // A rehire (the end date cleared) within the grace: the same.
    w.source[0].end_date = None;
    assert_eq!(on(&mut w, "2026-03-05"), ["update 1 (owned_fields_differ)"]);
    w.sync();
    assert!(on(&mut w, "2026-03-20").is_empty());
    assert!(w.target.iter().all(|a| a.active));
}

#[test]
fn an_account_already_deactivated_by_hand_gets_no_notice_in_the_grace() {
    let mut w = world(7);
    w.target[0].active = false;
    assert!(on(&mut w, "2026-03-05").is_empty());
}
