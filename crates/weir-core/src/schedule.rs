//! Schedule expressions as Amazon EventBridge writes them, so a rule reads the same in
//! `weir.toml` and in a SAM template: `rate(1 day)`, `rate(15 minutes)`,
//! `cron(0 8 * * ? *)`. A cron's times are UTC unless it is given an IANA time zone
//! ([`Schedule::in_zone`], EventBridge Scheduler's `ScheduleExpressionTimezone`); the zones
//! come from the tz database compiled into weir, not from the machine.
//!
//! In a zone with daylight saving time a cron's local times are resolved once each:
//! - a local time that does not exist (the hour skipped in spring) fires at the same distance
//!   past the change, once: `30 2` in Europe/Berlin on the last Sunday of March fires at
//!   03:30 CEST (01:30 UTC). (EventBridge Scheduler documents that it skips such a time; weir
//!   does not drop a due time, so a daily report is never missing for the day.)
//! - a local time that happens twice (the hour repeated in autumn) fires once, the first
//!   time: `30 2` on the last Sunday of October fires at 02:30 CEST (00:30 UTC), not again
//!   at 02:30 CET.
//!
//! A `rate()` is a fixed duration whatever the zone (a `rate(1 day)` is 24 hours, as in
//! EventBridge Scheduler).
//!
//! `cron` has six fields — minutes, hours, day of month, day of week... in EventBridge's order:
//! `cron(Minutes Hours Day-of-month Month Day-of-week Year)`, with
//! - `,` lists, `-` ranges, `*` every value, `/` increments (`0/15`, `*/5`, `10-50/10`);
//! - month names `JAN`-`DEC`, weekday names `SUN`-`SAT` (1 = Sunday, 7 = Saturday);
//! - in day of month: `L` (the last day), `15W` (the weekday nearest the 15th, within its
//!   month), `LW` (the last weekday); in day of week: `6L` (the last Friday), `2#1` (the first
//!   Monday);
//! - exactly one of day of month and day of week is `?` (EventBridge refuses both or neither).
//!
//! `rate` takes a positive whole number and `minute`/`hour`/`day`, singular for 1 and plural
//! otherwise, as EventBridge insists. A rate's first time is one interval after it starts
//! counting ([`Schedule::next_after`] with the time it was last due, or the start).
//!
//! Errors name the field and say what is wrong, so `weir check` can point at it.

use std::fmt;
use std::str::FromStr;

use chrono::offset::LocalResult;
use chrono::{
    DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, Offset, TimeZone, Timelike, Utc, Weekday,
};
/// An IANA time zone (`Europe/Berlin`, `UTC`), from the tz database compiled into weir.
pub use chrono_tz::Tz;

/// A parsed schedule expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    Rate(Duration),
    Cron(Box<Cron>),
}

/// A parsed `cron(...)` expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    minutes: Vec<u32>,
    hours: Vec<u32>,
    days: DaySpec,
    months: Vec<u32>,
    /// `None` for `*`.
    years: Option<Vec<i32>>,
    text: String,
    /// The zone the fields are read in (UTC unless [`Schedule::in_zone`] says otherwise).
    zone: Tz,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum DaySpec {
    /// Days of the month (1-31), from the day-of-month field.
    MonthDays(Vec<u32>),
    LastDay,
    LastWeekday,
    /// `15W`.
    NearestWeekday(u32),
    /// Weekdays (1 = Sunday … 7 = Saturday), from the day-of-week field.
    WeekDays(Vec<u32>),
    /// `6L`: the last such weekday of the month.
    LastOf(u32),
    /// `2#1`: the n-th such weekday of the month.
    Nth(u32, u32),
}

/// What is wrong with an expression.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ScheduleError(String);

pub(crate) fn err(msg: impl Into<String>) -> ScheduleError {
    ScheduleError(msg.into())
}

impl FromStr for Schedule {
    type Err = ScheduleError;

