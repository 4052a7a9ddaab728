//! The live path ingests the built-in simulator: over TCP and UDP with Digest auth, one
//! RTSP session per camera however many viewers, and it recovers from the simulator's
//! drop and stall faults; its garbage and timestamp-jump faults go into the whole gateway.

mod support;

use std::time::Duration;

use camgate::cameras::{CameraSpec, StreamState};
use camgate::hub::Protocol;
use camgate::ingest::Transport;
use camgate::live::LiveSettings;
use support::live::{live, next_frame, wait_for};

fn settings() -> LiveSettings {
    LiveSettings {
        reconnect_min: Duration::from_millis(300),
        ..support::live::settings()
    }
}

fn spec(id: &str, url: String, transport: Transport) -> CameraSpec {
    support::live::spec(id, url, false, transport)
}

fn sim_config(faults: sim::Faults) -> sim::SimConfig {
    sim::SimConfig {
        cameras: 2,
        width: 320,
        height: 240,
        fps: 10,
        bitrate: 300_000,
        credentials: Some(sim::Credentials {
            user: "admin".into(),
            password: "sim-secret".into(),
        }),
        auth: sim::AuthScheme::Digest,
        faults,
        ..sim::SimConfig::default()
    }
}

fn url_with_creds(sim: &sim::SimHandle, cam: u32) -> String {
    sim.url(cam)
        .replacen("rtsp://", "rtsp://admin:sim-secret@", 1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sim_cameras_go_live_over_tcp_and_udp() {
    let sim = sim::SimServer::start(sim_config(sim::Faults::default()))
        .await
        .unwrap();
    let streams = live(settings());
    let tcp = streams.upsert(spec("1", url_with_creds(&sim, 1), Transport::Tcp));
    let udp = streams.upsert(spec("2", url_with_creds(&sim, 2), Transport::Udp));
    let viewers: Vec<_> = (0..3).map(|_| tcp.join(Protocol::Hls).unwrap()).collect();
    for (rt, cam) in [(&tcp, 1), (&udp, 2)] {
        wait_for(rt, StreamState::Live, Duration::from_secs(20)).await;
        let mut consumer = rt.hub().subscribe();
        let mut keyframes = 0;
        for _ in 0..15 {
            let f = next_frame(&mut consumer).await;
            assert_eq!(
                (f.video().unwrap().width, f.video().unwrap().height),
                (320, 240)
            );
            keyframes += u32::from(f.keyframe);
        }
        assert!(keyframes >= 1, "cam{cam}: a keyframe every second");
        assert_eq!(sim.sessions(cam), 1, "cam{cam}: one RTSP session");
    }
    drop(viewers);
    streams.shutdown(Duration::from_secs(3)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_and_stall_faults_are_survived() {
    let sim = sim::SimServer::start(sim_config(sim::Faults {
        drop_every: Some(Duration::from_secs(2)),
        ..sim::Faults::default()
    }))
    .await
    .unwrap();
    let streams = live(settings());
    let rt = streams.upsert(spec("1", url_with_creds(&sim, 1), Transport::Tcp));
    wait_for(&rt, StreamState::Live, Duration::from_secs(20)).await;
    // The simulator hangs up after 2 s; the runtime notices, reconnects, and is live again.
    wait_for(&rt, StreamState::Reconnecting, Duration::from_secs(20)).await;
    wait_for(&rt, StreamState::Live, Duration::from_secs(20)).await;
    streams.shutdown(Duration::from_secs(3)).await;

    let sim = sim::SimServer::start(sim_config(sim::Faults {
        stall_every: Some(Duration::from_secs(1)),
        stall_for: Some(Duration::from_secs(5)),
        ..sim::Faults::default()
    }))
    .await
    .unwrap();
    let streams = live(settings());
    let rt = streams.upsert(spec("2", url_with_creds(&sim, 2), Transport::Udp));
    wait_for(&rt, StreamState::Live, Duration::from_secs(20)).await;
    // 5 s of silence on an open connection is longer than the 2 s stall timeout.
    wait_for(&rt, StreamState::Reconnecting, Duration::from_secs(20)).await;
    let err = rt.state().last_error.unwrap_or_default();
    assert!(err.contains("stall"), "{err}");
    assert!(!err.contains("sim-secret"), "{err}");
    streams.shutdown(Duration::from_secs(3)).await;
}

/// Panics anywhere in this test binary's threads (the gateway's tasks included) since
/// `count_panics` was first called; a task's panic does not fail a test by itself.
fn count_panics() -> &'static std::sync::atomic::AtomicUsize {
    static PANICS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            previous(info);
        }));
    });
    &PANICS
}

