//! H.264 picture order counts (ITU-T H.264 §8.2.1, all three `pic_order_cnt_type`s) from the
//! first slice header of each access unit (§7.3.3), for the decode-time derivation in `dts`.
//!
//! Owns only the POC state between pictures (previous MSB/LSB, frame number offsets); it reads
//! bytes and never decides timestamps. Memory management operation 5 (a POC reset without an
//! IDR) is not parsed: such a picture gets the POC it would have had, which only moves where
//! `dts` starts learning the reorder depth, never its guarantees.

use crate::MediaError;
use crate::bits::{BitReader, strip_emulation_prevention};
use crate::h264::{self, PictureOrder};

use super::{HEADER_BYTES, Picture, poc_msb};

const WHAT: &str = "H.264 slice header";

/// POC derivation state for one SPS/PPS pair.
pub(super) struct PocState {
    order: PictureOrder,
    /// PPS bottom_field_pic_order_in_frame_present_flag.
    bottom_field_pic_order: bool,
    prev_msb: i64,
    prev_lsb: i64,
    prev_frame_num: i64,
    prev_frame_num_offset: i64,
}

impl PocState {
    pub(super) fn new(sps: &[u8], pps: &[u8]) -> Result<PocState, MediaError> {
        let order = h264::parse_sps(sps)?.order;
        Ok(PocState {
            order,
            bottom_field_pic_order: read_pps(pps)?,
            prev_msb: 0,
            prev_lsb: 0,
            prev_frame_num: 0,
            prev_frame_num_offset: 0,
        })
    }

    /// The reorder depth the SPS signals: the VUI's when present; none when POC type 2 (output
    /// order is decode order, §8.2.1.3) or a Baseline-compatible profile (no B slices);
    /// else unknown, to be learnt from the stream.
    pub(super) fn signalled_reorder(sps: &[u8]) -> Option<usize> {
        let sps = h264::parse_sps(sps).ok()?;
        if let Some(n) = sps.order.max_num_reorder_frames {
            return usize::try_from(n).ok();
        }
        let baseline = sps.profile_idc == 66 || sps.constraint_flags & 0x80 != 0;
        (sps.order.poc_type == 2 || baseline).then_some(0)
    }

    pub(super) fn frame_ticks(&self) -> Option<i64> {
        self.order.frame_ticks
    }

    /// The POC of the picture whose first VCL NAL unit is `nal` (header byte included).
    pub(super) fn picture(&mut self, nal: &[u8]) -> Result<Picture, MediaError> {
        let header = *nal.first().ok_or(MediaError::Truncated { what: WHAT })?;
        let idr = header & 0x1f == h264::nal::IDR;
        let reference = header & 0x60 != 0;
        let end = nal.len().min(HEADER_BYTES);
        let rbsp = strip_emulation_prevention(nal.get(1..end).unwrap_or_default());
        let mut r = BitReader::new(&rbsp, WHAT);
        let o = &self.order;
        r.ue()?; // first_mb_in_slice
        r.ue()?; // slice_type
        r.ue()?; // pic_parameter_set_id
        if o.separate_colour_plane {
            r.skip(2)?; // colour_plane_id
        }
        let frame_num = i64::from(r.bits(u32::from(o.log2_max_frame_num))?);
        let mut field = false;
        let mut bottom = false;
        if !o.frame_mbs_only {
            field = r.bit()?;
            if field {
                bottom = r.bit()?;
            }
        }
        if idr {
            r.ue()?; // idr_pic_id
        }
        let mut lsb = 0i64;
        let mut delta_bottom = 0i64;
        let mut delta = [0i64; 2];
        if o.poc_type == 0 {
            lsb = i64::from(r.bits(u32::from(o.log2_max_poc_lsb))?);
            if self.bottom_field_pic_order && !field {
                delta_bottom = i64::from(r.se()?);
            }
        } else if o.poc_type == 1 && !o.delta_pic_order_always_zero {
            delta[0] = i64::from(r.se()?);
            if self.bottom_field_pic_order && !field {
                delta[1] = i64::from(r.se()?);
            }
        }
        let poc = match o.poc_type {
            0 => self.type0(idr, reference, lsb, delta_bottom, field),
            1 => self.type1(idr, reference, frame_num, delta, field, bottom),
            _ => self.type2(idr, reference, frame_num),
        };
        self.prev_frame_num = frame_num;
        Ok(Picture {
            poc,
            starts_sequence: idr,
        })
    }

