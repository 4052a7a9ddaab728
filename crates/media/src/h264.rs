//! H.264 parameter sets: the SPS fields camgate needs (ITU-T H.264 §7.3.2.1.1), the
//! `AVCDecoderConfigurationRecord` (ISO/IEC 14496-15 §5.3.3.1) and the RFC 6381 codec string.
//!
//! Only what a muxer and a player need is parsed: profile, constraint flags, level, chroma
//! format, bit depth, the cropped picture size, and what picture order counts and decode times
//! need (`PictureOrder`, including the VUI's timing and reorder depth, Annex E.1.1).

use bytes::{BufMut, Bytes, BytesMut};

use crate::MediaError;
use crate::bits::{BitReader, strip_emulation_prevention};

/// NAL unit types (H.264 Table 7-1) camgate cares about.
pub mod nal {
    pub const SLICE: u8 = 1;
    pub const IDR: u8 = 5;
    pub const SEI: u8 = 6;
    pub const SPS: u8 = 7;
    pub const PPS: u8 = 8;
    pub const AUD: u8 = 9;
}

/// The NAL unit type of an H.264 NAL unit (its first byte's low 5 bits); `None` if empty.
pub fn nal_type(nal: &[u8]) -> Option<u8> {
    nal.first().map(|b| b & 0x1f)
}

/// Fields of a parsed sequence parameter set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sps {
    pub profile_idc: u8,
    /// constraint_set0..5 flags and the two reserved bits, as the byte after profile_idc.
    pub constraint_flags: u8,
    pub level_idc: u8,
    pub chroma_format_idc: u8,
    pub bit_depth_luma_minus8: u8,
    pub bit_depth_chroma_minus8: u8,
    /// Display size after the frame cropping rectangle is applied.
    pub width: u32,
    pub height: u32,
    pub order: PictureOrder,
}

/// The SPS fields that derive picture order counts (§8.2.1) and the reorder depth, for
/// `crate::dts`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PictureOrder {
    /// log2_max_frame_num_minus4 + 4 (4..=16): the width of `frame_num` in slice headers.
    pub log2_max_frame_num: u8,
    /// pic_order_cnt_type (0, 1 or 2).
    pub poc_type: u8,
    /// Type 0: log2_max_pic_order_cnt_lsb_minus4 + 4 (4..=16).
    pub log2_max_poc_lsb: u8,
    /// Type 1 fields.
    pub delta_pic_order_always_zero: bool,
    pub offset_for_non_ref_pic: i32,
    pub offset_for_top_to_bottom_field: i32,
    pub offset_for_ref_frame: Vec<i32>,
    pub frame_mbs_only: bool,
    pub separate_colour_plane: bool,
    pub max_num_ref_frames: u32,
    /// bitstream_restriction's max_num_reorder_frames; `None` when the VUI does not say (or
    /// could not be read: a bad VUI never makes the SPS unusable).
    pub max_num_reorder_frames: Option<u32>,
    /// One frame's duration in 90 kHz ticks from the VUI timing info, when present and sane.
    pub frame_ticks: Option<i64>,
}

/// Profiles whose SPS carries chroma format and bit depth (H.264 §7.3.2.1.1).
fn has_chroma_info(profile_idc: u8) -> bool {
    matches!(
        profile_idc,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    )
}

fn skip_scaling_list(r: &mut BitReader<'_>, size: u32) -> Result<(), MediaError> {
    let mut last = 8i32;
    let mut next = 8i32;
    for _ in 0..size {
        if next != 0 {
            let delta = r.se()?;
            if !(-128..=127).contains(&delta) {
                return Err(MediaError::invalid("H.264 SPS", "delta_scale out of range"));
            }
            next = (last + delta + 256) % 256;
        }
        if next != 0 {
            last = next;
        }
    }
    Ok(())
}

