//! One test per core-decided behaviour of DESIGN.md §7 (the seeds), plus
//! the shared rules of §2. Each test builds a small world, plans, and where
//! it matters applies the plan to the in-memory target and plans again.

mod support;

use muster_core::{
    Action, ActionKind, CorrelationKey, Coverage, Date, Field, FieldRef, FieldValue, Gender, Guard,
    ManagerMatch, Mapping, Person, PlanError, Policy, Rule, Template, Threshold,
};
use support::*;

fn leapsome() -> Policy {
    Policy {
        reactivate: true,
        invite_on_create: true,
        ..Policy::default()
    }
}

fn kinds(w: &World) -> Vec<String> {
    w.summary()
}

// ---------------------------------------------------------------- Leapsome

#[test]
fn leapsome_creates_an_account_for_every_new_and_existing_employee() {
    let mut w = World::new(leapsome());
    w.source = vec![
        person("1", "Ana", "Lopez", "ana@acme.fr"),
        person("2", "Ben", "Roy", "ben@acme.fr"),
    ];
    assert_eq!(
        kinds(&w),
        ["create 1 (new_person)", "create 2 (new_person)"]
    );
    assert_eq!(w.sync(), 2);
    assert_eq!(w.target.len(), 2);
    assert_eq!(
        w.target_of("1").unwrap().work_email.as_deref(),
        Some("ana@acme.fr")
    );
    // A new hire later is created too; the existing ones are left alone.
    w.source.push(person("3", "Cem", "Ak", "cem@acme.fr"));
    assert_eq!(kinds(&w), ["create 3 (new_person)"]);
}

#[test]
fn leapsome_syncs_name_email_birthday_dates_title_gender_and_employee_number() {
    let mut w = World::new(leapsome());
    w.source = vec![person("1", "Ana", "Lopez", "ana@acme.fr")];
    w.sync();
    let p = &mut w.source[0];
    p.given_name = Some("Anna".into());
    p.family_name = Some("López".into());
    p.work_email = Some("anna@acme.fr".into());
    p.birth_date = Some(day("1990-05-17"));
    p.start_date = Some(day("2020-02-01"));
    p.end_date = Some(day("2027-01-31"));
    p.job_title = Some("CTO".into());
    p.gender = Some(Gender::Female);
    p.employee_number = Some("E-17".into());
    let plan = w.plan();
    let [Action::Update { changes, .. }] = plan.actions() else {
        panic!("expected one update, got {:?}", plan.actions());
    };
    let expected: Vec<&str> = SYNCED.iter().map(|f| f.name()).collect();
    let mut got = names(changes);
    got.sort();
    let mut want = expected.clone();
    want.sort();
    assert_eq!(got, want);
    drop(plan);
    w.sync();
    let acc = w.target_of("1").unwrap();
    assert_eq!(acc.family_name.as_deref(), Some("López"));
    assert_eq!(acc.gender, Some(Gender::Female));
    assert!(w.plan().is_noop());
}

#[test]
fn leapsome_syncs_the_manager_even_one_created_in_the_same_run() {
    let mut w = World::new(leapsome());
    let mut ana = person("1", "Ana", "Lopez", "ana@acme.fr");
    ana.manager_id = Some("2".into());
    w.source = vec![ana, person("2", "Ben", "Roy", "ben@acme.fr")];
    // Managers first: Ben (2) is created before Ana (1), who reports to him.
    assert_eq!(
        kinds(&w),
        [
            "create 2 (new_person)",
            "create 1 (new_person)",
            "set_manager 1 (manager_changed)"
        ]
    );
    w.sync();
    let ben = w.target_of("2").unwrap().id.clone();
    assert_eq!(w.target_of("1").unwrap().manager_id, Some(ben));
    // A manager change is one SetManager; removing the manager clears it.
    w.source.push(person("3", "Cem", "Ak", "cem@acme.fr"));
    w.sync();
    w.source[0].manager_id = Some("3".into());
    assert_eq!(kinds(&w), ["set_manager 1 (manager_changed)"]);
    w.sync();
    w.source[0].manager_id = None;
    w.sync();
    assert_eq!(w.target_of("1").unwrap().manager_id, None);
    assert!(w.plan().is_noop());
}

#[test]
fn leapsome_reports_a_manager_that_has_no_account() {
    let mut w = World::new(leapsome());
    let mut ana = person("1", "Ana", "Lopez", "ana@acme.fr");
    ana.manager_id = Some("99".into());
    w.source = vec![ana];
    assert_eq!(
        kinds(&w),
        ["create 1 (new_person)", "skip 1 (manager_out_of_scope)"]
    );
}

