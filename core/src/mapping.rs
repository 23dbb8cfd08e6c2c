//! Field mapping: turning a source record into the target's vocabulary.
//!
//! A flow's mapping is an ordered list of [`Rule`]s applied to each source
//! person before planning. The rules cover what the seeds ask for:
//!
//! - **rename** — a custom field becomes another field;
//! - **default** — Lucca's mandatory legal entity, department and main role
//!   filled with a configured value when the recruiting tool does not know it;
//! - **coalesce** — "work email, else personal email" (Flatchr);
//! - **template** — the login "first letter of first name + last name",
//!   lower-cased with accents folded, pattern configurable;
//! - **value map** — e.g. an establishment custom field → legal entity id.
//!
//! Mapping is pure and per record: a record that cannot be mapped yields a
//! [`MappingError`] naming the record and the field, and the others go on.

use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use crate::model::{FieldRef, FieldValue, Person, TypeMismatch, Value};
use crate::normalize::fold_accents;

/// One mapping step.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(tag = "rule", rename_all = "snake_case"))]
pub enum Rule {
    /// Moves `from`'s value into `to` (and clears `from`).
    Rename { from: FieldRef, to: FieldRef },
    /// Sets `field` to `value` when it is empty.
    Default { field: FieldRef, value: FieldValue },
    /// Sets `field` to the first non-empty of `from` (in order).
    Coalesce {
        field: FieldRef,
        from: Vec<FieldRef>,
    },
    /// Renders `pattern` (see [`Template`]) into `field`, unless
    /// `keep_existing` and the field already has a value.
    Template {
        field: FieldRef,
        pattern: String,
        #[cfg_attr(feature = "serde", serde(default))]
        keep_existing: bool,
    },
    /// Looks `from`'s text up in `values` and writes the result into `to`.
    /// An unknown value is an error unless `fallback` is given.
    ValueMap {
        from: FieldRef,
        to: FieldRef,
        values: BTreeMap<String, String>,
        #[cfg_attr(feature = "serde", serde(default))]
        fallback: Option<String>,
    },
}

/// An ordered list of rules.
#[derive(Debug, Clone, PartialEq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(transparent))]
pub struct Mapping {
    pub rules: Vec<Rule>,
}

/// Why one record could not be mapped. Names the record and the field.
#[derive(Debug, Clone, PartialEq)]
pub struct MappingError {
    pub record: String,
    pub field: FieldRef,
    pub problem: MappingProblem,
}

/// What went wrong with a field.
#[derive(Debug, Clone, PartialEq)]
pub enum MappingProblem {
    /// The value does not fit the field's kind.
    Type(TypeMismatch),
    /// A value map has no entry for this value and no fallback.
    Unmapped(String),
    /// A template names a field that is empty on this record.
    Missing(FieldRef),
    /// A template is malformed (reported for every record it is used on).
    BadTemplate(TemplateError),
}

impl fmt::Display for MappingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "record {}: field `{}`: {}",
            self.record, self.field, self.problem
        )
    }
}

