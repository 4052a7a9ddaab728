//! The video library (seed 002) over a real directory: the seed's curl and WebSocket examples
//! (listing, whole file, Range, WebSocket chunks, metrics) and hostile names in every
//! encoding, sent over a raw socket so that no client library normalizes them first.

mod support;

use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};
use support::{Gateway, client};
use tokio_tungstenite::tungstenite::Message;

/// Not a multiple of 64 KiB, and more than the seed's 1 MB ranges.
const SAMPLE_LEN: usize = 3 * 1024 * 1024 + 123;
/// In the file outside the library that hostile names aim at.
const SECRET: &[u8] = b"TOP-SECRET-OUTSIDE-THE-LIBRARY";

fn sample() -> Vec<u8> {
    // Deterministic, incompressible enough, and every offset distinguishable.
    let mut x: u32 = 0x1234_5678;
    (0..SAMPLE_LEN)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// `root/videos` (the library) and, beside it, `root/secret.mp4`.
fn library(root: &Path) -> std::path::PathBuf {
    let dir = root.join("videos");
    std::fs::create_dir_all(dir.join("subdir.mp4")).unwrap();
    std::fs::write(dir.join("sample.mp4"), sample()).unwrap();
    std::fs::write(dir.join("video2.mp4"), b"second video").unwrap();
    std::fs::write(dir.join(".hidden.mp4"), SECRET).unwrap();
    std::fs::write(dir.join("notes.txt"), SECRET).unwrap();
    std::fs::write(root.join("secret.mp4"), SECRET).unwrap();
    std::os::unix::fs::symlink(root.join("secret.mp4"), dir.join("leak.mp4")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", dir.join("passwd.mp4")).unwrap();
    std::os::unix::fs::symlink("sample.mp4", dir.join("inside-link.mp4")).unwrap();
    dir
}

async fn gateway(root: &Path) -> Gateway {
    let dir = library(root);
    Gateway::start(move |c| c.library.dir = dir).await
}

/// One HTTP/1.1 request with `target` sent byte for byte; (status, headers and body).
fn raw(gw: &Gateway, method: &str, target: &str) -> (u16, String, Vec<u8>) {
    let mut s = std::net::TcpStream::connect(gw.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut all = Vec::new();
    s.read_to_end(&mut all).unwrap();
    let split = all.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&all[..split]).into_owned();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head, all[split + 4..].to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_002_examples_listing_stream_range_websocket_metrics() {
    let root = tempfile::tempdir().unwrap();
    let gw = gateway(root.path()).await;
    let want = sample();

    // GET /api/videos: media files only, sorted, no dot files, no links leaving the dir.
    let v = gw.get_json("/api/videos").await;
    assert_eq!(
        v,
        json!({"videos": ["inside-link.mp4", "sample.mp4", "video2.mp4"], "status": "ok"})
    );

    // curl http://localhost:8000/api/stream/sample.mp4 -o output.mp4
    let r = client()
        .get(gw.url("/api/stream/sample.mp4"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "video/mp4");
    assert_eq!(r.headers()["transfer-encoding"], "chunked");
    let got = r.bytes().await.unwrap();
    assert_eq!(got.len(), want.len());
    assert!(got == want.as_slice(), "the whole file, byte for byte");
    let through_link = client()
        .get(gw.url("/api/stream/inside-link.mp4"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(through_link == want.as_slice());

    // curl -H "Range: bytes=0-1048576" http://localhost:8000/api/stream-range/sample.mp4
    let url = gw.url("/api/stream-range/sample.mp4");
    let r = client()
        .get(&url)
        .header("range", "bytes=0-1048576")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.headers()["accept-ranges"], "bytes");
    assert_eq!(
        r.headers()["content-range"],
        format!("bytes 0-1048576/{SAMPLE_LEN}").as_str()
    );
    let etag = r.headers()["etag"].to_str().unwrap().to_owned();
    let got = r.bytes().await.unwrap();
    assert!(got == want[..=1048576], "the first MB and one byte");

    // curl -H "Range: bytes=1048576-" http://localhost:8000/api/stream-range/sample.mp4
    let r = client()
        .get(&url)
        .header("range", "bytes=1048576-")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(
        r.headers()["content-range"],
        format!("bytes 1048576-{}/{SAMPLE_LEN}", SAMPLE_LEN - 1).as_str()
    );
    assert!(r.bytes().await.unwrap() == want[1048576..]);

    // Past the end: 416 as JSON, with the length.
    let r = client()
        .get(&url)
        .header("range", format!("bytes={SAMPLE_LEN}-"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 416);
    assert_eq!(
        r.headers()["content-range"],
        format!("bytes */{SAMPLE_LEN}").as_str()
    );
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["code"], "range_not_satisfiable");

    // HEAD, and a conditional GET with the ETag.
    let r = client().head(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-length"],
        SAMPLE_LEN.to_string().as_str()
    );
    assert_eq!(r.headers()["etag"], etag.as_str());
    assert!(r.bytes().await.unwrap().is_empty());
    let r = client()
        .get(&url)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);

    // new WebSocket('ws://localhost:8000/api/ws/stream/sample.mp4'), binaryType arraybuffer
    let mut ws = gw.ws("/api/ws/stream/sample.mp4").await;
    let mut got = Vec::new();
    let mut sizes = Vec::new();
    let close = loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a message in time")
        {
            Some(Ok(Message::Binary(b))) => {
                sizes.push(b.len());
                got.extend_from_slice(&b);
            }
            Some(Ok(Message::Close(frame))) => break frame,
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(close.expect("a close frame").code, 1000.into());
    assert!(got == want, "the chunks make the file");
    let (last, full) = sizes.split_last().unwrap();
    assert!(full.iter().all(|&n| n == 64 * 1024), "64 KiB chunks");
    assert_eq!(*last, SAMPLE_LEN % (64 * 1024));

    // GET /api/metrics: the seed's fields, from what was actually sent (the WebSocket's
    // counters settle once its task has sent the close frame).
    let sent_at_least = (SAMPLE_LEN * 3 + 1048577 + (SAMPLE_LEN - 1048576)) as u64;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let m = loop {
        let m = gw.get_json("/api/metrics").await;
        if m["active_streams"] == 0 || tokio::time::Instant::now() > deadline {
            break m;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    for field in [
        "uptime_seconds",
        "bytes_sent",
        "mb_sent",
        "chunks_sent",
        "throughput_mbps",
        "active_streams",
        "memory_mb",
        "cpu_percent",
    ] {
        assert!(m[field].is_number(), "{field} in {m}");
    }
    assert_eq!(m["active_streams"], 0, "{m}");
    let bytes = m["bytes_sent"].as_u64().unwrap();
    assert!(bytes >= sent_at_least, "{bytes} < {sent_at_least}: {m}");
    let mb = m["mb_sent"].as_f64().unwrap();
    assert!((mb - bytes as f64 / 1048576.0).abs() < 0.1, "{m}");
    assert!(
        m["chunks_sent"].as_u64().unwrap() >= sizes.len() as u64,
        "{m}"
    );
    assert!(m["memory_mb"].as_f64().unwrap() > 1.0, "{m}");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_names_never_leave_the_library() {
    let root = tempfile::tempdir().unwrap();
    let gw = gateway(root.path()).await;
    let hostile = [
        "..%2fsecret.mp4",
        "%2e%2e%2fsecret.mp4",
        "%2E%2E%2Fsecret.mp4",
        "..%5csecret.mp4",
        "%2e%2e%5csecret.mp4",
        "%252e%252e%252fsecret.mp4",
        "..%252fsecret.mp4",
        "%c0%ae%c0%ae%2fsecret.mp4",
        "%E2%80%A4%E2%80%A4%E2%88%95secret.mp4",
        "%EF%BC%8E%EF%BC%8E%EF%BC%8Fsecret.mp4",
        "%2Ftmp%2Fsecret.mp4",
        "%2F..%2F..%2Fetc%2Fpasswd",
        "C:%5csecret.mp4",
        ".hidden.mp4",
        "%2ehidden.mp4",
        "leak.mp4",
        "passwd.mp4",
        "notes.txt",
        "subdir.mp4",
        "sample.mp4%00.txt",
        "..",
        "%2e%2e",
    ];
    for base in ["/api/stream/", "/api/stream-range/"] {
        // The raw request itself works: a good name is served.
        let (status, _, body) = raw(&gw, "GET", &format!("{base}video2.mp4"));
        assert_eq!(status, 200, "{base}");
        assert!(body.windows(12).any(|w| w == b"second video"), "{base}");
        for name in hostile {
            let target = format!("{base}{name}");
            let (status, head, body) = raw(&gw, "GET", &target);
            assert!(status == 400 || status == 404, "{target}: {status}\n{head}");
            assert!(
                !body.windows(SECRET.len()).any(|w| w == SECRET),
                "{target} leaked the file outside"
            );
            assert!(
                !String::from_utf8_lossy(&body).contains("root:"),
                "{target}"
            );
            let e: Value = serde_json::from_slice(&body)
                .unwrap_or_else(|_| panic!("{target}: not JSON: {head}"));
            assert!(e["error"]["code"].is_string(), "{target}: {e}");
        }
        // Dot segments are not resolved by the server: they do not reach a file either.
        for target in [
            format!("{base}../secret.mp4"),
            format!("{base}../../secret.mp4"),
            format!("{base}./../secret.mp4"),
        ] {
            let (status, _, body) = raw(&gw, "GET", &target);
            assert_eq!(status, 404, "{target}");
            assert!(!body.windows(SECRET.len()).any(|w| w == SECRET), "{target}");
        }
    }
    // Absolute-form request targets name this server, not a file.
    let (status, _, body) = raw(&gw, "GET", "http://127.0.0.1/api/stream/..%2fsecret.mp4");
    assert!(status == 400 || status == 404, "{status}");
    assert!(!body.windows(SECRET.len()).any(|w| w == SECRET));

    // The WebSocket checks the name before it upgrades: the handshake fails with the error.
    for name in ["..%2fsecret.mp4", "leak.mp4", ".hidden.mp4"] {
        let r =
            tokio_tungstenite::connect_async(gw.ws_url(&format!("/api/ws/stream/{name}"))).await;
        match r {
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
                assert!(
                    resp.status() == 400 || resp.status() == 404,
                    "{name}: {}",
                    resp.status()
                );
            }
            other => panic!("{name}: the handshake should fail, got {other:?}"),
        }
    }
    gw.stop().await;
}

#[tokio::test]
async fn the_library_is_off_without_a_dir() {
    let gw = Gateway::start(|_| {}).await;
    for path in [
        "/api/videos",
        "/api/stream/a.mp4",
        "/api/stream-range/a.mp4",
    ] {
        let r = client().get(gw.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 404, "{path}");
        let e: Value = r.json().await.unwrap();
        assert_eq!(e["error"]["code"], "library_off", "{path}");
    }
    // The metrics answer without a library: nothing was sent.
    let m = gw.get_json("/api/metrics").await;
    assert_eq!(m["bytes_sent"], 0);
    gw.stop().await;
}
