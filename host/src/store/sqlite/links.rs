//! Flows and links in SQLite (see [`crate::store::links`] for what a link
//! guarantees): the API checks both directions and names the conflicting
//! ids, and the schema's two UNIQUE constraints hold even if a caller
//! bypasses it.

use muster_core::Link;
use rusqlite::{Connection, OptionalExtension, params};

use super::SqliteStore;
use crate::store::{Context, LinkKind, StoreError, time};

impl SqliteStore {
    /// Records a flow (idempotent). A flow keeps its connections for life:
    /// re-recording it with other ones is [`StoreError::FlowChanged`],
    /// because its links name records of the original systems.
    pub fn ensure_flow(
        &mut self,
        flow: &str,
        source_connection: &str,
        target_connection: &str,
    ) -> Result<(), StoreError> {
        let tx = self.write_tx(|| format!("flow `{flow}`: recording it"))?;
        let existing: Option<(String, String)> = tx
            .query_row(
                "SELECT source_connection, target_connection FROM flows WHERE name = ?1",
                [flow],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .context(|| format!("flow `{flow}`: looking it up"))?;
        match existing {
            Some((s, t)) if s == source_connection && t == target_connection => Ok(()),
            Some((s, t)) => Err(StoreError::FlowChanged {
                flow: flow.into(),
                recorded_source: s,
                recorded_target: t,
                source_connection: source_connection.into(),
                target_connection: target_connection.into(),
            }),
            None => {
                tx.execute(
                    "INSERT INTO flows (name, source_connection, target_connection, created_at)
                     VALUES (?1, ?2, ?3, ?4)",
                    params![flow, source_connection, target_connection, time::now()],
                )
                .context(|| format!("flow `{flow}`: recording it"))?;
                tx.commit()
                    .context(|| format!("flow `{flow}`: committing it"))
            }
        }
    }

    /// Read-only [`SqliteStore::ensure_flow`]: `Ok(false)` for a flow never
    /// recorded, [`StoreError::FlowChanged`] for one recorded with other
    /// connections. `plan` uses it, since it records nothing.
    pub fn check_flow(
        &self,
        flow: &str,
        source_connection: &str,
        target_connection: &str,
    ) -> Result<bool, StoreError> {
        let existing: Option<(String, String)> = self
            .conn
            .query_row(
                "SELECT source_connection, target_connection FROM flows WHERE name = ?1",
                [flow],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .context(|| format!("flow `{flow}`: looking it up"))?;
        match existing {
            None => Ok(false),
            Some((s, t)) if s == source_connection && t == target_connection => Ok(true),
            Some((s, t)) => Err(StoreError::FlowChanged {
                flow: flow.into(),
                recorded_source: s,
                recorded_target: t,
                source_connection: source_connection.into(),
                target_connection: target_connection.into(),
            }),
        }
    }

    /// The links of one kind of a flow, ordered by source id.
    pub(crate) fn links_of(&self, flow: &str, kind: LinkKind) -> Result<Vec<Link>, StoreError> {
        let flow_id = SqliteStore::flow_id(&self.conn, flow)?;
        let ctx = || format!("flow `{flow}`: reading {kind} links");
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT source_id, target_id FROM links
                 WHERE flow_id = ?1 AND kind = ?2 ORDER BY source_id",
            )
            .context(ctx)?;
        let rows = stmt
            .query_map(params![flow_id, kind.as_str()], |r| {
                Ok(Link::new(r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })
            .context(ctx)?;
        rows.collect::<Result<Vec<_>, _>>().context(ctx)
    }

    /// Records a link, committed before returning. Adding the exact same
    /// link again is a no-op; linking a source or a target that is already
    /// linked to something else is an error naming both ids.
    pub fn add_link(
        &mut self,
        flow: &str,
        kind: LinkKind,
        source_id: &str,
        target_id: &str,
    ) -> Result<(), StoreError> {
        let tx = self.write_tx(|| format!("flow `{flow}`: adding a {kind} link"))?;
        insert_link(&tx, flow, kind, source_id, target_id)?;
        tx.commit()
            .context(|| format!("flow `{flow}`: committing {kind} link {source_id} -> {target_id}"))
    }

    /// Removes a link. Only for corrections by an operator (a wrong manual
    /// link): the engine never unlinks, it deactivates.
    pub fn remove_link(
        &mut self,
        flow: &str,
        kind: LinkKind,
        source_id: &str,
        target_id: &str,
    ) -> Result<(), StoreError> {
        let flow_id = SqliteStore::flow_id(&self.conn, flow)?;
        let n = self
            .conn
            .execute(
                "DELETE FROM links
                 WHERE flow_id = ?1 AND kind = ?2 AND source_id = ?3 AND target_id = ?4",
                params![flow_id, kind.as_str(), source_id, target_id],
            )
            .context(|| {
                format!("flow `{flow}`: removing {kind} link {source_id} -> {target_id}")
            })?;
        if n == 0 {
            return Err(StoreError::NoSuchLink {
                flow: flow.into(),
                kind,
                source_id: source_id.into(),
                target_id: target_id.into(),
            });
        }
        Ok(())
    }
}

/// Inserts a link inside the caller's transaction, checking both UNIQUE
/// directions first so the error can name the link already there.
pub(crate) fn insert_link(
    conn: &Connection,
    flow: &str,
    kind: LinkKind,
    source_id: &str,
    target_id: &str,
) -> Result<(), StoreError> {
    let flow_id = SqliteStore::flow_id(conn, flow)?;
    let ctx = || format!("flow `{flow}`: adding {kind} link {source_id} -> {target_id}");
    let by_source: Option<String> = conn
        .prepare_cached(
            "SELECT target_id FROM links WHERE flow_id = ?1 AND kind = ?2 AND source_id = ?3",
        )
        .and_then(|mut s| s.query_row(params![flow_id, kind.as_str(), source_id], |r| r.get(0)))
        .optional()
        .context(ctx)?;
    match by_source {
        Some(existing) if existing == target_id => return Ok(()),
        Some(existing_target) => {
            return Err(StoreError::SourceAlreadyLinked {
                flow: flow.into(),
                kind,
                source_id: source_id.into(),
                target_id: target_id.into(),
                existing_target,
            });
        }
        None => {}
    }
    let by_target: Option<String> = conn
        .prepare_cached(
            "SELECT source_id FROM links WHERE flow_id = ?1 AND kind = ?2 AND target_id = ?3",
        )
        .and_then(|mut s| s.query_row(params![flow_id, kind.as_str(), target_id], |r| r.get(0)))
        .optional()
        .context(ctx)?;
    if let Some(existing_source) = by_target {
        return Err(StoreError::TargetAlreadyLinked {
            flow: flow.into(),
            kind,
            source_id: source_id.into(),
            target_id: target_id.into(),
            existing_source,
        });
    }
    conn.prepare_cached(
        "INSERT INTO links (flow_id, kind, source_id, target_id, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .and_then(|mut s| {
        s.execute(params![
            flow_id,
            kind.as_str(),
            source_id,
            target_id,
            time::now()
        ])
    })
    .context(ctx)?;
    Ok(())
}
