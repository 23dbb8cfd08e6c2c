//! The compound-field rows each flow wrote, in PostgreSQL (twin of
//! `sqlite/written_rows.rs`, whose doc explains the ownership rule).

use muster_core::Step;
use muster_core::rows::{RowAction, WrittenRows, key_text};
use postgres::GenericClient;

use super::PostgresStore;
use crate::store::{Context, JournalId, StoreError, time};

/// Applies the row changes of journal entry `id` (an `update` just settled
/// `done`) to the flow's written rows.
pub(crate) fn record_applied_rows(
    c: &mut impl GenericClient,
    id: JournalId,
) -> Result<(), StoreError> {
    let what = || format!("journal entry {id}: recording the rows it wrote");
    let entry: Option<(i64, Option<String>, String)> = c
        .query_opt(
            "SELECT runs.flow_id, journal.target_id, journal.step
             FROM journal JOIN runs ON runs.id = journal.run_id WHERE journal.id = $1",
            &[&id.0],
        )
        .and_then(|r| {
            r.map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
                .transpose()
        })
        .context(what)?;
    let Some((flow_id, Some(target_id), step)) = entry else {
        return Ok(());
    };
    // Most updates carry no rows: skip the parse.
    if !step.contains("\"rows\"") {
        return Ok(());
    }
    let step: Step = serde_json::from_str(&step).context(what)?;
    let now = time::now();
    for change in &step.rows {
        let Some(key) = change.key_value().and_then(key_text) else {
            continue;
        };
        match change.action {
            RowAction::Add { .. } | RowAction::Change { .. } => c.execute(
                "INSERT INTO written_rows (flow_id, target_id, field, row_key, written_at)
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                &[&flow_id, &target_id, &change.field, &key, &now],
            ),
            RowAction::Remove { .. } => c.execute(
                "DELETE FROM written_rows
                 WHERE flow_id = $1 AND target_id = $2 AND field = $3 AND row_key = $4",
                &[&flow_id, &target_id, &change.field, &key],
            ),
        }
        .context(what)?;
    }
    Ok(())
}

impl PostgresStore {
    /// See [`crate::store::Store::written_rows`].
    pub fn written_rows(&self, flow: &str) -> Result<WrittenRows, StoreError> {
        self.read(|c| {
            let flow_id = PostgresStore::flow_id(c, flow)?;
            let what = || format!("flow `{flow}`: reading the rows it wrote");
            let rows = c
                .query(
                    "SELECT target_id, field, row_key FROM written_rows WHERE flow_id = $1",
                    &[&flow_id],
                )
                .context(what)?;
            let mut out = WrittenRows::default();
            for r in &rows {
                let target: String = r.try_get(0).context(what)?;
                let field: String = r.try_get(1).context(what)?;
                let key: String = r.try_get(2).context(what)?;
                out.insert(&target, &field, &key);
            }
            Ok(out)
        })
    }
}
