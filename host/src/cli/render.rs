//! What the commands print: plans and runs for people, and the stable JSON
//! documented in `docs/plan-json.md`.

use std::fmt::Write as _;

use muster_core::present::write_details;
use muster_core::{ActionKind, Step};
use serde_json::{Value, json};

use crate::engine::{Outcome, RunReport};
use crate::store::RunSummary;

/// The version tag of the run JSON (`sync --json`, `apply --json`).
pub const RUN_FORMAT: &str = "muster-run/1";
/// The version tag of `history --json`.
pub const HISTORY_FORMAT: &str = "muster-history/1";

fn symbol(kind: ActionKind) -> char {
    match kind {
        ActionKind::CreateGroup | ActionKind::Create | ActionKind::AddMembers => '+',
        ActionKind::Deactivate | ActionKind::RemoveMembers => '-',
        ActionKind::Skip => '.',
        ActionKind::Conflict => '!',
        _ => '~',
    }
}

fn ids(step: &Step) -> String {
    match (&step.source_id, &step.target_id) {
        (Some(s), Some(t)) => format!(" (source {s} -> target {t})"),
        (Some(s), None) => format!(" (source {s})"),
        (None, Some(t)) => format!(" (target {t})"),
        (None, None) => String::new(),
    }
}

/// Steps grouped by action kind, in plan order, each with its reason,
/// changes, row changes and members — people and groups by name.
pub fn steps(steps: &[Step]) -> String {
    let mut out = String::new();
    if steps.is_empty() {
        out.push_str("No changes. The target matches the source.\n");
        return out;
    }
    let mut kinds: Vec<ActionKind> = Vec::new();
    for s in steps {
        if !kinds.contains(&s.kind) {
            kinds.push(s.kind);
        }
    }
    for kind in kinds {
        let group: Vec<&Step> = steps.iter().filter(|s| s.kind == kind).collect();
        let _ = writeln!(out, "{} ({}):", kind, group.len());
        for s in group {
            let _ = writeln!(out, "  {} {}{}", symbol(s.kind), s.label, ids(s));
            let _ = writeln!(out, "      because {}", s.explanation);
            // Names, not ids: the core's presentation of changes, rows
            // and members, shared with the plan's `Display`.
            let _ = write_details(&mut out, s, "      ");
            if !s.carries.is_empty() {
                let names: Vec<String> = s.carries.iter().map(ToString::to_string).collect();
                let _ = writeln!(
                    out,
                    "      also writes {} (the target requires it to create an account; not owned by this flow)",
                    names.join(", ")
                );
            }
        }
    }
    out
}

