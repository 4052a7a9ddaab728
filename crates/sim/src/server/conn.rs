//! One RTSP control connection: the request state machine (CSeq, version, auth, then
//! OPTIONS / DESCRIBE / SETUP / PLAY / TEARDOWN / GET_PARAMETER / SET_PARAMETER with their
//! error answers) and the tokio task that reads requests and interleaved frames and writes
//! responses and interleaved RTP through one ordered queue.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::{Notify, mpsc};

use super::Shared;
use super::play;
use super::session::{Session, SessionTransport, lock};
use crate::rtsp::auth::{AuthOutcome, new_nonce};
use crate::rtsp::framing::{Item, next_item};
use crate::rtsp::message::{Message, Request, Response};
use crate::rtsp::sdp::{SdpInfo, TRACK, sdp};
use crate::rtsp::transport::{TransportRequest, parse_transport};

const PUBLIC: &str = "OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER, SET_PARAMETER";
const SERVER: &str = concat!("camgate-sim/", env!("CARGO_PKG_VERSION"));
/// Sessions one connection may hold; each UDP session binds two sockets.
const MAX_SESSIONS_PER_CONN: usize = 8;
/// Depth of the outgoing queue (responses and interleaved packets) of a connection.
const OUT_QUEUE: usize = 1024;

/// The state of one control connection.
pub(crate) struct Conn {
    pub(crate) id: u64,
    shared: Arc<Shared>,
    peer: SocketAddr,
    local: SocketAddr,
    nonce: String,
    out: mpsc::Sender<Bytes>,
    pub(crate) kill: Arc<Notify>,
    /// A session whose PLAY answer is being written; its sender starts after that.
    pending_play: Option<Arc<Session>>,
}

/// Where a request URL points.
#[derive(Debug, PartialEq, Eq)]
enum Target {
    /// `*` or the server root.
    Server,
    Camera {
        camera: u32,
        track: bool,
    },
    Unknown,
}

impl Conn {
    pub(crate) fn new(
        shared: Arc<Shared>,
        id: u64,
        peer: SocketAddr,
        local: SocketAddr,
        out: mpsc::Sender<Bytes>,
    ) -> Conn {
        Conn {
            id,
            shared,
            peer,
            local,
            nonce: new_nonce(),
            out,
            kill: Arc::new(Notify::new()),
            pending_play: None,
        }
    }

    /// Answers one request. Never panics; every failure is an RTSP status.
    pub(crate) async fn handle(&mut self, req: &Request) -> Response {
        let Some(cseq) = req.header("CSeq") else {
            return Response::new(400)
                .header("Server", SERVER)
                .with_body("text/plain", "missing CSeq\r\n");
        };
        let cseq = cseq.to_string();
        let resp =
            if cseq.is_empty() || !cseq.bytes().all(|b| b.is_ascii_digit()) || cseq.len() > 10 {
                Response::new(400).with_body("text/plain", "CSeq must be a number\r\n")
            } else {
                self.dispatch(req).await
            };
        let mut out = Response::new(resp.status)
            .header("CSeq", cseq)
            .header("Server", SERVER);
        // A successful request on a live session names it in the answer (RFC 2326 12.37).
        if resp.status == 200
            && resp.get("Session").is_none()
            && let Some(id) = req.header("Session").and_then(|v| v.split(';').next())
        {
            let id = id.trim();
            if self.shared.registry.get(id).is_some() {
                out = out.header("Session", self.session_header(id));
            }
        }
        out.headers.extend(resp.headers);
        out.body = resp.body;
        out
    }

