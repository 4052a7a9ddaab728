//! Section `glass`: glass-to-glass latency in headless Chromium. One live simulated camera
//! (`camgate sim --live`, so every frame carries its capture time in the clock band) feeds
//! camgate (always on); `bench/glass/glass.mjs` plays it with each player in turn (MSE over
//! WebSocket, hls.js in low-latency mode, Chromium's own HLS) and reads the band of every
//! presented frame (`bench/glass/page.mjs`). The latency of a frame is the browser's
//! `Date.now()` when the frame is handed to the compositor minus the band's capture time; the
//! simulator and the browser share this machine's clock.

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;

use crate::ctx::Ctx;
use crate::procs::{self, Camgate, CamgateOpts, Sim, SimOpts};
use crate::procstat;
use crate::report::{Section, Table, num};
use crate::stats::Summary;

const CAMERA: &str = "glass";
const SIZE: (u32, u32) = (1280, 720);
const FPS: u32 = 25;
const BITRATE: &str = "1M";

/// One player's row: what the page measured, and its per-frame latencies.
struct PlayerResult {
    player: String,
    raw: Value,
    samples: Vec<f64>,
}

/// CPU of each process group over the players' runs (100 % = one core).
struct Cpu {
    sim: f64,
    camgate: f64,
    browser: f64,
}

pub async fn run(ctx: &Ctx) -> anyhow::Result<Section> {
    // Quick (CI): MSE, hls.js and WebRTC, 5 s each. Full: 30 s each, also MSE with the
    // dashboard's live-edge policy and Chromium's own HLS.
    let seconds: u32 = ctx.pick(30, 5);
    let players: &[&str] = ctx.pick(
        &["webrtc", "mse", "mse-dashboard", "hlsjs", "native"],
        &["webrtc", "mse", "hlsjs"],
    );
    let skip: u32 = 1;
    let script = ctx.root.join("bench/glass/glass.mjs");
    check_node_modules(&ctx.root)?;

    let sim = Sim::start(
        ctx,
        SimOpts {
            size: SIZE,
            fps: FPS,
            bitrate: BITRATE.into(),
            gop: Duration::from_secs(1),
            live: true,
            ..SimOpts::default()
        },
    )
    .await
    .context("starting camgate sim --live")?;
    let camgate = Camgate::start(ctx, CamgateOpts::default())
        .await
        .context("starting camgate")?;
    camgate
        .provision(CAMERA, &sim.url(1), false)
        .await
        .context("provisioning the glass camera")?;
    camgate.wait_live(CAMERA, Duration::from_secs(20)).await?;
    // A few segments in the playlist first, so every player starts as it would on a camera
    // that has been live for a while.
    tokio::time::sleep(Duration::from_secs(3)).await;

    let per_player = u64::from(seconds + skip) + 30 + 15;
    let limit = Duration::from_secs(players.len() as u64 * per_player + 30);
    let args = [
        camgate.base().to_string(),
        CAMERA.to_string(),
        players.join(","),
        seconds.to_string(),
        skip.to_string(),
    ];
    let (out, cpu) = run_node(&script, &args, limit, sim.pid(), camgate.pid()).await?;

    let parsed: Value = serde_json::from_str(&out).context("glass.mjs printed no valid RESULT")?;
    if let Some(e) = parsed.get("error").and_then(Value::as_str) {
        bail!("glass.mjs: {e}");
    }
    let results: Vec<PlayerResult> = parsed["players"]
        .as_array()
        .context("glass.mjs RESULT has no players")?
        .iter()
        .map(|p| PlayerResult {
            player: p["player"].as_str().unwrap_or("?").to_owned(),
            samples: floats(&p["samples"]),
            raw: p.clone(),
        })
        .collect();
    // Every player must produce figures; Chromium's own HLS is a bonus row, and so is WebRTC
    // in quick mode (CI), where its error still shows in the table's note.
    let optional = |p: &str| p == "native" || (p == "webrtc" && ctx.quick);
    for r in &results {
        if !optional(&r.player) && r.samples.is_empty() {
            bail!(
                "{}: no frame's clock band could be read ({})",
                r.player,
                r.raw["error"].as_str().unwrap_or("no error reported")
            );
        }
    }
    Ok(section(&results, seconds, skip, &cpu))
}

