//! The control connection's request state machine, driven without a socket or a task.

use super::*;
use crate::auth::{Schemes, SingleUser, Verifier, md5_hex};
use crate::message::{Message, parse_message};
use crate::sdp::Track;
use crate::source::{Burst, Next, Play, PlayStart};

const REALM: &str = "camgate-sim";

/// Streams `cam1`, `cam2` (one H.264 track each) and `duo` (video and audio).
struct Cams;

struct Silent;

impl Play for Silent {
    async fn next(&mut self, _out: &mut Burst) -> Next {
        std::future::pending().await
    }
}

impl Source for Cams {
    type Play = Silent;

    fn describe(&self, name: &str) -> Option<StreamInfo> {
        let video = Track::h264(96, &[0x67, 0x42, 0xC0, 0x1E], &[0x68, 0xCE]);
        let tracks = match name {
            "cam1" | "cam2" => vec![video],
            "duo" => vec![video, Track::g711(true)],
            _ => return None,
        };
        Some(StreamInfo {
            title: format!("test {name}"),
            tracks,
        })
    }

    fn play(&self, _start: &PlayStart) -> Option<Silent> {
        Some(Silent)
    }
}

fn settings(auth: Option<Authenticator>) -> Settings {
    Settings {
        label: "test",
        server_header: "camgate-test/1".into(),
        cname: "test".into(),
        session_timeout: Duration::from_secs(60),
        auth,
        max_sessions_per_conn: 8,
        allow_peer: None,
        sdp_session_id: 42,
    }
}

fn user_auth(schemes: Schemes) -> Option<Authenticator> {
    let user = SingleUser {
        user: "u".into(),
        password: "p".into(),
    };
    Some(Authenticator::new(REALM, schemes, Arc::new(user)))
}

struct T {
    c: Conn,
    shared: Shared<Cams, ()>,
    /// Sessions whose sender the last PLAY started.
    started: Vec<String>,
}

fn conn_with(auth: Option<Authenticator>) -> T {
    let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    let local: SocketAddr = "127.0.0.1:8555".parse().unwrap();
    T {
        c: Conn::new(1, peer, local),
        shared: Shared::new(settings(auth), Cams),
        started: Vec::new(),
    }
}

fn req(s: &str) -> Request {
    let raw = format!("{s}\r\n\r\n");
    match parse_message(raw.as_bytes()).unwrap().unwrap().0 {
        Message::Request(r) => r,
        other => panic!("{other:?}"),
    }
}

fn handle(t: &mut T, r: &Request) -> Response {
    match t.c.handle(&t.shared, r, Instant::now()) {
        Step::Reply(r) => r,
        Step::Play(r, s) => {
            t.started.push(s.id.clone());
            r
        }
        Step::BindUdp(plan) => {
            t.c.finish_udp_setup(&t.shared, plan, Some((6000, 6001, ())), Instant::now())
                .0
        }
    }
}

fn send(t: &mut T, s: &str) -> Response {
    handle(t, &req(s))
}

fn session_id(r: &Response) -> String {
    r.get("Session")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string()
}

const URL: &str = "rtsp://127.0.0.1:8555/cam1";

#[test]
fn cseq_is_required_and_echoed() {
    let mut c = conn_with(None);
    let r = send(&mut c, "OPTIONS * RTSP/1.0");
    assert_eq!(r.status, 400);
    assert_eq!(r.get("CSeq"), None);
    let r = send(&mut c, "OPTIONS * RTSP/1.0\r\nCSeq: abc");
    assert_eq!((r.status, r.get("CSeq")), (400, Some("abc")));
    let r = send(&mut c, "OPTIONS * RTSP/1.0\r\nCSeq: 41");
    assert_eq!((r.status, r.get("CSeq")), (200, Some("41")));
    assert!(r.get("Public").unwrap().contains("GET_PARAMETER"));
    let r = send(&mut c, "OPTIONS * RTSP/2.0\r\nCSeq: 42");
    assert_eq!((r.status, r.get("CSeq")), (505, Some("42")));
    let r = send(&mut c, "FROB * RTSP/1.0\r\nCSeq: 43");
    assert_eq!(r.status, 501);
    let r = send(&mut c, &format!("RECORD {URL} RTSP/1.0\r\nCSeq: 44"));
    assert_eq!(r.status, 405);
}