#[test]
fn leapsome_creates_a_team_per_department_and_assigns_members() {
    let mut w = World::new(leapsome());
    w.departments = vec![group("10", "Engineering"), group("20", "Sales")];
    let mut ana = person("1", "Ana", "Lopez", "ana@acme.fr");
    ana.department_id = Some("10".into());
    let mut ben = person("2", "Ben", "Roy", "ben@acme.fr");
    ben.department_id = Some("10".into());
    w.source = vec![ana, ben];
    let plan = w.plan();
    let steps = plan.steps();
    let adds: Vec<_> = steps
        .iter()
        .filter(|s| s.kind == ActionKind::AddMembers)
        .collect();
    assert_eq!(plan.counts().get(ActionKind::CreateGroup), 2);
    assert_eq!(adds.len(), 1);
    assert_eq!(adds[0].label, "Engineering");
    assert_eq!(adds[0].members, ["1", "2"]);
    drop(plan);
    w.sync();
    let eng = w.teams.iter().find(|t| t.name == "Engineering").unwrap();
    assert_eq!(eng.members.len(), 2);
    assert!(w.plan().is_noop());
    // Moving Ben to Sales moves him between teams.
    w.source[1].department_id = Some("20".into());
    let (eng, sales) = (&w.group_links[0].target_id, &w.group_links[1].target_id);
    let mut summary = kinds(&w);
    summary.sort();
    assert_eq!(
        summary,
        [
            format!("add_members {sales} (membership_changed)"),
            format!("remove_members {eng} (membership_changed)"),
        ]
    );
    w.sync();
    assert!(w.plan().is_noop());
}

#[test]
fn leapsome_never_touches_teams_created_by_hand() {
    let mut w = World::new(leapsome());
    w.departments = vec![group("10", "Engineering")];
    let mut ana = person("1", "Ana", "Lopez", "ana@acme.fr");
    ana.department_id = Some("10".into());
    w.source = vec![ana];
    w.sync();
    // A manual team, with Ana in it, and a manual team named like a department.
    let ana_id = w.target_of("1").unwrap().id.clone();
    let mut manual = group("m-1", "Book club");
    manual.members = vec![ana_id.clone()];
    w.teams.push(manual.clone());
    w.departments.push(group("20", "Sales"));
    w.teams.push(group("m-2", "Sales"));
    let plan = w.plan();
    for a in plan.actions() {
        if let Action::RenameGroup { target, .. } | Action::RemoveMembers { group: target, .. } = a
        {
            assert!(
                !plan.input().target.groups[*target].id.starts_with("m-"),
                "{a:?}"
            );
        }
    }
    assert_eq!(kinds(&w), ["conflict 20 (group_name_taken)"]);
    drop(plan);
    w.sync();
    assert_eq!(w.teams.iter().find(|t| t.id == "m-1"), Some(&manual));
}

#[test]
fn leapsome_lucca_created_teams_follow_lucca_overwriting_manual_edits() {
    let mut w = World::new(leapsome());
    w.departments = vec![group("10", "Engineering")];
    let mut ana = person("1", "Ana", "Lopez", "ana@acme.fr");
    ana.department_id = Some("10".into());
    w.source = vec![ana, person("2", "Ben", "Roy", "ben@acme.fr")];
    w.sync();
    // Someone renames our team and adds Ben to it by hand in Leapsome.
    let ben_id = w.target_of("2").unwrap().id.clone();
    w.teams[0].name = "Eng (old)".into();
    w.teams[0].members.push(ben_id);
    assert_eq!(
        kinds(&w),
        [
            "rename_group 10 (department_renamed)".to_string(),
            format!("remove_members {} (membership_changed)", w.teams[0].id)
        ]
    );
    // The department itself is renamed in Lucca: the team follows.
    w.departments[0].name = "Platform".into();
    w.sync();
    assert_eq!(w.teams[0].name, "Platform");
    assert_eq!(w.teams[0].members.len(), 1);
    assert!(w.plan().is_noop());
}

#[test]
fn leapsome_overwrites_manual_edits_of_synced_attributes() {
    let mut w = World::new(leapsome());
    w.source = vec![person("1", "Ana", "Lopez", "ana@acme.fr")];
    w.sync();
    w.target[0].job_title = Some("Queen of everything".into());
    w.target[0].given_name = Some("Annie".into());
    let plan = w.plan();
    let [Action::Update { changes, .. }] = plan.actions() else {
        panic!("{:?}", plan.actions())
    };
    assert_eq!(names(changes), ["given_name", "job_title"]);
    drop(plan);
    w.sync();
    assert_eq!(w.target[0].job_title, None);
    assert_eq!(w.target[0].given_name.as_deref(), Some("Ana"));
}

#[test]
fn leapsome_does_not_touch_fields_the_flow_does_not_own() {
    let mut policy = leapsome();
    policy.owned.remove(&Field::JobTitle.into());
    let mut w = World::new(policy);
    w.source = vec![person("1", "Ana", "Lopez", "ana@acme.fr")];
    w.sync();
    w.target[0].job_title = Some("Set in Leapsome".into());
    w.target[0]
        .custom
        .insert("e_x".into(), FieldValue::Bool(true));
    assert!(w.plan().is_noop());
}

#[test]
fn leapsome_reactivates_a_rehired_person_when_enabled() {
    let mut w = World::new(leapsome());
    w.source = vec![person("1", "Ana", "Lopez", "ana@acme.fr")];
    w.sync();
    w.source[0].active = false; // parental leave
    assert_eq!(kinds(&w), ["deactivate 1 (inactive_in_source)"]);
    w.sync();
    assert!(!w.target[0].active);
    w.source[0].active = true;
    assert_eq!(kinds(&w), ["reactivate 1 (active_again)"]);
    w.sync();
    assert!(w.target[0].active);
    assert!(w.plan().is_noop());
}

