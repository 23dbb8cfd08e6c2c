//! Deciding what to alert after a job, and writing the message.
//!
//! Runs on the serve worker right after a job: a few store reads and one
//! insert per alert (the dedupe, see the module doc of [`super`]). Nothing
//! here sends anything.

use jiff::Zoned;

use super::Alerting;
use crate::serve::RunReport;
use crate::store::{AlertKind, RecordFailure, RunFailures, RunStatus, Store, StoreError, Trigger};

/// One message, ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    pub flow: String,
    /// One line: tenant, flow, what happened.
    pub subject: String,
    /// Plain text: what happened, when, details, and the link to review.
    pub text: String,
}

/// A job the serve worker just finished, as the alerts see it.
#[derive(Debug, Clone, Copy)]
pub struct Finished<'a> {
    pub tenant: &'a str,
    pub flow: &'a str,
    pub trigger: Trigger,
    /// The runner's answer: a run, or why none could be made.
    pub outcome: &'a Result<RunReport, String>,
    /// False when a webhook event is retried after a failure that was
    /// already alerted.
    pub first_attempt: bool,
    /// When it finished, in the tenant's zone.
    pub at: &'a Zoned,
}

/// One kind of alert: the alert `job` calls for, if any and not sent before.
type Check = fn(&Alerting, &mut Store, &Finished<'_>) -> Result<Option<Alert>, StoreError>;

/// At most this many records are listed in one "failing records" alert.
const MAX_LISTED: usize = 20;

impl Alerting {
    /// The alerts `job` calls for that were not sent before. A store error
    /// loses the alert it was about (logged), never the others.
    pub fn after_job(&self, store: &mut Store, job: &Finished<'_>) -> Vec<Alert> {
        let checks: [(&str, Check); 3] = [
            ("failed run", Alerting::failed),
            ("held plan", Alerting::held),
            ("failing records", Alerting::failing),
        ];
        let mut out = Vec::new();
        for (what, check) in checks {
            match check(self, store, job) {
                Ok(Some(alert)) => out.push(alert),
                Ok(None) => {}
                Err(e) => tracing::warn!(flow = job.flow, "alerts: cannot check for a {what}: {e}"),
            }
        }
        out
    }

    /// A run that failed, or no run at all.
    fn failed(&self, store: &mut Store, job: &Finished<'_>) -> Result<Option<Alert>, StoreError> {
        if !job.first_attempt {
            return Ok(None);
        }
        let (what, error, link) = match job.outcome {
            Err(e) => (
                "could not be run".to_string(),
                e.clone(),
                format!("{}/", self.base_url),
            ),
            Ok(r) if r.status == RunStatus::Failed => {
                if !store.alert_once(job.flow, AlertKind::Failed, &r.run.to_string())? {
                    return Ok(None);
                }
                let error = store
                    .run_error(r.run)?
                    .unwrap_or_else(|| "(no error recorded)".into());
                let link = format!("{}/runs/{}", self.base_url, r.run);
                (format!("run {} failed", r.run), error, link)
            }
            Ok(_) => return Ok(None),
        };
        Ok(Some(self.alert(
            job,
            &what,
            &format!("Error: {error}"),
            &link,
        )))
    }

    /// A plan the guard held, once per snapshot digest.
    fn held(&self, store: &mut Store, job: &Finished<'_>) -> Result<Option<Alert>, StoreError> {
        let Ok(report) = job.outcome else {
            return Ok(None);
        };
        if report.status != RunStatus::Held {
            return Ok(None);
        }
        let Some(plan) = store.held_plan(job.flow)? else {
            return Ok(None);
        };
        if !store.alert_once(job.flow, AlertKind::Held, &plan.snapshot_digest)? {
            return Ok(None);
        }
        let counts: Vec<String> = report
            .counts
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        let details = format!(
            "The guard stopped it: {}\nPlanned: {}\nNothing was applied; the plan waits for approval.",
            plan.breaches,
            if counts.is_empty() {
                "nothing counted".to_string()
            } else {
                counts.join(", ")
            }
        );
        Ok(Some(self.alert(
            job,
            &format!("the plan of run {} is held", plan.run),
            &details,
            &format!("{}/held/{}", self.base_url, job.flow),
        )))
    }

    /// Records that failed in each of the last `failing_after_runs` full
    /// runs, alerted when the streak reaches the threshold.
    fn failing(&self, store: &mut Store, job: &Finished<'_>) -> Result<Option<Alert>, StoreError> {
        let Ok(report) = job.outcome else {
            return Ok(None);
        };
        if matches!(job.trigger, Trigger::Webhook | Trigger::Single) {
            return Ok(None);
        }
        let n = self.failing_after_runs as usize;
        let runs = store.recent_record_failures(job.flow, n + 1)?;
        if runs.first().is_none_or(|r| r.run != report.run) {
            return Ok(None); // this run does not count (held, aborted…)
        }
        let failing = failing_streaks(&runs, n);
        if failing.is_empty()
            || !store.alert_once(job.flow, AlertKind::Failing, &report.run.to_string())?
        {
            return Ok(None);
        }
        let mut details = format!(
            "{} record(s) failed in each of the last {n} runs (latest: run {}):",
            failing.len(),
            report.run
        );
        for f in failing.iter().take(MAX_LISTED) {
            details.push_str(&format!(
                "\n- record {}: {}: {}",
                f.record, f.what, f.message
            ));
        }
        if failing.len() > MAX_LISTED {
            details.push_str(&format!("\n… and {} more", failing.len() - MAX_LISTED));
        }
        Ok(Some(self.alert(
            job,
            &format!("records keep failing ({n} runs in a row)"),
            &details,
            &format!("{}/runs/{}", self.base_url, report.run),
        )))
    }

    fn alert(&self, job: &Finished<'_>, what: &str, details: &str, link: &str) -> Alert {
        let when = job.at.strftime("%Y-%m-%d %H:%M %Z");
        Alert {
            flow: job.flow.to_string(),
            subject: format!("[muster {}] {}: {what}", job.tenant, job.flow),
            text: format!(
                "muster ({}), flow {}: {what} at {when}.\n{details}\nReview: {link}",
                job.tenant, job.flow
            ),
        }
    }
}

/// The records that failed in each of the newest `n` of `runs` (newest
/// first) but not in the run before them: their streak reaches `n` now, so
/// each is alerted once, not again while it keeps failing. With fewer than
/// `n` runs, none. One entry per record: its failure in the newest run.
pub fn failing_streaks(runs: &[RunFailures], n: usize) -> Vec<RecordFailure> {
    let (Some(newest), true) = (runs.first(), n > 0 && runs.len() >= n) else {
        return Vec::new();
    };
    let failed_in =
        |run: &RunFailures, record: &str| run.failures.iter().any(|f| f.record == record);
    let mut out: Vec<RecordFailure> = Vec::new();
    for f in &newest.failures {
        let streak = runs[..n].iter().all(|r| failed_in(r, &f.record));
        let longer = runs.get(n).is_some_and(|r| failed_in(r, &f.record));
        if streak && !longer && !out.iter().any(|o| o.record == f.record) {
            out.push(f.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::RunId;

    fn run(id: i64, records: &[&str]) -> RunFailures {
        RunFailures {
            run: RunId(id),
            failures: records
                .iter()
                .map(|r| RecordFailure {
                    record: r.to_string(),
                    what: "email".into(),
                    message: format!("bad email for {r}"),
                })
                .collect(),
        }
    }

    #[test]
    fn a_streak_is_reported_when_it_reaches_n_and_not_after() {
        // Newest first. "a" fails in 3 runs, the run before did not fail it.
        let runs = [
            run(4, &["a", "b", "a"]),
            run(3, &["a", "b"]),
            run(2, &["a"]),
            run(1, &["c"]),
        ];
        let got: Vec<String> = failing_streaks(&runs, 3)
            .into_iter()
            .map(|f| f.record)
            .collect();
        assert_eq!(got, vec!["a"]);
        // The next run, "a" still failing: its streak is 4, not reported again.
        let runs = [
            run(5, &["a"]),
            run(4, &["a", "b"]),
            run(3, &["a", "b"]),
            run(2, &["a"]),
        ];
        assert!(failing_streaks(&runs, 3).is_empty());
        // Only n runs exist so far: a streak of n counts.
        assert_eq!(failing_streaks(&runs[1..3], 2).len(), 2);
        assert!(failing_streaks(&runs[..1], 2).is_empty());
        assert!(failing_streaks(&[], 1).is_empty());
    }
}