#[test]
fn describe_knows_its_cameras() {
    let mut c = conn_with(None);
    let r = send(
        &mut c,
        &format!("DESCRIBE {URL} RTSP/1.0\r\nCSeq: 1\r\nAccept: application/sdp"),
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.get("Content-Base"), Some("rtsp://127.0.0.1:8555/cam1/"));
    assert_eq!(r.get("Content-Type"), Some("application/sdp"));
    let body = String::from_utf8(r.body.to_vec()).unwrap();
    assert!(body.contains("sprop-parameter-sets="), "{body}");
    for bad in [
        "/cam3",
        "/cam0",
        "/cam01",
        "/camera1",
        "/cam1/x/y",
        "/",
        "cam1",
    ] {
        let r = send(
            &mut c,
            &format!("DESCRIBE rtsp://127.0.0.1:8555{bad} RTSP/1.0\r\nCSeq: 2"),
        );
        assert_eq!(r.status, 404, "{bad}");
    }
    let r = send(
        &mut c,
        &format!("DESCRIBE {URL} RTSP/1.0\r\nCSeq: 3\r\nAccept: text/html"),
    );
    assert_eq!(r.status, 406);
}

#[test]
fn session_state_machine() {
    let mut c = conn_with(None);
    // PLAY and TEARDOWN need a session; unknown sessions are 454.
    let r = send(&mut c, &format!("PLAY {URL} RTSP/1.0\r\nCSeq: 1"));
    assert_eq!(r.status, 454);
    let r = send(
        &mut c,
        &format!("PLAY {URL} RTSP/1.0\r\nCSeq: 2\r\nSession: nope"),
    );
    assert_eq!(r.status, 454);
    let r = send(&mut c, &format!("TEARDOWN {URL} RTSP/1.0\r\nCSeq: 3"));
    assert_eq!(r.status, 454);
    let r = send(
        &mut c,
        &format!("GET_PARAMETER {URL} RTSP/1.0\r\nCSeq: 3\r\nSession: nope"),
    );
    assert_eq!(r.status, 454);
    // SETUP needs a Transport we support.
    let r = send(
        &mut c,
        &format!("SETUP {URL}/trackID=0 RTSP/1.0\r\nCSeq: 4"),
    );
    assert_eq!(r.status, 400);
    let r = send(
        &mut c,
        &format!("SETUP {URL}/trackID=0 RTSP/1.0\r\nCSeq: 5\r\nTransport: RTP/AVP;multicast"),
    );
    assert_eq!(r.status, 461);
    let r = send(
        &mut c,
        &format!(
            "SETUP {URL}/trackID=0 RTSP/1.0\r\nCSeq: 6\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1"
        ),
    );
    assert_eq!(r.status, 200);
    assert!(
        r.get("Transport")
            .unwrap()
            .starts_with("RTP/AVP/TCP;unicast;interleaved=0-1;ssrc=")
    );
    assert!(r.get("Session").unwrap().ends_with(";timeout=60"));
    let id = session_id(&r);
    assert_eq!(c.shared.registry.count("cam1"), 1);
    // The one stream is set up; another camera cannot join the session.
    let r = send(
        &mut c,
        &format!(
            "SETUP {URL}/trackID=0 RTSP/1.0\r\nCSeq: 7\r\nSession: {id}\r\nTransport: RTP/AVP/TCP;unicast"
        ),
    );
    assert_eq!(r.status, 455);
    let r = send(
        &mut c,
        &format!(
            "SETUP rtsp://127.0.0.1:8555/cam2/trackID=0 RTSP/1.0\r\nCSeq: 8\r\nSession: {id}\r\nTransport: RTP/AVP/TCP;unicast"
        ),
    );
    assert_eq!(r.status, 459);
    // A second session on the same connection may not reuse channels 0-1.
    let r = send(
        &mut c,
        &format!(
            "SETUP {URL}/trackID=0 RTSP/1.0\r\nCSeq: 9\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1"
        ),
    );
    assert_eq!(r.status, 461);
    let r = send(
        &mut c,
        &format!("PLAY rtsp://127.0.0.1:8555/cam2 RTSP/1.0\r\nCSeq: 10\r\nSession: {id}"),
    );
    assert_eq!(r.status, 459);
    let r = send(
        &mut c,
        &format!("PLAY {URL} RTSP/1.0\r\nCSeq: 11\r\nSession: {id}"),
    );
    assert_eq!(r.status, 200);
    let info = r.get("RTP-Info").unwrap();
    assert!(
        info.starts_with("url=rtsp://127.0.0.1:8555/cam1/trackID=0;seq="),
        "{info}"
    );
    assert_eq!(r.get("Range"), Some("npt=0.000-"));
    assert_eq!(c.shared.registry.count_playing("cam1"), 1);
    // The sender starts after this answer (tests/server.rs sees its packets).
    assert_eq!(c.started, vec![id.clone()]);
    // A second PLAY answers again but starts no second sender.
    let r = send(
        &mut c,
        &format!("PLAY {URL} RTSP/1.0\r\nCSeq: 11\r\nSession: {id}"),
    );
    assert_eq!(r.status, 200);
    assert_eq!(c.started.len(), 1);
    // Keepalives.
    let r = send(
        &mut c,
        &format!("GET_PARAMETER {URL} RTSP/1.0\r\nCSeq: 12\r\nSession: {id}"),
    );
    assert_eq!(r.status, 200);
    let r = send(
        &mut c,
        &format!("SET_PARAMETER {URL} RTSP/1.0\r\nCSeq: 13\r\nSession: {id};timeout=60"),
    );
    assert_eq!(r.status, 200);
    let r = send(
        &mut c,
        &format!("TEARDOWN {URL} RTSP/1.0\r\nCSeq: 14\r\nSession: {id}"),
    );
    assert_eq!(r.status, 200);
    assert_eq!(c.shared.registry.count("cam1"), 0);
    let r = send(
        &mut c,
        &format!("PLAY {URL} RTSP/1.0\r\nCSeq: 15\r\nSession: {id}"),
    );
    assert_eq!(r.status, 454);
}

