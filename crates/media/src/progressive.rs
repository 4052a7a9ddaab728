//! A progressive MP4 (ISO/IEC 14496-12) assembled from samples that already sit in other
//! files: `moov` first, then one `mdat` whose payload is the samples' bytes in order. Owns
//! the box layout and the map from output bytes to source bytes; it never reads or copies a
//! payload, so a server streams `header()` and then each piece's bytes from the source files,
//! and answers any byte range with `pieces(range)` without building the file.
//!
//! ```text
//! ftyp                          §4.3    isom, compatible isom iso2 mp41
//! moov                          §8.2.1
//! ├── mvhd                      §8.2.2  movie timescale = the first track's timescale
//! └── trak (one per track)      §8.3.1
//!     ├── tkhd                  §8.3.2  track_ID 1.., width/height (video)
//!     ├── edts/elst             §8.6.6  only when needed: an empty edit for a track that
//!     │                                 starts after the first one, media_time = the first
//!     │                                 composition time when it is not 0 (B-frames)
//!     └── mdia
//!         ├── mdhd              §8.4.2  the track's timescale and duration
//!         ├── hdlr              §8.4.3  the source handler (vide, soun, ...)
//!         └── minf
//!             ├── vmhd|smhd|nmhd
//!             ├── dinf/dref/url §8.7.1  media in this file
//!             └── stbl          §8.5.1
//!                 ├── stsd      §8.5.2  the source's sample entry, byte for byte
//!                 ├── stts      §8.6.1.2 durations, run-length coded
//!                 ├── ctts      §8.6.1.3 composition offsets (only when any is not 0;
//!                 │                     version 1 when any is negative)
//!                 ├── stss      §8.6.2  sync samples (only when not every sample is one)
//!                 ├── stsz      §8.7.3.2 sizes (one value when all are equal)
//!                 ├── stsc      §8.7.4  samples per chunk, run-length coded
//!                 └── stco|co64 §8.7.5  chunk offsets; co64 when the file passes 4 GiB
//! mdat                          §8.1.1  8-byte header, or 16 (largesize) past 4 GiB
//! ```
//! Chunks are runs of one track's consecutive samples of at most one second, interleaved
//! across tracks by decode time. Boxes use version 1 (64-bit times) only where a duration
//! does not fit 32 bits. Nothing depends on a clock (creation times are 0), so the same
//! samples always give the same bytes: `FORMAT_VERSION` names this layout for ETags.

use std::ops::Range;

use bytes::{BufMut, Bytes, BytesMut};

use crate::MediaError;
use crate::boxes::{BoxWriter, MATRIX};
use crate::mp4read::{BoxHeader, FourCc, InitTrack, Sample};

/// Changes whenever the bytes this module writes for the same samples change; part of any
/// ETag of a progressive file so caches do not mix two layouts.
pub const FORMAT_VERSION: u32 = 1;

const WHAT: &str = "progressive MP4";

/// One sample to place in the output: its timing and where its payload is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SampleRef {
    /// Which source (file) holds the payload: an index into the caller's own list.
    pub source: usize,
    /// Byte offset of the payload in that source.
    pub offset: u64,
    pub size: u32,
    /// In the track's timescale.
    pub duration: u32,
    /// pts - dts, in the track's timescale.
    pub composition_offset: i32,
    pub keyframe: bool,
}

impl SampleRef {
    /// A sample read by `mp4read` from source `source`.
    pub fn from_sample(source: usize, s: &Sample) -> SampleRef {
        SampleRef {
            source,
            offset: s.offset,
            size: s.size,
            duration: s.duration,
            composition_offset: s.composition_offset,
            keyframe: s.keyframe(),
        }
    }
}

/// One track of the output, in decode order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackInput {
    /// `hdlr` type: `vide`, `soun`, ...
    pub handler: FourCc,
    pub timescale: u32,
    /// Video size for `tkhd` (0 for audio).
    pub width: u16,
    pub height: u16,
    /// A whole sample entry box (e.g. `avc1` with its `avcC`), as `InitTrack::sample_entry`.
    pub sample_entry: Bytes,
    /// Decode time of the first sample in the track's timescale, on a timeline shared by all
    /// tracks: a track starting later than another gets an empty edit for the difference.
    pub start: u64,
    pub samples: Vec<SampleRef>,
}

