//! Watermarks, held plans and the audit log in PostgreSQL (twin of
//! `sqlite/state.rs`).

use muster_core::Step;
use postgres::GenericClient;
use postgres::types::Type;
use serde_json::Value;

use super::runs::run_state;
use super::{PostgresStore, limit};
use crate::store::state::{HELD_COLUMNS, RawHeld, held_plan, redact};
use crate::store::{
    AuditEntry, AuditRecord, Context, HeldPlan, HeldPlanId, RunId, Side, StoreError, time,
};

const PENDING: &str = "approved_at IS NULL AND superseded_at IS NULL";

impl PostgresStore {
    /// See [`crate::store::Store::watermark`].
    pub fn watermark(
        &self,
        flow: &str,
        side: Side,
        key: &str,
    ) -> Result<Option<String>, StoreError> {
        self.read(|c| {
            let flow_id = PostgresStore::flow_id(c, flow)?;
            c.query_opt(
                "SELECT value FROM watermarks WHERE flow_id = $1 AND side = $2 AND key = $3",
                &[&flow_id, &side.as_str(), &key],
            )
            .and_then(|r| r.map(|r| r.try_get(0)).transpose())
            .context(|| format!("flow `{flow}`: reading watermark {}.{key}", side.as_str()))
        })
    }

    /// See [`crate::store::Store::set_watermark`].
    pub fn set_watermark(
        &mut self,
        flow: &str,
        side: Side,
        key: &str,
        value: &str,
    ) -> Result<(), StoreError> {
        let ctx = || format!("flow `{flow}`: setting watermark {}.{key}", side.as_str());
        // One statement, unfenced, as in SQLite.
        self.read(|tx| {
            let flow_id = PostgresStore::flow_id(tx, flow)?;
            tx.execute(
                "INSERT INTO watermarks (flow_id, side, key, value, updated_at)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (flow_id, side, key)
                 DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                &[&flow_id, &side.as_str(), &key, &value, &time::now()],
            )
            .context(ctx)?;
            Ok(())
        })
    }

