//! The control connection's request state machine, driven without a socket.

use super::*;
use crate::config::{AuthScheme, Credentials};
use crate::rtsp::auth::{REALM, md5_hex};
use crate::rtsp::message::parse_message;
use crate::{SimConfig, server::Shared};
use std::time::Duration;

async fn conn_with(config: SimConfig) -> (Conn, mpsc::Receiver<Bytes>) {
    let shared = Arc::new(Shared::new(config).await.unwrap());
    let (tx, rx) = mpsc::channel(OUT_QUEUE);
    let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    let local: SocketAddr = "127.0.0.1:8555".parse().unwrap();
    (Conn::new(shared, 1, peer, local, tx), rx)
}

fn tiny() -> SimConfig {
    SimConfig {
        cameras: 2,
        width: 64,
        height: 48,
        fps: 10,
        clip: Duration::from_secs(1),
        ..SimConfig::default()
    }
}

fn req(s: &str) -> Request {
    let raw = format!("{s}\r\n\r\n");
    match parse_message(raw.as_bytes()).unwrap().unwrap().0 {
        Message::Request(r) => r,
        other => panic!("{other:?}"),
    }
}

async fn send(c: &mut Conn, s: &str) -> Response {
    let r = c.handle(&req(s)).await;
    c.after_response();
    r
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

#[tokio::test]
async fn cseq_is_required_and_echoed() {
    let (mut c, _rx) = conn_with(tiny()).await;
    let r = send(&mut c, "OPTIONS * RTSP/1.0").await;
    assert_eq!(r.status, 400);
    assert_eq!(r.get("CSeq"), None);
    let r = send(&mut c, "OPTIONS * RTSP/1.0\r\nCSeq: abc").await;
    assert_eq!((r.status, r.get("CSeq")), (400, Some("abc")));
    let r = send(&mut c, "OPTIONS * RTSP/1.0\r\nCSeq: 41").await;
    assert_eq!((r.status, r.get("CSeq")), (200, Some("41")));
    assert!(r.get("Public").unwrap().contains("GET_PARAMETER"));
    let r = send(&mut c, "OPTIONS * RTSP/2.0\r\nCSeq: 42").await;
    assert_eq!((r.status, r.get("CSeq")), (505, Some("42")));
    let r = send(&mut c, "FROB * RTSP/1.0\r\nCSeq: 43").await;
    assert_eq!(r.status, 501);
    let r = send(&mut c, &format!("RECORD {URL} RTSP/1.0\r\nCSeq: 44")).await;
    assert_eq!(r.status, 405);
}

#[tokio::test]
async fn describe_knows_its_cameras() {
    let (mut c, _rx) = conn_with(tiny()).await;
    let r = send(
        &mut c,
        &format!("DESCRIBE {URL} RTSP/1.0\r\nCSeq: 1\r\nAccept: application/sdp"),
    )
    .await;
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
        )
        .await;
        assert_eq!(r.status, 404, "{bad}");
    }
    let r = send(
        &mut c,
        &format!("DESCRIBE {URL} RTSP/1.0\r\nCSeq: 3\r\nAccept: text/html"),
    )
    .await;
    assert_eq!(r.status, 406);
}

