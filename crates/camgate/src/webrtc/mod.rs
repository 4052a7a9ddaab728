//! WebRTC playback over WHEP (draft-ietf-wish-whep): `POST /webrtc/{path}/whep` with an SDP
//! offer starts a session that sends the camera's own H.264 (or H.265, when the offer takes
//! it) to the browser, without re-encoding, packetized by str0m. Video only for now.
//!
//! Owns: the one UDP socket (driver.rs), the sessions (session.rs), the WHEP and player
//! routes (whep.rs, player.rs); its `[webrtc]` settings are `config/webrtc.rs`. Touches the house
//! only through attach.rs (`hub`, `http`, `tasks`); never another output, `ingest`, `live` or `api`.
//!
//! The server is ICE-lite with host candidates only (the listen address or `public_ips`), so a
//! session costs no STUN traffic of its own: the browser's checks find it.

mod attach;
mod driver;
pub mod media;
mod player;
pub mod sdp;
mod session;
mod whep;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::http::StatusCode;
use str0m::change::SdpOffer;
use str0m::{Candidate, Rtc};

pub use crate::config::WebrtcConfig;
pub use attach::Registry;
pub use attach::{Announce, SessionReport};
use attach::{AppError, LiveStream};
pub use driver::Driver;
pub use session::Session;

use self::media::has_b_slice;
use sdp::OfferVideo;

/// The WebRTC output: settings, the socket's driver, and the streams it serves.
pub struct WebRtc {
    config: WebrtcConfig,
    /// `Err` holds why the socket could not be bound; WHEP then answers 503 saying so.
    driver: Result<Arc<Driver>, String>,
    registry: Registry,
    _stop: Option<tokio::sync::oneshot::Sender<()>>,
}

/// How often str0m reports a session's egress statistics (NACKs, PLIs, RTT).
const STATS_INTERVAL: std::time::Duration = std::time::Duration::from_secs(2);

/// The output's figures for `/metrics`: counters over every session since start (live and
/// ended), gauges over the live ones.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WebrtcStats {
    /// Sessions alive now.
    pub sessions: u64,
    /// Sessions started since the server started.
    pub sessions_started: u64,
    pub bytes_sent: u64,
    pub packets_sent: u64,
    pub nacks: u64,
    pub plis: u64,
    pub firs: u64,
    /// Keyframe skips of sessions that fell behind.
    pub skips: u64,
    /// The highest RTT a live session reports, in microseconds.
    pub max_rtt_micros: u64,
    /// Datagrams no session claimed (late STUN, garbage).
    pub unrouted_datagrams: u64,
}

/// A new session as the WHEP answer needs it.
pub struct Created {
    pub id: String,
    pub answer: String,
    pub etag: String,
}

impl WebRtc {
    /// Binds the UDP socket and starts its receive loop (needs a tokio runtime). `http_listen`
    /// is the HTTP listener's configured address (port 0 there means an ephemeral port here).
    pub fn start(
        config: &WebrtcConfig,
        http_listen: SocketAddr,
        registry: Registry,
    ) -> std::io::Result<Arc<WebRtc>> {
        let listen = config.listen_addr(http_listen);
        let driver = Driver::bind(listen, &config.public_ips)?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tracing::info!(
            listen = ?driver.local_addr(),
            candidates = ?driver.candidates,
            "WebRTC (WHEP) listening"
        );
        registry.spawn(
            "webrtc socket".to_owned(),
            driver.clone().run(async move {
                let _ = rx.await;
            }),
        );
        Ok(Arc::new(WebRtc {
            config: config.clone(),
            driver: Ok(driver),
            registry,
            _stop: Some(tx),
        }))
    }

    /// As [`WebRtc::start`], but a socket that cannot be bound is logged and WHEP answers
    /// 503 naming the reason, so the rest of the gateway still serves.
    pub fn start_or_unavailable(
        config: &WebrtcConfig,
        http_listen: SocketAddr,
        registry: Registry,
    ) -> Arc<WebRtc> {
        match WebRtc::start(config, http_listen, registry.clone()) {
            Ok(w) => w,
            Err(e) => {
                let listen = config.listen_addr(http_listen);
                tracing::error!(%listen, error = %e, "WebRTC disabled: cannot bind its UDP socket");
                Arc::new(WebRtc {
                    config: config.clone(),
                    driver: Err(format!(
                        "WebRTC cannot listen on UDP {listen}: {e}; set [webrtc] listen"
                    )),
                    registry,
                    _stop: None,
                })
            }
        }
    }

