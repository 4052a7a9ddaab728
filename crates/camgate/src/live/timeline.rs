//! One timeline per stream: decode times strictly increasing across reconnects and camera
//! clock jumps, so every consumer (segmenter, MSE, recorder) sees one continuous timeline.
//!
//! Every value here comes from a camera, so the arithmetic saturates: a camera sending
//! timestamps near `i64::MAX` gets a discontinuity, never an overflow panic or a wrap into
//! the past.

use media::Frame;

/// Camera timestamps are clamped to +-2^53 ticks (over 3,000 years at 90 kHz).
const INPUT_LIMIT: i64 = 1 << 53;
/// The timeline restarts before it could overflow.
const TIMELINE_LIMIT: i64 = 1 << 61;
/// Largest composition offset (pts - dts) accepted: 10 s.
const MAX_STEP: i64 = 900_000;

#[derive(Default)]
pub(super) struct Timeline {
    offset: i64,
    last_dts: Option<i64>,
    /// Typical frame interval, used to place the first frame after a gap.
    step: i64,
    fresh: bool,
}

impl Timeline {
    pub fn new_session(&mut self) {
        self.fresh = true;
    }

    pub fn adjust(&mut self, mut f: Frame) -> Frame {
        // Bounded first: beyond these a camera's value is nonsense, and bounded inputs keep
        // every sum below within i64.
        let dts = f.dts.clamp(-INPUT_LIMIT, INPUT_LIMIT);
        let composition = f.pts.saturating_sub(f.dts).clamp(-MAX_STEP, MAX_STEP);
        let step = if self.step > 0 { self.step } else { 3000 };
        if let Some(last) = self.last_dts
            && (self.fresh || dts + self.offset <= last)
        {
            // A new session starts its clock anew; a camera clock going backwards is treated
            // the same way: continue one frame interval after the last frame.
            self.offset = last + step - dts;
        }
        self.fresh = false;
        let mut out = dts + self.offset;
        if out > TIMELINE_LIMIT {
            // Decades of forward jumps: start the timeline over (a discontinuity downstream)
            // rather than overflow.
            self.offset = -dts;
            self.last_dts = None;
            self.step = 0;
            out = 0;
        }
        f.dts = out;
        f.pts = out + composition;
        if let Some(last) = self.last_dts {
            self.step = (out - last).clamp(1, 90_000);
        }
        self.last_dts = Some(out);
        f
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::Bytes;
    use media::{Codec, CodecParams, TrackParams};
    use proptest::prelude::*;

    use super::*;

    fn frame(dts: i64) -> Frame {
        Frame {
            data: Bytes::new(),
            pts: dts,
            dts,
            keyframe: false,
            params: TrackParams::Video(Arc::new(CodecParams {
                codec: Codec::H264,
                vps: Bytes::new(),
                sps: Bytes::new(),
                pps: Bytes::new(),
                width: 2,
                height: 2,
                rfc6381: String::new(),
            })),
            wallclock: std::time::UNIX_EPOCH,
        }
    }

    #[test]
    fn continuity_spans_sessions_and_backward_jumps() {
        let mut c = Timeline::default();
        c.new_session();
        let got: Vec<i64> = [0, 3600, 7200].map(|d| c.adjust(frame(d)).dts).to_vec();
        assert_eq!(got, vec![0, 3600, 7200]);
        c.new_session();
        assert_eq!(c.adjust(frame(0)).dts, 10800);
        assert_eq!(c.adjust(frame(3600)).dts, 14400);
        // camera clock jumps back within a session
        assert_eq!(c.adjust(frame(100)).dts, 18000);
        assert_eq!(c.adjust(frame(3700)).dts, 21600);
    }

    proptest! {
        #[test]
        fn any_camera_timestamps_stay_strictly_increasing(
            dts in proptest::collection::vec(any::<i64>(), 1..60),
            sessions in proptest::collection::vec(any::<bool>(), 60),
        ) {
            let mut c = Timeline::default();
            let mut last: Option<i64> = None;
            for (i, d) in dts.into_iter().enumerate() {
                if sessions[i] {
                    c.new_session();
                }
                let out = c.adjust(frame(d)).dts;
                if let Some(l) = last {
                    prop_assert!(out > l || out == 0, "{l} then {out}");
                }
                last = Some(out);
            }
        }
    }
}
