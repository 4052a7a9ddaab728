//! Fragmented MP4 (ISO/IEC 14496-12, CMAF-shaped) for a video track and an optional AAC audio
//! track: the init segment and media fragments. Owns box layout only; which frames go into which fragment is the
//! segmenter's business.
//!
//! Init segment (`init_segment`):
//! ```text
//! ftyp                          §4.3   file type: iso5, compatible iso5 iso6 mp41
//! moov                          §8.2.1
//! ├── mvhd                      §8.2.2  timescale 90 kHz, duration 0 (fragmented)
//! ├── trak                      §8.3.1
//! │   ├── tkhd                  §8.3.2  track 1, enabled, width/height
//! │   └── mdia                  §8.4.1
//! │       ├── mdhd              §8.4.2  timescale 90 kHz, language und
//! │       ├── hdlr              §8.4.3  vide
//! │       └── minf              §8.4.4
//! │           ├── vmhd          §12.1.2
//! │           ├── dinf/dref/url §8.7.1-2 media in this file
//! │           └── stbl          §8.5.1
//! │               ├── stsd      §8.5.2  one sample entry:
//! │               │   └── avc1 + avcC   (ISO/IEC 14496-15 §5.4.2.1) or
//! │               │       hvc1 + hvcC   (ISO/IEC 14496-15 §8.4.1.1)
//! │               ├── stts      §8.6.1.2  empty: samples live in fragments
//! │               ├── stsc      §8.7.4    empty
//! │               ├── stsz      §8.7.3.2  empty
//! │               └── stco      §8.7.5    empty
//! ├── trak                      audio (`init_segment_av` with AAC): track 2, tkhd volume 1.0,
//! │   └── mdia                  mdhd 90 kHz, hdlr soun, minf/smhd, stsd with one
//! │                             mp4a + esds (ISO/IEC 14496-14 §6.7.2, the AudioSpecificConfig)
//! └── mvex                      §8.8.1
//!     └── trex                  §8.8.3  per track, sample description 1
//! ```
//! Media fragment (`fragment`), returned as a chunk list `Vec<Bytes>`:
//! ```text
//! moof                          §8.8.4
//! ├── mfhd                      §8.8.5  sequence_number
//! └── traf                      §8.8.6
//!     ├── tfhd                  §8.8.7  track 1, default-base-is-moof
//!     ├── tfdt                  §8.8.12 version 1: 64-bit baseMediaDecodeTime = first dts
//!     └── trun                  §8.8.8  version 1: per sample duration, size, flags and a
//!                                       signed composition offset (pts - dts); data_offset
//!                                       points past the mdat header
//! mdat                          §8.1.1  the frames' payloads, in decode order
//! ```
//! With audio (`fragment_tracks`) the moof holds a second traf (track 2, every sample a sync
//! sample) and the mdat holds the video payload, then the audio payload.
//! The first chunk holds moof and the mdat header; every following chunk is a frame's own
//! `Frame::data` (a refcount bump, never a copy of the video).

use bytes::{BufMut, Bytes};

use crate::boxes::{BoxWriter, MATRIX};
use crate::{AudioCodec, AudioParams, Codec, CodecParams, Frame, MediaError, TIMESCALE, aac};

/// The video track of our files.
pub const VIDEO_TRACK_ID: u32 = 1;
/// The audio track, when there is one.
pub const AUDIO_TRACK_ID: u32 = 2;

/// `sample_flags` (§8.8.3.1) of a sync sample: depends on no other sample.
pub const SYNC_SAMPLE_FLAGS: u32 = 0x0200_0000;
/// `sample_flags` of a non-sync sample: depends on others, sample_is_non_sync_sample set.
pub const NON_SYNC_SAMPLE_FLAGS: u32 = 0x0101_0000;

/// The init segment (ftyp + moov) describing one video track with `params`.
pub fn init_segment(params: &CodecParams) -> Result<Bytes, MediaError> {
    init_segment_av(params, None)
}