    pub fn driver(&self) -> Result<&Arc<Driver>, AppError> {
        self.driver.as_ref().map_err(|reason| {
            AppError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "webrtc_unavailable",
                reason.clone(),
            )
        })
    }

    pub fn config(&self) -> &WebrtcConfig {
        &self.config
    }

    /// Counters over every session since start, gauges over the live ones.
    pub fn stats(&self) -> WebrtcStats {
        use std::sync::atomic::Ordering::Relaxed;
        let Ok(d) = &self.driver else {
            return WebrtcStats::default();
        };
        let sum = |st: &session::SessionStats, t: &mut WebrtcStats| {
            t.bytes_sent += st.bytes_sent.load(Relaxed);
            t.packets_sent += st.packets_sent.load(Relaxed);
            t.nacks += st.nacks.load(Relaxed);
            t.plis += st.plis.load(Relaxed);
            t.firs += st.firs.load(Relaxed);
            t.skips += st.skips.load(Relaxed);
        };
        let mut t = WebrtcStats {
            unrouted_datagrams: d.unrouted.load(Relaxed),
            sessions_started: d.started.load(Relaxed),
            ..Default::default()
        };
        d.with_counted(|live, ended| {
            for s in live {
                t.sessions += 1;
                sum(&s.stats, &mut t);
                t.max_rtt_micros = t.max_rtt_micros.max(s.stats.rtt_micros.load(Relaxed));
            }
            sum(ended, &mut t);
        });
        t
    }

    pub fn stream(&self, path: &str) -> Result<LiveStream, AppError> {
        self.registry.get(path)
    }

    /// WHEP POST: checks the offer against the stream, waits for the first keyframe of an
    /// on-demand camera, and starts a session.
    pub async fn create_session(&self, path: &str, offer_sdp: &str) -> Result<Created, AppError> {
        let driver = self.driver()?.clone();
        let stream = self.registry.get(path)?;
        let video = OfferVideo::parse(offer_sdp);
        let offer = SdpOffer::from_sdp_string(offer_sdp).map_err(|e| {
            AppError::bad_request(
                "invalid_sdp",
                format!("the body is not a valid SDP offer: {e}"),
            )
        })?;
        if !video.has_video {
            return Err(AppError::bad_request(
                "offer_without_video",
                "the offer has no m=video section; add a recvonly video transceiver",
            ));
        }
        let viewer = stream.join()?;
        let mut consumer = stream.subscribe();
        let timeout = self.registry.start_timeout();
        let first_video = async {
            // Other tracks (audio, once the hub carries it) are not sent yet.
            loop {
                match consumer.recv().await {
                    Some(f) if attach::video(&f).is_none() => continue,
                    other => return other,
                }
            }
        };
        let first = match tokio::time::timeout(timeout, first_video).await {
            Ok(Some(f)) => f,
            Ok(None) => {
                return Err(AppError::new(
                    StatusCode::NOT_FOUND,
                    "stream_not_found",
                    format!("stream {path} was removed"),
                ));
            }
            Err(_) => {
                return Err(AppError::new(
                    StatusCode::GATEWAY_TIMEOUT,
                    "stream_start_timeout",
                    format!(
                        "stream {path} sent no keyframe within {timeout:?} (start_timeout); see GET /cameras/{}/status",
                        stream.camera_id()
                    ),
                ));
            }
        };
        let Some(codec) = attach::video(&first).map(|v| v.codec) else {
            return Err(AppError::internal(
                "internal_error",
                "no video frame; a camgate bug",
            ));
        };
        let (name, human) = match codec {
            ::media::Codec::H264 => ("H264", "H.264"),
            ::media::Codec::H265 => ("H265", "H.265"),
        };
        if !video.accepts(name) {
            let hint = if codec == ::media::Codec::H265 {
                format!("; play {path}~h264 instead, which every browser decodes")
            } else {
                String::new()
            };
            return Err(AppError::new(
                StatusCode::NOT_ACCEPTABLE,
                "codec_not_accepted",
                format!(
                    "stream {path} sends {human}; the offer accepts only {}{hint}",
                    video.media_codecs().join(", ")
                ),
            ));
        }
        // The cached GOP is queued already: take it now to check it and send it first.
        let mut pending = VecDeque::from([first]);
        while let Some(f) = consumer.try_recv() {
            pending.push_back(f);
        }
        if pending.iter().any(has_b_slice) {
            return Err(AppError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "b_frames_unsupported",
                format!(
                    "stream {path} has B-frames, which WebRTC cannot carry; turn them off in the camera's encoder settings or play it over HLS or MSE"
                ),
            ));
        }
        let mut rtc = build_rtc(codec);
        for addr in &driver.candidates {
            // A host candidate for a bound socket address always builds.
            if let Ok(c) = Candidate::host(*addr, "udp") {
                rtc.add_local_candidate(c);
            }
        }
        let answer = rtc.sdp_api().accept_offer(offer).map_err(|e| {
            AppError::bad_request(
                "offer_not_acceptable",
                format!("the offer cannot be answered: {e}"),
            )
        })?;
        let etag = rtc.direct_api().local_ice_credentials().ufrag;
        let id = session_id();
        let session = Session::new(id.clone(), stream, codec, rtc, driver.socket.clone());
        session.set_remote_ufrag(video.ice_ufrag);
        driver.insert(session.clone());
        let (connect, lag) = (self.config.connect_timeout, self.config.max_lag);
        let started = Instant::now();
        tracing::info!(session = %id, stream = %path, codec = human, "WHEP session started");
        self.registry
            .announce(report(&session, started, "started", None));
        let registry = self.registry.clone();
        self.registry.spawn(format!("webrtc session {id}"), async move {
            let id = session.id.clone();
            let reason = session
                .clone()
                .run(consumer, pending, connect, lag, viewer)
                .await;
            driver.remove(&id);
            registry.announce(report(&session, started, "ended", Some(reason.to_string())));
            let s = &session.stats;
            tracing::info!(
                session = %id,
                reason,
                seconds = started.elapsed().as_secs(),
                bytes = s.bytes_sent.load(std::sync::atomic::Ordering::Relaxed),
                keyframe_requests = s.keyframe_requests.load(std::sync::atomic::Ordering::Relaxed),
                nacks = s.nacks.load(std::sync::atomic::Ordering::Relaxed),
                rtt_micros = s.rtt_micros.load(std::sync::atomic::Ordering::Relaxed),
                skips = s.skips.load(std::sync::atomic::Ordering::Relaxed),
                "WHEP session ended"
            );
        });
        Ok(Created {
            id,
            answer: answer.to_sdp_string(),
            etag,
        })
    }
}

