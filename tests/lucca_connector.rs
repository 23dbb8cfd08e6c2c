//! The Lucca connector end to end: the real `muster-plugin-lucca.wasm` in the real runtime,
//! real HTTP through the real outbound layer (allow-list, credential injection, rate limit,
//! retries) to the Lucca simulator on loopback (issue 5).

#[path = "support/lucca.rs"]
mod lucca;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::time::Duration;

use lucca::{Connect, LUCCA_LIMIT, connect};
use muster::runtime::contract::latest::parse_field_ref;
use muster::runtime::{
    AccountRef, AccountUpdate, ConnectorError, Coverage, Date, Field, FieldRef, FieldValue, Gender,
    ManagerChange, Operation, Person, RowAction, RowChange, Scalar,
};
use muster_sandbox::tenant::CreateDefaults;
use muster_sandbox::{
    ApiKey, ExtDefinition, ExtKind, Fault, FaultKind, LuccaOptions, LuccaSim, Occurrence,
    Permission, Tenant, User,
};
use serde_json::json;

fn cache() -> Option<std::path::PathBuf> {
    Some(std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("muster-plugin-cache"))
}

fn sim(tenant: Tenant) -> LuccaSim {
    LuccaSim::start(
        tenant,
        LuccaOptions {
            rate_limit: None,
            ..LuccaOptions::default()
        },
    )
    .expect("simulator")
}

fn settings<'a>(pairs: &[(&'a str, &str)]) -> Vec<(&'a str, String)> {
    pairs.iter().map(|(k, v)| (*k, v.to_string())).collect()
}

fn open(sim: &LuccaSim, pairs: &[(&str, &str)]) -> lucca::Lucca {
    connect(
        sim,
        Connect {
            settings: settings(pairs),
            cache_dir: cache(),
            ..Connect::default()
        },
    )
    .expect("connect")
}

fn date(s: &str) -> Option<Date> {
    let (y, rest) = s.split_at(4);
    Some(Date {
        year: y.parse().ok()?,
        month: rest[1..3].parse().ok()?,
        day: rest[4..6].parse().ok()?,
    })
}

fn connector_error(e: &muster::runtime::PluginError) -> ConnectorError {
    e.connector_error()
        .cloned()
        .unwrap_or_else(|| panic!("not a connector error: {e}"))
}

/// Requests to `/api/v3/users` list pages in the simulator's log.
fn user_pages(sim: &LuccaSim) -> usize {
    sim.request_log()
        .records
        .iter()
        .filter(|r| r.url.starts_with("/api/v3/users?") && r.url.contains("paging="))
        .count()
}

/// Whether the simulator considers a user a former employee "now".
fn is_former(sim: &LuccaSim, u: &User) -> bool {
    Tenant::is_former(u, &sim.now())
}

// ---------------------------------------------------------------- rate limit, 10k people

/// 10 000 employees read 100 per page (setting `page_size`), so the read needs ~105
/// requests and must spread them over three rate-limit windows. The simulator does not
/// enforce its limit here: what it records is the client's own pacing.
#[test]
fn reading_10k_people_never_exceeds_50_requests_in_any_60s_window() {
    // Loopback requests take ~50 ms real here (keep-alive, delayed ACKs): at 10 simulated
    // seconds per real second the client can send far more than 50 per simulated minute, so
    // its own limiter, not the machine's speed, is what keeps it under the limit.
    let scale = 10.0;
    let lucca = LuccaSim::start(
        Tenant::generate(10, 10_000),
        LuccaOptions {
            rate_limit: None,
            time_scale: scale,
            ..LuccaOptions::default()
        },
    )
    .unwrap();
    let mut c = connect(
        &lucca,
        Connect {
            settings: settings(&[("page_size", "100")]),
            time_scale: scale,
            cache_dir: cache(),
            ..Connect::default()
        },
    )
    .unwrap();
    let people = c.instance.read_all_people(None).unwrap().people;
    let groups = c.instance.read_all_groups().unwrap().groups;
    let log = lucca.request_log();
    assert_eq!(people.len(), 10_000);
    assert_eq!(groups.len(), 500);
    assert!(log.records.len() >= 105, "{} requests", log.records.len());
    assert_eq!(log.count_status(429), 0);
    let max = log.max_accepted_in_window(60.0);
    eprintln!(
        "{} requests, at most {max} in any simulated minute",
        log.records.len()
    );
    assert!(max <= 50, "{max} requests in one simulated minute");
    let span = log.records.last().unwrap().at - log.records[0].at;
    assert!(
        span >= 120.0,
        "105 requests need two full refills, took {span:.1} s"
    );
    let tenant = lucca.tenant();
    let ids: BTreeSet<String> = people.iter().map(|p| p.id.clone()).collect();
    let want: BTreeSet<String> = tenant.users.iter().map(|u| u.id.to_string()).collect();
    assert_eq!(
        ids, want,
        "every employee, current, future and former, exactly once"
    );
}

/// Another integration shares the tenant's 50 requests / 60 s (Lucca counts per tenant, not
/// per key): it spends most of the budget just before and during our read. The simulator
/// enforces its limit and answers 429 with `Retry-After`; the host waits and retries, and
/// the read completes with the same result as an undisturbed one.
#[test]
fn a_10k_read_completes_through_429s_from_a_shared_budget() {
    let scale = 10.0;
    let lucca = LuccaSim::start(
        Tenant::generate(11, 10_000),
        LuccaOptions {
            time_scale: scale,
            ..LuccaOptions::default()
        },
    )
    .unwrap();
    let mut c = connect(
        &lucca,
        Connect {
            settings: settings(&[("page_size", "500")]),
            time_scale: scale,
            cache_dir: cache(),
            ..Connect::default()
        },
    )
    .unwrap();
    // The neighbour spends the whole budget just before our read, then keeps sending one
    // request every simulated 3 s while we read.
    let base = lucca.base_url();
    let key = lucca.api_key().to_string();
    for _ in 0..50 {
        raw_get(&base, &key, "/api/v3/users?fields=id&paging=0,1");
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let neighbour = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                raw_get(&base, &key, "/api/v3/users?fields=id&paging=0,1");
                std::thread::sleep(Duration::from_secs_f64(3.0 / scale));
            }
        })
    };
    let people = c.instance.read_all_people(None);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    neighbour.join().unwrap();
    let people = people.expect("the read completes through 429s").people;
    let log = lucca.request_log();
    let ours = |r: &&muster_sandbox::RequestRecord| r.url.contains("formerEmployees=true");
    let ours_429 = log
        .records
        .iter()
        .filter(ours)
        .filter(|r| r.status == 429)
        .count();
    assert!(ours_429 >= 1, "the shared budget ran out under our read");
    assert!(log.max_accepted_in_window(60.0) <= 50);
    assert_eq!(people.len(), 10_000);
    let ids: BTreeSet<String> = people.iter().map(|p| p.id.clone()).collect();
    assert_eq!(ids.len(), 10_000, "no page read twice, none skipped");
    let ours_ok = log
        .records
        .iter()
        .filter(ours)
        .filter(|r| r.status == 200)
        .count();
    assert_eq!(ours_ok, 20, "each of the 20 pages answered once");
}

