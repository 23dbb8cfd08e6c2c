//! Flow state besides links and runs: read watermarks, plans held by the
//! guard, and the audit log.

use std::fmt;

use muster_core::Step;
use rusqlite::{OptionalExtension, params};
use serde_json::Value;

use super::runs::{RunId, run_state};
use super::{Context, Store, StoreError, time};

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
    /// Who rejected it ([`Store::reject_held`]); `superseded_at` is when.
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

impl Store {
    /// A watermark of `flow` (e.g. the source's last `modifiedAt`), if set.
    pub fn watermark(
        &self,
        flow: &str,
        side: Side,
        key: &str,
    ) -> Result<Option<String>, StoreError> {
        let flow_id = Store::flow_id(&self.conn, flow)?;
        self.conn
            .query_row(
                "SELECT value FROM watermarks WHERE flow_id = ?1 AND side = ?2 AND key = ?3",
                params![flow_id, side.as_str(), key],
                |r| r.get(0),
            )
            .optional()
            .context(|| format!("flow `{flow}`: reading watermark {}.{key}", side.as_str()))
    }

    /// Sets a watermark, committed. Set it only after the data it covers
    /// has been applied, so a crash re-reads rather than skips.
    pub fn set_watermark(
        &mut self,
        flow: &str,
        side: Side,
        key: &str,
        value: &str,
    ) -> Result<(), StoreError> {
        let flow_id = Store::flow_id(&self.conn, flow)?;
        self.conn
            .execute(
                "INSERT INTO watermarks (flow_id, side, key, value, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (flow_id, side, key)
                 DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                params![flow_id, side.as_str(), key, value, time::now()],
            )
            .context(|| format!("flow `{flow}`: setting watermark {}.{key}", side.as_str()))?;
        Ok(())
    }

    /// Stores a plan the guard held for `run`. A flow has at most one plan
    /// awaiting approval: an older pending one is superseded (a fresher
    /// plan describes the systems as they are now).
    pub fn hold_plan(
        &mut self,
        flow: &str,
        run: RunId,
        steps: &[Step],
        snapshot_digest: &str,
        breaches: &str,
    ) -> Result<HeldPlanId, StoreError> {
        let plan = serde_json::to_string(steps)
            .context(|| format!("flow `{flow}`: serialising the held plan of run {run}"))?;
        let ctx = || format!("flow `{flow}`: holding the plan of run {run}");
        let tx = self.write_tx(ctx)?;
        let flow_id = Store::flow_id(&tx, flow)?;
        let (run_flow, _) = run_state(&tx, run)?;
        if run_flow != flow {
            return Err(StoreError::UnknownRun(run));
        }
        let now = time::now();
        tx.execute(
            "UPDATE held_plans SET superseded_at = ?2
             WHERE flow_id = ?1 AND approved_at IS NULL AND superseded_at IS NULL",
            params![flow_id, now],
        )
        .context(ctx)?;
        tx.execute(
            "INSERT INTO held_plans (flow_id, run_id, created_at, plan, snapshot_digest, breaches)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![flow_id, run.0, now, plan, snapshot_digest, breaches],
        )
        .context(ctx)?;
        let id = HeldPlanId(tx.last_insert_rowid());
        tx.commit().context(ctx)?;
        Ok(id)
    }

    /// The plan of `flow` awaiting approval, if any.
    pub fn held_plan(&self, flow: &str) -> Result<Option<HeldPlan>, StoreError> {
        self.select_held(
            flow,
            "approved_at IS NULL AND superseded_at IS NULL",
            None,
            || format!("flow `{flow}`: reading the held plan"),
        )
    }

    /// Held plan `id` of `flow` whatever became of it (pending, approved,
    /// rejected or superseded: see [`HeldPlan::state`]), so a page reviewed
    /// earlier can say what happened to it. `None` if `flow` has no such
    /// plan.
    pub fn held_plan_by_id(
        &self,
        flow: &str,
        id: HeldPlanId,
    ) -> Result<Option<HeldPlan>, StoreError> {
        self.select_held(flow, "id = ?2", Some(id), || {
            format!("flow `{flow}`: reading held plan {id}")
        })
    }

