//! The tokio layer over real sockets, with a two-track source that stamps its packets: what
//! PLAY starts arrives after the PLAY answer on the channels or ports SETUP announced, with
//! the announced SSRC and sequence numbers, sender reports follow for every track, and a
//! source's `End` and `Abort` end the session (and, for `Abort`, the connection). The
//! simulator's tests (crates/sim/tests) run ffmpeg, ffprobe and retina against this server.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use rtsp::framing::{Decoder, Item};
use rtsp::message::Message;
use rtsp::{Burst, Clock, Next, Play, PlayStart, Settings, Source, StreamInfo, Track};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

const BOUND: Duration = Duration::from_secs(20);

/// `duo` (video + audio), `short` (ends after three steps), `abort` (aborts after three).
struct Ticker;

struct TickerPlay {
    start: PlayStart,
    steps: u32,
    limit: Option<(u32, Next)>,
}

impl Source for Ticker {
    type Play = TickerPlay;

    fn describe(&self, name: &str) -> Option<StreamInfo> {
        let video = Track::h264(96, &[0x67, 0x42, 0xC0, 0x1E], &[0x68, 0xCE]);
        let tracks = match name {
            "duo" => vec![video, Track::g711(true)],
            "short" | "abort" => vec![video],
            _ => return None,
        };
        Some(StreamInfo {
            title: name.into(),
            tracks,
        })
    }

    fn play(&self, start: &PlayStart) -> Option<TickerPlay> {
        let limit = match start.stream.as_str() {
            "short" => Some((3, Next::End)),
            "abort" => Some((3, Next::Abort)),
            _ => None,
        };
        Some(TickerPlay {
            start: start.clone(),
            steps: 0,
            limit,
        })
    }
}

impl Play for TickerPlay {
    async fn next(&mut self, out: &mut Burst) -> Next {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if let Some((n, end)) = self.limit
            && self.steps >= n
        {
            return end;
        }
        for t in &self.start.tracks {
            let seq = t.seq.wrapping_add(self.steps as u16);
            let ts = t.rtptime.wrapping_add(self.steps * 3000);
            let mut h = vec![0x80, 0x80 | 96];
            h.extend_from_slice(&seq.to_be_bytes());
            h.extend_from_slice(&ts.to_be_bytes());
            h.extend_from_slice(&t.ssrc.to_be_bytes());
            out.packet(t.track, &[&h, b"payload"]);
            let clock = Clock {
                rtp_ts: ts,
                wall: SystemTime::now(),
                next_rtp_ts: ts.wrapping_add(3000),
            };
            out.clock(t.track, clock);
        }
        self.steps += 1;
        Next::Send
    }
}

async fn start() -> rtsp::ServerHandle<Ticker> {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let settings = Settings {
        label: "test",
        server_header: "camgate-test/1".into(),
        cname: "camgate-test".into(),
        session_timeout: Duration::from_secs(60),
        auth: None,
        max_sessions_per_conn: 8,
        allow_peer: None,
        sdp_session_id: 1,
    };
    rtsp::serve(listener, settings, Ticker)
}

struct Client {
    stream: TcpStream,
    decoder: Decoder,
    cseq: u32,
    /// Interleaved frames that came before the answer of the last request.
    skipped: usize,
}

struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
}

impl Answer {
    fn get(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no {name} in {:?}", self.headers))
    }
    /// `key=VALUE` of a `;`-separated header.
    fn param(&self, name: &str, key: &str) -> String {
        self.get(name)
            .split([';', ','])
            .find_map(|p| p.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("no {key} in {name}"))
            .to_string()
    }
}

impl Client {
    async fn connect(addr: SocketAddr) -> Client {
        Client {
            stream: TcpStream::connect(addr).await.unwrap(),
            decoder: Decoder::new(),
            cseq: 0,
            skipped: 0,
        }
    }

