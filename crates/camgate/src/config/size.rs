//! Sizes in configuration: [`ByteSize`], written `"10GiB"`, `"500MB"`, `"1.5G"`, `"4096"` or a
//! plain number of bytes. The text is read by the parser shared with durations
//! ([`super::quantity`]); this file owns only the units and how a size is written back.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

use super::quantity::{self, Number, QuantityError, Unit};

/// Decimal units (`KB`, `MB`, `GB`, also written `K`, `M`, `G`) are powers of 1000, binary ones
/// (`KiB`, `MiB`, `GiB`, or `Ki`, `Mi`, `Gi`) powers of 1024, as disks and Kubernetes count.
/// Names are case-insensitive (`gib`, `GB`); `B` alone is bytes, and there are no bits.
const UNITS: &[Unit] = &[
    (&["B"], 1),
    (&["K", "KB"], 1000),
    (&["Ki", "KiB"], 1 << 10),
    (&["M", "MB"], 1000_u128.pow(2)),
    (&["Mi", "MiB"], 1 << 20),
    (&["G", "GB"], 1000_u128.pow(3)),
    (&["Gi", "GiB"], 1 << 30),
    (&["T", "TB"], 1000_u128.pow(4)),
    (&["Ti", "TiB"], 1 << 40),
    (&["P", "PB"], 1000_u128.pow(5)),
    (&["Pi", "PiB"], 1 << 50),
    (&["E", "EB"], 1000_u128.pow(6)),
    (&["Ei", "EiB"], 1 << 60),
];

/// A number of bytes, for limits such as a recording quota or a buffer.
///
/// **`0` means off or unlimited**: a key of this type says in its doc comment which of the two,
/// and code asks [`ByteSize::limit`], which has no zero to forget about.
///
/// In a file or variable it is written as a string with a unit (`"10GiB"`, `"500MB"`, `"1.5G"`:
/// see the units above) or as a plain number of bytes (`4096` or `"4096"`). It is serialized as
/// a string in the largest unit that is exact (`"10GiB"`, `"500MB"`, `"1234B"`, `"0"`), which
/// reads back to the same value; being a string also makes `CAMGATE_*` variables accept units.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// Zero: no limit (or the feature off; the key says which).
    pub const UNLIMITED: ByteSize = ByteSize(0);

    pub const fn bytes(self) -> u64 {
        self.0
    }

    /// The limit in bytes, or `None` for `0` (unlimited or off).
    pub const fn limit(self) -> Option<u64> {
        if self.0 == 0 { None } else { Some(self.0) }
    }

    /// `n` KiB, saturating (for defaults written in code).
    pub const fn kib(n: u64) -> ByteSize {
        ByteSize(n.saturating_mul(1 << 10))
    }

    /// `n` MiB, saturating.
    pub const fn mib(n: u64) -> ByteSize {
        ByteSize(n.saturating_mul(1 << 20))
    }

    /// `n` GiB, saturating.
    pub const fn gib(n: u64) -> ByteSize {
        ByteSize(n.saturating_mul(1 << 30))
    }
}

/// Why a text is not a size; the message names the text and the accepted forms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseSizeError(String);

impl FromStr for ByteSize {
    type Err = ParseSizeError;

    fn from_str(text: &str) -> Result<ByteSize, ParseSizeError> {
        let shown = text.trim();
        let out_of_range = || {
            ParseSizeError(format!(
                "`{shown}` is out of range (at most 18446744073709551615 bytes, just under 16EiB)"
            ))
        };
        let bytes = quantity::parse(text, UNITS, 1, true).map_err(|e| {
            ParseSizeError(match e {
                QuantityError::NotANumber => format!(
                    "`{shown}` is not a size; write e.g. \"10GiB\", \"500MB\" or a number of bytes"
                ),
                QuantityError::Negative => format!("`{shown}`: a size cannot be negative"),
                QuantityError::UnknownUnit(unit) => format!(
                    "unknown size unit `{unit}`; use B, KB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024)"
                ),
                QuantityError::TooFine => format!("`{shown}` is not a whole number of bytes"),
                QuantityError::TooLarge => out_of_range().0,
            })
        })?;
        u64::try_from(bytes)
            .map(ByteSize)
            .map_err(|_| out_of_range())
    }
}

