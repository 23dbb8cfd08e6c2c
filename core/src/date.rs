//! Civil dates: a day in the calendar, with no time zone.
//!
//! HR systems speak in days ("contract starts 2025-09-01"), and every gating
//! rule in muster compares days. Time zones belong to the host, which turns
//! "now" into the tenant's *today* before calling the core, so the core never
//! needs a clock or a zone database.
//!
//! A [`Date`] is stored as the number of days since 1970-01-01, which makes
//! comparison and "N days ahead" single integer operations.

use core::fmt;

/// A calendar day (proleptic Gregorian), without time or zone.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    days: i32,
}

/// Why a text could not be read as a [`Date`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateError {
    /// Not of the form `YYYY-MM-DD` (optionally followed by `T…`).
    Format,
    /// Well-formed, but no such day (e.g. `2025-02-30`).
    OutOfRange,
}

impl fmt::Display for DateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DateError::Format => f.write_str("expected a date as YYYY-MM-DD"),
            DateError::OutOfRange => f.write_str("no such day in the calendar"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for DateError {}

impl Date {
    /// The day `year-month-day`, or an error when it does not exist.
    pub const fn from_ymd(year: i32, month: u32, day: u32) -> Result<Date, DateError> {
        if year < -9999 || year > 9999 || month < 1 || month > 12 {
            return Err(DateError::OutOfRange);
        }
        if day < 1 || day > days_in_month(year, month) {
            return Err(DateError::OutOfRange);
        }
        Ok(Date {
            days: days_from_civil(year, month, day),
        })
    }

    /// The day `days` after 1970-01-01 (negative: before).
    pub const fn from_days_since_epoch(days: i32) -> Date {
        Date { days }
    }

    /// Days since 1970-01-01.
    pub const fn days_since_epoch(self) -> i32 {
        self.days
    }

    /// `(year, month, day)`.
    pub const fn ymd(self) -> (i32, u32, u32) {
        civil_from_days(self.days)
    }

    /// The day `n` days later (earlier when `n` is negative), saturating.
    pub const fn add_days(self, n: i32) -> Date {
        Date {
            days: self.days.saturating_add(n),
        }
    }

    /// Reads `YYYY-MM-DD`, also accepting a trailing time such as Lucca's
    /// `2014-09-01T00:00:00` (the time part is ignored: HR dates are days).
    pub fn parse(text: &str) -> Result<Date, DateError> {
        let text = text.trim();
        let day_part = match text.find(['T', ' ']) {
            Some(at) => &text[..at],
            None => text,
        };
        let b = day_part.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return Err(DateError::Format);
        }
        let year = digits(&b[0..4])?;
        let month = digits(&b[5..7])?;
        let day = digits(&b[8..10])?;
        Date::from_ymd(year as i32, month, day)
    }
}

fn digits(b: &[u8]) -> Result<u32, DateError> {
    b.iter().try_fold(0u32, |acc, &c| {
        if c.is_ascii_digit() {
            Ok(acc * 10 + u32::from(c - b'0'))
        } else {
            Err(DateError::Format)
        }
    })
}

const fn is_leap(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

const fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ => {
            if is_leap(year) {
                29
            } else {
                28
            }
        }
    }
}

// Howard Hinnant's `days_from_civil` / `civil_from_days`: exact for the whole
// proleptic Gregorian calendar, no tables, no loops.
const fn days_from_civil(y: i32, m: u32, d: u32) -> i32 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = (y - era * 400) as u32;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe as i32 - 719_468
}

const fn civil_from_days(z: i32) -> (i32, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = (z - era * 146_097) as u32;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe as i32 + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, m, d) = self.ymd();
        write!(f, "{y:04}-{m:02}-{d:02}")
    }
}

impl fmt::Debug for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl core::str::FromStr for Date {
    type Err = DateError;
    fn from_str(s: &str) -> Result<Date, DateError> {
        Date::parse(s)
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for Date {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for Date {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Date, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Date;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a date as YYYY-MM-DD")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Date, E> {
                Date::parse(v).map_err(E::custom)
            }
        }
        d.deserialize_str(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_day_of_four_centuries() {
        let start = Date::from_ymd(1900, 1, 1).unwrap().days_since_epoch();
        for days in start..start + 146_097 {
            let d = Date::from_days_since_epoch(days);
            let (y, m, dd) = d.ymd();
            assert_eq!(Date::from_ymd(y, m, dd), Ok(d));
        }
    }

    #[test]
    fn epoch_and_known_days() {
        assert_eq!(Date::from_ymd(1970, 1, 1).unwrap().days_since_epoch(), 0);
        assert_eq!(
            Date::from_ymd(2000, 3, 1).unwrap().days_since_epoch(),
            11_017
        );
        assert_eq!(
            Date::from_ymd(2024, 2, 29).unwrap().add_days(1),
            Date::from_ymd(2024, 3, 1).unwrap()
        );
    }

    #[test]
    fn parses_lucca_and_iso_forms() {
        let d = Date::from_ymd(2014, 9, 1).unwrap();
        assert_eq!(Date::parse("2014-09-01"), Ok(d));
        assert_eq!(Date::parse("2014-09-01T00:00:00"), Ok(d));
        assert_eq!(Date::parse(" 2014-09-01 "), Ok(d));
        assert_eq!(alloc::format!("{d}"), "2014-09-01");
    }

    #[test]
    fn rejects_bad_text_and_impossible_days() {
        assert_eq!(Date::parse("01/09/2014"), Err(DateError::Format));
        assert_eq!(Date::parse("2014-9-1"), Err(DateError::Format));
        assert_eq!(Date::parse(""), Err(DateError::Format));
        assert_eq!(Date::parse("2025-02-29"), Err(DateError::OutOfRange));
        assert_eq!(Date::parse("2025-13-01"), Err(DateError::OutOfRange));
    }
}
