//! The sender of one playing session: asks the source's `Play` for bursts, writes each as
//! one interleaved message (TCP) or as datagrams (UDP), keeps the session's RTP position for
//! RTP-Info, and sends an RTCP sender report per track every five seconds. Also the reader
//! of a UDP session's own ports (receiver reports as a sign of life). No pacing here: the
//! source paces.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::{Inner, Out, UdpPair, stopped};
use crate::framing::interleave;
use crate::rtcp::{SenderInfo, sender_report};
use crate::session::{Session, SetupTrack, TrackTransport};
use crate::source::{Burst, Next, Play, PlayStart, Source, TrackStart};

const SENDER_REPORT_EVERY: Duration = Duration::from_secs(5);

type Sess = Session<Arc<UdpPair>>;

/// Why a session's sender stopped.
enum End {
    Stopped,
    ClientGone,
    StreamEnded,
    Aborted,
}

/// Runs until the session is stopped, its client or stream is gone, or the source aborts.
/// `out` is the queue of the connection that sent PLAY (a TCP session's own connection).
pub(crate) async fn play<S: Source>(inner: Arc<Inner<S>>, session: Arc<Sess>, out: Out) {
    let mut stop = session.stop.subscribe();
    let mut shutdown = inner.shutdown.subscribe();
    let end = tokio::select! {
        end = send_loop(&inner, &session, out) => end,
        _ = stopped(&mut stop) => End::Stopped,
        _ = stopped(&mut shutdown) => End::Stopped,
    };
    let registry = &inner.core.registry;
    match end {
        End::Stopped => {}
        End::ClientGone => {
            registry.remove(&session.id, "client connection gone");
        }
        End::StreamEnded => {
            registry.remove(&session.id, "stream ended");
        }
        End::Aborted => {
            tracing::info!(server = inner.core.settings.label, session = %session.id,
                "rtsp: the source aborts the session; dropping its connection");
            inner.kill_conn(session.conn_id);
            registry.remove(&session.id, "aborted by the source");
        }
    }
}

async fn send_loop<S: Source>(inner: &Inner<S>, session: &Sess, out: Out) -> End {
    let tracks = session.tracks();
    let start = PlayStart {
        stream: session.stream.clone(),
        session: session.id.clone(),
        tracks: tracks
            .iter()
            .map(|t| TrackStart {
                seq: t.seq,
                rtptime: t.rtptime,
                ..t.start
            })
            .collect(),
    };
    let Some(mut play) = inner.core.source.play(&start) else {
        return End::StreamEnded;
    };
    let width = tracks.iter().map(|t| t.start.track + 1).max().unwrap_or(0);
    let tcp = session.is_tcp();
    let mut burst = if tcp {
        let mut channels = vec![None; width];
        for t in &tracks {
            if let TrackTransport::Tcp { rtp_channel, .. } = t.transport {
                channels[t.start.track] = Some(rtp_channel);
            }
        }
        Burst::interleaved(channels)
    } else {
        let mut set_up = vec![false; width];
        for t in &tracks {
            set_up[t.start.track] = true;
        }
        Burst::datagrams(set_up)
    };
    if tcp {
        burst.queued = Some(out.counter());
    }
    let by_track = |i: usize| tracks.iter().find(|t| t.start.track == i);
    let mut last_report: Vec<Option<Instant>> = vec![None; width];
    loop {
        burst.start_step();
        match play.next(&mut burst).await {
            Next::Send => {}
            Next::End => return End::StreamEnded,
            Next::Abort => return End::Aborted,
        }
        let sent = if tcp {
            burst.is_empty() || out.send(burst.take_interleaved()).await
        } else {
            for (track, p) in burst.take_datagrams() {
                if let Some(SetupTrack {
                    transport: TrackTransport::Udp { io, client_rtp, .. },
                    ..
                }) = by_track(track)
                {
                    // A lost datagram (client not listening yet, ICMP unreachable) is what
                    // UDP does; the session times out if the client is really gone.
                    let _ = io.rtp.send_to(&p, *client_rtp).await;
                }
            }
            true
        };
        // Where the next packet stands, for the RTP-Info of a repeated PLAY.
        for (i, c) in burst.counts.iter().enumerate() {
            if let (Some(clock), Some(t)) = (c.clock, by_track(i)) {
                session.set_position(i, c.next_seq.unwrap_or(t.seq), clock.next_rtp_ts);
            }
        }
        if !sent {
            return End::ClientGone;
        }
        for (i, c) in burst.counts.iter().enumerate() {
            let (Some(clock), Some(t)) = (c.clock, by_track(i)) else {
                continue;
            };
            if last_report[i].is_some_and(|at| at.elapsed() < SENDER_REPORT_EVERY) {
                continue;
            }
            last_report[i] = Some(Instant::now());
            let info = SenderInfo {
                ssrc: t.start.ssrc,
                wall: clock.wall,
                rtp_ts: clock.rtp_ts,
                packets: c.packets,
                octets: c.octets,
            };
            let sr = sender_report(&info, &inner.core.settings.cname);
            match &t.transport {
                TrackTransport::Tcp { rtcp_channel, .. } => {
                    if !out.send(interleave(*rtcp_channel, &sr)).await {
                        return End::ClientGone;
                    }
                }
                TrackTransport::Udp {
                    io, client_rtcp, ..
                } => {
                    let _ = io.rtcp.send_to(&sr, *client_rtcp).await;
                }
            }
        }
    }
}

/// Reads what the client sends to our ports of one UDP track (receiver reports) as a sign
/// of life, so a UDP client that only sends RTCP keeps its session.
pub(crate) async fn watch_udp_rtcp(
    session: Arc<Sess>,
    pair: Arc<UdpPair>,
    mut stop: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; 2048];
    let mut buf2 = vec![0u8; 2048];
    loop {
        tokio::select! {
            r = pair.rtcp.recv_from(&mut buf) => if r.is_ok() { session.touch(Instant::now()) },
            // Clients also punch NAT holes with packets to our RTP port; drain them.
            r = pair.rtp.recv_from(&mut buf2) => if r.is_ok() { session.touch(Instant::now()) },
            _ = stopped(&mut stop) => return,
        }
    }
}
