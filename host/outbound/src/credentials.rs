//! Credential slots and host-side injection.
//!
//! A plugin's manifest declares *slots* (`lucca` → header `Authorization`, template
//! `lucca application={secret}`); the tenant config fills them with *secrets*. The plugin only
//! ever names a slot in [`crate::Request::credential`]; the host renders the template and sets
//! the header after every other check, so a secret never enters plugin memory.
//!
//! **A secret with leading or trailing whitespace** (a stray space pasted with an API key, a
//! newline at the end of a secrets file) is refused when a request names its slot, with an
//! error saying so — "the secret for slot `api-key` has leading or trailing spaces" — which
//! the plugin passes on, so the operator reads the cause instead of a bare 401. It is not
//! trimmed silently: the configured value is wrong, and only the operator can know whether
//! the key was also cut short. Registration still accepts it (so the plugin loads and its
//! `check` can report the problem), and redaction knows the trimmed form.
//!
//! **Guest-set header with the same name:** overwritten. The guest may legitimately set an
//! `Authorization` header for requests that use no slot, but when it names a slot the host's
//! value wins and every guest copy of that header (case-insensitive) is removed first, so a
//! request never carries two conflicting credentials.

use std::fmt;

use zeroize::Zeroize;

/// Headers that belong to the connection, or would let a request pretend to be for another
/// virtual host than the one that was granted (`Host`). A plugin may not set them, and no
/// credential slot may name them.
const CONNECTION_HEADERS: &[&str] = &[
    "host",
    "connection",
    "keep-alive",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
];

/// Whether the host alone sets header `name` (any case): a connection header or `Proxy-*`.
pub(crate) fn is_connection_header(name: &str) -> bool {
    let lname = name.to_ascii_lowercase();
    CONNECTION_HEADERS.contains(&lname.as_str()) || lname.starts_with("proxy-")
}

/// Whether a credential slot naming header `name` would steer the request rather than
/// authenticate it: a connection header, `Proxy-*`, or `Cookie` (a session the plugin picks).
pub(crate) fn steers_request(name: &str) -> bool {
    is_connection_header(name) || name.eq_ignore_ascii_case("cookie")
}

/// A secret string whose `Debug` and `Display` print `***` and whose memory is zeroed on drop.
///
/// The only way to read it is `Secret::expose`, which is crate-private: outside this crate a
/// secret can be moved and cloned, never printed.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret, trimming surrounding whitespace (a stray space around a pasted API key
    /// is a classic support case and never part of a real key).
    pub fn new(secret: impl Into<String>) -> Self {
        let mut s: String = secret.into();
        let trimmed = s.trim();
        if trimmed.len() != s.len() {
            let t = trimmed.to_owned();
            s.zeroize();
            s = t;
        }
        Self(s)
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// A credential slot as declared by a plugin manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialSlot {
    /// The name the plugin uses in [`crate::Request::credential`].
    pub name: String,
    /// Header to set, e.g. `Authorization`.
    pub header: String,
    /// Header value with one `{secret}` placeholder, e.g. `Bearer {secret}`.
    pub template: String,
}

impl CredentialSlot {
    pub fn new(
        name: impl Into<String>,
        header: impl Into<String>,
        template: impl Into<String>,
    ) -> Self {
        Self {
            name: name.into(),
            header: header.into(),
            template: template.into(),
        }
    }

    /// Checks the slot once at registration so a bad manifest fails early, not per request.
    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.template.matches("{secret}").count() != 1 {
            return Err(format!(
                "credential slot {:?}: template must contain exactly one {{secret}}",
                self.name
            ));
        }
        if ureq::http::HeaderName::from_bytes(self.header.as_bytes()).is_err() {
            return Err(format!(
                "credential slot {:?}: invalid header name {:?}",
                self.name, self.header
            ));
        }
        Ok(())
    }

    /// The header value for `secret`.
    fn render(&self, secret: &Secret) -> Secret {
        Secret(self.template.replacen("{secret}", secret.expose(), 1))
    }
}

/// A secret for one credential slot, from the host (tenant) configuration.
#[derive(Clone)]
pub struct Credential {
    /// The slot this secret fills.
    pub slot: String,
    /// The secret, surrounding whitespace removed (see `stray_whitespace`).
    pub secret: Secret,
    /// The configured value had leading or trailing whitespace: requests naming this slot are
    /// refused with an error that says so.
    stray_whitespace: bool,
}

impl Credential {
    pub fn new(slot: impl Into<String>, secret: impl Into<String>) -> Self {
        let mut raw: String = secret.into();
        let stray_whitespace = raw.trim().len() != raw.len();
        let secret = Secret::new(raw.as_str());
        raw.zeroize();
        Self {
            slot: slot.into(),
            secret,
            stray_whitespace,
        }
    }

