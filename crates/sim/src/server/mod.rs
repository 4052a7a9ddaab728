//! The simulator's RTSP server: accepts connections, owns the shared video source and the
//! session registry, expires idle sessions, and hands tests and the CLI a `SimHandle`.

mod conn;
mod play;
mod session;
mod source;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::rtsp::auth::Authenticator;
use crate::{SimConfig, SimError};
use session::Registry;
use source::VideoSource;

/// State every connection and session task of one server shares.
pub(crate) struct Shared {
    pub(crate) config: SimConfig,
    pub(crate) source: VideoSource,
    pub(crate) auth: Option<Authenticator>,
    pub(crate) registry: Registry,
    pub(crate) sdp_session_id: u64,
    pub(crate) shutdown: watch::Sender<bool>,
    /// The server's start: origin of the clip sessions' shared pacing grid.
    pub(crate) epoch: tokio::time::Instant,
}

impl Shared {
    async fn new(config: SimConfig) -> Result<Shared, SimError> {
        config.validate()?;
        let source = VideoSource::start(&config).await?;
        let auth = config.credentials.clone().map(|credentials| Authenticator {
            credentials,
            scheme: config.auth,
        });
        Ok(Shared {
            sdp_session_id: source::unix_ms_now(),
            config,
            source,
            auth,
            registry: Registry::default(),
            shutdown: watch::Sender::new(false),
            epoch: tokio::time::Instant::now(),
        })
    }
}

/// The simulator server. `SimServer::start(config).await` binds, encodes the clip (or starts
/// the live encoder) and serves until the returned handle is shut down or dropped.
pub struct SimServer;

impl SimServer {
    pub async fn start(config: SimConfig) -> Result<SimHandle, SimError> {
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(SimError::Io)?;
        let local_addr = listener.local_addr().map_err(SimError::Io)?;
        let shared = Arc::new(Shared::new(config).await?);
        tokio::spawn(accept_loop(shared.clone(), listener));
        tokio::spawn(expire_loop(shared.clone()));
        tracing::info!(%local_addr, cameras = shared.config.cameras,
            size = %format!("{}x{}", shared.config.width, shared.config.height),
            fps = shared.config.fps, live = shared.config.live, "sim: serving");
        Ok(SimHandle { shared, local_addr })
    }
}

async fn accept_loop(shared: Arc<Shared>, listener: TcpListener) {
    let ids = AtomicU64::new(1);
    let mut shutdown = shared.shutdown.subscribe();
    loop {
        tokio::select! {
            r = listener.accept() => match r {
                Ok((stream, _)) => {
                    let id = ids.fetch_add(1, Ordering::Relaxed);
                    tokio::spawn(conn::serve(shared.clone(), stream, id));
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "sim: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            _ = stopped(&mut shutdown) => return,
        }
    }
}

/// Tears down sessions that sent nothing for the session timeout.
async fn expire_loop(shared: Arc<Shared>) {
    let timeout = shared.config.session_timeout;
    let every = (timeout / 4).clamp(Duration::from_millis(100), Duration::from_secs(1));
    let mut shutdown = shared.shutdown.subscribe();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stopped(&mut shutdown) => return,
        }
        for id in shared.registry.expired(Instant::now(), timeout) {
            shared.registry.remove(&id, "session timeout");
        }
    }
}

/// Resolves once a stop flag is set (or its sender is gone).
pub(crate) async fn stopped(rx: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns is not Send; drop it here, not across the caller's awaits.
    let _ = rx.wait_for(|s| *s).await.map(|_| ());
}

/// A running simulator. Dropping it shuts the server down.
pub struct SimHandle {
    shared: Arc<Shared>,
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
        &self.shared.config
    }

    /// RTSP sessions of camera `camera` (set up and not yet torn down or expired).
    pub fn sessions(&self, camera: u32) -> usize {
        self.shared.registry.count(camera)
    }

    /// Sessions of camera `camera` that are sending video.
    pub fn playing(&self, camera: u32) -> usize {
        self.shared.registry.count_playing(camera)
    }

    /// Sessions over all cameras.
    pub fn total_sessions(&self) -> usize {
        self.shared.registry.total()
    }

    /// Stops accepting, closes every connection and session, stops the live encoder.
    pub fn shutdown(&self) {
        if !self.shared.shutdown.send_replace(true) {
            for id in self.shared.registry.ids() {
                self.shared.registry.remove(&id, "shutdown");
            }
            self.shared.source.stop();
            tracing::info!(local_addr = %self.local_addr, "sim: stopped");
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}
