//! The one shape of every timestamp camgate emits (API answers, events, status): RFC 3339 in
//! UTC with exactly three fractional digits, so timestamps have one length and sort as text
//! (`2026-11-22T00:37:44.790Z`); and the times a request may give (`start`, `end`, `at`).

use std::time::SystemTime;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const FORMAT: &[time::format_description::FormatItem<'static>] = time::macros::format_description!(
    "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
);

/// `t` as RFC 3339 UTC with milliseconds.
pub fn rfc3339(t: impl Into<OffsetDateTime>) -> String {
    // Any time between 1970 and 9999 formats; ours (the clock, our database) are in range.
    t.into()
        .to_offset(time::UtcOffset::UTC)
        .format(FORMAT)
        .unwrap_or_default()
}

/// The current time, formatted by [`rfc3339`].
pub fn now() -> String {
    rfc3339(SystemTime::now())
}

/// Unix seconds (integer or fractional) or RFC 3339, as ms. `Err` says what was wrong.
pub fn parse_time(text: &str) -> Result<i64, String> {
    let t = text.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        let secs: f64 = t
            .parse()
            .map_err(|_| format!("`{}` is not a number of seconds", shown(t)))?;
        // Up to the year 5138: beyond any recording.
        if !(0.0..1e11).contains(&secs) {
            return Err(format!("`{}` is out of range", shown(t)));
        }
        return Ok((secs * 1000.0).round() as i64);
    }
    // A `+` of an offset arrives as a space when the client did not escape it.
    let fixed = t.replace(' ', "+");
    OffsetDateTime::parse(&fixed, &Rfc3339)
        .map(|d| (d.unix_timestamp_nanos() / 1_000_000) as i64)
        .map_err(|_| {
            format!(
                "`{}` is neither RFC 3339 (2026-12-02T08:00:00Z) nor Unix seconds",
                shown(t)
            )
        })
}

/// Echoes at most a short, printable prefix of what the client sent.
fn shown(t: &str) -> String {
    t.chars().filter(|c| !c.is_control()).take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_fixed_width_shape() {
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(1_790_000_000_123);
        assert_eq!(rfc3339(t), "2026-09-21T14:13:20.123Z");
        let odt = OffsetDateTime::from(t).to_offset(time::UtcOffset::from_hms(2, 0, 0).unwrap());
        assert_eq!(rfc3339(odt), "2026-09-21T14:13:20.123Z");
        assert_eq!(now().len(), 24);
    }
}
