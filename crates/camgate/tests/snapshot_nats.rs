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
