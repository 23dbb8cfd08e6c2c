//! The Cards simulator over real HTTP on loopback, with `ureq` as the client.

use muster_sandbox::cards::DEFAULT_TOKEN;
use muster_sandbox::{
    CardsOptions, CardsSim, CardsUser, Fault, FaultKind, RateLimit, Space, TrainingStat,
};
use serde_json::{Value, json};

struct Resp {
    status: u16,
    retry_after: Option<String>,
    body: Value,
}

/// One request; `auth` = (token, tenant), each header left out when `None`.
fn send(method: &str, url: &str, auth: (Option<&str>, Option<&str>), body: Option<Value>) -> Resp {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut headers = Vec::new();
    if let Some(t) = auth.0 {
        headers.push(("Authorization", format!("Bearer {t}")));
    }
    if let Some(t) = auth.1 {
        headers.push(("X-Tenant", t.to_string()));
    }
    let result = match method {
        "GET" | "DELETE" => {
            let mut r = if method == "GET" {
                agent.get(url)
            } else {
                agent.delete(url)
            };
            for (k, v) in &headers {
                r = r.header(*k, v);
            }
            r.call()
        }
        m => {
            let mut r = if m == "POST" {
                agent.post(url)
            } else {
                agent.put(url)
            };
            for (k, v) in &headers {
                r = r.header(*k, v);
            }
            r.content_type("application/json")
                .send(body.unwrap_or(Value::Null).to_string().as_bytes())
        }
    };
    let mut response = result.expect("HTTP exchange");
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap_or_default();
    Resp {
        status,
        retry_after,
        body: serde_json::from_str(&text).unwrap_or(Value::Null),
    }
}

const OK: (Option<&str>, Option<&str>) = (Some(DEFAULT_TOKEN), Some("sandbox"));

fn sim(space: Space) -> CardsSim {
    CardsSim::start(CardsOptions {
        rate_limit: None,
        space,
        ..CardsOptions::default()
    })
    .expect("start")
}

#[test]
fn bearer_token_and_tenant_are_both_required() {
    let cards = sim(Space::new());
    let url = format!("{}/users", cards.base_url());
    assert_eq!(send("GET", &url, (None, Some("sandbox")), None).status, 401);
    assert_eq!(
        send("GET", &url, (Some("nope"), Some("sandbox")), None).status,
        401
    );
    assert_eq!(
        send("GET", &url, (Some(DEFAULT_TOKEN), None), None).status,
        400
    );
    assert_eq!(
        send("GET", &url, (Some(DEFAULT_TOKEN), Some("other")), None).status,
        403
    );
    assert_eq!(send("GET", &url, OK, None).status, 200);
}

