//! `GET /search?q=…`: a person's history across runs and flows, newest
//! first — each action, skip and conflict about them with its reason, and a
//! link to its run. The query is a name (or part of one), an email or a
//! source or target id; see [`Store::search_people`](crate::store::Store::search_people)
//! for how it is matched. At most [`MAX_RESULTS`] events are shown.

use std::fmt::Write as _;

use super::Shared;
use super::page::{CLOSE, escape as e, open};
use super::run_page::ids;
use super::views::local_time;
use crate::store::{PersonEvent, PersonEventKind};

/// Events shown for one search.
pub(super) const MAX_RESULTS: usize = 200;

/// The search page's HTML (the form alone for an empty query).
pub(super) fn render(shared: &Shared, query: &str) -> String {
    let title = if query.is_empty() {
        "Find a person".to_string()
    } else {
        format!("History of “{query}”")
    };
    let mut h = open(shared, &title, query);
    if query.is_empty() {
        h.push_str("<p>Type a name, an email or an id above.</p>");
        h.push_str(CLOSE);
        return h;
    }
    let found = super::lock(&shared.store).search_people(query, MAX_RESULTS);
    match found {
        Ok(history) if history.events.is_empty() => {
            h.push_str("<p>No run acted on, skipped or reported anyone matching this.</p>");
        }
        Ok(history) => {
            h.push_str(
                "<table><tr><th>when</th><th>flow</th><th>run</th><th>what</th>\
                 <th>record</th><th>why</th></tr>",
            );
            for ev in &history.events {
                row(&mut h, shared, ev);
            }
            h.push_str("</table>");
            if history.more {
                let _ = write!(
                    h,
                    "<p><small>Only the newest {MAX_RESULTS} are shown: search for an email or an id to narrow it down.</small></p>"
                );
            }
        }
        Err(err) => {
            let _ = write!(
                h,
                "<p class=\"failed\">The history could not be searched: {}</p>",
                e(&err.to_string())
            );
        }
    }
    h.push_str(CLOSE);
    h
}

/// One event: when, where, what happened and why.
fn row(h: &mut String, shared: &Shared, ev: &PersonEvent) {
    let (what, class, label, record, why) = match &ev.what {
        PersonEventKind::Action(j) => {
            let target = j.produced_target_id.as_deref().or(j.target_id.as_deref());
            let why = match &j.error {
                Some(err) => format!("{} — not applied: {err}", j.step.explanation),
                None => j.step.explanation.clone(),
            };
            (
                format!("{} ({})", j.kind.name(), j.state),
                j.state.as_str(),
                j.step.label.as_str(),
                ids(j.source_id.as_deref(), target),
                why,
            )
        }
        PersonEventKind::LeftOut(l) => (
            l.kind.to_string(),
            l.kind.as_str(),
            l.label.as_str(),
            ids(l.source_id.as_deref(), l.target_id.as_deref()),
            l.explanation.clone(),
        ),
    };
    let _ = write!(
        h,
        "<tr class=\"{class}\"><td>{}</td><td>{}</td><td><a href=\"/runs/{}\">{}</a></td><td>{}</td>\
         <td>{}<br><small>{}</small></td><td>{}</td></tr>",
        e(&local_time(shared, &ev.at)),
        e(&ev.flow),
        ev.run,
        ev.run,
        e(&what),
        e(label),
        e(&record),
        e(&why),
    );
}
