//! # muster-core
//!
//! The reconciliation core of muster: given who *should* exist (people read
//! from the HR system, mapped into the target's vocabulary) and who *does*
//! exist (accounts read from the target tool), compute the smallest plan that
//! makes them agree — create, link, update, deactivate, reactivate, set
//! managers, mirror departments as groups — with a readable reason for every
//! action, and hold the plan when it looks like a mistake.
//!
//! The crate does no I/O and knows nothing of WebAssembly, HTTP, SQLite or
//! time zones: the host reads both sides through connector plugins, passes
//! *today* (in the tenant's zone) and the link table, and applies what comes
//! back. That keeps every business rule here, where it can be tested,
//! benchmarked and embedded (`#![no_std]` + `alloc`; the `std` feature only
//! adds `std::error::Error` impls, `serde` adds (de)serialisation).
//!
//! ## The rules
//!
//! - **Never delete.** Accounts are deactivated, never removed.
//! - **Source wins on owned fields**; other fields are never touched, nor are
//!   accounts and groups the flow did not create or link.
//! - **Date gating**: no account before the start date (or
//!   [`Policy::pre_start_days`] ahead), none without a start date;
//!   deactivated once the end date has passed or the person is inactive —
//!   or, with a grace period ([`Policy::deactivate_after_days`]), that many
//!   days later, the plan saying when ([`Reason::DeactivationPending`]).
//! - **Correlation**: an unlinked person is matched to an existing account by
//!   the policy's keys (employee number, normalised work email …) and *linked*
//!   rather than created twice; ambiguity is a conflict, never a guess.
//!   Before any key, a person another flow already linked (its target is
//!   this person) is matched to that link's source account
//!   ([`Input::identities`]).
//! - **Only the flow's own rows**: in a compound field compared row by row,
//!   a flow changes or removes only rows it wrote ([`rows::WrittenRows`]).
//! - **Never a deactivation from an incomplete read**: a changes-only source
//!   ([`Coverage::Changes`]) is planned only for a flow that cannot
//!   deactivate, and absent people's accounts are left untouched; for any
//!   other flow it is [`PlanError::IncompleteSource`] (see [`read`]).
//! - **Held records are left alone**: a source record that was read but
//!   cannot be used this run ([`Side::held`]) keeps its account as it is, and
//!   the plan says why ([`Reason::SourceRecordUnusable`]).
//! - **Convergence**: applying a plan and planning again yields no changes.
//! - **Guard**: a plan over a [`Guard`] threshold is held for approval.
//!
//! ## Shape
//!
//! - [`model`]: [`Person`], [`Group`], [`Link`], [`FieldValue`], [`Date`].
//! - [`mapping`]: rename, default, coalesce, template, value-map rules.
//! - [`policy`]: what a flow may do and owns; the guard.
//! - [`login`]: a create's login that is already taken is renamed
//!   (`zlefevre2`) or a conflict, at plan time.
//! - [`rows`]: compound fields compared row by row under a row key.
//! - [`plan()`](plan()): the planner; [`Plan`] the result, `Display` renders it
//!   like a terraform plan, [`Plan::steps`] resolves it for JSON.
//! - [`read`]: full or changes-only reads ([`Coverage`]) and the watermark
//!   rules.
//! - [`recover`]: the planner's correlation and equality, for settling a
//!   dead run's calls.
//! - [`undo()`](undo()): the inverse of what a run did, as an ordinary plan.
//! - [`ActionKind::phase`]: the one definition of the apply order; inside
//!   the creates, managers come first (`order`), so a new account's
//!   manager can be sent with its create.
//!
//! ```
//! use muster_core::{plan, Date, Input, Link, Person, Policy, Side};
//!
//! let today = Date::from_ymd(2026, 3, 2).unwrap();
//! let ana = Person {
//!     work_email: Some("ana@acme.fr".into()),
//!     start_date: Date::from_ymd(2025, 9, 1).ok(),
//!     ..Person::new("101")
//! };
//! let policy = Policy::default();
//! let source = [ana];
//! let input = Input {
//!     source: Side::people(&source),
//!     target: Side::people(&[]),
//!     links: &[],
//!     prepared_links: None,
//!     group_links: &[],
//!     identities: &[],
//!     written_rows: &muster_core::rows::NOTHING_WRITTEN,
//!     policy: &policy,
//!     today,
//! };
//! let plan = plan(&input).unwrap();
//! assert_eq!(plan.counts().get(muster_core::ActionKind::Create), 1);
//! # let _ = Link::new("101", "a-1");
//! ```
#![no_std]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod date;
pub mod fingerprint;
mod join;
pub mod login;
pub mod mapping;
pub mod model;
pub mod normalize;
mod order;
pub mod plan;
pub mod policy;
pub mod prepare;
pub mod present;
pub mod read;
mod reconcile;
pub mod recover;
pub mod rows;
pub mod undo;

pub use date::{Date, DateError};
pub use fingerprint::fingerprint;
pub use login::{LoginHolder, LoginTaken};
pub use mapping::{Mapping, MappingError, Rule, Template};
pub use model::{Field, FieldRef, FieldValue, Gender, Group, Link, Person, Row, Value};
pub use plan::{
    Action, Breach, Change, Counts, GroupRef, Input, Limit, MatchedBy, Plan, PlanError, Reason,
    Ref, Side, Step, Subject,
};
pub use policy::{
    ActionKind, Allowed, CorrelationKey, FieldSet, Guard, ManagerMatch, Policy, Threshold,
};
pub use prepare::{Prepared, PreparedLinks, Preparer, RetainMismatch};
pub use read::Coverage;
pub use reconcile::{evaluate_guard, plan};
pub use rows::{RowAction, RowChange, RowProblem, RowSide, SubFieldChange, WrittenRows};
pub use undo::{NotUndoable, Undo, UndoInput, undo};