/// What went wrong, without the record and field (for reports that name
/// them already).
impl fmt::Display for MappingProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MappingProblem::Type(m) => write!(f, "expects {}", m.expected),
            MappingProblem::Unmapped(v) => write!(f, "no mapping for value {v:?}"),
            MappingProblem::Missing(src) => write!(f, "needs `{src}`, which is empty"),
            MappingProblem::BadTemplate(e) => write!(f, "{e}"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for MappingError {}

impl Mapping {
    pub fn new(rules: Vec<Rule>) -> Mapping {
        Mapping { rules }
    }

    /// Maps a copy of `person`.
    pub fn apply(&self, person: &Person) -> Result<Person, MappingError> {
        let mut p = person.clone();
        self.apply_in_place(&mut p)?;
        Ok(p)
    }

    /// Maps `person` in place. On error the record is left partly mapped:
    /// callers report it and drop it from the run.
    pub fn apply_in_place(&self, p: &mut Person) -> Result<(), MappingError> {
        for rule in &self.rules {
            apply_rule(rule, p)?;
        }
        Ok(())
    }
}

fn apply_rule(rule: &Rule, p: &mut Person) -> Result<(), MappingError> {
    let fail = |p: &Person, field: &FieldRef, problem| MappingError {
        record: p.id.clone(),
        field: field.clone(),
        problem,
    };
    let set = |p: &mut Person, field: &FieldRef, v: Option<FieldValue>| {
        p.set(field, v)
            .map_err(|m| fail(p, field, MappingProblem::Type(m)))
    };
    match rule {
        Rule::Rename { from, to } => {
            let v = p.get(from).map(|v| v.to_owned_value());
            if v.is_some() {
                set(p, to, v)?;
                set(p, from, None)?;
            }
        }
        Rule::Default { field, value } => {
            if is_empty(p.get(field)) {
                set(p, field, Some(value.clone()))?;
            }
        }
        Rule::Coalesce { field, from } => {
            let v = from
                .iter()
                .find_map(|f| p.get(f).filter(|v| !is_empty(Some(*v))))
                .map(|v| v.to_owned_value());
            if v.is_some() {
                set(p, field, v)?;
            }
        }
        Rule::Template {
            field,
            pattern,
            keep_existing,
        } => {
            if *keep_existing && !is_empty(p.get(field)) {
                return Ok(());
            }
            let template = Template::parse(pattern)
                .map_err(|e| fail(p, field, MappingProblem::BadTemplate(e)))?;
            let text = template
                .render(p)
                .map_err(|missing| fail(p, field, MappingProblem::Missing(missing)))?;
            set(p, field, Some(FieldValue::Text(text)))?;
        }
        Rule::ValueMap {
            from,
            to,
            values,
            fallback,
        } => {
            let Some(key) = p.get(from).map(|v| text_of(&v)) else {
                return Ok(());
            };
            let mapped = match values.get(key.trim()) {
                Some(v) => v.clone(),
                None => match fallback {
                    Some(v) => v.clone(),
                    None => return Err(fail(p, from, MappingProblem::Unmapped(key))),
                },
            };
            set(p, to, Some(FieldValue::Text(mapped)))?;
        }
    }
    Ok(())
}

fn is_empty(v: Option<Value<'_>>) -> bool {
    match v {
        None => true,
        Some(Value::Text(t)) => t.trim().is_empty(),
        Some(Value::Custom(FieldValue::Text(t))) => t.trim().is_empty(),
        Some(Value::Custom(FieldValue::Rows(r))) => r.is_empty(),
        Some(_) => false,
    }
}

/// The plain text of a value, as value maps and templates see it.
fn text_of(v: &Value<'_>) -> String {
    match v {
        Value::Text(t) => (*t).into(),
        Value::Custom(FieldValue::Text(t)) => t.clone(),
        other => {
            let mut s = other.to_string();
            if s.starts_with('"') && s.ends_with('"') && s.len() >= 2 {
                s = s[1..s.len() - 1].into();
            }
            s
        }
    }
}

/// A text template such as `{given_name|initial}{family_name}|login`.
///
/// Placeholders are `{field}` or `{field|filter|filter…}`; filters are
/// `initial` (first letter), `lower`, `upper`, `fold` (remove accents) and
/// `login` (fold, lower, keep only `a-z 0-9 . - _`). A filter after the last
/// `}` — `…}|login` — applies to the whole result. The login default of the
/// recruiting flows is [`Template::LOGIN_DEFAULT`].
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    parts: Vec<Part>,
    whole: Vec<Filter>,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Literal(String),
    Field(FieldRef, Vec<Filter>),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Filter {
    Initial,
    Lower,
    Upper,
    Fold,
    Login,
}

/// A malformed template.
#[derive(Debug, Clone, PartialEq)]
pub enum TemplateError {
    Unclosed,
    UnknownFilter(String),
    EmptyField,
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TemplateError::Unclosed => f.write_str("template has a `{` without its `}`"),
            TemplateError::UnknownFilter(n) => write!(
                f,
                "template filter `{n}` is unknown (use initial, lower, upper, fold, login)"
            ),
            TemplateError::EmptyField => f.write_str("template has an empty `{}`"),
        }
    }
}

impl Template {
    /// First letter of the first name, then the last name, as a login:
    /// `Élodie de la Tour` → `edelatour`.
    pub const LOGIN_DEFAULT: &'static str = "{given_name|initial}{family_name}|login";

    pub fn parse(pattern: &str) -> Result<Template, TemplateError> {
        let (body, whole) = match pattern.rfind('}') {
            Some(end) if pattern[end + 1..].starts_with('|') => {
                (&pattern[..=end], parse_filters(&pattern[end + 2..])?)
            }
            _ => (pattern, Vec::new()),
        };
        let mut parts = Vec::new();
        let mut rest = body;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(Part::Literal(rest[..open].into()));
            }
            let close = rest[open..].find('}').ok_or(TemplateError::Unclosed)? + open;
            let inner = &rest[open + 1..close];
            let (name, filters) = match inner.find('|') {
                Some(bar) => (&inner[..bar], parse_filters(&inner[bar + 1..])?),
                None => (inner, Vec::new()),
            };
            if name.trim().is_empty() {
                return Err(TemplateError::EmptyField);
            }
            parts.push(Part::Field(FieldRef::parse(name.trim()), filters));
            rest = &rest[close + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.into()));
        }
        Ok(Template { parts, whole })
    }

    /// Renders the template for `p`; an empty field named by it is returned
    /// as the error, so the caller can say which field is missing.
    pub fn render(&self, p: &Person) -> Result<String, FieldRef> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(l) => out.push_str(l),
                Part::Field(f, filters) => {
                    let v = p.get(f).filter(|v| !is_empty(Some(*v)));
                    let text = v.map(|v| text_of(&v)).ok_or_else(|| f.clone())?;
                    out.push_str(&apply_filters(text.trim().into(), filters));
                }
            }
        }
        Ok(apply_filters(out, &self.whole))
    }
}

