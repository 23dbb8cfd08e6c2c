use super::*;
use crate::runtime::connector::page_problem;

fn person(id: &str) -> wire::Person {
    wire::Person {
        id: id.into(),
        employee_number: None,
        given_name: Some("Ada".into()),
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
        manager_id: Some("9".into()),
        legal_entity_id: None,
        contract_type: None,
        active: true,
        custom_fields: vec![],
    }
}

fn problem(id: &str, field: Option<wire::Field>) -> wire::RecordProblem {
    wire::RecordProblem {
        record_id: id.into(),
        field: field.map(wire::FieldRef::Canonical),
        message: "?".into(),
    }
}

fn custom_problem(id: &str, code: &str) -> wire::RecordProblem {
    wire::RecordProblem {
        field: Some(wire::FieldRef::Custom(code.into())),
        ..problem(id, None)
    }
}

fn bad_date(id: &str) -> wire::Person {
    wire::Person {
        birth_date: Some(wire::Date {
            year: 2025,
            month: 2,
            day: 30,
        }),
        ..person(id)
    }
}

/// `holds` on the read's first record with the problem's id, judged on the
/// wire records themselves.
fn holds_in(problem: &wire::RecordProblem, items: &[wire::Person]) -> bool {
    let record = items.iter().find(|p| p.id == problem.record_id);
    let codes: Vec<String> = record
        .map(|p| p.custom_fields.iter().map(|(c, _)| c.clone()).collect())
        .unwrap_or_default();
    holds(
        problem,
        record.map(|p| (Sent::of(p), Codes::Listed(&codes))),
    )
}

#[test]
fn a_plugin_problem_holds_a_record_that_lost_the_value() {
    let items = [person("1")];
    // The date was left out: the record would be planned without it.
    assert!(holds_in(
        &problem("1", Some(wire::Field::BirthDate)),
        &items
    ));
    // The manager is kept as the vendor says, and a missing text field
    // is the vendor's data as it is: reported only.
    assert!(!holds_in(
        &problem("1", Some(wire::Field::ManagerId)),
        &items
    ));
    assert!(!holds_in(
        &problem("1", Some(wire::Field::WorkEmail)),
        &items
    ));
    // A typed value the record still carries: reported only.
    let dated = [wire::Person {
        start_date: Some(wire::Date {
            year: 2020,
            month: 1,
            day: 6,
        }),
        ..person("1")
    }];
    assert!(!holds_in(
        &problem("1", Some(wire::Field::StartDate)),
        &dated
    ));
    assert!(holds_in(&problem("1", Some(wire::Field::Gender)), &items));
    // The whole record, or one the read does not carry.
    assert!(holds_in(&problem("1", None), &items));
    assert!(holds_in(
        &problem("2", Some(wire::Field::ManagerId)),
        &items
    ));
    assert!(holds_in(&custom_problem("1", "e_x"), &items));
}

/// The plugin's problems of a read with their run problems.
fn raw_problems(
    problems: &[wire::RecordProblem],
    side: Side,
) -> Vec<(wire::RecordProblem, Problem)> {
    let redact = |t: &str| t.replace('?', "[redacted]");
    problems
        .iter()
        .map(|p| (p.clone(), page_problem(p, side, "hr", &redact)))
        .collect()
}

/// Reads `items` as one page with `problems`.
fn read_whole(items: &[wire::Person], problems: &[wire::RecordProblem], side: Side) -> Records {
    let mut reading = Reading::new(side, "hr");
    reading.page(RawPage {
        items: items.to_vec(),
        problems: raw_problems(problems, side),
    });
    reading.finish(ReadEnd {
        coverage: wire::Coverage::Full,
        watermark: Some("w".into()),
    })
}

#[test]
fn a_bad_source_record_is_held_and_the_others_go_on() {
    let out = read_whole(
        &[person("1"), bad_date("2"), person("3")],
        &[problem("3", Some(wire::Field::ManagerId))],
        Side::Source,
    );
    let ids: Vec<&str> = out.people.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, ["1", "3"]);
    assert_eq!(out.held, ["2"]);
    assert_eq!(out.dropped, [1]);
    let named: Vec<(&str, &str)> = out
        .problems
        .iter()
        .map(|p| (p.record.as_str(), p.field.as_str()))
        .collect();
    assert_eq!(named, [("3", "manager_id"), ("2", "birth_date")]);
    assert_eq!(
        out.problems[0].message, "[redacted]",
        "page text is redacted"
    );
}

#[test]
fn a_bad_target_account_is_kept_without_the_value_and_held() {
    let out = read_whole(&[bad_date("a"), person("b")], &[], Side::Target);
    assert_eq!(out.people.len(), 2, "the account is not lost");
    assert_eq!(out.people[0].birth_date, None);
    assert_eq!(out.held, ["a"]);
    assert!(out.dropped.is_empty());
    assert_eq!(out.problems[0].side, Side::Target);
}

