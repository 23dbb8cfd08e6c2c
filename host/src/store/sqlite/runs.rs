//! Runs in SQLite: one row per sync of a flow, from `begin_run` to
//! `finish_run`.

use rusqlite::{OptionalExtension, params};

use super::SqliteStore;
use super::journal::entries_of_run;
use crate::store::runs::{RUN_COLUMNS, RawRun, record, summary};
use crate::store::{
    Context, JournalEntry, RunCounts, RunId, RunProblem, RunRecord, RunStatus, RunSummary,
    StoreError, Trigger, parse_enum, time,
};

impl SqliteStore {
    /// Starts a run of `flow` (status `running`), committed. While this
    /// store holds the flow's lease, the run records its fencing token (and
    /// cannot start if the lease was lost).
    pub fn begin_run(&mut self, flow: &str, trigger: Trigger) -> Result<RunId, StoreError> {
        self.begin(flow, trigger, None)
    }

    /// See [`crate::store::Store::begin_undo_run`].
    pub fn begin_undo_run(&mut self, flow: &str, undone: RunId) -> Result<RunId, StoreError> {
        self.begin(flow, Trigger::Undo, Some(undone))
    }

    fn begin(
        &mut self,
        flow: &str,
        trigger: Trigger,
        undoes: Option<RunId>,
    ) -> Result<RunId, StoreError> {
        let flow_id = SqliteStore::flow_id(&self.conn, flow)?;
        let token = self.fence_token();
        let tx = self.write_tx(|| format!("flow `{flow}`: starting a run"))?;
        tx.execute(
            r#"INSERT INTO runs (flow_id, started_at, status, "trigger", lease_fence, undoes)
               VALUES (?1, ?2, 'running', ?3, ?4, ?5)"#,
            params![
                flow_id,
                time::now(),
                trigger.stored(),
                token,
                undoes.map(|r| r.0)
            ],
        )
        .context(|| format!("flow `{flow}`: starting a run"))?;
        let run = RunId(tx.last_insert_rowid());
        tx.commit()
            .context(|| format!("flow `{flow}`: committing the start of run {run}"))?;
        Ok(run)
    }

    /// Finishes a running run with its final status, counters and error.
    pub fn finish_run(
        &mut self,
        run: RunId,
        status: RunStatus,
        counts: &RunCounts,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        let counts = serde_json::to_string(counts)
            .context(|| format!("run {run}: serialising its counts"))?;
        let tx = self.write_tx(|| format!("run {run}: finishing it"))?;
        let (flow, current) = run_state(&tx, run)?;
        if current != RunStatus::Running {
            return Err(StoreError::RunFinished {
                run,
                flow,
                status: current,
            });
        }
        tx.execute(
            "UPDATE runs SET status = ?2, finished_at = ?3, counts = ?4, error = ?5 WHERE id = ?1",
            params![run.0, status.as_str(), time::now(), counts, error],
        )
        .context(|| format!("flow `{flow}`: finishing run {run}"))?;
        tx.commit()
            .context(|| format!("flow `{flow}`: committing the end of run {run}"))
    }