#[test]
fn leapsome_leaves_a_rehired_person_deactivated_when_reactivation_is_off() {
    let mut w = World::new(Policy::default());
    w.source = vec![person("1", "Ana", "Lopez", "ana@acme.fr")];
    w.sync();
    w.source[0].end_date = Some(day("2025-12-31"));
    w.sync();
    assert!(!w.target[0].active);
    w.source[0].end_date = None;
    assert_eq!(kinds(&w), ["skip 1 (reactivation_disabled)"]);
    assert!(w.plan().is_noop());
}

#[test]
fn leapsome_creates_no_account_without_a_start_date() {
    let mut w = World::new(leapsome());
    let mut ana = person("1", "Ana", "Lopez", "ana@acme.fr");
    ana.start_date = None;
    w.source = vec![ana];
    assert_eq!(kinds(&w), ["skip 1 (no_start_date)"]);
    let plan = w.plan();
    assert_eq!(
        plan.explain(&plan.actions()[0].reason()),
        "no start date: no account is created without one"
    );
}

#[test]
fn leapsome_creates_no_new_account_when_the_email_is_already_used_by_another_account() {
    let mut w = World::new(leapsome());
    w.source = vec![person("1", "Ana", "Lopez", "ana@acme.fr")];
    w.sync();
    // Person 2 (new) has the email of Ana's (linked) account.
    w.source.push(person("2", "Ana", "Lopez-2", "ANA@acme.fr "));
    assert_eq!(kinds(&w), ["conflict 2 (key_taken)"]);
    let plan = w.plan();
    let text = plan.explain(&plan.actions()[0].reason());
    assert!(text.contains("already used by account"), "{text}");
    // Also when email is not a correlation key for the flow.
    let mut w2 = World::new(Policy {
        correlation: vec![CorrelationKey::EmployeeNumber],
        ..leapsome()
    });
    w2.target = vec![person("x-1", "Someone", "Else", "ana@acme.fr")];
    w2.source = vec![person("1", "Ana", "Lopez", "ana@acme.fr")];
    assert_eq!(kinds(&w2), ["conflict 1 (key_taken)"]);
}

#[test]
fn leapsome_accounts_become_active_only_once_the_start_date_is_reached() {
    let mut w = World::new(leapsome());
    let mut ana = person("1", "Ana", "Lopez", "ana@acme.fr");
    ana.start_date = Some(day("2026-03-09"));
    w.source = vec![ana];
    assert_eq!(kinds(&w), ["skip 1 (not_started_yet)"]);
    w.today = day("2026-03-09");
    assert_eq!(kinds(&w), ["create 1 (new_person)"]);
    // With pre-start days the account is prepared ahead of time.
    w.policy.pre_start_days = 7;
    w.today = day("2026-03-02");
    assert_eq!(kinds(&w), ["create 1 (new_person)"]);
}

#[test]
fn leapsome_deactivates_once_the_end_date_has_passed() {
    let mut w = World::new(leapsome());
    w.source = vec![person("1", "Ana", "Lopez", "ana@acme.fr")];
    w.sync();
    w.source[0].end_date = Some(w.today);
    // The last day is still a working day: the end date is synced, no more.
    assert_eq!(kinds(&w), ["update 1 (owned_fields_differ)"]);
    w.sync();
    w.today = w.today.add_days(1);
    assert_eq!(kinds(&w), ["deactivate 1 (end_date_passed)"]);
}

#[test]
fn leapsome_never_deletes_people_not_active_in_lucca_are_deactivated() {
    let mut w = World::new(leapsome());
    w.source = vec![
        person("1", "Ana", "Lopez", "ana@acme.fr"),
        person("2", "Ben", "Roy", "ben@acme.fr"),
    ];
    w.sync();
    w.source[0].active = false;
    w.source.pop(); // Ben vanished from the (complete) source
    let summary = kinds(&w);
    assert_eq!(summary.len(), 2);
    assert!(summary[0].starts_with("deactivate"));
    assert!(
        summary
            .iter()
            .any(|s| s.ends_with("(vanished_from_source)"))
    );
    w.sync();
    assert_eq!(w.target.len(), 2, "accounts are deactivated, never removed");
    assert!(w.target.iter().all(|a| !a.active));
}

// ---------------------------------------------------------------- Cards

fn cards() -> Policy {
    Policy {
        correlation: vec![CorrelationKey::WorkEmail],
        ..Policy::default()
    }
}

#[test]
fn cards_matches_by_professional_email_which_must_be_present_and_unique() {
    let mut w = World::new(cards());
    let mut no_mail = person("1", "Ana", "Lopez", "");
    no_mail.work_email = None;
    w.source = vec![
        no_mail,
        person("2", "Ben", "Roy", "shared@acme.fr"),
        person("3", "Cem", "Ak", "Shared@acme.fr"),
        person("4", "Dan", "Oz", "dan@acme.fr"),
    ];
    assert_eq!(
        kinds(&w),
        [
            "create 4 (new_person)",
            "skip 1 (missing_field)",
            "conflict 2 (duplicate_in_source)",
            "conflict 3 (duplicate_in_source)",
        ]
    );
}

