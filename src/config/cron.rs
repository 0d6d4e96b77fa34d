//! A syntactic check of 5-field cron expressions, so a typo is caught when the config
//! is loaded rather than when the schedule is first computed.
//!
//! It checks only the shape: five fields, each a list of `*`, values, ranges and steps,
//! values in range for their position, month and weekday names. It does not compute
//! times (that belongs to the orchestrator's schedule code) and it accepts nothing the
//! classic 5-field syntax lacks (`@daily`, `?`, `L`, `W`, `#`, seconds or years).

/// One field of a cron expression: its name, range and optional names for values.
struct FieldSpec {
    name: &'static str,
    min: u32,
    max: u32,
    /// Names for `min`, `min + 1`, ... (month and weekday names).
    names: &'static [&'static str],
}

const MONTHS: &[&str] = &[
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const WEEKDAYS: &[&str] = &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

const FIELDS: [FieldSpec; 5] = [
    FieldSpec {
        name: "minute",
        min: 0,
        max: 59,
        names: &[],
    },
    FieldSpec {
        name: "hour",
        min: 0,
        max: 23,
        names: &[],
    },
    FieldSpec {
        name: "day-of-month",
        min: 1,
        max: 31,
        names: &[],
    },
    FieldSpec {
        name: "month",
        min: 1,
        max: 12,
        names: MONTHS,
    },
    // 7 is Sunday too, as in most crons.
    FieldSpec {
        name: "day-of-week",
        min: 0,
        max: 7,
        names: WEEKDAYS,
    },
];

/// Checks `expr`; the error completes a sentence that starts with the expression,
/// e.g. `has 4 fields; ...`.
pub(crate) fn check(expr: &str) -> Result<(), String> {
    let fields: Vec<&str> = expr.split_whitespace().collect();
    if fields.len() != FIELDS.len() {
        return Err(format!(
            "has {} field{}; a cron expression has 5: minute hour day-of-month month \
             day-of-week, e.g. \"30 2 * * *\"",
            fields.len(),
            if fields.len() == 1 { "" } else { "s" }
        ));
    }
    for (field, spec) in fields.iter().zip(FIELDS.iter()) {
        check_field(field, spec)
            .map_err(|why| format!("has an invalid {} field {:?}: {}", spec.name, field, why))?;
    }
    Ok(())
}

fn check_field(field: &str, spec: &FieldSpec) -> Result<(), String> {
    for item in field.split(',') {
        if item.is_empty() {
            return Err("an empty item in a list".to_string());
        }
        let (base, step) = match item.split_once('/') {
            Some((base, step)) => (base, Some(step)),
            None => (item, None),
        };
        if let Some(step) = step {
            match step.parse::<u32>() {
                Ok(n) if n >= 1 => {}
                _ => return Err(format!("step {step:?} must be a number of at least 1")),
            }
        }
        if base == "*" {
            continue;
        }
        match base.split_once('-') {
            Some((from, to)) => {
                let from = value(from, spec)?;
                let to = value(to, spec)?;
                if from > to {
                    return Err(format!("range {base:?} runs backwards"));
                }
            }
            None => {
                value(base, spec)?;
            }
        }
    }
    Ok(())
}

fn value(text: &str, spec: &FieldSpec) -> Result<u32, String> {
    if let Ok(n) = text.parse::<u32>() {
        if n < spec.min || n > spec.max {
            return Err(format!("{n} is out of range {}-{}", spec.min, spec.max));
        }
        return Ok(n);
    }
    if let Some(i) = spec
        .names
        .iter()
        .position(|name| name.eq_ignore_ascii_case(text))
    {
        return Ok(spec.min + i as u32);
    }
    if spec.names.is_empty() {
        Err(format!("{text:?} is not a number"))
    } else {
        Err(format!(
            "{text:?} is not a number or a name ({})",
            spec.names.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::check;

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
        ] {
            assert_eq!(check(expr), Ok(()), "{expr}");
        }
    }

    #[test]
    fn wrong_field_count() {
        assert_eq!(
            check("0 4 * *"),
            Err(
                "has 4 fields; a cron expression has 5: minute hour day-of-month month \
                 day-of-week, e.g. \"30 2 * * *\""
                    .to_string()
            )
        );
        assert!(check("@daily").unwrap_err().starts_with("has 1 field;"));
        assert!(
            check("0 0 4 * * *")
                .unwrap_err()
                .starts_with("has 6 fields;")
        );
        assert!(check("").unwrap_err().starts_with("has 0 fields;"));
    }

    #[test]
    fn names_the_bad_field() {
        assert_eq!(
            check("61 * * * *"),
            Err("has an invalid minute field \"61\": 61 is out of range 0-59".to_string())
        );
        assert_eq!(
            check("0 24 * * *"),
            Err("has an invalid hour field \"24\": 24 is out of range 0-23".to_string())
        );
        assert_eq!(
            check("0 0 0 * *"),
            Err("has an invalid day-of-month field \"0\": 0 is out of range 1-31".to_string())
        );
        assert_eq!(
            check("0 0 * foo *"),
            Err(
                "has an invalid month field \"foo\": \"foo\" is not a number or a name \
                 (JAN, FEB, MAR, APR, MAY, JUN, JUL, AUG, SEP, OCT, NOV, DEC)"
                    .to_string()
            )
        );
        assert_eq!(
            check("0 0 * * 8"),
            Err("has an invalid day-of-week field \"8\": 8 is out of range 0-7".to_string())
        );
        assert_eq!(
            check("*/0 * * * *"),
            Err(
                "has an invalid minute field \"*/0\": step \"0\" must be a number of at \
                 least 1"
                    .to_string()
            )
        );
        assert_eq!(
            check("0 5-1 * * *"),
            Err("has an invalid hour field \"5-1\": range \"5-1\" runs backwards".to_string())
        );
        assert_eq!(
            check("0 1,,2 * * *"),
            Err("has an invalid hour field \"1,,2\": an empty item in a list".to_string())
        );
        assert_eq!(
            check("0 0 ? * *"),
            Err("has an invalid day-of-month field \"?\": \"?\" is not a number".to_string())
        );
        assert!(check("0 0 L * *").is_err());
        assert!(check("0 0 * * 1#2").is_err());
        assert!(check("0 0 * * -1").is_err());
    }
}
