//! A world whose guard has held a plan, served by the real `muster serve`
//! with one admin: the setting of the admin pages' tests (`admin.rs` over
//! HTTP, `browser.rs` in Chromium).

use super::world::{FLOW, Serving, World, http_answer, text};
use muster_sandbox::{LeapsomeOptions, Tenant};

/// The admin's login name and password (kept in a secret file).
pub const ADMIN: &str = "hr-alice";
pub const PASSWORD: &str = "correct horse battery staple";

/// People in the Lucca tenant, and how many of them leave at once: 8 of
/// 40 linked accounts is over the guard's 10 %, so that plan is held.
pub const PEOPLE: usize = 40;
pub const LEAVERS: usize = 8;

/// A world with `[serve] admins`, synced once, whose second sync (8
/// leavers) the guard held.
pub fn held_world() -> World {
    held_world_with(|_| {})
}

/// [`held_world`], with `prepare` applied to the Lucca tenant before the
/// first sync.
pub fn held_world_with(prepare: impl FnOnce(&mut Tenant)) -> World {
    let world = World::with_flow(
        PEOPLE,
        LeapsomeOptions::default(),
        &format!(
            "\n[serve]\nadmins = {{ {ADMIN} = {{ password = {{ file = \"admin.pw\" }} }} }}\n"
        ),
    );
    std::fs::write(world.dir.path().join("admin.pw"), PASSWORD).expect("password file");
    world.lucca.with_tenant(prepare);
    let first = world.muster(&["sync"]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    world.lucca.with_tenant(|t| {
        let keep = t.users.len() - LEAVERS;
        t.users.truncate(keep);
    });
    let held = world.muster(&["sync"]);
    assert_eq!(held.status.code(), Some(3), "{}", text(&held));
    assert!(held_deactivations(&world) > 0);
    world
}

/// The deactivations in the pending held plan (the leavers who had an
/// account).
pub fn held_deactivations(world: &World) -> usize {
    let plan = world.store().held_plan(FLOW).expect("read").expect("held");
    plan.steps
        .iter()
        .filter(|s| s.kind == muster_core::ActionKind::Deactivate)
        .count()
}

/// Leapsome accounts deactivated so far.
pub fn deactivated(world: &World) -> usize {
    world.leapsome.users().iter().filter(|u| !u.active).count()
}

/// Signs in over HTTP; returns the `Cookie` header value.
pub fn sign_in(serving: &Serving) -> String {
    let body = format!("name={ADMIN}&password={}", PASSWORD.replace(' ', "+"));
    let answer = http_answer(
        &serving.addr,
        "POST",
        "/login",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        &body,
    );
    assert_eq!(answer.status, 303, "{}", answer.body);
    let cookie = answer.header("set-cookie").expect("a session cookie");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    cookie.split(';').next().expect("name=value").to_owned()
}

/// The value of the hidden field `name` in a page's form.
pub fn hidden(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page
        .find(&marker)
        .unwrap_or_else(|| panic!("no hidden `{name}` in {page}"))
        + marker.len();
    let end = page[start..].find('"').expect("end of the value") + start;
    page[start..end].to_owned()
}
