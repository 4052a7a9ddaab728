//! The request state machine of one control connection, sans-IO: CSeq, version, auth, then
//! OPTIONS / DESCRIBE / SETUP / PLAY / TEARDOWN / GET_PARAMETER / SET_PARAMETER with their
//! error answers, against the server's shared session registry. What needs the outside world
//! comes back as a `Step` (bind a UDP pair, start a sender) for the server layer to do; time
//! comes in as an argument. Owns no socket and no task.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::auth::{AuthOutcome, Authenticator, new_nonce};
use crate::message::{Request, Response};
use crate::sdp::{SessionInfo, sdp, track_control};
use crate::session::{Registry, Session, SetupTrack, TrackTransport};
use crate::source::{Source, StreamInfo, TrackStart};
use crate::transport::{TransportRequest, parse_transport};

pub const PUBLIC: &str = "OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER, SET_PARAMETER";

/// What a server is, besides its source: fixed for its life.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Names the server in log lines (`sim`, `restream`).
    pub label: &'static str,
    /// The `Server` header of every answer.
    pub server_header: String,
    /// The SDES CNAME of sender reports.
    pub cname: String,
    /// A session with no request naming it and no RTCP for this long is torn down.
    pub session_timeout: Duration,
    pub auth: Option<Authenticator>,
    /// Sessions one connection may hold (each UDP track binds two sockets).
    pub max_sessions_per_conn: usize,
    /// Identifies this server run in the SDP's `o=` line.
    pub sdp_session_id: u64,
    /// Which client addresses are answered at all (`None`: every one). A refused peer gets
    /// 403 to every request, OPTIONS included: camgate's restream in protected mode answers
    /// loopback clients only.
    pub allow_peer: Option<fn(std::net::IpAddr) -> bool>,
}

/// The state every connection of one server shares.
pub struct Shared<S, U> {
    pub settings: Settings,
    pub source: S,
    pub registry: Registry<U>,
}

impl<S, U: Clone> Shared<S, U> {
    pub fn new(settings: Settings, source: S) -> Shared<S, U> {
        Shared {
            registry: Registry::new(settings.label),
            settings,
            source,
        }
    }
}

/// What the server layer must do with a request's outcome.
pub enum Step<U> {
    /// Write this answer.
    Reply(Response),
    /// Write this answer to a PLAY, then start sending to the session.
    Play(Response, Arc<Session<U>>),
    /// SETUP over UDP: bind an RTP/RTCP port pair on the connection's local address, then
    /// call `Conn::finish_udp_setup`.
    BindUdp(UdpSetup<U>),
}

/// A UDP SETUP waiting for its ports.
pub struct UdpSetup<U> {
    cseq: String,
    stream: String,
    track: usize,
    existing: Option<Arc<Session<U>>>,
    pub client_rtp: u16,
    pub client_rtcp: u16,
}

/// Where a request URL points.
enum Target {
    /// `*` or the server root.
    Server,
    Stream {
        name: String,
        info: StreamInfo,
        /// The track control segment, if the URL named one.
        track: Option<usize>,
    },
    Unknown,
}

/// The state of one control connection.
pub struct Conn {
    pub id: u64,
    pub peer: SocketAddr,
    pub local: SocketAddr,
    nonce: String,
    /// A `?token=` that let a request of this connection in: clients build the SETUP and
    /// PLAY URLs from `Content-Base`, which drops the query, so the token is checked again
    /// for those requests (against their own URI, so its scope still applies).
    token: Option<String>,
}

impl Conn {
    pub fn new(id: u64, peer: SocketAddr, local: SocketAddr) -> Conn {
        Conn {
            id,
            peer,
            local,
            nonce: new_nonce(),
            token: None,
        }
    }

    /// The stream a request names when the source should prepare it before the request is
    /// answered (`Source::prepare`): a DESCRIBE that passes the peer and credential checks.
    /// Anything else, and any request that will be refused, gets `None`, so an unauthorized
    /// client cannot make the source do work.
    pub fn prepare_target<S: Source, U: Clone>(
        &mut self,
        shared: &Shared<S, U>,
        req: &Request,
    ) -> Option<String> {
        if req.method != "DESCRIBE" || !self.peer_allowed(&shared.settings) {
            return None;
        }
        if let Some(auth) = &shared.settings.auth
            && !self.admitted(auth, req)
        {
            return None;
        }
        stream_name(&req.uri).map(str::to_owned)
    }

