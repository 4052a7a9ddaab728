//! `record`: what continuous recording costs and how fast an export starts.
//!
//! - **on vs off**: one simulator (the benchmark camera: 1080p, 25 fps, 2 Mbit/s) and one
//!   camgate with N always-on cameras (N = 10 and 100; quick: 2). A window with recording off,
//!   then the same cameras re-provisioned with `record: true` and, once every stream records,
//!   a window with it on, in the same process: CPU and RSS added per camera, and the bytes
//!   the recording files grew by (sizes on disk, so nothing waits for a flush) per byte
//!   received from the cameras (`camgate_camera_received_bytes_total`).
//! - **export of one hour**: one recorded file of the benchmark camera (60 s; quick 10 s)
//!   hard-linked under consecutive names until the folder holds an hour of video, indexed by a
//!   fresh camgate at start-up (reconcile indexes files without a row). Then the time from
//!   sending `GET /recordings/{path}/export.mp4?start=&end=` over the hour to the first body
//!   byte, cold (each trial another range, so no kept layout helps), and for `Range`
//!   requests of the last MiB of an export already opened (as a seeking player sends).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::ctx::Ctx;
use crate::procs::{Camgate, CamgateOpts, Sim, SimOpts};
use crate::procstat;
use crate::report::{Section, Table, num};
use crate::stats::{self, Summary};

pub async fn run(ctx: &Ctx) -> Result<Section> {
    let mut md = String::new();
    let mut json_rows = Vec::new();
    let ns: Vec<usize> = ctx.pick(vec![10, 100], vec![2]);
    let warmup = ctx.pick(Duration::from_secs(10), Duration::from_secs(2));
    let window = ctx.pick(Duration::from_secs(30), Duration::from_secs(6));
    let sim_opts = SimOpts {
        cameras: *ns.iter().max().unwrap_or(&1),
        ..SimOpts::default()
    };
    md.push_str(&format!(
        "Camera: {}. Windows of {} s after {} s of warm-up; recording off then on in the same \
         camgate process, `[record] flush_interval` 2 s, `file_duration` 1 m.\n\n",
        sim_opts.describe(),
        window.as_secs(),
        warmup.as_secs()
    ));
    let sim = Sim::start(ctx, sim_opts.clone()).await?;
    let mut t = Table::new(&[
        "N",
        "CPU % off",
        "CPU % on",
        "added CPU % per camera",
        "RSS MiB off",
        "RSS MiB on",
        "added RSS MiB per camera",
        "written / received",
    ]);
    for &n in &ns {
        let r = on_off(ctx, &sim, n, warmup, window)
            .await
            .with_context(|| format!("recording on/off at N={n}"))?;
        t.row([
            n.to_string(),
            num(r.cpu_off, 2),
            num(r.cpu_on, 2),
            num((r.cpu_on - r.cpu_off) / n as f64, 3),
            num(r.rss_off, 1),
            num(r.rss_on, 1),
            num((r.rss_on - r.rss_off) / n as f64, 2),
            num(r.written as f64 / r.received.max(1.0), 4),
        ]);
        json_rows.push(json!({
            "n": n, "cpu_percent_off": r.cpu_off, "cpu_percent_on": r.cpu_on,
            "added_cpu_percent_per_camera": (r.cpu_on - r.cpu_off) / n as f64,
            "rss_mib_off": r.rss_off, "rss_mib_on": r.rss_on,
            "added_rss_mib_per_camera": (r.rss_on - r.rss_off) / n as f64,
            "bytes_written": r.written, "bytes_received": r.received,
            "written_per_received": r.written as f64 / r.received.max(1.0),
        }));
    }
    sim.stop().await;
    md.push_str("### Recording on vs off\n\n");
    md.push_str(&t.to_markdown());
    md.push_str(
        "\nCPU % is of one core. Written bytes are the growth of the recording files on disk \
         over the window (init segments and fragment headers included), received bytes the \
         growth of `camgate_camera_received_bytes_total`; both are counted over the same \
         window, so up to a fragment (about 1 s) per camera may fall on either side.\n\n",
    );

    let export = export_hour(ctx).await.context("export of one hour")?;
    md.push_str("### Time to first byte of export.mp4, one hour of video\n\n");
    md.push_str(&export.markdown);
    Ok(Section {
        id: "record".into(),
        title: "Recording: cost per camera and export start".into(),
        markdown: md,
        json: json!({"on_off": json_rows, "export": export.json}),
    })
}

struct OnOff {
    cpu_off: f64,
    cpu_on: f64,
    rss_off: f64,
    rss_on: f64,
    written: u64,
    received: f64,
}

