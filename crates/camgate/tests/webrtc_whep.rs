//! WHEP signalling against real peers: GStreamer's RTSP server as the camera, a str0m-based
//! receiver (tests/support/whep_client.rs) as the client, ffprobe reading what it received.
//! Covers the error answers (bad SDP, unknown stream, too many viewers, a codec the offer
//! lacks, start timeout), PATCH and DELETE, and H.264/H.265 passthrough end to end.

mod support;
#[path = "support/whep_client.rs"]
mod whep_client;

use std::io::Write;
use std::time::Duration;

use serde_json::Value;
use support::{Camera, Gateway};
use whep_client::{Offer, WhepClient};

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// POSTs an offer; (status, headers, body text).
async fn post_offer(
    gw: &Gateway,
    path: &str,
    sdp: &str,
) -> (u16, reqwest::header::HeaderMap, String) {
    let r = http()
        .post(gw.url(&format!("/webrtc/{path}/whep")))
        .header("content-type", "application/sdp")
        .body(sdp.to_owned())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, headers, r.text().await.unwrap())
}

fn error_code(body: &str) -> String {
    let v: Value = serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {body}"));
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{v}"
    );
    v["error"]["code"].as_str().unwrap().to_owned()
}

async fn webrtc_viewers(gw: &Gateway, path: &str) -> u64 {
    gw.get_json(&format!("/streams/{path}/viewers")).await["by_protocol"]["webrtc"]
        .as_u64()
        .unwrap()
}

