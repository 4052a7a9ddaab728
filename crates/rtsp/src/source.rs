//! What a server serves: the `Source` trait (streams by name, their tracks for the SDP, and
//! one `Play` per playing session) and the `Burst` a play writes RTP packets into. The
//! simulator implements it with its picture; camgate's restream with its hub. Owns no I/O:
//! how a burst reaches the client (one interleaved write, or datagrams) is the server's.

use std::future::Future;
use std::time::SystemTime;

use bytes::{BufMut, Bytes, BytesMut};

use crate::sdp::Track;

/// One stream as DESCRIBE shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamInfo {
    /// The SDP's `s=` line.
    pub title: String,
    /// In SDP order; track `i` has the control URL `trackID=i`.
    pub tracks: Vec<Track>,
}

/// The RTP identity the server chose at SETUP for one track of a session: the packets of
/// that track must carry this SSRC and continue from this sequence number and timestamp
/// (announced in the SETUP and PLAY answers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrackStart {
    /// Index into `StreamInfo::tracks`.
    pub track: usize,
    pub ssrc: u32,
    pub seq: u16,
    pub rtptime: u32,
}

/// What a session plays: its stream and the tracks it set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlayStart {
    pub stream: String,
    pub session: String,
    pub tracks: Vec<TrackStart>,
}

/// The source of every stream a server serves.
pub trait Source: Send + Sync + 'static {
    type Play: Play;

    /// The stream named `name` (the first path segment: `cam1` in `rtsp://h/cam1/trackID=0`),
    /// or `None` for 404. Asked on every request that names a stream, so the SDP follows a
    /// change of codec parameters.
    fn describe(&self, name: &str) -> Option<StreamInfo>;

    /// Starts sending to one session, after its PLAY answer is written. `None`: the stream
    /// is gone (the session ends). A video track must start at a keyframe: the latest one the
    /// source holds, so the picture appears at once, or else the next.
    fn play(&self, start: &PlayStart) -> Option<Self::Play>;

    /// Called before a DESCRIBE of `name` that passed authentication is answered, and
    /// awaited: a source whose streams start on demand starts this one here and waits
    /// (bounded, its own timeout) until it can describe it. The connection reads nothing
    /// meanwhile. Ready at once by default.
    fn prepare(&self, name: &str) -> impl Future<Output = ()> + Send {
        let _ = name;
        std::future::ready(())
    }
}

/// The packets of one playing session.
pub trait Play: Send + 'static {
    /// Waits until there is something to send (typically one access unit) and writes it
    /// into `out`, which the server has emptied. Pacing is the source's: the server sends
    /// each burst as soon as it is returned.
    fn next(&mut self, out: &mut Burst) -> impl Future<Output = Next> + Send;
}

/// What `Play::next` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Send what is in the burst (possibly nothing) and ask again.
    Send,
    /// The stream ended: the session is removed.
    End,
    /// Close the session's RTSP connection abruptly, as a failing camera does (the
    /// simulator's drop fault).
    Abort,
}

/// Timing of the last access unit of a track in a burst, for sender reports and RTP-Info.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    pub rtp_ts: u32,
    /// Wall-clock time of `rtp_ts` (capture time, or now for a synthetic source).
    pub wall: SystemTime,
    /// The timestamp the track's next access unit is expected to carry.
    pub next_rtp_ts: u32,
}

#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct TrackCount {
    pub(crate) packets: u32,
    pub(crate) octets: u32,
    /// Sequence number after the last counted packet.
    pub(crate) next_seq: Option<u16>,
    pub(crate) clock: Option<Clock>,
}