/// The simulator's garbage (packets that are not RTP on the video channel, random bytes on
/// interleaved channel 250) and timestamp faults (RTP time 5 s back every 1.5 s) into the whole
/// gateway over HTTP: nothing panics; the garbage is reported (a `last_error`, a reconnect
/// counted in `/metrics`) and the camera comes back live; across the jumps decode times keep
/// increasing with no gap beyond a second and without a reconnect; both streams still play
/// (ffprobe decodes the HLS output) and `/health` answers 200 while the faults go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_timestamp_jumps_reach_camgate_which_reports_them_and_keeps_serving() {
    let panics = count_panics();
    let before = panics.load(std::sync::atomic::Ordering::SeqCst);
    let garbage = sim::SimServer::start(sim_config(sim::Faults {
        garbage_every: Some(Duration::from_secs(3)),
        ..sim::Faults::default()
    }))
    .await
    .unwrap();
    let jumps = sim::SimServer::start(sim_config(sim::Faults {
        jump_every: Some(Duration::from_millis(1500)),
        jump_by: Duration::from_secs(5),
        ..sim::Faults::default()
    }))
    .await
    .unwrap();
    let gw = support::Gateway::start(|_| {}).await;
    for (id, sim) in [("g", &garbage), ("j", &jumps)] {
        gw.provision_json(serde_json::json!({
            "camera_id": id, "rtsp_url": url_with_creds(sim, 1),
            "on_demand": false, "transport": "tcp",
        }))
        .await;
    }
    gw.wait_state("g", "live", Duration::from_secs(20)).await;
    gw.wait_state("j", "live", Duration::from_secs(20)).await;

    // Decode times across three jumps: strictly increasing, no hole over a second (90 kHz).
    let j = gw.app.live.get("j").unwrap();
    let mut consumer = j.hub().subscribe();
    let mut last: Option<i64> = None;
    let t0 = std::time::Instant::now();
    let mut frames = 0;
    while t0.elapsed() < Duration::from_secs(5) {
        let f = next_frame(&mut consumer).await;
        if let Some(prev) = last {
            assert!(f.dts > prev, "decode time {} after {prev}", f.dts);
            assert!(f.dts - prev <= 90_000, "a hole of {} ticks", f.dts - prev);
        }
        last = Some(f.dts);
        frames += 1;
    }
    drop(consumer);
    assert!(frames >= 40, "only {frames} frames in 5 s at 10 fps");

    // The garbage: reported and recovered from.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let err = loop {
        let s = gw.get_json("/cameras/g/status").await;
        if let Some(e) = s["last_error"].as_str() {
            break e.to_owned();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no error reported: {s}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    eprintln!("garbage reported as: {err}");
    assert!(err.contains("camera g"), "{err}");
    assert!(!err.contains("sim-secret"), "{err}");
    gw.wait_state("g", "live", Duration::from_secs(20)).await;
    let metrics = gw.metrics().await;
    let reconnects = metrics
        .samples
        .iter()
        .find(|s| {
            s.metric == "camgate_camera_reconnects_total" && s.labels.get("camera") == Some("g")
        })
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Untyped(v) => v,
            _ => 0.0,
        });
    assert!(reconnects.is_some_and(|v| v >= 1.0), "{reconnects:?}");
    // A jump of the camera's clock is smoothed over, not treated as a failure.
    assert_eq!(j.reconnects(), 0, "timestamp jumps made j reconnect");

    // Still serving, faults and all.
    for path in ["cam_g", "cam_j"] {
        let out = tokio::process::Command::new("ffprobe")
            .args(["-v", "error", "-select_streams", "v:0", "-count_frames"])
            .args(["-read_intervals", "%+2"])
            .args(["-show_entries", "stream=width,height,nb_read_frames"])
            .args(["-of", "json"])
            .arg(gw.url(&format!("/hls/{path}/index.m3u8")))
            .kill_on_drop(true)
            .output();
        let out = tokio::time::timeout(Duration::from_secs(60), out)
            .await
            .expect("ffprobe within 60 s")
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        let s = &v["streams"][0];
        let n: u64 = s["nb_read_frames"]
            .as_str()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        assert!(
            s["width"] == 320 && n >= 10,
            "{path}: {v} {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let r = support::client()
        .get(gw.url("/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    gw.stop().await;
    assert_eq!(
        panics.load(std::sync::atomic::Ordering::SeqCst),
        before,
        "something panicked"
    );
}