/// Whether `init_segment_av` can describe `audio`: AAC whose config parses, at a sample rate
/// the AudioSampleEntry's 16.16 `samplerate` field holds (up to 64 kHz), with a config short
/// enough for a sane descriptor.
pub fn audio_sample_entry_ok(audio: &AudioParams) -> bool {
    audio.codec == AudioCodec::Aac
        && audio.config.len() <= 64
        && aac::parse_config(&audio.config).is_ok_and(|c| c.sample_rate <= 0xffff)
}

/// The init segment with the video track (id 1) and, when given, an AAC audio track (id 2,
/// `mp4a` + `esds` carrying the AudioSpecificConfig). Both tracks use the 90 kHz `TIMESCALE`,
/// so fragments need no rescaling. Audio other than AAC is an error: the caller decides to
/// leave it out.
pub fn init_segment_av(
    params: &CodecParams,
    audio: Option<&AudioParams>,
) -> Result<Bytes, MediaError> {
    let config = params.decoder_config()?;
    let audio = match audio {
        None => None,
        Some(a) if audio_sample_entry_ok(a) => {
            let c = aac::parse_config(&a.config)?;
            Some((c, aac::esds_payload(AUDIO_TRACK_ID as u16, &a.config)?))
        }
        Some(a) => {
            return Err(MediaError::Unsupported {
                what: "fMP4 audio track",
                reason: format!("{:?} at {} Hz", a.codec, a.sample_rate),
            });
        }
    };
    let mut w = BoxWriter::new(1200 + config.len());
    w.start(b"ftyp");
    w.buf.put_slice(b"iso5");
    w.buf.put_u32(512);
    for brand in [b"iso5", b"iso6", b"mp41"] {
        w.buf.put_slice(brand);
    }
    w.end();

    w.start(b"moov");
    w.start_full(b"mvhd", 0, 0);
    w.buf.put_u32(0); // creation_time
    w.buf.put_u32(0); // modification_time
    w.buf.put_u32(TIMESCALE);
    w.buf.put_u32(0); // duration: unknown, fragments follow
    w.buf.put_u32(0x0001_0000); // rate 1.0
    w.buf.put_u16(0x0100); // volume 1.0
    w.buf.put_bytes(0, 10); // reserved
    MATRIX.iter().for_each(|&m| w.buf.put_u32(m));
    w.buf.put_bytes(0, 24); // pre_defined
    let last_track = if audio.is_some() {
        AUDIO_TRACK_ID
    } else {
        VIDEO_TRACK_ID
    };
    w.buf.put_u32(last_track + 1); // next_track_ID
    w.end();

    video_trak(&mut w, params, &config);
    if let Some((c, esds)) = &audio {
        audio_trak(&mut w, c, esds);
    }

    w.start(b"mvex");
    for track in VIDEO_TRACK_ID..=last_track {
        w.start_full(b"trex", 0, 0);
        w.buf.put_u32(track);
        w.buf.put_u32(1); // default_sample_description_index
        w.buf.put_u32(0); // default_sample_duration
        w.buf.put_u32(0); // default_sample_size
        w.buf.put_u32(0); // default_sample_flags
        w.end();
    }
    w.end(); // mvex
    w.end(); // moov
    Ok(w.finish().freeze())
}

/// tkhd of a track: `volume` 0 for video, 1.0 for audio; width/height 0 for audio.
fn tkhd(w: &mut BoxWriter, track_id: u32, volume: u16, width: u16, height: u16) {
    w.start_full(b"tkhd", 0, 0x3); // track_enabled | track_in_movie
    w.buf.put_u32(0); // creation_time
    w.buf.put_u32(0); // modification_time
    w.buf.put_u32(track_id);
    w.buf.put_u32(0); // reserved
    w.buf.put_u32(0); // duration
    w.buf.put_bytes(0, 8); // reserved
    w.buf.put_u16(0); // layer
    w.buf.put_u16(0); // alternate_group
    w.buf.put_u16(volume);
    w.buf.put_u16(0); // reserved
    MATRIX.iter().for_each(|&m| w.buf.put_u32(m));
    w.buf.put_u32(u32::from(width) << 16); // 16.16 fixed point
    w.buf.put_u32(u32::from(height) << 16);
    w.end();
}

