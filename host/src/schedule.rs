//! # Schedules: when `muster serve` runs each flow
//!
//! A flow's `schedule` is one of:
//!
//! - `daily HH:MM` — once a day at a local wall-clock time in the tenant's
//!   time zone (`daily 02:00`);
//! - `hourly` — at the top of every hour;
//! - `every N m` / `every N h` (`every 15m`, `every 2h`) — every N minutes
//!   or hours, N from 1 to 1440 minutes.
//!
//! ## Daylight saving time
//!
//! A daily schedule means "once per local day at this time", so the two DST
//! changes need a rule each (Europe/Paris: the last Sunday of March jumps
//! from 02:00 to 03:00, the last Sunday of October falls back from 03:00 to
//! 02:00):
//!
//! - **spring-forward gap**: `daily 02:30` names a time that does not exist
//!   that day. It fires once, at the first valid instant after the gap (03:00
//!   local, the transition itself) — never skipped, because a skipped day is
//!   a missed sync.
//! - **autumn fold**: 02:30 happens twice. It fires once, at the first
//!   occurrence (the earlier instant, still on summer time) — never twice,
//!   because the second run would only redo the first.
//!
//! Interval schedules (`hourly`, `every …`) are aligned on absolute time
//! (multiples of the interval since the Unix epoch), not on the wall clock:
//! across a DST change they keep their rhythm and neither skip nor double.
//! In zones with whole-hour offsets, `hourly` still fires at minute 00 local.
//!
//! ## The scheduler and its clock
//!
//! [`Scheduler`] keeps each flow's next firing and answers "which flows are
//! due now?" ([`Scheduler::due`]). Time comes from a [`Clock`]: the system
//! clock in production ([`SystemClock`]), a hand-driven one in tests
//! ([`ManualClock`]), so DST weeks can be stepped through minute by minute
//! without waiting for them.
//!
//! A scheduler that was asleep (a suspended laptop, a stopped process) and
//! wakes long after several firings fires each due flow **once**, then
//! plans the next firing from *now*: a daily sync missed three times runs
//! once, not three times in a row.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Mutex;

use jiff::civil::{Date, DateTime, Time};
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::{SignedDuration, Timestamp};

/// The accepted forms, for error messages.
pub const FORMS: &str =
    "`daily HH:MM` (e.g. `daily 02:00`), `hourly`, or `every N m` / `every N h` (e.g. `every 15m`)";

/// When a flow runs. See the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schedule {
    /// Once a day at this local wall-clock time (seconds are zero).
    Daily { at: Time },
    /// Every `minutes` minutes, aligned on absolute time.
    Every { minutes: u32 },
}

/// A schedule text that is not one of the accepted [`FORMS`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad schedule `{text}`: {problem}; write {FORMS}")]
pub struct ScheduleError {
    pub text: String,
    pub problem: String,
}

impl Schedule {
    /// Parses `daily HH:MM`, `hourly` or `every N m|h` (case-insensitive,
    /// white space between the parts is free).
    pub fn parse(text: &str) -> Result<Schedule, ScheduleError> {
        let err = |problem: &str| ScheduleError {
            text: text.into(),
            problem: problem.into(),
        };
        let lower = text.trim().to_ascii_lowercase();
        let mut words = lower.split_whitespace();
        match words.next() {
            Some("daily") => {
                let at = words.next().unwrap_or("");
                if words.next().is_some() {
                    return Err(err(
                        "a daily schedule takes only a time; it fires in the tenant's time zone (`[tenant] timezone`)",
                    ));
                }
                let (h, m) = at
                    .split_once(':')
                    .ok_or_else(|| err("a daily schedule needs a time HH:MM"))?;
                let hour: i8 = parse_2digits(h).ok_or_else(|| err("the hour is not 00 to 23"))?;
                let minute: i8 =
                    parse_2digits(m).ok_or_else(|| err("the minute is not 00 to 59"))?;
                let at = Time::new(hour, minute, 0, 0).map_err(|_| {
                    err(if (0..24).contains(&hour) {
                        "the minute is not 00 to 59"
                    } else {
                        "the hour is not 00 to 23"
                    })
                })?;
                Ok(Schedule::Daily { at })
            }
            Some("hourly") if words.next().is_none() => Ok(Schedule::Every { minutes: 60 }),
            Some("every") => {
                let rest: String = words.collect();
                let digits = rest.chars().take_while(char::is_ascii_digit).count();
                let (n, unit) = rest.split_at(digits);
                let n: u32 = n
                    .parse()
                    .map_err(|_| err("`every` needs a number, e.g. `every 15m`"))?;
                let minutes = match unit {
                    "m" | "min" | "mins" | "minute" | "minutes" => Some(n),
                    "h" | "hour" | "hours" => n.checked_mul(60),
                    _ => return Err(err("the unit is not `m` (minutes) or `h` (hours)")),
                };
                match minutes {
                    Some(minutes) if (1..=1440).contains(&minutes) => {
                        Ok(Schedule::Every { minutes })
                    }
                    _ => Err(err("the interval must be between 1 minute and 24 hours")),
                }
            }
            _ => Err(err("unknown form")),
        }
    }

