//! Arbitrary bytes as a fragmented MP4 file, read whole and through the scanner with short
//! reads: nothing panics, both agree, every sample handed out lies inside the file and inside
//! a fragment that ends at or before `valid_len`; laying the samples out as a progressive MP4
//! maps every output byte to exactly one piece.

use media::mp4read::{self, Scanner, Step};
use media::progressive::{Piece, Progressive, SampleRef, TrackInput};

/// The fuzz target's body: `fuzz/fuzz_targets/mp4read.rs` runs it under libFuzzer, and the
/// owning crate's `tests/fuzz_corpus.rs` replays `fuzz/corpus/mp4read/` through it.
pub fn run(data: &[u8]) {
    let whole = mp4read::read(data);
    assert!(whole.end.valid_len <= data.len() as u64);
    for f in &whole.fragments {
        assert!(f.offset + f.moof_len <= whole.end.valid_len);
        for s in f.tracks.iter().flat_map(|t| &t.samples) {
            assert!(
                s.range().end <= whole.end.valid_len,
                "sample inside the valid file"
            );
        }
    }

    // The scanner fed one byte short of what it asks: a torn file, never a panic.
    let mut scan = Scanner::new(data.len() as u64);
    for _ in 0..10_000 {
        match scan.step() {
            Step::Read { offset, len } => {
                let start = offset as usize;
                let stop = (start + len).min(data.len()).saturating_sub(1).max(start);
                scan.feed(&data[start..stop]);
            }
            Step::End(end) => {
                assert!(end.valid_len <= whole.end.valid_len);
                break;
            }
            _ => {}
        }
    }

    let Some(init) = &whole.init else { return };
    let tracks: Vec<TrackInput> = init
        .tracks
        .iter()
        .map(|t| {
            let mut input = TrackInput::from_init(t, 0);
            input.samples = whole
                .fragments
                .iter()
                .filter_map(|f| f.track(t.track_id))
                .flat_map(|r| r.samples.iter().map(|s| SampleRef::from_sample(0, s)))
                .collect();
            input
        })
        .collect();
    if let Ok(p) = Progressive::build(&tracks) {
        let total: u64 = p
            .pieces(0..p.len())
            .iter()
            .map(|piece| match piece {
                Piece::Header(r) => r.len() as u64,
                Piece::Source { len, .. } => *len,
            })
            .sum();
        assert_eq!(total, p.len());
    }
}
