//! Our accept loop in place of `axum::serve`, which has no header-read or idle timeout and no
//! per-client cap: hyper's HTTP/1 server per connection (with upgrades, for WebSockets), the
//! timeouts of [`super::timer`], the cap of [`super::limits`], and a graceful drain: on stop,
//! accepting ends, idle connections close, and requests in flight finish (the caller bounds
//! how long that may take).
//!
//! HTTP/1 only, as `axum::serve` was with our features (no `http2`).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};

use super::limits::{ClientLimits, Slot};
use super::timer::{ConnTimer, Counted, ReadCounter};
use crate::config::{Cidr, HttpConfig};
use crate::http::AppError;
use crate::http::client;

/// Request headers we answer (more get a JSON 431). hyper parses up to
/// [`PARSED_HEADERS`] so that the refusal is ours and JSON; past that hyper itself answers.
const MAX_HEADERS: usize = 100;
const PARSED_HEADERS: usize = 1000;

/// What every connection is held to.
#[derive(Clone)]
pub struct ConnPolicy {
    header_read_timeout: Duration,
    idle_timeout: Duration,
    per_client: Arc<ClientLimits>,
    trusted: Arc<[Cidr]>,
}

impl ConnPolicy {
    pub fn new(http: &HttpConfig) -> ConnPolicy {
        ConnPolicy {
            header_read_timeout: http.header_read_timeout,
            idle_timeout: http.idle_timeout,
            per_client: ClientLimits::new(http.max_connections_per_client),
            trusted: http.trusted_proxy_nets().into(),
        }
    }
}

/// Accepts and serves until `stop` says stop (or its sender is gone), then waits for every
/// connection to end.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    policy: ConnPolicy,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    // Each connection holds a sender; `recv` returns `None` once all have ended.
    let (alive, mut all_ended) = mpsc::channel::<Infallible>(1);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
            () = stopped(&mut stop) => break,
        };
        let from_proxy = client::is_trusted(&policy.trusted, peer.ip());
        // A proxy's connections carry many clients: those are counted by the forwarded
        // address of their first request instead ([`ProxiedSlot`]).
        let slot = if from_proxy {
            None
        } else {
            match policy.per_client.acquire(peer.ip()) {
                Some(slot) => Some(slot),
                // Closed at once, before reading anything.
                None => continue,
            }
        };
        let proxied = from_proxy.then(|| ProxiedSlot {
            limits: policy.per_client.clone(),
            trusted: policy.trusted.clone(),
            slot: Mutex::new(None),
        });
        tokio::spawn(connection(
            stream,
            peer,
            router.clone(),
            policy.clone(),
            Connection {
                _slot: slot,
                proxied: proxied.map(Arc::new),
                _alive: alive.clone(),
            },
            stop.clone(),
        ));
    }
    drop(listener);
    drop(alive);
    let _ = all_ended.recv().await;
    Ok(())
}

/// What a connection holds while it is open.
struct Connection {
    _slot: Option<Slot>,
    proxied: Option<Arc<ProxiedSlot>>,
    _alive: mpsc::Sender<Infallible>,
}

/// The slot of a connection from a trusted proxy, taken by its first request's client.
struct ProxiedSlot {
    limits: Arc<ClientLimits>,
    trusted: Arc<[Cidr]>,
    slot: Mutex<Option<Slot>>,
}

impl ProxiedSlot {
    /// Whether this request may go on: the connection already counts against a client, or
    /// its client has room.
    fn admit(&self, peer: SocketAddr, headers: &HeaderMap) -> bool {
        let mut slot = self.slot.lock().unwrap_or_else(PoisonError::into_inner);
        if slot.is_some() {
            return true;
        }
        let ip = client::resolve(Some(peer.ip()), headers, &self.trusted)
            .ip
            .unwrap_or(peer.ip());
        *slot = self.limits.acquire(ip);
        slot.is_some()
    }
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    policy: ConnPolicy,
    held: Connection,
    mut stop: watch::Receiver<bool>,
) {
    let reads = ReadCounter::default();
    let io = TokioIo::new(Counted::new(stream, reads.clone()));
    let proxied = held.proxied.clone();
    let service =
        hyper::service::service_fn(move |req| answer(req, peer, router.clone(), proxied.clone()));
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(ConnTimer::new(
            policy.header_read_timeout,
            policy.idle_timeout,
            reads,
        ))
        .header_read_timeout(policy.header_read_timeout)
        .max_headers(PARSED_HEADERS);
    let conn = builder.serve_connection(io, service).with_upgrades();
    tokio::pin!(conn);
    let ended = tokio::select! {
        ended = conn.as_mut() => ended,
        () = stopped(&mut stop) => {
            // Finishes the request in flight (if any), then closes.
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = ended {
        // Timeouts, resets and malformed requests: the client's doing, not an error of ours.
        tracing::debug!(peer = %peer, error = %e, "connection ended");
    }
    drop(held);
}

async fn answer(
    mut req: Request<Incoming>,
    peer: SocketAddr,
    mut router: Router,
    proxied: Option<Arc<ProxiedSlot>>,
) -> Result<Response, Infallible> {
    if req.headers().len() > MAX_HEADERS {
        return Ok(AppError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers_too_large",
            format!("a request may carry at most {MAX_HEADERS} headers"),
        )
        .into_response());
    }
    if let Some(proxied) = &proxied
        && !proxied.admit(peer, req.headers())
    {
        let mut refused = AppError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "too_many_connections",
            "this client already holds [http] max_connections_per_client connections",
        )
        .into_response();
        refused
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        return Ok(refused);
    }
    req.extensions_mut().insert(ConnectInfo(peer));
    let response = tower::Service::call(&mut router, req).await;
    Ok(response.unwrap_or_else(|never| match never {}))
}

/// Ends when the sender says stop or is dropped (the `Ref` of `wait_for` is not held, since
/// it is not `Send`).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

/// As `axum::serve` does: errors of one connection (reset before accept) are skipped; others
/// (out of file descriptors) are logged and retried after a pause rather than spinning.
async fn accept_failed(e: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "accept failed; retrying in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}
