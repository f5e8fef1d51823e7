//! Dates for timer properties (`format: timer`), without a date crate in the plugin.

use crate::Failure;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Parses a TTL such as `30m`, `8h`, `7d` or `1h30m`, as the host reads durations.
pub fn parse_ttl(text: &str) -> Result<Duration, Failure> {
    portico_duration::parse(text).map_err(|e| Failure::invalid_input(e.to_string()))
}

/// Seconds since the epoch as `2026-11-28T10:00:00Z`.
pub fn iso(seconds: u64) -> String {
    let days = (seconds / 86_400) as i64;
    let rest = seconds % 86_400;
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

/// The date `ttl` from now, for a timer property.
///
/// ```
/// let expires = portico_sdk::time::from_now("8h").unwrap();
/// assert!(expires.ends_with('Z'));
/// ```
pub fn from_now(ttl: &str) -> Result<String, Failure> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|_| Failure::failed("the clock is before 1970"))?;
    Ok(iso((now + parse_ttl(ttl)?).as_secs()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_iso_in_utc() {
        assert_eq!(iso(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(iso(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(parse_ttl("1h30m").unwrap(), Duration::from_secs(5400));
        assert!(parse_ttl("8").is_err());
    }
}
