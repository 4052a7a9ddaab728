//! Section `fanout`: how many concurrent LL-HLS players one camera carries. One simulated
//! camera (1080p, 25 fps, 2 Mbit/s, 1 s GOP), camgate with LL-HLS always on, then steps of M
//! players (each its own HTTP/1.1 connection, following blocking reloads and fetching every
//! part, see client.rs), ramped up over a few seconds. Per step: the part wait (for each part,
//! from the first player's reload listing it to each player having its bytes; p50/p95/p99
//! over all players and parts), errors, camgate's CPU, the load generator's own CPU, and
//! camgate's server-side part delay (`camgate_hls_part_delay_seconds`). Steps stop at the
//! first M with errors, and after the first M with p99 >= 100 ms once M = 1000 (whose CPU the
//! report gives) has been measured.

mod client;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::ctx::Ctx;
use crate::procs::{Camgate, CamgateOpts, Sim, SimOpts};
use crate::procstat;
use crate::report::{Section, Table, num};
use crate::stats::{self, Summary};

use client::{PlayerOut, Shared};

const CAMERA: &str = "fan";
/// The target: p99 part wait under this.
const TARGET_P99_MS: f64 = 100.0;
const DELAY_METRIC: &str = "camgate_hls_part_delay_seconds";

/// Timings of one step.
struct Plan {
    ramp: Duration,
    warmup: Duration,
    window: Duration,
    /// After the window, for parts first seen late in it to reach every player.
    grace: Duration,
}

/// One step's figures.
struct Step {
    m: usize,
    started: usize,
    errors: usize,
    first_error: Option<String>,
    wait: Option<Summary>,
    /// (part, player) pairs never completed by the end of the step (counted in `wait` at
    /// their lower bound).
    missing: u64,
    requests_per_s: f64,
    camgate_cpu: f64,
    camgate_rss_mib: f64,
    loadgen_cpu: f64,
    server_delay_p50_ms: Option<f64>,
    server_delay_p99_ms: Option<f64>,
}

impl Step {
    fn ok(&self) -> bool {
        self.errors == 0 && self.wait.is_some_and(|w| w.p99 < TARGET_P99_MS)
    }

    fn to_json(&self) -> Value {
        json!({
            "m": self.m, "started": self.started, "errors": self.errors,
            "first_error": self.first_error, "part_wait_ms": self.wait.map(Summary::to_json),
            "missing": self.missing, "requests_per_s": self.requests_per_s,
            "camgate_cpu_percent": self.camgate_cpu, "camgate_rss_mib": self.camgate_rss_mib,
            "loadgen_cpu_percent": self.loadgen_cpu,
            "server_part_delay_p50_ms": self.server_delay_p50_ms,
            "server_part_delay_p99_ms": self.server_delay_p99_ms,
            "ok": self.ok(),
        })
    }
}