/// Parses an SPS NAL unit (with its one-byte NAL header, emulation prevention still in).
pub fn parse_sps(nal: &[u8]) -> Result<Sps, MediaError> {
    const WHAT: &str = "H.264 SPS";
    match nal_type(nal) {
        Some(nal::SPS) => {}
        Some(t) => {
            return Err(MediaError::invalid(
                WHAT,
                format!("NAL type {t} is not an SPS"),
            ));
        }
        None => return Err(MediaError::Truncated { what: WHAT }),
    }
    let rbsp = strip_emulation_prevention(&nal[1..]);
    let mut r = BitReader::new(&rbsp, WHAT);
    let profile_idc = r.u8()?;
    let constraint_flags = r.u8()?;
    let level_idc = r.u8()?;
    r.ue_max(31, "seq_parameter_set_id")?;
    let mut chroma_format_idc = 1u32;
    let mut separate_colour_plane = false;
    let mut bit_depth_luma_minus8 = 0;
    let mut bit_depth_chroma_minus8 = 0;
    if has_chroma_info(profile_idc) {
        chroma_format_idc = r.ue_max(3, "chroma_format_idc")?;
        if chroma_format_idc == 3 {
            separate_colour_plane = r.bit()?;
        }
        bit_depth_luma_minus8 = r.ue_max(6, "bit_depth_luma_minus8")?;
        bit_depth_chroma_minus8 = r.ue_max(6, "bit_depth_chroma_minus8")?;
        r.bit()?; // qpprime_y_zero_transform_bypass_flag
        if r.bit()? {
            // seq_scaling_matrix_present_flag
            let lists = if chroma_format_idc == 3 { 12 } else { 8 };
            for i in 0..lists {
                if r.bit()? {
                    skip_scaling_list(&mut r, if i < 6 { 16 } else { 64 })?;
                }
            }
        }
    }
    // Bounded by ue_max, so the narrowing casts below are exact.
    let mut order = PictureOrder {
        log2_max_frame_num: r.ue_max(12, "log2_max_frame_num_minus4")? as u8 + 4,
        poc_type: r.ue_max(2, "pic_order_cnt_type")? as u8,
        separate_colour_plane,
        ..PictureOrder::default()
    };
    match order.poc_type {
        0 => order.log2_max_poc_lsb = r.ue_max(12, "log2_max_pic_order_cnt_lsb_minus4")? as u8 + 4,
        1 => {
            order.delta_pic_order_always_zero = r.bit()?;
            order.offset_for_non_ref_pic = r.se()?;
            order.offset_for_top_to_bottom_field = r.se()?;
            let cycle = r.ue_max(255, "num_ref_frames_in_pic_order_cnt_cycle")?;
            for _ in 0..cycle {
                order.offset_for_ref_frame.push(r.se()?);
            }
        }
        _ => {}
    }
    order.max_num_ref_frames = r.ue()?;
    r.bit()?; // gaps_in_frame_num_value_allowed_flag
    // Sizes in macroblocks; bounded so the arithmetic below cannot overflow.
    let width_mbs = u64::from(r.ue_max(1 << 16, "pic_width_in_mbs_minus1")?) + 1;
    let height_map_units = u64::from(r.ue_max(1 << 16, "pic_height_in_map_units_minus1")?) + 1;
    let frame_mbs_only = r.bit()?;
    order.frame_mbs_only = frame_mbs_only;
    if !frame_mbs_only {
        r.bit()?; // mb_adaptive_frame_field_flag
    }
    r.bit()?; // direct_8x8_inference_flag
    let field_factor = if frame_mbs_only { 1 } else { 2 };
    let mut width = width_mbs * 16;
    let mut height = height_map_units * 16 * field_factor;
    if r.bit()? {
        // frame_cropping_flag: offsets are in crop units (§7.4.2.1.1, Table 6-1).
        let chroma_array_type = if separate_colour_plane {
            0
        } else {
            chroma_format_idc
        };
        let (sub_w, sub_h) = match chroma_array_type {
            1 => (2, 2),
            2 => (2, 1),
            _ => (1, 1),
        };
        let (unit_x, unit_y) = if chroma_array_type == 0 {
            (1, field_factor)
        } else {
            (sub_w, sub_h * field_factor)
        };
        let left = u64::from(r.ue()?);
        let right = u64::from(r.ue()?);
        let top = u64::from(r.ue()?);
        let bottom = u64::from(r.ue()?);
        let crop_w = unit_x * (left + right);
        let crop_h = unit_y * (top + bottom);
        if crop_w >= width || crop_h >= height {
            return Err(MediaError::invalid(
                WHAT,
                "cropping removes the whole picture",
            ));
        }
        width -= crop_w;
        height -= crop_h;
    }
    if r.bit().unwrap_or(false) {
        // vui_parameters_present_flag. Optional hints: a VUI we cannot read leaves them unknown.
        if let Ok(vui) = read_vui(&mut r) {
            order.frame_ticks = vui.frame_ticks;
            order.max_num_reorder_frames = vui.max_num_reorder_frames;
        }
    }
    Ok(Sps {
        profile_idc,
        constraint_flags,
        level_idc,
        chroma_format_idc: chroma_format_idc as u8,
        bit_depth_luma_minus8: bit_depth_luma_minus8 as u8,
        bit_depth_chroma_minus8: bit_depth_chroma_minus8 as u8,
        // Both are at most 2^16 * 16 * 2, far below u32::MAX.
        width: width as u32,
        height: height as u32,
        order,
    })
}

