//! SCIM over the host's sandboxed HTTP: requests with the SCIM media type,
//! query encoding, and SCIM error bodies turned into typed errors.
//!
//! This talks to the `http` import directly rather than through
//! `muster_sdk::http::Client` for two reasons: SCIM wants
//! `application/scim+json` on the wire, and a failed SCIM call carries its
//! meaning in a JSON error body (`scimType`, `detail`, RFC 7644 §3.12) that the
//! generic status mapping would flatten into an excerpt. Redirects are not
//! followed: SCIM endpoints answer in place, and a 3xx is reported as an error
//! naming its `Location`, which points the operator at a wrong `base_url`.

use muster_sdk::ConnectorError;
use muster_sdk::bindings::muster::connector::http::{self as host, Method, Request};
use muster_sdk::errors::from_http_error;
use muster_sdk::serde_json::{self, Value};

/// The SCIM media type (RFC 7644 §3.1).
const SCIM_JSON: &str = "application/scim+json";

/// Name of the credential slot the host fills with `Authorization: Bearer …`.
pub const SLOT: &str = "bearer-token";

/// A response of any status.
#[derive(Debug, Clone)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Response headers.
    pub headers: Vec<(String, String)>,
    /// Raw body (empty for 204).
    pub body: Vec<u8>,
}

impl Reply {
    /// The first header named `name`, case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON; `what` names the call in the error.
    pub fn json(&self, what: &str) -> Result<Value, ConnectorError> {
        serde_json::from_slice(&self.body)
            .map_err(|e| ConnectorError::Invalid(format!("{what}: malformed SCIM response: {e}")))
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// Sends one request; any status is a `Reply`, only transport and sandbox
/// failures are errors. `if_match` is an entity tag for optimistic locking.
pub fn send(
    method: Method,
    url: &str,
    body: Option<&Value>,
    if_match: Option<&str>,
) -> Result<Reply, ConnectorError> {
    let mut headers = vec![(
        "accept".to_string(),
        format!("{SCIM_JSON}, application/json"),
    )];
    let body =
        match body {
            Some(value) => {
                headers.push(("content-type".into(), SCIM_JSON.into()));
                Some(serde_json::to_vec(value).map_err(|e| {
                    ConnectorError::Invalid(format!("cannot encode SCIM request: {e}"))
                })?)
            }
            None => None,
        };
    if let Some(tag) = if_match {
        headers.push(("if-match".into(), tag.into()));
    }
    let request = Request {
        method,
        url: url.to_string(),
        headers,
        body,
        credential: Some(SLOT.to_string()),
    };
    let response = host::send(&request).map_err(from_http_error)?;
    Ok(Reply {
        status: response.status,
        headers: response.headers,
        body: response.body,
    })
}

/// Returns the reply if it is 2xx, else the typed error for it (see
/// [`error_for`]).
pub fn ok(reply: Reply, what: &str) -> Result<Reply, ConnectorError> {
    if reply.is_success() {
        Ok(reply)
    } else {
        Err(error_for(&reply, what))
    }
}

/// The SCIM error body's `scimType` and `detail` (RFC 7644 §3.12), if the
/// body is one; servers that answer HTML or plain text get an excerpt.
pub fn error_detail(body: &[u8]) -> (Option<String>, String) {
    if let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) {
        let scim_type = map
            .get("scimType")
            .and_then(Value::as_str)
            .map(str::to_string);
        let detail = map
            .get("detail")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_default();
        return (scim_type, detail);
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    let detail = match text.char_indices().nth(200) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    };
    (None, detail)
}

/// Maps a non-2xx reply to the most specific connector error. `what` names
/// the call and the record (e.g. ``create user for source id `42` ``) so the
/// operator sees which record failed and why, in the server's own words.
pub fn error_for(reply: &Reply, what: &str) -> ConnectorError {
    let (scim_type, detail) = error_detail(&reply.body);
    let said = match (&scim_type, detail.is_empty()) {
        (Some(t), false) => format!("{t}: {detail}"),
        (Some(t), true) => t.clone(),
        (None, false) => detail.clone(),
        (None, true) => "no detail given".to_string(),
    };
    match reply.status {
        401 => ConnectorError::Unauthorized(format!("{what}: {said}")),
        403 => ConnectorError::Forbidden(format!("{what}: {said}")),
        404 | 410 => ConnectorError::NotFound,
        409 => ConnectorError::Conflict(format!("{what}: {said}")),
        412 => ConnectorError::Conflict(format!(
            "{what}: the resource changed on the server meanwhile (ETag mismatch): {said}"
        )),
        429 => ConnectorError::RateLimited(
            reply
                .header("retry-after")
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(60),
        ),
        400 | 413 | 422 => ConnectorError::Invalid(format!(
            "{what}: the SCIM server refused it ({}): {said}",
            reply.status
        )),
        300..=399 => ConnectorError::Invalid(format!(
            "{what}: the SCIM server redirects ({}) to {}; set `base_url` to the SCIM endpoint itself",
            reply.status,
            reply.header("location").unwrap_or("an unnamed location")
        )),
        501 => ConnectorError::Unsupported,
        500..=599 => ConnectorError::Unavailable(format!(
            "{what}: SCIM server error {}: {said}",
            reply.status
        )),
        status => ConnectorError::Other(format!("{what}: unexpected status {status}: {said}")),
    }
}

/// Percent-encodes a query value or path segment (RFC 3986 unreserved
/// characters are kept).
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A SCIM filter string literal: JSON string rules (RFC 7644 §3.4.2.2), so a
/// value with quotes or backslashes cannot change the filter's meaning.
pub fn quote(value: &str) -> String {
    Value::String(value.to_string()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(status: u16, body: &str) -> Reply {
        Reply {
            status,
            headers: vec![("Retry-After".into(), "7".into())],
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn scim_error_bodies_are_surfaced() {
        let conflict = reply(
            409,
            r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"409","scimType":"uniqueness","detail":"userName taken"}"#,
        );
        match error_for(&conflict, "create user `7`") {
            ConnectorError::Conflict(m) => {
                assert_eq!(m, "create user `7`: uniqueness: userName taken")
            }
            other => panic!("{other:?}"),
        }
        match error_for(
            &reply(400, r#"{"scimType":"invalidValue","detail":"bad email"}"#),
            "x",
        ) {
            ConnectorError::Invalid(m) => assert!(m.contains("invalidValue: bad email"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert!(
            matches!(error_for(&reply(401, r#"{"detail":"token expired"}"#), "x"), ConnectorError::Unauthorized(m) if m == "x: token expired")
        );
        assert!(
            matches!(error_for(&reply(403, "<html>no</html>"), "x"), ConnectorError::Forbidden(m) if m.contains("<html>no</html>"))
        );
        assert!(matches!(
            error_for(&reply(404, ""), "x"),
            ConnectorError::NotFound
        ));
        assert!(matches!(
            error_for(&reply(429, ""), "x"),
            ConnectorError::RateLimited(7)
        ));
        assert!(matches!(
            error_for(&reply(412, ""), "x"),
            ConnectorError::Conflict(_)
        ));
        assert!(matches!(
            error_for(&reply(503, ""), "x"),
            ConnectorError::Unavailable(_)
        ));
    }

    #[test]
    fn query_values_are_encoded_and_quoted() {
        assert_eq!(encode("userName eq \"a b\""), "userName%20eq%20%22a%20b%22");
        assert_eq!(encode("é&="), "%C3%A9%26%3D");
        assert_eq!(quote(r#"a"b\c"#), r#""a\"b\\c""#);
    }
}
