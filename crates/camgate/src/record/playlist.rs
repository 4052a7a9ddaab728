//! Pure pieces of playback: reading `start`/`end` (RFC 3339 or Unix seconds), merging index
//! rows into time ranges split at gaps, and rendering the VOD HLS playlist (RFC 8216) whose
//! segments are byte ranges of our own files.

use std::fmt::Write;

use super::boxes::FileLayout;
use super::store::ms_rfc3339;
use crate::db::recordings::RecordingFile;

/// Files closer than this (ms) are one range: a file ends where the next begins, give or take
/// a frame's rounding.
pub const GAP_MS: i64 = 1000;

// Shared with snapshots' `?at=` (outputs do not import each other).
pub use crate::timestamps::parse_time;

/// One continuous stretch of recording.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Range {
    pub start_ms: i64,
    pub end_ms: i64,
    pub bytes: u64,
}

/// Rows (oldest first) merged where they touch, clipped to `[from, to)`.
pub fn ranges(files: &[RecordingFile], from: i64, to: i64) -> Vec<Range> {
    let mut out: Vec<Range> = Vec::new();
    for f in files {
        if f.end_ms <= f.start_ms {
            continue; // nothing flushed yet
        }
        match out.last_mut() {
            Some(r) if f.start_ms - r.end_ms <= GAP_MS => {
                r.end_ms = r.end_ms.max(f.end_ms);
                r.bytes += f.bytes;
            }
            _ => out.push(Range {
                start_ms: f.start_ms,
                end_ms: f.end_ms,
                bytes: f.bytes,
            }),
        }
    }
    for r in &mut out {
        r.start_ms = r.start_ms.max(from);
        r.end_ms = r.end_ms.min(to);
    }
    out.retain(|r| r.end_ms > r.start_ms);
    out
}

/// One playlist segment: a run of fragments starting at a sync sample.
#[derive(Clone, Debug, PartialEq)]
struct Segment {
    offset: u64,
    len: u64,
    start_ms: i64,
    seconds: f64,
}

fn segments(file: &RecordingFile, layout: &FileLayout) -> Vec<Segment> {
    let Some(first) = layout.fragments.first() else {
        return Vec::new();
    };
    let mut out: Vec<Segment> = Vec::new();
    for fr in &layout.fragments {
        let secs = fr.duration as f64 / 90_000.0;
        match out.last_mut() {
            Some(s) if !fr.starts_with_sync && s.offset + s.len == fr.offset => {
                s.len += fr.len;
                s.seconds += secs;
            }
            _ => out.push(Segment {
                offset: fr.offset,
                len: fr.len,
                start_ms: file.start_ms + (fr.base_dts.saturating_sub(first.base_dts) / 90) as i64,
                seconds: secs,
            }),
        }
    }
    out
}

