//! Durations as Portico's users write them: `90s`, `15m`, `8h`, `7d`, or several joined, such as
//! `1h30m`. The host reads `approvalTimeout` with it and the plugin SDK reads TTLs with it, so an
//! action and its plugin agree on what a duration means. No dependencies: it builds for the host
//! and for `wasm32-wasip2`.

use std::time::Duration;

/// A text that is not a duration; its message quotes the text and shows the accepted shapes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotADuration(pub String);

impl std::fmt::Display for NotADuration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`{}` is not a duration such as 30s, 15m, 8h, 7d or 1h30m",
            self.0
        )
    }
}

impl std::error::Error for NotADuration {}

/// Parses a duration: numbers each followed by `s`, `m`, `h` or `d`, adding up to more than zero.
pub fn parse(text: &str) -> Result<Duration, NotADuration> {
    let bad = || NotADuration(text.to_owned());
    let mut total = 0u64;
    let mut number = String::new();
    for c in text.trim().chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(bad()),
        };
        let n: u64 = number.parse().map_err(|_| bad())?;
        total = n
            .checked_mul(unit)
            .and_then(|s| total.checked_add(s))
            .ok_or_else(bad)?;
        number.clear();
    }
    if !number.is_empty() || total == 0 {
        return Err(bad());
    }
    Ok(Duration::from_secs(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_people_write_them() {
        assert_eq!(parse("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("8h"), Ok(Duration::from_secs(8 * 3600)));
        assert_eq!(parse(" 1h30m "), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("7d"), Ok(Duration::from_secs(7 * 86_400)));
    }

    #[test]
    fn anything_else_is_refused_with_the_shapes_that_work() {
        for bad in [
            "",
            "8",
            "0s",
            "h",
            "1x",
            "1.5h",
            "-1h",
            "99999999999999999999d",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse("soon").unwrap_err().to_string(),
            "`soon` is not a duration such as 30s, 15m, 8h, 7d or 1h30m"
        );
    }
}
