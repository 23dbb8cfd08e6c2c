//! Flow state besides links and runs: read watermarks, plans held by the
//! guard, and the audit log.

use std::fmt;

use muster_core::Step;
use serde_json::Value;

use super::runs::RunId;
use super::{Context, StoreError};

/// Which side of a flow a watermark belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Source,
    Target,
}

impl Side {
    pub const fn as_str(self) -> &'static str {
        match self {
            Side::Source => "source",
            Side::Target => "target",
        }
    }
}

/// A held plan's row id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HeldPlanId(pub i64);

impl fmt::Display for HeldPlanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A plan the guard held, waiting for a human.
#[derive(Debug, Clone, PartialEq)]
pub struct HeldPlan {
    pub id: HeldPlanId,
    pub flow: String,
    /// The run that made (and held) it.
    pub run: RunId,
    pub created_at: String,
    pub steps: Vec<Step>,
    /// Digest of the source and target snapshots the plan was made from, so
    /// applying it later can refuse a stale plan.
    pub snapshot_digest: String,
    /// Which guard thresholds it breached, in plain language.
    pub breaches: String,
    pub approved_at: Option<String>,
    pub approved_by: Option<String>,
    /// When it stopped awaiting approval without being approved: a newer
    /// plan replaced it, a later plan was applied, or someone rejected it.
    pub superseded_at: Option<String>,
    /// Who rejected it ([`crate::store::Store::reject_held`]);
    /// `superseded_at` is when.
    pub rejected_by: Option<String>,
}

/// What became of a held plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeldState {
    /// Still awaiting a decision.
    Pending,
    Approved,
    Rejected,
    /// Replaced by a newer plan, or moot after a later plan was applied.
    Superseded,
}

impl HeldPlan {
    /// What became of it, from its approval and retirement columns.
    pub fn state(&self) -> HeldState {
        match (&self.approved_at, &self.superseded_at, &self.rejected_by) {
            (Some(_), _, _) => HeldState::Approved,
            (None, Some(_), Some(_)) => HeldState::Rejected,
            (None, Some(_), None) => HeldState::Superseded,
            (None, None, _) => HeldState::Pending,
        }
    }
}

/// The `held_plans` columns both backends select for a [`HeldPlan`], in
/// the order [`held_plan`] takes them.
pub(crate) const HELD_COLUMNS: &str = "id, run_id, created_at, plan, snapshot_digest, breaches,
    approved_at, approved_by, superseded_at, rejected_by";

/// A `held_plans` row of [`HELD_COLUMNS`], before its plan is decoded.
pub(crate) type RawHeld = (
    i64,
    i64,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// The held plan of `flow` a [`RawHeld`] row holds.
pub(crate) fn held_plan(flow: &str, raw: RawHeld) -> Result<HeldPlan, StoreError> {
    let (id, run, created_at, plan, digest, breaches, approved_at, approved_by, superseded, by) =
        raw;
    let steps = serde_json::from_str(&plan)
        .context(|| format!("flow `{flow}`: decoding held plan {id}"))?;
    Ok(HeldPlan {
        id: HeldPlanId(id),
        flow: flow.into(),
        run: RunId(run),
        created_at,
        steps,
        snapshot_digest: digest,
        breaches,
        approved_at,
        approved_by,
        superseded_at: superseded,
        rejected_by: by,
    })
}

/// One change to write to the audit log. `before`/`after` are redacted
/// (see [`is_secret_key`]) before they are stored.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AuditEntry<'a> {
    pub flow: Option<&'a str>,
    pub run: Option<RunId>,
    /// What happened: `create`, `deactivate`, `approve_held`, `remove_link` …
    pub what: &'a str,
    /// What it happened to: a record id, a group, a flow.
    pub subject: &'a str,
    pub before: Option<&'a Value>,
    pub after: Option<&'a Value>,
}

/// An audit entry as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    pub id: i64,
    pub ts: String,
    pub flow: Option<String>,
    pub run: Option<RunId>,
    pub what: String,
    pub subject: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

/// The value written in place of a secret.
pub const REDACTED: &str = "[redacted]";

/// Whether a JSON key names a secret: after lower-casing and dropping
/// everything but letters and digits, it contains `secret`, `token`,
/// `password`, `passwd`, `apikey`, `credential`, `authorization` or
/// `privatekey`. Deliberately broad: over-redacting an audit entry costs
/// a detail, under-redacting leaks a credential into a file that is backed
/// up and read by people who must not see it.
pub fn is_secret_key(key: &str) -> bool {
    let k: String = key
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    [
        "secret",
        "token",
        "password",
        "passwd",
        "apikey",
        "credential",
        "authorization",
        "privatekey",
    ]
    .iter()
    .any(|s| k.contains(s))
}

/// A copy of `value` with the value of every secret-named key, at any depth,
/// replaced by [`REDACTED`]. The rule is *strip*, not *refuse*: an audit
/// entry is written after the change happened, and failing it would lose
/// the record of a real change.
pub fn redact(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let v = if is_secret_key(k) {
                        Value::String(REDACTED.into())
                    } else {
                        redact(v)
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(redact).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_keys_are_recognised() {
        for k in [
            "secret",
            "api_key",
            "apiKey",
            "X-Api-Key",
            "password",
            "access_token",
            "Authorization",
        ] {
            assert!(is_secret_key(k), "{k}");
        }
        for k in ["email", "given_name", "manager_id", "login"] {
            assert!(!is_secret_key(k), "{k}");
        }
    }

    #[test]
    fn redact_strips_nested_secrets() {
        let v = serde_json::json!({"email": "a@b", "nested": [{"token": "t", "x": 1}], "password": {"a": 1}});
        let r = redact(&v);
        assert_eq!(r["email"], "a@b");
        assert_eq!(r["nested"][0]["token"], REDACTED);
        assert_eq!(r["nested"][0]["x"], 1);
        assert_eq!(r["password"], REDACTED);
    }
}
