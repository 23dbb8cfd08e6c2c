//! Incremental source reads: which watermark a run reads the source from,
//! and when the watermark it read up to is kept.
//!
//! The rules are the core's ([`muster_core::read`]): a flow that can
//! deactivate always reads everything; a flow that cannot (create-only
//! inbound flows) reads the changes since the stored watermark; and the
//! watermark a read returns is stored only after a run that did everything
//! it planned, so a crash, a failed call or a held record re-reads rather
//! than skips. This module only moves the watermark between the store and
//! the read:
//!
//! ```text
//! let since = watermark::since(store, flow, &policy)?;        // before reading
//! let read = SourceRead { coverage, watermark };               // what the read said
//! ... Side { coverage: read.coverage, .. } → plan → apply ...
//! watermark::settle(store, flow, &read, &plan, applied_all)?;  // after the run
//! ```

use muster_core::{Coverage, Plan, Policy};

use crate::store::{Side, Store, StoreError};

/// The store key of the source people's watermark.
pub const SOURCE_PEOPLE: &str = "people";

/// What a source read said about itself.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SourceRead {
    pub coverage: Coverage,
    /// Where the next incremental read may start (the connector's opaque
    /// value), `None` when the connector cannot read changes.
    pub watermark: Option<String>,
}

/// The watermark to read the source from; `None` asks for a full read.
/// A flow never recorded (`plan` records none) has no watermark.
pub fn since(store: &Store, flow: &str, policy: &Policy) -> Result<Option<String>, StoreError> {
    if policy.needs_full_source() {
        return Ok(None);
    }
    let stored = match store.watermark(flow, Side::Source, SOURCE_PEOPLE) {
        Ok(stored) => stored,
        Err(StoreError::UnknownFlow(_)) => None,
        Err(e) => return Err(e),
    };
    Ok(muster_core::read::since(policy, stored.as_deref()).map(str::to_owned))
}

/// After a run of `plan`: stores the watermark `read` returned when the core
/// allows it ([`muster_core::read::may_advance`]). `applied_all`: the whole
/// plan was applied (not one record of it, not held) and no call failed or
/// went unattempted. Returns whether the watermark was stored.
pub fn settle(
    store: &mut Store,
    flow: &str,
    read: &SourceRead,
    plan: &Plan<'_>,
    applied_all: bool,
) -> Result<bool, StoreError> {
    let Some(watermark) = &read.watermark else {
        return Ok(false);
    };
    if !muster_core::read::may_advance(plan, applied_all) {
        tracing::info!(
            flow,
            "the source watermark stays where it was: this run did not do everything it planned"
        );
        return Ok(false);
    }
    store.set_watermark(flow, Side::Source, SOURCE_PEOPLE, watermark)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use muster_core::{Date, Input, Person, Side as CoreSide};

    use super::*;

    const FLOW: &str = "flatchr-to-lucca";

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = Store::open(dir.path().join("state.db")).expect("open store");
        store.ensure_flow(FLOW, "flatchr", "lucca").expect("flow");
        (dir, store)
    }

    fn candidate(id: &str, start: &str) -> Person {
        Person {
            work_email: Some(format!("{id}@acme.test")),
            start_date: Date::parse(start).ok(),
            ..Person::new(id)
        }
    }

    /// Plans `people` (a changes-only read) for `policy` and settles `read`.
    fn plan_and_settle(
        store: &mut Store,
        policy: &Policy,
        people: &[Person],
        held: &[String],
        read: &SourceRead,
        applied_all: bool,
    ) -> bool {
        let input = Input {
            source: CoreSide {
                coverage: read.coverage,
                held,
                ..CoreSide::people(people)
            },
            target: CoreSide::people(&[]),
            links: &[],
            prepared_links: None,
            group_links: &[],
            identities: &[],
            written_rows: &muster_core::rows::NOTHING_WRITTEN,
            policy,
            today: Date::from_ymd(2026, 4, 1).expect("date"),
        };
        let plan = muster_core::plan(&input).expect("plan");
        settle(store, FLOW, read, &plan, applied_all).expect("settle")
    }

    fn stored(store: &Store) -> Option<String> {
        store
            .watermark(FLOW, Side::Source, SOURCE_PEOPLE)
            .expect("watermark")
    }

    #[test]
    fn a_flow_that_can_deactivate_asks_for_a_full_read_whatever_is_stored() {
        let (_dir, mut store) = store();
        store
            .set_watermark(FLOW, Side::Source, SOURCE_PEOPLE, "w-1")
            .expect("set");
        assert_eq!(
            since(&store, FLOW, &Policy::default()).expect("since"),
            None
        );
        assert_eq!(
            since(&store, FLOW, &Policy::create_only()).expect("since"),
            Some("w-1".into())
        );
        // A flow never recorded reads everything.
        assert_eq!(
            since(&store, "never-ran", &Policy::create_only()).expect("since"),
            None
        );
    }

    #[test]
    fn the_watermark_is_stored_only_after_a_run_that_did_everything() {
        let (_dir, mut store) = store();
        let policy = Policy::create_only();
        let read = |w: &str| SourceRead {
            coverage: Coverage::Changes,
            watermark: Some(w.into()),
        };
        let ready = [candidate("c-1", "2026-03-01")];
        // A call failed, or only one record was applied: kept as it was.
        assert!(!plan_and_settle(
            &mut store,
            &policy,
            &ready,
            &[],
            &read("w-1"),
            false
        ));
        assert_eq!(stored(&store), None);
        // Everything applied: stored, and the next read starts there.
        assert!(plan_and_settle(
            &mut store,
            &policy,
            &ready,
            &[],
            &read("w-1"),
            true
        ));
        assert_eq!(stored(&store).as_deref(), Some("w-1"));
        assert_eq!(
            since(&store, FLOW, &policy).expect("since").as_deref(),
            Some("w-1")
        );
        // A candidate who starts later, or a record that could not be
        // used, would not be read again from a newer watermark.
        let later = [candidate("c-2", "2026-09-01")];
        assert!(!plan_and_settle(
            &mut store,
            &policy,
            &later,
            &[],
            &read("w-2"),
            true
        ));
        let held = ["c-3".to_string()];
        assert!(!plan_and_settle(
            &mut store,
            &policy,
            &ready,
            &held,
            &read("w-2"),
            true
        ));
        assert_eq!(stored(&store).as_deref(), Some("w-1"));
        // A connector that cannot read changes returns no watermark.
        let full = SourceRead::default();
        assert!(!plan_and_settle(
            &mut store,
            &policy,
            &ready,
            &[],
            &full,
            true
        ));
        assert_eq!(stored(&store).as_deref(), Some("w-1"));
    }
}
