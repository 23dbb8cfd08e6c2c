//! Conformance of the generic SCIM connector (`plugins/scim`) against a real
//! third-party SCIM 2.0 server: `scim2-server` from PyPI, on 127.0.0.1.
//!
//! The real `.wasm` runs in `muster::runtime`, every request goes through
//! `muster-outbound` (loopback allowed, the bearer token injected by the
//! host). Each test starts its own server, so they share no data. What is
//! checked is what a sync relies on: what is written reads back the same
//! (convergence), updates touch only the listed fields, deactivation and
//! reactivation, groups and members, and errors that say what went wrong.
//! Which HTTP methods were used is read from the server's own access log.

#[path = "support/scim2_server.rs"]
mod scim2_server;
#[path = "support/scim_fault_proxy.rs"]
mod scim_fault_proxy;

use std::sync::Arc;

use muster::runtime::contract::latest::parse_field_ref;
use muster::runtime::{
    AccountRef, AccountUpdate, Capabilities, ConnectorError, Field, FieldRef, GroupRename,
    ManagerChange, MemberChange, MemoryLog, NewGroup, Operation, Person, PluginError,
    PluginInstance, Runtime, RuntimeConfig, grant,
};
use muster_outbound::{Credential, Outbound, Policy, RetryPolicy};
use scim_fault_proxy::FaultProxy;
use scim2_server::{Options, Scim2Server, TOKEN};

fn runtime() -> Runtime {
    Runtime::new(RuntimeConfig {
        cache_dir: Some(std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("plugin-cache")),
        ..RuntimeConfig::default()
    })
    .expect("runtime")
}

/// The SCIM plugin, granted loopback and `token`, configured with `settings`
/// plus the server's `base_url`.
fn connector(server: &Scim2Server, token: &str, settings: &[(&str, &str)]) -> PluginInstance {
    connector_at(&server.base_url(), token, settings)
}

/// The SCIM plugin against any loopback `base` URL.
fn connector_at(base: &str, token: &str, settings: &[(&str, &str)]) -> PluginInstance {
    let plugin = runtime()
        .load_file(muster::plugins::path("muster-plugin-scim"))
        .expect("load the scim plugin");
    let outbound = Arc::new(
        Outbound::new(Policy {
            allow_loopback: true,
            retry: RetryPolicy::none(),
            ..Policy::default()
        })
        .expect("outbound"),
    );
    let mut instance = plugin
        .instantiate(Capabilities {
            name: Some("scim".into()),
            http: outbound.clone(),
            log: Arc::new(MemoryLog::new()),
        })
        .expect("instantiate");
    let policy = grant(
        instance.manifest(),
        &["http://127.0.0.1:*"],
        vec![Credential::new("bearer-token", token)],
    )
    .expect("grant");
    outbound.set_plugin("scim", policy).expect("set plugin");
    let mut all = vec![("base_url".to_string(), base.to_string())];
    all.extend(settings.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    instance.configure(&all).expect("configure");
    instance
}

fn connector_error(result: Result<impl std::fmt::Debug, PluginError>) -> ConnectorError {
    match result {
        Err(PluginError::Connector { error, .. }) => error,
        other => panic!("expected a connector error, got {other:?}"),
    }
}

fn ada() -> Person {
    Person {
        employee_number: Some("E-001".into()),
        given_name: Some("Ada".into()),
        family_name: Some("Lovelace".into()),
        work_email: Some("ada@acme.test".into()),
        personal_email: Some("ada@home.test".into()),
        phone: Some("+33 1 00 00 00 01".into()),
        login: Some("ada@acme.test".into()),
        job_title: Some("Engineer".into()),
        department_id: Some("R&D".into()),
        legal_entity_id: Some("Acme SAS".into()),
        contract_type: Some("Employee".into()),
        ..person("src-ada", true)
    }
}

fn person(id: &str, active: bool) -> Person {
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
        active,
        custom_fields: Vec::new(),
    }
}

