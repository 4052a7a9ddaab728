//! The init segment's `moov` (§8.2.1): per track its id, handler, timescale, size and sample
//! entry (with the `avcC`/`hvcC` decoder configuration), and the `trex` defaults that
//! fragments fall back on. Keeps the `moov` bytes so a writer can reuse the sample entries
//! as they are.

use bytes::Bytes;

use super::boxes::{BoxHeader, Cursor, FourCc, children, find, require, show};
use crate::{Codec, MediaError};

const WHAT: &str = "MP4 moov";

/// Sample defaults of a track (`trex`, §8.8.3), overridden per fragment by `tfhd`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SampleDefaults {
    pub sample_description_index: u32,
    pub duration: u32,
    pub size: u32,
    pub flags: u32,
}

/// One track of the init segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InitTrack {
    pub track_id: u32,
    /// `hdlr` handler type: `vide`, `soun`, ...
    pub handler: FourCc,
    /// Media timescale (`mdhd`): units per second of every time of this track.
    pub timescale: u32,
    /// From the visual sample entry (else from `tkhd`); 0 for audio.
    pub width: u16,
    pub height: u16,
    /// The sample entry's type (`avc1`, `hvc1`, `mp4a`, ...).
    pub sample_entry_kind: FourCc,
    /// The first sample entry of `stsd`, the whole box (header included), ready to be put
    /// into another `stsd` unchanged.
    pub sample_entry: Bytes,
    /// H.264 for `avc1`/`avc3`, H.265 for `hvc1`/`hev1`, else `None`.
    pub codec: Option<Codec>,
    /// The payload of the `avcC`/`hvcC` box (ISO/IEC 14496-15), empty when there is none.
    pub decoder_config: Bytes,
    /// `trex` defaults; all zero when `mvex` does not name the track.
    pub defaults: SampleDefaults,
}

/// What a fragmented MP4's `moov` says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InitSegment {
    /// The whole `moov` box as it is in the file.
    pub moov: Bytes,
    /// `mvhd` timescale.
    pub movie_timescale: u32,
    pub tracks: Vec<InitTrack>,
}

impl InitSegment {
    /// Parses a whole `moov` box (header included).
    pub fn parse(moov: &[u8]) -> Result<InitSegment, MediaError> {
        let header = BoxHeader::parse(moov, 0)?;
        if &header.kind != b"moov" {
            return Err(MediaError::invalid(
                WHAT,
                format!("{} box where moov was expected", show(header.kind)),
            ));
        }
        let len = header.len_within(moov.len() as u64);
        if len > moov.len() as u64 {
            return Err(MediaError::Truncated { what: WHAT });
        }
        // len <= moov.len(): lossless.
        let body = &moov[usize::from(header.header_len)..len as usize];

        let mvhd = require(body, b"mvhd", WHAT)?;
        let mut c = Cursor::new(mvhd, "MP4 mvhd");
        let (version, _) = c.version_flags()?;
        c.u32_or_u64(version)?; // creation_time
        c.u32_or_u64(version)?; // modification_time
        let movie_timescale = c.u32()?;

        let mut trex = Vec::new();
        if let Some(mvex) = find(body, b"mvex", WHAT)? {
            for child in children(mvex, "MP4 mvex") {
                let (kind, b) = child?;
                if &kind == b"trex" {
                    let mut c = Cursor::new(b, "MP4 trex");
                    c.version_flags()?;
                    let track_id = c.u32()?;
                    let defaults = SampleDefaults {
                        sample_description_index: c.u32()?,
                        duration: c.u32()?,
                        size: c.u32()?,
                        flags: c.u32()?,
                    };
                    trex.push((track_id, defaults));
                }
            }
        }

        let mut tracks = Vec::new();
        for child in children(body, WHAT) {
            let (kind, trak) = child?;
            if &kind != b"trak" {
                continue;
            }
            let mut track = parse_trak(trak)?;
            if tracks
                .iter()
                .any(|t: &InitTrack| t.track_id == track.track_id)
            {
                return Err(MediaError::invalid(
                    WHAT,
                    format!("track {} twice", track.track_id),
                ));
            }
            if let Some((_, d)) = trex.iter().find(|(id, _)| *id == track.track_id) {
                track.defaults = *d;
            }
            tracks.push(track);
        }
        if tracks.is_empty() {
            return Err(MediaError::invalid(WHAT, "no track"));
        }
        Ok(InitSegment {
            moov: Bytes::copy_from_slice(&moov[..len as usize]),
            movie_timescale,
            tracks,
        })
    }

