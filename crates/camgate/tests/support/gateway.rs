//! camgate itself, in-process on a free 127.0.0.1 port over a fresh data directory, and the
//! ways tests talk to it: HTTP, its WebSockets, `/metrics`. Owns the server task and its data
//! directory; the cameras it is given are the test's.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use camgate::app::App;
use camgate::config::Config;
use camgate::server::{ServeError, Server};
use tokio::task::JoinHandle;

use super::{client, text};

/// A WebSocket to the gateway.
pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub struct Gateway {
    pub base: String,
    pub addr: SocketAddr,
    pub app: Arc<App>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    running: Option<JoinHandle<Result<(), ServeError>>>,
    _dir: tempfile::TempDir,
}

impl Gateway {
    /// Short live-path timeouts so tests stay fast; `tweak` adjusts the rest.
    pub async fn start(tweak: impl FnOnce(&mut Config)) -> Gateway {
        Gateway::start_with(tweak, async |_: &Server| {}).await
    }

    /// As [`Gateway::start`], with the live timeouts shorter still and events, dashboard
    /// stats and WebSocket pings every second or less, so every wait on an event is short.
    pub async fn start_for_events(tweak: impl FnOnce(&mut Config)) -> Gateway {
        Gateway::start(|c| {
            quick_events(c);
            tweak(c);
        })
        .await
    }

    /// As [`Gateway::start`], running `before` on the bound server before it serves (the
    /// demo provisions its cameras that way).
    pub async fn start_with(
        tweak: impl FnOnce(&mut Config),
        before: impl AsyncFnOnce(&Server),
    ) -> Gateway {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config {
            data_dir: dir.path().join("data"),
            ..Default::default()
        };
        config.http.listen = "127.0.0.1:0".parse().unwrap();
        config.streams.idle_timeout = Duration::from_secs(2);
        config.streams.start_timeout = Duration::from_secs(10);
        config.streams.stall_timeout = Duration::from_secs(3);
        config.streams.reconnect_min = Duration::from_millis(500);
        config.streams.reconnect_max = Duration::from_secs(2);
        tweak(&mut config);
        let server = Server::bind(config).await.unwrap();
        before(&server).await;
        let addr = server.local_addr();
        let app = server.app().clone();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let running = tokio::spawn(server.run(async move {
            let _ = rx.await;
        }));
        Gateway {
            base: format!("http://{addr}"),
            addr,
            app,
            stop: Some(tx),
            running: Some(running),
            _dir: dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Provisions a camera through the API.
    pub async fn provision(&self, camera_id: &str, rtsp_url: &str, on_demand: bool) {
        self.provision_json(serde_json::json!({
            "camera_id": camera_id,
            "rtsp_url": rtsp_url,
            "on_demand": on_demand,
        }))
        .await;
    }

    /// Provisions a camera from a whole request body.
    pub async fn provision_json(&self, body: serde_json::Value) {
        let r = client()
            .post(self.url("/cameras/provision"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "provision {body}: {}", r.status());
    }

    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        let r = client().get(self.url(path)).send().await.unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
        r.json().await.unwrap()
    }

    /// The camera's `state` from `/cameras/{id}/status`.
    pub async fn state_of(&self, camera_id: &str) -> String {
        self.get_json(&format!("/cameras/{camera_id}/status")).await["state"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Waits (polling the API) until the camera's state is `want`.
    pub async fn wait_state(&self, camera_id: &str, want: &str, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let s = self.state_of(camera_id).await;
            if s == want {
                return;
            }
            if tokio::time::Instant::now() >= deadline {
                panic!("camera {camera_id} is {s}, not {want}, after {within:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `ws://` URL of `path` on the gateway.
    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://{}{path}", self.addr)
    }

    /// A WebSocket to `path`, connected within 10 s.
    pub async fn ws(&self, path: &str) -> Ws {
        let (ws, _) = tokio::time::timeout(
            Duration::from_secs(10),
            tokio_tungstenite::connect_async(self.ws_url(path)),
        )
        .await
        .expect("WebSocket connect in time")
        .expect("WebSocket handshake");
        ws
    }

    /// `/metrics`, parsed by the `prometheus-parse` crate.
    pub async fn metrics(&self) -> prometheus_parse::Scrape {
        let text = text(client().get(self.url("/metrics"))).await;
        let lines = text.lines().map(|l| Ok(l.to_owned()));
        prometheus_parse::Scrape::parse(lines).expect("/metrics parses as Prometheus text")
    }

    /// Signals shutdown and waits (at most 20 s) for the server to finish it; panics if it
    /// does not, or if it ends with an error.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let running = self
            .running
            .take()
            .expect("the server task is ours until now");
        tokio::time::timeout(Duration::from_secs(20), running)
            .await
            .expect("server stops after the shutdown signal")
            .expect("the server task did not panic")
            .expect("the server shut down without an error");
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// The event tests' timing: live timeouts of a second or two, dashboard stats every 300 ms,
/// status every 500 ms, a WebSocket ping every second.
pub fn quick_events(config: &mut Config) {
    config.streams.idle_timeout = Duration::from_secs(1);
    config.streams.stall_timeout = Duration::from_secs(2);
    config.streams.reconnect_min = Duration::from_millis(300);
    config.streams.reconnect_max = Duration::from_secs(1);
    config.events.dashboard_interval = Duration::from_millis(300);
    config.events.status_interval = Duration::from_millis(500);
    config.events.ws_ping_interval = Duration::from_secs(1);
}
