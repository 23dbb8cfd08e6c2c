//! Aggregates of the run history for `/metrics`: a few `GROUP BY` queries
//! over runs, the journal and what runs left out, each in its own function
//! (`sqlite/metrics.rs`; `postgres/metrics.rs` answers the same questions
//! with the same SQL). Everything here counts since the database was
//! created, so the numbers are Prometheus counters that survive restarts.

#[cfg(test)]
use super::Store;

/// Per flow and label (an outcome, an action kind…): a count.
pub type Tally = Vec<(String, String, u64)>;

/// The last finished run of a flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastRun {
    pub flow: String,
    pub started_at: String,
    pub finished_at: String,
}

/// What `/metrics` reads from the store.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StoreMetrics {
    /// Every flow the store knows, in name order (so a flow that never ran
    /// still has its series).
    pub flows: Vec<String>,
    /// Finished runs by flow and status (`done`, `failed`, `held`,
    /// `aborted`).
    pub runs: Tally,
    /// Actions the target confirmed (journal `done`) by flow and kind.
    pub actions: Tally,
    /// Actions the target refused (journal `failed`) by flow.
    pub failed: Vec<(String, u64)>,
    /// Records left out (skips and conflicts) by flow and kind.
    pub left_out: Tally,
    /// The last finished run of each flow that has one.
    pub last_runs: Vec<LastRun>,
    /// When each flow's last `done` run finished (RFC 3339, UTC).
    pub last_success: Vec<(String, String)>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{LeftOut, LeftOutKind, RunCounts, RunStatus, Trigger};

    #[test]
    fn runs_are_counted_by_flow_and_outcome_and_running_ones_are_not() {
        let mut s = Store::open_in_memory().unwrap();
        s.ensure_flow("a", "x", "y").unwrap();
        s.ensure_flow("b", "x", "y").unwrap();
        let counts = RunCounts::new();
        for status in [RunStatus::Done, RunStatus::Done, RunStatus::Failed] {
            let run = s.begin_run("a", Trigger::Manual).unwrap();
            s.finish_run(run, status, &counts, None).unwrap();
        }
        let run = s.begin_run("a", Trigger::Manual).unwrap();
        let skip = LeftOut {
            kind: LeftOutKind::Skip,
            source_id: Some("1".into()),
            target_id: None,
            label: "n".into(),
            reason: "r".into(),
            explanation: "e".into(),
        };
        s.add_run_left_out(run, &[skip.clone(), skip]).unwrap();
        let m = s.metrics().unwrap();
        assert_eq!(m.flows, ["a", "b"]);
        assert_eq!(
            m.runs,
            [
                ("a".into(), "done".into(), 2),
                ("a".into(), "failed".into(), 1)
            ]
        );
        assert_eq!(m.left_out, [("a".into(), "skip".into(), 2)]);
        assert_eq!(m.last_runs.len(), 1);
        assert_eq!(m.last_success.len(), 1);
        assert!(m.actions.is_empty() && m.failed.is_empty());
    }
}