    /// Whether the configured secret had leading or trailing whitespace.
    pub fn has_stray_whitespace(&self) -> bool {
        self.stray_whitespace
    }

    /// A secret that can not form a header value (control characters, CR/LF) is refused at
    /// registration: it would otherwise fail on every request, or worse, split a header.
    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.secret.expose().is_empty()
            || self.secret.expose().bytes().any(|b| b.is_ascii_control())
        {
            return Err(format!(
                "credential for slot {:?}: secret is empty or contains control characters",
                self.slot
            ));
        }
        Ok(())
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("slot", &self.slot)
            .field("secret", &self.secret)
            .finish()
    }
}

/// Removes every guest copy of the slot's header and appends the rendered one.
///
/// Returns the rendered value separately so the caller can hand it to the HTTP client without
/// it ever sitting in a `Vec<(String, String)>` that might be logged. A secret configured with
/// stray whitespace is refused here, with a message for the operator (it names the slot,
/// never the secret).
pub(crate) fn inject(
    headers: &mut Vec<(String, String)>,
    slot: &CredentialSlot,
    credential: &Credential,
) -> Result<(String, Secret), String> {
    if credential.stray_whitespace {
        return Err(format!(
            "the secret for slot `{}` has leading or trailing spaces; remove them from the \
             configured secret (a stray space pasted with the key is enough to be refused)",
            slot.name
        ));
    }
    headers.retain(|(name, _)| !name.eq_ignore_ascii_case(&slot.header));
    Ok((slot.header.clone(), slot.render(&credential.secret)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_print_the_secret() {
        let c = Credential::new("lucca", "s3cr3t-key");
        assert_eq!(format!("{}", c.secret), "***");
        let dbg = format!("{c:?} {:?}", c.secret);
        assert!(!dbg.contains("s3cr3t"), "{dbg}");
        assert!(dbg.contains("lucca"));
    }

    #[test]
    fn secret_is_trimmed() {
        assert_eq!(Secret::new("  key \n").expose(), "key");
    }

    #[test]
    fn inject_overwrites_guest_header_case_insensitively() {
        let slot = CredentialSlot::new("lucca", "Authorization", "lucca application={secret}");
        let cred = Credential::new("lucca", "k");
        let mut headers = vec![
            ("authorization".to_owned(), "guest".to_owned()),
            ("Accept".to_owned(), "application/json".to_owned()),
        ];
        let (name, value) = inject(&mut headers, &slot, &cred).unwrap();
        assert_eq!(
            headers,
            vec![("Accept".to_owned(), "application/json".to_owned())]
        );
        assert_eq!(name, "Authorization");
        assert_eq!(value.expose(), "lucca application=k");
    }

    #[test]
    fn stray_whitespace_is_refused_at_injection_naming_the_slot() {
        let slot = CredentialSlot::new("api-key", "Authorization", "lucca application={secret}");
        for raw in [" s3cr3t", "s3cr3t ", "\ts3cr3t\n"] {
            let cred = Credential::new("api-key", raw);
            assert!(cred.has_stray_whitespace(), "{raw:?}");
            // Registration accepts it, so the plugin loads and can report the problem.
            assert!(cred.validate().is_ok(), "{raw:?}");
            let mut headers = vec![("Authorization".to_owned(), "guest".to_owned())];
            let err = inject(&mut headers, &slot, &cred).unwrap_err();
            assert!(
                err.contains("the secret for slot `api-key` has leading or trailing spaces"),
                "{err}"
            );
            assert!(!err.contains("s3cr3t"), "{err}");
            assert_eq!(headers.len(), 1, "nothing injected");
        }
        assert!(!Credential::new("api-key", "s3cr3t").has_stray_whitespace());
    }

    #[test]
    fn steering_headers_are_recognised_in_any_case() {
        for h in [
            "Host",
            "connection",
            "Content-Length",
            "TRANSFER-ENCODING",
            "Proxy-Authorization",
            "proxy-anything",
            "Cookie",
            "Upgrade",
        ] {
            assert!(steers_request(h), "{h}");
        }
        for h in ["Authorization", "X-Api-Key", "Set-Cookie-Not"] {
            assert!(!steers_request(h), "{h}");
        }
        assert!(
            !is_connection_header("cookie"),
            "a guest may still send cookies"
        );
    }

    #[test]
    fn validation() {
        assert!(
            CredentialSlot::new("a", "Authorization", "Bearer {secret}")
                .validate()
                .is_ok()
        );
        assert!(
            CredentialSlot::new("a", "Authorization", "Bearer")
                .validate()
                .is_err()
        );
        assert!(
            CredentialSlot::new("a", "Bad Header", "{secret}")
                .validate()
                .is_err()
        );
        assert!(Credential::new("a", "x\r\nInjected: 1").validate().is_err());
        assert!(Credential::new("a", "   ").validate().is_err());
    }
}