    async fn dispatch(&mut self, req: &Request) -> Response {
        if req.version != "RTSP/1.0" {
            return Response::new(505);
        }
        if let Some(auth) = &self.shared.auth
            && req.method != "OPTIONS"
        {
            match auth.check(&req.method, req.header("Authorization"), &self.nonce) {
                AuthOutcome::Accepted => {}
                outcome => {
                    if outcome == AuthOutcome::Rejected {
                        tracing::info!(peer = %self.peer, method = %req.method,
                                "sim: wrong credentials");
                    }
                    let mut r = Response::new(401);
                    for c in auth.challenges(&self.nonce) {
                        r = r.header("WWW-Authenticate", c);
                    }
                    return r;
                }
            }
        }
        if let Some(options) = req.header("Require") {
            // We implement no RTSP extensions (RFC 2326 12.32).
            return Response::new(551).header("Unsupported", options.to_string());
        }
        // Any request naming a live session keeps it alive.
        let session = match req.header("Session") {
            None => None,
            Some(v) => {
                let id = v.split(';').next().unwrap_or_default().trim();
                match self.shared.registry.get(id) {
                    Some(s) => {
                        s.touch();
                        Some(s)
                    }
                    None => return Response::new(454),
                }
            }
        };
        let target = self.target(&req.uri);
        match req.method.as_str() {
            "OPTIONS" => Response::new(200).header("Public", PUBLIC),
            "DESCRIBE" => self.describe(req, &target),
            "SETUP" => self.setup(req, &target, session).await,
            "PLAY" => self.play(&target, session),
            "TEARDOWN" => match session {
                None => Response::new(454),
                Some(s) => {
                    self.shared.registry.remove(&s.id, "TEARDOWN");
                    Response::new(200)
                }
            },
            "GET_PARAMETER" | "SET_PARAMETER" => {
                // Keepalive only: we have no parameters to read or write.
                if req.body.iter().all(|b| b.is_ascii_whitespace()) {
                    Response::new(200)
                } else {
                    Response::new(451)
                }
            }
            "ANNOUNCE" | "RECORD" => Response::new(405).header("Allow", PUBLIC),
            _ => Response::new(501).header("Public", PUBLIC),
        }
    }

    fn target(&self, uri: &str) -> Target {
        if uri == "*" {
            return Target::Server;
        }
        let rest = uri
            .strip_prefix("rtsp://")
            .or_else(|| uri.strip_prefix("rtsps://"))
            .or_else(|| uri.strip_prefix("RTSP://"));
        let path = match rest {
            Some(r) => r.find('/').map(|i| &r[i..]).unwrap_or("/"),
            None if uri.starts_with('/') => uri,
            None => return Target::Unknown,
        };
        let path = path.split(['?', '#']).next().unwrap_or_default();
        let mut segs = path.split('/').filter(|s| !s.is_empty());
        let Some(first) = segs.next() else {
            return Target::Server;
        };
        let camera = first
            .strip_prefix("cam")
            .filter(|n| !n.starts_with('0') && n.len() <= 6)
            .and_then(|n| n.parse::<u32>().ok())
            .filter(|n| (1..=self.shared.config.cameras).contains(n));
        let Some(camera) = camera else {
            return Target::Unknown;
        };
        match (segs.next(), segs.next()) {
            (None, _) => Target::Camera {
                camera,
                track: false,
            },
            (Some(t), None) if t == TRACK => Target::Camera {
                camera,
                track: true,
            },
            _ => Target::Unknown,
        }
    }

    /// `rtsp://host:port/camN/` as the client should see it.
    fn base_url(&self, camera: u32) -> String {
        format!("rtsp://{}/cam{camera}/", self.local)
    }

    fn describe(&self, req: &Request, target: &Target) -> Response {
        let Target::Camera {
            camera,
            track: false,
        } = *target
        else {
            return Response::new(404);
        };
        if let Some(accept) = req.header("Accept")
            && !accept.split(',').any(|a| {
                let a = a.split(';').next().unwrap_or_default().trim();
                a.eq_ignore_ascii_case("application/sdp") || a == "*/*"
            })
        {
            return Response::new(406);
        }
        let (sps, pps) = self.shared.source.parameter_sets();
        let c = &self.shared.config;
        let body = sdp(&SdpInfo {
            camera,
            sps: &sps,
            pps: &pps,
            fps: c.fps,
            width: c.width,
            height: c.height,
            server_ip: self.local.ip(),
            session_id: self.shared.sdp_session_id,
        });
        Response::new(200)
            .header("Content-Base", self.base_url(camera))
            .with_body("application/sdp", body)
    }