#[test]
fn users_page_by_at_most_500_and_filter_by_group_and_role() {
    let mut space = Space::new();
    let sales = space.add_group("Sales");
    for i in 0..7 {
        let mut u = CardsUser::new("F", &format!("L{i}"), &format!("u{i}@x.example"));
        if i % 2 == 0 {
            u.groups = vec![sales];
        }
        if i == 6 {
            u.role = "editor".into();
        }
        space.add_user(u);
    }
    let cards = sim(space);
    let base = cards.base_url();
    let page = send("GET", &format!("{base}/users?paginate=3&page=3"), OK, None);
    assert_eq!(page.body["data"].as_array().map(Vec::len), Some(1));
    assert_eq!(page.body["meta"]["last_page"], 3);
    assert_eq!(page.body["meta"]["total"], 7);
    assert!(page.body["links"]["next"].is_null());
    let too_big = send("GET", &format!("{base}/users?paginate=501"), OK, None);
    assert_eq!(too_big.status, 422);
    let filters = json!([{"type": "groups_name", "values": ["Sales"]},
                         {"type": "role", "values": ["editor"]}]);
    let url = format!("{base}/users?filters={}", urlencode(&filters.to_string()));
    let filtered = send("GET", &url, OK, None);
    let emails: Vec<&str> = filtered.body["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter_map(|u| u["email"].as_str())
        .collect();
    assert_eq!(emails, ["u6@x.example"]);
    let bad = format!(
        "{base}/users?filters={}",
        urlencode(r#"[{"type":"age","values":[1]}]"#)
    );
    assert_eq!(send("GET", &bad, OK, None).status, 422);
}

#[test]
fn put_is_partial_and_groups_replace_the_whole_list() {
    let mut space = Space::new();
    let manual = space.add_group("Hand-made");
    let cards = sim(space);
    let base = cards.base_url();
    let created = send(
        "POST",
        &format!("{base}/users"),
        OK,
        Some(
            json!({"firstname": "Ana", "lastname": "Lys", "email": "ana@x.example",
                    "source": "sso", "notify": true,
                    "groups": [{"id": manual}, {"name": "New team"}]}),
        ),
    );
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["data"]["id"].as_u64().expect("id");
    assert_eq!(
        created.body["data"]["groups"].as_array().map(Vec::len),
        Some(2)
    );
    assert_eq!(cards.notifications().len(), 1);
    let user_url = format!("{base}/users/{id}");
    let renamed = send("PUT", &user_url, OK, Some(json!({"firstname": "Anna"})));
    assert_eq!(renamed.body["data"]["lastname"], "Lys", "partial");
    assert_eq!(
        renamed.body["data"]["groups"].as_array().map(Vec::len),
        Some(2)
    );
    let emptied = send("PUT", &user_url, OK, Some(json!({"groups": []})));
    assert_eq!(emptied.body["data"]["groups"], json!([]));
    let long = send(
        "PUT",
        &user_url,
        OK,
        Some(json!({"lastname": "x".repeat(191)})),
    );
    assert_eq!(long.status, 422);
    assert!(long.body["errors"]["lastname"].is_array(), "{}", long.body);
    let lang = send("PUT", &user_url, OK, Some(json!({"lang": "de"})));
    assert!(lang.body["errors"]["lang"].is_array(), "{}", lang.body);
    let taken = send(
        "POST",
        &format!("{base}/users"),
        OK,
        Some(json!({"firstname": "B", "lastname": "C", "email": "ANA@x.example"})),
    );
    assert!(taken.body["errors"]["email"].is_array(), "{}", taken.body);
    assert_eq!(send("DELETE", &user_url, OK, None).status, 204);
    assert_eq!(send("GET", &user_url, OK, None).status, 404);
    let groups = send("GET", &format!("{base}/groups"), OK, None);
    assert_eq!(
        groups.body["meta"]["total"], 2,
        "groups outlive their members"
    );
}

#[test]
fn statistics_feed_pages_and_webhook_events_add_rows() {
    let mut space = Space::new();
    space.add_user(CardsUser::new("Ana", "Lys", "ana@x.example"));
    for i in 0..3 {
        space.stats.push(TrainingStat {
            user_email: "ana@x.example".into(),
            training_title: format!("T{i}"),
            training_link: format!("https://cards.example/t/{i}"),
            progress: 50,
            score: 10,
            last_completed_at: None,
        });
    }
    let cards = sim(space);
    let event = cards
        .record_completion(
            "quiz-complete",
            TrainingStat {
                user_email: "ana@x.example".into(),
                training_title: "T9".into(),
                training_link: "https://cards.example/t/9".into(),
                progress: 100,
                score: 90,
                last_completed_at: Some("2026-05-31 18:00:00".into()),
            },
        )
        .expect("known user");
    assert_eq!(event["event"], "quiz-complete");
    assert_eq!(event["data"]["user"]["email"], "ana@x.example");
    assert_eq!(event["data"]["score"]["progress"], 100);
    assert!(
        cards
            .record_completion(
                "chapter-complete",
                TrainingStat {
                    user_email: "nobody@x.example".into(),
                    training_title: "T".into(),
                    training_link: String::new(),
                    progress: 1,
                    score: 0,
                    last_completed_at: None,
                }
            )
            .is_none()
    );
    let url = format!(
        "{}/statistics/trainings?paginate=3&page=2",
        cards.base_url()
    );
    let page = send("GET", &url, OK, None);
    assert_eq!(page.body["meta"]["total"], 4);
    assert_eq!(page.body["data"][0]["training_title"], "T9");
    assert_eq!(page.body["data"][0]["score"], 90);
}

#[test]
fn rate_limit_and_faults() {
    let cards = CardsSim::start(CardsOptions {
        rate_limit: Some(RateLimit {
            requests: 2,
            window_secs: 60.0,
        }),
        faults: vec![Fault::new(1, FaultKind::ServerError)],
        ..CardsOptions::default()
    })
    .expect("start");
    let url = format!("{}/users", cards.base_url());
    assert_eq!(send("GET", &url, OK, None).status, 500);
    assert_eq!(send("GET", &url, OK, None).status, 200);
    let limited = send("GET", &url, OK, None);
    assert_eq!(limited.status, 429);
    assert!(
        limited
            .retry_after
            .is_some_and(|s| s.parse::<u64>().is_ok_and(|s| s >= 1))
    );
    assert_eq!(cards.request_log().count_status(429), 1);
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
