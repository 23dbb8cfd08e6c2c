//! Compound (multi-occurrence) fields compared row by row under a row key,
//! through the planner: Cards' training rows (`e_formation`, keyed by
//! `e_title`) written back into Lucca.

mod support;

use muster_core::rows::{apply_row_changes, key_text};
use muster_core::{
    ActionKind, FieldRef, FieldValue, Person, Policy, Row, RowAction, RowChange, Step,
};
use support::*;

/// Cards → Lucca: the flow owns the job title and the training rows.
fn cards_to_lucca() -> Policy {
    let mut policy = Policy {
        owned: ["job_title", "e_formation"]
            .into_iter()
            .map(FieldRef::parse)
            .collect(),
        ..Policy::default()
    };
    policy
        .row_keys
        .insert("e_formation".into(), "e_title".into());
    policy
}

fn training(title: &str, progress: f64, score: f64) -> Row {
    let mut r = Row::new();
    r.insert("e_title".into(), FieldValue::Text(title.into()));
    r.insert("e_progress".into(), FieldValue::Number(progress));
    r.insert("e_score".into(), FieldValue::Number(score));
    r
}

fn with_rows(mut p: Person, rows: Vec<Row>) -> Person {
    p.custom
        .insert("e_formation".into(), FieldValue::Rows(rows));
    p
}

/// A linked person `1` ↔ account `acct-1` with these rows on each side,
/// every target row written by the flow (see `world_by_hand` otherwise).
fn world(source: Vec<Row>, target: Vec<Row>) -> World {
    let mut w = world_by_hand(source, vec![]);
    for row in &target {
        if let Some(key) = row.get("e_title").and_then(key_text) {
            w.written_rows.insert("acct-1", "e_formation", &key);
        }
    }
    w.target = vec![with_rows(Person::new("acct-1"), target)];
    w
}

/// As `world`, but the flow wrote none of the target rows.
fn world_by_hand(source: Vec<Row>, target: Vec<Row>) -> World {
    let mut w = World::new(cards_to_lucca());
    w.source = vec![with_rows(
        person("1", "Ana", "Lopez", "ana@acme.fr"),
        source,
    )];
    w.target = vec![with_rows(Person::new("acct-1"), target)];
    w.link("1", "acct-1");
    w
}

/// `(op, key)` of a step's row changes.
fn row_ops(step: &Step) -> Vec<(&'static str, String)> {
    step.rows
        .iter()
        .map(|r| {
            let op = match r.action {
                RowAction::Add { .. } => "add",
                RowAction::Change { .. } => "change",
                RowAction::Remove { .. } => "remove",
            };
            (op, r.key_value().map(|k| k.to_string()).unwrap_or_default())
        })
        .collect()
}

fn update_steps(w: &World) -> Vec<Step> {
    w.plan()
        .steps()
        .into_iter()
        .filter(|s| s.kind == ActionKind::Update)
        .collect()
}

/// Applies every update's row changes to the target, as Lucca does.
fn apply_rows(w: &mut World) {
    let changes: Vec<RowChange> = update_steps(w).into_iter().flat_map(|s| s.rows).collect();
    let Some(FieldValue::Rows(rows)) = w.target[0].custom.get_mut("e_formation") else {
        panic!("target rows");
    };
    apply_row_changes(rows, &changes);
}

#[test]
fn the_same_rows_in_another_order_plan_nothing() {
    let w = world(
        vec![
            training("GDPR", 80.0, 10.0),
            training("Security", 100.0, 60.0),
        ],
        vec![
            training("Security", 100.0, 60.0),
            training("GDPR", 80.0, 10.0),
        ],
    );
    assert!(w.plan().is_noop(), "{}", w.plan());
}

#[test]
fn the_plan_holds_row_changes_not_one_opaque_field_change() {
    let mut w = world(
        vec![
            training("Security", 100.0, 75.0),
            training("GDPR basics", 80.0, 0.0),
        ],
        vec![
            training("Old course", 10.0, 0.0),
            training("Security", 100.0, 60.0),
        ],
    );
    w.source[0].job_title = Some("Analyst".into());
    let steps = update_steps(&w);
    let [step] = steps.as_slice() else {
        panic!("{steps:?}")
    };
    // The keyed field is in `rows` only; other fields stay in `changes`.
    let fields: Vec<String> = step.changes.iter().map(|c| c.field.to_string()).collect();
    assert_eq!(fields, ["job_title"]);
    let ops: Vec<(&str, String)> = step
        .rows
        .iter()
        .map(|r| {
            let op = match r.action {
                RowAction::Add { .. } => "add",
                RowAction::Change { .. } => "change",
                RowAction::Remove { .. } => "remove",
            };
            (op, r.key_value().map(|k| k.to_string()).unwrap_or_default())
        })
        .collect();
    assert_eq!(
        ops,
        [
            ("add", "\"GDPR basics\"".to_string()),
            ("change", "\"Security\"".to_string()),
            ("remove", "\"Old course\"".to_string()),
        ]
    );
    assert!(
        step.rows
            .iter()
            .all(|r| r.field == "e_formation" && r.key == "e_title")
    );
    // Applying the row changes (and the job title) converges.
    apply_rows(&mut w);
    w.target[0].job_title = Some("Analyst".into());
    assert!(w.plan().is_noop(), "{}", w.plan());
}

