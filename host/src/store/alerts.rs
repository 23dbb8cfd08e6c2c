//! What `muster serve`'s alerts ([`crate::alerts`]) read and remember: the
//! records that failed in a flow's recent runs, a run's error, and which
//! alerts were already sent (table `alerts_sent`, schema version 9).
//!
//! Each method holds its SQL in one statement, so another backend can
//! implement it one-for-one.

use rusqlite::{OptionalExtension, params};

use super::runs::RunId;
use super::{Context, Store, StoreError, time};

/// One way a record failed in a run: a data problem (`run_problems`: the
/// field and why) or a failed action (a `failed` journal entry: the action
/// kind and the target's error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordFailure {
    /// The record's id (the source id; the target id for an action that
    /// has no source record).
    pub record: String,
    /// The field of a data problem, or the action (`create`, `update`…).
    pub what: String,
    pub message: String,
}

/// A finished run and the record failures it saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunFailures {
    pub run: RunId,
    pub failures: Vec<RecordFailure>,
}

/// What an alert is about: the `kind` column of `alerts_sent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertKind {
    /// A run that failed; keyed by run id.
    Failed,
    /// A plan the guard held; keyed by the plan's snapshot digest.
    Held,
    /// A record failing across runs; keyed by record and run.
    Failing,
}

impl AlertKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            AlertKind::Failed => "failed",
            AlertKind::Held => "held",
            AlertKind::Failing => "failing",
        }
    }
}