/// The VOD playlist over `[from, to)` of these files (with their layouts). `None` when no
/// segment falls in the range. URIs are the files' names, relative to the playlist.
pub fn vod_playlist(files: &[(RecordingFile, FileLayout)], from: i64, to: i64) -> Option<String> {
    let mut body = String::new();
    let mut target = 1.0f64;
    let mut any = false;
    for (file, layout) in files {
        let segs: Vec<Segment> = segments(file, layout)
            .into_iter()
            .filter(|s| {
                let end = s.start_ms + (s.seconds * 1000.0) as i64;
                end > from && s.start_ms < to
            })
            .collect();
        if segs.is_empty() {
            continue;
        }
        if any {
            body.push_str("#EXT-X-DISCONTINUITY\n");
        }
        any = true;
        let name = &file.file_name;
        let _ = writeln!(
            body,
            "#EXT-X-MAP:URI=\"{name}\",BYTERANGE=\"{}@0\"",
            layout.init_len
        );
        let mut previous_end: Option<i64> = None;
        for s in segs {
            // A date at the file's start and wherever the timeline is not continuous.
            if previous_end.is_none_or(|e| (s.start_ms - e).abs() > 50) {
                let _ = writeln!(body, "#EXT-X-PROGRAM-DATE-TIME:{}", ms_rfc3339(s.start_ms));
            }
            previous_end = Some(s.start_ms + (s.seconds * 1000.0) as i64);
            target = target.max(s.seconds);
            let _ = writeln!(body, "#EXTINF:{:.3},", s.seconds);
            let _ = writeln!(body, "#EXT-X-BYTERANGE:{}@{}", s.len, s.offset);
            let _ = writeln!(body, "{name}");
        }
    }
    if !any {
        return None;
    }
    let mut out = String::with_capacity(body.len() + 200);
    out.push_str("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-PLAYLIST-TYPE:VOD\n");
    out.push_str("#EXT-X-INDEPENDENT-SEGMENTS\n");
    let _ = writeln!(
        out,
        "#EXT-X-TARGETDURATION:{}",
        target.round().max(1.0) as u64
    );
    out.push_str("#EXT-X-MEDIA-SEQUENCE:0\n");
    out.push_str(&body);
    out.push_str("#EXT-X-ENDLIST\n");
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::recordings::FileState;
    use crate::record::boxes::Fragment;

    fn row(start: i64, end: i64) -> RecordingFile {
        RecordingFile {
            id: 1,
            stream_path: "cam_1".into(),
            camera_id: "1".into(),
            file_name: format!("{start}.mp4"),
            start_ms: start,
            end_ms: end,
            bytes: 10,
            init_bytes: 700,
            samples: 25,
            codec: "avc1.64001f".into(),
            width: 320,
            height: 240,
            state: FileState::Complete,
        }
    }

    #[test]
    fn times() {
        assert_eq!(parse_time("1700000000").unwrap(), 1_700_000_000_000);
        assert_eq!(parse_time("1700000000.5").unwrap(), 1_700_000_000_500);
        assert_eq!(
            parse_time("2023-11-14T22:13:20Z").unwrap(),
            1_700_000_000_000
        );
        assert_eq!(
            parse_time("2023-11-14T23:13:20 01:00").unwrap(),
            1_700_000_000_000
        );
        for bad in [
            "",
            "yesterday",
            "1.2.3",
            "99999999999999",
            "2023-13-01T00:00:00Z",
        ] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ranges_split_at_gaps_and_are_clipped() {
        let files = [
            row(0, 60_000),
            row(60_040, 120_000),
            row(200_000, 260_000),
            row(300_000, 300_000), // nothing flushed yet
        ];
        let r = ranges(&files, 30_000, 1_000_000);
        assert_eq!(
            r,
            [
                Range {
                    start_ms: 30_000,
                    end_ms: 120_000,
                    bytes: 20
                },
                Range {
                    start_ms: 200_000,
                    end_ms: 260_000,
                    bytes: 10
                },
            ]
        );
        assert!(ranges(&files, 130_000, 190_000).is_empty());
    }

    #[test]
    fn playlist_has_maps_byte_ranges_dates_and_discontinuities() {
        let frag = |offset, base, sync| Fragment {
            offset,
            len: 100,
            base_dts: base,
            duration: 90_000,
            samples: 25,
            starts_with_sync: sync,
        };
        let layout = FileLayout {
            init_len: 700,
            fragments: vec![
                frag(700, 0, true),
                frag(800, 90_000, false),
                frag(900, 180_000, true),
            ],
            whole_len: 1000,
        };
        let files = vec![
            (row(0, 3000), layout.clone()),
            (row(10_000, 13_000), layout),
        ];
        let p = vod_playlist(&files, 0, 100_000).unwrap();
        assert!(p.starts_with("#EXTM3U\n"));
        assert!(p.contains("#EXT-X-PLAYLIST-TYPE:VOD\n"));
        assert!(p.contains("#EXT-X-TARGETDURATION:2\n"));
        assert!(p.contains("#EXT-X-MAP:URI=\"0.mp4\",BYTERANGE=\"700@0\"\n"));
        assert!(p.contains("#EXTINF:2.000,\n#EXT-X-BYTERANGE:200@700\n0.mp4\n"));
        assert!(p.contains("#EXT-X-BYTERANGE:100@900\n"));
        assert_eq!(p.matches("#EXT-X-DISCONTINUITY").count(), 1);
        assert!(p.contains("#EXT-X-PROGRAM-DATE-TIME:1970-01-01T00:00:10.000Z\n"));
        assert!(p.ends_with("#EXT-X-ENDLIST\n"));
        // Only the second file's last segment overlaps this window.
        let p = vod_playlist(&files, 12_500, 12_600).unwrap();
        assert_eq!(p.matches("#EXTINF").count(), 1);
        assert!(vod_playlist(&files, 50_000, 60_000).is_none());
    }
}
