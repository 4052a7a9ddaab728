use super::*;
use crate::http::range::PieceMap;
use media::mp4read::SampleDefaults;

const NON_SYNC: u32 = 0x0001_0000;

fn track(entry: &[u8]) -> InitTrack {
    let mut sample_entry = Vec::from((8 + entry.len() as u32).to_be_bytes());
    sample_entry.extend_from_slice(b"avc1");
    sample_entry.extend_from_slice(entry);
    InitTrack {
        track_id: 1,
        handler: *b"vide",
        timescale: 90_000,
        width: 320,
        height: 240,
        sample_entry_kind: *b"avc1",
        sample_entry: Bytes::from(sample_entry),
        codec: None,
        decoder_config: Bytes::new(),
        defaults: SampleDefaults {
            sample_description_index: 1,
            duration: 0,
            size: 0,
            flags: 0,
        },
    }
}

fn row(id: i64, start_ms: i64, state: FileState) -> RecordingFile {
    RecordingFile {
        id,
        stream_path: "cam_1".into(),
        camera_id: "1".into(),
        file_name: format!("{start_ms}.mp4"),
        start_ms,
        end_ms: start_ms + 4000,
        bytes: 100_000,
        init_bytes: 700,
        samples: 100,
        codec: "avc1".into(),
        width: 320,
        height: 240,
        state,
    }
}

/// A file of `seconds` at 25 fps with a keyframe every second, starting at `start_ms`.
fn file(id: i64, start_ms: i64, seconds: u64, entry: &[u8]) -> (Source, Option<Scanned>) {
    let samples = (0..seconds * 25)
        .map(|n| Sample {
            offset: 1000 + n * 100,
            size: 100,
            dts: 7_000_000 + n * 3600,
            duration: 3600,
            composition_offset: 0,
            flags: if n % 25 == 0 { 0 } else { NON_SYNC },
        })
        .collect();
    (
        Source {
            row: row(id, start_ms, FileState::Complete),
            path: PathBuf::from(format!("/r/{start_ms}.mp4")),
        },
        Some(Scanned {
            track: track(entry),
            samples,
        }),
    )
}

#[test]
fn clips_to_the_range_from_the_keyframe_before_start() {
    let files = [file(1, 10_000, 4, b""), file(2, 14_000, 4, b"")];
    // 11.5 s .. 16.2 s: from the keyframe at 11 s to the last frame before 16.2 s.
    let p = plan("cam_1", &files, 11_500, 16_200).unwrap();
    assert_eq!(p.first_ms, 11_000);
    assert_eq!(p.samples, 3 * 25 + 2 * 25 + 5);
    assert_eq!(p.end_ms, 16_200);
    assert_eq!(p.paths.len(), 2);
    assert!(!p.cut_at_change);
    assert!(p.complete);
    let (d, ts) = p.progressive.duration();
    assert_eq!(d, p.samples as u64 * 3600);
    assert_eq!(ts, 90_000);
    assert_eq!(
        file_name("cam_1", p.first_ms),
        "cam_1_1970-01-01T00-00-11.000Z.mp4"
    );
}

#[test]
fn nothing_in_range_and_gaps() {
    let files = [file(1, 10_000, 4, b""), file(2, 30_000, 4, b"")];
    assert_eq!(
        plan("cam_1", &files, 0, 9_000).err(),
        Some(NoExport::Nothing)
    );
    assert_eq!(
        plan("cam_1", &files, 15_000, 29_000).err(),
        Some(NoExport::Nothing)
    );
    // Across the gap the samples follow each other.
    let p = plan("cam_1", &files, 12_000, 31_000).unwrap();
    assert_eq!(p.samples, 2 * 25 + 25);
    // A file that could not be read is left out.
    let files = [file(1, 10_000, 4, b""), (file(2, 14_000, 4, b"").0, None)];
    assert_eq!(plan("cam_1", &files, 10_000, 18_000).unwrap().samples, 100);
}