impl TrackInput {
    /// A track described by an init segment's track, with no samples yet.
    pub fn from_init(track: &InitTrack, start: u64) -> TrackInput {
        TrackInput {
            handler: track.handler,
            timescale: track.timescale,
            width: track.width,
            height: track.height,
            sample_entry: track.sample_entry.clone(),
            start,
            samples: Vec::new(),
        }
    }
}

/// A run of output bytes taken from one source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Where this run starts in the output.
    pub out_offset: u64,
    pub source: usize,
    /// Where it starts in the source.
    pub offset: u64,
    pub len: u64,
}

/// A part of an output byte range: bytes of `Progressive::header()`, or bytes to read from
/// a source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Piece {
    Header(Range<usize>),
    Source {
        source: usize,
        offset: u64,
        len: u64,
    },
}

/// A progressive MP4 laid out but not built: its header bytes and where every later byte
/// comes from.
#[derive(Clone, Debug)]
pub struct Progressive {
    header: Bytes,
    mdat_header_len: usize,
    /// In output order, contiguous from `header.len()` to `len`.
    segments: Vec<Segment>,
    len: u64,
    duration: (u64, u32),
}

impl Progressive {
    /// Lays out `tracks` (those without samples are left out). Errors for no samples at all,
    /// a zero timescale, a sample entry that is not one whole box, or sizes past 2^63.
    pub fn build(tracks: &[TrackInput]) -> Result<Progressive, MediaError> {
        let tracks: Vec<&TrackInput> = tracks.iter().filter(|t| !t.samples.is_empty()).collect();
        if tracks.is_empty() {
            return Err(MediaError::invalid(WHAT, "no samples"));
        }
        for t in &tracks {
            if t.timescale == 0 {
                return Err(MediaError::invalid(WHAT, "timescale 0"));
            }
            let h = BoxHeader::parse(&t.sample_entry, 0)?;
            if h.len != Some(t.sample_entry.len() as u64) {
                return Err(MediaError::invalid(
                    WHAT,
                    "sample entry is not one whole box",
                ));
            }
        }
        let chunks = interleave(&tracks)?;
        let payload: u64 = chunks.iter().map(|c| c.bytes).sum();
        let mdat_header_len = if payload + 8 > u64::from(u32::MAX) {
            16
        } else {
            8
        };
        let ftyp = ftyp();
        // Offsets have fixed widths, so the moov is as long with placeholder offsets as with
        // the real ones: lay out once to learn where the mdat payload starts, then for real.
        let max_rel = chunks.last().map_or(0, |c| c.rel_offset);
        let moov_len = moov(&tracks, &chunks, 0, false).len() as u64;
        let co64 = ftyp.len() as u64 + moov_len + 16 + max_rel > u64::from(u32::MAX);
        let moov_len = moov(&tracks, &chunks, 0, co64).len() as u64;
        let base = ftyp.len() as u64 + moov_len + mdat_header_len as u64;
        let moov = moov(&tracks, &chunks, base, co64);
        debug_assert_eq!(moov.len() as u64, moov_len);

        let mut header = BytesMut::with_capacity(base as usize);
        header.put_slice(&ftyp);
        header.put_slice(&moov);
        if mdat_header_len == 16 {
            header.put_u32(1);
            header.put_slice(b"mdat");
            header.put_u64(payload + 16);
        } else {
            // payload + 8 <= u32::MAX was checked above.
            header.put_u32((payload + 8) as u32);
            header.put_slice(b"mdat");
        }
        let mut segments: Vec<Segment> = Vec::new();
        let mut out = base;
        for c in &chunks {
            let t = tracks[c.track];
            for s in &t.samples[c.samples.clone()] {
                let len = u64::from(s.size);
                if len == 0 {
                    continue;
                }
                match segments.last_mut() {
                    Some(g) if g.source == s.source && g.offset + g.len == s.offset => g.len += len,
                    _ => segments.push(Segment {
                        out_offset: out,
                        source: s.source,
                        offset: s.offset,
                        len,
                    }),
                }
                out += len;
            }
        }
        let first = tracks[0];
        Ok(Progressive {
            header: header.freeze(),
            mdat_header_len,
            segments,
            len: out,
            duration: (track_end(&tracks, first.timescale), first.timescale),
        })
    }

    /// Total length of the file.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Never true: a built file has at least a header.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// ftyp + moov + the mdat header: the file's first bytes, to send as they are.
    pub fn header(&self) -> &Bytes {
        &self.header
    }

    /// Length of the mdat header at the end of `header()` (8, or 16 past 4 GiB).
    pub fn mdat_header_len(&self) -> usize {
        self.mdat_header_len
    }

