//! Compound rows compared row by row under a key sub-field.
//!
//! A multi-occurrence custom field ([`FieldValue::Rows`], e.g. Cards'
//! `e_formation` training rows in Lucca) is, for a flow that names a *row
//! key* for it ([`crate::Policy::row_keys`], e.g. `e_title`), a set of rows
//! identified by that sub-field's value, not an ordered list: the same rows
//! in another order are equal, and a difference is a list of row-level
//! [`RowChange`]s — add a row, change some sub-fields of a row, remove a
//! row — that the plan shows and the update carries, so a target never has
//! to guess which occurrence changed.
//!
//! # Row ownership
//!
//! A flow only ever touches the rows **it wrote**: the host remembers, per
//! target account and field, the keys of the rows whose add or change the
//! target confirmed ([`WrittenRows`], kept in the store from the journal of
//! applied row changes), and [`diff_rows`] plans a `remove` only for such a
//! key. A row someone added by hand in the target is never removed, and
//! never changed either: when its key collides with a source row whose
//! values differ, the diff names it ([`RowDiff::not_written`]) and the
//! planner reports it instead of writing over it.
//!
//! Source rows whose key is missing, blank, not a single value, or repeated,
//! and target rows repeating a key the flow must compare (one in the source
//! or written by the flow), cannot be compared this way; [`diff_rows`]
//! reports them as a [`RowProblem`] naming the field, the side and the key,
//! and the planner reports the record instead of writing anything for that
//! field (nothing is dropped silently). Other target rows — keyless, or
//! hand-made duplicates of a title the flow never writes — are not the
//! flow's concern and stop nothing.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::model::{FieldValue, Row};
use crate::normalize::{Normalization, normalized_eq};

/// One change to one keyed row of a compound field.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct RowChange {
    /// The compound custom field, e.g. `e_formation`.
    pub field: String,
    /// The sub-field whose value identifies a row, e.g. `e_title`.
    pub key: String,
    pub action: RowAction,
}

impl RowChange {
    /// The key value of the row this change is about.
    pub fn key_value(&self) -> Option<&FieldValue> {
        match &self.action {
            RowAction::Add { row } | RowAction::Change { row, .. } => row.get(&self.key),
            RowAction::Remove { key } => Some(key),
        }
    }
}

/// What to do with one keyed row.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(tag = "op", rename_all = "snake_case"))]
pub enum RowAction {
    /// Add this row (it carries its key sub-field).
    Add { row: Row },
    /// The row with this key differs: `row` is the whole desired row (key
    /// included), `changed` the sub-fields that differ, old → new.
    Change {
        row: Row,
        changed: Vec<SubFieldChange>,
    },
    /// Remove the row whose key sub-field has this value.
    Remove { key: FieldValue },
}

/// One sub-field of a changed row: the target's value → the source's.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct SubFieldChange {
    pub name: String,
    pub old: Option<FieldValue>,
    pub new: Option<FieldValue>,
}

/// Which side's rows a [`RowProblem`] is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum RowSide {
    /// The desired rows (the source person's).
    Source,
    /// The actual rows (the target account's).
    Target,
}

/// Why a compound field's rows cannot be compared by key.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(tag = "problem", rename_all = "snake_case"))]
pub enum RowProblem {
    /// Row number `row` (from 1) has no usable key: absent, blank, or not a
    /// single value.
    MissingKey {
        field: String,
        key: String,
        side: RowSide,
        row: usize,
    },
    /// Two rows have the same key value.
    DuplicateKey {
        field: String,
        key: String,
        side: RowSide,
        value: String,
    },
    /// The field holds a single value where rows were expected.
    NotRows {
        field: String,
        key: String,
        side: RowSide,
    },
}

impl RowProblem {
    /// The compound field the problem is in.
    pub fn field(&self) -> &str {
        match self {
            RowProblem::MissingKey { field, .. }
            | RowProblem::DuplicateKey { field, .. }
            | RowProblem::NotRows { field, .. } => field,
        }
    }

    /// The side whose rows are at fault.
    pub fn side(&self) -> RowSide {
        match self {
            RowProblem::MissingKey { side, .. }
            | RowProblem::DuplicateKey { side, .. }
            | RowProblem::NotRows { side, .. } => *side,
        }
    }
}

