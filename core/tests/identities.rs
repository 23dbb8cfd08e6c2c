//! Matching through another flow's links ([`muster_core::Input::identities`]):
//! a Cards → Lucca write-back finds the Lucca user of a Cards person through
//! the links the Lucca → Cards flow made, before any correlation key.

mod support;

use muster_core::{ActionKind, Allowed, CorrelationKey, Link, Person, Policy};
use support::*;

/// An update-only write-back that may adopt (link) an existing account.
fn write_back() -> Policy {
    Policy {
        allowed: Allowed {
            create: false,
            link: true,
            update: true,
            deactivate: false,
            reactivate: false,
        },
        correlation: vec![CorrelationKey::WorkEmail],
        identity_links: Some("lucca-to-cards".into()),
        ..Policy::default()
    }
}

/// A Cards person: no start date (Cards has none), just an email.
fn cards_person(id: &str, email: &str) -> Person {
    Person {
        work_email: Some(email.into()),
        ..Person::new(id)
    }
}

fn lucca_user(id: &str, email: &str) -> Person {
    Person {
        work_email: Some(email.into()),
        ..Person::new(id)
    }
}

#[test]
fn a_person_the_other_flow_linked_is_matched_to_its_source_account() {
    let mut w = World::new(write_back());
    // The Cards email differs from Lucca's: only the link can tell.
    w.source = vec![cards_person("c-1", "ana.lopez@cards.example")];
    w.target = vec![
        lucca_user("416", "ana@acme.fr"),
        lucca_user("417", "ana.lopez@cards.example"),
    ];
    w.identities = vec![Link::new("416", "c-1")];
    let steps = w.plan().steps();
    let link = steps
        .iter()
        .find(|s| s.kind == ActionKind::Link)
        .unwrap_or_else(|| panic!("{steps:?}"));
    assert_eq!(link.source_id.as_deref(), Some("c-1"));
    assert_eq!(link.target_id.as_deref(), Some("416"));
    assert_eq!(
        link.explanation,
        "the account another flow's link names (the identity it established)"
    );
}

#[test]
fn without_a_usable_identity_the_work_email_decides() {
    let mut w = World::new(write_back());
    w.source = vec![
        cards_person("c-1", "ana@acme.fr"),
        cards_person("c-2", "bo@acme.fr"),
    ];
    w.target = vec![
        lucca_user("416", "ana@acme.fr"),
        lucca_user("500", "bo@acme.fr"),
    ];
    // c-2's identity names an account Lucca no longer has.
    w.identities = vec![Link::new("999", "c-2")];
    let summary = w.summary();
    assert_eq!(
        summary,
        ["link c-1 (matched)", "link c-2 (matched)"],
        "{summary:?}"
    );
    let steps = w.plan().steps();
    assert!(
        steps
            .iter()
            .all(|s| s.explanation == "existing account with the same work_email")
    );
}

#[test]
fn an_account_already_linked_by_this_flow_is_not_taken_twice() {
    let mut w = World::new(write_back());
    w.source = vec![
        cards_person("c-1", "ana@acme.fr"),
        cards_person("c-2", "other@acme.fr"),
    ];
    w.target = vec![lucca_user("416", "ana@acme.fr")];
    w.link("c-1", "416");
    // A stale identity pointing c-2 at 416, which c-1 already holds.
    w.identities = vec![Link::new("416", "c-2")];
    let steps = w.plan().steps();
    assert!(
        steps.iter().all(|s| s.kind != ActionKind::Link),
        "{steps:?}"
    );
    let skip = steps
        .iter()
        .find(|s| s.source_id.as_deref() == Some("c-2"))
        .expect("c-2 is reported");
    assert_eq!(skip.reason, "no_match");
}

#[test]
fn a_person_who_matches_nobody_is_reported_by_name_with_the_keys_tried() {
    let mut w = World::new(write_back());
    w.source = vec![cards_person("c-9", "ghost@acme.fr")];
    w.target = vec![lucca_user("416", "ana@acme.fr")];
    let steps = w.plan().steps();
    let [skip] = steps.as_slice() else {
        panic!("{steps:?}")
    };
    assert_eq!(skip.kind, ActionKind::Skip);
    assert_eq!(skip.reason, "no_match");
    assert_eq!(skip.source_id.as_deref(), Some("c-9"));
    assert!(skip.label.contains("ghost@acme.fr"), "{}", skip.label);
    assert_eq!(
        skip.explanation,
        "matches no account in the target (tried the links of flow `lucca-to-cards`, work_email) and this flow may not create one"
    );
}
