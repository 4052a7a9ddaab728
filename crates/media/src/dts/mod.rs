//! Decode timestamps for cameras that send B-frames. RTP carries one timestamp per access
//! unit, its presentation time, in decode order; muxers and players also need the decode time.
//! `DtsExtractor` derives it the way an encoder's own muxer would: the decode time of the n-th
//! picture is the presentation time of the (n - R)-th picture in display order, where R is the
//! stream's reorder depth (H.264 `max_num_reorder_frames`, H.265 `sps_max_num_reorder_pics`).
//! For the first R pictures of a run, which have no such picture, it steps back from the
//! first presentation time by the frame duration (VUI timing, else the last one measured).
//! For a constant frame rate this equals x264's and x265's own decode times exactly.
//!
//! Display order comes from the picture order counts of the slice headers (`h264`, `h265`).
//! When the SPS does not signal R (an H.264 VUI without bitstream restriction), R is learnt:
//! it starts at 0 (so a stream without reordering gets dts == pts) and grows as soon as a
//! picture's POC shows a gap that later pictures will fill, before those pictures arrive.
//! R also grows when the stream reorders deeper than signalled.
//!
//! Guarantees, for every input: dts <= pts; dts strictly increasing within a run; no panic and
//! no overflow. A run restarts (its decode times may then go back) at a parameter change, at
//! a keyframe that displays before a pending picture, and at any picture whose presentation
//! time is far (over a second, or two reorder windows) before the last decode time: both mean
//! the camera's clock went back, which `timestamp::Continuity` then smooths over. Between
//! runs decode times keep increasing whenever the new run's first pts allows. A picture whose
//! timestamps cannot satisfy the guarantees (its pts is not after a decode time already given
//! out) is an error and changes nothing but the learnt R; the caller drops it or passes it on
//! with dts = pts.
//!
//! Owns only this derivation: it takes bytes and numbers and returns a number; it does not
//! touch frames, the clock or continuity across sessions (`timestamp` does that).

mod h264;
mod h265;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use crate::{Codec, MediaError};

/// Deeper reordering than this is refused as implausible (H.264 and H.265 cap the DPB at 16).
const MAX_REORDER: usize = 16;
/// How many of the latest POCs are compared to count how deep a picture is reordered.
const POC_WINDOW: usize = 2 * MAX_REORDER;
/// A learnt R grows at most this much from one POC gap: deeper pyramids are learnt as their
/// pictures arrive.
const MAX_GAP_REORDER: usize = 4;
/// Frame duration assumed before the stream says (30 fps).
const DEFAULT_FRAME_TICKS: i64 = 3000;
const WHAT: &str = "decode time";

/// The parameter sets in force, as NAL units with their headers (no start code or length).
#[derive(Clone, Copy, Debug)]
pub struct ParameterSets<'a> {
    pub codec: Codec,
    /// H.265 only; empty for H.264.
    pub vps: &'a [u8],
    pub sps: &'a [u8],
    pub pps: &'a [u8],
}

impl<'a> ParameterSets<'a> {
    pub fn h264(sps: &'a [u8], pps: &'a [u8]) -> Self {
        ParameterSets {
            codec: Codec::H264,
            vps: &[],
            sps,
            pps,
        }
    }

    pub fn h265(vps: &'a [u8], sps: &'a [u8], pps: &'a [u8]) -> Self {
        ParameterSets {
            codec: Codec::H265,
            vps,
            sps,
            pps,
        }
    }
}

/// One access unit in decode order.
#[derive(Clone, Copy, Debug)]
pub struct AccessUnit<'a> {
    /// NAL units, each preceded by a 4-byte big-endian length (as `Frame::data`).
    pub data: &'a [u8],
    /// Presentation time in 90 kHz ticks.
    pub pts: i64,
    /// An IDR/IRAP picture.
    pub keyframe: bool,
}

/// A slice header fits in far fewer bytes than this; reading no more keeps the emulation
/// prevention removal cheap for large slices.
const HEADER_BYTES: usize = 64;

/// PicOrderCntMsb (H.264 8-3, H.265 8-1): the previous picture's MSB, moved by one LSB period
/// when the LSB wrapped. `max` is MaxPicOrderCntLsb, a power of two from 16 to 65536.
fn poc_msb(prev_msb: i64, prev_lsb: i64, lsb: i64, max: i64) -> i64 {
    if lsb < prev_lsb && prev_lsb - lsb >= max / 2 {
        prev_msb.saturating_add(max)
    } else if lsb > prev_lsb && lsb - prev_lsb > max / 2 {
        prev_msb.saturating_sub(max)
    } else {
        prev_msb
    }
}

/// What the POC derivation says of one picture.
struct Picture {
    poc: i64,
    /// An IDR (or BLA, or a first CRA): POCs start again.
    starts_sequence: bool,
}

