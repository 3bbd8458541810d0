//! When a reminder is due: parsing what members write (`2h30m`, `2026-12-24 18:00`, `09:00`) in
//! their own time zone, and the next run of a recurring reminder, correct across daylight-saving
//! changes (a reminder at 09:00 stays at 09:00 local time).

use jiff::civil::{Date, DateTime, Time};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan, ZonedDateTime};

/// The furthest ahead a reminder may be set.
pub const MAX_AHEAD_MS: i64 = 366 * 86_400_000;

/// Why a time could not be understood.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ScheduleError {
    /// Not an IANA time zone name.
    #[error("`{0}` is not a time zone name; use an IANA name such as Europe/Paris or America/New_York")]
    Zone(String),
    /// Not a duration.
    #[error("`{0}` is not a duration; write it like 10m, 2h30m or 3d")]
    Duration(String),
    /// Not a date and time.
    #[error("`{0}` is not a date and time; write it like 2026-12-24 18:00 (or 18:00 for today)")]
    When(String),
    /// Not a time of day.
    #[error("`{0}` is not a time of day; write it like 09:00")]
    TimeOfDay(String),
    /// In the past.
    #[error("that time has already passed")]
    Past,
    /// Further than a year ahead.
    #[error("a reminder can be at most one year ahead")]
    TooFar,
}

/// The zone named `name` (IANA).
pub fn zone(name: &str) -> Result<TimeZone, ScheduleError> {
    TimeZone::get(name.trim()).map_err(|_| ScheduleError::Zone(name.trim().to_owned()))
}

fn checked(now_ms: i64, at_ms: i64) -> Result<i64, ScheduleError> {
    if at_ms <= now_ms {
        Err(ScheduleError::Past)
    } else if at_ms - now_ms > MAX_AHEAD_MS {
        Err(ScheduleError::TooFar)
    } else {
        Ok(at_ms)
    }
}

/// `/remind in`: now plus a duration such as `2h30m`.
pub fn after(now_ms: i64, text: &str) -> Result<i64, ScheduleError> {
    let d = humantime::parse_duration(text.trim()).map_err(|_| ScheduleError::Duration(text.trim().to_owned()))?;
    let ms = i64::try_from(d.as_millis()).map_err(|_| ScheduleError::TooFar)?;
    checked(now_ms, now_ms.saturating_add(ms))
}

fn time_of_day(text: &str) -> Result<Time, ScheduleError> {
    let bad = || ScheduleError::TimeOfDay(text.trim().to_owned());
    let (h, m) = text.trim().split_once(':').ok_or_else(bad)?;
    let (h, m): (i8, i8) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    Time::new(h, m, 0, 0).map_err(|_| bad())
}

/// Minutes past midnight of `HH:MM`.
pub fn minute_of_day(text: &str) -> Result<i64, ScheduleError> {
    let t = time_of_day(text)?;
    Ok(i64::from(t.hour()) * 60 + i64::from(t.minute()))
}

fn to_ms(ts: Timestamp) -> i64 {
    ts.as_millisecond()
}

fn now_in(now_ms: i64, tz: &TimeZone) -> Result<ZonedDateTime, ScheduleError> {
    Timestamp::from_millisecond(now_ms).map(|t| t.to_zoned_datetime(tz.clone())).map_err(|_| ScheduleError::Past)
}

/// `/remind at`: `YYYY-MM-DD HH:MM` or `HH:MM` (today, or tomorrow once passed) in `tz`. A local
/// time skipped by a DST change is moved forward, one that happens twice is the first.
pub fn at(now_ms: i64, text: &str, tz: &TimeZone) -> Result<i64, ScheduleError> {
    let text = text.trim();
    let now = now_in(now_ms, tz)?;
    let local = if let Some((date, time)) = text.split_once([' ', 'T']) {
        let date: Date = date.parse().map_err(|_| ScheduleError::When(text.to_owned()))?;
        let time = time_of_day(time).map_err(|_| ScheduleError::When(text.to_owned()))?;
        DateTime::from_parts(date, time)
    } else {
        let time = time_of_day(text).map_err(|_| ScheduleError::When(text.to_owned()))?;
        let today = DateTime::from_parts(now.date(), time);
        let zoned = today.to_zoned_datetime(tz.clone()).map_err(|_| ScheduleError::When(text.to_owned()))?;
        if zoned.timestamp() > now.timestamp() {
            today
        } else {
            today.checked_add(1.day()).map_err(|_| ScheduleError::TooFar)?
        }
    };
    let zoned = local.to_zoned_datetime(tz.clone()).map_err(|_| ScheduleError::When(text.to_owned()))?;
    checked(now_ms, to_ms(zoned.timestamp()))
}

