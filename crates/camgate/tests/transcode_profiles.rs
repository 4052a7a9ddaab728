//! Transcode profiles and grids against real peers: GStreamer cameras (x264enc, x265enc),
//! ffmpeg (libx264) as camgate's child, ffprobe as the player, the `camgate` binary where a
//! restart or a `kill -9` is the point. The profile streams play as H.264 at the profile's
//! height, the camera keeps one RTSP session for all of them, a killed ffmpeg is restarted,
//! an unwatched profile goes idle with no ffmpeg left behind; provisioning attaches profiles
//! per camera across a restart; a grid plays at its size through a camera going down; start
//! and stop cycles leave no ffmpeg child, and camgate's `kill -9` takes its ffmpegs with it.

mod support;

use std::time::Duration;

use support::{Camera, Gateway, eventually};

/// The tests count this process's ffmpeg children, so they run one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Processes named ffmpeg whose parent is `parent`, from /proc: (pid, is a zombie).
fn ffmpeg_processes(parent: u32) -> Vec<(u32, bool)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Some((comm, state, ppid)) = proc_stat(pid)
            && comm == "ffmpeg"
            && ppid == parent
        {
            out.push((pid, state == 'Z'));
        }
    }
    out
}

/// (comm, state, ppid) of `pid` from /proc/PID/stat; `None` when there is no such process.
fn proc_stat(pid: u32) -> Option<(String, char, u32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // pid (comm) state ppid ...
    let close = stat.rfind(')')?;
    let comm = stat[..close].split_once('(')?.1.to_owned();
    let mut rest = stat[close + 2..].split_whitespace();
    let state = rest.next()?.chars().next()?;
    let ppid = rest.next()?.parse().ok()?;
    Some((comm, state, ppid))
}

/// Our ffmpeg children (pids) that are running.
fn ffmpeg_children() -> Vec<u32> {
    ffmpeg_processes(std::process::id())
        .into_iter()
        .filter(|(_, zombie)| !zombie)
        .map(|(pid, _)| pid)
        .collect()
}

/// ffprobe reads `path`'s playlist for a few seconds; returns (codec, width, height, frames).
async fn ffprobe(gw: &Gateway, path: &str) -> (String, u64, u64, u64) {
    ffprobe_url(&gw.url(&format!("/hls/{path}/index.m3u8"))).await
}

/// ffprobe reads the playlist at `url` for a few seconds: (codec, width, height, frames).
async fn ffprobe_url(url: &str) -> (String, u64, u64, u64) {
    let s = support::probe::video(url, 3).await;
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

    // A snapshot of the H.265 camera: decoded from its `~h264` profile (OpenH264 reads no
    // H.265), which the request starts like an idle camera.
    let jpeg = snapshot(&gw, "cam_t1").await;
    let img = image::load_from_memory_with_format(&jpeg, image::ImageFormat::Jpeg).unwrap();
    assert_eq!((img.width(), img.height()), (320, 240));

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

/// The paths in `/streams` that belong to `camera_id`, sorted.
async fn stream_paths(base: &str, camera_id: &str) -> Vec<String> {
    let st = get_json(base, "/streams").await;
    let mut v: Vec<String> = st
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["camera_id"] == camera_id)
        .map(|s| s["stream_path"].as_str().unwrap().to_owned())
        .collect();
    v.sort();
    v
}

async fn get_json(base: &str, path: &str) -> serde_json::Value {
    let r = support::client()
        .get(format!("{base}{path}"))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{path}: {}", r.status());
    r.json().await.unwrap()
}

