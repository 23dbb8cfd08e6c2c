//! The action journal: an intent before each call to the target, an outcome
//! after. See the module doc of [`super`] for the crash semantics.

use std::fmt;

use muster_core::{ActionKind, Step};
use rusqlite::{Connection, OptionalExtension, params};

use super::links::{LinkKind, insert_link};
use super::runs::{RunId, RunStatus, run_state};
use super::state::{AuditEntry, insert_audit};
use super::{Context, Store, StoreError, parse_enum, time};

/// A journal entry's row id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JournalId(pub i64);

impl fmt::Display for JournalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Where an action stands. Only `Intent` moves, and only once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JournalState {
    /// Written before the call; the outcome is not known (yet).
    Intent,
    Done,
    Failed,
    /// Recovery could not tell whether the call took effect. The next plan,
    /// made from a fresh read of the target, decides what is left to do.
    Unknown,
}

impl JournalState {
    pub const fn as_str(self) -> &'static str {
        match self {
            JournalState::Intent => "intent",
            JournalState::Done => "done",
            JournalState::Failed => "failed",
            JournalState::Unknown => "unknown",
        }
    }

    pub fn parse(s: &str) -> Option<JournalState> {
        [
            JournalState::Intent,
            JournalState::Done,
            JournalState::Failed,
            JournalState::Unknown,
        ]
        .into_iter()
        .find(|t| t.as_str() == s)
    }
}

impl fmt::Display for JournalState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How recovery resolved an intent left by a run that died.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// The call took effect (e.g. the account was found by its correlation
    /// key). For a create, prefer [`Store::record_link_and_done`].
    Done { target_id: Option<String> },
    /// The call did not take effect, or was rejected.
    Failed { error: String },
    /// It cannot be told; the note says why.
    Unknown { note: String },
}

/// One journaled action.
#[derive(Debug, Clone, PartialEq)]
pub struct JournalEntry {
    pub id: JournalId,
    pub run: RunId,
    pub flow: String,
    /// Position in the run's plan.
    pub seq: u32,
    pub kind: ActionKind,
    pub source_id: Option<String>,
    pub target_id: Option<String>,
    /// The resolved plan step, as it was about to be applied.
    pub step: Step,
    pub state: JournalState,
    pub error: Option<String>,
    /// The target id the call produced (a create's new account id).
    pub produced_target_id: Option<String>,
    pub created_at: String,
    pub resolved_at: Option<String>,
}

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

impl Store {
    /// Journals the intent to apply `step` as the `seq`-th action of `run`,
    /// committed before returning: call it **before** calling the target.
    pub fn journal_intent(
        &mut self,
        run: RunId,
        seq: u32,
        step: &Step,
    ) -> Result<JournalId, StoreError> {
        self.journal_next(None, run, seq, step)
    }

    /// Records the outcome of the previous call (with its link and audit
    /// entry) **and** the intent of the next one in one transaction: see
    /// [`Store::journal_batch`], of which this is the one-intent case.
    pub fn journal_next(
        &mut self,
        previous: Option<&Completion<'_>>,
        run: RunId,
        seq: u32,
        step: &Step,
    ) -> Result<JournalId, StoreError> {
        let previous = previous.map(std::slice::from_ref).unwrap_or_default();
        let ids = self.journal_batch(previous, run, &[(seq, step)])?;
        ids.into_iter()
            .next()
            .ok_or_else(|| StoreError::UnknownRun(run))
    }

    /// Group commit: records the outcomes of the calls made since the last
    /// commit (with their links and audit entries) and the intents of the
    /// next calls, in **one** transaction, and returns the new entries' ids
    /// in order.
    ///
    /// The journal's promise holds for every call: its intent is committed
    /// before it is made, and its outcome after. What batching changes is
    /// only *how many* intents a crash can leave open (at most one batch),
    /// and those are exactly what recovery settles from a fresh read of the
    /// target. A commit per call instead costs ~180 µs on this machine's
    /// disk — more than a loopback call itself (see
    /// `benches/journal_overhead.rs`).
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

    /// Records calls' outcomes, links and audit entries in one transaction
    /// (the last calls of a run, whose outcomes no next intent carries).
    pub fn journal_complete(&mut self, done: &[Completion<'_>]) -> Result<(), StoreError> {
        if done.is_empty() {
            return Ok(());
        }
        let tx = self.write_tx(|| format!("recording {} journal outcomes", done.len()))?;
        for d in done {
            complete(&tx, d)?;
        }
        tx.commit()
            .context(|| format!("committing {} journal outcomes", done.len()))
    }

    /// The call succeeded; `target_id` is the id it produced or touched.
    pub fn journal_done(
        &mut self,
        id: JournalId,
        target_id: Option<&str>,
    ) -> Result<(), StoreError> {
        let tx = self.write_tx(|| format!("journal entry {id}: recording its outcome"))?;
        settle(&tx, id, JournalState::Done, None, target_id)?;
        tx.commit()
            .context(|| format!("journal entry {id}: committing its outcome"))
    }

    /// The call failed with `error` (per-record isolation: the run goes on).
    pub fn journal_failed(&mut self, id: JournalId, error: &str) -> Result<(), StoreError> {
        let tx = self.write_tx(|| format!("journal entry {id}: recording its failure"))?;
        settle(&tx, id, JournalState::Failed, Some(error), None)?;
        tx.commit()
            .context(|| format!("journal entry {id}: committing its failure"))
    }

    /// A create (or link) succeeded: stores the link and marks the entry done
    /// in **one** transaction, so the outcome and the link are never
    /// separated. If the link conflicts, nothing is written and the entry
    /// stays `intent`. Also what recovery calls when it finds the account a
    /// dead run created.
    pub fn record_link_and_done(
        &mut self,
        id: JournalId,
        kind: LinkKind,
        source_id: &str,
        target_id: &str,
    ) -> Result<(), StoreError> {
        let tx = self.write_tx(|| format!("journal entry {id}: recording its link"))?;
        let flow = settle(&tx, id, JournalState::Done, None, Some(target_id))?;
        insert_link(&tx, &flow, kind, source_id, target_id)?;
        tx.commit()
            .context(|| format!("flow `{flow}`: committing journal entry {id} and its link"))
    }

    /// Intents of `flow` with no outcome: left by a run that died between
    /// [`Store::journal_intent`] and its outcome. The engine resolves them
    /// before planning. Oldest first.
    pub fn unresolved_journal(&self, flow: &str) -> Result<Vec<JournalEntry>, StoreError> {
        let flow_id = Store::flow_id(&self.conn, flow)?;
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

/// How one journaled call ended, for [`Store::journal_next`] and
/// [`Store::journal_complete`].
#[derive(Debug, Clone)]
pub struct Completion<'a> {
    pub id: JournalId,
    pub outcome: Outcome<'a>,
    /// Written with the outcome, for a change that happened.
    pub audit: Option<AuditEntry<'a>>,
}

/// The outcome part of a [`Completion`].
#[derive(Debug, Clone, Copy)]
pub enum Outcome<'a> {
    /// Succeeded; the id it produced or touched.
    Done { target_id: Option<&'a str> },
    /// Succeeded and created (or adopted) a record: the link is stored with
    /// the outcome.
    Linked {
        kind: LinkKind,
        source_id: &'a str,
        target_id: &'a str,
    },
    /// Failed with this error (per-record isolation: the run goes on).
    Failed { error: &'a str },
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