    async fn setup(
        &mut self,
        req: &Request,
        target: &Target,
        existing: Option<Arc<Session>>,
    ) -> Response {
        let Target::Camera { camera, .. } = *target else {
            return Response::new(404);
        };
        if let Some(s) = existing {
            // One stream per camera: a session never aggregates another camera, and its one
            // stream is already set up.
            return Response::new(if s.camera != camera { 459 } else { 455 });
        }
        let Some(transport) = req.header("Transport") else {
            return Response::new(400).with_body("text/plain", "missing Transport\r\n");
        };
        let Some(wanted) = parse_transport(transport) else {
            return Response::new(461);
        };
        let mine = self.shared.registry.of_connection(self.id);
        if mine.len() >= MAX_SESSIONS_PER_CONN {
            return Response::new(503).with_body("text/plain", "too many sessions\r\n");
        }
        let id = format!("{:016X}", rand::random::<u64>());
        let (transport, answer) = match wanted {
            TransportRequest::Tcp { interleaved } => {
                let used: Vec<u8> = mine
                    .iter()
                    .filter_map(|s| match &s.transport {
                        SessionTransport::Tcp { rtp_channel, .. } => Some(*rtp_channel),
                        SessionTransport::Udp { .. } => None,
                    })
                    .collect();
                let (rtp, rtcp) = match interleaved {
                    Some((a, b)) if a == b || used.iter().any(|u| *u == a || *u + 1 == a) => {
                        return Response::new(461);
                    }
                    Some(pair) => pair,
                    None => {
                        let free = (0..=254u8)
                            .step_by(2)
                            .find(|c| !used.iter().any(|u| u == c || *u + 1 == *c));
                        match free {
                            Some(c) => (c, c + 1),
                            None => return Response::new(461),
                        }
                    }
                };
                (
                    SessionTransport::Tcp {
                        out: self.out.clone(),
                        rtp_channel: rtp,
                        rtcp_channel: rtcp,
                    },
                    format!("RTP/AVP/TCP;unicast;interleaved={rtp}-{rtcp}"),
                )
            }
            TransportRequest::Udp {
                client_rtp,
                client_rtcp,
            } => {
                let (rtp, rtcp) = match bind_udp_pair(self.local.ip()).await {
                    Ok(pair) => pair,
                    Err(e) => {
                        tracing::warn!(error = %e, "sim: cannot bind UDP ports");
                        return Response::new(500);
                    }
                };
                let server_rtp = rtp.local_addr().map(|a| a.port()).unwrap_or(0);
                let server_rtcp = rtcp.local_addr().map(|a| a.port()).unwrap_or(0);
                (
                    SessionTransport::Udp {
                        rtp: Arc::new(rtp),
                        rtcp: Arc::new(rtcp),
                        client_rtp: SocketAddr::new(self.peer.ip(), client_rtp),
                        client_rtcp: SocketAddr::new(self.peer.ip(), client_rtcp),
                    },
                    format!(
                        "RTP/AVP;unicast;client_port={client_rtp}-{client_rtcp};\
                         server_port={server_rtp}-{server_rtcp};source={}",
                        self.local.ip()
                    ),
                )
            }
        };
        let session = Arc::new(Session::new(
            id.clone(),
            camera,
            self.id,
            transport,
            self.kill.clone(),
        ));
        let answer = format!("{answer};ssrc={:08X}", session.ssrc);
        if matches!(session.transport, SessionTransport::Udp { .. }) {
            tokio::spawn(play::watch_udp_rtcp(
                session.clone(),
                session.stop.subscribe(),
            ));
        }
        self.shared.registry.insert(session);
        Response::new(200)
            .header("Transport", answer)
            .header("Session", self.session_header(&id))
    }

    fn session_header(&self, id: &str) -> String {
        format!(
            "{id};timeout={}",
            self.shared.config.session_timeout.as_secs().max(1)
        )
    }

    fn play(&mut self, target: &Target, session: Option<Arc<Session>>) -> Response {
        let Some(session) = session else {
            return Response::new(454);
        };
        match *target {
            Target::Camera { camera, .. } if camera != session.camera => {
                return Response::new(459);
            }
            Target::Camera { .. } => {}
            Target::Server | Target::Unknown => return Response::new(404),
        }
        if matches!(session.transport, SessionTransport::Tcp { .. }) && session.conn_id != self.id {
            // Its packets go down another connection; PLAY belongs there.
            return Response::new(455);
        }
        let pos = *lock(&session.position);
        let already = {
            let mut playing = lock(&session.playing);
            std::mem::replace(&mut *playing, true)
        };
        if !already {
            self.pending_play = Some(session.clone());
        }
        Response::new(200)
            .header("Session", self.session_header(&session.id))
            .header("Range", "npt=0.000-")
            .header(
                "RTP-Info",
                format!(
                    "url={}{TRACK};seq={};rtptime={}",
                    self.base_url(session.camera),
                    pos.seq,
                    pos.rtptime
                ),
            )
    }

