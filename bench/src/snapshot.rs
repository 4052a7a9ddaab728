//! Section `snapshot`: how fast `/cameras/{id}/snapshot.jpg` answers and what NATS frame
//! messages cost.
//!
//! - **latency** at 720p and 1080p (one `camgate sim` camera each, 25 fps, 1 s GOP, looped
//!   clip): *first* (the camera is live, no decoder yet: the GOP is decoded forward from its
//!   keyframe), *warm* (requests 1.1 s apart, so each decodes only the frames since the last
//!   one and `[snapshot] reuse` (1 s) never answers from the cache), *cold* (an idle on-demand
//!   camera: the request starts it and waits for its first keyframe; between trials the camera
//!   goes idle again, `idle_timeout` 1 s). Times are request sent -> whole JPEG received.
//! - **frame messages**: a real `nats-server`, N always-on cameras (N = 10 and 100; quick 2)
//!   of one simulator (640x360, 10 fps, 1 s GOP). A window with frame messages off, then the
//!   same cameras re-provisioned with `frame_interval: "1s"` and a window with them on; the CPU
//!   added is the messages' cost (nobody fetches). A raw NATS subscriber in the bench counts the
//!   messages and, after the window, fetches one announced URL per camera (up to 10): the
//!   decode time per fetched frame is read from `camgate_snapshot_decode_seconds`.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use crate::ctx::Ctx;
use crate::procs::{Camgate, CamgateOpts, Sim, SimOpts, command, free_port};
use crate::procstat;
use crate::report::{Section, Table, num};
use crate::stats::{Summary, metric_sum};

pub async fn run(ctx: &Ctx) -> Result<Section> {
    let mut md = String::new();
    let mut lat_json = Vec::new();
    let mut t = Table::new(&[
        "camera",
        "first (ms)",
        "warm p50 (ms)",
        "warm p95 (ms)",
        "cold p50 (ms)",
        "cold p95 (ms)",
        "JPEG KiB",
    ]);
    for size in [(1280u32, 720u32), (1920, 1080)] {
        let r = latency(ctx, size).await?;
        t.row([
            format!("{}x{}", size.0, size.1),
            num(r.first, 0),
            num(r.warm.p50, 1),
            num(r.warm.p95, 1),
            num(r.cold.p50, 0),
            num(r.cold.p95, 0),
            num(r.jpeg_kib, 0),
        ]);
        lat_json.push(json!({
            "size": format!("{}x{}", size.0, size.1), "first_ms": r.first,
            "warm_ms": r.warm.to_json(), "cold_ms": r.cold.to_json(), "jpeg_kib": r.jpeg_kib,
        }));
    }
    let (warm_n, cold_n) = (ctx.pick(20, 3), ctx.pick(8, 2));
    md.push_str(&format!(
        "Snapshot latency, request -> whole JPEG (quality 80, full size). Camera: `camgate sim`, \
         25 fps, 2 Mbit/s, 1 s GOP, looped clip. *first*: the camera live, no decoder yet (the \
         GOP decoded forward from its keyframe); *warm*: {warm_n} requests 1.1 s apart (each \
         decodes the ~27 frames since the last); *cold*: {cold_n} requests to an idle on-demand \
         camera (start, RTSP session, first keyframe, decode), idle again between trials.\n\n"
    ));
    md.push_str(&t.to_markdown());

    let mut f = Table::new(&[
        "cameras",
        "CPU off %",
        "CPU on %",
        "added % of a core",
        "added per 10 cameras %",
        "messages/s",
        "decode per fetched frame (ms)",
    ]);
    let mut frame_json = Vec::new();
    for n in ctx.pick(vec![10usize, 100], vec![2]) {
        let r = frame_messages(ctx, n).await?;
        f.row([
            n.to_string(),
            num(r.cpu_off, 2),
            num(r.cpu_on, 2),
            num(r.cpu_on - r.cpu_off, 2),
            num((r.cpu_on - r.cpu_off) * 10.0 / n as f64, 3),
            num(r.rate, 1),
            r.fetch_ms.map_or("-".into(), |v| num(v, 1)),
        ]);
        frame_json.push(json!({
            "cameras": n, "cpu_off_percent": r.cpu_off, "cpu_on_percent": r.cpu_on,
            "messages_per_s": r.rate, "decode_ms_per_fetched_frame": r.fetch_ms,
        }));
    }
    md.push_str(&format!(
        "\nFrame messages at 1 per second per camera, nobody fetching (100 % = one core; a \
         {} s window each, off then on in the same process; the difference is within the noise \
         of N cameras' ingest on a shared machine, so read it as an upper bound). Then one URL \
         per camera fetched (up to 10): the mean decoder run (GOP up to the frame, JPEG) from \
         `camgate_snapshot_decode_seconds`.\n\n",
        ctx.pick(20, 4)
    ));
    md.push_str(&f.to_markdown());
    Ok(Section {
        id: "snapshot".into(),
        title: "Snapshots and NATS frame messages".into(),
        markdown: md,
        json: json!({ "latency": lat_json, "frame_messages": frame_json }),
    })
}

