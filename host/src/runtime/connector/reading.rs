//! A read converted page by page ([`Reading`]), with the same result as
//! converting all its pages as one.
//!
//! Each record converts on its own, so a page is converted as soon as it
//! arrives and its wire records are freed. What depends on the whole read is
//! decided at the end ([`Reading::finish`]), in the order the all-at-once
//! conversion decided it:
//!
//! 1. the plugin's problems, from every page, in order — whether one holds
//!    its record depends on the *first* record of the read with that id,
//!    which may come on a later page, so each record keeps the little
//!    [`holds`] asks of it (which typed values the vendor sent: [`Sent`]);
//! 2. then the records the host could not convert, in read order;
//! 3. on the source side, a record is left out of the people when a plugin
//!    problem holds its id, or when its id was held by a conversion problem
//!    of this record or an earlier one (so of two records with one id, the
//!    first stays when only the second is bad, as before).
//!
//! The records are handed out as they are converted
//! ([`Reading::page`]), all of them: [`Records::dropped`] then says, by
//! position, which of those the read left out.

use std::collections::{BTreeMap, BTreeSet};

use muster_core::{FieldValue, Person};

use super::{Problem, RawPage, ReadEnd, Records, Side, convert};
use crate::runtime::contract::latest::{self as wire, coverage_to_core};

/// A read being converted page by page. See the module doc.
#[derive(Debug)]
pub struct Reading {
    side: Side,
    plugin: String,
    /// Every record converted so far, in read order (source records held
    /// later included: [`Self::finish`] leaves them out).
    people: Vec<Person>,
    /// What the vendor sent of each record, for [`holds`].
    sent: Vec<Sent>,
    /// The custom field codes the vendor sent, for the (rare) records
    /// whose converted custom fields lost some; the others' codes are their
    /// converted fields' keys. By position, ascending.
    sent_codes: Vec<(usize, Vec<String>)>,
    /// The plugin's problems: as reported, and as the run's [`Problem`].
    page_problems: Vec<(wire::RecordProblem, Problem)>,
    conversion_problems: Vec<Problem>,
    /// Ids held by a conversion problem, in read order.
    conversion_held: Held,
    /// Source records whose id a conversion problem of theirs or of an
    /// earlier record holds, by position.
    conversion_dropped: Vec<usize>,
}

/// Which typed values the vendor sent for one record (a bit each).
#[derive(Debug, Clone, Copy)]
struct Sent(u8);

impl Sent {
    const BIRTH: u8 = 1;
    const START: u8 = 2;
    const END: u8 = 4;
    const GENDER: u8 = 8;

    fn of(p: &wire::Person) -> Sent {
        let bit = |sent: bool, bit: u8| if sent { bit } else { 0 };
        Sent(
            bit(p.birth_date.is_some(), Self::BIRTH)
                | bit(p.start_date.is_some(), Self::START)
                | bit(p.end_date.is_some(), Self::END)
                | bit(p.gender.is_some(), Self::GENDER),
        )
    }

    fn has(self, bit: u8) -> bool {
        self.0 & bit != 0
    }
}

impl Reading {
    /// A read of `side` through `plugin` (named in problems).
    pub fn new(side: Side, plugin: &str) -> Reading {
        Reading {
            side,
            plugin: plugin.to_owned(),
            people: Vec::new(),
            sent: Vec::new(),
            sent_codes: Vec::new(),
            page_problems: Vec::new(),
            conversion_problems: Vec::new(),
            conversion_held: Held::default(),
            conversion_dropped: Vec::new(),
        }
    }

    /// Converts the next page: its records follow those of the pages before.
    /// Returns the records just converted.
    pub fn page(&mut self, page: RawPage) -> &[Person] {
        let RawPage { items, problems } = page;
        self.page_problems.extend(problems);
        let first = self.people.len();
        self.people.reserve(items.len());
        self.sent.reserve(items.len());
        for item in items {
            let at = self.people.len();
            let (person, problems) = convert::person_in(&item, self.side, &self.plugin);
            if !problems.is_empty() {
                self.conversion_held.add(&item.id);
                self.conversion_problems.extend(problems);
            }
            if self.side == Side::Source && self.conversion_held.contains(&item.id) {
                self.conversion_dropped.push(at);
            }
            self.sent.push(Sent::of(&item));
            if !same_codes(&item.custom_fields, &person.custom) {
                let codes = item.custom_fields.into_iter().map(|(c, _)| c).collect();
                self.sent_codes.push((at, codes));
            }
            self.people.push(person);
        }
        &self.people[first..]
    }

