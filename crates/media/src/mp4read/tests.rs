//! Files written by our own `fmp4` writer, read back; cut at every byte, read again.

use std::sync::Arc;

use bytes::Bytes;

use super::*;
use crate::test_util::{FRAME_TICKS, h264_params, h265_params, video_frame};
use crate::{CodecParams, Frame, fmp4};

fn frames(params: &Arc<CodecParams>, n: usize) -> Vec<Frame> {
    (0..n)
        .map(|i| {
            let dts = 1000 + i as i64 * FRAME_TICKS;
            let pts = dts + if i % 3 == 1 { 2 * FRAME_TICKS } else { 0 };
            let data = Bytes::from(vec![i as u8; 10 + i * 7]);
            video_frame(data, pts, dts, i % 10 == 0, params)
        })
        .collect()
}

/// init + fragments of `per` frames; returns the file and each fragment's start offset.
fn write(frames: &[Frame], per: usize) -> (Vec<u8>, Vec<usize>) {
    let mut file = fmp4::init_segment(frames[0].video().unwrap())
        .unwrap()
        .to_vec();
    let mut starts = Vec::new();
    for (seq, chunk) in frames.chunks(per).enumerate() {
        let last = chunk.last().unwrap();
        let end = frames
            .get((seq + 1) * per)
            .map_or(last.dts + FRAME_TICKS, |f| f.dts);
        starts.push(file.len());
        for p in fmp4::fragment(seq as u32 + 1, chunk, end).unwrap() {
            file.extend_from_slice(&p);
        }
    }
    (file, starts)
}

fn samples(c: &FileContents) -> Vec<Sample> {
    c.fragments
        .iter()
        .flat_map(|f| f.tracks[0].samples.clone())
        .collect()
}

#[test]
fn reads_back_what_fmp4_wrote() {
    for params in [h264_params(), h265_params()] {
        let frames = frames(&params, 23);
        let (file, starts) = write(&frames, 5);
        let c = read(&file);
        assert_eq!(
            c.end,
            End {
                valid_len: file.len() as u64,
                tail: None
            }
        );
        let init = c.init.as_ref().unwrap();
        let v = init.video().unwrap();
        assert_eq!(
            (v.track_id, v.timescale, v.width, v.height),
            (1, 90_000, 320, 240)
        );
        assert_eq!(v.codec, Some(params.codec));
        assert_eq!(v.decoder_config, params.decoder_config().unwrap());
        assert_eq!(&init.moov[4..8], b"moov");
        assert_eq!(c.fragments.len(), 5);
        for (i, f) in c.fragments.iter().enumerate() {
            assert_eq!(f.offset, starts[i] as u64);
            assert_eq!(f.sequence_number, i as u32 + 1);
        }
        let got = samples(&c);
        assert_eq!(got.len(), frames.len());
        for (s, f) in got.iter().zip(&frames) {
            assert_eq!(&file[s.offset as usize..][..s.size as usize], &f.data[..]);
            assert_eq!(s.dts as i64, f.dts);
            assert_eq!(s.pts(), f.pts);
            assert_eq!(s.keyframe(), f.keyframe);
            assert_eq!(s.duration as i64, FRAME_TICKS);
        }
    }
}

#[test]
fn a_cut_file_keeps_its_complete_fragments() {
    let frames = frames(&h264_params(), 12);
    let (file, starts) = write(&frames, 4);
    let init_len = starts[0];
    let mut boundaries = starts.clone();
    boundaries.push(file.len());
    for cut in 0..=file.len() {
        let c = read(&file[..cut]);
        let whole = boundaries.iter().filter(|&&b| b <= cut).count();
        if cut < init_len {
            assert!(c.init.is_none(), "cut {cut}");
            // A whole ftyp is a complete top-level box; the moov is not there yet.
            let ftyp = u32::from_be_bytes(file[..4].try_into().unwrap()) as usize;
            assert_eq!(c.end.valid_len as usize, if cut >= ftyp { ftyp } else { 0 });
            assert!(c.end.tail.is_some(), "cut {cut}: no moov is a tail");
            continue;
        }
        // Complete fragments are those whose end is at or before the cut.
        let complete = whole - 1;
        assert_eq!(c.fragments.len(), complete, "cut {cut}");
        assert_eq!(c.end.valid_len as usize, boundaries[complete], "cut {cut}");
        assert_eq!(c.end.tail.is_none(), boundaries.contains(&cut), "cut {cut}");
        if let Some(t) = &c.end.tail {
            assert_eq!(t.offset as usize, boundaries[complete], "cut {cut}: {t:?}");
        }
    }
}