struct Latency {
    first: f64,
    warm: Summary,
    cold: Summary,
    jpeg_kib: f64,
}

/// GETs `path`; milliseconds and bytes of a `200 image/jpeg`.
async fn fetch(ctx: &Ctx, gate: &Camgate, path: &str) -> Result<(f64, usize)> {
    let t = Instant::now();
    let r = ctx
        .http
        .get(format!("{}{path}", gate.base()))
        .send()
        .await
        .with_context(|| format!("GET {path}"))?;
    let status = r.status();
    let body = r.bytes().await?;
    if !status.is_success() || !body.starts_with(&[0xFF, 0xD8]) {
        bail!(
            "GET {path}: {status} {}",
            String::from_utf8_lossy(&body[..body.len().min(200)])
        );
    }
    Ok((t.elapsed().as_secs_f64() * 1000.0, body.len()))
}

async fn latency(ctx: &Ctx, size: (u32, u32)) -> Result<Latency> {
    let sim = Sim::start(
        ctx,
        SimOpts {
            size,
            ..SimOpts::default()
        },
    )
    .await?;
    let gate = Camgate::start(
        ctx,
        CamgateOpts {
            env: vec![("CAMGATE_STREAMS_IDLE_TIMEOUT".into(), "1s".into())],
            ..CamgateOpts::default()
        },
    )
    .await?;
    gate.provision("warm", &sim.url(1), false).await?;
    gate.provision("cold", &sim.url(1), true).await?;
    gate.wait_live("warm", Duration::from_secs(30)).await?;
    // Past the first GOP, so the cached GOP is a whole one.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (first, bytes) = fetch(ctx, &gate, "/cameras/warm/snapshot.jpg").await?;
    let mut warm = Vec::new();
    for _ in 0..ctx.pick(20, 3) {
        tokio::time::sleep(Duration::from_millis(1100)).await;
        warm.push(fetch(ctx, &gate, "/cameras/warm/snapshot.jpg").await?.0);
    }
    let mut cold = Vec::new();
    for _ in 0..ctx.pick(8, 2) {
        wait_state(&gate, "cold", "idle", Duration::from_secs(30)).await?;
        cold.push(fetch(ctx, &gate, "/cameras/cold/snapshot.jpg").await?.0);
    }
    eprintln!(
        "snapshot {}x{}: first {first:.0} ms, warm {warm:?}, cold {cold:?}",
        size.0, size.1
    );
    let warm = Summary::of(&warm).context("no warm snapshot")?;
    let cold = Summary::of(&cold).context("no cold snapshot")?;
    gate.stop().await;
    sim.stop().await;
    Ok(Latency {
        first,
        warm,
        cold,
        jpeg_kib: bytes as f64 / 1024.0,
    })
}

