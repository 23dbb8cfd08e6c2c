//! The webhook inbox in PostgreSQL (twin of `sqlite/inbox.rs`).

use postgres::types::ToSql;

use super::{PostgresStore, limit, to_u32};
use crate::store::{
    Context, InboxEvent, InboxId, InboxState, Pushed, RunId, StoreError, parse_enum, time,
};

const COLUMNS: &str = "i.id, f.name, i.received_at, i.delivery_id, i.record_id, i.payload, \
                       i.state, i.attempts, i.error, i.run_id, i.processed_at";

fn to_event(r: &postgres::Row) -> Result<InboxEvent, StoreError> {
    let id: i64 = r.try_get(0).context(|| "reading an inbox event".into())?;
    let ctx = || format!("inbox event {id}: reading it");
    let state: String = r.try_get(6).context(ctx)?;
    let attempts: i64 = r.try_get(7).context(ctx)?;
    Ok(InboxEvent {
        id: InboxId(id),
        flow: r.try_get(1).context(ctx)?,
        received_at: r.try_get(2).context(ctx)?,
        delivery_id: r.try_get(3).context(ctx)?,
        record_id: r.try_get(4).context(ctx)?,
        payload: r.try_get(5).context(ctx)?,
        state: parse_enum("webhook_inbox.state", state, InboxState::parse)?,
        attempts: to_u32("webhook_inbox.attempts", attempts)?,
        error: r.try_get(8).context(ctx)?,
        run: r.try_get::<_, Option<i64>>(9).context(ctx)?.map(RunId),
        processed_at: r.try_get(10).context(ctx)?,
    })
}

impl PostgresStore {
    /// See [`crate::store::Store::inbox_push`]. The partial unique index on
    /// `(flow_id, delivery_id)` makes a concurrent redelivery a conflict
    /// that stores nothing; the first event's id is then read back.
    pub fn inbox_push(
        &mut self,
        flow: &str,
        delivery_id: Option<&str>,
        record_id: Option<&str>,
        payload: &str,
    ) -> Result<Pushed, StoreError> {
        let ctx = || format!("flow `{flow}`: storing a webhook event");
        self.write(ctx, |tx| {
            let flow_id = PostgresStore::flow_id(tx, flow)?;
            let inserted = tx
                .query_opt(
                    "INSERT INTO webhook_inbox
                       (flow_id, received_at, payload, delivery_id, record_id, state)
                     VALUES ($1, $2, $3, $4, $5, 'pending')
                     ON CONFLICT (flow_id, delivery_id) WHERE delivery_id IS NOT NULL DO NOTHING
                     RETURNING id",
                    &[&flow_id, &time::now(), &payload, &delivery_id, &record_id],
                )
                .and_then(|r| r.map(|r| r.try_get(0)).transpose())
                .context(ctx)?;
            if let Some(id) = inserted {
                return Ok(Pushed::New(InboxId(id)));
            }
            tx.query_one(
                "SELECT id FROM webhook_inbox WHERE flow_id = $1 AND delivery_id = $2",
                &[&flow_id, &delivery_id],
            )
            .and_then(|r| r.try_get(0))
            .map(|id| Pushed::Duplicate(InboxId(id)))
            .context(ctx)
        })
    }

    /// See [`crate::store::Store::inbox_event`].
    pub fn inbox_event(&self, id: InboxId) -> Result<InboxEvent, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM webhook_inbox i JOIN flows f ON f.id = i.flow_id WHERE i.id = $1"
        );
        let row = self.read(|c| {
            c.query_opt(&sql, &[&id.0])
                .context(|| format!("inbox event {id}: reading it"))
        })?;
        match row {
            Some(row) => to_event(&row),
            None => Err(StoreError::Invalid {
                column: "webhook_inbox.id",
                value: id.to_string(),
            }),
        }
    }

    /// See [`crate::store::Store::inbox_pending`].
    pub fn inbox_pending(&self, flow: &str) -> Result<Vec<InboxEvent>, StoreError> {
        self.inbox_query(
            flow,
            "i.state = 'pending' ORDER BY i.id",
            usize::MAX,
            "listing pending webhook events",
        )
    }

    /// See [`crate::store::Store::inbox_recent`].
    pub fn inbox_recent(&self, flow: &str, max: usize) -> Result<Vec<InboxEvent>, StoreError> {
        self.inbox_query(
            flow,
            "TRUE ORDER BY i.id DESC",
            max,
            "listing webhook events",
        )
    }

    fn inbox_query(
        &self,
        flow: &str,
        filter_order: &str,
        max: usize,
        what: &str,
    ) -> Result<Vec<InboxEvent>, StoreError> {
        let ctx = || format!("flow `{flow}`: {what}");
        let sql = format!(
            "SELECT {COLUMNS} FROM webhook_inbox i JOIN flows f ON f.id = i.flow_id
             WHERE i.flow_id = $1 AND {filter_order} LIMIT $2"
        );
        let rows = self.read(|c| {
            let flow_id = PostgresStore::flow_id(c, flow)?;
            c.query(&sql, &[&flow_id, &limit(max)]).context(ctx)
        })?;
        rows.iter().map(to_event).collect()
    }

    /// See [`crate::store::Store::inbox_done`].
    pub fn inbox_done(&mut self, id: InboxId, run: Option<RunId>) -> Result<(), StoreError> {
        self.inbox_update(
            id,
            "UPDATE webhook_inbox
             SET state = 'done', attempts = attempts + 1, error = NULL,
                 run_id = $2, processed_at = $3
             WHERE id = $1 AND state = 'pending'",
            &[&id.0, &run.map(|r| r.0), &time::now()],
            "marking it done",
        )
    }

    /// See [`crate::store::Store::inbox_failed`].
    pub fn inbox_failed(
        &mut self,
        id: InboxId,
        run: Option<RunId>,
        error: &str,
    ) -> Result<(), StoreError> {
        self.inbox_update(
            id,
            "UPDATE webhook_inbox
             SET attempts = attempts + 1, run_id = COALESCE($2, run_id), error = $3
             WHERE id = $1 AND state = 'pending'",
            &[&id.0, &run.map(|r| r.0), &error],
            "recording a failed attempt",
        )
    }

    /// See [`crate::store::Store::inbox_reject`].
    pub fn inbox_reject(&mut self, id: InboxId, reason: &str) -> Result<(), StoreError> {
        self.inbox_update(
            id,
            "UPDATE webhook_inbox SET state = 'rejected', error = $2, processed_at = $3
             WHERE id = $1 AND state = 'pending'",
            &[&id.0, &reason, &time::now()],
            "rejecting it",
        )
    }

    /// One state change of a pending event; anything else is the caller's
    /// bug, reported with the event's current state.
    fn inbox_update(
        &mut self,
        id: InboxId,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
        what: &str,
    ) -> Result<(), StoreError> {
        let n = self.read(|c| {
            c.execute(sql, params)
                .context(|| format!("inbox event {id}: {what}"))
        })?;
        if n == 1 {
            return Ok(());
        }
        let event = self.inbox_event(id)?;
        Err(StoreError::Invalid {
            column: "webhook_inbox.state",
            value: format!(
                "event {id} is `{}`: only a pending event can change state",
                event.state
            ),
        })
    }
}
