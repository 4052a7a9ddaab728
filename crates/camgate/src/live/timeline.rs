//! One timeline per stream: decode times strictly increasing across reconnects and camera
//! clock jumps, so every consumer (segmenter, MSE, recorder) sees one continuous timeline.
//! The arithmetic (saturating, clamped: every value comes from a camera) is
//! `media::timestamp::Continuity`; this is where the live path applies it to frames.
//!
//! The timeline is the video's. Audio frames are moved by the shift the latest video frame
//! got, so they stay in sync with it (their times are on the same camera clock origin); they
//! do not take part in the strictly-increasing rule, which is about one track's decode order.

use media::Frame;
use media::timestamp::{Continuity, LIMIT, Timestamps};

#[derive(Default)]
pub(super) struct Timeline {
    continuity: Continuity,
    /// What the latest video frame of this session was shifted by; `None` before it.
    video_shift: Option<i64>,
}

impl Timeline {
    pub fn new_session(&mut self) {
        self.continuity.new_session();
        self.video_shift = None;
    }

    /// The frame on the continuous timeline; `None` for audio before the session's first
    /// video frame (nothing to sync it to yet, and every consumer starts at video anyway).
    pub fn adjust(&mut self, mut f: Frame) -> Option<Frame> {
        if f.video().is_none() {
            let shift = self.video_shift?;
            let moved = |t: i64| t.saturating_add(shift).clamp(-LIMIT, LIMIT);
            f.pts = moved(f.pts);
            f.dts = moved(f.dts);
            return Some(f);
        }
        let t = self.continuity.adjust(Timestamps {
            pts: f.pts,
            dts: f.dts,
        });
        self.video_shift = Some(t.dts.saturating_sub(f.dts));
        f.pts = t.pts;
        f.dts = t.dts;
        Some(f)
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use media::test_util::{aac_params, audio_frame, h264_params, video_frame};

    use super::*;

    fn frame(dts: i64) -> Frame {
        video_frame(Bytes::new(), dts, dts, false, &h264_params())
    }

    #[test]
    fn continuity_spans_sessions_and_backward_jumps() {
        let mut c = Timeline::default();
        c.new_session();
        let got: Vec<i64> = [0, 3600, 7200]
            .map(|d| c.adjust(frame(d)).unwrap().dts)
            .to_vec();
        assert_eq!(got, vec![0, 3600, 7200]);
        c.new_session();
        assert_eq!(c.adjust(frame(0)).unwrap().dts, 10800);
        assert_eq!(c.adjust(frame(3600)).unwrap().dts, 14400);
        // camera clock jumps back within a session
        assert_eq!(c.adjust(frame(100)).unwrap().dts, 18000);
        assert_eq!(c.adjust(frame(3700)).unwrap().dts, 21600);
        // a camera near the end of i64 does not overflow
        let _ = c.adjust(frame(i64::MAX));
        let _ = c.adjust(frame(i64::MIN));
    }

    #[test]
    fn audio_follows_the_video_shift() {
        let a = aac_params();
        let mut c = Timeline::default();
        c.new_session();
        assert!(
            c.adjust(audio_frame(&a, 0, 0)).is_none(),
            "audio before any video has nothing to sync to"
        );
        c.adjust(frame(0)).unwrap();
        c.adjust(frame(3600)).unwrap();
        // Audio 20 ms (1800 ticks) after the second frame: still 1800 after it.
        assert_eq!(c.adjust(audio_frame(&a, 1, 5400)).unwrap().dts, 5400);
        // Audio slightly before the latest video frame is not pushed forward.
        assert_eq!(c.adjust(audio_frame(&a, 2, 3000)).unwrap().pts, 3000);
        // A reconnect: both clocks start at 0 again; the video continues after 3600, and the
        // audio moves with it.
        c.new_session();
        assert!(c.adjust(audio_frame(&a, 3, 0)).is_none());
        let v = c.adjust(frame(0)).unwrap().dts;
        assert_eq!(v, 7200);
        assert_eq!(c.adjust(audio_frame(&a, 4, 1920)).unwrap().dts, v + 1920);
        // Extremes saturate.
        assert!(c.adjust(audio_frame(&a, 5, i64::MAX)).unwrap().dts <= LIMIT);
    }
}