fn create(scim: &mut PluginInstance, p: &Person) -> String {
    scim.apply(&Operation::Create(p.clone()))
        .unwrap_or_else(|e| panic!("create {}: {e}", p.id))
        .target_id
}

fn account(scim: &mut PluginInstance, id: &str) -> Person {
    scim.read_all_accounts()
        .expect("read accounts")
        .people
        .into_iter()
        .find(|a| a.id == id)
        .unwrap_or_else(|| panic!("account {id} not listed"))
}

#[test]
fn users_create_filter_patch_deactivate_reactivate() {
    let server = Scim2Server::start(Options::default());
    let mut scim = connector(&server, TOKEN, &[("page_size", "2")]);
    scim.check().expect("check");
    assert_eq!(server.requests("GET", "/v2/ServiceProviderConfig", 2), 2); // readiness + check

    // Create: everything written reads back identically (convergence).
    let ada_id = create(&mut scim, &ada());
    let bob = Person {
        given_name: Some("Bob".into()),
        family_name: Some("Marley".into()),
        work_email: Some("bob@acme.test".into()),
        // No SCIM attribute: not sent, so read back as absent.
        birth_date: Some(muster::runtime::Date {
            year: 1990,
            month: 2,
            day: 6,
        }),
        ..person("src-bob", true)
    };
    let bob_id = create(&mut scim, &bob);
    let carl_id = create(
        &mut scim,
        &Person {
            login: Some("carl".into()),
            ..person("src-carl", false)
        },
    );
    assert_eq!(server.requests("POST", "/v2/Users", 3), 3);
    let all = scim.read_all_accounts().expect("read accounts").people;
    assert_eq!(all.len(), 3, "{all:?}");
    // Three users with page_size 2: the connector paged with startIndex.
    assert_eq!(
        server.requests("GET", "/v2/Users?startIndex=3&count=2", 1),
        1
    );
    let read_ada = account(&mut scim, &ada_id);
    assert_eq!(
        read_ada,
        Person {
            id: ada_id.clone(),
            ..ada()
        }
    );
    let read_bob = account(&mut scim, &bob_id);
    assert_eq!(read_bob.login.as_deref(), Some("bob@acme.test")); // userName from the email
    assert_eq!(read_bob.birth_date, None);
    assert!(!account(&mut scim, &carl_id).active);

    // List with a filter.
    let mut only_a = connector(&server, TOKEN, &[("user_filter", "userName sw \"ada\"")]);
    let filtered = only_a.read_all_accounts().expect("filtered read").people;
    assert_eq!(
        filtered.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(),
        [ada_id.as_str()]
    );
    assert_eq!(
        server.requests("GET", "filter=userName%20sw%20%22ada%22", 1),
        1,
        "{}",
        server.log()
    );

    // Patch: only the listed fields change; the others keep their value even
    // though the desired person differs there; a listed absent value removes.
    let desired = Person {
        given_name: Some("NOT-WRITTEN".into()),
        job_title: Some("CTO".into()),
        work_email: Some("ada.lovelace@acme.test".into()),
        department_id: Some("Board".into()),
        phone: None,
        ..ada()
    };
    let fields = ["job-title", "work-email", "department-id", "phone"];
    let applied = scim
        .apply(&Operation::Update(AccountUpdate {
            id: ada_id.clone(),
            person: desired,
            fields: fields
                .iter()
                .map(|f| parse_field_ref(f).expect("a field"))
                .collect(),
            rows: Vec::new(),
        }))
        .expect("update");
    assert_eq!(applied.target_id, ada_id);
    assert_eq!(server.requests("PATCH", &ada_id, 1), 1);
    assert_eq!(server.requests("PUT", "/v2/Users", 0), 0);
    let after = account(&mut scim, &ada_id);
    assert_eq!(
        after,
        Person {
            id: ada_id.clone(),
            job_title: Some("CTO".into()),
            work_email: Some("ada.lovelace@acme.test".into()),
            department_id: Some("Board".into()),
            phone: None,
            ..ada()
        }
    );
    // Same update again: nothing differs, nothing is written.
    scim.apply(&Operation::Update(AccountUpdate {
        id: ada_id.clone(),
        person: after.clone(),
        fields: fields
            .iter()
            .map(|f| parse_field_ref(f).expect("a field"))
            .collect(),
        rows: Vec::new(),
    }))
    .expect("no-op update");

    // Manager, through the enterprise extension.
    scim.apply(&Operation::SetManager(ManagerChange {
        id: bob_id.clone(),
        manager_id: Some(ada_id.clone()),
    }))
    .expect("set manager");
    assert_eq!(
        account(&mut scim, &bob_id).manager_id.as_deref(),
        Some(ada_id.as_str())
    );
    scim.apply(&Operation::SetManager(ManagerChange {
        id: bob_id.clone(),
        manager_id: None,
    }))
    .expect("clear manager");
    assert_eq!(account(&mut scim, &bob_id).manager_id, None);

    // Deactivate, then reactivate, through `active`.
    scim.apply(&Operation::Deactivate(AccountRef { id: bob_id.clone() }))
        .expect("deactivate");
    assert!(!account(&mut scim, &bob_id).active);
    scim.apply(&Operation::Deactivate(AccountRef { id: bob_id.clone() }))
        .expect("deactivate again is a no-op");
    scim.apply(&Operation::Reactivate(AccountRef { id: bob_id.clone() }))
        .expect("reactivate");
    let bob_back = account(&mut scim, &bob_id);
    assert!(bob_back.active);
    assert_eq!(bob_back.given_name.as_deref(), Some("Bob"));
    // 2 manager PATCHes + deactivate + reactivate (the repeated deactivate sent nothing).
    assert_eq!(server.requests("PATCH", &bob_id, 4), 4);
    // Counted after Bob's writes, so a PATCH from the no-op update would show.
    assert_eq!(server.requests("PATCH", &ada_id, 1), 1);
}

