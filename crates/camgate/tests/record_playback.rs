//! Recording against real peers: GStreamer's RTSP server as the camera, camgate in-process,
//! ffprobe as the player of the VOD playlist. Records a few seconds, lists the ranges, plays
//! them, reads file bytes with Range, checks retention by bytes and every bad input.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::{Camera, Gateway, client, error_code};

fn quick_recording(c: &mut camgate::config::Config) {
    c.record.file_duration = Duration::from_secs(3);
    c.record.flush_interval = Duration::from_millis(500);
    c.record.min_free = camgate::config::ByteSize(0);
}

async fn provision_recorded(gw: &Gateway, cam: &Camera, extra: Value) {
    let mut body = json!({"camera_id": "1", "rtsp_url": cam.good_url(), "record": true});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    gw.provision_json(body).await;
}

/// Seconds recorded for `cam_1`, from its ranges.
async fn recorded_seconds(gw: &Gateway) -> (f64, Vec<Value>) {
    let ranges = gw.get_json("/recordings/cam_1").await;
    let list = ranges.as_array().unwrap().clone();
    (
        list.iter().map(|r| r["duration"].as_f64().unwrap()).sum(),
        list,
    )
}

async fn ffprobe_frames(url: &str) -> (u64, String) {
    let out = tokio::time::timeout(
        Duration::from_secs(40),
        tokio::process::Command::new("ffprobe")
            .args(["-v", "error", "-select_streams", "v:0", "-count_frames"])
            .args(["-show_entries", "stream=nb_read_frames,codec_name,width"])
            .args(["-of", "json", url])
            .output(),
    )
    .await
    .expect("ffprobe finished within 40 s")
    .expect("run ffprobe");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "ffprobe failed: {stderr}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let s = &v["streams"][0];
    assert_eq!(s["codec_name"], "h264", "{v}");
    assert_eq!(s["width"], 320, "{v}");
    let n = s["nb_read_frames"].as_str().unwrap().parse().unwrap();
    (n, stderr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_lists_and_plays_back_through_vod_hls() {
    let cam = Camera::start();
    let gw = Gateway::start(quick_recording).await;
    provision_recorded(&gw, &cam, json!({})).await;
    gw.wait_state("1", "live", Duration::from_secs(15)).await;
    // A recorded camera is held connected without being a viewer.
    let status = gw.get_json("/cameras/1/status").await;
    assert_eq!(status["viewers"], 0, "{status}");

    tokio::time::sleep(Duration::from_secs(8)).await;

    let status = gw.get_json("/cameras/1/status").await;
    assert_eq!(status["recording"]["state"], "recording", "{status}");
    assert!(
        status["recording"]["bytes"].as_u64().unwrap() > 0,
        "{status}"
    );
    assert!(status["last_error"].is_null(), "{status}");

    let list = gw.get_json("/recordings").await;
    let entry = list
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["stream_path"] == "cam_1")
        .unwrap_or_else(|| panic!("cam_1 in {list}"));
    assert_eq!(entry["camera_id"], "1");
    assert_eq!(entry["recording"], true);
    assert!(entry["bytes"].as_u64().unwrap() > 10_000, "{entry}");

    let (seconds, ranges) = recorded_seconds(&gw).await;
    // One stretch: files follow each other without a gap.
    assert_eq!(ranges.len(), 1, "{ranges:?}");
    assert!(
        (5.0..=10.5).contains(&seconds),
        "{seconds} s recorded: {ranges:?}"
    );

    // The playlist: VOD, byte ranges of our files, dates, a discontinuity per file change.
    let start = ranges[0]["start"].as_str().unwrap().to_owned();
    let end = ranges[0]["end"].as_str().unwrap().to_owned();
    let q = format!("start={start}&end={end}");
    let playlist_url = gw.url(&format!("/recordings/cam_1/index.m3u8?{q}"));
    let playlist = support::text(client().get(&playlist_url)).await;
    assert!(playlist.contains("#EXT-X-PLAYLIST-TYPE:VOD"), "{playlist}");
    assert!(playlist.contains("#EXT-X-MAP:URI="), "{playlist}");
    assert!(playlist.contains("#EXT-X-BYTERANGE:"), "{playlist}");
    assert!(playlist.contains("#EXT-X-PROGRAM-DATE-TIME:"), "{playlist}");
    assert!(
        playlist.contains("#EXT-X-DISCONTINUITY"),
        "3 s files: {playlist}"
    );
    assert!(playlist.trim_end().ends_with("#EXT-X-ENDLIST"));
    let listed: f64 = playlist
        .lines()
        .filter_map(|l| l.strip_prefix("#EXTINF:"))
        .map(|l| l.trim_end_matches(',').parse::<f64>().unwrap())
        .sum();

    // An independent player reads every frame of it: 25 fps for as long as the playlist says.
    let (frames, stderr) = ffprobe_frames(&playlist_url).await;
    let expected = listed * 25.0;
    assert!(
        (frames as f64 - expected).abs() <= 13.0,
        "ffprobe read {frames} frames, the playlist lists {listed:.2} s ({expected:.0} frames); {stderr}"
    );
    assert!(
        (listed - seconds).abs() <= 1.5,
        "playlist {listed} s vs ranges {seconds} s"
    );

    // The file bytes the playlist points into, whole and by Range.
    let first_file = playlist
        .lines()
        .find(|l| !l.starts_with('#') && !l.is_empty())
        .unwrap()
        .to_owned();
    let file_url = gw.url(&format!("/recordings/cam_1/{first_file}"));
    let whole = client().get(&file_url).send().await.unwrap();
    assert_eq!(whole.status(), 200);
    assert_eq!(whole.headers()["accept-ranges"], "bytes");
    let whole = whole.bytes().await.unwrap();
    assert_eq!(&whole[4..8], b"ftyp");
    let part = client()
        .get(&file_url)
        .header("Range", "bytes=100-299")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), 206);
    assert_eq!(
        part.headers()["content-range"],
        format!("bytes 100-299/{}", whole.len()).as_str()
    );
    assert_eq!(part.bytes().await.unwrap(), whole.slice(100..300));
    let past = client()
        .get(&file_url)
        .header("Range", format!("bytes={}-", whole.len() + 10))
        .send()
        .await
        .unwrap();
    assert_eq!(past.status(), 416);

    // DELETE a range that holds the first file: it goes, from the index and the disk.
    let before = recorded_seconds(&gw).await.0;
    let r = client()
        .delete(gw.url(&format!(
            "/recordings/cam_1?start={start}&end={}",
            ms_after(&start, 3500)
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert!(body["deleted_bytes"].as_u64().unwrap() > 0, "{body}");
    let r = client().get(&file_url).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let after = recorded_seconds(&gw).await.0;
    assert!(after < before + 1.0, "{before} -> {after}");
    gw.stop().await;
}

/// `start` (RFC 3339) plus `ms`, as Unix seconds.
fn ms_after(start: &str, ms: i64) -> String {
    let t =
        time::OffsetDateTime::parse(start, &time::format_description::well_known::Rfc3339).unwrap();
    format!(
        "{:.3}",
        (t.unix_timestamp_nanos() / 1_000_000 + i128::from(ms)) as f64 / 1000.0
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_by_bytes_holds_the_total_under_the_limit() {
    const LIMIT: u64 = 600_000;
    let cam = Camera::start();
    let gw = Gateway::start(|c| {
        quick_recording(c);
        c.record.file_duration = Duration::from_secs(1);
        c.record.max_bytes = camgate::config::ByteSize(LIMIT);
    })
    .await;
    provision_recorded(&gw, &cam, json!({})).await;
    gw.wait_state("1", "live", Duration::from_secs(15)).await;
    let mut removed_any = false;
    let mut max_seen = 0;
    let mut rate = 0u64;
    for _ in 0..30 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let list = gw.get_json("/recordings").await;
        let bytes: u64 = list
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["bytes"].as_u64().unwrap())
            .sum();
        max_seen = max_seen.max(bytes);
        let status = gw.get_json("/cameras/1/status").await;
        rate = rate.max(status["bitrate_kbps"].as_u64().unwrap_or(0) * 1000 / 8);
        removed_any |= status["recording"]["removed_files"].as_u64().unwrap_or(0) > 0;
    }
    assert!(
        removed_any,
        "retention removed nothing (max {max_seen} bytes, {rate} B/s)"
    );
    assert!(
        max_seen > LIMIT / 2,
        "the limit was never approached: {max_seen}"
    );
    // Retention runs when a file closes (and every 2 s): the total may pass the limit by the
    // second being written and the moment until the pass, never by more.
    let slack = 2 * rate.max(20_000);
    assert!(
        max_seen <= LIMIT + slack,
        "{max_seen} bytes kept, limit {LIMIT}, {rate} B/s"
    );
    eprintln!("retention: at most {max_seen} bytes kept, limit {LIMIT}, camera {rate} B/s");
    // What is left still plays: the newest range is there.
    let (seconds, _) = recorded_seconds(&gw).await;
    assert!(seconds > 0.5, "{seconds}");
    // The files on disk agree with the index.
    let dir = gw
        .app
        .config
        .record
        .dir_in(&gw.app.config.data_dir)
        .join("cam_1");
    let on_disk: u64 = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert!(on_disk <= LIMIT + slack, "{on_disk} bytes on disk");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_json_errors() {
    let gw = Gateway::start(quick_recording).await;
    // A provisioned camera (its stream exists) with nothing recorded yet.
    gw.provision_json(json!({"camera_id": "2", "rtsp_url": "rtsp://127.0.0.1:9/x"}))
        .await;
    let cases: &[(&str, &str, u16, &str)] = &[
        (
            "GET",
            "/recordings/cam_2?start=yesterday",
            400,
            "invalid_time",
        ),
        ("GET", "/recordings/cam_2?end=1.2.3", 400, "invalid_time"),
        (
            "GET",
            "/recordings/cam_2?start=1700000060&end=1700000000",
            400,
            "invalid_range",
        ),
        (
            "GET",
            "/recordings/cam_2?start=2023-11-14T22:13:20Z&end=2023-11-14T22:13:20Z",
            400,
            "invalid_range",
        ),
        ("GET", "/recordings/nope", 404, "recording_not_found"),
        (
            "GET",
            "/recordings/nope/index.m3u8",
            404,
            "recording_not_found",
        ),
        ("GET", "/recordings/bad%20path", 400, "invalid_stream_path"),
        (
            "GET",
            "/recordings/cam_2/index.m3u8",
            404,
            "nothing_recorded",
        ),
        (
            "GET",
            "/recordings/cam_2/123.mp4",
            404,
            "recording_file_not_found",
        ),
        (
            "GET",
            "/recordings/cam_2/..%2Fcamgate.db",
            404,
            "recording_file_not_found",
        ),
        ("DELETE", "/recordings/cam_2", 400, "missing_range"),
        (
            "DELETE",
            "/recordings/cam_2?start=1&end=x",
            400,
            "invalid_time",
        ),
        (
            "DELETE",
            "/recordings/nope?start=1&end=2",
            404,
            "recording_not_found",
        ),
    ];
    for (method, path, status, code) in cases {
        let req = match *method {
            "DELETE" => client().delete(gw.url(path)),
            _ => client().get(gw.url(path)),
        };
        let r = req.send().await.unwrap();
        assert_eq!(r.status().as_u16(), *status, "{method} {path}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(error_code(&body), *code, "{method} {path}: {body}");
    }
    // Nothing recorded, but a known stream: an empty list of ranges, not an error.
    assert_eq!(gw.get_json("/recordings/cam_2").await, json!([]));
    // Provisioning refuses bad overrides by name.
    let r = client()
        .post(gw.url("/cameras/provision"))
        .json(&json!({"camera_id": "3", "rtsp_url": "rtsp://h/x", "record_max_bytes": "lots"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let body: Value = r.json().await.unwrap();
    assert_eq!(error_code(&body), "invalid_record_max_bytes");
    gw.stop().await;
}