/// RTP packets of one step of a session, in sending order. Over TCP the burst is one buffer
/// of interleaved frames, written at once (a write per packet costs a system call and a
/// wake-up of the client per packet); over UDP, one datagram per packet.
#[derive(Debug)]
pub struct Burst {
    /// Per stream track: its interleaved RTP channel (TCP), or `None` (UDP or not set up).
    channels: Vec<Option<u8>>,
    interleaved: bool,
    set_up: Vec<bool>,
    buf: BytesMut,
    /// UDP: (track, end offset in `buf`) of each datagram.
    datagrams: Vec<(usize, usize)>,
    pub(crate) counts: Vec<TrackCount>,
    /// TCP: the connection's count of bytes queued and not yet written to the socket, read
    /// live by [`Burst::backlog`].
    pub(crate) queued: Option<std::sync::Arc<std::sync::atomic::AtomicUsize>>,
}

const RTP_HEADER: usize = 12;

impl Burst {
    /// A burst for a session over TCP, `channels[i]` being the RTP channel of stream track `i`
    /// (`None` when it is not set up).
    pub fn interleaved(channels: Vec<Option<u8>>) -> Burst {
        let n = channels.len();
        Burst {
            set_up: channels.iter().map(Option::is_some).collect(),
            channels,
            interleaved: true,
            buf: BytesMut::new(),
            datagrams: Vec::new(),
            counts: vec![TrackCount::default(); n],
            queued: None,
        }
    }

    /// A burst for a session over UDP; `set_up[i]` says whether stream track `i` is.
    pub fn datagrams(set_up: Vec<bool>) -> Burst {
        let n = set_up.len();
        Burst {
            channels: vec![None; n],
            interleaved: false,
            set_up,
            buf: BytesMut::new(),
            datagrams: Vec::new(),
            counts: vec![TrackCount::default(); n],
            queued: None,
        }
    }

    /// Room for `bytes` more packet bytes, so a large access unit is one allocation.
    pub fn reserve(&mut self, bytes: usize) {
        self.buf.reserve(bytes);
    }

    /// Appends one RTP packet of `track`, given as pieces (header first, at least 12
    /// bytes), counted for sender reports. Packets of a track the session did not set up,
    /// and packets longer than 65535 bytes (they cannot be framed), are dropped.
    pub fn packet(&mut self, track: usize, parts: &[&[u8]]) {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        if len < RTP_HEADER || !self.write(track, len, parts) {
            return;
        }
        let c = &mut self.counts[track];
        c.packets = c.packets.wrapping_add(1);
        c.octets = c.octets.wrapping_add((len - RTP_HEADER) as u32);
        let mut seq = [0u8; 4];
        let mut filled = 0;
        for p in parts {
            let take = (4 - filled).min(p.len());
            seq[filled..filled + take].copy_from_slice(&p[..take]);
            filled += take;
            if filled == 4 {
                break;
            }
        }
        c.next_seq = Some(u16::from_be_bytes([seq[2], seq[3]]).wrapping_add(1));
    }

    /// Appends bytes sent as a packet of `track` but not counted: for fault injection
    /// (malformed packets a client must survive).
    pub fn uncounted(&mut self, track: usize, bytes: &[u8]) {
        self.write(track, bytes.len(), &[bytes]);
    }

    /// TCP only: an interleaved frame on `channel`, which no track may use (fault injection:
    /// data on a channel nobody set up). Dropped over UDP.
    pub fn stray(&mut self, channel: u8, bytes: &[u8]) {
        if self.interleaved && bytes.len() <= usize::from(u16::MAX) {
            put_frame(&mut self.buf, channel, bytes.len(), &[bytes]);
        }
    }

    /// Records the timing of the access unit just written for `track`.
    pub fn clock(&mut self, track: usize, clock: Clock) {
        if let Some(c) = self.counts.get_mut(track) {
            c.clock = Some(clock);
        }
    }

    fn write(&mut self, track: usize, len: usize, parts: &[&[u8]]) -> bool {
        if !self.set_up.get(track).copied().unwrap_or(false) || len > usize::from(u16::MAX) {
            return false;
        }
        match self.channels[track] {
            Some(channel) if self.interleaved => put_frame(&mut self.buf, channel, len, parts),
            _ => {
                for p in parts {
                    self.buf.put_slice(p);
                }
                self.datagrams.push((track, self.buf.len()));
            }
        }
        true
    }

