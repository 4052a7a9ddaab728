//! One timeline per stream: decode times strictly increasing across reconnects and camera
//! clock jumps, so every consumer (segmenter, MSE, recorder) sees one continuous timeline.
//! The arithmetic (saturating, clamped: every value comes from a camera) is
//! `media::timestamp::Continuity`; this is where the live path applies it to frames.

use media::Frame;
use media::timestamp::{Continuity, Timestamps};

#[derive(Default)]
pub(super) struct Timeline {
    continuity: Continuity,
}

impl Timeline {
    pub fn new_session(&mut self) {
        self.continuity.new_session();
    }

    pub fn adjust(&mut self, mut f: Frame) -> Frame {
        let t = self.continuity.adjust(Timestamps {
            pts: f.pts,
            dts: f.dts,
        });
        f.pts = t.pts;
        f.dts = t.dts;
        f
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use media::test_util::{h264_params, video_frame};

    use super::*;

    fn frame(dts: i64) -> Frame {
        video_frame(Bytes::new(), dts, dts, false, &h264_params())
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
        // a camera near the end of i64 does not overflow
        let _ = c.adjust(frame(i64::MAX));
        let _ = c.adjust(frame(i64::MIN));
    }
}
