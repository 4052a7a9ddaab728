//! What one playing session of the simulator sends: frames from the shared source (looped
//! clip on the shared pacing grid, or the live feed), packetized with the session's own
//! continuous sequence numbers and timestamps, with the configured faults applied. The RTSP
//! server (crates/rtsp) writes each frame's packets with one write (TCP) or as datagrams
//! (UDP) and sends the sender reports. No encoding here.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use rtsp::{Burst, Clock, Next, TrackStart};
use tokio::sync::broadcast;

use crate::config::Faults;
use crate::encode::EncodedFrame;
use crate::rtp::{Packetizer, garbage_packets};
use crate::source::{SimSource, VideoSource};

/// Clip frames are sent on a grid of this step, shared by every session of the server (up
/// to one step late, as a camera's sender jitters): sessions due in the same step wake in one
/// timer pass instead of each waking the runtime on its own (about a third less simulator
/// CPU at 100 sessions).
const PACING_GRID: Duration = Duration::from_millis(5);
/// Interleaved channel the garbage fault scribbles on; SETUP hands out channels from 0 up.
const GARBAGE_CHANNEL: u8 = 250;

/// Frames in presentation order with their RTP time offset from the start of play (90 kHz).
enum Frames {
    Clip {
        clip: Arc<crate::encode::Clip>,
        n: u64,
        start: tokio::time::Instant,
        fps: u64,
        /// Frames per GOP: clip frame `n % len` is an IDR when `n % gop == 0`.
        gop: u64,
        /// Origin of the pacing grid (the server's start).
        epoch: tokio::time::Instant,
    },
    Live {
        rx: broadcast::Receiver<Arc<EncodedFrame>>,
        first_ms: Option<u64>,
        skip_to_keyframe: bool,
        want_keyframe: Arc<std::sync::atomic::AtomicBool>,
    },
}

impl Frames {
    async fn next(&mut self) -> Option<(Arc<EncodedFrame>, u64)> {
        match self {
            Frames::Clip {
                clip,
                n,
                start,
                fps,
                gop,
                epoch,
            } => {
                // A session that fell more than a second behind (a client that stopped reading
                // over TCP) resumes at the next GOP on the clock, as a camera would, rather
                // than bursting every late frame.
                let due = (start.elapsed().as_nanos() * u128::from(*fps) / 1_000_000_000) as u64;
                if due > *n + *fps {
                    *n = due.div_ceil(*gop) * *gop;
                }
                let at = *start + Duration::from_nanos(*n * 1_000_000_000 / *fps);
                tokio::time::sleep_until(on_grid(*epoch, at)).await;
                let frame = &clip.frames[(*n % clip.frames.len() as u64) as usize];
                let offset = *n * 90_000 / *fps;
                *n += 1;
                Some((Arc::new(frame.clone()), offset))
            }
            Frames::Live {
                rx,
                first_ms,
                skip_to_keyframe,
                want_keyframe,
            } => loop {
                let frame = match rx.recv().await {
                    Ok(f) => f,
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        // Frames were lost for this viewer: resume at the next IDR, and ask
                        // for one so the gap stays short.
                        *skip_to_keyframe = true;
                        want_keyframe.store(true, std::sync::atomic::Ordering::Relaxed);
                        continue;
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                };
                if *skip_to_keyframe && !frame.keyframe {
                    continue;
                }
                *skip_to_keyframe = false;
                let first = *first_ms.get_or_insert(frame.unix_ms);
                // Live timestamps follow the capture clock, so gaps stay gaps.
                let offset = frame.unix_ms.saturating_sub(first) * 90;
                return Some((frame, offset));
            },
        }
    }
}

/// The first point of the pacing grid (from `epoch`, every `PACING_GRID`) not before `at`.
fn on_grid(epoch: tokio::time::Instant, at: tokio::time::Instant) -> tokio::time::Instant {
    let step = PACING_GRID.as_nanos();
    let since = at.saturating_duration_since(epoch).as_nanos();
    epoch + Duration::from_nanos((since.div_ceil(step) * step) as u64)
}

