//! The one UDP socket every WebRTC peer talks to, and the receive loop that hands each
//! datagram to the session whose `Rtc::accepts` it (str0m's demultiplexing: the nominated
//! address first, STUN by ufrag). Owns the socket, the session table and the announced
//! candidate addresses; it does not know about HTTP or the hub.
//!
//! Garbage never ends the loop: datagrams str0m cannot classify, or that no session claims,
//! are dropped (and counted).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

use str0m::Input;
use str0m::net::{Protocol, Receive};
use tokio::net::UdpSocket;

use super::session::{Session, SessionStats};

/// Larger than any datagram a peer sends us (STUN, DTLS, RTCP), with room for jumbo MTUs.
const RECV_BUF: usize = 2048;

pub struct Driver {
    pub socket: Arc<UdpSocket>,
    /// The addresses announced as host candidates (all on the socket's port).
    pub candidates: Vec<SocketAddr>,
    sessions: Mutex<HashMap<String, Arc<Session>>>,
    /// Source address -> the session that last claimed it, checked before scanning all.
    routes: Mutex<HashMap<SocketAddr, Weak<Session>>>,
    pub unrouted: AtomicU64,
    /// Sessions ever inserted, and the counters of those that ended: `/metrics` exposes
    /// counters, which must not fall when a session goes away.
    pub started: AtomicU64,
    pub ended: SessionStats,
}

impl Driver {
    /// Binds the socket. `public_ips` (NAT) replace the announced address; an unspecified
    /// bind (`0.0.0.0`) announces the address of the default route and loopback.
    pub fn bind(listen: SocketAddr, public_ips: &[IpAddr]) -> std::io::Result<Arc<Driver>> {
        let std_socket = std::net::UdpSocket::bind(listen)?;
        std_socket.set_nonblocking(true)?;
        let socket = UdpSocket::from_std(std_socket)?;
        let bound = socket.local_addr()?;
        let port = bound.port();
        let candidates: Vec<SocketAddr> = if !public_ips.is_empty() {
            public_ips
                .iter()
                .map(|ip| SocketAddr::new(*ip, port))
                .collect()
        } else if bound.ip().is_unspecified() {
            let mut v: Vec<SocketAddr> = default_route_ip()
                .into_iter()
                .map(|ip| SocketAddr::new(ip, port))
                .collect();
            v.push(SocketAddr::new(Ipv4Addr::LOCALHOST.into(), port));
            v
        } else {
            vec![bound]
        };
        Ok(Arc::new(Driver {
            socket: Arc::new(socket),
            candidates,
            sessions: Mutex::new(HashMap::new()),
            routes: Mutex::new(HashMap::new()),
            unrouted: AtomicU64::new(0),
            started: AtomicU64::new(0),
            ended: SessionStats::default(),
        }))
    }

    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.socket.local_addr().ok()
    }

    pub fn insert(&self, s: Arc<Session>) {
        self.started.fetch_add(1, Ordering::Relaxed);
        lock(&self.sessions).insert(s.id.clone(), s);
    }

    pub fn get(&self, id: &str) -> Option<Arc<Session>> {
        lock(&self.sessions).get(id).cloned()
    }

    pub fn remove(&self, id: &str) -> Option<Arc<Session>> {
        let s = {
            // Moved to the ended totals under the same lock `with_counted` reads under, so a
            // reading counts each session exactly once.
            let mut sessions = lock(&self.sessions);
            let s = sessions.remove(id);
            if let Some(s) = &s {
                self.ended.add(&s.stats);
            }
            s
        };
        lock(&self.routes).retain(|_, w| w.strong_count() > 0);
        s
    }

    /// Calls `f` with the live sessions and the ended sessions' totals, read together.
    pub fn with_counted<R>(&self, f: impl FnOnce(Vec<&Arc<Session>>, &SessionStats) -> R) -> R {
        let sessions = lock(&self.sessions);
        f(sessions.values().collect(), &self.ended)
    }

    pub fn sessions(&self) -> Vec<Arc<Session>> {
        lock(&self.sessions).values().cloned().collect()
    }

    /// Reads datagrams until `stop` resolves.
    pub async fn run(self: Arc<Self>, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        let mut buf = vec![0u8; RECV_BUF];
        let local = self.local_addr();
        loop {
            let (n, source) = tokio::select! {
                _ = &mut stop => return,
                r = self.socket.recv_from(&mut buf) => match r {
                    Ok(v) => v,
                    // ICMP errors (a peer that went away) surface here on some systems.
                    Err(e) => {
                        tracing::debug!(error = %e, "WebRTC socket receive error");
                        continue;
                    }
                },
            };
            let Some(destination) = self.destination_for(source, local) else {
                continue;
            };
            self.route(&buf[..n], source, destination);
        }
    }

    /// Hands one datagram to the session that accepts it. Public for the fuzz-style test.
    pub fn route(&self, data: &[u8], source: SocketAddr, destination: SocketAddr) {
        let Ok(contents) = data.try_into() else {
            self.unrouted.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let input = Input::Receive(
            Instant::now(),
            Receive {
                proto: Protocol::Udp,
                source,
                destination,
                contents,
            },
        );
        let cached = lock(&self.routes).get(&source).and_then(Weak::upgrade);
        let session = match cached {
            Some(s) if s.accepts(&input) => Some(s),
            _ => {
                let found = self.sessions().into_iter().find(|s| s.accepts(&input));
                if let Some(s) = &found {
                    lock(&self.routes).insert(source, Arc::downgrade(s));
                }
                found
            }
        };
        match session {
            Some(s) => s.receive(input),
            // Common at the start: the browser's first STUN can beat the session's insert.
            None => {
                self.unrouted.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The local candidate a datagram from `source` was addressed to, as str0m needs it
    /// (the ICE agent drops STUN that arrived on an address it does not know).
    fn destination_for(&self, source: SocketAddr, local: Option<SocketAddr>) -> Option<SocketAddr> {
        if self.candidates.len() == 1 {
            return self.candidates.first().copied();
        }
        let loopback = source.ip().is_loopback();
        self.candidates
            .iter()
            .find(|c| c.is_ipv4() == source.is_ipv4() && c.ip().is_loopback() == loopback)
            .or_else(|| self.candidates.first())
            .copied()
            .or(local)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Maps stay consistent between statements; a poisoned lock is still usable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The local address of the default route, found by connecting a UDP socket (no packet is
/// sent), so an unspecified bind still announces a reachable address.
fn default_route_ip() -> Option<IpAddr> {
    let s = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    s.connect("192.0.2.1:9").ok()?;
    let ip = s.local_addr().ok()?.ip();
    (!ip.is_unspecified() && !ip.is_loopback()).then_some(ip)
}