    fn from_str(s: &str) -> Result<Schedule, ScheduleError> {
        let s = s.trim();
        if let Some(inner) = s.strip_prefix("rate(").and_then(|r| r.strip_suffix(')')) {
            return parse_rate(inner);
        }
        if let Some(inner) = s.strip_prefix("cron(").and_then(|r| r.strip_suffix(')')) {
            return Ok(Schedule::Cron(Box::new(parse_cron(inner)?)));
        }
        Err(err(format!("{s:?} is neither rate(...) nor cron(...), e.g. rate(1 day) or cron(0 8 * * ? *)")))
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Schedule::Rate(d) => {
                let (n, unit) = if d.num_minutes() % (24 * 60) == 0 {
                    (d.num_days(), "day")
                } else if d.num_minutes() % 60 == 0 {
                    (d.num_hours(), "hour")
                } else {
                    (d.num_minutes(), "minute")
                };
                write!(f, "rate({n} {unit}{})", if n == 1 { "" } else { "s" })
            }
            Schedule::Cron(c) => write!(f, "cron({})", c.text),
        }
    }
}

fn parse_rate(inner: &str) -> Result<Schedule, ScheduleError> {
    let parts: Vec<&str> = inner.split_whitespace().collect();
    let [value, unit] = parts[..] else {
        return Err(err(format!("rate({inner}): expected a number and a unit, e.g. rate(5 minutes)")));
    };
    let n: i64 = value
        .parse()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| err(format!("rate({inner}): {value:?} is not a positive whole number")))?;
    let (singular, minutes) = match unit {
        "minute" | "minutes" => ("minute", 1),
        "hour" | "hours" => ("hour", 60),
        "day" | "days" => ("day", 24 * 60),
        _ => return Err(err(format!("rate({inner}): unit {unit:?} is not minute(s), hour(s) or day(s)"))),
    };
    let plural = unit.ends_with('s');
    if (n == 1) == plural {
        let want = if n == 1 { singular.to_string() } else { format!("{singular}s") };
        return Err(err(format!("rate({inner}): write rate({n} {want}), as EventBridge requires")));
    }
    Ok(Schedule::Rate(Duration::minutes(n * minutes)))
}

const MONTHS: [&str; 12] =
    ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
const WEEKDAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

fn parse_cron(inner: &str) -> Result<Cron, ScheduleError> {
    let fields: Vec<&str> = inner.split_whitespace().collect();
    let [min, hour, dom, month, dow, year] = fields[..] else {
        return Err(err(format!(
            "cron({inner}): {} fields; EventBridge's cron has six: minutes hours day-of-month month day-of-week year",
            fields.len()
        )));
    };
    let minutes = values("minutes", min, 0, 59, &[])?;
    let hours = values("hours", hour, 0, 23, &[])?;
    let months = values("month", month, 1, 12, &MONTHS)?;
    let years = match year {
        "*" => None,
        y => Some(values("year", y, 1970, 2199, &[])?.into_iter().map(|y| y as i32).collect()),
    };
    let days = match (dom, dow) {
        ("?", "?") => return Err(err("day-of-month and day-of-week: only one of them may be ?")),
        ("?", dow) => day_of_week(dow)?,
        (dom, "?") => day_of_month(dom)?,
        _ => {
            return Err(err(format!(
                "day-of-month {dom:?} and day-of-week {dow:?}: one of them must be ? (EventBridge cannot take both)"
            )))
        }
    };
    Ok(Cron { minutes, hours, days, months, years, text: fields.join(" "), zone: Tz::UTC })
}

fn day_of_month(f: &str) -> Result<DaySpec, ScheduleError> {
    match f {
        "L" => Ok(DaySpec::LastDay),
        "LW" => Ok(DaySpec::LastWeekday),
        _ => match f.strip_suffix('W') {
            Some(d) => {
                let d = number("day-of-month", d, 1, 31, &[])?;
                Ok(DaySpec::NearestWeekday(d))
            }
            None => Ok(DaySpec::MonthDays(values("day-of-month", f, 1, 31, &[])?)),
        },
    }
}

