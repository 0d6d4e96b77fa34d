//! When a scheduled task runs next: `cron`, `maxFrequencyDays`/`maxFrequencyHours` and
//! the clock they are read on, as pure functions of (schedule, last run, now). This
//! module never reads the clock, never sleeps and never queues anything; the scheduler
//! asks [`Compiled::next_run`] and acts on the answer. A schedule is parsed once, by
//! [`compile`], when the config is loaded. It does not parse cron text itself.
//!
//! # Rules
//!
//! Times are Unix milliseconds. `last_run` is when the task last ran on schedule (the
//! caller's choice of start or end); a `last_run` later than `now` (the clock went back)
//! counts as `now`, so no answer lies more than one period or cron interval ahead. An answer `<= now` means "due now": the caller runs the task once,
//! records the run, and asks again. An answer is always one time, never a series, so a
//! machine that was off for a week runs a missed task once, not seven times.
//!
//! - **disabled**, or **no option set**: never (`None`).
//! - **maxFrequencyDays N / maxFrequencyHours N**: a period of N×24 h / N h of elapsed
//!   time (a day across a DST change is still 24 h). Never run: due now. Otherwise
//!   `last_run + period`, returned as is when it is already past (due now, once). The
//!   clock does not matter: DEFAULT, LOCAL, UTC and LAST_RUN_TIME all count from the
//!   last run.
//! - **cron**, clock DEFAULT or LOCAL (read in the `local` time zone) or UTC (read in
//!   UTC): if a cron time `<= now` is later than `last_run`, a run was missed (footrest
//!   was down, the machine slept): the latest such time is returned (due now), so one
//!   catch-up run, not one per missed time. Otherwise the first cron time strictly
//!   after `now`. Never run: no catch-up, the first cron time strictly after `now`.
//! - **cron**, clock LAST_RUN_TIME: the first cron time (in `local`) strictly after
//!   `last_run`, or after `now` if never run. A past answer is due now, once.
//!
//! A never-run cron schedule has nothing to count from, so its answer moves with `now`:
//! a caller that waits for the answer must run the task when the wait ends, not ask
//! again (asking at 03:00:00.004 for a 03:00 schedule gives tomorrow).
//!
//! # Cron syntax
//!
//! Parsed and checked by [`crate::config::cron`], the one parser config validation uses
//! too (so a config that loads only holds cron expressions this module can run); this
//! module only turns the parsed fields into croner's form and evaluates them.
//!
//! # Daylight saving time (croner's rules, pinned by the tests below)
//!
//! - A schedule naming one minute and one hour (`30 2 * * *`) whose time does not exist
//!   on the day the clock springs forward runs once, at the first instant after the gap
//!   (03:00 in New York and Berlin). Schedules naming several times (`0 * * * *`,
//!   `0,30 2 * * *`) skip the times that do not exist, as an hourly job has no 02:00.
//! - On the day the clock falls back, a schedule naming one minute and one hour
//!   (`30 1 * * *` in New York) runs once, at the first of the two 01:30s; schedules naming several times
//!   run at both (`0 * * * *` runs an hour apart through the repeated hour).

use std::fmt;

use croner::parser::{CronParser, Seconds, Year};
use croner::{CivilDate, CivilDateTime, CivilTime, Cron, CronDateTime, Resolution, Weekday};
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::{SignedDuration, Timestamp, ZonedDateTime};

use crate::config::cron::{self, Values};
use crate::config::{Clock, Schedule};

const HOUR_MS: i64 = 3_600_000;

/// Why a schedule cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScheduleError {
    /// The cron expression and what is wrong with it.
    Cron { expr: String, why: String },
    /// More than one of disabled, cron, maxFrequencyDays, maxFrequencyHours is set.
    Conflict(Vec<&'static str>),
    /// maxFrequencyDays or maxFrequencyHours below 1.
    Frequency { field: &'static str, value: i32 },
}

impl fmt::Display for ScheduleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScheduleError::Cron { expr, why } => write!(f, "cron {expr:?}: {why}"),
            ScheduleError::Conflict(set) => write!(
                f,
                "the schedule sets {}; keep one of disabled, cron, maxFrequencyDays or \
                 maxFrequencyHours",
                set.join(" and ")
            ),
            ScheduleError::Frequency { field, value } => {
                write!(f, "{field} is {value}; it must be at least 1")
            }
        }
    }
}

