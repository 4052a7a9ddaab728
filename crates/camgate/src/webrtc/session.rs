//! One WHEP session: its str0m `Rtc`, the task that feeds it frames and timeouts, and the
//! drain that sends what it produces on the shared socket.
//!
//! The `Rtc` sits behind a mutex because two parties mutate it: this session's task (frames,
//! timeouts, DELETE) and the socket's receive loop (datagrams, driver.rs). Each mutation and
//! the drain of `poll_output` to its timeout happen under one lock hold, which is str0m's
//! single-mutation invariant. Owns no socket and no HTTP; never blocks while locked.
//!
//! Video timing: frames from the hub's cached GOP (and any backlog) go out 1 ms apart in RTP
//! time, so the browser decodes up to the live picture at once instead of replaying the GOP
//! at its own pace; live frames then keep their real spacing. A session behind the camera
//! by more than `max_lag` skips to the next keyframe; a PLI/FIR from the browser is answered
//! with the hub's cached GOP (an RTSP camera cannot be asked for a keyframe).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use media::{Codec, Frame, TIMESCALE};
use str0m::format::Codec as RtcCodec;
use str0m::media::{MediaKind, MediaTime, Mid};
use str0m::{Event, IceConnectionState, IceCreds, Input, Output, Rtc};
use tokio::net::UdpSocket;
use tokio::sync::Notify;

use super::attach::{Consumer, LiveStream, ViewerGuard};
use super::media::{annexb_access_unit, has_b_slice};
use super::sdp::SdpFrag;

/// RTP time between frames sent to catch up (cached GOP, backlog): 1 ms.
const CATCH_UP_STEP: u64 = 90;
/// A PLI storm (a browser asks every few hundred ms while it cannot decode) resends the GOP
/// at most this often.
const KEYFRAME_ANSWER_EVERY: Duration = Duration::from_secs(1);
/// A connected browser sends RTCP feedback many times a second and an ICE consent check
/// every ~5 s; this long without a datagram means it has gone (a closed tab sends no DTLS
/// close). str0m's own ICE-lite expiry would take 15 s.
const PEER_SILENCE: Duration = Duration::from_secs(6);

/// The str0m side of a session, always used under the session's lock.
pub(super) struct Peer {
    pub rtc: Rtc,
    pub mid: Option<Mid>,
    pub connected: bool,
    pub keyframe_wanted: bool,
    pub timeout: Instant,
    /// Why the session ended, once it has.
    pub ended: Option<String>,
    /// The peer's current ICE ufrag: a PATCH with another one is an ICE restart.
    pub remote_ufrag: Option<String>,
    /// When the peer last sent us a datagram.
    pub last_rx: Instant,
}

/// Counters of one session (and, summed, of the output) for logs and `/metrics`.
#[derive(Default)]
pub struct SessionStats {
    pub bytes_sent: AtomicU64,
    pub packets_sent: AtomicU64,
    pub keyframe_requests: AtomicU64,
    pub skips: AtomicU64,
    /// From str0m's egress statistics (the browser's RTCP): totals so far and the latest RTT.
    pub nacks: AtomicU64,
    pub plis: AtomicU64,
    pub firs: AtomicU64,
    pub rtt_micros: AtomicU64,
}

impl SessionStats {
    /// Adds `other`'s counters (not its RTT, a reading rather than a count) to these.
    pub fn add(&self, other: &SessionStats) {
        use Ordering::Relaxed;
        let pairs = [
            (&self.bytes_sent, &other.bytes_sent),
            (&self.packets_sent, &other.packets_sent),
            (&self.keyframe_requests, &other.keyframe_requests),
            (&self.skips, &other.skips),
            (&self.nacks, &other.nacks),
            (&self.plis, &other.plis),
            (&self.firs, &other.firs),
        ];
        for (total, add) in pairs {
            total.fetch_add(add.load(Relaxed), Relaxed);
        }
    }
}

pub struct Session {
    pub id: String,
    pub stream: LiveStream,
    pub codec: Codec,
    peer: Mutex<Peer>,
    wake: Notify,
    stopping: AtomicBool,
    pub stats: SessionStats,
    socket: Arc<UdpSocket>,
}

