//! A first look at the planner: a small Lucca tenant synced to an empty
//! Leapsome, then a day of HR changes and the second plan.
//!
//! Run: `cargo run -p muster-core --example plan`
//!
//! The target here is the in-memory model the core's tests use; the real
//! connectors, sandbox simulators and the `muster` CLI come with the host.

#[path = "../tests/support/mod.rs"]
mod support;

use muster_core::Policy;
use support::{World, day, group, person};

fn main() {
    let mut w = World::new(Policy {
        reactivate: true,
        ..Policy::default()
    });
    w.departments = vec![group("10", "Engineering"), group("20", "Sales")];
    let mut people = vec![
        person("101", "Ana", "Lopez", "ana.lopez@acme.fr"),
        person("102", "Ben", "Roy", "ben.roy@acme.fr"),
        person("103", "Élodie", "de la Tour", "elodie@acme.fr"),
        person("104", "Cem", "Akın", "cem@acme.fr"),
        person("105", "Zoë", "Martin", "zoe@acme.fr"),
    ];
    for (p, (dept, manager)) in people.iter_mut().zip([
        ("10", None),
        ("10", Some("101")),
        ("20", Some("101")),
        ("20", Some("103")),
        ("10", Some("101")),
    ]) {
        p.department_id = Some(dept.into());
        p.manager_id = manager.map(Into::into);
    }
    people[4].start_date = None; // no account without a start date
    w.source = people;

    println!("== First sync: Lucca → empty Leapsome ({})\n", w.today);
    println!("{}", w.plan());
    w.sync();

    w.today = day("2026-03-16");
    w.source[1].job_title = Some("Staff Engineer".into()); // an update
    w.source[3].end_date = Some(day("2026-03-13")); // a leaver
    w.source[1].department_id = Some("20".into()); // moves team
    w.departments[1].name = "Sales & Partnerships".into(); // department renamed
    let mut hire = person("106", "Mehmet", "Yılmaz", "mehmet@acme.fr");
    hire.start_date = Some(day("2026-03-16"));
    hire.department_id = Some("10".into());
    hire.manager_id = Some("101".into());
    w.source.push(hire); // a hire starting today
    w.target[0].job_title = Some("edited by hand in Leapsome".into());

    println!(
        "== Second sync ({}): a hire, a leaver, a move, a rename\n",
        w.today
    );
    println!("{}", w.plan());
    w.sync();
    println!("== Third sync: nothing left to do\n");
    println!("{}", w.plan());
}
