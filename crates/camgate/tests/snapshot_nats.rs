//! Frame messages (`{prefix}.camera.frame`) on a real `nats-server` (Debian package) that the
//! test starts on a free 127.0.0.1 port, with GStreamer's RTSP server as an on-demand camera
//! nobody watches: the messages keep it connected, arrive at the configured rate, and each
//! `url` answers with a JPEG (read by an independent decoder) until `frame_keep`, then `410`.

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::Value;
use support::nats::NatsServer;
use support::{Camera, Gateway};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn frame_messages_arrive_at_the_rate_and_their_urls_fetch_jpegs() {
    let cam = Camera::start();
    let nats = NatsServer::start();
    let nats_url = format!("nats://127.0.0.1:{}", nats.port);
    let watcher = async_nats::connect(&nats_url).await.unwrap();
    let mut sub = watcher.subscribe("site2.camera.frame").await.unwrap();
    watcher.flush().await.unwrap();

    let gw = Gateway::start(|c| {
        c.nats.url = nats_url.clone();
        c.nats.subject_prefix = "site2".into();
        c.nats.frame_interval = Duration::from_millis(500);
        c.nats.frame_keep = Duration::from_secs(3);
    })
    .await;
    // On demand, and nobody watches: the frame messages hold it connected.
    gw.provision("f1", &cam.good_url(), true).await;
    gw.wait_state("f1", "live", Duration::from_secs(15)).await;

    let mut messages: Vec<(Instant, Value)> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while messages.len() < 8 {
        let left = deadline.saturating_duration_since(Instant::now());
        let msg = tokio::time::timeout(left, sub.next())
            .await
            .expect("8 frame messages within 20 s")
            .unwrap();
        let v: Value = serde_json::from_slice(&msg.payload).unwrap();
        messages.push((Instant::now(), v));
    }
    // The contract's payload, nothing more.
    let keys: BTreeSet<&str> = messages[0]
        .1
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    assert_eq!(
        keys,
        BTreeSet::from([
            "camera_id",
            "timestamp",
            "frame_number",
            "resolution",
            "fps",
            "url"
        ])
    );
    for (_, m) in &messages {
        assert_eq!(m["camera_id"], "f1");
        assert_eq!(m["resolution"], "320x240");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let ts = m["timestamp"].as_f64().unwrap();
        assert!((now - ts).abs() < 10.0, "timestamp {ts} vs now {now}");
    }
    let numbers: Vec<u64> = messages
        .iter()
        .map(|(_, m)| m["frame_number"].as_u64().unwrap())
        .collect();
    assert!(numbers.windows(2).all(|w| w[0] < w[1]), "{numbers:?}");
    // 500 ms apart: 7 gaps over the 8 messages; generous bounds for a loaded machine.
    let span = messages[7].0 - messages[0].0;
    assert!(
        span >= Duration::from_millis(2_500) && span <= Duration::from_millis(6_000),
        "{span:?}"
    );
    // 25 fps camera: about 12 frames between two messages.
    let gaps: Vec<u64> = numbers.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps.iter().all(|&g| (3..=40).contains(&g)), "{gaps:?}");
    eprintln!("frame messages: span {span:?} for 7 gaps, frame number gaps {gaps:?}");

    // The newest URL answers with a JPEG of that size; a second fetch is the cached one.
    let url = messages[7].1["url"].as_str().unwrap().to_owned();
    assert!(url.starts_with(&gw.base), "{url}");
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let t = Instant::now();
    let r = client.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/jpeg");
    let first = r.bytes().await.unwrap();
    let fetch = t.elapsed();
    let img = image::load_from_memory_with_format(&first, image::ImageFormat::Jpeg).unwrap();
    assert_eq!((img.width(), img.height()), (320, 240));
    let again = client
        .get(&url)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(first, again);
    let stats = gw.get_json("/snapshots/stats").await;
    assert_eq!(stats["decodes"], 1, "{stats}");
    assert!(stats["frames_announced"].as_u64().unwrap() >= 8, "{stats}");
    eprintln!("first fetch of a frame URL: {fetch:?}; {stats}");
    let small = client.get(format!("{url}?width=64")).send().await.unwrap();
    assert_eq!(small.status(), 200);

    // Past frame_keep (3 s) the first message's frame is gone.
    let old = messages[0].1["url"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let r = client.get(&old).send().await.unwrap();
    assert_eq!(r.status(), 410);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "frame_gone");

    // Nobody watches, yet the camera stays connected for the messages.
    assert_eq!(gw.state_of("f1").await, "live");
}