fn section(results: &[PlayerResult], seconds: u32, skip: u32, cpu: &Cpu) -> Section {
    let mut t = Table::new(&[
        "player",
        "frames read",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "min ms",
        "max ms",
        "band failed",
        "missed",
        "buffered ahead p50 ms",
        "delivery p50 ms",
        "first frame ms",
        "note",
    ]);
    let mut json_players = Vec::new();
    for r in results {
        let q = Summary::of(&r.samples);
        let ahead = Summary::of(&floats(&r.raw["buffer_ahead"]));
        let offset = Summary::of(&floats(&r.raw["display_offsets"]));
        let delivery = Summary::of(&floats(&r.raw["delivery"]));
        let n = |k: &str| r.raw[k].as_u64().unwrap_or(0);
        let f = |s: Option<Summary>, pick: fn(&Summary) -> f64| {
            s.map_or("-".into(), |s| num(pick(&s), 0))
        };
        t.row(vec![
            label(&r.player).to_owned(),
            r.samples.len().to_string(),
            f(q, |s| s.p50),
            f(q, |s| s.p95),
            f(q, |s| s.p99),
            f(q, |s| s.min),
            f(q, |s| s.max),
            (n("band_failures") + n("implausible")).to_string(),
            n("missed").to_string(),
            f(ahead, |s| s.p50),
            f(delivery, |s| s.p50),
            r.raw["first_frame_ms"]
                .as_u64()
                .map_or("-".into(), |v| v.to_string()),
            r.raw["error"].as_str().unwrap_or("").to_owned(),
        ]);
        json_players.push(json!({
            "player": r.player,
            "frames_read": r.samples.len(),
            "latency_ms": q.map(|s| s.to_json()),
            "buffered_ahead_ms": ahead.map(|s| s.to_json()),
            "delivery_ms": delivery.map(|s| s.to_json()),
            "display_offset_ms": offset.map(|s| s.to_json()),
            "band_failures": n("band_failures"),
            "implausible": n("implausible"),
            "repeats": n("repeats"),
            "missed": n("missed"),
            "seeks": n("seeks"),
            "server_skips": n("server_skips"),
            "waiting": n("waiting"),
            "callbacks": n("callbacks"),
            "quality": r.raw["quality"],
            "first_frame_ms": r.raw["first_frame_ms"],
            "whep_ms": r.raw["settings"]["whep"],
            "video_size": r.raw["video_size"],
            "settings": r.raw["settings"],
            "user_agent": r.raw["user_agent"],
            "error": r.raw["error"],
        }));
    }
    let (w, h) = SIZE;
    let mut md = format!(
        "One camera, `camgate sim --live --size {w}x{h} --fps {FPS} --bitrate {BITRATE} \
         --gop 1s`, always on in camgate (default settings: LL-HLS 1 s segments, 200 ms \
         parts). Each player plays alone in headless Chromium (software decoding) for \
         {seconds} s after its first {skip} s of playback. Latency of a frame = `Date.now()` \
         in the page's `requestVideoFrameCallback` minus the capture time in the frame's \
         clock band, read from the frame at its native size (same machine, same clock).\n\n"
    );
    md.push_str(&t.to_markdown());
    md.push_str("\nPlayer settings:\n\n");
    for r in results {
        md.push_str(&format!(
            "- {}: {}\n",
            label(&r.player),
            settings_text(&r.raw["settings"])
        ));
    }
    md.push_str(&format!(
        "\nCPU during the players' runs (100 % = one core): simulator {} %, camgate {} %, \
         Chromium and node {} %.\n\n\
         *band failed*: frames in the window whose band failed its guards or CRC (or decoded \
         to an age over 60 s), not counted in the latencies; *missed*: frames the browser \
         presented without a callback; *buffered ahead*: video buffered past the presented \
         frame (the player's buffer); *delivery*: latency minus buffered ahead, i.e. the age \
         of the newest video in the browser's buffer (capture to appended). The latency includes the simulator's encode, RTSP over loopback TCP, camgate \
         (MSE sends a frame when the next one arrives, 40 ms at 25 fps; LL-HLS also waits \
         for the part to close, up to 200 ms, and for the player's blocking reload and part \
         request; WebRTC sends each frame's packets as it arrives, paced by nothing), the player's \
         buffer (WebRTC: the browser's jitter buffer, which `buffered ahead` cannot see), \
         decoding and the browser's frame scheduling. WebRTC's `whep` setting gives the \
         session setup: ms from the WHEP POST to its answer, to ICE+DTLS connected, and to \
         the first frame presented (a warm start: the camera is live, the session starts \
         from the hub's cached keyframe).\n",
        num(cpu.sim, 0),
        num(cpu.camgate, 1),
        num(cpu.browser, 0),
    ));
    Section {
        id: "glass".into(),
        title: "Glass-to-glass latency (headless Chromium)".into(),
        markdown: md,
        json: json!({
            "window_s": seconds,
            "skip_s": skip,
            "camera": { "size": format!("{w}x{h}"), "fps": FPS, "bitrate": BITRATE,
                        "gop": "1s", "live": true },
            "cpu_percent": { "sim": cpu.sim, "camgate": cpu.camgate, "browser": cpu.browser },
            "players": json_players,
        }),
    }
}