async fn status_of(base: &str, path: &str) -> u16 {
    support::client()
        .get(format!("{base}{path}"))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn provision(base: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
    let r = support::client()
        .post(format!("{base}/cameras/provision"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or_default())
}

const TWO_PROFILES: &str = "[streams]\nidle_timeout = \"2s\"\n\
    [profiles.small]\nheight = 120\nfps = 10\nbitrate = \"300k\"\nencoder = \"libx264\"\n\
    [profiles.mid]\nheight = 180\nfps = 10\nbitrate = \"500k\"\nencoder = \"libx264\"\n";

/// The `camgate` binary, twice over one data directory: what provisioning attached is what
/// is served, before and after the restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provisioned_profiles_are_the_ones_served_and_survive_a_restart() {
    let _serial = SERIAL.lock().await;
    let cam = Camera::start();
    let dir = tempfile::tempdir().unwrap();
    let (mut first, base) = serve(dir.path(), TWO_PROFILES);

    // A profile the config does not have: 422, naming it, and nothing is stored.
    let (status, body) = provision(
        &base,
        serde_json::json!({"camera_id": "p1", "rtsp_url": cam.good_url(), "profiles": ["small", "huge"]}),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "unknown_profile", "{body}");
    let msg = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        msg.contains("`huge`") && msg.contains("small"),
        "the message names the profile and the configured ones: {msg}"
    );
    assert_eq!(
        status_of(&base, "/cameras/p1/info").await,
        404,
        "a refused camera is not stored"
    );

    // p1 has `small` only; p2 lists none, so every profile applies (the config's default).
    let (status, body) = provision(
        &base,
        serde_json::json!({"camera_id": "p1", "rtsp_url": cam.good_url(), "profiles": ["small"]}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, _) = provision(
        &base,
        serde_json::json!({"camera_id": "p2", "rtsp_url": cam.good_url()}),
    )
    .await;
    assert_eq!(status, 201);
    let info = get_json(&base, "/cameras/p1/info").await;
    assert_eq!(info["profiles"], serde_json::json!(["small"]), "{info}");
    assert_eq!(
        get_json(&base, "/cameras/p2/info").await["profiles"],
        serde_json::Value::Null
    );
    assert_eq!(
        stream_paths(&base, "p1").await,
        ["cam_p1", "cam_p1~h264", "cam_p1~small"]
    );
    assert_eq!(
        stream_paths(&base, "p2").await,
        ["cam_p2", "cam_p2~h264", "cam_p2~mid", "cam_p2~small"]
    );
    assert_eq!(status_of(&base, "/hls/cam_p1~mid/index.m3u8").await, 404);
    support::process::signal(&first.0, "TERM");
    support::process::wait_exit(
        &mut first.0,
        Duration::from_secs(20),
        "camgate stops on SIGTERM",
    );

    // After a restart over the same data directory: the same attachment, and it plays.
    let (_second, base) = serve(dir.path(), TWO_PROFILES);
    let info = get_json(&base, "/cameras/p1/info").await;
    assert_eq!(info["profiles"], serde_json::json!(["small"]), "{info}");
    assert_eq!(
        stream_paths(&base, "p1").await,
        ["cam_p1", "cam_p1~h264", "cam_p1~small"]
    );
    assert_eq!(status_of(&base, "/hls/cam_p1~mid/index.m3u8").await, 404);
    let (codec, w, h, frames) = ffprobe_url(&format!("{base}/hls/cam_p1~small/index.m3u8")).await;
    assert_eq!((codec.as_str(), w, h), ("h264", 160, 120));
    assert!(frames >= 10, "{frames} frames in 3 s at 10 fps");
    // The master playlist lists what the camera has, not every configured profile.
    let master = support::client()
        .get(format!("{base}/hls/cam_p1/master.m3u8"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(master.contains("../cam_p1~small/index.m3u8"), "{master}");
    assert!(!master.contains("~mid"), "{master}");

    // Re-provisioned with `[]`: only the built-in `~h264` is left.
    let (status, _) = provision(
        &base,
        serde_json::json!({"camera_id": "p1", "rtsp_url": cam.good_url(), "profiles": []}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(stream_paths(&base, "p1").await, ["cam_p1", "cam_p1~h264"]);
    assert_eq!(
        get_json(&base, "/cameras/p1/info").await["profiles"],
        serde_json::json!([])
    );
}

/// Four 320x240 cameras in a 320x240 grid (2x2 tiles of 160x120).
fn with_grid(c: &mut camgate::config::Config) {
    c.grids = toml::from_str(
        "[wall]\ncameras = [\"g1\", \"g2\", \"g3\", \"g4\"]\nsize = \"320x240\"\nfps = 10\n\
         bitrate = \"400k\"\nencoder = \"libx264\"\n",
    )
    .unwrap();
}

/// How much the luma varies (standard deviation) in a `w`x`h` rectangle at (`x`, `y`) of a
/// JPEG, decoded by ffmpeg: a flat placeholder tile is near 0, the camera's colour bars far
/// above.
async fn luma_spread(jpeg: &[u8], x: u32, y: u32, w: u32, h: u32) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("snap.jpg");
    std::fs::write(&file, jpeg).unwrap();
    let out = tokio::process::Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(&file)
        .args(["-vf", &format!("crop={w}:{h}:{x}:{y},format=gray")])
        .args(["-f", "rawvideo", "-"])
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout.len(), (w * h) as usize);
    let n = out.stdout.len() as f64;
    let mean = out.stdout.iter().map(|&b| f64::from(b)).sum::<f64>() / n;
    let var = out
        .stdout
        .iter()
        .map(|&b| (f64::from(b) - mean).powi(2))
        .sum::<f64>()
        / n;
    var.sqrt()
}

/// Waits (30 s at most) until the grid `wall`'s 160x120 tile at `at` has a luma spread that
/// `ok` accepts.
async fn wait_tile(gw: &Gateway, at: (u32, u32), what: &str, ok: impl Fn(f64) -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let spread = luma_spread(&snapshot(gw, "wall").await, at.0, at.1, 160, 120).await;
        if ok(spread) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the tile at {at:?} does not show {what} (luma spread {spread})"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn snapshot(gw: &Gateway, path: &str) -> Vec<u8> {
    let r = support::client()
        .get(gw.url(&format!("/streams/{path}/snapshot.jpg")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "snapshot of {path}");
    assert_eq!(r.headers()["content-type"], "image/jpeg");
    r.bytes().await.unwrap().to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grid_of_four_cameras_plays_at_its_size_and_survives_a_camera_going_down() {
    let _serial = SERIAL.lock().await;
    let cams = [
        Camera::start(),
        Camera::start(),
        Camera::start(),
        Camera::start(),
    ];
    let gw = Gateway::start(with_grid).await;
    for (i, cam) in cams.iter().enumerate() {
        gw.provision(&format!("g{}", i + 1), &cam.good_url(), true)
            .await;
    }
    // A stream with no camera of its own, not a camera.
    let st = gw.get_json("/streams").await;
    let wall = st
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stream_path"] == "wall")
        .cloned()
        .unwrap_or_else(|| panic!("wall in {st}"));
    assert_eq!(wall["camera_id"], serde_json::Value::Null, "{wall}");
    let ids: Vec<String> = gw
        .get_json("/cameras")
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["camera_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, ["g1", "g2", "g3", "g4"]);
    // A camera may not take the grid's name.
    let r = support::client()
        .post(gw.url("/cameras/provision"))
        .json(&serde_json::json!({"camera_id": "x", "rtsp_url": cams[0].good_url(), "stream_path": "wall"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 422);

    // It plays as H.264 at the requested size.
    let (codec, w, h, frames) = ffprobe(&gw, "wall").await;
    assert_eq!((codec.as_str(), w, h), ("h264", 320, 240));
    assert!(frames >= 15, "{frames} frames in 3 s at 10 fps");

    // Watched from now on; each camera is connected once, by the grid.
    let grid = gw.app.registry.get("wall").expect("grid stream");
    let _viewer = grid.hold();
    for id in ["g1", "g2", "g3", "g4"] {
        gw.wait_state(id, "live", Duration::from_secs(20)).await;
    }
    // Tile 2 (top right) shows camera g2's colour bars, not the flat placeholder.
    wait_tile(&gw, (160, 0), "camera g2's bars", |spread| spread > 20.0).await;
    // And tile 4 (bottom right) camera g4's.
    wait_tile(&gw, (160, 120), "camera g4's bars", |spread| spread > 20.0).await;

    // Camera g2 loses power: the grid goes on, with a grey tile in its place.
    let [c1, c2, c3, c4] = cams;
    // Watch the grid's state from here on: it must stay live throughout.
    let left_live = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let watch = {
        let grid = grid.clone();
        let left_live = left_live.clone();
        tokio::spawn(async move {
            loop {
                let st = grid.state();
                let seen = format!("{} {:?}", st.state.as_str(), st.last_error);
                {
                    let mut left = left_live.lock().unwrap();
                    if st.state.as_str() != "live" && left.last() != Some(&seen) {
                        left.push(seen);
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    c2.stop();
    wait_tile(&gw, (160, 0), "the placeholder", |spread| spread < 3.0).await;
    assert_ne!(gw.state_of("g2").await, "live");
    // Still playing: frames keep arriving, ffprobe decodes the grid at its size.
    let n0 = grid.hub().stats().frames_received;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let n1 = grid.hub().stats().frames_received;
    assert!(
        n1 - n0 >= 20,
        "{} grid frames in 3 s with a camera down",
        n1 - n0
    );
    assert_eq!(grid.state().state.as_str(), "live");
    let (codec, w, h, frames) = ffprobe(&gw, "wall").await;
    assert_eq!((codec.as_str(), w, h), ("h264", 320, 240));
    assert!(frames >= 15, "{frames} frames in 3 s with a camera down");
    // The other tiles are still cameras (top left: g1).
    let spread = luma_spread(&snapshot(&gw, "wall").await, 0, 0, 160, 120).await;
    assert!(
        spread > 20.0,
        "tile 1 luma spread {spread}: not the camera's bars"
    );
    watch.abort();
    let left = left_live.lock().unwrap().clone();
    assert!(
        left.is_empty(),
        "the grid left live while a camera was down: {left:?}"
    );
    drop((c1, c3, c4));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_profile_and_grid_start_stop_cycles_leave_no_ffmpeg_child() {
    let _serial = SERIAL.lock().await;
    let cam = Camera::start();
    let gw = Gateway::start(|c| {
        with_small_profile(c);
        c.grids = toml::from_str(
            "[one]\ncameras = [\"c1\"]\nsize = \"160x120\"\nfps = 10\nbitrate = \"200k\"\n\
             encoder = \"libx264\"\n",
        )
        .unwrap();
        c.streams.idle_timeout = Duration::from_millis(500);
    })
    .await;
    // Always connected, so a cycle is the profile's own start and stop.
    gw.provision("c1", &cam.good_url(), false).await;
    gw.wait_state("c1", "live", Duration::from_secs(20)).await;
    let me = std::process::id();
    for path in ["cam_c1~small", "one"] {
        let stream = gw.app.registry.get(path).expect(path);
        let cycles = if path == "one" { 3 } else { 8 };
        for cycle in 0..cycles {
            let viewer = stream.hold();
            eventually(
                &format!("{path} live, cycle {cycle}"),
                Duration::from_secs(30),
                || (stream.state().state.as_str() == "live").then_some(()),
            )
            .await;
            let running = ffmpeg_children();
            assert_eq!(running.len(), 1, "{path} cycle {cycle}: {running:?}");
            drop(viewer);
            eventually(
                &format!("{path} idle, cycle {cycle}"),
                Duration::from_secs(10),
                || (stream.state().state.as_str() == "idle").then_some(()),
            )
            .await;
            // Neither running nor left unreaped.
            eventually(
                &format!("no ffmpeg child after cycle {cycle} of {path}"),
                Duration::from_secs(5),
                || ffmpeg_processes(me).is_empty().then_some(()),
            )
            .await;
        }
    }
    // The camera never noticed.
    assert_eq!(gw.state_of("c1").await, "live");
}

/// `camgate serve` as a process of its own, with a config file; returns it and its address.
fn serve(dir: &std::path::Path, config: &str) -> (support::process::KillOnDrop, String) {
    use std::io::BufRead;
    let file = dir.join("camgate.toml");
    std::fs::write(&file, config).unwrap();
    // Owned by a guard from the start: killed and reaped however the test ends.
    let mut child = support::process::KillOnDrop(
        std::process::Command::new(env!("CARGO_BIN_EXE_camgate"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .current_dir(dir)
            .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"])
            .arg("--config")
            .arg(&file)
            .arg("--data-dir")
            .arg(dir.join("data"))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn camgate"),
    );
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    for out in [
        Box::new(child.0.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(child.0.stderr.take().unwrap()),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let Ok(line) = rx.recv_timeout(left) else {
            panic!("camgate did not start");
        };
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
            && v["message"] == "listening"
        {
            let addr = v["addr"].as_str().unwrap().to_owned();
            return (child, format!("http://{addr}"));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_children_die_with_a_killed_camgate() {
    let _serial = SERIAL.lock().await;
    let cam = Camera::start();
    let dir = tempfile::tempdir().unwrap();
    let (mut child, base) = serve(
        dir.path(),
        "[streams]\nidle_timeout = \"60s\"\n\
         [profiles.small]\nheight = 120\nfps = 10\nbitrate = \"300k\"\nencoder = \"libx264\"\n\
         [grids.wall]\ncameras = [\"k1\"]\nsize = \"160x120\"\nfps = 10\nbitrate = \"200k\"\n\
         encoder = \"libx264\"\n",
    );
    let pid = child.0.id();
    let http = support::client();
    let r = http
        .post(format!("{base}/cameras/provision"))
        .json(&serde_json::json!({"camera_id": "k1", "rtsp_url": cam.good_url()}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    // A playlist request starts each and waits for its first part: ffmpeg is running then.
    for path in ["cam_k1~small", "wall"] {
        let r = http
            .get(format!("{base}/hls/{path}/index.m3u8"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "{path}");
    }
    let pids = eventually(
        "two ffmpeg children of camgate",
        Duration::from_secs(10),
        || {
            let p: Vec<u32> = ffmpeg_processes(pid)
                .into_iter()
                .filter(|(_, z)| !z)
                .map(|(p, _)| p)
                .collect();
            (p.len() == 2).then_some(p)
        },
    )
    .await;
    // Stopped first, so they cannot end on their own (EOF on their input, EPIPE on their
    // output once camgate is gone): only the kernel's death signal can end them now.
    for p in &pids {
        // SAFETY: kill(2) on pids just read as camgate's ffmpeg children.
        unsafe { libc::kill(*p as i32, libc::SIGSTOP) };
    }
    eventually("ffmpeg children stopped", Duration::from_secs(5), || {
        pids.iter()
            .all(|p| proc_stat(*p).is_some_and(|(_, state, _)| state == 'T'))
            .then_some(())
    })
    .await;
    // SIGKILL: camgate runs no code of its own on the way out.
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    let gone = |p: &u32| {
        // Gone, or a zombie waiting for whoever inherited it to reap it.
        proc_stat(*p).is_none_or(|(comm, state, _)| comm != "ffmpeg" || state == 'Z')
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !pids.iter().all(gone) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let left: Vec<u32> = pids.iter().copied().filter(|p| !gone(p)).collect();
    for p in &left {
        // SAFETY: as above; cleans up after a failure so no stopped ffmpeg outlives the test.
        unsafe { libc::kill(*p as i32, libc::SIGKILL) };
    }
    assert!(
        left.is_empty(),
        "ffmpeg children {left:?} outlived camgate's kill -9"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_grid_runs_unwatched_and_its_recording_plays() {
    let _serial = SERIAL.lock().await;
    let cam = Camera::start();
    let gw = Gateway::start(|c| {
        c.grids = toml::from_str(
            "[rec]\ncameras = [\"r1\"]\nsize = \"160x120\"\nfps = 10\nbitrate = \"200k\"\n\
             encoder = \"libx264\"\nrecord = true\n",
        )
        .unwrap();
        c.record.file_duration = Duration::from_secs(3);
        c.record.flush_interval = Duration::from_millis(500);
        c.record.min_free = camgate::config::ByteSize(0);
    })
    .await;
    // An on-demand camera: only the recorded grid keeps it connected.
    gw.provision("r1", &cam.good_url(), true).await;
    gw.wait_state("r1", "live", Duration::from_secs(30)).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    loop {
        let ranges = get_json(&gw.base, "/recordings/rec").await;
        let total: f64 = ranges
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["duration"].as_f64().unwrap_or(0.0))
            .sum();
        if total >= 4.0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the grid recorded {total} s: {ranges}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let list = gw.get_json("/recordings").await;
    let rec = list
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["stream_path"] == "rec")
        .cloned()
        .unwrap_or_else(|| panic!("rec in {list}"));
    assert_eq!(rec["recording"], true, "{rec}");
    let (codec, w, h, frames) = ffprobe_url(&gw.url("/recordings/rec/index.m3u8")).await;
    assert_eq!((codec.as_str(), w, h), ("h264", 160, 120));
    assert!(frames >= 10, "{frames} recorded frames read");
}
