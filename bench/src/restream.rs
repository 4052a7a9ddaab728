//! Section `restream`: what each RTSP client of one camera costs camgate. One simulated camera
//! (720p, 25 fps, 2 Mbit/s, 1 s GOP, a looped clip) always on, then steps of M RTSP clients
//! reading `rtsp://.../{path}` over TCP (interleaved), as analytics containers and NVRs do.
//! The clients are a minimal RTSP client in this process (DESCRIBE, SETUP of the video track,
//! PLAY, then reading `$`-framed RTP), so a hundred of them cost the load generator little
//! and camgate's figure is its own. Per step, over the window: camgate's CPU and RSS, the CPU
//! per client, frames per client against the camera's rate (a frame = an RTP packet with the
//! marker bit), bytes per client, and the load generator's own CPU.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::ctx::Ctx;
use crate::procs::{Camgate, CamgateOpts, Sim, SimOpts, free_port};
use crate::procstat;
use crate::report::{Section, Table, num};

const CAMERA: &str = "rs";
const FPS: u32 = 25;

/// What one client read inside the window.
#[derive(Default)]
struct Client {
    frames: u64,
    bytes: u64,
    error: Option<String>,
}

struct Step {
    m: usize,
    connected: usize,
    first_error: Option<String>,
    errors: usize,
    fps_per_client: f64,
    kbit_per_client: f64,
    camgate_cpu: f64,
    camgate_rss_mib: f64,
    loadgen_cpu: f64,
}

impl Step {
    fn to_json(&self) -> Value {
        json!({
            "m": self.m, "connected": self.connected, "errors": self.errors,
            "first_error": self.first_error, "fps_per_client": self.fps_per_client,
            "kbit_per_client": self.kbit_per_client,
            "camgate_cpu_percent": self.camgate_cpu,
            "camgate_cpu_percent_per_client": self.camgate_cpu / self.m as f64,
            "camgate_rss_mib": self.camgate_rss_mib, "loadgen_cpu_percent": self.loadgen_cpu,
        })
    }
}

pub async fn run(ctx: &Ctx) -> Result<Section> {
    let steps: Vec<usize> = ctx.pick(vec![1, 10, 100], vec![1, 10]);
    let window = ctx.pick(Duration::from_secs(10), Duration::from_secs(3));
    let sim = Sim::start(
        ctx,
        SimOpts {
            size: (1280, 720),
            fps: FPS,
            ..SimOpts::default()
        },
    )
    .await?;
    let rtsp = format!("127.0.0.1:{}", free_port()?);
    let gate = Camgate::start(
        ctx,
        CamgateOpts {
            env: vec![
                ("CAMGATE_RTSP_LISTEN".into(), rtsp.clone()),
                (
                    "CAMGATE_STREAMS_MAX_VIEWERS_PER_STREAM".into(),
                    "1000000".into(),
                ),
            ],
            ..CamgateOpts::default()
        },
    )
    .await?;
    gate.provision(CAMERA, &sim.url(1), false).await?;
    gate.wait_live(CAMERA, Duration::from_secs(30)).await?;
    let url = format!("rtsp://{rtsp}/cam_{CAMERA}");
    // The camera alone, no client: the baseline each step's CPU is compared with.
    let idle = cpu_over(&gate, window).await;
    let mut done = Vec::new();
    for &m in &steps {
        let step = run_step(&gate, &url, m, window).await?;
        eprintln!(
            "restream: M={m} connected {}, {} fps/client, camgate {} % CPU, load generator {} % CPU",
            step.connected,
            num(step.fps_per_client, 1),
            num(step.camgate_cpu, 1),
            num(step.loadgen_cpu, 1)
        );
        done.push(step);
    }
    drop(gate);
    drop(sim);
    if done.iter().all(|s| s.connected == 0) {
        bail!(
            "no RTSP client read the restream at any M ({})",
            done.iter()
                .find_map(|s| s.first_error.clone())
                .unwrap_or_default()
        );
    }
    Ok(section(&done, window, idle))
}

/// camgate's CPU % over `window`, nothing else changing.
async fn cpu_over(gate: &Camgate, window: Duration) -> f64 {
    let a = procstat::sample(&[gate.pid()]);
    tokio::time::sleep(window).await;
    let b = procstat::sample(&[gate.pid()]);
    procstat::cpu_percent(&a, &b)
}

