//! The simulator's server: binds, starts the video source, and serves it through the RTSP
//! server of crates/rtsp (which owns connections, sessions, transports and timeouts); hands
//! tests and the CLI a `SimHandle`. Owns no protocol code.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::source::{SimSource, VideoSource, unix_ms_now};
use crate::{AuthScheme, SimConfig, SimError};

/// Realm of the simulated cameras' 401 challenges.
pub const REALM: &str = "camgate-sim";
const SERVER: &str = concat!("camgate-sim/", env!("CARGO_PKG_VERSION"));
/// Sessions one connection may hold; each UDP session binds two sockets.
const MAX_SESSIONS_PER_CONN: usize = 8;

/// The simulator server. `SimServer::start(config).await` binds, encodes the clip (or starts
/// the live encoder) and serves until the returned handle is shut down or dropped.
pub struct SimServer;

impl SimServer {
    pub async fn start(config: SimConfig) -> Result<SimHandle, SimError> {
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(SimError::Io)?;
        let local_addr = listener.local_addr().map_err(SimError::Io)?;
        config.validate()?;
        let video = VideoSource::start(&config).await?;
        let auth = config.credentials.clone().map(|c| {
            let schemes = match config.auth {
                AuthScheme::Basic => rtsp::Schemes::Basic,
                AuthScheme::Digest => rtsp::Schemes::Digest,
                AuthScheme::Any => rtsp::Schemes::Any,
            };
            let user = rtsp::SingleUser {
                user: c.user,
                password: c.password,
            };
            rtsp::Authenticator::new(REALM, schemes, Arc::new(user))
        });
        let settings = rtsp::Settings {
            label: "sim",
            server_header: SERVER.into(),
            cname: "camgate-sim".into(),
            session_timeout: config.session_timeout,
            auth,
            max_sessions_per_conn: MAX_SESSIONS_PER_CONN,
            sdp_session_id: unix_ms_now(),
            allow_peer: None,
        };
        let source = SimSource {
            config,
            video,
            epoch: tokio::time::Instant::now(),
        };
        let server = rtsp::serve(listener, settings, source);
        let c = &server.source().config;
        tracing::info!(%local_addr, cameras = c.cameras,
            size = %format!("{}x{}", c.width, c.height),
            fps = c.fps, live = c.live, "sim: serving");
        Ok(SimHandle { server, local_addr })
    }
}

/// A running simulator. Dropping it shuts the server down.
pub struct SimHandle {
    server: rtsp::ServerHandle<SimSource>,
    local_addr: SocketAddr,
}

impl SimHandle {
    /// The address the RTSP server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `rtsp://addr/camN` (without credentials).
    pub fn url(&self, camera: u32) -> String {
        format!("rtsp://{}/cam{camera}", self.local_addr)
    }

    pub fn config(&self) -> &SimConfig {
        &self.server.source().config
    }

    /// RTSP sessions of camera `camera` (set up and not yet torn down or expired).
    pub fn sessions(&self, camera: u32) -> usize {
        self.server.sessions(&format!("cam{camera}"))
    }

    /// Sessions of camera `camera` that are sending video.
    pub fn playing(&self, camera: u32) -> usize {
        self.server.playing(&format!("cam{camera}"))
    }

    /// Sessions over all cameras.
    pub fn total_sessions(&self) -> usize {
        self.server.total_sessions()
    }

    /// Stops accepting, closes every connection and session, stops the live encoder.
    pub fn shutdown(&self) {
        if self.server.shutdown() {
            self.server.source().video.stop();
            tracing::info!(local_addr = %self.local_addr, "sim: stopped");
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}
