//! Lambda's log-level filter, applied to a function's captured stdout and stderr lines, so a
//! test sees the log CloudWatch would receive at a given `ApplicationLogLevel`. The rule,
//! from the Lambda developer guide, "Log-level filtering"
//! (docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs-log-level.html), for
//! runtimes other than the managed ones:
//!
//! > your function code must output log events to `stdout` or `stderr` as JSON formatted
//! > objects that contain a key value pair with the key `"level"`. [...] If the `"level"`
//! > value field is invalid or missing, Lambda will assign the log output the level INFO. For
//! > Lambda to use the timestamp field, you must specify the time in valid RFC 3339
//! > timestamp format. If you don't supply a valid timestamp, Lambda will assign the log the
//! > level INFO and add a timestamp for you.
//!
//! > When you select a log level, Lambda sends logs at that level and lower [less detailed] to
//! > CloudWatch Logs. For example, if you set a function's application log level to WARN,
//! > Lambda doesn't send log outputs at the INFO and DEBUG levels.
//!
//! The guide's own example writes `"level": "debug"`, so a level's name is read regardless of
//! case. It says Lambda "supports most common naming conventions" for the timestamp's key
//! without listing them; this reads `timestamp` only, the key the suite writes, so a test
//! cannot pass on a key Lambda might not read.

use serde_json::Value;

/// Lambda's application log levels, most detailed first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
    Fatal,
}

impl Level {
    /// A level by the name Lambda gives it, in any case; `None` for any other name.
    pub fn named(name: &str) -> Option<Self> {
        [
            ("TRACE", Level::Trace),
            ("DEBUG", Level::Debug),
            ("INFO", Level::Info),
            ("WARN", Level::Warn),
            ("ERROR", Level::Error),
            ("FATAL", Level::Fatal),
        ]
        .into_iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, level)| level)
    }
}

/// The level Lambda files `line` under: its `level` if the line is a JSON object with a
/// level Lambda knows and a valid RFC 3339 `timestamp`, INFO otherwise.
pub fn level_of(line: &str) -> Level {
    let Ok(Value::Object(object)) = serde_json::from_str::<Value>(line) else {
        return Level::Info;
    };
    let stamped = object
        .get("timestamp")
        .and_then(Value::as_str)
        .is_some_and(is_rfc3339);
    match object.get("level").and_then(Value::as_str) {
        Some(name) if stamped => Level::named(name).unwrap_or(Level::Info),
        _ => Level::Info,
    }
}

/// The lines Lambda sends to CloudWatch Logs at application log level `minimum`.
pub fn kept(lines: &[String], minimum: Level) -> Vec<String> {
    lines
        .iter()
        .filter(|l| level_of(l) >= minimum)
        .cloned()
        .collect()
}

