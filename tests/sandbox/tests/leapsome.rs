//! The Leapsome simulator over real HTTP on loopback, with `ureq` as the client.

use std::process::Command;

use muster_sandbox::leapsome::{DEFAULT_TOKEN, ENTERPRISE, INVITE_EXTENSION};
use muster_sandbox::{
    Directory, Fault, FaultKind, LeapsomeOptions, LeapsomeSim, RateLimit, RejectRule, ScimUser,
};
use serde_json::{Value, json};

struct Resp {
    status: u16,
    retry_after: Option<String>,
    location: Option<String>,
    raw: Vec<u8>,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.raw)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.raw)))
    }

    /// The SCIM error `detail`.
    fn detail(&self) -> String {
        let v = self.json();
        assert_eq!(
            v["schemas"][0], "urn:ietf:params:scim:api:messages:2.0:Error",
            "{v}"
        );
        assert_eq!(v["status"], self.status.to_string());
        v["detail"].as_str().unwrap_or_default().to_string()
    }
}

fn send(method: &str, url: &str, auth: Option<&str>, body: Option<&[u8]>) -> Resp {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let result = match method {
        "GET" | "DELETE" => {
            let mut r = if method == "GET" {
                agent.get(url)
            } else {
                agent.delete(url)
            };
            if let Some(a) = auth {
                r = r.header("Authorization", a);
            }
            r.call()
        }
        m => {
            let mut r = match m {
                "POST" => agent.post(url),
                "PUT" => agent.put(url),
                _ => agent.patch(url),
            };
            if let Some(a) = auth {
                r = r.header("Authorization", a);
            }
            r.content_type("application/scim+json")
                .send(body.unwrap_or_default())
        }
    };
    let mut response = result.expect("HTTP exchange");
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let (retry_after, location) = (header("retry-after"), header("location"));
    Resp {
        status: response.status().as_u16(),
        retry_after,
        location,
        raw: response.body_mut().read_to_vec().expect("body"),
    }
}

fn bearer() -> String {
    format!("Bearer {DEFAULT_TOKEN}")
}

fn get(sim: &LeapsomeSim, path: &str) -> Resp {
    send(
        "GET",
        &format!("{}{path}", sim.base_url()),
        Some(&bearer()),
        None,
    )
}

fn write(sim: &LeapsomeSim, method: &str, path: &str, body: &Value) -> Resp {
    send(
        method,
        &format!("{}{path}", sim.base_url()),
        Some(&bearer()),
        Some(body.to_string().as_bytes()),
    )
}

fn unlimited() -> LeapsomeOptions {
    LeapsomeOptions {
        rate_limit: None,
        ..LeapsomeOptions::default()
    }
}

fn start(options: LeapsomeOptions) -> LeapsomeSim {
    LeapsomeSim::start(options).expect("simulator")
}

fn new_user(email: &str, external_id: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
        "externalId": external_id,
        "userName": email,
        "name": {"givenName": "Ann", "familyName": "Lee"},
        "emails": [{"value": email, "type": "work", "primary": true}],
        "active": true,
        ENTERPRISE: {"startDate": "2024-01-15", "gender": "female", "employeeNumber": "E1"},
    })
}

