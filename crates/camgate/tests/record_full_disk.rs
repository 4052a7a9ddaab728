//! A full recordings disk, for real: an 8 MiB tmpfs mounted by the test as `[record] dir`
//! (the test needs root or CAP_SYS_ADMIN and fails, saying so, without them), GStreamer's
//! RTSP server as the camera, camgate in-process. Something else fills the filesystem; the
//! recorder must stop with a clear state (the camera's `recording` status with its own last
//! error, a `recording` event, a `/health` warning with 200, `/metrics`), live HLS must keep playing, the
//! index must agree with the files, and once the camera's limit shrinks retention frees space
//! and recording resumes by itself.

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use camgate::db::recordings::{self, FileState};
use futures::StreamExt;
use serde_json::{Value, json};
use support::{Camera, Gateway, Ws, client};
use tokio_tungstenite::tungstenite::Message;

/// A tmpfs mounted for the test, unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .expect("run mount(8)");
        assert!(
            out.status.success(),
            "this test mounts a {size} tmpfs as the recordings folder and needs root or \
             CAP_SYS_ADMIN; mount said: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Tmpfs { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Writes `path` until the filesystem is full; the bytes written.
fn fill(path: &Path) -> u64 {
    let mut f = std::fs::File::create(path).unwrap();
    let chunk = vec![0x5au8; 64 * 1024];
    let mut written = 0u64;
    loop {
        match f.write(&chunk) {
            Ok(0) => break,
            Ok(n) => written += n as u64,
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
            Err(e) => panic!("filling {}: {e}", path.display()),
        }
    }
    let _ = f.sync_all();
    written
}

/// Reads events until one satisfies `want`, or panics after `within`.
async fn next_where(
    ws: &mut Ws,
    what: &str,
    within: Duration,
    want: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + within;
    let mut seen = std::collections::VecDeque::new();
    loop {
        if seen.len() > 6 {
            seen.pop_front();
        }
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let msg = match tokio::time::timeout(left, ws.next()).await {
            Ok(Some(Ok(m))) => m,
            Ok(other) => panic!("socket ended while waiting for {what}: {other:?}; seen {seen:?}"),
            Err(_) => panic!("no {what} within {within:?}; seen {seen:?}"),
        };
        if let Message::Text(t) = msg {
            let v: Value = serde_json::from_str(&t).expect("events are JSON");
            if want(&v) {
                return v;
            }
            if v["type"] == "recording" {
                seen.push_back(v);
            }
        }
    }
}

/// A gauge's value in `/metrics`.
fn gauge(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    let s = scrape
        .samples
        .iter()
        .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(v)))
        .unwrap_or_else(|| panic!("no sample {name} {labels:?}"));
    match s.value {
        prometheus_parse::Value::Gauge(v) => v,
        ref other => panic!("{name} is not a gauge: {other:?}"),
    }
}

fn recording_state(v: &Value) -> &str {
    v["recording"]["state"].as_str().unwrap_or("")
}

async fn recorded_bytes(gw: &Gateway) -> u64 {
    let list = gw.get_json("/recordings").await;
    list.as_array()
        .unwrap()
        .iter()
        .filter(|e| e["stream_path"] == "cam_1")
        .map(|e| e["bytes"].as_u64().unwrap())
        .sum()
}

