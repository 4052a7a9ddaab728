//! Synthetic streams for the POC types and the run rules that real encoders do not show
//! (type 1 and 2 POCs, unsignalled reorder depth, clock jumps, lying cameras). The clips of
//! real encoders are in tests/dts_ffprobe.rs.

use super::*;

/// MSB-first bit writer for hand-made parameter sets and slice headers.
#[derive(Default)]
struct Bits {
    bytes: Vec<u8>,
    n: usize,
}

impl Bits {
    fn bit(&mut self, b: bool) -> &mut Self {
        if self.n.is_multiple_of(8) {
            self.bytes.push(0);
        }
        if b {
            *self.bytes.last_mut().unwrap() |= 0x80 >> (self.n % 8);
        }
        self.n += 1;
        self
    }
    fn bits(&mut self, v: u32, n: u32) -> &mut Self {
        for i in (0..n).rev() {
            self.bit(v >> i & 1 == 1);
        }
        self
    }
    fn ue(&mut self, v: u32) -> &mut Self {
        let len = 32 - (v + 1).leading_zeros();
        self.bits(0, len - 1).bits(v + 1, len)
    }
    fn se(&mut self, v: i32) -> &mut Self {
        self.ue(if v > 0 {
            2 * v as u32 - 1
        } else {
            2 * v.unsigned_abs()
        })
    }
    /// rbsp_trailing_bits, emulation prevention, and the NAL header in front.
    fn nal(&mut self, header: u8) -> Vec<u8> {
        self.bit(true);
        let mut out = vec![header];
        let mut zeros = 0;
        for &b in &self.bytes {
            if zeros >= 2 && b <= 3 {
                out.push(3);
                zeros = 0;
            }
            zeros = if b == 0 { zeros + 1 } else { 0 };
            out.push(b);
        }
        out
    }
}

struct Sps {
    poc_type: u32,
    /// VUI with bitstream_restriction (this reorder depth) and 25 fps timing.
    reorder: Option<u32>,
}

/// A Main-profile H.264 SPS: 4-bit frame_num and (type 0) 4-bit POC LSB, so both wrap soon.
fn sps(s: &Sps) -> Vec<u8> {
    let mut b = Bits::default();
    b.bits(77, 8)
        .bits(0, 8)
        .bits(30, 8)
        .ue(0)
        .ue(0)
        .ue(s.poc_type);
    match s.poc_type {
        0 => {
            b.ue(0);
        }
        1 => {
            // Each reference frame advances 3 frames (6 POCs); non-reference pictures sit
            // 4 POCs before the frame after them, and their delta adjusts further.
            b.bit(false).se(-4).se(0).ue(1).se(6);
        }
        _ => {}
    }
    b.ue(2)
        .bit(false)
        .ue(19)
        .ue(14)
        .bit(true)
        .bit(true)
        .bit(false);
    b.bit(s.reorder.is_some());
    if let Some(r) = s.reorder {
        b.bit(false).bit(false).bit(false).bit(false);
        b.bit(true).bits(1, 32).bits(50, 32).bit(true); // 25 fps: 3600 ticks a frame
        b.bit(false).bit(false).bit(false);
        b.bit(true).bit(true).ue(0).ue(0).ue(16).ue(16).ue(r).ue(4);
    }
    b.nal(0x67)
}

fn pps() -> Vec<u8> {
    Bits::default()
        .ue(0)
        .ue(0)
        .bit(false)
        .bit(false)
        .ue(0)
        .nal(0x68)
}

/// One picture: IDR or not, reference or not, its frame_num, and its POC field (the LSB for
/// type 0, delta_pic_order_cnt[0] for type 1, unused for type 2).
fn slice(poc_type: u32, idr: bool, reference: bool, frame_num: u32, poc: u32) -> Vec<u8> {
    let mut b = Bits::default();
    b.ue(0)
        .ue(if idr { 7 } else { 5 })
        .ue(0)
        .bits(frame_num % 16, 4);
    if idr {
        b.ue(0);
    }
    match poc_type {
        0 => {
            b.bits(poc % 16, 4);
        }
        1 => {
            b.se(poc as i32);
        }
        _ => {}
    }
    b.bits(0x5a5a, 16); // the rest of the slice
    let header = u8::from(reference) << 5 | if idr { 5 } else { 1 };
    let nal = b.nal(header);
    let mut au = (nal.len() as u32).to_be_bytes().to_vec();
    au.extend_from_slice(&nal);
    au
}

/// Feeds (au, pts, keyframe) and returns every result.
fn run(
    x: &mut DtsExtractor,
    sps: &[u8],
    frames: &[(Vec<u8>, i64, bool)],
) -> Vec<Result<i64, MediaError>> {
    let pps = pps();
    let sets = ParameterSets::h264(sps, &pps);
    frames
        .iter()
        .map(|(data, pts, keyframe)| {
            let au = AccessUnit {
                data,
                pts: *pts,
                keyframe: *keyframe,
            };
            x.extract(&sets, &au)
        })
        .collect()
}

