//! `muster serve`'s admin pages over real HTTP: the real binary with
//! `[serve] admins`, the real Lucca and Leapsome plugins against the
//! simulators, a real SQLite store whose guard held a plan (8 leavers of
//! 40). Bad input first: no session → 401, a forged form without the CSRF
//! token → 403, and nothing changes; then approval applies exactly the
//! reviewed plan once, a second approval is refused, a rejection retires
//! the plan, and a plan whose data moved is not applied.

mod common;

use common::admin::{deactivated, held_deactivations, held_world, hidden, sign_in};
use common::world::{FLOW, http_answer};
use muster::store::HeldState;

const FORM: (&str, &str) = ("Content-Type", "application/x-www-form-urlencoded");

fn post(addr: &str, path: &str, cookie: Option<&str>, body: &str) -> common::world::HttpAnswer {
    let mut headers = vec![FORM];
    if let Some(c) = cookie {
        headers.push(("Cookie", c));
    }
    http_answer(addr, "POST", path, &headers, body)
}

fn get(addr: &str, path: &str, cookie: &str) -> common::world::HttpAnswer {
    http_answer(addr, "GET", path, &[("Cookie", cookie)], "")
}

/// The approve/reject form fields of the review page.
fn decision(page: &str, csrf: bool) -> String {
    let mut body = format!(
        "plan={}&digest={}",
        hidden(page, "plan"),
        hidden(page, "digest")
    );
    if csrf {
        body.push_str(&format!("&csrf={}", hidden(page, "csrf")));
    }
    body
}

/// Approves the plan a review page shows, and checks it was applied.
fn approve(addr: &str, cookie: &str, review: &str) -> common::world::HttpAnswer {
    let approved = post(
        addr,
        "/held/people/approve",
        Some(cookie),
        &decision(review, true),
    );
    assert_eq!(approved.status, 200, "{}", approved.body);
    assert!(
        approved.body.contains("applied the plan"),
        "{}",
        approved.body
    );
    approved
}

#[test]
fn wrong_or_missing_credentials_and_forged_forms_change_nothing() {
    let world = held_world();
    let serving = world.serve();
    let addr = serving.addr.as_str();
    let before = deactivated(&world);

    // Every page needs a session once admins are configured.
    for path in ["/", "/held/people"] {
        let page = http_answer(addr, "GET", path, &[], "");
        assert_eq!(page.status, 401, "{path}: {}", page.body);
        assert!(page.body.contains("action=\"/login\""), "{}", page.body);
        assert!(!page.body.contains("deactivate"), "{}", page.body);
    }
    let stranger = get(addr, "/", "muster_session=0123456789abcdef");
    assert_eq!(stranger.status, 401);

    // A wrong password, an unknown name, an empty password: no session.
    for body in [
        "name=hr-alice&password=wrong",
        "name=mallory&password=correct+horse+battery+staple",
        "name=hr-alice&password=",
    ] {
        let answer = post(addr, "/login", None, body);
        assert_eq!(answer.status, 401, "{body}: {}", answer.body);
        assert!(answer.header("set-cookie").is_none(), "{body}");
        assert!(
            answer.body.contains("Wrong name or password"),
            "{}",
            answer.body
        );
    }

    let cookie = sign_in(&serving);
    let review = get(addr, "/held/people", &cookie);
    assert_eq!(review.status, 200, "{}", review.body);

    // Approval without a session: 401; with the session but without (or
    // with another) CSRF token, as a forged cross-site form would be: 403.
    let no_session = post(
        addr,
        "/held/people/approve",
        None,
        &decision(&review.body, true),
    );
    assert_eq!(no_session.status, 401, "{}", no_session.body);
    let forged = post(
        addr,
        "/held/people/approve",
        Some(&cookie),
        &decision(&review.body, false),
    );
    assert_eq!(forged.status, 403, "{}", forged.body);
    let wrong_token = format!("{}&csrf=00ff", decision(&review.body, false));
    let forged = post(addr, "/held/people/approve", Some(&cookie), &wrong_token);
    assert_eq!(forged.status, 403, "{}", forged.body);
    let forged_reject = post(
        addr,
        "/held/people/reject",
        Some(&cookie),
        &decision(&review.body, false),
    );
    assert_eq!(forged_reject.status, 403, "{}", forged_reject.body);

    // Nothing changed: no account deactivated, the plan still pending,
    // nothing audited.
    assert_eq!(deactivated(&world), before);
    let store = world.store();
    let plan = store.held_plan(FLOW).expect("read").expect("still held");
    assert_eq!(plan.state(), HeldState::Pending);
    let audit = store.audit_log(FLOW, 50).expect("audit");
    assert!(
        audit
            .iter()
            .all(|a| a.what != "approve_held" && a.what != "reject_held"),
        "{audit:?}"
    );
}