impl Session {
    pub(super) fn new(
        id: String,
        stream: LiveStream,
        codec: Codec,
        rtc: Rtc,
        socket: Arc<UdpSocket>,
    ) -> Arc<Session> {
        let s = Arc::new(Session {
            id,
            stream,
            codec,
            peer: Mutex::new(Peer {
                rtc,
                mid: None,
                connected: false,
                keyframe_wanted: false,
                timeout: Instant::now(),
                ended: None,
                remote_ufrag: None,
                last_rx: Instant::now(),
            }),
            wake: Notify::new(),
            stopping: AtomicBool::new(false),
            stats: SessionStats::default(),
            socket,
        });
        // accept_offer was a mutation: drain before anything else touches the Rtc.
        let mut p = s.lock();
        s.drain(&mut p);
        drop(p);
        s
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, Peer> {
        // Every lock hold leaves the Peer consistent (a mutation and its drain), so a panic
        // elsewhere does not make it unusable.
        self.peer.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether this session's `Rtc` claims the datagram (str0m's demultiplexing).
    pub(super) fn accepts(&self, input: &Input) -> bool {
        let p = self.lock();
        p.ended.is_none() && p.rtc.accepts(input)
    }

    /// Feeds one datagram (from the receive loop) and drains.
    pub(super) fn receive(&self, input: Input) {
        let mut p = self.lock();
        if p.ended.is_some() {
            return;
        }
        p.last_rx = Instant::now();
        if let Err(e) = p.rtc.handle_input(input) {
            p.ended = Some(format!("bad input from the peer: {e}"));
        }
        self.drain(&mut p);
        drop(p);
        self.wake.notify_one();
    }

    pub(super) fn set_remote_ufrag(&self, ufrag: Option<String>) {
        self.lock().remote_ufrag = ufrag;
    }

    /// Our ICE ufrag, which is the WHEP ETag of the session.
    pub fn local_ufrag(&self) -> String {
        self.lock().rtc.direct_api().local_ice_credentials().ufrag
    }

    /// WHEP PATCH: remote candidates are added (an ICE-lite server needs none, but they do no
    /// harm); new remote credentials are an ICE restart, answered with new local ones. str0m
    /// keeps the DTLS session and the candidate pairs across it, so a restart re-keys ICE
    /// only. Returns our new credentials after a restart.
    pub(super) fn patch(&self, frag: SdpFrag) -> Option<IceCreds> {
        let mut p = self.lock();
        let mut restarted = None;
        if let Some(creds) = frag.creds
            && p.remote_ufrag.as_deref() != Some(creds.ufrag.as_str())
        {
            let local = IceCreds::new();
            p.remote_ufrag = Some(creds.ufrag.clone());
            let mut api = p.rtc.direct_api();
            api.set_remote_ice_credentials(creds);
            api.set_local_ice_credentials(local.clone());
            self.drain(&mut p);
            restarted = Some(local);
        }
        for c in frag.candidates {
            p.rtc.add_remote_candidate(c);
            self.drain(&mut p);
        }
        drop(p);
        self.wake.notify_one();
        restarted
    }

    /// Ends the session (WHEP DELETE, shutdown); its task notices and cleans up.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::Relaxed);
        self.wake.notify_one();
    }

    /// Calls `poll_output` until it yields a timeout, sending every transmit on the shared
    /// socket and noting the events this output cares about.
    fn drain(&self, p: &mut Peer) {
        loop {
            if !p.rtc.is_alive() {
                p.ended
                    .get_or_insert_with(|| "connection closed".to_owned());
                p.timeout = Instant::now() + Duration::from_secs(3600);
                return;
            }
            match p.rtc.poll_output() {
                Ok(Output::Timeout(t)) => {
                    p.timeout = t;
                    return;
                }
                Ok(Output::Transmit(t)) => self.transmit(&t.contents, t.destination),
                Ok(Output::Event(e)) => self.event(p, e),
                Err(e) => {
                    p.ended = Some(format!("WebRTC error: {e}"));
                    p.rtc.disconnect();
                }
            }
        }
    }