    /// After the response to a PLAY is queued: start its sender, so RTP follows the answer.
    pub(crate) fn after_response(&mut self) {
        if let Some(s) = self.pending_play.take() {
            tokio::spawn(play::play(self.shared.clone(), s));
        }
    }

    /// Interleaved data from the client (RTCP receiver reports): a sign of life.
    fn on_data(&self, channel: u8) {
        for s in self.shared.registry.of_connection(self.id) {
            if let SessionTransport::Tcp { rtcp_channel, .. } = &s.transport
                && *rtcp_channel == channel
            {
                s.touch();
            }
        }
    }

    /// The connection is gone: TCP sessions die with it; UDP sessions live until TEARDOWN or
    /// their timeout (RFC 2326 lets a client come back on another connection), unless `all`.
    fn close(&self, all: bool) {
        for s in self.shared.registry.of_connection(self.id) {
            if all || matches!(s.transport, SessionTransport::Tcp { .. }) {
                self.shared.registry.remove(&s.id, "connection closed");
            }
        }
    }
}

/// Binds an even/odd UDP port pair (RTP, RTCP) on `ip`, as RFC 3550 suggests; falls back to
/// any two ports when the pair is hard to get.
async fn bind_udp_pair(ip: std::net::IpAddr) -> std::io::Result<(UdpSocket, UdpSocket)> {
    for _ in 0..20 {
        let rtp = UdpSocket::bind(SocketAddr::new(ip, 0)).await?;
        let port = rtp.local_addr()?.port();
        if port % 2 == 0
            && port < u16::MAX
            && let Ok(rtcp) = UdpSocket::bind(SocketAddr::new(ip, port + 1)).await
        {
            return Ok((rtp, rtcp));
        }
    }
    let rtp = UdpSocket::bind(SocketAddr::new(ip, 0)).await?;
    let rtcp = UdpSocket::bind(SocketAddr::new(ip, 0)).await?;
    Ok((rtp, rtcp))
}

/// Serves one accepted connection until the client leaves, a fault drops it, or shutdown.
pub(crate) async fn serve(shared: Arc<Shared>, stream: TcpStream, id: u64) {
    let (Ok(peer), Ok(local)) = (stream.peer_addr(), stream.local_addr()) else {
        return;
    };
    let _ = stream.set_nodelay(true);
    let (mut rd, mut wr) = stream.into_split();
    let (tx, mut rx) = mpsc::channel::<Bytes>(OUT_QUEUE);
    let writer = tokio::spawn(async move {
        while let Some(b) = rx.recv().await {
            if wr.write_all(&b).await.is_err() {
                break;
            }
        }
        let _ = wr.shutdown().await;
    });
    let mut conn = Conn::new(shared.clone(), id, peer, local, tx.clone());
    let kill = conn.kill.clone();
    let mut shutdown = shared.shutdown.subscribe();
    let mut buf = BytesMut::with_capacity(4096);
    tracing::debug!(%peer, conn = id, "sim: connection opened");
    let mut killed = false;
    'conn: loop {
        loop {
            match next_item(&mut buf) {
                Ok(None) => break,
                Ok(Some(Item::Message(Message::Request(req)))) => {
                    let resp = conn.handle(&req).await;
                    if tx.send(Bytes::from(resp.to_bytes())).await.is_err() {
                        break 'conn;
                    }
                    conn.after_response();
                }
                // A response to a request we never sent: nothing to do.
                Ok(Some(Item::Message(Message::Response { .. }))) => {}
                Ok(Some(Item::Data { channel, .. })) => conn.on_data(channel),
                Err(e) => {
                    tracing::info!(%peer, error = %e, "sim: unparseable request; closing");
                    let resp = Response::new(400).with_body("text/plain", format!("{e}\r\n"));
                    let _ = tx.send(Bytes::from(resp.to_bytes())).await;
                    break 'conn;
                }
            }
        }
        tokio::select! {
            n = rd.read_buf(&mut buf) => match n {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            },
            _ = kill.notified() => { killed = true; break; }
            _ = super::stopped(&mut shutdown) => break,
        }
    }
    conn.close(killed);
    drop(conn);
    drop(tx);
    if killed {
        // A dropped camera connection ends abruptly; do not flush queued video.
        writer.abort();
    } else {
        let _ = writer.await;
    }
    tracing::debug!(%peer, conn = id, "sim: connection closed");
}

#[cfg(test)]
#[path = "conn_tests.rs"]
mod tests;