/// mdhd and hdlr of a track with handler `handler` (`vide`, `soun`).
fn mdhd_hdlr(w: &mut BoxWriter, handler: &[u8; 4], name: &[u8]) {
    w.start_full(b"mdhd", 0, 0);
    w.buf.put_u32(0); // creation_time
    w.buf.put_u32(0); // modification_time
    w.buf.put_u32(TIMESCALE);
    w.buf.put_u32(0); // duration
    w.buf.put_u16(0x55c4); // language "und", ISO 639-2/T packed
    w.buf.put_u16(0); // pre_defined
    w.end();
    w.start_full(b"hdlr", 0, 0);
    w.buf.put_u32(0); // pre_defined
    w.buf.put_slice(handler);
    w.buf.put_bytes(0, 12); // reserved
    w.buf.put_slice(name);
    w.end();
}

/// dinf (media in this file) then the start of stbl/stsd with one entry; the caller writes
/// the sample entry and calls `stbl_end`.
fn dinf_stsd(w: &mut BoxWriter) {
    w.start(b"dinf");
    w.start_full(b"dref", 0, 0);
    w.buf.put_u32(1); // entry_count
    w.start_full(b"url ", 0, 1); // self-contained
    w.end();
    w.end();
    w.end();
    w.start(b"stbl");
    w.start_full(b"stsd", 0, 0);
    w.buf.put_u32(1); // entry_count
}

/// Closes stsd and writes the empty sample tables (samples live in fragments), closing stbl.
fn stbl_end(w: &mut BoxWriter) {
    w.end(); // stsd
    for empty in [b"stts", b"stsc", b"stco"] {
        w.start_full(empty, 0, 0);
        w.buf.put_u32(0); // entry_count
        w.end();
    }
    w.start_full(b"stsz", 0, 0);
    w.buf.put_u32(0); // sample_size
    w.buf.put_u32(0); // sample_count
    w.end();
    w.end(); // stbl
}

fn video_trak(w: &mut BoxWriter, params: &CodecParams, config: &[u8]) {
    w.start(b"trak");
    tkhd(w, VIDEO_TRACK_ID, 0, params.width, params.height);
    w.start(b"mdia");
    mdhd_hdlr(w, b"vide", b"camgate video\0");
    w.start(b"minf");
    w.start_full(b"vmhd", 0, 1);
    w.buf.put_u16(0); // graphicsmode: copy
    w.buf.put_bytes(0, 6); // opcolor
    w.end();
    dinf_stsd(w);
    let (entry, config_box) = match params.codec {
        Codec::H264 => (b"avc1", b"avcC"),
        Codec::H265 => (b"hvc1", b"hvcC"),
    };
    w.start(entry); // VisualSampleEntry, §12.1.3
    w.buf.put_bytes(0, 6); // reserved
    w.buf.put_u16(1); // data_reference_index
    w.buf.put_u16(0); // pre_defined
    w.buf.put_u16(0); // reserved
    w.buf.put_bytes(0, 12); // pre_defined
    w.buf.put_u16(params.width);
    w.buf.put_u16(params.height);
    w.buf.put_u32(0x0048_0000); // horizresolution 72 dpi
    w.buf.put_u32(0x0048_0000); // vertresolution 72 dpi
    w.buf.put_u32(0); // reserved
    w.buf.put_u16(1); // frame_count
    w.buf.put_bytes(0, 32); // compressorname (empty Pascal string)
    w.buf.put_u16(0x0018); // depth
    w.buf.put_i16(-1); // pre_defined
    w.start(config_box);
    w.buf.put_slice(config);
    w.end();
    w.end(); // sample entry
    stbl_end(w);
    w.end(); // minf
    w.end(); // mdia
    w.end(); // trak
}

