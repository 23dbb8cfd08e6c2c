//! Who may use the admin pages, and the one check every state-changing
//! form goes through.
//!
//! ## Design
//!
//! - **Logins** come from `[serve] admins` (a name and a password secret
//!   each, loaded at start; see [`crate::config::ServeSettings`]). Without
//!   admins the status page stays read-only and public, as it always was,
//!   and every admin page answers `403` saying how to configure one.
//! - **Signing in** is a plain HTML form (`POST /login`): no script, works in
//!   any browser and through WebDriver. The password is compared in constant
//!   time ([`secrets_match`]), and a wrong *name* costs the same comparison
//!   as a wrong password. Success sets an opaque random session id in an
//!   `HttpOnly; SameSite=Strict` cookie; sessions live in memory only (a
//!   restart signs everybody out) and expire after
//!   [`ServeConfig::session_ttl`](super::ServeConfig::session_ttl).
//! - **Reading**: with admins configured, every page (the status page
//!   included: held plans name people) needs a session; without one it is
//!   `401` with the sign-in form.
//! - **Changing**: [`check_form`] is the single gate for every POST that
//!   changes something (approve, reject, sign out, and later undo): a
//!   session (else `401`) *and* the session's CSRF token in the form's
//!   `csrf` field (a synchronizer token, compared in constant time; else
//!   `403`). A forged cross-site form carries the cookie at most, never the
//!   token, so nothing changes.
//!
//! Secrets never leave this module: the password is only compared, session
//! ids and CSRF tokens are random and never logged or stored.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Instant;

use hyper::header;

use super::http::{Answer, Head, html, secrets_match, see_other};
use super::page::{escape, page};
use super::{Shared, lock};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "muster_session";
/// The form field carrying the CSRF token.
pub const CSRF_FIELD: &str = "csrf";
/// Sessions kept at once; the oldest goes first beyond it.
const MAX_SESSIONS: usize = 256;

/// A signed-in admin.
#[derive(Clone)]
pub(crate) struct Session {
    /// The admin's login name: what the audit log records.
    pub who: String,
    /// This session's CSRF token, for the hidden field of every form.
    pub csrf: String,
    expires: Instant,
}

/// The sessions of this process, by id.
#[derive(Default)]
pub(super) struct Sessions(Mutex<HashMap<String, Session>>);

/// A form body (`application/x-www-form-urlencoded`).
pub(crate) struct Form(Vec<(String, String)>);

impl Form {
    pub fn parse(body: &[u8]) -> Form {
        Form(form_urlencoded::parse(body).into_owned().collect())
    }

    /// The first value of field `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// 32 random bytes, hex: a session id or a CSRF token.
fn random_token() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes)?;
    Ok(bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    }))
}

/// The session id the request's cookie names, if any.
fn cookie_session(head: &Head) -> Option<&str> {
    head.headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, id)| id)
}

/// The live session of the request, if it carries one.
fn session(shared: &Shared, head: &Head) -> Option<Session> {
    let id = cookie_session(head)?;
    let mut sessions = lock(&shared.sessions.0);
    match sessions.get(id) {
        Some(s) if s.expires > Instant::now() => Some(s.clone()),
        Some(_) => {
            sessions.remove(id);
            None
        }
        None => None,
    }
}

/// Whether `[serve] admins` names anybody.
pub(super) fn enabled(shared: &Shared) -> bool {
    !shared.cfg.admins.is_empty()
}

/// The gate of every page: `Ok(None)` without admins configured (the
/// public read-only status page), `Ok(Some)` for a signed-in admin, the
/// `401` sign-in page otherwise.
pub(crate) fn reader(shared: &Shared, head: &Head) -> Result<Option<Session>, Answer> {
    if !enabled(shared) {
        return Ok(None);
    }
    session(shared, head)
        .map(Some)
        .ok_or_else(|| login_page(shared, 401, "Sign in to see this page."))
}

/// The gate of an admin page: a signed-in admin, `403` without admins
/// configured, `401` (the sign-in page) without a session.
pub(crate) fn admin(shared: &Shared, head: &Head) -> Result<Session, Answer> {
    match reader(shared, head)? {
        Some(s) => Ok(s),
        None => Err(not_configured(shared)),
    }
}

/// The gate of every state-changing form: a signed-in admin whose form
/// carries the session's CSRF token. `401` without a session, `403`
/// without the token; in both cases the caller changes nothing.
///
/// Use: parse the body with [`Form::parse`], call this first, and put
/// `<input type="hidden" name="csrf" value="{session.csrf}">` (see
/// [`csrf_input`]) in the form that posts to the route.
pub(crate) fn check_form(shared: &Shared, head: &Head, form: &Form) -> Result<Session, Answer> {
    let session = admin(shared, head)?;
    let given = form.get(CSRF_FIELD).unwrap_or("");
    if given.is_empty() || !secrets_match(given.as_bytes(), session.csrf.as_bytes()) {
        return Err(html(
            403,
            page(
                &shared.cfg.tenant,
                "Refused",
                "<p>This form was not sent from muster's own page (its security \
                 token is missing or wrong), so nothing was changed. Open the page \
                 again and use its buttons.</p><p><a href=\"/\">Back to the status page</a></p>",
            ),
        ));
    }
    Ok(session)
}