/// A session's figures so far, for its `started` / `ended` announcement.
fn report(
    session: &Session,
    started: Instant,
    action: &'static str,
    reason: Option<String>,
) -> SessionReport {
    use std::sync::atomic::Ordering::Relaxed;
    let s = &session.stats;
    let rtt = s.rtt_micros.load(Relaxed);
    SessionReport {
        camera_id: session.stream.camera_id(),
        stream_path: session.stream.path(),
        session: session.id.clone(),
        action,
        reason,
        seconds: started.elapsed().as_secs(),
        bytes_sent: s.bytes_sent.load(Relaxed),
        nacks: s.nacks.load(Relaxed),
        plis: s.plis.load(Relaxed),
        firs: s.firs.load(Relaxed),
        rtt_ms: (rtt > 0).then(|| rtt as f64 / 1000.0),
    }
}

impl Drop for WebRtc {
    fn drop(&mut self) {
        if let Ok(d) = &self.driver {
            for s in d.sessions() {
                s.stop();
            }
        }
    }
}

/// An ICE-lite `Rtc` that offers exactly the stream's codec.
fn build_rtc(codec: ::media::Codec) -> Rtc {
    let cfg = Rtc::builder()
        .set_ice_lite(true)
        .set_stats_interval(Some(STATS_INTERVAL))
        .clear_codecs();
    let cfg = match codec {
        ::media::Codec::H264 => cfg.enable_h264(true),
        ::media::Codec::H265 => cfg.enable_h265(true),
    };
    cfg.build(Instant::now())
}

/// 128 random bits: the session URL is the only handle on a session, so it must not be
/// guessable by another viewer.
fn session_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

pub use whep::router;
