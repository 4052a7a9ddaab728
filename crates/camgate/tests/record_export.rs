//! `export.mp4` against real peers: GStreamer's RTSP server as the camera (25 fps, a keyframe
//! every second), camgate in-process recording it, ffprobe reading the export. Checks that
//! the export holds the requested range (± one GOP) moov first, that any byte range is the
//! same slice of the full download, HEAD, the validators (ETag, If-Range, If-None-Match),
//! 416, and every bad input.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::{Camera, Gateway, client, error_code};

fn quick_recording(c: &mut camgate::config::Config) {
    c.record.file_duration = Duration::from_secs(3);
    c.record.flush_interval = Duration::from_millis(500);
    c.record.min_free = camgate::config::ByteSize(0);
    c.record.export_max = Duration::from_secs(600);
}

/// Records camera 1 until at least `seconds` are indexed; the first range's start.
async fn record(gw: &Gateway, cam: &Camera, seconds: f64) -> f64 {
    gw.provision_json(json!({"camera_id": "1", "rtsp_url": cam.good_url(), "record": true}))
        .await;
    gw.wait_state("1", "live", Duration::from_secs(15)).await;
    for _ in 0..120 {
        let ranges = gw.get_json("/recordings/cam_1").await;
        let list = ranges.as_array().unwrap();
        let total: f64 = list.iter().map(|r| r["duration"].as_f64().unwrap()).sum();
        if total >= seconds {
            return unix(list[0]["start"].as_str().unwrap());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("{seconds} s were not recorded within 30 s");
}

fn unix(rfc3339: &str) -> f64 {
    let t = time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .unwrap();
    t.unix_timestamp_nanos() as f64 / 1e9
}

/// ffprobe's decoded frame count, duration (s) and codec of a file.
fn ffprobe(path: &std::path::Path) -> (u64, f64, Value) {
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-count_frames"])
        .args([
            "-show_entries",
            "stream=nb_read_frames,codec_name,width,height",
        ])
        .args(["-show_entries", "format=duration,format_name"])
        .args(["-of", "json"])
        .arg(path)
        .output()
        .expect("run ffprobe");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "ffprobe failed: {stderr}");
    assert!(stderr.trim().is_empty(), "ffprobe complained: {stderr}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let frames = v["streams"][0]["nb_read_frames"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let duration = v["format"]["duration"].as_str().unwrap().parse().unwrap();
    (frames, duration, v)
}

/// The top-level boxes of an MP4: (type, offset, size).
fn top_boxes(b: &[u8]) -> Vec<(String, usize, usize)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 8 <= b.len() {
        let size = u32::from_be_bytes(b[at..at + 4].try_into().unwrap()) as usize;
        out.push((
            String::from_utf8_lossy(&b[at + 4..at + 8]).into_owned(),
            at,
            size,
        ));
        if size < 8 {
            break;
        }
        at += size;
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_holds_the_range_and_answers_ranges_and_validators() {
    let cam = Camera::start();
    let gw = Gateway::start(quick_recording).await;
    let t0 = record(&gw, &cam, 8.5).await;
    // 5 s across a file change (files of ~3 s), starting mid-GOP.
    let (from, to) = (t0 + 1.5, t0 + 6.5);
    let url = gw.url(&format!(
        "/recordings/cam_1/export.mp4?start={from:.3}&end={to:.3}"
    ));

    let full = client().get(&url).send().await.unwrap();
    assert_eq!(full.status(), 200);
    let h = full.headers().clone();
    assert_eq!(h["content-type"], "video/mp4");
    assert_eq!(h["accept-ranges"], "bytes");
    let disposition = h["content-disposition"].to_str().unwrap().to_owned();
    assert!(
        disposition.starts_with("attachment; filename=\"cam_1_") && disposition.contains(".mp4\""),
        "{disposition}"
    );
    let etag = h["etag"].to_str().unwrap().to_owned();
    assert!(etag.starts_with('"'), "{etag}");
    assert!(h.contains_key("last-modified"), "{h:?}");
    let samples: u64 = h["x-export-samples"].to_str().unwrap().parse().unwrap();
    let body = full.bytes().await.unwrap();
    assert_eq!(
        h["content-length"].to_str().unwrap(),
        body.len().to_string()
    );

    // Progressive: ftyp, moov, then one mdat to the end.
    let boxes = top_boxes(&body);
    let kinds: Vec<&str> = boxes.iter().map(|b| b.0.as_str()).collect();
    assert_eq!(kinds, ["ftyp", "moov", "mdat"], "{boxes:?}");
    let mdat = &boxes[2];
    assert_eq!(mdat.1 + mdat.2, body.len());

    // An independent reader decodes every frame: the range, give or take one GOP (the
    // export starts at the keyframe at or before `start`).
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("export.mp4");
    std::fs::write(&file, &body).unwrap();
    let (frames, duration, probe) = ffprobe(&file);
    assert_eq!(probe["streams"][0]["codec_name"], "h264", "{probe}");
    assert_eq!(probe["streams"][0]["width"], 320, "{probe}");
    assert_eq!(frames, samples, "every sample decodes: {probe}");
    let want = (to - from) * 25.0;
    assert!(
        (want - 2.0..=want + 25.0 + 2.0).contains(&(frames as f64)),
        "{frames} frames for {:.1} s (want {want} .. {} + one GOP)",
        to - from,
        want
    );
    assert!(
        (to - from - 0.2..=to - from + 1.1).contains(&duration),
        "duration {duration} s for a {:.1} s range",
        to - from
    );
    eprintln!(
        "export: {} bytes, {frames} frames, {duration:.3} s",
        body.len()
    );

    // Any byte range is the same slice of the full download: inside the moov, across the
    // moov/mdat border, across samples of two files, the tail.
    let len = body.len();
    let moov_end = boxes[1].1 + boxes[1].2;
    for (a, b) in [
        (0, 99),
        (100, moov_end + 500),
        (moov_end - 3, moov_end + 20),
        (len / 2, len / 2 + 70_000),
        (len - 1000, len - 1),
    ] {
        let r = client()
            .get(&url)
            .header("Range", format!("bytes={a}-{b}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 206, "bytes={a}-{b}");
        assert_eq!(
            r.headers()["content-range"],
            format!("bytes {a}-{b}/{len}").as_str()
        );
        assert_eq!(r.headers()["etag"], etag.as_str(), "stable while recording");
        assert_eq!(r.bytes().await.unwrap(), body.slice(a..=b), "bytes={a}-{b}");
    }
    let r = client()
        .get(&url)
        .header("Range", "bytes=-500")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.bytes().await.unwrap(), body.slice(len - 500..));

    // HEAD: the same headers, no body.
    let r = client().head(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-length"], len.to_string().as_str());
    assert_eq!(r.headers()["etag"], etag.as_str());
    assert!(r.bytes().await.unwrap().is_empty());

    // If-Range: a stale validator gets the whole file, the current one the range.
    let r = client()
        .get(&url)
        .header("Range", "bytes=0-9")
        .header("If-Range", "\"stale\"")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap(), body);
    let r = client()
        .get(&url)
        .header("Range", "bytes=0-9")
        .header("If-Range", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.bytes().await.unwrap(), body.slice(0..10));
    let r = client()
        .get(&url)
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);

    // Past the end: 416 with the length, as JSON.
    let r = client()
        .get(&url)
        .header("Range", format!("bytes={len}-"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 416);
    assert_eq!(
        r.headers()["content-range"],
        format!("bytes */{len}").as_str()
    );
    let v: Value = r.json().await.unwrap();
    assert_eq!(error_code(&v), "range_not_satisfiable");

    // Another range: another ETag.
    let other = gw.url(&format!(
        "/recordings/cam_1/export.mp4?start={from:.3}&end={:.3}",
        to - 1.0
    ));
    let r = client().head(&other).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_ne!(r.headers()["etag"], etag.as_str());
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_bad_input_gets_json_errors() {
    let cam = Camera::start();
    let gw = Gateway::start(quick_recording).await;
    let t0 = record(&gw, &cam, 1.5).await;
    gw.provision_json(json!({"camera_id": "2", "rtsp_url": "rtsp://127.0.0.1:9/x"}))
        .await;
    let s = format!("{t0:.3}");
    let e = format!("{:.3}", t0 + 60.0);
    let long = format!("{:.3}", t0 + 601.0);
    let cases: Vec<(String, u16, &str)> = vec![
        (
            format!("cam_1/export.mp4?start=yesterday&end={e}"),
            400,
            "invalid_time",
        ),
        (
            format!("cam_1/export.mp4?start={s}&end=1.2.3"),
            400,
            "invalid_time",
        ),
        (
            format!("cam_1/export.mp4?start={e}&end={s}"),
            400,
            "invalid_range",
        ),
        (
            format!("cam_1/export.mp4?start={s}&end={s}"),
            400,
            "invalid_range",
        ),
        (
            format!("cam_1/export.mp4?start={s}&end={long}"),
            400,
            "range_too_long",
        ),
        // The default window (the last 24 h) is over this gateway's 10 min cap.
        ("cam_1/export.mp4".to_owned(), 400, "range_too_long"),
        (
            "nope/export.mp4?start=1&end=2".to_owned(),
            404,
            "recording_not_found",
        ),
        (
            "bad%20path/export.mp4?start=1&end=2".to_owned(),
            400,
            "invalid_stream_path",
        ),
        (
            "cam_1/export.mp4?start=1000&end=1060".to_owned(),
            404,
            "nothing_recorded",
        ),
        (
            format!("cam_2/export.mp4?start={s}&end={e}"),
            404,
            "nothing_recorded",
        ),
    ];
    for (path, status, code) in &cases {
        let r = client()
            .get(gw.url(&format!("/recordings/{path}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), *status, "{path}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(error_code(&body), *code, "{path}: {body}");
    }
    // Malformed Range headers are ignored (RFC 9110 §14.2): the whole file.
    let url = gw.url(&format!("/recordings/cam_1/export.mp4?start={s}&end={e}"));
    let whole = client().get(&url).send().await.unwrap();
    assert_eq!(whole.status(), 200);
    let whole = whole.bytes().await.unwrap();
    for bad in ["bytes=x-y", "lines=1-2"] {
        let r = client()
            .get(&url)
            .header("Range", bad)
            .send()
            .await
            .unwrap();
        // The file may have grown between requests (the range reaches now): compare heads.
        assert_eq!(r.status(), 200, "{bad}");
        let b = r.bytes().await.unwrap();
        assert_eq!(&b[..8], &whole[..8], "{bad}");
    }
    // An inverted range is refused (RFC 9110 §14.2 allows ignoring or rejecting it).
    let r = client()
        .get(&url)
        .header("Range", "bytes=10-5")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 416);
    let body: Value = r.json().await.unwrap();
    assert_eq!(error_code(&body), "range_not_satisfiable");
    // DELETE is not an export verb.
    let r = client().delete(&url).send().await.unwrap();
    assert_ne!(r.status().as_u16(), 200);
    gw.stop().await;
}
