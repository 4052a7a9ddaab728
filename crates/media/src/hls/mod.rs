//! Low-Latency HLS (draft-pantos-hls-rfc8216bis): turns a stream of `Frame`s into parts,
//! segments and a media playlist, all held in RAM. Owns segmentation, naming, playlist text
//! and the blocking-reload decision; it does no I/O and reads no clock (the caller passes the
//! wall-clock time of each frame), so a server wraps it in a lock and answers HTTP from it.
//!
//! # Public API
//! - [`Segmenter::new`]`(`[`SegmenterConfig`]`)`; [`Segmenter::push`]`(&frame, wallclock_unix_ms)`
//!   for every frame in decode order; [`Segmenter::flush`] at the end of a stream. Both return
//!   a [`PushOutcome`]: whether the playlist changed (wake waiting players only then) and how
//!   many frames became available in completed parts.
//! - [`Segmenter::playlist`]`(skip)` renders the media playlist (`skip` = the client sent
//!   `_HLS_skip=YES`); [`Segmenter::playlist_with_query`] also appends a query (e.g. a viewer
//!   token) to every URI in it. [`Segmenter::playlist_template`]`(skip)` renders once for
//!   many clients: [`PlaylistTemplate::with_query`] splices each client's query in (a copy,
//!   no render), which is what a server answering thousands of players per part wants.
//! - [`Segmenter::lookup`]`(file_name)` resolves every name the playlist emits to an
//!   [`HlsResource`] (chunks, content type, immutability); anything else is `None`.
//! - [`Segmenter::blocking_reload`]`(msn, part)` decides an `_HLS_msn`/`_HLS_part` request:
//!   [`ReloadDecision::Ready`], `Wait` (re-ask after the next push) or `BadRequest` (HTTP 400).
//! - Accessors: [`Segmenter::is_playable`] (a first part exists), [`Segmenter::next_msn`] /
//!   [`Segmenter::next_part`], [`Segmenter::init_segment`], [`Segmenter::target_duration_secs`],
//!   [`Segmenter::codecs`] (RFC 6381, both tracks) and [`Segmenter::audio`].
//!
//! # Segmentation rules
//! - A segment starts on a keyframe once the current one has reached the segment target
//!   (within half a frame), or earlier when waiting for the next keyframe would take it past the
//!   target (judged from the last GOP length). With a GOP longer than the target, segments
//!   stretch to the next keyframe.
//! - **EXT-X-TARGETDURATION never changes**: it is the ceiling `max_segment` (default
//!   `max(4 s, ceil(segment_target))`), fixed at construction. A segment never exceeds it: if a
//!   GOP is longer than the ceiling, the segment is cut at the ceiling on a non-keyframe (that
//!   segment's first part is not INDEPENDENT, and the playlist does not claim
//!   EXT-X-INDEPENDENT-SEGMENTS). 4 s covers the GOPs cameras ship with (1, 2, 4 s) so their
//!   segments all start on keyframes; the cost is that non-LL players, which hold back three
//!   target durations, start further from live. LL-HLS players use PART-HOLD-BACK instead.
//! - A part closes before a frame that would take it past the part target, and as soon as
//!   another frame like the last would, so parts are published without waiting; a part exceeds
//!   the target only when a single frame does. PART-HOLD-BACK is 3x the part target
//!   (plus 1 ms, so float comparisons agree).
//! - Each frame's duration is the distance to the next frame's dts, so the newest frame is held
//!   until the next arrives (one frame of latency) — or until `flush`.
//! - Discontinuity (EXT-X-DISCONTINUITY) when the codec parameters change (also a new
//!   init segment under a new name and EXT-X-MAP) or when dts goes back or jumps forward by
//!   more than the ceiling. After one, frames are dropped until the next keyframe; the
//!   internal timeline continues where it stopped, so fragment times never go backwards.
//! - The window keeps `window` complete segments, and more when needed so that the playlist
//!   minus its oldest segment still lasts three target durations (RFC 8216bis §6.2.2).
//! - EXT-X-PROGRAM-DATE-TIME: the wall clock of a segment's first frame after a discontinuity,
//!   then the previous segment's time plus its duration (re-anchored if that drifts over 1 s
//!   from the wall clock passed in).
//! - Delta updates (`delta_updates`, default on): CAN-SKIP-UNTIL is 6x the target duration;
//!   with `skip`, segments wholly older than that are replaced by EXT-X-SKIP. Playlists are
//!   EXT-X-VERSION 9 then (EXT-X-SKIP needs it), else 6 (EXT-X-MAP with fMP4).
//! - Players without LL-HLS ignore the EXT-X-PART tags and play the full segments listed.
//!
//! # Audio
//! - AAC frames (`Track::Audio` with `AudioParams::fmp4_supported`) become a second fMP4 track
//!   (id 2): each part's moof has a traf per track, its audio the AAC frames whose decode time
//!   falls before the part's video end (each held until the next audio frame gives its
//!   duration, so a track never has holes between parts). Video alone decides parts and
//!   segments; audio never completes a part, and `PushOutcome` counts video frames only.
//! - Audio is mapped onto the internal timeline with the video's offset, so it stays in sync;
//!   audio before the run's first video frame, out of order, or further than the ceiling ahead
//!   of the video is left out.
//! - Whether a generation (init segment) has an audio track is decided when its first part
//!   closes: yes if AAC arrived with that part's video or recently before. Audio appearing or
//!   changing later, or falling silent for 2 s, starts a new generation at the next keyframe
//!   (a discontinuity), since players stall at the end of a track that stops growing.
//! - G.711 and Opus are ignored here (browsers' MSE does not play G.711; Opus in fMP4 is not
//!   written yet): such a camera's HLS is its video alone.