fn audio_trak(w: &mut BoxWriter, c: &aac::AacConfig, esds: &[u8]) {
    w.start(b"trak");
    tkhd(w, AUDIO_TRACK_ID, 0x0100, 0, 0);
    w.start(b"mdia");
    mdhd_hdlr(w, b"soun", b"camgate audio\0");
    w.start(b"minf");
    w.start_full(b"smhd", 0, 0); // §12.2.2
    w.buf.put_i16(0); // balance: centre
    w.buf.put_u16(0); // reserved
    w.end();
    dinf_stsd(w);
    // MP4AudioSampleEntry (ISO/IEC 14496-14 §6.7.2) on AudioSampleEntry (§12.2.3).
    w.start(b"mp4a");
    w.buf.put_bytes(0, 6); // reserved
    w.buf.put_u16(1); // data_reference_index
    w.buf.put_bytes(0, 8); // reserved
    w.buf.put_u16(u16::from(c.channels)); // channelcount
    w.buf.put_u16(16); // samplesize
    w.buf.put_u16(0); // pre_defined
    w.buf.put_u16(0); // reserved
    // 16.16 fixed point; rates above 64 kHz are refused by audio_sample_entry_ok.
    w.buf.put_u32(c.sample_rate << 16);
    w.start_full(b"esds", 0, 0);
    w.buf.put_slice(esds);
    w.end();
    w.end(); // sample entry
    stbl_end(w);
    w.end(); // minf
    w.end(); // mdia
    w.end(); // trak
}

/// What the `trun` says about one sample; derived from frames by `fragment`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct SampleEntry {
    duration: u32,
    size: u32,
    flags: u32,
    composition_offset: i32,
}

/// A media fragment (moof + mdat) holding `frames` of the video track in decode order.
///
/// `end_dts` is the decode time just after the last frame (normally the next frame's dts):
/// each sample lasts until the next one's dts, the last one until `end_dts`. Decode times
/// must be non-negative and strictly increasing, and `pts - dts` must fit an `i32`.
///
/// Returns the chunks to send in order: the first is moof plus the mdat header, each later
/// one is the `data` of a frame, shared, not copied.
pub fn fragment(
    sequence_number: u32,
    frames: &[Frame],
    end_dts: i64,
) -> Result<Vec<Bytes>, MediaError> {
    fragment_tracks(
        sequence_number,
        &[TrackRun {
            track_id: VIDEO_TRACK_ID,
            frames,
            end_dts,
        }],
    )
}

/// The samples of one track in a fragment: `frames` in decode order, the last lasting until
/// `end_dts` (the rules of `fragment`, per track).
#[derive(Clone, Copy, Debug)]
pub struct TrackRun<'a> {
    pub track_id: u32,
    pub frames: &'a [Frame],
    pub end_dts: i64,
}

