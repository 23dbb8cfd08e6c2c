//! The admin pages' routes, in one place: which request is which, and who
//! handles it. Every handler here runs on a handler thread, and every
//! state-changing one goes through [`auth::check_form`] first.

use hyper::Method;

use super::auth::{self, Form};
use super::http::{Answer, Head};
use super::{Shared, held, undo};
use crate::store::RunId;

/// An admin page or form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Request {
    /// `GET /login`
    LoginPage,
    /// `POST /login`
    Login,
    /// `POST /logout`
    Logout,
    /// `GET /held/{flow}`
    Held(String),
    /// `POST /held/{flow}/approve`
    Approve(String),
    /// `POST /held/{flow}/reject`
    Reject(String),
    /// `POST /runs/{id}/undo`
    Undo(RunId),
}

impl Request {
    /// The admin request a method and path make, if any (others are the
    /// status page's, the webhooks' or `404`).
    pub fn of(method: &Method, path: &str) -> Option<Request> {
        let get = matches!(*method, Method::GET | Method::HEAD);
        let post = *method == Method::POST;
        if path == "/login" {
            return if get {
                Some(Request::LoginPage)
            } else if post {
                Some(Request::Login)
            } else {
                None
            };
        }
        if path == "/logout" && post {
            return Some(Request::Logout);
        }
        if let Some(run) = path
            .strip_prefix("/runs/")
            .and_then(|r| r.strip_suffix("/undo"))
        {
            let run = run.parse::<i64>().ok().filter(|id| *id > 0)?;
            return post.then_some(Request::Undo(RunId(run)));
        }
        let rest = path.strip_prefix("/held/")?;
        let flow = |f: &str| (!f.is_empty() && !f.contains('/')).then(|| f.to_string());
        match rest.split_once('/') {
            None if get => flow(rest).map(Request::Held),
            Some((f, "approve")) if post => flow(f).map(Request::Approve),
            Some((f, "reject")) if post => flow(f).map(Request::Reject),
            _ => None,
        }
    }

    /// Whether the request carries a form to read before handling it.
    pub fn has_form(&self) -> bool {
        !matches!(self, Request::LoginPage | Request::Held(_))
    }
}

/// Answers an admin request; `body` is the form (empty for a page).
pub(super) fn handle(shared: &Shared, request: &Request, head: &Head, body: &[u8]) -> Answer {
    let form = Form::parse(body);
    match request {
        Request::LoginPage => auth::login_page(shared, 200, "Sign in to review held plans."),
        Request::Login => auth::login(shared, &form),
        Request::Logout => auth::logout(shared, head, &form),
        Request::Held(flow) => held::page(shared, head, flow),
        Request::Approve(flow) => held::approve(shared, head, flow, &form),
        Request::Reject(flow) => held::reject(shared, head, flow, &form),
        Request::Undo(run) => undo::request(shared, head, *run, &form),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_routes_are_recognised_by_method_and_path() {
        let of = Request::of;
        assert_eq!(of(&Method::GET, "/login"), Some(Request::LoginPage));
        assert_eq!(of(&Method::POST, "/login"), Some(Request::Login));
        assert_eq!(of(&Method::POST, "/logout"), Some(Request::Logout));
        assert_eq!(of(&Method::GET, "/logout"), None);
        assert_eq!(
            of(&Method::GET, "/held/people"),
            Some(Request::Held("people".into()))
        );
        assert_eq!(
            of(&Method::POST, "/held/people/approve"),
            Some(Request::Approve("people".into()))
        );
        assert_eq!(
            of(&Method::POST, "/held/people/reject"),
            Some(Request::Reject("people".into()))
        );
        assert_eq!(of(&Method::GET, "/held/people/approve"), None);
        assert_eq!(of(&Method::POST, "/held/people"), None);
        assert_eq!(of(&Method::GET, "/held/"), None);
        assert_eq!(of(&Method::POST, "/held/a/b/approve"), None);
        assert_eq!(of(&Method::GET, "/"), None);
        assert_eq!(
            of(&Method::POST, "/runs/12/undo"),
            Some(Request::Undo(RunId(12)))
        );
        assert_eq!(of(&Method::GET, "/runs/12/undo"), None);
        assert_eq!(of(&Method::POST, "/runs/x/undo"), None);
    }
}