async fn on_off(
    ctx: &Ctx,
    sim: &Sim,
    n: usize,
    warmup: Duration,
    window: Duration,
) -> Result<OnOff> {
    let rec_dir = crate::procs::temp_dir("camgate-bench-rec-")?;
    let gate = Camgate::start(
        ctx,
        CamgateOpts {
            env: vec![
                (
                    "CAMGATE_RECORD_DIR".into(),
                    rec_dir.path().display().to_string(),
                ),
                ("CAMGATE_RECORD_MIN_FREE".into(), "0".into()),
            ],
            ..CamgateOpts::default()
        },
    )
    .await?;
    let body = |i: usize, record: bool| {
        json!({"camera_id": i.to_string(), "rtsp_url": sim.url(i), "on_demand": false,
               "transport": "tcp", "record": record})
    };
    for i in 1..=n {
        gate.provision_json(body(i, false)).await?;
    }
    wait_until(
        Duration::from_secs(30 + n as u64 / 5),
        "every camera live",
        async || {
            let s = gate.get_json("/streams").await?;
            Ok(s.as_array()
                .is_some_and(|a| a.iter().filter(|s| s["state"] == "live").count() >= n))
        },
    )
    .await?;
    tokio::time::sleep(warmup).await;
    let before = procstat::sample(&[gate.pid()]);
    tokio::time::sleep(window).await;
    let after = procstat::sample(&[gate.pid()]);
    let cpu_off = procstat::cpu_percent(&before, &after);
    let rss_off = after.rss_mib();

    for i in 1..=n {
        gate.provision_json(body(i, true)).await?;
    }
    wait_until(
        Duration::from_secs(30 + n as u64 / 5),
        "every stream recording",
        async || {
            let list = gate.get_json("/recordings").await?;
            Ok(list
                .as_array()
                .is_some_and(|a| a.iter().filter(|e| e["recording"] == true).count() >= n))
        },
    )
    .await?;
    tokio::time::sleep(warmup).await;
    let received_before = stats::metric_sum(
        &gate.metrics().await?,
        "camgate_camera_received_bytes_total",
    );
    let on_disk_before = dir_bytes(rec_dir.path());
    let before = procstat::sample(&[gate.pid()]);
    tokio::time::sleep(window).await;
    let after = procstat::sample(&[gate.pid()]);
    let on_disk_after = dir_bytes(rec_dir.path());
    let received_after = stats::metric_sum(
        &gate.metrics().await?,
        "camgate_camera_received_bytes_total",
    );
    gate.stop().await;
    Ok(OnOff {
        cpu_off,
        cpu_on: procstat::cpu_percent(&before, &after),
        rss_off,
        rss_on: after.rss_mib(),
        written: on_disk_after.saturating_sub(on_disk_before),
        received: received_after - received_before,
    })
}

/// Bytes of every file under `dir` (two levels: stream folders, files).
fn dir_bytes(dir: &Path) -> u64 {
    let Ok(streams) = std::fs::read_dir(dir) else {
        return 0;
    };
    streams
        .flatten()
        .filter_map(|s| std::fs::read_dir(s.path()).ok())
        .flat_map(|files| files.flatten())
        .filter_map(|f| f.metadata().ok())
        .map(|m| m.len())
        .sum()
}

