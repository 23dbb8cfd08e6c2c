//! The Lucca simulator over real HTTP on loopback, with `ureq` as the client.

use std::time::Duration;

use muster_sandbox::lucca::DEFAULT_KEY;
use muster_sandbox::{
    ApiKey, Fault, FaultKind, Hub, LuccaOptions, LuccaSim, Permission, RateLimit, Tenant,
};
use serde_json::{Value, json};

struct Resp {
    status: u16,
    retry_after: Option<String>,
    raw: Vec<u8>,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.raw)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.raw)))
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

fn send(method: &str, url: &str, auth: Option<&str>, body: Option<&str>) -> Resp {
    let agent = agent();
    let result = match (method, body) {
        ("GET", _) => {
            let mut r = agent.get(url);
            if let Some(a) = auth {
                r = r.header("Authorization", a);
            }
            r.call()
        }
        (m, b) => {
            let mut r = if m == "POST" {
                agent.post(url)
            } else {
                agent.put(url)
            };
            if let Some(a) = auth {
                r = r.header("Authorization", a);
            }
            r.content_type("application/json")
                .send(b.unwrap_or("").as_bytes())
        }
    };
    let mut response = result.expect("HTTP exchange");
    Resp {
        status: response.status().as_u16(),
        retry_after: response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        raw: response.body_mut().read_to_vec().expect("body"),
    }
}

fn auth() -> String {
    format!("lucca application={DEFAULT_KEY}")
}

fn get(sim: &LuccaSim, path: &str) -> Resp {
    send(
        "GET",
        &format!("{}{path}", sim.base_url()),
        Some(&auth()),
        None,
    )
}

fn write(sim: &LuccaSim, method: &str, path: &str, body: &Value) -> Resp {
    send(
        method,
        &format!("{}{path}", sim.base_url()),
        Some(&auth()),
        Some(&body.to_string()),
    )
}

/// A simulator without the rate limit, for tests about something else.
fn start(tenant: Tenant) -> LuccaSim {
    LuccaSim::start(
        tenant,
        LuccaOptions {
            rate_limit: None,
            ..LuccaOptions::default()
        },
    )
    .expect("start")
}

fn items(v: &Value) -> &Vec<Value> {
    v["data"]["items"].as_array().expect("data.items")
}

fn ids(v: &Value) -> Vec<u64> {
    items(v)
        .iter()
        .map(|u| u["id"].as_u64().expect("id"))
        .collect()
}

// ---- auth ----

#[test]
fn auth_bad_missing_and_whitespace_keys_are_401() {
    let sim = start(Tenant::generate(1, 3));
    let url = format!("{}/api/v3/users", sim.base_url());
    assert_eq!(
        send("GET", &url, Some("lucca application=nope"), None).status,
        401
    );
    assert_eq!(send("GET", &url, None, None).status, 401);
    assert_eq!(
        send(
            "GET",
            &url,
            Some(&format!("lucca application= {DEFAULT_KEY}")),
            None
        )
        .status,
        401
    );
    assert_eq!(
        send("GET", &url, Some(&format!("Bearer {DEFAULT_KEY}")), None).status,
        401
    );
    let ok = send("GET", &url, Some(&auth()), None);
    assert_eq!(ok.status, 200);
    assert_eq!(sim.api_key(), DEFAULT_KEY);
}

#[test]
fn forbidden_names_the_missing_permission() {
    let options = LuccaOptions {
        keys: vec![
            ApiKey::with_permissions("org-only", &[Permission::OrganizationStructure]),
            ApiKey::with_permissions("users-only", &[Permission::ManageUsers]),
        ],
        rate_limit: None,
        ..LuccaOptions::default()
    };
    let sim = LuccaSim::start(Tenant::generate(1, 3), options).unwrap();
    let url = |p: &str| format!("{}{p}", sim.base_url());
    let r = send(
        "GET",
        &url("/api/v3/users"),
        Some("lucca application=org-only"),
        None,
    );
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["missingPermission"], "Coworkers > Manage users");
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("Coworkers > Manage users")
    );
    let r = send(
        "GET",
        &url("/api/v3/users?fields=id,extendedData"),
        Some("lucca application=users-only"),
        None,
    );
    assert_eq!(r.status, 403);
    assert_eq!(
        r.json()["missingPermission"],
        "Coworkers > HR file > Custom data"
    );
    let r = send(
        "GET",
        &url("/organization/structure/api/departments"),
        Some("lucca application=users-only"),
        None,
    );
    assert_eq!(r.status, 403);
    assert_eq!(
        r.json()["missingPermission"],
        "Organization > Structure > View"
    );
    assert_eq!(
        send(
            "GET",
            &url("/organization/structure/api/departments"),
            Some("lucca application=org-only"),
            None
        )
        .status,
        200
    );
}

