//! Reject rules: deterministic per-record failures, for tests of per-record error isolation
//! ("one refused account does not stop the others") and of the engine's crash handling.
//!
//! A rule matches a *user write* (create, PATCH, PUT) by the account's email or by the
//! ordinal of the create, and makes the simulator answer with the rule's status and message
//! without changing anything.

use std::fmt;
use std::sync::Arc;

/// Which writes a rule refuses.
#[derive(Clone)]
pub enum RejectWhen {
    /// Writes to an account whose `userName` (as sent, or as stored for a PATCH that does not
    /// change it) satisfies the predicate.
    Email(Arc<dyn Fn(&str) -> bool + Send + Sync>),
    /// Every `n`th user create (`POST /Users`), counting all creates from 1, refused or not:
    /// with `n = 3`, creates 3, 6, 9… are refused.
    EveryNthCreate(u64),
    /// Exactly these creates (1-based ordinals of `POST /Users`).
    Creates(Vec<u64>),
}

impl fmt::Debug for RejectWhen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RejectWhen::Email(_) => f.write_str("Email(<predicate>)"),
            RejectWhen::EveryNthCreate(n) => write!(f, "EveryNthCreate({n})"),
            RejectWhen::Creates(list) => write!(f, "Creates({list:?})"),
        }
    }
}

/// A rule: when it matches, answer `status` with `message` (a SCIM error body).
#[derive(Debug, Clone)]
pub struct RejectRule {
    pub when: RejectWhen,
    pub status: u16,
    pub message: String,
}

impl RejectRule {
    /// Refuses writes to accounts whose email satisfies `predicate`, with 400.
    pub fn email(predicate: impl Fn(&str) -> bool + Send + Sync + 'static) -> Self {
        RejectRule {
            when: RejectWhen::Email(Arc::new(predicate)),
            status: 400,
            message: "the account was refused (injected rejection)".into(),
        }
    }

    /// Refuses writes to accounts whose email contains `needle` (case-insensitive), with 400.
    pub fn email_contains(needle: &str) -> Self {
        let needle = needle.to_ascii_lowercase();
        RejectRule::email(move |e| e.to_ascii_lowercase().contains(&needle))
    }

    /// Refuses every `n`th create with 400 (`n = 0` never matches).
    pub fn every_nth_create(n: u64) -> Self {
        RejectRule {
            when: RejectWhen::EveryNthCreate(n),
            status: 400,
            message: "the account was refused (injected rejection)".into(),
        }
    }

    /// Refuses exactly these creates (1-based ordinals) with 400.
    pub fn creates(ordinals: &[u64]) -> Self {
        RejectRule {
            when: RejectWhen::Creates(ordinals.to_vec()),
            status: 400,
            message: "the account was refused (injected rejection)".into(),
        }
    }

    /// Answers this status instead (e.g. 500 for a transient failure, or 429, which comes
    /// with `Retry-After: 1`).
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    /// Answers this message instead.
    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = message.into();
        self
    }

    /// Whether a write to `email` matches; `create` is the 1-based ordinal when the write is a
    /// create.
    pub fn matches(&self, email: &str, create: Option<u64>) -> bool {
        match (&self.when, create) {
            (RejectWhen::Email(p), _) => p(email),
            (RejectWhen::EveryNthCreate(n), Some(c)) => *n > 0 && c % n == 0,
            (RejectWhen::Creates(list), Some(c)) => list.contains(&c),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_match_by_email_or_ordinal() {
        let r = RejectRule::email_contains("BAD");
        assert!(r.matches("x.bad@a", None));
        assert!(!r.matches("good@a", Some(1)));
        let n = RejectRule::every_nth_create(3);
        assert!(n.matches("a", Some(6)));
        assert!(!n.matches("a", Some(4)));
        assert!(!n.matches("a", None), "PATCHes are not creates");
        assert!(!RejectRule::every_nth_create(0).matches("a", Some(3)));
        assert!(RejectRule::creates(&[2]).matches("a", Some(2)));
        assert_eq!(RejectRule::creates(&[2]).with_status(500).status, 500);
    }
}