#[test]
fn cards_links_an_existing_user_with_the_same_email_instead_of_creating() {
    let mut w = World::new(cards());
    w.target = vec![person("c-9", "Ana", "L.", " Ana@Acme.fr")];
    w.source = vec![person("1", "Ana", "Lopez", "ana@acme.fr")];
    assert_eq!(
        kinds(&w),
        ["link 1 (matched)", "update 1 (owned_fields_differ)"]
    );
    w.sync();
    assert_eq!(w.target.len(), 1, "linked, not created");
    assert_eq!(w.target_of("1").unwrap().id, "c-9");
    assert!(w.plan().is_noop());
}

/// A Kelvin sign `K` (U+212A) lower-cases to `k`: without the look-alike
/// check `marK@acme.fr` would silently adopt the unlinked `mark@acme.fr`.
#[test]
fn a_key_with_a_compatibility_character_is_a_conflict_not_a_link() {
    let mut w = World::new(cards());
    w.target = vec![person("c-1", "Mark", "Roy", "mark@acme.fr")];
    w.source = vec![person("1", "Mark", "Roy", "mar\u{212A}@acme.fr")];
    assert_eq!(kinds(&w), ["conflict 1 (lookalike_key)"]);
    let plan = w.plan();
    let text = plan.to_string();
    assert!(text.contains("U+212A"), "{text}");
    assert_eq!(w.sync(), 0);
    assert_eq!(w.target.len(), 1, "nothing created, nothing adopted");
    // The plain key still links.
    w.source[0].work_email = Some("Mark@acme.fr".into());
    assert_eq!(kinds(&w), ["link 1 (matched)"]);
}

/// A Cyrillic `а` (U+0430) folds to nothing Latin: without the check
/// `mаrk@acme.fr` would be created next to `mark@acme.fr`.
#[test]
fn a_key_mixing_scripts_is_a_conflict_not_a_new_account() {
    let mut w = World::new(cards());
    w.target = vec![person("c-1", "Mark", "Roy", "mark@acme.fr")];
    w.source = vec![
        person("1", "Mark", "Roy", "m\u{0430}rk@acme.fr"),
        // One script per label is fine: a Cyrillic address is not a look-alike.
        person("2", "Маша", "Петрова", "маша@почта.рф"),
        person("3", "Élodie", "Faure", "Élodie@acme.fr"),
    ];
    assert_eq!(
        kinds(&w),
        [
            "create 2 (new_person)",
            "create 3 (new_person)",
            "conflict 1 (lookalike_key)",
        ]
    );
    w.sync();
    assert_eq!(w.target.len(), 3);
    assert!(w.target_of("1").is_none());
}

/// The check covers the target side too: an account whose key is a
/// look-alike of the person's is reported, not adopted.
#[test]
fn an_account_with_a_lookalike_key_is_not_adopted() {
    let mut w = World::new(cards());
    w.target = vec![person("c-1", "Mark", "Roy", "\u{FF4D}ark@acme.fr")];
    w.source = vec![person("1", "Mark", "Roy", "mark@acme.fr")];
    assert_eq!(kinds(&w), ["conflict 1 (lookalike_key)"]);
    let text = w.plan().to_string();
    assert!(text.contains("account c-1"), "{text}");
}

#[test]
fn cards_departments_become_groups_of_the_same_name() {
    let mut w = World::new(cards());
    w.departments = vec![group("d-1", "Marketing")];
    let mut ana = person("1", "Ana", "Lopez", "ana@acme.fr");
    ana.department_id = Some("d-1".into());
    w.source = vec![ana];
    w.sync();
    assert_eq!(w.teams.len(), 1);
    assert_eq!(w.teams[0].name, "Marketing");
    assert_eq!(w.teams[0].members, [w.target_of("1").unwrap().id.clone()]);
}

#[test]
fn cards_two_accounts_with_one_email_is_a_conflict_not_a_guess() {
    let mut w = World::new(cards());
    w.target = vec![
        person("c-1", "Ana", "Lopez", "ana@acme.fr"),
        person("c-2", "Ana", "Lopez", "ana@acme.fr"),
    ];
    w.source = vec![person("1", "Ana", "Lopez", "ana@acme.fr")];
    assert_eq!(kinds(&w), ["conflict 1 (ambiguous)"]);
}

// ------------------------------------------------- inbound, create-only flows

fn flatchr_mapping() -> Mapping {
    Mapping::new(vec![
        Rule::Coalesce {
            field: Field::WorkEmail.into(),
            from: vec![Field::WorkEmail.into(), Field::PersonalEmail.into()],
        },
        Rule::Template {
            field: Field::Login.into(),
            pattern: Template::LOGIN_DEFAULT.into(),
            keep_existing: false,
        },
        Rule::Default {
            field: Field::LegalEntityId.into(),
            value: FieldValue::Text("1".into()),
        },
        Rule::Default {
            field: Field::DepartmentId.into(),
            value: FieldValue::Text("4".into()),
        },
        Rule::Default {
            field: FieldRef::parse("role_principal_id"),
            value: FieldValue::Text("2".into()),
        },
    ])
}

