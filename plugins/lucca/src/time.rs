//! Lucca's date-times: local, second-precision strings without a zone
//! (`"2014-09-01T00:00:00"`). Civil dates (birth, contract start and end) are midnight
//! timestamps; the engine's watermark is RFC 3339 and is converted here.

use muster_sdk::Date;

/// Formats a civil date as Lucca writes it: `YYYY-MM-DDT00:00:00`.
pub fn lucca_date(d: &Date) -> String {
    format!("{:04}-{:02}-{:02}T00:00:00", d.year, d.month, d.day)
}

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Civil date of a day count since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn digits(s: &str) -> Option<i64> {
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// The civil date (UTC) of a Unix timestamp.
pub fn civil_from_unix(secs: i64) -> Date {
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    Date {
        year: i32::try_from(y).unwrap_or(1970),
        month: m as u8,
        day: d as u8,
    }
}

/// A Unix timestamp as Lucca's `YYYY-MM-DDTHH:MM:SS` (UTC).
pub fn lucca_utc_from_unix(secs: i64) -> String {
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Parses `YYYY-MM-DD[THH:MM:SS[.fff]][Z|±HH:MM]` and converts it to Lucca's
/// `YYYY-MM-DDTHH:MM:SS` in UTC. A value without a zone is taken as is.
pub fn rfc3339_to_lucca_utc(s: &str) -> Option<String> {
    let (date, rest) = s.split_at(s.len().min(10));
    let mut parts = date.split('-');
    let (y, m, d) = (
        digits(parts.next()?)?,
        digits(parts.next()?)?,
        digits(parts.next()?)?,
    );
    if date.len() != 10 || !muster_sdk::date::is_valid(i32::try_from(y).ok()?, m as u8, d as u8) {
        return None;
    }
    let (mut hh, mut mm, mut ss, mut offset) = (0, 0, 0, 0i64);
    if !rest.is_empty() {
        let rest = rest.strip_prefix(['T', 't', ' '])?;
        if rest.len() < 8 || &rest[2..3] != ":" || &rest[5..6] != ":" {
            return None;
        }
        (hh, mm, ss) = (
            digits(&rest[0..2])?,
            digits(&rest[3..5])?,
            digits(&rest[6..8])?,
        );
        if hh > 23 || mm > 59 || ss > 60 {
            return None;
        }
        let mut zone = &rest[8..];
        if let Some(frac) = zone.strip_prefix('.') {
            let n = frac.bytes().take_while(u8::is_ascii_digit).count();
            if n == 0 {
                return None;
            }
            zone = &frac[n..];
        }
        match zone {
            "" | "Z" | "z" => {}
            z if z.len() == 6 && (z.starts_with('+') || z.starts_with('-')) && &z[3..4] == ":" => {
                let (oh, om) = (digits(&z[1..3])?, digits(&z[4..6])?);
                if oh > 23 || om > 59 {
                    return None;
                }
                offset = (oh * 60 + om) * 60 * if z.starts_with('-') { -1 } else { 1 };
            }
            _ => return None,
        }
    }
    let secs = days_from_civil(y, m, d) * 86_400 + hh * 3600 + mm * 60 + ss.min(59) - offset;
    Some(lucca_utc_from_unix(secs))
}

/// The civil date at the start of a Lucca date-time (its first ten characters), strictly:
/// an impossible date (`2023-02-29`) is an error naming `field`.
pub fn parse_lucca_date(field: &str, text: &str) -> Result<Date, String> {
    let t = text.trim();
    let ok_suffix = t.len() == 10 || t.as_bytes().get(10).is_some_and(|b| *b == b'T');
    match muster_sdk::date::parse(field, t) {
        Ok(d) if ok_suffix => Ok(d),
        _ => Err(format!("`{text}` is not a valid date")),
    }
}

/// Today's civil date from a Lucca header's `generated` date-time.
pub fn today_from_generated(generated: &str) -> Option<Date> {
    parse_lucca_date("generated", generated).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_converts_to_utc() {
        let c = rfc3339_to_lucca_utc;
        assert_eq!(
            c("2026-05-01T08:45:23Z").as_deref(),
            Some("2026-05-01T08:45:23")
        );
        assert_eq!(
            c("2026-05-01T00:15:00.250+02:00").as_deref(),
            Some("2026-04-30T22:15:00")
        );
        assert_eq!(
            c("2026-12-31T23:30:00-01:00").as_deref(),
            Some("2027-01-01T00:30:00")
        );
        assert_eq!(c("2026-05-01").as_deref(), Some("2026-05-01T00:00:00"));
        assert_eq!(
            c("2026-05-01T08:45:23").as_deref(),
            Some("2026-05-01T08:45:23")
        );
        for bad in [
            "",
            "2026-02-30T00:00:00Z",
            "2026-05-01T25:00:00Z",
            "2026-05-01T08:45Z",
            "now",
            "2026-05-01T08:45:23+2",
        ] {
            assert_eq!(c(bad), None, "{bad}");
        }
    }

    #[test]
    fn lucca_dates_are_strict() {
        let d = parse_lucca_date("birthDate", "1985-02-28T00:00:00").unwrap();
        assert_eq!((d.year, d.month, d.day), (1985, 2, 28));
        assert_eq!(lucca_date(&d), "1985-02-28T00:00:00");
        assert!(parse_lucca_date("birthDate", "1985-02-29T00:00:00").is_err());
        assert!(parse_lucca_date("birthDate", "1985-02-28junk").is_err());
        assert!(parse_lucca_date("birthDate", "28/02/1985").is_err());
    }
}
