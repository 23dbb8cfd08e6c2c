//! Schedules across the Europe/Paris daylight-saving changes of 2026
//! (spring forward Sunday 29 March 02:00 → 03:00, fall back Sunday
//! 25 October 03:00 → 02:00), driven by a manual clock stepped minute by
//! minute: every daily schedule fires exactly once per local day, at the
//! expected UTC instant.

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use muster::schedule::{Clock, ManualClock, Schedule, Scheduler};

fn paris() -> TimeZone {
    TimeZone::get("Europe/Paris").unwrap()
}

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

/// Steps a manual clock one minute at a time from `from` to `to` and
/// returns every (flow, instant) firing.
fn fire_minute_by_minute(flows: &[(&str, &str)], from: &str, to: &str) -> Vec<(String, Timestamp)> {
    let clock = ManualClock::new(ts(from));
    let mut s = Scheduler::new(
        paris(),
        flows
            .iter()
            .map(|(n, s)| (n.to_string(), Schedule::parse(s).unwrap())),
        clock.now(),
    );
    let end = ts(to);
    let mut fired = Vec::new();
    while clock.now() < end {
        clock.advance(SignedDuration::from_mins(1));
        for flow in s.due(clock.now()) {
            fired.push((flow, clock.now()));
        }
    }
    fired
}

fn instants(fired: &[(String, Timestamp)], flow: &str) -> Vec<String> {
    fired
        .iter()
        .filter(|(f, _)| f == flow)
        .map(|(_, t)| t.to_string())
        .collect()
}

#[test]
fn march_week_fires_once_a_day_and_at_the_end_of_the_gap_on_the_change_day() {
    // Thursday 26 March 00:00 CET to Wednesday 1 April 00:00 CEST.
    let fired = fire_minute_by_minute(
        &[
            ("at-0200", "daily 02:00"),
            ("at-0230", "daily 02:30"),
            ("at-0300", "daily 03:00"),
            ("at-0100", "daily 01:00"),
        ],
        "2026-03-25T23:00:00Z",
        "2026-03-31T22:00:00Z",
    );
    // 02:00 and 02:30 do not exist on the 29th: both fire once, at the
    // first valid instant after the gap, 03:00 CEST = 01:00 UTC.
    assert_eq!(
        instants(&fired, "at-0200"),
        [
            "2026-03-26T01:00:00Z",
            "2026-03-27T01:00:00Z",
            "2026-03-28T01:00:00Z",
            "2026-03-29T01:00:00Z",
            "2026-03-30T00:00:00Z",
            "2026-03-31T00:00:00Z",
        ]
    );
    assert_eq!(
        instants(&fired, "at-0230"),
        [
            "2026-03-26T01:30:00Z",
            "2026-03-27T01:30:00Z",
            "2026-03-28T01:30:00Z",
            "2026-03-29T01:00:00Z",
            "2026-03-30T00:30:00Z",
            "2026-03-31T00:30:00Z",
        ]
    );
    // 03:00 CEST exists (it is the transition instant) and is not doubled
    // by the gap rule of the other flows.
    assert_eq!(
        instants(&fired, "at-0300"),
        [
            "2026-03-26T02:00:00Z",
            "2026-03-27T02:00:00Z",
            "2026-03-28T02:00:00Z",
            "2026-03-29T01:00:00Z",
            "2026-03-30T01:00:00Z",
            "2026-03-31T01:00:00Z",
        ]
    );
    // Unaffected hours just shift by the offset.
    assert_eq!(
        instants(&fired, "at-0100"),
        [
            "2026-03-26T00:00:00Z",
            "2026-03-27T00:00:00Z",
            "2026-03-28T00:00:00Z",
            "2026-03-29T00:00:00Z",
            "2026-03-29T23:00:00Z",
            "2026-03-30T23:00:00Z",
        ]
    );
}

