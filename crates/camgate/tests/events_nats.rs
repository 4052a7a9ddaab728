//! NATS publishing against a real `nats-server` (Debian package) that the test starts, kills
//! and restarts on one free 127.0.0.1 port, with GStreamer's RTSP server as the camera and an
//! independent subscriber (async-nats client).

mod support;

use std::time::Duration;

use futures::StreamExt;
use serde_json::Value;
use support::nats::NatsServer;
use support::{Camera, Gateway, client_bounded, closed_port};

async fn health(gw: &Gateway) -> (u16, Value) {
    let r = client_bounded(Duration::from_secs(5))
        .get(gw.url("/health"))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

/// An independent client subscribed to camgate's status subject, the subscription in place.
async fn watch_status(nats_url: &str) -> (async_nats::Client, async_nats::Subscriber) {
    let watcher = async_nats::connect(nats_url).await.unwrap();
    let sub = watcher
        .subscribe("site1.camgate.camera.status")
        .await
        .unwrap();
    watcher.flush().await.unwrap();
    (watcher, sub)
}

/// The next status message for `camera`, or panics after `within`.
async fn next_status(sub: &mut async_nats::Subscriber, camera: &str, within: Duration) -> Value {
    tokio::time::timeout(within, async {
        loop {
            let msg = sub.next().await.expect("subscription open");
            let v: Value = serde_json::from_slice(&msg.payload).expect("status is JSON");
            if v["camera_id"] == camera {
                return v;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no status for camera {camera} within {within:?}"))
}

/// The first status for `camera` whose `online` is `online`, within 20 s.
async fn status_with_online(sub: &mut async_nats::Subscriber, camera: &str, online: bool) -> Value {
    let within = Duration::from_secs(20);
    tokio::time::timeout(within, async {
        loop {
            let v = next_status(sub, camera, within).await;
            if v["online"] == online {
                return v;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("camera {camera} not online={online} on NATS within {within:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_reaches_nats_and_resumes_after_nats_restarts_while_video_flows() {
    let cam = Camera::start();
    let nats = NatsServer::start_on(closed_port());
    let nats_url = format!("nats://127.0.0.1:{}", nats.port);

    let gw = Gateway::start(|c| {
        c.nats.url = nats_url.clone();
        c.nats.subject_prefix = "site1.camgate".into();
        c.events.status_interval = Duration::from_millis(500);
    })
    .await;
    let state = gw.app.clone();

    let (watcher, mut sub) = watch_status(&nats_url).await;

    gw.provision("n1", &cam.good_url(), false).await;

    // A state change (and then the periodic status) arrives with exactly API.md's fields.
    let online = status_with_online(&mut sub, "n1", true).await;
    let mut keys: Vec<&str> = online
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "bitrate_kbps",
            "camera_id",
            "dropped_frames",
            "fps",
            "online",
            "uptime_seconds"
        ]
    );
    let periodic = next_status(&mut sub, "n1", Duration::from_secs(5)).await;
    assert_eq!(periodic["online"], true);
    let (code, h) = health(&gw).await;
    assert_eq!(
        (code, h["nats"]["status"].as_str()),
        (200, Some("connected"))
    );
    drop(sub);
    drop(watcher);

    // NATS goes away. Video keeps flowing; /health stays 200 and says so.
    let rt = state.live.get("n1").unwrap();
    let port = nats.stop();
    support::eventually(
        "camgate to notice NATS is gone",
        Duration::from_secs(10),
        || (state.metrics.nats_status() != camgate::events::NatsStatus::Connected).then_some(()),
    )
    .await;
    let frames_at_loss = rt.hub().stats().frames_received;
    support::eventually("frames while NATS is down", Duration::from_secs(10), || {
        (rt.hub().stats().frames_received >= frames_at_loss + 25).then_some(())
    })
    .await;
    let (code, h) = health(&gw).await;
    assert_eq!(code, 200, "{h}");
    assert_eq!(h["status"], "healthy");
    assert!(h["warnings"][0].as_str().unwrap().contains("nats"), "{h}");

    // NATS comes back on the same port: messages resume without touching camgate.
    let _nats = NatsServer::start_on(port);
    let (_watcher, mut sub) = watch_status(&nats_url).await;
    let again = next_status(&mut sub, "n1", Duration::from_secs(20)).await;
    assert_eq!(again["online"], true);
    assert!(rt.hub().stats().frames_received > frames_at_loss + 25);
    assert!(state.metrics.nats_counts().connects >= 2);
    let (_, h) = health(&gw).await;
    assert_eq!(h["nats"]["status"], "connected");

    // The camera drops: the change is published at once, offline with zero rates.
    cam.stop();
    let offline = status_with_online(&mut sub, "n1", false).await;
    assert_eq!(offline["fps"], 0.0);
    assert_eq!(offline["bitrate_kbps"], 0);
    gw.stop().await;
}