/// RFC 3339's `date-time` (section 5.6): `YYYY-MM-DDTHH:MM:SS`, an optional fraction, then
/// `Z` or `±HH:MM`, with every field in range (a day that exists in its month, a leap
/// second allowed). `T` and `Z` may be lower case (the ABNF's strings are case-insensitive);
/// the space section 5.6's note allows "for readability" is not part of the grammar.
pub fn is_rfc3339(text: &str) -> bool {
    let b = text.as_bytes();
    let digits = |from: usize, len: usize| -> Option<u32> {
        let part = b.get(from..from + len)?;
        part.iter()
            .all(u8::is_ascii_digit)
            .then(|| part.iter().fold(0, |n, d| n * 10 + u32::from(d - b'0')))
    };
    let at = |i: usize, c: u8| b.get(i).is_some_and(|x| x.eq_ignore_ascii_case(&c));
    let (Some(year), Some(month), Some(day), Some(hour), Some(minute), Some(second)) = (
        digits(0, 4),
        digits(5, 2),
        digits(8, 2),
        digits(11, 2),
        digits(14, 2),
        digits(17, 2),
    ) else {
        return false;
    };
    if !(at(4, b'-') && at(7, b'-') && at(10, b'T') && at(13, b':') && at(16, b':')) {
        return false;
    }
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    if !(1..=days_in_month).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return false;
    }
    let mut i = 19;
    if at(i, b'.') {
        let fraction = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if fraction == 0 {
            return false;
        }
        i += 1 + fraction;
    }
    if at(i, b'Z') {
        return i + 1 == b.len();
    }
    if !(at(i, b'+') || at(i, b'-')) || !at(i + 3, b':') || i + 6 != b.len() {
        return false;
    }
    matches!((digits(i + 1, 2), digits(i + 4, 2)), (Some(h), Some(m)) if h <= 23 && m <= 59)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_date_times_are_told_from_near_misses() {
        for good in [
            "2024-11-02T16:51:31.587199Z",
            "2026-12-06T03:12:33.123Z",
            "2000-02-29T00:00:00Z",
            "1985-04-12t23:20:50.52z",
            "1996-12-19T16:39:57-08:00",
            "1990-12-31T23:59:60Z",
        ] {
            assert!(is_rfc3339(good), "{good}");
        }
        for bad in [
            "",
            "2026-12-06",
            "2026-12-06 03:12:33Z",
            "2026-12-06T03:12:33",
            "2026-12-06T03:12:33.Z",
            "2026-12-06T03:12:33.123",
            "2026-12-06T03:12:33.123+0100",
            "2026-12-06T03:12:33.123Z ",
            "2026-13-06T03:12:33Z",
            "2026-02-29T03:12:33Z",
            "2026-04-31T03:12:33Z",
            "2026-12-06T24:00:00Z",
            "1790000000000",
            "2026-12-06T03:12:33+24:00",
        ] {
            assert!(!is_rfc3339(bad), "{bad}");
        }
    }

    #[test]
    fn a_level_counts_only_on_a_json_object_with_a_valid_timestamp() {
        let at = r#""timestamp":"2026-12-06T03:12:33.123Z""#;
        assert_eq!(
            level_of(&format!(r#"{{"level":"ERROR",{at}}}"#)),
            Level::Error
        );
        assert_eq!(
            level_of(&format!(r#"{{"level":"warn",{at}}}"#)),
            Level::Warn
        );
        assert_eq!(
            level_of(&format!(r#"{{"level":"debug",{at}}}"#)),
            Level::Debug
        );
        assert_eq!(
            level_of(r#"{"level":"ERROR"}"#),
            Level::Info,
            "no timestamp"
        );
        assert_eq!(
            level_of(r#"{"level":"ERROR","timestamp":1790000000000}"#),
            Level::Info,
            "not RFC 3339"
        );
        assert_eq!(
            level_of(&format!(r#"{{"level":"WARNING",{at}}}"#)),
            Level::Info,
            "not a name Lambda knows"
        );
        assert_eq!(
            level_of(&format!(r#"{{"fields":{{"level":"ERROR",{at}}}}}"#)),
            Level::Info,
            "only top-level keys count"
        );
        assert_eq!(level_of("ERROR something broke"), Level::Info, "text");
        assert_eq!(
            level_of(r#"["level","ERROR"]"#),
            Level::Info,
            "not an object"
        );
    }

    #[test]
    fn kept_drops_what_is_below_the_minimum() {
        let at = r#""timestamp":"2026-12-06T03:12:33.123Z""#;
        let lines = vec![
            format!(r#"{{"level":"ERROR",{at}}}"#),
            format!(r#"{{"level":"WARN",{at}}}"#),
            format!(r#"{{"level":"INFO",{at}}}"#),
            r#"{"level":"ERROR"}"#.to_owned(),
            "plain text".to_owned(),
        ];
        assert_eq!(kept(&lines, Level::Error), lines[..1]);
        assert_eq!(kept(&lines, Level::Warn), lines[..2]);
        assert_eq!(kept(&lines, Level::Info), lines);
        assert!(kept(&lines, Level::Fatal).is_empty());
    }
}