/// A copy of the parameter sets, to notice when they change.
struct OwnedSets {
    codec: Codec,
    vps: Vec<u8>,
    sps: Vec<u8>,
    pps: Vec<u8>,
}

impl OwnedSets {
    fn is(&self, p: &ParameterSets<'_>) -> bool {
        self.codec == p.codec && self.vps == p.vps && self.sps == p.sps && self.pps == p.pps
    }
}

enum PocState {
    H264(h264::PocState),
    H265(h265::PocState),
}

/// Derives decode times from presentation times; one per stream, fed every access unit.
pub struct DtsExtractor {
    /// The parameter sets the state below was built for.
    params: Option<OwnedSets>,
    /// `None` when those parameter sets cannot be parsed: timing falls back to dts = pts.
    poc: Option<PocState>,
    /// R from the SPS; `None` when it must be learnt.
    signalled: Option<usize>,
    /// The reorder depth in use: the signalled one, grown when the stream reorders deeper.
    delay: usize,
    /// Presentation times not yet given out as decode times, smallest first.
    pending: BinaryHeap<Reverse<i64>>,
    last_dts: Option<i64>,
    last_popped: Option<i64>,
    frame_ticks: i64,
    /// The next picture starts a run: no decode time before it constrains it.
    fresh: bool,
    /// POCs of the current coded video sequence in decode order, newest last.
    recent_pocs: VecDeque<i64>,
    first_poc: Option<i64>,
    max_poc: Option<i64>,
    /// H.264 encoders number frames 2 POCs apart; one odd difference says this one does not.
    odd_poc_step: bool,
}

impl Default for DtsExtractor {
    fn default() -> Self {
        DtsExtractor::new()
    }
}

impl DtsExtractor {
    pub fn new() -> Self {
        DtsExtractor {
            params: None,
            poc: None,
            signalled: None,
            delay: 0,
            pending: BinaryHeap::new(),
            last_dts: None,
            last_popped: None,
            frame_ticks: DEFAULT_FRAME_TICKS,
            fresh: true,
            recent_pocs: VecDeque::new(),
            first_poc: None,
            max_poc: None,
            odd_poc_step: false,
        }
    }

    /// Forgets the stream: the next access unit starts a run as if it were the first (for a
    /// new session whose clock starts anew).
    pub fn reset(&mut self) {
        *self = DtsExtractor {
            frame_ticks: self.frame_ticks,
            ..DtsExtractor::new()
        };
    }

    /// The reorder depth in use (0: dts == pts).
    pub fn reorder_depth(&self) -> usize {
        self.delay
    }

    /// The decode time of `au`, which follows the previous access unit in decode order.
    pub fn extract(
        &mut self,
        params: &ParameterSets<'_>,
        au: &AccessUnit<'_>,
    ) -> Result<i64, MediaError> {
        self.use_params(params);
        let picture = self.picture(params.codec, au.data)?;
        if let Some(p) = &picture {
            self.learn(params.codec, p);
        } else if au.keyframe {
            self.new_sequence();
        }
        let pts = au.pts;
        if !self.fresh {
            let jumped_back = self.last_dts.is_some_and(|last| {
                let bound = self
                    .frame_ticks
                    .saturating_mul(2 * (self.delay as i64 + 1))
                    .max(90_000);
                last.saturating_sub(pts) > bound
            });
            let starts = au.keyframe || picture.as_ref().is_some_and(|p| p.starts_sequence);
            // A keyframe displays after everything decoded before it; when it does not, the
            // camera's clock went back, and what is pending belongs to the old timeline.
            let inconsistent = starts && self.pending.iter().any(|p| p.0 >= pts);
            if jumped_back || inconsistent {
                self.fresh = true;
            }
        }
        let floor = match self.last_dts {
            Some(last) if last < pts => Some(last + 1),
            Some(last) if !self.fresh => {
                return Err(MediaError::invalid(
                    WHAT,
                    format!(
                        "pts {pts} is not after the decode time {last} already given: the \
                         stream reorders deeper than {} pictures, or its timestamps repeat",
                        self.delay
                    ),
                ));
            }
            _ => None,
        };
        if self.fresh {
            self.pending.clear();
            self.last_popped = None;
            self.fresh = false;
        }
        self.pending.push(Reverse(pts));
        let candidate = if self.pending.len() > self.delay {
            // Non-empty: a value was pushed just above.
            let Reverse(popped) = self.pending.pop().unwrap_or(Reverse(pts));
            if let Some(prev) = self.last_popped
                && popped > prev
            {
                self.frame_ticks = popped.saturating_sub(prev).min(900_000);
            }
            self.last_popped = Some(popped);
            popped
        } else if let (Some(_), Some(last)) = (self.last_popped, self.last_dts) {
            // R grew mid-run: the pictures that fill the gap display soon after the last
            // decode time, so the stalled decode times stay as close to it as they can.
            last.saturating_add(1)
        } else {
            // The first R pictures of a run: step back from the earliest presentation time.
            let earliest = self.pending.peek().map_or(pts, |p| p.0);
            let steps = (self.delay + 1 - self.pending.len()) as i64;
            earliest.saturating_sub(self.frame_ticks.saturating_mul(steps))
        };
        // candidate <= pts (pts is pending, or it is the earliest pending), and floor <= pts.
        let dts = floor.map_or(candidate, |f| candidate.max(f));
        self.last_dts = Some(dts);
        Ok(dts)
    }

