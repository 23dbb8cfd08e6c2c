//! Undo of a run (`muster_core::undo`), on the in-memory target of the test
//! support: what a run did is the steps of its plan, applied; the undo plan
//! is applied the same way, and the target checked.

mod support;

use muster_core::{ActionKind, Field, FieldRef, Policy, Step, UndoInput, undo};
use support::{World, day, ops, person};

fn leapsome() -> Policy {
    Policy {
        reactivate: true,
        invite_on_create: true,
        sync_groups: false,
        ..Policy::default()
    }
}

/// Plans, applies, and returns what the run did as the journal keeps it:
/// the steps that changed the target, a create's `target_id` set to the
/// account it produced.
fn run(w: &mut World) -> Vec<Step> {
    let steps: Vec<Step> = w
        .plan()
        .steps()
        .into_iter()
        .filter(|s| s.kind.changes_target())
        .collect();
    w.sync();
    steps
        .into_iter()
        .map(|mut s| {
            if s.kind == ActionKind::Create {
                let source = s.source_id.clone().unwrap_or_default();
                s.target_id = w.target_of(&source).map(|a| a.id.clone());
            }
            s
        })
        .collect()
}

fn input<'a>(w: &'a World, run: u64, done: &'a [Step]) -> UndoInput<'a> {
    UndoInput {
        run,
        done,
        accounts: &w.target,
        groups: &w.teams,
        links: &w.links,
        group_links: &w.group_links,
        policy: &w.policy,
        today: w.today,
    }
}

/// `kind who (reason)` per step of the undo plan of `done`.
fn undo_summary(w: &World, run: u64, done: &[Step]) -> Vec<String> {
    let undo = undo(input(w, run, done));
    let plan = undo.plan();
    plan.steps()
        .iter()
        .map(|s| {
            let who = s.source_id.clone().or(s.target_id.clone());
            format!("{} {} ({})", s.kind, who.unwrap_or_default(), s.reason)
        })
        .collect()
}

/// Applies the undo plan of `done` to the in-memory target.
fn apply_undo(w: &mut World, run: u64, done: &[Step]) -> Vec<Step> {
    let (calls, steps) = {
        let undo = undo(input(w, run, done));
        let plan = undo.plan();
        let steps = plan
            .steps()
            .into_iter()
            .filter(|s| s.kind.changes_target())
            .collect();
        (ops(&plan), steps)
    };
    w.apply_ops(calls);
    steps
}

fn three_people() -> World {
    let mut w = World::new(leapsome());
    w.source = vec![
        person("1", "Ana", "Lopez", "ana@acme.fr"),
        person("2", "Ben", "Roy", "ben@acme.fr"),
        person("3", "Chloe", "Martin", "chloe@acme.fr"),
    ];
    w.sync();
    w
}

#[test]
fn the_undo_of_a_deactivation_wave_reactivates_every_account() {
    let mut w = three_people();
    // HR ends the wrong contracts.
    for p in &mut w.source {
        p.end_date = Some(day("2026-02-27"));
    }
    w.policy.guard = muster_core::Guard::off();
    let wave = run(&mut w);
    assert_eq!(wave.len(), 3);
    assert!(w.target.iter().all(|a| !a.active));

    let plan = undo_summary(&w, 7, &wave);
    assert_eq!(
        plan,
        [
            "reactivate 1 (undo)",
            "reactivate 2 (undo)",
            "reactivate 3 (undo)"
        ]
    );
    {
        let undo = undo(input(&w, 7, &wave));
        let plan = undo.plan();
        assert_eq!(plan.undoes(), Some(7));
        let text = plan.to_string();
        assert!(
            text.contains("because undoes the deactivate of run 7"),
            "{text}"
        );
    }
    apply_undo(&mut w, 7, &wave);
    assert!(w.target.iter().all(|a| a.active));
}

#[test]
fn an_undo_plan_is_guarded_like_any_other() {
    let mut w = World::new(leapsome());
    w.source = (0..30)
        .map(|i| person(&i.to_string(), "P", "Q", &format!("p{i}@acme.fr")))
        .collect();
    w.sync();
    // A reactivation wave of 30, made with the guard off…
    for a in &mut w.target {
        a.active = false;
    }
    w.policy.guard = muster_core::Guard::off();
    let wave = run(&mut w);
    assert_eq!(wave.len(), 30);
    // …is undone by 30 deactivations: over the flow's guard, held.
    w.policy.guard = muster_core::Guard::default();
    let undo = undo(input(&w, 3, &wave));
    let plan = undo.plan();
    assert_eq!(plan.counts().get(ActionKind::Deactivate), 30);
    assert!(plan.is_held(), "{plan}");
}