#[test]
fn an_approved_plan_is_applied_once_and_audited_with_who() {
    let world = held_world();
    let serving = world.serve();
    let addr = serving.addr.as_str();
    let before = deactivated(&world);
    let leaving = held_deactivations(&world);
    let cookie = sign_in(&serving);

    let status = get(addr, "/", &cookie);
    assert_eq!(status.status, 200, "{}", status.body);
    assert!(
        status.body.contains("href=\"/held/people\""),
        "{}",
        status.body
    );
    assert!(
        status.body.contains("Signed in as <b>hr-alice</b>"),
        "{}",
        status.body
    );

    let review = get(addr, "/held/people", &cookie);
    assert_eq!(review.status, 200, "{}", review.body);
    let plan = world.store().held_plan(FLOW).expect("read").expect("held");
    // The page shows the plan the CLI prints: grouped, with reasons, the
    // counts, the breach that held it and the digest.
    assert!(
        review
            .body
            .contains(&format!("<h3>deactivate ({leaving}):</h3>")),
        "{}",
        review.body
    );
    assert!(review.body.contains("because "), "{}", review.body);
    let breaches = plan.breaches.replace('>', "&gt;");
    assert!(review.body.contains(&breaches), "{}", review.body);
    assert!(
        review.body.contains(&plan.snapshot_digest),
        "{}",
        review.body
    );
    assert_eq!(hidden(&review.body, "plan"), plan.id.to_string());

    let approved = approve(addr, &cookie, &review.body);
    assert!(approved.body.contains("<b>done</b>"), "{}", approved.body);
    assert_eq!(deactivated(&world), before + leaving);

    let store = world.store();
    let after = store
        .held_plan_by_id(FLOW, plan.id)
        .expect("read")
        .expect("kept");
    assert_eq!(after.state(), HeldState::Approved);
    assert_eq!(after.approved_by.as_deref(), Some("hr-alice"));
    assert!(after.approved_at.is_some());
    let audit = store.audit_log(FLOW, 50).expect("audit");
    let entry = audit
        .iter()
        .find(|a| a.what == "approve_held")
        .unwrap_or_else(|| panic!("no approval audited: {audit:?}"));
    assert_eq!(entry.after.as_ref().unwrap()["approved_by"], "hr-alice");
    assert!(!entry.ts.is_empty());

    // The same form again: refused, nothing run.
    let runs = store.history(FLOW, 100).expect("history").len();
    let twice = post(
        addr,
        "/held/people/approve",
        Some(&cookie),
        &decision(&review.body, true),
    );
    assert_eq!(twice.status, 409, "{}", twice.body);
    assert!(
        twice.body.contains("already approved by hr-alice"),
        "{}",
        twice.body
    );
    assert_eq!(
        world.store().history(FLOW, 100).expect("history").len(),
        runs
    );
    assert_eq!(deactivated(&world), before + leaving);
}

#[test]
fn a_rejected_plan_is_retired_audited_and_cannot_be_approved() {
    let world = held_world();
    let serving = world.serve();
    let addr = serving.addr.as_str();
    let before = deactivated(&world);
    let cookie = sign_in(&serving);
    let review = get(addr, "/held/people", &cookie);
    let plan = hidden(&review.body, "plan");

    let rejected = post(
        addr,
        "/held/people/reject",
        Some(&cookie),
        &decision(&review.body, true),
    );
    assert_eq!(rejected.status, 200, "{}", rejected.body);
    assert!(
        rejected.body.contains("Rejected by hr-alice"),
        "{}",
        rejected.body
    );
    let store = world.store();
    assert!(store.held_plan(FLOW).expect("read").is_none());
    let id = muster::store::HeldPlanId(plan.parse().expect("plan id"));
    let retired = store
        .held_plan_by_id(FLOW, id)
        .expect("read")
        .expect("kept");
    assert_eq!(retired.state(), HeldState::Rejected);
    assert_eq!(retired.rejected_by.as_deref(), Some("hr-alice"));
    let audit = store.audit_log(FLOW, 50).expect("audit");
    assert!(
        audit
            .iter()
            .any(|a| a.what == "reject_held"
                && a.after.as_ref().unwrap()["rejected_by"] == "hr-alice"),
        "{audit:?}"
    );

    let late = post(
        addr,
        "/held/people/approve",
        Some(&cookie),
        &decision(&review.body, true),
    );
    assert_eq!(late.status, 409, "{}", late.body);
    assert!(late.body.contains("rejected by hr-alice"), "{}", late.body);
    assert_eq!(deactivated(&world), before);
    let gone = get(addr, "/held/people", &cookie);
    assert_eq!(gone.status, 404, "{}", gone.body);
}

