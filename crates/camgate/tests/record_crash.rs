//! Recording durability: the real binary records a GStreamer camera, is killed with SIGKILL
//! mid-file, and restarts on the same data directory. Everything the index held before the
//! kill (the last flush) is still there and plays in ffprobe, the loss is at most about the
//! flush interval, and the index agrees with the files on disk.

mod support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::Camera;
use support::process::{KillOnDrop, lines};

const BIN: &str = env!("CARGO_BIN_EXE_camgate");

fn spawn_camgate(data_dir: &Path) -> (KillOnDrop, String) {
    let mut child: Child = Command::new(BIN)
        .env_clear()
        .current_dir(data_dir.parent().unwrap())
        .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"])
        .arg("--data-dir")
        .arg(data_dir)
        // One long file, so the kill lands in the middle of the file being written.
        .env("CAMGATE_RECORD_FILE_DURATION", "1m")
        .env("CAMGATE_RECORD_FLUSH_INTERVAL", "1s")
        .env("CAMGATE_RECORD_MIN_FREE", "0")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn camgate");
    let out = lines(child.stdout.take().unwrap());
    let err = lines(child.stderr.take().unwrap());
    let deadline = Instant::now() + Duration::from_secs(30);
    let addr = loop {
        let line = out
            .recv_timeout(Duration::from_millis(50))
            .or_else(|_| err.recv_timeout(Duration::from_millis(50)));
        if let Ok(line) = line
            && let Ok(v) = serde_json::from_str::<Value>(&line)
            && v["message"] == "listening"
        {
            break v["addr"].as_str().unwrap().to_owned();
        }
        assert!(Instant::now() < deadline, "camgate did not start");
    };
    // Keep draining the logs so the process never blocks on a full pipe.
    std::thread::spawn(move || while out.recv().is_ok() {});
    std::thread::spawn(move || while err.recv().is_ok() {});
    (KillOnDrop(child), format!("http://{addr}"))
}

async fn get(base: &str, path: &str) -> Value {
    let r = support::client()
        .get(format!("{base}{path}"))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{path}: {}", r.status());
    r.json().await.unwrap()
}

fn ms(t: &str) -> i64 {
    let t = time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).unwrap();
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_loses_at_most_the_last_flush() {
    let cam = Camera::start();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (mut gw, base) = spawn_camgate(&data);
    let r = support::client()
        .post(format!("{base}/cameras/provision"))
        .json(&json!({"camera_id": "1", "rtsp_url": cam.good_url(), "record": true}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s = get(&base, "/cameras/1/status").await;
        if s["recording"]["state"] == "recording" {
            break;
        }
        assert!(Instant::now() < deadline, "not recording: {s}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(7)).await;

    // What the index holds at the moment of the kill.
    let before = get(&base, "/recordings/cam_1").await;
    let before_end = ms(before[0]["end"].as_str().unwrap());
    let start = before[0]["start"].as_str().unwrap().to_owned();
    gw.0.kill().unwrap();
    let killed_at = now_ms();
    gw.0.wait().unwrap();

    let (_gw2, base) = spawn_camgate(&data);
    let after = get(&base, &format!("/recordings/cam_1?start={start}")).await;
    let first = &after[0];
    let after_end = ms(first["end"].as_str().unwrap());
    eprintln!(
        "indexed before the kill up to {} ms before it; after restart up to {} ms before it",
        killed_at - before_end,
        killed_at - after_end
    );
    assert_eq!(first["start"], start.as_str(), "{after}");
    assert!(
        after_end >= before_end,
        "the restart lost indexed video: {before} -> {after}"
    );
    assert!(
        killed_at - after_end <= 2_500,
        "lost {} ms of video",
        killed_at - after_end
    );

    // It plays: an independent reader gets every frame of that stretch.
    let end = first["end"].as_str().unwrap();
    let url = format!("{base}/recordings/cam_1/index.m3u8?start={start}&end={end}");
    let playlist = support::text(support::client().get(&url)).await;
    let listed: f64 = playlist
        .lines()
        .filter_map(|l| l.strip_prefix("#EXTINF:"))
        .map(|l| l.trim_end_matches(',').parse::<f64>().unwrap())
        .sum();
    let out = tokio::process::Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-count_frames"])
        .args([
            "-show_entries",
            "stream=nb_read_frames",
            "-of",
            "csv=p=0",
            &url,
        ])
        .output()
        .await
        .expect("run ffprobe");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown = String::from_utf8_lossy(&out.stdout);
    let frames: f64 = shown
        .lines()
        .find_map(|l| l.trim().trim_end_matches(',').parse().ok())
        .unwrap_or_else(|| panic!("ffprobe printed {shown:?}"));
    assert!(
        (frames - listed * 25.0).abs() <= 13.0,
        "{frames} frames for {listed} s"
    );
    assert!(listed >= 5.0, "{listed} s playable of about 7 recorded");

    // The index agrees with the disk: the killed file was cut to whole fragments and its row
    // says exactly that many bytes.
    let file_name = playlist
        .lines()
        .find(|l| !l.starts_with('#') && !l.is_empty())
        .unwrap();
    let on_disk = std::fs::metadata(data.join("recordings/cam_1").join(file_name))
        .unwrap()
        .len();
    let r = support::client()
        .head(format!("{base}/recordings/cam_1/{file_name}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let indexed: u64 = r.headers()["content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(indexed, on_disk, "index and disk disagree on {file_name}");
    drop(cam);
}
