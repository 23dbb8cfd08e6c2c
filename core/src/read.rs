//! Reads: a full snapshot, or the changes since a watermark — and which one
//! a flow may plan from.
//!
//! A source connector that can read incrementally (Lucca's
//! `modifiedAt` filter) returns only the people changed since the
//! *watermark* of the last read, and says so ([`Coverage::Changes`]). From
//! such a read, a person who is absent is merely unchanged, not gone. So:
//!
//! - a flow that **can deactivate** ([`Policy::needs_full_source`]) always
//!   asks for a full read ([`since`] gives `None`), and the planner refuses a
//!   changes-only source for it ([`crate::PlanError::IncompleteSource`]):
//!   absence would look like a wave of leavers;
//! - a flow that **cannot deactivate** (create-only inbound flows) asks for
//!   the changes since the stored watermark, plans as usual for the people
//!   present, and leaves the accounts of the absent ones untouched;
//! - the new watermark is kept only once the run did everything it planned
//!   ([`may_advance`]): otherwise a record that failed, could not be used, or
//!   waits for its start date would never be read again.
//!
//! The host stores the watermark and talks to the connector; the rules are
//! here so both sides share them.

use crate::plan::{Action, Plan, Reason};
use crate::policy::Policy;

/// What a read covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum Coverage {
    /// Every record, active or not: absence means the record is gone.
    #[default]
    Full,
    /// Only the records changed since the watermark the read was asked for:
    /// absence means nothing.
    Changes,
}

impl Coverage {
    /// The snake_case name used in logs and JSON.
    pub const fn name(self) -> &'static str {
        match self {
            Coverage::Full => "full",
            Coverage::Changes => "changes",
        }
    }
}

/// The watermark to read the source from: `None` asks for a full read.
///
/// `stored` is the watermark of the last run that completed
/// ([`may_advance`]). A flow that can deactivate reads everything whatever
/// is stored.
pub fn since<'w>(policy: &Policy, stored: Option<&'w str>) -> Option<&'w str> {
    if policy.needs_full_source() {
        None
    } else {
        stored.filter(|w| !w.trim().is_empty())
    }
}

/// Whether a run of `plan` that applied every action it planned (`applied`:
/// no failed, skipped or unattempted call, and the whole plan was applied,
/// not one record of it) may store the watermark of the source read it was
/// made from.
///
/// Not when a source record was held (it could not be used this run), nor
/// when a person waits for a start date: the next read from the new
/// watermark would not return them, as nothing about them changes.
pub fn may_advance(plan: &Plan<'_>, applied: bool) -> bool {
    applied
        && plan.input().source.held.is_empty()
        && !plan.actions().iter().any(|a| {
            matches!(
                a,
                Action::Skip {
                    reason: Reason::NotStartedYet(_),
                    ..
                }
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Allowed;

    #[test]
    fn a_flow_that_can_deactivate_always_reads_everything() {
        let policy = Policy::default();
        assert!(policy.needs_full_source());
        assert_eq!(since(&policy, Some("2026-03-01T10:00:00Z")), None);
        assert_eq!(since(&policy, None), None);
    }

    #[test]
    fn a_flow_that_cannot_deactivate_reads_changes_since_the_stored_watermark() {
        let policy = Policy::create_only();
        assert!(!policy.needs_full_source());
        assert_eq!(
            since(&policy, Some("2026-03-01T10:00:00Z")),
            Some("2026-03-01T10:00:00Z")
        );
        // Never read before, or a blank watermark: everything.
        assert_eq!(since(&policy, None), None);
        assert_eq!(since(&policy, Some("  ")), None);
        // Update without deactivate is still not a leaver-maker.
        let updating = Policy {
            allowed: Allowed {
                deactivate: false,
                ..Allowed::ALL
            },
            ..Policy::default()
        };
        assert_eq!(since(&updating, Some("w")), Some("w"));
    }
}
