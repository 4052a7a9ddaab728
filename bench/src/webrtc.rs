//! Section `webrtc`: how many concurrent WebRTC (WHEP) viewers one camera carries. One
//! simulated camera (720p, 25 fps, 2 Mbit/s, 1 s GOP) always on in camgate, then steps of M
//! receivers built on str0m (the library camgate itself uses; a full ICE agent, DTLS, SRTP,
//! RTCP receiver reports and NACKs, as a browser does), each with its own UDP socket on
//! 127.0.0.1, started over a ramp. Per step, over the window: frames per viewer against the
//! camera's rate, frames **late** (a viewer received a frame more than 100 ms after the first
//! viewer did: the fan-out, not the camera, made it wait) and **missing** (a frame some viewer
//! got and this one never did), camgate's CPU and RSS, and the load generator's own CPU (it
//! decrypts every packet camgate encrypts, on the same two cores: where it saturates first,
//! the report says so). Steps stop at the first M with more than 1 % late or missing frames.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use str0m::change::SdpAnswer;
use str0m::media::{Direction, MediaKind};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};
use tokio::net::UdpSocket;

use crate::ctx::Ctx;
use crate::procs::{Camgate, CamgateOpts, Sim, SimOpts};
use crate::procstat;
use crate::report::{Section, Table, num};

const CAMERA: &str = "rtc";
/// An on-demand copy of the camera, for the cold session setup.
const COLD: &str = "rtc_cold";
const FPS: u32 = 25;
/// A frame reaching a viewer this much later than the first viewer is late.
const LATE_MS: f64 = 100.0;
/// The target: under this fraction of frames late or missing.
const TARGET_BAD: f64 = 0.01;

/// Per frame, when the first viewer had it; shared by all viewers of a step. Frames are
/// named by their content (`frame_key`): each session has its own RTP timeline.
#[derive(Default)]
struct Shared {
    first: Mutex<HashMap<u64, Instant>>,
}

/// What one viewer saw around the window: each frame's key and arrival.
struct Viewer {
    frames: Vec<(u64, Instant)>,
    error: Option<String>,
}

/// Viewers record this long before and after the window, so a frame the first viewer got
/// just inside it is not counted missing for one that got it a moment later.
const MARGIN: Duration = Duration::from_millis(500);

/// A frame's identity: a hash of all its bytes. The camera is live-encoded (a burned-in
/// clock), so no two frames are alike; a looped clip would repeat frames and make a
/// repeat look like a late copy of the first.
fn frame_key(data: &[u8]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    data.hash(&mut h);
    h.finish()
}

struct Step {
    m: usize,
    connected: usize,
    errors: usize,
    first_error: Option<String>,
    fps_per_viewer: f64,
    late: f64,
    missing: f64,
    camgate_cpu: f64,
    camgate_rss_mib: f64,
    loadgen_cpu: f64,
}

impl Step {
    fn ok(&self) -> bool {
        self.errors == 0 && self.late + self.missing < TARGET_BAD && self.connected == self.m
    }

    fn to_json(&self) -> Value {
        json!({
            "m": self.m, "connected": self.connected, "errors": self.errors,
            "first_error": self.first_error, "fps_per_viewer": self.fps_per_viewer,
            "late_fraction": self.late, "missing_fraction": self.missing,
            "camgate_cpu_percent": self.camgate_cpu,
            "camgate_cpu_percent_per_viewer": self.camgate_cpu / self.m as f64,
            "camgate_rss_mib": self.camgate_rss_mib, "loadgen_cpu_percent": self.loadgen_cpu,
            "ok": self.ok(),
        })
    }
}