#[test]
fn an_overwritten_field_is_restored_and_one_changed_since_is_left_alone_and_named() {
    let mut w = three_people();
    w.source[0].job_title = Some("Engineer".into());
    w.source[0].family_name = Some("Lopez-Garcia".into());
    let wrong = run(&mut w);
    // Since the run, someone set Ana's title by hand in the target.
    w.target[0].job_title = Some("Staff engineer".into());

    assert_eq!(
        undo_summary(&w, 4, &wrong),
        ["update 1 (undo)", "skip acct-1 (changed_since)"]
    );
    let undo_plan = undo(input(&w, 4, &wrong));
    let plan = undo_plan.plan();
    let steps = plan.steps();
    let fields: Vec<(String, Option<String>)> = steps[0]
        .changes
        .iter()
        .map(|c| (c.field.to_string(), c.new.as_ref().map(|v| v.to_string())))
        .collect();
    assert_eq!(
        fields,
        [("family_name".to_string(), Some("\"Lopez\"".into()))]
    );
    assert!(
        steps[1]
            .explanation
            .contains("`job_title` changed since run 4 wrote \"Engineer\""),
        "{}",
        steps[1].explanation
    );
    drop(plan);
    drop(undo_plan);
    apply_undo(&mut w, 4, &wrong);
    assert_eq!(w.target[0].family_name.as_deref(), Some("Lopez"));
    assert_eq!(w.target[0].job_title.as_deref(), Some("Staff engineer"));
}

#[test]
fn a_field_the_flow_no_longer_owns_is_not_written_back() {
    let mut w = three_people();
    w.source[1].job_title = Some("Sales".into());
    let done = run(&mut w);
    w.policy.owned.remove(&FieldRef::from(Field::JobTitle));
    assert_eq!(
        undo_summary(&w, 2, &done),
        ["skip acct-2 (no_longer_owned)"]
    );
}

#[test]
fn the_undo_of_a_create_deactivates_and_says_the_invitation_is_sent() {
    let mut w = three_people();
    w.source.push(person("4", "Dan", "Wu", "dan@acme.fr"));
    let done = run(&mut w);
    assert_eq!(done.len(), 1);
    assert_eq!(
        undo_summary(&w, 9, &done),
        ["deactivate 4 (undo)", "skip acct-4 (not_undoable)"]
    );
    let undo = undo(input(&w, 9, &done));
    let plan = undo.plan();
    let text = plan.to_string();
    assert!(text.contains("undoes the create of run 9"), "{text}");
    assert!(
        text.contains(
            "the invitation e-mail sent when the account was created cannot be taken back"
        ),
        "{text}"
    );
}

#[test]
fn the_undo_of_an_undo_does_the_run_again() {
    let mut w = three_people();
    w.source[2].end_date = Some(day("2026-02-27"));
    let first = run(&mut w);
    let undone = apply_undo(&mut w, 1, &first);
    assert!(w.target[2].active);
    // The undo is a run like any other: undoing it deactivates again.
    assert_eq!(undo_summary(&w, 2, &undone), ["deactivate 3 (undo)"]);
    apply_undo(&mut w, 2, &undone);
    assert!(!w.target[2].active);
}

#[test]
fn what_is_already_reversed_or_gone_is_reported_not_done() {
    let mut w = three_people();
    w.source[0].end_date = Some(day("2026-02-27"));
    w.source[1].end_date = Some(day("2026-02-27"));
    let done = run(&mut w);
    // Ana was reactivated by hand; Ben's account was deleted in the target.
    w.target[0].active = true;
    w.target.retain(|a| a.id != "acct-2");
    assert_eq!(
        undo_summary(&w, 5, &done),
        ["skip acct-1 (nothing_to_undo)", "skip 2 (not_undoable)"]
    );
}

#[test]
fn an_undo_never_makes_a_call_the_flow_may_not_make() {
    let mut w = three_people();
    w.source[0].end_date = Some(day("2026-02-27"));
    let done = run(&mut w);
    w.policy.allowed.reactivate = false;
    assert_eq!(undo_summary(&w, 5, &done), ["skip acct-1 (not_allowed)"]);
}