#[derive(Default)]
struct Vui {
    frame_ticks: Option<i64>,
    max_num_reorder_frames: Option<u32>,
}

/// vui_parameters() (E.1.1), keeping the timing and the reorder depth.
fn read_vui(r: &mut BitReader<'_>) -> Result<Vui, MediaError> {
    let mut vui = Vui::default();
    if r.bit()? && r.u8()? == 255 {
        // aspect_ratio_idc == Extended_SAR: sar_width, sar_height
        r.skip(32)?;
    }
    if r.bit()? {
        r.bit()?; // overscan_appropriate_flag
    }
    if r.bit()? {
        // video_format, video_full_range_flag
        r.skip(4)?;
        if r.bit()? {
            r.skip(24)?; // colour_primaries, transfer_characteristics, matrix_coefficients
        }
    }
    if r.bit()? {
        r.ue()?; // chroma_sample_loc_type_top_field
        r.ue()?; // chroma_sample_loc_type_bottom_field
    }
    if r.bit()? {
        let num_units_in_tick = u64::from(r.bits(32)?);
        let time_scale = u64::from(r.bits(32)?);
        r.bit()?; // fixed_frame_rate_flag
        // A frame is two clock ticks (E.2.1, DeltaTfiDivisor of a frame picture). Up to ten
        // seconds a frame is plausible; anything else is a broken hint, not a frame rate.
        let ticks = (2 * num_units_in_tick * 90_000).checked_div(time_scale);
        vui.frame_ticks = ticks
            .filter(|t| (1..=900_000).contains(t))
            .map(|t| t as i64);
    }
    let nal_hrd = r.bit()?;
    if nal_hrd {
        skip_hrd(r)?;
    }
    let vcl_hrd = r.bit()?;
    if vcl_hrd {
        skip_hrd(r)?;
    }
    if nal_hrd || vcl_hrd {
        r.bit()?; // low_delay_hrd_flag
    }
    r.bit()?; // pic_struct_present_flag
    if r.bit()? {
        // bitstream_restriction_flag
        r.bit()?; // motion_vectors_over_pic_boundaries_flag
        for _ in 0..4 {
            // max_bytes_per_pic_denom, max_bits_per_mb_denom, log2_max_mv_length_*
            r.ue()?;
        }
        vui.max_num_reorder_frames = Some(r.ue_max(16, "max_num_reorder_frames")?);
        r.ue()?; // max_dec_frame_buffering
    }
    Ok(vui)
}

/// hrd_parameters() (E.1.2): nothing camgate uses, but it stands before the reorder depth.
fn skip_hrd(r: &mut BitReader<'_>) -> Result<(), MediaError> {
    let cpb_cnt = r.ue_max(31, "cpb_cnt_minus1")? + 1;
    r.skip(8)?; // bit_rate_scale, cpb_size_scale
    for _ in 0..cpb_cnt {
        r.ue()?; // bit_rate_value_minus1
        r.ue()?; // cpb_size_value_minus1
        r.bit()?; // cbr_flag
    }
    r.skip(20) // four delay and offset lengths of five bits each
}

/// Checks that a PPS is plausibly one: the right NAL type and a readable id.
pub fn check_pps(nal: &[u8]) -> Result<(), MediaError> {
    const WHAT: &str = "H.264 PPS";
    match nal_type(nal) {
        Some(nal::PPS) => {}
        Some(t) => {
            return Err(MediaError::invalid(
                WHAT,
                format!("NAL type {t} is not a PPS"),
            ));
        }
        None => return Err(MediaError::Truncated { what: WHAT }),
    }
    let rbsp = strip_emulation_prevention(&nal[1..]);
    let mut r = BitReader::new(&rbsp, WHAT);
    r.ue_max(255, "pic_parameter_set_id")?;
    r.ue_max(31, "seq_parameter_set_id")?;
    Ok(())
}

/// RFC 6381 codec string: `avc1.PPCCLL` in lowercase hex (profile, constraints, level).
pub fn rfc6381(sps: &Sps) -> String {
    format!(
        "avc1.{:02x}{:02x}{:02x}",
        sps.profile_idc, sps.constraint_flags, sps.level_idc
    )
}