    /// The runs of source bytes after the header, in output order.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// The movie's duration as (value, timescale), as `mvhd` says.
    pub fn duration(&self) -> (u64, u32) {
        self.duration
    }

    /// Where the bytes of `range` (clamped to the file) come from, in order. Empty for an
    /// empty or inverted range.
    pub fn pieces(&self, range: Range<u64>) -> Vec<Piece> {
        let end = range.end.min(self.len);
        let mut pos = range.start;
        let mut out = Vec::new();
        if pos >= end {
            return out;
        }
        let hlen = self.header.len() as u64;
        if pos < hlen {
            // Both are <= hlen, which is a usize.
            let stop = end.min(hlen);
            out.push(Piece::Header(pos as usize..stop as usize));
            pos = stop;
        }
        // The segment holding `pos`: the last one starting at or before it.
        let mut i = self.segments.partition_point(|s| s.out_offset <= pos);
        i = i.saturating_sub(1);
        while pos < end {
            let Some(s) = self.segments.get(i) else { break };
            let skip = pos - s.out_offset;
            let len = (s.len - skip).min(end - pos);
            out.push(Piece::Source {
                source: s.source,
                offset: s.offset + skip,
                len,
            });
            pos += len;
            i += 1;
        }
        out
    }
}

/// A chunk: consecutive samples of one track.
struct Chunk {
    track: usize,
    samples: Range<usize>,
    /// Offset of its first byte from the start of the mdat payload.
    rel_offset: u64,
    bytes: u64,
}

/// Decode time (relative to the track's own first sample) of each sample of a track.
fn decode_times(t: &TrackInput) -> Vec<u64> {
    let mut at = 0u64;
    t.samples
        .iter()
        .map(|s| {
            let d = at;
            at += u64::from(s.duration);
            d
        })
        .collect()
}

/// Splits tracks into chunks of at most a second and orders them by decode time.
fn interleave(tracks: &[&TrackInput]) -> Result<Vec<Chunk>, MediaError> {
    let times: Vec<Vec<u64>> = tracks.iter().map(|t| decode_times(t)).collect();
    let mut next = vec![0usize; tracks.len()];
    let mut chunks = Vec::new();
    let mut rel = 0u64;
    loop {
        // The track whose next sample decodes first, in nanoseconds on the shared timeline.
        let pick = (0..tracks.len())
            .filter(|&i| next[i] < tracks[i].samples.len())
            .min_by_key(|&i| {
                let t = tracks[i];
                let at = u128::from(t.start) + u128::from(times[i][next[i]]);
                (at * 1_000_000_000 / u128::from(t.timescale), i)
            });
        let Some(i) = pick else { break };
        let t = tracks[i];
        let first = next[i];
        let limit = times[i][first] + u64::from(t.timescale);
        let mut last = first + 1;
        while last < t.samples.len() && times[i][last] < limit {
            last += 1;
        }
        let bytes: u64 = t.samples[first..last]
            .iter()
            .map(|s| u64::from(s.size))
            .sum();
        chunks.push(Chunk {
            track: i,
            samples: first..last,
            rel_offset: rel,
            bytes,
        });
        rel = rel
            .checked_add(bytes)
            .filter(|&r| r < 1 << 62)
            .ok_or_else(|| MediaError::invalid(WHAT, "larger than 2^62 bytes"))?;
        next[i] = last;
    }
    Ok(chunks)
}

/// `value` in `from` units expressed in `to` units, rounded down.
fn rescale(value: u64, from: u32, to: u32) -> u64 {
    (u128::from(value) * u128::from(to) / u128::from(from.max(1))) as u64
}

fn media_duration(t: &TrackInput) -> u64 {
    t.samples.iter().map(|s| u64::from(s.duration)).sum()
}

/// The first start among the tracks, in the movie timescale.
fn movie_start(tracks: &[&TrackInput], movie_ts: u32) -> u64 {
    tracks
        .iter()
        .map(|t| rescale(t.start, t.timescale, movie_ts))
        .min()
        .unwrap_or(0)
}

/// Where the last track ends, in the movie timescale, from the movie start.
fn track_end(tracks: &[&TrackInput], movie_ts: u32) -> u64 {
    let start = movie_start(tracks, movie_ts);
    tracks
        .iter()
        .map(|t| {
            rescale(
                t.start.saturating_add(media_duration(t)),
                t.timescale,
                movie_ts,
            ) - start
        })
        .max()
        .unwrap_or(0)
}

