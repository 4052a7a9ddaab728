//! The one parser behind durations ([`super::duration`]) and sizes ([`super::size`]): a
//! non-negative decimal number with an optional unit, `"1.5G"`, `"200ms"`, `"4096"`, read exactly
//! (no floating point) into a whole count of the smallest unit (nanoseconds, bytes).
//! It owns only the text's shape and the arithmetic; which units exist, what a bare number means
//! and how a value is written back belong to the two callers. Input never panics: every step is
//! checked, and a proptest in this file feeds it arbitrary text.

use serde::Deserialize;

/// Digits after the decimal point that are read. With at most 10^18 as the denominator and units
/// below 10^19, `fraction * unit` fits a `u128`; nobody writes a size or a time that finely.
const MAX_FRACTION_DIGITS: usize = 18;

/// Why a text is not a quantity; the caller turns it into a message naming its own units.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum QuantityError {
    /// Empty, no digits, several dots, an exponent, ...: not a number followed by a unit.
    NotANumber,
    Negative,
    /// The text after the number is not one of the caller's units (held as written).
    UnknownUnit(String),
    /// The value is not a whole number of the smallest unit (`0.5B`, `1.0000000001s`) or has
    /// more than [`MAX_FRACTION_DIGITS`] decimals.
    TooFine,
    /// More than `u128` (and so more than any caller's type) can hold.
    TooLarge,
}

/// A unit: the names it may be written with, and how many of the smallest unit it is.
pub(super) type Unit = (&'static [&'static str], u128);

/// Parses `text` as `<number><unit>` (spaces allowed around and between), where the unit is one
/// of `units` or absent, in which case `bare` is the multiplier. `ignore_case` compares unit
/// names ASCII-case-insensitively. Returns the value in the smallest unit.
pub(super) fn parse(
    text: &str,
    units: &[Unit],
    bare: u128,
    ignore_case: bool,
) -> Result<u128, QuantityError> {
    let text = text.trim();
    if let Some(rest) = text.strip_prefix('-') {
        // Only a number after the sign makes it "negative" rather than "not a number".
        if rest
            .trim_start()
            .starts_with(|c: char| c.is_ascii_digit() || c == '.')
        {
            return Err(QuantityError::Negative);
        }
        return Err(QuantityError::NotANumber);
    }
    // `find` returns a char boundary, so the split is safe whatever the text holds.
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if (whole.is_empty() && fraction.is_empty()) || fraction.contains('.') {
        return Err(QuantityError::NotANumber);
    }
    let unit = unit.trim();
    let multiplier = if unit.is_empty() {
        bare
    } else {
        units
            .iter()
            .find(|(names, _)| {
                names.iter().any(|n| {
                    if ignore_case {
                        n.eq_ignore_ascii_case(unit)
                    } else {
                        *n == unit
                    }
                })
            })
            .map(|(_, m)| *m)
            .ok_or_else(|| QuantityError::UnknownUnit(unit.to_owned()))?
    };
    let fraction = fraction.trim_end_matches('0');
    if fraction.len() > MAX_FRACTION_DIGITS {
        return Err(QuantityError::TooFine);
    }
    let whole = digits(whole)?;
    let value = whole
        .checked_mul(multiplier)
        .ok_or(QuantityError::TooLarge)?;
    if fraction.is_empty() {
        return Ok(value);
    }
    // fraction < 10^18 and multiplier < 10^20 here for every caller, but check anyway.
    let scaled = digits(fraction)?
        .checked_mul(multiplier)
        .ok_or(QuantityError::TooLarge)?;
    let denominator = 10u128.pow(fraction.len() as u32);
    if scaled % denominator != 0 {
        return Err(QuantityError::TooFine);
    }
    value
        .checked_add(scaled / denominator)
        .ok_or(QuantityError::TooLarge)
}

/// An unsigned run of ASCII digits (possibly empty, meaning 0) as a `u128`.
fn digits(text: &str) -> Result<u128, QuantityError> {
    text.bytes().try_fold(0u128, |n, b| {
        n.checked_mul(10)
            .and_then(|n| n.checked_add(u128::from(b - b'0')))
            .ok_or(QuantityError::TooLarge)
    })
}

