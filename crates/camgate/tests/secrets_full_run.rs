//! Issue 16 "a secrets test over a full run": the real binary at debug level (text and JSON
//! logs), cameras provisioned with passwords of every shape (delimiters, percent signs,
//! quotes, unicode) against a real GStreamer camera that refuses them (401) and one that
//! accepts its own; then every kind of answer (API, HLS, snapshot, metrics, health, stats,
//! event and dashboard sockets), every message on a real nats-server (all subjects, status
//! and frame messages, headers too) and every log line is searched for each password raw,
//! JSON-escaped, percent-encoded (as the stored URL holds it, and fully) and as the base64 of
//! `user:password` (what Basic auth sends). NATS itself needs a password here, given in
//! camgate's `nats.url`, and that password is searched for as well.

mod support;

use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{Value, json};
use support::nats::NatsServer;
use support::serve::{Camgate, encodings};
use support::{Camera, client};

const USER: &str = "admin";
const NATS_USER: &str = "gateway";
/// With characters a URL's userinfo must escape (`@`, `:`, `/`), so its URL form differs from
/// the raw one and both are searched for.
const NATS_PASSWORD: &str = "n4ts@pw:x/y-s3cr3t";

/// Each at least 8 characters, so no encoding of one is likely text of ours by chance.
const SHAPES: &[&str] = &[
    "p@ss:w/rd?#&=x",
    "100%25sure%40pw",
    "S3cr3t%40Pw-raw",
    "quo\"te'back\\sl",
    "sp ace+plus~!*",
    "semi;colon,comma$",
    "ünïcødé-密码-🔑",
    "[br]{ce}<gt>|^`",
];

async fn socket_messages(url: String, bound: Duration) -> Vec<String> {
    let Ok((mut ws, _)) = tokio_tungstenite::connect_async(url.as_str()).await else {
        return Vec::new();
    };
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + bound;
    while let Ok(Some(Ok(msg))) = tokio::time::timeout_at(deadline, ws.next()).await {
        if let Ok(text) = msg.to_text() {
            got.push(text.to_owned());
        }
    }
    got
}

/// Every message on every subject of `nats` (as `subject headers payload`), from before
/// camgate connects until the returned sender is used or dropped.
async fn nats_messages(
    nats: &NatsServer,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<Vec<String>>,
) {
    let client =
        async_nats::ConnectOptions::with_user_and_password(NATS_USER.into(), NATS_PASSWORD.into())
            .connect(nats.url())
            .await
            .unwrap();
    let mut sub = client.subscribe(">").await.unwrap();
    client.flush().await.unwrap();
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let _client = client;
        let mut got = Vec::new();
        loop {
            tokio::select! {
                msg = sub.next() => match msg {
                    Some(m) => got.push(format!(
                        "{} {:?} {}",
                        m.subject,
                        m.headers,
                        String::from_utf8_lossy(&m.payload)
                    )),
                    None => break,
                },
                _ = &mut stopped => break,
            }
        }
        got
    });
    (stop, task)
}