fn label(player: &str) -> &str {
    match player {
        "mse" => "MSE (WebSocket)",
        "mse-dashboard" => "MSE, dashboard's live edge",
        "hlsjs" => "LL-HLS, hls.js",
        "webrtc" => "WebRTC (WHEP)",
        "native" => "HLS, Chromium's own",
        other => other,
    }
}

fn settings_text(v: &Value) -> String {
    match v.as_object() {
        Some(m) => m
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => format!("{k} = {s}"),
                other => format!("{k} = {other}"),
            })
            .collect::<Vec<_>>()
            .join("; "),
        None => "-".into(),
    }
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_f64).collect())
        .unwrap_or_default()
}

fn check_node_modules(root: &Path) -> anyhow::Result<()> {
    for m in ["playwright-core", "hls.js"] {
        if !root.join("node_modules").join(m).is_dir() {
            bail!(
                "the glass section needs node_modules/{m}: run `npm ci` in {}",
                root.display()
            );
        }
    }
    Ok(())
}

/// Runs node on the script; returns the JSON after `RESULT ` on its stdout and the CPU used
/// meanwhile. On time out node gets SIGTERM (it closes Chromium), then SIGKILL 5 s later.
async fn run_node(
    script: &Path,
    args: &[String],
    limit: Duration,
    sim: u32,
    camgate: u32,
) -> anyhow::Result<(String, Cpu)> {
    let mut child = procs::command("node")
        .arg(script)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting node (the glass section needs it)")?;
    let node = child.id().context("node exited at once")?;
    let mut stdout = child.stdout.take().context("node stdout")?;
    let mut stderr = child.stderr.take().context("node stderr")?;
    let before = [procstat::sample(&[sim]), procstat::sample(&[camgate])];
    let started = Instant::now();
    // Chromium's processes come and go (a renderer per page): their CPU is summed per
    // process from samples every 250 ms (a process's last 250 ms before exiting are lost).
    let mut browser = BrowserTicks::default();
    let read = async {
        let reading = async {
            let (mut out, mut err) = (String::new(), String::new());
            let _ = tokio::join!(
                stdout.read_to_string(&mut out),
                stderr.read_to_string(&mut err)
            );
            (out, err)
        };
        tokio::pin!(reading);
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        loop {
            tokio::select! {
                r = &mut reading => break r,
                _ = tick.tick() => browser.sample(node),
            }
        }
    };
    let (out, err) = match tokio::time::timeout(limit, read).await {
        Ok(v) => v,
        Err(_) => {
            // SAFETY: kill(2) on our own child's pid has no memory effects.
            unsafe { libc::kill(node as i32, libc::SIGTERM) };
            if tokio::time::timeout(Duration::from_secs(5), child.wait())
                .await
                .is_err()
            {
                procs::kill_and_wait(&mut child).await;
            }
            bail!("glass.mjs did not finish within {limit:?}");
        }
    };
    let after = [procstat::sample(&[sim]), procstat::sample(&[camgate])];
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .context("node did not exit after closing its output")??;
    let cpu = Cpu {
        sim: procstat::cpu_percent(&before[0], &after[0]),
        camgate: procstat::cpu_percent(&before[1], &after[1]),
        browser: browser.total as f64
            / procstat::clk_tck() as f64
            / started.elapsed().as_secs_f64()
            * 100.0,
    };
    match out.lines().find_map(|l| l.strip_prefix("RESULT ")) {
        Some(json) => Ok((json.to_owned(), cpu)),
        None => bail!(
            "glass.mjs ({status}) printed no RESULT line; stderr: {}",
            err.lines().rev().take(10).collect::<Vec<_>>().join(" | ")
        ),
    }
}