#[test]
fn a_codec_change_ends_the_export() {
    let files = [file(1, 10_000, 4, b""), file(2, 14_000, 4, b"x")];
    let p = plan("cam_1", &files, 10_000, 18_000).unwrap();
    assert_eq!(p.samples, 100);
    assert!(p.cut_at_change);
    // Starting inside the second run exports it.
    let p = plan("cam_1", &files, 15_000, 18_000).unwrap();
    assert_eq!(p.samples, 75);
    assert!(!p.cut_at_change);
}

#[test]
fn the_etag_follows_the_request_and_the_files() {
    let files = [file(1, 10_000, 4, b""), file(2, 14_000, 4, b"")];
    let tag = |files: &[(Source, Option<Scanned>)], from, to| {
        plan("cam_1", files, from, to).unwrap().etag
    };
    let a = tag(&files, 10_000, 18_000);
    assert_eq!(a, tag(&files, 10_000, 18_000));
    assert_ne!(a, tag(&files, 10_000, 17_000));
    // A file that grew past the range keeps the tag; one replaced under its name does not.
    let mut grown = [file(1, 10_000, 4, b""), file(2, 14_000, 6, b"")];
    grown[1].0.row.bytes += 1000;
    assert_eq!(a, tag(&grown, 10_000, 18_000));
    let mut replaced = [file(1, 10_000, 4, b""), file(2, 14_000, 4, b"")];
    replaced[1].0.row.id = 3;
    assert_ne!(a, tag(&replaced, 10_000, 18_000));
    // Other samples: another tag.
    let mut other = [file(1, 10_000, 4, b""), file(2, 14_000, 4, b"")];
    if let Some(sc) = other[1].1.as_mut() {
        sc.samples[3].size = 99;
    }
    assert_ne!(a, tag(&other, 10_000, 18_000));
    assert_ne!(a, plan("cam_2", &files, 10_000, 18_000).unwrap().etag);
}

#[test]
fn the_map_covers_every_byte_from_header_and_files() {
    let files = [file(1, 10_000, 2, b""), file(2, 12_000, 2, b"")];
    let p = plan("cam_1", &files, 10_000, 14_000).unwrap();
    let header_len = p.progressive.header().len() as u64;
    let map = ExportMap::new(Arc::new(p));
    let len = map.len();
    assert_eq!(len, header_len + 100 * 100);
    for r in [
        0..len,
        5..header_len + 150,
        header_len + 4990..header_len + 5010,
    ] {
        let pieces = map.pieces(r.clone());
        assert_eq!(pieces.iter().map(|p| p.len()).sum::<u64>(), r.end - r.start);
    }
    // The second file's samples start right after the first's 50.
    let at = header_len + 50 * 100;
    let pieces = map.pieces(at..at + 10);
    assert_eq!(
        pieces,
        [range::Piece::File {
            path: Arc::new(PathBuf::from("/r/12000.mp4")),
            offset: 1000,
            len: 10
        }]
    );
}

#[test]
fn the_cache_keys_on_the_rows_read() {
    let files = [file(1, 10_000, 4, b""), file(2, 14_000, 4, b"")];
    let rows: Vec<RecordingFile> = files.iter().map(|f| f.0.row.clone()).collect();
    let cache = PlanCache::default();
    let key = PlanCache::key("cam_1", 10_000, 18_000, &rows);
    assert!(cache.get(&key).is_none());
    cache.put(
        key.clone(),
        Arc::new(plan("cam_1", &files, 10_000, 18_000).unwrap()),
    );
    assert_eq!(cache.get(&key).unwrap().samples, 200);
    let mut grown = rows.clone();
    grown[1].bytes += 1;
    assert!(
        cache
            .get(&PlanCache::key("cam_1", 10_000, 18_000, &grown))
            .is_none()
    );
    for i in 0..CACHED_PLANS as i64 {
        let k = PlanCache::key("cam_1", i, 18_000, &rows);
        cache.put(k, Arc::new(plan("cam_1", &files, 10_000, 18_000).unwrap()));
    }
    assert!(cache.get(&key).is_none(), "the oldest plan is dropped");
}
