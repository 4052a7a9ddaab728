//! The GT-Vision streaming service's README (seed 000), replayed as a new user would: its
//! `curl` provisioning request verbatim (the camera address swapped for a GStreamer camera
//! with the same kind of inline credentials), its endpoint list, and its two JavaScript
//! WebSocket examples (`ws.send('status')`, `ws.send('ping')`, the dashboard's `data`),
//! checking every field the seed shows.

mod support;

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use support::{Camera, Gateway, PASSWORD, Ws, client};
use tokio_tungstenite::tungstenite::Message;

/// The next JSON text message that satisfies `want`, within `within`.
async fn next_where(ws: &mut Ws, within: Duration, want: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let msg = tokio::time::timeout(left, ws.next())
            .await
            .expect("the awaited event in time")
            .expect("the socket stays open")
            .unwrap();
        if let Message::Text(t) = msg {
            let v: Value = serde_json::from_str(&t).expect("events are JSON");
            if want(&v) {
                return v;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_000_readme_replayed() {
    let cam = Camera::start();
    let gw = Gateway::start_for_events(|_| {}).await;

    // curl -X POST http://localhost:8001/cameras/provision -H "Content-Type: application/json" -d '{...}'
    let body = format!(
        r#"{{
    "camera_id": 1,
    "rtsp_url": "{}",
    "name": "Camera Entrada",
    "on_demand": true
  }}"#,
        cam.good_url()
    );
    let r = client()
        .post(gw.url("/cameras/provision"))
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let text = r.text().await.unwrap();
    assert!(!text.contains(PASSWORD), "{text}");
    let p: Value = serde_json::from_str(&text).unwrap();
    // The seed's answer: success, camera_id, stream_path, hls_url, webrtc_url. camera_id
    // comes back as the string "1" (the contract: `1` and `"1"` are the same camera).
    assert_eq!(p["success"], true);
    assert_eq!(p["camera_id"], "1");
    assert_eq!(p["stream_path"], "cam_1");
    assert_eq!(p["hls_url"], gw.url("/hls/cam_1/index.m3u8").as_str());
    assert_eq!(p["webrtc_url"], gw.url("/webrtc/cam_1").as_str());
    for url in ["hls_url", "webrtc_url"] {
        let r = client().get(p[url].as_str().unwrap()).send().await.unwrap();
        assert_eq!(r.status(), 200, "{url} answers");
    }

    // GET /health, GET /stats (the seed's metrics: active_streams, total_viewers,
    // total_bytes_sent, uptime_seconds).
    let h = gw.get_json("/health").await;
    assert_eq!(h["status"], "healthy", "{h}");
    let s = gw.get_json("/stats").await;
    for field in [
        "active_streams",
        "total_viewers",
        "total_bytes_sent",
        "uptime_seconds",
    ] {
        assert!(s[field].is_u64(), "{field} in {s}");
    }
    assert!(
        s["total_bytes_sent"].as_u64().unwrap() > 0,
        "the playlist was sent: {s}"
    );
    assert_eq!(s["active_streams"], 1, "{s}");

    // The camera routes of the endpoint list.
    let info = gw.get_json("/cameras/1/info").await;
    assert_eq!(info["camera_id"], "1");
    assert_eq!(info["name"], "Camera Entrada");
    assert_eq!(info["on_demand"], true);
    assert!(!info.to_string().contains(PASSWORD));
    let st = gw.get_json("/cameras/1/status").await;
    assert_eq!(st["stream_path"], "cam_1");
    let streams = gw.get_json("/streams").await;
    assert!(
        streams
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["stream_path"] == "cam_1"),
        "{streams}"
    );
    let v = gw.get_json("/streams/cam_1/viewers").await;
    assert_eq!(v["stream_path"], "cam_1");
    assert!(v["viewers"].is_u64());

    // HLS proxy: the playlist and a segment it names.
    let playlist = client()
        .get(gw.url("/hls/cam_1/index.m3u8"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let uri = playlist
        .lines()
        .find(|l| l.contains("#EXT-X-MAP:URI=\""))
        .and_then(|l| l.split('"').nth(1))
        .expect("an init segment")
        .to_owned();
    let seg = client()
        .get(gw.url(&format!("/hls/cam_1/{}", uri.trim_start_matches("./"))))
        .send()
        .await
        .unwrap();
    assert_eq!(seg.status(), 200, "{uri}");

    // const ws = new WebSocket('ws://localhost:8001/ws/events/cam_1');
    let mut ws = gw.ws("/ws/events/cam_1").await;
    // ws.send('status');
    ws.send(Message::text("status")).await.unwrap();
    let status = next_where(&mut ws, Duration::from_secs(10), |v| v["type"] == "status").await;
    assert_eq!(status["stream_path"], "cam_1", "{status}");
    assert!(
        status["ts"].is_string() || status["ts"].is_number(),
        "{status}"
    );
    // setInterval(() => ws.send('ping'), 25000);
    ws.send(Message::text("ping")).await.unwrap();
    let pong = next_where(&mut ws, Duration::from_secs(10), |v| v["type"] == "pong").await;
    assert_eq!(pong["type"], "pong");

    // const ws = new WebSocket('ws://localhost:8001/ws/dashboard');
    // const { data } = JSON.parse(event.data); data.active_streams, data.total_viewers
    let mut dash = gw.ws("/ws/dashboard").await;
    let stats = next_where(&mut dash, Duration::from_secs(10), |v| v["type"] == "stats").await;
    let data = &stats["data"];
    assert!(data["active_streams"].is_u64(), "{stats}");
    assert!(data["total_viewers"].is_u64(), "{stats}");

    // DELETE /cameras/{id}
    let r = client().delete(gw.url("/cameras/1")).send().await.unwrap();
    assert_eq!(r.status(), 204);
    let r = client()
        .get(gw.url("/cameras/1/info"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["code"], json!("camera_not_found"));
    gw.stop().await;
}
