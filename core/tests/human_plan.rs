//! The human plan names people and groups — never internal ids or
//! placeholder text — while steps keep ids as their references.

mod support;

use muster_core::{ActionKind, Field, FieldRef, FieldValue, Person, Policy, Row, Step};
use support::*;

fn leapsome() -> Policy {
    Policy {
        reactivate: true,
        ..Policy::default()
    }
}

fn step_of(w: &World, kind: ActionKind) -> Step {
    w.plan()
        .steps()
        .into_iter()
        .find(|s| s.kind == kind)
        .unwrap_or_else(|| panic!("no {kind} in\n{}", w.plan()))
}

#[test]
fn a_manager_created_in_this_run_is_named_and_typed_not_a_placeholder() {
    let mut w = World::new(leapsome());
    let mut ana = person("1", "Ana", "Lopez", "ana@acme.fr");
    ana.manager_id = Some("2".into());
    w.source = vec![ana, person("2", "Bruno", "Bernard", "bruno@acme.fr")];
    let text = w.plan().to_string();
    assert!(
        text.contains("      manager_id: (none) -> Bruno Bernard (created in this run)\n"),
        "{text}"
    );
    assert!(!text.contains("new account of source"), "{text}");
    // The step keeps a typed reference: the manager's source id, planned.
    let step = step_of(&w, ActionKind::SetManager);
    let change = &step.changes[0];
    assert_eq!(change.field, FieldRef::from(Field::ManagerId));
    assert_eq!(change.new, None);
    let new = change.new_ref.as_ref().expect("new_ref");
    assert_eq!((new.id.as_str(), new.planned), ("2", true));
    assert_eq!(new.name.as_deref(), Some("Bruno Bernard"));
}

#[test]
fn a_manager_change_between_existing_accounts_names_both() {
    let mut w = World::new(leapsome());
    let mut ana = person("1", "Ana", "Lopez", "ana@acme.fr");
    ana.manager_id = Some("2".into());
    w.source = vec![
        ana,
        person("2", "Bruno", "Bernard", "bruno@acme.fr"),
        person("3", "Chloé", "Martin", "chloe@acme.fr"),
    ];
    w.sync();
    w.source[0].manager_id = Some("3".into());
    let text = w.plan().to_string();
    assert!(
        text.contains("      manager_id: Bruno Bernard -> Chloé Martin\n"),
        "{text}"
    );
    let step = step_of(&w, ActionKind::SetManager);
    let chloe = w.target_of("3").unwrap().id.clone();
    assert_eq!(step.changes[0].new, Some(FieldValue::Text(chloe.clone())));
    assert_eq!(
        step.changes[0].new_ref.as_ref().map(|r| &r.id),
        Some(&chloe)
    );
    // Cleared: "(none)".
    w.source[0].manager_id = None;
    assert!(
        w.plan()
            .to_string()
            .contains("      manager_id: Bruno Bernard -> (none)\n")
    );
}

#[test]
fn a_manager_without_any_name_falls_back_to_its_id() {
    let mut w = World::new(leapsome());
    let mut ana = person("1", "Ana", "Lopez", "ana@acme.fr");
    ana.manager_id = Some("2".into());
    w.source = vec![ana, person("2", "", "", "")];
    w.policy.required_on_create = Default::default();
    let text = w.plan().to_string();
    assert!(
        text.contains("      manager_id: (none) -> 2 (created in this run)\n"),
        "{text}"
    );
}

#[test]
fn membership_steps_list_members_by_name_and_keep_ids() {
    let mut w = World::new(leapsome());
    w.departments = vec![group("10", "Engineering"), group("20", "Sales")];
    let mut noel = person("1", "Noël", "Öztürk", "noel@acme.fr");
    noel.department_id = Some("10".into());
    let mut ana = person("2", "Ana", "Lopez", "ana@acme.fr");
    ana.department_id = Some("10".into());
    w.source = vec![noel, ana];
    assert!(
        w.plan()
            .to_string()
            .contains("      members: Noël Öztürk, Ana Lopez\n"),
        "{}",
        w.plan()
    );
    w.sync();
    w.source[0].department_id = Some("20".into());
    let text = w.plan().to_string();
    assert!(text.contains("remove_members Engineering"), "{text}");
    assert!(text.contains("      members: Noël Öztürk\n"), "{text}");
    let remove = step_of(&w, ActionKind::RemoveMembers);
    let account = w.target_of("1").unwrap().id.clone();
    assert_eq!(remove.members, std::slice::from_ref(&account));
    assert_eq!(
        remove.member_names.get(&account).map(String::as_str),
        Some("Noël Öztürk")
    );
}

#[test]
fn row_changes_read_as_rows() {
    let mut policy = Policy {
        owned: [FieldRef::parse("e_formation")].into_iter().collect(),
        ..Policy::default()
    };
    policy
        .row_keys
        .insert("e_formation".into(), "e_title".into());
    let mut w = World::new(policy);
    let row = |title: &str, progress: f64, score: f64| -> Row {
        [
            ("e_title", FieldValue::Text(title.into())),
            ("e_progress", FieldValue::Number(progress)),
            ("e_score", FieldValue::Number(score)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    };
    let rows = |r: Vec<Row>| [("e_formation".to_string(), FieldValue::Rows(r))].into();
    w.source = vec![Person {
        custom: rows(vec![
            row("GDPR basics", 80.0, 0.0),
            row("Security", 100.0, 75.0),
        ]),
        ..person("1", "Ana", "Lopez", "ana@acme.fr")
    }];
    w.target = vec![Person {
        custom: rows(vec![
            row("Security", 100.0, 60.0),
            row("Old course", 5.0, 0.0),
        ]),
        ..Person::new("acct-1")
    }];
    w.link("1", "acct-1");
    // The flow wrote both target rows (it only changes or removes its own).
    w.written_rows.insert("acct-1", "e_formation", "Security");
    w.written_rows.insert("acct-1", "e_formation", "Old course");
    let text = w.plan().to_string();
    let expected = "      e_formation: + row \"GDPR basics\" (e_progress 80, e_score 0)\n\
                    \x20     e_formation: ~ row \"Security\" e_score 60 -> 75\n\
                    \x20     e_formation: - row \"Old course\"\n";
    assert!(text.contains(expected), "{text}");
}
