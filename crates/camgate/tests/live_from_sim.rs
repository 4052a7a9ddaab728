//! The live path ingests the built-in simulator: over TCP and UDP with Digest auth, one
//! RTSP session per camera however many viewers, and it recovers from the simulator's
//! drop and stall faults.

use std::sync::Arc;
use std::time::Duration;

use camgate::cameras::{CameraSpec, SecretUrl, StreamState};
use camgate::hub::{LiveStream, Protocol};
use camgate::ingest::Transport;
use camgate::ingest::rtsp::RtspSource;
use camgate::live::{Live, LiveSettings};

fn settings() -> LiveSettings {
    LiveSettings {
        idle_timeout: Duration::from_secs(2),
        stall_timeout: Duration::from_secs(2),
        reconnect_min: Duration::from_millis(300),
        reconnect_max: Duration::from_secs(2),
        ..LiveSettings::default()
    }
}

fn spec(id: &str, url: String, transport: Transport) -> CameraSpec {
    CameraSpec {
        camera_id: id.into(),
        name: id.into(),
        stream_path: format!("cam_{id}"),
        rtsp_url: SecretUrl::new(url),
        on_demand: false,
        record: false,
        transport,
        idle_timeout: None,
    }
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

async fn wait_for(rt: &LiveStream, want: StreamState, within: Duration) {
    let mut rx = rt.watch_state();
    if tokio::time::timeout(within, rx.wait_for(|s| s.state == want))
        .await
        .is_err()
    {
        panic!(
            "{want:?} not reached within {within:?}; state {:?}",
            rt.state()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sim_cameras_go_live_over_tcp_and_udp() {
    let sim = sim::SimServer::start(sim_config(sim::Faults::default()))
        .await
        .unwrap();
    let streams = Live::new(settings(), Arc::new(Arc::new(RtspSource::default())));
    let tcp = streams.upsert(spec("1", url_with_creds(&sim, 1), Transport::Tcp));
    let udp = streams.upsert(spec("2", url_with_creds(&sim, 2), Transport::Udp));
    let viewers: Vec<_> = (0..3).map(|_| tcp.join(Protocol::Hls).unwrap()).collect();
    for (rt, cam) in [(&tcp, 1), (&udp, 2)] {
        wait_for(rt, StreamState::Live, Duration::from_secs(20)).await;
        let mut consumer = rt.hub().subscribe();
        let mut keyframes = 0;
        for _ in 0..15 {
            let f = tokio::time::timeout(Duration::from_secs(10), consumer.recv())
                .await
                .expect("frames keep coming")
                .expect("hub open");
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
    let streams = Live::new(settings(), Arc::new(Arc::new(RtspSource::default())));
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
    let streams = Live::new(settings(), Arc::new(Arc::new(RtspSource::default())));
    let rt = streams.upsert(spec("2", url_with_creds(&sim, 2), Transport::Udp));
    wait_for(&rt, StreamState::Live, Duration::from_secs(20)).await;
    // 5 s of silence on an open connection is longer than the 2 s stall timeout.
    wait_for(&rt, StreamState::Reconnecting, Duration::from_secs(20)).await;
    let err = rt.state().last_error.unwrap_or_default();
    assert!(err.contains("stall"), "{err}");
    assert!(!err.contains("sim-secret"), "{err}");
    streams.shutdown(Duration::from_secs(3)).await;
}
