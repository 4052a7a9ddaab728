//! Session bookkeeping (per-camera counts, timeout, keepalive) and the fault options, seen
//! from a minimal raw RTSP client so every byte the simulator sends is visible.

mod common;

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use common::*;
use rtsp::framing::{Item, next_item};
use rtsp::message::Message;
use sim::{Faults, SimConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

const BOUND: Duration = Duration::from_secs(20);

struct RawClient {
    stream: TcpStream,
    buf: BytesMut,
    cseq: u32,
}

struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
}

impl Answer {
    fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn session(&self) -> String {
        self.get("Session")
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_string()
    }
}

impl RawClient {
    async fn connect(addr: std::net::SocketAddr) -> RawClient {
        RawClient {
            stream: TcpStream::connect(addr).await.unwrap(),
            buf: BytesMut::new(),
            cseq: 0,
        }
    }

    /// Next item from the server, or None at EOF.
    async fn item(&mut self) -> Option<Item> {
        loop {
            if let Some(item) = next_item(&mut self.buf).expect("server speaks RTSP") {
                return Some(item);
            }
            let n = tokio::time::timeout(BOUND, self.stream.read_buf(&mut self.buf))
                .await
                .expect("server sends something")
                .ok()?;
            if n == 0 {
                return None;
            }
        }
    }

    async fn request(&mut self, method: &str, url: &str, headers: &[(&str, &str)]) -> Answer {
        self.cseq += 1;
        let mut s = format!("{method} {url} RTSP/1.0\r\nCSeq: {}\r\n", self.cseq);
        for (k, v) in headers {
            s.push_str(&format!("{k}: {v}\r\n"));
        }
        s.push_str("\r\n");
        self.stream.write_all(s.as_bytes()).await.unwrap();
        loop {
            match self.item().await.expect("connection open") {
                Item::Message(Message::Response { status, headers }) => {
                    return Answer { status, headers };
                }
                // Interleaved packets of an earlier PLAY may come first.
                _ => continue,
            }
        }
    }

    /// SETUP over TCP-interleaved and PLAY; returns the session id.
    async fn play_tcp(&mut self, url: &str) -> String {
        let a = self
            .request(
                "SETUP",
                &format!("{url}/trackID=0"),
                &[("Transport", "RTP/AVP/TCP;unicast;interleaved=0-1")],
            )
            .await;
        assert_eq!(a.status, 200);
        let id = a.session();
        let a = self.request("PLAY", url, &[("Session", &id)]).await;
        assert_eq!(a.status, 200);
        id
    }