#[tokio::test]
async fn session_state_machine() {
    let (mut c, mut rx) = conn_with(tiny()).await;
    // PLAY and TEARDOWN need a session; unknown sessions are 454.
    let r = send(&mut c, &format!("PLAY {URL} RTSP/1.0\r\nCSeq: 1")).await;
    assert_eq!(r.status, 454);
    let r = send(
        &mut c,
        &format!("PLAY {URL} RTSP/1.0\r\nCSeq: 2\r\nSession: nope"),
    )
    .await;
    assert_eq!(r.status, 454);
    let r = send(&mut c, &format!("TEARDOWN {URL} RTSP/1.0\r\nCSeq: 3")).await;
    assert_eq!(r.status, 454);
    let r = send(
        &mut c,
        &format!("GET_PARAMETER {URL} RTSP/1.0\r\nCSeq: 3\r\nSession: nope"),
    )
    .await;
    assert_eq!(r.status, 454);
    // SETUP needs a Transport we support.
    let r = send(
        &mut c,
        &format!("SETUP {URL}/trackID=0 RTSP/1.0\r\nCSeq: 4"),
    )
    .await;
    assert_eq!(r.status, 400);
    let r = send(
        &mut c,
        &format!("SETUP {URL}/trackID=0 RTSP/1.0\r\nCSeq: 5\r\nTransport: RTP/AVP;multicast"),
    )
    .await;
    assert_eq!(r.status, 461);
    let r = send(&mut c, &format!("SETUP {URL}/trackID=0 RTSP/1.0\r\nCSeq: 6\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1")).await;
    assert_eq!(r.status, 200);
    assert!(
        r.get("Transport")
            .unwrap()
            .starts_with("RTP/AVP/TCP;unicast;interleaved=0-1;ssrc=")
    );
    assert!(r.get("Session").unwrap().ends_with(";timeout=60"));
    let id = session_id(&r);
    assert_eq!(c.shared.registry.count(1), 1);
    // The one stream is set up; another camera cannot join the session.
    let r = send(&mut c, &format!("SETUP {URL}/trackID=0 RTSP/1.0\r\nCSeq: 7\r\nSession: {id}\r\nTransport: RTP/AVP/TCP;unicast")).await;
    assert_eq!(r.status, 455);
    let r = send(&mut c, &format!("SETUP rtsp://127.0.0.1:8555/cam2/trackID=0 RTSP/1.0\r\nCSeq: 8\r\nSession: {id}\r\nTransport: RTP/AVP/TCP;unicast")).await;
    assert_eq!(r.status, 459);
    // A second session on the same connection may not reuse channels 0-1.
    let r = send(&mut c, &format!("SETUP {URL}/trackID=0 RTSP/1.0\r\nCSeq: 9\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1")).await;
    assert_eq!(r.status, 461);
    let r = send(
        &mut c,
        &format!("PLAY rtsp://127.0.0.1:8555/cam2 RTSP/1.0\r\nCSeq: 10\r\nSession: {id}"),
    )
    .await;
    assert_eq!(r.status, 459);
    let r = send(
        &mut c,
        &format!("PLAY {URL} RTSP/1.0\r\nCSeq: 11\r\nSession: {id}"),
    )
    .await;
    assert_eq!(r.status, 200);
    let info = r.get("RTP-Info").unwrap();
    assert!(
        info.starts_with("url=rtsp://127.0.0.1:8555/cam1/trackID=0;seq="),
        "{info}"
    );
    assert_eq!(r.get("Range"), Some("npt=0.000-"));
    assert_eq!(c.shared.registry.count_playing(1), 1);
    // Interleaved RTP on channel 0 follows.
    let first = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&first[..2], b"$\x00");
    assert_eq!(first[4], 0x80);
    // Keepalives.
    let r = send(
        &mut c,
        &format!("GET_PARAMETER {URL} RTSP/1.0\r\nCSeq: 12\r\nSession: {id}"),
    )
    .await;
    assert_eq!(r.status, 200);
    let r = send(
        &mut c,
        &format!("SET_PARAMETER {URL} RTSP/1.0\r\nCSeq: 13\r\nSession: {id};timeout=60"),
    )
    .await;
    assert_eq!(r.status, 200);
    let r = send(
        &mut c,
        &format!("TEARDOWN {URL} RTSP/1.0\r\nCSeq: 14\r\nSession: {id}"),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(c.shared.registry.count(1), 0);
    let r = send(
        &mut c,
        &format!("PLAY {URL} RTSP/1.0\r\nCSeq: 15\r\nSession: {id}"),
    )
    .await;
    assert_eq!(r.status, 454);
}