/// The sender state of one playing session.
pub(crate) struct SimPlay {
    /// The RTSP session, for log lines.
    session: String,
    frames: Frames,
    packetizer: Packetizer,
    track: usize,
    /// RTP timestamp of the first frame.
    rtptime: u32,
    fps: u32,
    faults: Faults,
    started: Instant,
    jump_back: u64,
    next_jump: Option<Duration>,
    next_garbage: Option<Duration>,
    rng: rand::rngs::StdRng,
}

impl SimPlay {
    pub(crate) fn new(source: &SimSource, session: String, track: TrackStart) -> SimPlay {
        let config = &source.config;
        let frames = match &source.video {
            VideoSource::Clip(clip) => Frames::Clip {
                clip: clip.clone(),
                n: 0,
                start: tokio::time::Instant::now(),
                fps: u64::from(config.fps),
                gop: u64::from(config.gop_frames()),
                epoch: source.epoch,
            },
            VideoSource::Live(feed) => {
                let rx = feed.frames.subscribe();
                feed.want_keyframe
                    .store(true, std::sync::atomic::Ordering::Relaxed);
                Frames::Live {
                    rx,
                    first_ms: None,
                    skip_to_keyframe: true,
                    want_keyframe: feed.want_keyframe.clone(),
                }
            }
        };
        let faults = config.faults.clone();
        SimPlay {
            session,
            frames,
            packetizer: Packetizer::new(track.ssrc, track.seq),
            track: track.track,
            rtptime: track.rtptime,
            fps: config.fps,
            next_jump: faults.jump_every,
            next_garbage: faults.garbage_every,
            faults,
            started: Instant::now(),
            jump_back: 0,
            rng: <rand::rngs::StdRng as rand::SeedableRng>::from_rng(&mut rand::rng()),
        }
    }
}