fn inbound() -> Policy {
    let mut p = Policy::create_only();
    p.required_on_create = [
        "work_email",
        "legal_entity_id",
        "department_id",
        "role_principal_id",
    ]
    .into_iter()
    .map(FieldRef::parse)
    .collect();
    p.owned.insert(FieldRef::parse("role_principal_id"));
    p
}

fn candidate(id: &str) -> Person {
    Person {
        given_name: Some("Élodie".into()),
        family_name: Some("de la Tour".into()),
        personal_email: Some("elodie@gmail.com".into()),
        phone: Some("+33 6 12 34 56 78".into()),
        start_date: Some(day("2026-04-01")),
        contract_type: Some("CDI".into()),
        ..Person::new(id)
    }
}

#[test]
fn flatchr_login_is_first_letter_of_first_name_plus_last_name() {
    let mapped = flatchr_mapping().apply(&candidate("c-1")).unwrap();
    assert_eq!(mapped.login.as_deref(), Some("edelatour"));
    let custom = Mapping::new(vec![Rule::Template {
        field: Field::Login.into(),
        pattern: "{given_name}.{family_name}|login".into(),
        keep_existing: false,
    }]);
    assert_eq!(
        custom.apply(&candidate("c-1")).unwrap().login.as_deref(),
        Some("elodie.delatour")
    );
}

#[test]
fn flatchr_work_email_falls_back_to_personal_email() {
    let mapped = flatchr_mapping().apply(&candidate("c-1")).unwrap();
    assert_eq!(mapped.work_email.as_deref(), Some("elodie@gmail.com"));
    let known = Person {
        work_email: Some("e.delatour@acme.fr".into()),
        ..candidate("c-2")
    };
    let mapped = flatchr_mapping().apply(&known).unwrap();
    assert_eq!(mapped.work_email.as_deref(), Some("e.delatour@acme.fr"));
}

#[test]
fn inbound_defaults_fill_the_mandatory_lucca_fields() {
    let mut w = World::new(inbound());
    w.today = day("2026-04-01");
    // Without defaults the mandatory fields are missing: a clear skip.
    w.source = vec![Mapping::new(vec![]).apply(&candidate("c-1")).unwrap()];
    assert_eq!(kinds(&w), ["skip c-1 (missing_field)"]);
    let plan = w.plan();
    assert_eq!(
        plan.explain(&plan.actions()[0].reason()),
        "`work_email` is required to create an account"
    );
    drop(plan);
    // With the flow's mapping (defaults, email fallback) it is created.
    w.source = vec![flatchr_mapping().apply(&candidate("c-1")).unwrap()];
    assert_eq!(kinds(&w), ["create c-1 (new_person)"]);
    w.sync();
    let created = w.target_of("c-1").unwrap();
    assert_eq!(created.legal_entity_id.as_deref(), Some("1"));
    assert_eq!(
        created.custom.get("role_principal_id"),
        Some(&FieldValue::Text("2".into()))
    );
}

#[test]
fn inbound_flow_is_create_only_it_never_updates_or_deactivates() {
    let mut w = World::new(inbound());
    w.today = day("2026-04-01");
    w.source = vec![flatchr_mapping().apply(&candidate("c-1")).unwrap()];
    w.sync();
    // The candidate changes in the recruiting tool, then disappears.
    w.source[0].job_title = Some("Recruiter".into());
    assert!(w.plan().is_noop());
    w.source[0].end_date = Some(day("2026-03-01"));
    assert!(w.plan().is_noop());
    w.source.clear();
    assert!(w.plan().is_noop());
    assert!(w.plan().actions().is_empty());
}

#[test]
fn inbound_flow_does_not_duplicate_someone_already_in_lucca() {
    let mut w = World::new(inbound());
    w.today = day("2026-04-01");
    w.target = vec![person(
        "lucca-5",
        "Élodie",
        "de la Tour",
        "elodie@gmail.com",
    )];
    w.source = vec![flatchr_mapping().apply(&candidate("c-1")).unwrap()];
    assert_eq!(kinds(&w), ["skip c-1 (already_exists)"]);
}

#[test]
fn teelt_custom_field_maps_to_an_establishment() {
    let mapping = Mapping::new(vec![Rule::ValueMap {
        from: FieldRef::parse("site"),
        to: Field::LegalEntityId.into(),
        values: [("Paris HQ".to_string(), "3".to_string())]
            .into_iter()
            .collect(),
        fallback: None,
    }]);
    let mut talent = candidate("t-1");
    talent
        .custom
        .insert("site".into(), FieldValue::Text("Paris HQ".into()));
    assert_eq!(
        mapping.apply(&talent).unwrap().legal_entity_id.as_deref(),
        Some("3")
    );
    talent
        .custom
        .insert("site".into(), FieldValue::Text("Nowhere".into()));
    let err = mapping.apply(&talent).unwrap_err();
    assert_eq!(err.record, "t-1");
    assert_eq!(err.field, FieldRef::parse("site"));
}

