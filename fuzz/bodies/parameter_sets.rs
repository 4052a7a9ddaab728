//! Arbitrary bytes as SPS/PPS/VPS: parsing returns an error or values that build a valid
//! init segment; it never panics.

use media::{CodecParams, fmp4, h264, h265};

/// The fuzz target's body: `fuzz/fuzz_targets/parameter_sets.rs` runs it under libFuzzer, and the
/// owning crate's `tests/fuzz_corpus.rs` replays `fuzz/corpus/parameter_sets/` through it.
pub fn run(data: &[u8]) {
    // First byte picks where to split the input into three parameter sets.
    let Some((&cut, rest)) = data.split_first() else {
        return;
    };
    let a = (usize::from(cut) * rest.len() / 255).min(rest.len());
    let (first, second) = rest.split_at(a);
    let b = second.len() / 2;
    let (second, third) = second.split_at(b);
    let _ = h264::parse_sps(rest);
    let _ = h265::parse_sps(rest);
    let _ = h265::check_vps(rest);
    for params in [
        CodecParams::h264(first, second),
        CodecParams::h265(first, second, third),
    ]
    .into_iter()
    .flatten()
    {
        assert!(params.width > 0 && params.height > 0);
        let init = fmp4::init_segment(&params).expect("accepted parameters mux");
        assert!(init.len() > 100);
    }
}