impl rtsp::Play for SimPlay {
    /// One frame per call: the next one on the clock, after any stall.
    async fn next(&mut self, out: &mut Burst) -> Next {
        let faults = &self.faults;
        loop {
            let Some((frame, offset)) = self.frames.next().await else {
                return Next::End;
            };
            let elapsed = self.started.elapsed();
            if faults.drop_every.is_some_and(|d| elapsed >= d) {
                tracing::info!(session = %self.session, "fault: dropping the connection");
                return Next::Abort;
            }
            if let Some(every) = faults.jump_every {
                while self.next_jump.is_some_and(|t| elapsed >= t) {
                    self.jump_back += faults.jump_by.as_millis() as u64 * 90;
                    self.next_jump = self.next_jump.map(|t| t + every);
                    tracing::info!(session = %self.session, "fault: timestamps jump back");
                }
            }
            let rtp_ts = self
                .rtptime
                .wrapping_add(offset as u32)
                .wrapping_sub(self.jump_back as u32);
            if let (Some(every), Some(len)) = (faults.stall_every, faults.stall_for) {
                let period = (every + len).as_nanos();
                if elapsed.as_nanos() % period >= every.as_nanos() {
                    continue;
                }
            }
            if let Some(every) = faults.garbage_every
                && self.next_garbage.is_some_and(|t| elapsed >= t)
            {
                self.next_garbage = Some(elapsed + every);
                // Random bytes on an interleaved channel nobody set up (TCP only), then
                // packets on the video channel that are not valid RTP.
                let mut junk = [0u8; 64];
                rand::Rng::fill(&mut self.rng, &mut junk[..]);
                out.stray(GARBAGE_CHANNEL, &junk);
                for g in garbage_packets(&mut self.rng) {
                    out.uncounted(self.track, &g);
                }
            }
            // The whole access unit in one burst: one write over TCP.
            self.packetizer
                .packetize_into(&frame.nals, rtp_ts, self.track, out);
            out.clock(
                self.track,
                Clock {
                    rtp_ts,
                    wall: SystemTime::now(),
                    next_rtp_ts: rtp_ts.wrapping_add(90_000 / self.fps.max(1)),
                },
            );
            return Next::Send;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::encode_clip;
    use rtsp::Play;

    #[tokio::test(start_paused = true)]
    async fn clip_frames_are_paced_and_a_late_session_resumes_at_the_next_gop() {
        let clip = Arc::new(encode_clip(64, 48, 10, 5, 50_000, 10, 0).unwrap());
        let start = tokio::time::Instant::now();
        let mut frames = Frames::Clip {
            clip,
            n: 0,
            start,
            fps: 10,
            gop: 5,
            epoch: start,
        };
        for i in 0..3u64 {
            let (f, offset) = frames.next().await.unwrap();
            assert_eq!(offset, i * 9_000);
            assert_eq!(f.keyframe, i == 0);
            assert_eq!(start.elapsed(), Duration::from_millis(i * 100));
        }
        // The client stopped reading for 3 s: no burst of 30 late frames, but the next IDR
        // at its place on the clock (frame 35 of the timeline, clip frame 5).
        tokio::time::advance(Duration::from_secs(3)).await;
        let (f, offset) = frames.next().await.unwrap();
        assert!(f.keyframe);
        assert_eq!(offset, 35 * 9_000);
        assert_eq!(start.elapsed(), Duration::from_millis(3_500));
        let (f, offset) = frames.next().await.unwrap();
        assert!(!f.keyframe);
        assert_eq!(offset, 36 * 9_000);
    }

    #[tokio::test(start_paused = true)]
    async fn sessions_started_off_grid_are_sent_on_the_shared_grid() {
        let clip = Arc::new(encode_clip(64, 48, 10, 5, 50_000, 10, 0).unwrap());
        let epoch = tokio::time::Instant::now();
        // A session that starts 3 ms after the grid's origin.
        tokio::time::advance(Duration::from_millis(3)).await;
        let mut frames = Frames::Clip {
            clip,
            n: 0,
            start: tokio::time::Instant::now(),
            fps: 10,
            gop: 5,
            epoch,
        };
        for i in 0..3u64 {
            let (_, offset) = frames.next().await.unwrap();
            // Timestamps stay exact; only the send time moves to the grid (<= 5 ms later).
            assert_eq!(offset, i * 9_000);
            assert_eq!(epoch.elapsed(), Duration::from_millis(5 + i * 100));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_session_sends_each_frame_as_one_burst_of_its_own_rtp() {
        let config = crate::SimConfig {
            width: 64,
            height: 48,
            fps: 10,
            clip: Duration::from_secs(1),
            ..crate::SimConfig::default()
        };
        let source = SimSource {
            video: VideoSource::start(&config).await.unwrap(),
            config,
            epoch: tokio::time::Instant::now(),
        };
        let track = TrackStart {
            track: 0,
            ssrc: 0xABCD,
            seq: 65535,
            rtptime: 1000,
        };
        let mut play = SimPlay::new(&source, "S".into(), track);
        let mut burst = Burst::interleaved(vec![Some(4)]);
        let mut seq = 65535u16;
        for frame in 0..3u32 {
            assert_eq!(play.next(&mut burst).await, Next::Send);
            let mut bytes = bytes::BytesMut::from(&burst.take_interleaved()[..]);
            let mut packets = Vec::new();
            while let Ok(Some(rtsp::framing::Item::Data { channel, payload })) =
                rtsp::framing::next_item(&mut bytes)
            {
                assert_eq!(channel, 4);
                packets.push(payload);
            }
            assert!(bytes.is_empty() && !packets.is_empty());
            for p in &packets {
                assert_eq!(u16::from_be_bytes([p[2], p[3]]), seq);
                assert_eq!(
                    u32::from_be_bytes([p[4], p[5], p[6], p[7]]),
                    1000 + frame * 9000
                );
                assert_eq!(u32::from_be_bytes([p[8], p[9], p[10], p[11]]), 0xABCD);
                seq = seq.wrapping_add(1);
            }
            // Only the last packet of the frame has the marker; the first frame starts with
            // its SPS, so a client can decode at once.
            let markers: Vec<bool> = packets.iter().map(|p| p[1] & 0x80 != 0).collect();
            assert_eq!(markers.iter().filter(|m| **m).count(), 1);
            assert!(markers[markers.len() - 1]);
            if frame == 0 {
                assert_eq!(packets[0][12] & 0x1F, crate::encode::NAL_SPS);
            }
        }
    }
}