#[test]
fn errors_are_typed_and_carry_the_servers_words() {
    let server = Scim2Server::start(Options::default());
    let mut scim = connector(&server, TOKEN, &[]);
    let ada_id = create(&mut scim, &ada());

    // Retrying our own create (same externalId) finds the account again.
    assert_eq!(create(&mut scim, &ada()), ada_id);

    // 409: another person with the same userName.
    let twin = Person {
        login: Some("ada@acme.test".into()),
        ..person("src-twin", true)
    };
    match connector_error(scim.apply(&Operation::Create(twin))) {
        ConnectorError::Conflict(m) => {
            assert!(m.contains("src-twin") && m.contains("uniqueness"), "{m}")
        }
        other => panic!("{other:?}"),
    }

    // 404.
    assert!(matches!(
        connector_error(scim.apply(&Operation::Deactivate(AccountRef {
            id: "no-such-user".into()
        }))),
        ConnectorError::NotFound
    ));

    // 400 from the server (a filter it cannot parse), with its scimType.
    let mut bad_filter = connector(&server, TOKEN, &[("user_filter", "userName zz \"x\"")]);
    match connector_error(bad_filter.read_all_accounts()) {
        ConnectorError::Invalid(m) => assert!(m.contains("invalidFilter"), "{m}"),
        other => panic!("{other:?}"),
    }

    // A field SCIM has no attribute for is refused by name, before any write.
    match connector_error(scim.apply(&Operation::Update(AccountUpdate {
        id: ada_id.clone(),
        person: ada(),
        fields: vec![FieldRef::Canonical(Field::Gender)],
        rows: Vec::new(),
    }))) {
        ConnectorError::Invalid(m) => assert!(m.contains("gender") && m.contains(&ada_id), "{m}"),
        other => panic!("{other:?}"),
    }

    // 401: a wrong token.
    let mut wrong = connector(&server, "not-the-token", &[]);
    assert!(matches!(
        connector_error(wrong.check()),
        ConnectorError::Unauthorized(_)
    ));
}

