//! The connector layer: what the rest of the host (the engine) calls to read
//! a side, in the core's terms — `muster_core` people, groups and
//! [`muster_core::Coverage`], plus the [`Problem`]s of the records that could
//! not be taken as they are.
//!
//! Below it, [`PluginInstance`] speaks the latest contract's records for
//! every contract version (an older plugin is adapted in
//! [`crate::runtime::contract`]); this layer converts each record **once**,
//! here ([`convert`]), with one policy for bad input:
//!
//! - a value the host cannot take (an impossible date, a non-finite number,
//!   an unusable custom field code or compound row) and a problem the plugin
//!   itself reports on a page become [`Problem`]s naming the side, the
//!   plugin, the record and the field — never an error that stops the read;
//! - a record with a value the host cannot take is **held**
//!   ([`Records::held`]), and so is one a plugin's problem holds (next
//!   point): on the source side it is
//!   left out of the people and its id handed to the core as
//!   [`muster_core::Side::held`] — nothing is created, updated or
//!   deactivated for it, and the plan says why; on the target side the
//!   account is kept (so it is neither created again nor lost to
//!   correlation) with the bad value left out, and the engine holds the
//!   person it belongs to, so no change is ever planned from a value that
//!   could not be read;
//! - a problem a plugin reports about the whole record, or about a typed
//!   value (a date, the gender, a custom field) its record lacks, holds it:
//!   the plugin could not read what the vendor has. One about a text field
//!   (no work email, a manager outside the read) or a value the record still
//!   carries is reported only ([`holds`]).
//!
//! The other records go on.
//!
//! Going out, [`person_to_target`] is the one place a core person becomes a
//! target's record, its source ids (manager, department) translated through
//! the links.

mod convert;

use std::collections::BTreeSet;

use muster_core::{Coverage, Group, Person};

use super::contract::latest::{self as wire, coverage_to_core, field_ref_to_core};
use super::{PluginError, PluginInstance};

pub use convert::{group_in, person_to_target, row_changes_out};

/// Which side of a flow a record comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    Source,
    Target,
}

impl Side {
    pub const fn as_str(self) -> &'static str {
        match self {
            Side::Source => "source",
            Side::Target => "target",
        }
    }
}

