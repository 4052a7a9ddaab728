//! The RTSP restream against real clients: GStreamer's RTSP server is the camera, camgate
//! restreams it, and ffprobe, ffmpeg and GStreamer's `rtspsrc` read `rtsp://.../{path}` over
//! TCP (interleaved) and UDP. Twenty RTSP clients of one camera keep one camera session.

mod support;

use std::process::Output;
use std::time::Duration;

use serde_json::Value;
use support::{Camera, Gateway, eventually};
use tokio::process::Command;

/// A camera provisioned on demand as `cam_1`, and its restream URL. The idle timeout is long
/// (30 s, not the tests' usual 2 s): the tests count camera sessions across clients that run
/// one after another, and on a loaded machine the gap between two ffprobe runs can pass 2 s,
/// which would end the camera session and make a second one that no client caused by sharing.
async fn gateway_with_camera(cam: &Camera) -> (Gateway, String) {
    let gw = Gateway::start(|c| c.streams.idle_timeout = Duration::from_secs(30)).await;
    gw.provision("1", &cam.good_url(), true).await;
    let addr = gw
        .app
        .restream
        .as_ref()
        .expect("the restream listens")
        .local_addr();
    (gw, format!("rtsp://{addr}/cam_1"))
}

/// Runs a client to its end, within `bound`.
async fn run(cmd: &mut Command, bound: Duration) -> Output {
    tokio::time::timeout(bound, cmd.kill_on_drop(true).output())
        .await
        .unwrap_or_else(|_| panic!("{cmd:?} did not finish within {bound:?}"))
        .expect("the client runs")
}