/// Leapsome's published statuses are swapped: 403 is an invalid token, 401 a token that
/// lacks the rights.
#[test]
fn a_bad_token_is_403_and_a_token_without_rights_is_401() {
    let sim = start(LeapsomeOptions {
        limited_token: Some("read-only-token".into()),
        ..unlimited()
    });
    let url = format!("{}/Users", sim.base_url());
    let missing = send("GET", &url, None, None);
    assert_eq!(missing.status, 403);
    assert!(missing.detail().contains("missing"));
    let wrong = send("GET", &url, Some("Bearer nope"), None);
    assert_eq!(wrong.status, 403);
    assert_eq!(wrong.detail(), "Invalid token");
    assert_eq!(wrong.json()["status"], "403", "the status is a string");
    let scheme = send("GET", &url, Some(&format!("Basic {DEFAULT_TOKEN}")), None);
    assert_eq!(scheme.status, 403);
    let limited = send("GET", &url, Some("Bearer read-only-token"), None);
    assert_eq!(limited.status, 401);
    assert!(
        limited.detail().contains("not sufficiently authorized"),
        "{}",
        limited.detail()
    );
    assert_eq!(send("GET", &url, Some(&bearer()), None).status, 200);
    assert_eq!(sim.token(), DEFAULT_TOKEN);
    let not_found = get(&sim, "/Users/ghost").json();
    assert_eq!(not_found["status"], "404");
    assert!(not_found["detail"].as_str().unwrap().contains("ghost"));
}

#[test]
fn users_are_created_listed_filtered_and_fetched_by_id_or_external_id() {
    let sim = start(unlimited());
    let created = write(
        &sim,
        "POST",
        "/Users",
        &new_user("ann@sandbox.example", "42"),
    );
    assert_eq!(created.status, 201);
    let ann = created.json();
    let id = ann["id"].as_str().expect("id").to_string();
    assert_eq!(
        created.location,
        Some(format!("{}/Users/{id}", sim.base_url()))
    );
    assert_eq!(ann["externalId"], "42");
    assert_eq!(
        ann[ENTERPRISE],
        json!({}),
        "a POST keeps core attributes only: the enterprise ones need a PATCH"
    );
    assert_eq!(sim.user_by_external_id("42").unwrap().employee_number, None);
    for i in 0..4 {
        let r = write(
            &sim,
            "POST",
            "/Users",
            &new_user(&format!("u{i}@sandbox.example"), &format!("x{i}")),
        );
        assert_eq!(r.status, 201);
    }
    let page = get(&sim, "/Users?startIndex=2&count=2").json();
    assert_eq!(page["totalResults"], 5);
    assert_eq!(page["startIndex"], 2);
    assert_eq!(page["itemsPerPage"], 2);
    assert_eq!(page["Resources"][0]["userName"], "u0@sandbox.example");
    let filtered = get(
        &sim,
        "/Users?filter=userName%20eq%20%22ANN%40sandbox.example%22",
    )
    .json();
    assert_eq!(filtered["totalResults"], 1);
    assert_eq!(filtered["Resources"][0]["id"], id.as_str());
    let unsupported = get(&sim, "/Users?filter=emails%20co%20%22ann%22");
    assert_eq!(unsupported.status, 400);
    assert!(unsupported.detail().contains("userName eq"));
    assert_eq!(
        get(&sim, &format!("/Users/{id}")).json()["userName"],
        "ann@sandbox.example"
    );
    assert_eq!(get(&sim, "/Users/42").json()["id"], id.as_str());
    assert_eq!(get(&sim, "/Users/nope").status, 404);
    let bad_paging = get(&sim, "/Users?count=lots");
    assert_eq!(bad_paging.status, 400);
    assert!(bad_paging.detail().contains("count"));
}

#[test]
fn post_answers_empty_object_for_an_existing_user_and_409_for_another_owner() {
    let mut directory = Directory::new();
    directory.add_user(ScimUser::new("", "manual@sandbox.example"));
    let sim = start(LeapsomeOptions {
        directory,
        ..unlimited()
    });
    let existing = write(
        &sim,
        "POST",
        "/Users",
        &new_user("Manual@sandbox.example", "7"),
    );
    assert_eq!(existing.status, 200);
    assert_eq!(existing.json(), json!({}));
    assert_eq!(sim.users().len(), 1);
    assert_eq!(
        sim.users()[0].external_id,
        None,
        "the `{{}}` answer changes nothing"
    );
    assert_eq!(
        write(
            &sim,
            "POST",
            "/Users",
            &new_user("ann@sandbox.example", "8")
        )
        .status,
        201
    );
    // Same userName, same externalId: a retried create, `{}` again.
    let retried = write(
        &sim,
        "POST",
        "/Users",
        &new_user("ann@sandbox.example", "8"),
    );
    assert_eq!((retried.status, retried.json()), (200, json!({})));
    let taken = write(
        &sim,
        "POST",
        "/Users",
        &new_user("ann@sandbox.example", "9"),
    );
    assert_eq!(taken.status, 409);
    assert_eq!(taken.json()["scimType"], "uniqueness");
    assert!(taken.detail().contains("ann@sandbox.example"));
    let missing = write(&sim, "POST", "/Users", &json!({"externalId": "10"}));
    assert_eq!(missing.status, 400);
    assert!(missing.detail().contains("userName"));
}