/// The first run of a recurring reminder every `every_days` days at `minute` (local) in `tz`,
/// counted from the local day of `anchor_ms` (its previous run), that is strictly after
/// `after_ms`; runs in between (missed while Beacon was down) are skipped, never replayed. The
/// local time is kept across DST changes.
pub fn next_run(
    anchor_ms: i64,
    after_ms: i64,
    every_days: i64,
    minute: i64,
    tz: &TimeZone,
) -> Result<i64, ScheduleError> {
    let anchor = now_in(anchor_ms, tz)?;
    let after = now_in(after_ms, tz)?;
    let time = Time::new(
        i8::try_from(minute / 60).map_err(|_| ScheduleError::TimeOfDay(minute.to_string()))?,
        i8::try_from(minute % 60).map_err(|_| ScheduleError::TimeOfDay(minute.to_string()))?,
        0,
        0,
    )
    .map_err(|_| ScheduleError::TimeOfDay(minute.to_string()))?;
    let mut day = DateTime::from_parts(anchor.date(), time);
    let step = every_days.max(1);
    loop {
        let zoned = day.to_zoned_datetime(tz.clone()).map_err(|_| ScheduleError::TooFar)?;
        if zoned.timestamp() > after.timestamp() {
            return Ok(to_ms(zoned.timestamp()));
        }
        // Whole days in local time: 09:00 stays 09:00 when the clocks change.
        day = day.checked_add(step.days()).map_err(|_| ScheduleError::TooFar)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(text: &str) -> i64 {
        text.parse::<Timestamp>().expect("timestamp").as_millisecond()
    }

    #[test]
    fn a_daily_reminder_stays_at_its_local_time_across_the_dst_change() {
        let paris = zone("Europe/Paris").unwrap();
        // Clocks go back on 2026-10-25 in Paris: 09:00 is 07:00 UTC before, 08:00 UTC after.
        let before = next_run(ms("2026-10-24T07:00:00Z"), ms("2026-10-24T07:30:00Z"), 1, 9 * 60, &paris).unwrap();
        assert_eq!(before, ms("2026-10-25T08:00:00Z"), "09:00 CET on the day of the change");
        let on_the_eve = next_run(ms("2026-10-23T07:00:00Z"), ms("2026-10-23T08:00:00Z"), 1, 9 * 60, &paris).unwrap();
        assert_eq!(on_the_eve, ms("2026-10-24T07:00:00Z"), "09:00 CEST before it");
        // Spring forward in New York (2026-03-08): 09:00 EST is 14:00 UTC, 09:00 EDT 13:00 UTC.
        let ny = zone("America/New_York").unwrap();
        let run = ms("2026-03-07T14:00:00Z");
        assert_eq!(next_run(run, run, 1, 9 * 60, &ny).unwrap(), ms("2026-03-08T13:00:00Z"));
        // A naive "add 24 hours" would have been 14:00 UTC, 10:00 local.
        assert_ne!(ms("2026-03-07T14:00:00Z") + 86_400_000, ms("2026-03-08T13:00:00Z"));
    }

    #[test]
    fn missed_runs_are_skipped_not_replayed() {
        let utc = zone("UTC").unwrap();
        // Down for three days: the next run is the first one after now, once.
        let (run, now) = (ms("2026-05-01T09:00:00Z"), ms("2026-05-04T12:00:00Z"));
        assert_eq!(next_run(run, now, 1, 9 * 60, &utc).unwrap(), ms("2026-05-05T09:00:00Z"));
        // Weekly, its weekday kept: a run on Tuesday 2026-04-28, down until the next Monday.
        assert_eq!(next_run(ms("2026-04-28T09:00:00Z"), now, 7, 9 * 60, &utc).unwrap(), ms("2026-05-05T09:00:00Z"));
        // Down for three weeks: one run next, not three.
        assert_eq!(next_run(ms("2026-04-07T09:00:00Z"), now, 7, 9 * 60, &utc).unwrap(), ms("2026-05-05T09:00:00Z"));
    }

    #[test]
    fn times_members_write() {
        let now = ms("2026-12-02T22:00:00Z");
        let paris = zone("Europe/Paris").unwrap();
        assert_eq!(after(now, "2h30m").unwrap(), now + 9_000_000);
        assert_eq!(at(now, "2026-12-24 18:00", &paris).unwrap(), ms("2026-12-24T17:00:00Z"));
        assert_eq!(at(now, "09:00", &paris).unwrap(), ms("2026-12-03T08:00:00Z"), "tomorrow once passed");
        assert_eq!(after(now, "soon"), Err(ScheduleError::Duration("soon".into())));
        assert_eq!(at(now, "2025-01-01 10:00", &paris), Err(ScheduleError::Past));
        assert_eq!(at(now, "2028-01-01 10:00", &paris), Err(ScheduleError::TooFar));
        assert_eq!(after(now, "400d"), Err(ScheduleError::TooFar));
        assert!(matches!(zone("Mars/Olympus"), Err(ScheduleError::Zone(_))));
        assert_eq!(minute_of_day("25:00"), Err(ScheduleError::TimeOfDay("25:00".into())));
    }
}