#[test]
fn groups_with_members() {
    let server = Scim2Server::start(Options::default());
    let mut scim = connector(&server, TOKEN, &[]);
    let ada_id = create(&mut scim, &ada());
    let bob_id = create(
        &mut scim,
        &Person {
            login: Some("bob".into()),
            ..person("src-bob", true)
        },
    );

    let group = scim
        .apply(&Operation::CreateGroup(NewGroup {
            name: "R&D".into(),
            parent_id: None,
        }))
        .expect("create group")
        .target_id;
    let add = |account: &str| {
        Operation::ChangeMembers(MemberChange {
            group_id: group.clone(),
            add: vec![account.to_string()],
            remove: Vec::new(),
        })
    };
    let remove = |account: &str| {
        Operation::ChangeMembers(MemberChange {
            group_id: group.clone(),
            add: Vec::new(),
            remove: vec![account.to_string()],
        })
    };
    for id in [&ada_id, &bob_id] {
        scim.apply(&add(id)).expect("add member");
    }
    let groups = scim.read_all_target_groups().expect("read groups").groups;
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].name, "R&D");
    let mut members = groups[0].members.clone();
    members.sort();
    let mut expected = vec![ada_id.clone(), bob_id.clone()];
    expected.sort();
    assert_eq!(members, expected);

    scim.apply(&remove(&ada_id)).expect("remove member");
    scim.apply(&remove(&ada_id))
        .expect("removing a non-member again holds");
    scim.apply(&Operation::RenameGroup(GroupRename {
        id: group.clone(),
        name: "Research".into(),
    }))
    .expect("rename");
    let groups = scim.read_all_target_groups().expect("read groups").groups;
    assert_eq!(groups[0].name, "Research");
    assert_eq!(groups[0].members, vec![bob_id.clone()]);
    assert_eq!(server.requests("PUT", "/v2/Groups", 0), 0);

    // A second group and a group filter.
    scim.apply(&Operation::CreateGroup(NewGroup {
        name: "Sales".into(),
        parent_id: None,
    }))
    .expect("create group");
    assert_eq!(
        scim.read_all_target_groups().expect("groups").groups.len(),
        2
    );
    let mut sales = connector(
        &server,
        TOKEN,
        &[("group_filter", "displayName eq \"Sales\"")],
    );
    let only = sales
        .read_all_target_groups()
        .expect("filtered groups")
        .groups;
    assert_eq!(
        only.iter().map(|g| g.name.as_str()).collect::<Vec<_>>(),
        ["Sales"]
    );
}

