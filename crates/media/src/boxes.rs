//! Writing ISO BMFF boxes (ISO/IEC 14496-12): the one box writer of the fragmented (`fmp4`) and
//! progressive (`progressive`) muxers, so both patch sizes and lay out full-box headers alike.

use bytes::{BufMut, BytesMut};

/// The unity matrix of mvhd/tkhd (§8.2.2.3).
pub(crate) const MATRIX: [u32; 9] = [0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000];

/// Writes boxes into one buffer, patching each box's size when it is closed.
pub(crate) struct BoxWriter {
    pub(crate) buf: BytesMut,
    open: Vec<usize>,
}

impl BoxWriter {
    pub(crate) fn new(capacity: usize) -> Self {
        BoxWriter {
            buf: BytesMut::with_capacity(capacity),
            open: Vec::new(),
        }
    }

    pub(crate) fn start(&mut self, fourcc: &[u8; 4]) {
        self.open.push(self.buf.len());
        self.buf.put_u32(0);
        self.buf.put_slice(fourcc);
    }

    pub(crate) fn start_full(&mut self, fourcc: &[u8; 4], version: u8, flags: u32) {
        self.start(fourcc);
        self.buf
            .put_u32(u32::from(version) << 24 | (flags & 0x00ff_ffff));
    }

    pub(crate) fn end(&mut self) {
        // Every end() pairs with a start() in the muxers' straight-line code. Sizes fit 32 bits:
        // the boxes written here (init segments, fragments' headers, a moov) stay far below
        // 4 GiB; payload larger than that is never copied into a writer.
        let start = self.open.pop().expect("end() without start()");
        let size = (self.buf.len() - start) as u32;
        self.buf[start..start + 4].copy_from_slice(&size.to_be_bytes());
    }

    /// A 32-bit field in version 0, a 64-bit one in version 1.
    pub(crate) fn time(&mut self, version: u8, v: u64) {
        if version == 1 {
            self.buf.put_u64(v);
        } else {
            self.buf.put_u32(v as u32);
        }
    }

    pub(crate) fn finish(self) -> BytesMut {
        debug_assert!(self.open.is_empty());
        self.buf
    }
}
