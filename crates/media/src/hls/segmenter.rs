//! The segmenter's state and its push path: frames in, parts and segments out.
//! Rendering lives in playlist.rs, lookups and reload decisions in access.rs.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::SegmenterConfig;
use crate::fmp4::{AUDIO_TRACK_ID, TrackRun, VIDEO_TRACK_ID};
use crate::{AudioParams, CodecParams, Frame, TIMESCALE, fmp4};

const TICKS_PER_SEC: u64 = TIMESCALE as u64;
/// Timestamps beyond this magnitude (about 1.6 million years at 90 kHz) are refused, so the
/// timeline arithmetic below can never overflow an i64.
const MAX_TIMESTAMP: i64 = 1 << 62;
/// Frame duration assumed when none is known yet (a lone frame before a discontinuity).
const DEFAULT_FRAME_TICKS: u64 = TICKS_PER_SEC / 30;
/// |pts - dts| beyond this is not a plausible reorder delay; such a pts is replaced by dts.
const MAX_COMPOSITION_OFFSET: i64 = 10 * TIMESCALE as i64;
/// A generation with audio whose audio has been silent this long (video time) gives way to
/// one without at the next keyframe: players stall at the end of a track's buffer, so a
/// camera whose audio died must not hold its video back.
const AUDIO_SILENCE: i64 = 2 * TIMESCALE as i64;
/// Bound of the audio waiting for parts (far more than the audio of a part's worth of video).
const MAX_QUEUED_AUDIO: usize = 4096;

/// A finished part: one moof+mdat fragment.
#[derive(Clone, Debug)]
pub(super) struct Part {
    pub id: u64,
    pub chunks: Vec<Bytes>,
    pub duration: u64,
    pub frames: usize,
    /// Starts with a keyframe.
    pub independent: bool,
}

/// A segment: finished once it is in `Segmenter::segments`, growing while it is `open`.
#[derive(Clone, Debug)]
pub(super) struct Segment {
    pub msn: u64,
    pub generation: u64,
    /// Preceded by EXT-X-DISCONTINUITY.
    pub discontinuity: bool,
    pub program_date_time_ms: i64,
    /// Sum of its frames' durations, in ticks (parts included once they close).
    pub duration: u64,
    pub parts: Vec<Part>,
    pub starts_with_keyframe: bool,
    /// Cut at the ceiling rather than on a keyframe.
    pub forced_cut: bool,
    pub first_frame_duration: u64,
}

/// An init segment in use by some segment of the window (or the current generation).
#[derive(Clone, Debug)]
pub(super) struct Generation {
    pub number: u64,
    pub params: Arc<CodecParams>,
    /// The AAC track of this generation's init segment, if any. Decided (`sealed`) when its
    /// first part closes, from the audio that arrived with that part's video: the first
    /// keyframe usually comes a little before the camera's first audio frame.
    pub audio: Option<Arc<AudioParams>>,
    pub sealed: bool,
    pub init: Bytes,
}

/// Frames of the part being filled, already on the internal timeline.
#[derive(Default)]
struct OpenPart {
    frames: Vec<Frame>,
    end_dts: i64,
    duration: u64,
}

/// The newest frame, waiting for the next one to know its duration.
struct Pending {
    frame: Frame,
    source_dts: i64,
    wallclock_ms: i64,
}

/// What one `push` changed, so a server knows whether to wake waiting requests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PushOutcome {
    pub parts_completed: u32,
    pub segments_completed: u32,
    /// The frame started a discontinuity (codec change or timestamp jump).
    pub discontinuity: bool,
    /// The frame was dropped (waiting for a keyframe, absurd timestamps, bad parameters).
    pub dropped: bool,
    /// Frames (pushed earlier or now, never dropped ones) that left the part being filled:
    /// they are in the parts completed by this push. Frames leave in push order, so a caller
    /// that queues something per accepted frame (`!dropped`) pops this many, e.g. to measure
    /// how long each frame took to become available.
    pub frames_completed: u32,
}