    fn peer_allowed(&self, settings: &Settings) -> bool {
        settings
            .allow_peer
            .is_none_or(|allow| allow(self.peer.ip().to_canonical()))
    }

    /// Whether `req` carries good credentials: an `Authorization` header, or else a token
    /// in its query (or the one this connection already showed), if the verifier takes
    /// tokens.
    fn admitted(&mut self, auth: &Authenticator, req: &Request) -> bool {
        self.check(auth, req) == AuthOutcome::Accepted
    }

    fn check(&mut self, auth: &Authenticator, req: &Request) -> AuthOutcome {
        let authorization = req.header("Authorization");
        let outcome = auth.check(&req.method, &req.uri, authorization, &self.nonce);
        if outcome != AuthOutcome::Missing {
            return outcome;
        }
        let Some(token) = query_token(&req.uri).or(self.token.as_deref()) else {
            return outcome;
        };
        if auth.verifier.token(&req.uri, token) {
            self.token = Some(token.to_owned());
            AuthOutcome::Accepted
        } else {
            AuthOutcome::Rejected
        }
    }

    /// Answers one request. Never panics; every failure is an RTSP status.
    pub fn handle<S: Source, U: Clone>(
        &mut self,
        shared: &Shared<S, U>,
        req: &Request,
        now: Instant,
    ) -> Step<U> {
        let Some(cseq) = req.header("CSeq") else {
            return Step::Reply(
                Response::new(400)
                    .header("Server", shared.settings.server_header.clone())
                    .with_body("text/plain", "missing CSeq\r\n"),
            );
        };
        let cseq = cseq.to_string();
        let step =
            if cseq.is_empty() || !cseq.bytes().all(|b| b.is_ascii_digit()) || cseq.len() > 10 {
                Step::Reply(Response::new(400).with_body("text/plain", "CSeq must be a number\r\n"))
            } else {
                self.dispatch(shared, req, &cseq, now)
            };
        let session = req.header("Session");
        match step {
            Step::Reply(r) => Step::Reply(self.finish(shared, &cseq, session, r)),
            Step::Play(r, s) => Step::Play(self.finish(shared, &cseq, session, r), s),
            Step::BindUdp(u) => Step::BindUdp(u),
        }
    }

    /// Adds CSeq and Server to an answer, and names the request's live session in it.
    fn finish<S, U: Clone>(
        &self,
        shared: &Shared<S, U>,
        cseq: &str,
        session: Option<&str>,
        resp: Response,
    ) -> Response {
        let mut out = Response::new(resp.status)
            .header("CSeq", cseq)
            .header("Server", shared.settings.server_header.clone());
        // A successful request on a live session names it in the answer (RFC 2326 12.37).
        if resp.status == 200
            && resp.get("Session").is_none()
            && let Some(id) = session.and_then(|v| v.split(';').next())
        {
            let id = id.trim();
            if shared.registry.get(id).is_some() {
                out = out.header("Session", session_header(shared, id));
            }
        }
        out.headers.extend(resp.headers);
        out.body = resp.body;
        out
    }