    /// §8.2.1.1: the MSB follows the LSB's wrap relative to the previous reference picture.
    fn type0(
        &mut self,
        idr: bool,
        reference: bool,
        lsb: i64,
        delta_bottom: i64,
        field: bool,
    ) -> i64 {
        if idr {
            self.prev_msb = 0;
            self.prev_lsb = 0;
        }
        let max = 1i64 << self.order.log2_max_poc_lsb;
        let msb = poc_msb(self.prev_msb, self.prev_lsb, lsb, max);
        if reference {
            self.prev_msb = msb;
            self.prev_lsb = lsb;
        }
        // A field's count is msb + lsb whichever field it is; a frame's is the smaller of its
        // two fields'.
        let top = msb.saturating_add(lsb);
        if field {
            top
        } else {
            top.min(top.saturating_add(delta_bottom))
        }
    }

    /// FrameNumOffset (§8.2.1.2 and §8.2.1.3): grows by MaxFrameNum whenever frame_num wraps.
    fn frame_num_offset(&mut self, idr: bool, frame_num: i64) -> i64 {
        let offset = if idr {
            0
        } else if self.prev_frame_num > frame_num {
            self.prev_frame_num_offset
                .saturating_add(1i64 << self.order.log2_max_frame_num)
        } else {
            self.prev_frame_num_offset
        };
        self.prev_frame_num_offset = offset;
        offset
    }

    /// §8.2.1.2: the expected POC from the SPS's cycle of reference frame offsets.
    fn type1(
        &mut self,
        idr: bool,
        reference: bool,
        frame_num: i64,
        delta: [i64; 2],
        field: bool,
        bottom: bool,
    ) -> i64 {
        let offset = self.frame_num_offset(idr, frame_num);
        let o = &self.order;
        let cycle = o.offset_for_ref_frame.len() as i64;
        let mut abs_frame_num = if cycle != 0 {
            offset.saturating_add(frame_num)
        } else {
            0
        };
        if !reference && abs_frame_num > 0 {
            abs_frame_num -= 1;
        }
        let mut expected = 0i64;
        if abs_frame_num > 0 {
            // cycle > 0 here: abs_frame_num is only non-zero when the cycle has entries.
            let cycles = (abs_frame_num - 1) / cycle;
            let in_cycle = ((abs_frame_num - 1) % cycle) as usize;
            let per_cycle: i64 = o.offset_for_ref_frame.iter().map(|&v| i64::from(v)).sum();
            expected = cycles.saturating_mul(per_cycle);
            for &v in &o.offset_for_ref_frame[..=in_cycle] {
                expected = expected.saturating_add(i64::from(v));
            }
        }
        if !reference {
            expected = expected.saturating_add(i64::from(o.offset_for_non_ref_pic));
        }
        let t2b = i64::from(o.offset_for_top_to_bottom_field);
        let top = expected.saturating_add(delta[0]);
        match (field, bottom) {
            (false, _) => top.min(top.saturating_add(t2b).saturating_add(delta[1])),
            (true, false) => top,
            (true, true) => expected.saturating_add(t2b).saturating_add(delta[0]),
        }
    }

    /// §8.2.1.3: POC follows frame_num; non-reference pictures sit just before their frame.
    fn type2(&mut self, idr: bool, reference: bool, frame_num: i64) -> i64 {
        let offset = self.frame_num_offset(idr, frame_num);
        if idr {
            return 0;
        }
        let twice = offset.saturating_add(frame_num).saturating_mul(2);
        if reference { twice } else { twice - 1 }
    }
}

/// PPS bottom_field_pic_order_in_frame_present_flag (§7.3.2.2).
fn read_pps(pps: &[u8]) -> Result<bool, MediaError> {
    const WHAT: &str = "H.264 PPS";
    h264::check_pps(pps)?;
    let rbsp = strip_emulation_prevention(pps.get(1..).unwrap_or_default());
    let mut r = BitReader::new(&rbsp, WHAT);
    r.ue()?; // pic_parameter_set_id
    r.ue()?; // seq_parameter_set_id
    r.bit()?; // entropy_coding_mode_flag
    r.bit()
}
