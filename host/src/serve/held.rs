//! Held plans in the browser: the review page, **Approve** and **Reject**.
//!
//! - `GET /held/{flow}` shows the pending plan the way `muster plan` prints
//!   it (grouped by action, each step with its reason: [`plan_html`] over
//!   [`crate::cli::render::steps`]), with its counts, the guard thresholds
//!   it breached, when and by which run it was held, and its snapshot
//!   digest. The Approve and Reject forms carry the plan's id and digest.
//! - **Approve** (`POST …/approve`) is refused (`409`, nothing run) unless
//!   that very plan is still pending with that digest — so approving twice,
//!   or a plan replaced or rejected meanwhile, is refused. Otherwise it is
//!   queued for the worker (one job at a time, like every run of `serve`),
//!   which checks again and calls [`Runner::approve`](super::Runner::approve):
//!   the engine applies the plan only if the data has not moved since, and
//!   audits the approval with the admin's name and the time. The answer
//!   waits for the run (up to [`ServeConfig::approve_wait`](super::ServeConfig::approve_wait)).
//! - **Reject** retires the plan without applying it, audited
//!   ([`Store::reject_held`]).

use std::fmt::Write as _;
use std::time::Instant;

use super::auth::{self, Form, Session};
use super::http::{Answer, Head, html};
use super::page::{self as shell, escape};
use super::{Job, RunReport, Shared, lock};
use crate::store::{HeldPlan, HeldPlanId, HeldState, RunStatus, Store, StoreError};

/// How an approval ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Approval {
    /// The reviewed plan was applied, in `report.run`.
    Applied(RunReport),
    /// The data moved since the plan was made, so the reviewed plan was not
    /// applied; the run made a fresh plan, which the guard held again
    /// (`RunStatus::Held`) or, within its thresholds, applied.
    Changed(RunReport),
    /// The plan is not pending any more (why, for people).
    NotPending(String),
    /// No run could be made (why).
    Failed(String),
}

/// Why a decision about a held plan is refused before anything runs.
#[derive(Debug, thiserror::Error)]
enum Refused {
    #[error("flow `{0}` has no held plan {1}")]
    Unknown(String, HeldPlanId),
    #[error("{0}")]
    NotPending(String),
    #[error(
        "this page showed a plan with another digest than held plan {0} has; open the plan again"
    )]
    Digest(HeldPlanId),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Refused {
    fn status(&self) -> u16 {
        match self {
            Refused::Unknown(..) => 404,
            Refused::NotPending(_) | Refused::Digest(_) => 409,
            Refused::Store(_) => 500,
        }
    }
}

/// What became of a plan that is not pending, for people.
fn fate(plan: &HeldPlan) -> String {
    let at = |t: &Option<String>| t.clone().unwrap_or_else(|| "-".into());
    match plan.state() {
        HeldState::Pending => format!("held plan {} is still pending", plan.id),
        HeldState::Approved => format!(
            "held plan {} was already approved by {} at {}; a plan is approved once",
            plan.id,
            plan.approved_by.as_deref().unwrap_or("-"),
            at(&plan.approved_at)
        ),
        HeldState::Rejected => format!(
            "held plan {} was rejected by {} at {}",
            plan.id,
            plan.rejected_by.as_deref().unwrap_or("-"),
            at(&plan.superseded_at)
        ),
        HeldState::Superseded => format!(
            "held plan {} was replaced at {}: a newer run made a fresh plan",
            plan.id,
            at(&plan.superseded_at)
        ),
    }
}

/// Held plan `id` of `flow`, if it is still pending with `digest`.
fn still_pending(
    store: &Store,
    flow: &str,
    id: HeldPlanId,
    digest: &str,
) -> Result<HeldPlan, Refused> {
    let plan = match store.held_plan_by_id(flow, id) {
        Ok(Some(p)) => p,
        Ok(None) | Err(StoreError::UnknownFlow(_)) => {
            return Err(Refused::Unknown(flow.into(), id));
        }
        Err(e) => return Err(e.into()),
    };
    if plan.state() != HeldState::Pending {
        return Err(Refused::NotPending(fate(&plan)));
    }
    if plan.snapshot_digest != digest {
        return Err(Refused::Digest(id));
    }
    Ok(plan)
}