impl std::error::Error for ScheduleError {}

/// A schedule ready to answer "when next", built once per config load.
#[derive(Clone, Debug)]
pub struct Compiled {
    rule: Rule,
}

#[derive(Clone, Debug)]
enum Rule {
    Never,
    Every { period_ms: i64 },
    Cron { cron: Box<Cron>, clock: Clock },
}

/// Parses and checks `schedule`.
pub fn compile(schedule: &Schedule) -> Result<Compiled, ScheduleError> {
    let set: Vec<&'static str> = [
        (schedule.disabled, "disabled"),
        (schedule.cron.is_some(), "cron"),
        (schedule.max_frequency_days.is_some(), "maxFrequencyDays"),
        (schedule.max_frequency_hours.is_some(), "maxFrequencyHours"),
    ]
    .into_iter()
    .filter_map(|(on, name)| on.then_some(name))
    .collect();
    if set.len() > 1 {
        return Err(ScheduleError::Conflict(set));
    }
    let every = |field: &'static str, value: i32, unit_ms: i64| {
        if value < 1 {
            return Err(ScheduleError::Frequency { field, value });
        }
        Ok(Rule::Every {
            period_ms: i64::from(value) * unit_ms,
        })
    };
    let rule = if let Some(expr) = &schedule.cron {
        Rule::Cron {
            cron: Box::new(parse_cron(expr)?),
            clock: schedule.clock,
        }
    } else if let Some(days) = schedule.max_frequency_days {
        every("maxFrequencyDays", days, 24 * HOUR_MS)?
    } else if let Some(hours) = schedule.max_frequency_hours {
        every("maxFrequencyHours", hours, HOUR_MS)?
    } else {
        Rule::Never
    };
    Ok(Compiled { rule })
}

impl Compiled {
    /// When the task should next run, in Unix ms; `None` = never (disabled or unset; or
    /// a cron with no time left before the year 5000, or `now` outside years 1-9999). A result `<= now_ms` means "due
    /// now" (a catch-up run); the caller runs it once. See the module doc for the rules.
    pub fn next_run(&self, last_run_ms: Option<i64>, now_ms: i64, local: &TimeZone) -> Option<i64> {
        // A last run in the future means the clock went back: count it as now.
        let last = last_run_ms.map(|t| t.min(now_ms));
        match &self.rule {
            Rule::Never => None,
            Rule::Every { period_ms } => {
                Some(last.map_or(now_ms, |t| t.saturating_add(*period_ms)))
            }
            Rule::Cron { cron, clock } => {
                let tz = match clock {
                    Clock::Utc => TimeZone::UTC,
                    Clock::Default | Clock::Local | Clock::LastRunTime => local.clone(),
                };
                if *clock == Clock::LastRunTime {
                    return cron_time(cron, last.unwrap_or(now_ms), &tz, false);
                }
                if let Some(last) = last
                    && let Some(missed) = cron_time(cron, now_ms, &tz, true)
                    && missed > last
                {
                    return Some(missed);
                }
                cron_time(cron, now_ms, &tz, false)
            }
        }
    }

    /// True when the schedule never runs the task on its own (disabled or unset).
    pub fn is_disabled(&self) -> bool {
        matches!(self.rule, Rule::Never)
    }
}

/// The latest cron time `<= at_ms` (`back`), or the first one `> at_ms`.
fn cron_time(cron: &Cron, at_ms: i64, tz: &TimeZone, back: bool) -> Option<i64> {
    let at = Wall(
        Timestamp::from_millisecond(at_ms)
            .ok()?
            .to_zoned_datetime(tz.clone()),
    );
    let found = if back {
        cron.find_previous_occurrence(&at, true)
    } else {
        cron.find_next_occurrence(&at, false)
    };
    found.ok().map(|w| w.0.timestamp().as_millisecond())
}

