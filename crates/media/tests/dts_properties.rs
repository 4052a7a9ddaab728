//! Arbitrary NAL bytes and timestamps into `dts::DtsExtractor`: an error is fine, a panic or
//! an overflow is a bug (these tests run with overflow checks on), and every decode time it
//! does give is at most its pts; on a timeline without clock jumps they strictly increase.

use media::dts::{AccessUnit, DtsExtractor, ParameterSets};
use media::test_util::{H264_PPS, H264_SPS, H265_PPS, H265_SPS, H265_VPS};
use proptest::prelude::*;

/// One access unit: NAL units that often start with a slice header byte, as length-prefixed
/// data; a few length prefixes are left wrong.
fn access_unit() -> impl Strategy<Value = Vec<u8>> {
    let header = prop_oneof![
        Just(vec![0x65u8]),
        Just(vec![0x41]),
        Just(vec![0x01]),
        Just(vec![0x26, 0x01]),
        Just(vec![0x02, 0x01]),
        Just(vec![0x2a, 0x01]),
        Just(vec![0x10, 0x01]),
        prop::collection::vec(any::<u8>(), 0..3),
    ];
    let nal = (header, prop::collection::vec(any::<u8>(), 0..40)).prop_map(|(mut h, body)| {
        h.extend(body);
        h
    });
    (prop::collection::vec(nal, 0..3), any::<u8>()).prop_map(|(nals, lie)| {
        let mut out = Vec::new();
        for n in &nals {
            let len = if lie == 7 { u32::MAX } else { n.len() as u32 };
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(n);
        }
        out
    })
}

/// Which parameter sets are in force: x264's, x265's, or bytes that may not parse.
fn params() -> impl Strategy<Value = (u8, Vec<u8>)> {
    (0u8..3, prop::collection::vec(any::<u8>(), 0..30))
}

fn sets<'a>(which: u8, junk: &'a [u8]) -> ParameterSets<'a> {
    match which {
        0 => ParameterSets::h264(H264_SPS, H264_PPS),
        1 => ParameterSets::h265(H265_VPS, H265_SPS, H265_PPS),
        _ if junk.first().is_some_and(|b| b & 1 == 0) => ParameterSets::h264(junk, junk),
        _ => ParameterSets::h265(junk, junk, junk),
    }
}

/// The access unit with every IDR/IRAP NAL header turned into a plain slice's, so that only
/// the pictures the test allows are keyframes (in either codec's reading of the header).
fn without_keyframes(data: &[u8]) -> Vec<u8> {
    let mut out = data.to_vec();
    let mut pos = 0;
    while pos + 4 < out.len() {
        let len = u32::from_be_bytes([out[pos], out[pos + 1], out[pos + 2], out[pos + 3]]);
        let h = &mut out[pos + 4];
        if *h & 0x1f == 5 {
            *h = (*h & !0x1f) | 1;
        }
        if (16..=23).contains(&((*h >> 1) & 0x3f)) {
            *h &= 0x81;
        }
        pos = pos.saturating_add(4).saturating_add(len as usize);
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    #[test]
    fn any_input_keeps_dts_at_most_pts(
        params in params(),
        aus in prop::collection::vec((access_unit(), any::<i64>(), any::<bool>()), 1..40),
    ) {
        let sets = sets(params.0, &params.1);
        let mut x = DtsExtractor::new();
        for (data, pts, keyframe) in &aus {
            let au = AccessUnit { data, pts: *pts, keyframe: *keyframe };
            if let Ok(dts) = x.extract(&sets, &au) {
                prop_assert!(dts <= *pts, "dts {} > pts {}", dts, pts);
            }
        }
    }

    #[test]
    fn a_steady_clock_gives_increasing_dts(
        params in params(),
        start in -1_000_000_000_000i64..1_000_000_000_000,
        // Each picture is displayed up to 3 frames from its decode position.
        frames in prop::collection::vec((access_unit(), 0i64..4, any::<bool>()), 1..60),
    ) {
        let sets = sets(params.0, &params.1);
        let mut x = DtsExtractor::new();
        let mut last: Option<i64> = None;
        let mut max_pts = i64::MIN;
        for (i, (data, shift, key)) in frames.iter().enumerate() {
            let pts = start + (i as i64 + shift) * 3600;
            // A keyframe displays after everything before it, as in a real stream.
            let keyframe = *key && pts > max_pts;
            max_pts = max_pts.max(pts);
            let data = if keyframe { data.clone() } else { without_keyframes(data) };
            let au = AccessUnit { data: &data, pts, keyframe };
            if let Ok(dts) = x.extract(&sets, &au) {
                prop_assert!(dts <= pts);
                prop_assert!(last.is_none_or(|l| dts > l), "{:?} then {}", last, dts);
                last = Some(dts);
            }
        }
    }
}