async fn gateway(max_viewers: u32) -> Gateway {
    Gateway::start(|c| {
        c.streams.max_viewers_per_stream = max_viewers;
        c.streams.start_timeout = Duration::from_secs(2);
        c.webrtc.ice_servers = vec![camgate::config::IceServer {
            url: "stun:stun.example.test:3478".into(),
            username: None,
            credential: None,
        }];
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_clear_json() {
    let gw = gateway(100).await;
    let offer = WhepClient::new(Offer::H264).offer;
    // Unknown stream: 404 for the offer and the player page.
    let (s, _, b) = post_offer(&gw, "nope", &offer).await;
    assert_eq!((s, error_code(&b).as_str()), (404, "stream_not_found"));
    let r = http().get(gw.url("/webrtc/nope")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    // A camera nobody can reach: the offer is checked before the camera is asked.
    let dead = format!("rtsp://127.0.0.1:{}/cam", support::closed_port());
    gw.provision("dead", &dead, true).await;
    let (s, _, b) = post_offer(&gw, "cam_dead", "v=0\r\nthis is no SDP").await;
    assert_eq!((s, error_code(&b).as_str()), (400, "invalid_sdp"), "{b}");
    let audio_only = offer.replace("m=video", "m=audio");
    let (s, _, b) = post_offer(&gw, "cam_dead", &audio_only).await;
    assert_eq!(s, 400, "{b}");
    let r = http()
        .post(gw.url("/webrtc/cam_dead/whep"))
        .header("content-type", "application/json")
        .body(offer.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    let big = "a".repeat(100 << 10);
    let (s, _, b) = post_offer(&gw, "cam_dead", &big).await;
    assert_eq!((s, error_code(&b).as_str()), (413, "body_too_large"), "{b}");
    // No keyframe within start_timeout (2 s): 504, and the viewer is not kept.
    let (s, _, b) = post_offer(&gw, "cam_dead", &offer).await;
    assert_eq!(
        (s, error_code(&b).as_str()),
        (504, "stream_start_timeout"),
        "{b}"
    );
    assert_eq!(webrtc_viewers(&gw, "cam_dead").await, 0);
    // Sessions that do not exist.
    let unknown = format!("/webrtc/cam_dead/whep/{}", "0".repeat(32));
    let r = http().delete(gw.url(&unknown)).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(error_code(&r.text().await.unwrap()), "session_not_found");
    let r = http()
        .patch(gw.url(&unknown))
        .header("content-type", "application/trickle-ice-sdpfrag")
        .body("a=end-of-candidates\r\n")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_count_as_viewers_and_end_on_delete() {
    let cam = Camera::start();
    let gw = gateway(1).await;
    gw.provision("w1", &cam.good_url(), true).await;
    // Only VP8 offered to an H.264 camera: 406 naming both.
    let (s, _, b) = post_offer(&gw, "cam_w1", &WhepClient::new(Offer::Vp8).offer).await;
    assert_eq!(
        (s, error_code(&b).as_str()),
        (406, "codec_not_accepted"),
        "{b}"
    );
    assert!(b.contains("H.264") && b.contains("VP8"), "{b}");

    // The stream's event socket reports the session's start and end.
    let mut events = gw.ws("/ws/events/cam_w1").await;
    let mut client = WhepClient::new(Offer::H264);
    let t = std::time::Instant::now();
    let (s, h, answer) = post_offer(&gw, "cam_w1", &client.offer).await;
    assert_eq!(s, 201, "{answer}");
    eprintln!("WHEP POST to a live camera answered in {:?}", t.elapsed());
    assert_eq!(h["content-type"], "application/sdp");
    assert!(answer.contains("a=ice-lite"), "{answer}");
    assert!(answer.contains("H264/90000"), "{answer}");
    let location = h["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with("/webrtc/cam_w1/whep/"), "{location}");
    assert!(h.contains_key("etag"));
    let link = h["link"].to_str().unwrap();
    assert_eq!(link, "<stun:stun.example.test:3478>; rel=\"ice-server\"");
    let started = webrtc_event(&mut events, "started").await;
    let session_id = location.rsplit('/').next().unwrap().to_owned();
    assert_eq!(started["session"], session_id.as_str(), "{started}");
    assert_eq!(started["camera_id"], "w1");
    assert_eq!(webrtc_viewers(&gw, "cam_w1").await, 1);
    // The limit is 1: the next session is refused.
    let (s, _, b) = post_offer(&gw, "cam_w1", &WhepClient::new(Offer::H264).offer).await;
    assert_eq!(
        (s, error_code(&b).as_str()),
        (429, "too_many_viewers"),
        "{b}"
    );

    // Trickle candidates: 204. New credentials: an ICE restart answered with ours.
    let frag = |body: &str| {
        http()
            .patch(gw.url(&location))
            .header("content-type", "application/trickle-ice-sdpfrag")
            .body(body.to_owned())
            .send()
    };
    let ufrag = client
        .offer
        .lines()
        .find_map(|l| l.strip_prefix("a=ice-ufrag:"))
        .unwrap()
        .trim()
        .to_owned();
    let r = frag(&format!(
        "a=ice-ufrag:{ufrag}\r\na=ice-pwd:whatever0123456789abcd\r\n\
         a=candidate:1 1 udp 2113929471 127.0.0.1 40000 typ host\r\n"
    ))
    .await
    .unwrap();
    assert_eq!(r.status(), 204);
    let r = frag("a=candidate:nonsense\r\n").await.unwrap();
    assert_eq!(r.status(), 400);

    // The session plays: frames arrive and ffprobe decodes them as 320x240 H.264.
    client.accept(&answer);
    let got = tokio::task::spawn_blocking(move || {
        let got = client.receive(Duration::from_secs(3));
        (client, got)
    });
    let (mut client, got) = got.await.unwrap();
    assert!(got.connected_after.is_some(), "never connected: {got:?}");
    eprintln!(
        "str0m client: connected after {:?}, first frame after {:?}",
        got.connected_after, got.first_frame_after
    );
    assert!(got.frames >= 25, "only {} frames in 3 s", got.frames);
    let probe = ffprobe(&got.annexb, "h264");
    assert_eq!(probe["codec_name"], "h264", "{probe}");
    assert_eq!(
        (probe["width"].as_u64(), probe["height"].as_u64()),
        (Some(320), Some(240))
    );

    // Garbage on the shared socket (bytes that look like STUN, DTLS, RTP or nothing, from a
    // stranger's address) neither ends the session nor the socket.
    let port: u16 = answer
        .lines()
        .find_map(|l| l.strip_prefix("a=candidate:"))
        .and_then(|c| c.split_whitespace().nth(5))
        .and_then(|p| p.parse().ok())
        .expect("a candidate with a port in the answer");
    let stranger = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..2000u32 {
        let len = (i as usize * 7919) % 1400 + 1;
        let mut d: Vec<u8> = (0..len).map(|j| (i as usize * 31 + j * 17) as u8).collect();
        d[0] = [0u8, 1, 20, 22, 23, 128, 144, 200, 255][i as usize % 9];
        let _ = stranger.send_to(&d, ("127.0.0.1", port));
    }
    let (mut client, got) = tokio::task::spawn_blocking(move || {
        let got = client.receive(Duration::from_secs(2));
        (client, got)
    })
    .await
    .unwrap();
    assert!(
        got.frames >= 25,
        "only {} frames after the garbage",
        got.frames
    );
    assert!(!got.disconnected);
    // /metrics: the live session, what it was sent, and the stranger's datagrams.
    let playing = webrtc_metrics(&gw).await;
    assert_eq!(playing["camgate_webrtc_sessions"], 1.0, "{playing:?}");
    assert_eq!(playing["camgate_webrtc_sessions_started_total"], 1.0);
    assert!(
        playing["camgate_webrtc_sent_bytes_total"] > 100_000.0,
        "{playing:?}"
    );
    assert!(playing["camgate_webrtc_sent_datagrams_total"] >= 100.0);
    assert!(
        playing["camgate_webrtc_unrouted_datagrams_total"] >= 1000.0,
        "the stranger's datagrams: {playing:?}"
    );

    let r = frag("a=ice-ufrag:fresh\r\na=ice-pwd:fresh0123456789abcdefgh\r\n")
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body = r.text().await.unwrap();
    assert!(
        body.contains("a=ice-ufrag:") && body.contains("a=candidate:"),
        "{body}"
    );

    // DELETE ends it: 200, the viewer is gone, the client sees the end.
    let r = http().delete(gw.url(&location)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    wait_viewers(&gw, "cam_w1", 0).await;
    let r = http().delete(gw.url(&location)).send().await.unwrap();
    assert_eq!(r.status(), 404);
    // What the client's socket buffered before the DELETE is read first; then nothing comes.
    let after = tokio::task::spawn_blocking(move || {
        client.receive(Duration::from_secs(1));
        client.receive(Duration::from_secs(2))
    })
    .await
    .unwrap();
    assert_eq!(after.frames, 0, "frames kept coming after DELETE");
    // The end is an event with what the session was sent.
    let ended = webrtc_event(&mut events, "ended").await;
    assert_eq!(ended["session"], session_id.as_str(), "{ended}");
    assert!(ended["bytes_sent"].as_u64().unwrap() > 100_000, "{ended}");
    assert!(
        ended["reason"].as_str().is_some_and(|r| !r.is_empty()),
        "{ended}"
    );
    // The session is gone from the gauge; the counters keep what it was sent.
    let ended = webrtc_metrics(&gw).await;
    assert_eq!(ended["camgate_webrtc_sessions"], 0.0, "{ended:?}");
    assert_eq!(ended["camgate_webrtc_sessions_started_total"], 1.0);
    assert!(
        ended["camgate_webrtc_sent_bytes_total"] >= playing["camgate_webrtc_sent_bytes_total"],
        "a counter fell when its session ended: {playing:?} then {ended:?}"
    );
}

/// The next `webrtc` event with `action` on an event socket (other events skipped), within 10 s.
async fn webrtc_event(ws: &mut support::Ws, action: &str) -> Value {
    use futures::StreamExt;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let msg = tokio::time::timeout_at(deadline, ws.next())
            .await
            .unwrap_or_else(|_| panic!("no webrtc {action} event within 10 s"))
            .expect("the event socket stays open")
            .expect("a WebSocket message");
        if let tokio_tungstenite::tungstenite::Message::Text(t) = msg {
            let v: Value = serde_json::from_str(&t).unwrap();
            if v["type"] == "webrtc" && v["action"] == action {
                return v;
            }
        }
    }
}

/// The `camgate_webrtc_*` samples of `/metrics` (none has labels).
async fn webrtc_metrics(gw: &Gateway) -> std::collections::HashMap<String, f64> {
    let text = http()
        .get(gw.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with("camgate_webrtc_"))
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k.to_owned(), v.parse().unwrap()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h265_is_offered_when_the_offer_has_it() {
    let cam = Camera::start_h265();
    let gw = gateway(10).await;
    gw.provision("w5", &cam.good_url(), true).await;
    let (s, _, b) = post_offer(&gw, "cam_w5", &WhepClient::new(Offer::H264).offer).await;
    assert_eq!(
        (s, error_code(&b).as_str()),
        (406, "codec_not_accepted"),
        "{b}"
    );
    assert!(b.contains("H.265") && b.contains("cam_w5~h264"), "{b}");
    let mut client = WhepClient::new(Offer::H265);
    let (s, _, answer) = post_offer(&gw, "cam_w5", &client.offer).await;
    assert_eq!(s, 201, "{answer}");
    assert!(answer.contains("H265/90000"), "{answer}");
    client.accept(&answer);
    let got = tokio::task::spawn_blocking(move || client.receive(Duration::from_secs(3)))
        .await
        .unwrap();
    assert!(
        got.frames >= 25,
        "only {} frames in 3 s: {got:?}",
        got.frames
    );
    let probe = ffprobe(&got.annexb, "hevc");
    assert_eq!(probe["codec_name"], "hevc", "{probe}");
    assert_eq!(
        (probe["width"].as_u64(), probe["height"].as_u64()),
        (Some(320), Some(240))
    );
}

/// Waits up to 5 s for the stream's WebRTC viewer count to be `n`.
async fn wait_viewers(gw: &Gateway, path: &str, n: u64) {
    for _ in 0..50 {
        if webrtc_viewers(gw, path).await == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "{path} has {} webrtc viewers, not {n}",
        webrtc_viewers(gw, path).await
    );
}

/// ffprobe's first video stream of an elementary stream, with frames counted.
fn ffprobe(data: &[u8], format: &str) -> Value {
    assert!(!data.is_empty(), "nothing received");
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(data).unwrap();
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-f",
            format,
            "-count_frames",
            "-select_streams",
            "v:0",
        ])
        .args([
            "-show_entries",
            "stream=codec_name,width,height,nb_read_frames",
        ])
        .args(["-of", "json"])
        .arg(f.path())
        .output()
        .expect("ffprobe");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let s = v["streams"][0].clone();
    let n: u64 = s["nb_read_frames"]
        .as_str()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(
        n >= 20,
        "ffprobe decoded {n} frames: {v} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    s
}

/// GStreamer's RTSP server with a launch line of the test's choosing (tests/support/rtsp_launch.py).
struct LaunchCamera {
    child: std::process::Child,
    port: u16,
}

impl LaunchCamera {
    fn start(launch: &str) -> LaunchCamera {
        use std::io::BufRead;
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/rtsp_launch.py");
        let mut child = std::process::Command::new("/usr/bin/python3")
            .args([script, launch])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("/usr/bin/python3 tests/support/rtsp_launch.py (GStreamer)");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .strip_prefix("PORT ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("rtsp_launch.py printed {line:?}"));
        LaunchCamera { child, port }
    }
}

impl Drop for LaunchCamera {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_camera_with_b_frames_is_refused_clearly() {
    // x264 with two B-frames between references (no zerolatency tune, which disables them).
    let cam = LaunchCamera::start(
        "( videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=25/1 ! \
         x264enc speed-preset=ultrafast bframes=2 b-adapt=false key-int-max=25 ! \
         video/x-h264,profile=main ! rtph264pay name=pay0 pt=96 config-interval=1 )",
    );
    let gw = gateway(10).await;
    gw.provision("wb", &format!("rtsp://127.0.0.1:{}/cam", cam.port), false)
        .await;
    // Once a whole GOP is cached, the B slices are in it.
    gw.wait_state("wb", "live", Duration::from_secs(15)).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (s, _, b) = post_offer(&gw, "cam_wb", &WhepClient::new(Offer::H264).offer).await;
    assert_eq!(
        (s, error_code(&b).as_str()),
        (422, "b_frames_unsupported"),
        "{b}"
    );
    assert!(b.contains("HLS or MSE"), "{b}");
    assert_eq!(webrtc_viewers(&gw, "cam_wb").await, 0);
}

/// A browser that lost a picture sends a PLI; an RTSP camera cannot be asked for a keyframe,
/// so camgate restarts the session at the hub's cached keyframe. With a camera whose next
/// IDR is ten seconds away, a keyframe within a second of the PLI can only be that answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pli_is_answered_from_the_cached_keyframe() {
    let cam = Camera::start_with_gop(250);
    let gw = gateway(4).await;
    gw.provision("pli", &cam.good_url(), true).await;
    let mut client = WhepClient::new(Offer::H264);
    let (s, _, answer) = post_offer(&gw, "cam_pli", &client.offer).await;
    assert_eq!(s, 201, "{answer}");
    client.accept(&answer);
    let (mut client, first) = tokio::task::spawn_blocking(move || {
        let got = client.receive(Duration::from_secs(3));
        (client, got)
    })
    .await
    .unwrap();
    assert!(first.frames >= 25, "only {} frames in 3 s", first.frames);
    // The session starts at the cached keyframe.
    assert_eq!(first.keyframes.first(), Some(&0), "{:?}", first.keyframes);
    let (mut client, after) = tokio::task::spawn_blocking(move || {
        // Past the first keyframe and its catch-up; then the PLI.
        client.request_keyframe();
        let got = client.receive(Duration::from_secs(1));
        (client, got)
    })
    .await
    .unwrap();
    assert!(
        !after.keyframes.is_empty(),
        "no keyframe within 1 s of the PLI ({} frames)",
        after.frames
    );
    // Twice, over a second apart (answers are rate-limited to one a second): a camera IDR
    // cannot explain both.
    let again = tokio::task::spawn_blocking(move || {
        client.receive(Duration::from_millis(1200));
        client.request_keyframe();
        client.receive(Duration::from_secs(1))
    })
    .await
    .unwrap();
    assert!(
        !again.keyframes.is_empty(),
        "no keyframe within 1 s of the second PLI ({} frames)",
        again.frames
    );
    // The PLIs are counted (str0m reports the peer's feedback every 2 s).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let m = webrtc_metrics(&gw).await;
        if m["camgate_webrtc_plis_total"] >= 2.0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "PLIs not counted in /metrics: {m:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// On a lossy network the browser NACKs what it missed and camgate resends it from the
/// session's packet history: with one RTP packet in 8 dropped on the way in, frames still
/// arrive whole at the camera's rate and the NACKs show in `/metrics`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nacks_are_answered_from_the_packet_history() {
    let cam = Camera::start();
    let gw = gateway(4).await;
    gw.provision("nack", &cam.good_url(), true).await;
    let mut client = WhepClient::new(Offer::H264);
    let (s, _, answer) = post_offer(&gw, "cam_nack", &client.offer).await;
    assert_eq!(s, 201, "{answer}");
    client.accept(&answer);
    client.drop_every = 8;
    let (client, got) = tokio::task::spawn_blocking(move || {
        let got = client.receive(Duration::from_secs(4));
        (client, got)
    })
    .await
    .unwrap();
    assert!(
        client.dropped >= 10,
        "only {} packets dropped",
        client.dropped
    );
    // Without retransmission a lost packet loses its frame (a history of one packet gave 41
    // of 100 here). With it, nearly every frame comes through.
    assert!(
        got.frames >= 85,
        "{} frames in 4 s with {} packets dropped",
        got.frames,
        client.dropped
    );
    let probe = ffprobe(&got.annexb, "h264");
    assert_eq!(probe["codec_name"], "h264", "{probe}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let m = webrtc_metrics(&gw).await;
        if m["camgate_webrtc_nacks_total"] >= 1.0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "NACKs not counted in /metrics: {m:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