    async fn item(&mut self) -> Option<Item> {
        loop {
            if let Some(item) = self.decoder.next_item().expect("server speaks RTSP") {
                return Some(item);
            }
            let n = tokio::time::timeout(BOUND, self.stream.read_buf(self.decoder.buffer_mut()))
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
        self.skipped = 0;
        loop {
            match self.item().await.expect("connection open") {
                Item::Message(Message::Response { status, headers }) => {
                    return Answer { status, headers };
                }
                Item::Data { .. } => self.skipped += 1,
                other => panic!("a request from the server: {other:?}"),
            }
        }
    }
}

fn be32(p: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([p[at], p[at + 1], p[at + 2], p[at + 3]])
}

#[tokio::test]
async fn tcp_tracks_arrive_on_their_channels_with_sender_reports() {
    let server = start().await;
    let url = format!("rtsp://{}/duo", server.local_addr());
    let mut c = Client::connect(server.local_addr()).await;
    let tcp = [("Transport", "RTP/AVP/TCP;unicast")];
    let a = c.request("SETUP", &format!("{url}/trackID=0"), &tcp).await;
    assert_eq!(a.status, 200);
    let id = a.get("Session").split(';').next().unwrap().to_string();
    let video_ssrc = u32::from_str_radix(&a.param("Transport", "ssrc"), 16).unwrap();
    let s = [("Session", id.as_str()), tcp[0]];
    let a = c.request("SETUP", &format!("{url}/trackID=1"), &s).await;
    assert_eq!(a.param("Transport", "interleaved"), "2-3");
    let audio_ssrc = u32::from_str_radix(&a.param("Transport", "ssrc"), 16).unwrap();
    let a = c.request("PLAY", &url, &[("Session", &id)]).await;
    assert_eq!(a.status, 200);
    assert_eq!(c.skipped, 0, "the PLAY answer comes before any packet");
    let first_seq: u16 = a.param("RTP-Info", "seq").parse().unwrap();
    assert_eq!(server.playing("duo"), 1);

    let (mut rtp, mut reports) = ([0u32; 4], [0u32; 4]);
    let mut next_seq = first_seq;
    while rtp[0] < 5 || reports[1] == 0 || reports[3] == 0 {
        let Some(Item::Data { channel, payload }) = c.item().await else {
            panic!("only interleaved data after PLAY");
        };
        let ch = usize::from(channel);
        assert!(ch < 4, "channel {ch}");
        let want = if ch < 2 { video_ssrc } else { audio_ssrc };
        if ch % 2 == 0 {
            rtp[ch] += 1;
            assert_eq!(be32(&payload, 8), want);
            assert_eq!(&payload[12..], b"payload");
            if ch == 0 {
                assert_eq!(u16::from_be_bytes([payload[2], payload[3]]), next_seq);
                next_seq = next_seq.wrapping_add(1);
            }
        } else {
            reports[ch] += 1;
            assert_eq!(payload[1], 200, "a sender report");
            assert_eq!(be32(&payload, 4), want);
            // Counts up to and including the packet it follows.
            assert_eq!(be32(&payload, 20), rtp[ch - 1]);
        }
    }
    assert!(rtp[2] > 0);
    let a = c.request("TEARDOWN", &url, &[("Session", &id)]).await;
    assert_eq!(a.status, 200);
    assert_eq!(server.total_sessions(), 0);
}

#[tokio::test]
async fn udp_tracks_arrive_on_the_client_ports() {
    let server = start().await;
    let url = format!("rtsp://{}/duo/trackID=1", server.local_addr());
    let rtp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let rtcp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let (p, q) = (
        rtp.local_addr().unwrap().port(),
        rtcp.local_addr().unwrap().port(),
    );
    let mut c = Client::connect(server.local_addr()).await;
    let transport = format!("RTP/AVP;unicast;client_port={p}-{q}");
    let a = c.request("SETUP", &url, &[("Transport", &transport)]).await;
    assert_eq!(a.status, 200);
    let ssrc = u32::from_str_radix(&a.param("Transport", "ssrc"), 16).unwrap();
    let id = a.get("Session").split(';').next().unwrap().to_string();
    let a = c.request("PLAY", &url, &[("Session", &id)]).await;
    assert_eq!(a.status, 200);
    let mut buf = [0u8; 2048];
    let n = tokio::time::timeout(BOUND, rtp.recv(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((n, be32(&buf, 8)), (19, ssrc));
    let n = tokio::time::timeout(BOUND, rtcp.recv(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert!(n >= 28 && buf[1] == 200 && be32(&buf, 4) == ssrc);
}

#[tokio::test]
async fn a_source_ends_its_session_or_aborts_the_connection() {
    let server = start().await;
    let tcp = [("Transport", "RTP/AVP/TCP;unicast")];
    let base = format!("rtsp://{}", server.local_addr());

    let mut c = Client::connect(server.local_addr()).await;
    let a = c.request("SETUP", &format!("{base}/short"), &tcp).await;
    let id = a.get("Session").split(';').next().unwrap().to_string();
    assert_eq!(
        c.request("PLAY", &format!("{base}/short"), &[("Session", &id)])
            .await
            .status,
        200
    );
    let start = std::time::Instant::now();
    while server.sessions("short") == 1 {
        assert!(start.elapsed() < BOUND, "the ended stream kept its session");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The connection stays usable, and the three steps were sent before the end.
    assert_eq!(c.request("OPTIONS", "*", &[]).await.status, 200);
    assert!(c.skipped >= 3, "{} frames before the end", c.skipped);

    let mut c = Client::connect(server.local_addr()).await;
    let a = c.request("SETUP", &format!("{base}/abort"), &tcp).await;
    let id = a.get("Session").split(';').next().unwrap().to_string();
    assert_eq!(
        c.request("PLAY", &format!("{base}/abort"), &[("Session", &id)])
            .await
            .status,
        200
    );
    while c.item().await.is_some() {}
    assert_eq!(server.sessions("abort"), 0);
    assert_eq!(server.total_sessions(), 0);
}