/// Creates a user with [`new_user`]'s body and returns Leapsome's answer.
fn post_user(sim: &LeapsomeSim, email: &str, external_id: &str) -> Value {
    write(sim, "POST", "/Users", &new_user(email, external_id)).json()
}

/// A user PATCH as Leapsome requires it: with the account's `userName`.
fn patch_named(sim: &LeapsomeSim, id: &str, user_name: &str, body: &Value) -> Resp {
    let mut body = body.clone();
    body["userName"] = json!(user_name);
    write(sim, "PATCH", &format!("/Users/{id}"), &body)
}

#[test]
fn a_patch_or_put_without_user_name_is_refused() {
    let sim = start(unlimited());
    let ann = post_user(&sim, "ann@sandbox.example", "2");
    let id = ann["id"].as_str().unwrap();
    for method in ["PATCH", "PUT"] {
        let r = write(
            &sim,
            method,
            &format!("/Users/{id}"),
            &json!({"active": false}),
        );
        assert_eq!(r.status, 400, "{method}");
        assert_eq!(r.detail(), "The userName field is required", "{method}");
    }
    assert!(
        sim.user_by_external_id("2").unwrap().active,
        "nothing changed"
    );
    let r = patch_named(&sim, id, "ann@sandbox.example", &json!({"active": false}));
    assert_eq!(r.status, 200);
    assert!(!sim.user_by_external_id("2").unwrap().active);
}

/// `phoneNumbers`, core `userType` and enterprise `organization` are not in Leapsome's
/// published user schema: POST, PATCH and PUT accept them and drop them, and no read returns
/// them, while the attributes beside them are applied.
#[test]
fn unpublished_attributes_are_accepted_and_dropped_on_every_write() {
    let sim = start(unlimited());
    let unpublished = |title: &str| {
        json!({
            "title": title,
            "phoneNumbers": [{"value": "+33 1 23 45 67 89", "type": "work", "primary": true}],
            "userType": "CDI",
            ENTERPRISE: {"organization": "Acme SAS", "department": "Ops"},
        })
    };
    let mut post = new_user("ann@sandbox.example", "2");
    post["phoneNumbers"] = json!([{"value": "+33 6 00", "type": "work"}]);
    post["userType"] = json!("Intern");
    let created = write(&sim, "POST", "/Users", &post);
    assert_eq!(created.status, 201);
    let id = created.json()["id"].as_str().unwrap().to_string();
    let patched = patch_named(&sim, &id, "ann@sandbox.example", &unpublished("Engineer"));
    assert_eq!(patched.status, 200, "{}", patched.detail());
    let mut put = unpublished("Lead");
    put["userName"] = json!("ann@sandbox.example");
    let replaced = write(&sim, "PUT", &format!("/Users/{id}"), &put);
    assert_eq!(replaced.status, 200, "{}", replaced.detail());
    for (write, answer) in [
        ("POST", created.json()),
        ("PATCH", patched.json()),
        ("PUT", replaced.json()),
        ("GET", get(&sim, &format!("/Users/{id}")).json()),
    ] {
        assert!(answer.get("phoneNumbers").is_none(), "{write}: {answer}");
        assert!(answer.get("userType").is_none(), "{write}: {answer}");
        assert!(
            answer[ENTERPRISE].get("organization").is_none(),
            "{write}: {answer}"
        );
    }
    assert_eq!(patched.json()["title"], "Engineer", "the rest is applied");
    assert_eq!(patched.json()[ENTERPRISE]["department"], "Ops");
    assert_eq!(get(&sim, "/Users/2").json()["title"], "Lead");
}

