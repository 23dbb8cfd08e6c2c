//! The compound-field rows each flow wrote: what makes a target row the
//! flow's to change or remove ([`muster_core::rows`], "Row ownership").
//!
//! Kept from the journal of applied row changes, not from plans: when an
//! `update` entry is settled `done` (by the apply or by recovery), its
//! step's row changes are applied to the `written_rows` table in the same
//! transaction — an add or change records the row's key, a remove forgets
//! it. A row whose call failed, or whose outcome is unknown, is never
//! recorded, so the flow never claims a row it may not have written. Keys
//! are stored as the core compares them ([`muster_core::rows::key_text`]).

use muster_core::Step;
use muster_core::rows::{RowAction, WrittenRows, key_text};
use rusqlite::{Connection, OptionalExtension, params};

use super::SqliteStore;
use crate::store::{Context, JournalId, StoreError, time};

/// Applies the row changes of journal entry `id` (an `update` just settled
/// `done`) to the flow's written rows.
pub(crate) fn record_applied_rows(conn: &Connection, id: JournalId) -> Result<(), StoreError> {
    let what = || format!("journal entry {id}: recording the rows it wrote");
    let entry: Option<(i64, Option<String>, String)> = conn
        .prepare_cached(
            "SELECT runs.flow_id, journal.target_id, journal.step
             FROM journal JOIN runs ON runs.id = journal.run_id WHERE journal.id = ?1",
        )
        .and_then(|mut s| s.query_row([id.0], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))))
        .optional()
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
            RowAction::Add { .. } | RowAction::Change { .. } => conn
                .prepare_cached(
                    "INSERT OR IGNORE INTO written_rows (flow_id, target_id, field, row_key, written_at)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .and_then(|mut s| s.execute(params![flow_id, target_id, change.field, key, now])),
            RowAction::Remove { .. } => conn
                .prepare_cached(
                    "DELETE FROM written_rows
                     WHERE flow_id = ?1 AND target_id = ?2 AND field = ?3 AND row_key = ?4",
                )
                .and_then(|mut s| s.execute(params![flow_id, target_id, change.field, key])),
        }
        .context(what)?;
    }
    Ok(())
}

impl SqliteStore {
    /// The rows `flow` wrote, for [`muster_core::Input::written_rows`].
    pub fn written_rows(&self, flow: &str) -> Result<WrittenRows, StoreError> {
        let flow_id = SqliteStore::flow_id(&self.conn, flow)?;
        let what = || format!("flow `{flow}`: reading the rows it wrote");
        let mut stmt = self
            .conn
            .prepare_cached("SELECT target_id, field, row_key FROM written_rows WHERE flow_id = ?1")
            .context(what)?;
        let rows = stmt
            .query_map([flow_id], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })
            .context(what)?;
        let mut out = WrittenRows::default();
        for row in rows {
            let (target, field, key) = row.context(what)?;
            out.insert(&target, &field, &key);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Resolution, Store, Trigger};
    use muster_core::rows::RowChange;
    use muster_core::{ActionKind, FieldValue, Row};

    fn row(title: &str, score: f64) -> Row {
        [
            ("e_title".to_string(), FieldValue::Text(title.into())),
            ("e_score".to_string(), FieldValue::Number(score)),
        ]
        .into()
    }

    fn update(target: &str, actions: Vec<RowAction>) -> Step {
        Step {
            kind: ActionKind::Update,
            source_id: Some("c-1".into()),
            target_id: Some(target.into()),
            label: "Ana".into(),
            reason: "owned_fields_differ".into(),
            explanation: "source wins on owned fields".into(),
            changes: Vec::new(),
            created: Vec::new(),
            rows: actions
                .into_iter()
                .map(|action| RowChange {
                    field: "e_formation".into(),
                    key: "e_title".into(),
                    action,
                })
                .collect(),
            members: Vec::new(),
            member_names: Default::default(),
            carries: Vec::new(),
            group_name: None,
            manager_source_id: None,
        }
    }

    fn keys(s: &Store, target: &str) -> Vec<String> {
        let w = s.written_rows("f").unwrap();
        w.keys(target, "e_formation").iter().cloned().collect()
    }

    #[test]
    fn rows_are_recorded_when_their_update_is_done_and_only_then() {
        let mut s = Store::open_in_memory().unwrap();
        s.ensure_flow("f", "cards", "lucca").unwrap();
        let run = s.begin_run("f", Trigger::Manual).unwrap();
        let add = |t: &str, v| RowAction::Add { row: row(t, v) };
        let done = s
            .journal_intent(
                run,
                0,
                &update("416", vec![add(" GDPR ", 10.0), add("Security", 60.0)]),
            )
            .unwrap();
        let failed = s
            .journal_intent(run, 1, &update("417", vec![add("GDPR", 10.0)]))
            .unwrap();
        let unknown = s
            .journal_intent(run, 2, &update("418", vec![add("GDPR", 10.0)]))
            .unwrap();
        assert!(
            s.written_rows("f").unwrap().is_empty(),
            "an intent writes nothing"
        );
        s.journal_done(done, Some("416")).unwrap();
        s.journal_failed(failed, "HTTP 500").unwrap();
        s.resolve_journal(
            unknown,
            &Resolution::Unknown {
                note: "cannot tell".into(),
            },
        )
        .unwrap();
        assert_eq!(keys(&s, "416"), ["GDPR", "Security"]);
        assert!(keys(&s, "417").is_empty() && keys(&s, "418").is_empty());
        // A later remove forgets the row; a change keeps it.
        let next = s
            .journal_intent(
                run,
                3,
                &update(
                    "416",
                    vec![
                        RowAction::Remove {
                            key: FieldValue::Text("GDPR".into()),
                        },
                        RowAction::Change {
                            row: row("Security", 75.0),
                            changed: Vec::new(),
                        },
                    ],
                ),
            )
            .unwrap();
        s.journal_done(next, Some("416")).unwrap();
        assert_eq!(keys(&s, "416"), ["Security"]);
    }
}
