//! Requests to Lucca through the host's `http` import, and Lucca's error answers turned into
//! typed, actionable connector errors.
//!
//! Errors are said in muster's words, never by echoing a vendor body:
//! - a **403** names the permission the key's role lacks — the one the body names when Lucca
//!   says (`missingPermission`), else the one the request needs ([`Need`]: "Coworkers > Manage
//!   users" for users, "Coworkers > HR file > Custom data" for extended data, "Organization >
//!   Structure > View" for departments) — and, for users, reminds that "See future employees"
//!   and "See former employees" are needed too, or hires and leavers are silently invisible;
//! - an answer that is not Lucca's (an HTML page, a 404 without a JSON body: the subdomain or
//!   `base_url` points at some other web server) says "… does not answer like a Lucca API:
//!   check `subdomain`" instead of a bare "not found";
//! - a 400's `"field":"legalEntityId"` names the field.
//!
//! Rate limits are the host's job: its outbound layer spaces requests (50 per 60 s per Lucca
//! tenant) and retries 429s after `Retry-After`; a 429 that still reaches the plugin becomes
//! `rate-limited(retry-after)`.

use muster_sdk::ConnectorError;
use muster_sdk::bindings::muster::connector::http::{self as host, Method, Request};
use muster_sdk::errors::from_http_error;
use muster_sdk::serde_json::{self, Value};

/// The credential slot the host fills with `Authorization: lucca application={secret}`.
pub const SLOT: &str = "api-key";

/// The Lucca permission a request needs, as Lucca's role screen names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// `/api/v3/users`: read, create and update users.
    Users,
    /// Extended data (`extendedData`, `e_…`) and its definitions.
    CustomData,
    /// The v4 organisation structure: departments, establishments.
    Structure,
}

impl Need {
    /// What `url` needs, from its path (and a users read asking for extended data).
    pub fn of(url: &str) -> Option<Need> {
        if url.contains("/organization/structure/") {
            Some(Need::Structure)
        } else if url.contains("extensionuserdefinitions") {
            Some(Need::CustomData)
        } else if url.contains("/api/v3/users") {
            Some(Need::Users)
        } else {
            None
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Need::Users => "Coworkers > Manage users",
            Need::CustomData => "Coworkers > HR file > Custom data",
            Need::Structure => "Organization > Structure > View",
        }
    }
}

/// What a 403 on users adds: the visibility permissions Lucca does not refuse but filters by.
const SEE_ALL: &str = "; the role also needs 'See future employees' and 'See former employees', \
                       without which hires and leavers are silently left out";

/// A Lucca error body, as far as it could be decoded.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LuccaError {
    pub status: u16,
    pub message: String,
    /// `field` of a 400: the Lucca field the request got wrong.
    pub field: Option<String>,
    /// `missingPermission` of a 403.
    pub missing_permission: Option<String>,
    pub retry_after: Option<u32>,
    /// What the request needed, from its URL.
    pub need: Option<Need>,
    /// The body is a JSON object, as Lucca's errors are; `false` for an HTML page or
    /// an empty body (some other server answered).
    pub json: bool,
    /// Scheme, host and port of the request, for "does not answer like a Lucca API".
    pub origin: String,
}

impl LuccaError {
    fn decode(url: &str, status: u16, body: &[u8], retry_after: Option<u32>) -> LuccaError {
        let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        let text = String::from_utf8_lossy(body);
        let excerpt: String = text.trim().chars().take(200).collect();
        LuccaError {
            status,
            message: s("message").unwrap_or(excerpt),
            field: s("field"),
            missing_permission: s("missingPermission"),
            retry_after,
            need: Need::of(url),
            json: v.is_object(),
            origin: origin(url),
        }
    }

    /// A 403 in muster's words: the permission and what to do.
    fn forbidden(&self, what: &str) -> String {
        let named = self.missing_permission.as_deref();
        let Some(permission) = named.or(self.need.map(Need::label)) else {
            return format!(
                "Lucca refused {what} (403): the API key's role lacks a permission this request \
                 needs; check the role's permissions in Lucca"
            );
        };
        let users = self.need == Some(Need::Users) || named == Some(Need::Users.label());
        format!(
            "the API key lacks '{permission}' ({what}): give it to the API key's role in Lucca{}",
            if users { SEE_ALL } else { "" }
        )
    }