mod access;
pub mod names;
mod playlist;
mod segmenter;

use std::time::Duration;

use bytes::Bytes;

pub use playlist::PlaylistTemplate;
pub use segmenter::{PushOutcome, SegmentInfo, Segmenter};

/// Segmenter settings; `Default` is the documented camgate defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmenterConfig {
    /// Target segment duration (segments start on keyframes, so it is stretched).
    pub segment_target: Duration,
    /// Target part duration (EXT-X-PART-INF PART-TARGET).
    pub part_target: Duration,
    /// Complete segments kept in the playlist (at least; see the module docs).
    pub window: usize,
    /// Ceiling of a segment's duration and thus EXT-X-TARGETDURATION; `None` means
    /// `max(4 s, ceil(segment_target))`. Rounded up to whole seconds.
    pub max_segment: Option<Duration>,
    /// Offer delta updates (CAN-SKIP-UNTIL) and honor `skip`.
    pub delta_updates: bool,
    /// Part of every file name: a server that recreates a segmenter for the same URLs
    /// passes a new value (e.g. the creation time in ms) so no name is ever reused for
    /// different bytes (they are served as immutable).
    pub instance: u64,
}

impl Default for SegmenterConfig {
    fn default() -> Self {
        SegmenterConfig {
            segment_target: Duration::from_secs(1),
            part_target: Duration::from_millis(200),
            window: 7,
            max_segment: None,
            delta_updates: true,
            instance: 0,
        }
    }
}

impl SegmenterConfig {
    /// The three settings camgate's `[hls]` config has; the rest default.
    pub fn new(segment_target: Duration, part_target: Duration, window: usize) -> Self {
        SegmenterConfig {
            segment_target,
            part_target,
            window,
            ..SegmenterConfig::default()
        }
    }
}

/// Bytes of something the playlist names, ready to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HlsResource {
    /// Send these in order; payload chunks are the frames' own `Bytes`.
    pub chunks: Vec<Bytes>,
    pub content_type: &'static str,
    /// True when these bytes will never change under this name (cacheable forever).
    pub immutable: bool,
}

impl HlsResource {
    /// Total length in bytes (for Content-Length).
    pub fn len(&self) -> usize {
        self.chunks.iter().map(Bytes::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What to do with a playlist request carrying `_HLS_msn` / `_HLS_part`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReloadDecision {
    /// Answer now with the current playlist.
    Ready,
    /// Hold the request and decide again after the next `push`.
    Wait,
    /// Answer 400 with this reason.
    BadRequest(&'static str),
}

/// Content type of the playlist itself (served by the caller).
pub const PLAYLIST_CONTENT_TYPE: &str = "application/vnd.apple.mpegurl";
/// Content type of init segments, segments and parts.
pub const MP4_CONTENT_TYPE: &str = "video/mp4";
