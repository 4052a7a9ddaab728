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

use std::sync::Arc;

use media::rtp::{Packetizer, frame_nals, rtp_time};
use media::{Codec, Frame, TIMESCALE};
use rtsp::{Burst, Clock, Next, TrackStart};

use super::RestreamSettings;
use super::source::VIDEO_PAYLOAD_TYPE;
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
}

impl HubPlay {
    pub(super) fn new(
        stream: LiveStream,
        viewer: ViewerGuard,
        registry: Arc<Registry>,
        codec: Codec,
        track: TrackStart,
        settings: &RestreamSettings,
    ) -> HubPlay {
        let consumer = stream.subscribe();
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
        }
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
                continue; // audio: not carried yet
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
            self.packetizer.for_each_packet(&nals, rtp_ts, |header, parts| {
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