#[tokio::test]
async fn udp_setup_binds_a_port_pair() {
    let (mut c, _rx) = conn_with(tiny()).await;
    let r = send(
        &mut c,
        &format!(
            "SETUP {URL} RTSP/1.0\r\nCSeq: 1\r\nTransport: RTP/AVP;unicast;client_port=5000-5001"
        ),
    )
    .await;
    assert_eq!(r.status, 200);
    let t = r.get("Transport").unwrap();
    assert!(
        t.starts_with("RTP/AVP;unicast;client_port=5000-5001;server_port="),
        "{t}"
    );
    c.close(false);
    // UDP sessions outlive their control connection until TEARDOWN or timeout.
    assert_eq!(c.shared.registry.count(1), 1);
    c.close(true);
    assert_eq!(c.shared.registry.count(1), 0);
}

#[tokio::test]
async fn authentication_is_enforced() {
    let (mut c, _rx) = conn_with(SimConfig {
        credentials: Some(Credentials {
            user: "u".into(),
            password: "p".into(),
        }),
        auth: AuthScheme::Any,
        ..tiny()
    })
    .await;
    // OPTIONS stays open, as on most cameras.
    assert_eq!(
        send(&mut c, "OPTIONS * RTSP/1.0\r\nCSeq: 1").await.status,
        200
    );
    let r = send(&mut c, &format!("DESCRIBE {URL} RTSP/1.0\r\nCSeq: 2")).await;
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
    )
    .await;
    assert_eq!(r.status, 401);
    let r = send(
        &mut c,
        &format!(
            "DESCRIBE {URL} RTSP/1.0\r\nCSeq: 4\r\nAuthorization: {}",
            digest("p")
        ),
    )
    .await;
    assert_eq!(r.status, 200);
    // Basic "u:p".
    let r = send(
        &mut c,
        &format!("DESCRIBE {URL} RTSP/1.0\r\nCSeq: 5\r\nAuthorization: Basic dTpw"),
    )
    .await;
    assert_eq!(r.status, 200);
    // Auth is checked before anything else, so an unauthenticated client learns nothing.
    let r = send(&mut c, "DESCRIBE rtsp://h/cam99 RTSP/1.0\r\nCSeq: 6").await;
    assert_eq!(r.status, 401);
}

#[tokio::test]
async fn require_is_refused_and_sessions_are_named_in_answers() {
    let (mut c, _rx) = conn_with(tiny()).await;
    let r = send(
        &mut c,
        &format!("DESCRIBE {URL} RTSP/1.0\r\nCSeq: 1\r\nRequire: play.basic"),
    )
    .await;
    assert_eq!((r.status, r.get("Unsupported")), (551, Some("play.basic")));
    let r = send(
        &mut c,
        &format!("SETUP {URL} RTSP/1.0\r\nCSeq: 2\r\nTransport: RTP/AVP/TCP;unicast"),
    )
    .await;
    let id = session_id(&r);
    let r = send(
        &mut c,
        &format!("GET_PARAMETER {URL} RTSP/1.0\r\nCSeq: 3\r\nSession: {id}"),
    )
    .await;
    assert_eq!(r.get("Session"), Some(format!("{id};timeout=60").as_str()));
}

/// Requests built from the pieces clients really send, in any combination, always get an
/// RTSP status and never a panic.
#[test]
fn arbitrary_requests_never_panic() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};
    use std::cell::RefCell;

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (c, _rx) = rt.block_on(conn_with(SimConfig {
        credentials: Some(Credentials {
            user: "u".into(),
            password: "p".into(),
        }),
        ..tiny()
    }));
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
                let r = rt.block_on(c.borrow_mut().handle(&req));
                prop_assert!((200..600).contains(&r.status));
                let bytes = r.to_bytes();
                prop_assert!(bytes.starts_with(b"RTSP/1.0 "));
                Ok(())
            },
        )
        .unwrap();
}