async fn full_run(format: &str) {
    let camera = Camera::start();
    let nats = NatsServer::start_with_user(NATS_USER, NATS_PASSWORD);
    let (nats_stop, nats_seen) = nats_messages(&nats).await;
    let mut nats_url = url::Url::parse(&nats.url()).unwrap();
    nats_url.set_username(NATS_USER).unwrap();
    nats_url.set_password(Some(NATS_PASSWORD)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let server = Camgate::start(
        &dir.path().join("data"),
        format,
        &[
            ("CAMGATE_NATS_URL", nats_url.as_str()),
            ("CAMGATE_NATS_SUBJECT_PREFIX", "secrets"),
            ("CAMGATE_NATS_FRAME_INTERVAL", "1s"),
            ("CAMGATE_EVENTS_STATUS_INTERVAL", "500ms"),
        ],
    );
    let http = client();
    let cam_url = camera.good_url();
    let base = cam_url.split_once('@').unwrap().1.to_owned();
    let mut answers: Vec<String> = Vec::new();
    let mut record = |what: String| answers.push(what);

    // The camera that works, inline credentials (so its real password is checked too).
    let good = json!({"camera_id": "good", "rtsp_url": cam_url, "on_demand": false});
    let mut bodies = vec![good];
    for (i, password) in SHAPES.iter().enumerate() {
        // Always-on, so each is refused by the camera (401) and the failure path runs.
        bodies.push(json!({
            "camera_id": format!("c{i}"), "rtsp_url": format!("rtsp://{base}"),
            "username": USER, "password": password, "on_demand": false,
        }));
        // Invalid requests that carry it, refused with a message.
        bodies.push(
            json!({"camera_id": "bad id", "rtsp_url": format!("rtsp://{base}"),
            "username": USER, "password": password}),
        );
        bodies.push(json!({"camera_id": format!("d{i}"), "rtsp_url": format!("rtsp://{USER}:{password}@127.0.0.1:1/x")}));
    }
    for body in &bodies {
        let r = http
            .post(server.url("/cameras/provision"))
            .json(body)
            .send()
            .await
            .unwrap();
        record(format!("{} {}", r.status(), r.text().await.unwrap()));
    }
    // Sockets listen while the cameras connect, fail and go live.
    let events = tokio::spawn(socket_messages(
        format!("ws://{}/ws/events/cam_c0", server.addr),
        Duration::from_secs(6),
    ));
    let good_events = tokio::spawn(socket_messages(
        format!("ws://{}/ws/events/cam_good", server.addr),
        Duration::from_secs(6),
    ));
    let dashboard = tokio::spawn(socket_messages(
        format!("ws://{}/ws/dashboard", server.addr),
        Duration::from_secs(6),
    ));
    // Wait until every refused camera has reported its failure.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let list: Value = http
            .get(server.url("/streams"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let mut failing = 0;
        for i in 0..SHAPES.len() {
            let s: Value = http
                .get(server.url(&format!("/cameras/c{i}/status")))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if s["state"] == "unauthorized" || !s["last_error"].is_null() {
                failing += 1;
            }
            record(s.to_string());
        }
        record(list.to_string());
        if failing == SHAPES.len() {
            break;
        }
        assert!(Instant::now() < deadline, "cameras never failed: {list}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut paths: Vec<String> = [
        "/cameras",
        "/streams",
        "/stats",
        "/metrics",
        "/health",
        "/api/health",
        "/openapi.json",
        "/hls/cam_good/index.m3u8",
        "/hls/cam_good/master.m3u8",
        "/cameras/good/snapshot.jpg",
        "/hls/cam_c0/index.m3u8",
        "/cameras/nope/info",
    ]
    .iter()
    .map(|p| p.to_string())
    .collect();
    for i in 0..SHAPES.len() {
        for tail in ["", "/info", "/status"] {
            paths.push(format!("/cameras/c{i}{tail}"));
        }
        paths.push(format!("/streams/cam_c{i}/viewers"));
    }
    // A refused camera's snapshot waits for the start timeout before its error answer.
    paths.push("/cameras/c0/snapshot.jpg".into());
    let patient = support::client_bounded(Duration::from_secs(40));
    for path in &paths {
        let r = patient.get(server.url(path)).send().await.unwrap();
        let status = r.status();
        let bytes = r.bytes().await.unwrap();
        record(format!(
            "{path} {status} {}",
            String::from_utf8_lossy(&bytes)
        ));
    }
    for socket in [events, good_events, dashboard] {
        for m in socket.await.unwrap() {
            record(m);
        }
    }
    for i in 0..SHAPES.len() {
        let r = http
            .delete(server.url(&format!("/cameras/c{i}")))
            .send()
            .await
            .unwrap();
        record(format!("{} {}", r.status(), r.text().await.unwrap()));
    }
    // Frame messages every second and statuses every 500 ms: a few more of each, then stop.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let logs = server.stop();
    let _ = nats_stop.send(());
    let nats_messages = nats_seen.await.unwrap();

    // The run really went where secrets could leak.
    let on = |subject: &str, camera: &str| {
        nats_messages
            .iter()
            .any(|m| m.starts_with(subject) && m.contains(&format!("\"camera_id\":\"{camera}\"")))
    };
    assert!(
        on("secrets.camera.status", "good") && on("secrets.camera.status", "c0"),
        "no status of a live and a refused camera on NATS: {nats_messages:?}; camgate said {:?}",
        logs.iter()
            .filter(|l| l.contains("nats") && !l.contains("async_nats::connector"))
            .collect::<Vec<_>>()
    );
    assert!(
        on("secrets.camera.frame", "good"),
        "no frame message on NATS: {nats_messages:?}"
    );
    assert!(
        answers.iter().any(|a| a.contains("admin:***@")),
        "no redacted URL was shown"
    );
    assert!(
        answers.iter().any(|a| a.contains("unauthorized")),
        "no camera refused its credentials"
    );
    assert!(
        logs.iter().any(|l| l.contains("DEBUG")),
        "not at debug level"
    );
    assert!(logs.len() > 50, "too few log lines: {}", logs.len());
    let mut all: Vec<(&str, &str)> = SHAPES.iter().map(|p| (USER, *p)).collect();
    all.push((support::USER, support::PASSWORD));
    all.push((NATS_USER, NATS_PASSWORD));
    for (user, password) in all {
        for form in encodings(user, password) {
            for a in &answers {
                assert!(!a.contains(&form), "an answer leaks `{form}`: {a}");
            }
            for l in &logs {
                assert!(!l.contains(&form), "a log line leaks `{form}`: {l}");
            }
            for m in &nats_messages {
                assert!(!m.contains(&form), "a NATS message leaks `{form}`: {m}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_password_leaks_in_a_full_run_with_json_logs() {
    full_run("json").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_password_leaks_in_a_full_run_with_text_logs() {
    full_run("text").await;
}