impl fmt::Display for RowSide {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RowSide::Source => "source",
            RowSide::Target => "target",
        })
    }
}

impl fmt::Display for RowProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RowProblem::MissingKey {
                field,
                key,
                side,
                row,
            } => write!(
                f,
                "`{field}` row {row} in the {side} has no `{key}` (its row key); its rows are not compared"
            ),
            RowProblem::DuplicateKey {
                field,
                key,
                side,
                value,
            } => write!(
                f,
                "`{field}` has two rows in the {side} with `{key}` {value:?} (its row key); its rows are not compared"
            ),
            RowProblem::NotRows { field, key, side } => write!(
                f,
                "`{field}` in the {side} is a single value, not rows keyed by `{key}`; it is not compared"
            ),
        }
    }
}

/// The keys of the rows a flow wrote: target account id → compound field →
/// key texts ([`key_text`]). What makes a target row the flow's to change
/// or remove (see the [module docs](self)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WrittenRows {
    by_account: BTreeMap<String, BTreeMap<String, BTreeSet<String>>>,
}

/// No rows written: what a flow that never wrote a row passes.
pub static NOTHING_WRITTEN: WrittenRows = WrittenRows {
    by_account: BTreeMap::new(),
};

/// The key set of an account and field the flow never wrote to.
static NO_KEYS: BTreeSet<String> = BTreeSet::new();

impl WrittenRows {
    /// Records that the flow wrote the row of `field` whose key text is
    /// `key` on `account`.
    pub fn insert(&mut self, account: &str, field: &str, key: &str) {
        self.by_account
            .entry(account.into())
            .or_default()
            .entry(field.into())
            .or_default()
            .insert(key.into());
    }

    /// The key texts of the rows of `field` the flow wrote on `account`.
    pub fn keys(&self, account: &str, field: &str) -> &BTreeSet<String> {
        self.by_account
            .get(account)
            .and_then(|f| f.get(field))
            .unwrap_or(&NO_KEYS)
    }

    /// How many rows are recorded, over every account and field.
    pub fn len(&self) -> usize {
        self.by_account
            .values()
            .flat_map(|f| f.values())
            .map(BTreeSet::len)
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A row key value as comparable text: trimmed text, a date, a number, a
/// boolean. `None` for blank text and rows (not a single value). The form
/// [`WrittenRows`] remembers keys in.
pub fn key_text(v: &FieldValue) -> Option<String> {
    match v {
        FieldValue::Text(t) => Some(t.trim()).filter(|t| !t.is_empty()).map(String::from),
        FieldValue::Date(d) => Some(alloc::format!("{d}")),
        FieldValue::Number(n) => Some(alloc::format!("{n}")),
        FieldValue::Bool(b) => Some(alloc::format!("{b}")),
        FieldValue::Rows(_) => None,
    }
}

/// `rows` indexed by key text, or the first problem.
fn index<'r>(
    rows: &'r [Row],
    field: &str,
    key: &str,
    side: RowSide,
) -> Result<BTreeMap<String, &'r Row>, RowProblem> {
    let mut out = BTreeMap::new();
    for (i, row) in rows.iter().enumerate() {
        let Some(k) = row.get(key).and_then(key_text) else {
            return Err(RowProblem::MissingKey {
                field: field.into(),
                key: key.into(),
                side,
                row: i + 1,
            });
        };
        if out.insert(k.clone(), row).is_some() {
            return Err(RowProblem::DuplicateKey {
                field: field.into(),
                key: key.into(),
                side,
                value: k,
            });
        }
    }
    Ok(out)
}

/// The target's `rows` indexed by key text. Rows the flow has nothing to
/// do with — no key, or a key neither in the source nor written by the flow
/// — are left out whatever they hold (two hand-made rows with one title do
/// not stop the flow writing its own); a repeated key the flow must
/// compare is a problem.
fn index_target<'r>(
    rows: &'r [Row],
    field: &str,
    key: &str,
    concerns: impl Fn(&str) -> bool,
) -> Result<BTreeMap<String, &'r Row>, RowProblem> {
    let mut out = BTreeMap::new();
    for row in rows {
        let Some(k) = row.get(key).and_then(key_text).filter(|k| concerns(k)) else {
            continue;
        };
        if out.insert(k.clone(), row).is_some() {
            return Err(RowProblem::DuplicateKey {
                field: field.into(),
                key: key.into(),
                side: RowSide::Target,
                value: k,
            });
        }
    }
    Ok(out)
}