pub async fn run(ctx: &Ctx) -> Result<Section> {
    let steps: Vec<usize> = ctx.pick(vec![10, 50, 100, 200, 400, 600], vec![2, 8]);
    let window = ctx.pick(Duration::from_secs(10), Duration::from_secs(3));
    let sim = Sim::start(
        ctx,
        SimOpts {
            size: (1280, 720),
            fps: FPS,
            bitrate: "2M".into(),
            gop: Duration::from_secs(1),
            live: true,
            ..SimOpts::default()
        },
    )
    .await?;
    let gate = Camgate::start(
        ctx,
        CamgateOpts {
            env: vec![(
                "CAMGATE_STREAMS_MAX_VIEWERS_PER_STREAM".into(),
                "1000000".into(),
            )],
            ..CamgateOpts::default()
        },
    )
    .await?;
    gate.provision(CAMERA, &sim.url(1), false).await?;
    // The same camera once more, on demand: nothing is connected until a WHEP POST asks.
    gate.provision(COLD, &sim.url(1), true).await?;
    gate.wait_live(CAMERA, Duration::from_secs(30)).await?;
    // Session setup: cold (the POST starts the camera and waits for its first keyframe) and
    // warm (the camera is live; the session starts from the hub's cached keyframe).
    let cold = setup(ctx, &gate, &format!("cam_{COLD}")).await?;
    let mut warm = Vec::new();
    for _ in 0..3 {
        warm.push(setup(ctx, &gate, &format!("cam_{CAMERA}")).await?);
    }
    eprintln!("webrtc: setup cold {cold:?} ms, warm {warm:?} ms (answer, first frame)");
    gate.delete(COLD).await?;

    let mut done = Vec::new();
    for &m in &steps {
        eprintln!("webrtc: {m} viewers");
        let step = run_step(ctx, &gate, m, window).await?;
        eprintln!(
            "webrtc: M={m} connected {}, late {} %, missing {} %, camgate {} % CPU, load generator {} % CPU",
            step.connected,
            num(step.late * 100.0, 2),
            num(step.missing * 100.0, 2),
            num(step.camgate_cpu, 0),
            num(step.loadgen_cpu, 0)
        );
        let stop = !step.ok();
        done.push(step);
        if stop {
            break;
        }
    }
    drop(gate);
    drop(sim);
    if done.iter().all(|s| s.connected == 0) {
        bail!(
            "no WebRTC viewer connected at any M ({})",
            done.first()
                .and_then(|s| s.first_error.clone())
                .unwrap_or_default()
        );
    }
    Ok(section(&done, window, cold, &warm))
}

fn section(done: &[Step], window: Duration, cold: (f64, f64), warm: &[(f64, f64)]) -> Section {
    let largest = done.iter().filter(|s| s.ok()).map(|s| s.m).max();
    let mut t = Table::new(&[
        "viewers (M)",
        "connected",
        "frames/s per viewer",
        "late %",
        "missing %",
        "camgate CPU %",
        "camgate CPU % per viewer",
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
            num(s.fps_per_viewer, 1),
            num(s.late * 100.0, 2),
            num(s.missing * 100.0, 2),
            num(s.camgate_cpu, 0),
            num(s.camgate_cpu / s.m as f64, 2),
            num(s.camgate_rss_mib, 0),
            num(s.loadgen_cpu, 0),
            errors,
        ]);
    }
    let mut md = format!(
        "One camera (`camgate sim --live`, 1280x720, {FPS} fps, 2 Mbit/s, 1 s GOP) always on; M WHEP \
         viewers built on str0m (full ICE agent, DTLS, SRTP, receiver reports and NACKs), each \
         on its own 127.0.0.1 UDP socket, all in the bench process. Window {} s after all \
         connected. **Late**: a frame reached a viewer more than {LATE_MS} ms after the first \
         viewer had it; **missing**: a frame some viewer received and this one did not (both \
         as a fraction of frames x viewers). CPU: 100 % = one core, camgate and the load \
         generator measured separately; the generator decrypts what camgate encrypts on the \
         same two cores, so at large M it is often the limit, not camgate.\n\n",
        window.as_secs()
    );
    md.push_str(&t.to_markdown());
    md.push_str(&format!(
        "\nLargest M with under {} % of frames late or missing and every viewer connected: \
         **{}**.\n",
        TARGET_BAD * 100.0,
        largest.map_or("none".into(), |m| m.to_string())
    ));
    let mut setup = Table::new(&[
        "session setup",
        "POST -> answer ms",
        "POST -> first frame ms",
    ]);
    setup.row([
        "cold (on-demand camera started by the POST)".to_owned(),
        num(cold.0, 0),
        num(cold.1, 0),
    ]);
    for (i, w) in warm.iter().enumerate() {
        setup.row([
            format!("warm #{} (camera live)", i + 1),
            num(w.0, 0),
            num(w.1, 0),
        ]);
    }
    md.push_str(
        "\nSession setup of one str0m viewer (no other viewers); a browser adds its own \
         decode and display, see the `glass` section:\n\n",
    );
    md.push_str(&setup.to_markdown());
    Section {
        id: "webrtc".into(),
        title: "WebRTC viewers of one camera (WHEP, str0m receivers)".into(),
        markdown: md,
        json: json!({
            "window_s": window.as_secs(),
            "steps": done.iter().map(Step::to_json).collect::<Vec<_>>(),
            "largest_m_under_1_percent": largest,
            "setup_ms": {
                "cold": { "answer": cold.0, "first_frame": cold.1 },
                "warm": warm.iter().map(|w| json!({ "answer": w.0, "first_frame": w.1 })).collect::<Vec<_>>(),
            },
        }),
    }
}