/// The conversion of a whole read as the host did it before reads were
/// converted page by page (the reference the paged reading must equal):
/// every problem first, judged on the wire records, then every record.
fn records_at_once(
    items: &[wire::Person],
    problems: &[wire::RecordProblem],
    side: Side,
) -> Records {
    let mut out = Records {
        coverage: muster_core::Coverage::Full,
        watermark: Some("w".into()),
        ..Records::default()
    };
    let mut held = Held::default();
    for (p, problem) in raw_problems(problems, side) {
        if holds_in(&p, items) {
            held.add(&p.record_id);
        }
        out.problems.push(problem);
    }
    for item in items {
        let (person, problems) = convert::person_in(item, side, "hr");
        if !problems.is_empty() {
            held.add(&item.id);
            out.problems.extend(problems);
        }
        if side == Side::Target || !held.contains(&item.id) {
            out.people.push(person);
        }
    }
    out.held = held.order;
    out
}

/// A read with everything a page boundary could get wrong: a problem about
/// a record on a later page, or an earlier one, or on none; an id held by
/// conversion on one of its two records; typed values sent but unusable
/// (an impossible date, "undefined" gender, a custom code given twice) with
/// a plugin problem about them.
fn tricky() -> (Vec<wire::Person>, Vec<wire::RecordProblem>) {
    let mut twice = person("7");
    twice.custom_fields = vec![
        ("e_x".into(), wire::FieldValue::Text("a".into())),
        ("e_x".into(), wire::FieldValue::Text("b".into())),
    ];
    let items = vec![
        person("1"),
        bad_date("2"),
        person("3"),
        person("4"),
        person("2"),
        person("6"),
        bad_date("6"),
        twice,
        wire::Person {
            gender: Some(wire::Gender::Undefined),
            ..person("8")
        },
    ];
    let problems = vec![
        problem("4", Some(wire::Field::BirthDate)),
        problem("3", Some(wire::Field::ManagerId)),
        problem("2", Some(wire::Field::BirthDate)),
        custom_problem("7", "e_x"),
        problem("8", Some(wire::Field::Gender)),
        problem("9", None),
        problem("1", Some(wire::Field::WorkEmail)),
    ];
    (items, problems)
}

fn assert_same(paged: &Records, whole: &Records, what: &str) {
    assert_eq!(paged.people, whole.people, "{what}: people");
    assert_eq!(paged.held, whole.held, "{what}: held");
    assert_eq!(paged.problems, whole.problems, "{what}: problems");
    assert_eq!(paged.coverage, whole.coverage, "{what}: coverage");
    assert_eq!(paged.watermark, whole.watermark, "{what}: watermark");
}

#[test]
fn every_way_of_paging_a_read_converts_it_as_one() {
    let (items, problems) = tricky();
    for side in [Side::Source, Side::Target] {
        let whole = records_at_once(&items, &problems, side);
        assert!(
            whole.held.len() >= 4,
            "the data holds records: {:?}",
            whole.held
        );
        let ids: Vec<&str> = whole.people.iter().map(|p| p.id.as_str()).collect();
        match side {
            // 2 and 4 held, 6 held on its second record only, 7 held.
            Side::Source => assert_eq!(ids, ["1", "3", "6", "8"]),
            Side::Target => assert_eq!(ids.len(), items.len()),
        }
        for cuts in 0..1u32 << (items.len() - 1) {
            let mut pages: Vec<Vec<wire::Person>> = vec![Vec::new()];
            for (i, item) in items.iter().enumerate() {
                if i > 0 && cuts & (1 << (i - 1)) != 0 {
                    pages.push(Vec::new());
                }
                pages.last_mut().unwrap().push(item.clone());
            }
            // The problems on the first page, the last, or spread over all.
            for spread in 0..3 {
                let mut reading = Reading::new(side, "hr");
                let mut handed = Vec::new();
                let mut reported = Vec::new();
                let n = pages.len();
                for (k, page) in pages.iter().enumerate() {
                    let here: Vec<wire::RecordProblem> = problems
                        .iter()
                        .enumerate()
                        .filter(|(j, _)| match spread {
                            0 => k == 0,
                            1 => k == n - 1,
                            _ => j % n == k,
                        })
                        .map(|(_, p)| p.clone())
                        .collect();
                    reported.extend(here.iter().cloned());
                    let converted = reading.page(RawPage {
                        items: page.clone(),
                        problems: raw_problems(&here, side),
                    });
                    assert_eq!(converted.len(), page.len());
                    handed.extend(converted.iter().cloned());
                }
                let paged = reading.finish(ReadEnd {
                    coverage: wire::Coverage::Full,
                    watermark: Some("w".into()),
                });
                let what = format!("{side} cut {cuts:#b} spread {spread}");
                // The reference sees the problems in the order reported.
                assert_same(&paged, &records_at_once(&items, &reported, side), &what);
                // What was handed out, less what was dropped, is the people.
                let kept: Vec<Person> = handed
                    .into_iter()
                    .enumerate()
                    .filter(|(i, _)| paged.dropped.binary_search(i).is_err())
                    .map(|(_, p)| p)
                    .collect();
                assert_eq!(kept, paged.people, "{what}: dropped");
            }
        }
    }
}
