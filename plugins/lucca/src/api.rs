//! Requests to Lucca through the host's `http` import, and Lucca's error answers turned into
//! typed, actionable connector errors.
//!
//! The SDK's generic client would reduce a 403 to a body excerpt; Lucca's error bodies
//! (`{"status":403,"message":…,"missingPermission":"Coworkers > Manage users"}`, or
//! `"field":"legalEntityId"` on a 400) carry what an operator needs, so they are decoded here.
//! Rate limits are the host's job: its outbound layer spaces requests (50 per 60 s per Lucca
//! tenant) and retries 429s after `Retry-After`; a 429 that still reaches the plugin becomes
//! `rate-limited(retry-after)`.

use muster_sdk::ConnectorError;
use muster_sdk::bindings::muster::connector::http::{self as host, Method, Request};
use muster_sdk::errors::from_http_error;
use muster_sdk::serde_json::{self, Value};

/// The credential slot the host fills with `Authorization: lucca application={secret}`.
pub const SLOT: &str = "api-key";

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
}

impl LuccaError {
    fn decode(status: u16, body: &[u8], retry_after: Option<u32>) -> LuccaError {
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
        }
    }

    /// The typed error; `what` says which request failed (e.g. "reading people at offset 2000").
    pub fn into_connector_error(self, what: &str) -> ConnectorError {
        match self.status {
            401 => ConnectorError::Unauthorized,
            403 => ConnectorError::Forbidden(match self.missing_permission {
                Some(p) => format!("the API key lacks '{p}' ({what})"),
                None => format!("Lucca refused {what}: {}", self.message),
            }),
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
    serde_json::from_slice(&bytes).map_err(|e| {
        ConnectorError::Invalid(format!(
            "malformed JSON from Lucca for {what} ({} bytes): {e}",
            bytes.len()
        ))
    })
}

/// `GET` and decode.
pub fn get(url: &str, what: &str) -> Result<Value, ConnectorError> {
    json(Method::Get, url, None, what)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(status: u16, body: &str) -> ConnectorError {
        LuccaError::decode(status, body.as_bytes(), Some(7)).into_connector_error("reading people")
    }

    #[test]
    fn lucca_errors_are_actionable() {
        assert!(matches!(err(401, ""), ConnectorError::Unauthorized));
        assert_eq!(
            err(
                403,
                r#"{"status":403,"message":"Forbidden","missingPermission":"Coworkers > Manage users"}"#
            ),
            ConnectorError::Forbidden(
                "the API key lacks 'Coworkers > Manage users' (reading people)".into()
            )
        );
        assert!(matches!(err(403, "nope"), ConnectorError::Forbidden(m) if m.contains("nope")));
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
    }
}
