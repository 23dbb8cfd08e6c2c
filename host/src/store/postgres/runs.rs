//! Runs in PostgreSQL (twin of `sqlite/runs.rs`).

use postgres::GenericClient;

use super::journal::entries_of_run;
use super::{PostgresStore, limit};
use crate::store::runs::{RUN_COLUMNS, RawRun, record, summary};
use crate::store::{
    Context, JournalEntry, RunCounts, RunId, RunProblem, RunRecord, RunStatus, RunSummary,
    StoreError, Trigger, parse_enum, time,
};

impl PostgresStore {
    /// See [`crate::store::Store::begin_run`].
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
        let token = self.fence.as_ref().map(|f| f.token);
        let undoes = undoes.map(|r| r.0);
        let ctx = || format!("flow `{flow}`: starting a run");
        self.write(ctx, |tx| {
            let flow_id = PostgresStore::flow_id(tx, flow)?;
            tx.query_one(
                r#"INSERT INTO runs (flow_id, started_at, status, "trigger", lease_fence, undoes)
                   VALUES ($1, $2, 'running', $3, $4, $5) RETURNING id"#,
                &[&flow_id, &time::now(), &trigger.stored(), &token, &undoes],
            )
            .and_then(|r| r.try_get(0))
            .map(RunId)
            .context(ctx)
        })
    }

    /// See [`crate::store::Store::finish_run`].
    pub fn finish_run(
        &mut self,
        run: RunId,
        status: RunStatus,
        counts: &RunCounts,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        let counts = serde_json::to_string(counts)
            .context(|| format!("run {run}: serialising its counts"))?;
        self.write(
            || format!("run {run}: finishing it"),
            |tx| {
                let (flow, current) = run_state(tx, run)?;
                if current != RunStatus::Running {
                    return Err(StoreError::RunFinished {
                        run,
                        flow,
                        status: current,
                    });
                }
                tx.execute(
                    "UPDATE runs SET status = $2, finished_at = $3, counts = $4, error = $5
                     WHERE id = $1",
                    &[&run.0, &status.as_str(), &time::now(), &counts, &error],
                )
                .context(|| format!("flow `{flow}`: finishing run {run}"))?;
                Ok(())
            },
        )
    }

    /// See [`crate::store::Store::add_run_problems`].
    pub fn add_run_problems(
        &mut self,
        run: RunId,
        problems: &[RunProblem],
    ) -> Result<(), StoreError> {
        self.write(
            || format!("run {run}: recording its problems"),
            |tx| {
                let (flow, status) = run_state(tx, run)?;
                if status != RunStatus::Running {
                    return Err(StoreError::RunFinished { run, flow, status });
                }
                let ctx = || format!("flow `{flow}`: recording the problems of run {run}");
                let next: i64 = tx
                    .query_one(
                        "SELECT COALESCE(MAX(seq), 0) FROM run_problems WHERE run_id = $1",
                        &[&run.0],
                    )
                    .and_then(|r| r.try_get(0))
                    .context(ctx)?;
                let insert = tx
                    .prepare(
                        "INSERT INTO run_problems (run_id, seq, side, plugin, record, field, message)
                         VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    )
                    .context(ctx)?;
                for (seq, p) in (next + 1..).zip(problems) {
                    tx.execute(
                        &insert,
                        &[&run.0, &seq, &p.side, &p.plugin, &p.record, &p.field, &p.message],
                    )
                    .context(ctx)?;
                }
                Ok(())
            },
        )
    }

    /// See [`crate::store::Store::set_run_notes`].
    pub fn set_run_notes(&mut self, run: RunId, notes: &[String]) -> Result<(), StoreError> {
        let text =
            serde_json::to_string(notes).context(|| format!("run {run}: serialising its notes"))?;
        let ctx = || format!("run {run}: recording its notes");
        self.write(ctx, |tx| {
            tx.execute("UPDATE runs SET notes = $2 WHERE id = $1", &[&run.0, &text])
                .context(ctx)?;
            Ok(())
        })
    }

    /// See [`crate::store::Store::unfinished_runs`].
    pub fn unfinished_runs(&self, flow: &str) -> Result<Vec<RunId>, StoreError> {
        self.read(|c| {
            let flow_id = PostgresStore::flow_id(c, flow)?;
            let ctx = || format!("flow `{flow}`: listing unfinished runs");
            c.query(
                "SELECT id FROM runs WHERE flow_id = $1 AND status = 'running' ORDER BY id",
                &[&flow_id],
            )
            .and_then(|rows| rows.iter().map(|r| r.try_get(0).map(RunId)).collect())
            .context(ctx)
        })
    }

    /// See [`crate::store::Store::run_record`].
    pub fn run_record(&self, run: RunId) -> Result<RunRecord, StoreError> {
        let row = self.read(|c| {
            c.query_opt(
                r#"SELECT flows.name, runs."trigger", runs.status, runs.undoes
                   FROM runs JOIN flows ON flows.id = runs.flow_id WHERE runs.id = $1"#,
                &[&run.0],
            )
            .and_then(|r| {
                r.map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?)))
                    .transpose()
            })
            .context(|| format!("run {run}: looking it up"))
        })?;
        record(run, row.ok_or(StoreError::UnknownRun(run))?)
    }

    /// See [`crate::store::Store::run_journal`].
    pub fn run_journal(&self, run: RunId) -> Result<Vec<JournalEntry>, StoreError> {
        self.read(|c| entries_of_run(c, run))
    }

    /// See [`crate::store::Store::history`].
    pub fn history(&self, flow: &str, max: usize) -> Result<Vec<RunSummary>, StoreError> {
        self.read(|c| {
            let flow_id = PostgresStore::flow_id(c, flow)?;
            let ctx = || format!("flow `{flow}`: reading history");
            let rows = c
                .query(
                    &format!(
                        "SELECT {RUN_COLUMNS} FROM runs WHERE flow_id = $1 ORDER BY id DESC LIMIT $2"
                    ),
                    &[&flow_id, &limit(max)],
                )
                .context(ctx)?;
            let raws = rows
                .iter()
                .map(raw_run)
                .collect::<Result<Vec<_>, _>>()
                .context(ctx)?;
            raws.into_iter()
                .map(|raw| summary_of(c, flow, raw))
                .collect()
        })
    }

    /// See [`crate::store::Store::run_summary`].
    pub fn run_summary(&self, run: RunId) -> Result<RunSummary, StoreError> {
        self.read(|c| {
            let (flow, _) = run_state(c, run)?;
            let raw = c
                .query_one(
                    &format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = $1"),
                    &[&run.0],
                )
                .and_then(|r| raw_run(&r))
                .context(|| format!("flow `{flow}`: reading run {run}"))?;
            summary_of(c, &flow, raw)
        })
    }
}