impl PushOutcome {
    /// True when the playlist changed (new parts or segments).
    pub fn changed(&self) -> bool {
        self.parts_completed > 0 || self.segments_completed > 0
    }
}

/// Public view of a segment, for tests, metrics and property checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentInfo {
    pub msn: u64,
    /// Ticks of `TIMESCALE`.
    pub duration: u64,
    pub part_durations: Vec<u64>,
    pub part_frames: Vec<usize>,
    pub starts_with_keyframe: bool,
    pub forced_cut: bool,
    pub first_frame_duration: u64,
    pub discontinuity: bool,
    /// Still growing (the last one, after the complete ones).
    pub open: bool,
}

/// The LL-HLS segmenter; see the module docs for the rules it follows.
pub struct Segmenter {
    pub(super) config: SegmenterConfig,
    pub(super) part_target: u64,
    segment_target: u64,
    /// Ceiling of a segment (ticks) = target_duration_secs * TIMESCALE.
    pub(super) ceiling: u64,
    pub(super) target_duration_secs: u64,
    /// Complete segments, oldest first.
    pub(super) segments: VecDeque<Segment>,
    pub(super) open: Option<Segment>,
    part: OpenPart,
    /// Msn the next opened segment gets.
    pub(super) next_msn: u64,
    pub(super) next_part_id: u64,
    /// Init segments referenced by the window, oldest first; the last is the current one.
    pub(super) generations: VecDeque<Generation>,
    pending: Option<Pending>,
    /// Added to source timestamps in the current run to get the internal timeline.
    offset: i64,
    /// Internal decode time just after the last committed frame.
    timeline_end: i64,
    last_duration: Option<u64>,
    last_keyframe_dts: Option<i64>,
    /// The next segment opened gets EXT-X-DISCONTINUITY.
    discontinuity_next: bool,
    pub(super) discontinuity_sequence: u64,
    need_keyframe: bool,
    new_run: bool,
    dropped_frames: u64,
    /// Frames that ever left the part being filled (see `PushOutcome::frames_completed`).
    frames_closed: u64,
    fragment_sequence: u32,
    /// AAC frames of the current run on the internal timeline, decode order, waiting for the
    /// part their time falls in (the newest waits for its successor, which gives its duration).
    audio: VecDeque<Frame>,
    /// Internal decode time of the current run's first video frame: audio before it belongs to
    /// no part of this run.
    run_start: i64,
    /// The newest AAC parameters pushed (accepted or not) and `timeline_end` then: whether
    /// the camera is sending audio, even while its frames cannot be used yet.
    audio_seen: Option<(Arc<AudioParams>, i64)>,
    /// The audio no longer matches the current generation (audio appeared, changed or went
    /// silent): the next keyframe starts a new generation.
    audio_restart: bool,
}

fn ticks(d: Duration) -> u64 {
    u64::try_from(d.as_micros().saturating_mul(u128::from(TICKS_PER_SEC)) / 1_000_000)
        .unwrap_or(u64::MAX)
}

impl Segmenter {
    /// A segmenter with `config`, normalized: the part target is at least 10 ms, the segment
    /// target at least the part target, the window at least 2, the ceiling a whole number of
    /// seconds (1..=60) no smaller than the segment target.
    pub fn new(config: SegmenterConfig) -> Segmenter {
        let part_target = ticks(config.part_target).max(ticks(Duration::from_millis(10)));
        let segment_target = ticks(config.segment_target)
            .max(part_target)
            .min(60 * TICKS_PER_SEC);
        let requested = config
            .max_segment
            .map_or(4 * TICKS_PER_SEC, ticks)
            .max(segment_target);
        let target_duration_secs = requested.div_ceil(TICKS_PER_SEC).clamp(1, 60);
        let mut config = config;
        config.window = config.window.max(2);
        Segmenter {
            config,
            part_target,
            segment_target,
            ceiling: target_duration_secs * TICKS_PER_SEC,
            target_duration_secs,
            segments: VecDeque::new(),
            open: None,
            part: OpenPart::default(),
            next_msn: 0,
            next_part_id: 0,
            generations: VecDeque::new(),
            pending: None,
            offset: 0,
            timeline_end: 0,
            last_duration: None,
            last_keyframe_dts: None,
            discontinuity_next: false,
            discontinuity_sequence: 0,
            need_keyframe: true,
            new_run: true,
            dropped_frames: 0,
            frames_closed: 0,
            fragment_sequence: 1,
            audio: VecDeque::new(),
            run_start: 0,
            audio_seen: None,
            audio_restart: false,
        }
    }