#[test]
fn udp_setup_binds_a_port_pair() {
    let mut c = conn_with(None);
    let r = send(
        &mut c,
        &format!(
            "SETUP {URL} RTSP/1.0\r\nCSeq: 1\r\nTransport: RTP/AVP;unicast;client_port=5000-5001"
        ),
    );
    assert_eq!(r.status, 200);
    let t = r.get("Transport").unwrap();
    assert!(
        t.starts_with("RTP/AVP;unicast;client_port=5000-5001;server_port="),
        "{t}"
    );
    c.c.close(&c.shared, false);
    // UDP sessions outlive their control connection until TEARDOWN or timeout.
    assert_eq!(c.shared.registry.count("cam1"), 1);
    c.c.close(&c.shared, true);
    assert_eq!(c.shared.registry.count("cam1"), 0);
}

#[test]
fn authentication_is_enforced() {
    let mut c = conn_with(user_auth(Schemes::Any));
    // OPTIONS stays open, as on most cameras.
    assert_eq!(send(&mut c, "OPTIONS * RTSP/1.0\r\nCSeq: 1").status, 200);
    let r = send(&mut c, &format!("DESCRIBE {URL} RTSP/1.0\r\nCSeq: 2"));
    assert_eq!(r.status, 401);
    let challenges: Vec<&str> = r
        .headers
        .iter()
        .filter(|(k, _)| k == "WWW-Authenticate")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(challenges.len(), 2);
    assert!(challenges[0].starts_with("Digest ") && challenges[1].starts_with("Basic "));
    let nonce = challenges[0]
        .split("nonce=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let digest = |pass: &str| {
        let ha1 = md5_hex(&format!("u:{REALM}:{pass}"));
        let ha2 = md5_hex(&format!("DESCRIBE:{URL}"));
        let resp = md5_hex(&format!("{ha1}:{nonce}:{ha2}"));
        format!(
            "Digest username=\"u\", realm=\"{REALM}\", nonce=\"{nonce}\", uri=\"{URL}\", response=\"{resp}\""
        )
    };
    let r = send(
        &mut c,
        &format!(
            "DESCRIBE {URL} RTSP/1.0\r\nCSeq: 3\r\nAuthorization: {}",
            digest("x")
        ),
    );
    assert_eq!(r.status, 401);
    let r = send(
        &mut c,
        &format!(
            "DESCRIBE {URL} RTSP/1.0\r\nCSeq: 4\r\nAuthorization: {}",
            digest("p")
        ),
    );
    assert_eq!(r.status, 200);
    // Basic "u:p".
    let r = send(
        &mut c,
        &format!("DESCRIBE {URL} RTSP/1.0\r\nCSeq: 5\r\nAuthorization: Basic dTpw"),
    );
    assert_eq!(r.status, 200);
    // Auth is checked before anything else, so an unauthenticated client learns nothing.
    let r = send(&mut c, "DESCRIBE rtsp://h/cam99 RTSP/1.0\r\nCSeq: 6");
    assert_eq!(r.status, 401);
}