// ---- users: paging, fields, filters ----

fn all_current(n: usize) -> Tenant {
    let mut t = Tenant::generate(5, n);
    for u in &mut t.users {
        u.dt_contract_end = None;
    }
    t
}

#[test]
fn paging_edges_0_1000_1001() {
    for (n, pages) in [
        (0usize, vec![0usize, 0]),
        (1000, vec![1000, 0]),
        (1001, vec![1000, 1]),
    ] {
        let sim = start(all_current(n));
        for (i, want) in pages.iter().enumerate() {
            let r = get(
                &sim,
                &format!("/api/v3/users?fields=id&paging={},1000", i * 1000),
            );
            assert_eq!(r.status, 200);
            assert_eq!(items(&r.json()).len(), *want, "{n} employees, page {i}");
        }
        // Default paging is 0,1000.
        assert_eq!(items(&get(&sim, "/api/v3/users").json()).len(), n.min(1000));
        let count = get(&sim, "/api/v3/users?fields=collection.count").json();
        assert_eq!(count["data"]["count"], json!(n));
        assert!(count["data"].get("items").is_none());
    }
    let sim = start(all_current(3));
    let r = get(&sim, "/api/v3/users?paging=0,1001");
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["field"], "paging");
    assert_eq!(get(&sim, "/api/v3/users?paging=zero").status, 400);
    assert_eq!(ids(&get(&sim, "/api/v3/users?paging=1,1").json()).len(), 1);
}

#[test]
fn fields_default_projection_and_envelope() {
    let sim = start(Tenant::generate(2, 20));
    let r = get(&sim, "/api/v3/users").json();
    assert_eq!(r["header"]["processId"], 0);
    assert!(r["header"]["generated"].is_string() && r["header"]["principal"].is_string());
    let first = items(&r)[0].as_object().unwrap();
    let mut keys: Vec<_> = first.keys().cloned().collect();
    keys.sort();
    assert_eq!(keys, ["id", "name", "url"]);
    assert!(first["url"].as_str().unwrap().starts_with(&sim.base_url()));
    assert!(first.get("id").unwrap().is_u64());

    let dotted = get(
        &sim,
        "/api/v3/users?fields=id,firstName,manager.id,manager.name,department.name",
    )
    .json();
    let nested = get(
        &sim,
        "/api/v3/users?fields=id,firstName,manager[id,name],department[name]",
    )
    .json();
    assert_eq!(dotted["data"], nested["data"]);
    let someone = items(&dotted)
        .iter()
        .find(|u| !u["manager"].is_null())
        .unwrap();
    assert!(someone["manager"]["id"].is_u64() && someone["manager"]["name"].is_string());
    assert_eq!(someone["department"].as_object().unwrap().len(), 1);
    assert!(someone.get("lastName").is_none());

    // Every documented field can be asked for.
    let all = "id,firstName,lastName,login,mail,personalEmail,birthDate,employeeNumber,jobTitle,gender,\
               dtContractStart,dtContractEnd,directLine,professionalMobile,personalMobile,legalEntityId,\
               legalEntity[id,name],departmentId,department[id,name],managerId,manager[id,name],rolePrincipalId,\
               rolePrincipal[id,name],modifiedAt,extendedData";
    let r = get(
        &sim,
        &format!("/api/v3/users?fields={}", all.replace(' ', "")),
    );
    assert_eq!(r.status, 200);
    let body = r.json();
    let u = &items(&body)[0];
    assert!(
        u["dtContractStart"]
            .as_str()
            .unwrap()
            .ends_with("T00:00:00")
    );
    assert!(u["extendedData"]["e_formation"].is_array());

    let r = get(&sim, "/api/v3/users?fields=id,nosuch");
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["field"], "nosuch");
    assert_eq!(get(&sim, "/api/v3/users?fields=id,manager[id").status, 400);

    // A single user: everything but extendedData, in {"data":{…}}.
    let id = items(&r_first(&sim))[0]["id"].as_u64().unwrap();
    let one = get(&sim, &format!("/api/v3/users/{id}")).json();
    assert_eq!(one["data"]["id"], id);
    assert!(one["data"]["firstName"].is_string() && one["data"].get("extendedData").is_none());
    assert_eq!(get(&sim, "/api/v3/users/999999").status, 404);
}