    /// Adds the next frame in decode order, seen at `wallclock_unix_ms`.
    pub fn push(&mut self, frame: &Frame, wallclock_unix_ms: i64) -> PushOutcome {
        let mut out = PushOutcome::default();
        let before = (self.next_part_id, self.segment_count_total());
        let closed_before = self.frames_closed;
        let Some(video) = frame.video() else {
            // Audio never completes a part (video decides where parts end) and is not counted
            // in `dropped` or `frames_completed`, which are about video frames.
            self.push_audio(frame);
            return out;
        };
        if frame.dts.abs() > MAX_TIMESTAMP || frame.pts.abs() > MAX_TIMESTAMP {
            self.dropped_frames += 1;
            out.dropped = true;
            return out;
        }
        let params_changed = self
            .generations
            .back()
            .is_none_or(|g| !(Arc::ptr_eq(&g.params, video) || *g.params == **video))
            || (frame.keyframe && self.audio_restart);
        if let Some(prev) = self.pending.take() {
            let gap = frame.dts - prev.source_dts;
            if params_changed || gap <= 0 || gap as u64 > self.ceiling {
                let estimate = self.last_duration.unwrap_or(DEFAULT_FRAME_TICKS);
                self.commit(prev.frame, estimate, prev.wallclock_ms);
                self.close_segment();
                self.discontinuity_next = true;
                self.need_keyframe = true;
                self.new_run = true;
                out.discontinuity = true;
            } else {
                self.commit(prev.frame, gap as u64, prev.wallclock_ms);
                let next = self.last_duration.unwrap_or(0);
                if frame.keyframe && self.keyframe_starts_segment(next) {
                    self.close_segment();
                } else if self.part.duration + next > self.part_target {
                    self.close_part();
                }
            }
        }
        if self.need_keyframe && !frame.keyframe {
            self.dropped_frames += 1;
            out.dropped = true;
        } else {
            if params_changed && !self.start_generation(video) {
                self.dropped_frames += 1;
                out.dropped = true;
            } else {
                if self.new_run {
                    self.offset = self.timeline_end - frame.dts;
                    self.new_run = false;
                    self.need_keyframe = false;
                    self.run_start = self.timeline_end;
                    self.audio.clear();
                }
                let mut mapped = frame.clone();
                let composition = frame.pts - frame.dts;
                mapped.dts = frame.dts + self.offset;
                mapped.pts = mapped.dts
                    + if composition.abs() > MAX_COMPOSITION_OFFSET {
                        0
                    } else {
                        composition
                    };
                self.pending = Some(Pending {
                    frame: mapped,
                    source_dts: frame.dts,
                    wallclock_ms: wallclock_unix_ms,
                });
            }
        }
        out.parts_completed = (self.next_part_id - before.0) as u32;
        out.segments_completed = (self.segment_count_total() - before.1) as u32;
        out.frames_completed = (self.frames_closed - closed_before) as u32;
        out
    }