    /// The typed error; `what` says which request failed (e.g. "reading people at offset 2000").
    pub fn into_connector_error(self, what: &str) -> ConnectorError {
        match self.status {
            401 => ConnectorError::Unauthorized(format!(
                "Lucca rejected the API key ({what}, 401): check the key configured for the \
                 `api-key` slot (Lucca > Integrations); it may be wrong or revoked"
            )),
            403 => ConnectorError::Forbidden(self.forbidden(what)),
            404 if !self.json => not_lucca(&self.origin, what, "404 without Lucca's JSON body"),
            404 => ConnectorError::NotFound,
            429 => ConnectorError::RateLimited(self.retry_after.unwrap_or(60)),
            408 => ConnectorError::Unavailable(format!(
                "Lucca aborted {what} after its 5 s limit (408)"
            )),
            400 | 413 | 422 => ConnectorError::Invalid(match self.field {
                Some(f) => format!("Lucca refused {what}: {} (field `{f}`)", self.message),
                None => format!("Lucca refused {what} ({}): {}", self.status, self.message),
            }),
            500..=599 => ConnectorError::Unavailable(format!(
                "Lucca failed {what} ({}): {}",
                self.status, self.message
            )),
            s => ConnectorError::Other(format!(
                "unexpected status {s} for {what}: {}",
                self.message
            )),
        }
    }
}

/// Why a request failed: Lucca answered with an error status, or no answer came back.
#[derive(Debug)]
pub enum Failure {
    Lucca(LuccaError),
    Host(ConnectorError),
}

impl Failure {
    pub fn into_connector_error(self, what: &str) -> ConnectorError {
        match self {
            Failure::Lucca(e) => e.into_connector_error(what),
            Failure::Host(e) => e,
        }
    }
}

/// `https://acme.ilucca.net` of `https://acme.ilucca.net/api/v3/users?…`.
fn origin(url: &str) -> String {
    let start = url.find("://").map_or(0, |i| i + 3);
    let end = url[start..].find('/').map_or(url.len(), |i| start + i);
    url[..end].to_string()
}

/// Some other web server answered: the subdomain (or `base_url`) is wrong.
fn not_lucca(origin: &str, what: &str, got: &str) -> ConnectorError {
    ConnectorError::Invalid(format!(
        "{origin} does not answer like a Lucca API ({what}: {got}): check `subdomain` \
         (the account name in https://ACCOUNT.ilucca.net) or `base_url`"
    ))
}

/// Sends one request with the API key slot and returns the 2xx body.
pub fn send(method: Method, url: &str, body: Option<&Value>) -> Result<Vec<u8>, Failure> {
    let mut headers = vec![("accept".to_string(), "application/json".to_string())];
    let body = body.map(|b| b.to_string().into_bytes());
    if body.is_some() {
        headers.push(("content-type".into(), "application/json".into()));
    }
    let request = Request {
        method,
        url: url.to_string(),
        headers,
        body,
        credential: Some(SLOT.to_string()),
    };
    let response = host::send(&request).map_err(|e| Failure::Host(from_http_error(e)))?;
    if (200..300).contains(&response.status) {
        return Ok(response.body);
    }
    let retry_after = response
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("retry-after"))
        .and_then(|(_, v)| v.trim().parse().ok());
    Err(Failure::Lucca(LuccaError::decode(
        url,
        response.status,
        &response.body,
        retry_after,
    )))
}

/// Sends and decodes a JSON answer; a body that does not parse is `invalid` naming `what`.
pub fn json(
    method: Method,
    url: &str,
    body: Option<&Value>,
    what: &str,
) -> Result<Value, ConnectorError> {
    let bytes = send(method, url, body).map_err(|f| f.into_connector_error(what))?;
    if looks_like_html(&bytes) {
        return Err(not_lucca(&origin(url), what, "an HTML page"));
    }
    serde_json::from_slice(&bytes).map_err(|e| {
        ConnectorError::Invalid(format!(
            "malformed JSON from Lucca for {what} ({} bytes): {e}",
            bytes.len()
        ))
    })
}