/// CPU ticks of a process tree whose members come and go, summed per process.
#[derive(Default)]
struct BrowserTicks {
    last: HashMap<u32, u64>,
    total: u64,
}

impl BrowserTicks {
    fn sample(&mut self, root: u32) {
        for pid in procstat::with_descendants(&[root]) {
            let Some(now) = ticks(pid) else { continue };
            let prev = self.last.insert(pid, now).unwrap_or(0);
            self.total += now.saturating_sub(prev);
        }
    }
}

/// utime + stime of one process (not its children), in clock ticks.
fn ticks(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may contain spaces: split after the last ')'.
    let fields: Vec<&str> = text[text.rfind(')')? + 2..].split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn player(name: &str, samples: &[f64], raw: Value) -> PlayerResult {
        PlayerResult {
            player: name.into(),
            raw,
            samples: samples.to_vec(),
        }
    }

    #[test]
    fn section_reports_quantiles_counts_and_failures() {
        let mse = player(
            "mse",
            &[100.0, 120.0, 140.0, 160.0],
            json!({"band_failures": 2, "implausible": 1, "missed": 3,
                   "buffer_ahead": [80, 90], "delivery": [30, 40], "first_frame_ms": 300,
                   "settings": {"live_edge": "x"}}),
        );
        let native = player(
            "native",
            &[],
            json!({"error": "this Chromium does not play HLS natively", "settings": {}}),
        );
        let cpu = Cpu {
            sim: 17.0,
            camgate: 0.7,
            browser: 50.0,
        };
        let s = section(&[mse, native], 30, 1, &cpu);
        assert_eq!(s.id, "glass");
        let row = s
            .markdown
            .lines()
            .find(|l| l.starts_with("| MSE (WebSocket)"))
            .expect("an MSE row");
        // frames, p50, p95, p99, min, max, band failed (2 + 1 implausible), missed.
        assert!(
            row.contains("| 4 | 120 | 160 | 160 | 100 | 160 | 3 | 3 | 80 | 30 | 300 |"),
            "{row}"
        );
        let native_row = s
            .markdown
            .lines()
            .find(|l| l.starts_with("| HLS, Chromium's own"))
            .expect("a native row");
        assert!(native_row.contains("| 0 | - |"), "{native_row}");
        assert!(
            native_row.contains("does not play HLS natively"),
            "{native_row}"
        );
        assert_eq!(s.json["players"][0]["latency_ms"]["p50"], 120.0);
        assert!(s.json["players"][1]["latency_ms"].is_null());
        assert_eq!(s.json["players"][0]["band_failures"], 2);
    }

    #[test]
    fn browser_ticks_sum_a_process_tree() {
        let mut t = BrowserTicks::default();
        let start = Instant::now();
        let mut x = 0u64;
        while start.elapsed() < Duration::from_millis(200) {
            x = x.wrapping_mul(31).wrapping_add(1);
        }
        std::hint::black_box(x);
        t.sample(std::process::id());
        assert!(t.total > 0);
        assert!(ticks(std::process::id()).is_some());
    }
}