/// A server whose `/ServiceProviderConfig` says PATCH is unsupported gets
/// PUTs of the whole edited resource, with `If-Match` since it offers ETags.
#[test]
fn put_with_if_match_when_the_server_says_patch_is_unsupported() {
    let spc = r#"{
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "patch": {"supported": false},
        "bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": true, "maxResults": 1000},
        "changePassword": {"supported": false},
        "sort": {"supported": false},
        "etag": {"supported": true},
        "authenticationSchemes": []
    }"#;
    let server = Scim2Server::start(Options {
        service_provider_config: Some(spc.into()),
        debug: true,
    });
    let mut scim = connector(&server, TOKEN, &[]);
    let ada_id = create(&mut scim, &ada());
    let bob_id = create(
        &mut scim,
        &Person {
            login: Some("bob".into()),
            ..person("src-bob", true)
        },
    );

    scim.apply(&Operation::Update(AccountUpdate {
        id: ada_id.clone(),
        person: Person {
            family_name: Some("King".into()),
            employee_number: None,
            ..ada()
        },
        fields: vec![
            FieldRef::Canonical(Field::FamilyName),
            FieldRef::Canonical(Field::EmployeeNumber),
        ],
        rows: Vec::new(),
    }))
    .expect("update by PUT");
    scim.apply(&Operation::Deactivate(AccountRef { id: ada_id.clone() }))
        .expect("deactivate by PUT");
    let after = account(&mut scim, &ada_id);
    assert_eq!(
        after,
        Person {
            id: ada_id.clone(),
            family_name: Some("King".into()),
            employee_number: None,
            active: false,
            ..ada()
        }
    );
    scim.apply(&Operation::Reactivate(AccountRef { id: ada_id.clone() }))
        .expect("reactivate by PUT");
    assert!(account(&mut scim, &ada_id).active);

    let group = scim
        .apply(&Operation::CreateGroup(NewGroup {
            name: "Ops".into(),
            parent_id: None,
        }))
        .expect("create group")
        .target_id;
    for id in [&ada_id, &bob_id] {
        scim.apply(&Operation::ChangeMembers(MemberChange {
            group_id: group.clone(),
            add: vec![id.clone()],
            remove: Vec::new(),
        }))
        .expect("add member by PUT");
    }
    scim.apply(&Operation::ChangeMembers(MemberChange {
        group_id: group.clone(),
        add: Vec::new(),
        remove: vec![ada_id.clone()],
    }))
    .expect("remove member by PUT");
    scim.apply(&Operation::RenameGroup(GroupRename {
        id: group.clone(),
        name: "Operations".into(),
    }))
    .expect("rename by PUT");
    let groups = scim.read_all_target_groups().expect("groups").groups;
    assert_eq!(groups[0].name, "Operations");
    assert_eq!(groups[0].members, vec![bob_id.clone()]);

    assert_eq!(server.requests("PATCH", "/v2/", 0), 0, "{}", server.log());
    assert_eq!(server.requests("PUT", &ada_id, 3), 3);
    assert_eq!(server.requests("PUT", &group, 4), 4);
    // Every PUT carried the version just read (the debug log shows headers).
    let if_match = server.log().matches("'HTTP_IF_MATCH'").count();
    assert_eq!(if_match, 7, "{}", server.log());
}

/// Recovery paths, with a proxy answering some requests in the real server's
/// place: a 412 (another writer changed the user between our read and our
/// write) makes the connector read again and retry; a 501 to a PATCH makes
/// it switch the connection to PUT for good.
#[test]
fn stale_etag_is_retried_and_a_refused_patch_switches_to_put() {
    let server = Scim2Server::start(Options::default());
    let (mut stale_sent, mut refused_sent) = (false, false);
    let proxy = FaultProxy::start(
        server.port(),
        Box::new(move |method, path| {
            let error = |status: u16, detail: &str| {
                let body = format!(
                    r#"{{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"{status}","detail":"{detail}"}}"#
                );
                Some((status, body))
            };
            if method == "PATCH" && path.starts_with("/v2/Users/") && !stale_sent {
                stale_sent = true;
                return error(412, "Resource has changed on the server");
            }
            if method == "PATCH" && path.starts_with("/v2/Groups/") && !refused_sent {
                refused_sent = true;
                return error(501, "PATCH is not implemented");
            }
            None
        }),
    );
    let mut scim = connector_at(&proxy.base_url(), TOKEN, &[]);
    let ada_id = create(&mut scim, &ada());

    scim.apply(&Operation::Update(AccountUpdate {
        id: ada_id.clone(),
        person: Person {
            job_title: Some("CTO".into()),
            ..ada()
        },
        fields: vec![FieldRef::Canonical(Field::JobTitle)],
        rows: Vec::new(),
    }))
    .expect("update retried after 412");
    assert_eq!(
        account(&mut scim, &ada_id).job_title.as_deref(),
        Some("CTO")
    );
    let user_path = format!("/v2/Users/{ada_id}");
    assert_eq!(proxy.count("PATCH", &user_path), 2, "{:?}", proxy.seen());
    assert_eq!(
        proxy.count("GET", &user_path),
        2,
        "read again before the retry"
    );
    assert_eq!(server.requests("PATCH", &ada_id, 1), 1);

    let group = scim
        .apply(&Operation::CreateGroup(NewGroup {
            name: "Ops".into(),
            parent_id: None,
        }))
        .expect("create group")
        .target_id;
    scim.apply(&Operation::ChangeMembers(MemberChange {
        group_id: group.clone(),
        add: vec![ada_id.clone()],
        remove: Vec::new(),
    }))
    .expect("add member, by PUT after the 501");
    let groups = scim.read_all_target_groups().expect("groups").groups;
    assert_eq!(groups[0].members, vec![ada_id.clone()]);
    assert_eq!(server.requests("PUT", &group, 1), 1);
    assert_eq!(server.requests("PATCH", &group, 0), 0);

    // The switch holds for the rest of the connection.
    scim.apply(&Operation::Deactivate(AccountRef { id: ada_id.clone() }))
        .expect("deactivate by PUT");
    assert!(!account(&mut scim, &ada_id).active);
    assert_eq!(server.requests("PUT", &ada_id, 1), 1);
    assert_eq!(proxy.count("PATCH", &user_path), 2);
}