/// The worker's side of an approval: checks again (a job queued earlier
/// may have decided the plan), runs it, and tells whether the reviewed
/// plan is the one that was applied.
pub(super) fn run_approval(
    shared: &Shared,
    flow: &str,
    id: HeldPlanId,
    digest: &str,
    who: &str,
) -> Approval {
    if let Err(refused) = still_pending(&lock(&shared.store), flow, id, digest) {
        return match refused {
            Refused::Store(e) => Approval::Failed(e.to_string()),
            other => Approval::NotPending(other.to_string()),
        };
    }
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        shared.runner.approve(flow, digest, who)
    }))
    .unwrap_or_else(|_| Err(format!("the approval run of flow `{flow}` panicked")));
    let report = match outcome {
        Ok(r) => r,
        Err(e) => return Approval::Failed(e),
    };
    let applied = lock(&shared.store)
        .held_plan_by_id(flow, id)
        .ok()
        .flatten()
        .is_some_and(|p| p.state() == HeldState::Approved);
    if applied {
        Approval::Applied(report)
    } else {
        Approval::Changed(report)
    }
}

/// The plan as the CLI prints it, as HTML: each action group a heading,
/// its steps (label, ids, reason, changes) preformatted. Every character
/// is escaped: labels and values come from the vendors.
pub(crate) fn plan_html(steps: &[muster_core::Step]) -> String {
    let text = crate::cli::render::steps(steps);
    let mut h = String::new();
    let mut open = false;
    for line in text.lines() {
        if line.starts_with(' ') {
            if !open {
                h.push_str("<pre>");
                open = true;
            }
            let _ = writeln!(h, "{}", escape(line.strip_prefix("  ").unwrap_or(line)));
        } else {
            if open {
                h.push_str("</pre>");
                open = false;
            }
            let _ = write!(h, "<h3>{}</h3>", escape(line));
        }
    }
    if open {
        h.push_str("</pre>");
    }
    h
}

fn counts_html(plan: &HeldPlan) -> String {
    let counts = crate::engine::apply::count_steps(&plan.steps);
    let mut h = String::from("<table><tr><th>action</th><th>people or groups</th></tr>");
    for (kind, n) in &counts {
        let _ = write!(h, "<tr><td>{}</td><td>{n}</td></tr>", escape(kind));
    }
    h.push_str("</table>");
    h
}

fn is_flow(shared: &Shared, flow: &str) -> bool {
    shared.cfg.flows.iter().any(|f| f.name == flow)
}

/// A page with a message, a link back and the signed-in bar.
pub(super) fn message(
    shared: &Shared,
    status: u16,
    session: &Session,
    title: &str,
    body: &str,
) -> Answer {
    let body = format!(
        "{}{body}<p><a href=\"/\">Back to the status page</a></p>",
        auth::signed_in_bar(session)
    );
    html(status, shell::page(&shared.cfg.tenant, title, &body))
}

/// `GET /held/{flow}`: the pending plan for review.
pub(super) fn page(shared: &Shared, head: &Head, flow: &str) -> Answer {
    let session = match auth::admin(shared, head) {
        Ok(s) => s,
        Err(refused) => return refused,
    };
    let held = if is_flow(shared, flow) {
        lock(&shared.store).held_plan(flow)
    } else {
        Ok(None)
    };
    let plan = match held {
        Ok(Some(p)) => p,
        Ok(None) | Err(StoreError::UnknownFlow(_)) => {
            let text = format!(
                "<p>No plan of flow <b>{}</b> is waiting for approval.</p>",
                escape(flow)
            );
            return message(shared, 404, &session, "Nothing to review", &text);
        }
        Err(e) => {
            let text = format!("<p class=\"failed\">{}</p>", escape(&e.to_string()));
            return message(shared, 500, &session, "Held plan unreadable", &text);
        }
    };
    html(200, review_page(shared, &session, &plan))
}

