//! The action journal in PostgreSQL (twin of `sqlite/journal.rs`).

use muster_core::ActionKind;
use postgres::GenericClient;
use postgres::types::{ToSql, Type};

use super::links::insert_link;
use super::runs::run_state;
use super::state::insert_audit;
use super::{PostgresStore, to_u32};
use crate::store::{
    Completion, Context, JournalEntry, JournalId, JournalState, Outcome, Resolution, RunId,
    RunStatus, StoreError, parse_enum, time,
};

pub(crate) const ENTRY_COLUMNS: &str =
    "journal.id, journal.run_id, flows.name, journal.seq, journal.kind,
    journal.source_id, journal.target_id, journal.step, journal.state, journal.error,
    journal.produced_target_id, journal.created_at, journal.resolved_at
    FROM journal JOIN runs ON runs.id = journal.run_id JOIN flows ON flows.id = runs.flow_id";

pub(crate) fn entry(r: &postgres::Row) -> Result<JournalEntry, StoreError> {
    let get = || -> Result<_, postgres::Error> {
        Ok((
            r.try_get::<_, i64>(0)?,
            r.try_get::<_, i64>(1)?,
            r.try_get::<_, String>(2)?,
            r.try_get::<_, i64>(3)?,
            r.try_get::<_, String>(4)?,
            r.try_get::<_, String>(7)?,
            r.try_get::<_, String>(8)?,
        ))
    };
    let (id, run, flow, seq, kind, step, state) =
        get().context(|| "reading a journal entry".into())?;
    let rest = || -> Result<_, postgres::Error> {
        Ok((
            r.try_get(5)?,
            r.try_get(6)?,
            r.try_get(9)?,
            r.try_get(10)?,
            r.try_get(11)?,
            r.try_get(12)?,
        ))
    };
    let (source_id, target_id, error, produced, created_at, resolved_at) =
        rest().context(|| format!("flow `{flow}`: reading journal entry {id}"))?;
    let step = serde_json::from_str(&step)
        .context(|| format!("flow `{flow}`: step of journal entry {id}"))?;
    Ok(JournalEntry {
        id: JournalId(id),
        run: RunId(run),
        seq: to_u32("journal.seq", seq)?,
        kind: parse_enum("journal.kind", kind, ActionKind::from_name)?,
        source_id,
        target_id,
        step,
        state: parse_enum("journal.state", state, JournalState::parse)?,
        error,
        produced_target_id: produced,
        created_at,
        resolved_at,
        flow,
    })
}

fn query_entries(
    c: &mut impl GenericClient,
    filter: &str,
    param: i64,
    what: impl Fn() -> String,
) -> Result<Vec<JournalEntry>, StoreError> {
    let sql = format!("SELECT {ENTRY_COLUMNS} WHERE {filter}");
    let params: [&(dyn ToSql + Sync); 1] = [&param];
    let rows = c.query(&sql, &params).context(&what)?;
    rows.iter().map(entry).collect()
}

/// A run's journal in step order.
pub(crate) fn entries_of_run(
    c: &mut impl GenericClient,
    run: RunId,
) -> Result<Vec<JournalEntry>, StoreError> {
    query_entries(c, "journal.run_id = $1 ORDER BY journal.seq", run.0, || {
        format!("run {run}: reading its journal")
    })
}

