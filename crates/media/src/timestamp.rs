//! Camera timestamps into one continuous timeline: rescaling an RTP clock to 90 kHz and
//! keeping decode times strictly increasing across reconnects and camera clock jumps, so every
//! consumer (segmenter, MSE, recorder) sees one timeline per stream.
//!
//! Every value here is one a camera controls, so all arithmetic is saturating or checked and
//! the timeline is kept within ±`LIMIT`: no input panics (debug) or wraps (release). For
//! normal inputs the results are exactly those of camgate's former unchecked code.
//!
//! Owns only numbers: no frames, no clock, no session handling beyond `new_session`.

use crate::TIMESCALE;

/// The timeline stays within ±2^62 ticks (1.6 million years at 90 kHz), far from the i64
/// limits, so a step forward never saturates.
pub const LIMIT: i64 = 1 << 62;
/// A forward jump of decode time larger than this within a session is a camera clock jump,
/// handled like one backwards: the timeline continues one frame interval after the last frame.
/// 60 s is far more than any gap a live session survives (its stall timeout ends it first).
pub const DEFAULT_MAX_JUMP: i64 = 60 * TIMESCALE as i64;
/// Frame interval assumed before two frames have been seen (30 fps).
const DEFAULT_STEP: i64 = 3000;

/// `ticks` of a `clock_rate` Hz clock in 90 kHz units, rounded toward zero; saturates at the
/// i64 limits. A clock rate of 0 is taken as 1.
pub fn rescale(ticks: i64, clock_rate: u32) -> i64 {
    if clock_rate == TIMESCALE {
        return ticks;
    }
    let v = i128::from(ticks) * i128::from(TIMESCALE) / i128::from(clock_rate.max(1));
    clamp_i64(v)
}

fn clamp_i64(v: i128) -> i64 {
    // Clamped into range first, so the narrowing is exact.
    v.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

/// A frame's presentation and decode times in 90 kHz ticks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timestamps {
    pub pts: i64,
    pub dts: i64,
}

/// Keeps decode times strictly increasing across sessions and camera clock jumps.
#[derive(Clone, Debug)]
pub struct Continuity {
    /// Wider than the times it shifts: it spans the camera's value and ours.
    offset: i128,
    last_dts: Option<i64>,
    /// Typical frame interval, used to place the first frame after a discontinuity.
    step: i64,
    fresh: bool,
    max_jump: i64,
}

impl Default for Continuity {
    fn default() -> Self {
        Continuity::with_max_jump(DEFAULT_MAX_JUMP)
    }
}

impl Continuity {
    /// A forward jump larger than `max_jump` ticks is a discontinuity. It is kept between one
    /// second and one day, so that even a camera leaping the whole bound on every frame needs
    /// months to carry the timeline to `LIMIT` (and saturating, not wrapping, after that).
    pub fn with_max_jump(max_jump: i64) -> Self {
        Continuity {
            offset: 0,
            last_dts: None,
            step: 0,
            fresh: false,
            max_jump: max_jump.clamp(i64::from(TIMESCALE), 86_400 * i64::from(TIMESCALE)),
        }
    }

    /// The next frame starts a new session: its clock starts anew.
    pub fn new_session(&mut self) {
        self.fresh = true;
    }