#[test]
fn october_week_fires_once_a_day_and_only_once_in_the_repeated_hour() {
    // Thursday 22 October 00:00 CEST to Wednesday 28 October 00:00 CET.
    let fired = fire_minute_by_minute(
        &[
            ("at-0200", "daily 02:00"),
            ("at-0230", "daily 02:30"),
            ("at-0300", "daily 03:00"),
        ],
        "2026-10-21T22:00:00Z",
        "2026-10-27T23:00:00Z",
    );
    // 02:30 happens at 00:30 UTC (CEST) and again at 01:30 UTC (CET) on
    // the 25th: it fires at the first one only.
    assert_eq!(
        instants(&fired, "at-0230"),
        [
            "2026-10-22T00:30:00Z",
            "2026-10-23T00:30:00Z",
            "2026-10-24T00:30:00Z",
            "2026-10-25T00:30:00Z",
            "2026-10-26T01:30:00Z",
            "2026-10-27T01:30:00Z",
        ]
    );
    assert_eq!(
        instants(&fired, "at-0200"),
        [
            "2026-10-22T00:00:00Z",
            "2026-10-23T00:00:00Z",
            "2026-10-24T00:00:00Z",
            "2026-10-25T00:00:00Z",
            "2026-10-26T01:00:00Z",
            "2026-10-27T01:00:00Z",
        ]
    );
    // 03:00 is unambiguous (the fold ends just before it): CET from the 25th.
    assert_eq!(
        instants(&fired, "at-0300"),
        [
            "2026-10-22T01:00:00Z",
            "2026-10-23T01:00:00Z",
            "2026-10-24T01:00:00Z",
            "2026-10-25T02:00:00Z",
            "2026-10-26T02:00:00Z",
            "2026-10-27T02:00:00Z",
        ]
    );
}

#[test]
fn next_after_in_the_gap_and_the_fold() {
    let tz = paris();
    let s = Schedule::parse("daily 02:30").unwrap();
    // From just before the gap day's firing, and from inside the gap.
    assert_eq!(
        s.next_after(ts("2026-03-28T23:00:00Z"), &tz),
        ts("2026-03-29T01:00:00Z")
    );
    assert_eq!(
        s.next_after(ts("2026-03-29T01:00:00Z"), &tz),
        ts("2026-03-30T00:30:00Z")
    );
    // In the fold: after the first 02:30, the second one is not a firing.
    assert_eq!(
        s.next_after(ts("2026-10-25T00:30:00Z"), &tz),
        ts("2026-10-26T01:30:00Z")
    );
    assert_eq!(
        s.next_after(ts("2026-10-25T00:45:00Z"), &tz),
        ts("2026-10-26T01:30:00Z")
    );
}

#[test]
fn a_scheduler_that_slept_through_firings_fires_once_then_resumes() {
    let tz = paris();
    let start = ts("2026-06-01T00:00:00Z");
    let mut s = Scheduler::new(
        tz,
        [("f".to_string(), Schedule::parse("daily 02:00").unwrap())],
        start,
    );
    // Started exactly at a firing instant: the first firing is strictly later.
    assert_eq!(s.next_fire("f"), Some(ts("2026-06-02T00:00:00Z")));
    // Asleep for three days: one firing, then the next one after "now".
    let later = ts("2026-06-04T12:00:00Z");
    assert_eq!(s.due(later), ["f"]);
    assert!(s.due(later).is_empty());
    assert_eq!(s.next_fire("f"), Some(ts("2026-06-05T00:00:00Z")));
    assert_eq!(s.next_wakeup(), Some(ts("2026-06-05T00:00:00Z")));
    assert_eq!(s.next_fire("unknown"), None);
}

#[test]
fn interval_schedules_keep_their_rhythm_across_the_change() {
    // Every 15 minutes across the October fold: 4 per hour, 25 hours that
    // local day, no gap and no double.
    let fired = fire_minute_by_minute(
        &[("q", "every 15m"), ("h", "hourly")],
        "2026-10-24T22:00:00Z",
        "2026-10-25T23:00:00Z",
    );
    let q = instants(&fired, "q");
    assert_eq!(q.len(), 25 * 4);
    assert_eq!(q.first().map(String::as_str), Some("2026-10-24T22:15:00Z"));
    assert_eq!(instants(&fired, "h").len(), 25);
}