// ---------------------------------------------------------------- shared rules

#[test]
fn a_changes_only_source_is_refused_for_a_flow_that_can_deactivate() {
    let mut w = World::new(leapsome());
    w.source = vec![person("1", "Ana", "Lopez", "ana@acme.fr")];
    w.sync();
    w.source.clear();
    w.source_coverage = Coverage::Changes;
    assert_eq!(
        muster_core::plan(&w.input()).unwrap_err(),
        PlanError::IncompleteSource
    );
    // The same read in full is a leaver (held by the guard or not).
    w.source_coverage = Coverage::Full;
    assert_eq!(kinds(&w), ["deactivate acct-1 (vanished_from_source)"]);
}

#[test]
fn a_target_read_must_be_full() {
    let mut w = World::new(inbound());
    w.source = vec![flatchr_mapping().apply(&candidate("c-1")).unwrap()];
    let mut input = w.input();
    input.target.coverage = Coverage::Changes;
    assert_eq!(
        muster_core::plan(&input).unwrap_err(),
        PlanError::IncompleteTarget
    );
}

#[test]
fn a_create_only_flow_plans_from_changes_only_for_the_people_present() {
    let mut w = World::new(inbound());
    w.today = day("2026-04-01");
    let mut first = candidate("c-1");
    first.personal_email = Some("first@gmail.com".into());
    w.source = vec![flatchr_mapping().apply(&first).unwrap()];
    w.sync();
    assert_eq!(w.target.len(), 1);
    // The next read holds only what changed since: a new candidate.
    let mut second = candidate("c-2");
    second.personal_email = Some("second@gmail.com".into());
    w.source = vec![flatchr_mapping().apply(&second).unwrap()];
    w.source_coverage = Coverage::Changes;
    assert_eq!(kinds(&w), ["create c-2 (new_person)"]);
    w.sync();
    assert_eq!(w.target.len(), 2);
    // Nobody present: nothing to do, and nobody is touched.
    w.source.clear();
    assert!(w.plan().actions().is_empty());
}

/// A flow that may update but not deactivate, reading changes: the absent
/// people keep their accounts, their team membership, and stay the
/// managers their reports point at.
#[test]
fn a_changes_only_read_leaves_absent_people_alone_and_resolves_them_as_managers() {
    let mut policy = leapsome();
    policy.allowed.deactivate = false;
    let mut w = World::new(policy);
    w.departments = vec![group("10", "Engineering")];
    let mut ana = person("1", "Ana", "Lopez", "ana@acme.fr");
    ana.department_id = Some("10".into());
    let mut ben = person("2", "Ben", "Roy", "ben@acme.fr");
    ben.department_id = Some("10".into());
    ben.manager_id = Some("1".into());
    let mut cem = person("3", "Cem", "Ak", "cem@acme.fr");
    cem.department_id = Some("10".into());
    w.source = vec![ana, ben.clone(), cem];
    w.sync();
    assert!(w.plan().is_noop());
    let ana_account = w.target_of("1").unwrap().id.clone();

    // Only Ben changed: a new title, and his manager is now Cem.
    ben.job_title = Some("Lead".into());
    w.source = vec![ben.clone()];
    w.source_coverage = Coverage::Changes;
    assert_eq!(kinds(&w), ["update 2 (owned_fields_differ)"]);
    ben.manager_id = Some("3".into());
    w.source = vec![ben];
    assert_eq!(
        kinds(&w),
        [
            "update 2 (owned_fields_differ)",
            "set_manager 2 (manager_changed)"
        ]
    );
    w.sync();
    let cem_account = w.target_of("3").unwrap().id.clone();
    assert_eq!(w.target_of("2").unwrap().manager_id, Some(cem_account));
    assert!(w.plan().is_noop());
    // Back to Ana, who is not in the read: resolved through her link.
    w.source[0].manager_id = Some("1".into());
    assert_eq!(kinds(&w), ["set_manager 2 (manager_changed)"]);
    w.sync();
    assert_eq!(w.target_of("2").unwrap().manager_id, Some(ana_account));
    let team = &w.teams[0];
    assert_eq!(team.members.len(), 3, "nobody left the team");
    assert!(w.target.iter().all(|a| a.active));
}