fn r_first(sim: &LuccaSim) -> Value {
    get(sim, "/api/v3/users?fields=id").json()
}

#[test]
fn filters() {
    let sim = start(Tenant::generate(9, 300));
    let t = sim.tenant();
    let now = sim.now();
    let sorted = |mut v: Vec<u64>| {
        v.sort();
        v
    };
    let current: Vec<u64> = t
        .users
        .iter()
        .filter(|u| !Tenant::is_former(u, &now))
        .map(|u| u.id)
        .collect();
    assert!(
        current.len() < t.users.len(),
        "the tenant has former employees"
    );
    assert_eq!(ids(&get(&sim, "/api/v3/users?fields=id").json()), current);
    assert_eq!(
        ids(&get(&sim, "/api/v3/users?fields=id&formerEmployees=true").json()).len(),
        t.users.len()
    );
    assert_eq!(get(&sim, "/api/v3/users?formerEmployees=maybe").status, 400);

    let with_end: Vec<u64> = t
        .users
        .iter()
        .filter(|u| u.dt_contract_end.is_some())
        .map(|u| u.id)
        .collect();
    let got = ids(&get(
        &sim,
        "/api/v3/users?fields=id&formerEmployees=true&dtContractEnd=notequal,null",
    )
    .json());
    assert_eq!(got, with_end);

    let since = "2025-06-01T08:45:23";
    let modified: Vec<u64> = t
        .users
        .iter()
        .filter(|u| u.modified_at.as_str() >= since && !Tenant::is_former(u, &now))
        .map(|u| u.id)
        .collect();
    assert!(!modified.is_empty() && modified.len() < current.len());
    assert_eq!(
        ids(&get(
            &sim,
            &format!("/api/v3/users?fields=id&modifiedAt=since,{since}")
        )
        .json()),
        modified
    );
    assert_eq!(
        get(&sim, "/api/v3/users?modifiedAt=since,notadate").status,
        400
    );

    let u = t
        .users
        .iter()
        .find(|u| u.mail.is_some() && !Tenant::is_former(u, &now))
        .unwrap();
    let mail = u.mail.clone().unwrap();
    let same_mail: Vec<u64> = t
        .users
        .iter()
        .filter(|x| x.mail.as_deref() == Some(&mail) && !Tenant::is_former(x, &now))
        .map(|x| x.id)
        .collect();
    assert_eq!(
        ids(&get(&sim, &format!("/api/v3/users?fields=id&mail={mail}")).json()),
        same_mail
    );
    assert_eq!(
        ids(&get(&sim, &format!("/api/v3/users?fields=id&login={}", u.login)).json()),
        vec![u.id]
    );
    let two = format!("{},{}", current[0], current[1]);
    assert_eq!(
        sorted(ids(&get(
            &sim,
            &format!("/api/v3/users?fields=id&id={two}")
        )
        .json())),
        vec![current[0], current[1]]
    );
    let no_mail = ids(&get(
        &sim,
        "/api/v3/users?fields=id&formerEmployees=true&mail=null",
    )
    .json());
    assert_eq!(
        no_mail.len(),
        t.users.iter().filter(|u| u.mail.is_none()).count()
    );
    assert_eq!(get(&sim, "/api/v3/users?nosuchfield=1").status, 400);
}

#[test]
fn date_range_like_operators_and_413() {
    let sim = start(Tenant::generate(9, 200));
    let t = sim.tenant();
    let now = sim.now();
    let current = |f: &dyn Fn(&muster_sandbox::User) -> bool| -> Vec<u64> {
        t.users
            .iter()
            .filter(|u| !Tenant::is_former(u, &now) && f(u))
            .map(|u| u.id)
            .collect()
    };
    let (a, b) = ("2025-01-01T00:00:00", "2025-12-31T00:00:00");
    let until = current(&|u| u.modified_at.as_str() <= a);
    assert_eq!(
        ids(&get(
            &sim,
            &format!("/api/v3/users?fields=id&modifiedAt=until,{a}")
        )
        .json()),
        until
    );
    let between = current(&|u| u.modified_at.as_str() >= a && u.modified_at.as_str() <= b);
    assert!(!between.is_empty());
    assert_eq!(
        ids(&get(
            &sim,
            &format!("/api/v3/users?fields=id&modifiedAt=between,{a},{b}")
        )
        .json()),
        between
    );
    let like = current(&|u| u.last_name.to_lowercase().contains("mü"));
    assert_eq!(
        ids(&get(&sim, "/api/v3/users?fields=id&lastName=like,M%C3%BC").json()),
        like
    );
    let in_dept = current(&|u| u.department_id == Some(1));
    assert_eq!(
        ids(&get(&sim, "/api/v3/users?fields=id&department.id=1").json()),
        in_dept
    );

    let huge = "x".repeat(5 * 1024 * 1024);
    let r = send(
        "POST",
        &format!("{}/api/v3/users?contract=true", sim.base_url()),
        Some(&auth()),
        Some(&huge),
    );
    assert_eq!(r.status, 413);
}

