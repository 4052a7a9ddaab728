//! H.265 parameter sets: the SPS fields camgate needs including `profile_tier_level`
//! (ITU-T H.265 §7.3.2.2 and §7.3.3), the `HEVCDecoderConfigurationRecord`
//! (ISO/IEC 14496-15 §8.3.3.1) and the RFC 6381 codec string (14496-15 Annex E).
//!
//! The VPS body is not read: the record's optional hints (min_spatial_segmentation_idc,
//! parallelismType, frame rate) are written as "unknown" (0), which the specification allows.
//! What picture order counts and decode times need from the rest of the SPS (reorder depth,
//! VUI timing) is read by `h265_order`, and its failure never makes the SPS unusable.

use bytes::{BufMut, Bytes, BytesMut};

use crate::MediaError;
use crate::bits::{BitReader, strip_emulation_prevention};

/// NAL unit types (H.265 Table 7-1) camgate cares about.
pub mod nal {
    /// IRAP pictures are types 16..=23 (BLA, IDR, CRA and two reserved).
    pub const BLA_W_LP: u8 = 16;
    pub const IDR_W_RADL: u8 = 19;
    pub const IDR_N_LP: u8 = 20;
    pub const CRA: u8 = 21;
    pub const IRAP_MAX: u8 = 23;
    pub const VPS: u8 = 32;
    pub const SPS: u8 = 33;
    pub const PPS: u8 = 34;
    pub const AUD: u8 = 35;
    pub const PREFIX_SEI: u8 = 39;
}

/// The NAL unit type of an H.265 NAL unit (bits 1..7 of its first byte); `None` if the
/// two-byte header is incomplete.
pub fn nal_type(nal: &[u8]) -> Option<u8> {
    if nal.len() < 2 {
        return None;
    }
    Some((nal[0] >> 1) & 0x3f)
}

/// The general part of `profile_tier_level` (§7.3.3), exactly what hvcC and RFC 6381 repeat.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProfileTierLevel {
    pub profile_space: u8,
    pub tier_flag: bool,
    pub profile_idc: u8,
    /// general_profile_compatibility_flag[0..32], flag 0 in the most significant bit.
    pub compatibility_flags: u32,
    /// The 48 bits from general_progressive_source_flag on, as 6 bytes.
    pub constraint_flags: [u8; 6],
    pub level_idc: u8,
}

/// Fields of a parsed H.265 sequence parameter set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sps {
    pub ptl: ProfileTierLevel,
    pub max_sub_layers_minus1: u8,
    pub temporal_id_nesting: bool,
    pub chroma_format_idc: u8,
    pub bit_depth_luma_minus8: u8,
    pub bit_depth_chroma_minus8: u8,
    /// Display size after the conformance window is applied.
    pub width: u32,
    pub height: u32,
    /// `None` when the SPS ends or breaks after the fields above.
    pub order: Option<PictureOrder>,
}

/// The SPS fields that derive picture order counts (§8.3.1) and the reorder depth, for
/// `crate::dts`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PictureOrder {
    /// log2_max_pic_order_cnt_lsb_minus4 + 4 (4..=16).
    pub log2_max_poc_lsb: u8,
    /// sps_max_num_reorder_pics of the highest sub-layer.
    pub max_num_reorder_pics: u32,
    pub separate_colour_plane: bool,
    /// One frame's duration in 90 kHz ticks from the VUI timing info, when present and sane.
    pub frame_ticks: Option<i64>,
}

