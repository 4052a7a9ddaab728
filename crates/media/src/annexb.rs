//! NAL unit framing: Annex B byte streams (start codes, ITU-T H.264 Annex B) and the
//! 4-byte length-prefixed form MP4 stores and `Frame::data` carries; NAL type questions
//! (keyframe? parameter set?) for both codecs; grouping NAL units into access units.
//!
//! Splitting never copies: the NAL units returned are slices of the input `Bytes`.

use bytes::{BufMut, Bytes, BytesMut};

use crate::{Codec, MediaError, h264, h265};

/// Finds the next start code (`00 00 01`) at or after `from`; returns its offset.
fn find_start_code(data: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while i + 3 <= data.len() {
        // Skip ahead quickly: a start code needs data[i + 2] == 1 and two zeros before it.
        match data[i + 2] {
            1 if data[i] == 0 && data[i + 1] == 0 => return Some(i),
            0 => i += 1,
            _ => i += 3,
        }
    }
    None
}

/// Splits an Annex B byte stream into its NAL units (start codes and trailing zero bytes
/// removed). Bytes before the first start code are ignored; empty NAL units are skipped.
pub fn split_annexb(data: &Bytes) -> Vec<Bytes> {
    let mut out = Vec::new();
    let Some(mut start) = find_start_code(data, 0) else {
        return out;
    };
    loop {
        let body = start + 3;
        let next = find_start_code(data, body);
        let mut end = next.unwrap_or(data.len());
        // The zero before a 4-byte start code and trailing_zero_8bits are not part of the NAL.
        while end > body && data[end - 1] == 0 {
            end -= 1;
        }
        if end > body {
            out.push(data.slice(body..end));
        }
        match next {
            Some(n) => start = n,
            None => return out,
        }
    }
}

/// Converts an Annex B byte stream to 4-byte length-prefixed NAL units.
pub fn annexb_to_length_prefixed(data: &Bytes) -> Bytes {
    to_length_prefixed(&split_annexb(data))
}

/// Joins NAL units into the 4-byte length-prefixed form of `Frame::data`.
pub fn to_length_prefixed<B: AsRef<[u8]>>(nals: &[B]) -> Bytes {
    let len = nals.iter().map(|n| 4 + n.as_ref().len()).sum();
    let mut b = BytesMut::with_capacity(len);
    for n in nals {
        let n = n.as_ref();
        // A NAL unit over 4 GiB cannot exist in memory we were handed as one frame.
        b.put_u32(u32::try_from(n.len()).unwrap_or(u32::MAX));
        b.put_slice(n);
    }
    b.freeze()
}

/// Splits 4-byte length-prefixed NAL units (as in `Frame::data`) without copying.
pub fn split_length_prefixed(data: &Bytes) -> Result<Vec<Bytes>, MediaError> {
    const WHAT: &str = "length-prefixed NAL units";
    let mut out = Vec::new();
    let mut pos = 0usize;
    while pos < data.len() {
        let Some(hdr) = data.get(pos..pos + 4) else {
            return Err(MediaError::Truncated { what: WHAT });
        };
        let len = u32::from_be_bytes([hdr[0], hdr[1], hdr[2], hdr[3]]) as usize;
        let body = pos + 4;
        let end = body
            .checked_add(len)
            .filter(|&e| e <= data.len())
            .ok_or(MediaError::Truncated { what: WHAT })?;
        out.push(data.slice(body..end));
        pos = end;
    }
    Ok(out)
}

/// Converts 4-byte length-prefixed NAL units to an Annex B byte stream (4-byte start codes).
pub fn length_prefixed_to_annexb(data: &Bytes) -> Result<Bytes, MediaError> {
    let nals = split_length_prefixed(data)?;
    let mut b = BytesMut::with_capacity(data.len());
    for n in &nals {
        b.put_slice(&[0, 0, 0, 1]);
        b.put_slice(n);
    }
    Ok(b.freeze())
}