/// A TOML or JSON number as text [`parse`] reads: integers exactly, floats in their shortest
/// exact decimal form (`0.1` stays `"0.1"`, so it is 100ms and not 100.0000000000000055ms).
/// NaN and infinities become text that is not a number, so they fail like any bad text.
pub(super) fn float_text(f: f64) -> String {
    if f.is_finite() {
        // `Display` for f64 never uses an exponent, so the result is digits, a dot and a sign.
        format!("{f}")
    } else {
        format!("{f:?}")
    }
}

/// A duration or size as a file or variable may hold it, before the shared parser reads it.
#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum Number {
    Unsigned(u64),
    Signed(i64),
    Float(f64),
    Text(String),
}

impl Number {
    pub(super) fn into_text(self) -> String {
        match self {
            Number::Unsigned(n) => n.to_string(),
            Number::Signed(n) => n.to_string(),
            Number::Float(f) => float_text(f),
            Number::Text(t) => t,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const UNITS: &[Unit] = &[(&["k"], 1000), (&["Ki"], 1024)];

    fn p(text: &str) -> Result<u128, QuantityError> {
        parse(text, UNITS, 1, true)
    }

    #[test]
    fn reads_exactly() {
        assert_eq!(p("4096"), Ok(4096));
        assert_eq!(p("1.5k"), Ok(1500));
        assert_eq!(p(" 1.5 KI "), Ok(1536));
        assert_eq!(p(".5k"), Ok(500));
        assert_eq!(p("2.k"), Ok(2000));
        assert_eq!(p("1.000000000000000000000000k"), Ok(1000));
        assert_eq!(p("0"), Ok(0));
        assert_eq!(
            parse("1K", UNITS, 1, false),
            Err(QuantityError::UnknownUnit("K".into()))
        );
    }

    #[test]
    fn refuses_what_is_not_a_quantity() {
        use QuantityError::*;
        for (text, want) in [
            ("", NotANumber),
            (".", NotANumber),
            ("k", NotANumber),
            ("1.2.3", NotANumber),
            ("-", NotANumber),
            ("-x", NotANumber),
            ("-1", Negative),
            ("- .5k", Negative),
            ("1e3", UnknownUnit("e3".into())),
            ("NaN", NotANumber),
            ("inf", NotANumber),
            ("+1", NotANumber),
            ("1µs", UnknownUnit("µs".into())),
            ("0.5", TooFine),
            ("0.0000000000000000001k", TooFine),
            ("340282366920938463463374607431768211456", TooLarge),
            ("340282366920938463463374607431768211455k", TooLarge),
        ] {
            let got = p(text);
            assert_eq!(got, Err(want), "{text:?}");
        }
    }

    #[test]
    fn floats_become_their_shortest_decimal() {
        assert_eq!(float_text(0.1), "0.1");
        assert_eq!(float_text(1e20), "100000000000000000000");
        assert_eq!(float_text(-0.5), "-0.5");
        assert!(p(&float_text(f64::NAN)).is_err());
        assert!(p(&float_text(f64::INFINITY)).is_err());
        assert!(p(&float_text(f64::NEG_INFINITY)).is_err());
    }

    proptest! {
        #[test]
        fn never_panics_on_any_text(text in any::<String>()) {
            let _ = p(&text);
            let _ = super::super::duration::parse(&text);
            let _ = text.parse::<super::super::ByteSize>();
        }

        #[test]
        fn never_panics_on_number_like_text(text in "[-+ ]?[0-9]{0,45}(\\.[0-9]{0,45})?[ ]?(|[kKmMgGtTpPeEiIbBsSdhn]{1,3}|µs)") {
            let _ = p(&text);
            let _ = super::super::duration::parse(&text);
            let _ = text.parse::<super::super::ByteSize>();
        }

        #[test]
        fn never_panics_on_any_float(f in any::<f64>()) {
            let _ = p(&float_text(f));
            let _ = super::super::duration::parse(&float_text(f));
            let _ = float_text(f).parse::<super::super::ByteSize>();
        }
    }
}
