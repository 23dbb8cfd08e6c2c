//! The status page, and what every HTML page shares (its top with the
//! search form, its style, [`escape`]); held plans link to their review
//! page when admins are configured. Plain HTML, no script, every value
//! escaped: flow and connection names, errors and counts all come from a
//! config or a vendor and must never be able to inject markup. Every time is
//! shown in the tenant's zone, which the top of the page names.

use std::fmt::Write as _;

use jiff::Timestamp;
use jiff::tz::TimeZone;

use super::auth::{self, Session};
use super::views::local_time;
use super::{Shared, lock};
use crate::store::RunProblem;

/// Escapes text for HTML element content and quoted attribute values.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn local(t: Timestamp, tz: &TimeZone) -> String {
    t.to_zoned(tz.clone())
        .strftime("%Y-%m-%d %H:%M %Z")
        .to_string()
}

const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}\
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:.2em .6em;text-align:left;vertical-align:top}\
.held{background:#fff3cd}.failed,.aborted,.conflict{color:#a00}.done{color:#060}small{color:#666}\
.who{float:right}pre{margin:0;font:12px/1.3 ui-monospace,monospace;white-space:pre-wrap}\
.plan pre{background:#f6f6f6;padding:.6em}\
.actions form{display:inline-block;margin-right:1em}button{font-size:1em;padding:.3em 1em}";

/// A whole page: `body` is HTML its maker escaped; the title is escaped here.
pub(crate) fn page(tenant: &str, title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{} — muster {}</title>\
         <style>{STYLE}</style></head><body><h1>{}</h1>{body}</body></html>\n",
        escape(title),
        escape(tenant),
        escape(title),
    )
}

/// The top of every read-only HTML page: title, tenant, the time zone every
/// time on the page is shown in, a link home and the search form (a plain
/// GET form: no script needed).
pub(super) fn open(shared: &Shared, title: &str, query: &str) -> String {
    let cfg = &shared.cfg;
    let e = escape;
    let mut h = String::new();
    let _ = write!(
        h,
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{} — muster — {}</title><style>{STYLE}</style></head><body>\
         <p><a href=\"/\">muster — {}</a></p>\
         <form method=\"get\" action=\"/search\"><label>Find a person (name, email or id): \
         <input type=\"search\" name=\"q\" value=\"{}\" maxlength=\"{}\"></label> <button>Search</button></form>\
         <h1>{}</h1><p><small>times in {} · now {}</small></p>",
        e(title),
        e(&cfg.tenant),
        e(&cfg.tenant),
        e(query),
        super::views::MAX_QUERY,
        e(title),
        e(&cfg.timezone_name),
        e(&local(shared.clock.now(), &cfg.timezone)),
    );
    h
}

/// The end of every HTML page.
pub(super) const CLOSE: &str = "</body></html>\n";

/// A record a run could not take as it was, in one line: side, record,
/// plugin, field and why. The status page and the run page both print it.
pub(super) fn problem_line(p: &RunProblem) -> String {
    format!(
        "{} record {} (plugin `{}`): field `{}`: {}",
        p.side, p.record, p.plugin, p.field, p.message
    )
}

/// The status page; `session` is the signed-in admin, if any (admin pages
/// configured).
pub(super) fn render(shared: &Shared, session: Option<&Session>) -> String {
    let cfg = &shared.cfg;
    let e = escape;
    let mut h = open(shared, &format!("Status of {}", cfg.tenant), "");
    h.push_str(&session.map(auth::signed_in_bar).unwrap_or_default());
    if cfg.flows.is_empty() {
        h.push_str("<p>No flow is configured.</p>");
    }
    let notes = lock(&shared.queue).notes.clone();
    for flow in &cfg.flows {
        let name = &flow.name;
        let _ = write!(
            h,
            "<h2>{}</h2><p>{} → {}</p><ul>",
            e(name),
            e(&flow.source),
            e(&flow.target)
        );
        match flow.schedule {
            Some(s) => {
                let next = lock(&shared.scheduler)
                    .next_fire(name)
                    .map(|t| local(t, &cfg.timezone))
                    .unwrap_or_else(|| "-".into());
                let _ = write!(
                    h,
                    "<li>schedule: {} · next: {}</li>",
                    e(&s.to_string()),
                    e(&next)
                );
            }
            None => h.push_str("<li>no schedule</li>"),
        }
        if let Some(note) = notes.get(name) {
            let _ = write!(h, "<li>last scheduled run: {}</li>", e(note));
        }
        let store = lock(&shared.store);
        if flow.webhook.is_some() {
            let pending = store
                .inbox_pending(name)
                .map(|p| p.len().to_string())
                .unwrap_or_else(|err| format!("unreadable ({err})"));
            let _ = write!(
                h,
                "<li>webhook: POST /webhooks/{} · pending events: {}</li>",
                e(name),
                e(&pending)
            );
        }
        h.push_str("</ul>");

        match store.held_plan(name) {
            Ok(Some(plan)) => {
                let how = if session.is_some() {
                    format!(
                        "<a href=\"/held/{}\">Review it, then approve or reject it</a>",
                        e(name)
                    )
                } else {
                    format!(
                        "Approve with <code>muster sync --flow {} --approve-held</code>",
                        e(name)
                    )
                };
                let _ = write!(
                    h,
                    "<p class=\"held\">Plan {} of run <a href=\"/runs/{}\">{}</a> is <b>held</b> since {} ({} steps): {}. {how}.</p>",
                    plan.id,
                    plan.run,
                    plan.run,
                    e(&local_time(shared, &plan.created_at)),
                    plan.steps.len(),
                    e(&plan.breaches),
                );
            }
            Ok(None) => {}
            Err(err) => {
                let _ = write!(
                    h,
                    "<p class=\"failed\">held plan unreadable: {}</p>",
                    e(&err.to_string())
                );
            }
        }

        match store.history(name, cfg.page_runs) {
            Ok(runs) if runs.is_empty() => h.push_str("<p>No run yet.</p>"),
            Ok(runs) => {
                h.push_str(
                    "<table><tr><th>run</th><th>trigger</th><th>status</th><th>started</th>\
                     <th>finished</th><th>counts</th><th>error</th></tr>",
                );
                for r in runs {
                    let counts = r
                        .counts
                        .iter()
                        .map(|(k, v)| format!("{k} {v}"))
                        .collect::<Vec<_>>()
                        .join(", ");
                    let status = r.status.as_str();
                    let _ = write!(
                        h,
                        "<tr class=\"{status}\"><td><a href=\"/runs/{}\">{}</a></td><td>{}</td><td>{status}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                        r.id,
                        r.id,
                        r.trigger.as_str(),
                        e(&local_time(shared, &r.started_at)),
                        e(&r.finished_at
                            .as_deref()
                            .map_or_else(|| "-".into(), |t| local_time(shared, t))),
                        e(&counts),
                        e(r.error.as_deref().unwrap_or("")),
                    );
                    // The records the run could not take as they were (record, field,
                    // why), then those it skipped or found in conflict, and why.
                    let problems = r.problems.iter().map(problem_line);
                    let lines: Vec<String> = problems.chain(r.notes.iter().cloned()).collect();
                    if !lines.is_empty() {
                        h.push_str("<tr class=\"notes\"><td></td><td colspan=\"6\"><ul>");
                        for n in &lines {
                            let _ = write!(h, "<li>{}</li>", e(n));
                        }
                        h.push_str("</ul></td></tr>");
                    }
                }
                h.push_str("</table>");
            }
            Err(err) => {
                let _ = write!(
                    h,
                    "<p class=\"failed\">history unreadable: {}</p>",
                    e(&err.to_string())
                );
            }
        }
    }
    h.push_str(CLOSE);
    h
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            escape(r#"<b a='1'>"x" & y</b>"#),
            "&lt;b a=&#39;1&#39;&gt;&quot;x&quot; &amp; y&lt;/b&gt;"
        );
    }
}