async fn wait_state(gate: &Camgate, id: &str, want: &str, within: Duration) -> Result<()> {
    let deadline = Instant::now() + within;
    loop {
        let v = gate.get_json(&format!("/cameras/{id}/status")).await?;
        if v["state"] == want {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "camera {id} is {}, not {want}, after {within:?}",
                v["state"]
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

struct FrameCost {
    cpu_off: f64,
    cpu_on: f64,
    rate: f64,
    fetch_ms: Option<f64>,
}

/// A `nats-server` on a free port, killed on drop.
struct Nats {
    child: tokio::process::Child,
    port: u16,
}

impl Nats {
    async fn start(ctx: &Ctx) -> Result<Nats> {
        let port = free_port()?;
        let program = if std::path::Path::new("/usr/sbin/nats-server").exists() {
            "/usr/sbin/nats-server"
        } else {
            "nats-server"
        };
        let (_, log) = crate::procs::log_file(ctx, "nats")?;
        let child = command(program)
            .args(["-a", "127.0.0.1", "-p", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot run {program} (Debian package nats-server)"))?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            if Instant::now() > deadline {
                bail!("nats-server did not listen on {port}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(Nats { child, port })
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// The frame messages (payloads) a raw NATS subscriber receives until `until`.
async fn subscribe(port: u16, subject: &str) -> Result<tokio::sync::mpsc::Receiver<Value>> {
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    let (read, mut write) = stream.into_split();
    write
        .write_all(
            format!("CONNECT {{\"verbose\":false}}\r\nSUB {subject} 1\r\nPING\r\n").as_bytes(),
        )
        .await?;
    let (tx, rx) = tokio::sync::mpsc::channel(100_000);
    tokio::spawn(async move {
        let _keep = write;
        let mut lines = BufReader::new(read);
        let mut line = String::new();
        loop {
            line.clear();
            if lines.read_line(&mut line).await.unwrap_or(0) == 0 {
                return;
            }
            // MSG <subject> <sid> <bytes>
            if let Some(rest) = line.strip_prefix("MSG ") {
                let Some(len) = rest.split_whitespace().last().and_then(|n| n.parse().ok()) else {
                    return;
                };
                let mut payload = vec![0u8; len + 2];
                if lines.read_exact(&mut payload).await.is_err() {
                    return;
                }
                if let Ok(v) = serde_json::from_slice::<Value>(&payload[..len]) {
                    let _ = tx.try_send(v);
                }
            } else if line.starts_with("PING") {
                // The server's keep-alive; our writer half is idle, so answer nothing: the
                // windows are far shorter than its 2 min ping interval.
            }
        }
    });
    Ok(rx)
}

async fn frame_messages(ctx: &Ctx, n: usize) -> Result<FrameCost> {
    let warmup = ctx.pick(Duration::from_secs(8), Duration::from_secs(3));
    let window = ctx.pick(Duration::from_secs(20), Duration::from_secs(4));
    let nats = Nats::start(ctx).await?;
    let sim = Sim::start(
        ctx,
        SimOpts {
            cameras: n,
            size: (640, 360),
            fps: 10,
            bitrate: "500k".into(),
            ..SimOpts::default()
        },
    )
    .await?;
    let gate = Camgate::start(
        ctx,
        CamgateOpts {
            env: vec![(
                "CAMGATE_NATS_URL".into(),
                format!("nats://127.0.0.1:{}", nats.port),
            )],
            ..CamgateOpts::default()
        },
    )
    .await?;
    let body = |i: usize, interval: &str| {
        json!({"camera_id": format!("f{i}"), "rtsp_url": sim.url(i), "on_demand": false,
               "transport": "tcp", "frame_interval": interval})
    };
    for i in 1..=n {
        gate.provision_json(body(i, "0")).await?;
    }
    for i in 1..=n {
        gate.wait_live(&format!("f{i}"), Duration::from_secs(60))
            .await?;
    }
    tokio::time::sleep(warmup).await;
    let cpu_off = cpu_over(&gate, window).await;
    let mut rx = subscribe(nats.port, "camgate.camera.frame").await?;
    for i in 1..=n {
        gate.provision_json(body(i, "1s")).await?;
    }
    for i in 1..=n {
        gate.wait_live(&format!("f{i}"), Duration::from_secs(60))
            .await?;
    }
    tokio::time::sleep(warmup).await;
    while rx.try_recv().is_ok() {}
    let cpu_on = cpu_over(&gate, window).await;
    let mut messages = Vec::new();
    while let Ok(v) = rx.try_recv() {
        messages.push(v);
    }
    let rate = messages.len() as f64 / window.as_secs_f64();
    // One URL per camera, the newest, up to 10 (kept 30 s: well within).
    let mut urls: Vec<String> = Vec::new();
    for m in messages.iter().rev() {
        let id = m["camera_id"].as_str().unwrap_or_default();
        if urls.len() < 10
            && !urls.iter().any(|u| u.contains(&format!("/cameras/{id}/")))
            && let Some(u) = m["url"].as_str()
        {
            urls.push(u.to_owned());
        }
    }
    let before = gate.metrics().await?;
    let mut fetched = 0;
    for u in &urls {
        let r = ctx.http.get(u).send().await?;
        if r.status().is_success() {
            let _ = r.bytes().await?;
            fetched += 1;
        }
    }
    let after = gate.metrics().await?;
    let sum = |t: &str| metric_sum(t, "camgate_snapshot_decode_seconds_sum");
    let count = |t: &str| metric_sum(t, "camgate_snapshot_decode_seconds_count");
    let runs = count(&after) - count(&before);
    let fetch_ms =
        (fetched > 0 && runs > 0.0).then(|| (sum(&after) - sum(&before)) / runs * 1000.0);
    eprintln!(
        "snapshot frames N={n}: CPU off {cpu_off:.2} %, on {cpu_on:.2} %, {rate:.1} messages/s, {fetched} fetched, decode {fetch_ms:?} ms"
    );
    gate.stop().await;
    sim.stop().await;
    drop(nats);
    if messages.is_empty() {
        bail!("no frame message reached the NATS subscriber with {n} cameras");
    }
    Ok(FrameCost {
        cpu_off,
        cpu_on,
        rate,
        fetch_ms,
    })
}

async fn cpu_over(gate: &Camgate, window: Duration) -> f64 {
    let a = procstat::sample(&[gate.pid()]);
    tokio::time::sleep(window).await;
    let b = procstat::sample(&[gate.pid()]);
    procstat::cpu_percent(&a, &b)
}
