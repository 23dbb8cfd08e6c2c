//! What `muster serve`'s alerts ([`crate::alerts`]) read and remember: the
//! records that failed in a flow's recent runs, a run's error, and which
//! alerts were already sent (table `alerts_sent`, schema version 9).
//!
//! The types are here; each method holds its SQL in one statement, in
//! `sqlite/alerts.rs` and its twin `postgres/alerts.rs`.

use super::runs::RunId;
#[cfg(test)]
use super::{Store, StoreError};

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