/// I P B B P B B ... in decode order as (display index, reference), `gops` GOPs of 7.
fn ipbb(gops: usize) -> Vec<(i64, bool)> {
    let mut out = Vec::new();
    for g in 0..gops as i64 {
        let base = g * 7;
        out.push((base, true));
        for p in [3, 6] {
            out.extend([
                (base + p, true),
                (base + p - 2, false),
                (base + p - 1, false),
            ]);
        }
    }
    out
}

/// The type 0 slices of `order`: POC = 2 * display index within the GOP.
fn type0_frames(order: &[(i64, bool)], gop: i64, ticks: i64) -> Vec<(Vec<u8>, i64, bool)> {
    let mut frame_num = 0;
    order
        .iter()
        .map(|&(display, reference)| {
            let idr = display % gop == 0;
            if idr {
                frame_num = 0;
            }
            let poc = (2 * (display % gop)) as u32;
            let au = slice(0, idr, reference, frame_num, poc);
            if reference {
                frame_num += 1;
            }
            (au, display * ticks, idr)
        })
        .collect()
}

fn ok(results: Vec<Result<i64, MediaError>>) -> Vec<i64> {
    results.into_iter().map(|r| r.unwrap()).collect()
}

fn assert_guarantees(frames: &[(Vec<u8>, i64, bool)], dts: &[i64]) {
    for (i, (f, d)) in frames.iter().zip(dts).enumerate() {
        assert!(*d <= f.1, "frame {i}: dts {d} > pts {}", f.1);
        if i > 0 {
            assert!(*d > dts[i - 1], "frame {i}: {dts:?}");
        }
    }
}

#[test]
fn signalled_depth_gives_the_encoders_decode_times() {
    let sps = sps(&Sps {
        poc_type: 0,
        reorder: Some(1),
    });
    let frames = type0_frames(&ipbb(2), 7, 3600);
    let mut x = DtsExtractor::new();
    let dts = ok(run(&mut x, &sps, &frames));
    // The n-th decode time is the (n - 1)-th presentation time; the first steps back one
    // frame (3600 ticks, from the VUI timing).
    let mut display: Vec<i64> = frames.iter().map(|f| f.1).collect();
    display.sort();
    let want: Vec<i64> = std::iter::once(-3600)
        .chain(display[..display.len() - 1].iter().copied())
        .collect();
    assert_eq!(dts, want);
    assert_eq!(x.reorder_depth(), 1);
}

#[test]
fn no_reordering_means_dts_equals_pts_across_poc_wraps() {
    for poc_type in [0, 2] {
        let sps = sps(&Sps {
            poc_type,
            reorder: None,
        });
        // 40 frames per IDR: the 4-bit LSB and frame_num wrap several times.
        let order: Vec<(i64, bool)> = (0..80).map(|i| (i, true)).collect();
        let frames: Vec<_> = if poc_type == 0 {
            type0_frames(&order, 40, 3000)
        } else {
            order
                .iter()
                .map(|&(i, _)| {
                    (
                        slice(2, i % 40 == 0, true, (i % 40) as u32, 0),
                        i * 3000,
                        i % 40 == 0,
                    )
                })
                .collect()
        };
        let mut x = DtsExtractor::new();
        let dts = ok(run(&mut x, &sps, &frames));
        let pts: Vec<i64> = frames.iter().map(|f| f.1).collect();
        assert_eq!(dts, pts, "POC type {poc_type}");
        assert_eq!(x.reorder_depth(), 0);
    }
}

#[test]
fn unsignalled_depth_is_learnt_before_the_b_frames_arrive() {
    let sps = sps(&Sps {
        poc_type: 0,
        reorder: None,
    });
    let frames = type0_frames(&ipbb(3), 7, 3600);
    let mut x = DtsExtractor::new();
    let dts = ok(run(&mut x, &sps, &frames));
    assert_guarantees(&frames, &dts);
    // The gap after the IDR (P at POC 6) says two pictures will fill it.
    assert_eq!(x.reorder_depth(), 2);
}

#[test]
fn type1_pocs_order_b_frames() {
    let sps = sps(&Sps {
        poc_type: 1,
        reorder: None,
    });
    let pps = pps();
    let mut poc = super::h264::PocState::new(&sps, &pps).unwrap();
    // decode order I P B B P: frame_num 0 1 2 2 2, deltas put the second B one frame later.
    let pics = [
        (true, true, 0, 0),
        (false, true, 1, 0),
        (false, false, 2, 0),
        (false, false, 2, 2),
        (false, true, 2, 0),
    ];
    let got: Vec<i64> = pics
        .iter()
        .map(|&(idr, reference, frame_num, delta)| {
            let au = slice(1, idr, reference, frame_num, delta);
            poc.picture(&au[4..]).unwrap().poc
        })
        .collect();
    assert_eq!(got, vec![0, 6, 2, 4, 12]);
}