    fn transmit(&self, data: &[u8], to: SocketAddr) {
        // A full socket buffer drops the datagram like a congested network would; the peer's
        // NACKs and PLIs recover. Never wait here: the lock is held.
        if self.socket.try_send_to(data, to).is_ok() {
            self.stats
                .bytes_sent
                .fetch_add(data.len() as u64, Ordering::Relaxed);
            self.stats.packets_sent.fetch_add(1, Ordering::Relaxed);
            self.stream.add_bytes_sent(data.len() as u64);
        }
    }

    fn event(&self, p: &mut Peer, e: Event) {
        match e {
            Event::Connected => p.connected = true,
            Event::MediaAdded(m) if m.kind == MediaKind::Video && p.mid.is_none() => {
                p.mid = Some(m.mid);
            }
            Event::KeyframeRequest(_) => {
                p.keyframe_wanted = true;
                self.stats.keyframe_requests.fetch_add(1, Ordering::Relaxed);
            }
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                p.ended.get_or_insert_with(|| "ICE disconnected".to_owned());
            }
            Event::MediaEgressStats(m) => {
                let st = &self.stats;
                st.nacks.store(m.nacks, Ordering::Relaxed);
                st.plis.store(m.plis, Ordering::Relaxed);
                st.firs.store(m.firs, Ordering::Relaxed);
                if let Some(rtt) = m.rtt {
                    st.rtt_micros
                        .store(rtt.as_micros() as u64, Ordering::Relaxed);
                }
            }
            Event::Closed => {
                p.ended
                    .get_or_insert_with(|| "closed by the peer (DTLS close_notify)".to_owned());
            }
            _ => {}
        }
    }

    /// The session's task: until the peer goes, the stream ends or DELETE, write frames and
    /// drive str0m's timers. `first` are frames already taken from `consumer` by the POST.
    pub(super) async fn run(
        self: Arc<Self>,
        mut consumer: Consumer,
        first: VecDeque<Frame>,
        connect_timeout: Duration,
        max_lag: Duration,
        _viewer: ViewerGuard,
    ) -> String {
        let mut out = Outgoing::new(first);
        let connect_by = tokio::time::Instant::now() + connect_timeout;
        let max_lag = (max_lag.as_secs_f64() * f64::from(TIMESCALE)) as i64;
        let mut last_keyframe_answer: Option<Instant> = None;
        loop {
            if self.stopping.load(Ordering::Relaxed) {
                self.end("ended by the client (DELETE)");
            }
            let (timeout, connected, keyframe_wanted, ended, last_rx) = {
                let mut p = self.lock();
                let k = std::mem::take(&mut p.keyframe_wanted);
                (p.timeout, p.connected, k, p.ended.clone(), p.last_rx)
            };
            if let Some(reason) = ended {
                return reason;
            }
            if connected && last_rx.elapsed() >= PEER_SILENCE {
                self.end(&format!("the peer sent nothing for {PEER_SILENCE:?}"));
                continue;
            }
            if !connected && tokio::time::Instant::now() >= connect_by {
                self.end(&format!(
                    "the peer did not connect within {connect_timeout:?}"
                ));
                continue;
            }
            if keyframe_wanted
                && last_keyframe_answer.is_none_or(|t| t.elapsed() >= KEYFRAME_ANSWER_EVERY)
            {
                // Starting over at the cached keyframe is the only keyframe we can give.
                last_keyframe_answer = Some(Instant::now());
                consumer = self.stream.subscribe();
                out.pending.clear();
                out.catching_up = true;
            }
            let deadline = tokio::time::Instant::from_std(timeout).min(if connected {
                tokio::time::Instant::from_std(last_rx + PEER_SILENCE)
            } else {
                connect_by
            });
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep_until(deadline) => {
                    let mut p = self.lock();
                    if let Err(e) = p.rtc.handle_input(Input::Timeout(Instant::now())) {
                        p.ended = Some(format!("WebRTC error: {e}"));
                    }
                    self.drain(&mut p);
                }
                f = out.next(&mut consumer), if connected => match f {
                    None => self.end("the stream ended"),
                    Some((frame, _)) if super::attach::video(&frame).is_none() => {}
                    Some((frame, behind)) => {
                        if !behind && !frame.keyframe && lagging(&self.stream, &frame, max_lag) {
                            consumer.skip_to_next_keyframe();
                            self.stats.skips.fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                        if self.codec == Codec::H264 && has_b_slice(&frame) {
                            self.end("the camera sends B-frames, which WebRTC cannot carry");
                            continue;
                        }
                        self.write(&mut out, &frame, behind);
                    }
                },
            }
        }
    }

    fn end(&self, reason: &str) {
        let mut p = self.lock();
        p.ended.get_or_insert_with(|| reason.to_owned());
        // A graceful close (RTCP BYE, DTLS close_notify) lets the browser see the end at once;
        // the drain sends it. Failing that, drop the connection.
        if p.rtc.close().is_err() {
            p.rtc.disconnect();
        }
        self.drain(&mut p);
    }

    fn write(&self, out: &mut Outgoing, frame: &Frame, behind: bool) {
        let Some(au) = annexb_access_unit(frame) else {
            tracing::debug!(session = %self.id, "frame with bad NAL lengths skipped");
            return;
        };
        let rtp = out.rtp_time(frame, behind);
        let mut p = self.lock();
        let Some(mid) = p.mid else { return };
        let Some(writer) = p.rtc.writer(mid) else {
            return;
        };
        let want = match self.codec {
            Codec::H264 => RtcCodec::H264,
            Codec::H265 => RtcCodec::H265,
        };
        let Some(pt) = writer
            .payload_params()
            .find(|pp| pp.spec().codec == want)
            .map(|pp| pp.pt())
        else {
            p.ended = Some(format!("the peer accepted no {want} payload type"));
            return;
        };
        if let Err(e) = writer.write(pt, Instant::now(), MediaTime::from_90khz(rtp), au) {
            tracing::debug!(session = %self.id, error = %e, "frame not written");
        }
        self.drain(&mut p);
    }
}

