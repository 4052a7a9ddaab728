//! `camgate demo`: the real binary starts the simulator and the gateway on free ports, its
//! cameras are in the registry, idle until a player asks and then `live` over HLS within 10 s,
//! and running it again on the same data directory updates the demo cameras instead of
//! duplicating them while keeping the user's own.

mod support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::process;

const BIN: &str = env!("CARGO_BIN_EXE_camgate");
/// Bounds the start of the process (the first start encodes nothing yet, but CI is slow).
const START_BOUND: Duration = Duration::from_secs(60);
/// The promise: a camera is live over HLS within 10 s of being requested. The server's
/// own start timeout is 10 s too, so a 200 playlist inside this bound is that promise kept.
const LIVE_BOUND: Duration = Duration::from_secs(10);

/// A running `camgate demo`; killed if the test fails half-way.
struct Demo {
    child: Child,
    base: String,
    banner: Vec<String>,
    lines: mpsc::Receiver<String>,
}

impl Demo {
    /// Starts `camgate demo` in `cwd`, with `--data-dir` when given.
    fn start(cwd: &Path, data_dir: Option<&Path>) -> Demo {
        let mut cmd = Command::new(BIN);
        // A clean environment: no inherited CAMGATE_* variables, no ./camgate.toml.
        cmd.env_clear().current_dir(cwd).args([
            "demo",
            "--listen",
            "127.0.0.1:0",
            "--log-level",
            "warn",
        ]);
        if let Some(dir) = data_dir {
            cmd.arg("--data-dir").arg(dir);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn camgate demo");
        let stdout = child.stdout.take().unwrap();
        let lines = process::lines(stdout);
        let mut banner = Vec::new();
        let deadline = Instant::now() + START_BOUND;
        let base = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match lines.recv_timeout(left) {
                Ok(line) => line,
                Err(_) => {
                    let _ = child.kill();
                    panic!("camgate demo printed no dashboard URL: {banner:?}");
                }
            };
            banner.push(line.clone());
            if let Some(url) = line.trim().strip_prefix("dashboard:") {
                break url.trim().trim_end_matches('/').to_string();
            }
        };
        // The HLS line follows the dashboard line.
        if let Ok(line) = lines.recv_timeout(Duration::from_secs(5)) {
            banner.push(line);
        }
        Demo {
            child,
            base,
            banner,
            lines,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// SIGTERM (the shell's built-in kill), then a bounded wait for a clean exit.
    fn stop(mut self) {
        process::signal(&self.child, "TERM");
        let exit = process::wait_exit(
            &mut self.child,
            Duration::from_secs(30),
            "camgate demo did not stop on SIGTERM",
        );
        assert!(exit.success(), "camgate demo exited with {exit:?}");
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Drain what is left so nothing blocks the reader thread.
        while self.lines.try_recv().is_ok() {}
    }
}

fn client() -> reqwest::Client {
    support::client_bounded(Duration::from_secs(20))
}

async fn cameras(http: &reqwest::Client, demo: &Demo) -> Vec<Value> {
    let answer = http.get(demo.url("/cameras")).send().await.unwrap();
    assert_eq!(answer.status(), 200);
    answer.json::<Vec<Value>>().await.unwrap()
}

async fn state(http: &reqwest::Client, demo: &Demo, id: &str) -> String {
    let status: Value = http
        .get(demo.url(&format!("/cameras/{id}/status")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    status["state"].as_str().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_provisions_its_cameras_and_a_rerun_updates_them() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("demo-data");
    let http = client();

    let demo = Demo::start(dir.path(), Some(&data));
    let hls_line = demo
        .banner
        .iter()
        .find(|l| l.contains("/hls/cam_1/index.m3u8"))
        .unwrap_or_else(|| panic!("no HLS URL printed: {:?}", demo.banner));
    assert!(hls_line.contains(&demo.base), "{hls_line}");
    assert!(demo.banner[0].contains("4 new"), "{:?}", demo.banner);

    let listed = cameras(&http, &demo).await;
    let ids: Vec<&str> = listed
        .iter()
        .map(|c| c["camera_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["1", "2", "3", "4"], "{listed:?}");
    for id in ["1", "2", "3", "4"] {
        // On demand: nothing is contacted until a player asks.
        assert_eq!(state(&http, &demo, id).await, "idle", "camera {id}");
    }

    // A camera the user adds must survive the demo's next run untouched.
    let added = http
        .post(demo.url("/cameras/provision"))
        .json(&json!({"camera_id": "mine", "rtsp_url": "rtsp://192.0.2.1/stream"}))
        .send()
        .await
        .unwrap();
    assert_eq!(added.status(), 201);
    demo.stop();

    let again = Demo::start(dir.path(), Some(&data));
    assert!(
        again.banner[0].contains("0 new, 4 updated"),
        "{:?}",
        again.banner
    );
    let listed = cameras(&http, &again).await;
    let mut ids: Vec<&str> = listed
        .iter()
        .map(|c| c["camera_id"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, ["1", "2", "3", "4", "mine"], "{listed:?}");
    // The demo cameras point at this run's simulator, whose port is new.
    let sim_addr = again.banner[0]
        .split("rtsp://")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .unwrap()
        .to_string();
    let cam1 = listed.iter().find(|c| c["camera_id"] == "1").unwrap();
    assert_eq!(
        cam1["rtsp_url"],
        format!("rtsp://{sim_addr}/cam1"),
        "{listed:?}"
    );
    again.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_keeps_its_data_in_demo_data_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let demo = Demo::start(dir.path(), None);
    assert!(demo.banner[0].contains("./demo-data"), "{:?}", demo.banner);
    assert!(dir.path().join("demo-data").join("camgate.db").is_file());
    assert!(
        !dir.path().join("data").exists(),
        "serve's ./data untouched"
    );
    assert_eq!(cameras(&client(), &demo).await.len(), 4);
    demo.stop();
}

#[test]
fn demo_help_lists_its_options() {
    let out = Command::new(BIN)
        .env_clear()
        .args(["demo", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for word in [
        "--cameras",
        "--size",
        "--fps",
        "--sim-listen",
        "--data-dir",
        "--listen",
        "demo-data",
        "640x360",
    ] {
        assert!(help.contains(word), "{word} missing from {help}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_cameras_go_live_over_hls_when_requested() {
    let dir = tempfile::tempdir().unwrap();
    let http = client();
    let demo = Demo::start(dir.path(), Some(&dir.path().join("demo-data")));
    for id in ["1", "2", "3", "4"] {
        let asked = Instant::now();
        let playlist = http
            .get(demo.url(&format!("/hls/cam_{id}/index.m3u8")))
            .timeout(LIVE_BOUND + Duration::from_secs(2))
            .send()
            .await
            .unwrap();
        assert_eq!(playlist.status(), 200, "cam_{id} playlist");
        let text = playlist.text().await.unwrap();
        assert!(text.starts_with("#EXTM3U"), "{text}");
        assert!(text.contains("#EXT-X-PART:"), "LL-HLS parts: {text}");
        // The playlist came back with parts, so frames flow: the status must agree at once
        // (polled only to cover the status update racing the answer).
        loop {
            let s = state(&http, &demo, id).await;
            if s == "live" {
                break;
            }
            assert!(
                asked.elapsed() < LIVE_BOUND,
                "camera {id} is {s}, not live, {LIVE_BOUND:?} after its playlist was requested"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    demo.stop();
}
