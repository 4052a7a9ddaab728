//! Bit-level reading of H.264/H.265 RBSPs: emulation-prevention removal, fixed-width fields
//! and Exp-Golomb codes (ITU-T H.264 §7.2 and §9.1, H.265 §7.2 and §9.2).
//!
//! Every read is bounds-checked and returns `MediaError::Truncated` instead of panicking.

use crate::MediaError;

/// Removes emulation-prevention bytes: every `00 00 03` becomes `00 00` (H.264 §7.4.1).
pub fn strip_emulation_prevention(nal: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(nal.len());
    let mut zeros = 0usize;
    for &b in nal {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

/// MSB-first reader over an RBSP (emulation prevention already removed).
pub struct BitReader<'a> {
    data: &'a [u8],
    /// Position in bits from the start of `data`.
    pos: usize,
    what: &'static str,
}

impl<'a> BitReader<'a> {
    /// `what` names the structure being parsed, for error messages.
    pub fn new(data: &'a [u8], what: &'static str) -> Self {
        BitReader { data, pos: 0, what }
    }

    fn truncated(&self) -> MediaError {
        MediaError::Truncated { what: self.what }
    }

    pub fn bit(&mut self) -> Result<bool, MediaError> {
        let byte = *self
            .data
            .get(self.pos / 8)
            .ok_or_else(|| self.truncated())?;
        let bit = (byte >> (7 - (self.pos % 8))) & 1;
        self.pos += 1;
        Ok(bit == 1)
    }

    /// Reads `n` (at most 32) bits as an unsigned number.
    pub fn bits(&mut self, n: u32) -> Result<u32, MediaError> {
        debug_assert!(n <= 32);
        let mut v: u64 = 0;
        for _ in 0..n {
            v = (v << 1) | u64::from(self.bit()?);
        }
        // At most 32 bits were shifted in, so this always fits.
        Ok(v as u32)
    }

    pub fn u8(&mut self) -> Result<u8, MediaError> {
        Ok(self.bits(8)? as u8)
    }

    pub fn skip(&mut self, n: usize) -> Result<(), MediaError> {
        let end = self.pos.checked_add(n).ok_or_else(|| self.truncated())?;
        if end > self.data.len() * 8 {
            return Err(self.truncated());
        }
        self.pos = end;
        Ok(())
    }

    /// ue(v): unsigned Exp-Golomb. Codes longer than 32 bits are rejected, which no
    /// conforming field needs (the largest is 2^32 - 2).
    pub fn ue(&mut self) -> Result<u32, MediaError> {
        let mut zeros = 0u32;
        while !self.bit()? {
            zeros += 1;
            if zeros > 31 {
                return Err(MediaError::invalid(self.what, "Exp-Golomb code too long"));
            }
        }
        let rest = u64::from(self.bits(zeros)?);
        let v = (1u64 << zeros) - 1 + rest;
        u32::try_from(v).map_err(|_| MediaError::invalid(self.what, "Exp-Golomb value too large"))
    }

    /// se(v): signed Exp-Golomb.
    pub fn se(&mut self) -> Result<i32, MediaError> {
        let k = i64::from(self.ue()?);
        let v = if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) };
        // |v| <= 2^31, and -2^31 fits; +2^31 cannot occur because ue() caps k below 2^32 - 1.
        i32::try_from(v).map_err(|_| MediaError::invalid(self.what, "Exp-Golomb value too large"))
    }

    /// ue(v) that must not exceed `max` (the range the spec allows for this field).
    pub fn ue_max(&mut self, max: u32, field: &'static str) -> Result<u32, MediaError> {
        let v = self.ue()?;
        if v > max {
            return Err(MediaError::invalid(
                self.what,
                format!("{field} = {v} exceeds {max}"),
            ));
        }
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emulation_prevention_is_removed() {
        assert_eq!(
            strip_emulation_prevention(&[0, 0, 3, 1, 0, 0, 3, 0, 0, 3]),
            vec![0, 0, 1, 0, 0, 0, 0]
        );
        // A 03 not preceded by two zeros stays.
        assert_eq!(
            strip_emulation_prevention(&[0, 3, 0, 0, 3]),
            vec![0, 3, 0, 0]
        );
    }

    #[test]
    fn exp_golomb() {
        // 1 | 010 | 011 | 00100 | 00101 -> ue 0,1,2,3,4
        let data = [0b1010_0110, 0b0100_0010, 0b1000_0000];
        let mut r = BitReader::new(&data, "test");
        assert_eq!(r.ue().unwrap(), 0);
        assert_eq!(r.ue().unwrap(), 1);
        assert_eq!(r.ue().unwrap(), 2);
        assert_eq!(r.ue().unwrap(), 3);
        assert_eq!(r.ue().unwrap(), 4);
        let data = [0b0100_1100, 0b1000_0000];
        let mut r = BitReader::new(&data, "test");
        assert_eq!(r.se().unwrap(), 1); // 010
        assert_eq!(r.se().unwrap(), -1); // 011
        assert_eq!(r.se().unwrap(), 2); // 00100
        assert!(matches!(r.ue(), Err(MediaError::Truncated { .. })));
    }

    #[test]
    fn long_codes_are_rejected_not_panicking() {
        let data = [0u8; 8];
        assert!(BitReader::new(&data, "t").ue().is_err());
        let mut data = [0u8; 9];
        data[4] = 0x80; // 32 zeros then a one: too long
        assert!(BitReader::new(&data, "t").ue().is_err());
        let data = [0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0xff];
        // 31 zeros, one, 31 ones: 2^32 - 2, the largest value accepted.
        let mut r = BitReader::new(&data, "t");
        assert_eq!(r.ue().unwrap(), u32::MAX - 1);
    }
}
