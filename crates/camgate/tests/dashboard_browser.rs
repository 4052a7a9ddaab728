//! The web dashboard in headless Chromium (tests/browser/dashboard.mjs, driven by
//! playwright-core): against an in-process gateway with the demo's simulated cameras, tiles
//! play moving video, a hostile camera name is shown as text, the add form shows the API's
//! message beside the URL field and then adds a camera that plays, delete removes the tile,
//! a camera whose source dies shows `reconnecting`, then `live` when it returns, and a recorded
//! camera's timeline plays recorded video from a click, "Live" returns, and its export form
//! downloads an MP4 (or says why not).
//! Writes target/dashboard-grid.png.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use camgate::config::StreamsConfig;
use camgate::server::Server;
use support::Gateway;

/// Bounds the whole browser session (it waits at most 40 s for any one thing).
const BOUND: Duration = Duration::from_secs(240);

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .and_then(|p| p.parent())
        .expect("crates/camgate sits two levels below the workspace root")
        .to_path_buf()
}

fn small_sim(cameras: u32, listen: std::net::SocketAddr) -> sim::SimConfig {
    sim::SimConfig {
        cameras,
        listen,
        width: 320,
        height: 180,
        fps: 15,
        bitrate: 300_000,
        // Encoded live, as in the demo: a looped clip would show the same picture again after
        // exactly its length (2 s), which is the interval the test compares.
        live: true,
        ..sim::SimConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_in_headless_chromium() {
    let root = workspace_root();
    assert!(
        root.join("node_modules/playwright-core").is_dir(),
        "run `npm ci` in {} first (the browser tests need playwright-core)",
        root.display()
    );
    // The demo's cameras, provisioned the demo's way before the gateway serves.
    let demo_sim = sim::SimServer::start(small_sim(4, "127.0.0.1:0".parse().unwrap()))
        .await
        .unwrap();
    let gw = Gateway::start_with(
        |c| {
            // The demo's timeouts, but a dead source is noticed and retried quickly.
            c.streams = StreamsConfig {
                stall_timeout: Duration::from_secs(2),
                reconnect_min: Duration::from_millis(500),
                reconnect_max: Duration::from_secs(2),
                ..StreamsConfig::default()
            };
            c.record.file_duration = Duration::from_secs(2);
            c.record.flush_interval = Duration::from_millis(500);
            c.record.min_free = camgate::config::ByteSize(0);
        },
        async |server: &Server| {
            camgate::demo::provision(server, &demo_sim).await.unwrap();
        },
    )
    .await;
    let base = gw.base.clone();

    // A camera named like an attack, and an always-on camera on a simulator we can kill.
    gw.provision_json(
        serde_json::json!({"camera_id": "xss", "name": "<img src=x onerror=alert(1)>",
        "rtsp_url": demo_sim.url(3)}),
    )
    .await;
    let flaky_sim = sim::SimServer::start(small_sim(1, "127.0.0.1:0".parse().unwrap()))
        .await
        .unwrap();
    let flaky_addr = flaky_sim.local_addr();
    gw.provision_json(
        serde_json::json!({"camera_id": "flaky", "name": "Flaky camera",
        "rtsp_url": flaky_sim.url(1), "on_demand": false, "transport": "tcp"}),
    )
    .await;

    // A recorded camera, for its page's timeline and export form.
    gw.provision_json(
        serde_json::json!({"camera_id": "rec", "name": "Recorded camera",
        "rtsp_url": demo_sim.url(2), "record": true}),
    )
    .await;

    let screenshot = root.join("target").join("dashboard-grid.png");
    let _ = std::fs::remove_file(&screenshot);
    let mut node = Command::new("node")
        .current_dir(&root)
        .arg("crates/camgate/tests/browser/dashboard.mjs")
        .arg(&base)
        .arg(&screenshot)
        .arg("flaky")
        .arg(demo_sim.url(4))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("node is installed (CI installs nodejs)");
    let mut to_node = node.stdin.take().unwrap();
    let from_node = node.stdout.take().unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(from_node).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });

    let mut flaky_sim = Some(flaky_sim);
    let mut result = None;
    let run = async {
        while let Some(line) = rx.recv().await {
            eprintln!("dashboard.mjs: {line}");
            match line.as_str() {
                "KILL" => {
                    // The camera vanishes: listener closed, its session cut.
                    if let Some(s) = flaky_sim.take() {
                        s.shutdown();
                    }
                    writeln!(to_node, "KILLED").unwrap();
                }
                "RESTORE" => {
                    // The camera comes back at the same address.
                    flaky_sim = Some(
                        sim::SimServer::start(small_sim(1, flaky_addr))
                            .await
                            .expect("the simulator restarts on its old port"),
                    );
                    writeln!(to_node, "RESTORED").unwrap();
                }
                l if l.starts_with("RESULT ") => result = Some(l.to_string()),
                _ => {}
            }
        }
    };
    let finished = tokio::time::timeout(BOUND, run).await.is_ok();
    let status = if finished {
        node.wait().unwrap()
    } else {
        let _ = node.kill();
        let _ = node.wait();
        panic!("the dashboard test did not finish within {BOUND:?}");
    };
    gw.stop().await;
    let result = result.expect("dashboard.mjs printed a RESULT line");
    assert!(status.success(), "{result}");
    assert!(screenshot.is_file(), "screenshot written");
}