async fn run_step(ctx: &Ctx, gate: &Camgate, m: usize, window: Duration) -> Result<Step> {
    let shared = Arc::new(Shared::default());
    // Sessions are set up over a ramp (DTLS handshakes are the costly part), then all run
    // until the window ends.
    let ramp = Duration::from_millis(20 * m as u64).max(Duration::from_secs(1));
    let settle = Duration::from_secs(2);
    let begin = Instant::now();
    let win_start = begin + ramp + settle;
    let win_end = win_start + window;
    let mut viewers = tokio::task::JoinSet::new();
    for i in 0..m {
        let at = begin + ramp.mul_f64(i as f64 / m as f64);
        let url = format!("{}/webrtc/{CAMERA}/whep", gate.base());
        let http = ctx.http.clone();
        let shared = shared.clone();
        viewers.spawn(async move {
            tokio::time::sleep_until(at.into()).await;
            match viewer(&http, &url, &shared, win_start - MARGIN, win_end + MARGIN).await {
                Ok(frames) => Viewer {
                    frames,
                    error: None,
                },
                Err(e) => Viewer {
                    frames: Vec::new(),
                    error: Some(format!("{e:#}")),
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
    let bound = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(r) = viewers.join_next().await {
            results.push(r.unwrap_or_else(|e| Viewer {
                frames: Vec::new(),
                error: Some(e.to_string()),
            }));
        }
    });
    if bound.await.is_err() {
        viewers.abort_all();
    }

    // The frames of the window: those the first viewer had inside it.
    let first: HashMap<u64, Instant> = shared
        .first
        .lock()
        .expect("not poisoned")
        .iter()
        .filter(|(_, at)| **at >= win_start && **at < win_end)
        .map(|(k, at)| (*k, *at))
        .collect();
    let in_window = first.len().max(1);
    let (mut late, mut got) = (0usize, 0usize);
    let mut connected = 0;
    for v in &results {
        if !v.frames.is_empty() {
            connected += 1;
        }
        for (key, at) in &v.frames {
            let Some(f) = first.get(key) else { continue };
            got += 1;
            if at.duration_since(*f).as_secs_f64() * 1000.0 > LATE_MS {
                late += 1;
            }
        }
    }
    let expected = in_window * m;
    let errors: Vec<&String> = results.iter().filter_map(|v| v.error.as_ref()).collect();
    Ok(Step {
        m,
        connected,
        errors: errors.len() + (m - results.len()),
        first_error: errors.first().map(|e| e.to_string()),
        fps_per_viewer: got as f64 / m as f64 / window.as_secs_f64(),
        late: late as f64 / expected as f64,
        missing: expected.saturating_sub(got) as f64 / expected as f64,
        camgate_cpu: procstat::cpu_percent(&cpu0, &cpu1),
        camgate_rss_mib: cpu1.rss_mib(),
        loadgen_cpu: (own1.1 - own0.1) / (own1.0 - own0.0).as_secs_f64() * 100.0,
    })
}

/// One WHEP viewer: offer, answer, then receive until `end`, recording the frames that
/// arrive inside `[from, end)`. Ends its session with DELETE.
async fn viewer(
    http: &reqwest::Client,
    url: &str,
    shared: &Shared,
    from: Instant,
    end: Instant,
) -> Result<Vec<(u64, Instant)>> {
    viewer_run(http, url, shared, from, end)
        .await
        .map(|run| run.frames)
}

/// What one viewer's run gave: frames (key, arrival) inside the recording span, and its
/// setup times.
struct Run {
    frames: Vec<(u64, Instant)>,
    posted: Instant,
    answered: Instant,
    first_frame: Option<Instant>,
}

async fn viewer_run(
    http: &reqwest::Client,
    url: &str,
    shared: &Shared,
    from: Instant,
    end: Instant,
) -> Result<Run> {
    let mut rtc = Rtc::builder()
        .clear_codecs()
        .enable_h264(true)
        .build(Instant::now());
    let socket = UdpSocket::bind("127.0.0.1:0").await?;
    let local: SocketAddr = socket.local_addr()?;
    rtc.add_local_candidate(Candidate::host(local, "udp")?);
    let mut api = rtc.sdp_api();
    api.add_media(MediaKind::Video, Direction::RecvOnly, None, None, None);
    let (offer, pending) = api.apply().context("making the offer")?;
    let posted = Instant::now();
    let r = http
        .post(url)
        .header("content-type", "application/sdp")
        .body(offer.to_sdp_string())
        .send()
        .await?;
    let status = r.status();
    let location = r
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .map(str::to_owned);
    let body = r.text().await?;
    if status.as_u16() != 201 {
        bail!(
            "WHEP POST answered {status}: {}",
            body.chars().take(120).collect::<String>()
        );
    }
    let answer = SdpAnswer::from_sdp_string(&body).context("camgate's answer")?;
    rtc.sdp_api().accept_answer(pending, answer)?;
    let answered = Instant::now();
    let mut first_frame = None;

    let mut frames = Vec::new();
    let mut buf = vec![0u8; 2048];
    let result = loop {
        let timeout = loop {
            match rtc.poll_output() {
                Ok(Output::Timeout(t)) => break Ok(t),
                Ok(Output::Transmit(t)) => {
                    let _ = socket.send_to(&t.contents, t.destination).await;
                }
                Ok(Output::Event(Event::MediaData(d))) => {
                    let now = Instant::now();
                    first_frame.get_or_insert(now);
                    if now >= from && now < end {
                        let key = frame_key(&d.data);
                        shared
                            .first
                            .lock()
                            .expect("not poisoned")
                            .entry(key)
                            .or_insert(now);
                        frames.push((key, now));
                    }
                }
                Ok(Output::Event(_)) => {}
                Err(e) => break Err(anyhow::anyhow!("str0m: {e}")),
            }
        };
        let timeout = match timeout {
            Ok(t) => t,
            Err(e) => break Err(e),
        };
        let now = Instant::now();
        if now >= end {
            break Ok(());
        }
        if !rtc.is_alive() {
            break Err(anyhow::anyhow!("the session ended early"));
        }
        let wait = timeout.min(end).saturating_duration_since(now);
        let input = tokio::select! {
            r = socket.recv_from(&mut buf) => match r {
                Ok((n, source)) => match buf[..n].try_into() {
                    Ok(contents) => Input::Receive(
                        Instant::now(),
                        Receive { proto: Protocol::Udp, source, destination: local, contents },
                    ),
                    Err(_) => continue,
                },
                Err(e) => break Err(e.into()),
            },
            _ = tokio::time::sleep(wait) => Input::Timeout(Instant::now()),
        };
        if let Err(e) = rtc.handle_input(input) {
            break Err(anyhow::anyhow!("str0m: {e}"));
        }
    };
    if let Some(loc) = location {
        let base = url.split("/webrtc/").next().unwrap_or_default();
        let _ = http.delete(format!("{base}{loc}")).send().await;
    }
    result.map(|()| Run {
        frames,
        posted,
        answered,
        first_frame,
    })
}

/// Session setup of one viewer on `path`: ms from the WHEP POST to its answer and to the
/// first frame received (the run lasts 3 s, or less once a frame is in).
async fn setup(ctx: &Ctx, gate: &Camgate, path: &str) -> Result<(f64, f64)> {
    let url = format!("{}/webrtc/{path}/whep", gate.base());
    let now = Instant::now();
    let run = viewer_run(
        &ctx.http,
        &url,
        &Shared::default(),
        now,
        now + Duration::from_secs(3),
    )
    .await?;
    let ms = |t: Instant| t.duration_since(run.posted).as_secs_f64() * 1000.0;
    let first = run
        .first_frame
        .with_context(|| format!("no frame within 3 s of the WHEP POST to {path}"))?;
    Ok((ms(run.answered), ms(first)))
}
