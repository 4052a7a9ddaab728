//! Whatever frames `fmp4` writes, `mp4read` gives back exactly: every sample's bytes at its
//! offset, its decode and presentation times, its duration and key flag. A file cut anywhere
//! keeps exactly its complete fragments, and arbitrary bytes never panic the reader.

use std::sync::Arc;

use bytes::Bytes;
use media::test_util::{h264_params, h265_params, video_frame};
use media::{CodecParams, Frame, fmp4, mp4read};
use proptest::prelude::*;

/// (size, duration, composition offset, keyframe) of one frame.
type FrameSpec = (usize, u32, i32, bool);

/// The frames, how many go in each fragment (cycled), and whether the stream is H.265.
fn stream() -> impl Strategy<Value = (Vec<FrameSpec>, Vec<usize>, bool)> {
    (
        prop::collection::vec(
            (1usize..300, 1u32..10_000, -3000i32..20_000, any::<bool>()),
            1..60,
        ),
        prop::collection::vec(1usize..12, 1..20),
        any::<bool>(),
    )
}

fn frames(spec: &[FrameSpec], params: &Arc<CodecParams>) -> (Vec<Frame>, i64) {
    // Start late enough that a negative composition offset keeps pts >= 0.
    let mut dts = 90_000i64;
    let frames = spec
        .iter()
        .enumerate()
        .map(|(i, &(size, duration, cto, key))| {
            let data = Bytes::from((0..size).map(|b| (b + i * 7) as u8).collect::<Vec<_>>());
            let f = video_frame(data, dts + i64::from(cto), dts, key || i == 0, params);
            dts += i64::from(duration);
            f
        })
        .collect();
    (frames, dts)
}

/// Writes init + fragments split by `cuts` (frame counts); returns the file and where each
/// fragment ends.
fn write(frames: &[Frame], end_dts: i64, cuts: &[usize]) -> (Vec<u8>, Vec<usize>) {
    let mut file = fmp4::init_segment(frames[0].video().unwrap())
        .unwrap()
        .to_vec();
    let mut ends = vec![file.len()];
    let (mut at, mut seq, mut cut) = (0, 1, cuts.iter().cycle());
    while at < frames.len() {
        let n = (*cut.next().unwrap()).min(frames.len() - at);
        let next = frames.get(at + n).map_or(end_dts, |f| f.dts);
        for c in fmp4::fragment(seq, &frames[at..at + n], next).unwrap() {
            file.extend_from_slice(&c);
        }
        ends.push(file.len());
        at += n;
        seq += 1;
    }
    (file, ends)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn reads_back_exactly_what_was_written((spec, cuts, hevc) in stream()) {
        let params = if hevc { h265_params() } else { h264_params() };
        let (frames, end_dts) = frames(&spec, &params);
        let (file, ends) = write(&frames, end_dts, &cuts);
        let c = mp4read::read(&file);
        prop_assert_eq!(c.end.tail.clone(), None);
        prop_assert_eq!(c.end.valid_len, file.len() as u64);
        let init = c.init.as_ref().unwrap();
        let video = init.video().unwrap();
        prop_assert_eq!(video.codec, Some(params.codec));
        prop_assert_eq!((video.width, video.height), (params.width, params.height));
        prop_assert_eq!(&video.decoder_config, &params.decoder_config().unwrap());
        prop_assert_eq!(c.fragments.len(), ends.len() - 1);
        let samples: Vec<_> = c.fragments.iter().flat_map(|f| f.tracks[0].samples.clone()).collect();
        prop_assert_eq!(samples.len(), frames.len());
        for (i, (s, f)) in samples.iter().zip(&frames).enumerate() {
            let bytes = &file[s.offset as usize..][..s.size as usize];
            prop_assert_eq!(bytes, &f.data[..], "payload of sample {}", i);
            prop_assert_eq!(s.dts as i64, f.dts);
            prop_assert_eq!(s.pts(), f.pts);
            prop_assert_eq!(i64::from(s.duration), spec[i].1 as i64);
            prop_assert_eq!(s.keyframe(), f.keyframe);
        }
    }

    #[test]
    fn a_cut_keeps_the_complete_fragments((spec, cuts, _) in stream(), at in any::<prop::sample::Index>()) {
        let (frames, end_dts) = frames(&spec, &h264_params());
        let (file, ends) = write(&frames, end_dts, &cuts);
        let cut = at.index(file.len() + 1);
        let c = mp4read::read(&file[..cut]);
        if cut < ends[0] {
            prop_assert!(c.init.is_none() && c.end.tail.is_some());
        } else {
            let complete = ends.iter().filter(|&&e| e <= cut).count() - 1;
            prop_assert_eq!(c.fragments.len(), complete);
            prop_assert_eq!(c.end.valid_len as usize, ends[complete]);
            prop_assert_eq!(c.end.tail.is_none(), ends.contains(&cut));
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        data in prop::collection::vec(any::<u8>(), 0..2048),
        splice in any::<prop::sample::Index>(),
    ) {
        // Random bytes, and random bytes spliced into a valid file.
        let _ = mp4read::read(&data);
        let (frames, end_dts) = frames(&[(40, 3600, 0, true), (30, 3600, 7200, false)], &h264_params());
        let (mut file, _) = write(&frames, end_dts, &[1]);
        let at = splice.index(file.len());
        let n = data.len().min(file.len() - at);
        file[at..at + n].copy_from_slice(&data[..n]);
        let c = mp4read::read(&file);
        prop_assert!(c.end.valid_len <= file.len() as u64);
        for f in &c.fragments {
            for s in f.tracks.iter().flat_map(|t| &t.samples) {
                prop_assert!(s.range().end <= file.len() as u64, "sample inside the file");
            }
        }
    }
}