/// jiff 1's zoned time as croner's search type (croner's own `jiff` feature is for jiff
/// 0.2). Mirrors croner's impl for `jiff::Zoned`.
#[derive(Clone)]
struct Wall(ZonedDateTime);

impl CronDateTime for Wall {
    fn to_civil(&self) -> CivilDateTime {
        let d = self.0.datetime();
        CivilDateTime::new(
            CivilDate::from_parts_unchecked(i32::from(d.year()), d.month() as u32, d.day() as u32),
            CivilTime::from_parts_unchecked(d.hour() as u32, d.minute() as u32, d.second() as u32),
        )
    }

    fn civil_weekday(&self) -> Weekday {
        Weekday::from_days_from_sunday(self.0.weekday().to_sunday_zero_offset() as u32)
    }

    fn resolve_civil(
        &self,
        c: CivilDateTime,
    ) -> Result<Resolution<Self>, croner::errors::CronError> {
        use croner::errors::CronError::{InvalidDate, InvalidTime};
        let year = i16::try_from(c.year()).map_err(|_| InvalidDate)?;
        let (mo, d, h, mi, s) = (c.month(), c.day(), c.hour(), c.minute(), c.second());
        let dt = jiff::civil::DateTime::new(year, mo as i8, d as i8, h as i8, mi as i8, s as i8, 0)
            .map_err(|_| InvalidDate)?;
        let amb = self.0.time_zone().to_ambiguous_zoned_datetime(dt);
        Ok(match amb.offset() {
            AmbiguousOffset::Unambiguous { .. } => {
                Resolution::Single(Wall(amb.unambiguous().map_err(|_| InvalidTime)?))
            }
            AmbiguousOffset::Fold { .. } => Resolution::Ambiguous(
                Wall(amb.clone().earlier().map_err(|_| InvalidTime)?),
                Wall(amb.later().map_err(|_| InvalidTime)?),
            ),
            AmbiguousOffset::Gap { .. } => Resolution::Gap,
        })
    }

    fn checked_add_seconds(&self, seconds: i64) -> Option<Self> {
        self.0
            .checked_add(SignedDuration::from_secs(seconds))
            .ok()
            .map(Wall)
    }

    fn cmp_instant(&self, other: &Self) -> std::cmp::Ordering {
        self.0.timestamp().cmp(&other.0.timestamp())
    }
}