#[test]
fn require_is_refused_and_sessions_are_named_in_answers() {
    let mut c = conn_with(None);
    let r = send(
        &mut c,
        &format!("DESCRIBE {URL} RTSP/1.0\r\nCSeq: 1\r\nRequire: play.basic"),
    );
    assert_eq!((r.status, r.get("Unsupported")), (551, Some("play.basic")));
    let r = send(
        &mut c,
        &format!("SETUP {URL} RTSP/1.0\r\nCSeq: 2\r\nTransport: RTP/AVP/TCP;unicast"),
    );
    let id = session_id(&r);
    let r = send(
        &mut c,
        &format!("GET_PARAMETER {URL} RTSP/1.0\r\nCSeq: 3\r\nSession: {id}"),
    );
    assert_eq!(r.get("Session"), Some(format!("{id};timeout=60").as_str()));
}

/// Requests built from the pieces clients really send, in any combination, always get an
/// RTSP status and never a panic.
#[test]
fn arbitrary_requests_never_panic() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};
    use std::cell::RefCell;

    let c = conn_with(user_auth(Schemes::Any));
    let c = RefCell::new(c);
    let method = prop_oneof![
        Just("OPTIONS".to_string()),
        Just("DESCRIBE".to_string()),
        Just("SETUP".to_string()),
        Just("PLAY".to_string()),
        Just("TEARDOWN".to_string()),
        Just("GET_PARAMETER".to_string()),
        Just("SET_PARAMETER".to_string()),
        "[A-Z_]{1,12}",
    ];
    let uri = prop_oneof![
        Just("*".to_string()),
        Just(URL.to_string()),
        Just(format!("{URL}/trackID=0")),
        "rtsp://[a-z0-9.:]{0,20}/[a-zA-Z0-9=/%?#]{0,30}",
        "\\PC{0,40}",
    ];
    let value = prop_oneof![
        Just("RTP/AVP/TCP;unicast;interleaved=0-1".to_string()),
        Just("RTP/AVP;unicast;client_port=5000-5001".to_string()),
        Just("Basic dTpw".to_string()),
        Just("Digest username=\"u\", nonce=\"x\", response=\"y\"".to_string()),
        "[0-9]{1,12}",
        "[ -~]{0,60}",
    ];
    let name = prop_oneof![
        Just("CSeq"),
        Just("Session"),
        Just("Transport"),
        Just("Authorization"),
        Just("Accept"),
        Just("Range"),
        Just("X-Other"),
    ];
    let headers = proptest::collection::vec((name, value), 0..6);
    let body = proptest::collection::vec(any::<u8>(), 0..16);
    let mut runner = TestRunner::new(Config {
        cases: 300,
        ..Config::default()
    });
    runner
        .run(
            &(method, uri, headers, body),
            |(method, uri, headers, body)| {
                let req = Request {
                    method,
                    uri,
                    version: "RTSP/1.0".into(),
                    headers: headers
                        .into_iter()
                        .map(|(k, v)| (k.to_string(), v))
                        .collect(),
                    body: body.into(),
                };
                let r = handle(&mut c.borrow_mut(), &req);
                prop_assert!((200..600).contains(&r.status));
                let bytes = r.to_bytes();
                prop_assert!(bytes.starts_with(b"RTSP/1.0 "));
                Ok(())
            },
        )
        .unwrap();
}

