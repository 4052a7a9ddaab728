//! The sender of one RTSP session: frames of the stream's hub from the cached keyframe on
//! (instant start), packetized by `media::rtp` with the session's SSRC, sequence numbers and
//! timestamps (the frames' pts on the session's RTP clock), one access unit per burst (one
//! write over TCP), and the frame's capture wall clock for the sender reports.
//!
//! A client that cannot keep up never slows the camera or other clients: the hub's bounded
//! queue skips this consumer to the next keyframe when it overflows, and this sender skips to
//! the next keyframe itself when the session falls behind the camera by more than `max_lag`
//! or its TCP connection holds more than `max_backlog` bytes not yet taken by the socket, so
//! what one slow client costs stays bounded.
//!
//! Audio (track 1, when the client set it up): one packet per frame (`media::rtp::
//! AudioPacketizer`), its RTP time the audio clock counted from the same instant as the
//! video's (the session's first video frame), so the RTP-Info of both tracks puts them in
//! sync. Audio before the first video frame is not sent; with a full connection audio is
//! dropped (the video's skip rule does the rest).

use std::sync::Arc;

use media::rtp::{AudioPacketizer, Packetizer, frame_nals, rtp_time};
use media::{AudioCodec, AudioParams, Codec, Frame, TIMESCALE};
use rtsp::{Burst, Clock, Next, TrackStart};

use super::RestreamSettings;
use super::source::{VIDEO_PAYLOAD_TYPE, audio_track};
use crate::hub::{Consumer, LiveStream, Registry, ViewerGuard};

/// A frame duration to assume before two frames have been seen (25 fps).
const DEFAULT_FRAME_TICKS: u32 = TIMESCALE / 25;

pub struct HubPlay {
    stream: LiveStream,
    consumer: Consumer,
    /// Counts this session as an RTSP viewer (and keeps an on-demand camera running).
    _viewer: ViewerGuard,
    registry: Arc<Registry>,
    /// The codec the SDP announced; a camera that changes codec ends the session.
    codec: Codec,
    packetizer: Packetizer,
    track: usize,
    /// The session's first RTP timestamp and the pts it stands for.
    rtptime: u32,
    origin_pts: Option<i64>,
    last_pts: Option<i64>,
    frame_ticks: u32,
    max_lag: i64,
    max_backlog: usize,
    /// The cached GOP arrives as a burst of older frames: that is the instant start, not lag.
    catching_up: bool,
    audio: Option<AudioOut>,
}

/// The audio track of a session.
struct AudioOut {
    track: usize,
    params: Arc<AudioParams>,
    packetizer: AudioPacketizer,
    rtptime: u32,
}

impl AudioOut {
    /// The RTP time of audio at `pts`: the audio clock since `origin` (the video's first pts).
    fn rtp_time(&self, pts: i64, origin: i64) -> u32 {
        let ticks =
            i128::from(pts - origin) * i128::from(self.params.sample_rate) / i128::from(TIMESCALE);
        self.rtptime.wrapping_add(ticks as u32)
    }

    /// Samples in one frame: AAC's 1024, G.711's one a byte.
    fn samples(&self, frame: &Frame) -> u32 {
        match self.params.codec {
            AudioCodec::Aac => 1024,
            _ => frame.data.len() as u32,
        }
    }
}

impl HubPlay {
    pub(super) fn new(
        stream: LiveStream,
        viewer: ViewerGuard,
        registry: Arc<Registry>,
        codec: Codec,
        track: TrackStart,
        audio: Option<(TrackStart, Arc<AudioParams>)>,
        settings: &RestreamSettings,
    ) -> HubPlay {
        let consumer = stream.subscribe();
        let audio = audio.and_then(|(t, params)| {
            let (_, pt) = audio_track(&params)?;
            Some(AudioOut {
                track: t.track,
                packetizer: AudioPacketizer::new(params.codec, pt, t.ssrc, t.seq),
                params,
                rtptime: t.rtptime,
            })
        });
        HubPlay {
            stream,
            consumer,
            _viewer: viewer,
            registry,
            codec,
            packetizer: Packetizer::new(codec, VIDEO_PAYLOAD_TYPE, track.ssrc, track.seq),
            track: track.track,
            rtptime: track.rtptime,
            origin_pts: None,
            last_pts: None,
            frame_ticks: DEFAULT_FRAME_TICKS,
            max_lag: (settings.max_lag.as_secs_f64() * f64::from(TIMESCALE)) as i64,
            max_backlog: settings.max_backlog,
            catching_up: true,
            audio,
        }
    }