    /// Records the problems of a running run (appended after any already
    /// recorded), committed.
    pub fn add_run_problems(
        &mut self,
        run: RunId,
        problems: &[RunProblem],
    ) -> Result<(), StoreError> {
        let tx = self.write_tx(|| format!("run {run}: recording its problems"))?;
        let (flow, status) = run_state(&tx, run)?;
        if status != RunStatus::Running {
            return Err(StoreError::RunFinished { run, flow, status });
        }
        let ctx = || format!("flow `{flow}`: recording the problems of run {run}");
        let next: i64 = tx
            .query_row(
                "SELECT COALESCE(MAX(seq), 0) FROM run_problems WHERE run_id = ?1",
                [run.0],
                |r| r.get(0),
            )
            .context(ctx)?;
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO run_problems (run_id, seq, side, plugin, record, field, message)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .context(ctx)?;
            for (seq, p) in (next + 1..).zip(problems) {
                insert
                    .execute(params![
                        run.0, seq, p.side, p.plugin, p.record, p.field, p.message
                    ])
                    .context(ctx)?;
            }
        }
        tx.commit().context(ctx)
    }

    /// Records the run's notes: one line per record it skipped or reported a
    /// conflict for, with why (the data problems are in `run_problems`).
    pub fn set_run_notes(&mut self, run: RunId, notes: &[String]) -> Result<(), StoreError> {
        let text =
            serde_json::to_string(notes).context(|| format!("run {run}: serialising its notes"))?;
        let tx = self.write_tx(|| format!("run {run}: recording its notes"))?;
        tx.execute(
            "UPDATE runs SET notes = ?2 WHERE id = ?1",
            params![run.0, text],
        )
        .context(|| format!("run {run}: recording its notes"))?;
        tx.commit()
            .context(|| format!("run {run}: committing its notes"))
    }

    /// Runs of `flow` still `running`. Read by the holder of the flow's
    /// lease, these belong to owners that died (or were fenced out): the
    /// engine marks them `aborted`. Read without the lease, some may be live.
    pub fn unfinished_runs(&self, flow: &str) -> Result<Vec<RunId>, StoreError> {
        let flow_id = SqliteStore::flow_id(&self.conn, flow)?;
        let ctx = || format!("flow `{flow}`: listing unfinished runs");
        let mut stmt = self
            .conn
            .prepare("SELECT id FROM runs WHERE flow_id = ?1 AND status = 'running' ORDER BY id")
            .context(ctx)?;
        let ids = stmt
            .query_map([flow_id], |r| r.get(0).map(RunId))
            .context(ctx)?;
        ids.collect::<Result<_, _>>().context(ctx)
    }

    /// See [`crate::store::Store::run_record`].
    pub fn run_record(&self, run: RunId) -> Result<RunRecord, StoreError> {
        let row: Option<(String, String, String, Option<i64>)> = self
            .conn
            .prepare_cached(
                r#"SELECT flows.name, runs."trigger", runs.status, runs.undoes
                   FROM runs JOIN flows ON flows.id = runs.flow_id WHERE runs.id = ?1"#,
            )
            .and_then(|mut s| {
                s.query_row([run.0], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })
            })
            .optional()
            .context(|| format!("run {run}: looking it up"))?;
        record(run, row.ok_or(StoreError::UnknownRun(run))?)
    }

    /// A run's journal, in step order (every state).
    pub fn run_journal(&self, run: RunId) -> Result<Vec<JournalEntry>, StoreError> {
        entries_of_run(&self.conn, run)
    }

    /// The last `limit` runs of `flow`, newest first, each with its journal.
    pub fn history(&self, flow: &str, limit: usize) -> Result<Vec<RunSummary>, StoreError> {
        let flow_id = SqliteStore::flow_id(&self.conn, flow)?;
        let ctx = || format!("flow `{flow}`: reading history");
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT {RUN_COLUMNS} FROM runs WHERE flow_id = ?1 ORDER BY id DESC LIMIT ?2"
            ))
            .context(ctx)?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = stmt
            .query_map(params![flow_id, limit], raw_run)
            .context(ctx)?
            .collect::<Result<Vec<_>, _>>()
            .context(ctx)?;
        rows.into_iter()
            .map(|raw| self.summary(flow, raw))
            .collect()
    }

    /// See [`crate::store::Store::run_summary`].
    pub fn run_summary(&self, run: RunId) -> Result<RunSummary, StoreError> {
        let (flow, _) = run_state(&self.conn, run)?;
        let raw = self
            .conn
            .prepare_cached(&format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = ?1"))
            .and_then(|mut s| s.query_row([run.0], raw_run))
            .context(|| format!("flow `{flow}`: reading run {run}"))?;
        self.summary(&flow, raw)
    }

    /// A run of `flow` with its journal and problems.
    fn summary(&self, flow: &str, raw: RawRun) -> Result<RunSummary, StoreError> {
        let journal = entries_of_run(&self.conn, raw.id)?;
        let problems = problems_of_run(&self.conn, flow, raw.id)?;
        summary(flow, raw, journal, problems)
    }
}

fn raw_run(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawRun> {
    Ok(RawRun {
        id: RunId(r.get(0)?),
        trigger: r.get(1)?,
        status: r.get(2)?,
        started_at: r.get(3)?,
        finished_at: r.get(4)?,
        counts: r.get(5)?,
        error: r.get(6)?,
        notes: r.get(7)?,
        undoes: r.get::<_, Option<i64>>(8)?.map(RunId),
    })
}

/// A run's flow name and status.
pub(crate) fn run_state(
    conn: &rusqlite::Connection,
    run: RunId,
) -> Result<(String, RunStatus), StoreError> {
    let row: Option<(String, String)> = conn
        .prepare_cached(
            "SELECT flows.name, runs.status FROM runs JOIN flows ON flows.id = runs.flow_id
             WHERE runs.id = ?1",
        )
        .and_then(|mut s| s.query_row([run.0], |r| Ok((r.get(0)?, r.get(1)?))))
        .optional()
        .context(|| format!("run {run}: looking it up"))?;
    let (flow, status) = row.ok_or(StoreError::UnknownRun(run))?;
    Ok((flow, parse_enum("runs.status", status, RunStatus::parse)?))
}

/// A run's problems, in the order reported.
fn problems_of_run(
    conn: &rusqlite::Connection,
    flow: &str,
    run: RunId,
) -> Result<Vec<RunProblem>, StoreError> {
    let ctx = || format!("flow `{flow}`: reading the problems of run {run}");
    let mut stmt = conn
        .prepare_cached(
            "SELECT side, plugin, record, field, message FROM run_problems
             WHERE run_id = ?1 ORDER BY seq",
        )
        .context(ctx)?;
    let rows = stmt
        .query_map([run.0], |r| {
            Ok(RunProblem {
                side: r.get(0)?,
                plugin: r.get(1)?,
                record: r.get(2)?,
                field: r.get(3)?,
                message: r.get(4)?,
            })
        })
        .context(ctx)?;
    rows.collect::<Result<_, _>>().context(ctx)
}
