//! What a server asks the segmenter: resources by file name, blocking-reload decisions, and
//! the state it needs (playable yet? which msn/part comes next? the init segment).

use bytes::Bytes;

use super::names::{self, Name};
use super::segmenter::{Part, Segment};
use super::{HlsResource, MP4_CONTENT_TYPE, ReloadDecision, Segmenter};

impl Segmenter {
    /// Resolves a file name the playlist emitted. `None` for anything else: unknown or
    /// malformed names, another instance's names, segments that slid out of the window, the
    /// open segment (not complete yet) and parts not made yet.
    pub fn lookup(&self, file_name: &str) -> Option<HlsResource> {
        let (instance, name) = names::parse(file_name)?;
        if instance != self.config.instance {
            return None;
        }
        let chunks = match name {
            Name::Init { generation } => vec![
                self.generations
                    .iter()
                    // Not before its first part decided whether it has audio: served bytes
                    // are immutable.
                    .find(|g| g.number == generation && g.sealed)?
                    .init
                    .clone(),
            ],
            Name::Segment { msn } => {
                let seg = self.segments.iter().find(|s| s.msn == msn)?;
                seg.parts
                    .iter()
                    .flat_map(|p| p.chunks.iter().cloned())
                    .collect()
            }
            Name::Part { id } => self.find_part(id)?.chunks.clone(),
        };
        Some(HlsResource {
            chunks,
            content_type: MP4_CONTENT_TYPE,
            immutable: true,
        })
    }

    fn all_segments(&self) -> impl Iterator<Item = &Segment> {
        self.segments.iter().chain(self.open.iter())
    }

    fn find_part(&self, id: u64) -> Option<&Part> {
        // Part ids increase with msn: find the segment whose parts span `id`.
        self.all_segments()
            .flat_map(|s| s.parts.iter())
            .find(|p| p.id == id)
    }

    /// Decides a playlist request with `_HLS_msn` / `_HLS_part` (RFC 8216bis §6.2.5.2):
    /// - `_HLS_part` without `_HLS_msn`: bad request;
    /// - msn more than two beyond the last complete segment: bad request;
    /// - the segment (or the part of it) exists or has slid out of the window: ready
    ///   (the playlist is at least that new); a part index past a complete segment's last part
    ///   means part 0 of the next segment;
    /// - otherwise wait for more frames.
    pub fn blocking_reload(&self, msn: Option<u64>, part: Option<u64>) -> ReloadDecision {
        let Some(msn) = msn else {
            return match part {
                Some(_) => ReloadDecision::BadRequest("_HLS_part requires _HLS_msn"),
                None => ReloadDecision::Ready,
            };
        };
        // The segment being built is next_msn(); the last complete one is one less.
        let building = self.next_msn();
        if msn > building.saturating_add(1) {
            return ReloadDecision::BadRequest("_HLS_msn is more than two segments ahead");
        }
        let Some(part) = part else {
            return if msn < building {
                ReloadDecision::Ready
            } else {
                ReloadDecision::Wait
            };
        };
        if msn < building {
            let parts = self
                .segments
                .iter()
                .find(|s| s.msn == msn)
                .map(|s| s.parts.len() as u64);
            return match parts {
                // Slid out of the window: the current playlist is newer than asked.
                None => ReloadDecision::Ready,
                Some(n) if part < n => ReloadDecision::Ready,
                Some(_) => self.blocking_reload(Some(msn + 1), Some(0)),
            };
        }
        if msn == building && part < self.next_part() {
            ReloadDecision::Ready
        } else {
            ReloadDecision::Wait
        }
    }

    /// True once the first part exists: a playlist request can be answered usefully.
    pub fn is_playable(&self) -> bool {
        self.next_part_id > 0
    }

    /// Msn of the segment being built (the next to complete).
    pub fn next_msn(&self) -> u64 {
        self.open.as_ref().map_or(self.next_msn, |s| s.msn)
    }

    /// Index, within segment `next_msn()`, of the next part to complete.
    pub fn next_part(&self) -> u64 {
        self.open.as_ref().map_or(0, |s| s.parts.len() as u64)
    }

    /// The current init segment and its file name (`None` before the first keyframe).
    pub fn init_segment(&self) -> Option<(String, Bytes)> {
        self.generations.back().map(|g| {
            (
                names::render(
                    self.config.instance,
                    Name::Init {
                        generation: g.number,
                    },
                ),
                g.init.clone(),
            )
        })
    }

    /// EXT-X-TARGETDURATION, fixed for the segmenter's life.
    pub fn target_duration_secs(&self) -> u64 {
        self.target_duration_secs
    }

    /// PART-TARGET in seconds.
    pub fn part_target_secs(&self) -> f64 {
        self.part_target as f64 / f64::from(crate::TIMESCALE)
    }
}