fn parse_ptl(
    r: &mut BitReader<'_>,
    max_sub_layers_minus1: u8,
) -> Result<ProfileTierLevel, MediaError> {
    let b = r.u8()?;
    let compatibility_flags = r.bits(32)?;
    let mut constraint_flags = [0u8; 6];
    for c in &mut constraint_flags {
        *c = r.u8()?;
    }
    let level_idc = r.u8()?;
    let mut profile_present = [false; 8];
    let mut level_present = [false; 8];
    let n = usize::from(max_sub_layers_minus1);
    for i in 0..n {
        profile_present[i] = r.bit()?;
        level_present[i] = r.bit()?;
    }
    if n > 0 {
        r.skip(2 * (8 - n))?; // reserved_zero_2bits
    }
    for i in 0..n {
        if profile_present[i] {
            r.skip(88)?;
        }
        if level_present[i] {
            r.skip(8)?;
        }
    }
    Ok(ProfileTierLevel {
        profile_space: b >> 6,
        tier_flag: (b >> 5) & 1 == 1,
        profile_idc: b & 0x1f,
        compatibility_flags,
        constraint_flags,
        level_idc,
    })
}

fn check_type(nal: &[u8], want: u8, what: &'static str) -> Result<(), MediaError> {
    match nal_type(nal) {
        Some(t) if t == want => Ok(()),
        Some(t) => Err(MediaError::invalid(
            what,
            format!("NAL type {t} is not {want}"),
        )),
        None => Err(MediaError::Truncated { what }),
    }
}

/// Parses an SPS NAL unit (with its two-byte NAL header, emulation prevention still in).
pub fn parse_sps(nal: &[u8]) -> Result<Sps, MediaError> {
    const WHAT: &str = "H.265 SPS";
    check_type(nal, nal::SPS, WHAT)?;
    let rbsp = strip_emulation_prevention(&nal[2..]);
    let mut r = BitReader::new(&rbsp, WHAT);
    r.bits(4)?; // sps_video_parameter_set_id
    let max_sub_layers_minus1 = r.bits(3)? as u8;
    if max_sub_layers_minus1 > 6 {
        return Err(MediaError::invalid(WHAT, "sps_max_sub_layers_minus1 > 6"));
    }
    let temporal_id_nesting = r.bit()?;
    let ptl = parse_ptl(&mut r, max_sub_layers_minus1)?;
    r.ue_max(15, "sps_seq_parameter_set_id")?;
    let chroma_format_idc = r.ue_max(3, "chroma_format_idc")?;
    let separate_colour_plane = chroma_format_idc == 3 && r.bit()?;
    // Bounded so the arithmetic below cannot overflow and the size fits a u16 sample entry.
    let mut width = r.ue_max(u32::from(u16::MAX), "pic_width_in_luma_samples")?;
    let mut height = r.ue_max(u32::from(u16::MAX), "pic_height_in_luma_samples")?;
    if width == 0 || height == 0 {
        return Err(MediaError::invalid(WHAT, "zero picture size"));
    }
    if r.bit()? {
        // conformance_window_flag: offsets in chroma sample units (§7.4.3.2.1).
        let (sub_w, sub_h) = match chroma_format_idc {
            1 => (2u64, 2u64),
            2 => (2, 1),
            _ => (1, 1),
        };
        let left = u64::from(r.ue()?);
        let right = u64::from(r.ue()?);
        let top = u64::from(r.ue()?);
        let bottom = u64::from(r.ue()?);
        let crop_w = sub_w * (left + right);
        let crop_h = sub_h * (top + bottom);
        if crop_w >= u64::from(width) || crop_h >= u64::from(height) {
            return Err(MediaError::invalid(
                WHAT,
                "conformance window removes the whole picture",
            ));
        }
        // Both checked just above to be smaller than the u32 they are subtracted from.
        width -= crop_w as u32;
        height -= crop_h as u32;
    }
    let bit_depth_luma_minus8 = r.ue_max(8, "bit_depth_luma_minus8")? as u8;
    let bit_depth_chroma_minus8 = r.ue_max(8, "bit_depth_chroma_minus8")? as u8;
    let order = crate::h265_order::read(&mut r, max_sub_layers_minus1, separate_colour_plane).ok();
    Ok(Sps {
        ptl,
        max_sub_layers_minus1,
        temporal_id_nesting,
        chroma_format_idc: chroma_format_idc as u8,
        bit_depth_luma_minus8,
        bit_depth_chroma_minus8,
        width,
        height,
        order,
    })
}

