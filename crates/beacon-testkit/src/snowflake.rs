//! Snowflake ids and Discord-style timestamps.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds between the unix epoch and Discord's epoch (2015-01-01).
pub const DISCORD_EPOCH_MS: u64 = 1_420_070_400_000;

/// Current unix time in milliseconds.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(DISCORD_EPOCH_MS)
}

/// Generates strictly increasing snowflakes whose timestamp part is the creation time.
#[derive(Debug, Default)]
pub struct Snowflakes {
    last: AtomicU64,
}

impl Snowflakes {
    /// A new generator.
    pub fn new() -> Self {
        Self::default()
    }

    /// The next id: `(ms since Discord epoch) << 22 | worker/process/increment bits`.
    pub fn next(&self) -> u64 {
        let base = now_ms().saturating_sub(DISCORD_EPOCH_MS) << 22 | (1 << 17);
        let mut prev = self.last.load(Ordering::Relaxed);
        loop {
            let candidate = base.max(prev + 1);
            match self.last.compare_exchange(prev, candidate, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return candidate,
                Err(actual) => prev = actual,
            }
        }
    }
}

/// Unix milliseconds encoded in a snowflake.
pub fn timestamp_ms(id: u64) -> u64 {
    (id >> 22) + DISCORD_EPOCH_MS
}

/// ISO-8601 timestamp as Discord writes it (`2024-01-02T03:04:05.678000+00:00`).
pub fn iso8601(ms: u64) -> String {
    let at = i64::try_from(ms).ok().and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok());
    at.unwrap_or(jiff::Timestamp::MAX).strftime("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_increase_and_carry_time() {
        let g = Snowflakes::new();
        let a = g.next();
        let b = g.next();
        assert!(b > a);
        let ms = timestamp_ms(a);
        assert!(ms > DISCORD_EPOCH_MS + 300_000_000_000, "timestamp too small: {ms}");
    }

    #[test]
    fn iso_formats_known_dates() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000000+00:00");
        assert_eq!(iso8601(1_420_070_400_123), "2015-01-01T00:00:00.123000+00:00");
        assert_eq!(iso8601(951_782_400_000), "2000-02-29T00:00:00.000000+00:00");
    }
}