    /// Ends the stream: the held-back frame gets the last known frame duration and the open
    /// part and segment are completed. Pushing again later continues after a discontinuity.
    pub fn flush(&mut self) -> PushOutcome {
        let before = (self.next_part_id, self.segment_count_total());
        let closed_before = self.frames_closed;
        if let Some(prev) = self.pending.take() {
            let estimate = self.last_duration.unwrap_or(DEFAULT_FRAME_TICKS);
            self.commit(prev.frame, estimate, prev.wallclock_ms);
        }
        self.close_segment();
        self.audio.clear();
        self.discontinuity_next = self.next_msn > 0;
        self.need_keyframe = true;
        self.new_run = true;
        PushOutcome {
            parts_completed: (self.next_part_id - before.0) as u32,
            segments_completed: (self.segment_count_total() - before.1) as u32,
            frames_completed: (self.frames_closed - closed_before) as u32,
            ..PushOutcome::default()
        }
    }

    /// Frames dropped so far (before a keyframe, with absurd timestamps, or unusable params).
    pub fn dropped_frames(&self) -> u64 {
        self.dropped_frames
    }

    /// Segments of the window (complete ones, then the open one), oldest first.
    pub fn segment_infos(&self) -> Vec<SegmentInfo> {
        let info = |s: &Segment, open: bool| SegmentInfo {
            msn: s.msn,
            duration: s.duration,
            part_durations: s.parts.iter().map(|p| p.duration).collect(),
            part_frames: s.parts.iter().map(|p| p.frames).collect(),
            starts_with_keyframe: s.starts_with_keyframe,
            forced_cut: s.forced_cut,
            first_frame_duration: s.first_frame_duration,
            discontinuity: s.discontinuity,
            open,
        };
        self.segments
            .iter()
            .map(|s| info(s, false))
            .chain(self.open.iter().map(|s| info(s, true)))
            .collect()
    }

    /// Completed segments over the stream's life (msn of the next one to complete).
    fn segment_count_total(&self) -> u64 {
        self.segments.back().map_or(0, |s| s.msn + 1)
    }

    /// Should a keyframe arriving now (at `timeline_end`) start a new segment? `next` is the
    /// expected duration of a frame (the last one's). Yes once the segment has reached the
    /// target (within half a frame), or when another GOP as long as the one just ended would
    /// take it past the target.
    fn keyframe_starts_segment(&self, next: u64) -> bool {
        let Some(seg) = &self.open else {
            return false;
        };
        let tolerance = next / 2;
        let gop = self
            .last_keyframe_dts
            .and_then(|k| u64::try_from(self.timeline_end - k).ok());
        seg.duration + tolerance >= self.segment_target
            || gop.is_some_and(|gop| seg.duration + gop > self.segment_target + tolerance)
    }

    /// Makes `params` the current generation; false if no init segment can be built.
    fn start_generation(&mut self, params: &Arc<CodecParams>) -> bool {
        let Ok(init) = fmp4::init_segment(params) else {
            return false;
        };
        let number = self.generations.back().map_or(0, |g| g.number + 1);
        self.generations.push_back(Generation {
            number,
            params: params.clone(),
            audio: None,
            sealed: false,
            init,
        });
        self.audio_restart = false;
        if self.next_msn > 0 || self.open.is_some() {
            self.discontinuity_next = true;
        }
        self.prune_generations();
        true
    }

