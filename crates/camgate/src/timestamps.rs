//! The one shape of every timestamp camgate emits (API answers, events, status): RFC 3339 in
//! UTC with exactly three fractional digits, so timestamps have one length and sort as text
//! (`2026-11-22T00:37:44.790Z`).

use std::time::SystemTime;

use time::OffsetDateTime;

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