#[test]
fn a_held_source_record_keeps_its_account_as_it_is_and_the_plan_says_why() {
    let mut w = World::new(leapsome());
    w.departments = vec![group("10", "Engineering")];
    let mut ana = person("1", "Ana", "Lopez", "ana@acme.fr");
    ana.department_id = Some("10".into());
    let mut ben = person("2", "Ben", "Roy", "ben@acme.fr");
    ben.department_id = Some("10".into());
    ben.manager_id = Some("1".into());
    w.source = vec![ana, ben];
    w.sync();
    let ana_account = w.target_of("1").unwrap().id.clone();
    let team = w.teams[0].id.clone();

    // Ana's record cannot be mapped this run: she is held, not gone.
    w.source.remove(0);
    w.held = vec!["1".into()];
    let plan = w.plan();
    let steps = plan.steps();
    assert_eq!(steps.len(), 1, "{steps:?}");
    assert_eq!(steps[0].kind, ActionKind::Skip);
    assert_eq!(steps[0].reason, "source_record_unusable");
    assert_eq!(steps[0].source_id.as_deref(), Some("1"));
    assert_eq!(steps[0].target_id.as_deref(), Some(ana_account.as_str()));
    assert!(steps[0].explanation.contains("source record 1"));
    assert!(plan.is_noop());
    drop(plan);

    // Ben's manager reference to her still resolves to her account.
    w.source[0].manager_id = None;
    assert_eq!(
        kinds(&w),
        [
            "set_manager 2 (manager_changed)",
            "skip 1 (source_record_unusable)"
        ]
    );
    w.source[0].manager_id = Some("1".into());

    // Without the hold, the same source makes her a leaver, and Ben's
    // manager someone without an account.
    w.held.clear();
    assert_eq!(
        kinds(&w),
        [
            format!("remove_members {team} (membership_changed)"),
            format!("deactivate {ana_account} (vanished_from_source)"),
            "skip 2 (manager_out_of_scope)".to_string(),
        ]
    );
}

#[test]
fn the_watermark_advances_only_after_a_run_that_did_everything() {
    let mut w = World::new(inbound());
    w.today = day("2026-04-01");
    w.source_coverage = Coverage::Changes;
    w.source = vec![flatchr_mapping().apply(&candidate("c-1")).unwrap()];
    assert!(muster_core::read::may_advance(&w.plan(), true));
    assert!(!muster_core::read::may_advance(&w.plan(), false));
    // A candidate who starts later would never be read again.
    w.today = day("2026-03-01");
    assert!(!muster_core::read::may_advance(&w.plan(), true));
    // Nor would a record that could not be used.
    w.today = day("2026-04-01");
    w.held = vec!["c-9".into()];
    assert!(!muster_core::read::may_advance(&w.plan(), true));
}

#[test]
fn the_guard_holds_a_source_that_suddenly_returns_nobody() {
    let mut w = World::new(leapsome());
    w.source = (0..100)
        .map(|i| {
            person(
                &i.to_string(),
                "P",
                &i.to_string(),
                &format!("p{i}@acme.fr"),
            )
        })
        .collect();
    w.sync();
    let everyone = w.source.clone();
    w.source.clear();
    let plan = w.plan();
    assert!(plan.is_held());
    assert_eq!(plan.counts().get(ActionKind::Deactivate), 100);
    assert_eq!(plan.breaches().len(), 2, "{:?}", plan.breaches());
    assert!(plan.to_string().contains("HELD by the guard"));
    drop(plan);
    // 10 % gone is over the default 10 % ratio? 10 of 100 is not > 10 %.
    w.source = everyone[10..].to_vec();
    assert!(!w.plan().is_held());
    w.source = everyone[11..].to_vec();
    assert!(w.plan().is_held());
    // Thresholds exist for any kind, e.g. mass updates.
    w.source = everyone.clone();
    w.policy.guard = Guard::off().with(
        ActionKind::Update,
        Threshold {
            max: Some(5),
            ..Threshold::default()
        },
    );
    for p in &mut w.source {
        p.job_title = Some("Renamed".into());
    }
    assert!(w.plan().is_held());
}

#[test]
fn a_duplicate_source_id_is_a_conflict_and_its_account_is_left_alone() {
    let mut w = World::new(leapsome());
    w.source = vec![person("1", "Ana", "Lopez", "ana@acme.fr")];
    w.sync();
    w.source.push(person("1", "Ana", "Twin", "twin@acme.fr"));
    assert_eq!(
        kinds(&w),
        ["conflict 1 (duplicate_id)", "conflict 1 (duplicate_id)"]
    );
}

#[test]
fn a_link_to_a_vanished_account_is_a_conflict_not_a_second_account() {
    let mut w = World::new(leapsome());
    w.source = vec![person("1", "Ana", "Lopez", "ana@acme.fr")];
    w.sync();
    w.target.clear();
    assert_eq!(kinds(&w), ["conflict 1 (linked_account_missing)"]);
}

#[test]
fn the_plan_reads_like_a_terraform_plan() {
    let mut w = World::new(leapsome());
    w.departments = vec![group("10", "Engineering")];
    let mut ana = person("1", "Ana", "Lopez", "ana@acme.fr");
    ana.department_id = Some("10".into());
    ana.manager_id = Some("2".into());
    w.source = vec![
        ana,
        person("2", "Ben", "Roy", "ben@acme.fr"),
        person("3", "Cem", "Ak", "cem@acme.fr"),
    ];
    w.sync();
    w.source[0].job_title = Some("CTO".into());
    w.source[2].end_date = Some(day("2026-01-31"));
    let mut dan = person("4", "Dan", "Oz", "dan@acme.fr");
    dan.start_date = None;
    w.source.push(dan);
    w.source.push(person("5", "Eve", "Ng", "eve@acme.fr"));
    insta::assert_snapshot!(w.plan().to_string());
    // One leaver of three is not held; a second one is (2 of 3 > 10 %).
    assert!(!w.plan().is_held());
    w.source[1].active = false;
    let plan = w.plan();
    assert!(plan.is_held());
    assert_eq!(
        plan.breaches()[0].to_string(),
        "2 deactivate of 3 linked accounts > limit 10%"
    );
}