/// Checks that a VPS is plausibly one: the right NAL type and its fixed first fields present.
pub fn check_vps(nal: &[u8]) -> Result<(), MediaError> {
    const WHAT: &str = "H.265 VPS";
    check_type(nal, nal::VPS, WHAT)?;
    let rbsp = strip_emulation_prevention(&nal[2..]);
    let mut r = BitReader::new(&rbsp, WHAT);
    r.bits(4)?; // vps_video_parameter_set_id
    r.bits(2)?; // vps_base_layer_internal_flag, vps_base_layer_available_flag
    r.bits(6)?; // vps_max_layers_minus1
    let sub_layers = r.bits(3)? as u8;
    r.bit()?;
    if r.bits(16)? != 0xffff {
        return Err(MediaError::invalid(
            WHAT,
            "vps_reserved_0xffff_16bits is not 0xffff",
        ));
    }
    parse_ptl(&mut r, sub_layers.min(6))?;
    Ok(())
}

/// Checks that a PPS is plausibly one: the right NAL type and readable ids.
pub fn check_pps(nal: &[u8]) -> Result<(), MediaError> {
    const WHAT: &str = "H.265 PPS";
    check_type(nal, nal::PPS, WHAT)?;
    let rbsp = strip_emulation_prevention(&nal[2..]);
    let mut r = BitReader::new(&rbsp, WHAT);
    r.ue_max(63, "pps_pic_parameter_set_id")?;
    r.ue_max(15, "pps_seq_parameter_set_id")?;
    Ok(())
}

/// RFC 6381 codec string per ISO/IEC 14496-15 Annex E, e.g. `hvc1.1.6.L93.B0`: profile space
/// letter and profile, compatibility flags bit-reversed in hex, tier and level, then the
/// constraint bytes in hex with trailing zero bytes left out.
pub fn rfc6381(ptl: &ProfileTierLevel) -> String {
    let space = match ptl.profile_space {
        1 => "A",
        2 => "B",
        3 => "C",
        _ => "",
    };
    let mut s = format!(
        "hvc1.{space}{}.{:X}.{}{}",
        ptl.profile_idc,
        ptl.compatibility_flags.reverse_bits(),
        if ptl.tier_flag { 'H' } else { 'L' },
        ptl.level_idc
    );
    let used = ptl
        .constraint_flags
        .iter()
        .rposition(|&b| b != 0)
        .map_or(0, |i| i + 1);
    for b in &ptl.constraint_flags[..used] {
        s.push_str(&format!(".{b:X}"));
    }
    s
}