    /// The first firing strictly after `after`, in the time zone `tz`.
    /// See the module documentation for the DST rules.
    pub fn next_after(&self, after: Timestamp, tz: &TimeZone) -> Timestamp {
        match *self {
            Schedule::Daily { at: time } => {
                let mut date = after.to_zoned(tz.clone()).date();
                // Today's firing if it is still ahead, else tomorrow's. A
                // resolved firing is at most a few hours off its civil time,
                // so three days always find one; the loop bound only keeps
                // the function total for absurd zone data.
                for _ in 0..4 {
                    let at = resolve(date.to_datetime(time), tz);
                    if at > after {
                        return at;
                    }
                    date = next_day(date);
                }
                resolve(date.to_datetime(time), tz)
            }
            Schedule::Every { minutes } => {
                let step = i64::from(minutes) * 60;
                let secs = after.as_second();
                let next = (secs.div_euclid(step) + 1) * step;
                Timestamp::from_second(next).unwrap_or(Timestamp::MAX)
            }
        }
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Schedule::Daily { at } => write!(f, "daily {:02}:{:02}", at.hour(), at.minute()),
            Schedule::Every { minutes: 60 } => f.write_str("hourly"),
            Schedule::Every { minutes } if minutes % 60 == 0 => {
                write!(f, "every {}h", minutes / 60)
            }
            Schedule::Every { minutes } => write!(f, "every {minutes}m"),
        }
    }
}

fn parse_2digits(s: &str) -> Option<i8> {
    if s.is_empty() || s.len() > 2 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn next_day(date: Date) -> Date {
    date.tomorrow().unwrap_or(date)
}

/// The instant a civil date-time means in `tz`, with the DST rules of the
/// module doc: in a gap, the end of the gap; in a fold, the earlier instant.
fn resolve(dt: DateTime, tz: &TimeZone) -> Timestamp {
    let ambiguous = tz.to_ambiguous_timestamp(dt);
    match ambiguous.offset() {
        AmbiguousOffset::Unambiguous { offset } | AmbiguousOffset::Fold { before: offset, .. } => {
            offset
                .to_timestamp(dt)
                .unwrap_or_else(|_| fallback(ambiguous.compatible()))
        }
        AmbiguousOffset::Gap { after, .. } => {
            // Read with the post-gap offset, the civil time lands *before*
            // the transition (02:30 at +02:00 is 01:30 at +01:00); the next
            // transition from there is the first instant after the gap.
            let before_gap = after
                .to_timestamp(dt)
                .unwrap_or_else(|_| fallback(ambiguous.compatible()));
            tz.following(before_gap)
                .next()
                .map(|t| t.timestamp())
                .unwrap_or_else(|| fallback(ambiguous.compatible()))
        }
    }
}

/// Only reached for civil times at the edge of jiff's range.
fn fallback(r: Result<Timestamp, jiff::Error>) -> Timestamp {
    r.unwrap_or(Timestamp::MAX)
}

/// Where time comes from, so the scheduler can be driven by hand in tests.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

/// The system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock that only moves when told to.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<Timestamp>,
}

impl ManualClock {
    pub fn new(now: Timestamp) -> ManualClock {
        ManualClock {
            now: Mutex::new(now),
        }
    }