fn review_page(shared: &Shared, session: &Session, plan: &HeldPlan) -> String {
    let e = escape;
    let flow = e(&plan.flow);
    let hidden = format!(
        "{}<input type=\"hidden\" name=\"plan\" value=\"{}\">\
         <input type=\"hidden\" name=\"digest\" value=\"{}\">",
        auth::csrf_input(session),
        plan.id,
        e(&plan.snapshot_digest)
    );
    let body = format!(
        "{bar}<p class=\"held\">The guard <b>held</b> this plan of flow <b>{flow}</b> \
         (run {run}, {created}) because: {breaches}. Nothing in it has been applied.</p>\
         {counts}<p><small>Plan {id} · made from data with digest <code id=\"digest\">{digest}</code>. \
         Approving applies exactly this plan, and is refused if the people or accounts \
         changed since it was made.</small></p>\
         <div class=\"actions\">\
         <form method=\"post\" action=\"/held/{flow}/approve\">{hidden}\
         <button type=\"submit\" id=\"approve\">Approve and apply</button></form>\
         <form method=\"post\" action=\"/held/{flow}/reject\">{hidden}\
         <button type=\"submit\" id=\"reject\">Reject</button></form></div>\
         <h2>The plan</h2>{steps}<p><a href=\"/\">Back to the status page</a></p>",
        bar = auth::signed_in_bar(session),
        run = plan.run,
        created = e(&plan.created_at),
        breaches = e(&plan.breaches),
        counts = counts_html(plan),
        id = plan.id,
        digest = e(&plan.snapshot_digest),
        steps = plan_html(&plan.steps),
    );
    shell::page(
        &shared.cfg.tenant,
        &format!("Held plan {} of {}", plan.id, plan.flow),
        &body,
    )
}

/// The plan id and digest an Approve or Reject form names.
fn decision(form: &Form) -> Option<(HeldPlanId, &str)> {
    let id = form.get("plan")?.parse().ok()?;
    Some((HeldPlanId(id), form.get("digest").unwrap_or("")))
}

/// `POST /held/{flow}/approve`.
pub(super) fn approve(shared: &Shared, head: &Head, flow: &str, form: &Form) -> Answer {
    let session = match auth::check_form(shared, head, form) {
        Ok(s) => s,
        Err(refused) => return refused,
    };
    let Some((id, digest)) = decision(form) else {
        let text = "<p>The form names no held plan (field <code>plan</code>).</p>";
        return message(shared, 400, &session, "Bad request", text);
    };
    if !is_flow(shared, flow) {
        let refused = Refused::Unknown(flow.into(), id);
        return refusal(shared, &session, &refused);
    }
    if let Err(refused) = still_pending(&lock(&shared.store), flow, id, digest) {
        return refusal(shared, &session, &refused);
    }
    let ticket = {
        let mut q = lock(&shared.queue);
        q.next_ticket += 1;
        q.next_ticket
    };
    tracing::info!(flow, plan = %id, who = %session.who, "muster serve: a held plan was approved");
    shared.enqueue(Job::Approve {
        ticket,
        flow: flow.into(),
        plan: id,
        digest: digest.into(),
        who: session.who.clone(),
    });
    match wait_for(shared, ticket) {
        Some(outcome) => outcome_page(shared, &session, flow, &outcome),
        None => message(
            shared,
            202,
            &session,
            "Approved: still running",
            "<p>The approved plan is being applied. The status page shows how the run ends.</p>",
        ),
    }
}

/// Waits for the worker's outcome of `ticket`, up to the approval wait.
fn wait_for(shared: &Shared, ticket: u64) -> Option<Approval> {
    wait_for_job(shared, |q| q.approvals.remove(&ticket))
}

/// Waits, up to the approval wait, until `take` finds a queued job's
/// outcome in the queue (approvals and the Undo button share this).
pub(super) fn wait_for_job<T>(
    shared: &Shared,
    mut take: impl FnMut(&mut super::Queue) -> Option<T>,
) -> Option<T> {
    let deadline = Instant::now() + shared.cfg.approve_wait;
    let mut q = lock(&shared.queue);
    loop {
        if let Some(outcome) = take(&mut q) {
            return Some(outcome);
        }
        let left = deadline.checked_duration_since(Instant::now())?;
        if shared.stop.load(std::sync::atomic::Ordering::SeqCst) {
            return None;
        }
        q = shared
            .changed
            .wait_timeout(q, left)
            .unwrap_or_else(|p| p.into_inner())
            .0;
    }
}

fn refusal(shared: &Shared, session: &Session, refused: &Refused) -> Answer {
    let text = format!(
        "<p class=\"failed\" id=\"refused\">Refused: {}. Nothing was changed.</p>",
        escape(&refused.to_string())
    );
    message(shared, refused.status(), session, "Refused", &text)
}