    /// See [`crate::store::Store::hold_plan`].
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
        self.write(ctx, |tx| {
            let flow_id = PostgresStore::flow_id(tx, flow)?;
            let (run_flow, _) = run_state(tx, run)?;
            if run_flow != flow {
                return Err(StoreError::UnknownRun(run));
            }
            let now = time::now();
            tx.execute(
                &format!("UPDATE held_plans SET superseded_at = $2 WHERE flow_id = $1 AND {PENDING}"),
                &[&flow_id, &now],
            )
            .context(ctx)?;
            tx.query_one(
                "INSERT INTO held_plans (flow_id, run_id, created_at, plan, snapshot_digest, breaches)
                 VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                &[&flow_id, &run.0, &now, &plan, &snapshot_digest, &breaches],
            )
            .and_then(|r| r.try_get(0))
            .map(HeldPlanId)
            .context(ctx)
        })
    }

    /// See [`crate::store::Store::held_plan`].
    pub fn held_plan(&self, flow: &str) -> Result<Option<HeldPlan>, StoreError> {
        self.select_held(flow, PENDING, None)
    }

    /// See [`crate::store::Store::held_plan_by_id`].
    pub fn held_plan_by_id(
        &self,
        flow: &str,
        id: HeldPlanId,
    ) -> Result<Option<HeldPlan>, StoreError> {
        self.select_held(flow, "id = $2", Some(id))
    }

    /// The one held plan of `flow` matching `filter` (SQL over
    /// `held_plans`, where `$1` is the flow's id and `$2` the optional plan
    /// id).
    fn select_held(
        &self,
        flow: &str,
        filter: &str,
        id: Option<HeldPlanId>,
    ) -> Result<Option<HeldPlan>, StoreError> {
        let ctx = || format!("flow `{flow}`: reading its held plan");
        let sql = format!("SELECT {HELD_COLUMNS} FROM held_plans WHERE flow_id = $1 AND {filter}");
        let raw = self.read(|c| {
            let flow_id = PostgresStore::flow_id(c, flow)?;
            let row = match id {
                Some(id) => c.query_opt(&sql, &[&flow_id, &id.0]),
                None => c.query_opt(&sql, &[&flow_id]),
            }
            .context(ctx)?;
            row.map(|r| raw_held(&r)).transpose().context(ctx)
        })?;
        raw.map(|raw| held_plan(flow, raw)).transpose()
    }

    /// See [`crate::store::Store::supersede_held`].
    pub fn supersede_held(&mut self, flow: &str) -> Result<bool, StoreError> {
        let ctx = || format!("flow `{flow}`: retiring its held plan");
        let n = self.read(|tx| {
            let flow_id = PostgresStore::flow_id(tx, flow)?;
            tx.execute(
                &format!(
                    "UPDATE held_plans SET superseded_at = $2 WHERE flow_id = $1 AND {PENDING}"
                ),
                &[&flow_id, &time::now()],
            )
            .context(ctx)
        })?;
        Ok(n > 0)
    }

    /// See [`crate::store::Store::approve_held`].
    pub fn approve_held(&mut self, flow: &str, approved_by: &str) -> Result<HeldPlan, StoreError> {
        let mut plan = self
            .held_plan(flow)?
            .ok_or_else(|| StoreError::NoHeldPlan(flow.into()))?;
        let ctx = || format!("flow `{flow}`: approving held plan");
        let now = time::now();
        self.write(ctx, |tx| {
            let n = tx
                .execute(
                    &format!(
                        "UPDATE held_plans SET approved_at = $2, approved_by = $3
                         WHERE id = $1 AND {PENDING}"
                    ),
                    &[&plan.id.0, &now, &approved_by],
                )
                .context(ctx)?;
            if n == 0 {
                // Approved or superseded by another worker meanwhile.
                return Err(StoreError::NoHeldPlan(flow.into()));
            }
            let after = serde_json::json!({ "held_plan": plan.id.0, "approved_by": approved_by });
            insert_audit(
                tx,
                &AuditEntry {
                    flow: Some(flow),
                    run: Some(plan.run),
                    what: "approve_held",
                    subject: flow,
                    before: None,
                    after: Some(&after),
                },
            )
        })?;
        plan.approved_at = Some(now);
        plan.approved_by = Some(approved_by.into());
        Ok(plan)
    }

    /// See [`crate::store::Store::reject_held`].
    pub fn reject_held(
        &mut self,
        flow: &str,
        id: HeldPlanId,
        who: &str,
    ) -> Result<HeldPlan, StoreError> {
        let ctx = || format!("flow `{flow}`: rejecting held plan {id}");
        let now = time::now();
        self.write(ctx, |tx| {
            let flow_id = PostgresStore::flow_id(tx, flow)?;
            let run: Option<i64> = tx
                .query_opt(
                    &format!(
                        "UPDATE held_plans SET superseded_at = $3, rejected_by = $4
                         WHERE id = $1 AND flow_id = $2 AND {PENDING} RETURNING run_id"
                    ),
                    &[&id.0, &flow_id, &now, &who],
                )
                .and_then(|r| r.map(|r| r.try_get(0)).transpose())
                .context(ctx)?;
            let Some(run) = run else {
                return Err(StoreError::NoHeldPlan(flow.into()));
            };
            let after = serde_json::json!({ "held_plan": id.0, "rejected_by": who });
            insert_audit(
                tx,
                &AuditEntry {
                    flow: Some(flow),
                    run: Some(RunId(run)),
                    what: "reject_held",
                    subject: flow,
                    before: None,
                    after: Some(&after),
                },
            )
        })?;
        self.held_plan_by_id(flow, id)?
            .ok_or_else(|| StoreError::NoHeldPlan(flow.into()))
    }

    /// See [`crate::store::Store::audit`].
    pub fn audit(&mut self, entry: &AuditEntry<'_>) -> Result<(), StoreError> {
        self.read(|c| insert_audit(c, entry))
    }

    /// See [`crate::store::Store::audit_log`].
    pub fn audit_log(&self, flow: &str, max: usize) -> Result<Vec<AuditRecord>, StoreError> {
        let ctx = || format!("flow `{flow}`: reading the audit log");
        let rows = self.read(|c| {
            let flow_id = PostgresStore::flow_id(c, flow)?;
            c.query(
                "SELECT id, ts, run_id, what, subject, before, after FROM audit
                 WHERE flow_id = $1 ORDER BY id DESC LIMIT $2",
                &[&flow_id, &limit(max)],
            )
            .context(ctx)
        })?;
        let json = |id: i64, v: Option<String>| -> Result<Option<Value>, StoreError> {
            v.map(|s| serde_json::from_str(&s))
                .transpose()
                .context(|| format!("flow `{flow}`: decoding audit entry {id}"))
        };
        rows.iter()
            .map(|r| {
                let id: i64 = r.try_get(0).context(ctx)?;
                Ok(AuditRecord {
                    id,
                    ts: r.try_get(1).context(ctx)?,
                    flow: Some(flow.into()),
                    run: r.try_get::<_, Option<i64>>(2).context(ctx)?.map(RunId),
                    what: r.try_get(3).context(ctx)?,
                    subject: r.try_get(4).context(ctx)?,
                    before: json(id, r.try_get(5).context(ctx)?)?,
                    after: json(id, r.try_get(6).context(ctx)?)?,
                })
            })
            .collect()
    }
}

/// Writes a redacted audit entry inside the caller's transaction.
pub(super) fn insert_audit(
    c: &mut impl GenericClient,
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
    let flow_id = e.flow.map(|f| PostgresStore::flow_id(c, f)).transpose()?;
    let enc = |v: Option<&Value>| -> Result<Option<String>, StoreError> {
        v.map(|v| serde_json::to_string(&redact(v)))
            .transpose()
            .context(ctx)
    };
    let (before, after) = (enc(e.before)?, enc(e.after)?);
    c.query_typed(
        "INSERT INTO audit (ts, flow_id, run_id, what, subject, before, after)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[
            (&time::now(), Type::TEXT),
            (&flow_id, Type::INT8),
            (&e.run.map(|r| r.0), Type::INT8),
            (&e.what, Type::TEXT),
            (&e.subject, Type::TEXT),
            (&before, Type::TEXT),
            (&after, Type::TEXT),
        ],
    )
    .context(ctx)?;
    Ok(())
}

/// A `held_plans` row of [`HELD_COLUMNS`].
fn raw_held(r: &postgres::Row) -> Result<RawHeld, postgres::Error> {
    Ok((
        r.try_get(0)?,
        r.try_get(1)?,
        r.try_get(2)?,
        r.try_get(3)?,
        r.try_get(4)?,
        r.try_get(5)?,
        r.try_get(6)?,
        r.try_get(7)?,
        r.try_get(8)?,
        r.try_get(9)?,
    ))
}
