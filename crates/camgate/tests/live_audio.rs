//! Audio end to end against real peers: GStreamer's RTSP server as a camera with H.264 and a
//! second audio stream (AAC, G.711 A-law, Opus), read by ffprobe through our LL-HLS and MSE,
//! and played by headless Chromium (hls.js and the dashboard's MSE player, tests/browser/
//! play.mjs), which must decode the AAC (`webkitAudioDecodedByteCount`).
//! AAC must come out as an audio track at the camera's rate, in sync with the video; audio we
//! do not carry (G.711 in HLS/MSE, Opus anywhere) must leave the video playing.

mod support;

use std::time::Duration;

use futures::StreamExt;
use support::camera::Audio;
use support::{Camera, Gateway};
use tokio_tungstenite::tungstenite::Message;

/// ffprobe's view of `url` over its first four seconds: every stream with its codec, rate and
/// the packets and frames it read.
async fn probe(url: &str) -> Vec<serde_json::Value> {
    support::probe::streams(
        url,
        None,
        4,
        "codec_type,codec_name,sample_rate,channels,width,height,\
         nb_read_frames,nb_read_packets,start_time",
        true,
    )
    .await
}

fn stream<'a>(streams: &'a [serde_json::Value], kind: &str) -> Option<&'a serde_json::Value> {
    streams.iter().find(|s| s["codec_type"] == kind)
}

fn count(s: &serde_json::Value, field: &str) -> u64 {
    s[field].as_str().and_then(|v| v.parse().ok()).unwrap_or(0)
}