fn section(done: &[Step], window: Duration, idle: f64) -> Section {
    let mut t = Table::new(&[
        "RTSP clients (M)",
        "connected",
        "frames/s per client",
        "kbit/s per client",
        "camgate CPU %",
        "camgate CPU % added per client",
        "camgate RSS MiB",
        "load generator CPU %",
        "errors",
    ]);
    for s in done {
        let errors = match &s.first_error {
            Some(e) => format!("{} ({})", s.errors, e.chars().take(80).collect::<String>()),
            None => s.errors.to_string(),
        };
        t.row([
            s.m.to_string(),
            s.connected.to_string(),
            num(s.fps_per_client, 1),
            num(s.kbit_per_client, 0),
            num(s.camgate_cpu, 1),
            num(((s.camgate_cpu - idle) / s.m as f64).max(0.0), 3),
            num(s.camgate_rss_mib, 0),
            num(s.loadgen_cpu, 1),
            errors,
        ]);
    }
    let mut md = format!(
        "One camera (`camgate sim`, 1280x720, {FPS} fps, 2 Mbit/s, 1 s GOP, looped clip) always \
         on; M RTSP clients of `rtsp://.../cam_{CAMERA}` over TCP (interleaved), each its own \
         connection, all in the bench process (a minimal client: DESCRIBE, SETUP of the video, \
         PLAY, then reading RTP). Window {} s after all connected. camgate with the camera and \
         no client: {} % CPU; the added CPU per client is (step - that) / M. 100 % = one core. \
         The LL-HLS players' cost per player is in the `fanout` section of the same run \
         (MediaMTX publishes no per-client RTSP figure we could find).\n\n",
        window.as_secs(),
        num(idle, 1)
    );
    md.push_str(&t.to_markdown());
    Section {
        id: "restream".into(),
        title: "RTSP restream clients of one camera".into(),
        markdown: md,
        json: json!({
            "window_s": window.as_secs(),
            "camgate_cpu_percent_camera_only": idle,
            "steps": done.iter().map(Step::to_json).collect::<Vec<_>>(),
        }),
    }
}

async fn run_step(gate: &Camgate, url: &str, m: usize, window: Duration) -> Result<Step> {
    let ramp = Duration::from_millis(10 * m as u64).max(Duration::from_millis(500));
    let settle = Duration::from_secs(2);
    let begin = Instant::now();
    let win_start = begin + ramp + settle;
    let win_end = win_start + window;
    let mut clients = tokio::task::JoinSet::new();
    for i in 0..m {
        let at = begin + ramp.mul_f64(i as f64 / m as f64);
        let url = url.to_owned();
        clients.spawn(async move {
            tokio::time::sleep_until(at.into()).await;
            let bound = win_end - Instant::now() + Duration::from_secs(5);
            match tokio::time::timeout(bound, client(&url, win_start, win_end)).await {
                Ok(Ok(c)) => c,
                Ok(Err(e)) => Client {
                    error: Some(format!("{e:#}")),
                    ..Client::default()
                },
                Err(_) => Client {
                    error: Some("timed out".into()),
                    ..Client::default()
                },
            }
        });
    }
    tokio::time::sleep_until(win_start.into()).await;
    let cpu0 = procstat::sample(&[gate.pid()]);
    let own0 = (Instant::now(), procstat::own_cpu_seconds());
    tokio::time::sleep_until(win_end.into()).await;
    let cpu1 = procstat::sample(&[gate.pid()]);
    let own1 = (Instant::now(), procstat::own_cpu_seconds());
    let mut results = Vec::new();
    while let Some(r) = clients.join_next().await {
        results.push(r.unwrap_or_else(|e| Client {
            error: Some(e.to_string()),
            ..Client::default()
        }));
    }
    let secs = window.as_secs_f64();
    let connected: Vec<&Client> = results.iter().filter(|c| c.frames > 0).collect();
    let n = connected.len().max(1) as f64;
    let errors: Vec<&String> = results.iter().filter_map(|c| c.error.as_ref()).collect();
    Ok(Step {
        m,
        connected: connected.len(),
        errors: errors.len(),
        first_error: errors.first().map(|e| e.to_string()),
        fps_per_client: connected.iter().map(|c| c.frames as f64).sum::<f64>() / n / secs,
        kbit_per_client: connected.iter().map(|c| c.bytes as f64).sum::<f64>() * 8.0
            / 1000.0
            / n
            / secs,
        camgate_cpu: procstat::cpu_percent(&cpu0, &cpu1),
        camgate_rss_mib: cpu1.rss_mib(),
        loadgen_cpu: (own1.1 - own0.1) / own1.0.duration_since(own0.0).as_secs_f64() * 100.0,
    })
}

