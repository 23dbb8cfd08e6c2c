//! Redaction: the single helper every error and log path goes through.
//!
//! Secrets are known to the host (they are in the policy), so redaction is exact: every
//! occurrence of a secret, and of its percent-encoded form (a secret pasted into a URL query),
//! is replaced with `***`. URL user info is dropped as well, whatever it contains, because a URL
//! is the most common carrier of accidental credentials.

use std::sync::Arc;

use crate::credentials::Secret;

/// Replaces known secrets in text destined for an error or a log line.
#[derive(Clone, Default)]
pub struct Redactor {
    needles: Arc<Vec<Secret>>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Redactor({} secrets)", self.needles.len())
    }
}

impl Redactor {
    /// A redactor for `secrets` (and their percent-encoded forms).
    pub fn new<'a>(secrets: impl IntoIterator<Item = &'a Secret>) -> Self {
        let mut needles: Vec<Secret> = Vec::new();
        for s in secrets {
            let raw = s.expose();
            if raw.is_empty() {
                continue;
            }
            let encoded: String = url::form_urlencoded::byte_serialize(raw.as_bytes()).collect();
            let pct = encoded.replace('+', "%20");
            for form in [raw.to_owned(), encoded, pct] {
                if !needles.iter().any(|n| n.expose() == form) {
                    needles.push(Secret::new(form));
                }
            }
        }
        // Longest first, so a secret that contains another is replaced whole.
        needles.sort_by_key(|n| std::cmp::Reverse(n.expose().len()));
        Self {
            needles: Arc::new(needles),
        }
    }

    /// `text` with every known secret replaced by `***`.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for n in self.needles.iter() {
            if out.contains(n.expose()) {
                out = out.replace(n.expose(), "***");
            }
        }
        out
    }

    /// `bytes` with every known secret replaced by `***` (a response body, which need not be
    /// UTF-8). Borrowed back unchanged when no secret occurs.
    pub fn redact_bytes<'b>(&self, bytes: &'b [u8]) -> std::borrow::Cow<'b, [u8]> {
        let mut out = std::borrow::Cow::Borrowed(bytes);
        for n in self.needles.iter() {
            let needle = n.expose().as_bytes();
            if find(&out, needle).is_some() {
                out = std::borrow::Cow::Owned(replace_all(&out, needle, b"***"));
            }
        }
        out
    }

    /// Scrubs a response before it is handed to a plugin: every known secret an upstream
    /// echoed, in a header value or the body, becomes `***`.
    pub fn redact_response(&self, resp: &mut crate::Response) {
        if self.needles.is_empty() {
            return;
        }
        for (_, value) in &mut resp.headers {
            *value = self.redact(value);
        }
        if let std::borrow::Cow::Owned(body) = self.redact_bytes(&resp.body) {
            resp.body = body;
        }
    }

    /// A URL for an error or log line: user info removed, then secrets redacted.
    pub fn url(&self, url: &str) -> String {
        match url::Url::parse(url) {
            Ok(mut u) => {
                if !u.username().is_empty() || u.password().is_some() {
                    // Only fails for cannot-be-a-base URLs, which carry no user info.
                    let _ = u.set_username("");
                    let _ = u.set_password(None);
                }
                self.redact(u.as_str())
            }
            // Not a URL: still never echo it raw.
            Err(_) => self.redact(url),
        }
    }
}

/// Index of the first occurrence of `needle` (non-empty) in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || needle.len() > hay.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

fn replace_all(hay: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(hay.len());
    let mut rest = hay;
    while let Some(i) = find(rest, needle) {
        out.extend_from_slice(&rest[..i]);
        out.extend_from_slice(with);
        rest = &rest[i + needle.len()..];
    }
    out.extend_from_slice(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_raw_and_percent_encoded_secrets_and_user_info() {
        let secrets = [Secret::new("s3cr3t/k+y"), Secret::new("other")];
        let r = Redactor::new(&secrets);
        assert_eq!(r.redact("a s3cr3t/k+y b other"), "a *** b ***");
        let url = r.url("https://bob:pw@acme.ilucca.net/x?api_key=s3cr3t%2Fk%2By&o=other");
        assert_eq!(url, "https://acme.ilucca.net/x?api_key=***&o=***");
        assert_eq!(r.url("not a url s3cr3t/k+y"), "not a url ***");
    }

    #[test]
    fn bytes_and_responses_lose_echoed_secrets() {
        let r = Redactor::new(&[Secret::new("k3y")]);
        assert_eq!(
            &*r.redact_bytes(b"\xffk3y and k3yk3y"),
            b"\xff*** and ******"
        );
        assert!(matches!(
            r.redact_bytes(b"clean"),
            std::borrow::Cow::Borrowed(_)
        ));
        let mut resp = crate::Response {
            status: 200,
            headers: vec![("x-echo".into(), "Bearer k3y".into())],
            body: b"{\"auth\":\"Bearer k3y\"}".to_vec(),
        };
        r.redact_response(&mut resp);
        assert_eq!(resp.headers[0].1, "Bearer ***");
        assert_eq!(resp.body, b"{\"auth\":\"Bearer ***\"}");
    }

    #[test]
    fn empty_redactor_is_identity() {
        assert_eq!(Redactor::default().redact("text"), "text");
    }
}
