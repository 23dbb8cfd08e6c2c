//! `GET /runs/{id}`: one run, as an admin asks about it — which flow, what
//! started it, when (in the tenant's zone), and every record it touched or
//! passed over with why: the actions (person, ids, changed fields, outcome),
//! the actions the target refused, the records whose data could not be
//! taken, and the skips and conflicts with their reasons in plain words
//! (the core's explanation, the text `muster plan` prints after "because").
//!
//! Each list shows at most [`MAX_ROWS`] records and says how many more
//! there are.

use std::fmt::Write as _;

use muster_core::present::write_details;

use super::Shared;
use super::auth::Session;
use super::page::{CLOSE, escape as e, open, problem_line};
use super::views::local_time;
use crate::store::{
    JournalEntry, JournalState, LeftOut, LeftOutKind, RunId, RunSummary, StoreError,
};

/// Rows shown per list; the rest are counted.
pub(super) const MAX_ROWS: usize = 1000;

/// The run page's status code and HTML.
/// `session`: the signed-in admin, who gets the run's Undo button.
pub(super) fn render(shared: &Shared, id: RunId, session: Option<&Session>) -> (u16, String) {
    let read = {
        let store = super::lock(&shared.store);
        store
            .run_summary(id)
            .and_then(|run| Ok((store.run_left_out(id)?, run)))
    };
    match read {
        Ok((left_out, run)) => (200, run_html(shared, &run, &left_out, session)),
        Err(StoreError::UnknownRun(_)) => {
            let mut h = open(shared, &format!("Run {id}"), "");
            h.push_str("<p>There is no such run.</p>");
            h.push_str(CLOSE);
            (404, h)
        }
        Err(err) => {
            let mut h = open(shared, &format!("Run {id}"), "");
            let _ = write!(
                h,
                "<p class=\"failed\">The run could not be read: {}</p>",
                e(&err.to_string())
            );
            h.push_str(CLOSE);
            (500, h)
        }
    }
}

fn run_html(
    shared: &Shared,
    run: &RunSummary,
    left_out: &[LeftOut],
    session: Option<&Session>,
) -> String {
    let mut h = open(shared, &format!("Run {} of {}", run.id, run.flow), "");
    summary(&mut h, shared, run);
    if let Some(session) = session
        && run.journal.iter().any(|j| j.state == JournalState::Done)
    {
        h.push_str(&super::undo::button(session, run.id));
    }
    actions(&mut h, run);
    let failed: Vec<&JournalEntry> = run
        .journal
        .iter()
        .filter(|j| j.state == JournalState::Failed)
        .collect();
    if !failed.is_empty() {
        let _ = write!(h, "<h2>Not applied ({})</h2><ul>", failed.len());
        for j in failed.iter().take(MAX_ROWS) {
            let _ = write!(
                h,
                "<li class=\"failed\">{} {} ({}): {}</li>",
                e(j.kind.name()),
                e(&j.step.label),
                e(&ids(j.source_id.as_deref(), target_of(j))),
                e(j.error.as_deref().unwrap_or("no error recorded"))
            );
        }
        more(&mut h, failed.len());
        h.push_str("</ul>");
    }
    if !run.problems.is_empty() {
        let _ = write!(
            h,
            "<h2>Data that could not be taken ({})</h2><p><small>These records were held: nothing was written for them.</small></p><ul>",
            run.problems.len()
        );
        for p in run.problems.iter().take(MAX_ROWS) {
            let _ = write!(h, "<li>{}</li>", e(&problem_line(p)));
        }
        more(&mut h, run.problems.len());
        h.push_str("</ul>");
    }
    for kind in [LeftOutKind::Skip, LeftOutKind::Conflict] {
        left_out_list(&mut h, run, left_out, kind);
    }
    h.push_str(CLOSE);
    h
}

