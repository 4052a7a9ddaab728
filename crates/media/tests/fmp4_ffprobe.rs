//! Round trip through an independent parser: real clips from ffmpeg, muxed by our fmp4 module,
//! decoded by ffprobe. Every frame must come back, in order, with our timestamps and key flags.

mod common;

use std::path::Path;

use common::{X264_NO_B_FRAMES, field, probe_rows, testsrc_frames, x264_b_frame_frames};
use media::{Codec, Frame, fmp4};

/// 90 kHz ticks per frame at 25 fps.
const TICKS: i64 = 3600;

/// Muxes `frames` into init + fragments of `per_fragment` frames and writes the file.
fn write_fmp4(path: &Path, frames: &[Frame], per_fragment: usize, last_duration: i64) {
    let mut file = fmp4::init_segment(frames[0].video().unwrap())
        .unwrap()
        .to_vec();
    for (seq, chunk) in frames.chunks(per_fragment).enumerate() {
        let start = seq * per_fragment;
        let end_dts = frames
            .get(start + chunk.len())
            .map_or(chunk.last().unwrap().dts + last_duration, |f| f.dts);
        let parts = fmp4::fragment(seq as u32 + 1, chunk, end_dts).unwrap();
        for (i, p) in parts.iter().enumerate().skip(1) {
            // Payload chunks are the frames' own buffers, not copies.
            assert_eq!(p.as_ptr(), chunk[i - 1].data.as_ptr());
        }
        parts.iter().for_each(|p| file.extend_from_slice(p));
    }
    std::fs::write(path, file).unwrap();
}

/// Checks decoded frames (display order) and packets (decode order) against what we muxed.
fn assert_probe_matches(path: &Path, frames: &[Frame]) {
    let packets = probe_rows(path, "packet", "pts,dts,size,flags");
    assert_eq!(packets.len(), frames.len(), "packet count");
    for (p, f) in packets.iter().zip(frames) {
        assert_eq!(field(p, "dts"), f.dts, "dts of {p:?}");
        assert_eq!(field(p, "pts"), f.pts, "pts of {p:?}");
        assert_eq!(field(p, "size"), f.data.len() as i64);
        assert_eq!(p["flags"].starts_with('K'), f.keyframe, "key flag of {p:?}");
    }
    let decoded = probe_rows(path, "frame", "pts,key_frame");
    assert_eq!(decoded.len(), frames.len(), "every frame decodes");
    let mut display: Vec<(i64, bool)> = frames.iter().map(|f| (f.pts, f.keyframe)).collect();
    display.sort();
    for (d, (pts, key)) in decoded.iter().zip(&display) {
        assert_eq!(field(d, "pts"), *pts, "display order");
        assert_eq!(field(d, "key_frame") == 1, *key);
    }
}

#[test]
fn h264_without_b_frames() {
    let dir = tempfile::tempdir().unwrap();
    let frames = testsrc_frames(dir.path(), Codec::H264, 4, X264_NO_B_FRAMES, TICKS);
    assert_eq!(frames.len(), 100);
    assert_eq!(frames.iter().filter(|f| f.keyframe).count(), 4);
    assert_eq!(frames[0].video().unwrap().rfc6381, "avc1.64000d");
    let out = dir.path().join("out.mp4");
    write_fmp4(&out, &frames, 7, TICKS);
    assert_probe_matches(&out, &frames);
}

#[test]
fn h264_with_b_frames_keeps_composition_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let frames = x264_b_frame_frames(dir.path());
    assert_eq!(frames.len(), 100);
    assert!(
        frames.windows(2).any(|w| w[1].pts < w[0].pts),
        "B-frames present"
    );
    assert!(
        frames.iter().any(|f| f.pts != f.dts),
        "composition offsets present"
    );
    let out = dir.path().join("out.mp4");
    write_fmp4(&out, &frames, 10, TICKS);
    assert_probe_matches(&out, &frames);
}

#[test]
fn h265_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let x265 = [
        "-c:v",
        "libx265",
        "-x265-params",
        "keyint=25:bframes=0:log-level=error",
        "-f",
        "hevc",
    ];
    let frames = testsrc_frames(dir.path(), Codec::H265, 2, &x265, TICKS);
    assert_eq!(frames.len(), 50);
    assert!(frames[0].keyframe && frames[25].keyframe);
    assert!(frames[0].video().unwrap().rfc6381.starts_with("hvc1.1.6.L"));
    let out = dir.path().join("out.mp4");
    write_fmp4(&out, &frames, 5, TICKS);
    assert_probe_matches(&out, &frames);
}

