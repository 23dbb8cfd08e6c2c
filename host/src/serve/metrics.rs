//! `GET /metrics`: the Prometheus text exposition format (version 0.0.4).
//!
//! Computed on each scrape from the store ([`Store::metrics`], a few
//! aggregate queries: counts since the database was created, so they are
//! counters that survive restarts) and from this process's counters (the
//! rate-limit waits of its runs, [`Runner::rate_limit_waits`]).
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `muster_runs_total` | counter | `flow`, `outcome` (`done`, `failed`, `held`, `aborted`) |
//! | `muster_actions_total` | counter | `flow`, `kind` (actions the target confirmed) |
//! | `muster_failed_records_total` | counter | `flow` (actions the target refused) |
//! | `muster_left_out_records_total` | counter | `flow`, `kind` (`skip`, `conflict`) |
//! | `muster_run_duration_seconds` | gauge | `flow` (the last finished run) |
//! | `muster_last_success_timestamp_seconds` | gauge | `flow` |
//! | `muster_seconds_since_last_success` | gauge | `flow` |
//! | `muster_rate_limit_wait_seconds_total` | counter | `connection` (since this process started) |
//!
//! [`Store::metrics`]: crate::store::Store::metrics
//! [`Runner::rate_limit_waits`]: super::Runner::rate_limit_waits

use std::fmt::Write as _;

use jiff::Timestamp;

use super::{Shared, lock};
use crate::store::StoreError;

/// The exposition format's content type.
pub(super) const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// One metric family being written.
struct Family<'o> {
    out: &'o mut String,
    name: &'static str,
}

impl<'o> Family<'o> {
    fn new(out: &'o mut String, name: &'static str, help: &str, kind: &str) -> Family<'o> {
        let _ = writeln!(out, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(out, "# TYPE {name} {kind}");
        Family { out, name }
    }

    fn sample(&mut self, labels: &[(&str, &str)], value: f64) {
        self.out.push_str(self.name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                let sep = if i > 0 { "," } else { "" };
                let _ = write!(self.out, "{sep}{k}=\"{}\"", escape_label(v));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }
}

/// A label value: backslash, double quote and line feed escaped.
fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A `# HELP` text: backslash and line feed escaped.
fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

/// Seconds since the epoch of a stored time, if it is one.
fn seconds(stored: &str) -> Option<f64> {
    stored
        .parse::<Timestamp>()
        .ok()
        .map(|t| t.as_millisecond() as f64 / 1000.0)
}

/// The exposition text.
pub(super) fn render(shared: &Shared) -> Result<String, StoreError> {
    let m = lock(&shared.store).metrics()?;
    let now = shared.clock.now().as_millisecond() as f64 / 1000.0;
    let mut out = String::new();
    let per_flow_kind = |out: &mut String, name, help, label, rows: &[(String, String, u64)]| {
        let mut f = Family::new(out, name, help, "counter");
        for (flow, value, n) in rows {
            f.sample(&[("flow", flow), (label, value)], *n as f64);
        }
    };
    per_flow_kind(
        &mut out,
        "muster_runs_total",
        "Finished runs, by flow and outcome.",
        "outcome",
        &m.runs,
    );
    per_flow_kind(
        &mut out,
        "muster_actions_total",
        "Actions the target confirmed, by flow and kind.",
        "kind",
        &m.actions,
    );
    let mut f = Family::new(
        &mut out,
        "muster_failed_records_total",
        "Actions the target refused (records not written), by flow.",
        "counter",
    );
    for flow in &m.flows {
        let n = m.failed.iter().find(|(f, _)| f == flow).map_or(0, |x| x.1);
        f.sample(&[("flow", flow)], n as f64);
    }
    per_flow_kind(
        &mut out,
        "muster_left_out_records_total",
        "Records runs skipped or reported a conflict for, by flow and kind.",
        "kind",
        &m.left_out,
    );
    let mut f = Family::new(
        &mut out,
        "muster_run_duration_seconds",
        "Duration of the flow's last finished run.",
        "gauge",
    );
    for r in &m.last_runs {
        if let (Some(a), Some(b)) = (seconds(&r.started_at), seconds(&r.finished_at)) {
            f.sample(&[("flow", &r.flow)], (b - a).max(0.0));
        }
    }
    let success: Vec<(&str, f64)> = m
        .last_success
        .iter()
        .filter_map(|(flow, at)| Some((flow.as_str(), seconds(at)?)))
        .collect();
    let mut f = Family::new(
        &mut out,
        "muster_last_success_timestamp_seconds",
        "When the flow's last successful run finished, in seconds since the epoch.",
        "gauge",
    );
    for (flow, at) in &success {
        f.sample(&[("flow", flow)], *at);
    }
    let mut f = Family::new(
        &mut out,
        "muster_seconds_since_last_success",
        "Seconds since the flow's last successful run finished.",
        "gauge",
    );
    for (flow, at) in &success {
        f.sample(&[("flow", flow)], (now - at).max(0.0));
    }
    let mut f = Family::new(
        &mut out,
        "muster_rate_limit_wait_seconds_total",
        "Time this process's runs waited for a vendor's rate limit, by connection.",
        "counter",
    );
    for (conn, waited) in shared.runner.rate_limit_waits() {
        f.sample(&[("connection", &conn)], waited.as_secs_f64());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_and_help_are_escaped() {
        assert_eq!(escape_label("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
        assert_eq!(escape_help("a\\b\"c\nd"), "a\\\\b\"c\\nd");
        let mut out = String::new();
        Family::new(&mut out, "m_total", "x", "counter").sample(&[("flow", "a\"b")], 2.0);
        assert_eq!(
            out,
            "# HELP m_total x\n# TYPE m_total counter\nm_total{flow=\"a\\\"b\"} 2\n"
        );
    }
}