/// `expr` parsed by config's cron parser, as a croner schedule.
fn parse_cron(expr: &str) -> Result<Cron, ScheduleError> {
    let fail = |why: String| ScheduleError::Cron {
        expr: expr.to_string(),
        why,
    };
    let f = cron::parse(expr).map_err(|e| fail(e.to_string()))?;
    // croner gets plain numbers only, so its extensions and its parsing of names and
    // steps never come into play; `+` asks it for AND on the day fields.
    let list = |v: Values| {
        if v.is_star() {
            return "*".to_string();
        }
        let values: Vec<String> = v.iter().map(|n| n.to_string()).collect();
        values.join(",")
    };
    let and = if f.days_must_both_match && !f.day_of_month.is_star() && !f.day_of_week.is_star() {
        "+"
    } else {
        ""
    };
    let plain = format!(
        "{} {} {} {} {and}{}",
        list(f.minute),
        list(f.hour),
        list(f.day_of_month),
        list(f.month),
        list(f.day_of_week)
    );
    CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .build()
        .parse(&plain)
        .map_err(|e| fail(format!("the cron library rejected it as {plain:?}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 24 * HOUR_MS;

    fn tz(name: &str) -> TimeZone {
        TimeZone::get(name).unwrap()
    }

    /// Unix ms of an RFC 3339 time with its offset, e.g. "2026-03-08T01:30:00-05:00".
    fn at(rfc3339: &str) -> i64 {
        rfc3339.parse::<Timestamp>().unwrap().as_millisecond()
    }

    /// `ms` as local time with its offset, the inverse of `at`.
    fn show(ms: i64, tz: &TimeZone) -> String {
        let t = Timestamp::from_millisecond(ms).unwrap();
        t.to_zoned_datetime(tz.clone())
            .strftime("%Y-%m-%dT%H:%M:%S%:z")
            .to_string()
    }

    fn cron(expr: &str, clock: Clock) -> Compiled {
        compile(&Schedule {
            cron: Some(expr.into()),
            clock,
            ..Schedule::default()
        })
        .unwrap()
    }

    fn next(c: &Compiled, last: Option<&str>, now: &str, tz: &TimeZone) -> String {
        show(c.next_run(last.map(at), at(now), tz).unwrap(), tz)
    }

    /// The first `n` run times of a caller that asks, waits (by moving `now`) until the
    /// answer, runs the task and records it, starting at `now`.
    fn runs(c: &Compiled, last: Option<&str>, now: &str, n: usize, tz: &TimeZone) -> Vec<String> {
        let (mut last, mut now) = (last.map(at), at(now));
        let mut out = Vec::new();
        while out.len() < n {
            now = now.max(c.next_run(last, now, tz).unwrap());
            last = Some(now);
            out.push(show(now, tz));
        }
        out
    }

    fn cron_err(expr: &str) -> String {
        compile(&Schedule {
            cron: Some(expr.into()),
            ..Schedule::default()
        })
        .unwrap_err()
        .to_string()
    }

    #[test]
    fn disabled_and_unset_never_run() {
        let utc = TimeZone::UTC;
        for s in [
            Schedule::default(),
            Schedule {
                disabled: true,
                ..Schedule::default()
            },
        ] {
            let c = compile(&s).unwrap();
            assert!(c.is_disabled());
            assert_eq!(c.next_run(None, 1_000, &utc), None);
            assert_eq!(c.next_run(Some(0), 1_000, &utc), None);
        }
        assert!(!cron("0 3 * * *", Clock::Default).is_disabled());
    }

    #[test]
    fn frequencies_count_elapsed_time_from_the_last_run() {
        let utc = TimeZone::UTC;
        let days = |n| Schedule {
            max_frequency_days: Some(n),
            ..Schedule::default()
        };
        let hours = |n| Schedule {
            max_frequency_hours: Some(n),
            ..Schedule::default()
        };
        let now = at("2026-06-10T12:00:00Z");
        for clock in [Clock::Default, Clock::Local, Clock::Utc, Clock::LastRunTime] {
            let c = compile(&Schedule { clock, ..days(2) }).unwrap();
            // Never run: due now.
            assert_eq!(c.next_run(None, now, &utc), Some(now));
            // Ran an hour ago: two days after that run.
            assert_eq!(
                c.next_run(Some(now - HOUR_MS), now, &utc),
                Some(now + 2 * DAY - HOUR_MS)
            );
            // Last ran ten days ago: one time, already past, so due now once.
            assert_eq!(
                c.next_run(Some(now - 10 * DAY), now, &utc),
                Some(now - 8 * DAY)
            );
            let c = compile(&Schedule { clock, ..hours(6) }).unwrap();
            assert_eq!(
                c.next_run(Some(now - HOUR_MS), now, &utc),
                Some(now + 5 * HOUR_MS)
            );
        }
        // After the catch-up run, the next is a full period later.
        let c = compile(&days(1)).unwrap();
        assert_eq!(c.next_run(Some(now), now, &utc), Some(now + DAY));
    }

    #[test]
    fn max_frequency_hours_24_is_24_hours_across_dst() {
        let ny = tz("America/New_York");
        let c = compile(&Schedule {
            max_frequency_hours: Some(24),
            ..Schedule::default()
        })
        .unwrap();
        let last = "2026-03-07T12:00:00-05:00";
        assert_eq!(next(&c, Some(last), last, &ny), "2026-03-08T13:00:00-04:00");
        let last = "2026-10-31T12:00:00-04:00";
        assert_eq!(next(&c, Some(last), last, &ny), "2026-11-01T11:00:00-05:00");
    }

    #[test]
    fn invalid_schedules_are_named() {
        let e = compile(&Schedule {
            cron: Some("0 3 * * *".into()),
            max_frequency_days: Some(1),
            ..Schedule::default()
        })
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "the schedule sets cron and maxFrequencyDays; keep one of disabled, cron, \
             maxFrequencyDays or maxFrequencyHours"
        );
        let e = compile(&Schedule {
            max_frequency_hours: Some(0),
            ..Schedule::default()
        })
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "maxFrequencyHours is 0; it must be at least 1"
        );
        let e = compile(&Schedule {
            cron: Some("61 * * * *".into()),
            ..Schedule::default()
        })
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "cron \"61 * * * *\": minute 61 is out of range 0-59"
        );
    }

    #[test]
    fn cron_errors_are_the_config_parsers_named_with_the_expression() {
        for (expr, why) in [
            (
                "0 4 * *",
                "has 4 fields; a cron expression has 5 (no seconds, no year): minute hour \
                 day-of-month month day-of-week, e.g. \"30 2 * * *\"",
            ),
            ("* * 0 * *", "day-of-month 0 is out of range 1-31"),
            (
                "* * * jnu *",
                "month \"jnu\" is not a number or a name (JAN-DEC)",
            ),
            (
                "0 0 30 2 *",
                "never runs: none of the months it names has that day of the month",
            ),
            (
                "0 0 31 4,6,9,11 *",
                "never runs: none of the months it names has that day of the month",
            ),
            (
                "@reboot",
                "@reboot is not supported; footrest schedules by time, e.g. \"@daily\" or \
                 \"30 2 * * *\"",
            ),
        ] {
            assert_eq!(cron_err(expr), format!("cron {expr:?}: {why}"), "{expr}");
            assert_eq!(cron::parse(expr).unwrap_err().to_string(), why, "{expr}");
        }
    }

    #[test]
    fn everything_the_config_parser_accepts_compiles() {
        // Each value of each field alone, every value as a list, and the forms that
        // reach croner differently (`*`, AND and OR of the day fields, shortcuts).
        let mut exprs = Vec::new();
        for (i, max) in [59, 23, 31, 12, 7].into_iter().enumerate() {
            let min = if i == 2 || i == 3 { 1 } else { 0 };
            let at = |v: String| {
                let mut f = vec!["*".to_string(); 5];
                f[i] = v;
                f.join(" ")
            };
            exprs.extend((min..=max).map(|v: u32| at(v.to_string())));
            let all: Vec<String> = (min..=max).map(|v| v.to_string()).collect();
            exprs.push(at(all.join(",")));
        }
        for expr in [
            "0 0 30 2 1",
            "0 0 29 2 *",
            "0 0 */2 * 1",
            "0 0 13 * 5",
            "0 0 1 * */1",
            "0 0 * * MON-SUN",
            "10-50/20 8-18/2 1-31/7 jan-dec/3 *",
            "@yearly",
            "@annually",
            "@monthly",
            "@weekly",
            "@daily",
            "@midnight",
            "@hourly",
        ] {
            exprs.push(expr.to_string());
        }
        for expr in &exprs {
            assert!(cron::parse(expr).is_ok(), "{expr}");
            let c = compile(&Schedule {
                cron: Some(expr.clone()),
                ..Schedule::default()
            });
            let c = c.unwrap_or_else(|e| panic!("{expr}: {e}"));
            assert!(
                c.next_run(None, 0, &TimeZone::UTC).is_some(),
                "{expr} never runs"
            );
        }
    }

    #[test]
    fn cron_fields_lists_ranges_steps_names() {
        let utc = TimeZone::UTC;
        let seq =
            |expr: &str, now: &str, n: usize| runs(&cron(expr, Clock::Utc), None, now, n, &utc);
        assert_eq!(
            seq("*/15 * * * *", "2026-06-10T10:07:00Z", 3),
            [
                "2026-06-10T10:15:00+00:00",
                "2026-06-10T10:30:00+00:00",
                "2026-06-10T10:45:00+00:00"
            ]
        );
        assert_eq!(
            seq("10-50/20 * * * *", "2026-06-10T10:00:00Z", 4),
            [
                "2026-06-10T10:10:00+00:00",
                "2026-06-10T10:30:00+00:00",
                "2026-06-10T10:50:00+00:00",
                "2026-06-10T11:10:00+00:00"
            ]
        );
        assert_eq!(
            seq("45/5 * * * *", "2026-06-10T10:00:00Z", 4)[3],
            "2026-06-10T11:45:00+00:00"
        );
        // 2026-06-05 is a Friday.
        for expr in ["0 0 * * 1-5", "0 0 * * MON-FRI", "0 0 * * mon-fri"] {
            assert_eq!(
                seq(expr, "2026-06-05T12:00:00Z", 2),
                ["2026-06-08T00:00:00+00:00", "2026-06-09T00:00:00+00:00"],
                "{expr}"
            );
        }
        // Sunday is 0, 7 or SUN; SUN ends a range as 7.
        for expr in ["0 0 * * 7", "0 0 * * 0", "0 0 * * sun", "@weekly"] {
            assert_eq!(
                seq(expr, "2026-06-03T00:00:00Z", 1),
                ["2026-06-07T00:00:00+00:00"]
            );
        }
        assert_eq!(
            seq("0 0 * * SAT-SUN", "2026-06-03T00:00:00Z", 2),
            ["2026-06-06T00:00:00+00:00", "2026-06-07T00:00:00+00:00"]
        );
        assert_eq!(
            seq("0 0 1 jan,JUL *", "2026-02-01T00:00:00Z", 2),
            ["2026-07-01T00:00:00+00:00", "2027-01-01T00:00:00+00:00"]
        );
        // 29 February, from a year that has none, skipping 2100 (not a leap year).
        assert_eq!(
            seq("0 0 29 2 *", "2026-03-01T00:00:00Z", 1),
            ["2028-02-29T00:00:00+00:00"]
        );
        assert_eq!(
            seq("0 0 29 2 *", "2097-01-01T00:00:00Z", 1),
            ["2104-02-29T00:00:00+00:00"]
        );
        assert_eq!(
            seq("@daily", "2026-06-03T10:00:00Z", 1),
            ["2026-06-04T00:00:00+00:00"]
        );
        assert_eq!(
            seq("@hourly", "2026-06-03T10:00:00Z", 1),
            ["2026-06-03T11:00:00+00:00"]
        );
        assert_eq!(
            seq("@MONTHLY", "2026-06-03T10:00:00Z", 1),
            ["2026-07-01T00:00:00+00:00"]
        );
        assert_eq!(
            seq("@annually", "2026-06-03T10:00:00Z", 1),
            ["2027-01-01T00:00:00+00:00"]
        );
    }

    #[test]
    fn both_day_fields_follow_vixie_cron() {
        let utc = TimeZone::UTC;
        let seq =
            |expr: &str, now: &str, n: usize| runs(&cron(expr, Clock::Utc), None, now, n, &utc);
        // Both restricted: the 13th or any Friday (2026-06-13 is a Saturday).
        assert_eq!(
            seq("0 0 13 * 5", "2026-06-01T12:00:00Z", 4),
            [
                "2026-06-05T00:00:00+00:00",
                "2026-06-12T00:00:00+00:00",
                "2026-06-13T00:00:00+00:00",
                "2026-06-19T00:00:00+00:00"
            ]
        );
        // Day-of-month starts with `*`: both must match, Mondays on odd days.
        assert_eq!(
            seq("0 0 */2 * 1", "2026-05-31T12:00:00Z", 3),
            [
                "2026-06-01T00:00:00+00:00",
                "2026-06-15T00:00:00+00:00",
                "2026-06-29T00:00:00+00:00"
            ]
        );
        // A `*` day of the month with a weekday is just the weekday.
        assert_eq!(
            seq("0 0 * * 1", "2026-06-02T00:00:00Z", 1),
            ["2026-06-08T00:00:00+00:00"]
        );
    }

    #[test]
    fn utc_and_local_clocks() {
        let ny = tz("America/New_York");
        let now = "2026-06-01T00:00:00Z";
        assert_eq!(
            next(&cron("0 3 * * *", Clock::Utc), None, now, &ny),
            "2026-05-31T23:00:00-04:00"
        );
        for clock in [Clock::Default, Clock::Local] {
            assert_eq!(
                next(&cron("0 3 * * *", clock), None, now, &ny),
                "2026-06-01T03:00:00-04:00"
            );
        }
    }

    #[test]
    fn a_missed_cron_time_is_caught_up_once() {
        let ny = tz("America/New_York");
        let c = cron("0 3 * * *", Clock::Default);
        let now = "2026-06-10T12:00:00-04:00";
        // Last ran three days ago: the latest missed time (today 03:00), due now.
        let last = "2026-06-07T03:00:00-04:00";
        assert_eq!(next(&c, Some(last), now, &ny), "2026-06-10T03:00:00-04:00");
        // After that run, tomorrow.
        assert_eq!(next(&c, Some(now), now, &ny), "2026-06-11T03:00:00-04:00");
        assert_eq!(
            runs(&c, Some(last), now, 2, &ny),
            ["2026-06-10T12:00:00-04:00", "2026-06-11T03:00:00-04:00"]
        );
        // Never run: no catch-up.
        assert_eq!(next(&c, None, now, &ny), "2026-06-11T03:00:00-04:00");
        // Ran after today's time: nothing missed.
        assert_eq!(
            next(&c, Some("2026-06-10T03:00:01-04:00"), now, &ny),
            "2026-06-11T03:00:00-04:00"
        );
    }

    #[test]
    fn now_exactly_on_a_cron_time() {
        let ny = tz("America/New_York");
        let c = cron("0 3 * * *", Clock::Default);
        let now = "2026-06-10T03:00:00-04:00";
        // Waiting since yesterday's run: the time has come, due now.
        assert_eq!(next(&c, Some("2026-06-09T03:00:05-04:00"), now, &ny), now);
        // Just ran at that instant: tomorrow.
        assert_eq!(next(&c, Some(now), now, &ny), "2026-06-11T03:00:00-04:00");
        // Never run: strictly after now.
        assert_eq!(next(&c, None, now, &ny), "2026-06-11T03:00:00-04:00");
        // A millisecond before: still today.
        let before = at(now) - 1;
        assert_eq!(c.next_run(None, before, &ny), Some(at(now)));
    }

    #[test]
    fn last_run_time_clock_counts_from_the_last_run() {
        let ny = tz("America/New_York");
        let c = cron("0 3 * * *", Clock::LastRunTime);
        let now = "2026-06-05T12:00:00-04:00";
        // The first time after the last run, long past: due now, once.
        assert_eq!(
            next(&c, Some("2026-06-01T10:00:00-04:00"), now, &ny),
            "2026-06-02T03:00:00-04:00"
        );
        assert_eq!(next(&c, Some(now), now, &ny), "2026-06-06T03:00:00-04:00");
        assert_eq!(next(&c, None, now, &ny), "2026-06-06T03:00:00-04:00");
        assert_eq!(
            next(&c, Some("2026-06-05T02:00:00-04:00"), now, &ny),
            "2026-06-05T03:00:00-04:00"
        );
    }

    #[test]
    fn a_clock_that_went_back_gives_a_sane_answer() {
        let ny = tz("America/New_York");
        let now = "2026-06-05T12:00:00-04:00";
        let future = Some("2027-06-10T03:00:00-04:00");
        for clock in [Clock::Default, Clock::LastRunTime] {
            let c = cron("0 3 * * *", clock);
            assert_eq!(next(&c, future, now, &ny), "2026-06-06T03:00:00-04:00");
        }
        let c = compile(&Schedule {
            max_frequency_days: Some(1),
            ..Schedule::default()
        })
        .unwrap();
        // A last run a year ahead counts as now: one period from now, not a year away.
        assert_eq!(next(&c, future, now, &ny), "2026-06-06T12:00:00-04:00");
        // Just ahead (the clock went back 10 minutes): a period from now.
        let c_last = Some("2026-06-05T12:10:00-04:00");
        assert_eq!(next(&c, c_last, now, &ny), "2026-06-06T12:00:00-04:00");
    }

    #[test]
    fn spring_forward_runs_a_missing_time_once_at_the_end_of_the_gap() {
        for (zone, days) in [
            (
                "America/New_York",
                [
                    "2026-03-07T02:30:00-05:00",
                    "2026-03-08T03:00:00-04:00",
                    "2026-03-09T02:30:00-04:00",
                ],
            ),
            (
                "Europe/Berlin",
                [
                    "2026-03-28T02:30:00+01:00",
                    "2026-03-29T03:00:00+02:00",
                    "2026-03-30T02:30:00+02:00",
                ],
            ),
        ] {
            let local = tz(zone);
            let c = cron("30 2 * * *", Clock::Default);
            let start = days[0].replace("02:30", "00:00");
            assert_eq!(runs(&c, None, &start, 3, &local), days, "{zone}");
            // Waiting since the day before, woken just after the gap: due, once.
            let woke = days[1].replace("03:00:00", "03:00:01");
            assert_eq!(next(&c, Some(days[0]), &woke, &local), days[1], "{zone}");
            assert_eq!(next(&c, Some(&woke), &woke, &local), days[2], "{zone}");
        }
        // Several times a day: the ones that do not exist are skipped (croner's rule for
        // anything but one minute of one hour), so this day has no run.
        let ny = tz("America/New_York");
        let c = cron("0,30 2 * * *", Clock::Default);
        assert_eq!(
            runs(&c, None, "2026-03-08T00:00:00-05:00", 1, &ny),
            ["2026-03-09T02:00:00-04:00"]
        );
    }

    #[test]
    fn fall_back_runs_a_repeated_time_once() {
        for (zone, expr, days) in [
            (
                "America/New_York",
                "30 1 * * *",
                [
                    "2026-10-31T01:30:00-04:00",
                    "2026-11-01T01:30:00-04:00",
                    "2026-11-02T01:30:00-05:00",
                ],
            ),
            (
                "Europe/Berlin",
                "30 2 * * *",
                [
                    "2026-10-24T02:30:00+02:00",
                    "2026-10-25T02:30:00+02:00",
                    "2026-10-26T02:30:00+01:00",
                ],
            ),
        ] {
            let local = tz(zone);
            let c = cron(expr, Clock::Default);
            let start = days[0].replace(":30:00", ":00:00");
            assert_eq!(runs(&c, None, &start, 3, &local), days, "{zone}");
            // Asked during the second pass through the hour, after the first run.
            let second = show(at(days[1]) + HOUR_MS + 60_000, &local);
            assert_eq!(next(&c, Some(days[1]), &second, &local), days[2], "{zone}");
            // Off through the first pass, back in the second: the missed run, once.
            let missed = next(&c, Some(days[0]), &second, &local);
            assert_eq!(missed, days[1], "{zone}");
        }
    }

    #[test]
    fn hourly_across_both_transitions() {
        let ny = tz("America/New_York");
        let c = cron("0 * * * *", Clock::Default);
        let spring = runs(&c, None, "2026-03-08T00:30:00-05:00", 4, &ny);
        assert_eq!(
            spring,
            [
                "2026-03-08T01:00:00-05:00",
                "2026-03-08T03:00:00-04:00",
                "2026-03-08T04:00:00-04:00",
                "2026-03-08T05:00:00-04:00"
            ]
        );
        let fall = runs(&c, None, "2026-11-01T00:30:00-04:00", 4, &ny);
        assert_eq!(
            fall,
            [
                "2026-11-01T01:00:00-04:00",
                "2026-11-01T01:00:00-05:00",
                "2026-11-01T02:00:00-05:00",
                "2026-11-01T03:00:00-05:00"
            ]
        );
        // An hour of elapsed time between every run, around both changes.
        for (start, n) in [
            ("2026-03-07T20:30:00-05:00", 12),
            ("2026-10-31T20:30:00-04:00", 12),
        ] {
            let times: Vec<i64> = runs(&c, None, start, n, &ny)
                .iter()
                .map(|s| at(s))
                .collect();
            assert!(
                times.windows(2).all(|w| w[1] - w[0] == HOUR_MS),
                "{times:?}"
            );
        }
        let berlin = tz("Europe/Berlin");
        assert_eq!(
            runs(&c, None, "2026-10-25T01:30:00+02:00", 3, &berlin),
            [
                "2026-10-25T02:00:00+02:00",
                "2026-10-25T02:00:00+01:00",
                "2026-10-25T03:00:00+01:00"
            ]
        );
    }
}
