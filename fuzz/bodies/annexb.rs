//! Arbitrary bytes as an Annex B stream and as length-prefixed NAL units: splitting,
//! converting and grouping into access units never panic and agree with each other.

use bytes::Bytes;
use media::{Codec, annexb};

/// The fuzz target's body: `fuzz/fuzz_targets/annexb.rs` runs it under libFuzzer, and the
/// owning crate's `tests/fuzz_corpus.rs` replays `fuzz/corpus/annexb/` through it.
pub fn run(data: &[u8]) {
    let data = Bytes::copy_from_slice(data);
    let nals = annexb::split_annexb(&data);
    let lp = annexb::annexb_to_length_prefixed(&data);
    assert_eq!(
        annexb::split_length_prefixed(&lp).expect("we framed it"),
        nals
    );
    let _ = annexb::length_prefixed_to_annexb(&lp);
    let _ = annexb::split_length_prefixed(&data);
    let _ = annexb::length_prefixed_to_annexb(&data);
    for codec in [Codec::H264, Codec::H265] {
        let aus = annexb::access_units(codec, &nals);
        assert_eq!(aus.iter().map(Vec::len).sum::<usize>(), nals.len());
        let _ = annexb::access_unit_is_keyframe(codec, &data);
        for n in &nals {
            let _ = annexb::is_keyframe_nal(codec, n);
            let _ = annexb::is_parameter_set(codec, n);
        }
    }
}
