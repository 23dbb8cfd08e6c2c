//! Both sides of a flow mapped and prepared as their reads deliver pages.
//!
//! The plan's per-record hashes ([`muster_core::Prepared`]) of a million
//! records take about as long as the plan itself. Computed after the reads,
//! they are time the run waits with everything in hand; computed page by
//! page while the plugin reads the next page ([`snapshot::read_paged`]),
//! they overlap the network, and once the last page is in only the id
//! indexes are left to build ([`muster_core::Preparer::finish`]).
//!
//! The source side is hashed as the plan sees it: *mapped*. Each page is
//! mapped as it arrives; what the host decides only later — a source record
//! a problem on a later page holds, one whose account holds a bad value
//! ([`hold`]) — is dropped from the people and from their hashes
//! alike, by position, so the plan gets exactly what mapping and preparing
//! after the reads gave (the core's tests check the preparer against
//! [`muster_core::Prepared::new`]).

use muster_core::{Mapping, MappingError, Person, Policy, Preparer};

use super::snapshot::{self, Snapshot};
use super::{Connected, EngineError, FlowSpec, Observer};
use crate::runtime::connector::{Problem, Side};

/// Both sides read, the source mapped, and both prepared up to the id
/// indexes.
pub(super) struct Sides {
    pub source: Snapshot,
    pub target: Snapshot,
    /// The source people mapped into the target's vocabulary, in read order:
    /// what the plan gets.
    pub desired: Vec<Person>,
    /// Source records the mapping refused (their problems are in
    /// `problems`).
    pub unmapped: Vec<String>,
    /// Every problem of both reads, then the mapping's.
    pub problems: Vec<Problem>,
    /// The hashes of `desired`, one per person, in order.
    pub source_hashes: Preparer,
    /// The hashes of the target's people.
    pub target_hashes: Preparer,
}

impl Sides {
    /// Sides read whole beforehand (a single-record run's), mapped and
    /// prepared now.
    pub fn of(
        flow: &FlowSpec,
        policy: &Policy,
        plugin: &str,
        source: Snapshot,
        target: Snapshot,
    ) -> Sides {
        let mut mapped = Mapped::new(&flow.mapping, policy);
        mapped.page(&source.people);
        let mut target_hashes = Preparer::with_capacity(policy, target.people.len());
        target_hashes.push(&target.people);
        Sides::assemble(mapped, &[], plugin, source, target, target_hashes)
    }

    /// Reads both sides page by page, mapping and preparing each page as it
    /// arrives.
    pub fn read(
        flow: &FlowSpec,
        policy: &Policy,
        plugins: Connected<'_>,
        since: Option<&str>,
        observer: &dyn Observer,
    ) -> Result<Sides, EngineError> {
        let groups = policy.sync_groups;
        let plugin = plugins.source.name().to_owned();
        tracing::debug!(flow = %flow.name, since = ?since, "reading the source");
        observer.stage("reading the source");
        let mut mapped = Mapped::new(&flow.mapping, policy);
        let (source, dropped) =
            snapshot::read_paged(plugins.source, Side::Source, groups, since, &mut |page| {
                mapped.page(page)
            })
            .map_err(|e| read_error("source", &flow.source, e))?;
        tracing::info!(
            flow = %flow.name,
            people = source.people.len(),
            groups = source.groups.len(),
            "read the source"
        );
        observer.stage("reading the target");
        let mut target_hashes = Preparer::new(policy);
        let (target, _) =
            snapshot::read_paged(plugins.target, Side::Target, groups, None, &mut |page| {
                target_hashes.push(page)
            })
            .map_err(|e| read_error("target", &flow.target, e))?;
        tracing::info!(
            flow = %flow.name,
            accounts = target.people.len(),
            groups = target.groups.len(),
            "read the target"
        );
        Ok(Sides::assemble(
            mapped,
            &dropped,
            &plugin,
            source,
            target,
            target_hashes,
        ))
    }