#[test]
fn a_session_aggregates_the_tracks_of_one_stream() {
    let mut c = conn_with(None);
    let duo = "rtsp://127.0.0.1:8555/duo";
    let r = send(&mut c, &format!("DESCRIBE {duo} RTSP/1.0\r\nCSeq: 1"));
    let body = String::from_utf8(r.body.to_vec()).unwrap();
    assert!(body.contains("a=control:trackID=1\r\n"), "{body}");
    let r = send(
        &mut c,
        &format!("SETUP {duo}/trackID=0 RTSP/1.0\r\nCSeq: 2\r\nTransport: RTP/AVP/TCP;unicast"),
    );
    assert!(r.get("Transport").unwrap().contains("interleaved=0-1;"));
    let id = session_id(&r);
    let setup = |c: &mut T, track: &str, cseq: u32, transport: &str| {
        send(
            c,
            &format!(
                "SETUP {duo}/{track} RTSP/1.0\r\nCSeq: {cseq}\r\nSession: {id}\r\nTransport: {transport}"
            ),
        )
    };
    // No such track; a UDP track in a TCP session; the same track twice.
    assert_eq!(
        setup(&mut c, "trackID=2", 3, "RTP/AVP/TCP;unicast").status,
        404
    );
    let udp = "RTP/AVP;unicast;client_port=5000-5001";
    assert_eq!(setup(&mut c, "trackID=1", 4, udp).status, 461);
    assert_eq!(
        setup(&mut c, "trackID=0", 5, "RTP/AVP/TCP;unicast").status,
        455
    );
    let r = setup(&mut c, "trackID=1", 6, "RTP/AVP/TCP;unicast");
    assert_eq!(r.status, 200);
    assert!(r.get("Transport").unwrap().contains("interleaved=2-3;"));
    assert_eq!(session_id(&r), id);
    assert_eq!(c.shared.registry.count("duo"), 1);
    let r = send(
        &mut c,
        &format!("PLAY {duo} RTSP/1.0\r\nCSeq: 7\r\nSession: {id}"),
    );
    let info = r.get("RTP-Info").unwrap();
    assert!(
        info.contains("/duo/trackID=0;seq=")
            && info.contains(",url=rtsp://127.0.0.1:8555/duo/trackID=1;seq="),
        "{info}"
    );
    // Once playing, a session takes no more tracks.
    assert_eq!(
        setup(&mut c, "trackID=1", 8, "RTP/AVP/TCP;unicast").status,
        455
    );
}

#[test]
fn interleaved_channels_at_the_top_of_the_range_do_not_overflow() {
    let mut c = conn_with(None);
    let r = send(
        &mut c,
        &format!(
            "SETUP {URL} RTSP/1.0\r\nCSeq: 1\r\nTransport: RTP/AVP/TCP;unicast;interleaved=255-0"
        ),
    );
    assert_eq!(r.status, 200);
    // Channel 0 is taken (as RTCP of 255); the next free pair is 2-3.
    let r = send(
        &mut c,
        &format!("SETUP {URL} RTSP/1.0\r\nCSeq: 2\r\nTransport: RTP/AVP/TCP;unicast"),
    );
    assert!(
        r.get("Transport").unwrap().contains("interleaved=2-3;"),
        "{r:?}"
    );
    let r = send(
        &mut c,
        &format!(
            "SETUP {URL} RTSP/1.0\r\nCSeq: 3\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1"
        ),
    );
    assert_eq!(r.status, 461);
}

#[test]
fn sessions_per_connection_are_bounded() {
    let mut c = conn_with(None);
    for i in 0..8 {
        let r = send(
            &mut c,
            &format!("SETUP {URL} RTSP/1.0\r\nCSeq: {i}\r\nTransport: RTP/AVP/TCP;unicast"),
        );
        assert_eq!(r.status, 200);
    }
    let r = send(
        &mut c,
        &format!("SETUP {URL} RTSP/1.0\r\nCSeq: 9\r\nTransport: RTP/AVP/TCP;unicast"),
    );
    assert_eq!(r.status, 503);
}