#[test]
fn a_plan_whose_data_moved_is_not_applied_and_a_fresh_one_is_held() {
    let world = held_world();
    let serving = world.serve();
    let addr = serving.addr.as_str();
    let before = deactivated(&world);
    let cookie = sign_in(&serving);
    let review = get(addr, "/held/people", &cookie);
    let reviewed = world.store().held_plan(FLOW).expect("read").expect("held");

    // One more leaver after the review: the reviewed plan is stale.
    world.lucca.with_tenant(|t| {
        t.users.pop();
    });
    let approved = post(
        addr,
        "/held/people/approve",
        Some(&cookie),
        &decision(&review.body, true),
    );
    assert_eq!(approved.status, 409, "{}", approved.body);
    assert!(approved.body.contains("changed since"), "{}", approved.body);
    assert_eq!(deactivated(&world), before, "a stale plan was applied");

    let store = world.store();
    let fresh = store
        .held_plan(FLOW)
        .expect("read")
        .expect("a fresh plan is held");
    assert_ne!(fresh.id, reviewed.id);
    assert_ne!(fresh.snapshot_digest, reviewed.snapshot_digest);
    let old = store
        .held_plan_by_id(FLOW, reviewed.id)
        .expect("read")
        .expect("kept");
    assert_eq!(old.state(), HeldState::Superseded);
}

#[test]
fn an_undo_from_the_run_page_is_held_for_review_and_applied_once_approved() {
    let world = held_world();
    let serving = world.serve();
    let addr = serving.addr.as_str();
    let before = deactivated(&world);
    let leaving = held_deactivations(&world);
    let cookie = sign_in(&serving);

    // HR approves the leaver wave; it turns out to be a mistake.
    let review = get(addr, "/held/people", &cookie);
    approve(addr, &cookie, &review.body);
    assert_eq!(deactivated(&world), before + leaving);
    let wave = world.store().history(FLOW, 1).expect("history")[0].id;

    // The run's page offers the Undo button, with the CSRF token.
    let page = get(addr, &format!("/runs/{wave}"), &cookie);
    assert_eq!(page.status, 200, "{}", page.body);
    let action = format!("action=\"/runs/{wave}/undo\"");
    assert!(page.body.contains(&action), "{}", page.body);
    let csrf = hidden(&page.body, "csrf");

    // Forged (no token) or anonymous: refused, nothing planned or held.
    let path = format!("/runs/{wave}/undo");
    assert_eq!(post(addr, &path, Some(&cookie), "").status, 403);
    assert_eq!(post(addr, &path, None, &format!("csrf={csrf}")).status, 401);
    assert!(world.store().held_plan(FLOW).expect("read").is_none());

    // The click holds the undo for review: nothing changes yet.
    let clicked = post(addr, &path, Some(&cookie), &format!("csrf={csrf}"));
    assert_eq!(clicked.status, 303, "{}", clicked.body);
    assert_eq!(clicked.header("location"), Some("/held/people"));
    assert_eq!(deactivated(&world), before + leaving);
    let held = world.store().held_plan(FLOW).expect("read").expect("held");
    let undo_run = world.store().run_record(held.run).expect("undo run");
    assert_eq!(undo_run.undoes, Some(wave));

    // Reviewed and approved like any held plan: every account is back.
    let review = get(addr, "/held/people", &cookie);
    assert!(
        review
            .body
            .contains(&format!("<h3>reactivate ({leaving}):</h3>")),
        "{}",
        review.body
    );
    approve(addr, &cookie, &review.body);
    assert_eq!(deactivated(&world), before);
    let store = world.store();
    let done = store
        .held_plan_by_id(FLOW, held.id)
        .expect("read")
        .expect("kept");
    assert_eq!(done.state(), HeldState::Approved);
    assert_eq!(done.approved_by.as_deref(), Some("hr-alice"));
    let audit = store.audit_log(FLOW, 200).expect("audit");
    let asked = audit
        .iter()
        .find(|a| a.what == "undo_requested")
        .unwrap_or_else(|| panic!("no undo request audited: {audit:?}"));
    assert_eq!(asked.after.as_ref().unwrap()["requested_by"], "hr-alice");
}