    /// Leaves out of the read what it dropped (by position), and reports
    /// what the mapping refused among the rest.
    fn assemble(
        mapped: Mapped<'_>,
        dropped: &[usize],
        plugin: &str,
        source: Snapshot,
        target: Snapshot,
        target_hashes: Preparer,
    ) -> Sides {
        let mut problems = source.problems.clone();
        problems.extend(target.problems.iter().cloned());
        let mut sides = Sides {
            source,
            target,
            desired: mapped.desired,
            unmapped: Vec::new(),
            problems,
            source_hashes: mapped.hashes,
            target_hashes,
        };
        let mut dropped = dropped.iter().peekable();
        let mut refused = mapped.refused.into_iter().peekable();
        let mut keep = Vec::with_capacity(sides.desired.len());
        for at in 0..mapped.read {
            let was_dropped = dropped.next_if(|d| **d == at).is_some();
            match refused.next_if(|(r, _, _)| *r == at) {
                Some((_, id, e)) if !was_dropped => {
                    sides.unmapped.push(id);
                    sides.problems.push(mapping_problem(e, plugin));
                }
                Some(_) => {}
                None => keep.push(!was_dropped),
            }
        }
        sides.retain(&keep);
        sides
    }

    /// Keeps `desired[i]` and its hashes when `keep[i]`.
    fn retain(&mut self, keep: &[bool]) {
        retain(&mut self.desired, &mut self.source_hashes, keep);
    }
}

/// Leaves out the source people whose account holds a bad value (`more`, by
/// id), with their hashes.
pub(super) fn hold(desired: &mut Vec<Person>, hashes: &mut Preparer, more: &[String]) {
    if more.is_empty() {
        return;
    }
    let keep: Vec<bool> = desired.iter().map(|p| !more.contains(&p.id)).collect();
    retain(desired, hashes, &keep);
}

/// Keeps `desired[i]` and its hashes when `keep[i]`.
fn retain(desired: &mut Vec<Person>, hashes: &mut Preparer, keep: &[bool]) {
    let mut i = 0;
    desired.retain(|_| {
        i += 1;
        keep[i - 1]
    });
    // Invariant: one hash per mapped person, kept alike.
    if let Err(e) = hashes.retain(keep) {
        unreachable!("source hashes out of step with the people: {e}");
    }
}

/// The source mapped page by page, and hashed as mapped.
struct Mapped<'m> {
    mapping: &'m Mapping,
    /// How many records were read (the position of the next one).
    read: usize,
    desired: Vec<Person>,
    /// Records the mapping refused (read position, id, why), ascending.
    refused: Vec<(usize, String, MappingError)>,
    hashes: Preparer,
}

impl<'m> Mapped<'m> {
    fn new(mapping: &'m Mapping, policy: &Policy) -> Mapped<'m> {
        Mapped {
            mapping,
            read: 0,
            desired: Vec::new(),
            refused: Vec::new(),
            hashes: Preparer::new(policy),
        }
    }

    /// Maps and hashes the next page of source records.
    fn page(&mut self, page: &[Person]) {
        let first = self.desired.len();
        for p in page {
            let mapped = if self.mapping.rules.is_empty() {
                Ok(p.clone())
            } else {
                self.mapping.apply(p)
            };
            match mapped {
                Ok(m) => self.desired.push(m),
                Err(e) => self.refused.push((self.read, p.id.clone(), e)),
            }
            self.read += 1;
        }
        self.hashes.push(&self.desired[first..]);
    }
}

/// A record the mapping refused, as the run's problem: left out of this
/// run, its account left as it is.
fn mapping_problem(e: MappingError, plugin: &str) -> Problem {
    Problem {
        side: Side::Source,
        plugin: plugin.to_owned(),
        message: format!(
            "{}; the record is left out of this run and its account is left as it is",
            e.problem
        ),
        field: e.field.to_string(),
        record: e.record,
    }
}

fn read_error(
    side: &'static str,
    connection: &str,
    source: crate::runtime::PluginError,
) -> EngineError {
    EngineError::Read {
        side,
        connection: connection.to_owned(),
        source,
    }
}