fn counts_line(report: &RunReport) -> String {
    if report.counts.is_empty() {
        return "no changes".into();
    }
    report
        .counts
        .iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn outcome_page(shared: &Shared, session: &Session, flow: &str, outcome: &Approval) -> Answer {
    let e = escape;
    match outcome {
        Approval::Applied(r) => {
            let text = format!(
                "<p class=\"{status}\" id=\"outcome\">Approved by {who}: run {run} applied the plan \
                 and ended <b>{status}</b> ({counts}).</p>",
                who = e(&session.who),
                run = r.run,
                status = r.status.as_str(),
                counts = e(&counts_line(r)),
            );
            let code = if r.status == RunStatus::Done {
                200
            } else {
                500
            };
            message(shared, code, session, "Approved", &text)
        }
        Approval::Changed(r) if r.status == RunStatus::Held => {
            let text = format!(
                "<p class=\"failed\" id=\"outcome\">Not applied: the people or accounts changed since \
                 this plan was made. Run {} made a fresh plan, which the guard holds: \
                 <a href=\"/held/{}\">review the fresh plan</a>.</p>",
                r.run,
                e(flow)
            );
            message(shared, 409, session, "Refused: the data changed", &text)
        }
        Approval::Changed(r) => {
            let text = format!(
                "<p class=\"failed\" id=\"outcome\">Not applied as reviewed: the people or accounts \
                 changed since this plan was made. The fresh plan was within the guard's limits, \
                 so run {} applied it like a scheduled run would ({}).</p>",
                r.run,
                e(&counts_line(r))
            );
            message(shared, 409, session, "Refused: the data changed", &text)
        }
        Approval::NotPending(why) => {
            let refused = Refused::NotPending(why.clone());
            refusal(shared, session, &refused)
        }
        Approval::Failed(why) => {
            let text = format!(
                "<p class=\"failed\" id=\"outcome\">The plan could not be applied: {}. It is still \
                 held.</p>",
                e(why)
            );
            message(shared, 500, session, "Failed", &text)
        }
    }
}

/// `POST /held/{flow}/reject`.
pub(super) fn reject(shared: &Shared, head: &Head, flow: &str, form: &Form) -> Answer {
    let session = match auth::check_form(shared, head, form) {
        Ok(s) => s,
        Err(refused) => return refused,
    };
    let Some((id, digest)) = decision(form) else {
        let text = "<p>The form names no held plan (field <code>plan</code>).</p>";
        return message(shared, 400, &session, "Bad request", text);
    };
    let mut store = lock(&shared.store);
    if let Err(refused) = still_pending(&store, flow, id, digest) {
        drop(store);
        return refusal(shared, &session, &refused);
    }
    let rejected = store.reject_held(flow, id, &session.who);
    drop(store);
    match rejected {
        Ok(plan) => {
            tracing::info!(flow, plan = %id, who = %session.who, "muster serve: a held plan was rejected");
            let text = format!(
                "<p id=\"outcome\">Rejected by {}: held plan {} will not be applied. The next run \
                 makes a fresh plan, which the guard holds again if it still breaches a threshold.</p>",
                escape(&session.who),
                plan.id
            );
            message(shared, 200, &session, "Rejected", &text)
        }
        Err(StoreError::NoHeldPlan(_)) => {
            let why = lock(&shared.store)
                .held_plan_by_id(flow, id)
                .ok()
                .flatten()
                .map_or_else(|| format!("held plan {id} is not pending"), |p| fate(&p));
            refusal(shared, &session, &Refused::NotPending(why))
        }
        Err(e) => refusal(shared, &session, &Refused::Store(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_render_grouped_and_escaped() {
        let step: muster_core::Step = serde_json::from_value(serde_json::json!({
            "kind": "deactivate", "source_id": null, "target_id": "t<1>",
            "label": "Ada <script>", "reason": "left_source",
            "explanation": "is no longer in the source & left"
        }))
        .expect("a step");
        let h = plan_html(&[step]);
        assert!(h.starts_with("<h3>deactivate (1):</h3><pre>"), "{h}");
        assert!(h.contains("Ada &lt;script&gt;"), "{h}");
        assert!(h.contains("target t&lt;1&gt;"), "{h}");
        assert!(
            h.contains("because is no longer in the source &amp; left"),
            "{h}"
        );
        assert!(!h.contains("<script>"), "{h}");
    }
}
