//! Section `cost`: CPU and memory per camera of camgate (all N cameras always on, LL-HLS
//! segmenting every one) against one `ffmpeg -c copy` HLS process per camera, and for small
//! N one `ffmpeg -c:v libx264 -preset ultrafast` per camera; plus the memory of an idle
//! on-demand camera. One simulator serves every run.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::{Value, json};

use crate::ctx::Ctx;
use crate::procs::{self, Camgate, CamgateOpts, Sim, SimOpts};
use crate::procstat::{self, Sample};
use crate::report::{Section, Table, num};
use crate::stats;

/// The systems under test.
#[derive(Debug, Clone, Copy, PartialEq)]
enum System {
    Camgate,
    FfmpegCopy,
    FfmpegX264,
}

impl System {
    fn id(self) -> &'static str {
        match self {
            System::Camgate => "camgate",
            System::FfmpegCopy => "ffmpeg_copy",
            System::FfmpegX264 => "ffmpeg_x264",
        }
    }
    fn title(self) -> &'static str {
        match self {
            System::Camgate => "camgate (LL-HLS, always on)",
            System::FfmpegCopy => "ffmpeg -c copy (one process per camera)",
            System::FfmpegX264 => "ffmpeg -c:v libx264 -preset ultrafast -g 25 (one per camera)",
        }
    }
}

/// `ffmpeg`'s HLS segment length in the baseline (`-hls_time 2`).
const HLS_TIME_SECS: f64 = 2.0;

/// One measured (system, N).
#[derive(Debug, Clone)]
struct Row {
    n: usize,
    /// CPU of the system under test, percent of one core.
    cpu: f64,
    rss_mib: f64,
    pss_mib: f64,
    /// Memory per camera: camgate (RSS - RSS with no camera) / N; ffmpeg RSS / N.
    rss_per_cam_mib: f64,
    pss_per_cam_mib: f64,
    sim_cpu: f64,
    /// Fraction of real time achieved (frames or segments against the expected count).
    realtime: f64,
    /// What `realtime` counts, for the report.
    progress: String,
    saturated: bool,
    /// How many cameras (or processes) were delivering when the window started.
    running: usize,
}

impl Row {
    fn to_json(&self) -> Value {
        json!({
            "n": self.n, "cpu_percent": self.cpu, "cpu_percent_per_camera": self.cpu / self.n as f64,
            "rss_mib": self.rss_mib, "pss_mib": self.pss_mib,
            "rss_per_camera_mib": self.rss_per_cam_mib, "pss_per_camera_mib": self.pss_per_cam_mib,
            "sim_cpu_percent": self.sim_cpu, "realtime_fraction": self.realtime,
            "progress": self.progress, "saturated": self.saturated, "running": self.running,
        })
    }
}

/// What happened at one (system, N).
#[derive(Debug, Clone)]
enum Outcome {
    Measured(Row),
    /// Not run, and why (saturated at a smaller N, memory, an error).
    NotRun(usize, String),
}

struct Plan {
    ns: Vec<usize>,
    x264_ns: Vec<usize>,
    warmup: Duration,
    window: Duration,
    idle_k: usize,
}