#[test]
fn deeper_reordering_than_signalled_is_an_error_then_learnt() {
    let sps = sps(&Sps {
        poc_type: 0,
        reorder: Some(0),
    });
    let frames = type0_frames(&ipbb(2), 7, 3600);
    let mut x = DtsExtractor::new();
    let results = run(&mut x, &sps, &frames);
    // The first B displays before the P's decode time: refused, and R grows.
    assert!(results[2].is_err(), "{results:?}");
    assert_eq!(x.reorder_depth(), 1);
    let kept: Vec<(usize, i64)> = results
        .iter()
        .enumerate()
        .filter_map(|(i, r)| r.as_ref().ok().map(|d| (i, *d)))
        .collect();
    for w in kept.windows(2) {
        assert!(w[1].1 > w[0].1, "{kept:?}");
    }
    for &(i, d) in &kept {
        assert!(d <= frames[i].1);
    }
    // From the second GOP on, nothing is refused.
    assert!(results[7..].iter().all(Result::is_ok), "{results:?}");
}

#[test]
fn clock_jump_back_at_a_keyframe_starts_a_new_run() {
    let sps = sps(&Sps {
        poc_type: 0,
        reorder: Some(1),
    });
    let mut frames = type0_frames(&ipbb(1), 7, 3600);
    // The second GOP's clock starts again near zero.
    frames.extend(
        type0_frames(&ipbb(1), 7, 3600)
            .into_iter()
            .map(|(d, p, k)| (d, p + 100, k)),
    );
    let mut x = DtsExtractor::new();
    let dts = ok(run(&mut x, &sps, &frames));
    assert_guarantees(&frames[..7], &dts[..7]);
    assert_guarantees(&frames[7..], &dts[7..]);
    assert_eq!(
        dts[7],
        100 - 3600,
        "the new run steps back one frame from its keyframe"
    );
}

#[test]
fn parameter_change_takes_the_new_depth() {
    let one = sps(&Sps {
        poc_type: 0,
        reorder: Some(1),
    });
    let two = sps(&Sps {
        poc_type: 0,
        reorder: Some(2),
    });
    let frames = type0_frames(&ipbb(2), 7, 3600);
    let mut x = DtsExtractor::new();
    let mut dts = ok(run(&mut x, &one, &frames[..7]));
    assert_eq!(x.reorder_depth(), 1);
    let later: Vec<_> = frames[7..]
        .iter()
        .map(|(d, p, k)| (d.clone(), p + 7 * 3600, *k))
        .collect();
    dts.extend(ok(run(&mut x, &two, &later)));
    assert_eq!(x.reorder_depth(), 2);
    let all: Vec<_> = frames[..7].iter().cloned().chain(later).collect();
    assert_guarantees(&all, &dts);
}

#[test]
fn bad_input_is_an_error_or_a_fallback() {
    let sps = sps(&Sps {
        poc_type: 0,
        reorder: None,
    });
    let pps = pps();
    let sets = ParameterSets::h264(&sps, &pps);
    let mut x = DtsExtractor::new();
    let au = |data: &'static [u8], pts| AccessUnit {
        data,
        pts,
        keyframe: false,
    };
    // No slice at all, and a length prefix that runs past the end.
    assert!(x.extract(&sets, &au(&[0, 0, 0, 2, 0x09, 0xf0], 0)).is_err());
    assert!(x.extract(&sets, &au(&[0, 0, 0, 9, 0x41], 0)).is_err());
    // A slice whose header is cut short: timing from pts alone.
    assert_eq!(x.extract(&sets, &au(&[0, 0, 0, 1, 0x41], 10)), Ok(10));
    // Extreme timestamps: no overflow, guarantees kept or an error.
    assert_eq!(
        x.extract(&sets, &au(&[0, 0, 0, 1, 0x41], i64::MAX)),
        Ok(i64::MAX)
    );
    assert!(
        x.extract(&sets, &au(&[0, 0, 0, 1, 0x41], i64::MAX))
            .is_err()
    );
    let low = x
        .extract(&sets, &au(&[0, 0, 0, 1, 0x41], i64::MIN))
        .unwrap();
    assert_eq!(low, i64::MIN);
    // Parameter sets that do not parse: dts = pts.
    let broken = ParameterSets::h264(&[0x67], &[0x68]);
    assert_eq!(x.extract(&broken, &au(&[0, 0, 0, 1, 0x41], 5)), Ok(5));
}