/// The message subjects' camera ids and their count, received within `window`.
async fn frames_within(
    sub: &mut async_nats::Subscriber,
    window: Duration,
) -> std::collections::BTreeMap<String, usize> {
    let mut seen = std::collections::BTreeMap::new();
    let deadline = tokio::time::Instant::now() + window;
    while let Ok(Some(msg)) = tokio::time::timeout_at(deadline, sub.next()).await {
        let v: Value = serde_json::from_slice(&msg.payload).unwrap();
        *seen
            .entry(v["camera_id"].as_str().unwrap().to_owned())
            .or_insert(0) += 1;
    }
    seen
}

/// `camgate serve` (the real binary: a restart is a new process over the same data directory),
/// with NATS and a short idle timeout; its address once it listens.
fn serve(data_dir: &std::path::Path, nats_url: &str) -> (support::process::KillOnDrop, String) {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_camgate"))
        .env_clear()
        .current_dir(data_dir.parent().unwrap())
        .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"])
        .arg("--data-dir")
        .arg(data_dir)
        .env("CAMGATE_NATS_URL", nats_url)
        .env("CAMGATE_STREAMS_IDLE_TIMEOUT", "2s")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run camgate");
    let lines = support::process::lines(child.stderr.take().unwrap());
    let child = support::process::KillOnDrop(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = lines
            .recv_timeout(left)
            .expect("camgate listens within 30 s");
        if let Ok(v) = serde_json::from_str::<Value>(&line)
            && v["message"] == "listening"
        {
            let addr = v["addr"].as_str().unwrap().to_owned();
            // Keep draining its log so it never blocks on a full pipe.
            std::thread::spawn(move || while lines.recv().is_ok() {});
            return (child, format!("http://{addr}"));
        }
    }
}

async fn json_at(base: &str, path: &str) -> Value {
    let r = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("{base}{path}"))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{path}: {}", r.status());
    r.json().await.unwrap()
}

