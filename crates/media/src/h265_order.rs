//! The rest of an H.265 SPS after the bit depths (ITU-T H.265 §7.3.2.2.1), read only for what
//! picture order counts and decode times need: the POC width, the reorder depth and the VUI
//! timing (Annex E.2.1). Everything between is skipped field by field, because the VUI stands
//! after the variable-length reference picture sets.
//!
//! Owns nothing else: the caller (`h265::parse_sps`) treats an error here as "unknown", so a
//! camera's odd SPS tail never makes its stream unusable.

use crate::MediaError;
use crate::bits::BitReader;
use crate::h265::PictureOrder;

/// Reads from log2_max_pic_order_cnt_lsb_minus4 on.
pub(crate) fn read(
    r: &mut BitReader<'_>,
    max_sub_layers_minus1: u8,
    separate_colour_plane: bool,
) -> Result<PictureOrder, MediaError> {
    // Bounded by ue_max: the cast is exact.
    let log2_max_poc_lsb = r.ue_max(12, "log2_max_pic_order_cnt_lsb_minus4")? as u8 + 4;
    let all_sub_layers = r.bit()?; // sps_sub_layer_ordering_info_present_flag
    let first = if all_sub_layers {
        0
    } else {
        max_sub_layers_minus1
    };
    let mut max_num_reorder_pics = 0;
    for _ in first..=max_sub_layers_minus1 {
        r.ue_max(15, "sps_max_dec_pic_buffering_minus1")?;
        // The last value read is the highest sub-layer's, the one a full decoder uses.
        max_num_reorder_pics = r.ue_max(15, "sps_max_num_reorder_pics")?;
        r.ue()?; // sps_max_latency_increase_plus1
    }
    let mut order = PictureOrder {
        log2_max_poc_lsb,
        max_num_reorder_pics,
        separate_colour_plane,
        frame_ticks: None,
    };
    // The timing is a hint: a tail we cannot read still gives the fields above.
    order.frame_ticks = frame_ticks(r, log2_max_poc_lsb).unwrap_or(None);
    Ok(order)
}

/// Skips to the VUI and returns its frame duration in 90 kHz ticks, if it has one.
fn frame_ticks(r: &mut BitReader<'_>, log2_max_poc_lsb: u8) -> Result<Option<i64>, MediaError> {
    for _ in 0..6 {
        // log2_min_luma_coding_block_size_minus3 .. max_transform_hierarchy_depth_intra
        r.ue()?;
    }
    if r.bit()? && r.bit()? {
        // scaling_list_enabled_flag and sps_scaling_list_data_present_flag
        skip_scaling_list_data(r)?;
    }
    r.skip(2)?; // amp_enabled_flag, sample_adaptive_offset_enabled_flag
    if r.bit()? {
        // pcm_enabled_flag: two bit depths, two sizes, loop filter flag
        r.skip(8)?;
        r.ue()?;
        r.ue()?;
        r.bit()?;
    }
    let sets = r.ue_max(64, "num_short_term_ref_pic_sets")?;
    let mut delta_pocs = Vec::with_capacity(sets as usize);
    for i in 0..sets as usize {
        let n = skip_st_ref_pic_set(r, i, &delta_pocs)?;
        delta_pocs.push(n);
    }
    if r.bit()? {
        // long_term_ref_pics_present_flag
        for _ in 0..r.ue_max(32, "num_long_term_ref_pics_sps")? {
            // lt_ref_pic_poc_lsb_sps, used_by_curr_pic_lt_sps_flag
            r.skip(usize::from(log2_max_poc_lsb) + 1)?;
        }
    }
    r.skip(2)?; // sps_temporal_mvp_enabled_flag, strong_intra_smoothing_enabled_flag
    if !r.bit()? {
        return Ok(None); // no VUI
    }
    if r.bit()? && r.u8()? == 255 {
        r.skip(32)?; // extended SAR
    }
    if r.bit()? {
        r.bit()?; // overscan_appropriate_flag
    }
    if r.bit()? {
        r.skip(4)?; // video_format, video_full_range_flag
        if r.bit()? {
            r.skip(24)?; // colour description
        }
    }
    if r.bit()? {
        r.ue()?;
        r.ue()?; // chroma sample locations
    }
    // neutral_chroma_indication_flag, field_seq_flag, frame_field_info_present_flag
    r.bit()?;
    let field_seq = r.bit()?;
    r.bit()?;
    if r.bit()? {
        for _ in 0..4 {
            r.ue()?; // default display window offsets
        }
    }
    if !r.bit()? {
        return Ok(None); // vui_timing_info_present_flag
    }
    let num_units_in_tick = u64::from(r.bits(32)?);
    let time_scale = u64::from(r.bits(32)?);
    if time_scale == 0 || field_seq {
        // With field_seq a tick is a field: not one access unit per frame as we count.
        return Ok(None);
    }
    // One picture per clock tick in H.265 (E.3.1); up to ten seconds a frame is plausible.
    let ticks = num_units_in_tick * 90_000 / time_scale;
    Ok((1..=900_000).contains(&ticks).then_some(ticks as i64))
}

/// scaling_list_data() (§7.3.4).
fn skip_scaling_list_data(r: &mut BitReader<'_>) -> Result<(), MediaError> {
    for size_id in 0..4u32 {
        let step = if size_id == 3 { 3 } else { 1 };
        for _ in (0..6).step_by(step) {
            if !r.bit()? {
                r.ue()?; // scaling_list_pred_matrix_id_delta
                continue;
            }
            let coefs = 64.min(1 << (4 + (size_id << 1)));
            if size_id > 1 {
                r.se()?; // scaling_list_dc_coef_minus8
            }
            for _ in 0..coefs {
                r.se()?; // scaling_list_delta_coef
            }
        }
    }
    Ok(())
}

/// st_ref_pic_set(idx) (§7.3.7) in the SPS; returns NumDeltaPocs of the set, which the next
/// set's inter prediction needs.
fn skip_st_ref_pic_set(
    r: &mut BitReader<'_>,
    idx: usize,
    previous: &[u32],
) -> Result<u32, MediaError> {
    if idx > 0 && r.bit()? {
        // inter_ref_pic_set_prediction_flag: predicted from the set just before this one.
        r.bit()?; // delta_rps_sign
        r.ue()?; // abs_delta_rps_minus1
        let reference = previous.get(idx - 1).copied().unwrap_or(0);
        let mut n = 0;
        for _ in 0..=reference {
            let used_by_curr = r.bit()?;
            let use_delta = used_by_curr || r.bit()?;
            n += u32::from(use_delta);
        }
        return Ok(n);
    }
    let negative = r.ue_max(16, "num_negative_pics")?;
    let positive = r.ue_max(16, "num_positive_pics")?;
    for _ in 0..negative + positive {
        r.ue()?; // delta_poc_s0/s1_minus1
        r.bit()?; // used_by_curr_pic_s0/s1_flag
    }
    Ok(negative + positive)
}
