//! Durations as moderators write them: `45s`, `10m`, `2h`, `7d`, `1h30m`, `2 weeks`.
//!
//! Parsing is humantime's (the same grammar `/config` durations use), with what a moderation
//! action needs on top: the value must be positive, and it is capped at [`MAX`] so that "until"
//! times stay representable (for longer, ban permanently).

use std::time::Duration;

/// The longest duration accepted: 100 years.
pub const MAX: Duration = Duration::from_secs(100 * 365 * 86_400);

/// Why a duration was refused; the text is for the moderator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurationError(pub String);

impl std::fmt::Display for DurationError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DurationError {}

/// Parses a positive duration of at most [`MAX`], to the second.
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    let text = text.trim();
    let bad =
        || DurationError(format!("`{text}` is not a duration. Write it like `45s`, `10m`, `2h`, `7d` or `1h30m`."));
    if text.is_empty() {
        return Err(bad());
    }
    let value = humantime::parse_duration(text).map_err(|_| bad())?;
    if value.as_secs() == 0 {
        return Err(DurationError(format!("`{text}` is not a positive duration: use at least `1s`.")));
    }
    if value > MAX {
        return Err(DurationError(format!(
            "`{text}` is longer than 100 years; leave the duration out for a permanent action."
        )));
    }
    // Sub-second parts would be lost when stored; a moderator never means them.
    Ok(Duration::from_secs(value.as_secs()))
}

/// Milliseconds of `d` (durations are at most [`MAX`], far within `i64`).
pub fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// A duration as moderators read it, coarsest units first: `1d 2h`, `45s`, `1h 30m`.
pub fn format(d: Duration) -> String {
    let secs = d.as_secs();
    if secs == 0 {
        return "0s".into();
    }
    let parts = [(secs / 86_400, "d"), (secs / 3600 % 24, "h"), (secs / 60 % 60, "m"), (secs % 60, "s")];
    parts.iter().filter(|(n, _)| *n > 0).map(|(n, unit)| format!("{n}{unit}")).collect::<Vec<_>>().join(" ")
}

/// [`format`] of a duration in milliseconds.
pub fn format_ms(ms: i64) -> String {
    format(Duration::from_millis(ms.max(0) as u64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn what_people_write() {
        let secs = |s: &str| parse(s).map(|d| d.as_secs());
        assert_eq!(secs("45s"), Ok(45));
        assert_eq!(secs("10m"), Ok(600));
        assert_eq!(secs("2h"), Ok(7200));
        assert_eq!(secs("7d"), Ok(7 * 86_400));
        assert_eq!(secs("1h30m"), Ok(5400));
        assert_eq!(secs("1h 30m"), Ok(5400));
        assert_eq!(secs(" 2 weeks "), Ok(14 * 86_400));
        assert_eq!(secs("90min"), Ok(5400));
        assert_eq!(secs("60d"), Ok(60 * 86_400), "beyond Discord's 28-day timeout is accepted");
    }

    #[test]
    fn refusals_say_why() {
        assert!(parse("").is_err());
        assert!(parse("soon").unwrap_err().0.contains("not a duration"));
        assert!(parse("10").is_err(), "a unit is required");
        assert!(parse("-5m").is_err());
        assert!(parse("0s").unwrap_err().0.contains("positive"));
        assert!(parse("0d 0h").unwrap_err().0.contains("positive"));
        assert!(parse("500y").unwrap_err().0.contains("100 years"));
    }

    #[test]
    fn formatting_reads_well() {
        assert_eq!(format(Duration::from_secs(45)), "45s");
        assert_eq!(format(Duration::from_secs(5400)), "1h 30m");
        assert_eq!(format(Duration::from_secs(7 * 86_400 + 1)), "7d 1s");
        assert_eq!(format_ms(3_600_000), "1h");
    }

    proptest! {
        /// Any combination of days, hours, minutes and seconds, written compactly (`1h30m`) or
        /// spaced, parses to exactly its seconds — and so does what `format` writes.
        #[test]
        fn written_durations_round_trip(d in 0u64..36_500, h in 0u64..24, m in 0u64..60, s in 0u64..60, spaced in any::<bool>()) {
            let total = d * 86_400 + h * 3600 + m * 60 + s;
            prop_assume!(total > 0);
            let parts: Vec<String> = [(d, "d"), (h, "h"), (m, "m"), (s, "s")]
                .iter()
                .filter(|(n, _)| *n > 0)
                .map(|(n, u)| format!("{n}{u}"))
                .collect();
            let text = parts.join(if spaced { " " } else { "" });
            prop_assert_eq!(parse(&text).map(|v| v.as_secs()), Ok(total));
            prop_assert_eq!(parse(&format(Duration::from_secs(total))).map(|v| v.as_secs()), Ok(total));
        }

        /// Whatever is typed, the parser answers (no panic) and never accepts zero or more than MAX.
        #[test]
        fn anything_typed_is_answered(text in "\\PC{0,24}") {
            if let Ok(d) = parse(&text) {
                prop_assert!(d.as_secs() > 0 && d <= MAX);
            }
        }

        /// Bare numbers (no unit) are refused: `/timeout bob 10` could mean anything.
        #[test]
        fn numbers_without_units_are_refused(n in 0u64..1_000_000) {
            prop_assert!(parse(&n.to_string()).is_err());
        }
    }
}