#[test]
fn patch_takes_a_partial_user_and_refuses_patch_op() {
    let sim = start(unlimited());
    let boss = post_user(&sim, "boss@sandbox.example", "1");
    let ann = post_user(&sim, "ann@sandbox.example", "2");
    let (boss_id, ann_id) = (
        boss["id"].as_str().unwrap().to_string(),
        ann["id"].as_str().unwrap().to_string(),
    );
    let ann_patch = |body: Value| patch_named(&sim, &ann_id, "ann@sandbox.example", &body);
    assert_eq!(
        ann_patch(json!({ENTERPRISE: {"startDate": "2024-01-15"}})).status,
        200
    );
    // Manager by externalId, by email, by id: all stored as the Leapsome id.
    for reference in ["1", "boss@sandbox.example", boss_id.as_str()] {
        let r = ann_patch(json!({ENTERPRISE: {"manager": {"value": reference}}}));
        assert_eq!(r.status, 200, "{reference}");
        let v = r.json();
        assert_eq!(
            v[ENTERPRISE]["manager"]["value"], "1",
            "read back by externalId"
        );
        assert_eq!(
            v[ENTERPRISE]["manager"]["$ref"],
            format!("{}/Users/{boss_id}", sim.base_url())
        );
        assert_eq!(
            v[ENTERPRISE]["startDate"], "2024-01-15",
            "the extension merges"
        );
    }
    let r = ann_patch(
        json!({"name": {"familyName": "Li"}, "title": "CTO", ENTERPRISE: {"birthday": "1990-05-04", "gender": null}}),
    );
    let v = r.json();
    assert_eq!(
        (
            v["name"]["givenName"].clone(),
            v["name"]["familyName"].clone()
        ),
        (json!("Ann"), json!("Li"))
    );
    assert_eq!(v["title"], "CTO");
    assert_eq!(v[ENTERPRISE]["birthday"], "1990-05-04");
    assert!(v[ENTERPRISE].get("gender").is_none(), "null clears");
    let deactivated = ann_patch(json!({"active": false}));
    assert_eq!(deactivated.json()["active"], false);
    assert!(!sim.user_by_external_id("2").unwrap().active);
    let op = write(
        &sim,
        "PATCH",
        &format!("/Users/{ann_id}"),
        &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "path": "active", "value": true}]}),
    );
    assert_eq!(op.status, 400);
    assert!(op.detail().contains("PatchOp is not supported"));
    for (body, names) in [
        (
            json!({ENTERPRISE: {"startDate": "15/01/2024"}}),
            "startDate",
        ),
        (json!({ENTERPRISE: {"gender": "robot"}}), "gender"),
        (json!({ENTERPRISE: {"manager": "ghost"}}), "ghost"),
        (json!({"active": "yes"}), "active"),
        (json!({"nickName": "A"}), "nickName"),
        (json!({"emails": [{"value": "not-an-email"}]}), "emails[0]"),
    ] {
        let r = ann_patch(body.clone());
        assert_eq!(r.status, 400, "{body}");
        assert!(r.detail().contains(names), "{body}: {}", r.detail());
    }
    let self_manager = ann_patch(json!({ENTERPRISE: {"manager": ann_id}}));
    assert_eq!(self_manager.status, 400);
    let moved = write(
        &sim,
        "PATCH",
        &format!("/Users/{ann_id}"),
        &json!({"userName": "boss@sandbox.example"}),
    );
    assert_eq!(moved.status, 409);
    let ghost = write(
        &sim,
        "PATCH",
        "/Users/ghost",
        &json!({"userName": "g@sandbox.example"}),
    );
    assert_eq!(ghost.status, 404);
    // PUT replaces: what it leaves out is cleared.
    let put = write(
        &sim,
        "PUT",
        &format!("/Users/{ann_id}"),
        &json!({"userName": "ann@sandbox.example", "active": true}),
    );
    assert_eq!(put.status, 200);
    assert!(put.json().get("title").is_none());
    assert!(put.json()[ENTERPRISE].get("birthday").is_none());
}

