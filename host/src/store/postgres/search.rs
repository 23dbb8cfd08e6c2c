//! The person search, in PostgreSQL (twin of `sqlite/search.rs`): where
//! SQLite walks a step with `json_tree`, this walks it with
//! `jsonb_path_query(step::jsonb, 'strict $.**')` (every value at any
//! depth) and keeps the strings; the id lists are `text[]` parameters
//! matched with `= ANY`, where SQLite expands JSON arrays with `json_each`.
//! PostgreSQL's `lower` also folds non-ASCII letters, which SQLite's does
//! not; ids match exactly on both.

use postgres::GenericClient;

use super::journal::{ENTRY_COLUMNS, entry};
use super::left_out::raw_left_out;
use super::{PostgresStore, limit};
use crate::store::left_out::left_out;
use crate::store::search::{Ids, fetch_limit, newest_first};
use crate::store::{
    Context, MAX_PEOPLE, PersonEvent, PersonEventKind, PersonHistory, RunId, StoreError,
};

impl PostgresStore {
    /// See [`crate::store::Store::search_people`].
    pub fn search_people(&self, query: &str, max: usize) -> Result<PersonHistory, StoreError> {
        let query = query.trim();
        if query.is_empty() {
            return Ok(PersonHistory::default());
        }
        let ctx = || format!("searching the history for `{query}`");
        self.read(|c| {
            let ids = matching_ids(c, query).context(ctx)?;
            if ids.is_empty() {
                return Ok(PersonHistory::default());
            }
            let fetch = fetch_limit(max);
            let mut events = actions_of(c, &ids, fetch)?;
            events.extend(left_out_of(c, &ids, fetch)?);
            Ok(newest_first(events, max))
        })
    }
}

/// Step 1: the source and target ids of the records `query` matches.
fn matching_ids(c: &mut impl GenericClient, query: &str) -> Result<Ids, postgres::Error> {
    let lower = query.to_lowercase();
    let rows = c.query(
        "SELECT source_id, COALESCE(produced_target_id, target_id) FROM journal
          WHERE source_id = $1 OR target_id = $1 OR produced_target_id = $1
             OR strpos(lower(step::jsonb ->> 'label'), $2) > 0
             OR EXISTS (SELECT 1 FROM jsonb_path_query(journal.step::jsonb, 'strict $.**') AS t(v)
                         WHERE jsonb_typeof(t.v) = 'string' AND lower(t.v #>> '{}') = $2)
         UNION
         SELECT source_id, target_id FROM run_left_out
          WHERE source_id = $1 OR target_id = $1 OR strpos(lower(label), $2) > 0
         LIMIT $3",
        &[&query, &lower, &limit(MAX_PEOPLE)],
    )?;
    let mut ids = Ids::default();
    for r in &rows {
        ids.add(r.try_get(0)?, r.try_get(1)?);
    }
    Ok(ids)
}

/// Step 2a: the journal entries of those ids, newest run first.
fn actions_of(
    c: &mut impl GenericClient,
    ids: &Ids,
    max: i64,
) -> Result<Vec<PersonEvent>, StoreError> {
    let ctx = || "searching the journal for a person's actions".to_string();
    let sql = format!(
        "SELECT {ENTRY_COLUMNS}
          WHERE journal.source_id = ANY($1) OR journal.target_id = ANY($2)
             OR journal.produced_target_id = ANY($2)
          ORDER BY journal.run_id DESC, journal.seq LIMIT $3"
    );
    let rows = c
        .query(&sql, &[&ids.sources, &ids.targets, &max])
        .context(ctx)?;
    rows.iter()
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

/// Step 2b: the skips and conflicts of those ids, newest run first.
fn left_out_of(
    c: &mut impl GenericClient,
    ids: &Ids,
    max: i64,
) -> Result<Vec<PersonEvent>, StoreError> {
    let ctx = || "searching the runs' skips and conflicts for a person".to_string();
    let rows = c
        .query(
            "SELECT l.kind, l.source_id, l.target_id, l.label, l.reason, l.explanation,
                    l.run_id, flows.name, runs.started_at
               FROM run_left_out AS l JOIN runs ON runs.id = l.run_id
               JOIN flows ON flows.id = runs.flow_id
              WHERE l.source_id = ANY($1) OR l.target_id = ANY($2)
              ORDER BY l.run_id DESC, l.seq LIMIT $3",
            &[&ids.sources, &ids.targets, &max],
        )
        .context(ctx)?;
    rows.iter()
        .map(|r| {
            let raw = raw_left_out(r).context(ctx)?;
            Ok(PersonEvent {
                run: RunId(r.try_get(6).context(ctx)?),
                flow: r.try_get(7).context(ctx)?,
                at: r.try_get(8).context(ctx)?,
                what: PersonEventKind::LeftOut(left_out(raw)?),
            })
        })
        .collect()
}
