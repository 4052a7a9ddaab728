//! The paced sender of one playing session: takes frames from the shared source (looped clip
//! or live feed), packetizes them with the session's own continuous sequence numbers and
//! timestamps, sends them over TCP-interleaved or UDP, sends RTCP sender reports, and
//! applies the configured faults. One task per playing session; no encoding here.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use tokio::sync::{broadcast, watch};

use super::Shared;
use super::session::{RtpPosition, Session, SessionTransport, lock};
use super::source::VideoSource;
use crate::encode::EncodedFrame;
use crate::rtp::{Packetizer, garbage_packets};
use crate::rtsp::framing::interleave;

const SENDER_REPORT_EVERY: Duration = Duration::from_secs(5);
/// Clip frames are sent on a grid of this step, shared by every session of the server (up
/// to one step late, as a camera's sender jitters): sessions due in the same step wake in one
/// timer pass instead of each waking the runtime on its own (about a third less simulator
/// CPU at 100 sessions).
const PACING_GRID: Duration = Duration::from_millis(5);
/// Interleaved channel the garbage fault scribbles on; SETUP hands out channels from 0 up.
const GARBAGE_CHANNEL: u8 = 250;

/// Why a session's sender stopped.
enum End {
    Stopped,
    ClientGone,
    Dropped,
}

/// Runs until the session is stopped, its connection is gone, or the drop fault fires.
pub(crate) async fn play(shared: Arc<Shared>, session: Arc<Session>) {
    let mut stop = session.stop.subscribe();
    let mut shutdown = shared.shutdown.subscribe();
    let end = tokio::select! {
        end = send_loop(&shared, &session) => end,
        _ = super::stopped(&mut stop) => End::Stopped,
        _ = super::stopped(&mut shutdown) => End::Stopped,
    };
    match end {
        End::Stopped => {}
        End::ClientGone => {
            shared
                .registry
                .remove(&session.id, "client connection gone");
        }
        End::Dropped => {
            tracing::info!(session = %session.id, "fault: dropping the connection");
            session.kill_conn.notify_one();
            shared.registry.remove(&session.id, "fault: drop");
        }
    }
}

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

async fn send_loop(shared: &Shared, session: &Session) -> End {
    let faults = &shared.config.faults;
    let start_pos = *lock(&session.position);
    let mut packetizer = Packetizer::new(session.ssrc, start_pos.seq);
    let mut frames = match &shared.source {
        VideoSource::Clip(clip) => Frames::Clip {
            clip: clip.clone(),
            n: 0,
            start: tokio::time::Instant::now(),
            fps: u64::from(shared.config.fps),
            gop: u64::from(shared.config.gop_frames()),
            epoch: shared.epoch,
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
    let started = Instant::now();
    let mut jump_back: u64 = 0;
    let mut next_jump = faults.jump_every;
    let mut next_garbage = faults.garbage_every;
    let mut last_report: Option<Instant> = None;
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::from_rng(&mut rand::rng());
    let mut packets = Vec::new();
    let mut framed = BytesMut::new();
    loop {
        let Some((frame, offset)) = frames.next().await else {
            return End::ClientGone;
        };
        let elapsed = started.elapsed();
        if faults.drop_every.is_some_and(|d| elapsed >= d) {
            return End::Dropped;
        }
        if let Some(every) = faults.jump_every {
            while next_jump.is_some_and(|t| elapsed >= t) {
                jump_back += faults.jump_by.as_millis() as u64 * 90;
                next_jump = next_jump.map(|t| t + every);
                tracing::info!(session = %session.id, "fault: timestamps jump back");
            }
        }
        let rtp_ts = start_pos
            .rtptime
            .wrapping_add(offset as u32)
            .wrapping_sub(jump_back as u32);
        if let (Some(every), Some(len)) = (faults.stall_every, faults.stall_for) {
            let period = (every + len).as_nanos();
            if elapsed.as_nanos() % period >= every.as_nanos() {
                continue;
            }
        }
        let mut garbage = Vec::new();
        if let Some(every) = faults.garbage_every
            && next_garbage.is_some_and(|t| elapsed >= t)
        {
            next_garbage = Some(elapsed + every);
            garbage = garbage_packets(&mut rng);
        }
        let sent = match &session.transport {
            SessionTransport::Tcp {
                out, rtp_channel, ..
            } => {
                // The whole access unit as one message and one write (see
                // `Packetizer::packetize_interleaved`), after the garbage if it is due.
                if !garbage.is_empty() {
                    // Random bytes on an interleaved channel nobody set up.
                    let mut junk = [0u8; 64];
                    rand::Rng::fill(&mut rng, &mut junk[..]);
                    framed.extend_from_slice(&interleave(GARBAGE_CHANNEL, &junk));
                    for g in &garbage {
                        framed.extend_from_slice(&interleave(*rtp_channel, g));
                    }
                }
                packetizer.packetize_interleaved(&frame.nals, rtp_ts, *rtp_channel, &mut framed);
                out.send(framed.split().freeze()).await.is_ok()
            }
            SessionTransport::Udp {
                rtp, client_rtp, ..
            } => {
                packets.clear();
                packets.append(&mut garbage);
                packetizer.packetize(&frame.nals, rtp_ts, &mut packets);
                for p in &packets {
                    // A lost datagram (client not listening yet, ICMP unreachable) is what
                    // UDP does; the session times out if the client is really gone.
                    let _ = rtp.send_to(p, *client_rtp).await;
                }
                true
            }
        };
        // Where the next packet stands, for the RTP-Info of a repeated PLAY.
        *lock(&session.position) = RtpPosition {
            seq: packetizer.seq,
            rtptime: rtp_ts.wrapping_add(90_000 / shared.config.fps.max(1)),
        };
        if !sent {
            return End::ClientGone;
        }
        if last_report.is_none_or(|t| t.elapsed() >= SENDER_REPORT_EVERY) {
            last_report = Some(Instant::now());
            let now_ns = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            let sr = packetizer.sender_report(now_ns, rtp_ts);
            if send_rtcp(session, sr).await.is_err() {
                return End::ClientGone;
            }
        }
    }
}

async fn send_rtcp(session: &Session, packet: Bytes) -> Result<(), ()> {
    match &session.transport {
        SessionTransport::Tcp {
            out, rtcp_channel, ..
        } => out
            .send(interleave(*rtcp_channel, &packet))
            .await
            .map_err(|_| ()),
        SessionTransport::Udp {
            rtcp, client_rtcp, ..
        } => {
            let _ = rtcp.send_to(&packet, *client_rtcp).await;
            Ok(())
        }
    }
}

/// Reads what the client sends to our RTCP port (receiver reports) as a sign of life, so a
/// UDP client that only sends RTCP keeps its session.
pub(crate) async fn watch_udp_rtcp(session: Arc<Session>, mut stop: watch::Receiver<bool>) {
    let SessionTransport::Udp { rtcp, rtp, .. } = &session.transport else {
        return;
    };
    let mut buf = vec![0u8; 2048];
    let mut buf2 = vec![0u8; 2048];
    loop {
        tokio::select! {
            r = rtcp.recv_from(&mut buf) => if r.is_ok() { session.touch() },
            // Clients also punch NAT holes with packets to our RTP port; drain them.
            r = rtp.recv_from(&mut buf2) => if r.is_ok() { session.touch() },
            _ = super::stopped(&mut stop) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::encode_clip;

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
}