/// A media fragment with one `traf` per non-empty run (in the order given) and one `mdat`
/// holding the runs' payloads one after the other; each `trun`'s data offset points at its
/// own run. Audio samples are all sync samples. Tracks are independent: each run's
/// timing is checked on its own, and runs need not start at the same time.
pub fn fragment_tracks(
    sequence_number: u32,
    runs: &[TrackRun<'_>],
) -> Result<Vec<Bytes>, MediaError> {
    const WHAT: &str = "fMP4 fragment";
    let runs: Vec<&TrackRun<'_>> = runs.iter().filter(|r| !r.frames.is_empty()).collect();
    if runs.is_empty() {
        return Err(MediaError::invalid(WHAT, "no frames"));
    }
    let mut tracks = Vec::with_capacity(runs.len());
    let mut payload: u64 = 0;
    for run in &runs {
        let (base_dts, entries) = sample_entries(run)?;
        let run_bytes: u64 = entries.iter().map(|e| u64::from(e.size)).sum();
        tracks.push((run.track_id, base_dts, entries, payload));
        payload += run_bytes;
    }
    let mdat_size = u32::try_from(payload + 8)
        .map_err(|_| MediaError::invalid(WHAT, "fragment payload larger than 4 GiB"))?;

    let samples: usize = tracks.iter().map(|t| t.2.len()).sum();
    let mut w = BoxWriter::new(100 * tracks.len() + 16 * samples);
    w.start(b"moof");
    w.start_full(b"mfhd", 0, 0);
    w.buf.put_u32(sequence_number);
    w.end();
    // Where each trun's data_offset is, and how far into the mdat payload its run starts.
    let mut patches = Vec::with_capacity(tracks.len());
    for (track_id, base_dts, entries, run_start) in &tracks {
        w.start(b"traf");
        w.start_full(b"tfhd", 0, 0x02_0000); // default-base-is-moof
        w.buf.put_u32(*track_id);
        w.end();
        w.start_full(b"tfdt", 1, 0);
        w.buf.put_u64(*base_dts);
        w.end();
        // data-offset, sample-duration, sample-size, sample-flags,
        // sample-composition-time-offset
        w.start_full(b"trun", 1, 0x0001 | 0x0100 | 0x0200 | 0x0400 | 0x0800);
        // Fewer samples than bytes of payload: fits when the payload does.
        w.buf.put_u32(entries.len() as u32);
        patches.push((w.buf.len(), *run_start));
        w.buf.put_i32(0); // data_offset, patched below
        for e in entries {
            w.buf.put_u32(e.duration);
            w.buf.put_u32(e.size);
            w.buf.put_u32(e.flags);
            w.buf.put_i32(e.composition_offset);
        }
        w.end(); // trun
        w.end(); // traf
    }
    w.end(); // moof
    let moof_len = w.buf.len() as u64;
    for (at, run_start) in patches {
        // Offset from the start of moof (default-base-is-moof) to the run's first byte.
        let offset = i32::try_from(moof_len + 8 + run_start)
            .map_err(|_| MediaError::invalid(WHAT, "data offset beyond 2 GiB"))?;
        w.buf[at..at + 4].copy_from_slice(&offset.to_be_bytes());
    }
    w.buf.put_u32(mdat_size);
    w.buf.put_slice(b"mdat");

    let mut chunks = Vec::with_capacity(samples + 1);
    chunks.push(w.finish().freeze());
    for run in &runs {
        chunks.extend(run.frames.iter().map(|f| f.data.clone()));
    }
    Ok(chunks)
}

/// The first decode time and the `trun` entries of a run.
fn sample_entries(run: &TrackRun<'_>) -> Result<(u64, Vec<SampleEntry>), MediaError> {
    const WHAT: &str = "fMP4 fragment";
    let frames = run.frames;
    let first = frames
        .first()
        .ok_or_else(|| MediaError::invalid(WHAT, "no frames"))?;
    let base_dts = u64::try_from(first.dts)
        .map_err(|_| MediaError::invalid(WHAT, format!("negative decode time {}", first.dts)))?;
    let mut entries = Vec::with_capacity(frames.len());
    for (i, f) in frames.iter().enumerate() {
        let next_dts = frames.get(i + 1).map_or(run.end_dts, |n| n.dts);
        let duration = next_dts
            .checked_sub(f.dts)
            .and_then(|d| u32::try_from(d).ok())
            .filter(|&d| d > 0)
            .ok_or_else(|| {
                MediaError::invalid(WHAT, format!("decode time {} then {next_dts}", f.dts))
            })?;
        let size = u32::try_from(f.data.len())
            .map_err(|_| MediaError::invalid(WHAT, "sample larger than 4 GiB"))?;
        let composition_offset = f
            .pts
            .checked_sub(f.dts)
            .and_then(|c| i32::try_from(c).ok())
            .ok_or_else(|| MediaError::invalid(WHAT, "pts - dts does not fit 32 bits"))?;
        entries.push(SampleEntry {
            duration,
            size,
            // Every audio frame decodes on its own.
            flags: if f.keyframe || f.audio().is_some() {
                SYNC_SAMPLE_FLAGS
            } else {
                NON_SYNC_SAMPLE_FLAGS
            },
            composition_offset,
        });
    }
    Ok((base_dts, entries))
}

/// Total length of a chunk list.
pub fn chunks_len(chunks: &[Bytes]) -> usize {
    chunks.iter().map(Bytes::len).sum()
}
