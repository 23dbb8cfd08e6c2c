//! Checks on the data a plugin hands back. The guest is untrusted: an
//! impossible date must stop at the boundary as a typed `invalid` error naming
//! the record and field, not travel into the core.

use super::bindings::{ConnectorError, Date, FieldValue, Person, Scalar};

/// Whether `date` is a real day of the proleptic Gregorian calendar.
pub fn is_valid_date(date: &Date) -> bool {
    let y = date.year;
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = match date.month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&date.day)
}

fn check(id: &str, field: &str, date: &Date) -> Result<(), ConnectorError> {
    if is_valid_date(date) {
        Ok(())
    } else {
        Err(ConnectorError::Invalid(format!(
            "person `{id}`: {field} {:04}-{:02}-{:02} is not a valid date",
            date.year, date.month, date.day
        )))
    }
}

/// Validates every date of a person, including custom and compound fields.
pub fn person(p: &Person) -> Result<(), ConnectorError> {
    for (field, date) in [
        ("birth-date", &p.birth_date),
        ("start-date", &p.start_date),
        ("end-date", &p.end_date),
    ] {
        if let Some(d) = date {
            check(&p.id, field, d)?;
        }
    }
    for (name, value) in &p.custom_fields {
        match value {
            FieldValue::Date(d) => check(&p.id, name, d)?,
            FieldValue::Rows(rows) => {
                for (sub, v) in rows.iter().flatten() {
                    if let Scalar::Date(d) = v {
                        check(&p.id, &format!("{name}.{sub}"), d)?;
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_impossible_dates() {
        assert!(is_valid_date(&Date {
            year: 2024,
            month: 2,
            day: 29
        }));
        assert!(!is_valid_date(&Date {
            year: 2023,
            month: 2,
            day: 29
        }));
        assert!(!is_valid_date(&Date {
            year: 2024,
            month: 13,
            day: 1
        }));
        assert!(!is_valid_date(&Date {
            year: 2024,
            month: 4,
            day: 31
        }));
        assert!(!is_valid_date(&Date {
            year: 2024,
            month: 1,
            day: 0
        }));
    }
}