/// The `HEVCDecoderConfigurationRecord` (the payload of an `hvcC` box) with one array each
/// for VPS, SPS and PPS, all marked complete, and 4-byte NAL length prefixes.
pub fn hevc_decoder_config(
    vps: &[u8],
    sps_nal: &[u8],
    pps: &[u8],
    sps: &Sps,
) -> Result<Bytes, MediaError> {
    let ptl = &sps.ptl;
    let mut b = BytesMut::with_capacity(64 + vps.len() + sps_nal.len() + pps.len());
    b.put_u8(1); // configurationVersion
    b.put_u8(ptl.profile_space << 6 | u8::from(ptl.tier_flag) << 5 | ptl.profile_idc);
    b.put_u32(ptl.compatibility_flags);
    b.put_slice(&ptl.constraint_flags);
    b.put_u8(ptl.level_idc);
    b.put_u16(0xf000); // min_spatial_segmentation_idc unknown
    b.put_u8(0xfc); // parallelismType unknown
    b.put_u8(0xfc | sps.chroma_format_idc);
    b.put_u8(0xf8 | sps.bit_depth_luma_minus8);
    b.put_u8(0xf8 | sps.bit_depth_chroma_minus8);
    b.put_u16(0); // avgFrameRate unknown
    // constantFrameRate 0, numTemporalLayers, temporalIdNested, lengthSizeMinusOne = 3
    b.put_u8((sps.max_sub_layers_minus1 + 1) << 3 | u8::from(sps.temporal_id_nesting) << 2 | 3);
    b.put_u8(3); // numOfArrays
    for (nal_type, nal) in [(nal::VPS, vps), (nal::SPS, sps_nal), (nal::PPS, pps)] {
        let len = u16::try_from(nal.len())
            .map_err(|_| MediaError::invalid("hvcC", "parameter set longer than 65535 bytes"))?;
        b.put_u8(0x80 | nal_type); // array_completeness = 1
        b.put_u16(1); // numNalus
        b.put_u16(len);
        b.put_slice(nal);
    }
    Ok(b.freeze())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// x265's parameter sets for 320x240 Main profile (also used by frame.rs's tests).
    pub(crate) use crate::test_util::{H265_PPS as PPS, H265_SPS as SPS, H265_VPS as VPS};

    #[test]
    fn parses_x265_parameter_sets() {
        let s = parse_sps(SPS).unwrap();
        assert_eq!((s.width, s.height), (320, 240));
        assert_eq!(s.ptl.profile_idc, 1);
        assert_eq!(s.ptl.level_idc, 60);
        assert_eq!(s.ptl.compatibility_flags, 0x6000_0000);
        assert_eq!(rfc6381(&s.ptl), "hvc1.1.6.L60.90");
        check_vps(VPS).unwrap();
        check_pps(PPS).unwrap();
        // x265's defaults (B-pyramid: two deep) at testsrc's 25 fps.
        let order = s.order.unwrap();
        assert_eq!((order.log2_max_poc_lsb, order.max_num_reorder_pics), (8, 2));
        assert_eq!(order.frame_ticks, Some(3600));
    }

    #[test]
    fn codec_string_examples() {
        // The example from ISO/IEC 14496-15 Annex E / Apple's HLS authoring spec.
        let ptl = ProfileTierLevel {
            profile_space: 0,
            tier_flag: false,
            profile_idc: 1,
            compatibility_flags: 0x6000_0000,
            constraint_flags: [0xb0, 0, 0, 0, 0, 0],
            level_idc: 93,
        };
        assert_eq!(rfc6381(&ptl), "hvc1.1.6.L93.B0");
        let ptl = ProfileTierLevel {
            profile_space: 0,
            tier_flag: true,
            profile_idc: 2,
            compatibility_flags: 0x2000_0000,
            constraint_flags: [0; 6],
            level_idc: 120,
        };
        assert_eq!(rfc6381(&ptl), "hvc1.2.4.H120");
    }

    #[test]
    fn hvcc_layout() {
        let s = parse_sps(SPS).unwrap();
        let rec = hevc_decoder_config(VPS, SPS, PPS, &s).unwrap();
        assert_eq!(rec[0], 1);
        assert_eq!(rec[1], 0x01);
        assert_eq!(&rec[2..6], &[0x60, 0, 0, 0]);
        assert_eq!(rec[12], 60);
        assert_eq!(rec[21] & 3, 3);
        assert_eq!(rec[22], 3);
        assert_eq!(rec[23], 0x80 | 32);
        assert_eq!(rec.len(), 23 + 3 * 5 + VPS.len() + SPS.len() + PPS.len());
    }

    #[test]
    fn truncated_prefixes_never_panic() {
        for n in 0..SPS.len() {
            let _ = parse_sps(&SPS[..n]);
        }
        for n in 0..VPS.len() {
            let _ = check_vps(&VPS[..n]);
        }
        assert!(parse_sps(&SPS[..10]).is_err());
    }
}