#[test]
fn bad_bodies_get_a_json_error_naming_the_problem() {
    let sim = start(unlimited());
    let url = format!("{}/Users", sim.base_url());
    let not_json = send("POST", &url, Some(&bearer()), Some(b"{\"userName\": "));
    assert_eq!(not_json.status, 400);
    assert!(not_json.detail().contains("not valid JSON"));
    let array = send("POST", &url, Some(&bearer()), Some(b"[1]"));
    assert_eq!(array.status, 400);
    assert!(array.detail().contains("an array"));
    let bad_utf8 = send("POST", &url, Some(&bearer()), Some(&[0xff, 0xfe]));
    assert_eq!(bad_utf8.status, 400);
    let delete = send("DELETE", &format!("{url}/x"), Some(&bearer()), None);
    assert_eq!(delete.status, 405);
    assert!(delete.detail().contains("active"));
    assert_eq!(get(&sim, "/Nope").status, 404);
    let outside = send(
        "GET",
        &sim.base_url().replace("/scim/v1", "/Users"),
        Some(&bearer()),
        None,
    );
    assert_eq!(outside.status, 404);
    let spc = get(&sim, "/ServiceProviderConfig").json();
    assert_eq!(spc["patch"]["supported"], true);
}

#[test]
fn a_foreign_email_domain_is_refused_with_a_clear_message() {
    let sim = start(LeapsomeOptions {
        allowed_domains: vec!["sandbox.example".into(), "acme.example".into()],
        ..unlimited()
    });
    let r = write(&sim, "POST", "/Users", &new_user("ann@gmail.example", "1"));
    assert_eq!(r.status, 400);
    let detail = r.detail();
    assert!(
        detail.contains("'gmail.example'") && detail.contains("ann@gmail.example"),
        "{detail}"
    );
    assert!(detail.contains("sandbox.example, acme.example"), "{detail}");
    // Every address in `emails` too, although a POST does not keep them: a personal address
    // at another domain refuses the whole create.
    let mut personal = new_user("carl@sandbox.example", "3");
    personal["emails"] = json!([
        {"value": "carl@sandbox.example", "type": "work", "primary": true},
        {"value": "carl@gmail.example", "type": "home"},
    ]);
    let r = write(&sim, "POST", "/Users", &personal);
    assert_eq!(r.status, 400);
    assert!(r.detail().contains("carl@gmail.example"), "{}", r.detail());
    assert!(sim.user_by_email("carl@sandbox.example").is_none());
    assert_eq!(
        write(&sim, "POST", "/Users", &new_user("bob@ACME.example", "2")).status,
        201
    );
    // Any domain when the list is empty.
    let open = start(LeapsomeOptions {
        allowed_domains: Vec::new(),
        ..unlimited()
    });
    assert_eq!(
        write(
            &open,
            "POST",
            "/Users",
            &new_user("x@anything.example", "1")
        )
        .status,
        201
    );
}