    fn dispatch<S: Source, U: Clone>(
        &mut self,
        shared: &Shared<S, U>,
        req: &Request,
        cseq: &str,
        now: Instant,
    ) -> Step<U> {
        let reply = |r| Step::Reply(r);
        if req.version != "RTSP/1.0" {
            return reply(Response::new(505));
        }
        if !self.peer_allowed(&shared.settings) {
            return reply(Response::new(403).with_body(
                "text/plain",
                "this server answers clients on its own machine only\r\n",
            ));
        }
        if let Some(auth) = &shared.settings.auth
            && req.method != "OPTIONS"
            && let Some(r) = self.refuse(shared.settings.label, auth, req)
        {
            return reply(r);
        }
        if let Some(options) = req.header("Require") {
            // We implement no RTSP extensions (RFC 2326 12.32).
            return reply(Response::new(551).header("Unsupported", options.to_string()));
        }
        // Any request naming a live session keeps it alive.
        let session = match req.header("Session") {
            None => None,
            Some(v) => {
                let id = v.split(';').next().unwrap_or_default().trim();
                match shared.registry.get(id) {
                    Some(s) => {
                        s.touch(now);
                        Some(s)
                    }
                    None => return reply(Response::new(454)),
                }
            }
        };
        let target = target(&shared.source, &req.uri);
        match req.method.as_str() {
            "OPTIONS" => reply(Response::new(200).header("Public", PUBLIC)),
            "DESCRIBE" => reply(self.describe(shared, req, target)),
            "SETUP" => self.setup(shared, req, cseq, target, session, now),
            "PLAY" => self.play(shared, target, session),
            "TEARDOWN" => reply(match session {
                None => Response::new(454),
                Some(s) => {
                    shared.registry.remove(&s.id, "TEARDOWN");
                    Response::new(200)
                }
            }),
            "GET_PARAMETER" | "SET_PARAMETER" => {
                // Keepalive only: we have no parameters to read or write.
                if req.body.iter().all(|b| b.is_ascii_whitespace()) {
                    reply(Response::new(200))
                } else {
                    reply(Response::new(451))
                }
            }
            "ANNOUNCE" | "RECORD" => reply(Response::new(405).header("Allow", PUBLIC)),
            _ => reply(Response::new(501).header("Public", PUBLIC)),
        }
    }

    /// The 401 for a request without good credentials, or `None` to let it pass.
    fn refuse(&mut self, label: &str, auth: &Authenticator, req: &Request) -> Option<Response> {
        let outcome = self.check(auth, req);
        if outcome == AuthOutcome::Accepted {
            return None;
        }
        if outcome == AuthOutcome::Rejected {
            tracing::info!(server = label, peer = %self.peer, method = %req.method,
                "rtsp: wrong credentials");
        }
        let mut r = Response::new(401);
        for c in auth.challenges(&self.nonce) {
            r = r.header("WWW-Authenticate", c);
        }
        Some(r)
    }

    /// `rtsp://host:port/stream/` as the client should see it.
    fn base_url(&self, stream: &str) -> String {
        format!("rtsp://{}/{stream}/", self.local)
    }

    fn describe<S, U: Clone>(
        &self,
        shared: &Shared<S, U>,
        req: &Request,
        target: Target,
    ) -> Response {
        let Target::Stream {
            name,
            info,
            track: None,
        } = target
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
        let body = sdp(&SessionInfo {
            name: &info.title,
            server_ip: self.local.ip(),
            session_id: shared.settings.sdp_session_id,
            tracks: &info.tracks,
        });
        Response::new(200)
            .header("Content-Base", self.base_url(&name))
            .with_body("application/sdp", body)
    }

    fn setup<S, U: Clone>(
        &mut self,
        shared: &Shared<S, U>,
        req: &Request,
        cseq: &str,
        target: Target,
        existing: Option<Arc<Session<U>>>,
        now: Instant,
    ) -> Step<U> {
        let reply = |r| Step::Reply(r);
        let Target::Stream { name, info, track } = target else {
            return reply(Response::new(404));
        };
        // The stream URL itself sets up its first track, as for a one-track camera.
        let track = track.unwrap_or(0);
        if track >= info.tracks.len() {
            return reply(Response::new(404));
        }
        if let Some(s) = &existing {
            // A session never aggregates another stream, and each track is set up once.
            if s.stream != name {
                return reply(Response::new(459));
            }
            if s.is_playing() || s.tracks().iter().any(|t| t.start.track == track) {
                return reply(Response::new(455));
            }
        }
        let Some(transport) = req.header("Transport") else {
            return reply(Response::new(400).with_body("text/plain", "missing Transport\r\n"));
        };
        let Some(wanted) = parse_transport(transport) else {
            return reply(Response::new(461));
        };
        let mine = shared.registry.of_connection(self.id);
        if existing.is_none() && mine.len() >= shared.settings.max_sessions_per_conn {
            return reply(Response::new(503).with_body("text/plain", "too many sessions\r\n"));
        }
        match wanted {
            TransportRequest::Tcp { interleaved } => {
                if let Some(s) = &existing {
                    // Its packets go down the connection that created it, over one transport.
                    if !s.is_tcp() {
                        return reply(Response::new(461));
                    }
                    if s.conn_id != self.id {
                        return reply(Response::new(455));
                    }
                }
                let used: Vec<u8> = mine
                    .iter()
                    .flat_map(|s| s.tracks())
                    .filter_map(|t| match t.transport {
                        TrackTransport::Tcp { rtp_channel, .. } => Some(rtp_channel),
                        TrackTransport::Udp { .. } => None,
                    })
                    .collect();
                let taken = |c: u8| used.iter().any(|u| *u == c || u.wrapping_add(1) == c);
                let (rtp, rtcp) = match interleaved {
                    Some((a, b)) if a == b || taken(a) || taken(b) => {
                        return reply(Response::new(461));
                    }
                    Some(pair) => pair,
                    None => match (0..=254u8).step_by(2).find(|c| !taken(*c) && !taken(c + 1)) {
                        Some(c) => (c, c + 1),
                        None => return reply(Response::new(461)),
                    },
                };
                let transport = TrackTransport::Tcp {
                    rtp_channel: rtp,
                    rtcp_channel: rtcp,
                };
                let answer = format!("RTP/AVP/TCP;unicast;interleaved={rtp}-{rtcp}");
                let (r, _) = self.create(shared, &name, track, existing, transport, answer, now);
                reply(r)
            }
            TransportRequest::Udp {
                client_rtp,
                client_rtcp,
            } => {
                if existing.as_ref().is_some_and(|s| s.is_tcp()) {
                    return reply(Response::new(461));
                }
                Step::BindUdp(UdpSetup {
                    cseq: cseq.to_string(),
                    stream: name,
                    track,
                    existing,
                    client_rtp,
                    client_rtcp,
                })
            }
        }
    }

