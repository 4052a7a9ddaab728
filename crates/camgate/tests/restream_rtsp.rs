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
