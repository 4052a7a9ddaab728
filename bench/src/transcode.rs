//! `transcode`: what one transcode profile costs, per profile, with libx264.
//!
//! One simulator (the benchmark camera: 1080p, 25 fps, 2 Mbit/s; quick: 640x360, 10 fps) and,
//! per profile (`720p` at 2.5 Mbit/s and `360p` at 800 kbit/s, the camera's rate, `encoder =
//! "libx264"`), one camgate with that profile in its config file and the camera always on. A
//! window with nobody watching the profile (the camera alone), then a playlist request starts
//! the profile (idle timeout 10 min, so it keeps running), a warm-up, and a window with it
//! running. Reported: ffmpeg's CPU (camgate's child), what camgate itself adds (feeding ffmpeg,
//! reading its output, the profile's HLS), both together, and the profile's output bit rate
//! and size as `/streams` shows them.
//!
//! Hardware encoders (NVENC, VAAPI, QSV) are listed and marked not measured: this harness has
//! no such device to run them on, and says so instead of guessing a figure.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::ctx::Ctx;
use crate::procs::{Camgate, CamgateOpts, Sim, SimOpts};
use crate::procstat;
use crate::report::{Section, Table, num};

struct Profile {
    name: &'static str,
    height: u32,
    bitrate: &'static str,
}

const PROFILES: [Profile; 2] = [
    Profile {
        name: "720p",
        height: 720,
        bitrate: "2.5M",
    },
    Profile {
        name: "360p",
        height: 360,
        bitrate: "800k",
    },
];

pub async fn run(ctx: &Ctx) -> Result<Section> {
    let warmup = ctx.pick(Duration::from_secs(10), Duration::from_secs(2));
    let window = ctx.pick(Duration::from_secs(20), Duration::from_secs(4));
    let sim_opts = ctx.pick(
        SimOpts::default(),
        SimOpts {
            size: (640, 360),
            fps: 10,
            bitrate: "600k".into(),
            ..SimOpts::default()
        },
    );
    let mut md = format!(
        "Camera: {}. Per profile one camgate, the camera always on; a {} s window with the \
         profile unwatched, then the profile started, {} s of warm-up and a {} s window. \
         libx264 with camgate's options (`-preset veryfast -tune zerolatency`, no B-frames, \
         the profile's default GOP).\n\n",
        sim_opts.describe(),
        window.as_secs(),
        warmup.as_secs(),
        window.as_secs()
    );
    let sim = Sim::start(ctx, sim_opts).await?;
    let mut t = Table::new(&[
        "profile",
        "encoder",
        "output",
        "ffmpeg CPU %",
        "camgate added CPU %",
        "CPU % per profile",
        "output kbit/s",
    ]);
    let mut rows = Vec::new();
    for p in &PROFILES {
        let r = measure(ctx, &sim, p, warmup, window)
            .await
            .with_context(|| format!("profile {}", p.name))?;
        t.row([
            p.name.to_string(),
            "libx264".into(),
            r.resolution.clone(),
            num(r.ffmpeg_cpu, 1),
            num(r.camgate_added_cpu, 1),
            num(r.ffmpeg_cpu + r.camgate_added_cpu, 1),
            num(r.output_kbps, 0),
        ]);
        rows.push(json!({
            "profile": p.name, "encoder": "libx264", "resolution": r.resolution,
            "ffmpeg_cpu_percent": r.ffmpeg_cpu, "camgate_added_cpu_percent": r.camgate_added_cpu,
            "camera_only_cpu_percent": r.base_cpu, "output_kbps": r.output_kbps,
        }));
    }
    sim.stop().await;
    let mut hardware = Vec::new();
    for (encoder, device) in [
        ("h264_nvenc", "an NVIDIA GPU (/dev/nvidia0)"),
        ("h264_vaapi", "a VAAPI render node (/dev/dri/renderD128)"),
        (
            "h264_qsv",
            "an Intel GPU with Quick Sync (/dev/dri/renderD128)",
        ),
    ] {
        let present = match encoder {
            "h264_nvenc" => std::path::Path::new("/dev/nvidia0").exists(),
            _ => std::path::Path::new("/dev/dri/renderD128").exists(),
        };
        let why = if present {
            "not measured here (the device is present, but this harness runs libx264 only)"
        } else {
            "not measured here (no such device on this machine)"
        };
        for p in &PROFILES {
            t.row([
                p.name.to_string(),
                encoder.to_string(),
                "-".into(),
                why.to_string(),
                "-".into(),
                "-".into(),
                "-".into(),
            ]);
        }
        hardware.push(
            json!({"encoder": encoder, "device": device, "device_present": present,
                             "measured": false}),
        );
    }
    md.push_str(&t.to_markdown());
    md.push_str(
        "\nCPU % is of one core. ffmpeg CPU is camgate's ffmpeg child alone; camgate added CPU \
         is camgate's own CPU with the profile running minus its CPU with only the camera (the \
         MPEG-TS to and from ffmpeg, parsing, the profile's hub and HLS segmenter; a negative \
         difference, which is noise, is shown as 0). Hardware \
         encoders move the encode off the CPU; what they cost was not measured on this machine, \
         and their rows carry no figure.\n",
    );
    Ok(Section {
        id: "transcode".into(),
        title: "Transcode profiles: CPU per profile".into(),
        markdown: md,
        json: json!({"profiles": rows, "hardware": hardware}),
    })
}