// ---- writes ----

fn new_hire() -> Value {
    json!({"firstName": "Éloïse", "lastName": "Nuñez", "login": "enunez", "mail": "eloise@sandbox.example",
           "dtContractStart": "2026-07-01", "legalEntityId": 1, "departmentId": 1, "rolePrincipalId": 1})
}

#[test]
fn create_mandatory_fields_defaults_and_unique_login() {
    let sim = start(Tenant::generate(4, 5));
    let r = write(&sim, "POST", "/api/v3/users?contract=true", &new_hire());
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.raw));
    let created = r.json()["data"].clone();
    assert_eq!(created["lastName"], "Nuñez");
    assert_eq!(created["dtContractStart"], "2026-07-01T00:00:00");
    let id = created["id"].as_u64().unwrap();
    assert_eq!(sim.tenant().user(id).unwrap().login, "enunez");

    let mut dup = new_hire();
    dup["mail"] = json!("other@sandbox.example");
    let r = write(&sim, "POST", "/api/v3/users?contract=true", &dup);
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["field"], "login");

    for field in ["legalEntityId", "departmentId", "rolePrincipalId"] {
        let mut body = new_hire();
        body["login"] = json!(format!("x-{field}"));
        body.as_object_mut().unwrap().remove(field);
        let r = write(&sim, "POST", "/api/v3/users?contract=true", &body);
        assert_eq!(r.status, 400, "{field}");
        assert_eq!(r.json()["field"], field);
        assert!(r.json()["message"].as_str().unwrap().contains(field));
    }
    assert_eq!(
        write(&sim, "POST", "/api/v3/users", &new_hire()).status,
        400,
        "contract=true is required"
    );
    let mut bad = new_hire();
    bad["departmentId"] = json!(9999);
    bad["login"] = json!("y");
    assert_eq!(
        write(&sim, "POST", "/api/v3/users?contract=true", &bad).json()["field"],
        "departmentId"
    );

    sim.with_tenant(|t| {
        t.defaults.legal_entity_id = Some(2);
        t.defaults.department_id = Some(1);
        t.defaults.role_principal_id = Some(1);
    });
    let minimal = json!({"firstName": "Jörg", "lastName": "Çelik", "login": "jcelik"});
    let r = write(&sim, "POST", "/api/v3/users?contract=true", &minimal);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.raw));
    assert_eq!(r.json()["data"]["legalEntity"]["id"], 2);
    assert_eq!(r.json()["data"]["rolePrincipalId"], 1);
    assert_eq!(
        send(
            "POST",
            &format!("{}/api/v3/users?contract=true", sim.base_url()),
            Some(&auth()),
            Some("{nope")
        )
        .status,
        400
    );

    // Without a login, Lucca generates one: first letter of the first name + last name.
    let no_login = json!({"firstName": "Éloïse", "lastName": "Nuñez"});
    let r = write(&sim, "POST", "/api/v3/users?contract=true", &no_login);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.raw));
    assert_eq!(r.json()["data"]["login"], "enunez2", "enunez is taken");
}

