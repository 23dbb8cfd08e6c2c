//! How a step reads for people: names instead of ids, rows instead of
//! opaque values.
//!
//! A [`Step`] keeps ids as its references (plan files and `--json` are read
//! by programs); the names it also carries ([`Ref::name`],
//! [`Step::member_names`]) exist only for these lines, which the plan's
//! `Display` and the host's CLI both print. An id is shown only when no name
//! is known.

use alloc::string::String;
use core::fmt::{self, Write};

use crate::model::{FieldValue, Person};
use crate::plan::{Ref, Step};
use crate::rows::{RowAction, RowChange};

/// What people call a person: "Given Family", else the work email; `None`
/// when the record has neither.
pub fn person_name(p: &Person) -> Option<String> {
    let mut out = String::new();
    for part in [&p.given_name, &p.family_name].into_iter().flatten() {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(part);
    }
    if out.is_empty() {
        let mail = p.work_email.as_deref().map(str::trim).unwrap_or_default();
        out.push_str(mail);
    }
    (!out.is_empty()).then_some(out)
}

/// Writes a step's detail lines — its changes, row changes and members —
/// each on its own line after `indent`.
pub fn write_details(out: &mut impl Write, step: &Step, indent: &str) -> fmt::Result {
    for c in &step.changes {
        writeln!(
            out,
            "{indent}{}: {} -> {}",
            c.field,
            Side(c.old.as_ref(), c.old_ref.as_ref()),
            Side(c.new.as_ref(), c.new_ref.as_ref())
        )?;
    }
    for c in &step.created {
        writeln!(
            out,
            "{indent}{}: {}",
            c.field,
            Side(c.new.as_ref(), c.new_ref.as_ref())
        )?;
    }
    for r in &step.rows {
        writeln!(out, "{indent}{}: {}", r.field, RowLine(r))?;
    }
    if !step.members.is_empty() {
        write!(out, "{indent}members: ")?;
        for (i, id) in step.members.iter().enumerate() {
            let sep = if i > 0 { ", " } else { "" };
            match step.member_names.get(id) {
                Some(name) => write!(out, "{sep}{name}")?,
                None => write!(out, "{sep}{id}")?,
            }
        }
        out.write_char('\n')?;
    }
    Ok(())
}

/// One side of a [`Change`](crate::plan::Change): the referenced record's name (or id) when the
/// field is a reference, the value otherwise, `(none)` for nothing.
struct Side<'c>(Option<&'c FieldValue>, Option<&'c Ref>);

impl fmt::Display for Side<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Side(_, Some(r)) => {
                f.write_str(r.name.as_deref().unwrap_or(&r.id))?;
                if r.planned {
                    f.write_str(" (created in this run)")?;
                }
                Ok(())
            }
            Side(Some(v), None) => write!(f, "{v}"),
            Side(None, None) => f.write_str("(none)"),
        }
    }
}

/// `+ row "GDPR basics" (e_progress 80, e_score 1)`,
/// `~ row "Security" e_score 60 -> 75`, `- row "Old course"`.
struct RowLine<'r>(&'r RowChange);

impl fmt::Display for RowLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = self.0;
        let key = Side(c.key_value(), None);
        match &c.action {
            RowAction::Add { row } => {
                write!(f, "+ row {key}")?;
                let mut first = true;
                for (name, value) in row.iter().filter(|(n, _)| **n != c.key) {
                    f.write_str(if first { " (" } else { ", " })?;
                    write!(f, "{name} {value}")?;
                    first = false;
                }
                if !first {
                    f.write_str(")")?;
                }
                Ok(())
            }
            RowAction::Change { changed, .. } => {
                write!(f, "~ row {key}")?;
                for (i, s) in changed.iter().enumerate() {
                    let sep = if i > 0 { ", " } else { " " };
                    write!(
                        f,
                        "{sep}{} {} -> {}",
                        s.name,
                        Side(s.old.as_ref(), None),
                        Side(s.new.as_ref(), None)
                    )?;
                }
                Ok(())
            }
            RowAction::Remove { .. } => write!(f, "- row {key}"),
        }
    }
}