#[test]
fn invitations_are_recorded_only_when_a_create_asks() {
    let sim = start(unlimited());
    let mut asked = new_user("ann@sandbox.example", "1");
    asked[INVITE_EXTENSION] = json!({"invite": true});
    let ann = write(&sim, "POST", "/Users", &asked).json();
    write(
        &sim,
        "POST",
        "/Users",
        &new_user("bob@sandbox.example", "2"),
    );
    // Asking again for an existing account sends nothing.
    write(&sim, "POST", "/Users", &asked);
    let invitations = sim.invitations();
    assert_eq!(invitations.len(), 1);
    assert_eq!(invitations[0].user_id, ann["id"].as_str().unwrap());
    assert_eq!(invitations[0].email, "ann@sandbox.example");
    let mut bad = new_user("carl@sandbox.example", "3");
    bad[INVITE_EXTENSION] = json!({"invite": "yes"});
    assert_eq!(write(&sim, "POST", "/Users", &bad).status, 400);
}

#[test]
fn teams_take_at_most_100_members_per_patch_and_replace_members() {
    let mut directory = Directory::new();
    let ids: Vec<String> = (0..250)
        .map(|i| directory.add_user(ScimUser::new("", &format!("u{i}@sandbox.example"))))
        .collect();
    let manual = directory.add_team("Hand-made", &ids[..3]);
    let sim = start(LeapsomeOptions {
        directory,
        ..unlimited()
    });
    let members = |ids: &[String]| Value::Array(ids.iter().map(|i| json!({"value": i})).collect());
    let created = write(&sim, "POST", "/Groups", &json!({"displayName": "Sales"}));
    assert_eq!(created.status, 201);
    let team = created.json()["id"].as_str().unwrap().to_string();
    let too_many = write(
        &sim,
        "PATCH",
        &format!("/Groups/{team}"),
        &json!({"members": members(&ids[..101])}),
    );
    assert_eq!(too_many.status, 400);
    assert!(too_many.detail().contains("at most 100"));
    for chunk in ids.chunks(100) {
        let r = write(
            &sim,
            "PATCH",
            &format!("/Groups/{team}"),
            &json!({"members": members(chunk), "replaceMembers": false}),
        );
        assert_eq!(r.status, 200);
    }
    let members_of = |id: &str| {
        sim.teams()
            .into_iter()
            .find(|t| t.id == id)
            .unwrap()
            .members
    };
    assert_eq!(members_of(&team).len(), 250);
    // Leapsome's group GET lists no members (`maxItems: 0`), in a get as in a list.
    assert_eq!(
        get(&sim, &format!("/Groups/{team}")).json()["members"],
        json!([])
    );
    let all = get(&sim, "/Groups").json();
    assert!(
        all["Resources"]
            .as_array()
            .unwrap()
            .iter()
            .all(|g| g["members"] == json!([])),
        "{all}"
    );
    let replaced = write(
        &sim,
        "PATCH",
        &format!("/Groups/{team}"),
        &json!({"members": members(&ids[10..12]), "replaceMembers": true, "displayName": "Sales EU"}),
    )
    .json();
    assert_eq!(replaced["displayName"], "Sales EU");
    assert_eq!(members_of(&team), ids[10..12].to_vec());
    // A user lists its teams.
    let user = get(&sim, &format!("/Users/{}", ids[10])).json();
    assert_eq!(user["groups"][0]["value"], team.as_str());
    let list = get(&sim, "/Groups?filter=displayName%20eq%20%22hand-made%22").json();
    assert_eq!(list["totalResults"], 1);
    assert_eq!(list["Resources"][0]["id"], manual.as_str());
    let duplicate = write(&sim, "POST", "/Groups", &json!({"displayName": "sales eu"}));
    assert_eq!(duplicate.status, 409);
    let unknown = write(
        &sim,
        "PATCH",
        &format!("/Groups/{team}"),
        &json!({"members": [{"value": "ghost"}]}),
    );
    assert_eq!(unknown.status, 400);
    assert!(unknown.detail().contains("ghost"));
    let teams = sim.teams();
    assert_eq!(
        teams.iter().find(|t| t.id == manual).unwrap().members,
        ids[..3].to_vec()
    );
}

