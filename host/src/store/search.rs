//! A person's history across runs and flows, for the status page's search
//! ("what happened to Nina Müller?").
//!
//! Two steps, both bounded:
//!
//! 1. **Who is meant.** The query is matched against the journal (an
//!    action's source id, target id or produced id; its name, by substring;
//!    any text value of its step, exactly — that is how an email address is
//!    found, in a create's or change's values) and against what runs left
//!    out ([`super::left_out`]: ids, and name by substring). Every match
//!    yields the record's source and target ids; at most [`MAX_PEOPLE`]
//!    records are taken.
//! 2. **What happened to them.** Every journal entry and left-out row with
//!    one of those source or target ids, in any flow, newest run first —
//!    so a person found by the email of their create in one flow also shows
//!    the skip or conflict another flow reported for their id.
//!
//! Matching is case-insensitive for ASCII letters (SQLite's `lower`); ids
//! are matched exactly. Ids of different connections are not told apart: a
//! source id that two source systems both use finds both records.

use rusqlite::params;

use super::journal::{ENTRY_COLUMNS, JournalEntry, entry, raw};
use super::left_out::{LeftOut, left_out, raw_left_out};
use super::runs::RunId;
use super::{Context, Store, StoreError};

/// At most this many records are taken as "the person" a query means: a
/// query as broad as one letter stops there instead of reading everything.
pub const MAX_PEOPLE: usize = 50;

/// One thing that happened to a person in a run.
#[derive(Debug, Clone, PartialEq)]
pub struct PersonEvent {
    pub run: RunId,
    pub flow: String,
    /// When: the action's journal time, or the run's start for a record it
    /// left out (RFC 3339, UTC).
    pub at: String,
    pub what: PersonEventKind,
}

/// An action the run journaled, or a record it left out.
#[derive(Debug, Clone, PartialEq)]
pub enum PersonEventKind {
    Action(Box<JournalEntry>),
    LeftOut(LeftOut),
}

/// A search's answer: newest run first, at most the limit asked for.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PersonHistory {
    pub events: Vec<PersonEvent>,
    /// More events matched than the limit: the page says so.
    pub more: bool,
}

/// The ids a query resolved to (JSON arrays, for `json_each`).
struct Ids {
    sources: Vec<String>,
    targets: Vec<String>,
}

impl Store {
    /// The history of the people `query` names (by name, email, or source
    /// or target id), newest run first, at most `limit` events. An empty
    /// query finds nothing.
    pub fn search_people(&self, query: &str, limit: usize) -> Result<PersonHistory, StoreError> {
        let query = query.trim();
        if query.is_empty() {
            return Ok(PersonHistory::default());
        }
        let ctx = || format!("searching the history for `{query}`");
        let ids = matching_ids(&self.conn, query).context(ctx)?;
        if ids.sources.is_empty() && ids.targets.is_empty() {
            return Ok(PersonHistory::default());
        }
        let sources = serde_json::to_string(&ids.sources).context(ctx)?;
        let targets = serde_json::to_string(&ids.targets).context(ctx)?;
        let fetch = i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX);
        let mut events = actions_of(&self.conn, &sources, &targets, fetch)?;
        events.extend(left_out_of(&self.conn, &sources, &targets, fetch)?);
        // Newest run first; within a run, actions before what it left out.
        events.sort_by_key(|e| std::cmp::Reverse(e.run));
        let more = events.len() > limit;
        events.truncate(limit);
        Ok(PersonHistory { events, more })
    }
}

