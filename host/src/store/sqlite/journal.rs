//! The action journal in SQLite: an intent before each call to the target,
//! an outcome after. See the module doc of [`crate::store`] for the crash
//! semantics.

use muster_core::ActionKind;
use muster_core::Step;
use rusqlite::{Connection, OptionalExtension, params};

use super::SqliteStore;
use super::links::insert_link;
use super::runs::run_state;
use super::state::insert_audit;
use crate::store::{
    Completion, Context, JournalEntry, JournalId, JournalState, Outcome, Resolution, RunId,
    RunStatus, StoreError, parse_enum, time,
};

pub(crate) const ENTRY_COLUMNS: &str =
    "journal.id, journal.run_id, flows.name, journal.seq, journal.kind,
    journal.source_id, journal.target_id, journal.step, journal.state, journal.error,
    journal.produced_target_id, journal.created_at, journal.resolved_at
    FROM journal JOIN runs ON runs.id = journal.run_id JOIN flows ON flows.id = runs.flow_id";

pub(crate) type RawEntry = (
    i64,
    i64,
    String,
    u32,
    String,
    Option<String>,
    Option<String>,
    String,
    String,
    Option<String>,
    Option<String>,
    String,
    Option<String>,
);

pub(crate) fn raw(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawEntry> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
        r.get(9)?,
        r.get(10)?,
        r.get(11)?,
        r.get(12)?,
    ))
}

pub(crate) fn entry(raw: RawEntry) -> Result<JournalEntry, StoreError> {
    let (id, run, flow, seq, kind, source_id, target_id, step, state, error, produced, c, r) = raw;
    let step = serde_json::from_str(&step)
        .context(|| format!("flow `{flow}`: step of journal entry {id}"))?;
    Ok(JournalEntry {
        id: JournalId(id),
        run: RunId(run),
        seq,
        kind: parse_enum("journal.kind", kind, ActionKind::from_name)?,
        source_id,
        target_id,
        step,
        state: parse_enum("journal.state", state, JournalState::parse)?,
        error,
        produced_target_id: produced,
        created_at: c,
        resolved_at: r,
        flow,
    })
}

fn query_entries(
    conn: &Connection,
    filter: &str,
    param: i64,
    what: impl Fn() -> String,
) -> Result<Vec<JournalEntry>, StoreError> {
    let sql = format!("SELECT {ENTRY_COLUMNS} WHERE {filter}");
    let mut stmt = conn.prepare_cached(&sql).context(&what)?;
    let rows = stmt
        .query_map([param], raw)
        .context(&what)?
        .collect::<Result<Vec<_>, _>>()
        .context(&what)?;
    rows.into_iter().map(entry).collect()
}

/// A run's journal in step order.
pub(crate) fn entries_of_run(
    conn: &Connection,
    run: RunId,
) -> Result<Vec<JournalEntry>, StoreError> {
    query_entries(
        conn,
        "journal.run_id = ?1 ORDER BY journal.seq",
        run.0,
        || format!("run {run}: reading its journal"),
    )
}