#[test]
fn the_rate_limit_answers_429_with_retry_after() {
    // Time nearly frozen: the 1-second window cannot slide during the test.
    let sim = start(LeapsomeOptions {
        time_scale: 0.0001,
        ..LeapsomeOptions::default()
    });
    let statuses: Vec<u16> = (0..31).map(|_| get(&sim, "/Users").status).collect();
    assert!(statuses[..30].iter().all(|s| *s == 200));
    let limited = get(&sim, "/Users");
    assert_eq!(limited.status, 429);
    assert_eq!(limited.retry_after.as_deref(), Some("1"));
    assert!(limited.detail().contains("30 requests per 1 s"));
    let counts = sim.request_counts();
    assert_eq!((counts.reads, counts.writes, counts.throttled), (30, 0, 2));
    assert_eq!(sim.request_log().max_accepted_in_window(1.0), 30);
    // A limit the test chooses.
    let small = start(LeapsomeOptions {
        time_scale: 0.0001,
        rate_limit: Some(RateLimit {
            requests: 1,
            window_secs: 1.0,
        }),
        ..LeapsomeOptions::default()
    });
    assert_eq!(get(&small, "/Users").status, 200);
    assert_eq!(
        write(
            &small,
            "POST",
            "/Users",
            &new_user("a@sandbox.example", "1")
        )
        .status,
        429
    );
}

#[test]
fn reject_rules_and_faults_are_deterministic() {
    let sim = start(LeapsomeOptions {
        rejects: vec![
            RejectRule::email_contains("refuse"),
            RejectRule::every_nth_create(3)
                .with_status(500)
                .with_message("temporarily down"),
        ],
        faults: vec![
            Fault::new(6, FaultKind::ServerError),
            Fault::new(7, FaultKind::MalformedJson),
        ],
        ..unlimited()
    });
    let post = |email: &str, x: &str| write(&sim, "POST", "/Users", &new_user(email, x));
    assert_eq!(post("a@sandbox.example", "1").status, 201); // request 1, create 1
    let refused = post("refuse.me@sandbox.example", "2"); // create 2
    assert_eq!(refused.status, 400);
    assert!(refused.detail().contains("refuse.me@sandbox.example"));
    let third = post("c@sandbox.example", "3"); // create 3
    assert_eq!(third.status, 500);
    assert!(third.detail().contains("temporarily down"));
    assert_eq!(post("d@sandbox.example", "4").status, 201); // create 4
    // A PATCH to a refused email is refused too.
    let id = sim.user_by_email("a@sandbox.example").unwrap().id;
    let patch = write(
        &sim,
        "PATCH",
        &format!("/Users/{id}"),
        &json!({"userName": "refuse@sandbox.example"}),
    );
    assert_eq!(patch.status, 400);
    assert_eq!(get(&sim, "/Users").status, 500); // request 6
    let malformed = get(&sim, "/Users"); // request 7
    assert_eq!(malformed.status, 200);
    assert!(serde_json::from_slice::<Value>(&malformed.raw).is_err());
    assert_eq!(sim.users().len(), 2);
    let counts = sim.request_counts();
    assert_eq!((counts.reads, counts.writes), (2, 5));
}

#[test]
fn state_can_be_seeded_read_and_edited_between_requests() {
    let mut directory = Directory::new();
    let id = directory.add_user(ScimUser {
        external_id: Some("9".into()),
        title: Some("Chef".into()),
        ..ScimUser::new("", "seed@sandbox.example")
    });
    let sim = start(LeapsomeOptions {
        directory,
        ..unlimited()
    });
    assert_eq!(get(&sim, "/Users/9").json()["title"], "Chef");
    sim.with_state(|d| {
        d.user_mut(&id).unwrap().title = Some("Edited by hand".into());
        d.add_team("Manual", std::slice::from_ref(&id));
    });
    assert_eq!(
        get(&sim, &format!("/Users/{id}")).json()["title"],
        "Edited by hand"
    );
    assert_eq!(sim.teams().len(), 1);
    assert_eq!(sim.directory().users.len(), 1);
    sim.clear_request_log();
    assert!(sim.request_log().records.is_empty());
}

