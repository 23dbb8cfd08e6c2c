//! Strict civil-date parsing: vendors send dates as strings, and an impossible
//! date must become a typed `invalid` error naming the field, not a trap.

use crate::{ConnectorError, Date};

/// Parses `YYYY-MM-DD` (an optional `THH:MM:SS…` suffix is ignored, as many
/// APIs send midnight timestamps). `field` names the value in the error.
pub fn parse(field: &str, text: &str) -> Result<Date, ConnectorError> {
    let bad = || ConnectorError::Invalid(format!("{field}: `{text}` is not a valid date"));
    let day_part = text.split('T').next().unwrap_or(text);
    let mut parts = day_part.splitn(3, '-');
    let (Some(y), Some(m), Some(d)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad());
    };
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return Err(bad());
    }
    let year: i32 = y.parse().map_err(|_| bad())?;
    let month: u8 = m.parse().map_err(|_| bad())?;
    let day: u8 = d.parse().map_err(|_| bad())?;
    if !is_valid(year, month, day) {
        return Err(bad());
    }
    Ok(Date { year, month, day })
}

/// Parses an optional date string; `None` and `""` are absent, not errors.
pub fn parse_opt(field: &str, text: Option<&str>) -> Result<Option<Date>, ConnectorError> {
    match text {
        None | Some("") => Ok(None),
        Some(t) => parse(field, t).map(Some),
    }
}

/// Formats a date as `YYYY-MM-DD`.
pub fn format(date: &Date) -> String {
    format!("{:04}-{:02}-{:02}", date.year, date.month, date.day)
}

/// Whether the triple names a real day of the proleptic Gregorian calendar.
pub fn is_valid(year: i32, month: u8, day: u8) -> bool {
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        let d = parse("birthDate", "2024-02-29T00:00:00").unwrap();
        assert_eq!((d.year, d.month, d.day), (2024, 2, 29));
        assert_eq!(format(&d), "2024-02-29");
        for bad in ["2023-02-29", "2024-13-01", "2024-1-01", "", "tomorrow"] {
            assert!(
                matches!(parse("f", bad), Err(ConnectorError::Invalid(m)) if m.starts_with("f:")),
                "{bad}"
            );
        }
        assert_eq!(parse_opt("f", Some("")).unwrap(), None);
    }
}
