//! The **Undo** button beside a run (`POST /runs/{id}/undo`).
//!
//! A click never changes the target by itself: the worker plans the undo
//! of the run ([`Runner::undo`](super::Runner::undo), one job at a time like
//! every run of `serve`) and holds it for review, whatever its size. The
//! admin then lands on the held plan's page (`/held/{flow}`) and approves
//! or rejects it like any held plan; approving applies the undo if the
//! data has not changed since (`muster undo RUN --yes --approve-held`).
//! The request needs a signed-in admin and the form's CSRF token
//! ([`auth::check_form`]), and is audited with the admin's name.

use serde_json::json;

use super::auth::{self, Form, Session};
use super::http::{Answer, Head, see_other};
use super::page::escape;
use super::{Job, RunReport, Shared, held, lock};
use crate::store::{AuditEntry, RunId, RunStatus, StoreError};

/// The button for run `run`, for a page an admin is signed in to.
pub(super) fn button(session: &Session, run: RunId) -> String {
    format!(
        "<form class=\"actions\" method=\"post\" action=\"/runs/{run}/undo\">{}\
         <button>Undo run {run}…</button> <small>plans the inverse of this run and holds it \
         for your review; nothing changes until you approve it</small></form>",
        auth::csrf_input(session)
    )
}

/// `POST /runs/{id}/undo`: hold the undo of `run` for review.
pub(super) fn request(shared: &Shared, head: &Head, run: RunId, form: &Form) -> Answer {
    let session = match auth::check_form(shared, head, form) {
        Ok(s) => s,
        Err(refused) => return refused,
    };
    let flow = match lock(&shared.store).run_record(run) {
        Ok(record) => record.flow,
        Err(StoreError::UnknownRun(_)) => {
            return message(
                shared,
                404,
                &session,
                "No such run",
                "There is no such run.",
            );
        }
        Err(e) => return message(shared, 500, &session, "Undo failed", &e.to_string()),
    };
    if !shared.cfg.flows.iter().any(|f| f.name == flow) {
        let why = format!("Run {run} belongs to flow `{flow}`, which is not configured.");
        return message(shared, 404, &session, "No such flow", &why);
    }
    audit(shared, &flow, run, &session);
    let ticket = {
        let mut q = lock(&shared.queue);
        q.next_ticket += 1;
        q.next_ticket
    };
    tracing::info!(flow, %run, who = %session.who, "muster serve: undo requested");
    shared.enqueue(Job::Undo {
        ticket,
        flow: flow.clone(),
        run,
    });
    match held::wait_for_job(shared, |q| q.undos.remove(&ticket)) {
        Some(Ok(report)) if report.status == RunStatus::Held => see_other(&format!("/held/{flow}")),
        Some(Ok(report)) => {
            let text = format!("Run {run} left nothing to undo (undo run {}).", report.run);
            message(shared, 200, &session, "Nothing to undo", &text)
        }
        Some(Err(why)) => message(shared, 409, &session, "Cannot undo", &why),
        None => message(
            shared,
            202,
            &session,
            "Undo: still planning",
            "The undo is being planned. The status page shows its held plan when it is ready.",
        ),
    }
}

/// Who asked for the undo of which run, in the audit log.
fn audit(shared: &Shared, flow: &str, run: RunId, session: &Session) {
    let after = json!({ "requested_by": session.who, "undo_of_run": run.0 });
    let entry = AuditEntry {
        flow: Some(flow),
        run: Some(run),
        what: "undo_requested",
        subject: flow,
        before: None,
        after: Some(&after),
    };
    if let Err(e) = lock(&shared.store).audit(&entry) {
        tracing::warn!(flow, %run, "muster serve: the undo request was not audited: {e}");
    }
}

/// The worker's side: plan the undo and hold it.
pub(super) fn run_undo(shared: &Shared, flow: &str, run: RunId) -> Result<RunReport, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        shared.runner.undo(flow, run)
    }))
    .unwrap_or_else(|_| Err(format!("the undo of run {run} of flow `{flow}` panicked")))
}

/// A message page: `text` is plain text, escaped here.
fn message(shared: &Shared, status: u16, session: &Session, title: &str, text: &str) -> Answer {
    held::message(
        shared,
        status,
        session,
        title,
        &format!("<p>{}</p>", escape(text)),
    )
}