    /// The one held plan of `flow` matching `filter` (SQL over
    /// `held_plans`, where `?1` is the flow's id and `?2` the optional
    /// plan id).
    fn select_held(
        &self,
        flow: &str,
        filter: &str,
        id: Option<HeldPlanId>,
        ctx: impl Fn() -> String + Copy,
    ) -> Result<Option<HeldPlan>, StoreError> {
        let flow_id = Store::flow_id(&self.conn, flow)?;
        let sql = format!(
            "SELECT id, run_id, created_at, plan, snapshot_digest, breaches,
                    approved_at, approved_by, superseded_at, rejected_by
             FROM held_plans WHERE flow_id = ?1 AND {filter}"
        );
        let row = match id {
            Some(id) => self
                .conn
                .query_row(&sql, params![flow_id, id.0], held_row)
                .optional(),
            None => self.conn.query_row(&sql, [flow_id], held_row).optional(),
        }
        .context(ctx)?;
        let Some((mut plan, steps)) = row else {
            return Ok(None);
        };
        plan.flow = flow.into();
        plan.steps = serde_json::from_str(&steps)
            .context(|| format!("flow `{flow}`: decoding held plan {}", plan.id))?;
        Ok(Some(plan))
    }

    /// Retires the pending held plan of `flow`, if any: a later plan was
    /// applied (not held), so the held one no longer describes what is left
    /// to do. Returns whether there was one.
    pub fn supersede_held(&mut self, flow: &str) -> Result<bool, StoreError> {
        let flow_id = Store::flow_id(&self.conn, flow)?;
        let n = self
            .conn
            .execute(
                "UPDATE held_plans SET superseded_at = ?2
                 WHERE flow_id = ?1 AND approved_at IS NULL AND superseded_at IS NULL",
                params![flow_id, time::now()],
            )
            .context(|| format!("flow `{flow}`: retiring its held plan"))?;
        Ok(n > 0)
    }

    /// Approves the pending held plan of `flow` and returns it (with its
    /// approval), committed together with an audit entry. The engine then
    /// applies exactly these steps in a new run, after checking the
    /// snapshot digest is still current.
    pub fn approve_held(&mut self, flow: &str, approved_by: &str) -> Result<HeldPlan, StoreError> {
        let mut plan = self
            .held_plan(flow)?
            .ok_or_else(|| StoreError::NoHeldPlan(flow.into()))?;
        let ctx = || format!("flow `{flow}`: approving held plan");
        let now = time::now();
        let tx = self.write_tx(ctx)?;
        let n = tx
            .execute(
                "UPDATE held_plans SET approved_at = ?2, approved_by = ?3
                 WHERE id = ?1 AND approved_at IS NULL AND superseded_at IS NULL",
                params![plan.id.0, now, approved_by],
            )
            .context(ctx)?;
        if n == 0 {
            // Approved or superseded by another process meanwhile.
            return Err(StoreError::NoHeldPlan(flow.into()));
        }
        let after = serde_json::json!({ "held_plan": plan.id.0, "approved_by": approved_by });
        insert_audit(
            &tx,
            &AuditEntry {
                flow: Some(flow),
                run: Some(plan.run),
                what: "approve_held",
                subject: flow,
                before: None,
                after: Some(&after),
            },
        )?;
        tx.commit().context(ctx)?;
        plan.approved_at = Some(now);
        plan.approved_by = Some(approved_by.into());
        Ok(plan)
    }

    /// Rejects held plan `id` of `flow` if it is still pending: it is
    /// retired (never applied) and the rejection is audited with `who`, in
    /// one transaction. [`StoreError::NoHeldPlan`] if it is not pending any
    /// more (approved, rejected or superseded meanwhile). The guard holds
    /// the next run's plan again if it still breaches a threshold.
    pub fn reject_held(
        &mut self,
        flow: &str,
        id: HeldPlanId,
        who: &str,
    ) -> Result<HeldPlan, StoreError> {
        let ctx = || format!("flow `{flow}`: rejecting held plan {id}");
        let now = time::now();
        let tx = self.write_tx(ctx)?;
        let flow_id = Store::flow_id(&tx, flow)?;
        let n = tx
            .execute(
                "UPDATE held_plans SET superseded_at = ?3, rejected_by = ?4
                 WHERE id = ?1 AND flow_id = ?2
                   AND approved_at IS NULL AND superseded_at IS NULL",
                params![id.0, flow_id, now, who],
            )
            .context(ctx)?;
        if n == 0 {
            return Err(StoreError::NoHeldPlan(flow.into()));
        }
        let run: i64 = tx
            .query_row("SELECT run_id FROM held_plans WHERE id = ?1", [id.0], |r| {
                r.get(0)
            })
            .context(ctx)?;
        let after = serde_json::json!({ "held_plan": id.0, "rejected_by": who });
        insert_audit(
            &tx,
            &AuditEntry {
                flow: Some(flow),
                run: Some(RunId(run)),
                what: "reject_held",
                subject: flow,
                before: None,
                after: Some(&after),
            },
        )?;
        tx.commit().context(ctx)?;
        read_back(self.held_plan_by_id(flow, id)?, flow)
    }