    /// Next interleaved packet on `channel` with its arrival time; None at EOF.
    async fn packet(&mut self, channel: u8) -> Option<(Bytes, Instant)> {
        loop {
            match self.item().await? {
                Item::Data {
                    channel: c,
                    payload,
                } if c == channel => {
                    return Some((payload, Instant::now()));
                }
                _ => continue,
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_are_counted_and_expire_without_keepalive() {
    let sim = start(SimConfig {
        session_timeout: Duration::from_secs(2),
        ..small_config()
    })
    .await;
    let url = sim.url(2);
    // A UDP session whose client never says anything again.
    let rtp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = rtp.local_addr().unwrap().port();
    let mut quiet = RawClient::connect(sim.local_addr()).await;
    let transport = format!("RTP/AVP;unicast;client_port={port}-{}", port + 1);
    let a = quiet
        .request("SETUP", &url, &[("Transport", &transport)])
        .await;
    assert_eq!(a.status, 200);
    assert!(a.get("Session").unwrap().ends_with(";timeout=2"));
    let quiet_id = a.session();
    assert_eq!(
        quiet
            .request("PLAY", &url, &[("Session", &quiet_id)])
            .await
            .status,
        200
    );
    // Video arrives on the client's RTP port.
    let mut dgram = [0u8; 2048];
    let n = tokio::time::timeout(BOUND, rtp.recv(&mut dgram))
        .await
        .unwrap()
        .unwrap();
    assert!(n > 12 && dgram[0] == 0x80);

    // A TCP session that keeps itself alive.
    let mut lively = RawClient::connect(sim.local_addr()).await;
    let lively_id = lively.play_tcp(&url).await;
    assert_eq!(sim.sessions(2), 2);
    assert_eq!(sim.playing(2), 2);
    assert_eq!(sim.sessions(1), 0);

    let start = Instant::now();
    while sim.sessions(2) == 2 {
        assert!(start.elapsed() < BOUND, "the quiet session never expired");
        let a = lively
            .request("GET_PARAMETER", &url, &[("Session", &lively_id)])
            .await;
        assert_eq!(a.status, 200);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(sim.sessions(2), 1);
    // The expired session is gone for good; the lively one still answers.
    let a = quiet.request("PLAY", &url, &[("Session", &quiet_id)]).await;
    assert_eq!(a.status, 454);
    let a = lively
        .request("TEARDOWN", &url, &[("Session", &lively_id)])
        .await;
    assert_eq!(a.status, 200);
    assert_eq!(sim.total_sessions(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_the_connection_ends_its_tcp_sessions() {
    let sim = start(small_config()).await;
    let mut c = RawClient::connect(sim.local_addr()).await;
    c.play_tcp(&sim.url(1)).await;
    assert_eq!(sim.sessions(1), 1);
    drop(c);
    assert!(eventually(BOUND, || sim.sessions(1) == 0).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_fault_closes_the_connection() {
    let sim = start(SimConfig {
        faults: Faults {
            drop_every: Some(Duration::from_millis(700)),
            ..Faults::default()
        },
        ..small_config()
    })
    .await;
    let mut c = RawClient::connect(sim.local_addr()).await;
    c.play_tcp(&sim.url(1)).await;
    let mut packets = 0;
    while c.packet(0).await.is_some() {
        packets += 1;
    }
    assert!(packets > 0, "video flowed before the drop");
    assert!(eventually(BOUND, || sim.sessions(1) == 0).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stall_fault_pauses_video_without_closing() {
    let sim = start(SimConfig {
        faults: Faults {
            stall_every: Some(Duration::from_millis(500)),
            stall_for: Some(Duration::from_millis(1500)),
            ..Faults::default()
        },
        ..small_config()
    })
    .await;
    let mut c = RawClient::connect(sim.local_addr()).await;
    c.play_tcp(&sim.url(1)).await;
    let (_, mut last) = c.packet(0).await.unwrap();
    let mut longest = Duration::ZERO;
    let start = Instant::now();
    // Watch for a few seconds: packets stop for a stall, then resume on the same connection.
    while start.elapsed() < Duration::from_secs(4) {
        let (_, at) = c.packet(0).await.expect("connection stays open");
        longest = longest.max(at - last);
        last = at;
    }
    // Frames come every 100 ms when not stalled; a stall leaves a gap of about 1.5 s.
    assert!(
        longest >= Duration::from_millis(1000),
        "longest gap {longest:?}"
    );
    assert_eq!(sim.sessions(1), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_timestamp_jump_faults() {
    let sim = start(SimConfig {
        faults: Faults {
            garbage_every: Some(Duration::from_millis(300)),
            jump_every: Some(Duration::from_millis(500)),
            jump_by: Duration::from_secs(5),
            ..Faults::default()
        },
        ..small_config()
    })
    .await;
    let mut c = RawClient::connect(sim.local_addr()).await;
    c.play_tcp(&sim.url(1)).await;
    let (mut garbage, mut backwards) = (0, 0);
    let mut last_ts: Option<u32> = None;
    for _ in 0..400 {
        let (p, _) = c.packet(0).await.unwrap();
        if p.len() < 12 || p[0] >> 6 != 2 {
            garbage += 1;
            continue;
        }
        let ts = u32::from_be_bytes([p[4], p[5], p[6], p[7]]);
        if let Some(prev) = last_ts {
            // A jump back of 5 s is 450000 ticks; garbage carries random timestamps, so only
            // count jumps of about that size.
            let back = prev.wrapping_sub(ts);
            if (440_000..=450_000).contains(&back) {
                backwards += 1;
            }
        }
        if p[1] & 0x80 != 0 {
            last_ts = Some(ts);
        }
        if garbage > 0 && backwards > 0 {
            break;
        }
    }
    assert!(garbage > 0, "no malformed packets seen");
    assert!(backwards > 0, "no backwards timestamp jump seen");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_survives_garbage() {
    let sim = start(SimConfig {
        faults: Faults {
            garbage_every: Some(Duration::from_millis(300)),
            ..Faults::default()
        },
        ..small_config()
    })
    .await;
    for transport in ["tcp", "udp"] {
        let out = ffmpeg_frames(&sim.url(1), transport, 25, "gray").await;
        assert!(
            out.status.success(),
            "{transport}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.stdout.len(), 25 * 320 * 240, "{transport}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_400_and_close() {
    let sim = start(small_config()).await;
    let mut s = TcpStream::connect(sim.local_addr()).await.unwrap();
    s.write_all(b"\x16\x03\x01 this is not rtsp\r\n\r\n")
        .await
        .unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(BOUND, s.read_to_end(&mut out))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("RTSP/1.0 400 Bad Request\r\n"), "{text}");
    // The server is still there for the next client.
    let mut c = RawClient::connect(sim.local_addr()).await;
    assert_eq!(c.request("OPTIONS", "*", &[]).await.status, 200);
}