#[test]
fn rows_without_a_configured_key_keep_the_whole_value_comparison() {
    let mut w = world(
        vec![
            training("GDPR", 80.0, 10.0),
            training("Security", 100.0, 60.0),
        ],
        vec![
            training("Security", 100.0, 60.0),
            training("GDPR", 80.0, 10.0),
        ],
    );
    w.policy.row_keys.clear();
    let steps = update_steps(&w);
    assert_eq!(steps.len(), 1, "order matters without a row key");
    assert!(steps[0].rows.is_empty());
    assert_eq!(steps[0].changes[0].field, FieldRef::parse("e_formation"));
}

#[test]
fn a_row_without_its_key_is_a_record_problem_and_the_rest_still_syncs() {
    let mut keyless = training("x", 1.0, 1.0);
    keyless.remove("e_title");
    let mut w = world(
        vec![training("GDPR", 80.0, 10.0), keyless],
        vec![training("GDPR", 10.0, 10.0)],
    );
    w.source[0].job_title = Some("Analyst".into());
    let steps = w.plan().steps();
    let conflict = steps
        .iter()
        .find(|s| s.kind == ActionKind::Conflict)
        .expect("a conflict");
    assert_eq!(conflict.reason, "bad_rows");
    assert_eq!(conflict.source_id.as_deref(), Some("1"));
    assert_eq!(
        conflict.explanation,
        "`e_formation` row 2 in the source has no `e_title` (its row key); its rows are not compared"
    );
    // The field is left alone (nothing dropped or half-written); the job
    // title still updates.
    let update = steps
        .iter()
        .find(|s| s.kind == ActionKind::Update)
        .expect("an update");
    assert!(update.rows.is_empty());
    let fields: Vec<String> = update.changes.iter().map(|c| c.field.to_string()).collect();
    assert_eq!(fields, ["job_title"]);
}

#[test]
fn a_duplicate_key_in_the_target_is_reported_on_the_account() {
    let w = world(
        vec![training("GDPR", 80.0, 10.0)],
        vec![training("GDPR", 80.0, 10.0), training("GDPR", 10.0, 0.0)],
    );
    let steps = w.plan().steps();
    let [conflict] = steps.as_slice() else {
        panic!("{steps:?}")
    };
    assert_eq!(
        (conflict.kind, conflict.reason.as_str()),
        (ActionKind::Conflict, "bad_rows")
    );
    assert_eq!(conflict.target_id.as_deref(), Some("acct-1"));
    assert!(
        conflict.explanation.contains("two rows in the target"),
        "{}",
        conflict.explanation
    );
}

#[test]
fn row_changes_serialise_in_plan_files_and_old_files_still_load() {
    let w = world(
        vec![training("Security", 100.0, 75.0)],
        vec![training("Security", 100.0, 60.0)],
    );
    let steps = w.plan().steps();
    let json = serde_json::to_string(&steps).unwrap();
    assert!(
        json.contains(r#""rows":[{"field":"e_formation","key":"e_title","action":{"op":"change""#),
        "{json}"
    );
    let back: Vec<Step> = serde_json::from_str(&json).unwrap();
    assert_eq!(back, steps);
    // A plan file written before rows and names existed.
    let old = r#"[{"kind":"update","source_id":"1","target_id":"acct-1","label":"Ana","reason":"owned_fields_differ","explanation":"source wins on owned fields","changes":[{"field":"job_title","old":null,"new":{"type":"text","value":"CTO"}}]}]"#;
    let old: Vec<Step> = serde_json::from_str(old).unwrap();
    assert!(old[0].rows.is_empty() && old[0].member_names.is_empty());
}

#[test]
fn a_row_added_by_hand_is_never_removed_or_changed() {
    // The flow wrote "Security"; HR added "Onboarding" and a "GDPR" row by
    // hand. The source has a new score for Security, its own GDPR row, and
    // no Onboarding.
    let mut w = world_by_hand(
        vec![
            training("Security", 100.0, 75.0),
            training("GDPR", 100.0, 90.0),
        ],
        vec![
            training("Onboarding", 100.0, 0.0),
            training("Security", 100.0, 60.0),
            training("GDPR", 50.0, 0.0),
        ],
    );
    w.written_rows.insert("acct-1", "e_formation", "Security");
    let steps = w.plan().steps();
    let update = steps
        .iter()
        .find(|s| s.kind == ActionKind::Update)
        .expect("an update");
    assert_eq!(row_ops(update), [("change", "\"Security\"".to_string())]);
    let conflict = steps
        .iter()
        .find(|s| s.kind == ActionKind::Conflict)
        .expect("the hand-made GDPR row is reported");
    assert_eq!(conflict.reason, "row_not_written");
    assert_eq!(conflict.target_id.as_deref(), Some("acct-1"));
    assert!(
        conflict.explanation.contains("`e_title` \"GDPR\"")
            && conflict.explanation.contains("did not write"),
        "{}",
        conflict.explanation
    );
    assert_eq!(steps.len(), 2, "{steps:?}");
    // Once the flow wrote a row, a source without it removes it.
    w.source[0].custom.insert(
        "e_formation".into(),
        FieldValue::Rows(vec![training("GDPR", 50.0, 0.0)]),
    );
    let steps = update_steps(&w);
    assert_eq!(row_ops(&steps[0]), [("remove", "\"Security\"".to_string())]);
}

#[test]
fn a_row_equal_to_a_hand_made_one_plans_nothing() {
    let w = world_by_hand(
        vec![training("GDPR", 80.0, 10.0)],
        vec![training("GDPR", 80.0, 10.0), training("Manual", 1.0, 1.0)],
    );
    assert!(w.plan().is_noop(), "{}", w.plan());
}
