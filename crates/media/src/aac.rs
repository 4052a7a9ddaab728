//! MPEG-4 AAC as cameras send it (RFC 3640 `mpeg4-generic`): the AudioSpecificConfig
//! (ISO/IEC 14496-3 §1.6.2.1) parsed for what muxers and playlists need, and the `esds`
//! payload (ISO/IEC 14496-1 §7.2.6.5, ES_Descriptor) of the MP4 sample entry.
//!
//! Only the fields every AAC decoder configuration starts with are read (object type,
//! sampling frequency, channel configuration); extensions after them (SBR, PS, the
//! GASpecificConfig) stay in the config bytes, which are passed through unchanged.

use bytes::{BufMut, BytesMut};

use crate::MediaError;
use crate::bits::BitReader;

const WHAT: &str = "AAC AudioSpecificConfig";

/// Sampling frequencies by `samplingFrequencyIndex` (ISO/IEC 14496-3 Table 1.18).
const FREQUENCIES: [u32; 13] = [
    96_000, 88_200, 64_000, 48_000, 44_100, 32_000, 24_000, 22_050, 16_000, 12_000, 11_025, 8_000,
    7_350,
];

/// What an AudioSpecificConfig says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AacConfig {
    /// audioObjectType: 2 is AAC-LC, 5 HE-AAC (SBR), 29 HE-AACv2 (PS).
    pub object_type: u8,
    pub sample_rate: u32,
    pub channels: u8,
}

/// Parses the start of an AudioSpecificConfig. Channel configuration 0 (channels described by
/// a program config element) is refused: no camera sends it and we could not say how many
/// channels there are.
pub fn parse_config(config: &[u8]) -> Result<AacConfig, MediaError> {
    let mut r = BitReader::new(config, WHAT);
    let mut object_type = r.bits(5)?;
    if object_type == 31 {
        object_type = 32 + r.bits(6)?;
    }
    if object_type == 0 {
        return Err(MediaError::invalid(WHAT, "audio object type 0 (null)"));
    }
    let index = r.bits(4)?;
    let sample_rate = match index {
        15 => r.bits(24)?,
        i => *FREQUENCIES.get(i as usize).ok_or_else(|| {
            MediaError::invalid(WHAT, format!("reserved sampling frequency index {i}"))
        })?,
    };
    if sample_rate == 0 {
        return Err(MediaError::invalid(WHAT, "sampling frequency 0"));
    }
    let channels = match r.bits(4)? {
        0 => {
            return Err(MediaError::Unsupported {
                what: WHAT,
                reason: "channel configuration 0 (program config element)".into(),
            });
        }
        c @ 1..=6 => c as u8,
        7 => 8,
        c => {
            return Err(MediaError::invalid(
                WHAT,
                format!("reserved channel configuration {c}"),
            ));
        }
    };
    Ok(AacConfig {
        // At most 32 + 63.
        object_type: object_type as u8,
        sample_rate,
        channels,
    })
}

/// Appends an MPEG-4 descriptor header: tag, then the size in 7-bit groups (§8.3.3).
fn descriptor(buf: &mut BytesMut, tag: u8, len: usize) -> Result<(), MediaError> {
    if len >= 1 << 28 {
        return Err(MediaError::invalid(WHAT, "descriptor too long"));
    }
    buf.put_u8(tag);
    let mut groups = vec![(len & 0x7f) as u8];
    let mut rest = len >> 7;
    while rest > 0 {
        groups.push((rest & 0x7f) as u8 | 0x80);
        rest >>= 7;
    }
    groups.reverse();
    buf.put_slice(&groups);
    Ok(())
}

fn descriptor_len(len: usize) -> usize {
    let mut n = 1;
    let mut rest = len >> 7;
    while rest > 0 {
        n += 1;
        rest >>= 7;
    }
    1 + n + len
}

