//! Real x264 video written as fragmented MP4 by our `fmp4` writer into two files, read back
//! by `mp4read`, laid out by `progressive` with no payload copied, assembled from the two
//! files' byte ranges, and read by ffprobe: every packet with its timestamps, size and key
//! flag, the duration, every frame decoding, and moov before mdat.

mod common;

use std::path::Path;

use common::{X264_NO_B_FRAMES, field, probe_rows, run, testsrc_frames, x264_b_frame_frames};
use media::mp4read::{self, TopBox, top_level_boxes};
use media::progressive::{Piece, Progressive, SampleRef, TrackInput};
use media::{Codec, Frame, fmp4};

const TICKS: i64 = 3600;

/// Writes `frames` as one fMP4 file (init + fragments of 10); `end_dts` ends the last one.
fn write_fmp4(path: &Path, frames: &[Frame], end_dts: i64) {
    let mut file = fmp4::init_segment(frames[0].video().unwrap())
        .unwrap()
        .to_vec();
    for (seq, chunk) in frames.chunks(10).enumerate() {
        let end = frames.get((seq + 1) * 10).map_or(end_dts, |f| f.dts);
        for c in fmp4::fragment(seq as u32 + 1, chunk, end).unwrap() {
            file.extend_from_slice(&c);
        }
    }
    std::fs::write(path, file).unwrap();
}

/// Splits `frames` over two fMP4 files, lays them out as one progressive MP4 and writes it
/// to `out` by reading each piece from its source file. Returns the layout.
fn export(dir: &Path, frames: &[Frame], out: &Path) -> Progressive {
    let half = frames.len() / 2;
    let end = frames.last().unwrap().dts + TICKS;
    let paths = [dir.join("a.mp4"), dir.join("b.mp4")];
    write_fmp4(&paths[0], &frames[..half], frames[half].dts);
    write_fmp4(&paths[1], &frames[half..], end);
    let sources: Vec<Vec<u8>> = paths.iter().map(|p| std::fs::read(p).unwrap()).collect();

    let mut track = None;
    for (i, data) in sources.iter().enumerate() {
        let c = mp4read::read(data);
        assert_eq!(c.end.tail, None);
        let init = c.init.unwrap();
        let v = init.video().unwrap();
        let t = track.get_or_insert_with(|| {
            let first = c.fragments[0].tracks[0].base_decode_time;
            TrackInput::from_init(v, first)
        });
        assert_eq!(t.sample_entry, v.sample_entry, "same stream in both files");
        for f in &c.fragments {
            let run = f.track(v.track_id).unwrap();
            t.samples
                .extend(run.samples.iter().map(|s| SampleRef::from_sample(i, s)));
        }
    }
    let p = Progressive::build(&[track.unwrap()]).unwrap();
    let mut file = Vec::with_capacity(p.len() as usize);
    for piece in p.pieces(0..p.len()) {
        match piece {
            Piece::Header(r) => file.extend_from_slice(&p.header()[r]),
            Piece::Source {
                source,
                offset,
                len,
            } => file.extend_from_slice(&sources[source][offset as usize..][..len as usize]),
        }
    }
    assert_eq!(file.len() as u64, p.len());
    let kinds: Vec<[u8; 4]> = top_level_boxes(&file)
        .map(|b| match b {
            TopBox::Complete { header, .. } => header.kind,
            other => panic!("not a whole box: {other:?}"),
        })
        .collect();
    assert_eq!(kinds, [*b"ftyp", *b"moov", *b"mdat"], "moov before mdat");
    std::fs::write(out, &file).unwrap();
    p
}

fn duration_secs(path: &Path) -> f64 {
    let out = run(
        "ffprobe",
        &[
            "-v",
            "error",
            "-show_entries",
            "format=duration",
            "-of",
            "csv=p=0",
            path.to_str().unwrap(),
        ],
    );
    out.trim().parse().unwrap()
}

/// Packets in decode order and frames in display order match `frames`, shifted so the
/// first displayed frame is at 0 (what the edit list says).
fn assert_probe_matches(path: &Path, frames: &[Frame]) {
    let shift = frames.iter().map(|f| f.pts).min().unwrap();
    let packets = probe_rows(path, "packet", "pts,dts,size,flags");
    assert_eq!(packets.len(), frames.len(), "packet count");
    for (p, f) in packets.iter().zip(frames) {
        assert_eq!(field(p, "pts"), f.pts - shift, "pts of {p:?}");
        assert_eq!(field(p, "dts"), f.dts - shift, "dts of {p:?}");
        assert_eq!(field(p, "size"), f.data.len() as i64);
        assert_eq!(p["flags"].starts_with('K'), f.keyframe, "key flag of {p:?}");
    }
    let keys = frames.iter().filter(|f| f.keyframe).count();
    assert_eq!(
        packets
            .iter()
            .filter(|p| p["flags"].starts_with('K'))
            .count(),
        keys
    );
    let decoded = probe_rows(path, "frame", "pts,key_frame");
    assert_eq!(decoded.len(), frames.len(), "every frame decodes");
    let mut display: Vec<i64> = frames.iter().map(|f| f.pts - shift).collect();
    display.sort();
    for (d, pts) in decoded.iter().zip(&display) {
        assert_eq!(field(d, "pts"), *pts, "display order");
    }
    let expect = frames.len() as f64 * TICKS as f64 / 90_000.0;
    let got = duration_secs(path);
    assert!(
        (got - expect).abs() < 0.001,
        "duration {got} s, want {expect}"
    );
}

#[test]
fn x264_clip_without_b_frames() {
    let dir = tempfile::tempdir().unwrap();
    // Decode times start away from 0, as a recording's do.
    let frames: Vec<Frame> = testsrc_frames(dir.path(), Codec::H264, 4, X264_NO_B_FRAMES, TICKS)
        .into_iter()
        .map(|mut f| {
            f.dts += 900_000;
            f.pts += 900_000;
            f
        })
        .collect();
    assert_eq!(frames.len(), 100);
    let out = dir.path().join("export.mp4");
    let p = export(dir.path(), &frames, &out);
    assert_eq!(p.duration(), (100 * TICKS as u64, 90_000));
    assert_probe_matches(&out, &frames);
}

#[test]
fn x264_clip_with_b_frames_keeps_its_timing() {
    let dir = tempfile::tempdir().unwrap();
    let frames = x264_b_frame_frames(dir.path());
    assert!(frames.iter().any(|f| f.pts != f.dts), "B-frames present");
    let out = dir.path().join("export.mp4");
    export(dir.path(), &frames, &out);
    assert_probe_matches(&out, &frames);
}