/// Step 1: the source and target ids of the records `query` matches.
fn matching_ids(conn: &rusqlite::Connection, query: &str) -> rusqlite::Result<Ids> {
    let lower = query.to_lowercase();
    let max = i64::try_from(MAX_PEOPLE).unwrap_or(i64::MAX);
    let mut stmt = conn.prepare_cached(
        "SELECT source_id, COALESCE(produced_target_id, target_id) FROM journal
          WHERE source_id = ?1 OR target_id = ?1 OR produced_target_id = ?1
             OR instr(lower(json_extract(step, '$.label')), ?2) > 0
             OR EXISTS (SELECT 1 FROM json_tree(journal.step) AS t
                         WHERE t.type = 'text' AND lower(t.atom) = ?2)
         UNION
         SELECT source_id, target_id FROM run_left_out
          WHERE source_id = ?1 OR target_id = ?1 OR instr(lower(label), ?2) > 0
         LIMIT ?3",
    )?;
    let rows = stmt.query_map(params![query, lower, max], |r| {
        Ok((
            r.get::<_, Option<String>>(0)?,
            r.get::<_, Option<String>>(1)?,
        ))
    })?;
    let mut ids = Ids {
        sources: Vec::new(),
        targets: Vec::new(),
    };
    for row in rows {
        let (source, target) = row?;
        for (id, into) in [(source, &mut ids.sources), (target, &mut ids.targets)] {
            if let Some(id) = id
                && !into.contains(&id)
            {
                into.push(id);
            }
        }
    }
    Ok(ids)
}

/// Step 2, journal: the actions about those ids, newest run first.
fn actions_of(
    conn: &rusqlite::Connection,
    sources: &str,
    targets: &str,
    limit: i64,
) -> Result<Vec<PersonEvent>, StoreError> {
    let ctx = || "searching the journal for a person's actions".to_string();
    let sql = format!(
        "SELECT {ENTRY_COLUMNS}
          WHERE journal.source_id IN (SELECT value FROM json_each(?1))
             OR journal.target_id IN (SELECT value FROM json_each(?2))
             OR journal.produced_target_id IN (SELECT value FROM json_each(?2))
          ORDER BY journal.run_id DESC, journal.seq LIMIT ?3"
    );
    let mut stmt = conn.prepare_cached(&sql).context(ctx)?;
    let rows = stmt
        .query_map(params![sources, targets, limit], raw)
        .context(ctx)?
        .collect::<Result<Vec<_>, _>>()
        .context(ctx)?;
    rows.into_iter()
        .map(|r| {
            let e = entry(r)?;
            Ok(PersonEvent {
                run: e.run,
                flow: e.flow.clone(),
                at: e.created_at.clone(),
                what: PersonEventKind::Action(Box::new(e)),
            })
        })
        .collect()
}

/// Step 2, left out: the skips and conflicts about those ids.
fn left_out_of(
    conn: &rusqlite::Connection,
    sources: &str,
    targets: &str,
    limit: i64,
) -> Result<Vec<PersonEvent>, StoreError> {
    let ctx = || "searching the runs' skips and conflicts for a person".to_string();
    let mut stmt = conn
        .prepare_cached(
            "SELECT l.kind, l.source_id, l.target_id, l.label, l.reason, l.explanation,
                    l.run_id, flows.name, runs.started_at
               FROM run_left_out AS l JOIN runs ON runs.id = l.run_id
               JOIN flows ON flows.id = runs.flow_id
              WHERE l.source_id IN (SELECT value FROM json_each(?1))
                 OR l.target_id IN (SELECT value FROM json_each(?2))
              ORDER BY l.run_id DESC, l.seq LIMIT ?3",
        )
        .context(ctx)?;
    let rows = stmt
        .query_map(params![sources, targets, limit], |r| {
            Ok((
                raw_left_out(r)?,
                RunId(r.get(6)?),
                r.get::<_, String>(7)?,
                r.get::<_, String>(8)?,
            ))
        })
        .context(ctx)?
        .collect::<Result<Vec<_>, _>>()
        .context(ctx)?;
    rows.into_iter()
        .map(|(raw, run, flow, at)| {
            Ok(PersonEvent {
                run,
                flow,
                at,
                what: PersonEventKind::LeftOut(left_out(raw)?),
            })
        })
        .collect()
}