/// The rows of a custom field's value: none for no value, an error for a
/// single value.
pub(crate) fn rows_of<'v>(
    value: Option<&'v FieldValue>,
    field: &str,
    key: &str,
    side: RowSide,
) -> Result<&'v [Row], RowProblem> {
    match value {
        None => Ok(&[]),
        Some(FieldValue::Rows(rows)) => Ok(rows),
        Some(FieldValue::Text(t)) if t.trim().is_empty() => Ok(&[]),
        Some(_) => Err(RowProblem::NotRows {
            field: field.into(),
            key: key.into(),
            side,
        }),
    }
}

/// Whether two sub-values are equal: text ignores surrounding white space
/// (as everywhere in the core), numbers compare exactly, and a date or a
/// number equals the same date or number written as text (`2026-05-20`,
/// `80`): Cards' guide has HR define every sub-field as text, a tenant may
/// type them, and neither side should be rewritten for it.
fn sub_equal(a: Option<&FieldValue>, b: Option<&FieldValue>) -> bool {
    let blank = |v: Option<&FieldValue>| match v {
        None => true,
        Some(FieldValue::Text(t)) => t.trim().is_empty(),
        Some(_) => false,
    };
    match (a, b) {
        _ if blank(a) || blank(b) => blank(a) && blank(b),
        (Some(FieldValue::Text(x)), Some(FieldValue::Text(y))) => {
            normalized_eq(x, y, Normalization::Trim)
        }
        (Some(FieldValue::Number(x)), Some(FieldValue::Number(y))) => x.to_bits() == y.to_bits(),
        // A date one side types and the other holds as text (a sub-field
        // Lucca defines as text, a source that sends a date, or the reverse).
        (Some(FieldValue::Text(t)), Some(FieldValue::Date(d)))
        | (Some(FieldValue::Date(d)), Some(FieldValue::Text(t))) => {
            crate::Date::parse(t.trim()).is_ok_and(|p| p == *d)
        }
        (Some(FieldValue::Text(t)), Some(FieldValue::Number(n)))
        | (Some(FieldValue::Number(n)), Some(FieldValue::Text(t))) => {
            t.trim().parse::<f64>().is_ok_and(|p| p == *n)
        }
        (x, y) => x == y,
    }
}

/// The sub-fields of `desired` and `actual` that differ, by name.
fn changed_sub_fields(desired: &Row, actual: &Row) -> Vec<SubFieldChange> {
    let mut names: Vec<&String> = desired.keys().chain(actual.keys()).collect();
    names.sort_unstable();
    names.dedup();
    names
        .into_iter()
        .filter(|n| !sub_equal(desired.get(*n), actual.get(*n)))
        .map(|n| SubFieldChange {
            name: n.clone(),
            old: actual.get(n).cloned(),
            new: desired.get(n).cloned(),
        })
        .collect()
}

/// What [`diff_rows`] found: the changes to plan, and the target rows the
/// flow leaves alone although the source has a different row with their key.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RowDiff {
    pub changes: Vec<RowChange>,
    /// Key texts of target rows the flow did not write whose values differ
    /// from the source row with the same key: neither changed nor removed,
    /// reported ([`crate::Reason::RowNotWritten`]).
    pub not_written: Vec<String>,
}