fn start_time(s: &serde_json::Value) -> f64 {
    s["start_time"]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aac_camera_gives_hls_a_video_and_an_aac_track_in_sync() {
    let cam = Camera::options().audio(Audio::Aac).start();
    let gw = Gateway::start(|_| {}).await;
    gw.provision("a1", &cam.good_url(), true).await;
    let streams = probe(&gw.url("/hls/cam_a1/index.m3u8")).await;
    eprintln!("ffprobe of the AAC camera's LL-HLS: {streams:?}");
    let video = stream(&streams, "video").unwrap_or_else(|| panic!("no video: {streams:?}"));
    assert_eq!(video["codec_name"], "h264", "{video}");
    assert_eq!(
        (video["width"].clone(), video["height"].clone()),
        (320.into(), 240.into())
    );
    assert!(
        count(video, "nb_read_frames") >= 75,
        "3 s of video: {video}"
    );
    let audio = stream(&streams, "audio").unwrap_or_else(|| panic!("no audio: {streams:?}"));
    assert_eq!(audio["codec_name"], "aac", "{audio}");
    assert_eq!(audio["sample_rate"], "48000", "{audio}");
    assert_eq!(audio["channels"], 1, "{audio}");
    // 48 kHz AAC is 46.9 frames a second: three seconds of it decoded.
    assert!(
        count(audio, "nb_read_frames") >= 140,
        "3 s of audio: {audio}"
    );
    // Both tracks start together (the camera starts them together): within 100 ms.
    let skew = (start_time(audio) - start_time(video)).abs();
    assert!(
        skew < 0.1,
        "audio starts {skew} s from the video: {streams:?}"
    );

    // The multivariant playlist names both codecs.
    let master = reqwest::get(gw.url("/hls/cam_a1/master.m3u8"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(master.contains(",mp4a.40.2\""), "{master}");
    assert!(master.contains("CODECS=\"avc1."), "{master}");
}

/// Over UDP each stream has its own ports: the audio's RTP and RTCP arrive apart from the
/// video's and must still come out as the AAC track, in sync.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aac_over_udp_is_carried_too() {
    let cam = Camera::options().audio(Audio::Aac).start();
    let gw = Gateway::start(|_| {}).await;
    gw.provision_json(serde_json::json!({
        "camera_id": "a9",
        "rtsp_url": cam.good_url(),
        "on_demand": true,
        "transport": "udp",
    }))
    .await;
    let streams = probe(&gw.url("/hls/cam_a9/index.m3u8")).await;
    let video = stream(&streams, "video").unwrap_or_else(|| panic!("no video: {streams:?}"));
    assert_eq!(video["codec_name"], "h264", "{video}");
    let audio = stream(&streams, "audio").unwrap_or_else(|| panic!("no audio: {streams:?}"));
    assert_eq!(audio["codec_name"], "aac", "{audio}");
    assert!(
        count(audio, "nb_read_frames") >= 140,
        "3 s of audio: {audio}"
    );
    let skew = (start_time(audio) - start_time(video)).abs();
    assert!(
        skew < 0.1,
        "audio starts {skew} s from the video: {streams:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pcma_camera_plays_its_video_alone_in_hls() {
    let mut cam = Camera::options().audio(Audio::Pcma).start();
    let gw = Gateway::start(|_| {}).await;
    gw.provision("a2", &cam.good_url(), true).await;
    let streams = probe(&gw.url("/hls/cam_a2/index.m3u8")).await;
    let video = stream(&streams, "video").unwrap_or_else(|| panic!("no video: {streams:?}"));
    assert_eq!(video["codec_name"], "h264", "{video}");
    assert!(
        count(video, "nb_read_frames") >= 75,
        "3 s of video: {video}"
    );
    // G.711 is not put into fMP4 (browsers' MSE does not play it).
    assert!(stream(&streams, "audio").is_none(), "{streams:?}");
    // The camera's audio reached the hub all the same: one session, both streams set up.
    let hub = gw.app.live.get("a2").expect("the camera's stream");
    let audio = hub
        .hub()
        .audio_params()
        .expect("the hub saw the G.711 audio");
    assert_eq!(
        (audio.codec, audio.sample_rate),
        (media::AudioCodec::Pcma, 8000)
    );
    assert_eq!(cam.sessions().0, 1);
    let master = reqwest::get(gw.url("/hls/cam_a2/master.m3u8"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!master.contains("mp4a"), "{master}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn camera_with_audio_we_cannot_depacketize_plays_its_video() {
    // retina has no Opus depacketizer: the audio stream is left out, the video plays.
    let cam = Camera::options().audio(Audio::Opus).start();
    let gw = Gateway::start(|_| {}).await;
    gw.provision("a3", &cam.good_url(), true).await;
    let streams = probe(&gw.url("/hls/cam_a3/index.m3u8")).await;
    let video = stream(&streams, "video").unwrap_or_else(|| panic!("no video: {streams:?}"));
    assert!(
        count(video, "nb_read_frames") >= 75,
        "3 s of video: {video}"
    );
    assert!(stream(&streams, "audio").is_none(), "{streams:?}");
    assert_eq!(gw.state_of("a3").await, "live");
}

/// Messages of an MSE socket for about `secs` seconds after its init segment: the MIME type
/// and the byte stream a SourceBuffer would be given.
async fn mse_bytes(gw: &Gateway, path: &str, secs: u64) -> (String, Vec<u8>) {
    let mut ws = gw.ws(&format!("/mse/{path}")).await;
    let mut next = async || {
        tokio::time::timeout(Duration::from_secs(20), ws.next())
            .await
            .expect("a message within 20 s")
            .expect("socket open")
            .expect("no socket error")
    };
    let Message::Text(mime) = next().await else {
        panic!("first message must be the MIME type")
    };
    let mut bytes = Vec::new();
    let until = tokio::time::Instant::now() + Duration::from_secs(secs);
    while tokio::time::Instant::now() < until {
        if let Message::Binary(b) = next().await {
            bytes.extend_from_slice(&b);
        }
    }
    (mime.to_string(), bytes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mse_carries_aac_next_to_the_video() {
    let cam = Camera::options().audio(Audio::Aac).start();
    let gw = Gateway::start(|_| {}).await;
    gw.provision("a4", &cam.good_url(), true).await;
    // An HLS player first, so the camera is live with audio in its cached GOP when the MSE
    // socket decides its tracks (as a dashboard opened on a live camera does).
    let _ = probe(&gw.url("/hls/cam_a4/index.m3u8")).await;
    let (mime, bytes) = mse_bytes(&gw, "cam_a4", 4).await;
    assert!(
        mime.starts_with("video/mp4; codecs=\"avc1.") && mime.ends_with(",mp4a.40.2\""),
        "{mime}"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mse.mp4");
    std::fs::write(&file, &bytes).unwrap();
    let streams = probe(file.to_str().unwrap()).await;
    let video = stream(&streams, "video").unwrap_or_else(|| panic!("no video: {streams:?}"));
    assert_eq!(video["codec_name"], "h264", "{video}");
    assert!(count(video, "nb_read_frames") >= 50, "{video}");
    let audio = stream(&streams, "audio").unwrap_or_else(|| panic!("no audio: {streams:?}"));
    assert_eq!(audio["codec_name"], "aac", "{audio}");
    assert_eq!(audio["sample_rate"], "48000", "{audio}");
    assert!(count(audio, "nb_read_frames") >= 90, "{audio}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mse_of_a_pcma_camera_is_video_only() {
    let cam = Camera::options().audio(Audio::Pcma).start();
    let gw = Gateway::start(|_| {}).await;
    gw.provision("a5", &cam.good_url(), true).await;
    let _ = probe(&gw.url("/hls/cam_a5/index.m3u8")).await;
    let (mime, bytes) = mse_bytes(&gw, "cam_a5", 3).await;
    assert!(!mime.contains(','), "one codec: {mime}");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mse.mp4");
    std::fs::write(&file, &bytes).unwrap();
    let streams = probe(file.to_str().unwrap()).await;
    assert!(stream(&streams, "video").is_some(), "{streams:?}");
    assert!(stream(&streams, "audio").is_none(), "{streams:?}");
}

/// Headless Chromium plays `path` with `mode` (tests/browser/play.mjs); its RESULT.
async fn chromium(gw: &Gateway, path: &str, mode: &str) -> serde_json::Value {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser/play.mjs");
    let child = tokio::process::Command::new("node")
        .arg(script)
        .args([gw.base.as_str(), path, mode])
        .current_dir(root)
        // Two seconds of playing, so audio has been decoded for a while.
        .env("PLAY_SECONDS", "2")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node (see README: npm ci)");
    let out = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
        .await
        .expect("the browser finished within 120 s")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let result = stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .unwrap_or_else(|| panic!("no RESULT line; stdout {stdout} stderr {stderr}"));
    serde_json::from_str(result).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_decodes_the_aac_track_with_hls_js_and_mse() {
    let cam = Camera::options().audio(Audio::Aac).start();
    let gw = Gateway::start(|_| {}).await;
    gw.provision("a6", &cam.good_url(), true).await;
    for mode in ["hlsjs", "mse"] {
        let v = chromium(&gw, "cam_a6", mode).await;
        eprintln!("{mode}: {v}");
        assert_eq!(v["ok"], true, "{mode} did not play: {v}");
        let bytes = v["audio_bytes"].as_u64().unwrap_or(0);
        // AAC bytes fed to the decoder: voaacenc's 128 kbit/s is 16 KB a second, so two
        // seconds of playing is about 32 KB; 10 KB is well over half a second of audio.
        assert!(bytes > 10_000, "{mode} decoded {bytes} bytes of audio: {v}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_plays_a_pcma_camera_without_audio() {
    let cam = Camera::options().audio(Audio::Pcma).start();
    let gw = Gateway::start(|_| {}).await;
    gw.provision("a7", &cam.good_url(), true).await;
    let v = chromium(&gw, "cam_a7", "hlsjs").await;
    assert_eq!(v["ok"], true, "did not play: {v}");
    assert_eq!(v["audio_bytes"], 0, "{v}");
}

/// The restream URL of `cam_{id}`.
fn restream_url(gw: &Gateway, id: &str) -> String {
    let addr = gw
        .app
        .restream
        .as_ref()
        .expect("the restream listens")
        .local_addr();
    format!("rtsp://{addr}/cam_{id}")
}

/// ffprobe reads our RTSP restream of an AAC camera (a cold, on-demand one: the first
/// DESCRIBE waits a moment for the audio) and of a PCMA camera over TCP and UDP: both tracks,
/// decoded, starting together.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rtsp_restream_carries_aac_and_pcma() {
    // GStreamer's G.711 packets are 1024 samples (128 ms): fewer frames, a coarser start.
    for (audio, id, codec, rate, frames, skew_max) in [
        (Audio::Aac, "r1", "aac", "48000", 100, 0.1),
        (Audio::Pcma, "r2", "pcm_alaw", "8000", 18, 0.1 + 0.128),
    ] {
        let cam = Camera::options().audio(audio).start();
        let gw = Gateway::start(|_| {}).await;
        gw.provision(id, &cam.good_url(), true).await;
        let url = restream_url(&gw, id);
        for transport in ["tcp", "udp"] {
            let out = tokio::time::timeout(
                Duration::from_secs(90),
                tokio::process::Command::new("ffprobe")
                    .args(["-v", "error", "-rtsp_transport", transport])
                    .args(["-count_frames", "-read_intervals", "%+3"])
                    .args([
                        "-show_entries",
                        "stream=codec_type,codec_name,sample_rate,nb_read_frames,start_time",
                        "-of",
                        "json",
                    ])
                    .arg(&url)
                    .kill_on_drop(true)
                    .output(),
            )
            .await
            .expect("ffprobe finished")
            .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            let streams = v["streams"].as_array().cloned().unwrap_or_default();
            eprintln!("restream of {codec} over {transport}: {streams:?}");
            let video = stream(&streams, "video").unwrap_or_else(|| panic!("{streams:?}"));
            assert_eq!(video["codec_name"], "h264", "{video}");
            assert!(count(video, "nb_read_frames") >= 40, "{video}");
            let a = stream(&streams, "audio").unwrap_or_else(|| panic!("no audio: {streams:?}"));
            assert_eq!(
                (a["codec_name"].as_str(), a["sample_rate"].as_str()),
                (Some(codec), Some(rate)),
                "{a}"
            );
            assert!(count(a, "nb_read_frames") >= frames, "{a}");
            let skew = (start_time(a) - start_time(video)).abs();
            assert!(
                skew < skew_max,
                "audio starts {skew} s from the video: {streams:?}"
            );
        }
    }
}

/// The outputs that do not carry audio yet keep serving the video of a camera with AAC:
/// snapshots (an independent JPEG decoder) and the status; the restream's video too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outputs_without_audio_keep_serving_the_video_of_an_aac_camera() {
    let cam = Camera::options().audio(Audio::Aac).start();
    let gw = Gateway::start(|_| {}).await;
    gw.provision("a8", &cam.good_url(), true).await;
    let streams = probe(&restream_url(&gw, "a8")).await;
    let video = stream(&streams, "video").unwrap_or_else(|| panic!("no video: {streams:?}"));
    assert_eq!(video["codec_name"], "h264", "{video}");
    assert!(count(video, "nb_read_frames") >= 50, "{video}");

    let r = reqwest::get(gw.url("/cameras/a8/snapshot.jpg"))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let jpeg = r.bytes().await.unwrap();
    let img = image::load_from_memory_with_format(&jpeg, image::ImageFormat::Jpeg)
        .expect("an independent decoder reads the JPEG");
    assert_eq!((img.width(), img.height()), (320, 240));

    let st = gw.get_json("/cameras/a8/status").await;
    assert_eq!(st["state"], "live", "{st}");
    // The video's statistics are not the audio's: 25 fps, not 25 + 47.
    let fps = st["fps"].as_f64().unwrap_or(0.0);
    assert!((20.0..30.0).contains(&fps), "{st}");
}