/// The largest unit in which the size is a whole number; bytes otherwise.
impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = u128::from(self.0);
        if n == 0 {
            return f.write_str("0");
        }
        // Units are listed smallest first; the last one that divides exactly is the largest.
        let (names, unit) = UNITS
            .iter()
            .filter(|(_, unit)| n.is_multiple_of(*unit))
            .max_by_key(|(_, unit)| *unit)
            .unwrap_or(&UNITS[0]);
        // The long name (`KiB`, `MB`, `B`) reads best; every unit has one as its last name.
        let name = names.last().unwrap_or(&"B");
        write!(f, "{}{name}", n / unit)
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Accepts a string, an integer or a float (bytes); every form goes through the same parser.
impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<ByteSize, D::Error> {
        let text = Number::deserialize(d)
            .map_err(|_| {
                de::Error::custom(
                    "expected a size such as \"10GiB\", \"500MB\" or a number of bytes",
                )
            })?
            .into_text();
        text.parse().map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn size(text: &str) -> Result<u64, ParseSizeError> {
        text.parse::<ByteSize>().map(ByteSize::bytes)
    }

    #[test]
    fn reads_units_and_plain_numbers() {
        for (text, want) in [
            ("10GiB", 10 << 30),
            ("500MB", 500_000_000),
            ("1.5G", 1_500_000_000),
            ("1.5gi", 3 << 29),
            ("4096", 4096),
            (" 64 kib ", 64 << 10),
            ("1k", 1000),
            ("12B", 12),
            ("0", 0),
            ("0GiB", 0),
            ("15EiB", 15 << 60),
            ("18446744073709551615", u64::MAX),
        ] {
            assert_eq!(size(text), Ok(want), "{text}");
        }
        for (bad, says) in [
            ("", "not a size"),
            ("GiB", "not a size"),
            ("-1MB", "negative"),
            ("1.5B", "whole number of bytes"),
            ("0.3KiB", "whole number of bytes"),
            ("10 gigs", "unit `gigs`"),
            ("1Mb/s", "unit `Mb/s`"),
            ("18446744073709551616", "out of range"),
            ("16EiB", "out of range"),
            ("NaN", "not a size"),
            ("1e9", "unit `e9`"),
        ] {
            let err = size(bad).unwrap_err().to_string();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }

    #[test]
    fn zero_is_unlimited() {
        assert_eq!(ByteSize::UNLIMITED.limit(), None);
        assert_eq!(ByteSize::mib(1).limit(), Some(1 << 20));
        assert_eq!(ByteSize::gib(u64::MAX).bytes(), u64::MAX);
    }

    #[test]
    fn writes_the_largest_exact_unit() {
        for (bytes, want) in [
            (0, "0"),
            (10 << 30, "10GiB"),
            (500_000_000, "500MB"),
            (1_500_000_000, "1500MB"),
            (1234, "1234B"),
            (1000, "1KB"),
            (4096, "4KiB"),
            (u64::MAX, "18446744073709551615B"),
        ] {
            assert_eq!(ByteSize(bytes).to_string(), want);
        }
    }

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Holder {
        size: ByteSize,
    }

    #[test]
    fn toml_numbers_and_strings() {
        let read = |text: &str| toml::from_str::<Holder>(text).map(|h| h.size.bytes());
        assert_eq!(read("size = 4096").unwrap(), 4096);
        assert_eq!(read("size = 1.5e9").unwrap(), 1_500_000_000);
        assert_eq!(read("size = \"10GiB\"").unwrap(), 10 << 30);
        for bad in [
            "size = -1",
            "size = 0.5",
            "size = nan",
            "size = 1e300",
            "size = false",
        ] {
            assert!(read(bad).is_err(), "{bad}");
        }
        let text = toml::to_string(&Holder {
            size: ByteSize::gib(10),
        })
        .unwrap();
        assert_eq!(text.trim(), "size = \"10GiB\"");
    }

    proptest! {
        #[test]
        fn format_then_parse_is_identity(bytes in any::<u64>()) {
            let s = ByteSize(bytes);
            prop_assert_eq!(s.to_string().parse::<ByteSize>(), Ok(s));
            let text = toml::to_string(&Holder { size: s }).unwrap();
            prop_assert_eq!(toml::from_str::<Holder>(&text).unwrap(), Holder { size: s });
        }

        #[test]
        fn round_sizes_format_then_parse(n in 0u64..100_000, unit in 0usize..UNITS.len()) {
            let s = ByteSize(n.saturating_mul(UNITS[unit].1 as u64));
            prop_assert_eq!(s.to_string().parse::<ByteSize>(), Ok(s));
        }
    }
}