fn version_for(v: u64) -> u8 {
    u8::from(v > u64::from(u32::MAX))
}

fn ftyp() -> Bytes {
    let mut w = BoxWriter::new(4096);
    w.start(b"ftyp");
    w.buf.put_slice(b"isom");
    w.buf.put_u32(512);
    for brand in [b"isom", b"iso2", b"mp41"] {
        w.buf.put_slice(brand);
    }
    w.end();
    w.buf.freeze()
}

fn moov(tracks: &[&TrackInput], chunks: &[Chunk], base: u64, co64: bool) -> Bytes {
    let movie_ts = tracks[0].timescale;
    let movie_start = movie_start(tracks, movie_ts);
    let duration = track_end(tracks, movie_ts);
    let mut w = BoxWriter::new(4096);
    w.start(b"moov");
    let v = version_for(duration);
    w.start_full(b"mvhd", v, 0);
    w.time(v, 0); // creation_time
    w.time(v, 0); // modification_time
    w.buf.put_u32(movie_ts);
    w.time(v, duration);
    w.buf.put_u32(0x0001_0000); // rate 1.0
    w.buf.put_u16(0x0100); // volume 1.0
    w.buf.put_bytes(0, 10);
    MATRIX.iter().for_each(|&m| w.buf.put_u32(m));
    w.buf.put_bytes(0, 24); // pre_defined
    w.buf.put_u32(tracks.len() as u32 + 1); // next_track_ID
    w.end();
    for (i, t) in tracks.iter().enumerate() {
        let delay = rescale(t.start, t.timescale, movie_ts) - movie_start;
        trak(&mut w, t, i, chunks, base, co64, movie_ts, delay);
    }
    w.end();
    w.buf.freeze()
}

#[allow(clippy::too_many_arguments)]
fn trak(
    w: &mut BoxWriter,
    t: &TrackInput,
    index: usize,
    chunks: &[Chunk],
    base: u64,
    co64: bool,
    movie_ts: u32,
    delay: u64,
) {
    let times = decode_times(t);
    let media_dur = media_duration(t);
    let first_cts = t
        .samples
        .iter()
        .zip(&times)
        .map(|(s, &d)| d as i64 + i64::from(s.composition_offset))
        .min()
        .unwrap_or(0)
        .max(0) as u64;
    let shown_movie = rescale(media_dur, t.timescale, movie_ts);
    let track_dur = delay + shown_movie;
    let is_video = &t.handler == b"vide";
    let is_audio = &t.handler == b"soun";

    w.start(b"trak");
    let v = version_for(track_dur);
    w.start_full(b"tkhd", v, 0x3); // enabled, in movie
    w.time(v, 0);
    w.time(v, 0);
    w.buf.put_u32(index as u32 + 1);
    w.buf.put_u32(0);
    w.time(v, track_dur);
    w.buf.put_bytes(0, 8);
    w.buf.put_u16(0); // layer
    w.buf.put_u16(0); // alternate_group
    w.buf.put_u16(if is_audio { 0x0100 } else { 0 });
    w.buf.put_u16(0);
    MATRIX.iter().for_each(|&m| w.buf.put_u32(m));
    w.buf.put_u32(u32::from(t.width) << 16);
    w.buf.put_u32(u32::from(t.height) << 16);
    w.end();

    if delay > 0 || first_cts > 0 {
        let mut edits: Vec<(u64, i64)> = Vec::new();
        if delay > 0 {
            edits.push((delay, -1));
        }
        edits.push((shown_movie, first_cts as i64));
        let v = u8::from(
            edits
                .iter()
                .any(|&(d, m)| d > u64::from(u32::MAX) || m > i64::from(i32::MAX)),
        );
        w.start(b"edts");
        w.start_full(b"elst", v, 0);
        w.buf.put_u32(edits.len() as u32);
        for (d, m) in edits {
            if v == 1 {
                w.buf.put_u64(d);
                w.buf.put_i64(m);
            } else {
                w.buf.put_u32(d as u32);
                w.buf.put_i32(m as i32);
            }
            w.buf.put_u16(1); // media_rate_integer
            w.buf.put_u16(0); // media_rate_fraction
        }
        w.end();
        w.end();
    }

    w.start(b"mdia");
    let v = version_for(media_dur);
    w.start_full(b"mdhd", v, 0);
    w.time(v, 0);
    w.time(v, 0);
    w.buf.put_u32(t.timescale);
    w.time(v, media_dur);
    w.buf.put_u16(0x55c4); // "und"
    w.buf.put_u16(0);
    w.end();
    w.start_full(b"hdlr", 0, 0);
    w.buf.put_u32(0);
    w.buf.put_slice(&t.handler);
    w.buf.put_bytes(0, 12);
    w.buf.put_slice(b"camgate\0");
    w.end();
    w.start(b"minf");
    if is_video {
        w.start_full(b"vmhd", 0, 1);
        w.buf.put_bytes(0, 8);
    } else if is_audio {
        w.start_full(b"smhd", 0, 0);
        w.buf.put_u32(0); // balance, reserved
    } else {
        w.start_full(b"nmhd", 0, 0);
    }
    w.end();
    w.start(b"dinf");
    w.start_full(b"dref", 0, 0);
    w.buf.put_u32(1);
    w.start_full(b"url ", 0, 1);
    w.end();
    w.end();
    w.end();
    stbl(w, t, index, chunks, base, co64);
    w.end(); // minf
    w.end(); // mdia
    w.end(); // trak
}