#[test]
fn the_binary_writes_the_leapsome_connection() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_muster-sandbox"))
        .args(["--employees", "3", "--once", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("leapsome: http://127.0.0.1:"), "{stdout}");
    assert!(
        stdout.contains(&format!("export LEAPSOME_SCIM_TOKEN={DEFAULT_TOKEN}")),
        "{stdout}"
    );
    let config = std::fs::read_to_string(dir.path().join("muster.sandbox.toml")).unwrap();
    assert!(
        config.contains("[connections.leapsome]\nplugin = \"leapsome\"\n"),
        "{config}"
    );
    assert!(config.contains("/scim/v1\" }"), "{config}");
    assert!(
        config.contains("secret = { env = \"LEAPSOME_SCIM_TOKEN\" }"),
        "{config}"
    );
}

#[test]
fn a_lost_create_is_applied_and_latency_runs_on_simulated_time() {
    let sim = start(LeapsomeOptions {
        lost_creates: vec![2],
        latency: std::time::Duration::from_secs(1000),
        time_scale: 1_000_000.0, // 1000 simulated seconds = 1 real millisecond
        ..unlimited()
    });
    assert_eq!(
        write(&sim, "POST", "/Users", &new_user("a@sandbox.example", "1")).status,
        201
    );
    let lost = write(&sim, "POST", "/Users", &new_user("b@sandbox.example", "2"));
    assert_eq!(lost.status, 502);
    assert!(lost.detail().contains("created"));
    assert!(
        sim.user_by_external_id("2").is_some(),
        "applied all the same"
    );
    let log = sim.request_log();
    assert!(
        log.records[1].at >= 1000.0,
        "the second request arrived after the first one's latency: {}",
        log.records[1].at
    );
}

#[test]
fn a_stalled_user_patch_is_held_then_dropped_unapplied() {
    let sim = start(LeapsomeOptions {
        stalled_user_patches: vec![2],
        stall: std::time::Duration::from_secs(30),
        time_scale: 1000.0, // 30 simulated seconds = 30 real milliseconds
        ..unlimited()
    });
    let ann = post_user(&sim, "ann@sandbox.example", "1");
    let id = ann["id"].as_str().unwrap();
    let title = |t: &str| patch_named(&sim, id, "ann@sandbox.example", &json!({"title": t}));
    assert_eq!(title("first").status, 200);
    assert_eq!(sim.stalled(), 0);
    let held = title("second");
    assert_eq!(held.status, 503);
    assert_eq!(sim.stalled(), 1);
    assert_eq!(
        sim.user_by_external_id("1").unwrap().title.as_deref(),
        Some("first"),
        "the held PATCH was not applied"
    );
    assert_eq!(title("third").status, 200, "only the chosen PATCH is held");
}

/// Latency is slept per request, each on its own thread: 80 requests sent at
/// once, each taking 1 s, are answered together, not one at a time.
/// Serialised they would take 80 s. Alone this takes about 2 s; run beside
/// the other tests of this binary on a loaded 2-core machine it has taken
/// 20 s (CI, 2026-11-30), so the bound is 40 s: half the serial time.
#[test]
fn latency_does_not_serialise_requests() {
    let sim = start(LeapsomeOptions {
        latency: std::time::Duration::from_secs(1),
        ..unlimited()
    });
    let started = std::time::Instant::now();
    std::thread::scope(|s| {
        let calls: Vec<_> = (0..80)
            .map(|_| s.spawn(|| get(&sim, "/Users?startIndex=1&count=1").status))
            .collect();
        for call in calls {
            assert_eq!(call.join().expect("request thread"), 200);
        }
    });
    let took = started.elapsed();
    eprintln!("80 requests of 1 s each took {took:?}");
    assert!(took < std::time::Duration::from_secs(40), "took {took:?}");
    assert!(took >= std::time::Duration::from_secs(1), "took {took:?}");
}