/// A bare HTTP GET, as another integration on the same tenant would send.
fn raw_get(base: &str, key: &str, path: &str) -> u16 {
    let addr = base.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: lucca application={key}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

// ---------------------------------------------------------------- paging and mapping

#[test]
fn paging_edges_0_1000_1001() {
    for (n, pages) in [(0usize, 1usize), (1000, 1), (1001, 2)] {
        let lucca = sim(Tenant::generate(5, n));
        let mut c = open(&lucca, &[]);
        let people = c.instance.read_all_people(None).unwrap().people;
        let ids: Vec<String> = people.iter().map(|p| p.id.clone()).collect();
        let want: Vec<String> = lucca
            .tenant()
            .users
            .iter()
            .map(|u| u.id.to_string())
            .collect();
        assert_eq!(ids, want, "{n} employees");
        assert_eq!(user_pages(&lucca), pages, "{n} employees");
        let url = &lucca.request_log().records[0].url;
        assert!(
            url.contains("paging=0,1000") && url.contains("formerEmployees=true"),
            "{url}"
        );
    }
}

/// One user with every field set, read back field by field.
#[test]
fn every_lucca_field_maps_to_its_contract_field() {
    let lucca = sim(Tenant::generate(6, 200));
    let id = lucca.with_tenant(|t| {
        t.definitions.push(ExtDefinition {
            id: 99,
            code: "e_contract".into(),
            name: "Contract type".into(),
            kind: ExtKind::Text,
            multiple: false,
            editable: true,
        });
        let id = t.take_user_id();
        let manager = t.users[0].id;
        let mut extended = BTreeMap::new();
        extended.insert("e_tshirt".into(), vec![Occurrence { id: 1, value: json!("XL") }]);
        extended.insert("e_badge_date".into(), vec![Occurrence { id: 2, value: json!("2025-03-01T00:00:00") }]);
        extended.insert("e_contract".into(), vec![Occurrence { id: 3, value: json!("CDI") }]);
        extended.insert(
            "e_formation".into(),
            vec![
                Occurrence { id: 4, value: json!({"e_title": "RGPD", "e_link": "https://c/1", "e_progress": 80, "e_score": 70, "e_last_completion_date": "2026-04-02T00:00:00"}) },
                Occurrence { id: 5, value: json!({"e_title": "Onboarding", "e_progress": 100}) },
            ],
        );
        t.users.push(User {
            id,
            first_name: "Agnès".into(),
            last_name: "Öztürk".into(),
            login: "aozturk".into(),
            mail: Some("agnes.ozturk@sandbox.example".into()),
            personal_email: Some("agnes@perso.example".into()),
            birth_date: Some("1988-07-14T00:00:00".into()),
            employee_number: Some("E-0042".into()),
            job_title: Some("Comptable".into()),
            gender: "Female".into(),
            dt_contract_start: Some("2021-09-01T00:00:00".into()),
            dt_contract_end: Some("2027-08-31T00:00:00".into()),
            direct_line: Some("+33 1 23 45 67 89".into()),
            professional_mobile: Some("+33 6 12 34 56 78".into()),
            personal_mobile: Some("+33 7 00 00 00 00".into()),
            legal_entity_id: Some(3),
            department_id: Some(1),
            manager_id: Some(manager),
            role_principal_id: Some(1),
            modified_at: "2026-05-01T10:00:00".into(),
            extended,
        });
        id
    });
    let mut c = open(
        &lucca,
        &[
            ("custom_fields", "*"),
            ("contract_type_field", "e_contract"),
        ],
    );
    let people = c.instance.read_all_people(None).unwrap().people;
    let p = people.iter().find(|p| p.id == id.to_string()).unwrap();
    let manager = lucca.tenant().users[0].id.to_string();
    let s = |v: &str| Some(v.to_string());
    let table: Vec<(&str, Option<String>, Option<String>)> = vec![
        ("id → id", s(&id.to_string()), s(&p.id)),
        (
            "employeeNumber → employee-number",
            s("E-0042"),
            p.employee_number.clone(),
        ),
        ("firstName → given-name", s("Agnès"), p.given_name.clone()),
        ("lastName → family-name", s("Öztürk"), p.family_name.clone()),
        (
            "mail → work-email",
            s("agnes.ozturk@sandbox.example"),
            p.work_email.clone(),
        ),
        (
            "personalEmail → personal-email",
            s("agnes@perso.example"),
            p.personal_email.clone(),
        ),
        (
            "professionalMobile → phone",
            s("+33 6 12 34 56 78"),
            p.phone.clone(),
        ),
        ("login → login", s("aozturk"), p.login.clone()),
        ("jobTitle → job-title", s("Comptable"), p.job_title.clone()),
        (
            "gender → gender",
            Some(format!("{:?}", Gender::Female)),
            p.gender.map(|g| format!("{g:?}")),
        ),
        (
            "department.id → department-id",
            s("1"),
            p.department_id.clone(),
        ),
        (
            "manager.id → manager-id",
            Some(manager),
            p.manager_id.clone(),
        ),
        (
            "legalEntity.id → legal-entity-id",
            s("3"),
            p.legal_entity_id.clone(),
        ),
        (
            "e_contract → contract-type",
            s("CDI"),
            p.contract_type.clone(),
        ),
    ];
    for (what, want, got) in table {
        assert_eq!(got, want, "{what}");
    }
    assert_eq!(p.birth_date, date("1988-07-14"), "birthDate → birth-date");
    assert_eq!(
        p.start_date,
        date("2021-09-01"),
        "dtContractStart → start-date"
    );
    assert_eq!(p.end_date, date("2027-08-31"), "dtContractEnd → end-date");
    assert!(p.active, "end date in the future: active");
    let custom: BTreeMap<&str, &FieldValue> = p
        .custom_fields
        .iter()
        .map(|(k, v)| (k.as_str(), v))
        .collect();
    assert_eq!(
        custom["e_tshirt"],
        &FieldValue::Text("XL".into()),
        "single text"
    );
    assert_eq!(
        custom["e_badge_date"],
        &FieldValue::Date(date("2025-03-01").unwrap()),
        "single date"
    );
    assert_eq!(custom["e_contract"], &FieldValue::Text("CDI".into()));
    let FieldValue::Rows(rows) = custom["e_formation"] else {
        panic!("compound multi-occurrence → rows: {custom:?}")
    };
    // Sorted by the row key e_title; sub-fields typed by the definitions; absent ones left out.
    assert_eq!(
        rows,
        &vec![
            vec![
                ("e_progress".to_string(), Scalar::Number(100.0)),
                ("e_title".to_string(), Scalar::Text("Onboarding".into())),
            ],
            vec![
                (
                    "e_last_completion_date".to_string(),
                    Scalar::Date(date("2026-04-02").unwrap())
                ),
                ("e_link".to_string(), Scalar::Text("https://c/1".into())),
                ("e_progress".to_string(), Scalar::Number(80.0)),
                ("e_score".to_string(), Scalar::Number(70.0)),
                ("e_title".to_string(), Scalar::Text("RGPD".into())),
            ],
        ]
    );
    // The projection asks for exactly what is mapped.
    let url = lucca
        .request_log()
        .records
        .iter()
        .find(|r| r.url.contains("paging="))
        .unwrap()
        .url
        .clone();
    assert!(url.contains("fields=id,firstName,lastName,login,mail,personalEmail,birthDate,employeeNumber,jobTitle,gender,dtContractStart,dtContractEnd,professionalMobile,legalEntity.id,department.id,manager.id,extendedData,collection.count"), "{url}");

    // Former employees are read, inactive; the other phone fields can be chosen.
    let mut c = open(&lucca, &[("phone_field", "directLine")]);
    let people = c.instance.read_all_people(None).unwrap().people;
    let p = people.iter().find(|p| p.id == id.to_string()).unwrap();
    assert_eq!(p.phone.as_deref(), Some("+33 1 23 45 67 89"));
    assert!(
        p.custom_fields.is_empty(),
        "no custom_fields setting: none read"
    );
    let tenant = lucca.tenant();
    let former: Vec<&User> = tenant
        .users
        .iter()
        .filter(|u| is_former(&lucca, u))
        .collect();
    assert!(!former.is_empty());
    for u in former {
        let p = people.iter().find(|p| p.id == u.id.to_string()).unwrap();
        assert!(!p.active, "former employee {} is inactive", u.id);
    }
    let future = tenant
        .users
        .iter()
        .find(|u| {
            u.dt_contract_start
                .as_deref()
                .is_some_and(|s| s > "2026-06-02")
        })
        .expect("a future hire");
    let p = people
        .iter()
        .find(|p| p.id == future.id.to_string())
        .unwrap();
    assert!(
        p.active && p.start_date.is_some(),
        "future hires are read, with their start date"
    );
}

#[test]
fn departments_are_groups_with_parents() {
    let lucca = sim(Tenant::generate(7, 2_500));
    let mut c = open(&lucca, &[]);
    let groups = c.instance.read_all_groups().unwrap().groups;
    let tenant = lucca.tenant();
    assert_eq!(groups.len(), tenant.departments.len());
    for (g, d) in groups.iter().zip(&tenant.departments) {
        assert_eq!(g.id, d.id.to_string());
        assert_eq!(g.name, d.name);
        assert_eq!(g.parent_id, d.parent_id.map(|p| p.to_string()));
        assert!(
            g.members.is_empty(),
            "membership is each person's department-id"
        );
    }
    assert_eq!(c.instance.read_all_target_groups().unwrap().groups, groups);
}

// ---------------------------------------------------------------- bad records

#[test]
fn bad_records_are_kept_and_reported_by_id() {
    let lucca = sim(Tenant::generate(8, 60));
    let ids = lucca.with_tenant(|t| {
        let ids: Vec<u64> = t.users.iter().skip(10).take(5).map(|u| u.id).collect();
        t.user_mut(ids[0]).unwrap().birth_date = Some("1985-02-30T00:00:00".into());
        t.user_mut(ids[1]).unwrap().mail = None;
        t.user_mut(ids[2]).unwrap().manager_id = Some(999_999);
        t.user_mut(ids[3]).unwrap().dt_contract_start = Some("bientôt".into());
        t.user_mut(ids[4]).unwrap().extended.insert(
            "e_badge_date".into(),
            vec![Occurrence {
                id: 7,
                value: json!("2025-13-01T00:00:00"),
            }],
        );
        ids
    });
    let mut c = open(&lucca, &[("custom_fields", "e_badge_date")]);
    let people = c.instance.read_all_people(None).unwrap().people;
    assert_eq!(people.len(), 60, "nobody dropped");
    let get = |id: u64| people.iter().find(|p| p.id == id.to_string()).unwrap();
    assert_eq!(get(ids[0]).birth_date, None);
    assert!(
        get(ids[0]).given_name.is_some(),
        "the rest of the record is kept"
    );
    assert_eq!(get(ids[1]).work_email, None);
    assert_eq!(
        get(ids[2]).manager_id.as_deref(),
        Some("999999"),
        "kept as Lucca says"
    );
    assert_eq!(get(ids[3]).start_date, None);
    assert!(get(ids[4]).custom_fields.is_empty());
    let warnings = c.warnings();
    let reported = |id: u64, field: &str, text: &str| {
        assert!(
            warnings
                .iter()
                .any(|w| w.starts_with(&format!("person `{id}`: {field}")) && w.contains(text)),
            "no warning for {id} {field} {text}: {warnings:#?}"
        );
    };
    reported(
        ids[0],
        "birth-date",
        "`1985-02-30T00:00:00` is not a valid date",
    );
    reported(ids[1], "work-email", "no work email");
    reported(
        ids[2],
        "manager-id",
        "manager `999999` is not among the 60 people",
    );
    reported(ids[3], "start-date", "`bientôt`");
    reported(ids[4], "custom:e_badge_date", "2025-13-01");
    let plugin_lines = c.log.lines();
    assert!(
        plugin_lines.iter().all(|l| l.plugin == "lucca"),
        "attributed to the plugin"
    );
    assert!(
        plugin_lines
            .iter()
            .any(|l| l.message.starts_with("read 60 people from Lucca"))
    );
}

#[test]
fn truncated_and_malformed_pages_fail_the_read_naming_the_page() {
    let lucca = LuccaSim::start(
        Tenant::generate(9, 300),
        LuccaOptions {
            rate_limit: None,
            faults: vec![
                Fault::new(2, FaultKind::TruncatedPage),
                Fault::new(3, FaultKind::MalformedJson),
            ],
            ..LuccaOptions::default()
        },
    )
    .unwrap();
    let mut c = open(&lucca, &[("page_size", "100")]);
    let e = connector_error(&c.instance.read_all_people(None).unwrap_err());
    assert!(
        matches!(&e, ConnectorError::Invalid(m) if m.contains("offset 100") && m.contains("truncated")),
        "{e:?}"
    );
    let e = connector_error(&c.instance.read_all_people(None).unwrap_err());
    assert!(
        matches!(&e, ConnectorError::Invalid(m) if m.contains("offset 0") && m.contains("malformed JSON")),
        "{e:?}"
    );
    assert_eq!(
        c.instance.read_all_people(None).unwrap().people.len(),
        300,
        "then it reads fine"
    );
}

#[test]
fn modified_since_reads_only_what_changed() {
    let lucca = sim(Tenant::generate(12, 400));
    let mut c = open(&lucca, &[("modified_since", "2026-01-01T01:00:00+01:00")]);
    // One page (400 < 1000): the plugin says `changes` — absent people are unchanged, not
    // gone. (The host's whole read, asked without `since`, refuses a `changes` answer; see
    // the h-plugins report: the setting and that rule must be reconciled.)
    let page = c.instance.read_people(None).unwrap();
    assert_eq!(page.coverage, Coverage::Changes);
    assert_eq!(page.next, None);
    let people = page.items;
    let want: BTreeSet<String> = lucca
        .tenant()
        .users
        .iter()
        .filter(|u| u.modified_at.as_str() >= "2026-01-01T00:00:00")
        .map(|u| u.id.to_string())
        .collect();
    assert!(!want.is_empty() && want.len() < 400);
    assert_eq!(
        people.iter().map(|p| p.id.clone()).collect::<BTreeSet<_>>(),
        want
    );
    let url = &lucca.request_log().records[0].url;
    assert!(
        url.contains("modifiedAt=since,2026-01-01T00:00:00"),
        "{url}"
    );
    // A target read is always complete.
    assert_eq!(c.instance.read_all_accounts().unwrap().people.len(), 400);
}

// ---------------------------------------------------------------- writes

fn hire(id: &str) -> Person {
    Person {
        id: id.into(),
        employee_number: None,
        given_name: Some("Éloïse".into()),
        family_name: Some("Nuñez".into()),
        work_email: Some("eloise.nunez@sandbox.example".into()),
        personal_email: None,
        phone: Some("+33 6 11 22 33 44".into()),
        login: None,
        birth_date: None,
        start_date: date("2026-07-01"),
        end_date: None,
        job_title: Some("Designer".into()),
        gender: Some(Gender::Female),
        department_id: None,
        manager_id: None,
        legal_entity_id: None,
        contract_type: None,
        active: true,
        custom_fields: vec![],
    }
}

/// Defaults may be given by name: the establishment and department through the v4
/// organisation lists, the main role through `GET /api/v3/roles`, resolved once; a name
/// that matches nothing fails `check` (and the create) naming the setting and close names.
#[test]
fn create_defaults_by_name_are_resolved_and_a_wrong_name_is_named() {
    let lucca = sim(Tenant::generate(13, 30));
    let t = lucca.tenant();
    let (establishment, department) = (&t.establishments[1], &t.departments[0]);
    let role = &t.roles[1];
    let mut c = open(
        &lucca,
        &[
            ("default_legal_entity", &establishment.name.to_uppercase()),
            ("default_department", &department.name),
            ("default_role", &role.name),
        ],
    );
    c.instance.check().expect("check resolves the names");
    let id = c
        .instance
        .apply(&Operation::Create(hire("teelt-1")))
        .unwrap()
        .target_id;
    let u = lucca.tenant().user(id.parse().unwrap()).cloned().unwrap();
    assert_eq!(
        (u.legal_entity_id, u.department_id, u.role_principal_id),
        (Some(establishment.id), Some(department.id), Some(role.id))
    );

    let misspelt: String = role.name.chars().rev().collect::<String>() + "x";
    let mut c = open(
        &lucca,
        &[("default_role", &role.name[..role.name.len() - 1])],
    );
    let e = connector_error(&c.instance.check().unwrap_err());
    let close = &role.name;
    assert!(
        matches!(&e, ConnectorError::Invalid(m) if m.starts_with("setting `default_role`:") && m.contains("matches no Lucca role") && m.contains(&format!("did you mean {close}"))),
        "{e:?}"
    );
    let mut c = open(&lucca, &[("default_department", &misspelt)]);
    let e = connector_error(
        &c.instance
            .apply(&Operation::Create(hire("teelt-2")))
            .unwrap_err(),
    );
    assert!(
        matches!(&e, ConnectorError::Invalid(m) if m.contains("setting `default_department`") && m.contains(&misspelt)),
        "{e:?}"
    );
}

#[test]
fn create_fills_mandatory_fields_from_defaults_and_names_a_missing_one() {
    let lucca = sim(Tenant::generate(13, 30));
    let mut c = open(
        &lucca,
        &[
            ("default_legal_entity_id", "2"),
            ("default_department_id", "1"),
            ("default_role_id", "1"),
        ],
    );
    let mut p = hire("flatchr-17");
    p.department_id = Some("Sales".into()); // by name, as a recruiting tool knows it
    let id = c.instance.apply(&Operation::Create(p)).unwrap().target_id;
    let t = lucca.tenant();
    let u = t.user(id.parse().unwrap()).unwrap();
    assert_eq!(
        (u.first_name.as_str(), u.last_name.as_str()),
        ("Éloïse", "Nuñez")
    );
    assert_eq!(u.legal_entity_id, Some(2), "default");
    assert_eq!(u.role_principal_id, Some(1), "default");
    assert_eq!(
        u.department_id,
        t.departments
            .iter()
            .find(|d| d.name == "Sales")
            .map(|d| d.id)
    );
    assert_eq!(u.professional_mobile.as_deref(), Some("+33 6 11 22 33 44"));
    assert_eq!(u.dt_contract_start.as_deref(), Some("2026-07-01T00:00:00"));
    assert_eq!(u.gender, "Female");
    assert_eq!(
        u.login, "enunez",
        "generated by Lucca: first letter + last name"
    );

    // No role anywhere: Lucca refuses, and the error names the field and the setting.
    let mut c = open(
        &lucca,
        &[
            ("default_legal_entity_id", "2"),
            ("default_department_id", "1"),
        ],
    );
    let e = connector_error(
        &c.instance
            .apply(&Operation::Create(hire("teelt-4")))
            .unwrap_err(),
    );
    assert!(
        matches!(&e, ConnectorError::Invalid(m) if m.contains("person `teelt-4`") && m.contains("`rolePrincipalId` (main role) is mandatory") && m.contains("`default_role_id`")),
        "{e:?}"
    );
    let mut c2 = open(
        &lucca,
        &[("default_role_id", "1"), ("default_department_id", "1")],
    );
    let e = connector_error(
        &c2.instance
            .apply(&Operation::Create(hire("teelt-5")))
            .unwrap_err(),
    );
    assert!(
        matches!(&e, ConnectorError::Invalid(m) if m.contains("`legalEntityId` (legal entity)") && m.contains("`default_legal_entity_id`")),
        "{e:?}"
    );
    // The tenant's own defaults count too.
    lucca.with_tenant(|t| {
        t.defaults = CreateDefaults {
            legal_entity_id: Some(1),
            department_id: Some(1),
            role_principal_id: Some(1),
        }
    });
    c.instance
        .apply(&Operation::Create(hire("teelt-4")))
        .expect("tenant defaults");
    // Missing names are refused before any request.
    let mut nameless = hire("flatchr-18");
    nameless.family_name = None;
    let e = connector_error(&c.instance.apply(&Operation::Create(nameless)).unwrap_err());
    assert!(
        matches!(&e, ConnectorError::Invalid(m) if m.contains("family-name (Lucca `lastName`) is mandatory")),
        "{e:?}"
    );
    // Lucca has no deactivation: inbound flows are create-only.
    assert_eq!(
        connector_error(
            &c.instance
                .apply(&Operation::Deactivate(AccountRef { id }))
                .unwrap_err()
        ),
        ConnectorError::Unsupported
    );
}

#[test]
fn update_writes_only_the_listed_fields_and_sets_the_manager() {
    let lucca = sim(Tenant::generate(14, 30));
    let mut c = open(&lucca, &[]);
    let before = lucca.tenant().users[5].clone();
    let mut p = hire(&before.id.to_string());
    p.work_email = Some("new.address@sandbox.example".into());
    p.end_date = date("2026-12-31");
    let update = AccountUpdate {
        id: before.id.to_string(),
        person: p,
        fields: vec![
            FieldRef::Canonical(Field::WorkEmail),
            FieldRef::Canonical(Field::EndDate),
        ],
        rows: Vec::new(),
    };
    c.instance.apply(&Operation::Update(update)).unwrap();
    let after = lucca.tenant().user(before.id).unwrap().clone();
    assert_eq!(after.mail.as_deref(), Some("new.address@sandbox.example"));
    assert_eq!(
        after.dt_contract_end.as_deref(),
        Some("2026-12-31T00:00:00")
    );
    assert_eq!(after.first_name, before.first_name, "not listed: untouched");
    assert_eq!(after.professional_mobile, before.professional_mobile);
    let manager = lucca.tenant().users[1].id;
    c.instance
        .apply(&Operation::SetManager(ManagerChange {
            id: before.id.to_string(),
            manager_id: Some(manager.to_string()),
        }))
        .unwrap();
    assert_eq!(
        lucca.tenant().user(before.id).unwrap().manager_id,
        Some(manager)
    );
    let e = connector_error(
        &c.instance
            .apply(&Operation::Update(AccountUpdate {
                id: "424242".into(),
                person: hire("424242"),
                fields: vec![FieldRef::Canonical(Field::JobTitle)],
                rows: Vec::new(),
            }))
            .unwrap_err(),
    );
    assert_eq!(
        e,
        ConnectorError::NotFound,
        "Lucca's 500 for a missing user becomes not-found"
    );
}

fn formation(title: &str, progress: f64) -> Vec<(String, Scalar)> {
    vec![
        ("e_title".to_string(), Scalar::Text(title.into())),
        ("e_progress".to_string(), Scalar::Number(progress)),
        (
            "e_last_completion_date".to_string(),
            Scalar::Date(date("2026-05-20").unwrap()),
        ),
    ]
}

/// Cards' write-back: training rows in the compound multi-occurrence `e_formation`, plus a
/// single value; each write read back through the connector.
#[test]
fn extended_data_round_trip_single_and_compound_rows() {
    let lucca = sim(Tenant::generate(15, 30));
    let mut c = open(&lucca, &[("custom_fields", "e_tshirt,e_formation")]);
    let uid = lucca.with_tenant(|t| {
        let u = &mut t.users[3];
        u.extended.clear();
        u.id
    });
    let read = |c: &mut lucca::Lucca| {
        c.instance
            .read_all_people(None)
            .unwrap()
            .people
            .into_iter()
            .find(|p| p.id == uid.to_string())
            .unwrap()
            .custom_fields
    };
    let write = |c: &mut lucca::Lucca, fields: Vec<(String, FieldValue)>, names: &[&str]| {
        let mut p = hire(&uid.to_string());
        p.custom_fields = fields;
        c.instance
            .apply(&Operation::Update(AccountUpdate {
                id: uid.to_string(),
                person: p,
                fields: names
                    .iter()
                    .map(|n| parse_field_ref(n).expect("a field"))
                    .collect(),
                rows: Vec::new(),
            }))
            .unwrap();
    };
    let occurrence_ids = || -> Vec<u64> {
        lucca
            .tenant()
            .user(uid)
            .unwrap()
            .extended
            .get("e_formation")
            .map(|o| o.iter().map(|o| o.id).collect())
            .unwrap_or_default()
    };

    // Single value: set, change, clear.
    write(
        &mut c,
        vec![("e_tshirt".into(), FieldValue::Text("M".into()))],
        &["custom:e_tshirt"],
    );
    assert_eq!(
        read(&mut c),
        vec![("e_tshirt".to_string(), FieldValue::Text("M".into()))]
    );
    write(
        &mut c,
        vec![("e_tshirt".into(), FieldValue::Text("L".into()))],
        &["custom:e_tshirt"],
    );
    assert_eq!(
        read(&mut c),
        vec![("e_tshirt".to_string(), FieldValue::Text("L".into()))]
    );
    assert_eq!(
        lucca.tenant().user(uid).unwrap().extended["e_tshirt"].len(),
        1
    );
    write(&mut c, vec![], &["custom:e_tshirt"]);
    assert_eq!(read(&mut c), vec![]);

    // Rows: add two.
    let rows =
        |r: Vec<Vec<(String, Scalar)>>| vec![("e_formation".to_string(), FieldValue::Rows(r))];
    write(
        &mut c,
        rows(vec![
            formation("RGPD", 40.0),
            formation("Onboarding", 100.0),
        ]),
        &["custom:e_formation"],
    );
    let sorted = rows(vec![
        formation("Onboarding", 100.0),
        formation("RGPD", 40.0),
    ]);
    let sorted_rows = |f: &[(String, FieldValue)]| -> Vec<(String, FieldValue)> {
        f.iter()
            .map(|(k, v)| match v {
                FieldValue::Rows(r) => (
                    k.clone(),
                    FieldValue::Rows(
                        r.iter()
                            .map(|row| {
                                let mut row = row.clone();
                                row.sort_by(|a, b| a.0.cmp(&b.0));
                                row
                            })
                            .collect(),
                    ),
                ),
                v => (k.clone(), v.clone()),
            })
            .collect()
    };
    assert_eq!(read(&mut c), sorted_rows(&sorted));
    let ids = occurrence_ids();
    assert_eq!(ids.len(), 2);

    // Update one (same occurrence id), keep one untouched.
    write(
        &mut c,
        rows(vec![
            formation("Onboarding", 100.0),
            formation("RGPD", 90.0),
        ]),
        &["custom:e_formation"],
    );
    assert_eq!(
        read(&mut c),
        sorted_rows(&rows(vec![
            formation("Onboarding", 100.0),
            formation("RGPD", 90.0)
        ]))
    );
    assert_eq!(
        occurrence_ids(),
        ids,
        "updated in place, not deleted and recreated"
    );

    // Remove one, add another.
    write(
        &mut c,
        rows(vec![
            formation("RGPD", 90.0),
            formation("Sécurité incendie", 10.0),
        ]),
        &["custom:e_formation"],
    );
    assert_eq!(
        read(&mut c),
        sorted_rows(&rows(vec![
            formation("RGPD", 90.0),
            formation("Sécurité incendie", 10.0)
        ]))
    );
    let now = occurrence_ids();
    assert_eq!(now.len(), 2);
    assert!(
        now.contains(&ids[0]) && !now.contains(&ids[1]),
        "{ids:?} → {now:?}"
    );

    // The same rows again: nothing to write, no PUT.
    lucca.clear_request_log();
    write(
        &mut c,
        rows(vec![
            formation("Sécurité incendie", 10.0),
            formation("RGPD", 90.0),
        ]),
        &["custom:e_formation"],
    );
    assert_eq!(
        lucca
            .request_log()
            .records
            .iter()
            .filter(|r| r.method == "PUT")
            .count(),
        0
    );
    // The body wrote at the root, never inside extendedData.
    assert!(
        lucca
            .tenant()
            .user(uid)
            .unwrap()
            .extended
            .contains_key("e_formation")
    );
}

// ---------------------------------------------------------------- setup errors

#[test]
fn a_key_without_manage_users_is_forbidden_naming_the_permission() {
    let lucca = LuccaSim::start(
        Tenant::generate(16, 10),
        LuccaOptions {
            keys: vec![
                ApiKey::with_permissions("org-only-key", &[Permission::OrganizationStructure]),
                ApiKey::with_permissions(
                    "no-custom-key",
                    &[Permission::ManageUsers, Permission::OrganizationStructure],
                ),
            ],
            rate_limit: None,
            ..LuccaOptions::default()
        },
    )
    .unwrap();
    let mut c = connect(
        &lucca,
        Connect {
            cache_dir: cache(),
            ..Connect::default()
        },
    )
    .unwrap();
    let e = c.instance.check().unwrap_err();
    assert!(
        matches!(connector_error(&e), ConnectorError::Forbidden(m) if m.starts_with("the API key lacks 'Coworkers > Manage users'")),
        "{e}"
    );
    // In muster's words: what to do, the visibility permissions too, never Lucca's own text.
    let text = e.to_string();
    assert!(
        text.contains("'See future employees'") && text.contains("'See former employees'"),
        "{text}"
    );
    assert!(
        !text.contains("Forbidden: the API key's role"),
        "vendor text echoed: {text}"
    );
    assert!(
        e.to_string()
            .contains("the API key lacks 'Coworkers > Manage users'"),
        "operator-facing: {e}"
    );
    let mut c = connect(
        &lucca,
        Connect {
            secret: Some("no-custom-key".into()),
            settings: settings(&[("custom_fields", "*")]),
            cache_dir: cache(),
            ..Connect::default()
        },
    )
    .unwrap();
    let e = connector_error(&c.instance.read_all_people(None).unwrap_err());
    assert!(
        matches!(&e, ConnectorError::Forbidden(m) if m.contains("'Coworkers > HR file > Custom data'")),
        "{e:?}"
    );
    let mut c = connect(
        &lucca,
        Connect {
            secret: Some("wrong".into()),
            cache_dir: cache(),
            ..Connect::default()
        },
    )
    .unwrap();
    assert!(matches!(
        connector_error(&c.instance.check().unwrap_err()),
        ConnectorError::Unauthorized(m) if m.contains("`api-key` slot")
    ));
}

/// A loopback server answering every request with `status`, `content_type` and `body`.
fn answering(status: u16, content_type: &str, body: &str) -> muster_sandbox::server::Server {
    use muster_sandbox::server::{Response, Server};
    let response = Response {
        status,
        headers: vec![("Content-Type".into(), content_type.into())],
        body: body.as_bytes().to_vec(),
    };
    Server::start(std::sync::Arc::new(move |_: &_| response.clone())).expect("server")
}

fn check_against(server: &muster_sandbox::server::Server) -> String {
    let base = format!("http://127.0.0.1:{}", server.port());
    let mut c = lucca::connect_to(
        &base,
        "some-key".into(),
        Connect {
            cache_dir: cache(),
            ..Connect::default()
        },
    )
    .expect("connect");
    let e = c
        .instance
        .check()
        .expect_err("checked against a server that refuses");
    e.to_string().replace(&base, "[BASE]")
}

/// Lucca's body does not always name the permission: the request says which one it needed,
/// and the vendor's text is never what the operator reads.
#[test]
fn a_403_without_a_named_permission_names_the_one_the_request_needs() {
    let server = answering(
        403,
        "application/json",
        r#"{"status":403,"message":"Access denied (policy 7)"}"#,
    );
    let text = check_against(&server);
    assert!(
        text.contains("the API key lacks 'Coworkers > Manage users'"),
        "{text}"
    );
    assert!(text.contains("'See future employees'"), "{text}");
    assert!(!text.contains("policy 7"), "vendor text echoed: {text}");
}

/// A subdomain that belongs to some other web site: it answers, but HTML.
#[test]
fn a_server_that_is_not_lucca_says_so_and_points_at_the_subdomain() {
    for (status, page) in [
        (
            200,
            "<!DOCTYPE html><html><body>Welcome to Acme</body></html>",
        ),
        (404, "<html><body>Not Found</body></html>"),
    ] {
        let server = answering(status, "text/html", page);
        let text = check_against(&server);
        assert!(
            text.contains("[BASE] does not answer like a Lucca API")
                && text.contains("check `subdomain`"),
            "{status}: {text}"
        );
        assert!(!text.contains("not found"), "{status}: {text}");
    }
}

/// A key pasted with a stray space: the host refuses to send it and says why, and the
/// message reaches the operator through the plugin's error. Nothing reaches Lucca.
#[test]
fn a_key_with_stray_spaces_is_refused_with_a_clear_message() {
    let lucca = sim(Tenant::generate(17, 10));
    for secret in [
        format!(" {}", lucca.api_key()),
        format!("{}  ", lucca.api_key()),
        format!("{}\n", lucca.api_key()),
    ] {
        let mut c = connect(
            &lucca,
            Connect {
                secret: Some(secret),
                cache_dir: cache(),
                ..Connect::default()
            },
        )
        .unwrap();
        let e = c.instance.check().unwrap_err();
        assert!(
            matches!(connector_error(&e), ConnectorError::Invalid(m) if m.contains("the secret for slot `api-key` has leading or trailing spaces")),
            "{e:?}"
        );
        assert!(
            !e.to_string().contains(lucca.api_key()),
            "the secret never shows: {e}"
        );
        assert!(c.instance.read_all_people(None).is_err());
    }
    assert_eq!(lucca.request_log().records.len(), 0, "nothing was sent");
    let mut ok = connect(
        &lucca,
        Connect {
            cache_dir: cache(),
            ..Connect::default()
        },
    )
    .unwrap();
    ok.instance
        .check()
        .expect("the same key without spaces works");
}

#[test]
fn manifest_and_settings() {
    let lucca = sim(Tenant::generate(18, 1));
    let c = open(&lucca, &[]);
    let m = c.instance.manifest();
    assert_eq!(m.name, "lucca");
    assert!(m.hosts.contains(&"https://*.ilucca.net".to_string()));
    assert_eq!(m.credential_slots[0].name, "api-key");
    assert_eq!(m.credential_slots[0].template, "lucca application={secret}");
    let keys: Vec<&str> = m.config_keys.iter().map(|k| k.name.as_str()).collect();
    for k in [
        "subdomain",
        "base_url",
        "modified_since",
        "default_legal_entity_id",
        "default_department_id",
        "default_role_id",
        "default_legal_entity",
        "default_department",
        "default_role",
        "custom_fields",
        "row_keys",
    ] {
        assert!(keys.contains(&k), "{k}");
    }
    let e = connect(
        &lucca,
        Connect {
            settings: settings(&[("page_size", "5000")]),
            cache_dir: cache(),
            ..Connect::default()
        },
    )
    .err()
    .unwrap();
    assert!(
        matches!(connector_error(&e), ConnectorError::Invalid(m) if m.contains("`page_size`")),
        "{e}"
    );
    let _ = LUCCA_LIMIT;
}

/// When Lucca asks to wait longer than the host retries for, the 429 reaches the plugin and
/// comes back as `rate-limited` with Lucca's `Retry-After`.
#[test]
fn a_long_retry_after_reaches_the_engine_as_rate_limited() {
    let scale = 100.0;
    let lucca = LuccaSim::start(
        Tenant::generate(19, 10),
        LuccaOptions {
            time_scale: scale,
            rate_limit: Some(muster_sandbox::RateLimit {
                requests: 1,
                window_secs: 3600.0,
            }),
            ..LuccaOptions::default()
        },
    )
    .unwrap();
    let mut c = connect(
        &lucca,
        Connect {
            time_scale: scale,
            cache_dir: cache(),
            ..Connect::default()
        },
    )
    .unwrap();
    assert_eq!(c.instance.read_all_people(None).unwrap().people.len(), 10);
    let e = connector_error(&c.instance.read_all_people(None).unwrap_err());
    let ConnectorError::RateLimited(secs) = e else {
        panic!("{e:?}")
    };
    assert!((3000..=3600).contains(&secs), "Lucca's Retry-After: {secs}");
    assert_eq!(
        lucca.request_log().count_status(429),
        1,
        "not retried for an hour"
    );
}

// ---------------------------------------------------------------- contract 0.2.0

/// A full read says `full` and returns where the next read may start (Lucca's clock at the
/// read's first page); a read since that watermark says `changes` and returns only the people
/// modified since, plus a new watermark.
#[test]
fn a_read_since_the_watermark_is_incremental_and_says_so() {
    let lucca = sim(Tenant::generate(21, 120));
    let mut c = open(&lucca, &[]);
    let before = lucca.now();
    let full = c.instance.read_all_people(None).unwrap();
    assert_eq!(full.coverage, Coverage::Full);
    assert_eq!(full.people.len(), 120);
    let mark = full
        .watermark
        .clone()
        .expect("a people read returns a watermark");
    assert!(
        mark.as_str() >= before.as_str() && mark.as_str() <= lucca.now().as_str(),
        "the read's start by Lucca's clock: {before} <= {mark} <= {}",
        lucca.now()
    );
    // Two people change after the read started.
    let changed: BTreeSet<String> = lucca.with_tenant(|t| {
        [5usize, 77]
            .iter()
            .map(|&i| {
                t.users[i].job_title = Some("Changed".into());
                t.users[i].modified_at = "2099-01-01T00:00:00".into();
                t.users[i].id.to_string()
            })
            .collect()
    });
    lucca.clear_request_log();
    let since = c.instance.read_all_people(Some(&mark)).unwrap();
    assert_eq!(since.coverage, Coverage::Changes);
    let ids: BTreeSet<String> = since.people.iter().map(|p| p.id.clone()).collect();
    assert!(
        changed.is_subset(&ids) && ids.len() < 120,
        "the changed people, not everybody: {ids:?}"
    );
    assert!(since.watermark.is_some());
    let url = &lucca.request_log().records[0].url;
    assert!(url.contains(&format!("modifiedAt=since,{mark}")), "{url}");
    // A target read is always complete, without watermark.
    let accounts = c.instance.read_all_accounts().unwrap();
    assert_eq!(accounts.coverage, Coverage::Full);
    assert_eq!(accounts.watermark, None);
    assert_eq!(accounts.people.len(), 120);
}

/// One person by id, as the whole read gives it; `none` for an id Lucca does not know.
#[test]
fn read_person_reads_one_user_or_none() {
    let lucca = sim(Tenant::generate(22, 50));
    let mut c = open(&lucca, &[]);
    let all = c.instance.read_all_people(None).unwrap().people;
    let id = all[17].id.clone();
    lucca.clear_request_log();
    let one = c.instance.read_person(&id).unwrap().expect("exists");
    assert_eq!(one, all[17]);
    let log = lucca.request_log();
    assert_eq!(log.records.len(), 1, "one GET");
    assert!(
        log.records[0]
            .url
            .starts_with(&format!("/api/v3/users/{id}?fields=")),
        "{}",
        log.records[0].url
    );
    assert_eq!(c.instance.read_person("999999").unwrap(), None);
    assert_eq!(
        c.instance.read_account(&id).unwrap().as_ref(),
        Some(&all[17])
    );
}

/// An impossible date and an unknown gender: the person is read with both fields absent,
/// and the page carries one problem per field, naming the person.
#[test]
fn unreadable_values_are_problems_on_the_page() {
    let lucca = sim(Tenant::generate(23, 20));
    let id = lucca.with_tenant(|t| {
        let u = &mut t.users[4];
        u.birth_date = Some("1990-02-30T00:00:00".into());
        u.gender = "Robot".into();
        u.mail = Some("odd@sandbox.example".into());
        u.id.to_string()
    });
    let mut c = open(&lucca, &[]);
    let read = c.instance.read_all_people(None).unwrap();
    assert_eq!(read.people.len(), 20, "nobody dropped");
    let p = read.people.iter().find(|p| p.id == id).unwrap();
    assert_eq!(p.birth_date, None);
    assert_eq!(p.gender, None);
    assert_eq!(p.work_email.as_deref(), Some("odd@sandbox.example"));
    let mine: Vec<Option<FieldRef>> = read
        .problems
        .iter()
        .filter(|pr| pr.record_id == id)
        .map(|pr| pr.field.clone())
        .collect();
    assert_eq!(
        mine,
        [
            Some(FieldRef::Canonical(Field::BirthDate)),
            Some(FieldRef::Canonical(Field::Gender)),
        ]
    );
    assert!(
        read.problems
            .iter()
            .any(|pr| pr.message.contains("`Robot`"))
    );
}

/// Genders: Lucca's four spellings map to the enum, and the enum is written back in Lucca's.
#[test]
fn genders_are_the_contract_enum_both_ways() {
    let lucca = sim(Tenant::generate(24, 4));
    let ids: Vec<String> = lucca.with_tenant(|t| {
        for (u, g) in t
            .users
            .iter_mut()
            .zip(["Male", "Female", "Misc", "Undefined"])
        {
            u.gender = g.into();
        }
        t.users.iter().map(|u| u.id.to_string()).collect()
    });
    let mut c = open(&lucca, &[]);
    let read = c.instance.read_all_people(None).unwrap();
    let genders: Vec<Option<Gender>> = ids
        .iter()
        .map(|id| read.people.iter().find(|p| &p.id == id).unwrap().gender)
        .collect();
    assert_eq!(
        genders,
        [
            Some(Gender::Male),
            Some(Gender::Female),
            Some(Gender::Diverse),
            Some(Gender::Undefined)
        ]
    );
    let mut p = hire(&ids[0]);
    p.gender = Some(Gender::Diverse);
    c.instance
        .apply(&Operation::Update(AccountUpdate {
            id: ids[0].clone(),
            person: p,
            fields: vec![FieldRef::Canonical(Field::Gender)],
            rows: vec![],
        }))
        .unwrap();
    let uid: u64 = ids[0].parse().unwrap();
    assert_eq!(lucca.tenant().user(uid).unwrap().gender, "Misc");
}

/// Row-level changes to `e_formation`, keyed by `e_title`: only the named rows are touched,
/// whatever the order Lucca holds them in; the same changes again write nothing.
#[test]
fn row_changes_touch_only_the_occurrences_they_name() {
    let lucca = sim(Tenant::generate(25, 10));
    let mut c = open(&lucca, &[("custom_fields", "e_formation")]);
    let uid = lucca.with_tenant(|t| {
        t.users[2].extended.clear();
        t.users[2].id
    });
    let update = |rows: Vec<RowChange>| {
        Operation::Update(AccountUpdate {
            id: uid.to_string(),
            person: hire(&uid.to_string()),
            fields: vec![],
            rows,
        })
    };
    let rc = |action: RowAction| RowChange {
        field: "e_formation".into(),
        key: "e_title".into(),
        action,
    };
    c.instance
        .apply(&update(vec![
            rc(RowAction::Add(formation("Onboarding", 100.0))),
            rc(RowAction::Add(formation("RGPD", 40.0))),
            rc(RowAction::Add(formation("Old", 5.0))),
        ]))
        .unwrap();
    let occurrences = || lucca.tenant().user(uid).unwrap().extended["e_formation"].clone();
    let before = occurrences();
    assert_eq!(before.len(), 3);
    let id_of = |occ: &[Occurrence], title: &str| {
        occ.iter()
            .find(|o| o.value["e_title"] == title)
            .map(|o| o.id)
    };
    lucca.clear_request_log();
    let changes = vec![
        rc(RowAction::Change(formation("RGPD", 80.0))),
        rc(RowAction::Remove(Scalar::Text("Old".into()))),
        rc(RowAction::Add(formation("Sécurité incendie", 10.0))),
    ];
    c.instance.apply(&update(changes.clone())).unwrap();
    let after = occurrences();
    assert_eq!(after.len(), 3);
    assert_eq!(
        id_of(&after, "RGPD"),
        id_of(&before, "RGPD"),
        "changed in place"
    );
    assert_eq!(
        after
            .iter()
            .find(|o| o.value["e_title"] == "RGPD")
            .unwrap()
            .value["e_progress"],
        json!(80)
    );
    assert_eq!(id_of(&after, "Old"), None);
    assert!(id_of(&after, "Sécurité incendie").is_some());
    assert_eq!(
        after.iter().find(|o| o.value["e_title"] == "Onboarding"),
        before.iter().find(|o| o.value["e_title"] == "Onboarding"),
        "a row no change names is untouched"
    );
    let puts = |l: &LuccaSim| {
        l.request_log()
            .records
            .iter()
            .filter(|r| r.method == "PUT")
            .count()
    };
    assert_eq!(puts(&lucca), 1, "one PUT for the three changes");
    lucca.clear_request_log();
    c.instance.apply(&update(changes)).unwrap();
    assert_eq!(puts(&lucca), 0, "applied twice (a retry): nothing to write");
    assert_eq!(occurrences(), after);
}

#[test]
fn the_manifest_declares_lucca_s_rate_limit_per_host() {
    let lucca = sim(Tenant::generate(26, 1));
    let c = open(&lucca, &[]);
    let limits: Vec<(&str, u32, u32)> = c
        .instance
        .manifest()
        .rate_limits
        .iter()
        .map(|l| (l.host.as_str(), l.requests, l.per_seconds))
        .collect();
    assert_eq!(
        limits,
        [
            ("https://*.ilucca.net", 50, 61),
            ("https://*.ilucca-test.net", 50, 61),
            ("https://*.ilucca-demo.net", 50, 61),
            ("https://*.ilucca.ch", 50, 61),
        ]
    );
}

// ---------------------------------------------------------------- budget shared through PostgreSQL

/// Several processes reading one tenant share its 50 requests / 60 s through the PostgreSQL
/// state (`muster::store::PostgresBudget`, issue 17 item 3). Time is scaled on every side:
/// the simulator's, the outbound clients' ([`lucca::ScaledClock`]) and the budget's, whose
/// windows follow the clients' scale by its explicit test option
/// ([`PostgresBudget::time_scale`]); its clock stays the PostgreSQL server's.
mod shared_budget {
    use super::*;
    use muster::store::{PostgresBudget, PostgresLocation};
    use muster_sandbox::postgres::{TestDatabase, test_database};
    use std::sync::Arc;

    /// Simulated seconds per real second: the windows are 6 s real, and the host's 1 s
    /// margin (`LUCCA_LIMIT`, 61 s) is 100 ms real, like the 10k-read tests above.
    const SCALE: f64 = 10.0;
    /// 25 people a page: a read of [`PEOPLE`] takes ~26 requests, so three readers at once
    /// need more than one window.
    const PEOPLE: usize = 600;

    fn location(db: &TestDatabase) -> PostgresLocation {
        PostgresLocation::parse(db.url(), db.password().map(str::to_string)).expect("test URL")
    }

    fn tenant_sim() -> LuccaSim {
        LuccaSim::start(
            Tenant::generate(31, PEOPLE),
            LuccaOptions {
                time_scale: SCALE,
                ..LuccaOptions::default()
            },
        )
        .expect("simulator")
    }

    /// A connector of its own (runtime, outbound client, limiter) on `base_url`, taking from
    /// its own connection to the budget when `db` is given.
    fn reader(base_url: &str, key: &str, db: Option<&PostgresLocation>) -> lucca::Lucca {
        let c = lucca::connect_to(
            base_url,
            key.to_string(),
            Connect {
                settings: settings(&[("page_size", "25")]),
                time_scale: SCALE,
                cache_dir: cache(),
                ..Connect::default()
            },
        )
        .expect("connect");
        if let Some(location) = db {
            let budget = PostgresBudget::new(location).time_scale(SCALE);
            c.outbound.set_shared_limiter(Some(Arc::new(budget)));
        }
        c
    }

    /// Three readers read the whole tenant at once, each on its own thread.
    fn three_read_at_once(
        sim: &LuccaSim,
        db: Option<&PostgresLocation>,
    ) -> Vec<Result<usize, String>> {
        let readers: Vec<_> = (0..3)
            .map(|_| reader(&sim.base_url(), sim.api_key(), db))
            .collect();
        let threads: Vec<_> = readers
            .into_iter()
            .map(|mut r| {
                std::thread::spawn(move || {
                    r.instance
                        .read_all_people(None)
                        .map(|read| read.people.len())
                        .map_err(|e| e.to_string())
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().expect("reader"))
            .collect()
    }

    #[test]
    fn three_readers_of_one_tenant_stay_within_its_limit_together() {
        // Without a shared budget, each reader keeps to 50 a minute on its own: together
        // they send more, and Lucca answers 429.
        let alone = tenant_sim();
        let _ = three_read_at_once(&alone, None);
        let log = alone.request_log();
        eprintln!(
            "three readers, each alone: {} requests, {} 429s",
            log.records.len(),
            log.count_status(429)
        );
        assert!(
            log.count_status(429) > 0,
            "three readers without a shared budget got no 429 ({} requests)",
            log.records.len()
        );
        // With it, the same load: no 429, never more than 50 in a minute, all read.
        let db = test_database().unwrap_or_else(|e| panic!("{e}"));
        let shared = tenant_sim();
        let reads = three_read_at_once(&shared, Some(&location(&db)));
        let log = shared.request_log();
        eprintln!(
            "three readers, shared budget: {} requests, {} 429s, at most {} in a simulated minute",
            log.records.len(),
            log.count_status(429),
            log.max_accepted_in_window(60.0)
        );
        for read in &reads {
            assert_eq!(read.as_ref().ok(), Some(&PEOPLE), "{reads:?}");
        }
        assert_eq!(log.count_status(429), 0, "{} requests", log.records.len());
        assert!(log.records.len() > 50, "{} requests", log.records.len());
        let max = log.max_accepted_in_window(60.0);
        assert!(max <= 50, "{max} requests in one simulated minute");
    }

    /// A client of its own to the test database's server, as an operator's `psql`: to the
    /// test database, or to `postgres` (a database cannot be closed from inside).
    fn admin(db: &TestDatabase, dbname: Option<&str>) -> postgres::Client {
        let mut config: postgres::Config = db.url().parse().expect("test URL");
        if let Some(p) = db.password() {
            config.password(p);
        }
        if let Some(name) = dbname {
            config.dbname(name);
        }
        config.connect(postgres::NoTls).expect("admin connection")
    }

    /// PostgreSQL slow (the budget's table locked by someone else): the call waits for the
    /// budget, then goes. PostgreSQL unreachable (the budget's connection cut and no new one
    /// allowed): the call fails naming the budget, and nothing reaches Lucca; once the
    /// database is back, the next call goes through on a new connection.
    #[test]
    fn a_slow_budget_makes_calls_wait_an_unreachable_one_fails_them_unsent() {
        let db = test_database().unwrap_or_else(|e| panic!("{e}"));
        let sim = tenant_sim();
        let mut r = reader(&sim.base_url(), sim.api_key(), Some(&location(&db)));
        r.instance.check().expect("check with the budget");
        let per_check = sim.request_log().records.len();

        let (locked_tx, locked) = std::sync::mpsc::channel();
        let clock = sim.clock();
        let mut locker_client = admin(&db, None);
        let locker = std::thread::spawn(move || {
            let mut tx = locker_client.transaction().expect("begin");
            tx.batch_execute("LOCK TABLE rate_budgets IN EXCLUSIVE MODE")
                .expect("lock");
            locked_tx.send(()).expect("signal");
            std::thread::sleep(Duration::from_millis(500));
            let released = clock.now();
            tx.commit().expect("commit");
            released
        });
        locked.recv().expect("locked");
        r.instance.check().expect("waits for the budget, then goes");
        let released = locker.join().expect("locker");
        let last = sim
            .request_log()
            .records
            .last()
            .cloned()
            .expect("a request");
        assert!(
            last.at >= released,
            "sent at {} before the budget was readable again at {released}",
            last.at
        );

        let mut admin = admin(&db, Some("postgres"));
        admin
            .batch_execute(&format!(
                "ALTER DATABASE {0} ALLOW_CONNECTIONS false;
                 SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                  WHERE application_name = 'muster-budget' AND datname = '{0}';",
                db.name()
            ))
            .expect("cut the budget off");
        let sent = sim.request_log().records.len();
        let e = r.instance.check().expect_err("no budget, no call");
        assert!(
            e.to_string().contains("shared rate-limit budget")
                && e.to_string().contains("not sent"),
            "{e}"
        );
        assert_eq!(
            sim.request_log().records.len(),
            sent,
            "a call went out unpaced"
        );

        admin
            .batch_execute(&format!(
                "ALTER DATABASE {} ALLOW_CONNECTIONS true",
                db.name()
            ))
            .expect("reopen");
        r.instance.check().expect("back on a new connection");
        assert_eq!(sim.request_log().records.len(), sent + per_check);
    }

    /// Another integration (outside muster) spends the tenant's whole budget; reader A gets
    /// a 429 with `Retry-After`. It hands the back-off to the shared budget, so reader B — its
    /// own client and connection, as another process — waits for it too instead of sending
    /// into the spent window: no request after the 429 reaches Lucca before it allowed.
    #[test]
    fn a_429_holds_back_every_reader_of_the_tenant() {
        let db = test_database().unwrap_or_else(|e| panic!("{e}"));
        let sim = tenant_sim();
        let (base, key) = (sim.base_url(), sim.api_key().to_string());
        let mut a = reader(&base, &key, Some(&location(&db)));
        let mut b = reader(&base, &key, Some(&location(&db)));
        for _ in 0..50 {
            raw_get(&base, &key, "/api/v3/users?fields=id&paging=0,1");
        }
        let a = std::thread::spawn(move || a.instance.check().map_err(|e| e.to_string()));
        let mut admin = admin(&db, None);
        let mut held = || {
            admin
                .query_one(
                    "SELECT count(*) FROM rate_budgets WHERE held_until_us > 0",
                    &[],
                )
                .map(|r| r.get::<_, i64>(0) > 0)
                .unwrap_or(false)
        };
        let mut polls = 0;
        while !held() {
            polls += 1;
            assert!(polls < 600, "reader A never handed its 429 to the budget");
            std::thread::sleep(Duration::from_millis(50));
        }
        b.instance.check().expect("B, after the hold");
        a.join().expect("reader A").expect("A, after its 429");
        let log = sim.request_log();
        let first = log.records.first().expect("the neighbour's requests").at;
        let (i, r429) = log
            .records
            .iter()
            .enumerate()
            .find(|(_, r)| r.status == 429)
            .expect("A's 429");
        // What Lucca answered: the oldest request leaves the window then.
        let allowed = r429.at + (first + 60.0 - r429.at).ceil();
        for r in &log.records[i + 1..] {
            assert!(
                r.at >= allowed - 1.0,
                "{} sent at {:.1}, before Lucca's Retry-After ran out at {allowed:.1}",
                r.url,
                r.at
            );
        }
        assert!(log.records.len() > i + 1, "A and B sent after the hold");
    }

    /// What [`three_processes_of_one_tenant_stay_within_its_limit_together`] tells each
    /// worker process: `base_url key database-url [password]`.
    const WORKER: &str = "MUSTER_TEST_BUDGET_WORKER";

    /// One worker process: reads the tenant named in [`WORKER`] with the shared budget.
    /// Started by the test below, never on its own.
    #[test]
    #[ignore = "a worker process of three_processes_of_one_tenant_stay_within_its_limit_together"]
    fn budget_worker_process() {
        let spec = std::env::var(WORKER).expect("started by the three-process test");
        let mut parts = spec.split(' ');
        let (base, key, url) = (
            parts.next().expect("base_url"),
            parts.next().expect("key"),
            parts.next().expect("database URL"),
        );
        let location = PostgresLocation::parse(url, parts.next().map(str::to_string)).expect("URL");
        let mut r = reader(base, key, Some(&location));
        let people = r.instance.read_all_people(None).expect("read").people;
        assert_eq!(people.len(), PEOPLE);
    }

    /// Three `muster`-test *processes*, each with its own runtime, limiter and PostgreSQL
    /// connection, read one tenant at once: the simulator sees no 429 and never more than
    /// 50 requests in a minute. (Without the budget the same load gets 429s: see the test
    /// above.)
    #[test]
    fn three_processes_of_one_tenant_stay_within_its_limit_together() {
        let db = test_database().unwrap_or_else(|e| panic!("{e}"));
        let sim = tenant_sim();
        let spec = format!(
            "{} {} {} {}",
            sim.base_url(),
            sim.api_key(),
            db.url(),
            db.password().unwrap_or_default()
        );
        let exe = std::env::current_exe().expect("this test binary");
        let children: Vec<_> = (0..3)
            .map(|_| {
                std::process::Command::new(&exe)
                    .args([
                        "--exact",
                        "shared_budget::budget_worker_process",
                        "--ignored",
                    ])
                    .args(["--test-threads", "1"])
                    .env(WORKER, spec.trim_end())
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .expect("worker process")
            })
            .collect();
        for child in children {
            let out = child.wait_with_output().expect("worker");
            assert!(
                out.status.success(),
                "worker failed:\n{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(
                String::from_utf8_lossy(&out.stdout).contains("1 passed"),
                "the worker test did not run: {}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
        let log = sim.request_log();
        eprintln!(
            "three processes, shared budget: {} requests, {} 429s, at most {} in a simulated minute",
            log.records.len(),
            log.count_status(429),
            log.max_accepted_in_window(60.0)
        );
        assert_eq!(log.count_status(429), 0, "{} requests", log.records.len());
        assert!(log.records.len() > 50, "{} requests", log.records.len());
        let max = log.max_accepted_in_window(60.0);
        assert!(max <= 50, "{max} requests in one simulated minute");
    }
}
