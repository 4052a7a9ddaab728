//! Section `startup`: time to first video. camgate cold (an idle on-demand camera) and warm
//! (a camera already live): request -> LL-HLS playlist answer with the first part, -> that
//! part's bytes, and -> first frame decoded by ffprobe from the plain playlist URL. Baseline:
//! `ffmpeg -c copy` HLS from its start to the first playlist listing a segment.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;

use crate::cost::ffmpeg_hls_command;
use crate::ctx::Ctx;
use crate::procs::{self, Camgate, CamgateOpts, Sim, SimOpts};
use crate::report::{Section, Table, num};
use crate::stats::Summary;

/// Bound on any one trial.
const TRIAL_BOUND: Duration = Duration::from_secs(30);

/// One LL-HLS start: playlist answered (its first part exists), then the first part fetched.
struct HlsStart {
    playlist: Duration,
    first_part: Duration,
}

pub async fn run(ctx: &Ctx) -> Result<Section> {
    let trials = ctx.pick(20, 2);
    let sim_opts = SimOpts {
        cameras: 2,
        ..SimOpts::default()
    };
    let sim = Sim::start(ctx, sim_opts.clone()).await?;
    let gate = Camgate::start(ctx, CamgateOpts::default()).await?;

    // Cold: a freshly provisioned on-demand camera is idle (not connected); each trial uses
    // a new one and deletes it afterwards, so every trial starts from idle.
    let mut cold = Vec::new();
    for t in 1..=trials {
        let id = format!("cold{t}");
        gate.provision(&id, &sim.url(1), true).await?;
        ensure_idle(&gate, &id).await?;
        cold.push(
            hls_start(ctx, &gate, &id)
                .await
                .context("cold LL-HLS start")?,
        );
        gate.delete(&id).await?;
    }
    let mut cold_probe = Vec::new();
    for t in 1..=trials {
        let id = format!("probe{t}");
        gate.provision(&id, &sim.url(1), true).await?;
        ensure_idle(&gate, &id).await?;
        cold_probe.push(
            ffprobe_first_frame(&format!("{}/hls/{id}/index.m3u8", gate.base()))
                .await
                .context("cold ffprobe start")?,
        );
        gate.delete(&id).await?;
    }
    eprintln!("startup: cold done");

    // Warm: an always-on camera, live and segmenting before the first request.
    gate.provision("warm", &sim.url(2), false).await?;
    // A plain request returns once the playlist holds its first segments.
    let url = format!("{}/hls/warm/index.m3u8", gate.base());
    let deadline = Instant::now() + TRIAL_BOUND;
    loop {
        match ctx.http.get(&url).send().await {
            Ok(r) if r.status().is_success() => break,
            _ if Instant::now() > deadline => bail!("camera warm did not start: {url}"),
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    let mut warm = Vec::new();
    let mut warm_probe = Vec::new();
    for _ in 0..trials {
        warm.push(
            hls_start(ctx, &gate, "warm")
                .await
                .context("warm LL-HLS start")?,
        );
        warm_probe.push(
            ffprobe_first_frame(&url)
                .await
                .context("warm ffprobe start")?,
        );
    }
    eprintln!("startup: warm done");
    gate.stop().await;

    let mut ffmpeg = Vec::new();
    for _ in 0..trials {
        ffmpeg.push(ffmpeg_first_playlist(&sim).await?);
    }
    eprintln!("startup: ffmpeg done");
    sim.stop().await;
    render(
        &sim_opts,
        trials,
        &cold,
        &cold_probe,
        &warm,
        &warm_probe,
        &ffmpeg,
    )
}

/// Checks that camera `id` is idle (nothing connected) before a cold trial.
async fn ensure_idle(gate: &Camgate, id: &str) -> Result<()> {
    let status = gate.get_json(&format!("/cameras/{id}/status")).await?;
    if status["state"] != "idle" {
        bail!(
            "camera {id} is {} before a cold start, not idle",
            status["state"]
        );
    }
    Ok(())
}

/// `GET /hls/{id}/index.m3u8?_HLS_msn=0&_HLS_part=0` (what an LL-HLS player asks first),
/// then the first part the playlist names.
async fn hls_start(ctx: &Ctx, gate: &Camgate, id: &str) -> Result<HlsStart> {
    let url = format!("{}/hls/{id}/index.m3u8?_HLS_msn=0&_HLS_part=0", gate.base());
    let t0 = Instant::now();
    let r = ctx
        .http
        .get(&url)
        .timeout(TRIAL_BOUND)
        .send()
        .await
        .with_context(|| format!("GET {url}"))?;
    let status = r.status();
    let text = r.text().await?;
    let playlist = t0.elapsed();
    if !status.is_success() {
        bail!("GET {url} answered {status}: {text}");
    }
    let part = text
        .lines()
        .filter_map(|l| l.strip_prefix("#EXT-X-PART:"))
        .find_map(|attrs| {
            let start = attrs.find("URI=\"")? + 5;
            let len = attrs[start..].find('"')?;
            Some(attrs[start..start + len].to_string())
        })
        .with_context(|| format!("the playlist lists no part:\n{text}"))?;
    let part_url = if part.starts_with("http") {
        part
    } else if let Some(abs) = part.strip_prefix('/') {
        format!("{}/{abs}", gate.base())
    } else {
        format!("{}/hls/{id}/{part}", gate.base())
    };
    let r = ctx
        .http
        .get(&part_url)
        .timeout(TRIAL_BOUND)
        .send()
        .await
        .with_context(|| format!("GET {part_url}"))?;
    let status = r.status();
    let body = r.bytes().await?;
    let first_part = t0.elapsed();
    if !status.is_success() || body.is_empty() {
        bail!("GET {part_url} answered {status} with {} bytes", body.len());
    }
    Ok(HlsStart {
        playlist,
        first_part,
    })
}

/// Time from starting `ffprobe` on `url` to it printing the first decoded video frame.
async fn ffprobe_first_frame(url: &str) -> Result<Duration> {
    let mut cmd = procs::command("ffprobe");
    cmd.args(["-v", "error", "-select_streams", "v:0", "-show_frames"])
        .args([
            "-read_intervals",
            "%+#1",
            "-show_entries",
            "frame=key_frame",
        ])
        .arg(url)
        .stdout(std::process::Stdio::piped());
    let t0 = Instant::now();
    let mut child = cmd.spawn().context("cannot run ffprobe")?;
    let mut stdout = child.stdout.take().context("ffprobe stdout")?;
    let found = tokio::time::timeout(TRIAL_BOUND, async {
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = stdout.read(&mut buf).await?;
            if n == 0 {
                return Ok::<bool, std::io::Error>(false);
            }
            seen.extend_from_slice(&buf[..n]);
            if seen.windows(8).any(|w| w == b"[/FRAME]") {
                return Ok(true);
            }
        }
    })
    .await;
    let elapsed = t0.elapsed();
    procs::kill_and_wait(&mut child).await;
    match found {
        Ok(Ok(true)) => Ok(elapsed),
        Ok(Ok(false)) => bail!("ffprobe decoded no frame from {url}"),
        Ok(Err(e)) => bail!("reading ffprobe: {e}"),
        Err(_) => bail!("ffprobe decoded no frame from {url} within {TRIAL_BOUND:?}"),
    }
}

/// Time from starting the baseline ffmpeg to its first playlist that lists a segment.
async fn ffmpeg_first_playlist(sim: &Sim) -> Result<Duration> {
    let dir = procs::temp_dir("camgate-bench-ffmpeg-")?;
    let playlist = dir.path().join("index.m3u8");
    let mut cmd = ffmpeg_hls_command(&sim.url(2), dir.path(), None);
    let t0 = Instant::now();
    let mut child = cmd.spawn().context("cannot run ffmpeg")?;
    let result = loop {
        if std::fs::read_to_string(&playlist).is_ok_and(|t| t.contains("#EXTINF")) {
            break Ok(t0.elapsed());
        }
        if t0.elapsed() > TRIAL_BOUND {
            break Err(anyhow::anyhow!(
                "ffmpeg wrote no playlist with a segment within {TRIAL_BOUND:?}"
            ));
        }
        if let Ok(Some(status)) = child.try_wait() {
            break Err(anyhow::anyhow!(
                "ffmpeg exited ({status}) before its first segment"
            ));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    procs::kill_and_wait(&mut child).await;
    result
}

fn summary_row(t: &mut Table, what: &str, values: &[Duration]) -> Value {
    match Summary::of_durations_ms(values) {
        Some(s) => {
            t.row([
                what.to_string(),
                s.n.to_string(),
                num(s.p50, 0),
                num(s.p95, 0),
                num(s.min, 0),
                num(s.max, 0),
            ]);
            s.to_json()
        }
        None => Value::Null,
    }
}

fn render(
    sim: &SimOpts,
    trials: usize,
    cold: &[HlsStart],
    cold_probe: &[Duration],
    warm: &[HlsStart],
    warm_probe: &[Duration],
    ffmpeg: &[Duration],
) -> Result<Section> {
    let pick = |v: &[HlsStart], f: fn(&HlsStart) -> Duration| v.iter().map(f).collect::<Vec<_>>();
    let mut t = Table::new(&["start", "trials", "p50 ms", "p95 ms", "min ms", "max ms"]);
    let j = json!({
        "trials": trials,
        "sim_gop_ms": sim.gop.as_millis() as u64,
        "cold_playlist_ms": summary_row(&mut t, "camgate cold: request -> LL-HLS playlist with first part", &pick(cold, |s| s.playlist)),
        "cold_first_part_ms": summary_row(&mut t, "camgate cold: request -> first part's bytes", &pick(cold, |s| s.first_part)),
        "cold_ffprobe_ms": summary_row(&mut t, "camgate cold: ffprobe start -> first frame decoded (plain playlist)", cold_probe),
        "warm_playlist_ms": summary_row(&mut t, "camgate warm: request -> LL-HLS playlist", &pick(warm, |s| s.playlist)),
        "warm_first_part_ms": summary_row(&mut t, "camgate warm: request -> first part's bytes", &pick(warm, |s| s.first_part)),
        "warm_ffprobe_ms": summary_row(&mut t, "camgate warm: ffprobe start -> first frame decoded (plain playlist)", warm_probe),
        "ffmpeg_first_playlist_ms": summary_row(&mut t, "ffmpeg -c copy: start -> first playlist listing a segment", ffmpeg),
    });
    let md = format!(
        "`camgate sim` camera: {}. The simulator \
         starts every RTSP session with an IDR frame, so these figures contain no wait for the \
         camera's next keyframe; a real camera adds up to one GOP ({} ms here) to a cold \
         start. Cold: a newly provisioned on-demand camera (idle, not connected); the LL-HLS \
         request is `GET /hls/{{id}}/index.m3u8?_HLS_msn=0&_HLS_part=0`, answered once the \
         first part exists. ffprobe reads the plain playlist URL, which camgate answers on a \
         cold start only once the playlist holds three segments (for players without \
         LL-HLS; see docs/live.md). Warm: an always-on camera already live. Baseline: the \
         cost section's `ffmpeg -c copy` HLS command, timed from process start until its \
         index.m3u8 lists a segment (polled every 10 ms). {} trials each.\n\n{}",
        sim.describe(),
        sim.gop.as_millis(),
        trials,
        t.to_markdown()
    );
    Ok(Section {
        id: "startup".to_string(),
        title: "Time to first frame".to_string(),
        markdown: md,
        json: j,
    })
}