    /// TCP: the bytes queued on this session's connection that the socket has not taken
    /// yet (earlier bursts, answers, sender reports), now; 0 over UDP. A source whose client
    /// reads too slowly sees it grow and should skip to the next keyframe instead of
    /// queueing more: that keeps the server's memory per client bounded. Read live, not
    /// once per step: a source that skips frames waits for the next keyframe inside one
    /// step, and must see the connection drain meanwhile (a value taken at the step's start
    /// stayed "full" forever, so a client whose first burst passed the limit got nothing).
    pub fn backlog(&self) -> usize {
        self.queued
            .as_ref()
            .map_or(0, |q| q.load(std::sync::atomic::Ordering::Relaxed))
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Takes the interleaved bytes (TCP) for one write.
    pub fn take_interleaved(&mut self) -> Bytes {
        self.datagrams.clear();
        self.buf.split().freeze()
    }

    /// Takes the datagrams (UDP) as (track, packet).
    pub fn take_datagrams(&mut self) -> Vec<(usize, Bytes)> {
        let mut all = self.buf.split().freeze();
        let mut start = 0;
        let mut out = Vec::with_capacity(self.datagrams.len());
        for (track, end) in self.datagrams.drain(..) {
            out.push((track, all.split_to(end - start)));
            start = end;
        }
        out
    }

    /// Forgets the clock points of the last step (counters stay).
    pub(crate) fn start_step(&mut self) {
        for c in &mut self.counts {
            c.clock = None;
        }
    }
}

fn put_frame(buf: &mut BytesMut, channel: u8, len: usize, parts: &[&[u8]]) {
    buf.reserve(4 + len);
    buf.put_u8(b'$');
    buf.put_u8(channel);
    // Callers checked len <= u16::MAX.
    buf.put_u16(len as u16);
    for p in parts {
        buf.put_slice(p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framing::{Item, interleave, next_item};

    fn rtp(seq: u16, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0x80, 96];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&[0; 8]);
        p.extend_from_slice(payload);
        p
    }

    #[test]
    fn interleaved_burst_is_framed_packets_on_their_channels() {
        let mut b = Burst::interleaved(vec![Some(0), None, Some(4)]);
        let (p1, p2) = (rtp(65535, b"abc"), rtp(7, b"d"));
        b.stray(250, b"junk");
        b.packet(0, &[&p1[..12], &p1[12..]]);
        b.packet(1, &[&p2]); // not set up: dropped
        b.packet(2, &[&p2]);
        b.uncounted(0, b"x");
        b.packet(0, &[b"short"]);
        let bytes = b.take_interleaved();
        let mut expected = BytesMut::new();
        for (ch, p) in [(250, &b"junk"[..]), (0, &p1), (4, &p2), (0, b"x")] {
            expected.extend_from_slice(&interleave(ch, p));
        }
        assert_eq!(bytes, expected.freeze());
        assert_eq!((b.counts[0].packets, b.counts[0].octets), (1, 3));
        assert_eq!(b.counts[0].next_seq, Some(0));
        assert_eq!(b.counts[1].packets, 0);
        assert_eq!(b.counts[2].next_seq, Some(8));
        let mut buf = BytesMut::from(&bytes[..]);
        assert!(matches!(
            next_item(&mut buf),
            Ok(Some(Item::Data { channel: 250, .. }))
        ));
    }

    #[test]
    fn datagram_burst_keeps_packet_boundaries() {
        let mut b = Burst::datagrams(vec![true, true]);
        let (p1, p2) = (rtp(1, b"abc"), rtp(2, b""));
        b.stray(250, b"junk");
        b.packet(1, &[&p1]);
        b.uncounted(0, b"garbage");
        b.packet(0, &[&p2[..3], &p2[3..]]);
        let d = b.take_datagrams();
        assert_eq!(
            d,
            vec![
                (1, Bytes::from(p1)),
                (0, Bytes::from_static(b"garbage")),
                (0, Bytes::from(p2))
            ]
        );
        assert!(b.is_empty() && b.take_datagrams().is_empty());
    }
}
