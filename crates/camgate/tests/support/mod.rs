//! Test harness: real peers for the live path. `Camera` runs GStreamer's RTSP server
//! (tests/support/rtsp_camera.py) on a free 127.0.0.1 port and talks to it over stdin/stdout.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub const USER: &str = "viewer";
pub const PASSWORD: &str = "s3cr3t-pw";

/// GStreamer's RTSP server serving H.264 320x240 at 25 fps on `/cam`, Digest auth.
pub struct Camera {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
    pub port: u16,
}

impl Camera {
    pub fn start() -> Camera {
        Camera::start_on(0)
    }

    /// On a given port (0: any free one), e.g. to restart a stopped camera where it was.
    pub fn start_on(port: u16) -> Camera {
        Camera::spawn(port, "h264")
    }

    /// An H.265 camera (x265enc, rtph265pay).
    pub fn start_h265() -> Camera {
        Camera::spawn(0, "h265")
    }

    fn spawn(port: u16, codec: &str) -> Camera {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/rtsp_camera.py");
        let mut child = Command::new("/usr/bin/python3")
            .arg(script)
            .args([
                "--port",
                &port.to_string(),
                "--user",
                USER,
                "--password",
                PASSWORD,
            ])
            .args(["--codec", codec])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start /usr/bin/python3 tests/support/rtsp_camera.py (GStreamer)");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let mut cam = Camera {
            child,
            stdin,
            lines,
            port: 0,
        };
        let first = cam.expect_line("PORT ", Duration::from_secs(20));
        cam.port = first["PORT ".len()..].trim().parse().unwrap();
        cam
    }

    fn expect_line(&mut self, prefix: &str, within: Duration) -> String {
        let deadline = std::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) if l.starts_with(prefix) => return l,
                Ok(_) => continue,
                Err(_) => panic!("camera did not print {prefix:?} within {within:?}"),
            }
        }
    }

    fn command(&mut self, cmd: &str, reply: &str) -> String {
        writeln!(self.stdin, "{cmd}").unwrap();
        self.stdin.flush().unwrap();
        self.expect_line(reply, Duration::from_secs(10))
    }

    /// (active sessions, sessions ever created), counted by the server.
    pub fn sessions(&mut self) -> (u32, u32) {
        let l = self.command("sessions", "SESSIONS ");
        let mut active = 0;
        let mut total = 0;
        for kv in l["SESSIONS ".len()..].split_whitespace() {
            let (k, v) = kv.split_once('=').unwrap();
            match k {
                "active" => active = v.parse().unwrap(),
                "total" => total = v.parse().unwrap(),
                _ => {}
            }
        }
        (active, total)
    }

    /// Stop sending video while keeping the session open.
    pub fn stall(&mut self) {
        self.command("stall", "OK stall");
    }

    pub fn url(&self, user: &str, password: &str) -> String {
        format!("rtsp://{user}:{password}@127.0.0.1:{}/cam", self.port)
    }

    pub fn good_url(&self) -> String {
        self.url(USER, PASSWORD)
    }

    /// Kills the server (connections drop as if the camera lost power).
    pub fn stop(mut self) -> u16 {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.port
    }
}

impl Drop for Camera {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `f` every 100 ms until it returns `Some`, or panics after `within` saying `what`.
pub async fn eventually<T>(what: &str, within: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out after {within:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// camgate itself, in-process on a free 127.0.0.1 port, over a fresh data directory.
pub struct Gateway {
    pub base: String,
    pub app: std::sync::Arc<camgate::app::App>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    _dir: tempfile::TempDir,
}

impl Gateway {
    /// Short live-path timeouts so tests stay fast; `tweak` adjusts the rest.
    pub async fn start(tweak: impl FnOnce(&mut camgate::config::Config)) -> Gateway {
        let dir = tempfile::tempdir().unwrap();
        let mut config = camgate::config::Config {
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
        let server = camgate::server::Server::bind(config).await.unwrap();
        let base = format!("http://{}", server.local_addr());
        let app = server.app().clone();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(server.run(async move {
            let _ = rx.await;
        }));
        Gateway {
            base,
            app,
            stop: Some(tx),
            _dir: dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Provisions a camera through the API.
    pub async fn provision(&self, camera_id: &str, rtsp_url: &str, on_demand: bool) {
        let r = reqwest::Client::new()
            .post(self.url("/cameras/provision"))
            .json(&serde_json::json!({
                "camera_id": camera_id,
                "rtsp_url": rtsp_url,
                "on_demand": on_demand,
            }))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "provision: {}", r.status());
    }

    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        let r = reqwest::get(self.url(path)).await.unwrap();
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
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// A free TCP port on 127.0.0.1 with nothing listening (bound, then released).
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}