/// A `change-members` is one PatchOp request, whatever the number of members
/// (up to the declared 100), adding and removing together; removing a
/// non-member (`noTarget`) still holds.
#[test]
fn change_members_is_one_patch_request() {
    let server = Scim2Server::start(Options::default());
    let mut scim = connector(&server, TOKEN, &[]);
    assert_eq!(scim.manifest().max_members_per_change, 100);
    let ids: Vec<String> = (0..4)
        .map(|i| {
            create(
                &mut scim,
                &Person {
                    login: Some(format!("member{i}")),
                    ..person(&format!("src-m{i}"), true)
                },
            )
        })
        .collect();
    let group = scim
        .apply(&Operation::CreateGroup(NewGroup {
            name: "Batch".into(),
            parent_id: None,
        }))
        .expect("create group")
        .target_id;
    let change = |add: &[String], remove: &[String]| {
        Operation::ChangeMembers(MemberChange {
            group_id: group.clone(),
            add: add.to_vec(),
            remove: remove.to_vec(),
        })
    };
    let members = |scim: &mut PluginInstance| {
        let mut m = scim.read_all_target_groups().expect("groups").groups[0]
            .members
            .clone();
        m.sort();
        m
    };
    let sorted = |ids: &[String]| {
        let mut v = ids.to_vec();
        v.sort();
        v
    };
    scim.apply(&change(&ids[..3], &[])).expect("add three");
    assert_eq!(server.requests("PATCH", "/v2/Groups", 1), 1, "one request");
    assert_eq!(members(&mut scim), sorted(&ids[..3]));
    scim.apply(&change(&ids[3..], &ids[..2]))
        .expect("add one, remove two");
    assert_eq!(server.requests("PATCH", "/v2/Groups", 2), 2, "one more");
    assert_eq!(members(&mut scim), sorted(&ids[2..]));
    scim.apply(&change(&[], &ids[..1]))
        .expect("removing a non-member holds");
    assert_eq!(members(&mut scim), sorted(&ids[2..]));
    assert_eq!(server.requests("PUT", "/v2/Groups", 0), 0);
}

#[test]
fn read_account_reads_one_user_or_none() {
    let server = Scim2Server::start(Options::default());
    let mut scim = connector(&server, TOKEN, &[]);
    let id = create(&mut scim, &ada());
    let listed = account(&mut scim, &id);
    assert_eq!(
        scim.read_account(&id).expect("read one"),
        Some(listed),
        "as the list gives it"
    );
    assert_eq!(
        scim.read_account("00000000-0000-0000-0000-000000000000")
            .expect("read"),
        None
    );
}
