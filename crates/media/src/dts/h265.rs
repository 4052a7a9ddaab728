//! H.265 picture order counts (ITU-T H.265 §8.3.1) from the first slice segment header of
//! each access unit (§7.3.6.1), for the decode-time derivation in `dts`.
//!
//! Owns only the POC state between pictures (the previous TemporalId-0 picture's POC); it
//! reads bytes and never decides timestamps.

use crate::MediaError;
use crate::bits::{BitReader, strip_emulation_prevention};
use crate::h265::{self, PictureOrder, nal};

use super::{HEADER_BYTES, Picture, poc_msb};

const WHAT: &str = "H.265 slice segment header";

/// POC derivation state for one SPS/PPS pair.
pub(super) struct PocState {
    order: PictureOrder,
    output_flag_present: bool,
    extra_slice_header_bits: usize,
    /// POC of the previous TemporalId-0 picture that is not RASL, RADL or a sub-layer
    /// non-reference picture (prevTid0Pic); `None` before the first IRAP.
    prev_tid0_poc: Option<i64>,
}

impl PocState {
    pub(super) fn new(sps: &[u8], pps: &[u8]) -> Result<PocState, MediaError> {
        let order = h265::parse_sps(sps)?.order.ok_or_else(|| {
            MediaError::invalid("H.265 SPS", "ends before its picture order fields")
        })?;
        h265::check_pps(pps)?;
        let rbsp = strip_emulation_prevention(pps.get(2..).unwrap_or_default());
        let mut r = BitReader::new(&rbsp, "H.265 PPS");
        r.ue()?; // pps_pic_parameter_set_id
        r.ue()?; // pps_seq_parameter_set_id
        r.bit()?; // dependent_slice_segments_enabled_flag
        let output_flag_present = r.bit()?;
        let extra_slice_header_bits = r.bits(3)? as usize;
        Ok(PocState {
            order,
            output_flag_present,
            extra_slice_header_bits,
            prev_tid0_poc: None,
        })
    }

    /// sps_max_num_reorder_pics: always present in an H.265 SPS.
    pub(super) fn signalled_reorder(&self) -> Option<usize> {
        usize::try_from(self.order.max_num_reorder_pics).ok()
    }

    pub(super) fn frame_ticks(&self) -> Option<i64> {
        self.order.frame_ticks
    }

    /// The POC of the picture whose first VCL NAL unit is `nal` (two-byte header included).
    pub(super) fn picture(&mut self, nal_unit: &[u8]) -> Result<Picture, MediaError> {
        let t = h265::nal_type(nal_unit).ok_or(MediaError::Truncated { what: WHAT })?;
        // nuh_temporal_id_plus1 is never 0 in a conforming stream; treat 0 as the base layer.
        let temporal_id = (nal_unit[1] & 7).saturating_sub(1);
        let irap = (nal::BLA_W_LP..=nal::IRAP_MAX).contains(&t);
        let idr = t == nal::IDR_W_RADL || t == nal::IDR_N_LP;
        // An IDR or BLA always starts a coded video sequence; a CRA does when it is the first
        // picture we see (NoRaslOutputFlag, §8.1.3).
        let starts_sequence = irap && (t <= nal::IDR_N_LP || self.prev_tid0_poc.is_none());
        let end = nal_unit.len().min(HEADER_BYTES);
        let rbsp = strip_emulation_prevention(nal_unit.get(2..end).unwrap_or_default());
        let mut r = BitReader::new(&rbsp, WHAT);
        if !r.bit()? {
            return Err(MediaError::invalid(
                WHAT,
                "the access unit does not begin with its picture's first slice segment",
            ));
        }
        if irap {
            r.bit()?; // no_output_of_prior_pics_flag
        }
        r.ue()?; // slice_pic_parameter_set_id
        // first_slice_segment_in_pic_flag is set, so neither dependent_slice_segment_flag nor
        // slice_segment_address is present.
        r.skip(self.extra_slice_header_bits)?;
        r.ue()?; // slice_type
        if self.output_flag_present {
            r.bit()?; // pic_output_flag
        }
        if self.order.separate_colour_plane {
            r.skip(2)?; // colour_plane_id
        }
        let lsb = if idr {
            0
        } else {
            i64::from(r.bits(u32::from(self.order.log2_max_poc_lsb))?)
        };
        let prev = if starts_sequence {
            None
        } else {
            self.prev_tid0_poc
        };
        let poc = match prev {
            None => lsb,
            Some(prev) => {
                let max = 1i64 << self.order.log2_max_poc_lsb;
                let prev_lsb = prev.rem_euclid(max);
                let prev_msb = prev - prev_lsb;
                let msb = poc_msb(prev_msb, prev_lsb, lsb, max);
                msb.saturating_add(lsb)
            }
        };
        // RADL_N..RASL_R are 6..=9; sub-layer non-reference pictures are the even types <= 14.
        let leading = (6..=9).contains(&t);
        let sub_layer_non_ref = t <= 14 && t % 2 == 0;
        if temporal_id == 0 && !leading && !sub_layer_non_ref {
            self.prev_tid0_poc = Some(poc);
        }
        Ok(Picture {
            poc,
            starts_sequence,
        })
    }
}
