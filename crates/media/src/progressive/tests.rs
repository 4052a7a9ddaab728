//! Layout checks on synthetic samples; `tests/progressive_ffprobe.rs` has ffprobe read real
//! video laid out here.

use super::*;
use crate::mp4read::{TopBox, top_level_boxes};

fn entry() -> Bytes {
    // A whole (tiny, not decodable) sample entry box; the layout does not look inside.
    Bytes::from_static(b"\0\0\0\x10avc1\0\0\0\0\0\0\0\x01")
}

fn track(samples: Vec<SampleRef>, start: u64) -> TrackInput {
    TrackInput {
        handler: *b"vide",
        timescale: 90_000,
        width: 320,
        height: 240,
        sample_entry: entry(),
        start,
        samples,
    }
}

/// Samples from two sources of fake bytes: source `s` byte `i` is `(s * 31 + i) as u8`.
fn sample(source: usize, offset: u64, size: u32, cto: i32, key: bool) -> SampleRef {
    SampleRef {
        source,
        offset,
        size,
        duration: 3600,
        composition_offset: cto,
        keyframe: key,
    }
}

fn source_byte(source: usize, at: u64) -> u8 {
    (source as u64 * 31 + at) as u8
}

fn materialise(p: &Progressive, range: Range<u64>) -> Vec<u8> {
    let mut out = Vec::new();
    for piece in p.pieces(range) {
        match piece {
            Piece::Header(r) => out.extend_from_slice(&p.header()[r]),
            Piece::Source {
                source,
                offset,
                len,
            } => out.extend((offset..offset + len).map(|a| source_byte(source, a))),
        }
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn two_sources() -> Vec<SampleRef> {
    let mut v = Vec::new();
    let mut off = 100;
    for i in 0..60u32 {
        let size = 50 + i % 7;
        v.push(sample(usize::from(i >= 30), off, size, 0, i % 25 == 0));
        off = if i == 29 { 40 } else { off + u64::from(size) };
    }
    v
}

#[test]
fn moov_first_then_the_samples_in_order() {
    let samples = two_sources();
    let p = Progressive::build(&[track(samples.clone(), 0)]).unwrap();
    let file = materialise(&p, 0..p.len());
    assert_eq!(file.len() as u64, p.len());
    let kinds: Vec<_> = top_level_boxes(&file)
        .map(|b| match b {
            TopBox::Complete { header, .. } => header.kind,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(kinds, [*b"ftyp", *b"moov", *b"mdat"]);
    let mut at = p.header().len();
    for s in &samples {
        let expect: Vec<u8> = (s.offset..s.offset + u64::from(s.size))
            .map(|a| source_byte(s.source, a))
            .collect();
        assert_eq!(&file[at..at + s.size as usize], &expect[..]);
        at += s.size as usize;
    }
    // Contiguous samples of one source are one segment: two sources, two segments.
    assert_eq!(p.segments().len(), 2);
    assert_eq!(p.duration(), (60 * 3600, 90_000));
    let h = p.header();
    assert!(contains(h, b"stss") && contains(h, b"stco") && !contains(h, b"ctts"));
    assert!(
        !contains(h, b"edts"),
        "no edit list without composition offsets"
    );
}

#[test]
fn any_range_equals_the_same_slice_of_the_whole() {
    let p = Progressive::build(&[track(two_sources(), 0)]).unwrap();
    let whole = materialise(&p, 0..p.len());
    let n = p.len();
    let mut x = 12345u64;
    for _ in 0..500 {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let a = (x >> 33) % (n + 1);
        let b = (x >> 13) % (n + 1);
        let (a, b) = (a.min(b), a.max(b));
        assert_eq!(
            materialise(&p, a..b),
            &whole[a as usize..b as usize],
            "{a}..{b}"
        );
    }
    let (a, b) = (10, 5);
    assert!(p.pieces(a..b).is_empty());
    assert_eq!(materialise(&p, n - 3..n + 100), &whole[n as usize - 3..]);
}

#[test]
fn b_frames_get_ctts_and_an_edit_list() {
    let samples: Vec<_> = (0..10)
        .map(|i| sample(0, i * 10, 10, if i % 2 == 0 { 7200 } else { 0 }, i == 0))
        .collect();
    let p = Progressive::build(&[track(samples, 0)]).unwrap();
    let h = p.header();
    assert!(contains(h, b"ctts") && contains(h, b"elst"));
    // media_time of the edit is the first composition time: sample 1 at 3600 + 0.
    assert!(contains(h, &[0, 0, 0x0e, 0x10, 0, 1, 0, 0]));
}

#[test]
fn past_4_gib_uses_co64_and_a_large_mdat() {
    let big = u32::MAX - 10;
    // A second apart, so each is its own chunk and the second chunk starts past 4 GiB.
    let samples = vec![
        SampleRef {
            duration: 90_000,
            ..sample(0, 0, big, 0, true)
        },
        sample(0, 1 << 33, big, 0, false),
    ];
    let p = Progressive::build(&[track(samples, 0)]).unwrap();
    assert!(contains(p.header(), b"co64"));
    assert_eq!(p.mdat_header_len(), 16);
    let h = p.header();
    let mdat = &h[h.len() - 16..];
    assert_eq!(&mdat[..8], b"\0\0\0\x01mdat");
    assert_eq!(
        u64::from_be_bytes(mdat[8..].try_into().unwrap()),
        2 * u64::from(big) + 16
    );
    assert_eq!(p.len(), h.len() as u64 + 2 * u64::from(big));
    assert_eq!(
        p.pieces(p.len() - 5..p.len()),
        [Piece::Source {
            source: 0,
            offset: (1 << 33) + u64::from(big) - 5,
            len: 5
        }]
    );
}

#[test]
fn a_later_track_gets_an_empty_edit_and_chunks_interleave() {
    let video: Vec<_> = (0..50)
        .map(|i| sample(0, i * 100, 100, 0, i % 25 == 0))
        .collect();
    let audio = TrackInput {
        handler: *b"soun",
        timescale: 48_000,
        width: 0,
        height: 0,
        sample_entry: Bytes::from_static(b"\0\0\0\x0cmp4a\0\0\0\0"),
        // Starts half a second after the video, on the same timeline.
        start: 24_000 + 48_000 * 10,
        samples: (0..80)
            .map(|i| SampleRef {
                duration: 1024,
                ..sample(1, i * 10, 10, 0, true)
            })
            .collect(),
    };
    let p = Progressive::build(&[track(video, 90_000 * 10), audio]).unwrap();
    let h = p.header();
    assert!(contains(h, b"smhd") && contains(h, b"elst"));
    // The empty edit: 0.5 s in the movie timescale (90 kHz), media_time -1.
    assert!(contains(h, &[0, 0, 0xaf, 0xc8, 0xff, 0xff, 0xff, 0xff]));
    let sources: Vec<usize> = p.segments().iter().map(|s| s.source).collect();
    assert!(sources.windows(2).any(|w| w[0] != w[1]) && sources.len() > 2);
}

#[test]
fn refuses_what_it_cannot_lay_out() {
    assert!(Progressive::build(&[]).is_err());
    assert!(Progressive::build(&[track(Vec::new(), 0)]).is_err());
    let mut t = track(two_sources(), 0);
    t.sample_entry = Bytes::from_static(b"\0\0\0\x20avc1");
    assert!(Progressive::build(&[t.clone()]).is_err());
    t.sample_entry = entry();
    t.timescale = 0;
    assert!(Progressive::build(&[t]).is_err());
}