#[test]
fn update_flat_wrapped_and_missing_user() {
    let sim = start(Tenant::generate(4, 5));
    let id = sim.tenant().users[1].id;
    let r = write(
        &sim,
        "PUT",
        &format!("/api/v3/users/{id}"),
        &json!({"jobTitle": "Chef", "departmentId": 1}),
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["data"]["jobTitle"], "Chef");
    let r = write(
        &sim,
        "PUT",
        &format!("/api/v3/users/{id}"),
        &json!({"data": {"jobTitle": "Cheffe", "gender": "Female"}}),
    );
    assert_eq!(r.status, 200);
    let u = sim.tenant().user(id).cloned().unwrap();
    assert_eq!(
        (u.job_title.as_deref(), u.gender.as_str()),
        (Some("Cheffe"), "Female")
    );
    assert_eq!(
        u.modified_at,
        r.json()["data"]["modifiedAt"].as_str().unwrap()
    );
    assert_eq!(
        write(
            &sim,
            "PUT",
            "/api/v3/users/424242",
            &json!({"jobTitle": "x"})
        )
        .status,
        500
    );
    let r = write(
        &sim,
        "PUT",
        &format!("/api/v3/users/{id}"),
        &json!({"gender": "Robot"}),
    );
    assert_eq!(
        (r.status, r.json()["field"].clone()),
        (400, json!("gender"))
    );
    assert_eq!(
        write(
            &sim,
            "PUT",
            &format!("/api/v3/users/{id}"),
            &json!({"birthDate": "31/12/1990"})
        )
        .json()["field"],
        "birthDate"
    );
}

fn extended_of(sim: &LuccaSim, id: u64) -> Value {
    get(sim, &format!("/api/v3/users/{id}?fields=id,extendedData")).json()["data"]["extendedData"]
        .clone()
}