/// One RTSP client: DESCRIBE, SETUP (video, TCP interleaved), PLAY, then counts the video's
/// frames and bytes that arrive between `from` and `to`.
async fn client(url: &str, from: Instant, to: Instant) -> Result<Client> {
    let addr = url
        .strip_prefix("rtsp://")
        .and_then(|r| r.split('/').next())
        .context("an rtsp:// URL")?;
    let tcp = TcpStream::connect(addr).await.context("connect")?;
    tcp.set_nodelay(true)?;
    let (rd, mut wr) = tcp.into_split();
    let mut rd = BufReader::with_capacity(64 * 1024, rd);
    wr.write_all(
        format!("DESCRIBE {url} RTSP/1.0\r\nCSeq: 1\r\nAccept: application/sdp\r\n\r\n").as_bytes(),
    )
    .await?;
    let (status, headers, sdp) = response(&mut rd).await?;
    ensure!(status == 200, "DESCRIBE answered {status}");
    let base = header(&headers, "content-base").unwrap_or(url).to_owned();
    let control = video_control(&String::from_utf8_lossy(&sdp)).context("no video track")?;
    let track = if control.starts_with("rtsp://") {
        control
    } else {
        format!("{}/{control}", base.trim_end_matches('/'))
    };
    wr.write_all(
        format!(
            "SETUP {track} RTSP/1.0\r\nCSeq: 2\r\n\
             Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n"
        )
        .as_bytes(),
    )
    .await?;
    let (status, headers, _) = response(&mut rd).await?;
    ensure!(status == 200, "SETUP answered {status}");
    let session = header(&headers, "session")
        .context("SETUP without Session")?
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_owned();
    wr.write_all(
        format!("PLAY {base} RTSP/1.0\r\nCSeq: 3\r\nSession: {session}\r\nRange: npt=0-\r\n\r\n")
            .as_bytes(),
    )
    .await?;
    let (status, _, _) = response(&mut rd).await?;
    ensure!(status == 200, "PLAY answered {status}");
    let mut c = Client::default();
    let mut buf = vec![0u8; 65536];
    while Instant::now() < to {
        let magic = rd.read_u8().await.context("the restream ended")?;
        ensure!(
            magic == b'$',
            "expected interleaved data, got byte {magic:#x}"
        );
        let channel = rd.read_u8().await?;
        let len = rd.read_u16().await? as usize;
        rd.read_exact(&mut buf[..len]).await?;
        let now = Instant::now();
        if channel != 0 || now < from || now >= to {
            continue;
        }
        c.bytes += len as u64 + 4;
        // The marker bit ends a video frame's access unit (RFC 6184).
        if len >= 12 && buf[1] & 0x80 != 0 {
            c.frames += 1;
        }
    }
    Ok(c)
}

/// Reads one RTSP response: status, headers (lowercase names), body.
async fn response<R: tokio::io::AsyncBufRead + Unpin>(
    rd: &mut R,
) -> Result<(u16, Vec<(String, String)>, Vec<u8>)> {
    use tokio::io::AsyncBufReadExt;
    let mut line = String::new();
    rd.read_line(&mut line).await?;
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("not an RTSP response: {line:?}"))?;
    let mut headers = Vec::new();
    loop {
        line.clear();
        ensure!(rd.read_line(&mut line).await? > 0, "connection closed");
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
    }
    let len: usize = header(&headers, "content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    rd.read_exact(&mut body).await?;
    Ok((status, headers, body))
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The `a=control:` of the SDP's first video media section.
fn video_control(sdp: &str) -> Option<String> {
    let mut in_video = false;
    for line in sdp.lines() {
        if let Some(m) = line.strip_prefix("m=") {
            in_video = m.starts_with("video");
        } else if in_video && let Some(c) = line.strip_prefix("a=control:") {
            return Some(c.trim().to_owned());
        }
    }
    None
}