fn counts_line(counts: &std::collections::BTreeMap<String, u64>) -> String {
    if counts.is_empty() {
        return "nothing".into();
    }
    counts
        .iter()
        .map(|(k, n)| format!("{n} {k}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A run (or plan) for people.
pub fn human(report: &RunReport) -> String {
    let mut out = String::new();
    let run = report.run.map(|r| format!(", run {r}")).unwrap_or_default();
    let _ = writeln!(out, "Flow {} ({}{run})", report.flow, report.today);
    if !report.recovered.is_empty() {
        let r = &report.recovered;
        let _ = writeln!(
            out,
            "Recovered from an interrupted run: {} aborted run(s); journal entries {} done, {} not applied, {} unknown.",
            r.aborted_runs, r.done, r.failed, r.unknown
        );
    }
    for u in &report.unsettled {
        let _ = writeln!(out, "Note: {u}.");
    }
    out.push('\n');
    out.push_str(&steps(&report.steps));
    let _ = writeln!(out, "\nPlan: {}.", counts_line(&report.planned_counts()));
    if !report.breaches.is_empty() {
        let held = report.outcome == Outcome::Held;
        let _ = writeln!(
            out,
            "{}",
            if held {
                "HELD by the guard (nothing was applied):"
            } else {
                "Over the guard's thresholds:"
            }
        );
        for b in &report.breaches {
            let _ = writeln!(out, "  - {b}");
        }
    }
    if !report.problems.is_empty() {
        let _ = writeln!(out, "\nProblems in the data ({}):", report.problems.len());
        for p in &report.problems {
            let _ = writeln!(out, "  - {p}");
        }
    }
    match report.outcome {
        Outcome::Applied => {
            let _ = writeln!(out, "\nApplied: {}.", counts_line(&report.applied.counts));
            if !report.applied.failures.is_empty() {
                let _ = writeln!(out, "Not applied ({}):", report.applied.failures.len());
                for f in &report.applied.failures {
                    let _ = writeln!(
                        out,
                        "  ! {} {}{}: {}",
                        f.step.kind,
                        f.step.label,
                        ids(&f.step),
                        f.error
                    );
                }
            }
        }
        Outcome::NoChanges => out.push_str("\nNothing to apply.\n"),
        Outcome::Planned | Outcome::Held => {}
    }
    out
}

/// [`human`], coloured for a terminal: additions green, removals red,
/// changes yellow, conflicts magenta, a held plan in bold red.
pub fn human_colored(report: &RunReport) -> String {
    colorize(&human(report))
}

fn colorize(text: &str) -> String {
    const RESET: &str = "\x1b[0m";
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for line in text.lines() {
        let colour = match line.trim_start().chars().next() {
            _ if line.starts_with("HELD") => Some("\x1b[1;31m"),
            Some('+') if line.starts_with("  + ") => Some("\x1b[32m"),
            Some('-') if line.starts_with("  - ") && !line.contains(" > limit") => Some("\x1b[31m"),
            Some('~') if line.starts_with("  ~ ") => Some("\x1b[33m"),
            Some('!') => Some("\x1b[35m"),
            _ => None,
        };
        match colour {
            Some(c) => {
                out.push_str(c);
                out.push_str(line);
                out.push_str(RESET);
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

/// Pretty JSON with a trailing newline.
pub fn json<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_string_pretty(value) {
        Ok(mut s) => {
            s.push('\n');
            s
        }
        Err(e) => format!("{{\"error\": {:?}}}\n", e.to_string()),
    }
}

/// The result of `sync --json` / `apply --json`.
pub fn run_value(report: &RunReport) -> Value {
    json!({
        "format": RUN_FORMAT,
        "flow": report.flow,
        "run": report.run.map(|r| r.0),
        "outcome": report.outcome,
        "today": report.today.to_string(),
        "snapshot": report.digest.0,
        "planned": report.planned_counts(),
        "breaches": report.breaches,
        "steps": report.steps,
        "applied": report.applied.counts,
        "failures": report.applied.failures.iter().map(|f| json!({
            "step": f.step,
            "error": f.error,
            "skipped": f.skipped,
        })).collect::<Vec<_>>(),
        "aborted": report.applied.aborted,
        "problems": report.problems.iter().map(|p| json!({
            "side": p.side.as_str(),
            "plugin": p.plugin,
            "record": p.record,
            "field": p.field,
            "message": p.message,
        })).collect::<Vec<_>>(),
        "recovered": {
            "aborted_runs": report.recovered.aborted_runs,
            "done": report.recovered.done,
            "failed": report.recovered.failed,
            "unknown": report.recovered.unknown,
        },
    })
}

pub fn run_json(report: &RunReport) -> String {
    json(&run_value(report))
}

/// `history` for people.
pub fn history(runs: &[RunSummary]) -> String {
    let mut out = String::new();
    if runs.is_empty() {
        out.push_str("No runs yet.\n");
    }
    for r in runs {
        let undoes = r.undoes.map(|u| format!(" of run {u}")).unwrap_or_default();
        let _ = writeln!(
            out,
            "run {} {} {}{undoes} {} started {}{} — {}",
            r.id,
            r.flow,
            r.trigger.as_str(),
            r.status,
            r.started_at,
            r.finished_at
                .as_deref()
                .map(|f| format!(", finished {f}"))
                .unwrap_or_default(),
            counts_line(&r.counts)
        );
        if let Some(e) = &r.error {
            let _ = writeln!(out, "  error: {e}");
        }
        for p in &r.problems {
            let _ = writeln!(
                out,
                "  problem: {} record {} (plugin `{}`): field `{}`: {}",
                p.side, p.record, p.plugin, p.field, p.message
            );
        }
        for n in &r.notes {
            let _ = writeln!(out, "  note: {n}");
        }
        for j in &r.journal {
            // A membership call is about one member: say which, or the
            // lines of a team's calls all look the same.
            let members = if j.step.members.is_empty() {
                String::new()
            } else {
                let names: Vec<&str> = j
                    .step
                    .members
                    .iter()
                    .map(|m| j.step.member_names.get(m).unwrap_or(m).as_str())
                    .collect();
                format!(" member {}", names.join(", "))
            };
            let _ = writeln!(
                out,
                "  [{}] {} {}{}{members}{}",
                j.state,
                j.kind,
                j.step.label,
                ids(&j.step),
                j.error
                    .as_deref()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            );
        }
    }
    out
}

/// `history --json`.
pub fn history_json(runs: &[RunSummary]) -> String {
    let runs: Vec<Value> = runs
        .iter()
        .map(|r| {
            json!({
                "run": r.id.0,
                "flow": r.flow,
                "trigger": r.trigger.as_str(),
                "undoes": r.undoes.map(|u| u.0),
                "status": r.status.as_str(),
                "started_at": r.started_at,
                "finished_at": r.finished_at,
                "counts": r.counts,
                "error": r.error,
                "notes": r.notes,
                "journal": r.journal.iter().map(|j| json!({
                    "seq": j.seq,
                    "kind": j.kind.name(),
                    "state": j.state.as_str(),
                    "source_id": j.source_id,
                    "target_id": j.target_id,
                    "produced_target_id": j.produced_target_id,
                    "error": j.error,
                    "step": j.step,
                })).collect::<Vec<_>>(),
                "problems": r.problems.iter().map(|p| json!({
                    "side": p.side,
                    "plugin": p.plugin,
                    "record": p.record,
                    "field": p.field,
                    "message": p.message,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    json(&json!({ "format": HISTORY_FORMAT, "runs": runs }))
}

#[cfg(test)]
mod tests {
    use super::colorize;

    #[test]
    fn colours_follow_the_action_symbols() {
        let text = "Create (1):\n  + Ana (source 1)\n      because new\n  - Bo (target 2)\n  ! Cy\nHELD by the guard\n  - 30 deactivate > limit 25\n";
        let out = colorize(text);
        assert!(out.contains("\x1b[32m  + Ana (source 1)\x1b[0m"));
        assert!(out.contains("\x1b[31m  - Bo (target 2)\x1b[0m"));
        assert!(out.contains("\x1b[35m  ! Cy\x1b[0m"));
        assert!(out.contains("\x1b[1;31mHELD by the guard\x1b[0m"));
        // Breach lines and explanations stay plain.
        assert!(out.contains("\n  - 30 deactivate > limit 25\n"));
        assert!(out.contains("\n      because new\n"));
    }
}
