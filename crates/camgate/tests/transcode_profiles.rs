//! Transcode profiles against real peers: an H.265 camera from GStreamer (x265enc), ffmpeg
//! (libx264) as camgate's child, ffprobe as the player. The profile streams play as H.264 at
//! the profile's height, the camera keeps one RTSP session for all of them, a killed ffmpeg
//! is restarted, and an unwatched profile goes idle with no ffmpeg left behind.

mod support;

use std::time::Duration;

use support::{Camera, Gateway, eventually};

/// The tests count this process's ffmpeg children, so they run one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Our ffmpeg children (pids), from /proc: processes named ffmpeg whose parent is this test.
fn ffmpeg_children() -> Vec<u32> {
    let me = std::process::id();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // pid (comm) state ppid ...
        let Some(close) = stat.rfind(')') else {
            continue;
        };
        let comm = stat[..close].split('(').nth(1).unwrap_or("");
        let ppid: u32 = stat[close + 2..]
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        let zombie = stat[close + 2..].starts_with('Z');
        if comm == "ffmpeg" && ppid == me && !zombie {
            out.push(pid);
        }
    }
    out
}

/// ffprobe reads `path`'s playlist for a few seconds; returns (codec, width, height, frames).
async fn ffprobe(gw: &Gateway, path: &str) -> (String, u64, u64, u64) {
    let out = tokio::time::timeout(
        Duration::from_secs(90),
        tokio::process::Command::new("ffprobe")
            .args(["-v", "error", "-select_streams", "v:0", "-count_frames"])
            .args(["-read_intervals", "%+3"])
            .args([
                "-show_entries",
                "stream=codec_name,width,height,nb_read_frames",
            ])
            .args(["-of", "json"])
            .arg(gw.url(&format!("/hls/{path}/index.m3u8")))
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("ffprobe finished within 90 s")
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let s = &v["streams"][0];
    (
        s["codec_name"].as_str().unwrap_or("").to_owned(),
        s["width"].as_u64().unwrap_or(0),
        s["height"].as_u64().unwrap_or(0),
        s["nb_read_frames"]
            .as_str()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0),
    )
}

fn with_small_profile(c: &mut camgate::config::Config) {
    c.profiles = toml::from_str(
        "[small]\nheight = 120\nfps = 10\nbitrate = \"300k\"\nencoder = \"libx264\"\n",
    )
    .unwrap();
}

fn state(gw: &Gateway, path: &str) -> String {
    gw.app
        .registry
        .get(path)
        .map(|s| s.state().state.as_str().to_owned())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h265_camera_plays_as_h264_through_its_profiles_on_one_session() {
    let _serial = SERIAL.lock().await;
    let mut cam = Camera::start_h265();
    let gw = Gateway::start(with_small_profile).await;
    gw.provision("t1", &cam.good_url(), true).await;

    // The camera's own stream is H.265; `~h264` is the same picture in H.264.
    let (codec, w, h, frames) = ffprobe(&gw, "cam_t1~h264").await;
    assert_eq!((codec.as_str(), w, h), ("h264", 320, 240));
    assert!(frames >= 20, "{frames} frames in 3 s");

    // A named profile: H.264 at its own height (width keeps the aspect, even).
    let (codec, w, h, frames) = ffprobe(&gw, "cam_t1~small").await;
    assert_eq!((codec.as_str(), w, h), ("h264", 160, 120));
    assert!(frames >= 10, "{frames} frames in 3 s at 10 fps");

    // Both profiles were fed from one camera session.
    let (_, total) = cam.sessions();
    assert_eq!(total, 1, "the camera saw {total} RTSP sessions");

    // The profile's status reports fps and the codec it sends.
    let st = gw.get_json("/streams").await;
    let small = st
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stream_path"] == "cam_t1~small")
        .cloned()
        .unwrap_or_else(|| panic!("cam_t1~small in {st}"));
    assert_eq!(small["camera_id"], "t1");

    // The master playlist lists the H.265 original and both H.264 profiles.
    let master = reqwest::get(gw.url("/hls/cam_t1/master.m3u8"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(master.contains("CODECS=\"hvc1."), "{master}");
    assert!(
        master.contains("RESOLUTION=160x120,CODECS=\"avc1.")
            && master.contains("../cam_t1~small/index.m3u8"),
        "{master}"
    );
    assert!(master.contains("../cam_t1~h264/index.m3u8"), "{master}");

    // Nobody watches: the profiles go idle, their ffmpeg children end, then the camera.
    eventually("profiles idle", Duration::from_secs(60), || {
        (state(&gw, "cam_t1~small") == "idle" && state(&gw, "cam_t1~h264") == "idle").then_some(())
    })
    .await;
    eventually("no ffmpeg child left", Duration::from_secs(10), || {
        ffmpeg_children().is_empty().then_some(())
    })
    .await;
    gw.wait_state("t1", "idle", Duration::from_secs(30)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_ffmpeg_is_restarted_and_its_error_reported() {
    let _serial = SERIAL.lock().await;
    let cam = Camera::start_h265();
    let gw = Gateway::start(with_small_profile).await;
    gw.provision("t2", &cam.good_url(), false).await;
    let profile = gw.app.registry.get("cam_t2~small").expect("profile stream");
    // A viewer keeps the profile wanted while we kill its ffmpeg.
    let _viewer = profile.hold();
    eventually("profile live", Duration::from_secs(40), || {
        (profile.state().state.as_str() == "live").then_some(())
    })
    .await;
    let pids = eventually("an ffmpeg child", Duration::from_secs(5), || {
        let p = ffmpeg_children();
        (!p.is_empty()).then_some(p)
    })
    .await;
    assert_eq!(pids.len(), 1, "{pids:?}");
    // SAFETY: kill(2) on a pid we just read as our own child.
    unsafe { libc::kill(pids[0] as i32, libc::SIGKILL) };
    eventually("profile left live", Duration::from_secs(10), || {
        (profile.state().state.as_str() != "live").then_some(())
    })
    .await;
    let err = profile.state().last_error.unwrap_or_default();
    assert!(err.contains("ffmpeg ended"), "{err}");
    eventually("profile live again", Duration::from_secs(30), || {
        (profile.state().state.as_str() == "live").then_some(())
    })
    .await;
    let now = ffmpeg_children();
    assert_eq!(now.len(), 1, "{now:?}");
    assert_ne!(now[0], pids[0]);
    // The camera itself never noticed.
    assert_eq!(gw.state_of("t2").await, "live");
}
