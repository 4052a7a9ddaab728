//! Durations in configuration: `"30s"`, `"200ms"`, `"1m"`, `"2h"`, `"1d"`, or a bare number of
//! seconds (`30`, `0.5`, `"30"`), so both our own files and users' old `*_SECONDS` variables
//! work. Used as `#[serde(with = "duration")]` on a `std::time::Duration` field.
//!
//! `0` (in any unit) parses; whether it means "off" is the key's to say in its doc comment, and
//! a key for which zero makes no sense refuses it in its section's `validate`.
//! The text is read by the parser shared with sizes ([`super::quantity`]), exactly to the
//! nanosecond; it owns nothing else.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serializer, de};

use super::quantity::{self, Number, QuantityError, Unit};

const NANOS_PER_SEC: u128 = 1_000_000_000;

/// Unit names are case-sensitive: `m` is a minute, and `M` would read as a month to some.
const UNITS: &[Unit] = &[
    (&["ms"], 1_000_000),
    (&["s"], NANOS_PER_SEC),
    (&["m"], 60 * NANOS_PER_SEC),
    (&["h"], 3600 * NANOS_PER_SEC),
    (&["d"], 86_400 * NANOS_PER_SEC),
];

const EXAMPLES: &str = "write e.g. \"30s\", \"200ms\", \"1m\" or a number of seconds";

/// Parses `"200ms"`, `"30s"`, `"1m"`, `"2h"`, `"1d"` or a bare number of seconds.
pub fn parse(text: &str) -> Result<Duration, String> {
    let shown = text.trim();
    let nanos = quantity::parse(text, UNITS, NANOS_PER_SEC, false).map_err(|e| match e {
        QuantityError::NotANumber => format!("`{shown}` is not a duration; {EXAMPLES}"),
        QuantityError::Negative => format!("`{shown}`: a duration cannot be negative"),
        QuantityError::UnknownUnit(unit) => {
            format!("unknown duration unit `{unit}`; use ms, s, m, h or d")
        }
        QuantityError::TooFine => format!("`{shown}` is finer than a nanosecond"),
        QuantityError::TooLarge => format!("`{shown}` is out of range"),
    })?;
    let secs =
        u64::try_from(nanos / NANOS_PER_SEC).map_err(|_| format!("`{shown}` is out of range"))?;
    // The remainder of a division by 10^9 always fits a u32.
    let subsec = (nanos % NANOS_PER_SEC) as u32;
    Ok(Duration::new(secs, subsec))
}

/// Formats a duration the way [`parse`] reads it back exactly, in the largest unit that is exact.
pub fn format(d: Duration) -> String {
    let nanos = d.subsec_nanos();
    if !nanos.is_multiple_of(1_000_000) {
        let fraction = format!("{nanos:09}");
        return format!("{}.{}s", d.as_secs(), fraction.trim_end_matches('0'));
    }
    if nanos != 0 {
        return format!("{}ms", d.as_millis());
    }
    let s = d.as_secs();
    for (unit, len) in [("d", 86_400), ("h", 3600), ("m", 60)] {
        if s >= len && s.is_multiple_of(len) {
            return format!("{}{unit}", s / len);
        }
    }
    format!("{s}s")
}

pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format(*d))
}

/// Accepts a string, an integer or a float (seconds); every form goes through [`parse`].
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = Number::deserialize(d)
        .map_err(|_| de::Error::custom(format!("expected a duration; {EXAMPLES}")))?
        .into_text();
    parse(&text).map_err(de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_and_formats() {
        for (text, want) in [
            ("30s", Duration::from_secs(30)),
            ("200ms", Duration::from_millis(200)),
            ("1m", Duration::from_secs(60)),
            ("2h", Duration::from_secs(7200)),
            ("1d", Duration::from_secs(86_400)),
            ("1.5d", Duration::from_secs(129_600)),
            ("30", Duration::from_secs(30)),
            ("0.5", Duration::from_millis(500)),
            (" 4 s ", Duration::from_secs(4)),
            ("0", Duration::ZERO),
            ("0.000000001", Duration::from_nanos(1)),
        ] {
            assert_eq!(parse(text).unwrap(), want, "{text}");
        }
        for bad in [
            "",
            "s",
            "1D",
            "-1s",
            "abc",
            "1.2.3s",
            "1 day",
            "NaN",
            "inf",
            "1e3",
            "0.1ns",
            "0.0000000001",
            "18446744073709551616",
            "99999999999999999999999999999999999999999d",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        for d in [
            Duration::from_secs(30),
            Duration::from_millis(200),
            Duration::from_secs(60),
            Duration::from_millis(1500),
            Duration::from_secs(7200),
            Duration::from_secs(86_400 * 3),
            Duration::from_nanos(1_500_000_001),
            Duration::MAX,
            Duration::ZERO,
        ] {
            assert_eq!(parse(&format(d)).unwrap(), d, "{}", format(d));
        }
        assert_eq!(format(Duration::from_secs(60)), "1m");
        assert_eq!(format(Duration::from_millis(200)), "200ms");
        assert_eq!(format(Duration::from_secs(86_400)), "1d");
        assert_eq!(format(Duration::from_micros(1500)), "0.0015s");
    }

    #[test]
    fn errors_say_what_is_wrong() {
        assert!(parse("-1s").unwrap_err().contains("negative"));
        assert!(parse("5 days").unwrap_err().contains("unit `days`"));
        assert!(parse("lots").unwrap_err().contains("not a duration"));
        assert!(parse("1e999").unwrap_err().contains("unit `e999`"));
    }

    #[derive(serde::Serialize, Deserialize, Debug, PartialEq)]
    struct Holder {
        #[serde(with = "super")]
        d: Duration,
    }

    #[test]
    fn toml_numbers_and_strings() {
        let read = |text: &str| toml::from_str::<Holder>(text).map(|h| h.d);
        assert_eq!(read("d = 3").unwrap(), Duration::from_secs(3));
        assert_eq!(read("d = 0.1").unwrap(), Duration::from_millis(100));
        assert_eq!(read("d = \"1d\"").unwrap(), Duration::from_secs(86_400));
        for bad in [
            "d = -1",
            "d = -0.5",
            "d = nan",
            "d = inf",
            "d = 1e300",
            "d = true",
            "d = []",
        ] {
            assert!(read(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn format_then_parse_is_identity(secs in any::<u64>(), nanos in 0u32..1_000_000_000) {
            let d = Duration::new(secs, nanos);
            prop_assert_eq!(parse(&format(d)), Ok(d));
            let text = toml::to_string(&Holder { d }).unwrap();
            prop_assert_eq!(toml::from_str::<Holder>(&text).unwrap(), Holder { d });
        }

        #[test]
        fn whole_units_format_then_parse(n in 0u64..1_000_000, unit in 0usize..4) {
            let d = match unit {
                0 => Duration::from_millis(n),
                1 => Duration::from_secs(n),
                2 => Duration::from_secs(n * 60),
                _ => Duration::from_secs(n * 86_400),
            };
            prop_assert_eq!(parse(&format(d)), Ok(d));
        }
    }
}