/// The codec-specific NAL unit type, or `None` for an empty/short NAL unit.
pub fn nal_type(codec: Codec, nal: &[u8]) -> Option<u8> {
    match codec {
        Codec::H264 => h264::nal_type(nal),
        Codec::H265 => h265::nal_type(nal),
    }
}

/// True for a NAL unit that starts a picture decodable on its own: an H.264 IDR slice,
/// an H.265 IRAP picture (IDR, CRA, BLA).
pub fn is_keyframe_nal(codec: Codec, nal: &[u8]) -> bool {
    match (codec, nal_type(codec, nal)) {
        (Codec::H264, Some(t)) => t == h264::nal::IDR,
        (Codec::H265, Some(t)) => (h265::nal::BLA_W_LP..=h265::nal::IRAP_MAX).contains(&t),
        (_, None) => false,
    }
}

/// True for SPS/PPS (H.264) and VPS/SPS/PPS (H.265).
pub fn is_parameter_set(codec: Codec, nal: &[u8]) -> bool {
    match (codec, nal_type(codec, nal)) {
        (Codec::H264, Some(t)) => t == h264::nal::SPS || t == h264::nal::PPS,
        (Codec::H265, Some(t)) => (h265::nal::VPS..=h265::nal::PPS).contains(&t),
        (_, None) => false,
    }
}

/// True for a slice (VCL NAL unit): what a picture is made of.
pub fn is_vcl(codec: Codec, nal: &[u8]) -> bool {
    match (codec, nal_type(codec, nal)) {
        (Codec::H264, Some(t)) => (1..=5).contains(&t),
        (Codec::H265, Some(t)) => t < 32,
        (_, None) => false,
    }
}

/// True if any NAL unit of a length-prefixed access unit is a keyframe slice. Malformed
/// framing answers false (the frame is not a safe place to start decoding).
pub fn access_unit_is_keyframe(codec: Codec, data: &Bytes) -> bool {
    split_length_prefixed(data)
        .map(|nals| nals.iter().any(|n| is_keyframe_nal(codec, n)))
        .unwrap_or(false)
}

/// True when `nal` is a slice that begins a new picture (first_mb_in_slice == 0 in H.264,
/// first_slice_segment_in_pic_flag in H.265): both are the first bit after the NAL header.
fn starts_picture(codec: Codec, nal: &[u8]) -> bool {
    let header = match codec {
        Codec::H264 => 1,
        Codec::H265 => 2,
    };
    is_vcl(codec, nal) && nal.get(header).is_some_and(|b| b & 0x80 != 0)
}

/// True for the non-VCL NAL units that may only come before the first slice of an access
/// unit, so their appearance after a slice begins the next one (H.264 §7.4.1.2.3,
/// H.265 §7.4.2.4.4).
fn starts_access_unit_if_after_slice(codec: Codec, nal: &[u8]) -> bool {
    match (codec, nal_type(codec, nal)) {
        (Codec::H264, Some(t)) => matches!(t, 6..=9 | 14..=18),
        (Codec::H265, Some(t)) => matches!(t, 32..=35 | 39 | 41..=44 | 48..=55),
        (_, None) => false,
    }
}