/// The hidden field every state-changing form carries.
pub(crate) fn csrf_input(session: &Session) -> String {
    format!(
        "<input type=\"hidden\" name=\"{CSRF_FIELD}\" value=\"{}\">",
        escape(&session.csrf)
    )
}

/// `403`: the admin pages need `[serve] admins`.
fn not_configured(shared: &Shared) -> Answer {
    html(
        403,
        page(
            &shared.cfg.tenant,
            "Admin pages are off",
            "<p>Reviewing and approving held plans in the browser needs at least one \
             admin in the configuration (<code>[serve] admins</code>, see the admin \
             guide). Until then, approve with <code>muster sync --approve-held</code>.</p>",
        ),
    )
}

/// The sign-in form, with `status` and a message.
pub(super) fn login_page(shared: &Shared, status: u16, message: &str) -> Answer {
    let body = format!(
        "<p>{}</p><form method=\"post\" action=\"/login\">\
         <p><label>Name <input name=\"name\" autocomplete=\"username\" required></label></p>\
         <p><label>Password <input name=\"password\" type=\"password\" \
         autocomplete=\"current-password\" required></label></p>\
         <p><button type=\"submit\">Sign in</button></p></form>",
        escape(message)
    );
    html(status, page(&shared.cfg.tenant, "Sign in", &body))
}

/// `POST /login`: a session for a known name with its password, the
/// sign-in page again (`401`) otherwise.
pub(super) fn login(shared: &Shared, form: &Form) -> Answer {
    if !enabled(shared) {
        return not_configured(shared);
    }
    let name = form.get("name").unwrap_or("").trim();
    let password = form.get("password").unwrap_or("");
    let admin = shared.cfg.admins.iter().find(|a| a.name == name);
    // Compare even for an unknown name, so timing does not tell names apart.
    let expected = admin.map_or("", |a| a.password.expose());
    let matches = secrets_match(password.as_bytes(), expected.as_bytes());
    let Some(admin) = admin.filter(|_| matches && !password.is_empty()) else {
        tracing::warn!(name, "muster serve: a sign-in was refused");
        return login_page(shared, 401, "Wrong name or password.");
    };
    let (Ok(id), Ok(csrf)) = (random_token(), random_token()) else {
        return html(
            503,
            page(
                &shared.cfg.tenant,
                "Try again",
                "<p>No randomness available for a session.</p>",
            ),
        );
    };
    let session = Session {
        who: admin.name.clone(),
        csrf,
        expires: Instant::now() + shared.cfg.session_ttl,
    };
    {
        let mut sessions = lock(&shared.sessions.0);
        let now = Instant::now();
        sessions.retain(|_, s| s.expires > now);
        if sessions.len() >= MAX_SESSIONS
            && let Some(oldest) = sessions
                .iter()
                .min_by_key(|(_, s)| s.expires)
                .map(|(k, _)| k.clone())
        {
            sessions.remove(&oldest);
        }
        sessions.insert(id.clone(), session);
    }
    tracing::info!(who = %admin.name, "muster serve: an admin signed in");
    see_other("/").with_header(
        header::SET_COOKIE,
        format!(
            "{SESSION_COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
            shared.cfg.session_ttl.as_secs()
        ),
    )
}

/// `POST /logout` (CSRF-checked): ends the session.
pub(super) fn logout(shared: &Shared, head: &Head, form: &Form) -> Answer {
    if let Err(refused) = check_form(shared, head, form) {
        return refused;
    }
    if let Some(id) = cookie_session(head) {
        lock(&shared.sessions.0).remove(id);
    }
    see_other("/login").with_header(
        header::SET_COOKIE,
        format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    )
}

/// "Signed in as NAME" and the sign-out button, for the top of a page.
pub(crate) fn signed_in_bar(session: &Session) -> String {
    format!(
        "<form method=\"post\" action=\"/logout\" class=\"who\">Signed in as <b>{}</b> {}\
         <button type=\"submit\">Sign out</button></form>",
        escape(&session.who),
        csrf_input(session)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_decode_and_tokens_are_random_hex() {
        let f = Form::parse(b"name=hr%20alice&csrf=a%2Bb&name=second");
        assert_eq!(f.get("name"), Some("hr alice"));
        assert_eq!(f.get("csrf"), Some("a+b"));
        assert_eq!(f.get("missing"), None);
        let (a, b) = (random_token().unwrap(), random_token().unwrap());
        assert_eq!(a.len(), 64);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