impl std::fmt::Display for Side {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A record that could not be taken as it is: reported with the run (plan,
/// run report, `history`), never a reason to stop the others.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{side} record {record} (plugin `{plugin}`): field `{field}`: {message}")]
pub struct Problem {
    pub side: Side,
    /// The plugin that handed the record over (or, for a mapping problem,
    /// the source's plugin).
    pub plugin: String,
    /// The record's id in its system.
    pub record: String,
    /// The field in the core's spelling (`birth_date`, a custom code,
    /// `code.sub` for a compound sub-field), or `(record)`.
    pub field: String,
    pub message: String,
}

/// A whole read of people or accounts, in the core's terms.
#[derive(Debug, Clone, Default)]
pub struct Records {
    /// The records that can be used. On the source side, held records are
    /// not among them; on the target side they are, without the bad values.
    pub people: Vec<Person>,
    /// The ids of the records a problem holds, in the order first reported.
    pub held: Vec<String>,
    /// Every problem of the read, the plugin's own first (it saw the
    /// records first), then the host's.
    pub problems: Vec<Problem>,
    /// What the read covers (a target read is always full).
    pub coverage: Coverage,
    /// Where the next incremental read may start, when the plugin says.
    pub watermark: Option<String>,
}

/// A whole read of groups, in the core's terms. A group problem is reported
/// only: groups are not held.
#[derive(Debug, Clone, Default)]
pub struct Groups {
    pub groups: Vec<Group>,
    pub problems: Vec<Problem>,
}

/// A connector, as the engine sees it: every read in the core's terms, with
/// the bad records held and reported (see the module doc).
pub trait Connector {
    /// The plugin's name, for problems and errors.
    fn plugin(&self) -> &str;
    /// Every source person; with `since`, the changes since that watermark.
    fn people(&mut self, since: Option<&str>) -> Result<Records, PluginError>;
    /// Every target account.
    fn accounts(&mut self) -> Result<Records, PluginError>;
    /// Every group of `side` (source departments or target groups).
    fn groups(&mut self, side: Side) -> Result<Groups, PluginError>;
    /// One record of `side` through `read-person` / `read-account`: no
    /// people and nothing held when there is no such record.
    fn one(&mut self, side: Side, id: &str) -> Result<Records, PluginError>;
}

impl Connector for PluginInstance {
    fn plugin(&self) -> &str {
        self.name()
    }

    fn people(&mut self, since: Option<&str>) -> Result<Records, PluginError> {
        let read = self.read_all_people(since)?;
        let page = wire::PersonPage {
            items: read.people,
            next: None,
            coverage: read.coverage,
            watermark: read.watermark,
            problems: read.problems,
        };
        Ok(self.records(page, Side::Source))
    }

    fn accounts(&mut self) -> Result<Records, PluginError> {
        let read = self.read_all_accounts()?;
        let page = wire::PersonPage {
            items: read.people,
            next: None,
            coverage: read.coverage,
            watermark: read.watermark,
            problems: read.problems,
        };
        Ok(self.records(page, Side::Target))
    }

    fn groups(&mut self, side: Side) -> Result<Groups, PluginError> {
        let read = match side {
            Side::Source => self.read_all_groups()?,
            Side::Target => self.read_all_target_groups()?,
        };
        Ok(Groups {
            groups: read.groups.iter().map(group_in).collect(),
            problems: read
                .problems
                .iter()
                .map(|p| self.page_problem(p, side))
                .collect(),
        })
    }

    fn one(&mut self, side: Side, id: &str) -> Result<Records, PluginError> {
        let record = match side {
            Side::Source => self.read_person(id)?,
            Side::Target => self.read_account(id)?,
        };
        let page = wire::PersonPage {
            items: record.into_iter().collect(),
            next: None,
            coverage: wire::Coverage::Full,
            watermark: None,
            problems: Vec::new(),
        };
        Ok(self.records(page, side))
    }
}

impl PluginInstance {
    /// A page problem as the run's [`Problem`], its text redacted like the
    /// plugin's log lines (a vendor body it quotes may echo a credential).
    fn page_problem(&self, p: &wire::RecordProblem, side: Side) -> Problem {
        page_problem(p, side, self.name(), &|t| self.store.data().http.redact(t))
    }

    fn records(&self, page: wire::PersonPage, side: Side) -> Records {
        records(page, side, self.name(), &|t| {
            self.store.data().http.redact(t)
        })
    }
}

fn page_problem(
    p: &wire::RecordProblem,
    side: Side,
    plugin: &str,
    redact: &dyn Fn(&str) -> String,
) -> Problem {
    Problem {
        side,
        plugin: plugin.to_owned(),
        record: p.record_id.clone(),
        field: p.field.as_ref().map_or_else(
            || "(record)".to_owned(),
            |f| String::from(field_ref_to_core(f)),
        ),
        message: redact(&p.message),
    }
}

/// Converts a read (all its pages as one) and decides what is held.
fn records(
    page: wire::PersonPage,
    side: Side,
    plugin: &str,
    redact: &dyn Fn(&str) -> String,
) -> Records {
    let mut out = Records {
        coverage: coverage_to_core(page.coverage),
        watermark: page.watermark,
        ..Records::default()
    };
    let mut held = Held::default();
    for p in &page.problems {
        if holds(p, &page.items) {
            held.add(&p.record_id);
        }
        out.problems.push(page_problem(p, side, plugin, redact));
    }
    for item in &page.items {
        let (person, problems) = convert::person_in(item, side, plugin);
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

/// Ids in the order first held.
#[derive(Default)]
struct Held {
    order: Vec<String>,
    set: BTreeSet<String>,
}

impl Held {
    fn add(&mut self, id: &str) {
        if self.set.insert(id.to_owned()) {
            self.order.push(id.to_owned());
        }
    }

    fn contains(&self, id: &str) -> bool {
        self.set.contains(id)
    }
}

/// Whether a plugin's problem holds its record. A problem about the whole
/// record, or about a record the page does not carry, does. So does one
/// about a *typed* value the record lacks — a date, the gender, a custom
/// field: the plugin could not read what the vendor has, and left it out
/// (see `plugins/README.md`), so planning from the record would clear it. A
/// text field cannot be unreadable: a problem about one (no work email, a
/// manager outside the read) remarks on the vendor's data, which the record
/// carries as it is, and is reported only — as is one about a value the
/// record still carries.
fn holds(problem: &wire::RecordProblem, items: &[wire::Person]) -> bool {
    let Some(field) = &problem.field else {
        return true;
    };
    let Some(record) = items.iter().find(|p| p.id == problem.record_id) else {
        return true;
    };
    match field {
        wire::FieldRef::Custom(code) => !record.custom_fields.iter().any(|(c, _)| c == code),
        wire::FieldRef::Canonical(f) => match f {
            wire::Field::BirthDate => record.birth_date.is_none(),
            wire::Field::StartDate => record.start_date.is_none(),
            wire::Field::EndDate => record.end_date.is_none(),
            wire::Field::Gender => record.gender.is_none(),
            _ => false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn a_plugin_problem_holds_a_record_that_lost_the_value() {
        let items = [person("1")];
        // The date was left out: the record would be planned without it.
        assert!(holds(&problem("1", Some(wire::Field::BirthDate)), &items));
        // The manager is kept as the vendor says, and a missing text field
        // is the vendor's data as it is: reported only.
        assert!(!holds(&problem("1", Some(wire::Field::ManagerId)), &items));
        assert!(!holds(&problem("1", Some(wire::Field::WorkEmail)), &items));
        // A typed value the record still carries: reported only.
        let dated = [wire::Person {
            start_date: Some(wire::Date {
                year: 2020,
                month: 1,
                day: 6,
            }),
            ..person("1")
        }];
        assert!(!holds(&problem("1", Some(wire::Field::StartDate)), &dated));
        assert!(holds(&problem("1", Some(wire::Field::Gender)), &items));
        // The whole record, or one the page does not carry.
        assert!(holds(&problem("1", None), &items));
        assert!(holds(&problem("2", Some(wire::Field::ManagerId)), &items));
        let custom = wire::RecordProblem {
            field: Some(wire::FieldRef::Custom("e_x".into())),
            ..problem("1", None)
        };
        assert!(holds(&custom, &items));
    }

    fn page(items: Vec<wire::Person>, problems: Vec<wire::RecordProblem>) -> wire::PersonPage {
        wire::PersonPage {
            items,
            next: None,
            coverage: wire::Coverage::Full,
            watermark: None,
            problems,
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

    #[test]
    fn a_bad_source_record_is_held_and_the_others_go_on() {
        let read = page(
            vec![person("1"), bad_date("2"), person("3")],
            vec![problem("3", Some(wire::Field::ManagerId))],
        );
        let out = records(read, Side::Source, "hr", &|t| t.replace("?", "[redacted]"));
        let ids: Vec<&str> = out.people.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["1", "3"]);
        assert_eq!(out.held, ["2"]);
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
        let out = records(
            page(vec![bad_date("a"), person("b")], vec![]),
            Side::Target,
            "tool",
            &str::to_owned,
        );
        assert_eq!(out.people.len(), 2, "the account is not lost");
        assert_eq!(out.people[0].birth_date, None);
        assert_eq!(out.held, ["a"]);
        assert_eq!(out.problems[0].side, Side::Target);
    }
}
