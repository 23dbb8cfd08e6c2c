//! JSON over the host's sandboxed HTTP.
//!
//! [`Client`] builds requests against a base URL, names the credential slot
//! the host should inject, and turns every failure — sandbox refusal,
//! transport error, non-2xx status, undecodable body — into a typed
//! [`ConnectorError`], so connector code is a straight line of `?`.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::ConnectorError;
use crate::bindings::muster::connector::http::{self as host, Method, Request, Response};
use crate::errors;

/// A small HTTP client bound to a base URL and, optionally, a credential slot.
#[derive(Debug, Clone, Default)]
pub struct Client {
    base: String,
    credential: Option<String>,
    headers: Vec<(String, String)>,
}

/// A successful (2xx) response.
#[derive(Debug, Clone)]
pub struct JsonResponse {
    /// Status code.
    pub status: u16,
    /// Response headers.
    pub headers: Vec<(String, String)>,
    /// Raw body.
    pub body: Vec<u8>,
}

impl JsonResponse {
    /// Decodes the body as JSON; a malformed body is `invalid`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ConnectorError> {
        decode(&self.body)
    }

    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }
}

impl Client {
    /// A client for URLs under `base` (e.g. `https://acme.ilucca.net`).
    pub fn new(base: impl Into<String>) -> Self {
        Client {
            base: base.into().trim_end_matches('/').to_string(),
            ..Client::default()
        }
    }

    /// Names the credential slot the host injects into every request.
    pub fn with_credential(mut self, slot: impl Into<String>) -> Self {
        self.credential = Some(slot.into());
        self
    }

    /// Adds a header sent with every request.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The absolute URL for `path` (absolute URLs are kept as is).
    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_string()
        } else if path.starts_with('/') {
            format!("{}{}", self.base, path)
        } else {
            format!("{}/{}", self.base, path)
        }
    }

    /// `GET path` and decode the JSON body.
    pub fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ConnectorError> {
        self.send(Method::Get, path, None)?.json()
    }

    /// `POST path` with a JSON body; decode the JSON response.
    pub fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ConnectorError> {
        self.send(Method::Post, path, Some(encode(body)?))?.json()
    }

    /// `PUT path` with a JSON body; decode the JSON response.
    pub fn put<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ConnectorError> {
        self.send(Method::Put, path, Some(encode(body)?))?.json()
    }

    /// `PATCH path` with a JSON body; decode the JSON response.
    pub fn patch<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ConnectorError> {
        self.send(Method::Patch, path, Some(encode(body)?))?.json()
    }

    /// `DELETE path`, ignoring the body.
    pub fn delete(&self, path: &str) -> Result<(), ConnectorError> {
        self.send(Method::Delete, path, None).map(|_| ())
    }

    /// Sends a request and returns the 2xx response; any other outcome is a
    /// typed error (see [`errors::from_status`]).
    ///
    /// The host never follows redirects; this does, up to
    /// [`MAX_REDIRECTS`], by sending a *new* request that the host checks
    /// against the allow-list again. 303 (and 301/302 after a non-GET) turn
    /// into a body-less GET, 307/308 keep method and body. The credential slot
    /// is only kept while the redirect stays on the same origin, as browsers
    /// do with `Authorization`.
    pub fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<JsonResponse, ConnectorError> {
        let mut headers = self.headers.clone();
        headers.push(("accept".into(), "application/json".into()));
        if body.is_some() {
            headers.push(("content-type".into(), "application/json".into()));
        }
        let mut request = Request {
            method,
            url: self.url(path),
            headers,
            body,
            credential: self.credential.clone(),
        };
        let mut redirects = 0;
        loop {
            let Response {
                status,
                headers,
                body,
            } = host::send(&request).map_err(errors::from_http_error)?;
            if (200..300).contains(&status) {
                return Ok(JsonResponse {
                    status,
                    headers,
                    body,
                });
            }
            let location = header(&headers, "location");
            if let (301 | 302 | 303 | 307 | 308, Some(location)) = (status, location) {
                redirects += 1;
                if redirects > MAX_REDIRECTS {
                    return Err(ConnectorError::Unavailable(format!(
                        "more than {MAX_REDIRECTS} redirects, last to {location}"
                    )));
                }
                let next = resolve(&request.url, location);
                if origin(&next) != origin(&request.url) {
                    request.credential = None;
                }
                if status == 303 || (matches!(status, 301 | 302) && request.method != Method::Get) {
                    request.method = Method::Get;
                    request.body = None;
                    request
                        .headers
                        .retain(|(k, _)| !k.eq_ignore_ascii_case("content-type"));
                }
                request.url = next;
                continue;
            }
            let retry_after = header(&headers, "retry-after").and_then(|v| v.trim().parse().ok());
            return Err(errors::from_status(status, &body, retry_after));
        }
    }
}

/// Redirects followed by [`Client::send`] before giving up.
pub const MAX_REDIRECTS: u32 = 5;

/// `scheme://authority` of an absolute URL (lower-cased), or `""`.
fn origin(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return String::new();
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    format!("{scheme}://{authority}").to_ascii_lowercase()
}

/// Resolves a `Location` value against the URL that returned it: absolute
/// URLs as is, `/path` on the same origin, anything else relative to the
/// current path's directory.
fn resolve(current: &str, location: &str) -> String {
    if location.contains("://") {
        location.to_string()
    } else if location.starts_with("//") {
        let scheme = current.split_once("://").map_or("https", |(s, _)| s);
        format!("{scheme}:{location}")
    } else if location.starts_with('/') {
        format!("{}{location}", origin(current))
    } else {
        let base = current.split(['?', '#']).next().unwrap_or(current);
        match base.rfind('/') {
            Some(i) if i > origin(current).len() => format!("{}{location}", &base[..=i]),
            _ => format!("{}/{location}", origin(current)),
        }
    }
}

/// Decodes JSON, mapping a malformed body to `invalid` with serde's location.
pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, ConnectorError> {
    serde_json::from_slice(body)
        .map_err(|e| ConnectorError::Invalid(format!("malformed vendor response: {e}")))
}

fn encode<B: Serialize>(body: &B) -> Result<Vec<u8>, ConnectorError> {
    serde_json::to_vec(body)
        .map_err(|e| ConnectorError::Invalid(format!("cannot encode request: {e}")))
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_redirect_locations() {
        let cur = "https://acme.ilucca.net/api/v3/users?page=2";
        assert_eq!(origin(cur), "https://acme.ilucca.net");
        assert_eq!(
            resolve(cur, "/api/v4/users"),
            "https://acme.ilucca.net/api/v4/users"
        );
        assert_eq!(resolve(cur, "next"), "https://acme.ilucca.net/api/v3/next");
        assert_eq!(
            resolve(cur, "https://evil.example/x"),
            "https://evil.example/x"
        );
        assert_eq!(resolve(cur, "//cdn.example/x"), "https://cdn.example/x");
        assert_ne!(
            origin("http://127.0.0.1:1/a"),
            origin("http://127.0.0.1:2/a")
        );
    }
}