    /// Writes an audio frame of the announced audio; false when it is not sent.
    fn audio_frame(&mut self, frame: &Frame, out: &mut Burst) -> bool {
        let (Some(a), Some(origin)) = (self.audio.as_mut(), self.origin_pts) else {
            return false;
        };
        if frame.audio().is_none_or(|p| **p != *a.params)
            || frame.pts < origin
            || out.backlog() > self.max_backlog
        {
            return false;
        }
        let rtp_ts = a.rtp_time(frame.pts, origin);
        let Some((header, len)) = a.packetizer.header(&frame.data, rtp_ts) else {
            return false;
        };
        out.packet(a.track, &[&header[..len], &frame.data]);
        self.registry
            .add_bytes_sent((len + frame.data.len()) as u64);
        let next = rtp_ts.wrapping_add(a.samples(frame));
        out.clock(
            a.track,
            Clock {
                rtp_ts,
                wall: frame.wallclock,
                next_rtp_ts: next,
            },
        );
        true
    }

    /// Behind the newest frame of the hub by more than the allowed lag.
    fn lagging(&self, frame: &Frame) -> bool {
        self.stream
            .hub()
            .latest_dts()
            .is_some_and(|latest| latest - frame.dts > self.max_lag)
    }

    /// Whether `frame` goes out, or the session skips to the next keyframe (the consumer
    /// then drops everything up to it).
    fn admit(&mut self, frame: &Frame, backlog: usize) -> bool {
        let lag = !self.catching_up && self.lagging(frame);
        if self.consumer.queued() == 0 {
            self.catching_up = false;
        }
        // The hub's queue overflowed: it already skipped us to a keyframe.
        let overflowed = self.consumer.take_skips() > 0;
        // A full connection takes nothing, not even a keyframe, until it drains.
        let full = backlog > self.max_backlog;
        if full || ((lag || overflowed) && !frame.keyframe) {
            tracing::debug!(stream = %self.stream.path(), backlog, lag, overflowed,
                "RTSP client too slow; skipping to the next keyframe");
            self.consumer.skip_to_next_keyframe();
            self.consumer.take_skips();
            return false;
        }
        true
    }
}