pub async fn run(ctx: &Ctx) -> Result<Section> {
    let plan = Plan {
        ns: ctx.pick(vec![1, 10, 50, 100, 200, 500], vec![1, 2]),
        x264_ns: ctx.pick(vec![1, 2, 4], vec![1]),
        warmup: ctx.pick(Duration::from_secs(15), Duration::from_secs(2)),
        window: ctx.pick(Duration::from_secs(20), Duration::from_secs(5)),
        idle_k: ctx.pick(1000, 50),
    };
    let max_n = plan.ns.iter().copied().max().unwrap_or(1);
    let sim_opts = SimOpts {
        cameras: max_n,
        ..SimOpts::default()
    };
    let sim = Sim::start(ctx, sim_opts.clone()).await?;
    eprintln!(
        "cost: sim with {max_n} cameras at {}",
        sim.url(1).rsplit_once('/').map_or("", |(a, _)| a)
    );

    let baseline = camgate_baseline(ctx).await?;
    eprintln!(
        "cost: camgate with no camera: RSS {:.1} MiB, PSS {:.1} MiB",
        baseline.rss_mib(),
        baseline.pss_mib()
    );

    let mut results: Vec<(System, Vec<Outcome>)> = Vec::new();
    for system in [System::Camgate, System::FfmpegCopy, System::FfmpegX264] {
        let ns = if system == System::FfmpegX264 {
            &plan.x264_ns
        } else {
            &plan.ns
        };
        let mut outcomes = Vec::new();
        let mut stop: Option<String> = None;
        let mut per_proc_mib: f64 = match system {
            System::Camgate => 0.0,
            // PSS per process before the first measurement: generous guesses.
            System::FfmpegCopy => 40.0,
            System::FfmpegX264 => 400.0,
        };
        for &n in ns {
            if let Some(why) = &stop {
                outcomes.push(Outcome::NotRun(n, why.clone()));
                continue;
            }
            if system != System::Camgate {
                // Each ffmpeg is a process of its own: check it fits before starting N (PSS
                // per process measured at the previous N, with a margin).
                let need = (per_proc_mib * n as f64 * 1.3) as u64 + 1024;
                let avail = procstat::mem_available_mib();
                if need > avail {
                    let why =
                        format!("not run: memory (needs about {need} MiB, {avail} MiB available)");
                    eprintln!("cost: {} N={n}: {why}", system.id());
                    outcomes.push(Outcome::NotRun(n, why.clone()));
                    stop = Some(why);
                    continue;
                }
            }
            eprintln!("cost: {} N={n}", system.id());
            let measured = match system {
                System::Camgate => measure_camgate(ctx, &sim, &baseline, n, &plan).await,
                _ => measure_ffmpeg(&sim, system, n, &plan).await,
            };
            match measured {
                Ok(row) => {
                    eprintln!(
                        "cost: {} N={n}: CPU {:.1} %, RSS {:.1} MiB, PSS {:.1} MiB, sim CPU {:.1} %, {}{}",
                        system.id(),
                        row.cpu,
                        row.rss_mib,
                        row.pss_mib,
                        row.sim_cpu,
                        row.progress,
                        if row.saturated { ", SATURATED" } else { "" }
                    );
                    if system != System::Camgate && row.n > 0 {
                        per_proc_mib = row.pss_mib / row.n as f64;
                    }
                    if row.saturated {
                        stop = Some(format!("not run: saturated at N={n}"));
                    }
                    outcomes.push(Outcome::Measured(row));
                }
                // The smallest N must work, or the section has no figures for this system.
                Err(e) if n == ns[0] => {
                    return Err(e.context(format!("{} at N={n}", system.id())));
                }
                Err(e) => {
                    let why = format!("failed at N={n}: {e:#}");
                    eprintln!("cost: {} {why}", system.id());
                    outcomes.push(Outcome::NotRun(n, why.clone()));
                    stop = Some(format!("not run: {why}"));
                }
            }
        }
        results.push((system, outcomes));
    }

    let idle = idle_on_demand(ctx, &sim, plan.idle_k).await?;
    sim.stop().await;
    Ok(render(&plan, &sim_opts, &baseline, &results, &idle))
}

/// RSS/PSS of camgate with no camera, after it has settled.
async fn camgate_baseline(ctx: &Ctx) -> Result<Sample> {
    let gate = Camgate::start(ctx, CamgateOpts::default()).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let s = procstat::sample(&[gate.pid()]);
    gate.stop().await;
    Ok(s)
}