    /// The frame's times on the continuous timeline. Decode times come out strictly
    /// increasing and pts >= dts, whatever comes in.
    pub fn adjust(&mut self, t: Timestamps) -> Timestamps {
        let step = if self.step > 0 {
            self.step
        } else {
            DEFAULT_STEP
        };
        let shifted = i128::from(t.dts) + self.offset;
        match self.last_dts {
            Some(last) => {
                let last = i128::from(last);
                let jump = shifted - last;
                if self.fresh || jump <= 0 || jump > i128::from(self.max_jump) {
                    // A new session starts its clock anew; a camera clock going backwards (or
                    // leaping forwards) is treated the same way: continue one frame interval
                    // after the last frame.
                    self.offset = last + i128::from(step) - i128::from(t.dts);
                }
            }
            None if !(i128::from(-LIMIT)..=i128::from(LIMIT)).contains(&shifted) => {
                // A first frame out at the edge of the range: start the timeline at 0 instead.
                self.offset = -i128::from(t.dts);
            }
            None => {}
        }
        self.fresh = false;
        let dts = clamp_i64(i128::from(t.dts) + self.offset);
        // Composition offsets are kept as they came, within [0, max_jump].
        let composition =
            (i128::from(t.pts) - i128::from(t.dts)).clamp(0, i128::from(self.max_jump));
        let pts = clamp_i64(i128::from(dts) + composition);
        if let Some(last) = self.last_dts {
            self.step = dts.saturating_sub(last).clamp(1, i64::from(TIMESCALE));
        }
        self.last_dts = Some(dts);
        Timestamps { pts, dts }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(c: &mut Continuity, dts: i64) -> i64 {
        c.adjust(Timestamps { pts: dts, dts }).dts
    }

    #[test]
    fn rescales_to_90k() {
        assert_eq!(rescale(3600, 90_000), 3600);
        assert_eq!(rescale(1000, 1000), 90_000);
        assert_eq!(rescale(-1000, 1000), -90_000);
        assert_eq!(rescale(7, 0), 630_000);
        assert_eq!(rescale(i64::MAX, 1), i64::MAX);
        assert_eq!(rescale(i64::MIN, 8000), i64::MIN);
        assert_eq!(rescale(i64::MIN, 180_000), i64::MIN / 2);
    }

    #[test]
    fn continuity_spans_sessions_and_backward_jumps() {
        // The test of camgate's former Continuity, unchanged.
        let mut c = Continuity::default();
        c.new_session();
        let got: Vec<i64> = [0, 3600, 7200].map(|d| at(&mut c, d)).to_vec();
        assert_eq!(got, vec![0, 3600, 7200]);
        c.new_session();
        assert_eq!(at(&mut c, 0), 10800);
        assert_eq!(at(&mut c, 3600), 14400);
        // camera clock jumps back within a session
        assert_eq!(at(&mut c, 100), 18000);
        assert_eq!(at(&mut c, 3700), 21600);
    }

    #[test]
    fn composition_offsets_survive_and_forward_leaps_are_clamped() {
        let mut c = Continuity::default();
        c.new_session();
        let t = c.adjust(Timestamps { pts: 7200, dts: 0 });
        assert_eq!(t, Timestamps { pts: 7200, dts: 0 });
        let t = c.adjust(Timestamps {
            pts: 3600,
            dts: 3600,
        });
        assert_eq!(
            t,
            Timestamps {
                pts: 3600,
                dts: 3600
            }
        );
        // An hour forward inside a session: continue one frame after the last.
        assert_eq!(at(&mut c, 3600 + 3600 * 90_000), 7200);
        // A gap shorter than the bound is kept.
        assert_eq!(at(&mut c, 3600 + 3600 * 90_000 + 450_000), 457_200);
        // pts before dts is a camera bug: pts is raised to dts.
        let t = c.adjust(Timestamps {
            pts: 0,
            dts: 3600 + 3600 * 90_000 + 453_600,
        });
        assert_eq!(t.pts, t.dts);
    }

    #[test]
    fn extremes_neither_panic_nor_stall() {
        let mut c = Continuity::default();
        c.new_session();
        let mut last = None;
        for dts in [i64::MAX, i64::MIN, 0, i64::MAX, -1, i64::MIN + 1, i64::MAX] {
            let t = c.adjust(Timestamps { pts: i64::MIN, dts });
            assert!(t.pts >= t.dts);
            assert!(last.is_none_or(|l| t.dts > l), "{last:?} then {t:?}");
            assert!((-LIMIT..=LIMIT).contains(&t.dts));
            last = Some(t.dts);
        }
    }
}
