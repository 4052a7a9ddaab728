//! Arbitrary access units and timestamps through the camera timing path: the decode time
//! extractor, then continuity. Nothing panics or overflows; every decode time given is at most
//! its pts; after continuity, decode times strictly increase and pts >= dts.

use media::dts::{AccessUnit, DtsExtractor, ParameterSets};
use media::test_util::{H264_PPS, H264_SPS, H265_PPS, H265_SPS, H265_VPS};
use media::timestamp::{Continuity, Timestamps};

/// The fuzz target's body: `fuzz/fuzz_targets/dts.rs` runs it under libFuzzer, and the
/// owning crate's `tests/fuzz_corpus.rs` replays `fuzz/corpus/dts/` through it.
pub fn run(data: &[u8]) {
    // First byte: which parameter sets (x264's, x265's, or the first 32 input bytes as
    // broken ones); then records of flags (1), pts (8), length (1), access unit (length).
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let junk = &rest[..rest.len().min(32)];
    let sets = match which % 4 {
        0 => ParameterSets::h264(H264_SPS, H264_PPS),
        1 => ParameterSets::h265(H265_VPS, H265_SPS, H265_PPS),
        2 => ParameterSets::h264(junk, junk),
        _ => ParameterSets::h265(junk, junk, junk),
    };
    let mut dts = DtsExtractor::new();
    let mut continuity = Continuity::default();
    continuity.new_session();
    let mut last: Option<i64> = None;
    let mut rest = rest;
    while let Some((record, tail)) = rest.split_first_chunk::<10>() {
        let flags = record[0];
        let pts = i64::from_be_bytes(record[1..9].try_into().expect("8 bytes"));
        let len = usize::from(record[9]).min(tail.len());
        let (au, tail) = tail.split_at(len);
        rest = tail;
        if flags & 0x80 != 0 {
            dts.reset();
            continuity.new_session();
        }
        let au = AccessUnit {
            data: au,
            pts,
            keyframe: flags & 1 == 1,
        };
        // A refused picture goes on with dts = pts, as an ingest falling back would.
        let d = match dts.extract(&sets, &au) {
            Ok(d) => {
                assert!(d <= pts, "dts {d} > pts {pts}");
                d
            }
            Err(_) => pts,
        };
        assert!(dts.reorder_depth() <= 16);
        let t = continuity.adjust(Timestamps { pts, dts: d });
        assert!(t.pts >= t.dts);
        assert!(last.is_none_or(|l| t.dts > l), "{last:?} then {t:?}");
        last = Some(t.dts);
    }
}