impl Store {
    /// The last `runs` full runs of `flow` that got as far as an outcome
    /// (triggered by a schedule or by hand, ended `done` or `failed`),
    /// newest first, each with its record failures in the order reported.
    /// Single-record and webhook runs are left out: they touch one record,
    /// so they say nothing about whether the others still fail.
    pub fn recent_record_failures(
        &self,
        flow: &str,
        runs: usize,
    ) -> Result<Vec<RunFailures>, StoreError> {
        let flow_id = Store::flow_id(&self.conn, flow)?;
        let ctx = || format!("flow `{flow}`: reading the record failures of its last {runs} runs");
        let mut stmt = self
            .conn
            .prepare_cached(
                r#"WITH recent AS (
                       SELECT id FROM runs
                       WHERE flow_id = ?1 AND status IN ('done', 'failed')
                         AND "trigger" IN ('schedule', 'manual') AND undoes IS NULL
                       ORDER BY id DESC LIMIT ?2)
                   SELECT recent.id, f.record, f.what, f.message FROM recent
                   LEFT JOIN (
                       SELECT run_id, record, field AS what, message, 0 AS origin, seq
                       FROM run_problems WHERE run_id IN (SELECT id FROM recent)
                       UNION ALL
                       SELECT run_id, COALESCE(source_id, target_id, ''), kind,
                              COALESCE(error, 'failed'), 1, seq
                       FROM journal WHERE state = 'failed' AND run_id IN (SELECT id FROM recent)
                   ) AS f ON f.run_id = recent.id
                   ORDER BY recent.id DESC, f.origin, f.seq"#,
            )
            .context(ctx)?;
        let limit = i64::try_from(runs).unwrap_or(i64::MAX);
        let rows = stmt
            .query_map(params![flow_id, limit], |r| {
                Ok((
                    RunId(r.get(0)?),
                    r.get::<_, Option<String>>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, Option<String>>(3)?,
                ))
            })
            .context(ctx)?;
        let mut out: Vec<RunFailures> = Vec::new();
        for row in rows {
            let (run, record, what, message) = row.context(ctx)?;
            if out.last().is_none_or(|r| r.run != run) {
                out.push(RunFailures {
                    run,
                    failures: Vec::new(),
                });
            }
            if let (Some(record), Some(last)) = (record, out.last_mut()) {
                last.failures.push(RecordFailure {
                    record,
                    what: what.unwrap_or_default(),
                    message: message.unwrap_or_default(),
                });
            }
        }
        Ok(out)
    }

    /// The error `run` ended with, if any.
    pub fn run_error(&self, run: RunId) -> Result<Option<String>, StoreError> {
        self.conn
            .prepare_cached("SELECT error FROM runs WHERE id = ?1")
            .and_then(|mut s| s.query_row([run.0], |r| r.get::<_, Option<String>>(0)))
            .optional()
            .context(|| format!("run {run}: reading its error"))?
            .ok_or(StoreError::UnknownRun(run))
    }

    /// Remembers that the alert `kind`/`key` of `flow` is being sent, and
    /// says whether it is new: `false` means it was sent before (by this
    /// process or an earlier one) and must not be sent again.
    pub fn alert_once(
        &mut self,
        flow: &str,
        kind: AlertKind,
        key: &str,
    ) -> Result<bool, StoreError> {
        let ctx = || format!("flow `{flow}`: recording the {} alert {key}", kind.as_str());
        let tx = self.write_tx(ctx)?;
        let flow_id = Store::flow_id(&tx, flow)?;
        let added = tx
            .execute(
                "INSERT OR IGNORE INTO alerts_sent (flow_id, kind, key, sent_at)
                 VALUES (?1, ?2, ?3, ?4)",
                params![flow_id, kind.as_str(), key, time::now()],
            )
            .context(ctx)?;
        tx.commit().context(ctx)?;
        Ok(added == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{RunCounts, RunProblem, RunStatus, Trigger};

    fn problem(record: &str, field: &str) -> RunProblem {
        RunProblem {
            side: "source".into(),
            plugin: "lucca".into(),
            record: record.into(),
            field: field.into(),
            message: format!("{field} is not a date"),
        }
    }

    fn run(s: &mut Store, trigger: Trigger, status: RunStatus, problems: &[RunProblem]) -> RunId {
        let run = s.begin_run("f", trigger).unwrap();
        s.add_run_problems(run, problems).unwrap();
        s.finish_run(run, status, &RunCounts::new(), Some("boom"))
            .unwrap();
        run
    }

    #[test]
    fn recent_failures_are_newest_first_and_skip_single_record_and_held_runs() {
        let mut s = Store::open_in_memory().unwrap();
        s.ensure_flow("f", "a", "b").unwrap();
        let r1 = run(
            &mut s,
            Trigger::Schedule,
            RunStatus::Done,
            &[problem("7", "birth_date")],
        );
        let r2 = run(&mut s, Trigger::Schedule, RunStatus::Failed, &[]);
        run(
            &mut s,
            Trigger::Webhook,
            RunStatus::Done,
            &[problem("9", "x")],
        );
        run(
            &mut s,
            Trigger::Schedule,
            RunStatus::Held,
            &[problem("9", "x")],
        );
        let r5 = run(
            &mut s,
            Trigger::Manual,
            RunStatus::Done,
            &[problem("7", "birth_date"), problem("8", "email")],
        );
        let got = s.recent_record_failures("f", 3).unwrap();
        let runs: Vec<RunId> = got.iter().map(|r| r.run).collect();
        assert_eq!(runs, vec![r5, r2, r1]);
        let records: Vec<&str> = got[0].failures.iter().map(|f| f.record.as_str()).collect();
        assert_eq!(records, vec!["7", "8"]);
        assert_eq!(got[0].failures[0].what, "birth_date");
        assert_eq!(got[0].failures[0].message, "birth_date is not a date");
        assert!(got[1].failures.is_empty());
        assert_eq!(s.recent_record_failures("f", 1).unwrap().len(), 1);
        assert_eq!(s.run_error(r2).unwrap().as_deref(), Some("boom"));
        assert!(matches!(
            s.run_error(RunId(999)),
            Err(StoreError::UnknownRun(_))
        ));
    }

    #[test]
    fn an_alert_is_new_once_per_flow_kind_and_key() {
        let mut s = Store::open_in_memory().unwrap();
        s.ensure_flow("f", "a", "b").unwrap();
        s.ensure_flow("g", "a", "b").unwrap();
        assert!(s.alert_once("f", AlertKind::Held, "d1").unwrap());
        assert!(!s.alert_once("f", AlertKind::Held, "d1").unwrap());
        assert!(s.alert_once("f", AlertKind::Held, "d2").unwrap());
        assert!(s.alert_once("f", AlertKind::Failed, "d1").unwrap());
        assert!(s.alert_once("g", AlertKind::Held, "d1").unwrap());
        assert!(matches!(
            s.alert_once("nope", AlertKind::Held, "d1"),
            Err(StoreError::UnknownFlow(_))
        ));
    }
}
