//! The webhook inbox in SQLite (see [`crate::store::inbox`] for the
//! protocol).

use rusqlite::{OptionalExtension, params};

use super::SqliteStore;
use crate::store::{
    Context, InboxEvent, InboxId, InboxState, Pushed, RunId, StoreError, parse_enum, time,
};

const COLUMNS: &str = "i.id, f.name, i.received_at, i.delivery_id, i.record_id, i.payload, \
                       i.state, i.attempts, i.error, i.run_id, i.processed_at";

type Row = (
    i64,
    String,
    String,
    Option<String>,
    Option<String>,
    String,
    String,
    u32,
    Option<String>,
    Option<i64>,
    Option<String>,
);

fn read_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
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
        r.get(10)?,
    ))
}

fn to_event(row: Row) -> Result<InboxEvent, StoreError> {
    let (id, flow, received_at, delivery_id, record_id, payload, state, attempts, error, run, at) =
        row;
    Ok(InboxEvent {
        id: InboxId(id),
        flow,
        received_at,
        delivery_id,
        record_id,
        payload,
        state: parse_enum("webhook_inbox.state", state, InboxState::parse)?,
        attempts,
        error,
        run: run.map(RunId),
        processed_at: at,
    })
}

impl SqliteStore {
    /// Stores an event for `flow`, committed before it returns. With a
    /// `delivery_id`, a second push of the same id stores nothing and
    /// returns [`Pushed::Duplicate`] with the first event's id.
    pub fn inbox_push(
        &mut self,
        flow: &str,
        delivery_id: Option<&str>,
        record_id: Option<&str>,
        payload: &str,
    ) -> Result<Pushed, StoreError> {
        let ctx = || format!("flow `{flow}`: storing a webhook event");
        let tx = self.write_tx(ctx)?;
        let flow_id = SqliteStore::flow_id(&tx, flow)?;
        if let Some(d) = delivery_id {
            let existing: Option<i64> = tx
                .query_row(
                    "SELECT id FROM webhook_inbox WHERE flow_id = ?1 AND delivery_id = ?2",
                    params![flow_id, d],
                    |r| r.get(0),
                )
                .optional()
                .context(ctx)?;
            if let Some(id) = existing {
                return Ok(Pushed::Duplicate(InboxId(id)));
            }
        }
        tx.execute(
            "INSERT INTO webhook_inbox (flow_id, received_at, payload, delivery_id, record_id, state)
             VALUES (?1, ?2, ?3, ?4, ?5, 'pending')",
            params![flow_id, time::now(), payload, delivery_id, record_id],
        )
        .context(ctx)?;
        let id = InboxId(tx.last_insert_rowid());
        tx.commit().context(ctx)?;
        Ok(Pushed::New(id))
    }

    /// One event.
    pub fn inbox_event(&self, id: InboxId) -> Result<InboxEvent, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM webhook_inbox i JOIN flows f ON f.id = i.flow_id WHERE i.id = ?1"
        );
        let row = self
            .conn
            .query_row(&sql, [id.0], read_row)
            .optional()
            .context(|| format!("inbox event {id}: reading it"))?;
        match row {
            Some(row) => to_event(row),
            None => Err(StoreError::Invalid {
                column: "webhook_inbox.id",
                value: id.to_string(),
            }),
        }
    }

    /// The `pending` events of `flow`, oldest first: what is still to be
    /// processed or retried.
    pub fn inbox_pending(&self, flow: &str) -> Result<Vec<InboxEvent>, StoreError> {
        self.inbox_query(
            flow,
            "i.state = 'pending' ORDER BY i.id",
            usize::MAX,
            "listing pending webhook events",
        )
    }

    /// The last `limit` events of `flow` in any state, newest first.
    pub fn inbox_recent(&self, flow: &str, limit: usize) -> Result<Vec<InboxEvent>, StoreError> {
        self.inbox_query(
            flow,
            "1 ORDER BY i.id DESC",
            limit,
            "listing webhook events",
        )
    }

    fn inbox_query(
        &self,
        flow: &str,
        filter_order: &str,
        limit: usize,
        what: &str,
    ) -> Result<Vec<InboxEvent>, StoreError> {
        let flow_id = SqliteStore::flow_id(&self.conn, flow)?;
        let ctx = || format!("flow `{flow}`: {what}");
        let sql = format!(
            "SELECT {COLUMNS} FROM webhook_inbox i JOIN flows f ON f.id = i.flow_id
             WHERE i.flow_id = ?1 AND {filter_order} LIMIT ?2"
        );
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut stmt = self.conn.prepare(&sql).context(ctx)?;
        let rows = stmt
            .query_map(params![flow_id, limit], read_row)
            .context(ctx)?
            .collect::<Result<Vec<_>, _>>()
            .context(ctx)?;
        rows.into_iter().map(to_event).collect()
    }

    /// A run processed the event: `done`, with the run.
    pub fn inbox_done(&mut self, id: InboxId, run: Option<RunId>) -> Result<(), StoreError> {
        let n = self
            .conn
            .execute(
                "UPDATE webhook_inbox
                 SET state = 'done', attempts = attempts + 1, error = NULL,
                     run_id = ?2, processed_at = ?3
                 WHERE id = ?1 AND state = 'pending'",
                params![id.0, run.map(|r| r.0), time::now()],
            )
            .context(|| format!("inbox event {id}: marking it done"))?;
        self.inbox_updated(id, n)
    }

    /// A run tried and failed: the event stays `pending` (to be retried),
    /// with one more attempt, the run (if one started) and the error.
    pub fn inbox_failed(
        &mut self,
        id: InboxId,
        run: Option<RunId>,
        error: &str,
    ) -> Result<(), StoreError> {
        let n = self
            .conn
            .execute(
                "UPDATE webhook_inbox
                 SET attempts = attempts + 1, run_id = COALESCE(?2, run_id), error = ?3
                 WHERE id = ?1 AND state = 'pending'",
                params![id.0, run.map(|r| r.0), error],
            )
            .context(|| format!("inbox event {id}: recording a failed attempt"))?;
        self.inbox_updated(id, n)
    }

    /// No run can ever process the event: `rejected`, with the reason. It
    /// stays in the inbox for inspection and is not retried.
    pub fn inbox_reject(&mut self, id: InboxId, reason: &str) -> Result<(), StoreError> {
        let n = self
            .conn
            .execute(
                "UPDATE webhook_inbox SET state = 'rejected', error = ?2, processed_at = ?3
                 WHERE id = ?1 AND state = 'pending'",
                params![id.0, reason, time::now()],
            )
            .context(|| format!("inbox event {id}: rejecting it"))?;
        self.inbox_updated(id, n)
    }

    /// Only a pending event changes state; anything else is the caller's bug.
    fn inbox_updated(&self, id: InboxId, changed: usize) -> Result<(), StoreError> {
        if changed == 1 {
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
