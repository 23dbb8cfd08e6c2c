//! The Leapsome connector end to end: the real `.wasm` plugin in the real runtime, its HTTP
//! through the real `muster-outbound` (loopback allowed), against the Leapsome simulator.

use std::sync::Arc;

use muster::runtime::{
    AccountRef, AccountUpdate, Capabilities, ConnectorError, Date, Field, FieldRef, Gender,
    GroupRename, ManagerChange, MemberChange, MemoryLog, NewGroup, Operation, Person, PluginError,
    PluginInstance, Runtime, RuntimeConfig, grant,
};
use muster_outbound::{Credential, Outbound, Policy, RetryPolicy};
use muster_sandbox::leapsome::{ENTERPRISE, INVITE_EXTENSION};
use muster_sandbox::{
    Directory, LeapsomeOptions, LeapsomeSim, ManagerOnRead, RateLimit, RejectRule, ScimUser,
};

fn runtime() -> Runtime {
    Runtime::new(RuntimeConfig {
        cache_dir: Some(
            std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("muster-plugin-cache"),
        ),
        ..RuntimeConfig::default()
    })
    .expect("runtime")
}

/// A simulator without rate limit (tests about something else) and a configured plugin.
struct Harness {
    sim: LeapsomeSim,
    plugin: PluginInstance,
}

fn options() -> LeapsomeOptions {
    LeapsomeOptions {
        rate_limit: None,
        ..LeapsomeOptions::default()
    }
}

fn connect(options: LeapsomeOptions, settings: &[(&str, &str)]) -> Harness {
    connect_with(options, settings, RetryPolicy::none(), None)
}