struct Measured {
    base_cpu: f64,
    ffmpeg_cpu: f64,
    camgate_added_cpu: f64,
    resolution: String,
    output_kbps: f64,
}

async fn measure(
    ctx: &Ctx,
    sim: &Sim,
    p: &Profile,
    warmup: Duration,
    window: Duration,
) -> Result<Measured> {
    let config = format!(
        "[profiles.{}]\nheight = {}\nbitrate = \"{}\"\nencoder = \"libx264\"\n",
        p.name, p.height, p.bitrate
    );
    let gate = Camgate::start(
        ctx,
        CamgateOpts {
            env: vec![("CAMGATE_STREAMS_IDLE_TIMEOUT".into(), "600s".into())],
            config_toml: Some(config),
            ..CamgateOpts::default()
        },
    )
    .await?;
    gate.provision("1", &sim.url(1), false).await?;
    gate.wait_live("1", Duration::from_secs(30)).await?;
    tokio::time::sleep(warmup).await;
    let before = procstat::sample(&[gate.pid()]);
    tokio::time::sleep(window).await;
    let after = procstat::sample(&[gate.pid()]);
    let base_cpu = procstat::cpu_percent(&before, &after);

    let path = format!("cam_1~{}", p.name);
    // The playlist request starts the profile and answers once its first part is there. The
    // first start also probes ffmpeg's encoders (seconds), which can outlast camgate's start
    // timeout on a loaded machine: ask again; the profile keeps starting meanwhile (the idle
    // timeout is 10 min).
    let playlist = format!("/hls/{path}/index.m3u8");
    let mut tries = 0;
    while let Err(e) = gate.get_text(&playlist).await {
        tries += 1;
        if tries == 3 {
            return Err(e).with_context(|| format!("the playlist of {path}"));
        }
    }
    wait_profile_live(&gate, &path, Duration::from_secs(30)).await?;
    tokio::time::sleep(warmup).await;
    let children: Vec<u32> = procstat::with_descendants(&[gate.pid()])
        .into_iter()
        .filter(|pid| *pid != gate.pid())
        .collect();
    if children.is_empty() {
        bail!("no ffmpeg child of camgate with {path} running");
    }
    let before_all = procstat::sample(&[gate.pid()]);
    let before_ff = procstat::sample(&children);
    tokio::time::sleep(window).await;
    let after_all = procstat::sample(&[gate.pid()]);
    let after_ff = procstat::sample(&children);
    let entry = wait_profile_live(&gate, &path, Duration::from_secs(5)).await?;
    gate.stop().await;
    let all = procstat::cpu_percent(&before_all, &after_all);
    let ffmpeg_cpu = procstat::cpu_percent(&before_ff, &after_ff);
    Ok(Measured {
        base_cpu,
        ffmpeg_cpu,
        camgate_added_cpu: (all - ffmpeg_cpu - base_cpu).max(0.0),
        resolution: entry["resolution"].as_str().unwrap_or("?").to_string(),
        output_kbps: entry["bitrate_kbps"].as_f64().unwrap_or(0.0),
    })
}

/// The profile's `/streams` entry once it is live.
async fn wait_profile_live(gate: &Camgate, path: &str, within: Duration) -> Result<Value> {
    let deadline = Instant::now() + within;
    loop {
        let list = gate.get_json("/streams").await?;
        let entry = list
            .as_array()
            .and_then(|a| a.iter().find(|s| s["stream_path"] == path))
            .cloned();
        if let Some(e) = &entry
            && e["state"] == "live"
        {
            return Ok(e.clone());
        }
        if Instant::now() > deadline {
            bail!(
                "{path} not live after {within:?}: {entry:?}; see {}",
                gate.log.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