fn day_of_week(f: &str) -> Result<DaySpec, ScheduleError> {
    if let Some((day, nth)) = f.split_once('#') {
        let day = number("day-of-week", day, 1, 7, &WEEKDAYS)?;
        let nth = number("day-of-week", nth, 1, 5, &[])?;
        return Ok(DaySpec::Nth(day, nth));
    }
    if let Some(day) = f.strip_suffix('L').filter(|d| !d.is_empty()) {
        return Ok(DaySpec::LastOf(number("day-of-week", day, 1, 7, &WEEKDAYS)?));
    }
    if f == "L" {
        return Ok(DaySpec::WeekDays(vec![7]));
    }
    Ok(DaySpec::WeekDays(values("day-of-week", f, 1, 7, &WEEKDAYS)?))
}

/// One value: a number or, where the field has them, a name (`JAN`, `MON`).
fn number(field: &str, s: &str, lo: u32, hi: u32, names: &[&str]) -> Result<u32, ScheduleError> {
    let upper = s.to_ascii_uppercase();
    let n = match names.iter().position(|n| *n == upper) {
        Some(i) => i as u32 + lo,
        None => s.parse::<u32>().map_err(|_| err(format!("{field}: {s:?} is not a value")))?,
    };
    if n < lo || n > hi {
        return Err(err(format!("{field}: {n} is outside {lo}-{hi}")));
    }
    Ok(n)
}

/// A field's values: `*`, `a`, `a-b`, `a/step`, `*/step`, `a-b/step`, lists of those.
fn values(field: &str, s: &str, lo: u32, hi: u32, names: &[&str]) -> Result<Vec<u32>, ScheduleError> {
    let mut out = Vec::new();
    for part in s.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, step)) => {
                let step: u32 = step
                    .parse()
                    .ok()
                    .filter(|s| *s > 0)
                    .ok_or_else(|| err(format!("{field}: {step:?} is not a positive increment")))?;
                (r, step)
            }
            None => (part, 1),
        };
        let (from, to) = match range {
            "*" => (lo, hi),
            r => match r.split_once('-') {
                Some((a, b)) => (number(field, a, lo, hi, names)?, number(field, b, lo, hi, names)?),
                None => {
                    let a = number(field, r, lo, hi, names)?;
                    // `a/step` runs from a to the end of the field.
                    (a, if part.contains('/') { hi } else { a })
                }
            },
        };
        if from > to {
            return Err(err(format!("{field}: range {range:?} runs backwards")));
        }
        out.extend((from..=to).step_by(step as usize));
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

impl Schedule {
    /// The first time this schedule is due strictly after `after` (for a rate: `after` plus
    /// the interval, so pass the time it was last due). `None` if a cron never fires again
    /// (its years are past).
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Schedule::Rate(d) => Some(after + *d),
            Schedule::Cron(c) => c.next_after(after),
        }
    }

    /// The same schedule with a cron's fields read in `zone` (a rate is the same in any zone).
    pub fn in_zone(self, zone: Tz) -> Schedule {
        match self {
            Schedule::Cron(mut c) => {
                c.zone = zone;
                Schedule::Cron(c)
            }
            rate => rate,
        }
    }
}

/// Parses an IANA time zone name as `time_zone` takes it (`Europe/Berlin`, `UTC`).
pub fn parse_zone(name: &str) -> Result<Tz, ScheduleError> {
    name.parse::<Tz>().map_err(|_| {
        err(format!(
            "{name:?} is not a time zone of the IANA tz database; write one such as \"Europe/Berlin\", \"America/New_York\" or \"UTC\""
        ))
    })
}