    /// Rebuilds the state when the parameter sets change: a new run with their R.
    fn use_params(&mut self, params: &ParameterSets<'_>) {
        if self.params.as_ref().is_some_and(|own| own.is(params)) {
            return;
        }
        self.params = Some(OwnedSets {
            codec: params.codec,
            vps: params.vps.to_vec(),
            sps: params.sps.to_vec(),
            pps: params.pps.to_vec(),
        });
        let (poc, signalled) = match params.codec {
            Codec::H264 => (
                h264::PocState::new(params.sps, params.pps)
                    .ok()
                    .map(PocState::H264),
                h264::PocState::signalled_reorder(params.sps),
            ),
            Codec::H265 => {
                let state = h265::PocState::new(params.sps, params.pps).ok();
                let signalled = state.as_ref().and_then(h265::PocState::signalled_reorder);
                (state.map(PocState::H265), signalled)
            }
        };
        let ticks = match &poc {
            Some(PocState::H264(s)) => s.frame_ticks(),
            Some(PocState::H265(s)) => s.frame_ticks(),
            None => None,
        };
        self.frame_ticks = ticks.unwrap_or(self.frame_ticks);
        self.signalled = signalled.map(|r| r.min(MAX_REORDER));
        self.delay = self.signalled.unwrap_or(0);
        self.poc = poc;
        self.fresh = true;
        self.new_sequence();
    }

    /// The POC of the access unit's picture: `None` (timing from pts alone) when the
    /// parameter sets or the slice header cannot be read; an error when there is no picture.
    fn picture(&mut self, codec: Codec, data: &[u8]) -> Result<Option<Picture>, MediaError> {
        let slice = nal_units(data).find(|n| match codec {
            Codec::H264 => n.first().is_some_and(|b| (1..=5).contains(&(b & 0x1f))),
            Codec::H265 => n.first().is_some_and(|b| (b >> 1) & 0x3f < 32),
        });
        let Some(slice) = slice else {
            return Err(MediaError::invalid(WHAT, "the access unit has no slice"));
        };
        Ok(match &mut self.poc {
            Some(PocState::H264(s)) => s.picture(slice).ok(),
            Some(PocState::H265(s)) => s.picture(slice).ok(),
            None => None,
        })
    }

    fn new_sequence(&mut self) {
        self.recent_pocs.clear();
        self.first_poc = None;
        self.max_poc = None;
    }

    /// Grows R when this picture shows deeper reordering than R allows.
    fn learn(&mut self, codec: Codec, p: &Picture) {
        if p.starts_sequence {
            self.new_sequence();
        }
        let first = *self.first_poc.get_or_insert(p.poc);
        if p.poc.wrapping_sub(first) % 2 != 0 {
            self.odd_poc_step = true;
        }
        // Pictures decoded before this one that display after it.
        let mut need = self.recent_pocs.iter().filter(|&&q| q > p.poc).count();
        if self.signalled.is_none()
            && let Some(max) = self.max_poc
            && p.poc > max
        {
            // A gap in display order: the pictures that fill it come later in decode order
            // and display before this one, so R must be at least 1 (more for a pyramid).
            let step = if codec == Codec::H264 && !self.odd_poc_step {
                2
            } else {
                1
            };
            let gap = (p.poc.saturating_sub(max) / step).saturating_sub(1);
            need = need.max(
                usize::try_from(gap)
                    .unwrap_or(usize::MAX)
                    .min(MAX_GAP_REORDER),
            );
        }
        self.delay = self.delay.max(need.min(MAX_REORDER));
        if self.recent_pocs.len() == POC_WINDOW {
            self.recent_pocs.pop_front();
        }
        self.recent_pocs.push_back(p.poc);
        self.max_poc = Some(self.max_poc.map_or(p.poc, |m| m.max(p.poc)));
    }
}

/// The NAL units of 4-byte length-prefixed data; stops at the first truncated one.
fn nal_units(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = data;
    std::iter::from_fn(move || {
        let (len, tail) = rest.split_first_chunk::<4>()?;
        let len = usize::try_from(u32::from_be_bytes(*len)).ok()?;
        if len > tail.len() {
            rest = &[];
            return None;
        }
        let (nal, after) = tail.split_at(len);
        rest = after;
        Some(nal)
    })
}

#[cfg(test)]
mod tests;