async fn wait_state_at(base: &str, id: &str, want: &str, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let s = json_at(base, &format!("/cameras/{id}/status")).await;
        if s["state"] == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "camera {id} is {}, not {want}",
            s["state"]
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cameras_own_frame_interval_holds_it_and_survives_a_restart() {
    let cam = Camera::start();
    let nats = NatsServer::start();
    let nats_url = format!("nats://127.0.0.1:{}", nats.port);
    let watcher = async_nats::connect(&nats_url).await.unwrap();
    let mut sub = watcher.subscribe("camgate.camera.frame").await.unwrap();
    watcher.flush().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let provision = async |base: &str, body: Value| {
        client
            .post(format!("{base}/cameras/provision"))
            .json(&body)
            .send()
            .await
            .unwrap()
    };

    // No [nats] frame_interval: only cameras that ask get messages.
    let (first, base) = serve(&data_dir, &nats_url);
    for (bad, why) in [
        (serde_json::json!("10ms"), "under 40 ms"),
        (serde_json::json!("2d"), "over a day"),
        (serde_json::json!("often"), "not a duration"),
        (serde_json::json!(-1), "negative"),
    ] {
        let r = provision(
            &base,
            serde_json::json!({"camera_id": "a", "rtsp_url": cam.good_url(), "frame_interval": bad}),
        )
        .await;
        assert_eq!(r.status(), 422, "{why}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid_frame_interval", "{why}");
        assert!(
            body["error"]["message"].as_str().unwrap().contains("40ms"),
            "{body}"
        );
    }
    // Both on demand, nobody watching: "a" asks for a message every 500 ms, "b" for none.
    for body in [
        serde_json::json!({"camera_id": "a", "rtsp_url": cam.good_url(), "frame_interval": "500ms"}),
        serde_json::json!({"camera_id": "b", "rtsp_url": cam.good_url()}),
    ] {
        assert!(provision(&base, body).await.status().is_success());
    }
    let info = json_at(&base, "/cameras/a/info").await;
    assert_eq!(info["frame_interval"], 0.5, "{info}");
    assert_eq!(
        json_at(&base, "/cameras/b/info").await["frame_interval"],
        Value::Null
    );
    wait_state_at(&base, "a", "live", Duration::from_secs(15)).await;
    let seen = frames_within(&mut sub, Duration::from_secs(4)).await;
    assert!(
        seen.get("a").is_some_and(|&n| (5..=10).contains(&n)),
        "{seen:?}"
    );
    assert!(!seen.contains_key("b"), "{seen:?}");
    assert_eq!(json_at(&base, "/cameras/b/status").await["state"], "idle");
    // A clean stop (SIGTERM), as a service manager does.
    let mut first = first;
    support::process::signal(&first.0, "TERM");
    let exit = support::process::wait_exit(&mut first.0, Duration::from_secs(20), "camgate stops");
    assert!(exit.success(), "{exit:?}");

    // After a restart the stored interval holds the camera and its messages come again.
    let (_second, base) = serve(&data_dir, &nats_url);
    assert_eq!(
        json_at(&base, "/cameras/a/info").await["frame_interval"],
        0.5
    );
    wait_state_at(&base, "a", "live", Duration::from_secs(15)).await;
    let _ = frames_within(&mut sub, Duration::from_millis(600)).await;
    let seen = frames_within(&mut sub, Duration::from_secs(4)).await;
    assert!(
        seen.get("a").is_some_and(|&n| (5..=10).contains(&n)),
        "after restart: {seen:?}"
    );
    assert_eq!(json_at(&base, "/cameras/a/status").await["viewers"], 0);

    // `0` switches them off for this camera: no more messages, and it goes idle.
    let r = provision(
        &base,
        serde_json::json!({"camera_id": "a", "rtsp_url": cam.good_url(), "frame_interval": 0}),
    )
    .await;
    assert!(r.status().is_success());
    wait_state_at(&base, "a", "idle", Duration::from_secs(10)).await;
    let _ = frames_within(&mut sub, Duration::from_millis(600)).await;
    let seen = frames_within(&mut sub, Duration::from_secs(2)).await;
    assert!(seen.is_empty(), "{seen:?}");
}

/// With API keys set, whoever reads NATS has no key of ours: each frame URL carries a viewer
/// token (snapshot scope) that fetches that camera's frame and nothing else, and without it
/// the same URL is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_api_keys_frame_urls_carry_a_token_for_their_camera_only() {
    const KEY: &str = "frames-test-key-0123456789";
    let cam = Camera::start();
    let nats = NatsServer::start();
    let nats_url = format!("nats://127.0.0.1:{}", nats.port);
    let watcher = async_nats::connect(&nats_url).await.unwrap();
    let mut sub = watcher.subscribe("camgate.camera.frame").await.unwrap();
    watcher.flush().await.unwrap();
    let gw = Gateway::start(|c| {
        c.auth.api_keys = vec![KEY.into()];
        c.nats.url = nats_url.clone();
        c.nats.subject_prefix = "camgate".into();
        c.nats.frame_interval = Duration::from_millis(500);
        // The URL's base, though nothing listens there: the test fetches the path from `gw`.
        c.http.public_url = "https://cams.example.com/".into();
    })
    .await;
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    for id in ["t1", "t2"] {
        let r = client
            .post(gw.url("/cameras/provision"))
            .bearer_auth(KEY)
            .json(&serde_json::json!({"camera_id": id, "rtsp_url": cam.good_url()}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.status());
    }
    // A message of t1's, then one of t2's (to know t2's frame numbers exist).
    let mut urls = std::collections::HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while urls.len() < 2 {
        let left = deadline.saturating_duration_since(Instant::now());
        let msg = tokio::time::timeout(left, sub.next())
            .await
            .expect("frame messages of both cameras within 30 s")
            .unwrap();
        let v: Value = serde_json::from_slice(&msg.payload).unwrap();
        urls.insert(
            v["camera_id"].as_str().unwrap().to_owned(),
            v["url"].as_str().unwrap().to_owned(),
        );
    }
    // Announced under public_url, fetched here from the gateway's own address.
    let local = |u: &str| gw.url(u.strip_prefix("https://cams.example.com").expect(u));
    let url = &local(&urls["t1"]);
    let (bare, token) = url.split_once("?token=").expect("a token in the URL");
    assert!(bare.contains("/cameras/t1/frames/"), "{url}");
    // With its token, no key: the JPEG.
    let r = client.get(url).send().await.unwrap();
    assert_eq!(r.status(), 200, "{url}");
    let jpeg = r.bytes().await.unwrap();
    image::load_from_memory_with_format(&jpeg, image::ImageFormat::Jpeg).unwrap();
    // Without it: refused.
    let r = client.get(bare).send().await.unwrap();
    assert_eq!(r.status(), 401, "{bare}");
    // t1's token on t2's frame, and on t1's live stream and the control API: refused.
    let t2 = local(&urls["t2"]);
    let (t2_bare, _) = t2.split_once("?token=").unwrap();
    for other in [
        format!("{t2_bare}?token={token}"),
        gw.url(&format!("/hls/cam_t1/index.m3u8?token={token}")),
        gw.url(&format!("/cameras?token={token}")),
    ] {
        let r = client.get(&other).send().await.unwrap();
        assert!(
            r.status() == 401 || r.status() == 403,
            "{other}: {}",
            r.status()
        );
    }
    gw.stop().await;
}