#[test]
fn extended_data_single_value_round_trip() {
    let mut tenant = Tenant::generate(4, 3);
    tenant.users.iter_mut().for_each(|u| u.extended.clear());
    let sim = start(tenant);
    let id = sim.tenant().users[0].id;
    let path = format!("/api/v3/users/{id}");
    assert_eq!(extended_of(&sim, id)["e_tshirt"], Value::Null);
    assert_eq!(write(&sim, "PUT", &path, &json!({"e_tshirt": {"value": "shipit"}, "e_badge_date": {"id": 0, "value": "2016-09-01"}})).status, 200);
    let ext = extended_of(&sim, id);
    assert_eq!(ext["e_tshirt"]["value"], "shipit");
    assert_eq!(ext["e_badge_date"]["value"], "2016-09-01T00:00:00");
    let occ = ext["e_tshirt"]["id"].as_u64().unwrap();
    // Update by id; writing inside extendedData is ignored, like the real API.
    assert_eq!(write(&sim, "PUT", &path, &json!({"e_tshirt": {"id": occ, "value": "XL"}, "extendedData": {"e_badge_date": {"value": null}}})).status, 200);
    let ext = extended_of(&sim, id);
    assert_eq!(ext["e_tshirt"], json!({"id": occ, "value": "XL"}));
    assert_eq!(ext["e_badge_date"]["value"], "2016-09-01T00:00:00");
    assert_eq!(
        write(
            &sim,
            "PUT",
            &path,
            &json!({"e_tshirt": {"id": occ, "value": null}})
        )
        .status,
        200
    );
    assert_eq!(extended_of(&sim, id)["e_tshirt"], Value::Null);
    let r = write(&sim, "PUT", &path, &json!({"e_nosuch": {"value": 1}}));
    assert_eq!(
        (r.status, r.json()["field"].clone()),
        (400, json!("e_nosuch"))
    );
    assert_eq!(
        write(
            &sim,
            "PUT",
            &path,
            &json!({"e_badge_date": {"value": "soon"}})
        )
        .status,
        400
    );
    let defs = get(&sim, "/api/v3/extensionuserdefinitions").json();
    let codes: Vec<_> = items(&defs)
        .iter()
        .map(|d| d["code"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(codes, ["e_tshirt", "e_badge_date", "e_formation"]);
}

#[test]
fn extended_data_compound_multi_occurrence_add_update_delete() {
    let mut tenant = Tenant::generate(4, 3);
    tenant.users.iter_mut().for_each(|u| u.extended.clear());
    let sim = start(tenant);
    let id = sim.tenant().users[2].id;
    let path = format!("/api/v3/users/{id}");
    let training = |title: &str, progress: u64| {
        json!({"e_title": title, "e_link": "https://cards.example/t/1", "e_progress": progress, "e_score": 80,
               "e_last_completion_date": "2026-05-02T00:00:00"})
    };
    let r = write(
        &sim,
        "PUT",
        &path,
        &json!({"e_formation": [{"value": training("RGPD", 10)}, {"id": 0, "value": training("Sécurité", 50)}]}),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.raw));
    let occ = extended_of(&sim, id)["e_formation"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(occ.len(), 2);
    assert_eq!(occ[1]["value"]["e_title"], "Sécurité");
    let (a, b) = (
        occ[0]["id"].as_u64().unwrap(),
        occ[1]["id"].as_u64().unwrap(),
    );
    // Update the first, delete the second, add a third, in one write.
    let body = json!({"e_formation": [{"id": a, "value": training("RGPD", 100)}, {"id": b, "value": null}, {"value": training("Onboarding", 0)}]});
    assert_eq!(write(&sim, "PUT", &path, &body).status, 200);
    let occ = extended_of(&sim, id)["e_formation"]
        .as_array()
        .unwrap()
        .clone();
    let titles: Vec<_> = occ
        .iter()
        .map(|o| {
            (
                o["value"]["e_title"].as_str().unwrap().to_string(),
                o["value"]["e_progress"].clone(),
            )
        })
        .collect();
    assert_eq!(
        titles,
        [
            ("RGPD".to_string(), json!(100)),
            ("Onboarding".to_string(), json!(0))
        ]
    );
    assert_eq!(occ[0]["id"], a);
    // Unknown occurrence id or sub-field: 400 naming the field, nothing changed.
    assert_eq!(
        write(
            &sim,
            "PUT",
            &path,
            &json!({"e_formation": [{"id": 1, "value": training("x", 1)}]})
        )
        .json()["field"],
        "e_formation"
    );
    assert_eq!(
        write(
            &sim,
            "PUT",
            &path,
            &json!({"e_formation": [{"value": {"e_nope": 1}}]})
        )
        .status,
        400
    );
    assert_eq!(
        extended_of(&sim, id)["e_formation"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

// ---- v4 organisation structure ----

#[test]
fn v4_departments_and_establishments_paging() {
    let sim = start(Tenant::generate(8, 500)); // 25 departments
    let mut seen = Vec::new();
    let mut next = Some("/organization/structure/api/departments?limit=10".to_string());
    let mut pages = 0;
    while let Some(path) = next {
        let r = get(&sim, &path).json();
        assert_eq!(r["count"], 25);
        seen.extend(
            r["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["id"].as_u64().unwrap()),
        );
        next = r["next"].as_str().map(str::to_string);
        pages += 1;
    }
    assert_eq!((pages, seen.len()), (3, 25));
    let page3 = get(
        &sim,
        "/organization/structure/api/departments?page=3&limit=10",
    )
    .json();
    assert_eq!(page3["items"].as_array().unwrap().len(), 5);
    assert!(page3["prev"].is_string() && page3["next"].is_null());
    let d = &get(&sim, "/organization/structure/api/departments?limit=100").json()["items"][3];
    let parent = d["parentId"].as_u64().unwrap();
    assert!(
        d["hierarchy"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/{parent}/{}/", d["id"]))
    );
    for key in [
        "name",
        "code",
        "isActive",
        "headId",
        "createdAt",
        "lastModifiedAt",
        "sortOrderInSiblings",
        "description",
    ] {
        assert!(d.get(key).is_some(), "{key}");
    }
    assert_eq!(
        get(&sim, "/organization/structure/api/departments?limit=101").status,
        400
    );
    let only_count = get(
        &sim,
        "/organization/structure/api/departments?fields.root=count",
    )
    .json();
    assert!(only_count.get("next").is_none() && only_count["count"] == 25);

    let e = get(&sim, "/organization/structure/api/establishments?limit=2").json();
    assert_eq!(e["items"].as_array().unwrap().len(), 2);
    assert_eq!(e["count"], 3);
    let first = &e["items"][0];
    for key in [
        "id",
        "name",
        "legalUnitId",
        "code",
        "address",
        "timezoneId",
        "usersCount",
        "isArchived",
    ] {
        assert!(first.get(key).is_some(), "{key}");
    }
    let total: u64 = get(&sim, "/organization/structure/api/establishments").json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["usersCount"].as_u64().unwrap())
        .sum();
    assert_eq!(total, 500);

    // The tenant is mutable between requests: a department rename shows at once.
    sim.with_tenant(|t| t.departments[0].name = "Direction générale".into());
    let r = get(&sim, "/organization/structure/api/departments?limit=1").json();
    assert_eq!(r["items"][0]["name"], "Direction générale");
}

// ---- rate limit, timeout, faults ----

#[test]
fn rate_limit_60_quick_requests_10_get_429_with_retry_after() {
    let sim = LuccaSim::start(Tenant::generate(1, 3), LuccaOptions::default()).unwrap();
    let statuses: Vec<Resp> = (0..60).map(|_| get(&sim, "/api/v3/users")).collect();
    let limited: Vec<&Resp> = statuses.iter().filter(|r| r.status == 429).collect();
    assert_eq!(limited.len(), 10);
    assert!(statuses[..50].iter().all(|r| r.status == 200));
    for r in &limited {
        let secs: u64 = r
            .retry_after
            .as_deref()
            .expect("Retry-After")
            .parse()
            .unwrap();
        assert!((1..=60).contains(&secs), "{secs}");
    }
    let log = sim.request_log();
    assert_eq!(log.records.len(), 60);
    assert_eq!(log.count_status(429), 10);
    assert_eq!(log.max_accepted_in_window(60.0), 50);
}

#[test]
fn rate_limit_in_simulated_time_a_client_honouring_retry_after_gets_through() {
    // 60 simulated seconds per real second: a 60 s window lasts 1 s.
    let options = LuccaOptions {
        time_scale: 60.0,
        ..LuccaOptions::default()
    };
    let sim = LuccaSim::start(Tenant::generate(1, 3), options).unwrap();
    let mut ok = 0;
    while ok < 60 {
        let r = get(&sim, "/api/v3/users");
        match r.status {
            200 => ok += 1,
            429 => {
                let secs: f64 = r.retry_after.unwrap().parse().unwrap();
                sim.clock().sleep(Duration::from_secs_f64(secs));
            }
            s => panic!("status {s}"),
        }
    }
    let log = sim.request_log();
    assert!(log.count_status(429) >= 1);
    assert!(log.max_accepted_in_window(60.0) <= 50);
    assert!(
        log.records.last().unwrap().at >= 60.0,
        "went through more than one window"
    );
}

#[test]
fn a_request_slower_than_the_timeout_gets_408() {
    let options = LuccaOptions {
        time_scale: 100.0,
        latency: Duration::from_secs(6),
        rate_limit: None,
        ..LuccaOptions::default()
    };
    let sim = LuccaSim::start(Tenant::generate(1, 3), options).unwrap();
    assert_eq!(get(&sim, "/api/v3/users").status, 408);
    let options = LuccaOptions {
        time_scale: 100.0,
        latency: Duration::from_secs(4),
        rate_limit: Some(RateLimit::default()),
        ..LuccaOptions::default()
    };
    let sim = LuccaSim::start(Tenant::generate(1, 3), options).unwrap();
    assert_eq!(get(&sim, "/api/v3/users").status, 200);
}

#[test]
fn injected_faults_hit_exactly_the_nth_request() {
    let options = LuccaOptions {
        time_scale: 100.0,
        rate_limit: None,
        faults: vec![
            Fault::new(2, FaultKind::ServerError),
            Fault::new(3, FaultKind::MalformedJson),
            Fault::new(4, FaultKind::TruncatedPage),
            Fault::new(5, FaultKind::Latency(Duration::from_secs(3))),
            Fault::new(6, FaultKind::Latency(Duration::from_secs(10))),
            Fault::new(7, FaultKind::TruncatedPage),
        ],
        ..LuccaOptions::default()
    };
    let sim = LuccaSim::start(all_current(10), options).unwrap();
    let page = "/api/v3/users?fields=id,collection.count";
    assert_eq!(get(&sim, page).status, 200);
    assert_eq!(get(&sim, page).status, 500);
    let r = get(&sim, page);
    assert_eq!(r.status, 200);
    assert!(
        serde_json::from_slice::<Value>(&r.raw).is_err(),
        "malformed"
    );
    let r = get(&sim, page).json();
    assert_eq!(
        (items(&r).len(), r["data"]["count"].clone()),
        (5, json!(10)),
        "page cut short"
    );
    let before = sim.clock().now();
    assert_eq!(get(&sim, page).status, 200);
    assert!(
        sim.clock().now() - before >= 3.0,
        "latency in simulated seconds"
    );
    assert_eq!(get(&sim, page).status, 408);
    let r = get(&sim, "/organization/structure/api/departments?limit=100").json();
    assert_eq!(
        r["items"].as_array().unwrap().len(),
        0,
        "1 department, half of it"
    );
    assert_eq!(items(&get(&sim, page).json()).len(), 10, "back to normal");
    let statuses: Vec<u16> = sim.request_log().records.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200, 500, 200, 200, 200, 408, 200, 200]);
}

#[test]
fn unknown_routes_and_methods() {
    let sim = start(Tenant::generate(1, 3));
    assert_eq!(get(&sim, "/api/v3/nothing").status, 404);
    assert_eq!(
        write(
            &sim,
            "POST",
            "/organization/structure/api/departments",
            &json!({})
        )
        .status,
        405
    );
    assert_eq!(get(&sim, "/api/v3/users/abc").status, 400);
    // Hostile parameters are 400s, never a crashed worker.
    let departments = "/organization/structure/api/departments";
    assert_eq!(
        get(
            &sim,
            &format!("{departments}?page=18446744073709551615&limit=100")
        )
        .status,
        400
    );
    assert_eq!(
        get(&sim, &format!("{departments}?page=c18446744073709551615")).status,
        200
    );
    assert_eq!(get(&sim, &format!("{departments}?page=0")).status, 400);
    assert_eq!(get(&sim, "/api/v3/users?fields=").status, 400);
    assert_eq!(get(&sim, "/api/v3/users?fields=%ZZ").status, 400);
    assert_eq!(
        get(&sim, "/api/v3/users?paging=18446744073709551615,10").status,
        200
    );
    assert_eq!(get(&sim, "/api/v3/users?id=between,x").status, 400);
    assert_eq!(get(&sim, "/api/v3/users").status, 200, "still serving");
    sim.clear_request_log();
    assert!(sim.request_log().records.is_empty());
}

#[test]
fn definitions_say_which_fields_are_editable_and_a_read_only_one_refuses_writes() {
    let mut tenant = Tenant::generate(4, 3);
    tenant.users.iter_mut().for_each(|u| u.extended.clear());
    let sim = start(tenant);
    let defs = get(&sim, "/api/v3/extensionuserdefinitions").json();
    let formation = items(&defs)
        .iter()
        .find(|d| d["code"] == "e_formation")
        .cloned()
        .unwrap();
    assert_eq!(
        (
            formation["type"].clone(),
            formation["isMultiple"].clone(),
            formation["isEditable"].clone()
        ),
        (json!("compound"), json!(true), json!(true))
    );
    sim.with_tenant(|t| {
        for d in t.definitions.iter_mut().filter(|d| d.code == "e_tshirt") {
            d.editable = false;
        }
    });
    let id = sim.tenant().users[0].id;
    let r = write(
        &sim,
        "PUT",
        &format!("/api/v3/users/{id}"),
        &json!({"e_tshirt": {"value": "XL"}}),
    );
    assert_eq!(
        (r.status, r.json()["field"].clone()),
        (400, json!("e_tshirt"))
    );
    assert_eq!(
        extended_of(&sim, id)["e_tshirt"],
        Value::Null,
        "nothing written"
    );
}

// ---- on a hub ----

/// Two tenants on one [`Hub`]: each keeps its own port, rate limit and log; bodies,
/// 413 and the client's port come through as on a simulator of its own; a dropped
/// simulator's port closes.
#[test]
fn on_a_hub_each_simulator_keeps_its_own_port_limit_and_log() {
    let hub = Hub::new().expect("hub");
    let a = LuccaSim::start_on(&hub, Tenant::generate(1, 3), LuccaOptions::default()).unwrap();
    let b = LuccaSim::start_on(&hub, Tenant::generate(2, 3), LuccaOptions::default()).unwrap();
    assert_ne!(a.base_url(), b.base_url());

    let statuses: Vec<u16> = (0..60).map(|_| get(&a, "/api/v3/users").status).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 10);
    assert_eq!(get(&b, "/api/v3/users").status, 200, "b's limit is its own");
    assert_eq!(a.request_log().max_accepted_in_window(60.0), 50);
    assert_eq!(b.request_log().records.len(), 1);
    assert!(b.request_log().records[0].peer_port.is_some());

    let created = write(&b, "POST", "/api/v3/users?contract=true", &new_hire());
    assert_eq!(
        created.status,
        200,
        "{}",
        String::from_utf8_lossy(&created.raw)
    );
    assert_eq!(b.tenant().users.len(), 4);
    let huge = "x".repeat(muster_sandbox::server::MAX_BODY + 1);
    let url = format!("{}/api/v3/users", b.base_url());
    assert_eq!(send("POST", &url, Some(&auth()), Some(&huge)).status, 413);

    let port = a.base_url().rsplit(':').next().unwrap().to_owned();
    drop(a);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(format!("127.0.0.1:{port}")).is_ok() {
        assert!(
            std::time::Instant::now() < deadline,
            "port {port} still open"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(get(&b, "/api/v3/users").status, 200, "b still serves");
}
