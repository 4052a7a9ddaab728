//! A WHEP receiver built on str0m, for tests: it makes a recvonly video offer with the
//! codecs a test chooses (so H.265 negotiation can be tested with a browser that has no
//! HEVC), connects to camgate's UDP socket from its own 127.0.0.1 socket, and collects the
//! depacketized frames (Annex B) for ffprobe. A full ICE agent (not lite), as browsers are.
#![allow(dead_code)]

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use str0m::change::{SdpAnswer, SdpPendingOffer};
use str0m::media::{Direction, KeyframeRequestKind, MediaKind, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc};

pub enum Offer {
    H264,
    H265,
    Vp8,
}

pub struct WhepClient {
    rtc: Rtc,
    socket: UdpSocket,
    pending: Option<SdpPendingOffer>,
    pub offer: String,
    /// The video's mid, once media arrived.
    mid: Option<Mid>,
    /// Drop every Nth incoming RTP packet (0: none), as a lossy network would: str0m then
    /// NACKs the gaps and the sender must retransmit from its history.
    pub drop_every: usize,
    rtp_seen: usize,
    /// Incoming RTP packets dropped so far.
    pub dropped: usize,
}

/// What a receive run saw.
#[derive(Debug, Default)]
pub struct Received {
    /// Every frame as Annex B, concatenated: an elementary stream ffprobe reads.
    pub annexb: Vec<u8>,
    pub frames: usize,
    pub codec: Option<String>,
    pub connected_after: Option<Duration>,
    pub first_frame_after: Option<Duration>,
    pub disconnected: bool,
    /// Indexes (in this run's frames) of the frames that hold an IDR.
    pub keyframes: Vec<usize>,
}

impl WhepClient {
    pub fn new(offer: Offer) -> WhepClient {
        let cfg = Rtc::builder().clear_codecs();
        let cfg = match offer {
            Offer::H264 => cfg.enable_h264(true),
            Offer::H265 => cfg.enable_h265(true),
            Offer::Vp8 => cfg.enable_vp8(true),
        };
        let mut rtc = cfg.build(Instant::now());
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = socket.local_addr().unwrap();
        rtc.add_local_candidate(Candidate::host(addr, "udp").unwrap());
        let mut api = rtc.sdp_api();
        api.add_media(MediaKind::Video, Direction::RecvOnly, None, None, None);
        let (offer, pending) = api.apply().unwrap();
        WhepClient {
            rtc,
            socket,
            pending: Some(pending),
            offer: offer.to_sdp_string(),
            mid: None,
            drop_every: 0,
            rtp_seen: 0,
            dropped: 0,
        }
    }

    pub fn accept(&mut self, answer: &str) {
        let answer = SdpAnswer::from_sdp_string(answer).expect("camgate's answer parses");
        let pending = self.pending.take().unwrap();
        self.rtc.sdp_api().accept_answer(pending, answer).unwrap();
    }

    /// Sends a PLI (picture loss: "send me a keyframe") for the video; the next `receive`
    /// sends it out.
    pub fn request_keyframe(&mut self) {
        let mid = self.mid.expect("request_keyframe after media arrived");
        self.rtc
            .writer(mid)
            .expect("a live session has a writer")
            .request_keyframe(None, KeyframeRequestKind::Pli)
            .expect("PLI queued");
    }

    /// Whether to drop this incoming datagram: every `drop_every`th SRTP packet (RFC 7983:
    /// first byte 128..=191; RTCP's payload types 192..=223 are kept).
    fn drops(&mut self, d: &[u8]) -> bool {
        if self.drop_every == 0 || d.len() < 2 || !(128..=191).contains(&d[0]) {
            return false;
        }
        if (192..=223).contains(&d[1]) {
            return false;
        }
        self.rtp_seen += 1;
        let drop = self.rtp_seen.is_multiple_of(self.drop_every);
        self.dropped += usize::from(drop);
        drop
    }

    /// Runs the connection for `dur` (or until disconnected), collecting frames.
    pub fn receive(&mut self, dur: Duration) -> Received {
        let start = Instant::now();
        let end = start + dur;
        let mut got = Received::default();
        let mut buf = vec![0u8; 2000];
        let local = self.socket.local_addr().unwrap();
        loop {
            let timeout = loop {
                match self.rtc.poll_output().unwrap() {
                    Output::Timeout(t) => break t,
                    Output::Transmit(t) => {
                        let _ = self.socket.send_to(&t.contents, t.destination);
                    }
                    Output::Event(e) => match e {
                        Event::Connected => got.connected_after = Some(start.elapsed()),
                        Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                            got.disconnected = true;
                        }
                        Event::MediaData(d) => {
                            self.mid = Some(d.mid);
                            if has_idr(&d.data) {
                                got.keyframes.push(got.frames);
                            }
                            got.first_frame_after.get_or_insert(start.elapsed());
                            got.codec = Some(d.params.spec().codec.to_string());
                            got.annexb.extend_from_slice(&d.data);
                            got.frames += 1;
                        }
                        _ => {}
                    },
                }
            };
            let now = Instant::now();
            if now >= end || got.disconnected || !self.rtc.is_alive() {
                return got;
            }
            let wait = timeout
                .min(end)
                .saturating_duration_since(now)
                .max(Duration::from_millis(1));
            self.socket.set_read_timeout(Some(wait)).unwrap();
            let input = match self.socket.recv_from(&mut buf) {
                Ok((n, _)) if self.drops(&buf[..n]) => continue,
                Ok((n, source)) => match buf[..n].try_into() {
                    Ok(contents) => Input::Receive(
                        Instant::now(),
                        Receive {
                            proto: Protocol::Udp,
                            source,
                            destination: local,
                            contents,
                        },
                    ),
                    Err(_) => continue,
                },
                Err(_) => Input::Timeout(Instant::now()),
            };
            if self.rtc.handle_input(input).is_err() {
                got.disconnected = true;
                return got;
            }
        }
    }
}

/// An Annex B H.264 access unit holds an IDR slice (NAL type 5).
fn has_idr(annexb: &[u8]) -> bool {
    annexb
        .windows(4)
        .any(|w| w[..3] == [0, 0, 1] && w[3] & 0x1f == 5)
}
