//! The byte stream of an RTSP connection: RTSP messages interleaved with binary
//! `$ channel length data` frames (RFC 2326 section 10.12), in both directions.
//! Sans-IO: `next_item` cuts items off the front of a read buffer; `Decoder` wraps it for
//! callers that `feed` bytes as they arrive. Never panics on input.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::message::{Message, ParseError, parse_message};

/// The largest interleaved frame: `$`, channel, a 16-bit length and that many bytes.
pub const MAX_FRAME: usize = 4 + u16::MAX as usize;

/// One thing a client sent on the control connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    Message(Message),
    /// An interleaved frame, typically RTCP receiver reports on channel 1.
    Data {
        channel: u8,
        payload: Bytes,
    },
}

/// Removes and returns the next complete item from `buf`; `Ok(None)` until one is complete.
pub fn next_item(buf: &mut BytesMut) -> Result<Option<Item>, ParseError> {
    if buf.first() == Some(&b'$') {
        if buf.len() < 4 {
            return Ok(None);
        }
        let channel = buf[1];
        let len = usize::from(u16::from_be_bytes([buf[2], buf[3]]));
        if buf.len() < 4 + len {
            return Ok(None);
        }
        buf.advance(4);
        let payload = buf.split_to(len).freeze();
        return Ok(Some(Item::Data { channel, payload }));
    }
    match parse_message(buf)? {
        None => Ok(None),
        Some((msg, used)) => {
            buf.advance(used);
            Ok(Some(Item::Message(msg)))
        }
    }
}

/// Incremental decoder of a connection's byte stream: `feed` what was read, then take items
/// with `next_item` until it says `Ok(None)`. Memory is bounded: a message head is cut off at
/// `MAX_HEAD`, a body at `MAX_BODY`, a frame at `MAX_FRAME`. After an error the stream cannot
/// be resynchronised, so every later call returns that error again.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: BytesMut,
    failed: Option<ParseError>,
}

impl Decoder {
    pub fn new() -> Decoder {
        Decoder::default()
    }

    pub fn feed(&mut self, bytes: &[u8]) {
        if self.failed.is_none() {
            self.buf.extend_from_slice(bytes);
        }
    }

    /// The buffer itself, for readers that fill it in place (`AsyncReadExt::read_buf`).
    pub fn buffer_mut(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    /// Bytes fed and not yet taken.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    pub fn next_item(&mut self) -> Result<Option<Item>, ParseError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        next_item(&mut self.buf).inspect_err(|e| {
            self.failed = Some(e.clone());
            self.buf = BytesMut::new();
        })
    }
}

/// Wraps an RTP or RTCP packet for sending on the RTSP connection.
/// Packets longer than 65535 bytes cannot be framed; the packetizer never makes them.
pub fn interleave(channel: u8, packet: &[u8]) -> Bytes {
    let len = u16::try_from(packet.len()).unwrap_or(u16::MAX);
    let mut b = BytesMut::with_capacity(4 + usize::from(len));
    b.put_u8(b'$');
    b.put_u8(channel);
    b.put_u16(len);
    b.put_slice(&packet[..usize::from(len)]);
    b.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn splits_frames_and_requests() {
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&interleave(1, b"rtcp"));
        buf.extend_from_slice(b"GET_PARAMETER rtsp://h/cam1 RTSP/1.0\r\nCSeq: 9\r\n\r\n$\x00\x00");
        assert_eq!(
            next_item(&mut buf).unwrap(),
            Some(Item::Data {
                channel: 1,
                payload: Bytes::from_static(b"rtcp")
            })
        );
        let Some(Item::Message(Message::Request(r))) = next_item(&mut buf).unwrap() else {
            panic!("expected a request");
        };
        assert_eq!(r.header("CSeq"), Some("9"));
        assert_eq!(next_item(&mut buf).unwrap(), None);
        buf.extend_from_slice(b"\x02ab");
        assert_eq!(
            next_item(&mut buf).unwrap(),
            Some(Item::Data {
                channel: 0,
                payload: Bytes::from_static(b"ab")
            })
        );
        assert!(buf.is_empty());
    }

    proptest! {
        /// Any byte stream, fed in arbitrary chunks, never panics and never grows without bound
        /// past an error.
        #[test]
        fn never_panics(data in proptest::collection::vec(any::<u8>(), 0..4096), chunk in 1usize..512) {
            let mut buf = BytesMut::new();
            'outer: for piece in data.chunks(chunk) {
                buf.extend_from_slice(piece);
                loop {
                    match next_item(&mut buf) {
                        Ok(Some(_)) => continue,
                        Ok(None) => break,
                        Err(_) => break 'outer,
                    }
                }
            }
        }

        /// The same bytes give the same items whether fed at once or in pieces, and the
        /// decoder never holds more than one unfinished item.
        #[test]
        fn decoder_is_chunking_invariant(data in proptest::collection::vec(any::<u8>(), 0..4096), chunk in 1usize..512) {
            let drain = |d: &mut Decoder, out: &mut Vec<Result<Item, ParseError>>| loop {
                match d.next_item() {
                    Ok(Some(i)) => out.push(Ok(i)),
                    Ok(None) => break,
                    Err(e) => { out.push(Err(e)); break; }
                }
            };
            let (mut whole, mut pieces) = (Decoder::new(), Decoder::new());
            let (mut a, mut b) = (Vec::new(), Vec::new());
            whole.feed(&data);
            drain(&mut whole, &mut a);
            for piece in data.chunks(chunk) {
                pieces.feed(piece);
                if matches!(b.last(), Some(Err(_))) { break; }
                drain(&mut pieces, &mut b);
                prop_assert!(pieces.buffered() <= crate::message::MAX_HEAD + crate::message::MAX_BODY + MAX_FRAME + chunk);
            }
            // An error found late with small pieces is found at the same item with one big
            // piece; before it, both saw the same items.
            prop_assert_eq!(&a, &b);
        }

        #[test]
        fn frames_round_trip(channel in any::<u8>(), payload in proptest::collection::vec(any::<u8>(), 0..3000)) {
            let mut buf = BytesMut::from(&interleave(channel, &payload)[..]);
            let item = next_item(&mut buf).unwrap();
            prop_assert_eq!(item, Some(Item::Data { channel, payload: Bytes::from(payload) }));
        }
    }
}