/// Polls `check` every 250 ms until it holds, bounded.
async fn wait_until(
    bound: Duration,
    what: &str,
    mut check: impl AsyncFnMut() -> Result<bool>,
) -> Result<()> {
    let deadline = Instant::now() + bound;
    loop {
        if check().await.unwrap_or(false) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("not {what} within {bound:?}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

struct Export {
    markdown: String,
    json: Value,
}

async fn export_hour(ctx: &Ctx) -> Result<Export> {
    let file_secs = ctx.pick(60u64, 10u64);
    let trials = ctx.pick(10, 3);
    // 1. One file of the benchmark camera, recorded for real.
    let sim = Sim::start(ctx, SimOpts::default()).await?;
    let source_dir = crate::procs::temp_dir("camgate-bench-rec-src-")?;
    let gate = Camgate::start(
        ctx,
        CamgateOpts {
            env: vec![
                (
                    "CAMGATE_RECORD_DIR".into(),
                    source_dir.path().display().to_string(),
                ),
                ("CAMGATE_RECORD_MIN_FREE".into(), "0".into()),
                (
                    "CAMGATE_RECORD_FILE_DURATION".into(),
                    format!("{file_secs}s"),
                ),
            ],
            ..CamgateOpts::default()
        },
    )
    .await?;
    gate.provision_json(
        json!({"camera_id": "1", "rtsp_url": sim.url(1), "on_demand": false,
                               "transport": "tcp", "record": true}),
    )
    .await?;
    let mut complete = None;
    let deadline = Instant::now() + Duration::from_secs(file_secs * 2 + 60);
    while complete.is_none() {
        if Instant::now() > deadline {
            bail!(
                "no complete recording file within {:?}",
                Duration::from_secs(file_secs * 2 + 60)
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        // The first file is complete once a second one exists (files follow each other).
        let mut files: Vec<_> = std::fs::read_dir(source_dir.path().join("cam_1"))
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        files.sort();
        if files.len() >= 2 {
            complete = Some(files[0].clone());
        }
    }
    gate.stop().await;
    sim.stop().await;
    let file = complete.context("no file")?;
    let file_len = std::fs::metadata(&file)?.len();

    // 2. An hour of it under consecutive names (the recorder names files by their first
    // frame, Unix ms). Hard links: the same bytes, no extra disk.
    let hour_dir = crate::procs::temp_dir("camgate-bench-rec-hour-")?;
    let stream = hour_dir.path().join("bench_hour");
    std::fs::create_dir_all(&stream)?;
    let count = 3600 / file_secs;
    let now_ms = time::OffsetDateTime::now_utc().unix_timestamp() * 1000;
    let start_ms = now_ms - 2 * 3_600_000;
    for i in 0..count {
        let name = format!("{}.mp4", start_ms + (i * file_secs * 1000) as i64);
        std::fs::hard_link(&file, stream.join(name))?;
    }
    let gate = Camgate::start(
        ctx,
        CamgateOpts {
            env: vec![
                (
                    "CAMGATE_RECORD_DIR".into(),
                    hour_dir.path().display().to_string(),
                ),
                ("CAMGATE_RECORD_MIN_FREE".into(), "0".into()),
            ],
            ..CamgateOpts::default()
        },
    )
    .await?;
    let (from, to) = (
        start_ms as f64 / 1000.0,
        (start_ms + 3_600_000) as f64 / 1000.0,
    );
    let mut indexed = 0.0;
    wait_until(Duration::from_secs(60), "an hour indexed", async || {
        let r = gate
            .get_json(&format!(
                "/recordings/bench_hour?start={from}&end={}",
                to + 60.0
            ))
            .await?;
        indexed = r.as_array().map_or(0.0, |a| {
            a.iter().filter_map(|x| x["duration"].as_f64()).sum()
        });
        Ok(indexed >= 3500.0)
    })
    .await?;
    // camgate keeps the last few export layouts: each cold trial asks for another range
    // (the hour less i ms at its end), so every one scans the files and builds the moov.
    let url_for = |i: u64| {
        format!(
            "{}/recordings/bench_hour/export.mp4?start={from}&end={:.3}",
            gate.base(),
            to - i as f64 / 1000.0
        )
    };
    let mut whole = Vec::new();
    let mut tail = Vec::new();
    let mut len = 0u64;
    for i in 0..trials {
        let (d, l) = first_byte(ctx, &url_for(i as u64 + 1), None).await?;
        whole.push(d);
        len = l;
    }
    // A player's next requests: Range on the export it already opened.
    let url = url_for(trials as u64);
    let range = format!("bytes={}-", len.saturating_sub(1 << 20));
    for _ in 0..trials {
        tail.push(first_byte(ctx, &url, Some(&range)).await?.0);
    }
    gate.stop().await;
    let w = Summary::of_durations_ms(&whole).context("no trial")?;
    let t = Summary::of_durations_ms(&tail).context("no trial")?;
    let mut table = Table::new(&["request", "trials", "p50 ms", "p95 ms", "max ms"]);
    for (name, s) in [
        ("GET, whole file (cold: a range not asked before)", &w),
        ("GET, Range: last MiB of an export already opened", &t),
    ] {
        table.row([
            name.to_string(),
            trials.to_string(),
            num(s.p50, 1),
            num(s.p95, 1),
            num(s.max, 1),
        ]);
    }
    let markdown = format!(
        "{count} files of {file_secs} s ({} MiB each, one file of the benchmark camera \
         hard-linked under consecutive names), {indexed:.0} s indexed; the export is {} MiB \
         ({} frames at 25 fps). Time from sending the request to the first body byte. Cold, the \
         files' moofs are scanned and the moov built before the answer starts; camgate then \
         keeps the layout for the Range requests that follow:\n\n{}\n",
        num(file_len as f64 / 1048576.0, 1),
        num(len as f64 / 1048576.0, 0),
        3600 * 25,
        table.to_markdown()
    );
    Ok(Export {
        markdown,
        json: json!({
            "files": count, "file_seconds": file_secs, "indexed_seconds": indexed,
            "export_bytes": len, "whole_ms": w.to_json(), "range_last_mib_ms": t.to_json(),
        }),
    })
}

/// Time to the first body byte of `url` (with `Range` if given), and the full length.
async fn first_byte(ctx: &Ctx, url: &str, range: Option<&str>) -> Result<(Duration, u64)> {
    let mut req = ctx.http.get(url);
    if let Some(r) = range {
        req = req.header("Range", r);
    }
    let started = Instant::now();
    let mut res = req.send().await.with_context(|| format!("GET {url}"))?;
    let status = res.status();
    if !(status.is_success()) {
        bail!(
            "GET {url} answered {status}: {}",
            res.text().await.unwrap_or_default()
        );
    }
    let len = match res
        .headers()
        .get("content-range")
        .and_then(|v| v.to_str().ok())
    {
        Some(cr) => cr
            .rsplit('/')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0),
        None => res.content_length().unwrap_or(0),
    };
    let chunk = res.chunk().await?;
    let elapsed = started.elapsed();
    if chunk.is_none_or(|c| c.is_empty()) {
        bail!("GET {url}: empty body");
    }
    // The rest is not timed; dropping the response closes the connection.
    drop(res);
    Ok((elapsed, len))
}
