//! footrest's one parser of cron expressions: it turns a 5-field expression (or one of
//! the `@` shortcuts) into the set of values each field names, or says in human terms
//! what is wrong. Config validation calls it so a config that loads is one the
//! scheduler can run; the orchestrator's schedule code calls it and only evaluates the
//! result (time zones, DST, catch-up). It computes no times and reads no clock.
//!
//! # Syntax
//!
//! Five fields, minute (0-59) hour (0-23) day-of-month (1-31) month (1-12 or JAN-DEC)
//! day-of-week (0-7 or SUN-SAT, 0 and 7 both Sunday), as in Vixie cron: `*`, values,
//! ranges `a-b`, steps `*/n`, `a-b/n` and `a/n` (from `a` to the field's end), lists
//! `a,b`, names in any case. `@yearly`/`@annually`, `@monthly`, `@weekly`,
//! `@daily`/`@midnight`, `@hourly` stand for their usual five fields. Rejected: seconds
//! or year fields (6 or 7 fields), `@reboot`, Quartz's `?`, `L`, `W`, `#`, and a day of
//! the month that exists in none of the months named (`0 0 30 2 *`), which never runs.
//!
//! When both day fields are restricted a day matches if either does (`0 0 13 * 5` is
//! the 13th and every Friday); when either field starts with `*` both must match
//! (`0 0 */2 * 1`: Mondays that are odd days of the month), as Vixie cron does.

use std::fmt;

/// A checked cron expression: the values each field names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CronFields {
    pub minute: Values,
    pub hour: Values,
    pub day_of_month: Values,
    pub month: Values,
    /// Sunday is 0 only: a 7 (or `SUN` ending a range) is folded into 0.
    pub day_of_week: Values,
    /// A day must match both day fields (either starts with `*`); otherwise either.
    pub days_must_both_match: bool,
}

/// The values one field names, and whether it was written as a bare `*`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Values {
    bits: u64,
    star: bool,
}

impl Values {
    /// Whether the field names `v`.
    pub fn contains(self, v: u32) -> bool {
        v < 64 && self.bits & 1 << v != 0
    }

    /// The values named, smallest first.
    pub fn iter(self) -> impl Iterator<Item = u32> {
        (0..64).filter(move |&v| self.contains(v))
    }

    /// True when the field was written as `*` alone (not `*/n`, not a full list).
    pub fn is_star(self) -> bool {
        self.star
    }
}

/// What is wrong with a cron expression. The message does not repeat the expression:
/// it completes `<expression>: `, e.g. `minute 61 is out of range 0-59`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CronError(String);

impl fmt::Display for CronError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CronError {}

/// One cron field: its name, its range, and the value `*` and `a/n` run up to.
struct Field {
    name: &'static str,
    min: u32,
    max: u32,
    top: u32,
    names: &'static [&'static str],
}

const MONTHS: &[&str] = &[
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const DAYS: &[&str] = &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

const FIELDS: [Field; 5] = [
    field("minute", 0, 59, 59, &[]),
    field("hour", 0, 23, 23, &[]),
    field("day-of-month", 1, 31, 31, &[]),
    field("month", 1, 12, 12, MONTHS),
    field("day-of-week", 0, 7, 6, DAYS),
];

const fn field(
    name: &'static str,
    min: u32,
    max: u32,
    top: u32,
    names: &'static [&'static str],
) -> Field {
    Field {
        name,
        min,
        max,
        top,
        names,
    }
}