impl PostgresStore {
    /// Outcomes of the previous calls and intents of the next ones, in one
    /// transaction (see [`crate::store::Store::journal_batch`]).
    pub fn journal_batch(
        &mut self,
        previous: &[Completion<'_>],
        run: RunId,
        next: &[(u32, &muster_core::Step)],
    ) -> Result<Vec<JournalId>, StoreError> {
        self.write(
            || format!("run {run}: journaling {} steps", next.len()),
            |tx| {
                for done in previous {
                    complete(tx, done)?;
                }
                let (flow, status) = run_state(tx, run)?;
                if status != RunStatus::Running && !next.is_empty() {
                    return Err(StoreError::RunFinished { run, flow, status });
                }
                let ctx = || format!("flow `{flow}`: journaling run {run}");
                let insert = tx
                    .prepare(
                        "INSERT INTO journal
                           (run_id, seq, kind, source_id, target_id, step, state, created_at)
                         VALUES ($1, $2, $3, $4, $5, $6, 'intent', $7) RETURNING id",
                    )
                    .context(ctx)?;
                let mut ids = Vec::with_capacity(next.len());
                for (seq, step) in next {
                    let payload = serde_json::to_string(step)
                        .context(|| format!("run {run}: serialising step {seq}"))?;
                    let id: i64 = tx
                        .query_one(
                            &insert,
                            &[
                                &run.0,
                                &i64::from(*seq),
                                &step.kind.name(),
                                &step.source_id,
                                &step.target_id,
                                &payload,
                                &time::now(),
                            ],
                        )
                        .and_then(|r| r.try_get(0))
                        .context(|| format!("flow `{flow}`: journaling step {seq} of run {run}"))?;
                    ids.push(JournalId(id));
                }
                Ok(ids)
            },
        )
    }

    /// Outcomes, links and audit entries in one transaction.
    pub fn journal_complete(&mut self, done: &[Completion<'_>]) -> Result<(), StoreError> {
        self.write(
            || format!("recording {} journal outcomes", done.len()),
            |tx| done.iter().try_for_each(|d| complete(tx, d)),
        )
    }

    /// See [`crate::store::Store::unresolved_journal`].
    pub fn unresolved_journal(&self, flow: &str) -> Result<Vec<JournalEntry>, StoreError> {
        self.read(|c| {
            let flow_id = PostgresStore::flow_id(c, flow)?;
            query_entries(
                c,
                "journal.state = 'intent' AND runs.flow_id = $1 ORDER BY journal.id",
                flow_id,
                || format!("flow `{flow}`: reading unresolved journal entries"),
            )
        })
    }

    /// See [`crate::store::Store::resolve_journal`].
    pub fn resolve_journal(
        &mut self,
        id: JournalId,
        outcome: &Resolution,
    ) -> Result<(), StoreError> {
        self.write(
            || format!("journal entry {id}: resolving it"),
            |tx| {
                match outcome {
                    Resolution::Done { target_id } => {
                        settle(tx, id, JournalState::Done, None, target_id.as_deref())?
                    }
                    Resolution::Failed { error } => {
                        settle(tx, id, JournalState::Failed, Some(error), None)?
                    }
                    Resolution::Unknown { note } => {
                        settle(tx, id, JournalState::Unknown, Some(note), None)?
                    }
                };
                Ok(())
            },
        )
    }

    /// See [`crate::store::Store::journal_entry`].
    pub fn journal_entry(&self, id: JournalId) -> Result<JournalEntry, StoreError> {
        self.read(|c| {
            query_entries(c, "journal.id = $1", id.0, || {
                format!("journal entry {id}: reading it")
            })
        })?
        .pop()
        .ok_or(StoreError::UnknownJournal(id))
    }
}

fn complete(tx: &mut impl GenericClient, done: &Completion<'_>) -> Result<(), StoreError> {
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
/// entry that is not an intent: an outcome is written once. The entry's
/// row is locked (`FOR UPDATE`) so two settlements cannot both see `intent`.
fn settle(
    c: &mut impl GenericClient,
    id: JournalId,
    state: JournalState,
    error: Option<&str>,
    produced: Option<&str>,
) -> Result<String, StoreError> {
    let row: Option<(i64, i64, String, String, String)> = c
        .query_typed_opt(
            "SELECT journal.run_id, journal.seq, journal.state, flows.name, journal.kind
             FROM journal JOIN runs ON runs.id = journal.run_id
             JOIN flows ON flows.id = runs.flow_id WHERE journal.id = $1
             FOR UPDATE OF journal",
            &[(&id.0, Type::INT8)],
        )
        .and_then(|r| {
            r.map(|r| {
                Ok((
                    r.try_get(0)?,
                    r.try_get(1)?,
                    r.try_get(2)?,
                    r.try_get(3)?,
                    r.try_get(4)?,
                ))
            })
            .transpose()
        })
        .context(|| format!("journal entry {id}: looking it up"))?;
    let (run, seq, current, flow, kind) = row.ok_or(StoreError::UnknownJournal(id))?;
    let current = parse_enum("journal.state", current, JournalState::parse)?;
    if current != JournalState::Intent {
        return Err(StoreError::JournalResolved {
            id,
            run: RunId(run),
            seq: to_u32("journal.seq", seq)?,
            state: current,
        });
    }
    c.query_typed(
        "UPDATE journal SET state = $2, error = $3, produced_target_id = $4, resolved_at = $5
         WHERE id = $1",
        &[
            (&id.0, Type::INT8),
            (&state.as_str(), Type::TEXT),
            (&error, Type::TEXT),
            (&produced, Type::TEXT),
            (&time::now(), Type::TEXT),
        ],
    )
    .context(|| format!("flow `{flow}`: recording the outcome of journal entry {id}"))?;
    // The rows an applied update wrote become the flow's, in the same
    // transaction as the outcome.
    if state == JournalState::Done && kind == ActionKind::Update.name() {
        super::written_rows::record_applied_rows(c, id)?;
    }
    Ok(flow)
}