/// The row changes that turn `actual` into `desired`, rows matched by the
/// `key` sub-field whatever their order, touching only the target rows
/// whose key text is in `written` (see the [module docs](self)): a missing
/// source row removes a written row and leaves any other; a written row
/// that differs is changed, another is named in [`RowDiff::not_written`].
/// Adds and changes come first, then removes, each in key order, so the
/// same data gives the same plan.
pub fn diff_rows(
    field: &str,
    key: &str,
    desired: &[Row],
    actual: &[Row],
    written: &BTreeSet<String>,
) -> Result<RowDiff, RowProblem> {
    let want = index(desired, field, key, RowSide::Source)?;
    let have = index_target(actual, field, key, |k| {
        want.contains_key(k) || written.contains(k)
    })?;
    let change = |action| RowChange {
        field: field.into(),
        key: key.into(),
        action,
    };
    let mut out = RowDiff::default();
    for (k, row) in &want {
        match have.get(k) {
            None => out.changes.push(change(RowAction::Add {
                row: (*row).clone(),
            })),
            Some(old) => {
                let changed = changed_sub_fields(row, old);
                if changed.is_empty() {
                    continue;
                }
                if written.contains(k) {
                    out.changes.push(change(RowAction::Change {
                        row: (*row).clone(),
                        changed,
                    }));
                } else {
                    out.not_written.push(k.clone());
                }
            }
        }
    }
    for (k, row) in &have {
        if !want.contains_key(k) && written.contains(k) {
            let key_value = row.get(key).cloned().unwrap_or(FieldValue::Text(k.clone()));
            out.changes
                .push(change(RowAction::Remove { key: key_value }));
        }
    }
    Ok(out)
}

/// The row changes of `field` between two values of it (either may be
/// absent: no rows); `written` as for [`diff_rows`].
pub fn diff_values(
    field: &str,
    key: &str,
    desired: Option<&FieldValue>,
    actual: Option<&FieldValue>,
    written: &BTreeSet<String>,
) -> Result<RowDiff, RowProblem> {
    let want = rows_of(desired, field, key, RowSide::Source)?;
    let have = rows_of(actual, field, key, RowSide::Target)?;
    diff_rows(field, key, want, have, written)
}

/// Applies `changes` to `rows` the way a target does (rows not named are
/// kept, in their order; a change replaces the named sub-fields). The
/// reference semantics of [`RowChange`], for tests and simulators.
pub fn apply_row_changes(rows: &mut Vec<Row>, changes: &[RowChange]) {
    for c in changes {
        let Some(k) = c.key_value().and_then(key_text) else {
            continue;
        };
        let at = rows
            .iter()
            .position(|r| r.get(&c.key).and_then(key_text).as_deref() == Some(k.as_str()));
        match (&c.action, at) {
            (RowAction::Add { row }, None) => rows.push(row.clone()),
            (RowAction::Add { row }, Some(i)) => rows[i] = row.clone(),
            (RowAction::Change { changed, .. }, Some(i)) => {
                for s in changed {
                    match &s.new {
                        Some(v) => rows[i].insert(s.name.clone(), v.clone()),
                        None => rows[i].remove(&s.name),
                    };
                }
            }
            (RowAction::Change { row, .. }, None) => rows.push(row.clone()),
            (RowAction::Remove { .. }, Some(i)) => {
                rows.remove(i);
            }
            (RowAction::Remove { .. }, None) => {}
        }
    }
}

/// A row change in the shape of the connector contract's `row-change`
/// (0.2.0, `target.wit`), generic over the runtime's scalar type `S` so the
/// core stays free of generated bindings: the host maps it onto its
/// `bindgen!` record with one `match`.
#[derive(Debug, Clone, PartialEq)]
pub struct ContractRowChange<S> {
    pub field: String,
    pub key: String,
    pub action: ContractRowAction<S>,
}

/// The contract's `row-action`: rows as `(sub-field, scalar)` lists.
#[derive(Debug, Clone, PartialEq)]
pub enum ContractRowAction<S> {
    Add(Vec<(String, S)>),
    /// The whole desired row (key included): the target replaces the
    /// sub-fields of the row with that key by these, so a sub-field the
    /// source no longer has is absent here.
    Change(Vec<(String, S)>),
    Remove(S),
}

/// A sub-value the contract cannot carry in a row (rows inside a row).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotScalar {
    pub field: String,
    pub sub_field: String,
}