#[test]
fn garbage_after_the_last_fragment_is_a_tail() {
    let frames = frames(&h264_params(), 8);
    let (mut file, _) = write(&frames, 4);
    let good = file.len() as u64;
    file.extend_from_slice(&[0u8; 4096]);
    let c = read(&file);
    assert_eq!(c.fragments.len(), 2);
    assert_eq!(c.end.valid_len, good);
    assert!(c.end.tail.unwrap().reason.contains("zero-filled"));
}

#[test]
fn scanner_reads_headers_and_moofs_only() {
    let frames = frames(&h264_params(), 40);
    let (file, _) = write(&frames, 10);
    let payload: usize = frames.iter().map(|f| f.data.len()).sum();
    let mut scan = Scanner::new(file.len() as u64);
    let mut asked = 0;
    loop {
        match scan.step() {
            Step::Read { offset, len } => {
                asked += len;
                scan.feed(&file[offset as usize..][..len]);
            }
            Step::End(end) => {
                assert!(end.tail.is_none());
                break;
            }
            _ => {}
        }
    }
    // Box headers are asked for 16 bytes at a time: at most 16 bytes a box more than the
    // file less its payload.
    assert!(
        asked <= file.len() - payload + 16 * 10,
        "read {asked} of {}",
        file.len()
    );
}

/// A moof written by hand: tfhd with default size and duration, no tfdt, two truns (the
/// second without data_offset), base-data-offset given explicitly.
#[test]
fn defaults_and_runs_without_data_offset() {
    let init = fmp4::init_segment(&h264_params()).unwrap();
    let init = read(&init).init.unwrap();
    let mut traf = Vec::new();
    let tfhd: &[u8] = &[
        0, 0, 0, 0x19, // version 0, flags: base offset, duration, size
        0, 0, 0, 1, // track 1
        0, 0, 0, 0, 0, 0, 0x10, 0, // base_data_offset 4096
        0, 0, 0x0e, 0x10, // default duration 3600
        0, 0, 0, 100, // default size 100
    ];
    boxed(&mut traf, b"tfhd", tfhd);
    boxed(
        &mut traf,
        b"trun",
        &[0, 0, 0, 0x05, 0, 0, 0, 2, 0, 0, 0, 8, 0, 0, 0, 0],
    );
    boxed(&mut traf, b"trun", &[0, 0, 0, 0, 0, 0, 0, 1]);
    let mut moof_body = Vec::new();
    boxed(&mut moof_body, b"mfhd", &[0, 0, 0, 0, 0, 0, 0, 7]);
    boxed(&mut moof_body, b"traf", &traf);
    let mut moof = Vec::new();
    boxed(&mut moof, b"moof", &moof_body);
    let f = Fragment::parse(&moof, 500, &init, |_| 90_000).unwrap();
    let s = &f.tracks[0].samples;
    assert_eq!(f.sequence_number, 7);
    assert_eq!(
        s.iter()
            .map(|s| (s.offset, s.dts, s.keyframe()))
            .collect::<Vec<_>>(),
        [
            (4104, 90_000, true),
            (4204, 93_600, true),
            (4304, 97_200, true)
        ]
    );
    assert_eq!(f.data_range(), Some(4104..4404));
    // An unknown track is refused, not guessed.
    // moof header, mfhd, traf header, tfhd header, version/flags: then the track id.
    assert_eq!(&moof[44..48], &[0, 0, 0, 1]);
    moof[47] = 9;
    assert!(Fragment::parse(&moof, 500, &init, |_| 0).is_err());
}

fn boxed(out: &mut Vec<u8>, kind: &[u8; 4], body: &[u8]) {
    out.extend_from_slice(&(body.len() as u32 + 8).to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(body);
}
