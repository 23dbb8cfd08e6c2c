//! Flows and links in PostgreSQL (twin of `sqlite/links.rs`).

use muster_core::Link;
use postgres::GenericClient;
use postgres::types::Type;

use super::PostgresStore;
use crate::store::{Context, LinkKind, StoreError, time};

/// Reads a flow's recorded connections.
fn recorded(
    c: &mut impl GenericClient,
    flow: &str,
) -> Result<Option<(String, String)>, StoreError> {
    c.query_opt(
        "SELECT source_connection, target_connection FROM flows WHERE name = $1",
        &[&flow],
    )
    .and_then(|r| r.map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).transpose())
    .context(|| format!("flow `{flow}`: looking it up"))
}

fn changed(flow: &str, recorded: (String, String), source: &str, target: &str) -> StoreError {
    StoreError::FlowChanged {
        flow: flow.into(),
        recorded_source: recorded.0,
        recorded_target: recorded.1,
        source_connection: source.into(),
        target_connection: target.into(),
    }
}

impl PostgresStore {
    /// See [`crate::store::Store::ensure_flow`]. `ON CONFLICT DO NOTHING`
    /// lets two workers record the same flow at once.
    pub fn ensure_flow(
        &mut self,
        flow: &str,
        source: &str,
        target: &str,
    ) -> Result<(), StoreError> {
        self.write(
            || format!("flow `{flow}`: recording it"),
            |tx| {
                tx.execute(
                    "INSERT INTO flows (name, source_connection, target_connection, created_at)
                     VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO NOTHING",
                    &[&flow, &source, &target, &time::now()],
                )
                .context(|| format!("flow `{flow}`: recording it"))?;
                match recorded(tx, flow)? {
                    Some((s, t)) if s == source && t == target => Ok(()),
                    Some(r) => Err(changed(flow, r, source, target)),
                    None => Err(StoreError::UnknownFlow(flow.into())),
                }
            },
        )
    }

    /// See [`crate::store::Store::check_flow`].
    pub fn check_flow(&self, flow: &str, source: &str, target: &str) -> Result<bool, StoreError> {
        match self.read(|c| recorded(c, flow))? {
            None => Ok(false),
            Some((s, t)) if s == source && t == target => Ok(true),
            Some(r) => Err(changed(flow, r, source, target)),
        }
    }

    /// The links of one kind of a flow, ordered by source id.
    pub(crate) fn links_of(&self, flow: &str, kind: LinkKind) -> Result<Vec<Link>, StoreError> {
        self.read(|c| {
            let flow_id = PostgresStore::flow_id(c, flow)?;
            let ctx = || format!("flow `{flow}`: reading {kind} links");
            let rows = c
                .query(
                    "SELECT source_id, target_id FROM links
                     WHERE flow_id = $1 AND kind = $2 ORDER BY source_id",
                    &[&flow_id, &kind.as_str()],
                )
                .context(ctx)?;
            rows.iter()
                .map(|r| {
                    Ok(Link::new(
                        r.try_get::<_, String>(0)?,
                        r.try_get::<_, String>(1)?,
                    ))
                })
                .collect::<Result<_, postgres::Error>>()
                .context(ctx)
        })
    }

    /// See [`crate::store::Store::add_link`].
    pub fn add_link(
        &mut self,
        flow: &str,
        kind: LinkKind,
        source_id: &str,
        target_id: &str,
    ) -> Result<(), StoreError> {
        self.write(
            || format!("flow `{flow}`: adding {kind} link {source_id} -> {target_id}"),
            |tx| insert_link(tx, flow, kind, source_id, target_id),
        )
    }

    /// See [`crate::store::Store::remove_link`].
    pub fn remove_link(
        &mut self,
        flow: &str,
        kind: LinkKind,
        source_id: &str,
        target_id: &str,
    ) -> Result<(), StoreError> {
        let n = self.read(|c| {
            let flow_id = PostgresStore::flow_id(c, flow)?;
            c.execute(
                "DELETE FROM links
                 WHERE flow_id = $1 AND kind = $2 AND source_id = $3 AND target_id = $4",
                &[&flow_id, &kind.as_str(), &source_id, &target_id],
            )
            .context(|| format!("flow `{flow}`: removing {kind} link {source_id} -> {target_id}"))
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
    c: &mut impl GenericClient,
    flow: &str,
    kind: LinkKind,
    source_id: &str,
    target_id: &str,
) -> Result<(), StoreError> {
    let flow_id = PostgresStore::flow_id(c, flow)?;
    let ctx = || format!("flow `{flow}`: adding {kind} link {source_id} -> {target_id}");
    let mut other = |sql: &str, id: &str| -> Result<Option<String>, StoreError> {
        c.query_typed_opt(
            sql,
            &[
                (&flow_id, Type::INT8),
                (&kind.as_str(), Type::TEXT),
                (&id, Type::TEXT),
            ],
        )
        .and_then(|r| r.map(|r| r.try_get(0)).transpose())
        .context(ctx)
    };
    let by_source = other(
        "SELECT target_id FROM links WHERE flow_id = $1 AND kind = $2 AND source_id = $3",
        source_id,
    )?;
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
    let by_target = other(
        "SELECT source_id FROM links WHERE flow_id = $1 AND kind = $2 AND target_id = $3",
        target_id,
    )?;
    if let Some(existing_source) = by_target {
        return Err(StoreError::TargetAlreadyLinked {
            flow: flow.into(),
            kind,
            source_id: source_id.into(),
            target_id: target_id.into(),
            existing_source,
        });
    }
    c.query_typed(
        "INSERT INTO links (flow_id, kind, source_id, target_id, created_at)
         VALUES ($1, $2, $3, $4, $5)",
        &[
            (&flow_id, Type::INT8),
            (&kind.as_str(), Type::TEXT),
            (&source_id, Type::TEXT),
            (&target_id, Type::TEXT),
            (&time::now(), Type::TEXT),
        ],
    )
    .context(ctx)?;
    Ok(())
}