impl fmt::Display for NotScalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` sub-field `{}` holds rows, which a compound row cannot carry",
            self.field, self.sub_field
        )
    }
}

#[cfg(feature = "std")]
impl std::error::Error for NotScalar {}

/// A step's row changes ([`crate::Step::rows`]) as the contract's
/// `row-change` list; `scalar` converts one sub-value (`None` when it is not
/// a single value).
pub fn to_contract<S>(
    changes: &[RowChange],
    scalar: impl Fn(&FieldValue) -> Option<S>,
) -> Result<Vec<ContractRowChange<S>>, NotScalar> {
    let value = |c: &RowChange, name: &str, v: &FieldValue| {
        scalar(v).ok_or_else(|| NotScalar {
            field: c.field.clone(),
            sub_field: name.into(),
        })
    };
    let row = |c: &RowChange, row: &Row| -> Result<Vec<(String, S)>, NotScalar> {
        row.iter()
            .map(|(name, v)| Ok((name.clone(), value(c, name, v)?)))
            .collect()
    };
    changes
        .iter()
        .map(|c| {
            let action = match &c.action {
                RowAction::Add { row: r } => ContractRowAction::Add(row(c, r)?),
                RowAction::Change { row: r, .. } => ContractRowAction::Change(row(c, r)?),
                RowAction::Remove { key } => ContractRowAction::Remove(value(c, &c.key, key)?),
            };
            Ok(ContractRowChange {
                field: c.field.clone(),
                key: c.key.clone(),
                action,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn row(title: &str, progress: f64, score: Option<f64>) -> Row {
        let mut r = Row::new();
        r.insert("e_title".into(), FieldValue::Text(title.into()));
        r.insert("e_progress".into(), FieldValue::Number(progress));
        if let Some(s) = score {
            r.insert("e_score".into(), FieldValue::Number(s));
        }
        r
    }

    /// The flow wrote every target row: the diff may change and remove any.
    fn all_written(rows: &[Row]) -> BTreeSet<String> {
        rows.iter()
            .filter_map(|r| r.get("e_title").and_then(key_text))
            .collect()
    }

    fn diff(desired: &[Row], actual: &[Row]) -> Vec<RowChange> {
        let written = all_written(actual);
        let d = diff_rows("e_formation", "e_title", desired, actual, &written).unwrap();
        assert_eq!(d.not_written, Vec::<String>::new());
        d.changes
    }

    #[test]
    fn the_same_rows_in_another_order_are_equal() {
        let a = vec![row("GDPR", 80.0, None), row("Security", 100.0, Some(60.0))];
        let b = vec![
            row("Security ", 100.0, Some(60.0)),
            row(" GDPR", 80.0, None),
        ];
        assert_eq!(diff(&a, &b), []);
        assert_eq!(diff(&b, &a), []);
    }

    #[test]
    fn rows_are_added_changed_and_removed_by_key() {
        let actual = vec![
            row("Old course", 10.0, None),
            row("Security", 100.0, Some(60.0)),
        ];
        let desired = vec![
            row("Security", 100.0, Some(75.0)),
            row("GDPR basics", 80.0, None),
        ];
        let changes = diff(&desired, &actual);
        assert_eq!(changes.len(), 3, "{changes:?}");
        assert_eq!(
            changes[0].action,
            RowAction::Add {
                row: row("GDPR basics", 80.0, None)
            }
        );
        assert_eq!(
            changes[1].action,
            RowAction::Change {
                row: row("Security", 100.0, Some(75.0)),
                changed: vec![SubFieldChange {
                    name: "e_score".into(),
                    old: Some(FieldValue::Number(60.0)),
                    new: Some(FieldValue::Number(75.0)),
                }],
            }
        );
        assert_eq!(
            changes[2].action,
            RowAction::Remove {
                key: FieldValue::Text("Old course".into())
            }
        );
        assert!(
            changes
                .iter()
                .all(|c| c.field == "e_formation" && c.key == "e_title")
        );
    }

    #[test]
    fn a_sub_field_the_source_no_longer_has_is_cleared() {
        let changes = diff(
            &[row("Security", 100.0, None)],
            &[row("Security", 100.0, Some(60.0))],
        );
        let [
            RowChange {
                action: RowAction::Change { changed, .. },
                ..
            },
        ] = changes.as_slice()
        else {
            panic!("{changes:?}");
        };
        assert_eq!(changed[0].name, "e_score");
        assert_eq!(changed[0].new, None);
    }

    #[test]
    fn applying_the_changes_converges() {
        let mut actual = vec![
            row("Old course", 10.0, None),
            row("Security", 100.0, Some(60.0)),
            row("Kept", 5.0, None),
        ];
        let desired = vec![
            row("Kept", 5.0, None),
            row("Security", 100.0, None),
            row("GDPR basics", 80.0, Some(1.0)),
        ];
        let changes = diff(&desired, &actual);
        assert_eq!(changes.len(), 3);
        apply_row_changes(&mut actual, &changes);
        assert_eq!(diff(&desired, &actual), []);
        assert_eq!(actual.len(), 3);
    }

    #[test]
    fn a_missing_or_duplicate_key_is_a_problem_naming_field_and_side() {
        let mut keyless = row("x", 1.0, None);
        keyless.remove("e_title");
        let err = diff_rows("e_formation", "e_title", &[keyless], &[], &NO_KEYS).unwrap_err();
        assert_eq!(
            err,
            RowProblem::MissingKey {
                field: "e_formation".into(),
                key: "e_title".into(),
                side: RowSide::Source,
                row: 1,
            }
        );
        assert_eq!(
            alloc::format!("{err}"),
            "`e_formation` row 1 in the source has no `e_title` (its row key); its rows are not compared"
        );
        // A target row without a key is not the flow's: left out.
        let blank = row("  ", 1.0, None);
        let d = diff_rows("e_formation", "e_title", &[], &[blank], &NO_KEYS).unwrap();
        assert_eq!(d, RowDiff::default());
        // Two hand-made rows with one title stop nothing, unless the flow
        // must compare that title.
        let twice = [row("RGPD", 1.0, None), row("RGPD", 2.0, None)];
        let mine = [row("Security", 1.0, None)];
        let d = diff_rows("e_formation", "e_title", &mine, &twice, &NO_KEYS).unwrap();
        assert_eq!(d.changes.len(), 1);
        let theirs = [row("RGPD", 1.0, None)];
        assert!(matches!(
            diff_rows("e_formation", "e_title", &theirs, &twice, &NO_KEYS),
            Err(RowProblem::DuplicateKey {
                side: RowSide::Target,
                ..
            })
        ));
        let twice = [row("GDPR", 1.0, None), row("GDPR ", 2.0, None)];
        assert_eq!(
            diff_rows("e_formation", "e_title", &twice, &[], &NO_KEYS).unwrap_err(),
            RowProblem::DuplicateKey {
                field: "e_formation".into(),
                key: "e_title".into(),
                side: RowSide::Source,
                value: "GDPR".into(),
            }
        );
    }

    #[test]
    fn row_changes_convert_to_the_contract_shape() {
        let changes = diff(
            &[row("GDPR", 80.0, None), row("Security", 100.0, Some(75.0))],
            &[row("Old", 1.0, None), row("Security", 100.0, Some(60.0))],
        );
        let text = |v: &FieldValue| match v {
            FieldValue::Rows(_) => None,
            other => Some(alloc::format!("{other}")),
        };
        let out = to_contract(&changes, text).unwrap();
        let pairs = |p: &[(&str, &str)]| -> Vec<(String, String)> {
            p.iter().map(|(a, b)| ((*a).into(), (*b).into())).collect()
        };
        assert_eq!(
            out[0].action,
            ContractRowAction::Add(pairs(&[("e_progress", "80"), ("e_title", "\"GDPR\"")]))
        );
        assert_eq!(
            out[1].action,
            ContractRowAction::Change(pairs(&[
                ("e_progress", "100"),
                ("e_score", "75"),
                ("e_title", "\"Security\"")
            ]))
        );
        assert_eq!(out[2].action, ContractRowAction::Remove("\"Old\"".into()));
        assert!(
            out.iter()
                .all(|c| c.field == "e_formation" && c.key == "e_title")
        );
        let mut nested = row("Nested", 1.0, None);
        nested.insert("e_parts".into(), FieldValue::Rows(vec![]));
        let bad = diff(&[nested], &[]);
        assert_eq!(
            to_contract(&bad, text).unwrap_err(),
            NotScalar {
                field: "e_formation".into(),
                sub_field: "e_parts".into()
            }
        );
    }

    #[test]
    fn absent_values_are_no_rows_and_a_single_value_is_a_problem() {
        let desired = FieldValue::Rows(vec![row("GDPR", 1.0, None)]);
        let written: BTreeSet<String> = ["GDPR".into()].into();
        let changes =
            diff_values("e_formation", "e_title", Some(&desired), None, &written).unwrap();
        assert!(matches!(changes.changes[0].action, RowAction::Add { .. }));
        let removed =
            diff_values("e_formation", "e_title", None, Some(&desired), &written).unwrap();
        assert!(matches!(
            removed.changes[0].action,
            RowAction::Remove { .. }
        ));
        let text = FieldValue::Text("GDPR".into());
        assert!(matches!(
            diff_values(
                "e_formation",
                "e_title",
                Some(&desired),
                Some(&text),
                &written
            ),
            Err(RowProblem::NotRows {
                side: RowSide::Target,
                ..
            })
        ));
    }

    #[test]
    fn rows_the_flow_did_not_write_are_never_removed_or_changed() {
        let actual = vec![
            row("Written, gone from the source", 10.0, None),
            row("Hand-made", 50.0, None),
            row("Hand-made, same title", 20.0, None),
            row("Written, score changed", 100.0, Some(60.0)),
        ];
        let desired = vec![
            row("Hand-made, same title", 30.0, None),
            row("Written, score changed", 100.0, Some(75.0)),
            row("New", 5.0, None),
        ];
        let written: BTreeSet<String> = [
            "Written, gone from the source".into(),
            "Written, score changed".into(),
        ]
        .into();
        let d = diff_rows("e_formation", "e_title", &desired, &actual, &written).unwrap();
        let ops: Vec<(&str, Option<&FieldValue>)> = d
            .changes
            .iter()
            .map(|c| {
                let op = match c.action {
                    RowAction::Add { .. } => "add",
                    RowAction::Change { .. } => "change",
                    RowAction::Remove { .. } => "remove",
                };
                (op, c.key_value())
            })
            .collect();
        let t = |s: &str| FieldValue::Text(s.into());
        assert_eq!(
            ops,
            [
                ("add", Some(&t("New"))),
                ("change", Some(&t("Written, score changed"))),
                ("remove", Some(&t("Written, gone from the source"))),
            ]
        );
        assert_eq!(d.not_written, ["Hand-made, same title"]);
        // Nothing written yet: only adds, whatever the target holds.
        let first = diff_rows("e_formation", "e_title", &desired, &actual, &NO_KEYS).unwrap();
        assert_eq!(first.changes.len(), 1);
        assert_eq!(first.not_written.len(), 2);
    }

    #[test]
    fn written_rows_are_kept_per_account_and_field() {
        let mut w = WrittenRows::default();
        assert!(w.is_empty());
        w.insert("42", "e_formation", "GDPR");
        w.insert("42", "e_formation", "GDPR");
        w.insert("42", "e_other", "GDPR");
        w.insert("7", "e_formation", "Security");
        assert_eq!(w.len(), 3);
        assert!(w.keys("42", "e_formation").contains("GDPR"));
        assert!(!w.keys("7", "e_formation").contains("GDPR"));
        assert!(w.keys("8", "e_formation").is_empty());
        assert!(NOTHING_WRITTEN.is_empty());
    }

    #[test]
    fn a_date_equals_the_same_date_as_text() {
        let date = |text: &str| {
            let mut r = row("GDPR", 1.0, None);
            r.insert(
                "e_last_completion_date".into(),
                FieldValue::Text(text.into()),
            );
            r
        };
        let mut typed = row("GDPR", 1.0, None);
        typed.insert(
            "e_last_completion_date".into(),
            FieldValue::Date(crate::Date::from_ymd(2026, 5, 20).unwrap()),
        );
        assert_eq!(diff(&[date(" 2026-05-20")], &[typed.clone()]), []);
        assert_eq!(diff(&[typed.clone()], &[date("2026-05-20")]), []);
        assert_eq!(diff(&[date("2026-05-21")], &[typed]).len(), 1);
    }

    #[test]
    fn a_number_equals_the_same_number_as_text() {
        let score = |v: FieldValue| {
            let mut r = row("GDPR", 1.0, None);
            r.insert("e_score".into(), v);
            r
        };
        let text = |t: &str| score(FieldValue::Text(t.into()));
        let typed = score(FieldValue::Number(80.0));
        let typed = core::slice::from_ref(&typed);
        assert_eq!(diff(&[text(" 80")], typed), []);
        assert_eq!(diff(typed, &[text("80.0")]), []);
        assert_eq!(diff(&[text("81")], typed).len(), 1);
        assert_eq!(diff(&[text("eighty")], typed).len(), 1);
    }
}