    /// Completes a UDP SETUP with the ports bound for it (`None`: binding failed) and their
    /// sockets `io`. Returns the answer and, on success, the session.
    pub fn finish_udp_setup<S, U: Clone>(
        &mut self,
        shared: &Shared<S, U>,
        plan: UdpSetup<U>,
        bound: Option<(u16, u16, U)>,
        now: Instant,
    ) -> (Response, Option<Arc<Session<U>>>) {
        let Some((server_rtp, server_rtcp, io)) = bound else {
            let r = self.finish(shared, &plan.cseq, None, Response::new(500));
            return (r, None);
        };
        let (client_rtp, client_rtcp) = (plan.client_rtp, plan.client_rtcp);
        let transport = TrackTransport::Udp {
            client_rtp: SocketAddr::new(self.peer.ip(), client_rtp),
            client_rtcp: SocketAddr::new(self.peer.ip(), client_rtcp),
            io,
        };
        let answer = format!(
            "RTP/AVP;unicast;client_port={client_rtp}-{client_rtcp};\
             server_port={server_rtp}-{server_rtcp};source={}",
            self.local.ip()
        );
        let (r, s) = self.create(
            shared,
            &plan.stream,
            plan.track,
            plan.existing,
            transport,
            answer,
            now,
        );
        (self.finish(shared, &plan.cseq, None, r), Some(s))
    }

    /// Adds the track to `existing` or to a new session; answers with its transport.
    #[allow(clippy::too_many_arguments)]
    fn create<S, U: Clone>(
        &self,
        shared: &Shared<S, U>,
        stream: &str,
        track: usize,
        existing: Option<Arc<Session<U>>>,
        transport: TrackTransport<U>,
        answer: String,
        now: Instant,
    ) -> (Response, Arc<Session<U>>) {
        let start = TrackStart {
            track,
            ssrc: rand::random(),
            seq: rand::random(),
            rtptime: rand::random(),
        };
        let answer = format!("{answer};ssrc={:08X}", start.ssrc);
        let setup = SetupTrack {
            start,
            transport,
            seq: start.seq,
            rtptime: start.rtptime,
        };
        let session = match existing {
            Some(s) => {
                s.add_track(setup);
                s
            }
            None => {
                let id = format!("{:016X}", rand::random::<u64>());
                let s = Arc::new(Session::new(id, stream.to_string(), self.id, now));
                s.add_track(setup);
                shared.registry.insert(s.clone());
                s
            }
        };
        let r = Response::new(200)
            .header("Transport", answer)
            .header("Session", session_header(shared, &session.id));
        (r, session)
    }