pub async fn run(ctx: &Ctx) -> Result<Section> {
    let steps: Vec<usize> = ctx.pick(vec![100, 500, 1000, 2000, 5000, 10000], vec![10, 50]);
    let sim = Sim::start(ctx, SimOpts::default()).await?;
    let gate = Camgate::start(
        ctx,
        CamgateOpts {
            // Every player connects from 127.0.0.1: neither the viewer limit nor the
            // per-client connection cap (a defence against one client holding every
            // descriptor) may stand in for a load of thousands of distinct players.
            env: vec![
                (
                    "CAMGATE_STREAMS_MAX_VIEWERS_PER_STREAM".into(),
                    "1000000".into(),
                ),
                ("CAMGATE_HTTP_MAX_CONNECTIONS_PER_CLIENT".into(), "0".into()),
            ],
            ..CamgateOpts::default()
        },
    )
    .await?;
    gate.provision(CAMERA, &sim.url(1), false).await?;
    // A plain playlist request is answered once three segments exist: the stream is warm.
    let url = format!("{}/hls/{CAMERA}/index.m3u8", gate.base());
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match ctx.http.get(&url).send().await {
            Ok(r) if r.status().is_success() => break,
            _ if Instant::now() > deadline => {
                bail!(
                    "camgate served no playlist within 60 s; see {}",
                    gate.log.display()
                )
            }
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    let addr: SocketAddr = gate
        .base()
        .trim_start_matches("http://")
        .parse()
        .context("camgate's address")?;
    let shared = Arc::new(Shared::new(addr, CAMERA));

    let mut done: Vec<Step> = Vec::new();
    for &m in &steps {
        let plan = Plan {
            ramp: ctx.pick(
                Duration::from_millis(2000 + m as u64 / 5),
                Duration::from_secs(1),
            ),
            warmup: ctx.pick(Duration::from_secs(3), Duration::from_secs(1)),
            window: ctx.pick(Duration::from_secs(10), Duration::from_secs(3)),
            grace: Duration::from_secs(2),
        };
        eprintln!("fanout: {m} players");
        let step = run_step(&gate, &shared, m, &plan).await?;
        eprintln!(
            "fanout: M={m} p99 {} ms, errors {}, camgate {}% CPU, load generator {}% CPU",
            step.wait.map_or("-".into(), |w| num(w.p99, 1)),
            step.errors,
            num(step.camgate_cpu, 0),
            num(step.loadgen_cpu, 0)
        );
        // Past the target the steps stop, but not before M = 1000, whose CPU the report
        // gives; errors stop at once.
        let stop = step.errors > 0 || (!step.ok() && m >= 1000);
        done.push(step);
        if stop {
            break;
        }
    }
    drop(gate);
    drop(sim);

    if done.iter().all(|s| s.wait.is_none()) {
        bail!("no part wait was measured at any M");
    }
    let largest = done.iter().filter(|s| s.ok()).map(|s| s.m).max();
    let at_1000 = done.iter().find(|s| s.m == 1000);
    let mut t = Table::new(&[
        "players (M)",
        "part wait p50 ms",
        "p95 ms",
        "p99 ms",
        "max ms",
        "errors",
        "requests/s",
        "camgate CPU %",
        "camgate RSS MiB",
        "load generator CPU %",
        "server part delay p50 / p99 ms",
    ]);
    for s in &done {
        let w = |f: fn(&Summary) -> f64| s.wait.as_ref().map_or("-".into(), |w| num(f(w), 1));
        let errors = match &s.first_error {
            Some(e) => format!("{} ({})", s.errors, e.chars().take(80).collect::<String>()),
            None => s.errors.to_string(),
        };
        t.row([
            s.m.to_string(),
            w(|w| w.p50),
            w(|w| w.p95),
            w(|w| w.p99),
            w(|w| w.max),
            errors,
            num(s.requests_per_s, 0),
            num(s.camgate_cpu, 0),
            num(s.camgate_rss_mib, 0),
            num(s.loadgen_cpu, 0),
            format!(
                "{} / {}",
                s.server_delay_p50_ms.map_or("-".into(), |v| num(v, 0)),
                s.server_delay_p99_ms.map_or("-".into(), |v| num(v, 0))
            ),
        ]);
    }
    let mut md = String::new();
    md.push_str(
        "One camera (1080p, 25 fps, 2 Mbit/s, 1 s GOP; LL-HLS 1 s segments, 200 ms parts), M \
         LL-HLS players, each on its own HTTP/1.1 connection: blocking reload for the next part \
         (`_HLS_msn`/`_HLS_part`, `_HLS_skip=YES`, session cookie kept), then every new part. \
         **Part wait**: per part and player, from the first player's reload listing the part \
         to this player having all its bytes. CPU: 100 % = one core; camgate and the load \
         generator (this process, same machine) measured separately over the window. \
         Server part delay: `camgate_hls_part_delay_seconds` over the window (frame arrival \
         at the hub -> its part available).\n\n",
    );
    md.push_str(&t.to_markdown());
    md.push('\n');
    md.push_str(&format!(
        "Largest M with p99 part wait < {TARGET_P99_MS} ms and no errors: **{}**. CPU at \
         M = 1000: {}.\n",
        largest.map_or("none".into(), |m| m.to_string()),
        at_1000.map_or("not reached".into(), |s| format!(
            "camgate {} %, load generator {} %",
            num(s.camgate_cpu, 0),
            num(s.loadgen_cpu, 0)
        )),
    ));
    Ok(Section {
        id: "fanout".into(),
        title: "Viewer fan-out (LL-HLS, one camera)".into(),
        markdown: md,
        json: json!({
            "steps": done.iter().map(Step::to_json).collect::<Vec<_>>(),
            "largest_m_p99_under_100ms": largest,
            "camgate_cpu_percent_at_1000": at_1000.map(|s| s.camgate_cpu),
            "loadgen_cpu_percent_at_1000": at_1000.map(|s| s.loadgen_cpu),
        }),
    })
}

async fn server_delay(gate: &Camgate) -> Vec<(f64, f64)> {
    match gate.metrics().await {
        Ok(text) => stats::histogram_buckets(&text, DELAY_METRIC),
        Err(_) => Vec::new(),
    }
}

async fn run_step(gate: &Camgate, sh: &Arc<Shared>, m: usize, plan: &Plan) -> Result<Step> {
    sh.reset();
    let begin = Instant::now();
    let mut players = tokio::task::JoinSet::new();
    for i in 0..m {
        let at = begin + plan.ramp.mul_f64(i as f64 / m as f64);
        players.spawn(client::player(sh.clone(), at));
    }
    let win_start = begin + plan.ramp + plan.warmup;
    let win_end = win_start + plan.window;
    tokio::time::sleep_until(win_start.into()).await;
    let from_ns = sh.now_ns();
    sh.record_from.store(from_ns, Ordering::Relaxed);
    let cpu0 = procstat::sample(&[gate.pid()]);
    let own0 = (Instant::now(), procstat::own_cpu_seconds());
    let req0 = sh.requests.load(Ordering::Relaxed);
    let delay0 = server_delay(gate).await;
    tokio::time::sleep_until(win_end.into()).await;
    let req1 = sh.requests.load(Ordering::Relaxed);
    let cpu1 = procstat::sample(&[gate.pid()]);
    let own1 = (Instant::now(), procstat::own_cpu_seconds());
    let to_ns = sh.now_ns();
    let delay1 = server_delay(gate).await;
    tokio::time::sleep(plan.grace).await;
    sh.stop.store(true, Ordering::Relaxed);
    let end_ns = sh.now_ns();

    // Players stop after their current request (a blocking reload ends within one part).
    let mut outs: Vec<PlayerOut> = Vec::with_capacity(m);
    let mut stuck = 0;
    let join_deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !players.is_empty() {
        match tokio::time::timeout_at(join_deadline, players.join_next()).await {
            Ok(Some(Ok(out))) => outs.push(out),
            Ok(Some(Err(e))) => outs.push(PlayerOut {
                error: Some(format!("player task failed: {e}")),
                ..PlayerOut::default()
            }),
            Ok(None) => break,
            Err(_) => {
                stuck = players.len();
                players.abort_all();
                break;
            }
        }
    }

    // Parts first seen within the window; each player that ran cleanly should have them all.
    let mut per_part: HashMap<u64, (u64, usize)> = HashMap::new();
    let mut waits: Vec<f64> = Vec::new();
    for o in &outs {
        for &(part, done_ns) in &o.parts {
            let Some(first) = sh.first_seen(part) else {
                continue;
            };
            if first < from_ns || first > to_ns {
                continue;
            }
            waits.push(done_ns.saturating_sub(first) as f64 / 1e6);
            per_part.entry(part).or_insert((first, 0)).1 += 1;
        }
    }
    let clean = outs.iter().filter(|o| o.error.is_none()).count();
    let mut missing = 0;
    for (first, got) in per_part.values() {
        let lacking = clean.saturating_sub(*got);
        missing += lacking as u64;
        // Never arrived before the end: at least this long.
        let bound = end_ns.saturating_sub(*first) as f64 / 1e6;
        waits.extend(std::iter::repeat_n(bound, lacking));
    }
    let errors: Vec<&String> = outs.iter().filter_map(|o| o.error.as_ref()).collect();
    let window_s = (own1.0 - own0.0).as_secs_f64().max(1e-3);
    let delay = stats::bucket_delta(&delay0, &delay1);
    Ok(Step {
        m,
        started: outs.iter().filter(|o| o.started).count(),
        errors: errors.len() + stuck,
        first_error: errors
            .first()
            .map(|e| e.to_string())
            .or((stuck > 0).then(|| format!("{stuck} players did not stop within 20 s"))),
        wait: Summary::of(&waits),
        missing,
        requests_per_s: (req1 - req0) as f64 / window_s,
        camgate_cpu: procstat::cpu_percent(&cpu0, &cpu1),
        camgate_rss_mib: cpu1.rss_mib(),
        loadgen_cpu: (own1.1 - own0.1) / window_s * 100.0,
        server_delay_p50_ms: stats::histogram_quantile(&delay, 0.5).map(|s| s * 1000.0),
        server_delay_p99_ms: stats::histogram_quantile(&delay, 0.99).map(|s| s * 1000.0),
    })
}