/// ffprobe's view of the video stream: (codec_name, width, height).
async fn probe(url: &str, transport: &str) -> (String, u64, u64) {
    let out = run(
        Command::new("ffprobe")
            .args(["-v", "error", "-rtsp_transport", transport])
            .args(["-select_streams", "v:0"])
            .args([
                "-show_entries",
                "stream=codec_name,width,height",
                "-of",
                "json",
            ])
            .arg(url),
        Duration::from_secs(30),
    )
    .await;
    assert!(
        out.status.success(),
        "ffprobe over {transport}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let s = &v["streams"][0];
    (
        s["codec_name"].as_str().unwrap_or_default().to_owned(),
        s["width"].as_u64().unwrap_or_default(),
        s["height"].as_u64().unwrap_or_default(),
    )
}

/// Decodes `n` frames with ffmpeg; returns how many it decoded (one framecrc line each).
async fn decode_frames(url: &str, transport: &str, n: u32) -> usize {
    let out = run(
        Command::new("ffmpeg")
            .args(["-nostdin", "-v", "error", "-rtsp_transport", transport])
            .args(["-i", url, "-an", "-frames:v", &n.to_string()])
            .args(["-f", "framecrc", "-"]),
        Duration::from_secs(40),
    )
    .await;
    assert!(
        out.status.success(),
        "ffmpeg over {transport}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffprobe_and_ffmpeg_read_the_restream_over_tcp_and_udp() {
    let mut cam = Camera::start();
    let (gw, url) = gateway_with_camera(&cam).await;
    assert_eq!(cam.sessions(), (0, 0), "on demand: nothing before a client");
    for transport in ["tcp", "udp"] {
        assert_eq!(
            probe(&url, transport).await,
            ("h264".to_owned(), 320, 240),
            "{transport}"
        );
        assert_eq!(decode_frames(&url, transport, 50).await, 50, "{transport}");
    }
    // The camera id names the same stream.
    let by_id = url.replace("/cam_1", "/1");
    assert_eq!(probe(&by_id, "tcp").await.0, "h264");
    // Every client above read the one camera session the first one started.
    assert_eq!(cam.sessions().1, 1, "one camera session for every client");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gstreamer_rtspsrc_reads_the_restream_over_tcp_and_udp() {
    let cam = Camera::start();
    let (gw, url) = gateway_with_camera(&cam).await;
    for protocols in ["tcp", "udp"] {
        let out = run(
            Command::new("gst-launch-1.0")
                .args(["-q", "rtspsrc", &format!("location={url}")])
                .arg(format!("protocols={protocols}"))
                .args(["!", "rtph264depay", "!", "h264parse", "!", "decodebin"])
                .args(["!", "fakesink", "num-buffers=40"]),
            Duration::from_secs(40),
        )
        .await;
        assert!(
            out.status.success(),
            "gst-launch over {protocols}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_rtsp_clients_share_one_camera_session() {
    let mut cam = Camera::start();
    let (gw, url) = gateway_with_camera(&cam).await;
    let clients: Vec<tokio::process::Child> = (0..20)
        .map(|i| {
            Command::new("ffmpeg")
                .args(["-nostdin", "-v", "error", "-rtsp_transport"])
                .arg(if i % 4 == 3 { "udp" } else { "tcp" })
                .args(["-i", &url, "-an", "-frames:v", "300", "-c", "copy"])
                .args(["-f", "null", "-"])
                .kill_on_drop(true)
                .spawn()
                .expect("start ffmpeg")
        })
        .collect();
    let restream = gw.app.restream.clone().unwrap();
    eventually("twenty RTSP sessions", Duration::from_secs(30), || {
        (restream.sessions("cam_1") == 20).then_some(())
    })
    .await;
    // A client counts as a viewer from its PLAY.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let v = gw.get_json("/streams/cam_1/viewers").await;
        if v["by_protocol"]["rtsp"] == 20 {
            assert_eq!(v["viewers"], 20, "{v}");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(cam.sessions(), (1, 1), "twenty clients, one camera session");
    for (i, c) in clients.into_iter().enumerate() {
        let out = tokio::time::timeout(Duration::from_secs(40), c.wait_with_output())
            .await
            .expect("the client reads its 300 frames in time")
            .unwrap();
        assert!(out.status.success(), "client {i}: {out:?}");
    }
    // They are gone, and so are their viewers.
    eventually("no RTSP session left", Duration::from_secs(10), || {
        (restream.sessions("cam_1") == 0).then_some(())
    })
    .await;
    let v = gw.get_json("/streams/cam_1/viewers").await;
    assert_eq!(v["by_protocol"]["rtsp"], 0, "{v}");
    assert_eq!(cam.sessions().1, 1, "still the one camera session");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_h265_camera_is_restreamed_as_h265() {
    let cam = Camera::start_h265();
    let (gw, url) = gateway_with_camera(&cam).await;
    assert_eq!(probe(&url, "tcp").await, ("hevc".to_owned(), 320, 240));
    assert_eq!(decode_frames(&url, "udp", 30).await, 30);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_streams_are_404_and_shutdown_closes_clients() {
    let cam = Camera::start();
    let (gw, url) = gateway_with_camera(&cam).await;
    let out = run(
        Command::new("ffprobe")
            .args(["-v", "error", "-rtsp_transport", "tcp"])
            .arg(url.replace("/cam_1", "/cam_2")),
        Duration::from_secs(20),
    )
    .await;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("404"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A client reading "forever" is closed by the gateway's shutdown.
    let mut reader = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-rtsp_transport", "tcp"])
        .args(["-i", &url, "-an", "-c", "copy", "-f", "null", "-"])
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let restream = gw.app.restream.clone().unwrap();
    eventually("the reader's session", Duration::from_secs(20), || {
        (restream.sessions("cam_1") == 1).then_some(())
    })
    .await;
    gw.stop().await;
    assert_eq!(restream.total_sessions(), 0);
    tokio::time::timeout(Duration::from_secs(20), reader.wait())
        .await
        .expect("ffmpeg ends when the gateway closes its connection")
        .unwrap();
}

/// Sends one RTSP request on `tcp` and reads its response head and body (enough of RTSP for
/// a client that then stops reading); the status and the response's text.
async fn request(tcp: &mut tokio::net::TcpStream, req: String) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    tcp.write_all(req.as_bytes()).await.unwrap();
    let mut text = Vec::new();
    let mut byte = [0u8; 1];
    while !text.ends_with(b"\r\n\r\n") {
        tcp.read_exact(&mut byte).await.unwrap();
        text.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&text).into_owned();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length:"))
        .map_or(0, |v| v.trim().parse().unwrap());
    let mut body = vec![0u8; len];
    tcp.read_exact(&mut body).await.unwrap();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, head + &String::from_utf8_lossy(&body))
}

/// A TCP client that PLAYs and then reads nothing (a 4 KiB receive buffer): another client,
/// ffmpeg, still reads the same camera at its rate, the stalled session is kept, and once the
/// stalled client reads again, frames flow to it again. With `[rtsp] max_backlog` below the
/// cached GOP, ffmpeg's session starts by skipping to the next keyframe; before the backlog
/// was read live it stayed "full" forever and ffmpeg got no frame in 40 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_never_slows_another() {
    use tokio::io::AsyncReadExt;
    let cam = Camera::start();
    let gw = Gateway::start(|c| {
        c.streams.idle_timeout = Duration::from_secs(30);
        // Smaller than ffmpeg's first burst (the cached GOP, about 68 KB here), so its session
        // starts by skipping: it must see its connection drain and resume at a keyframe.
        c.rtsp.max_backlog = camgate::config::ByteSize(64 * 1024);
    })
    .await;
    gw.provision("1", &cam.good_url(), true).await;
    let addr = gw.app.restream.as_ref().unwrap().local_addr();
    let url = format!("rtsp://{addr}/cam_1");
    // A small receive buffer, so what camgate writes to it backs up into camgate quickly.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut slow = socket.connect(addr).await.unwrap();
    let (status, sdp) = request(
        &mut slow,
        format!("DESCRIBE {url} RTSP/1.0\r\nCSeq: 1\r\nAccept: application/sdp\r\n\r\n"),
    )
    .await;
    assert_eq!(status, 200, "{sdp}");
    let control = sdp
        .split("m=video")
        .nth(1)
        .and_then(|v| v.lines().find_map(|l| l.strip_prefix("a=control:")))
        .expect("a video track")
        .trim()
        .to_owned();
    let track = if control.starts_with("rtsp://") {
        control
    } else {
        format!("{url}/{control}")
    };
    let (status, setup) = request(
        &mut slow,
        format!(
            "SETUP {track} RTSP/1.0\r\nCSeq: 2\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n"
        ),
    )
    .await;
    assert_eq!(status, 200, "{setup}");
    let session = setup
        .lines()
        .find_map(|l| l.strip_prefix("Session:"))
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .trim()
        .to_owned();
    use tokio::io::AsyncWriteExt;
    slow.write_all(
        format!("PLAY {url} RTSP/1.0\r\nCSeq: 3\r\nSession: {session}\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    // From here on the slow client reads nothing. ffmpeg reads 100 frames (4 s of the
    // camera), all while the first client's socket is full.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(decode_frames(&url, "tcp", 100).await, 100);
    let restream = gw.app.restream.clone().unwrap();
    assert_eq!(
        restream.sessions("cam_1"),
        1,
        "the stalled session is still served"
    );
    assert_eq!(gw.state_of("1").await, "live");
    // It reads again: after what was queued (its response, then at most the backlog), RTP
    // keeps coming. More than the backlog plus the socket buffers arrives within 10 s only if
    // camgate sends it new frames (the stall skipped it ahead, it did not end it).
    let mut got = 0usize;
    let mut buf = vec![0u8; 65536];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while got < 1024 * 1024 && tokio::time::Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(2), slow.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => got += n,
            other => panic!("the stalled client's session ended: {other:?} after {got} bytes"),
        }
    }
    assert!(got >= 1024 * 1024, "{got} bytes in 10 s after the stall");
    gw.stop().await;
}