/// camgate with `n` always-on cameras: waits until they are live, warms up, then measures.
async fn measure_camgate(
    ctx: &Ctx,
    sim: &Sim,
    baseline: &Sample,
    n: usize,
    plan: &Plan,
) -> Result<Row> {
    let gate = Camgate::start(ctx, CamgateOpts::default()).await?;
    for i in 1..=n {
        gate.provision(&i.to_string(), &sim.url(i), false).await?;
    }
    // Bounded wait for every camera to be live (state gauge via /streams).
    let live_bound = Duration::from_secs(30 + n as u64 / 5);
    let deadline = Instant::now() + live_bound;
    let mut live = 0;
    while Instant::now() < deadline {
        live = count_live(&gate).await.unwrap_or(0);
        if live >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    if live == 0 {
        anyhow::bail!(
            "no camera went live within {live_bound:?}; see {}",
            gate.log.display()
        );
    }
    tokio::time::sleep(plan.warmup).await;
    // A window that misses real time is measured once more before calling it saturated: a
    // burst from another process on a shared machine should not end the escalation.
    let mut attempt = 0;
    let (before, after, sim_before, sim_after, frames, expected) = loop {
        attempt += 1;
        let frames_before =
            stats::metric_sum(&gate.metrics().await?, "camgate_camera_frames_total");
        // Frames are counted over their own interval (between the two scrapes).
        let frames_at = Instant::now();
        let (before, sim_before) = (
            procstat::sample(&[gate.pid()]),
            procstat::sample(&[sim.pid()]),
        );
        tokio::time::sleep(plan.window).await;
        let (after, sim_after) = (
            procstat::sample(&[gate.pid()]),
            procstat::sample(&[sim.pid()]),
        );
        let frames_after = stats::metric_sum(&gate.metrics().await?, "camgate_camera_frames_total");
        let secs = frames_at.elapsed().as_secs_f64();
        let expected = f64::from(sim.opts.fps) * n as f64 * secs;
        let frames = frames_after - frames_before;
        if frames >= 0.95 * expected || attempt == 2 {
            break (before, after, sim_before, sim_after, frames, expected);
        }
        eprintln!("cost: camgate N={n}: {frames:.0} of {expected:.0} frames; measuring again");
    };
    let realtime = frames / expected;
    gate.stop().await;
    let rss_extra = (after.rss_mib() - baseline.rss_mib()).max(0.0);
    let pss_extra = (after.pss_mib() - baseline.pss_mib()).max(0.0);
    Ok(Row {
        n,
        cpu: procstat::cpu_percent(&before, &after),
        rss_mib: after.rss_mib(),
        pss_mib: after.pss_mib(),
        rss_per_cam_mib: rss_extra / n as f64,
        pss_per_cam_mib: pss_extra / n as f64,
        sim_cpu: procstat::cpu_percent(&sim_before, &sim_after),
        realtime,
        progress: format!(
            "{frames:.0} of {expected:.0} frames ({:.0} %), {live}/{n} live{}",
            realtime * 100.0,
            if attempt > 1 { ", 2nd window" } else { "" }
        ),
        saturated: realtime < 0.95 || live < n,
        running: live,
    })
}

/// Cameras whose state is `live`, from `GET /streams`.
async fn count_live(gate: &Camgate) -> Result<usize> {
    let streams = gate.get_json("/streams").await?;
    Ok(streams
        .as_array()
        .map_or(0, |a| a.iter().filter(|s| s["state"] == "live").count()))
}

/// One ffmpeg HLS process per camera.
struct Ffmpeg {
    child: tokio::process::Child,
    dir: tempfile::TempDir,
}

impl Ffmpeg {
    fn playlist(&self) -> PathBuf {
        self.dir.path().join("index.m3u8")
    }
}

/// The baseline's command: RTSP over TCP in, HLS files out; stream copy, or with
/// `x264_gop_frames` libx264 ultrafast re-encoding with a keyframe every that many frames
/// (libx264's default of 250 frames would make every HLS segment 10 s long whatever
/// `-hls_time` says; the camera's own GOP keeps 2 s segments).
pub fn ffmpeg_hls_command(
    url: &str,
    out_dir: &std::path::Path,
    x264_gop_frames: Option<u32>,
) -> tokio::process::Command {
    let mut cmd = procs::command("ffmpeg");
    cmd.args(["-nostdin", "-loglevel", "error", "-nostats"])
        .args(["-rtsp_transport", "tcp", "-i", url]);
    if let Some(g) = x264_gop_frames {
        cmd.args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            &g.to_string(),
        ]);
    } else {
        cmd.args(["-c", "copy"]);
    }
    cmd.args(["-f", "hls", "-hls_time", "2", "-hls_list_size", "5"])
        .args(["-hls_flags", "delete_segments"])
        .arg(out_dir.join("index.m3u8"))
        .current_dir(out_dir);
    cmd
}