fn connect_with(
    options: LeapsomeOptions,
    settings: &[(&str, &str)],
    retry: RetryPolicy,
    token: Option<&str>,
) -> Harness {
    let sim = LeapsomeSim::start(options).expect("simulator");
    let outbound = Arc::new(
        Outbound::new(Policy {
            allow_loopback: true,
            retry,
            ..Policy::default()
        })
        .expect("policy"),
    );
    let plugin = runtime()
        .load_file(muster::plugins::path("muster-plugin-leapsome"))
        .expect("load the leapsome plugin");
    let mut plugin = plugin
        .instantiate(Capabilities {
            name: Some("leapsome".into()),
            http: outbound.clone(),
            log: Arc::new(MemoryLog::new()),
        })
        .expect("instantiate");
    let origin = sim.base_url().trim_end_matches("/scim/v1").to_string();
    let policy = grant(
        plugin.manifest(),
        &[origin.as_str()],
        vec![Credential::new("scim-token", token.unwrap_or(sim.token()))],
    )
    .expect("grant");
    outbound
        .set_plugin("leapsome", policy)
        .expect("register grant");
    let base_url = sim.base_url();
    let mut all: Vec<(String, String)> = vec![("base_url".into(), base_url)];
    all.extend(settings.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    plugin.configure(&all).expect("configure");
    Harness { sim, plugin }
}

fn date(year: i32, month: u8, day: u8) -> Date {
    Date { year, month, day }
}

fn blank(id: &str) -> Person {
    Person {
        id: id.into(),
        employee_number: None,
        given_name: None,
        family_name: None,
        work_email: None,
        personal_email: None,
        phone: None,
        login: None,
        birth_date: None,
        start_date: None,
        end_date: None,
        job_title: None,
        gender: None,
        department_id: None,
        manager_id: None,
        legal_entity_id: None,
        contract_type: None,
        active: true,
        custom_fields: Vec::new(),
    }
}

/// A source person with every field Leapsome can hold, and the three it cannot (phone,
/// contract type, legal entity: not in its published user schema).
fn full(id: &str, email: &str) -> Person {
    Person {
        employee_number: Some(format!("E-{id}")),
        given_name: Some("Zoé".into()),
        family_name: Some("Lefèvre".into()),
        work_email: Some(email.into()),
        personal_email: Some(format!("{id}@perso.example")),
        phone: Some("+33 1 23 45 67 89".into()),
        birth_date: Some(date(1988, 2, 29)),
        start_date: Some(date(2021, 9, 1)),
        end_date: Some(date(2030, 12, 31)),
        job_title: Some("Data engineer".into()),
        gender: Some(Gender::Female),
        legal_entity_id: Some("7".into()),
        contract_type: Some("CDI".into()),
        ..blank(id)
    }
}

fn create(h: &mut Harness, person: &Person) -> Result<String, PluginError> {
    h.plugin
        .apply(&Operation::Create(person.clone()))
        .map(|a| a.target_id)
}

fn account(h: &mut Harness, id: &str) -> Person {
    h.plugin
        .read_all_accounts()
        .expect("read accounts")
        .people
        .into_iter()
        .find(|p| p.id == id)
        .unwrap_or_else(|| panic!("account {id} not read back"))
}

fn connector_error(e: PluginError) -> ConnectorError {
    match e {
        PluginError::Connector { error, .. } => error,
        other => panic!("expected a connector error, got {other}"),
    }
}

#[test]
fn every_field_round_trips_through_create_and_read() {
    let mut h = connect(options(), &[]);
    let person = full("1042", "zoe.lefevre@sandbox.example");
    let id = create(&mut h, &person).expect("create");
    // Leapsome's POST keeps core attributes only: one POST, then one PATCH for the rest.
    let writes: Vec<(String, String)> = h
        .sim
        .request_log()
        .records
        .iter()
        .filter(|r| r.method != "GET")
        .map(|r| (r.method.clone(), r.url.clone()))
        .collect();
    assert_eq!(
        writes,
        [
            ("POST".to_string(), "/scim/v1/Users".to_string()),
            ("PATCH".to_string(), format!("/scim/v1/Users/{id}")),
        ]
    );
    let read = account(&mut h, &id);
    // A create sends no `emails`: the personal address (here outside the organisation's
    // domains, which Leapsome would refuse) is written only by an update listing it.
    let person = Person {
        personal_email: None,
        ..person
    };
    type Get = fn(&Person) -> String;
    let table: &[(&str, Get)] = &[
        ("employee-number", |p| format!("{:?}", p.employee_number)),
        ("given-name", |p| format!("{:?}", p.given_name)),
        ("family-name", |p| format!("{:?}", p.family_name)),
        ("work-email", |p| format!("{:?}", p.work_email)),
        ("personal-email", |p| format!("{:?}", p.personal_email)),
        ("birth-date", |p| format!("{:?}", p.birth_date)),
        ("start-date", |p| format!("{:?}", p.start_date)),
        ("end-date", |p| format!("{:?}", p.end_date)),
        ("job-title", |p| format!("{:?}", p.job_title)),
        ("gender", |p| format!("{:?}", p.gender)),
        ("active", |p| format!("{:?}", p.active)),
    ];
    for (field, get) in table {
        assert_eq!(get(&read), get(&person), "field {field}");
    }
    // Leapsome keeps no phone, contract type or legal entity: a create does not send them
    // (the simulator would drop them anyway) and a read has none.
    assert!(person.phone.is_some() && person.contract_type.is_some());
    assert_eq!(
        (read.phone, read.contract_type, read.legal_entity_id),
        (None, None, None)
    );
    // Leapsome's own id; the source id is the externalId; the login is the email.
    assert_ne!(read.id, person.id);
    assert_eq!(read.login.as_deref(), Some("zoe.lefevre@sandbox.example"));
    assert_eq!(read.manager_id, None);
    let stored = h
        .sim
        .user_by_external_id("1042")
        .expect("externalId is the source id");
    assert_eq!(stored.id, id);
    // What Leapsome stored, not what was sent.
    assert_eq!(stored.birthday.as_deref(), Some("1988-02-29"));
    assert_eq!(stored.gender.as_deref(), Some("female"));
    assert_eq!(stored.employee_number.as_deref(), Some("E-1042"));
    assert_eq!(stored.start_date.as_deref(), Some("2021-09-01"));
    assert_eq!(stored.end_date.as_deref(), Some("2030-12-31"));
    assert_eq!(stored.title.as_deref(), Some("Data engineer"));
    assert_eq!(
        stored.emails,
        vec![muster_sandbox::leapsome::Email::work(
            "zoe.lefevre@sandbox.example"
        )]
    );
    assert!(
        h.sim.invitations().is_empty(),
        "invitations are off by default"
    );
}

#[test]
fn absent_fields_stay_absent_and_misc_gender_is_diverse() {
    let mut h = connect(options(), &[]);
    let person = Person {
        work_email: Some("min@sandbox.example".into()),
        gender: Some(Gender::Diverse),
        ..blank("5")
    };
    let id = create(&mut h, &person).expect("create");
    let read = account(&mut h, &id);
    assert_eq!(read.gender, Some(Gender::Diverse));
    assert_eq!(
        (read.given_name, read.birth_date, read.end_date),
        (None, None, None)
    );
    assert_eq!(read.personal_email, None);
}

#[test]
fn update_writes_only_the_listed_fields() {
    // The personal addresses of this organisation are in one of its domains.
    let mut h = connect(
        LeapsomeOptions {
            allowed_domains: vec!["sandbox.example".into(), "perso.example".into()],
            ..options()
        },
        &[],
    );
    let id = create(&mut h, &full("1", "ann@sandbox.example")).expect("create");
    // Someone edits two attributes by hand in Leapsome.
    h.sim.with_state(|d| {
        let u = d.user_mut(&id).expect("user");
        u.title = Some("Manual title".into());
        u.birthday = Some("1970-01-01".into());
    });
    let desired = Person {
        job_title: Some("Lead engineer".into()),
        family_name: Some("Martin".into()),
        birth_date: Some(date(1988, 2, 29)),
        end_date: None,
        ..full("1", "ann@sandbox.example")
    };
    let fields = vec![
        FieldRef::Canonical(Field::JobTitle),
        FieldRef::Canonical(Field::FamilyName),
        FieldRef::Canonical(Field::EndDate),
    ];
    let applied = h
        .plugin
        .apply(&Operation::Update(AccountUpdate {
            id: id.clone(),
            person: desired,
            fields,
            rows: Vec::new(),
        }))
        .expect("update");
    assert_eq!(applied.target_id, id);
    let read = account(&mut h, &id);
    assert_eq!(read.job_title.as_deref(), Some("Lead engineer"));
    assert_eq!(read.family_name.as_deref(), Some("Martin"));
    assert_eq!(read.given_name.as_deref(), Some("Zoé"), "not listed: kept");
    assert_eq!(read.end_date, None, "listed and absent: cleared");
    assert_eq!(
        read.birth_date,
        Some(date(1970, 1, 1)),
        "not listed: the manual value stays"
    );
    assert_eq!(
        read.personal_email, None,
        "a create sends no personal email"
    );
    // A flow that owns the personal email writes it with an update that lists it.
    h.plugin
        .apply(&Operation::Update(AccountUpdate {
            id: id.clone(),
            person: full("1", "ann@sandbox.example"),
            fields: vec![FieldRef::Canonical(Field::PersonalEmail)],
            rows: Vec::new(),
        }))
        .expect("personal email in an allowed domain");
    let read = account(&mut h, &id);
    assert_eq!(read.personal_email.as_deref(), Some("1@perso.example"));
    // Changing the work email keeps the personal one.
    let moved = Person {
        work_email: Some("ann.martin@sandbox.example".into()),
        ..blank("1")
    };
    h.plugin
        .apply(&Operation::Update(AccountUpdate {
            id: id.clone(),
            person: moved,
            fields: vec![FieldRef::Canonical(Field::WorkEmail)],
            rows: Vec::new(),
        }))
        .expect("email change");
    let read = account(&mut h, &id);
    assert_eq!(
        read.work_email.as_deref(),
        Some("ann.martin@sandbox.example")
    );
    assert_eq!(read.login.as_deref(), Some("ann.martin@sandbox.example"));
    assert_eq!(read.personal_email.as_deref(), Some("1@perso.example"));
}

#[test]
fn deactivate_and_reactivate() {
    let mut h = connect(options(), &[]);
    let id = create(&mut h, &full("1", "ann@sandbox.example")).expect("create");
    h.plugin
        .apply(&Operation::Deactivate(AccountRef { id: id.clone() }))
        .expect("deactivate");
    assert!(!account(&mut h, &id).active);
    assert!(!h.sim.users()[0].active, "deactivated, never deleted");
    h.plugin
        .apply(&Operation::Reactivate(AccountRef { id: id.clone() }))
        .expect("reactivate");
    assert!(account(&mut h, &id).active);
    let e = h
        .plugin
        .apply(&Operation::Deactivate(AccountRef {
            id: "5f00000000000000000000ff".into(),
        }))
        .unwrap_err();
    assert_eq!(connector_error(e), ConnectorError::NotFound);
}

fn managers_round_trip(manager_on_read: ManagerOnRead) {
    let mut h = connect(
        LeapsomeOptions {
            manager_on_read,
            ..options()
        },
        &[],
    );
    let boss = create(&mut h, &full("10", "boss@sandbox.example")).expect("boss");
    let ann = create(&mut h, &full("11", "ann@sandbox.example")).expect("ann");
    h.plugin
        .apply(&Operation::SetManager(ManagerChange {
            id: ann.clone(),
            manager_id: Some(boss.clone()),
        }))
        .expect("set manager");
    assert_eq!(
        account(&mut h, &ann).manager_id.as_deref(),
        Some(boss.as_str())
    );
    assert_eq!(h.sim.users()[1].manager.as_deref(), Some(boss.as_str()));
    h.plugin
        .apply(&Operation::SetManager(ManagerChange {
            id: ann.clone(),
            manager_id: None,
        }))
        .expect("clear manager");
    assert_eq!(account(&mut h, &ann).manager_id, None);
    let e = h
        .plugin
        .apply(&Operation::SetManager(ManagerChange {
            id: ann.clone(),
            manager_id: Some("nobody".into()),
        }))
        .unwrap_err();
    assert!(
        matches!(connector_error(e), ConnectorError::Invalid(m) if m.contains("nobody")),
        "an unknown manager is a per-record error naming it"
    );
}

#[test]
fn manager_is_a_target_id_whether_leapsome_reads_it_as_external_id_or_id() {
    managers_round_trip(ManagerOnRead::ExternalIdElseId);
    managers_round_trip(ManagerOnRead::Id);
    managers_round_trip(ManagerOnRead::Email);
}

#[test]
fn an_update_of_fields_leapsome_cannot_hold_sends_nothing() {
    let mut h = connect(options(), &[]);
    let id = create(&mut h, &full("1", "ann@sandbox.example")).expect("create");
    h.sim.clear_request_log();
    let applied = h
        .plugin
        .apply(&Operation::Update(AccountUpdate {
            id: id.clone(),
            person: full("1", "ann@sandbox.example"),
            fields: vec![
                FieldRef::Canonical(Field::Login),
                FieldRef::Custom("e_level".into()),
                FieldRef::Canonical(Field::ManagerId),
            ],
            rows: Vec::new(),
        }))
        .expect("update");
    assert_eq!(applied.target_id, id);
    assert_eq!(h.sim.request_counts().writes, 0);
    // An unknown field name (`shoe-size`) can no longer be sent: contract
    // 0.2's field references are typed.
}

#[test]
fn settings_are_validated_naming_the_key() {
    let plugin = runtime()
        .load_file(muster::plugins::path("muster-plugin-leapsome"))
        .expect("load");
    let manifest = {
        let instance = plugin
            .instantiate(Capabilities {
                name: None,
                http: Arc::new(muster::runtime::DenyAll),
                log: Arc::new(MemoryLog::new()),
            })
            .expect("instantiate");
        instance.manifest().clone()
    };
    assert_eq!(manifest.name, "leapsome");
    assert!(
        manifest
            .hosts
            .contains(&"https://api.leapsome.com".to_string())
    );
    assert_eq!(manifest.credential_slots[0].name, "scim-token");
    assert_eq!(manifest.credential_slots[0].template, "Bearer {secret}");
    for (key, value) in [
        ("page_size", "0"),
        ("page_size", "5001"),
        ("base_url", "ftp://x"),
    ] {
        let mut instance = plugin
            .instantiate(Capabilities {
                name: None,
                http: Arc::new(muster::runtime::DenyAll),
                log: Arc::new(MemoryLog::new()),
            })
            .expect("instantiate");
        let e = instance
            .configure(&[(key.into(), value.into())])
            .unwrap_err();
        assert!(e.to_string().contains(key), "{key}={value}: {e}");
    }
}

#[test]
fn duplicate_user_name_is_a_conflict() {
    let mut directory = Directory::new();
    directory.add_user(ScimUser {
        external_id: Some("someone-else".into()),
        ..ScimUser::new("", "ann@sandbox.example")
    });
    let mut h = connect(
        LeapsomeOptions {
            directory,
            ..options()
        },
        &[],
    );
    let e = create(&mut h, &full("1", "ann@sandbox.example")).unwrap_err();
    match connector_error(e) {
        ConnectorError::Conflict(m) => {
            assert!(
                m.contains("ann@sandbox.example") && m.contains("person 1"),
                "{m}"
            )
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(h.sim.users().len(), 1);
}

#[test]
fn an_existing_account_answered_with_empty_object_is_linked_by_lookup() {
    let mut directory = Directory::new();
    let existing = directory.add_user(ScimUser::new("", "Ann@Sandbox.example"));
    let mut h = connect(
        LeapsomeOptions {
            directory,
            ..options()
        },
        &[("invite_on_create", "true")],
    );
    let id = create(&mut h, &full("1", "ann@sandbox.example")).expect("link");
    assert_eq!(id, existing);
    assert_eq!(h.sim.users().len(), 1, "nothing created");
    assert!(
        h.sim.invitations().is_empty(),
        "an existing account is not invited"
    );
    // Retrying a create whose outcome was lost (a crash) links the same account again.
    let mine = create(&mut h, &full("2", "bob@sandbox.example")).expect("create");
    let again = create(&mut h, &full("2", "bob@sandbox.example")).expect("retry");
    assert_eq!(mine, again);
    assert_eq!(h.sim.users().len(), 2);
    assert_eq!(h.sim.invitations().len(), 1, "invited once");
}

#[test]
fn a_foreign_email_domain_is_a_clear_per_record_error() {
    let mut h = connect(options(), &[]);
    let e = create(&mut h, &full("1", "ann@gmail.example")).unwrap_err();
    match connector_error(e) {
        ConnectorError::Invalid(m) => assert!(
            m.contains("ann@gmail.example") && m.contains("domain") && m.contains("person 1"),
            "{m}"
        ),
        other => panic!("expected invalid, got {other:?}"),
    }
    // The next record goes through.
    create(&mut h, &full("2", "bob@sandbox.example")).expect("next record");
    // A person without a work email cannot become an account.
    let e = create(&mut h, &blank("3")).unwrap_err();
    assert!(matches!(connector_error(e), ConnectorError::Invalid(m) if m.contains("work-email")));
}

#[test]
fn reject_rules_fail_only_their_records() {
    let mut h = connect(
        LeapsomeOptions {
            rejects: vec![RejectRule::email_contains("bad")],
            ..options()
        },
        &[],
    );
    let results: Vec<_> = ["a", "bad", "c"]
        .iter()
        .enumerate()
        .map(|(i, n)| {
            create(
                &mut h,
                &full(&i.to_string(), &format!("{n}@sandbox.example")),
            )
        })
        .collect();
    assert!(results[0].is_ok() && results[2].is_ok());
    let e = results[1].as_ref().unwrap_err().to_string();
    assert!(e.contains("bad@sandbox.example"), "{e}");
    assert_eq!(h.sim.users().len(), 2);
}

#[test]
fn a_create_whose_answer_was_lost_is_linked_when_retried() {
    let mut h = connect(
        LeapsomeOptions {
            lost_creates: vec![1],
            ..options()
        },
        &[("invite_on_create", "true")],
    );
    let person = full("77", "ann@sandbox.example");
    let e = create(&mut h, &person).unwrap_err();
    assert!(
        matches!(connector_error(e), ConnectorError::Unavailable(m) if m.contains("502")),
        "the caller cannot know whether the account exists"
    );
    assert_eq!(h.sim.users().len(), 1, "yet it does");
    let id = create(&mut h, &person).expect("retried create");
    assert_eq!(Some(id), h.sim.user_by_external_id("77").map(|u| u.id));
    assert_eq!(h.sim.users().len(), 1, "not created twice");
    assert_eq!(h.sim.invitations().len(), 1, "nor invited twice");
}

#[test]
fn invitations_are_sent_only_when_enabled() {
    let mut on = connect(options(), &[("invite_on_create", "true")]);
    let id = create(&mut on, &full("1", "ann@sandbox.example")).expect("create");
    on.plugin
        .apply(&Operation::Deactivate(AccountRef { id: id.clone() }))
        .expect("deactivate");
    on.plugin
        .apply(&Operation::Reactivate(AccountRef { id: id.clone() }))
        .expect("reactivate");
    let invitations = on.sim.invitations();
    assert_eq!(invitations.len(), 1);
    assert_eq!(
        on.sim
            .user_by_email("ann@sandbox.example")
            .unwrap()
            .status(),
        "invited",
        "reactivating a never-accepted invitation leaves it invited"
    );
    assert_eq!(invitations[0].user_id, id);
    assert_eq!(invitations[0].email, "ann@sandbox.example");
    let mut off = connect(options(), &[("invite_on_create", "false")]);
    create(&mut off, &full("1", "ann@sandbox.example")).expect("create");
    assert!(off.sim.invitations().is_empty());
    // A bad value is refused at configure time, naming the key.
    let sim = LeapsomeSim::start(options()).expect("sim");
    let mut plugin = runtime()
        .load_file(muster::plugins::path("muster-plugin-leapsome"))
        .expect("load")
        .instantiate(Capabilities {
            name: Some("x".into()),
            http: Arc::new(muster::runtime::DenyAll),
            log: Arc::new(MemoryLog::new()),
        })
        .expect("instantiate");
    let e = plugin
        .configure(&[
            ("base_url".into(), sim.base_url()),
            ("invite_on_create".into(), "yes".into()),
        ])
        .unwrap_err();
    assert!(e.to_string().contains("invite_on_create"), "{e}");
    let _ = (INVITE_EXTENSION, ENTERPRISE);
}

#[test]
fn teams_with_more_than_100_members() {
    let mut directory = Directory::new();
    let manual_member = directory.add_user(ScimUser::new("", "manual@sandbox.example"));
    let manual = directory.add_team("Hand-made", std::slice::from_ref(&manual_member));
    let mut h = connect(
        LeapsomeOptions {
            directory,
            ..options()
        },
        &[],
    );
    let team = h
        .plugin
        .apply(&Operation::CreateGroup(NewGroup {
            name: "Engineering".into(),
            parent_id: None,
        }))
        .expect("create team")
        .target_id;
    let mut ids = Vec::new();
    for i in 0..150 {
        let id = create(
            &mut h,
            &full(&i.to_string(), &format!("p{i}@sandbox.example")),
        )
        .expect("create");
        h.plugin
            .apply(&Operation::ChangeMembers(MemberChange {
                group_id: team.clone(),
                add: vec![id.clone()],
                remove: Vec::new(),
            }))
            .expect("add member");
        ids.push(id);
    }
    let groups = h
        .plugin
        .read_all_target_groups()
        .expect("read teams")
        .groups;
    let eng = groups.iter().find(|g| g.id == team).expect("team read");
    assert_eq!(eng.name, "Engineering");
    assert_eq!(eng.members, ids);
    // Removing one rewrites 149 members in two PATCHes (100 + 49).
    h.sim.clear_request_log();
    h.plugin
        .apply(&Operation::ChangeMembers(MemberChange {
            group_id: team.clone(),
            add: Vec::new(),
            remove: vec![ids[7].clone()],
        }))
        .expect("remove member");
    let log = h.sim.request_log();
    let patches: Vec<_> = log.records.iter().filter(|r| r.method == "PATCH").collect();
    assert_eq!(patches.len(), 2);
    assert!(patches.iter().all(|r| r.status == 200));
    let stored = h
        .sim
        .teams()
        .into_iter()
        .find(|t| t.id == team)
        .expect("team");
    assert_eq!(stored.members.len(), 149);
    assert!(!stored.members.contains(&ids[7]));
    assert_eq!(stored.members[7], ids[8], "order kept");
    h.plugin
        .apply(&Operation::RenameGroup(GroupRename {
            id: team.clone(),
            name: "Platform".into(),
        }))
        .expect("rename");
    let groups = h
        .plugin
        .read_all_target_groups()
        .expect("read teams")
        .groups;
    assert!(groups.iter().any(|g| g.id == team && g.name == "Platform"));
    let hand = groups.iter().find(|g| g.id == manual).expect("manual team");
    assert_eq!(hand.members, vec![manual_member]);
    // A team name already taken is a conflict naming it.
    let e = h
        .plugin
        .apply(&Operation::CreateGroup(NewGroup {
            name: "hand-made".into(),
            parent_id: None,
        }))
        .unwrap_err();
    assert!(matches!(connector_error(e), ConnectorError::Conflict(m) if m.contains("hand-made")));
    // A member's department is its only team.
    assert_eq!(
        account(&mut h, &ids[0]).department_id.as_deref(),
        Some(team.as_str())
    );
}

#[test]
fn a_large_directory_is_read_in_pages_and_a_short_page_fails_the_read() {
    let mut directory = Directory::new();
    for i in 0..2500 {
        directory.add_user(ScimUser {
            external_id: Some(i.to_string()),
            ..ScimUser::new("", &format!("u{i}@sandbox.example"))
        });
    }
    let mut h = connect(
        LeapsomeOptions {
            directory: directory.clone(),
            ..options()
        },
        &[("page_size", "1000")],
    );
    let all = h.plugin.read_all_accounts().expect("read").people;
    assert_eq!(all.len(), 2500);
    assert_eq!(h.sim.request_counts().reads, 3);
    assert_eq!(h.sim.request_counts().writes, 0);
    // The second list page comes back cut in half: the read fails, it is not partial.
    let mut cut = connect(
        LeapsomeOptions {
            directory,
            faults: vec![muster_sandbox::Fault::new(
                2,
                muster_sandbox::FaultKind::TruncatedPage,
            )],
            ..options()
        },
        &[("page_size", "1000")],
    );
    let e = cut.plugin.read_all_accounts().unwrap_err();
    assert!(matches!(connector_error(e), ConnectorError::Unavailable(m) if m.contains("partial")),);
}

#[test]
fn check_reports_a_bad_token() {
    let mut good = connect(options(), &[]);
    good.plugin.check().expect("check");
    let mut bad = connect_with(options(), &[], RetryPolicy::none(), Some("wrong-token"));
    let e = bad.plugin.check().unwrap_err();
    assert!(
        matches!(connector_error(e), ConnectorError::Unauthorized(ref m) if m.contains("the SCIM token is not valid")),
    );
}

#[test]
fn check_explains_a_base_url_without_the_scim_path() {
    let mut h = connect(options(), &[]);
    let origin = h.sim.base_url().trim_end_matches("/scim/v1").to_string();
    h.plugin
        .configure(&[("base_url".into(), origin.clone())])
        .expect("reconfigure");
    let e = h.plugin.check().unwrap_err();
    match connector_error(e) {
        ConnectorError::Invalid(m) => {
            assert!(m.contains("base_url") && m.contains(&origin), "{m}")
        }
        other => panic!("expected invalid, got {other:?}"),
    }
}

#[test]
fn a_429_is_retried_by_the_host_and_reported_when_retries_run_out() {
    // The first create is answered 429 (Retry-After: 1); the host retries and it lands.
    let mut h = connect_with(
        LeapsomeOptions {
            rejects: vec![RejectRule::creates(&[1]).with_status(429)],
            ..options()
        },
        &[],
        RetryPolicy::default(),
        None,
    );
    create(&mut h, &full("1", "ann@sandbox.example")).expect("create after a 429");
    let counts = h.sim.request_counts();
    assert_eq!(
        (counts.throttled, counts.writes),
        (1, 2),
        "the POST once retried, then the PATCH"
    );
    assert_eq!(h.sim.users().len(), 1);
    // Without retries, the simulator's own limit (4 per simulated second, time nearly
    // frozen: two creates of two writes) surfaces as rate-limited with the Retry-After it
    // sent.
    let mut frozen = connect(
        LeapsomeOptions {
            rate_limit: Some(RateLimit {
                requests: 4,
                window_secs: 1.0,
            }),
            time_scale: 0.0001,
            ..options()
        },
        &[],
    );
    create(&mut frozen, &full("1", "a@sandbox.example")).expect("first");
    create(&mut frozen, &full("2", "b@sandbox.example")).expect("second");
    let e = create(&mut frozen, &full("3", "c@sandbox.example")).unwrap_err();
    assert_eq!(connector_error(e), ConnectorError::RateLimited(1));
}

#[test]
fn every_patch_names_the_account_and_deactivation_works_without_a_read() {
    // A fresh instance (no read yet) deactivates an account it knows only by id: it fetches
    // the userName Leapsome requires in the PATCH.
    let mut directory = Directory::new();
    let id = directory.add_user(ScimUser::new("", "old@sandbox.example"));
    let mut h = connect(
        LeapsomeOptions {
            directory,
            ..options()
        },
        &[],
    );
    h.plugin
        .apply(&Operation::Deactivate(AccountRef { id: id.clone() }))
        .expect("deactivate");
    assert_eq!(
        h.sim.user_by_email("old@sandbox.example").unwrap().status(),
        "deactivated"
    );
    let methods: Vec<String> = h
        .sim
        .request_log()
        .records
        .iter()
        .map(|r| r.method.clone())
        .collect();
    assert_eq!(methods, ["GET", "PATCH"]);
    // After a read, no lookup: the PATCH alone.
    h.plugin.read_all_accounts().expect("read");
    h.sim.clear_request_log();
    h.plugin
        .apply(&Operation::Reactivate(AccountRef { id: id.clone() }))
        .expect("reactivate");
    assert_eq!(h.sim.request_counts().reads, 0);
    assert!(h.sim.user_by_email("old@sandbox.example").unwrap().active);
}

#[test]
fn a_new_account_gets_its_manager_in_the_create_patch_and_no_second_write() {
    let mut h = connect(options(), &[]);
    let boss = create(&mut h, &full("10", "boss@sandbox.example")).expect("boss");
    let ann = create(
        &mut h,
        &Person {
            manager_id: Some(boss.clone()),
            ..full("11", "ann@sandbox.example")
        },
    )
    .expect("ann");
    assert_eq!(
        h.sim
            .user_by_email("ann@sandbox.example")
            .unwrap()
            .manager
            .as_deref(),
        Some(boss.as_str()),
        "stored by the create's PATCH"
    );
    // The plan's set-manager for the same new account has nothing left to write.
    h.sim.clear_request_log();
    h.plugin
        .apply(&Operation::SetManager(ManagerChange {
            id: ann.clone(),
            manager_id: Some(boss.clone()),
        }))
        .expect("set manager");
    assert_eq!(h.sim.request_counts().writes, 0);
}

#[test]
fn leapsome_403_is_a_bad_token_and_401_a_token_without_rights() {
    // Leapsome answers 403 to an unknown token: unauthorized, for the check as for a write.
    let mut bad = connect_with(options(), &[], RetryPolicy::none(), Some("wrong-token"));
    // The case carries Leapsome's own words, naming what was being done (contract 0.2:
    // no longer only in a warning line).
    match connector_error(bad.plugin.check().unwrap_err()) {
        ConnectorError::Unauthorized(m) => assert!(
            m.starts_with(
                "checking the SCIM token: the SCIM token is not valid (Leapsome answered 403"
            ),
            "{m}"
        ),
        other => panic!("{other:?}"),
    }
    let e = create(&mut bad, &full("1", "ann@sandbox.example")).unwrap_err();
    match connector_error(e) {
        ConnectorError::Unauthorized(m) => assert!(
            m.contains("person 1 (ann@sandbox.example)") && m.contains("Leapsome answered 403"),
            "{m}"
        ),
        other => panic!("{other:?}"),
    }
    // And 401 to a token it knows without the rights: forbidden, naming the account.
    let mut limited = connect_with(
        LeapsomeOptions {
            limited_token: Some("no-rights".into()),
            ..options()
        },
        &[],
        RetryPolicy::none(),
        Some("no-rights"),
    );
    match connector_error(limited.plugin.check().unwrap_err()) {
        ConnectorError::Forbidden(m) => assert!(m.contains("lacks rights"), "{m}"),
        other => panic!("expected forbidden, got {other:?}"),
    }
    match connector_error(create(&mut limited, &full("1", "ann@sandbox.example")).unwrap_err()) {
        ConnectorError::Forbidden(m) => assert!(
            m.contains("the token lacks rights")
                && m.contains("person 1")
                && m.contains("ann@sandbox.example"),
            "{m}"
        ),
        other => panic!("expected forbidden, got {other:?}"),
    }
    match connector_error(
        limited
            .plugin
            .apply(&Operation::Deactivate(AccountRef {
                id: "5f0000000000000000000001".into(),
            }))
            .unwrap_err(),
    ) {
        ConnectorError::Forbidden(m) => {
            assert!(m.contains("account 5f0000000000000000000001"), "{m}")
        }
        other => panic!("expected forbidden, got {other:?}"),
    }
}

#[test]
fn a_create_whose_patch_fails_is_linked_and_completed_by_an_update() {
    // The first user PATCH is held and dropped (503): the account exists with core
    // attributes only, and the create still hands back its id (no second account later).
    let mut h = connect(
        LeapsomeOptions {
            stalled_user_patches: vec![1],
            stall: std::time::Duration::from_millis(10),
            ..options()
        },
        &[],
    );
    let person = full("5", "eve@sandbox.example");
    let id = create(&mut h, &person).expect("linked despite the failed PATCH");
    let stored = h.sim.user_by_external_id("5").expect("created");
    assert_eq!(stored.id, id);
    assert_eq!(stored.employee_number, None, "the PATCH was not applied");
    // The next plan sees the difference and updates: one PATCH, with the userName.
    h.plugin
        .apply(&Operation::Update(AccountUpdate {
            id: id.clone(),
            person: person.clone(),
            fields: vec![
                FieldRef::Canonical(Field::EmployeeNumber),
                FieldRef::Canonical(Field::BirthDate),
            ],
            rows: Vec::new(),
        }))
        .expect("update");
    let stored = h.sim.user_by_external_id("5").expect("account");
    assert_eq!(stored.employee_number.as_deref(), Some("E-5"));
    assert_eq!(stored.birthday.as_deref(), Some("1988-02-29"));
    assert_eq!(h.sim.users().len(), 1);
}

// ---------------------------------------------------------------- contract 0.2.0

/// `n` seeded accounts and one empty team; returns (team id, account ids).
fn team_and_accounts(n: usize) -> (Harness, String, Vec<String>) {
    let mut directory = Directory::new();
    let ids: Vec<String> = (0..n)
        .map(|i| directory.add_user(ScimUser::new("", &format!("m{i}@sandbox.example"))))
        .collect();
    let team = directory.add_team("Engineering", &[]);
    let h = connect(
        LeapsomeOptions {
            directory,
            ..options()
        },
        &[],
    );
    (h, team, ids)
}

fn change(team: &str, add: &[String], remove: &[String]) -> Operation {
    Operation::ChangeMembers(MemberChange {
        group_id: team.to_string(),
        add: add.to_vec(),
        remove: remove.to_vec(),
    })
}

/// The group PATCHes of the simulator's request log, with their statuses.
fn group_patches(h: &Harness) -> Vec<u16> {
    h.sim
        .request_log()
        .records
        .iter()
        .filter(|r| r.method == "PATCH" && r.url.contains("/Groups/"))
        .map(|r| r.status)
        .collect()
}

#[test]
fn change_members_adds_up_to_100_members_in_one_patch() {
    assert_eq!(
        connect(options(), &[])
            .plugin
            .manifest()
            .max_members_per_change,
        100
    );
    let (mut h, team, ids) = team_and_accounts(130);
    h.sim.clear_request_log();
    h.plugin
        .apply(&change(&team, &ids[..100], &[]))
        .expect("add 100");
    assert_eq!(group_patches(&h), [200], "one PATCH for 100 members");
    assert_eq!(h.sim.request_log().records.len(), 1, "and nothing else");
    let stored = h.sim.teams().into_iter().find(|t| t.id == team).unwrap();
    assert_eq!(stored.members, ids[..100]);

    // Adding 2 and removing 1 of 100: Leapsome cannot remove one member, so the list of
    // 101 is rewritten — 100 replacing, then 1 added; never more than 100 in a PATCH
    // (the simulator answers 400 past 100).
    h.sim.clear_request_log();
    h.plugin
        .apply(&change(&team, &ids[100..102], &ids[..1]))
        .expect("add 2, remove 1");
    assert_eq!(group_patches(&h), [200, 200]);
    let stored = h.sim.teams().into_iter().find(|t| t.id == team).unwrap();
    assert_eq!(stored.members, ids[1..102]);

    // A change the team already holds sends nothing.
    h.sim.clear_request_log();
    h.plugin
        .apply(&change(&team, &ids[1..3], &ids[120..121]))
        .expect("already holds");
    assert_eq!(group_patches(&h), Vec::<u16>::new());
}

#[test]
fn a_change_of_more_members_than_declared_is_refused_before_any_request() {
    let (mut h, team, ids) = team_and_accounts(101);
    h.sim.clear_request_log();
    let e = h.plugin.apply(&change(&team, &ids, &[])).unwrap_err();
    assert!(
        matches!(connector_error(e), ConnectorError::Invalid(ref m) if m.contains("101") && m.contains(&team)),
    );
    assert!(h.sim.request_log().records.is_empty());
}

#[test]
fn read_account_reads_one_account_or_none() {
    let mut h = connect(options(), &[]);
    let boss = create(&mut h, &full("1", "boss@sandbox.example")).expect("create boss");
    let id = create(
        &mut h,
        &Person {
            manager_id: Some(boss.clone()),
            ..full("2", "ann@sandbox.example")
        },
    )
    .expect("create");
    let all = h.plugin.read_all_accounts().expect("read").people;
    h.sim.clear_request_log();
    let one = h
        .plugin
        .read_account(&id)
        .expect("read one")
        .expect("exists");
    assert_eq!(
        Some(&one),
        all.iter().find(|p| p.id == id),
        "as a whole read gives it"
    );
    assert_eq!(one.manager_id.as_deref(), Some(boss.as_str()));
    let gets = h.sim.request_log().records.len();
    assert!(
        (1..=2).contains(&gets),
        "one GET, plus at most one to translate the manager reference: {gets}"
    );
    assert_eq!(
        h.plugin
            .read_account("5f00000000000000000000ff")
            .expect("read"),
        None,
        "404 is none"
    );
}

#[test]
fn unreadable_values_are_problems_on_the_page_and_the_account_is_kept() {
    let mut directory = Directory::new();
    let odd = directory.add_user(ScimUser {
        birthday: Some("1990-02-30".into()),
        gender: Some("robot".into()),
        start_date: Some("2024-01-15".into()),
        ..ScimUser::new("", "odd@sandbox.example")
    });
    directory.add_user(ScimUser::new("", "fine@sandbox.example"));
    let mut h = connect(
        LeapsomeOptions {
            directory,
            ..options()
        },
        &[],
    );
    let read = h
        .plugin
        .read_all_accounts()
        .expect("the read does not fail");
    assert_eq!(read.people.len(), 2);
    let kept = read.people.iter().find(|p| p.id == odd).expect("kept");
    assert_eq!(kept.birth_date, None);
    assert_eq!(kept.gender, None);
    assert_eq!(kept.start_date, Some(date(2024, 1, 15)));
    let problems: Vec<(&str, Option<FieldRef>)> = read
        .problems
        .iter()
        .map(|p| (p.record_id.as_str(), p.field.clone()))
        .collect();
    assert_eq!(
        problems,
        [
            (odd.as_str(), Some(FieldRef::Canonical(Field::BirthDate))),
            (odd.as_str(), Some(FieldRef::Canonical(Field::Gender))),
        ]
    );
    assert!(read.problems[1].message.contains("robot"));
}

#[test]
fn the_manifest_declares_leapsome_s_rate_limit() {
    let h = connect(options(), &[]);
    let m = h.plugin.manifest();
    assert_eq!(m.rate_limits.len(), 1);
    let l = &m.rate_limits[0];
    assert_eq!(
        (l.host.as_str(), l.requests, l.per_seconds),
        ("https://api.leapsome.com", 30, 1)
    );
}