    /// The read is complete (`end` says what it covered): decides what is
    /// held and returns the records (see the module doc).
    pub fn finish(self, end: ReadEnd) -> Records {
        let mut held = Held::default();
        let mut problems = Vec::with_capacity(self.page_problems.len());
        for (wire, problem) in &self.page_problems {
            if self.holds(wire) {
                held.add(&wire.record_id);
            }
            problems.push(problem.clone());
        }
        let problem_held: BTreeSet<&str> = held.order.iter().map(String::as_str).collect();
        let mut dropped = Vec::new();
        if self.side == Side::Source {
            let mut conversion = self.conversion_dropped.iter().peekable();
            for (i, p) in self.people.iter().enumerate() {
                let by_conversion = conversion.next_if(|at| **at == i).is_some();
                if by_conversion || problem_held.contains(p.id.as_str()) {
                    dropped.push(i);
                }
            }
        }
        drop(problem_held);
        for id in &self.conversion_held.order {
            held.add(id);
        }
        problems.extend(self.conversion_problems);
        let mut people = self.people;
        if !dropped.is_empty() {
            let mut i = 0;
            let mut next = dropped.iter().peekable();
            people.retain(|_| {
                i += 1;
                next.next_if(|at| **at == i - 1).is_none()
            });
        }
        Records {
            people,
            held: held.order,
            problems,
            coverage: coverage_to_core(end.coverage),
            watermark: end.watermark,
            dropped,
        }
    }

    /// Whether the plugin's `problem` holds its record, judged on the first
    /// record of the read with that id ([`holds`]).
    fn holds(&self, problem: &wire::RecordProblem) -> bool {
        let found = self.people.iter().position(|p| p.id == problem.record_id);
        holds(
            problem,
            found.map(|i| {
                let listed = self
                    .sent_codes
                    .binary_search_by_key(&i, |(at, _)| *at)
                    .ok()
                    .map(|k| self.sent_codes[k].1.as_slice());
                let codes = match listed {
                    Some(codes) => Codes::Listed(codes),
                    None => Codes::Kept(&self.people[i].custom),
                };
                (self.sent[i], codes)
            }),
        )
    }
}

/// Whether the converted custom fields have exactly the codes sent.
fn same_codes(sent: &[wire::CustomField], kept: &BTreeMap<String, FieldValue>) -> bool {
    sent.len() == kept.len() && sent.iter().all(|(c, _)| kept.contains_key(c))
}

/// The custom field codes the vendor sent for a record.
enum Codes<'r> {
    /// Those of its converted fields (conversion lost none).
    Kept(&'r BTreeMap<String, FieldValue>),
    /// As sent (conversion lost some).
    Listed(&'r [String]),
}

impl Codes<'_> {
    fn contains(&self, code: &str) -> bool {
        match self {
            Codes::Kept(kept) => kept.contains_key(code),
            Codes::Listed(codes) => codes.iter().any(|c| c == code),
        }
    }
}

/// Ids in the order first held.
#[derive(Debug, Default)]
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

/// Whether a plugin's problem holds its record (`record`: what the vendor
/// sent of the read's first record with that id, if any). A problem about
/// the whole record, or about a record the read does not carry, does. So
/// does one about a *typed* value the record lacks — a date, the gender, a
/// custom field: the plugin could not read what the vendor has, and left it
/// out (see `plugins/README.md`), so planning from the record would clear
/// it. A text field cannot be unreadable: a problem about one (no work
/// email, a manager outside the read) remarks on the vendor's data, which
/// the record carries as it is, and is reported only — as is one about a
/// value the record still carries.
fn holds(problem: &wire::RecordProblem, record: Option<(Sent, Codes<'_>)>) -> bool {
    let Some(field) = &problem.field else {
        return true;
    };
    let Some((sent, codes)) = record else {
        return true;
    };
    match field {
        wire::FieldRef::Custom(code) => !codes.contains(code),
        wire::FieldRef::Canonical(f) => match f {
            wire::Field::BirthDate => !sent.has(Sent::BIRTH),
            wire::Field::StartDate => !sent.has(Sent::START),
            wire::Field::EndDate => !sent.has(Sent::END),
            wire::Field::Gender => !sent.has(Sent::GENDER),
            _ => false,
        },
    }
}

#[cfg(test)]
mod tests;
