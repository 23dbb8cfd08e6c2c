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
mod reading;

use muster_core::{Coverage, Group, Person};

use super::contract::latest::{self as wire, field_ref_to_core};
use super::{PluginError, PluginInstance};

pub use convert::{group_in, person_to_target, row_changes_out};
pub use reading::Reading;

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
    /// The positions, in read order, of the records converted page by page
    /// ([`Reading::page`]) that are not in `people`: source records held
    /// (ascending; always empty on the target side).
    pub dropped: Vec<usize>,
}

/// One page of people or accounts as the plugin handed it over, its
/// problems already the run's (redacted): what [`Reading::page`] converts.
#[derive(Debug, Clone, Default)]
pub struct RawPage {
    pub items: Vec<wire::Person>,
    pub problems: Vec<(wire::RecordProblem, Problem)>,
}

/// What a read covered, known once its last page is in.
#[derive(Debug, Clone)]
pub struct ReadEnd {
    pub coverage: wire::Coverage,
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
        let mut reading = Reading::new(Side::Source, self.name());
        let end = self.read_person_pages(Side::Source, since, &mut |page| {
            reading.page(page);
        })?;
        Ok(reading.finish(end))
    }

    fn accounts(&mut self) -> Result<Records, PluginError> {
        let mut reading = Reading::new(Side::Target, self.name());
        let end = self.read_person_pages(Side::Target, None, &mut |page| {
            reading.page(page);
        })?;
        Ok(reading.finish(end))
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
        let mut reading = Reading::new(side, self.name());
        reading.page(RawPage {
            items: record.into_iter().collect(),
            problems: Vec::new(),
        });
        Ok(reading.finish(ReadEnd {
            coverage: wire::Coverage::Full,
            watermark: None,
        }))
    }
}

impl PluginInstance {
    /// Reads every page of `side`'s people (source people from `since`,
    /// target accounts), handing each to `sink` as it arrives, its problems
    /// made the run's; the caller converts it ([`Reading::page`]), on this
    /// thread or another, while the next page is read. A failed page fails
    /// the read.
    pub fn read_person_pages(
        &mut self,
        side: Side,
        since: Option<&str>,
        sink: &mut dyn FnMut(RawPage),
    ) -> Result<ReadEnd, PluginError> {
        let mut raw = |i: &PluginInstance, page: wire::PersonPage| {
            let problems = page
                .problems
                .into_iter()
                .map(|p| {
                    let problem = i.page_problem(&p, side);
                    (p, problem)
                })
                .collect();
            sink(RawPage {
                items: page.items,
                problems,
            });
        };
        let read = match side {
            Side::Source => self.read_people_pages(since, &mut raw)?,
            Side::Target => self.read_account_pages(&mut raw)?,
        };
        Ok(ReadEnd {
            coverage: read.coverage,
            watermark: read.watermark,
        })
    }

    /// A page problem as the run's [`Problem`], its text redacted like the
    /// plugin's log lines (a vendor body it quotes may echo a credential).
    fn page_problem(&self, p: &wire::RecordProblem, side: Side) -> Problem {
        page_problem(p, side, self.name(), &|t| self.store.data().http.redact(t))
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