    /// Writes an audit entry (redacted, see [`redact`]), committed.
    pub fn audit(&mut self, entry: &AuditEntry<'_>) -> Result<(), StoreError> {
        insert_audit(&self.conn, entry)
    }

    /// The last `limit` audit entries of `flow`, newest first.
    pub fn audit_log(&self, flow: &str, limit: usize) -> Result<Vec<AuditRecord>, StoreError> {
        let flow_id = Store::flow_id(&self.conn, flow)?;
        let ctx = || format!("flow `{flow}`: reading the audit log");
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, ts, run_id, what, subject, before, after FROM audit
                 WHERE flow_id = ?1 ORDER BY id DESC LIMIT ?2",
            )
            .context(ctx)?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = stmt
            .query_map(params![flow_id, limit], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<i64>>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, Option<String>>(5)?,
                    r.get::<_, Option<String>>(6)?,
                ))
            })
            .context(ctx)?
            .collect::<Result<Vec<_>, _>>()
            .context(ctx)?;
        let json = |id: i64, v: Option<String>| -> Result<Option<Value>, StoreError> {
            v.map(|s| serde_json::from_str(&s))
                .transpose()
                .context(|| format!("flow `{flow}`: decoding audit entry {id}"))
        };
        rows.into_iter()
            .map(|(id, ts, run, what, subject, before, after)| {
                Ok(AuditRecord {
                    id,
                    ts,
                    flow: Some(flow.into()),
                    run: run.map(RunId),
                    what,
                    subject,
                    before: json(id, before)?,
                    after: json(id, after)?,
                })
            })
            .collect()
    }
}

pub(super) fn insert_audit(
    conn: &rusqlite::Connection,
    e: &AuditEntry<'_>,
) -> Result<(), StoreError> {
    let ctx = || {
        format!(
            "flow `{}`: auditing {} of {}",
            e.flow.unwrap_or("-"),
            e.what,
            e.subject
        )
    };
    let flow_id = e.flow.map(|f| Store::flow_id(conn, f)).transpose()?;
    let enc = |v: Option<&Value>| -> Result<Option<String>, StoreError> {
        v.map(|v| serde_json::to_string(&redact(v)))
            .transpose()
            .context(ctx)
    };
    let (before, after) = (enc(e.before)?, enc(e.after)?);
    conn.prepare_cached(
        "INSERT INTO audit (ts, flow_id, run_id, what, subject, before, after)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .and_then(|mut s| {
        s.execute(params![
            time::now(),
            flow_id,
            e.run.map(|r| r.0),
            e.what,
            e.subject,
            before,
            after
        ])
    })
    .context(ctx)?;
    Ok(())
}

/// A `held_plans` row as [`Store::select_held`] selects it, with the plan's
/// steps still JSON.
fn held_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(HeldPlan, String)> {
    Ok((
        HeldPlan {
            id: HeldPlanId(r.get(0)?),
            flow: String::new(),
            run: RunId(r.get(1)?),
            created_at: r.get(2)?,
            steps: Vec::new(),
            snapshot_digest: r.get(4)?,
            breaches: r.get(5)?,
            approved_at: r.get(6)?,
            approved_by: r.get(7)?,
            superseded_at: r.get(8)?,
            rejected_by: r.get(9)?,
        },
        r.get(3)?,
    ))
}

/// A plan just written must read back.
fn read_back(plan: Option<HeldPlan>, flow: &str) -> Result<HeldPlan, StoreError> {
    plan.ok_or_else(|| StoreError::NoHeldPlan(flow.into()))
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
