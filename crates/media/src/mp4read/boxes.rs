//! Box headers (ISO/IEC 14496-12 §4.2) and a bounds-checked cursor over box bodies: the only
//! place of `mp4read` that indexes into bytes. Every read is checked; short input is
//! `MediaError::Truncated`, never a panic.

use crate::MediaError;

/// A box type, e.g. `*b"moof"`.
pub type FourCc = [u8; 4];

/// One box header as found in the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BoxHeader {
    /// The box type.
    pub kind: FourCc,
    /// Where the box starts (its size field), in the coordinates the caller gave.
    pub offset: u64,
    /// 8, or 16 when the size is a 64-bit `largesize`.
    pub header_len: u8,
    /// The whole box's length including the header; `None` when the size field is 0, which
    /// means "up to the end of the file" (§4.2: only the last box may say so).
    pub len: Option<u64>,
}

impl BoxHeader {
    /// Parses the header at the start of `buf`, a box that starts at `offset`. Needs 8 bytes,
    /// 16 when the size field is 1 (64-bit size).
    pub fn parse(buf: &[u8], offset: u64) -> Result<BoxHeader, MediaError> {
        const WHAT: &str = "MP4 box header";
        let mut c = Cursor::new(buf, WHAT);
        let size32 = c.u32()?;
        let kind = c.fourcc()?;
        let (header_len, len) = match size32 {
            0 => (8, None),
            1 => {
                let large = c.u64()?;
                if large < 16 {
                    return Err(MediaError::invalid(
                        WHAT,
                        format!("{} box with 64-bit size {large}", show(kind)),
                    ));
                }
                (16, Some(large))
            }
            2..=7 => {
                return Err(MediaError::invalid(
                    WHAT,
                    format!("{} box with size {size32}", show(kind)),
                ));
            }
            n => (8, Some(u64::from(n))),
        };
        Ok(BoxHeader {
            kind,
            offset,
            header_len,
            len,
        })
    }

    /// The box's length once the length of whatever holds it is known (`container_end` is
    /// the offset where the file or parent box ends).
    pub fn len_within(&self, container_end: u64) -> u64 {
        self.len
            .unwrap_or_else(|| container_end.saturating_sub(self.offset))
    }

    /// Where the body (after the header) starts.
    pub fn body_offset(&self) -> u64 {
        self.offset + u64::from(self.header_len)
    }
}

/// A box type for messages: printable ASCII as is, anything else escaped.
pub fn show(kind: FourCc) -> String {
    kind.iter()
        .flat_map(|&b| std::ascii::escape_default(b))
        .map(char::from)
        .collect()
}

/// One top-level box found by `top_level_boxes`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TopBox {
    /// A box wholly inside the input: its header and its length.
    Complete { header: BoxHeader, len: u64 },
    /// The input ends inside this box (or inside its header): the last box is torn. Nothing
    /// follows it.
    Torn {
        offset: u64,
        /// What the header declared, when there was a whole header.
        declared_len: Option<u64>,
    },
    /// The bytes at `offset` are not a box header (for example a zero-filled tail after a
    /// crash). Nothing follows it.
    Invalid { offset: u64, error: MediaError },
}

/// The top-level boxes of a whole file held in memory, in order. A last box that the input
/// cuts short comes out as `TopBox::Torn` and ends the iteration, so a caller can truncate a
/// file back to its last complete box.
pub fn top_level_boxes(data: &[u8]) -> impl Iterator<Item = TopBox> + '_ {
    let mut pos: u64 = 0;
    let end = data.len() as u64;
    let mut done = false;
    std::iter::from_fn(move || {
        if done || pos >= end {
            return None;
        }
        // `pos < end <= usize::MAX` here, so the cast is lossless.
        let rest = data.get(pos as usize..).unwrap_or_default();
        let item = match BoxHeader::parse(rest, pos) {
            Err(MediaError::Truncated { .. }) => TopBox::Torn {
                offset: pos,
                declared_len: None,
            },
            Err(error) => TopBox::Invalid { offset: pos, error },
            Ok(header) if header.kind == [0; 4] => TopBox::Invalid {
                offset: pos,
                error: MediaError::invalid("MP4 box header", "zero-filled bytes"),
            },
            Ok(header) => {
                let len = header.len_within(end);
                if pos.checked_add(len).is_none_or(|e| e > end) {
                    TopBox::Torn {
                        offset: pos,
                        declared_len: Some(len),
                    }
                } else {
                    pos += len;
                    return Some(TopBox::Complete { header, len });
                }
            }
        };
        done = true;
        Some(item)
    })
}

