//! Property tests of the segmenter over arbitrary frame sequences (durations, keyframes,
//! B-frame offsets, timestamp jumps, codec changes, flushes): the LL-HLS invariants hold after
//! every push, each frame is dropped or kept exactly as a model of the drop rule says, and
//! nothing panics.

mod common;

use std::sync::Arc;

use common::synth::Parsed;
use media::hls::{Segmenter, SegmenterConfig};
use media::test_util::{frame, h264_params, h264_params_1080p};
use media::{CodecParams, TIMESCALE};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Frame { ticks: u32, key: bool, reorder: i8 },
    JumpBack(u32),
    CodecChange,
    Flush,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        40 => (0u32..8000, prop::bool::weighted(0.08), -3i8..4)
            .prop_map(|(ticks, key, reorder)| Op::Frame { ticks, key, reorder }),
        2 => (2000u32..600_000).prop_map(|ticks| Op::Frame { ticks, key: false, reorder: 0 }),
        1 => (0u32..1_000_000).prop_map(Op::JumpBack),
        1 => Just(Op::CodecChange),
        1 => Just(Op::Flush),
    ]
}

fn config() -> impl Strategy<Value = SegmenterConfig> {
    (
        500u64..3000,
        50u64..500,
        1usize..9,
        prop::option::of(1u64..6),
        any::<bool>(),
    )
        .prop_map(|(seg_ms, part_ms, window, max_s, delta)| SegmenterConfig {
            segment_target: std::time::Duration::from_millis(seg_ms),
            part_target: std::time::Duration::from_millis(part_ms),
            window,
            max_segment: max_s.map(std::time::Duration::from_secs),
            delta_updates: delta,
            instance: 3,
        })
}

fn secs_attr(list: &str, name: &str) -> f64 {
    Parsed::attr(list, name).unwrap().parse().unwrap()
}

/// Checks every invariant; `last_msn` is the previous playlist's media sequence.
fn check(s: &Segmenter, target_duration: u64, last_msn: &mut u64) -> Result<(), TestCaseError> {
    let ceiling = target_duration * u64::from(TIMESCALE);
    let part_target = (s.part_target_secs() * f64::from(TIMESCALE)).round() as u64;
    prop_assert_eq!(s.target_duration_secs(), target_duration);
    let infos = s.segment_infos();
    for w in infos.windows(2) {
        prop_assert_eq!(w[1].msn, w[0].msn + 1, "msns are contiguous");
    }
    for (i, seg) in infos.iter().enumerate() {
        prop_assert!(
            seg.duration <= ceiling,
            "segment {} over TARGETDURATION",
            seg.duration
        );
        if !seg.open {
            prop_assert!(
                seg.starts_with_keyframe || seg.forced_cut,
                "segment starts mid-GOP"
            );
            prop_assert_eq!(seg.duration, seg.part_durations.iter().sum::<u64>());
        }
        if seg.forced_cut && i > 0 && !seg.discontinuity {
            // Cut at the ceiling only because the GOP would have exceeded it.
            prop_assert!(infos[i - 1].duration + seg.first_frame_duration > ceiling);
        }
        for (d, n) in seg.part_durations.iter().zip(&seg.part_frames) {
            prop_assert!(
                *d <= part_target || *n == 1,
                "part of {} ticks, {} frames",
                d,
                n
            );
        }
    }
    let text = s.playlist(false);
    let pl = Parsed::new(&text);
    prop_assert_eq!(
        pl.tag("#EXT-X-TARGETDURATION"),
        Some(target_duration.to_string())
    );
    let msn: u64 = pl.tag("#EXT-X-MEDIA-SEQUENCE").unwrap().parse().unwrap();
    prop_assert!(msn >= *last_msn, "media sequence went back");
    *last_msn = msn;
    let control = pl.tag("#EXT-X-SERVER-CONTROL").unwrap();
    let part_inf = pl.tag("#EXT-X-PART-INF").unwrap();
    prop_assert!(
        secs_attr(&control, "PART-HOLD-BACK") >= 3.0 * secs_attr(&part_inf, "PART-TARGET")
    );
    if let Some(skip_until) = Parsed::attr(&control, "CAN-SKIP-UNTIL") {
        prop_assert!(skip_until.parse::<f64>().unwrap() >= 6.0 * target_duration as f64);
    }
    for d in pl.extinfs() {
        prop_assert!(
            d <= target_duration as f64,
            "EXTINF {} > {}",
            d,
            target_duration
        );
    }
    let uris = pl.uris();
    let (_hint, named) = uris.split_last().unwrap();
    for uri in named {
        prop_assert!(s.lookup(uri).is_some(), "{} does not resolve", uri);
    }
    if s.is_playable() {
        prop_assert!(s.init_segment().is_some());
    }
    let delta = s.playlist(true);
    prop_assert!(delta.starts_with("#EXTM3U\n"));
    Ok(())
}