    /// Queues an AAC frame for the part its time falls in; anything else (G.711, Opus, audio
    /// outside the current run, out of order) is left out.
    fn push_audio(&mut self, frame: &Frame) {
        let Some(params) = frame.audio() else {
            return;
        };
        if !params.fmp4_supported() || frame.dts.abs() > MAX_TIMESTAMP {
            return;
        }
        self.audio_seen = Some((params.clone(), self.timeline_end));
        if self.new_run || self.need_keyframe {
            return;
        }
        let Some(g) = self.generations.back() else {
            return;
        };
        if g.sealed {
            let carried = g
                .audio
                .as_ref()
                .is_some_and(|a| Arc::ptr_eq(a, params) || **a == **params);
            if !carried {
                // Audio appeared or changed: the init segment must say so, from a keyframe on.
                self.audio_restart = true;
                return;
            }
        } else if self
            .audio
            .back()
            .and_then(Frame::audio)
            .is_some_and(|a| **a != **params)
        {
            self.audio.clear();
        }
        let dts = frame.dts.saturating_add(self.offset);
        let ceiling = self.ceiling as i64;
        if dts < self.run_start || dts > self.timeline_end.saturating_add(ceiling) {
            return;
        }
        if let Some(last) = self.audio.back() {
            if dts <= last.dts {
                return;
            }
            if dts - last.dts > ceiling {
                // A long hole: the frame before it would last seconds; start the track anew.
                self.audio.clear();
            }
        }
        if self.audio.len() >= MAX_QUEUED_AUDIO {
            self.audio.pop_front();
        }
        let mut mapped = frame.clone();
        mapped.dts = dts;
        mapped.pts = dts;
        self.audio.push_back(mapped);
    }

    /// The audio of the part ending at `video_end`: queued frames before it, each with a
    /// successor (which gives its duration), and the decode time after the last. Decides the
    /// current generation's audio track first if its first part is closing now.
    fn take_audio(&mut self, video_end: i64) -> (Vec<Frame>, i64) {
        let none = (Vec::new(), 0);
        let recent = self
            .audio_seen
            .as_ref()
            .filter(|(_, at)| self.timeline_end.saturating_sub(*at) <= AUDIO_SILENCE)
            .map(|(p, _)| p.clone());
        let Some(g) = self.generations.back_mut() else {
            return none;
        };
        if !g.sealed {
            g.sealed = true;
            let queued = self.audio.back().and_then(Frame::audio).cloned();
            if let Some(a) = queued.or(recent.clone())
                && let Ok(init) = fmp4::init_segment_av(&g.params, Some(&a))
            {
                g.init = init;
                g.audio = Some(a);
            }
        }
        if g.audio.is_none() {
            self.audio.clear();
            return none;
        }
        if recent.is_none() {
            self.audio_restart = true;
        }
        let n = self
            .audio
            .iter()
            .take_while(|f| f.dts < video_end)
            .count()
            .min(self.audio.len().saturating_sub(1));
        let frames: Vec<Frame> = self.audio.drain(..n).collect();
        let end = self.audio.front().map_or(0, |f| f.dts);
        (frames, end)
    }

    /// The current generation's codecs, RFC 6381, comma-separated (`avc1.64001f,mp4a.40.2`),
    /// once its first part has decided whether it carries audio.
    pub fn codecs(&self) -> Option<String> {
        let g = self.generations.back().filter(|g| g.sealed)?;
        let audio = g.audio.as_ref().and_then(|a| a.rfc6381());
        Some(match audio {
            Some(a) => format!("{},{a}", g.params.rfc6381),
            None => g.params.rfc6381.clone(),
        })
    }

    /// The audio track of the current generation's init segment, once decided.
    pub fn audio(&self) -> Option<Arc<AudioParams>> {
        self.generations
            .back()
            .filter(|g| g.sealed)
            .and_then(|g| g.audio.clone())
    }

    /// Appends a frame whose duration is now known to the open part and segment.
    fn commit(&mut self, frame: Frame, duration: u64, wallclock_ms: i64) {
        let duration = duration.clamp(1, self.ceiling);
        let forced = match &self.open {
            None => None,
            Some(seg) if seg.duration + duration > self.ceiling => Some(true),
            Some(_) => Some(false),
        };
        match forced {
            None => self.open_segment(&frame, duration, wallclock_ms, false),
            Some(true) => {
                self.close_segment();
                self.open_segment(&frame, duration, wallclock_ms, true);
            }
            Some(false) => {}
        }
        if self.part.duration > 0 && self.part.duration + duration > self.part_target {
            self.close_part();
        }
        if frame.keyframe {
            self.last_keyframe_dts = Some(frame.dts);
        }
        let dts = frame.dts;
        self.part.frames.push(frame);
        self.part.duration += duration;
        self.part.end_dts = dts + duration as i64;
        if let Some(seg) = &mut self.open {
            seg.duration += duration;
        }
        self.timeline_end = dts + duration as i64;
        self.last_duration = Some(duration);
    }