    fn play<S, U: Clone>(
        &mut self,
        shared: &Shared<S, U>,
        target: Target,
        session: Option<Arc<Session<U>>>,
    ) -> Step<U> {
        let Some(session) = session else {
            return Step::Reply(Response::new(454));
        };
        match target {
            Target::Stream { name, .. } if name != session.stream => {
                return Step::Reply(Response::new(459));
            }
            Target::Stream { .. } => {}
            Target::Server | Target::Unknown => return Step::Reply(Response::new(404)),
        }
        if session.is_tcp() && session.conn_id != self.id {
            // Its packets go down another connection; PLAY belongs there.
            return Step::Reply(Response::new(455));
        }
        let base = self.base_url(&session.stream);
        let info: Vec<String> = session
            .tracks()
            .iter()
            .map(|t| {
                format!(
                    "url={base}{};seq={};rtptime={}",
                    track_control(t.start.track),
                    t.seq,
                    t.rtptime
                )
            })
            .collect();
        let already = session.set_playing();
        let r = Response::new(200)
            .header("Session", session_header(shared, &session.id))
            .header("Range", "npt=0.000-")
            .header("RTP-Info", info.join(","));
        if already {
            Step::Reply(r)
        } else {
            Step::Play(r, session)
        }
    }

    /// Interleaved data from the client (RTCP receiver reports): a sign of life.
    pub fn on_data<S, U: Clone>(&self, shared: &Shared<S, U>, channel: u8, now: Instant) {
        for s in shared.registry.of_connection(self.id) {
            let ours = s.tracks().iter().any(|t| {
                matches!(t.transport, TrackTransport::Tcp { rtcp_channel, .. } if rtcp_channel == channel)
            });
            if ours {
                s.touch(now);
            }
        }
    }

    /// The connection is gone: TCP sessions die with it; UDP sessions live until TEARDOWN or
    /// their timeout (RFC 2326 lets a client come back on another connection), unless `all`.
    pub fn close<S, U: Clone>(&self, shared: &Shared<S, U>, all: bool) {
        for s in shared.registry.of_connection(self.id) {
            if all || s.is_tcp() {
                shared.registry.remove(&s.id, "connection closed");
            }
        }
    }
}

fn session_header<S, U: Clone>(shared: &Shared<S, U>, id: &str) -> String {
    format!(
        "{id};timeout={}",
        shared.settings.session_timeout.as_secs().max(1)
    )
}

/// The path of a request URI (`rtsp://host[:port]/a/b?q` or a bare `/a/b`) without its
/// query; `None` for anything else.
fn uri_path(uri: &str) -> Option<&str> {
    let rest = uri
        .strip_prefix("rtsp://")
        .or_else(|| uri.strip_prefix("rtsps://"))
        .or_else(|| uri.strip_prefix("RTSP://"));
    let path = match rest {
        Some(r) => r.find(['/', '?', '#']).map(|i| &r[i..]).unwrap_or("/"),
        None if uri.starts_with('/') => uri,
        None => return None,
    };
    path.split(['?', '#']).next()
}

/// The stream a URI names: its first path segment.
pub fn stream_name(uri: &str) -> Option<&str> {
    uri_path(uri)?.split('/').find(|s| !s.is_empty())
}

/// The value of `token=` in a URI's query, if any.
fn query_token(uri: &str) -> Option<&str> {
    let query = uri.split_once('?')?.1.split('#').next()?;
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix("token="))
        .filter(|t| !t.is_empty())
}

/// Resolves a request URI: `*`, `rtsp://host[:port]/stream[/trackID=N]`, or a bare path.
fn target<S: Source>(source: &S, uri: &str) -> Target {
    if uri == "*" {
        return Target::Server;
    }
    let Some(path) = uri_path(uri) else {
        return Target::Unknown;
    };
    let mut segs = path.split('/').filter(|s| !s.is_empty());
    let Some(name) = segs.next() else {
        return Target::Server;
    };
    let Some(info) = source.describe(name) else {
        return Target::Unknown;
    };
    let track = match (segs.next(), segs.next()) {
        (None, _) => None,
        (Some(t), None) => match (0..info.tracks.len()).find(|i| track_control(*i) == t) {
            Some(i) => Some(i),
            None => return Target::Unknown,
        },
        _ => return Target::Unknown,
    };
    Target::Stream {
        name: name.to_string(),
        info,
        track,
    }
}

#[cfg(test)]
#[path = "control_tests.rs"]
mod tests;