/// Groups a stream of NAL units (e.g. from `split_annexb`) into access units, one per picture.
/// Parameter sets and SEI before a picture stay with that picture.
pub fn access_units(codec: Codec, nals: &[Bytes]) -> Vec<Vec<Bytes>> {
    let mut out: Vec<Vec<Bytes>> = Vec::new();
    let mut current: Vec<Bytes> = Vec::new();
    let mut seen_slice = false;
    for nal in nals {
        let boundary = seen_slice
            && (starts_picture(codec, nal) || starts_access_unit_if_after_slice(codec, nal));
        if boundary {
            out.push(std::mem::take(&mut current));
            seen_slice = false;
        }
        if is_vcl(codec, nal) {
            seen_slice = true;
        }
        current.push(nal.clone());
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_three_and_four_byte_start_codes() {
        let data = Bytes::from_static(&[
            0xaa, 0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 0, 0, 1, 0x65, 4, 0, 0,
        ]);
        let nals = split_annexb(&data);
        assert_eq!(
            nals,
            vec![
                Bytes::from_static(&[0x67, 1, 2]),
                Bytes::from_static(&[0x68, 3]),
                Bytes::from_static(&[0x65, 4]),
            ]
        );
        // No copy: the NAL units point into the input.
        assert_eq!(nals[0].as_ptr(), data[5..].as_ptr());
        let lp = annexb_to_length_prefixed(&data);
        assert_eq!(
            &lp[..],
            &[
                0, 0, 0, 3, 0x67, 1, 2, 0, 0, 0, 2, 0x68, 3, 0, 0, 0, 2, 0x65, 4
            ]
        );
        let back = length_prefixed_to_annexb(&lp).unwrap();
        assert_eq!(split_annexb(&back), nals);
    }

    #[test]
    fn length_prefixed_errors() {
        assert!(split_length_prefixed(&Bytes::from_static(&[0, 0, 0])).is_err());
        assert!(split_length_prefixed(&Bytes::from_static(&[0, 0, 0, 5, 1])).is_err());
        assert!(split_length_prefixed(&Bytes::from_static(&[0xff, 0xff, 0xff, 0xff])).is_err());
        assert_eq!(
            split_length_prefixed(&Bytes::new()).unwrap(),
            Vec::<Bytes>::new()
        );
    }

    #[test]
    fn nal_type_questions() {
        assert!(is_keyframe_nal(Codec::H264, &[0x65, 0x88]));
        assert!(!is_keyframe_nal(Codec::H264, &[0x41, 0x9a]));
        assert!(is_parameter_set(Codec::H264, &[0x67]));
        assert!(is_parameter_set(Codec::H264, &[0x68]));
        assert!(!is_parameter_set(Codec::H264, &[0x06]));
        // H.265: IDR_W_RADL (19) = 0x26 0x01, CRA (21) = 0x2a 0x01, TRAIL_R (1) = 0x02 0x01.
        assert!(is_keyframe_nal(Codec::H265, &[0x26, 0x01]));
        assert!(is_keyframe_nal(Codec::H265, &[0x2a, 0x01]));
        assert!(!is_keyframe_nal(Codec::H265, &[0x02, 0x01]));
        assert!(!is_keyframe_nal(Codec::H265, &[0x26]));
        assert!(is_parameter_set(Codec::H265, &[0x40, 0x01]));
        assert!(is_parameter_set(Codec::H265, &[0x44, 0x01]));
        assert!(!is_parameter_set(Codec::H265, &[0x4e, 0x01]));
        let au = to_length_prefixed(&[&[0x09u8, 0xf0][..], &[0x65, 0x88]]);
        assert!(access_unit_is_keyframe(Codec::H264, &au));
        assert!(!access_unit_is_keyframe(Codec::H264, &au.slice(..8)));
    }

    #[test]
    fn groups_access_units() {
        let n = |b: &'static [u8]| Bytes::from_static(b);
        let nals = vec![
            n(&[0x67, 1]),
            n(&[0x68, 1]),
            n(&[0x06, 1]),
            n(&[0x65, 0x88]), // IDR, first_mb = 0
            n(&[0x65, 0x40]), // IDR, second slice of the same picture
            n(&[0x41, 0x9a]), // P, new picture
            n(&[0x06, 1]),    // SEI after a slice: new access unit
            n(&[0x41, 0x9a]),
        ];
        let aus = access_units(Codec::H264, &nals);
        assert_eq!(aus.iter().map(Vec::len).collect::<Vec<_>>(), vec![5, 1, 2]);
    }
}
