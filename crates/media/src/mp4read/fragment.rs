//! One `moof` (§8.8.4): per track fragment (`traf`) the `tfhd` defaults, the `tfdt` base
//! decode time and every `trun`, resolved into samples with absolute byte offsets in the
//! file and absolute decode times. The payload is never read here.

use std::ops::Range;

use super::boxes::{BoxHeader, Cursor, children, show};
use super::init::{InitSegment, SampleDefaults};
use crate::MediaError;

const WHAT: &str = "MP4 moof";

/// A `trun` with no per-sample fields still costs memory per sample: bound what one box may
/// claim so hostile input cannot allocate without limit.
const MAX_SAMPLES_PER_TRUN: u32 = 1 << 20;

/// `sample_is_non_sync_sample` in `sample_flags` (§8.8.3.1).
const NON_SYNC: u32 = 0x0001_0000;

/// One sample as the fragment describes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sample {
    /// Absolute byte offset of the payload in the file (moof offset or base data offset,
    /// plus the run's data offset, plus the sizes of the samples before it in the run).
    pub offset: u64,
    pub size: u32,
    /// Absolute decode time in the track's timescale.
    pub dts: u64,
    pub duration: u32,
    /// pts - dts, in the track's timescale.
    pub composition_offset: i32,
    /// `sample_flags` (§8.8.3.1).
    pub flags: u32,
}

impl Sample {
    /// A sync sample: decoding can start here.
    pub fn keyframe(&self) -> bool {
        self.flags & NON_SYNC == 0
    }

    /// Presentation time in the track's timescale (may be negative with a negative
    /// composition offset).
    pub fn pts(&self) -> i64 {
        // dts < 2^63 is checked when samples are built.
        self.dts as i64 + i64::from(self.composition_offset)
    }

    /// The payload's byte range in the file.
    pub fn range(&self) -> Range<u64> {
        self.offset..self.offset + u64::from(self.size)
    }
}

/// The samples of one track in one fragment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackRun {
    pub track_id: u32,
    /// Decode time of the first sample (`tfdt`, or where the previous fragment ended).
    pub base_decode_time: u64,
    pub samples: Vec<Sample>,
}

impl TrackRun {
    /// Decode time just after the last sample.
    pub fn end_decode_time(&self) -> u64 {
        self.samples
            .last()
            .map_or(self.base_decode_time, |s| s.dts + u64::from(s.duration))
    }
}

/// One parsed `moof`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fragment {
    /// Where the `moof` starts in the file.
    pub offset: u64,
    /// The `moof` box's length.
    pub moof_len: u64,
    /// `mfhd` sequence number.
    pub sequence_number: u32,
    pub tracks: Vec<TrackRun>,
}

impl Fragment {
    /// Parses a whole `moof` box (header included) found at `offset` in the file.
    ///
    /// `continue_from(track_id)` gives the decode time to use for a track fragment without
    /// `tfdt` (where that track's previous fragment ended).
    pub fn parse(
        moof: &[u8],
        offset: u64,
        init: &InitSegment,
        continue_from: impl Fn(u32) -> u64,
    ) -> Result<Fragment, MediaError> {
        let header = BoxHeader::parse(moof, offset)?;
        if &header.kind != b"moof" {
            return Err(MediaError::invalid(
                WHAT,
                format!("{} box where moof was expected", show(header.kind)),
            ));
        }
        let moof_len = header.len_within(offset + moof.len() as u64);
        if moof_len > moof.len() as u64 {
            return Err(MediaError::Truncated { what: WHAT });
        }
        // moof_len <= moof.len(): lossless.
        let body = &moof[usize::from(header.header_len)..moof_len as usize];
        let mut sequence_number = None;
        let mut tracks = Vec::new();
        // Without base-data-offset or default-base-is-moof, the first traf's data is
        // relative to the moof and each later one follows the previous traf's data (§8.8.7.1).
        let mut implicit_base = offset;
        for child in children(body, WHAT) {
            let (kind, b) = child?;
            match &kind {
                b"mfhd" => {
                    let mut c = Cursor::new(b, "MP4 mfhd");
                    c.version_flags()?;
                    sequence_number = Some(c.u32()?);
                }
                b"traf" => {
                    let (run, data_end) =
                        parse_traf(b, offset, implicit_base, init, &continue_from)?;
                    if tracks.iter().any(|t: &TrackRun| t.track_id == run.track_id) {
                        return Err(MediaError::invalid(
                            WHAT,
                            format!("track {} twice in one moof", run.track_id),
                        ));
                    }
                    implicit_base = data_end;
                    tracks.push(run);
                }
                _ => {}
            }
        }
        Ok(Fragment {
            offset,
            moof_len,
            sequence_number: sequence_number
                .ok_or_else(|| MediaError::invalid(WHAT, "no mfhd box"))?,
            tracks,
        })
    }

    /// The byte range covering every sample's payload, `None` when there is no sample.
    pub fn data_range(&self) -> Option<Range<u64>> {
        let mut all = self.tracks.iter().flat_map(|t| t.samples.iter());
        let first = all.next()?;
        let init = first.range();
        Some(all.fold(init, |r, s| r.start.min(s.offset)..r.end.max(s.range().end)))
    }

    /// How many samples all tracks hold.
    pub fn sample_count(&self) -> usize {
        self.tracks.iter().map(|t| t.samples.len()).sum()
    }