/// Flow, trigger, status, times, counts and error.
fn summary(h: &mut String, shared: &Shared, run: &RunSummary) {
    let counts = run
        .counts
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ");
    let finished = run
        .finished_at
        .as_deref()
        .map_or_else(|| "not finished".into(), |t| local_time(shared, t));
    let status = run.status.as_str();
    let _ = write!(
        h,
        "<table><tr><th>flow</th><td>{}</td></tr><tr><th>trigger</th><td>{}</td></tr>\
         <tr><th>status</th><td class=\"{status}\">{status}</td></tr>\
         <tr><th>started</th><td>{}</td></tr><tr><th>finished</th><td>{}</td></tr>\
         <tr><th>counts</th><td>{}</td></tr>",
        e(&run.flow),
        run.trigger.as_str(),
        e(&local_time(shared, &run.started_at)),
        e(&finished),
        e(if counts.is_empty() {
            "nothing"
        } else {
            &counts
        }),
    );
    if let Some(err) = &run.error {
        let _ = write!(
            h,
            "<tr><th>error</th><td class=\"failed\">{}</td></tr>",
            e(err)
        );
    }
    h.push_str("</table>");
}

/// The journaled actions: kind, person and ids, outcome, changes and why.
fn actions(h: &mut String, run: &RunSummary) {
    if run.journal.is_empty() {
        h.push_str("<h2>Actions (0)</h2><p>The run changed nothing in the target.</p>");
        return;
    }
    let _ = write!(
        h,
        "<h2>Actions ({})</h2><table><tr><th>action</th><th>record</th><th>outcome</th>\
         <th>changes</th><th>why</th></tr>",
        run.journal.len()
    );
    for j in run.journal.iter().take(MAX_ROWS) {
        let mut details = String::new();
        let _ = write_details(&mut details, &j.step, "");
        let state = j.state.as_str();
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}<br><small>{}</small></td><td class=\"{state}\">{state}</td>\
             <td><pre>{}</pre></td><td>{}</td></tr>",
            e(j.kind.name()),
            e(&j.step.label),
            e(&ids(j.source_id.as_deref(), target_of(j))),
            e(details.trim_end()),
            e(&j.step.explanation),
        );
    }
    h.push_str("</table>");
    more(h, run.journal.len());
}

/// The skips or the conflicts, with their reasons. Runs recorded before
/// the structured rows existed show their notes instead.
fn left_out_list(h: &mut String, run: &RunSummary, all: &[LeftOut], kind: LeftOutKind) {
    let rows: Vec<&LeftOut> = all.iter().filter(|l| l.kind == kind).collect();
    let title = match kind {
        LeftOutKind::Skip => "Skipped",
        LeftOutKind::Conflict => "Conflicts",
    };
    let counted = run.counts.get(kind.as_str()).copied().unwrap_or(0);
    if rows.is_empty() {
        if counted > 0 {
            // An older run: only its notes say who and why.
            let prefix = format!("{} ", kind.as_str());
            let _ = write!(h, "<h2>{title} ({counted})</h2><ul>");
            for n in run.notes.iter().filter(|n| n.starts_with(&prefix)) {
                let _ = write!(h, "<li>{}</li>", e(n));
            }
            h.push_str("</ul>");
        }
        return;
    }
    let _ = write!(
        h,
        "<h2>{title} ({})</h2><table><tr><th>record</th><th>why</th><th>reason code</th></tr>",
        rows.len()
    );
    for l in rows.iter().take(MAX_ROWS) {
        let _ = write!(
            h,
            "<tr class=\"{}\"><td>{}<br><small>{}</small></td><td>{}</td><td><small>{}</small></td></tr>",
            kind.as_str(),
            e(&l.label),
            e(&ids(l.source_id.as_deref(), l.target_id.as_deref())),
            e(&l.explanation),
            e(&l.reason),
        );
    }
    h.push_str("</table>");
    more(h, rows.len());
}

/// "… and N more" after a list cut at [`MAX_ROWS`].
fn more(h: &mut String, total: usize) {
    if total > MAX_ROWS {
        let _ = write!(h, "<p><small>… and {} more</small></p>", total - MAX_ROWS);
    }
}

/// The target record an entry is about: the one it produced (a create), or
/// the one it acted on.
fn target_of(j: &JournalEntry) -> Option<&str> {
    j.produced_target_id.as_deref().or(j.target_id.as_deref())
}

/// `source 42 → target u-7`, as far as known.
pub(super) fn ids(source: Option<&str>, target: Option<&str>) -> String {
    match (source, target) {
        (Some(s), Some(t)) => format!("source {s} → target {t}"),
        (Some(s), None) => format!("source {s}"),
        (None, Some(t)) => format!("target {t}"),
        (None, None) => String::new(),
    }
}