#[test]
fn dates_are_parsed_the_way_lucca_writes_them() {
    assert_eq!(
        Date::parse("2014-09-01T00:00:00").unwrap(),
        Date::from_ymd(2014, 9, 1).unwrap()
    );
}

#[test]
fn plans_and_policies_serialise_for_plan_files_and_config() {
    let mut w = World::new(leapsome());
    w.source = vec![person("1", "Ana", "Lopez", "ana@acme.fr")];
    w.sync();
    w.source[0].job_title = Some("CTO".into());
    let steps = w.plan().steps();
    let json = serde_json::to_string(&steps).unwrap();
    assert_eq!(
        json,
        r#"[{"kind":"update","source_id":"1","target_id":"acct-1","label":"Ana Lopez <ana@acme.fr>","reason":"owned_fields_differ","explanation":"source wins on owned fields","changes":[{"field":"job_title","old":null,"new":{"type":"text","value":"CTO"}}]}]"#
    );
    let back: Vec<muster_core::Step> = serde_json::from_str(&json).unwrap();
    assert_eq!(back, steps);
    let policy = leapsome();
    let text = serde_json::to_string(&policy).unwrap();
    let parsed: Policy = serde_json::from_str(&text).unwrap();
    assert_eq!(parsed, policy);
    // Config-style partial policies fill in defaults.
    let partial: Policy =
        serde_json::from_str(r#"{"owned":["given_name","e_formation"],"reactivate":true}"#)
            .unwrap();
    assert!(partial.owned.contains(&FieldRef::parse("e_formation")));
    assert_eq!(partial.correlation, Policy::default().correlation);
}

/// Teelt gives a newcomer's manager by work email: with
/// `ManagerMatch::WorkEmail` the core matches it to the existing account
/// with that email, and a create-only flow still sets the manager of the
/// account it creates — and of nobody else.
#[test]
fn teelt_manager_by_work_email_is_the_existing_account_with_that_email() {
    let mut p = Policy::create_only();
    p.manager_match = ManagerMatch::WorkEmail;
    let mut w = World::new(p);
    w.target = vec![person("lucca-9", "Bea", "Boss", "Bea.Boss@acme.fr")];
    let mut talent = person("t-1", "Ana", "Lopez", "ana@acme.fr");
    talent.manager_id = Some(" bea.boss@ACME.fr ".into());
    let mut lost = person("t-2", "Cem", "Ak", "cem@acme.fr");
    lost.manager_id = Some("nobody@acme.fr".into());
    w.source = vec![talent, lost];
    assert_eq!(
        kinds(&w),
        [
            "create t-1 (new_person)",
            "create t-2 (new_person)",
            "set_manager t-1 (manager_changed)",
            "skip t-2 (manager_out_of_scope)"
        ]
    );
    w.sync();
    assert_eq!(
        w.target_of("t-1").unwrap().manager_id.as_deref(),
        Some("lucca-9")
    );
    assert_eq!(w.target_of("t-2").unwrap().manager_id, None);
    // Linked now: a create-only flow never sets their manager again, even
    // when the email later matches somebody.
    w.target
        .push(person("lucca-10", "No", "Body", "nobody@acme.fr"));
    assert!(w.plan().actions().is_empty(), "{:?}", kinds(&w));
}

/// Two accounts sharing the manager's email are no match: reported, never
/// a guess; nor is a deactivated account; with the default `SourceId` an
/// email is no manager at all.
#[test]
fn a_manager_email_shared_by_two_accounts_or_of_a_former_employee_is_reported() {
    let mut p = Policy::create_only();
    p.manager_match = ManagerMatch::WorkEmail;
    let mut w = World::new(p.clone());
    w.target = vec![
        person("lucca-1", "Bea", "Boss", "boss@acme.fr"),
        person("lucca-2", "Bob", "Boss", "BOSS@acme.fr"),
    ];
    let mut talent = person("t-1", "Ana", "Lopez", "ana@acme.fr");
    talent.manager_id = Some("boss@acme.fr".into());
    w.source = vec![talent.clone()];
    assert_eq!(
        kinds(&w),
        ["create t-1 (new_person)", "skip t-1 (manager_out_of_scope)"]
    );
    // A former employee (deactivated account) manages nobody new.
    let mut w = World::new(p.clone());
    let mut former = person("lucca-1", "Bea", "Boss", "boss@acme.fr");
    former.active = false;
    w.target = vec![former];
    w.source = vec![talent.clone()];
    assert_eq!(
        kinds(&w),
        ["create t-1 (new_person)", "skip t-1 (manager_out_of_scope)"]
    );
    p.manager_match = ManagerMatch::SourceId;
    let mut w = World::new(p);
    w.target = vec![person("lucca-1", "Bea", "Boss", "boss@acme.fr")];
    w.source = vec![talent];
    assert_eq!(
        kinds(&w),
        ["create t-1 (new_person)", "skip t-1 (manager_out_of_scope)"]
    );
}
