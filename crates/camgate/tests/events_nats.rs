//! NATS publishing against a real `nats-server` (Debian package) that the test starts, kills
//! and restarts on one free 127.0.0.1 port, with GStreamer's RTSP server as the camera and an
//! independent subscriber (async-nats client).

mod support;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};
use support::Camera;

struct NatsServer {
    child: Child,
    port: u16,
}

impl NatsServer {
    fn start_on(port: u16) -> NatsServer {
        // Debian installs it in /usr/sbin, which is not on every user's PATH.
        let program = if std::path::Path::new("/usr/sbin/nats-server").exists() {
            "/usr/sbin/nats-server"
        } else {
            "nats-server"
        };
        let child = Command::new(program)
            .args(["-a", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("run nats-server (Debian package nats-server)");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "nats-server did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        NatsServer { child, port }
    }

    fn stop(mut self) -> u16 {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.port
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn health(base: &str) -> (u16, Value) {
    let r = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
        .get(format!("{base}/health"))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_reaches_nats_and_resumes_after_nats_restarts_while_video_flows() {
    let cam = Camera::start();
    let nats = NatsServer::start_on(free_port());
    let nats_url = format!("nats://127.0.0.1:{}", nats.port);

    let dir = tempfile::tempdir().unwrap();
    let mut config = camgate::config::Config {
        data_dir: dir.path().join("data"),
        ..Default::default()
    };
    config.http.listen = "127.0.0.1:0".parse().unwrap();
    config.nats.url = nats_url.clone();
    config.nats.subject_prefix = "site1.camgate".into();
    config.events.status_interval = Duration::from_millis(500);
    let server = camgate::server::Server::bind(config).await.unwrap();
    let base = format!("http://{}", server.local_addr());
    let state = server.app().clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server.run(async move {
        let _ = stopped.await;
    }));

    let watcher = async_nats::connect(&nats_url).await.unwrap();
    let mut sub = watcher
        .subscribe("site1.camgate.camera.status")
        .await
        .unwrap();
    watcher.flush().await.unwrap();

    let r = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(format!("{base}/cameras/provision"))
        .json(&json!({"camera_id": "n1", "rtsp_url": cam.good_url(), "on_demand": false}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());

    // A state change (and then the periodic status) arrives with exactly API.md's fields.
    let online = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let v = next_status(&mut sub, "n1", Duration::from_secs(20)).await;
            if v["online"] == true {
                return v;
            }
        }
    })
    .await
    .expect("camera online on NATS");
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
    let (code, h) = health(&base).await;
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
    let (code, h) = health(&base).await;
    assert_eq!(code, 200, "{h}");
    assert_eq!(h["status"], "healthy");
    assert!(h["warnings"][0].as_str().unwrap().contains("nats"), "{h}");

    // NATS comes back on the same port: messages resume without touching camgate.
    let _nats = NatsServer::start_on(port);
    let watcher = async_nats::connect(&nats_url).await.unwrap();
    let mut sub = watcher
        .subscribe("site1.camgate.camera.status")
        .await
        .unwrap();
    watcher.flush().await.unwrap();
    let again = next_status(&mut sub, "n1", Duration::from_secs(20)).await;
    assert_eq!(again["online"], true);
    assert!(rt.hub().stats().frames_received > frames_at_loss + 25);
    assert!(state.metrics.nats_counts().connects >= 2);
    let (_, h) = health(&base).await;
    assert_eq!(h["nats"]["status"], "connected");

    // The camera drops: the change is published at once, offline with zero rates.
    cam.stop();
    let offline = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let v = next_status(&mut sub, "n1", Duration::from_secs(20)).await;
            if v["online"] == false {
                return v;
            }
        }
    })
    .await
    .expect("camera offline on NATS");
    assert_eq!(offline["fps"], 0.0);
    assert_eq!(offline["bitrate_kbps"], 0);
    let _ = stop.send(());
}