/// The `AVCDecoderConfigurationRecord` (the payload of an `avcC` box) for one SPS and one PPS,
/// with 4-byte NAL length prefixes.
pub fn avc_decoder_config(sps_nal: &[u8], pps_nal: &[u8], sps: &Sps) -> Result<Bytes, MediaError> {
    let sps_len = u16::try_from(sps_nal.len())
        .map_err(|_| MediaError::invalid("avcC", "SPS longer than 65535 bytes"))?;
    let pps_len = u16::try_from(pps_nal.len())
        .map_err(|_| MediaError::invalid("avcC", "PPS longer than 65535 bytes"))?;
    let mut b = BytesMut::with_capacity(16 + sps_nal.len() + pps_nal.len());
    b.put_u8(1); // configurationVersion
    b.put_u8(sps.profile_idc);
    b.put_u8(sps.constraint_flags);
    b.put_u8(sps.level_idc);
    b.put_u8(0xfc | 3); // lengthSizeMinusOne = 3
    b.put_u8(0xe0 | 1); // numOfSequenceParameterSets
    b.put_u16(sps_len);
    b.put_slice(sps_nal);
    b.put_u8(1); // numOfPictureParameterSets
    b.put_u16(pps_len);
    b.put_slice(pps_nal);
    if matches!(sps.profile_idc, 100 | 110 | 122 | 144) {
        // §5.3.3.1.2: these profiles carry chroma format and bit depth.
        b.put_u8(0xfc | sps.chroma_format_idc);
        b.put_u8(0xf8 | sps.bit_depth_luma_minus8);
        b.put_u8(0xf8 | sps.bit_depth_chroma_minus8);
        b.put_u8(0); // numOfSequenceParameterSetExt
    }
    Ok(b.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// x264's SPSs: 320x240 without cropping, and 1080p (1088 cropped to 1080).
    use crate::test_util::{H264_PPS, H264_SPS as SPS_320X240, H264_SPS_1080P as SPS_1080P};

    #[test]
    fn parses_x264_sps() {
        let s = parse_sps(SPS_320X240).unwrap();
        assert_eq!((s.width, s.height), (320, 240));
        assert_eq!(
            (s.profile_idc, s.constraint_flags, s.level_idc),
            (100, 0, 13)
        );
        assert_eq!(rfc6381(&s), "avc1.64000d");
        // The VUI of x264's defaults at 25 fps: timing, and a B-pyramid two deep.
        let o = &s.order;
        assert_eq!(
            (o.poc_type, o.log2_max_frame_num, o.log2_max_poc_lsb),
            (0, 4, 6)
        );
        assert_eq!(
            (o.max_num_reorder_frames, o.frame_ticks),
            (Some(2), Some(3600))
        );
        let s = parse_sps(SPS_1080P).unwrap();
        assert_eq!((s.width, s.height), (1920, 1080));
        assert_eq!(rfc6381(&s), "avc1.640028");
    }

    #[test]
    fn rejects_wrong_nal_type_and_truncation() {
        assert!(parse_sps(&[]).is_err());
        assert!(parse_sps(&[0x68, 0xce]).is_err());
        for n in 0..SPS_320X240.len() - 3 {
            // Any prefix that stops before the cropping flag must be an error, not a panic.
            let _ = parse_sps(&SPS_320X240[..n]);
        }
        assert!(parse_sps(&SPS_320X240[..6]).is_err());
        // Cut inside the VUI: the SPS still parses, its hints are unknown.
        let cut = parse_sps(&SPS_320X240[..SPS_320X240.len() - 6]).unwrap();
        assert_eq!((cut.width, cut.height), (320, 240));
        assert_eq!(cut.order.max_num_reorder_frames, None);
    }

    #[test]
    fn avcc_layout() {
        let s = parse_sps(SPS_320X240).unwrap();
        let pps = H264_PPS;
        let rec = avc_decoder_config(SPS_320X240, pps, &s).unwrap();
        assert_eq!(&rec[..6], &[1, 0x64, 0, 0x0d, 0xff, 0xe1]);
        assert_eq!(&rec[6..8], &(SPS_320X240.len() as u16).to_be_bytes());
        let after_sps = 8 + SPS_320X240.len();
        assert_eq!(rec[after_sps], 1);
        assert_eq!(&rec[after_sps + 3..after_sps + 9], pps);
        assert_eq!(&rec[rec.len() - 4..], &[0xfd, 0xf8, 0xf8, 0]);
    }
}