/// The longest each month can be (February in a leap year).
const MONTH_DAYS: [u32; 12] = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/// Parses and checks `expr` (surrounding white space allowed).
pub fn parse(expr: &str) -> Result<CronFields, CronError> {
    let text = expr.trim();
    let text = match text.to_ascii_lowercase().as_str() {
        "@yearly" | "@annually" => "0 0 1 1 *",
        "@monthly" => "0 0 1 * *",
        "@weekly" => "0 0 * * 0",
        "@daily" | "@midnight" => "0 0 * * *",
        "@hourly" => "0 * * * *",
        "@reboot" => {
            return Err(CronError(
                "@reboot is not supported; footrest schedules by time, e.g. \"@daily\" or \
                 \"30 2 * * *\""
                    .into(),
            ));
        }
        s if s.starts_with('@') => {
            return Err(CronError(
                "unknown shortcut; the shortcuts are @yearly, @annually, @monthly, @weekly, \
                 @daily, @midnight and @hourly"
                    .into(),
            ));
        }
        _ => text,
    };
    let parts: Vec<&str> = text.split_whitespace().collect();
    if parts.len() != FIELDS.len() {
        return Err(CronError(format!(
            "has {} field{}; a cron expression has 5 (no seconds, no year): minute hour \
             day-of-month month day-of-week, e.g. \"30 2 * * *\"",
            parts.len(),
            if parts.len() == 1 { "" } else { "s" }
        )));
    }
    let mut values = [Values {
        bits: 0,
        star: false,
    }; 5];
    for (i, (part, field)) in parts.iter().zip(&FIELDS).enumerate() {
        values[i] = Values {
            bits: parse_field(part, field).map_err(CronError)?,
            star: *part == "*",
        };
    }
    let [minute, hour, day_of_month, month, mut day_of_week] = values;
    day_of_week.bits = (day_of_week.bits | day_of_week.bits >> 7) & 0x7f; // 7 is Sunday, as 0 is.
    // Vixie cron: a day field starting with `*` makes the two day fields AND, else OR.
    let days_must_both_match = parts[2].starts_with('*') || parts[4].starts_with('*');
    if days_must_both_match
        && !(1..=12).any(|m| month.contains(m) && day_of_month.bits & day_bits(m) != 0)
    {
        return Err(CronError(
            "never runs: none of the months it names has that day of the month".into(),
        ));
    }
    Ok(CronFields {
        minute,
        hour,
        day_of_month,
        month,
        day_of_week,
        days_must_both_match,
    })
}

/// Bits for the days 1..=length of month `m` (1-12).
fn day_bits(m: u32) -> u64 {
    ((1u64 << (MONTH_DAYS[m as usize - 1] + 1)) - 1) & !1
}

/// The set of values a field names, as bits.
fn parse_field(text: &str, field: &Field) -> Result<u64, String> {
    let name = field.name;
    let mut set = 0u64;
    for item in text.split(',') {
        if item.is_empty() {
            return Err(format!("{name} {text:?} has an empty item in its list"));
        }
        let (range, step) = match item.split_once('/') {
            Some((range, step)) => match number(step) {
                Some(n) if n >= 1 => (range, Some(n)),
                _ => {
                    return Err(format!(
                        "{name} step {step:?} must be a number of at least 1"
                    ));
                }
            },
            None => (item, None),
        };
        let (from, to) = if range == "*" {
            (field.min, field.top)
        } else if let Some((a, b)) = range.split_once('-') {
            let (from, to) = (value(a, field, false)?, value(b, field, true)?);
            if from > to {
                return Err(format!("{name} range {range:?} runs backwards"));
            }
            (from, to)
        } else {
            let v = value(range, field, false)?;
            (v, if step.is_some() { field.top.max(v) } else { v })
        };
        for v in (from..=to).step_by(step.unwrap_or(1) as usize) {
            set |= 1 << v;
        }
    }
    Ok(set)
}

/// A number or a name; Sunday ends a range as 7 (`MON-SUN`).
fn value(text: &str, field: &Field, range_end: bool) -> Result<u32, String> {
    if let Some(n) = number(text) {
        if n < field.min || n > field.max {
            return Err(format!(
                "{} {n} is out of range {}-{}",
                field.name, field.min, field.max
            ));
        }
        return Ok(n);
    }
    match field
        .names
        .iter()
        .position(|n| n.eq_ignore_ascii_case(text))
    {
        Some(0) if range_end && field.max == 7 => Ok(7),
        Some(i) => Ok(field.min + i as u32),
        None if field.names.is_empty() => Err(format!("{} {text:?} is not a number", field.name)),
        None => Err(format!(
            "{} {text:?} is not a number or a name ({}-{})",
            field.name,
            field.names[0],
            field.names[field.names.len() - 1]
        )),
    }
}

