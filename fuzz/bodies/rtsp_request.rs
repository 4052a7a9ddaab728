//! Arbitrary bytes as what an RTSP client sends: the message parser never panics, consumes
//! within bounds, is self-delimiting (the message's own bytes parse to the same message and
//! one byte less is incomplete), and every request it yields gets an RTSP answer from the
//! control state machine (with authentication on, against a two-stream source).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rtsp::control::{Conn, Shared, Step};
use rtsp::message::{Message, parse_message};
use rtsp::{Authenticator, Burst, Next, Play, PlayStart, Schemes, Settings, SingleUser};
use rtsp::{Source, StreamInfo, Track};

struct Cams;
struct Silent;

impl Play for Silent {
    async fn next(&mut self, _out: &mut Burst) -> Next {
        Next::End
    }
}

impl Source for Cams {
    type Play = Silent;
    fn describe(&self, name: &str) -> Option<StreamInfo> {
        let video = Track::h264(96, &[0x67, 0x42, 0xC0, 0x1E], &[0x68, 0xCE]);
        let tracks = match name {
            "cam1" => vec![video],
            "duo" => vec![video, Track::g711(true)],
            _ => return None,
        };
        Some(StreamInfo {
            title: name.into(),
            tracks,
        })
    }
    fn play(&self, _start: &PlayStart) -> Option<Silent> {
        Some(Silent)
    }
}

fn shared(auth: bool) -> Shared<Cams, ()> {
    let user = SingleUser {
        user: "u".into(),
        password: "p".into(),
    };
    let settings = Settings {
        label: "fuzz",
        server_header: "fuzz".into(),
        cname: "fuzz".into(),
        session_timeout: Duration::from_secs(60),
        auth: auth.then(|| Authenticator::new("fuzz", Schemes::Any, Arc::new(user))),
        max_sessions_per_conn: 8,
        allow_peer: None,
        sdp_session_id: 1,
    };
    Shared::new(settings, Cams)
}

/// The fuzz target's body: `fuzz/fuzz_targets/rtsp_request.rs` runs it under libFuzzer, and the
/// owning crate's `tests/fuzz_corpus.rs` replays `fuzz/corpus/rtsp_request/` through it.
pub fn run(data: &[u8]) {
    let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    let local: SocketAddr = "127.0.0.1:8554".parse().unwrap();
    // The first byte picks authentication on or off, so both paths past it are reached.
    let Some((&mode, mut rest)) = data.split_first() else {
        return;
    };
    let shared = shared(mode & 1 == 1);
    let mut conn = Conn::new(1, peer, local);
    while let Ok(Some((msg, n))) = parse_message(rest) {
        assert!(n > 0 && n <= rest.len());
        assert_eq!(parse_message(&rest[..n]), Ok(Some((msg.clone(), n))));
        assert_eq!(parse_message(&rest[..n - 1]), Ok(None));
        if let Message::Request(req) = msg {
            let answer = match conn.handle(&shared, &req, Instant::now()) {
                Step::Reply(r) | Step::Play(r, _) => r,
                Step::BindUdp(plan) => {
                    conn.finish_udp_setup(&shared, plan, Some((6000, 6001, ())), Instant::now())
                        .0
                }
            };
            assert!((200..600).contains(&answer.status));
            assert!(answer.to_bytes().starts_with(b"RTSP/1.0 "));
        }
        rest = &rest[n..];
    }
}