fn raw_run(r: &postgres::Row) -> Result<RawRun, postgres::Error> {
    Ok(RawRun {
        id: RunId(r.try_get(0)?),
        trigger: r.try_get(1)?,
        status: r.try_get(2)?,
        started_at: r.try_get(3)?,
        finished_at: r.try_get(4)?,
        counts: r.try_get(5)?,
        error: r.try_get(6)?,
        notes: r.try_get(7)?,
        undoes: r.try_get::<_, Option<i64>>(8)?.map(RunId),
    })
}

/// A run of `flow` with its journal and problems.
fn summary_of(
    c: &mut impl GenericClient,
    flow: &str,
    raw: RawRun,
) -> Result<RunSummary, StoreError> {
    let journal = entries_of_run(c, raw.id)?;
    let problems = problems_of_run(c, flow, raw.id)?;
    summary(flow, raw, journal, problems)
}

/// A run's flow name and status.
pub(crate) fn run_state(
    c: &mut impl GenericClient,
    run: RunId,
) -> Result<(String, RunStatus), StoreError> {
    let row: Option<(String, String)> = c
        .query_opt(
            "SELECT flows.name, runs.status FROM runs JOIN flows ON flows.id = runs.flow_id
             WHERE runs.id = $1",
            &[&run.0],
        )
        .and_then(|r| r.map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).transpose())
        .context(|| format!("run {run}: looking it up"))?;
    let (flow, status) = row.ok_or(StoreError::UnknownRun(run))?;
    Ok((flow, parse_enum("runs.status", status, RunStatus::parse)?))
}

/// A run's problems, in the order reported.
fn problems_of_run(
    c: &mut impl GenericClient,
    flow: &str,
    run: RunId,
) -> Result<Vec<RunProblem>, StoreError> {
    c.query(
        "SELECT side, plugin, record, field, message FROM run_problems
         WHERE run_id = $1 ORDER BY seq",
        &[&run.0],
    )
    .and_then(|rows| {
        rows.iter()
            .map(|r| {
                Ok(RunProblem {
                    side: r.try_get(0)?,
                    plugin: r.try_get(1)?,
                    record: r.try_get(2)?,
                    field: r.try_get(3)?,
                    message: r.try_get(4)?,
                })
            })
            .collect()
    })
    .context(|| format!("flow `{flow}`: reading the problems of run {run}"))
}