/// Run-length coding of consecutive equal values: (count, value).
fn runs<T: PartialEq + Copy>(values: impl Iterator<Item = T>) -> Vec<(u32, T)> {
    let mut out: Vec<(u32, T)> = Vec::new();
    for v in values {
        match out.last_mut() {
            Some((n, last)) if *last == v => *n += 1,
            _ => out.push((1, v)),
        }
    }
    out
}

fn stbl(w: &mut BoxWriter, t: &TrackInput, index: usize, chunks: &[Chunk], base: u64, co64: bool) {
    w.start(b"stbl");
    w.start_full(b"stsd", 0, 0);
    w.buf.put_u32(1);
    w.buf.put_slice(&t.sample_entry);
    w.end();

    let stts = runs(t.samples.iter().map(|s| s.duration));
    w.start_full(b"stts", 0, 0);
    w.buf.put_u32(stts.len() as u32);
    for (n, d) in stts {
        w.buf.put_u32(n);
        w.buf.put_u32(d);
    }
    w.end();

    if t.samples.iter().any(|s| s.composition_offset != 0) {
        let negative = t.samples.iter().any(|s| s.composition_offset < 0);
        let ctts = runs(t.samples.iter().map(|s| s.composition_offset));
        w.start_full(b"ctts", u8::from(negative), 0);
        w.buf.put_u32(ctts.len() as u32);
        for (n, c) in ctts {
            w.buf.put_u32(n);
            w.buf.put_i32(c);
        }
        w.end();
    }

    if t.samples.iter().any(|s| !s.keyframe) {
        let sync: Vec<u32> = (1u32..)
            .zip(&t.samples)
            .filter(|(_, s)| s.keyframe)
            .map(|(i, _)| i)
            .collect();
        w.start_full(b"stss", 0, 0);
        w.buf.put_u32(sync.len() as u32);
        sync.iter().for_each(|&i| w.buf.put_u32(i));
        w.end();
    }

    w.start_full(b"stsz", 0, 0);
    let first = t.samples[0].size;
    if t.samples.iter().all(|s| s.size == first) {
        w.buf.put_u32(first);
        w.buf.put_u32(t.samples.len() as u32);
    } else {
        w.buf.put_u32(0);
        w.buf.put_u32(t.samples.len() as u32);
        t.samples.iter().for_each(|s| w.buf.put_u32(s.size));
    }
    w.end();

    let mine: Vec<&Chunk> = chunks.iter().filter(|c| c.track == index).collect();
    let per_chunk = runs(mine.iter().map(|c| c.samples.len() as u32));
    w.start_full(b"stsc", 0, 0);
    w.buf.put_u32(per_chunk.len() as u32);
    let mut first_chunk = 1u32;
    for (n, samples) in per_chunk {
        w.buf.put_u32(first_chunk);
        w.buf.put_u32(samples);
        w.buf.put_u32(1); // sample_description_index
        first_chunk += n;
    }
    w.end();

    w.start_full(if co64 { b"co64" } else { b"stco" }, 0, 0);
    w.buf.put_u32(mine.len() as u32);
    for c in mine {
        let at = base + c.rel_offset;
        if co64 {
            w.buf.put_u64(at);
        } else {
            // co64 is chosen when any offset could pass 32 bits.
            w.buf.put_u32(at as u32);
        }
    }
    w.end();
    w.end(); // stbl
}

#[cfg(test)]
mod tests;
