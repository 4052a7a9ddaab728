//! The live path ingests the built-in simulator: over TCP and UDP with Digest auth, one
//! RTSP session per camera however many viewers, and it recovers from the simulator's
//! drop and stall faults.

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