/// The instant a local time stands for in `zone`, and whether it was shifted because the
/// local time does not exist (skipped by a change to daylight saving time). A local time
/// that happens twice is its first instant.
fn resolve(zone: Tz, local: NaiveDateTime) -> (DateTime<Utc>, bool) {
    match zone.from_local_datetime(&local) {
        LocalResult::Single(t) => (t.with_timezone(&Utc), false),
        LocalResult::Ambiguous(first, second) => (first.min(second).with_timezone(&Utc), false),
        LocalResult::None => {
            // In the gap: read it with the offset in force before the change (a day earlier
            // is before it), which lands as far past the change as the time is into the gap.
            let before = zone.offset_from_utc_datetime(&(local - Duration::days(1))).fix();
            ((local - before).and_utc(), true)
        }
    }
}

impl Cron {
    fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let zone = self.zone;
        // Local times from a little before `after`'s: a time in a spring gap is due later
        // than its local reading says (by the gap), so candidates start one offset change
        // early; those at or before `after` are passed over.
        let offset_now = zone.offset_from_utc_datetime(&after.naive_utc()).fix();
        let offset_before = zone.offset_from_utc_datetime(&(after - Duration::days(1)).naive_utc()).fix();
        let earliest_offset = offset_now.local_minus_utc().min(offset_before.local_minus_utc());
        let local_after = after.naive_utc() + Duration::seconds(earliest_offset as i64);
        let start = local_after.with_second(0)?.with_nanosecond(0)? + Duration::minutes(1);
        let mut day = start.date();
        let last_year = self.years.as_ref().map_or(start.year() + 30, |y| *y.iter().max().unwrap_or(&1970));
        // A shifted (gap) time found first may be later than an ordinary local time just after
        // the gap: it stays the best until the local times pass the instant it stands for.
        let mut best: Option<(DateTime<Utc>, NaiveDateTime)> = None;
        while day.year() <= last_year {
            if self.day_matches(day) {
                let first_hour = if day == start.date() { start.hour() } else { 0 };
                for &h in self.hours.iter().filter(|h| **h >= first_hour) {
                    for &m in &self.minutes {
                        let local = day.and_hms_opt(h, m, 0)?;
                        if local < start {
                            continue;
                        }
                        if let Some((t, until)) = best {
                            if local > until {
                                return Some(t);
                            }
                        }
                        let (t, shifted) = resolve(zone, local);
                        if t <= after {
                            continue;
                        }
                        let t = best.map_or(t, |(b, _)| b.min(t));
                        if !shifted {
                            return Some(t);
                        }
                        best = Some((t, t.with_timezone(&zone).naive_local()));
                    }
                }
            }
            day = day.succ_opt()?;
        }
        best.map(|(t, _)| t)
    }

    fn day_matches(&self, d: NaiveDate) -> bool {
        if !self.months.contains(&d.month()) {
            return false;
        }
        if let Some(years) = &self.years {
            if !years.contains(&d.year()) {
                return false;
            }
        }
        let last = last_day_of_month(d);
        let weekday = d.weekday().number_from_sunday();
        match &self.days {
            DaySpec::MonthDays(days) => days.contains(&d.day()),
            DaySpec::LastDay => d.day() == last,
            DaySpec::LastWeekday => d.day() == nearest_weekday(d, last),
            DaySpec::NearestWeekday(n) => d.day() == nearest_weekday(d, (*n).min(last)),
            DaySpec::WeekDays(days) => days.contains(&weekday),
            DaySpec::LastOf(w) => weekday == *w && d.day() + 7 > last,
            DaySpec::Nth(w, n) => weekday == *w && (d.day() - 1) / 7 + 1 == *n,
        }
    }
}

fn last_day_of_month(d: NaiveDate) -> u32 {
    let (y, m) = if d.month() == 12 { (d.year() + 1, 1) } else { (d.year(), d.month() + 1) };
    NaiveDate::from_ymd_opt(y, m, 1).and_then(|n| n.pred_opt()).map_or(28, |n| n.day())
}