fn parse_filters(text: &str) -> Result<Vec<Filter>, TemplateError> {
    text.split('|')
        .map(|name| match name.trim() {
            "initial" => Ok(Filter::Initial),
            "lower" => Ok(Filter::Lower),
            "upper" => Ok(Filter::Upper),
            "fold" => Ok(Filter::Fold),
            "login" => Ok(Filter::Login),
            other => Err(TemplateError::UnknownFilter(other.into())),
        })
        .collect()
}

fn apply_filters(mut text: String, filters: &[Filter]) -> String {
    for f in filters {
        text = match f {
            Filter::Initial => text.chars().next().map(String::from).unwrap_or_default(),
            Filter::Lower => text.to_lowercase(),
            Filter::Upper => text.to_uppercase(),
            Filter::Fold => fold_accents(&text),
            Filter::Login => fold_accents(&text)
                .to_lowercase()
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
                .collect(),
        };
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Field;

    fn person() -> Person {
        Person {
            given_name: Some("Élodie".into()),
            family_name: Some("de la Tour".into()),
            personal_email: Some("elodie@gmail.com".into()),
            ..Person::new("c-17")
        }
    }

    #[test]
    fn login_template_takes_initial_and_family_name_folded_and_lowercased() {
        let t = Template::parse(Template::LOGIN_DEFAULT).unwrap();
        assert_eq!(t.render(&person()).unwrap(), "edelatour");
        let dotted = Template::parse("{given_name|fold|lower}.{family_name}|login").unwrap();
        assert_eq!(dotted.render(&person()).unwrap(), "elodie.delatour");
    }

    #[test]
    fn template_names_the_missing_field() {
        let t = Template::parse(Template::LOGIN_DEFAULT).unwrap();
        let p = Person {
            given_name: None,
            ..person()
        };
        assert_eq!(t.render(&p), Err(FieldRef::Canonical(Field::GivenName)));
        assert_eq!(
            Template::parse("{given_name|shout}"),
            Err(TemplateError::UnknownFilter("shout".into()))
        );
        assert_eq!(Template::parse("{given_name"), Err(TemplateError::Unclosed));
    }

    #[test]
    fn coalesce_falls_back_to_personal_email() {
        let m = Mapping::new(alloc::vec![Rule::Coalesce {
            field: Field::WorkEmail.into(),
            from: alloc::vec![Field::WorkEmail.into(), Field::PersonalEmail.into()],
        }]);
        assert_eq!(
            m.apply(&person()).unwrap().work_email.as_deref(),
            Some("elodie@gmail.com")
        );
        let with_work = Person {
            work_email: Some("e.tour@acme.fr".into()),
            ..person()
        };
        assert_eq!(
            m.apply(&with_work).unwrap().work_email.as_deref(),
            Some("e.tour@acme.fr")
        );
    }

    #[test]
    fn defaults_fill_only_empty_fields() {
        let m = Mapping::new(alloc::vec![
            Rule::Default {
                field: Field::LegalEntityId.into(),
                value: FieldValue::Text("1".into()),
            },
            Rule::Default {
                field: Field::DepartmentId.into(),
                value: FieldValue::Text("7".into()),
            },
        ]);
        let p = Person {
            department_id: Some("3".into()),
            ..person()
        };
        let out = m.apply(&p).unwrap();
        assert_eq!(out.legal_entity_id.as_deref(), Some("1"));
        assert_eq!(out.department_id.as_deref(), Some("3"));
    }

    #[test]
    fn value_map_maps_establishment_to_legal_entity_and_reports_unknowns() {
        let m = Mapping::new(alloc::vec![Rule::ValueMap {
            from: FieldRef::parse("establishment"),
            to: Field::LegalEntityId.into(),
            values: [("Paris".into(), "12".into())].into_iter().collect(),
            fallback: None,
        }]);
        let mut p = person();
        p.custom
            .insert("establishment".into(), FieldValue::Text("Paris".into()));
        assert_eq!(m.apply(&p).unwrap().legal_entity_id.as_deref(), Some("12"));
        p.custom
            .insert("establishment".into(), FieldValue::Text("Lyon".into()));
        let err = m.apply(&p).unwrap_err();
        assert_eq!(
            alloc::format!("{err}"),
            "record c-17: field `establishment`: no mapping for value \"Lyon\""
        );
    }

    #[test]
    fn rename_moves_custom_into_canonical_and_checks_kind() {
        let m = Mapping::new(alloc::vec![Rule::Rename {
            from: FieldRef::parse("hired_on"),
            to: Field::StartDate.into(),
        }]);
        let mut p = person();
        p.custom
            .insert("hired_on".into(), FieldValue::Text("2026-01-05".into()));
        let out = m.apply(&p).unwrap();
        assert_eq!(
            out.start_date.map(|d| d.to_string()).as_deref(),
            Some("2026-01-05")
        );
        assert!(!out.custom.contains_key("hired_on"));
        p.custom
            .insert("hired_on".into(), FieldValue::Text("soon".into()));
        let err = m.apply(&p).unwrap_err();
        assert_eq!(err.record, "c-17");
        assert_eq!(err.field, Field::StartDate.into());
    }
}
