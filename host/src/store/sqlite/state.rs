//! Watermarks, held plans and the audit log in SQLite.

use muster_core::Step;
use rusqlite::{OptionalExtension, params};
use serde_json::Value;

use super::SqliteStore;
use super::runs::run_state;
use crate::store::state::{HELD_COLUMNS, RawHeld, held_plan, redact};
use crate::store::{
    AuditEntry, AuditRecord, Context, HeldPlan, HeldPlanId, RunId, Side, StoreError, time,
};

impl SqliteStore {
    /// A watermark of `flow` (e.g. the source's last `modifiedAt`), if set.
    pub fn watermark(
        &self,
        flow: &str,
        side: Side,
        key: &str,
    ) -> Result<Option<String>, StoreError> {
        let flow_id = SqliteStore::flow_id(&self.conn, flow)?;
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
        let flow_id = SqliteStore::flow_id(&self.conn, flow)?;
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
        let flow_id = SqliteStore::flow_id(&tx, flow)?;
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
        self.select_held(flow, "approved_at IS NULL AND superseded_at IS NULL", None)
    }

    /// See [`crate::store::Store::held_plan_by_id`].
    pub fn held_plan_by_id(
        &self,
        flow: &str,
        id: HeldPlanId,
    ) -> Result<Option<HeldPlan>, StoreError> {
        self.select_held(flow, "id = ?2", Some(id))
    }

    /// The one held plan of `flow` matching `filter` (SQL over
    /// `held_plans`, where `?1` is the flow's id and `?2` the optional
    /// plan id).
    fn select_held(
        &self,
        flow: &str,
        filter: &str,
        id: Option<HeldPlanId>,
    ) -> Result<Option<HeldPlan>, StoreError> {
        let flow_id = SqliteStore::flow_id(&self.conn, flow)?;
        let sql = format!("SELECT {HELD_COLUMNS} FROM held_plans WHERE flow_id = ?1 AND {filter}");
        let row = match id {
            Some(id) => self
                .conn
                .query_row(&sql, params![flow_id, id.0], raw_held)
                .optional(),
            None => self.conn.query_row(&sql, [flow_id], raw_held).optional(),
        }
        .context(|| format!("flow `{flow}`: reading its held plan"))?;
        row.map(|raw| held_plan(flow, raw)).transpose()
    }

    /// Retires the pending held plan of `flow`, if any: a later plan was
    /// applied (not held), so the held one no longer describes what is left
    /// to do. Returns whether there was one.
    pub fn supersede_held(&mut self, flow: &str) -> Result<bool, StoreError> {
        let flow_id = SqliteStore::flow_id(&self.conn, flow)?;
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

    /// See [`crate::store::Store::reject_held`].
    pub fn reject_held(
        &mut self,
        flow: &str,
        id: HeldPlanId,
        who: &str,
    ) -> Result<HeldPlan, StoreError> {
        let ctx = || format!("flow `{flow}`: rejecting held plan {id}");
        let now = time::now();
        let tx = self.write_tx(ctx)?;
        let flow_id = SqliteStore::flow_id(&tx, flow)?;
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
        self.held_plan_by_id(flow, id)?
            .ok_or_else(|| StoreError::NoHeldPlan(flow.into()))
    }

    /// Writes an audit entry (redacted, see [`redact`]), committed.
    pub fn audit(&mut self, entry: &AuditEntry<'_>) -> Result<(), StoreError> {
        insert_audit(&self.conn, entry)
    }

    /// The last `limit` audit entries of `flow`, newest first.
    pub fn audit_log(&self, flow: &str, limit: usize) -> Result<Vec<AuditRecord>, StoreError> {
        let flow_id = SqliteStore::flow_id(&self.conn, flow)?;
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
    let flow_id = e.flow.map(|f| SqliteStore::flow_id(conn, f)).transpose()?;
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

/// A `held_plans` row of [`HELD_COLUMNS`].
fn raw_held(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawHeld> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
        r.get(9)?,
    ))
}