/// A web page rather than an API answer: Lucca's API answers JSON.
fn looks_like_html(body: &[u8]) -> bool {
    let text = String::from_utf8_lossy(&body[..body.len().min(512)]);
    // Lucca answers JSON (or nothing); any markup is some other server's page.
    text.trim_start().starts_with('<')
}

/// `GET` and decode.
pub fn get(url: &str, what: &str) -> Result<Value, ConnectorError> {
    json(Method::Get, url, None, what)
}

#[cfg(test)]
mod tests {
    use super::*;

    const USERS: &str = "https://acme.ilucca.net/api/v3/users?fields=id&paging=0,1";

    fn err_at(url: &str, status: u16, body: &str) -> ConnectorError {
        LuccaError::decode(url, status, body.as_bytes(), Some(7))
            .into_connector_error("reading people")
    }

    fn err(status: u16, body: &str) -> ConnectorError {
        err_at(USERS, status, body)
    }

    #[test]
    fn lucca_errors_are_actionable() {
        assert!(
            matches!(err(401, r#"{"status":401,"message":"invalid key"}"#), ConnectorError::Unauthorized(m) if m.contains("api-key") && !m.contains("invalid key"))
        );
        assert_eq!(err(429, ""), ConnectorError::RateLimited(7));
        assert_eq!(
            err(
                400,
                r#"{"status":400,"message":"legalEntityId is mandatory","field":"legalEntityId"}"#
            ),
            ConnectorError::Invalid(
                "Lucca refused reading people: legalEntityId is mandatory (field `legalEntityId`)"
                    .into()
            )
        );
        assert!(matches!(err(500, "boom"), ConnectorError::Unavailable(m) if m.contains("boom")));
        assert!(matches!(err(408, ""), ConnectorError::Unavailable(m) if m.contains("408")));
        assert_eq!(
            err(404, r#"{"status":404,"message":"no such user"}"#),
            ConnectorError::NotFound
        );
    }

    #[test]
    fn a_403_names_the_permission_in_our_words_never_the_vendors_body() {
        let named = err(
            403,
            r#"{"status":403,"message":"Forbidden","missingPermission":"Coworkers > Manage users"}"#,
        );
        let ConnectorError::Forbidden(m) = named else {
            panic!("{named:?}")
        };
        assert!(
            m.starts_with("the API key lacks 'Coworkers > Manage users' (reading people)"),
            "{m}"
        );
        assert!(
            m.contains("'See future employees'") && m.contains("'See former employees'"),
            "{m}"
        );
        // No `missingPermission`: the request says which permission it needed.
        let bare = err(403, "Access denied by policy 42");
        let ConnectorError::Forbidden(m) = bare else {
            panic!("{bare:?}")
        };
        assert!(
            m.contains("'Coworkers > Manage users'") && !m.contains("policy 42"),
            "{m}"
        );
        let org = err_at(
            "https://acme.ilucca.net/organization/structure/api/departments",
            403,
            "",
        );
        assert!(
            matches!(&org, ConnectorError::Forbidden(m)
            if m.contains("'Organization > Structure > View'") && !m.contains("future")),
            "{org:?}"
        );
    }

    #[test]
    fn another_server_is_told_apart_from_lucca() {
        let page = err(404, "<html><body>Not Found</body></html>");
        assert!(
            matches!(&page, ConnectorError::Invalid(m)
            if m.starts_with("https://acme.ilucca.net does not answer like a Lucca API")
                && m.contains("check `subdomain`")),
            "{page:?}"
        );
        assert!(looks_like_html(b"  <!DOCTYPE html><html>"));
        assert!(!looks_like_html(br#"{"data":{"items":[]}}"#));
        assert_eq!(
            origin("http://127.0.0.1:8080/api/v3/users?x=1"),
            "http://127.0.0.1:8080"
        );
    }
}
