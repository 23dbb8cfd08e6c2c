//! Which tick of a schedule is due: the latest firing at or before the
//! fleet database's clock. Every worker computes the same tick from the
//! same server time, so recording it (`INSERT … ON CONFLICT DO NOTHING`)
//! makes one row however many workers see it. Firings missed while no
//! worker ran collapse into the latest one, as `serve`'s scheduler does.

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

use crate::schedule::Schedule;

/// The latest firing of `schedule` at or before `now` (unix ms), if it is
/// after `since` (the tenant's registration: a tenant added at 10:00:30
/// first runs at its next firing, not at once).
pub fn due_tick(schedule: Schedule, tz: &TimeZone, now: i64, since: i64) -> Option<i64> {
    let now_ts = Timestamp::from_millisecond(now).ok()?;
    let tick = match schedule {
        Schedule::Every { minutes } => {
            let step = i64::from(minutes) * 60_000;
            now.div_euclid(step) * step
        }
        Schedule::Daily { .. } => {
            // A daily firing is at most ~25 h apart from the previous one.
            let mut t = now_ts.checked_sub(SignedDuration::from_hours(50)).ok()?;
            let mut last = None;
            loop {
                let next = schedule.next_after(t, tz);
                if next > now_ts {
                    break;
                }
                last = Some(next);
                t = next;
            }
            last?.as_millisecond()
        }
    };
    (tick > since).then_some(tick)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(s: &str) -> i64 {
        s.parse::<Timestamp>().unwrap().as_millisecond()
    }

    #[test]
    fn an_interval_tick_is_the_last_aligned_firing() {
        let every = Schedule::parse("every 15m").unwrap();
        let now = ms("2026-11-30T10:31:10Z");
        assert_eq!(
            due_tick(every, &TimeZone::UTC, now, 0),
            Some(ms("2026-11-30T10:30:00Z"))
        );
        // Registered after that firing: nothing is due yet.
        assert_eq!(
            due_tick(every, &TimeZone::UTC, now, ms("2026-11-30T10:30:30Z")),
            None
        );
    }

    #[test]
    fn a_daily_tick_is_todays_or_yesterdays_firing() {
        let paris = TimeZone::get("Europe/Paris").unwrap();
        let daily = Schedule::parse("daily 02:00").unwrap();
        assert_eq!(
            due_tick(daily, &paris, ms("2026-11-30T10:00:00Z"), 0),
            Some(ms("2026-11-30T01:00:00Z"))
        );
        assert_eq!(
            due_tick(daily, &paris, ms("2026-11-30T00:30:00Z"), 0),
            Some(ms("2026-11-29T01:00:00Z"))
        );
    }
}
