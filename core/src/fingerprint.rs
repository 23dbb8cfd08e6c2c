//! 64-bit fingerprints of the fields a flow compares.
//!
//! Most records do not change between two runs. Hashing a record's compared
//! fields once, when it is read, lets the planner decide "unchanged" with one
//! integer comparison instead of a field-by-field walk. Equal fingerprints are
//! trusted (a 64-bit collision between two versions of one person is far
//! rarer than any other failure); different fingerprints fall back to
//! comparing the fields, which also yields the change list.
//!
//! Fingerprints hash *normalised* values with exactly the equality the
//! planner uses ([`fields_equal`]): surrounding white space is ignored, an
//! empty text is the same as no value, emails and logins ignore case.

use core::hash::{BuildHasher, Hasher};

use crate::model::{Field, FieldRef, FieldValue, Person, Value};
use crate::normalize::{Normalization, hash_normalized, is_blank, normalized_eq};
use crate::policy::FieldSet;
#[cfg(test)]
use crate::policy::Policy;

const SEED: u64 = 0x6d75_7374_6572_2121; // "muster!!"

pub(crate) fn hasher() -> impl Hasher {
    foldhash::fast::FixedState::with_seed(SEED).build_hasher()
}

pub(crate) fn set_id(fields: &FieldSet) -> u64 {
    let mut h = hasher();
    for f in fields.iter() {
        h.write(f.name().as_bytes());
        h.write_u8(0);
    }
    h.finish()
}

/// The fingerprint of `p`'s values for `fields`.
pub fn fingerprint(p: &Person, fields: &FieldSet) -> u64 {
    let mut h = hasher();
    for f in fields.canonical() {
        h.write_u8(f as u8);
        hash_value(p.canonical(f), normalization(f), &mut h);
    }
    for name in fields.custom() {
        h.write(name.as_bytes());
        hash_value(
            p.custom.get(name.as_str()).map(Value::Custom),
            Normalization::Trim,
            &mut h,
        );
    }
    h.finish()
}

fn normalization(f: Field) -> Normalization {
    match f {
        Field::WorkEmail | Field::PersonalEmail | Field::Login => Normalization::TrimFold,
        _ => Normalization::Trim,
    }
}

fn hash_value(v: Option<Value<'_>>, how: Normalization, h: &mut impl Hasher) {
    match v {
        None => h.write_u8(0),
        Some(Value::Text(t)) if is_blank(t) => h.write_u8(0),
        Some(Value::Text(t)) => hash_normalized(t, how, h),
        Some(Value::Date(d)) => h.write_i32(d.days_since_epoch()),
        Some(Value::Gender(g)) => h.write_u8(g as u8 + 1),
        Some(Value::Custom(v)) => hash_field_value(v, h),
    }
}

fn hash_field_value(v: &FieldValue, h: &mut impl Hasher) {
    match v {
        FieldValue::Text(t) if is_blank(t) => h.write_u8(0),
        FieldValue::Text(t) => hash_normalized(t, Normalization::Trim, h),
        FieldValue::Date(d) => h.write_i32(d.days_since_epoch()),
        FieldValue::Number(n) => h.write_u64(n.to_bits()),
        FieldValue::Bool(b) => h.write_u8(*b as u8 + 1),
        FieldValue::Rows(rows) => {
            h.write_usize(rows.len());
            for row in rows {
                for (k, v) in row {
                    h.write(k.as_bytes());
                    hash_field_value(v, h);
                }
                h.write_u8(0xfe);
            }
        }
    }
}

/// Whether `a` and `b` agree on `field`, with the fingerprint's equality.
pub fn fields_equal(a: &Person, b: &Person, field: &FieldRef) -> bool {
    let how = match field {
        FieldRef::Canonical(f) => normalization(*f),
        FieldRef::Custom(_) => Normalization::Trim,
    };
    values_equal(a.get(field), b.get(field), how)
}

/// Whether two owned values of `field` are equal with [`fields_equal`]'s
/// equality (recovery compares a journaled update with a fresh read).
pub(crate) fn field_values_equal_as(
    field: &FieldRef,
    a: Option<&FieldValue>,
    b: Option<&FieldValue>,
) -> bool {
    let how = match field {
        FieldRef::Canonical(f) => normalization(*f),
        FieldRef::Custom(_) => Normalization::Trim,
    };
    values_equal(a.map(owned_view), b.map(owned_view), how)
}

/// An owned value seen as a field value: text as text (so it is compared
/// with the field's normalisation), anything else as it is.
fn owned_view(v: &FieldValue) -> Value<'_> {
    match v {
        FieldValue::Text(t) => Value::Text(t),
        other => Value::Custom(other),
    }
}

fn values_equal(a: Option<Value<'_>>, b: Option<Value<'_>>, how: Normalization) -> bool {
    let blank = |v: &Option<Value<'_>>| match v {
        None => true,
        Some(Value::Text(t)) => is_blank(t),
        Some(Value::Custom(FieldValue::Text(t))) => is_blank(t),
        Some(_) => false,
    };
    match (a, b) {
        _ if blank(&a) || blank(&b) => blank(&a) && blank(&b),
        (Some(Value::Text(x)), Some(Value::Text(y))) => normalized_eq(x, y, how),
        (Some(Value::Custom(x)), Some(Value::Custom(y))) => field_values_equal(x, y),
        (x, y) => x == y,
    }
}

fn field_values_equal(a: &FieldValue, b: &FieldValue) -> bool {
    match (a, b) {
        (FieldValue::Text(x), FieldValue::Text(y)) => normalized_eq(x, y, Normalization::Trim),
        (FieldValue::Number(x), FieldValue::Number(y)) => x.to_bits() == y.to_bits(),
        (FieldValue::Rows(x), FieldValue::Rows(y)) => {
            x.len() == y.len()
                && x.iter().zip(y).all(|(rx, ry)| {
                    rx.len() == ry.len()
                        && rx
                            .iter()
                            .zip(ry)
                            .all(|((kx, vx), (ky, vy))| kx == ky && field_values_equal(vx, vy))
                })
        }
        (x, y) => x == y,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields() -> FieldSet {
        Policy::default().compared_fields()
    }

    #[test]
    fn equal_records_share_a_fingerprint_despite_case_and_spaces() {
        let a = Person {
            work_email: Some("Ana@ACME.fr".into()),
            job_title: Some("Dev ".into()),
            phone: Some("".into()),
            ..Person::new("1")
        };
        let b = Person {
            work_email: Some("ana@acme.fr".into()),
            job_title: Some("Dev".into()),
            phone: None,
            ..Person::new("a-1")
        };
        assert_eq!(fingerprint(&a, &fields()), fingerprint(&b, &fields()));
        for f in fields().iter() {
            assert!(fields_equal(&a, &b, &f), "{f} should compare equal");
        }
    }

    #[test]
    fn any_compared_change_moves_the_fingerprint() {
        let a = Person {
            job_title: Some("Dev".into()),
            ..Person::new("1")
        };
        let b = Person {
            job_title: Some("dev".into()),
            ..a.clone()
        };
        assert_ne!(fingerprint(&a, &fields()), fingerprint(&b, &fields()));
        assert!(!fields_equal(&a, &b, &Field::JobTitle.into()));
        // Reference fields are not compared by value.
        let c = Person {
            manager_id: Some("9".into()),
            ..a.clone()
        };
        assert_eq!(fingerprint(&a, &fields()), fingerprint(&c, &fields()));
    }
}