/// The day of `d`'s month that is the weekday nearest to day `n`, without leaving the month.
fn nearest_weekday(d: NaiveDate, n: u32) -> u32 {
    let Some(target) = d.with_day(n) else { return n };
    let last = last_day_of_month(d);
    match target.weekday() {
        Weekday::Sat if n == 1 => 3,
        Weekday::Sat => n - 1,
        Weekday::Sun if n == last => n - 2,
        Weekday::Sun => n + 1,
        _ => n,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn next(expr: &str, after: &str) -> String {
        let s: Schedule = expr.parse().unwrap_or_else(|e| panic!("{expr}: {e}"));
        s.next_after(at(after)).map_or("never".into(), |t| t.format("%Y-%m-%d %H:%M %a").to_string())
    }

    #[test]
    fn expressions_fire_when_eventbridge_fires_them() {
        for (expr, after, want) in [
            ("cron(0 8 * * ? *)", "2026-12-04T07:59:00Z", "2026-12-04 08:00 Fri"),
            ("cron(0 8 * * ? *)", "2026-12-04T08:00:00Z", "2026-12-05 08:00 Sat"),
            ("cron(0 8 * * ? *)", "2026-12-04T08:00:30Z", "2026-12-05 08:00 Sat"),
            ("cron(0/15 * * * ? *)", "2026-12-04T10:07:00Z", "2026-12-04 10:15 Fri"),
            ("cron(*/5 * * * ? *)", "2026-12-04T10:59:00Z", "2026-12-04 11:00 Fri"),
            ("cron(10-50/20 9 * * ? *)", "2026-12-04T09:31:00Z", "2026-12-04 09:50 Fri"),
            ("cron(0 18 ? * MON-FRI *)", "2026-12-04T19:00:00Z", "2026-12-07 18:00 Mon"),
            ("cron(0 9 ? * 2#1 *)", "2026-12-04T00:00:00Z", "2026-12-07 09:00 Mon"),
            ("cron(0 9 ? * 2#1 *)", "2026-12-07T09:00:00Z", "2027-01-04 09:00 Mon"),
            ("cron(0 9 ? * 6L *)", "2026-12-01T00:00:00Z", "2026-12-25 09:00 Fri"),
            ("cron(0 0 L * ? *)", "2027-02-01T00:00:00Z", "2027-02-28 00:00 Sun"),
            ("cron(0 0 L 2 ? *)", "2027-03-01T00:00:00Z", "2028-02-29 00:00 Tue"),
            ("cron(0 0 LW * ? *)", "2027-02-01T00:00:00Z", "2027-02-26 00:00 Fri"),
            ("cron(0 0 15W * ? *)", "2026-08-01T00:00:00Z", "2026-08-14 00:00 Fri"),
            ("cron(0 0 1W * ? *)", "2026-08-01T01:00:00Z", "2026-08-03 00:00 Mon"),
            ("cron(30 12 1,15 JAN,jul ? *)", "2026-12-04T00:00:00Z", "2027-01-01 12:30 Fri"),
            ("cron(0 0 1 1 ? 2025)", "2026-12-04T00:00:00Z", "never"),
            ("cron(0 0 29 2 ? 2027-2029)", "2026-01-01T00:00:00Z", "2028-02-29 00:00 Tue"),
            ("rate(1 day)", "2026-12-04T08:00:00Z", "2026-12-05 08:00 Sat"),
            ("rate(15 minutes)", "2026-12-04T08:00:00Z", "2026-12-04 08:15 Fri"),
            ("rate(2 hours)", "2026-12-04T23:00:00Z", "2026-12-05 01:00 Sat"),
        ] {
            assert_eq!(next(expr, after), want, "{expr} after {after}");
        }
    }

    /// The times a schedule fires after `after`, in order, until `until`: `UTC (local)`.
    fn firings(expr: &str, zone: &str, after: &str, until: &str) -> Vec<String> {
        let zone = parse_zone(zone).unwrap();
        let s = expr.parse::<Schedule>().unwrap().in_zone(zone);
        let mut out = Vec::new();
        let mut t = at(after);
        while let Some(next) = s.next_after(t).filter(|n| *n <= at(until)) {
            assert!(next > t, "{expr} went backwards from {t} to {next}");
            out.push(format!(
                "{} ({})",
                next.format("%m-%d %H:%M"),
                next.with_timezone(&zone).format("%m-%d %H:%M %Z")
            ));
            t = next;
        }
        out
    }

    #[test]
    fn across_daylight_saving_changes_each_local_time_fires_once() {
        // Europe/Berlin, 2026: 02:00 CET -> 03:00 CEST on 29 March, 03:00 CEST -> 02:00 CET on
        // 25 October. America/New_York: 02:00 EST -> 03:00 EDT on 8 March, 02:00 EDT -> 01:00
        // EST on 1 November.
        let cases: [(&str, &str, &str, &str, &[&str]); 8] = [
            (
                "cron(30 2 * * ? *)",
                "Europe/Berlin",
                "2026-03-27T12:00:00Z",
                "2026-03-31T00:00:00Z",
                &[
                    "03-28 01:30 (03-28 02:30 CET)",
                    // 02:30 does not exist that night: once, as far past 03:00 as it is past 02:00.
                    "03-29 01:30 (03-29 03:30 CEST)",
                    "03-30 00:30 (03-30 02:30 CEST)",
                ],
            ),
            (
                "cron(30 2 * * ? *)",
                "Europe/Berlin",
                "2026-10-23T12:00:00Z",
                "2026-10-27T00:00:00Z",
                &[
                    "10-24 00:30 (10-24 02:30 CEST)",
                    // 02:30 happens twice that night: once, the first time.
                    "10-25 00:30 (10-25 02:30 CEST)",
                    "10-26 01:30 (10-26 02:30 CET)",
                ],
            ),
            (
                "cron(30 2 * * ? *)",
                "America/New_York",
                "2026-03-06T12:00:00Z",
                "2026-03-10T00:00:00Z",
                &[
                    "03-07 07:30 (03-07 02:30 EST)",
                    "03-08 07:30 (03-08 03:30 EDT)",
                    "03-09 06:30 (03-09 02:30 EDT)",
                ],
            ),
            (
                "cron(30 1 * * ? *)",
                "America/New_York",
                "2026-10-30T12:00:00Z",
                "2026-11-03T00:00:00Z",
                &[
                    "10-31 05:30 (10-31 01:30 EDT)",
                    "11-01 05:30 (11-01 01:30 EDT)",
                    "11-02 06:30 (11-02 01:30 EST)",
                ],
            ),
            (
                "cron(30 2 * * ? *)",
                "America/New_York",
                "2026-10-31T12:00:00Z",
                "2026-11-02T12:00:00Z",
                &["11-01 07:30 (11-01 02:30 EST)", "11-02 07:30 (11-02 02:30 EST)"],
            ),
            (
                // Hourly through the spring gap: local 02:00 is 03:00, which fires once.
                "cron(0 * * * ? *)",
                "Europe/Berlin",
                "2026-03-28T23:30:00Z",
                "2026-03-29T02:00:00Z",
                &[
                    "03-29 00:00 (03-29 01:00 CET)",
                    "03-29 01:00 (03-29 03:00 CEST)",
                    "03-29 02:00 (03-29 04:00 CEST)",
                ],
            ),
            (
                // Hourly through the autumn repeat: the repeated 02:00 fires the first time only.
                "cron(0 * * * ? *)",
                "Europe/Berlin",
                "2026-10-24T22:30:00Z",
                "2026-10-25T03:00:00Z",
                &[
                    "10-24 23:00 (10-25 01:00 CEST)",
                    "10-25 00:00 (10-25 02:00 CEST)",
                    "10-25 02:00 (10-25 03:00 CET)",
                    "10-25 03:00 (10-25 04:00 CET)",
                ],
            ),
            (
                // Shifted gap times and the real times after the gap, in the order they happen.
                "cron(0,30 2-3 * * ? *)",
                "Europe/Berlin",
                "2026-03-29T00:00:00Z",
                "2026-03-30T00:00:00Z",
                &[
                    "03-29 01:00 (03-29 03:00 CEST)",
                    "03-29 01:30 (03-29 03:30 CEST)",
                    "03-30 00:00 (03-30 02:00 CEST)",
                ],
            ),
        ];
        for (expr, zone, after, until, want) in cases {
            assert_eq!(firings(expr, zone, after, until), want, "{expr} in {zone} after {after}");
        }
        // A zone without daylight saving time, and UTC as the default.
        assert_eq!(
            firings("cron(0 8 * * ? *)", "Asia/Tokyo", "2026-12-04T00:00:00Z", "2026-12-05T00:00:00Z"),
            ["12-04 23:00 (12-05 08:00 JST)"]
        );
        assert_eq!(
            firings("cron(0 8 * * ? *)", "UTC", "2026-12-04T00:00:00Z", "2026-12-05T00:00:00Z"),
            ["12-04 08:00 (12-04 08:00 UTC)"]
        );
        // A rate is a fixed duration: 24 hours across the change.
        assert_eq!(
            firings("rate(1 day)", "Europe/Berlin", "2026-03-28T01:30:00Z", "2026-03-30T02:00:00Z"),
            ["03-29 01:30 (03-29 03:30 CEST)", "03-30 01:30 (03-30 03:30 CEST)"]
        );
    }

    #[test]
    fn time_zones_are_iana_names_from_the_compiled_in_database() {
        for name in
            ["UTC", "Etc/UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe"]
        {
            assert_eq!(parse_zone(name).unwrap().name(), name);
        }
        for bad in ["Mars/Olympus_Mons", "CEST+1", "europe/berlin ", ""] {
            let e = parse_zone(bad).expect_err(bad).to_string();
            assert!(e.contains("not a time zone of the IANA tz database"), "{bad}: {e}");
        }
    }

    #[test]
    fn invalid_expressions_say_which_field_and_why() {
        for (expr, says) in [
            ("every day", "neither rate(...) nor cron(...)"),
            ("rate(1 days)", "write rate(1 day)"),
            ("rate(5 minute)", "write rate(5 minutes)"),
            ("rate(0 minutes)", "not a positive whole number"),
            ("rate(5 weeks)", "unit \"weeks\""),
            ("cron(0 8 * * *)", "5 fields"),
            ("cron(0 8 * * * *)", "one of them must be ?"),
            ("cron(0 8 ? * ? *)", "only one of them may be ?"),
            ("cron(60 8 * * ? *)", "minutes: 60 is outside 0-59"),
            ("cron(0 24 * * ? *)", "hours: 24 is outside 0-23"),
            ("cron(0 8 32 * ? *)", "day-of-month: 32 is outside 1-31"),
            ("cron(0 8 * FOO ? *)", "month: \"FOO\" is not a value"),
            ("cron(0 8 ? * 8 *)", "day-of-week: 8 is outside 1-7"),
            ("cron(0 8 ? * 2#6 *)", "day-of-week: 6 is outside 1-5"),
            ("cron(0/0 8 * * ? *)", "minutes: \"0\" is not a positive increment"),
            ("cron(50-10 8 * * ? *)", "minutes: range \"50-10\" runs backwards"),
            ("cron(0 8 * * ? 1900)", "year: 1900 is outside 1970-2199"),
        ] {
            let e = expr.parse::<Schedule>().expect_err(expr).to_string();
            assert!(e.contains(says), "{expr}: {e:?} lacks {says:?}");
        }
    }

    #[test]
    fn expressions_print_as_written() {
        for expr in ["rate(1 day)", "rate(15 minutes)", "rate(2 hours)", "cron(0 8 * * ? *)"] {
            assert_eq!(expr.parse::<Schedule>().unwrap().to_string(), expr);
        }
    }
}