    fn open_segment(&mut self, first: &Frame, duration: u64, wallclock_ms: i64, forced: bool) {
        let continued = self
            .segments
            .back()
            .filter(|_| !self.discontinuity_next)
            .map(|s| s.program_date_time_ms + (s.duration * 1000 / TICKS_PER_SEC) as i64)
            .filter(|&t| (t - wallclock_ms).abs() <= 1000);
        let generation = self.generations.back().map_or(0, |g| g.number);
        self.open = Some(Segment {
            msn: self.next_msn,
            generation,
            discontinuity: std::mem::take(&mut self.discontinuity_next),
            program_date_time_ms: continued.unwrap_or(wallclock_ms),
            duration: 0,
            parts: Vec::new(),
            starts_with_keyframe: first.keyframe,
            forced_cut: forced,
            first_frame_duration: duration,
        });
        self.next_msn += 1;
    }

    /// Turns the frames collected so far into a part of the open segment.
    fn close_part(&mut self) {
        let part = std::mem::take(&mut self.part);
        if part.frames.is_empty() {
            return;
        }
        // Counted whether or not the part survives, so per-frame bookkeeping of callers
        // stays aligned with the frames they pushed.
        self.frames_closed += part.frames.len() as u64;
        if self.open.is_none() {
            return;
        }
        let audio = self.take_audio(part.end_dts);
        let Some(seg) = &mut self.open else {
            return;
        };
        let runs = [
            TrackRun {
                track_id: VIDEO_TRACK_ID,
                frames: &part.frames,
                end_dts: part.end_dts,
            },
            TrackRun {
                track_id: AUDIO_TRACK_ID,
                frames: &audio.0,
                end_dts: audio.1,
            },
        ];
        match fmp4::fragment_tracks(self.fragment_sequence, &runs) {
            Ok(chunks) => {
                seg.parts.push(Part {
                    id: self.next_part_id,
                    chunks,
                    duration: part.duration,
                    frames: part.frames.len(),
                    independent: part.frames[0].keyframe,
                });
                self.next_part_id += 1;
                self.fragment_sequence = self.fragment_sequence.wrapping_add(1);
            }
            Err(_) => {
                // Cannot happen with the timeline kept here (increasing, non-negative, bounded
                // offsets); if it does, losing these frames beats a broken fragment.
                seg.duration -= part.duration.min(seg.duration);
                self.dropped_frames += part.frames.len() as u64;
            }
        }
    }

    /// Completes the open segment (closing its part) and slides the window.
    fn close_segment(&mut self) {
        self.close_part();
        let Some(seg) = self.open.take() else {
            return;
        };
        if seg.parts.is_empty() {
            // Nothing survived; give its msn to the next segment so numbers stay contiguous.
            self.next_msn = seg.msn;
            self.discontinuity_next |= seg.discontinuity;
            return;
        }
        self.segments.push_back(seg);
        let min_duration = 3 * self.ceiling;
        while self.segments.len() > self.config.window {
            let total: u64 = self.segments.iter().map(|s| s.duration).sum();
            let front = &self.segments[0];
            if total - front.duration < min_duration {
                break;
            }
            if front.discontinuity {
                self.discontinuity_sequence += 1;
            }
            self.segments.pop_front();
        }
        self.prune_generations();
    }

    /// Drops init segments no segment of the window uses any more (keeping the current one).
    fn prune_generations(&mut self) {
        let oldest_used = self
            .segments
            .front()
            .or(self.open.as_ref())
            .map(|s| s.generation);
        while self.generations.len() > 1
            && oldest_used.is_none_or(|g| self.generations[0].number < g)
        {
            self.generations.pop_front();
        }
    }
}
