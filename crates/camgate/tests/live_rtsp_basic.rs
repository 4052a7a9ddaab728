//! A camera that speaks only Basic auth (GStreamer's RTSP server, `--auth basic`), ingested by
//! the real `camgate serve` at debug level: credentials inline and in the `username`/`password`
//! fields both go live and play (ffprobe decodes the HLS output), a wrong password is
//! `unauthorized`, and neither password appears in any answer or log line, in any encoding
//! (Basic sends `base64(user:password)` on every request, so that form is searched too).

mod support;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::serve::{Camgate, encodings};
use support::{Camera, PASSWORD, USER, client};

const WRONG: &str = "wr0ng-basic-pw";

/// The camera's answer to a DESCRIBE without credentials, read raw so that what is checked is
/// what the camera offers, not what a client library made of it.
fn challenge(port: u16) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "DESCRIBE rtsp://127.0.0.1:{port}/cam RTSP/1.0\r\nCSeq: 1\r\nAccept: application/sdp\r\n\r\n"
    )
    .unwrap();
    let mut buf = vec![0u8; 4096];
    let mut got = Vec::new();
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "the camera closed before answering");
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&got).into_owned()
}

async fn status(server: &Camgate, id: &str) -> Value {
    client()
        .get(server.url(&format!("/cameras/{id}/status")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// ffprobe decodes at least a second of the camera's HLS output at 320x240.
async fn plays(server: &Camgate, path: &str) -> Value {
    support::probe::video(&server.url(&format!("/hls/{path}/index.m3u8")), 2).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_basic_auth_camera_is_ingested_and_its_password_is_never_shown() {
    let camera = Camera::options().basic_auth().start();
    // The camera asks for Basic and nothing else, so going live below means Basic worked.
    let answer = challenge(camera.port);
    assert!(answer.starts_with("RTSP/1.0 401"), "{answer}");
    let schemes: Vec<&str> = answer
        .lines()
        .filter_map(|l| {
            l.split_once(':')
                .filter(|(k, _)| k.eq_ignore_ascii_case("WWW-Authenticate"))
        })
        .map(|(_, v)| v.trim())
        .collect();
    assert!(
        !schemes.is_empty() && schemes.iter().all(|s| s.starts_with("Basic ")),
        "{answer}"
    );

    let dir = tempfile::tempdir().unwrap();
    let server = Camgate::start(&dir.path().join("data"), "text", &[]);
    let http = client();
    let base = format!("rtsp://127.0.0.1:{}/cam", camera.port);
    let bodies = [
        json!({"camera_id": "inline", "rtsp_url": camera.good_url(), "on_demand": false}),
        json!({"camera_id": "fields", "rtsp_url": base, "username": USER,
               "password": PASSWORD, "on_demand": false}),
        json!({"camera_id": "wrong", "rtsp_url": base, "username": USER,
               "password": WRONG, "on_demand": false}),
    ];
    let mut answers = Vec::new();
    for body in &bodies {
        let r = http
            .post(server.url("/cameras/provision"))
            .json(body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let text = r.text().await.unwrap();
        assert!(status.is_success(), "{body}: {status} {text}");
        answers.push(text);
    }

    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (inline, fields, wrong) = (
            status(&server, "inline").await,
            status(&server, "fields").await,
            status(&server, "wrong").await,
        );
        let done = inline["state"] == "live"
            && fields["state"] == "live"
            && wrong["state"] == "unauthorized";
        for s in [&inline, &fields, &wrong] {
            answers.push(s.to_string());
        }
        if done {
            let err = wrong["last_error"].as_str().unwrap_or_default();
            assert!(err.contains("wrong username or password"), "{wrong}");
            assert!(err.contains("viewer:***@"), "{wrong}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not live and unauthorized within 30 s: {inline} {fields} {wrong}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for path in ["cam_inline", "cam_fields"] {
        let s = plays(&server, path).await;
        assert_eq!(
            (s["width"].as_u64(), s["height"].as_u64()),
            (Some(320), Some(240)),
            "{s}"
        );
        let frames: u64 = s["nb_read_frames"].as_str().unwrap().parse().unwrap();
        assert!(frames >= 25, "{path}: only {frames} frames decoded: {s}");
    }
    let mut paths: Vec<String> = ["/cameras", "/streams", "/stats", "/metrics", "/health"]
        .iter()
        .map(|p| p.to_string())
        .collect();
    for id in ["inline", "fields", "wrong"] {
        for tail in ["", "/info", "/status"] {
            paths.push(format!("/cameras/{id}{tail}"));
        }
    }
    for path in &paths {
        let r = http.get(server.url(path)).send().await.unwrap();
        answers.push(format!("{path} {} {}", r.status(), r.text().await.unwrap()));
    }
    let logs = server.stop();

    assert!(
        answers.iter().any(|a| a.contains("viewer:***@")),
        "no redacted URL was shown"
    );
    assert!(
        logs.iter().any(|l| l.contains("DEBUG")),
        "not at debug level"
    );
    assert!(
        logs.iter().any(|l| l.contains("RTSP session playing")),
        "no session log line: {logs:?}"
    );
    for password in [PASSWORD, WRONG] {
        for form in encodings(USER, password) {
            for a in &answers {
                assert!(!a.contains(&form), "an answer leaks `{form}`: {a}");
            }
            for l in &logs {
                assert!(!l.contains(&form), "a log line leaks `{form}`: {l}");
            }
        }
    }
}
