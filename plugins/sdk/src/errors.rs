//! HTTP status → [`ConnectorError`] mapping, so every connector classifies
//! vendor failures the same way and the host can react (retry, report a setup
//! problem, skip one record) without parsing strings.

use crate::ConnectorError;
use crate::bindings::muster::connector::http::HttpError;

/// Maps a non-success HTTP status (and a short excerpt of the body, for the
/// operator) to a connector error. A 401 is `unauthorized` carrying the
/// vendor's words (its body excerpt) — a vendor never echoes the credential
/// in them, and the host redacts secrets in any case. `retry_after` is the parsed `Retry-After`
/// header, if any.
pub fn from_status(status: u16, body: &[u8], retry_after: Option<u32>) -> ConnectorError {
    let detail = excerpt(body);
    match status {
        401 => ConnectorError::Unauthorized(if detail.is_empty() {
            "the credential was rejected by the vendor".to_string()
        } else {
            detail
        }),
        403 => ConnectorError::Forbidden(if detail.is_empty() {
            "permission denied by the vendor".to_string()
        } else {
            detail
        }),
        404 | 410 => ConnectorError::NotFound,
        409 => ConnectorError::Conflict(detail),
        429 => ConnectorError::RateLimited(retry_after.unwrap_or(60)),
        400 | 422 => {
            ConnectorError::Invalid(format!("vendor refused the request ({status}): {detail}"))
        }
        500..=599 => ConnectorError::Unavailable(format!("vendor error {status}: {detail}")),
        _ => ConnectorError::Other(format!("unexpected status {status}: {detail}")),
    }
}

/// Maps a host-side HTTP failure to a connector error. A sandbox refusal is
/// `forbidden` (it names the rule), transport problems are `unavailable`.
pub fn from_http_error(err: HttpError) -> ConnectorError {
    match err {
        HttpError::Denied(why) => {
            ConnectorError::Forbidden(format!("sandbox denied the request: {why}"))
        }
        HttpError::UnknownCredential(slot) => {
            ConnectorError::Invalid(format!("credential slot `{slot}` is not configured"))
        }
        HttpError::InvalidRequest(why) => {
            ConnectorError::Invalid(format!("invalid request: {why}"))
        }
        HttpError::RateLimited(secs) => ConnectorError::RateLimited(secs),
        HttpError::Timeout => ConnectorError::Unavailable("request timed out".to_string()),
        HttpError::TooLarge => ConnectorError::Unavailable("response too large".to_string()),
        HttpError::Transport(why) => ConnectorError::Unavailable(why),
    }
}

/// At most 200 characters of a body, lossily decoded, for error details.
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let trimmed = text.trim();
    match trimmed.char_indices().nth(200) {
        Some((cut, _)) => format!("{}…", &trimmed[..cut]),
        None => trimmed.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_typed_errors() {
        assert!(
            matches!(from_status(401, b"", None), ConnectorError::Unauthorized(s) if s.contains("rejected"))
        );
        assert!(
            matches!(from_status(401, b" key revoked ", None), ConnectorError::Unauthorized(s) if s == "key revoked")
        );
        assert!(
            matches!(from_status(403, b"needs Manage users", None), ConnectorError::Forbidden(s) if s.contains("Manage users"))
        );
        assert!(matches!(
            from_status(404, b"", None),
            ConnectorError::NotFound
        ));
        assert!(matches!(
            from_status(429, b"", Some(7)),
            ConnectorError::RateLimited(7)
        ));
        assert!(matches!(
            from_status(503, b"", None),
            ConnectorError::Unavailable(_)
        ));
        assert!(matches!(
            from_status(422, b"bad", None),
            ConnectorError::Invalid(_)
        ));
    }
}