fn number(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(expr: &str) -> String {
        parse(expr).unwrap_err().to_string()
    }

    fn list(v: Values) -> Vec<u32> {
        v.iter().collect()
    }

    #[test]
    fn accepts_usual_expressions() {
        for expr in [
            "0 4 1 * *",
            "30 1 * * *",
            "*/15 * * * *",
            "0 0-23/2 * * mon-fri",
            "5,35 8-18 1,15 jan,JUL 0",
            "0 3 * * 7",
            "  0   3 * * *  ",
            "0 12 */3 FEB-nov SUN",
            "10/5 * * * *",
            "0 0 29 2 *",
        ] {
            assert!(parse(expr).is_ok(), "{expr}: {:?}", parse(expr));
        }
    }

    #[test]
    fn fields_name_their_values() {
        let f = parse("5,35 8-18/5 1,15 jan,JUL 0").unwrap();
        assert_eq!(list(f.minute), [5, 35]);
        assert_eq!(list(f.hour), [8, 13, 18]);
        assert_eq!(list(f.day_of_month), [1, 15]);
        assert_eq!(list(f.month), [1, 7]);
        assert_eq!(list(f.day_of_week), [0]);
        assert!(!f.days_must_both_match);
        assert!(!f.minute.is_star());

        let f = parse("45/5 * */10 * *").unwrap();
        assert_eq!(list(f.minute), [45, 50, 55]);
        assert!(f.hour.is_star());
        assert_eq!(list(f.hour), (0..=23).collect::<Vec<_>>());
        assert!(!f.day_of_month.is_star());
        assert_eq!(list(f.day_of_month), [1, 11, 21, 31]);
        assert!(f.days_must_both_match);
        assert_eq!(list(f.day_of_week), (0..=6).collect::<Vec<_>>());
    }

    #[test]
    fn sunday_is_0_or_7_and_ends_a_range_as_7() {
        for expr in ["0 0 * * 7", "0 0 * * 0", "0 0 * * sun", "0 0 * * 0,7"] {
            assert_eq!(list(parse(expr).unwrap().day_of_week), [0], "{expr}");
        }
        assert_eq!(list(parse("0 0 * * SAT-SUN").unwrap().day_of_week), [0, 6]);
        assert_eq!(
            list(parse("0 0 * * mon-sun").unwrap().day_of_week),
            (0..=6).collect::<Vec<_>>()
        );
        assert_eq!(
            list(parse("0 0 * * MON-FRI").unwrap().day_of_week),
            [1, 2, 3, 4, 5]
        );
    }

    #[test]
    fn day_fields_combine_as_vixie_cron() {
        // Both restricted: either may match.
        assert!(!parse("0 0 13 * 5").unwrap().days_must_both_match);
        // Either starting with `*`: both must match.
        assert!(parse("0 0 */2 * 1").unwrap().days_must_both_match);
        assert!(parse("0 0 * * 1").unwrap().days_must_both_match);
        assert!(parse("0 0 1 * */2").unwrap().days_must_both_match);
    }

    #[test]
    fn shortcuts_stand_for_their_five_fields() {
        for (shortcut, fields) in [
            ("@yearly", "0 0 1 1 *"),
            ("@annually", "0 0 1 1 *"),
            ("@monthly", "0 0 1 * *"),
            ("@weekly", "0 0 * * 0"),
            ("@daily", "0 0 * * *"),
            ("@midnight", "0 0 * * *"),
            ("@hourly", "0 * * * *"),
            ("@MONTHLY", "0 0 1 * *"),
            (" @Daily ", "0 0 * * *"),
        ] {
            assert_eq!(parse(shortcut), parse(fields), "{shortcut}");
            assert!(parse(shortcut).is_ok(), "{shortcut}");
        }
    }

    #[test]
    fn wrong_field_count() {
        let fields = |n: usize| {
            format!(
                "has {n} field{}; a cron expression has 5 (no seconds, no year): minute hour \
                 day-of-month month day-of-week, e.g. \"30 2 * * *\"",
                if n == 1 { "" } else { "s" }
            )
        };
        for (expr, n) in [
            ("0 4 * *", 4),
            ("0 0 4 * * *", 6),
            ("0 0 4 * * * 2026", 7),
            ("", 0),
            ("hello world", 2),
            ("daily", 1),
        ] {
            assert_eq!(err(expr), fields(n), "{expr}");
        }
        assert_eq!(
            err("0 4 * *"),
            "has 4 fields; a cron expression has 5 (no seconds, no year): minute hour \
             day-of-month month day-of-week, e.g. \"30 2 * * *\""
        );
        assert!(err("daily").starts_with("has 1 field;"));
    }

    #[test]
    fn names_the_bad_field() {
        for (expr, why) in [
            ("60 * * * *", "minute 60 is out of range 0-59"),
            ("61 * * * *", "minute 61 is out of range 0-59"),
            ("* 24 * * *", "hour 24 is out of range 0-23"),
            ("0 0 0 * *", "day-of-month 0 is out of range 1-31"),
            ("* * * 13 *", "month 13 is out of range 1-12"),
            ("0 0 * * 8", "day-of-week 8 is out of range 0-7"),
            ("x * * * *", "minute \"x\" is not a number"),
            (
                "0 0 * foo *",
                "month \"foo\" is not a number or a name (JAN-DEC)",
            ),
            (
                "* * * jnu *",
                "month \"jnu\" is not a number or a name (JAN-DEC)",
            ),
            (
                "* * * * fun",
                "day-of-week \"fun\" is not a number or a name (SUN-SAT)",
            ),
            (
                "*/0 * * * *",
                "minute step \"0\" must be a number of at least 1",
            ),
            ("0 5-1 * * *", "hour range \"5-1\" runs backwards"),
            (
                "0 1,,2 * * *",
                "hour \"1,,2\" has an empty item in its list",
            ),
            ("0 0 ? * *", "day-of-month \"?\" is not a number"),
            ("0 0 L * *", "day-of-month \"L\" is not a number"),
            (
                "0 0 * * 1#2",
                "day-of-week \"1#2\" is not a number or a name (SUN-SAT)",
            ),
            ("+5 * * * *", "minute \"+5\" is not a number"),
            (
                "0 0 * * -1",
                "day-of-week \"\" is not a number or a name (SUN-SAT)",
            ),
        ] {
            assert_eq!(err(expr), why, "{expr}");
        }
    }

    #[test]
    fn unsupported_shortcuts() {
        assert_eq!(
            err("@reboot"),
            "@reboot is not supported; footrest schedules by time, e.g. \"@daily\" or \
             \"30 2 * * *\""
        );
        assert_eq!(
            err("@fortnightly"),
            "unknown shortcut; the shortcuts are @yearly, @annually, @monthly, @weekly, \
             @daily, @midnight and @hourly"
        );
    }

    #[test]
    fn a_day_no_named_month_has_never_runs() {
        let never = "never runs: none of the months it names has that day of the month";
        assert_eq!(err("0 0 30 2 *"), never);
        assert_eq!(err("0 0 31 4,6,9,11 *"), never);
        assert_eq!(err("0 0 30-31 feb */2"), never);
        // Either day field may match when both are restricted: 30 February or Mondays.
        assert!(parse("0 0 30 2 1").is_ok());
        // One named month has the day.
        assert!(parse("0 0 31 4,6,7 *").is_ok());
    }
}
