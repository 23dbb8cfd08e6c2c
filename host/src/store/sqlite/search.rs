//! The person search, in SQLite (see `store/search.rs`): `json_tree` finds
//! a value anywhere in a journal step, `json_each` expands the id lists.

use rusqlite::params;

use super::SqliteStore;
use super::journal::{ENTRY_COLUMNS, entry, raw};
use super::left_out::raw_left_out;
use crate::store::left_out::left_out;
use crate::store::search::{Ids, fetch_limit, newest_first};
use crate::store::{
    Context, MAX_PEOPLE, PersonEvent, PersonEventKind, PersonHistory, RunId, StoreError,
};

impl SqliteStore {
    /// See [`crate::store::Store::search_people`].
    pub fn search_people(&self, query: &str, limit: usize) -> Result<PersonHistory, StoreError> {
        let query = query.trim();
        if query.is_empty() {
            return Ok(PersonHistory::default());
        }
        let ctx = || format!("searching the history for `{query}`");
        let ids = matching_ids(&self.conn, query).context(ctx)?;
        if ids.is_empty() {
            return Ok(PersonHistory::default());
        }
        let sources = serde_json::to_string(&ids.sources).context(ctx)?;
        let targets = serde_json::to_string(&ids.targets).context(ctx)?;
        let fetch = fetch_limit(limit);
        let mut events = actions_of(&self.conn, &sources, &targets, fetch)?;
        events.extend(left_out_of(&self.conn, &sources, &targets, fetch)?);
        Ok(newest_first(events, limit))
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
    let mut ids = Ids::default();
    for row in rows {
        let (source, target) = row?;
        ids.add(source, target);
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