/// AAC frames of `seconds` of a 440 Hz tone encoded by ffmpeg (AAC-LC, 48 kHz, mono), taken
/// out of their ADTS headers, with the AudioSpecificConfig those headers describe.
fn aac_frames(dir: &Path, seconds: u32) -> Vec<Frame> {
    let adts = dir.join("tone.aac");
    common::run(
        "ffmpeg",
        &[
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000",
            "-t",
            &seconds.to_string(),
            "-ac",
            "1",
            "-c:a",
            "aac",
            "-f",
            "adts",
            adts.to_str().unwrap(),
        ],
    );
    let data = std::fs::read(&adts).unwrap();
    let (mut at, mut frames) = (0usize, Vec::new());
    let mut params = None;
    while at + 7 <= data.len() {
        let h = &data[at..at + 7];
        assert_eq!((h[0], h[1] & 0xf0), (0xff, 0xf0), "ADTS sync at {at}");
        let header_len = if h[1] & 1 == 1 { 7 } else { 9 };
        let len = (usize::from(h[3] & 3) << 11) | (usize::from(h[4]) << 3) | usize::from(h[5] >> 5);
        // ADTS profile is the object type minus one; then frequency index and channels.
        let object_type = (h[2] >> 6) + 1;
        let index = (h[2] >> 2) & 0xf;
        let channels = ((h[2] & 1) << 2) | (h[3] >> 6);
        let asc = [
            object_type << 3 | index >> 1,
            (index & 1) << 7 | channels << 3,
        ];
        let p = params
            .get_or_insert_with(|| std::sync::Arc::new(media::AudioParams::aac(&asc).unwrap()))
            .clone();
        let mut f = media::test_util::audio_frame(&p, 0, frames.len() as i64 * 1920);
        f.data = bytes::Bytes::copy_from_slice(&data[at + header_len..at + len]);
        frames.push(f);
        at += len;
    }
    frames
}

/// Video and AAC in one file as the segmenter writes them (both tracks in every fragment):
/// ffprobe sees an h264 and an aac stream at 48 kHz, every audio packet at our times.
#[test]
fn h264_with_aac() {
    let dir = tempfile::tempdir().unwrap();
    let video = testsrc_frames(dir.path(), Codec::H264, 2, X264_NO_B_FRAMES, TICKS);
    let audio = aac_frames(dir.path(), 2);
    assert!(audio.len() > 90, "{} AAC frames", audio.len());
    let a = audio[0].audio().unwrap().clone();
    assert_eq!(a.rfc6381().as_deref(), Some("mp4a.40.2"));
    let mut file = fmp4::init_segment_av(video[0].video().unwrap(), Some(&a))
        .unwrap()
        .to_vec();
    // Fragments of 5 video frames (200 ms) with the audio of the same time span.
    let (mut ai, mut written) = (0, Vec::new());
    for (seq, chunk) in video.chunks(5).enumerate() {
        let end = chunk.last().unwrap().dts + TICKS;
        let from = ai;
        while ai + 1 < audio.len() && audio[ai].dts < end {
            ai += 1;
        }
        let runs = [
            fmp4::TrackRun {
                track_id: 1,
                frames: chunk,
                end_dts: end,
            },
            fmp4::TrackRun {
                track_id: 2,
                frames: &audio[from..ai],
                end_dts: audio[ai].dts,
            },
        ];
        written.extend_from_slice(&audio[from..ai]);
        for c in fmp4::fragment_tracks(seq as u32 + 1, &runs).unwrap() {
            file.extend_from_slice(&c);
        }
    }
    let out = dir.path().join("av.mp4");
    std::fs::write(&out, file).unwrap();
    let streams = common::run(
        "ffprobe",
        &[
            "-v",
            "error",
            "-show_entries",
            "stream=codec_type,codec_name,sample_rate,channels",
            "-of",
            "compact=p=0",
            out.to_str().unwrap(),
        ],
    );
    assert!(
        streams.contains("codec_name=h264|codec_type=video"),
        "{streams}"
    );
    assert!(
        streams.contains("codec_name=aac|codec_type=audio|sample_rate=48000|channels=1"),
        "{streams}"
    );
    let packets = common::run(
        "ffprobe",
        &[
            "-v",
            "error",
            "-select_streams",
            "a:0",
            "-show_entries",
            "packet=pts,size",
            "-of",
            "csv=p=0",
            out.to_str().unwrap(),
        ],
    );
    let got: Vec<(i64, usize)> = packets
        .lines()
        .map(|l| {
            let (pts, size) = l.split_once(',').unwrap();
            (pts.parse().unwrap(), size.parse().unwrap())
        })
        .collect();
    let want: Vec<(i64, usize)> = written.iter().map(|f| (f.pts, f.data.len())).collect();
    assert_eq!(got, want, "audio packets at our times, whole");
    // The video still comes back frame for frame.
    assert_probe_matches(&out, &video);
}