    pub fn set(&self, now: Timestamp) {
        *self.now.lock().unwrap_or_else(|p| p.into_inner()) = now;
    }

    /// Moves the clock forward by `by` (saturating at the end of time).
    pub fn advance(&self, by: SignedDuration) {
        let mut now = self.now.lock().unwrap_or_else(|p| p.into_inner());
        *now = now.checked_add(by).unwrap_or(Timestamp::MAX);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.now.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Each scheduled flow's next firing. See the module documentation.
#[derive(Debug, Clone)]
pub struct Scheduler {
    tz: TimeZone,
    flows: BTreeMap<String, (Schedule, Timestamp)>,
}

impl Scheduler {
    /// A scheduler for `flows`, whose first firings are the first ones
    /// strictly after `now`.
    pub fn new(
        tz: TimeZone,
        flows: impl IntoIterator<Item = (String, Schedule)>,
        now: Timestamp,
    ) -> Scheduler {
        let flows = flows
            .into_iter()
            .map(|(name, s)| {
                let next = s.next_after(now, &tz);
                (name, (s, next))
            })
            .collect();
        Scheduler { tz, flows }
    }

    /// The flows whose firing time has come (`next <= now`), in name order.
    /// Each is then rescheduled to its first firing after `now`, so a flow
    /// is returned once per firing and missed firings collapse into one.
    pub fn due(&mut self, now: Timestamp) -> Vec<String> {
        let mut due = Vec::new();
        for (name, (schedule, next)) in &mut self.flows {
            if *next <= now {
                due.push(name.clone());
                *next = schedule.next_after(now, &self.tz);
            }
        }
        due
    }

    /// The next firing of `flow`, if it is scheduled.
    pub fn next_fire(&self, flow: &str) -> Option<Timestamp> {
        self.flows.get(flow).map(|(_, next)| *next)
    }

    /// The earliest next firing of any flow, to know how long to sleep.
    pub fn next_wakeup(&self) -> Option<Timestamp> {
        self.flows.values().map(|(_, next)| *next).min()
    }

    /// The time zone firings are computed in.
    pub fn time_zone(&self) -> &TimeZone {
        &self.tz
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_accepted_forms_and_prints_them_back() {
        for (text, want) in [
            (
                "daily 02:00",
                Schedule::Daily {
                    at: Time::constant(2, 0, 0, 0),
                },
            ),
            (
                "Daily 2:30",
                Schedule::Daily {
                    at: Time::constant(2, 30, 0, 0),
                },
            ),
            ("hourly", Schedule::Every { minutes: 60 }),
            ("every 15m", Schedule::Every { minutes: 15 }),
            ("every 2 h", Schedule::Every { minutes: 120 }),
        ] {
            assert_eq!(Schedule::parse(text), Ok(want), "{text}");
        }
        assert_eq!(
            Schedule::parse("daily 2:30").unwrap().to_string(),
            "daily 02:30"
        );
        assert_eq!(
            Schedule::parse("every 120m").unwrap().to_string(),
            "every 2h"
        );
    }

    #[test]
    fn errors_name_the_problem_and_the_accepted_forms() {
        for (text, problem) in [
            ("daily 25:00", "hour"),
            ("daily 02:60", "minute"),
            ("daily", "HH:MM"),
            ("weekly", "unknown form"),
            ("every 0m", "between"),
            ("every 5 s", "unit"),
            ("hourly 3", "unknown form"),
            ("daily 02:00 Europe/Paris", "tenant's time zone"),
        ] {
            let e = Schedule::parse(text).unwrap_err().to_string();
            assert!(e.contains(problem), "{text}: {e}");
            assert!(e.contains("daily HH:MM"), "{text}: {e}");
        }
    }

    #[test]
    fn every_is_aligned_on_absolute_time() {
        let tz = TimeZone::UTC;
        let s = Schedule::parse("every 15m").unwrap();
        let t: Timestamp = "2026-01-01T10:07:00Z".parse().unwrap();
        assert_eq!(s.next_after(t, &tz).to_string(), "2026-01-01T10:15:00Z");
        let t: Timestamp = "2026-01-01T10:15:00Z".parse().unwrap();
        assert_eq!(s.next_after(t, &tz).to_string(), "2026-01-01T10:30:00Z");
    }
}