impl rtsp::Play for HubPlay {
    /// One access unit per call: the next video frame the hub has for this session.
    async fn next(&mut self, out: &mut Burst) -> Next {
        loop {
            let Some(frame) = self.consumer.recv().await else {
                return Next::End; // the stream is gone (camera deleted, shutdown)
            };
            let Some(params) = frame.video() else {
                if self.audio_frame(&frame, out) {
                    return Next::Send;
                }
                continue;
            };
            if params.codec != self.codec {
                tracing::info!(stream = %self.stream.path(),
                    "the camera changed codec; ending the RTSP session (the client describes again)");
                return Next::End;
            }
            if !self.admit(&frame, out.backlog()) {
                continue;
            }
            let Ok(nals) = frame_nals(&frame) else {
                tracing::debug!(stream = %self.stream.path(), "malformed frame; skipped");
                continue;
            };
            let origin = *self.origin_pts.get_or_insert(frame.pts);
            let rtp_ts = rtp_time(frame.pts, origin, self.rtptime);
            if let Some(last) = self.last_pts {
                let d = frame.pts - last;
                if d > 0 && d < i64::from(TIMESCALE) {
                    self.frame_ticks = d as u32;
                }
            }
            self.last_pts = Some(frame.pts);
            out.reserve(self.packetizer.size_hint(&nals));
            let track = self.track;
            let mut bytes = 0u64;
            self.packetizer
                .for_each_packet(&nals, rtp_ts, |header, parts| {
                    // The header and at most two payload pieces (FU header, chunk).
                    let mut all: [&[u8]; 3] = [header, &[], &[]];
                    for (slot, p) in all[1..].iter_mut().zip(parts) {
                        *slot = p;
                    }
                    let n = 1 + parts.len().min(2);
                    bytes += all[..n].iter().map(|p| p.len() as u64).sum::<u64>();
                    out.packet(track, &all[..n]);
                });
            self.registry.add_bytes_sent(bytes);
            out.clock(
                track,
                Clock {
                    rtp_ts,
                    // Capture time: from the camera's sender reports, else arrival.
                    wall: frame.wallclock,
                    next_rtp_ts: rtp_ts.wrapping_add(self.frame_ticks),
                },
            );
            return Next::Send;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;
    use media::rtp::Depacketizer;
    use rtsp::Play;

    use super::*;
    use crate::hub::{HubLimits, Protocol, StreamSpec};

    fn frame(n: i64, p: &Arc<media::CodecParams>) -> Frame {
        // One slice NAL unit of 3000 bytes: IDR every 5 frames.
        let mut nal = vec![if n % 5 == 0 { 0x65 } else { 0x41 }];
        nal.extend(std::iter::repeat_n(n as u8, 2999));
        let data = media::annexb::to_length_prefixed(&[nal]);
        media::test_util::video_frame(data, 9000 + n * 3600, 9000 + n * 3600, n % 5 == 0, p)
    }

    fn setup() -> (LiveStream, HubPlay, Arc<Registry>) {
        let stream = LiveStream::new(
            StreamSpec {
                camera_id: "1".into(),
                path: "cam_1".into(),
                record: false,
                always_on: false,
                grid: false,
            },
            HubLimits::default(),
            100,
        );
        let p = media::test_util::h264_params();
        for n in 0..3 {
            stream.hub().publish(frame(n, &p));
        }
        let registry = Registry::new();
        let viewer = stream.join(Protocol::Rtsp).unwrap();
        let settings = RestreamSettings {
            start_timeout: Duration::from_secs(1),
            max_lag: Duration::from_secs(3),
            max_backlog: 1 << 20,
            session_timeout: Duration::from_secs(60),
        };
        let track = TrackStart {
            track: 0,
            ssrc: 0xC0FFEE,
            seq: 65535,
            rtptime: 1000,
        };
        let play = HubPlay::new(
            stream.clone(),
            viewer,
            registry.clone(),
            Codec::H264,
            track,
            None,
            &settings,
        );
        (stream, play, registry)
    }

    async fn next_au(play: &mut HubPlay) -> media::rtp::AccessUnit {
        let mut burst = Burst::datagrams(vec![true]);
        assert_eq!(play.next(&mut burst).await, Next::Send);
        let mut d = Depacketizer::new(Codec::H264);
        let mut aus = Vec::new();
        for (track, p) in burst.take_datagrams() {
            assert_eq!(track, 0);
            assert_eq!(&p[8..12], &0xC0FFEEu32.to_be_bytes());
            aus.extend(d.push(&p).unwrap());
        }
        assert_eq!(aus.len(), 1, "one access unit per burst");
        aus.pop().unwrap()
    }

    #[tokio::test]
    async fn a_session_starts_at_the_cached_keyframe_on_its_own_rtp_clock() {
        let (stream, mut play, registry) = setup();
        assert_eq!(stream.viewer_counts().rtsp, 1);
        let first = next_au(&mut play).await;
        let p = media::test_util::h264_params();
        // The keyframe carries its parameter sets, and starts at the session's rtptime.
        assert_eq!(first.nals[..2], [p.sps.clone(), p.pps.clone()]);
        assert_eq!(first.nals[2][0], 0x65);
        assert_eq!(first.rtp_ts, 1000);
        let second = next_au(&mut play).await;
        assert_eq!(second.rtp_ts, 1000 + 3600);
        assert_eq!(second.nals.len(), 1);
        assert!(registry.total_bytes_sent() > 6000);
        drop(play);
        assert_eq!(
            stream.viewer_counts().rtsp,
            0,
            "the viewer leaves with its session"
        );
    }

    #[tokio::test]
    async fn a_full_connection_skips_to_the_next_keyframe() {
        let (stream, mut play, _) = setup();
        let p = media::test_util::h264_params();
        next_au(&mut play).await;
        for n in 3..8 {
            stream.hub().publish(frame(n, &p));
        }
        // Frame 1 is next; the connection holds more than the limit: skip.
        let f1 = play.consumer.recv().await.unwrap();
        assert!(!play.admit(&f1, 2 << 20));
        // Everything up to the next keyframe is gone; a keyframe is not sent into a full
        // connection either.
        for n in 8..11 {
            stream.hub().publish(frame(n, &p));
        }
        let f10 = play.consumer.recv().await.unwrap();
        assert!(f10.keyframe && f10.pts == 9000 + 10 * 3600);
        assert!(!play.admit(&f10, 2 << 20));
        // Drained: the next keyframe goes out, on the same clock.
        for n in 11..16 {
            stream.hub().publish(frame(n, &p));
        }
        let au = next_au(&mut play).await;
        assert_eq!(au.rtp_ts, 1000 + 15 * 3600);
        assert_eq!(au.nals.last().unwrap()[0], 0x65);
        assert!(play.consumer.dropped() > 0);
    }

    /// The audio track: packets of its own SSRC and sequence, AAC AU headers, and RTP times
    /// on the audio clock from the same instant as the video's (the first video frame).
    #[tokio::test]
    async fn audio_goes_out_in_sync_on_its_own_clock() {
        let stream = LiveStream::new(
            StreamSpec {
                camera_id: "2".into(),
                path: "cam_2".into(),
                record: false,
                always_on: false,
                grid: false,
            },
            HubLimits::default(),
            100,
        );
        let (p, a) = (
            media::test_util::h264_params(),
            media::test_util::aac_params(),
        );
        // Audio 20 ms before the keyframe (not in the cached GOP, so never sent), then
        // interleaved with the video.
        stream
            .hub()
            .publish(media::test_util::audio_frame(&a, 0, 9000 - 1800));
        stream.hub().publish(frame(0, &p));
        stream
            .hub()
            .publish(media::test_util::audio_frame(&a, 1, 9000 + 1920));
        stream.hub().publish(frame(1, &p));
        let settings = RestreamSettings {
            start_timeout: Duration::from_secs(1),
            max_lag: Duration::from_secs(3),
            max_backlog: 1 << 20,
            session_timeout: Duration::from_secs(60),
        };
        let video = TrackStart {
            track: 0,
            ssrc: 1,
            seq: 0,
            rtptime: 1000,
        };
        let audio = TrackStart {
            track: 1,
            ssrc: 2,
            seq: 40,
            rtptime: 5000,
        };
        let mut play = HubPlay::new(
            stream.clone(),
            stream.join(Protocol::Rtsp).unwrap(),
            Registry::new(),
            Codec::H264,
            video,
            Some((audio, a.clone())),
            &settings,
        );
        let mut tracks = Vec::new();
        for _ in 0..3 {
            let mut burst = Burst::datagrams(vec![true, true]);
            assert_eq!(play.next(&mut burst).await, Next::Send);
            tracks.push(burst.take_datagrams());
        }
        // The keyframe first (the cached GOP starts there), then the audio, then frame 1.
        assert!(tracks[0].iter().all(|(t, _)| *t == 0));
        let [(1, pkt)] = &tracks[1][..] else {
            panic!("one audio packet: {:?}", tracks[1])
        };
        assert_eq!(pkt[1], 0x80 | 97, "marker and payload type");
        assert_eq!(&pkt[2..4], &40u16.to_be_bytes());
        // 1920 ticks of 90 kHz after the video's first frame: 1024 samples at 48 kHz.
        assert_eq!(&pkt[4..8], &(5000u32 + 1024).to_be_bytes());
        assert_eq!(&pkt[8..12], &2u32.to_be_bytes());
        assert_eq!(&pkt[12..16], &[0, 16, 0, 4 << 3], "one AU header: 4 bytes");
        assert_eq!(&pkt[16..], &1u32.to_be_bytes());
        assert!(tracks[2].iter().all(|(t, _)| *t == 0));
    }

    #[test]
    fn frame_bytes_are_shared() {
        let p = media::test_util::h264_params();
        let f = frame(0, &p);
        let nals = frame_nals(&f).unwrap();
        let slice: &Bytes = nals.last().unwrap();
        // A slice of the frame's own buffer, not a copy.
        assert_eq!(slice.as_ptr(), f.data[4..].as_ptr());
    }
}