/// Behind the newest frame the hub has by more than the allowed lag.
fn lagging(stream: &LiveStream, frame: &Frame, max_lag: i64) -> bool {
    stream
        .latest_dts()
        .is_some_and(|latest| latest - frame.dts > max_lag)
}

/// The frame order and RTP clock of one session.
struct Outgoing {
    pending: VecDeque<Frame>,
    catching_up: bool,
    rtp: u64,
    last_pts: Option<i64>,
}

impl Outgoing {
    fn new(first: VecDeque<Frame>) -> Outgoing {
        Outgoing {
            pending: first,
            catching_up: true,
            // A random start, as RFC 3550 recommends for RTP timestamps.
            rtp: u64::from(rand::random::<u16>()) * 90,
            last_pts: None,
        }
    }

    /// The next frame, and whether it is one we are catching up with (sent quickly).
    async fn next(&mut self, consumer: &mut Consumer) -> Option<(Frame, bool)> {
        let (frame, cached) = match self.pending.pop_front() {
            Some(f) => (f, true),
            None => {
                let (f, arrived) = consumer.recv_with_arrival().await?;
                (f, arrived.is_none())
            }
        };
        let behind = cached || !self.pending.is_empty() || consumer.queued() > 0;
        if !behind {
            self.catching_up = false;
        }
        Some((frame, behind && self.catching_up))
    }

    /// RTP time: a free-running 90 kHz clock that advances by the frames' own spacing, or by
    /// 1 ms while catching up. A jump in the source's clock (a reconnect) counts as one frame.
    fn rtp_time(&mut self, frame: &Frame, behind: bool) -> u64 {
        let step = match self.last_pts {
            None => 0,
            Some(_) if behind => CATCH_UP_STEP,
            Some(last) => match frame.pts - last {
                d @ 1..=450_000 => d as u64,
                _ => 3_600,
            },
        };
        self.last_pts = Some(frame.pts);
        self.rtp += step;
        self.rtp
    }
}
