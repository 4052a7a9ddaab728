//! The API walkthrough over a real socket: the server runs in-process on 127.0.0.1:0 and is
//! driven with reqwest, then shut down gracefully.

mod support;

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use support::{Gateway, client};

#[tokio::test]
async fn walkthrough_over_a_socket() {
    let gw = Gateway::start(|_| {}).await;
    let addr = gw.addr;
    assert_ne!(addr.port(), 0);
    let http = client();
    let base = format!("http://{addr}");

    let health: Value = http
        .get(format!("{base}/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "healthy");
    let api_health = http.get(format!("{base}/api/health")).send().await.unwrap();
    assert_eq!(api_health.status(), StatusCode::OK);

    let body = json!({"camera_id": 42, "rtsp_url": "rtsp://viewer:pw123456@192.0.2.10/stream1", "name": "Gate"});
    let created = http
        .post(format!("{base}/cameras/provision"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let created: Value = created.json().await.unwrap();
    assert_eq!(created["success"], true);
    assert_eq!(
        created["hls_url"],
        format!("http://{addr}/hls/cam_42/index.m3u8")
    );
    assert_eq!(
        created["ws_events_url"],
        format!("ws://{addr}/ws/events/cam_42")
    );
    let again = http
        .post(format!("{base}/cameras"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::OK);

    let list: Value = http
        .get(format!("{base}/cameras"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["rtsp_url"], "rtsp://viewer:***@192.0.2.10/stream1");
    let info: Value = http
        .get(format!("{base}/cameras/42/info"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["name"], "Gate");
    let status: Value = http
        .get(format!("{base}/cameras/42/status"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["state"], "idle");
    let stats: Value = http
        .get(format!("{base}/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["cameras"], 1);
    let metrics = http.get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(metrics.status(), StatusCode::OK);
    assert!(metrics.text().await.unwrap().contains("camgate_cameras 1"));

    let bad = http
        .post(format!("{base}/cameras/provision"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let bad: Value = bad.json().await.unwrap();
    assert_eq!(bad["error"]["code"], "invalid_json");
    let bad_id = http
        .get(format!("{base}/cameras/no%20spaces/info"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad_id.status(), StatusCode::BAD_REQUEST);
    let unknown = http
        .get(format!("{base}/nothing-here"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        unknown.json::<Value>().await.unwrap()["error"]["code"],
        "not_found"
    );

    let deleted = http
        .delete(format!("{base}/cameras/42"))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let deleted = http
        .delete(format!("{base}/cameras/42"))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::NOT_FOUND);

    // A chunked body (no Content-Length) past 64 KiB is cut off with 413, not buffered.
    assert_eq!(chunked_oversized_post(addr).await, 413);

    gw.stop().await;
    // The listener is closed once run() returns.
    assert!(http.get(format!("{base}/health")).send().await.is_err());
}

/// Sends a 70 KiB chunked JSON body by hand and returns the answer's status code.
async fn chunked_oversized_post(addr: std::net::SocketAddr) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = "POST /cameras/provision HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
                Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    stream.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![b' '; 1024];
    for _ in 0..70 {
        // The server may answer and close before everything is sent.
        if stream
            .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
            .await
            .is_err()
            || stream.write_all(&chunk).await.is_err()
            || stream.write_all(b"\r\n").await.is_err()
        {
            break;
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
        .await
        .expect("answer within 10 s")
        .ok();
    let text = String::from_utf8_lossy(&answer);
    assert!(text.contains("body_too_large"), "{text}");
    text.split_whitespace().nth(1).unwrap().parse().unwrap()
}
