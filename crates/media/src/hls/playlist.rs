//! Media playlist rendering (RFC 8216bis §4.4), LL-HLS tags included. One playlist serves
//! both kinds of players: EXTINF + URI lines for every complete segment, and the EXT-X-PART /
//! EXT-X-PRELOAD-HINT tags LL-HLS players use and others ignore.

use std::fmt::Write;

use bytes::Bytes;

use super::Segmenter;
use super::names::{self, Name};
use super::segmenter::Segment;
use crate::TIMESCALE;

/// Seconds with 5 decimals, as every duration in our playlists.
fn secs(ticks: u64) -> String {
    format!("{:.5}", ticks as f64 / f64::from(TIMESCALE))
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` for Unix milliseconds (proleptic Gregorian, UTC).
pub(super) fn rfc3339_ms(unix_ms: i64) -> String {
    let days = unix_ms.div_euclid(86_400_000);
    let ms_of_day = unix_ms.rem_euclid(86_400_000);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        ms_of_day / 3_600_000,
        ms_of_day / 60_000 % 60,
        ms_of_day / 1000 % 60,
        ms_of_day % 1000
    )
}

/// True for a query string safe to append to URIs inside a quoted playlist attribute.
fn safe_query(q: &str) -> bool {
    q.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._~=&%+/:".contains(&b))
}

/// A rendered playlist whose URIs can each take a per-client query (a viewer session, a
/// token) without rendering again: a server renders once per playlist change and splices the
/// query into a copy per request, which is a memcpy of a few KB instead of a render.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlaylistTemplate {
    /// The playlist with bare URIs.
    text: Bytes,
    /// Byte offsets in `text` just after each URI (where a query goes), ascending.
    uri_ends: Vec<usize>,
}

impl PlaylistTemplate {
    /// The playlist with bare URIs (a cheap clone of shared bytes).
    pub fn bare(&self) -> Bytes {
        self.text.clone()
    }

    /// Number of URIs in the playlist.
    pub fn uri_count(&self) -> usize {
        self.uri_ends.len()
    }

    /// The playlist with `?query` appended to every URI. An empty query, or one with
    /// characters outside `[A-Za-z0-9-._~=&%+/:]`, gives the bare playlist rather than one a
    /// hostile query could break.
    pub fn with_query(&self, query: &str) -> Bytes {
        if query.is_empty() || !safe_query(query) {
            return self.bare();
        }
        let mut out = Vec::with_capacity(self.text.len() + self.uri_ends.len() * (query.len() + 1));
        let mut from = 0;
        for &end in &self.uri_ends {
            out.extend_from_slice(&self.text[from..end]);
            out.push(b'?');
            out.extend_from_slice(query.as_bytes());
            from = end;
        }
        out.extend_from_slice(&self.text[from..]);
        Bytes::from(out)
    }
}

/// Text of bytes that were built from `str` pieces only (so always UTF-8).
fn into_string(b: Bytes) -> String {
    String::from_utf8(b.to_vec()).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into())
}

impl Segmenter {
    /// The media playlist. `skip` is the client's `_HLS_skip=YES`; it is honored only when
    /// delta updates are on (and only skips what is older than CAN-SKIP-UNTIL).
    pub fn playlist(&self, skip: bool) -> String {
        into_string(self.playlist_template(skip).bare())
    }

    /// The playlist with `query` (e.g. `token=abc`) appended to every URI, for clients that
    /// must carry it on each request. A query with characters outside
    /// `[A-Za-z0-9-._~=&%+/:]` is ignored rather than allowed to break the playlist.
    pub fn playlist_with_query(&self, skip: bool, query: &str) -> String {
        into_string(self.playlist_template(skip).with_query(query))
    }

    /// The playlist rendered once, for many clients with different queries
    /// ([`PlaylistTemplate::with_query`]).
    pub fn playlist_template(&self, skip: bool) -> PlaylistTemplate {
        let mut uri_ends = Vec::with_capacity(64);
        let text = self.render(skip, &mut uri_ends);
        PlaylistTemplate {
            text: Bytes::from(text.into_bytes()),
            uri_ends,
        }
    }

    /// Appends the file name of `name` to `p` and records where its query would go.
    fn push_name(&self, p: &mut String, name: Name, uri_ends: &mut Vec<usize>) {
        p.push_str(&names::render(self.config.instance, name));
        uri_ends.push(p.len());
    }

    fn render(&self, skip: bool, uri_ends: &mut Vec<usize>) -> String {
        let delta = self.config.delta_updates;
        let skip_until = 6 * self.ceiling;
        let mut p = String::with_capacity(2048);
        // Writing to a String cannot fail; the results below are ignored for that reason.
        let _ = writeln!(p, "#EXTM3U");
        let _ = writeln!(p, "#EXT-X-VERSION:{}", if delta { 9 } else { 6 });
        let _ = writeln!(p, "#EXT-X-TARGETDURATION:{}", self.target_duration_secs);
        let _ = write!(
            p,
            "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK={}",
            // 3x the part target, plus 1 ms so it stays >= 3x even when compared in floating
            // point (3 * 0.2 > 0.6 in binary).
            secs(3 * self.part_target + u64::from(TIMESCALE) / 1000)
        );
        if delta {
            let _ = write!(p, ",CAN-SKIP-UNTIL={}", secs(skip_until));
        }
        p.push('\n');
        let _ = writeln!(p, "#EXT-X-PART-INF:PART-TARGET={}", secs(self.part_target));
        let first_msn = self
            .segments
            .front()
            .or(self.open.as_ref())
            .map_or(self.next_msn, |s| s.msn);
        let _ = writeln!(p, "#EXT-X-MEDIA-SEQUENCE:{first_msn}");
        let _ = writeln!(
            p,
            "#EXT-X-DISCONTINUITY-SEQUENCE:{}",
            self.discontinuity_sequence
        );

        let open = self.open.as_ref().filter(|s| !s.parts.is_empty());
        let listed: Vec<&Segment> = self.segments.iter().chain(open).collect();
        let total: u64 = listed.iter().map(|s| segment_listed_duration(s)).sum();
        // Delta update: skip complete segments that end before the skip boundary.
        let mut skipped = 0;
        if skip && delta {
            let mut start = 0;
            for s in &self.segments {
                if start + s.duration + skip_until > total {
                    break;
                }
                start += s.duration;
                skipped += 1;
            }
        }
        if skipped > 0 {
            let _ = writeln!(p, "#EXT-X-SKIP:SKIPPED-SEGMENTS={skipped}");
        }
        // Parts are listed for segments within three target durations of the live edge.
        let parts_from = total.saturating_sub(3 * self.ceiling);
        let mut start = 0;
        let mut generation = None;
        for (i, s) in listed.iter().enumerate() {
            let end = start + segment_listed_duration(s);
            if i >= skipped {
                if s.discontinuity {
                    let _ = writeln!(p, "#EXT-X-DISCONTINUITY");
                }
                if generation != Some(s.generation) {
                    p.push_str("#EXT-X-MAP:URI=\"");
                    self.push_name(
                        &mut p,
                        Name::Init {
                            generation: s.generation,
                        },
                        uri_ends,
                    );
                    p.push_str("\"\n");
                    generation = Some(s.generation);
                }
                let _ = writeln!(
                    p,
                    "#EXT-X-PROGRAM-DATE-TIME:{}",
                    rfc3339_ms(s.program_date_time_ms)
                );
                let is_open = self.open.as_ref().is_some_and(|o| o.msn == s.msn);
                if end > parts_from || is_open {
                    for part in &s.parts {
                        let _ = write!(p, "#EXT-X-PART:DURATION={},URI=\"", secs(part.duration));
                        self.push_name(&mut p, Name::Part { id: part.id }, uri_ends);
                        p.push('"');
                        if part.independent {
                            p.push_str(",INDEPENDENT=YES");
                        }
                        p.push('\n');
                    }
                }
                if !is_open {
                    let _ = writeln!(p, "#EXTINF:{},", secs(s.duration));
                    self.push_name(&mut p, Name::Segment { msn: s.msn }, uri_ends);
                    p.push('\n');
                }
            }
            start = end;
        }
        p.push_str("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"");
        self.push_name(
            &mut p,
            Name::Part {
                id: self.next_part_id,
            },
            uri_ends,
        );
        p.push_str("\"\n");
        p
    }
}

/// Duration a segment contributes to the playlist: all of it when complete, its finished
/// parts while open.
fn segment_listed_duration(s: &Segment) -> u64 {
    s.parts.iter().map(|p| p.duration).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_ms(1_763_769_600_123), "2025-11-22T00:00:00.123Z");
        assert_eq!(rfc3339_ms(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339_ms(-1), "1969-12-31T23:59:59.999Z");
        // Extremes format without panicking.
        let _ = rfc3339_ms(i64::MAX);
        let _ = rfc3339_ms(i64::MIN);
    }
}