    /// The track with this id.
    pub fn track(&self, track_id: u32) -> Option<&InitTrack> {
        self.tracks.iter().find(|t| t.track_id == track_id)
    }

    /// The first video track (`vide` handler), the only one our writer makes.
    pub fn video(&self) -> Option<&InitTrack> {
        self.tracks.iter().find(|t| &t.handler == b"vide")
    }
}

fn parse_trak(trak: &[u8]) -> Result<InitTrack, MediaError> {
    let tkhd = require(trak, b"tkhd", "MP4 trak")?;
    let mut c = Cursor::new(tkhd, "MP4 tkhd");
    let (version, _) = c.version_flags()?;
    c.u32_or_u64(version)?; // creation_time
    c.u32_or_u64(version)?; // modification_time
    let track_id = c.u32()?;
    c.skip(4)?; // reserved
    c.u32_or_u64(version)?; // duration
    c.skip(8 + 2 + 2 + 2 + 2 + 36)?; // reserved, layer, alternate_group, volume, reserved, matrix
    let tkhd_width = (c.u32()? >> 16) as u16;
    let tkhd_height = (c.u32()? >> 16) as u16;
    if track_id == 0 {
        return Err(MediaError::invalid("MP4 tkhd", "track_ID 0"));
    }

    let mdia = require(trak, b"mdia", "MP4 trak")?;
    let mdhd = require(mdia, b"mdhd", "MP4 mdia")?;
    let mut c = Cursor::new(mdhd, "MP4 mdhd");
    let (version, _) = c.version_flags()?;
    c.u32_or_u64(version)?;
    c.u32_or_u64(version)?;
    let timescale = c.u32()?;
    if timescale == 0 {
        return Err(MediaError::invalid("MP4 mdhd", "timescale 0"));
    }
    let hdlr = require(mdia, b"hdlr", "MP4 mdia")?;
    let mut c = Cursor::new(hdlr, "MP4 hdlr");
    c.version_flags()?;
    c.skip(4)?; // pre_defined
    let handler = c.fourcc()?;

    let minf = require(mdia, b"minf", "MP4 mdia")?;
    let stbl = require(minf, b"stbl", "MP4 minf")?;
    let stsd = require(stbl, b"stsd", "MP4 stbl")?;
    let mut c = Cursor::new(stsd, "MP4 stsd");
    c.version_flags()?;
    if c.u32()? == 0 {
        return Err(MediaError::invalid("MP4 stsd", "no sample entry"));
    }
    let entries = &stsd[8..]; // the cursor just read these 8 bytes
    let entry_header = BoxHeader::parse(entries, 0)?;
    let entry_len = entry_header.len_within(entries.len() as u64);
    if entry_len > entries.len() as u64 {
        return Err(MediaError::Truncated { what: "MP4 stsd" });
    }
    // entry_len <= entries.len(): lossless.
    let entry = &entries[..entry_len as usize];
    let entry_body = &entry[usize::from(entry_header.header_len)..];

    let codec = match &entry_header.kind {
        b"avc1" | b"avc3" => Some(Codec::H264),
        b"hvc1" | b"hev1" => Some(Codec::H265),
        _ => None,
    };
    let (mut width, mut height) = (tkhd_width, tkhd_height);
    let mut decoder_config = Bytes::new();
    if &handler == b"vide" {
        // VisualSampleEntry (§12.1.3): 6 reserved, data_reference_index, 16 bytes of
        // pre_defined/reserved, then width and height; child boxes start at byte 78.
        let mut c = Cursor::new(entry_body, "MP4 visual sample entry");
        c.skip(24)?;
        width = c.u16()?;
        height = c.u16()?;
        let config_kind = match codec {
            Some(Codec::H264) => Some(b"avcC"),
            Some(Codec::H265) => Some(b"hvcC"),
            None => None,
        };
        if let Some(kind) = config_kind {
            let kids = entry_body.get(78..).ok_or(MediaError::Truncated {
                what: "MP4 visual sample entry",
            })?;
            let config = require(kids, kind, "MP4 visual sample entry")?;
            decoder_config = Bytes::copy_from_slice(config);
        }
    }
    Ok(InitTrack {
        track_id,
        handler,
        timescale,
        width,
        height,
        sample_entry_kind: entry_header.kind,
        sample_entry: Bytes::copy_from_slice(entry),
        codec,
        decoder_config,
        defaults: SampleDefaults::default(),
    })
}