/// The payload of the `esds` full box (after version and flags): an ES_Descriptor with the
/// DecoderConfigDescriptor of MPEG-4 audio (objectTypeIndication 0x40) carrying `config`, and
/// the SLConfigDescriptor MP4 files require (predefined 2).
pub fn esds_payload(es_id: u16, config: &[u8]) -> Result<BytesMut, MediaError> {
    let specific = config.len();
    let decoder = 13 + descriptor_len(specific);
    let es = 3 + descriptor_len(decoder) + descriptor_len(1);
    let mut b = BytesMut::with_capacity(descriptor_len(es));
    descriptor(&mut b, 0x03, es)?; // ES_DescrTag
    b.put_u16(es_id);
    b.put_u8(0); // no stream dependence, URL or OCR stream; priority 0
    descriptor(&mut b, 0x04, decoder)?; // DecoderConfigDescrTag
    b.put_u8(0x40); // Audio ISO/IEC 14496-3
    b.put_u8(0x05 << 2 | 1); // streamType audio, upStream 0, reserved 1
    b.put_slice(&[0, 0, 0]); // bufferSizeDB: unknown
    b.put_u32(0); // maxBitrate: unknown
    b.put_u32(0); // avgBitrate: unknown (variable)
    descriptor(&mut b, 0x05, specific)?; // DecSpecificInfoTag
    b.put_slice(config);
    descriptor(&mut b, 0x06, 1)?; // SLConfigDescrTag
    b.put_u8(0x02); // predefined: reserved for MP4 files
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_cameras_send() {
        // AAC-LC 48 kHz mono (voaacenc's default config for a mono tone).
        assert_eq!(
            parse_config(&[0x11, 0x88]).unwrap(),
            AacConfig {
                object_type: 2,
                sample_rate: 48_000,
                channels: 1
            }
        );
        // AAC-LC 44.1 kHz stereo; 16 kHz mono.
        assert_eq!(parse_config(&[0x12, 0x10]).unwrap().sample_rate, 44_100);
        assert_eq!(parse_config(&[0x12, 0x10]).unwrap().channels, 2);
        assert_eq!(parse_config(&[0x14, 0x08]).unwrap().sample_rate, 16_000);
        // An explicit frequency (index 15) and an escaped object type (31 + 6 bits).
        let explicit = [0x17, 0x80, 0x3e, 0x80, 0x08];
        assert_eq!(parse_config(&explicit).unwrap().sample_rate, 32_000);
        let escaped = parse_config(&[0xf8, 0x06, 0x20]).unwrap();
        assert_eq!(escaped.object_type, 32);
        assert_eq!(escaped.sample_rate, 48_000);
    }

    #[test]
    fn refuses_what_it_cannot_describe() {
        assert!(parse_config(&[]).is_err());
        assert!(parse_config(&[0x11]).is_err(), "truncated");
        assert!(parse_config(&[0x16, 0x88]).is_err(), "reserved index 13");
        assert!(parse_config(&[0x11, 0x80]).is_err(), "channel config 0");
        assert!(parse_config(&[0x11, 0xc0]).is_err(), "channel config 8");
        assert!(parse_config(&[0x01, 0x88]).is_err(), "object type 0");
        assert!(parse_config(&[0x17, 0x80, 0, 0, 0x08]).is_err(), "0 Hz");
    }

    #[test]
    fn esds_matches_ffmpeg_layout() {
        // ffmpeg writes the same descriptors (with 4-byte sizes); one-byte sizes here.
        let b = esds_payload(2, &[0x11, 0x88]).unwrap();
        assert_eq!(
            &b[..],
            &[
                0x03, 25, 0, 2, 0, // ES_Descriptor
                0x04, 17, 0x40, 0x15, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // DecoderConfig
                0x05, 2, 0x11, 0x88, // DecoderSpecificInfo
                0x06, 1, 2, // SLConfig
            ]
        );
        // A long config takes a two-byte size.
        let long = esds_payload(2, &[0x11; 200]).unwrap();
        assert_eq!(&long[..3], &[0x03, 0x81, 0x61]);
        assert_eq!(long.len(), 3 + 225);
    }
}