/// Accepts Basic `u`/`p`, and `?token=good` for cam1 only.
struct Tokens;

impl Verifier for Tokens {
    fn password(&self, _uri: &str, user: &str, password: &str) -> bool {
        user == "u" && password == "p"
    }
    fn digest_passwords(&self, _uri: &str, _user: &str) -> Vec<String> {
        Vec::new()
    }
    fn token(&self, uri: &str, token: &str) -> bool {
        token == "good" && stream_name(uri) == Some("cam1")
    }
}

#[test]
fn a_query_token_opens_the_connection_for_its_stream() {
    let auth = Authenticator::new(REALM, Schemes::Basic, Arc::new(Tokens));
    let mut c = conn_with(Some(auth));
    let describe = |q: &str| format!("DESCRIBE {URL}{q} RTSP/1.0\r\nCSeq: 1");
    // Before any token, a request without credentials is challenged.
    assert_eq!(send(&mut c, &describe("")).status, 401);
    assert_eq!(send(&mut c, &describe("?token=bad")).status, 401);
    assert!(
        c.c.prepare_target(&c.shared, &req(&describe("?token=bad")))
            .is_none()
    );
    assert_eq!(
        c.c.prepare_target(&c.shared, &req(&describe("?a=1&token=good")))
            .as_deref(),
        Some("cam1")
    );
    assert_eq!(send(&mut c, &describe("?a=1&token=good")).status, 200);
    // SETUP on the Content-Base URL has no query: the connection's token is checked again.
    let r = send(
        &mut c,
        &format!(
            "SETUP {URL}/trackID=0 RTSP/1.0\r\nCSeq: 2\r\nTransport: RTP/AVP/TCP;interleaved=0-1"
        ),
    );
    assert_eq!(r.status, 200);
    // ...against the request's own stream: the token does not open cam2.
    let r = send(
        &mut c,
        "DESCRIBE rtsp://127.0.0.1:8555/cam2 RTSP/1.0\r\nCSeq: 3",
    );
    assert_eq!(r.status, 401);
    // Another connection has shown no token.
    let mut other = conn_with(Some(Authenticator::new(
        REALM,
        Schemes::Basic,
        Arc::new(Tokens),
    )));
    assert_eq!(send(&mut other, &describe("")).status, 401);
}

#[test]
fn a_refused_peer_gets_403_to_everything() {
    fn loopback(ip: std::net::IpAddr) -> bool {
        ip.is_loopback()
    }
    let peer: SocketAddr = "192.168.1.20:40000".parse().unwrap();
    let local: SocketAddr = "192.168.1.2:8554".parse().unwrap();
    let shared: Shared<Cams, ()> = Shared::new(
        Settings {
            allow_peer: Some(loopback),
            ..settings(None)
        },
        Cams,
    );
    let mut t = T {
        c: Conn::new(1, peer, local),
        shared,
        started: Vec::new(),
    };
    for m in ["OPTIONS *", &format!("DESCRIBE {URL}")] {
        let r = send(&mut t, &format!("{m} RTSP/1.0\r\nCSeq: 1"));
        assert_eq!(r.status, 403, "{m}");
        assert_eq!(r.get("CSeq"), Some("1"));
    }
    assert!(
        t.c.prepare_target(
            &t.shared,
            &req(&format!("DESCRIBE {URL} RTSP/1.0\r\nCSeq: 2"))
        )
        .is_none()
    );
    // The same server answers a loopback peer, also as an IPv4-mapped IPv6 address.
    for peer in ["127.0.0.1:40000", "[::ffff:127.0.0.1]:40000"] {
        t.c = Conn::new(2, peer.parse().unwrap(), local);
        let r = send(&mut t, &format!("DESCRIBE {URL} RTSP/1.0\r\nCSeq: 3"));
        assert_eq!(r.status, 200, "{peer}");
    }
}