impl SqliteStore {
    /// Outcomes of the previous calls and intents of the next ones, in one
    /// transaction (see [`crate::store::Store::journal_batch`]).
    pub fn journal_batch(
        &mut self,
        previous: &[Completion<'_>],
        run: RunId,
        next: &[(u32, &Step)],
    ) -> Result<Vec<JournalId>, StoreError> {
        let tx = self.write_tx(|| format!("run {run}: journaling {} steps", next.len()))?;
        for done in previous {
            complete(&tx, done)?;
        }
        let (flow, status) = run_state(&tx, run)?;
        if status != RunStatus::Running && !next.is_empty() {
            return Err(StoreError::RunFinished { run, flow, status });
        }
        let mut ids = Vec::with_capacity(next.len());
        for (seq, step) in next {
            let seq = *seq;
            let payload = serde_json::to_string(step)
                .context(|| format!("run {run}: serialising step {seq}"))?;
            tx.prepare_cached(
                "INSERT INTO journal (run_id, seq, kind, source_id, target_id, step, state, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'intent', ?7)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    run.0,
                    seq,
                    step.kind.name(),
                    step.source_id,
                    step.target_id,
                    payload,
                    time::now()
                ])
            })
            .context(|| format!("flow `{flow}`: journaling step {seq} of run {run}"))?;
            ids.push(JournalId(tx.last_insert_rowid()));
        }
        tx.commit()
            .context(|| format!("flow `{flow}`: committing the journal of run {run}"))?;
        Ok(ids)
    }

    /// Outcomes, links and audit entries in one transaction.
    pub fn journal_complete(&mut self, done: &[Completion<'_>]) -> Result<(), StoreError> {
        let tx = self.write_tx(|| format!("recording {} journal outcomes", done.len()))?;
        for d in done {
            complete(&tx, d)?;
        }
        tx.commit()
            .context(|| format!("committing {} journal outcomes", done.len()))
    }

    /// Intents of `flow` with no outcome: left by a run that died between
    /// [`crate::store::Store::journal_intent`] and its outcome. The engine resolves them
    /// before planning. Oldest first.
    pub fn unresolved_journal(&self, flow: &str) -> Result<Vec<JournalEntry>, StoreError> {
        let flow_id = SqliteStore::flow_id(&self.conn, flow)?;
        query_entries(
            &self.conn,
            "journal.state = 'intent' AND runs.flow_id = ?1 ORDER BY journal.id",
            flow_id,
            || format!("flow `{flow}`: reading unresolved journal entries"),
        )
    }

    /// Records how recovery resolved an intent.
    pub fn resolve_journal(
        &mut self,
        id: JournalId,
        outcome: &Resolution,
    ) -> Result<(), StoreError> {
        let tx = self.write_tx(|| format!("journal entry {id}: resolving it"))?;
        match outcome {
            Resolution::Done { target_id } => {
                settle(&tx, id, JournalState::Done, None, target_id.as_deref())?
            }
            Resolution::Failed { error } => {
                settle(&tx, id, JournalState::Failed, Some(error), None)?
            }
            Resolution::Unknown { note } => {
                settle(&tx, id, JournalState::Unknown, Some(note), None)?
            }
        };
        tx.commit()
            .context(|| format!("journal entry {id}: committing its resolution"))
    }

    /// One journal entry.
    pub fn journal_entry(&self, id: JournalId) -> Result<JournalEntry, StoreError> {
        query_entries(&self.conn, "journal.id = ?1", id.0, || {
            format!("journal entry {id}: reading it")
        })?
        .pop()
        .ok_or(StoreError::UnknownJournal(id))
    }
}

fn complete(tx: &Connection, done: &Completion<'_>) -> Result<(), StoreError> {
    match done.outcome {
        Outcome::Done { target_id } => {
            settle(tx, done.id, JournalState::Done, None, target_id)?;
        }
        Outcome::Linked {
            kind,
            source_id,
            target_id,
        } => {
            let flow = settle(tx, done.id, JournalState::Done, None, Some(target_id))?;
            insert_link(tx, &flow, kind, source_id, target_id)?;
        }
        Outcome::Failed { error } => {
            settle(tx, done.id, JournalState::Failed, Some(error), None)?;
        }
    }
    if let Some(audit) = &done.audit {
        insert_audit(tx, audit)?;
    }
    Ok(())
}

/// Moves an intent to its final state; returns the flow's name. Refuses an
/// entry that is not an intent: an outcome is written once.
fn settle(
    conn: &Connection,
    id: JournalId,
    state: JournalState,
    error: Option<&str>,
    produced: Option<&str>,
) -> Result<String, StoreError> {
    let row: Option<(i64, u32, String, String, String)> = conn
        .prepare_cached(
            "SELECT journal.run_id, journal.seq, journal.state, flows.name, journal.kind
             FROM journal JOIN runs ON runs.id = journal.run_id
             JOIN flows ON flows.id = runs.flow_id WHERE journal.id = ?1",
        )
        .and_then(|mut s| {
            s.query_row([id.0], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
        })
        .optional()
        .context(|| format!("journal entry {id}: looking it up"))?;
    let (run, seq, current, flow, kind) = row.ok_or(StoreError::UnknownJournal(id))?;
    let current = parse_enum("journal.state", current, JournalState::parse)?;
    if current != JournalState::Intent {
        return Err(StoreError::JournalResolved {
            id,
            run: RunId(run),
            seq,
            state: current,
        });
    }
    conn.prepare_cached(
        "UPDATE journal SET state = ?2, error = ?3, produced_target_id = ?4, resolved_at = ?5
         WHERE id = ?1",
    )
    .and_then(|mut s| s.execute(params![id.0, state.as_str(), error, produced, time::now()]))
    .context(|| format!("flow `{flow}`: recording the outcome of journal entry {id}"))?;
    // The rows an applied update wrote become the flow's, in the same
    // transaction as the outcome.
    if state == JournalState::Done && kind == ActionKind::Update.name() {
        super::written_rows::record_applied_rows(conn, id)?;
    }
    Ok(flow)
}
