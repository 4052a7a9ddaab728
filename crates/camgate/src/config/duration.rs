//! Durations in configuration: `"30s"`, `"200ms"`, `"1m"`, `"2h"`, or a bare number of seconds
//! (`30`, `0.5`, `"30"`), so both our own files and users' old `*_SECONDS` variables work.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serializer, de};

/// Parses `"200ms"`, `"30s"`, `"1m"`, `"2h"` or a bare number of seconds.
pub fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration; write e.g. \"30s\", \"200ms\", \"1m\" or a number of seconds"))?;
    let seconds = match unit.trim() {
        "" | "s" => value,
        "ms" => value / 1000.0,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        other => {
            return Err(format!(
                "unknown duration unit `{other}`; use ms, s, m or h"
            ));
        }
    };
    Duration::try_from_secs_f64(seconds).map_err(|_| format!("`{text}` is out of range"))
}

/// Formats a duration the way [`parse`] reads it, in the largest unit that is exact.
pub fn format(d: Duration) -> String {
    if !d.subsec_nanos().is_multiple_of(1_000_000) {
        return format!("{}s", d.as_secs_f64());
    }
    if d.subsec_millis() != 0 {
        return format!("{}ms", d.as_millis());
    }
    let s = d.as_secs();
    if s >= 3600 && s.is_multiple_of(3600) {
        format!("{}h", s / 3600)
    } else if s >= 60 && s.is_multiple_of(60) {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format(*d))
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Int(u64),
        Float(f64),
        Text(String),
    }
    match Raw::deserialize(d).map_err(|_| {
        de::Error::custom(
            "expected a duration such as \"30s\", \"200ms\", \"1m\" or a number of seconds",
        )
    })? {
        Raw::Int(n) => Ok(Duration::from_secs(n)),
        Raw::Float(f) => Duration::try_from_secs_f64(f)
            .map_err(|_| de::Error::custom("a duration must be a non-negative number of seconds")),
        Raw::Text(t) => parse(&t).map_err(de::Error::custom),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_formats() {
        for (text, want) in [
            ("30s", Duration::from_secs(30)),
            ("200ms", Duration::from_millis(200)),
            ("1m", Duration::from_secs(60)),
            ("2h", Duration::from_secs(7200)),
            ("30", Duration::from_secs(30)),
            ("0.5", Duration::from_millis(500)),
            (" 4 s ", Duration::from_secs(4)),
        ] {
            assert_eq!(parse(text).unwrap(), want, "{text}");
        }
        for bad in ["", "s", "1d", "-1s", "abc", "1.2.3s"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        for d in [
            Duration::from_secs(30),
            Duration::from_millis(200),
            Duration::from_secs(60),
            Duration::from_millis(1500),
            Duration::from_secs(7200),
        ] {
            assert_eq!(parse(&format(d)).unwrap(), d);
        }
        assert_eq!(format(Duration::from_secs(60)), "1m");
        assert_eq!(format(Duration::from_millis(200)), "200ms");
    }
}
