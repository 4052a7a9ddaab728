//! The tokio layer: accepts connections, runs one task per connection (`conn`) and per
//! playing session (`play`), expires idle sessions, and hands its owner a `ServerHandle`.
//! Every protocol decision is the sans-IO core's (`control`); this layer only moves bytes,
//! binds sockets and keeps time.

mod conn;
mod play;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{Notify, mpsc, watch};

use crate::control::{Settings, Shared};
use crate::session::lock;
use crate::source::Source;

/// The two UDP sockets of one track of a session: RTP and RTCP.
#[derive(Debug)]
pub struct UdpPair {
    pub(crate) rtp: UdpSocket,
    pub(crate) rtcp: UdpSocket,
}

/// The outgoing queue of one connection (answers, interleaved bursts, sender reports, in
/// order) and how many bytes wait in it, which a playing source reads as its backlog.
#[derive(Clone)]
pub(crate) struct Out {
    tx: mpsc::Sender<Bytes>,
    queued: Arc<AtomicUsize>,
}

impl Out {
    /// The queue and its receiving end; the writer takes each written message off the
    /// count with `written` (it must not hold an `Out`, which would keep the queue open).
    pub(crate) fn new(depth: usize) -> (Out, mpsc::Receiver<Bytes>) {
        let (tx, rx) = mpsc::channel(depth);
        let queued = Arc::new(AtomicUsize::new(0));
        (Out { tx, queued }, rx)
    }

    /// Queues `b`; false when the connection is gone.
    pub(crate) async fn send(&self, b: Bytes) -> bool {
        let n = b.len();
        self.queued.fetch_add(n, Ordering::Relaxed);
        if self.tx.send(b).await.is_err() {
            self.queued.fetch_sub(n, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// The byte count, for the writer (which takes off what it wrote) and for the sessions'
    /// bursts (which read it live: [`crate::Burst::backlog`]).
    pub(crate) fn counter(&self) -> Arc<AtomicUsize> {
        self.queued.clone()
    }
}

/// What the tasks of one server share.
pub(crate) struct Inner<S> {
    pub(crate) core: Shared<S, Arc<UdpPair>>,
    pub(crate) shutdown: watch::Sender<bool>,
    /// Each open connection's kill switch, by connection id (a source's `Next::Abort`).
    pub(crate) conns: Mutex<HashMap<u64, Arc<Notify>>>,
}

impl<S> Inner<S> {
    /// Closes connection `id` abruptly, if it is still open.
    pub(crate) fn kill_conn(&self, id: u64) {
        if let Some(k) = lock(&self.conns).get(&id) {
            k.notify_one();
        }
    }
}

/// Serves `source` on `listener` until the returned handle is shut down or dropped.
pub fn serve<S: Source>(listener: TcpListener, settings: Settings, source: S) -> ServerHandle<S> {
    // A listener whose address cannot be read is unusable; report it as unspecified rather
    // than fail, since accept would fail the same way and be logged.
    let local_addr = listener
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
    let inner = Arc::new(Inner {
        core: Shared::new(settings, source),
        shutdown: watch::Sender::new(false),
        conns: Mutex::new(HashMap::new()),
    });
    tokio::spawn(accept_loop(inner.clone(), listener));
    tokio::spawn(expire_loop(inner.clone()));
    ServerHandle { inner, local_addr }
}

async fn accept_loop<S: Source>(inner: Arc<Inner<S>>, listener: TcpListener) {
    let ids = AtomicU64::new(1);
    let mut shutdown = inner.shutdown.subscribe();
    loop {
        tokio::select! {
            r = listener.accept() => match r {
                Ok((stream, _)) => {
                    let id = ids.fetch_add(1, Ordering::Relaxed);
                    tokio::spawn(conn::serve(inner.clone(), stream, id));
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(server = inner.core.settings.label, error = %e,
                        "rtsp: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            _ = stopped(&mut shutdown) => return,
        }
    }
}

/// Tears down sessions that sent nothing for the session timeout.
async fn expire_loop<S: Source>(inner: Arc<Inner<S>>) {
    let timeout = inner.core.settings.session_timeout;
    let every = (timeout / 4).clamp(Duration::from_millis(100), Duration::from_secs(1));
    let mut shutdown = inner.shutdown.subscribe();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stopped(&mut shutdown) => return,
        }
        let registry = &inner.core.registry;
        for id in registry.expired(Instant::now(), timeout) {
            registry.remove(&id, "session timeout");
        }
    }
}

/// Resolves once a stop flag is set (or its sender is gone).
pub(crate) async fn stopped(rx: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns is not Send; drop it here, not across the caller's awaits.
    let _ = rx.wait_for(|s| *s).await.map(|_| ());
}

/// A running server. Dropping it shuts the server down.
pub struct ServerHandle<S: Source> {
    inner: Arc<Inner<S>>,
    local_addr: SocketAddr,
}

impl<S: Source> ServerHandle<S> {
    /// The address the RTSP server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn source(&self) -> &S {
        &self.inner.core.source
    }

    pub fn settings(&self) -> &Settings {
        &self.inner.core.settings
    }

    /// RTSP sessions of `stream` (set up and not yet torn down or expired).
    pub fn sessions(&self, stream: &str) -> usize {
        self.inner.core.registry.count(stream)
    }

    /// Sessions of `stream` that are sending.
    pub fn playing(&self, stream: &str) -> usize {
        self.inner.core.registry.count_playing(stream)
    }

    /// Sessions over all streams.
    pub fn total_sessions(&self) -> usize {
        self.inner.core.registry.total()
    }

    /// Stops accepting, closes every connection and session. Returns false when it had
    /// already been shut down (so the caller's own teardown runs once).
    pub fn shutdown(&self) -> bool {
        if self.inner.shutdown.send_replace(true) {
            return false;
        }
        let registry = &self.inner.core.registry;
        for id in registry.ids() {
            registry.remove(&id, "shutdown");
        }
        true
    }
}

impl<S: Source> Drop for ServerHandle<S> {
    fn drop(&mut self) {
        self.shutdown();
    }
}