/// The index agrees with the folder: every row's file exists and holds whole fragments up to
/// the row's length (exactly that long once complete), and every file has a row.
async fn index_matches_disk(gw: &Gateway, dir: &Path) -> usize {
    let rows = gw
        .app
        .db
        .recordings(recordings::all)
        .await
        .expect("read the index");
    let mut named = std::collections::HashSet::new();
    for r in rows.iter().filter(|r| r.stream_path == "cam_1") {
        assert_ne!(r.state, FileState::Deleting, "{r:?} left half-deleted");
        let path: PathBuf = dir.join("cam_1").join(&r.file_name);
        let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{r:?}: {e}"));
        assert!(
            data.len() as u64 >= r.bytes,
            "{r:?}: file has {} bytes",
            data.len()
        );
        if r.state == FileState::Complete {
            assert_eq!(data.len() as u64, r.bytes, "{r:?}");
        }
        let read = media::mp4read::read(&data[..r.bytes as usize]);
        assert_eq!(
            read.end.tail, None,
            "{r:?}: indexed bytes are not whole fragments"
        );
        assert_eq!(read.end.valid_len, r.bytes, "{r:?}");
        named.insert(r.file_name.clone());
    }
    for e in std::fs::read_dir(dir.join("cam_1")).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(named.contains(&name), "{name} on disk has no index row");
    }
    named.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_stops_recording_clearly_and_recording_resumes() {
    let fs = Tmpfs::mount("8m");
    let rec_dir = fs.path().join("recordings");
    let cam = Camera::start();
    let dir = rec_dir.clone();
    let gw = Gateway::start(move |c| {
        c.record.dir = dir;
        c.record.file_duration = Duration::from_secs(1);
        c.record.flush_interval = Duration::from_millis(500);
        // Only the camera's limit below frees space: the disk really fills first.
        c.record.min_free = camgate::config::ByteSize(0);
    })
    .await;
    let provision = json!({"camera_id": "1", "rtsp_url": cam.good_url(), "record": true});
    gw.provision_json(provision.clone()).await;
    gw.wait_state("1", "live", Duration::from_secs(15)).await;
    let mut ws = gw.ws("/ws/events/cam_1").await;
    let mut before = 0;
    for _ in 0..120 {
        before = recorded_bytes(&gw).await;
        if before >= 1_200_000 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(before >= 1_200_000, "only {before} bytes recorded in 30 s");

    // Another program fills the filesystem.
    let filler = fs.path().join("filler");
    let filled = tokio::task::spawn_blocking({
        let f = filler.clone();
        move || fill(&f)
    })
    .await
    .unwrap();
    eprintln!("filler: {filled} bytes after {before} bytes of recordings");

    let event = next_where(
        &mut ws,
        "a disk_full recording event",
        Duration::from_secs(20),
        |v| v["type"] == "recording" && recording_state(v) == "disk_full",
    )
    .await;
    assert!(
        event["recording"]["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("No space left")),
        "{event}"
    );
    let status = gw.get_json("/cameras/1/status").await;
    assert_eq!(recording_state(&status), "disk_full", "{status}");
    assert_eq!(status["state"], "live", "{status}");
    assert!(
        status["last_error"].is_null(),
        "the camera's own error is untouched: {status}"
    );
    let health = client().get(gw.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let health: Value = health.json().await.unwrap();
    let warnings = health["warnings"].to_string();
    assert!(warnings.contains("recording cam_1: disk_full"), "{health}");

    let scrape = gw.metrics().await;
    let full = [("stream", "cam_1"), ("state", "disk_full")];
    assert_eq!(gauge(&scrape, "camgate_recording_state", &full), 1.0);
    assert!(gauge(&scrape, "camgate_recording_bytes", &[("stream", "cam_1")]) > 0.0);

    // Live viewing goes on: the live playlist keeps moving and its segments load.
    let playlist = |gw: &Gateway| {
        let url = gw.url("/hls/cam_1/index.m3u8");
        async move { support::text(client().get(url)).await }
    };
    let first = playlist(&gw).await;
    assert!(first.contains("#EXTINF"), "{first}");
    let mut moved = false;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = playlist(&gw).await;
        let last_uri = now
            .lines()
            .rev()
            .find(|l| !l.starts_with('#') && !l.is_empty());
        if now != first
            && let Some(uri) = last_uri
        {
            let seg = client()
                .get(gw.url(&format!("/hls/cam_1/{uri}")))
                .send()
                .await
                .unwrap();
            assert_eq!(seg.status(), 200, "{uri}");
            assert!(!seg.bytes().await.unwrap().is_empty());
            moved = true;
            break;
        }
    }
    assert!(
        moved,
        "the live playlist did not move while the disk was full: {first}"
    );

    // The index agrees with the files, and what was recorded still exports.
    let files = index_matches_disk(&gw, &rec_dir).await;
    assert!(files > 0);
    let ranges = gw.get_json("/recordings/cam_1").await;
    let r0 = &ranges[0];
    let url = gw.url(&format!(
        "/recordings/cam_1/export.mp4?start={}&end={}",
        r0["start"].as_str().unwrap(),
        r0["end"].as_str().unwrap()
    ));
    let r = client().head(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);

    // Still full a while later: nothing frees space by itself here, and the index holds.
    let newest_full = gw.get_json("/cameras/1/status").await["recording"]["newest"].clone();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let status = gw.get_json("/cameras/1/status").await;
    assert_eq!(recording_state(&status), "disk_full", "{status}");
    index_matches_disk(&gw, &rec_dir).await;

    // The camera's limit shrinks: retention removes its oldest files, and the writer, which
    // retries on its own, gets the space back.
    let mut smaller = provision.clone();
    smaller["record_max_bytes"] = json!(400_000);
    gw.provision_json(smaller).await;
    next_where(
        &mut ws,
        "a recording event back to recording",
        Duration::from_secs(30),
        |v| v["type"] == "recording" && recording_state(v) == "recording",
    )
    .await;
    let mut resumed = None;
    for _ in 0..80 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let status = gw.get_json("/cameras/1/status").await;
        let newest = status["recording"]["newest"].clone();
        if recording_state(&status) == "recording" && newest != newest_full && !newest.is_null() {
            resumed = Some(status);
            break;
        }
    }
    let status = resumed.expect("recording resumed and its newest time moved on");
    assert!(
        status["recording"]["removed_files"].as_u64().unwrap() > 0,
        "retention made the room: {status}"
    );
    // The error stays readable after recovery, as its own field.
    assert!(
        status["recording"]["last_error"].as_str().is_some(),
        "{status}"
    );
    let health: Value = client()
        .get(gw.url("/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        !health["warnings"].to_string().contains("disk_full"),
        "{health}"
    );
    index_matches_disk(&gw, &rec_dir).await;
    gw.stop().await;
    drop(fs);
}
