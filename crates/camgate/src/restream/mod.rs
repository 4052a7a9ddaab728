//! RTSP restream: every stream of the hub (each camera's path and each profile
//! `{path}~{profile}`) as `rtsp://{host}:{port}/{path}`, for analytics containers, NVRs and
//! VMS software that read RTSP. The RTSP protocol is `crates/rtsp`'s; this output is the
//! `rtsp::Source` over the stream registry (`source.rs`: SDP from the hub's codec parameters,
//! an on-demand camera started by a DESCRIBE and held by each playing session), the sender of
//! one playing session (`play.rs`: instant start from the cached keyframe, RTP packetized by
//! `media::rtp`, sender reports with the frames' capture wall clock, skip to the next keyframe
//! for a slow client) and who may read (`access.rs`: protected mode, API keys and viewer
//! tokens through `http::access`).
//!
//! One camera session however many RTSP clients: every session is one consumer of the hub and
//! one `Protocol::Rtsp` viewer of the stream. Video only for now (audio tracks come with the
//! hub's audio).
//!
//! An output: it imports `hub`, `media`, `http`, `tasks` and `config`; it must not import
//! another output, `ingest`, `live` or `api`. Its server runs in the output task group, so
//! shutdown closes every RTSP client with the other viewers.

mod access;
mod play;
mod source;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::config::RtspConfig;
use crate::http::Access;
use crate::hub::Registry;
use crate::tasks::Tasks;

pub use source::HubSource;

/// What the restream needs besides the registry.
#[derive(Clone, Debug)]
pub struct RestreamSettings {
    /// How long a DESCRIBE waits for an on-demand camera's first keyframe.
    pub start_timeout: Duration,
    /// A session further behind the camera than this skips to the next keyframe.
    pub max_lag: Duration,
    /// A TCP session whose connection has more than this many bytes not yet taken by the
    /// socket skips to the next keyframe instead of queueing more.
    pub max_backlog: usize,
    pub session_timeout: Duration,
}

impl RestreamSettings {
    pub fn from_config(rtsp: &RtspConfig, start_timeout: Duration) -> RestreamSettings {
        RestreamSettings {
            start_timeout,
            max_lag: rtsp.max_lag,
            max_backlog: rtsp.max_backlog.bytes() as usize,
            session_timeout: rtsp.session_timeout,
        }
    }
}

/// The running RTSP server.
pub struct Restream {
    server: Arc<rtsp::ServerHandle<HubSource>>,
}

impl Restream {
    /// Binds `[rtsp] listen` and serves the registry's streams until the output task group
    /// stops. `None` when the restream is off; a bind failure is logged and the rest of
    /// camgate runs without it (as WebRTC does with its socket).
    pub fn start(
        rtsp: &RtspConfig,
        http_listen: SocketAddr,
        settings: RestreamSettings,
        registry: Arc<Registry>,
        access: Access,
        tasks: &Tasks,
    ) -> Option<Arc<Restream>> {
        let addr = rtsp.listen_addr(http_listen)?;
        let listener = match bind(addr) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(%addr, error = %e, "cannot listen for RTSP; the restream is off");
                return None;
            }
        };
        let (auth, allow_peer) = access::rtsp_access(&access);
        let server_settings = rtsp::Settings {
            label: "restream",
            server_header: concat!("camgate/", env!("CARGO_PKG_VERSION")).into(),
            cname: "camgate".into(),
            session_timeout: settings.session_timeout,
            auth,
            max_sessions_per_conn: 8,
            sdp_session_id: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            allow_peer,
        };
        let server = Arc::new(rtsp::serve(
            listener,
            server_settings,
            HubSource::new(registry, settings),
        ));
        tracing::info!(addr = %server.local_addr(), "RTSP restream listening");
        let stop = StopOnDrop(server.clone());
        // The server's own tasks are the rtsp crate's; this one ties their life to the
        // output group: when the group stops (shutdown), the server stops with it.
        tasks.spawn("rtsp restream", async move {
            let _stop = stop;
            std::future::pending::<()>().await;
        });
        Some(Arc::new(Restream { server }))
    }

    /// The address RTSP clients connect to (the real port when configured with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// RTSP sessions of a stream (set up, not yet torn down).
    pub fn sessions(&self, path: &str) -> usize {
        self.server.sessions(path)
    }

    /// Sessions over every stream.
    pub fn total_sessions(&self) -> usize {
        self.server.total_sessions()
    }
}

struct StopOnDrop(Arc<rtsp::ServerHandle<HubSource>>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.shutdown();
    }
}

fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let std = std::net::TcpListener::bind(addr)?;
    std.set_nonblocking(true)?;
    tokio::net::TcpListener::from_std(std)
}