/// What the segmenter must do with each frame, modelled apart from it: a frame is dropped
/// exactly when a keyframe is awaited (at the start, after a flush, and after a discontinuity:
/// dts not increasing, a gap over the ceiling, or new codec parameters) and it is not one.
struct Model {
    ceiling: i64,
    waiting: bool,
    last_accepted_dts: Option<i64>,
    generation: Option<usize>,
    dropped: u64,
}

impl Model {
    fn new(target_duration_secs: u64) -> Model {
        Model {
            ceiling: (target_duration_secs * u64::from(TIMESCALE)) as i64,
            waiting: true,
            last_accepted_dts: None,
            generation: None,
            dropped: 0,
        }
    }

    /// Returns (dropped, discontinuity) for a frame of parameter set `params`.
    fn push(&mut self, dts: i64, key: bool, params: usize) -> (bool, bool) {
        let changed = self.generation != Some(params);
        let mut discontinuity = false;
        if let Some(prev) = self.last_accepted_dts.take() {
            let gap = dts - prev;
            if changed || gap <= 0 || gap > self.ceiling {
                self.waiting = true;
                discontinuity = true;
            }
        }
        let dropped = self.waiting && !key;
        if dropped {
            self.dropped += 1;
        } else {
            self.generation = Some(params);
            self.waiting = false;
            self.last_accepted_dts = Some(dts);
        }
        (dropped, discontinuity)
    }

    fn flush(&mut self) {
        self.last_accepted_dts = None;
        self.waiting = true;
    }
}

fn run(config: SegmenterConfig, ops: &[Op]) -> Result<(), TestCaseError> {
    let mut s = Segmenter::new(config);
    let target_duration = s.target_duration_secs();
    let (a, b): (Arc<CodecParams>, Arc<CodecParams>) = (h264_params(), h264_params_1080p());
    let mut current = a.clone();
    let mut model = Model::new(target_duration);
    let mut dts = 0i64;
    let mut last_msn = 0;
    for (i, op) in ops.iter().enumerate() {
        match *op {
            Op::Frame {
                ticks,
                key,
                reorder,
            } => {
                let pts = dts + i64::from(reorder) * 3600;
                let out = s.push(&frame(&current, i as u32, dts, pts, key), i as i64 * 40);
                let which = usize::from(!Arc::ptr_eq(&current, &a));
                let (dropped, discontinuity) = model.push(dts, key, which);
                prop_assert_eq!(out.dropped, dropped, "frame {} dropped", i);
                prop_assert_eq!(
                    out.discontinuity,
                    discontinuity,
                    "frame {} discontinuity",
                    i
                );
                prop_assert_eq!(s.dropped_frames(), model.dropped);
                dts += i64::from(ticks);
            }
            Op::JumpBack(t) => dts -= i64::from(t),
            Op::CodecChange => {
                current = if Arc::ptr_eq(&current, &a) {
                    b.clone()
                } else {
                    a.clone()
                };
            }
            Op::Flush => {
                s.flush();
                model.flush();
            }
        }
        check(&s, target_duration, &mut last_msn)?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn invariants_hold_for_arbitrary_streams(config in config(), ops in prop::collection::vec(op(), 0..300)) {
        run(config, &ops)?;
    }

    /// With a steady frame rate and GOPs no longer than the target, segments start on
    /// keyframes and stay within the target plus one frame.
    #[test]
    fn regular_gops_stay_within_the_target(
        (frame_ticks, gop_frames) in (1500i64..6000).prop_flat_map(|f| (Just(f), 1..=90_000 / f)),
        count in 1usize..400,
    ) {
        let config = SegmenterConfig::default();
        let target = 90_000i64;
        let p = h264_params();
        let mut s = Segmenter::new(config);
        for i in 0..count as i64 {
            s.push(&frame(&p, i as u32, i * frame_ticks, i * frame_ticks, i % gop_frames == 0), 0);
        }
        for seg in s.segment_infos().iter().filter(|i| !i.open) {
            prop_assert!(seg.starts_with_keyframe);
            prop_assert!(seg.duration as i64 <= target + frame_ticks, "{} ticks", seg.duration);
        }
    }
}