/// Segments written so far by one ffmpeg: the playlist's media sequence plus the segments
/// it lists (segments drop out of the window, the sequence number counts them).
fn segments_written(playlist: &std::path::Path) -> Option<u64> {
    let text = std::fs::read_to_string(playlist).ok()?;
    let seq: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let listed = text.lines().filter(|l| l.starts_with("#EXTINF")).count() as u64;
    Some(seq + listed)
}

async fn measure_ffmpeg(sim: &Sim, system: System, n: usize, plan: &Plan) -> Result<Row> {
    // The camera's GOP in frames, for the re-encoding baseline.
    let gop_frames = (sim.opts.gop.as_secs_f64() * f64::from(sim.opts.fps)).round() as u32;
    let x264 = (system == System::FfmpegX264).then_some(gop_frames.max(1));
    let mut procs = Vec::with_capacity(n);
    for i in 1..=n {
        let dir = procs::temp_dir("camgate-bench-ffmpeg-")?;
        let log = std::fs::File::create(dir.path().join("ffmpeg.log"))?;
        let mut cmd = ffmpeg_hls_command(&sim.url(i), dir.path(), x264);
        cmd.stderr(log);
        let child = cmd.spawn().context("cannot run ffmpeg")?;
        procs.push(Ffmpeg { child, dir });
    }
    let pids: Vec<u32> = procs.iter().filter_map(|p| p.child.id()).collect();
    // Warm-up starts once every process has written a first playlist (bounded).
    let first_bound = Duration::from_secs(30 + n as u64 / 5);
    let deadline = Instant::now() + first_bound;
    let mut started = 0;
    while Instant::now() < deadline {
        started = procs.iter().filter(|p| p.playlist().exists()).count();
        if started == n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    if started == 0 {
        let log = procs
            .first()
            .and_then(|p| std::fs::read_to_string(p.dir.path().join("ffmpeg.log")).ok())
            .unwrap_or_default();
        anyhow::bail!("no ffmpeg wrote a playlist within {first_bound:?}: {log}");
    }
    tokio::time::sleep(plan.warmup).await;
    // As for camgate: a window that misses real time is measured once more.
    let mut attempt = 0;
    let (before, after, sim_before, sim_after, written, expected) = loop {
        attempt += 1;
        let seg_before: u64 = procs
            .iter()
            .filter_map(|p| segments_written(&p.playlist()))
            .sum();
        // Segments are counted over their own interval: reading /proc for hundreds of
        // processes takes a noticeable part of a second.
        let seg_at = Instant::now();
        let (before, sim_before) = (procstat::sample(&pids), procstat::sample(&[sim.pid()]));
        tokio::time::sleep(plan.window).await;
        let (after, sim_after) = (procstat::sample(&pids), procstat::sample(&[sim.pid()]));
        let seg_after: u64 = procs
            .iter()
            .filter_map(|p| segments_written(&p.playlist()))
            .sum();
        let secs = seg_at.elapsed().as_secs_f64();
        let expected = n as f64 * secs / HLS_TIME_SECS;
        let written = seg_after.saturating_sub(seg_before) as f64;
        // A window counts whole 2 s segments: one segment less than 90 % is still rounding.
        if written + 1.0 >= 0.9 * expected || attempt == 2 {
            break (before, after, sim_before, sim_after, written, expected);
        }
        eprintln!(
            "cost: {} N={n}: {written:.0} of {expected:.1} segments; measuring again",
            system.id()
        );
    };
    let alive = procs
        .iter_mut()
        .map(|p| matches!(p.child.try_wait(), Ok(None)))
        .filter(|alive| *alive)
        .count();
    for p in &mut procs {
        procs::kill_and_wait(&mut p.child).await;
    }
    let realtime = written / expected;
    let saturated = written + 1.0 < 0.9 * expected || alive < n || started < n;
    Ok(Row {
        n,
        cpu: procstat::cpu_percent(&before, &after),
        rss_mib: after.rss_mib(),
        pss_mib: after.pss_mib(),
        rss_per_cam_mib: after.rss_mib() / n as f64,
        pss_per_cam_mib: after.pss_mib() / n as f64,
        sim_cpu: procstat::cpu_percent(&sim_before, &sim_after),
        realtime,
        progress: format!(
            "{written:.0} of {expected:.1} segments ({:.0} %), {alive}/{n} running{}",
            realtime * 100.0,
            if attempt > 1 { ", 2nd window" } else { "" }
        ),
        saturated,
        running: started,
    })
}

/// Memory of idle on-demand cameras: RSS with 10 + K cameras provisioned minus RSS with 10
/// (the first 10 warm up the HTTP and database paths), divided by K.
async fn idle_on_demand(ctx: &Ctx, sim: &Sim, k: usize) -> Result<Value> {
    let gate = Camgate::start(ctx, CamgateOpts::default()).await?;
    const WARM: usize = 10;
    for i in 1..=WARM {
        gate.provision(&format!("w{i}"), &sim.url(1), true).await?;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = procstat::sample(&[gate.pid()]);
    for i in 1..=k {
        gate.provision(&format!("idle{i}"), &sim.url(1 + i % 2), true)
            .await?;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = procstat::sample(&[gate.pid()]);
    let live = count_live(&gate).await?;
    gate.stop().await;
    anyhow::ensure!(
        live == 0,
        "{live} on-demand cameras went live with nobody watching"
    );
    let per_cam_kib = (after.rss_kib as f64 - before.rss_kib as f64) / k as f64;
    let per_cam_pss_kib = (after.pss_kib as f64 - before.pss_kib as f64) / k as f64;
    Ok(json!({
        "k": k, "rss_before_mib": before.rss_mib(), "rss_after_mib": after.rss_mib(),
        "pss_before_mib": before.pss_mib(), "pss_after_mib": after.pss_mib(),
        "rss_per_camera_kib": per_cam_kib, "pss_per_camera_kib": per_cam_pss_kib,
    }))
}

fn render(
    plan: &Plan,
    sim: &SimOpts,
    baseline: &Sample,
    results: &[(System, Vec<Outcome>)],
    idle: &Value,
) -> Section {
    let mut md = String::new();
    md.push_str(&format!(
        "`camgate sim`: {}, RTSP over TCP. \
         Warm-up {} s after every camera delivers, then a {} s window. CPU: 100 % = one core \
         (utime+stime from /proc); RSS and PSS summed over the system's processes; the \
         simulator's CPU is its own column. camgate's memory per camera is (RSS at N - RSS \
         with no camera, {:.1} MiB) / N; ffmpeg's is its RSS / N. Saturated: camgate received \
         fewer than 95 % of the frames the cameras sent, or ffmpeg wrote fewer than 90 % of \
         the expected {}-second segments.\n\n",
        sim.describe(),
        plan.warmup.as_secs(),
        plan.window.as_secs(),
        baseline.rss_mib(),
        HLS_TIME_SECS
    ));
    let mut json_systems = serde_json::Map::new();
    for (system, outcomes) in results {
        md.push_str(&format!("**{}**\n\n", system.title()));
        let mut t = Table::new(&[
            "N",
            "CPU %",
            "CPU % / camera",
            "RSS MiB",
            "PSS MiB",
            "RSS / camera MiB",
            "PSS / camera MiB",
            "sim CPU %",
            "real time",
            "saturated",
        ]);
        let mut rows_json = Vec::new();
        for o in outcomes {
            match o {
                Outcome::Measured(r) => {
                    t.row([
                        r.n.to_string(),
                        num(r.cpu, 1),
                        num(r.cpu / r.n as f64, 2),
                        num(r.rss_mib, 1),
                        num(r.pss_mib, 1),
                        num(r.rss_per_cam_mib, 2),
                        num(r.pss_per_cam_mib, 2),
                        num(r.sim_cpu, 1),
                        r.progress.clone(),
                        if r.saturated { "yes" } else { "no" }.to_string(),
                    ]);
                    rows_json.push(r.to_json());
                }
                Outcome::NotRun(n, why) => {
                    t.row([n.to_string(), why.clone()]);
                    rows_json.push(json!({"n": n, "not_run": why}));
                }
            }
        }
        md.push_str(&t.to_markdown());
        md.push('\n');
        json_systems.insert(system.id().to_string(), Value::Array(rows_json));
    }

    // Ratios at each N both measured.
    let find = |s: System, n: usize| -> Option<&Row> {
        results
            .iter()
            .find(|(sys, _)| *sys == s)
            .and_then(|(_, o)| {
                o.iter().find_map(|o| match o {
                    Outcome::Measured(r) if r.n == n => Some(r),
                    _ => None,
                })
            })
    };
    let mut ratios = Table::new(&[
        "N",
        "CPU/camera: ffmpeg copy ÷ camgate",
        "PSS/camera: ffmpeg copy ÷ camgate",
        "RSS/camera: ffmpeg copy ÷ camgate",
    ]);
    let mut ratios_json = Vec::new();
    for &n in &plan.ns {
        if let (Some(c), Some(f)) = (find(System::Camgate, n), find(System::FfmpegCopy, n)) {
            let cpu = f.cpu / c.cpu.max(1e-9);
            let pss = f.pss_per_cam_mib / c.pss_per_cam_mib.max(1e-9);
            let rss = f.rss_per_cam_mib / c.rss_per_cam_mib.max(1e-9);
            ratios.row([
                n.to_string(),
                format!("{}x", num(cpu, 1)),
                format!("{}x", num(pss, 1)),
                format!("{}x", num(rss, 1)),
            ]);
            ratios_json
                .push(json!({"n": n, "cpu": cpu, "pss_per_camera": pss, "rss_per_camera": rss}));
        }
    }
    if !ratios.is_empty() {
        md.push_str("**Ratios** (same run; above 1 means camgate is cheaper)\n\n");
        md.push_str(&ratios.to_markdown());
        md.push('\n');
    }
    md.push_str(&format!(
        "**Idle on-demand cameras:** {} provisioned and idle add {} KiB RSS per camera ({} KiB \
         PSS; RSS {:.1} -> {:.1} MiB, measured after 10 warm-up cameras).\n",
        idle["k"],
        num(idle["rss_per_camera_kib"].as_f64().unwrap_or(f64::NAN), 1),
        num(idle["pss_per_camera_kib"].as_f64().unwrap_or(f64::NAN), 1),
        idle["rss_before_mib"].as_f64().unwrap_or(f64::NAN),
        idle["rss_after_mib"].as_f64().unwrap_or(f64::NAN),
    ));
    Section {
        id: "cost".to_string(),
        title: "Cost per camera: camgate against ffmpeg per camera".to_string(),
        markdown: md,
        json: json!({
            "sim": {"width": sim.size.0, "height": sim.size.1, "fps": sim.fps, "bitrate": sim.bitrate,
                    "gop_ms": sim.gop.as_millis() as u64, "clip_ms": sim.clip.as_millis() as u64},
            "warmup_s": plan.warmup.as_secs(), "window_s": plan.window.as_secs(),
            "camgate_baseline": {"rss_mib": baseline.rss_mib(), "pss_mib": baseline.pss_mib()},
            "systems": json_systems,
            "ratios_ffmpeg_copy_over_camgate": ratios_json,
            "idle_on_demand": idle,
        }),
    }
}