    /// The run of `track_id`, if the fragment has one.
    pub fn track(&self, track_id: u32) -> Option<&TrackRun> {
        self.tracks.iter().find(|t| t.track_id == track_id)
    }
}

/// Adds a signed offset to an absolute position, refusing what leaves `0..2^63`.
fn offset_by(base: u64, delta: i64) -> Result<u64, MediaError> {
    i64::try_from(base)
        .ok()
        .and_then(|b| b.checked_add(delta))
        .and_then(|v| u64::try_from(v).ok())
        .ok_or_else(|| MediaError::invalid(WHAT, format!("data offset {delta} from {base}")))
}

fn parse_traf(
    traf: &[u8],
    moof_offset: u64,
    implicit_base: u64,
    init: &InitSegment,
    continue_from: &impl Fn(u32) -> u64,
) -> Result<(TrackRun, u64), MediaError> {
    let mut tfhd = None;
    let mut tfdt = None;
    for child in children(traf, "MP4 traf") {
        let (kind, b) = child?;
        match &kind {
            b"tfhd" => tfhd = Some(b),
            b"tfdt" => tfdt = Some(b),
            _ => {}
        }
    }
    let tfhd = tfhd.ok_or_else(|| MediaError::invalid("MP4 traf", "no tfhd box"))?;
    let mut c = Cursor::new(tfhd, "MP4 tfhd");
    let (_, flags) = c.version_flags()?;
    let track_id = c.u32()?;
    let track = init.track(track_id).ok_or_else(|| {
        MediaError::invalid("MP4 tfhd", format!("track {track_id} is not in the moov"))
    })?;
    let mut d: SampleDefaults = track.defaults;
    let base = if flags & 0x01 != 0 {
        c.u64()?
    } else if flags & 0x02_0000 != 0 {
        moof_offset
    } else {
        implicit_base
    };
    if flags & 0x02 != 0 {
        d.sample_description_index = c.u32()?;
    }
    if flags & 0x08 != 0 {
        d.duration = c.u32()?;
    }
    if flags & 0x10 != 0 {
        d.size = c.u32()?;
    }
    if flags & 0x20 != 0 {
        d.flags = c.u32()?;
    }
    let mut dts = match tfdt {
        Some(b) => {
            let mut c = Cursor::new(b, "MP4 tfdt");
            let (version, _) = c.version_flags()?;
            c.u32_or_u64(version)?
        }
        None => continue_from(track_id),
    };
    let base_decode_time = dts;

    let mut samples = Vec::new();
    let mut next_data = base;
    // Runs in box order; a run without data_offset continues after the previous run.
    for child in children(traf, "MP4 traf") {
        let (kind, b) = child?;
        if &kind != b"trun" {
            continue;
        }
        let mut c = Cursor::new(b, "MP4 trun");
        let (version, tflags) = c.version_flags()?;
        let count = c.u32()?;
        let mut pos = if tflags & 0x01 != 0 {
            offset_by(base, i64::from(c.i32()?))?
        } else {
            next_data
        };
        let first_flags = if tflags & 0x04 != 0 {
            Some(c.u32()?)
        } else {
            None
        };
        let per_sample = [0x100, 0x200, 0x400, 0x800]
            .iter()
            .filter(|&&f| tflags & f != 0)
            .count()
            * 4;
        let fits = if per_sample == 0 {
            count <= MAX_SAMPLES_PER_TRUN
        } else {
            (count as usize).checked_mul(per_sample) <= Some(c.remaining())
        };
        if !fits {
            return Err(MediaError::invalid(
                "MP4 trun",
                format!("{count} samples in {} bytes", b.len()),
            ));
        }
        samples.reserve(count as usize);
        for i in 0..count {
            let duration = if tflags & 0x100 != 0 {
                c.u32()?
            } else {
                d.duration
            };
            let size = if tflags & 0x200 != 0 {
                c.u32()?
            } else {
                d.size
            };
            let mut sflags = if tflags & 0x400 != 0 {
                c.u32()?
            } else {
                d.flags
            };
            if i == 0 {
                sflags = first_flags.unwrap_or(sflags);
            }
            let composition_offset = if tflags & 0x800 == 0 {
                0
            } else if version == 0 {
                // Version 0 offsets are unsigned (§8.8.8.2).
                i32::try_from(c.u32()?).map_err(|_| {
                    MediaError::invalid("MP4 trun", "composition offset beyond 2^31")
                })?
            } else {
                c.i32()?
            };
            if dts >= 1 << 63 {
                return Err(MediaError::invalid("MP4 trun", "decode time beyond 2^63"));
            }
            samples.push(Sample {
                offset: pos,
                size,
                dts,
                duration,
                composition_offset,
                flags: sflags,
            });
            pos = pos
                .checked_add(u64::from(size))
                .filter(|&p| p < 1 << 63)
                .ok_or_else(|| MediaError::invalid("MP4 trun", "sample beyond 2^63"))?;
            dts = dts
                .checked_add(u64::from(duration))
                .ok_or_else(|| MediaError::invalid("MP4 trun", "decode time overflows"))?;
        }
        next_data = pos;
    }
    Ok((
        TrackRun {
            track_id,
            base_decode_time,
            samples,
        },
        next_data,
    ))
}