/// The child boxes of a container body: `(type, body)` pairs, in order. A child whose size
/// runs past the parent is an error (the parent is complete, so this is corruption, not a
/// torn write).
pub fn children<'a>(
    body: &'a [u8],
    what: &'static str,
) -> impl Iterator<Item = Result<(FourCc, &'a [u8]), MediaError>> + 'a {
    let mut pos = 0usize;
    let mut failed = false;
    std::iter::from_fn(move || {
        if failed || pos >= body.len() {
            return None;
        }
        let rest = &body[pos..];
        let result = BoxHeader::parse(rest, pos as u64).and_then(|h| {
            let len = h.len_within(rest.len() as u64);
            if len > rest.len() as u64 || len < u64::from(h.header_len) {
                return Err(MediaError::invalid(
                    what,
                    format!(
                        "{} box of {len} bytes in {} remaining",
                        show(h.kind),
                        rest.len()
                    ),
                ));
            }
            // len <= rest.len(), so both casts are lossless.
            let child = &rest[usize::from(h.header_len)..len as usize];
            pos += len as usize;
            Ok((h.kind, child))
        });
        failed = result.is_err();
        Some(result)
    })
}

/// The first child of type `kind`, if any.
pub fn find<'a>(
    body: &'a [u8],
    kind: &FourCc,
    what: &'static str,
) -> Result<Option<&'a [u8]>, MediaError> {
    for child in children(body, what) {
        let (k, b) = child?;
        if &k == kind {
            return Ok(Some(b));
        }
    }
    Ok(None)
}

/// The first child of type `kind`, which must be there.
pub fn require<'a>(
    body: &'a [u8],
    kind: &FourCc,
    what: &'static str,
) -> Result<&'a [u8], MediaError> {
    find(body, kind, what)?
        .ok_or_else(|| MediaError::invalid(what, format!("no {} box", show(*kind))))
}

/// Big-endian reads over a box body, each checked against the end.
pub struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Cursor<'a> {
    pub fn new(buf: &'a [u8], what: &'static str) -> Self {
        Cursor { buf, pos: 0, what }
    }

    pub fn take(&mut self, n: usize) -> Result<&'a [u8], MediaError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or(MediaError::Truncated { what: self.what })?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    pub fn skip(&mut self, n: usize) -> Result<(), MediaError> {
        self.take(n).map(|_| ())
    }

    pub fn u16(&mut self) -> Result<u16, MediaError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    pub fn u32(&mut self) -> Result<u32, MediaError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn i32(&mut self) -> Result<i32, MediaError> {
        self.u32().map(|v| v as i32)
    }

    pub fn u64(&mut self) -> Result<u64, MediaError> {
        let hi = self.u32()?;
        let lo = self.u32()?;
        Ok(u64::from(hi) << 32 | u64::from(lo))
    }

    pub fn fourcc(&mut self) -> Result<FourCc, MediaError> {
        let b = self.take(4)?;
        Ok([b[0], b[1], b[2], b[3]])
    }

    /// A full box's version and flags (§4.2).
    pub fn version_flags(&mut self) -> Result<(u8, u32), MediaError> {
        let v = self.u32()?;
        Ok(((v >> 24) as u8, v & 0x00ff_ffff))
    }

    /// A 32-bit field in version 0 of a box, a 64-bit one in version 1.
    pub fn u32_or_u64(&mut self, version: u8) -> Result<u64, MediaError> {
        if version == 1 {
            self.u64()
        } else {
            self.u32().map(u64::from)
        }
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers() {
        let h = BoxHeader::parse(b"\0\0\0\x10moofxxxxxxxx", 5).unwrap();
        assert_eq!(
            (h.kind, h.offset, h.header_len, h.len),
            (*b"moof", 5, 8, Some(16))
        );
        let h = BoxHeader::parse(b"\0\0\0\x01mdat\0\0\0\x01\0\0\0\0", 0).unwrap();
        assert_eq!((h.header_len, h.len), (16, Some(1 << 32)));
        let h = BoxHeader::parse(b"\0\0\0\0mdat", 100).unwrap();
        assert_eq!((h.len, h.len_within(150)), (None, 50));
        assert!(matches!(
            BoxHeader::parse(b"\0\0\0\x01mdat\0\0", 0),
            Err(MediaError::Truncated { .. })
        ));
        assert!(BoxHeader::parse(b"\0\0\0\x07free", 0).is_err());
        assert!(BoxHeader::parse(b"\0\0\0\x01mdat\0\0\0\0\0\0\0\x08", 0).is_err());
    }

    #[test]
    fn top_level_detects_a_torn_last_box() {
        let mut file = b"\0\0\0\x0cftypiso5".to_vec();
        file.extend_from_slice(b"\0\0\0\x10mdat12345678");
        file.extend_from_slice(b"\0\0\0\x20moof1234");
        let boxes: Vec<_> = top_level_boxes(&file).collect();
        assert_eq!(boxes.len(), 3);
        assert!(matches!(boxes[0], TopBox::Complete { len: 12, .. }));
        assert!(matches!(boxes[1], TopBox::Complete { len: 16, header } if header.offset == 12));
        assert_eq!(
            boxes[2],
            TopBox::Torn {
                offset: 28,
                declared_len: Some(32)
            }
        );
        let cut: Vec<_> = top_level_boxes(&file[..31]).collect();
        assert_eq!(
            cut[2],
            TopBox::Torn {
                offset: 28,
                declared_len: None
            }
        );
        let zeros = [0u8; 3];
        assert!(matches!(
            top_level_boxes(&zeros).next(),
            Some(TopBox::Torn { .. })
        ));
    }

    #[test]
    fn children_refuse_overruns() {
        let body = b"\0\0\0\x0cmvhdabcd\0\0\0\x10trak";
        let kids: Vec<_> = children(body, "test").collect();
        assert_eq!(kids[0].as_ref().unwrap(), &(*b"mvhd", &b"abcd"[..]));
        assert!(kids[1].is_err());
        assert_eq!(show(*b"a\0b\xff"), "a\\x00b\\xff");
    }
}
